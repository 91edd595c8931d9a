#ifndef CKERNELS_H
#define CKERNELS_H

#include <stdint.h>

// Product micro-kernels compiled for one instruction set each (a per-function target
// attribute, not a flag for the whole target), so that the package builds with no
// CPU-specific compiler flags; the caller checks the CPU before calling them.

/// C[0..<12, 0..<32] += S P, or with `overwrite` C = bias + S P (bias a row of 32 values
/// added to every row, or zero when null): S a packed sliver [depth][12], P a packed panel
/// [depth][32], C row-major with row stride `ldc`. Needs AVX-512F.
void ck_avx512_tile_12x32(const float *sliver, const float *panel, long depth, float *c, long ldc, int overwrite,
                          const float *bias);

/// The same for a block at an edge of C: only rows 0..<rows and columns 0..<columns of C
/// (and of the bias) are read or written (rows <= 12, columns <= 32).
void ck_avx512_tile_edge(const float *sliver, const float *panel, long depth, float *c, long ldc, long rows,
                         long columns, int overwrite, const float *bias);

/// The same two blocks with A's rows read where they are instead of from a packed sliver:
/// row r of the block at a + r * lda, its depth steps contiguous (rows <= 12 of them for
/// the edge block); every sum is formed as from the packed sliver, so C gets the same bits.
/// While they run they prefetch into L2, a line a step, the `next_rows` rows of `depth`
/// floats at next + i * lda (none when next is null): the part of the rows of A that the
/// next blocks read which the caller hands to this block, so that rows coming from memory
/// are in L2 before their first block needs them.
void ck_avx512_tile_12x32_rows(const float *a, long lda, const float *panel, long depth, float *c, long ldc,
                               int overwrite, const float *bias, const float *next, long next_rows);
void ck_avx512_tile_edge_rows(const float *a, long lda, const float *panel, long depth, float *c, long ldc,
                              long rows, long columns, int overwrite, const float *bias, const float *next,
                              long next_rows);

/// Packs blocks of an operand for the tiles above: dst[(b * depth + l) * width + j] =
/// x(b * width + j, l) for b * width + j < rows and l < depth, zero past row `rows` (width
/// 12 for slivers, 32 for panels; block b at dst + b * depth * width). x(j, l) is src[j *
/// stride + l] when `along_rows` (each of the `rows` lines runs along the depth, as a
/// weight matrix [out, in]; transposed through 16 x 16 register blocks; rows <= width,
/// one block), else src[l * stride + j] (any number of blocks, read row by row of src).
/// Needs AVX-512F.
void ck_avx512_pack(const float *src, long stride, int along_rows, long rows, long depth, float *dst, long width);

/// Adds to sums[i], for i < rows, the sum over the depth of row i of packed slivers
/// (sliver i / 12 at slivers + (i / 12) * depth * 12, as ck_avx512_pack lays them out):
/// four chains of additions over steps l = 0, 4, 8, ... / 1, 5, ... / ..., then (0 + 1) +
/// (2 + 3). Needs AVX-512F.
void ck_avx512_add_sliver_sums(const float *slivers, long rows, long depth, float *sums);

/// The six functions above for CPUs with AVX2 and FMA (no AVX-512), with the same bits in
/// C (each sum formed in the same order with the same fused multiply-adds) and the same
/// arguments but for the panels: a panel is two halves of 16 columns, steps of depth 16
/// floats apart, the right half `half_offset` floats after the left (ck_avx2_pack with
/// width 16 lays out 16-column blocks so). Need AVX2 and FMA.
void ck_avx2_tile_12x32(const float *sliver, const float *panel, long half_offset, long depth, float *c, long ldc,
                        int overwrite, const float *bias);
void ck_avx2_tile_edge(const float *sliver, const float *panel, long half_offset, long depth, float *c, long ldc,
                       long rows, long columns, int overwrite, const float *bias);
