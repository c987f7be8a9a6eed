/* item_enc.c — the item encoder (see item_enc.h): the item table from the id embedding and GCN
 * layers over the item-transition graph, its backward, its cache for scoring, and its graph in
 * model files. */
#include "models/item_enc.h"

#include <string.h>

sq_status sq_item_enc_config(sq_config *cfg, sq_item_enc_opts *o, sq_error *err) {
    int k, f;
    long l, dim;
    sq_status rc;
    if ((rc = sq_config_choice(cfg, "item_encoder", "id|graph|id+graph", 0, &k, err)) ||
        (rc = sq_config_int(cfg, "graph_layers", 1, 1, SQ_ITEM_ENC_MAX_LAYERS, &l, err)) ||
        (rc = sq_config_choice(cfg, "item_features", "off|on", 0, &f, err)) ||
        (rc = sq_config_int(cfg, "item_feature_dim", SQ_ITEM_ENC_FEAT_DIM, 256,
                            SQ_ITEM_ENC_FEAT_DIM_MAX, &dim, err)))
        return rc;
    if (dim & (dim - 1))
        return sq_errorf(err, SQ_ERR_ARG, "config: item_feature_dim (%ld) must be a power of two",
                         dim);
    static const char *const names[] = {"id", "graph", "id+graph"};
    char buf[16], dbuf[16];
    snprintf(buf, sizeof buf, "%ld", l);
    snprintf(dbuf, sizeof dbuf, "%ld", dim);
    if ((rc = sq_config_set(cfg, "item_encoder", names[k], err)) ||
        (rc = sq_config_set(cfg, "graph_layers", buf, err)) ||
        (rc = sq_config_set(cfg, "item_features", f ? "on" : "off", err)) ||
        (rc = sq_config_set(cfg, "item_feature_dim", dbuf, err)))
        return rc;
    o->kind = (sq_item_enc_kind)k;
    o->layers = (int)l;
    o->feat = f;
    o->fdim = (uint32_t)dim;
    return SQ_OK;
}

int sq_item_enc_declare(sq_item_enc *e, sq_params *ps, const sq_item_enc_opts *o, int emb, int V,
                        int C) {
    memset(e, 0, sizeof *e);
    e->kind = o->kind;
    e->V = V;
    e->C = C;
    e->emb = emb;
    e->layers = o->kind == SQ_ITEM_ENC_ID ? 0 : o->layers;
    e->feat = o->feat;
    e->fdim = o->fdim;
    e->wf = -1;
    if (e->layers < 0 || e->layers > SQ_ITEM_ENC_MAX_LAYERS)
        return -1;
    for (int l = 0; l < e->layers; l++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "item_enc.gcn%d", l);
        if (sq_nn_gcn_init(&e->gcn[l], ps, prefix, C, C) < 0)
            return -1;
    }
    if (e->feat) {
        size_t shape[2] = {e->fdim, (size_t)C};
        if (!e->fdim || (e->wf = sq_nn_declare(ps, "item_enc.feat", "w", 2, shape, 0)) < 0)
            return -1;
    }
    return 0;
}

void sq_item_enc_reset(const sq_item_enc *e, sq_params *ps, sq_rng *rng) {
    for (int l = 0; l < e->layers; l++)
        sq_nn_gcn_reset(&e->gcn[l], ps, rng);
    /* F's rows are unit vectors: each coordinate of F·Wf starts at N(0, 0.01²) whatever an
     * item's feature count, small beside E, so training starts near the model without
     * features and learns how much of the content to use. */
    if (e->feat)
        sq_nn_fill_normal(sq_nn_val(ps, e->wf), (size_t)e->fdim * e->C, 0.01f, rng);
}

void sq_item_enc_free(sq_item_enc *e) {
    if (!e)
        return;
    sq_saved_graph_free(&e->g);
    sq_features_free(&e->F);
    sq_features_save_free(&e->keep);
    sq_free(e->cache);
    e->cache = NULL;
}

