import Foundation
import Testing
import ViTImage
import ViTTestSupport

@Suite struct EncodeTests {
    let folder = makeTemporaryFolder()

    func sample(channels: Int) -> Image {
        var image = Image(width: 5, height: 3, channels: channels)
        for i in 0..<image.pixels.count { image.pixels[i] = UInt8((i * 37 + 11) % 256) }
        return image
    }

    @Test(arguments: [1, 3, 4]) func roundTrip(channels: Int) throws {
        let image = sample(channels: channels)
        let path = "\(folder)/round\(channels).png"
        try image.writePNG(path: path, text: [("Caption", "a red circle"), ("Seed", "7")])
        let back = try Image.read(path: path)
        // Read back as RGB: gray replicated, alpha dropped.
        for y in 0..<3 {
            for x in 0..<5 {
                for c in 0..<3 {
                    #expect(back[x, y, c] == image[x, y, channels == 1 ? 0 : c])
                }
            }
        }
        let bytes = [UInt8](FileManager.default.contents(atPath: path)!)
        let text = Array("tEXtCaption\0a red circle".utf8)
        #expect(bytes.indices.contains { bytes[$0...].starts(with: text) }, "tEXt chunk missing")
        // Nothing but the file itself is left in the folder.
        let names = try FileManager.default.contentsOfDirectory(atPath: folder)
        #expect(names.allSatisfy { !$0.hasSuffix(".tmp") }, "\(names)")
    }

    /// A failed write leaves no file of its own, and whatever stood at the destination stays
    /// as it was, in each of three places the write can fail: before anything is written (no
    /// such folder), while encoding (an empty image), and at the final rename (the
    /// destination is a folder), after the temporary file was written in full.
    @Test func failedWritesLeaveNothingAndKeepTheOldFile() throws {
        let base = makeTemporaryFolder()
        func entries() throws -> [String] { try FileManager.default.subpathsOfDirectory(atPath: base).sorted() }

        #expect(throws: ImageError.self) { try sample(channels: 3).writePNG(path: "\(base)/missing-folder/out.png") }
        #expect(try entries().isEmpty)

        let existing = "\(base)/keep.png"
        try sample(channels: 1).writePNG(path: existing)
        let before = try #require(FileManager.default.contents(atPath: existing))
        #expect(throws: ImageError.self) { try Image(width: 0, height: 3, channels: 3).writePNG(path: existing) }
        #expect(FileManager.default.contents(atPath: existing) == before)
        #expect(try entries() == ["keep.png"])

        let folderInTheWay = "\(base)/taken.png"
        try FileManager.default.createDirectory(atPath: folderInTheWay, withIntermediateDirectories: false)
        FileManager.default.createFile(atPath: "\(folderInTheWay)/inside", contents: Data("x".utf8))
        #expect(throws: ImageError.self) { try sample(channels: 3).writePNG(path: folderInTheWay) }
        #expect(try entries() == ["keep.png", "taken.png", "taken.png/inside"])

        // A write that succeeds replaces the old file whole.
        try sample(channels: 4).writePNG(path: existing)
        #expect(FileManager.default.contents(atPath: existing) != before)
        #expect(try Image.read(path: existing).pixels.count == 5 * 3 * 3)
    }
}

/// Text chunks as Pillow reads them (Tests/Reference/png_text.py): ASCII values in tEXt,
/// others (UTF-8) in iTXt. The committed PNG is what the encoder writes for this image.
@Test func textChunksAsPillowReadsThem() throws {
    let pixels: [UInt8] = (0..<45).map { (i: Int) -> UInt8 in UInt8((i * 37 + 11) % 256) }
    let text: [(key: String, value: String)] = [
        ("Caption", "a café with a red circle, 一个红色的圆 ✓"), ("Seed", "7"), ("Software", "SwiftViT"),
    ]
    let written = try Image(width: 5, height: 3, channels: 3, pixels: pixels).pngData(text: text)
    let path = repositoryPath("Tests/ViTImageTests/Golden/png-text.png")
    #expect(written == (try Data(contentsOf: URL(fileURLWithPath: path))), "the encoder's bytes changed")
    let golden = try JSONSerialization.jsonObject(
        with: Data(contentsOf: URL(fileURLWithPath: repositoryPath("Tests/ViTImageTests/Golden/png-text.json"))))
    let pillow = try #require(golden as? [String: Any])
    let pillowText = try #require(pillow["text"] as? [String: String])
    let chunks = try pngTextChunks(path)
    #expect(Dictionary(uniqueKeysWithValues: chunks) == pillowText)
    #expect(chunks.map(\.0) == ["Caption", "Seed", "Software"])
    let decoded = try Image.read(path: path)
    #expect(decoded.pixels == (pillow["pixels"] as? [Int])?.map { UInt8($0) })
}
