import Foundation
import ViTImage
import ViTTensor

/// One arm's results across the learning-rate sweep.
public struct StudyArmSummary: Sendable {
    public struct AtRate: Sendable {
        public var learningRate: Float
        /// Finished runs (seeds) at this rate, and how many of them diverged.
        public var runs: Int, diverged: Int
        public var validation: (mean: Float, std: Float)
        public var test: (mean: Float, std: Float)
        /// Mean training loss per curve point over the seeds.
        public var curve: [Float]
    }

    public var arm: StudyArm
    public var trainableParameters: Int, parameters: Int
    public var rates: [AtRate]
    /// The index in `rates` of the best mean validation accuracy (nil before any run).
    public var best: Int?
}

/// Mean and sample standard deviation (0 for one value).
func meanAndStd(_ values: [Float]) -> (mean: Float, std: Float) {
    guard !values.isEmpty else { return (.nan, .nan) }
    let mean = values.reduce(0, +) / Float(values.count)
    guard values.count > 1 else { return (mean, 0) }
    let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(values.count - 1)
    return (mean, variance.squareRoot())
}

/// A learning rate as the command line writes it: 0.0003 -> "3e-4", 0.05 -> "0.05".
public func learningRateText(_ rate: Float) -> String {
    guard rate > 0, rate < 0.01 else { return String(format: "%g", rate) }
    let exponent = Int(floor(log10(Double(rate)) + 1e-6))
    let mantissa = Double(rate) / pow(10, Double(exponent))
    return String(format: "%ge%d", (mantissa * 1e4).rounded() / 1e4, exponent)
}

extension TransferStudy {
    /// Per arm, the finished runs summarized at every learning rate.
    public func summaries() -> [StudyArmSummary] {
        plan.arms.map { arm in
            let armRecords = records.values.filter { $0.arm == arm }
            let rates = plan.learningRates.map { rate -> StudyArmSummary.AtRate in
                let runs = armRecords.filter { $0.learningRate == rate }.sorted { $0.seed < $1.seed }
                let length = runs.map(\.curve.count).min() ?? 0
                let curve = (0..<length).map { i in runs.reduce(0) { $0 + $1.curve[i] } / Float(runs.count) }
                return StudyArmSummary.AtRate(
                    learningRate: rate, runs: runs.count, diverged: runs.filter(\.diverged).count,
                    validation: meanAndStd(runs.map(\.validationAccuracy)), test: meanAndStd(runs.map(\.testAccuracy)),
                    curve: curve)
            }
            let best = rates.indices.filter { rates[$0].runs > 0 }.max {
                (rates[$0].validation.mean, -$0) < (rates[$1].validation.mean, -$1)
            }
            return StudyArmSummary(
                arm: arm, trainableParameters: armRecords.first?.trainableParameters ?? 0,
                parameters: armRecords.first?.parameters ?? 0, rates: rates, best: best)
        }
    }

    /// The colour of a backbone in the figures, and its name.
    static let palette: [((UInt8, UInt8, UInt8), String)] = [
        ((200, 40, 40), "red"), ((40, 80, 200), "blue"), ((30, 150, 60), "green"), ((230, 140, 20), "orange"),
        ((140, 60, 170), "purple"), ((90, 90, 90), "gray"), ((20, 160, 170), "teal"), ((160, 110, 60), "brown"),
    ]

    func color(_ backbone: String) -> ((UInt8, UInt8, UInt8), String) {
        Self.palette[(plan.backbones.firstIndex(of: backbone) ?? 0) % Self.palette.count]
    }

    /// Writes results.csv, results.md, accuracy-vs-learning-rate.png and learning-curves.png
    /// (each atomically) from the finished runs. `command` and `machine` are quoted in
    /// results.md; `wallSeconds` is the time the command that finished the study took.
    public func writeReport(command: String, machine: String, wallSeconds: Double?) throws {
        let summaries = summaries()
        try writeAtomically(Data(resultsCSV().utf8), toPath: "\(folder)/results.csv")
        try writeAtomically(
            Data(resultsMarkdown(summaries, command: command, machine: machine, wallSeconds: wallSeconds).utf8),
            toPath: "\(folder)/results.md")
        let software = ("Software", "SwiftViT transfer study")
        try accuracyFigure(summaries).writePNG(
            path: "\(folder)/accuracy-vs-learning-rate.png",
            text: [
                software,
                (
                    "Description",
                    "mean test accuracy against learning rate (x: \(plan.learningRates.map(learningRateText).joined(separator: ", "))), frozen arms left, fully trained right; colours in results.md"
                ),
            ])
        try curvesFigure(summaries).writePNG(
            path: "\(folder)/learning-curves.png",
            text: [
                software,
                (
                    "Description",
                    "training loss every \(plan.logEvery) steps at each arm's best learning rate, mean over seeds; frozen arms left, fully trained right"
                ),
            ])
    }

