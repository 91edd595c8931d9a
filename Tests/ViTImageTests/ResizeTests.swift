import Foundation
import Testing
import ViTImage
import ViTTensor
import ViTTestSupport

let resizeFolder = repositoryPath("Tests/ViTImageTests/Golden/resize")
let profileFolder = repositoryPath("Tests/ViTImageTests/Golden/profile")

func imagesPath(_ stem: String) -> String {
    let png = repositoryPath("Images/\(stem).png")
    return FileManager.default.fileExists(atPath: png) ? png : repositoryPath("Images/\(stem).jpg")
}

/// The 8-bit agreement of two images: exact samples, and the largest difference.
func agreement(_ actual: Image, _ expected: Image) -> (exact: Double, maxDifference: Int, description: String) {
    guard actual.width == expected.width, actual.height == expected.height, actual.channels == expected.channels else {
        return (
            0, 255,
            "size \(actual.width)x\(actual.height)x\(actual.channels), expected \(expected.width)x\(expected.height)x\(expected.channels)"
        )
    }
    var equal = 0, worst = 0, worstIndex = 0
    for i in 0..<actual.pixels.count {
        let d = abs(Int(actual.pixels[i]) - Int(expected.pixels[i]))
        if d == 0 { equal += 1 }
        if d > worst {
            worst = d
            worstIndex = i
        }
    }
    let exact = Double(equal) / Double(max(actual.pixels.count, 1))
    return (
        exact, worst, "\(equal) of \(actual.pixels.count) samples exact, max difference \(worst) at [\(worstIndex)]"
    )
}

/// Pillow's Image.resize for every filter at downscales and upscales
/// (Tests/Reference/images.py). The bar is 99.9% exact and 1 at most; the
/// implementation follows Pillow's arithmetic, so the test asks for every sample exact.
@Suite struct ResizeTests {
    static let goldens: [String] =
        (try? FileManager.default.contentsOfDirectory(atPath: resizeFolder))
        .map { $0.filter { $0.hasSuffix(".png") }.sorted() } ?? []

    @Test func goldensArePresent() { #expect(Self.goldens.count >= 100) }

    @Test(arguments: goldens) func matchesPillow(name: String) throws {
        // NAME = PHOTO-FILTER-WxH.png
        let parts = (name as NSString).deletingPathExtension.split(separator: "-")
        let size = parts[parts.count - 1].split(separator: "x").map { Int($0)! }
        let filter = ResampleFilter(rawValue: String(parts[parts.count - 2]))!
        let photo = parts[0..<(parts.count - 2)].joined(separator: "-")
        let source = try Image.read(path: imagesPath(photo))
        let expected = try Image.read(path: "\(resizeFolder)/\(name)")
        let actual = source.resized(width: size[0], height: size[1], filter: filter)
        let result = agreement(actual, expected)
        #expect(result.exact == 1, "\(name): \(result.description)")
    }

    @Test func nearestAndCropByHand() {
        // 4x1 gray [10, 20, 30, 40] -> 2x1 nearest samples at 1 and 3.
        let image = Image(width: 4, height: 1, channels: 1, pixels: [10, 20, 30, 40])
        #expect(image.resized(width: 2, height: 1, filter: .nearest).pixels == [20, 40])
        // Box halving averages pairs: (10 + 20) / 2 = 15, (30 + 40) / 2 = 35.
        #expect(image.resized(width: 2, height: 1, filter: .box).pixels == [15, 35])
        #expect(image.cropped(x: -1, y: 0, width: 3, height: 2).pixels == [0, 10, 20, 0, 0, 0])
        // Center crop offsets round half to even: (4 - 1) / 2 = 1.5 -> 2.
        #expect(image.centerCropped(width: 1, height: 1).pixels == [30])
        // Cropping larger pads: (4 - 6) pads 1 left and 1 right.
        #expect(image.centerCropped(width: 6, height: 1).pixels == [0, 10, 20, 30, 40, 0])
    }
}

/// The three profiles against HF ViTImageProcessorPil and timm's eval transforms on the
/// photos in Images/, value for value.
@Suite struct ProfileTests {
    static let cases: [(String, String)] = ["chelsea", "coffee", "astronaut", "rocket", "camera", "chelsea-rotated"]
        .flatMap { photo in PreprocessProfile.builtIn.map { (photo, $0.name) } }

