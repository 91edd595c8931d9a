// exp, erf-GELU and tanh-GELU and their derivatives, written once over vector primitives
// that the including file defines for its width (kernels.c: 16 lanes of AVX-512F, avx2.c:
// 8 lanes of AVX2 with FMA), each function marked VM_TARGET:
//   vm_float, vm_splat(x), vm_add, vm_sub, vm_mul, vm_div, vm_fma(a, b, c) = a * b + c
//   rounded once, vm_abs, vm_with_sign(x, sign), vm_select_less(a, b, t, f) = a < b ? t : f
//   and vm_select_greater(a, b, t, f) = a > b ? t : f per lane (false where either is
//   NaN), vm_power_of_two(shifted) = 2^n from a float holding n + 1.5 * 2^23.
// Every width runs the same operations in the same order, so a value gets the same bits on
// either, and ViTTensor's eight-lane Swift forms (VectorMath.swift) do the same with
// addingProduct for vm_fma. Fused multiply-adds where a product meets a sum: a quarter
// fewer instructions than a multiply and an add each, and one rounding instead of two.

// e^x. Cody-Waite range reduction x = n ln2 + r with |r| <= ln2 / 2, the polynomial of
// Cephes' expf (Moshier, Cephes Math Library, expf.c), then 2^n put in place with integer
// arithmetic. Inputs below -87.34 give 0; inputs above 88.37 give e^88.37 (about 2.5e38).
VM_TARGET static inline vm_float vm_exp(vm_float x) {
    const vm_float low = vm_splat(-87.336544f), high = vm_splat(88.37f), shifter = vm_splat(12582912.0f);
    vm_float xc = vm_select_greater(x, high, high, vm_select_less(x, low, low, x));
    // n = round(x log2(e)) with the 1.5 * 2^23 trick; ln 2 = 0.693359375 - 2.12194440e-4.
    vm_float shifted = vm_fma(xc, vm_splat(1.44269504f), shifter);
    vm_float n = vm_sub(shifted, shifter);
    vm_float r = vm_fma(n, vm_splat(-0.693359375f), xc);
    r = vm_fma(n, vm_splat(2.1219444e-4f), r);
    vm_float p = vm_splat(1.98756915e-4f);
    p = vm_fma(p, r, vm_splat(1.39819995e-3f));
    p = vm_fma(p, r, vm_splat(8.3334519e-3f));
    p = vm_fma(p, r, vm_splat(4.16657959e-2f));
    p = vm_fma(p, r, vm_splat(1.66666655e-1f));
    p = vm_fma(p, r, vm_splat(5.00000012e-1f));
    p = vm_add(vm_fma(vm_mul(p, r), r, r), vm_splat(1.0f));
    return vm_select_less(x, low, vm_splat(0.0f), vm_mul(p, vm_power_of_two(shifted)));
}

// erf(v), Abramowitz and Stegun 7.1.26: 1 - t (a1 + t (a2 + ...)) e^(-v^2) with
// t = 1 / (1 + p |v|), absolute error at most 1.5e-7; given ax = |v| and e = e^(-v^2).
VM_TARGET static inline vm_float vm_erf_given_exp(vm_float v, vm_float ax, vm_float e) {
    vm_float t = vm_div(vm_splat(1.0f), vm_fma(vm_splat(0.3275911f), ax, vm_splat(1.0f)));
    vm_float poly = vm_splat(1.061405429f);
    poly = vm_fma(poly, t, vm_splat(-1.453152027f));
    poly = vm_fma(poly, t, vm_splat(1.421413741f));
    poly = vm_fma(poly, t, vm_splat(-0.284496736f));
    poly = vm_fma(poly, t, vm_splat(0.254829592f));
    vm_float y = vm_fma(vm_sub(vm_splat(0.0f), vm_mul(poly, t)), e, vm_splat(1.0f));
    return vm_with_sign(y, v);
}

// e^(-ax^2), the Gaussian factor of erf.
VM_TARGET static inline vm_float vm_erf_exp(vm_float ax) { return vm_exp(vm_mul(vm_sub(vm_splat(0.0f), ax), ax)); }

