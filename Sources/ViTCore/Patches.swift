import ViTTensor

/// Non-overlapping p x p patches: [B, C, H, W] -> [B, gh * gw, C * p * p], each patch
/// flattened in (channel, row, column) order to match a convolution weight [D, C, p, p].
public func patchify(_ images: Tensor, patchSize p: Int) -> Tensor {
    let (b, ch, h, w) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3])
    let (gh, gw) = (h / p, w / p)
    let k = ch * p * p
    let out = Tensor(shape: [b, gh * gw, k])
    for bi in 0..<b {
        for py in 0..<gh {
            for px in 0..<gw {
                let dst = out.data + (bi * gh * gw + py * gw + px) * k
                for c in 0..<ch {
                    for y in 0..<p {
                        let src = images.data + ((bi * ch + c) * h + py * p + y) * w + px * p
                        (dst + (c * p + y) * p).update(from: src, count: p)
                    }
                }
            }
        }
    }
    return out
}

/// [B, g * g, C * p * p] patches back to images [B, C, g * p, g * p] (the inverse of
/// `patchify`): viewed as [B, gy, gx, C, py, px], permuted to [B, C, gy, py, gx, px].
public func unpatchify(_ patches: Variable, channels: Int, patchSize p: Int, gridSize g: Int) -> Variable {
    let b = patches.shape[0]
    return patches.reshaped([b, g, g, channels, p, p]).permuted([0, 3, 1, 4, 2, 5]).reshaped([
        b, channels, g * p, g * p,
    ])
}
