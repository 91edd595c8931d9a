// A single-precision product kernel for CPUs with AVX-512, compiled for them alone
// (Package.swift gives this module -target-cpu skylake-avx512). ViTTensor calls it only
// after checking that the CPU has AVX-512F; OpenBLAS serves every other case.
//
// C[m, n] += op(A)[m, k] op(B)[k, n], row-major, accumulated into C (callers fill C with
// the bias, or zeros, first). The layout is Goto and van de Geijn's ("Anatomy of
// High-Performance Matrix Multiplication", 2008): B is packed into panels of 32 columns
// for a block of k, A into slivers of 12 rows, and a 12 x 32 block of C lives in 24
// vector registers while a panel streams past a sliver. Packing reads either layout of A
// and B, so one micro-kernel serves the forward product (B transposed: a weight matrix
// [out, in]) and both backward ones.

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

/// C[0..<12, 0..<32] += S P (or = S P when `overwrite`): S a packed sliver [depth, 12],
/// P a packed panel [depth, 32].
@inline(__always)
private func multiplyTile(
    sliver s: UnsafePointer<Float>, panel: UnsafePointer<Float>, depth: Int, _ c: UnsafeMutablePointer<Float>, ldc: Int,
    overwrite: Bool
) {
    var c0l = overwrite ? Vector() : load(c + 0 * ldc), c0h = overwrite ? Vector() : load(c + 0 * ldc + 16)
    var c1l = overwrite ? Vector() : load(c + 1 * ldc), c1h = overwrite ? Vector() : load(c + 1 * ldc + 16)
    var c2l = overwrite ? Vector() : load(c + 2 * ldc), c2h = overwrite ? Vector() : load(c + 2 * ldc + 16)
    var c3l = overwrite ? Vector() : load(c + 3 * ldc), c3h = overwrite ? Vector() : load(c + 3 * ldc + 16)
    var c4l = overwrite ? Vector() : load(c + 4 * ldc), c4h = overwrite ? Vector() : load(c + 4 * ldc + 16)
    var c5l = overwrite ? Vector() : load(c + 5 * ldc), c5h = overwrite ? Vector() : load(c + 5 * ldc + 16)
    var c6l = overwrite ? Vector() : load(c + 6 * ldc), c6h = overwrite ? Vector() : load(c + 6 * ldc + 16)
    var c7l = overwrite ? Vector() : load(c + 7 * ldc), c7h = overwrite ? Vector() : load(c + 7 * ldc + 16)
    var c8l = overwrite ? Vector() : load(c + 8 * ldc), c8h = overwrite ? Vector() : load(c + 8 * ldc + 16)
    var c9l = overwrite ? Vector() : load(c + 9 * ldc), c9h = overwrite ? Vector() : load(c + 9 * ldc + 16)
    var c10l = overwrite ? Vector() : load(c + 10 * ldc), c10h = overwrite ? Vector() : load(c + 10 * ldc + 16)
    var c11l = overwrite ? Vector() : load(c + 11 * ldc), c11h = overwrite ? Vector() : load(c + 11 * ldc + 16)
    var p = panel, a = s
    for _ in 0..<depth {
        let low = load(p), high = load(p + 16)
        let s0 = Vector(repeating: a[0])
        c0l = c0l.addingProduct(s0, low)
        c0h = c0h.addingProduct(s0, high)
        let s1 = Vector(repeating: a[1])
        c1l = c1l.addingProduct(s1, low)
        c1h = c1h.addingProduct(s1, high)
        let s2 = Vector(repeating: a[2])
        c2l = c2l.addingProduct(s2, low)
        c2h = c2h.addingProduct(s2, high)
        let s3 = Vector(repeating: a[3])
        c3l = c3l.addingProduct(s3, low)
        c3h = c3h.addingProduct(s3, high)
        let s4 = Vector(repeating: a[4])
        c4l = c4l.addingProduct(s4, low)
        c4h = c4h.addingProduct(s4, high)
        let s5 = Vector(repeating: a[5])
        c5l = c5l.addingProduct(s5, low)
        c5h = c5h.addingProduct(s5, high)
        let s6 = Vector(repeating: a[6])
        c6l = c6l.addingProduct(s6, low)
        c6h = c6h.addingProduct(s6, high)
        let s7 = Vector(repeating: a[7])
        c7l = c7l.addingProduct(s7, low)
        c7h = c7h.addingProduct(s7, high)
        let s8 = Vector(repeating: a[8])
        c8l = c8l.addingProduct(s8, low)
        c8h = c8h.addingProduct(s8, high)
        let s9 = Vector(repeating: a[9])
        c9l = c9l.addingProduct(s9, low)
        c9h = c9h.addingProduct(s9, high)
        let s10 = Vector(repeating: a[10])
        c10l = c10l.addingProduct(s10, low)
        c10h = c10h.addingProduct(s10, high)
        let s11 = Vector(repeating: a[11])
        c11l = c11l.addingProduct(s11, low)
        c11h = c11h.addingProduct(s11, high)
        p += 32
        a += 12
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

/// C[m, columns] += op(A)[m, k] op(B)[k, columns] on the calling thread (= with
/// `overwrite`, which spares the caller zeroing C).
/// op(A)[i, l] is a[i * lda + l], or a[l * lda + i] with transposeA; op(B)[l, j] is
/// b[l * ldb + j], or b[j * ldb + l] with transposeB. columns must start at a multiple of
/// 32; threads given disjoint column ranges write disjoint parts of C, and every element
/// is summed in the same order whatever the split.
public func multiply(
    m: Int, k: Int, columns: Range<Int>, a: UnsafePointer<Float>, lda: Int, transposeA: Bool,
    b: UnsafePointer<Float>, ldb: Int, transposeB: Bool, c: UnsafeMutablePointer<Float>, ldc: Int,
    overwrite: Bool = false
) {
    precondition(columns.lowerBound % columnsPerPanel == 0, "column range must start on a panel")
    if m == 0 || columns.isEmpty || k == 0 { return }
    let panelCount = (columns.count + columnsPerPanel - 1) / columnsPerPanel
    // Buffers as large as this product needs (small ones, as attention's, stay small).
    let maximumDepth = min(depthPerBlock, k)
    let packed = UnsafeMutablePointer<Float>.allocate(
        capacity: min(panelsPerGroup, panelCount) * maximumDepth * columnsPerPanel)
    defer { packed.deallocate() }
    // With several panel groups, all of A's slivers for a depth block are packed once and
    // shared by the groups, if they stay in cache (up to 2 MB); else each sliver is packed
    // just before its use, for each group.
    let tileCount = (m + rowsPerTile - 1) / rowsPerTile
    let shared = panelCount > panelsPerGroup && tileCount * rowsPerTile * depthPerBlock <= 1 << 19
    let slivers = UnsafeMutablePointer<Float>.allocate(capacity: (shared ? tileCount : 1) * rowsPerTile * maximumDepth)
    defer { slivers.deallocate() }
    /// Packs sliver[l][r] = op(A)[r0 + r, k0 + l], zero past the last row.
    func packSliver(_ sliver: UnsafeMutablePointer<Float>, r0: Int, k0: Int, depth: Int) {
        let rows = min(rowsPerTile, m - r0)
        if rows < rowsPerTile { sliver.update(repeating: 0, count: depth * rowsPerTile) }
        if transposeA {
            for l in 0..<depth {
                let src = a + (k0 + l) * lda + r0, row = sliver + l * rowsPerTile
                for r in 0..<rows { row[r] = src[r] }
            }
        } else {
            for r in 0..<rows {
                let src = a + (r0 + r) * lda + k0
                for l in 0..<depth { sliver[l * rowsPerTile + r] = src[l] }
            }
        }
    }
    // Tiles of C at the right edge (fewer than 32 columns) go through a padded copy.
    let edgeC = UnsafeMutablePointer<Float>.allocate(capacity: rowsPerTile * columnsPerPanel)
    defer { edgeC.deallocate() }
    for k0 in stride(from: 0, to: k, by: depthPerBlock) {
        let depth = min(depthPerBlock, k - k0)
        let fresh = overwrite && k0 == 0
        if shared {
            for r0 in stride(from: 0, to: m, by: rowsPerTile) {
                packSliver(slivers + (r0 / rowsPerTile) * rowsPerTile * depth, r0: r0, k0: k0, depth: depth)
            }
        }
        for group in stride(from: 0, to: panelCount, by: panelsPerGroup) {
            let panels = min(panelsPerGroup, panelCount - group)
            // Pack: packed[q][l][j] = op(B)[k0 + l, column(q, j)], zero past the last column.
            for q in 0..<panels {
                let first = columns.lowerBound + (group + q) * columnsPerPanel
                let width = min(columnsPerPanel, columns.upperBound - first)
                let dst = packed + q * depth * columnsPerPanel
                if width < columnsPerPanel { dst.update(repeating: 0, count: depth * columnsPerPanel) }
                if transposeB {
                    for j in 0..<width {
                        let src = b + (first + j) * ldb + k0
                        for l in 0..<depth { dst[l * columnsPerPanel + j] = src[l] }
                    }
                } else if width == columnsPerPanel {
                    // Two vector moves per row (a library copy call costs more than the copy).
                    for l in 0..<depth {
                        let src = b + (k0 + l) * ldb + first, row = dst + l * columnsPerPanel
                        store(load(src), row)
                        store(load(src + 16), row + 16)
                    }
                } else {
                    for l in 0..<depth {
                        let src = b + (k0 + l) * ldb + first, row = dst + l * columnsPerPanel
                        for j in 0..<width { row[j] = src[j] }
                    }
                }
            }
            for r0 in stride(from: 0, to: m, by: rowsPerTile) {
                let rows = min(rowsPerTile, m - r0)
                let sliver: UnsafePointer<Float>
                if shared {
                    sliver = UnsafePointer(slivers + (r0 / rowsPerTile) * rowsPerTile * depth)
                } else {
                    packSliver(slivers, r0: r0, k0: k0, depth: depth)
                    sliver = UnsafePointer(slivers)
                }
                for q in 0..<panels {
                    let first = columns.lowerBound + (group + q) * columnsPerPanel
                    let width = min(columnsPerPanel, columns.upperBound - first)
                    let panel = UnsafePointer(packed + q * depth * columnsPerPanel)
                    let tile = c + r0 * ldc + first
                    if rows == rowsPerTile && width == columnsPerPanel {
                        multiplyTile(sliver: sliver, panel: panel, depth: depth, tile, ldc: ldc, overwrite: fresh)
                    } else {
                        for r in 0..<rowsPerTile {
                            for j in 0..<columnsPerPanel {
                                edgeC[r * columnsPerPanel + j] = !fresh && r < rows && j < width ? tile[r * ldc + j] : 0
                            }
                        }
                        multiplyTile(
                            sliver: sliver, panel: panel, depth: depth, edgeC, ldc: columnsPerPanel, overwrite: false)
                        for r in 0..<rows {
                            (tile + r * ldc).update(from: edgeC + r * columnsPerPanel, count: width)
                        }
                    }
                }
            }
        }
    }
}
