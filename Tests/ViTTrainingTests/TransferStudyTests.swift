import Foundation
import Testing
import ViTCheckpoint
import ViTCore
import ViTData
import ViTImage
import ViTTensor
import ViTTestSupport
import ViTText
import ViTTraining
import ViTVision

/// The transfer study's runs: freezing, the MiniLM backbone against the text encoder and
/// sentence-transformers, seeds, and resuming.
@Suite struct TransferStudyTests {
    let folder = makeTemporaryFolder()

    /// An ImageFolder of 16 x 16 gray images in two classes: a bright bar on the left or
    /// the right, on noise (40 training and 12 test images).
    func writeTask() throws -> String {
        let task = "\(folder)/task"
        var generator = SeededGenerator(seed: 11)
        for (split, count) in [("train", 40), ("test", 12)] {
            for (label, name) in ["left", "right"].enumerated() {
                let classFolder = "\(task)/\(split)/\(name)"
                try FileManager.default.createDirectory(atPath: classFolder, withIntermediateDirectories: true)
                for i in 0..<(count / 2) {
                    let pixels = (0..<256).map { p -> UInt8 in
                        let x = p % 16
                        return (label == 0 ? x < 4 : x >= 12) ? 220 : UInt8(generator.next() % 120)
                    }
                    try Image(width: 16, height: 16, channels: 1, pixels: pixels).writePNG(
                        path: "\(classFolder)/\(i).png")
                }
            }
        }
        return task
    }

    /// A small BERT encoder's sizes (2 blocks of 16 wide) for backbones that are not MiniLM.
    let smallText = TextEncoderConfig(
        vocabSize: 30, maxLength: 32, typeVocabSize: 2, dim: 16, depth: 2, numHeads: 2, hiddenDim: 32,
        layerNormEps: 1e-12, activation: .none)

    func plan(task: String, backbones: [String], rates: [Float] = [3e-3], seeds: Int = 1) -> TransferStudyPlan {
        TransferStudyPlan(
            task: task, backbones: backbones, frozen: ["attention", "mlp"], learningRates: rates, seeds: seeds,
            steps: 6, batchSize: 8, trainSubset: 24, validationSize: 8, testSubset: 12, patchSize: 4, logEvery: 2)
    }

    func sources() throws -> [String: StudyBackboneSource] {
        [
            "text": .pretrainedText(try TextEncoder(RandomParameters(seed: 5), config: smallText), clsTokenID: 3),
            "text-random": .randomText(smallText), "scratch": .scratch(smallText),
        ]
    }

    /// After training steps, the frozen arm's attention and MLP weights are bit-identical to
    /// the backbone's, while the patch embedding, norms, position embedding and head moved;
    /// the full arm moved its attention too.
    @Test func freezingKeepsFrozenWeightsBitIdentical() throws {
        let study = try TransferStudy(
            plan: plan(task: try writeTask(), backbones: ["text"]), folder: "\(folder)/study", sources: sources())
        try study.prepareFolder()
        let start = try study.startingModel(backbone: "text", seed: 0)
        let frozenRun = StudyRun(arm: StudyArm(backbone: "text", frozen: true), learningRate: 3e-3, seed: 0)
        let fullRun = StudyRun(arm: StudyArm(backbone: "text", frozen: false), learningRate: 3e-3, seed: 0)
        for run in [frozenRun, fullRun] {
            let record = try study.run(run)
            #expect(record.steps == 6 && !record.diverged)
            let trained = try SafeTensorsFile(path: study.modelPath(run.arm))
            for (name, tensor) in start.namedTensors {
                let same = try trained.tensor(name).scalars == tensor.scalars
                let frozen = name.contains(".attn.") || name.contains(".mlp.") as Bool
                if run.arm.frozen && frozen {
                    #expect(same, "\(name) should be frozen")
                } else if !name.hasSuffix("bias") || name.hasPrefix("head") {
                    // Biases that start at zero may stay there for a few steps; weights may not.
                    #expect(!same, "\(name) should have trained (\(run.arm.name))")
                }
            }
        }
        // Trainable counts: the frozen arm trains everything but attention and MLP.
        let counts = study.records.values.map(\.trainableParameters).sorted()
        let all = start.parameters.reduce(0) { $0 + $1.variable.value.count }
        let blocks = start.parameters.filter { $0.name.contains(".attn.") || $0.name.contains(".mlp.") }
            .reduce(0) { $0 + $1.variable.value.count }
        #expect(counts == [all - blocks, all])
    }

