import CBLAS
import Foundation
import ViTProductKernels

/// OpenBLAS runs single-threaded: products are split across threads here, so that one
/// pool of threads serves every kernel and no BLAS thread spins while other work runs.
private let blasIsSingleThreaded: Bool = {
    openblas_set_num_threads(1)
    return true
}()

/// The core OpenBLAS chose for this CPU (its DYNAMIC_ARCH dispatch, which
/// OPENBLAS_CORETYPE overrides), lowercased: "cooperlake", "haswell", ...
public let blasCoreName: String = openblas_get_corename().map { String(cString: $0).lowercased() } ?? "unknown"

/// The instruction set of our product kernel, or nil where OpenBLAS serves the products:
/// AVX-512 when the CPU has AVX-512F (Linux lists it in /proc/cpuinfo only when the kernel
/// saves the vector state), else AVX2 when it has AVX2 and FMA, whatever core OpenBLAS has
/// chosen. Our kernel forms every element's sum in the same order however a product is
/// split, so results do not depend on the thread count; OpenBLAS's Haswell and Zen kernels
/// round a product split into bands differently from the whole (on the AMD EPYC, family 25
/// model 1, 20 of ProductSplitTests' comparisons differed), and a CPU missing from its
/// table falls to "prescott", about 30 GFLOP/s. SWIFTVIT_GEMM=openblas, =avx512 or =avx2
/// forces the choice (an instruction set the CPU lacks leaves the products to OpenBLAS).
let productInstructions: ProductInstructions? = {
    switch ProcessInfo.processInfo.environment["SWIFTVIT_GEMM"] {
    case "openblas": return nil
    case "avx512": return Machine.hasAVX512F ? .avx512 : nil
    case "avx2": return Machine.hasAVX2FMA ? .avx2 : nil
    default: return Machine.hasAVX512F ? .avx512 : Machine.hasAVX2FMA ? .avx2 : nil
    }
}()

/// Which kernel `linear` uses: "avx512" or "avx2" (ours) or "openblas (CORE)".
public var productKernelName: String {
    switch productInstructions {
    case .avx512?: "avx512"
    case .avx2?: "avx2"
    case nil: "openblas (\(blasCoreName))"
    }
}

/// The fused multiply-adds the products run on, for their roofline: "avx2" where our
/// AVX2 kernel serves them, else the widest the CPU has (`Machine.fmaKind`).
public var productFMAKind: String? { productInstructions == .avx2 ? "avx2" : Machine.fmaKind }

/// The one place that calls BLAS: C[m, n] = alpha * op(A) op(B) + beta * C, row-major,
/// on the calling thread.
func serialGEMM(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    alpha: Float = 1, _ a: UnsafePointer<Float>, lda: Int,
    _ b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, _ c: UnsafeMutablePointer<Float>, ldc: Int
) {
    if !blasIsSingleThreaded { return }
    cblas_sgemm(
        CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans,
        transposeB ? CblasTrans : CblasNoTrans,
        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
        beta, c, Int32(ldc))
}

/// C[m, n] = alpha * op(A) op(B), row-major, on the calling thread: our kernel where it
/// serves products (`productInstructions`), else OpenBLAS. For the small
/// products of attention, which each thread runs for its own (image, head).
func serialProduct(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    alpha: Float = 1, _ a: UnsafePointer<Float>, lda: Int,
    _ b: UnsafePointer<Float>, ldb: Int, _ c: UnsafeMutablePointer<Float>, ldc: Int
) {
    guard let instructions = productInstructions else {
        serialGEMM(
            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a, lda: lda, b, ldb: ldb,
            c, ldc: ldc)
        return
    }
    if k == 0 {
        for r in 0..<m { (c + r * ldc).update(repeating: 0, count: n) }
        return
    }
    multiply(
        m: m, k: k, columns: 0..<n, a: a, lda: lda, transposeA: transposeA, b: b, ldb: ldb, transposeB: transposeB,
        c: c, ldc: ldc, overwrite: true, instructions: instructions)
    if alpha != 1 {
        for r in 0..<m {
            let row = c + r * ldc
            for j in 0..<n { row[j] *= alpha }
        }
    }
}

