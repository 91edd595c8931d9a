import CKernels
import Testing
import ViTProductKernels

@testable import ViTTensor

/// The instruction sets of our product that this CPU has.
private let instructionSets: [ProductInstructions] =
    (Machine.hasAVX512F ? [.avx512] : []) + (Machine.hasAVX2FMA ? [.avx2] : [])

/// Our products, AVX-512 and AVX2 (packing, 12 x 32 register blocks, masked edge blocks),
/// against a float64 triple loop, on every edge of their tiling: rows 1 to 25 (full and partial
/// 12-row slivers), columns across 16- and 32-column panel halves, depths across the
/// 16-step transposing blocks of the packing and the 256-step depth blocks, all four
/// operand layouts, and the three ways a block of C starts (accumulating onto C, from
/// zero, from a bias row). C sits in a wider buffer whose other elements must not change.
/// Each instruction set runs where the CPU has it.
@Suite(.enabled(if: !instructionSets.isEmpty, "the CPU has neither AVX-512F nor AVX2 with FMA"))
struct ProductKernelTests {
    /// How a block of C starts: from C, from zero, or from the bias row.
    enum Start: CaseIterable {
        case accumulate, zero, bias

        /// The sum's first term for an element holding `before` whose column's bias is `bias`.
        func initialSum(before: Float, bias: Float) -> Double {
            switch self {
            case .accumulate: Double(before)
            case .zero: 0
            case .bias: Double(bias)
            }
        }

        /// The float64 sum for an element, from `initialSum` then `product(l)` for l in
        /// 0..<depth in order, and the sum of the magnitudes of its terms.
        func referenceSum(before: Float, bias: Float, depth: Int, _ product: (Int) -> Double) -> (Double, Double) {
            var sum = initialSum(before: before, bias: bias)
            var magnitude = Swift.abs(sum)
            for l in 0..<depth {
                let term = product(l)
                sum += term
                magnitude += Swift.abs(term)
            }
            return (sum, magnitude)
        }
    }

    static let depths = [1, 15, 16, 17, 255, 256, 257, 600]

    @Test(arguments: instructionSets, depths)
    func everyEdgeMatchesFloat64(instructions: ProductInstructions, k: Int) {
        var rng = SeededGenerator(seed: UInt64(k))
        let rowCounts = k > 300 ? [13, 25] : [1, 11, 12, 13, 25]
        let columnCounts = k > 300 ? [33, 70] : [1, 16, 17, 31, 32, 33, 70]
        var failures: [String] = []
        for m in rowCounts {
            for n in columnCounts {
                failures += checkEveryLayoutAndStart(m: m, n: n, k: k, instructions: instructions, using: &rng)
            }
        }
        let failed = failures.count
        #expect(failed == 0, "first failing case: \(failures.first ?? "")")
    }

