/* sasrec_net.h — the SASRec network (Kang & McAuley 2018) as a reusable piece: item embedding
 * (tied with the output layer), learned positions, SASREC transformer blocks, a final layer norm,
 * and the full-softmax cross-entropy over all items ("SASRec+", Klenitskiy & Vasilev 2023). The
 * SASRec model (models/sasrec.c) wraps it behind sq_model; `seqrec bench nn` times its step.
 *
 *   ids [B,T] ─▶ E[ids]·√C + P[t] ─▶ dropout ─▶ zero padded rows ─▶ block × L ─▶ LN ─▶ h [B,T,C]
 *   training:  loss = CE(h[i] · E[1..n]ᵀ, target[i]) over the positions i with a target
 *   scoring:   scores[b] = h[b, T−1] · E[1..n]ᵀ
 *
 * Exactly the PyTorch peer (../shared/peers/sasrec_torch.py): blocks `q = LN1(x); r = q +
 * Attn(q, x, x); h = LN2(r); y = h + FFN(h)`, padded rows zeroed after each block, causal and
 * key-padding mask, dropout on the embedding sum, the attention weights and after each FFN
 * linear, layer norms with eps 1e-8, xavier-normal init for every matrix (the item table and
 * the positions included), zero biases, and row 0 of the item table (padding) zero.
 *
 * Item ids. Row 0 of the table is padding; item k of the dataset is row k + 1 (the train
 * module's sq_batch convention: inputs and targets are "item id + 1", 0 = padding / no target).
 * The softmax runs over rows 1..n_items only; row 0 never gets a gradient and stays zero.
 *
 * Parameters (in one sq_params, names as in model files):
 *   "item_emb" [n_items + 1, C] sparse rows; "pos_emb" [T, C];
 *   "block<l>.ln1.{g,b}", "block<l>.attn.{wqkv,bqkv,wo,bo}", "block<l>.ln2.{g,b}",
 *   "block<l>.ffn.fc{1,2}.{w,b}" for l = 0..blocks−1; "ln_f.{g,b}".
 * The table is row-sparse: its embedding-lookup gradient touches only the rows seen, but the
 * cross-entropy's dE is dense over rows 1..n_items, so a training step marks all of those rows
 * touched (sq_params_zero_grad then clears them all).
 *
 * Memory. Activations and scratch come from a caller arena (nn_layers.h convention 3) of at
 * least sq_sasrec_net_scratch(cfg, B, T) bytes; the caller resets it after each step or score.
 * Threads: as the layers (OpenMP over rows, BLAS threads inside GEMMs, see docs/nn.md).
 *
 * Example (error checks omitted):
 *     sq_sasrec_config c;  sq_sasrec_config_default(&c, n_items, 200);
 *     sq_sasrec_net net;   sq_sasrec_net_init(&net, &c, &err);
 *     sq_sasrec_net_reset(&net, &rng);
 *     sq_arena *a = sq_arena_create(sq_sasrec_net_scratch(&c, 128, 200));
 *     sq_params_zero_grad(&net.ps);
 *     sq_sasrec_net_step(&net, a, inputs, targets, 128, 200, &rng, &loss, NULL, &err);
 *     sq_arena_reset(a);   // then an optimiser step on net.ps
 *     sq_sasrec_net_free(&net);
 */
#ifndef SEQREC_MODELS_SASREC_NET_H
#define SEQREC_MODELS_SASREC_NET_H

#include "seqrec/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { SQ_SASREC_MAX_BLOCKS = 16 };

typedef struct {
    int n_items;   /* catalogue size; table rows are n_items + 1 (row 0 = padding) */
    int maxlen;    /* T: the longest sequence, rows of the positional table */
    int hidden;    /* C: model width */
    int blocks;    /* transformer blocks, 1..SQ_SASREC_MAX_BLOCKS */
    int heads;     /* attention heads, hidden % heads == 0 */
    int ffn;       /* F: feed-forward width (the original SASRec: = hidden) */
    float dropout; /* p for the embedding sum, the attention weights and the FFN, in [0, 1) */
    sq_nn_act act; /* FFN activation (ReLU in the original) */
    float eps;     /* layer-norm epsilon (1e-8 as the original) */
} sq_sasrec_config;

/* The peer's settings: hidden 64, 2 blocks, 1 head, F = 64, ReLU, dropout 0.2, eps 1e-8. */
void sq_sasrec_config_default(sq_sasrec_config *c, int n_items, int maxlen);

/* Seconds spent per stage, accumulated over calls (zero it yourself). The stages cover the whole
 * step: their sum is the step's wall time up to the timer calls themselves. */
