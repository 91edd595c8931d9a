import Foundation

// Forward kernels over raw buffers with explicit shapes (llm.c style). The backward halves
// will stand beside them. Tensor-level wrappers are in Functional.swift. Rows (or elements)
// are split across threads; each is computed by one thread in a fixed order, so results
// do not depend on the thread count.

/// out, x: [rows, n]: softmax along each row of n, stable (the row maximum is subtracted).
func softmaxForward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, n: Int) {
    parallelChunks(rows, minimumPerChunk: max(1, 16_384 / max(n, 1))) { range in
        for r in range {
            let src = x + r * n, dst = out + r * n
            var m = -Float.infinity
            for i in 0..<n { m = max(m, src[i]) }
            var sum: Float = 0
            for i in 0..<n {
                let e = expf(src[i] - m)
                dst[i] = e
                sum += e
            }
            let scale = 1 / sum
            for i in 0..<n { dst[i] *= scale }
        }
    }
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
        switch approximation {
        case .none:
            let invSqrt2: Float = 0.707_106_781_186_547_52
            for i in range { out[i] = 0.5 * x[i] * (1 + erff(x[i] * invSqrt2)) }
        case .tanh:
            let k: Float = 0.797_884_560_802_865_4  // sqrt(2 / pi)
            for i in range {
                let v = x[i]
                out[i] = 0.5 * v * (1 + tanhf(k * (v + 0.044715 * v * v * v)))
            }
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
            var m: Float = 0
            for i in 0..<c { m += src[i] }
            m /= Float(c)
            var v: Float = 0
            for i in 0..<c {
                let d = src[i] - m
                v += d * d
            }
            v /= Float(c)
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
