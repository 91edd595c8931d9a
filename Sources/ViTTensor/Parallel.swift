import Dispatch
import Foundation

/// The process-wide thread count (`setThreadCount`).
nonisolated(unsafe) private var processThreadCount = max(1, ProcessInfo.processInfo.activeProcessorCount)

private enum ScopedThreads {
    @TaskLocal static var count: Int?
}

/// Threads used by products and kernels (OpenBLAS itself runs single-threaded): the
/// innermost `withThreadCount` on this thread or task, else `setThreadCount`'s.
var threadCount: Int { ScopedThreads.count ?? processThreadCount }

/// The threads products and kernels started here use (`threadCount`).
public var currentThreadCount: Int { threadCount }

/// Sets the threads for matrix products and row-parallel kernels, for the whole process
/// (the CLI's `--threads`).
public func setThreadCount(_ count: Int) {
    precondition(count >= 1, "thread count must be at least 1")
    processThreadCount = count
}

/// Runs `body` with `count` threads for the products and kernels it starts, leaving the
/// rest of the process (other tasks, other threads) as it is.
public func withThreadCount<Result>(_ count: Int, _ body: () throws -> Result) rethrows -> Result {
    precondition(count >= 1, "thread count must be at least 1")
    return try ScopedThreads.$count.withValue(count, operation: body)
}

/// The number format of the fully connected layers' products (`linear`).
public enum ProductPrecision: String, Sendable, CaseIterable {
    /// Single precision throughout.
    case float32 = "fp32"
    /// Inputs and weights rounded to bfloat16 (weights once, when they are constant),
    /// products summed in single precision; everything else stays in single precision.
    /// Needs `Machine.hasBFloat16Products`.
    case bfloat16 = "bf16"
}

nonisolated(unsafe) private var processProductPrecision = ProductPrecision.float32

private enum ScopedPrecision {
    @TaskLocal static var precision: ProductPrecision?
}

/// The precision `linear` runs in: the innermost `withProductPrecision` on this thread or
/// task, else `setProductPrecision`'s (single precision by default).
public var productPrecision: ProductPrecision { ScopedPrecision.precision ?? processProductPrecision }

/// Sets the precision of `linear`'s products for the whole process (the CLI's
/// `--precision`). bfloat16 needs `Machine.hasBFloat16Products`.
public func setProductPrecision(_ precision: ProductPrecision) {
    precondition(precision == .float32 || Machine.hasBFloat16Products, "this CPU has no bfloat16 products")
    processProductPrecision = precision
}

/// Runs `body` with `linear`'s products in `precision`, leaving the rest of the process as
/// it is. bfloat16 needs `Machine.hasBFloat16Products`.
public func withProductPrecision<Result>(_ precision: ProductPrecision, _ body: () throws -> Result) rethrows
    -> Result
{
    precondition(precision == .float32 || Machine.hasBFloat16Products, "this CPU has no bfloat16 products")
    return try ScopedPrecision.$precision.withValue(precision, operation: body)
}

/// The fewest elements of a one-pass elementwise or row kernel worth a thread of its own.
let elementsPerChunk = 8_192

/// The fewest items of `width` elements each worth a chunk: `elementsPerChunk` elements'
/// worth, at least one item.
func itemsPerChunk(width: Int) -> Int { max(1, elementsPerChunk / max(width, 1)) }

/// How many equal chunks of `count` items of at least `minimumPerChunk` are worth making:
/// one per thread, or, with several threads and where each chunk would still hold four
/// times the minimum, up to four per thread (`chunksClaimedAsThreadsComeFree`). Where that
/// is more than one per thread, `parallelChunks` makes chunks that shrink as they go
/// instead.
func chunkCount(_ count: Int, minimumPerChunk: Int) -> Int {
    let minimum = max(minimumPerChunk, 1), threads = threadCount
    return chunksClaimedAsThreadsComeFree(count, threads: threads, minimumPerChunk: 4 * minimum, mostPerThread: 4)
        ?? min(threads, count / minimum)
}

