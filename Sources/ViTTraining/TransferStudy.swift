import Foundation
import ViTCheckpoint
import ViTCore
import ViTData
import ViTImage
import ViTTensor
import ViTText
import ViTVision

// The transfer study (docs/ARCHITECTURE.md, "The transfer study"): do transformer blocks
// pretrained on text carry over to images? Every run is a VisionTransformer whose blocks
// come from a backbone, with a trained patch-embedding input layer and class head, as in
// Lu et al. 2021 ("Pretrained Transformers as Universal Computation Engines"), swept over
// learning rates and seeds as Rothermel et al. 2021 ask.

/// The settings of a transfer study; a study folder holds one (study.json), and a resumed
/// study must have the same, but for the learning rates and seeds (a wider sweep keeps the
/// runs it shares with the narrower one).
public struct TransferStudyPlan: Codable, Equatable, Sendable {
    /// The data set, as `vit train classifier --data` names it.
    public var task: String
    /// Backbones as the command line names them: minilm, minilm-random, vit:MODEL, scratch.
    public var backbones: [String]
    /// Groups (`TransferStudy.freezeGroups`) that the frozen variant of every arm holds fixed.
    public var frozen: [String]
    public var learningRates: [Float]
    public var seeds: Int
    /// Optimizer steps per run.
    public var steps: Int
    public var batchSize: Int
    /// Training images used (a fixed random subset of the training split).
    public var trainSubset: Int
    /// Training images held out to choose each arm's learning rate (disjoint from the subset).
    public var validationSize: Int
    /// Test images scored (a fixed random subset of the test split).
    public var testSubset: Int
    public var patchSize: Int
    /// Steps per point of a run's learning curve (the mean training loss over them).
    public var logEvery: Int

    public init(
        task: String, backbones: [String], frozen: [String], learningRates: [Float], seeds: Int, steps: Int,
        batchSize: Int, trainSubset: Int, validationSize: Int, testSubset: Int, patchSize: Int, logEvery: Int
    ) {
        self.task = task
        self.backbones = backbones
        self.frozen = frozen
        self.learningRates = learningRates
        self.seeds = seeds
        self.steps = steps
        self.batchSize = batchSize
        self.trainSubset = trainSubset
        self.validationSize = validationSize
        self.testSubset = testSubset
        self.patchSize = patchSize
        self.logEvery = logEvery
    }

    /// What is wrong with the settings, or nil.
    public var problem: String? {
        let checks: [(Bool, String)] = [
            (!backbones.isEmpty, "no backbones"),
            (Set(backbones).count == backbones.count, "a backbone is named twice"),
            (!learningRates.isEmpty, "no learning rates"),
            (learningRates.allSatisfy { $0.isFinite && $0 > 0 }, "learning rates must be positive"),
            (Set(learningRates).count == learningRates.count, "a learning rate is named twice"),
            (frozen.allSatisfy { TransferStudy.freezeGroups[$0] != nil }, "unknown freeze group in \(frozen)"),
            ((1...100).contains(seeds), "seeds must be in 1...100"),
            ((1...10_000_000).contains(steps), "steps must be in 1...10000000"),
            ((1...4096).contains(batchSize), "batch size must be in 1...4096"),
            (trainSubset > 0 && validationSize > 0 && testSubset > 0, "subset sizes must be positive"),
            (patchSize > 0, "patch size must be positive"),
            (logEvery > 0, "log interval must be positive"),
        ]
        return checks.first { !$0.0 }?.1
    }

    /// Whether `other` is this plan with other learning rates or seeds only: a study can be
    /// widened in place, its finished runs kept.
    public func differsOnlyInSweep(from other: TransferStudyPlan) -> Bool {
        var widened = other
        (widened.learningRates, widened.seeds) = (learningRates, seeds)
        return widened == self
    }

