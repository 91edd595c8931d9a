import Foundation
import Testing
import ViTImage
import ViTTestSupport

let decodeFolder = repositoryPath("Tests/ViTImageTests/Golden/decode")

/// Every PNG and JPEG layout, decoded to RGB, against Pillow's `convert("RGB")`
/// (Tests/Reference/images.py), byte for byte.
@Suite struct DecodeTests {
    static let fixtures: [String] =
        (try? FileManager.default.contentsOfDirectory(atPath: decodeFolder))
        .map { $0.filter { ($0.hasSuffix(".png") && !$0.hasSuffix(".rgb.png")) || $0.hasSuffix(".jpg") }.sorted() }
        ?? []

    @Test func fixturesArePresent() {
        #expect(Self.fixtures.count >= 30, "found \(Self.fixtures)")
    }

    @Test(arguments: fixtures) func decodesAsPillow(name: String) throws {
        let image = try Image.read(path: "\(decodeFolder)/\(name)")
        let stem = (name as NSString).deletingPathExtension
        let expected: [UInt8]
        if let raw = FileManager.default.contents(atPath: "\(decodeFolder)/\(stem).rgb") {
            expected = [UInt8](raw)
        } else {
            expected = try Image.read(path: "\(decodeFolder)/\(stem).rgb.png").pixels
        }
        #expect(image.channels == 3)
        #expect(image.pixels.count == expected.count, "\(name): \(image.width)x\(image.height)")
        let mismatches = zip(image.pixels, expected).enumerated().filter { $0.element.0 != $0.element.1 }
        #expect(
            mismatches.isEmpty,
            "\(name): \(mismatches.count) of \(expected.count) samples differ; first at \(mismatches.first.map { "[\($0.offset)]: got \($0.element.0), expected \($0.element.1)" } ?? "")"
        )
    }
}

/// Malformed files give an ImageError naming the file; nothing crashes or hangs.
@Suite struct MalformedImageTests {
    let folder = makeTemporaryFolder()

    func write(_ name: String, _ bytes: [UInt8]) -> String { writeFile(folder, name, bytes) }

    func expectError(
        _ path: String, containing text: String, maxPixels: Int = Image.defaultMaxPixels,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        do {
            _ = try Image.read(path: path, maxPixels: maxPixels)
            Issue.record("\(path) was read without an error", sourceLocation: sourceLocation)
        } catch let error as ImageError {
            let message = error.description
            #expect(message.hasPrefix(path), "\(message)", sourceLocation: sourceLocation)
            #expect(message.contains(text), "\(message)", sourceLocation: sourceLocation)
            #expect(!message.contains("\n"), sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    func fixture(_ name: String) -> [UInt8] {
        [UInt8](FileManager.default.contents(atPath: "\(decodeFolder)/\(name)")!)
    }

    @Test func emptyFile() { expectError(write("empty.png", []), containing: "empty file") }

    @Test func missingFileAndDirectory() {
        expectError("\(folder)/absent.png", containing: "no such file")
        expectError(folder, containing: "directory")
    }

    @Test func wrongMagicAndTextNamedJPEG() {
        expectError(write("notes.jpg", Array("just some text, not a picture\n".utf8)), containing: "not a PNG or JPEG")
        expectError(write("gif.png", Array("GIF89a".utf8) + [0, 0, 0, 0]), containing: "not a PNG or JPEG")
    }

    @Test(arguments: [8, 20, 40, 100, 500, 1000])
    func truncatedPNG(length: Int) {
        let bytes = fixture("rgb8.png")
        expectError(write("cut\(length).png", Array(bytes.prefix(length))), containing: "PNG")
    }

    /// Pillow refuses all of these too, even the one missing only its end marker.
    @Test(arguments: [3, 10, 100, 300, 1000, 20000, 60000, 112_523])
    func truncatedJPEG(length: Int) {
        let bytes = fixture("rocket.jpg")
        #expect(bytes.count > length)
        expectError(write("cut\(length).jpg", Array(bytes.prefix(length))), containing: "JPEG")
    }

    /// A JPEG header declaring 65000 x 65000 pixels, followed by nothing.
    @Test func jpegDecompressionBomb() {
        let sof: [UInt8] = [
            0xFF, 0xC0, 0, 17, 8, 0xFD, 0xE8, 0xFD, 0xE8, 3,
            1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1,
        ]
        expectError(
            write("bomb.jpg", [0xFF, 0xD8] + sof), containing: "65000x65000 is more than the limit of 178956970 pixels")
    }

    @Test func truncatedProgressiveJPEG() {
        let bytes = fixture("progressive.jpg")
        expectError(write("cut.jpg", Array(bytes.prefix(bytes.count * 2 / 3))), containing: "truncated")
    }

    @Test func corruptPNGData() {
        var bytes = fixture("rgb8.png")
        for i in stride(from: 60, to: bytes.count - 20, by: 7) { bytes[i] ^= 0x5A }
        expectError(write("corrupt.png", bytes), containing: "PNG")
    }

    /// A valid header declaring 100000 x 100000 pixels and no data: refused from the
    /// header, before any allocation.
    @Test func decompressionBomb() {
        expectError(
            write("bomb.png", pngHeaderOnly(width: 100_000, height: 100_000)),
            containing: "more than the limit of 178956970")
        // Sides whose product passes 2^63 (found by fuzzing: it trapped on the overflow).
        expectError(
            write("huge.png", pngHeaderOnly(width: 0xFFFF_FFFF, height: 0xFFFF_FFFF)),
            containing: "4294967295x4294967295 is more than the limit of 178956970 pixels")
    }

    /// A text chunk declaring 1.8 GB in a 60-byte file (found by fuzzing: libpng allocated
    /// the declared length) is refused before libpng reads it.
    @Test func chunkLongerThanTheFile() {
        let bytes = pngHeaderOnly(width: 5, height: 3) + [0x6C, 0x6F, 0x6E, 0x65] + Array("tEXtSeed\u{0}76".utf8)
        expectError(write("long-chunk.png", bytes), containing: "a chunk declares 1819242085 bytes, 7 are left")
    }

    /// progressive-tall.jpg (40x200, 4:2:0) keeps all its DCT coefficients while its scans
    /// arrive: luma 6x26 blocks (5x25 rounded up to the 2x2 sampling), each chroma plane 3x13,
    /// 234 blocks of 64 two-byte coefficients = 29,952 bytes. Within 16,000 bytes it is
    /// refused; a baseline file, even a larger one, needs no whole-image arrays and decodes
    /// within the same limit.
    @Test func decoderMemoryLimit() throws {
        let progressive = "\(decodeFolder)/progressive-tall.jpg"
        do {
            _ = try Image.read(path: progressive, maxDecoderMemory: 16_000)
            Issue.record("progressive-tall.jpg was decoded within 16,000 bytes")
        } catch let error as ImageError {
            #expect(
                error.description
                    == "\(progressive): this 40x200 progressive JPEG needs more than the limit of 16000 bytes of decoder memory"
            )
        }
        let expected = try Image.read(path: progressive).pixels
        #expect(try Image.read(path: progressive, maxDecoderMemory: 1 << 20).pixels == expected)
        let baseline = "\(decodeFolder)/rocket.jpg"  // 640x427
        #expect(try Image.read(path: baseline, maxDecoderMemory: 16_000).pixels == Image.read(path: baseline).pixels)
    }

