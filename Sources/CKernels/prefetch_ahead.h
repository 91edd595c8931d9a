#ifndef CK_PREFETCH_AHEAD_H
#define CK_PREFETCH_AHEAD_H

#include <immintrin.h>

// The rows of A that the next blocks read, prefetched into L2 one line a step of a block's
// loop (see ck_avx512_tile_12x32_rows in CKernels.h): `lines` lines left, along rows of
// `depth` floats `stride` apart.
typedef struct {
    const float *row;
    long column, lines, depth, stride;
} ck_ahead;

// The plan for `rows` rows from `next` (none when next is null).
static inline ck_ahead ck_ahead_start(const float *next, long rows, long depth, long stride) {
    ck_ahead ahead = {next, 0, next ? rows * ((depth + 15) / 16) : 0, depth, stride};
    return ahead;
}

// Prefetches the next line of the plan, if any is left.
static inline void ck_ahead_step(ck_ahead *ahead) {
    if (ahead->lines <= 0) return;
    _mm_prefetch((const char *)(ahead->row + ahead->column), _MM_HINT_T1);
    ahead->column += 16;
    if (ahead->column >= ahead->depth) {
        ahead->column = 0;
        ahead->row += ahead->stride;
    }
    ahead->lines--;
}

#endif
