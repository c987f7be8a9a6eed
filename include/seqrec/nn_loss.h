/* nn_loss.h — losses: each gives its value and its gradient with respect to the scores (logits)
 * or the inputs that produced them. Numerically stable: softmaxes go through a log-sum-exp with
 * the row maximum subtracted, sigmoids through softplus forms that never overflow.
 *
 * Conventions (as the layers in nn.h):
 *   - `_forward` returns the loss (a mean over the rows that count) and writes nothing else;
 *   - `_backward` ADDS (+=) dloss · ∂loss/∂input into the gradient buffers, so a loss that is one
 *     task among several is weighted by passing its weight as dloss;
 *   - a row whose target id is negative is ignored (masked): it adds nothing to the loss or to
 *     the mean's denominator, and its gradient stays untouched. When every row is masked the
 *     loss is 0.
 *
 * Shapes: N rows (N = B*T positions, or B users), C hidden, V items, K sampled negatives.
 *
 * The full softmax over the catalogue (sq_nn_ce_chunked_*) is the hot loop of SASRec training:
 * logits are never materialised for all V items at once but chunk by chunk (cblas_sgemm of the
 * hidden states with a slice of the item table), with an online log-sum-exp per row; backward
 * recomputes each chunk's logits and does two GEMMs with (softmax − onehot). Scratch memory is
 * about N × chunk floats and comes from a caller arena:
 *
 *     sq_nn_ce_opts o = {.chunk = 4096, .first_item = 1};        // item 0 is padding
 *     size_t need = sq_nn_ce_chunked_scratch(N, C, V, &o);
 *     sq_arena *a = sq_arena_create(need);
 *     float loss;
 *     rc = sq_nn_ce_chunked(&loss, dh, dE, h, E, targets, N, C, V, 1.0f, &o, a, &err);
 *     sq_arena_reset(a);
 */
#ifndef SEQREC_NN_LOSS_H
#define SEQREC_NN_LOSS_H

#include "seqrec/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ============================ Full softmax cross-entropy, chunked ============================ */

typedef struct {
    int chunk;      /* items per chunk; <= 0 means 4096 */
    int rows;       /* rows per tile; <= 0 means all of them. Scratch: rows × chunk floats,
                       plus 2 N C for the compacted rows and their gradient. Smaller tiles cap
                       memory but mean more, smaller GEMMs and OpenMP regions, which is slow when
                       OpenBLAS's threads and OpenMP's spin for the same cores */
    int first_item; /* only items [first_item, V) take part in the softmax (1 excludes a padding
                       row 0, which then also gets no gradient); 0 by default */
    /* Items left out of the softmax (a cold_items split's held-out items): ascending ids whose
     * rows exclude[k] + exclude_shift of E count as logit −∞ (no mass, no gradient: their rows
     * of dE stay untouched). A target among them is an error. NULL: none. */
    const uint32_t *exclude;
    int n_exclude;
    int exclude_shift; /* the row of item id x is x + exclude_shift (1 with a padding row 0) */
} sq_nn_ce_opts;

/* Bytes of arena scratch that sq_nn_ce_chunked / _forward / _backward need at most for these
 * sizes (opts may be NULL for the defaults). */
size_t sq_nn_ce_chunked_scratch(int N, int C, int V, const sq_nn_ce_opts *opts);

/* h: [N, C] hidden states; E: [V, C] item table (tied output embeddings); targets: [N] item ids,
 * negative = masked row. logits[i, v] = h[i] · E[v] for v in [first_item, V).
 *     loss = mean over unmasked rows i of ( logsumexp_v logits[i, v] − logits[i, targets[i]] )
 * Computes the loss and, when dh / dE are not NULL, accumulates (+=) dloss · ∂loss/∂h into dh
 * [N, C] and dloss · ∂loss/∂E into dE [V, C] (dense; rows below first_item untouched). Either
 * gradient may be NULL; with both NULL only the forward pass runs. dE is dense (every item
 * gets a gradient): a table that receives it must be a dense tensor (sparse_rows = 0), since a
 * lazy optimiser would only see the rows that sq_param_touch listed. Does the two passes in one
 * call and saves one GEMM of recomputation over _forward + _backward.
 * Scratch comes from `arena` and stays allocated there: reset the arena after the step.
 * Errors: SQ_ERR_ARG (bad sizes, a target outside [first_item, V)), SQ_ERR_NOMEM (the arena is
 * smaller than sq_nn_ce_chunked_scratch), SQ_ERR_NUMERIC (the loss is NaN or infinite). */