    /// The plan's arms: every backbone frozen, then fully trained.
    public var arms: [StudyArm] {
        backbones.flatMap { [StudyArm(backbone: $0, frozen: true), StudyArm(backbone: $0, frozen: false)] }
    }

    /// Every run, seed by seed (so that a study stopped early has every arm at some seed),
    /// then arm, then learning rate.
    public var runs: [StudyRun] {
        (0..<seeds).flatMap { seed in
            arms.flatMap { arm in learningRates.map { StudyRun(arm: arm, learningRate: $0, seed: seed) } }
        }
    }
}

/// A backbone and whether its blocks are frozen.
public struct StudyArm: Hashable, Codable, Sendable {
    public var backbone: String
    public var frozen: Bool

    public init(backbone: String, frozen: Bool) {
        self.backbone = backbone
        self.frozen = frozen
    }

    /// "minilm frozen", "scratch full".
    public var name: String { "\(backbone) \(frozen ? "frozen" : "full")" }

    /// The name in file names: "minilm-frozen", "vit-shapes-judge-shape-full".
    public var slug: String {
        let safe = String(backbone.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "-" })
        return "\(safe)-\(frozen ? "frozen" : "full")"
    }
}

/// One training run of a study.
public struct StudyRun: Hashable, Sendable {
    public var arm: StudyArm
    public var learningRate: Float
    public var seed: Int

    public init(arm: StudyArm, learningRate: Float, seed: Int) {
        self.arm = arm
        self.learningRate = learningRate
        self.seed = seed
    }

    /// The run's file name stem: "minilm-frozen-lr0.001-seed0".
    public var id: String { "\(arm.slug)-lr\(learningRate)-seed\(seed)" }
}

/// What a run measured.
public struct StudyRunRecord: Codable, Equatable, Sendable {
    public var backbone: String
    public var frozen: Bool
    public var learningRate: Float
    public var seed: Int
    public var validationAccuracy: Float
    public var testAccuracy: Float
    /// Mean training loss over the last `logEvery` steps.
    public var finalLoss: Float
    /// Whether a step's loss was not finite; training stopped there and the model as it
    /// stood was scored.
    public var diverged: Bool
    public var steps: Int
    public var trainableParameters: Int
    public var parameters: Int
    public var seconds: Double
    /// Mean training loss of each `logEvery` steps.
    public var curve: [Float]

    public var arm: StudyArm { StudyArm(backbone: backbone, frozen: frozen) }
}

/// A problem with a study's settings or folder; one line.
public struct StudyError: ReportableError {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Where a backbone's blocks come from.
public enum StudyBackboneSource {
    /// A BERT-style text encoder as pretrained (its post-norm blocks and embedding norm).
    case pretrainedText(TextEncoder, clsTokenID: Int)
    /// The text encoder's architecture, randomly initialized.
    case randomText(TextEncoderConfig)
    /// A pre-norm ViT of the text encoder's sizes, randomly initialized.
    case scratch(TextEncoderConfig)
    /// A ViT trained on another image task.
    case vision(ImageClassifier)
}

/// Runs a transfer study's training runs, keeps their logs, and writes its report.
public final class TransferStudy {
    /// The groups `--freeze` takes, as `VisionTransformer.parameterGroups` names them: the
    /// knobs of Lu et al.'s code (freeze_attn, freeze_ff, freeze_ln, freeze_pos, freeze_in,
    /// freeze_out).
    public static let freezeGroups: [String: String] = [
        "attention": "attention", "mlp": "mlp", "norms": "norms", "position": "position-embedding",
        "input": "patch-embedding", "output": "head",
    ]

    public let plan: TransferStudyPlan
    public let folder: String
    let sources: [String: StudyBackboneSource]
    let train: LabeledImages, validation: LabeledImages, test: LabeledImages
    let profile: PreprocessProfile
    let imageSize: Int
    /// Finished runs by id, read from the folder and added as runs finish.
    public private(set) var records: [String: StudyRunRecord] = [:]