    /// Every finished run, one line each, in the plan's order.
    func resultsCSV() -> String {
        var lines = [
            "backbone,variant,learning_rate,seed,validation_accuracy,test_accuracy,final_loss,diverged,steps,trainable_parameters,parameters,seconds"
        ]
        for run in plan.runs {
            guard let r = records[run.id] else { continue }
            lines.append(
                [
                    r.backbone, r.frozen ? "frozen" : "full", learningRateText(r.learningRate), "\(r.seed)",
                    String(format: "%.4f", r.validationAccuracy), String(format: "%.4f", r.testAccuracy),
                    String(format: "%.4f", r.finalLoss), r.diverged ? "yes" : "no", "\(r.steps)",
                    "\(r.trainableParameters)", "\(r.parameters)", String(format: "%.1f", r.seconds),
                ].joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    func resultsMarkdown(_ summaries: [StudyArmSummary], command: String, machine: String, wallSeconds: Double?)
        -> String
    {
        func percent(_ value: (mean: Float, std: Float), runs: Int) -> String {
            guard runs > 0 else { return "-" }
            return runs > 1
                ? String(format: "%.1f ± %.1f%%", value.mean * 100, value.std * 100)
                : String(format: "%.1f%%", value.mean * 100)
        }
        func millions(_ n: Int) -> String {
            n >= 100_000 ? String(format: "%.2f M", Double(n) / 1e6) : String(format: "%.1f k", Double(n) / 1e3)
        }
        let p = plan
        let counts = imageCounts
        let finished = p.runs.filter { records[$0.id] != nil }.count
        let compute = records.values.reduce(0) { $0 + $1.seconds }
        let frozenText = p.frozen.isEmpty ? "nothing" : p.frozen.joined(separator: ", ")
        let trained = Self.freezeGroups.keys.filter { !p.frozen.contains($0) }.sorted()
        var md = """
            # Transfer study: \(p.task)

            ```sh
            \(command)
            ```

            Task \(p.task): \(imageSize) x \(imageSize) images in patches of \(p.patchSize) (\(patchCount) patch tokens and a class token); \(counts.train) training images (a fixed random subset), \(counts.validation) other training images to choose each arm's learning rate, \(counts.test) test images. Each run: \(p.steps) steps of \(p.batchSize) images, AdamW without weight decay, \(p.steps / 10) warmup steps then cosine decay to 0, gradient norm clipped at 1, no augmentation or label smoothing; a new patch embedding and class head (drawn from the run's seed, as is the order of the data). Frozen arms keep \(frozenText) as the backbone gave them and train \(trained.joined(separator: ", ")); full arms train everything. Seeds: \(p.seeds) (0...\(p.seeds - 1)).

            Backbones: `minilm` is all-MiniLM-L6-v2 as pretrained on text (post-norm BERT blocks, its embedding norm before them, its first position embeddings plus the token-type embedding as position embeddings, its [CLS] embedding as the class token); `minilm-random` the same architecture randomly initialized; `vit:MODEL` a ViT trained on another image task (blocks, norms and class token; position embeddings resampled to this grid; its patch embedding when the shapes agree); `scratch` a pre-norm ViT of MiniLM's sizes, randomly initialized.

            Finished runs: \(finished) of \(p.runs.count); training and scoring took \(Int(compute.rounded())) s in all\(wallSeconds.map { ", the command \(Int($0.rounded())) s" } ?? "") on \(machine).

            Test accuracy, mean ± standard deviation over seeds; the best learning rate is chosen by mean validation accuracy, never by test accuracy.

            | arm | trained / all parameters | best learning rate | test accuracy at it |
            """
        md += p.learningRates.map { " lr \(learningRateText($0)) |" }.joined() + "\n|---|---|---|---|"
        md += String(repeating: "---|", count: p.learningRates.count) + "\n"
        for s in summaries {
            let best = s.best.map { s.rates[$0] }
            md += "| \(s.arm.name) | \(millions(s.trainableParameters)) / \(millions(s.parameters)) | "
            md += "\(best.map { learningRateText($0.learningRate) } ?? "-") | "
            md += "\(best.map { "**\(percent($0.test, runs: $0.runs))**" } ?? "-") |"
            for rate in s.rates {
                md +=
                    " \(percent(rate.test, runs: rate.runs))\(rate.diverged > 0 ? " (\(rate.diverged) diverged)" : "") |"
            }
            md += "\n"
        }
        let sorted = p.learningRates.sorted()
        let atEdge = summaries.filter { s in
            guard p.learningRates.count > 1, let best = s.best else { return false }
            return [sorted.first, sorted.last].contains(s.rates[best].learningRate)
        }
        if !atEdge.isEmpty {
            md += """

                The best learning rate of \(atEdge.map(\.arm.name).joined(separator: ", ")) is the smallest or largest swept: a wider sweep may find a better one, so read those arms' figures as lower bounds.

                """
        }
        let colours = p.backbones.map { "\($0) \(color($0).1)" }.joined(separator: ", ")
        let accuracyRange = accuracyFigureRange(summaries), lossRange = curvesFigureRange(summaries)
        md += """

            Figures (frozen arms left, fully trained arms right; colours: \(colours)):

            - `accuracy-vs-learning-rate.png`: mean test accuracy at each learning rate (\(p.learningRates.map(learningRateText).joined(separator: ", ")), evenly spaced), on one scale for both panels: \(String(format: "%.0f%%", accuracyRange.lowerBound * 100)) at the bottom, \(String(format: "%.0f%%", accuracyRange.upperBound * 100)) at the top.
            - `learning-curves.png`: training loss every \(p.logEvery) steps at each arm's best learning rate, mean over seeds; loss \(String(format: "%.2f", lossRange.lowerBound)) at the bottom, \(String(format: "%.2f", lossRange.upperBound)) at the top.

            `results.csv` has every run; `runs/` each run's log (loss every \(p.logEvery) steps, then the result); `models/` each arm's seed-0 model at its best learning rate so far, which `vit attention --model` and `vit classify --model` take.

            """
        return md
    }

    /// The accuracy figure's y range: the means' range widened by 2 points, within [0, 1].
    func accuracyFigureRange(_ summaries: [StudyArmSummary]) -> ClosedRange<Float> {
        let values = summaries.flatMap { $0.rates.filter { $0.runs > 0 }.map(\.test.mean) }.filter(\.isFinite)
        let low = max(0, (values.min() ?? 0) - 0.02), high = min(1, (values.max() ?? 1) + 0.02)
        return low...max(high, low + 0.01)
    }

    func accuracyFigure(_ summaries: [StudyArmSummary]) -> Image {
        let range = accuracyFigureRange(summaries)
        let panels = [true, false].map { frozen in
            lineChart(
                summaries.filter { $0.arm.frozen == frozen }.map { s in
                    (s.rates.map { $0.runs > 0 ? $0.test.mean : .nan }, color(s.arm.backbone).0)
                }, yRange: range)
        }
        return Image.tiled(panels, columns: 2, spacing: 8)
    }

    /// Each arm's curve at its best learning rate (empty before any run).
    func bestCurves(_ summaries: [StudyArmSummary]) -> [[Float]] {
        summaries.map { s in s.best.map { s.rates[$0].curve } ?? [] }
    }

    /// The learning-curve figure's y range: the curves' range.
    func curvesFigureRange(_ summaries: [StudyArmSummary]) -> ClosedRange<Float> {
        let values = bestCurves(summaries).flatMap { $0 }.filter(\.isFinite)
        return (values.min() ?? 0)...max(values.max() ?? 1, (values.min() ?? 0) + 1e-3)
    }

    func curvesFigure(_ summaries: [StudyArmSummary]) -> Image {
        let range = curvesFigureRange(summaries)
        let panels = [true, false].map { frozen in
            lineChart(
                zip(summaries, bestCurves(summaries)).filter { $0.0.arm.frozen == frozen }.map { s, curve in
                    (curve, color(s.arm.backbone).0)
                }, yRange: range)
        }
        return Image.tiled(panels, columns: 2, spacing: 8)
    }
}
