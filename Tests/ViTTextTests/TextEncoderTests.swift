import Foundation
import Testing
import ViTCheckpoint
import ViTTensor
import ViTTestSupport
import ViTText

/// all-MiniLM-L6-v2, fetched by Weights/fetch-minilm.sh (.ci/run runs it).
let miniLM = repositoryPath("Weights/all-MiniLM-L6-v2")
let textGolden = repositoryPath("Tests/ViTTextTests/Golden")

func corpusLines() throws -> [String] {
    let text = try String(contentsOfFile: "\(textGolden)/corpus.txt", encoding: .utf8)
    return Array(text.components(separatedBy: "\n").dropLast())
}

@Suite struct TextEncoderTests {
    /// Token ids equal HF BertTokenizer's on every corpus line (Tests/Reference/text_encoder.py).
    @Test func tokenIDsMatchHuggingFace() throws {
        let encoder = try SentenceEncoder.load(folder: miniLM)
        let lines = try corpusLines()
        let expected = try String(contentsOfFile: "\(textGolden)/token_ids.jsonl", encoding: .utf8)
            .split(separator: "\n").map { try JSONDecoder().decode([Int].self, from: Data($0.utf8)) }
        #expect(lines.count == expected.count && lines.count >= 200)
        for (index, (line, ids)) in zip(lines, expected).enumerated() {
            let ours = encoder.tokenizer.encode(line)
            #expect(
                ours == ids,
                "line \(index + 1) '\(line.prefix(60))': got \(ours.prefix(40)), expected \(ids.prefix(40))")
        }
    }

    /// vocab.txt as BertTokenizer's load_vocab reads it (Python text mode: LF, CRLF and CR
    /// end lines; a repeated token keeps its last line's id), and a file with more lines than
    /// the embedding table has rows is refused.
    @Test func vocabularyLinesAndDuplicates() throws {
        let folder = makeTemporaryFolder()
        let path = "\(folder)/vocab.txt"
        try Data("[PAD]\r\n[UNK]\r\nhello\rworld\nhello\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(try WordPieceTokenizer.readVocabulary(path: path) == ["[PAD]": 0, "[UNK]": 1, "world": 3, "hello": 4])
        #expect {
            try WordPieceTokenizer.readVocabulary(path: path, maxTokens: 4)
        } throws: { "\($0)" == "\(path): 5 tokens, more than the 4 rows of the embedding table" }
    }

    /// Sentence embeddings equal sentence-transformers' within 1e-4 per component, cosine
    /// at least 0.99999, for the first 60 corpus lines, batched as a user would.
    @Test func embeddingsMatchSentenceTransformers() throws {
        let encoder = try SentenceEncoder.load(folder: miniLM)
        let lines = Array(try corpusLines().prefix(60))
        let golden = try SafeTensorsFile(path: "\(textGolden)/embeddings.safetensors").tensor("embeddings")
        // Batches of 7 taken in order of length, rows returned in the order given.
        let rows = encoder.embed(lines, batchSize: 7).scalars
        let d = golden.shape[1]
        for i in 0..<lines.count {
            let ours = Array(rows[(i * d)..<((i + 1) * d)]), theirs = Array(golden.scalars[(i * d)..<((i + 1) * d)])
            let result = compare(ours, theirs, atol: 1e-4)
            #expect(result.passed, "line \(i + 1) '\(lines[i].prefix(50))': \(result)")
            let dot = zip(ours, theirs).reduce(0) { $0 + Double($1.0) * Double($1.1) }
            let norms = (ours.reduce(0) { $0 + Double($1 * $1) } * theirs.reduce(0) { $0 + Double($1 * $1) })
                .squareRoot()
            #expect(dot / norms >= 0.99999, "line \(i + 1): cosine \(dot / norms)")
        }
    }

    /// Token states for captions of different lengths: padding is masked (0 for tokens,
    /// -1e30 for padding), each caption's states equal those it gets alone, and their mean
    /// over real tokens, normalized, is its sentence embedding.
    @Test func tokenStatesForCaptions() throws {
        let encoder = try SentenceEncoder.load(folder: miniLM)
        let captions = ["a small red circle in the top left", "a big blue box", "on the right, a tiny violet cross"]
        let (states, mask) = encoder.tokenStates(captions)
        let lengths = captions.map { encoder.tokenizer.encode($0).count }
        let (n, d) = (states.shape[1], states.shape[2])
        #expect(states.shape == [3, lengths.max()!, 384] && mask.shape == [3, 1, n])
        let embeddings = encoder.embed(captions)
        for (b, caption) in captions.enumerated() {
            let row = Array(mask.scalars[(b * n)..<((b + 1) * n)])
            #expect(row == (0..<n).map { $0 < lengths[b] ? 0 : -1e30 })
            let alone = encoder.tokenStates([caption]).states
            let batched = Array(states.scalars[(b * n * d)..<((b * n + lengths[b]) * d)])
            let result = compare(batched, alone.scalars, atol: 1e-5)
            #expect(result.passed, "\(caption): \(result)")
            var mean = [Float](repeating: 0, count: d)
            for i in 0..<lengths[b] { for j in 0..<d { mean[j] += batched[i * d + j] / Float(lengths[b]) } }
            let norm = mean.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let pooled = compare(mean.map { $0 / norm }, Array(embeddings.scalars[(b * d)..<((b + 1) * d)]), atol: 1e-5)
            #expect(pooled.passed, "\(caption) pooled: \(pooled)")
        }
    }
}
