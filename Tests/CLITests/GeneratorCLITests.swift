import Foundation
import Testing
import ViTCheckpoint
import ViTCore
import ViTGenerator
import ViTImage
import ViTTensor
import ViTTestSupport
import ViTText

/// A small generator with every parameter random (none left at zero, so images depend on
/// captions and seeds), saved with the fetched MiniLM as its text model.
func writeTinyGenerator(to path: String) throws {
    let textEncoder = try SentenceEncoder.load(folder: repositoryPath("Weights/all-MiniLM-L6-v2"))
    let config = FlowTransformerConfig(
        imageSize: 32, patchSize: 4, dim: 32, depth: 1, numHeads: 2, hiddenDim: 64, contextDim: 384, frequencyDim: 16)
    let model = try FlowTransformer(RandomParameters(seed: 3), config: config)
    var rng = SeededGenerator(seed: 4)
    for (_, tensor) in model.namedTensors {
        for i in 0..<tensor.count { tensor.data[i] = 0.1 * rng.nextNormal() }
    }
    try CaptionGenerator(model: model, textEncoder: textEncoder).save(path: path)
}

/// `vit generate` and `vit train generator` on a small random generator and tiny data.
@Suite struct GeneratorCLITests {
    let folder = makeTemporaryFolder()

    @Test func sameBytesWhateverTheThreadsAndTextThatRemakesTheImage() throws {
        let model = "\(folder)/tiny.safetensors"
        try writeTinyGenerator(to: model)
        var outputs: [Data] = []
        for threads in ["1", "2"] {
            let path = "\(folder)/circle-\(threads).png"
            let run = try runVit([
                "generate", "a red circle in the top left", "-o", path, "--model", model, "--seed", "7", "--steps",
                "5", "--threads", threads,
            ])
            #expect(run.status == 0, "\(run.stderr)")
            outputs.append(try Data(contentsOf: URL(fileURLWithPath: path)))
        }
        #expect(outputs[0] == outputs[1], "1 and 2 threads gave different bytes")

        // The text chunks say how the image was made; making it again from them gives it.
        let text = Dictionary(uniqueKeysWithValues: try pngTextChunks("\(folder)/circle-1.png"))
        #expect(text["Caption"] == "a red circle in the top left" && text["Seed"] == "7" && text["Steps"] == "5")
        #expect(text["Sampler"] == "euler" && text["Guidance"] == "3.0" && text["Model"] == "tiny.safetensors")
        #expect(text["Model SHA-256"]?.count == 64)
        let again = try runVit([
            "generate", text["Caption"]!, "-o", "\(folder)/again.png", "--model", model, "--seed", text["Seed"]!,
            "--steps", text["Steps"]!, "--sampler", text["Sampler"]!, "--guidance", text["Guidance"]!,
        ])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(folder)/again.png")) == outputs[0])

        // Another seed, another image; several images go into a folder.
        let other = try runVit([
            "generate", "a red circle in the top left", "a blue square", "--count", "2", "-o", "\(folder)/many",
            "--model", model, "--seed", "7", "--steps", "5",
        ])
        #expect(other.status == 0, "\(other.stderr)")
        let names = try FileManager.default.contentsOfDirectory(atPath: "\(folder)/many").sorted()
        #expect(names == ["0000.png", "0001.png", "0002.png", "0003.png"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(folder)/many/0000.png")) == outputs[0])
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(folder)/many/0001.png")) != outputs[0])
    }

