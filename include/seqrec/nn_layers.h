/* nn_layers.h — the layers of seqrec's networks, each with its forward and backward side by side
 * (llm.c style). Parameters live in sq_params (nn.h); activations in caller-owned buffers.
 *
 * Legend (shapes in comments):
 *   B batch, T sequence length, C channels (model width), O output channels, H heads,
 *   D = C / H head size, F feed-forward width, G recurrent hidden size, V table rows,
 *   N = B * T rows. Everything is float32, row-major; "[B,T,C]" means row b*T + t of C floats.
 *
 * Conventions (numbered: the tests check each of them)
 *  1. Backward ACCUMULATES (+=) into every gradient it is handed, input gradients and parameter
 *     gradients alike; nothing is overwritten. Zero parameter gradients once per step with
 *     sq_params_zero_grad; take input-gradient buffers from sq_arena_calloc. A NULL input
 *     gradient means "not needed" and skips that work.
 *  2. Two tiers.
 *     Kernels on raw pointers, no state: linear, layer norm, activations, dropout, embedding,
 *     positional encodings, row masking.
 *     Layers with parameters (attention, feed-forward, transformer block, GRU, LSTM, MLP): a small
 *     struct holding parameter indices and config; `_init` declares their tensors in sq_params
 *     under "<prefix>.<tensor>" (call before sq_params_alloc); `_reset` sets initial values
 *     (after sq_params_alloc); `_forward` / `_backward`.
 *  3. What backward needs is kept in an `_acts` struct that forward fills with buffers carved from
 *     the arena it is given; backward takes its scratch from the same arena. The caller resets
 *     the arena once per step, after backward. Input pointers (x, pad, h0…) are remembered, not
 *     copied: they and the output y must stay unchanged until backward returns. Forward and
 *     backward return SQ_ERR_NOMEM (arena too small: see sq_arena_peak) or SQ_ERR_ARG.
 *  4. Padding: `pad` is uint8 [B*T], 1 at a padded position, or NULL for none.
 *  5. Dropout is on when the forward is given an RNG (training) and p > 0; rng == NULL means
 *     inference. Masks are derived from one draw of the RNG per call and a counter-based stream
 *     per block of elements, so they do not depend on the thread count.
 *  6. Threads: OpenMP over rows for element-wise and row-wise work; BLAS (OpenBLAS threads) is
 *     not called inside an OpenMP region, with one exception: attention runs its per-(batch,
 *     head) work as OpenMP tasks with small single-threaded GEMMs inside, when OpenBLAS is the
 *     OpenMP build (serially otherwise; attention.c, docs/nn.md). Reductions over rows (bias
 *     and norm gradients) run per column in a fixed order: with one thread two runs are
 *     bit-identical, and the thread count changes results only through BLAS's own blocking.
 *
 * Example (a SASRec encoder step; error checks omitted):
 *     sq_params ps; sq_params_init(&ps);
 *     sq_nn_block blk;
 *     sq_nn_block_init(&blk, &ps, "block0", SQ_BLOCK_SASREC, 64, 1, 64, SQ_ACT_RELU, 0.2f, 1e-8f);
 *     sq_params_alloc(&ps, &err);
 *     sq_nn_block_reset(&blk, &ps, &rng);
 *     // per step:
 *     sq_nn_block_acts acts;
 *     sq_nn_block_forward(&blk, &ps, arena, &acts, y, x, pad, B, T, &rng, &err);
 *     ... loss gives dy ...
 *     sq_nn_block_backward(&blk, &ps, arena, &acts, dx, dy, &err);
 *     sq_arena_reset(arena);
 */
#ifndef SEQREC_NN_LAYERS_H
#define SEQREC_NN_LAYERS_H

#include "seqrec/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ========================================== Helpers ========================================== */

/* Value / gradient pointer of parameter `idx` (NULL when idx < 0: an absent optional tensor). */
static inline float *sq_nn_val(const sq_params *ps, int idx) {
    return idx >= 0 ? ps->p[idx].data : NULL;
}
static inline float *sq_nn_grad(const sq_params *ps, int idx) {
    return idx >= 0 ? ps->p[idx].grad : NULL;
}

/* Declares "<prefix>.<name>" (see sq_params_declare); -1 when the name does not fit or on error. */
int sq_nn_declare(sq_params *ps, const char *prefix, const char *name, int ndim,
                  const size_t *shape, int sparse_rows);

