import Foundation
import ViTTensor

/// How an image becomes a model input: resize, optional center crop, rescale, normalize.
///
/// The shipped profiles are plain values (docs/ARCHITECTURE.md, "Preprocessing"); a checkpoint's
/// preprocessing config decodes into the same struct.
public struct PreprocessProfile: Sendable, Equatable, Codable {
    public enum Resize: Sendable, Equatable, Codable {
        /// Exactly this size, ignoring the aspect ratio (HF ViTImageProcessor).
        case exact(width: Int, height: Int)
        /// The shorter side to this length, the longer side scaled and truncated
        /// (torchvision Resize with an int size).
        case shorterSide(Int)
    }

    public var name: String
    public var resize: Resize
    public var filter: ResampleFilter
    /// Center crop after resizing (torchvision CenterCrop), or none.
    public var crop: CropSize?
    /// Multiplies the 8-bit values (1/255 for inputs in [0, 1]).
    public var rescale: Float
    /// Per channel (R, G, B).
    public var mean: [Float]
    public var std: [Float]
    /// The crop's share of the resized shorter side (timm's crop_pct), when known: at
    /// another input size N the shorter side becomes floor(N / cropFraction).
    public var cropFraction: Double?

    public struct CropSize: Sendable, Equatable, Codable {
        public var width: Int
        public var height: Int
        public init(width: Int, height: Int) {
            self.width = width
            self.height = height
        }
    }

    public init(
        name: String, resize: Resize, filter: ResampleFilter, crop: CropSize?,
        rescale: Float = 1 / 255, mean: [Float], std: [Float], cropFraction: Double? = nil
    ) {
        self.name = name
        self.resize = resize
        self.filter = filter
        self.crop = crop
        self.rescale = rescale
        self.mean = mean
        self.std = std
        self.cropFraction = cropFraction
    }