/// Splits an [m, n] product with inner size k into one tile per thread: bands of rows, or
/// of columns when there are too few rows. Band edges fall on multiples of 16 so that each
/// element meets the same BLAS micro-kernel whatever the thread count. Calls
/// `body(rows, columns)` once per tile, concurrently.
func forEachProductTile(m: Int, n: Int, k: Int, _ body: (Range<Int>, Range<Int>) -> Void) {
    let block = 16
    let threads = productThreads(m: m, n: n, k: k)
    // Each tile packs the whole operand on the side it does not split: split the side
    // with more to pack (rows when m > n), so the smaller operand is the one packed twice.
    if threads > 1 && m >= 2 * block * threads && (m >= n || n < 2 * block * threads) {
        let blocks = (m + block - 1) / block
        parallelChunks(blocks, minimumPerChunk: blocks / threads) { range in
            body((range.lowerBound * block)..<min(m, range.upperBound * block), 0..<n)
        }
    } else if threads > 1 && n >= 2 * block * threads {
        let blocks = (n + block - 1) / block
        parallelChunks(blocks, minimumPerChunk: blocks / threads) { range in
            body(0..<m, (range.lowerBound * block)..<min(n, range.upperBound * block))
        }
    } else {
        body(0..<m, 0..<n)
    }
}

/// Threads worth using for an [m, n] product of inner size k: at least half a million
/// multiply-adds each (a few microseconds; handing work to the pool's waiting threads
/// costs well under one), at most `threadCount`.
func productThreads(m: Int, n: Int, k: Int) -> Int { min(threadCount, max(1, m * n * k / 500_000)) }

/// Splits an [m, n] product for our kernel (AVX-512 or AVX2) into one block per thread: bands of
/// whole 12-row slivers, or of whole 32-column panels. Each thread packs the part of the
/// operand on the side it does not split, so the split runs across the side whose operand
/// costs more to pack twice: rows when the right operand is packed ahead (`rightPacked`,
/// constant weights) or has fewer columns than A has rows, columns otherwise (and for
/// packed weights with more columns than A has rows whose panels share out evenly where
/// the slivers do not). Band edges
/// fall on sliver and panel edges, so every element meets the same register block whatever
/// the split. Calls `body(rows, columns)` once per block, concurrently.
func forEachProductBlock(
    m: Int, n: Int, k: Int, rightPacked: Bool, _ body: (Range<Int>, Range<Int>) -> Void
) {
    let threads = productThreads(m: m, n: n, k: k)
    let slivers = (m + rowsPerTile - 1) / rowsPerTile
    let panels = (n + columnsPerPanel - 1) / columnsPerPanel
    // Packed weights with more columns than A has rows (ViT-B at batch 1: 197 rows, 17
    // slivers, the last of 5 rows costing as much as a full one) split by columns when
    // the slivers do not share out evenly and the panels do: each thread then streams only
    // its half of the weights. With fewer columns than rows, rows stay with one thread for
    // the row-wise passes that follow.
    let columnsShareBetter = rightPacked && n > m && slivers % threads != 0 && panels % threads == 0
    if threads > 1 && slivers >= 2 * threads && (rightPacked || n < m || panels < threads) && !columnsShareBetter {
        let rows = { (slivers: Range<Int>) in
            (slivers.lowerBound * rowsPerTile)..<min(m, slivers.upperBound * rowsPerTile)
        }
        // Each chunk streams the whole packed operand past its rows: finer chunks, shrinking
        // as they go, only where it stays in L2 (1 MiB).
        if rightPacked && n * k <= 1 << 18 && slivers >= 2 * threads * sliversPerSharedChunk {
            let bounds = shrinkingChunkBounds(slivers, threads: threads, minimumPerChunk: sliversPerLastChunks)
            parallelChunks(bounds: bounds) { body(rows($0), 0..<n) }
        } else {
            parallelChunks(slivers, chunks: threads) { body(rows($0), 0..<n) }
        }
        return
    }
    parallelChunks(panels, chunks: min(threads, panels)) { range in
        body(0..<m, (range.lowerBound * columnsPerPanel)..<min(n, range.upperBound * columnsPerPanel))
    }
}

/// The fewest slivers in one of several chunks per thread of a product whose right operand
/// is packed ahead: no chunk then packs anything the others also pack (the left operand is
/// read in place or packed sliver by sliver), and each chunk streams the whole packed
/// operand past at least 384 rows.
let sliversPerSharedChunk = 32

/// The fewest slivers in a chunk of a product split into chunks that shrink as they go
/// (`shrinkingChunkBounds`): 96 rows, a tenth of a millisecond for ViT-Ti's fc1.
let sliversPerLastChunks = 8

