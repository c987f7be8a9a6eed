/* lightgcn.c — LightGCN (He, Deng, Wang, Li, Zhang, Wang 2020): graph convolution without
 * weights or nonlinearities on the user–item bipartite graph, ranked with BPR.
 *
 *   E⁽⁰⁾ = ego embeddings [n_users + n_items, dim] (users first, then items: node nu + k = item k)
 *   E⁽ᵏ⁺¹⁾ = Â E⁽ᵏ⁾,  Â = D^-1/2 A D^-1/2 of the graph of training interactions (graphs.c)
 *   F = (E⁽⁰⁾ + … + E⁽ᴷ⁾) / (K + 1)                 the final embeddings
 *   x_ui = F[u] · F[nu + i]
 *   loss = mean over (u, i, j) of −log σ(x_ui − x_uj)
 *          + (reg / 2)(|E⁽⁰⁾[u]|² + |E⁽⁰⁾[i]|² + |E⁽⁰⁾[j]|²)   (per triple, the paper's L2 on the
 *                                                              ego embeddings of the batch)
 * The reported loss is the BPR term alone (as bpr).
 *
 * The graph comes from the training part of the split the model trains on: the train loop
 * calls fit (lgcn_fit) with the split before the first batch. It is saved with the model, so a
 * loaded model scores (and can be trained further) without the split.
 *
 * Training does the true propagation every step (no stale tables): F is linear in E⁽⁰⁾, so the
 * forward keeps nothing but F, and the backward is dE⁽⁰⁾ += Σₖ Âᵏ dF / (K + 1) (Â symmetric),
 * evaluated Horner-style with K sparse products: acc = g; acc = g + Â acc (K times). A step
 * costs 2K sparse products of [N, dim] (N = users + items) whatever the batch size, so the
 * default batch is large. The embedding table's gradient is dense (propagation reaches every
 * node), so it is declared dense.
 *
 * Scoring uses F. A loaded model computes F once at load (and item_vectors computes it on first
 * use); a model in training has no such cache (train_batch drops it) and propagates into the
 * scoring arena at each call, so validation between epochs always sees the current parameters.
 * A user outside the graph (sq_seq.user == UINT32_MAX or ≥ n_users) gets the mean of F over the
 * items of its sequence (items outside the catalogue skipped; none: a zero vector).
 *
 * Config: dim (64), layers (3), reg (1e-4), init_std (0.1); and, when not given, the train
 * loop's negatives (1), lr (0.005), batch (256 users), maxlen (200), epochs (1000, stopped
 * earlier by patience). The paper's lr is 0.001 with batches of 2048 interactions; a batch here
 * is 256 users with all their training events (≈ 1.8k interactions on Beauty, 25k on
 * ML-100K), so ML-100K gets 4 steps an epoch, and on its validation part lr 0.005 reaches NDCG@10
 * 0.064 where 0.001 stalls at 0.04 (docs/benchmarks.md). */
#include "models/graphs.h"
#include "seqrec/model.h"

#include <cblas.h>
#include <string.h>

typedef struct {
    sq_params ps;     /* the one tensor below */
    int emb;          /* "lightgcn.emb" [n_users + n_items, dim]: E⁽⁰⁾ */
    int dim, layers;  /* width, propagation layers K */
    float reg;        /* L2 strength per triple */
    sq_saved_graph g; /* Â over users + items; g.A.n_rows == 0 until fit or load */
    float *final;     /* [N, dim] F of the current parameters, or NULL (see the header) */
} lgcn;

/* ======================================== init ========================================= */

