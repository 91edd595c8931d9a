import Foundation
import ViTCore
import ViTTensor

/// The sizes of a Vision Transformer (Dosovitskiy et al. 2021).
public struct ViTConfig: Sendable, Equatable, Codable {
    /// How the image representation is read from the final tokens.
    public enum Pool: String, Sendable, Codable {
        /// The class token (ViT, DeiT): final norm, then the head on token 0.
        case token
        /// The mean of the patch tokens, then `fc_norm` (timm global_pool="avg").
        case avg
    }

    public var imageSize: Int
    public var patchSize: Int
    public var inChannels: Int = 3
    public var dim: Int
    public var depth: Int
    public var numHeads: Int
    public var hiddenDim: Int
    public var numClasses: Int
    public var layerNormEps: Float
    public var qkvBias: Bool = true
    public var pool: Pool = .token
    public var activation: GELUApproximation = .none
    /// How position embeddings are resampled for other input sizes; nil means timm's
    /// antialiased bicubic.
    public var positionResampling: PositionResampling? = nil
    /// Where the blocks normalize; nil means before each sublayer (ViT). Post-norm blocks
    /// (BERT) carry a text encoder's layers into a vision model (`TransferStudy`).
    public var normPlacement: NormPlacement? = nil
    /// A LayerNorm over the embedded tokens before the blocks (timm's `norm_pre`; BERT's
    /// embedding norm); nil means none.
    public var embeddingNorm: Bool? = nil

    public init(
        imageSize: Int, patchSize: Int, inChannels: Int = 3, dim: Int, depth: Int, numHeads: Int,
        hiddenDim: Int, numClasses: Int, layerNormEps: Float, qkvBias: Bool = true,
        pool: Pool = .token, activation: GELUApproximation = .none, positionResampling: PositionResampling? = nil
    ) {
        self.imageSize = imageSize
        self.patchSize = patchSize
        self.inChannels = inChannels
        self.dim = dim
        self.depth = depth
        self.numHeads = numHeads
        self.hiddenDim = hiddenDim
        self.numClasses = numClasses
        self.layerNormEps = layerNormEps
        self.qkvBias = qkvBias
        self.pool = pool
        self.activation = activation
        self.positionResampling = positionResampling
    }

    /// Patches per side at the configured image size.
    public var gridSize: Int { imageSize / patchSize }
    public var numPatches: Int { gridSize * gridSize }

    public var block: BlockConfig {
        BlockConfig(
            dim: dim, numHeads: numHeads, hiddenDim: hiddenDim, layerNormEps: layerNormEps,
            qkvBias: qkvBias, normPlacement: normPlacement ?? .preNorm, activation: activation)
    }

    /// Checks that the sizes are consistent; the message says what is wrong.
    public func validate() throws {
        try checkPatchSizes(imageSize: imageSize, patchSize: patchSize, dim: dim, numHeads: numHeads)
        guard depth >= 0 && hiddenDim > 0 && inChannels > 0 && numClasses >= 0 else {
            throw ParameterError("config: sizes must be positive")
        }
        guard imageSize <= Self.maxImageSize else {
            throw ParameterError("config: image size \(imageSize) is more than the limit of \(Self.maxImageSize)")
        }
        let limits: [(String, Int, Int)] = [
            ("patches", numPatches, Self.maxPatches),
            ("width", dim, 65_536), ("MLP width", hiddenDim, 262_144), ("depth", depth, 1_024),
            ("channels", inChannels, 64), ("classes", numClasses, 1_000_000),
        ]
        for (name, value, limit) in limits where value > limit {
            throw ParameterError("config: \(name) \(value) is more than the limit of \(limit)")
        }
    }

    /// The largest image side a model takes: 16,384 pixels.
    public static let maxImageSize = 16_384

    /// The most patches a model takes: 4,096 (a 64 x 64 grid: 1024 x 1024 pixels at patch 16),
    /// which keeps one head's attention scores at 67 MB.
    public static let maxPatches = 4_096

    /// About how many bytes of activations one image of `tokens` tokens takes in a forward
    /// pass without gradients: tokens x (6 widths + the MLP width) floats.
    public func inferenceBytesPerImage(tokens: Int) -> Int { tokens * (6 * dim + hiddenDim) * 4 }

    /// Multiply-accumulates per image, in billions (matrix products only), times two: those
    /// the classifier runs, whose last block computes the class token's output alone with
    /// the token pool (`VisionTransformer.pooledFeatures`).
    public var gflops: Double {
        let n = Double(numPatches + 1), c = Double(dim), h = Double(hiddenDim)
        let patch = Double(numPatches) * Double(inChannels * patchSize * patchSize) * c
        /// A block whose first `q` tokens' outputs are kept.
        func block(queries q: Double) -> Double { n * c * 3 * c + 2 * q * n * c + q * c * c + 2 * q * c * h }
        let blocks =
            pool == .token && depth > 0
            ? Double(depth - 1) * block(queries: n) + block(queries: 1) : Double(depth) * block(queries: n)
        return 2 * (patch + blocks + c * Double(numClasses)) / 1e9
    }
}

