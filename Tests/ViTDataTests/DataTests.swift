import Foundation
import Testing
import ViTData
import ViTImage
import ViTTensor
import ViTTestSupport

/// Reading IDX files (gzip and plain) and making batches.
@Suite struct DataTests {
    /// Debian's dataset-fashion-mnist (installed by .ci/run): values checked with Python's
    /// gzip module: the first ten test labels and the first image's pixel sum and row 14.
    @Test func fashionMNISTTestSplit() throws {
        let test = try LabeledImages.idxFolder(
            LabeledImages.fashionMNISTFolder, test: true, classNames: LabeledImages.fashionMNISTClasses)
        #expect(test.count == 10_000)
        #expect(Array(test.labels.prefix(10)) == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7])
        let first = test.images[0]
        #expect(first.width == 28 && first.height == 28 && first.channels == 1)
        #expect(first.pixels.reduce(0) { $0 + Int($1) } == 33456)
        let row14: [UInt8] = [
            0, 0, 0, 0, 0, 0, 0x02, 0x04, 0x01, 0, 0, 0, 0x62, 0x88, 0x6e, 0x6d, 0x6e, 0xa2, 0x87, 0x90, 0x95,
            0x9f, 0xa7, 0x90, 0x9e, 0xa9, 0x77, 0,
        ]
        #expect(Array(first.pixels[(14 * 28)..<(15 * 28)]) == row14)
    }

