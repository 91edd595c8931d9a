import Foundation

/// The temporary files and staging folders this process is writing, so that an interrupted
/// run removes them (the CLI's SIGINT and SIGTERM handler calls `removeAll`), and the names
/// they take, so that a later run recognizes what a killed one left behind.
///
/// Names: a temporary file for NAME is `.NAME.PID.RANDOM.tmp` beside it; a staging folder
/// for NAME is `.NAME.partial-PID` beside it.
public enum ScratchPaths {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var paths: Set<String> = []

    /// Marks `path` as this process's scratch until `unregister`.
    public static func register(_ path: String) {
        lock.withLock { _ = paths.insert(path) }
    }

    public static func unregister(_ path: String) {
        lock.withLock { _ = paths.remove(path) }
    }

    nonisolated(unsafe) private static var interrupted = false

    /// Whether `removeAll` has begun: the work it interrupts may fail meanwhile, and the
    /// process should then wait for the handler to exit rather than exit on its own.
    public static var isInterrupted: Bool { lock.withLock { interrupted } }

    /// Removes every registered path (files and whole folders); for signal handlers. A
    /// folder is renamed first, so that files another thread is still writing into it fail
    /// instead of landing in a folder being removed.
    public static func removeAll() {
        let all = lock.withLock {
            interrupted = true
            return paths
        }
        for path in all {
            let doomed = "\(path).removing"
            let target = rename(path, doomed) == 0 ? doomed : path
            try? FileManager.default.removeItem(atPath: target)
        }
    }

    /// The temporary file name for writing `path`.
    public static func temporaryFile(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().appendingPathComponent(
            ".\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        ).path
    }

    /// The staging folder for making the folder `path`.
    public static func stagingFolder(for path: String) -> String {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        return url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).partial-\(getpid())")
            .path
    }

    /// Removes what runs that no longer exist left beside `path` (temporary files and staging
    /// folders under the names above, whose process id is not a running process).
    public static func removeLeftovers(besides path: String) {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        let folder = url.deletingLastPathComponent().path, name = url.lastPathComponent
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for entry in entries {
            var pid: Int32?
            if entry.hasPrefix(".\(name).partial-") {
                pid = Int32(entry.dropFirst(".\(name).partial-".count))
            } else if entry.hasPrefix(".\(name)."), entry.hasSuffix(".tmp") {
                let middle = entry.dropFirst(".\(name).".count).dropLast(".tmp".count).split(separator: ".")
                if middle.count == 2, UInt32(middle[1]) != nil { pid = Int32(middle[0]) }
            }
            guard let pid, pid > 0, pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(atPath: "\(folder)/\(entry)")
        }
    }
}
