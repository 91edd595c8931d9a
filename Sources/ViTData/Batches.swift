import Foundation
import ViTImage
import ViTTensor

/// Training-time augmentation, applied to the 8-bit image after preprocessing.
public struct Augmentation: Sendable, Codable, Equatable {
    /// Random crop after zero padding by this many pixels on each side (a random shift).
    public var cropPadding: Int
    /// Mirror left-right with probability 1/2.
    public var horizontalFlip: Bool
    /// Random erasing (Zhong et al. 2020): with this probability, one rectangle of 2% to
    /// 33% of the area and aspect ratio 0.3 to 3.3 is set to the normalized mean (0).
    public var erasingProbability: Float

    public init(cropPadding: Int = 0, horizontalFlip: Bool = false, erasingProbability: Float = 0) {
        self.cropPadding = cropPadding
        self.horizontalFlip = horizontalFlip
        self.erasingProbability = erasingProbability
    }
}

/// Mixes numbers into one seed (SplitMix64 steps), so that every random choice of a
/// training run is a function of (seed, epoch, sample) and can be redone after a restart.
public func derivedSeed(_ parts: UInt64...) -> UInt64 {
    var generator = SeededGenerator(seed: 0x5357_4946_5456_4954)  // "SWIFTVIT"
    var value: UInt64 = 0
    for part in parts {
        generator = SeededGenerator(seed: generator.next() ^ part)
        value = generator.next()
    }
    return value
}

/// Makes model inputs from a dataset: preprocessing, augmentation and normalization.
public struct BatchMaker: Sendable {
    public let data: LabeledImages
    public let profile: PreprocessProfile
    public let augmentation: Augmentation?
    public let seed: UInt64

    /// Refuses data with an image too large to resize (`PreprocessProfile.checkResize`).
    public init(
        data: LabeledImages, profile: PreprocessProfile, augmentation: Augmentation?, seed: UInt64
    ) throws(PreprocessError) {
        for (index, image) in data.images.enumerated() {
            do {
                try profile.checkResize(width: image.width, height: image.height)
            } catch {
                throw PreprocessError(reason: "image \(index): \(error.reason)")
            }
        }
        self.data = data
        self.profile = profile
        self.augmentation = augmentation
        self.seed = seed
    }

    /// The order of the samples in an epoch: a seeded Fisher-Yates shuffle.
    public func order(epoch: Int) -> [Int] { shuffledIndices(data.count, seed: derivedSeed(seed, UInt64(epoch))) }

    /// Images [B, C, H, W] and their labels; augmentation draws from (seed, epoch, sample).
    public func batch(_ indices: [Int], epoch: Int) -> (images: Tensor, labels: [Int]) {
        let tensors = indices.map { sample(index: $0, epoch: epoch) }
        return (Tensor.stack(tensors), indices.map { data.labels[$0] })
    }

    /// One sample [C, H, W].
    public func sample(index: Int, epoch: Int) -> Tensor {
        var image = profile.applyChecked(to: data.images[index].withChannels(profile.mean.count))
        guard let augmentation else { return profile.normalizedTensor(image) }
        var generator = SeededGenerator(seed: derivedSeed(seed, UInt64(epoch), UInt64(index)))
        let p = augmentation.cropPadding
        if p > 0 {
            let dx = Int(generator.next() % UInt64(2 * p + 1)) - p, dy = Int(generator.next() % UInt64(2 * p + 1)) - p
            image = image.shifted(dx: dx, dy: dy)
        }
        if augmentation.horizontalFlip && generator.next() & 1 == 1 { image = image.mirrored() }
        let tensor = profile.normalizedTensor(image)
        if augmentation.erasingProbability > 0 && generator.nextUniform() < augmentation.erasingProbability {
            erase(tensor, using: &generator)
        }
        return tensor
    }

    /// Sets one random rectangle of a [C, H, W] tensor to 0 (up to 10 tries to fit one).
    func erase(_ tensor: Tensor, using generator: inout SeededGenerator) {
        let (c, h, w) = (tensor.shape[0], tensor.shape[1], tensor.shape[2])
        for _ in 0..<10 {
            let area = Float(h * w) * (0.02 + 0.31 * generator.nextUniform())
            let logRatio = log(0.3) + (log(1 / 0.3) - log(0.3)) * generator.nextUniform()
            let ratio = exp(logRatio)
            let (eh, ew) = (Int((area * ratio).squareRoot().rounded()), Int((area / ratio).squareRoot().rounded()))
            guard eh > 0, ew > 0, eh < h, ew < w else { continue }
            let (y0, x0) = (Int(generator.next() % UInt64(h - eh + 1)), Int(generator.next() % UInt64(w - ew + 1)))
            for ch in 0..<c {
                for y in y0..<(y0 + eh) { (tensor.data + (ch * h + y) * w + x0).update(repeating: 0, count: ew) }
            }
            return
        }
    }
}

/// 0..<count in a random order drawn from `seed` (Fisher-Yates).
public func shuffledIndices(_ count: Int, seed: UInt64) -> [Int] {
    var generator = SeededGenerator(seed: seed)
    var indices = Array(0..<count)
    for i in stride(from: count - 1, to: 0, by: -1) { indices.swapAt(i, Int(generator.next() % UInt64(i + 1))) }
    return indices
}

extension Image {
    /// The image with `margin` pixels of zeros on every side.
    public func padded(by margin: Int) -> Image {
        var out = Image(width: width + 2 * margin, height: height + 2 * margin, channels: channels)
        for y in 0..<height {
            let dst = ((y + margin) * out.width + margin) * channels
            out.pixels.replaceSubrange(
                dst..<(dst + width * channels), with: pixels[(y * width * channels)..<((y + 1) * width * channels)])
        }
        return out
    }

    /// Moved by (dx, dy) pixels, zeros shifted in: a crop of the zero-padded image.
    public func shifted(dx: Int, dy: Int) -> Image {
        var out = Image(width: width, height: height, channels: channels)
        for y in 0..<height {
            let sy = y + dy
            guard sy >= 0 && sy < height else { continue }
            for x in 0..<width {
                let sx = x + dx
                guard sx >= 0 && sx < width else { continue }
                for c in 0..<channels {
                    out.pixels[(y * width + x) * channels + c] = pixels[(sy * width + sx) * channels + c]
                }
            }
        }
        return out
    }

    /// Mirrored left to right.
    public func mirrored() -> Image {
        var out = self
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels {
                    out.pixels[(y * width + x) * channels + c] = pixels[(y * width + width - 1 - x) * channels + c]
                }
            }
        }
        return out
    }
}
