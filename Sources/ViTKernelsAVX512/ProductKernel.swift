// A single-precision product kernel for CPUs with AVX-512, compiled for them alone
// (Package.swift gives this module -target-cpu skylake-avx512). ViTTensor calls it only
// after checking that the CPU has AVX-512F; OpenBLAS serves every other case.
//
// C[m, n] += A[m, k] B[n, k]^T, the product of a fully connected layer: A row-major with
// row stride lda, B row-major with row stride ldb (a weight matrix [out, in]), C row-major
// with row stride ldc, accumulated into (callers fill C with the bias first). The layout
// is Goto and van de Geijn's ("Anatomy of High-Performance Matrix Multiplication", 2008):
// B is packed into panels of 32 columns for a block of k, and a 12 x 32 block of C lives
// in 24 vector registers while a panel streams past a 12-row sliver of A.

typealias Vector = SIMD16<Float>

/// Rows of C per micro-kernel call.
let rowsPerTile = 12
/// Columns of C per packed panel: two vectors.
public let columnsPerPanel = 32
/// The k extent of one packed block: a panel is 32 x 256 floats, 32 KiB.
let depthPerBlock = 256
/// Panels packed together: 8 panels, 256 KiB, kept in L2 while A's slivers pass.
let panelsPerGroup = 8

@inline(__always)
private func load(_ p: UnsafePointer<Float>) -> Vector {
    UnsafeRawPointer(p).loadUnaligned(as: Vector.self)
}

@inline(__always)
private func store(_ v: Vector, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vector.self)
}

/// C[0..<12, 0..<32] += A[0..<12, 0..<depth] P, where P is a packed panel [depth, 32].
@inline(__always)
private func multiplyTile(
    _ a: UnsafePointer<Float>, lda: Int, panel: UnsafePointer<Float>, depth: Int,
    _ c: UnsafeMutablePointer<Float>, ldc: Int
) {
    let a0 = a
    let a1 = a + 1 * lda
    let a2 = a + 2 * lda
    let a3 = a + 3 * lda
    let a4 = a + 4 * lda
    let a5 = a + 5 * lda
    let a6 = a + 6 * lda
    let a7 = a + 7 * lda
    let a8 = a + 8 * lda
    let a9 = a + 9 * lda
    let a10 = a + 10 * lda
    let a11 = a + 11 * lda
    var c0l = load(c + 0 * ldc), c0h = load(c + 0 * ldc + 16)
    var c1l = load(c + 1 * ldc), c1h = load(c + 1 * ldc + 16)
    var c2l = load(c + 2 * ldc), c2h = load(c + 2 * ldc + 16)
    var c3l = load(c + 3 * ldc), c3h = load(c + 3 * ldc + 16)
    var c4l = load(c + 4 * ldc), c4h = load(c + 4 * ldc + 16)
    var c5l = load(c + 5 * ldc), c5h = load(c + 5 * ldc + 16)
    var c6l = load(c + 6 * ldc), c6h = load(c + 6 * ldc + 16)
    var c7l = load(c + 7 * ldc), c7h = load(c + 7 * ldc + 16)
    var c8l = load(c + 8 * ldc), c8h = load(c + 8 * ldc + 16)
    var c9l = load(c + 9 * ldc), c9h = load(c + 9 * ldc + 16)
    var c10l = load(c + 10 * ldc), c10h = load(c + 10 * ldc + 16)
    var c11l = load(c + 11 * ldc), c11h = load(c + 11 * ldc + 16)
    var p = panel
    for k in 0..<depth {
        let low = load(p), high = load(p + 16)
        let s0 = Vector(repeating: a0[k])
        c0l = c0l.addingProduct(s0, low)
        c0h = c0h.addingProduct(s0, high)
        let s1 = Vector(repeating: a1[k])
        c1l = c1l.addingProduct(s1, low)
        c1h = c1h.addingProduct(s1, high)
        let s2 = Vector(repeating: a2[k])
        c2l = c2l.addingProduct(s2, low)
        c2h = c2h.addingProduct(s2, high)
        let s3 = Vector(repeating: a3[k])
        c3l = c3l.addingProduct(s3, low)
        c3h = c3h.addingProduct(s3, high)
        let s4 = Vector(repeating: a4[k])
        c4l = c4l.addingProduct(s4, low)
        c4h = c4h.addingProduct(s4, high)
        let s5 = Vector(repeating: a5[k])
        c5l = c5l.addingProduct(s5, low)
        c5h = c5h.addingProduct(s5, high)
        let s6 = Vector(repeating: a6[k])
        c6l = c6l.addingProduct(s6, low)
        c6h = c6h.addingProduct(s6, high)
        let s7 = Vector(repeating: a7[k])
        c7l = c7l.addingProduct(s7, low)
        c7h = c7h.addingProduct(s7, high)
        let s8 = Vector(repeating: a8[k])
        c8l = c8l.addingProduct(s8, low)
        c8h = c8h.addingProduct(s8, high)
        let s9 = Vector(repeating: a9[k])
        c9l = c9l.addingProduct(s9, low)
        c9h = c9h.addingProduct(s9, high)
        let s10 = Vector(repeating: a10[k])
        c10l = c10l.addingProduct(s10, low)
        c10h = c10h.addingProduct(s10, high)
        let s11 = Vector(repeating: a11[k])
        c11l = c11l.addingProduct(s11, low)
        c11h = c11h.addingProduct(s11, high)
        p += 32
    }
    store(c0l, c + 0 * ldc)
    store(c0h, c + 0 * ldc + 16)
    store(c1l, c + 1 * ldc)
    store(c1h, c + 1 * ldc + 16)
    store(c2l, c + 2 * ldc)
    store(c2h, c + 2 * ldc + 16)
    store(c3l, c + 3 * ldc)
    store(c3h, c + 3 * ldc + 16)
    store(c4l, c + 4 * ldc)
    store(c4h, c + 4 * ldc + 16)
    store(c5l, c + 5 * ldc)
    store(c5h, c + 5 * ldc + 16)
    store(c6l, c + 6 * ldc)
    store(c6h, c + 6 * ldc + 16)
    store(c7l, c + 7 * ldc)
    store(c7h, c + 7 * ldc + 16)
    store(c8l, c + 8 * ldc)
    store(c8h, c + 8 * ldc + 16)
    store(c9l, c + 9 * ldc)
    store(c9h, c + 9 * ldc + 16)
    store(c10l, c + 10 * ldc)
    store(c10h, c + 10 * ldc + 16)
    store(c11l, c + 11 * ldc)
    store(c11h, c + 11 * ldc + 16)
}

