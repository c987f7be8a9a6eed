/* content_model.c — `--model content`: recommends by the similarity of items' text and tags.
 *
 * Items are hashed TF-IDF rows (features.h), unit length. A sequence's profile is the
 * recency-weighted sum of the rows of its last `recent` items, the newest weighing 1 and each
 * older one `decay` times the next:
 *     p = Σ_k decay^(n−1−k) x_{item_k}          score(i) = x_i · p / |p|  (cosine)
 * Scoring walks the profile's non-zero columns through the column index (items per feature),
 * so it costs the postings of those columns, not items × dim. Nothing is learnt from events:
 * fit only checks the split, and an item held out of training (cold_items) or put over HTTP is
 * found exactly as any other, through its features. A sequence with no featured item scores
 * every item 0.
 *
 * Config: recent (20), decay (0.8), feature_dim (0: from the data; the chosen dimension is
 * written back), text (1), tags (1). The feature matrix and its IDF are saved in the model. */
#include "models/features_io.h"
#include "seqrec/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    sq_features items;     /* one unit row per item */
    sq_features_index ix;  /* items per column */
    sq_features_save keep; /* what the last save_state pointed into */
    long recent;           /* items of a sequence that make its profile */
    float decay;           /* weight ratio of an item to the one after it */
} content_state;

static sq_status content_init(sq_model *m, sq_rng *rng, sq_error *err) {
    (void)rng;
    long recent, dim, text, tags;
    double decay;
    sq_status rc;
    if ((rc = sq_config_int(m->cfg, "recent", 20, 1, 10000, &recent, err)) ||
        (rc = sq_config_double(m->cfg, "decay", 0.8, 0, 1, &decay, err)) ||
        (rc = sq_config_int(m->cfg, "feature_dim", 0, 0, 1L << 24, &dim, err)) ||
        (rc = sq_config_int(m->cfg, "text", 1, 0, 1, &text, err)) ||
        (rc = sq_config_int(m->cfg, "tags", 1, 0, 1, &tags, err)))
        return rc;
    if (!text && !tags)
        return sq_errorf(err, SQ_ERR_ARG, "content: text=0 and tags=0 leave no feature");
    if ((rc = sq_config_default(m->cfg, "recent", "20", err)) ||
        (rc = sq_config_set_num(m->cfg, "decay", decay, 0, err)) ||
        (rc = sq_config_default(m->cfg, "feature_dim", "0", err)) ||
        (rc = sq_config_default(m->cfg, "text", "1", err)) ||
        (rc = sq_config_default(m->cfg, "tags", "1", err)))
        return rc;
    content_state *s = sq_calloc(1, sizeof *s);
    if (!s)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    s->recent = recent;
    s->decay = (float)decay;
    m->impl = s;
    return SQ_OK;
}

/* At creation: the dataset's item features, and the dimension chosen written to the config. */
static sq_status content_prepare(sq_model *m, const sq_dataset *d, sq_error *err) {
    content_state *s = m->impl;
    sq_features_opts fo;
    sq_status rc;
    if ((rc = sq_features_opts_from_config(m->cfg, &fo, err)) ||
        (rc = sq_item_features_build(d, &fo, &s->items, err)) ||
        (rc = sq_features_index_build(&s->items, &s->ix, err)))
        return rc;
    return sq_config_set_num(m->cfg, "feature_dim", s->items.dim, 1, err);
}

static sq_status content_fit(sq_model *m, const sq_dataset *d, const sq_split *sp,
                             const sq_reporter *rep, sq_error *err) {
    (void)d;
    (void)sp;
    const content_state *s = m->impl;
    uint64_t nnz = s->items.row_ptr[s->items.n_rows];
    if (nnz == 0)
        return sq_errorf(err, SQ_ERR_EMPTY,
                         "content: no item has text or tags (ingest a side file with titles, "
                         "descriptions or tags)");
    sq_report_log(rep, SQ_LOG_INFO, "content", "%u items, %llu features in %u columns",
                  s->items.n_rows, (unsigned long long)nnz, s->items.dim);
    return SQ_OK;
}