    /// The seed of the subsets: fixed, so that every run of every study of a task sees the
    /// same images.
    static let subsetSeed: UInt64 = 0x5EED_5EED

    /// Reads the task's data and checks the plan against the folder: a folder that holds a
    /// study with other settings is refused; its finished runs are read back.
    public init(
        plan: TransferStudyPlan, folder: String, sources: [String: StudyBackboneSource]
    ) throws {
        if let problem = plan.problem { throw StudyError("study settings: \(problem)") }
        for backbone in plan.backbones where sources[backbone] == nil {
            throw StudyError("backbone '\(backbone)': no source given")
        }
        self.plan = plan
        self.folder = folder
        self.sources = sources
        let fullTrain = try LabeledImages.named(plan.task, test: false)
        let fullTest = try LabeledImages.named(plan.task, test: true)
        guard let first = fullTrain.images.first, !fullTest.images.isEmpty else {
            throw StudyError("\(plan.task): no images")
        }
        guard plan.trainSubset + plan.validationSize <= fullTrain.count else {
            throw StudyError(
                "\(plan.task): \(fullTrain.count) training images, fewer than the subset \(plan.trainSubset) and validation \(plan.validationSize)"
            )
        }
        imageSize = max(first.width, first.height)
        guard imageSize % plan.patchSize == 0 else {
            throw StudyError("\(plan.task): image side \(imageSize) is not a multiple of patch size \(plan.patchSize)")
        }
        profile = PreprocessProfile.forTraining(on: plan.task, size: imageSize)
        let order = shuffledIndices(fullTrain.count, seed: Self.subsetSeed)
        train = fullTrain.subset(Array(order[0..<plan.trainSubset]))
        validation = fullTrain.subset(Array(order[plan.trainSubset..<(plan.trainSubset + plan.validationSize)]))
        let testOrder = shuffledIndices(fullTest.count, seed: Self.subsetSeed + 1)
        test = fullTest.subset(Array(testOrder.prefix(plan.testSubset)))
        try readFolder()
    }

    var planPath: String { "\(folder)/study.json" }
    func logPath(_ run: StudyRun) -> String { "\(folder)/runs/\(run.id).jsonl" }
    /// The model of an arm's best run at seed 0 so far (by validation accuracy).
    public func modelPath(_ arm: StudyArm) -> String { "\(folder)/models/\(arm.slug).safetensors" }

    /// Patch tokens per image.
    public var patchCount: Int { (imageSize / plan.patchSize) * (imageSize / plan.patchSize) }

    /// The training, validation and test images counted.
    public var imageCounts: (train: Int, validation: Int, test: Int) { (train.count, validation.count, test.count) }

    func readFolder() throws {
        let manager = FileManager.default
        if let data = manager.contents(atPath: planPath) {
            guard let saved = try? JSONDecoder().decode(TransferStudyPlan.self, from: data) else {
                throw StudyError("\(planPath): not a study plan")
            }
            guard saved.differsOnlyInSweep(from: plan) else {
                throw StudyError(
                    "\(folder) holds a study with other settings (\(planPath)); give another folder, or the same settings with other learning rates or seeds"
                )
            }
        }
        for run in plan.runs {
            guard let text = manager.contents(atPath: logPath(run)) else { continue }
            let lines = String(decoding: text, as: UTF8.self).split(separator: "\n")
            guard let last = lines.last,
                let result = try? ResultLine.decoder().decode(ResultLine.self, from: Data(last.utf8)).result
            else { throw StudyError("\(logPath(run)): not a finished run's log") }
            records[run.id] = result
        }
    }

