/* spconv.c — sparse graph convolution (nn_graph.h): the symmetric-normalised adjacency of a
 * large undirected graph in CSR, its product with a dense matrix (forward and backward), and a
 * GCN layer with a weight on top of it.
 *
 * Building Â from an edge list: every edge becomes the two directed keys (i << 32 | j) and
 * (j << 32 | i), the requested self-loops add (i << 32 | i); the keys are sorted and duplicates
 * dropped, which leaves exactly the CSR order (rows ascending, columns sorted and distinct).
 * Degrees are then the row lengths (binary A), and Â[i, j] = 1 / sqrt(deg_i deg_j).
 *
 * Products run OpenMP over output rows: a row is written by one thread and summed over its
 * columns in order, so results do not depend on the thread count. The backward of Y = A X needs
 * Aᵀ row by row (a gather, not a scatter, to stay parallel and deterministic): the caller
 * passes it, and for the symmetric Â it is Â itself. */
#include "seqrec/nn.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void sq_nn_csr_free(sq_nn_csr *A) {
    if (!A)
        return;
    sq_free(A->row_ptr);
    sq_free(A->col);
    sq_free(A->val);
    memset(A, 0, sizeof *A);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

sq_status sq_nn_csr_from_edges(sq_nn_csr *A, uint32_t n, const uint32_t *src, const uint32_t *dst,
                               size_t n_edges, const uint8_t *loops, sq_error *err) {
    memset(A, 0, sizeof *A);
    for (size_t e = 0; e < n_edges; e++)
        if (src[e] >= n || dst[e] >= n)
            return sq_errorf(err, SQ_ERR_ARG, "graph edge %zu (%u, %u): a node id is not below %u",
                             e, src[e], dst[e], n);
    size_t cap = 2 * n_edges + (loops ? n : 0), nk = 0;
    uint64_t *keys = sq_mallocn(cap ? cap : 1, sizeof *keys);
    float *dis = sq_mallocn(n ? n : 1, sizeof *dis);
    A->row_ptr = sq_calloc((size_t)n + 1, sizeof *A->row_ptr);
    if (!keys || !dis || !A->row_ptr)
        goto nomem;
    for (size_t e = 0; e < n_edges; e++) {
        if (src[e] == dst[e])
            continue;
        keys[nk++] = (uint64_t)src[e] << 32 | dst[e];
        keys[nk++] = (uint64_t)dst[e] << 32 | src[e];
    }
    for (uint32_t i = 0; loops && i < n; i++)
        if (loops[i])
            keys[nk++] = (uint64_t)i << 32 | i;
    qsort(keys, nk, sizeof *keys, cmp_u64);
    size_t nnz = 0;
    for (size_t k = 0; k < nk; k++)
        if (k == 0 || keys[k] != keys[k - 1])
            keys[nnz++] = keys[k];
    A->col = sq_mallocn(nnz ? nnz : 1, sizeof *A->col);
    A->val = sq_mallocn(nnz ? nnz : 1, sizeof *A->val);
    if (!A->col || !A->val)
        goto nomem;
    for (size_t k = 0; k < nnz; k++) {
        A->row_ptr[(keys[k] >> 32) + 1]++;
        A->col[k] = (uint32_t)keys[k];
    }
    for (uint32_t i = 0; i < n; i++) {
        uint64_t deg = A->row_ptr[i + 1];
        dis[i] = deg ? 1.0f / sqrtf((float)deg) : 0.0f;
        A->row_ptr[i + 1] += A->row_ptr[i];
    }
    for (uint32_t i = 0; i < n; i++)
        for (uint64_t k = A->row_ptr[i]; k < A->row_ptr[i + 1]; k++)
            A->val[k] = dis[i] * dis[A->col[k]];
    A->n_rows = A->n_cols = n;
    sq_free(keys);
    sq_free(dis);
    return SQ_OK;
nomem:
    sq_free(keys);
    sq_free(dis);
    sq_nn_csr_free(A);
    return sq_errorf(err, SQ_ERR_NOMEM, "out of memory for a graph of %u nodes, %zu edges", n,
                     n_edges);
}

sq_status sq_nn_csr_transpose(sq_nn_csr *At, const sq_nn_csr *A, sq_error *err) {
    memset(At, 0, sizeof *At);
    const uint64_t nnz = A->row_ptr[A->n_rows];
    At->row_ptr = sq_calloc((size_t)A->n_cols + 1, sizeof *At->row_ptr);
    At->col = sq_mallocn(nnz ? nnz : 1, sizeof *At->col);
    At->val = sq_mallocn(nnz ? nnz : 1, sizeof *At->val);
    uint64_t *next = sq_mallocn((size_t)A->n_cols + 1, sizeof *next);
    if (!At->row_ptr || !At->col || !At->val || !next) {
        sq_free(next);
        sq_nn_csr_free(At);
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory transposing a graph");
    }
    for (uint64_t k = 0; k < nnz; k++)
        At->row_ptr[A->col[k] + 1]++;
    for (uint32_t c = 0; c < A->n_cols; c++)
        At->row_ptr[c + 1] += At->row_ptr[c];
    memcpy(next, At->row_ptr, ((size_t)A->n_cols + 1) * sizeof *next);
    for (uint32_t r = 0; r < A->n_rows; r++) /* rows ascending: each At row's columns sorted */
        for (uint64_t k = A->row_ptr[r]; k < A->row_ptr[r + 1]; k++) {
            uint64_t at = next[A->col[k]]++;
            At->col[at] = r;
            At->val[at] = A->val[k];
        }
    At->n_rows = A->n_cols;
    At->n_cols = A->n_rows;
    sq_free(next);
    return SQ_OK;
}

