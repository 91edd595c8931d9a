// Reverse-mode automatic differentiation. A Variable holds a tensor, the Variables it was
// computed from and a pullback: given the gradient of the loss with respect to this value,
// the gradients with respect to each input (the vector-Jacobian product). `backward`
// visits the graph in reverse topological order.
//
// Recording is a mode (docs/ARCHITECTURE.md, "One forward"): layers have one forward on
// Variables, and an operation keeps its inputs and pullback only inside
// `recordingGradients` and only when an input requires a gradient. Outside it (inference)
// the same forward builds no graph, retains nothing and may fuse what training keeps apart.

/// Whether operations on this thread record pullbacks; see `recordingGradients`.
public var isRecordingGradients: Bool { GradientRecording.isOn }

private enum GradientRecording {
    @TaskLocal static var isOn = false
}

/// Runs `body` with gradient recording on: operations whose inputs require gradients keep
/// what their pullbacks need, so that `backward` can follow them.
public func recordingGradients<Result>(_ body: () throws -> Result) rethrows -> Result {
    try GradientRecording.$isOn.withValue(true, operation: body)
}

/// A tensor in a differentiable computation. [any shape]
public final class Variable: @unchecked Sendable {
    /// The value.
    public let value: Tensor
    /// The gradient of the last `backward` (accumulated over calls until `zeroGradient`).
    public private(set) var gradient: Tensor?
    /// Whether gradients flow to this variable (false freezes a parameter).
    public var requiresGradient: Bool
    let inputs: [Variable]
    let pullback: ((Tensor) -> [Tensor?])?

    /// A leaf: an input or a parameter.
    public init(_ value: Tensor, requiresGradient: Bool = false) {
        self.value = value
        self.requiresGradient = requiresGradient
        inputs = []
        pullback = nil
    }

    /// The result of an operation: `pullback(gradient of value)` returns one gradient per
    /// input, shaped like it (or nil where none flows). When nothing is recorded (see
    /// `records`) the pullback is dropped and nothing is retained.
    public init(value: Tensor, inputs: [Variable], pullback: @escaping (Tensor) -> [Tensor?]) {
        self.value = value
        let needed = Variable.records(inputs)
        requiresGradient = needed
        self.inputs = needed ? inputs : []
        self.pullback = needed ? pullback : nil
    }

    public var shape: [Int] { value.shape }

    /// Whether an operation on `inputs` records its pullback: recording is on and some
    /// input requires a gradient. Operations ask before choosing a fused inference path.
    public static func records(_ inputs: [Variable?]) -> Bool {
        isRecordingGradients && inputs.contains { $0?.requiresGradient ?? false }
    }

    /// Forgets the accumulated gradient.
    public func zeroGradient() { gradient = nil }

    /// Adds `g` to the gradient. Tensors handed between nodes are never written in place
    /// (one may be the gradient of several inputs): a leaf keeps its own copy, which
    /// optimizers and clipping may scale; a later arrival makes a new sum.
    func accumulate(_ g: Tensor) {
        precondition(g.shape == value.shape, "gradient \(g.shape) for a value of shape \(value.shape)")
        if let gradient {
            self.gradient = gradient + g
        } else {
            gradient = inputs.isEmpty ? g.copy() : g
        }
    }

    /// Back-propagates from this value: `seed` is its gradient (1 for a scalar loss when
    /// nil). Leaves that require gradients accumulate them; intermediate results get theirs
    /// for this pass only.
    public func backward(seed: Tensor? = nil) {
        precondition(seed != nil || value.count == 1, "backward from a non-scalar needs a seed gradient")
        precondition(
            requiresGradient,
            "backward from a value that recorded nothing: compute it inside recordingGradients from parameters that require gradients"
        )
        // Reverse topological order by depth-first search.
        var order: [Variable] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Variable, Bool)] = [(self, false)]
        while let (node, expanded) = stack.popLast() {
            if expanded {
                order.append(node)
                continue
            }
            if !node.requiresGradient || visited.contains(ObjectIdentifier(node)) { continue }
            visited.insert(ObjectIdentifier(node))
            stack.append((node, true))
            for input in node.inputs where input.requiresGradient { stack.append((input, false)) }
        }
        accumulate(seed ?? Tensor(shape: value.shape, repeating: 1))
        for node in order.reversed() {
            guard let pullback = node.pullback, let g = node.gradient else { continue }
            for (input, inputGradient) in zip(node.inputs, pullback(g)) where input.requiresGradient {
                if let inputGradient { input.accumulate(inputGradient) }
            }
            if !node.inputs.isEmpty { node.gradient = nil }  // intermediate: free it
        }
    }
}

/// A model's parameters under their checkpoint keys ("blocks.0.attn.qkv.weight"), in the
/// model's order: what layers list and optimizers update.
public typealias NamedParameters = [(name: String, variable: Variable)]

extension Array where Element == (name: String, variable: Variable) {
    /// The parameters that train (require gradients).
    public var trainable: NamedParameters { filter { $0.variable.requiresGradient } }

    /// Forgets all accumulated gradients.
    public func zeroGradients() {
        for (_, variable) in self { variable.zeroGradient() }
    }
}