/// The patch embedding (timm `PatchEmbed`): a p x p convolution with stride p, computed as
/// a product over flattened patches. images [B, C, H, W] -> [B, gh * gw, D].
/// Keys: "proj.weight" [D, C, p, p], "proj.bias" [D].
public struct PatchEmbedding: Layer {
    public let weight: Variable  // [D, C, p, p]
    public let bias: Variable  // [D]
    public let patchSize: Int

    public init(_ source: ParameterSource, inChannels: Int, dim: Int, patchSize p: Int) throws {
        let proj = source.scoped("proj")
        weight = try proj.parameter("weight", shape: [dim, inChannels, p, p], initializer: .truncatedNormal(std: 0.02))
        bias = try proj.parameter("bias", shape: [dim], initializer: .zeros)
        patchSize = p
    }

    /// images [B, C, H, W] -> [B, gh * gw, D].
    public func callAsFunction(_ images: Tensor) -> Variable {
        let (d, k) = (weight.shape[0], weight.shape[1] * patchSize * patchSize)
        return linear(Variable(patchify(images, patchSize: patchSize)), weight: weight.reshaped([d, k]), bias: bias)
    }

    public var parameters: NamedParameters { [("proj.weight", weight), ("proj.bias", bias)] }
}

/// The Vision Transformer classifier (timm `VisionTransformer` names and layout).
/// images [B, C, H, W] -> logits [B, numClasses]. Keys: "patch_embed.proj.{weight,bias}",
/// "cls_token", "pos_embed", "norm_pre" (when configured), "blocks.N.*", "norm",
/// "fc_norm" (avg pool), "head".
public struct VisionTransformer: Layer {
    public let config: ViTConfig
    public let patchEmbed: PatchEmbedding
    public let clsToken: Variable  // [1, 1, C]
    public let posEmbed: Variable  // [1, numPatches + 1, C]
    /// The norm over embedded tokens before the blocks (`config.embeddingNorm`).
    public let normPre: LayerNorm?
    public let blocks: TransformerEncoder
    /// The final norm: "norm" for the token pool, "fc_norm" (after pooling) for avg.
    public let norm: LayerNorm
    public let head: Linear?

    public init(_ source: ParameterSource, config c: ViTConfig) throws {
        try c.validate()
        config = c
        patchEmbed = try PatchEmbedding(
            source.scoped("patch_embed"), inChannels: c.inChannels, dim: c.dim, patchSize: c.patchSize)
        clsToken = try source.parameter("cls_token", shape: [1, 1, c.dim], initializer: .normal(std: 1e-6))
        posEmbed = try source.parameter(
            "pos_embed", shape: [1, c.numPatches + 1, c.dim], initializer: .truncatedNormal(std: 0.02))
        normPre =
            c.embeddingNorm == true ? try LayerNorm(source.scoped("norm_pre"), dim: c.dim, eps: c.layerNormEps) : nil
        blocks = try TransformerEncoder(source.scoped("blocks"), depth: c.depth, config: c.block)
        norm = try LayerNorm(source.scoped(c.pool == .token ? "norm" : "fc_norm"), dim: c.dim, eps: c.layerNormEps)
        head =
            c.numClasses > 0
            ? try Linear(source.scoped("head"), inFeatures: c.dim, outFeatures: c.numClasses) : nil
    }

    /// Parameter groups for freezing (`setTrainable`), by timm key prefix.
    public static let parameterGroups: [ParameterGroup] = [
        ParameterGroup("patch-embedding", ["patch_embed"]),
        ParameterGroup("position-embedding", ["pos_embed", "cls_token"]),
        ParameterGroup("attention", ["blocks.*.attn"]),
        ParameterGroup("mlp", ["blocks.*.mlp"]),
        ParameterGroup("norms", ["norm_pre", "blocks.*.norm1", "blocks.*.norm2", "norm", "fc_norm"]),
        ParameterGroup("head", ["head"]),
    ]

    /// Why an input of this size does not fit the model, or nil (as `accepts`).
    public func inputProblem(height: Int, width: Int, channels: Int) -> String? {
        accepts(height: height, width: width, channels: channels)
            ? nil
            : "its \(width)x\(height) input does not fit the model (sides multiples of \(config.patchSize), at most \(ViTConfig.maxPatches) patches)"
    }

    /// Tokens (patches and the class token) for an input of this size.
    public func tokenCount(height: Int, width: Int) -> Int {
        (height / config.patchSize) * (width / config.patchSize) + 1
    }

    /// Whether images of this height and width can be embedded: the model's channels and
    /// whole patches. Sizes other than `config.imageSize` resample the position embeddings.
    public func accepts(height: Int, width: Int, channels: Int) -> Bool {
        channels == config.inChannels && height >= config.patchSize && width >= config.patchSize
            && height % config.patchSize == 0 && width % config.patchSize == 0
            && height <= ViTConfig.maxImageSize && width <= ViTConfig.maxImageSize
            && (height / config.patchSize) * (width / config.patchSize) <= ViTConfig.maxPatches
    }

