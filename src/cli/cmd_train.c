/* cmd_train.c — `seqrec train data.sqd --model M -o model.sqm`: build the model from its config,
 * fit it on the training part of the split, report validation metrics, save. */
#include "cli/cli.h"
#include "cli/fit.h"

#include <cjson/cJSON.h>
#include <omp.h>
#include <string.h>
#include <sys/resource.h>

int cmd_train(int argc, char **argv) {
    const char *pos[1], *sets[64];
    int npos = 0, nsets = 0, quiet = 0, json = 0;
    const char *out = NULL, *model = NULL, *config = NULL, *protocol = "loo", *log_path = NULL,
               *tasks = NULL;
    uint64_t seed = 42, threads = 0, fold = 0;
    double test_days = 0, valid_days = 0; /* 0: not given (sessions: 7) */
    char models[256], model_help[320];
    sq_cli_model_list(models, sizeof models);
    snprintf(model_help, sizeof model_help, "the model: %s", models);
    const sq_opt opts[] = {
        {"model", OPT_STR, &model, "M", model_help, 0, 0},
        {"o|output", OPT_STR, &out, "FILE", "the model file to write (.sqm)", 0, 0},
        {"config", OPT_STR, &config, "FILE", "config file (JSON object or key = value lines)", 0,
         0},
        {"set", OPT_MULTI, sets, "KEY=VALUE", "override one config key (repeatable)", &nsets, 64},
        {"tasks", OPT_STR, &tasks, "LIST",
         "sasrec: tasks to learn at once, of next_item, next_behaviour, value, click, buy "
         "(docs/multitask.md)",
         0, 0},
        {"protocol", OPT_STR, &protocol, "P",
         "split: loo (default), temporal, kfold, sessions (SR-GNN's: by session time), "
         "cold_items[:SHARE] (10% of items never trained on), cold_users[:SHARE[:FIRST]] (10% of "
         "users never trained on, seen by their first event)",
         0, 0},
        {"fold", OPT_U64, &fold, "F", "kfold: the held-out fold (default 0)", 0, 0},
        {"test-days", OPT_DOUBLE, &test_days, "D",
         "sessions: the sessions of the last D days are the test set (default 7)", 0, 0},
        {"valid-days", OPT_DOUBLE, &valid_days, "D",
         "sessions: those of the D days before them validation (default 7)", 0, 0},
        {"metrics-log", OPT_STR, &log_path, "FILE", "append JSON lines of metrics per epoch", 0, 0},
        {"seed", OPT_U64, &seed, "S", "random seed (default 42)", 0, 0},
        {"threads", OPT_U64, &threads, "N", "threads (default: all cores)", 0, 0},
        {"json", OPT_FLAG, &json, NULL, "print the result as one JSON object", 0, 0},
        {"q|quiet", OPT_FLAG, &quiet, NULL, "no progress output", 0, 0},
    };
    sq_cli_spec spec = {
        "seqrec train data.sqd --model M [--set key=value]... -o model.sqm",
        "Trains a model on the training part of the split (leave-one-out by "
        "default),\nreports validation metrics (full ranking) and saves it. Ctrl-C stops "
        "after the\ncurrent batch and saves the best epoch so far (a second "
        "Ctrl-C quits at once).",
        opts,
        (int)(sizeof opts / sizeof *opts),
        pos,
        1,
        1,
        &npos};
    int rc = sq_cli_parse(&spec, argc, argv);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (!model || !out) {
        fprintf(stderr, "seqrec train: --model and -o are required (see --help)\n");
        return 2;
    }
    if (threads)
        omp_set_num_threads((int)threads);
    sq_error err = {0};
    sq_dataset *d = NULL;
    sq_config *cfg = sq_config_create();
    sq_model *m = NULL;
    sq_split split = {0};
    FILE *log = NULL;
    sq_cli_reporter cr;
    sq_reporter rep = sq_cli_reporter_init(&cr, quiet || json);
    int ret = 1;
    if (!cfg) {
        sq_errorf(&err, SQ_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (config && sq_config_load(cfg, config, &err))
        goto fail;
    for (int i = 0; i < nsets; i++)
        if (sq_config_set_arg(cfg, sets[i], &err))
            goto fail;
    char seedbuf[32];
    snprintf(seedbuf, sizeof seedbuf, "%llu", (unsigned long long)seed);
    if (sq_config_set(cfg, "protocol", protocol, &err) ||
        sq_config_set(cfg, "split_seed", seedbuf, &err) ||
        (tasks && sq_config_set(cfg, "tasks", tasks, &err)))
        goto fail;
    if (sq_data_open(&d, pos[0], &err))
        goto fail;
    if (strcmp(protocol, "sessions") && (test_days > 0 || valid_days > 0)) {
        sq_errorf(&err, SQ_ERR_ARG, "--test-days and --valid-days go with --protocol sessions");
        goto fail;
    }
    if (!strcmp(protocol, "sessions")) { /* the days are saved: eval splits the same way */
        test_days = test_days > 0 ? test_days : 7;
        valid_days = valid_days > 0 ? valid_days : 7;
        char buf[2][32];
        snprintf(buf[0], 32, "%g", test_days);
        snprintf(buf[1], 32, "%g", valid_days);
        if (sq_config_set(cfg, "test_days", buf[0], &err) ||
            sq_config_set(cfg, "valid_days", buf[1], &err) ||
            sq_split_sessions(d, test_days, valid_days, &split, &err))
            goto fail;
    } else if (sq_split_make(d, protocol, (uint32_t)fold, seed, &split, &err))
        goto fail;
    if (log_path && !(log = fopen(log_path, "a"))) {
        sq_errorf(&err, SQ_ERR_IO, "%s: cannot open for appending", log_path);
        goto fail;
    }
    sq_cli_fit_result fr;
    sq_cli_catch_interrupt();
    if (sq_cli_fit(&m, model, cfg, d, &split, seed, &rep, log, &fr, &err))
        goto fail;
    if (m->ops->iterative && !quiet && !json) {
        sq_progress_bar_done(&cr.bar);
        fprintf(stderr, "kept epoch %u of %u%s\n", fr.best_epoch, fr.epochs,
                fr.interrupted ? " (interrupted)" : "");
    }
    const sq_eval_result vr = fr.valid;
    const double fit_s = fr.seconds;
    const uint32_t epochs = fr.epochs;
    sq_progress_bar_done(&cr.bar);
    if (sq_model_save(m, out, &err))
        goto fail;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", model);
    cJSON_AddNumberToObject(o, "epochs", epochs);
    cJSON_AddNumberToObject(o, "seconds", fit_s);
    cJSON_AddNumberToObject(o, "events_per_s",
                            sq_data_info_of(d)->n_events / (fit_s > 0 ? fit_s : 1e-9));
    cJSON *v = cJSON_AddObjectToObject(o, "valid");
    for (int j = 0; j < vr.n_k; j++) {
        char key[32];
        snprintf(key, sizeof key, "ndcg@%u", vr.k[j]);
        cJSON_AddNumberToObject(v, key, vr.m[j][SQ_M_NDCG].mean);
        snprintf(key, sizeof key, "hr@%u", vr.k[j]);
        cJSON_AddNumberToObject(v, key, vr.m[j][SQ_M_HR].mean);
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cJSON_AddNumberToObject(o, "peak_rss_mib", (double)ru.ru_maxrss / 1024.0);
    cJSON_AddNumberToObject(o, "best_epoch", fr.best_epoch);
    cJSON_AddBoolToObject(o, "interrupted", fr.interrupted);
    cJSON_AddStringToObject(o, "output", out);
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (log) /* the run's last line: iterative models logged their epochs before it */
        fprintf(log, "%s\n", line);
    if (json)
        puts(line);
    else if (!quiet) {
        int k10 = -1;
        for (int j = 0; j < vr.n_k; j++)
            if (vr.k[j] == 10)
                k10 = j;
        printf("trained %s in %.2f s", model, fit_s);
        if (k10 >= 0)
            printf("; validation NDCG@10 %.4f, HR@10 %.4f over %llu users (full ranking)",
                   vr.m[k10][SQ_M_NDCG].mean, vr.m[k10][SQ_M_HR].mean,
                   (unsigned long long)vr.users);
        printf("\nsaved %s\n", out);
    }
    cJSON_free(line);
    ret = 0;
fail:
    sq_progress_bar_done(&cr.bar);
    if (ret)
        sq_cli_fail("train", &err);
    if (log)
        fclose(log);
    sq_model_free(m);
    sq_split_free(&split);
    sq_data_close(d);
    sq_config_free(cfg);
    return ret;
}
