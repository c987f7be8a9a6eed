/* sasrec_net.c — the SASRec network: embedding, blocks, final layer norm, full cross-entropy with
 * tied embeddings, backward, scoring (see sasrec_net.h).
 *
 * The blocks are declared with sq_nn_block_init (SQ_BLOCK_SASREC) but run here from their parts
 * (layer norms, attention, FFN) in exactly the order of sq_nn_block_forward / _backward, so that
 * each part can be timed (`seqrec bench nn` reports where a step's time goes). The result is the
 * same computation: tests/models/test_sasrec_net.c checks it against sq_nn_block_* bit for bit.
 *
 * Invariants
 *  1. Positions with input id 0 are padding: zero after the embedding (dropout included) and
 *     after every block, so nothing flows from them but the attention's "see yourself" weight
 *     on their own (zero-valued, masked-out) rows.
 *  2. The loss is computed only at positions whose target is not 0; the cross-entropy compacts
 *     those rows before its GEMMs, so no logit is spent on padding.
 *  3. Row 0 of the item table never enters a softmax (first_item = 1) and never gets a gradient
 *     (the lookup's padding id is 0). */
#include "models/sasrec_net.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* ========================================== Config =========================================== */

void sq_sasrec_config_default(sq_sasrec_config *c, int n_items, int maxlen) {
    memset(c, 0, sizeof *c);
    c->n_items = n_items;
    c->maxlen = maxlen;
    c->hidden = 64;
    c->blocks = 2;
    c->heads = 1;
    c->ffn = 64;
    c->dropout = 0.2f;
    c->act = SQ_ACT_RELU;
    c->eps = 1e-8f;
}

static const char *STAGE_NAMES[SQ_SASREC_N_STAGES] = {
    "embed_fwd", "ln_fwd",   "attn_fwd", "ffn_fwd",   "resid_fwd", "ce",
    "ln_bwd",    "attn_bwd", "ffn_bwd",  "resid_bwd", "embed_bwd"};

double sq_sasrec_timing_get(const sq_sasrec_timing *t, int i) {
    const double v[SQ_SASREC_N_STAGES] = {t->embed_fwd, t->ln_fwd,    t->attn_fwd, t->ffn_fwd,
                                          t->resid_fwd, t->ce,        t->ln_bwd,   t->attn_bwd,
                                          t->ffn_bwd,   t->resid_bwd, t->embed_bwd};
    return i >= 0 && i < SQ_SASREC_N_STAGES ? v[i] : 0.0;
}

const char *sq_sasrec_timing_name(int i) {
    return i >= 0 && i < SQ_SASREC_N_STAGES ? STAGE_NAMES[i] : "?";
}

/* A stopwatch that costs nothing when timing is off: tick() is the time now (or 0), and
 * LAP(stage) adds the time since t to tm->stage and restarts t. */
static double tick(const sq_sasrec_timing *tm) {
    return tm ? sq_now() : 0.0;
}
#define LAP(stage)                                                                                 \
    do {                                                                                           \
        if (tm) {                                                                                  \
            double now_ = sq_now();                                                                \
            tm->stage += now_ - t;                                                                 \
            t = now_;                                                                              \
        }                                                                                          \
    } while (0)

/* ====================================== Init and reset ======================================= */

static sq_status check_config(const sq_sasrec_config *c, sq_error *err) {
    if (c->n_items < 1 || c->maxlen < 1 || c->hidden < 1 || c->blocks < 1 ||
        c->blocks > SQ_SASREC_MAX_BLOCKS || c->heads < 1 || c->hidden % c->heads != 0 ||
        c->ffn < 1 || !(c->dropout >= 0.0f && c->dropout < 1.0f) || !(c->eps > 0.0f))
        return sq_errorf(err, SQ_ERR_ARG,
                         "sasrec: bad config (n_items %d, maxlen %d, hidden %d, blocks %d, heads "
                         "%d, ffn %d, dropout %g, eps %g)",
                         c->n_items, c->maxlen, c->hidden, c->blocks, c->heads, c->ffn,
                         (double)c->dropout, (double)c->eps);
    return SQ_OK;
}

sq_status sq_sasrec_net_init(sq_sasrec_net *net, const sq_sasrec_config *cfg, sq_error *err) {
    sq_status rc = sq_sasrec_net_declare(net, cfg, err);
    if (rc)
        return rc;
    if ((rc = sq_params_alloc(&net->ps, err)))
        sq_params_free(&net->ps);
    return rc;
}