    /// Position embeddings for a patch grid of gh x gw: [1, gh * gw + 1, D]. The class
    /// token's embedding is kept; the grid is resampled (config.positionResampling) when
    /// it differs from the trained one, as a constant (no gradient flows through resampling).
    public func positionEmbedding(gridHeight gh: Int, gridWidth gw: Int) -> Variable {
        let g = config.gridSize, d = config.dim
        if gh == g && gw == g { return posEmbed }
        let grid = resampledGrid(
            posEmbed.value.data + d, height: g, width: g, dim: d, newHeight: gh, newWidth: gw,
            method: config.positionResampling ?? .bicubicAntialiased)
        let out = Tensor(shape: [1, gh * gw + 1, d])
        out.data.update(from: posEmbed.value.data, count: d)
        grid.withUnsafeBufferPointer { (out.data + d).update(from: $0.baseAddress!, count: grid.count) }
        return Variable(out)
    }

    /// Patch embedding, class token and position embedding (then `norm_pre` when the model
    /// has it): [B, C, H, W] -> [B, N + 1, D].
    public func embed(_ images: Tensor) -> Variable {
        let (ch, h, w) = (images.shape[1], images.shape[2], images.shape[3])
        let p = config.patchSize
        precondition(
            accepts(height: h, width: w, channels: ch),
            "input \(images.shape) does not match the model: \(config.inChannels) channels, sides multiples of \(p)")
        let tokens = patchEmbed(images)  // [B, gh * gw, D]
        let embedded = prependingClassToken(tokens) + positionEmbedding(gridHeight: h / p, gridWidth: w / p)
        return normPre.map { $0(embedded) } ?? embedded
    }

    /// [cls, tokens]: tokens [B, P, D] -> [B, P + 1, D].
    func prependingClassToken(_ tokens: Variable) -> Variable {
        let (b, n, d) = (tokens.shape[0], tokens.shape[1], tokens.shape[2])
        let out = Tensor(shape: [b, n + 1, d])
        for bi in 0..<b {
            (out.data + bi * (n + 1) * d).update(from: clsToken.value.data, count: d)
            (out.data + bi * (n + 1) * d + d).update(from: tokens.value.data + bi * n * d, count: n * d)
        }
        return Variable(value: out, inputs: [tokens, clsToken]) { g in
            let dtokens = Tensor(shape: [b, n, d]), dcls = Tensor(shape: [1, 1, d])
            for bi in 0..<b {
                (dtokens.data + bi * n * d).update(from: g.data + bi * (n + 1) * d + d, count: n * d)
                for j in 0..<d { dcls.data[j] += g.data[bi * (n + 1) * d + j] }
            }
            return [dtokens, dcls]
        }
    }

    /// The final token states after the blocks and final norm (token pool), [B, N + 1, D].
    /// attentionWeights: one [B, H, N + 1, N + 1] tensor per block to receive probabilities.
    public func forwardFeatures(_ images: Tensor, attentionWeights: [Tensor]? = nil) -> Variable {
        let x = blocks(embed(images), attentionWeights: attentionWeights)
        return config.pool == .token ? norm(x) : x
    }

    /// The pooled representation the head reads: [B, N + 1, D] -> [B, D].
    public func pooled(_ features: Variable) -> Variable {
        let (b, n) = (features.shape[0], features.shape[1])
        switch config.pool {
        case .token: return features.sliced(axis: 1, 0..<1).reshaped([b, config.dim])
        case .avg: return norm(features.sliced(axis: 1, 1..<n).mean(axis: 1))
        }
    }

    /// The head on a pooled representation: [B, D] -> [B, numClasses] (the representation
    /// itself when the model has no head).
    public func headOutput(_ pooled: Variable) -> Variable { head.map { $0(pooled) } ?? pooled }

    /// The pooled representation and the head: [B, N + 1, D] -> [B, numClasses].
    public func forwardHead(_ features: Variable) -> Variable { headOutput(pooled(features)) }

    /// The pooled representation the head reads, from images: [B, C, H, W] -> [B, D], the
    /// values of `pooled(forwardFeatures(images))`. With the token pool the last block
    /// computes the class token's output alone (`TransformerEncoder.firstTokens`), as
    /// nothing else reaches the head.
    public func pooledFeatures(_ images: Tensor) -> Variable {
        guard config.pool == .token, !blocks.blocks.isEmpty else { return pooled(forwardFeatures(images)) }
        return norm(blocks.firstTokens(embed(images))).reshaped([images.shape[0], config.dim])
    }

    /// images [B, C, H, W] -> logits [B, numClasses].
    public func callAsFunction(_ images: Tensor) -> Variable { headOutput(pooledFeatures(images)) }

    public var parameters: NamedParameters {
        scoped("patch_embed", patchEmbed) + [("cls_token", clsToken), ("pos_embed", posEmbed)]
            + (normPre.map { scoped("norm_pre", $0) } ?? []) + scoped("blocks", blocks)
            + scoped(config.pool == .token ? "norm" : "fc_norm", norm)
            + (head.map { scoped("head", $0) } ?? [])
    }
}
