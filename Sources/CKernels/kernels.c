#include "CKernels.h"

#include <immintrin.h>

#include "prefetch_ahead.h"

#include "register_block.h"

// A 12 x 32 block of C in 24 of the 32 vector registers; per step of depth, two vector
// loads of the panel and twelve broadcasts of the sliver feed 24 fused multiply-adds.
// Rows at or past `rows` and columns outside the masks are neither read nor written.

#define CK_ROW(r)                                                                  \
    if ((r) < rows) {                                                              \
        __m512 s = _mm512_set1_ps(a[(r) * a_row_stride]);                          \
        c##r##l = _mm512_fmadd_ps(s, low, c##r##l);                                \
        if (halves == 2) c##r##h = _mm512_fmadd_ps(s, high, c##r##h);              \
    }

// A[r][l] is sliver[r * a_row_stride + l * a_step]: a packed sliver (1, 12) or rows of A
// read where they are (lda, 1). Inlined into every caller, so that each (rows, halves,
// layout of A) gets its own loop.
__attribute__((target("avx512f"), always_inline))
static inline void ck_tile(const float *sliver, long a_row_stride, long a_step, const float *panel, long depth,
                           float *c, long ldc, long rows, int halves, __mmask16 low_mask, __mmask16 high_mask,
                           int overwrite, const float *bias, const float *next, long next_rows) {
    const __m512 zero = _mm512_setzero_ps();
    const __m512 start_low = bias ? _mm512_maskz_loadu_ps(low_mask, bias) : zero;
    const __m512 start_high = bias ? _mm512_maskz_loadu_ps(high_mask, bias + 16) : zero;
    CK_LOAD(0); CK_LOAD(1); CK_LOAD(2); CK_LOAD(3); CK_LOAD(4); CK_LOAD(5);
    CK_LOAD(6); CK_LOAD(7); CK_LOAD(8); CK_LOAD(9); CK_LOAD(10); CK_LOAD(11);
    const float *a = sliver, *p = panel;
    ck_ahead ahead = ck_ahead_start(next, next_rows, depth, a_row_stride);
    for (long l = 0; l < depth; l++) {
        __m512 low = _mm512_loadu_ps(p), high = halves == 2 ? _mm512_loadu_ps(p + 16) : zero;
        CK_PREFETCH_PANEL(p);
        ck_ahead_step(&ahead);
        CK_ROW(0); CK_ROW(1); CK_ROW(2); CK_ROW(3); CK_ROW(4); CK_ROW(5);
        CK_ROW(6); CK_ROW(7); CK_ROW(8); CK_ROW(9); CK_ROW(10); CK_ROW(11);
        p += 32;
        a += a_step;
    }
    CK_STORE(0); CK_STORE(1); CK_STORE(2); CK_STORE(3); CK_STORE(4); CK_STORE(5);
    CK_STORE(6); CK_STORE(7); CK_STORE(8); CK_STORE(9); CK_STORE(10); CK_STORE(11);
}

__attribute__((target("avx512f")))
void ck_avx512_tile_12x32(const float *sliver, const float *panel, long depth, float *c, long ldc, int overwrite,
                          const float *bias) {
    ck_tile(sliver, 1, 12, panel, depth, c, ldc, 12, 2, 0xFFFF, 0xFFFF, overwrite, bias, 0, 0);
}

__attribute__((target("avx512f")))
void ck_avx512_tile_12x32_rows(const float *a, long lda, const float *panel, long depth, float *c, long ldc,
                               int overwrite, const float *bias, const float *next, long next_rows) {
    ck_tile(a, lda, 1, panel, depth, c, ldc, 12, 2, 0xFFFF, 0xFFFF, overwrite, bias, next, next_rows);
}

// The edge block specialized for its row count and for one or two vectors of columns
// (rows and halves are constants in each call below), so that rows past the edge and an
// empty second half cost no multiply-adds.
#define CK_EDGE_CASE(r)                                                                                      \
    case r:                                                                                                  \
        if (columns > 16) {                                                                                  \
            ck_tile(sliver, a_row_stride, a_step, panel, depth, c, ldc, r, 2, low_mask, high_mask, overwrite, bias,   \
                    next, next_rows);                                                                        \
        } else {                                                                                             \
            ck_tile(sliver, a_row_stride, a_step, panel, depth, c, ldc, r, 1, low_mask, high_mask, overwrite, bias,   \
                    next, next_rows);                                                                        \
        }                                                                                                    \
        break

__attribute__((target("avx512f"), always_inline))
static inline void ck_edge(const float *sliver, long a_row_stride, long a_step, const float *panel, long depth,
                           float *c, long ldc, long rows, long columns, int overwrite, const float *bias,
                           const float *next, long next_rows) {
    __mmask16 low_mask = ck_first_lanes(columns), high_mask = ck_first_lanes(columns - 16);
    switch (rows) {
        CK_EDGE_CASE(1); CK_EDGE_CASE(2); CK_EDGE_CASE(3); CK_EDGE_CASE(4); CK_EDGE_CASE(5); CK_EDGE_CASE(6);
        CK_EDGE_CASE(7); CK_EDGE_CASE(8); CK_EDGE_CASE(9); CK_EDGE_CASE(10); CK_EDGE_CASE(11);
        default: CK_EDGE_CASE(12);
    }
}

