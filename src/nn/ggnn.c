/* ggnn.c — SR-GNN's gated graph cell (nn_graph.h): message passing over the in- and out-edges
 * of one session graph, then a GRU update of every node state.
 *
 * Forward, n nodes, width d:
 *   P_in = H W_in^T + b_in,  a[:, :d] = A_in P_in;  P_out likewise into a[:, d:]
 *   gx = a Wx^T + bx,  gh = H Wh^T + bh                        [n, 3d] each, gates r | z | n
 *   r = σ(gx_r + gh_r),  z = σ(gx_z + gh_z),  c = tanh(gx_n + r ⊙ gh_n)
 *   H' = (1 − z) ⊙ c + z ⊙ H
 * Backward, from dH':
 *   dc = dH' (1 − z),  dz = dH' (H − c),  dH += dH' z
 *   dn = dc (1 − c²):  dgx_n = dn,  dgh_n = dn r,  dr = dn gh_n
 *   dgx_z = dgh_z = dz z (1 − z),  dgx_r = dgh_r = dr r (1 − r)
 *   linear backward of gh (→ dH, dWh, dbh) and of gx (→ da, dWx, dbx)
 *   dP_in = A_in^T da[:, :d],  linear backward of P_in (→ dH, dW_in, db_in); out likewise. */
#include "seqrec/nn.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

int sq_nn_ggnn_init(sq_nn_ggnn *l, sq_params *ps, const char *prefix, int d) {
    memset(l, 0, sizeof *l);
    if (d <= 0 || !prefix)
        return -1;
    char name[SQ_PARAM_NAME_MAX];
    l->d = d;
    int rc = 0;
    snprintf(name, sizeof name, "%s.in", prefix);
    rc |= sq_nn_linear_init(&l->in, ps, name, d, d, 1);
    snprintf(name, sizeof name, "%s.out", prefix);
    rc |= sq_nn_linear_init(&l->out, ps, name, d, d, 1);
    /* GRU tensors named as nn_layers.h's GRU: "<prefix>.wx" [3d, 2d], ".bx", ".wh", ".bh" */
    size_t wx[2] = {(size_t)3 * d, (size_t)2 * d}, wh[2] = {(size_t)3 * d, (size_t)d};
    size_t b3[1] = {(size_t)3 * d};
    l->gx.C = 2 * d;
    l->gx.O = 3 * d;
    l->gh.C = d;
    l->gh.O = 3 * d;
    l->gx.w = sq_nn_declare(ps, prefix, "wx", 2, wx, 0);
    l->gh.w = sq_nn_declare(ps, prefix, "wh", 2, wh, 0);
    l->gx.b = sq_nn_declare(ps, prefix, "bx", 1, b3, 0);
    l->gh.b = sq_nn_declare(ps, prefix, "bh", 1, b3, 0);
    if (rc || l->gx.w < 0 || l->gh.w < 0 || l->gx.b < 0 || l->gh.b < 0)
        return -1;
    return 0;
}

void sq_nn_ggnn_reset(const sq_nn_ggnn *l, sq_params *ps, sq_rng *rng) {
    const float s = 1.0f / sqrtf((float)l->d);
    const sq_nn_linear *lins[4] = {&l->in, &l->out, &l->gx, &l->gh};
    for (int i = 0; i < 4; i++) {
        sq_nn_fill_uniform(sq_nn_val(ps, lins[i]->w), (size_t)lins[i]->O * lins[i]->C, -s, s, rng);
        sq_nn_fill_uniform(sq_nn_val(ps, lins[i]->b), (size_t)lins[i]->O, -s, s, rng);
    }
}

static float sigm(float x) {
    return 1.0f / (1.0f + expf(-x));
}

sq_status sq_nn_ggnn_forward(const sq_nn_ggnn *l, const sq_params *ps, sq_arena *a,
                             sq_nn_ggnn_acts *acts, float *y, const float *h, const float *A_in,
                             const float *A_out, int n, sq_error *err) {
    const int d = l->d;
    memset(acts, 0, sizeof *acts);
    if (n <= 0 || !h || !y || !A_in || !A_out)
        return sq_errorf(err, SQ_ERR_ARG, "ggnn: bad input (n=%d)", n);
    acts->n = n;
    acts->h = h;
    acts->A_in = A_in;
    acts->A_out = A_out;
    acts->a = sq_arena_alloc(a, (size_t)n * 2 * d * sizeof(float));
    acts->gates = sq_arena_alloc(a, (size_t)n * 3 * d * sizeof(float));
    acts->gh = sq_arena_alloc(a, (size_t)n * 3 * d * sizeof(float));
    float *P = sq_arena_alloc(a, (size_t)n * d * sizeof(float)); /* scratch: P_in, then P_out */
    if (!acts->a || !acts->gates || !acts->gh || !P)
        return sq_errorf(err, SQ_ERR_NOMEM, "ggnn: arena full");
    const sq_nn_linear *edge[2] = {&l->in, &l->out};
    const float *A[2] = {A_in, A_out};
    for (int s = 0; s < 2; s++) { /* a[:, s·d : (s+1)·d] = A_s (H W_s^T + b_s) */
        sq_nn_linear_forward(P, h, sq_nn_val(ps, edge[s]->w), sq_nn_val(ps, edge[s]->b), n, d, d);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, n, 1.0f, A[s], n, P, d, 0.0f,
                    acts->a + (size_t)s * d, 2 * d);
    }
    float *gx = acts->gates; /* gx is computed in place of the gates */
    sq_nn_linear_forward(gx, acts->a, sq_nn_val(ps, l->gx.w), sq_nn_val(ps, l->gx.b), n, 2 * d,
                         3 * d);
    sq_nn_linear_forward(acts->gh, h, sq_nn_val(ps, l->gh.w), sq_nn_val(ps, l->gh.b), n, d, 3 * d);
