import Foundation

// The operations of a transformer on Variables, each with its pullback. Where a fused
// kernel pair exists (LayerNorm, GELU, attention, softmax + cross-entropy) the pullback
// calls its backward half.

/// Sums `gradient` over the axes along which `shape` was broadcast, giving it that shape.
func reduced(_ gradient: Tensor, to shape: [Int]) -> Tensor {
    if gradient.shape == shape { return gradient }
    var g = gradient
    while g.rank > shape.count { g = g.sum(axis: 0) }
    for axis in 0..<shape.count where shape[axis] == 1 && g.shape[axis] != 1 {
        g = g.sum(axis: axis, keepingDimension: true)
    }
    return g
}

extension Variable {
    /// Elementwise sum with broadcasting.
    public static func + (a: Variable, b: Variable) -> Variable {
        Variable(value: a.value + b.value, inputs: [a, b]) { g in
            [reduced(g, to: a.shape), reduced(g, to: b.shape)]
        }
    }

    /// Elementwise product with broadcasting.
    public static func * (a: Variable, b: Variable) -> Variable {
        Variable(value: a.value * b.value, inputs: [a, b]) { g in
            [reduced(g * b.value, to: a.shape), reduced(g * a.value, to: b.shape)]
        }
    }

    /// Multiplies by a constant.
    public static func * (a: Variable, s: Float) -> Variable {
        Variable(value: a.value * s, inputs: [a]) { g in [g * s] }
    }

    /// The same values in another shape.
    public func reshaped(_ newShape: [Int]) -> Variable {
        let old = shape
        return Variable(value: value.reshaped(newShape), inputs: [self]) { g in [g.reshaped(old)] }
    }

    /// The axes in another order (out axis i is input axis order[i]); the pullback applies
    /// the inverse order.
    public func permuted(_ order: [Int]) -> Variable {
        let order = order.map { value.normalizedAxis($0) }
        var inverse = [Int](repeating: 0, count: order.count)
        for (i, axis) in order.enumerated() { inverse[axis] = i }
        return Variable(value: value.permuted(order), inputs: [self]) { g in [g.permuted(inverse)] }
    }

    /// A range along one axis; the gradient is zero elsewhere.
    public func sliced(axis: Int, _ range: Range<Int>) -> Variable {
        let axis = value.normalizedAxis(axis), old = shape
        return Variable(value: value.sliced(axis: axis, range), inputs: [self]) { g in
            let outer = old[..<axis].reduce(1, *), inner = old[(axis + 1)...].reduce(1, *)
            let full = Tensor(shape: old)
            for o in 0..<outer {
                (full.data + (o * old[axis] + range.lowerBound) * inner)
                    .update(from: g.data + o * range.count * inner, count: range.count * inner)
            }
            return [full]
        }
    }

    /// The mean along one axis, which is removed.
    public func mean(axis: Int) -> Variable {
        let axis = value.normalizedAxis(axis), old = shape
        return Variable(value: value.mean(axis: axis), inputs: [self]) { g in
            var kept = old
            kept[axis] = 1
            return [g.reshaped(kept) * Tensor(shape: old, repeating: 1 / Float(old[axis]))]
        }
    }

    /// Sum of all elements, a scalar [].
    public func sum() -> Variable {
        let old = shape
        return Variable(value: Tensor(scalar: value.sum()), inputs: [self]) { g in
            [Tensor(shape: old, repeating: g.item)]
        }
    }

    /// SiLU, x sigmoid(x); its derivative is s + x s (1 - s) with s = sigmoid(x).
    public func silu() -> Variable {
        Variable(value: value.silu(), inputs: [self]) { g in
            let dx = Tensor(uninitializedShape: g.shape)
            for i in 0..<g.count {
                let x = self.value.data[i], s = sigmoid(x)
                dx.data[i] = g.data[i] * (s + x * s * (1 - s))
            }
            return [dx]
        }
    }

    /// GELU; the pullback is `geluBackward`.
    public func gelu(approximation: GELUApproximation = .none) -> Variable {
        Variable(value: value.gelu(approximation: approximation), inputs: [self]) { g in
            let dx = Tensor(uninitializedShape: g.shape)
            geluBackward(dx.data, self.value.data, g.data, n: g.count, approximation: approximation)
            return [dx]
        }
    }
}

