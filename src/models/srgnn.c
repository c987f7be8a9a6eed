/* srgnn.c — SR-GNN (Wu, Tang, Zhu, Wang, Xie, Tan, AAAI 2019) behind the model interface: each
 * sequence becomes a session graph, a gated graph cell propagates over it, and a soft-attention
 * readout turns its positions into one session vector whose dot products with the item table
 * are the scores.
 *
 *   items p[0..L) (the last maxlen) ─▶ graph: nodes = distinct items (first-appearance order),
 *       edge u → v for every transition p[i] → p[i+1] (set once however often it occurs),
 *       A_out[u, v] = 1 / outdeg(u), A_in[v, u] = 1 / indeg(v)   (as SR-GNN's reference code)
 *   H0 = E[nodes] ─▶ `steps` × GGNN cell (one set of weights) ─▶ H
 *   v_i = H[node of p[i]] for every position ─▶ readout (α_i = q·σ(W1 v_last + b1 + W2 v_i),
 *       s_g = Σ α_i v_i, s_h = W3 [v_last; s_g] + b3) ─▶ scores = s_h · E[1..n_items]ᵀ
 *
 * Training: every position of a batch row with a target is one sample whose session is the
 * row's prefix up to that position (its own graph, built from the prefix alone, so no sample
 * sees the transition it predicts): SR-GNN's augmentation of each session into all its
 * prefixes. A row of L targets costs L graphs of up to L nodes, O(L² d²) per row: cheap for
 * sessions (tens of events), quadratic in maxlen for long histories. The loss is the full
 * softmax cross-entropy over all items with the table tied (SR-GNN's), plus l2 · θ added to
 * every gradient (PyTorch Adam's coupled weight_decay, as the paper's L2 of 1e-5); the
 * reported loss is the cross-entropy alone.
 *
 * Parameters: "item_emb" [n_items + 1, d] (row 0 padding: never a node, no softmax entry),
 * "gnn.{in,out}.{w,b}", "gnn.{wx,bx,wh,bh}" (nn_graph.h), "readout.{w1,b1,w2,q,w3,b3}". All
 * start uniform(±1/√d) as SR-GNN's reset_parameters.
 *
 * Invariants
 *  1. A sample's graph, positions and nodes come from its own prefix only.
 *  2. Items outside the catalogue (scoring a sequence from another dataset) are left out of the
 *     session; a session left empty gets a zero vector (every item scores 0: a random ranking).
 *  3. Nothing is allocated per step or per score call: every buffer comes from the caller's
 *     arena, at most ops->scratch bytes.
 *
 * Config: hidden (64), steps (1), l2 (1e-5), maxlen (set by the train command). The loop's
 * own defaults stand (lr 1e-3 as the paper; early stopping instead of the paper's 30 epochs
 * with the rate cut by 10 every 3: on a small log 30 epochs are a few hundred steps). */
#include "seqrec/model.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

enum { SRGNN_MAX_STEPS = 8 };

typedef struct {
    int n_items; /* catalogue; table rows are n_items + 1 */
    int maxlen;  /* longest session: the last maxlen events */
    int d;       /* hidden = embedding width */
    int steps;   /* GGNN propagation steps */
    float l2;    /* coupled L2 on every parameter */
    sq_params ps;
    int item_emb;     /* "item_emb" [n_items + 1, d] */
    sq_nn_ggnn gnn;   /* "gnn.*" */
    sq_nn_readout ro; /* "readout.*" */
} srgnn;

/* One session graph and what its forward keeps. */
typedef struct {
    int L, n;                      /* positions, nodes */
    uint32_t *alias;               /* [L] node of each position */
    float *A_in, *A_out;           /* [n, n] */
    float *H[SRGNN_MAX_STEPS + 1]; /* [n, d] node states after each step (H[0]: E rows) */
    sq_nn_ggnn_acts acts[SRGNN_MAX_STEPS];
} graph;