    /// Writes study.json (atomically) and creates runs/ and models/.
    public func prepareFolder() throws {
        let manager = FileManager.default
        for sub in ["runs", "models"] {
            try manager.createDirectory(atPath: "\(folder)/\(sub)", withIntermediateDirectories: true)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try writeAtomically(try encoder.encode(plan), toPath: planPath)
    }

    /// The model a run starts from: the backbone's blocks (and what goes with them), a new
    /// patch embedding and head, all parts the backbone does not give drawn from `seed`.
    public func startingModel(backbone: String, seed: UInt64) throws -> VisionTransformer {
        let (size, p, k) = (imageSize, plan.patchSize, train.classNames.count)
        func textConfig(_ t: TextEncoderConfig, placement: NormPlacement, eps: Float) -> ViTConfig {
            var c = ViTConfig(
                imageSize: size, patchSize: p, dim: t.dim, depth: t.depth, numHeads: t.numHeads, hiddenDim: t.hiddenDim,
                numClasses: k, layerNormEps: eps, activation: t.activation)
            c.normPlacement = placement
            c.embeddingNorm = placement == .postNorm ? true : nil
            return c
        }
        var tensors: [String: Tensor] = [:]
        let config: ViTConfig
        switch sources[backbone]! {
        case .pretrainedText(let encoder, let clsTokenID):
            let t = encoder.config
            config = textConfig(t, placement: .postNorm, eps: t.layerNormEps)
            guard config.numPatches + 1 <= t.maxLength else {
                throw StudyError(
                    "\(backbone): \(config.numPatches + 1) tokens, more than the text model's \(t.maxLength) positions")
            }
            tensors = textBackboneTensors(encoder, tokens: config.numPatches + 1, clsTokenID: clsTokenID)
        case .randomText(let t):
            config = textConfig(t, placement: .postNorm, eps: t.layerNormEps)
        case .scratch(let t):
            config = textConfig(t, placement: .preNorm, eps: 1e-6)
        case .vision(let classifier):
            var c = classifier.model.config
            (c.imageSize, c.patchSize, c.numClasses) = (size, p, k)
            config = c
            let model = classifier.model
            for (name, tensor) in model.namedTensors where !name.hasPrefix("head.") && name != "pos_embed" {
                tensors[name] = tensor.copy()
            }
            if model.patchEmbed.weight.shape != [c.dim, c.inChannels, p, p] {
                tensors["patch_embed.proj.weight"] = nil
                tensors["patch_embed.proj.bias"] = nil
            }
            tensors["pos_embed"] = model.positionEmbedding(gridHeight: size / p, gridWidth: size / p).value.copy()
        }
        try config.validate()
        let source = StartingWeights(tensors, origin: backbone, seed: seed)
        let model = try VisionTransformer(source, config: config)
        try source.finish()
        return model
    }

    /// A text encoder's weights under ViT keys: its blocks as they are, its embedding norm
    /// as `norm_pre`, its first position embeddings (plus the token-type 0 embedding) as the
    /// position embedding, and its [CLS] word embedding as the class token.
    func textBackboneTensors(_ encoder: TextEncoder, tokens n: Int, clsTokenID: Int) -> [String: Tensor] {
        let d = encoder.config.dim
        var tensors: [String: Tensor] = [:]
        for (name, tensor) in encoder.namedTensors where name.hasPrefix("blocks.") { tensors[name] = tensor.copy() }
        tensors["norm_pre.weight"] = encoder.embedNorm.weight.value.copy()
        tensors["norm_pre.bias"] = encoder.embedNorm.bias.value.copy()
        let positions = Tensor(shape: [1, n, d])
        let (table, type0) = (encoder.posEmbed.value.data, encoder.typeEmbed.value.data)
        for i in 0..<(n * d) { positions.data[i] = table[i] + type0[i % d] }
        tensors["pos_embed"] = positions
        let cls = Tensor(shape: [1, 1, d])
        cls.data.update(from: encoder.wordEmbed.value.data + clsTokenID * d, count: d)
        tensors["cls_token"] = cls
        return tensors
    }

    /// Trains and scores one run, writes its log (runs/ID.jsonl, the result last) and, for
    /// seed 0, the arm's model when it is the best so far. `progress` gets (step, steps).
    @discardableResult
    public func run(_ run: StudyRun, progress: (Int, Int) -> Void = { _, _ in }) throws -> StudyRunRecord {
        let started = Date()
        let seed = UInt64(run.seed)
        let model = try startingModel(backbone: run.arm.backbone, seed: seed)
        let classifier = ImageClassifier(
            model: model, labels: train.classNames, profile: profile, format: .swiftViT, path: modelPath(run.arm))
        let perEpoch = (train.count + plan.batchSize - 1) / plan.batchSize
        let options = TrainingOptions(
            epochs: (plan.steps + perEpoch - 1) / perEpoch, batchSize: plan.batchSize, learningRate: run.learningRate,
            minimumLearningRate: 0, weightDecay: 0, warmupEpochs: 0, labelSmoothing: 0, gradientClip: 1, seed: seed,
            augmentation: nil, frozen: run.arm.frozen ? plan.frozen.map { Self.freezeGroups[$0]! } : [],
            maxSteps: plan.steps, warmupSteps: plan.steps / 10)
        let trainer = ClassifierTrainer(classifier: classifier, options: options)
        let batches = try BatchMaker(data: train, profile: profile, augmentation: nil, seed: seed)
        var losses: [Float] = []
        var diverged = false
        do {
            while !trainer.isFinished {
                _ = try trainer.trainEpoch(batches) { _, _, loss in
                    losses.append(loss)
                    progress(losses.count, plan.steps)
                }
            }
        } catch is NonFiniteLossError {
            diverged = true
        }
        let curve = stride(from: 0, to: losses.count, by: plan.logEvery).map { start in
            let block = losses[start..<min(losses.count, start + plan.logEvery)]
            return block.reduce(0, +) / Float(block.count)
        }
        let record = StudyRunRecord(
            backbone: run.arm.backbone, frozen: run.arm.frozen, learningRate: run.learningRate, seed: run.seed,
            validationAccuracy: try evaluate(classifier, on: validation).accuracy,
            testAccuracy: try evaluate(classifier, on: test).accuracy,
            finalLoss: diverged ? .nan : curve.last ?? .nan, diverged: diverged, steps: trainer.step,
            trainableParameters: model.parameters.trainable.reduce(0) { $0 + $1.variable.value.count },
            parameters: model.parameters.reduce(0) { $0 + $1.variable.value.count },
            seconds: Date().timeIntervalSince(started), curve: curve)
        if run.seed == 0 && !diverged {
            let best = records.values.filter { $0.seed == 0 && $0.arm == run.arm && !$0.diverged }
                .map(\.validationAccuracy).max()
            if best.map({ record.validationAccuracy > $0 }) ?? true {
                try classifier.save(path: modelPath(run.arm), extraMetadata: ["study_run": try Self.json(record)])
            }
        }
        var lines = try zip(curve.indices, curve).map { i, loss in
            try Self.json(CurvePoint(step: min((i + 1) * plan.logEvery, losses.count), loss: loss))
        }
        lines.append(try Self.json(ResultLine(result: record)))
        try writeAtomically(Data((lines.joined(separator: "\n") + "\n").utf8), toPath: logPath(run))
        records[run.id] = record
        return record
    }

    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    struct CurvePoint: Codable {
        var step: Int
        var loss: Float
    }

    struct ResultLine: Codable {
        var result: StudyRunRecord
        static func decoder() -> JSONDecoder {
            let decoder = JSONDecoder()
            decoder.nonConformingFloatDecodingStrategy = .convertFromString(
                positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            return decoder
        }
    }
}

extension LabeledImages {
    /// The images and labels at `indices`, in that order, with the same classes.
    public func subset(_ indices: [Int]) -> LabeledImages {
        LabeledImages(images: indices.map { images[$0] }, labels: indices.map { labels[$0] }, classNames: classNames)
    }
}
