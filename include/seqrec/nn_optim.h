/* nn_optim.h — optimisers over a parameter group (nn.h), gradient-norm clipping and learning-rate
 * schedules.
 *
 * Ownership and layout. sq_optim_init allocates the optimiser state in one block that mirrors
 * the parameter blocks: m (SGD's velocity, Adam's first moment) and, for Adam/AdamW, v (second
 * moment), each ps->total floats, so that parameter k's state is at m + p->offset. Dense tensors
 * are updated as one flat array (the gaps between tensors are zero and stay zero).
 *
 * Sparse tensors (sq_param.sparse_rows: embedding tables) are updated lazily by default: only
 * the rows listed in p->touched this step change, values and state alike ("lazy Adam", as
 * TensorFlow Addons' LazyAdam). The moments of untouched rows are NOT decayed, so a row that
 * comes back after k idle steps continues from its old moments; bias correction uses the global
 * step count. Weight decay too reaches touched rows only. This relies on params.c's invariant
 * that `touched` lists distinct rows and that rows not listed have a zero gradient. With
 * opts.sparse_dense = 1 sparse tensors are updated like dense ones (every row, every step).
 *
 * Typical step:
 *     sq_params_zero_grad(&ps);
 *     ... forward, loss, backward ...
 *     float norm;
 *     rc = sq_optim_clip_grad_norm(&ps, 5.0f, &norm, &err);
 *     rc = sq_optim_step(&opt, &ps, sq_lr_at(&sched, opt.step), &err);
 */
#ifndef SEQREC_NN_OPTIM_H
#define SEQREC_NN_OPTIM_H

#include "seqrec/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================== Optimisers ========================================= */

typedef enum {
    SQ_OPTIM_SGD = 0, /* θ −= lr · u, u = μ u + g (heavy-ball momentum as PyTorch; μ = 0: plain) */
    SQ_OPTIM_ADAM, /* Adam (Kingma & Ba) with bias correction, as PyTorch's Adam */
    SQ_OPTIM_ADAMW /* Adam with decoupled weight decay (Loshchilov & Hutter), as PyTorch's */
} sq_optim_kind;

typedef struct {
    sq_optim_kind kind;
    float momentum;     /* SGD: μ in [0, 1) */
    float beta1, beta2; /* Adam/AdamW; both 0 means (0.9, 0.999) */
    float eps;          /* Adam/AdamW; 0 means 1e-8 */
    float weight_decay; /* SGD and Adam: L2 folded into the gradient, g += wd · θ;
                           AdamW: decoupled, θ −= lr · wd · θ before the Adam update */
    int sparse_dense;   /* 1: update sparse_rows tensors densely instead of lazily */
} sq_optim_opts;

typedef struct {
    sq_optim_opts o; /* with defaults filled in */
    float *m;        /* [total] velocity (SGD) or first moment (Adam); owns the state block */
    float *v;        /* [total] second moment (Adam/AdamW), inside m's block; NULL for SGD */
    size_t total;    /* floats per state tensor: ps->total at init */
    long step;       /* updates done so far; Adam's bias correction uses step + 1 while updating */
} sq_optim;

/* Allocates zeroed state for ps (which must be allocated). Errors: SQ_ERR_ARG (bad options or
 * ps not allocated), SQ_ERR_NOMEM. On error *opt is left empty (sq_optim_free is a no-op). */
sq_status sq_optim_init(sq_optim *opt, const sq_params *ps, const sq_optim_opts *opts,
                        sq_error *err);
void sq_optim_free(sq_optim *opt); /* NULL and empty are fine */

/* One update of every parameter with learning rate lr from its gradient; then step++.
 * Gradients are read, not cleared. Errors: SQ_ERR_MISMATCH (ps is not the group the state was
 * made for), SQ_ERR_ARG (lr negative or not finite). */
sq_status sq_optim_step(sq_optim *opt, sq_params *ps, float lr, sq_error *err);

/* ==================================== Gradient clipping ====================================== */

/* Global L2 norm of all gradients, dense tensors whole and sparse ones over their touched rows
 * (each row once). If it exceeds max_norm, every gradient is scaled by max_norm / norm, so the
 * new norm is max_norm. *norm (may be NULL) receives the norm before clipping. max_norm <= 0
 * only measures. Errors: SQ_ERR_NUMERIC when the norm is NaN or infinite (nothing scaled). */
sq_status sq_optim_clip_grad_norm(sq_params *ps, float max_norm, float *norm, sq_error *err);

/* =================================== Learning-rate schedule ================================== */

typedef enum {
    SQ_LR_CONSTANT = 0, /* lr after the warm-up */
    SQ_LR_LINEAR,       /* linear from lr to min_lr at step `total` */
    SQ_LR_COSINE        /* half a cosine from lr to min_lr at step `total` */
} sq_lr_decay;

typedef struct {
    float lr;          /* peak learning rate */
    long warmup;       /* warm-up steps: lr · (step + 1) / warmup for step < warmup */
    long total;        /* step at which the decay reaches min_lr (and stays) */
    float min_lr;      /* end of the decay */
    sq_lr_decay decay; /* after the warm-up */
} sq_lr_schedule;

/* The learning rate for 0-based `step`: a pure function. With p = (step − warmup) /
 * (total − warmup) clamped to [0, 1]: constant lr; linear min_lr + (lr − min_lr)(1 − p);
 * cosine min_lr + (lr − min_lr)(1 + cos πp)/2. */
float sq_lr_at(const sq_lr_schedule *s, long step);

#ifdef __cplusplus
}
#endif
#endif
