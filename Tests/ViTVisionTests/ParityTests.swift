import Foundation
import Testing
import ViTCheckpoint
import ViTCore
import ViTImage
import ViTTensor
import ViTTestSupport
import ViTVision

let visionGolden = repositoryPath("Tests/ViTVisionTests/Golden")

/// Random-initialized HF and timm ViTs (image 64, patch 8, width 96, 3 heads, 2 layers, 7
/// labels), loaded from their native folders, against the libraries' own logits
/// (Tests/Reference/vit_models.py).
@Suite struct ParityTests {
    static let models = ["hf-vit", "timm-vit", "timm-vit-avg"]
    static let photos = ["chelsea", "coffee", "astronaut", "rocket", "camera"]

    /// The same input tensor: logits within 1e-4 (max abs), the issue's bar.
    @Test(arguments: models) func logitsForFixedInputs(model name: String) throws {
        let classifier = try ImageClassifier.load(path: "\(visionGolden)/\(name)")
        let golden = try SafeTensorsFile(path: "\(visionGolden)/\(name)/golden.safetensors")
        let logits = classifier.logits(try golden.tensor("inputs"))
        let result = compare(logits, try golden.tensor("logits"), atol: 1e-4)
        #expect(result.passed, "\(name): \(result)")
        #expect(classifier.labels == ["cat", "coffee", "astronaut", "rocket", "camera", "boot", "other"])
    }

    /// Inputs larger, smaller and not square: position embeddings resampled as HF
    /// (bicubic, interpolate_pos_encoding) and timm (antialiased bicubic, dynamic_img_size)
    /// do; logits within 1e-4.
    @Test(arguments: models.flatMap { m in ["96x96", "40x40", "48x80"].map { (m, $0) } })
    func otherInputSizes(model name: String, size: String) throws {
        let classifier = try ImageClassifier.load(path: "\(visionGolden)/\(name)")
        let golden = try SafeTensorsFile(path: "\(visionGolden)/\(name)/golden.safetensors")
        let logits = classifier.logits(try golden.tensor("inputs_\(size)"))
        let result = compare(logits, try golden.tensor("logits_\(size)"), atol: 1e-4)
        #expect(result.passed, "\(name) at \(size): \(result)")
    }

    /// From the image files: our preprocessing gives the library's tensor (1e-6: float32
    /// rounding of the normalization), and the logits agree within 1e-3 with the same top-5.
    @Test(arguments: models.flatMap { m in photos.map { (m, $0) } })
    func endToEndFromFiles(model name: String, photo: String) throws {
        let classifier = try ImageClassifier.load(path: "\(visionGolden)/\(name)")
        let golden = try SafeTensorsFile(path: "\(visionGolden)/\(name)/golden.safetensors")
        let path =
            FileManager.default.fileExists(atPath: repositoryPath("Images/\(photo).png"))
            ? repositoryPath("Images/\(photo).png") : repositoryPath("Images/\(photo).jpg")
        let input = try classifier.input(for: try Image.read(path: path))
        let pixels = compare(input, try golden.tensor("\(photo).pixel_values"), atol: 1e-6)
        #expect(pixels.passed, "\(name) \(photo) pixel values: \(pixels)")
        let logits = classifier.logits(input.reshaped([1] + input.shape)).reshaped([-1])
        let expected = try golden.tensor("\(photo).logits")
        let result = compare(logits, expected, atol: 1e-3)
        #expect(result.passed, "\(name) \(photo) logits: \(result)")
        let order = { (t: Tensor) in t.scalars.enumerated().sorted { $0.element > $1.element }.prefix(5).map(\.offset) }
        #expect(order(logits) == order(expected))
    }

    /// The class token's output alone in the last block (`pooledFeatures`, which the
    /// logits use) against every token's (`forwardFeatures`, then `pooled`): with our
    /// product kernels the same pooled features bit for bit, each row's sums being formed
    /// in the same order. OpenBLAS (SWIFTVIT_GEMM=openblas) may take another kernel for a
    /// product of one row per image and round differently: within 1e-5 of the features'
    /// scale, the bound docs/ARCHITECTURE.md sets for its splits ("Threads").
    @Test(arguments: models) func lastBlockOnTheClassTokenAloneGivesTheSameBits(model name: String) throws {
        let model = try ImageClassifier.load(path: "\(visionGolden)/\(name)").model
        let golden = try SafeTensorsFile(path: "\(visionGolden)/\(name)/golden.safetensors")
        for input in ["inputs", "inputs_48x80"] {
            let x = try golden.tensor(input)
            let everyToken = model.pooled(model.forwardFeatures(x)).value
            let classTokenAlone = model.pooledFeatures(x).value
            if productKernelName.hasPrefix("openblas") {
                let scale = everyToken.scalars.map { Swift.abs($0) }.max() ?? 0
                let check = compare(classTokenAlone, everyToken, atol: 1e-5 * scale)
                #expect(check.passed, "\(name), \(input): \(check)")
            } else {
                #expect(classTokenAlone.scalars == everyToken.scalars, "\(name), \(input)")
            }
        }
    }

    /// ViT-B/16 at 224 (197 tokens, width 768, MLP 3072, 1000 classes), by hand in
    /// multiply-adds: patches 196 x 768 x 768 = 115,605,504; a block 197 x 768 x 2304 +
    /// 2 x 197^2 x 768 + 197 x 768^2 + 2 x 197 x 768 x 3072 = 1,453,954,560; the last block
    /// with the class token alone 197 x 768 x 2304 + 2 x 197 x 768 + 768^2 + 2 x 768 x 3072 =
    /// 354,196,992; the head 768,000. Twice their sum: 32.928 GFLOP (35.128 with every token
    /// in the last block, the average pool's count).
    @Test func productCountsOfViTBase() {
        var config = ViTConfig(
            imageSize: 224, patchSize: 16, dim: 768, depth: 12, numHeads: 12, hiddenDim: 3072, numClasses: 1000,
            layerNormEps: 1e-6)
        #expect(Swift.abs(config.gflops - 32.928_141_312) < 1e-9)
        config.pool = .avg
        #expect(Swift.abs(config.gflops - 35.127_656_448) < 1e-9)
    }

