import ArgumentParser
import Foundation
import ViTCore
import ViTData
import ViTGenerator
import ViTTensor
import ViTText
import ViTVision

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure inference latency and throughput.",
        discussion: """
            Times forward passes of a checkpoint (--model) or of a named architecture with \
            random weights (--architecture vit-tiny-patch16-224, vit-small-patch16-224, \
            vit-base-patch16-224). Reports the CPU and its FMA peak at --threads (measured: \
            fused multiply-adds on registers), then per batch size the median and fastest \
            time, images per second, GFLOP/s of the model's products, and the MLP's first \
            product timed alone (GFLOP/s and share of the peak: the roofline); last, the \
            process's peak memory. \
            Compare with PyTorch: python Examples/bench_pytorch.py (same options). --generator \
            times `vit generate` instead: images of 32 x 32 from captions with guidance \
            (conditional and unconditional passes batched) in --steps Euler steps, the captions' \
            encoding included, for the shipped generator or --model; compare with python \
            Examples/bench_generator_pytorch.py.
            """)

    static let architectures: [String: ViTConfig] = [
        "vit-tiny-patch16-224": ViTConfig(
            imageSize: 224, patchSize: 16, dim: 192, depth: 12, numHeads: 3,
            hiddenDim: 768, numClasses: 1000, layerNormEps: 1e-6),
        "vit-small-patch16-224": ViTConfig(
            imageSize: 224, patchSize: 16, dim: 384, depth: 12, numHeads: 6,
            hiddenDim: 1536, numClasses: 1000, layerNormEps: 1e-6),
        "vit-base-patch16-224": ViTConfig(
            imageSize: 224, patchSize: 16, dim: 768, depth: 12, numHeads: 12,
            hiddenDim: 3072, numClasses: 1000, layerNormEps: 1e-6),
    ]

    @Option(
        help:
            "A model to load (HF folder, timm folder, SwiftViT file or Hugging Face name (from its cache, fetched when absent))."
    )
    var model: String?

    @Option(help: "A named architecture with random weights.")
    var architecture: String = "vit-base-patch16-224"

    @Option(help: "Comma-separated batch sizes.")
    var batchSizes: String = "1,8"

    @Option(help: "Threads for matrix products.")
    var threads = ThreadCount(2)

    @OptionGroup var precision: PrecisionOption

    @Option(help: "Untimed passes before measuring.")
    var warmup: Int = 2

    @Option(help: "Timed passes per batch size.")
    var iterations: Int = 10

    @Flag(help: "Time training steps (forward, backward, AdamW) instead of inference.")
    var train = false

    @Flag(help: "Time caption-to-image generation instead (batch sizes are images).")
    var generator = false

    @Option(help: "Sampling steps for --generator.")
    var steps: Int = 30

    @Option(help: "Input size (overrides the architecture's).")
    var imageSize: Int?

    @Option(help: "Patch size (overrides the architecture's).")
    var patchSize: Int?

    @Option(help: "Classes (overrides the architecture's).")
    var classes: Int?

    func validate() throws {
        if model == nil && Self.architectures[architecture] == nil {
            throw ValidationError(
                "unknown architecture '\(architecture)'; choose one of \(Self.architectures.keys.sorted().joined(separator: ", "))"
            )
        }
        guard parsedBatchSizes != nil else { throw ValidationError("--batch-sizes takes positive integers: 1,8") }
        guard warmup >= 0, iterations > 0 else {
            throw ValidationError("--iterations must be positive, --warmup not negative")
        }
    }

    var parsedBatchSizes: [Int]? {
        let sizes = batchSizes.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !sizes.isEmpty, sizes.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        return sizes.map { $0! }
    }

    func run() throws {
        setThreadCount(threads.value)
        try precision.apply()
        if generator { return try runGenerator() }
        let vit: VisionTransformer
        let name: String
        if let model {
            vit = try ImageClassifier.load(path: modelPath(model)).model
            name = model
        } else {
            var config = Self.architectures[architecture]!
            config.imageSize = imageSize ?? config.imageSize
            config.patchSize = patchSize ?? config.patchSize
            config.numClasses = classes ?? config.numClasses
            vit = try VisionTransformer(RandomParameters(seed: 0), config: config)
            name = "\(architecture) (random weights)"
        }
        if !train { vit.markParametersConstant() }
        let c = vit.config
        print(
            "model: \(name), \(String(format: "%.2f", c.gflops)) GFLOPs per image, threads: \(threads), products: \(productKernelName), \(productPrecision.rawValue)"
                + (train ? ", training steps (AdamW)" : "")
        )
        // A training step costs about three forward passes of products.
        let flopsPerImage = c.gflops * (train ? 3 : 1)
        let optimizer = AdamW(learningRate: 1e-4, weightDecay: 0.05)
        // Each training step's forward (gradients zeroed, the loss recorded) and backward
        // (back-propagation and the AdamW update) in milliseconds, as
        // Examples/bench_train_pytorch.py splits PyTorch's steps: `lossAndGradients` with a
        // clock read between its recording and its backward pass.
        var stepParts: [(forward: Double, backward: Double)] = []
        func pass(_ input: Tensor, labels: [Int]) {
            guard train else {
                _ = vit(input)
                return
            }
            let start = DispatchTime.now().uptimeNanoseconds
            vit.parameters.zeroGradients()
            let loss = recordingGradients { crossEntropy(vit(input), labels: labels) }
            let middle = DispatchTime.now().uptimeNanoseconds
            loss.backward()
            optimizer.update(vit.parameters.trainable)
            let end = DispatchTime.now().uptimeNanoseconds
            stepParts.append((Double(middle - start) / 1e6, Double(end - middle) / 1e6))
        }
        let peak = printRoofline()
        // The roofline columns: the MLP's first product alone (tokens x dim by dim x
        // hidden, the largest of a block, weights packed once as a loaded model's), and its
        // share of the peak (the bf16 peak with --precision bf16).
        // Training adds the forward and backward times of the step nearest the median.
        print(
            "batch  median ms  min ms   images/s  GFLOP/s  fc1 GFLOP/s  of peak"
                + (train ? "  forward ms  backward ms" : ""))
        var generator = SeededGenerator(seed: 1)
        let weight = Tensor.normal([c.hiddenDim, c.dim], using: &generator)
        weight.storage.markConstant()
        for batch in parsedBatchSizes! {
            let input = Tensor.normal([batch, c.inChannels, c.imageSize, c.imageSize], using: &generator)
            let labels = (0..<batch).map { $0 % max(c.numClasses, 1) }
            stepParts.removeAll()
            let (median, fastest) = time { pass(input, labels: labels) }
            let timed = stepParts.suffix(iterations)
            let medianStep = timed.min {
                abs($0.forward + $0.backward - median) < abs($1.forward + $1.backward - median)
            }
            let imagesPerSecond = Double(batch) / (median / 1000)
            let tokens = batch * (c.numPatches + 1)
            let activations = Tensor.normal([tokens, c.dim], using: &generator)
            let product = time { _ = linear(activations, weight: weight, bias: nil) }.median
            let productGFLOPs = 2 * Double(tokens * c.dim * c.hiddenDim) / (product / 1000) / 1e9
            let parts = medianStep.map { String(format: "  %10.1f  %11.1f", $0.forward, $0.backward) } ?? ""
            print(
                String(
                    format: "%5d  %9.1f  %6.1f  %9.2f  %7.1f  %11.1f  %6.0f%%", batch, median, fastest,
                    imagesPerSecond, flopsPerImage * imagesPerSecond, productGFLOPs,
                    100 * productGFLOPs / (peak ?? .nan)) + parts)
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        print("peak memory: \(usage.ru_maxrss / 1024) MB")
    }

    /// Times `CaptionGenerator.generate` with guidance 3, Euler steps, a fresh caption cache
    /// each pass (so the text encoder's work is counted).
    func runGenerator() throws {
        let textEncoder = try SentenceEncoder.load(folder: defaultTextModelPath())
        let path = model ?? shippedWeightsPath(defaultGeneratorFile)
        let loaded = try CaptionGenerator.load(path: path, textEncoder: textEncoder)
        loaded.model.markParametersConstant()
        textEncoder.encoder.markParametersConstant()
        let c = loaded.config
        print(
            "generator: \(path) (\(c.dim) wide, \(c.depth) deep, patch \(c.patchSize)), \(steps) Euler steps, guidance 3, threads: \(threads), products: \(productKernelName), \(productPrecision.rawValue)"
        )
        _ = printRoofline()
        print("images  median ms  min ms   images/s")
        let captions = Shapes.previewCaptions.seen + Shapes.previewCaptions.heldOut
        for batch in parsedBatchSizes! {
            func pass() {
                let fresh = CaptionGenerator(model: loaded.model, textEncoder: textEncoder)
                _ = fresh.generate(
                    captions: (0..<batch).map { captions[$0 % captions.count] }, seeds: (0..<batch).map(UInt64.init),
                    sampling: .init(steps: steps, solver: .euler, guidance: 3))
            }
            let (median, fastest) = time(pass)
            print(String(format: "%6d  %9.1f  %6.1f  %9.2f", batch, median, fastest, Double(batch) / (median / 1000)))
        }
    }

    /// Prints the CPU and its FMA peak at --threads threads; returns the peak in GFLOP/s.
    func printRoofline() -> Double? {
        let kind = productFMAKind
        let peak = Machine.fmaPeak(threads: threads.value, kind: kind)
        print("cpu: \(Machine.cpuName)")
        if let peak, let kind {
            let figure = String(format: "%.1f", peak)
            print(
                "FMA peak: \(figure) GFLOP/s on \(threads.value == 1 ? "1 thread" : "\(threads.value) threads") (\(kind) fused multiply-adds on registers)"
            )
        } else {
            print("FMA peak: none (the CPU has no fused multiply-add)")
        }
        guard productPrecision == .bfloat16, let bfloat16Peak = Machine.bfloat16Peak(threads: threads.value) else {
            return peak
        }
        print(String(format: "bf16 peak: %.1f GFLOP/s (AVX512-BF16 dot products on registers)", bfloat16Peak))
        return bfloat16Peak
    }

    /// Runs `pass` --warmup times untimed, then --iterations times: the median and the
    /// fastest time in milliseconds.
    func time(_ pass: () -> Void) -> (median: Double, fastest: Double) {
        for _ in 0..<warmup { pass() }
        var times: [Double] = []
        for _ in 0..<iterations {
            let start = DispatchTime.now().uptimeNanoseconds
            pass()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        times.sort()
        let median =
            times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
        return (median, times[0])
    }
}
