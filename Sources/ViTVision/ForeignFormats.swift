import Foundation
import ViTCheckpoint
import ViTCore
import ViTImage
import ViTTensor

// Hugging Face and timm folders: their configs become a ViTConfig and a preprocessing
// profile, and their tensor names map onto ours by the rules below.

/// HF `ViTForImageClassification` keys -> timm keys (docs/ARCHITECTURE.md, "Checkpoints"). Query, key and
/// value are renamed to "qkv.q", "qkv.k", "qkv.v" and fused afterwards.
let huggingFaceViTRules = [
    KeyRule(#"vit\.embeddings\.cls_token"#, "cls_token"),
    KeyRule(#"vit\.embeddings\.position_embeddings"#, "pos_embed"),
    KeyRule(#"vit\.embeddings\.patch_embeddings\.projection\.(weight|bias)"#, "patch_embed.proj.$1"),
    KeyRule(#"vit\.encoder\.layer\.(\d+)\.layernorm_before\.(weight|bias)"#, "blocks.$1.norm1.$2"),
    KeyRule(
        #"vit\.encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.(weight|bias)"#,
        "blocks.$1.attn.qkv.$2.$3"),
    KeyRule(#"vit\.encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)"#, "blocks.$1.attn.proj.$2"),
    KeyRule(#"vit\.encoder\.layer\.(\d+)\.layernorm_after\.(weight|bias)"#, "blocks.$1.norm2.$2"),
    KeyRule(#"vit\.encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)"#, "blocks.$1.mlp.fc1.$2"),
    KeyRule(#"vit\.encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)"#, "blocks.$1.mlp.fc2.$2"),
    KeyRule(#"vit\.layernorm\.(weight|bias)"#, "norm.$1"),
    KeyRule(#"classifier\.(weight|bias)"#, "head.$1"),
]

/// Validates a config, naming the file it came from when it is inconsistent.
func validated(_ config: ViTConfig, path: String) throws -> ViTConfig {
    do {
        try config.validate()
    } catch {
        throw ModelError(path: path, reason: "\(error)")
    }
    return config
}

/// Validates a preprocessing profile for a model of `channels` channels, naming the file it
/// came from when it cannot work.
func validated(_ profile: PreprocessProfile, channels: Int, path: String) throws -> PreprocessProfile {
    if let problem = profile.problem(channels: channels) { throw ModelError(path: path, reason: problem) }
    return profile
}

func loadWeights(folder: String) throws -> [String: Tensor] {
    let path = "\(folder)/model.safetensors"
    guard FileManager.default.fileExists(atPath: path) else {
        throw ModelError(path: folder, reason: "folder has no model.safetensors")
    }
    return try SafeTensorsFile(path: path).allTensors()
}

// MARK: - Hugging Face

extension ImageClassifier {
    static func loadHuggingFace(path: String, config json: [String: Any]) throws -> ImageClassifier {
        let configPath = "\(path)/config.json"
        let f = JSONFields(object: json, path: configPath)
        if let type = json["model_type"] as? String, type != "vit" {
            throw ModelError(path: configPath, reason: "model_type '\(type)' is not supported (vit)")
        }
        var labels: [String] = []
        if let id2label = json["id2label"] as? [String: String] {
            labels = try (0..<id2label.count).map { i in
                guard let label = id2label["\(i)"] else {
                    throw ModelError(path: configPath, reason: "id2label has no entry for \(i)")
                }
                return label
            }
        }
        let config = ViTConfig(
            imageSize: try f.int("image_size", default: 224), patchSize: try f.int("patch_size", default: 16),
            inChannels: try f.int("num_channels", default: 3), dim: try f.int("hidden_size"),
            depth: try f.int("num_hidden_layers"), numHeads: try f.int("num_attention_heads"),
            hiddenDim: try f.int("intermediate_size"), numClasses: labels.count,
            layerNormEps: try f.float("layer_norm_eps", default: 1e-12), qkvBias: try f.bool("qkv_bias", default: true),
            pool: .token, activation: try f.activation("hidden_act"),
            positionResampling: .bicubic)
        try _ = validated(config, path: configPath)
        let weightsPath = "\(path)/model.safetensors"
        let tensors = try renameAndFuse(loadWeights(folder: path), rules: huggingFaceViTRules, origin: weightsPath)
        let store = WeightStore(tensors, origin: weightsPath)
        let model = try VisionTransformer(store, config: config)
        try store.finish()
        let profile = try validated(
            huggingFaceProfile(folder: path, imageSize: config.imageSize), channels: config.inChannels,
            path: FileManager.default.fileExists(atPath: "\(path)/preprocessor_config.json")
                ? "\(path)/preprocessor_config.json" : configPath)
        return ImageClassifier(model: model, labels: labels, profile: profile, format: .huggingFace, path: path)
    }

    /// ViTImageProcessor's settings from preprocessor_config.json (its defaults when absent).
    static func huggingFaceProfile(folder: String, imageSize: Int) throws -> PreprocessProfile {
        let path = "\(folder)/preprocessor_config.json"
        guard FileManager.default.fileExists(atPath: path) else {
            var profile = PreprocessProfile.hfViT
            profile.resize = .exact(width: imageSize, height: imageSize)
            return profile
        }
        let json = try readJSON(path)
        let f = JSONFields(object: json, path: path)
        var width = imageSize, height = imageSize
        if let size = json["size"] as? [String: Any] {
            let s = JSONFields(object: size, path: path)
            height = try s.int("height", default: imageSize)
            width = try s.int("width", default: imageSize)
        } else if json["size"] != nil {
            width = try f.int("size")
            height = width
        }
        let code = try f.int("resample", default: 2)
        guard let filter = ResampleFilter(pillowCode: code) else {
            throw ModelError(path: path, reason: "resample \(code) is not a Pillow filter")
        }
        if try f.bool("do_center_crop", default: false) {
            throw ModelError(path: path, reason: "do_center_crop is not supported for ViT processors")
        }
        let rescale = try f.bool("do_rescale", default: true) ? try f.float("rescale_factor", default: 1 / 255) : 1
        let normalize = try f.bool("do_normalize", default: true)
        return PreprocessProfile(
            name: "hf", resize: .exact(width: width, height: height), filter: filter, crop: nil, rescale: rescale,
            mean: normalize ? try f.floats("image_mean", default: [0.5, 0.5, 0.5]) : [0, 0, 0],
            std: normalize ? try f.floats("image_std", default: [0.5, 0.5, 0.5]) : [1, 1, 1])
    }
}

// MARK: - timm

extension ImageClassifier {
    /// timm's named ViT sizes: width, depth, heads (vision_transformer.py model entries).
    static let timmSizes: [String: (dim: Int, depth: Int, heads: Int)] = [
        "tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12), "large": (1024, 24, 16),
    ]

    static func loadTimm(path: String, config json: [String: Any]) throws -> ImageClassifier {
        let configPath = "\(path)/config.json"
        let f = JSONFields(object: json, path: configPath)
        let architecture = try f.string("architecture")
        let args = JSONFields(object: json["model_args"] as? [String: Any] ?? [:], path: configPath)
        let pretrained = JSONFields(object: json["pretrained_cfg"] as? [String: Any] ?? [:], path: configPath)
        // vit_{size}_patch{p}_{image}[.tag], then model_args override.
        let match = architecture.range(
            of: #"^(vit|deit)_(tiny|small|base|large)_patch[0-9]{1,4}_[0-9]{1,5}(\.|$)"#, options: .regularExpression)
        var dim = 0, depth = 0, heads = 0, patch = 16, image = 224
        if match != nil {
            let parts = architecture.split(separator: ".")[0].split(separator: "_")
            if let size = timmSizes[String(parts[1])], let p = Int(parts[2].dropFirst("patch".count)),
                let i = Int(parts[3])
            {
                (dim, depth, heads, patch, image) = (size.dim, size.depth, size.heads, p, i)
            }
        }
        dim = try args.int("embed_dim", default: dim)
        depth = try args.int("depth", default: depth)
        heads = try args.int("num_heads", default: heads)
        patch = try args.int("patch_size", default: patch)
        if let sizes = args.object["img_size"] as? [NSNumber] {
            guard sizes.count == 2, sizes[0] == sizes[1] else {
                throw ModelError(path: configPath, reason: "img_size \(sizes) is not square")
            }
            image = sizes[0].intValue
        } else {
            image = try args.int("img_size", default: image)
        }
        guard dim > 0 && depth > 0 && heads > 0 else {
            throw ModelError(
                path: configPath,
                reason: "architecture '\(architecture)' is not a known ViT and model_args do not give its sizes")
        }
        let mlpRatio = try args.float("mlp_ratio", default: 4)
        let pool = try args.string("global_pool", default: f.string("global_pool", default: "token"))
        guard let poolKind = ViTConfig.Pool(rawValue: pool) else {
            throw ModelError(path: configPath, reason: "global_pool '\(pool)' is not supported (token, avg)")
        }
        let labels = (json["label_names"] as? [String]) ?? (pretrained.object["label_names"] as? [String]) ?? []
        let numClasses = try f.int("num_classes", default: labels.count)
        guard labels.isEmpty || labels.count == numClasses else {
            throw ModelError(path: configPath, reason: "\(labels.count) label_names for \(numClasses) classes")
        }
        let config = ViTConfig(
            imageSize: image, patchSize: patch, dim: dim, depth: depth, numHeads: heads,
            hiddenDim: Int(Float(dim) * mlpRatio), numClasses: numClasses, layerNormEps: 1e-6,
            qkvBias: try args.bool("qkv_bias", default: true), pool: poolKind)
        try _ = validated(config, path: configPath)
        let weightsPath = "\(path)/model.safetensors"
        let store = WeightStore(try loadWeights(folder: path), origin: weightsPath)
        let model = try VisionTransformer(store, config: config)
        try store.finish()
        let profile = try validated(
            timmProfile(pretrained, imageSize: image), channels: config.inChannels, path: configPath)
        let names = labels.isEmpty ? (0..<numClasses).map { "class \($0)" } : labels
        return ImageClassifier(model: model, labels: names, profile: profile, format: .timm, path: path)
    }

    /// timm's eval transform (transforms_imagenet_eval) from pretrained_cfg.
    static func timmProfile(_ cfg: JSONFields, imageSize: Int) throws -> PreprocessProfile {
        guard cfg.object["crop_pct"] == nil || cfg.object["crop_pct"] is NSNumber else {
            throw ModelError(path: cfg.path, reason: "'crop_pct' is not a number")
        }
        let cropPct = (cfg.object["crop_pct"] as? NSNumber)?.doubleValue ?? 0.875
        // math.floor(img_size / crop_pct), in double precision as Python.
        let scaled = (Double(imageSize) / cropPct).rounded(.down)
        guard cropPct > 0, scaled >= 1, scaled <= Double(PreprocessProfile.maxSide) else {
            throw ModelError(
                path: cfg.path,
                reason:
                    "'crop_pct' \(cropPct) is out of range: \(imageSize) / crop_pct must be 1 to \(PreprocessProfile.maxSide) pixels"
            )
        }
        let interpolation = try cfg.string("interpolation", default: "bicubic")
        guard let filter = ResampleFilter(rawValue: interpolation) else {
            throw ModelError(path: cfg.path, reason: "interpolation '\(interpolation)' is not supported")
        }
        let mode = try cfg.string("crop_mode", default: "center")
        guard mode == "center" else {
            throw ModelError(path: cfg.path, reason: "crop_mode '\(mode)' is not supported (center)")
        }
        return PreprocessProfile(
            name: "timm", resize: .shorterSide(Int(scaled)), filter: filter,
            crop: .init(width: imageSize, height: imageSize),
            mean: try cfg.floats("mean", default: [0.485, 0.456, 0.406]),
            std: try cfg.floats("std", default: [0.229, 0.224, 0.225]), cropFraction: cropPct)
    }
}
