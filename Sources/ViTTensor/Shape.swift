// Reshape, permute, slice and concatenate. Only `reshaped` shares storage; the others copy
// into a new contiguous tensor.

extension Tensor {
    /// The same elements under a new shape (one dimension may be -1); shares storage.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var shape = newShape
        if let unknown = shape.firstIndex(of: -1) {
            let known = shape.enumerated().filter { $0.offset != unknown }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && count % known == 0, "cannot reshape \(self.shape) to \(newShape)")
            shape[unknown] = count / known
        }
        precondition(Tensor.elementCount(shape) == count, "cannot reshape \(self.shape) to \(newShape)")
        return Tensor(shape: shape, storage: storage)
    }

    /// Axes reordered: the result's axis i is this tensor's axis `order[i]` (torch.permute).
    public func permuted(_ order: [Int]) -> Tensor {
        let order = order.map { normalizedAxis($0) }
        precondition(order.count == rank && Set(order).count == rank, "bad permutation \(order) for \(shape)")
        let outShape = order.map { shape[$0] }
        let out = Tensor(shape: outShape)
        if count == 0 { return out }
        let inStrides = strides
        let sourceStrides = order.map { inStrides[$0] }  // in-strides, in output axis order
        copyStrided(from: data, strides: sourceStrides, shape: outShape, to: out.data)
        return out
    }

    /// Two axes swapped (torch.transpose).
    public func transposed(_ axis0: Int = -2, _ axis1: Int = -1) -> Tensor {
        var order = Array(0..<rank)
        order.swapAt(normalizedAxis(axis0), normalizedAxis(axis1))
        return permuted(order)
    }

    /// The elements at `range` along `axis` (torch.narrow).
    public func sliced(axis: Int, _ range: Range<Int>) -> Tensor {
        let axis = normalizedAxis(axis)
        precondition(
            range.lowerBound >= 0 && range.upperBound <= shape[axis],
            "slice \(range) out of bounds for axis \(axis) of \(shape)")
        var outShape = shape
        outShape[axis] = range.count
        let out = Tensor(shape: outShape)
        let outer = shape[..<axis].reduce(1, *)
        let inner = shape[(axis + 1)...].reduce(1, *)
        let block = range.count * inner
        for o in 0..<outer {
            (out.data + o * block).update(
                from: data + (o * shape[axis] + range.lowerBound) * inner, count: block)
        }
        return out
    }

    /// Tensors joined along `axis`; all other dimensions must agree (torch.cat).
    public static func concatenate(_ tensors: [Tensor], axis: Int) -> Tensor {
        precondition(!tensors.isEmpty, "concatenate needs at least one tensor")
        let first = tensors[0]
        let axis = first.normalizedAxis(axis)
        var outShape = first.shape
        outShape[axis] = 0
        for t in tensors {
            var expected = first.shape
            expected[axis] = t.shape[axis]
            precondition(
                t.shape == expected, "concatenate: shape \(t.shape) does not match \(first.shape) off axis \(axis)")
            outShape[axis] += t.shape[axis]
        }
        let out = Tensor(shape: outShape)
        let outer = first.shape[..<axis].reduce(1, *)
        let inner = first.shape[(axis + 1)...].reduce(1, *)
        let outBlock = outShape[axis] * inner
        var offset = 0
        for t in tensors {
            let block = t.shape[axis] * inner
            for o in 0..<outer {
                (out.data + o * outBlock + offset).update(from: t.data + o * block, count: block)
            }
            offset += block
        }
        return out
    }

    /// Tensors of one shape stacked along a new leading axis.
    public static func stack(_ tensors: [Tensor]) -> Tensor {
        precondition(!tensors.isEmpty, "stack needs at least one tensor")
        let expanded = tensors.map { $0.reshaped([1] + $0.shape) }
        return concatenate(expanded, axis: 0)
    }
}

/// Copies a strided source of `shape` into contiguous `out`, innermost axis fastest.
func copyStrided(
    from source: UnsafePointer<Float>, strides: [Int], shape: [Int],
    to out: UnsafeMutablePointer<Float>
) {
    let rank = shape.count
    if rank == 0 {
        out[0] = source[0]
        return
    }
    let inner = shape[rank - 1], innerStride = strides[rank - 1]
    let rows = shape.dropLast().reduce(1, *)
    var index = [Int](repeating: 0, count: rank)
    var offset = 0
    for row in 0..<rows {
        let dst = out + row * inner
        if innerStride == 1 {
            dst.update(from: source + offset, count: inner)
        } else {
            for i in 0..<inner { dst[i] = source[offset + i * innerStride] }
        }
        var axis = rank - 2
        while axis >= 0 {
            index[axis] += 1
            offset += strides[axis]
            if index[axis] < shape[axis] { break }
            offset -= strides[axis] * shape[axis]
            index[axis] = 0
            axis -= 1
        }
    }
}
