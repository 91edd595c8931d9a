import Foundation
import Testing
import ViTTestSupport

@testable import ViTTensor

/// Checks the gradients of `f` at `inputs` by central differences of
/// L = sum(f(inputs) * dout) with a random upstream gradient dout, element by element.
/// Float32 evaluation with step h = 1e-2: truncation error about h^2 |f'''| and rounding
/// about 1e-7 |L| / h, both under 2e-3 for these sizes, hence atol 2e-3 and rtol 1e-2.
func checkGradients(
    _ name: String, _ inputs: [Tensor], seed: UInt64 = 7, sourceLocation: SourceLocation = #_sourceLocation,
    _ f: ([Variable]) -> Variable
) {
    let variables = inputs.map { Variable($0, requiresGradient: true) }
    let out = recordingGradients { f(variables) }
    var rng = SeededGenerator(seed: seed)
    let dout = Tensor.normal(out.shape, using: &rng)
    out.backward(seed: dout)
    func loss() -> Double {
        let y = f(inputs.map { Variable($0) }).value
        var total = 0.0
        for i in 0..<y.count { total += Double(y.data[i]) * Double(dout.data[i]) }
        return total
    }
    let h: Float = 1e-2
    for (index, input) in inputs.enumerated() {
        var numerical = [Float](repeating: 0, count: input.count)
        for i in 0..<input.count { numerical[i] = centralDifference(input, at: i, step: h, loss) }
        let analytic = variables[index].gradient?.scalars ?? [Float](repeating: 0, count: input.count)
        let result = compare(analytic, numerical, atol: 2e-3, rtol: 1e-2)
        #expect(result.passed, "\(name), input \(index): \(result)", sourceLocation: sourceLocation)
    }
}

@Suite struct GradientTests {
    var rng = SeededGenerator(seed: 42)

    mutating func normal(_ shape: [Int], std: Float = 1) -> Tensor { Tensor.normal(shape, std: std, using: &rng) }

    @Test mutating func elementwiseAndShapeOps() {
        let (a, b, row) = (normal([3, 4]), normal([3, 4]), normal([4]))
        checkGradients("add broadcast", [a, row]) { $0[0] + $0[1] }
        checkGradients("multiply", [a, b]) { $0[0] * $0[1] }
        checkGradients("multiply broadcast", [a, row]) { $0[0] * $0[1] }
        checkGradients("scale", [a]) { $0[0] * 2.5 }
        checkGradients("reshape", [a]) { $0[0].reshaped([2, 6]) }
        checkGradients("slice", [normal([2, 5, 3])]) { $0[0].sliced(axis: 1, 1..<4) }
        checkGradients("mean", [normal([2, 5, 3])]) { $0[0].mean(axis: 1) }
        checkGradients("sum", [a]) { $0[0].sum() }
    }

    /// The fused adaLN kernels (one pass each) against the separate operations, bit for
    /// bit, and their gradients by central differences; shapes they do not take fall back.
    @Test mutating func modulationAndGatedResidual() {
        let (x, y) = (normal([3, 5, 7]), normal([3, 5, 7]))
        let (shift, scale, gate) = (normal([3, 1, 7]), normal([3, 1, 7]), normal([3, 1, 7]))
        let modulated = modulate(Variable(x), shift: Variable(shift), scale: Variable(scale)).value
        #expect(modulated.scalars == (x + x * scale + shift).scalars)
        let gated = gatedSum(Variable(x), gate: Variable(gate), Variable(y)).value
        #expect(gated.scalars == (x + gate * y).scalars)
        checkGradients("modulate", [x, shift, scale]) { modulate($0[0], shift: $0[1], scale: $0[2]) }
        checkGradients("gated sum", [x, gate, y]) { gatedSum($0[0], gate: $0[1], $0[2]) }
        // One shift for every image: the separate operations, same values.
        let shared = normal([1, 1, 7])
        let broadcast = modulate(Variable(x), shift: Variable(shared), scale: Variable(scale)).value
        #expect(broadcast.scalars == (x + x * scale + shared).scalars)
        checkGradients("modulate, shared shift", [x, shared, scale]) { modulate($0[0], shift: $0[1], scale: $0[2]) }
    }

    @Test mutating func gelu() {
        let x = normal([40], std: 2)
        checkGradients("gelu erf", [x]) { $0[0].gelu() }
        checkGradients("gelu tanh", [x]) { $0[0].gelu(approximation: .tanh) }
    }

