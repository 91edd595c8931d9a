// A single-precision product for CPUs with AVX-512, or with AVX2 and FMA: the blocking
// here, the packing and the register blocks in C (CKernels, functions compiled for one
// instruction set each by their target attributes, so no flag changes how the package is
// built). ViTTensor calls it only after checking that the CPU has the instruction set.
//
// C[m, n] (+)= op(A)[m, k] op(B)[k, n], row-major. The layout is Goto and van de Geijn's ("Anatomy of
// High-Performance Matrix Multiplication", 2008): B is packed into panels of 32 columns
// for a block of k, A into slivers of 12 rows, and a 12 x 32 block of C lives in vector
// registers (24 of AVX-512's; AVX2 runs it as four 6 x 16 blocks of 12) while a panel
// streams past a sliver. Packing reads either layout of A and B (transposing through
// register blocks where it must), so one micro-kernel serves the forward product (B
// transposed: a weight matrix [out, in]) and both backward ones.

import CKernels
import Glibc

/// The instruction set a product runs on. Both read the same packed operands and form
/// every sum in the same order with the same fused multiply-adds: the same bits in C.
public enum ProductInstructions: Sendable {
    /// AVX-512F: a 12 x 32 block of C in 24 registers of 16 lanes.
    case avx512
    /// AVX2 and FMA: the 12 x 32 block as four 6 x 16 blocks in 12 registers of 8 lanes.
    case avx2

    /// dst[(b * depth + l) * width + j] = x(b * width + j, l): blocks of `width` columns, as
    /// `ck_avx512_pack` documents.
    func pack(
        _ src: UnsafePointer<Float>, stride: Int, alongRows: Bool, rows: Int, depth: Int,
        into dst: UnsafeMutablePointer<Float>, width: Int
    ) {
        switch self {
        case .avx512: ck_avx512_pack(src, stride, alongRows ? 1 : 0, rows, depth, dst, width)
        case .avx2: ck_avx2_pack(src, stride, alongRows ? 1 : 0, rows, depth, dst, width)
        }
    }

    /// Packs columns 0..<columns of x(j, l) (as `pack` reads it) into 32-column panels for
    /// this instruction set's blocks, zero past the last column: panel q at dst + q * depth *
    /// 32. AVX-512 lays a panel out as [depth][32]; AVX2, whose blocks read one half of a
    /// panel at a time, as two halves [2][depth][16], so that a block's steps are contiguous
    /// lines (`panelStep` floats apart).
    func packPanels(
        _ src: UnsafePointer<Float>, stride: Int, alongRows: Bool, columns: Int, depth: Int,
        into dst: UnsafeMutablePointer<Float>
    ) {
        switch self {
        case .avx512:
            pack(src, stride: stride, alongRows: alongRows, rows: columns, depth: depth, into: dst, width: 32)
        case .avx2 where !alongRows:
            // Blocks of 16 columns, block b at dst + b * depth * 16: the halves of the panels.
            pack(src, stride: stride, alongRows: false, rows: columns, depth: depth, into: dst, width: 16)
        case .avx2:
            for half in 0..<2 where 16 * half < columns {
                pack(
                    src + 16 * half * stride, stride: stride, alongRows: true, rows: min(16, columns - 16 * half),
                    depth: depth, into: dst + half * depth * 16, width: 16)
            }
        }
    }

    /// Floats between one step of depth of a packed panel and the next (see `packPanels`).
    var panelStep: Int { self == .avx512 ? 32 : 16 }

    /// sums[i] += the sum over the depth of row i of packed slivers, i < rows, as
    /// `ck_avx512_add_sliver_sums` documents (both instruction sets give the same bits).
    func addSliverSums(_ slivers: UnsafePointer<Float>, rows: Int, depth: Int, to sums: UnsafeMutablePointer<Float>) {
        switch self {
        case .avx512: ck_avx512_add_sliver_sums(slivers, rows, depth, sums)
        case .avx2: ck_avx2_add_sliver_sums(slivers, rows, depth, sums)
        }
    }
}

/// Rows of C per micro-kernel call.
public let rowsPerTile = 12
/// Columns of C per packed panel: two vectors.
public let columnsPerPanel = 32
/// The k extent of one packed block: a panel is 32 x 256 floats, 32 KiB.
let depthPerBlock = 256
/// Panels packed together: 8 panels, 256 KiB, kept in L2 while A's slivers pass.
let panelsPerGroup = 8

