/* fixture.h — what the model tests share: build a model of a kind from "key=value" settings,
 * train it with the real loop on one thread, measure HR@10 / NDCG@10 on the test part, and
 * popularity's HR@10 as the baseline a model must beat. Failures fail the calling test. */
#ifndef SEQREC_TESTS_MODELS_FIXTURE_H
#define SEQREC_TESTS_MODELS_FIXTURE_H

#include "seqrec/eval.h"
#include "seqrec/model.h"
#include "seqrec/train.h"

#include <stdio.h>

/* An untrained model of `kind` for d: the settings of base, then of extra (NULL-terminated
 * lists of "key=value"; either may be NULL). */
sq_model *tm_create(const char *kind, const sq_dataset *d, const char *const *base,
                    const char *const *extra, uint64_t seed);

/* Trains m on s for at most `epochs` epochs (patience = epochs when no_stop) on one thread with
 * seed 7 and the rest of the loop's options from m's config; log may be NULL. */
void tm_train(sq_model *m, const sq_dataset *d, const sq_split *s, uint32_t epochs, int no_stop,
              FILE *log, sq_train_result *tr);

/* HR@10 and NDCG@10 of m on the test part of s (full ranking, history excluded); ndcg may be
 * NULL. Returns the HR. */
double tm_eval10(const sq_model *m, const sq_dataset *d, const sq_split *s, double *ndcg);

/* A popularity model fitted on s (freed by the caller), and its HR@10. */
sq_model *tm_popularity(const sq_dataset *d, const sq_split *s);
double tm_pop_hr10(const sq_dataset *d, const sq_split *s);

#endif