    @Test mutating func linearAndLayerNorm() {
        let (x, w, b) = (normal([2, 3, 5]), normal([4, 5], std: 0.5), normal([4]))
        checkGradients("linear", [x, w, b]) { linear($0[0], weight: $0[1], bias: $0[2]) }
        checkGradients("linear without bias", [x, w]) { linear($0[0], weight: $0[1], bias: nil) }
        // The residual is fused into the product while recording: its gradient is the output's.
        let r = normal([2, 3, 4])
        checkGradients("linear with residual", [x, w, b, r]) {
            linear($0[0], weight: $0[1], bias: $0[2], residual: $0[3])
        }
        checkGradients("linear with residual, without bias", [x, w, r]) {
            linear($0[0], weight: $0[1], bias: nil, residual: $0[2])
        }
        let (y, gamma, beta) = (normal([4, 6]), normal([6], std: 0.3) + 1, normal([6]))
        checkGradients("layerNorm", [y, gamma, beta]) { layerNorm($0[0], weight: $0[1], bias: $0[2], eps: 1e-5) }
        checkGradients("layerNorm without affine", [y]) { layerNorm($0[0], weight: nil, bias: nil, eps: 1e-5) }
        // Weight and bias gradients summed over several blocks of rows, the last one partial.
        let rows = 2 * layerNormRowsPerBlock + 22
        let (z, zGamma, zBeta) = (normal([rows, 6]), normal([6], std: 0.3) + 1, normal([6]))
        checkGradients("layerNorm over \(rows) rows", [z, zGamma, zBeta]) {
            layerNorm($0[0], weight: $0[1], bias: $0[2], eps: 1e-5)
        }
        // Rows of 19: the backward's row sums run two groups of eight lanes, then three
        // elements one by one.
        let (wide, wideGamma, wideBeta) = (normal([5, 19]), normal([19], std: 0.3) + 1, normal([19]))
        checkGradients("layerNorm over 19 columns", [wide, wideGamma, wideBeta]) {
            layerNorm($0[0], weight: $0[1], bias: $0[2], eps: 1e-5)
        }
    }

    @Test mutating func attention() {
        // B = 2, N = 5, C = 6 with 2 heads: qkv [2, 5, 18].
        let qkv = normal([2, 5, 18])
        checkGradients("self-attention", [qkv]) { multiHeadSelfAttention(qkv: $0[0], numHeads: 2) }
        // A padding mask [B, 1, N] hiding the last two tokens of the second item from every
        // query: their keys and values get no gradient.
        let mask = Tensor(shape: [2, 1, 5], values: [0, 0, 0, 0, 0, 0, 0, 0, -1e30, -1e30])
        checkGradients("masked self-attention", [qkv]) { multiHeadSelfAttention(qkv: $0[0], numHeads: 2, mask: mask) }
        let variable = Variable(qkv, requiresGradient: true)
        recordingGradients { multiHeadSelfAttention(qkv: variable, numHeads: 2, mask: mask).sum() }.backward()
        // Rows 3 and 4 of item 1: keys in columns 6..<12, values in 12..<18.
        let gradient = variable.gradient!.scalars
        var hiddenKeysAndValues: [Float] = []
        for row in 3..<5 {
            let start = (5 + row) * 18
            hiddenKeysAndValues += gradient[(start + 6)..<(start + 18)]
        }
        #expect(hiddenKeysAndValues.allSatisfy { $0 == 0 }, "\(hiddenKeysAndValues)")
        // 11 tokens: the backward's row dot products run a group of eight lanes, then three
        // elements one by one.
        checkGradients("self-attention over 11 tokens", [normal([2, 11, 18])]) {
            multiHeadSelfAttention(qkv: $0[0], numHeads: 2)
        }
        // The first two tokens' queries over all five tokens, unmasked and with a causal mask
        // [N, N] (rows 0 and 1 read): the other tokens' queries get no gradient.
        checkGradients("self-attention of the first 2 queries", [qkv]) {
            multiHeadSelfAttention(qkv: $0[0], numHeads: 2, queries: 2)
        }
        let causal = Tensor(shape: [5, 5], values: (0..<25).map { $0 % 5 > $0 / 5 ? -1e30 : 0 })
        checkGradients("causal self-attention of the first 2 queries", [qkv]) {
            multiHeadSelfAttention(qkv: $0[0], numHeads: 2, mask: causal, queries: 2)
        }
        let firstQueries = Variable(qkv, requiresGradient: true)
        recordingGradients { multiHeadSelfAttention(qkv: firstQueries, numHeads: 2, queries: 2).sum() }.backward()
        let queryGradient = firstQueries.gradient!.scalars
        var laterQueries: [Float] = []
        for item in 0..<2 {
            for row in 2..<5 {
                let start = (item * 5 + row) * 18
                laterQueries += queryGradient[start..<(start + 6)]
            }
        }
        #expect(laterQueries.allSatisfy { $0 == 0 }, "\(laterQueries)")
    }