/// The depth block and panels per group where AVX2 reads A's rows in place past panels
/// packed ahead: the whole depth, or equal blocks of at most 1024, in groups of panels that
/// fill at most a quarter of L2 (at least one panel). Each 12 x 32 block of C is four 6 x 16
/// blocks here, each loading and storing its part of C once per depth block, and AVX2-only
/// CPUs have 256-512 KiB of L2 where the AVX-512 Xeons have 2 MiB. On the AMD EPYC (family
/// 25, model 1, 512 KiB of L2), one thread: 1576 x 3072 x 768 went from 76-80 GFLOP/s
/// (blocks of 256 in groups of 8 panels) to 86-88 (the whole depth, one panel a group), 197
/// x 2304 x 768 from 77-78 to 83-88; 1576 x 768 x 3072 stayed at 74-80.
func avx2RowsBlocking(k: Int) -> (depth: Int, panels: Int) {
    let blocks = (k + 1023) / 1024
    let depth = (k + blocks - 1) / blocks
    return (depth, max(1, level2CacheBytes / 4 / (depth * columnsPerPanel * MemoryLayout<Float>.stride)))
}

/// The size of one core's L2 cache in bytes, as the C library reports it (256 KiB when it
/// does not).
let level2CacheBytes: Int = {
    let reported = sysconf(Int32(_SC_LEVEL2_CACHE_SIZE))
    return reported > 0 ? reported : 1 << 18
}()

/// Room for `count` floats starting on a 64-byte cache line (free with `freeLines`), so
/// that packed panels' rows and vectors do not straddle lines.
func allocateLines(_ count: Int) -> UnsafeMutablePointer<Float> {
    UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
        .bindMemory(to: Float.self, capacity: count)
}

/// Frees what `allocateLines` returned.
func freeLines(_ floats: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(floats).deallocate() }

/// A right operand op(B) [k, n] packed ahead for one instruction set, as `multiply` packs
/// it for each call: 32-column panels of k x 32 floats (laid out as `packPanels` says), zero
/// past column n. Kept for constant weights, so that inference does not repack them; packed
/// once per product elsewhere, so that threads splitting the product by rows share one copy.
public final class PackedPanels: @unchecked Sendable {
    public let n: Int, k: Int
    /// The number of 32-column panels.
    public let panelCount: Int
    /// The instruction set whose blocks read these panels.
    public let instructions: ProductInstructions
    let values: UnsafeMutablePointer<Float>

    /// Panels for an op(B) of [k, n] read with `instructions`, filled by `fill`.
    public init(n: Int, k: Int, instructions: ProductInstructions) {
        self.n = n
        self.k = k
        self.instructions = instructions
        panelCount = (n + columnsPerPanel - 1) / columnsPerPanel
        values = allocateLines(max(1, panelCount * k * columnsPerPanel))
    }

    /// weight: [n, k], row-major (op(B) = weight^T); packed for `instructions`.
    public convenience init(weight: UnsafePointer<Float>, n: Int, k: Int, instructions: ProductInstructions) {
        self.init(n: n, k: k, instructions: instructions)
        fill(panels: 0..<panelCount, from: weight, ldb: k, transposed: true)
    }

    /// Packs `panels` of op(B): b[l * ldb + j], or b[j * ldb + l] when `transposed`.
    /// Threads may fill disjoint ranges of panels concurrently.
    public func fill(panels: Range<Int>, from b: UnsafePointer<Float>, ldb: Int, transposed: Bool) {
        for panel in panels {
            let first = panel * columnsPerPanel
            instructions.packPanels(
                transposed ? b + first * ldb : b + first, stride: ldb, alongRows: transposed,
                columns: min(columnsPerPanel, n - first), depth: k, into: values + panel * k * columnsPerPanel)
        }
    }

    deinit { freeLines(values) }

    /// Steps k0... of the panel whose first column is `first`.
    func panel(first: Int, k0: Int) -> UnsafePointer<Float> {
        UnsafePointer(values + (first / columnsPerPanel) * k * columnsPerPanel + k0 * instructions.panelStep)
    }
}

