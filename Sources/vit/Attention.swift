import ArgumentParser
import Foundation
import ViTCheckpoint
import ViTImage
import ViTTensor
import ViTVision

struct AttentionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "Show where a Vision Transformer looks in an image.",
        discussion: """
            Writes heat maps over the model's input image (after resizing and cropping), as \
            tiles in this order: the input; attention rollout (Abnar and Zuidema 2020: \
            head-averaged attention mixed with the identity for the residual, multiplied through \
            all blocks); then the last block's class-token attention, one tile per head. \
            --tensor saves the raw maps: "rollout" [gh, gw] and "heads" [H, gh, gw].
            """)

    @Argument(help: "A PNG or JPEG image.")
    var image: String

    @Option(
        help:
            "An HF ViT folder, a timm folder, a SwiftViT .safetensors file or a Hugging Face name ORG/NAME[@REVISION] (from its cache, fetched when absent) (default: the shipped Fashion-MNIST model)."
    )
    var model: String?

    @Option(name: [.customShort("o"), .long], help: "The PNG to write.")
    var output: String?

    @Option(help: "Also write the maps as safetensors.")
    var tensor: String?

    @Option(help: "Tiles per row.")
    var columns: Int = 4

    @Option(help: "Heat-map opacity, 0 to 1.")
    var opacity: Float = 0.5

    @Option(
        help: "Override the model's preprocessing: \(PreprocessProfile.builtIn.map(\.name).joined(separator: ", ")).")
    var profile: String?

    @OptionGroup var limits: ImageLimits

    func validate() throws {
        if output == nil && tensor == nil {
            throw ValidationError("nothing to write: give -o OUT.png, --tensor OUT.safetensors, or both")
        }
        guard columns > 0 else { throw ValidationError("--columns must be at least 1") }
        guard (0...1).contains(opacity) else { throw ValidationError("--opacity must be between 0 and 1") }
        try checkProfileName(profile)
    }

    func run() throws {
        var classifier = try ImageClassifier.load(path: model.map(modelPath) ?? defaultModelPath())
        classifier.model.markParametersConstant()
        if let profile { classifier = classifier.withProfile(PreprocessProfile.named(profile)!) }
        let input: Image
        do {
            input = try classifier.profile.apply(to: try limits.read(image))
        } catch let error as PreprocessError {
            throw error.naming(image)
        }
        let pixels = classifier.profile.normalizedTensor(input)
        let config = classifier.model.config
        if let problem = classifier.model.inputProblem(
            height: pixels.shape[1], width: pixels.shape[2], channels: pixels.shape[0])
        {
            throw CLIFailure("\(image): \(problem)")
        }
        // Every layer's attention weights are kept for the rollout: depth x heads x N^2 floats.
        let tokens = classifier.model.tokenCount(height: pixels.shape[1], width: pixels.shape[2])
        let weightBytes = config.depth * config.numHeads * tokens * tokens * MemoryLayout<Float>.size
        guard weightBytes <= 1 << 30 else {
            throw CLIFailure(
                "\(image): the attention maps of \(tokens) tokens in \(config.depth) layers of \(config.numHeads) heads need \(weightBytes >> 20) MB, more than the limit of 1024 MB"
            )
        }
        let maps = classifier.model.attentionMaps(pixels.reshaped([1] + pixels.shape))
        let (gh, gw) = (maps.gridHeight, maps.gridWidth)
        if let output {
            let overlay = { (values: [Float]) in
                input.overlaid(heatMap: values, gridWidth: gw, gridHeight: gh, opacity: opacity)
            }
            let tiles = [input, overlay(maps.rollout)] + maps.lastLayerHeads.map(overlay)
            try Image.tiled(tiles, columns: columns).writePNG(
                path: output,
                text: [
                    ("Software", "SwiftViT \(swiftViTVersion)"),
                    ("Source", image),
                    (
                        "Description",
                        "input, attention rollout, last block's class-token attention for heads 1-\(maps.lastLayerHeads.count)"
                    ),
                ])
            print(
                "\(output): input, rollout and \(maps.lastLayerHeads.count) heads, \(input.width)x\(input.height) tiles"
            )
        }
        if let tensor {
            let heads = Tensor(
                shape: [maps.lastLayerHeads.count, gh, gw], values: maps.lastLayerHeads.flatMap { $0 })
            try writeSafeTensors(
                ["rollout": Tensor(shape: [gh, gw], values: maps.rollout), "heads": heads],
                metadata: ["source": image, "model": model ?? defaultModelPath()], toPath: tensor)
            print("\(tensor): rollout [\(gh), \(gw)], heads [\(maps.lastLayerHeads.count), \(gh), \(gw)]")
        }
    }
}
