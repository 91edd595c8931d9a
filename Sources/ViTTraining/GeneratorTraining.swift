import Foundation
import ViTCheckpoint
import ViTCore
import ViTData
import ViTGenerator
import ViTImage
import ViTTensor
import ViTText

/// The settings of a generator training run.
public struct GeneratorTrainingOptions: Sendable, Codable, Equatable {
    public var epochs: Int
    public var batchSize: Int
    /// Peak learning rate of AdamW, reached after the warmup.
    public var learningRate: Float
    public var minimumLearningRate: Float
    public var weightDecay: Float
    public var warmupSteps: Int
    /// Maximum global gradient norm; 0 turns clipping off.
    public var gradientClip: Float
    /// Probability that a caption is replaced by the empty caption, so that the same model
    /// learns the unconditional velocity (classifier-free guidance, Ho and Salimans 2022).
    public var captionDropout: Float
    /// Times drawn from sigmoid(N(0, 1)) (SD3's logit-normal) when true, else uniformly.
    public var logitNormalTimes: Bool
    /// Decay of the moving average of the weights that is evaluated and saved.
    public var emaDecay: Float
    public var seed: UInt64
    /// Stop after this many optimizer steps (the schedule spans them).
    public var maxSteps: Int?

    public init(
        epochs: Int, batchSize: Int = 64, learningRate: Float = 5e-4, minimumLearningRate: Float = 1e-5,
        weightDecay: Float = 0, warmupSteps: Int = 200, gradientClip: Float = 1, captionDropout: Float = 0.1,
        logitNormalTimes: Bool = true, emaDecay: Float = 0.999, seed: UInt64 = 0, maxSteps: Int? = nil
    ) {
        self.epochs = epochs
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.minimumLearningRate = minimumLearningRate
        self.weightDecay = weightDecay
        self.warmupSteps = warmupSteps
        self.gradientClip = gradientClip
        self.captionDropout = captionDropout
        self.logitNormalTimes = logitNormalTimes
        self.emaDecay = emaDecay
        self.seed = seed
        self.maxSteps = maxSteps
    }
}

/// What one epoch of generator training did.
public struct GeneratorEpochRecord: Sendable, Codable, Equatable {
    public var epoch: Int
    public var step: Int
    /// Mean flow-matching loss (mean squared velocity error) over the epoch's steps.
    public var loss: Float
    public var learningRate: Float
    public var seconds: Double
    public var imagesPerSecond: Double

    public init(epoch: Int, step: Int, loss: Float, learningRate: Float, seconds: Double, imagesPerSecond: Double) {
        self.epoch = epoch
        self.step = step
        self.loss = loss
        self.learningRate = learningRate
        self.seconds = seconds
        self.imagesPerSecond = imagesPerSecond
    }
}

/// Trains a caption generator by flow matching (docs/ARCHITECTURE.md, "Life of a caption"):
/// each step draws noise, times and caption dropout from (seed, step), so a resumed run
/// takes the same steps as an uninterrupted one.
public final class GeneratorTrainer {
    public let generator: CaptionGenerator
    /// The moving average of the weights, evaluated and saved.
    public private(set) var averaged: FlowTransformer
    public let options: GeneratorTrainingOptions
    public let optimizer: AdamW
    /// Training images [N, C, S, S] in [-1, 1] and their captions.
    let images: Tensor
    let captions: [String]
    public private(set) var epoch = 0
    public private(set) var step = 0
    public private(set) var history: [GeneratorEpochRecord] = []

    static let auxiliaryPrefixes = ["optimizer.", "ema."]

    /// `data`'s images must have the generator's size and channels.
    public init(generator: CaptionGenerator, data: CaptionedImages, options: GeneratorTrainingOptions) throws {
        let c = generator.config
        if let bad = data.images.first(where: { $0.width != c.imageSize || $0.height != c.imageSize }) {
            throw DatasetError(
                path: nil,
                reason: "an image of \(bad.width) x \(bad.height) for a generator of \(c.imageSize) x \(c.imageSize)")
        }
        guard !data.images.isEmpty else { throw DatasetError(path: nil, reason: "no training images") }
        self.generator = generator
        self.options = options
        images = Tensor.stack(data.images.map { CaptionGenerator.tensor($0.withChannels(c.channels)) })
        captions = data.captions
        optimizer = AdamW(learningRate: options.learningRate, weightDecay: options.weightDecay)
        averaged = try FlowTransformer(WeightStore(generator.model.copiedTensors, origin: "the generator"), config: c)
    }