static int cmp_col(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* A (column, weight) pair of a profile being summed. */
typedef struct {
    uint32_t col;
    float w;
} colw;

/* The profile of a sequence: its recent items' rows, recency-weighted, merged by column (sorted)
 * and scaled to unit norm, into *pw (arena) with *np columns; *np = 0 when it has no feature. */
static sq_status profile(const content_state *s, const sq_seq *q, uint32_t ni, sq_arena *a,
                         colw **pw_out, size_t *np, sq_error *err) {
    const sq_features *f = &s->items;
    *np = 0;
    uint32_t from = q->n > (uint32_t)s->recent ? q->n - (uint32_t)s->recent : 0;
    size_t cap = 0;
    for (uint32_t k = from; k < q->n; k++)
        if (q->items[k] < ni)
            cap += f->row_ptr[q->items[k] + 1] - f->row_ptr[q->items[k]];
    if (cap == 0)
        return SQ_OK;
    colw *pw = sq_arena_alloc(a, cap * sizeof *pw);
    if (!pw)
        return sq_errorf(err, SQ_ERR_NOMEM, "content: scoring arena too small");
    size_t n = 0;
    float w = 1;
    for (uint32_t k = q->n; k-- > from; w *= s->decay) { /* newest first */
        uint32_t it = q->items[k];
        if (it >= ni)
            continue;
        for (uint64_t p = f->row_ptr[it]; p < f->row_ptr[it + 1]; p++)
            pw[n++] = (colw){f->col[p], w * f->val[p]};
    }
    qsort(pw, n, sizeof *pw, cmp_col);
    size_t u = 0; /* merge equal columns */
    for (size_t i = 0; i < n; i++) {
        if (u && pw[u - 1].col == pw[i].col)
            pw[u - 1].w += pw[i].w;
        else
            pw[u++] = pw[i];
    }
    double ss = 0;
    for (size_t i = 0; i < u; i++)
        ss += (double)pw[i].w * pw[i].w;
    if (ss <= 0)
        return SQ_OK;
    const float inv = (float)(1.0 / sqrt(ss));
    for (size_t i = 0; i < u; i++)
        pw[i].w *= inv;
    *pw_out = pw;
    *np = u;
    return SQ_OK;
}

static sq_status content_score(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out,
                               sq_arena *a, sq_error *err) {
    const content_state *s = m->impl;
    const uint32_t ni = m->info.n_items;
    for (uint32_t b = 0; b < B; b++) {
        float *sc = out + (size_t)b * ni;
        memset(sc, 0, (size_t)ni * sizeof *sc);
        colw *pw = NULL;
        size_t u = 0;
        sq_status rc = profile(s, &seqs[b], ni, a, &pw, &u, err);
        if (rc)
            return rc;
        for (size_t i = 0; i < u; i++)
            for (uint64_t p = s->ix.col_ptr[pw[i].col]; p < s->ix.col_ptr[pw[i].col + 1]; p++)
                sc[s->ix.row[p]] += pw[i].w * s->ix.val[p];
    }
    return SQ_OK;
}

/* Cold items: the cosine of each profile to each row (rows unit, columns sorted), the sum over
 * the columns both hold, in the profile's column order as content_score adds them. */
static sq_status content_score_features(const sq_model *m, const sq_seq *seqs, uint32_t B,
                                        const sq_features *rows, float *out, sq_arena *a,
                                        sq_error *err) {
    const content_state *s = m->impl;
    const uint32_t ni = m->info.n_items, nr = rows->n_rows;
    for (uint32_t b = 0; b < B; b++) {
        float *sc = out + (size_t)b * nr;
        memset(sc, 0, (size_t)nr * sizeof *sc);
        colw *pw = NULL;
        size_t u = 0;
        sq_status rc = profile(s, &seqs[b], ni, a, &pw, &u, err);
        if (rc)
            return rc;
        for (uint32_t r = 0; r < nr; r++) {
            uint64_t p = rows->row_ptr[r];
            const uint64_t end = rows->row_ptr[r + 1];
            for (size_t i = 0; i < u && p < end; i++) {
                while (p < end && rows->col[p] < pw[i].col)
                    p++;
                if (p < end && rows->col[p] == pw[i].col)
                    sc[r] += pw[i].w * rows->val[p];
            }
        }
    }
    return SQ_OK;
}

static const sq_features *content_item_features(const sq_model *m, sq_features_opts *o) {
    const content_state *s = m->impl;
    sq_features_opts_from_config(m->cfg, o, NULL); /* checked at init */
    o->dim = s->items.dim;
    return s->items.idf ? &s->items : NULL;
}

static size_t content_scratch(const sq_model *m, uint32_t B, uint32_t T) {
    (void)B;
    (void)T;
    const content_state *s = m->impl;
    uint32_t widest = 0; /* the profile of one sequence at a time */
    for (uint32_t r = 0; r < s->items.n_rows; r++) {
        uint32_t n = (uint32_t)(s->items.row_ptr[r + 1] - s->items.row_ptr[r]);
        widest = n > widest ? n : widest;
    }
    return (size_t)B * s->recent * widest * sizeof(colw) + (1u << 20);
}

static sq_status content_save(const sq_model *m, sq_blob **blobs, size_t *n, sq_error *err) {
    content_state *s = m->impl;
    sq_blob *b = sq_calloc(SQ_FEATURES_BLOBS, sizeof *b);
    if (!b)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    sq_features_save_free(&s->keep);
    sq_status rc = sq_features_blobs(&s->items, "content.items", &s->keep, b, n, err);
    if (rc) {
        sq_free(b);
        return rc;
    }
    *blobs = b;
    return SQ_OK;
}

static sq_status content_load(sq_model *m, const sq_sqm *f, sq_error *err) {
    content_state *s = m->impl;
    sq_status rc = sq_features_from_sqm(f, "content.items", &s->items, err);
    if (rc)
        return rc;
    if (s->items.n_rows != m->info.n_items)
        return sq_errorf(err, SQ_ERR_FORMAT, "model file: content features for %u items, not %u",
                         s->items.n_rows, m->info.n_items);
    return sq_features_index_build(&s->items, &s->ix, err);
}

static void content_destroy(sq_model *m) {
    content_state *s = m->impl;
    if (!s)
        return;
    sq_features_free(&s->items);
    sq_features_index_free(&s->ix);
    sq_features_save_free(&s->keep);
    sq_free(s);
    m->impl = NULL;
}

const sq_model_ops sq_model_content_ops = {
    .name = "content",
    .about = "content: cosine of items' TF-IDF text and tag features to the recent items",
    .iterative = 0,
    .init = content_init,
    .prepare = content_prepare,
    .fit = content_fit,
    .score = content_score,
    .scratch = content_scratch,
    .save_state = content_save,
    .load_state = content_load,
    .destroy = content_destroy,
    .item_features = content_item_features,
    .score_features = content_score_features,
};
