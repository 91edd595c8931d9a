import Dispatch
import Foundation
import ViTCheckpoint
import ViTCore
import ViTData
import ViTImage
import ViTTensor
import ViTVision

/// The settings of a classifier training run.
public struct TrainingOptions: Sendable, Codable, Equatable {
    public var epochs: Int
    public var batchSize: Int
    /// Peak learning rate of AdamW, reached after the warmup.
    public var learningRate: Float
    public var minimumLearningRate: Float
    public var weightDecay: Float
    public var warmupEpochs: Int
    public var labelSmoothing: Float
    /// Maximum global gradient norm; 0 turns clipping off.
    public var gradientClip: Float
    public var seed: UInt64
    public var augmentation: Augmentation?
    /// Parameter groups that do not train (see `ClassifierTrainer.parameterGroups`).
    public var frozen: [String]
    /// Stop after this many optimizer steps (the schedule spans them) instead of at the
    /// end of the last epoch.
    public var maxSteps: Int?
    /// Decay of an exponential moving average of the weights kept beside them (nil: none).
    public var emaDecay: Float?

    public init(
        epochs: Int, batchSize: Int, learningRate: Float, minimumLearningRate: Float = 1e-5, weightDecay: Float = 0.05,
        warmupEpochs: Int = 1, labelSmoothing: Float = 0.1, gradientClip: Float = 1, seed: UInt64 = 0,
        augmentation: Augmentation? = nil, frozen: [String] = [], maxSteps: Int? = nil, emaDecay: Float? = nil
    ) {
        self.epochs = epochs
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.minimumLearningRate = minimumLearningRate
        self.weightDecay = weightDecay
        self.warmupEpochs = warmupEpochs
        self.labelSmoothing = labelSmoothing
        self.gradientClip = gradientClip
        self.seed = seed
        self.augmentation = augmentation
        self.frozen = frozen
        self.maxSteps = maxSteps
        self.emaDecay = emaDecay
    }
}

/// What one epoch did.
public struct EpochRecord: Sendable, Codable, Equatable {
    public var epoch: Int
    public var step: Int
    public var trainLoss: Float
    public var trainAccuracy: Float
    public var testAccuracy: Float?
    public var learningRate: Float
    public var seconds: Double
    public var imagesPerSecond: Double

    public init(
        epoch: Int, step: Int, trainLoss: Float, trainAccuracy: Float, testAccuracy: Float?, learningRate: Float,
        seconds: Double, imagesPerSecond: Double
    ) {
        self.epoch = epoch
        self.step = step
        self.trainLoss = trainLoss
        self.trainAccuracy = trainAccuracy
        self.testAccuracy = testAccuracy
        self.learningRate = learningRate
        self.seconds = seconds
        self.imagesPerSecond = imagesPerSecond
    }
}

/// Trains a ViT classifier with AdamW, warmup + cosine schedule, label smoothing and
/// gradient clipping; saves and resumes checkpoints that hold the optimizer state.
public final class ClassifierTrainer {
    public let classifier: ImageClassifier
    public let options: TrainingOptions
    public let parameters: ParameterSet
    public let optimizer: AdamW
    /// Epochs completed.
    public private(set) var epoch = 0
    /// Optimizer steps taken.
    public private(set) var step = 0
    public private(set) var history: [EpochRecord] = []
    /// The moving average of the weights (timm's ModelEma: after every step
    /// ema = decay * ema + (1 - decay) * w, starting from the initial weights), when
    /// `options.emaDecay` is set.
    public private(set) var averaged: ImageClassifier?

    /// The model to evaluate and to save: the moving average when kept, else the weights.
    public var result: ImageClassifier { averaged ?? classifier }

    /// Parameter groups for freezing, by name prefix (timm key names).
    public static let parameterGroups: [String: @Sendable (String) -> Bool] = [
        "patch-embedding": { $0.hasPrefix("patch_embed.") },
        "position-embedding": { $0 == "pos_embed" || $0 == "cls_token" },
        "attention": { $0.contains(".attn.") },
        "mlp": { $0.contains(".mlp.") },
        "norms": { $0.contains("norm") },
        "head": { $0.hasPrefix("head.") },
    ]

    public init(classifier: ImageClassifier, options: TrainingOptions) {
        self.classifier = classifier
        self.options = options
        parameters = ParameterSet(classifier.model.parameters)
        for group in options.frozen {
            if let matches = Self.parameterGroups[group] { parameters.freeze(where: matches) }
        }
        optimizer = AdamW(learningRate: options.learningRate, weightDecay: options.weightDecay)
        if options.emaDecay != nil { averaged = classifier.withCopiedWeights() }
    }

    /// One moving-average step toward the current weights.
    func updateAverage() {
        guard let decay = options.emaDecay, let averaged else { return }
        for ((name, average), (other, weight)) in zip(averaged.model.parameters, classifier.model.parameters) {
            precondition(name == other, "moving average: \(name) against \(other)")
            movingAverageStep(average, toward: weight, decay: decay)
        }
    }