sq_status sq_nn_ce_chunked(float *loss, float *dh, float *dE, const float *h, const float *E,
                           const int32_t *targets, int N, int C, int V, float dloss,
                           const sq_nn_ce_opts *opts, sq_arena *arena, sq_error *err);
/* The forward half alone: loss and, if lse is not NULL, each unmasked row's log-sum-exp [N],
 * which sq_nn_ce_chunked_backward takes to skip its own first pass. */
sq_status sq_nn_ce_chunked_forward(float *loss, float *lse, const float *h, const float *E,
                                   const int32_t *targets, int N, int C, int V,
                                   const sq_nn_ce_opts *opts, sq_arena *arena, sq_error *err);
/* The backward half: dh += dloss · ∂loss/∂h, dE += dloss · ∂loss/∂E (either may be NULL).
 * lse: [N] from _forward with the same inputs, or NULL to recompute it. */
sq_status sq_nn_ce_chunked_backward(float *dh, float *dE, float dloss, const float *lse,
                                    const float *h, const float *E, const int32_t *targets, int N,
                                    int C, int V, const sq_nn_ce_opts *opts, sq_arena *arena,
                                    sq_error *err);

/* ============================== Sampled softmax with log-Q ================================== */

/* One positive and K sampled negatives per row, each logit corrected by subtracting the log of
 * its sampling probability Q (Bengio & Senécal; Yi et al. 2019), which makes the sampled
 * softmax an unbiased-in-the-limit estimate of the full one:
 *     o_pos = pos[i] − logq_pos[i],   o_k = neg[i, k] − logq_neg[·, k]
 *     loss  = mean_i ( logsumexp(o_pos, o_1..o_K) − o_pos )
 * A negative whose id equals the row's positive id (an accidental hit) is left out of the
 * softmax. pos_id[i] < 0 masks row i.
 *   pos:      [N] positive logits (h[i] · E[pos_id[i]])
 *   neg:      [N, K] negative logits (h[i] · E[neg_id[.., k]])
 *   pos_id:   [N]; neg_id: [K] shared by all rows when shared_neg, else [N, K]
 *   logq_pos: [N] log Q of each positive; logq_neg: [K] when shared_neg, else [N, K];
 *             either may be NULL for no correction.
 * Backward accumulates into dpos [N] and dneg [N, K] (either may be NULL); the caller carries
 * them on to h and E. */
typedef struct {
    const uint32_t *neg_id; /* [K] or [N, K] */
    const float *logq_pos;  /* [N] or NULL */
    const float *logq_neg;  /* [K] or [N, K] or NULL */
    int K;                  /* negatives per row */
    int shared_neg;         /* 1: one set of K negatives for all rows */
} sq_nn_sampled_negs;

float sq_nn_sampled_softmax_forward(const float *pos, const float *neg, const int32_t *pos_id,
                                    const sq_nn_sampled_negs *s, int N);
void sq_nn_sampled_softmax_backward(float *dpos, float *dneg, float dloss, const float *pos,
                                    const float *neg, const int32_t *pos_id,
                                    const sq_nn_sampled_negs *s, int N);

/* ============================ Binary cross-entropy with logits ============================== */

/* x: [N] logits; y: [N] targets in [0, 1]; w: [N] weights or NULL (all 1).
 *     loss = (1/N) Σ_i w_i (max(x_i, 0) − x_i y_i + log(1 + exp(−|x_i|)))
 * (the mean is over N, weights or not, as PyTorch's BCEWithLogitsLoss). A weight of 0 masks.
 * Backward: dx += dloss · w_i (σ(x_i) − y_i) / N. */
float sq_nn_bce_forward(const float *x, const float *y, const float *w, int N);
void sq_nn_bce_backward(float *dx, float dloss, const float *x, const float *y, const float *w,
                        int N);

/* ========================================= BPR ============================================== */

/* pos, neg: [N] scores of a positive and a sampled negative item per row.
 *     loss = (1/N) Σ_i −log σ(pos_i − neg_i) = (1/N) Σ_i softplus(neg_i − pos_i)
 * Backward: dpos −= dloss · σ(neg − pos)/N, dneg += dloss · σ(neg − pos)/N. */
float sq_nn_bpr_forward(const float *pos, const float *neg, int N);
void sq_nn_bpr_backward(float *dpos, float *dneg, float dloss, const float *pos, const float *neg,
                        int N);

/* ========================================= WARP ============================================= */

