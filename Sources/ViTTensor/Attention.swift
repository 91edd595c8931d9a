import Foundation

// Multi-head scaled dot-product attention (Vaswani et al. 2017, section 3.2) computed on
// the projections where they lie: heads are column blocks of the [B, N, C] rows, so no
// permute or copy is needed; each head is two strided products and a row softmax.

/// Where one operand of attention lives: element (b, i, h, d) is at
/// `base[b * batchStride + i * rowStride + h * headDim + d]`.
struct AttentionOperand {
    let base: UnsafePointer<Float>
    let batchStride: Int
    let rowStride: Int

    /// The columns from `column` on of a [B, R, W] tensor (q, k or v inside fused projections).
    init(_ t: Tensor, column: Int) {
        (base, batchStride, rowStride) = (UnsafePointer(t.data + column), t.shape[1] * t.shape[2], t.shape[2])
    }
}

/// The fewest (image, head) tasks worth a thread: about a quarter of a million multiply-adds.
func attentionTasksPerChunk(n: Int, m: Int, headDim: Int) -> Int { max(1, 250_000 / max(n * m * headDim, 1)) }

/// out[b, i, h * headDim + d] = sum_j softmax_j(q_bih . k_bjh * scale + mask[b, i, j]) v_bjh[d].
/// q: [B, N, ...], k and v: [B, M, ...], out: [B, N, outRowStride]; mask additive, read at
/// `mask[b * maskBatchStride + i * maskRowStride + j]`. `weights`, when given, receives the
/// attention probabilities [B, H, N, M].
func attentionForward(
    out: UnsafeMutablePointer<Float>, outRowStride: Int, q: AttentionOperand, k: AttentionOperand,
    v: AttentionOperand, batch: Int, heads: Int, n: Int, m: Int, headDim: Int,
    mask: UnsafePointer<Float>?, maskBatchStride: Int, maskRowStride: Int,
    weights: UnsafeMutablePointer<Float>?
) {
    let scale = 1 / Float(headDim).squareRoot()
    // One task per (batch, head); each runs its products on one thread.
    parallelChunks(batch * heads, minimumPerChunk: attentionTasksPerChunk(n: n, m: m, headDim: headDim)) { tasks in
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: n * m)
        defer { scores.deallocate() }
        for task in tasks {
            let (b, h) = (task / heads, task % heads)
            let offset = h * headDim
            // S = Q K^T * scale: [N, hd] x [hd, M]
            serialProduct(
                transposeA: false, transposeB: true, m: n, n: m, k: headDim, alpha: scale,
                q.base + b * q.batchStride + offset, lda: q.rowStride,
                k.base + b * k.batchStride + offset, ldb: k.rowStride, scores, ldc: m)
            if let mask {
                for i in 0..<n {
                    let row = scores + i * m, maskRow = mask + b * maskBatchStride + i * maskRowStride
                    for j in 0..<m { row[j] += maskRow[j] }
                }
            }
            let probabilities = weights.map { $0 + (task * n * m) } ?? scores
            for i in 0..<n { softmaxRow(probabilities + i * m, scores + i * m, n: m) }
            // out_bh = P V: [N, M] x [M, hd], written into the head's column block.
            serialProduct(
                transposeA: false, transposeB: false, m: n, n: headDim, k: m,
                probabilities, lda: m, v.base + b * v.batchStride + offset, ldb: v.rowStride,
                out + b * n * outRowStride + offset, ldc: outRowStride)
        }
    }
}

/// Mask strides for an additive mask of shape [M], [N, M], [1 or B, N, M] or [B, 1, M].
private func maskStrides(_ mask: Tensor?, batch: Int, n: Int, m: Int) -> (Int, Int) {
    guard let mask else { return (0, 0) }
    let shape = Array(repeating: 1, count: max(0, 3 - mask.rank)) + mask.shape
    precondition(
        shape.count == 3 && shape[2] == m && (shape[1] == n || shape[1] == 1) && (shape[0] == batch || shape[0] == 1),
        "attention mask \(mask.shape) does not broadcast to [\(batch), \(n), \(m)]")
    return (shape[0] == 1 ? 0 : shape[1] * m, shape[1] == 1 ? 0 : m)
}

/// Self-attention from fused projections: qkv [B, N, 3C] (q, k, v blocks of C) ->
/// [B, Q, C], the outputs of the first Q = `queries` tokens (all N when nil; every token's
/// keys and values are read either way). mask: additive, broadcastable to [B, N, N] (rows
/// 0..<Q read). `weights` receives the probabilities [B, H, Q, N] when given.
public func multiHeadSelfAttention(
    qkv: Tensor, numHeads: Int, mask: Tensor? = nil, weights: Tensor? = nil, queries: Int? = nil
) -> Tensor {
    precondition(qkv.rank == 3 && qkv.shape[2] % (3 * numHeads) == 0, "qkv \(qkv.shape) for \(numHeads) heads")
    let (b, n, c) = (qkv.shape[0], qkv.shape[1], qkv.shape[2] / 3)
    let rows = queries ?? n
    precondition(rows >= 0 && rows <= n, "\(rows) queries of \(n) tokens")
    let out = Tensor(uninitializedShape: [b, rows, c])
    let (mb, mr) = maskStrides(mask, batch: b, n: n, m: n)
    precondition(weights == nil || weights!.shape == [b, numHeads, rows, n], "weights must be [B, H, Q, N]")
    attentionForward(
        out: out.data, outRowStride: c, q: AttentionOperand(qkv, column: 0), k: AttentionOperand(qkv, column: c),
        v: AttentionOperand(qkv, column: 2 * c),
        batch: b, heads: numHeads, n: rows, m: n, headDim: c / numHeads,
        mask: mask.map { UnsafePointer($0.data) }, maskBatchStride: mb, maskRowStride: mr,
        weights: weights?.data)
    return out
}

