import Foundation

/// Resampling filters with Pillow's definitions (PIL.Image.Resampling).
public enum ResampleFilter: String, Sendable, CaseIterable, Codable {
    case nearest, box, bilinear, hamming, bicubic, lanczos

    /// Pillow's integer code (PIL.Image.Resampling), as in preprocessor configs' `resample`.
    public init?(pillowCode: Int) {
        switch pillowCode {
        case 0: self = .nearest
        case 1: self = .lanczos
        case 2: self = .bilinear
        case 3: self = .bicubic
        case 4: self = .box
        case 5: self = .hamming
        default: return nil
        }
    }

    /// Half-width of the kernel at scale 1.
    var support: Double {
        switch self {
        case .nearest, .box: return 0.5
        case .bilinear, .hamming: return 1
        case .bicubic: return 2
        case .lanczos: return 3
        }
    }

    func weight(_ x: Double) -> Double {
        switch self {
        case .nearest, .box:
            return x > -0.5 && x <= 0.5 ? 1 : 0
        case .bilinear:
            let x = Swift.abs(x)
            return x < 1 ? 1 - x : 0
        case .hamming:
            let x = Swift.abs(x)
            if x == 0 { return 1 }
            if x >= 1 { return 0 }
            let px = x * Double.pi
            // Pillow writes these constants as single-precision literals.
            return sin(px) / px * (Double(Float(0.54)) + Double(Float(0.46)) * cos(px))
        case .bicubic:  // Keys' cubic convolution with a = -0.5
            let a = -0.5, x = Swift.abs(x)
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        case .lanczos:
            return x > -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0
        }
    }

    private func sinc(_ x: Double) -> Double {
        if x == 0 { return 1 }
        let px = x * Double.pi
        return sin(px) / px
    }
}

extension Image {
    /// This image resized to exactly `width` x `height` the way Pillow's `Image.resize` does
    /// it: nearest neighbour by its affine sampler, the other filters as a separable
    /// convolution whose support widens with the downscale factor (antialiasing), with
    /// fixed-point coefficients, and two passes (horizontal then vertical, or the reverse
    /// as Pillow 13 chooses), each rounded to 8 bits.
    public func resized(width outWidth: Int, height outHeight: Int, filter: ResampleFilter) -> Image {
        precondition(outWidth > 0 && outHeight > 0, "resize to an empty size \(outWidth)x\(outHeight)")
        if outWidth == width && outHeight == height { return self }
        if filter == .nearest { return resizedNearest(width: outWidth, height: outHeight) }
        let horizontal = { (image: Image) -> Image in
            guard outWidth != image.width else { return image }
            return image.resampledHorizontally(
                FixedPointCoefficients(inSize: image.width, outSize: outWidth, filter: filter))
        }
        let vertical = { (image: Image) -> Image in
            guard outHeight != image.height else { return image }
            return image.resampledVertically(
                FixedPointCoefficients(inSize: image.height, outSize: outHeight, filter: filter))
        }
        // Pillow 13 runs the vertical pass first when the height shrinks by more than twice
        // as many pixels as the width does (python-pillow/Pillow#9549); the order changes
        // the 8-bit rounding in between. Established on 1455 random cases against Pillow.
        // (`largestResizeBuffer` follows the same rule.)
        let verticalFirst = outHeight < height && height - outHeight > 2 * (width - outWidth)
        return verticalFirst ? horizontal(vertical(self)) : vertical(horizontal(self))
    }

    /// The most pixels `resized` holds at once going from `from` to `to`: the output, or the
    /// image between its two passes when that is larger; Int.max when the count overflows.
    public static func largestResizeBuffer(
        from: (width: Int, height: Int), to: (width: Int, height: Int), filter: ResampleFilter
    ) -> Int {
        func product(_ a: Int, _ b: Int) -> Int {
            let (value, overflow) = a.multipliedReportingOverflow(by: b)
            return overflow ? Int.max : value
        }
        let output = product(to.width, to.height)
        if filter == .nearest { return output }
        let verticalFirst = to.height < from.height && from.height - to.height > 2 * (from.width - to.width)
        let between = verticalFirst ? product(from.width, to.height) : product(to.width, from.height)
        return max(output, between)
    }

