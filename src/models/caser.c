/* caser.c — Caser (Tang & Wang, WSDM 2018) behind the model interface: the last L items of a
 * sequence as an [L, d] "image", horizontal and vertical convolutions over it (nn_conv.h), a
 * fully connected layer, the user's embedding beside it, and an output layer over all items.
 *
 *   ids [N, L] ─▶ E[ids] [N, L, d] ─▶ conv ─▶ dropout ─▶ fc1 ─▶ ReLU ─▶ z [N, d]
 *   h = [ z | U[user] | 1 ] [N, 2d + 1]      (U[user] = 0 for a user the model never saw)
 *   scores[n, i] = h[n] · out[i] = W2[i] · [z | U[user]] + b2[i]
 *
 * Training: every position t of a batch row that has a target is one example whose input is
 * the L inputs ending at t, left-padded with 0; all examples of a batch are gathered once
 * into ids [N, L] and go through the network together (N ≤ B·T, padding costs nothing).
 * Loss `ce` (default): full softmax cross-entropy over all items (sq_nn_ce_chunked); `bce`:
 * the paper's −log σ(pos) − mean log(1 − σ(neg)) with the train loop's sampled negatives.
 *
 * Parameters: "item_emb" [n_items + 1, d] (row 0 = padding, zero, no gradient), "user_emb"
 * [n_users, d], "conv.{wh,bh,wv,bv}", "fc1.w" [d, W], "fc1.b" [d], "out" [n_items, 2d + 1]:
 * the paper's W2 with its bias b2 as the last column, so that the constant 1 in h turns the
 * output layer into one GEMM (and the cross-entropy's item table). Init as the authors' code:
 * tables N(0, 1/d), W2 N(0, 1/(2d)), b2 = 0, conv and fc1 as PyTorch's defaults.
 *
 * Config: L (5), hidden d (64), nh (16), nv (4), dropout (0.5), loss (ce|bce). Defaults for
 * the train loop's keys: batch 16 sequences (each yields up to maxlen examples: about the
 * paper's 512 examples per step; 128 gives too few steps per epoch), lr 0.003 (on ml-100k it
 * reaches 1e-3's best validation NDCG@10, 0.126 vs 0.124, in 14 epochs instead of 33; on the
 * generator's log HR@10 0.83 vs 0.37 after 5 epochs), and with bce `negatives` 3. */
#include "seqrec/model.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

typedef struct {
    int L, d, nh, nv;       /* window, width, horizontal filters per height, vertical */
    float dropout;          /* on the conv output, in [0, 1) */
    int bce;                /* 1: loss = bce with sampled negatives; 0: full cross-entropy */
    int n_items, n_users;   /* catalogue; users with an embedding row */
    int W, C;               /* conv output width; h width 2d + 1 */
    sq_params ps;           /* every tensor (owned) */
    int item_emb, user_emb; /* parameter indices */
    int w1, b1, out;        /* fc1 [d, W] and [d]; output layer [n_items, C] */
    sq_nn_caser_conv conv;  /* the convolutions */
} caser;

/* Activations of one forward over N examples. */
typedef struct {
    int N;                      /* examples */
    const uint32_t *ids;        /* [N, L] item id + 1, 0 = padding */
    const uint32_t *users;      /* [N] user ids; >= n_users: none (zero vector) */
    float *x;                   /* [N, L, d] embedded window */
    sq_nn_caser_conv_acts conv; /* what the conv backward needs */
    float *y;                   /* [N, W] conv output after dropout (fc1's input) */
    uint8_t *mask;              /* [N, W] dropout mask, or NULL when off */
    float *h;                   /* [N, C] [ReLU(fc1) | user | 1] */
} caser_acts;

static size_t a64(size_t b) {
    return (b + 63) & ~(size_t)63;
}

/* ====================================== Init and reset ======================================= */

