import ArgumentParser
import Foundation
import ViTData
import ViTImage
import ViTTensor

struct DatasetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset", abstract: "Render synthetic data sets.", subcommands: [ShapesDataset.self])
}

struct ShapesDataset: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shapes",
        abstract: "Render the captioned Shapes data set (32 x 32 PNGs and metadata.jsonl).",
        discussion: """
            Each image shows one antialiased shape (circle, square, triangle, diamond, cross) in \
            one of 8 colours, small or large, at one of 9 places, on a black, gray or navy \
            background. OUTPUT gets 00000.png, 00001.png, ... and metadata.jsonl with one line \
            per image: file_name, text (the caption), shape, color, size, position, background. \
            The train split never shows the held-out shape/colour pairs (cyan circle, orange \
            square, blue triangle, white diamond, yellow cross); held-out shows only those. \
            Image i depends only on the seed and i. OUTPUT must not exist or be empty; it \
            appears whole when done.
            """)

    @Option(help: "Number of images.")
    var count: Int = 64

    @Option(name: [.customShort("o"), .long], help: "Output folder.")
    var output: String

    @Option(help: "train, held-out or all.")
    var split: String = "train"

    @Option(help: "Seed.")
    var seed: UInt64 = 0

    func validate() throws {
        guard count > 0, count <= 10_000_000 else { throw ValidationError("--count must be between 1 and 10000000") }
        guard ShapesSplit(rawValue: split) != nil else {
            throw ValidationError(
                "--split must be one of \(ShapesSplit.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        let split = ShapesSplit(rawValue: split)!
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        if manager.fileExists(atPath: output, isDirectory: &isDirectory) {
            guard isDirectory.boolValue, (try? manager.contentsOfDirectory(atPath: output))?.isEmpty == true else {
                throw CLIFailure("\(output): exists and is not an empty folder (nothing in it was changed)")
            }
        }
        // Rendered into a staging folder, then renamed: a stopped run leaves no partial set.
        try createFolderWhole(output) { staging in
            let digits = max(5, String(count - 1).count)
            let bar = ProgressBar(total: count, label: "shapes")
            var lines: [String] = []
            lines.reserveCapacity(count)
            for index in 0..<count {
                let sample = Shapes.sample(index: index, seed: seed, split: split)
                let name = String(repeating: "0", count: digits - String(index).count) + "\(index).png"
                try sample.image.writePNG(path: "\(staging)/\(name)", text: [("Description", sample.caption)])
                lines.append(
                    CaptionedImages.metadataLine(
                        fileName: name, caption: sample.caption, attributes: sample.attributes.fields))
                bar.advance(by: 1)
            }
            bar.finish()
            try writeAtomically(
                Data((lines.joined(separator: "\n") + "\n").utf8),
                toPath: "\(staging)/\(CaptionedImages.metadataFile)")
        }
        printError("wrote \(count) images and \(CaptionedImages.metadataFile) to \(output)", prefix: "note")
    }
}
