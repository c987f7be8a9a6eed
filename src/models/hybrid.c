/* hybrid.c — `--model hybrid`: LightFM's hybrid matrix factorisation (Kula 2015) with WARP.
 *
 * Items and users are sums of embeddings of their id and of their features:
 *     q_i = E_item[i] + Σ_f x_if E_if[f]                  b_i = b_item[i] + Σ_f x_if b_if[f]
 *     p_u = E_user[u] + Σ_a E_ua[a] + α · mean_{j ∈ H} q_j
 *     x_ui = p_u · q_i + b_i
 * x_if are the item's hashed TF-IDF weights (features.h: title words and bigrams, CJK character
 * n-grams, tags), a the user's attribute values (one-hot), H the user's last `history` items
 * before the event (so that a user the model never saw, or one known only by a few events, has
 * a representation: what cold_users and `recommend` for a new user need).
 *
 * Training (fit) walks the training events (u, i) in a shuffled order for `epochs` epochs,
 * each as LightFM does:
 *   WARP (default): draw negatives j uniformly among the items that may be trained on until
 *     one violates the margin, x_uj > x_ui − 1, or max_sampled draws fail; after n draws the
 *     rank weight is w = ln(max(1, ⌊(N − 1) / n⌋)) (N items) and the step follows the gradient
 *     of w · (1 − x_ui + x_uj);
 *   BPR (loss=bpr): one uniform negative, the gradient of −ln σ(x_ui − x_uj);
 * with per-coordinate Adagrad (accumulators start at 1) and optional L2 (reg). After every
 * epoch the model is validated (NDCG@10, full ranking) and the best epoch is kept (patience).
 *
 * Scoring: item representations are computed once (after fit, at load) into a cache of rows
 * [q_i, b_i]; the sequence vector is [p_u, 1], so vectors reproduce scores exactly. An item
 * or user with no training event (cold_items, cold_users) has an untrained id embedding, so it
 * is left out: such an item is its features alone (and the mean id bias of trained items), such
 * a user is their attributes and history.
 *
 * Config: dim (32), epochs (30), lr (0.05), loss (warp|bpr), max_sampled (10), history (10;
 * 0: none), history_weight (1), reg (0), init_std (0.01), ids (1: id embeddings; 0: features
 * only), id_dropout (0: the chance that a training pair uses no user id and no item id for
 * each of its items, so that features and history learn to stand alone), user_features (1),
 * patience (3), valid_users (0: all), feature_dim, text, tags (as content). Weights, features and
 * the trained-id masks are saved in the model. */
#include "models/hybrid.h"
#include "models/features_io.h"
#include "seqrec/eval.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <string.h>

typedef struct {
    uint32_t ni, nu, d;     /* items, users, embedding width */
    uint32_t fdim, udim;    /* item feature columns, user attribute columns */
    uint32_t n_ua;          /* user attribute fields */
    float *w;               /* all weights, one block of n_w */
    size_t n_w;             /* floats in w */
    float *E_item, *b_item; /* [ni, d], [ni] (views into w) */
    float *E_if, *b_if;     /* [fdim, d], [fdim] */
    float *E_user;          /* [nu, d] */
    float *E_ua;            /* [udim, d] */
    float *acc;             /* Adagrad accumulators (fit only) */
    sq_features items;      /* item feature rows */
    uint32_t *ua_off;       /* [n_ua + 1] first column of each attribute field */
    uint8_t *item_seen;     /* [ni] 1: had a training event (its id embedding is used) */
    uint8_t *user_seen;     /* [nu] */
    float *Q;               /* scoring cache [ni, d + 1]: representation, then bias */
    float prior;            /* an untrained item's id bias: the mean of trained items' (ids) */
    sq_features_save keep;  /* what the last save pointed into */
    int bpr;                /* loss: 0 WARP, 1 BPR */
    int ids;                /* use id embeddings */
    int ufeat;              /* use user attributes */
    long epochs, max_sampled, history, patience, valid_users;
    float lr, reg, hist_w, init_std;
    float id_dropout; /* chance that a training pair leaves out the user's or an item's id */
} hy_state;

/* ========================================== init ========================================== */

