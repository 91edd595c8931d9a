import Foundation
import ViTCheckpoint
import ViTCore
import ViTImage
import ViTTensor
import ViTText

/// A caption-to-image generator: a flow transformer conditioned on the token states of a
/// frozen sentence encoder (docs/ARCHITECTURE.md, "Life of a caption"). Images are
/// [C, S, S] with values in [-1, 1]; the empty caption is the unconditional input.
public struct CaptionGenerator {
    public let model: FlowTransformer
    public let textEncoder: SentenceEncoder
    /// Token states [1, M, D] of each caption seen so far (captions repeat in training).
    private let cache: TokenStateCache

    public init(model: FlowTransformer, textEncoder: SentenceEncoder) {
        precondition(
            model.config.contextDim == textEncoder.encoder.config.dim,
            "the flow transformer attends to width \(model.config.contextDim), the text encoder gives \(textEncoder.encoder.config.dim)"
        )
        self.model = model
        self.textEncoder = textEncoder
        cache = TokenStateCache()
    }

    public var config: FlowTransformerConfig { model.config }

    /// The text encoder's token states for `captions`, padded to the longest: context
    /// [B, M, D] and the additive mask [B, 1, M] hiding the padding. Each caption is encoded
    /// once (alone, so its states do not depend on the batch) and then taken from a cache.
    public func context(_ captions: [String]) -> (states: Tensor, mask: Tensor) {
        let states = captions.map { caption in
            cache.states(caption) { textEncoder.tokenStates([caption]).states }
        }
        let (b, m, d) = (captions.count, states.map { $0.shape[1] }.max() ?? 0, textEncoder.encoder.config.dim)
        let context = Tensor(shape: [b, m, d]), mask = Tensor(shape: [b, 1, m])
        for (i, s) in states.enumerated() {
            (context.data + i * m * d).update(from: s.data, count: s.count)
            for j in s.shape[1]..<m { mask.data[i * m + j] = -1e30 }
        }
        return (context, mask)
    }

    /// Encodes captions ahead of use, in batches of captions with the same token count (no
    /// padding), and caches their states; `progress` gets (captions done, captions in all).
    /// States agree with `context`'s one-at-a-time encoding within float rounding.
    public func encode(_ captions: [String], batchSize: Int = 128, progress: (Int, Int) -> Void = { _, _ in }) {
        let tokenizer = textEncoder.tokenizer
        let pending = Array(Set(captions)).filter { !cache.contains($0) }.sorted()
        let byLength = Dictionary(grouping: pending.map { ($0, tokenizer.encode($0)) }) { $0.1.count }
        var done = 0
        for length in byLength.keys.sorted() {
            let group = byLength[length]!
            for start in stride(from: 0, to: group.count, by: batchSize) {
                let batch = Array(group[start..<min(group.count, start + batchSize)])
                let ids = batch.map(\.1), mask = ids.map { $0.map { _ in 1 } }
                let states = textEncoder.encoder(ids: ids, mask: mask).value  // [B, N, D]
                let perCaption = length * textEncoder.encoder.config.dim
                for (row, (caption, _)) in batch.enumerated() {
                    let one = Tensor(shape: [1, length, textEncoder.encoder.config.dim])
                    one.data.update(from: states.data + row * perCaption, count: perCaption)
                    cache.insert(caption, one)
                }
                done += batch.count
                progress(done, pending.count)
            }
        }
    }

    /// The velocity for noisy images [B, C, S, S] at one time for each, conditioned on the
    /// captions: [B, C, S, S].
    public func velocity(_ images: Tensor, times: [Float], captions: [String]) -> Variable {
        let (states, mask) = context(captions)
        return model(images, times: times, context: Variable(states), mask: mask)
    }

    /// How images are sampled.
    public struct Sampling: Sendable, Equatable {
        public var steps: Int
        public var solver: FlowSolver
        /// Classifier-free guidance scale: 1 is the conditional model alone.
        public var guidance: Float

