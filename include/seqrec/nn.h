/* nn.h — the neural-network core: plain float buffers, parameters grouped so that optimisers
 * and model files walk them as one flat array (llm.c), and layers with their forward and
 * backward side by side. Knows nothing about users or items.
 *
 * Parameters. A model first declares each tensor (name, shape, whether its gradient is row-
 * sparse: embedding tables), then calls sq_params_alloc once: values, gradients and optimiser
 * state each live in one block, and every sq_param points into them. Backward passes add (+=)
 * into gradients; sq_params_zero_grad clears them once per step.
 *
 * Shapes in comments use: B batch, T sequence length, C channels/hidden, H heads, V items
 * (vocabulary), N rows = B*T.
 *
 * The layer, loss and optimiser APIs live in nn_layers.h, nn_loss.h and nn_optim.h, included
 * below. */
#ifndef SEQREC_NN_H
#define SEQREC_NN_H

#include "seqrec/core.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { SQ_PARAM_NAME_MAX = 48, SQ_MAX_DIMS = 4 };

typedef struct {
    char name[SQ_PARAM_NAME_MAX]; /* "block0.attn.wq": stable, used in model files */
    int ndim;                     /* 1..SQ_MAX_DIMS */
    size_t shape[SQ_MAX_DIMS];    /* row-major */
    size_t size;                  /* product of shape */
    size_t offset;                /* into the value / gradient blocks, in floats */
    float *data;                  /* values (set by sq_params_alloc) */
    float *grad;                  /* gradients, same layout */
    int sparse_rows;              /* 1: an embedding table whose gradient touches few rows */
    uint32_t *touched;            /* sparse_rows: distinct row ids touched this step */
    size_t n_touched, touched_cap;
    uint8_t *row_mark;            /* sparse_rows: per row, 1 if already in `touched` */
} sq_param;

typedef struct {
    sq_param *p;     /* declared tensors, in declaration order */
    size_t n, cap;
    float *values;   /* one block: all values */
    float *grads;    /* one block: all gradients */
    size_t total;    /* floats in each block */
} sq_params;

void sq_params_init(sq_params *ps);
/* Declares a tensor; returns its index (stable) or -1 on SQ_ERR_NOMEM / bad shape. Pointers
 * into ps->p are valid only after sq_params_alloc (the array may move while declaring). */
int sq_params_declare(sq_params *ps, const char *name, int ndim, const size_t *shape,
                      int sparse_rows);
sq_status sq_params_alloc(sq_params *ps, sq_error *err);
void sq_params_free(sq_params *ps);
/* Clears gradients: dense tensors entirely, sparse ones only on touched rows. */
void sq_params_zero_grad(sq_params *ps);
/* Marks row `row` of a sparse tensor as touched this step (embedding backward calls it). */
void sq_param_touch(sq_param *p, uint32_t row);
sq_param *sq_params_find(sq_params *ps, const char *name);

#ifdef __cplusplus
}
#endif

#include "seqrec/nn_layers.h"
#include "seqrec/nn_loss.h"
#include "seqrec/nn_optim.h"
#include "seqrec/nn_conv.h"
#include "seqrec/nn_graph.h"

#endif
