/* sasrec_sampled.c — SASRec's sampled objectives (see sasrec_net.h): binary cross-entropy over
 * the positive and K negatives (the original SASRec, K = 1) and the sampled softmax with log-Q
 * correction. Only the rows of the targets with a target are gathered; the logits are N·(1+K)
 * dot products; the gradient flows back to h and to the table rows used, nothing else. */
#include "models/sasrec_net.h"

#include <math.h>
#include <string.h>

static size_t a64(size_t b) {
    return (b + 63) & ~(size_t)63;
}

size_t sq_sasrec_sampled_scratch(int N, int K) {
    const size_t n = (size_t)(N > 0 ? N : 0), nk = n * (size_t)(K > 0 ? K : 0);
    return a64(n * sizeof(int32_t)) * 2 + a64(n * sizeof(float)) * 4 /* rows, pos, dpos, ... */
           + a64(nk * sizeof(float)) * 4 + a64(nk * sizeof(uint32_t)) + 4096;
}

static float dot(const float *x, const float *y, int C) {
    float s = 0.0f;
    for (int c = 0; c < C; c++)
        s += x[c] * y[c];
    return s;
}

static void axpy(float *y, float a, const float *x, int C) {
    for (int c = 0; c < C; c++)
        y[c] += a * x[c];
}

sq_status sq_sasrec_sampled_loss(sq_sasrec_net *net, sq_arena *a, const float *h,
                                 const uint32_t *targets, int N, const sq_sasrec_sampling *s,
                                 float *loss, float *dh, long *n_targets, sq_error *err) {
    const int C = net->cfg.hidden, K = s->K;
    const uint32_t ni = (uint32_t)net->cfg.n_items;
    if (K < 1 || !s->negs || (s->kind != SQ_SASREC_BCE && s->kind != SQ_SASREC_SAMPLED))
        return sq_errorf(err, SQ_ERR_ARG, "sasrec: a sampled loss needs negatives (K = %d)", K);
    int32_t *rows = sq_arena_alloc(a, (size_t)N * sizeof *rows);
    int32_t *pid = sq_arena_alloc(a, (size_t)N * sizeof *pid);
    if (!rows || !pid)
        return sq_errorf(err, SQ_ERR_NOMEM, "sasrec sampled loss: arena full");
    int nt = 0;
    for (int n = 0; n < N; n++) {
        if (!targets[n])
            continue;
        if (targets[n] > ni)
            return sq_errorf(err, SQ_ERR_ARG, "sasrec: target %u at position %d is above %u",
                             targets[n], n, ni);
        for (int k = 0; k < K; k++) {
            uint32_t g = s->negs[(size_t)n * K + k];
            if (g < 1 || g > ni)
                return sq_errorf(err, SQ_ERR_ARG,
                                 "sasrec: negative %u at position %d is outside 1..%u", g, n, ni);
        }
        pid[nt] = (int32_t)targets[n];
        rows[nt++] = n;
    }
    if (n_targets)
        *n_targets = nt;
    *loss = 0.0f;
    if (nt == 0)
        return SQ_OK;
    const size_t nk = (size_t)nt * K;
    float *pos = sq_arena_alloc(a, nt * sizeof *pos), *dpos = sq_arena_calloc(a, nt * sizeof *dpos);
    float *neg = sq_arena_alloc(a, nk * sizeof *neg), *dneg = sq_arena_calloc(a, nk * sizeof *dneg);
    float *lq_pos = sq_arena_alloc(a, nt * sizeof *lq_pos);
    float *lq_neg = sq_arena_alloc(a, nk * sizeof *lq_neg);
    uint32_t *nid = sq_arena_alloc(a, nk * sizeof *nid);
    float *y = sq_arena_alloc(a, (nk > (size_t)nt ? nk : (size_t)nt) * sizeof *y);
    if (!pos || !dpos || !neg || !dneg || !lq_pos || !lq_neg || !nid || !y)
        return sq_errorf(err, SQ_ERR_NOMEM, "sasrec sampled loss: arena full");
    const float *E = sq_nn_val(&net->ps, net->item_emb);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < nt; i++) {
        const float *hi = h + (size_t)rows[i] * C;
        const uint32_t *g = s->negs + (size_t)rows[i] * K;
        pos[i] = dot(hi, E + (size_t)pid[i] * C, C);
        if (s->item_logq)
            lq_pos[i] = s->item_logq[pid[i] - 1];
        for (int k = 0; k < K; k++) {
            nid[(size_t)i * K + k] = g[k];
            neg[(size_t)i * K + k] = dot(hi, E + (size_t)g[k] * C, C);
            if (s->item_logq)
                lq_neg[(size_t)i * K + k] = s->item_logq[g[k] - 1];
        }
    }
    float l;
    if (s->kind == SQ_SASREC_BCE) { /* Σ over the 1 + K terms, mean over positions */
        for (int i = 0; i < nt; i++)
            y[i] = 1.0f;
        l = sq_nn_bce_forward(pos, y, NULL, nt);
        memset(y, 0, nk * sizeof *y);
        l += (float)K * sq_nn_bce_forward(neg, y, NULL, (int)nk);
        if (dh) {
            sq_nn_bce_backward(dneg, (float)K, neg, y, NULL, (int)nk);
            for (int i = 0; i < nt; i++)
                y[i] = 1.0f;
            sq_nn_bce_backward(dpos, 1.0f, pos, y, NULL, nt);
        }
    } else {
        sq_nn_sampled_negs sn = {.neg_id = nid,
                                 .logq_pos = s->item_logq ? lq_pos : NULL,
                                 .logq_neg = s->item_logq ? lq_neg : NULL,
                                 .K = K,
                                 .shared_neg = 0};
        l = sq_nn_sampled_softmax_forward(pos, neg, pid, &sn, nt);
        if (dh)
            sq_nn_sampled_softmax_backward(dpos, dneg, 1.0f, pos, neg, pid, &sn, nt);
    }
    if (!isfinite(l))
        return sq_errorf(err, SQ_ERR_NUMERIC, "sasrec: the sampled loss is %g", (double)l);
    *loss = l;
    if (!dh)
        return SQ_OK;
    /* dh: each row owns its own; dE: rows shared between positions, so one thread scatters */
