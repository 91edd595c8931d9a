import Foundation

// Optimizers update parameter tensors in place from their variables' gradients.

/// AdamW (Loshchilov and Hutter 2019) exactly as torch.optim.AdamW: decoupled weight decay
/// p -= lr wd p, then p -= lr m^ / (sqrt(v^) + eps) with bias-corrected moments.
public final class AdamW {
    public var learningRate: Float
    public let beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    /// Steps taken so far.
    public private(set) var step = 0
    /// First and second moments, by parameter name.
    public private(set) var moments: [String: (m: Tensor, v: Tensor)] = [:]

    public init(
        learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0.01
    ) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
    }

    /// One step over the parameters that have gradients; `decays(name)` says which decay.
    public func update(_ parameters: NamedParameters, decays: (String) -> Bool = { _ in true }) {
        step += 1
        let correction1 = 1 - Foundation.pow(Double(beta1), Double(step))
        let correction2 = 1 - Foundation.pow(Double(beta2), Double(step))
        let stepSize = Float(Double(learningRate) / correction1)
        let rootCorrection2 = Float(correction2.squareRoot())
        for (name, variable) in parameters.trainable {
            guard let g = variable.gradient else { continue }
            let p = variable.value
            let state = moments[name] ?? (Tensor(shape: p.shape), Tensor(shape: p.shape))
            moments[name] = state
            let decay = decays(name) ? 1 - learningRate * weightDecay : 1
            let (pd, gd, md, vd) = (p.data, g.data, state.m.data, state.v.data)
            let (b1, b2, eps) = (beta1, beta2, eps)
            parallelChunks(p.count, minimumPerChunk: 16_384) { range in
                for i in range {
                    pd[i] *= decay
                    md[i] = b1 * md[i] + (1 - b1) * gd[i]
                    vd[i] = b2 * vd[i] + (1 - b2) * gd[i] * gd[i]
                    pd[i] -= stepSize * md[i] / (vd[i].squareRoot() / rootCorrection2 + eps)
                }
            }
        }
    }

    /// Restores the state written by `state` (for --resume).
    public func restore(step: Int, moments: [String: (m: Tensor, v: Tensor)]) {
        self.step = step
        self.moments = moments
    }
}

/// SGD with momentum as torch.optim.SGD: b = mu b + g (g + wd p when decaying), p -= lr b.
public final class SGD {
    public var learningRate: Float
    public let momentum: Float, weightDecay: Float
    public private(set) var buffers: [String: Tensor] = [:]

    public init(learningRate: Float, momentum: Float = 0.9, weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
    }

    public func update(_ parameters: NamedParameters, decays: (String) -> Bool = { _ in true }) {
        for (name, variable) in parameters.trainable {
            guard let g = variable.gradient else { continue }
            let p = variable.value
            let wd = decays(name) ? weightDecay : 0
            let first = buffers[name] == nil
            let buffer = buffers[name] ?? Tensor(shape: p.shape)
            buffers[name] = buffer
            for i in 0..<p.count {
                let d = g.data[i] + wd * p.data[i]
                buffer.data[i] = first ? d : momentum * buffer.data[i] + d
                p.data[i] -= learningRate * (momentum == 0 ? d : buffer.data[i])
            }
        }
    }
}

/// Linear warmup from 0 to `peak` over `warmupSteps`, then cosine decay to `minimum` at
/// `totalSteps` (timm's CosineLRScheduler without restarts). step counts from 0.
public func warmupCosineLearningRate(
    step: Int, totalSteps: Int, warmupSteps: Int, peak: Float, minimum: Float = 0
) -> Float {
    if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
    let progress = Double(step - warmupSteps) / Double(max(1, totalSteps - warmupSteps))
    return minimum + (peak - minimum) * Float(0.5 * (1 + Foundation.cos(Double.pi * min(progress, 1))))
}

/// Scales all gradients so that their global L2 norm is at most `maxNorm`
/// (torch.nn.utils.clip_grad_norm_); returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ parameters: NamedParameters, maxNorm: Float) -> Float {
    var total = 0.0
    for (_, variable) in parameters.trainable {
        guard let g = variable.gradient else { continue }
        total += sumOfSquaresInDouble(g.data, n: g.count)
    }
    let norm = Float(total.squareRoot())
    let factor = maxNorm / (norm + 1e-6)
    if factor < 1 {
        for (_, variable) in parameters.trainable {
            guard let g = variable.gradient else { continue }
            for i in 0..<g.count { g.data[i] *= factor }
        }
    }
    return norm
}

/// average = decay * average + (1 - decay) * value, element by element, in place.
public func movingAverageStep(_ average: Tensor, toward value: Tensor, decay: Float) {
    precondition(average.shape == value.shape, "moving average: \(average.shape) against \(value.shape)")
    let (a, v) = (average.data, value.data)
    for i in 0..<average.count { a[i] = decay * a[i] + (1 - decay) * v[i] }
}
