/* cmd_eval.c — `seqrec eval model.sqm data.sqd`: full-ranking metrics with 95 % bootstrap
 * intervals; the protocol, the K list and whether history is excluded are always printed.
 * `--against B.sqm`: B on the same users too, and A − B with paired intervals. */
#include "cli/cli.h"
#include "cli/tasks_out.h"
#include "seqrec/eval.h"
#include "seqrec/model.h"
#include "seqrec/tasks.h"

#include <cjson/cJSON.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static int parse_k(const char *s, sq_eval_opts *o) {
    o->n_k = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 100000 || o->n_k == SQ_EVAL_MAX_K)
            return -1;
        o->k[o->n_k++] = (uint32_t)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return o->n_k ? 0 : -1;
}

/* {"hr@10": …, …, "auc": …} and {"hr@10": [lo, hi], …} of one result into j. */
static void add_metrics(cJSON *j, const sq_eval_result *r) {
    cJSON *m = cJSON_AddObjectToObject(j, "metrics");
    cJSON *ci = cJSON_AddObjectToObject(j, "ci95");
    for (int i = 0; i < r->n_k; i++)
        for (int t = 0; t < SQ_M_PER_K; t++) {
            char key[40];
            snprintf(key, sizeof key, "%s@%u", sq_metric_name((sq_metric)t), r->k[i]);
            cJSON_AddNumberToObject(m, key, r->m[i][t].mean);
            cJSON *pair = cJSON_AddArrayToObject(ci, key);
            cJSON_AddItemToArray(pair, cJSON_CreateNumber(r->m[i][t].lo));
            cJSON_AddItemToArray(pair, cJSON_CreateNumber(r->m[i][t].hi));
        }
    cJSON_AddNumberToObject(m, "auc", r->auc.mean);
    cJSON *pair = cJSON_AddArrayToObject(ci, "auc");
    cJSON_AddItemToArray(pair, cJSON_CreateNumber(r->auc.lo));
    cJSON_AddItemToArray(pair, cJSON_CreateNumber(r->auc.hi));
}

/* --against: model B's results and the differences A − B. */
typedef struct {
    const char *model;
    const sq_eval_result *r, *diff;
    const sq_task_eval *tasks, *tasks_diff; /* NULL unless both models have tasks */
} against_out;

static void print_json(const char *model, const sq_eval_result *r, const char *protocol,
                       const sq_eval_opts *o, const sq_task_eval *te, const sq_dataset *d,
                       const sq_eval_result *cold, const against_out *b) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", model); /* names the result on the dashboard */
    cJSON_AddStringToObject(j, "protocol", protocol);
    cJSON_AddStringToObject(j, "ranking", o->sampled ? "sampled" : "full");
    if (o->sampled)
        cJSON_AddNumberToObject(j, "sampled_negatives", o->sampled);
    cJSON_AddStringToObject(j, "history", o->keep_history ? "kept" : "excluded");
    cJSON_AddStringToObject(j, "part", o->part == SQ_EVAL_TEST ? "test" : "valid");
    cJSON *k = cJSON_AddArrayToObject(j, "k");
    for (int i = 0; i < r->n_k; i++)
        cJSON_AddItemToArray(k, cJSON_CreateNumber(r->k[i]));
    add_metrics(j, r);
    cJSON_AddNumberToObject(j, "users", (double)r->users);
    cJSON_AddNumberToObject(j, "targets", (double)r->targets);
    cJSON_AddNumberToObject(j, "candidates", (double)r->candidates);
    cJSON_AddNumberToObject(j, "seconds", r->seconds);
    if (te)
        cJSON_AddItemToObject(j, "tasks", sq_cli_tasks_json(te, d));
    if (cold) { /* cold_items: the same targets ranked among the held-out items only */
        cJSON *c = cJSON_AddObjectToObject(j, "cold_only");
        add_metrics(c, cold);
        cJSON_AddNumberToObject(c, "users", (double)cold->users);
        cJSON_AddNumberToObject(c, "candidates", (double)cold->candidates);
    }
    if (b) { /* "against": B's metrics; "diff": A − B with paired intervals */
        cJSON *x = cJSON_AddObjectToObject(j, "against");
        cJSON_AddStringToObject(x, "model", b->model);
        add_metrics(x, b->r);
        if (b->tasks)
            cJSON_AddItemToObject(x, "tasks", sq_cli_tasks_json(b->tasks, d));
        cJSON *df = cJSON_AddObjectToObject(j, "diff");
        add_metrics(df, b->diff);
        if (b->tasks_diff)
            cJSON_AddItemToObject(df, "tasks", sq_cli_tasks_json(b->tasks_diff, d));
    }
    char *s = cJSON_PrintUnformatted(j);
    puts(s);
    cJSON_free(s);
    cJSON_Delete(j);
}

