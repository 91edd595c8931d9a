import Foundation
import Testing
import ViTCheckpoint
import ViTCore
import ViTTensor
import ViTTestSupport
import ViTVision

private let micro = repositoryPath("Tests/ViTVisionTests/Golden/micro-train")

/// The whole-model debug state from PyTorch (Tests/Reference/train_debug.py): logits, loss,
/// every parameter gradient and the losses of 10 AdamW steps of a micro ViT.
@Suite struct TrainingDebugStateTests {
    @Test func matchesPyTorch() throws {
        let classifier = try ImageClassifier.load(path: micro)
        let golden = try SafeTensorsFile(path: "\(micro)/debug.safetensors")
        let x = try golden.tensor("inputs")
        let labels = try golden.tensor("labels").scalars.map { Int($0) }
        let model = classifier.model
        var logits = Tensor(shape: [])
        let loss = lossAndGradients(of: model) {
            let output = model(x)
            logits = output.value
            return crossEntropy(output, labels: labels, labelSmoothing: 0.1)
        }
        let logitCheck = compare(logits, try golden.tensor("logits"), atol: 1e-4)
        #expect(logitCheck.passed, "logits: \(logitCheck)")
        #expect(Swift.abs(loss.value.item - (try golden.tensor("loss")).item) < 1e-5)
        for (name, variable) in model.parameters {
            let expected = try golden.tensor("grad.\(name)")
            let check = compare(variable.gradient!, expected, atol: 1e-5, rtol: 1e-3)
            #expect(check.passed, "gradient of \(name): \(check)")
        }
        // Ten AdamW steps from the same start (lr 1e-3, weight decay 0.05): the losses.
        let fresh = try ImageClassifier.load(path: micro).model
        let optimizer = AdamW(learningRate: 1e-3, weightDecay: 0.05)
        var losses: [Float] = []
        for _ in 0..<10 {
            let loss = lossAndGradients(of: fresh) { crossEntropy(fresh(x), labels: labels, labelSmoothing: 0.1) }
            losses.append(loss.value.item)
            optimizer.update(fresh.parameters)
        }
        let lossCheck = compare(losses, try golden.tensor("adamw_losses").scalars, atol: 1e-4)
        #expect(lossCheck.passed, "AdamW losses: \(lossCheck)")
    }
}

/// The cross-attention layer computes the same with gradient recording (separate
/// operations) as without (residual fused into the projection), and its parameters all
/// receive gradients.
@Suite struct CrossAttentionLayerTests {
    @Test func recordingMatchesInference() throws {
        let layer = try CrossAttention(RandomParameters(seed: 3), dim: 8, contextDim: 6, numHeads: 2)
        var rng = SeededGenerator(seed: 5)
        let x = Variable(Tensor.normal([2, 3, 8], using: &rng)),
            context = Variable(Tensor.normal([2, 5, 6], using: &rng))
        let mask = Tensor(shape: [2, 1, 5], values: [0, 0, 0, 0, 0, 0, 0, 0, -1e9, -1e9])
        let inference = layer(x, context: context, mask: mask, residual: x).value
        var recorded = Tensor(shape: [])
        lossAndGradients(of: layer) {
            let out = layer(x, context: context, mask: mask, residual: x)
            recorded = out.value
            return out.sum()
        }
        let check = compare(recorded, inference, atol: 1e-6)
        #expect(check.passed, "\(check)")
        for (name, variable) in layer.parameters {
            let gradient = try #require(variable.gradient, "\(name) has no gradient")
            #expect(gradient.scalars.contains { $0 != 0 }, "\(name)")
        }
    }
}