__attribute__((target("avx512f")))
void ck_avx512_tile_edge(const float *sliver, const float *panel, long depth, float *c, long ldc, long rows,
                         long columns, int overwrite, const float *bias) {
    ck_edge(sliver, 1, 12, panel, depth, c, ldc, rows, columns, overwrite, bias, 0, 0);
}

__attribute__((target("avx512f")))
void ck_avx512_tile_edge_rows(const float *a, long lda, const float *panel, long depth, float *c, long ldc,
                              long rows, long columns, int overwrite, const float *bias, const float *next,
                              long next_rows) {
    ck_edge(a, lda, 1, panel, depth, c, ldc, rows, columns, overwrite, bias, next, next_rows);
}

// Transposes the 16 x 16 block held in r[0..15] (row i in r[i]) in place: afterwards r[j]
// holds column j. Pairs of rows are interleaved, then groups of four, then 128-bit lanes
// are exchanged across the four groups (four rounds of 16 shuffles).
__attribute__((target("avx512f")))
static inline void ck_transpose_16x16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // u[4g + c], lane L: rows 4g..4g+3 of column 4L + c.
    for (int g = 0; g < 4; g++) {
        u[4 * g] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);
        __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
        __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
        __m512 v3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
        r[c] = _mm512_shuffle_f32x4(v0, v2, 0x88);
        r[4 + c] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
        r[8 + c] = _mm512_shuffle_f32x4(v1, v3, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
    }
}

// dst[l * width_out + j] = x[j][l] for j < rows, l < depth, where x[j] starts at src + j *
// stride and runs along l; lanes rows..<width_out of each output row are zero. width_out is
// 12 or 32 (a sliver or a panel), rows <= width_out.
__attribute__((target("avx512f")))
static void ck_pack_transposing(const float *src, long stride, long rows, long depth, float *dst, long width_out) {
    __m512 r[16];
    for (long j0 = 0; j0 < width_out; j0 += 16) {
        long lanes = width_out - j0 < 16 ? width_out - j0 : 16;
        __mmask16 store = ck_first_lanes(lanes);
        for (long l0 = 0; l0 < depth; l0 += 16) {
            long steps = depth - l0 < 16 ? depth - l0 : 16;
            __mmask16 load = ck_first_lanes(steps);
            for (long i = 0; i < 16; i++) {
                r[i] = j0 + i < rows ? _mm512_maskz_loadu_ps(load, src + (j0 + i) * stride + l0) : _mm512_setzero_ps();
            }
            ck_transpose_16x16(r);
            for (long i = 0; i < steps; i++) _mm512_mask_storeu_ps(dst + (l0 + i) * width_out + j0, store, r[i]);
        }
    }
}

// Blocks of width_out columns, in bands of 16 source rows: block b holds columns b *
// width_out ..< (b + 1) * width_out, dst[(b * depth + l) * width_out + j] = src[l * stride +
// b * width_out + j], zero past column `columns`. A band's rows are read across their whole
// width (they stay in L1 while the blocks take their parts, and the hardware's prefetch
// follows each row along), where a block at a time would read short pieces of rows
// kilobytes apart; each block's part of a band is written contiguously.
__attribute__((target("avx512f")))
static void ck_pack_copying(const float *src, long stride, long columns, long depth, float *dst, long width_out) {
    long blocks = (columns + width_out - 1) / width_out;
    for (long l0 = 0; l0 < depth; l0 += 16) {
        long band_end = depth - l0 < 16 ? depth : l0 + 16;
        for (long b = 0; b < blocks; b++) {
            for (long j0 = 0; j0 < width_out; j0 += 16) {
                long first = b * width_out + j0, lanes = width_out - j0 < 16 ? width_out - j0 : 16;
                long valid = columns - first < 0 ? 0 : (columns - first < lanes ? columns - first : lanes);
                __mmask16 load = ck_first_lanes(valid), store = ck_first_lanes(lanes);
                for (long l = l0; l < band_end; l++) {
                    __m512 v = _mm512_maskz_loadu_ps(load, src + l * stride + first);
                    _mm512_mask_storeu_ps(dst + (b * depth + l) * width_out + j0, store, v);
                }
            }
        }
    }
}

