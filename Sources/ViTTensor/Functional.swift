import Foundation

// Tensor-level neural-network functions over the kernels in Kernels.swift.

extension Tensor {
    /// Softmax along `axis` (torch.softmax).
    public func softmax(axis: Int = -1) -> Tensor {
        let axis = normalizedAxis(axis)
        if axis == rank - 1 {
            let out = Tensor(shape: shape)
            let n = shape[axis]
            softmaxForward(out.data, data, rows: n == 0 ? 0 : count / n, n: n)
            return out
        }
        // Move the axis last, apply, and move it back.
        var order = Array(0..<rank)
        order.remove(at: axis)
        order.append(axis)
        var inverse = [Int](repeating: 0, count: rank)
        for (i, a) in order.enumerated() { inverse[a] = i }
        return permuted(order).softmax(axis: -1).permuted(inverse)
    }

    /// GELU, exact (erf) by default.
    public func gelu(approximation: GELUApproximation = .none) -> Tensor {
        let out = Tensor(shape: shape)
        geluForward(out.data, data, n: count, approximation: approximation)
        return out
    }

    /// SiLU (swish, Elfwing et al. 2018; torch.nn.functional.silu): x sigmoid(x).
    public func silu() -> Tensor {
        let out = Tensor(shape: shape)
        for i in 0..<count { out.data[i] = data[i] * sigmoid(data[i]) }
        return out
    }

    /// LayerNorm over the last axis (torch.nn.functional.layer_norm); weight, bias: [C].
    public func layerNorm(weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
        let c = shape.last ?? 1
        precondition(weight == nil || weight!.shape == [c], "layerNorm weight \(weight!.shape) for width \(c)")
        precondition(bias == nil || bias!.shape == [c], "layerNorm bias \(bias!.shape) for width \(c)")
        precondition((weight == nil) == (bias == nil), "layerNorm needs both weight and bias, or neither")
        let out = Tensor(shape: shape)
        layerNormForward(
            out.data, nil, nil, data, weight?.data, bias?.data,
            rows: c == 0 ? 0 : count / c, c: c, eps: eps)
        return out
    }
}

/// Sinusoidal embeddings of (diffusion or flow) times, as DiT and GLIDE compute them:
/// for i < dim / 2, frequency f_i = maxPeriod^(-i / (dim / 2)); the row for t is
/// [cos(t f_0), ..., cos(t f_{h-1}), sin(t f_0), ..., sin(t f_{h-1})], with a zero last
/// column when dim is odd. times: B values -> [B, dim].
public func timestepEmbedding(_ times: [Float], dim: Int, maxPeriod: Float = 10_000) -> Tensor {
    let half = dim / 2
    let frequencies = (0..<half).map { Foundation.exp(-Foundation.log(maxPeriod) * Float($0) / Float(half)) }
    let out = Tensor(shape: [times.count, dim])
    for (b, t) in times.enumerated() {
        for (i, frequency) in frequencies.enumerated() {
            out.data[b * dim + i] = Foundation.cos(t * frequency)
            out.data[b * dim + half + i] = Foundation.sin(t * frequency)
        }
    }
    return out
}

/// 1 / (1 + e^-x).
@inline(__always)
func sigmoid(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }
