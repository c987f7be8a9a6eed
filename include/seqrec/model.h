/* model.h — every recommender behind one interface: create from a config and a dataset's shape,
 * fit (one shot) or train batch by batch, score sequences against all items, save, load.
 *
 *   sq_model_create(kind, cfg, dataset) ─▶ model ─┬─ fit(dataset, split)        (pop, itemknn)
 *                                                 └─ train_batch(batch) × steps  (neural models:
 *                                                    the train module runs the loop)
 *   model ─▶ sq_model_score(sequences) ─▶ scores over all items ─▶ eval / recommend / serve
 *   model ─▶ sq_model_save(path) ─▶ .sqm ─▶ sq_model_load(path, dataset)
 *
 * Scoring takes *sequences*, not user ids: the same call ranks for a dataset user, for a user
 * whose events arrived a moment ago (serve), or for a one-item "session" (similar items).
 *
 * Ownership: sq_model_create/sq_model_load return a model freed by sq_model_free. A model is
 * read-only while scoring: score may be called from several threads, each with its own arena. */
#ifndef SEQREC_MODEL_H
#define SEQREC_MODEL_H

#include "seqrec/core.h"
#include "seqrec/data.h"
#include "seqrec/features.h"
#include "seqrec/model_file.h"
#include "seqrec/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One input sequence, oldest event first. Optional arrays may be NULL. */
typedef struct {
    const uint32_t *items; /* n item ids (dataset ids) */
    const uint8_t *beh;    /* n behaviour ids, or NULL */
    const int64_t *ts;     /* n times, or NULL */
    const uint16_t *scene; /* n scenes, or NULL */
    uint32_t n;            /* events */
    uint32_t user;         /* dataset user id, or UINT32_MAX for a user the model never saw */
    const uint32_t *ctx;   /* n × n_ctx context values (row-major), or NULL */
    const float *values;   /* n event values (NaN: none), or NULL */
    const uint32_t *attrs; /* the user's n_user_attrs attribute values, or NULL */
    /* The request: where and in which context the next event will happen (the scene and
     * context a recommendation is asked for). NULL: as the last event's. */
    const uint16_t *req_scene;
    const uint32_t *req_ctx; /* n_ctx values */
} sq_seq;

/* A training batch for iterative models, built by the train module. Item ids are shifted by
 * one so that 0 is padding. Sequences are left-padded to T. */
typedef struct {
    uint32_t B, T;           /* sequences, positions */
    const uint32_t *users;   /* [B] dataset user ids */
    const uint32_t *inputs;  /* [B, T] item id + 1; 0 = padding */
    const uint32_t *targets; /* [B, T] next item id + 1; 0 = no target at this position */
    const uint8_t *in_beh;   /* [B, T] behaviours of the inputs, or NULL */
    const uint32_t *negs;    /* [B, T, n_neg] sampled negative item id + 1, or NULL */
    uint32_t n_neg;
    const float *item_logq; /* [n_items] log of each item's probability of being drawn as a
                               negative, or NULL (uniform: the same for every item) */
    const sq_dataset *data; /* the dataset the events come from */
    const uint64_t *events; /* [B, T] index of each input event in data's event arrays;
                               UINT64_MAX at padding. The target of a position with a target
                               is the event right after it (index + 1). */
    /* Items held out of training (a cold_items split), ascending dataset ids, or NULL: they are
     * never targets, and full-softmax losses leave them out (sq_nn_ce_opts.exclude) so that
     * training does not learn that they never occur. */
    const uint32_t *cold_items;
    uint32_t n_cold_items;
} sq_batch;

typedef struct sq_model sq_model;

typedef struct {
    const char *name;  /* "sasrec" */
    const char *about; /* one line for --help */
    int iterative;     /* 1: trained batch by batch (train_batch); 0: fit once */
    /* Reads the config (filling in every default so the saved config is complete) and builds
     * the model for m->info: declares and allocates parameters or its own state. */
    sq_status (*init)(sq_model *m, sq_rng *rng, sq_error *err);
    /* Non-iterative models: learn from the training part of the split. Iterative models may
     * have one too: sq_train calls it once before the first batch, so that what a model builds
     * from the training part of the split (LightGCN's user–item graph, the item encoders'
     * item-transition graph) comes from exactly the split it trains on. */
    sq_status (*fit)(sq_model *m, const sq_dataset *d, const sq_split *s, const sq_reporter *rep,
                     sq_error *err);
    /* Iterative models: forward + backward of one batch; gradients accumulate into m->params
     * (zeroed by the caller), *loss is the batch mean loss over *n_targets targets. */
    sq_status (*train_batch)(sq_model *m, const sq_batch *b, sq_arena *a, sq_rng *rng, double *loss,
                             long *n_targets, sq_error *err);
    /* Arena bytes train_batch needs for B sequences of T, or (T = 0) score for B sequences;
     * NULL: 64 MiB is enough. */
    size_t (*scratch)(const sq_model *m, uint32_t B, uint32_t T);
    /* Scores of every item for each of B sequences into out [B, n_items] (higher is better). */
    sq_status (*score)(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out, sq_arena *a,
                       sq_error *err);
    /* Embedding models (may be NULL): the item vectors [n_items, *dim] and the sequence vectors
     * [B, dim] whose dot products are the scores (up to per-item biases a model may add):
     * cosine scores, σ(uᵀy) probabilities, vector retrieval. */
    const float *(*item_vectors)(const sq_model *m, uint32_t *dim);
    sq_status (*seq_vectors)(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out,
                             sq_arena *a, sq_error *err);
    /* Optional, at creation (not at load), after init: what the model keeps from the dataset
     * beyond its shape (item tag lists), saved with save_state. */
    sq_status (*prepare)(sq_model *m, const sq_dataset *d, sq_error *err);
    /* Model-specific state beyond m->params, as blobs to save (pointers into the model; the
     * array itself is malloc'd and freed by the caller) and to restore. May be NULL. */
    sq_status (*save_state)(const sq_model *m, sq_blob **blobs, size_t *n, sq_error *err);
    sq_status (*load_state)(sq_model *m, const sq_sqm *f, sq_error *err);
    void (*destroy)(sq_model *m);
    /* Cold items (optional; see sq_model_featurize): the model's own item feature rows, whose
     * dim and IDF featurise a new item as its catalogue was, with in *o the parts (text, tags)
     * it reads; NULL when this instance has no item features (sasrec with item_features=off). */
    const sq_features *(*item_features)(const sq_model *m, sq_features_opts *o);
    /* Embedding models with item features: the vectors [rows->n_rows, dim] (dim and space of
     * item_vectors) of items given only by feature rows: what item_vectors would hold for a
     * catalogue item with that row and no learned id part. */
    sq_status (*feature_vectors)(const sq_model *m, const sq_features *rows, float *out,
                                 sq_error *err);
    /* Models with item features but no vectors: the scores [B, rows->n_rows] of such items,
     * as score gives them for a catalogue item with that row. */
    sq_status (*score_features)(const sq_model *m, const sq_seq *seqs, uint32_t B,
                                const sq_features *rows, float *out, sq_arena *a, sq_error *err);
    /* User attribute fields the model reads from sq_seq.attrs (0 or NULL: none). */
    uint32_t (*user_attrs)(const sq_model *m);
} sq_model_ops;

struct sq_model {
    const sq_model_ops *ops;
    sq_config *cfg;    /* the complete configuration (owned) */
    sq_data_info info; /* the shape and fingerprint of the dataset it belongs to */
    sq_params *params; /* trainable tensors, owned by impl; NULL for non-neural models */
    void *impl;        /* model-specific state, owned by ops->destroy */
};

/* The registered kinds, NULL-terminated; sq_model_find(name) or NULL. */
const sq_model_ops *const *sq_model_kinds(void);
const sq_model_ops *sq_model_find(const char *name);

/* Creates an untrained model of `kind` for dataset d with config cfg (copied; may be NULL).
 * Errors: SQ_ERR_ARG (unknown kind: the message lists the known ones; bad config values),
 * SQ_ERR_NOMEM. */
sq_status sq_model_create(sq_model **out, const char *kind, const sq_config *cfg,
                          const sq_dataset *d, uint64_t seed, sq_error *err);
void sq_model_free(sq_model *m);

/* Scores; see sq_model_ops.score. out is [B, n_items]. */
sq_status sq_model_score(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out, sq_arena *a,
                         sq_error *err);

/* Saves atomically: header (kind, config, dataset fingerprint), parameters, model state. */
sq_status sq_model_save(const sq_model *m, const char *path, sq_error *err);
/* Loads a model file for dataset d (may be NULL: no check). Errors: SQ_ERR_IO, SQ_ERR_FORMAT
 * (corrupt, truncated, unknown kind, missing tensor), SQ_ERR_MISMATCH (trained on another
 * dataset: the message names both fingerprints). */
