/* tasks_out.h — printing the per-task evaluation (cli/tasks_out.c). */
#ifndef SEQREC_CLI_TASKS_OUT_H
#define SEQREC_CLI_TASKS_OUT_H

#include "seqrec/tasks.h"

#include <cjson/cJSON.h>

/* {"next_behaviour": {"accuracy": …, "ci95": {…}, "n": …, "scenes": {"home": {…}}}, …} */
cJSON *sq_cli_tasks_json(const sq_task_eval *r, const sq_dataset *d);
void sq_cli_tasks_print(const sq_task_eval *r, const sq_dataset *d);

#endif
