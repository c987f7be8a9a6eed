/* runlog.h — reading a metrics log (`seqrec train --metrics-log FILE`) back as runs, for the
 * dashboard (GET /v1/dashboard/runs) and `seqrec report`.
 *
 * A log is JSON lines appended by one or more trainings:
 *   {"epoch":1,"loss":…,"task_loss":{…},"valid":{"ndcg@10":…},"seconds":…,…}   one per epoch
 *   {"valid_tasks":{"buy":{"auc":…},…}}          after a validated epoch of a multi-task model
 *   {"model":"sasrec","epochs":…,"valid":{…},"output":"m.sqm",…}   the summary, last of a run
 * A run ends with its summary line; an epoch number not above the previous one also starts a
 * new run (a training stopped before its summary). Fitted models (pop, itemknn) log only the
 * summary: a run without epochs.
 *
 * Ownership: the cJSON array returned belongs to the caller (cJSON_Delete). */
#ifndef SEQREC_TRAIN_RUNLOG_H
#define SEQREC_TRAIN_RUNLOG_H

#include "seqrec/core.h"

#include <cjson/cJSON.h>

/* Parses the log at path into *out: an array of runs
 *   {"file","run":n (1-based),"name","model","output","epochs":[epoch lines, with "valid_tasks"
 *    merged into the epoch they follow],"summary":{…} or null}.
 * `name` is "<model> #n" (or "run #n" before the summary names the model).
 * Errors: SQ_ERR_IO (cannot open or read), SQ_ERR_PARSE ("file:line: not a JSON object"),
 * SQ_ERR_NOMEM. An empty file gives an empty array. */
sq_status sq_runlog_read(const char *path, cJSON **out, sq_error *err);

#endif
