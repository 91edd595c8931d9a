import Foundation
import Testing
import ViTTensor
import ViTTestSupport

/// Lines read a block (1 MiB) at a time against lines written out by hand, with line ends
/// that fall on the block boundary.
@Suite struct TextLineReaderTests {
    let folder = makeTemporaryFolder()

    func write(_ name: String, _ bytes: [UInt8]) -> String { writeFile(folder, name, bytes) }

    func lines(_ path: String, chunk: Int = 3) throws -> [String] {
        let reader = try TextLineReader(path: path)
        var out: [String] = []
        while case let next = try reader.nextLines(upTo: chunk), !next.isEmpty { out += next }
        return out
    }

    @Test func lineEndsOfEveryKind() throws {
        #expect(try lines(write("empty", [])) == [])
        #expect(try lines(write("newline", Array("\n".utf8))) == [""])
        #expect(try lines(write("mixed", Array("a\r\nb\rc\n\nd".utf8))) == ["a", "b", "c", "", "d"])
        #expect(try lines(write("cr-cr", Array("a\r\rb\r".utf8))) == ["a", "", "b"])
        #expect(try lines(write("unicode", Array("café\r\n日本\u{2028}x\n".utf8))) == ["café", "日本\u{2028}x"])
    }

    /// A CRLF split by the block boundary is one line end; a CR there followed by text is one
    /// too; a line spanning blocks is whole.
    @Test func lineEndsOnTheBlockBoundary() throws {
        let block = 1 << 20
        let first = [UInt8](repeating: 0x61, count: block - 1)
        #expect(
            try lines(write("crlf", first + Array("\r\nb\r".utf8))) == [String(repeating: "a", count: block - 1), "b"])
        #expect(try lines(write("cr", first + Array("\rb".utf8))) == [String(repeating: "a", count: block - 1), "b"])
        let long = [UInt8](repeating: 0x62, count: 3 * block + 5)
        #expect(
            try lines(write("long", Array("x\n".utf8) + long + Array("\ny".utf8))) == [
                "x", String(repeating: "b", count: 3 * block + 5), "y",
            ])
    }

    /// A byte-order mark opens the file, not its first line (as Foundation reads UTF-8);
    /// elsewhere it is text.
    @Test func byteOrderMark() throws {
        let mark: [UInt8] = [0xEF, 0xBB, 0xBF]
        #expect(try lines(write("bom", mark + Array("a\nb".utf8))) == ["a", "b"])
        #expect(try lines(write("bom-only", mark)) == [])
        #expect(try lines(write("bom-later", Array("a\n".utf8) + mark + Array("b".utf8))) == ["a", "\u{FEFF}b"])
    }

    @Test func badLinesAreNamed() throws {
        let bad = write("bad", [0x6F, 0x6B, 0x0A, 0x6F, 0xFF, 0x0A])
        #expect(throws: FileError.self) { try lines(bad) }
        do {
            _ = try lines(bad)
        } catch {
            #expect("\(error)" == "\(bad): line 2 is not valid UTF-8 text")
        }
        let long = write("too-long", Array("ok\n".utf8) + [UInt8](repeating: 0x61, count: (64 << 20) + 2))
        do {
            _ = try lines(long)
            Issue.record("a line of 64 MB + 2 bytes was read")
        } catch {
            #expect("\(error)" == "\(long): line 2 is longer than 64 MB")
        }
        do {
            _ = try TextLineReader(path: "\(folder)/missing")
            Issue.record("a missing file was opened")
        } catch {
            #expect("\(error)" == "\(folder)/missing: no such file")
        }
    }
}