static sq_status caser_init(sq_model *m, sq_rng *rng, sq_error *err) {
    long L, d, nh, nv;
    double p;
    int bce;
    sq_status rc;
    if ((rc = sq_config_int(m->cfg, "L", 5, 1, 64, &L, err)) ||
        (rc = sq_config_int(m->cfg, "hidden", 64, 1, 4096, &d, err)) ||
        (rc = sq_config_int(m->cfg, "nh", 16, 0, 1024, &nh, err)) ||
        (rc = sq_config_int(m->cfg, "nv", 4, 0, 1024, &nv, err)) ||
        (rc = sq_config_double(m->cfg, "dropout", 0.5, 0, 0.95, &p, err)) ||
        (rc = sq_config_choice(m->cfg, "loss", "ce|bce", 0, &bce, err)))
        return rc;
    if (nh + nv == 0)
        return sq_errorf(err, SQ_ERR_ARG, "config: caser needs nh or nv above 0");
    if ((rc = sq_config_set_num(m->cfg, "L", (double)L, 1, err)) ||
        (rc = sq_config_set_num(m->cfg, "hidden", (double)d, 1, err)) ||
        (rc = sq_config_set_num(m->cfg, "nh", (double)nh, 1, err)) ||
        (rc = sq_config_set_num(m->cfg, "nv", (double)nv, 1, err)) ||
        (rc = sq_config_set_num(m->cfg, "dropout", p, 0, err)))
        return rc;
    /* the train loop's keys, where Caser wants other defaults than SASRec (see the top) */
    if ((rc = sq_config_set(m->cfg, "loss", bce ? "bce" : "ce", err)) ||
        (rc = sq_config_default(m->cfg, "batch", "16", err)) ||
        (rc = sq_config_default(m->cfg, "lr", "0.003", err)) ||
        (bce && (rc = sq_config_default(m->cfg, "negatives", "3", err))))
        return rc;

    caser *c = sq_calloc(1, sizeof *c);
    if (!c)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    sq_params_init(&c->ps);
    c->L = (int)L;
    c->d = (int)d;
    c->nh = (int)nh;
    c->nv = (int)nv;
    c->dropout = (float)p;
    c->bce = bce;
    c->n_items = (int)m->info.n_items;
    c->n_users = (int)m->info.n_users;
    c->C = 2 * c->d + 1;
    size_t emb[2] = {(size_t)c->n_items + 1, (size_t)d};
    size_t usr[2] = {(size_t)(c->n_users ? c->n_users : 1), (size_t)d};
    c->item_emb = sq_params_declare(&c->ps, "item_emb", 2, emb, 1);
    c->user_emb = sq_params_declare(&c->ps, "user_emb", 2, usr, 1);
    int bad = c->item_emb < 0 || c->user_emb < 0 || c->n_items < 1 ||
              sq_nn_caser_conv_init(&c->conv, &c->ps, "conv", c->L, c->d, c->nh, c->nv) < 0;
    if (!bad) {
        c->W = sq_nn_caser_conv_width(&c->conv);
        size_t w1[2] = {(size_t)d, (size_t)c->W}, b1[1] = {(size_t)d};
        size_t out[2] = {(size_t)c->n_items, (size_t)c->C};
        c->w1 = sq_params_declare(&c->ps, "fc1.w", 2, w1, 0);
        c->b1 = sq_params_declare(&c->ps, "fc1.b", 1, b1, 0);
        /* the cross-entropy's gradient is dense over all items; bce touches a few rows */
        c->out = sq_params_declare(&c->ps, "out", 2, out, bce);
        bad = c->w1 < 0 || c->b1 < 0 || c->out < 0;
    }
    if (bad || (rc = sq_params_alloc(&c->ps, err))) {
        sq_params_free(&c->ps);
        sq_free(c);
        return bad ? sq_errorf(err, SQ_ERR_ARG, "caser: cannot declare parameters (%u items)",
                               m->info.n_items)
                   : rc;
    }
    sq_params *ps = &c->ps;
    float *E = sq_nn_val(ps, c->item_emb);
    sq_nn_fill_normal(E, ps->p[c->item_emb].size, 1.0f / (float)d, rng);
    sq_nn_fill(E, (size_t)d, 0.0f); /* padding row */
    sq_nn_fill_normal(sq_nn_val(ps, c->user_emb), ps->p[c->user_emb].size, 1.0f / (float)d, rng);
    sq_nn_caser_conv_reset(&c->conv, ps, rng);
    float s = 1.0f / sqrtf((float)c->W);
    sq_nn_fill_uniform(sq_nn_val(ps, c->w1), (size_t)d * c->W, -s, s, rng);
    sq_nn_fill_uniform(sq_nn_val(ps, c->b1), (size_t)d, -s, s, rng);
    float *O = sq_nn_val(ps, c->out);
    sq_nn_fill_normal(O, ps->p[c->out].size, 1.0f / (float)(2 * d), rng);
    for (int i = 0; i < c->n_items; i++)
        O[(size_t)i * c->C + 2 * d] = 0.0f; /* b2 */
    m->impl = c;
    m->params = ps;
    return SQ_OK;
}

