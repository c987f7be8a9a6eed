/* block.c — the residual transformer block in three layouts (see nn_layers.h):
 *   PRE_LN (GPT-2), POST_LN (Vaswani et al.), SASREC (the original SASRec code and our PyTorch
 *   peer: residuals on the normalised inputs, keys and values from the raw input).
 * Each keeps its layer-norm outputs and statistics, residual sums and the attention / FFN
 * activations; backward walks the same graph in reverse, accumulating into dx. Padded rows of
 * the output are zeroed (and so is their gradient on the way back). */
#include "seqrec/nn.h"

#include <stdio.h>
#include <string.h>

int sq_nn_block_init(sq_nn_block *l, sq_params *ps, const char *prefix, sq_nn_block_kind kind,
                     int C, int H, int F, sq_nn_act act, float p_drop, float eps) {
    char name[SQ_PARAM_NAME_MAX];
    memset(l, 0, sizeof *l);
    if (kind < SQ_BLOCK_PRE_LN || kind > SQ_BLOCK_SASREC)
        return -1;
    l->kind = kind;
    l->C = C;
    static const char *parts[4] = {"ln1", "attn", "ln2", "ffn"};
    for (int k = 0; k < 4; k++) {
        int n = snprintf(name, sizeof name, "%s.%s", prefix, parts[k]);
        if (n < 0 || (size_t)n >= sizeof name)
            return -1;
        int rc = k == 0   ? sq_nn_layernorm_init(&l->ln1, ps, name, C, eps)
                 : k == 1 ? sq_nn_attn_init(&l->attn, ps, name, C, H, 1, p_drop)
                 : k == 2 ? sq_nn_layernorm_init(&l->ln2, ps, name, C, eps)
                          : sq_nn_ffn_init(&l->ffn, ps, name, C, F, act, p_drop);
        if (rc < 0)
            return -1;
    }
    return 0;
}

void sq_nn_block_reset(const sq_nn_block *l, sq_params *ps, sq_rng *rng) {
    sq_nn_layernorm_reset(&l->ln1, ps);
    sq_nn_attn_reset(&l->attn, ps, rng);
    sq_nn_layernorm_reset(&l->ln2, ps);
    sq_nn_ffn_reset(&l->ffn, ps, rng);
}

static void add_into(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        y[i] += x[i];
}

static void ln_fwd(const sq_nn_layernorm *ln, const sq_params *ps, float *y, float *mean,
                   float *rstd, const float *x, int N) {
    sq_nn_layernorm_forward(y, mean, rstd, x, sq_nn_val(ps, ln->g), sq_nn_val(ps, ln->b), N, ln->C,
                            ln->eps);
}

static void ln_bwd(const sq_nn_layernorm *ln, sq_params *ps, float *dx, const float *dy,
                   const float *x, const float *mean, const float *rstd, int N) {
    sq_nn_layernorm_backward(dx, sq_nn_grad(ps, ln->g), sq_nn_grad(ps, ln->b), dy, x, mean, rstd,
                             sq_nn_val(ps, ln->g), N, ln->C);
}

/* x: [B, T, C] -> y: [B, T, C]. */
sq_status sq_nn_block_forward(const sq_nn_block *l, const sq_params *ps, sq_arena *a,
                              sq_nn_block_acts *acts, float *y, const float *x, const uint8_t *pad,
                              int B, int T, sq_rng *rng, sq_error *err) {
    if (B <= 0 || T <= 0 || y == x)
        return sq_errorf(err, SQ_ERR_ARG, "block: B=%d T=%d (y must not alias x)", B, T);
    const int C = l->C, N = B * T;
    const size_t nc = (size_t)N * C, nb = nc * sizeof(float), rb = (size_t)N * sizeof(float);
    sq_status rc;
    memset(acts, 0, sizeof *acts);
    acts->B = B;
    acts->T = T;
    acts->x = x;
    acts->pad = pad;
    acts->ln1 = sq_arena_alloc(a, nb);
    acts->ln2 = sq_arena_alloc(a, nb);
    acts->r = sq_arena_alloc(a, nb);
    acts->att = sq_arena_alloc(a, nb);
    acts->mean1 = sq_arena_alloc(a, rb);
    acts->rstd1 = sq_arena_alloc(a, rb);
    acts->mean2 = sq_arena_alloc(a, rb);
    acts->rstd2 = sq_arena_alloc(a, rb);
    if (l->kind == SQ_BLOCK_POST_LN)
        acts->r2 = sq_arena_alloc(a, nb);
    if (!acts->ln1 || !acts->ln2 || !acts->r || !acts->att || !acts->mean1 || !acts->rstd1 ||
        !acts->mean2 || !acts->rstd2 || (l->kind == SQ_BLOCK_POST_LN && !acts->r2))
        return sq_errorf(err, SQ_ERR_NOMEM, "block: arena full (B=%d T=%d C=%d)", B, T, C);

    switch (l->kind) {
    case SQ_BLOCK_SASREC: /* q = LN1(x); r = q + Attn(q, x); h = LN2(r); y = h + FFN(h) */
        ln_fwd(&l->ln1, ps, acts->ln1, acts->mean1, acts->rstd1, x, N);
        rc = sq_nn_attn_forward(&l->attn, ps, a, &acts->attn, acts->att, acts->ln1, x, pad, B, T,
                                rng, err);
        if (rc)
            return rc;
        memcpy(acts->r, acts->ln1, nb);
        add_into(acts->r, acts->att, nc);
        ln_fwd(&l->ln2, ps, acts->ln2, acts->mean2, acts->rstd2, acts->r, N);
        rc = sq_nn_ffn_forward(&l->ffn, ps, a, &acts->ffn, y, acts->ln2, N, rng, err);
        if (rc)
            return rc;
        add_into(y, acts->ln2, nc);
        break;
    case SQ_BLOCK_PRE_LN: /* r = x + Attn(LN1(x)); y = r + FFN(LN2(r)) */
        ln_fwd(&l->ln1, ps, acts->ln1, acts->mean1, acts->rstd1, x, N);
        rc = sq_nn_attn_forward(&l->attn, ps, a, &acts->attn, acts->att, acts->ln1, acts->ln1, pad,
                                B, T, rng, err);
        if (rc)
            return rc;
        memcpy(acts->r, x, nb);
        add_into(acts->r, acts->att, nc);
        ln_fwd(&l->ln2, ps, acts->ln2, acts->mean2, acts->rstd2, acts->r, N);
        rc = sq_nn_ffn_forward(&l->ffn, ps, a, &acts->ffn, y, acts->ln2, N, rng, err);
        if (rc)
            return rc;
        add_into(y, acts->r, nc);
        break;
    case SQ_BLOCK_POST_LN: /* r = x + Attn(x); u = LN1(r); y = LN2(u + FFN(u)) */
        rc = sq_nn_attn_forward(&l->attn, ps, a, &acts->attn, acts->att, x, x, pad, B, T, rng, err);
        if (rc)
            return rc;
        memcpy(acts->r, x, nb);
        add_into(acts->r, acts->att, nc);
        ln_fwd(&l->ln1, ps, acts->ln1, acts->mean1, acts->rstd1, acts->r, N);
        rc = sq_nn_ffn_forward(&l->ffn, ps, a, &acts->ffn, acts->r2, acts->ln1, N, rng, err);
        if (rc)
            return rc;
        add_into(acts->r2, acts->ln1, nc);
        ln_fwd(&l->ln2, ps, y, acts->mean2, acts->rstd2, acts->r2, N);
        break;
    }
    sq_nn_mask_rows(y, pad, N, C);
    return SQ_OK;
}