    /// The MiniLM backbone as a study builds it (norm_pre, post-norm blocks, position
    /// embeddings and class token from the text model) turns the embeddings of a sentence's
    /// tokens into the token states `vit embed`'s encoder computes, and their mean,
    /// normalized, is sentence-transformers' embedding of the sentence.
    @Test func miniLMBackboneComputesTheTextEncodersStates() throws {
        let encoder = try SentenceEncoder.load(folder: repositoryPath("Weights/all-MiniLM-L6-v2"))
        let study = try TransferStudy(
            plan: plan(task: try writeTask(), backbones: ["minilm"]), folder: "\(folder)/study",
            sources: ["minilm": .pretrainedText(encoder.encoder, clsTokenID: encoder.tokenizer.classID)])
        let model = try study.startingModel(backbone: "minilm", seed: 0)
        #expect(model.config.normPlacement == .postNorm && model.normPre != nil)
        let sentence = "A photo of a cat sitting on a sofa."
        let ids = encoder.tokenizer.encode(sentence)
        let (n, d) = (ids.count, 384)
        #expect(n <= 17)
        // The input embeddings through the study model's own pieces: its class token for
        // [CLS], the word embeddings for the rest, plus its position embeddings.
        let words = encoder.encoder.wordEmbed.value
        let inputs = Tensor(shape: [1, n, d])
        for i in 0..<n {
            for j in 0..<d {
                let token = i == 0 ? model.clsToken.value.data[j] : words.data[ids[i] * d + j]
                inputs.data[i * d + j] = token + model.posEmbed.value.data[i * d + j]
            }
        }
        let states = model.blocks(model.normPre!(Variable(inputs))).value
        let reference = encoder.tokenStates([sentence]).states
        let result = compare(states, reference, atol: 1e-5)
        #expect(result.passed, "\(result)")

        let golden = try SafeTensorsFile(path: repositoryPath("Tests/ViTTextTests/Golden/embeddings.safetensors"))
            .tensor("embeddings")
        let lines = try String(contentsOfFile: repositoryPath("Tests/ViTTextTests/Golden/corpus.txt"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false)
        let row = try #require(lines.firstIndex { $0 == sentence })
        var pooled = (0..<d).map { j in (0..<n).reduce(Float(0)) { $0 + states.data[$1 * d + j] } / Float(n) }
        let norm = pooled.reduce(0) { $0 + $1 * $1 }.squareRoot()
        pooled = pooled.map { $0 / norm }
        let expected = Array(golden.scalars[(row * d)..<((row + 1) * d)])
        let pooledResult = compare(pooled, expected, atol: 1e-4)
        #expect(pooledResult.passed, "\(pooledResult)")
    }

    /// The same run twice gives the same record (accuracies, losses, counts), in another
    /// folder too; another seed gives other numbers.
    @Test func seedsMakeRunsReproducible() throws {
        let task = try writeTask()
        var records: [StudyRunRecord] = []
        for (index, seed) in [0, 0, 1].enumerated() {
            let study = try TransferStudy(
                plan: plan(task: task, backbones: ["text-random"], seeds: 2), folder: "\(folder)/study\(index)",
                sources: sources())
            try study.prepareFolder()
            var record = try study.run(
                StudyRun(arm: StudyArm(backbone: "text-random", frozen: false), learningRate: 3e-3, seed: seed))
            record.seconds = 0
            records.append(record)
        }
        #expect(records[0] == records[1])
        #expect(records[0].curve != records[2].curve)
    }

    /// A study whose runs were partly done (one log missing, as after a kill) runs only the
    /// missing run: the other logs keep their bytes, and the results equal a study run
    /// without a stop. A folder with another study's settings is refused.
    @Test func stoppedStudyResumesWithoutRedoingFinishedRuns() throws {
        let task = try writeTask()
        let studyPlan = plan(task: task, backbones: ["scratch", "text"], rates: [1e-3, 3e-3])
        func runAll(_ study: TransferStudy) throws -> Int {
            var ran = 0
            for run in study.plan.runs where study.records[run.id] == nil {
                try study.run(run)
                ran += 1
            }
            try study.writeReport(command: "test", machine: "test", wallSeconds: nil)
            return ran
        }
        let first = try TransferStudy(plan: studyPlan, folder: "\(folder)/a", sources: sources())
        try first.prepareFolder()
        #expect(try runAll(first) == 8)
        let runs = "\(folder)/a/runs"
        let names = try FileManager.default.contentsOfDirectory(atPath: runs).sorted()
        #expect(names.count == 8)
        let removed = names[3]
        var kept: [String: Data] = [:]
        for name in names where name != removed {
            kept[name] = FileManager.default.contents(atPath: "\(runs)/\(name)")
        }
        try FileManager.default.removeItem(atPath: "\(runs)/\(removed)")

        let resumed = try TransferStudy(plan: studyPlan, folder: "\(folder)/a", sources: sources())
        #expect(resumed.records.count == 7)
        #expect(try runAll(resumed) == 1)
        for (name, bytes) in kept {
            #expect(FileManager.default.contents(atPath: "\(runs)/\(name)") == bytes, "\(name)")
        }

        func withoutTimes(_ study: TransferStudy) -> [String: StudyRunRecord] {
            study.records.mapValues {
                var r = $0
                r.seconds = 0
                return r
            }
        }
        let whole = try TransferStudy(plan: studyPlan, folder: "\(folder)/b", sources: sources())
        try whole.prepareFolder()
        _ = try runAll(whole)
        #expect(withoutTimes(resumed) == withoutTimes(whole))
        let csv = try String(contentsOfFile: "\(folder)/a/results.csv", encoding: .utf8)
        #expect(csv.split(separator: "\n").count == 9)

        var other = studyPlan
        other.steps = 7
        #expect(throws: StudyError.self) { try TransferStudy(plan: other, folder: "\(folder)/a", sources: sources()) }

        // A wider sweep in the same folder keeps the runs it shares and runs only the new ones.
        var wider = studyPlan
        wider.learningRates = [3e-3, 1e-2]
        let widened = try TransferStudy(plan: wider, folder: "\(folder)/a", sources: sources())
        #expect(widened.records.count == 4)
        try widened.prepareFolder()
        #expect(try runAll(widened) == 4)
    }

    /// Learning rates as the command line writes them.
    @Test func learningRateTexts() {
        #expect(learningRateText(1e-4) == "1e-4")
        #expect(learningRateText(3e-4) == "3e-4")
        #expect(learningRateText(1e-3) == "1e-3")
        #expect(learningRateText(0.05) == "0.05")
        #expect(learningRateText(2.5e-5) == "2.5e-5")
    }
}
