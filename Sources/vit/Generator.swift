import ArgumentParser
import Crypto
import Foundation
import ViTCheckpoint
import ViTCore
import ViTData
import ViTGenerator
import ViTImage
import ViTTensor
import ViTText
import ViTTraining
import ViTVision

/// The shipped Shapes generator.
let defaultGeneratorFile = "shapes-generator.safetensors"

struct TrainGenerator: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generator",
        abstract: "Train a caption-to-image generator (flow matching) on captioned images.",
        discussion: """
            DATA is shapes (20,000 images of the Shapes training split: the held-out shape/colour \
            pairs never appear), fashion-mnist (class captions in varied phrasings, images padded \
            to 32 x 32), or a folder with metadata.jsonl (file_name and text per line, as \
            `vit dataset shapes` writes). Captions go through the text model (frozen; each \
            distinct caption encoded once) and are dropped to the empty caption with probability \
            --caption-dropout, so the same model serves classifier-free guidance. OUTPUT is a \
            folder (checkpoint.safetensors every epoch, model.safetensors at the end, log.jsonl, \
            curves.png, samples/epoch-N.png: a grid for fixed captions and seeds, seen pairs on \
            top and held-out pairs below) or NAME.safetensors with the rest beside it. The model \
            saved is the moving average of the weights.
            """)

    @Option(help: "Training data: shapes, fashion-mnist or a captioned folder.") var data: String = "shapes"
    @Option(name: [.customShort("o"), .long], help: "Output folder, or the model file (NAME.safetensors).")
    var output: String
    @Option(help: "The text model: a sentence-transformers folder or Hugging Face name (default: the shipped MiniLM).")
    var textModel: String?

    @Option(help: "Width.") var dim: Int = 128
    @Option(help: "Blocks.") var depth: Int = 4
    @Option(help: "Attention heads.") var heads: Int = 4
    @Option(help: "MLP hidden width.") var hiddenDim: Int = 512
    @Option(help: "Patch size.") var patchSize: Int = 4

    @Option(help: "Epochs.") var epochs: Int = 10
    @Option(help: "Stop after this many steps instead (the schedule spans them).") var steps: Int?
    @Option(help: "Images per step.") var batchSize: Int = 64
    @Option(help: "Peak learning rate (AdamW).") var learningRate: Float = 5e-4
    @Option(help: "Final learning rate of the cosine decay.") var minimumLearningRate: Float = 1e-5
    @Option(help: "Weight decay.") var weightDecay: Float = 0
    @Option(help: "Warmup steps.") var warmupSteps: Int = 200
    @Option(help: "Clip the global gradient norm (0: off).") var clip: Float = 1
    @Option(help: "Probability of training on the empty caption.") var captionDropout: Float = 0.1
    @Option(help: "Training times: logit-normal or uniform.") var times: String = "logit-normal"
    @Option(help: "Decay of the moving average of the weights that is saved.") var emaDecay: Float = 0.999
    @Option(help: "Seed for initialization, order, noise, times and dropout.") var seed: UInt64 = 0
    @Option(help: "Threads (default: all cores).") var threads: ThreadCount?
    @Option(help: "Euler steps for the epoch sample grids.") var sampleSteps: Int = 30
    @Flag(help: "Continue from the checkpoint with the same settings.") var resume = false
    @Option(help: "Start from this generator's weights (its sizes replace --dim and the others).") var from: String?

    func validate() throws {
        guard epochs > 0, batchSize > 0 else { throw ValidationError("--epochs and --batch-size must be positive") }
        if let steps, steps < 1 { throw ValidationError("--steps must be positive") }
        guard dim > 0, depth > 0, heads > 0, hiddenDim > 0, patchSize > 0, dim % heads == 0 else {
            throw ValidationError(
                "--dim, --depth, --heads, --hidden-dim and --patch-size must be positive, --dim a multiple of --heads")
        }
        guard learningRate > 0, minimumLearningRate >= 0, minimumLearningRate <= learningRate else {
            throw ValidationError("--learning-rate must be positive, --minimum-learning-rate between 0 and it")
        }
        guard weightDecay >= 0, warmupSteps >= 0, clip >= 0 else {
            throw ValidationError("--weight-decay, --warmup-steps and --clip cannot be negative")
        }
        guard (0..<1).contains(captionDropout) else { throw ValidationError("--caption-dropout must be in [0, 1)") }
        guard 0 < emaDecay && emaDecay < 1 else { throw ValidationError("--ema-decay must be in (0, 1)") }
        guard ["logit-normal", "uniform"].contains(times) else {
            throw ValidationError("--times must be logit-normal or uniform")
        }
        guard sampleSteps > 0 else { throw ValidationError("--sample-steps must be positive") }
    }

    func run() throws {
        applyThreads(threads)
        let paths = TrainingOutput(output)
        let textEncoder = try SentenceEncoder.load(folder: try textModel.map(modelPath) ?? defaultTextModelPath())
        let train = try CaptionedImages.named(data)
        guard train.count > 0 else { throw CLIFailure("\(data): no training images") }
        let trainer: GeneratorTrainer
        if resume {
            trainer = try GeneratorTrainer.resume(path: paths.checkpoint, textEncoder: textEncoder, data: train)
            printError("resuming after epoch \(trainer.epoch), step \(trainer.step)", prefix: "note")
        } else {
            let channels = train.images.first?.channels == 1 ? 1 : 3
            let config = FlowTransformerConfig(
                imageSize: train.images.first?.width ?? 32, patchSize: patchSize, channels: channels, dim: dim,
                depth: depth, numHeads: heads, hiddenDim: hiddenDim, contextDim: textEncoder.encoder.config.dim,
                frequencyDim: 128)
            try config.validate()
            var model = try FlowTransformer(RandomParameters(seed: seed), config: config)
            if let from {
                // Copied out of the mapped file: training writes them.
                let start = try CaptionGenerator.load(path: from, textEncoder: textEncoder).model
                model = try FlowTransformer(WeightStore(start.copiedTensors, origin: from), config: start.config)
            }
            let perEpoch = (train.count + batchSize - 1) / batchSize
            let options = GeneratorTrainingOptions(
                epochs: steps.map { ($0 + perEpoch - 1) / perEpoch } ?? epochs, batchSize: batchSize,
                learningRate: learningRate, minimumLearningRate: minimumLearningRate, weightDecay: weightDecay,
                warmupSteps: warmupSteps, gradientClip: clip, captionDropout: captionDropout,
                logitNormalTimes: times == "logit-normal", emaDecay: emaDecay, seed: seed, maxSteps: steps)
            trainer = try GeneratorTrainer(
                generator: CaptionGenerator(model: model, textEncoder: textEncoder), data: train, options: options)
        }
        let options = trainer.options
        let samplesFolder =
            paths.model.hasSuffix("/model.safetensors") ? "\(paths.folder)/samples" : "\(paths.model).samples"
        // Only now that data and models are ready: a failed start leaves nothing behind.
        try FileManager.default.createDirectory(atPath: samplesFolder, withIntermediateDirectories: true)
        defer { fflush(nil) }
        let c = trainer.generator.config
        print(
            "training a \(c.dim)-wide, \(c.depth)-deep flow transformer (patch \(c.patchSize)) on \(train.count) captioned images; seed \(options.seed)"
        )
        let encoding = ProgressBar(total: Set(train.captions + [""]).count, label: "encoding captions")
        var encoded = 0
        trainer.encodeCaptions { done, _ in
            encoding.advance(by: done - encoded)
            encoded = done
        }
        encoding.finish()
        let preview =
            data == "fashion-mnist" ? Self.fashionPreview : Shapes.previewCaptions.seen + Shapes.previewCaptions.heldOut
        while !trainer.isFinished {
            let started = Date()
            let bar = ProgressBar(total: trainer.stepsPerEpoch, label: "epoch \(trainer.epoch + 1)/\(options.epochs)")
            let (loss, rate, images) = try trainingEpoch(finished: trainer.epoch, checkpoint: paths.checkpoint) {
                try trainer.trainEpoch { _, _, loss in
                    bar.advance(by: 1, detail: String(format: "loss %.4f", loss))
                }
            }
            bar.finish()
            let seconds = Date().timeIntervalSince(started)
            let entry = GeneratorEpochRecord(
                epoch: trainer.epoch, step: trainer.step, loss: loss, learningRate: rate, seconds: seconds,
                imagesPerSecond: Double(images) / seconds)
            trainer.record(entry)
            try trainer.saveCheckpoint(path: paths.checkpoint)
            try writeJSONLines(trainer.history, to: paths.log)
            try lineChart([(trainer.history.map(\.loss), (200, 40, 40))]).writePNG(
                path: paths.curves,
                text: [
                    ("Software", "SwiftViT \(swiftViTVersion)"),
                    ("Description", "flow-matching loss (mean squared velocity error) per epoch"),
                ])
            // Four seeds per caption, one row each.
            let seeds: [UInt64] = [1, 2, 3, 4]
            let grid = trainer.result.generate(
                captions: preview.flatMap { caption in seeds.map { _ in caption } },
                seeds: preview.flatMap { _ in seeds }, sampling: .init(steps: sampleSteps, solver: .euler, guidance: 3))
            try Image.tiled(grid, columns: seeds.count, spacing: 2).writePNG(
                path: String(format: "%@/epoch-%03d.png", samplesFolder, trainer.epoch),
                text: [
                    ("Description", "rows: " + preview.joined(separator: " | ")),
                    ("Software", "SwiftViT \(swiftViTVersion)"),
                ])
            print(
                String(
                    format: "epoch %d: loss %.4f, %.0f images/s, %.0f s", trainer.epoch, loss, entry.imagesPerSecond,
                    seconds))
            fflush(nil)
        }
        try trainer.result.save(
            path: paths.model,
            extraMetadata: ["training": try sortedJSON(trainer.history)])
        print("wrote \(paths.model)")
    }

    static let fashionPreview = [
        "a t-shirt", "a pair of trousers", "a pullover", "a dress", "a coat", "a sandal", "a shirt", "a sneaker",
        "a bag", "an ankle boot",
    ]
}

