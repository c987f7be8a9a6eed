/* item_enc.c — the item encoder (see item_enc.h): the item table from the id embedding and GCN
 * layers over the item-transition graph, its backward, its cache for scoring, and its graph in
 * model files. */
#include "models/item_enc.h"

#include <string.h>

sq_status sq_item_enc_config(sq_config *cfg, sq_item_enc_kind *kind, int *layers, sq_error *err) {
    int k;
    long l;
    sq_status rc;
    if ((rc = sq_config_choice(cfg, "item_encoder", "id|graph|id+graph", 0, &k, err)) ||
        (rc = sq_config_int(cfg, "graph_layers", 1, 1, SQ_ITEM_ENC_MAX_LAYERS, &l, err)))
        return rc;
    static const char *const names[] = {"id", "graph", "id+graph"};
    char buf[16];
    snprintf(buf, sizeof buf, "%ld", l);
    if ((rc = sq_config_set(cfg, "item_encoder", names[k], err)) ||
        (rc = sq_config_set(cfg, "graph_layers", buf, err)))
        return rc;
    *kind = (sq_item_enc_kind)k;
    *layers = (int)l;
    return SQ_OK;
}

int sq_item_enc_declare(sq_item_enc *e, sq_params *ps, sq_item_enc_kind kind, int layers, int emb,
                        int V, int C) {
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->V = V;
    e->C = C;
    e->emb = emb;
    e->layers = kind == SQ_ITEM_ENC_ID ? 0 : layers;
    if (e->layers < 0 || e->layers > SQ_ITEM_ENC_MAX_LAYERS)
        return -1;
    for (int l = 0; l < e->layers; l++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "item_enc.gcn%d", l);
        if (sq_nn_gcn_init(&e->gcn[l], ps, prefix, C, C) < 0)
            return -1;
    }
    return 0;
}

void sq_item_enc_reset(const sq_item_enc *e, sq_params *ps, sq_rng *rng) {
    for (int l = 0; l < e->layers; l++)
        sq_nn_gcn_reset(&e->gcn[l], ps, rng);
}

void sq_item_enc_free(sq_item_enc *e) {
    if (!e)
        return;
    sq_saved_graph_free(&e->g);
    sq_free(e->cache);
    e->cache = NULL;
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
    if (e->kind == SQ_ITEM_ENC_ID)
        return 0;
    const size_t t = ((size_t)e->V * e->C * sizeof(float) + 63) & ~(size_t)63;
    /* forward: per layer its output and Z; backward: per layer dx and dZ */
    return (size_t)e->layers * 4 * t + 2 * t + (64u << 10);
}

static void add_into(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        y[i] += x[i];
}

sq_status sq_item_enc_forward(const sq_item_enc *e, const sq_params *ps, sq_arena *a,
                              sq_item_enc_acts *acts, sq_error *err) {
    memset(acts, 0, sizeof *acts);
    const float *E = sq_nn_val(ps, e->emb);
    acts->h[0] = E;
    if (e->kind == SQ_ITEM_ENC_ID) {
        acts->table = (float *)E; /* never written: the table of id is the parameter */
        return SQ_OK;
    }
    if (e->g.A.n_rows != (uint32_t)e->V)
        return sq_errorf(err, SQ_ERR_ARG,
                         "item encoder: no item-transition graph (the model "
                         "was never trained on a split)");
    const size_t n = (size_t)e->V * e->C;
    float *y = NULL;
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
    acts->table = y;
    return SQ_OK;
}

sq_status sq_item_enc_backward(const sq_item_enc *e, sq_params *ps, sq_arena *a,
                               const sq_item_enc_acts *acts, const float *dtable, sq_error *err) {
    sq_param *tab = &ps->p[e->emb];
    const size_t n = (size_t)e->V * e->C;
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
    if (e->kind == SQ_ITEM_ENC_ID)
        return sq_nn_val(ps, e->emb);
    if (e->cache || e->g.A.n_rows != (uint32_t)e->V)
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

void sq_item_enc_blobs(const sq_item_enc *e, sq_blob out[3], size_t *n) {
    *n = 0;
    if (e->kind == SQ_ITEM_ENC_ID || e->g.A.n_rows == 0)
        return;
    sq_saved_graph_blobs(&e->g, "item_enc.graph", out);
    *n = 3;
}

sq_status sq_item_enc_load(sq_item_enc *e, const sq_params *ps, const sq_sqm *f, sq_error *err) {
    if (e->kind == SQ_ITEM_ENC_ID || !sq_sqm_find(f, "item_enc.graph.row_ptr"))
        return SQ_OK;
    sq_status rc = sq_saved_graph_load(&e->g, f, "item_enc.graph", (uint32_t)e->V, err);
    if (rc)
        return rc;
    if (!sq_item_enc_cache(e, ps))
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory for the item table");
    return SQ_OK;
}