/// C[m, columns] += op(A)[m, k] op(B)[k, columns] on the calling thread; with `overwrite`,
/// C = bias + op(A) op(B) (bias [n], indexed by column, added to every row; zero when nil),
/// which spares the caller filling C first. The sum for each element starts from C (or the
/// bias) and adds the products in order of l.
/// op(A)[i, l] is a[i * lda + l], or a[l * lda + i] with transposeA; op(B)[l, j] is
/// b[l * ldb + j], or b[j * ldb + l] with transposeB. columns must start at a multiple of
/// 32; threads given disjoint column ranges write disjoint parts of C, and every element
/// is summed in the same order whatever the split. With `packedB` (op(B) packed
/// ahead) the panels are read from it instead of packed here: the same values, the same
/// sums. With `rowSums` (transposeA only), rowSums[i] += the sum of op(A)[i, 0..<k] for i <
/// m, taken from the packed slivers (a bias gradient without another pass over A): per
/// depth block of 256 as `ck_avx512_add_sliver_sums` adds, the blocks in order.
/// `instructions` must be ones the CPU has.
public func multiply(
    m: Int, k: Int, columns: Range<Int>, a: UnsafePointer<Float>, lda: Int, transposeA: Bool,
    b: UnsafePointer<Float>, ldb: Int, transposeB: Bool, c: UnsafeMutablePointer<Float>, ldc: Int,
    overwrite: Bool = false, bias: UnsafePointer<Float>? = nil, packedB: PackedPanels? = nil,
    rowSums: UnsafeMutablePointer<Float>? = nil, instructions: ProductInstructions
) {
    precondition(columns.lowerBound % columnsPerPanel == 0, "column range must start on a panel")
    precondition(rowSums == nil || transposeA, "row sums come from packed slivers of a transposed A")
    precondition(
        packedB.map { $0.k == k && columns.upperBound <= $0.n && $0.instructions == instructions } ?? true,
        "packed panels of another shape or instruction set than B")
    if m == 0 || columns.isEmpty || k == 0 { return }
    let panelCount = (columns.count + columnsPerPanel - 1) / columnsPerPanel
    // Buffers as large as this product needs (small ones, as attention's, stay small).
    let maximumDepth = min(depthPerBlock, k)
    let packed = allocateLines(
        packedB == nil ? min(panelsPerGroup, panelCount) * maximumDepth * columnsPerPanel : 1)
    defer { freeLines(packed) }
    // A with its rows along the depth (not transposed) is read where it is: its twelve rows
    // stream past the panel as a packed sliver would. Transposed, it is packed: all of its
    // slivers for a depth block at once, row by row of A (one pass over whole rows where a
    // sliver at a time reads 48 bytes of each row, rows kilobytes apart, which the
    // hardware's prefetch does not follow), shared by the panel groups, if they stay in
    // cache (up to 2 MB); else each sliver just before its use, for each group.
    let readsRows = !transposeA
    let tileCount = (m + rowsPerTile - 1) / rowsPerTile
    // B packed ahead that stays in L2 (up to 1 MiB for these columns) with A read in place:
    // every panel in one group and the whole depth in one block, so that each sliver of A
    // is read from memory once and each block of C is written once, not read back and
    // rewritten for every block of depth (the sums keep their order either way).
    let readsRowsPastPackedB = readsRows && packedB != nil
    let wholeDepth = readsRowsPastPackedB && panelCount * k * columnsPerPanel <= 1 << 18
    let (depthBlock, groupSize) =
        wholeDepth
        ? (k, panelCount)
        : readsRowsPastPackedB && instructions == .avx2 ? avx2RowsBlocking(k: k) : (depthPerBlock, panelsPerGroup)
    let shared = !readsRows && tileCount * rowsPerTile * depthPerBlock <= 1 << 19
    let slivers = allocateLines(
        readsRows ? 1 : (shared ? tileCount : 1) * rowsPerTile * maximumDepth)
    defer { freeLines(slivers) }
    /// Packs sliver[l][r] = op(A)[r0 + r, k0 + l], zero past the last row.
    func packSliver(_ sliver: UnsafeMutablePointer<Float>, r0: Int, k0: Int, depth: Int) {
        let rows = min(rowsPerTile, m - r0)
        let start = transposeA ? a + k0 * lda + r0 : a + r0 * lda + k0
        instructions.pack(
            start, stride: lda, alongRows: !transposeA, rows: rows, depth: depth, into: sliver, width: rowsPerTile)
    }
    for k0 in stride(from: 0, to: k, by: depthBlock) {
        let depth = min(depthBlock, k - k0)
        let fresh = overwrite && k0 == 0
        // For AVX2, the distance from a panel's left half to its right half (`packPanels`).
        let halfOffset = (packedB?.k ?? depth) * 16
        if shared {
            instructions.pack(
                a + k0 * lda, stride: lda, alongRows: false, rows: m, depth: depth, into: slivers, width: rowsPerTile)
            if let rowSums { instructions.addSliverSums(slivers, rows: m, depth: depth, to: rowSums) }
        }
        for group in stride(from: 0, to: panelCount, by: groupSize) {
            let panels = min(groupSize, panelCount - group)
            // Pack: packed[q][l][j] = op(B)[k0 + l, column(q, j)], zero past the last column;
            // B's rows along the columns are packed for the whole group in one pass over them.
            let groupFirst = columns.lowerBound + group * columnsPerPanel
            if packedB == nil && !transposeB {
                instructions.packPanels(
                    b + k0 * ldb + groupFirst, stride: ldb, alongRows: false,
                    columns: min(panels * columnsPerPanel, columns.upperBound - groupFirst), depth: depth,
                    into: packed)
            }
            for q in 0..<panels where packedB == nil && transposeB {
                let first = groupFirst + q * columnsPerPanel
                let width = min(columnsPerPanel, columns.upperBound - first)
                instructions.packPanels(
                    b + first * ldb + k0, stride: ldb, alongRows: true, columns: width, depth: depth,
                    into: packed + q * depth * columnsPerPanel)
            }
            for r0 in stride(from: 0, to: m, by: rowsPerTile) {
                let rows = min(rowsPerTile, m - r0)
                let sliver: UnsafePointer<Float>
                if readsRows {
                    sliver = a + r0 * lda + k0
                } else if shared {
                    sliver = UnsafePointer(slivers + (r0 / rowsPerTile) * rowsPerTile * depth)
                } else {
                    packSliver(slivers, r0: r0, k0: k0, depth: depth)
                    sliver = UnsafePointer(slivers)
                    if let rowSums, group == 0 {
                        instructions.addSliverSums(sliver, rows: rows, depth: depth, to: rowSums + r0)
                    }
                }
                // In the first group of panels, the next sliver's rows of A, read where they
                // are, are prefetched into L2 while this one passes the panels, a share of
                // the rows per panel: the first pass over a sliver reads A from memory
                // (activations are written long before), and twelve rows at a time were more
                // than the hardware's prefetch kept up with. On the Intel Xeon (family 6,
                // model 207), one thread, A cold (a pool larger than L3), three runs each:
                // 4160 x 192 x 192 went from 59-71% to 78-83% of the FMA peak, 4160 x 768 x
                // 192 from 76-80% to 85-86%. Later groups find the slivers in L2.
                let nextRows = readsRows && group == 0 ? max(0, min(rowsPerTile, m - r0 - rowsPerTile)) : 0
                for q in 0..<panels {
                    let aheadStart = q * nextRows / panels
                    let aheadCount = (q + 1) * nextRows / panels - aheadStart
                    let ahead = aheadCount > 0 ? a + (r0 + rowsPerTile + aheadStart) * lda + k0 : nil
                    let first = columns.lowerBound + (group + q) * columnsPerPanel
                    let width = min(columnsPerPanel, columns.upperBound - first)
                    let panel =
                        packedB?.panel(first: first, k0: k0) ?? UnsafePointer(packed + q * depth * columnsPerPanel)
                    let tile = c + r0 * ldc + first
                    let start = fresh ? bias.map { $0 + first } : nil
                    let full = rows == rowsPerTile && width == columnsPerPanel
                    let overwriting: Int32 = fresh ? 1 : 0
                    // The instruction set's register blocks: whole or at an edge, from a packed
                    // sliver or from A's rows in place.
                    switch (instructions, readsRows, full) {
                    case (.avx512, true, true):
                        ck_avx512_tile_12x32_rows(
                            sliver, lda, panel, depth, tile, ldc, overwriting, start, ahead, aheadCount)
                    case (.avx512, true, false):
                        ck_avx512_tile_edge_rows(
                            sliver, lda, panel, depth, tile, ldc, rows, width, overwriting, start, ahead,
                            aheadCount)
                    case (.avx512, false, true):
                        ck_avx512_tile_12x32(sliver, panel, depth, tile, ldc, overwriting, start)
                    case (.avx512, false, false):
                        ck_avx512_tile_edge(sliver, panel, depth, tile, ldc, rows, width, overwriting, start)
                    case (.avx2, true, true):
                        ck_avx2_tile_12x32_rows(
                            sliver, lda, panel, halfOffset, depth, tile, ldc, overwriting, start, ahead,
                            aheadCount)
                    case (.avx2, true, false):
                        ck_avx2_tile_edge_rows(
                            sliver, lda, panel, halfOffset, depth, tile, ldc, rows, width, overwriting, start,
                            ahead, aheadCount)
                    case (.avx2, false, true):
                        ck_avx2_tile_12x32(sliver, panel, halfOffset, depth, tile, ldc, overwriting, start)
                    case (.avx2, false, false):
                        ck_avx2_tile_edge(
                            sliver, panel, halfOffset, depth, tile, ldc, rows, width, overwriting, start)
                    }
                }
            }
        }
    }
}
