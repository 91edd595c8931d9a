import Foundation
import ViTCheckpoint
import ViTCore
import ViTTensor

/// The sizes of a BERT-style text encoder.
public struct TextEncoderConfig: Sendable, Equatable, Codable {
    public var vocabSize: Int
    public var maxLength: Int
    public var typeVocabSize: Int
    public var dim: Int
    public var depth: Int
    public var numHeads: Int
    public var hiddenDim: Int
    public var layerNormEps: Float
    public var activation: GELUApproximation

    public init(
        vocabSize: Int, maxLength: Int, typeVocabSize: Int, dim: Int, depth: Int, numHeads: Int, hiddenDim: Int,
        layerNormEps: Float, activation: GELUApproximation
    ) {
        self.vocabSize = vocabSize
        self.maxLength = maxLength
        self.typeVocabSize = typeVocabSize
        self.dim = dim
        self.depth = depth
        self.numHeads = numHeads
        self.hiddenDim = hiddenDim
        self.layerNormEps = layerNormEps
        self.activation = activation
    }

    public var block: BlockConfig {
        BlockConfig(
            dim: dim, numHeads: numHeads, hiddenDim: hiddenDim, layerNormEps: layerNormEps, qkvBias: true,
            normPlacement: .postNorm, activation: activation)
    }
}

/// A BERT encoder (Devlin et al. 2019) on the shared core: word, position and token-type
/// embeddings, their LayerNorm, then post-norm blocks with a padding mask.
/// ids [B, N] -> token states [B, N, C]. Keys: "word_embed.weight", "pos_embed.weight",
/// "type_embed.weight", "embed_norm", "blocks.N.*".
public struct TextEncoder: Layer {
    public let config: TextEncoderConfig
    public let wordEmbed: Variable  // [vocabSize, C]
    public let posEmbed: Variable  // [maxLength, C]
    public let typeEmbed: Variable  // [typeVocabSize, C]
    public let embedNorm: LayerNorm
    public let blocks: TransformerEncoder

    public init(_ source: ParameterSource, config c: TextEncoderConfig) throws {
        config = c
        wordEmbed = try source.parameter(
            "word_embed.weight", shape: [c.vocabSize, c.dim], initializer: .normal(std: 0.02))
        posEmbed = try source.parameter(
            "pos_embed.weight", shape: [c.maxLength, c.dim], initializer: .normal(std: 0.02))
        typeEmbed = try source.parameter(
            "type_embed.weight", shape: [c.typeVocabSize, c.dim], initializer: .normal(std: 0.02))
        embedNorm = try LayerNorm(source.scoped("embed_norm"), dim: c.dim, eps: c.layerNormEps)
        blocks = try TransformerEncoder(source.scoped("blocks"), depth: c.depth, config: c.block)
    }

    /// Word, position and token-type (0) embeddings summed, then normalized:
    /// ids [B][N] -> [B, N, C].
    public func embed(ids: [[Int]]) -> Variable {
        let (b, n, d) = (ids.count, ids.first?.count ?? 0, config.dim)
        precondition(n <= config.maxLength, "\(n) tokens, the model takes \(config.maxLength)")
        precondition(ids.allSatisfy { $0.count == n }, "token rows of different lengths")
        let words = embeddingRows(wordEmbed, ids: ids.flatMap { $0 }).reshaped([b, n, d])
        let positions = embeddingRows(posEmbed, ids: Array(0..<n)).reshaped([1, n, d])
        let types = embeddingRows(typeEmbed, ids: [0]).reshaped([1, 1, d])
        return embedNorm(words + positions + types)
    }

    /// ids and mask: [B][N] (mask 1 for tokens, 0 for padding) -> token states [B, N, C];
    /// padding is hidden from every query by an additive mask.
    public func callAsFunction(ids: [[Int]], mask: [[Int]]) -> Variable {
        blocks(embed(ids: ids), mask: additivePaddingMask(mask))
    }

    /// Parameter groups for freezing (`setTrainable`), by key prefix.
    public static let parameterGroups: [ParameterGroup] = [
        ParameterGroup("embeddings", ["word_embed", "pos_embed", "type_embed"]),
        ParameterGroup("attention", ["blocks.*.attn"]),
        ParameterGroup("mlp", ["blocks.*.mlp"]),
        ParameterGroup("norms", ["embed_norm", "blocks.*.norm1", "blocks.*.norm2"]),
    ]

    public var parameters: NamedParameters {
        [("word_embed.weight", wordEmbed), ("pos_embed.weight", posEmbed), ("type_embed.weight", typeEmbed)]
            + scoped("embed_norm", embedNorm) + scoped("blocks", blocks)
    }
}