/* Initial values. xavier: N(0, 2 / (fan_in + fan_out)) for w [out,in]; uniform in [lo, hi). */
void sq_nn_fill(float *x, size_t n, float v);
void sq_nn_fill_normal(float *x, size_t n, float std, sq_rng *rng);
void sq_nn_fill_uniform(float *x, size_t n, float lo, float hi, sq_rng *rng);
void sq_nn_fill_xavier(float *w, int out, int in, sq_rng *rng);

/* acc: [C]; x: [N, C] with row stride ldx.  acc[c] += sum_n x[n,c], rows summed in order. */
void sq_nn_colsum_acc(float *acc, const float *x, int N, int C, int ldx);

/* x: [N, C]; pad: [N].  x[n,:] = 0 where pad[n] (in place; its own backward: apply to dy). */
void sq_nn_mask_rows(float *x, const uint8_t *pad, int N, int C);

/* ========================================== Linear =========================================== */

/* x: [N, C] -> y: [N, O]; W: [O, C]; b: [O] or NULL.  y = x W^T + b  (cblas_sgemm) */
void sq_nn_linear_forward(float *y, const float *x, const float *W, const float *b, int N, int C,
                          int O);
/* dx: [N, C], dW: [O, C], db: [O], each accumulated (+=) and each may be NULL. */
void sq_nn_linear_backward(float *dx, float *dW, float *db, const float *dy, const float *x,
                           const float *W, int N, int C, int O);
/* The same with row strides: x and dx rows ldx apart, y and dy rows ldy apart (to read or write
 * column slices of a wider matrix, e.g. the Q or K|V part of a fused [N, 3C] buffer). */
void sq_nn_linear_forward_ld(float *y, int ldy, const float *x, int ldx, const float *W,
                             const float *b, int N, int C, int O);
void sq_nn_linear_backward_ld(float *dx, int ldx, float *dW, float *db, const float *dy, int ldy,
                              const float *x, const float *W, int N, int C, int O);

/* A linear layer's tensors: "<prefix>.w" [O, C] and, with bias, "<prefix>.b" [O]. */
typedef struct {
    int w, b; /* parameter indices (b = -1: no bias) */
    int C, O; /* input and output width */
} sq_nn_linear;

int sq_nn_linear_init(sq_nn_linear *l, sq_params *ps, const char *prefix, int C, int O,
                      int bias);                                            /* 0 or -1 */
void sq_nn_linear_reset(const sq_nn_linear *l, sq_params *ps, sq_rng *rng); /* xavier, b = 0 */

/* ======================================== Layer norm ========================================= */

/* x, y: [N, C]; gamma, beta: [C]; mean, rstd: [N] (saved for backward).  y must not alias x.
 * y = (x - mean) * rstd * gamma + beta, rstd = 1 / sqrt(var + eps), var biased (as PyTorch). */
void sq_nn_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *gamma,
                             const float *beta, int N, int C, float eps);
/* dx: [N, C], dgamma, dbeta: [C]; accumulated; each may be NULL. Needs x, mean, rstd. */
void sq_nn_layernorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                              const float *x, const float *mean, const float *rstd,
                              const float *gamma, int N, int C);

/* "<prefix>.g" [C] (ones) and "<prefix>.b" [C] (zeros). */
typedef struct {
    int g, b;  /* parameter indices */
    int C;     /* width */
    float eps; /* added to the variance */
} sq_nn_layernorm;

int sq_nn_layernorm_init(sq_nn_layernorm *l, sq_params *ps, const char *prefix, int C, float eps);
void sq_nn_layernorm_reset(const sq_nn_layernorm *l, sq_params *ps);

/* ======================================== Activations ======================================== */

typedef enum {
    SQ_ACT_NONE = 0, /* identity */
    SQ_ACT_RELU,     /* max(0, x) */
    SQ_ACT_GELU, /* GPT-2's tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    SQ_ACT_SIGMOID, /* 1 / (1 + e^-x) */
    SQ_ACT_TANH
} sq_nn_act;

/* x, y: [n]. Forward may run in place (y == x). Backward accumulates into dx and reads the
 * forward input x (ReLU, GELU) or output y (sigmoid, tanh); ReLU also works from y. */
