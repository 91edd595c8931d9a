import ViTTensor

/// Where a Vision Transformer looks, for one image: attention rollout and the last
/// layer's class-token attention per head, each over the patch grid.
public struct AttentionMaps: Sendable {
    public let gridHeight: Int
    public let gridWidth: Int
    /// Attention rollout from the class token to each patch, [gh * gw], summing to at most 1.
    public let rollout: [Float]
    /// The last block's attention from the class token to each patch, per head, [H][gh * gw].
    public let lastLayerHeads: [[Float]]
}

extension VisionTransformer {
    /// Attention maps for one image [1, C, H, W]: rollout (Abnar and Zuidema 2020, "Quantifying
    /// Attention Flow in Transformers", eq. 1): each block's head-averaged attention A is
    /// mixed with the identity for the residual, 0.5 A + 0.5 I, rows renormalized, and the
    /// blocks multiplied from the first to the last; the class token's row, without itself.
    public func attentionMaps(_ image: Tensor) -> AttentionMaps {
        precondition(image.rank == 4 && image.shape[0] == 1, "attentionMaps takes one image [1, C, H, W]")
        let (gh, gw) = (image.shape[2] / config.patchSize, image.shape[3] / config.patchSize)
        let n = gh * gw + 1, heads = config.numHeads
        let weights = (0..<config.depth).map { _ in Tensor(shape: [1, heads, n, n]) }
        _ = forwardFeatures(image, attentionWeights: weights)
        var rollout = Tensor.eye(n)  // [N, N]
        for attention in weights {
            let mixed = attention.reshaped([heads, n, n]).mean(axis: 0) * 0.5 + Tensor.eye(n) * 0.5
            let normalized = mixed / mixed.sum(axis: -1, keepingDimension: true)
            rollout = matmul(normalized, rollout)
        }
        let last = weights.last
        return AttentionMaps(
            gridHeight: gh, gridWidth: gw, rollout: Array(rollout.scalars[1..<n]),
            lastLayerHeads: (0..<heads).map { h in
                guard let last else { return [Float](repeating: 0, count: n - 1) }
                return Array(UnsafeBufferPointer(start: last.data + h * n * n + 1, count: n - 1))
            })
    }
}
