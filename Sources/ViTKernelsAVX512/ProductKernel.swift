// A single-precision product for CPUs with AVX-512: packing here, the register block in
// C (CKernels, a function compiled for AVX-512F by its target attribute, so no flag
// changes how the package is built). ViTTensor calls it only after checking that the CPU
// has AVX-512F; OpenBLAS serves every other case.
//
// C[m, n] += op(A)[m, k] op(B)[k, n], row-major, accumulated into C (callers fill C with
// the bias, or zeros, first). The layout is Goto and van de Geijn's ("Anatomy of
// High-Performance Matrix Multiplication", 2008): B is packed into panels of 32 columns
// for a block of k, A into slivers of 12 rows, and a 12 x 32 block of C lives in 24
// vector registers while a panel streams past a sliver. Packing reads either layout of A
// and B, so one micro-kernel serves the forward product (B transposed: a weight matrix
// [out, in]) and both backward ones.

import CKernels

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
/// P a packed panel [depth, 32]. The register block is C (CKernels), compiled for AVX-512.
@inline(__always)
private func multiplyTile(
    sliver s: UnsafePointer<Float>, panel: UnsafePointer<Float>, depth: Int, _ c: UnsafeMutablePointer<Float>, ldc: Int,
    overwrite: Bool
) {
    ck_avx512_tile_12x32(s, panel, depth, c, ldc, overwrite ? 1 : 0)
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
