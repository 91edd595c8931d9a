import CKernels
import Dispatch
import Foundation
import Synchronization

/// Threads that stay ready between parallel calls, so that splitting a small product
/// across threads costs a store and a few loads rather than waking a sleeping thread.
///
/// One job runs at a time: `run` publishes it (a generation number, the chunk count and
/// the next unclaimed chunk, all in one atomic word), then the caller and every worker
/// claim chunks one by one until none is left, and the caller waits until all claimed
/// chunks have finished. The caller never waits for a thread that has not claimed a
/// chunk, so a job is never slower than running it alone plus the claims. A worker that
/// finds no job spins for `spinNanoseconds` and then sleeps on a condition until the
/// next job is published. Workers spin only while the pool has no more threads than the
/// machine has processors.
final class WorkerPool: @unchecked Sendable {
    /// The pool shared by `parallelChunks`.
    static let shared = WorkerPool()

    /// How long a worker without a job keeps looking before it sleeps: longer than the
    /// serial stretches of a training step (allocation, zero-filling, autodiff
    /// bookkeeping), because a job published to a sleeping worker waits for its wake-up,
    /// which on a virtual machine can take a good part of a product, while the caller
    /// finishes its own chunk and then waits for the late one.
    static let spinNanoseconds: UInt64 = 5_000_000

    /// The current job: generation (bits 32..<64), chunk count (16..<32), next unclaimed
    /// chunk (0..<16).
    private let state = Atomic<UInt64>(0)
    /// Chunks of the current job finished so far.
    private let finished = Atomic<Int>(0)
    /// Whether a job is running (a second caller, or a chunk that starts its own
    /// parallel work, is told to run its work another way).
    private let busy = Atomic<Bool>(false)
    /// Workers asleep or about to sleep on `condition`.
    private let sleepers = Atomic<Int>(0)
    private let condition = NSCondition()
    /// Worker threads started (read and written under `condition`).
    private var workerCount = 0
    /// The current job's body and item count: written by the caller before the job is
    /// published, read by a thread only after it has claimed one of the job's chunks.
    private var body: ((Range<Int>) -> Void)?
    private var itemCount = 0

    /// The most chunks one job can have.
    static let maximumChunks = 0xFFFF

    /// Runs `body` over `0..<count` split into `chunks` contiguous ranges (chunk `i` is
    /// `count * i / chunks ..< count * (i + 1) / chunks`), each exactly once, on the
    /// calling thread and the pool's workers; returns false without running anything
    /// when another job is running.
    func run(count: Int, chunks: Int, _ body: (Range<Int>) -> Void) -> Bool {
        precondition(chunks >= 1 && chunks <= Self.maximumChunks, "chunk count out of range")
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return false
        }
        defer { busy.store(false, ordering: .releasing) }
        startWorkers(min(chunks, threadCount) - 1)
        withoutActuallyEscaping(body) { body in
            self.body = body
            itemCount = count
            finished.store(0, ordering: .relaxed)
            let generation = (state.load(ordering: .relaxed) >> 32) &+ 1
            state.store((generation << 32) | (UInt64(chunks) << 16), ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                condition.lock()
                condition.broadcast()
                condition.unlock()
            }
            runClaimedChunks(generation: generation & 0xFFFF_FFFF)
            while finished.load(ordering: .acquiring) < chunks { ck_spin_pause() }
            self.body = nil
        }
        return true
    }

    /// Claims and runs chunks of job `generation` until none is left.
    private func runClaimedChunks(generation: UInt64) {
        while let chunk = claim(generation: generation) {
            runChunk(chunk)
            finished.add(1, ordering: .releasing)
        }
    }

    /// The next unclaimed chunk of job `generation`, or nil when that job has no chunk
    /// left or is no longer the current one.
    private func claim(generation: UInt64) -> Int? {
        var current = state.load(ordering: .acquiring)
        while true {
            let chunks = (current >> 16) & 0xFFFF
            let next = current & 0xFFFF
            guard current >> 32 == generation, next < chunks else { return nil }
            let (exchanged, original) = state.compareExchange(
                expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
            if exchanged { return Int(next) }
            current = original
        }
    }

    /// Runs one claimed chunk of the current job. Kept out of line so that every
    /// reference it takes to the job's body is released before the chunk is counted as
    /// finished (after which the caller may return and the body end).
    @inline(never)
    private func runChunk(_ chunk: Int) {
        let chunks = Int((state.load(ordering: .relaxed) >> 16) & 0xFFFF)
        let count = itemCount
        body.unsafelyUnwrapped(chunkRange(chunk, of: chunks, count: count))
    }

    /// Starts workers until there are at least `needed`.
    private func startWorkers(_ needed: Int) {
        guard needed > 0 else { return }
        condition.lock()
        defer { condition.unlock() }
        while workerCount < needed {
            workerCount += 1
            let spins = workerCount + 1 <= ProcessInfo.processInfo.activeProcessorCount
            let thread = Thread { self.work(spins: spins) }
            thread.stackSize = 8 << 20
            thread.name = "swiftvit-worker"
            thread.start()
        }
    }

    /// A worker's life: wait for a job, claim and run its chunks, repeat.
    private func work(spins: Bool) {
        var seen = state.load(ordering: .acquiring) >> 32
        while true {
            seen = waitForJob(after: seen, spins: spins)
            runClaimedChunks(generation: seen)
        }
    }

    /// Waits until a job newer than generation `seen` is published and returns its
    /// generation: spinning first (when `spins`), then asleep on `condition`.
    private func waitForJob(after seen: UInt64, spins: Bool) -> UInt64 {
        if spins {
            let start = DispatchTime.now().uptimeNanoseconds
            var rounds = 0
            while true {
                let generation = state.load(ordering: .acquiring) >> 32
                if generation != seen { return generation }
                ck_spin_pause()
                rounds += 1
                if rounds & 255 == 0, DispatchTime.now().uptimeNanoseconds - start > Self.spinNanoseconds { break }
            }
        }
        condition.lock()
        defer { condition.unlock() }
        sleepers.add(1, ordering: .sequentiallyConsistent)
        defer { sleepers.subtract(1, ordering: .sequentiallyConsistent) }
        while true {
            let generation = state.load(ordering: .sequentiallyConsistent) >> 32
            if generation != seen { return generation }
            condition.wait()
        }
    }
}
