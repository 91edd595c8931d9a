#ifndef CKERNELS_H
#define CKERNELS_H

// Product micro-kernels compiled for one instruction set each (a per-function target
// attribute, not a flag for the whole target), so that the package builds with no
// CPU-specific compiler flags; the caller checks the CPU before calling them.

/// C[0..<12, 0..<32] += S P (or = S P when `overwrite`): S a packed sliver [depth][12], P a
/// packed panel [depth][32], C row-major with row stride `ldc`. Needs AVX-512F.
void ck_avx512_tile_12x32(const float *sliver, const float *panel, long depth, float *c, long ldc,
                          int overwrite);

/// Runs `steps` steps of 24 independent chains of 512-bit fused multiply-adds on values
/// held in registers (768 floating-point operations a step) and returns their sum, so
/// that the work is kept: the machine's FMA peak, with no memory traffic. Needs AVX-512F.
float ck_avx512_fma_loop(long steps, float seed);

/// The same with 256-bit FMAs (384 operations a step). Needs AVX2 and FMA.
float ck_avx2_fma_loop(long steps, float seed);

#endif
