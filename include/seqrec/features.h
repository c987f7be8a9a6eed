/* features.h — content features: items' titles, descriptions and tags, and users' attributes, as
 * sparse hashed vectors (src/models/features.c).
 *
 *   dataset (item text, item tags, user attributes)
 *     ──sq_item_features_build──▶ sq_features (CSR, one L2-normalised row per item)
 *     ──sq_user_features_build──▶ sq_features (one row per user: one-hot attribute values)
 *   new item text/tags (serve PUT /v1/items) ──sq_features_row──▶ one row with the same IDF
 *
 * Text becomes hashed TF-IDF: word unigrams and bigrams for space-separated text, character
 * n-grams for Chinese and other unsegmented scripts; each tag is one more feature. Hashing maps
 * every feature into [0, dim) (dim a power of two), so unseen words at serving time still land
 * somewhere. The IDF table (dim floats) is what a model keeps to featurise new items the same way.
 *
 * Ownership: _build fills a struct whose arrays are malloc'd; sq_features_free frees them (and
 * is a no-op on a zeroed struct). Rows are read-only after build and safe to share between
 * threads. */
#ifndef SEQREC_FEATURES_H
#define SEQREC_FEATURES_H

#include "seqrec/core.h"
#include "seqrec/data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A sparse matrix in compressed rows: row r holds col[row_ptr[r] .. row_ptr[r+1]) with weights
 * val[…], columns sorted and distinct. A row with no features is empty (row_ptr equal). */
typedef struct {
    uint32_t n_rows;   /* items (or users) */
    uint32_t dim;      /* feature space size (hashed: a power of two) */
    uint64_t *row_ptr; /* n_rows + 1 */
    uint32_t *col;     /* row_ptr[n_rows] feature indices */
    float *val;        /* row_ptr[n_rows] weights */
    float *idf;        /* dim IDF weights the rows were built with, or NULL (user attributes) */
} sq_features;

void sq_features_free(sq_features *f);

#ifdef __cplusplus
}
#endif
#endif
