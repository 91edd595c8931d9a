import Dispatch
import Foundation

/// Threads used by products and kernels (OpenBLAS itself runs single-threaded).
nonisolated(unsafe) private(set) var threadCount = max(1, ProcessInfo.processInfo.activeProcessorCount)

/// Sets the threads for matrix products and row-parallel kernels.
public func setThreadCount(_ count: Int) {
    precondition(count >= 1, "thread count must be at least 1")
    threadCount = count
}

/// Runs `body` over `0..<count` split into contiguous chunks, one per thread, when the
/// work is large enough to pay for the threads. Each index is handled exactly once, so
/// results do not depend on the thread count.
func parallelChunks(_ count: Int, minimumPerChunk: Int, _ body: (Range<Int>) -> Void) {
    let chunks = min(threadCount, count / max(minimumPerChunk, 1))
    if chunks <= 1 {
        body(0..<count)
        return
    }
    withoutActuallyEscaping(body) { body in
        // The chunks touch disjoint indices; the closure is safe to share between threads.
        let shared = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            shared.value((count * chunk / chunks)..<(count * (chunk + 1) / chunks))
        }
    }
}

private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