static sq_status hy_init(sq_model *m, sq_rng *rng, sq_error *err) {
    (void)rng;
    long dim, epochs, ms, hist, ids, uf, pat, vu, fd, text, tags;
    double lr, reg, hw, istd, idd;
    int loss;
    sq_status rc;
    sq_config *c = m->cfg;
    if ((rc = sq_config_int(c, "dim", 32, 1, 1024, &dim, err)) ||
        (rc = sq_config_int(c, "epochs", 30, 1, 100000, &epochs, err)) ||
        (rc = sq_config_double(c, "lr", 0.05, 1e-6, 10, &lr, err)) ||
        (rc = sq_config_choice(c, "loss", "warp|bpr", 0, &loss, err)) ||
        (rc = sq_config_int(c, "max_sampled", 10, 1, 100000, &ms, err)) ||
        (rc = sq_config_int(c, "history", 10, 0, 1000, &hist, err)) ||
        (rc = sq_config_double(c, "history_weight", 1, 0, 100, &hw, err)) ||
        (rc = sq_config_double(c, "reg", 0, 0, 10, &reg, err)) ||
        (rc = sq_config_double(c, "init_std", 0.01, 0, 10, &istd, err)) ||
        (rc = sq_config_int(c, "ids", 1, 0, 1, &ids, err)) ||
        (rc = sq_config_double(c, "id_dropout", 0, 0, 1, &idd, err)) ||
        (rc = sq_config_int(c, "user_features", 1, 0, 1, &uf, err)) ||
        (rc = sq_config_int(c, "patience", 3, 1, 100000, &pat, err)) ||
        (rc = sq_config_int(c, "valid_users", 0, 0, 1L << 31, &vu, err)) ||
        (rc = sq_config_int(c, "feature_dim", 0, 0, 1L << 24, &fd, err)) ||
        (rc = sq_config_int(c, "text", 1, 0, 1, &text, err)) ||
        (rc = sq_config_int(c, "tags", 1, 0, 1, &tags, err)))
        return rc;
    if ((rc = sq_config_set_num(c, "dim", (double)dim, 0, err)) ||
        (rc = sq_config_set_num(c, "epochs", (double)epochs, 0, err)) ||
        (rc = sq_config_set_num(c, "lr", lr, 0, err)) ||
        (rc = sq_config_set(c, "loss", loss ? "bpr" : "warp", err)) ||
        (rc = sq_config_set_num(c, "max_sampled", (double)ms, 0, err)) ||
        (rc = sq_config_set_num(c, "history", (double)hist, 0, err)) ||
        (rc = sq_config_set_num(c, "history_weight", hw, 0, err)) ||
        (rc = sq_config_set_num(c, "reg", reg, 0, err)) ||
        (rc = sq_config_set_num(c, "init_std", istd, 0, err)) ||
        (rc = sq_config_set_num(c, "ids", (double)ids, 0, err)) ||
        (rc = sq_config_set_num(c, "id_dropout", idd, 0, err)) ||
        (rc = sq_config_set_num(c, "user_features", (double)uf, 0, err)) ||
        (rc = sq_config_set_num(c, "patience", (double)pat, 0, err)) ||
        (rc = sq_config_set_num(c, "valid_users", (double)vu, 0, err)) ||
        (rc = sq_config_set_num(c, "feature_dim", (double)fd, 0, err)) ||
        (rc = sq_config_set_num(c, "text", (double)text, 0, err)) ||
        (rc = sq_config_set_num(c, "tags", (double)tags, 0, err)))
        return rc;
    hy_state *s = sq_calloc(1, sizeof *s);
    if (!s)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    m->impl = s;
    s->ni = m->info.n_items;
    s->nu = m->info.n_users;
    s->d = (uint32_t)dim;
    s->bpr = loss;
    s->ids = (int)ids;
    s->ufeat = (int)uf;
    s->epochs = epochs;
    s->max_sampled = ms;
    s->history = hist;
    s->patience = pat;
    s->valid_users = vu;
    s->lr = (float)lr;
    s->reg = (float)reg;
    s->hist_w = (float)hw;
    s->init_std = (float)istd;
    s->id_dropout = (float)idd;
    return SQ_OK;
}

/* Allocates the weights, the masks and the cache once fdim, udim and n_ua are known. */
static sq_status hy_alloc(hy_state *s, sq_error *err) {
    size_t d = s->d;
    s->n_w = (size_t)s->ni * d + s->ni + (size_t)s->fdim * d + s->fdim + (size_t)s->nu * d +
             (size_t)s->udim * d;
    s->w = sq_calloc(s->n_w, sizeof *s->w);
    s->item_seen = sq_calloc(s->ni ? s->ni : 1, 1);
    s->user_seen = sq_calloc(s->nu ? s->nu : 1, 1);
    s->Q = sq_mallocn((size_t)s->ni * (d + 1) + 1, sizeof *s->Q);
    if (!s->w || !s->item_seen || !s->user_seen || !s->Q)
        return sq_errorf(err, SQ_ERR_NOMEM, "hybrid: out of memory for %zu weights", s->n_w);
    s->E_item = s->w;
    s->b_item = s->E_item + (size_t)s->ni * d;
    s->E_if = s->b_item + s->ni;
    s->b_if = s->E_if + (size_t)s->fdim * d;
    s->E_user = s->b_if + s->fdim;
    s->E_ua = s->E_user + (size_t)s->nu * d;
    return SQ_OK;
}

