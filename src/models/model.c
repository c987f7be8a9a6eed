/* model.c — the model registry and what every model shares: creation from a config, scoring
 * through the ops table, and .sqm save/load of parameters plus model-specific state. */
#include "seqrec/model.h"
#include "models/mt.h"

#include <inttypes.h>
#include <string.h>

extern const sq_model_ops sq_model_pop_ops;
extern const sq_model_ops sq_model_itemknn_ops;
extern const sq_model_ops sq_model_sasrec_ops;
extern const sq_model_ops sq_model_gru4rec_ops;
extern const sq_model_ops sq_model_lstm_ops;
extern const sq_model_ops sq_model_caser_ops;
extern const sq_model_ops sq_model_bprmf_ops;
extern const sq_model_ops sq_model_srgnn_ops;
extern const sq_model_ops sq_model_lightgcn_ops;
extern const sq_model_ops sq_model_content_ops;
extern const sq_model_ops sq_model_hybrid_ops;

static const sq_model_ops *const kinds[] = {
    &sq_model_pop_ops,      &sq_model_itemknn_ops, &sq_model_bprmf_ops,  &sq_model_gru4rec_ops,
    &sq_model_lstm_ops,     &sq_model_caser_ops,   &sq_model_sasrec_ops, &sq_model_srgnn_ops,
    &sq_model_lightgcn_ops, &sq_model_content_ops, &sq_model_hybrid_ops, NULL};

const sq_model_ops *const *sq_model_kinds(void) {
    return kinds;
}

const sq_model_ops *sq_model_find(const char *name) {
    for (size_t i = 0; kinds[i]; i++)
        if (!strcmp(kinds[i]->name, name))
            return kinds[i];
    return NULL;
}

static sq_status unknown_kind(const char *kind, sq_error *err) {
    char list[256] = "";
    size_t o = 0;
    for (size_t i = 0; kinds[i] && o < sizeof list; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", kinds[i]->name);
    return sq_errorf(err, SQ_ERR_ARG, "unknown model '%s' (known: %s)", kind, list);
}

/* Builds the shell of a model; ops->init is called by the caller. */
static sq_status model_new(sq_model **out, const sq_model_ops *ops, const sq_config *cfg,
                           const sq_data_info *info, sq_error *err) {
    sq_model *m = sq_calloc(1, sizeof *m);
    if (!m)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    m->ops = ops;
    m->cfg = cfg ? sq_config_clone(cfg) : sq_config_create();
    m->info = *info;
    if (!m->cfg) {
        sq_model_free(m);
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    }
    *out = m;
    return SQ_OK;
}

sq_status sq_model_create(sq_model **out, const char *kind, const sq_config *cfg,
                          const sq_dataset *d, uint64_t seed, sq_error *err) {
    *out = NULL;
    const sq_model_ops *ops = sq_model_find(kind);
    if (!ops)
        return unknown_kind(kind, err);
    sq_model *m = NULL;
    sq_status rc = model_new(&m, ops, cfg, sq_data_info_of(d), err);
    if (rc)
        return rc;
    char seedbuf[32];
    snprintf(seedbuf, sizeof seedbuf, "%" PRIu64, seed);
    sq_rng rng;
    sq_rng_seed(&rng, seed);
    if ((rc = sq_config_set(m->cfg, "model", kind, err)) ||
        (rc = sq_mt_resolve_config(m->cfg, d, err)) ||
        (rc = sq_config_default(m->cfg, "seed", seedbuf, err)) || (rc = ops->init(m, &rng, err)) ||
        (m->ops->prepare && (rc = m->ops->prepare(m, d, err)))) {
        sq_model_free(m);
        return rc;
    }
    *out = m;
    return SQ_OK;
}

void sq_model_free(sq_model *m) {
    if (!m)
        return;
    if (m->ops && m->ops->destroy)
        m->ops->destroy(m);
    sq_config_free(m->cfg);
    sq_free(m);
}

sq_status sq_model_score(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out, sq_arena *a,
                         sq_error *err) {
    return m->ops->score(m, seqs, B, out, a, err);
}

sq_status sq_model_save(const sq_model *m, const char *path, sq_error *err) {
    sq_blob *state = NULL;
    size_t n_state = 0;
    sq_status rc = SQ_OK;
    if (m->ops->save_state && (rc = m->ops->save_state(m, &state, &n_state, err)))
        return rc;
    size_t np = m->params ? m->params->n : 0, n = np + n_state;
    sq_blob *all = sq_calloc(n ? n : 1, sizeof *all);
    char *cfg = sq_config_to_json(m->cfg);
    if (!all || !cfg) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < np; i++) {
        const sq_param *p = &m->params->p[i];
        sq_blob *b = &all[i];
        snprintf(b->name, sizeof b->name, "param.%s", p->name);
        b->dtype = SQ_DT_F32;
        b->ndim = p->ndim;
        for (int k = 0; k < p->ndim; k++)
            b->shape[k] = p->shape[k];
        b->data = p->data;
        b->nbytes = p->size * sizeof(float);
    }
    for (size_t i = 0; i < n_state; i++)
        all[np + i] = state[i];
    sq_sqm_header h = {m->ops->name, cfg, m->info.fingerprint, m->info.n_items, m->info.n_users};
    rc = sq_sqm_write(path, &h, all, n, err);
done:
    sq_free(all);
    sq_free(cfg);
    sq_free(state);
    return rc;
}