/* dx: [B, T, C] accumulated; parameter gradients accumulated. */
sq_status sq_nn_block_backward(const sq_nn_block *l, sq_params *ps, sq_arena *a,
                               const sq_nn_block_acts *acts, float *dx, const float *dy,
                               sq_error *err) {
    const int C = l->C, N = acts->B * acts->T;
    const size_t nc = (size_t)N * C, nb = nc * sizeof(float);
    sq_status rc;
    float *dz = sq_arena_alloc(a, nb), *d1 = sq_arena_calloc(a, nb), *d2 = sq_arena_calloc(a, nb);
    if (!dz || !d1 || !d2)
        return sq_errorf(err, SQ_ERR_NOMEM, "block backward: arena full");
    memcpy(dz, dy, nb);
    sq_nn_mask_rows(dz, acts->pad, N, C); /* y was zeroed there */

    switch (l->kind) {
    case SQ_BLOCK_SASREC:
        /* d2 = dL/dh = dz + FFN'(dz); d1 = dL/dr = LN2'(d2); dq = d1 + Attn'_q; dx += Attn'_kv */
        memcpy(d2, dz, nb);
        if ((rc = sq_nn_ffn_backward(&l->ffn, ps, a, &acts->ffn, d2, dz, err)))
            return rc;
        ln_bwd(&l->ln2, ps, d1, d2, acts->r, acts->mean2, acts->rstd2, N);
        memcpy(dz, d1, nb); /* dz now holds dL/dq: the residual path ... */
        rc = sq_nn_attn_backward(&l->attn, ps, a, &acts->attn, dz, dx, d1, err);
        if (rc)
            return rc; /* ... plus the query path */
        ln_bwd(&l->ln1, ps, dx, dz, acts->x, acts->mean1, acts->rstd1, N);
        break;
    case SQ_BLOCK_PRE_LN:
        /* d1 = dL/dr = dz + LN2'(FFN'(dz)); dx += d1 + LN1'(Attn'(d1)) */
        if ((rc = sq_nn_ffn_backward(&l->ffn, ps, a, &acts->ffn, d2, dz, err)))
            return rc;
        memcpy(d1, dz, nb);
        ln_bwd(&l->ln2, ps, d1, d2, acts->r, acts->mean2, acts->rstd2, N);
        memset(d2, 0, nb);
        rc = sq_nn_attn_backward(&l->attn, ps, a, &acts->attn, d2, d2, d1, err);
        if (rc)
            return rc;
        add_into(dx, d1, nc);
        ln_bwd(&l->ln1, ps, dx, d2, acts->x, acts->mean1, acts->rstd1, N);
        break;
    case SQ_BLOCK_POST_LN:
        /* d2 = dL/dr2 = LN2'(dz); d1 = dL/du = d2 + FFN'(d2); dr = LN1'(d1); dx += dr + Attn' */
        ln_bwd(&l->ln2, ps, d2, dz, acts->r2, acts->mean2, acts->rstd2, N);
        memcpy(d1, d2, nb);
        if ((rc = sq_nn_ffn_backward(&l->ffn, ps, a, &acts->ffn, d1, d2, err)))
            return rc;
        memset(dz, 0, nb);
        ln_bwd(&l->ln1, ps, dz, d1, acts->r, acts->mean1, acts->rstd1, N);
        add_into(dx, dz, nc);
        rc = sq_nn_attn_backward(&l->attn, ps, a, &acts->attn, dx, dx, dz, err);
        if (rc)
            return rc;
        break;
    }
    return SQ_OK;
}