/// C[m, columns] += A[m, k] B[columns, k]^T on the calling thread. columns must start at a
/// multiple of 32; threads given disjoint column ranges compute disjoint parts of C, and
/// every element is summed in the same order whatever the split.
public func multiplyTransposed(
    m: Int, k: Int, columns: Range<Int>, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    precondition(columns.lowerBound % columnsPerPanel == 0, "column range must start on a panel")
    if m == 0 || columns.isEmpty || k == 0 { return }
    let packed = UnsafeMutablePointer<Float>.allocate(capacity: panelsPerGroup * depthPerBlock * columnsPerPanel)
    defer { packed.deallocate() }
    // Slivers of A and tiles of C at the bottom edge (fewer than 12 rows) and right edge
    // (fewer than 32 columns) go through zero-padded copies.
    let edgeA = UnsafeMutablePointer<Float>.allocate(capacity: rowsPerTile * depthPerBlock)
    defer { edgeA.deallocate() }
    let edgeC = UnsafeMutablePointer<Float>.allocate(capacity: rowsPerTile * columnsPerPanel)
    defer { edgeC.deallocate() }
    let panelCount = (columns.count + columnsPerPanel - 1) / columnsPerPanel
    for k0 in stride(from: 0, to: k, by: depthPerBlock) {
        let depth = min(depthPerBlock, k - k0)
        for group in stride(from: 0, to: panelCount, by: panelsPerGroup) {
            let panels = min(panelsPerGroup, panelCount - group)
            // Pack: packed[q][kk][j] = B[column(q, j), k0 + kk], zero past the last column.
            for q in 0..<panels {
                let first = columns.lowerBound + (group + q) * columnsPerPanel
                let width = min(columnsPerPanel, columns.upperBound - first)
                let dst = packed + q * depth * columnsPerPanel
                for j in 0..<columnsPerPanel {
                    if j < width {
                        let src = b + (first + j) * ldb + k0
                        for kk in 0..<depth { dst[kk * columnsPerPanel + j] = src[kk] }
                    } else {
                        for kk in 0..<depth { dst[kk * columnsPerPanel + j] = 0 }
                    }
                }
            }
            for r0 in stride(from: 0, to: m, by: rowsPerTile) {
                let rows = min(rowsPerTile, m - r0)
                var sliver = a + r0 * lda + k0, sliverStride = lda
                if rows < rowsPerTile {
                    for r in 0..<rowsPerTile {
                        if r < rows {
                            (edgeA + r * depth).update(from: a + (r0 + r) * lda + k0, count: depth)
                        } else {
                            (edgeA + r * depth).update(repeating: 0, count: depth)
                        }
                    }
                    sliver = UnsafePointer(edgeA)
                    sliverStride = depth
                }
                for q in 0..<panels {
                    let first = columns.lowerBound + (group + q) * columnsPerPanel
                    let width = min(columnsPerPanel, columns.upperBound - first)
                    let panel = UnsafePointer(packed + q * depth * columnsPerPanel)
                    let tile = c + r0 * ldc + first
                    if rows == rowsPerTile && width == columnsPerPanel {
                        multiplyTile(sliver, lda: sliverStride, panel: panel, depth: depth, tile, ldc: ldc)
                    } else {
                        for r in 0..<rowsPerTile {
                            for j in 0..<columnsPerPanel {
                                edgeC[r * columnsPerPanel + j] = r < rows && j < width ? tile[r * ldc + j] : 0
                            }
                        }
                        multiplyTile(sliver, lda: sliverStride, panel: panel, depth: depth, edgeC, ldc: columnsPerPanel)
                        for r in 0..<rows {
                            (tile + r * ldc).update(from: edgeC + r * columnsPerPanel, count: width)
                        }
                    }
                }
            }
        }
    }
}
