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
    /// Warmup length in steps, in place of `warmupEpochs` (nil: whole epochs).
    public var warmupSteps: Int?

    public init(
        epochs: Int, batchSize: Int, learningRate: Float, minimumLearningRate: Float = 1e-5, weightDecay: Float = 0.05,
        warmupEpochs: Int = 1, labelSmoothing: Float = 0.1, gradientClip: Float = 1, seed: UInt64 = 0,
        augmentation: Augmentation? = nil, frozen: [String] = [], maxSteps: Int? = nil, emaDecay: Float? = nil,
        warmupSteps: Int? = nil
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
        self.warmupSteps = warmupSteps
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

    /// Key prefixes of what a checkpoint holds beside the model's weights: the optimizer's
    /// moments and the moving average of the weights.
    static let auxiliaryPrefixes = ["optimizer.", "ema."]

    /// `options.frozen` names groups of `VisionTransformer.parameterGroups`; the
    /// classifier's parameters in them stop training.
    public init(classifier: ImageClassifier, options: TrainingOptions) {
        self.classifier = classifier
        self.options = options
        for name in options.frozen {
            if let group = VisionTransformer.parameterGroups.first(where: { $0.name == name }) {
                classifier.model.setTrainable(false, group)
            }
        }
        optimizer = AdamW(learningRate: options.learningRate, weightDecay: options.weightDecay)
        if options.emaDecay != nil { averaged = classifier.withCopiedWeights() }
    }

    /// One moving-average step toward the current weights.
    func updateAverage() {
        guard let decay = options.emaDecay, let averaged else { return }
        for ((name, average), (other, weight)) in zip(averaged.model.namedTensors, classifier.model.namedTensors) {
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
    /// Throws `NonFiniteLossError`, before that step's update, when a loss is not finite.
    public func trainEpoch(
        _ batches: BatchMaker, progress: (Int, Int, Float) -> Void = { _, _, _ in }
    ) throws -> (loss: Float, accuracy: Float, learningRate: Float, images: Int) {
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
                step: step, totalSteps: total, warmupSteps: options.warmupSteps ?? options.warmupEpochs * perEpoch,
                peak: options.learningRate, minimum: options.minimumLearningRate)
            optimizer.learningRate = learningRate
            var logits = Tensor(shape: [])
            let loss = lossAndGradients(of: model) {
                let output = model(images)
                logits = output.value
                return crossEntropy(output, labels: labels, labelSmoothing: options.labelSmoothing)
            }
            guard loss.value.item.isFinite else {
                group.wait()
                throw NonFiniteLossError(epoch: epoch + 1, step: step + 1, loss: loss.value.item)
            }
            let parameters = model.parameters.trainable
            if options.gradientClip > 0 { clipGradientNorm(parameters, maxNorm: options.gradientClip) }
            optimizer.update(parameters, decays: Self.decays)
            updateAverage()
            step += 1
            lossSum += Double(loss.value.item) * Double(labels.count)
            correct += zip(logits.argmaxLastAxis(), labels).filter { $0 == $1 }.count
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
        for (name, tensor) in classifier.model.namedTensors { tensors[name] = tensor }
        for (name, tensor) in averaged?.model.namedTensors ?? [] { tensors["ema.\(name)"] = tensor }
        tensors.merge(optimizer.checkpointTensors()) { own, _ in own }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let state = TrainingState(
            epoch: epoch, step: step, optimizerStep: optimizer.step, options: options, history: history)
        var metadata = try classifier.metadata()
        metadata["training_state"] = String(decoding: try encoder.encode(state), as: UTF8.self)
        metadata[ImageClassifier.auxiliaryPrefixesKey] = String(
            decoding: try encoder.encode(Self.auxiliaryPrefixes), as: UTF8.self)
        try writeSafeTensors(tensors, metadata: metadata, toPath: path)
    }

    /// A trainer continuing from a checkpoint written by `saveCheckpoint`.
    public static func resume(path: String) throws -> ClassifierTrainer {
        let file = try SafeTensorsFile(path: path)
        let classifier = try ImageClassifier.swiftViT(file: file, path: path)
        guard let text = file.metadata["training_state"],
            let state = try? JSONDecoder().decode(TrainingState.self, from: Data(text.utf8))
        else {
            throw ModelError(path: path, reason: "not a training checkpoint (no valid 'training_state' metadata)")
        }
        // The weights are copied out of the memory-mapped file: training writes them.
        let owned = classifier.withCopiedWeights()
        if let problem = state.problem(parameterGroups: VisionTransformer.parameterGroups.map(\.name)) {
            throw ModelError(path: path, reason: "training state: \(problem)")
        }
        let trainer = ClassifierTrainer(classifier: owned, options: state.options)
        trainer.optimizer.restore(step: state.optimizerStep, from: file, names: owned.model.namedTensors.map(\.name))
        if state.options.emaDecay != nil {
            var tensors: [String: Tensor] = [:]
            for (name, _) in owned.model.namedTensors {
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

    /// What is out of range, or nil: counts, rates and augmentation as `vit train` accepts them.
    func problem(parameterGroups: [String]) -> String? {
        let o = options
        let checks: [(Bool, String)] =
            scheduleChecks(
                epoch: epoch, step: step, optimizerStep: optimizerStep,
                batchSize: o.batchSize, learningRate: o.learningRate, minimumLearningRate: o.minimumLearningRate,
                weightDecay: o.weightDecay, gradientClip: o.gradientClip, maxSteps: o.maxSteps) + [
                (o.warmupEpochs >= 0, "warmup epochs \(o.warmupEpochs) is negative"),
                ((o.warmupSteps ?? 0) >= 0, "warmup steps \(o.warmupSteps ?? 0) is negative"),
                ((0..<1).contains(o.labelSmoothing), "label smoothing \(o.labelSmoothing) is not in [0, 1)"),
                (
                    o.emaDecay.map { 0 < $0 && $0 < 1 } ?? true,
                    "moving-average decay \(o.emaDecay ?? 0) is not in (0, 1)"
                ),
                (
                    (0...1024).contains(o.augmentation?.cropPadding ?? 0),
                    "crop padding \(o.augmentation?.cropPadding ?? 0) is not in 0...1024"
                ),
                ((0...1).contains(o.augmentation?.erasingProbability ?? 0), "erasing probability is not in [0, 1]"),
                (o.frozen.allSatisfy(parameterGroups.contains), "unknown frozen group in \(o.frozen)"),
            ]
        return checks.first { !$0.0 }?.1
    }
}

/// The range checks a resumed training state shares between trainers: (holds, what is wrong).
func scheduleChecks(
    epoch: Int, step: Int, optimizerStep: Int, batchSize: Int, learningRate: Float,
    minimumLearningRate: Float, weightDecay: Float, gradientClip: Float, maxSteps: Int?
) -> [(Bool, String)] {
    [
        (
            epoch >= 0 && step >= 0 && optimizerStep >= 0,
            "epoch \(epoch), step \(step) or optimizer step \(optimizerStep) is negative"
        ),
        ((1...65_536).contains(batchSize), "batch size \(batchSize) is not in 1...65536"),
        (learningRate.isFinite && learningRate > 0, "learning rate \(learningRate) is not positive"),
        (
            (0...max(learningRate, 0)).contains(minimumLearningRate),
            "minimum learning rate \(minimumLearningRate) is not in 0...\(learningRate)"
        ),
        (weightDecay.isFinite && weightDecay >= 0, "weight decay \(weightDecay) is negative"),
        (gradientClip.isFinite && gradientClip >= 0, "gradient clip \(gradientClip) is negative"),
        (maxSteps.map { $0 > 0 } ?? true, "step limit \(maxSteps ?? 0) is not positive"),
    ]
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
public func evaluate(_ classifier: ImageClassifier, on data: LabeledImages, batchSize: Int = 256) throws -> Evaluation {
    let maker = try BatchMaker(data: data, profile: classifier.profile, augmentation: nil, seed: 0)
    let k = classifier.labels.count
    var confusion = [[Int]](repeating: [Int](repeating: 0, count: k), count: k)
    for start in stride(from: 0, to: data.count, by: batchSize) {
        let indices = Array(start..<min(data.count, start + batchSize))
        let (images, labels) = maker.batch(indices, epoch: 0)
        for (predicted, label) in zip(classifier.logits(images).argmaxLastAxis(), labels) where label < k {
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

extension AdamW {
    /// The moments as checkpoint tensors, "optimizer.m.NAME" and "optimizer.v.NAME".
    func checkpointTensors() -> [String: Tensor] {
        var tensors: [String: Tensor] = [:]
        for (name, state) in moments {
            tensors["optimizer.m.\(name)"] = state.m
            tensors["optimizer.v.\(name)"] = state.v
        }
        return tensors
    }

    /// Restores the step count and, for each parameter name, the moments a checkpoint holds
    /// (copied out of the mapped file: updates write them).
    func restore(step: Int, from file: SafeTensorsFile, names: [String]) {
        var moments: [String: (m: Tensor, v: Tensor)] = [:]
        for name in names {
            if let m = try? file.tensor("optimizer.m.\(name)"), let v = try? file.tensor("optimizer.v.\(name)") {
                moments[name] = (m.copy(), v.copy())
            }
        }
        restore(step: step, moments: moments)
    }
}

/// A training step whose loss is not a finite number (the weights have diverged, or the
/// data holds non-finite values); training stops before that step changes the weights.
public struct NonFiniteLossError: ReportableError {
    /// The epoch and step (both counted from 1) of the step.
    public let epoch: Int, step: Int
    public let loss: Float
    public var description: String {
        "epoch \(epoch), step \(step): the loss is \(loss), so training stopped before this step's update"
    }
}
