#include "CKernels.h"

#include <immintrin.h>

#include "prefetch_ahead.h"

// The single-precision product for CPUs with AVX2 and FMA but no AVX-512: the same
// operands as the AVX-512 functions (12-row slivers, 32-column panels), so one driver
// serves both. With 16 vector registers of 8 lanes, the 12 x 32 block of C is done as
// four 6 x 16 blocks, each in 12 registers (two loads of the panel and six broadcasts feed
// 12 fused multiply-adds per step of depth), the layout of the Haswell kernels in BLIS and
// OpenBLAS. A panel is packed as two halves of 16 columns, so that each block reads one
// contiguous line a step. Every element's sum starts from C (or the bias)
// and adds its products in order of depth, one fused multiply-add each, exactly as the
// AVX-512 block does: the two give the same bits. Full vectors are stored with plain
// stores and masks are kept for edges: a masked store (VMASKMOVPS to memory) is
// microcoded on AMD's Zen cores, and on the AMD EPYC (family 25, model 1) the packing's
// masked stores took 12% of a ViT-Ti training step's samples.

// The mask of the first n of 8 lanes (none for n <= 0, all for n >= 8).
__attribute__((target("avx2")))
static inline __m256i ck_first_lanes8(long n) {
    long clamped = n < 0 ? 0 : n > 8 ? 8 : n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)clamped), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

#define CK2_LOAD(r)                                                                            \
    __m256 c##r##a = overwrite          ? start_a                                             \
                     : (r) < rows       ? _mm256_maskload_ps(c + (r) * ldc, mask_a)           \
                                        : zero;                                               \
    __m256 c##r##b = overwrite          ? start_b                                             \
                     : (r) < rows       ? _mm256_maskload_ps(c + (r) * ldc + 8, mask_b)       \
                                        : zero

#define CK2_ROW(r)                                                                             \
    if ((r) < rows) {                                                                          \
        __m256 s = _mm256_broadcast_ss(a + (r) * a_row_stride);                                \
        c##r##a = _mm256_fmadd_ps(s, low, c##r##a);                                            \
        if (vectors == 2) c##r##b = _mm256_fmadd_ps(s, high, c##r##b);                         \
    }

