/* features_io.c — feature matrices in model files and their column index (features_io.h). */
#include "models/features_io.h"

#include <stdio.h>
#include <string.h>

sq_status sq_features_opts_from_config(const sq_config *cfg, sq_features_opts *o, sq_error *err) {
    long dim = 0, text = 1, tags = 1;
    sq_status rc;
    if ((rc = sq_config_int(cfg, "feature_dim", 0, 0, 1L << 24, &dim, err)) ||
        (rc = sq_config_int(cfg, "text", 1, 0, 1, &text, err)) ||
        (rc = sq_config_int(cfg, "tags", 1, 0, 1, &tags, err)))
        return rc;
    *o = (sq_features_opts){.dim = (uint32_t)dim, .no_text = !text, .no_tags = !tags};
    return SQ_OK;
}

static void blob(sq_blob *b, const char *prefix, const char *what, sq_dtype dt, uint64_t n,
                 const void *data, size_t elem) {
    memset(b, 0, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s.%s", prefix, what);
    b->dtype = dt;
    b->ndim = 1;
    b->shape[0] = n;
    b->data = data;
    b->nbytes = n * elem;
}

sq_status sq_features_blobs(const sq_features *f, const char *prefix, sq_features_save *keep,
                            sq_blob *out, size_t *n, sq_error *err) {
    keep->shape[0] = f->n_rows;
    keep->shape[1] = f->dim;
    keep->row_len = sq_mallocn(f->n_rows ? f->n_rows : 1, sizeof *keep->row_len);
    if (!keep->row_len)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory saving features");
    for (uint32_t r = 0; r < f->n_rows; r++)
        keep->row_len[r] = (uint32_t)(f->row_ptr[r + 1] - f->row_ptr[r]);
    uint64_t nnz = f->row_ptr ? f->row_ptr[f->n_rows] : 0;
    size_t k = 0;
    blob(&out[k++], prefix, "shape", SQ_DT_U32, 2, keep->shape, sizeof(uint32_t));
    blob(&out[k++], prefix, "len", SQ_DT_U32, f->n_rows, keep->row_len, sizeof(uint32_t));
    blob(&out[k++], prefix, "col", SQ_DT_U32, nnz, f->col, sizeof(uint32_t));
    blob(&out[k++], prefix, "val", SQ_DT_F32, nnz, f->val, sizeof(float));
    if (f->idf)
        blob(&out[k++], prefix, "idf", SQ_DT_F32, f->dim, f->idf, sizeof(float));
    *n = k;
    return SQ_OK;
}

void sq_features_save_free(sq_features_save *keep) {
    sq_free(keep->row_len);
    keep->row_len = NULL;
}

static const sq_blob *need(const sq_sqm *file, const char *prefix, const char *what, sq_dtype dt,
                           uint64_t n, size_t elem, sq_error *err) {
    char name[SQ_BLOB_NAME_MAX];
    snprintf(name, sizeof name, "%s.%s", prefix, what);
    const sq_blob *b = sq_sqm_find(file, name);
    if (!b || b->dtype != dt || (n != UINT64_MAX && b->nbytes != n * elem)) {
        sq_errorf(err, SQ_ERR_FORMAT, "model file: '%s' missing or malformed", name);
        return NULL;
    }
    return b;
}

sq_status sq_features_from_sqm(const sq_sqm *file, const char *prefix, sq_features *f,
                               sq_error *err) {
    memset(f, 0, sizeof *f);
    const sq_blob *bs = need(file, prefix, "shape", SQ_DT_U32, 2, 4, err);
    if (!bs)
        return SQ_ERR_FORMAT;
    const uint32_t *shape = bs->data;
    uint32_t nr = shape[0], dim = shape[1];
    const sq_blob *bl = need(file, prefix, "len", SQ_DT_U32, nr, 4, err);
    if (!bl)
        return SQ_ERR_FORMAT;
    uint64_t nnz = 0;
    const uint32_t *len = bl->data;
    for (uint32_t r = 0; r < nr; r++)
        nnz += len[r];
    const sq_blob *bc = need(file, prefix, "col", SQ_DT_U32, nnz, 4, err);
    const sq_blob *bv = bc ? need(file, prefix, "val", SQ_DT_F32, nnz, 4, err) : NULL;
    if (!bc || !bv)
        return SQ_ERR_FORMAT;
    char name[SQ_BLOB_NAME_MAX];
    snprintf(name, sizeof name, "%s.idf", prefix);
    const sq_blob *bi = sq_sqm_find(file, name);
    if (bi && (bi->dtype != SQ_DT_F32 || bi->nbytes != (uint64_t)dim * 4))
        return sq_errorf(err, SQ_ERR_FORMAT, "model file: '%s' malformed", name);
    const uint32_t *col = bc->data;
    for (uint64_t p = 0; p < nnz; p++)
        if (col[p] >= dim)
            return sq_errorf(err, SQ_ERR_FORMAT, "model file: '%s.col' has a column past %u",
                             prefix, dim);
    f->n_rows = nr;
    f->dim = dim;
    f->row_ptr = sq_calloc((size_t)nr + 1, sizeof *f->row_ptr);
    f->col = sq_mallocn(nnz ? nnz : 1, sizeof *f->col);
    f->val = sq_mallocn(nnz ? nnz : 1, sizeof *f->val);
    f->idf = bi ? sq_mallocn(dim, sizeof *f->idf) : NULL;
    if (!f->row_ptr || !f->col || !f->val || (bi && !f->idf)) {
        sq_features_free(f);
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory loading features");
    }
    for (uint32_t r = 0; r < nr; r++)
        f->row_ptr[r + 1] = f->row_ptr[r] + len[r];
    memcpy(f->col, bc->data, nnz * sizeof *f->col);
    memcpy(f->val, bv->data, nnz * sizeof *f->val);
    if (bi)
        memcpy(f->idf, bi->data, (size_t)dim * sizeof *f->idf);
    return SQ_OK;
}

sq_status sq_features_index_build(const sq_features *f, sq_features_index *ix, sq_error *err) {
    memset(ix, 0, sizeof *ix);
    uint64_t nnz = f->row_ptr[f->n_rows];
    ix->col_ptr = sq_calloc((size_t)f->dim + 1, sizeof *ix->col_ptr);
    ix->row = sq_mallocn(nnz ? nnz : 1, sizeof *ix->row);
    ix->val = sq_mallocn(nnz ? nnz : 1, sizeof *ix->val);
    if (!ix->col_ptr || !ix->row || !ix->val) {
        sq_features_index_free(ix);
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory for the feature index");
    }
    for (uint64_t p = 0; p < nnz; p++)
        ix->col_ptr[f->col[p] + 1]++;
    for (uint32_t c = 0; c < f->dim; c++)
        ix->col_ptr[c + 1] += ix->col_ptr[c];
    for (uint32_t r = 0; r < f->n_rows; r++) /* rows in order: each column's list sorted */
        for (uint64_t p = f->row_ptr[r]; p < f->row_ptr[r + 1]; p++) {
            uint64_t at = ix->col_ptr[f->col[p]]++;
            ix->row[at] = r;
            ix->val[at] = f->val[p];
        }
    for (uint32_t c = f->dim; c > 0; c--) /* shift back: col_ptr[c] was advanced to c + 1 */
        ix->col_ptr[c] = ix->col_ptr[c - 1];
    ix->col_ptr[0] = 0;
    return SQ_OK;
}

void sq_features_index_free(sq_features_index *ix) {
    sq_free(ix->col_ptr);
    sq_free(ix->row);
    sq_free(ix->val);
    memset(ix, 0, sizeof *ix);
}
