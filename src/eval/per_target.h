/* per_target.h — evaluation of splits with per_target set (the sessions protocol): one
 * prediction per target, from the events right before it (per_target.c). */
#ifndef SEQREC_EVAL_PER_TARGET_H
#define SEQREC_EVAL_PER_TARGET_H

#include "seqrec/eval.h"
#include "seqrec/model.h"

/* sq_evaluate for a split with per_target (it calls this): every target position p of an
 * evaluated user that is not the first of its session is ranked from the session's events
 * before p (the dataset's sessions, or the whole user without them), after the events of
 * items outside s->seen are removed (when seen is set). All items are candidates, the
 * sequence's own included (o->keep_history is implied). Metrics are averaged over predictions,
 * not users; r->users counts the users with a prediction, r->targets the predictions.
 * Errors: SQ_ERR_ARG (sampled ranking asked for), SQ_ERR_EMPTY, SQ_ERR_NOMEM, the model's. */
sq_status sq_eval_per_target(const sq_model *m, const sq_dataset *d, const sq_split *s,
                             const sq_eval_opts *o, sq_eval_result *r, sq_error *err);

#endif