/// A fully connected layer: x [..., in], weight [out, in], bias [out] ->
/// residual + activation(x weight^T + bias), [..., out]. Without recording, bias,
/// activation and residual are fused into the product's tiles; with recording a residual
/// of the output's shape still is (its gradient is the output's), and the activation is a
/// separate operation with its own pullback.
public func linear(
    _ x: Variable, weight: Variable, bias: Variable?, activation: GELUApproximation? = nil, residual: Variable? = nil
) -> Variable {
    guard Variable.records([x, weight, bias, residual]) else {
        return Variable(
            linear(x.value, weight: weight.value, bias: bias?.value, activation: activation, residual: residual?.value))
    }
    let outputShape = Array(x.shape.dropLast()) + [weight.shape[0]]
    if activation == nil, let residual, residual.shape == outputShape {
        return affine(x, weight: weight, bias: bias, residual: residual)
    }
    var y = affine(x, weight: weight, bias: bias)
    if let activation { y = y.gelu(approximation: activation) }
    if let residual { y = residual + y }
    return y
}

/// residual + x weight^T + bias with its pullback: dx = g W, dW = g^T x, db = column sums
/// of g, dresidual = g. residual: nil, or of the output's shape.
private func affine(_ x: Variable, weight: Variable, bias: Variable?, residual: Variable? = nil) -> Variable {
    let y = linear(x.value, weight: weight.value, bias: bias?.value, residual: residual?.value)
    let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
    let rows = x.value.count / max(inFeatures, 1)
    let inputs = [x, weight] + (bias.map { [$0] } ?? []) + (residual.map { [$0] } ?? [])
    return Variable(value: y, inputs: inputs) { g in
        var grads: [Tensor?] = []
        // dx = g W: [rows, out] x [out, in]
        if x.requiresGradient {
            let dx = Tensor(uninitializedShape: x.shape)
            gemm(
                transposeA: false, transposeB: false, m: rows, n: inFeatures, k: outFeatures,
                g.data, lda: outFeatures, weight.value.data, ldb: inFeatures, dx.data, ldc: inFeatures)
            grads.append(dx)
        } else {
            grads.append(nil)
        }
        // dW = g^T x: [out, rows] x [rows, in], and db = column sums of g along with it.
        var db: Tensor?
        if weight.requiresGradient {
            let dw = Tensor(uninitializedShape: weight.shape)
            db = bias?.requiresGradient == true ? Tensor(uninitializedShape: [outFeatures]) : nil
            gemm(
                transposeA: true, transposeB: false, m: outFeatures, n: inFeatures, k: rows,
                g.data, lda: outFeatures, x.value.data, ldb: inFeatures, dw.data, ldc: inFeatures,
                rowSumsOfA: db?.data)
            grads.append(dw)
        } else {
            grads.append(nil)
        }
        if let bias {
            grads.append(bias.requiresGradient ? db ?? g.reshaped([rows, outFeatures]).sum(axis: 0) : nil)
        }
        if let residual { grads.append(residual.requiresGradient ? g : nil) }
        return grads
    }
}

/// Layer normalization over the last axis: x [..., C], weight and bias [C] (or both nil:
/// no affine part, as torch's elementwise_affine=False).
public func layerNorm(_ x: Variable, weight: Variable?, bias: Variable?, eps: Float) -> Variable {
    precondition((weight == nil) == (bias == nil), "layerNorm needs both weight and bias, or neither")
    let c = x.shape.last ?? 1, rows = x.value.count / max(c, 1)
    let out = Tensor(uninitializedShape: x.shape), mean = Tensor(uninitializedShape: [rows])
    let rstd = Tensor(uninitializedShape: [rows])
    layerNormForward(
        out.data, mean.data, rstd.data, x.value.data, weight?.value.data, bias?.value.data, rows: rows, c: c, eps: eps)
    let affine = weight.map { [$0, bias!] } ?? []
    return Variable(value: out, inputs: [x] + affine) { g in
        // Without an affine part the backward runs with a weight of ones; dw and db are dropped.
        let scale = weight?.value ?? Tensor(shape: [c], repeating: 1)
        let dx = Tensor(uninitializedShape: x.shape)
        let dw = Tensor(uninitializedShape: [c]), db = Tensor(uninitializedShape: [c])
        layerNormBackward(
            dx.data, dw.data, db.data, g.data, x.value.data, scale.data, mean.data, rstd.data, rows: rows, c: c)
        return affine.isEmpty ? [dx] : [dx, dw, db]
    }
}

