import Foundation
import ViTTensor

/// An 8-bit image: rows of pixels, each `channels` samples (1 gray, 3 RGB, 4 RGBA).
public struct Image: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let channels: Int
    /// Samples in [height, width, channels] order.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && channels >= 1, "bad image size \(width)x\(height)x\(channels)")
        precondition(
            pixels.count == width * height * channels,
            "\(width)x\(height)x\(channels) image needs \(width * height * channels) samples, got \(pixels.count)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// A black image.
    public init(width: Int, height: Int, channels: Int) {
        self.init(
            width: width, height: height, channels: channels,
            pixels: [UInt8](repeating: 0, count: width * height * channels))
    }

    /// The sample at column x, row y, channel c.
    public subscript(x: Int, y: Int, c: Int) -> UInt8 {
        get { pixels[(y * width + x) * channels + c] }
        set { pixels[(y * width + x) * channels + c] = newValue }
    }

    /// The pixels from `x, y` of the given size (PIL Image.crop). Parts outside the image
    /// are black, as in Pillow.
    public func cropped(x: Int, y: Int, width cropWidth: Int, height cropHeight: Int) -> Image {
        var out = Image(width: cropWidth, height: cropHeight, channels: channels)
        let x0 = max(x, 0), x1 = min(x + cropWidth, width)
        guard x1 > x0 else { return out }
        for row in max(y, 0)..<max(max(y, 0), min(y + cropHeight, height)) {
            let src = (row * width + x0) * channels
            let dst = ((row - y) * cropWidth + (x0 - x)) * channels
            out.pixels.replaceSubrange(
                dst..<(dst + (x1 - x0) * channels),
                with: pixels[src..<(src + (x1 - x0) * channels)])
        }
        return out
    }
}

/// A problem with an image file; the description is one line naming the file.
public struct ImageError: ReportableError {
    public let path: String
    public let reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(path): \(reason)" }
}

extension Image {
    /// A gray image as RGB with equal channels (Pillow's convert("RGB") of mode L).
    public func replicatedToRGB() -> Image {
        precondition(channels == 1, "replicatedToRGB takes a gray image")
        var out = Image(width: width, height: height, channels: 3)
        for i in 0..<(width * height) {
            for c in 0..<3 { out.pixels[i * 3 + c] = pixels[i] }
        }
        return out
    }

    /// The image with `channels` channels: gray replicated to RGB (`replicatedToRGB`), the
    /// first three channels averaged to gray, or the first `channels` kept.
    public func withChannels(_ channels: Int) -> Image {
        if channels == self.channels { return self }
        if self.channels == 1 && channels == 3 { return replicatedToRGB() }
        var out = Image(width: width, height: height, channels: channels)
        for i in 0..<(width * height) {
            if channels == 1 {
                let sum = (0..<3).reduce(0) { $0 + Int(pixels[i * self.channels + $1]) }
                out.pixels[i] = UInt8((sum + 1) / 3)
            } else {
                for c in 0..<channels {
                    out.pixels[i * channels + c] = pixels[i * self.channels + min(c, self.channels - 1)]
                }
            }
        }
        return out
    }
}
