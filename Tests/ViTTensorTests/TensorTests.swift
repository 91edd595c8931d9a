import Foundation
import Testing
import ViTTestSupport

@testable import ViTTensor

/// Hand-computed cases and fast-against-naive checks.
@Suite struct TensorTests {
    @Test func broadcastAddByHand() {
        let a = Tensor(shape: [3, 1], values: [1, 2, 3])
        let b = Tensor(shape: [2], values: [10, 20])
        let c = a + b
        #expect(c.shape == [3, 2])
        #expect(c.scalars == [11, 21, 12, 22, 13, 23])
        #expect((b - a).scalars == [9, 19, 8, 18, 7, 17])
        #expect((2 / Tensor(shape: [2], values: [4, 8])).scalars == [0.5, 0.25])
    }

    @Test func reductionsByHand() {
        let x = Tensor(shape: [2, 3], values: [1, 5, 3, 4, 2, 6])
        #expect(x.sum(axis: 0).scalars == [5, 7, 9])
        #expect(x.sum(axis: 1, keepingDimension: true).shape == [2, 1])
        #expect(x.sum(axis: -1).scalars == [9, 12])
        #expect(x.mean(axis: 0).scalars == [2.5, 3.5, 4.5])
        #expect(x.argmaxLastAxis() == [1, 2])
        #expect(x.sum() == 21)
    }

    /// Sums of 16-column register blocks, a narrower last block and a split across threads,
    /// against a float64 loop over small integers (every sum exact), and the same-shape
    /// elementwise operations in parallel chunks against each element computed alone.
    @Test func wideReductionsAndElementwiseAgainstLoops() {
        let (outer, n, inner) = (3, 700, 40)
        let values = (0..<(outer * n * inner)).map { Float(($0 * 7919) % 13) - 6 }
        let x = Tensor(shape: [outer, n, inner], values: values)
        for threads in [1, 2, 3] {
            let sums = withThreadCount(threads) { x.sum(axis: 1) }
            #expect(sums.shape == [outer, inner])
            for o in 0..<outer {
                for i in 0..<inner {
                    let expected = (0..<n).reduce(0.0) { $0 + Double(values[(o * n + $1) * inner + i]) }
                    #expect(Double(sums.data[o * inner + i]) == expected, "threads \(threads), [\(o), \(i)]")
                }
            }
        }
        let y = Tensor(shape: x.shape, values: values.map { $0 * 0.5 + 7 })
        let results = withThreadCount(2) { [x + y, x - y, x * y, x / y] }
        for i in stride(from: 0, to: values.count, by: 97) {
            let (a, b) = (values[i], values[i] * 0.5 + 7)
            #expect(results.map { $0.data[i] } == [a + b, a - b, a * b, a / b], "element \(i)")
        }
    }

    @Test func softmaxByHand() {
        // softmax([0, ln 3]) = [1/4, 3/4]; a large shift must not overflow.
        let x = Tensor(shape: [2, 2], values: [0, logf(3), 1000, 1000])
        let y = x.softmax()
        #expect(abs(y[0, 0] - 0.25) < 1e-6 && abs(y[0, 1] - 0.75) < 1e-6)
        #expect(y[1, 0] == 0.5 && y[1, 1] == 0.5)
    }

    @Test func geluByHand() {
        // gelu(0) = 0; gelu(1) = Phi(1) = 0.8413447; gelu(-1) = -0.1586553.
        let y = Tensor(shape: [3], values: [0, 1, -1]).gelu()
        #expect(y[0] == 0)
        #expect(abs(y[1] - 0.841_344_7) < 1e-6)
        #expect(abs(y[2] + 0.158_655_3) < 1e-6)
    }

    @Test func layerNormByHand() {
        // [1, 2, 3]: mean 2, biased variance 2/3 -> (x - 2) / sqrt(2/3) = [-1.2247449, 0, 1.2247449].
        let y = Tensor(shape: [1, 3], values: [1, 2, 3]).layerNorm(weight: nil, bias: nil, eps: 0)
        #expect(abs(y[0, 0] + 1.224_744_9) < 1e-6 && y[0, 1] == 0 && abs(y[0, 2] - 1.224_744_9) < 1e-6)
    }

