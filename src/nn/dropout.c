/* dropout.c — inverted dropout (Srivastava et al. 2014): kept values are scaled by 1/(1-p) at
 * training time so inference is the identity. The mask is counter-based: one draw from the
 * caller's RNG per call seeds independent streams, one per block of SQ_NN_DROPOUT_BLOCK
 * elements, so blocks can be filled by any thread and the mask never depends on the thread
 * count. The mask is kept (one byte per element) for backward. */
#include "seqrec/nn.h"

#include <string.h>

void sq_nn_dropout_forward(float *y, uint8_t *mask, const float *x, size_t n, float p,
                           sq_rng *rng) {
    if (!rng || p <= 0.0f) {
        if (y != x)
            memcpy(y, x, n * sizeof *y);
        return;
    }
    uint64_t seed = sq_rng_u64(rng);
    /* keep when a uniform 32-bit draw is >= p * 2^32 */
    uint64_t thr64 = (uint64_t)((double)p * 4294967296.0);
    uint32_t thr = thr64 > UINT32_MAX ? UINT32_MAX : (uint32_t)thr64;
    float scale = 1.0f / (1.0f - p);
    long nblk = (long)((n + SQ_NN_DROPOUT_BLOCK - 1) / SQ_NN_DROPOUT_BLOCK);
#pragma omp parallel for schedule(static) if (nblk > 1)
    for (long k = 0; k < nblk; k++) {
        sq_rng r = sq_rng_derive(seed, (uint64_t)k);
        size_t i0 = (size_t)k * SQ_NN_DROPOUT_BLOCK;
        size_t i1 = i0 + SQ_NN_DROPOUT_BLOCK < n ? i0 + SQ_NN_DROPOUT_BLOCK : n;
        for (size_t i = i0; i < i1; i += 2) {
            uint64_t u = sq_rng_u64(&r); /* two decisions per draw */
            uint32_t u0 = (uint32_t)u, u1 = (uint32_t)(u >> 32);
            uint8_t m0 = u0 >= thr;
            if (mask)
                mask[i] = m0;
            y[i] = m0 ? x[i] * scale : 0.0f;
            if (i + 1 < i1) {
                uint8_t m1 = u1 >= thr;
                if (mask)
                    mask[i + 1] = m1;
                y[i + 1] = m1 ? x[i + 1] * scale : 0.0f;
            }
        }
    }
}

void sq_nn_dropout_backward(float *dx, const float *dy, const uint8_t *mask, size_t n, float p) {
    if (!mask || p <= 0.0f) {
#pragma omp parallel for schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++)
            dx[i] += dy[i];
        return;
    }
    float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        dx[i] += mask[i] ? dy[i] * scale : 0.0f;
}
