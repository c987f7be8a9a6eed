/* item_enc.h — the item encoder of the sequence models (SASRec, GRU4Rec, LSTM): the item table
 * [n_items + 1, C] that a network reads its inputs from and scores against (tied), built each
 * step from its parts (item_enc.c).
 *
 *   item_encoder=id:        table = E                (the id embedding "item_emb": no change to
 *                                                     the networks, nothing declared or run here)
 *   item_encoder=graph:     table = G(E)
 *   item_encoder=id+graph:  table = E + G(E)
 *   G(E) = H_L,  H_0 = E,  H_{l+1} = Â H_l W_lᵀ   (L = graph_layers GCN layers, nn_graph.h)
 *
 * Â is the symmetric-normalised global item-transition graph with self-loops, built from the
 * training part of the split only (models/graphs.c) when the train loop calls the model's fit.
 * Its rows are table rows: row 0 (padding) has no edge, so table row 0 stays 0.
 *
 * A step: sq_item_enc_forward gives the table; the network uses it for its input lookups and its
 * softmax and accumulates the table's gradient dtable [V, C] (sq_item_enc_scatter for lookups);
 * sq_item_enc_backward carries dtable to E (every row 1..V−1 touched: the gradient is dense) and
 * to the W_l. Scoring reads sq_item_enc_table: a cached table (a loaded model builds it once;
 * sq_item_enc_drop discards it when the parameters change) or one computed into the arena.
 *
 * item_features=on adds the items' content features (features.h: hashed TF-IDF of text and
 * tags, unit rows F [n_items, D], D = item_feature_dim) to any of the three:
 *   table[i+1] += Σ_k F[i, k] Wf[k]      (row 0, padding, and featureless items get nothing)
 * so with item_encoder=id and item_features=on the encoder runs (table = E + F·Wf); with
 * item_features=off, id still declares and runs nothing (the table is E itself). F is built
 * from the dataset at creation (sq_item_enc_prepare) and saved with the model.
 *
 * Parameters: "item_enc.gcn<l>.w" [C, C], xavier; "item_enc.feat.w" [D, C], N(0, 0.01). The
 * graph is saved with the model as "item_enc.graph.{row_ptr,col,val}", F as "item_enc.feat.*"
 * (features_io.h).
 *
 * Ownership: the encoder owns its graph and cache; sq_item_enc_free releases them (the
 * parameters belong to the network's sq_params). */
#ifndef SEQREC_MODELS_ITEM_ENC_H
#define SEQREC_MODELS_ITEM_ENC_H

#include "models/features_io.h"
#include "models/graphs.h"
#include "seqrec/model.h"

enum {
    SQ_ITEM_ENC_MAX_LAYERS = 4,
    SQ_ITEM_ENC_FEAT_DIM = 1 << 12,     /* item_feature_dim's default */
    SQ_ITEM_ENC_FEAT_DIM_MAX = 1 << 14, /* Wf is dense: Adam updates all D·C of it each step */
    SQ_ITEM_ENC_BLOBS = 3 + SQ_FEATURES_BLOBS,
};

typedef enum {
    SQ_ITEM_ENC_ID = 0,       /* table = E */
    SQ_ITEM_ENC_GRAPH = 1,    /* table = G(E) */
    SQ_ITEM_ENC_ID_GRAPH = 2, /* table = E + G(E) */
} sq_item_enc_kind;

typedef struct {
    sq_item_enc_kind kind;                 /* what the table is */
    int V, C;                              /* table rows (n_items + 1) and width */
    int layers;                            /* GCN layers L */
    int emb;                               /* parameter index of E [V, C] */
    sq_nn_gcn gcn[SQ_ITEM_ENC_MAX_LAYERS]; /* "item_enc.gcn<l>" */
    sq_saved_graph g;                      /* Â over table rows; g.A.n_rows == 0 until fit/load */
    float *cache;                          /* [V, C] table of the current parameters, or NULL */
    int feat;                              /* item_features=on */
    int wf;                                /* parameter index of Wf [D, C] (feat) */
    uint32_t fdim;                         /* D */
    sq_features F;         /* n_items rows (feat); F.n_rows == 0 until prepare/load */
    sq_features_save keep; /* what the last save pointed into */
} sq_item_enc;

/* Whether the table is computed (anything but id with item_features=off). */
static inline int sq_item_enc_runs(const sq_item_enc *e) {
    return e->kind != SQ_ITEM_ENC_ID || e->feat;
}