/// Cross-attention: q [B, N, C] attends to kv [B, M, 2C] (k, v blocks of C) -> [B, N, C].
/// `weights`, when given, receives the attention probabilities [B, H, N, M].
public func multiHeadCrossAttention(
    q: Tensor, kv: Tensor, numHeads: Int, mask: Tensor? = nil, weights: Tensor? = nil
) -> Tensor {
    precondition(
        q.rank == 3 && kv.rank == 3 && kv.shape[0] == q.shape[0] && kv.shape[2] == 2 * q.shape[2],
        "cross-attention q \(q.shape), kv \(kv.shape)")
    let (b, n, c, m) = (q.shape[0], q.shape[1], q.shape[2], kv.shape[1])
    precondition(c % numHeads == 0, "width \(c) is not divisible by \(numHeads) heads")
    precondition(weights == nil || weights!.shape == [b, numHeads, n, m], "attention weights \(weights!.shape)")
    let out = Tensor(uninitializedShape: [b, n, c])
    let (mb, mr) = maskStrides(mask, batch: b, n: n, m: m)
    attentionForward(
        out: out.data, outRowStride: c,
        q: AttentionOperand(q, column: 0), k: AttentionOperand(kv, column: 0), v: AttentionOperand(kv, column: c),
        batch: b, heads: numHeads, n: n, m: m, headDim: c / numHeads,
        mask: mask.map { UnsafePointer($0.data) }, maskBatchStride: mb, maskRowStride: mr, weights: weights?.data)
    return out
}

/// Where the gradient of one attention operand goes, laid out as `AttentionOperand`.
struct AttentionGradient {
    let base: UnsafeMutablePointer<Float>
    let batchStride: Int
    let rowStride: Int

    /// The columns from `column` on of a [B, R, W] tensor.
    init(_ t: Tensor, column: Int) {
        (base, batchStride, rowStride) = (t.data + column, t.shape[1] * t.shape[2], t.shape[2])
    }
}

/// Backward of `attentionForward` with the probabilities [B, H, N, M] it kept (an additive
/// mask is already in them). dout: [B, N, H * headDim], rows of doutRowStride; the
/// gradients are written (not accumulated) into dq [B, N, ...], dk and dv [B, M, ...].
/// Per head, with S = Q K^T / sqrt(d) and P = softmax(S): dV = P^T dO, dP = dO V^T,
/// dS = P * (dP - rowsum(dP * P)), dQ = dS K / sqrt(d), dK = dS^T Q / sqrt(d).
func attentionBackward(
    dout: UnsafePointer<Float>, doutRowStride: Int, q: AttentionOperand, k: AttentionOperand,
    v: AttentionOperand, dq: AttentionGradient, dk: AttentionGradient, dv: AttentionGradient,
    probabilities: UnsafePointer<Float>, batch: Int, heads: Int, n: Int, m: Int, headDim: Int
) {
    let scale = 1 / Float(headDim).squareRoot()
    parallelChunks(batch * heads, minimumPerChunk: attentionTasksPerChunk(n: n, m: m, headDim: headDim)) { tasks in
        let dp = UnsafeMutablePointer<Float>.allocate(capacity: n * m)
        defer { dp.deallocate() }
        for task in tasks {
            let (b, h) = (task / heads, task % heads)
            let column = h * headDim
            let qh = q.base + b * q.batchStride + column, kh = k.base + b * k.batchStride + column
            let vh = v.base + b * v.batchStride + column
            let dqh = dq.base + b * dq.batchStride + column, dkh = dk.base + b * dk.batchStride + column
            let dvh = dv.base + b * dv.batchStride + column
            let dO = dout + b * n * doutRowStride + column
            let p = probabilities + task * n * m
            // dV = P^T dO: [N, M]^T x [N, hd]
            serialProduct(
                transposeA: true, transposeB: false, m: m, n: headDim, k: n,
                p, lda: m, dO, ldb: doutRowStride, dvh, ldc: dv.rowStride)
            // dP = dO V^T: [N, hd] x [hd, M]
            serialProduct(
                transposeA: false, transposeB: true, m: n, n: m, k: headDim,
                dO, lda: doutRowStride, vh, ldb: v.rowStride, dp, ldc: m)
            for i in 0..<n {
                let (pr, dr) = (p + i * m, dp + i * m)
                let dot = rowDot(pr, UnsafePointer(dr), n: m)
                for j in 0..<m { dr[j] = pr[j] * (dr[j] - dot) }
            }
            // dQ = dS K * scale; dK = dS^T Q * scale
            serialProduct(
                transposeA: false, transposeB: false, m: n, n: headDim, k: m, alpha: scale,
                dp, lda: m, kh, ldb: k.rowStride, dqh, ldc: dq.rowStride)
            serialProduct(
                transposeA: true, transposeB: false, m: m, n: headDim, k: n, alpha: scale,
                dp, lda: m, qh, ldb: q.rowStride, dkh, ldc: dk.rowStride)
        }
    }
}