// Four chains of additions over the depth (steps l, l + 4, ...), combined as (0 + 1) + (2 +
// 3): the add latency hidden, the order fixed.
__attribute__((target("avx512f")))
void ck_avx512_add_sliver_sums(const float *slivers, long rows, long depth, float *sums) {
    for (long s = 0; s * 12 < rows; s++) {
        const float *p = slivers + s * depth * 12;
        __m512 total[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
        for (long l = 0; l < depth; l++) total[l & 3] = _mm512_add_ps(total[l & 3], _mm512_maskz_loadu_ps(0x0FFF, p + l * 12));
        __m512 sum = _mm512_add_ps(_mm512_add_ps(total[0], total[1]), _mm512_add_ps(total[2], total[3]));
        __mmask16 valid = ck_first_lanes(rows - s * 12 < 12 ? rows - s * 12 : 12);
        _mm512_mask_storeu_ps(sums + s * 12, valid, _mm512_add_ps(_mm512_maskz_loadu_ps(valid, sums + s * 12), sum));
    }
}

__attribute__((target("avx512f")))
void ck_avx512_pack(const float *src, long stride, int along_rows, long rows, long depth, float *dst, long width) {
    if (along_rows) {
        ck_pack_transposing(src, stride, rows, depth, dst, width);
    } else {
        ck_pack_copying(src, stride, rows, depth, dst, width);
    }
}

// CHAINS independent chains: at least the FMA latency (4-5 cycles) times the FMA units (2),
// so that the loop is limited by the units alone, and few enough to stay in registers with
// the two operands (AVX-512 has 32 vector registers: 24 chains; AVX2 has 16: 14 chains,
// since chains spilled to the stack would measure loads and stores instead).
#define CK_FMA_LOOP(VEC, CHAINS, SET1, FMA, ADD, REDUCE)                           \
    VEC x = SET1(0.999999f), y = SET1(1e-7f), acc[CHAINS];                          \
    for (int i = 0; i < CHAINS; i++) acc[i] = SET1(seed + (float)i);                \
    for (long s = 0; s < steps; s++) {                                              \
        for (int i = 0; i < CHAINS; i++) acc[i] = FMA(acc[i], x, y);               \
    }                                                                               \
    VEC sum = acc[0];                                                               \
    for (int i = 1; i < CHAINS; i++) sum = ADD(sum, acc[i]);                        \
    return REDUCE(sum)

__attribute__((target("avx512f")))
float ck_avx512_fma_loop(long steps, float seed) {
    CK_FMA_LOOP(__m512, 24, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_reduce_add_ps);
}

__attribute__((target("avx2,fma")))
static float ck_avx2_sum(__m256 v) {
    float lanes[8];
    _mm256_storeu_ps(lanes, v);
    float sum = 0;
    for (int i = 0; i < 8; i++) sum += lanes[i];
    return sum;
}

__attribute__((target("avx2,fma")))
float ck_avx2_fma_loop(long steps, float seed) {
    CK_FMA_LOOP(__m256, 14, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, ck_avx2_sum);
}

// The vector primitives of vector_math.h on 16 lanes of AVX-512F.
#pragma clang fp contract(off)
#define VM_TARGET __attribute__((target("avx512f")))
typedef __m512 vm_float;
VM_TARGET static inline vm_float vm_splat(float x) { return _mm512_set1_ps(x); }
VM_TARGET static inline vm_float vm_add(vm_float a, vm_float b) { return _mm512_add_ps(a, b); }
VM_TARGET static inline vm_float vm_sub(vm_float a, vm_float b) { return _mm512_sub_ps(a, b); }
VM_TARGET static inline vm_float vm_mul(vm_float a, vm_float b) { return _mm512_mul_ps(a, b); }
VM_TARGET static inline vm_float vm_div(vm_float a, vm_float b) { return _mm512_div_ps(a, b); }
VM_TARGET static inline vm_float vm_fma(vm_float a, vm_float b, vm_float c) { return _mm512_fmadd_ps(a, b, c); }
VM_TARGET static inline vm_float vm_abs(vm_float x) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7FFFFFFF)));
}
VM_TARGET static inline vm_float vm_with_sign(vm_float x, vm_float sign) {
    __m512i magnitude = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7FFFFFFF));
    __m512i sign_bit = _mm512_and_si512(_mm512_castps_si512(sign), _mm512_set1_epi32((int)0x80000000u));
    return _mm512_castsi512_ps(_mm512_or_si512(magnitude, sign_bit));
}
VM_TARGET static inline vm_float vm_select_less(vm_float a, vm_float b, vm_float t, vm_float f) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), f, t);
}
VM_TARGET static inline vm_float vm_select_greater(vm_float a, vm_float b, vm_float t, vm_float f) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_GT_OQ), f, t);
}
VM_TARGET static inline vm_float vm_power_of_two(vm_float shifted) {
    __m512i n = _mm512_sub_epi32(_mm512_castps_si512(shifted), _mm512_set1_epi32(0x4B400000));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n, _mm512_set1_epi32(127)), 23));
}

#include "vector_math.h"

__attribute__((target("avx512f")))
void ck_avx512_map(int function, float *out, const float *x, long n, float shift) {
    const __m512 s = _mm512_set1_ps(shift);
    for (long i = 0; i < n; i += 16) {
        __mmask16 lanes = ck_first_lanes(n - i);
        __m512 y = vm_apply(function, _mm512_maskz_loadu_ps(lanes, x + i), s);
        _mm512_mask_storeu_ps(out + i, lanes, y);
    }
}
