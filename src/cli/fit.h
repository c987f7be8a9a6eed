/* fit.h — what `seqrec train` and `seqrec tune` share: build a model of a kind from a config
 * for a dataset (deriving maxlen from the data when the config leaves it out), train or fit it
 * on a split, and measure it on the validation part. */
#ifndef SEQREC_CLI_FIT_H
#define SEQREC_CLI_FIT_H

#include "seqrec/eval.h"
#include "seqrec/model.h"
#include "seqrec/train.h"

typedef struct {
    uint32_t epochs;      /* epochs run (1 for fitted models) */
    uint32_t best_epoch;  /* epoch kept (1 for fitted models) */
    double seconds;       /* training (validation between epochs included) */
    sq_eval_result valid; /* the kept model on the validation part */
    int interrupted;      /* 1: training was cut short by Ctrl-C (sq_cli_catch_interrupt) */
} sq_cli_fit_result;

/* Ctrl-C (SIGINT) and SIGTERM during training: the first one stops the loop after the current
 * batch, keeping the best epoch so far (the model is still validated and saved); a second one
 * ends the process at once. */
void sq_cli_catch_interrupt(void);
/* 1 once the first of those signals has arrived. */
int sq_cli_interrupted(void);

/* Creates *out (freed by the caller, also on failure when not NULL) from `kind` and cfg, trains
 * it on split s with validation, and evaluates it on the validation part at the default Ks.
 * log: JSON lines per epoch (may be NULL). */
sq_status sq_cli_fit(sq_model **out, const char *kind, sq_config *cfg, const sq_dataset *d,
                     const sq_split *s, uint64_t seed, const sq_reporter *rep, FILE *log,
                     sq_cli_fit_result *r, sq_error *err);

/* "pop|itemknn|sasrec|...": the registered model kinds, for --help. */
void sq_cli_model_list(char *buf, size_t cap);

#endif
