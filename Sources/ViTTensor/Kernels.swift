import CKernels
import Foundation

// Kernel pairs over raw buffers with explicit shapes (llm.c style): each forward with its
// backward below it. Tensor-level wrappers are in Functional.swift, the Variable operations
// that call the backward halves in DifferentiableOps.swift. Rows (or elements)
// are split across threads; each is computed by one thread in a fixed order, so results
// do not depend on the thread count.

/// out, x: [rows, n]: softmax along each row of n, stable (the row maximum is subtracted).
func softmaxForward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, n: Int) {
    parallelChunks(rows, minimumPerChunk: itemsPerChunk(width: n)) { range in
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
    mapLanes(dst, src, n: n, avx512: Int32(CK_EXP_SHIFTED), shift: m) { fastExp($0 - m) }
    let scale = 1 / rowSum(dst, n: n)
    mapLanes(dst, dst, n: n) { $0 * scale }
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
    parallelChunks(n, minimumPerChunk: elementsPerChunk) { range in
        geluRow(out + range.lowerBound, x + range.lowerBound, n: range.count, approximation: approximation)
    }
}

/// out, x: [n] (may be the same buffer), on the calling thread.
@inline(__always)
func geluRow(
    _ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, n: Int, approximation: GELUApproximation
) {
    switch approximation {
    case .none: mapLanes(out, x, n: n, avx512: Int32(CK_GELU), fastGELU)
    case .tanh: mapLanes(out, x, n: n, avx512: Int32(CK_TANH_GELU), fastTanhGELU)
    }
}

/// out, x: [batch, n, c]; shift, scale: [batch, c]: out = (x + x * scale) + shift, the
/// adaLN modulation in one pass, each element rounded as the three operations round it.
func modulateForward(
    _ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, shift: UnsafePointer<Float>,
    scale: UnsafePointer<Float>, batch: Int, n: Int, c: Int
) {
    parallelChunks(batch * n, minimumPerChunk: itemsPerChunk(width: c)) { rows in
        for r in rows {
            let (src, dst) = (x + r * c, out + r * c)
            let (sh, sc) = (shift + (r / n) * c, scale + (r / n) * c)
            for j in 0..<c { dst[j] = (src[j] + src[j] * sc[j]) + sh[j] }
        }
    }
}

/// out, x, y: [batch, n, c]; gate: [batch, c]: out = x + gate * y, adaLN-Zero's gated
/// residual in one pass, each element rounded as the two operations round it.
func gatedSumForward(
    _ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, gate: UnsafePointer<Float>,
    _ y: UnsafePointer<Float>, batch: Int, n: Int, c: Int
) {
    parallelChunks(batch * n, minimumPerChunk: itemsPerChunk(width: c)) { rows in
        for r in rows {
            let (xr, yr, dst, gr) = (x + r * c, y + r * c, out + r * c, gate + (r / n) * c)
            for j in 0..<c { dst[j] = xr[j] + gr[j] * yr[j] }
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
    parallelChunks(rows, minimumPerChunk: itemsPerChunk(width: c)) { range in
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

/// dx, x, dout: [n]. dx = dout * GELU'(x), overwritten.
/// Exact: GELU'(x) = Phi(x) + x phi(x); the tanh form: `tanhGELUDerivative`.
func geluBackward(
    _ dx: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ dout: UnsafePointer<Float>, n: Int,
    approximation: GELUApproximation
) {
    parallelChunks(n, minimumPerChunk: elementsPerChunk) { range in
        // GELU' first, on vector lanes, then the product with dout, a block at a time so
        // that the product reads GELU' from L1.
        for start in stride(from: range.lowerBound, to: range.upperBound, by: 4_096) {
            let count = min(4_096, range.upperBound - start)
            let (d, v, g) = (dx + start, x + start, dout + start)
            switch approximation {
            case .none: mapLanes(d, v, n: count, avx512: Int32(CK_GELU_DERIVATIVE), geluDerivative)
            case .tanh: mapLanes(d, v, n: count, avx512: Int32(CK_TANH_GELU_DERIVATIVE), tanhGELUDerivative)
            }
            for i in 0..<count { d[i] *= g[i] }
        }
    }
}

/// Backward of `layerNormForward` (llm.c's layernorm_backward, with the weight and bias
/// gradients summed in a fixed order, so that they do not depend on the thread count).
/// dx, dout, x: [rows, c]; dweight, dbias, weight: [c]; mean, rstd: [rows] from the forward.
/// With xhat = (x - mean) rstd and dnorm = dout * weight:
/// dx = rstd (dnorm - mean(dnorm) - xhat mean(dnorm xhat)); dweight = sum dout xhat; dbias = sum dout.
/// The column sums are taken per block of `layerNormRowsPerBlock` rows while the block's dx is
/// formed (rows in order within a block), then over the blocks in order: one pass over dout
/// and x instead of a second one down the columns.
func layerNormBackward(
    _ dx: UnsafeMutablePointer<Float>, _ dweight: UnsafeMutablePointer<Float>, _ dbias: UnsafeMutablePointer<Float>,
    _ dout: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
    _ mean: UnsafePointer<Float>, _ rstd: UnsafePointer<Float>, rows: Int, c: Int
) {
    let blocks = (rows + layerNormRowsPerBlock - 1) / layerNormRowsPerBlock
    // Per block: its sums of dout xhat, then of dout, c each.
    let partial = UnsafeMutablePointer<Float>.allocate(capacity: max(1, blocks * 2 * c))
    defer { partial.deallocate() }
    let minimumBlocks = max(1, itemsPerChunk(width: c) / layerNormRowsPerBlock)
    parallelChunks(blocks, minimumPerChunk: minimumBlocks) { range in
        for block in range {
            let (blockWeight, blockBias) = (partial + block * 2 * c, partial + block * 2 * c + c)
            blockWeight.update(repeating: 0, count: 2 * c)
            for r in (block * layerNormRowsPerBlock)..<min(rows, (block + 1) * layerNormRowsPerBlock) {
                let (g, src, dst) = (dout + r * c, x + r * c, dx + r * c)
                let (m, s) = (mean[r], rstd[r])
                // The two row sums on eight lanes (eight chains of additions instead of one),
                // the lanes added at the end, then the elements past the last eight.
                var normLanes = Lanes(repeating: 0), normXhatLanes = Lanes(repeating: 0)
                let (meanLanes, rstdLanes) = (Lanes(repeating: m), Lanes(repeating: s))
                var i = 0
                while i + 8 <= c {
                    let dnorm = loadLanes(g + i) * loadLanes(weight + i)
                    normLanes += dnorm
                    normXhatLanes += dnorm * (loadLanes(src + i) - meanLanes) * rstdLanes
                    i += 8
                }
                var meanNorm = normLanes.sum(), meanNormXhat = normXhatLanes.sum()
                while i < c {
                    let dnorm = g[i] * weight[i]
                    meanNorm += dnorm
                    meanNormXhat += dnorm * (src[i] - m) * s
                    i += 1
                }
                meanNorm /= Float(c)
                meanNormXhat /= Float(c)
                for i in 0..<c {
                    let xhat = (src[i] - m) * s
                    dst[i] = s * (g[i] * weight[i] - meanNorm - xhat * meanNormXhat)
                    blockWeight[i] += g[i] * xhat
                    blockBias[i] += g[i]
                }
            }
        }
    }
    dweight.update(repeating: 0, count: c)
    dbias.update(repeating: 0, count: c)
    for block in 0..<blocks {
        let (blockWeight, blockBias) = (partial + block * 2 * c, partial + block * 2 * c + c)
        for i in 0..<c {
            dweight[i] += blockWeight[i]
            dbias[i] += blockBias[i]
        }
    }
}

/// Rows per block of LayerNorm backward's column sums.
let layerNormRowsPerBlock = 64

/// probabilities, logits: [rows, classes]. Returns the mean over rows of the cross-entropy
/// against the smoothed target (1 - smoothing) onehot(label) + smoothing / classes; the
/// softmax is kept for the backward pass. Sums in Double.
func softmaxCrossEntropyForward(
    _ probabilities: UnsafeMutablePointer<Float>, _ logits: UnsafePointer<Float>, _ labels: [Int],
    rows: Int, classes: Int, smoothing: Float
) -> Float {
    var total = 0.0
    for r in 0..<rows {
        let (src, p) = (logits + r * classes, probabilities + r * classes)
        precondition(labels[r] >= 0 && labels[r] < classes, "label \(labels[r]) outside 0..<\(classes)")
        let m = rowMaximum(src, n: classes)
        var sum = 0.0
        for j in 0..<classes { sum += Foundation.exp(Double(src[j] - m)) }
        let logSum = Double(m) + Foundation.log(sum)
        var meanNegLog = 0.0
        for j in 0..<classes {
            p[j] = Float(Foundation.exp(Double(src[j]) - logSum))
            meanNegLog += logSum - Double(src[j])
        }
        meanNegLog /= Double(classes)
        total += Double(1 - smoothing) * (logSum - Double(src[labels[r]])) + Double(smoothing) * meanNegLog
    }
    return Float(total / Double(rows))
}

/// dlogits = scale (probabilities - target) / rows, [rows, classes].
func softmaxCrossEntropyBackward(
    _ dlogits: UnsafeMutablePointer<Float>, _ probabilities: UnsafePointer<Float>, _ labels: [Int],
    rows: Int, classes: Int, smoothing: Float, scale: Float
) {
    let factor = scale / Float(rows), spread = smoothing / Float(classes)
    for r in 0..<rows {
        for j in 0..<classes {
            let target = (j == labels[r] ? 1 - smoothing : 0) + spread
            dlogits[r * classes + j] = factor * (probabilities[r * classes + j] - target)
        }
    }
}
