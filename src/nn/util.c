/* util.c — small helpers shared by the layers: prefixed parameter names, initial values,
 * ordered column sums (bias and norm gradients) and row masking. */
#include "seqrec/nn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int sq_nn_declare(sq_params *ps, const char *prefix, const char *name, int ndim,
                  const size_t *shape, int sparse_rows) {
    char full[SQ_PARAM_NAME_MAX];
    int n = prefix && *prefix ? snprintf(full, sizeof full, "%s.%s", prefix, name)
                              : snprintf(full, sizeof full, "%s", name);
    if (n < 0 || (size_t)n >= sizeof full)
        return -1;
    return sq_params_declare(ps, full, ndim, shape, sparse_rows);
}

void sq_nn_fill(float *x, size_t n, float v) {
    for (size_t i = 0; i < n; i++)
        x[i] = v;
}

void sq_nn_fill_normal(float *x, size_t n, float std, sq_rng *rng) {
    for (size_t i = 0; i < n; i++)
        x[i] = (float)sq_rng_normal(rng) * std;
}

void sq_nn_fill_uniform(float *x, size_t n, float lo, float hi, sq_rng *rng) {
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * sq_rng_uniformf(rng);
}

void sq_nn_fill_xavier(float *w, int out, int in, sq_rng *rng) {
    sq_nn_fill_normal(w, (size_t)out * in, sqrtf(2.0f / (float)(out + in)), rng);
}

/* Columns in blocks of 16 (a cache line) so each thread reads whole lines; every column is
 * summed over rows 0..N-1 in order, so the result does not depend on the thread count. */
void sq_nn_colsum_acc(float *acc, const float *x, int N, int C, int ldx) {
    enum { CB = 16 };
    int nb = (C + CB - 1) / CB;
#pragma omp parallel for schedule(static) if ((long)N * C > 32768)
    for (int cb = 0; cb < nb; cb++) {
        int c0 = cb * CB, w = C - c0 < CB ? C - c0 : CB;
        float s[CB] = {0};
        if (w == CB) /* fixed trip count: one vector register */
            for (int n = 0; n < N; n++) {
                const float *row = x + (size_t)n * ldx + c0;
                for (int c = 0; c < CB; c++)
                    s[c] += row[c];
            }
        else
            for (int n = 0; n < N; n++) {
                const float *row = x + (size_t)n * ldx + c0;
                for (int c = 0; c < w; c++)
                    s[c] += row[c];
            }
        for (int c = 0; c < w; c++)
            acc[c0 + c] += s[c];
    }
}

void sq_nn_mask_rows(float *x, const uint8_t *pad, int N, int C) {
    if (!pad)
        return;
    for (int n = 0; n < N; n++)
        if (pad[n])
            memset(x + (size_t)n * C, 0, (size_t)C * sizeof *x);
}
