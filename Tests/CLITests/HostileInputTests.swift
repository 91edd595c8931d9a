import Foundation
import Testing
import ViTCheckpoint
import ViTImage
import ViTTensor
import ViTTestSupport

/// Model files, images and training state with values out of range: each gives one line
/// naming the file and the value, an exit code below 128, and nothing half-written.
@Suite struct HostileInputTests {
    let folder = makeTemporaryFolder()
    let timm = repositoryPath("Tests/ViTVisionTests/Golden/timm-vit")
    let shipped = repositoryPath("Weights/vit-fashion-mnist.safetensors")
    let coat = repositoryPath("Images/coat.png")

    /// A copy of the timm golden model whose config.json is changed by `edit`.
    func timmCopy(_ name: String, _ edit: (inout [String: Any]) -> Void) throws -> String {
        let copy = "\(folder)/\(name)"
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: "\(copy)/model.safetensors", withDestinationPath: "\(timm)/model.safetensors")
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(timm)/config.json"))
        var config = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        edit(&config)
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: "\(copy)/config.json"))
        return copy
    }

    /// A copy of the shipped model with its metadata's `key` edited and tensors replaced.
    func shippedCopy(
        _ name: String, metadata key: String = "preprocess", replacing old: String = "", with new: String = "",
        tensors edit: (inout [String: Tensor]) -> Void = { _ in }
    ) throws -> String {
        let file = try SafeTensorsFile(path: shipped)
        var metadata = file.metadata, tensors = try file.allTensors()
        metadata[key] = metadata[key]!.replacingOccurrences(of: old, with: new)
        edit(&tensors)
        let path = "\(folder)/\(name).safetensors"
        try writeSafeTensors(tensors, metadata: metadata, toPath: path)
        return path
    }

    /// Runs `vit` and checks the exit status and that stderr is exactly one line ending
    /// with `message` (a usage error, status 64, adds ArgumentParser's usage lines).
    func expectFailure(_ arguments: [String], status: Int32 = 1, _ message: String) throws {
        let result = try runVit(arguments)
        #expect(result.status == status, "\(arguments): \(result.stderr)")
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.first?.hasSuffix(message) == true, "\(arguments): \(result.stderr)")
        #expect(status == 64 || lines.count == 1, "\(arguments): \(result.stderr)")
    }

    /// Preprocessing values read from timm, HF and SwiftViT files are checked where they
    /// enter; a timm architecture name with trailing letters is not a known size.
    @Test func preprocessingValuesOutOfRange() throws {
        func pretrained(_ key: String, _ value: Any) throws -> String {
            try timmCopy("timm-\(key)-\(value)") { config in
                var cfg = config["pretrained_cfg"] as! [String: Any]
                cfg[key] = value
                config["pretrained_cfg"] = cfg
            }
        }
        for value in [0, -1] {
            let model = try pretrained("crop_pct", value)
            try expectFailure(
                ["classify", coat, "--model", model],
                "\(model)/config.json: 'crop_pct' \(Double(value)) is out of range: 64 / crop_pct must be 1 to 16384 pixels"
            )
        }
        let oneMean = try pretrained("mean", [0.5])
        try expectFailure(
            ["classify", coat, "--model", oneMean],
            "\(oneMean)/config.json: mean has 1 and std 3 entries for a model of 3 channels")
        let zeroStd = try pretrained("std", [0.5, 0, 0.5])
        try expectFailure(["classify", coat, "--model", zeroStd], "\(zeroStd)/config.json: std 0.0 is not positive")
        let trailing = try timmCopy("timm-name") { config in
            config["architecture"] = "vit_base_patch16_224a"
            config["model_args"] = nil
        }
        try expectFailure(
            ["classify", coat, "--model", trailing],
            "\(trailing)/config.json: architecture 'vit_base_patch16_224a' is not a known ViT and model_args do not give its sizes"
        )

        let hf = "\(folder)/hf-size-0"
        try FileManager.default.createDirectory(atPath: hf, withIntermediateDirectories: true)
        let golden = repositoryPath("Tests/ViTVisionTests/Golden/hf-vit")
        for name in ["config.json", "model.safetensors"] {
            try FileManager.default.createSymbolicLink(
                atPath: "\(hf)/\(name)", withDestinationPath: "\(golden)/\(name)")
        }
        try Data(#"{"size": {"height": 0, "width": 64}}"#.utf8).write(
            to: URL(fileURLWithPath: "\(hf)/preprocessor_config.json"))
        try expectFailure(
            ["classify", coat, "--model", hf],
            "\(hf)/preprocessor_config.json: resize or crop size 0 is out of range (1 to 16384)")

        for size in [0, -5] {
            let model = try shippedCopy("resize\(size)", replacing: #""width":28"#, with: #""width":\#(size)"#)
            try expectFailure(
                ["classify", coat, "--model", model],
                "\(model): resize or crop size \(size) is out of range (1 to 16384)")
        }
    }

    /// A 100000 x 1 PNG through a timm profile (shorter side to 71) would need a
    /// 7100000 x 71 image: refused before resizing. --image-size beyond 4096 patches is a
    /// usage error.
    @Test func resizesBeyondTheBudgetAreRefused() throws {
        let strip = "\(folder)/strip.png"
        try Image(width: 100_000, height: 1, channels: 3).writePNG(path: strip)
        try expectFailure(
            ["classify", strip, "--model", timm],
            "\(strip): resizing 100000x1 to 7100000x71 needs more than the limit of 67108864 pixels")
        try expectFailure(
            ["classify", coat, "--model", timm, "--image-size", "2000"], status: 64,
            "--image-size 2000 is not a positive multiple of the patch size 8 giving at most 4096 patches")
    }

    /// --max-pixels refuses an image by its header (coat.png is 28 x 28 = 784 pixels) in
    /// every command that reads images; at exactly its size the image is read.
    @Test func pixelBudgetFlag() throws {
        try expectFailure(
            ["classify", coat, "--max-pixels", "783"],
            "\(coat): 28x28 is more than the limit of 783 pixels (a decompression bomb?)")
        try expectFailure(
            ["attention", coat, "--max-pixels", "783", "-o", "\(folder)/budget.png"],
            "\(coat): 28x28 is more than the limit of 783 pixels (a decompression bomb?)")
        #expect(!FileManager.default.fileExists(atPath: "\(folder)/budget.png"))
        try expectFailure(
            ["preprocess", coat, "--max-pixels", "783", "-o", "\(folder)/budget.png"],
            "\(coat): 28x28 is more than the limit of 783 pixels (a decompression bomb?)")
        try expectFailure(["classify", coat, "--max-pixels", "0"], status: 64, "--max-pixels must be positive")
        let result = try runVit(["classify", coat, "--max-pixels", "784", "--top-k", "1"])
        #expect(result.status == 0 && result.stdout.hasPrefix("\(coat): Coat "), "\(result.stderr)\(result.stdout)")
    }

    /// `vit attention` keeps every layer's weights: at 256 x 256 (4097 tokens, 6 layers of 4
    /// heads: 1.6 GB) it is refused before the forward pass.
    @Test func attentionMapsBeyondTheBudgetAreRefused() throws {
        let model = try shippedCopy(
            "large-input", replacing: #""height":28,"width":28"#, with: #""height":256,"width":256"#)
        try expectFailure(
            ["attention", coat, "--model", model, "-o", "\(folder)/maps.png"],
            "\(coat): the attention maps of 4097 tokens in 6 layers of 4 heads need 1536 MB, more than the limit of 1024 MB"
        )
        #expect(!FileManager.default.fileExists(atPath: "\(folder)/maps.png"))
    }

    /// A profile without a fixed size gives inputs of different sizes; one call over both
    /// images prints what two calls, one image each, print.
    @Test func imagesOfDifferentSizesInOneBatch() throws {
        let model = try shippedCopy(
            "shorter-side", replacing: #""resize":{"exact":{"height":28,"width":28}}"#,
            with: #""resize":{"shorterSide":{"_0":28}}"#)
        let wide = "\(folder)/wide.png"
        let image = try Image.read(path: coat)
        var doubled = Image(width: 56, height: 28, channels: image.channels)
        for y in 0..<28 {
            for x in 0..<56 {
                for c in 0..<image.channels {
                    doubled.pixels[(y * 56 + x) * image.channels + c] =
                        image.pixels[(y * 28 + x / 2) * image.channels + c]
                }
            }
        }
        try doubled.writePNG(path: wide)
        let arguments = ["--model", model, "--format", "jsonl", "--logits"]
        let both = try runVit(["classify", coat, wide] + arguments)
        #expect(both.status == 0, "\(both.stderr)")
        let single = try runVit(["classify", coat] + arguments).stdout + runVit(["classify", wide] + arguments).stdout
        #expect(both.stdout == single)
        #expect(both.stdout.split(separator: "\n").count == 2)
    }

    /// A sub-folder that cannot be read is reported (exit 1) and the rest are classified.
    /// Run as an unprivileged user (root reads any folder): `setpriv` to nobody when root.
    @Test func unreadableSubfolderIsReported() throws {
        let images = "\(folder)/images"
        for name in ["ok", "locked"] {
            try FileManager.default.createDirectory(atPath: "\(images)/\(name)", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: coat, toPath: "\(images)/\(name)/coat.png")
        }
        chmod("\(images)/locked", 0)
        defer { chmod("\(images)/locked", 0o755) }
        let arguments = ["classify", images, "--model", shipped, "--top-k", "1"]
        let result =
            getuid() == 0
            ? try run(
                "/usr/bin/setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", vitBinary] + arguments)
            : try runVit(arguments)
        #expect(result.status == 1)
        #expect(result.stderr == "error: \(images)/locked: cannot read the folder (Permission denied)\n")
        #expect(result.stdout == "\(images)/ok/coat.png: Coat 0.9064\n")
    }

    /// Weights that make the output NaN give an error for the file, not a prediction.
    @Test func nonFiniteOutputsAreErrors() throws {
        let model = try shippedCopy("nan-head") { tensors in
            let bias = tensors["head.bias"]!.copy()
            bias.data[0] = .nan
            tensors["head.bias"] = bias
        }
        try expectFailure(["classify", coat, "--model", model], "\(coat): the model's output is not finite")
    }

    /// Resuming on data with other classes, or from a training state with a batch size of
    /// 0, is refused and leaves the checkpoint as it was.
    @Test func resumedTrainingStateIsChecked() throws {
        func writeData(_ name: String, classes: Int) throws -> String {
            let data = "\(folder)/\(name)"
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            for prefix in ["train", "t10k"] {
                let count = 8
                let images: [UInt8] = [0, 0, 8, 3, 0, 0, 0, UInt8(count), 0, 0, 0, 8, 0, 0, 0, 8]
                let labels: [UInt8] = [0, 0, 8, 1, 0, 0, 0, UInt8(count)]
                try Data(images + (0..<(count * 64)).map { UInt8($0 % 251) }).write(
                    to: URL(fileURLWithPath: "\(data)/\(prefix)-images-idx3-ubyte"))
                try Data(labels + (0..<count).map { UInt8($0 % classes) }).write(
                    to: URL(fileURLWithPath: "\(data)/\(prefix)-labels-idx1-ubyte"))
            }
            return data
        }
        let two = try writeData("two", classes: 2), three = try writeData("three", classes: 3)
        let output = "\(folder)/run"
        let small = ["--dim", "16", "--depth", "1", "--heads", "2", "--hidden-dim", "16", "--batch-size", "4"]
        let trained = try runVit(
            ["train", "classifier", "--data", two, "-o", output, "--epochs", "2", "--steps", "2"] + small)
        #expect(trained.status == 0, "\(trained.stderr)")
        let checkpoint = "\(output)/checkpoint.safetensors"
        let before = try Data(contentsOf: URL(fileURLWithPath: checkpoint))
        try expectFailure(
            ["train", "classifier", "--data", three, "-o", output, "--resume"],
            "\(checkpoint): trained on 2 classes (0, 1), but \(three) has 3 classes (0, 1, 2)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: checkpoint)) == before)

        let file = try SafeTensorsFile(path: checkpoint)
        var metadata = file.metadata
        #expect(metadata["training_state"]!.contains(#""batchSize":4"#))
        metadata["training_state"] = metadata["training_state"]!.replacingOccurrences(
            of: #""batchSize":4"#, with: #""batchSize":0"#)
        let edited = "\(folder)/edited"
        try FileManager.default.createDirectory(atPath: edited, withIntermediateDirectories: true)
        try writeSafeTensors(try file.allTensors(), metadata: metadata, toPath: "\(edited)/checkpoint.safetensors")
        try expectFailure(
            ["train", "classifier", "--data", two, "-o", edited, "--resume"],
            "\(edited)/checkpoint.safetensors: training state: batch size 0 is not in 1...65536")
        #expect(try FileManager.default.contentsOfDirectory(atPath: edited) == ["checkpoint.safetensors"])
    }
}
