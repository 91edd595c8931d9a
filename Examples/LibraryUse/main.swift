// SwiftViT as a library: classify an image with the shipped Fashion-MNIST model, show
// where it looks, then train a small ViT to name the colour in Shapes images and save it.
//
//     swift run -c release library-example [IMAGE] [OUTPUT.safetensors]
//
// Run it from the repository's root (it reads Weights/ and Images/).
import Foundation
import ViTCore
import ViTData
import ViTImage
import ViTTensor
import ViTTraining
import ViTVision

let arguments = Array(CommandLine.arguments.dropFirst())
let imagePath = arguments.first ?? "Images/ankle-boot.png"
let outputPath = arguments.count > 1 ? arguments[1] : NSTemporaryDirectory() + "shapes-color.safetensors"

do {
    // 1. Classify: the model file carries its labels and preprocessing.
    let classifier = try ImageClassifier.load(path: "Weights/vit-fashion-mnist.safetensors")
    let image = try Image.read(path: imagePath)
    let batch = Tensor.stack([try classifier.input(for: image)])  // [1, 3, 28, 28]
    let probabilities = classifier.probabilities(batch)  // [1, 10]
    let ranked = classifier.labels.indices.sorted { probabilities.data[$0] > probabilities.data[$1] }
    print("\(imagePath):")
    for index in ranked.prefix(3) {
        let label = classifier.labels[index].padding(toLength: 12, withPad: " ", startingAt: 0)
        print("  \(label) " + String(format: "%.4f", probabilities.data[index]))
    }

    // 2. Attention rollout from the class token over the 7 x 7 grid of patches, as text.
    let maps = classifier.model.attentionMaps(batch)
    let largest = maps.rollout.max() ?? 1
    print("attention rollout (darker characters: more attention):")
    for row in 0..<maps.gridHeight {
        let cells = (0..<maps.gridWidth).map { column -> Character in
            let shades = Array(" .:-=+*#%@")
            let level = maps.rollout[row * maps.gridWidth + column] / largest
            return shades[min(shades.count - 1, Int(level * Float(shades.count)))]
        }
        print("  " + String(cells.flatMap { [$0, $0] }))
    }

    // 3. Train: a two-block ViT learns the colour of the shape in 32 x 32 Shapes images.
    let train = LabeledImages.shapes(attribute: "color", count: 4000, seed: 0)
    let test = LabeledImages.shapes(attribute: "color", count: 500, seed: 1)
    let config = ViTConfig(
        imageSize: 32, patchSize: 8, dim: 64, depth: 2, numHeads: 4, hiddenDim: 128,
        numClasses: train.classNames.count, layerNormEps: 1e-6)
    let untrained = ImageClassifier(
        model: try VisionTransformer(RandomParameters(seed: 0), config: config), labels: train.classNames,
        profile: .shapes, format: .swiftViT, path: outputPath)
    let trainer = ClassifierTrainer(
        classifier: untrained, options: TrainingOptions(epochs: 3, batchSize: 64, learningRate: 2e-3, seed: 0))
    let batches = try BatchMaker(data: train, profile: .shapes, augmentation: nil, seed: 0)
    while !trainer.isFinished {
        let result = try trainer.trainEpoch(batches)
        print(
            String(
                format: "shapes colour, epoch %d: loss %.4f, training accuracy %.4f", trainer.epoch, result.loss,
                result.accuracy))
    }
    let evaluation = try evaluate(trainer.classifier, on: test)
    print(String(format: "test accuracy %.4f on %d images", evaluation.accuracy, evaluation.count))
    try trainer.classifier.save(path: outputPath)
    print("saved \(outputPath)")
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