typedef struct {
    const float *h[SQ_ITEM_ENC_MAX_LAYERS + 1]; /* h[0] = E (the parameter), h[l] = layer l's out */
    sq_nn_gcn_acts ga[SQ_ITEM_ENC_MAX_LAYERS];  /* per layer */
    float *table;                               /* [V, C] */
} sq_item_enc_acts;

/* What the config asks of the encoder. */
typedef struct {
    sq_item_enc_kind kind; /* item_encoder */
    int layers;            /* graph_layers */
    int feat;              /* item_features */
    uint32_t fdim;         /* item_feature_dim */
} sq_item_enc_opts;

/* Reads item_encoder (id|graph|id+graph, default id), graph_layers (1..4, default 1),
 * item_features (on|off, default off) and item_feature_dim (a power of two in 2^8 .. 2^14,
 * default 2^12) from cfg and writes them back. Errors: SQ_ERR_ARG naming the key. */
sq_status sq_item_enc_config(sq_config *cfg, sq_item_enc_opts *o, sq_error *err);
/* Sets e up and declares its weights in ps (none for id without features). Returns 0 or -1
 * (declare failed). */
int sq_item_enc_declare(sq_item_enc *e, sq_params *ps, const sq_item_enc_opts *o, int emb, int V,
                        int C);
void sq_item_enc_reset(const sq_item_enc *e, sq_params *ps, sq_rng *rng);
void sq_item_enc_free(sq_item_enc *e);

/* At creation: F from d's item text and tags (no-op without features). Errors: SQ_ERR_ARG
 * naming item_features when no item has text or tags, those of sq_item_features_build. */
sq_status sq_item_enc_prepare(sq_item_enc *e, const sq_dataset *d, sq_error *err);
/* Builds Â from the training part of s (no-op for id). Errors: those of sq_graph_*. */
sq_status sq_item_enc_fit(sq_item_enc *e, const sq_dataset *d, const sq_split *s, sq_error *err);
/* Arena bytes of a forward and backward (0 for id). */
size_t sq_item_enc_scratch(const sq_item_enc *e);

/* The table of the current parameters into acts->table (arena). Errors: SQ_ERR_ARG (no graph:
 * the model was never given a split), SQ_ERR_NOMEM. */
sq_status sq_item_enc_forward(const sq_item_enc *e, const sq_params *ps, sq_arena *a,
                              sq_item_enc_acts *acts, sq_error *err);
/* dtable [V, C]: the loss's gradient w.r.t. the table (read only). Accumulates into E and W_l. */
sq_status sq_item_enc_backward(const sq_item_enc *e, sq_params *ps, sq_arena *a,
                               const sq_item_enc_acts *acts, const float *dtable, sq_error *err);
/* The gradient of a lookup x[n] = scale · table[ids[n]]: dtable[ids[n]] += scale · dx[n] for
 * ids[n] != 0 (in order: deterministic). */
void sq_item_enc_scatter(float *dtable, const float *dx, const uint32_t *ids, int N, int C,
                         float scale);

/* For scoring: *table = the cache, or the table computed into the arena. */
sq_status sq_item_enc_table(const sq_item_enc *e, const sq_params *ps, sq_arena *a,
                            const float **table, sq_error *err);
/* The cache, built if absent (malloc; NULL when out of memory or without a graph). Not
 * thread-safe while building: a loaded model builds it in load. */
const float *sq_item_enc_cache(sq_item_enc *e, const sq_params *ps);
void sq_item_enc_drop(sq_item_enc *e); /* the parameters are about to change */

/* Cold items: out [rows->n_rows, C] = rows · Wf, the feature part of the table alone (no id
 * embedding, no graph term); columns ≥ D are ignored. Errors: SQ_ERR_ARG (item_features=off). */
sq_status sq_item_enc_feature_vectors(const sq_item_enc *e, const sq_params *ps,
                                      const sq_features *rows, float *out, sq_error *err);
/* F and its options (text and tags) when item_features=on, else NULL (model.h item_features). */
const sq_features *sq_item_enc_features(const sq_item_enc *e, sq_features_opts *o);

/* The graph's blobs (3, when there is a graph) and F's (features), at most SQ_ITEM_ENC_BLOBS,
 * for save_state; and back at load (no graph blob: no graph), building the cache. Errors:
 * SQ_ERR_FORMAT (F missing or of another shape), SQ_ERR_NOMEM. */
sq_status sq_item_enc_blobs(sq_item_enc *e, sq_blob *out, size_t *n, sq_error *err);
sq_status sq_item_enc_load(sq_item_enc *e, const sq_params *ps, const sq_sqm *f, sq_error *err);

#endif
