/* graphs.c — graphs from the training part of a split, and their place in model files (see
 * graphs.h). The builders list edges and hand them to sq_nn_csr_from_edges, which symmetrises,
 * drops duplicates, adds the self-loops asked for and normalises. */
#include "models/graphs.h"

#include <string.h>

static sq_status check_split(const sq_dataset *d, const sq_split *s, size_t *n_events,
                             sq_error *err) {
    const sq_data_info *info = sq_data_info_of(d);
    if (s->n_users != info->n_users)
        return sq_errorf(err, SQ_ERR_ARG, "graph: the split has %u users, the dataset %u",
                         s->n_users, info->n_users);
    const uint64_t *off = sq_data_offsets(d);
    size_t n = 0;
    for (uint32_t u = 0; u < info->n_users; u++) {
        if (s->train_end[u] > off[u + 1] - off[u])
            return sq_errorf(err, SQ_ERR_ARG,
                             "graph: user %u's training part (%u events) is "
                             "longer than its sequence",
                             u, s->train_end[u]);
        n += s->train_end[u];
    }
    *n_events = n;
    return SQ_OK;
}

sq_status sq_graph_user_item(sq_nn_csr *A, const sq_dataset *d, const sq_split *s, sq_error *err) {
    memset(A, 0, sizeof *A);
    const sq_data_info *info = sq_data_info_of(d);
    const uint32_t nu = info->n_users, ni = info->n_items;
    size_t n = 0;
    sq_status rc = check_split(d, s, &n, err);
    if (rc)
        return rc;
    if ((uint64_t)nu + ni >= UINT32_MAX)
        return sq_errorf(err, SQ_ERR_ARG, "graph: %u users + %u items is too many nodes", nu, ni);
    uint32_t *src = sq_mallocn(n ? n : 1, sizeof *src), *dst = sq_mallocn(n ? n : 1, sizeof *dst);
    if (!src || !dst) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory for %zu graph edges", n);
        goto done;
    }
    const uint64_t *off = sq_data_offsets(d);
    const uint32_t *items = sq_data_items(d);
    size_t e = 0;
    for (uint32_t u = 0; u < nu; u++)
        for (uint32_t k = 0; k < s->train_end[u]; k++) {
            if (!sq_split_trains_on(s, items[off[u] + k]))
                continue; /* cold_items: a held-out item has no edge */
            src[e] = u;
            dst[e++] = nu + items[off[u] + k];
        }
    rc = sq_nn_csr_from_edges(A, nu + ni, src, dst, e, NULL, err);
done:
    sq_free(src);
    sq_free(dst);
    return rc;
}

sq_status sq_graph_item_transitions(sq_nn_csr *A, const sq_dataset *d, const sq_split *s,
                                    sq_error *err) {
    memset(A, 0, sizeof *A);
    const sq_data_info *info = sq_data_info_of(d);
    const uint32_t nu = info->n_users, ni = info->n_items;
    size_t n = 0;
    sq_status rc = check_split(d, s, &n, err);
    if (rc)
        return rc;
    uint32_t *src = sq_mallocn(n ? n : 1, sizeof *src), *dst = sq_mallocn(n ? n : 1, sizeof *dst);
    uint8_t *loops = sq_mallocn((size_t)ni + 1, 1);
    if (!src || !dst || !loops) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory for %zu graph edges", n);
        goto done;
    }
    const uint64_t *off = sq_data_offsets(d);
    const uint32_t *items = sq_data_items(d);
    size_t e = 0;
    for (uint32_t u = 0; u < nu; u++) {
        /* consecutive training events; held-out items (cold_items) are left out, so the
         * events around one are joined */
        uint32_t prev = UINT32_MAX;
        for (uint32_t k = 0; k < s->train_end[u]; k++) {
            uint32_t it = items[off[u] + k];
            if (!sq_split_trains_on(s, it))
                continue;
            if (prev != UINT32_MAX) {
                src[e] = prev + 1;
                dst[e++] = it + 1;
            }
            prev = it;
        }
    }
    memset(loops, 1, (size_t)ni + 1);
    loops[0] = 0; /* padding */
    rc = sq_nn_csr_from_edges(A, ni + 1, src, dst, e, loops, err);
done:
    sq_free(src);
    sq_free(dst);
    sq_free(loops);
    return rc;
}

/* ====================================== In model files ====================================== */

void sq_saved_graph_free(sq_saved_graph *g) {
    if (!g)
        return;
    sq_nn_csr_free(&g->A);
    sq_free(g->rp);
    g->rp = NULL;
}

