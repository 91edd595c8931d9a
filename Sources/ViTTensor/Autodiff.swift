// Reverse-mode automatic differentiation. A Variable holds a tensor, the Variables it was
// computed from and a pullback: given the gradient of the loss with respect to this value,
// the gradients with respect to each input (the vector-Jacobian product). `backward`
// visits the graph in reverse topological order. Inference never builds one: the layers'
// Tensor methods run without Variables.

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
    /// input, shaped like it (or nil where none flows). When no input needs a gradient the
    /// pullback is dropped and nothing is retained.
    public init(value: Tensor, inputs: [Variable], pullback: @escaping (Tensor) -> [Tensor?]) {
        self.value = value
        let needed = inputs.contains { $0.requiresGradient }
        requiresGradient = needed
        self.inputs = needed ? inputs : []
        self.pullback = needed ? pullback : nil
    }

    public var shape: [Int] { value.shape }

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

/// The trainable variables of a model, one per parameter tensor, found by identity: layers
/// keep their Tensors, and a training forward pass looks up the Variable that wraps each.
/// Optimizers update the tensors in place, so the layers see the new values.
public final class ParameterSet: @unchecked Sendable {
    /// Names and variables, in the model's parameter order.
    public let named: [(name: String, variable: Variable)]
    private let byTensor: [ObjectIdentifier: Variable]

    /// Every parameter trainable; freeze with `freeze(where:)`.
    public init(_ parameters: [(String, Tensor)]) {
        named = parameters.map { ($0.0, Variable($0.1, requiresGradient: true)) }
        byTensor = Dictionary(named.map { (ObjectIdentifier($0.variable.value.storage), $0.variable) }) { a, _ in a }
    }

    /// The variable for a parameter tensor of the model, found by its storage, in the
    /// tensor's own shape (a layer may hold a reshaped view, as the patch embedding does).
    public subscript(_ tensor: Tensor) -> Variable {
        guard let variable = byTensor[ObjectIdentifier(tensor.storage)] else {
            preconditionFailure("tensor of shape \(tensor.shape) is not a parameter of this set")
        }
        return variable.shape == tensor.shape ? variable : variable.reshaped(tensor.shape)
    }

    /// Stops gradients to the parameters whose names satisfy `predicate`.
    public func freeze(where predicate: (String) -> Bool) {
        for (name, variable) in named where predicate(name) { variable.requiresGradient = false }
    }

    /// The parameters that train.
    public var trainable: [(name: String, variable: Variable)] { named.filter { $0.variable.requiresGradient } }

    /// Forgets all accumulated gradients.
    public func zeroGradients() {
        for (_, variable) in named { variable.zeroGradient() }
    }
}