    /// A column range that starts at a later panel leaves the columns before it alone.
    @Test(arguments: instructionSets)
    func columnRangeWritesOnlyItsColumns(instructions: ProductInstructions) {
        var rng = SeededGenerator(seed: 9)
        #expect(
            check(
                m: 14, n: 75, k: 40, transposeA: false, transposeB: true, start: .bias, columns: 32..<75,
                instructions: instructions, using: &rng) == nil)
        #expect(
            check(
                m: 14, n: 75, k: 40, transposeA: true, transposeB: false, start: .accumulate, columns: 64..<75,
                instructions: instructions, using: &rng) == nil)
    }

    /// More columns than one group of panels holds (a group of eight, then a partial one
    /// ending in a partial panel), several slivers and depth blocks: B packed a group at a
    /// time and A's slivers a depth block at a time, for every layout and start, over the
    /// whole width and from a later panel on.
    @Test(arguments: instructionSets)
    func severalPanelGroupsMatchFloat64(instructions: ProductInstructions) {
        var rng = SeededGenerator(seed: 33)
        var failures: [String] = []
        for columns in [0..<300, 32..<300] {
            failures += checkEveryLayoutAndStart(
                m: 37, n: 300, k: 257, columns: columns, instructions: instructions, using: &rng)
        }
        let failed = failures.count
        #expect(failed == 0, "first failing case: \(failures.first ?? "")")
    }

    /// B packed ahead (`PackedPanels`, as for weights): small enough to stay in L2, every panel
    /// in one group and the whole depth in one block where A is read in place; larger, groups
    /// of panels and blocks of depth (AVX2: the whole depth of 1,000 in one block, 2,100 in
    /// three of 700, and 2,045 with rows 8 KiB apart in two of 1,023). Against float64, and the
    /// same bits as B packed by the call, for every layout and start, over the whole width and
    /// from a later panel on.
    @Test(arguments: instructionSets)
    func panelsPackedAheadMatchFloat64(instructions: ProductInstructions) {
        var rng = SeededGenerator(seed: 41)
        var failures: [String] = []
        // 10 panels of 257 steps (82,240 floats) fit in the 1 MiB; of 1,000 steps they do not.
        for (m, k) in [(37, 257), (13, 1_000), (13, 2_100), (13, 2_045)] {
            for columns in [0..<300, 32..<300] {
                failures += checkEveryLayoutAndStart(
                    m: m, n: 300, k: k, columns: columns, packingBAhead: true, instructions: instructions, using: &rng)
            }
        }
        let failed = failures.count
        #expect(failed == 0, "first failing case: \(failures.first ?? "")")
    }

    /// The row sums of a transposed A taken from its packed slivers (the bias gradient beside
    /// the weight gradient), added to what the buffer held, against float64: slivers packed
    /// once per depth block (37 rows) and one at a time (2,100 rows, more than 2 MB of
    /// slivers), partial slivers and depth blocks; guard elements on both sides unchanged.
    /// Both instruction sets give the same bits.
    @Test func rowSumsMatchFloat64() {
        var rng = SeededGenerator(seed: 41)
        for (m, k) in [(37, 257), (2100, 300)] {
            let (n, lda) = (40, m + 3)
            let a = (0..<(k * lda)).map { _ in Float.random(in: -1...1, using: &rng) }
            let b = (0..<(k * n)).map { _ in Float.random(in: -1...1, using: &rng) }
            let before = (0..<(m + 2)).map { _ in Float.random(in: -1...1, using: &rng) }
            var results: [[Float]] = []
            for instructions in instructionSets {
                var sums = before
                var c = [Float](repeating: 0, count: m * n)
                sums.withUnsafeMutableBufferPointer { sums in
                    multiply(
                        m: m, k: k, columns: 0..<n, a: a, lda: lda, transposeA: true, b: b, ldb: n, transposeB: false,
                        c: &c, ldc: n, overwrite: true, rowSums: sums.baseAddress! + 1, instructions: instructions)
                }
                let allowance = 4 * Double(k).squareRoot() * 0x1p-24
                let wrong = (0..<m).first { i in
                    var (sum, magnitude) = (Double(before[i + 1]), Swift.abs(Double(before[i + 1])))
                    for l in 0..<k {
                        sum += Double(a[l * lda + i])
                        magnitude += Swift.abs(Double(a[l * lda + i]))
                    }
                    return Swift.abs(Double(sums[i + 1]) - sum) > allowance * magnitude
                }
                #expect(wrong == nil, "\(instructions) [\(m), \(k)]: row \(wrong ?? -1)")
                #expect(sums.first == before.first && sums.last == before.last, "\(instructions): guards written")
                results.append(sums)
            }
            if results.count == 2 {
                let firstDifference = results[0].indices.first {
                    results[0][$0].bitPattern != results[1][$0].bitPattern
                }
                #expect(firstDifference == nil, "[\(m), \(k)]: AVX2 differs at \(firstDifference ?? -1)")
            }
        }
    }

    /// AVX2 and AVX-512 form every sum in the same order with the same fused multiply-adds,
    /// so they give the same bits, for every layout and edge (where the CPU has both).
    @Test(.enabled(if: instructionSets.count == 2, "the CPU lacks AVX-512F or AVX2"))
    func bothInstructionSetsGiveTheSameBits() {
        var rng = SeededGenerator(seed: 21)
        for (m, n, k) in [(25, 70, 257), (13, 33, 17), (1, 1, 1), (12, 32, 600)] {
            for (transposeA, transposeB) in Self.layouts {
                let (lda, ldb) = ((transposeA ? m : k) + 3, (transposeB ? k : n) + 5)
                let a = (0..<((transposeA ? k : m) * lda)).map { _ in Float.random(in: -1...1, using: &rng) }
                let b = (0..<((transposeB ? n : k) * ldb)).map { _ in Float.random(in: -1...1, using: &rng) }
                let bias = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
                let results = instructionSets.map { instructions in
                    var c = [Float](repeating: .nan, count: m * n)
                    c.withUnsafeMutableBufferPointer { c in
                        multiply(
                            m: m, k: k, columns: 0..<n, a: a, lda: lda, transposeA: transposeA, b: b, ldb: ldb,
                            transposeB: transposeB, c: c.baseAddress!, ldc: n, overwrite: true, bias: bias,
                            instructions: instructions)
                    }
                    return c.map(\.bitPattern)
                }
                let firstDifference = results[0].indices.first { results[0][$0] != results[1][$0] }
                #expect(
                    firstDifference == nil,
                    "[\(m), \(n), \(k)] transposeA \(transposeA) transposeB \(transposeB): element \(firstDifference ?? -1)"
                )
            }
        }
    }

    /// The four operand layouts: (transposeA, transposeB).
    static let layouts = [(false, false), (true, false), (false, true), (true, true)]

    /// `check` for every layout and every start, in that order; the failures' descriptions.
    func checkEveryLayoutAndStart(
        m: Int, n: Int, k: Int, columns: Range<Int>? = nil, packingBAhead: Bool = false,
        instructions: ProductInstructions, using rng: inout SeededGenerator
    ) -> [String] {
        var failures: [String] = []
        for (transposeA, transposeB) in Self.layouts {
            for start in Start.allCases {
                let report = check(
                    m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB, start: start, columns: columns,
                    packingBAhead: packingBAhead, instructions: instructions, using: &rng)
                if let report { failures.append(report) }
            }
        }
        return failures
    }

    /// Runs one product and returns a description of the first wrong element, or nil. With
    /// `packingBAhead`, B is packed into `PackedPanels` first, and C must also have the bits
    /// of the same product with B packed by the call.
    func check(
        m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool, start: Start, columns: Range<Int>? = nil,
        packingBAhead: Bool = false, instructions: ProductInstructions, using rng: inout SeededGenerator
    ) -> String? {
        let columns = columns ?? 0..<n
        let (lda, ldb, ldc) = ((transposeA ? m : k) + 3, (transposeB ? k : n) + 5, n + 7)
        let a = (0..<((transposeA ? k : m) * lda)).map { _ in Float.random(in: -1...1, using: &rng) }
        let b = (0..<((transposeB ? n : k) * ldb)).map { _ in Float.random(in: -1...1, using: &rng) }
        let bias = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
        // One guard row above and below C; guard columns between its rows (ldc > n).
        let before = (0..<((m + 2) * ldc)).map { _ in Float.random(in: -1...1, using: &rng) }
        let packed = packingBAhead ? PackedPanels(n: n, k: k, instructions: instructions) : nil
        packed?.fill(panels: 0..<packed!.panelCount, from: b, ldb: ldb, transposed: transposeB)
        func product(packedB: PackedPanels?) -> [Float] {
            var c = before
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    bias.withUnsafeBufferPointer { bias in
                        c.withUnsafeMutableBufferPointer { c in
                            multiply(
                                m: m, k: k, columns: columns, a: a.baseAddress!, lda: lda, transposeA: transposeA,
                                b: b.baseAddress!, ldb: ldb, transposeB: transposeB, c: c.baseAddress! + ldc,
                                ldc: ldc, overwrite: start != .accumulate,
                                bias: start == .bias ? bias.baseAddress! : nil, packedB: packedB,
                                instructions: instructions)
                        }
                    }
                }
            }
            return c
        }
        let c = product(packedB: packed)
        let label = "\(instructions) [\(m), \(n), \(k)] transposeA \(transposeA) transposeB \(transposeB) \(start)"
        if packed != nil, c.map(\.bitPattern) != product(packedB: nil).map(\.bitPattern) {
            return "\(label): B packed ahead gives other bits than B packed by the call"
        }
        let u = 0x1p-24, allowance = 4 * Double(k).squareRoot() * u
        return firstWrongElement(
            c, before: before, m: m, ldc: ldc, columns: columns, allowance: allowance, label: label
        ) { i, j in
            start.referenceSum(before: before[(i + 1) * ldc + j], bias: bias[j], depth: k) { l in
                let x = transposeA ? a[l * lda + i] : a[i * lda + l]
                let y = transposeB ? b[j * ldb + l] : b[l * ldb + j]
                return Double(x) * Double(y)
            }
        }
    }
}

