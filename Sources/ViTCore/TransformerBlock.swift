import ViTTensor

/// Where a block normalizes: before each sublayer (ViT, timm `Block`) or after each
/// residual sum (BERT, the original Transformer).
public enum NormPlacement: String, Sendable, Codable {
    case preNorm = "pre"
    case postNorm = "post"
}

/// Checks what every transformer over image patches needs: whole patches and a width that
/// the heads divide. Throws a ParameterError that says what is wrong.
public func checkPatchSizes(imageSize: Int, patchSize: Int, dim: Int, numHeads: Int) throws {
    guard imageSize > 0 && patchSize > 0 && imageSize % patchSize == 0 else {
        throw ParameterError("config: image size \(imageSize) is not a multiple of patch size \(patchSize)")
    }
    guard dim > 0 && numHeads > 0 && dim % numHeads == 0 else {
        throw ParameterError("config: width \(dim) is not divisible by \(numHeads) heads")
    }
}

/// The sizes of one transformer block.
public struct BlockConfig: Sendable, Equatable, Codable {
    public var dim: Int
    public var numHeads: Int
    public var hiddenDim: Int
    public var layerNormEps: Float
    public var qkvBias: Bool
    public var normPlacement: NormPlacement
    public var activation: GELUApproximation

    public init(
        dim: Int, numHeads: Int, hiddenDim: Int, layerNormEps: Float, qkvBias: Bool = true,
        normPlacement: NormPlacement = .preNorm, activation: GELUApproximation = .none
    ) {
        self.dim = dim
        self.numHeads = numHeads
        self.hiddenDim = hiddenDim
        self.layerNormEps = layerNormEps
        self.qkvBias = qkvBias
        self.normPlacement = normPlacement
        self.activation = activation
    }
}

/// A transformer block, shared by every model here: attention and MLP, each in a residual.
/// x: [B, N, C] -> [B, N, C]. Keys: "norm1", "attn", "norm2", "mlp".
public struct TransformerBlock: Layer {
    public let norm1: LayerNorm, attn: Attention, norm2: LayerNorm, mlp: MLP
    public let placement: NormPlacement

    public init(_ source: ParameterSource, config c: BlockConfig) throws {
        norm1 = try LayerNorm(source.scoped("norm1"), dim: c.dim, eps: c.layerNormEps)
        attn = try Attention(source.scoped("attn"), dim: c.dim, numHeads: c.numHeads, qkvBias: c.qkvBias)
        norm2 = try LayerNorm(source.scoped("norm2"), dim: c.dim, eps: c.layerNormEps)
        mlp = try MLP(source.scoped("mlp"), dim: c.dim, hiddenDim: c.hiddenDim, activation: c.activation)
        placement = c.normPlacement
    }

    /// mask: additive attention mask; weights: receives the attention probabilities.
    /// x: [B, N, C] -> [B, N, C].
    public func callAsFunction(_ x: Variable, mask: Tensor? = nil, attentionWeights: Tensor? = nil) -> Variable {
        switch placement {
        case .preNorm:
            let x = attn(norm1(x), mask: mask, weights: attentionWeights, residual: x)
            return mlp(norm2(x), residual: x)
        case .postNorm:
            let x = norm1(attn(x, mask: mask, weights: attentionWeights, residual: x))
            return norm2(mlp(x, residual: x))
        }
    }

    /// The outputs of the first `count` tokens only: x [B, N, C] -> [B, count, C], the rows
    /// `callAsFunction` gives there. Every token is normalized and projected to keys and
    /// values; queries, the attention's projection and the MLP run on `count` tokens, so a
    /// classifier's last block that feeds only its class token to the head costs about a
    /// quarter of a block (less for wider MLPs).
    public func firstTokens(_ x: Variable, count: Int = 1, mask: Tensor? = nil) -> Variable {
        let first = x.sliced(axis: 1, 0..<count)
        switch placement {
        case .preNorm:
            let x = attn.firstTokens(norm1(x), count: count, mask: mask, residual: first)
            return mlp(norm2(x), residual: x)
        case .postNorm:
            let x = norm1(attn.firstTokens(x, count: count, mask: mask, residual: first))
            return norm2(mlp(x, residual: x))
        }
    }

    public var parameters: NamedParameters {
        scoped("norm1", norm1) + scoped("attn", attn) + scoped("norm2", norm2) + scoped("mlp", mlp)
    }
}

/// A stack of blocks. Keys: "N.<block keys>" under the caller's prefix ("blocks").
public struct TransformerEncoder: Layer {
    public let blocks: [TransformerBlock]

    public init(_ source: ParameterSource, depth: Int, config: BlockConfig) throws {
        blocks = try (0..<depth).map { try TransformerBlock(source.scoped("\($0)"), config: config) }
    }

    /// x: [B, N, C] -> [B, N, C]. attentionWeights, when given, has one [B, H, N, N]
    /// tensor per block to receive that block's attention probabilities.
    public func callAsFunction(_ x: Variable, mask: Tensor? = nil, attentionWeights: [Tensor]? = nil) -> Variable {
        var x = x
        for (i, block) in blocks.enumerated() {
            x = block(x, mask: mask, attentionWeights: attentionWeights?[i])
        }
        return x
    }

    /// The outputs of the first `count` tokens only: x [B, N, C] -> [B, count, C], the rows
    /// `callAsFunction` gives there. Every block but the last runs on all tokens; the last
    /// runs as `TransformerBlock.firstTokens`. Needs at least one block.
    public func firstTokens(_ x: Variable, count: Int = 1, mask: Tensor? = nil) -> Variable {
        precondition(!blocks.isEmpty, "the first tokens of an encoder without blocks")
        var x = x
        for block in blocks.dropLast() { x = block(x, mask: mask) }
        return blocks[blocks.count - 1].firstTokens(x, count: count, mask: mask)
    }

    public var parameters: NamedParameters {
        blocks.enumerated().flatMap { scoped("\($0.offset)", $0.element) }
    }
}
