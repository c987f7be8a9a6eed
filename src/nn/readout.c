/* readout.c — SR-GNN's soft-attention readout (nn_graph.h): each session's positions are
 * weighted by their agreement with the last one and summed, then mixed with the last position.
 *
 * Forward, S sessions in rows off[s] .. off[s+1] − 1 of x [N, d], last row l(s):
 *   cat[s, :d] = x[l(s)]                                         v_last
 *   u = cat[:, :d] W1^T + b1  [S, d];   pre_i = u[s(i)] + x_i W2^T   [N, d]
 *   e_i = σ(pre_i),  α_i = q · e_i,  cat[s, d:] = Σ_i α_i x_i      s_g
 *   y = cat W3^T + b3                                              [S, d]
 * Backward, from dy:
 *   dcat = dy W3 (and dW3, db3);  dx[l(s)] += dcat[s, :d]
 *   dα_i = dcat[s, d:] · x_i,  dx_i += α_i dcat[s, d:],  dq += Σ dα_i e_i
 *   dpre_i = dα_i q ⊙ e_i (1 − e_i);  dW2 += dpreᵀ x,  dx += dpre W2
 *   du[s] = Σ_{i in s} dpre_i;  dW1 += duᵀ v_last,  db1 += Σ du,  dx[l(s)] += du W1 */
#include "seqrec/nn.h"

#include <math.h>
#include <string.h>

int sq_nn_readout_init(sq_nn_readout *l, sq_params *ps, const char *prefix, int d) {
    memset(l, 0, sizeof *l);
    if (d <= 0 || !prefix)
        return -1;
    l->d = d;
    size_t dd[2] = {(size_t)d, (size_t)d}, d2[2] = {(size_t)d, (size_t)2 * d}, vd[1] = {(size_t)d};
    l->w1 = (sq_nn_linear){.C = d, .O = d};
    l->w2 = (sq_nn_linear){.C = d, .O = d, .b = -1};
    l->w3 = (sq_nn_linear){.C = 2 * d, .O = d};
    l->w1.w = sq_nn_declare(ps, prefix, "w1", 2, dd, 0);
    l->w1.b = sq_nn_declare(ps, prefix, "b1", 1, vd, 0);
    l->w2.w = sq_nn_declare(ps, prefix, "w2", 2, dd, 0);
    l->q = sq_nn_declare(ps, prefix, "q", 1, vd, 0);
    l->w3.w = sq_nn_declare(ps, prefix, "w3", 2, d2, 0);
    l->w3.b = sq_nn_declare(ps, prefix, "b3", 1, vd, 0);
    int rc = l->w1.w < 0 || l->w2.w < 0 || l->w3.w < 0;
    if (rc || l->w1.b < 0 || l->w3.b < 0 || l->q < 0)
        return -1;
    return 0;
}

void sq_nn_readout_reset(const sq_nn_readout *l, sq_params *ps, sq_rng *rng) {
    const float s = 1.0f / sqrtf((float)l->d);
    const sq_nn_linear *lins[3] = {&l->w1, &l->w2, &l->w3};
    for (int i = 0; i < 3; i++) {
        sq_nn_fill_uniform(sq_nn_val(ps, lins[i]->w), (size_t)lins[i]->O * lins[i]->C, -s, s, rng);
        if (lins[i]->b >= 0)
            sq_nn_fill_uniform(sq_nn_val(ps, lins[i]->b), (size_t)lins[i]->O, -s, s, rng);
    }
    sq_nn_fill_uniform(sq_nn_val(ps, l->q), (size_t)l->d, -s, s, rng);
}