    @Test mutating func silu() {
        // Hand values: silu(0) = 0, silu(1) = 1 / (1 + e^-1), silu(-2) = -2 / (1 + e^2).
        let values = Tensor(shape: [3], values: [0, 1, -2]).silu().scalars
        #expect(
            values[0] == 0 && Swift.abs(values[1] - 0.731_058_6) < 1e-6 && Swift.abs(values[2] + 0.238_405_84) < 1e-6)
        checkGradients("silu", [normal([3, 7], std: 2)]) { $0[0].silu() }
    }

    @Test mutating func permutation() {
        // Patchify-like: [2, 3, 4, 5] -> axes (0, 2, 3, 1), then a reshape.
        checkGradients("permute", [normal([2, 3, 4, 5])]) { $0[0].permuted([0, 2, 3, 1]).reshaped([2, 20, 3]) }
        let x = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        #expect(Variable(x).permuted([1, 0]).value.scalars == [1, 4, 2, 5, 3, 6])
    }

    @Test mutating func meanSquaredErrorLoss() {
        // Hand value: mean((1 - 0)^2, (-1 - 1)^2, (2 - 2)^2) = 5 / 3.
        let loss = meanSquaredError(
            Variable(Tensor(shape: [3], values: [1, -1, 2])), target: Tensor(shape: [3], values: [0, 1, 2]))
        #expect(Swift.abs(loss.value.item - 5.0 / 3) < 1e-6)
        let target = normal([2, 5])
        checkGradients("mse", [normal([2, 5])]) { meanSquaredError($0[0], target: target) }
    }

    @Test mutating func broadcastModulation() {
        // adaLN: x + x * scale + shift with scale and shift [B, 1, C] broadcast over N.
        checkGradients("modulation", [normal([2, 3, 4]), normal([2, 1, 4]), normal([2, 1, 4])]) {
            $0[0] + $0[0] * $0[2] + $0[1]
        }
    }

    @Test mutating func crossAttention() {
        // B = 2, N = 3 queries of C = 6 (2 heads) over M = 4 context rows: q [2, 3, 6],
        // kv [2, 4, 12]; the mask hides the last context row of the second item, so its
        // keys and values must get no gradient there.
        let (q, kv) = (normal([2, 3, 6]), normal([2, 4, 12]))
        let mask = Tensor(shape: [2, 1, 4], values: [0, 0, 0, 0, 0, 0, 0, -1e9])
        checkGradients("cross-attention", [q, kv]) { multiHeadCrossAttention(q: $0[0], kv: $0[1], numHeads: 2) }
        checkGradients("masked cross-attention", [q, kv]) {
            multiHeadCrossAttention(q: $0[0], kv: $0[1], numHeads: 2, mask: mask)
        }
        let (qv, kvv) = (Variable(q, requiresGradient: true), Variable(kv, requiresGradient: true))
        recordingGradients { multiHeadCrossAttention(q: qv, kv: kvv, numHeads: 2, mask: mask).sum() }.backward()
        let hidden = kvv.gradient!.scalars[(4 * 12 + 3 * 12)..<(4 * 12 + 4 * 12)]
        #expect(hidden.allSatisfy { $0 == 0 }, "\(Array(hidden))")
    }

    @Test mutating func crossEntropyWithSmoothing() {
        let logits = normal([4, 7], std: 2)
        for smoothing: Float in [0, 0.1] {
            checkGradients("cross-entropy \(smoothing)", [logits]) {
                crossEntropy($0[0], labels: [0, 6, 3, 3], labelSmoothing: smoothing)
            }
        }
        // The value by hand: one row, logits [0, ln 3] -> p = [1/4, 3/4]; label 1, no smoothing.
        let loss = crossEntropy(Variable(Tensor(shape: [1, 2], values: [0, Float(log(3.0))])), labels: [1])
        #expect(Swift.abs(loss.value.item - Float(-log(0.75))) < 1e-6)
    }
}

/// Optimizers, schedule and clipping against values worked by hand.
@Suite struct OptimizerTests {
    func parameterSet(_ values: [Float], gradient: [Float]) -> NamedParameters {
        let w = Variable(Tensor(shape: [values.count], values: values), requiresGradient: true)
        // L = sum(w * g) has gradient g.
        recordingGradients { (Variable(Tensor(shape: [gradient.count], values: gradient)) * w).sum() }.backward()
        return [("w", w)]
    }

