import Foundation
import Testing
import ViTTensor
import ViTTestSupport

/// Checks the gradients of `f` at `inputs` by central differences of
/// L = sum(f(inputs) * dout) with a random upstream gradient dout, element by element.
/// Float32 evaluation with step h = 1e-2: truncation error about h^2 |f'''| and rounding
/// about 1e-7 |L| / h, both under 2e-3 for these sizes, hence atol 2e-3 and rtol 1e-2.
func checkGradients(
    _ name: String, _ inputs: [Tensor], seed: UInt64 = 7, sourceLocation: SourceLocation = #_sourceLocation,
    _ f: ([Variable]) -> Variable
) {
    let variables = inputs.map { Variable($0, requiresGradient: true) }
    let out = f(variables)
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
        for i in 0..<input.count {
            let saved = input.data[i]
            input.data[i] = saved + h
            let plus = loss()
            input.data[i] = saved - h
            let minus = loss()
            input.data[i] = saved
            numerical[i] = Float((plus - minus) / Double(2 * h))
        }
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

    @Test mutating func gelu() {
        let x = normal([40], std: 2)
        checkGradients("gelu erf", [x]) { $0[0].gelu() }
        checkGradients("gelu tanh", [x]) { $0[0].gelu(approximation: .tanh) }
    }

    @Test mutating func linearAndLayerNorm() {
        let (x, w, b) = (normal([2, 3, 5]), normal([4, 5], std: 0.5), normal([4]))
        checkGradients("linear", [x, w, b]) { linear($0[0], weight: $0[1], bias: $0[2]) }
        checkGradients("linear without bias", [x, w]) { linear($0[0], weight: $0[1], bias: nil) }
        let (y, gamma, beta) = (normal([4, 6]), normal([6], std: 0.3) + 1, normal([6]))
        checkGradients("layerNorm", [y, gamma, beta]) { layerNorm($0[0], weight: $0[1], bias: $0[2], eps: 1e-5) }
    }

    @Test mutating func attention() {
        // B = 2, N = 5, C = 6 with 2 heads: qkv [2, 5, 18].
        checkGradients("self-attention", [normal([2, 5, 18])]) { multiHeadSelfAttention(qkv: $0[0], numHeads: 2) }
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
