import ArgumentParser
import Foundation
import ViTCore
import ViTData
import ViTImage
import ViTTensor
import ViTTraining
import ViTVision

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train models.", subcommands: [TrainClassifier.self, TrainGenerator.self])
}

struct TrainClassifier: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classifier",
        abstract: "Train a Vision Transformer classifier.",
        discussion: """
            DATA is fashion-mnist, shapes:ATTRIBUTE (the Shapes set labeled by shape, color, \
            size, position or background: 20,000 training and 2,000 test images), a folder of \
            MNIST-format IDX files (train-/t10k-, gzip or not), or an ImageFolder with train/ \
            and test/ subfolders of one folder per class. \
            OUTPUT is a folder: OUTPUT/checkpoint.safetensors after every epoch (model and \
            optimizer, written atomically), OUTPUT/model.safetensors at the end, \
            OUTPUT/log.jsonl and OUTPUT/curves.png. An OUTPUT ending in .safetensors is the \
            model file instead, with NAME.checkpoint.safetensors, NAME.log.jsonl and \
            NAME.curves.png beside it. --resume continues from the checkpoint with the same \
            settings.
            """)

    @Option(help: "Training data.")
    var data: String = "fashion-mnist"

    @Option(name: [.customShort("o"), .long], help: "Output folder, or the model file (NAME.safetensors).")
    var output: String

    @Option(name: [.long, .customLong("config")], help: "Size preset: micro, tiny or small.")
    var preset: String = "micro"

    @Option(help: "Width (overrides the preset).") var dim: Int?
    @Option(help: "Blocks (overrides the preset).") var depth: Int?
    @Option(help: "Attention heads (overrides the preset).") var heads: Int?
    @Option(help: "MLP hidden width (overrides the preset).") var hiddenDim: Int?
    @Option(help: "Patch size.") var patchSize: Int = 4

    @Option(help: "Epochs.") var epochs: Int = 10
    @Option(help: "Stop after this many steps instead (the schedule spans them).") var steps: Int?
    @Option(
        help:
            "Start from this model (any format, or a Hugging Face name (from its cache, fetched when absent)); a new head unless it has DATA's classes."
    ) var from: String?
    @Option(help: "Images per step.") var batchSize: Int = 128
    @Option(help: "Peak learning rate (AdamW).") var learningRate: Float = 1e-3
    @Option(help: "Final learning rate of the cosine decay.") var minimumLearningRate: Float = 1e-5
    @Option(help: "Weight decay.") var weightDecay: Float = 0.05
    @Option(help: "Warmup epochs.") var warmupEpochs: Int = 1
    @Option(help: "Label smoothing.") var labelSmoothing: Float = 0.1
    @Option(help: "Clip the global gradient norm (0: off).") var clip: Float = 1
    @Option(help: "Random crop padding in pixels (0: off).") var cropPadding: Int = 2
    @Flag(help: "Random horizontal flips.") var flip = false
    @Option(
        help: "Keep a moving average of the weights with this decay (as timm's --model-ema); it is evaluated and saved."
    )
    var emaDecay: Float?
    @Option(help: "Random erasing probability.") var randomErasing: Float = 0
    @Option(
        help: "Parameter groups to freeze: \(VisionTransformer.parameterGroups.map(\.name).joined(separator: ", ")).")
    var freeze: [String] = []
    @Option(help: "Seed for initialization, shuffling and augmentation.") var seed: UInt64 = 0
    @Option(help: "Threads (default: all cores).") var threads: ThreadCount?
    @Flag(help: "Continue from OUTPUT/checkpoint.safetensors.") var resume = false

    func validate() throws {
        guard ["micro", "tiny", "small"].contains(preset) else { throw ValidationError("unknown preset '\(preset)'") }
        guard epochs > 0, batchSize > 0 else { throw ValidationError("--epochs and --batch-size must be positive") }
        if let steps, steps < 1 { throw ValidationError("--steps must be positive") }
        guard patchSize > 0 else { throw ValidationError("--patch-size must be positive") }
        guard learningRate > 0, minimumLearningRate >= 0, minimumLearningRate <= learningRate else {
            throw ValidationError("--learning-rate must be positive, --minimum-learning-rate between 0 and it")
        }
        guard weightDecay >= 0, warmupEpochs >= 0, clip >= 0, cropPadding >= 0 else {
            throw ValidationError("--weight-decay, --warmup-epochs, --clip and --crop-padding cannot be negative")
        }
        guard (0..<1).contains(labelSmoothing) else { throw ValidationError("--label-smoothing must be in [0, 1)") }
        guard (0...1).contains(randomErasing) else { throw ValidationError("--random-erasing must be in [0, 1]") }
        if let emaDecay, !(0 < emaDecay && emaDecay < 1) { throw ValidationError("--ema-decay must be in (0, 1)") }
        if flip && data == "shapes:position" {
            throw ValidationError("--flip would swap left and right and so change shapes:position labels")
        }
        for group in freeze where !VisionTransformer.parameterGroups.contains(where: { $0.name == group }) {
            throw ValidationError("unknown --freeze group '\(group)'")
        }
    }

    /// (dim, depth, heads, hidden) of the presets.
    var sizes: (Int, Int, Int, Int) {
        let base = ["micro": (64, 4, 4, 128), "tiny": (192, 12, 3, 768), "small": (384, 12, 6, 1536)][preset]!
        return (dim ?? base.0, depth ?? base.1, heads ?? base.2, hiddenDim ?? base.3)
    }

    func run() throws {
        applyThreads(threads)
        let paths = TrainingOutput(output)
        let checkpoint = paths.checkpoint
        let train = try LabeledImages.named(data, test: false), test = try LabeledImages.named(data, test: true)
        guard train.count > 0 else { throw CLIFailure("\(data): no training images") }
        let trainer: ClassifierTrainer
        if resume {
            trainer = try ClassifierTrainer.resume(path: checkpoint)
            guard trainer.classifier.labels == train.classNames else {
                throw CLIFailure(
                    "\(checkpoint): trained on \(classList(trainer.classifier.labels)), but \(data) has \(classList(train.classNames))"
                )
            }
            printError("resuming after epoch \(trainer.epoch), step \(trainer.step)", prefix: "note")
        } else {
            let size = train.images.first.map { max($0.width, $0.height) } ?? 28
            let classifier: ImageClassifier
            if let from {
                // The same classes at the same size continue training as they are; others
                // get a new head (and resampled position embeddings).
                let start = try ImageClassifier.load(path: modelPath(from))
                classifier =
                    start.labels == train.classNames && start.model.config.imageSize == size
                    ? start.withCopiedWeights()
                    : try start.withNewHead(labels: train.classNames, imageSize: size, seed: seed)
            } else {
                let (d, depth, h, hidden) = sizes
                let config = ViTConfig(
                    imageSize: size, patchSize: patchSize, dim: d, depth: depth, numHeads: h, hiddenDim: hidden,
                    numClasses: train.classNames.count, layerNormEps: 1e-6)
                try config.validate()
                let model = try VisionTransformer(RandomParameters(seed: seed), config: config)
                classifier = ImageClassifier(
                    model: model, labels: train.classNames, profile: .forTraining(on: data, size: size),
                    format: .swiftViT, path: checkpoint)
            }
            let stepsPerEpoch = (train.count + batchSize - 1) / batchSize
            let options = TrainingOptions(
                epochs: steps.map { ($0 + stepsPerEpoch - 1) / stepsPerEpoch } ?? epochs, batchSize: batchSize,
                learningRate: learningRate, minimumLearningRate: minimumLearningRate, weightDecay: weightDecay,
                warmupEpochs: warmupEpochs, labelSmoothing: labelSmoothing, gradientClip: clip, seed: seed,
                augmentation: Augmentation(
                    cropPadding: cropPadding, horizontalFlip: flip, erasingProbability: randomErasing),
                frozen: freeze, maxSteps: steps, emaDecay: emaDecay)
            trainer = ClassifierTrainer(classifier: classifier, options: options)
        }
        let options = trainer.options
        // Only now that data and model are ready: a failed start leaves nothing behind.
        try FileManager.default.createDirectory(atPath: paths.folder, withIntermediateDirectories: true)
        defer { fflush(nil) }
        print(
            "training \(trainer.classifier.model.config.dim)-wide, \(trainer.classifier.model.config.depth)-deep ViT on \(train.count) images, testing on \(test.count); seed \(options.seed)"
        )
        let batches = try BatchMaker(
            data: train, profile: trainer.classifier.profile, augmentation: options.augmentation, seed: options.seed
        )
        while !trainer.isFinished {
            let started = Date()
            let bar = ProgressBar(
                total: (train.count + options.batchSize - 1) / options.batchSize,
                label: "epoch \(trainer.epoch + 1)/\(options.epochs)")
            let (loss, accuracy, rate, images) = try trainingEpoch(
                finished: trainer.epoch, checkpoint: paths.checkpoint
            ) {
                try trainer.trainEpoch(batches) { _, _, loss in
                    bar.advance(by: 1, detail: String(format: "loss %.4f", loss))
                }
            }
            bar.finish()
            let seconds = Date().timeIntervalSince(started)
            let evaluation = try evaluate(trainer.result, on: test)
            let entry = EpochRecord(
                epoch: trainer.epoch, step: trainer.step, trainLoss: loss, trainAccuracy: accuracy,
                testAccuracy: evaluation.accuracy, learningRate: rate, seconds: seconds,
                imagesPerSecond: Double(images) / seconds)
            trainer.record(entry)
            try trainer.saveCheckpoint(path: checkpoint)
            try writeJSONLines(trainer.history, to: paths.log)
            try trainingCurves(trainer.history).writePNG(
                path: paths.curves,
                text: [
                    ("Software", "SwiftViT \(swiftViTVersion)"),
                    (
                        "Description",
                        "left: training loss (red) per epoch; right: accuracy per epoch, training (blue) and test (green)"
                    ),
                ])
            print(
                String(
                    format: "epoch %d: loss %.4f, train accuracy %.4f, test accuracy %.4f, %.0f images/s, %.0f s",
                    trainer.epoch, loss, accuracy, evaluation.accuracy, entry.imagesPerSecond, seconds))
            fflush(nil)
        }
        try trainer.result.save(
            path: paths.model,
            extraMetadata: ["training": try sortedJSON(trainer.history)])
        print("wrote \(paths.model)")
    }
}

/// Where a training run writes: inside a folder, or beside a model file NAME.safetensors.
struct TrainingOutput {
    let folder, model, checkpoint, log, curves: String

    init(_ output: String) {
        if output.hasSuffix(".safetensors") {
            let stem = String(output.dropLast(".safetensors".count))
            let parent = (output as NSString).deletingLastPathComponent
            folder = parent.isEmpty ? "." : parent
            (model, checkpoint) = (output, "\(stem).checkpoint.safetensors")
            (log, curves) = ("\(stem).log.jsonl", "\(stem).curves.png")
        } else {
            folder = output
            (model, checkpoint) = ("\(output)/model.safetensors", "\(output)/checkpoint.safetensors")
            (log, curves) = ("\(output)/log.jsonl", "\(output)/curves.png")
        }
    }
}

/// "N classes (a, b, c)", with at most four names.
func classList(_ names: [String]) -> String {
    let shown = names.count <= 4 ? names : names.prefix(3) + ["..."]
    return "\(names.count) classes (\(shown.joined(separator: ", ")))"
}
