import Testing
import ViTCore
import ViTTensor
import ViTTestSupport
import ViTText

/// Training the text encoder on padded batches: the padding mask keeps padded tokens out of
/// every real token's attention, so a padded batch's gradients are the sum of each
/// sentence's gradients computed alone, without padding.
@Suite struct TextEncoderTrainingTests {
    let config = TextEncoderConfig(
        vocabSize: 30, maxLength: 16, typeVocabSize: 2, dim: 16, depth: 2, numHeads: 2, hiddenDim: 32,
        layerNormEps: 1e-12, activation: .none)

    @Test func paddedBatchGradientsAreTheSumOfEachSentence() throws {
        let encoder = try TextEncoder(RandomParameters(seed: 3), config: config)
        let sentences = [[2, 7, 9, 11, 3], [2, 5, 3], [2, 8, 13, 21, 4, 6, 3]]
        let (n, d) = (7, config.dim)
        var rng = SeededGenerator(seed: 4)
        // Loss: sum over real tokens of states * upstream, with a fixed random upstream per token.
        let upstream = sentences.map { Tensor.normal([1, $0.count, d], using: &rng) }

        var expected: [String: [Double]] = [:]
        for (sentence, weights) in zip(sentences, upstream) {
            lossAndGradients(of: encoder) {
                (encoder(ids: [sentence], mask: [sentence.map { _ in 1 }]) * Variable(weights)).sum()
            }
            for (name, variable) in encoder.parameters {
                let g = variable.gradient!.scalars.map(Double.init)
                expected[name] = zip(expected[name] ?? [Double](repeating: 0, count: g.count), g).map { $0 + $1 }
            }
        }

        let ids = sentences.map { $0 + [Int](repeating: 0, count: n - $0.count) }
        let mask = sentences.map { [Int](repeating: 1, count: $0.count) + [Int](repeating: 0, count: n - $0.count) }
        let batchWeights = Tensor(shape: [sentences.count, n, d])  // zero on padding
        for (b, weights) in upstream.enumerated() {
            (batchWeights.data + b * n * d).update(from: weights.data, count: weights.count)
        }
        lossAndGradients(of: encoder) { (encoder(ids: ids, mask: mask) * Variable(batchWeights)).sum() }
        // 1e-5 absolute, and for the large sums (type_embed's gradient adds all 15 tokens',
        // about 95) a few float32 ulps relative: the batch sums the same terms in another order.
        for (name, variable) in encoder.parameters {
            let check = compare(variable.gradient!.scalars, expected[name]!.map { Float($0) }, atol: 1e-5, rtol: 1e-6)
            #expect(check.passed, "\(name): \(check)")
        }
    }

    @Test func frozenGroupsKeepTheirGradientsEmpty() throws {
        let encoder = try TextEncoder(RandomParameters(seed: 3), config: config)
        let attention = try #require(TextEncoder.parameterGroups.first { $0.name == "attention" })
        encoder.setTrainable(false, attention)
        lossAndGradients(of: encoder) { encoder(ids: [[2, 5, 3]], mask: [[1, 1, 1]]).sum() }
        for (name, variable) in encoder.parameters {
            let frozen = name.hasPrefix("blocks.0.attn.") || name.hasPrefix("blocks.1.attn.")
            #expect((variable.gradient == nil) == frozen, "\(name)")
        }
    }
}