    @Test func reshapeSharesStoragePermuteCopies() {
        let x = Tensor(shape: [2, 3], values: [0, 1, 2, 3, 4, 5])
        let r = x.reshaped([3, -1])
        #expect(r.shape == [3, 2])
        #expect(r.storage === x.storage)
        let p = x.permuted([1, 0])
        #expect(p.scalars == [0, 3, 1, 4, 2, 5])
        #expect(p.storage !== x.storage)
        #expect(Tensor.stack([x, x]).shape == [2, 2, 3])
    }

    /// The naive triple loop that the BLAS path is checked against.
    func naiveMatmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool) -> Tensor {
        let batch = broadcastShape(Array(a.shape.dropLast(2)), Array(b.shape.dropLast(2)))
        let a = a.reshaped(Array(repeating: 1, count: batch.count + 2 - a.rank) + a.shape)
        let b = b.reshaped(Array(repeating: 1, count: batch.count + 2 - b.rank) + b.shape)
        let am = transposeA ? a.transposed() : a, bm = transposeB ? b.transposed() : b
        let m = am.shape[am.rank - 2], k = am.shape[am.rank - 1], n = bm.shape[bm.rank - 1]
        let count = batch.reduce(1, *)
        let out = Tensor(shape: batch + [m, n])
        let strides = batch.isEmpty ? [] : Tensor(shape: batch).strides
        for index in 0..<count {
            var ia = 0, ib = 0, rest = index
            for axis in 0..<batch.count {
                let i = rest / strides[axis]
                rest %= strides[axis]
                ia = ia * am.shape[axis] + (am.shape[axis] == 1 ? 0 : i)
                ib = ib * bm.shape[axis] + (bm.shape[axis] == 1 ? 0 : i)
            }
            for r in 0..<m {
                for c in 0..<n {
                    var s: Double = 0
                    for j in 0..<k {
                        s += Double(am.data[ia * m * k + r * k + j]) * Double(bm.data[ib * k * n + j * n + c])
                    }
                    out.data[index * m * n + r * n + c] = Float(s)
                }
            }
        }
        return out
    }

    @Test(arguments: [
        ([3, 5], [5, 4], false, false),
        ([5, 3], [5, 4], true, false),
        ([3, 5], [4, 5], false, true),
        ([5, 3], [4, 5], true, true),
        ([2, 3, 5], [5, 4], false, false),
        ([2, 3, 5], [4, 5], false, true),
        ([2, 5, 3], [5, 4], true, false),
        ([4, 1, 3, 5], [2, 5, 6], false, false),
        ([3, 5], [2, 5, 6], false, false),
        ([1, 17, 33], [33, 65], false, false),
    ])
    func matmulAgainstNaive(aShape: [Int], bShape: [Int], transposeA: Bool, transposeB: Bool) {
        var rng = SeededGenerator(seed: 42)
        let a = Tensor.uniform(aShape, low: -1, high: 1, using: &rng)
        let b = Tensor.uniform(bShape, low: -1, high: 1, using: &rng)
        let fast = matmul(a, b, transposeA: transposeA, transposeB: transposeB)
        let slow = naiveMatmul(a, b, transposeA: transposeA, transposeB: transposeB)
        let result = compare(fast, slow, atol: 1e-5)
        #expect(fast.shape == slow.shape)
        #expect(result.passed, "\(result)")
    }

    @Test func seededGeneratorIsDeterministicAndCalibrated() {
        var a = SeededGenerator(seed: 7), b = SeededGenerator(seed: 7), c = SeededGenerator(seed: 8)
        let x = Tensor.normal([100_000], using: &a), y = Tensor.normal([100_000], using: &b)
        let z = Tensor.normal([100_000], using: &c)
        #expect(x.scalars == y.scalars)
        #expect(x.scalars != z.scalars)
        // Mean 0 and variance 1, within 5 standard errors for n = 100000.
        let mean = x.mean(), variance = (x * x).mean() - mean * mean
        #expect(abs(mean) < 0.016 && abs(variance - 1) < 0.03, "mean \(mean), variance \(variance)")
        var u = SeededGenerator(seed: 1)
        let uniform = Tensor.uniform([100_000], low: 2, high: 3, using: &u)
        #expect(uniform.scalars.allSatisfy { $0 >= 2 && $0 < 3 })
        #expect(abs(uniform.mean() - 2.5) < 0.005)
        // SplitMix64 reference value for seed 0 (Vigna's splitmix64.c): 0xE220A8397B1DCDAF.
        var s = SeededGenerator(seed: 0)
        #expect(s.next() == 0xE220_A839_7B1D_CDAF)
    }
}