/// HF `BertModel` keys -> ours. The pooler and position_ids buffer are not used.
let huggingFaceBERTRules = [
    KeyRule(#"(?:bert\.)?embeddings\.word_embeddings\.weight"#, "word_embed.weight"),
    KeyRule(#"(?:bert\.)?embeddings\.position_embeddings\.weight"#, "pos_embed.weight"),
    KeyRule(#"(?:bert\.)?embeddings\.token_type_embeddings\.weight"#, "type_embed.weight"),
    KeyRule(#"(?:bert\.)?embeddings\.LayerNorm\.(weight|bias)"#, "embed_norm.$1"),
    KeyRule(
        #"(?:bert\.)?encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.(weight|bias)"#,
        "blocks.$1.attn.qkv.$2.$3"),
    KeyRule(#"(?:bert\.)?encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)"#, "blocks.$1.attn.proj.$2"),
    KeyRule(#"(?:bert\.)?encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.(weight|bias)"#, "blocks.$1.norm1.$2"),
    KeyRule(#"(?:bert\.)?encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)"#, "blocks.$1.mlp.fc1.$2"),
    KeyRule(#"(?:bert\.)?encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)"#, "blocks.$1.mlp.fc2.$2"),
    KeyRule(#"(?:bert\.)?encoder\.layer\.(\d+)\.output\.LayerNorm\.(weight|bias)"#, "blocks.$1.norm2.$2"),
]

/// The additive attention mask [B, 1, N] of a padding mask [B][N] (1 token, 0 padding):
/// 0 for tokens, -1e30 for padding, so that no query attends to padding.
public func additivePaddingMask(_ mask: [[Int]]) -> Tensor {
    let (b, n) = (mask.count, mask.first?.count ?? 0)
    let additive = Tensor(shape: [b, 1, n])
    for (bi, row) in mask.enumerated() {
        for (j, keep) in row.enumerated() where keep == 0 { additive.data[bi * n + j] = -1e30 }
    }
    return additive
}

/// How token states become one sentence vector (sentence-transformers' Pooling and
/// Normalize modules).
public struct SentencePooling: Sendable, Equatable {
    public enum Mode: String, Sendable { case mean, cls }
    public var mode: Mode
    public var normalize: Bool
}

/// A sentence encoder: tokenizer, BERT encoder, pooling and optional L2 normalization,
/// loaded from a sentence-transformers (or plain HF BERT) folder.
public struct SentenceEncoder {
    public let tokenizer: WordPieceTokenizer
    public let encoder: TextEncoder
    public let pooling: SentencePooling
    /// The model's name: its folder's last path component ("all-MiniLM-L6-v2").
    public let name: String

    /// Loads config.json, model.safetensors, vocab.txt, tokenizer_config.json and, when
    /// present, sentence_bert_config.json, modules.json and 1_Pooling/config.json.
    public static func load(folder: String) throws -> SentenceEncoder {
        func json(_ name: String, required: Bool = true) throws -> JSONFields? {
            let path = "\(folder)/\(name)"
            guard FileManager.default.fileExists(atPath: path) else {
                if required { throw TextModelError(path: path, reason: "no such file") }
                return nil
            }
            return JSONFields(object: try readJSON(path), path: path)
        }
        guard FileManager.default.fileExists(atPath: folder) else {
            throw TextModelError(path: folder, reason: "no such folder")
        }
        let f = try json("config.json")!
        let modelType = try f.string("model_type", default: "bert")
        guard modelType == "bert" else {
            throw TextModelError(path: f.path, reason: "model_type '\(modelType)' is not supported (bert)")
        }
        let activation = try f.activation("hidden_act")
        let config = TextEncoderConfig(
            vocabSize: try f.int("vocab_size"), maxLength: try f.int("max_position_embeddings"),
            typeVocabSize: try f.int("type_vocab_size", default: 2), dim: try f.int("hidden_size"),
            depth: try f.int("num_hidden_layers"), numHeads: try f.int("num_attention_heads"),
            hiddenDim: try f.int("intermediate_size"), layerNormEps: try f.float("layer_norm_eps", default: 1e-12),
            activation: activation)
        guard config.dim > 0, config.numHeads > 0, config.dim % config.numHeads == 0 else {
            throw TextModelError(
                path: f.path, reason: "width \(config.dim) is not divisible by \(config.numHeads) heads")
        }
        let weightsPath = "\(folder)/model.safetensors"
        let file = try SafeTensorsFile(path: weightsPath)
        var tensors = try file.allTensors()
        for name in tensors.keys where name.hasSuffix("position_ids") || name.contains("pooler.") {
            tensors[name] = nil
        }
        let store = WeightStore(
            try renameAndFuse(tensors, rules: huggingFaceBERTRules, origin: weightsPath), origin: weightsPath)
        let encoder = try TextEncoder(store, config: config)
        try store.finish()

        let tokenizerConfig = try json("tokenizer_config.json", required: false)
        let sentenceConfig = try json("sentence_bert_config.json", required: false)
        var maxLength = min(
            config.maxLength,
            try tokenizerConfig?.int("model_max_length", default: config.maxLength) ?? config.maxLength)
        if let sentenceConfig {
            maxLength = min(maxLength, try sentenceConfig.int("max_seq_length", default: maxLength))
        }
        let lowercase = try tokenizerConfig?.bool("do_lower_case", default: true) ?? true
        let strip = tokenizerConfig?.object["strip_accents"] as? Bool
        let tokenizer = try WordPieceTokenizer(
            vocabulary: try WordPieceTokenizer.readVocabulary(path: "\(folder)/vocab.txt", maxTokens: config.vocabSize),
            lowercase: lowercase,
            stripAccents: strip, splitCJK: try tokenizerConfig?.bool("tokenize_chinese_chars", default: true) ?? true,
            maxLength: maxLength)

        var pooling = SentencePooling(mode: .mean, normalize: false)
        if let poolingConfig = try json("1_Pooling/config.json", required: false) {
            pooling.mode = try poolingConfig.bool("pooling_mode_cls_token", default: false) ? .cls : .mean
        }
        if let data = FileManager.default.contents(atPath: "\(folder)/modules.json"),
            let modules = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]]
        {
            pooling.normalize = modules.contains { ($0["type"] as? String)?.hasSuffix("Normalize") ?? false }
        }
        let name = URL(fileURLWithPath: folder).standardizedFileURL.lastPathComponent
        return SentenceEncoder(tokenizer: tokenizer, encoder: encoder, pooling: pooling, name: name)
    }

    /// Sentence vectors [B, C] for any number of texts, `batchSize` at a time in order of
    /// token count (longest first, as sentence-transformers does) so that little padding is
    /// computed; rows come back in the order of `texts`.
    public func embed(_ texts: [String], batchSize: Int) -> Tensor {
        let encoded = texts.map(tokenizer.encode)
        let order = encoded.indices.sorted { (encoded[$0].count, $1) > (encoded[$1].count, $0) }
        let d = encoder.config.dim
        let out = Tensor(shape: [texts.count, d])
        for start in stride(from: 0, to: order.count, by: max(batchSize, 1)) {
            let batch = Array(order[start..<min(order.count, start + batchSize)])
            let vectors = embed(encoded: batch.map { encoded[$0] })
            for (row, index) in batch.enumerated() {
                (out.data + index * d).update(from: vectors.data + row * d, count: d)
            }
        }
        return out
    }

    /// Sentence vectors [B, C]: mean over real tokens (or the [CLS] state), then L2-normalized
    /// when the model says so.
    public func embed(_ texts: [String]) -> Tensor { embed(encoded: texts.map(tokenizer.encode)) }

    /// The encoder's token states for texts, padded to the longest: states [B, N, C] and the
    /// additive mask [B, 1, N] that hides the padding (what a cross-attention to the texts
    /// takes).
    public func tokenStates(_ texts: [String]) -> (states: Tensor, mask: Tensor) {
        let (ids, mask) = tokenizer.padded(texts.map(tokenizer.encode))
        return (encoder(ids: ids, mask: mask).value, additivePaddingMask(mask))
    }

    /// Sentence vectors for already encoded texts (ids with [CLS] and [SEP]), padded here.
    func embed(encoded: [[Int]]) -> Tensor {
        let (ids, mask) = tokenizer.padded(encoded)
        let states = encoder(ids: ids, mask: mask).value  // [B, N, C]
        let (b, n, d) = (encoded.count, ids.first?.count ?? 0, encoder.config.dim)
        let out = Tensor(shape: [b, d])
        for bi in 0..<b {
            let dst = out.data + bi * d
            switch pooling.mode {
            case .cls:
                dst.update(from: states.data + bi * n * d, count: d)
            case .mean:
                let real = mask[bi].reduce(0, +)
                for i in 0..<n where mask[bi][i] == 1 {
                    let src = states.data + (bi * n + i) * d
                    for j in 0..<d { dst[j] += src[j] }
                }
                for j in 0..<d { dst[j] /= Float(max(real, 1)) }
            }
            if pooling.normalize {
                var norm: Float = 0
                for j in 0..<d { norm += dst[j] * dst[j] }
                let scale = 1 / max(norm.squareRoot(), 1e-12)
                for j in 0..<d { dst[j] *= scale }
            }
        }
        return out
    }
}
