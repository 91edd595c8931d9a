import Foundation

/// The lines of a UTF-8 text file, read a block at a time: memory holds one block and the
/// lines asked for, not the file. Lines end as `textLines` ends them (LF, CRLF or CR; the
/// empty line after a final line end is not a line); a byte-order mark at the start of the
/// file is not text (as Foundation's `String(data:encoding: .utf8)` reads it).
public final class TextLineReader {
    /// The longest line read: a longer one is an error naming its number.
    public static let maxLineBytes = 64 << 20

    /// Bytes read from the file per call.
    static let blockBytes = 1 << 20

    public let path: String
    /// How many lines have been handed out.
    public private(set) var lineCount = 0

    private let handle: FileHandle
    private var buffer: [UInt8] = []
    /// Where the next line starts in `buffer`.
    private var start = 0
    /// Bytes from `start` on already searched for a line end.
    private var searched = 0
    private var atEnd = false
    /// Whether the first block, and with it a leading byte-order mark, has been read.
    private var startedReading = false

    public init(path: String) throws(FileError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw FileError(path: path, reason: "no such file")
        }
        guard !isDirectory.boolValue else { throw FileError(path: path, reason: "is a directory, not a text file") }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw FileError(path: path, reason: "cannot read the file")
        }
        self.path = path
        self.handle = handle
    }

    deinit { try? handle.close() }

    /// Up to `count` further lines; fewer only at the end of the file.
    public func nextLines(upTo count: Int) throws(FileError) -> [String] {
        var lines: [String] = []
        while lines.count < count, let line = try nextLine() { lines.append(line) }
        return lines
    }

    /// The next line, or nil at the end of the file.
    public func nextLine() throws(FileError) -> String? {
        while true {
            var end = start + searched
            while end < buffer.count && buffer[end] != 0x0A && buffer[end] != 0x0D { end += 1 }
            searched = end - start
            if end < buffer.count {
                // A CR at the end of the block may be the first half of a CRLF.
                if buffer[end] == 0x0D && end + 1 == buffer.count && !atEnd {
                    try readBlock()
                    continue
                }
                let terminator = buffer[end] == 0x0D && end + 1 < buffer.count && buffer[end + 1] == 0x0A ? 2 : 1
                let line = try string(buffer[start..<end])
                start = end + terminator
                searched = 0
                return line
            }
            if atEnd {
                guard start < buffer.count else { return nil }
                let line = try string(buffer[start...])
                start = buffer.count
                searched = 0
                return line
            }
            guard buffer.count - start <= Self.maxLineBytes else {
                throw FileError(
                    path: path, reason: "line \(lineCount + 1) is longer than \(Self.maxLineBytes >> 20) MB")
            }
            try readBlock()
        }
    }

    private func string(_ bytes: ArraySlice<UInt8>) throws(FileError) -> String {
        lineCount += 1
        guard let line = String(validating: bytes, as: UTF8.self) else {
            throw FileError(path: path, reason: "line \(lineCount) is not valid UTF-8 text")
        }
        return line
    }

    /// Drops the lines handed out and appends the next block of the file.
    private func readBlock() throws(FileError) {
        buffer.removeFirst(start)
        start = 0
        let block: Data
        do {
            block = try handle.read(upToCount: Self.blockBytes) ?? Data()
        } catch {
            throw FileError(path: path, reason: "cannot read the file")
        }
        if block.isEmpty { atEnd = true } else { buffer.append(contentsOf: block) }
        if !startedReading {
            startedReading = true
            if buffer.starts(with: [0xEF, 0xBB, 0xBF]) { start = 3 }
        }
    }
}