static sq_status hy_prepare(sq_model *m, const sq_dataset *d, sq_error *err) {
    hy_state *s = m->impl;
    sq_features_opts fo;
    sq_status rc;
    if ((rc = sq_features_opts_from_config(m->cfg, &fo, err)) ||
        (rc = sq_item_features_build(d, &fo, &s->items, err)))
        return rc;
    s->fdim = s->items.dim;
    s->n_ua = s->ufeat ? sq_data_info_of(d)->n_user_attrs : 0;
    if (s->n_ua > 64)
        return sq_errorf(err, SQ_ERR_LIMIT,
                         "hybrid: %u user attribute fields, at most 64 (or set user_features=0)",
                         s->n_ua);
    s->ua_off = sq_calloc((size_t)s->n_ua + 1, sizeof *s->ua_off);
    if (!s->ua_off)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    for (uint32_t k = 0; k < s->n_ua; k++)
        s->ua_off[k + 1] = s->ua_off[k] + sq_data_user_attr_size(d, k);
    s->udim = s->ua_off[s->n_ua];
    if ((rc = hy_alloc(s, err)))
        return rc;
    sq_rng rng;
    long seed = 0;
    sq_config_int(m->cfg, "seed", 0, 0, LONG_MAX, &seed, NULL);
    sq_rng_seed(&rng, (uint64_t)seed ^ 0x4859u);
    /* ids start random (small), features and attributes at zero: a column never seen in
     * training stays zero and adds nothing */
    for (size_t k = 0; k < (size_t)s->ni * s->d; k++)
        s->E_item[k] = (float)sq_rng_normal(&rng) * s->init_std;
    for (size_t k = 0; k < (size_t)s->nu * s->d; k++)
        s->E_user[k] = (float)sq_rng_normal(&rng) * s->init_std;
    char buf[32];
    snprintf(buf, sizeof buf, "%u", s->fdim);
    return sq_config_set(m->cfg, "feature_dim", buf, err);
}

/* ==================================== representations ===================================== */

/* q = (id ? E_item[i] : 0) + Σ x_if E_if[f]; *b likewise. */
static void item_repr(const hy_state *s, uint32_t i, int id, float *q, float *b) {
    const uint32_t d = s->d;
    float bias = 0;
    if (id) {
        memcpy(q, s->E_item + (size_t)i * d, d * sizeof *q);
        bias = s->b_item[i];
    } else {
        memset(q, 0, d * sizeof *q);
    }
    for (uint64_t p = s->items.row_ptr[i]; p < s->items.row_ptr[i + 1]; p++) {
        const float x = s->items.val[p], *e = s->E_if + (size_t)s->items.col[p] * d;
        for (uint32_t c = 0; c < d; c++)
            q[c] += x * e[c];
        bias += x * s->b_if[s->items.col[p]];
    }
    *b = bias;
}

/* Attribute columns of a user (at most n_ua) into col; returns how many. */
static uint32_t attr_cols(const hy_state *s, const uint32_t *attrs, uint32_t *col) {
    uint32_t n = 0;
    for (uint32_t k = 0; attrs && k < s->n_ua; k++)
        if (attrs[k] < s->ua_off[k + 1] - s->ua_off[k])
            col[n++] = s->ua_off[k] + attrs[k];
    return n;
}

/* p_u from the weights (training: every item involved has a trained id), with `tmp` [d]. */
static void user_repr(const hy_state *s, const sq_hybrid_user *u, float *p, float *tmp) {
    const uint32_t d = s->d;
    memset(p, 0, d * sizeof *p);
    if (s->ids && u->user < s->nu)
        memcpy(p, s->E_user + (size_t)u->user * d, d * sizeof *p);
    uint32_t col[64];
    uint32_t na = s->n_ua <= 64 ? attr_cols(s, u->attrs, col) : 0;
    for (uint32_t k = 0; k < na; k++)
        for (uint32_t c = 0; c < d; c++)
            p[c] += s->E_ua[(size_t)col[k] * d + c];
    if (u->n_hist && s->hist_w > 0) {
        const float a = s->hist_w / (float)u->n_hist;
        for (uint32_t h = 0; h < u->n_hist; h++) {
            float b;
            item_repr(s, u->hist[h], s->ids, tmp, &b);
            for (uint32_t c = 0; c < d; c++)
                p[c] += a * tmp[c];
        }
    }
}

