/* topk.c — the k best items of a score vector: a small sorted insertion list, which beats a
 * heap for the k (≤ a few hundred) that recommendations ask for. Once the list is full, a
 * chunk of 64 scores whose maximum cannot enter it is skipped after one vectorised max (the
 * comparisons are false for NaN): on a 54,542-item catalogue almost every chunk is. */
#include "seqrec/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

uint32_t sq_topk_insert(uint32_t *ids, float *vals, uint32_t have, uint32_t k, uint32_t id,
                        float v) {
    uint32_t p = have < k ? have++ : k - 1;
    while (p > 0 && vals[p - 1] < v) {
        ids[p] = ids[p - 1];
        vals[p] = vals[p - 1];
        p--;
    }
    ids[p] = id;
    vals[p] = v;
    return have;
}

uint32_t sq_topk(const float *scores, uint32_t n, uint32_t k, const uint32_t *excluded,
                 size_t n_excluded, uint32_t *ids, float *vals) {
    enum { CH = 64 };
    if (k == 0)
        return 0;
    uint32_t *ex = NULL;
    if (n_excluded) {
        ex = sq_mallocn(n_excluded, sizeof *ex);
        if (ex) {
            memcpy(ex, excluded, n_excluded * sizeof *ex);
            qsort(ex, n_excluded, sizeof *ex, cmp_u32);
        }
    }
    uint32_t have = 0;
    for (uint32_t c0 = 0; c0 < n; c0 += CH) {
        const uint32_t c1 = n - c0 < CH ? n : c0 + CH;
        if (have == k) { /* skip a chunk none of whose scores can enter */
            float mx = -INFINITY;
            const float *x = scores + c0;
            const uint32_t len = c1 - c0;
#pragma omp simd reduction(max : mx)
            for (uint32_t i = 0; i < len; i++)
                mx = x[i] > mx ? x[i] : mx;
            if (!(mx > vals[k - 1]))
                continue;
        }
        for (uint32_t i = c0; i < c1; i++) {
            const float v = scores[i];
            if (isnan(v) || (have == k && v <= vals[k - 1]))
                continue;
            if (n_excluded) {
                int skip = 0;
                if (ex)
                    skip = bsearch(&i, ex, n_excluded, sizeof *ex, cmp_u32) != NULL;
                else
                    for (size_t j = 0; j < n_excluded && !skip; j++)
                        skip = excluded[j] == i;
                if (skip)
                    continue;
            }
            have = sq_topk_insert(ids, vals, have, k, i, v);
        }
    }
    sq_free(ex);
    return have;
}
