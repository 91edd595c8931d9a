import Foundation
import Testing
import ViTCheckpoint
import ViTTestSupport

/// `vit train classifier`, `vit eval` and resuming after SIGKILL, on a small IDX data set.
@Suite struct TrainCLITests {
    let folder = makeTemporaryFolder()

    /// 2048 training and 256 test images of 16 x 16 in 4 classes: a bright square whose
    /// corner is the class, on noise.
    func writeData() throws -> String {
        let data = "\(folder)/data"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        var state: UInt64 = 1
        func random() -> UInt8 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(state >> 58)
        }
        for (prefix, count) in [("train", 2048), ("t10k", 256)] {
            var pixels: [UInt8] = [], labels: [UInt8] = []
            for i in 0..<count {
                let label = i % 4
                let (x0, y0) = (label % 2 == 0 ? 2 : 9, label < 2 ? 2 : 9)
                for y in 0..<16 {
                    for x in 0..<16 {
                        pixels.append((x0..<(x0 + 5)).contains(x) && (y0..<(y0 + 5)).contains(y) ? 200 : random())
                    }
                }
                labels.append(UInt8(label))
            }
            func header(_ dims: [Int]) -> [UInt8] {
                [0, 0, 8, UInt8(dims.count)]
                    + dims.flatMap { [UInt8($0 >> 24), UInt8($0 >> 16 & 255), UInt8($0 >> 8 & 255), UInt8($0 & 255)] }
            }
            try Data(header([count, 16, 16]) + pixels).write(
                to: URL(fileURLWithPath: "\(data)/\(prefix)-images-idx3-ubyte"))
            try Data(header([count]) + labels).write(to: URL(fileURLWithPath: "\(data)/\(prefix)-labels-idx1-ubyte"))
        }
        return data
    }

    func trainArguments(data: String, output: String) -> [String] {
        [
            "train", "classifier", "--data", data, "-o", output, "--epochs", "3", "--dim", "32", "--depth", "2",
            "--heads", "2", "--hidden-dim", "64", "--batch-size", "32", "--learning-rate", "3e-3", "--seed", "9",
            "--ema-decay", "0.9",
        ]
    }

    /// Losses and accuracies per epoch from log.jsonl (times differ between runs).
    func losses(_ output: String) throws -> [String] {
        let log = try String(contentsOfFile: "\(output)/log.jsonl", encoding: .utf8)
        return log.split(separator: "\n").map { line in
            let object = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return "\(object["epoch"]!) \(object["trainLoss"]!) \(object["trainAccuracy"]!) \(object["testAccuracy"]!)"
        }
    }

    /// With a moving average of the weights (evaluated each epoch): the test accuracies
    /// after the restart show that the average came back too.
    @Test func killedRunResumesToTheSameLosses() throws {
        let data = try writeData()
        let whole = try runVit(trainArguments(data: data, output: "\(folder)/whole"))
        #expect(whole.status == 0, "\(whole.stderr)")
        let expected = try losses("\(folder)/whole")
        #expect(expected.count == 3)

        // The same run, killed with SIGKILL during epoch 2, then resumed.
        let output = "\(folder)/killed"
        let process = try startVit(trainArguments(data: data, output: output))
        let checkpoint = "\(output)/checkpoint.safetensors"
        while !FileManager.default.fileExists(atPath: checkpoint) && process.isRunning { usleep(10_000) }
        usleep(200_000)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        // The kill landed before the run finished: the process died of the signal, and its
        // checkpoint stands before the last step of the uninterrupted run.
        #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL)
        func state(_ path: String) throws -> (epoch: Int, step: Int) {
            let text = try #require(try SafeTensorsFile(path: path).metadata["training_state"])
            let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
            return ((object["epoch"] as! NSNumber).intValue, (object["step"] as! NSNumber).intValue)
        }
        let killedAt = try state(checkpoint), finished = try state("\(folder)/whole/checkpoint.safetensors")
        #expect(killedAt.epoch >= 1 && killedAt.epoch < 3 && killedAt.step < finished.step, "\(killedAt)")
        // Whatever the moment, the checkpoint is a whole file.
        let info = try runVit(["info", checkpoint])
        #expect(info.status == 0, "\(info.stderr)")
        let resumed = try runVit(trainArguments(data: data, output: output) + ["--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        // It continued from that checkpoint rather than starting again.
        #expect(
            resumed.stderr.contains("resuming after epoch \(killedAt.epoch), step \(killedAt.step)"),
            "\(resumed.stderr)")
        #expect(try losses(output) == expected)
        let end = try state(checkpoint)
        #expect(end.epoch == finished.epoch && end.step == finished.step)

        // The trained model learned the corners; vit eval reports it.
        let eval = try runVit([
            "eval", "--model", "\(folder)/whole/model.safetensors", "--data", data, "--format", "json",
        ])
        #expect(eval.status == 0, "\(eval.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as! [String: Any]
        #expect((object["accuracy"] as! NSNumber).floatValue > 0.9)
        #expect((object["confusion"] as! [[Int]]).count == 4)

        // Fine-tuning with frozen attention and MLP for 10 steps: those weights stay, the
        // norms move, and the log has one partial epoch.
        let tuned = try runVit([
            "train", "classifier", "--data", data, "-o", "\(folder)/tuned", "--from",
            "\(folder)/whole/model.safetensors",
            "--freeze", "attention", "--freeze", "mlp", "--steps", "10", "--batch-size", "32",
        ])
        #expect(tuned.status == 0, "\(tuned.stderr)")
        let before = try SafeTensorsFile(path: "\(folder)/whole/model.safetensors")
        let after = try SafeTensorsFile(path: "\(folder)/tuned/model.safetensors")
        for name in ["blocks.0.attn.qkv.weight", "blocks.1.mlp.fc2.bias"] {
            #expect(try before.tensor(name).scalars == after.tensor(name).scalars, "\(name) should be frozen")
        }
        #expect(try before.tensor("blocks.0.norm1.weight").scalars != after.tensor("blocks.0.norm1.weight").scalars)
        #expect(try losses("\(folder)/tuned").count == 1)
    }

    /// `-o NAME.safetensors` writes the model there and the rest beside it; `--config` is
    /// `--preset`; a training output folder is a model for `vit eval`.
    @Test func modelFileOutputAndTrainingFolders() throws {
        let data = try writeData()
        let file = "\(folder)/runs/corners.safetensors"
        let run = try runVit([
            "train", "classifier", "--data", data, "-o", file, "--config", "micro", "--steps", "4",
            "--batch-size", "32", "--seed", "3",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        for name in [
            "corners.safetensors", "corners.checkpoint.safetensors", "corners.log.jsonl", "corners.curves.png",
        ] {
            #expect(FileManager.default.fileExists(atPath: "\(folder)/runs/\(name)"), "\(name) missing")
        }
        let info = try runVit(["info", file])
        #expect(info.stdout.contains("width 64, depth 4, heads 4, MLP 128"), "\(info.stdout)")
        let resumed = try runVit([
            "train", "classifier", "--data", data, "-o", file, "--steps", "4", "--batch-size", "32", "--resume",
        ])
        #expect(resumed.status == 0, "\(resumed.stderr)")

        let folderRun = try runVit(trainArguments(data: data, output: "\(folder)/run") + ["--steps", "2"])
        #expect(folderRun.status == 0, "\(folderRun.stderr)")
        let byFolder = try runVit(["eval", "--model", "\(folder)/run", "--data", data, "--format", "json"])
        let byFile = try runVit([
            "eval", "--model", "\(folder)/run/model.safetensors", "--data", data, "--format", "json",
        ])
        #expect(byFolder.status == 0, "\(byFolder.stderr)")
        #expect(byFolder.stdout == byFile.stdout)
        let empty = "\(folder)/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let missing = try runVit(["eval", "--model", empty, "--data", data])
        #expect(missing.status == 1)
        #expect(
            missing.stderr.contains("\(empty): folder has neither config.json nor model.safetensors"),
            "\(missing.stderr)")
    }

    /// Bad data or options: a one-line error, a non-zero exit, and no output folder.
    /// A learning rate that makes the weights overflow: the run stops with one line naming
    /// the epoch and step of the first non-finite loss, exit 1, and writes no model.
    @Test func nonFiniteLossStopsTraining() throws {
        let data = try writeData()
        let output = "\(folder)/diverged"
        let run = try runVit([
            "train", "classifier", "--data", data, "-o", output, "--epochs", "1", "--dim", "32", "--depth", "2",
            "--heads", "2", "--hidden-dim", "64", "--learning-rate", "1e30", "--clip", "0", "--batch-size", "32",
        ])
        #expect(run.status == 1, "\(run.stderr)")
        let lines = run.stderr.split(separator: "\n")
        #expect(
            lines.count == 1 && lines[0].contains("epoch 1, step ") && lines[0].contains("the loss is")
                && lines[0].contains("nothing was saved"), "\(run.stderr)")
        for name in ["model.safetensors", "checkpoint.safetensors", "log.jsonl"] {
            #expect(!FileManager.default.fileExists(atPath: "\(output)/\(name)"), "\(name) was written")
        }
    }

    @Test func badStartsLeaveNothingBehind() throws {
        let notIDX = "\(folder)/bad-idx"
        try FileManager.default.createDirectory(atPath: notIDX, withIntermediateDirectories: true)
        for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"] {
            try Data("not an IDX file".utf8).write(to: URL(fileURLWithPath: "\(notIDX)/\(name)"))
        }
        let empty = "\(folder)/empty-idx"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        for prefix in ["train", "t10k"] {
            // IDX headers declaring zero images of 28 x 28 and zero labels.
            try Data([0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28]).write(
                to: URL(fileURLWithPath: "\(empty)/\(prefix)-images-idx3-ubyte"))
            try Data([0, 0, 8, 1, 0, 0, 0, 0]).write(to: URL(fileURLWithPath: "\(empty)/\(prefix)-labels-idx1-ubyte"))
        }
        let cases: [([String], Int32, String)] = [
            (["--data", "\(folder)/missing"], 1, "\(folder)/missing: no such data"),
            (["--data", empty], 1, "\(empty): no training images"),
            (["--data", notIDX], 1, "\(notIDX)/train-images-idx3-ubyte: not an IDX file"),
            (["--data", notIDX, "--learning-rate=-1"], 64, "--learning-rate must be positive"),
            (["--data", notIDX, "--label-smoothing", "1"], 64, "--label-smoothing must be in [0, 1)"),
            (["--data", notIDX, "--config", "huge"], 64, "unknown preset 'huge'"),
            (["--data", "shapes:position", "--flip"], 64, "--flip would swap left and right"),
        ]
        for (index, (arguments, status, message)) in cases.enumerated() {
            let output = "\(folder)/out\(index)"
            let result = try runVit(["train", "classifier", "-o", output, "--steps", "1"] + arguments)
            #expect(result.status == status, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: output), "\(arguments) left \(output)")
        }
    }
}
