import Dispatch
import Foundation
import Synchronization
import Testing
import ViTTestSupport

@testable import ViTTensor

/// The pool of waiting threads behind `parallelChunks`: every index exactly once in the
/// chunks the documentation names, from one caller, from several at once (all but one
/// served by Dispatch), and from inside a chunk.
@Suite struct WorkerPoolTests {
    /// Runs `parallelChunks` over `count` items and checks each index was visited once,
    /// by a chunk of the documented bounds.
    static func checkVisits(count: Int, minimumPerChunk: Int) -> Bool {
        let visits = UnsafeMutablePointer<Int>.allocate(capacity: max(count, 1))
        visits.initialize(repeating: 0, count: max(count, 1))
        defer { visits.deallocate() }
        let chunks = chunkCount(count, minimumPerChunk: minimumPerChunk)
        // Chunk i is count * i / chunks ..< count * (i + 1) / chunks, or, with more chunks
        // than threads, shrinkingChunkBounds[i]..<shrinkingChunkBounds[i + 1].
        let bounds =
            chunks > threadCount
            ? shrinkingChunkBounds(count, threads: threadCount, minimumPerChunk: minimumPerChunk)
            : (0...chunks).map { count * $0 / max(chunks, 1) }
        let boundsHeld = Atomic<Bool>(true)
        parallelChunks(count, minimumPerChunk: minimumPerChunk) { range in
            if chunks > 1 {
                let matches = (0..<(bounds.count - 1)).contains { range == bounds[$0]..<bounds[$0 + 1] }
                if !matches { boundsHeld.store(false, ordering: .relaxed) }
            }
            for i in range { visits[i] += 1 }
        }
        return boundsHeld.load(ordering: .relaxed) && (0..<count).allSatisfy { visits[$0] == 1 }
    }

    @Test func everyIndexOnceInTheNamedChunks() {
        var rng = SeededGenerator(seed: 11)
        withThreadCount(5) {
            for _ in 0..<3000 {
                let count = Int(rng.next() % 200), minimum = 1 + Int(rng.next() % 40)
                #expect(Self.checkVisits(count: count, minimumPerChunk: minimum), "count \(count), minimum \(minimum)")
            }
        }
    }

