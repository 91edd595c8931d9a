import ArgumentParser
import Foundation
import ViTCheckpoint
import ViTData
import ViTHub
import ViTImage
import ViTTensor
import ViTTraining
import ViTVision

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure a classifier's accuracy, or how well a generator follows its captions.",
        subcommands: [EvalClassifier.self, EvalGenerator.self], defaultSubcommand: EvalClassifier.self)
}

struct EvalClassifier: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classifier",
        abstract: "Measure a classifier's accuracy on a test set (the default of `vit eval`).",
        discussion: """
            DATA as for `vit train classifier` (its test split): fashion-mnist, shapes:ATTRIBUTE, \
            an IDX folder or an ImageFolder (DATA/test). Prints accuracy, per-class accuracy and the \
            confusion matrix (rows: true class, columns: predicted).
            """)

    @Option(
        help:
            "A model: a folder, a file or a Hugging Face name (from its cache, fetched when absent) (default: the shipped Fashion-MNIST model)."
    )
    var model: String?

    @Option(help: "Test data.")
    var data: String = "fashion-mnist"

    @Option(help: "Output format: text or json.")
    var format: OutputFormat = .text

    @Option(help: "Also draw the confusion matrix as a PNG.")
    var confusionPNG: String?

    @Option(help: "Images per forward pass.")
    var batchSize: Int = 256

    @Option(help: "Threads (default: all cores).")
    var threads: ThreadCount?

    func validate() throws {
        guard [.text, .json].contains(format) else { throw ValidationError("--format must be text or json") }
        guard batchSize > 0 else { throw ValidationError("--batch-size must be at least 1") }
    }

    func run() throws {
        applyThreads(threads)
        let classifier = try ImageClassifier.load(path: model.map(modelPath) ?? defaultModelPath())
        classifier.model.markParametersConstant()
        let test = try LabeledImages.named(data, test: true)
        guard test.classNames.count == classifier.labels.count else {
            throw CLIFailure("\(data) has \(test.classNames.count) classes, the model \(classifier.labels.count)")
        }
        let result = try evaluate(classifier, on: test, batchSize: batchSize)
        if format == .json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            print(String(format: "accuracy: %.4f (%d images)", result.accuracy, result.count))
            let width = max(12, (result.classNames.map(\.count).max() ?? 0) + 2)
            for (name, accuracy) in zip(result.classNames, result.perClassAccuracy) {
                print(
                    "  " + name.padding(toLength: width, withPad: " ", startingAt: 0)
                        + String(format: "%.4f", accuracy))
            }
            print("confusion (rows: true, columns: predicted):")
            for row in result.confusion {
                print(row.map { String(format: "%5d", $0) }.joined())
            }
        }
        if let confusionPNG {
            try confusionImage(result.confusion).writePNG(
                path: confusionPNG,
                text: [
                    ("Software", "SwiftViT \(swiftViTVersion)"),
                    ("Description", "confusion matrix, rows true class, columns predicted; darker is more"),
                ])
        }
    }

    /// The confusion matrix as gray cells (20 px), darker for more images; each row is
    /// scaled by its own total so that classes of any size read alike.
    func confusionImage(_ confusion: [[Int]]) -> Image {
        let k = confusion.count, cell = 20
        var image = Image(width: k * cell, height: k * cell, channels: 3)
        for (i, row) in confusion.enumerated() {
            let total = max(row.reduce(0, +), 1)
            for (j, count) in row.enumerated() {
                let level = UInt8(255 - (255 * count) / total)
                for y in (i * cell)..<((i + 1) * cell) {
                    for x in (j * cell)..<((j + 1) * cell) {
                        for c in 0..<3 { image.pixels[(y * k * cell + x) * 3 + c] = c == 2 ? 255 : level }
                    }
                }
            }
        }
        return image
    }
}

/// The shipped default model: Weights/ next to the executable's package, or
/// $SWIFTVIT_WEIGHTS.
func defaultModelPath() -> String { shippedWeightsPath(defaultModelFile) }

/// A `--model` argument as a path for the loaders: an existing file or folder as it is,
/// else a Hugging Face model name (ORG/NAME[@REVISION]) resolved in the hub cache that
/// transformers, timm and sentence-transformers share; a model not there is fetched
/// (`HubDownloader`) unless HF_HUB_OFFLINE is set.
func modelPath(_ argument: String) throws -> String {
    if FileManager.default.fileExists(atPath: argument) || argument.hasSuffix(".safetensors") { return argument }
    guard let name = HubCache.ModelName(argument) else { return argument }
    let cache = HubCache()
    let downloader = HubDownloader(cache: cache)
    do {
        guard FileManager.default.fileExists(atPath: cache.folder(of: name.repository)) else {
            throw CLIFailure(
                "\(argument): no such file or folder, and no such model in the Hugging Face cache (\(cache.root))")
        }
        return try cache.snapshot(name)
    } catch  where !downloader.offline {
        return try fetchModel(name, with: downloader)
    }
}

/// Fetches a model into the hub cache, with progress on stderr when it is a terminal.
func fetchModel(_ name: HubCache.ModelName, with downloader: HubDownloader) throws -> String {
    let showsProgress = isatty(STDERR_FILENO) != 0
    let snapshot = try downloader.fetch(name) { file, done, total in
        guard showsProgress else { return }
        let amount =
            total.map { String(format: "%.1f of %.1f MB", Double(done) / 1e6, Double($0) / 1e6) }
            ?? String(format: "%.1f MB", Double(done) / 1e6)
        FileHandle.standardError.write(Data("\rfetching \(name) \(file): \(amount)   ".utf8))
    }
    if showsProgress { FileHandle.standardError.write(Data("\n".utf8)) }
    return snapshot
}

/// A file or folder in Weights/: under $SWIFTVIT_WEIGHTS when set, else in the package
/// that holds the executable (.build/<config>/vit, up to four levels), else relative.
func shippedWeightsPath(_ name: String) -> String {
    if let custom = ProcessInfo.processInfo.environment["SWIFTVIT_WEIGHTS"] { return "\(custom)/\(name)" }
    var folder = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = folder.appendingPathComponent("Weights/\(name)").path
        if FileManager.default.fileExists(atPath: candidate) { return candidate }
        folder = folder.deletingLastPathComponent()
    }
    return "Weights/\(name)"
}

/// The file name of the shipped model in Weights/.
let defaultModelFile = "vit-fashion-mnist.safetensors"
