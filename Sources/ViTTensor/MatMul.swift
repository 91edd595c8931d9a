import CBLAS

/// The one place that calls BLAS: C[m, n] = alpha * op(A) op(B) + beta * C, row-major.
func gemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    alpha: Float = 1, _ a: UnsafePointer<Float>, lda: Int,
    _ b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, _ c: UnsafeMutablePointer<Float>, ldc: Int
) {
    cblas_sgemm(
        CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans,
        transposeB ? CblasTrans : CblasNoTrans,
        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
        beta, c, Int32(ldc))
}

/// Sets the number of threads OpenBLAS uses for products.
public func setBLASThreadCount(_ count: Int) {
    openblas_set_num_threads(Int32(count))
}

/// Batched matrix product with broadcast batch axes (torch.matmul for rank >= 2).
///
/// a: [..., M, K] (or [..., K, M] with transposeA), b: [..., K, N] (or [..., N, K] with
/// transposeB) -> [..., M, N]. The batch axes broadcast as in elementwise arithmetic.
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    precondition(a.rank >= 2 && b.rank >= 2, "matmul needs rank >= 2, got \(a.shape) and \(b.shape)")
    let (ar, ac) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
    let (br, bc) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
    let (m, k) = transposeA ? (ac, ar) : (ar, ac)
    let (kb, n) = transposeB ? (bc, br) : (br, bc)
    precondition(
        k == kb, "matmul: inner sizes differ: \(a.shape)\(transposeA ? "ᵀ" : "") x \(b.shape)\(transposeB ? "ᵀ" : "")")
    let aBatch = Array(a.shape.dropLast(2)), bBatch = Array(b.shape.dropLast(2))
    let batch = broadcastShape(aBatch, bBatch)
    let out = Tensor(shape: batch + [m, n])
    if out.count == 0 { return out }
    if k == 0 { return out }
    let lda = ac, ldb = bc
    // A shared right operand and an untransposed left one: fold the batch into M.
    if bBatch.reduce(1, *) == 1 && !transposeA && aBatch == batch {
        gemm(
            transposeA: false, transposeB: transposeB, m: aBatch.reduce(1, *) * m, n: n, k: k,
            a.data, lda: lda, b.data, ldb: ldb, out.data, ldc: n)
        return out
    }
    let count = batch.reduce(1, *)
    let sa = broadcastStrides(aBatch, to: batch), sb = broadcastStrides(bBatch, to: batch)
    let batchStrides = Tensor.strides(for: batch)
    for i in 0..<count {
        var oa = 0, ob = 0, rest = i
        for axis in 0..<batch.count {
            let index = rest / batchStrides[axis]
            rest %= batchStrides[axis]
            oa += index * sa[axis]
            ob += index * sb[axis]
        }
        gemm(
            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
            a.data + oa * ar * ac, lda: lda, b.data + ob * br * bc, ldb: ldb,
            out.data + i * m * n, ldc: n)
    }
    return out
}

/// A fully connected layer's product (torch.nn.functional.linear):
/// x [..., in] and weight [out, in] -> x weight^T + bias, [..., out].
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
    precondition(
        weight.rank == 2 && x.shape.last == weight.shape[1],
        "linear: input \(x.shape) does not match weight \(weight.shape)")
    let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
    let rows = inFeatures == 0 ? 0 : x.count / inFeatures
    let out = Tensor(shape: Array(x.shape.dropLast()) + [outFeatures])
    if let bias {
        precondition(bias.shape == [outFeatures], "linear: bias \(bias.shape) for \(outFeatures) outputs")
        for r in 0..<rows { (out.data + r * outFeatures).update(from: bias.data, count: outFeatures) }
    }
    if rows > 0 && outFeatures > 0 && inFeatures > 0 {
        gemm(
            transposeA: false, transposeB: true, m: rows, n: outFeatures, k: inFeatures,
            x.data, lda: inFeatures, weight.data, ldb: inFeatures,
            beta: bias == nil ? 0 : 1, out.data, ldc: outFeatures)
    }
    return out
}
