#include "CKernels.h"

#include <immintrin.h>

// A 12 x 32 block of C in 24 of the 32 vector registers; per step of depth, two vector
// loads of the panel and twelve broadcasts of the sliver feed 24 fused multiply-adds.

#define CK_ROW(r)                                                    \
    do {                                                             \
        __m512 s = _mm512_set1_ps(a[r]);                             \
        c##r##l = _mm512_fmadd_ps(s, low, c##r##l);                  \
        c##r##h = _mm512_fmadd_ps(s, high, c##r##h);                 \
    } while (0)

#define CK_LOAD(r)                                                   \
    __m512 c##r##l = overwrite ? zero : _mm512_loadu_ps(c + (r) * ldc);      \
    __m512 c##r##h = overwrite ? zero : _mm512_loadu_ps(c + (r) * ldc + 16)

#define CK_STORE(r)                                                  \
    _mm512_storeu_ps(c + (r) * ldc, c##r##l);                        \
    _mm512_storeu_ps(c + (r) * ldc + 16, c##r##h)

__attribute__((target("avx512f")))
void ck_avx512_tile_12x32(const float *sliver, const float *panel, long depth, float *c, long ldc,
                          int overwrite) {
    const __m512 zero = _mm512_setzero_ps();
    CK_LOAD(0); CK_LOAD(1); CK_LOAD(2); CK_LOAD(3); CK_LOAD(4); CK_LOAD(5);
    CK_LOAD(6); CK_LOAD(7); CK_LOAD(8); CK_LOAD(9); CK_LOAD(10); CK_LOAD(11);
    const float *a = sliver, *p = panel;
    for (long l = 0; l < depth; l++) {
        __m512 low = _mm512_loadu_ps(p), high = _mm512_loadu_ps(p + 16);
        CK_ROW(0); CK_ROW(1); CK_ROW(2); CK_ROW(3); CK_ROW(4); CK_ROW(5);
        CK_ROW(6); CK_ROW(7); CK_ROW(8); CK_ROW(9); CK_ROW(10); CK_ROW(11);
        p += 32;
        a += 12;
    }
    CK_STORE(0); CK_STORE(1); CK_STORE(2); CK_STORE(3); CK_STORE(4); CK_STORE(5);
    CK_STORE(6); CK_STORE(7); CK_STORE(8); CK_STORE(9); CK_STORE(10); CK_STORE(11);
}

// 24 chains: more than the FMA latency (4 cycles) times the FMA units (2), so the loop is
// limited by the units alone.
#define CK_FMA_LOOP(VEC, SET1, FMA, ADD, REDUCE)                                   \
    VEC x = SET1(0.999999f), y = SET1(1e-7f), acc[24];                              \
    for (int i = 0; i < 24; i++) acc[i] = SET1(seed + (float)i);                    \
    for (long s = 0; s < steps; s++) {                                              \
        for (int i = 0; i < 24; i++) acc[i] = FMA(acc[i], x, y);                   \
    }                                                                               \
    VEC sum = acc[0];                                                               \
    for (int i = 1; i < 24; i++) sum = ADD(sum, acc[i]);                            \
    return REDUCE(sum)

__attribute__((target("avx512f")))
float ck_avx512_fma_loop(long steps, float seed) {
    CK_FMA_LOOP(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_reduce_add_ps);
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
    CK_FMA_LOOP(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, ck_avx2_sum);
}
