import CKernels

// exp, erf and tanh as explicit eight-lane vector code, so that softmax and GELU run on
// vector registers (a libm call per element, or scalar code the compiler does not
// vectorize, took most of their time). Each is within a few units in the last place of
// float, far inside the tolerances against PyTorch. These are the forms for CPUs with
// neither AVX-512F nor AVX2 and FMA; the others run CKernels' vector_math.h, which does the
// same operations in the same order (`fused` where it fuses), so every path gives the same
// bits. The scalar forms are lane 0 of the vector forms.

/// Eight floats: the width of the vector forms below.
typealias Lanes = SIMD8<Float>

@inline(__always)
private func bits(_ x: Lanes) -> SIMD8<UInt32> { unsafeBitCast(x, to: SIMD8<UInt32>.self) }

@inline(__always)
private func lanes(_ bits: SIMD8<UInt32>) -> Lanes { unsafeBitCast(bits, to: Lanes.self) }

/// |x| with the sign bit of `sign`.
@inline(__always)
private func withSign(_ x: Lanes, of sign: Lanes) -> Lanes {
    lanes((bits(x) & 0x7FFF_FFFF) | (bits(sign) & 0x8000_0000))
}

/// a * b + c rounded once (a fused multiply-add), as CKernels' `vm_fma`.
@inline(__always)
private func fused(_ a: Lanes, _ b: Lanes, _ c: Lanes) -> Lanes { c.addingProduct(a, b) }

/// e^x. Cody-Waite range reduction x = n ln2 + r with |r| <= ln2 / 2, then the
/// polynomial of Cephes' expf (Moshier, Cephes Math Library, expf.c), then the exponent n
/// put in place with integer arithmetic. Inputs below -87.34 give 0; inputs above 88.37
/// give e^88.37 (about 2.5e38).
@inline(__always)
func fastExp(_ x: Lanes) -> Lanes {
    let low = Lanes(repeating: -87.336_544), high = Lanes(repeating: 88.37)  // n stays within -126...127
    let xc = x.replacing(with: low, where: x .< low).replacing(with: high, where: x .> high)
    // Round x log2(e) to the nearest integer with the 1.5 * 2^23 trick.
    let shifter = Lanes(repeating: 12_582_912)
    let shifted = fused(xc, Lanes(repeating: 1.442_695_04), shifter)
    let n = shifted - shifter
    // ln 2 = 0.693359375 - 2.12194440e-4, split for exactness
    var r = fused(n, Lanes(repeating: -0.693_359_375), xc)
    r = fused(n, Lanes(repeating: 2.121_944_4e-4), r)
    var p = Lanes(repeating: 1.987_569_15e-4)
    p = fused(p, r, Lanes(repeating: 1.398_199_95e-3))
    p = fused(p, r, Lanes(repeating: 8.333_451_9e-3))
    p = fused(p, r, Lanes(repeating: 4.166_579_59e-2))
    p = fused(p, r, Lanes(repeating: 1.666_666_55e-1))
    p = fused(p, r, Lanes(repeating: 5.000_000_12e-1))
    p = fused(p * r, r, r) + 1
    // 2^n from the low bits of `shifted`, which hold n + 2^22 + 2^23.
    let exponent = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000 &+ 127
    let scale = unsafeBitCast(exponent &<< 23, to: Lanes.self)
    return (p * scale).replacing(with: 0, where: x .< low)
}

/// e^x for one value.
@inline(__always)
func fastExp(_ x: Float) -> Float { fastExp(Lanes(repeating: x))[0] }

/// e^(-ax^2), erf's Gaussian factor.
@inline(__always)
private func gaussianFactor(_ ax: Lanes) -> Lanes { fastExp((0 - ax) * ax) }

/// erf(x) given |x| and exp(-x^2), which GELU' shares with the normal density:
/// Abramowitz and Stegun 7.1.26, erf(x) = 1 - t(a1 + t(a2 + ...)) e^(-x^2) with
/// t = 1 / (1 + p|x|), absolute error at most 1.5e-7, odd in x.
@inline(__always)
func fastErf(_ x: Lanes, magnitude ax: Lanes, gaussian: Lanes) -> Lanes {
    let t = 1 / fused(Lanes(repeating: 0.327_591_1), ax, Lanes(repeating: 1))
    var poly = Lanes(repeating: 1.061_405_429)
    poly = fused(poly, t, Lanes(repeating: -1.453_152_027))
    poly = fused(poly, t, Lanes(repeating: 1.421_413_741))
    poly = fused(poly, t, Lanes(repeating: -0.284_496_736))
    poly = fused(poly, t, Lanes(repeating: 0.254_829_592))
    let y = fused(0 - poly * t, gaussian, Lanes(repeating: 1))
    return withSign(y, of: x)
}

