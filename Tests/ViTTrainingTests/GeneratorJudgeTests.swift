import Foundation
import Testing
import ViTData
import ViTImage
import ViTTensor
import ViTTestSupport
import ViTTraining
import ViTVision

/// The judges: real Shapes images pass and noise does not, the diversity figure by hand, and
/// Fashion-MNIST images judged as the originals.
@Suite struct GeneratorJudgeTests {
    /// Real images drawn for the evaluation captions (4 each, with jitter) score at least
    /// 99% on every named attribute together; uniform noise scores near chance (all five
    /// attributes right by chance: 1 in 2160).
    @Test func realImagesPassAndNoiseFails() throws {
        let judge = try ShapesJudge.load(folder: repositoryPath("Weights"))
        let (seen, heldOut) = JudgedCaption.evaluationSet()
        var generator = SeededGenerator(seed: 11)
        for captions in [seen, heldOut] {
            let real = captions.map { caption in
                (0..<4).map { _ in
                    Shapes.render(
                        caption.attributes,
                        offset: (generator.nextUniform() * 2 - 1, generator.nextUniform() * 2 - 1))
                }
            }
            let score = try judge.score(captions, images: real)
            #expect(score.allNamedRight >= 0.99, "real images: \(score)")
            let noise = captions.map { _ in
                (0..<4).map { _ in
                    Image(
                        width: 32, height: 32, channels: 3,
                        pixels: (0..<3072).map { _ in UInt8(generator.next() % 256) })
                }
            }
            let noiseScore = try judge.score(captions, images: noise)
            #expect(noiseScore.allNamedRight <= 0.05, "noise: \(noiseScore)")
        }
    }

    /// A 32 x 32 image is judged as Fashion-MNIST padded by 2 pixels: padding the real test
    /// images changes neither the predicted classes nor any pooled feature.
    @Test func normalizedEntropyByHand() {
        let values = ["black", "gray", "navy"]
        #expect(normalizedEntropy(["black", "gray", "navy"], over: values) == 1)
        #expect(normalizedEntropy(["gray", "gray", "gray"], over: values) == 0)
        // -(2/3 ln 2/3 + 1/3 ln 1/3) / ln 3 = 0.579380
        #expect(abs(normalizedEntropy(["gray", "gray", "navy"], over: values) - 0.579_380) < 1e-5)
    }

    /// A 32 x 32 image is judged as Fashion-MNIST padded by 2 pixels: padding the real test
    /// images changes neither the predicted classes nor any pooled feature.
    @Test func paddedFashionMNISTJudgedAsTheOriginal() throws {
        let test = try LabeledImages.named("fashion-mnist", test: true)
        let judge = try FashionMNISTJudge(
            classifier: ImageClassifier.load(path: repositoryPath("Weights/vit-fashion-mnist.safetensors")))
        let images = Array(test.images[0..<64])
        let original = try judge.judge(images), padded = try judge.judge(images.map { $0.padded(by: 2) })
        #expect(original.labels == padded.labels)
        #expect(original.features.shape == [64, judge.classifier.model.config.dim])
        #expect(original.features.scalars == padded.features.scalars)
        // The classifier is right on most of them (92.63% on the whole test set).
        let right = zip(original.labels, test.labels[0..<64]).filter { $0 == $1 }.count
        #expect(right >= 54, "\(right) of 64")
    }
}
