/* layernorm.c — layer normalisation over the last dimension (Ba et al. 2016), as PyTorch's
 * nn.LayerNorm: biased variance, eps inside the square root. Forward keeps mean and 1/std per
 * row for backward. */
#include "seqrec/nn.h"

#include <math.h>

/* x, y: [N, C]; gamma, beta: [C]; mean, rstd: [N]. */
void sq_nn_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *gamma,
                             const float *beta, int N, int C, float eps) {
#pragma omp parallel for schedule(static) if ((long)N * C > 16384)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C;
        float *yr = y + (size_t)n * C;
        float m = 0.0f;
        for (int c = 0; c < C; c++)
            m += xr[c];
        m /= (float)C;
        float v = 0.0f;
        for (int c = 0; c < C; c++) {
            float d = xr[c] - m;
            v += d * d;
        }
        v /= (float)C;
        float s = 1.0f / sqrtf(v + eps);
        for (int c = 0; c < C; c++)
            yr[c] = (xr[c] - m) * s * gamma[c] + beta[c];
        mean[n] = m;
        rstd[n] = s;
    }
}

/* dx += rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma, xhat = (x - m) * rstd;
 * dgamma += sum_n dy * xhat; dbeta += sum_n dy. */
void sq_nn_layernorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                              const float *x, const float *mean, const float *rstd,
                              const float *gamma, int N, int C) {
    if (dx) {
#pragma omp parallel for schedule(static) if ((long)N * C > 16384)
        for (int n = 0; n < N; n++) {
            const float *xr = x + (size_t)n * C, *dyr = dy + (size_t)n * C;
            float *dxr = dx + (size_t)n * C;
            float m = mean[n], s = rstd[n], sg = 0.0f, sgx = 0.0f;
            for (int c = 0; c < C; c++) {
                float g = dyr[c] * gamma[c];
                sg += g;
                sgx += g * (xr[c] - m) * s;
            }
            sg /= (float)C;
            sgx /= (float)C;
            for (int c = 0; c < C; c++) {
                float xh = (xr[c] - m) * s;
                dxr[c] += s * (dyr[c] * gamma[c] - sg - xh * sgx);
            }
        }
    }
    if (!dgamma && !dbeta)
        return;
    /* per column over rows in order (deterministic); blocks of 16 columns per thread */
    enum { CB = 16 };
    int nb = (C + CB - 1) / CB;
#pragma omp parallel for schedule(static) if ((long)N * C > 32768)
    for (int cb = 0; cb < nb; cb++) {
        int c0 = cb * CB, w = C - c0 < CB ? C - c0 : CB;
        float sgm[CB] = {0}, sbt[CB] = {0};
        for (int n = 0; n < N; n++) {
            const float *xr = x + (size_t)n * C + c0, *dyr = dy + (size_t)n * C + c0;
            float m = mean[n], s = rstd[n];
            for (int c = 0; c < w; c++) {
                sgm[c] += dyr[c] * (xr[c] - m) * s;
                sbt[c] += dyr[c];
            }
        }
        for (int c = 0; c < w; c++) {
            if (dgamma)
                dgamma[c0 + c] += sgm[c];
            if (dbeta)
                dbeta[c0 + c] += sbt[c];
        }
    }
}

int sq_nn_layernorm_init(sq_nn_layernorm *l, sq_params *ps, const char *prefix, int C, float eps) {
    if (C <= 0 || !(eps > 0.0f))
        return -1;
    size_t s[1] = {(size_t)C};
    l->C = C;
    l->eps = eps;
    l->g = sq_nn_declare(ps, prefix, "g", 1, s, 0);
    l->b = sq_nn_declare(ps, prefix, "b", 1, s, 0);
    return l->g < 0 || l->b < 0 ? -1 : 0;
}

void sq_nn_layernorm_reset(const sq_nn_layernorm *l, sq_params *ps) {
    sq_nn_fill(sq_nn_val(ps, l->g), (size_t)l->C, 1.0f);
    sq_nn_fill(sq_nn_val(ps, l->b), (size_t)l->C, 0.0f);
}