/// erf(x) on eight lanes.
@inline(__always)
func fastErf(_ x: Lanes) -> Lanes {
    let ax = lanes(bits(x) & 0x7FFF_FFFF)
    return fastErf(x, magnitude: ax, gaussian: gaussianFactor(ax))
}

/// erf(x) for one value.
@inline(__always)
func fastErf(_ x: Float) -> Float { fastErf(Lanes(repeating: x))[0] }

/// GELU(x) = x/2 (1 + erf(x / sqrt 2)).
@inline(__always)
func fastGELU(_ x: Lanes) -> Lanes {
    let v = x * 0.707_106_781_186_547_52, ax = lanes(bits(v) & 0x7FFF_FFFF)
    let half = 0.5 * x
    return fused(half, fastErf(v, magnitude: ax, gaussian: gaussianFactor(ax)), half)
}

/// GELU for one value.
@inline(__always)
func fastGELU(_ x: Float) -> Float { fastGELU(Lanes(repeating: x))[0] }

/// GELU'(x) = Phi(x) + x phi(x) for the exact form; erf's Gaussian factor
/// exp(-(x / sqrt 2)^2) serves as phi's exp(-x^2 / 2), one exponential instead of two.
@inline(__always)
func geluDerivative(_ x: Lanes) -> Lanes {
    let invSqrt2: Float = 0.707_106_781_186_547_52, invSqrt2Pi: Float = 0.398_942_280_401_432_7
    let v = x * invSqrt2, ax = lanes(bits(v) & 0x7FFF_FFFF)
    let gaussian = gaussianFactor(ax)
    let density: Lanes = x * invSqrt2Pi * gaussian
    return fused(Lanes(repeating: 0.5), 1 + fastErf(v, magnitude: ax, gaussian: gaussian), density)
}

/// tanh(x), odd in x: for |x| < 0.625 the polynomial x + x^3 P(x^2) of Cephes' tanhf
/// (Moshier, Cephes Math Library, tanhf.c), else 1 - 2 / (e^(2|x|) + 1); both are
/// computed and one selected per lane.
@inline(__always)
func fastTanh(_ x: Lanes) -> Lanes {
    let ax = lanes(bits(x) & 0x7FFF_FFFF)
    let z = x * x
    var p = Lanes(repeating: -5.704_988_727_45e-3)
    p = fused(p, z, Lanes(repeating: 2.063_908_879_54e-2))
    p = fused(p, z, Lanes(repeating: -5.373_971_555_31e-2))
    p = fused(p, z, Lanes(repeating: 1.333_144_220_36e-1))
    p = fused(p, z, Lanes(repeating: -3.333_328_194_22e-1))
    let small = fused(p * z, x, x)
    let large = 1 - 2 / (fastExp(2 * ax) + 1)
    return withSign(large, of: x).replacing(with: small, where: ax .< 0.625)
}

/// tanh for one value.
@inline(__always)
func fastTanh(_ x: Float) -> Float { fastTanh(Lanes(repeating: x))[0] }

/// GELU(x) = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), PyTorch's approximate="tanh".
@inline(__always)
func fastTanhGELU(_ x: Lanes) -> Lanes {
    let inner = fused(0.044715 * x * x, x, x)
    let half = 0.5 * x
    return fused(half, fastTanh(0.797_884_560_802_865_4 * inner), half)
}

/// The tanh form of GELU for one value.
@inline(__always)
func fastTanhGELU(_ x: Float) -> Float { fastTanhGELU(Lanes(repeating: x))[0] }

/// The derivative of the tanh form: with u = k (x + 0.044715 x^3) and t = tanh u,
/// (1 + t) / 2 + x (1 - t^2) k (1 + 3 * 0.044715 x^2) / 2.
@inline(__always)
func tanhGELUDerivative(_ x: Lanes) -> Lanes {
    let k: Float = 0.797_884_560_802_865_4
    let x2: Lanes = x * x
    let t: Lanes = fastTanh(k * fused(0.044715 * x2, x, x))
    let slope: Lanes = k * fused(Lanes(repeating: 3 * 0.044715), x2, Lanes(repeating: 1))
    let half: Lanes = 0.5 * x * fused(0 - t, t, Lanes(repeating: 1))
    return fused(half, slope, 0.5 * (1 + t))
}