    @Test func infoDescribesTheShippedGenerator() throws {
        let result = try runVit(["info", repositoryPath("Weights/shapes-generator.safetensors")])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(
            result.stdout.contains(
                "image 32, patch 4, channels 3, width 128, depth 4, heads 4, MLP 512, text width 384, time frequencies 128"
            ))
        // Per block: modulation 768*128 + 768, self-attention qkv 384*128 + 384 and proj 128*128 + 128,
        // cross-attention q 128*128 + 128, kv 256*384 + 256, proj 128*128 + 128 and its norm 2*128,
        // fc1 512*128 + 512, fc2 128*512 + 128: 428672, four blocks. Then the final modulation
        // 256*128 + 256 and linear 48*128 + 48, positions 64*128, the time MLP 2*(128*128 + 128)
        // and the patch embedding 128*48 + 128: 86704.
        #expect(result.stdout.contains("parameters:   1801392 (1.80 M)"))
        #expect(result.stdout.contains("text model:   all-MiniLM-L6-v2"))
        #expect(result.stdout.contains("training:     20 epochs, 6260 steps"))
    }

    /// Classifier-free guidance: the empty caption is the unconditional model, so its
    /// images do not depend on the guidance scale.
    @Test func emptyCaptionIgnoresGuidance() throws {
        let model = "\(folder)/tiny.safetensors"
        try writeTinyGenerator(to: model)
        let generator = try CaptionGenerator.load(
            path: model, textEncoder: try SentenceEncoder.load(folder: repositoryPath("Weights/all-MiniLM-L6-v2")))
        let images = [Float(1), 4].map { scale in
            generator.generate(
                captions: [""], seeds: [5], sampling: .init(steps: 4, solver: .heun, guidance: scale))[0]
        }
        // Guidance 4 computes u + 4 (c - u) with c = u from one batch; guidance 1 runs the
        // conditional pass alone, which may round differently in the last bit.
        let largest = zip(images[0].pixels, images[1].pixels).map { abs(Int($0) - Int($1)) }.max()!
        #expect(largest <= 1, "pixels differ by \(largest)")
    }

    /// The Fashion-MNIST judge on a random generator: its images are noise to the
    /// classifier, so their Fréchet distance to real test images lies far above the
    /// real-against-real floor, and the report's figures are fractions of the images.
    @Test func fashionMNISTJudgeSeparatesNoiseFromRealImages() throws {
        let model = "\(folder)/tiny-fashion.safetensors"
        try writeTinyGenerator(to: model)
        let run = try runVit([
            "eval", "generator", "--data", "fashion-mnist", "--model", model, "--samples", "4", "--steps", "2",
            "--format", "json",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "\(run.stdout)")
        let classAccuracy = try #require(json["classAccuracy"] as? [String: Double])
        #expect(classAccuracy.count == 10)
        // Four images a class: every per-class figure is a multiple of 1/4.
        #expect(classAccuracy.values.allSatisfy { ($0 * 4).rounded() == $0 * 4 && (0...1).contains($0) })
        let distance = try #require(json["frechetDistance"] as? Double)
        let floor = try #require(json["realFrechetDistance"] as? Double)
        #expect(floor > 0 && distance > 2 * floor, "noise \(distance), real against real \(floor)")
        let realAccuracy = try #require(json["realAccuracy"] as? Double)
        #expect(realAccuracy >= 0.75, "the classifier on 40 real test images: \(realAccuracy)")
    }

    /// Each judge's options belong to its data set.
    @Test func evalOptionsOfTheOtherDataSetAreRefused() throws {
        let cases: [([String], String)] = [
            (["--classifier", "x"], "--classifier is for --data fashion-mnist"),
            (["--data", "fashion-mnist", "--judges", "x"], "--judges is for --data shapes"),
            (["--data", "fashion-mnist", "--samples", "501"], "--samples must be in 1...500"),
            (["--samples", "0"], "--samples must be in 1...1000"),
        ]
        for (arguments, message) in cases {
            let run = try runVit(["eval", "generator"] + arguments)
            #expect(run.status == 64 && run.stderr.contains(message), "\(arguments): \(run.stderr)")
        }
    }

    @Test func badInputsGiveOneLineAndLeaveNothing() throws {
        let model = "\(folder)/tiny.safetensors"
        try writeTinyGenerator(to: model)
        let invalid = "\(folder)/invalid.txt", blank = "\(folder)/blank.txt", notFolder = "\(folder)/file"
        try Data([0x61, 0xFF, 0xFE, 0x0A]).write(to: URL(fileURLWithPath: invalid))
        try Data("\n  \n\r\n".utf8).write(to: URL(fileURLWithPath: blank))
        try Data("x".utf8).write(to: URL(fileURLWithPath: notFolder))
        let cases: [([String], String)] = [
            (["--file", invalid, "-o", "\(folder)/out1"], "not valid UTF-8"),
            (["--file", blank, "-o", "\(folder)/out2"], "no captions"),
            (["a", "b", "-o", notFolder], "is not a folder"),
            (["a", "-o", "\(folder)/out3.png", "--text-model", "\(folder)/nothing"], "nothing"),
            (
                ["a", "-o", "\(folder)/out4.png", "--model", repositoryPath("Weights/vit-fashion-mnist.safetensors")],
                "not a SwiftViT caption generator"
            ),
        ]
        for (arguments, message) in cases {
            let run = try runVit(["generate"] + arguments + (arguments.contains("--model") ? [] : ["--model", model]))
            #expect(run.status == 1, "\(arguments): exit \(run.status)")
            let lines = run.stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].contains(message), "\(arguments): \(run.stderr)")
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        #expect(left == ["blank.txt", "file", "invalid.txt", "tiny.safetensors"], "\(left)")
        // A long line is a caption like any other (the text model reads its first 256 tokens).
        let long = "\(folder)/long.txt"
        try Data((String(repeating: "a red circle ", count: 8_000) + "\n").utf8).write(to: URL(fileURLWithPath: long))
        let run = try runVit(["generate", "--file", long, "-o", "\(folder)/long.png", "--model", model, "--steps", "2"])
        #expect(run.status == 0, "\(run.stderr)")
    }