/* --against: B must have been trained on A's split (same protocol; for the seeded ones, the
 * same split seed), else its test users may be A's training users. */
static sq_status same_split(const sq_model *a, const sq_model *b, sq_error *err) {
    const char *pa = sq_config_get(a->cfg, "protocol"), *pb = sq_config_get(b->cfg, "protocol");
    pa = pa ? pa : "loo";
    pb = pb ? pb : "loo";
    if (strcmp(pa, pb))
        return sq_errorf(err, SQ_ERR_ARG,
                         "--against: the models were trained with different protocols ('%s' and "
                         "'%s')",
                         pa, pb);
    const char *sa = sq_config_get(a->cfg, "split_seed"), *sb = sq_config_get(b->cfg, "split_seed");
    const int seeded = !strncmp(pa, "kfold", 5) || !strncmp(pa, "cold_", 5);
    if (seeded && (!sa || !sb || strcmp(sa, sb)))
        return sq_errorf(err, SQ_ERR_ARG,
                         "--against: protocol '%s' draws its split from a seed, and the models "
                         "were trained with different ones (%s and %s)",
                         pa, sa ? sa : "none", sb ? sb : "none");
    return SQ_OK;
}

static void print_table(const sq_eval_result *r, int diff) {
    printf("%-6s", "K");
    for (int t = 0; t < SQ_M_PER_K; t++)
        printf("  %-28s", sq_metric_name((sq_metric)t));
    printf("\n");
    for (int i = 0; i < r->n_k; i++) {
        printf("%-6u", r->k[i]);
        for (int t = 0; t < SQ_M_PER_K; t++) {
            char cell[80];
            sq_cli_stat_cell(cell, sizeof cell, &r->m[i][t], diff);
            printf("  %-28s", cell);
        }
        printf("\n");
    }
    char cell[80];
    sq_cli_stat_cell(cell, sizeof cell, &r->auc, diff);
    printf("AUC %s", cell);
}

static void print_text(const sq_eval_result *r, const char *protocol, const sq_eval_opts *o) {
    printf("protocol %s, %s ranking%s, history %s, %s targets, %llu users, %llu candidates\n",
           protocol, o->sampled ? "SAMPLED" : "full",
           o->sampled     ? " (target + sampled negatives)"
           : o->cold_only ? " among the held-out items only"
                          : " over all items",
           o->keep_history ? "kept" : "excluded", o->part == SQ_EVAL_TEST ? "test" : "validation",
           (unsigned long long)r->users, (unsigned long long)r->candidates);
    print_table(r, 0);
    printf("  (95 %% bootstrap intervals; %.2f s)\n", r->seconds);
}

