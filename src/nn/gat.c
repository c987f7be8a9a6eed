/* gat.c — graph attention over one small graph (nn_graph.h), K heads concatenated.
 *
 * Forward:  z = x W^T;  s_src[j, k] = a_src[k] · z_k[j];  s_dst[i, k] = a_dst[k] · z_k[i];
 *           e = LeakyReLU(s_dst[i] + s_src[j]) on the adjacency;  α = softmax_j e;
 *           y_k = α_k z_k + b_k  (one sgemm per head).
 * Backward: db += Σ_i dy;  dα_k = dy_k z_k^T,  dz_k += α_k^T dy_k  (sgemms);
 *           de = α ⊙ (dα − Σ_j α dα);  dp = de · LeakyReLU'(p);
 *           ds_dst[i] = Σ_j dp[i, j],  ds_src[j] = Σ_i dp[i, j];
 *           dz_k[i] += ds_dst[i] a_dst[k] + ds_src[i] a_src[k];
 *           da_dst[k] += Σ_i ds_dst[i] z_k[i], da_src likewise;  then the linear backward. */
#include "seqrec/nn.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

int sq_nn_gat_init(sq_nn_gat *l, sq_params *ps, const char *prefix, int C, int F, int K,
                   float slope) {
    memset(l, 0, sizeof *l);
    if (C <= 0 || F <= 0 || K <= 0 || !(slope >= 0.0f))
        return -1;
    l->C = C;
    l->F = F;
    l->K = K;
    l->slope = slope;
    size_t ws[2] = {(size_t)K * F, (size_t)C}, as[2] = {(size_t)K, (size_t)F};
    size_t bs[1] = {(size_t)K * F};
    l->w = sq_nn_declare(ps, prefix, "w", 2, ws, 0);
    l->a_src = sq_nn_declare(ps, prefix, "a_src", 2, as, 0);
    l->a_dst = sq_nn_declare(ps, prefix, "a_dst", 2, as, 0);
    l->b = sq_nn_declare(ps, prefix, "b", 1, bs, 0);
    return l->w < 0 || l->a_src < 0 || l->a_dst < 0 || l->b < 0 ? -1 : 0;
}

void sq_nn_gat_reset(const sq_nn_gat *l, sq_params *ps, sq_rng *rng) {
    sq_nn_fill_xavier(sq_nn_val(ps, l->w), l->K * l->F, l->C, rng);
    sq_nn_fill_xavier(sq_nn_val(ps, l->a_src), l->K, l->F, rng);
    sq_nn_fill_xavier(sq_nn_val(ps, l->a_dst), l->K, l->F, rng);
    sq_nn_fill(sq_nn_val(ps, l->b), (size_t)l->K * l->F, 0.0f);
}

sq_status sq_nn_gat_forward(const sq_nn_gat *l, const sq_params *ps, sq_arena *a,
                            sq_nn_gat_acts *acts, float *y, const float *x, const uint8_t *adj,
                            int n, sq_error *err) {
    const int K = l->K, F = l->F, KF = K * F;
    memset(acts, 0, sizeof *acts);
    if (n <= 0 || !x || !adj || !y)
        return sq_errorf(err, SQ_ERR_ARG, "gat: bad input (n=%d)", n);
    acts->n = n;
    acts->x = x;
    acts->adj = adj;
    acts->z = sq_arena_alloc(a, (size_t)n * KF * sizeof(float));
    acts->s_src = sq_arena_alloc(a, (size_t)n * K * sizeof(float));
    acts->s_dst = sq_arena_alloc(a, (size_t)n * K * sizeof(float));
    acts->alpha = sq_arena_alloc(a, (size_t)K * n * n * sizeof(float));
    if (!acts->z || !acts->s_src || !acts->s_dst || !acts->alpha)
        return sq_errorf(err, SQ_ERR_NOMEM, "gat: arena full");
    const float *asrc = sq_nn_val(ps, l->a_src), *adst = sq_nn_val(ps, l->a_dst);
    const float *b = sq_nn_val(ps, l->b);
    float *z = acts->z;
    sq_nn_linear_forward(z, x, sq_nn_val(ps, l->w), NULL, n, l->C, KF);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < K; k++) {
            const float *zi = z + (size_t)i * KF + (size_t)k * F;
            float ss = 0.0f, sd = 0.0f;
            for (int f = 0; f < F; f++) {
                ss += asrc[k * F + f] * zi[f];
                sd += adst[k * F + f] * zi[f];
            }
            acts->s_src[i * K + k] = ss;
            acts->s_dst[i * K + k] = sd;
        }
    for (int k = 0; k < K; k++) {
        for (int i = 0; i < n; i++) {
            float *al = acts->alpha + ((size_t)k * n + i) * n, m = -INFINITY, s = 0.0f;
            const uint8_t *nb = adj + (size_t)i * n;
            for (int j = 0; j < n; j++) {
                if (!nb[j])
                    continue;
                float p = acts->s_dst[i * K + k] + acts->s_src[j * K + k];
                al[j] = p > 0.0f ? p : l->slope * p;
                m = al[j] > m ? al[j] : m;
            }
            for (int j = 0; j < n; j++)
                s += nb[j] ? (al[j] = expf(al[j] - m)) : (al[j] = 0.0f);
            if (s > 0.0f)
                for (int j = 0; j < n; j++)
                    al[j] /= s;
        }
        for (int i = 0; i < n; i++)
            memcpy(y + (size_t)i * KF + k * F, b + k * F, F * sizeof *y);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, F, n, 1.0f,
                    acts->alpha + (size_t)k * n * n, n, z + k * F, KF, 1.0f, y + k * F, KF);
    }
    return SQ_OK;
}