    /// A run killed after its first checkpoint and resumed gives the losses of an
    /// uninterrupted run.
    @Test func killedTrainingResumesToTheSameLosses() throws {
        let data = "\(folder)/shapes"
        let made = try runVit(["dataset", "shapes", "-o", data, "--count", "320", "--seed", "2"])
        #expect(made.status == 0, "\(made.stderr)")
        func arguments(_ output: String) -> [String] {
            [
                "train", "generator", "--data", data, "-o", output, "--dim", "32", "--depth", "1", "--heads", "2",
                "--hidden-dim", "64", "--epochs", "4", "--batch-size", "16", "--warmup-steps", "5", "--seed", "3",
                "--sample-steps", "1",
            ]
        }
        func losses(_ output: String) throws -> [String] {
            try String(contentsOfFile: "\(output)/log.jsonl", encoding: .utf8).split(separator: "\n").map { line in
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                return "\(object["epoch"]!) \(object["step"]!) \(object["loss"]!)"
            }
        }
        let whole = try runVit(arguments("\(folder)/whole"))
        #expect(whole.status == 0, "\(whole.stderr)")
        let expected = try losses("\(folder)/whole")
        #expect(expected.count == 4)
        #expect(FileManager.default.fileExists(atPath: "\(folder)/whole/samples/epoch-004.png"))

        let output = "\(folder)/killed", checkpoint = "\(output)/checkpoint.safetensors"
        let process = try startVit(arguments(output))
        while !FileManager.default.fileExists(atPath: checkpoint) && process.isRunning { usleep(2_000) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        let state = try #require(try SafeTensorsFile(path: checkpoint).metadata["training_state"])
        let epoch = (try JSONSerialization.jsonObject(with: Data(state.utf8)) as! [String: Any])["epoch"] as! Int
        #expect(epoch >= 1 && epoch < 4, "killed at epoch \(epoch)")
        let resumed = try runVit(arguments(output) + ["--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming after epoch \(epoch)"), "\(resumed.stderr)")
        #expect(try losses(output) == expected)
    }
}