    /// Encodes every distinct caption (and the empty one) once, ahead of training;
    /// `progress` gets (done, total).
    public func encodeCaptions(progress: (Int, Int) -> Void = { _, _ in }) {
        generator.encode(captions + [""], progress: progress)
    }

    public var stepsPerEpoch: Int { (captions.count + options.batchSize - 1) / options.batchSize }
    public var totalSteps: Int { options.maxSteps ?? stepsPerEpoch * options.epochs }
    public var isFinished: Bool { epoch >= options.epochs || step >= totalSteps }

    /// The generator with the averaged weights: what is evaluated and saved.
    public var result: CaptionGenerator { CaptionGenerator(model: averaged, textEncoder: generator.textEncoder) }

    /// Trains one epoch; `progress` gets (steps done, steps in the epoch, loss) after each.
    /// Throws `NonFiniteLossError`, before that step's update, when a loss is not finite.
    public func trainEpoch(progress: (Int, Int, Float) -> Void = { _, _, _ in }) throws -> (
        loss: Float, learningRate: Float, images: Int
    ) {
        // The epoch's order is drawn from (seed, "ORDER", epoch).
        let order = shuffledIndices(captions.count, seed: derivedSeed(options.seed, 0x4F52_4445_52, UInt64(epoch)))
        let model = generator.model
        let perSample = images.count / max(captions.count, 1)
        var lossSum = 0.0, steps = 0, seen = 0
        var learningRate: Float = 0
        for i in 0..<stepsPerEpoch where step < totalSteps {
            let batch = Array(order[(i * options.batchSize)..<min(order.count, (i + 1) * options.batchSize)])
            var random = SeededGenerator(seed: derivedSeed(options.seed, 0x5354_4550, UInt64(step)))  // "STEP"
            let data = Tensor(shape: [batch.count] + Array(images.shape.dropFirst()))
            for (row, index) in batch.enumerated() {
                (data.data + row * perSample).update(from: images.data + index * perSample, count: perSample)
            }
            let noise = Tensor.normal(data.shape, using: &random)
            let times = FlowMatching.sampleTimes(
                batch.count, distribution: options.logitNormalTimes ? .logitNormal(mean: 0, std: 1) : .uniform,
                using: &random)
            let batchCaptions = batch.map { random.nextUniform() < options.captionDropout ? "" : captions[$0] }
            let noisy = FlowMatching.interpolate(data: data, noise: noise, times: times)
            let target = FlowMatching.velocity(data: data, noise: noise)
            learningRate = warmupCosineLearningRate(
                step: step, totalSteps: totalSteps, warmupSteps: options.warmupSteps, peak: options.learningRate,
                minimum: options.minimumLearningRate)
            optimizer.learningRate = learningRate
            let loss = lossAndGradients(of: model) {
                meanSquaredError(generator.velocity(noisy, times: times, captions: batchCaptions), target: target)
            }
            guard loss.value.item.isFinite else {
                throw NonFiniteLossError(epoch: epoch + 1, step: step + 1, loss: loss.value.item)
            }
            let parameters = model.parameters.trainable
            if options.gradientClip > 0 { clipGradientNorm(parameters, maxNorm: options.gradientClip) }
            optimizer.update(parameters, decays: Self.decays)
            for ((_, average), (_, weight)) in zip(averaged.namedTensors, model.namedTensors) {
                movingAverageStep(average, toward: weight, decay: options.emaDecay)
            }
            step += 1
            steps += 1
            seen += batch.count
            lossSum += Double(loss.value.item)
            progress(i + 1, stepsPerEpoch, loss.value.item)
        }
        epoch += 1
        return (Float(lossSum / Double(max(steps, 1))), learningRate, seen)
    }

