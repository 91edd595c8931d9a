import ViTTensor

/// Anything with parameters listed under checkpoint keys. A layer owns its parameters
/// (Variables that require gradients unless frozen) and has one forward pass on Variables,
/// which records gradients only inside `lossAndGradients` (docs/ARCHITECTURE.md).
public protocol Layer {
    /// Every parameter under its dotted checkpoint key, in a fixed order.
    var parameters: NamedParameters { get }
}

/// A layer's parameters with `prefix.` before each name.
public func scoped(_ prefix: String, _ layer: Layer) -> NamedParameters {
    layer.parameters.map { ("\(prefix).\($0.name)", $0.variable) }
}

extension Layer {
    /// Marks every parameter's values constant (`TensorStorage.markConstant`), so that
    /// products keep packed copies of the weights: for a model loaded for inference only,
    /// never for one that trains. Costs one more copy of the weight matrices' memory.
    public func markParametersConstant() {
        for (_, variable) in parameters { variable.value.storage.markConstant() }
    }

    /// The parameters' values under their keys, as a checkpoint stores them.
    public var namedTensors: [(name: String, tensor: Tensor)] { parameters.map { ($0.name, $0.variable.value) } }

    /// Copies of the parameters' values under their keys, in memory of their own (for a
    /// second model that trains or averages apart from this one).
    public var copiedTensors: [String: Tensor] {
        Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0.variable.value.copy()) })
    }

    /// Freezes (or unfreezes) the parameters whose keys are in `group`.
    public func setTrainable(_ trainable: Bool, _ group: ParameterGroup) {
        for (name, variable) in parameters where group.contains(name) { variable.requiresGradient = trainable }
    }
}

/// Runs `loss` with gradient recording on, then back-propagates: afterwards every
/// trainable parameter of `model` holds the gradient of the returned scalar (earlier
/// gradients are cleared first). Returns the loss.
@discardableResult
public func lossAndGradients(of model: Layer, _ loss: () throws -> Variable) rethrows -> Variable {
    let parameters = model.parameters
    parameters.zeroGradients()
    let value = try recordingGradients(loss)
    value.backward()
    return value
}

/// Parameters selected by key prefix (timm's names), for freezing: a key belongs to the
/// group when its leading dot-separated components equal a pattern's, where `*` in a
/// pattern stands for any one component (a block index). "blocks.*.attn" holds
/// "blocks.3.attn.qkv.weight" but not "blocks.3.attn_norm.weight" nor "attn".
public struct ParameterGroup: Sendable, Equatable {
    public let name: String
    public let patterns: [String]

    /// A group called `name` (as `--freeze` spells it) of the keys under `patterns`.
    public init(_ name: String, _ patterns: [String]) {
        self.name = name
        self.patterns = patterns
    }

    /// Whether the parameter `key` ("blocks.0.attn.qkv.weight") is in the group.
    public func contains(_ key: String) -> Bool {
        let components = key.split(separator: ".", omittingEmptySubsequences: false)
        return patterns.contains { pattern in
            let parts = pattern.split(separator: ".", omittingEmptySubsequences: false)
            return parts.count <= components.count
                && zip(parts, components).allSatisfy { $0 == "*" || $0 == $1 }
        }
    }
}

/// How a fresh parameter is filled when it is not loaded from a checkpoint.
public enum Initializer: Sendable {
    case zeros, ones
    case normal(std: Float)
    /// Normal truncated to [-2 std, 2 std] (timm's trunc_normal_ with a = -2 std, b = 2 std).
    case truncatedNormal(std: Float)
}

/// A problem with model parameters; the description is one line naming the tensor.
public struct ParameterError: ReportableError {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Where layers get their parameters: a checkpoint (strict) or fresh random values.
/// Layers ask by name and shape; the same construction code serves both.
public protocol ParameterSource: AnyObject {
    func tensor(_ name: String, shape: [Int], initializer: Initializer) throws -> Tensor
}

extension ParameterSource {
    /// A trainable parameter: the tensor named `name` as a Variable that requires gradients.
    public func parameter(_ name: String, shape: [Int], initializer: Initializer) throws -> Variable {
        Variable(try tensor(name, shape: shape, initializer: initializer), requiresGradient: true)
    }