sq_status sq_nn_gat_backward(const sq_nn_gat *l, sq_params *ps, sq_arena *a,
                             const sq_nn_gat_acts *acts, float *dx, const float *dy,
                             sq_error *err) {
    const int K = l->K, F = l->F, KF = K * F, n = acts->n;
    const float *z = acts->z, *asrc = sq_nn_val(ps, l->a_src), *adst = sq_nn_val(ps, l->a_dst);
    float *dasrc = sq_nn_grad(ps, l->a_src), *dadst = sq_nn_grad(ps, l->a_dst);
    float *dz = sq_arena_calloc(a, (size_t)n * KF * sizeof(float));
    float *dal = sq_arena_alloc(a, (size_t)n * n * sizeof(float));
    float *dsd = sq_arena_alloc(a, (size_t)n * sizeof(float));
    float *dss = sq_arena_alloc(a, (size_t)n * sizeof(float));
    if (!dz || !dal || !dsd || !dss)
        return sq_errorf(err, SQ_ERR_NOMEM, "gat: arena full");
    sq_nn_colsum_acc(sq_nn_grad(ps, l->b), dy, n, KF, KF);
    for (int k = 0; k < K; k++) {
        const float *al = acts->alpha + (size_t)k * n * n, *zk = z + k * F;
        /* dα = dy_k z_k^T;  dz_k += α^T dy_k */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, F, 1.0f, dy + k * F, KF, zk, KF,
                    0.0f, dal, n);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, F, n, 1.0f, al, n, dy + k * F, KF,
                    1.0f, dz + k * F, KF);
        memset(dss, 0, (size_t)n * sizeof *dss);
        for (int i = 0; i < n; i++) {
            const float *ai = al + (size_t)i * n, *di = dal + (size_t)i * n;
            const uint8_t *nb = acts->adj + (size_t)i * n;
            float dot = 0.0f;
            for (int j = 0; j < n; j++)
                dot += ai[j] * di[j];
            float sd = 0.0f;
            for (int j = 0; j < n; j++) {
                if (!nb[j])
                    continue;
                float p = acts->s_dst[i * K + k] + acts->s_src[j * K + k];
                float dp = ai[j] * (di[j] - dot) * (p > 0.0f ? 1.0f : l->slope);
                sd += dp;
                dss[j] += dp;
            }
            dsd[i] = sd;
        }
        for (int i = 0; i < n; i++) {
            const float *zi = zk + (size_t)i * KF;
            float *dzi = dz + (size_t)i * KF + k * F;
            for (int f = 0; f < F; f++) {
                dzi[f] += dsd[i] * adst[k * F + f] + dss[i] * asrc[k * F + f];
                dadst[k * F + f] += dsd[i] * zi[f];
                dasrc[k * F + f] += dss[i] * zi[f];
            }
        }
    }
    sq_nn_linear_backward(dx, sq_nn_grad(ps, l->w), NULL, dz, acts->x, sq_nn_val(ps, l->w), n, l->C,
                          KF);
    return SQ_OK;
}