    /// Pillow's nearest neighbour: source coordinate (x + 0.5) * scale, accumulated in
    /// double precision one step at a time, and truncated.
    private func resizedNearest(width outWidth: Int, height outHeight: Int) -> Image {
        func table(_ inSize: Int, _ outSize: Int) -> [Int] {
            let step = Double(inSize) / Double(outSize)
            var position = step * 0.5
            var out = [Int](repeating: 0, count: outSize)
            for i in 0..<outSize {
                let index = position < 0 ? -1 : Int(position)
                out[i] = index < inSize ? index : -1  // outside: left black, as Pillow
                position += step
            }
            return out
        }
        let xs = table(width, outWidth), ys = table(height, outHeight)
        var out = Image(width: outWidth, height: outHeight, channels: channels)
        pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                for y in 0..<outHeight where ys[y] >= 0 {
                    let row = ys[y] * width
                    for x in 0..<outWidth where xs[x] >= 0 {
                        for c in 0..<channels {
                            dst[(y * outWidth + x) * channels + c] = src[(row + xs[x]) * channels + c]
                        }
                    }
                }
            }
        }
        return out
    }

    private func resampledHorizontally(_ k: FixedPointCoefficients) -> Image {
        var out = Image(width: k.outSize, height: height, channels: channels)
        let channels = self.channels, width = self.width
        pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                k.weights.withUnsafeBufferPointer { allWeights in
                    for y in 0..<height {
                        let row = src.baseAddress! + y * width * channels
                        for x in 0..<k.outSize {
                            let first = k.bounds[2 * x], n = k.bounds[2 * x + 1]
                            let weights = allWeights.baseAddress! + x * k.kernelSize
                            for c in 0..<channels {
                                var sum = FixedPointCoefficients.half
                                for i in 0..<n { sum += Int32(row[(first + i) * channels + c]) &* weights[i] }
                                dst[(y * k.outSize + x) * channels + c] = FixedPointCoefficients.clip8(sum)
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    private func resampledVertically(_ k: FixedPointCoefficients) -> Image {
        var out = Image(width: width, height: k.outSize, channels: channels)
        let rowLength = width * channels
        pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                k.weights.withUnsafeBufferPointer { allWeights in
                    // Row by row: each output row accumulates whole input rows, which
                    // reads memory in order; integer sums do not depend on the order.
                    var sums = [Int32](repeating: 0, count: rowLength)
                    for y in 0..<k.outSize {
                        let first = k.bounds[2 * y], n = k.bounds[2 * y + 1]
                        let weights = allWeights.baseAddress! + y * k.kernelSize
                        for i in 0..<rowLength { sums[i] = FixedPointCoefficients.half }
                        for j in 0..<n {
                            let row = src.baseAddress! + (first + j) * rowLength, w = weights[j]
                            for i in 0..<rowLength { sums[i] &+= Int32(row[i]) &* w }
                        }
                        let out = dst.baseAddress! + y * rowLength
                        for i in 0..<rowLength { out[i] = FixedPointCoefficients.clip8(sums[i]) }
                    }
                }
            }
        }
        return out
    }
}

/// Per output pixel: the first input pixel, how many follow, and their weights in fixed
/// point with 22 fractional bits, computed as Pillow's precompute_coeffs and
/// normalize_coeffs_8bpc do.
struct FixedPointCoefficients {
    static let precisionBits: Int32 = 22
    static let half: Int32 = 1 << (precisionBits - 1)

    let outSize: Int
    let kernelSize: Int
    /// [outSize, 2]: first input index and count.
    let bounds: [Int]
    /// [outSize, kernelSize].
    let weights: ContiguousArray<Int32>

    init(inSize: Int, outSize: Int, filter: ResampleFilter) {
        let scale = Double(Float(inSize)) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        let kernelSize = Int(ceil(support)) * 2 + 1
        var bounds = [Int](repeating: 0, count: outSize * 2)
        var weights = ContiguousArray<Int32>(repeating: 0, count: outSize * kernelSize)
        var k = [Double](repeating: 0, count: kernelSize)
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            let inverseScale = 1 / filterScale
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            var total = 0.0
            for x in 0..<xmax {
                let w = filter.weight((Double(x + xmin) - center + 0.5) * inverseScale)
                k[x] = w
                total += w
            }
            for x in 0..<kernelSize {
                var w = x < xmax ? k[x] : 0
                if x < xmax && total != 0 { w /= total }
                let scaled = w * Double(1 << Self.precisionBits)
                weights[xx * kernelSize + x] = Int32(
                    w < 0
                        ? (scaled - 0.5).rounded(.towardZero)
                        : (scaled + 0.5).rounded(.towardZero))
            }
            bounds[2 * xx] = xmin
            bounds[2 * xx + 1] = max(xmax, 0)
        }
        self.outSize = outSize
        self.kernelSize = kernelSize
        self.bounds = bounds
        self.weights = weights
    }

    /// The 8-bit value of a fixed-point sum, clamped to 0...255.
    @inline(__always)
    static func clip8(_ sum: Int32) -> UInt8 {
        let v = sum >> precisionBits
        return v < 0 ? 0 : v > 255 ? 255 : UInt8(v)
    }
}