/// `threads` times as many chunks of at least `minimumPerChunk` of `count` items as fit,
/// up to `mostPerThread` per thread, or nil where fewer than two per thread fit or there
/// is one thread: whether work is worth splitting finer than one chunk per thread, so that
/// a thread slowed for a while (one vCPU of a virtual machine often runs several percent
/// slower than another) takes less of it, instead of the faster thread waiting at the end of
/// every job.
func chunksClaimedAsThreadsComeFree(_ count: Int, threads: Int, minimumPerChunk: Int, mostPerThread: Int) -> Int? {
    let perThread = min(mostPerThread, count / (max(threads, 1) * max(minimumPerChunk, 1)))
    return threads > 1 && perThread >= 2 ? threads * perThread : nil
}

/// The bounds of contiguous chunks of `count` items that shrink as they go (guided
/// scheduling, as OpenMP's `schedule(guided)`): each takes 1 / (2 threads) of the items left,
/// at least `minimumPerChunk`; chunk i is bounds[i]..<bounds[i + 1]. Claimed in order as
/// threads come free, the large chunks go first and the last ones are small, so that the
/// threads finish within a small chunk of each other however their speeds differ.
func shrinkingChunkBounds(_ count: Int, threads: Int, minimumPerChunk: Int) -> [Int] {
    var bounds = [0]
    var start = 0
    while start < count {
        let left = count - start
        let size = max(minimumPerChunk, (left + 2 * threads - 1) / (2 * threads), 1)
        start = left - size < minimumPerChunk ? count : start + size
        bounds.append(start)
    }
    return bounds
}

/// Runs `body` once for each chunk bounds[i]..<bounds[i + 1], claimed in order by
/// `threadCount` threads as they come free.
func parallelChunks(bounds: [Int], _ body: (Range<Int>) -> Void) {
    parallelChunks(bounds.count - 1, chunks: bounds.count - 1) { chunks in
        for chunk in chunks { body(bounds[chunk]..<bounds[chunk + 1]) }
    }
}

/// Chunk `chunk` of `count` items split into `chunks` contiguous ranges.
func chunkRange(_ chunk: Int, of chunks: Int, count: Int) -> Range<Int> {
    (count * chunk / chunks)..<(count * (chunk + 1) / chunks)
}

/// Runs `body` over `0..<count` split into contiguous chunks, when the work is large
/// enough to pay for the threads: `chunkCount`'s equal chunks where that is one per thread
/// or fewer, else chunks that shrink as they go down to `minimumPerChunk`
/// (`shrinkingChunkBounds`). Each index is handled exactly once, so results do not depend
/// on the thread count.
func parallelChunks(_ count: Int, minimumPerChunk: Int, _ body: (Range<Int>) -> Void) {
    let chunks = chunkCount(count, minimumPerChunk: minimumPerChunk), threads = threadCount
    if chunks > threads {
        parallelChunks(bounds: shrinkingChunkBounds(count, threads: threads, minimumPerChunk: minimumPerChunk), body)
    } else {
        parallelChunks(count, chunks: chunks, body)
    }
}

/// Runs `body` over `0..<count` split into `chunks` contiguous ranges (`chunkRange`),
/// which `threadCount` threads claim one by one as they come free.
func parallelChunks(_ count: Int, chunks: Int, _ body: (Range<Int>) -> Void) {
    if chunks <= 1 {
        body(0..<count)
        return
    }
    // The pool's threads stay ready between calls; when it is running another job (a
    // second caller, or work started inside a chunk), Dispatch's threads run this one.
    if chunks <= WorkerPool.maximumChunks, WorkerPool.shared.run(count: count, chunks: chunks, body) { return }
    withoutActuallyEscaping(body) { body in
        // The chunks touch disjoint indices; the closure is safe to share between threads.
        let shared = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            shared.value(chunkRange(chunk, of: chunks, count: count))
        }
    }
}

private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
