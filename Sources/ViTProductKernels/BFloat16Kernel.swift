// Products in bfloat16 for CPUs with AVX512-BF16 (Intel Cooper Lake and later, AMD Zen 4
// and later): operands rounded to bfloat16 (8 bits of mantissa), products summed in single
// precision by VDPBF16PS, two steps of depth per instruction. The blocking is the
// single-precision kernel's (ProductKernel.swift): 32-column panels of the weights packed
// once, A's rows read where they are (after rounding), 12 x 32 blocks of C in registers.

import CKernels

/// Pairs of depth steps in one block of a panel: 256 pairs, 32 KiB, as the
/// single-precision panel's 256 steps.
let pairsPerBlock = 256

/// A weight matrix W [n, k] rounded to bfloat16 and packed once for products x W^T in
/// bfloat16: 32-column panels of depth pairs [panel][pair][32] (a pair is two bfloat16
/// values in one 32-bit word, the lower depth in the low half), zero past column n and,
/// for odd k, at depth k.
public final class PackedPanelsBF16: @unchecked Sendable {
    public let n: Int, k: Int
    /// Depth pairs per panel: k / 2 rounded up.
    let pairs: Int
    let values: UnsafeMutablePointer<UInt32>

    /// weight: [n, k], row-major.
    public init(weight: UnsafePointer<Float>, n: Int, k: Int) {
        self.n = n
        self.k = k
        pairs = (k + 1) / 2
        let panels = (n + columnsPerPanel - 1) / columnsPerPanel
        values = .allocate(capacity: max(1, panels * pairs * columnsPerPanel))
        let rounded = UnsafeMutablePointer<UInt32>.allocate(capacity: max(1, n * pairs))
        defer { rounded.deallocate() }
        rounded.withMemoryRebound(to: UInt16.self, capacity: 2 * n * pairs) {
            ck_bf16_round_rows(weight, k, n, k, $0, 2 * pairs)
        }
        for panel in 0..<panels {
            let first = panel * columnsPerPanel
            ck_bf16_pack_panel(
                rounded + first * pairs, pairs, min(columnsPerPanel, n - first), pairs,
                values + panel * pairs * columnsPerPanel)
        }
    }

    deinit { values.deallocate() }

    /// Pairs q0... of the panel whose first column is `first`.
    func panel(first: Int, pair q0: Int) -> UnsafePointer<UInt32> {
        UnsafePointer(values + (first / columnsPerPanel) * pairs * columnsPerPanel + q0 * columnsPerPanel)
    }
}

/// C[m, columns] += bf16(A)[m, k] bf16(W)^T[k, columns] on the calling thread, W packed in
/// `weights`; with `overwrite`, C = bias + the product (bias [n] indexed by column, zero
/// when nil). A [m, k] row-major with row stride lda is rounded to bfloat16 here. Sums run
/// in single precision in order of depth pairs; columns must start at a multiple of 32.
/// Needs AVX-512F, BW, VL and AVX512-BF16 (`Machine.hasBFloat16Products`).
public func multiplyBFloat16(
    m: Int, k: Int, columns: Range<Int>, a: UnsafePointer<Float>, lda: Int, weights: PackedPanelsBF16,
    c: UnsafeMutablePointer<Float>, ldc: Int, overwrite: Bool = false, bias: UnsafePointer<Float>? = nil
) {
    precondition(columns.lowerBound % columnsPerPanel == 0, "column range must start on a panel")
    precondition(weights.k == k && columns.upperBound <= weights.n, "packed weights of another shape")
    if m == 0 || columns.isEmpty || k == 0 { return }
    let pairs = weights.pairs
    let rows = UnsafeMutablePointer<UInt32>.allocate(capacity: m * pairs)
    defer { rows.deallocate() }
    rows.withMemoryRebound(to: UInt16.self, capacity: 2 * m * pairs) { ck_bf16_round_rows(a, lda, m, k, $0, 2 * pairs) }
    let panelCount = (columns.count + columnsPerPanel - 1) / columnsPerPanel
    for q0 in stride(from: 0, to: pairs, by: pairsPerBlock) {
        let depth = min(pairsPerBlock, pairs - q0)
        let fresh = overwrite && q0 == 0
        for group in stride(from: 0, to: panelCount, by: panelsPerGroup) {
            let panels = min(panelsPerGroup, panelCount - group)
            for r0 in stride(from: 0, to: m, by: rowsPerTile) {
                for q in 0..<panels {
                    let first = columns.lowerBound + (group + q) * columnsPerPanel
                    ck_bf16_tile(
                        rows + r0 * pairs + q0, pairs, weights.panel(first: first, pair: q0), depth,
                        c + r0 * ldc + first,
                        ldc, min(rowsPerTile, m - r0), min(columnsPerPanel, columns.upperBound - first), fresh ? 1 : 0,
                        fresh ? bias.map { $0 + first } : nil)
                }
            }
        }
    }
}
