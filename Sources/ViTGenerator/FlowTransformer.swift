import ViTCore
import ViTTensor

/// The sizes of a flow transformer.
public struct FlowTransformerConfig: Sendable, Equatable, Codable {
    public var imageSize: Int
    public var patchSize: Int
    public var channels: Int
    public var dim: Int
    public var depth: Int
    public var numHeads: Int
    public var hiddenDim: Int
    /// Width of the text encoder's token states the blocks attend to.
    public var contextDim: Int
    /// Width of the sinusoidal time embedding fed to the time MLP.
    public var frequencyDim: Int

    public init(
        imageSize: Int, patchSize: Int, channels: Int = 3, dim: Int, depth: Int, numHeads: Int, hiddenDim: Int,
        contextDim: Int, frequencyDim: Int = 256
    ) {
        self.imageSize = imageSize
        self.patchSize = patchSize
        self.channels = channels
        self.dim = dim
        self.depth = depth
        self.numHeads = numHeads
        self.hiddenDim = hiddenDim
        self.contextDim = contextDim
        self.frequencyDim = frequencyDim
    }

    /// Patches along each side.
    public var gridSize: Int { imageSize / patchSize }

    /// Checks that the sizes are consistent; the message says what is wrong.
    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw ParameterError("config: \(message)") } }
        try checkPatchSizes(imageSize: imageSize, patchSize: patchSize, dim: dim, numHeads: numHeads)
        try check(
            depth >= 0 && hiddenDim > 0 && channels > 0 && contextDim > 0 && frequencyDim > 1, "sizes must be positive")
        try check(imageSize <= 1024 && dim <= 8192 && depth <= 256, "sizes beyond what this tool runs")
    }
}

/// One block: adaLN-Zero-modulated self-attention and MLP around a cross-attention to the
/// text (DiT, Peebles and Xie 2023, with PixArt-alpha's cross-attention, Chen et al. 2023).
/// Keys: "adaLN_modulation.linear", "attn", "cross_norm", "cross_attn", "mlp".
public struct FlowBlock: Layer {
    public let modulation: Modulation, attn: Attention, crossNorm: LayerNorm, crossAttn: CrossAttention, mlp: MLP
    let eps: Float = 1e-6

    public init(_ source: ParameterSource, config c: FlowTransformerConfig) throws {
        modulation = try Modulation(source.scoped("adaLN_modulation"), conditionDim: c.dim, dim: c.dim, chunks: 6)
        attn = try Attention(source.scoped("attn"), dim: c.dim, numHeads: c.numHeads)
        crossNorm = try LayerNorm(source.scoped("cross_norm"), dim: c.dim, eps: eps)
        crossAttn = try CrossAttention(
            source.scoped("cross_attn"), dim: c.dim, contextDim: c.contextDim, numHeads: c.numHeads)
        mlp = try MLP(source.scoped("mlp"), dim: c.dim, hiddenDim: c.hiddenDim, activation: .tanh)
    }

    /// x [B, N, C], condition [B, C], context [B, M, D], mask [B, 1, M] -> [B, N, C].
    public func callAsFunction(_ x: Variable, condition: Variable, context: Variable, mask: Tensor?) -> Variable {
        callAsFunction(x, condition: condition, contextKeysValues: crossAttn.keysValues(context), mask: mask)
    }

    /// The same with the cross-attention's keys and values of the context computed ahead
    /// (`crossAttn.keysValues`, [B, M, 2C]).
    public func callAsFunction(
        _ x: Variable, condition: Variable, contextKeysValues: Variable, mask: Tensor?
    ) -> Variable {
        func plainNorm(_ x: Variable) -> Variable { layerNorm(x, weight: nil, bias: nil, eps: eps) }
        let m = modulation(condition)  // shift, scale, gate for attention; the same for the MLP
        var x = gatedSum(x, gate: m[2], attn(modulate(plainNorm(x), shift: m[0], scale: m[1])))
        x = crossAttn(crossNorm(x), keysValues: contextKeysValues, mask: mask, residual: x)
        return gatedSum(x, gate: m[5], mlp(modulate(plainNorm(x), shift: m[3], scale: m[4])))
    }

    public var parameters: NamedParameters {
        scoped("adaLN_modulation", modulation) + scoped("attn", attn) + scoped("cross_norm", crossNorm)
            + scoped("cross_attn", crossAttn) + scoped("mlp", mlp)
    }
}

