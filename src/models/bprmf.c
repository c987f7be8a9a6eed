/* bprmf.c — BPR-MF (Rendle, Freudenthaler, Gantner, Schmidt-Thieme 2009): matrix factorisation
 * of the user × item interactions ranked with the pairwise BPR loss. A user u scores item i by
 *     x_ui = P[u] · Q[i] + bias[i]
 * and training pushes every observed (u, i) above a sampled unobserved j:
 *     loss = mean over (u, i, j) of −log σ(x_ui − x_uj)
 *            + (reg / 2)(|P[u]|² + |Q[i]|² + |Q[j]|² + bias[i]² + bias[j]²)   (per triple)
 * The L2 term is Rendle's per-triple regulariser (frequent rows are pulled in more often); it
 * is in the gradient but not in the reported *loss, which is the BPR term alone.
 *
 * Batches come from the train loop: row b is user users[b]; each target (targets[b,t] != 0) is
 * a positive i with its negatives negs[b,t,:] (the loop's sampler: uniform or by popularity,
 * never the positive itself, but possibly another item the user had). The sequence order is
 * ignored: MF sees the user's last `maxlen` training events as a bag. P, Q and bias are
 * sparse-row tensors, so a step touches (and the lazy optimiser updates) only the B users and
 * the items in the batch: O(B T n_neg dim), whatever the catalogue size.
 *
 * Scoring: one GEMM of the users' factors with Q plus the bias row. A user the model never saw
 * (sq_seq.user == UINT32_MAX or >= n_users) is folded in from its sequence: its factor is the
 * mean of the item factors of its events (items outside the catalogue skipped), a cheap
 * stand-in for solving for P[u]; with no usable event it is zero and the scores are the biases.
 *
 * Config: dim (64), reg (0.01), init_std (0.1); and, when not given, the train loop's
 * negatives (1), lr (0.01), batch (128), maxlen (200). */
#include "seqrec/model.h"

#include <cblas.h>
#include <string.h>

typedef struct {
    sq_params ps;   /* the three tensors below */
    int P, Q, bias; /* parameter indices: P [n_users, dim], Q [n_items, dim], bias [n_items] */
    int dim;        /* factor width */
    float reg;      /* L2 strength per triple */
} bpr_state;

/* ======================================== init ========================================= */

static sq_status bpr_init(sq_model *m, sq_rng *rng, sq_error *err) {
    long dim, negatives;
    double reg, init_std;
    sq_status rc;
    /* the train loop's keys, where MF wants other defaults than the sequence models */
    if ((rc = sq_config_default(m->cfg, "negatives", "1", err)) ||
        (rc = sq_config_default(m->cfg, "lr", "0.01", err)) ||
        (rc = sq_config_default(m->cfg, "batch", "128", err)) ||
        (rc = sq_config_default(m->cfg, "maxlen", "200", err)))
        return rc;
    if ((rc = sq_config_int(m->cfg, "dim", 64, 1, 4096, &dim, err)) ||
        (rc = sq_config_double(m->cfg, "reg", 0.01, 0, 100, &reg, err)) ||
        (rc = sq_config_double(m->cfg, "init_std", 0.1, 0, 10, &init_std, err)) ||
        (rc = sq_config_int(m->cfg, "negatives", 1, 1, 4096, &negatives, err)))
        return rc; /* negatives = 0 is refused here: BPR needs a negative per positive */
    if ((rc = sq_config_set_num(m->cfg, "dim", (double)dim, 1, err)) ||
        (rc = sq_config_set_num(m->cfg, "reg", reg, 0, err)) ||
        (rc = sq_config_set_num(m->cfg, "init_std", init_std, 0, err)))
        return rc;
    uint32_t nu = m->info.n_users, ni = m->info.n_items;
    if (nu == 0 || ni == 0)
        return sq_errorf(err, SQ_ERR_EMPTY, "bpr: the dataset has %u users and %u items", nu, ni);
    bpr_state *s = sq_calloc(1, sizeof *s);
    if (!s)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    m->impl = s; /* destroy frees it, whatever happens below */
    sq_params_init(&s->ps);
    s->dim = (int)dim;
    s->reg = (float)reg;
    size_t sp[2] = {nu, (size_t)dim}, sq[2] = {ni, (size_t)dim}, sb[1] = {ni};
    s->P = sq_params_declare(&s->ps, "bpr.P", 2, sp, 1);
    s->Q = sq_params_declare(&s->ps, "bpr.Q", 2, sq, 1);
    s->bias = sq_params_declare(&s->ps, "bpr.bias", 1, sb, 1);
    if (s->P < 0 || s->Q < 0 || s->bias < 0)
        return sq_errorf(err, SQ_ERR_NOMEM, "bpr: cannot declare the factor tables");
    if ((rc = sq_params_alloc(&s->ps, err)))
        return rc;
    sq_nn_fill_normal(sq_nn_val(&s->ps, s->P), (size_t)nu * dim, (float)init_std, rng);
    sq_nn_fill_normal(sq_nn_val(&s->ps, s->Q), (size_t)ni * dim, (float)init_std, rng);
    m->params = &s->ps; /* bias starts at zero */
    return SQ_OK;
}

