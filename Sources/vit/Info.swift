import ArgumentParser
import Foundation
import ViTCheckpoint
import ViTGenerator
import ViTTraining
import ViTVision

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model's configuration, size, cost, preprocessing and labels.",
        discussion: """
            A caption generator's file (vit train generator) shows its flow transformer, size, \
            text model and training instead.
            """)

    @Argument(
        help:
            "An HF ViT folder, a timm folder, a SwiftViT .safetensors file or a Hugging Face name ORG/NAME[@REVISION] (from its cache, fetched when absent)."
    )
    var model: String

    func run() throws {
        let path = try modelPath(model)
        if path.hasSuffix(".safetensors"), let file = try? SafeTensorsFile(path: path),
            file.metadata["kind"] == CaptionGenerator.fileKind
        {
            try describeGenerator(file)
            return
        }
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

    /// Prints what a caption generator file holds, read from its header alone.
    private func describeGenerator(_ file: SafeTensorsFile) throws {
        let c = try CaptionGenerator.config(of: file, path: file.path)
        let auxiliary = (try? CaptionGenerator.auxiliaryPrefixes(in: file)) ?? []
        let parameterCount = file.entries.filter { name, _ in !auxiliary.contains { name.hasPrefix($0) } }
            .reduce(0) { $0 + $1.value.shape.reduce(1, *) }
        var lines = [
            "model:        \(file.path) (SwiftViT caption generator)",
            "architecture: flow transformer, image \(c.imageSize), patch \(c.patchSize), channels \(c.channels), "
                + "width \(c.dim), depth \(c.depth), heads \(c.numHeads), MLP \(c.hiddenDim), "
                + "text width \(c.contextDim), time frequencies \(c.frequencyDim)",
            "parameters:   \(parameterCount) (\(String(format: "%.2f", Double(parameterCount) / 1e6)) M)",
            "text model:   \(file.metadata["text_model"] ?? "not named")",
        ]
        // The history `vit train generator` writes, one record per epoch.
        if let text = file.metadata["training"],
            let epochs = try? JSONDecoder().decode([GeneratorEpochRecord].self, from: Data(text.utf8)),
            let last = epochs.last
        {
            let seconds = epochs.reduce(0) { $0 + $1.seconds }
            lines.append(
                "training:     \(epochs.count) epochs, \(last.step) steps, last epoch's loss "
                    + "\(String(format: "%.6g", Double(last.loss))), \(String(format: "%.1f", seconds / 3600)) h")
        }
        print(lines.joined(separator: "\n"))
    }
}
