import Foundation
import Testing
import ViTData
import ViTTestSupport

/// `vit dataset shapes`: the folder it writes reads back as the library's samples.
@Suite struct DatasetCLITests {
    let folder = makeTemporaryFolder()

    @Test func rendersAFolderThatReadsBack() throws {
        let output = "\(folder)/shapes"
        let result = try runVit([
            "dataset", "shapes", "--count", "12", "-o", output, "--seed", "3", "--split", "held-out",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let data = try CaptionedImages.folder(output)
        #expect(data.count == 12)
        for index in 0..<12 {
            let sample = Shapes.sample(index: index, seed: 3, split: .heldOut)
            #expect(data.images[index].pixels == sample.image.pixels)
            #expect(data.captions[index] == sample.caption)
            #expect(data.attributes[index] == sample.attributes.fields)
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: output).sorted()
        #expect(names == (0..<12).map { String(format: "%05d.png", $0) } + ["metadata.jsonl"])
        // Nothing left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["shapes"])
    }

    @Test func refusesToOverwrite() throws {
        let output = "\(folder)/taken"
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: URL(fileURLWithPath: "\(output)/notes.txt"))
        let result = try runVit(["dataset", "shapes", "--count", "4", "-o", output])
        #expect(result.status == 1)
        #expect(result.stderr == "error: \(output): exists and is not an empty folder (nothing in it was changed)\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: output) == ["notes.txt"])

        let badSplit = try runVit(["dataset", "shapes", "-o", "\(folder)/x", "--split", "test"])
        #expect(badSplit.status == 64)
        #expect(badSplit.stderr.contains("--split must be one of train, held-out, all"))
        #expect(!FileManager.default.fileExists(atPath: "\(folder)/x"))
    }

    /// Waits until `path` holds a staging folder of a running render (so that the run is
    /// busy), at most 30 s.
    func waitForStaging(in path: String, name: String) {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            if let staging = entries.first(where: { $0.hasPrefix(".\(name).partial-") }),
                ((try? FileManager.default.contentsOfDirectory(atPath: "\(path)/\(staging)")) ?? []).count > 10
            {
                return
            }
            usleep(20_000)
        }
    }

    /// SIGINT and SIGTERM during a render exit 130 and 143 and leave nothing; a staging
    /// folder left by a killed run (a process id that is not running) is removed by the next
    /// run, and other names are not; files put into the empty output folder during a run are
    /// kept, and the run fails saying so.
    @Test func interruptedRunsLeaveNothingAndKeepTheUsersFiles() throws {
        for (signal, status) in [(SIGINT, Int32(130)), (SIGTERM, 143)] {
            let parent = "\(folder)/signal\(signal)"
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            let run = try startVit(["dataset", "shapes", "--count", "200000", "-o", "\(parent)/set"])
            waitForStaging(in: parent, name: "set")
            kill(run.processIdentifier, signal)
            run.waitUntilExit()
            #expect(run.terminationStatus == status)
            let left = try FileManager.default.contentsOfDirectory(atPath: parent)
            #expect(left == [], "\(left)")
        }

        var deadPID: Int32 = 4_000_000
        while kill(deadPID, 0) == 0 || errno != ESRCH { deadPID -= 1 }
        let parent = "\(folder)/leftovers"
        try FileManager.default.createDirectory(
            atPath: "\(parent)/.set.partial-\(deadPID)", withIntermediateDirectories: true)
        try Data("half".utf8).write(to: URL(fileURLWithPath: "\(parent)/.set.partial-\(deadPID)/00000.png"))
        let mine = ["notes.partial-\(deadPID)", ".set.partial-x", ".set.partial-\(getpid())"]
        for name in mine { try Data("mine".utf8).write(to: URL(fileURLWithPath: "\(parent)/\(name)")) }
        let remade = try runVit(["dataset", "shapes", "--count", "3", "-o", "\(parent)/set"])
        #expect(remade.status == 0, "\(remade.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent).sorted() == (mine + ["set"]).sorted())

        let target = "\(folder)/filled-meanwhile"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        let run = try startVit(["dataset", "shapes", "--count", "3000", "-o", target])
        waitForStaging(in: folder, name: "filled-meanwhile")
        try Data("mine".utf8).write(to: URL(fileURLWithPath: "\(target)/notes.txt"))
        run.waitUntilExit()
        #expect(run.terminationStatus == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: target) == ["notes.txt"])
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.contains("filled-meanwhile") } == [
                "filled-meanwhile"
            ])
    }

    /// `--data shapes:size`: labels that agree with the images (a one-block ViT learns size
    /// well above the 50% of chance in 150 steps), 2,000 test images in label order of
    /// Shapes.sizes, and images per second counted over the images actually trained on.
    @Test func trainsOnAShapesAttribute() throws {
        let model = "\(folder)/size.safetensors"
        let run = try runVit([
            "train", "classifier", "--data", "shapes:size", "-o", model, "--steps", "150", "--batch-size", "32",
            "--dim", "32", "--depth", "1", "--heads", "2", "--hidden-dim", "64", "--learning-rate", "3e-3",
            "--warmup-epochs", "0",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let log = try String(contentsOfFile: "\(folder)/size.log.jsonl", encoding: .utf8)
        let entry = try JSONSerialization.jsonObject(with: Data(log.utf8)) as! [String: Any]
        let rate = (entry["imagesPerSecond"] as! NSNumber).doubleValue
        let seconds = (entry["seconds"] as! NSNumber).doubleValue
        #expect(abs(rate * seconds - 150 * 32) < 1, "\(rate) images/s over \(seconds) s")

        let eval = try runVit(["eval", "--model", model, "--data", "shapes:size", "--format", "json"])
        #expect(eval.status == 0, "\(eval.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as! [String: Any]
        #expect(object["count"] as? Int == 2000)
        #expect(object["classNames"] as? [String] == Shapes.sizes)
        #expect((object["accuracy"] as! NSNumber).doubleValue > 0.7)

        let bad = try runVit(["eval", "--model", model, "--data", "shapes:hue"])
        #expect(bad.status == 1)
        #expect(bad.stderr == "error: shapes:hue: the attribute must be shape, color, size, position or background\n")
    }
}