/* ===================================== gradient steps ===================================== */

/* Where gradients go: added into grad (the gradient check), or applied with Adagrad. */
typedef struct {
    hy_state *s;
    float *grad; /* laid out as s->w, or NULL: update */
} sink;

/* θ[row .. row + n) gets scale · g */
static void push(const sink *k, float *row, const float *g, float scale, uint32_t n) {
    hy_state *s = k->s;
    size_t off = (size_t)(row - s->w);
    if (k->grad) {
        for (uint32_t c = 0; c < n; c++)
            k->grad[off + c] += scale * g[c];
        return;
    }
    float *acc = s->acc + off;
    for (uint32_t c = 0; c < n; c++) {
        float gc = scale * g[c] + s->reg * row[c];
        acc[c] += gc * gc;
        row[c] -= s->lr * gc / sqrtf(acc[c]);
    }
}

/* The gradient of item i's representation (dq = scale · v) and bias (scale · vb) carried to
 * its id (when id) and feature rows. */
static void push_item(const sink *k, uint32_t i, int id, const float *v, float scale, float vb) {
    hy_state *s = k->s;
    const uint32_t d = s->d;
    if (id) {
        push(k, s->E_item + (size_t)i * d, v, scale, d);
        if (vb != 0)
            push(k, s->b_item + i, &vb, 1, 1);
    }
    for (uint64_t p = s->items.row_ptr[i]; p < s->items.row_ptr[i + 1]; p++) {
        uint32_t f = s->items.col[p];
        float x = s->items.val[p], xb = x * vb;
        push(k, s->E_if + (size_t)f * d, v, scale * x, d);
        if (vb != 0)
            push(k, s->b_if + f, &xb, 1, 1);
    }
}

/* Given dL/dx_ui = ci and dL/dx_uj = cj, carries the gradient to every weight involved.
 * p, qi, qj are the representations before any update; dp [d] is scratch. */
static void apply(const sink *k, const sq_hybrid_user *u, uint32_t i, uint32_t j, int id_i,
                  int id_j, const float *p, const float *qi, const float *qj, float ci, float cj,
                  float *dp) {
    hy_state *s = k->s;
    const uint32_t d = s->d;
    for (uint32_t c = 0; c < d; c++)
        dp[c] = ci * qi[c] + cj * qj[c];
    push_item(k, i, id_i, p, ci, ci);
    push_item(k, j, id_j, p, cj, cj);
    if (s->ids && u->user < s->nu)
        push(k, s->E_user + (size_t)u->user * d, dp, 1, d);
    uint32_t col[64];
    uint32_t na = s->n_ua <= 64 ? attr_cols(s, u->attrs, col) : 0;
    for (uint32_t a = 0; a < na; a++)
        push(k, s->E_ua + (size_t)col[a] * d, dp, 1, d);
    if (u->n_hist && s->hist_w > 0)
        for (uint32_t h = 0; h < u->n_hist; h++)
            push_item(k, u->hist[h], s->ids, dp, s->hist_w / (float)u->n_hist, 0);
}

static float dotf(const float *a, const float *b, uint32_t n) {
    float acc = 0;
    for (uint32_t c = 0; c < n; c++)
        acc += a[c] * b[c];
    return acc;
}

float *sq_hybrid_weights(sq_model *m, size_t *n) {
    hy_state *s = m->impl;
    *n = s->n_w;
    return s->w;
}

double sq_hybrid_triple_loss(sq_model *m, const sq_hybrid_user *u, uint32_t i, uint32_t j, float w,
                             int bpr, float *grad) {
    hy_state *s = m->impl;
    const uint32_t d = s->d;
    float *buf = sq_mallocn((size_t)5 * d, sizeof *buf);
    if (!buf)
        return NAN;
    float *p = buf, *qi = p + d, *qj = qi + d, *dp = qj + d, *tmp = dp + d, bi, bj;
    user_repr(s, u, p, tmp);
    item_repr(s, i, s->ids, qi, &bi);
    item_repr(s, j, s->ids, qj, &bj);
    double xi = (double)dotf(p, qi, d) + bi, xj = (double)dotf(p, qj, d) + bj, loss = 0;
    float ci = 0, cj = 0;
    if (bpr) {
        double z = xi - xj;
        loss = z > 0 ? log1p(exp(-z)) : -z + log1p(exp(z));
        double sg = 1.0 / (1.0 + exp(z)); /* σ(−z) */
        ci = (float)-sg;
        cj = (float)sg;
    } else if (1 - xi + xj > 0) {
        loss = w * (1 - xi + xj);
        ci = -w;
        cj = w;
    }
    if (grad && (ci != 0 || cj != 0)) {
        sink k = {s, grad};
        apply(&k, u, i, j, s->ids, s->ids, p, qi, qj, ci, cj, dp);
    }
    sq_free(buf);
    return loss;
}