sq_status sq_item_enc_prepare(sq_item_enc *e, const sq_dataset *d, sq_error *err) {
    if (!e->feat)
        return SQ_OK;
    if (sq_data_info_of(d)->n_items + 1 != (uint32_t)e->V)
        return sq_errorf(err, SQ_ERR_ARG, "item features: the dataset has %u items, not %d",
                         sq_data_info_of(d)->n_items, e->V - 1);
    sq_features_free(&e->F);
    sq_features_opts fo = {.dim = e->fdim};
    sq_status rc = sq_item_features_build(d, &fo, &e->F, err);
    if (rc)
        return rc;
    if (e->F.row_ptr[e->F.n_rows] == 0) {
        sq_features_free(&e->F);
        return sq_errorf(err, SQ_ERR_ARG,
                         "config: item_features=on but no item of the dataset has text or tags "
                         "(ingest a side file with titles, descriptions or tags, or set "
                         "item_features=off)");
    }
    sq_item_enc_drop(e);
    return SQ_OK;
}

sq_status sq_item_enc_fit(sq_item_enc *e, const sq_dataset *d, const sq_split *s, sq_error *err) {
    if (e->kind == SQ_ITEM_ENC_ID)
        return SQ_OK;
    sq_nn_csr A;
    sq_status rc = sq_graph_item_transitions(&A, d, s, err);
    if (rc)
        return rc;
    sq_item_enc_drop(e);
    return sq_saved_graph_set(&e->g, &A, err);
}

size_t sq_item_enc_scratch(const sq_item_enc *e) {
    if (!sq_item_enc_runs(e))
        return 0;
    const size_t t = ((size_t)e->V * e->C * sizeof(float) + 63) & ~(size_t)63;
    if (e->kind == SQ_ITEM_ENC_ID) /* the table, and dtable's room */
        return 2 * t + (64u << 10);
    /* forward: per layer its output and Z; backward: per layer dx and dZ */
    return (size_t)e->layers * 4 * t + 2 * t + (64u << 10);
}

static void add_into(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        y[i] += x[i];
}

/* table[i+1] += Σ_k F[i, col_k] Wf[col_k] (feat). */
static void add_features(const sq_item_enc *e, const sq_params *ps, float *table) {
    if (!e->feat)
        return;
    const float *W = sq_nn_val(ps, e->wf);
    const size_t C = (size_t)e->C;
    const sq_features *F = &e->F;
#pragma omp parallel for schedule(static) if (F->n_rows > 4096)
    for (uint32_t i = 0; i < F->n_rows; i++) {
        float *t = table + (i + 1) * C;
        for (uint64_t k = F->row_ptr[i]; k < F->row_ptr[i + 1]; k++) {
            const float v = F->val[k], *w = W + (size_t)F->col[k] * C;
            for (size_t c = 0; c < C; c++)
                t[c] += v * w[c];
        }
    }
}

sq_status sq_item_enc_feature_vectors(const sq_item_enc *e, const sq_params *ps,
                                      const sq_features *rows, float *out, sq_error *err) {
    if (!e->feat)
        return sq_errorf(err, SQ_ERR_ARG, "item encoder: item_features=off");
    const float *W = sq_nn_val(ps, e->wf);
    const size_t C = (size_t)e->C;
    memset(out, 0, (size_t)rows->n_rows * C * sizeof *out);
    for (uint32_t r = 0; r < rows->n_rows; r++)
        for (uint64_t k = rows->row_ptr[r]; k < rows->row_ptr[r + 1]; k++) {
            if (rows->col[k] >= e->fdim)
                continue;
            const float v = rows->val[k], *w = W + (size_t)rows->col[k] * C;
            for (size_t c = 0; c < C; c++)
                out[r * C + c] += v * w[c];
        }
    return SQ_OK;
}

const sq_features *sq_item_enc_features(const sq_item_enc *e, sq_features_opts *o) {
    *o = (sq_features_opts){.dim = e->fdim};
    return e->feat && e->F.idf ? &e->F : NULL;
}