// Reductions over a row with eight running lanes (the compiler keeps a sequential float
// sum or a NaN-aware max in scalar registers). The order is fixed by n alone, so results
// do not depend on threads.

/// The eight floats from p on (no alignment needed).
@inline(__always)
func loadLanes(_ p: UnsafePointer<Float>) -> Lanes { UnsafeRawPointer(p).loadUnaligned(as: Lanes.self) }

/// The largest of x[0..<n]; -infinity when n is 0. NaN entries are skipped.
@inline(__always)
func rowMaximum(_ x: UnsafePointer<Float>, n: Int) -> Float {
    var lanes = SIMD8<Float>(repeating: -.infinity)
    var i = 0
    while i + 8 <= n {
        let v = loadLanes(x + i)
        lanes = lanes.replacing(with: v, where: v .> lanes)
        i += 8
    }
    var m = -Float.infinity
    for j in 0..<8 { m = lanes[j] > m ? lanes[j] : m }
    while i < n {
        m = x[i] > m ? x[i] : m
        i += 1
    }
    return m
}

/// The sum of (x[i] - shift)^power for i in 0..<n, power 1 or 2.
@inline(__always)
func rowSum(_ x: UnsafePointer<Float>, n: Int, minus shift: Float = 0, squared: Bool = false) -> Float {
    var lanes = SIMD8<Float>(repeating: 0)
    let s = SIMD8<Float>(repeating: shift)
    var i = 0
    while i + 8 <= n {
        let d = loadLanes(x + i) - s
        lanes += squared ? d * d : d
        i += 8
    }
    var total = lanes.sum()
    while i < n {
        let d = x[i] - shift
        total += squared ? d * d : d
        i += 1
    }
    return total
}

/// The sum of x[i]^2 for i in 0..<n in Double, on four running sums (element i goes to sum
/// i % 4 until the last whole group of four, the rest to their total): a norm over millions
/// of gradients without one chain of dependent additions, 3-4 cycles each.
func sumOfSquaresInDouble(_ x: UnsafePointer<Float>, n: Int) -> Double {
    var lanes = SIMD4<Double>(repeating: 0)
    var i = 0
    while i + 4 <= n {
        let v = SIMD4<Double>(Double(x[i]), Double(x[i + 1]), Double(x[i + 2]), Double(x[i + 3]))
        lanes += v * v
        i += 4
    }
    var total = lanes.sum()
    while i < n {
        total += Double(x[i]) * Double(x[i])
        i += 1
    }
    return total
}

/// The sum of x[i] y[i] for i in 0..<n, on eight lanes as `rowSum` adds.
@inline(__always)
func rowDot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, n: Int) -> Float {
    var lanes = Lanes(repeating: 0)
    var i = 0
    while i + 8 <= n {
        lanes += loadLanes(x + i) * loadLanes(y + i)
        i += 8
    }
    var total = lanes.sum()
    while i < n {
        total += x[i] * y[i]
        i += 1
    }
    return total
}

/// out[i] = f(x)[i] for i in 0..<n (out may be x), with a vector f on eight lanes at a
/// time; the last partial group is padded with zeros, so every element meets the same f.
@inline(__always)
func mapLanes(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, n: Int, _ f: (Lanes) -> Lanes) {
    var i = 0
    while i + 8 <= n {
        let y = f(loadLanes(x + i))
        UnsafeMutableRawPointer(out + i).storeBytes(of: y, as: Lanes.self)
        i += 8
    }
    if i < n {
        var v = Lanes()
        for j in 0..<(n - i) { v[j] = x[i + j] }
        let y = f(v)
        for j in 0..<(n - i) { out[i + j] = y[j] }
    }
}

/// out[i] = f(x[i]) for i < n (out may be x): on CKernels' form `function` (with
/// `shift`, see `ck_avx512_map`), sixteen lanes at a time where the CPU has AVX-512F, eight
/// where it has AVX2 and FMA, else on the eight-lane Swift form `lanes`; all three give
/// the same bits (VectorMathKernelTests).
@inline(__always)
func mapLanes(
    _ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, n: Int, avx512 function: Int32, shift: Float = 0,
    _ lanes: (Lanes) -> Lanes
) {
    if Machine.hasAVX512F {
        ck_avx512_map(function, out, x, n, shift)
    } else if Machine.hasAVX2FMA {
        ck_avx2_map(function, out, x, n, shift)
    } else {
        mapLanes(out, x, n: n, lanes)
    }
}