    @Test func savedAndReloadedModelIsIdentical() throws {
        let classifier = try ImageClassifier.load(path: "\(visionGolden)/hf-vit")
        let folder = makeTemporaryFolder()
        try classifier.save(path: "\(folder)/model.safetensors")
        let reloaded = try ImageClassifier.load(path: "\(folder)/model.safetensors")
        #expect(reloaded.format == .swiftViT)
        #expect(reloaded.labels == classifier.labels && reloaded.profile == classifier.profile)
        #expect(reloaded.model.config == classifier.model.config)
        let golden = try SafeTensorsFile(path: "\(visionGolden)/hf-vit/golden.safetensors")
        let x = try golden.tensor("inputs")
        #expect(reloaded.logits(x).scalars == classifier.logits(x).scalars)
    }
}

/// Malformed models: one-line errors naming the file and the tensor.
@Suite struct MalformedModelTests {
    let folder = makeTemporaryFolder()

    /// A copy of the HF golden folder whose weights are changed by `edit`.
    func hfCopy(_ edit: (inout [String: Tensor]) -> Void, config: ((inout [String: Any]) -> Void)? = nil) throws
        -> String
    {
        let source = "\(visionGolden)/hf-vit"
        let target = "\(folder)/\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        var tensors = try SafeTensorsFile(path: "\(source)/model.safetensors").allTensors()
        edit(&tensors)
        try writeSafeTensors(tensors, toPath: "\(target)/model.safetensors")
        var json =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(source)/config.json")))
            as! [String: Any]
        config?(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: "\(target)/config.json"))
        try FileManager.default.copyItem(
            atPath: "\(source)/preprocessor_config.json", toPath: "\(target)/preprocessor_config.json")
        return target
    }

    func expectError(_ path: String, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try ImageClassifier.load(path: path)
            Issue.record("\(path) loaded without an error", sourceLocation: sourceLocation)
        } catch {
            let message = "\(error)"
            #expect(message.contains(text), "\(message)", sourceLocation: sourceLocation)
            #expect(!message.contains("\n"), sourceLocation: sourceLocation)
        }
    }

    @Test func missingExtraAndMisshapedTensors() throws {
        expectError(try hfCopy { $0["classifier.bias"] = nil }, "missing tensor 'head.bias'")
        expectError(try hfCopy { $0["vit.extra.weight"] = Tensor(shape: [2]) }, "unexpected tensor: 'vit.extra.weight'")
        expectError(
            try hfCopy { $0["vit.layernorm.weight"] = Tensor(shape: [95]) },
            "tensor 'norm.weight' has shape [95], expected [96]")
        expectError(
            try hfCopy { $0["vit.encoder.layer.0.attention.attention.key.weight"] = nil }, "needs query, key and value")
    }

    @Test func configDisagreeingWithTensors() throws {
        expectError(
            try hfCopy({ _ in }, config: { $0["hidden_size"] = 99 }), "has shape [96, 3, 8, 8], expected [99, 3, 8, 8]")
        expectError(
            try hfCopy({ _ in }, config: { $0["num_hidden_layers"] = 3 }), "missing tensor 'blocks.2.norm1.weight'")
        expectError(try hfCopy({ _ in }, config: { $0["num_hidden_layers"] = 1 }), "unexpected tensors")
        expectError(
            try hfCopy({ _ in }, config: { $0["num_attention_heads"] = 5 }),
            "config.json: config: width 96 is not divisible by 5 heads")
        expectError(
            try hfCopy({ _ in }, config: { $0["hidden_size"] = "wide" }), "'hidden_size' is missing or not an integer")
    }

    @Test func notAModel() throws {
        expectError("\(folder)/nothing", "no such file")
        expectError(folder, "\(folder): folder has neither config.json nor model.safetensors")
        let text = "\(folder)/model.safetensors"
        _ = FileManager.default.createFile(atPath: text, contents: Data("hello".utf8))
        expectError(text, "too short")
        expectError(folder, "\(text): file is 5 bytes, too short")  // a training folder
        try writeSafeTensors(["w": Tensor(shape: [1])], toPath: text)
        expectError(text, "metadata has no 'config'")
    }
}

/// `attentionMaps` against rollout computed in float64 from HF's eager attention.
@Suite struct AttentionMapTests {
    @Test func rolloutAndHeadsMatchHuggingFace() throws {
        let classifier = try ImageClassifier.load(path: "\(visionGolden)/hf-vit")
        let golden = try SafeTensorsFile(path: "\(visionGolden)/hf-vit/golden.safetensors")
        let input = try golden.tensor("chelsea.pixel_values")
        let maps = classifier.model.attentionMaps(input.reshaped([1] + input.shape))
        #expect(maps.gridHeight == 8 && maps.gridWidth == 8)
        let rollout = compare(maps.rollout, try golden.tensor("chelsea.rollout").scalars, atol: 1e-5)
        #expect(rollout.passed, "rollout: \(rollout)")
        let heads = compare(
            maps.lastLayerHeads.flatMap { $0 }, try golden.tensor("chelsea.last_heads").scalars, atol: 1e-5)
        #expect(heads.passed, "last-layer heads: \(heads)")
    }
}
