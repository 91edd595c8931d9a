import Foundation
import ViTCheckpoint
import ViTCore
import ViTImage
import ViTTensor

/// A Vision Transformer with what it needs to classify files: labels and preprocessing.
public struct ImageClassifier {
    /// Where a model came from.
    public enum Format: String, Sendable {
        case huggingFace = "hf"
        case timm
        case swiftViT = "swiftvit"
    }

    public let model: VisionTransformer
    public let labels: [String]
    public let profile: PreprocessProfile
    public let format: Format
    public let path: String

    public init(model: VisionTransformer, labels: [String], profile: PreprocessProfile, format: Format, path: String) {
        self.model = model
        self.labels = labels
        self.profile = profile
        self.format = format
        self.path = path
    }

    /// Loads an HF ViT folder, a timm folder (config.json with "architecture"), a SwiftViT
    /// safetensors file or a training output folder holding one (model.safetensors),
    /// strictly: every tensor must be used and fit its shape.
    public static func load(path: String) throws -> ImageClassifier {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelError(path: path, reason: "no such file or folder")
        }
        do {
            if !isDirectory.boolValue { return try loadSwiftViT(path: path) }
            let configPath = "\(path)/config.json"
            guard let data = FileManager.default.contents(atPath: configPath) else {
                // A `vit train classifier` output folder.
                let trained = "\(path)/model.safetensors"
                if FileManager.default.fileExists(atPath: trained) { return try loadSwiftViT(path: trained) }
                throw ModelError(path: path, reason: "folder has neither config.json nor model.safetensors")
            }
            guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw ModelError(path: configPath, reason: "not a JSON object")
            }
            if json["architecture"] != nil { return try loadTimm(path: path, config: json) }
            return try loadHuggingFace(path: path, config: json)
        } catch let error as ModelError {
            throw error
        } catch {
            // Checkpoint and parameter errors already name their file.
            throw ModelError(path: nil, reason: "\(error)")
        }
    }

    /// The same model with another preprocessing profile.
    public func withProfile(_ profile: PreprocessProfile) -> ImageClassifier {
        ImageClassifier(model: model, labels: labels, profile: profile, format: format, path: path)
    }

    /// Logits for a batch of images [B, 3, H, W] -> [B, numClasses].
    public func logits(_ images: Tensor) -> Tensor { model(images).value }

    /// Logits and the pooled representation the head reads, for a batch of images
    /// [B, 3, H, W] -> ([B, numClasses], [B, D]).
    public func logitsAndFeatures(_ images: Tensor) -> (logits: Tensor, features: Tensor) {
        let pooled = model.pooledFeatures(images)
        return (model.headOutput(pooled).value, pooled.value)
    }

    /// Softmax probabilities for a batch of images [B, 3, H, W] -> [B, numClasses].
    public func probabilities(_ images: Tensor) -> Tensor { logits(images).softmax(axis: -1) }

    /// The model's input for an image, [3, H, W]; an image too large to resize is refused.
    public func input(for image: Image) throws(PreprocessError) -> Tensor { try profile.tensor(from: image) }
}

/// A problem loading a model; one line naming the file.
public typealias ModelError = FileError

// MARK: - SwiftViT's own files

extension ImageClassifier {
    /// The metadata format written by `save`.
    public static let formatVersion = "1"

    /// The metadata key under which a file lists, as a JSON array, the key prefixes of
    /// tensors it holds beside the model's weights (a training checkpoint's optimizer state);
    /// loading leaves those out and stays strict about everything else.
    public static let auxiliaryPrefixesKey = "auxiliary_prefixes"

    static func loadSwiftViT(path: String) throws -> ImageClassifier {
        try swiftViT(file: try SafeTensorsFile(path: path), path: path)
    }

    /// The model in an open SwiftViT file (a training checkpoint loads as its current weights).
    public static func swiftViT(file: SafeTensorsFile, path: String) throws -> ImageClassifier {
        func metadata<T: Decodable>(_ key: String, _ type: T.Type) throws -> T {
            guard let text = file.metadata[key] else {
                throw ModelError(path: path, reason: "metadata has no '\(key)' (not a SwiftViT model file?)")
            }
            do {
                return try JSONDecoder().decode(T.self, from: Data(text.utf8))
            } catch {
                throw ModelError(path: path, reason: "metadata '\(key)' is invalid: \(error)")
            }
        }
        let config = try validated(metadata("config", ViTConfig.self), path: path)
        let labels = try metadata("labels", [String].self)
        let profile = try validated(
            metadata("preprocess", PreprocessProfile.self), channels: config.inChannels, path: path)
        guard labels.count == config.numClasses else {
            throw ModelError(path: path, reason: "\(labels.count) labels for \(config.numClasses) classes")
        }
        let auxiliary =
            try file.metadata[auxiliaryPrefixesKey] == nil ? [] : metadata(auxiliaryPrefixesKey, [String].self)
        let tensors = try file.allTensors().filter { name, _ in !auxiliary.contains { name.hasPrefix($0) } }
        let store = WeightStore(tensors, origin: path)
        let model = try VisionTransformer(store, config: config)
        try store.finish()
        return ImageClassifier(model: model, labels: labels, profile: profile, format: .swiftViT, path: path)
    }

    /// The metadata `save` writes: config, labels, preprocessing and format version.
    public func metadata() throws -> [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        func json<T: Encodable>(_ value: T) throws -> String {
            String(decoding: try encoder.encode(value), as: UTF8.self)
        }
        return [
            "config": try json(model.config), "labels": try json(labels), "preprocess": try json(profile),
            "format_version": Self.formatVersion,
        ]
    }

    /// Writes the model as a SwiftViT safetensors file with config, labels and
    /// preprocessing in its metadata, atomically.
    public func save(path: String, extraMetadata: [String: String] = [:]) throws {
        let metadata = try self.metadata().merging(extraMetadata) { own, _ in own }
        var tensors: [String: Tensor] = [:]
        for (name, tensor) in model.namedTensors { tensors[name] = tensor }
        try writeSafeTensors(tensors, metadata: metadata, toPath: path)
    }
}