/// Values as JSON lines, rewritten whole (atomically).
func writeJSONLines<T: Encodable>(_ values: [T], to path: String) throws {
    let lines = try values.map(sortedJSON)
    try writeAtomically(Data((lines.joined(separator: "\n") + "\n").utf8), toPath: path)
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate images from captions.",
        discussion: """
            Writes one PNG per caption and seed: -o OUT.png for a single image (or a grid with \
            --grid), -o FOLDER for several (FOLDER/NNNN.png). Each PNG's tEXt chunks hold the \
            caption, seed, steps, sampler, guidance and the model's name and SHA-256, so the \
            image says how to make it again; the same arguments give the same bytes. Image i of \
            caption c uses seed --seed + i. --guidance 1 is the conditional model alone; an \
            empty caption is the unconditional model.
            """)

    @Argument(help: "Captions.") var captions: [String] = []
    @Option(help: "A text file of captions, one per line (empty lines skipped).") var file: String?
    @Option(name: [.customShort("o"), .long], help: "OUT.png or a folder.") var output: String
    @Option(help: "Images per caption.") var count: Int = 1
    @Flag(help: "Write all images as one grid (a row per caption) to OUT.png.") var grid = false
    @Option(help: "Seed of the first image of each caption.") var seed: UInt64 = 0
    @OptionGroup var options: SamplingOptions
    @Option(help: "Images per batch.") var batchSize: Int = 16

    func validate() throws {
        guard count > 0, count <= 10_000 else { throw ValidationError("--count must be in 1...10000") }
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        guard !captions.isEmpty || file != nil else { throw ValidationError("give captions, or --file") }
    }

    func run() throws {
        applyThreads(options.threads)
        var all = captions
        if let file { all += try readCaptions(file) }
        guard !all.isEmpty else { throw CLIFailure("\(file ?? "captions"): no captions") }
        let (generator, modelPath) = try options.loadGenerator()
        let (steps, sampler, guidance) = (options.steps, options.sampler, options.guidance)
        let single = all.count * count == 1
        if grid || single {
            guard output.lowercased().hasSuffix(".png") else {
                throw CLIFailure("\(output): give a .png file for \(grid ? "--grid" : "one image")")
            }
        } else {
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: output, isDirectory: &isFolder), !isFolder.boolValue {
                throw CLIFailure("\(output): exists and is not a folder (several images go into a folder)")
            }
        }
        let digest = try sha256(ofFile: modelPath)
        let modelName = URL(fileURLWithPath: modelPath).lastPathComponent
        let jobs = all.flatMap { caption in (0..<count).map { (caption, seed &+ UInt64($0)) } }
        let sampling = CaptionGenerator.Sampling(
            steps: steps, solver: FlowSolver(rawValue: sampler)!, guidance: guidance)
        let bar = ProgressBar(total: jobs.count, label: "generating")
        var images: [Image] = []
        for start in stride(from: 0, to: jobs.count, by: batchSize) {
            let batch = Array(jobs[start..<min(jobs.count, start + batchSize)])
            images += generator.generate(captions: batch.map(\.0), seeds: batch.map(\.1), sampling: sampling)
            bar.advance(by: batch.count)
        }
        bar.finish()
        func text(_ caption: String, _ seed: UInt64) -> [(key: String, value: String)] {
            [
                ("Caption", caption), ("Seed", "\(seed)"), ("Steps", "\(steps)"), ("Sampler", sampler),
                ("Guidance", "\(guidance)"), ("Model", modelName), ("Model SHA-256", digest),
                ("Software", "SwiftViT \(swiftViTVersion)"),
            ]
        }
        if grid || single {
            let image = single ? images[0] : Image.tiled(images, columns: count, spacing: 2)
            let chunks = single ? text(jobs[0].0, jobs[0].1) : text(all.joined(separator: " | "), seed)
            try image.writePNG(path: output, text: chunks)
            print(output)
            return
        }
        // Written into a staging folder, then renamed (a new folder) or moved in file by file
        // (an existing one, whose files are never replaced): a failed run leaves nothing.
        let names = images.indices.map { String(format: "%04d.png", $0) }
        if FileManager.default.fileExists(atPath: output) {
            if let clash = names.first(where: { FileManager.default.fileExists(atPath: "\(output)/\($0)") }) {
                throw CLIFailure("\(output)/\(clash): exists; choose an empty or new folder")
            }
        }
        try createFolderWhole(output, mergingIntoExisting: true) { staging in
            for (name, (image, job)) in zip(names, zip(images, jobs)) {
                try image.writePNG(path: "\(staging)/\(name)", text: text(job.0, job.1))
            }
        }
        for name in names { print("\(output)/\(name)") }
    }
}

