/* tasks_out.h — printing the per-task evaluation (cli/tasks_out.c). */
#ifndef SEQREC_CLI_TASKS_OUT_H
#define SEQREC_CLI_TASKS_OUT_H

#include "seqrec/tasks.h"

#include <cjson/cJSON.h>

/* {"next_behaviour": {"accuracy": …, "ci95": {…}, "n": …, "scenes": {"home": {…}}}, …} */
cJSON *sq_cli_tasks_json(const sq_task_eval *r, const sq_dataset *d);
/* The tables; diff: r holds differences A − B (sq_evaluate_tasks_diff), printed signed and
 * starred where the interval excludes 0. */
void sq_cli_tasks_print(const sq_task_eval *r, const sq_dataset *d, int diff);
/* One "mean [lo, hi]" cell (diff: signed, " *" when the interval excludes 0). */
void sq_cli_stat_cell(char *cell, size_t size, const sq_eval_stat *st, int diff);

#endif
