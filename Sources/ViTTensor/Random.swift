import Foundation

/// A seeded pseudo-random generator (SplitMix64, Steele et al. 2014): the same seed gives
/// the same sequence on every machine.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform Float in [0, 1) with 24 random bits.
    public mutating func nextUniform() -> Float {
        Float(next() >> 40) * 0x1p-24
    }

    /// A standard normal Float (Box-Muller in Double).
    public mutating func nextNormal() -> Float {
        let u1 = Double(next() >> 11) * 0x1p-53 + 0x1p-54  // (0, 1): log stays finite
        let u2 = Double(next() >> 11) * 0x1p-53
        return Float((-2 * Foundation.log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}

extension Tensor {
    /// Uniform values in [low, high).
    public static func uniform(
        _ shape: [Int], low: Float = 0, high: Float = 1,
        using generator: inout SeededGenerator
    ) -> Tensor {
        let out = Tensor(shape: shape)
        for i in 0..<out.count { out.data[i] = low + (high - low) * generator.nextUniform() }
        return out
    }

    /// Normal values with the given mean and standard deviation.
    public static func normal(
        _ shape: [Int], mean: Float = 0, std: Float = 1,
        using generator: inout SeededGenerator
    ) -> Tensor {
        let out = Tensor(shape: shape)
        for i in 0..<out.count { out.data[i] = mean + std * generator.nextNormal() }
        return out
    }
}