/// Captions from a UTF-8 text file, one per line (LF or CRLF), empty lines skipped.
func readCaptions(_ path: String) throws -> [String] {
    try TextLineReader(path: path).nextLines(upTo: .max).filter { !$0.allSatisfy(\.isWhitespace) }
}

/// The SHA-256 of a file, in lowercase hex.
func sha256(ofFile path: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw CLIFailure("\(path): cannot read the file")
    }
    return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
}

struct EvalGenerator: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generator",
        abstract: "Judge how well a generator's images follow their captions.",
        discussion: """
            shapes: generates --samples images (default 16) for each of 40 captions whose \
            shape/colour pairs were in training and 40 naming the held-out pairs (a fixed \
            list), and judges them with the shipped attribute classifiers \
            (Weights/shapes-judge-*.safetensors): per-attribute accuracy, the rate at which \
            every attribute the caption names is right, and, for attributes a caption leaves \
            open (the background when unnamed), the normalized entropy of the judged values \
            beside the same figure on real images.

            fashion-mnist: generates --samples images (default 100) of each class, captions \
            in the training phrasings, and judges them with the shipped Fashion-MNIST \
            classifier (or --classifier): its accuracy per class, and the Fréchet distance \
            between its pooled features of the generated images and of as many real test \
            images, beside the distance between two such sets of real images (the floor).
            """)

    @OptionGroup var options: SamplingOptions
    @Option(help: "What the generator draws: shapes or fashion-mnist.") var data: String = "shapes"
    @Option(help: "Images per caption (shapes, default 16) or per class (fashion-mnist, default 100).")
    var samples: Int?
    @Option(help: "Folder of the Shapes judge's classifiers (default: the shipped ones).") var judges: String?
    @Option(help: "The Fashion-MNIST classifier that judges (default: the shipped one).") var classifier: String?
    @Option(help: "Output format: text or json.") var format: OutputFormat = .text

    func validate() throws {
        guard ["shapes", "fashion-mnist"].contains(data) else {
            throw ValidationError("--data must be shapes or fashion-mnist")
        }
        if let samples {
            let limit = data == "shapes" ? 1000 : 500
            guard samples > 0, samples <= limit else { throw ValidationError("--samples must be in 1...\(limit)") }
        }
        if data == "shapes" && classifier != nil { throw ValidationError("--classifier is for --data fashion-mnist") }
        if data == "fashion-mnist" && judges != nil { throw ValidationError("--judges is for --data shapes") }
        guard [.text, .json].contains(format) else { throw ValidationError("--format must be text or json") }
    }

    func run() throws {
        applyThreads(options.threads)
        if data == "fashion-mnist" { return try runFashionMNIST() }
        let samples = samples ?? 16
        let judge = try ShapesJudge.load(folder: judges ?? shippedWeightsPath(""))
        let (generator, _) = try options.loadGenerator()
        let sampling = options.sampling
        let bar = ProgressBar(total: 80 * samples, label: "generating")
        var shown = 0
        let score = try judge.score(generator, samples: samples, sampling: sampling) { done, _ in
            bar.advance(by: done - shown)
            shown = done
        }
        bar.finish()
        if format == .json { return try printJSON(score) }
        for (name, set) in [("seen pairs", score.seen), ("held-out pairs", score.heldOut)] {
            print(
                String(
                    format: "%@: every named attribute right %.4f (%d captions, %d images)", name, set.allNamedRight,
                    set.captions, set.images))
            for attribute in ShapesJudge.attributes {
                if let accuracy = set.attributeAccuracy[attribute] {
                    print(
                        "  " + attribute.padding(toLength: 12, withPad: " ", startingAt: 0)
                            + String(format: "%.4f", accuracy))
                }
            }
            for (attribute, entropy) in set.openEntropy.sorted(by: { $0.key < $1.key }) {
                print(
                    String(
                        format: "  %@ diversity (normalized entropy) %.3f, real images %.3f", attribute, entropy,
                        set.realOpenEntropy[attribute] ?? 0))
            }
        }
    }

    func runFashionMNIST() throws {
        let samples = samples ?? 100
        let judge = try FashionMNISTJudge(
            classifier: ImageClassifier.load(path: classifier.map(modelPath) ?? defaultModelPath()))
        let test = try LabeledImages.named("fashion-mnist", test: true)
        let (generator, path) = try options.loadGenerator()
        guard generator.config.imageSize == 32 || generator.config.imageSize == 28 else {
            throw CLIFailure(
                "\(path): draws \(generator.config.imageSize)-pixel images; Fashion-MNIST is 28 (32 padded)")
        }
        let bar = ProgressBar(total: 10 * samples, label: "generating")
        var shown = 0
        let score = try judge.score(generator, samples: samples, sampling: options.sampling, test: test) { done, _ in
            bar.advance(by: done - shown)
            shown = done
        }
        bar.finish()
        if format == .json { return try printJSON(score) }
        print(
            String(
                format: "class accuracy %.4f (%d images; the classifier on as many real test images: %.4f)",
                score.accuracy, 10 * samples, score.realAccuracy))
        for name in LabeledImages.fashionMNISTClasses {
            print(
                "  " + name.padding(toLength: 12, withPad: " ", startingAt: 0)
                    + String(format: "%.4f", score.classAccuracy[name] ?? 0))
        }
        print(
            String(
                format: "Fréchet distance (classifier features) %.3f; real against real %.3f",
                score.frechetDistance, score.realFrechetDistance))
    }

    func printJSON<T: Encodable>(_ value: T) throws { print(try sortedJSON(value)) }
}