/// Row-parallel kernels give the same bits on one thread as on two. The thread counts are
/// scoped to this test (`withThreadCount`), so suites running beside it keep theirs.
@Suite struct ThreadIndependenceTests {
    @Test func kernelsMatchAcrossThreadCounts() {
        var rng = SeededGenerator(seed: 11)
        let x = Tensor.normal([64, 1000], using: &rng)
        let w = Tensor.normal([1000], using: &rng), b = Tensor.normal([1000], using: &rng)
        let weight = Tensor.normal([520, 1000], using: &rng), bias = Tensor.normal([520], using: &rng)
        let wide = Tensor.normal([3, 20, 1000], using: &rng), residual = Tensor.normal([3, 20, 520], using: &rng)
        // 2 images x 4 heads of 128 tokens and head width 64: a million multiply-adds per
        // task, so the tasks are split between two threads (checked below).
        let qkv = Tensor.normal([2, 128, 3 * 256], using: &rng)
        func run() -> [[Float]] {
            [
                x.gelu().scalars, x.softmax().scalars, x.layerNorm(weight: w, bias: b, eps: 1e-6).scalars,
                // Products split by rows (64 rows) and by columns (wide, 60 rows).
                linear(x, weight: weight, bias: bias, activation: GELUApproximation.none).scalars,
                linear(wide, weight: weight, bias: bias, residual: residual).scalars,
                matmul(x, weight, transposeB: true).scalars,
                multiHeadSelfAttention(qkv: qkv, numHeads: 4).scalars,
            ]
        }
        let one = withThreadCount(1) { run() }
        let two = withThreadCount(2) { run() }
        withThreadCount(2) {
            #expect(chunkCount(2 * 4, minimumPerChunk: attentionTasksPerChunk(n: 128, m: 128, headDim: 64)) == 2)
        }
        // Row kernels and attention (one head per thread) give the same bits. A product split
        // into tiles may meet a different OpenBLAS kernel (small-matrix paths) and round
        // differently: within 1e-5 of the output's scale (its largest magnitude), the bound
        // docs/ARCHITECTURE.md sets ("Threads"). Sums of 1000 products round at about 1e-7 of that scale each way.
        let names = ["gelu", "softmax", "layerNorm", "linear+gelu", "linear+residual", "matmul", "attention"]
        let splitByTiles: Set = ["linear+gelu", "linear+residual", "matmul"]
        for (name, (a, b)) in zip(names, zip(one, two)) {
            let scale = a.map { Swift.abs($0) }.max() ?? 0
            let tolerance: Float = splitByTiles.contains(name) ? 1e-5 * scale : 0
            let result = compare(b, a, atol: tolerance)
            #expect(result.passed, "\(name): \(result)")
        }
    }
}

/// The vectorizable exp, erf, tanh and GELU against double-precision libm, element by element.
@Suite struct FastMathTests {
    @Test func expMatchesLibm() {
        var worst = (x: Float(0), error: 0.0)
        for i in 0...40_000 {
            let x = Float(-87 + 175.3 * Double(i) / 40_000)
            let exact = Foundation.exp(Double(x))
            let error = Swift.abs(Double(fastExp(x)) - exact) / exact
            if error > worst.error { worst = (x, error) }
        }
        // A few units in the last place (float's unit roundoff is 6e-8).
        #expect(worst.error < 3e-7, "worst relative error \(worst.error) at x = \(worst.x)")
        #expect(fastExp(-100) == 0 && fastExp(-Float.infinity) == 0 && fastExp(0) == 1)
    }