static sq_status lgcn_init(sq_model *m, sq_rng *rng, sq_error *err) {
    long dim, layers, negatives;
    double reg, init_std;
    sq_status rc;
    if ((rc = sq_config_default(m->cfg, "negatives", "1", err)) ||
        (rc = sq_config_default(m->cfg, "lr", "0.005", err)) ||
        (rc = sq_config_default(m->cfg, "epochs", "1000", err)) ||
        (rc = sq_config_default(m->cfg, "batch", "256", err)) ||
        (rc = sq_config_default(m->cfg, "maxlen", "200", err)))
        return rc;
    if ((rc = sq_config_int(m->cfg, "dim", 64, 1, 4096, &dim, err)) ||
        (rc = sq_config_int(m->cfg, "layers", 3, 0, 16, &layers, err)) ||
        (rc = sq_config_double(m->cfg, "reg", 1e-4, 0, 100, &reg, err)) ||
        (rc = sq_config_double(m->cfg, "init_std", 0.1, 0, 10, &init_std, err)) ||
        (rc = sq_config_int(m->cfg, "negatives", 1, 1, 4096, &negatives, err)))
        return rc; /* negatives = 0 is refused: BPR needs a negative per positive */
    if ((rc = sq_config_set_num(m->cfg, "dim", (double)dim, 1, err)) ||
        (rc = sq_config_set_num(m->cfg, "layers", (double)layers, 1, err)) ||
        (rc = sq_config_set_num(m->cfg, "reg", reg, 0, err)) ||
        (rc = sq_config_set_num(m->cfg, "init_std", init_std, 0, err)))
        return rc;
    const uint32_t nu = m->info.n_users, ni = m->info.n_items;
    if (nu == 0 || ni == 0)
        return sq_errorf(err, SQ_ERR_EMPTY, "lightgcn: the dataset has %u users and %u items", nu,
                         ni);
    lgcn *s = sq_calloc(1, sizeof *s);
    if (!s)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    m->impl = s; /* destroy frees it, whatever happens below */
    sq_params_init(&s->ps);
    s->dim = (int)dim;
    s->layers = (int)layers;
    s->reg = (float)reg;
    size_t shape[2] = {(size_t)nu + ni, (size_t)dim};
    if ((s->emb = sq_params_declare(&s->ps, "lightgcn.emb", 2, shape, 0)) < 0)
        return sq_errorf(err, SQ_ERR_NOMEM, "lightgcn: cannot declare the embedding table");
    if ((rc = sq_params_alloc(&s->ps, err)))
        return rc;
    sq_nn_fill_normal(sq_nn_val(&s->ps, s->emb), shape[0] * shape[1], (float)init_std, rng);
    m->params = &s->ps;
    return SQ_OK;
}

static sq_status lgcn_fit(sq_model *m, const sq_dataset *d, const sq_split *sp,
                          const sq_reporter *rep, sq_error *err) {
    (void)rep;
    lgcn *s = m->impl;
    sq_nn_csr A;
    sq_status rc = sq_graph_user_item(&A, d, sp, err);
    if (rc)
        return rc;
    sq_free(s->final);
    s->final = NULL;
    return sq_saved_graph_set(&s->g, &A, err);
}

static size_t nodes(const sq_model *m) {
    return (size_t)m->info.n_users + m->info.n_items;
}

static size_t lgcn_scratch(const sq_model *m, uint32_t B, uint32_t T) {
    const lgcn *s = m->impl;
    const size_t table = nodes(m) * (size_t)s->dim * sizeof(float) + 64;
    long k = 1;
    if (T && sq_config_int(m->cfg, "negatives", 1, 1, 4096, &k, NULL))
        k = 1;
    if (T) /* F, two propagation buffers, dF; pos, neg, dpos, dneg per pair */
        return 4 * table + (size_t)B * T * (size_t)k * 4 * sizeof(float) + 4096;
    const size_t u = (size_t)B * s->dim * sizeof(float) + 4096; /* U */
    return s->final ? u : 3 * table + u; /* a loaded model scores from its table */
}

/* ==================================== propagation ====================================== */

static void add_into(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        y[i] += x[i];
}

static void scale(float *y, float a, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        y[i] *= a;
}

/* F = (E + ÂE + … + Âᴷ E) / (K + 1); t1, t2: scratch of F's size. */
static void propagate(const lgcn *s, const float *E, float *F, float *t1, float *t2) {
    const size_t n = (size_t)s->g.A.n_rows * s->dim;
    memcpy(F, E, n * sizeof *F);
    const float *cur = E;
    for (int k = 1; k <= s->layers; k++) {
        float *nxt = k & 1 ? t1 : t2;
        sq_nn_spmm_forward(nxt, &s->g.A, cur, s->dim);
        add_into(F, nxt, n);
        cur = nxt;
    }
    scale(F, 1.0f / (float)(s->layers + 1), n);
}