/* dWf[col_k] += F[i, col_k] · dtable[i+1] (feat; in item order: deterministic). */
static void features_backward(const sq_item_enc *e, sq_params *ps, const float *dtable) {
    if (!e->feat)
        return;
    float *dW = ps->p[e->wf].grad;
    const size_t C = (size_t)e->C;
    const sq_features *F = &e->F;
    for (uint32_t i = 0; i < F->n_rows; i++) {
        const float *d = dtable + (i + 1) * C;
        for (uint64_t k = F->row_ptr[i]; k < F->row_ptr[i + 1]; k++) {
            const float v = F->val[k];
            float *g = dW + (size_t)F->col[k] * C;
            for (size_t c = 0; c < C; c++)
                g[c] += v * d[c];
        }
    }
}

sq_status sq_item_enc_forward(const sq_item_enc *e, const sq_params *ps, sq_arena *a,
                              sq_item_enc_acts *acts, sq_error *err) {
    memset(acts, 0, sizeof *acts);
    const float *E = sq_nn_val(ps, e->emb);
    acts->h[0] = E;
    if (!sq_item_enc_runs(e)) {
        acts->table = (float *)E; /* never written: the table of id is the parameter */
        return SQ_OK;
    }
    const size_t n = (size_t)e->V * e->C;
    if (e->feat && e->F.n_rows + 1 != (uint32_t)e->V)
        return sq_errorf(err, SQ_ERR_ARG,
                         "item encoder: item_features=on but no item features (the model was "
                         "not created from a dataset)");
    float *y = NULL;
    if (e->kind == SQ_ITEM_ENC_ID) {
        if (!(y = sq_arena_alloc(a, n * sizeof *y)))
            return sq_errorf(err, SQ_ERR_NOMEM, "item encoder: arena full (table)");
        memcpy(y, E, n * sizeof *y);
        add_features(e, ps, y);
        acts->table = y;
        return SQ_OK;
    }
    if (e->g.A.n_rows != (uint32_t)e->V)
        return sq_errorf(err, SQ_ERR_ARG,
                         "item encoder: no item-transition graph (the model "
                         "was never trained on a split)");
    for (int l = 0; l < e->layers; l++) {
        if (!(y = sq_arena_alloc(a, n * sizeof *y)))
            return sq_errorf(err, SQ_ERR_NOMEM, "item encoder: arena full (layer %d)", l);
        sq_status rc =
            sq_nn_gcn_forward(&e->gcn[l], ps, a, &acts->ga[l], y, acts->h[l], &e->g.A, e->V, err);
        if (rc)
            return rc;
        acts->h[l + 1] = y;
    }
    if (e->kind == SQ_ITEM_ENC_ID_GRAPH) /* the last output is no layer's input: add in place */
        add_into(y + e->C, E + e->C, n - (size_t)e->C); /* row 0 (padding) stays 0 */
    add_features(e, ps, y);
    acts->table = y;
    return SQ_OK;
}

sq_status sq_item_enc_backward(const sq_item_enc *e, sq_params *ps, sq_arena *a,
                               const sq_item_enc_acts *acts, const float *dtable, sq_error *err) {
    sq_param *tab = &ps->p[e->emb];
    const size_t n = (size_t)e->V * e->C;
    features_backward(e, ps, dtable);
    for (uint32_t r = 1; r < (uint32_t)e->V; r++) /* dE is dense over rows 1..n_items */
        sq_param_touch(tab, r);
    const size_t C = (size_t)e->C;    /* row 0 is padding: it gets no gradient, whatever dtable */
    if (e->kind != SQ_ITEM_ENC_GRAPH) /* the identity path of id and id+graph */
        add_into(tab->grad + C, dtable + C, n - C);
    if (e->kind == SQ_ITEM_ENC_ID)
        return SQ_OK;
    const float *dy = dtable;
    for (int l = e->layers - 1; l >= 0; l--) {
        float *dx = sq_arena_calloc(a, n * sizeof *dx);
        if (!dx)
            return sq_errorf(err, SQ_ERR_NOMEM, "item encoder backward: arena full (layer %d)", l);
        sq_status rc = sq_nn_gcn_backward(&e->gcn[l], ps, a, &acts->ga[l], &e->g.A, dx, dy, err);
        if (rc) /* Â is symmetric: its own transpose */
            return rc;
        dy = dx;
    }
    add_into(tab->grad + C, dy + C, n - C);
    return SQ_OK;
}