void sq_nn_relu_forward(float *y, const float *x, size_t n);
void sq_nn_relu_backward(float *dx, const float *dy, const float *x, size_t n);
void sq_nn_gelu_forward(float *y, const float *x, size_t n);
void sq_nn_gelu_backward(float *dx, const float *dy, const float *x, size_t n);
void sq_nn_sigmoid_forward(float *y, const float *x, size_t n);
void sq_nn_sigmoid_backward(float *dx, const float *dy, const float *y, size_t n);
void sq_nn_tanh_forward(float *y, const float *x, size_t n);
void sq_nn_tanh_backward(float *dx, const float *dy, const float *y, size_t n);
/* Dispatch on `act` once per call (no per-element function pointers). Backward needs x for
 * RELU/GELU and y for SIGMOID/TANH (the other may be NULL). */
void sq_nn_act_forward(sq_nn_act act, float *y, const float *x, size_t n);
void sq_nn_act_backward(sq_nn_act act, float *dx, const float *dy, const float *x, const float *y,
                        size_t n);

/* ========================================== Dropout ========================================== */

/* x, y: [n]; mask: [n] bytes, 1 = kept.  y = x * mask / (1 - p)  (inverted dropout: the
 * expectation of y is x). y may alias x. p in [0, 1). Off (rng == NULL or p == 0): y = x, mask
 * untouched and rng not drawn; its backward is then called with mask NULL. On: exactly one
 * sq_rng_u64 is drawn per call whatever n is; element i's decision comes from stream
 * i / SQ_NN_DROPOUT_BLOCK of that draw (sq_rng_derive), so the same rng state gives the same
 * mask with any thread count. */
enum { SQ_NN_DROPOUT_BLOCK = 4096 };
void sq_nn_dropout_forward(float *y, uint8_t *mask, const float *x, size_t n, float p, sq_rng *rng);
/* dx += dy * mask / (1 - p); mask NULL or p == 0 (dropout was off): dx += dy. */
void sq_nn_dropout_backward(float *dx, const float *dy, const uint8_t *mask, size_t n, float p);

/* ========================================= Embedding ========================================= */

/* No padding id. */
#define SQ_NN_NO_PAD UINT32_MAX

/* ids: [N]; table: [V, C] -> y: [N, C].  y[n] = scale * table[ids[n]], and 0 when
 * ids[n] == pad_id. SQ_ERR_ARG when an id is >= V (and not pad_id). */
sq_status sq_nn_embedding_forward(float *y, const uint32_t *ids, const float *table, int N, int V,
                                  int C, uint32_t pad_id, float scale, sq_error *err);
/* table->grad[ids[n]] += scale * dy[n] for every n with ids[n] != pad_id (padding rows get no
 * gradient), and sq_param_touch(table, ids[n]) for each such row (table->sparse_rows must be
 * set). Deterministic: each row's sum is over n in order, whatever the thread count. */
void sq_nn_embedding_backward(sq_param *table, const float *dy, const uint32_t *ids, int N,
                              uint32_t pad_id, float scale);

/* ================================== Positional encodings =================================== */

/* x, y: [B, T, C]; P: [Tmax, C], T <= Tmax.  y[b,t] = x[b,t] + P[t]. y may alias x.
 * Learned: P is a parameter ("pos" [Tmax, C]). Sinusoidal: P is a fixed table from
 * sq_nn_pos_sinusoid_table, no parameters. */
void sq_nn_pos_forward(float *y, const float *x, const float *P, int B, int T, int C);
/* dx += dy (dx may be NULL); dP[t] += sum_b dy[b,t] (dP NULL for a fixed table). */
void sq_nn_pos_backward(float *dx, float *dP, const float *dy, int B, int T, int C);
/* P: [T, C].  P[t, 2i] = sin(t / 10000^(2i/C)), P[t, 2i+1] = cos(t / 10000^(2i/C)). */
void sq_nn_pos_sinusoid_table(float *P, int T, int C);

/* ============================ Causal multi-head self-attention ============================== */

/* Q = xq Wq^T + bq, K = xkv Wk^T + bk, V = xkv Wv^T + bv (xq == xkv: ordinary self-attention,
 * one fused [N, 3C] GEMM; the SASRec block passes LN(x) as xq and x as xkv). Per (batch, head):
 * S = Q K^T / sqrt(D), A = softmax over allowed keys, Z = dropout(A) V; y = Z Wo^T + bo.
 *
 * Mask: query t may see key j when (j <= t or !causal) and (key j not padded or j == t).
 * Masked keys get weight exactly 0. The diagonal is always allowed, so no row is ever fully
 * masked: a query with no other allowed key (a left-padded query, or every query of an
 * all-padding sequence) attends to itself only, weight 1 on the diagonal; never NaN, and the
 * same as the PyTorch peer. The block zeroes padded rows afterwards.
 *
 * Tensors: "<prefix>.wqkv" [3C, C] (rows Wq | Wk | Wv), "<prefix>.bqkv" [3C],
 *          "<prefix>.wo" [C, C], "<prefix>.bo" [C]. */