    @Test func sgdWithMomentum() {
        // torch.optim.SGD(lr=0.1, momentum=0.9, weight_decay=0.01): step 1 b = g + wd w,
        // w -= lr b; step 2 b = 0.9 b + g + wd w.
        let set = parameterSet([1, -2], gradient: [0.5, 0.25])
        let sgd = SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.01)
        sgd.update(set)
        let w = set[0].variable.value
        #expect(Swift.abs(w[0] - (1 - 0.1 * 0.51)) < 1e-6 && Swift.abs(w[1] - (-2 - 0.1 * 0.23)) < 1e-6)
        sgd.update(set)  // same gradient
        let b0 = 0.9 * 0.51 + 0.5 + 0.01 * (1 - 0.051)
        #expect(Swift.abs(Double(w[0]) - (1 - 0.051 - 0.1 * b0)) < 1e-6)
    }

    @Test func adamWFirstStep() {
        // Step 1: m^ = g, v^ = g^2, so w -= lr (g / (|g| + eps)) after w *= 1 - lr wd.
        let set = parameterSet([1, -2], gradient: [0.5, -0.25])
        AdamW(learningRate: 0.1, weightDecay: 0.1).update(set)
        let w = set[0].variable.value
        #expect(Swift.abs(w[0] - (0.99 - 0.1)) < 1e-5 && Swift.abs(w[1] - (-1.98 + 0.1)) < 1e-5)
    }

    @Test func warmupCosineAndClipping() {
        // Warmup 0.1, 0.2, ..., 1.0 over 10 steps; then half-way through the cosine the
        // rate is (peak + minimum) / 2; at the end the minimum.
        #expect(Swift.abs(warmupCosineLearningRate(step: 0, totalSteps: 110, warmupSteps: 10, peak: 1) - 0.1) < 1e-6)
        #expect(Swift.abs(warmupCosineLearningRate(step: 9, totalSteps: 110, warmupSteps: 10, peak: 1) - 1) < 1e-6)
        #expect(
            Swift.abs(warmupCosineLearningRate(step: 60, totalSteps: 110, warmupSteps: 10, peak: 1, minimum: 0.2) - 0.6)
                < 1e-6)
        #expect(
            Swift.abs(
                warmupCosineLearningRate(step: 110, totalSteps: 110, warmupSteps: 10, peak: 1, minimum: 0.2) - 0.2)
                < 1e-6)
        // Gradient (3, 4) has norm 5; clipping to 1 scales it to (0.6, 0.8).
        let set = parameterSet([0, 0], gradient: [3, 4])
        #expect(Swift.abs(clipGradientNorm(set, maxNorm: 1) - 5) < 1e-6)
        let g = set[0].variable.gradient!
        #expect(Swift.abs(g[0] - 0.6) < 1e-5 && Swift.abs(g[1] - 0.8) < 1e-5)
        // Gradients 1...11 (two groups of four, then three) and 0.5 in a second parameter:
        // 506 + 0.25, norm sqrt(506.25) = 22.5, under the bound, so nothing is scaled.
        let eleven = Array(1...11).map(Float.init)
        let two =
            parameterSet(Array(repeating: 0, count: 11), gradient: eleven) + parameterSet([0], gradient: [0.5])
        #expect(clipGradientNorm(two, maxNorm: 100) == 22.5)
        #expect(two[0].variable.gradient!.scalars == eleven)
    }

    @Test func frozenParametersGetNoGradient() {
        let a = Variable(Tensor(shape: [2], values: [1, 2])), b = Variable(Tensor(shape: [2], values: [3, 4]))
        let set: NamedParameters = [("a", a), ("b", b)]
        b.requiresGradient = true
        recordingGradients { (a * b).sum() }.backward()
        #expect(a.gradient == nil && b.gradient!.scalars == [1, 2])
        #expect(set.trainable.map(\.name) == ["b"])
        // Accumulation over two passes, then zeroing.
        recordingGradients { (a * b).sum() }.backward()
        #expect(b.gradient!.scalars == [2, 4])
        set.zeroGradients()
        #expect(b.gradient == nil)
    }

    @Test func nothingIsRecordedOutsideTheMode() {
        // The same product outside `recordingGradients` keeps no inputs: it does not
        // require a gradient, so nothing could flow back from it.
        let w = Variable(Tensor(shape: [2], values: [1, 2]), requiresGradient: true)
        let outside = (w * w).sum()
        let inside = recordingGradients { (w * w).sum() }
        #expect(!outside.requiresGradient && inside.requiresGradient)
        #expect(outside.value.item == 5 && inside.value.item == 5)
        inside.backward()
        #expect(w.gradient!.scalars == [2, 4])
    }
}
