import Foundation

// Elementwise arithmetic with NumPy broadcasting: shapes align at the trailing axis, and a
// dimension of 1 (or a missing one) stretches to match the other operand.

/// The shape two operands broadcast to.
public func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
    let rank = max(a.count, b.count)
    var out = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        precondition(da == db || da == 1 || db == 1, "shapes \(a) and \(b) do not broadcast")
        out[i] = max(da, db)
    }
    return out
}

/// Strides that read `shape` as if it had `target` shape: 0 along broadcast axes.
func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
    let own = Tensor.strides(for: shape)
    let pad = target.count - shape.count
    return (0..<target.count).map { i in
        i < pad || shape[i - pad] == 1 ? 0 : own[i - pad]
    }
}

/// An elementwise operation of two values; kernels are generic over it so that each is
/// specialized with the operation inlined, also inside the closures that threads run.
protocol BinaryOperation {
    static func apply(_ x: Float, _ y: Float) -> Float
}

enum Addition: BinaryOperation {
    @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x + y }
}

enum Subtraction: BinaryOperation {
    @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x - y }
}

enum Multiplication: BinaryOperation {
    @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x * y }
}

enum Division: BinaryOperation {
    @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x / y }
}

/// a op b with broadcasting; same shapes run in parallel chunks.
func binaryKernel<Operation: BinaryOperation>(_ a: Tensor, _ b: Tensor, _: Operation.Type) -> Tensor {
    if a.shape == b.shape {
        let out = Tensor(uninitializedShape: a.shape)
        let x = a.data, y = b.data, z = out.data
        parallelChunks(a.count, minimumPerChunk: elementsPerChunk) { range in
            for i in range { z[i] = Operation.apply(x[i], y[i]) }
        }
        return out
    }
    let shape = broadcastShape(a.shape, b.shape)
    let out = Tensor(uninitializedShape: shape)
    if out.count == 0 { return out }
    let sa = broadcastStrides(a.shape, to: shape), sb = broadcastStrides(b.shape, to: shape)
    let rank = shape.count
    let inner = shape[rank - 1], ia = sa[rank - 1], ib = sb[rank - 1]
    let rows = out.count / inner
    var index = [Int](repeating: 0, count: rank)
    var oa = 0, ob = 0
    let x = a.data, y = b.data, z = out.data
    for row in 0..<rows {
        let dst = z + row * inner
        if ia == 1 && ib == 1 {
            for i in 0..<inner { dst[i] = Operation.apply(x[oa + i], y[ob + i]) }
        } else if ia == 1 && ib == 0 {
            let v = y[ob]
            for i in 0..<inner { dst[i] = Operation.apply(x[oa + i], v) }
        } else if ia == 0 && ib == 1 {
            let u = x[oa]
            for i in 0..<inner { dst[i] = Operation.apply(u, y[ob + i]) }
        } else {
            for i in 0..<inner { dst[i] = Operation.apply(x[oa + i * ia], y[ob + i * ib]) }
        }
        var axis = rank - 2
        while axis >= 0 {
            index[axis] += 1
            oa += sa[axis]
            ob += sb[axis]
            if index[axis] < shape[axis] { break }
            oa -= sa[axis] * shape[axis]
            ob -= sb[axis] * shape[axis]
            index[axis] = 0
            axis -= 1
        }
    }
    return out
}

@inline(__always)
func unaryKernel(_ a: Tensor, _ op: (Float) -> Float) -> Tensor {
    let out = Tensor(uninitializedShape: a.shape)
    let x = a.data, z = out.data
    for i in 0..<a.count { z[i] = op(x[i]) }
    return out
}

extension Tensor {
    public static func + (a: Tensor, b: Tensor) -> Tensor { binaryKernel(a, b, Addition.self) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { binaryKernel(a, b, Subtraction.self) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { binaryKernel(a, b, Multiplication.self) }
    public static func / (a: Tensor, b: Tensor) -> Tensor { binaryKernel(a, b, Division.self) }

    public static func + (a: Tensor, s: Float) -> Tensor { unaryKernel(a) { $0 + s } }
    public static func - (a: Tensor, s: Float) -> Tensor { unaryKernel(a) { $0 - s } }
    public static func * (a: Tensor, s: Float) -> Tensor { unaryKernel(a) { $0 * s } }
    public static func / (a: Tensor, s: Float) -> Tensor { unaryKernel(a) { $0 / s } }
    public static func + (s: Float, a: Tensor) -> Tensor { unaryKernel(a) { s + $0 } }
    public static func - (s: Float, a: Tensor) -> Tensor { unaryKernel(a) { s - $0 } }
    public static func * (s: Float, a: Tensor) -> Tensor { unaryKernel(a) { s * $0 } }
    public static func / (s: Float, a: Tensor) -> Tensor { unaryKernel(a) { s / $0 } }
    public static prefix func - (a: Tensor) -> Tensor { unaryKernel(a) { -$0 } }

    /// Applies `transform` to every element.
    public func map(_ transform: (Float) -> Float) -> Tensor { unaryKernel(self, transform) }
}