sq_status sq_nn_readout_forward(const sq_nn_readout *l, const sq_params *ps, sq_arena *a,
                                sq_nn_readout_acts *acts, float *y, const float *x,
                                const uint32_t *off, int S, sq_error *err) {
    const int d = l->d;
    memset(acts, 0, sizeof *acts);
    if (S <= 0 || !x || !y || !off || off[0] != 0)
        return sq_errorf(err, SQ_ERR_ARG, "readout: bad input (S=%d)", S);
    for (int s = 0; s < S; s++)
        if (off[s + 1] <= off[s])
            return sq_errorf(err, SQ_ERR_ARG, "readout: session %d is empty", s);
    const int N = (int)off[S];
    acts->S = S;
    acts->N = N;
    acts->x = x;
    acts->off = off;
    acts->e = sq_arena_alloc(a, (size_t)N * d * sizeof(float));
    acts->alpha = sq_arena_alloc(a, (size_t)N * sizeof(float));
    acts->cat = sq_arena_alloc(a, (size_t)S * 2 * d * sizeof(float));
    float *u = sq_arena_alloc(a, (size_t)S * d * sizeof(float));
    if (!acts->e || !acts->alpha || !acts->cat || !u)
        return sq_errorf(err, SQ_ERR_NOMEM, "readout: arena full");
    for (int s = 0; s < S; s++)
        memcpy(acts->cat + (size_t)s * 2 * d, x + (size_t)(off[s + 1] - 1) * d,
               (size_t)d * sizeof(float));
    sq_nn_linear_forward_ld(u, d, acts->cat, 2 * d, sq_nn_val(ps, l->w1.w), sq_nn_val(ps, l->w1.b),
                            S, d, d);
    sq_nn_linear_forward(acts->e, x, sq_nn_val(ps, l->w2.w), NULL, N, d, d);
    const float *q = sq_nn_val(ps, l->q);
#pragma omp parallel for schedule(static) if ((long)N * d > 32768)
    for (int s = 0; s < S; s++) {
        float *sg = acts->cat + (size_t)s * 2 * d + d;
        memset(sg, 0, (size_t)d * sizeof(float));
        for (uint32_t i = off[s]; i < off[s + 1]; i++) {
            float *ei = acts->e + (size_t)i * d;
            const float *xi = x + (size_t)i * d, *us = u + (size_t)s * d;
            float al = 0.0f;
            for (int j = 0; j < d; j++) {
                ei[j] = 1.0f / (1.0f + expf(-(ei[j] + us[j])));
                al += q[j] * ei[j];
            }
            acts->alpha[i] = al;
            for (int j = 0; j < d; j++)
                sg[j] += al * xi[j];
        }
    }
    sq_nn_linear_forward(y, acts->cat, sq_nn_val(ps, l->w3.w), sq_nn_val(ps, l->w3.b), S, 2 * d, d);
    return SQ_OK;
}

sq_status sq_nn_readout_backward(const sq_nn_readout *l, sq_params *ps, sq_arena *a,
                                 const sq_nn_readout_acts *acts, float *dx, const float *dy,
                                 sq_error *err) {
    const int d = l->d, S = acts->S, N = acts->N;
    const uint32_t *off = acts->off;
    const float *x = acts->x, *q = sq_nn_val(ps, l->q);
    float *dcat = sq_arena_calloc(a, (size_t)S * 2 * d * sizeof(float));
    float *dpre = sq_arena_alloc(a, (size_t)N * d * sizeof(float));
    float *du = sq_arena_calloc(a, (size_t)S * d * sizeof(float));
    float *dqs = sq_arena_calloc(a, (size_t)S * d * sizeof(float)); /* dq per session */
    if (!dcat || !dpre || !du || !dqs)
        return sq_errorf(err, SQ_ERR_NOMEM, "readout: arena full");
    sq_nn_linear_backward(dcat, sq_nn_grad(ps, l->w3.w), sq_nn_grad(ps, l->w3.b), dy, acts->cat,
                          sq_nn_val(ps, l->w3.w), S, 2 * d, d);
    /* rows of one session are its own: sessions in parallel write disjoint rows of dx */
#pragma omp parallel for schedule(static) if ((long)N * d > 32768)
    for (int s = 0; s < S; s++) {
        const float *dsg = dcat + (size_t)s * 2 * d + d;
        float *dus = du + (size_t)s * d, *dq = dqs + (size_t)s * d;
        for (uint32_t i = off[s]; i < off[s + 1]; i++) {
            const float *xi = x + (size_t)i * d, *ei = acts->e + (size_t)i * d;
            float *dp = dpre + (size_t)i * d;
            float dal = 0.0f;
            for (int j = 0; j < d; j++)
                dal += dsg[j] * xi[j];
            for (int j = 0; j < d; j++) {
                dq[j] += dal * ei[j];
                dp[j] = dal * q[j] * ei[j] * (1.0f - ei[j]);
                dus[j] += dp[j];
            }
            if (dx) {
                float *dxi = dx + (size_t)i * d;
                for (int j = 0; j < d; j++)
                    dxi[j] += acts->alpha[i] * dsg[j];
            }
        }
    }
    float *gq = sq_nn_grad(ps, l->q);
    for (int s = 0; s < S; s++) /* fixed order: independent of the thread count */
        for (int j = 0; j < d; j++)
            gq[j] += dqs[(size_t)s * d + j];
    /* e = σ(u[s(i)] + x W2^T): dW2 and dx through W2; u = v_last W1^T + b1: dW1, db1 and
     * dv_last, which joins the direct dcat[:, :d] and is scattered to each session's last row */
    sq_nn_linear_backward(dx, sq_nn_grad(ps, l->w2.w), NULL, dpre, x, sq_nn_val(ps, l->w2.w), N, d,
                          d);
    sq_nn_linear_backward_ld(dcat, 2 * d, sq_nn_grad(ps, l->w1.w), sq_nn_grad(ps, l->w1.b), du, d,
                             acts->cat, sq_nn_val(ps, l->w1.w), S, d, d);
    if (dx)
        for (int s = 0; s < S; s++) {
            float *dxl = dx + (size_t)(off[s + 1] - 1) * d;
            const float *dv = dcat + (size_t)s * 2 * d;
            for (int j = 0; j < d; j++)
                dxl[j] += dv[j];
        }
    return SQ_OK;
}
