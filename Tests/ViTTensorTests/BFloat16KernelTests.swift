import CKernels
import Testing
import ViTProductKernels

@testable import ViTTensor

/// A float rounded to bfloat16 by hand: to nearest, ties to even (the upper 16 bits kept).
private func roundedToBFloat16(_ x: Float) -> Float {
    if x.isNaN { return x }
    let bits = x.bitPattern
    return Float(bitPattern: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000)
}

/// The bfloat16 product (rounding, panel packing, VDPBF16PS register blocks) against a
/// float64 triple loop over the same inputs rounded to bfloat16 by hand, on every edge of
/// its tiling: rows across 12-row blocks, columns across 16- and 32-column halves and
/// panels, odd and even depths across the 256-pair depth blocks, the three ways a block of
/// C starts. C sits in a wider buffer whose other elements must not change.
@Suite(.enabled(if: Machine.hasBFloat16Products, "the CPU has no AVX512-BF16"))
struct BFloat16KernelTests {
    typealias Start = ProductKernelTests.Start

    @Test func roundingIsToNearestEven() {
        let values: [Float] = [
            1, -1, 0, -0, .infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
            Float(bitPattern: 0x3F80_8000),  // halfway, even below: down
            Float(bitPattern: 0x3F81_8000),  // halfway, odd below: up
            Float(bitPattern: 0x3F80_8001), Float(bitPattern: 0x3F80_7FFF), 3.141_592_7, -2.718_281_8, 1e-30, 6.5e4,
        ]
        let depth = values.count, width = depth + 3
        var out = [UInt16](repeating: 0xFFFF, count: 2 * width)
        values.withUnsafeBufferPointer { v in
            out.withUnsafeMutableBufferPointer {
                ck_bf16_round_rows(v.baseAddress!, 0, 2, depth, $0.baseAddress!, width)
            }
        }
        for row in 0..<2 {
            for (l, x) in values.enumerated() {
                let got = Float(bitPattern: UInt32(out[row * width + l]) << 16)
                #expect(got.bitPattern == roundedToBFloat16(x).bitPattern, "\(x): \(got)")
            }
            #expect(out[(row * width + depth)..<((row + 1) * width)].allSatisfy { $0 == 0 }, "padding past the depth")
        }
        var nan: UInt16 = 0
        [Float.nan].withUnsafeBufferPointer { ck_bf16_round_rows($0.baseAddress!, 1, 1, 1, &nan, 1) }
        #expect(Float(bitPattern: UInt32(nan) << 16).isNaN)
    }

    @Test(arguments: [1, 2, 3, 31, 511, 512, 513, 1100])
    func everyEdgeMatchesFloat64(k: Int) {
        var rng = SeededGenerator(seed: UInt64(k))
        let rowCounts = k > 600 ? [13, 25] : [1, 11, 12, 13, 25]
        let columnCounts = k > 600 ? [33, 70] : [1, 16, 17, 31, 32, 33, 70]
        var failures: [String] = []
        for m in rowCounts {
            for n in columnCounts {
                for start in Start.allCases {
                    if let report = check(m: m, n: n, k: k, start: start, using: &rng) { failures.append(report) }
                }
            }
        }
        let failed = failures.count
        #expect(failed == 0, "first failing case: \(failures.first ?? "")")
    }

    /// A column range that starts at a later panel leaves the columns before it alone.
    @Test func columnRangeWritesOnlyItsColumns() {
        var rng = SeededGenerator(seed: 9)
        #expect(check(m: 14, n: 75, k: 40, start: .bias, columns: 32..<75, using: &rng) == nil)
        #expect(check(m: 14, n: 75, k: 41, start: .accumulate, columns: 64..<75, using: &rng) == nil)
    }