/* What a forward over P sessions keeps for the backward. */
typedef struct {
    int P, NP, NN;   /* sessions, positions, nodes (all sessions) */
    graph *g;        /* [P] */
    uint32_t *nodes; /* [NN] table rows of every session's nodes, session after session */
    uint32_t *noff;  /* [P + 1] node offsets */
    uint32_t *off;   /* [P + 1] position offsets */
    float *H0;       /* [NN, d] E[nodes] */
    float *X;        /* [NP, d] v_i */
    float *Y;        /* [P, d] s_h */
    sq_nn_readout_acts ra;
} fwd;

static size_t a64(size_t b) {
    return (b + 63) & ~(size_t)63;
}

/* ========================================== Graphs =========================================== */

/* Nodes and aliases of items[0..L) (rows > 0): nodes in first-appearance order into nodes,
 * returns their count. */
static int graph_nodes(const uint32_t *items, int L, uint32_t *nodes, uint32_t *alias) {
    int n = 0;
    for (int i = 0; i < L; i++) {
        int j = 0;
        while (j < n && nodes[j] != items[i])
            j++;
        if (j == n)
            nodes[n++] = items[i];
        alias[i] = (uint32_t)j;
    }
    return n;
}

/* The in- and out-degree-normalised adjacency of the transitions alias[i] → alias[i + 1]. */
static void graph_adjacency(const uint32_t *alias, int L, int n, float *A_in, float *A_out) {
    memset(A_in, 0, (size_t)n * n * sizeof *A_in);
    memset(A_out, 0, (size_t)n * n * sizeof *A_out);
    for (int i = 0; i + 1 < L; i++)
        A_out[(size_t)alias[i] * n + alias[i + 1]] = 1.0f;
    for (int v = 0; v < n; v++) { /* A_in[v, u] = edge(u, v) / indeg(v) */
        float deg = 0;
        for (int u = 0; u < n; u++)
            deg += A_out[(size_t)u * n + v];
        for (int u = 0; deg > 0 && u < n; u++)
            A_in[(size_t)v * n + u] = A_out[(size_t)u * n + v] / deg;
    }
    for (int u = 0; u < n; u++) { /* A_out[u, v] = edge(u, v) / outdeg(u) */
        float *row = A_out + (size_t)u * n, deg = 0;
        for (int v = 0; v < n; v++)
            deg += row[v];
        for (int v = 0; deg > 0 && v < n; v++)
            row[v] /= deg;
    }
}

/* ========================================== Network ========================================== */

