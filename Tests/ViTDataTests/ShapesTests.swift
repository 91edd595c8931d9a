import Foundation
import Testing
import ViTData
import ViTImage
import ViTTensor
import ViTTestSupport

/// The synthetic Shapes data set: rendering against hand-computed pixels, images that show
/// what their attributes say, captions that name them, and the held-out pairs.
@Suite struct ShapesTests {
    func pixel(_ image: Image, _ x: Int, _ y: Int) -> [UInt8] {
        Array(image.pixels[((y * image.width + x) * 3)..<((y * image.width + x) * 3 + 3)])
    }

    /// A large white square at the center (16, 16) spans 16 +- 5.5 * 0.85 = [11.325, 20.675]
    /// in both axes. Pixel 11 holds the sub-pixel centers 11 + (k + 0.5) / 8; those from
    /// 11.4375 on (5 of 8) are inside, so an edge pixel is 5/8 white and a corner 25/64.
    @Test func squareEdgesByHand() {
        let attributes = ShapeAttributes(
            shape: "square", color: "white", size: "large", position: "center", background: "black")
        let image = Shapes.render(attributes)
        #expect(image.width == 32 && image.height == 32 && image.channels == 3)
        #expect(pixel(image, 16, 16) == [245, 245, 245])
        #expect(pixel(image, 12, 19) == [245, 245, 245])
        #expect(pixel(image, 11, 16) == [153, 153, 153])  // 245 * 5/8 = 153.1
        #expect(pixel(image, 20, 16) == [153, 153, 153])  // 20.675: centers up to 20.5625, 5 of 8
        #expect(pixel(image, 11, 11) == [96, 96, 96])  // 245 * 25/64 = 95.7
        #expect(pixel(image, 10, 16) == [0, 0, 0])
        #expect(pixel(image, 21, 21) == [0, 0, 0])
        // The other pixels: inside the 10 x 10 core white, outside the 12 x 12 ring black.
        for y in 0..<32 {
            for x in 0..<32 {
                let value = pixel(image, x, y)
                if (12...19).contains(x) && (12...19).contains(y) { #expect(value == [245, 245, 245]) }
                if !(11...20).contains(x) || !(11...20).contains(y) { #expect(value == [0, 0, 0]) }
            }
        }
    }

    /// A small red circle in the top left (center (16/3, 16/3) = 5.33, radius 3) on navy:
    /// pixel (5, 5) lies wholly inside (its farthest corner is 0.94 away), pixel (1, 5)
    /// wholly outside (nearest point 3.33 away), and the blend of a partly covered pixel
    /// lies between the two colours channel by channel.
    @Test func circleByHand() {
        let attributes = ShapeAttributes(
            shape: "circle", color: "red", size: "small", position: "top left", background: "navy")
        let image = Shapes.render(attributes)
        #expect(pixel(image, 5, 5) == [220, 40, 40])
        #expect(pixel(image, 1, 5) == [20, 24, 70])
        #expect(pixel(image, 9, 9) == [20, 24, 70])
        let edge = pixel(image, 2, 5)  // center distance 2.83 to 3.83: partly inside
        #expect(edge != [220, 40, 40] && edge != [20, 24, 70])
        #expect(edge[0] > 20 && edge[0] < 220 && edge[1] > 24 && edge[1] < 40 && edge[2] > 40 && edge[2] < 70)
    }

    /// Sample i depends on (seed, i) alone: the same sample whether it is drawn alone, in a
    /// rendered set of any size, or after other samples; other seeds give other images.
    @Test func sampleDependsOnSeedAndIndexAlone() throws {
        let first = Shapes.sample(index: 17, seed: 5)
        for index in [3, 999, 0] { _ = Shapes.sample(index: index, seed: 5) }  // other draws between
        let again = Shapes.sample(index: 17, seed: 5)
        #expect(first.image.pixels == again.image.pixels && first.caption == again.caption)
        for count in [18, 40] {
            let set = LabeledImages.shapes(attribute: "color", count: count, seed: 5)
            #expect(set.images[17].pixels == first.image.pixels, "sample 17 in a set of \(count)")
        }
        let differing = (0..<20).filter {
            Shapes.sample(index: $0, seed: 5).image.pixels != Shapes.sample(index: $0, seed: 6).image.pixels
        }
        #expect(differing.count >= 18)
    }

    /// For 600 samples of every pair: the fully covered pixels have exactly the named colour,
    /// their centroid lies in the named grid cell, small shapes cover fewer of them than
    /// large ones, and everything else blends toward the named background.
    @Test func imagesShowTheirAttributes() {
        var smallAreas: [Int] = [], largeAreas: [Int] = []
        for index in 0..<600 {
            let sample = Shapes.sample(index: index, seed: 11, split: .all)
            let a = sample.attributes
            let color = Shapes.rgb[a.color]!, background = Shapes.rgb[a.background]!
            let full = [color.0, color.1, color.2], plain = [background.0, background.1, background.2]
            var count = 0, sumX = 0, sumY = 0
            for y in 0..<32 {
                for x in 0..<32 {
                    let value = pixel(sample.image, x, y)
                    if value == full {
                        count += 1
                        sumX += x
                        sumY += y
                    } else if value != plain {
                        // A blend: each channel between background and colour.
                        for (c, v) in value.enumerated() {
                            #expect(v >= min(full[c], plain[c]) && v <= max(full[c], plain[c]), "sample \(index)")
                        }
                    }
                }
            }
            #expect(count > 0, "sample \(index): no fully covered pixel")
            let cell = Shapes.positions.firstIndex(of: a.position)!
            let (column, row) = (cell % 3, cell / 3)
            let (meanX, meanY) = (Float(sumX) / Float(count) + 0.5, Float(sumY) / Float(count) + 0.5)
            #expect(Int(meanX / (32 / 3)) == column && Int(meanY / (32 / 3)) == row, "sample \(index): \(a)")
            if a.size == "small" { smallAreas.append(count) } else { largeAreas.append(count) }
        }
        #expect(smallAreas.max()! < largeAreas.min()!, "small \(smallAreas.max()!), large \(largeAreas.min()!)")
    }

    @Test func captionsNameTheAttributes() {
        for index in 0..<500 {
            let sample = Shapes.sample(index: index, seed: 3, split: .all)
            let a = sample.attributes, caption = sample.caption
            for value in [a.shape, a.color, a.size, a.position] {
                #expect(Shapes.synonyms[value]!.contains { caption.contains($0) }, "'\(caption)' lacks \(value)")
            }
            for other in Shapes.shapes where other != a.shape {
                #expect(!Shapes.synonyms[other]!.contains { caption.contains($0) }, "'\(caption)' names \(other)")
            }
            if caption.hasSuffix("background") {
                #expect(Shapes.synonyms[a.background]!.contains { caption.hasSuffix("\($0) background") })
            }
            #expect(!caption.contains("a a") && !caption.contains("a o") && !caption.contains("a i"), "'\(caption)'")
        }
    }

    @Test func heldOutPairsStayOutOfTraining() {
        var train = Set<[String]>(), heldOut = Set<[String]>(), all = Set<[String]>()
        for index in 0..<1500 {
            let t = Shapes.sample(index: index, seed: 2, split: .train).attributes
            train.insert([t.shape, t.color])
            let h = Shapes.sample(index: index, seed: 2, split: .heldOut).attributes
            heldOut.insert([h.shape, h.color])
            let a = Shapes.sample(index: index, seed: 2, split: .all).attributes
            all.insert([a.shape, a.color])
        }
        #expect(train.isDisjoint(with: Shapes.heldOutPairs))
        #expect(train.count == 35)
        #expect(heldOut == Shapes.heldOutPairs)
        #expect(all.count == 40)
    }

    @Test func captionedFolderErrors() throws {
        let folder = makeTemporaryFolder()
        #expect(throws: FileError.self) { try CaptionedImages.folder(folder) }
        try Data("{\"file_name\": \"a.png\", \"text\": \"x\"}\nnot json\n".utf8)
            .write(to: URL(fileURLWithPath: "\(folder)/metadata.jsonl"))
        let image = Shapes.sample(index: 0, seed: 0).image
        try image.writePNG(path: "\(folder)/a.png")
        do {
            _ = try CaptionedImages.folder(folder)
            Issue.record("a bad line was accepted")
        } catch {
            #expect("\(error)" == "\(folder)/metadata.jsonl: line 2: not a JSON object with file_name and text strings")
        }
        try Data("{\"file_name\": \"a.png\", \"text\": \"x\", \"shape\": \"circle\"}\n\n".utf8)
            .write(to: URL(fileURLWithPath: "\(folder)/metadata.jsonl"))
        let data = try CaptionedImages.folder(folder)
        #expect(data.count == 1 && data.captions == ["x"] && data.attributes == [["shape": "circle"]])
        #expect(data.images[0].pixels == image.pixels)
        // CRLF lines are lines; a file name leading out of the folder is refused.
        try Data("{\"file_name\": \"a.png\", \"text\": \"x\"}\r\n{\"file_name\": \"a.png\", \"text\": \"y\"}\r\n".utf8)
            .write(to: URL(fileURLWithPath: "\(folder)/metadata.jsonl"))
        #expect(try CaptionedImages.folder(folder).captions == ["x", "y"])
        try Data("{\"file_name\": \"../a.png\", \"text\": \"x\"}\n".utf8)
            .write(to: URL(fileURLWithPath: "\(folder)/metadata.jsonl"))
        #expect {
            try CaptionedImages.folder(folder)
        } throws: {
            "\($0)" == "\(folder)/metadata.jsonl: line 1: file_name '../a.png' leads out of the folder"
        }
    }
}
