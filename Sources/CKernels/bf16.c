#include "CKernels.h"

#include <immintrin.h>

#include "register_block.h"

// bfloat16 products on AVX512-BF16: VDPBF16PS adds to each of 16 float lanes the two
// products of a pair of bfloat16 values from each operand, so one step of the loop below
// covers two steps of depth. Operands are stored as pairs: a 32-bit word holds the values
// at depth 2q (low half) and 2q + 1 (high half).

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
void ck_bf16_round_rows(const float *src, long lds, long rows, long depth, uint16_t *dst, long ldd) {
    for (long r = 0; r < rows; r++) {
        const float *s = src + r * lds;
        uint16_t *d = dst + r * ldd;
        for (long l = 0; l < ldd; l += 16) {
            __m512 v = _mm512_maskz_loadu_ps(ck_first_lanes(depth - l), s + l);
            __m256i rounded = (__m256i)_mm512_cvtneps_pbh(v);
            _mm256_mask_storeu_epi16(d + l, ck_first_lanes(ldd - l), rounded);
        }
    }
}

void ck_bf16_pack_panel(const uint32_t *w, long ldw, long columns, long pairs, uint32_t *dst) {
    for (long q = 0; q < pairs; q++) {
        for (long j = 0; j < 32; j++) dst[q * 32 + j] = j < columns ? w[j * ldw + q] : 0;
    }
}

#define CK_BF16_ROW(r)                                                                          \
    if ((r) < rows) {                                                                           \
        __m512bh s = (__m512bh)_mm512_set1_epi32((int)a[(r) * lda + q]);                        \
        c##r##l = _mm512_dpbf16_ps(c##r##l, s, low);                                            \
        if (halves == 2) c##r##h = _mm512_dpbf16_ps(c##r##h, s, high);                          \
    }

// A 12 x 32 block of C in 24 registers, as the single-precision block: per pair of depth
// steps, two vector loads of the panel and twelve broadcast pairs of A feed 24 dot
// products. Inlined into each specialization below (rows and halves constant).
__attribute__((target("avx512f,avx512bf16"), always_inline))
static inline void ck_bf16_block(const uint32_t *a, long lda, const uint32_t *panel, long pairs, float *c, long ldc,
                                 long rows, int halves, __mmask16 low_mask, __mmask16 high_mask, int overwrite,
                                 const float *bias) {
    const __m512 zero = _mm512_setzero_ps();
    const __m512 start_low = bias ? _mm512_maskz_loadu_ps(low_mask, bias) : zero;
    const __m512 start_high = bias ? _mm512_maskz_loadu_ps(high_mask, bias + 16) : zero;
    CK_LOAD(0); CK_LOAD(1); CK_LOAD(2); CK_LOAD(3); CK_LOAD(4); CK_LOAD(5);
    CK_LOAD(6); CK_LOAD(7); CK_LOAD(8); CK_LOAD(9); CK_LOAD(10); CK_LOAD(11);
    const uint32_t *p = panel;
    for (long q = 0; q < pairs; q++) {
        __m512bh low = (__m512bh)_mm512_loadu_si512(p);
        __m512bh high = halves == 2 ? (__m512bh)_mm512_loadu_si512(p + 16) : (__m512bh)_mm512_setzero_si512();
        CK_PREFETCH_PANEL(p);
        CK_BF16_ROW(0); CK_BF16_ROW(1); CK_BF16_ROW(2); CK_BF16_ROW(3); CK_BF16_ROW(4); CK_BF16_ROW(5);
        CK_BF16_ROW(6); CK_BF16_ROW(7); CK_BF16_ROW(8); CK_BF16_ROW(9); CK_BF16_ROW(10); CK_BF16_ROW(11);
        p += 32;
    }
    CK_STORE(0); CK_STORE(1); CK_STORE(2); CK_STORE(3); CK_STORE(4); CK_STORE(5);
    CK_STORE(6); CK_STORE(7); CK_STORE(8); CK_STORE(9); CK_STORE(10); CK_STORE(11);
}

#define CK_BF16_CASE(r)                                                                                   \
    case r:                                                                                               \
        if (columns > 16) {                                                                               \
            ck_bf16_block(a, lda, panel, pairs, c, ldc, r, 2, low_mask, high_mask, overwrite, bias);      \
        } else {                                                                                          \
            ck_bf16_block(a, lda, panel, pairs, c, ldc, r, 1, low_mask, high_mask, overwrite, bias);      \
        }                                                                                                 \
        break

__attribute__((target("avx512f,avx512bf16")))
void ck_bf16_tile(const uint32_t *a, long lda, const uint32_t *panel, long pairs, float *c, long ldc, long rows,
                  long columns, int overwrite, const float *bias) {
    if (rows == 12 && columns == 32) {
        ck_bf16_block(a, lda, panel, pairs, c, ldc, 12, 2, 0xFFFF, 0xFFFF, overwrite, bias);
        return;
    }
    __mmask16 low_mask = ck_first_lanes(columns), high_mask = ck_first_lanes(columns - 16);
    switch (rows) {
        CK_BF16_CASE(1); CK_BF16_CASE(2); CK_BF16_CASE(3); CK_BF16_CASE(4); CK_BF16_CASE(5); CK_BF16_CASE(6);
        CK_BF16_CASE(7); CK_BF16_CASE(8); CK_BF16_CASE(9); CK_BF16_CASE(10); CK_BF16_CASE(11);
        default: CK_BF16_CASE(12);
    }
}

__attribute__((target("avx512f,avx512bf16")))
float ck_bf16_dot_loop(long steps, float seed) {
    const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3F803F80), y = (__m512bh)_mm512_set1_epi32(0x33D633D6);
    __m512 acc[24];
    for (int i = 0; i < 24; i++) acc[i] = _mm512_set1_ps(seed + (float)i);
    for (long s = 0; s < steps; s++) {
        for (int i = 0; i < 24; i++) acc[i] = _mm512_dpbf16_ps(acc[i], x, y);
    }
    __m512 sum = acc[0];
    for (int i = 1; i < 24; i++) sum = _mm512_add_ps(sum, acc[i]);
    return _mm512_reduce_add_ps(sum);
}