/// Whether x [B, N, C] and per-image rows [B, 1, C] have the shapes the fused
/// modulation kernels take.
private func takesRowsPerImage(_ x: Variable, _ rows: Variable...) -> Bool {
    x.shape.count == 3 && rows.allSatisfy { $0.shape == [x.shape[0], 1, x.shape[2]] }
}

/// The adaLN modulation x (1 + scale) + shift, computed as x + x * scale + shift: x [B, N,
/// C], shift and scale [B, 1, C] (other broadcastable shapes take the separate operations).
public func modulate(_ x: Variable, shift: Variable, scale: Variable) -> Variable {
    guard takesRowsPerImage(x, shift, scale) else { return x + x * scale + shift }
    let (b, n, c) = (x.shape[0], x.shape[1], x.shape[2])
    let out = Tensor(uninitializedShape: x.shape)
    modulateForward(out.data, x.value.data, shift: shift.value.data, scale: scale.value.data, batch: b, n: n, c: c)
    return Variable(value: out, inputs: [x, shift, scale]) { g in
        [g + g * scale.value, reduced(g, to: shift.shape), reduced(g * x.value, to: scale.shape)]
    }
}

/// adaLN-Zero's gated residual x + gate * y: x and y [B, N, C], gate [B, 1, C] (other
/// broadcastable shapes take the separate operations).
public func gatedSum(_ x: Variable, gate: Variable, _ y: Variable) -> Variable {
    guard takesRowsPerImage(x, gate), y.shape == x.shape else { return x + gate * y }
    let (b, n, c) = (x.shape[0], x.shape[1], x.shape[2])
    let out = Tensor(uninitializedShape: x.shape)
    gatedSumForward(out.data, x.value.data, gate: gate.value.data, y.value.data, batch: b, n: n, c: c)
    return Variable(value: out, inputs: [x, gate, y]) { g in
        [g, reduced(g * y.value, to: gate.shape), g * gate.value]
    }
}

/// Multi-head self-attention from fused projections: qkv [B, N, 3C] -> [B, Q, C], the
/// outputs of the first Q = `queries` tokens (all N when nil). mask: additive,
/// broadcastable to [B, N, N] (no gradient). `weights`, when given, receives the
/// probabilities [B, H, Q, N]; when recording they are kept for the pullback,
/// `attentionBackward` (a mask is already in them). The queries of tokens past Q get a
/// zero gradient.
public func multiHeadSelfAttention(
    qkv: Variable, numHeads: Int, mask: Tensor? = nil, weights: Tensor? = nil, queries: Int? = nil
) -> Variable {
    let (b, n, c) = (qkv.shape[0], qkv.shape[1], qkv.shape[2] / 3)
    guard Variable.records([qkv]) else {
        return Variable(
            multiHeadSelfAttention(qkv: qkv.value, numHeads: numHeads, mask: mask, weights: weights, queries: queries))
    }
    let rows = queries ?? n
    let probabilities = weights ?? Tensor(uninitializedShape: [b, numHeads, rows, n])
    let out = multiHeadSelfAttention(
        qkv: qkv.value, numHeads: numHeads, mask: mask, weights: probabilities, queries: queries)
    return Variable(value: out, inputs: [qkv]) { g in
        let dqkv = Tensor(uninitializedShape: qkv.shape)
        attentionBackward(
            dout: g.data, doutRowStride: c, q: AttentionOperand(qkv.value, column: 0),
            k: AttentionOperand(qkv.value, column: c), v: AttentionOperand(qkv.value, column: 2 * c),
            dq: AttentionGradient(dqkv, column: 0), dk: AttentionGradient(dqkv, column: c),
            dv: AttentionGradient(dqkv, column: 2 * c), probabilities: probabilities.data, batch: b, heads: numHeads,
            n: rows, m: n, headDim: c / numHeads)
        for bi in 0..<b {
            for row in rows..<n { (dqkv.data + (bi * n + row) * 3 * c).update(repeating: 0, count: c) }
        }
        return [dqkv]
    }
}