/* F of the current parameters: the cache, or propagated into the arena. */
static sq_status final_table(const sq_model *m, sq_arena *a, const float **F, sq_error *err) {
    const lgcn *s = m->impl;
    if (s->final) {
        *F = s->final;
        return SQ_OK;
    }
    if (s->g.A.n_rows != nodes(m))
        return sq_errorf(err, SQ_ERR_ARG,
                         "lightgcn: no user-item graph (the model was never "
                         "trained on a split)");
    const size_t nb = nodes(m) * (size_t)s->dim * sizeof(float);
    float *out = sq_arena_alloc(a, nb), *t1 = sq_arena_alloc(a, nb), *t2 = sq_arena_alloc(a, nb);
    if (!out || !t1 || !t2)
        return sq_errorf(err, SQ_ERR_NOMEM, "lightgcn: arena too small for propagation");
    propagate(s, sq_nn_val(&s->ps, s->emb), out, t1, t2);
    *F = out;
    return SQ_OK;
}

/* ======================================== train ======================================== */

static float dot(const float *a, const float *b, int n) {
    float acc = 0;
    for (int c = 0; c < n; c++)
        acc += a[c] * b[c];
    return acc;
}

static void axpy(float *y, float a, const float *x, int n) {
    for (int c = 0; c < n; c++)
        y[c] += a * x[c];
}

