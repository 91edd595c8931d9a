import Foundation

// Tensor-level neural-network functions over the kernels in Kernels.swift.

extension Tensor {
    /// Softmax along `axis` (torch.softmax).
    public func softmax(axis: Int = -1) -> Tensor {
        let axis = normalizedAxis(axis)
        if axis == rank - 1 {
            let out = Tensor(uninitializedShape: shape)
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
        let out = Tensor(uninitializedShape: shape)
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
        let out = Tensor(uninitializedShape: shape)
        layerNormForward(
            out.data, nil, nil, data, weight?.data, bias?.data,
            rows: c == 0 ? 0 : count / c, c: c, eps: eps)
        return out
    }
}

/// 1 / (1 + e^-x).
@inline(__always)
func sigmoid(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }
