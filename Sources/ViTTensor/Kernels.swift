import Foundation

// Forward kernels over raw buffers with explicit shapes (llm.c style). The backward halves
// will stand beside them. Tensor-level wrappers are in Functional.swift. Rows (or elements)
// are split across threads; each is computed by one thread in a fixed order, so results
// do not depend on the thread count.

/// out, x: [rows, n]: softmax along each row of n, stable (the row maximum is subtracted).
func softmaxForward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, n: Int) {
    parallelChunks(rows, minimumPerChunk: max(1, 16_384 / max(n, 1))) { range in
        for r in range { softmaxRow(out + r * n, x + r * n, n: n) }
    }
}

/// dst, src: [n] (may be the same buffer): one row of softmax, on the calling thread.
@inline(__always)
func softmaxRow(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, n: Int) {
    let m = rowMaximum(src, n: n)
    if m == -.infinity {  // every entry masked: no distribution, as PyTorch (NaN)
        for i in 0..<n { dst[i] = .nan }
        return
    }
    mapRow(dst, src, n: n) { fastExp($0 - m) }
    let scale = 1 / rowSum(dst, n: n)
    mapRow(dst, dst, n: n) { $0 * scale }
}

/// The two forms of GELU (Hendrycks and Gimpel 2016): exact, x * Phi(x) with the normal
/// CDF through erf (PyTorch's default, HF "gelu"); and the tanh approximation (PyTorch
/// approximate="tanh", HF "gelu_new" / "gelu_pytorch_tanh").
public enum GELUApproximation: String, Sendable, Codable {
    case none, tanh
}

/// out, x: [n].
func geluForward(
    _ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, n: Int, approximation: GELUApproximation
) {
    parallelChunks(n, minimumPerChunk: 16_384) { range in
        geluRow(out + range.lowerBound, x + range.lowerBound, n: range.count, approximation: approximation)
    }
}

/// out, x: [n] (may be the same buffer), on the calling thread.
@inline(__always)
func geluRow(
    _ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, n: Int, approximation: GELUApproximation
) {
    switch approximation {
    case .none:
        mapRow(out, x, n: n, fastGELU)
    case .tanh:
        let k: Float = 0.797_884_560_802_865_4  // sqrt(2 / pi)
        for i in 0..<n {
            let v = x[i]
            out[i] = 0.5 * v * (1 + tanhf(k * (v + 0.044715 * v * v * v)))
        }
    }
}

/// out, x: [rows, c]; weight, bias: [c]; mean, rstd: [rows], kept for the backward pass.
/// Biased variance, as torch.nn.LayerNorm.
func layerNormForward(
    _ out: UnsafeMutablePointer<Float>, _ mean: UnsafeMutablePointer<Float>?,
    _ rstd: UnsafeMutablePointer<Float>?, _ x: UnsafePointer<Float>,
    _ weight: UnsafePointer<Float>?, _ bias: UnsafePointer<Float>?,
    rows: Int, c: Int, eps: Float
) {
    parallelChunks(rows, minimumPerChunk: max(1, 16_384 / max(c, 1))) { range in
        for r in range {
            let src = x + r * c, dst = out + r * c
            let m = rowSum(src, n: c) / Float(c)
            let v = rowSum(src, n: c, minus: m, squared: true) / Float(c)
            let s = 1 / (v + eps).squareRoot()
            if let weight, let bias {
                for i in 0..<c { dst[i] = (src[i] - m) * s * weight[i] + bias[i] }
            } else {
                for i in 0..<c { dst[i] = (src[i] - m) * s }
            }
            mean?[r] = m
            rstd?[r] = s
        }
    }
}
