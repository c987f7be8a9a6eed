/* ffn.c — position-wise feed-forward: y = dropout(fc2(act(dropout(fc1(x))))), applied to every
 * row independently (Vaswani et al. 2017; the original SASRec code drops after both layers). */
#include "seqrec/nn.h"

#include <stdio.h>
#include <string.h>

int sq_nn_ffn_init(sq_nn_ffn *l, sq_params *ps, const char *prefix, int C, int F, sq_nn_act act,
                   float p_drop) {
    char name[SQ_PARAM_NAME_MAX];
    if (p_drop < 0.0f || p_drop >= 1.0f)
        return -1;
    l->act = act;
    l->p_drop = p_drop;
    int n = snprintf(name, sizeof name, "%s.fc1", prefix);
    if (n < 0 || (size_t)n >= sizeof name || sq_nn_linear_init(&l->fc1, ps, name, C, F, 1) < 0)
        return -1;
    snprintf(name, sizeof name, "%s.fc2", prefix);
    return sq_nn_linear_init(&l->fc2, ps, name, F, C, 1);
}

void sq_nn_ffn_reset(const sq_nn_ffn *l, sq_params *ps, sq_rng *rng) {
    sq_nn_linear_reset(&l->fc1, ps, rng);
    sq_nn_linear_reset(&l->fc2, ps, rng);
}

/* x: [N, C] -> y: [N, C]; keeps h = dropout(fc1(x)) [N, F], g = act(h) [N, F], masks. */
sq_status sq_nn_ffn_forward(const sq_nn_ffn *l, const sq_params *ps, sq_arena *a,
                            sq_nn_ffn_acts *acts, float *y, const float *x, int N, sq_rng *rng,
                            sq_error *err) {
    const int C = l->fc1.C, F = l->fc1.O;
    const size_t nf = (size_t)N * F, nc = (size_t)N * C;
    int drop = rng && l->p_drop > 0.0f;
    memset(acts, 0, sizeof *acts);
    acts->N = N;
    acts->x = x;
    acts->h = sq_arena_alloc(a, nf * sizeof(float));
    acts->g = l->act == SQ_ACT_NONE ? acts->h : sq_arena_alloc(a, nf * sizeof(float));
    if (drop) {
        acts->m1 = sq_arena_alloc(a, nf);
        acts->m2 = sq_arena_alloc(a, nc);
    }
    if (!acts->h || !acts->g || (drop && (!acts->m1 || !acts->m2)))
        return sq_errorf(err, SQ_ERR_NOMEM, "ffn: arena full (N=%d C=%d F=%d)", N, C, F);
    sq_nn_linear_forward(acts->h, x, sq_nn_val(ps, l->fc1.w), sq_nn_val(ps, l->fc1.b), N, C, F);
    if (drop)
        sq_nn_dropout_forward(acts->h, acts->m1, acts->h, nf, l->p_drop, rng);
    if (acts->g != acts->h)
        sq_nn_act_forward(l->act, acts->g, acts->h, nf);
    sq_nn_linear_forward(y, acts->g, sq_nn_val(ps, l->fc2.w), sq_nn_val(ps, l->fc2.b), N, F, C);
    if (drop)
        sq_nn_dropout_forward(y, acts->m2, y, nc, l->p_drop, rng);
    return SQ_OK;
}

/* dx: [N, C] accumulated; needs x, h, g, masks from forward. */
sq_status sq_nn_ffn_backward(const sq_nn_ffn *l, sq_params *ps, sq_arena *a,
                             const sq_nn_ffn_acts *acts, float *dx, const float *dy,
                             sq_error *err) {
    const int N = acts->N, C = l->fc1.C, F = l->fc1.O;
    const size_t nf = (size_t)N * F, nc = (size_t)N * C;
    float *d2 = acts->m2 ? sq_arena_calloc(a, nc * sizeof(float)) : NULL;
    float *dg = sq_arena_calloc(a, nf * sizeof(float));
    float *dh = acts->g != acts->h ? sq_arena_calloc(a, nf * sizeof(float)) : dg;
    float *d1 = acts->m1 ? sq_arena_calloc(a, nf * sizeof(float)) : dh;
    if ((acts->m2 && !d2) || !dg || !dh || !d1)
        return sq_errorf(err, SQ_ERR_NOMEM, "ffn backward: arena full (N=%d)", N);
    if (d2)
        sq_nn_dropout_backward(d2, dy, acts->m2, nc, l->p_drop);
    else
        d2 = (float *)dy; /* read only below */
    sq_nn_linear_backward(dg, sq_nn_grad(ps, l->fc2.w), sq_nn_grad(ps, l->fc2.b), d2, acts->g,
                          sq_nn_val(ps, l->fc2.w), N, F, C);
    if (dh != dg)
        sq_nn_act_backward(l->act, dh, dg, acts->h, acts->g, nf);
    if (d1 != dh)
        sq_nn_dropout_backward(d1, dh, acts->m1, nf, l->p_drop);
    sq_nn_linear_backward(dx, sq_nn_grad(ps, l->fc1.w), sq_nn_grad(ps, l->fc1.b), d1, acts->x,
                          sq_nn_val(ps, l->fc1.w), N, C, F);
    return SQ_OK;
}
