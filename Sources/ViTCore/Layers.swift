import ViTTensor

/// A fully connected layer (torch.nn.Linear): [..., inFeatures] -> [..., outFeatures].
/// Keys: "weight" [out, in], "bias" [out].
public struct Linear: Layer {
    public let weight: Tensor
    public let bias: Tensor?

    public init(weight: Tensor, bias: Tensor?) {
        self.weight = weight
        self.bias = bias
    }

    public init(_ source: ParameterSource, inFeatures: Int, outFeatures: Int, bias: Bool = true) throws {
        weight = try source.tensor(
            "weight", shape: [outFeatures, inFeatures], initializer: .truncatedNormal(std: 0.02))
        self.bias = bias ? try source.tensor("bias", shape: [outFeatures], initializer: .zeros) : nil
    }

    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    /// x: [..., in] -> [..., out]; residual: [..., out], added to the result.
    public func callAsFunction(_ x: Tensor, residual: Tensor? = nil) -> Tensor {
        ViTTensor.linear(x, weight: weight, bias: bias, residual: residual)
    }

    /// activation(x weight^T + bias), fused into the product.
    public func callAsFunction(_ x: Tensor, activation: GELUApproximation) -> Tensor {
        ViTTensor.linear(x, weight: weight, bias: bias, activation: activation)
    }

    public var parameters: NamedParameters {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }
}

/// Layer normalization over the last axis (Ba et al. 2016; torch.nn.LayerNorm):
/// [..., dim] -> [..., dim]. Keys: "weight", "bias" [dim].
public struct LayerNorm: Layer {
    public let weight: Tensor
    public let bias: Tensor
    public let eps: Float

    public init(_ source: ParameterSource, dim: Int, eps: Float) throws {
        weight = try source.tensor("weight", shape: [dim], initializer: .ones)
        bias = try source.tensor("bias", shape: [dim], initializer: .zeros)
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.layerNorm(weight: weight, bias: bias, eps: eps) }

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
    public func callAsFunction(_ x: Tensor, residual: Tensor? = nil) -> Tensor {
        fc2(fc1(x, activation: activation), residual: residual)
    }

    public var parameters: NamedParameters { scoped("fc1", fc1) + scoped("fc2", fc2) }
}
