import ViTTensor

// The layers' forward passes on Variables, for training: the same computation as their
// Tensor methods, with each parameter looked up in a ParameterSet so that its gradient is
// recorded.

extension Linear {
    /// x: [..., in] -> [..., out].
    public func callAsFunction(_ x: Variable, _ p: ParameterSet) -> Variable {
        ViTTensor.linear(x, weight: p[weight], bias: bias.map { p[$0] })
    }
}

extension LayerNorm {
    /// x: [..., dim] -> [..., dim].
    public func callAsFunction(_ x: Variable, _ p: ParameterSet) -> Variable {
        ViTTensor.layerNorm(x, weight: p[weight], bias: p[bias], eps: eps)
    }
}

extension MLP {
    /// x: [..., dim] -> [..., dim].
    public func callAsFunction(_ x: Variable, _ p: ParameterSet) -> Variable {
        fc2(fc1(x, p).gelu(approximation: activation), p)
    }
}

extension Attention {
    /// x: [B, N, C] -> [B, N, C].
    public func callAsFunction(_ x: Variable, _ p: ParameterSet) -> Variable {
        proj(multiHeadSelfAttention(qkv: qkv(x, p), numHeads: numHeads), p)
    }
}

extension CrossAttention {
    /// x: [B, N, C] attends to context [B, M, D] -> [B, N, C]; mask as for Tensors.
    public func callAsFunction(_ x: Variable, context: Variable, mask: Tensor? = nil, _ p: ParameterSet) -> Variable {
        proj(multiHeadCrossAttention(q: q(x, p), kv: kv(context, p), numHeads: numHeads, mask: mask), p)
    }
}

extension Modulation {
    /// c: [B, conditionDim] -> `chunks` Variables [B, 1, dim].
    public func callAsFunction(_ c: Variable, _ p: ParameterSet) -> [Variable] {
        let all = linear(c.silu(), p)
        let (b, dim) = (c.shape[0], all.shape[1] / chunks)
        return (0..<chunks).map { all.sliced(axis: 1, ($0 * dim)..<(($0 + 1) * dim)).reshaped([b, 1, dim]) }
    }
}

/// x (1 + scale) + shift on Variables: x [B, N, C], shift and scale [B, 1, C].
public func modulate(_ x: Variable, shift: Variable, scale: Variable) -> Variable {
    x + x * scale + shift
}

extension TransformerBlock {
    /// x: [B, N, C] -> [B, N, C].
    public func callAsFunction(_ x: Variable, _ p: ParameterSet) -> Variable {
        switch placement {
        case .preNorm:
            let x = x + attn(norm1(x, p), p)
            return x + mlp(norm2(x, p), p)
        case .postNorm:
            let x = norm1(x + attn(x, p), p)
            return norm2(x + mlp(x, p), p)
        }
    }
}

extension TransformerEncoder {
    /// x: [B, N, C] -> [B, N, C].
    public func callAsFunction(_ x: Variable, _ p: ParameterSet) -> Variable {
        blocks.reduce(x) { x, block in block(x, p) }
    }
}
