import ArgumentParser
import Foundation
import ViTCheckpoint
import ViTTensor
import ViTText

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed sentences with a text encoder (sentence-transformers / BERT).",
        discussion: """
            The default model is all-MiniLM-L6-v2 in Weights/ (fetch it with \
            Weights/fetch-minilm.sh). Texts come as arguments or, with --file, one per line \
            (UTF-8). Prints one vector per text (jsonl: {"text", "embedding"}; json: a list), \
            or with --similarity the matrix of cosine similarities.
            """)

    @Argument(help: "Texts to embed.")
    var texts: [String] = []

    @Option(help: "A file of texts, one per line.")
    var file: String?

    @Option(help: "A sentence-transformers or HF BERT folder.")
    var model: String?

    @Option(help: "Output format: jsonl or json.")
    var format: OutputFormat = .jsonl

    @Flag(help: "Print the cosine similarity matrix instead of the vectors.")
    var similarity = false

    @Option(help: "Texts per forward pass.")
    var batchSize: Int = 32

    @Option(help: "Threads (default: all cores).")
    var threads: ThreadCount?

    func validate() throws {
        guard !texts.isEmpty || file != nil else { throw ValidationError("give texts or --file") }
        guard [.json, .jsonl].contains(format) else { throw ValidationError("--format must be jsonl or json") }
        guard batchSize > 0 else { throw ValidationError("--batch-size must be at least 1") }
    }

    func run() throws {
        applyThreads(threads)
        var all = texts
        if let file {
            all += try readTextLines(file)
        }
        let encoder = try SentenceEncoder.load(folder: model ?? defaultTextModelPath())
        let out = encoder.embed(all, batchSize: batchSize)
        let (d, scalars) = (out.shape.last ?? 0, out.scalars)
        let vectors = all.indices.map { Array(scalars[($0 * d)..<(($0 + 1) * d)]) }
        func json(_ value: some Encodable) -> String {
            try! sortedJSON(value)
        }
        if similarity {
            let norms = vectors.map { v in max(v.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12) }
            let matrix = vectors.indices.map { i in
                vectors.indices.map { j in
                    zip(vectors[i], vectors[j]).reduce(0) { $0 + $1.0 * $1.1 } / (norms[i] * norms[j])
                }
            }
            if format == .json {
                print(json(matrix))
            } else {
                for row in matrix { print(json(row)) }
            }
            return
        }
        // Written field by field: a keyed encoder's order is not fixed on Linux, and the
        // same input should give the same bytes, text first.
        let lines = zip(all, vectors).map { "{\"text\":\(json($0)),\"embedding\":\(json($1))}" }
        if format == .json {
            print("[" + lines.joined(separator: ",") + "]")
        } else {
            for line in lines { print(line) }
        }
    }
}

/// The shipped text model folder: Weights/all-MiniLM-L6-v2.
func defaultTextModelPath() -> String { shippedWeightsPath("all-MiniLM-L6-v2") }
