import Foundation

/// Contiguous Float32 memory shared by tensors that view it whole (a reshape shares it).
///
/// It either owns its allocation or borrows memory kept alive by `owner`, for instance a
/// memory-mapped checkpoint, so that weights are used in place without a copy.
public final class TensorStorage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    private let owner: AnyObject?

    /// Allocates `count` zero-filled values.
    public init(count: Int) {
        precondition(count >= 0, "negative element count \(count)")
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
        self.count = count
        owner = nil
    }

    /// Allocates `count` values without filling them: for outputs whose every element is
    /// written before it is read.
    init(uninitializedCount count: Int) {
        precondition(count >= 0, "negative element count \(count)")
        pointer = .allocate(capacity: max(count, 1))
        self.count = count
        owner = nil
    }

    /// Borrows `count` values at `pointer`; `owner` is retained as long as this storage.
    public init(borrowing pointer: UnsafeMutablePointer<Float>, count: Int, owner: AnyObject) {
        self.pointer = pointer
        self.count = count
        self.owner = owner
    }

    deinit {
        if owner == nil { pointer.deallocate() }
    }

    private let derivedLock = NSLock()
    private var isConstant = false
    private var derived: AnyObject?

    /// Promises that the values will not change again (weights loaded for inference), so
    /// that products may keep a form derived from them (a packed copy) for later calls.
    /// Writing the values afterwards is a programming error: derived forms would be stale.
    public func markConstant() {
        derivedLock.withLock { isConstant = true }
    }

    /// The form derived from constant values by `make`, made on first use and kept; nil
    /// for storage not marked constant, or when the form kept is not one `matches` accepts
    /// (the same storage read under another shape). `make` runs under a lock, once.
    func derivedForm<Form: AnyObject>(matching matches: (Form) -> Bool, _ make: () -> Form) -> Form? {
        derivedLock.withLock {
            guard isConstant else { return nil }
            if let kept = derived {
                guard let form = kept as? Form, matches(form) else { return nil }
                return form
            }
            let form = make()
            derived = form
            return form
        }
    }
}

/// A row-major Float32 tensor: a shape and contiguous storage.
///
/// Operations return new tensors; `reshaped` shares storage. Writing through `data` is
/// allowed for tensors that the caller created and has not shared.
public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let storage: TensorStorage
    /// Number of elements, the product of `shape`.
    public let count: Int

    /// Wraps `storage`, whose element count must equal the product of `shape`.
    public init(shape: [Int], storage: TensorStorage) {
        let count = Tensor.elementCount(shape)
        precondition(
            storage.count == count,
            "shape \(shape) needs \(count) elements, storage has \(storage.count)")
        self.shape = shape
        self.storage = storage
        self.count = count
    }

    /// A tensor filled with `value`.
    public convenience init(shape: [Int], repeating value: Float = 0) {
        let storage = TensorStorage(count: Tensor.elementCount(shape))
        if value != 0 { storage.pointer.update(repeating: value, count: storage.count) }
        self.init(shape: shape, storage: storage)
    }

    /// A tensor whose values are not set: for outputs whose every element is written
    /// before it is read.
    convenience init(uninitializedShape shape: [Int]) {
        self.init(shape: shape, storage: TensorStorage(uninitializedCount: Tensor.elementCount(shape)))
    }

    /// A tensor holding `values` in row-major order.
    public convenience init(shape: [Int], values: [Float]) {
        let count = Tensor.elementCount(shape)
        precondition(values.count == count, "shape \(shape) needs \(count) values, got \(values.count)")
        let storage = TensorStorage(count: count)
        values.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: count) }
        self.init(shape: shape, storage: storage)
    }

    /// A rank-0 tensor.
    public convenience init(scalar: Float) {
        self.init(shape: [], values: [scalar])
    }

    /// The n x n identity matrix, [n, n].
    public static func eye(_ n: Int) -> Tensor {
        let out = Tensor(shape: [n, n])
        for i in 0..<n { out.data[i * n + i] = 1 }
        return out
    }

    /// The first element's address; `count` elements follow.
    public var data: UnsafeMutablePointer<Float> { storage.pointer }
    public var rank: Int { shape.count }
    /// The elements in row-major order, copied out.
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }
    /// The only element of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item needs exactly one element, shape is \(shape)")
        return data[0]
    }

    /// Row-major strides, in elements.
    public var strides: [Int] { Tensor.strides(for: shape) }

    /// Reads the element at a multi-dimensional index.
    public subscript(_ index: Int...) -> Float {
        get { data[flatIndex(index)] }
        set { data[flatIndex(index)] = newValue }
    }

    private func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == rank, "index \(index) has the wrong rank for shape \(shape)")
        var flat = 0
        for (axis, i) in index.enumerated() {
            precondition(i >= 0 && i < shape[axis], "index \(index) out of range for shape \(shape)")
            flat = flat * shape[axis] + i
        }
        return flat
    }

    /// A copy with its own storage.
    public func copy() -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        out.data.update(from: data, count: count)
        return out
    }

    /// An axis counted from the end when negative (-1 is the last).
    public func normalizedAxis(_ axis: Int) -> Int {
        let a = axis < 0 ? axis + rank : axis
        precondition(a >= 0 && a < rank, "axis \(axis) out of range for rank \(rank)")
        return a
    }

    static func elementCount(_ shape: [Int]) -> Int {
        var n = 1
        for d in shape {
            precondition(d >= 0, "negative dimension in shape \(shape)")
            n *= d
        }
        return n
    }

    static func strides(for shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var s = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[axis] = s
            s *= shape[axis]
        }
        return strides
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = scalars.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(count > 8 ? ", ..." : "")])"
    }
}