/* Forward of P sessions: session k is sess[k][0..len[k]) (table rows > 0, len ≥ 1). */
static sq_status net_forward(const srgnn *net, sq_arena *a, fwd *f, const uint32_t *const *sess,
                             const int *len, int P, sq_error *err) {
    const int d = net->d;
    memset(f, 0, sizeof *f);
    f->P = P;
    int NP = 0;
    for (int k = 0; k < P; k++)
        NP += len[k];
    f->NP = NP;
    f->g = sq_arena_calloc(a, (size_t)P * sizeof *f->g);
    f->nodes = sq_arena_alloc(a, (size_t)NP * sizeof *f->nodes);
    f->noff = sq_arena_alloc(a, (size_t)(P + 1) * sizeof *f->noff);
    f->off = sq_arena_alloc(a, (size_t)(P + 1) * sizeof *f->off);
    if (!f->g || !f->nodes || !f->noff || !f->off)
        return sq_errorf(err, SQ_ERR_NOMEM, "srgnn: arena full (%d sessions)", P);
    int NN = 0;
    f->off[0] = f->noff[0] = 0;
    for (int k = 0; k < P; k++) {
        graph *g = &f->g[k];
        g->L = len[k];
        if (!(g->alias = sq_arena_alloc(a, (size_t)g->L * sizeof *g->alias)))
            return sq_errorf(err, SQ_ERR_NOMEM, "srgnn: arena full");
        g->n = graph_nodes(sess[k], g->L, f->nodes + NN, g->alias);
        g->A_in = sq_arena_alloc(a, (size_t)g->n * g->n * sizeof(float));
        g->A_out = sq_arena_alloc(a, (size_t)g->n * g->n * sizeof(float));
        if (!g->A_in || !g->A_out)
            return sq_errorf(err, SQ_ERR_NOMEM, "srgnn: arena full");
        graph_adjacency(g->alias, g->L, g->n, g->A_in, g->A_out);
        NN += g->n;
        f->noff[k + 1] = (uint32_t)NN;
        f->off[k + 1] = f->off[k] + (uint32_t)g->L;
    }
    f->NN = NN;
    f->H0 = sq_arena_alloc(a, (size_t)NN * d * sizeof(float));
    f->X = sq_arena_alloc(a, (size_t)NP * d * sizeof(float));
    f->Y = sq_arena_alloc(a, (size_t)P * d * sizeof(float));
    if (!f->H0 || !f->X || !f->Y)
        return sq_errorf(err, SQ_ERR_NOMEM, "srgnn: arena full");
    sq_status rc = sq_nn_embedding_forward(f->H0, f->nodes, sq_nn_val(&net->ps, net->item_emb), NN,
                                           net->n_items + 1, d, SQ_NN_NO_PAD, 1.0f, err);
    if (rc)
        return rc;
    for (int k = 0; k < P; k++) {
        graph *g = &f->g[k];
        g->H[0] = f->H0 + (size_t)f->noff[k] * d;
        for (int s = 0; s < net->steps; s++) {
            if (!(g->H[s + 1] = sq_arena_alloc(a, (size_t)g->n * d * sizeof(float))))
                return sq_errorf(err, SQ_ERR_NOMEM, "srgnn: arena full");
            if ((rc = sq_nn_ggnn_forward(&net->gnn, &net->ps, a, &g->acts[s], g->H[s + 1], g->H[s],
                                         g->A_in, g->A_out, g->n, err)))
                return rc;
        }
        const float *H = g->H[net->steps];
        float *x = f->X + (size_t)f->off[k] * d;
        for (int i = 0; i < g->L; i++)
            memcpy(x + (size_t)i * d, H + (size_t)g->alias[i] * d, (size_t)d * sizeof(float));
    }
    return sq_nn_readout_forward(&net->ro, &net->ps, a, &f->ra, f->Y, f->X, f->off, P, err);
}

/* dY: [P, d] -> every parameter gradient (accumulated). */
static sq_status net_backward(srgnn *net, sq_arena *a, const fwd *f, const float *dY,
                              sq_error *err) {
    const int d = net->d;
    sq_params *ps = &net->ps;
    float *dX = sq_arena_calloc(a, (size_t)f->NP * d * sizeof(float));
    float *dH0 = sq_arena_calloc(a, (size_t)f->NN * d * sizeof(float));
    if (!dX || !dH0)
        return sq_errorf(err, SQ_ERR_NOMEM, "srgnn backward: arena full");
    sq_status rc = sq_nn_readout_backward(&net->ro, ps, a, &f->ra, dX, dY, err);
    if (rc)
        return rc;
    for (int k = 0; k < f->P; k++) {
        const graph *g = &f->g[k];
        const size_t nd = (size_t)g->n * d;
        float *dH =
            net->steps ? sq_arena_calloc(a, nd * sizeof(float)) : dH0 + (size_t)f->noff[k] * d;
        if (!dH)
            return sq_errorf(err, SQ_ERR_NOMEM, "srgnn backward: arena full");
        const float *dx = dX + (size_t)f->off[k] * d;
        for (int i = 0; i < g->L; i++) { /* positions back to their nodes */
            float *r = dH + (size_t)g->alias[i] * d;
            for (int j = 0; j < d; j++)
                r[j] += dx[(size_t)i * d + j];
        }
        for (int s = net->steps - 1; s >= 0; s--) {
            float *dprev =
                s ? sq_arena_calloc(a, nd * sizeof(float)) : dH0 + (size_t)f->noff[k] * d;
            if (!dprev)
                return sq_errorf(err, SQ_ERR_NOMEM, "srgnn backward: arena full");
            if ((rc = sq_nn_ggnn_backward(&net->gnn, ps, a, &g->acts[s], dprev, dH, err)))
                return rc;
            dH = dprev;
        }
    }
    sq_nn_embedding_backward(&ps->p[net->item_emb], dH0, f->nodes, f->NN, SQ_NN_NO_PAD, 1.0f);
    return SQ_OK;
}