    /// HF ViTImageProcessor (google/vit-base-patch16-224): 224x224 bilinear, no crop,
    /// mean = std = 0.5.
    public static let hfViT = PreprocessProfile(
        name: "hf-vit", resize: .exact(width: 224, height: 224), filter: .bilinear, crop: nil,
        mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5])

    /// timm's eval transform for vit_*_patch16_224.augreg: shorter side to
    /// floor(224 / 0.9) = 248 bicubic, center crop 224, mean = std = 0.5.
    public static let timmViT = PreprocessProfile(
        name: "timm-vit", resize: .shorterSide(248), filter: .bicubic,
        crop: CropSize(width: 224, height: 224), mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5],
        cropFraction: 0.9)

    /// timm's eval transform for DeiT: as timm-vit with the ImageNet mean and std.
    public static let timmDeiT = PreprocessProfile(
        name: "timm-deit", resize: .shorterSide(248), filter: .bicubic,
        crop: CropSize(width: 224, height: 224),
        mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], cropFraction: 0.9)

    /// The shipped profiles, by name.
    public static let builtIn: [PreprocessProfile] = [hfViT, timmViT, timmDeiT]

    /// A shipped profile by its name (`hf-vit`, `timm-vit`, `timm-deit`).
    public static func named(_ name: String) -> PreprocessProfile? {
        builtIn.first { $0.name == name }
    }

    /// The same steps for a model input of size x size: an exact resize becomes size x size;
    /// a shorter-side resize followed by a center crop resizes to floor(size / cropFraction)
    /// as timm does (or keeps its ratio of resize to crop when the fraction is unknown) and
    /// crops size x size.
    public func forInputSize(_ size: Int) -> PreprocessProfile {
        var profile = self
        switch resize {
        case .exact:
            profile.resize = .exact(width: size, height: size)
        case .shorterSide(let side):
            if let cropFraction {
                profile.resize = .shorterSide(Int((Double(size) / cropFraction).rounded(.down)))
            } else {
                let cropSide = crop.map { min($0.width, $0.height) } ?? side
                profile.resize = .shorterSide(Int((Double(size) * Double(side) / Double(cropSide)).rounded()))
            }
        }
        if crop != nil { profile.crop = CropSize(width: size, height: size) }
        return profile
    }

    /// The largest side a profile resizes or crops to: 16,384 pixels.
    public static let maxSide = 16_384

    /// The most pixels a resize may produce, or hold between its two passes: 2^26
    /// (8192 x 8192 RGB is 192 MB).
    public static let maxResizePixels = 1 << 26

    /// Why this profile cannot make inputs for a model of `channels` channels, or nil: sizes
    /// and crops in 1...maxSide, a positive crop fraction, a finite positive rescale factor,
    /// and `channels` finite means and positive finite standard deviations.
    public func problem(channels: Int) -> String? {
        var sides: [Int]
        switch resize {
        case .exact(let width, let height): sides = [width, height]
        case .shorterSide(let side): sides = [side]
        }
        sides += crop.map { [$0.width, $0.height] } ?? []
        if let bad = sides.first(where: { !(1...Self.maxSide).contains($0) }) {
            return "resize or crop size \(bad) is out of range (1 to \(Self.maxSide))"
        }
        if let cropFraction, !(cropFraction.isFinite && cropFraction > 0) {
            return "crop fraction \(cropFraction) is not positive"
        }
        guard rescale.isFinite && rescale > 0 else { return "rescale factor \(rescale) is not positive" }
        guard mean.count == channels, std.count == channels else {
            return "mean has \(mean.count) and std \(std.count) entries for a model of \(channels) channels"
        }
        if let bad = mean.first(where: { !$0.isFinite }) { return "mean \(bad) is not finite" }
        if let bad = std.first(where: { !($0.isFinite && $0 > 0) }) { return "std \(bad) is not positive" }
        return nil
    }

    /// The size after resizing an image of the given size.
    public func resizedSize(width: Int, height: Int) -> (width: Int, height: Int) {
        switch resize {
        case .exact(let w, let h):
            return (w, h)
        case .shorterSide(let size):
            // torchvision: int(size * long / short), in double precision.
            if width <= height {
                return (size, Int(Double(size * height) / Double(width)))
            }
            return (Int(Double(size * width) / Double(height)), size)
        }
    }

    /// Refuses an image whose resize would hold more than `maxResizePixels` pixels (such as
    /// a 100000 x 1 image whose shorter side becomes 248).
    public func checkResize(width: Int, height: Int) throws(PreprocessError) {
        let size = resizedSize(width: width, height: height)
        let held = Image.largestResizeBuffer(from: (width, height), to: size, filter: filter)
        guard held <= Self.maxResizePixels else {
            throw PreprocessError(
                reason:
                    "resizing \(width)x\(height) to \(size.width)x\(size.height) needs more than the limit of \(Self.maxResizePixels) pixels"
            )
        }
    }

    /// The 8-bit model input before rescaling and normalization: resized, then cropped.
    public func apply(to image: Image) throws(PreprocessError) -> Image {
        try checkResize(width: image.width, height: image.height)
        return applyChecked(to: image)
    }

    /// `apply` for an image whose size `checkResize` accepted.
    package func applyChecked(to image: Image) -> Image {
        let size = resizedSize(width: image.width, height: image.height)
        var out = image.resized(width: size.width, height: size.height, filter: filter)
        if let crop {
            out = out.centerCropped(width: crop.width, height: crop.height)
        }
        return out
    }

    /// The normalized model input, [C, H, W]: ((value * rescale) - mean) / std, after
    /// giving the image the profile's channels (`Image.withChannels`: gray replicated).
    public func tensor(from image: Image) throws(PreprocessError) -> Tensor {
        let input = try apply(to: image.withChannels(mean.count))
        return normalizedTensor(input)
    }

    /// Rescales and normalizes an already resized and cropped image to [C, H, W].
    public func normalizedTensor(_ image: Image) -> Tensor {
        let (h, w, c) = (image.height, image.width, image.channels)
        precondition(mean.count == c && std.count == c, "profile \(name) has \(mean.count) channels, image has \(c)")
        let out = Tensor(shape: [c, h, w])
        let plane = h * w
        image.pixels.withUnsafeBufferPointer { src in
            for ch in 0..<c {
                let m = mean[ch], s = std[ch], dst = out.data + ch * plane
                for p in 0..<plane { dst[p] = (Float(src[p * c + ch]) * rescale - m) / s }
            }
        }
        return out
    }
}

/// Why an image cannot be preprocessed (it is too large to resize); the caller names the file.
public struct PreprocessError: ReportableError {
    public let reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { reason }

    /// The same problem as an error naming the image's file.
    public func naming(_ path: String) -> ImageError { ImageError(path: path, reason: reason) }
}

extension Image {
    /// The centered `width` x `height` region (torchvision CenterCrop): offsets are
    /// round((size - crop) / 2) with ties to even, as Python's round; a crop larger than
    /// the image pads it with black.
    public func centerCropped(width cropWidth: Int, height cropHeight: Int) -> Image {
        if cropWidth == width && cropHeight == height { return self }
        var image = self
        if cropWidth > width || cropHeight > height {
            // torchvision pads (crop - size) // 2 before and the rest after, then crops.
            let padLeft = max(cropWidth - width, 0) / 2, padTop = max(cropHeight - height, 0) / 2
            let paddedWidth = max(width, cropWidth), paddedHeight = max(height, cropHeight)
            image = cropped(x: -padLeft, y: -padTop, width: paddedWidth, height: paddedHeight)
        }
        let top = Int((Double(image.height - cropHeight) / 2).rounded(.toNearestOrEven))
        let left = Int((Double(image.width - cropWidth) / 2).rounded(.toNearestOrEven))
        return image.cropped(x: left, y: top, width: cropWidth, height: cropHeight)
    }
}
