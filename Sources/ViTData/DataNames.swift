import Foundation
import ViTImage
import ViTTensor

// Data sets by the names the command line takes (`--data`).

extension LabeledImages {
    /// Training and test images of the Shapes data set labeled by one attribute
    /// ("shapes:color"): indices 0..<20000 of seed 0 and 0..<2000 of seed 1, every pair.
    public static let shapesCounts = (train: 20_000, test: 2_000)

    /// Where "mnist" is looked for: the folder of MNIST's IDX files, as Debian lays out
    /// Fashion-MNIST's.
    public static let mnistFolder = "/usr/share/datasets/mnist"

    /// The training or test split of a data set named "fashion-mnist" (Debian's
    /// dataset-fashion-mnist), "mnist" (in `mnistFolder`), "shapes:ATTRIBUTE", an IDX
    /// folder, or an ImageFolder with train/ and test/.
    public static func named(_ name: String, test: Bool) throws -> LabeledImages {
        if name.hasPrefix("shapes:") {
            let attribute = String(name.dropFirst("shapes:".count))
            guard Shapes.values(of: attribute) != nil else {
                throw DatasetError(
                    path: name, reason: "the attribute must be shape, color, size, position or background")
            }
            return shapes(
                attribute: attribute, count: test ? shapesCounts.test : shapesCounts.train, seed: test ? 1 : 0)
        }
        if name == "fashion-mnist" {
            guard FileManager.default.fileExists(atPath: fashionMNISTFolder) else {
                throw DatasetError(
                    path: fashionMNISTFolder,
                    reason: "Fashion-MNIST is not installed (apt-get install -y dataset-fashion-mnist)")
            }
            return try idxFolder(
                fashionMNISTFolder, test: test, classNames: fashionMNISTClasses)
        }
        if name == "mnist" {
            guard FileManager.default.fileExists(atPath: mnistFolder) else {
                throw DatasetError(
                    path: mnistFolder,
                    reason: "MNIST is not installed here; give the folder that holds its IDX files instead of 'mnist'")
            }
            return try idxFolder(mnistFolder, test: test)
        }
        guard FileManager.default.fileExists(atPath: name) else {
            throw DatasetError(
                path: name,
                reason:
                    "no such data (fashion-mnist, mnist, shapes:ATTRIBUTE, an IDX folder, or an ImageFolder with train/ and test/)"
            )
        }
        let prefix = test ? "t10k" : "train"
        if ["", ".gz"].contains(where: {
            FileManager.default.fileExists(atPath: "\(name)/\(prefix)-images-idx3-ubyte\($0)")
        }) {
            return try idxFolder(name, test: test)
        }
        return try imageFolder(test ? "\(name)/test" : "\(name)/train")
    }
}

extension CaptionedImages {
    /// Training images of the Shapes set for a generator: indices 0..<20000 of seed 0 from
    /// the train split (the held-out shape/colour pairs never appear).
    public static let shapesTrainingCount = 20_000

    /// The captioned training data named "shapes", "fashion-mnist" (class captions in varied
    /// phrasings, images padded to 32 x 32) or a captioned folder (metadata.jsonl).
    public static func named(_ name: String) throws -> CaptionedImages {
        switch name {
        case "shapes":
            let samples = (0..<shapesTrainingCount).map { Shapes.sample(index: $0, seed: 0, split: .train) }
            return CaptionedImages(
                images: samples.map(\.image), captions: samples.map(\.caption),
                attributes: samples.map(\.attributes.fields))
        case "fashion-mnist":
            let labeled = try LabeledImages.named("fashion-mnist", test: false)
            return CaptionedImages(
                images: labeled.images.map { $0.padded(by: 2) },
                captions: labeled.labels.indices.map { fashionMNISTCaption(label: labeled.labels[$0], index: $0) },
                attributes: labeled.labels.map { ["class": LabeledImages.fashionMNISTClasses[$0]] })
        default:
            guard FileManager.default.fileExists(atPath: name) else {
                throw DatasetError(
                    path: name, reason: "no such data (shapes, fashion-mnist, or a folder with metadata.jsonl)")
            }
            return try folder(name)
        }
    }

    /// Words for each Fashion-MNIST class, in label order.
    public static let fashionMNISTPhrases = [
        ["a t-shirt", "a top", "a tee"], ["a pair of trousers", "trousers", "a pair of pants"],
        ["a pullover", "a sweater", "a jumper"], ["a dress"], ["a coat", "a jacket"],
        ["a sandal", "a pair of sandals"], ["a shirt", "a button-up shirt"], ["a sneaker", "a running shoe"],
        ["a bag", "a handbag"], ["an ankle boot", "a boot"],
    ]

    /// A caption for Fashion-MNIST sample `index` of class `label`, a function of both alone.
    public static func fashionMNISTCaption(label: Int, index: Int) -> String {
        var generator = SeededGenerator(seed: derivedSeed(0x464D_4E49_5354, UInt64(index)))  // "FMNIST"
        let phrases = fashionMNISTPhrases[label]
        let phrase = phrases[Int(generator.next() % UInt64(phrases.count))]
        switch generator.next() % 4 {
        case 0: return phrase
        case 1: return "a photo of \(phrase)"
        case 2: return "a grayscale picture of \(phrase)"
        default: return "\(phrase) on a black background"
        }
    }
}
