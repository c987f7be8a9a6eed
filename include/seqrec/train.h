/* train.h — the training loop for iterative models: batches of left-padded windows of each
 * user's training events, an optimiser with warm-up and decay, early stopping on validation
 * NDCG@10 with patience, the best parameters kept, a JSON-lines metrics log.
 *
 *   per epoch:  shuffle users ─▶ batches [B, T] of (inputs, next-item targets) ─▶
 *               model.train_batch (forward + backward) ─▶ clip ─▶ optimiser step
 *   then:       validation (full ranking, NDCG@10) ─▶ keep best ─▶ patience ─▶ log line
 *
 * The loop knows nothing of a model's insides: it zeroes m->params' gradients, calls
 * train_batch and steps the optimiser over m->params. One seed fixes every draw. */
#ifndef SEQREC_TRAIN_H
#define SEQREC_TRAIN_H

#include "seqrec/eval.h"
#include "seqrec/model.h"

#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { SQ_TRAIN_MIN_STEPS = 100 }; /* optimiser steps between validations, at least (auto) */

typedef struct {
    uint32_t epochs;      /* at most this many epochs */
    uint32_t patience;    /* stop after this many validations without a better NDCG@10 */
    uint32_t batch;       /* sequences per step */
    uint32_t maxlen;      /* T: the last maxlen training events of each user */
    double lr;            /* peak learning rate */
    double warmup;        /* warm-up as a fraction of all steps */
    double clip;          /* global gradient-norm clip; 0: none */
    double weight_decay;  /* AdamW decay; 0: Adam */
    int lr_decay;         /* sq_lr_decay after the warm-up, over all `epochs` epochs */
    double min_lr;        /* where the decay ends, as a fraction of lr */
    uint32_t negatives;   /* sampled negatives per target in each batch (sq_batch.negs); 0: none */
    int neg_pop;          /* 0: uniform negatives; 1: in proportion to training popularity */
    uint32_t valid_users; /* validate on an even spread of this many users; 0: all */
    uint32_t valid_every; /* validate every this many epochs (and at the last); 0: enough epochs
                             for SQ_TRAIN_MIN_STEPS optimiser steps between validations */
    uint64_t seed;
    FILE *metrics_log;    /* one JSON line per epoch; NULL: none */
    sq_reporter reporter; /* progress ("epoch 3/50") and messages */
    /* When it points at a non-zero flag (set by a signal handler: Ctrl-C), the loop stops after
     * the current batch, validates the epoch cut short and keeps the best parameters seen, as
     * early stopping would. NULL: never. */
    const volatile sig_atomic_t *stop;
} sq_train_opts;

/* The options from a model's config keys (epochs, patience, batch, maxlen, lr, warmup, clip,
 * weight_decay, lr_schedule = constant|linear|cosine, min_lr, negatives, neg_sampling =
 * uniform|pop, valid_users, valid_every), with defaults written back into the config. A model
 * that needs negatives sets its own default for `negatives` in its init. */
sq_status sq_train_opts_from_config(sq_config *cfg, sq_train_opts *o, sq_error *err);

typedef struct {
    uint32_t epochs_run; /* epochs trained */
    uint32_t best_epoch; /* 1-based epoch of the kept parameters */
    double best_ndcg10;  /* its validation NDCG@10 (without next_item: the task score) */
    double seconds;      /* training wall time, validation included */
    double last_loss;    /* mean loss of the last epoch */
    int interrupted;     /* 1: stopped by *opts.stop */
} sq_train_result;

/* Trains m on the training part of s, validating on its validation part (first calling the
 * model's fit op, if it has one, with d and s: see sq_model_ops.fit). On return m holds
 * the best parameters seen. Errors: SQ_ERR_ARG (model not iterative, bad options),
 * SQ_ERR_NUMERIC (loss or gradients not finite), SQ_ERR_NOMEM, the model's own. */
sq_status sq_train(sq_model *m, const sq_dataset *d, const sq_split *s, const sq_train_opts *o,
                   sq_train_result *r, sq_error *err);

#ifdef __cplusplus
}
#endif
#endif
