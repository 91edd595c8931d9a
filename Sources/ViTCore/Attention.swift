import ViTTensor

/// Multi-head self-attention (timm `Attention`): fused qkv projection, then proj.
/// x: [B, N, C] -> [B, N, C]. Keys: "qkv.{weight,bias}" [3C, C], "proj.{weight,bias}".
public struct Attention: Layer {
    public let qkv: Linear, proj: Linear  // C -> 3C, C -> C
    public let numHeads: Int

    public init(_ source: ParameterSource, dim: Int, numHeads: Int, qkvBias: Bool = true) throws {
        precondition(dim % numHeads == 0, "width \(dim) is not divisible by \(numHeads) heads")
        qkv = try Linear(source.scoped("qkv"), inFeatures: dim, outFeatures: 3 * dim, bias: qkvBias)
        proj = try Linear(source.scoped("proj"), inFeatures: dim, outFeatures: dim)
        self.numHeads = numHeads
    }

    /// mask: additive, broadcastable to [B, N, N] (0 keeps, -1e30 drops); nil for the ViT.
    /// weights: when given, receives the attention probabilities [B, H, N, N].
    /// residual: [B, N, C], added to the output (inside the projection when not recording).
    public func callAsFunction(
        _ x: Variable, mask: Tensor? = nil, weights: Tensor? = nil, residual: Variable? = nil
    ) -> Variable {
        let y = multiHeadSelfAttention(qkv: qkv(x), numHeads: numHeads, mask: mask, weights: weights)  // [B, N, C]
        return proj(y, residual: residual)
    }

    /// The outputs of the first `count` tokens only, attending to every token:
    /// x [B, N, C] -> [B, count, C], the rows `callAsFunction` gives there.
    /// residual: [B, count, C], added to the output.
    public func firstTokens(_ x: Variable, count: Int, mask: Tensor? = nil, residual: Variable? = nil) -> Variable {
        let y = multiHeadSelfAttention(qkv: qkv(x), numHeads: numHeads, mask: mask, queries: count)
        return proj(y, residual: residual)
    }

    public var parameters: NamedParameters { scoped("qkv", qkv) + scoped("proj", proj) }
}

/// Multi-head cross-attention: queries from x [B, N, C], keys and values from a context
/// [B, M, D] -> [B, N, C]. Keys: "q" [C, C], "kv" [2C, D], "proj" [C, C].
public struct CrossAttention: Layer {
    public let q: Linear, kv: Linear, proj: Linear
    public let numHeads: Int

    public init(_ source: ParameterSource, dim: Int, contextDim: Int, numHeads: Int) throws {
        precondition(dim % numHeads == 0, "width \(dim) is not divisible by \(numHeads) heads")
        q = try Linear(source.scoped("q"), inFeatures: dim, outFeatures: dim)
        kv = try Linear(source.scoped("kv"), inFeatures: contextDim, outFeatures: 2 * dim)
        proj = try Linear(source.scoped("proj"), inFeatures: dim, outFeatures: dim)
        self.numHeads = numHeads
    }

    /// mask: additive, broadcastable to [B, N, M], e.g. [B, 1, M] for context padding.
    /// residual: [B, N, C], added to the output.
    public func callAsFunction(
        _ x: Variable, context: Variable, mask: Tensor? = nil, residual: Variable? = nil
    ) -> Variable {
        callAsFunction(x, keysValues: keysValues(context), mask: mask, residual: residual)
    }

    /// The keys and values of a context [B, M, contextDim] -> [B, M, 2C]: the same for
    /// every call with that context, so a caller that attends to one context many times
    /// (a sampler's steps) computes them once.
    public func keysValues(_ context: Variable) -> Variable { kv(context) }

    /// The same attention with the context's keys and values computed ahead
    /// (`keysValues`): x [B, N, C], keysValues [B, M, 2C] -> [B, N, C].
    public func callAsFunction(
        _ x: Variable, keysValues: Variable, mask: Tensor? = nil, residual: Variable? = nil
    ) -> Variable {
        proj(multiHeadCrossAttention(q: q(x), kv: keysValues, numHeads: numHeads, mask: mask), residual: residual)
    }

    public var parameters: NamedParameters { scoped("q", q) + scoped("kv", kv) + scoped("proj", proj) }
}