        public init(steps: Int = 30, solver: FlowSolver = .euler, guidance: Float = 3) {
            self.steps = steps
            self.solver = solver
            self.guidance = guidance
        }
    }

    /// The starting noise of the image made with `seed`, [C, S, S]: a function of the seed
    /// alone, so an image does not depend on the others in its batch.
    public func noise(seed: UInt64) -> Tensor {
        var generator = SeededGenerator(seed: seed)
        return Tensor.normal([config.channels, config.imageSize, config.imageSize], using: &generator)
    }

    /// Images for captions, one per (caption, seed) pair, sampled from noise at t = 1 to
    /// t = 0; conditional and unconditional velocities come from one batched forward.
    /// `progress` is called after each step with (steps done, steps in all).
    public func generate(
        captions: [String], seeds: [UInt64], sampling: Sampling, progress: (Int, Int) -> Void = { _, _ in }
    ) -> [Image] {
        precondition(captions.count == seeds.count, "\(captions.count) captions for \(seeds.count) seeds")
        guard !captions.isEmpty else { return [] }
        let b = captions.count
        let start = Tensor.stack(seeds.map(noise(seed:)))  // [B, C, S, S]
        let guided = sampling.guidance != 1
        let (states, mask) = context(guided ? captions + Array(repeating: "", count: b) : captions)
        // The captions' keys and values in every block, the same at every step.
        let keysValues = model.contextKeysValues(Variable(states))
        let calls = sampling.steps * (sampling.solver == .heun ? 2 : 1) - (sampling.solver == .heun ? 1 : 0)
        var done = 0
        let samples = sampleFlow(from: start, steps: sampling.steps, solver: sampling.solver) { x, t in
            defer {
                done += 1
                progress(done, calls)
            }
            guard guided else {
                return model(x, times: Array(repeating: t, count: b), contextKeysValues: keysValues, mask: mask).value
            }
            let both = model(
                Tensor.concatenate([x, x], axis: 0), times: Array(repeating: t, count: 2 * b),
                contextKeysValues: keysValues, mask: mask
            ).value
            return guidedVelocity(
                conditional: both.sliced(axis: 0, 0..<b), unconditional: both.sliced(axis: 0, b..<(2 * b)),
                scale: sampling.guidance)
        }
        return (0..<b).map { Self.image(samples.sliced(axis: 0, $0..<($0 + 1))) }
    }

    /// A tensor [1 or absent, C, S, S] of values in [-1, 1] as an 8-bit image (clamped).
    public static func image(_ tensor: Tensor) -> Image {
        let (c, h, w) = (tensor.shape[tensor.rank - 3], tensor.shape[tensor.rank - 2], tensor.shape[tensor.rank - 1])
        var image = Image(width: w, height: h, channels: c)
        for y in 0..<h {
            for x in 0..<w {
                for ch in 0..<c {
                    let v = tensor.data[(ch * h + y) * w + x]
                    image.pixels[(y * w + x) * c + ch] = UInt8(min(max((v + 1) * 127.5, 0), 255).rounded())
                }
            }
        }
        return image
    }

    /// An 8-bit image as a tensor [C, S, S] of values in [-1, 1] (x / 127.5 - 1).
    public static func tensor(_ image: Image) -> Tensor {
        let (c, h, w) = (image.channels, image.height, image.width)
        let out = Tensor(shape: [c, h, w])
        for y in 0..<h {
            for x in 0..<w {
                for ch in 0..<c {
                    out.data[(ch * h + y) * w + x] = Float(image.pixels[(y * w + x) * c + ch]) / 127.5 - 1
                }
            }
        }
        return out
    }
}

/// Token states by caption, filled on first use; safe to share between threads.
private final class TokenStateCache: @unchecked Sendable {
    private var states: [String: Tensor] = [:]
    private let lock = NSLock()

    func contains(_ caption: String) -> Bool { lock.withLock { states[caption] != nil } }