sq_status sq_model_load(sq_model **out, const char *path, const sq_dataset *d, sq_error *err) {
    *out = NULL;
    sq_sqm *f = NULL;
    sq_model *m = NULL;
    sq_status rc = sq_sqm_read(&f, path, err);
    if (rc)
        return rc;
    const sq_sqm_header *h = sq_sqm_header_of(f);
    const sq_model_ops *ops = sq_model_find(h->kind);
    if (!ops) {
        rc = sq_errorf(err, SQ_ERR_FORMAT, "%s: unknown model kind '%s'", path, h->kind);
        goto done;
    }
    sq_data_info info = {0};
    if (d) {
        info = *sq_data_info_of(d);
        if (info.fingerprint != h->fingerprint || info.n_items != h->n_items ||
            info.n_users != h->n_users) {
            rc = sq_errorf(err, SQ_ERR_MISMATCH,
                           "%s was trained on another dataset (fingerprint %016" PRIx64 ", %" PRIu64
                           " items) than this one (%016" PRIx64 ", %u items)",
                           path, h->fingerprint, h->n_items, info.fingerprint, info.n_items);
            goto done;
        }
    } else {
        info.fingerprint = h->fingerprint;
        info.n_items = (uint32_t)h->n_items;
        info.n_users = (uint32_t)h->n_users;
    }
    sq_config *cfg = sq_config_create();
    if (!cfg) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    rc = sq_config_from_json(cfg, h->config_json, path, err);
    if (!rc)
        rc = model_new(&m, ops, cfg, &info, err);
    sq_config_free(cfg);
    if (rc)
        goto done;
    sq_rng rng;
    sq_rng_seed(&rng, 0);
    if ((rc = ops->init(m, &rng, err)))
        goto done;
    for (size_t i = 0; m->params && i < m->params->n; i++) {
        sq_param *p = &m->params->p[i];
        char name[SQ_BLOB_NAME_MAX];
        snprintf(name, sizeof name, "param.%s", p->name);
        const sq_blob *b = sq_sqm_find(f, name);
        if (!b || b->dtype != SQ_DT_F32 || b->nbytes != p->size * sizeof(float)) {
            rc = sq_errorf(err, SQ_ERR_FORMAT, "%s: tensor '%s' is missing or has another shape",
                           path, p->name);
            goto done;
        }
        memcpy(p->data, b->data, b->nbytes);
    }
    if (m->ops->load_state && (rc = m->ops->load_state(m, f, err))) /* init may switch ops */
        goto done;
    *out = m;
    m = NULL;
done:
    sq_model_free(m);
    sq_sqm_close(f);
    return rc;
}

sq_seq sq_model_user_seq(const sq_dataset *d, uint32_t u, uint32_t end) {
    const uint64_t *off = sq_data_offsets(d);
    uint64_t b = off[u];
    const uint32_t nc = sq_data_info_of(d)->n_ctx, na = sq_data_info_of(d)->n_user_attrs;
    sq_seq s = {.items = sq_data_items(d) + b,
                .beh = sq_data_behaviours(d) + b,
                .ts = sq_data_times(d) + b,
                .scene = sq_data_scenes(d) + b,
                .n = end,
                .user = u,
                .ctx = nc ? sq_data_context(d) + b * nc : NULL,
                .values = sq_data_values(d) ? sq_data_values(d) + b : NULL,
                .attrs =
                    na && sq_data_user_attrs(d) ? sq_data_user_attrs(d) + (size_t)u * na : NULL};
    return s;
}

uint32_t *sq_model_window_ids(const sq_model *m, const sq_seq *seqs, uint32_t B, uint32_t T,
                              sq_arena *a) {
    uint32_t *ids = sq_arena_calloc(a, (size_t)B * T * sizeof *ids);
    if (!ids)
        return NULL;
    for (uint32_t b = 0; b < B; b++) {
        const sq_seq *q = &seqs[b];
        uint32_t n = q->n < T ? q->n : T;
        for (uint32_t k = 0; k < n; k++) {
            uint32_t it = q->items[q->n - n + k];
            ids[(size_t)b * T + T - n + k] = it < m->info.n_items ? it + 1 : 0;
        }
    }
    return ids;
}