// GELU(x) = x/2 (1 + erf(x / sqrt 2)).
VM_TARGET static inline vm_float vm_gelu(vm_float x) {
    vm_float v = vm_mul(x, vm_splat(0.70710678118654752f)), ax = vm_abs(v);
    vm_float half = vm_mul(vm_splat(0.5f), x);
    return vm_fma(half, vm_erf_given_exp(v, ax, vm_erf_exp(ax)), half);
}

// GELU'(x) = Phi(x) + x phi(x), with erf's Gaussian factor e^(-(x / sqrt 2)^2) serving
// as phi's e^(-x^2 / 2).
VM_TARGET static inline vm_float vm_gelu_derivative(vm_float x) {
    vm_float v = vm_mul(x, vm_splat(0.70710678118654752f)), ax = vm_abs(v);
    vm_float e = vm_erf_exp(ax);
    vm_float density = vm_mul(vm_mul(x, vm_splat(0.3989422804014327f)), e);
    vm_float erf = vm_erf_given_exp(v, ax, e);
    return vm_fma(vm_splat(0.5f), vm_add(vm_splat(1.0f), erf), density);
}

// tanh(x), odd in x: for |x| < 0.625 the polynomial x + x^3 P(x^2) of Cephes' tanhf
// (Moshier, Cephes Math Library, tanhf.c), else 1 - 2 / (e^(2|x|) + 1); both are computed
// and one selected per lane.
VM_TARGET static inline vm_float vm_tanh(vm_float x) {
    vm_float ax = vm_abs(x), z = vm_mul(x, x);
    vm_float p = vm_splat(-5.70498872745e-3f);
    p = vm_fma(p, z, vm_splat(2.06390887954e-2f));
    p = vm_fma(p, z, vm_splat(-5.37397155531e-2f));
    p = vm_fma(p, z, vm_splat(1.33314422036e-1f));
    p = vm_fma(p, z, vm_splat(-3.33332819422e-1f));
    vm_float small = vm_fma(vm_mul(p, z), x, x);
    vm_float e = vm_exp(vm_mul(vm_splat(2.0f), ax));
    vm_float large = vm_sub(vm_splat(1.0f), vm_div(vm_splat(2.0f), vm_add(e, vm_splat(1.0f))));
    return vm_select_less(ax, vm_splat(0.625f), small, vm_with_sign(large, x));
}

// GELU(x) = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), PyTorch's approximate="tanh".
VM_TARGET static inline vm_float vm_tanh_gelu(vm_float x) {
    vm_float inner = vm_fma(vm_mul(vm_mul(vm_splat(0.044715f), x), x), x, x);
    vm_float half = vm_mul(vm_splat(0.5f), x);
    return vm_fma(half, vm_tanh(vm_mul(vm_splat(0.7978845608028654f), inner)), half);
}

// The tanh form's derivative: with t = tanh(k (x + 0.044715 x^3)),
// (1 + t) / 2 + x (1 - t^2) k (1 + 3 * 0.044715 x^2) / 2.
VM_TARGET static inline vm_float vm_tanh_gelu_derivative(vm_float x) {
    const vm_float k = vm_splat(0.7978845608028654f);
    vm_float x2 = vm_mul(x, x);
    vm_float t = vm_tanh(vm_mul(k, vm_fma(vm_mul(vm_splat(0.044715f), x2), x, x)));
    vm_float slope = vm_mul(k, vm_fma(vm_splat(3.0f * 0.044715f), x2, vm_splat(1.0f)));
    vm_float half = vm_mul(vm_mul(vm_splat(0.5f), x), vm_fma(vm_sub(vm_splat(0.0f), t), t, vm_splat(1.0f)));
    return vm_fma(half, slope, vm_mul(vm_splat(0.5f), vm_add(vm_splat(1.0f), t)));
}

// One of the functions above, by CK_EXP_SHIFTED... (CKernels.h); exp takes x - shift.
VM_TARGET __attribute__((always_inline)) static inline vm_float vm_apply(int function, vm_float x, vm_float shift) {
    switch (function) {
    case CK_EXP_SHIFTED: return vm_exp(vm_sub(x, shift));
    case CK_GELU: return vm_gelu(x);
    case CK_TANH_GELU: return vm_tanh_gelu(x);
    case CK_GELU_DERIVATIVE: return vm_gelu_derivative(x);
    default: return vm_tanh_gelu_derivative(x);
    }
}
