// Reductions along one axis. The tensor is viewed as [outer, n, inner] around that axis.

extension Tensor {
    /// (outer, n, inner) around `axis`.
    func splitAround(_ axis: Int) -> (outer: Int, n: Int, inner: Int) {
        (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }

    private func reduce(
        axis: Int, keepingDimension: Bool, initial: Float,
        _ combine: (Float, Float) -> Float
    ) -> Tensor {
        let axis = normalizedAxis(axis)
        let (outer, n, inner) = splitAround(axis)
        var outShape = shape
        if keepingDimension { outShape[axis] = 1 } else { outShape.remove(at: axis) }
        let out = Tensor(shape: outShape, repeating: initial)
        let x = data, z = out.data
        for o in 0..<outer {
            let dst = z + o * inner
            for j in 0..<n {
                let src = x + (o * n + j) * inner
                for i in 0..<inner { dst[i] = combine(dst[i], src[i]) }
            }
        }
        return out
    }

    /// Sum along `axis` (torch.sum(dim=axis, keepdim=keepingDimension)).
    public func sum(axis: Int, keepingDimension: Bool = false) -> Tensor {
        reduce(axis: axis, keepingDimension: keepingDimension, initial: 0, +)
    }

    /// Mean along `axis`.
    public func mean(axis: Int, keepingDimension: Bool = false) -> Tensor {
        let n = Float(shape[normalizedAxis(axis)])
        return sum(axis: axis, keepingDimension: keepingDimension) / n
    }

    /// Index of the maximum along the last axis, one per row (ties take the first).
    public func argmaxLastAxis() -> [Int] {
        let n = shape.last ?? 1
        return (0..<(count / Swift.max(n, 1))).map { row in
            let p = data + row * n
            var best = 0
            for i in 1..<n where p[i] > p[best] { best = i }
            return best
        }
    }

    /// Sum of all elements, accumulated in Double.
    public func sum() -> Float {
        var s = 0.0
        for i in 0..<count { s += Double(data[i]) }
        return Float(s)
    }

    /// Mean of all elements.
    public func mean() -> Float { sum() / Float(count) }
}
