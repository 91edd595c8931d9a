import Foundation

/// An error described in one line for the user, naming the file, field or value at fault.
/// Every library error conforms; the CLI catches this protocol once and prints the line.
public protocol ReportableError: Error, CustomStringConvertible {}

/// Errors from writing files.
public struct FileWriteError: ReportableError {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
}

/// A problem with a file (or with what it holds): one line naming it, for the CLI to print.
public struct FileError: ReportableError {
    public let path: String?
    public let reason: String
    public init(path: String?, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { path.map { "\($0): \(reason)" } ?? reason }
}

/// Writes `data` to `path` through a temporary file in the same folder (`ScratchPaths`),
/// synced, then a rename and a sync of the folder, so that readers see the old file or the
/// whole new one, never a part of it, also after a crash. Leftover temporary files of
/// killed runs beside `path` are removed first.
public func writeAtomically(_ data: Data, toPath path: String) throws {
    ScratchPaths.removeLeftovers(besides: path)
    let temporary = ScratchPaths.temporaryFile(for: path)
    func failure(_ what: String) -> FileWriteError {
        FileWriteError(path: path, reason: "cannot \(what) (\(String(cString: strerror(errno))))")
    }
    ScratchPaths.register(temporary)
    defer { ScratchPaths.unregister(temporary) }
    let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw failure("create the file") }
    var ok = data.withUnsafeBytes { bytes -> Bool in
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }
    var error = ok ? nil : failure("write")
    if ok && fsync(fd) != 0 {
        ok = false
        error = failure("write")
    }
    close(fd)
    if ok && rename(temporary, path) != 0 {
        ok = false
        error = failure("replace the file")
    }
    if !ok {
        unlink(temporary)
        throw error!
    }
    syncFolder(of: path)
}

/// fsync of the folder holding `path`, so that a rename in it survives a crash.
public func syncFolder(of path: String) {
    let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
    let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { return }
    fsync(fd)
    close(fd)
}

/// The lines of a text with LF, CRLF or CR line ends, as Python's universal newlines read
/// them (a CRLF is one Swift Character, so splitting on "\n" alone would keep a CRLF text
/// whole); the empty line after a final line end is not a line.
public func textLines(_ text: String) -> [String] {
    var lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }.map(
        String.init)
    if lines.last == "" { lines.removeLast() }
    return lines
}
