import ArgumentParser
import Foundation
import ViTImage
import ViTTensor
import ViTVision

/// Output formats for machine-readable results.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, jsonl, csv
}

struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify images with a Vision Transformer.",
        discussion: """
            IMAGES are PNG or JPEG files or folders (searched recursively, in sorted order). \
            A file that cannot be read is reported on stderr and the rest are still \
            classified; the exit code is then 1.
            """)

    @Argument(help: "Image files or folders.")
    var images: [String]

    @Option(
        help:
            "An HF ViT folder, a timm folder, a SwiftViT .safetensors file or a Hugging Face name ORG/NAME[@REVISION] (from its cache, fetched when absent) (default: the shipped Fashion-MNIST model)."
    )
    var model: String?

    @Option(help: "How many classes to report per image.")
    var topK: Int = 5

    @Option(help: "Output format: text, json, jsonl or csv.")
    var format: OutputFormat = .text

    @Option(help: "Images per forward pass.")
    var batchSize: Int = 8

    @Option(help: "Threads for matrix products (default: all cores).")
    var threads: ThreadCount?

    @Option(
        help: "Override the model's preprocessing: \(PreprocessProfile.builtIn.map(\.name).joined(separator: ", ")).")
    var profile: String?

    @OptionGroup var limits: ImageLimits

    @OptionGroup var precision: PrecisionOption

    @Option(
        help: ArgumentHelp(
            "Run at this input size (a multiple of the patch size); position embeddings are resampled.",
            valueName: "pixels"))
    var imageSize: Int?

    @Flag(help: "Include the raw logits in json and jsonl output.")
    var logits = false

    func validate() throws {
        guard topK > 0 else { throw ValidationError("--top-k must be at least 1") }
        guard batchSize > 0 else { throw ValidationError("--batch-size must be at least 1") }
        try checkProfileName(profile)
    }

    struct Prediction: Encodable {
        let label: String
        let index: Int
        let probability: Float
    }

    struct Result: Encodable {
        let file: String
        let predictions: [Prediction]
        let logits: [Float]?
    }

    func run() throws {
        applyThreads(threads)
        try precision.apply()
        var classifier = try ImageClassifier.load(path: model.map(modelPath) ?? defaultModelPath())
        classifier.model.markParametersConstant()
        if let profile { classifier = classifier.withProfile(PreprocessProfile.named(profile)!) }
        if let imageSize {
            let channels = classifier.model.config.inChannels
            guard classifier.model.accepts(height: imageSize, width: imageSize, channels: channels) else {
                throw ValidationError(
                    "--image-size \(imageSize) is not a positive multiple of the patch size \(classifier.model.config.patchSize) giving at most \(ViTConfig.maxPatches) patches"
                )
            }
            classifier = classifier.withProfile(classifier.profile.forInputSize(imageSize))
        }
        let (files, missing) = collectImageFiles(images)
        var failures = missing.count
        for message in missing { printError(message) }
        if format == .csv { print("file,rank,label,index,probability") }
        // JSON is a streamed array: each result is printed when it is known.
        var printedJSON = 0
        if format == .json { print("[", terminator: "") }
        let progress = ProgressBar(total: files.count, label: "classifying")
        var start = 0
        while start < files.count {
            let batchFiles = Array(files[start..<min(start + batchSize, files.count)])
            start += batchFiles.count
            var inputs: [(file: String, input: Tensor)] = []
            for file in batchFiles {
                do {
                    let input: Tensor
                    do {
                        input = try classifier.input(for: try limits.read(file))
                    } catch let error as PreprocessError {
                        throw error.naming(file)
                    }
                    if let problem = classifier.model.inputProblem(
                        height: input.shape[1], width: input.shape[2], channels: input.shape[0])
                    {
                        throw ImageError(path: file, reason: problem)
                    }
                    inputs.append((file, input))
                } catch {
                    printError("\(error)")
                    failures += 1
                }
            }
            progress.advance(by: batchFiles.count)
            var results: [String: Result] = [:]
            for group in batchesOfOneSize(inputs, model: classifier.model) {
                let logitsBatch = classifier.logits(Tensor.stack(group.map(\.input)))
                let probabilities = logitsBatch.softmax(axis: -1)
                let classes = logitsBatch.shape[1]
                for (row, name) in group.map(\.file).enumerated() {
                    let p = Array(UnsafeBufferPointer(start: probabilities.data + row * classes, count: classes))
                    let raw = Array(UnsafeBufferPointer(start: logitsBatch.data + row * classes, count: classes))
                    guard raw.allSatisfy(\.isFinite) else {
                        printError("\(name): the model's output is not finite")
                        failures += 1
                        continue
                    }
                    let top = p.enumerated().sorted {
                        $0.element > $1.element || ($0.element == $1.element && $0.offset < $1.offset)
                    }
                    .prefix(topK)
                    .map { Prediction(label: classifier.labels[$0.offset], index: $0.offset, probability: $0.element) }
                    results[name] = Result(file: name, predictions: top, logits: logits ? raw : nil)
                }
            }
            for (file, _) in inputs {
                guard let result = results[file] else { continue }
                if format == .json {
                    print(printedJSON == 0 ? "\n" : ",\n", terminator: "")
                    print(try prettyJSONElement(result), terminator: "")
                    printedJSON += 1
                } else {
                    emit(result)
                }
            }
        }
        progress.finish()
        if format == .json { print(printedJSON == 0 ? "]" : "\n]") }
        if failures > 0 { throw ExitCode(1) }
    }

    /// Runs of inputs of one size, in order, each at most as many as a forward pass should
    /// take at a time (about 1 GB of activations).
    private func batchesOfOneSize(
        _ inputs: [(file: String, input: Tensor)], model: VisionTransformer
    ) -> [[(file: String, input: Tensor)]] {
        var groups: [[(file: String, input: Tensor)]] = []
        for item in inputs {
            let shape = item.input.shape
            let tokens = model.tokenCount(height: shape[1], width: shape[2])
            let limit = max(1, (1 << 30) / model.config.inferenceBytesPerImage(tokens: tokens))
            if let last = groups.last, last[0].input.shape == shape, last.count < limit {
                groups[groups.count - 1].append(item)
            } else {
                groups.append([item])
            }
        }
        return groups
    }

    /// A result as an element of a pretty-printed JSON array (indented two spaces).
    private func prettyJSONElement(_ result: Result) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let text = String(decoding: try encoder.encode(result), as: UTF8.self)
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n")
    }

    private func emit(_ result: Result) {
        switch format {
        case .text:
            let shown = result.predictions.map { "\($0.label) \(String(format: "%.4f", $0.probability))" }
            print("\(result.file): \(shown.joined(separator: ", "))")
        case .jsonl:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: (try? encoder.encode(result)) ?? Data(), as: UTF8.self))
        case .csv:
            for (rank, p) in result.predictions.enumerated() {
                print(
                    [csvField(result.file), "\(rank + 1)", csvField(p.label), "\(p.index)", "\(p.probability)"]
                        .joined(separator: ","))
            }
        case .json:
            break
        }
    }

}