sq_status sq_model_load(sq_model **out, const char *path, const sq_dataset *d, sq_error *err);

/* The sequence of user u in d, truncated to events [0, end): for evaluation and recommend. */
sq_seq sq_model_user_seq(const sq_dataset *d, uint32_t u, uint32_t end);

/* For sequence models: the last T items of each of B sequences as table rows (item id + 1;
 * 0 for padding and for an item outside m's catalogue), left-padded, as ids [B, T] from the
 * arena; NULL when the arena is full. */
uint32_t *sq_model_window_ids(const sq_model *m, const sq_seq *seqs, uint32_t B, uint32_t T,
                              sq_arena *a);

/* ===================== Cold items and users: what the model knows from content ===================
 *
 * An item the model never saw (PUT /v1/items in serve) can still be scored by a model with item
 * features, from its text and tags alone:
 *
 *   text, tags ──sq_model_featurize──▶ row (the model's dim, IDF, text/tags options)
 *     ──sq_model_score_features(seqs, rows)──▶ scores, exactly score's for a catalogue item
 *                                              with that row and no learned id part:
 *   hybrid         q = Σ_f x_f E_if[f], b = Σ_f x_f b_if[f] + the mean id bias of trained items
 *                  (ids=1), as hybrid scores a catalogue item without a training event; the
 *                  item id embedding is not used
 *   sasrec, gru4rec, lstm with item_features=on: the item table row F·Wf alone (no id
 *                  embedding, no item-graph term)
 *   content        the cosine of the sequence's profile to the row
 * sq_model_feature_vectors gives the item vectors themselves (embedding models), for a server
 * that caches them. */

/* 1 when m scores items given by features (sq_model_score_features works), else 0. */
int sq_model_has_item_features(const sq_model *m);
/* Featurises a new item (text of len bytes, may be NULL; n_tags tag names) with the model's
 * featuriser, dropping the parts it does not read: at most cap (col, val) pairs. Errors:
 * SQ_ERR_ARG (the model has no item features), those of sq_features_row. */
sq_status sq_model_featurize(const sq_model *m, const char *text, size_t len,
                             const char *const *tags, uint32_t n_tags, uint32_t *col, float *val,
                             uint32_t cap, uint32_t *n, sq_error *err);
/* Item vectors [rows->n_rows, dim] of featured items (models with feature_vectors). Errors:
 * SQ_ERR_ARG (not supported). */
sq_status sq_model_feature_vectors(const sq_model *m, const sq_features *rows, float *out,
                                   sq_error *err);
/* Scores [B, rows->n_rows] of items given by feature rows (columns < the model's dim). The
 * arena needs the model's scratch(B, 0) plus (B + rows->n_rows) × dim floats. Errors: SQ_ERR_ARG
 * (not supported), SQ_ERR_NOMEM, the model's scoring errors. */
sq_status sq_model_score_features(const sq_model *m, const sq_seq *seqs, uint32_t B,
                                  const sq_features *rows, float *out, sq_arena *a, sq_error *err);
/* User attribute fields the model reads (hybrid, multi-task models with user_attrs); 0: none,
 * a new user's attributes change nothing. */
uint32_t sq_model_user_attrs(const sq_model *m);

/* Why items were recommended: occlusion (models/explain.c). For each of the last events of
 * seq (at most 50, and at most the model's maxlen), the sequence is scored again without it;
 * its contribution to an item is the score the item loses. reasons [n × per_item]: for each of
 * the n items the per_item events of largest contribution, largest first (pos UINT32_MAX past
 * the last); *n_reasons = per_item or fewer when the sequence is shorter. use_vectors: score
 * with the sequence and item vectors (only where they reproduce the model's scores exactly).
 * Errors: SQ_ERR_NOMEM, the model's scoring errors. */
typedef struct {
    uint32_t pos;       /* index of the event in seq */
    float contribution; /* score(item) − score(item without this event) */
} sq_reason;
sq_status sq_model_explain(const sq_model *m, const sq_seq *seq, const uint32_t *items, uint32_t n,
                           uint32_t per_item, int use_vectors, sq_reason *reasons,
                           uint32_t *n_reasons, sq_error *err);

#ifdef __cplusplus
}
#endif
#endif