typedef struct {
    double embed_fwd; /* lookup × √C, + positions, dropout, padding mask */
    double ln_fwd;    /* every layer norm (two per block and the final one) */
    double attn_fwd;  /* attention: QKV projections, scores, softmax, dropout, A·V, output */
    double ffn_fwd;   /* feed-forward: two linears, activation, dropouts */
    double resid_fwd; /* residual sums and padded-row masks */
    double ce;        /* cross-entropy forward and backward (one call: logits over all items
                         at the target positions, log-sum-exp, softmax − onehot, dh and dE) */
    double ln_bwd;    /* every layer-norm backward */
    double attn_bwd;  /* attention backward */
    double ffn_bwd;   /* feed-forward backward */
    double resid_bwd; /* residual copies, padded-row masks */
    double embed_bwd; /* dropout backward, positions dP, sparse rows of the table */
} sq_sasrec_timing;

enum { SQ_SASREC_N_STAGES = 11 };
/* Stage i's seconds (i < SQ_SASREC_N_STAGES) and its name ("attn_fwd"). */
double sq_sasrec_timing_get(const sq_sasrec_timing *t, int i);
const char *sq_sasrec_timing_name(int i);

typedef struct {
    sq_sasrec_config cfg;                  /* as given */
    sq_params ps;                          /* every tensor (owned) */
    int item_emb, pos_emb;                 /* parameter indices */
    sq_nn_block blk[SQ_SASREC_MAX_BLOCKS]; /* cfg.blocks SQ_BLOCK_SASREC blocks */
    sq_nn_layernorm ln_f;                  /* final layer norm */
    /* Items sq_sasrec_net_step's softmax leaves out (sq_nn_ce_opts.exclude: ascending item ids,
     * the held-out items of a cold_items split), set by the caller for each step; NULL: none. */
    const uint32_t *exclude;
    int n_exclude;
} sq_sasrec_net;

/* Declares and allocates the parameters (values zero until reset). SQ_ERR_ARG for a bad config,
 * SQ_ERR_NOMEM. On failure nothing is left to free (sq_sasrec_net_free is still safe). */
sq_status sq_sasrec_net_init(sq_sasrec_net *net, const sq_sasrec_config *cfg, sq_error *err);
/* Only declares them in net->ps, for a caller that declares more tensors of its own in the same
 * set before sq_params_alloc (models/mt.c). On failure nothing is left to free. */
sq_status sq_sasrec_net_declare(sq_sasrec_net *net, const sq_sasrec_config *cfg, sq_error *err);
void sq_sasrec_net_free(sq_sasrec_net *net); /* NULL or a failed init: no-op */
/* Initial values: xavier-normal for every matrix (tables included), zero biases, layer norms
 * (1, 0), row 0 of the item table zero. */
void sq_sasrec_net_reset(sq_sasrec_net *net, sq_rng *rng);

/* Arena bytes a step (the most) or a score call needs for B sequences of length T. */
size_t sq_sasrec_net_scratch(const sq_sasrec_config *cfg, int B, int T);

/* Activations of one forward, for the backward of the same step. */
typedef struct {
    int B, T;                                   /* shapes */
    const uint32_t *ids;                        /* [B*T] inputs (caller's) */
    const float *x_in;                          /* [B*T, C] caller's input embedding, or NULL */
    uint8_t *pad;                               /* [B*T] 1 where ids == 0 */
    float *x0;                                  /* [B*T, C] embedding sum after dropout, masked */
    uint8_t *m0;                                /* [B*T*C] its dropout mask, or NULL */
    float *xs[SQ_SASREC_MAX_BLOCKS + 1];        /* block inputs; xs[L] = last block output */
    sq_nn_block_acts blk[SQ_SASREC_MAX_BLOCKS]; /* per block */
    float *h, *mean_f, *rstd_f;                 /* final LN output [B*T, C] and its stats */
} sq_sasrec_acts;

/* ids: [B, T] row ids, left padded with 0, T <= maxlen (positions 0..T−1 of the table are
 * used). Fills acts; acts->h is the hidden state [B, T, C]. rng: dropout (NULL = inference).
 * timing may be NULL. Errors: SQ_ERR_ARG (an id > n_items, bad B or T), SQ_ERR_NOMEM (arena). */
sq_status sq_sasrec_net_forward(const sq_sasrec_net *net, sq_arena *a, sq_sasrec_acts *acts,
                                const uint32_t *ids, int B, int T, sq_rng *rng,
                                sq_sasrec_timing *timing, sq_error *err);
