import ViTCore
import ViTTensor

// Models made from models: copies that own their weights, and new heads and input sizes
// for fine-tuning (`vit train classifier --from`).

extension ImageClassifier {
    /// The same classifier with its weights in memory it owns (not a mapped file).
    public func withCopiedWeights() -> ImageClassifier {
        let store = WeightStore(model.copiedTensors, origin: path)
        // The same names and shapes: this cannot fail.
        let copied = try! VisionTransformer(store, config: model.config)
        return ImageClassifier(model: copied, labels: labels, profile: profile, format: format, path: path)
    }
}

extension ImageClassifier {
    /// This model prepared to learn other classes at another input size: every weight kept
    /// but the head, which starts afresh (truncated normal 0.02, zero bias) for `labels`;
    /// position embeddings resampled when `imageSize` differs.
    public func withNewHead(labels: [String], imageSize: Int, seed: UInt64) throws -> ImageClassifier {
        var config = model.config
        let grid = imageSize / config.patchSize
        var tensors = model.copiedTensors.filter { !$0.key.hasPrefix("head.") }
        if imageSize != config.imageSize {
            tensors["pos_embed"] = model.positionEmbedding(gridHeight: grid, gridWidth: grid).value
        }
        config.imageSize = imageSize
        config.numClasses = labels.count
        let random = RandomParameters(seed: seed)
        tensors["head.weight"] = try random.tensor(
            "head.weight", shape: [labels.count, config.dim], initializer: .truncatedNormal(std: 0.02))
        tensors["head.bias"] = try random.tensor("head.bias", shape: [labels.count], initializer: .zeros)
        let store = WeightStore(tensors, origin: path)
        let model = try VisionTransformer(store, config: config)
        try store.finish()
        return ImageClassifier(
            model: model, labels: labels, profile: profile.forInputSize(imageSize), format: .swiftViT, path: path)
    }
}
