import Foundation
import ViTTensor

// Flow matching with straight paths (rectified flow: Liu, Gong and Liu 2022, "Flow Straight
// and Fast"; Lipman et al. 2022, "Flow Matching for Generative Modeling"), in the
// convention of Stable Diffusion 3 (Esser et al. 2024): x_t = (1 - t) x_0 + t noise, so
// t = 0 is data and t = 1 is noise, and a model learns the velocity dx_t/dt = noise - x_0.
// Sampling integrates that velocity from t = 1 down to t = 0.

/// The training side of flow matching: points on the straight paths, their velocities, and
/// the times to draw.
public enum FlowMatching {
    /// x_t = (1 - t) data + t noise for each sample: data and noise [B, ...], times B values.
    public static func interpolate(data: Tensor, noise: Tensor, times: [Float]) -> Tensor {
        precondition(data.shape == noise.shape && data.shape.first == times.count, "flow: shapes")
        let out = Tensor(shape: data.shape)
        let perSample = data.count / max(times.count, 1)
        for (b, t) in times.enumerated() {
            for i in (b * perSample)..<((b + 1) * perSample) {
                out.data[i] = (1 - t) * data.data[i] + t * noise.data[i]
            }
        }
        return out
    }

    /// The velocity of every path, noise - data: the regression target.
    public static func velocity(data: Tensor, noise: Tensor) -> Tensor { noise - data }

    /// How training times are drawn.
    public enum TimeDistribution: Sendable {
        /// Uniform on (0, 1).
        case uniform
        /// sigmoid of a normal (mean, std): SD3's logit-normal, weighting middle times.
        case logitNormal(mean: Float, std: Float)
    }

    /// `count` times in (0, 1) from `distribution`, the same for the same generator state.
    public static func sampleTimes(
        _ count: Int, distribution: TimeDistribution = .uniform, using generator: inout SeededGenerator
    ) -> [Float] {
        (0..<count).map { _ in
            switch distribution {
            case .uniform:
                // (0, 1): never exactly 0, where a path has no noise left to remove.
                return (Float(generator.next() >> 40) + 0.5) * 0x1p-24
            case .logitNormal(let mean, let std):
                return 1 / (1 + Foundation.exp(-(mean + std * generator.nextNormal())))
            }
        }
    }
}

/// How sampling steps along the learned velocity.
public enum FlowSolver: String, Sendable, CaseIterable {
    /// One velocity per step (first order; exact on straight paths).
    case euler
    /// Euler's prediction corrected by the velocity at its end (second order), except on
    /// the last step, which ends at t = 0 and uses Euler's (two velocities per step).
    case heun
}

/// Integrates dx/dt = velocity(x, t) from x at t = 1 to t = 0 over `steps` equal steps:
/// noise [B, ...] -> samples [B, ...]. `velocity` receives the batch and the time.
public func sampleFlow(
    from noise: Tensor, steps: Int, solver: FlowSolver = .euler, velocity: (Tensor, Float) -> Tensor
) -> Tensor {
    precondition(steps > 0, "sampleFlow needs at least one step")
    var x = noise
    for step in 0..<steps {
        let t = 1 - Float(step) / Float(steps), next = 1 - Float(step + 1) / Float(steps)
        let h = next - t  // negative: time runs down
        let v = velocity(x, t)
        let predicted = x + v * h
        if solver == .heun && step + 1 < steps {
            let corrected = velocity(predicted, next)
            x = x + (v + corrected) * (h / 2)
        } else {
            x = predicted
        }
    }
    return x
}

/// Classifier-free guidance (Ho and Salimans 2022): unconditional + scale (conditional -
/// unconditional); scale 1 is the conditional velocity itself.
public func guidedVelocity(conditional: Tensor, unconditional: Tensor, scale: Float) -> Tensor {
    unconditional + (conditional - unconditional) * scale
}

/// Sinusoidal embeddings of (diffusion or flow) times, as DiT and GLIDE compute them:
/// for i < dim / 2, frequency f_i = maxPeriod^(-i / (dim / 2)); the row for t is
/// [cos(t f_0), ..., cos(t f_{h-1}), sin(t f_0), ..., sin(t f_{h-1})], with a zero last
/// column when dim is odd. times: B values -> [B, dim].
public func timestepEmbedding(_ times: [Float], dim: Int, maxPeriod: Float = 10_000) -> Tensor {
    let half = dim / 2
    let frequencies = (0..<half).map { Foundation.exp(-Foundation.log(maxPeriod) * Float($0) / Float(half)) }
    let out = Tensor(shape: [times.count, dim])
    for (b, t) in times.enumerated() {
        for (i, frequency) in frequencies.enumerated() {
            out.data[b * dim + i] = Foundation.cos(t * frequency)
            out.data[b * dim + half + i] = Foundation.sin(t * frequency)
        }
    }
    return out
}
