import Foundation
import Testing
import ViTGenerator
import ViTTensor
import ViTTestSupport

/// Flow matching and the samplers against values computed by hand.
@Suite struct FlowMatchingTests {
    @Test func timestepEmbeddingByHand() {
        // dim 5: half 2, frequencies 1 and 10000^(-1/2) = 0.01, a zero last column.
        let e = timestepEmbedding([0, 3], dim: 5)
        #expect(e.shape == [2, 5])
        #expect(e.scalars[0..<5] == [1, 1, 0, 0, 0])
        let expected: [Float] = [Foundation.cos(3), Foundation.cos(0.03), Foundation.sin(3), Foundation.sin(0.03), 0]
        let result = compare(Array(e.scalars[5..<10]), expected, atol: 1e-6)
        #expect(result.passed, "\(result)")
    }

    @Test func pathsAndVelocities() {
        let data = Tensor(shape: [2, 2], values: [1, 2, 3, 4]), noise = Tensor(shape: [2, 2], values: [0, -2, 1, 8])
        // Sample 0 at t = 0.25: 0.75 [1, 2] + 0.25 [0, -2] = [0.75, 1]; sample 1 at t = 1: noise.
        #expect(FlowMatching.interpolate(data: data, noise: noise, times: [0.25, 1]).scalars == [0.75, 1, 1, 8])
        #expect(FlowMatching.velocity(data: data, noise: noise).scalars == [-1, -4, -2, 4])
    }

    /// On the straight path of one data point the exact velocity is (x - x_0) / t, and
    /// Euler steps along a straight line land on x_0 exactly, whatever the step count.
    @Test func eulerFollowsStraightPathsExactly() {
        let target = Tensor(shape: [1, 3], values: [0.5, -1, 2]), noise = Tensor(shape: [1, 3], values: [1, 1, -1])
        for steps in [1, 3, 10] {
            let sample = sampleFlow(from: noise, steps: steps) { x, t in (x - target) * (1 / t) }
            let result = compare(sample.scalars, target.scalars, atol: 1e-5)
            #expect(result.passed, "\(steps) steps: \(result)")
        }
    }

    /// dx/dt = x from t = 1 to 0, so x(0) = x(1) / e. With h = 1/N, an Euler step multiplies
    /// by 1 - h, a Heun step by 1 - h + h^2 / 2 (its last step is Euler's).
    @Test func stepFactorsByHand() {
        let start = Tensor(shape: [1, 1], values: [2])
        for steps in [1, 4, 16] {
            let h = 1 / Double(steps)
            let euler = sampleFlow(from: start, steps: steps, solver: .euler) { x, _ in x }.item
            let heun = sampleFlow(from: start, steps: steps, solver: .heun) { x, _ in x }.item
            let eulerExpected = 2 * Foundation.pow(1 - h, Double(steps))
            let heunExpected = 2 * Foundation.pow(1 - h + h * h / 2, Double(steps - 1)) * (1 - h)
            #expect(Swift.abs(Double(euler) - eulerExpected) < 1e-5, "euler \(steps): \(euler) vs \(eulerExpected)")
            #expect(Swift.abs(Double(heun) - heunExpected) < 1e-5, "heun \(steps): \(heun) vs \(heunExpected)")
        }
        // Heun's error at 16 steps is far below Euler's.
        let exact = 2 / M_E
        let euler = Double(sampleFlow(from: start, steps: 16, solver: .euler) { x, _ in x }.item)
        let heun = Double(sampleFlow(from: start, steps: 16, solver: .heun) { x, _ in x }.item)
        #expect(Swift.abs(heun - exact) < Swift.abs(euler - exact) / 2)
    }

    @Test func guidance() {
        let c = Tensor(shape: [2], values: [1, 3]), u = Tensor(shape: [2], values: [0, 1])
        #expect(guidedVelocity(conditional: c, unconditional: u, scale: 1).scalars == [1, 3])
        #expect(guidedVelocity(conditional: c, unconditional: u, scale: 4).scalars == [4, 9])
    }

    @Test func timesAreSeededAndInRange() {
        var a = SeededGenerator(seed: 3), b = SeededGenerator(seed: 3)
        let uniform = FlowMatching.sampleTimes(10_000, using: &a)
        #expect(uniform == FlowMatching.sampleTimes(10_000, using: &b))
        #expect(uniform.allSatisfy { $0 > 0 && $0 < 1 })
        let mean = uniform.reduce(0, +) / Float(uniform.count)
        #expect(Swift.abs(mean - 0.5) < 0.015)  // 5 standard errors of 0.29 / 100
        let logit = FlowMatching.sampleTimes(10_000, distribution: .logitNormal(mean: 0, std: 1), using: &a)
        #expect(logit.allSatisfy { $0 > 0 && $0 < 1 })
        // sigmoid(N(0, 1)): symmetric about 1/2, and P(t < sigmoid(-1)) = P(z < -1) = 0.1587.
        let below = Float(logit.filter { $0 < 1 / (1 + Float(M_E)) }.count) / Float(logit.count)
        #expect(Swift.abs(below - 0.1587) < 0.02, "\(below)")
    }
}