static void caser_destroy(sq_model *m) {
    caser *c = m->impl;
    if (!c)
        return;
    sq_params_free(&c->ps);
    sq_free(c);
    m->impl = NULL;
    m->params = NULL;
}

/* ========================================== Scratch ========================================== */

static long config_negatives(const sq_model *m) {
    long k = 0;
    sq_error e;
    if (sq_config_int(m->cfg, "negatives", 0, 0, 4096, &k, &e))
        k = 0;
    return k;
}

/* Arena bytes of one forward over N examples, in caser_forward's order. */
static size_t forward_bytes(const caser *c, size_t N) {
    const size_t L = (size_t)c->L, d = (size_t)c->d, W = (size_t)c->W;
    return a64(N * L * 4) + a64(N * 4) + a64(N * L * d * 4) + a64(N * L * c->nh * 4) +
           a64(N * W * 4) + a64(N * W) + a64(N * c->C * 4);
}

static size_t caser_scratch(const sq_model *m, uint32_t B, uint32_t T) {
    const caser *c = m->impl;
    const size_t N = (size_t)B * (T ? T : 1), L = (size_t)c->L, d = (size_t)c->d;
    const size_t W = (size_t)c->W, C = (size_t)c->C;
    size_t n = forward_bytes(c, N) + (64 << 10);
    if (!T)
        return n;
    n += 2 * a64(N * 4) /* targets, rows */ + a64(N * C * 4) /* dh */ + a64(N * d * 4) /* dz */ +
         2 * a64(N * W * 4) /* dy, dc */ + a64(N * L * d * 4) /* dx */;
    if (c->bce) {
        const size_t K = (size_t)config_negatives(m);
        n += 4 * a64(N * (1 + K) * 4); /* ids, logits, labels, their gradient */
    } else {
        sq_nn_ce_opts o = {0};
        n += a64(sq_nn_ce_chunked_scratch((int)N, c->C, c->n_items, &o));
    }
    return n;
}

/* ========================================== Forward ========================================== */

