import Foundation
import Testing
import ViTTensor
import ViTTestSupport

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
        #expect(x.max(axis: 1).scalars == [5, 6])
        #expect(x.mean(axis: 0).scalars == [2.5, 3.5, 4.5])
        #expect(x.argmaxLastAxis() == [1, 2])
        #expect(x.sum() == 21)
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
        #expect(x.selecting(axis: 1, 2).scalars == [2, 5])
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

/// Row-parallel kernels give the same bits on one thread as on two.
@Suite struct ThreadIndependenceTests {
    @Test func kernelsMatchAcrossThreadCounts() {
        var rng = SeededGenerator(seed: 11)
        let x = Tensor.normal([64, 1000], using: &rng)
        let w = Tensor.normal([1000], using: &rng), b = Tensor.normal([1000], using: &rng)
        func run() -> [[Float]] {
            [x.gelu().scalars, x.softmax().scalars, x.layerNorm(weight: w, bias: b, eps: 1e-6).scalars]
        }
        setThreadCount(1)
        let one = run()
        setThreadCount(2)
        let two = run()
        #expect(one == two)
    }
}
