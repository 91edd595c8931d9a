import Foundation
import Testing
import ViTCore
import ViTData
import ViTGenerator
import ViTTensor
import ViTTestSupport

/// The flow transformer: zero at the start, the same values on Tensors and Variables, and
/// parameter gradients against central differences.
@Suite struct FlowTransformerTests {
    let config = FlowTransformerConfig(
        imageSize: 8, patchSize: 4, dim: 16, depth: 2, numHeads: 2, hiddenDim: 32, contextDim: 6, frequencyDim: 8)

    func inputs() -> (images: Tensor, times: [Float], context: Tensor, mask: Tensor) {
        var rng = SeededGenerator(seed: 21)
        let images = Tensor.normal([2, 3, 8, 8], using: &rng), context = Tensor.normal([2, 3, 6], using: &rng)
        let mask = Tensor(shape: [2, 1, 3], values: [0, 0, 0, 0, 0, -1e9])
        return (images, [0.3, 0.85], context, mask)
    }

    /// A model whose every parameter is random (no zero-initialized layer left).
    func randomModel() throws -> FlowTransformer {
        let model = try FlowTransformer(RandomParameters(seed: 5), config: config)
        var rng = SeededGenerator(seed: 6)
        for (_, tensor) in model.parameters {
            for i in 0..<tensor.count { tensor.data[i] = 0.2 * rng.nextNormal() }
        }
        return model
    }

    @Test func startsAtZeroVelocity() throws {
        let model = try FlowTransformer(RandomParameters(seed: 5), config: config)
        let (images, times, context, mask) = inputs()
        let out = model(images, times: times, context: context, mask: mask)
        #expect(out.shape == [2, 3, 8, 8])
        #expect(out.scalars.allSatisfy { $0 == 0 })
    }

    @Test func patchesRoundTrip() {
        var rng = SeededGenerator(seed: 2)
        let images = Tensor.normal([2, 3, 8, 8], using: &rng)
        let patches = patchify(images, patchSize: 4)
        #expect(patches.shape == [2, 4, 48])
        // Patch 1 of image 0 is the top right 4 x 4 block: channel 0, row 0 starts at x = 4.
        #expect(patches[0, 1, 0] == images[0, 0, 0, 4] && patches[0, 1, 17] == images[0, 1, 0, 5])
        #expect(unpatchify(patches, channels: 3, patchSize: 4, gridSize: 2).scalars == images.scalars)
    }

    @Test func variablesMatchTensorsAndFiniteDifferences() throws {
        let model = try randomModel()
        let (images, times, context, mask) = inputs()
        let expected = model(images, times: times, context: context, mask: mask)
        let parameters = ParameterSet(model.parameters)
        let out = model(images, times: times, context: context, mask: mask, parameters)
        let same = compare(out.value.scalars, expected.scalars, atol: 1e-5, rtol: 1e-5)
        #expect(same.passed, "Variables against Tensors: \(same)")

        var rng = SeededGenerator(seed: 9)
        let upstream = Tensor.normal(out.shape, using: &rng)
        out.backward(seed: upstream)
        func loss() -> Double {
            let y = model(images, times: times, context: context, mask: mask)
            return (0..<y.count).reduce(0.0) { $0 + Double(y.data[$1]) * Double(upstream.data[$1]) }
        }
        // Three elements of every parameter, by central differences (step 1e-2: the
        // truncation and rounding errors stay under the tolerance, as in GradientTests).
        let h: Float = 1e-2
        for (name, variable) in parameters.named {
            let tensor = variable.value
            for i in [0, tensor.count / 2, tensor.count - 1] {
                let numerical = centralDifference(tensor, at: i, step: h, loss)
                let analytic = variable.gradient?.data[i] ?? 0
                #expect(
                    Swift.abs(analytic - numerical) <= 2e-3 + 1e-2 * Swift.abs(numerical),
                    "\(name)[\(i)]: analytic \(analytic), numerical \(numerical)")
            }
        }
    }
}

/// The pieces together: flow matching on 16 Shapes images with one caption embedding each
/// (random vectors standing in for the text encoder), AdamW on the velocity loss.
@Suite struct FlowTrainingTests {
    @Test func velocityLossFalls() throws {
        let config = FlowTransformerConfig(
            imageSize: 32, patchSize: 4, dim: 32, depth: 1, numHeads: 2, hiddenDim: 64, contextDim: 8, frequencyDim: 32)
        let model = try FlowTransformer(RandomParameters(seed: 1), config: config)
        let parameters = ParameterSet(model.parameters)
        let optimizer = AdamW(learningRate: 3e-3, weightDecay: 0)
        // Images scaled to [-1, 1], [16, 3, 32, 32].
        let samples = (0..<16).map { Shapes.sample(index: $0, seed: 4).image }
        let data = Tensor(shape: [16, 3, 32, 32])
        for (b, image) in samples.enumerated() {
            for c in 0..<3 {
                for i in 0..<1024 { data.data[(b * 3 + c) * 1024 + i] = Float(image.pixels[i * 3 + c]) / 127.5 - 1 }
            }
        }
        var rng = SeededGenerator(seed: 2)
        let context = Tensor.normal([16, 1, 8], using: &rng)
        var losses: [Float] = []
        for _ in 0..<300 {
            let noise = Tensor.normal(data.shape, using: &rng)
            let times = FlowMatching.sampleTimes(16, using: &rng)
            let noisy = FlowMatching.interpolate(data: data, noise: noise, times: times)
            parameters.zeroGradients()
            let loss = meanSquaredError(
                model(noisy, times: times, context: context, parameters),
                target: FlowMatching.velocity(data: data, noise: noise))
            loss.backward()
            optimizer.update(parameters)
            losses.append(loss.value.item)
        }
        // Mean of the first and last 20 steps: a model that predicts nothing scores about
        // E|noise - data|^2 = 1 + E data^2; learning the flow must at least halve it.
        let first = losses.prefix(20).reduce(0, +) / 20, last = losses.suffix(20).reduce(0, +) / 20
        #expect(last < first / 2, "loss \(first) -> \(last)")
    }
}