static sq_status lgcn_train_batch(sq_model *m, const sq_batch *b, sq_arena *a, sq_rng *rng,
                                  double *loss, long *n_targets, sq_error *err) {
    (void)rng;
    lgcn *s = m->impl;
    sq_params *ps = &s->ps;
    const uint32_t nu = m->info.n_users, ni = m->info.n_items, K = b->n_neg;
    const int C = s->dim;
    sq_free(s->final); /* the parameters are about to change */
    s->final = NULL;
    if (!b->negs || K == 0)
        return sq_errorf(err, SQ_ERR_ARG,
                         "lightgcn: the batch has no negatives (set negatives >= 1)");
    if (s->g.A.n_rows != nodes(m))
        return sq_errorf(err, SQ_ERR_ARG,
                         "lightgcn: no user-item graph: train with sq_train, "
                         "which builds it from the split (fit)");
    const size_t N = nodes(m), nb = N * (size_t)C * sizeof(float), cap = (size_t)b->B * b->T * K;
    float *F = sq_arena_alloc(a, nb), *t1 = sq_arena_alloc(a, nb), *t2 = sq_arena_alloc(a, nb);
    float *dF = sq_arena_calloc(a, nb);
    float *pos = sq_arena_alloc(a, cap * sizeof *pos), *neg = sq_arena_alloc(a, cap * sizeof *neg);
    float *dpos = sq_arena_calloc(a, cap * sizeof *dpos);
    float *dneg = sq_arena_calloc(a, cap * sizeof *dneg);
    if (!F || !t1 || !t2 || !dF || !pos || !neg || !dpos || !dneg)
        return sq_errorf(err, SQ_ERR_NOMEM, "lightgcn: training arena too small");
    const float *E = sq_nn_val(ps, s->emb);
    propagate(s, E, F, t1, t2);

    /* pairs in batch order: row r, position t (with a target), negative k */
    size_t n = 0;
    long nt = 0;
    for (uint32_t r = 0; r < b->B; r++) {
        const uint32_t u = b->users[r];
        if (u >= nu)
            return sq_errorf(err, SQ_ERR_ARG, "lightgcn: user %u outside [0, %u)", u, nu);
        for (uint32_t t = 0; t < b->T; t++) {
            const size_t at = (size_t)r * b->T + t;
            const uint32_t i = b->targets[at];
            if (!i)
                continue;
            if (i > ni)
                return sq_errorf(err, SQ_ERR_ARG, "lightgcn: target %u outside the catalogue",
                                 i - 1);
            const float *fu = F + (size_t)u * C;
            const float xi = dot(fu, F + (nu + (size_t)i - 1) * C, C);
            for (uint32_t k = 0; k < K; k++) {
                const uint32_t j = b->negs[at * K + k];
                if (j == 0 || j > ni)
                    return sq_errorf(err, SQ_ERR_ARG, "lightgcn: bad negative %u for a target", j);
                pos[n] = xi;
                neg[n++] = dot(fu, F + (nu + (size_t)j - 1) * C, C);
            }
            nt++;
        }
    }
    *n_targets = nt;
    *loss = n ? sq_nn_bpr_forward(pos, neg, (int)n) : 0.0;
    if (!n)
        return SQ_OK;
    sq_nn_bpr_backward(dpos, dneg, 1.0f, pos, neg, (int)n);

    /* dF on the batch's rows; the L2 term straight into dE⁽⁰⁾ (it is on the ego embeddings) */
    float *gE = ps->p[s->emb].grad;
    const float rn = s->reg / (float)n;
    size_t p = 0;
    for (uint32_t r = 0; r < b->B; r++) {
        const size_t u = b->users[r];
        for (uint32_t t = 0; t < b->T; t++) {
            const size_t at = (size_t)r * b->T + t;
            if (!b->targets[at])
                continue;
            const size_t i = nu + (size_t)b->targets[at] - 1;
            for (uint32_t k = 0; k < K; k++, p++) {
                const size_t j = nu + (size_t)b->negs[at * K + k] - 1;
                const float *fu = F + u * C, *fi = F + i * C, *fj = F + j * C;
                axpy(dF + u * C, dpos[p], fi, C);
                axpy(dF + u * C, dneg[p], fj, C);
                axpy(dF + i * C, dpos[p], fu, C);
                axpy(dF + j * C, dneg[p], fu, C);
                axpy(gE + u * C, rn, E + u * C, C);
                axpy(gE + i * C, rn, E + i * C, C);
                axpy(gE + j * C, rn, E + j * C, C);
            }
        }
    }
    /* dE⁽⁰⁾ += Σₖ Âᵏ g with g = dF / (K + 1): acc = g, then acc = g + Â acc, K times */
    const size_t nf = N * (size_t)C;
    scale(dF, 1.0f / (float)(s->layers + 1), nf);
    const float *acc = dF;
    for (int k = 1; k <= s->layers; k++) {
        float *nxt = k & 1 ? t1 : t2;
        sq_nn_spmm_forward(nxt, &s->g.A, acc, C);
        add_into(nxt, dF, nf);
        acc = nxt;
    }
    add_into(gE, acc, nf);
    return SQ_OK;
}

/* ======================================== score ======================================== */

/* U [B, dim]: F[u] for a user of the graph, the mean of its items' F for any other. */
static void user_vectors(const sq_model *m, const float *F, const sq_seq *seqs, uint32_t B,
                         float *U) {
    const lgcn *s = m->impl;
    const uint32_t nu = m->info.n_users, ni = m->info.n_items;
    const int C = s->dim;
    for (uint32_t b = 0; b < B; b++) {
        const sq_seq *q = &seqs[b];
        float *ub = U + (size_t)b * C;
        if (q->user < nu) {
            memcpy(ub, F + (size_t)q->user * C, (size_t)C * sizeof *ub);
            continue;
        }
        memset(ub, 0, (size_t)C * sizeof *ub);
        uint32_t used = 0;
        for (uint32_t e = 0; e < q->n; e++)
            if (q->items[e] < ni) {
                axpy(ub, 1.0f, F + (nu + (size_t)q->items[e]) * C, C);
                used++;
            }
        for (int c = 0; used && c < C; c++)
            ub[c] /= (float)used;
    }
}

static sq_status lgcn_seq_vectors(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out,
                                  sq_arena *a, sq_error *err) {
    const float *F = NULL;
    sq_status rc = final_table(m, a, &F, err);
    if (!rc)
        user_vectors(m, F, seqs, B, out);
    return rc;
}