sq_status sq_sasrec_net_declare(sq_sasrec_net *net, const sq_sasrec_config *cfg, sq_error *err) {
    memset(net, 0, sizeof *net);
    sq_params_init(&net->ps);
    sq_status rc = check_config(cfg, err);
    if (rc)
        return rc;
    net->cfg = *cfg;
    const int C = cfg->hidden;
    size_t emb[2] = {(size_t)cfg->n_items + 1, (size_t)C},
           pos[2] = {(size_t)cfg->maxlen, (size_t)C};
    net->item_emb = sq_params_declare(&net->ps, "item_emb", 2, emb, 1);
    net->pos_emb = sq_params_declare(&net->ps, "pos_emb", 2, pos, 0);
    int bad = net->item_emb < 0 || net->pos_emb < 0;
    for (int l = 0; l < cfg->blocks && !bad; l++) {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "block%d", l);
        bad = sq_nn_block_init(&net->blk[l], &net->ps, prefix, SQ_BLOCK_SASREC, C, cfg->heads,
                               cfg->ffn, cfg->act, cfg->dropout, cfg->eps) < 0;
    }
    if (!bad)
        bad = sq_nn_layernorm_init(&net->ln_f, &net->ps, "ln_f", C, cfg->eps) < 0;
    if (bad) {
        sq_params_free(&net->ps);
        return sq_errorf(err, SQ_ERR_NOMEM, "sasrec: declaring parameters failed");
    }
    return SQ_OK;
}

void sq_sasrec_net_free(sq_sasrec_net *net) {
    if (net)
        sq_params_free(&net->ps);
}

void sq_sasrec_net_reset(sq_sasrec_net *net, sq_rng *rng) {
    const sq_sasrec_config *c = &net->cfg;
    float *E = sq_nn_val(&net->ps, net->item_emb);
    sq_nn_fill_xavier(E, c->n_items + 1, c->hidden, rng);
    sq_nn_fill(E, (size_t)c->hidden, 0.0f); /* padding row */
    sq_nn_fill_xavier(sq_nn_val(&net->ps, net->pos_emb), c->maxlen, c->hidden, rng);
    for (int l = 0; l < c->blocks; l++)
        sq_nn_block_reset(&net->blk[l], &net->ps, rng);
    sq_nn_layernorm_reset(&net->ln_f, &net->ps);
}

/* ========================================== Scratch ========================================== */

static size_t a64(size_t b) {
    return (b + 63) & ~(size_t)63;
}

size_t sq_sasrec_net_scratch(const sq_sasrec_config *cfg, int B, int T) {
    if (B <= 0 || T <= 0)
        return 0;
    const size_t N = (size_t)B * T, C = (size_t)cfg->hidden, F = (size_t)cfg->ffn;
    const size_t nc = a64(N * C * sizeof(float)), nf = a64(N * F * sizeof(float));
    const size_t rb = a64(N * sizeof(float)), natt = a64((size_t)B * cfg->heads * T * T * 4);
    /* one block: forward (block acts, attention, FFN, output) and backward (block, attention,
     * FFN scratch), each counted at its largest (dropout on) */
    size_t blk_f = 4 * nc + 4 * rb + (3 * nc + 2 * natt + nc + a64((size_t)B * sizeof(int))) +
                   (2 * nf + a64(N * F) + a64(N * C)) + nc;
    size_t blk_b = 4 * nc + (nc + 3 * nc + natt) + (nc + 3 * nf);
    size_t top = a64(N) + nc + a64(N * C) + nc + 2 * rb + rb /* targets */ + 2 * nc;
    size_t ce = sq_nn_ce_chunked_scratch((int)N, cfg->hidden, cfg->n_items + 1,
                                         &(sq_nn_ce_opts){.first_item = 1});
    return top + (size_t)cfg->blocks * (blk_f + blk_b) + a64(ce) + (64 << 10);
}

/* ========================================== Forward ========================================== */

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

/* One SASREC block, as sq_nn_block_forward: q = LN1(x); r = q + Attn(q, x); h = LN2(r);
 * y = h + FFN(h); padded rows of y zeroed. Same allocations and RNG draws in the same order. */
