// Reductions along one axis. The tensor is viewed as [outer, n, inner] around that axis.

extension Tensor {
    /// (outer, n, inner) around `axis`.
    func splitAround(_ axis: Int) -> (outer: Int, n: Int, inner: Int) {
        (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }

    /// Sum along `axis` (torch.sum(dim=axis, keepdim=keepingDimension)).
    public func sum(axis: Int, keepingDimension: Bool = false) -> Tensor {
        let axis = normalizedAxis(axis)
        let (outer, n, inner) = splitAround(axis)
        var outShape = shape
        if keepingDimension { outShape[axis] = 1 } else { outShape.remove(at: axis) }
        let out = Tensor(uninitializedShape: outShape)
        let x = data, z = out.data
        // Threads take blocks of 16 columns (one vector register); each column is summed in
        // order along the axis, so the result does not depend on the thread count.
        let lanes = SIMD16<Float>.scalarCount
        let blocks = (inner + lanes - 1) / lanes
        parallelChunks(blocks, minimumPerChunk: itemsPerChunk(width: lanes * outer * n)) { range in
            for o in 0..<outer {
                for block in range {
                    let first = block * lanes, width = Swift.min(lanes, inner - first)
                    let src = x + o * n * inner + first
                    if width == lanes {
                        var total = SIMD16<Float>()
                        for j in 0..<n {
                            total += UnsafeRawPointer(src + j * inner).loadUnaligned(as: SIMD16<Float>.self)
                        }
                        UnsafeMutableRawPointer(z + o * inner + first).storeBytes(of: total, as: SIMD16<Float>.self)
                    } else {
                        for i in 0..<width {
                            var total: Float = 0
                            for j in 0..<n { total += src[j * inner + i] }
                            z[o * inner + first + i] = total
                        }
                    }
                }
            }
        }
        return out
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