    /// timm's rule: no weight decay on biases, norms, position embeddings and class token.
    static func decays(_ name: String) -> Bool {
        !(name.hasSuffix(".bias") || name.contains("norm") || name == "pos_embed" || name == "cls_token")
    }

    func stepsPerEpoch(_ count: Int) -> Int { (count + options.batchSize - 1) / options.batchSize }

    /// Trains one epoch over `batches` (its augmentation and seed); `progress` is called after
    /// each step with (steps done, steps in the epoch, loss). Returns mean loss and accuracy,
    /// the last learning rate and the number of images trained on (fewer when a step limit ends it).
    public func trainEpoch(
        _ batches: BatchMaker, progress: (Int, Int, Float) -> Void = { _, _, _ in }
    ) -> (loss: Float, accuracy: Float, learningRate: Float, images: Int) {
        let order = batches.order(epoch: epoch)
        let perEpoch = stepsPerEpoch(order.count), total = options.maxSteps ?? perEpoch * options.epochs
        let model = classifier.model
        var lossSum = 0.0, correct = 0, seen = 0
        var learningRate: Float = 0
        // Batch i + 1 is built on another thread while step i runs.
        let queue = DispatchQueue(label: "batches")
        let batchSize = options.batchSize
        let epochIndex = epoch
        var pending = BatchBox()
        let group = DispatchGroup()
        func prefetch(_ i: Int) {
            let box = BatchBox()
            pending = box
            let indices = Array(order[(i * batchSize)..<min(order.count, (i + 1) * batchSize)])
            queue.async(group: group) { box.value = batches.batch(indices, epoch: epochIndex) }
        }
        prefetch(0)
        for i in 0..<perEpoch {
            if let maxSteps = options.maxSteps, step >= maxSteps { break }
            group.wait()
            let (images, labels) = pending.value!
            if i + 1 < perEpoch { prefetch(i + 1) }
            learningRate = warmupCosineLearningRate(
                step: step, totalSteps: total, warmupSteps: options.warmupEpochs * perEpoch,
                peak: options.learningRate, minimum: options.minimumLearningRate)
            optimizer.learningRate = learningRate
            parameters.zeroGradients()
            let logits = model(images, parameters)
            let loss = crossEntropy(logits, labels: labels, labelSmoothing: options.labelSmoothing)
            loss.backward()
            if options.gradientClip > 0 { clipGradientNorm(parameters, maxNorm: options.gradientClip) }
            optimizer.update(parameters, decays: Self.decays)
            updateAverage()
            step += 1
            lossSum += Double(loss.value.item) * Double(labels.count)
            correct += zip(logits.value.argmaxLastAxis(), labels).filter { $0 == $1 }.count
            seen += labels.count
            progress(i + 1, perEpoch, loss.value.item)
        }
        epoch += 1
        return (Float(lossSum / Double(max(seen, 1))), Float(correct) / Float(max(seen, 1)), learningRate, seen)
    }

    /// Whether the run is over: all epochs, or the step limit.
    public var isFinished: Bool {
        epoch >= options.epochs || options.maxSteps.map { step >= $0 } ?? false
    }

    /// Appends an epoch's record (kept in checkpoints).
    public func record(_ entry: EpochRecord) { history.append(entry) }