/// Checks a product's C, rows 1...m of `c` (one guard row above and below, row stride ldc):
/// elements in `columns` against `expected(i, j)` (the float64 sum and the sum of the
/// magnitudes of its terms) within allowance * magnitude, every other element against
/// `before`. A description of the first wrong element, or nil.
func firstWrongElement(
    _ c: [Float], before: [Float], m: Int, ldc: Int, columns: Range<Int>, allowance: Double, label: String,
    expected: (Int, Int) -> (sum: Double, magnitude: Double)
) -> String? {
    for row in 0..<(m + 2) {
        for column in 0..<ldc {
            let index = row * ldc + column
            guard (1...m).contains(row) && columns.contains(column) else {
                if c[index] != before[index] { return "\(label): element \(index) outside C changed" }
                continue
            }
            let (sum, magnitude) = expected(row - 1, column)
            if Swift.abs(Double(c[index]) - sum) > allowance * magnitude + 1e-30 {
                return "\(label): C[\(row - 1), \(column)] = \(c[index]), expected \(sum)"
            }
        }
    }
    return nil
}

/// CKernels' exp, GELUs and GELU derivatives, sixteen lanes of AVX-512 and eight of AVX2,
/// give the same bits as ViTTensor's eight-lane Swift forms (which the libm tests in
/// TensorTests check), over a sweep through every range the forms treat apart (exp's
/// clamps, tanh's polynomial and exponential branches, erf's tails), with ±0, ±infinity and
/// NaN; lengths that leave a partial last vector. Each instruction set runs where the CPU
/// has it.
@Suite(.enabled(if: Machine.hasAVX512F || Machine.hasAVX2FMA, "the CPU has neither AVX-512F nor AVX2 with FMA"))
struct VectorMathKernelTests {
    static let inputs: [Float] = {
        var values = (0...20_000).map { Float(-100 + 200 * Double($0) / 20_000) }
        values += (0...4_000).map { Float(-2 + 4 * Double($0) / 4_000) }
        values += [0, -0, .infinity, -.infinity, .nan, 88.37, 88.38, -87.336_544, -87.34, 0.625, -0.625]
        return values
    }()