    func insert(_ caption: String, _ value: Tensor) { lock.withLock { states[caption] = value } }

    func states(_ caption: String, compute: () -> Tensor) -> Tensor {
        if let cached = lock.withLock({ states[caption] }) { return cached }
        let computed = compute()
        lock.withLock { states[caption] = computed }
        return computed
    }
}

// MARK: - Files

/// A problem with a generator file; one line naming it.
public typealias GeneratorError = FileError

extension CaptionGenerator {
    /// The value of the metadata key `kind` in a generator file.
    public static let fileKind = "swiftvit-caption-generator"

    /// The metadata of a generator file: kind, config, the text model's name.
    public func metadata(extra: [String: String] = [:]) throws -> [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return [
            "kind": Self.fileKind, "config": String(decoding: try encoder.encode(config), as: UTF8.self),
            "text_model": textEncoder.name,
        ].merging(extra) { own, _ in own }
    }

    /// Writes the flow transformer's weights with the metadata, atomically.
    public func save(path: String, extraMetadata: [String: String] = [:]) throws {
        var tensors: [String: Tensor] = [:]
        for (name, tensor) in model.namedTensors { tensors[name] = tensor }
        try writeSafeTensors(tensors, metadata: try metadata(extra: extraMetadata), toPath: path)
    }

    /// The flow transformer config stored in a generator file, or an error naming the file
    /// when it is not one.
    public static func config(of file: SafeTensorsFile, path: String) throws -> FlowTransformerConfig {
        guard file.metadata["kind"] == fileKind, let text = file.metadata["config"] else {
            throw GeneratorError(path: path, reason: "not a SwiftViT caption generator (no generator metadata)")
        }
        do {
            let config = try JSONDecoder().decode(FlowTransformerConfig.self, from: Data(text.utf8))
            try config.validate()
            return config
        } catch let error as ParameterError {
            throw GeneratorError(path: path, reason: "\(error)")
        } catch {
            throw GeneratorError(path: path, reason: "invalid generator config (\(error))")
        }
    }

    /// The metadata key under which a file lists (JSON array) the key prefixes of tensors
    /// it holds beside the model's (a training checkpoint's optimizer state).
    public static let auxiliaryPrefixesKey = "auxiliary_prefixes"

    /// The key prefixes a generator file lists under `auxiliaryPrefixesKey` (none when the
    /// key is absent), or an error naming the file when the list is malformed.
    public static func auxiliaryPrefixes(in file: SafeTensorsFile) throws -> [String] {
        guard let text = file.metadata[auxiliaryPrefixesKey] else { return [] }
        guard let prefixes = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else {
            throw GeneratorError(path: file.path, reason: "metadata '\(auxiliaryPrefixesKey)' is not a list of strings")
        }
        return prefixes
    }

    /// Loads a generator file written by `save` (or a training checkpoint, as its current
    /// weights), with the text encoder it was trained with.
    public static func load(path: String, textEncoder: SentenceEncoder) throws -> CaptionGenerator {
        let file = try SafeTensorsFile(path: path)
        let ignoring = try auxiliaryPrefixes(in: file)
        let config = try config(of: file, path: path)
        if let name = file.metadata["text_model"], name != textEncoder.name {
            throw GeneratorError(
                path: path, reason: "was trained with the text model '\(name)', given '\(textEncoder.name)'")
        }
        let tensors = try file.allTensors().filter { name, _ in !ignoring.contains { name.hasPrefix($0) } }
        let store = WeightStore(tensors, origin: path)
        let model = try FlowTransformer(store, config: config)
        try store.finish()
        guard config.contextDim == textEncoder.encoder.config.dim else {
            throw GeneratorError(
                path: path,
                reason: "attends to width \(config.contextDim), the text model gives \(textEncoder.encoder.config.dim)")
        }
        return CaptionGenerator(model: model, textEncoder: textEncoder)
    }
}