    @Test func plainIDXAndErrors() throws {
        let folder = makeTemporaryFolder()
        try writeIDX(folder: folder, prefix: "t10k", count: 3, side: 2)
        let data = try LabeledImages.idxFolder(folder, test: true, classNames: ["a", "b", "c"])
        #expect(data.labels == [0, 1, 2])
        #expect(data.images[2].pixels == [8, 9, 10, 11])
        // A truncated image file names itself.
        let path = "\(folder)/t10k-images-idx3-ubyte"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count - 1).write(to: URL(fileURLWithPath: path))
        #expect {
            try LabeledImages.idxFolder(folder, test: true, classNames: ["a", "b", "c"])
        } throws: { "\($0)" == "\(path): 11 data bytes for shape [3, 2, 2]" }
        #expect(throws: DatasetError.self) { try LabeledImages.idxFolder(folder, test: false, classNames: []) }
    }

    /// Sizes in IDX headers are checked before anything is allocated for them: dimensions
    /// whose product wraps around 2^64, a gzip header declaring 4 GiB, a gzip stream holding
    /// far more than its header declares (inflated no further than one byte past it), and
    /// empty images each give one line naming the file.
    @Test func hostileIDXHeaders() throws {
        let folder = makeTemporaryFolder()
        let images = "\(folder)/train-images-idx3-ubyte", labels = "\(folder)/train-labels-idx1-ubyte"
        func header(_ dims: [Int]) -> [UInt8] {
            [0, 0, 8, UInt8(dims.count)] + dims.flatMap { d in (0..<4).map { UInt8(d >> (24 - 8 * $0) & 255) } }
        }
        func write(_ bytes: [UInt8], to path: String, gzip: Bool = false) throws {
            try? FileManager.default.removeItem(atPath: path)
            try? FileManager.default.removeItem(atPath: path + ".gz")
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            guard gzip else { return }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/gzip")
            process.arguments = ["-f", path]
            try process.run()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
        }
        func failure() -> String {
            do {
                _ = try LabeledImages.idxFolder(folder, test: false)
                return "no error"
            } catch { return "\(error)" }
        }
        try write(header([1]) + [0], to: labels)
        // 2^22 * 2^21 * 2^21 = 2^64: zero after wrapping.
        try write(header([1 << 22, 1 << 21, 1 << 21]), to: images)
        #expect(
            failure()
                == "\(images): shape [4194304, 2097152, 2097152] declares more than the limit of 536870912 data bytes")
        try write(header([4096, 1024, 1024]) + [UInt8](repeating: 0, count: 4096), to: images, gzip: true)
        #expect(
            failure() == "\(images).gz: shape [4096, 1024, 1024] declares more than the limit of 536870912 data bytes")
        try write(header([1, 4, 4]) + [UInt8](repeating: 7, count: 64 << 20), to: images, gzip: true)
        #expect(failure() == "\(images).gz: more than 16 data bytes for shape [1, 4, 4]")
        try write(header([1, 0, 4]), to: images)
        #expect(failure() == "\(images): shapes [1, 0, 4] and [1] do not make a dataset")
        try write(header([1, 2, 2]) + [1, 2, 3, 4], to: images, gzip: true)
        #expect(try LabeledImages.idxFolder(folder, test: false).images[0].pixels == [1, 2, 3, 4])
    }

    /// An ImageFolder: sorted class folders, files found recursively and sorted; a corrupt
    /// image names itself.
    @Test func imageFolder() throws {
        let root = makeTemporaryFolder()
        for (name, values) in [("zebra", [1, 2]), ("ant", [3])] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(name)/deep", withIntermediateDirectories: true)
            for (i, v) in values.enumerated() {
                let image = Image(width: 2, height: 2, channels: 3, pixels: [UInt8](repeating: UInt8(v), count: 12))
                try image.writePNG(path: "\(root)/\(name)/\(i == 0 ? "deep/" : "")\(i).png")
            }
        }
        let data = try LabeledImages.imageFolder(root)
        #expect(data.classNames == ["ant", "zebra"] && data.labels == [0, 1, 1])
        #expect(data.images.map { $0.pixels[0] } == [3, 2, 1])  // "1.png" sorts before "deep/0.png"
        try Data("not a png".utf8).write(to: URL(fileURLWithPath: "\(root)/ant/broken.png"))
        #expect {
            try LabeledImages.imageFolder(root)
        } throws: { "\($0)".hasPrefix("\(root)/ant/broken.png: ") }
    }

    /// The same seed gives the same order and the same augmented samples; shifting and
    /// mirroring move pixels as they should.
    @Test func batchesAreSeeded() throws {
        let images = (0..<20).map { i in
            Image(width: 4, height: 4, channels: 1, pixels: (0..<16).map { UInt8($0 * 10 + i) })
        }
        let data = LabeledImages(images: images, labels: (0..<20).map { $0 % 3 }, classNames: ["a", "b", "c"])
        var profile = PreprocessProfile.hfViT
        profile.resize = .exact(width: 4, height: 4)
        let augmentation = Augmentation(cropPadding: 1, horizontalFlip: true, erasingProbability: 0.5)
        let a = try BatchMaker(data: data, profile: profile, augmentation: augmentation, seed: 3)
        let b = try BatchMaker(data: data, profile: profile, augmentation: augmentation, seed: 3)
        #expect(a.order(epoch: 1) == b.order(epoch: 1) && a.order(epoch: 1).sorted() == Array(0..<20))
        #expect(a.order(epoch: 1) != a.order(epoch: 2))
        let (x, labels) = a.batch([4, 7], epoch: 1)
        #expect(x.shape == [2, 3, 4, 4] && labels == [1, 1])
        #expect(x.scalars == b.batch([4, 7], epoch: 1).images.scalars)
        let square = Image(width: 2, height: 2, channels: 1, pixels: [1, 2, 3, 4])
        #expect(square.mirrored().pixels == [2, 1, 4, 3])
        #expect(square.shifted(dx: 1, dy: 0).pixels == [2, 0, 4, 0])
        #expect(square.shifted(dx: 0, dy: -1).pixels == [0, 0, 1, 2])
    }
}

/// Writes uncompressed IDX files: `count` images of side x side with values
/// i * side * side + j, and labels 0, 1, 2, ...
func writeIDX(folder: String, prefix: String, count: Int, side: Int, classes: Int = 3) throws {
    func header(_ dims: [Int]) -> [UInt8] {
        [0, 0, 8, UInt8(dims.count)]
            + dims.flatMap { d in [UInt8(d >> 24), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
    }
    let pixels = (0..<(count * side * side)).map { UInt8($0 % 256) }
    try Data(header([count, side, side]) + pixels).write(
        to: URL(fileURLWithPath: "\(folder)/\(prefix)-images-idx3-ubyte"))
    try Data(header([count]) + (0..<count).map { UInt8($0 % classes) })
        .write(to: URL(fileURLWithPath: "\(folder)/\(prefix)-labels-idx1-ubyte"))
}
