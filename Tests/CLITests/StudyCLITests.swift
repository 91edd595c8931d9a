import Foundation
import Testing
import ViTImage
import ViTTestSupport

/// `vit study transfer`: the quick preset's outputs, a killed study resumed, and the
/// errors that come before any run.
@Suite struct StudyCLITests {
    let folder = makeTemporaryFolder()

    /// An ImageFolder of 16 x 16 gray images in two classes (a bright bar left or right, on
    /// noise): 32 training and 16 test images.
    func writeTask() throws -> String {
        let task = "\(folder)/task"
        var state: UInt64 = 3
        for (split, count) in [("train", 32), ("test", 16)] {
            for (label, name) in ["left", "right"].enumerated() {
                let classFolder = "\(task)/\(split)/\(name)"
                try FileManager.default.createDirectory(atPath: classFolder, withIntermediateDirectories: true)
                for i in 0..<(count / 2) {
                    let pixels = (0..<256).map { p -> UInt8 in
                        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                        return (label == 0 ? p % 16 < 4 : p % 16 >= 12) ? 220 : UInt8(state >> 57)
                    }
                    try Image(width: 16, height: 16, channels: 1, pixels: pixels).writePNG(
                        path: "\(classFolder)/\(i).png")
                }
            }
        }
        return task
    }

    /// The quick preset on Fashion-MNIST with the default backbones: every output exists
    /// and parses, one CSV row per run, and a study model is one `vit attention` and
    /// `vit classify` take. Run again, it finds every run finished.
    @Test func quickStudyWritesResultsThatParse() throws {
        let output = "\(folder)/quick"
        let started = Date()
        let study = try runVit(["study", "transfer", "--quick", "-o", output])
        #expect(study.status == 0, "\(study.stderr)")
        let seconds = Date().timeIntervalSince(started)
        #expect(study.stdout.contains("16 runs"), "\(study.stdout)")

        let csv = try String(contentsOfFile: "\(output)/results.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.count == 17)
        let header = csv[0].split(separator: ",").map(String.init)
        let test = try #require(header.firstIndex(of: "test_accuracy"))
        for row in csv.dropFirst() {
            let fields = row.split(separator: ",", omittingEmptySubsequences: false)
            #expect(fields.count == header.count)
            let accuracy = try #require(Float(fields[test]))
            #expect((0...1).contains(accuracy))
        }
        let markdown = try String(contentsOfFile: "\(output)/results.md", encoding: .utf8)
        for arm in ["minilm frozen", "minilm-random full", "vit:shapes-judge-shape frozen", "scratch full"] {
            #expect(markdown.contains("| \(arm) |"), "\(arm)")
        }
        #expect(markdown.contains("Finished runs: 16 of 16"))
        for figure in ["accuracy-vs-learning-rate.png", "learning-curves.png"] {
            let image = try Image.read(path: "\(output)/\(figure)")
            #expect(image.width == 648 && image.height == 240)
        }
        let plan = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: "\(output)/study.json")))
        #expect((plan as? [String: Any])?["seeds"] as? Int == 1)
        let models = try FileManager.default.contentsOfDirectory(atPath: "\(output)/models")
        #expect(models.count == 8)

        let model = "\(output)/models/minilm-frozen.safetensors"
        let attention = try runVit([
            "attention", "--model", model, repositoryPath("Images/ankle-boot.png"), "-o", "\(folder)/map.png",
        ])
        #expect(attention.status == 0, "\(attention.stderr)")
        #expect(try Image.read(path: "\(folder)/map.png").width > 0)
        let classify = try runVit(["classify", "--model", model, repositoryPath("Images/ankle-boot.png")])
        #expect(classify.status == 0 && classify.stdout.contains("ankle-boot.png: "), "\(classify.stderr)")

        let again = try runVit(["study", "transfer", "--quick", "-o", output])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("16 of 16 runs already finished"), "\(again.stdout)")
        #expect(!again.stdout.contains("[1/16]"))
        // Not a timing test: a record of what the preset costs, for the log.
        print("quick study: \(Int(seconds)) s")
    }

    /// Killed with SIGKILL after two runs, the same command finishes the study: the runs
    /// logged before the kill keep their bytes and are not run again.
    @Test func killedStudyResumesWithoutRedoingRuns() throws {
        let task = try writeTask()
        let output = "\(folder)/killed"
        let arguments = [
            "study", "transfer", "--task", task, "--backbones", "vit:shapes-judge-size", "--learning-rates",
            "1e-3,3e-3", "--seeds", "2", "--steps", "30", "--batch-size", "8", "--train-subset", "24",
            "--validation-size", "8", "--test-subset", "16", "--patch-size", "4", "-o", output,
        ]
        let process = try startVit(arguments)
        let runs = "\(output)/runs"
        func logs() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: runs)) ?? []).filter { $0.hasSuffix(".jsonl") }
        }
        while logs().count < 2 && process.isRunning { usleep(5_000) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        let before = logs()
        #expect(before.count >= 2 && before.count < 8, "\(before)")
        var bytes: [String: Data] = [:]
        for name in before { bytes[name] = FileManager.default.contents(atPath: "\(runs)/\(name)") }

        let resumed = try runVit(arguments)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("\(before.count) of 8 runs already finished"), "\(resumed.stdout)")
        #expect(logs().count == 8)
        for (name, data) in bytes {
            #expect(FileManager.default.contents(atPath: "\(runs)/\(name)") == data, "\(name)")
        }
        // No scratch files are left beside the logs.
        #expect(try FileManager.default.contentsOfDirectory(atPath: runs).count == 8)
    }

    /// Each of these stops with one line and a non-zero exit before any run, and leaves no
    /// study folder behind.
    @Test func badSettingsStopBeforeAnyRun() throws {
        let task = try writeTask()
        let empty = "\(folder)/empty"
        for split in ["train/a", "test/a"] {
            try FileManager.default.createDirectory(atPath: "\(empty)/\(split)", withIntermediateDirectories: true)
        }
        let cases: [([String], Int32, String)] = [
            (["--text-model", "\(folder)/no-such-model"], 1, "no-such-model: no such folder"),
            (["--freeze", "attention,attn"], 64, "unknown --freeze group 'attn'"),
            (["--learning-rates", "1e-3,fast"], 64, "'fast' is not a learning rate"),
            (["--backbones", "bert"], 64, "unknown backbone 'bert'"),
            (["--task", empty, "--backbones", "vit:shapes-judge-size"], 1, "no images"),
            (["--task", task, "--backbones", "vit:\(folder)/missing.safetensors"], 1, "missing.safetensors"),
            (["--task", "mnist"], 1, "MNIST is not installed here"),
        ]
        for (index, (extra, status, message)) in cases.enumerated() {
            let output = "\(folder)/out\(index)"
            let result = try runVit(["study", "transfer", "--task", task, "-o", output] + extra)
            #expect(result.status == status, "\(extra): \(result.stderr)")
            #expect(result.stderr.contains(message), "\(extra): \(result.stderr)")
            #expect(result.stdout.isEmpty, "\(extra): \(result.stdout)")
            #expect(!FileManager.default.fileExists(atPath: output), "\(extra)")
        }
    }
}