/* As forward, with the caller's input embedding x_in [B, T, C] in place of E[ids]·√C (context
 * fusion, models/mt.c): positions, dropout and the padding mask (ids == 0) are applied to it as
 * to the lookup. NULL x_in: the lookup. */
sq_status sq_sasrec_net_forward_x(const sq_sasrec_net *net, sq_arena *a, sq_sasrec_acts *acts,
                                  const uint32_t *ids, const float *x_in, int B, int T, sq_rng *rng,
                                  sq_sasrec_timing *timing, sq_error *err);
/* dh: [B, T, C] gradient of the loss w.r.t. acts->h (read, and overwritten as scratch).
 * Accumulates (+=) into every parameter gradient. After a forward_x with x_in, the item table
 * gets no lookup gradient: dh holds dL/dx_in on return instead (0 on padded rows). */
sq_status sq_sasrec_net_backward(sq_sasrec_net *net, sq_arena *a, const sq_sasrec_acts *acts,
                                 float *dh, sq_sasrec_timing *timing, sq_error *err);

/* One training step without the optimiser: forward, full softmax cross-entropy over items
 * 1..n_items at every position whose target is not 0 (only those rows' logits are computed),
 * backward into net->ps (gradients accumulate: zero them before). inputs, targets: [B, T] row
 * ids (0 = padding / no target). *loss = mean over the positions with a target (0 if none).
 * *n_targets (may be NULL) = that count. Errors: as forward, SQ_ERR_NUMERIC (loss NaN/Inf). */
sq_status sq_sasrec_net_step(sq_sasrec_net *net, sq_arena *a, const uint32_t *inputs,
                             const uint32_t *targets, int B, int T, sq_rng *rng, float *loss,
                             long *n_targets, sq_sasrec_timing *timing, sq_error *err);

/* Inference: scores[b, k] = h[b, T−1] · E[k + 1] for k in 0..n_items−1 (dataset item k), for B
 * left-padded sequences ids [B, T]. scores: [B, n_items]. No dropout; parameters read only. */
sq_status sq_sasrec_net_score(const sq_sasrec_net *net, sq_arena *a, const uint32_t *ids, int B,
                              int T, float *scores, sq_error *err);

/* Sampled training objectives (models/sasrec_sampled.c), for large catalogues or to reproduce
 * the original SASRec: the logits of each target position's positive and its K sampled
 * negatives only, so a step costs O(N·K·C) instead of O(N·V·C) and touches only those rows.
 *   SQ_SASREC_BCE:     loss_i = −log σ(pos_i) − Σ_k log(1 − σ(neg_ik))   (Kang & McAuley, K = 1)
 *   SQ_SASREC_SAMPLED: softmax over {pos_i, neg_i1..neg_iK} with log-Q correction when
 *                      item_logq is given (log of each item's sampling probability, [n_items])
 * loss = mean over the positions with a target. */
typedef enum { SQ_SASREC_CE = 0, SQ_SASREC_BCE, SQ_SASREC_SAMPLED } sq_sasrec_loss;

typedef struct {
    sq_sasrec_loss kind;    /* SQ_SASREC_BCE or SQ_SASREC_SAMPLED */
    const uint32_t *negs;   /* [B, T, K] negative row ids (item id + 1); 0 where no target */
    int K;                  /* negatives per target, ≥ 1 */
    const float *item_logq; /* [n_items] log Q of dataset item ids, or NULL (no correction) */
} sq_sasrec_sampling;

/* Arena bytes the sampled loss needs beyond the network's, for N = B·T positions. */
size_t sq_sasrec_sampled_scratch(int N, int K);
/* The sampled loss of hidden states h [N, C] (N = B·T) against targets [N] (row ids, 0 = no
 * target). With dh != NULL also dh += ∂loss/∂h and the item table's gradient for the rows
 * used (touched). *n_targets (may be NULL) = positions with a target. */
sq_status sq_sasrec_sampled_loss(sq_sasrec_net *net, sq_arena *a, const float *h,
                                 const uint32_t *targets, int N, const sq_sasrec_sampling *s,
                                 float *loss, float *dh, long *n_targets, sq_error *err);
/* As sq_sasrec_net_step with the sampled objective instead of the full cross-entropy. */
sq_status sq_sasrec_net_step_sampled(sq_sasrec_net *net, sq_arena *a, const uint32_t *inputs,
                                     const uint32_t *targets, int B, int T,
                                     const sq_sasrec_sampling *s, sq_rng *rng, float *loss,
                                     long *n_targets, sq_error *err);

#ifdef __cplusplus
}
#endif
#endif
