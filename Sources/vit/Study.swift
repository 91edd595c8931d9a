import ArgumentParser
import Foundation
import ViTData
import ViTTensor
import ViTText
import ViTTraining
import ViTVision

struct Study: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run studies of how transformers transfer to vision.", subcommands: [StudyTransfer.self])
}

struct StudyTransfer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transfer",
        abstract: "Do transformer blocks pretrained on text (or on other images) transfer to an image task?",
        discussion: """
            Trains one ViT classifier per backbone, variant (blocks frozen or fully trained), \
            learning rate and seed, each with a new patch-embedding input layer and class head \
            (Lu et al. 2021), and reports each arm at its best learning rate as chosen on \
            held-out training images (Rothermel et al. 2021). Backbones: minilm \
            (all-MiniLM-L6-v2 as pretrained on text; Weights/fetch-minilm.sh), minilm-random \
            (the same architecture, random), vit:MODEL (a ViT classifier trained on another \
            task: a file, a Hugging Face name (fetched when absent), or a name in Weights/ such as \
            shapes-judge-shape), scratch (a pre-norm ViT of MiniLM's sizes, random). \
            OUTPUT gets study.json, runs/RUN.jsonl (one per run, written when the run \
            finishes), results.csv, results.md, accuracy-vs-learning-rate.png, \
            learning-curves.png and models/ARM.safetensors (each arm's seed-0 model at its \
            best learning rate). Run the same command again to continue a stopped study: \
            finished runs are kept, and other --learning-rates or --seeds widen the study in place. --quick is a small study for checking a setup.
            """)

    @Option(help: "The image task: fashion-mnist, mnist, shapes:ATTRIBUTE, an IDX folder or an ImageFolder.")
    var task: String = "fashion-mnist"
    @Option(help: "Comma-separated backbones: minilm, minilm-random, vit:MODEL, scratch.")
    var backbones: String = "minilm,minilm-random,vit:shapes-judge-shape,scratch"
    @Option(help: "Comma-separated groups the frozen arms keep fixed: attention, mlp, norms, position, input, output.")
    var freeze: String = "attention,mlp"
    @Option(help: "Comma-separated learning rates swept for every arm (default 1e-4,3e-4,1e-3,3e-3).")
    var learningRates: String?
    @Option(help: "Seeds per learning rate (0, 1, ...; default 3).") var seeds: Int?
    @Option(help: "Optimizer steps per run (default 64).") var steps: Int?
    @Option(help: "Epochs over the training subset per run, instead of --steps.") var epochs: Int?
    @Option(help: "Training images per run (a fixed random subset; default 2048).") var trainSubset: Int?
    @Option(help: "Other training images for choosing learning rates (default 500).") var validationSize: Int?
    @Option(help: "Test images scored (a fixed random subset; default 1000).") var testSubset: Int?
    @Option(help: "Images per step (default 32).") var batchSize: Int?
    @Option(help: "Patch size (default: a quarter of the image side, 16 patches).") var patchSize: Int?
    @Option(help: "The text model: a folder or a Hugging Face name (default: Weights/all-MiniLM-L6-v2).") var textModel:
        String?
    @Flag(help: "A small study to check a setup: 128 training images, 4 steps of 8, 2 learning rates, 1 seed.")
    var quick = false
    @Option(name: [.customShort("o"), .long], help: "The study folder (created, or continued).") var output: String
    @Option(help: "Threads (default: all cores).") var threads: ThreadCount?

    /// Parsed from the comma-separated options in `validate`.
    static func list(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    var rates: [Float] {
        let text = learningRates ?? (quick ? "1e-3,3e-3" : "1e-4,3e-4,1e-3,3e-3")
        return Self.list(text).compactMap(Float.init)
    }

    func validate() throws {
        let backboneNames = Self.list(backbones)
        guard !backboneNames.isEmpty else { throw ValidationError("--backbones names no backbone") }
        for name in backboneNames
        where !["minilm", "minilm-random", "scratch"].contains(name) && !(name.hasPrefix("vit:") && name.count > 4) {
            throw ValidationError("unknown backbone '\(name)' (minilm, minilm-random, vit:MODEL, scratch)")
        }
        for group in Self.list(freeze) where TransferStudy.freezeGroups[group] == nil {
            throw ValidationError(
                "unknown --freeze group '\(group)' (\(TransferStudy.freezeGroups.keys.sorted().joined(separator: ", ")))"
            )
        }
        if let learningRates {
            let items = Self.list(learningRates)
            guard !items.isEmpty else { throw ValidationError("--learning-rates names no learning rate") }
            for item in items {
                guard let rate = Float(item), rate.isFinite, rate > 0, rate < 10 else {
                    throw ValidationError("--learning-rates: '\(item)' is not a learning rate (a number in (0, 10))")
                }
            }
        }
        let counts: [(String, Int?)] = [
            ("--seeds", seeds), ("--steps", steps), ("--epochs", epochs), ("--train-subset", trainSubset),
            ("--validation-size", validationSize), ("--test-subset", testSubset), ("--batch-size", batchSize),
            ("--patch-size", patchSize),
        ]
        for (name, value) in counts where value.map({ $0 < 1 }) ?? false {
            throw ValidationError("\(name) must be positive")
        }
        if steps != nil && epochs != nil { throw ValidationError("give --steps or --epochs, not both") }
        if let seeds, seeds > 100 { throw ValidationError("--seeds must be at most 100") }
    }

    func run() throws {
        applyThreads(threads)
        let started = Date()
        let subset = trainSubset ?? (quick ? 128 : 2048)
        let batch = batchSize ?? (quick ? 8 : 32)
        let stepCount = steps ?? epochs.map { $0 * ((subset + batch - 1) / batch) } ?? (quick ? 4 : 64)
        let plan = TransferStudyPlan(
            task: task, backbones: Self.list(backbones), frozen: Self.list(freeze), learningRates: rates,
            seeds: seeds ?? (quick ? 1 : 3), steps: stepCount, batchSize: batch, trainSubset: subset,
            validationSize: validationSize ?? (quick ? 64 : 500), testSubset: testSubset ?? (quick ? 128 : 1000),
            patchSize: try patchSize ?? defaultPatchSize(), logEvery: max(1, stepCount / 25))
        let study = try TransferStudy(plan: plan, folder: output, sources: try backboneSources(plan.backbones))
        try study.prepareFolder()
        let runs = plan.runs
        let done = runs.filter { study.records[$0.id] != nil }.count
        defer { fflush(nil) }
        let (train, validation, test) = study.imageCounts
        print(
            "transfer study on \(task): \(plan.arms.count) arms x \(plan.learningRates.count) learning rates x \(plan.seeds) seeds = \(runs.count) runs of \(plan.steps) steps; \(train) training, \(validation) validation and \(test) test images, patch \(plan.patchSize) (\(study.patchCount) patches)"
        )
        if done > 0 { print("\(done) of \(runs.count) runs already finished in \(output)") }
        let command = (["vit"] + CommandLine.arguments.dropFirst()).map(shellQuoted).joined(separator: " ")
        let machine = "\(Machine.cpuName), \(currentThreadCount) thread\(currentThreadCount == 1 ? "" : "s")"
        for (index, run) in runs.enumerated() where study.records[run.id] == nil {
            let label =
                "[\(index + 1)/\(runs.count)] \(run.arm.name), lr \(learningRateText(run.learningRate)), seed \(run.seed)"
            let bar = ProgressBar(total: plan.steps, label: label)
            let record = try study.run(run) { _, _ in bar.advance(by: 1) }
            bar.finish()
            print(
                String(
                    format: "%@: validation %.1f%%, test %.1f%%, %.0f s%@", label, record.validationAccuracy * 100,
                    record.testAccuracy * 100, record.seconds, record.diverged ? " (diverged)" : ""))
            fflush(nil)
            try study.writeReport(command: command, machine: machine, wallSeconds: nil)
        }
        try study.writeReport(
            command: command, machine: machine, wallSeconds: done == 0 ? Date().timeIntervalSince(started) : nil)
        print("wrote \(output)/results.md")
    }

    /// A quarter of the task's image side, when it divides the side.
    func defaultPatchSize() throws -> Int {
        let sample = try LabeledImages.named(task, test: true)
        guard let first = sample.images.first else { throw CLIFailure("\(task): no images in the test split") }
        let side = max(first.width, first.height)
        guard side % 4 == 0 else {
            throw CLIFailure("\(task): image side \(side) is not a multiple of 4; give --patch-size")
        }
        return side / 4
    }

    /// Loads what each backbone needs: the text model (for minilm, minilm-random and
    /// scratch, which take its sizes) and the vit:MODEL classifiers.
    func backboneSources(_ names: [String]) throws -> [String: StudyBackboneSource] {
        var sources: [String: StudyBackboneSource] = [:]
        var text: SentenceEncoder?
        func textEncoder() throws -> SentenceEncoder {
            if let text { return text }
            let folder = try textModel.map(modelPath) ?? defaultTextModelPath()
            guard FileManager.default.fileExists(atPath: folder) else {
                throw CLIFailure("\(folder): no such folder (Weights/fetch-minilm.sh fetches all-MiniLM-L6-v2)")
            }
            let loaded = try SentenceEncoder.load(folder: folder)
            text = loaded
            return loaded
        }
        for name in names {
            switch name {
            case "minilm":
                let encoder = try textEncoder()
                sources[name] = .pretrainedText(encoder.encoder, clsTokenID: encoder.tokenizer.classID)
            case "minilm-random": sources[name] = .randomText(try textEncoder().encoder.config)
            case "scratch": sources[name] = .scratch(try textEncoder().encoder.config)
            default:
                let model = String(name.dropFirst("vit:".count))
                let shipped = shippedWeightsPath("\(model).safetensors")
                let path =
                    FileManager.default.fileExists(atPath: model) || !FileManager.default.fileExists(atPath: shipped)
                    ? try modelPath(model) : shipped
                sources[name] = .vision(try ImageClassifier.load(path: path))
            }
        }
        return sources
    }
}

/// An argument as a shell reads it back: as it is when plain, else in single quotes.
func shellQuoted(_ argument: String) -> String {
    let plain = argument.allSatisfy { $0.isLetter || $0.isNumber || "-_.,:/=@+".contains($0) }
    return plain && !argument.isEmpty ? argument : "'" + argument.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
}