#pragma omp parallel for schedule(static)
    for (int i = 0; i < nt; i++) {
        float *d = dh + (size_t)rows[i] * C;
        axpy(d, dpos[i], E + (size_t)pid[i] * C, C);
        for (int k = 0; k < K; k++)
            axpy(d, dneg[(size_t)i * K + k], E + (size_t)nid[(size_t)i * K + k] * C, C);
    }
    sq_param *tab = &net->ps.p[net->item_emb];
    for (int i = 0; i < nt; i++) {
        const float *hi = h + (size_t)rows[i] * C;
        axpy(tab->grad + (size_t)pid[i] * C, dpos[i], hi, C);
        sq_param_touch(tab, (uint32_t)pid[i]);
        for (int k = 0; k < K; k++) {
            uint32_t g = nid[(size_t)i * K + k];
            axpy(tab->grad + (size_t)g * C, dneg[(size_t)i * K + k], hi, C);
            sq_param_touch(tab, g);
        }
    }
    return SQ_OK;
}

sq_status sq_sasrec_net_step_sampled(sq_sasrec_net *net, sq_arena *a, const uint32_t *inputs,
                                     const uint32_t *targets, int B, int T,
                                     const sq_sasrec_sampling *s, sq_rng *rng, float *loss,
                                     long *n_targets, sq_error *err) {
    sq_sasrec_acts acts;
    sq_status rc = sq_sasrec_net_forward(net, a, &acts, inputs, B, T, rng, NULL, err);
    if (rc)
        return rc;
    const int N = B * T, C = net->cfg.hidden;
    float *dh = sq_arena_calloc(a, (size_t)N * C * sizeof *dh);
    if (!dh)
        return sq_errorf(err, SQ_ERR_NOMEM, "sasrec step: arena full");
    long nt = 0;
    float l = 0.0f;
    if ((rc = sq_sasrec_sampled_loss(net, a, acts.h, targets, N, s, &l, dh, &nt, err)))
        return rc;
    if (loss)
        *loss = l;
    if (n_targets)
        *n_targets = nt;
    return nt ? sq_sasrec_net_backward(net, a, &acts, dh, NULL, err) : SQ_OK;
}