    /// A view of this source with `prefix.` before every name.
    public func scoped(_ prefix: String) -> ScopedParameterSource {
        ScopedParameterSource(base: self, prefix: prefix)
    }
}

/// Names under a prefix of another source.
public final class ScopedParameterSource: ParameterSource {
    let base: ParameterSource
    let prefix: String

    init(base: ParameterSource, prefix: String) {
        self.base = base
        self.prefix = prefix
    }

    public func tensor(_ name: String, shape: [Int], initializer: Initializer) throws -> Tensor {
        try base.tensor("\(prefix).\(name)", shape: shape, initializer: initializer)
    }
}

/// Parameters from a checkpoint: every request must find a tensor of exactly that shape,
/// and `finish()` reports tensors that nothing asked for.
public final class WeightStore: ParameterSource {
    private var tensors: [String: Tensor]
    private var used: Set<String> = []
    /// Names the error messages use for the source (a file path).
    public let origin: String

    public init(_ tensors: [String: Tensor], origin: String) {
        self.tensors = tensors
        self.origin = origin
    }

    public func tensor(_ name: String, shape: [Int], initializer: Initializer) throws -> Tensor {
        guard let t = tensors[name] else {
            throw ParameterError("\(origin): missing tensor '\(name)' (expected shape \(shape))")
        }
        guard t.shape == shape else {
            throw ParameterError("\(origin): tensor '\(name)' has shape \(t.shape), expected \(shape)")
        }
        used.insert(name)
        return t
    }

    /// Throws when the checkpoint holds tensors the model did not use.
    public func finish() throws {
        let unused = tensors.keys.filter { !used.contains($0) }.sorted()
        if !unused.isEmpty {
            let shown = unused.prefix(5).map { "'\($0)' \(tensors[$0]!.shape)" }.joined(separator: ", ")
            throw ParameterError(
                "\(origin): \(unused.count) unexpected tensor\(unused.count == 1 ? "" : "s"): \(shown)\(unused.count > 5 ? ", ..." : "")"
            )
        }
    }
}

/// Parameters taken from given tensors where they are named (shapes must match), and
/// fresh random ones elsewhere: a model that starts partly from another's weights.
/// `finish()` reports given tensors that nothing asked for.
public final class StartingWeights: ParameterSource {
    private let given: WeightStore
    private let names: Set<String>
    private let random: RandomParameters

    public init(_ tensors: [String: Tensor], origin: String, seed: UInt64) {
        given = WeightStore(tensors, origin: origin)
        names = Set(tensors.keys)
        random = RandomParameters(seed: seed)
    }

    public func tensor(_ name: String, shape: [Int], initializer: Initializer) throws -> Tensor {
        names.contains(name)
            ? try given.tensor(name, shape: shape, initializer: initializer)
            : try random.tensor(name, shape: shape, initializer: initializer)
    }

    /// Throws when a given tensor was not used.
    public func finish() throws { try given.finish() }
}

/// Fresh parameters from a seeded generator, filled by each parameter's initializer.
public final class RandomParameters: ParameterSource {
    private var generator: SeededGenerator

    public init(seed: UInt64) { generator = SeededGenerator(seed: seed) }

    public func tensor(_ name: String, shape: [Int], initializer: Initializer) throws -> Tensor {
        switch initializer {
        case .zeros: return Tensor(shape: shape)
        case .ones: return Tensor(shape: shape, repeating: 1)
        case .normal(let std): return Tensor.normal(shape, std: std, using: &generator)
        case .truncatedNormal(let std):
            let out = Tensor(shape: shape)
            for i in 0..<out.count {
                var v = generator.nextNormal()
                while abs(v) > 2 { v = generator.nextNormal() }
                out.data[i] = v * std
            }
            return out
        }
    }
}