void sq_item_enc_scatter(float *dtable, const float *dx, const uint32_t *ids, int N, int C,
                         float scale) {
    for (int k = 0; k < N; k++) {
        if (!ids[k])
            continue;
        float *d = dtable + (size_t)ids[k] * C;
        const float *s = dx + (size_t)k * C;
        for (int c = 0; c < C; c++)
            d[c] += scale * s[c];
    }
}

sq_status sq_item_enc_table(const sq_item_enc *e, const sq_params *ps, sq_arena *a,
                            const float **table, sq_error *err) {
    if (e->cache) {
        *table = e->cache;
        return SQ_OK;
    }
    sq_item_enc_acts acts;
    sq_status rc = sq_item_enc_forward(e, ps, a, &acts, err);
    *table = acts.table;
    return rc;
}

const float *sq_item_enc_cache(sq_item_enc *e, const sq_params *ps) {
    if (!sq_item_enc_runs(e))
        return sq_nn_val(ps, e->emb);
    if (e->cache || (e->kind != SQ_ITEM_ENC_ID && e->g.A.n_rows != (uint32_t)e->V) ||
        (e->feat && e->F.n_rows + 1 != (uint32_t)e->V))
        return e->cache;
    const size_t n = (size_t)e->V * e->C;
    sq_arena *a = sq_arena_create(sq_item_enc_scratch(e));
    float *c = sq_mallocn(n, sizeof *c);
    sq_item_enc_acts acts;
    if (a && c && !sq_item_enc_forward(e, ps, a, &acts, NULL)) {
        memcpy(c, acts.table, n * sizeof *c);
        e->cache = c;
        c = NULL;
    }
    sq_free(c);
    sq_arena_free(a);
    return e->cache;
}

void sq_item_enc_drop(sq_item_enc *e) {
    sq_free(e->cache);
    e->cache = NULL;
}

sq_status sq_item_enc_blobs(sq_item_enc *e, sq_blob *out, size_t *n, sq_error *err) {
    *n = 0;
    if (e->kind != SQ_ITEM_ENC_ID && e->g.A.n_rows != 0) {
        sq_saved_graph_blobs(&e->g, "item_enc.graph", out);
        *n = 3;
    }
    if (!e->feat || e->F.n_rows == 0)
        return SQ_OK;
    sq_features_save_free(&e->keep);
    size_t nf = 0;
    sq_status rc = sq_features_blobs(&e->F, "item_enc.feat", &e->keep, out + *n, &nf, err);
    *n += nf;
    return rc;
}

sq_status sq_item_enc_load(sq_item_enc *e, const sq_params *ps, const sq_sqm *f, sq_error *err) {
    if (!sq_item_enc_runs(e))
        return SQ_OK;
    sq_status rc;
    if (e->feat) {
        sq_features_free(&e->F);
        if ((rc = sq_features_from_sqm(f, "item_enc.feat", &e->F, err)))
            return rc;
        if (e->F.n_rows + 1 != (uint32_t)e->V || e->F.dim != e->fdim)
            return sq_errorf(err, SQ_ERR_FORMAT,
                             "model file: item features of %u items in %u columns, not %d in %u",
                             e->F.n_rows, e->F.dim, e->V - 1, e->fdim);
    }
    if (e->kind != SQ_ITEM_ENC_ID) {
        if (!sq_sqm_find(f, "item_enc.graph.row_ptr"))
            return SQ_OK; /* never fitted: no graph, no table */
        if ((rc = sq_saved_graph_load(&e->g, f, "item_enc.graph", (uint32_t)e->V, err)))
            return rc;
    }
    if (!sq_item_enc_cache(e, ps))
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory for the item table");
    return SQ_OK;
}
