import Testing
import ViTCore
import ViTData
import ViTImage
import ViTTensor
import ViTTestSupport
import ViTTraining
import ViTVision

/// The moving average of the weights (`--ema-decay`), against the recurrence computed here.
@Suite struct MovingAverageTests {
    @Test func stepByHand() {
        let average = Tensor(shape: [3], values: [1, -2, 0.5])
        movingAverageStep(average, toward: Tensor(shape: [3], values: [3, 2, 0.5]), decay: 0.75)
        // 0.75 * 1 + 0.25 * 3 = 1.5; 0.75 * -2 + 0.25 * 2 = -1; 0.5 stays.
        #expect(average.scalars == [1.5, -1, 0.5])
    }

    /// Three AdamW steps on a micro ViT: the average equals d^3 w0 + d^2 (1-d) w1 +
    /// d (1-d) w2 + (1-d) w3 for every parameter, element by element, with the weights
    /// w1..w3 seen after each step; the checkpoint brings the same average back.
    @Test func trainerKeepsTheRecurrence() throws {
        var generator = SeededGenerator(seed: 4)
        let images = (0..<12).map { _ in
            Image(width: 8, height: 8, channels: 1, pixels: (0..<64).map { _ in UInt8(generator.next() % 256) })
        }
        let data = LabeledImages(images: images, labels: (0..<12).map { $0 % 3 }, classNames: ["a", "b", "c"])
        let config = ViTConfig(
            imageSize: 8, patchSize: 4, dim: 16, depth: 1, numHeads: 2, hiddenDim: 32, numClasses: 3,
            layerNormEps: 1e-6)
        var profile = PreprocessProfile.fashionMNIST
        profile.resize = .exact(width: 8, height: 8)
        let classifier = ImageClassifier(
            model: try VisionTransformer(RandomParameters(seed: 1), config: config), labels: data.classNames,
            profile: profile, format: .swiftViT, path: "micro")
        let decay: Float = 0.9
        let trainer = ClassifierTrainer(
            classifier: classifier,
            options: TrainingOptions(
                epochs: 1, batchSize: 4, learningRate: 1e-2, warmupEpochs: 0, seed: 2, maxSteps: 3, emaDecay: decay))
        func snapshot() -> [String: [Float]] {
            Dictionary(uniqueKeysWithValues: trainer.classifier.model.namedTensors.map { ($0.name, $0.tensor.scalars) })
        }
        var weights = [snapshot()]
        _ = try trainer.trainEpoch(try BatchMaker(data: data, profile: profile, augmentation: nil, seed: 2)) {
            _, _, _ in
            weights.append(snapshot())
        }
        #expect(weights.count == 4)
        // The model the trainer evaluates and saves is the average.
        var moved = 0
        for (name, tensor) in trainer.result.model.namedTensors {
            var expected = weights[0][name]!.map(Double.init)
            for w in weights.dropFirst() {
                expected = zip(expected, w[name]!).map { Double(decay) * $0 + Double(1 - decay) * Double($1) }
            }
            let result = compare(tensor.scalars, expected.map { Float($0) }, atol: 1e-6, rtol: 1e-5)
            #expect(result.passed, "\(name): \(result)")
            if tensor.scalars != weights[3][name]! { moved += 1 }
        }
        #expect(moved > 0, "the average should differ from the weights")

        let path = makeTemporaryFolder() + "/checkpoint.safetensors"
        try trainer.saveCheckpoint(path: path)
        let resumed = try ClassifierTrainer.resume(path: path)
        let averaged = try #require(trainer.averaged)
        for ((name, a), (_, b)) in zip(try #require(resumed.averaged).model.namedTensors, averaged.model.namedTensors) {
            #expect(a.scalars == b.scalars, "\(name)")
        }
    }
}