/* ids [N, L], users [N] -> acts->h [N, C]. rng: dropout (NULL = inference). */
static sq_status caser_forward(const caser *c, sq_arena *a, caser_acts *f, const uint32_t *ids,
                               const uint32_t *users, int N, sq_rng *rng, sq_error *err) {
    const sq_params *ps = &c->ps;
    const int L = c->L, d = c->d, W = c->W, C = c->C;
    const int drop = rng && c->dropout > 0.0f;
    memset(f, 0, sizeof *f);
    f->N = N;
    f->ids = ids;
    f->users = users;
    f->x = sq_arena_alloc(a, (size_t)N * L * d * sizeof(float));
    f->y = sq_arena_alloc(a, (size_t)N * W * sizeof(float));
    f->mask = drop ? sq_arena_alloc(a, (size_t)N * W) : NULL;
    f->h = sq_arena_alloc(a, (size_t)N * C * sizeof(float));
    if (!f->x || !f->y || !f->h || (drop && !f->mask))
        return sq_errorf(err, SQ_ERR_NOMEM, "caser: arena full (N=%d)", N);
    sq_status rc = sq_nn_embedding_forward(f->x, ids, sq_nn_val(ps, c->item_emb), N * L,
                                           c->n_items + 1, d, 0, 1.0f, err);
    if (rc || (rc = sq_nn_caser_conv_forward(&c->conv, ps, a, &f->conv, f->y, f->x, N, err)))
        return rc;
    if (drop) /* in place: the conv backward needs x and argmax, not its output */
        sq_nn_dropout_forward(f->y, f->mask, f->y, (size_t)N * W, c->dropout, rng);
    sq_nn_linear_forward_ld(f->h, C, f->y, W, sq_nn_val(ps, c->w1), sq_nn_val(ps, c->b1), N, W, d);
    const float *U = sq_nn_val(ps, c->user_emb);
#pragma omp parallel for schedule(static) if ((long)N * C > 65536)
    for (int n = 0; n < N; n++) {
        float *h = f->h + (size_t)n * C;
        for (int j = 0; j < d; j++)
            h[j] = h[j] > 0.0f ? h[j] : 0.0f;
        if (users[n] < (uint32_t)c->n_users)
            memcpy(h + d, U + (size_t)users[n] * d, (size_t)d * sizeof *h);
        else
            memset(h + d, 0, (size_t)d * sizeof *h);
        h[2 * d] = 1.0f;
    }
    return SQ_OK;
}

/* dh [N, C] = dL/dh -> every parameter gradient (accumulated). */
static sq_status caser_backward(caser *c, sq_arena *a, const caser_acts *f, const float *dh,
                                sq_error *err) {
    sq_params *ps = &c->ps;
    const int N = f->N, L = c->L, d = c->d, W = c->W, C = c->C;
    float *dz = sq_arena_alloc(a, (size_t)N * d * sizeof *dz);
    float *dy = sq_arena_calloc(a, (size_t)N * W * sizeof *dy);
    float *dc = f->mask ? sq_arena_calloc(a, (size_t)N * W * sizeof *dc) : dy;
    float *dx = sq_arena_calloc(a, (size_t)N * L * d * sizeof *dx);
    if (!dz || !dy || !dc || !dx)
        return sq_errorf(err, SQ_ERR_NOMEM, "caser backward: arena full (N=%d)", N);
#pragma omp parallel for schedule(static) if ((long)N * d > 65536)
    for (int n = 0; n < N; n++) { /* through the ReLU */
        const float *h = f->h + (size_t)n * C, *g = dh + (size_t)n * C;
        for (int j = 0; j < d; j++)
            dz[(size_t)n * d + j] = h[j] > 0.0f ? g[j] : 0.0f;
    }
    sq_param *U = &ps->p[c->user_emb];
    for (int n = 0; n < N; n++) { /* in order: deterministic */
        if (f->users[n] >= (uint32_t)c->n_users)
            continue;
        float *gu = U->grad + (size_t)f->users[n] * d;
        const float *g = dh + (size_t)n * C + d;
        for (int j = 0; j < d; j++)
            gu[j] += g[j];
        sq_param_touch(U, f->users[n]);
    }
    sq_nn_linear_backward(dy, sq_nn_grad(ps, c->w1), sq_nn_grad(ps, c->b1), dz, f->y,
                          sq_nn_val(ps, c->w1), N, W, d);
    if (f->mask)
        sq_nn_dropout_backward(dc, dy, f->mask, (size_t)N * W, c->dropout);
    sq_status rc = sq_nn_caser_conv_backward(&c->conv, ps, a, &f->conv, dx, dc, err);
    if (rc)
        return rc;
    sq_nn_embedding_backward(&ps->p[c->item_emb], dx, f->ids, N * L, 0, 1.0f);
    return SQ_OK;
}

/* ======================================= Training step ======================================= */

/* The paper's loss: −mean log σ(pos) − mean log(1 − σ(neg)) over the K negatives of each
 * example; rows [N] are the batch positions (b·T + t) of the examples, for b->negs. */