/// How images are sampled, and from which generator: shared by `vit generate` and `vit eval generator`.
struct SamplingOptions: ParsableArguments {
    @Option(help: "Sampling steps.") var steps: Int = 30
    @Option(help: "Sampler: euler or heun.") var sampler: String = "euler"
    @Option(help: "Classifier-free guidance scale (1: the conditional model alone).") var guidance: Float = 3
    @Option(help: "The generator (default: the shipped Shapes generator).") var model: String?
    @Option(help: "The text model: a sentence-transformers folder or Hugging Face name (default: the shipped MiniLM).")
    var textModel: String?
    @Option(help: "Threads (default: all cores).") var threads: ThreadCount?

    func validate() throws {
        guard steps > 0, steps <= 10_000 else { throw ValidationError("--steps must be in 1...10000") }
        guard FlowSolver(rawValue: sampler) != nil else { throw ValidationError("--sampler must be euler or heun") }
        guard guidance.isFinite, guidance >= 0, guidance <= 100 else {
            throw ValidationError("--guidance must be in [0, 100]")
        }
    }

    var sampling: CaptionGenerator.Sampling {
        CaptionGenerator.Sampling(steps: steps, solver: FlowSolver(rawValue: sampler)!, guidance: guidance)
    }

    /// The generator and the path it came from, with its text model.
    func loadGenerator() throws -> (CaptionGenerator, String) {
        let path = model ?? shippedWeightsPath(defaultGeneratorFile)
        let textEncoder = try SentenceEncoder.load(folder: try textModel.map(modelPath) ?? defaultTextModelPath())
        let generator = try CaptionGenerator.load(path: path, textEncoder: textEncoder)
        generator.model.markParametersConstant()
        textEncoder.encoder.markParametersConstant()
        return (generator, path)
    }
}
