import Foundation
import Testing
import ViTCheckpoint
import ViTCore
import ViTData
import ViTGenerator
import ViTTensor
import ViTTestSupport

/// The flow transformer: zero at the start, the same values with and without gradient
/// recording, parameter gradients against central differences, and its PyTorch twin.
@Suite struct FlowTransformerTests {
    let config = FlowTransformerConfig(
        imageSize: 8, patchSize: 4, dim: 16, depth: 2, numHeads: 2, hiddenDim: 32, contextDim: 6, frequencyDim: 8)

    func inputs() -> (images: Tensor, times: [Float], context: Variable, mask: Tensor) {
        var rng = SeededGenerator(seed: 21)
        let images = Tensor.normal([2, 3, 8, 8], using: &rng), context = Tensor.normal([2, 3, 6], using: &rng)
        let mask = Tensor(shape: [2, 1, 3], values: [0, 0, 0, 0, 0, -1e9])
        return (images, [0.3, 0.85], Variable(context), mask)
    }

    /// A model whose every parameter is random (no zero-initialized layer left).
    func randomModel() throws -> FlowTransformer {
        let model = try FlowTransformer(RandomParameters(seed: 5), config: config)
        var rng = SeededGenerator(seed: 6)
        for (_, tensor) in model.namedTensors {
            for i in 0..<tensor.count { tensor.data[i] = 0.2 * rng.nextNormal() }
        }
        return model
    }

    @Test func startsAtZeroVelocity() throws {
        let model = try FlowTransformer(RandomParameters(seed: 5), config: config)
        let (images, times, context, mask) = inputs()
        let out = model(images, times: times, context: context, mask: mask).value
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
        #expect(unpatchify(Variable(patches), channels: 3, patchSize: 4, gridSize: 2).value.scalars == images.scalars)
    }

    @Test func recordingMatchesInferenceAndFiniteDifferences() throws {
        let model = try randomModel()
        let (images, times, context, mask) = inputs()
        let expected = model(images, times: times, context: context, mask: mask).value
        var rng = SeededGenerator(seed: 9)
        let upstream = Tensor.normal(expected.shape, using: &rng)
        var recorded = Tensor(shape: [])
        lossAndGradients(of: model) {
            let out = model(images, times: times, context: context, mask: mask)
            recorded = out.value
            return (out * Variable(upstream)).sum()
        }
        let same = compare(recorded, expected, atol: 1e-5, rtol: 1e-5)
        #expect(same.passed, "recording against inference: \(same)")
        func loss() -> Double {
            let y = model(images, times: times, context: context, mask: mask).value
            return (0..<y.count).reduce(0.0) { $0 + Double(y.data[$1]) * Double(upstream.data[$1]) }
        }
        // Three elements of every parameter, by central differences (step 1e-2: the
        // truncation and rounding errors stay under the tolerance, as in GradientTests).
        let h: Float = 1e-2
        for (name, variable) in model.parameters {
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

/// The PyTorch twin of the flow transformer (Tests/Reference/flow_transformer.py, float64):
/// the same random weights and inputs give the same velocities, every parameter the same
/// gradient, and 10 AdamW steps on the flow-matching loss the same losses.
@Suite struct FlowTransformerTwinTests {
    @Test func matchesPyTorch() throws {
        let golden = try SafeTensorsFile(path: repositoryPath("Tests/ViTGeneratorTests/Golden/flow-debug.safetensors"))
        func model() throws -> FlowTransformer {
            var tensors: [String: Tensor] = [:]
            for name in golden.names where name.hasPrefix("param.") {
                tensors[String(name.dropFirst("param.".count))] = try golden.tensor(name).copy()
            }
            let store = WeightStore(tensors, origin: "flow-debug")
            let config = FlowTransformerConfig(
                imageSize: 8, patchSize: 4, dim: 16, depth: 2, numHeads: 2, hiddenDim: 32, contextDim: 6,
                frequencyDim: 8)
            let model = try FlowTransformer(store, config: config)
            try store.finish()
            return model
        }
        let images = try golden.tensor("images"), times = try golden.tensor("times").scalars
        let context = Variable(try golden.tensor("context")), mask = try golden.tensor("mask")
        let upstream = try golden.tensor("upstream")

        let twin = try model()
        var outputs = Tensor(shape: [])
        lossAndGradients(of: twin) {
            let out = twin(images, times: times, context: context, mask: mask)
            outputs = out.value
            return (out * Variable(upstream)).sum()
        }
        let outputCheck = compare(outputs, try golden.tensor("outputs"), atol: 1e-5)
        #expect(outputCheck.passed, "velocities: \(outputCheck)")
        for (name, variable) in twin.parameters {
            let check = compare(
                try #require(variable.gradient), try golden.tensor("grad.\(name)"), atol: 1e-5, rtol: 1e-3)
            #expect(check.passed, "gradient of \(name): \(check)")
        }

        let trained = try model()
        let target = try golden.tensor("target")
        let optimizer = AdamW(learningRate: 1e-3, weightDecay: 0.01)
        var losses: [Float] = []
        for _ in 0..<10 {
            let loss = lossAndGradients(of: trained) {
                meanSquaredError(trained(images, times: times, context: context, mask: mask), target: target)
            }
            losses.append(loss.value.item)
            optimizer.update(trained.parameters)
        }
        let lossCheck = compare(losses, try golden.tensor("adamw_losses").scalars, atol: 1e-5)
        #expect(lossCheck.passed, "AdamW losses: \(lossCheck)")
    }
}