    /// One chunk per thread until each of four per thread would hold four times the minimum,
    /// and one in all on one thread (values worked out by hand from `chunkCount`'s
    /// documentation).
    @Test func chunksPerThreadGrowWithTheWork() {
        withThreadCount(2) {
            #expect(chunkCount(1, minimumPerChunk: 10) == 0)
            #expect(chunkCount(15, minimumPerChunk: 10) == 1)
            #expect(chunkCount(159, minimumPerChunk: 10) == 2)
            #expect(chunkCount(160, minimumPerChunk: 10) == 4)
            #expect(chunkCount(320, minimumPerChunk: 10) == 8)
            #expect(chunkCount(6_389_760, minimumPerChunk: 8_192) == 8)
        }
        withThreadCount(1) { #expect(chunkCount(6_389_760, minimumPerChunk: 8_192) == 1) }
    }

    /// Chunks that shrink as they go: a quarter of what is left for two threads, at least
    /// the minimum, the last one taking what would leave less than the minimum (worked out by
    /// hand); every item in exactly one chunk, in order.
    @Test func shrinkingChunksTakeAShareOfWhatIsLeft() {
        #expect(shrinkingChunkBounds(100, threads: 2, minimumPerChunk: 8) == [0, 25, 44, 58, 69, 77, 85, 100])
        #expect(shrinkingChunkBounds(30, threads: 1, minimumPerChunk: 4) == [0, 15, 23, 30])
        #expect(shrinkingChunkBounds(5, threads: 2, minimumPerChunk: 8) == [0, 5])
        #expect(shrinkingChunkBounds(0, threads: 2, minimumPerChunk: 8) == [0])
        let visits = UnsafeMutablePointer<Int>.allocate(capacity: 694)
        visits.initialize(repeating: 0, count: 694)
        defer { visits.deallocate() }
        withThreadCount(2) {
            parallelChunks(bounds: shrinkingChunkBounds(694, threads: 2, minimumPerChunk: 8)) { range in
                for i in range { visits[i] += 1 }
            }
        }
        #expect((0..<694).allSatisfy { visits[$0] == 1 })
    }

    @Test func concurrentCallersEachGetTheirOwnWork() {
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            withThreadCount(3) {
                for round in 0..<400 where !Self.checkVisits(count: 7 + (round + caller) % 90, minimumPerChunk: 2) {
                    failures.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
    }

    @Test func workStartedInsideAChunkRunsToo() {
        let inner = UnsafeMutablePointer<Int>.allocate(capacity: 4 * 50)
        inner.initialize(repeating: 0, count: 4 * 50)
        defer { inner.deallocate() }
        withThreadCount(2) {
            parallelChunks(4, minimumPerChunk: 1) { outer in
                for o in outer {
                    parallelChunks(50, minimumPerChunk: 5) { range in
                        for i in range { inner[o * 50 + i] += 1 }
                    }
                }
            }
        }
        #expect((0..<200).allSatisfy { inner[$0] == 1 })
    }

    @Test func aSecondJobWhileOneRunsIsRefused() {
        let pool = WorkerPool()
        var innerAccepted = true, outerRan = 0
        let accepted = pool.run(count: 3, chunks: 1) { range in
            outerRan += range.count
            innerAccepted = pool.run(count: 2, chunks: 2) { _ in }
        }
        #expect(accepted && outerRan == 3 && !innerAccepted)
        // Free again once the job has ended, and the workers it starts take chunks.
        let hits = Atomic<Int>(0)
        #expect(pool.run(count: 64, chunks: 8) { range in hits.add(range.count, ordering: .relaxed) })
        #expect(hits.load(ordering: .relaxed) == 64)
    }
}

/// Products split across threads by rows or by columns (`forEachProductBlock`) against
/// float64 sums, and bit for bit the same whatever the thread count where our kernel runs
/// them (OpenBLAS, on CPUs with neither AVX2 nor AVX-512 or when forced, may round a band
/// differently from the whole).
@Suite struct ProductSplitTests {
    static func naive(
        _ a: Tensor, _ b: Tensor, m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool
    ) -> (sums: [Double], magnitudes: [Double]) {
        var sums = [Double](repeating: 0, count: m * n), magnitudes = sums
        for i in 0..<m {
            for j in 0..<n {
                for l in 0..<k {
                    let x = Double(transposeA ? a.data[l * m + i] : a.data[i * k + l])
                    let y = Double(transposeB ? b.data[j * k + l] : b.data[l * n + j])
                    sums[i * n + j] += x * y
                    magnitudes[i * n + j] += Swift.abs(x * y)
                }
            }
        }
        return (sums, magnitudes)
    }

    /// Float32 sums of k terms: within 4 sqrt(k) 2^-24 of the sum of magnitudes (as in
    /// LinearProductTests).
    static func within(_ actual: [Float], _ expected: (sums: [Double], magnitudes: [Double]), k: Int) -> Bool {
        let allowance = 4 * Double(k).squareRoot() * 0x1p-24
        return actual.indices.allSatisfy {
            Swift.abs(Double(actual[$0]) - expected.sums[$0]) <= allowance * expected.magnitudes[$0] + 1e-30
        }
    }

    /// The last shape is tall enough for the right operand to be packed once and the rows
    /// split into more chunks than threads (`packedAhead`, `shrinkingChunkBounds`).
    @Test(arguments: [(400, 40, 70), (150, 64, 300), (121, 97, 133), (64, 256, 128), (1700, 40, 30)])
    func gemmSplitsMatchFloat64(m: Int, n: Int, k: Int) {
        #expect(withThreadCount(3) { productThreads(m: m, n: n, k: k) } > 1, "large enough to be split")
        var rng = SeededGenerator(seed: UInt64(m * 31 + n * 7 + k))
        for (transposeA, transposeB) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = Tensor.normal(transposeA ? [k, m] : [m, k], using: &rng)
            let b = Tensor.normal(transposeB ? [n, k] : [k, n], using: &rng)
            let expected = Self.naive(a, b, m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB)
            var results = [[Float]]()
            for threads in [1, 2, 3] {
                let c = Tensor(shape: [m, n], repeating: 7)
                withThreadCount(threads) {
                    gemm(
                        transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a.data,
                        lda: transposeA ? m : k, b.data, ldb: transposeB ? k : n, c.data, ldc: n)
                }
                #expect(
                    Self.within(c.scalars, expected, k: k),
                    "[\(m), \(n), \(k)] transposes \(transposeA) \(transposeB), \(threads) threads")
                results.append(c.scalars)
            }
            #expect(productInstructions == nil || results[1] == results[0] && results[2] == results[0])
        }
    }

    /// The last shape splits as `gemmSplitsMatchFloat64`'s last.
    @Test(arguments: [(300, 40, 130), (61, 200, 128), (900, 33, 40), (100, 192, 64), (2000, 70, 24)])
    func linearSplitsMatchFloat64(m: Int, n: Int, k: Int) {
        #expect(withThreadCount(3) { productThreads(m: m, n: n, k: k) } > 1, "large enough to be split")
        var rng = SeededGenerator(seed: UInt64(m + n + k))
        let x = Tensor.normal([m, k], using: &rng), w = Tensor.normal([n, k], using: &rng)
        let constant = Tensor(shape: w.shape, values: w.scalars)
        constant.storage.markConstant()
        let expected = Self.naive(x, w, m: m, n: n, k: k, transposeA: false, transposeB: true)
        var results = [[Float]]()
        for threads in [1, 2, 3] {
            for weight in [w, constant] {
                let out = withThreadCount(threads) { linear(x, weight: weight, bias: nil) }
                #expect(Self.within(out.scalars, expected, k: k), "[\(m), \(n), \(k)], \(threads) threads")
                results.append(out.scalars)
            }
        }
        #expect(productInstructions == nil || results.allSatisfy { $0 == results[0] })
    }
}
