/* params.c — parameter groups (nn.h): every tensor of a model is declared by name and shape,
 * then one allocation holds all values and one all gradients (llm.c), so optimisers and model
 * files walk a flat array.
 *
 * Invariants
 *  1. Each tensor starts at a multiple of ALIGN_FLOATS floats from the block start; the gaps are
 *     zero in values and gradients and stay so (nothing writes them).
 *  2. A sparse tensor (embedding table) keeps, for the current step, the list of distinct rows
 *     whose gradient may be non-zero (`touched`) and a byte per row saying whether it is listed
 *     (`row_mark`). Both are sized to the row count at alloc, so sq_param_touch never allocates.
 *     Rows not listed have a zero gradient.
 *  3. Declaring is only possible before sq_params_alloc; alloc happens once. */
#include "seqrec/nn.h"

#include <string.h>

enum { ALIGN_FLOATS = 16 }; /* 64 bytes: a cache line */

void sq_params_init(sq_params *ps) {
    memset(ps, 0, sizeof *ps);
}

int sq_params_declare(sq_params *ps, const char *name, int ndim, const size_t *shape,
                      int sparse_rows) {
    if (!ps || !name || !shape || ps->values || ndim < 1 || ndim > SQ_MAX_DIMS)
        return -1;
    size_t len = strlen(name);
    if (len == 0 || len >= SQ_PARAM_NAME_MAX)
        return -1;
    if (ps->n >= (size_t)INT32_MAX)
        return -1;
    size_t size = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 0 || size > SIZE_MAX / 4 / shape[d])
            return -1;
        size *= shape[d];
    }
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->p[i].name, name) == 0)
            return -1; /* names are keys in model files */
    if (ps->n == ps->cap && sq_grow((void **)&ps->p, &ps->cap, ps->n + 1, sizeof *ps->p) != SQ_OK)
        return -1;
    sq_param *p = &ps->p[ps->n];
    memset(p, 0, sizeof *p);
    memcpy(p->name, name, len + 1);
    p->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        p->shape[d] = shape[d];
    p->size = size;
    p->sparse_rows = sparse_rows ? 1 : 0;
    return (int)ps->n++;
}

sq_status sq_params_alloc(sq_params *ps, sq_error *err) {
    if (ps->values)
        return sq_errorf(err, SQ_ERR_ARG, "parameters are already allocated");
    size_t total = 0;
    for (size_t i = 0; i < ps->n; i++) {
        sq_param *p = &ps->p[i];
        p->offset = total;
        size_t padded = (p->size + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
        if (padded > SIZE_MAX / sizeof(float) - total)
            return sq_errorf(err, SQ_ERR_LIMIT, "parameters: %s makes the block too large",
                             p->name);
        total += padded;
    }
    ps->values = sq_calloc(total, sizeof(float));
    ps->grads = sq_calloc(total, sizeof(float));
    if (!ps->values || !ps->grads)
        goto nomem;
    for (size_t i = 0; i < ps->n; i++) {
        sq_param *p = &ps->p[i];
        p->data = ps->values + p->offset;
        p->grad = ps->grads + p->offset;
        if (p->sparse_rows) {
            size_t rows = p->shape[0];
            p->touched = sq_mallocn(rows, sizeof *p->touched);
            p->row_mark = sq_calloc(rows, 1);
            if (!p->touched || !p->row_mark)
                goto nomem;
            p->touched_cap = rows;
            p->n_touched = 0;
        }
    }
    ps->total = total;
    return SQ_OK;
nomem:
    for (size_t i = 0; i < ps->n; i++) {
        sq_param *p = &ps->p[i];
        sq_free(p->touched);
        sq_free(p->row_mark);
        p->touched = NULL;
        p->row_mark = NULL;
        p->touched_cap = 0;
        p->data = p->grad = NULL;
    }
    sq_free(ps->values);
    sq_free(ps->grads);
    ps->values = ps->grads = NULL;
    return sq_errorf(err, SQ_ERR_NOMEM, "parameters: out of memory for %zu floats (x2)", total);
}

void sq_params_free(sq_params *ps) {
    if (!ps)
        return;
    for (size_t i = 0; i < ps->n; i++) {
        sq_free(ps->p[i].touched);
        sq_free(ps->p[i].row_mark);
    }
    sq_free(ps->p);
    sq_free(ps->values);
    sq_free(ps->grads);
    sq_params_init(ps);
}

void sq_params_zero_grad(sq_params *ps) {
    for (size_t i = 0; i < ps->n; i++) {
        sq_param *p = &ps->p[i];
        if (!p->grad)
            continue;
        if (!p->sparse_rows) {
            memset(p->grad, 0, p->size * sizeof(float));
            continue;
        }
        size_t row = p->size / p->shape[0];
        for (size_t k = 0; k < p->n_touched; k++) {
            uint32_t r = p->touched[k];
            memset(p->grad + (size_t)r * row, 0, row * sizeof(float));
            p->row_mark[r] = 0;
        }
        p->n_touched = 0;
    }
}

void sq_param_touch(sq_param *p, uint32_t row) {
    /* invariant 2: capacity is the row count, so a distinct row always fits */
    if (!p->sparse_rows || !p->row_mark || row >= p->shape[0] || p->row_mark[row])
        return;
    p->row_mark[row] = 1;
    p->touched[p->n_touched++] = row;
}

sq_param *sq_params_find(sq_params *ps, const char *name) {
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->p[i].name, name) == 0)
            return &ps->p[i];
    return NULL;
}