static size_t bpr_scratch(const sq_model *m, uint32_t B, uint32_t T) {
    const bpr_state *s = m->impl;
    long k = 1;
    if (T && sq_config_int(m->cfg, "negatives", 1, 1, 4096, &k, NULL))
        k = 1;
    size_t n = T ? (size_t)B * T * (size_t)k * 4 : (size_t)B * s->dim; /* see train / score */
    return n * sizeof(float) + 4 * 64 + 4096;
}

/* ======================================== train ======================================== */

static float dot(const float *a, const float *b, int n) {
    float acc = 0;
    for (int c = 0; c < n; c++)
        acc += a[c] * b[c];
    return acc;
}

/* g += a · x + r · y over n floats */
static void axpy2(float *g, float a, const float *x, float r, const float *y, int n) {
    for (int c = 0; c < n; c++)
        g[c] += a * x[c] + r * y[c];
}

/* Pairs p = 0.. in batch order: row b, position t (with a target), negative k. Forward fills
 * pos[p] = x_ui and neg[p] = x_uj; the BPR loss gives dpos, dneg; backward carries them on to
 * the rows of P, Q and bias (touching each) in the same order: one thread, deterministic. */
static sq_status bpr_train_batch(sq_model *m, const sq_batch *b, sq_arena *a, sq_rng *rng,
                                 double *loss, long *n_targets, sq_error *err) {
    (void)rng;
    bpr_state *s = m->impl;
    sq_params *ps = &s->ps;
    const uint32_t nu = m->info.n_users, ni = m->info.n_items, K = b->n_neg;
    const int C = s->dim;
    if (!b->negs || K == 0)
        return sq_errorf(err, SQ_ERR_ARG, "bpr: the batch has no negatives (set negatives >= 1)");
    size_t cap = (size_t)b->B * b->T * K;
    float *pos = sq_arena_alloc(a, cap * sizeof *pos), *neg = sq_arena_alloc(a, cap * sizeof *neg);
    float *dpos = sq_arena_calloc(a, cap * sizeof *dpos);
    float *dneg = sq_arena_calloc(a, cap * sizeof *dneg);
    if (!pos || !neg || !dpos || !dneg)
        return sq_errorf(err, SQ_ERR_NOMEM, "bpr: training arena too small");
    const float *P = sq_nn_val(ps, s->P), *Q = sq_nn_val(ps, s->Q), *bias = sq_nn_val(ps, s->bias);
    size_t n = 0;
    long nt = 0;
    for (uint32_t r = 0; r < b->B; r++) {
        uint32_t u = b->users[r];
        if (u >= nu)
            return sq_errorf(err, SQ_ERR_ARG, "bpr: user %u outside [0, %u)", u, nu);
        for (uint32_t t = 0; t < b->T; t++) {
            size_t at = (size_t)r * b->T + t;
            uint32_t i = b->targets[at];
            if (!i)
                continue;
            if (i > ni)
                return sq_errorf(err, SQ_ERR_ARG, "bpr: target %u outside the catalogue", i - 1);
            float xi = dot(P + (size_t)u * C, Q + (size_t)(i - 1) * C, C) + bias[i - 1];
            for (uint32_t k = 0; k < K; k++) {
                uint32_t j = b->negs[at * K + k];
                if (j == 0 || j > ni)
                    return sq_errorf(err, SQ_ERR_ARG, "bpr: bad negative %u for a target", j);
                pos[n] = xi;
                neg[n++] = dot(P + (size_t)u * C, Q + (size_t)(j - 1) * C, C) + bias[j - 1];
            }
            nt++;
        }
    }
    *n_targets = nt;
    *loss = n ? sq_nn_bpr_forward(pos, neg, (int)n) : 0.0;
    if (!n)
        return SQ_OK;
    sq_nn_bpr_backward(dpos, dneg, 1.0f, pos, neg, (int)n);
    sq_param *tP = &ps->p[s->P], *tQ = &ps->p[s->Q], *tb = &ps->p[s->bias];
    float *gP = tP->grad, *gQ = tQ->grad, *gb = tb->grad;
    const float rn = s->reg / (float)n; /* the L2 term, per triple, under the same mean */
    size_t p = 0;
    for (uint32_t r = 0; r < b->B; r++) {
        uint32_t u = b->users[r];
        const float *pu = P + (size_t)u * C;
        float *gu = gP + (size_t)u * C;
        sq_param_touch(tP, u);
        for (uint32_t t = 0; t < b->T; t++) {
            size_t at = (size_t)r * b->T + t;
            uint32_t i = b->targets[at];
            if (!i)
                continue;
            i--;
            sq_param_touch(tQ, i);
            sq_param_touch(tb, i);
            for (uint32_t k = 0; k < K; k++, p++) {
                uint32_t j = b->negs[at * K + k] - 1;
                const float *qi = Q + (size_t)i * C, *qj = Q + (size_t)j * C;
                sq_param_touch(tQ, j);
                sq_param_touch(tb, j);
                /* x_ui − x_uj depends on P[u] through qi − qj; each triple adds reg · θ */
                axpy2(gu, dpos[p], qi, dneg[p], qj, C);
                for (int c = 0; c < C; c++)
                    gu[c] += rn * pu[c];
                axpy2(gQ + (size_t)i * C, dpos[p], pu, rn, qi, C);
                axpy2(gQ + (size_t)j * C, dneg[p], pu, rn, qj, C);
                gb[i] += dpos[p] + rn * bias[i];
                gb[j] += dneg[p] + rn * bias[j];
            }
        }
    }
    return SQ_OK;
}