/* ======================================= Model interface ===================================== */

/* Arena bytes of a forward (and, with train, backward and loss) over P sessions of NP
 * positions in all, sessions at most Lmax long. */
static size_t net_scratch(const srgnn *net, size_t P, size_t NP, size_t Lmax, int train) {
    const size_t d = (size_t)net->d, f = sizeof(float), S = (size_t)net->steps;
    const size_t A = 2 * a64(Lmax * Lmax * f); /* one session's adjacency, at most */
    /* per session: the graph record's share, aliases, adjacency, per-step buffers (states, GGNN
     * activations and scratch) with their alignment, the readout rows */
    size_t per_sess = sizeof(graph) + a64(Lmax * 4) + A + S * (6 * 64) + 4 * d * f + 4 * 64;
    /* per position (every node is a position too): nodes, H0, X, e, α, states and GGNN
     * activations of each step (H, a, gates, gh, P: 10 d) */
    size_t per_pos = 4 + 3 * d * f + f + S * 10 * d * f;
    if (train) {
        per_sess += 6 * d * f + 4 + S * (6 * 64) + 3 * 64;
        per_pos += 3 * d * f + S * 12 * d * f; /* dX, dH0, dpre; per step dH, dgx, dgh, da, dP */
    }
    size_t n = P * per_sess + NP * per_pos + (1u << 20);
    if (train)
        n += sq_nn_ce_chunked_scratch((int)P, net->d, net->n_items + 1,
                                      &(sq_nn_ce_opts){.first_item = 1});
    return n;
}

static size_t srgnn_scratch(const sq_model *m, uint32_t B, uint32_t T) {
    const srgnn *net = m->impl;
    if (T == 0) /* scoring: B sessions of at most maxlen */
        return net_scratch(net, B, (size_t)B * net->maxlen, (size_t)net->maxlen, 0) +
               a64((size_t)B * net->maxlen * 4) * 2 + a64((size_t)B * sizeof(void *)) * 2;
    /* training: every prefix of every row, B T(T+1)/2 positions at most */
    size_t P = (size_t)B * T, NP = (size_t)B * T * (T + 1) / 2;
    return net_scratch(net, P, NP, T, 1) + a64(P * sizeof(void *)) + 2 * a64(P * 4) +
           a64(P * (size_t)net->d * sizeof(float));
}