    /// No weight decay on biases, norms and position embeddings (as for classifiers).
    static func decays(_ name: String) -> Bool {
        !(name.hasSuffix(".bias") || name.contains("norm") || name == "pos_embed")
    }

    /// Appends an epoch's record (kept in checkpoints).
    public func record(_ entry: GeneratorEpochRecord) { history.append(entry) }

    /// Writes the weights, the moving average, AdamW's moments and the training state
    /// atomically.
    public func saveCheckpoint(path: String) throws {
        var tensors: [String: Tensor] = [:]
        for (name, tensor) in generator.model.namedTensors { tensors[name] = tensor }
        for (name, tensor) in averaged.namedTensors { tensors["ema.\(name)"] = tensor }
        tensors.merge(optimizer.checkpointTensors()) { own, _ in own }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let state = GeneratorTrainingState(
            epoch: epoch, step: step, optimizerStep: optimizer.step, options: options, history: history)
        try writeSafeTensors(
            tensors,
            metadata: try generator.metadata(extra: [
                "training_state": String(decoding: try encoder.encode(state), as: UTF8.self),
                CaptionGenerator.auxiliaryPrefixesKey: String(
                    decoding: try encoder.encode(Self.auxiliaryPrefixes), as: UTF8.self),
            ]), toPath: path)
    }

    /// A trainer continuing from a checkpoint written by `saveCheckpoint`, on the same data.
    public static func resume(path: String, textEncoder: SentenceEncoder, data: CaptionedImages) throws
        -> GeneratorTrainer
    {
        let file = try SafeTensorsFile(path: path)
        guard let text = file.metadata["training_state"],
            let state = try? JSONDecoder().decode(GeneratorTrainingState.self, from: Data(text.utf8))
        else {
            throw GeneratorError(path: path, reason: "not a generator training checkpoint (no valid 'training_state')")
        }
        if let problem = state.problem() { throw GeneratorError(path: path, reason: "training state: \(problem)") }
        let loaded = try CaptionGenerator.load(path: path, textEncoder: textEncoder)
        // Copied out of the mapped file: training writes them.
        func copy(_ prefix: String) throws -> FlowTransformer {
            var tensors: [String: Tensor] = [:]
            for (name, _) in loaded.model.namedTensors {
                guard let tensor = try? file.tensor(prefix + name) else {
                    throw GeneratorError(path: path, reason: "the checkpoint has no '\(prefix + name)'")
                }
                tensors[name] = tensor.copy()
            }
            return try FlowTransformer(WeightStore(tensors, origin: path), config: loaded.config)
        }
        let generator = CaptionGenerator(model: try copy(""), textEncoder: textEncoder)
        let trainer = try GeneratorTrainer(generator: generator, data: data, options: state.options)
        trainer.averaged = try copy("ema.")
        trainer.optimizer.restore(
            step: state.optimizerStep, from: file, names: generator.model.namedTensors.map(\.name))
        trainer.epoch = state.epoch
        trainer.step = state.step
        trainer.history = state.history
        return trainer
    }
}

/// The progress stored in a generator checkpoint's metadata.
struct GeneratorTrainingState: Codable {
    var epoch: Int
    var step: Int
    var optimizerStep: Int
    var options: GeneratorTrainingOptions
    var history: [GeneratorEpochRecord]

    /// What is out of range, or nil: counts and rates as `vit train generator` accepts them.
    func problem() -> String? {
        let o = options
        let checks =
            scheduleChecks(
                epoch: epoch, step: step, optimizerStep: optimizerStep,
                batchSize: o.batchSize, learningRate: o.learningRate, minimumLearningRate: o.minimumLearningRate,
                weightDecay: o.weightDecay, gradientClip: o.gradientClip, maxSteps: o.maxSteps) + [
                (o.warmupSteps >= 0, "warmup steps \(o.warmupSteps) is negative"),
                ((0...1).contains(o.captionDropout), "caption dropout \(o.captionDropout) is not in [0, 1]"),
                (0 < o.emaDecay && o.emaDecay < 1, "moving-average decay \(o.emaDecay) is not in (0, 1)"),
            ]
        return checks.first { !$0.0 }?.1
    }
}
