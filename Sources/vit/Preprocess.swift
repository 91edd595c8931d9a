import ArgumentParser
import Foundation
import ViTCheckpoint
import ViTImage
import ViTTensor

struct Preprocess: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write an image exactly as a model sees it, to compare with HF or timm.",
        discussion: """
            Decodes IMAGE to RGB as Pillow does, then resizes and crops it with the profile's \
            Pillow-exact filter. OUT.png holds the 8-bit result before normalization; with \
            --tensor, the normalized [3, H, W] Float32 input is written as safetensors \
            (tensor "pixel_values"). \
            Profiles: \(PreprocessProfile.builtIn.map(\.name).joined(separator: ", ")).
            """)

    @Argument(help: "A PNG or JPEG file.")
    var image: String

    @Option(help: "Preprocessing profile.")
    var profile: String = PreprocessProfile.hfViT.name

    @Option(name: .shortAndLong, help: "Where to write the preprocessed image (PNG).")
    var output: String?

    @Option(help: "Where to write the normalized input tensor (safetensors).")
    var tensor: String?

    @OptionGroup var limits: ImageLimits

    func validate() throws {
        try checkProfileName(profile)
        guard output != nil || tensor != nil else {
            throw ValidationError("nothing to write: give -o OUT.png, --tensor OUT.safetensors, or both")
        }
    }

    func run() throws {
        let profile = PreprocessProfile.named(profile)!
        let decoded = try limits.read(image)
        let input: Image
        do {
            input = try profile.apply(to: decoded)
        } catch {
            throw error.naming(image)
        }
        if let output {
            try input.writePNG(
                path: output,
                text: [
                    ("Software", "SwiftViT \(swiftViTVersion)"),
                    ("Source", image),
                    ("Profile", profile.name),
                ])
        }
        if let tensor {
            let pixels = profile.normalizedTensor(input)
            let description = try sortedJSON(profile)
            try writeSafeTensors(
                ["pixel_values": pixels],
                metadata: ["source": image, "preprocess": description],
                toPath: tensor)
        }
    }
}

/// The decoding budget of the commands that read images.
struct ImageLimits: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Refuse images with more pixels than this, from their header, before decoding (decompression bombs).",
            valueName: "pixels"))
    var maxPixels: Int = Image.defaultMaxPixels

    func validate() throws {
        guard maxPixels > 0 else { throw ValidationError("--max-pixels must be positive") }
    }

    /// Reads a PNG or JPEG file within the budget.
    func read(_ path: String) throws -> Image { try Image.read(path: path, maxPixels: maxPixels) }
}

/// Refuses a `--profile` that names no built-in profile.
func checkProfileName(_ name: String?) throws {
    guard let name, PreprocessProfile.named(name) == nil else { return }
    throw ValidationError(
        "unknown profile '\(name)'; choose one of \(PreprocessProfile.builtIn.map(\.name).joined(separator: ", "))")
}
