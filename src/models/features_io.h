/* features_io.h — a feature matrix inside a model file, and its column index, for the models
 * that keep one (content, hybrid). Internal to src/models. */
#ifndef SEQREC_MODELS_FEATURES_IO_H
#define SEQREC_MODELS_FEATURES_IO_H

#include "seqrec/features.h"
#include "seqrec/model_file.h"

/* The featuriser's options from a model's config keys `feature_dim` (0: from the data), `text`
 * and `tags` (0/1, default 1), as content and hybrid read them. Errors: SQ_ERR_ARG (a bad
 * value: the message names the key). */
sq_status sq_features_opts_from_config(const sq_config *cfg, sq_features_opts *o, sq_error *err);

/* What a model keeps beside its sq_features to save it: the blobs point into these. */
typedef struct {
    uint32_t shape[2]; /* n_rows, dim */
    uint32_t *row_len; /* n_rows */
} sq_features_save;

enum { SQ_FEATURES_BLOBS = 5 };

/* Fills out[0..n) (n ≤ SQ_FEATURES_BLOBS) with blobs "<prefix>.shape", ".len", ".col", ".val"
 * and, when f has one, ".idf"; keep must stay alive until the model is written and be freed
 * with sq_features_save_free. Errors: SQ_ERR_NOMEM. */
sq_status sq_features_blobs(const sq_features *f, const char *prefix, sq_features_save *keep,
                            sq_blob *out, size_t *n, sq_error *err);
void sq_features_save_free(sq_features_save *keep);
/* Reads the blobs back into f (malloc'd). Errors: SQ_ERR_FORMAT naming the missing or
 * malformed blob, SQ_ERR_NOMEM. */
sq_status sq_features_from_sqm(const sq_sqm *file, const char *prefix, sq_features *f,
                               sq_error *err);

/* The transpose of f: for each column the rows having it (row ids and weights), so that
 * scoring a sparse profile touches only the items sharing a feature with it. */
typedef struct {
    uint64_t *col_ptr; /* dim + 1 */
    uint32_t *row;     /* nnz */
    float *val;        /* nnz */
} sq_features_index;

sq_status sq_features_index_build(const sq_features *f, sq_features_index *ix, sq_error *err);
void sq_features_index_free(sq_features_index *ix);

#endif