    @Test func erfAndGELUMatchLibm() {
        var worstErf = (x: Float(0), error: 0.0), worstGELU = (x: Float(0), error: 0.0)
        for i in 0...40_000 {
            let x = Float(-12 + 24 * Double(i) / 40_000)
            let erfError = Swift.abs(Double(fastErf(x)) - Foundation.erf(Double(x)))
            if erfError > worstErf.error { worstErf = (x, erfError) }
            let gelu = 0.5 * Double(x) * (1 + Foundation.erf(Double(x) / 2.0.squareRoot()))
            let geluError = Swift.abs(Double(fastGELU(x)) - gelu) / (1 + Swift.abs(Double(x)))
            if geluError > worstGELU.error { worstGELU = (x, geluError) }
        }
        // Abramowitz and Stegun 7.1.26 promises 1.5e-7; rounding 1 - (poly t e^-x^2) and its
        // terms in float adds up to a few half-units of 1 (6e-8 each).
        #expect(worstErf.error < 5e-7, "worst erf error \(worstErf.error) at x = \(worstErf.x)")
        #expect(worstGELU.error < 3e-7, "worst GELU error \(worstGELU.error) at x = \(worstGELU.x)")
        #expect(fastErf(-0.5) == -fastErf(0.5))
    }

    @Test func tanhAndTanhGELUMatchLibm() {
        var worstTanh = (x: Float(0), ulps: 0.0), worstGELU = (x: Float(0), error: 0.0)
        for i in 0...48_000 {
            let x = Float(-12 + 24 * Double(i) / 48_000)
            let exact = Foundation.tanh(Double(x))
            // Error in units of the last place of the exact value as a float (at least the
            // smallest normal's, so that x = 0 counts too).
            let ulp = Double(max(Float(Swift.abs(exact)), .leastNormalMagnitude).ulp)
            let ulps = Swift.abs(Double(fastTanh(x)) - exact) / ulp
            if ulps > worstTanh.ulps { worstTanh = (x, ulps) }
            let k = (2 / Double.pi).squareRoot(), xd = Double(x)
            let gelu = 0.5 * xd * (1 + Foundation.tanh(k * (xd + 0.044715 * xd * xd * xd)))
            let geluError = Swift.abs(Double(fastTanhGELU(x)) - gelu) / (1 + Swift.abs(xd))
            if geluError > worstGELU.error { worstGELU = (x, geluError) }
        }
        // Cephes' polynomial is within 2 ulps; 1 - 2 / (e^2x + 1) adds fastExp's few ulps,
        // shrunk by the division, and one rounding of the subtraction.
        #expect(worstTanh.ulps <= 4, "worst tanh error \(worstTanh.ulps) ulps at x = \(worstTanh.x)")
        #expect(worstGELU.error < 3e-7, "worst tanh-GELU error \(worstGELU.error) at x = \(worstGELU.x)")
        #expect(fastTanh(-0.3) == -fastTanh(0.3) && fastTanh(-2) == -fastTanh(2) && fastTanh(0) == 0)
        #expect(fastTanh(100) == 1 && fastTanh(-.infinity) == -1)
    }

    @Test func fullyMaskedRowIsNaN() {
        let x = Tensor(shape: [1, 4], repeating: -.infinity)
        #expect(x.softmax().scalars.allSatisfy { $0.isNaN })
    }
}

/// The fully connected product against a naive float64 loop, on shapes that exercise every
/// edge of the AVX-512 kernel's tiling (rows not a multiple of 12, columns not a multiple
/// of 32, depth across 256-blocks), with bias, residual and activation epilogues, and with
/// weights marked constant (packed once and kept).
@Suite struct LinearProductTests {
    static let shapes = [(1, 1, 1), (5, 31, 7), (13, 33, 255), (12, 32, 256), (30, 70, 257), (25, 300, 600)]

