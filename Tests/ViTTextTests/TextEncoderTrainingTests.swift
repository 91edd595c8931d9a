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
        // Sum of |each token's term| in type_embed's gradient (row 0, every token has type 0):
        // alone, a sentence's pos_embed gradient row p is exactly token p's term.
        var typeTermMagnitudes = [Double](repeating: 0, count: d)
        for (sentence, weights) in zip(sentences, upstream) {
            lossAndGradients(of: encoder) {
                (encoder(ids: [sentence], mask: [sentence.map { _ in 1 }]) * Variable(weights)).sum()
            }
            for (name, variable) in encoder.parameters {
                let g = variable.gradient!.scalars.map(Double.init)
                expected[name] = zip(expected[name] ?? [Double](repeating: 0, count: g.count), g).map { $0 + $1 }
            }
            let positionGradient = try #require(encoder.parameters.first { $0.0 == "pos_embed.weight" }?.1.gradient)
            for p in 0..<sentence.count {
                for j in 0..<d { typeTermMagnitudes[j] += abs(Double(positionGradient.scalars[p * d + j])) }
            }
        }

        let ids = sentences.map { $0 + [Int](repeating: 0, count: n - $0.count) }
        let mask = sentences.map { [Int](repeating: 1, count: $0.count) + [Int](repeating: 0, count: n - $0.count) }
        let batchWeights = Tensor(shape: [sentences.count, n, d])  // zero on padding
        for (b, weights) in upstream.enumerated() {
            (batchWeights.data + b * n * d).update(from: weights.data, count: weights.count)
        }
        lossAndGradients(of: encoder) { (encoder(ids: ids, mask: mask) * Variable(batchWeights)).sum() }
        // Every gradient within 1e-5 plus 1e-6 relative, except type_embed's row 0, which adds
        // all 15 tokens' terms, and these largely cancel (in one column their magnitudes add to
        // about 500, the sum is about 5). The batch adds them in another order; a float32 sum of
        // n terms is within (n - 1) * 2^-24 * sum |term| of the exact sum (Higham, "Accuracy and
        // Stability of Numerical Algorithms", section 4.2), so two orders within twice that.
        let tokenCount = sentences.map(\.count).reduce(0, +)
        for (name, variable) in encoder.parameters where name != "type_embed.weight" {
            let check = compare(variable.gradient!.scalars, expected[name]!.map { Float($0) }, atol: 1e-5, rtol: 1e-6)
            #expect(check.passed, "\(name): \(check)")
        }
        let typeGradient = try #require(encoder.parameters.first { $0.0 == "type_embed.weight" }?.1.gradient)
        let typeExpected = try #require(expected["type_embed.weight"])
        for j in 0..<(2 * d) {
            let summationBound = j < d ? 2 * Double(tokenCount - 1) * 0x1p-24 * typeTermMagnitudes[j] : 0
            let error = abs(Double(typeGradient.scalars[j]) - typeExpected[j])
            #expect(error <= 1e-5 + summationBound, "type_embed.weight[\(j)]: off by \(error)")
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