typedef struct {
    int C, H;               /* width and heads, C % H == 0 */
    int causal;             /* 1: query t sees keys <= t */
    float p_drop;           /* dropout on the attention weights (training only) */
    int wqkv, bqkv, wo, bo; /* parameter indices */
} sq_nn_attn;

/* Kept by forward for backward (and for explanations: the weights). */
typedef struct {
    int B, T;           /* shapes of this forward */
    const float *xq;    /* [N, C] query input (caller's; must stay valid) */
    const float *xkv;   /* [N, C] key/value input (caller's; may equal xq) */
    const uint8_t *pad; /* [N] or NULL */
    float *qkv;         /* [N, 3C] Q | K | V, bias included */
    float *att;         /* [B, H, T, T] softmax weights before dropout; 0 at masked keys */
    float *attd;        /* [B, H, T, T] after dropout (== att when dropout is off) */
    float *z;           /* [N, C] heads concatenated, input of the output projection */
    int *lead;          /* [B] leading padded positions (causal only; else 0): their queries
                           see only themselves, so the GEMMs skip them */
} sq_nn_attn_acts;

int sq_nn_attn_init(sq_nn_attn *l, sq_params *ps, const char *prefix, int C, int H, int causal,
                    float p_drop);
void sq_nn_attn_reset(const sq_nn_attn *l, sq_params *ps, sq_rng *rng); /* xavier, biases 0 */
/* xq, xkv: [B, T, C] -> y: [B, T, C] (y must not alias the inputs). rng: see convention 5. */
sq_status sq_nn_attn_forward(const sq_nn_attn *l, const sq_params *ps, sq_arena *a,
                             sq_nn_attn_acts *acts, float *y, const float *xq, const float *xkv,
                             const uint8_t *pad, int B, int T, sq_rng *rng, sq_error *err);
/* dxq, dxkv: [B, T, C] accumulated (may be the same buffer, or NULL); parameter grads too. */
sq_status sq_nn_attn_backward(const sq_nn_attn *l, sq_params *ps, sq_arena *a,
                              const sq_nn_attn_acts *acts, float *dxq, float *dxkv, const float *dy,
                              sq_error *err);
/* The [T, T] weights of (batch b, head h) from the last forward: row t = query t over keys. */
const float *sq_nn_attn_weights(const sq_nn_attn *l, const sq_nn_attn_acts *acts, int b, int h);

/* ================================ Position-wise feed-forward ================================ */

/* y = dropout(fc2(act(dropout(fc1(x)))))  — dropout after each linear (the original SASRec
 * point-wise FFN; dropout before ReLU equals dropout after it). x: [N, C] -> y: [N, C];
 * fc1: C -> F, fc2: F -> C. Tensors "<prefix>.fc1.{w,b}", "<prefix>.fc2.{w,b}". */
typedef struct {
    sq_nn_linear fc1, fc2; /* C -> F -> C */
    sq_nn_act act;         /* between them */
    float p_drop;          /* after each linear (training only) */
} sq_nn_ffn;

typedef struct {
    int N;            /* rows of this forward */
    const float *x;   /* [N, C] input (caller's) */
    float *h;         /* [N, F] fc1 output after dropout: the activation's input */
    float *g;         /* [N, F] activation output: fc2's input */
    uint8_t *m1, *m2; /* dropout masks [N, F], [N, C]; NULL when dropout was off */
} sq_nn_ffn_acts;

int sq_nn_ffn_init(sq_nn_ffn *l, sq_params *ps, const char *prefix, int C, int F, sq_nn_act act,
                   float p_drop);
void sq_nn_ffn_reset(const sq_nn_ffn *l, sq_params *ps, sq_rng *rng);
sq_status sq_nn_ffn_forward(const sq_nn_ffn *l, const sq_params *ps, sq_arena *a,
                            sq_nn_ffn_acts *acts, float *y, const float *x, int N, sq_rng *rng,
                            sq_error *err);
sq_status sq_nn_ffn_backward(const sq_nn_ffn *l, sq_params *ps, sq_arena *a,
                             const sq_nn_ffn_acts *acts, float *dx, const float *dy, sq_error *err);