/* ======================================== score ======================================== */

/* out [B, n_items] = U Q^T + bias, U [B, dim] the users' factors (or folded-in ones). */
/* User vectors U [B, dim]: P[u] for a known user, the fold-in for any other. */
static sq_status bpr_seq_vectors(const sq_model *m, const sq_seq *seqs, uint32_t B, float *U,
                                 sq_arena *a, sq_error *err) {
    (void)a;
    (void)err;
    const bpr_state *s = m->impl;
    const uint32_t nu = m->info.n_users, ni = m->info.n_items;
    const int C = s->dim;
    const float *P = sq_nn_val(&s->ps, s->P), *Q = sq_nn_val(&s->ps, s->Q);
    for (uint32_t b = 0; b < B; b++) {
        const sq_seq *q = &seqs[b];
        float *ub = U + (size_t)b * C;
        if (q->user < nu) {
            memcpy(ub, P + (size_t)q->user * C, (size_t)C * sizeof *ub);
            continue;
        }
        memset(ub, 0, (size_t)C * sizeof *ub); /* fold-in: mean of the items' factors */
        uint32_t used = 0;
        for (uint32_t e = 0; e < q->n; e++) {
            if (q->items[e] >= ni)
                continue;
            const float *qe = Q + (size_t)q->items[e] * C;
            for (int c = 0; c < C; c++)
                ub[c] += qe[c];
            used++;
        }
        for (int c = 0; used && c < C; c++)
            ub[c] /= (float)used;
    }
    return SQ_OK;
}

static const float *bpr_item_vectors(const sq_model *m, uint32_t *dim) {
    const bpr_state *s = m->impl;
    *dim = (uint32_t)s->dim;
    return sq_nn_val(&s->ps, s->Q);
}

static sq_status bpr_score(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out,
                           sq_arena *a, sq_error *err) {
    const bpr_state *s = m->impl;
    const sq_params *ps = &s->ps;
    const uint32_t ni = m->info.n_items;
    const int C = s->dim;
    if (B == 0)
        return SQ_OK;
    float *U = sq_arena_alloc(a, (size_t)B * C * sizeof *U);
    if (!U)
        return sq_errorf(err, SQ_ERR_NOMEM, "bpr: scoring arena too small");
    bpr_seq_vectors(m, seqs, B, U, a, err);
    const float *Q = sq_nn_val(ps, s->Q), *bias = sq_nn_val(ps, s->bias);
    for (uint32_t b = 0; b < B; b++)
        memcpy(out + (size_t)b * ni, bias, ni * sizeof *out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)ni, C, 1.0f, U, C, Q, C, 1.0f,
                out, (int)ni);
    return SQ_OK;
}

static void bpr_destroy(sq_model *m) {
    bpr_state *s = m->impl;
    if (!s)
        return;
    sq_params_free(&s->ps);
    sq_free(s);
    m->impl = NULL;
    m->params = NULL;
}

const sq_model_ops sq_model_bprmf_ops = {
    .name = "bpr",
    .about = "BPR-MF: user and item factors ranked with the pairwise BPR loss, lazy updates",
    .iterative = 1,
    .init = bpr_init,
    .train_batch = bpr_train_batch,
    .scratch = bpr_scratch,
    .score = bpr_score,
    .item_vectors = bpr_item_vectors,
    .seq_vectors = bpr_seq_vectors,
    .destroy = bpr_destroy,
};
