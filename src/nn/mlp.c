/* mlp.c — a tower of Linear + activation layers with configurable widths (the multi-task heads'
 * towers). Forward keeps each layer's linear output z_i and activation output o_i; backward
 * walks them in reverse. */
#include "seqrec/nn.h"

#include <stdio.h>
#include <string.h>

int sq_nn_mlp_init(sq_nn_mlp *l, sq_params *ps, const char *prefix, int n, const int *widths,
                   sq_nn_act act, int act_last) {
    memset(l, 0, sizeof *l);
    if (n < 1 || n > SQ_NN_MLP_MAX)
        return -1;
    l->n = n;
    l->act = act;
    l->act_last = act_last ? 1 : 0;
    for (int i = 0; i <= n; i++) {
        if (widths[i] <= 0)
            return -1;
        l->widths[i] = widths[i];
    }
    for (int i = 0; i < n; i++) {
        char name[SQ_PARAM_NAME_MAX];
        int k = snprintf(name, sizeof name, "%s.fc%d", prefix, i);
        if (k < 0 || (size_t)k >= sizeof name)
            return -1;
        if (sq_nn_linear_init(&l->fc[i], ps, name, widths[i], widths[i + 1], 1) < 0)
            return -1;
    }
    return 0;
}

void sq_nn_mlp_reset(const sq_nn_mlp *l, sq_params *ps, sq_rng *rng) {
    for (int i = 0; i < l->n; i++)
        sq_nn_linear_reset(&l->fc[i], ps, rng);
}

static int has_act(const sq_nn_mlp *l, int i) {
    return l->act != SQ_ACT_NONE && (i < l->n - 1 || l->act_last);
}

/* x: [N, widths[0]] -> y: [N, widths[n]]. */
sq_status sq_nn_mlp_forward(const sq_nn_mlp *l, const sq_params *ps, sq_arena *a,
                            sq_nn_mlp_acts *acts, float *y, const float *x, int N, sq_error *err) {
    memset(acts, 0, sizeof *acts);
    acts->N = N;
    acts->x = x;
    acts->y = y;
    const float *in = x;
    for (int i = 0; i < l->n; i++) {
        size_t sz = (size_t)N * l->widths[i + 1];
        int last = i == l->n - 1, act = has_act(l, i);
        float *z = last && !act ? y : sq_arena_alloc(a, sz * sizeof(float));
        float *o = last ? y : act ? sq_arena_alloc(a, sz * sizeof(float)) : z;
        if (!z || !o)
            return sq_errorf(err, SQ_ERR_NOMEM, "mlp: arena full (N=%d)", N);
        sq_nn_linear_forward(z, in, sq_nn_val(ps, l->fc[i].w), sq_nn_val(ps, l->fc[i].b), N,
                             l->widths[i], l->widths[i + 1]);
        if (act)
            sq_nn_act_forward(l->act, o, z, sz);
        acts->z[i] = z;
        acts->o[i] = o;
        in = o;
    }
    return SQ_OK;
}

/* dx: [N, widths[0]] accumulated (may be NULL). */
sq_status sq_nn_mlp_backward(const sq_nn_mlp *l, sq_params *ps, sq_arena *a,
                             const sq_nn_mlp_acts *acts, float *dx, const float *dy,
                             sq_error *err) {
    const int N = acts->N;
    const float *d = dy; /* dL/d(output of layer i) */
    for (int i = l->n - 1; i >= 0; i--) {
        size_t sz = (size_t)N * l->widths[i + 1];
        const float *dz = d;
        if (has_act(l, i)) {
            float *t = sq_arena_calloc(a, sz * sizeof(float));
            if (!t)
                return sq_errorf(err, SQ_ERR_NOMEM, "mlp backward: arena full");
            sq_nn_act_backward(l->act, t, d, acts->z[i], acts->o[i], sz);
            dz = t;
        }
        float *din = dx;
        if (i > 0) {
            din = sq_arena_calloc(a, (size_t)N * l->widths[i] * sizeof(float));
            if (!din)
                return sq_errorf(err, SQ_ERR_NOMEM, "mlp backward: arena full");
        }
        sq_nn_linear_backward(din, sq_nn_grad(ps, l->fc[i].w), sq_nn_grad(ps, l->fc[i].b), dz,
                              i > 0 ? acts->o[i - 1] : acts->x, sq_nn_val(ps, l->fc[i].w), N,
                              l->widths[i], l->widths[i + 1]);
        d = din;
    }
    return SQ_OK;
}
