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

    @Option(
        help:
            "A sentence-transformers or HF BERT folder, or a Hugging Face name ORG/NAME[@REVISION] (from its cache, fetched when absent)."
    )
    var model: String?

    @Option(help: "Output format: jsonl or json.")
    var format: OutputFormat = .jsonl

    @Flag(help: "Print the cosine similarity matrix instead of the vectors.")
    var similarity = false

    @Option(help: "Texts per forward pass.")
    var batchSize: Int = 32

    @Option(help: "Threads (default: all cores).")
    var threads: ThreadCount?

    @OptionGroup var precision: PrecisionOption

    func validate() throws {
        guard !texts.isEmpty || file != nil else { throw ValidationError("give texts or --file") }
        guard [.json, .jsonl].contains(format) else { throw ValidationError("--format must be jsonl or json") }
        guard batchSize > 0 else { throw ValidationError("--batch-size must be at least 1") }
    }

    func run() throws {
        applyThreads(threads)
        try precision.apply()
        let encoder = try SentenceEncoder.load(folder: model.map(modelPath) ?? defaultTextModelPath())
        encoder.encoder.markParametersConstant()
        // The arguments, then the file's lines, a chunk at a time: memory holds one chunk,
        // not the file.
        let reader = try file.map { try TextLineReader(path: $0) }
        var arguments = texts[...]
        func nextTexts(upTo count: Int) throws -> [String] {
            var chunk = Array(arguments.prefix(count))
            arguments = arguments.dropFirst(chunk.count)
            if chunk.count < count, let reader { chunk += try reader.nextLines(upTo: count - chunk.count) }
            return chunk
        }
        func json(_ value: some Encodable) -> String {
            try! sortedJSON(value)
        }
        /// The vectors of `chunk`, whose first text is text number `first`, checked to be finite.
        func vectors(_ chunk: [String], first: Int) throws -> [[Float]] {
            let out = encoder.embed(chunk, batchSize: batchSize)
            let d = out.shape.last ?? 0
            return try chunk.indices.map { i in
                let vector = Array(UnsafeBufferPointer(start: out.data + i * d, count: d))
                guard vector.allSatisfy(\.isFinite) else {
                    throw CLIFailure("text \(first + i): the model's output is not finite")
                }
                return vector
            }
        }
        if similarity {
            let all = try nextTexts(upTo: Self.maxSimilarityTexts + 1)
            guard all.count <= Self.maxSimilarityTexts else {
                throw CLIFailure(
                    "--similarity takes at most \(Self.maxSimilarityTexts) texts (a matrix of their squares); there are more"
                )
            }
            let vectors = try vectors(all, first: 1)
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
        if format == .json { print("[", terminator: "") }
        var printed = 0
        while case let chunk = try nextTexts(upTo: Self.textsPerChunk), !chunk.isEmpty {
            for (text, vector) in zip(chunk, try vectors(chunk, first: printed + 1)) {
                let line = "{\"text\":\(json(text)),\"embedding\":\(json(vector))}"
                if format == .json {
                    print(printed == 0 ? line : "," + line, terminator: "")
                } else {
                    print(line)
                }
                printed += 1
            }
        }
        if format == .json { print("]") }
    }

    /// Texts embedded and printed at a time (sorted by length within it).
    static let textsPerChunk = 4096

    /// The most texts --similarity compares (16.8 million similarities).
    static let maxSimilarityTexts = 4096
}

/// The shipped text model folder: Weights/all-MiniLM-L6-v2.
func defaultTextModelPath() -> String { shippedWeightsPath("all-MiniLM-L6-v2") }