/// op(B) [k, n] packed once for a product split by rows, its panels shared out between
/// threads, or nil when the product is too small to split into several chunks of rows:
/// b[l * ldb + j], or b[j * ldb + l] when `transposed`.
func packedAhead(
    _ b: UnsafePointer<Float>, ldb: Int, transposed: Bool, m: Int, n: Int, k: Int,
    instructions: ProductInstructions
) -> PackedPanels? {
    let threads = productThreads(m: m, n: n, k: k)
    let slivers = (m + rowsPerTile - 1) / rowsPerTile
    guard threads > 1 && slivers >= 4 * sliversPerSharedChunk && n < m else { return nil }
    let packed = PackedPanels(n: n, k: k, instructions: instructions)
    parallelChunks(packed.panelCount, minimumPerChunk: 1) { panels in
        packed.fill(panels: panels, from: b, ldb: ldb, transposed: transposed)
    }
    return packed
}

/// C[m, n] = alpha * op(A) op(B) + beta * C, row-major, split across threads. With
/// `rowSumsOfA` (transposeA only), also rowSumsOfA[i] = the sum of op(A)[i, 0..<k] for i <
/// m, as a bias gradient beside the weight gradient dy^T x: where our kernel runs the
/// product, summed from A's packed slivers (no second pass over A; per depth block of 256,
/// the blocks in order, whatever the thread count), else down A's rows.
func gemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    alpha: Float = 1, _ a: UnsafePointer<Float>, lda: Int,
    _ b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, _ c: UnsafeMutablePointer<Float>, ldc: Int, rowSumsOfA: UnsafeMutablePointer<Float>? = nil
) {
    precondition(rowSumsOfA == nil || transposeA, "gemm: row sums of A need a transposed A")
    rowSumsOfA?.update(repeating: 0, count: m)
    /// Sums op(A)'s rows down A's rows where no packed sliver does.
    func sumRowsOfA() {
        guard let rowSumsOfA else { return }
        for l in 0..<k {
            let row = a + l * lda
            for i in 0..<m { rowSumsOfA[i] += row[i] }
        }
    }
    if let instructions = productInstructions, alpha == 1 && (beta == 0 || beta == 1) {
        let packed = packedAhead(b, ldb: ldb, transposed: transposeB, m: m, n: n, k: k, instructions: instructions)
        forEachProductBlock(m: m, n: n, k: k, rightPacked: packed != nil) { rows, columns in
            let cBlock = c + rows.lowerBound * ldc
            if beta == 0 && k == 0 {
                for r in 0..<rows.count {
                    (cBlock + r * ldc + columns.lowerBound).update(repeating: 0, count: columns.count)
                }
            }
            // Every block packs its rows' slivers; the one holding the first columns sums them.
            let sums = columns.lowerBound == 0 ? rowSumsOfA.map { $0 + rows.lowerBound } : nil
            multiply(
                m: rows.count, k: k, columns: columns, a: a + rows.lowerBound * (transposeA ? 1 : lda), lda: lda,
                transposeA: transposeA, b: b, ldb: ldb, transposeB: transposeB, c: cBlock, ldc: ldc,
                overwrite: beta == 0, packedB: packed, rowSums: sums, instructions: instructions)
        }
        // Without columns no block runs.
        if n == 0 { sumRowsOfA() }
        return
    }
    forEachProductTile(m: m, n: n, k: k) { rows, columns in
        serialGEMM(
            transposeA: transposeA, transposeB: transposeB, m: rows.count, n: columns.count, k: k,
            alpha: alpha, a + rows.lowerBound * (transposeA ? 1 : lda), lda: lda,
            b + columns.lowerBound * (transposeB ? ldb : 1), ldb: ldb,
            beta: beta, c + rows.lowerBound * ldc + columns.lowerBound, ldc: ldc)
    }
    sumRowsOfA()
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

/// A fully connected layer (torch.nn.functional.linear) with optional fused epilogues:
/// x [..., in], weight [out, in] -> residual + activation(x weight^T + bias), [..., out].
/// residual: [..., out], added after the activation. Each thread fills, multiplies and
/// activates its own tile while it is in cache.
public func linear(
    _ x: Tensor, weight: Tensor, bias: Tensor?, activation: GELUApproximation? = nil, residual: Tensor? = nil
) -> Tensor {
    precondition(
        weight.rank == 2 && x.shape.last == weight.shape[1],
        "linear: input \(x.shape) does not match weight \(weight.shape)")
    let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
    let rows = x.shape.dropLast().reduce(1, *)
    // Every tile below is filled (bias, residual or zeros) before the product adds to it,
    // or written whole by the product.
    let out = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [outFeatures])
    precondition(
        bias == nil || bias!.shape == [outFeatures], "linear: bias \(bias!.shape) for \(outFeatures) outputs")
    precondition(
        residual == nil || residual!.shape == out.shape, "linear: residual \(residual!.shape) for output \(out.shape)")
    precondition(
        activation == nil || residual == nil, "linear: an activation and a residual together are not supported")
    if out.count == 0 { return out }
    let (o, xd, wd) = (out.data, x.data, weight.data)
    let bd = bias?.data, rd = residual?.data
    // Each tile: fill with bias and residual (unless the product does), add the product,
    // apply the activation.
    let tile = { (rowRange: Range<Int>, columns: Range<Int>, fill: Bool, multiply: () -> Void) in
        let width = columns.count
        for r in rowRange where fill {
            let dst = o + r * outFeatures + columns.lowerBound
            switch (bd, rd) {
            case (let b?, let res?):
                let src = res + r * outFeatures + columns.lowerBound, bb = b + columns.lowerBound
                for j in 0..<width { dst[j] = src[j] + bb[j] }
            case (let b?, nil): dst.update(from: b + columns.lowerBound, count: width)
            case (nil, let res?): dst.update(from: res + r * outFeatures + columns.lowerBound, count: width)
            case (nil, nil): dst.update(repeating: 0, count: width)
            }
        }
        if inFeatures > 0 { multiply() }
        if let activation {
            for r in rowRange {
                let p = o + r * outFeatures + columns.lowerBound
                geluRow(p, p, n: width, approximation: activation)
            }
        }
    }
    // Without a residual the kernels start each block of C from the bias (or zero).
    let filled = rd != nil || inFeatures == 0
    if productPrecision == .bfloat16 {
        // Weights rounded and packed once when constant, else for this call; split by rows,
        // so that each thread rounds only its own rows of x.
        let packed =
            weight.storage.derivedForm(
                matching: { $0.n == outFeatures && $0.k == inFeatures },
                { PackedPanelsBF16(weight: wd, n: outFeatures, k: inFeatures) })
            ?? PackedPanelsBF16(weight: wd, n: outFeatures, k: inFeatures)
        forEachProductBlock(m: rows, n: outFeatures, k: inFeatures, rightPacked: true) { rowRange, columns in
            tile(rowRange, columns, filled) {
                multiplyBFloat16(
                    m: rowRange.count, k: inFeatures, columns: columns, a: xd + rowRange.lowerBound * inFeatures,
                    lda: inFeatures, weights: packed, c: o + rowRange.lowerBound * outFeatures, ldc: outFeatures,
                    overwrite: !filled, bias: filled ? nil : bd)
            }
        }
        return out
    }
    if let instructions = productInstructions {
        // Constant weights (marked so at load for inference) are packed once and kept; others
        // are packed once for this call when the rows split into several chunks.
        let packed =
            weight.storage.derivedForm(
                matching: { $0.n == outFeatures && $0.k == inFeatures },
                { PackedPanels(weight: wd, n: outFeatures, k: inFeatures, instructions: instructions) })
            ?? packedAhead(
                wd, ldb: inFeatures, transposed: true, m: rows, n: outFeatures, k: inFeatures,
                instructions: instructions)
        forEachProductBlock(m: rows, n: outFeatures, k: inFeatures, rightPacked: packed != nil) {
            rowRange, columns in
            tile(rowRange, columns, filled) {
                multiply(
                    m: rowRange.count, k: inFeatures, columns: columns, a: xd + rowRange.lowerBound * inFeatures,
                    lda: inFeatures, transposeA: false, b: wd, ldb: inFeatures, transposeB: true,
                    c: o + rowRange.lowerBound * outFeatures, ldc: outFeatures, overwrite: !filled,
                    bias: filled ? nil : bd, packedB: packed, instructions: instructions)
            }
        }
        return out
    }
    forEachProductTile(m: rows, n: outFeatures, k: inFeatures) { rowRange, columns in
        tile(rowRange, columns, true) {
            serialGEMM(
                transposeA: false, transposeB: true, m: rowRange.count, n: columns.count, k: inFeatures,
                xd + rowRange.lowerBound * inFeatures, lda: inFeatures,
                wd + columns.lowerBound * inFeatures, ldb: inFeatures,
                beta: 1, o + rowRange.lowerBound * outFeatures + columns.lowerBound, ldc: outFeatures)
        }
    }
    return out
}