/// Multi-head cross-attention: queries q [B, N, C], keys and values fused in kv [B, M, 2C]
/// (keys first) -> [B, N, C]; mask additive, broadcastable to [B, N, M] (no gradient);
/// `weights` as for self-attention, [B, H, N, M].
public func multiHeadCrossAttention(
    q: Variable, kv: Variable, numHeads: Int, mask: Tensor? = nil, weights: Tensor? = nil
) -> Variable {
    let (b, n, c, m) = (q.shape[0], q.shape[1], q.shape[2], kv.shape[1])
    guard Variable.records([q, kv]) else {
        return Variable(
            multiHeadCrossAttention(q: q.value, kv: kv.value, numHeads: numHeads, mask: mask, weights: weights))
    }
    let probabilities = weights ?? Tensor(uninitializedShape: [b, numHeads, n, m])
    let out = multiHeadCrossAttention(q: q.value, kv: kv.value, numHeads: numHeads, mask: mask, weights: probabilities)
    return Variable(value: out, inputs: [q, kv]) { g in
        let dq = Tensor(uninitializedShape: q.shape), dkv = Tensor(uninitializedShape: kv.shape)
        attentionBackward(
            dout: g.data, doutRowStride: c, q: AttentionOperand(q.value, column: 0),
            k: AttentionOperand(kv.value, column: 0), v: AttentionOperand(kv.value, column: c),
            dq: AttentionGradient(dq, column: 0), dk: AttentionGradient(dkv, column: 0),
            dv: AttentionGradient(dkv, column: c), probabilities: probabilities.data, batch: b, heads: numHeads, n: n,
            m: m, headDim: c / numHeads)
        return [dq, dkv]
    }
}

/// Rows of an embedding table (torch.nn.functional.embedding): table [V, C], ids K values
/// in 0..<V -> [K, C]; the pullback adds each row's gradient into its id's row.
public func embeddingRows(_ table: Variable, ids: [Int]) -> Variable {
    let (v, c) = (table.shape[0], table.shape[1])
    let out = Tensor(shape: [ids.count, c])
    for (row, id) in ids.enumerated() {
        precondition(id >= 0 && id < v, "id \(id) outside a table of \(v) rows")
        (out.data + row * c).update(from: table.value.data + id * c, count: c)
    }
    return Variable(value: out, inputs: [table]) { g in
        let dtable = Tensor(shape: [v, c])
        for (row, id) in ids.enumerated() {
            let (dst, src) = (dtable.data + id * c, g.data + row * c)
            for j in 0..<c { dst[j] += src[j] }
        }
        return [dtable]
    }
}

/// Mean squared error between a prediction and a target of the same shape (the
/// flow-matching and regression loss, torch.nn.functional.mse_loss): a scalar.
public func meanSquaredError(_ prediction: Variable, target: Tensor) -> Variable {
    precondition(prediction.shape == target.shape, "mse: prediction \(prediction.shape), target \(target.shape)")
    let n = prediction.value.count
    let difference = Tensor(shape: target.shape)
    var total = 0.0
    for i in 0..<n {
        difference.data[i] = prediction.value.data[i] - target.data[i]
        total += Double(difference.data[i]) * Double(difference.data[i])
    }
    return Variable(value: Tensor(scalar: Float(total / Double(max(n, 1)))), inputs: [prediction]) { g in
        [difference * (2 * g.item / Float(max(n, 1)))]
    }
}

/// Mean cross-entropy of logits [B, K] against class indices, with label smoothing ε as
/// torch.nn.functional.cross_entropy: the target is (1 - ε) one-hot + ε / K. A scalar.
public func crossEntropy(_ logits: Variable, labels: [Int], labelSmoothing: Float = 0) -> Variable {
    let (b, k) = (logits.shape[0], logits.shape[1])
    precondition(labels.count == b, "\(labels.count) labels for a batch of \(b)")
    let probabilities = Tensor(shape: [b, k])
    let loss = softmaxCrossEntropyForward(
        probabilities.data, logits.value.data, labels, rows: b, classes: k, smoothing: labelSmoothing)
    return Variable(value: Tensor(scalar: loss), inputs: [logits]) { g in
        let dlogits = Tensor(shape: [b, k])
        softmaxCrossEntropyBackward(
            dlogits.data, probabilities.data, labels, rows: b, classes: k, smoothing: labelSmoothing, scale: g.item)
        return [dlogits]
    }
}