/* ========================================= scoring ======================================== */

/* The item cache: every item's representation and bias, ids only where trained, as rows
 * [q_i, b_i] of width d + 1, so that a user's [p_u, 1] dotted with them is the score. */
static void build_cache(hy_state *s) {
    double bsum = 0;
    uint32_t nseen = 0;
    for (uint32_t i = 0; i < s->ni; i++)
        if (s->item_seen[i])
            bsum += s->b_item[i], nseen++;
    float prior = nseen ? (float)(bsum / nseen) : 0; /* an untrained item's id bias */
    s->prior = s->ids ? prior : 0;
    for (uint32_t i = 0; i < s->ni; i++) {
        int id = s->ids && s->item_seen[i];
        float *row = s->Q + (size_t)i * (s->d + 1);
        item_repr(s, i, id, row, &row[s->d]);
        if (s->ids && !id)
            row[s->d] += prior;
    }
}

static sq_status hy_seq_vectors(const sq_model *m, const sq_seq *seqs, uint32_t B, float *U,
                                sq_arena *a, sq_error *err) {
    (void)a;
    (void)err;
    const hy_state *s = m->impl;
    const uint32_t d = s->d;
    for (uint32_t b = 0; b < B; b++) {
        const sq_seq *q = &seqs[b];
        float *p = U + (size_t)b * (d + 1);
        memset(p, 0, d * sizeof *p);
        p[d] = 1.0f; /* takes the item's bias */
        if (s->ids && q->user < s->nu && s->user_seen[q->user])
            memcpy(p, s->E_user + (size_t)q->user * d, d * sizeof *p);
        uint32_t col[64];
        uint32_t na = s->n_ua <= 64 ? attr_cols(s, q->attrs, col) : 0;
        for (uint32_t k = 0; k < na; k++)
            for (uint32_t c = 0; c < d; c++)
                p[c] += s->E_ua[(size_t)col[k] * d + c];
        uint32_t used = 0;
        for (uint32_t e = q->n; e-- > 0 && used < (uint32_t)s->history;)
            if (q->items[e] < s->ni)
                used++;
        if (!used || s->hist_w <= 0)
            continue;
        const float w = s->hist_w / (float)used;
        uint32_t seen = 0;
        for (uint32_t e = q->n; e-- > 0 && seen < used;) {
            if (q->items[e] >= s->ni)
                continue;
            const float *qe = s->Q + (size_t)q->items[e] * (d + 1);
            for (uint32_t c = 0; c < d; c++)
                p[c] += w * qe[c];
            seen++;
        }
    }
    return SQ_OK;
}

static const float *hy_item_vectors(const sq_model *m, uint32_t *dim) {
    const hy_state *s = m->impl;
    *dim = s->d + 1;
    return s->Q;
}

static sq_status hy_score(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out,
                          sq_arena *a, sq_error *err) {
    const hy_state *s = m->impl;
    if (B == 0)
        return SQ_OK;
    const int K = (int)s->d + 1;
    float *U = sq_arena_alloc(a, (size_t)B * K * sizeof *U);
    if (!U)
        return sq_errorf(err, SQ_ERR_NOMEM, "hybrid: scoring arena too small");
    hy_seq_vectors(m, seqs, B, U, a, err);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)s->ni, K, 1.0f, U, K, s->Q, K,
                0.0f, out, (int)s->ni);
    return SQ_OK;
}

/* Cold items: the representation of a feature row as build_cache gives an untrained item's,
 * [Σ x_f E_if[f], Σ x_f b_if[f] + prior]; columns past the model's are ignored. */
static sq_status hy_feature_vectors(const sq_model *m, const sq_features *rows, float *out,
                                    sq_error *err) {
    (void)err;
    const hy_state *s = m->impl;
    const uint32_t d = s->d;
    for (uint32_t r = 0; r < rows->n_rows; r++) {
        float *q = out + (size_t)r * (d + 1);
        memset(q, 0, d * sizeof *q);
        q[d] = s->prior;
        for (uint64_t p = rows->row_ptr[r]; p < rows->row_ptr[r + 1]; p++) {
            if (rows->col[p] >= s->fdim)
                continue;
            const float x = rows->val[p], *e = s->E_if + (size_t)rows->col[p] * d;
            for (uint32_t c = 0; c < d; c++)
                q[c] += x * e[c];
            q[d] += x * s->b_if[rows->col[p]];
        }
    }
    return SQ_OK;
}

