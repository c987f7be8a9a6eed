/* gate.c — the softmax gate over experts of MMoE / PLE (nn_graph.h).
 *   logits = x W^T + b [N, E];  g = softmax(logits);  y[n] = Σ_e g[n, e] experts[e, n]
 * Backward: dexperts[e, n] += g[n, e] dy[n];  dg[n, e] = dy[n] · experts[e, n];
 *           dlogits = g ⊙ (dg − Σ_e g dg);  then the linear layer's backward. */
#include "seqrec/nn.h"

#include <math.h>
#include <string.h>

int sq_nn_gate_init(sq_nn_gate *l, sq_params *ps, const char *prefix, int C, int E) {
    memset(l, 0, sizeof *l);
    if (C <= 0 || E <= 0)
        return -1;
    l->C = C;
    l->E = E;
    return sq_nn_linear_init(&l->lin, ps, prefix, C, E, 1);
}

void sq_nn_gate_reset(const sq_nn_gate *l, sq_params *ps, sq_rng *rng) {
    sq_nn_linear_reset(&l->lin, ps, rng);
}

sq_status sq_nn_gate_forward(const sq_nn_gate *l, const sq_params *ps, sq_arena *a,
                             sq_nn_gate_acts *acts, float *y, const float *x, const float *experts,
                             int N, int D, sq_error *err) {
    const int E = l->E;
    if (N < 0 || D <= 0)
        return sq_errorf(err, SQ_ERR_ARG, "gate: bad sizes N=%d D=%d", N, D);
    acts->N = N;
    acts->D = D;
    acts->x = x;
    acts->experts = experts;
    acts->g = NULL;
    if (N == 0)
        return SQ_OK;
    if (!(acts->g = sq_arena_alloc(a, (size_t)N * E * sizeof *acts->g)))
        return sq_errorf(err, SQ_ERR_NOMEM, "gate: arena full");
    float *g = acts->g;
    sq_nn_linear_forward(g, x, sq_nn_val(ps, l->lin.w), sq_nn_val(ps, l->lin.b), N, l->C, E);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *gn = g + (size_t)n * E, m = gn[0], s = 0.0f;
        for (int e = 1; e < E; e++)
            m = gn[e] > m ? gn[e] : m;
        for (int e = 0; e < E; e++)
            s += (gn[e] = expf(gn[e] - m));
        for (int e = 0; e < E; e++)
            gn[e] /= s;
        float *yn = y + (size_t)n * D;
        for (int j = 0; j < D; j++)
            yn[j] = 0.0f;
        for (int e = 0; e < E; e++) {
            const float w = gn[e], *xe = experts + ((size_t)e * N + n) * D;
            for (int j = 0; j < D; j++)
                yn[j] += w * xe[j];
        }
    }
    return SQ_OK;
}

sq_status sq_nn_gate_backward(const sq_nn_gate *l, sq_params *ps, sq_arena *a,
                              const sq_nn_gate_acts *acts, float *dx, float *dexperts,
                              const float *dy, sq_error *err) {
    const int N = acts->N, D = acts->D, E = l->E;
    if (N == 0)
        return SQ_OK;
    float *dlog = sq_arena_alloc(a, (size_t)N * E * sizeof *dlog);
    if (!dlog)
        return sq_errorf(err, SQ_ERR_NOMEM, "gate: arena full");
    const float *g = acts->g, *ex = acts->experts;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *gn = g + (size_t)n * E, *dyn = dy + (size_t)n * D;
        float *dl = dlog + (size_t)n * E, dot = 0.0f;
        for (int e = 0; e < E; e++) {
            const float *xe = ex + ((size_t)e * N + n) * D;
            float dg = 0.0f;
            for (int j = 0; j < D; j++)
                dg += dyn[j] * xe[j];
            dl[e] = dg;
            dot += gn[e] * dg;
            if (dexperts) {
                float *de = dexperts + ((size_t)e * N + n) * D;
                for (int j = 0; j < D; j++)
                    de[j] += gn[e] * dyn[j];
            }
        }
        for (int e = 0; e < E; e++)
            dl[e] = gn[e] * (dl[e] - dot);
    }
    sq_nn_linear_backward(dx, sq_nn_grad(ps, l->lin.w), sq_nn_grad(ps, l->lin.b), dlog, acts->x,
                          sq_nn_val(ps, l->lin.w), N, l->C, E);
    return SQ_OK;
}