static sq_status lgcn_score(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out,
                            sq_arena *a, sq_error *err) {
    const lgcn *s = m->impl;
    const int C = s->dim;
    const uint32_t ni = m->info.n_items;
    if (B == 0)
        return SQ_OK;
    const float *F = NULL;
    sq_status rc = final_table(m, a, &F, err);
    if (rc)
        return rc;
    float *U = sq_arena_alloc(a, (size_t)B * C * sizeof *U);
    if (!U)
        return sq_errorf(err, SQ_ERR_NOMEM, "lightgcn: scoring arena too small");
    user_vectors(m, F, seqs, B, U);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)ni, C, 1.0f, U, C,
                F + (size_t)m->info.n_users * C, C, 0.0f, out, (int)ni);
    return SQ_OK;
}

/* F into s->final (malloc'd); NULL on failure. */
static const float *build_final(const sq_model *m) {
    lgcn *s = m->impl;
    if (s->final || s->g.A.n_rows != nodes(m))
        return s->final;
    const size_t n = nodes(m) * (size_t)s->dim;
    float *F = sq_mallocn(n, sizeof *F), *t1 = sq_mallocn(n, sizeof *t1);
    float *t2 = sq_mallocn(n, sizeof *t2);
    if (F && t1 && t2) {
        propagate(s, sq_nn_val(&s->ps, s->emb), F, t1, t2);
        s->final = F;
        F = NULL;
    }
    sq_free(F);
    sq_free(t1);
    sq_free(t2);
    return s->final;
}

/* The items' final embeddings. In a model still training (no cache), they are computed here
 * and kept until the next train_batch: call it from one thread, as after loading. */
static const float *lgcn_item_vectors(const sq_model *m, uint32_t *dim) {
    const lgcn *s = m->impl;
    *dim = (uint32_t)s->dim;
    const float *F = build_final(m);
    return F ? F + (size_t)m->info.n_users * s->dim : NULL;
}

/* ==================================== save and load ==================================== */

static sq_status lgcn_save_state(const sq_model *m, sq_blob **blobs, size_t *n, sq_error *err) {
    const lgcn *s = m->impl;
    *blobs = NULL;
    *n = 0;
    if (s->g.A.n_rows == 0)
        return SQ_OK; /* never trained: no graph to keep */
    if (!(*blobs = sq_calloc(3, sizeof **blobs)))
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    sq_saved_graph_blobs(&s->g, "lightgcn.graph", *blobs);
    *n = 3;
    return SQ_OK;
}

static sq_status lgcn_load_state(sq_model *m, const sq_sqm *f, sq_error *err) {
    lgcn *s = m->impl;
    if (!sq_sqm_find(f, "lightgcn.graph.row_ptr"))
        return SQ_OK; /* saved untrained */
    sq_status rc = sq_saved_graph_load(&s->g, f, "lightgcn.graph", (uint32_t)nodes(m), err);
    if (rc)
        return rc;
    if (!build_final(m))
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory for the propagated embeddings");
    return SQ_OK;
}

static void lgcn_destroy(sq_model *m) {
    lgcn *s = m->impl;
    if (!s)
        return;
    sq_params_free(&s->ps);
    sq_saved_graph_free(&s->g);
    sq_free(s->final);
    sq_free(s);
    m->impl = NULL;
    m->params = NULL;
}

const sq_model_ops sq_model_lightgcn_ops = {
    .name = "lightgcn",
    .about = "LightGCN: user and item embeddings propagated over the training graph, BPR loss",
    .iterative = 1,
    .init = lgcn_init,
    .fit = lgcn_fit,
    .train_batch = lgcn_train_batch,
    .scratch = lgcn_scratch,
    .score = lgcn_score,
    .item_vectors = lgcn_item_vectors,
    .seq_vectors = lgcn_seq_vectors,
    .save_state = lgcn_save_state,
    .load_state = lgcn_load_state,
    .destroy = lgcn_destroy,
};
