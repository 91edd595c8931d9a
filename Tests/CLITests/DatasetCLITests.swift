import Foundation
import Testing
import ViTData
import ViTTestSupport

/// `vit dataset shapes`: the folder it writes reads back as the library's samples.
@Suite struct DatasetCLITests {
    let folder = makeTemporaryFolder()

    @Test func rendersAFolderThatReadsBack() throws {
        let output = "\(folder)/shapes"
        let result = try runVit([
            "dataset", "shapes", "--count", "12", "-o", output, "--seed", "3", "--split", "held-out",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let data = try CaptionedImages.folder(output)
        #expect(data.count == 12)
        for index in 0..<12 {
            let sample = Shapes.sample(index: index, seed: 3, split: .heldOut)
            #expect(data.images[index].pixels == sample.image.pixels)
            #expect(data.captions[index] == sample.caption)
            #expect(data.attributes[index] == sample.attributes.fields)
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: output).sorted()
        #expect(names == (0..<12).map { String(format: "%05d.png", $0) } + ["metadata.jsonl"])
        // Nothing left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["shapes"])
    }

    @Test func refusesToOverwrite() throws {
        let output = "\(folder)/taken"
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: URL(fileURLWithPath: "\(output)/notes.txt"))
        let result = try runVit(["dataset", "shapes", "--count", "4", "-o", output])
        #expect(result.status == 1)
        #expect(result.stderr == "error: \(output): exists and is not an empty folder\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: output) == ["notes.txt"])

        let badSplit = try runVit(["dataset", "shapes", "-o", "\(folder)/x", "--split", "test"])
        #expect(badSplit.status == 64)
        #expect(badSplit.stderr.contains("--split must be one of train, held-out, all"))
        #expect(!FileManager.default.fileExists(atPath: "\(folder)/x"))
    }
}