/* WARP (Weston, Bengio, Usunier 2011). For a positive with score s_p, negatives are drawn one
 * after another until one violates the margin (s_n > s_p − margin); if that took t draws out of
 * the V_neg = n_items − 1 possible negatives, the positive's rank is estimated as
 * r = floor(V_neg / t) and the hinge is weighted by L(r) = Σ_{k=1..r} 1/k:
 *     loss_i = L(r_i) · max(0, margin − s_p + s_n)
 * Finding the violator is separate from the loss so that the caller can score negatives lazily.
 * The loss itself treats the weights as constants. */

/* L(r) = Σ_{k=1..r} 1/k (0 for r <= 0); exact below 64, asymptotic series (error < 1e-9) above. */
double sq_nn_warp_rank_weight(long r);

/* Draws the next negative and returns its score; *id receives the item. */
typedef float (*sq_nn_warp_draw_fn)(void *ud, uint32_t *id);

/* Scans neg_scores [n_neg] in order for the first violator. Returns its index (0-based) and sets
 * *weight = L(floor((n_items − 1) / (index + 1))), or returns −1 with *weight = 0 when none of
 * them violates. */
int sq_nn_warp_find(float pos, const float *neg_scores, int n_neg, float margin, long n_items,
                    float *weight);
/* The same with negatives drawn through `draw` (at most max_draws times); the violator's id and
 * score go to *neg_id and *neg_score. Returns the number of draws it took, or 0 when none
 * violated (then *weight = 0). */
int sq_nn_warp_find_draw(float pos, sq_nn_warp_draw_fn draw, void *ud, int max_draws, float margin,
                         long n_items, uint32_t *neg_id, float *neg_score, float *weight);

/* pos, neg: [N] scores of the positive and of its violating negative; weight: [N] from
 * sq_nn_warp_find (0 for rows without a violator).
 *     loss = (1/N) Σ_i weight_i · max(0, margin − pos_i + neg_i)
 * Backward (where the hinge is active): dpos −= dloss · weight/N, dneg += dloss · weight/N. */
float sq_nn_warp_forward(const float *pos, const float *neg, const float *weight, float margin,
                         int N);
void sq_nn_warp_backward(float *dpos, float *dneg, float dloss, const float *pos, const float *neg,
                         const float *weight, float margin, int N);

/* ========================================= MSE ============================================== */

/* pred, target: [N]. loss = (1/N) Σ (pred − target)²; backward: dpred += dloss · 2 (pred −
 * target)/N. Ratings. */
float sq_nn_mse_forward(const float *pred, const float *target, int N);
void sq_nn_mse_backward(float *dpred, float dloss, const float *pred, const float *target, int N);

/* ======================================== BPR-max =========================================== */

/* BPR-max (Hidasi & Karatzas 2018, GRU4Rec's ranking loss): the positive is compared with the
 * row's K sampled negatives, each pairwise term weighted by the softmax of the negatives' own
 * scores, so the hardest negatives count most; a regulariser pulls the weighted negative scores
 * towards 0. For row i with positive score p and negative scores x_j (j over its negatives):
 *     s_j    = exp(x_j) / Σ_k exp(x_k)                        (softmax over the negatives only)
 *     loss_i = −log Σ_j s_j σ(p − x_j)  +  reg · Σ_j s_j x_j²
 *     loss   = mean over the rows that count
 * computed in double; a row whose sum underflows (p some 600 below its negatives) is redone in
 * the log domain, so the loss stays finite and exact however far p is below the negatives. The
 * softmax weights are part of the function: their gradient is taken too, as in the authors' code.
 *   pos:    [N] positive scores;  neg: [N, K] negative scores
 *   pos_id: [N] positive ids; negative masks the row
 *   neg_id: [N, K] negative ids, or NULL; a negative whose id equals its row's positive id (an
 *           accidental hit) is left out. A row left with no negative does not count.
 *   reg:    the regularisation weight (GRU4Rec's bpreg; 1.0 in the paper)
 * Backward accumulates dloss · ∂loss/∂pos into dpos [N] and dloss · ∂loss/∂neg into dneg [N, K]
 * (either may be NULL); masked rows and left-out negatives get nothing. The caller carries them
 * on to the hidden states and the item table. */
float sq_nn_bprmax_forward(const float *pos, const float *neg, const int32_t *pos_id,
                           const uint32_t *neg_id, int K, float reg, int N);
void sq_nn_bprmax_backward(float *dpos, float *dneg, float dloss, const float *pos,
                           const float *neg, const int32_t *pos_id, const uint32_t *neg_id, int K,
                           float reg, int N);

#ifdef __cplusplus
}
#endif
#endif