int cmd_eval(int argc, char **argv) {
    const char *pos[2];
    int npos = 0, json = 0, keep = 0, quiet = 0;
    const char *protocol = NULL, *ks = "1,5,10,20", *part = "test", *against = NULL;
    uint64_t sampled = 0, boot = 1000, seed = 42, fold = 0, threads = 0, max_users = 0;
    double test_days = 0, valid_days = 0;
    const sq_opt opts[] = {
        {"protocol", OPT_STR, &protocol, "P",
         "loo, temporal, kfold, sessions (SR-GNN's: by session time), cold_items[:SHARE] (10% of "
         "items held out; also ranked among themselves) or cold_users[:SHARE[:FIRST]] (10% of "
         "users, from their first event) (default: the one the model was trained with)",
         0, 0},
        {"fold", OPT_U64, &fold, "F", "kfold: the held-out fold", 0, 0},
        {"test-days", OPT_DOUBLE, &test_days, "D",
         "sessions: test on the sessions of the last D days (default: as trained, else 7)", 0, 0},
        {"valid-days", OPT_DOUBLE, &valid_days, "D",
         "sessions: the D days before them are validation (default: as trained, else 7)", 0, 0},
        {"k", OPT_STR, &ks, "LIST", "cut-offs (default 1,5,10,20)", 0, 0},
        {"keep-history", OPT_FLAG, &keep, NULL,
         "also rank items the user already had (default: excluded)", 0, 0},
        {"sampled", OPT_U64, &sampled, "N",
         "rank among N sampled negatives instead of all items (labelled 'sampled')", 0, 0},
        {"part", OPT_STR, &part, "P", "test (default) or valid", 0, 0},
        {"bootstrap", OPT_U64, &boot, "R", "resamples for 95% intervals (default 1000)", 0, 0},
        {"max-users", OPT_U64, &max_users, "N", "evaluate an even spread of N users", 0, 0},
        {"seed", OPT_U64, &seed, "S",
         "seed of bootstrap and sampling (and of the split, unless the model's protocol: that "
         "split is drawn with the seed it was trained with)",
         0, 0},
        {"threads", OPT_U64, &threads, "N", "threads (default: all cores)", 0, 0},
        {"against", OPT_STR, &against, "B.sqm",
         "also evaluate model B on the same users and print A - B with paired 95% bootstrap "
         "intervals ('*': the interval excludes 0, a significant difference); B must have been "
         "trained on the same split",
         0, 0},
        {"json", OPT_FLAG, &json, NULL, "print one JSON object", 0, 0},
        {"q|quiet", OPT_FLAG, &quiet, NULL, "no progress output", 0, 0},
    };
    sq_cli_spec spec = {"seqrec eval model.sqm data.sqd [--protocol loo] [--k 1,5,10,20] [--json]",
                        "Evaluates a model: leave-one-out full ranking over all items by "
                        "default,\nwith the user's history excluded; HR, NDCG, MRR, precision, "
                        "recall at K and AUC\nwith 95% bootstrap confidence intervals.",
                        opts,
                        (int)(sizeof opts / sizeof *opts),
                        pos,
                        2,
                        2,
                        &npos};
    int rc = sq_cli_parse(&spec, argc, argv);
    if (rc)
        return rc == 1 ? 0 : 2;
    sq_eval_opts o = {0};
    if (parse_k(ks, &o)) {
        fprintf(stderr, "seqrec eval: --k: a comma list of up to %d positive integers\n",
                SQ_EVAL_MAX_K);
        return 2;
    }
    if (strcmp(part, "test") && strcmp(part, "valid")) {
        fprintf(stderr, "seqrec eval: --part: test or valid\n");
        return 2;
    }
    if (threads)
        omp_set_num_threads((int)threads);
    o.part = strcmp(part, "test") ? SQ_EVAL_VALID : SQ_EVAL_TEST;
    o.keep_history = keep;
    o.sampled = (uint32_t)sampled;
    o.bootstrap = (uint32_t)boot;
    o.seed = seed;
    o.max_users = (uint32_t)max_users;
    sq_cli_reporter cr;
    o.reporter = sq_cli_reporter_init(&cr, quiet || json);
    sq_error err = {0};
    sq_dataset *d = NULL;
    sq_model *m = NULL, *mb = NULL;
    sq_split split = {0};
    sq_eval_result r, rc_cold, rb, rd;
    sq_task_eval te, teb, ted;
    sq_eval_acc *ua = NULL, *ub = NULL, *ud = NULL;
    int ret = 1, has_tasks = 0, both_tasks = 0;
    if (sq_data_open(&d, pos[1], &err) || sq_model_load(&m, pos[0], d, &err) ||
        (against && (sq_model_load(&mb, against, d, &err) || same_split(m, mb, &err))))
        goto done;
    const char *trained = sq_config_get(m->cfg, "protocol");
    if (!protocol)
        protocol = trained ? trained : "loo";
    /* the split the model was trained on: the same protocol is drawn with the training seed
     * (which items or users were held out, which fold) */
    uint64_t split_seed = seed;
    const char *ss = sq_config_get(m->cfg, "split_seed");
    if (ss && trained && !strcmp(trained, protocol))
        split_seed = strtoull(ss, NULL, 10);
    if (!strncmp(protocol, "cold_", 5) && (!trained || strcmp(trained, protocol)))
        fprintf(stderr,
                "seqrec eval: warning: the model was trained with protocol '%s', not '%s': it "
                "has seen the held-out %s\n",
                trained ? trained : "loo", protocol,
                strncmp(protocol, "cold_items", 10) ? "users" : "items");
    if (!strcmp(protocol, "sessions")) {
        const char *td = sq_config_get(m->cfg, "test_days"),
                   *vd = sq_config_get(m->cfg, "valid_days");
        if (test_days <= 0)
            test_days = td ? atof(td) : 7;
        if (valid_days <= 0)
            valid_days = vd ? atof(vd) : 7;
        if (sq_split_sessions(d, test_days, valid_days, &split, &err))
            goto done;
        o.keep_history = 1; /* SR-GNN ranks every item, the session's own included */
    } else if (test_days > 0 || valid_days > 0) {
        sq_errorf(&err, SQ_ERR_ARG, "--test-days and --valid-days go with --protocol sessions");
        goto done;
    } else if (sq_split_make(d, protocol, (uint32_t)fold, split_seed, &split, &err))
        goto done;
    if (mb && (!(ua = sq_eval_acc_create(o.k, o.n_k)) || !(ub = sq_eval_acc_create(o.k, o.n_k)))) {
        sq_errorf(&err, SQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    o.users_out = ua;
    if (sq_evaluate(m, d, &split, &o, &r, &err))
        goto done;
    if (mb) { /* B on the same users, and the paired differences */
        sq_eval_opts ob = o;
        ob.users_out = ub;
        sq_eval_stat flat[SQ_EVAL_MAX_K * SQ_M_PER_K];
        if (sq_evaluate(mb, d, &split, &ob, &rb, &err))
            goto done;
        if (!(ud = sq_eval_acc_diff(ua, ub))) {
            sq_errorf(&err, SQ_ERR_NOMEM, "out of memory");
            goto done;
        }
        rd = r;
        if (sq_eval_acc_summary(ud, o.bootstrap, o.seed, flat, &rd.auc, &err))
            goto done;
        for (int i = 0; i < rd.n_k; i++)
            for (int t = 0; t < SQ_M_PER_K; t++)
                rd.m[i][t] = flat[i * SQ_M_PER_K + t];
        o.users_out = NULL;
    }
    const int cold = split.item_cold && o.part == SQ_EVAL_TEST && !o.sampled;
    if (cold) {
        sq_eval_opts oc = o;
        oc.cold_only = 1;
        if (sq_evaluate(m, d, &split, &oc, &rc_cold, &err))
            goto done;
    }
    has_tasks = sq_model_tasks(m, NULL) != 0;
    both_tasks = has_tasks && mb && sq_model_tasks(mb, NULL) != 0;
    if (both_tasks ? sq_evaluate_tasks_diff(m, mb, d, &split, &o, &te, &teb, &ted, &err)
                   : has_tasks && sq_evaluate_tasks(m, d, &split, &o, &te, &err))
        goto done;
    sq_progress_bar_done(&cr.bar);
    if (json) {
        print_json(pos[0], &r, protocol, &o, has_tasks ? &te : NULL, d, cold ? &rc_cold : NULL,
                   mb ? &(against_out){against, &rb, &rd, both_tasks ? &teb : NULL,
                                       both_tasks ? &ted : NULL}
                      : NULL);
    } else {
        print_text(&r, protocol, &o);
        if (split.per_target)
            printf("sessions protocol: %llu predictions, one per position after the first of "
                   "each session (items unseen in training dropped); P@K in SR-GNN's sense is "
                   "hr@K, MRR@K is cut at K\n",
                   (unsigned long long)r.targets);
        if (cold) {
            sq_eval_opts oc = o;
            oc.cold_only = 1;
            print_text(&rc_cold, protocol, &oc);
        }
        if (has_tasks)
            sq_cli_tasks_print(&te, d, 0);
        if (mb) {
            printf("\nB = %s, the same users:\n", against);
            print_table(&rb, 0);
            printf("\n\nA - B = %s - %s (paired 95 %% bootstrap intervals; * where the "
                   "interval excludes 0)\n",
                   pos[0], against);
            print_table(&rd, 1);
            printf("\n");
            if (both_tasks) {
                printf("\nB's tasks:");
                sq_cli_tasks_print(&teb, d, 0);
                sq_cli_tasks_print(&ted, d, 1);
            }
        }
    }
    ret = 0;
done:
    sq_progress_bar_done(&cr.bar);
    if (ret)
        sq_cli_fail("eval", &err);
    sq_split_free(&split);
    sq_eval_acc_free(ua);
    sq_eval_acc_free(ub);
    sq_eval_acc_free(ud);
    sq_model_free(mb);
    sq_model_free(m);
    sq_data_close(d);
    return ret;
}