/// A transformer that predicts the flow velocity of a noisy image at time t given the
/// token states of a caption: images [B, C, H, W], times B values, context [B, M, D] ->
/// velocities [B, C, H, W]. Keys: "x_embedder", "pos_embed" [1, N, C],
/// "t_embedder.mlp.0" / ".2", "blocks.N.*", "final_layer.adaLN_modulation.linear",
/// "final_layer.linear" (zero at the start, so the first prediction is zero).
public struct FlowTransformer: Layer {
    public let config: FlowTransformerConfig
    public let xEmbedder: Linear, posEmbed: Variable, timeFirst: Linear, timeSecond: Linear
    public let blocks: [FlowBlock]
    public let finalModulation: Modulation, finalLinear: Linear

    public init(_ source: ParameterSource, config c: FlowTransformerConfig) throws {
        try c.validate()
        config = c
        let patchValues = c.channels * c.patchSize * c.patchSize
        xEmbedder = try Linear(source.scoped("x_embedder"), inFeatures: patchValues, outFeatures: c.dim)
        posEmbed = try source.parameter(
            "pos_embed", shape: [1, c.gridSize * c.gridSize, c.dim], initializer: .truncatedNormal(std: 0.02))
        timeFirst = try Linear(source.scoped("t_embedder.mlp.0"), inFeatures: c.frequencyDim, outFeatures: c.dim)
        timeSecond = try Linear(source.scoped("t_embedder.mlp.2"), inFeatures: c.dim, outFeatures: c.dim)
        blocks = try (0..<c.depth).map { try FlowBlock(source.scoped("blocks.\($0)"), config: c) }
        finalModulation = try Modulation(
            source.scoped("final_layer.adaLN_modulation"), conditionDim: c.dim, dim: c.dim, chunks: 2)
        finalLinear = try Linear(
            source.scoped("final_layer.linear"), inFeatures: c.dim, outFeatures: patchValues, initializer: .zeros)
    }

    /// images [B, C, H, W], times B values in [0, 1], context [B, M, D] with an additive
    /// mask [B, 1, M] (or nil) -> velocities [B, C, H, W].
    public func callAsFunction(_ images: Tensor, times: [Float], context: Variable, mask: Tensor? = nil) -> Variable {
        callAsFunction(images, times: times, contextKeysValues: contextKeysValues(context), mask: mask)
    }

    /// Each block's cross-attention keys and values of a context [B, M, D] (depth values
    /// [B, M, 2C]): what every call with that context shares, for a sampler to compute once.
    public func contextKeysValues(_ context: Variable) -> [Variable] {
        blocks.map { $0.crossAttn.keysValues(context) }
    }

    /// The same velocities with the context's keys and values computed ahead
    /// (`contextKeysValues`).
    public func callAsFunction(
        _ images: Tensor, times: [Float], contextKeysValues: [Variable], mask: Tensor? = nil
    ) -> Variable {
        precondition(contextKeysValues.count == blocks.count, "keys and values for \(contextKeysValues.count) blocks")
        // The time embedding: sinusoidal features of 1000 t through Linear, SiLU, Linear.
        let features = timestepEmbedding(times.map { $0 * 1000 }, dim: config.frequencyDim)  // [B, frequencyDim]
        let condition = timeSecond(timeFirst(Variable(features)).silu())  // [B, C]
        var x = xEmbedder(Variable(patchify(images, patchSize: config.patchSize))) + posEmbed  // [B, N, C]
        for (block, keysValues) in zip(blocks, contextKeysValues) {
            x = block(x, condition: condition, contextKeysValues: keysValues, mask: mask)
        }
        let m = finalModulation(condition)
        let normed = layerNorm(x, weight: nil, bias: nil, eps: 1e-6)
        let patches = finalLinear(modulate(normed, shift: m[0], scale: m[1]))  // [B, N, C p p]
        return unpatchify(patches, channels: config.channels, patchSize: config.patchSize, gridSize: config.gridSize)
    }

    public var parameters: NamedParameters {
        scoped("x_embedder", xEmbedder) + [("pos_embed", posEmbed)] + scoped("t_embedder.mlp.0", timeFirst)
            + scoped("t_embedder.mlp.2", timeSecond)
            + blocks.enumerated().flatMap { scoped("blocks.\($0.offset)", $0.element) }
            + scoped("final_layer.adaLN_modulation", finalModulation) + scoped("final_layer.linear", finalLinear)
    }
}