    @Test(arguments: shapes) func matchesNaiveLoop(m: Int, n: Int, k: Int) {
        var rng = SeededGenerator(seed: UInt64(m * 1000 + n + k))
        let x = Tensor.normal([m, k], using: &rng), w = Tensor.normal([n, k], using: &rng)
        let b = Tensor.normal([n], using: &rng), residual = Tensor.normal([m, n], using: &rng)
        var plain = [Double](), withResidual = [Double](), activated = [Double](), scale = [Double]()
        for i in 0..<m {
            for j in 0..<n {
                var sum = Double(b[j]), magnitude = Swift.abs(Double(b[j])) + Swift.abs(Double(residual[i, j]))
                for kk in 0..<k {
                    sum += Double(x[i, kk]) * Double(w[j, kk])
                    magnitude += Swift.abs(Double(x[i, kk]) * Double(w[j, kk]))
                }
                plain.append(sum)
                withResidual.append(sum + Double(residual[i, j]))
                activated.append(0.5 * sum * (1 + erf(sum / 2.0.squareRoot())))
                scale.append(magnitude)
            }
        }
        // Float32 rounding in a sum of k terms: each addition errs by at most u = 2^-24 of
        // the running sum, which is at most the sum of magnitudes S; the errors add like a
        // random walk, so allow 4 sqrt(k) u S per element (a missing or doubled term would
        // miss by about S / k, far more).
        let u = 0x1p-24, allowance = 4 * Double(k).squareRoot() * u
        // The same weights marked constant: packed on the first call, the packed copy read
        // on the second; the same bits as the weights packed in each call.
        let constant = Tensor(shape: w.shape, values: w.scalars)
        constant.storage.markConstant()
        let first = linear(x, weight: constant, bias: b), second = linear(x, weight: constant, bias: b)
        let repacked = linear(x, weight: w, bias: b)
        #expect(first.scalars == repacked.scalars && second.scalars == repacked.scalars)
        let cases = [
            ("bias", repacked, plain),
            ("residual", linear(x, weight: w, bias: b, residual: residual), withResidual),
            ("gelu", linear(x, weight: w, bias: b, activation: GELUApproximation.none), activated),
            ("bias, constant weights", second, plain),
            ("residual, constant weights", linear(x, weight: constant, bias: b, residual: residual), withResidual),
        ]
        for (name, actual, expected) in cases {
            let ratios = (0..<(m * n)).map {
                Swift.abs(Double(actual.scalars[$0]) - expected[$0]) / (allowance * scale[$0])
            }
            let worst = ratios.indices.max { ratios[$0] < ratios[$1] }!
            #expect(
                ratios[worst] <= 1,
                "\(productKernelName) \(name) [\(m), \(n), \(k)]: at [\(worst)] got \(actual.scalars[worst]), expected \(expected[worst]), \(ratios[worst]) of the allowance"
            )
        }
    }
}

/// Storage marked constant and read as a weight of another shape (a reshape shares
/// storage) is not served the packed copy made for the first shape.
@Suite struct ConstantWeightTests {
    @Test func reshapedWeightIsNotServedAnotherShapesPacking() {
        var rng = SeededGenerator(seed: 3)
        let w = Tensor.normal([40, 24], using: &rng)
        w.storage.markConstant()
        let x = Tensor.normal([5, 24], using: &rng), y = Tensor.normal([5, 48], using: &rng)
        _ = linear(x, weight: w, bias: nil)
        let reshaped = linear(y, weight: w.reshaped([20, 48]), bias: nil)
        let plain = linear(y, weight: Tensor(shape: [20, 48], values: w.scalars), bias: nil)
        #expect(reshaped.scalars == plain.scalars)
    }
}

/// gemm with beta 0 ignores what C held (the kernel overwrites on the first depth block
/// and accumulates on the others), for every transpose combination, depth 600.
@Suite struct GEMMOverwriteTests {
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func betaZeroOverwrites(transposeA: Bool, transposeB: Bool) {
        var rng = SeededGenerator(seed: 5)
        let (m, n, k) = (29, 70, 600)
        let a = Tensor.normal(transposeA ? [k, m] : [m, k], using: &rng)
        let b = Tensor.normal(transposeB ? [n, k] : [k, n], using: &rng)
        let c = Tensor(shape: [m, n], repeating: 1e6)
        gemm(
            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a.data, lda: transposeA ? m : k,
            b.data, ldb: transposeB ? k : n, c.data, ldc: n)
        var expected = [Float]()
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for l in 0..<k {
                    let x = transposeA ? a[l, i] : a[i, l], y = transposeB ? b[j, l] : b[l, j]
                    sum += Double(x) * Double(y)
                }
                expected.append(Float(sum))
            }
        }
        // Sums of 600 unit-normal products: rounding about sqrt(600) 6e-8 x 25.
        let result = compare(c.scalars, expected, atol: 1e-3)
        #expect(result.passed, "\(result)")
    }
}