static sq_status bce_loss(caser *c, sq_arena *a, const sq_batch *b, const caser_acts *f,
                          const int32_t *tgt, const uint32_t *rows, float *dh, float *loss,
                          sq_error *err) {
    const int N = f->N, C = c->C, K = (int)b->n_neg, n = N * (1 + K);
    if (!b->negs || K < 1)
        return sq_errorf(err, SQ_ERR_ARG,
                         "caser: loss=bce needs sampled negatives (negatives > 0)");
    uint32_t *id = sq_arena_alloc(a, (size_t)n * sizeof *id); /* [pos N | neg N·K] item ids */
    float *x = sq_arena_alloc(a, (size_t)n * sizeof *x), *y = sq_arena_alloc(a, n * sizeof *y);
    float *dx = sq_arena_calloc(a, (size_t)n * sizeof *dx);
    if (!id || !x || !y || !dx)
        return sq_errorf(err, SQ_ERR_NOMEM, "caser bce: arena full (N=%d K=%d)", N, K);
    for (int i = 0; i < N; i++) {
        id[i] = (uint32_t)tgt[i];
        for (int k = 0; k < K; k++) {
            uint32_t g = b->negs[(size_t)rows[i] * K + k];
            if (g == 0 || g > (uint32_t)c->n_items)
                return sq_errorf(err, SQ_ERR_ARG, "caser: negative %u at row %u", g, rows[i]);
            id[N + (size_t)i * K + k] = g - 1;
        }
    }
    const float *O = sq_nn_val(&c->ps, c->out);
    sq_param *P = &c->ps.p[c->out];
#pragma omp parallel for schedule(static) if (n > 4096)
    for (int j = 0; j < n; j++) {
        const float *h = f->h + (size_t)(j < N ? j : (j - N) / K) * C, *o = O + (size_t)id[j] * C;
        float s = 0.0f;
        for (int k = 0; k < C; k++)
            s += h[k] * o[k];
        x[j] = s;
        y[j] = j < N ? 1.0f : 0.0f;
    }
    *loss = sq_nn_bce_forward(x, y, NULL, N) + sq_nn_bce_forward(x + N, y + N, NULL, N * K);
    sq_nn_bce_backward(dx, 1.0f, x, y, NULL, N);
    sq_nn_bce_backward(dx + N, 1.0f, x + N, y + N, NULL, N * K);
    for (int j = 0; j < n; j++) { /* in order: deterministic */
        const int i = j < N ? j : (j - N) / K;
        const float g = dx[j], *h = f->h + (size_t)i * C, *o = O + (size_t)id[j] * C;
        float *dhi = dh + (size_t)i * C, *go = P->grad + (size_t)id[j] * C;
        for (int k = 0; k < C; k++) {
            dhi[k] += g * o[k];
            go[k] += g * h[k];
        }
        sq_param_touch(P, id[j]);
    }
    return isfinite(*loss) ? SQ_OK : sq_errorf(err, SQ_ERR_NUMERIC, "caser: bce loss is %g", *loss);
}