#define CK2_STORE(r)                                                                           \
    if ((r) < rows) {                                                                          \
        _mm256_maskstore_ps(c + (r) * ldc, mask_a, c##r##a);                                   \
        if (vectors == 2) _mm256_maskstore_ps(c + (r) * ldc + 8, mask_b, c##r##b);             \
    }

// A block of up to 6 rows and 16 columns of C: A[r][l] is sliver[r * a_row_stride + l *
// a_step]; the panel's 16 columns used here start at `panel`, one step of depth every 32
// floats. `rows` and `vectors` (of 8 columns) are constants in every caller.
__attribute__((target("avx2,fma"), always_inline))
static inline void ck2_block(const float *sliver, long a_row_stride, long a_step, const float *panel, long depth,
                             float *c, long ldc, long rows, int vectors, __m256i mask_a, __m256i mask_b,
                             int overwrite, const float *bias, const float *next, long next_rows) {
    const __m256 zero = _mm256_setzero_ps();
    const __m256 start_a = bias ? _mm256_maskload_ps(bias, mask_a) : zero;
    const __m256 start_b = bias && vectors == 2 ? _mm256_maskload_ps(bias + 8, mask_b) : zero;
    CK2_LOAD(0); CK2_LOAD(1); CK2_LOAD(2); CK2_LOAD(3); CK2_LOAD(4); CK2_LOAD(5);
    const float *a = sliver, *p = panel;
    ck_ahead ahead = ck_ahead_start(next, next_rows, depth, a_row_stride);
    for (long l = 0; l < depth; l++) {
        __m256 low = _mm256_loadu_ps(p), high = vectors == 2 ? _mm256_loadu_ps(p + 8) : zero;
        // The half panel's line 32 steps ahead.
        _mm_prefetch((const char *)(p + 16 * 32), _MM_HINT_T0);
        ck_ahead_step(&ahead);
        CK2_ROW(0); CK2_ROW(1); CK2_ROW(2); CK2_ROW(3); CK2_ROW(4); CK2_ROW(5);
        p += 16;
        a += a_step;
    }
    CK2_STORE(0); CK2_STORE(1); CK2_STORE(2); CK2_STORE(3); CK2_STORE(4); CK2_STORE(5);
}

#define CK2_CASE(r)                                                                                           \
    case r:                                                                                                   \
        if (columns > 8) {                                                                                    \
            ck2_block(sliver, a_row_stride, a_step, panel, depth, c, ldc, r, 2, mask_a, mask_b, overwrite, bias,  \
                      next, next_rows);                                                                       \
        } else {                                                                                              \
            ck2_block(sliver, a_row_stride, a_step, panel, depth, c, ldc, r, 1, mask_a, mask_b, overwrite, bias,  \
                      next, next_rows);                                                                       \
        }                                                                                                     \
        break

// One 6 x 16 block at an edge, specialized for its row count and one or two vectors.
__attribute__((target("avx2,fma"), always_inline))
static inline void ck2_edge(const float *sliver, long a_row_stride, long a_step, const float *panel, long depth,
                            float *c, long ldc, long rows, long columns, int overwrite, const float *bias,
                            const float *next, long next_rows) {
    __m256i mask_a = ck_first_lanes8(columns), mask_b = ck_first_lanes8(columns - 8);
    switch (rows) {
        CK2_CASE(1); CK2_CASE(2); CK2_CASE(3); CK2_CASE(4); CK2_CASE(5);
        default: CK2_CASE(6);
    }
}

// The 12 x 32 block (or its part rows x columns) as up to four 6 x 16 blocks; the two
// blocks that share a half of the panel run one after the other, so that the second finds
// it in cache (L1 where the depth is short, L2 for long ones). The
// first of them prefetches the next block's rows of A (next, next_rows), if any.
__attribute__((target("avx2,fma"), always_inline))
static inline void ck2_tile(const float *sliver, long a_row_stride, long a_step, const float *panel,
                            long half_offset, long depth, float *c, long ldc, long rows, long columns, int overwrite,
                            const float *bias, const float *next, long next_rows) {
    const __m256i all = _mm256_set1_epi32(-1);
    for (long half = 0; half < 2 && 16 * half < columns; half++) {
        long width = columns - 16 * half < 16 ? columns - 16 * half : 16;
        const float *start = bias ? bias + 16 * half : 0;
        for (long r0 = 0; r0 < rows; r0 += 6) {
            const float *part = sliver + r0 * a_row_stride;
            float *block = c + r0 * ldc + 16 * half;
            const float *ahead = half == 0 && r0 == 0 ? next : 0;
            if (rows - r0 >= 6 && width == 16) {
                ck2_block(part, a_row_stride, a_step, panel + half_offset * half, depth, block, ldc, 6, 2, all, all,
                          overwrite, start, ahead, next_rows);
            } else {
                ck2_edge(part, a_row_stride, a_step, panel + half_offset * half, depth, block, ldc,
                         rows - r0 < 6 ? rows - r0 : 6, width, overwrite, start, ahead, next_rows);
            }
        }
    }
}

__attribute__((target("avx2,fma")))
void ck_avx2_tile_12x32(const float *sliver, const float *panel, long half_offset, long depth, float *c, long ldc,
                        int overwrite, const float *bias) {
    ck2_tile(sliver, 1, 12, panel, half_offset, depth, c, ldc, 12, 32, overwrite, bias, 0, 0);
}

__attribute__((target("avx2,fma")))
void ck_avx2_tile_edge(const float *sliver, const float *panel, long half_offset, long depth, float *c, long ldc,
                       long rows, long columns, int overwrite, const float *bias) {
    ck2_tile(sliver, 1, 12, panel, half_offset, depth, c, ldc, rows, columns, overwrite, bias, 0, 0);
}

__attribute__((target("avx2,fma")))
void ck_avx2_tile_12x32_rows(const float *a, long lda, const float *panel, long half_offset, long depth, float *c,
                             long ldc, int overwrite, const float *bias, const float *next, long next_rows) {
    ck2_tile(a, lda, 1, panel, half_offset, depth, c, ldc, 12, 32, overwrite, bias, next, next_rows);
}

__attribute__((target("avx2,fma")))
void ck_avx2_tile_edge_rows(const float *a, long lda, const float *panel, long half_offset, long depth, float *c,
                            long ldc, long rows, long columns, int overwrite, const float *bias, const float *next,
                            long next_rows) {
    ck2_tile(a, lda, 1, panel, half_offset, depth, c, ldc, rows, columns, overwrite, bias, next, next_rows);
}

// Transposes the 8 x 8 block held in r[0..7] (row i in r[i]) in place: afterwards r[j]
// holds column j. Pairs interleave, then quadruples, then the 128-bit halves swap.
__attribute__((target("avx2")))
static inline void ck_transpose_8x8(__m256 *r) {
    __m256 t[8], s[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        s[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        s[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        s[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        s[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
    }
}

// dst[l * width_out + j] = src[j * stride + l] for j < rows, zero for rows <= j < width_out,
// through 8 x 8 register blocks.
__attribute__((target("avx2")))
static void ck2_pack_transposing(const float *src, long stride, long rows, long depth, float *dst, long width_out) {
    __m256 r[8];
    for (long j0 = 0; j0 < width_out; j0 += 8) {
        __m256i store = ck_first_lanes8(width_out - j0);
        int full_width = width_out - j0 >= 8;
        for (long l0 = 0; l0 < depth; l0 += 8) {
            long steps = depth - l0 < 8 ? depth - l0 : 8;
            __m256i load = ck_first_lanes8(steps);
            for (long i = 0; i < 8; i++) {
                const float *row = src + (j0 + i) * stride + l0;
                r[i] = j0 + i >= rows ? _mm256_setzero_ps() : steps == 8 ? _mm256_loadu_ps(row) : _mm256_maskload_ps(row, load);
            }
            ck_transpose_8x8(r);
            for (long i = 0; i < steps; i++) {
                float *out = dst + (l0 + i) * width_out + j0;
                if (full_width) {
                    _mm256_storeu_ps(out, r[i]);
                } else {
                    _mm256_maskstore_ps(out, store, r[i]);
                }
            }
        }
    }
}

// Blocks of width_out columns, in bands of 16 source rows, as the AVX-512 packing lays
// them out and reads them.
__attribute__((target("avx2")))
static void ck2_pack_copying(const float *src, long stride, long columns, long depth, float *dst, long width_out) {
    long blocks = (columns + width_out - 1) / width_out;
    for (long l0 = 0; l0 < depth; l0 += 16) {
        long band_end = depth - l0 < 16 ? depth : l0 + 16;
        for (long b = 0; b < blocks; b++) {
            for (long j0 = 0; j0 < width_out; j0 += 8) {
                long first = b * width_out + j0;
                __m256i load = ck_first_lanes8(columns - first), store = ck_first_lanes8(width_out - j0);
                if (columns - first >= 8 && width_out - j0 >= 8) {
                    for (long l = l0; l < band_end; l++) {
                        _mm256_storeu_ps(dst + (b * depth + l) * width_out + j0, _mm256_loadu_ps(src + l * stride + first));
                    }
                    continue;
                }
                if (columns - first >= 4 && width_out - j0 == 4) {
                    // The last four columns of a sliver: SSE moves.
                    for (long l = l0; l < band_end; l++) {
                        _mm_storeu_ps(dst + (b * depth + l) * width_out + j0, _mm_loadu_ps(src + l * stride + first));
                    }
                    continue;
                }
                for (long l = l0; l < band_end; l++) {
                    __m256 v = _mm256_maskload_ps(src + l * stride + first, load);
                    _mm256_maskstore_ps(dst + (b * depth + l) * width_out + j0, store, v);
                }
            }
        }
    }
}

// The AVX-512 sums' additions in the same order: lanes 0..<8 and 8..<12 of each step.
__attribute__((target("avx2")))
void ck_avx2_add_sliver_sums(const float *slivers, long rows, long depth, float *sums) {
    for (long s = 0; s * 12 < rows; s++) {
        const float *p = slivers + s * depth * 12;
        __m256 low[4], high[4];
        for (int i = 0; i < 4; i++) low[i] = high[i] = _mm256_setzero_ps();
        __m256i four = ck_first_lanes8(4);
        for (long l = 0; l < depth; l++) {
            low[l & 3] = _mm256_add_ps(low[l & 3], _mm256_loadu_ps(p + l * 12));
            high[l & 3] = _mm256_add_ps(high[l & 3], _mm256_maskload_ps(p + l * 12 + 8, four));
        }
        __m256 sum_low = _mm256_add_ps(_mm256_add_ps(low[0], low[1]), _mm256_add_ps(low[2], low[3]));
        __m256 sum_high = _mm256_add_ps(_mm256_add_ps(high[0], high[1]), _mm256_add_ps(high[2], high[3]));
        long valid = rows - s * 12 < 12 ? rows - s * 12 : 12;
        __m256i mask_low = ck_first_lanes8(valid), mask_high = ck_first_lanes8(valid - 8);
        float *out = sums + s * 12;
        _mm256_maskstore_ps(out, mask_low, _mm256_add_ps(_mm256_maskload_ps(out, mask_low), sum_low));
        _mm256_maskstore_ps(out + 8, mask_high, _mm256_add_ps(_mm256_maskload_ps(out + 8, mask_high), sum_high));
    }
}

__attribute__((target("avx2")))
void ck_avx2_pack(const float *src, long stride, int along_rows, long rows, long depth, float *dst, long width) {
    if (along_rows) {
        ck2_pack_transposing(src, stride, rows, depth, dst, width);
    } else {
        ck2_pack_copying(src, stride, rows, depth, dst, width);
    }
}

// The vector primitives of vector_math.h on 8 lanes of AVX2 with FMA: the same bits as the
// AVX-512 forms in kernels.c.
#pragma clang fp contract(off)
#define VM_TARGET __attribute__((target("avx2,fma")))
typedef __m256 vm_float;
VM_TARGET static inline vm_float vm_splat(float x) { return _mm256_set1_ps(x); }
VM_TARGET static inline vm_float vm_add(vm_float a, vm_float b) { return _mm256_add_ps(a, b); }
VM_TARGET static inline vm_float vm_sub(vm_float a, vm_float b) { return _mm256_sub_ps(a, b); }
VM_TARGET static inline vm_float vm_mul(vm_float a, vm_float b) { return _mm256_mul_ps(a, b); }
VM_TARGET static inline vm_float vm_div(vm_float a, vm_float b) { return _mm256_div_ps(a, b); }
VM_TARGET static inline vm_float vm_fma(vm_float a, vm_float b, vm_float c) { return _mm256_fmadd_ps(a, b, c); }
VM_TARGET static inline vm_float vm_abs(vm_float x) {
    return _mm256_castsi256_ps(_mm256_and_si256(_mm256_castps_si256(x), _mm256_set1_epi32(0x7FFFFFFF)));
}
VM_TARGET static inline vm_float vm_with_sign(vm_float x, vm_float sign) {
    __m256i magnitude = _mm256_and_si256(_mm256_castps_si256(x), _mm256_set1_epi32(0x7FFFFFFF));
    __m256i sign_bit = _mm256_and_si256(_mm256_castps_si256(sign), _mm256_set1_epi32((int)0x80000000u));
    return _mm256_castsi256_ps(_mm256_or_si256(magnitude, sign_bit));
}
VM_TARGET static inline vm_float vm_select_less(vm_float a, vm_float b, vm_float t, vm_float f) {
    return _mm256_blendv_ps(f, t, _mm256_cmp_ps(a, b, _CMP_LT_OQ));
}
VM_TARGET static inline vm_float vm_select_greater(vm_float a, vm_float b, vm_float t, vm_float f) {
    return _mm256_blendv_ps(f, t, _mm256_cmp_ps(a, b, _CMP_GT_OQ));
}
VM_TARGET static inline vm_float vm_power_of_two(vm_float shifted) {
    __m256i n = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_set1_epi32(0x4B400000));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23));
}

#include "vector_math.h"

__attribute__((target("avx2,fma")))
void ck_avx2_map(int function, float *out, const float *x, long n, float shift) {
    const __m256 s = _mm256_set1_ps(shift);
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, vm_apply(function, _mm256_loadu_ps(x + i), s));
    if (i < n) {
        __m256i lanes = ck_first_lanes8(n - i);
        _mm256_maskstore_ps(out + i, lanes, vm_apply(function, _mm256_maskload_ps(x + i, lanes), s));
    }
}