    @Test func vectorFormsEqualSwiftForms() {
        let x = Self.inputs
        let shift: Float = 1.5
        let cases: [(String, Int32, Float, (SIMD8<Float>) -> SIMD8<Float>)] = [
            ("exp", Int32(CK_EXP_SHIFTED), shift, { fastExp($0 - shift) }),
            ("gelu", Int32(CK_GELU), 0, fastGELU),
            ("tanh gelu", Int32(CK_TANH_GELU), 0, fastTanhGELU),
            ("gelu derivative", Int32(CK_GELU_DERIVATIVE), 0, geluDerivative),
            ("tanh gelu derivative", Int32(CK_TANH_GELU_DERIVATIVE), 0, tanhGELUDerivative),
        ]
        let maps =
            (Machine.hasAVX512F ? [("avx512", ck_avx512_map)] : [])
            + (Machine.hasAVX2FMA ? [("avx2", ck_avx2_map)] : [])
        for (name, function, shiftArgument, lanes) in cases {
            for (instructions, map) in maps {
                for count in [x.count, 13] {
                    var vector = [Float](repeating: -1, count: count)
                    var swift = [Float](repeating: -1, count: count)
                    x.withUnsafeBufferPointer { x in
                        vector.withUnsafeMutableBufferPointer {
                            map(function, $0.baseAddress!, x.baseAddress!, count, shiftArgument)
                        }
                        swift.withUnsafeMutableBufferPointer {
                            mapLanes($0.baseAddress!, x.baseAddress!, n: count, lanes)
                        }
                    }
                    let differing = (0..<count).filter { vector[$0].bitPattern != swift[$0].bitPattern }
                    let firstInput = differing.first.map { x[$0] } ?? 0, differingCount = differing.count
                    #expect(
                        differingCount == 0,
                        "\(instructions) \(name): \(differingCount) of \(count) differ, first at x = \(firstInput)")
                }
            }
        }
    }
}