static sq_status caser_train_batch(sq_model *m, const sq_batch *b, sq_arena *a, sq_rng *rng,
                                   double *loss, long *n_targets, sq_error *err) {
    caser *c = m->impl;
    const int L = c->L, C = c->C, T = (int)b->T;
    const size_t BT = (size_t)b->B * T;
    uint32_t *ids = sq_arena_alloc(a, BT * L * sizeof *ids);
    uint32_t *users = sq_arena_alloc(a, BT * sizeof *users);
    uint32_t *rows = sq_arena_alloc(a, BT * sizeof *rows);
    int32_t *tgt = sq_arena_alloc(a, BT * sizeof *tgt);
    if (!ids || !users || !rows || !tgt)
        return sq_errorf(err, SQ_ERR_NOMEM, "caser: arena full (B=%u T=%u)", b->B, b->T);
    int N = 0;
    for (uint32_t r = 0; r < b->B; r++) { /* gather the examples */
        const uint32_t *in = b->inputs + (size_t)r * T, *tg = b->targets + (size_t)r * T;
        for (int t = 0; t < T; t++) {
            if (!tg[t])
                continue;
            if (tg[t] > (uint32_t)c->n_items)
                return sq_errorf(err, SQ_ERR_ARG, "caser: target %u above %d", tg[t], c->n_items);
            for (int i = 0; i < L; i++) {
                int s = t - (L - 1) + i;
                ids[(size_t)N * L + i] = s >= 0 ? in[s] : 0;
            }
            users[N] = b->users[r];
            rows[N] = (uint32_t)((size_t)r * T + t);
            tgt[N++] = (int32_t)tg[t] - 1;
        }
    }
    *loss = 0;
    if (n_targets)
        *n_targets = N;
    if (N == 0)
        return SQ_OK;
    caser_acts f;
    float *dh = NULL, l = 0;
    sq_status rc = caser_forward(c, a, &f, ids, users, N, rng, err);
    if (rc)
        return rc;
    if (!(dh = sq_arena_calloc(a, (size_t)N * C * sizeof *dh)))
        return sq_errorf(err, SQ_ERR_NOMEM, "caser: arena full (N=%d)", N);
    if (c->bce) {
        rc = bce_loss(c, a, b, &f, tgt, rows, dh, &l, err);
    } else {
        const sq_nn_ce_opts o = {.exclude = b->cold_items, .n_exclude = (int)b->n_cold_items};
        rc = sq_nn_ce_chunked(&l, dh, sq_nn_grad(&c->ps, c->out), f.h, sq_nn_val(&c->ps, c->out),
                              tgt, N, C, c->n_items, 1.0f, &o, a, err);
    }
    if (rc)
        return rc;
    *loss = l;
    return caser_backward(c, a, &f, dh, err);
}

/* ========================================== Scoring ========================================== */

/* h = [z | U[user] | 1] of each sequence into out [B, 2d + 1] (vectors) or its scores. */
static sq_status caser_encode(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out,
                              int vectors, sq_arena *a, sq_error *err) {
    const caser *c = m->impl;
    const uint32_t L = (uint32_t)c->L;
    if (B == 0)
        return SQ_OK;
    uint32_t *ids = sq_model_window_ids(m, seqs, B, L, a); /* the last L items, left-padded */
    uint32_t *users = sq_arena_alloc(a, (size_t)B * sizeof *users);
    if (!ids || !users)
        return sq_errorf(err, SQ_ERR_NOMEM, "caser: scoring arena too small");
    for (uint32_t b = 0; b < B; b++)
        users[b] = seqs[b].user; /* UINT32_MAX or an unknown id: a zero user vector */
    caser_acts f;
    sq_status rc = caser_forward(c, a, &f, ids, users, (int)B, NULL, err);
    if (rc)
        return rc;
    if (vectors) {
        memcpy(out, f.h, (size_t)B * c->C * sizeof *out);
        return SQ_OK;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, c->n_items, c->C, 1.0f, f.h, c->C,
                sq_nn_val(&c->ps, c->out), c->C, 0.0f, out, c->n_items);
    return SQ_OK;
}

static sq_status caser_score(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out,
                             sq_arena *a, sq_error *err) {
    return caser_encode(m, seqs, B, out, 0, a, err);
}

static sq_status caser_seq_vectors(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out,
                                   sq_arena *a, sq_error *err) {
    return caser_encode(m, seqs, B, out, 1, a, err);
}

/* The output rows [n_items, 2d + 1] (W2 with b2 as the last column): h · row = the score. */
static const float *caser_item_vectors(const sq_model *m, uint32_t *dim) {
    const caser *c = m->impl;
    *dim = (uint32_t)c->C;
    return sq_nn_val(&c->ps, c->out);
}

const sq_model_ops sq_model_caser_ops = {
    .name = "caser",
    .about = "Caser: horizontal and vertical convolutions over the last L items, user embedding",
    .iterative = 1,
    .init = caser_init,
    .train_batch = caser_train_batch,
    .scratch = caser_scratch,
    .score = caser_score,
    .item_vectors = caser_item_vectors,
    .seq_vectors = caser_seq_vectors,
    .destroy = caser_destroy,
};
