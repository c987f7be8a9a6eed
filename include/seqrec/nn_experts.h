/* nn_experts.h — the multi-task sharing layer: shared-bottom, MMoE and PLE, with optional
 * scene-specific gates for multi-scenario learning, and scene-specific towers over their output
 * (src/nn/scene_towers.c). (To be merged into nn_fusion.h.)
 *
 * Follows nn_layers.h's conventions (tier 2: a struct of parameter indices and config, _init
 * declares the tensors before sq_params_alloc, _reset sets their values after it, _forward fills
 * an _acts struct from the caller's arena, _backward ACCUMULATES (+=) into input and parameter
 * gradients, a NULL input gradient skips that work; errors SQ_ERR_ARG and SQ_ERR_NOMEM).
 *
 * Legend: N rows, C input width, H expert output width, T tasks, S scenes, E experts per level,
 * K experts one task gate mixes. Row-major float32.
 *   x: [N, C] -> y: [T, N, H]  (task t's rows at y + t*N*H); scene: [N] (< S) or NULL (all 0).
 *
 * An expert is one linear layer and a ReLU: e(z) = ReLU(W z + b), W [H, Cin] (xavier), b = 0.
 * A gate is a linear layer and a row softmax over the K experts it mixes: g = softmax(G z + c),
 * G [K, Cin] zero-mean xavier (N(0, 2 / (K + Cin))), c = 0, so gates start near uniform but not
 * exactly (symmetric experts would otherwise receive identical gradients through the gate).
 * Scene-specific gates: every gate exists in S copies; row n uses copy scene[n].
 *
 * SQ_SHARE_BOTTOM (shared bottom): one expert on x; y_t = e(x) for every task (the same values
 *   copied into each task slice; backward sums the task gradients). No gates, no scenes used
 *   (scene values are still checked). n_shared, n_specific and levels are ignored (1, 0, 1).
 * SQ_SHARE_MMOE (Ma et al. 2018): E = n_shared experts on x; task t's gate (per scene) reads x:
 *   y_t[n] = sum_e g_t,e[n] e_e(x[n]), g_t[n] = softmax(G_{t,s} x[n] + c_{t,s}), s = scene[n].
 *   n_specific and levels are ignored (0, 1).
 * SQ_SHARE_PLE (Tang et al. 2020, progressive layered extraction), `levels` levels. Level l has
 *   n_specific experts per task and n_shared shared experts (E = T*n_specific + n_shared).
 *   Level 0: every expert and gate reads x (width C). Level l > 0: task t's experts and gate read
 *   task t's output of level l-1, the shared experts and the shared gate read the shared output
 *   of level l-1 (width H). Task t's gate mixes its own n_specific experts then the n_shared
 *   shared experts (K = n_specific + n_shared). At every level but the last a shared gate mixes
 *   ALL E experts of the level into the shared output. y_t = task t's output of the last level.
 *   MMoE is PLE with one level and n_specific = 0; that is how it is computed.
 *
 * Expert order within a level: task 0's n_specific experts, task 1's, ..., then the n_shared
 * shared experts. Tensors of level l ("<prefix>.l<l>.<name>"), Cin = C at level 0, else H:
 *   ew [E, H, Cin], eb [E, H]           the experts (xavier per expert; 0)
 *   gw [T*S, K, Cin], gb [T*S, K]       task gates, copy (t, s) at index t*S + s (MMoE, PLE)
 *   sw [S, E, Cin], sb [S, E]           the shared gate (PLE, levels but the last)
 * Absent tensors have index -1.
 *
 * Computation. Expert and gate GEMMs run on the whole [N, Cin] input of a group of experts or
 * gates that read the same input (level 0: one GEMM for all experts and one for all task gates).
 * Gate logits are computed for all S copies ([N, S*K] per gate: S times a gate's small cost) and
 * row n keeps the softmax of copy scene[n]; backward writes the row's logit gradient into that
 * copy's columns, zeros in the others, so one GEMM over the rows gives every copy its gradient
 * (exactly 0 for a copy no row used). Softmax and mixing are per row, OpenMP over rows, each
 * row in a fixed order; no BLAS inside OpenMP regions; reductions over rows are BLAS GEMMs and
 * ordered column sums, so with a given BLAS thread count results are bit-identical whatever
 * the OpenMP thread count of this layer's loops.
 *
 * Example (error checks omitted):
 *     sq_nn_experts ex;   // 2 tasks, PLE: 2 levels, 2 shared + 1 specific expert, 3 scenes
 *     sq_nn_experts_init(&ex, &ps, "mtl", SQ_SHARE_PLE, C, H, 2, 2, 1, 2, 3); // before alloc
 *     sq_nn_experts_reset(&ex, &ps, &rng);                                    // after it
 *     sq_nn_experts_acts acts;
 *     sq_nn_experts_forward(&ex, &ps, arena, &acts, y, x, scene, N, &err); // y [2, N, H]
 *     sq_nn_experts_backward(&ex, &ps, arena, &acts, dx, dy, &err);        // dx, grads +=
 */
