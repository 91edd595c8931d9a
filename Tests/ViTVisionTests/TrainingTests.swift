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
        let parameters = ParameterSet(classifier.model.parameters)
        let logits = classifier.model(x, parameters)
        let logitCheck = compare(logits.value, try golden.tensor("logits"), atol: 1e-4)
        #expect(logitCheck.passed, "logits: \(logitCheck)")
        let loss = crossEntropy(logits, labels: labels, labelSmoothing: 0.1)
        #expect(Swift.abs(loss.value.item - (try golden.tensor("loss")).item) < 1e-5)
        loss.backward()
        for (name, variable) in parameters.named {
            let expected = try golden.tensor("grad.\(name)")
            let check = compare(variable.gradient!, expected, atol: 1e-5, rtol: 1e-3)
            #expect(check.passed, "gradient of \(name): \(check)")
        }
        // Ten AdamW steps from the same start (lr 1e-3, weight decay 0.05): the losses.
        let fresh = try ImageClassifier.load(path: micro).model
        let trained = ParameterSet(fresh.parameters)
        let optimizer = AdamW(learningRate: 1e-3, weightDecay: 0.05)
        var losses: [Float] = []
        for _ in 0..<10 {
            trained.zeroGradients()
            let loss = crossEntropy(fresh(x, trained), labels: labels, labelSmoothing: 0.1)
            losses.append(loss.value.item)
            loss.backward()
            optimizer.update(trained)
        }
        let lossCheck = compare(losses, try golden.tensor("adamw_losses").scalars, atol: 1e-4)
        #expect(lossCheck.passed, "AdamW losses: \(lossCheck)")
    }
}

/// The cross-attention layer on Variables computes what it computes on Tensors, and its
/// parameters all receive gradients.
@Suite struct CrossAttentionLayerTests {
    @Test func variableForwardMatchesTensorForward() throws {
        let layer = try CrossAttention(RandomParameters(seed: 3), dim: 8, contextDim: 6, numHeads: 2)
        var rng = SeededGenerator(seed: 5)
        let x = Tensor.normal([2, 3, 8], using: &rng), context = Tensor.normal([2, 5, 6], using: &rng)
        let mask = Tensor(shape: [2, 1, 5], values: [0, 0, 0, 0, 0, 0, 0, 0, -1e9, -1e9])
        let parameters = ParameterSet(layer.parameters)
        let out = layer(Variable(x), context: Variable(context), mask: mask, parameters)
        #expect(out.value.scalars == layer(x, context: context, mask: mask).scalars)
        out.sum().backward()
        for (name, variable) in parameters.named {
            let gradient = try #require(variable.gradient, "\(name) has no gradient")
            #expect(gradient.scalars.contains { $0 != 0 }, "\(name)")
        }
    }
}