static const sq_features *hy_item_features(const sq_model *m, sq_features_opts *o) {
    const hy_state *s = m->impl;
    sq_features_opts_from_config(m->cfg, o, NULL); /* checked at init */
    o->dim = s->fdim;
    return s->items.idf ? &s->items : NULL;
}

static uint32_t hy_user_attrs(const sq_model *m) {
    return ((const hy_state *)m->impl)->n_ua;
}

/* ========================================= training ======================================= */

/* The last ≤ H trainable items of user u before position pos into h; returns how many. */
static uint32_t history_of(const sq_split *sp, const uint32_t *seq, uint32_t pos, uint32_t H,
                           uint32_t *h) {
    uint32_t n = 0;
    for (uint32_t p = pos; p-- > 0 && n < H;)
        if (sq_split_trains_on(sp, seq[p]))
            h[n++] = seq[p];
    return n;
}

static sq_status hy_fit(sq_model *m, const sq_dataset *d, const sq_split *sp,
                        const sq_reporter *rep, sq_error *err) {
    hy_state *s = m->impl;
    const uint32_t D = s->d, H = (uint32_t)s->history;
    const uint64_t *off = sq_data_offsets(d);
    const uint32_t *items = sq_data_items(d);
    const uint32_t *attrs = sq_data_user_attrs(d);
    const uint32_t na_all = sq_data_info_of(d)->n_user_attrs;
    sq_status rc = SQ_OK;
    uint64_t n_pairs = 0;
    for (uint32_t u = 0; u < s->nu; u++)
        for (uint32_t p = 0; p < sp->train_end[u]; p++)
            n_pairs += sq_split_trains_on(sp, items[off[u] + p]);
    uint32_t *pu = sq_mallocn(n_pairs ? n_pairs : 1, sizeof *pu);
    uint32_t *pp = sq_mallocn(n_pairs ? n_pairs : 1, sizeof *pp);
    uint64_t *order = sq_mallocn(n_pairs ? n_pairs : 1, sizeof *order);
    uint32_t *warm = sq_mallocn(s->ni ? s->ni : 1, sizeof *warm), n_warm = 0;
    uint32_t *hist = sq_mallocn((size_t)H + 1, sizeof *hist);
    float *buf = sq_mallocn((size_t)5 * D, sizeof *buf);
    float *best = sq_mallocn(s->n_w, sizeof *best);
    s->acc = sq_mallocn(s->n_w, sizeof *s->acc);
    if (!pu || !pp || !order || !warm || !hist || !buf || !best || !s->acc) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "hybrid: out of memory for training");
        goto done;
    }
    if (n_pairs == 0) {
        rc = sq_errorf(err, SQ_ERR_EMPTY, "hybrid: no training event");
        goto done;
    }
    memset(s->item_seen, 0, s->ni);
    memset(s->user_seen, 0, s->nu);
    uint64_t w = 0;
    for (uint32_t u = 0; u < s->nu; u++)
        for (uint32_t p = 0; p < sp->train_end[u]; p++)
            if (sq_split_trains_on(sp, items[off[u] + p])) {
                pu[w] = u;
                pp[w] = p;
                order[w] = w;
                w++;
                s->item_seen[items[off[u] + p]] = 1;
                s->user_seen[u] = 1;
            }
    for (uint32_t i = 0; i < s->ni; i++)
        if (sq_split_trains_on(sp, i))
            warm[n_warm++] = i;
    for (size_t k = 0; k < s->n_w; k++)
        s->acc[k] = 1.0f;
    long seed = 0;
    sq_config_int(m->cfg, "seed", 0, 0, LONG_MAX, &seed, NULL);
    sq_rng rng = sq_rng_derive((uint64_t)seed, 0x4859);
    float *p = buf, *qi = p + D, *qj = qi + D, *dp = qj + D, *tmp = dp + D;
    const sink k = {s, NULL};
    double best_ndcg = -1;
    long since = 0, best_ep = 0;
    memcpy(best, s->w, s->n_w * sizeof *best);
    for (long ep = 1; ep <= s->epochs; ep++) {
        double t0 = sq_now(), loss = 0;
        uint64_t updates = 0;
        for (uint64_t a = n_pairs; a > 1; a--) { /* Fisher–Yates over 64-bit indices */
            uint64_t b = sq_rng_u64(&rng) % a, t = order[a - 1];
            order[a - 1] = order[b];
            order[b] = t;
        }
        for (uint64_t o = 0; o < n_pairs; o++) {
            uint32_t u = pu[order[o]], pos = pp[order[o]];
            const uint32_t *seq = items + off[u];
            uint32_t i = seq[pos];
            sq_hybrid_user hu = {u, s->n_ua && attrs ? attrs + (size_t)u * na_all : NULL, hist,
                                 H ? history_of(sp, seq, pos, H, hist) : 0};
            /* id dropout: the pair is seen as by a new user, or of a new item, at times */
            int id_i = s->ids, id_j = s->ids;
            if (s->id_dropout > 0) {
                if (sq_rng_uniformf(&rng) < s->id_dropout)
                    hu.user = UINT32_MAX;
                id_i = id_i && sq_rng_uniformf(&rng) >= s->id_dropout;
                id_j = id_j && sq_rng_uniformf(&rng) >= s->id_dropout;
            }
            float bi, bj;
            user_repr(s, &hu, p, tmp);
            item_repr(s, i, id_i, qi, &bi);
            const float xi = dotf(p, qi, D) + bi;
            long tries = s->bpr ? 1 : s->max_sampled;
            for (long t = 1; t <= tries; t++) {
                uint32_t j = warm[sq_rng_below(&rng, n_warm)];
                if (j == i)
                    continue;
                item_repr(s, j, id_j, qj, &bj);
                const float xj = dotf(p, qj, D) + bj;
                if (s->bpr) {
                    double z = (double)xi - xj, sg = 1.0 / (1.0 + exp(z));
                    loss += z > 0 ? log1p(exp(-z)) : -z + log1p(exp(z));
                    apply(&k, &hu, i, j, id_i, id_j, p, qi, qj, (float)-sg, (float)sg, dp);
                    updates++;
                    break;
                }
                if (xj > xi - 1) {
                    double rw = log(fmax(1.0, floor((double)(n_warm - 1) / (double)t)));
                    loss += rw * (1 - xi + xj);
                    if (rw > 0) {
                        apply(&k, &hu, i, j, id_i, id_j, p, qi, qj, (float)-rw, (float)rw, dp);
                        updates++;
                    }
                    break;
                }
            }
        }
        if (!isfinite(loss)) {
            rc = sq_errorf(err, SQ_ERR_NUMERIC, "hybrid: epoch %ld: the loss is %g", ep, loss);
            goto done;
        }
        build_cache(s);
        sq_eval_opts vo = {.k = {10},
                           .n_k = 1,
                           .part = SQ_EVAL_VALID,
                           .max_users = (uint32_t)s->valid_users,
                           .seed = (uint64_t)seed};
        sq_eval_result vr;
        double ndcg = 0;
        if ((rc = sq_evaluate(m, d, sp, &vo, &vr, err))) {
            if (rc != SQ_ERR_EMPTY)
                goto done;
            rc = SQ_OK; /* no validation target: keep the last epoch */
            ndcg = (double)ep;
        } else {
            ndcg = vr.m[0][SQ_M_NDCG].mean;
        }
        sq_report_log(rep, SQ_LOG_INFO, "hybrid",
                      "epoch %ld: loss %.4f over %llu pairs (%llu updates), valid NDCG@10 %.4f, "
                      "%.1f s",
                      ep, loss / (double)n_pairs, (unsigned long long)n_pairs,
                      (unsigned long long)updates, ndcg, sq_now() - t0);
        sq_report_progress(rep, "hybrid epochs", (uint64_t)ep, (uint64_t)s->epochs, "epochs");
        if (ndcg > best_ndcg) {
            best_ndcg = ndcg;
            best_ep = ep;
            since = 0;
            memcpy(best, s->w, s->n_w * sizeof *best);
        } else if (++since >= s->patience) {
            break;
        }
    }
    memcpy(s->w, best, s->n_w * sizeof *best);
    build_cache(s);
    char bbuf[32];
    snprintf(bbuf, sizeof bbuf, "%ld", best_ep);
    rc = sq_config_set(m->cfg, "best_epoch", bbuf, err);