    /// PIL's Image.transpose(ROTATE_90): a quarter turn counter-clockwise.
    func rotatedCounterClockwise(_ image: Image) -> Image {
        var out = Image(width: image.height, height: image.width, channels: image.channels)
        for y in 0..<out.height {
            for x in 0..<out.width {
                for c in 0..<image.channels { out[x, y, c] = image[image.width - 1 - y, x, c] }
            }
        }
        return out
    }

    @Test(arguments: cases) func matchesReference(photo: String, profileName: String) throws {
        let profile = try #require(PreprocessProfile.named(profileName))
        let image =
            photo == "chelsea-rotated"
            ? rotatedCounterClockwise(try Image.read(path: imagesPath("chelsea")))
            : try Image.read(path: imagesPath(photo))
        let expected = try Image.read(path: "\(profileFolder)/\(photo)-\(profileName).png")
        let actual = try profile.apply(to: image)
        let result = agreement(actual, expected)
        #expect(result.exact == 1, "\(photo) \(profileName): \(result.description)")
    }

    @Test func shorterSideSizesAsTorchvision() {
        // int(248 * long / short): 451x300 -> 372x248; 427x640 (rocket is 640x427) -> 371x248.
        #expect(PreprocessProfile.timmViT.resizedSize(width: 451, height: 300) == (372, 248))
        #expect(PreprocessProfile.timmViT.resizedSize(width: 640, height: 427) == (371, 248))
        #expect(PreprocessProfile.timmViT.resizedSize(width: 300, height: 451) == (248, 372))
    }

    @Test func normalizationByHand() {
        // value 255 -> (1 - 0.485) / 0.229 in red; value 0 -> -0.456 / 0.224 in green.
        let image = Image(width: 1, height: 1, channels: 3, pixels: [255, 0, 51])
        let t = PreprocessProfile.timmDeiT.normalizedTensor(image)
        #expect(t.shape == [3, 1, 1])
        #expect(abs(t[0, 0, 0] - (1 - 0.485) / 0.229) < 1e-6)
        #expect(abs(t[1, 0, 0] - (-0.456 / 0.224)) < 1e-6)
        #expect(abs(t[2, 0, 0] - (0.2 - 0.406) / 0.225) < 1e-6)
        let h = PreprocessProfile.hfViT.normalizedTensor(image)
        #expect(h[0, 0, 0] == 1 && h[1, 0, 0] == -1 && abs(h[2, 0, 0] + 0.6) < 1e-6)
    }

    /// Profiles for another input size: timm resizes to floor(N / crop_pct) (384 / 0.9 =
    /// 426.7 -> 426) and crops N; HF resizes to exactly N x N.
    @Test func profilesForOtherInputSizes() {
        let timm = PreprocessProfile.timmViT.forInputSize(384)
        #expect(timm.resize == .shorterSide(426) && timm.crop == .init(width: 384, height: 384))
        let hf = PreprocessProfile.hfViT.forInputSize(384)
        #expect(hf.resize == .exact(width: 384, height: 384) && hf.crop == nil)
        var unknown = PreprocessProfile.timmViT
        unknown.cropFraction = nil  // keeps 248 : 224
        #expect(unknown.forInputSize(112).resize == .shorterSide(124))
    }
}

/// Heat-map overlays and tiling, by hand.
@Suite struct HeatMapTests {
    @Test func overlayBlendsTheRamp() {
        let gray = Image(width: 2, height: 1, channels: 3, pixels: [100, 100, 100, 100, 100, 100])
        // Values 0 and 2 on a 2x1 grid scale to t = 0 and t = 1.
        let out = gray.overlaid(heatMap: [0, 2], gridWidth: 2, gridHeight: 1, opacity: 0.5)
        // t = 0: jet = (0, 0, 0.5); blended = 0.5 * 100 + 0.5 * (0, 0, 127.5) = (50, 50, 113.75)
        #expect(Array(out.pixels[0..<3]) == [50, 50, 114])
        // t = 1: jet = (0.5, 0, 0); blended = (113.75, 50, 50)
        #expect(Array(out.pixels[3..<6]) == [114, 50, 50])
    }

    @Test func tilesAreLaidOutInRows() {
        let tiles = (0..<3).map { Image(width: 2, height: 1, channels: 1, pixels: [UInt8($0), UInt8($0)]) }
        let grid = Image.tiled(tiles, columns: 2, spacing: 1)
        #expect(grid.width == 5 && grid.height == 3)
        #expect(grid.pixels == [0, 0, 255, 1, 1, 255, 255, 255, 255, 255, 2, 2, 255, 255, 255])
    }
}