static sq_status block_forward(const sq_nn_block *l, const sq_params *ps, sq_arena *a,
                               sq_nn_block_acts *acts, float *y, const float *x, const uint8_t *pad,
                               int B, int T, sq_rng *rng, sq_sasrec_timing *tm, sq_error *err) {
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
    if (!acts->ln1 || !acts->ln2 || !acts->r || !acts->att || !acts->mean1 || !acts->rstd1 ||
        !acts->mean2 || !acts->rstd2)
        return sq_errorf(err, SQ_ERR_NOMEM, "sasrec block: arena full (B=%d T=%d C=%d)", B, T, C);
    double t = tick(tm);
    ln_fwd(&l->ln1, ps, acts->ln1, acts->mean1, acts->rstd1, x, N);
    LAP(ln_fwd);
    rc = sq_nn_attn_forward(&l->attn, ps, a, &acts->attn, acts->att, acts->ln1, x, pad, B, T, rng,
                            err);
    if (rc)
        return rc;
    LAP(attn_fwd);
    memcpy(acts->r, acts->ln1, nb);
    add_into(acts->r, acts->att, nc);
    LAP(resid_fwd);
    ln_fwd(&l->ln2, ps, acts->ln2, acts->mean2, acts->rstd2, acts->r, N);
    LAP(ln_fwd);
    if ((rc = sq_nn_ffn_forward(&l->ffn, ps, a, &acts->ffn, y, acts->ln2, N, rng, err)))
        return rc;
    LAP(ffn_fwd);
    add_into(y, acts->ln2, nc);
    sq_nn_mask_rows(y, pad, N, C);
    LAP(resid_fwd);
    return SQ_OK;
}

sq_status sq_sasrec_net_forward(const sq_sasrec_net *net, sq_arena *a, sq_sasrec_acts *acts,
                                const uint32_t *ids, int B, int T, sq_rng *rng,
                                sq_sasrec_timing *tm, sq_error *err) {
    return sq_sasrec_net_forward_x(net, a, acts, ids, NULL, B, T, rng, tm, err);
}

sq_status sq_sasrec_net_forward_x(const sq_sasrec_net *net, sq_arena *a, sq_sasrec_acts *acts,
                                  const uint32_t *ids, const float *x_in, int B, int T, sq_rng *rng,
                                  sq_sasrec_timing *tm, sq_error *err) {
    const sq_sasrec_config *c = &net->cfg;
    const sq_params *ps = &net->ps;
    memset(acts, 0, sizeof *acts);
    if (B <= 0 || T <= 0 || T > c->maxlen || (long)B * T > INT32_MAX / (c->hidden + 1))
        return sq_errorf(err, SQ_ERR_ARG, "sasrec: B=%d T=%d (maxlen %d)", B, T, c->maxlen);
    const int C = c->hidden, N = B * T, V = c->n_items + 1;
    const size_t nc = (size_t)N * C, nb = nc * sizeof(float);
    double t = tick(tm);
    acts->B = B;
    acts->T = T;
    acts->ids = ids;
    acts->pad = sq_arena_alloc(a, (size_t)N);
    acts->x0 = sq_arena_alloc(a, nb);
    const int drop = rng && c->dropout > 0.0f;
    if (drop)
        acts->m0 = sq_arena_alloc(a, nc);
    if (!acts->pad || !acts->x0 || (drop && !acts->m0))
        return sq_errorf(err, SQ_ERR_NOMEM, "sasrec: arena full (B=%d T=%d)", B, T);
    for (int n = 0; n < N; n++)
        acts->pad[n] = ids[n] == 0;
    acts->x_in = x_in;
    sq_status rc = SQ_OK;
    if (x_in)
        memcpy(acts->x0, x_in, nb);
    else if ((rc = sq_nn_embedding_forward(acts->x0, ids, sq_nn_val(ps, net->item_emb), N, V, C, 0,
                                           sqrtf((float)C), err)))
        return rc;
    sq_nn_pos_forward(acts->x0, acts->x0, sq_nn_val(ps, net->pos_emb), B, T, C);
    if (drop)
        sq_nn_dropout_forward(acts->x0, acts->m0, acts->x0, nc, c->dropout, rng);
    sq_nn_mask_rows(acts->x0, acts->pad, N, C);
    LAP(embed_fwd);

    acts->xs[0] = acts->x0;
    for (int l = 0; l < c->blocks; l++) {
        if (!(acts->xs[l + 1] = sq_arena_alloc(a, nb)))
            return sq_errorf(err, SQ_ERR_NOMEM, "sasrec: arena full (block %d)", l);
        rc = block_forward(&net->blk[l], ps, a, &acts->blk[l], acts->xs[l + 1], acts->xs[l],
                           acts->pad, B, T, rng, tm, err);
        if (rc)
            return rc;
    }

    t = tick(tm);
    acts->h = sq_arena_alloc(a, nb);
    acts->mean_f = sq_arena_alloc(a, (size_t)N * sizeof(float));
    acts->rstd_f = sq_arena_alloc(a, (size_t)N * sizeof(float));
    if (!acts->h || !acts->mean_f || !acts->rstd_f)
        return sq_errorf(err, SQ_ERR_NOMEM, "sasrec: arena full (final layer norm)");
    ln_fwd(&net->ln_f, ps, acts->h, acts->mean_f, acts->rstd_f, acts->xs[c->blocks], N);
    LAP(ln_fwd);
    return SQ_OK;
}