#pragma omp parallel for schedule(static) if ((long)n * d > 32768)
    for (int i = 0; i < n; i++) {
        float *gi = acts->gates + (size_t)i * 3 * d;
        const float *hh = acts->gh + (size_t)i * 3 * d, *hi = h + (size_t)i * d;
        float *yi = y + (size_t)i * d;
        for (int j = 0; j < d; j++) {
            float r = sigm(gi[j] + hh[j]);
            float z = sigm(gi[d + j] + hh[d + j]);
            float c = tanhf(gi[2 * d + j] + r * hh[2 * d + j]);
            gi[j] = r;
            gi[d + j] = z;
            gi[2 * d + j] = c;
            yi[j] = (1.0f - z) * c + z * hi[j];
        }
    }
    return SQ_OK;
}

sq_status sq_nn_ggnn_backward(const sq_nn_ggnn *l, sq_params *ps, sq_arena *a,
                              const sq_nn_ggnn_acts *acts, float *dh, const float *dy,
                              sq_error *err) {
    const int d = l->d, n = acts->n;
    const float *h = acts->h;
    float *dgx = sq_arena_alloc(a, (size_t)n * 3 * d * sizeof(float));
    float *dgh = sq_arena_alloc(a, (size_t)n * 3 * d * sizeof(float));
    float *da = sq_arena_calloc(a, (size_t)n * 2 * d * sizeof(float));
    float *dP = sq_arena_alloc(a, (size_t)n * d * sizeof(float));
    if (!dgx || !dgh || !da || !dP)
        return sq_errorf(err, SQ_ERR_NOMEM, "ggnn: arena full");
#pragma omp parallel for schedule(static) if ((long)n * d > 32768)
    for (int i = 0; i < n; i++) {
        const float *g = acts->gates + (size_t)i * 3 * d, *hh = acts->gh + (size_t)i * 3 * d;
        const float *hi = h + (size_t)i * d, *dyi = dy + (size_t)i * d;
        float *dx = dgx + (size_t)i * 3 * d, *dhh = dgh + (size_t)i * 3 * d;
        for (int j = 0; j < d; j++) {
            const float r = g[j], z = g[d + j], c = g[2 * d + j];
            float dc = dyi[j] * (1.0f - z), dz = dyi[j] * (hi[j] - c);
            float dn = dc * (1.0f - c * c);
            float dr = dn * hh[2 * d + j];
            float dzp = dz * z * (1.0f - z), drp = dr * r * (1.0f - r);
            dx[j] = dhh[j] = drp;
            dx[d + j] = dhh[d + j] = dzp;
            dx[2 * d + j] = dn;
            dhh[2 * d + j] = dn * r;
        }
        if (dh)
            for (int j = 0; j < d; j++)
                dh[(size_t)i * d + j] += dyi[j] * g[d + j];
    }
    /* gh = H Wh^T + bh;  gx = a Wx^T + bx */
    sq_nn_linear_backward(dh, sq_nn_grad(ps, l->gh.w), sq_nn_grad(ps, l->gh.b), dgh, h,
                          sq_nn_val(ps, l->gh.w), n, d, 3 * d);
    sq_nn_linear_backward(da, sq_nn_grad(ps, l->gx.w), sq_nn_grad(ps, l->gx.b), dgx, acts->a,
                          sq_nn_val(ps, l->gx.w), n, 2 * d, 3 * d);
    const sq_nn_linear *edge[2] = {&l->in, &l->out};
    const float *A[2] = {acts->A_in, acts->A_out};
    for (int s = 0; s < 2; s++) { /* dP_s = A_s^T da_s;  P_s = H W_s^T + b_s */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, d, n, 1.0f, A[s], n,
                    da + (size_t)s * d, 2 * d, 0.0f, dP, d);
        sq_nn_linear_backward(dh, sq_nn_grad(ps, edge[s]->w), sq_nn_grad(ps, edge[s]->b), dP, h,
                              sq_nn_val(ps, edge[s]->w), n, d, d);
    }
    return SQ_OK;
}