#ifndef SEQREC_NN_EXPERTS_H
#define SEQREC_NN_EXPERTS_H

/* nn.h first: it includes nn_layers.h before nn_conv.h / nn_graph.h, which need its types. */
#include "seqrec/nn.h"
#include "seqrec/nn_layers.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { SQ_SHARE_BOTTOM = 0, SQ_SHARE_MMOE, SQ_SHARE_PLE } sq_nn_share_kind;

/* kind -> "shared_bottom" | "mmoe" | "ple"; "?" for an unknown kind. */
const char *sq_nn_share_name(sq_nn_share_kind k);
/* 0 and *out set, or -1 (unknown or NULL name; *out untouched). */
int sq_nn_share_parse(const char *name, sq_nn_share_kind *out);

enum { SQ_EXPERTS_MAX_TASKS = 8, SQ_EXPERTS_MAX_LEVELS = 4 };

typedef struct {
    sq_nn_share_kind kind;         /* how the tasks share experts */
    int C, H;                      /* input width, expert output width */
    int n_tasks;                   /* T, 1..SQ_EXPERTS_MAX_TASKS */
    int n_shared;                  /* shared experts per level (BOTTOM: 1) */
    int n_specific;                /* PLE: experts per task per level (else 0) */
    int levels;                    /* PLE: 1..SQ_EXPERTS_MAX_LEVELS (else 1) */
    int n_scenes;                  /* S >= 1: copies of every gate */
    int n_experts;                 /* E = n_tasks * n_specific + n_shared, per level */
    int gate_k;                    /* K = n_specific + n_shared (BOTTOM: 0, no gates) */
    int ew[SQ_EXPERTS_MAX_LEVELS]; /* [E, H, Cin] expert weights of each level */
    int eb[SQ_EXPERTS_MAX_LEVELS]; /* [E, H] expert biases */
    int gw[SQ_EXPERTS_MAX_LEVELS]; /* [T*S, K, Cin] task gate weights (-1: BOTTOM) */
    int gb[SQ_EXPERTS_MAX_LEVELS]; /* [T*S, K] task gate biases (-1: BOTTOM) */
    int sw[SQ_EXPERTS_MAX_LEVELS]; /* [S, E, Cin] shared gate weights (-1: none) */
    int sb[SQ_EXPERTS_MAX_LEVELS]; /* [S, E] shared gate biases (-1: none) */
} sq_nn_experts;

/* Kept by forward for backward (and for explanations: the gate weights). Level l's buffers are
 * set for l < levels, NULL beyond (and everything NULL when N == 0). */
typedef struct {
    int N;                             /* rows of this forward */
    const float *x;                    /* [N, C] input (caller's, must stay valid) */
    const uint16_t *scene;             /* [N] or NULL (caller's, must stay valid) */
    float *z[SQ_EXPERTS_MAX_LEVELS];   /* [N, E*H] expert pre-activations, expert e at e*H */
    float *e[SQ_EXPERTS_MAX_LEVELS];   /* [N, E*H] expert outputs ReLU(z) */
    float *g[SQ_EXPERTS_MAX_LEVELS];   /* [N, T, K] task gate weights of the row's scene
                                          (NULL for BOTTOM) */
    float *sg[SQ_EXPERTS_MAX_LEVELS];  /* [N, E] shared gate weights (NULL: no shared gate) */
    float *out[SQ_EXPERTS_MAX_LEVELS]; /* [T+1, N, H] task outputs then the shared output,
                                          levels but the last (the last writes y); else NULL */
} sq_nn_experts_acts;

/* Declares the tensors (see above). 0, or -1 on bad sizes (C, H < 1; n_tasks outside
 * 1..SQ_EXPERTS_MAX_TASKS; MMoE / PLE n_shared < 1; PLE n_specific < 0 or levels outside
 * 1..SQ_EXPERTS_MAX_LEVELS; n_scenes outside 1..65536; an unknown kind; sizes past INT_MAX) or
 * when a name does not fit / declaring fails. */