sq_status sq_saved_graph_set(sq_saved_graph *g, sq_nn_csr *A, sq_error *err) {
    sq_saved_graph_free(g);
    g->A = *A;
    memset(A, 0, sizeof *A);
    const uint32_t n = g->A.n_rows;
    if (g->A.row_ptr[n] >= UINT32_MAX) {
        sq_saved_graph_free(g);
        return sq_errorf(err, SQ_ERR_ARG, "graph: too many edges to save");
    }
    if (!(g->rp = sq_mallocn((size_t)n + 1, sizeof *g->rp))) {
        sq_saved_graph_free(g);
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    }
    for (uint32_t r = 0; r <= n; r++)
        g->rp[r] = (uint32_t)g->A.row_ptr[r];
    return SQ_OK;
}

void sq_saved_graph_blobs(const sq_saved_graph *g, const char *prefix, sq_blob out[3]) {
    const uint64_t nnz = g->A.row_ptr[g->A.n_rows];
    memset(out, 0, 3 * sizeof *out);
    snprintf(out[0].name, sizeof out[0].name, "%s.row_ptr", prefix);
    snprintf(out[1].name, sizeof out[1].name, "%s.col", prefix);
    snprintf(out[2].name, sizeof out[2].name, "%s.val", prefix);
    out[0].dtype = out[1].dtype = SQ_DT_U32;
    out[2].dtype = SQ_DT_F32;
    out[0].ndim = out[1].ndim = out[2].ndim = 1;
    out[0].shape[0] = (uint64_t)g->A.n_rows + 1;
    out[1].shape[0] = out[2].shape[0] = nnz;
    out[0].data = g->rp;
    out[1].data = g->A.col;
    out[2].data = g->A.val;
    out[0].nbytes = out[0].shape[0] * 4;
    out[1].nbytes = out[2].nbytes = nnz * 4;
}

sq_status sq_saved_graph_load(sq_saved_graph *g, const sq_sqm *f, const char *prefix, uint32_t n,
                              sq_error *err) {
    sq_saved_graph_free(g);
    char name[3][SQ_BLOB_NAME_MAX];
    const char *part[3] = {"row_ptr", "col", "val"};
    const sq_blob *b[3];
    for (int i = 0; i < 3; i++) {
        snprintf(name[i], sizeof name[i], "%s.%s", prefix, part[i]);
        if (!(b[i] = sq_sqm_find(f, name[i])) || b[i]->dtype != (i == 2 ? SQ_DT_F32 : SQ_DT_U32))
            return sq_errorf(err, SQ_ERR_FORMAT, "model file: tensor '%s' is missing or not %s",
                             name[i], i == 2 ? "f32" : "u32");
    }
    const uint32_t *rp = b[0]->data, *col = b[1]->data;
    if (b[0]->nbytes != ((uint64_t)n + 1) * 4 || rp[0] != 0)
        return sq_errorf(err, SQ_ERR_FORMAT, "model file: '%s' does not describe %u rows", name[0],
                         n);
    for (uint32_t r = 0; r < n; r++)
        if (rp[r + 1] < rp[r])
            return sq_errorf(err, SQ_ERR_FORMAT, "model file: '%s' decreases at row %u", name[0],
                             r);
    const uint64_t nnz = rp[n];
    if (b[1]->nbytes != nnz * 4 || b[2]->nbytes != nnz * 4)
        return sq_errorf(err, SQ_ERR_FORMAT, "model file: '%s' / '%s' do not hold %llu entries",
                         name[1], name[2], (unsigned long long)nnz);
    for (uint64_t k = 0; k < nnz; k++)
        if (col[k] >= n)
            return sq_errorf(err, SQ_ERR_FORMAT, "model file: '%s' has column %u of %u", name[1],
                             col[k], n);
    sq_nn_csr A = {n, n, sq_mallocn((size_t)n + 1, sizeof(uint64_t)),
                   sq_mallocn(nnz ? nnz : 1, sizeof(uint32_t)), sq_mallocn(nnz ? nnz : 1, 4)};
    if (!A.row_ptr || !A.col || !A.val) {
        sq_nn_csr_free(&A);
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    }
    for (uint32_t r = 0; r <= n; r++)
        A.row_ptr[r] = rp[r];
    memcpy(A.col, col, nnz * 4);
    memcpy(A.val, b[2]->data, nnz * 4);
    return sq_saved_graph_set(g, &A, err);
}