    /// `linear` in bfloat16: against float64 over the rounded inputs, with a bias, a
    /// residual and GELU; constant (packed once) and per-call weights and 1 to 3 threads
    /// give the same bits.
    @Test func linearMatchesFloat64AndThreadCounts() {
        var rng = SeededGenerator(seed: 4)
        let (rows, inFeatures, outFeatures) = (50, 77, 90)
        let x = Tensor.normal([rows, inFeatures], using: &rng)
        let weight = Tensor.normal([outFeatures, inFeatures], using: &rng)
        let bias = Tensor.normal([outFeatures], using: &rng)
        let residual = Tensor.normal([rows, outFeatures], using: &rng)
        let reference = withProductPrecision(.bfloat16) {
            withThreadCount(1) { linear(x, weight: weight, bias: bias, residual: residual) }
        }
        let u = 0x1p-24, allowance = 4 * Double(inFeatures).squareRoot() * u
        var worst = 0.0
        for i in 0..<rows {
            for j in 0..<outFeatures {
                var sum = Double(bias.scalars[j]), magnitude = Swift.abs(sum)
                for l in 0..<inFeatures {
                    let product =
                        Double(roundedToBFloat16(x.scalars[i * inFeatures + l]))
                        * Double(roundedToBFloat16(weight.scalars[j * inFeatures + l]))
                    sum += product
                    magnitude += Swift.abs(product)
                }
                let r = Double(residual.scalars[i * outFeatures + j])
                let excess =
                    Swift.abs(Double(reference.scalars[i * outFeatures + j]) - (sum + r))
                    - allowance * (magnitude + Swift.abs(r))
                worst = max(worst, excess)
            }
        }
        #expect(worst <= 0, "beyond the rounding allowance by \(worst)")

        let constantWeight = weight.copy()
        constantWeight.storage.markConstant()
        for threads in 1...3 {
            let (plain, packed, activated, activatedOnce) = withProductPrecision(.bfloat16) {
                withThreadCount(threads) {
                    (
                        linear(x, weight: weight, bias: bias, residual: residual),
                        linear(x, weight: constantWeight, bias: bias, residual: residual),
                        linear(x, weight: weight, bias: bias, activation: .tanh),
                        linear(x, weight: constantWeight, bias: bias, activation: .tanh)
                    )
                }
            }
            #expect(plain.scalars.map(\.bitPattern) == reference.scalars.map(\.bitPattern), "\(threads) threads")
            #expect(packed.scalars.map(\.bitPattern) == reference.scalars.map(\.bitPattern), "\(threads) threads")
            let noResidual = withProductPrecision(.bfloat16) {
                withThreadCount(1) { linear(x, weight: weight, bias: bias) }
            }
            let expectedGELU = noResidual.gelu(approximation: .tanh)
            #expect(activated.scalars.map(\.bitPattern) == expectedGELU.scalars.map(\.bitPattern))
            #expect(activatedOnce.scalars.map(\.bitPattern) == expectedGELU.scalars.map(\.bitPattern))
        }
    }

    /// Runs one product and returns a description of the first wrong element, or nil.
    func check(
        m: Int, n: Int, k: Int, start: Start, columns: Range<Int>? = nil, using rng: inout SeededGenerator
    ) -> String? {
        let columns = columns ?? 0..<n
        let (lda, ldc) = (k + 3, n + 7)
        let a = (0..<(m * lda)).map { _ in Float.random(in: -1...1, using: &rng) }
        let w = (0..<(n * k)).map { _ in Float.random(in: -1...1, using: &rng) }
        let bias = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
        // One guard row above and below C; guard columns between its rows (ldc > n).
        let before = (0..<((m + 2) * ldc)).map { _ in Float.random(in: -1...1, using: &rng) }
        var c = before
        let weights = w.withUnsafeBufferPointer { PackedPanelsBF16(weight: $0.baseAddress!, n: n, k: k) }
        a.withUnsafeBufferPointer { a in
            bias.withUnsafeBufferPointer { bias in
                c.withUnsafeMutableBufferPointer { c in
                    multiplyBFloat16(
                        m: m, k: k, columns: columns, a: a.baseAddress!, lda: lda, weights: weights,
                        c: c.baseAddress! + ldc, ldc: ldc, overwrite: start != .accumulate,
                        bias: start == .bias ? bias.baseAddress! : nil)
                }
            }
        }
        let u = 0x1p-24, allowance = 4 * Double(k).squareRoot() * u
        return firstWrongElement(
            c, before: before, m: m, ldc: ldc, columns: columns, allowance: allowance,
            label: "[\(m), \(n), \(k)] \(start)"
        ) { i, j in
            start.referenceSum(before: before[(i + 1) * ldc + j], bias: bias[j], depth: k) { l in
                Double(roundedToBFloat16(a[i * lda + l])) * Double(roundedToBFloat16(w[j * k + l]))
            }
        }
    }
}