/* ========================================= Backward ========================================== */

/* As sq_nn_block_backward (SASREC): dx += dL/dx given dy = dL/dy. */
static sq_status block_backward(const sq_nn_block *l, sq_params *ps, sq_arena *a,
                                const sq_nn_block_acts *acts, float *dx, const float *dy,
                                sq_sasrec_timing *tm, sq_error *err) {
    const int C = l->C, N = acts->B * acts->T;
    const size_t nc = (size_t)N * C, nb = nc * sizeof(float);
    sq_status rc;
    double t = tick(tm);
    float *dz = sq_arena_alloc(a, nb), *d1 = sq_arena_calloc(a, nb), *d2 = sq_arena_alloc(a, nb);
    if (!dz || !d1 || !d2)
        return sq_errorf(err, SQ_ERR_NOMEM, "sasrec block backward: arena full");
    memcpy(dz, dy, nb);
    sq_nn_mask_rows(dz, acts->pad, N, C); /* y was zeroed there */
    memcpy(d2, dz, nb);                   /* the residual path of y = h + FFN(h) */
    LAP(resid_bwd);
    if ((rc = sq_nn_ffn_backward(&l->ffn, ps, a, &acts->ffn, d2, dz, err)))
        return rc;
    LAP(ffn_bwd);
    ln_bwd(&l->ln2, ps, d1, d2, acts->r, acts->mean2, acts->rstd2, N);
    LAP(ln_bwd);
    memcpy(dz, d1, nb); /* dL/dq: the residual path of r = q + Attn(q, x) ... */
    LAP(resid_bwd);
    if ((rc = sq_nn_attn_backward(&l->attn, ps, a, &acts->attn, dz, dx, d1, err)))
        return rc; /* ... plus the query path; K and V go straight to dx */
    LAP(attn_bwd);
    ln_bwd(&l->ln1, ps, dx, dz, acts->x, acts->mean1, acts->rstd1, N);
    LAP(ln_bwd);
    return SQ_OK;
}

sq_status sq_sasrec_net_backward(sq_sasrec_net *net, sq_arena *a, const sq_sasrec_acts *acts,
                                 float *dh, sq_sasrec_timing *tm, sq_error *err) {
    const sq_sasrec_config *c = &net->cfg;
    sq_params *ps = &net->ps;
    const int B = acts->B, T = acts->T, C = c->hidden, N = B * T, L = c->blocks;
    const size_t nc = (size_t)N * C, nb = nc * sizeof(float);
    sq_status rc;
    double t = tick(tm);
    float *dcur = sq_arena_calloc(a, nb);
    if (!dcur)
        return sq_errorf(err, SQ_ERR_NOMEM, "sasrec backward: arena full");
    ln_bwd(&net->ln_f, ps, dcur, dh, acts->xs[L], acts->mean_f, acts->rstd_f, N);
    LAP(ln_bwd);
    for (int l = L - 1; l >= 0; l--) {
        float *dprev = sq_arena_calloc(a, nb);
        if (!dprev)
            return sq_errorf(err, SQ_ERR_NOMEM, "sasrec backward: arena full (block %d)", l);
        if ((rc = block_backward(&net->blk[l], ps, a, &acts->blk[l], dprev, dcur, tm, err)))
            return rc;
        dcur = dprev;
    }
    t = tick(tm);
    /* x0 = mask(dropout(E[ids]·√C + P)): back through the mask and the dropout in place (dh is
     * free now and becomes the gradient of the embedding sum) */
    const uint8_t *pad = acts->pad, *m0 = acts->m0;
    const float keep = m0 ? 1.0f / (1.0f - c->dropout) : 1.0f;
#pragma omp parallel for schedule(static) if (N * C > 65536)
    for (int n = 0; n < N; n++) {
        float *d = dh + (size_t)n * C;
        const float *s = dcur + (size_t)n * C;
        if (pad[n]) {
            memset(d, 0, (size_t)C * sizeof *d);
        } else if (m0) {
            const uint8_t *m = m0 + (size_t)n * C;
            for (int k = 0; k < C; k++)
                d[k] = m[k] ? s[k] * keep : 0.0f;
        } else {
            memcpy(d, s, (size_t)C * sizeof *d);
        }
    }
    sq_nn_pos_backward(NULL, sq_nn_grad(ps, net->pos_emb), dh, B, T, C);
    if (!acts->x_in) /* else dh is the caller's input gradient */
        sq_nn_embedding_backward(&ps->p[net->item_emb], dh, acts->ids, N, 0, sqrtf((float)C));
    LAP(embed_bwd);
    return SQ_OK;
}