done:
    sq_free(s->acc);
    s->acc = NULL;
    sq_free(pu);
    sq_free(pp);
    sq_free(order);
    sq_free(warm);
    sq_free(hist);
    sq_free(buf);
    sq_free(best);
    return rc;
}

/* ====================================== save and load ===================================== */

static void blob1(sq_blob *b, const char *name, sq_dtype dt, uint64_t n, const void *data,
                  size_t elem) {
    memset(b, 0, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s", name);
    b->dtype = dt;
    b->ndim = 1;
    b->shape[0] = n;
    b->data = data;
    b->nbytes = n * elem;
}

static sq_status hy_save(const sq_model *m, sq_blob **blobs, size_t *n, sq_error *err) {
    hy_state *s = m->impl;
    sq_blob *b = sq_calloc(SQ_FEATURES_BLOBS + 4, sizeof *b);
    if (!b)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    sq_features_save_free(&s->keep);
    size_t k = 0;
    sq_status rc = sq_features_blobs(&s->items, "hybrid.items", &s->keep, b, &k, err);
    if (rc) {
        sq_free(b);
        return rc;
    }
    blob1(&b[k++], "hybrid.weights", SQ_DT_F32, s->n_w, s->w, sizeof(float));
    blob1(&b[k++], "hybrid.attr_offsets", SQ_DT_U32, (uint64_t)s->n_ua + 1, s->ua_off,
          sizeof(uint32_t));
    blob1(&b[k++], "hybrid.item_seen", SQ_DT_U8, s->ni, s->item_seen, 1);
    blob1(&b[k++], "hybrid.user_seen", SQ_DT_U8, s->nu, s->user_seen, 1);
    *blobs = b;
    *n = k;
    return SQ_OK;
}

static sq_status hy_load(sq_model *m, const sq_sqm *f, sq_error *err) {
    hy_state *s = m->impl;
    sq_status rc = sq_features_from_sqm(f, "hybrid.items", &s->items, err);
    if (rc)
        return rc;
    if (s->items.n_rows != s->ni)
        return sq_errorf(err, SQ_ERR_FORMAT, "model file: hybrid features for %u items, not %u",
                         s->items.n_rows, s->ni);
    s->fdim = s->items.dim;
    const sq_blob *bo = sq_sqm_find(f, "hybrid.attr_offsets");
    if (!bo || bo->dtype != SQ_DT_U32 || bo->nbytes < 4 || bo->nbytes > 4 * 65)
        return sq_errorf(err, SQ_ERR_FORMAT, "model file: 'hybrid.attr_offsets' malformed");
    s->n_ua = (uint32_t)(bo->nbytes / 4 - 1);
    s->ua_off = sq_mallocn((size_t)s->n_ua + 1, sizeof *s->ua_off);
    if (!s->ua_off)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    memcpy(s->ua_off, bo->data, bo->nbytes);
    s->udim = s->ua_off[s->n_ua];
    if ((rc = hy_alloc(s, err)))
        return rc;
    const sq_blob *bw = sq_sqm_find(f, "hybrid.weights");
    const sq_blob *bi = sq_sqm_find(f, "hybrid.item_seen");
    const sq_blob *bu = sq_sqm_find(f, "hybrid.user_seen");
    if (!bw || bw->dtype != SQ_DT_F32 || bw->nbytes != s->n_w * sizeof(float) || !bi ||
        bi->nbytes != s->ni || !bu || bu->nbytes != s->nu)
        return sq_errorf(err, SQ_ERR_FORMAT,
                         "model file: hybrid weights or masks missing or of another shape");
    memcpy(s->w, bw->data, bw->nbytes);
    memcpy(s->item_seen, bi->data, s->ni);
    memcpy(s->user_seen, bu->data, s->nu);
    build_cache(s);
    return SQ_OK;
}

static size_t hy_scratch(const sq_model *m, uint32_t B, uint32_t T) {
    (void)T;
    const hy_state *s = m->impl;
    return (size_t)B * (s->d + 1) * sizeof(float) + (1u << 16);
}

static void hy_destroy(sq_model *m) {
    hy_state *s = m->impl;
    if (!s)
        return;
    sq_features_free(&s->items);
    sq_features_save_free(&s->keep);
    sq_free(s->w);
    sq_free(s->acc);
    sq_free(s->ua_off);
    sq_free(s->item_seen);
    sq_free(s->user_seen);
    sq_free(s->Q);
    sq_free(s);
    m->impl = NULL;
}

const sq_model_ops sq_model_hybrid_ops = {
    .name = "hybrid",
    .about = "hybrid (LightFM): ids + text/tag features + user attributes, WARP or BPR",
    .iterative = 0,
    .init = hy_init,
    .prepare = hy_prepare,
    .fit = hy_fit,
    .score = hy_score,
    .scratch = hy_scratch,
    .item_vectors = hy_item_vectors,
    .seq_vectors = hy_seq_vectors,
    .save_state = hy_save,
    .load_state = hy_load,
    .destroy = hy_destroy,
    .item_features = hy_item_features,
    .feature_vectors = hy_feature_vectors,
    .user_attrs = hy_user_attrs,
};