/// adaLN-Zero modulation: zero at the start, the hand-computed chunks from given weights, the
/// same values on Variables, and the gradient of the conditioning by central differences.
@Suite struct ModulationTests {
    @Test func startsAtZero() throws {
        let modulation = try Modulation(RandomParameters(seed: 1), conditionDim: 3, dim: 4, chunks: 2)
        var rng = SeededGenerator(seed: 2)
        let x = Variable(Tensor.normal([2, 5, 4], using: &rng)), c = Variable(Tensor.normal([2, 3], using: &rng))
        let chunks = modulation(c)
        #expect(
            chunks.count == 2 && chunks.allSatisfy { $0.shape == [2, 1, 4] && $0.value.scalars.allSatisfy { $0 == 0 } })
        #expect(modulate(x, shift: chunks[0], scale: chunks[1]).value.scalars == x.value.scalars)
    }

    @Test func handValuesAndGradient() throws {
        // One condition c = [1, -2] of width 2, chunks of width 1: shift = w0 . silu(c) + b0,
        // scale = w1 . silu(c) + b1 with silu(1) = 0.7310586, silu(-2) = -0.23840584.
        let store = WeightStore(
            [
                "linear.weight": Tensor(shape: [2, 2], values: [0.5, 1, -1, 2]),
                "linear.bias": Tensor(shape: [2], values: [0.1, -0.2]),
            ], origin: "test")
        let modulation = try Modulation(store, conditionDim: 2, dim: 1, chunks: 2)
        let c = Tensor(shape: [1, 2], values: [1, -2])
        let (s1, s2) = (0.731_058_6, -0.238_405_84)
        let chunks = modulation(Variable(c))
        #expect(Swift.abs(Double(chunks[0].value.item) - (0.5 * s1 + s2 + 0.1)) < 1e-6)
        #expect(Swift.abs(Double(chunks[1].value.item) - (-s1 + 2 * s2 - 0.2)) < 1e-6)

        let x = Variable(Tensor(shape: [1, 3, 1], values: [0.3, -1.2, 2]))
        let cv = Variable(c, requiresGradient: true)
        recordingGradients {
            let v = modulation(cv)
            modulate(x, shift: v[0], scale: v[1]).sum().backward()
        }
        for i in 0..<2 {
            let numerical = Double(
                centralDifference(c, at: i, step: 1e-3) {
                    let m = modulation(Variable(c))
                    return modulate(x, shift: m[0], scale: m[1]).value.scalars.reduce(0) { $0 + Double($1) }
                })
            let analytic = Double(cv.gradient!.scalars[i])
            #expect(Swift.abs(analytic - numerical) < 1e-3 * max(1, Swift.abs(numerical)), "dc[\(i)]")
        }
    }
}

/// Freezing groups select keys by prefix components, never by substring.
@Suite struct ParameterGroupTests {
    @Test func patternsMatchWholeComponents() {
        let attention = ParameterGroup("attention", ["blocks.*.attn"])
        #expect(attention.contains("blocks.3.attn.qkv.weight"))
        #expect(!attention.contains("blocks.3.attn_norm.weight"))
        #expect(!attention.contains("attn"))
        #expect(!attention.contains("decoder.blocks.3.attn.qkv.weight"))
        let norm = ParameterGroup("norm", ["norm"])
        #expect(
            norm.contains("norm.weight") && !norm.contains("blocks.0.norm1.weight") && !norm.contains("fc_norm.bias"))
    }

    /// Every parameter of a ViT (token and avg pool) is in exactly one of its groups.
    @Test(arguments: [ViTConfig.Pool.token, .avg]) func visionTransformerGroupsPartitionTheParameters(
        pool: ViTConfig.Pool
    ) throws {
        let config = ViTConfig(
            imageSize: 8, patchSize: 4, dim: 8, depth: 2, numHeads: 2, hiddenDim: 16, numClasses: 3,
            layerNormEps: 1e-6, pool: pool)
        let model = try VisionTransformer(RandomParameters(seed: 1), config: config)
        for (name, _) in model.parameters {
            let groups = VisionTransformer.parameterGroups.filter { $0.contains(name) }.map(\.name)
            #expect(groups.count == 1, "\(name): \(groups)")
        }
    }
}
