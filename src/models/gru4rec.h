/* gru4rec.h — the recurrent network shared by the "gru4rec" and "lstm" models (gru4rec.c):
 * GRU4Rec (Hidasi et al. 2016) with the losses of Hidasi & Karatzas 2018, and the same network
 * with LSTM cells.
 *
 *   ids [B,T] ─▶ E[ids] ─▶ dropout ─▶ (RNN layer ─▶ dropout) × layers ─▶ h [B,T,G]
 *   training, loss=ce:      CE(h[i] · E[1..n]ᵀ, target[i]) at every position with a target
 *   training, loss=bprmax:  BPR-max of h[i] · E[target] against h[i] · E[negatives]
 *   scoring:                scores[b] = h[b, last position] · E[1..n]ᵀ
 *
 * The item table E [n_items + 1, G] is both the input embedding and the output layer (tied, as
 * SASRec here and GRU4Rec's "constrained embedding"), so its width is the hidden size G. Row 0
 * is padding: it reads as zero, never enters a softmax and gets no gradient. Item k of the
 * dataset is row k + 1 (sq_batch's "item id + 1").
 *
 * Parameters (names as in model files): "item_emb" [n_items + 1, G]; "rnn<l>.{wx,wh,bx,bh}" for
 * l = 0..layers−1 (PyTorch's weight_ih_l<l>, weight_hh_l<l>, bias_ih_l<l>, bias_hh_l<l>, gates
 * r, z, n for the GRU and i, f, g, o for the LSTM). Initial values: the table xavier-normal with
 * a zero padding row (as SASRec), the cells uniform(±1/√G) (as PyTorch).
 *
 * Invariants
 *  1. Sequences are left-padded and the layers carry the state across padded steps (their pad
 *     mask) from a zero initial state, so a padded prefix leaves every state at 0: a sequence
 *     scores the same however much padding precedes it. Scoring therefore runs only over the
 *     last T' positions, T' the longest sequence of the batch (at most maxlen).
 *  2. loss=ce: the table is dense (the softmax gives every row a gradient). loss=bprmax: it is
 *     row-sparse (only inputs, targets and sampled negatives get one) and updated lazily.
 *  3. Nothing is allocated per step or per score call: every buffer comes from the caller's
 *     arena, at most ops->scratch bytes (training B × T, or scoring B × maxlen).
 *
 * Config: maxlen (50), hidden (64), layers (1), dropout (0.2: on the embeddings and on each
 * layer's output), loss (ce|bprmax), bpreg (1.0: BPR-max's score regularisation, as the paper).
 * With bprmax the default of `negatives` becomes 32, so that the training loop samples them.
 * The loop's `lr` defaults to 0.003 (not 0.001): on ml-100k the best validation NDCG@10 is
 * higher and reached about twice as early (GRU 0.1238 at epoch 91 against 0.1170 at 195, LSTM
 * 0.1187 at 117 against 0.1143 at 195; `seqrec tune --grid lr=0.001,0.003,0.01`, 0.01: 0.1206).
 * item_encoder (id | graph | id+graph, models/item_enc.h; the graph ones with loss=ce),
 * graph_layers (1), item_features (off | on: content features added, loss=ce) and
 * item_feature_dim (4096): the table E above is then the encoder's output, for the inputs and
 * the softmax alike. */
#ifndef SEQREC_MODELS_GRU4REC_H
#define SEQREC_MODELS_GRU4REC_H

#include "models/item_enc.h"
#include "seqrec/model.h"

enum { SQ_RNN_MAX_LAYERS = 8, SQ_RNN_DEFAULT_NEGATIVES = 32 };
typedef enum { SQ_RNN_CE = 0, SQ_RNN_BPRMAX = 1 } sq_rnn_loss;

typedef struct {
    int lstm;                         /* 1: LSTM cells, 0: GRU cells */
    int n_items;                      /* catalogue; table rows are n_items + 1 */
    int maxlen;                       /* longest input scored (the last maxlen events) */
    int G;                            /* hidden size = embedding width */
    int layers;                       /* stacked recurrent layers */
    float dropout;                    /* on the embeddings and each layer's output */
    sq_rnn_loss loss;                 /* training loss */
    float bpreg;                      /* BPR-max regularisation weight */
    sq_params ps;                     /* every tensor (owned) */
    int item_emb;                     /* "item_emb" [n_items + 1, G] */
    sq_nn_rnn rnn[SQ_RNN_MAX_LAYERS]; /* "rnn<l>.{wx,wh,bx,bh}" */
    sq_item_enc enc;                  /* the item table's encoder (id: item_emb itself) */
} sq_rnn_net;

/* What one forward keeps for its backward (N = B*T rows). */
typedef struct {
    int B, T;                             /* shapes */
    const uint32_t *ids;                  /* [N] inputs (caller's) */
    uint8_t *pad;                         /* [N] 1 where ids == 0 */
    float *x0;                            /* [N, G] embeddings after dropout */
    uint8_t *m0;                          /* [N, G] their dropout mask, or NULL */
    float *y[SQ_RNN_MAX_LAYERS];          /* [N, G] layer outputs */
    float *d[SQ_RNN_MAX_LAYERS];          /* [N, G] after dropout (== y when off) */
    uint8_t *md[SQ_RNN_MAX_LAYERS];       /* [N, G] masks, or NULL */
    sq_nn_rnn_acts ra[SQ_RNN_MAX_LAYERS]; /* per layer */
} sq_rnn_acts;

#endif