int sq_nn_experts_init(sq_nn_experts *l, sq_params *ps, const char *prefix, sq_nn_share_kind kind,
                       int C, int H, int n_tasks, int n_shared, int n_specific, int levels,
                       int n_scenes);
/* Experts: xavier per expert, biases 0. Gates: zero-mean xavier per copy, biases 0. */
void sq_nn_experts_reset(const sq_nn_experts *l, sq_params *ps, sq_rng *rng);
/* x [N, C] -> y [T, N, H]. scene [N] (values < n_scenes) or NULL (= scene 0 for every row).
 * SQ_ERR_ARG: N < 0, x or y NULL with N > 0, y overlapping x, a scene value >= n_scenes (the
 * message names the row), a layer whose config init would reject. SQ_ERR_NOMEM: arena full.
 * x and scene are remembered, not copied; y is not read by backward. */
sq_status sq_nn_experts_forward(const sq_nn_experts *l, const sq_params *ps, sq_arena *a,
                                sq_nn_experts_acts *acts, float *y, const float *x,
                                const uint16_t *scene, int N, sq_error *err);
/* dy [T, N, H] -> dx [N, C] accumulated (NULL: skipped); parameter gradients accumulated.
 * Scratch from the arena (SQ_ERR_NOMEM when full). */
sq_status sq_nn_experts_backward(const sq_nn_experts *l, sq_params *ps, sq_arena *a,
                                 const sq_nn_experts_acts *acts, float *dx, const float *dy,
                                 sq_error *err);

/* ====================================== Scene towers ======================================= */

/* Scene-specific towers over the experts (multi-scenario): task t's rows of scene s pass
 * through their own layer, y'_t[n] = ReLU(W_{t,s} y_t[n] + b_{t,s}), s = scene[n].
 * Tensors "<prefix>.w" [T*S, H, H] (xavier per copy) and "<prefix>.b" [T*S, H] (0), copy (t, s)
 * at index t*S + s. Rows are grouped by scene (a stable counting sort), so every (t, s) copy
 * is one GEMM over its rows; a copy no row uses gets exactly zero gradient.
 *   x: [T, N, H] -> y: [T, N, H]  (task t's rows at t*N*H, as the experts' output). */
typedef struct {
    int H;        /* width in and out */
    int n_tasks;  /* T, 1..SQ_EXPERTS_MAX_TASKS */
    int n_scenes; /* S, 1..65536 */
    int w, b;     /* tensor indices */
} sq_nn_scene_towers;

/* Kept by forward for backward, all from the caller's arena. */
typedef struct {
    int N;      /* rows */
    int *perm;  /* [N] rows in scene order */
    int *start; /* [S + 1] scene s's rows are perm[start[s] .. start[s + 1]) */
    float *x;   /* [T, N, H] inputs, rows in perm order */
    float *h;   /* [T, N, H] outputs ReLU(W x + b), rows in perm order */
} sq_nn_scene_towers_acts;

/* Declares the tensors. 0, or -1 on bad sizes (H < 1, T outside 1..SQ_EXPERTS_MAX_TASKS, S
 * outside 1..65536) or when declaring fails. */
int sq_nn_scene_towers_init(sq_nn_scene_towers *l, sq_params *ps, const char *prefix, int H,
                            int n_tasks, int n_scenes);
void sq_nn_scene_towers_reset(const sq_nn_scene_towers *l, sq_params *ps, sq_rng *rng);
/* x [T, N, H] -> y [T, N, H] (y may not overlap x). scene [N] (< n_scenes) or NULL (all 0).
 * SQ_ERR_ARG: N < 0, a scene value >= n_scenes (the message names the row). SQ_ERR_NOMEM. */
sq_status sq_nn_scene_towers_forward(const sq_nn_scene_towers *l, const sq_params *ps, sq_arena *a,
                                     sq_nn_scene_towers_acts *acts, float *y, const float *x,
                                     const uint16_t *scene, int N, sq_error *err);
/* dy [T, N, H] -> dx [T, N, H] accumulated (NULL: skipped); parameter gradients accumulated.
 * SQ_ERR_NOMEM when the arena is full. */
sq_status sq_nn_scene_towers_backward(const sq_nn_scene_towers *l, sq_params *ps, sq_arena *a,
                                      const sq_nn_scene_towers_acts *acts, float *dx,
                                      const float *dy, sq_error *err);

#ifdef __cplusplus
}
#endif
#endif
