/* nn_fusion.h — the input fusion layer of the multi-field models: one vector per event from its
 * item, behaviour, time gap, scene and context embeddings (models/mt_net.c).
 *
 * Follows nn_layers.h's conventions (tier 2: a struct of parameter indices, _init declares the
 * tensors before sq_params_alloc, _reset sets their values after it, _forward fills an _acts
 * struct from the caller's arena, _backward ACCUMULATES (+=) into input and parameter
 * gradients, a NULL input gradient skips that work; errors SQ_ERR_ARG and SQ_ERR_NOMEM).
 *
 * Legend: N rows (events, = B * T), F fields per event, C width. Row-major float32. */
#ifndef SEQREC_NN_FUSION_H
#define SEQREC_NN_FUSION_H

#include "seqrec/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* === Input fusion === */

/* Combines the F field embeddings of each event (field 0 = the item, fields 1..F-1 its context:
 * category, brand, behaviour, ...) into one vector of width C.
 *   x: [N, F, C] (row n is x[n,0] | x[n,1] | ... | x[n,F-1]) -> y: [N, C].
 *
 * MEAN ("weighted average"): w = softmax(a) over the F fields;
 *       y[n] = F * sum_f w_f x[n,f].
 *   Scaled by F so that at init (a = 0) it is the plain sum of the field embeddings (what
 *   sequential recommenders feed by default). Gradient to a through the softmax.
 *   Tensor "<prefix>.a" [F]: the logits of the field weights, init 0.
 *
 * CONCAT: y = [x_0 | x_1 | ... | x_{F-1}] W^T + b with W [C, F*C]. x is already contiguous
 *   [N, F*C], so this is one GEMM (sq_nn_linear_forward / _backward).
 *   Tensors "<prefix>.proj.w" [C, F*C] (xavier), "<prefix>.proj.b" [C] (0).
 *
 * ATTN ("attention over the context fields, the item as query"):
 *       q[n] = Wq x[n,0];
 *       s_f = q[n] . x[n,f] / sqrt(C)            for f = 1..F-1;
 *       alpha = softmax of s over f = 1..F-1;
 *       y[n] = x[n,0] + sum_{f>=1} alpha_f x[n,f].
 *   With F == 1: y = x_0 (no parameters used; wq is still declared so that the parameter set
 *   does not depend on F). Backward runs through the scores into q, Wq and every x[n,f]
 *   (x_0 twice: the residual and via the query).
 *   Tensor "<prefix>.wq" [C, C]: the query projection (xavier).
 *
 * Only the chosen kind's tensors are declared; the other indices are -1.
 *
 * Threads and determinism: rows are computed independently (OpenMP over n when N*F*C is
 * large), each in a fixed order, and the parameter gradients are reduced over rows in a fixed
 * order (MEAN: a serial loop over rows; ATTN: one sgemm over the per-row dq; CONCAT: the linear
 * layer's sgemm and ordered column sum); no BLAS inside OpenMP regions and no per-thread
 * partial sums. So the layer's own loops give the same bits with any thread count; MEAN calls
 * no BLAS and is bit-identical throughout. The GEMMs (CONCAT; ATTN's q, dq Wq and dWq) are as
 * deterministic as BLAS is: the OpenMP build of OpenBLAS splits a large GEMM among
 * omp_get_max_threads() threads, and its last bits then move with the thread count
 * (nn_layers.h, convention 6); with a fixed thread count two runs are bit-identical.
 *
 * Example (error checks omitted):
 *     sq_nn_fuse fz;
 *     sq_nn_fuse_init(&fz, &ps, "fuse", SQ_FUSE_ATTN, F, C);   // before sq_params_alloc
 *     sq_nn_fuse_reset(&fz, &ps, &rng);                         // after it
 *     sq_nn_fuse_acts acts;
 *     sq_nn_fuse_forward(&fz, &ps, arena, &acts, y, x, N, &err);  // x [N, F, C] -> y [N, C]
 *     sq_nn_fuse_backward(&fz, &ps, arena, &acts, dx, dy, &err);  // dx += ..., grads += ...
 */
typedef enum { SQ_FUSE_MEAN = 0, SQ_FUSE_CONCAT, SQ_FUSE_ATTN } sq_nn_fuse_kind;

/* name <-> kind: "mean" | "concat" | "attention". The name of an unknown kind is "?". */
const char *sq_nn_fuse_name(sq_nn_fuse_kind k);
/* 0 and *out set, or -1 (unknown or NULL name; *out untouched). */
int sq_nn_fuse_parse(const char *name, sq_nn_fuse_kind *out);

typedef struct {
    sq_nn_fuse_kind kind; /* how the fields are combined */
    int F, C;             /* fields per event (field 0 = the item), width */
    int a;                /* MEAN: "<prefix>.a" [F] logits of the field weights (init 0) */
    sq_nn_linear proj;    /* CONCAT: "<prefix>.proj.{w,b}" C*F -> C */
    int wq;               /* ATTN: "<prefix>.wq" [C, C] query projection (xavier) */
} sq_nn_fuse;

typedef struct {
    int N;          /* rows of this forward */
    const float *x; /* [N, F, C] caller's input, must stay valid until backward */
    float *w;       /* MEAN: [F] the weights used (followed by F * w, private); ATTN: [N, F]
                       attention weights (column 0 unused = 0); CONCAT, N == 0: NULL */
    float *q;       /* ATTN: [N, C] x0 Wq^T (NULL when F == 1 or N == 0); else NULL */
} sq_nn_fuse_acts;

/* Declares the kind's tensors under prefix. 0, or -1 (F < 1, C < 1, F*C too large, unknown
 * kind, name too long, out of memory). */
int sq_nn_fuse_init(sq_nn_fuse *l, sq_params *ps, const char *prefix, sq_nn_fuse_kind kind, int F,
                    int C);
/* MEAN: a = 0; CONCAT: xavier W, b = 0; ATTN: xavier Wq. */
void sq_nn_fuse_reset(const sq_nn_fuse *l, sq_params *ps, sq_rng *rng);

/* x: [N, F, C] -> y: [N, C]; y must not alias x. x is remembered (not copied) in acts.
 * Errors: SQ_ERR_ARG (N < 0, F < 1, C < 1, unknown kind, a missing tensor, NULL x or y with
 * N > 0, y overlapping x); SQ_ERR_NOMEM (arena too small: see sq_arena_peak). */
sq_status sq_nn_fuse_forward(const sq_nn_fuse *l, const sq_params *ps, sq_arena *a,
                             sq_nn_fuse_acts *acts, float *y, const float *x, int N, sq_error *err);
/* dy: [N, C] -> dx: [N, F, C] accumulated (+=; may be NULL: not needed), and the parameter
 * gradients accumulated. Scratch from the same arena. Errors: SQ_ERR_ARG (bad sizes in l or
 * acts), SQ_ERR_NOMEM. */
sq_status sq_nn_fuse_backward(const sq_nn_fuse *l, sq_params *ps, sq_arena *a,
                              const sq_nn_fuse_acts *acts, float *dx, const float *dy,
                              sq_error *err);

#ifdef __cplusplus
}
#endif

#endif
