/* tasks_out.c — the per-task evaluation of multi-task models as JSON ("tasks" of `seqrec eval
 * --json`, keyed by task name, with a "scenes" breakdown) and as text tables. */
#include "cli/tasks_out.h"

#include <math.h>
#include <stdio.h>

static void add_num(cJSON *o, const char *k, double v) {
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

/* The metrics of task t for group g into o, with "ci95" and "n". */
static void group_json(cJSON *o, const sq_task_eval *r, uint32_t g, sq_task t) {
    cJSON *ci = cJSON_CreateObject();
    for (int k = 0; k < SQ_TM_N; k++) {
        if (sq_task_metric_task((sq_task_metric)k) != t)
            continue;
        const sq_eval_stat *st = &r->m[g][k];
        const char *name = sq_task_metric_name((sq_task_metric)k);
        add_num(o, name, st->mean);
        if (isfinite(st->mean)) {
            cJSON *pair = cJSON_AddArrayToObject(ci, name);
            cJSON_AddItemToArray(pair, cJSON_CreateNumber(st->lo));
            cJSON_AddItemToArray(pair, cJSON_CreateNumber(st->hi));
        }
    }
    cJSON_AddItemToObject(o, "ci95", ci);
    cJSON_AddNumberToObject(o, "n", (double)r->n[g]);
}

cJSON *sq_cli_tasks_json(const sq_task_eval *r, const sq_dataset *d) {
    cJSON *tasks = cJSON_CreateObject();
    for (int t = 0; t < SQ_TASK_N; t++) {
        if (!((r->tasks >> t) & 1u))
            continue;
        cJSON *o = cJSON_AddObjectToObject(tasks, sq_task_name((sq_task)t));
        group_json(o, r, 0, (sq_task)t);
        cJSON *sc = cJSON_AddObjectToObject(o, "scenes");
        for (uint32_t g = 1; g < r->groups; g++) {
            if (!r->n[g])
                continue;
            const char *name = sq_data_scene_name(d, g - 1);
            cJSON *x = cJSON_AddObjectToObject(sc, name && *name ? name : "(none)");
            group_json(x, r, g, (sq_task)t);
        }
    }
    return tasks;
}

/* "0.1234 [0.1100, 0.1300]", or for a difference signed and starred when the interval excludes
 * 0: "+0.0123 [+0.0040, +0.0210] *". */
void sq_cli_stat_cell(char *cell, size_t size, const sq_eval_stat *st, int diff) {
    if (!diff)
        snprintf(cell, size, "%.4f [%.4f, %.4f]", st->mean, st->lo, st->hi);
    else
        snprintf(cell, size, "%+.4f [%+.4f, %+.4f]%s", st->mean, st->lo, st->hi,
                 st->lo > 0 || st->hi < 0 ? " *" : "");
}

void sq_cli_tasks_print(const sq_task_eval *r, const sq_dataset *d, int diff) {
    if (diff)
        printf("\ntasks, A - B (paired 95 %% bootstrap intervals; * where the interval excludes "
               "0)\n");
    else
        printf("\ntasks (the first target of each user; request = its scene and context; 95 %% "
               "bootstrap intervals; %.2f s)\n",
               r->seconds);
    printf("%-16s %-18s %-12s %-28s\n", "task", "metric", "scene",
           diff ? "A - B [95 % CI]" : "value [95 % CI]");
    for (int k = 0; k < SQ_TM_N; k++) {
        sq_task t = sq_task_metric_task((sq_task_metric)k);
        if (!((r->tasks >> t) & 1u))
            continue;
        for (uint32_t g = 0; g < r->groups; g++) {
            if (!r->n[g] || !isfinite(r->m[g][k].mean))
                continue;
            const char *scene = g ? sq_data_scene_name(d, g - 1) : "all";
            char cell[80];
            sq_cli_stat_cell(cell, sizeof cell, &r->m[g][k], diff);
            printf("%-16s %-18s %-12s %-28s n=%llu\n", sq_task_name(t),
                   sq_task_metric_name((sq_task_metric)k), scene && *scene ? scene : "(none)", cell,
                   (unsigned long long)r->n[g]);
        }
    }
}
