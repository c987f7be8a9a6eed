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

/* How item text becomes features. A zeroed struct is the default. */
typedef struct {
    uint32_t dim; /* hashed feature space, a power of two in [2^8, 2^24]; 0: chosen from the data
                     (the next power of two ≥ 4 × the distinct features, within 2^10 .. 2^18) */
    int no_text;  /* 1: tags only */
    int no_tags;  /* 1: text only */
} sq_features_opts;

/* Hashed TF-IDF rows of every item of d (titles/descriptions and tags):
 *  - text is cut into runs: letters and digits of spaced scripts form words (ASCII lower-cased),
 *    whitespace separates them, punctuation and symbols separate them and break bigrams;
 *    characters of unsegmented scripts (CJK ideographs, kana, hangul) form runs of their own;
 *  - features: each word ("w" word), each pair of consecutive words ("b" w1 w2), each character
 *    of an unsegmented run and each pair of adjacent characters in it ("c" …), each tag ("t"
 *    tag name), hashed into [0, dim);
 *  - weight = tf × idf with idf = ln((1 + N) / (1 + df)) + 1 (N items, df the items having the
 *    column), then each row is scaled to unit L2 norm. f->idf keeps all dim weights (unseen
 *    columns get ln(1 + N) + 1), so sq_features_row featurises new text the same way.
 * Items without text and tags have empty rows. Errors: SQ_ERR_ARG (bad dim), SQ_ERR_NOMEM. */
sq_status sq_item_features_build(const sq_dataset *d, const sq_features_opts *o, sq_features *f,
                                 sq_error *err);

/* One row per user: attribute field k's value v is column offset_k + v (offset_k the sum of the
 * sizes of fields before k), weight 1; missing values have no column. dim = the sum of the
 * fields' sizes (not hashed; 0 when the dataset has no attributes); idf NULL.
 * Errors: SQ_ERR_NOMEM. */
sq_status sq_user_features_build(const sq_dataset *d, sq_features *f, sq_error *err);

/* Columns of a user's attribute values attrs[0..n_user_attrs) as sq_user_features_build lays
 * them out (missing and out-of-range values skipped) into col (room for n_user_attrs); returns
 * how many. */
uint32_t sq_user_features_cols(const sq_dataset *d, const uint32_t *attrs, uint32_t *col);

/* Featurises one new item's text (len bytes, need not be NUL-terminated) and tag names with
 * f's dim and IDF, as a row of the build: at most cap (col, val) pairs, columns sorted, L2
 * norm 1. *n receives the count. Errors: SQ_ERR_ARG (f has no IDF), SQ_ERR_LIMIT (more than
 * cap distinct columns), SQ_ERR_NOMEM. */
sq_status sq_features_row(const sq_features *f, const char *text, size_t len,
                          const char *const *tags, uint32_t n_tags, uint32_t *col, float *val,
                          uint32_t cap, uint32_t *n, sq_error *err);

#ifdef __cplusplus
}
#endif
#endif