    /// Writes model, optimizer moments and training state atomically.
    public func saveCheckpoint(path: String) throws {
        var tensors: [String: Tensor] = [:]
        for (name, tensor) in classifier.model.parameters { tensors[name] = tensor }
        for (name, tensor) in averaged?.model.parameters ?? [] { tensors["ema.\(name)"] = tensor }
        for (name, state) in optimizer.moments {
            tensors["optimizer.m.\(name)"] = state.m
            tensors["optimizer.v.\(name)"] = state.v
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let state = TrainingState(
            epoch: epoch, step: step, optimizerStep: optimizer.step, options: options, history: history)
        var metadata = try classifier.metadata()
        metadata["training_state"] = String(decoding: try encoder.encode(state), as: UTF8.self)
        try writeSafeTensors(tensors, metadata: metadata, toPath: path)
    }

    /// A trainer continuing from a checkpoint written by `saveCheckpoint`.
    public static func resume(path: String) throws -> ClassifierTrainer {
        let file = try SafeTensorsFile(path: path)
        let classifier = try ImageClassifier.swiftViT(
            file: file, path: path, ignoring: ImageClassifier.trainingStatePrefixes)
        guard let text = file.metadata["training_state"],
            let state = try? JSONDecoder().decode(TrainingState.self, from: Data(text.utf8))
        else {
            throw ModelError(path: path, reason: "not a training checkpoint (no valid 'training_state' metadata)")
        }
        // The weights are copied out of the memory-mapped file: training writes them.
        let owned = classifier.withCopiedWeights()
        let trainer = ClassifierTrainer(classifier: owned, options: state.options)
        var moments: [String: (m: Tensor, v: Tensor)] = [:]
        for (name, _) in owned.model.parameters {
            if let m = try? file.tensor("optimizer.m.\(name)"), let v = try? file.tensor("optimizer.v.\(name)") {
                moments[name] = (m.copy(), v.copy())
            }
        }
        trainer.optimizer.restore(step: state.optimizerStep, moments: moments)
        if state.options.emaDecay != nil {
            var tensors: [String: Tensor] = [:]
            for (name, _) in owned.model.parameters {
                guard let tensor = try? file.tensor("ema.\(name)") else {
                    throw ModelError(path: path, reason: "the moving average has no 'ema.\(name)'")
                }
                tensors[name] = tensor.copy()
            }
            let model = try VisionTransformer(WeightStore(tensors, origin: path), config: owned.model.config)
            trainer.averaged = ImageClassifier(
                model: model, labels: owned.labels, profile: owned.profile, format: owned.format, path: path)
        }
        trainer.epoch = state.epoch
        trainer.step = state.step
        trainer.history = state.history
        return trainer
    }
}

/// A batch handed from the prefetching thread to the training loop.
private final class BatchBox: @unchecked Sendable {
    var value: (images: Tensor, labels: [Int])?
}

/// The training progress stored in a checkpoint's metadata.
struct TrainingState: Codable {
    var epoch: Int
    var step: Int
    var optimizerStep: Int
    var options: TrainingOptions
    var history: [EpochRecord]
}

/// Accuracy, per-class accuracy and the confusion matrix of a classifier on a dataset.
public struct Evaluation: Sendable, Codable {
    public let count: Int
    public let accuracy: Float
    public let classNames: [String]
    public let perClassAccuracy: [Float]
    /// confusion[true class][predicted class]: counts.
    public let confusion: [[Int]]
}

/// Runs the classifier over a dataset (no augmentation) and scores it.
public func evaluate(_ classifier: ImageClassifier, on data: LabeledImages, batchSize: Int = 256) -> Evaluation {
    let maker = BatchMaker(data: data, profile: classifier.profile, augmentation: nil, seed: 0)
    let k = classifier.labels.count
    var confusion = [[Int]](repeating: [Int](repeating: 0, count: k), count: k)
    for start in stride(from: 0, to: data.count, by: batchSize) {
        let indices = Array(start..<min(data.count, start + batchSize))
        let (images, labels) = maker.batch(indices, epoch: 0)
        for (predicted, label) in zip(classifier.model(images).argmaxLastAxis(), labels) where label < k {
            confusion[label][predicted] += 1
        }
    }
    let correct = (0..<k).reduce(0) { $0 + confusion[$1][$1] }
    let perClass = (0..<k).map { c in
        let total = confusion[c].reduce(0, +)
        return total == 0 ? 0 : Float(confusion[c][c]) / Float(total)
    }
    return Evaluation(
        count: data.count, accuracy: Float(correct) / Float(max(data.count, 1)), classNames: classifier.labels,
        perClassAccuracy: perClass, confusion: confusion)
}

extension ImageClassifier {
    /// The same classifier with its weights in memory it owns (not a mapped file).
    public func withCopiedWeights() -> ImageClassifier {
        let tensors = Dictionary(uniqueKeysWithValues: model.parameters.map { ($0.0, $0.1.copy()) })
        let store = WeightStore(tensors, origin: path)
        // The same names and shapes: this cannot fail.
        let copied = try! VisionTransformer(store, config: model.config)
        return ImageClassifier(model: copied, labels: labels, profile: profile, format: format, path: path)
    }
}

extension ImageClassifier {
    /// This model prepared to learn other classes at another input size: every weight kept
    /// but the head, which starts afresh (truncated normal 0.02, zero bias) for `labels`;
    /// position embeddings resampled when `imageSize` differs.
    public func withNewHead(labels: [String], imageSize: Int, seed: UInt64) throws -> ImageClassifier {
        var config = model.config
        let grid = imageSize / config.patchSize
        var tensors = Dictionary(
            uniqueKeysWithValues: model.parameters.filter { !$0.0.hasPrefix("head.") }.map { ($0.0, $0.1.copy()) })
        if imageSize != config.imageSize {
            tensors["pos_embed"] = model.positionEmbedding(gridHeight: grid, gridWidth: grid)
        }
        config.imageSize = imageSize
        config.numClasses = labels.count
        let random = RandomParameters(seed: seed)
        tensors["head.weight"] = try random.tensor(
            "head.weight", shape: [labels.count, config.dim], initializer: .truncatedNormal(std: 0.02))
        tensors["head.bias"] = try random.tensor("head.bias", shape: [labels.count], initializer: .zeros)
        let store = WeightStore(tensors, origin: path)
        let model = try VisionTransformer(store, config: config)
        try store.finish()
        return ImageClassifier(
            model: model, labels: labels, profile: profile.forInputSize(imageSize), format: .swiftViT, path: path)
    }
}
