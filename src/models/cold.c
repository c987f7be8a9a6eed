/* cold.c — items and users the model never saw, through their content (model.h, "Cold items
 * and users"): featurising a new item as the model's catalogue was, and scoring it through
 * the model's feature op (vectors, or scores for models without vectors). */
#include "seqrec/model.h"

#include <cblas.h>
#include <string.h>

int sq_model_has_item_features(const sq_model *m) {
    sq_features_opts o;
    return m->ops->item_features && (m->ops->feature_vectors || m->ops->score_features) &&
           m->ops->item_features(m, &o) != NULL;
}

sq_status sq_model_featurize(const sq_model *m, const char *text, size_t len,
                             const char *const *tags, uint32_t n_tags, uint32_t *col, float *val,
                             uint32_t cap, uint32_t *n, sq_error *err) {
    sq_features_opts o = {0};
    const sq_features *f = m->ops->item_features ? m->ops->item_features(m, &o) : NULL;
    *n = 0;
    if (!f)
        return sq_errorf(err, SQ_ERR_ARG, "model '%s' has no item features", m->ops->name);
    return sq_features_row(f, o.no_text ? NULL : text, o.no_text ? 0 : len, tags,
                           o.no_tags ? 0 : n_tags, col, val, cap, n, err);
}

sq_status sq_model_feature_vectors(const sq_model *m, const sq_features *rows, float *out,
                                   sq_error *err) {
    if (!sq_model_has_item_features(m) || !m->ops->feature_vectors)
        return sq_errorf(err, SQ_ERR_ARG, "model '%s' has no feature vectors", m->ops->name);
    return m->ops->feature_vectors(m, rows, out, err);
}

sq_status sq_model_score_features(const sq_model *m, const sq_seq *seqs, uint32_t B,
                                  const sq_features *rows, float *out, sq_arena *a, sq_error *err) {
    if (!sq_model_has_item_features(m))
        return sq_errorf(err, SQ_ERR_ARG, "model '%s' cannot score items by their features",
                         m->ops->name);
    if (!m->ops->feature_vectors)
        return m->ops->score_features(m, seqs, B, rows, out, a, err);
    uint32_t dim = 0;
    m->ops->item_vectors(m, &dim);
    const uint32_t n = rows->n_rows;
    float *U = sq_arena_alloc(a, (size_t)B * dim * sizeof *U);
    float *V = sq_arena_alloc(a, ((size_t)n + 1) * dim * sizeof *V);
    if (!U || !V)
        return sq_errorf(err, SQ_ERR_NOMEM, "scoring arena too small (item features)");
    sq_status rc;
    if ((rc = m->ops->feature_vectors(m, rows, V, err)) ||
        (rc = m->ops->seq_vectors(m, seqs, B, U, a, err)))
        return rc;
    if (B && n)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)n, (int)dim, 1.0f, U,
                    (int)dim, V, (int)dim, 0.0f, out, (int)n);
    return SQ_OK;
}

uint32_t sq_model_user_attrs(const sq_model *m) {
    return m->ops->user_attrs ? m->ops->user_attrs(m) : 0;
}