/* ===================================== Transformer block ==================================== */

/* x: [B, T, C] -> y: [B, T, C]; y must not alias x. Padded rows of y are zeroed (all kinds).
 *   PRE_LN:  r = x + Attn(LN1(x), LN1(x));   y = r + FFN(LN2(r))
 *   POST_LN: r = LN1(x + Attn(x, x));        y = LN2(r + FFN(r))
 *   SASREC:  q = LN1(x); r = q + Attn(q, x); h = LN2(r); y = h + FFN(h)   (the original SASRec
 *            code and the PyTorch peer: residuals on the normalised inputs, K and V from x)
 * Dropout (p) on the attention weights and after each FFN linear; the attention output is
 * not dropped (as the peer). Tensors "<prefix>.ln1.{g,b}", "<prefix>.attn.*",
 * "<prefix>.ln2.{g,b}", "<prefix>.ffn.*". */
typedef enum { SQ_BLOCK_PRE_LN = 0, SQ_BLOCK_POST_LN, SQ_BLOCK_SASREC } sq_nn_block_kind;

typedef struct {
    sq_nn_block_kind kind;    /* residual layout, above */
    int C;                    /* width */
    sq_nn_layernorm ln1, ln2; /* see the layouts */
    sq_nn_attn attn;          /* causal */
    sq_nn_ffn ffn;            /* C -> F -> C */
} sq_nn_block;

typedef struct {
    int B, T;             /* shapes of this forward */
    const float *x;       /* [N, C] input (caller's) */
    const uint8_t *pad;   /* [N] or NULL */
    float *ln1, *ln2;     /* [N, C] layer norm outputs */
    float *mean1, *rstd1; /* [N] */
    float *mean2, *rstd2; /* [N] */
    float *r;             /* [N, C] first residual sum (before LN1 in POST_LN) */
    float *r2;            /* [N, C] POST_LN: second residual sum (LN2's input); else NULL */
    float *att;           /* [N, C] attention output */
    sq_nn_attn_acts attn; /* weights: sq_nn_attn_weights(&blk.attn, &acts.attn, b, h) */
    sq_nn_ffn_acts ffn;
} sq_nn_block_acts;

int sq_nn_block_init(sq_nn_block *l, sq_params *ps, const char *prefix, sq_nn_block_kind kind,
                     int C, int H, int F, sq_nn_act act, float p_drop, float eps);
void sq_nn_block_reset(const sq_nn_block *l, sq_params *ps, sq_rng *rng);
sq_status sq_nn_block_forward(const sq_nn_block *l, const sq_params *ps, sq_arena *a,
                              sq_nn_block_acts *acts, float *y, const float *x, const uint8_t *pad,
                              int B, int T, sq_rng *rng, sq_error *err);
sq_status sq_nn_block_backward(const sq_nn_block *l, sq_params *ps, sq_arena *a,
                               const sq_nn_block_acts *acts, float *dx, const float *dy,
                               sq_error *err);

/* ======================================= GRU and LSTM ======================================= */

/* Both run over x: [B, T, C] with hidden size G and write every hidden state to y: [B, T, G]
 * (y is read by backward: keep it). Input projections for all steps are one GEMM; each step
 * then does one fused GEMM h_{t-1} Wh^T for all gates. Initial state h0 (and c0): [B, G] or
 * NULL (zeros). At a padded step (pad[b*T+t]) the state is carried unchanged: with left
 * padding and zero h0 the state stays 0 until the first real step. Backward runs through time;
 * dh0 / dc0 ([B, G], accumulated) may be NULL.
 *
 * GRU (PyTorch's gate order r, z, n):
 *   r = sig(Wir x + bir + Whr h + bhr), z = sig(Wiz x + biz + Whz h + bhz),
 *   n = tanh(Win x + bin + r * (Whn h + bhn)), h' = (1 - z) * n + z * h
 * LSTM (gate order i, f, g, o): c' = f * c + i * g, h' = o * tanh(c').
 * Tensors "<prefix>.wx" [kG, C], "<prefix>.wh" [kG, G], "<prefix>.bx" [kG], "<prefix>.bh" [kG]
 * with k = 3 (GRU) or 4 (LSTM): PyTorch's weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0. */
typedef struct {
    int C, G;           /* input and hidden width */
    int gates;          /* 3 (GRU) or 4 (LSTM) */
    int wx, wh, bx, bh; /* parameter indices */
} sq_nn_rnn;