/* ======================================= Training step ======================================= */

sq_status sq_sasrec_net_step(sq_sasrec_net *net, sq_arena *a, const uint32_t *inputs,
                             const uint32_t *targets, int B, int T, sq_rng *rng, float *loss,
                             long *n_targets, sq_sasrec_timing *tm, sq_error *err) {
    const sq_sasrec_config *c = &net->cfg;
    sq_params *ps = &net->ps;
    sq_sasrec_acts acts;
    sq_status rc = sq_sasrec_net_forward(net, a, &acts, inputs, B, T, rng, tm, err);
    if (rc)
        return rc;
    const int C = c->hidden, N = B * T, V = c->n_items + 1;
    double t = tick(tm);
    int32_t *tgt = sq_arena_alloc(a, (size_t)N * sizeof *tgt);
    float *dh = sq_arena_calloc(a, (size_t)N * C * sizeof *dh);
    if (!tgt || !dh)
        return sq_errorf(err, SQ_ERR_NOMEM, "sasrec step: arena full");
    long nt = 0;
    for (int n = 0; n < N; n++) {
        if (targets[n] > (uint32_t)c->n_items)
            return sq_errorf(err, SQ_ERR_ARG, "sasrec: target %u at position %d is above %d",
                             targets[n], n, c->n_items);
        tgt[n] = targets[n] ? (int32_t)targets[n] : -1;
        nt += targets[n] != 0;
    }
    if (n_targets)
        *n_targets = nt;
    /* forward and backward in one call: the loss saves a pass of logits over the split API */
    const sq_nn_ce_opts o = {
        .first_item = 1, .exclude = net->exclude, .n_exclude = net->n_exclude, .exclude_shift = 1};
    const float *E = sq_nn_val(ps, net->item_emb);
    sq_param *tab = &ps->p[net->item_emb];
    float l = 0.0f;
    rc = sq_nn_ce_chunked(&l, dh, tab->grad, acts.h, E, tgt, N, C, V, 1.0f, &o, a, err);
    if (rc)
        return rc;
    if (nt > 0)
        for (uint32_t r = 1; r < (uint32_t)V; r++) /* dE is dense over rows 1..n_items */
            sq_param_touch(tab, r);
    LAP(ce);
    if (loss)
        *loss = l;
    if (nt == 0)
        return SQ_OK;
    return sq_sasrec_net_backward(net, a, &acts, dh, tm, err);
}

/* ========================================== Scoring ========================================== */

sq_status sq_sasrec_net_score(const sq_sasrec_net *net, sq_arena *a, const uint32_t *ids, int B,
                              int T, float *scores, sq_error *err) {
    const sq_sasrec_config *c = &net->cfg;
    sq_sasrec_acts acts;
    sq_status rc = sq_sasrec_net_forward(net, a, &acts, ids, B, T, NULL, NULL, err);
    if (rc)
        return rc;
    const int C = c->hidden;
    /* the last position of each sequence: rows T-1, 2T-1, ... of h, i.e. a row stride of T*C */
    const float *E = sq_nn_val(&net->ps, net->item_emb);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, c->n_items, C, 1.0f,
                acts.h + (size_t)(T - 1) * C, T * C, E + C, C, 0.0f, scores, c->n_items);
    return SQ_OK;
}
