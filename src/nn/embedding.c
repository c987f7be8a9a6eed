/* embedding.c — table lookup y[n] = scale * table[ids[n]] with a padding id that reads as a zero
 * vector and receives no gradient. Backward is row-sparse: it adds into the gradient rows of the
 * ids seen and records them with sq_param_touch, so optimisers can update lazily and
 * sq_params_zero_grad clears only those rows. */
#include "seqrec/nn.h"

#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* ids: [N]; table: [V, C] -> y: [N, C]. */
sq_status sq_nn_embedding_forward(float *y, const uint32_t *ids, const float *table, int N, int V,
                                  int C, uint32_t pad_id, float scale, sq_error *err) {
    for (int n = 0; n < N; n++)
        if (ids[n] != pad_id && ids[n] >= (uint32_t)V)
            return sq_errorf(err, SQ_ERR_ARG, "embedding: id %u at position %d is not below %d",
                             ids[n], n, V);
#pragma omp parallel for schedule(static) if ((long)N * C > 32768)
    for (int n = 0; n < N; n++) {
        float *yr = y + (size_t)n * C;
        if (ids[n] == pad_id) {
            memset(yr, 0, (size_t)C * sizeof *yr);
            continue;
        }
        const float *tr = table + (size_t)ids[n] * C;
        for (int c = 0; c < C; c++)
            yr[c] = scale * tr[c];
    }
    return SQ_OK;
}

/* table->grad[ids[n]] += scale * dy[n]. Thread k owns the rows with id % threads == k, so no two
 * threads write the same row, and each row sums its n in increasing order. */
void sq_nn_embedding_backward(sq_param *table, const float *dy, const uint32_t *ids, int N,
                              uint32_t pad_id, float scale) {
    size_t C = table->size / table->shape[0];
    for (int n = 0; n < N; n++)
        if (ids[n] != pad_id)
            sq_param_touch(table, ids[n]);
    float *g = table->grad;
#pragma omp parallel if ((long)N * (long)C > 32768)
    {
        uint32_t nt = 1, me = 0;
#ifdef _OPENMP
        nt = (uint32_t)omp_get_num_threads();
        me = (uint32_t)omp_get_thread_num();
#endif
        for (int n = 0; n < N; n++) {
            uint32_t id = ids[n];
            if (id == pad_id || id % nt != me)
                continue;
            float *gr = g + (size_t)id * C;
            const float *dr = dy + (size_t)n * C;
            for (size_t c = 0; c < C; c++)
                gr[c] += scale * dr[c];
        }
    }
}