    @Test func configurablePixelLimit() throws {
        let path = "\(decodeFolder)/rgb8.png"
        expectError(path, containing: "limit of 1000", maxPixels: 1000)
        let image = try Image.read(path: path, maxPixels: 37 * 29)
        #expect(image.width == 37 && image.height == 29)
    }
}

/// Mutated files, with properties that a wrong decoder breaks. Deterministic: the mutations
/// come from a fixed seed.
/// - A cut file (any proper prefix) is rejected, or decodes to exactly the original pixels
///   (a PNG cut inside its closing IEND chunk, after all the image data, which Pillow reads
///   too): no decoder may return a partial or altered image.
/// - A PNG with one byte changed after its signature is rejected, or decodes to exactly the
///   original pixels: every chunk carries a CRC-32, which detects any change of one byte,
///   and only ancillary chunks (whose loss leaves the pixels unchanged) may be dropped.
/// - Every rejection is one line naming the file.
@Suite struct MutatedImageTests {
    static let files = [
        "rgb8.png", "palette4.png", "rgba8-interlaced.png", "gray16.png", "ycbcr420.jpg", "progressive.jpg",
        "cmyk.jpg", "gray.jpg",
    ]

    struct Mutations {
        var state: UInt64
        init(_ name: String) { state = 0x5EED ^ UInt64(name.utf8.reduce(0) { $0 &* 31 &+ Int($1) }.magnitude) }
        mutating func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
    }

    /// A rejection is an ImageError of one line that starts with the file's name.
    func expectOneLine(_ error: Error, name: String, _ what: String) {
        guard let error = error as? ImageError else {
            Issue.record("\(name), \(what): unexpected error \(error)")
            return
        }
        let text = "\(error)"
        #expect(text.hasPrefix("\(name): ") && !text.contains("\n"), "\(what): \(text)")
    }

    @Test(arguments: files) func cutFilesAreRejectedOrWhole(name: String) throws {
        let original = [UInt8](FileManager.default.contents(atPath: "\(decodeFolder)/\(name)")!)
        let pixels = try Image.decode(Data(original), name: name).pixels
        var mutations = Mutations(name)
        for _ in 0..<60 {
            let length = mutations.next(original.count)
            do {
                let image = try Image.decode(Data(original.prefix(length)), name: name, maxPixels: 1 << 24)
                #expect(image.pixels == pixels, "cut at \(length) of \(original.count) decoded to other pixels")
            } catch {
                expectOneLine(error, name: name, "cut at \(length)")
            }
        }
    }

    @Test(arguments: files.filter { $0.hasSuffix(".png") }) func changedPNGBytesAreCaught(name: String) throws {
        let original = [UInt8](FileManager.default.contents(atPath: "\(decodeFolder)/\(name)")!)
        let pixels = try Image.decode(Data(original), name: name).pixels
        var mutations = Mutations(name)
        for _ in 0..<150 {
            var bytes = original
            let at = 8 + mutations.next(bytes.count - 8)
            bytes[at] ^= UInt8(1 + mutations.next(255))
            do {
                let image = try Image.decode(Data(bytes), name: name, maxPixels: 1 << 24)
                #expect(image.pixels == pixels, "byte \(at) changed, yet the image decoded to other pixels")
            } catch {
                expectOneLine(error, name: name, "byte \(at) changed")
            }
        }
    }
}