static sq_status srgnn_train_batch(sq_model *m, const sq_batch *b, sq_arena *a, sq_rng *rng,
                                   double *loss, long *n_targets, sq_error *err) {
    (void)rng;
    srgnn *net = m->impl;
    const uint32_t B = b->B, T = b->T;
    const size_t BT = (size_t)B * T;
    *loss = 0;
    *n_targets = 0;
    const uint32_t **sess = sq_arena_alloc(a, BT * sizeof *sess);
    int *len = sq_arena_alloc(a, BT * sizeof *len);
    int32_t *tgt = sq_arena_alloc(a, BT * sizeof *tgt);
    if (!sess || !len || !tgt)
        return sq_errorf(err, SQ_ERR_NOMEM, "srgnn step: arena full");
    int P = 0;
    for (uint32_t r = 0; r < B; r++) { /* every prefix with a target is a session */
        const uint32_t *in = b->inputs + (size_t)r * T, *tg = b->targets + (size_t)r * T;
        uint32_t s0 = 0;
        for (uint32_t t = 0; t < T; t++) {
            if (in[t] == 0) { /* padding: the session starts after it */
                s0 = t + 1;
                continue;
            }
            if (in[t] > (uint32_t)net->n_items || tg[t] > (uint32_t)net->n_items)
                return sq_errorf(err, SQ_ERR_ARG, "srgnn: item row %u at (%u, %u) is above %d",
                                 in[t] > tg[t] ? in[t] : tg[t], r, t, net->n_items);
            if (!tg[t])
                continue;
            sess[P] = in + s0;
            len[P] = (int)(t - s0 + 1);
            tgt[P] = (int32_t)tg[t];
            P++;
        }
    }
    if (P == 0)
        return SQ_OK;
    fwd f;
    sq_status rc = net_forward(net, a, &f, sess, len, P, err);
    if (rc)
        return rc;
    float *dY = sq_arena_calloc(a, (size_t)P * net->d * sizeof *dY), l = 0;
    if (!dY)
        return sq_errorf(err, SQ_ERR_NOMEM, "srgnn step: arena full");
    sq_param *tab = &net->ps.p[net->item_emb];
    const sq_nn_ce_opts o = {.first_item = 1,
                             .exclude = b->cold_items,
                             .n_exclude = (int)b->n_cold_items,
                             .exclude_shift = 1};
    if ((rc = sq_nn_ce_chunked(&l, dY, tab->grad, f.Y, tab->data, tgt, P, net->d, net->n_items + 1,
                               1.0f, &o, a, err)))
        return rc;
    if ((rc = net_backward(net, a, &f, dY, err)))
        return rc;
    if (net->l2 > 0) /* coupled L2: the gradient of (l2 / 2) |θ|² */
        for (size_t i = 0; i < net->ps.n; i++) {
            sq_param *p = &net->ps.p[i];
            for (size_t j = 0; j < p->size; j++)
                p->grad[j] += net->l2 * p->data[j];
        }
    *loss = l;
    *n_targets = P;
    return SQ_OK;
}

/* The session vector s_h of each sequence into out [B, d] (a zero row for a sequence with no
 * item of the catalogue). */
static sq_status srgnn_seq_vectors(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out,
                                   sq_arena *a, sq_error *err) {
    const srgnn *net = m->impl;
    const uint32_t T = (uint32_t)net->maxlen;
    const int d = net->d;
    if (B == 0)
        return SQ_OK;
    uint32_t *ids = sq_model_window_ids(m, seqs, B, T, a); /* 0: padding or unknown item */
    const uint32_t **sess = sq_arena_alloc(a, (size_t)B * sizeof *sess);
    int *len = sq_arena_alloc(a, (size_t)B * sizeof *len);
    uint32_t *row = sq_arena_alloc(a, (size_t)B * sizeof *row);
    if (!ids || !sess || !len || !row)
        return sq_errorf(err, SQ_ERR_NOMEM, "scoring arena too small");
    int P = 0;
    for (uint32_t r = 0; r < B; r++) { /* invariant 2: compact each row's known items */
        uint32_t *x = ids + (size_t)r * T, n = 0;
        for (uint32_t t = 0; t < T; t++)
            if (x[t])
                x[n++] = x[t];
        if (n) {
            sess[P] = x;
            len[P] = (int)n;
            row[P++] = r;
        }
    }
    memset(out, 0, (size_t)B * d * sizeof *out);
    if (P == 0)
        return SQ_OK;
    fwd f;
    sq_status rc = net_forward(net, a, &f, sess, len, P, err);
    if (rc)
        return rc;
    for (int k = 0; k < P; k++)
        memcpy(out + (size_t)row[k] * d, f.Y + (size_t)k * d, (size_t)d * sizeof *out);
    return SQ_OK;
}

static sq_status srgnn_score(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out,
                             sq_arena *a, sq_error *err) {
    const srgnn *net = m->impl;
    float *v = sq_arena_alloc(a, (size_t)B * net->d * sizeof *v);
    if (!v)
        return sq_errorf(err, SQ_ERR_NOMEM, "scoring arena too small");
    sq_status rc = srgnn_seq_vectors(m, seqs, B, v, a, err);
    if (rc || B == 0)
        return rc;
    const float *E = sq_nn_val(&net->ps, net->item_emb) + net->d; /* row 0 is padding */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, net->n_items, net->d, 1.0f, v,
                net->d, E, net->d, 0.0f, out, net->n_items);
    return SQ_OK;
}

