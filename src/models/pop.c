/* pop.c — popularity: every user gets the items with the most training events, counted over
 * the whole training period or, with `window_days`, over its last days ("recent" popularity).
 * The baseline every other model must beat. Items held out by a cold_items split are never
 * counted: they score 0, below every item with a training event. Config: window_days (0 = all
 * time). */
#include "seqrec/model.h"

#include <math.h>
#include <string.h>

typedef struct {
    float *score; /* [n_items] event counts (training part), plus a tie-breaker */
} pop_state;

static sq_status pop_init(sq_model *m, sq_rng *rng, sq_error *err) {
    (void)rng;
    double window;
    sq_status rc = sq_config_double(m->cfg, "window_days", 0, 0, 1e6, &window, err);
    if (rc || (rc = sq_config_default(m->cfg, "window_days", "0", err)))
        return rc;
    pop_state *s = sq_calloc(1, sizeof *s);
    if (s)
        s->score = sq_calloc(m->info.n_items ? m->info.n_items : 1, sizeof *s->score);
    if (!s || !s->score) {
        if (s)
            sq_free(s);
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    }
    m->impl = s;
    return SQ_OK;
}

static sq_status pop_fit(sq_model *m, const sq_dataset *d, const sq_split *sp,
                         const sq_reporter *rep, sq_error *err) {
    (void)rep;
    pop_state *s = m->impl;
    double window;
    sq_status rc = sq_config_double(m->cfg, "window_days", 0, 0, 1e6, &window, err);
    if (rc)
        return rc;
    const uint64_t *off = sq_data_offsets(d);
    const uint32_t *items = sq_data_items(d);
    const int64_t *ts = sq_data_times(d);
    int64_t t_end = INT64_MIN;
    for (uint32_t u = 0; u < m->info.n_users; u++)
        if (sp->train_end[u]) {
            int64_t t = ts[off[u] + sp->train_end[u] - 1];
            t_end = t > t_end ? t : t_end;
        }
    int64_t t_from = window > 0 ? t_end - (int64_t)(window * 86400.0) : INT64_MIN;
    memset(s->score, 0, m->info.n_items * sizeof *s->score);
    for (uint32_t u = 0; u < m->info.n_users; u++)
        for (uint64_t e = off[u]; e < off[u] + sp->train_end[u]; e++)
            if (ts[e] >= t_from && sq_split_trains_on(sp, items[e]))
                s->score[items[e]] += 1.0f;
    return SQ_OK;
}

static sq_status pop_score(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out,
                           sq_arena *a, sq_error *err) {
    (void)seqs;
    (void)a;
    (void)err;
    const pop_state *s = m->impl;
    for (uint32_t b = 0; b < B; b++)
        memcpy(out + (size_t)b * m->info.n_items, s->score, m->info.n_items * sizeof *out);
    return SQ_OK;
}

static sq_status pop_save(const sq_model *m, sq_blob **blobs, size_t *n, sq_error *err) {
    const pop_state *s = m->impl;
    sq_blob *b = sq_calloc(1, sizeof *b);
    if (!b)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    snprintf(b->name, sizeof b->name, "pop.score");
    b->dtype = SQ_DT_F32;
    b->ndim = 1;
    b->shape[0] = m->info.n_items;
    b->data = s->score;
    b->nbytes = (uint64_t)m->info.n_items * sizeof(float);
    *blobs = b;
    *n = 1;
    return SQ_OK;
}

static sq_status pop_load(sq_model *m, const sq_sqm *f, sq_error *err) {
    pop_state *s = m->impl;
    const sq_blob *b = sq_sqm_find(f, "pop.score");
    if (!b || b->dtype != SQ_DT_F32 || b->nbytes != (uint64_t)m->info.n_items * sizeof(float))
        return sq_errorf(err, SQ_ERR_FORMAT, "model file: 'pop.score' missing or malformed");
    memcpy(s->score, b->data, b->nbytes);
    return SQ_OK;
}

static void pop_destroy(sq_model *m) {
    pop_state *s = m->impl;
    if (!s)
        return;
    sq_free(s->score);
    sq_free(s);
    m->impl = NULL;
}

const sq_model_ops sq_model_pop_ops = {
    .name = "pop",
    .about = "popularity (all time, or the last window_days of training)",
    .iterative = 0,
    .init = pop_init,
    .fit = pop_fit,
    .score = pop_score,
    .save_state = pop_save,
    .load_state = pop_load,
    .destroy = pop_destroy,
};
