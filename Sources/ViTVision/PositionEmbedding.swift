import Foundation

/// How position embeddings are resampled for an input whose patch grid differs from the
/// one the model was trained at. Both are torch.nn.functional.interpolate on the grid
/// [1, D, gh, gw] with mode="bicubic" and align_corners=False.
public enum PositionResampling: String, Sendable, Codable {
    /// Cubic convolution with a = -0.75 and the source index clamped at the borders
    /// (HF ViT `interpolate_pos_encoding`: antialias=False).
    case bicubic
    /// The antialiased form (timm `resample_abs_pos_embed`: antialias=True): Pillow's
    /// bicubic filter, a = -0.5, stretched by the scale when shrinking, weights renormalized
    /// at the borders; the width is resampled first, then the height.
    case bicubicAntialiased = "bicubic-antialiased"
}

/// Resamples a grid of vectors: grid [height, width, D] -> [newHeight, newWidth, D].
func resampledGrid(
    _ grid: UnsafePointer<Float>, height: Int, width: Int, dim: Int, newHeight: Int, newWidth: Int,
    method: PositionResampling
) -> [Float] {
    // Each output row (column) is a weighted sum of input rows (columns); the weights of
    // both axes are computed first, then applied width-first, then height-first.
    let columnTaps = resamplingTaps(from: width, to: newWidth, method: method)
    let rowTaps = resamplingTaps(from: height, to: newHeight, method: method)
    var wide = [Float](repeating: 0, count: height * newWidth * dim)  // [height, newWidth, D]
    for y in 0..<height {
        for (x, taps) in columnTaps.enumerated() {
            let dst = (y * newWidth + x) * dim
            for (index, weight) in taps {
                let src = grid + (y * width + index) * dim
                for d in 0..<dim { wide[dst + d] += weight * src[d] }
            }
        }
    }
    var out = [Float](repeating: 0, count: newHeight * newWidth * dim)
    for (y, taps) in rowTaps.enumerated() {
        for (index, weight) in taps {
            for i in 0..<(newWidth * dim) { out[y * newWidth * dim + i] += weight * wide[index * newWidth * dim + i] }
        }
    }
    return out
}

/// For each output position along one axis, the input positions it reads and their weights.
func resamplingTaps(from inSize: Int, to outSize: Int, method: PositionResampling) -> [[(Int, Float)]] {
    let scale = Double(inSize) / Double(outSize)
    switch method {
    case .bicubic:
        // PyTorch upsample_bicubic2d: source = scale (i + 0.5) - 0.5, four taps around its
        // floor, indices clamped to the grid.
        let a = -0.75
        return (0..<outSize).map { i in
            let source = scale * (Double(i) + 0.5) - 0.5
            let base = Int(source.rounded(.down))
            let t = source - Double(base)
            let weights = [
                cubicFar(t + 1, a: a), cubicNear(t, a: a), cubicNear(1 - t, a: a), cubicFar(2 - t, a: a),
            ]
            return (0..<4).map { k in (min(max(base - 1 + k, 0), inSize - 1), Float(weights[k])) }
        }
    case .bicubicAntialiased:
        // Pillow's resampling (and PyTorch's antialiased bicubic): the filter of support 2
        // is stretched by the scale when shrinking; taps outside the grid are dropped and the
        // rest renormalized.
        let a = -0.5
        let stretch = max(scale, 1)
        let support = 2 * stretch
        return (0..<outSize).map { i in
            let center = scale * (Double(i) + 0.5)
            let low = max(Int(center - support + 0.5), 0)
            let high = min(Int(center + support + 0.5), inSize)
            var taps = (low..<high).map { j -> (Int, Double) in
                let x = abs((Double(j) - center + 0.5) / stretch)
                return (j, x < 1 ? cubicNear(x, a: a) : x < 2 ? cubicFar(x, a: a) : 0)
            }
            let total = taps.reduce(0) { $0 + $1.1 }
            if total != 0 { taps = taps.map { ($0.0, $0.1 / total) } }
            return taps.map { ($0.0, Float($0.1)) }
        }
    }
}

/// Keys' cubic convolution kernel (1981) for |x| <= 1 ...
private func cubicNear(_ x: Double, a: Double) -> Double { ((a + 2) * x - (a + 3)) * x * x + 1 }
/// ... and for 1 < |x| < 2.
private func cubicFar(_ x: Double, a: Double) -> Double { ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
