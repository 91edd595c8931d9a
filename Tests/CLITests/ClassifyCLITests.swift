import Foundation
import Testing
import ViTCheckpoint
import ViTImage
import ViTTestSupport

/// `vit classify`, `vit info` and `vit bench` on the golden models.
@Suite struct ClassifyCLITests {
    let folder = makeTemporaryFolder()
    let model = repositoryPath("Tests/ViTVisionTests/Golden/timm-vit")

    /// The logits printed for a photo equal timm's within 1e-3 (end to end from the file).
    @Test func jsonlLogitsMatchTimm() throws {
        let photo = repositoryPath("Images/chelsea.png")
        let result = try runVit(["classify", photo, "--model", model, "--format", "jsonl", "--logits", "--top-k", "7"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        #expect(object["file"] as? String == photo)
        let logits = (object["logits"] as! [NSNumber]).map(\.floatValue)
        let golden = try SafeTensorsFile(path: "\(model)/golden.safetensors").tensor("chelsea.logits")
        let comparison = compare(logits, golden.scalars, atol: 1e-3)
        #expect(comparison.passed, "\(comparison)")
        let predictions = object["predictions"] as! [[String: Any]]
        #expect(predictions.count == 7)
        let best = golden.scalars.indices.max { golden.scalars[$0] < golden.scalars[$1] }!
        #expect(predictions[0]["index"] as? Int == best)
        let total = predictions.map { ($0["probability"] as! NSNumber).doubleValue }.reduce(0, +)
        #expect(abs(total - 1) < 1e-5)
    }

    /// --image-size 96 on the 64-pixel model: timm's transform for 96 and resampled position
    /// embeddings give timm's logits within 1e-3; a size that is not whole patches is a
    /// usage error.
    @Test func otherImageSize() throws {
        let photo = repositoryPath("Images/chelsea.png")
        let result = try runVit([
            "classify", photo, "--model", model, "--format", "jsonl", "--logits", "--image-size", "96",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        let logits = (object["logits"] as! [NSNumber]).map(\.floatValue)
        let golden = try SafeTensorsFile(path: "\(model)/golden.safetensors").tensor("chelsea.logits_96")
        let comparison = compare(logits, golden.scalars, atol: 1e-3)
        #expect(comparison.passed, "\(comparison)")
        let bad = try runVit(["classify", photo, "--model", model, "--image-size", "60"])
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("--image-size 60 is not a positive multiple of the patch size 8"))
    }

    /// A folder is searched recursively and sorted; a bad file is reported, the others
    /// are still classified, and the exit code is 1.
    @Test func folderWithOneBadFile() throws {
        let images = "\(folder)/images/nested"
        try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: repositoryPath("Images/coat.png"), toPath: "\(folder)/images/b.png")
        try FileManager.default.copyItem(atPath: repositoryPath("Images/rocket.jpg"), toPath: "\(images)/a.JPG")
        _ = FileManager.default.createFile(atPath: "\(folder)/images/broken.png", contents: Data("no".utf8))
        _ = FileManager.default.createFile(atPath: "\(folder)/images/notes.txt", contents: Data("skip".utf8))
        let result = try runVit(["classify", "\(folder)/images", "--model", model, "--format", "csv", "--top-k", "2"])
        #expect(result.status == 1)
        #expect(result.stderr == "error: \(folder)/images/broken.png: not a PNG or JPEG image\n")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "file,rank,label,index,probability")
        #expect(lines.count == 5)
        #expect(
            lines[1].hasPrefix("\(folder)/images/b.png,1,") && lines[3].hasPrefix("\(folder)/images/nested/a.JPG,1,"))
    }

    @Test func textAndJSONFormats() throws {
        let photos = ["coffee.png", "camera.png"].map { repositoryPath("Images/\($0)") }
        let text = try runVit(["classify"] + photos + ["--model", model, "--top-k", "1", "--batch-size", "1"])
        #expect(text.status == 0)
        #expect(text.stdout.split(separator: "\n").count == 2)
        #expect(text.stdout.hasPrefix("\(photos[0]): "))
        let json = try runVit(["classify"] + photos + ["--model", model, "--format", "json"])
        let array = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [[String: Any]]
        #expect(array.count == 2 && (array[1]["predictions"] as! [Any]).count == 5)
    }

    @Test func badModelAndUsage() throws {
        let photo = repositoryPath("Images/coat.png")
        let missing = try runVit(["classify", photo, "--model", "\(folder)/none"])
        #expect(missing.status == 1)
        #expect(missing.stderr == "error: \(folder)/none: no such file or folder\n")
        let usage = try runVit(["classify", photo, "--model", model, "--top-k", "0"])
        #expect(usage.status == 64)
        let profile = try runVit(["classify", photo, "--model", model, "--profile", "nope"])
        #expect(profile.status == 64)
    }

    /// `vit attention` writes the tiled overlay PNG and the raw maps.
    @Test func attentionWritesMapsAndOverlay() throws {
        let png = "\(folder)/maps.png", maps = "\(folder)/maps.safetensors"
        let result = try runVit([
            "attention", repositoryPath("Images/chelsea.png"), "--model", model, "-o", png, "--tensor", maps,
            "--columns", "3",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        // Tiles: input, rollout, 3 heads -> 3 + 2 across, 64-pixel tiles, 4-pixel gaps.
        let image = try Image.read(path: png)
        #expect(image.width == 3 * 64 + 2 * 4 && image.height == 2 * 64 + 4)
        let file = try SafeTensorsFile(path: maps)
        #expect(try file.tensor("rollout").shape == [8, 8] && file.tensor("heads").shape == [3, 8, 8])
        let nothing = try runVit(["attention", repositoryPath("Images/chelsea.png"), "--model", model])
        #expect(nothing.status == 64)
    }

    @Test func infoDescribesTheModel() throws {
        let result = try runVit(["info", repositoryPath("Tests/ViTVisionTests/Golden/hf-vit")])
        #expect(result.status == 0)
        #expect(result.stdout.contains("image 64, patch 8, width 96, depth 2, heads 3, MLP 200"))
        #expect(result.stdout.contains("labels:       7: cat, coffee, astronaut"))
        // patch 96*3*8*8 + 96, cls 96, pos 65*96; per block: norms 2 * 2*96, qkv 3*96*96 + 3*96,
        // proj 96*96 + 96, fc1 96*200 + 200, fc2 200*96 + 96; final norm 2*96; head 7*96 + 7.
        #expect(result.stdout.contains("parameters:   178391"))
    }

    @Test func benchRunsOnAModel() throws {
        let result = try runVit([
            "bench", "--model", model, "--batch-sizes", "1,2", "--warmup", "0", "--iterations", "1",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 7, "\(result.stdout)")
        #expect(lines.count > 3 && lines[1].hasPrefix("cpu: ") && lines[2].hasPrefix("FMA peak: "))
        #expect(lines.count > 3 && lines[3].hasPrefix("batch  median ms") && lines[3].hasSuffix("of peak"))
        #expect(result.stdout.contains("peak memory:"))
    }

    @Test func benchSplitsTrainingStepsIntoForwardAndBackward() throws {
        let result = try runVit([
            "bench", "--train", "--architecture", "vit-tiny-patch16-224", "--image-size", "32", "--patch-size", "8",
            "--classes", "3", "--batch-sizes", "2", "--warmup", "0", "--iterations", "1", "--threads", "1",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 6, "\(result.stdout)")
        guard lines.count == 6 else { return }
        #expect(lines[3].hasSuffix("of peak  forward ms  backward ms"))
        // batch, median, min, images/s, GFLOP/s, fc1 GFLOP/s, share of peak, forward, backward:
        // with one step timed, its forward and backward (timed inside the step) add up to
        // the step's time (timed around it), within the printed rounding and the timers' own
        // cost (0.2 ms and 2%).
        let fields = lines[4].split(separator: " ").map(String.init)
        #expect(fields.count == 9, "\(lines[4])")
        guard fields.count == 9, let median = Double(fields[1]), let forward = Double(fields[7]),
            let backward = Double(fields[8])
        else { return }
        #expect(fields[0] == "2" && forward > 0 && backward > 0)
        #expect(abs(forward + backward - median) <= 0.2 + 0.02 * median, "\(lines[4])")
    }
}
