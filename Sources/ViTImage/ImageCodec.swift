import CImageCodecs
import Foundation
import ViTTensor

// The one Swift file that calls the C codecs. Decoded samples are turned into 8-bit RGB
// exactly as Pillow's Image.open(...).convert("RGB") does, so that model inputs equal
// those of Hugging Face and timm.

extension Image {
    /// Pillow's decompression-bomb threshold: Image.open refuses more than twice
    /// MAX_IMAGE_PIXELS (1024 * 1024 * 1024 / 4 / 3) pixels.
    public static let defaultMaxPixels = 178_956_970

    /// The most working memory libjpeg may take for one image, beyond the decoded pixels.
    /// A progressive (multi-scan) JPEG keeps every DCT coefficient of the whole image, 2 bytes
    /// per sample: 8 bytes a pixel for 4:4:4 CMYK, so a file within the pixel limit could
    /// otherwise take 1.4 GB before its pixels are written out. Baseline JPEGs need only a
    /// few rows of blocks.
    public static let defaultMaxDecoderMemory = 1 << 30

    /// Reads a PNG or JPEG file as 8-bit RGB, as Pillow's `convert("RGB")`.
    /// Images with more than `maxPixels` pixels are refused before any decoding.
    public static func read(
        path: String, maxPixels: Int = defaultMaxPixels, maxDecoderMemory: Int = defaultMaxDecoderMemory
    ) throws -> Image {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ImageError(path: path, reason: "no such file")
        }
        guard !isDirectory.boolValue else { throw ImageError(path: path, reason: "is a directory, not an image") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ImageError(path: path, reason: "cannot read the file")
        }
        return try decode(data, name: path, maxPixels: maxPixels, maxDecoderMemory: maxDecoderMemory)
    }

    /// Decodes PNG or JPEG bytes as 8-bit RGB; `name` is used in error messages.
    public static func decode(
        _ data: Data, name: String, maxPixels: Int = defaultMaxPixels,
        maxDecoderMemory: Int = defaultMaxDecoderMemory
    ) throws -> Image {
        func fail(_ reason: String) -> ImageError { ImageError(path: name, reason: reason) }
        func overBudget(_ width: some BinaryInteger, _ height: some BinaryInteger) -> ImageError {
            fail("\(width)x\(height) is more than the limit of \(maxPixels) pixels (a decompression bomb?)")
        }
        guard !data.isEmpty else { throw fail("empty file, not an image") }
        let bytes = [UInt8](data)
        let format: ImageFormat
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            format = .png
        } else if bytes.starts(with: [0xFF, 0xD8, 0xFF]) {
            format = .jpeg
        } else {
            throw fail("not a PNG or JPEG image")
        }
        // The pixel budget is checked from the header alone, before libpng or libjpeg
        // allocate anything or read further.
        // (PNG sides go up to 2^31 - 1, so their product can overflow.)
        if let (width, height) = headerSize(bytes, format: format) {
            let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
            guard !overflow, pixels <= maxPixels else { throw overBudget(width, height) }
        }
        var message = [CChar](repeating: 0, count: 256)
        var info = cic_info()
        let infoStatus = bytes.withUnsafeBufferPointer { b in
            format == .png
                ? cic_png_read_info(b.baseAddress, b.count, &info, &message, message.count)
                : cic_jpeg_read_info(b.baseAddress, b.count, &info, &message, message.count)
        }
        guard infoStatus == 0 else { throw fail("invalid \(format.name): \(cString(message))") }
        guard info.width > 0, info.height > 0 else { throw fail("invalid \(format.name): empty image") }
        let pixelCount = Int(info.width) * Int(info.height)
        guard pixelCount <= maxPixels else { throw overBudget(info.width, info.height) }
        let sampleBytes = Int(info.bit_depth) / 8
        var samples = [UInt8](repeating: 0, count: pixelCount * Int(info.channels) * sampleBytes)
        let status = bytes.withUnsafeBufferPointer { b in
            samples.withUnsafeMutableBufferPointer { out in
                format == .png
                    ? cic_png_decode(b.baseAddress, b.count, out.baseAddress, out.count, &message, message.count)
                    : cic_jpeg_decode(
                        b.baseAddress, b.count, out.baseAddress, out.count, maxDecoderMemory, &message,
                        message.count)
            }
        }
        guard status != 2 else {
            let limit = maxDecoderMemory >= 1 << 20 ? "\(maxDecoderMemory >> 20) MB" : "\(maxDecoderMemory) bytes"
            throw fail(
                "this \(info.width)x\(info.height) progressive JPEG needs more than the limit of \(limit) of decoder memory"
            )
        }
        guard status == 0 else { throw fail("invalid \(format.name): \(cString(message))") }
        let width = Int(info.width), height = Int(info.height)
        return Image(
            width: width, height: height, channels: 3,
            pixels: pillowRGB(samples, info: info, format: format, pixelCount: pixelCount))
    }

    /// Width and height from the PNG IHDR chunk or the first JPEG start-of-frame marker.
    private static func headerSize(_ bytes: [UInt8], format: ImageFormat) -> (Int, Int)? {
        func be32(_ i: Int) -> Int { bytes[i..<(i + 4)].reduce(0) { $0 << 8 | Int($1) } }
        func be16(_ i: Int) -> Int { Int(bytes[i]) << 8 | Int(bytes[i + 1]) }
        switch format {
        case .png:
            guard bytes.count >= 24, bytes[12..<16].elementsEqual("IHDR".utf8) else { return nil }
            return (be32(16), be32(20))
        case .jpeg:
            var i = 2
            while i + 4 <= bytes.count {
                guard bytes[i] == 0xFF else { return nil }
                let marker = bytes[i + 1]
                if marker == 0xFF {
                    i += 1
                    continue
                }  // fill byte
                if marker == 0xD8 || (0xD0...0xD7).contains(marker) {
                    i += 2
                    continue
                }
                let length = be16(i + 2)
                // SOF0...SOF15 except DHT (C4), JPG (C8) and DAC (CC)
                if (0xC0...0xCF).contains(marker) && ![0xC4, 0xC8, 0xCC].contains(marker) {
                    guard i + 9 <= bytes.count else { return nil }
                    return (be16(i + 7), be16(i + 5))
                }
                if marker == 0xDA || marker == 0xD9 { return nil }  // scan data or end
                i += 2 + length
            }
            return nil
        }
    }

    /// Pillow's conversion of each decoded mode to RGB.
    private static func pillowRGB(
        _ samples: [UInt8], info: cic_info, format: ImageFormat,
        pixelCount: Int
    ) -> [UInt8] {
        let channels = Int(info.channels)
        var rgb = [UInt8](repeating: 0, count: pixelCount * 3)
        if info.bit_depth == 16 {
            // Pillow opens 16-bit gray as mode "I;16", whose RGB conversion clips values to
            // 255; every other 16-bit layout is unpacked by keeping the high byte.
            let clip = format == .png && info.color_type == 0
            for p in 0..<pixelCount {
                for c in 0..<3 {
                    let s = p * channels + (channels >= 3 ? c : 0)
                    let hi = samples[2 * s], lo = samples[2 * s + 1]
                    rgb[3 * p + c] = clip ? (hi == 0 ? lo : 255) : hi
                }
            }
            return rgb
        }
        switch channels {
        case 1, 2:  // L and LA: gray replicated, alpha dropped
            for p in 0..<pixelCount {
                let v = samples[p * channels]
                rgb[3 * p] = v
                rgb[3 * p + 1] = v
                rgb[3 * p + 2] = v
            }
        case 3:
            return samples
        case 4 where format == .jpeg:
            // Pillow reads every 4-component JPEG as Adobe-inverted CMYK ("CMYK;I"), then
            // converts with R = 255 - k' - c' * (255 - k') / 255 in fixed point.
            for p in 0..<pixelCount {
                let nk = Int(samples[4 * p + 3])  // the inverted K is 255 - K
                for c in 0..<3 {
                    let ink = 255 - Int(samples[4 * p + c])
                    let t = ink * nk + 128
                    let scaled = ((t >> 8) + t) >> 8
                    rgb[3 * p + c] = UInt8(clamping: nk - scaled)
                }
            }
        default:  // RGBA: alpha dropped
            for p in 0..<pixelCount {
                rgb[3 * p] = samples[4 * p]
                rgb[3 * p + 1] = samples[4 * p + 1]
                rgb[3 * p + 2] = samples[4 * p + 2]
            }
        }
        return rgb
    }

    /// PNG bytes of this image (8-bit gray, gray+alpha, RGB or RGBA) with text chunks:
    /// tEXt for ASCII values, iTXt (UTF-8) for the others.
    public func pngData(text: [(key: String, value: String)] = []) throws -> Data {
        var keys = text.map { strdup($0.key) }, values = text.map { strdup($0.value) }
        defer { for pointer in keys + values { free(pointer) } }
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = pixels.withUnsafeBufferPointer { p in
            keys.withUnsafeMutableBufferPointer { k in
                values.withUnsafeMutableBufferPointer { v in
                    k.withMemoryRebound(to: UnsafePointer<CChar>?.self) { k in
                        v.withMemoryRebound(to: UnsafePointer<CChar>?.self) { v in
                            cic_png_encode(
                                p.baseAddress, Int32(width), Int32(height), Int32(channels),
                                k.baseAddress, v.baseAddress, Int32(text.count),
                                &out, &size, &message, message.count)
                        }
                    }
                }
            }
        }
        guard status == 0, let out else {
            throw ImageError(path: "<png>", reason: "cannot encode PNG: \(cString(message))")
        }
        defer { cic_free(out) }
        return Data(bytes: out, count: size)
    }

    /// Writes this image as PNG with text chunks (`pngData`); the file appears whole or not
    /// at all.
    public func writePNG(path: String, text: [(key: String, value: String)] = []) throws {
        let data: Data
        do {
            data = try pngData(text: text)
        } catch let error as ImageError {
            throw ImageError(path: path, reason: error.reason)
        }
        do {
            try writeAtomically(data, toPath: path)
        } catch let error as FileWriteError {
            throw ImageError(path: path, reason: error.reason)
        }
    }
}

private enum ImageFormat {
    case png, jpeg
    var name: String { self == .png ? "PNG" : "JPEG" }
}

/// The text of a NUL-terminated C message buffer.
private func cString(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
