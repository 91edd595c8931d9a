import ViTTensor

/// A fully connected layer (torch.nn.Linear): [..., inFeatures] -> [..., outFeatures].
/// Keys: "weight" [out, in], "bias" [out].
public struct Linear: Layer {
    public let weight: Variable
    public let bias: Variable?

    public init(weight: Variable, bias: Variable?) {
        self.weight = weight
        self.bias = bias
    }

    /// `initializer` is used for fresh weights (timm's truncated normal 0.02 by default).
    public init(
        _ source: ParameterSource, inFeatures: Int, outFeatures: Int, bias: Bool = true,
        initializer: Initializer = .truncatedNormal(std: 0.02)
    ) throws {
        weight = try source.parameter("weight", shape: [outFeatures, inFeatures], initializer: initializer)
        self.bias = bias ? try source.parameter("bias", shape: [outFeatures], initializer: .zeros) : nil
    }

    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    /// x: [..., in] -> residual + activation(x weight^T + bias), [..., out]; residual
    /// [..., out]. Without gradient recording both are fused into the product.
    public func callAsFunction(
        _ x: Variable, activation: GELUApproximation? = nil, residual: Variable? = nil
    ) -> Variable {
        linear(x, weight: weight, bias: bias, activation: activation, residual: residual)
    }

    public var parameters: NamedParameters {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }
}

/// Layer normalization over the last axis (Ba et al. 2016; torch.nn.LayerNorm):
/// [..., dim] -> [..., dim]. Keys: "weight", "bias" [dim].
public struct LayerNorm: Layer {
    public let weight: Variable
    public let bias: Variable
    public let eps: Float

    public init(_ source: ParameterSource, dim: Int, eps: Float) throws {
        weight = try source.parameter("weight", shape: [dim], initializer: .ones)
        bias = try source.parameter("bias", shape: [dim], initializer: .zeros)
        self.eps = eps
    }

    /// x: [..., dim] -> [..., dim].
    public func callAsFunction(_ x: Variable) -> Variable { layerNorm(x, weight: weight, bias: bias, eps: eps) }

    public var parameters: NamedParameters { [("weight", weight), ("bias", bias)] }
}

/// The transformer's feed-forward network (timm `Mlp`): fc1, GELU, fc2.
/// [..., dim] -> [..., dim]. Keys: "fc1.{weight,bias}", "fc2.{weight,bias}".
public struct MLP: Layer {
    public let fc1: Linear, fc2: Linear  // dim -> hiddenDim, hiddenDim -> dim
    public let activation: GELUApproximation

    public init(_ source: ParameterSource, dim: Int, hiddenDim: Int, activation: GELUApproximation = .none) throws {
        fc1 = try Linear(source.scoped("fc1"), inFeatures: dim, outFeatures: hiddenDim)
        fc2 = try Linear(source.scoped("fc2"), inFeatures: hiddenDim, outFeatures: dim)
        self.activation = activation
    }

    /// x: [..., dim] -> [..., dim]; residual: [..., dim], added to the result.
    public func callAsFunction(_ x: Variable, residual: Variable? = nil) -> Variable {
        fc2(fc1(x, activation: activation), residual: residual)
    }

    public var parameters: NamedParameters { scoped("fc1", fc1) + scoped("fc2", fc2) }
}

/// Adaptive modulation from a conditioning vector, as DiT's adaLN-Zero (Peebles and Xie
/// 2023, "Scalable Diffusion Models with Transformers"): chunks = Linear(SiLU(c)) split in
/// `chunks` parts of width `dim`, each [B, 1, dim] to broadcast over tokens; the linear
/// layer starts at zero so that a modulated block starts as the identity.
/// c: [B, conditionDim]. Keys: "linear.{weight,bias}" [chunks * dim, conditionDim].
public struct Modulation: Layer {
    public let linear: Linear
    public let chunks: Int

    public init(_ source: ParameterSource, conditionDim: Int, dim: Int, chunks: Int) throws {
        linear = try Linear(
            source.scoped("linear"), inFeatures: conditionDim, outFeatures: chunks * dim, initializer: .zeros)
        self.chunks = chunks
    }

    /// c: [B, conditionDim] -> `chunks` values [B, 1, dim].
    public func callAsFunction(_ c: Variable) -> [Variable] {
        let all = linear(c.silu())
        let (b, dim) = (c.shape[0], all.shape[1] / chunks)
        return (0..<chunks).map { all.sliced(axis: 1, ($0 * dim)..<(($0 + 1) * dim)).reshaped([b, 1, dim]) }
    }

    public var parameters: NamedParameters { scoped("linear", linear) }
}