/// A CSV field, quoted when it holds a comma, quote or line break (RFC 4180).
func csvField(_ text: String) -> String {
    guard text.contains(where: { ",\"\n\r".contains($0) }) else { return text }
    return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

/// Files named directly, and PNG/JPEG files found recursively in folders, sorted; plus
/// one message for each path that does not exist and each folder that cannot be read.
/// Symbolic links to folders are not followed (no loops).
func collectImageFiles(_ paths: [String]) -> (files: [String], missing: [String]) {
    var files: [String] = [], missing: [String] = []
    let extensions: Set<String> = ["png", "jpg", "jpeg"]
    let manager = FileManager.default
    /// Image files under `folder`, as paths relative to it.
    func walk(_ folder: String, relative: String) -> [String] {
        let path = relative.isEmpty ? folder : "\(folder)/\(relative)"
        guard let handle = opendir(path) else {
            missing.append("\(path): cannot read the folder (\(String(cString: strerror(errno))))")
            return []
        }
        closedir(handle)
        let entries = (try? manager.contentsOfDirectory(atPath: path)) ?? []
        var found: [String] = []
        for entry in entries {
            let child = relative.isEmpty ? entry : "\(relative)/\(entry)"
            var status = stat()
            guard lstat("\(folder)/\(child)", &status) == 0 else { continue }
            if status.st_mode & S_IFMT == S_IFDIR {
                found += walk(folder, relative: child)
            } else if extensions.contains((entry as NSString).pathExtension.lowercased()) {
                found.append(child)
            }
        }
        return found
    }
    for path in paths {
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: path, isDirectory: &isDirectory) else {
            missing.append("\(path): no such file")
            continue
        }
        guard isDirectory.boolValue else {
            files.append(path)
            continue
        }
        files += walk(path, relative: "").sorted().map { (path as NSString).appendingPathComponent($0) }
    }
    return (files, missing)
}

/// A one-line progress bar on stderr, shown only when stderr is a terminal.
final class ProgressBar {
    let total: Int
    let label: String
    private var done = 0
    private let enabled: Bool
    private let start = Date()

    init(total: Int, label: String) {
        self.total = total
        self.label = label
        enabled = isatty(STDERR_FILENO) != 0 && total > 1
    }

    /// Moves the bar on by n items; `detail` is shown after the rate (a loss, say), then the
    /// time left at the rate so far.
    func advance(by n: Int, detail: String = "") {
        done += n
        guard enabled else { return }
        let width = 30, filled = total == 0 ? width : width * done / total
        let elapsed = max(Date().timeIntervalSince(start), 1e-9)
        let rate = Double(done) / elapsed
        let left = Int((Double(total - done) / max(rate, 1e-9)).rounded())
        let eta = String(format: "%d:%02d", left / 60, left % 60)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        FileHandle.standardError.write(
            Data("\r\(label) [\(bar)] \(done)/\(total) \(String(format: "%.1f", rate))/s \(detail) ETA \(eta) ".utf8))
    }

    func finish() {
        if enabled { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
