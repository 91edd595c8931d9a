import ArgumentParser
import Foundation
import ViTVision

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model's configuration, size, cost, preprocessing and labels.")

    @Argument(
        help:
            "An HF ViT folder, a timm folder, a SwiftViT .safetensors file or a Hugging Face name ORG/NAME[@REVISION] (from its cache, fetched when absent)."
    )
    var model: String

    func run() throws {
        let path = try modelPath(model)
        let classifier = try ImageClassifier.load(path: path)
        let c = classifier.model.config
        let parameterCount = classifier.model.parameters.reduce(0) { $0 + $1.variable.value.count }
        let p = classifier.profile
        let resize: String
        switch p.resize {
        case .exact(let w, let h): resize = "\(w)x\(h)"
        case .shorterSide(let s): resize = "shorter side \(s)"
        }
        let crop = p.crop.map { ", center crop \($0.width)x\($0.height)" } ?? ""
        print(
            """
            model:        \(path) (\(classifier.format.rawValue))
            architecture: ViT, image \(c.imageSize), patch \(c.patchSize), width \(c.dim), depth \(c.depth), \
            heads \(c.numHeads), MLP \(c.hiddenDim), pool \(c.pool.rawValue), LayerNorm eps \(c.layerNormEps)
            parameters:   \(parameterCount) (\(String(format: "%.2f", Double(parameterCount) / 1e6)) M)
            cost:         \(String(format: "%.2f", c.gflops)) GFLOPs per image
            preprocess:   \(p.name): resize \(resize) \(p.filter.rawValue)\(crop), rescale \(p.rescale), \
            mean \(p.mean), std \(p.std)
            labels:       \(classifier.labels.count): \(classifier.labels.prefix(10).joined(separator: ", "))\
            \(classifier.labels.count > 10 ? ", ..." : "")
            """)
    }
}