typedef struct {
    int B, T;           /* shapes of this forward */
    const float *x;     /* [N, C] (caller's) */
    const float *h0;    /* [B, G] or NULL (caller's) */
    const float *c0;    /* LSTM: [B, G] or NULL (caller's) */
    const uint8_t *pad; /* [N] or NULL */
    const float *y;     /* [N, G] hidden states (caller's output buffer) */
    float *gates;       /* [N, kG] gate values after their nonlinearity */
    float *hg;          /* GRU: [N, 3G] Wh h_{t-1} + bh (n part needed by backward) */
    float *hprev;       /* [N, G] h_{t-1} at each step (h0 or 0 at t = 0) */
    float *c;           /* LSTM: [N, G] cell states */
} sq_nn_rnn_acts;

int sq_nn_gru_init(sq_nn_rnn *l, sq_params *ps, const char *prefix, int C, int G);
int sq_nn_lstm_init(sq_nn_rnn *l, sq_params *ps, const char *prefix, int C, int G);
/* uniform(-1/sqrt(G), 1/sqrt(G)) for every tensor, as PyTorch. */
void sq_nn_rnn_reset(const sq_nn_rnn *l, sq_params *ps, sq_rng *rng);

sq_status sq_nn_gru_forward(const sq_nn_rnn *l, const sq_params *ps, sq_arena *a,
                            sq_nn_rnn_acts *acts, float *y, const float *x, const float *h0,
                            const uint8_t *pad, int B, int T, sq_error *err);
sq_status sq_nn_gru_backward(const sq_nn_rnn *l, sq_params *ps, sq_arena *a,
                             const sq_nn_rnn_acts *acts, float *dx, float *dh0, const float *dy,
                             sq_error *err);
sq_status sq_nn_lstm_forward(const sq_nn_rnn *l, const sq_params *ps, sq_arena *a,
                             sq_nn_rnn_acts *acts, float *y, const float *x, const float *h0,
                             const float *c0, const uint8_t *pad, int B, int T, sq_error *err);
sq_status sq_nn_lstm_backward(const sq_nn_rnn *l, sq_params *ps, sq_arena *a,
                              const sq_nn_rnn_acts *acts, float *dx, float *dh0, float *dc0,
                              const float *dy, sq_error *err);

/* ========================================= MLP tower ======================================== */

/* widths[0] -> widths[1] -> ... -> widths[n]: n Linear layers, `act` after each but the last
 * (after the last too when act_last). x: [N, widths[0]] -> y: [N, widths[n]]. Used by the
 * multi-task heads. Tensors "<prefix>.fc<i>.{w,b}". */
enum { SQ_NN_MLP_MAX = 8 };

typedef struct {
    int n;                          /* layers, 1..SQ_NN_MLP_MAX */
    int widths[SQ_NN_MLP_MAX + 1];  /* widths[0] in, widths[n] out */
    sq_nn_linear fc[SQ_NN_MLP_MAX]; /* layer i: widths[i] -> widths[i+1] */
    sq_nn_act act;                  /* hidden activation */
    int act_last;                   /* 1: also after the last layer */
} sq_nn_mlp;

typedef struct {
    int N;                         /* rows of this forward */
    const float *x;                /* [N, widths[0]] (caller's) */
    const float *y;                /* [N, widths[n]] (caller's output) */
    float *z[SQ_NN_MLP_MAX];       /* [N, widths[i+1]] linear outputs (before act) */
    const float *o[SQ_NN_MLP_MAX]; /* [N, widths[i+1]] layer outputs (after act; == z if none) */
} sq_nn_mlp_acts;

int sq_nn_mlp_init(sq_nn_mlp *l, sq_params *ps, const char *prefix, int n, const int *widths,
                   sq_nn_act act, int act_last);
void sq_nn_mlp_reset(const sq_nn_mlp *l, sq_params *ps, sq_rng *rng);
sq_status sq_nn_mlp_forward(const sq_nn_mlp *l, const sq_params *ps, sq_arena *a,
                            sq_nn_mlp_acts *acts, float *y, const float *x, int N, sq_error *err);
sq_status sq_nn_mlp_backward(const sq_nn_mlp *l, sq_params *ps, sq_arena *a,
                             const sq_nn_mlp_acts *acts, float *dx, const float *dy, sq_error *err);

#ifdef __cplusplus
}
#endif
#endif