static const float *srgnn_item_vectors(const sq_model *m, uint32_t *dim) {
    const srgnn *net = m->impl;
    *dim = (uint32_t)net->d;
    return sq_nn_val(&net->ps, net->item_emb) + net->d;
}

static void srgnn_destroy(sq_model *m) {
    srgnn *net = m->impl;
    if (!net)
        return;
    sq_params_free(&net->ps);
    sq_free(net);
    m->impl = NULL;
    m->params = NULL;
}

static sq_status srgnn_init(sq_model *m, sq_rng *rng, sq_error *err) {
    long maxlen, hidden, steps;
    double l2;
    sq_status rc;
    if ((rc = sq_config_int(m->cfg, "maxlen", 50, 1, 4096, &maxlen, err)) ||
        (rc = sq_config_int(m->cfg, "hidden", 64, 1, 4096, &hidden, err)) ||
        (rc = sq_config_int(m->cfg, "steps", 1, 1, SRGNN_MAX_STEPS, &steps, err)) ||
        (rc = sq_config_double(m->cfg, "l2", 1e-5, 0, 1, &l2, err)))
        return rc;
    if (m->info.n_items < 1)
        return sq_errorf(err, SQ_ERR_ARG, "srgnn: the dataset has no items");
    if ((rc = sq_config_set_num(m->cfg, "maxlen", (double)maxlen, 1, err)) ||
        (rc = sq_config_set_num(m->cfg, "hidden", (double)hidden, 1, err)) ||
        (rc = sq_config_set_num(m->cfg, "steps", (double)steps, 1, err)) ||
        (rc = sq_config_set_num(m->cfg, "l2", l2, 0, err)))
        return rc;
    srgnn *net = sq_calloc(1, sizeof *net);
    if (!net)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    *net = (srgnn){.n_items = (int)m->info.n_items,
                   .maxlen = (int)maxlen,
                   .d = (int)hidden,
                   .steps = (int)steps,
                   .l2 = (float)l2};
    sq_params_init(&net->ps);
    const int d = net->d;
    size_t emb[2] = {(size_t)net->n_items + 1, (size_t)d};
    net->item_emb = sq_params_declare(&net->ps, "item_emb", 2, emb, 0);
    if (net->item_emb < 0 || sq_nn_ggnn_init(&net->gnn, &net->ps, "gnn", d) ||
        sq_nn_readout_init(&net->ro, &net->ps, "readout", d))
        rc = sq_errorf(err, SQ_ERR_NOMEM, "srgnn: declaring parameters failed");
    if (rc || (rc = sq_params_alloc(&net->ps, err))) {
        sq_params_free(&net->ps);
        sq_free(net);
        return rc;
    }
    const float s = 1.0f / sqrtf((float)d);
    float *E = sq_nn_val(&net->ps, net->item_emb);
    sq_nn_fill_uniform(E, (size_t)(net->n_items + 1) * d, -s, s, rng);
    sq_nn_fill(E, (size_t)d, 0.0f); /* padding row */
    sq_nn_ggnn_reset(&net->gnn, &net->ps, rng);
    sq_nn_readout_reset(&net->ro, &net->ps, rng);
    m->impl = net;
    m->params = &net->ps;
    return SQ_OK;
}

const sq_model_ops sq_model_srgnn_ops = {
    .name = "srgnn",
    .about = "SR-GNN: gated graph cell over each session's graph, attention readout, full CE",
    .iterative = 1,
    .init = srgnn_init,
    .train_batch = srgnn_train_batch,
    .scratch = srgnn_scratch,
    .score = srgnn_score,
    .item_vectors = srgnn_item_vectors,
    .seq_vectors = srgnn_seq_vectors,
    .destroy = srgnn_destroy,
};