/* ===================================== Y = A X, dX += Aᵀ dY ================================= */

/* y[r] (+)= Σ_k A[r, col_k] x[col_k] for every row r; acc = 0 overwrites. */
static void spmm(float *Y, const sq_nn_csr *A, const float *X, int C, int acc) {
    const long n = (long)A->n_rows;
    const uint64_t nnz = A->row_ptr[A->n_rows];
#pragma omp parallel for schedule(dynamic, 256) if (nnz * (uint64_t)C > 65536)
    for (long r = 0; r < n; r++) {
        float *y = Y + (size_t)r * C;
        if (!acc)
            memset(y, 0, (size_t)C * sizeof *y);
        for (uint64_t k = A->row_ptr[r]; k < A->row_ptr[r + 1]; k++) {
            const float v = A->val[k], *x = X + (size_t)A->col[k] * C;
            for (int c = 0; c < C; c++)
                y[c] += v * x[c];
        }
    }
}

void sq_nn_spmm_forward(float *Y, const sq_nn_csr *A, const float *X, int C) {
    spmm(Y, A, X, C, 0);
}

void sq_nn_spmm_backward(float *dX, const sq_nn_csr *At, const float *dY, int C) {
    spmm(dX, At, dY, C, 1);
}

/* ========================================= GCN layer ======================================== */

int sq_nn_gcn_init(sq_nn_gcn *l, sq_params *ps, const char *prefix, int C, int O) {
    memset(l, 0, sizeof *l);
    if (C <= 0 || O <= 0)
        return -1;
    l->C = C;
    l->O = O;
    size_t ws[2] = {(size_t)O, (size_t)C};
    l->w = sq_nn_declare(ps, prefix, "w", 2, ws, 0);
    return l->w < 0 ? -1 : 0;
}

void sq_nn_gcn_reset(const sq_nn_gcn *l, sq_params *ps, sq_rng *rng) {
    sq_nn_fill_xavier(sq_nn_val(ps, l->w), l->O, l->C, rng);
}

sq_status sq_nn_gcn_forward(const sq_nn_gcn *l, const sq_params *ps, sq_arena *a,
                            sq_nn_gcn_acts *acts, float *y, const float *x, const sq_nn_csr *A,
                            int n, sq_error *err) {
    acts->n = n;
    acts->x = x;
    acts->A = A;
    if (n <= 0 || A->n_rows != (uint32_t)n || A->n_cols != (uint32_t)n)
        return sq_errorf(err, SQ_ERR_ARG, "gcn: %d nodes but a %u x %u adjacency", n, A->n_rows,
                         A->n_cols);
    float *z = sq_arena_alloc(a, (size_t)n * l->O * sizeof *z);
    if (!z)
        return sq_errorf(err, SQ_ERR_NOMEM, "gcn: arena full (n=%d)", n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, l->O, l->C, 1.0f, x, l->C,
                sq_nn_val(ps, l->w), l->C, 0.0f, z, l->O);
    sq_nn_spmm_forward(y, A, z, l->O);
    return SQ_OK;
}

sq_status sq_nn_gcn_backward(const sq_nn_gcn *l, sq_params *ps, sq_arena *a,
                             const sq_nn_gcn_acts *acts, const sq_nn_csr *At, float *dx,
                             const float *dy, sq_error *err) {
    const int n = acts->n;
    if (At->n_rows != (uint32_t)n || At->n_cols != (uint32_t)n)
        return sq_errorf(err, SQ_ERR_ARG, "gcn backward: %d nodes but a %u x %u transpose", n,
                         At->n_rows, At->n_cols);
    float *dz = sq_arena_alloc(a, (size_t)n * l->O * sizeof *dz);
    if (!dz)
        return sq_errorf(err, SQ_ERR_NOMEM, "gcn backward: arena full (n=%d)", n);
    sq_nn_spmm_forward(dz, At, dy, l->O); /* dZ = Âᵀ dY */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l->O, l->C, n, 1.0f, dz, l->O, acts->x,
                l->C, 1.0f, sq_nn_grad(ps, l->w), l->C);
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, l->C, l->O, 1.0f, dz, l->O,
                    sq_nn_val(ps, l->w), l->C, 1.0f, dx, l->C);
    return SQ_OK;
}