void ck_avx2_tile_12x32_rows(const float *a, long lda, const float *panel, long half_offset, long depth, float *c,
                             long ldc, int overwrite, const float *bias, const float *next, long next_rows);
void ck_avx2_tile_edge_rows(const float *a, long lda, const float *panel, long half_offset, long depth, float *c,
                            long ldc, long rows, long columns, int overwrite, const float *bias, const float *next,
                            long next_rows);
void ck_avx2_pack(const float *src, long stride, int along_rows, long rows, long depth, float *dst, long width);
void ck_avx2_add_sliver_sums(const float *slivers, long rows, long depth, float *sums);

/// Rounds rows of single-precision values to bfloat16 (to nearest, ties to even, as
/// PyTorch converts): dst[r * ldd + l] = bf16(src[r * lds + l]) for r < rows, l < depth,
/// and zero for depth <= l < ldd. Needs AVX-512F, BW and VL and AVX512-BF16.
void ck_bf16_round_rows(const float *src, long lds, long rows, long depth, uint16_t *dst, long ldd);

/// Packs a panel of 32 columns of a bfloat16 weight matrix held as pairs (row j of W at
/// w + j * ldw, one 32-bit pair per two steps of depth): dst[q * 32 + j] = w[j * ldw + q]
/// for j < columns and q < pairs, zero for columns <= j < 32.
void ck_bf16_pack_panel(const uint32_t *w, long ldw, long columns, long pairs, uint32_t *dst);

/// C[0..<rows, 0..<columns] += A P, or with `overwrite` C = bias + A P, in single
/// precision from bfloat16 operands: row r of A is a + r * lda, `pairs` pairs of depth
/// steps; P a packed panel [pairs][32] of pairs. Each step adds the pair's two products
/// to the sum (VDPBF16PS). rows <= 12, columns <= 32. Needs AVX-512F and AVX512-BF16.
void ck_bf16_tile(const uint32_t *a, long lda, const uint32_t *panel, long pairs, float *c, long ldc, long rows,
                  long columns, int overwrite, const float *bias);

/// Runs `steps` steps of 24 independent chains of bfloat16 dot products (VDPBF16PS) on
/// registers (1,536 floating-point operations a step) and returns their sum: the machine's
/// bfloat16 peak. Needs AVX-512F and AVX512-BF16.
float ck_bf16_dot_loop(long steps, float seed);

/// The functions `ck_avx512_map` and `ck_avx2_map` apply.
enum { CK_EXP_SHIFTED = 0, CK_GELU = 1, CK_TANH_GELU = 2, CK_GELU_DERIVATIVE = 3, CK_TANH_GELU_DERIVATIVE = 4 };

/// out[i] = f(x[i]) for i < n (out may be x): e^(x - shift), GELU or its derivative (erf
/// form or tanh form), sixteen lanes at a time, bit for bit as `ck_avx2_map` and
/// ViTTensor's eight-lane Swift forms (the same operations, fused multiply-adds in the
/// same places). Needs AVX-512F.
void ck_avx512_map(int function, float *out, const float *x, long n, float shift);

/// `ck_avx512_map` on eight lanes at a time, with the same bits. Needs AVX2 and FMA.
void ck_avx2_map(int function, float *out, const float *x, long n, float shift);

/// Runs `steps` steps of 24 independent chains of 512-bit fused multiply-adds on values
/// held in registers (768 floating-point operations a step) and returns their sum, so
/// that the work is kept: the machine's FMA peak, with no memory traffic. Needs AVX-512F.
float ck_avx512_fma_loop(long steps, float seed);

/// The same with 14 chains of 256-bit FMAs (224 operations a step: 14 chains and the two
/// operands fill AVX2's 16 registers). Needs AVX2 and FMA.
float ck_avx2_fma_loop(long steps, float seed);

/// Tells the CPU that the caller is waiting in a loop (x86 `pause`), so that a spinning
/// thread takes fewer resources from its neighbour; nothing on other architectures.
static inline void ck_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

#endif
