/* cmd_tune.c — `seqrec tune data.sqd --model M --grid key=a,b,c ...`: grid or random search over
 * config keys, each trial trained on the training part and measured on the validation part
 * (never the test part), reported as a table sorted by validation NDCG@10 and as JSON lines.
 *
 *   --grid k=v1,v2 (× per key) ─▶ the cartesian product ─▶ all of it, or --random N of it ─▶
 *   per trial: base config (--config, --set) + the trial's values ─▶ sq_cli_fit ─▶ one line */
#include "cli/cli.h"
#include "cli/fit.h"

#include <cjson/cJSON.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_GRID = 16, MAX_VALUES = 64, MAX_TRIALS = 100000 };

typedef struct {
    char *key;
    char *vals[MAX_VALUES];
    int n;
} grid_axis;

typedef struct {
    uint32_t combo;        /* index into the cartesian product */
    double ndcg, hr, mrr;  /* validation @10 */
    uint32_t epochs, best; /* epochs run, epoch kept */
    double seconds;
    int failed; /* the trial's config was rejected or training failed */
    char msg[160];
} trial;

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* "key=a,b,c" into an axis (the text is copied). 0 or -1 with a message on stderr. */
static int parse_axis(const char *arg, grid_axis *ax) {
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1]) {
        fprintf(stderr, "seqrec tune: --grid '%s': expected KEY=V1,V2,...\n", arg);
        return -1;
    }
    ax->key = dup_n(arg, (size_t)(eq - arg));
    ax->n = 0;
    const char *p = eq + 1;
    while (*p) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (ax->n == MAX_VALUES || len == 0) {
            fprintf(stderr, "seqrec tune: --grid '%s': %s\n", arg,
                    len ? "more than 64 values" : "an empty value");
            return -1;
        }
        ax->vals[ax->n++] = dup_n(p, len);
        p += len + (c != NULL);
    }
    return 0;
}

/* Value index of axis a in combo c (mixed radix, the first axis varying slowest). */
static int value_of(const grid_axis *ax, int n_ax, uint32_t c, int a) {
    for (int i = n_ax - 1; i > a; i--)
        c /= (uint32_t)ax[i].n;
    return (int)(c % (uint32_t)ax[a].n);
}

static int by_ndcg(const void *x, const void *y) {
    const trial *a = x, *b = y;
    if (a->failed != b->failed)
        return a->failed - b->failed;
    return (a->ndcg < b->ndcg) - (a->ndcg > b->ndcg);
}

static char *trial_json(const trial *t, const grid_axis *ax, int n_ax, const char *model) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", model);
    cJSON *p = cJSON_AddObjectToObject(o, "params");
    for (int a = 0; a < n_ax; a++)
        cJSON_AddStringToObject(p, ax[a].key, ax[a].vals[value_of(ax, n_ax, t->combo, a)]);
    if (t->failed) {
        cJSON_AddStringToObject(o, "error", t->msg);
    } else {
        cJSON *v = cJSON_AddObjectToObject(o, "valid");
        cJSON_AddNumberToObject(v, "ndcg@10", t->ndcg);
        cJSON_AddNumberToObject(v, "hr@10", t->hr);
        cJSON_AddNumberToObject(v, "mrr@10", t->mrr);
        cJSON_AddNumberToObject(o, "epochs", t->epochs);
        cJSON_AddNumberToObject(o, "best_epoch", t->best);
        cJSON_AddNumberToObject(o, "seconds", t->seconds);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void print_table(const trial *t, uint32_t n, const grid_axis *ax, int n_ax) {
    printf("%-5s", "rank");
    for (int a = 0; a < n_ax; a++)
        printf(" %-12s", ax[a].key);
    printf(" %9s %9s %9s %7s %9s\n", "NDCG@10", "HR@10", "MRR@10", "epochs", "seconds");
    for (uint32_t i = 0; i < n; i++) {
        printf("%-5u", i + 1);
        for (int a = 0; a < n_ax; a++)
            printf(" %-12s", ax[a].vals[value_of(ax, n_ax, t[i].combo, a)]);
        if (t[i].failed)
            printf(" failed: %s\n", t[i].msg);
        else
            printf(" %9.4f %9.4f %9.4f %3u/%-3u %9.1f\n", t[i].ndcg, t[i].hr, t[i].mrr, t[i].best,
                   t[i].epochs, t[i].seconds);
    }
}

static int k10_index(const sq_eval_result *r) {
    for (int j = 0; j < r->n_k; j++)
        if (r->k[j] == 10)
            return j;
    return 0;
}

int cmd_tune(int argc, char **argv) {
    const char *pos[1], *sets[64], *grids[MAX_GRID];
    int npos = 0, nsets = 0, ngrids = 0, quiet = 0, json = 0;
    const char *model = NULL, *config = NULL, *log_path = NULL, *out = NULL;
    uint64_t seed = 42, threads = 0, random_n = 0;
    char models[256], model_help[320];
    sq_cli_model_list(models, sizeof models);
    snprintf(model_help, sizeof model_help, "the model: %s", models);
    const sq_opt opts[] = {
        {"model", OPT_STR, &model, "M", model_help, 0, 0},
        {"grid", OPT_MULTI, grids, "KEY=V1,V2,...", "values of one config key (repeatable)",
         &ngrids, MAX_GRID},
        {"random", OPT_U64, &random_n, "N", "try N combinations drawn at random (default: all)", 0,
         0},
        {"config", OPT_STR, &config, "FILE", "base config file", 0, 0},
        {"set", OPT_MULTI, sets, "KEY=VALUE", "fix one config key for every trial (repeatable)",
         &nsets, 64},
        {"log", OPT_STR, &log_path, "FILE", "append one JSON line per trial", 0, 0},
        {"o|output", OPT_STR, &out, "FILE", "save the best trial's model (.sqm)", 0, 0},
        {"seed", OPT_U64, &seed, "S", "random seed of the split, the draws and training (42)", 0,
         0},
        {"threads", OPT_U64, &threads, "N", "threads (default: all cores)", 0, 0},
        {"json", OPT_FLAG, &json, NULL, "print one JSON line per trial instead of the table", 0, 0},
        {"q|quiet", OPT_FLAG, &quiet, NULL, "no progress output", 0, 0},
    };
    sq_cli_spec spec = {
        "seqrec tune data.sqd --model M --grid KEY=V1,V2,... [--grid ...] [--random N]",
        "Searches config values on the validation part of the leave-one-out split (the test\n"
        "part is never looked at): every combination of the --grid values, or N of them drawn\n"
        "at random. Prints the trials sorted by validation NDCG@10. Ctrl-C ends the current\n"
        "trial at its best epoch so far and the search with it.",
        opts,
        (int)(sizeof opts / sizeof *opts),
        pos,
        1,
        1,
        &npos};
    int rc = sq_cli_parse(&spec, argc, argv);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (!model || ngrids == 0) {
        fprintf(stderr, "seqrec tune: --model and at least one --grid are required (see --help)\n");
        return 2;
    }
    if (threads)
        omp_set_num_threads((int)threads);
    grid_axis ax[MAX_GRID];
    memset(ax, 0, sizeof ax);
    uint64_t combos = 1;
    int ret = 2;
    sq_error err = {0};
    sq_config *base = sq_config_create();
    sq_dataset *d = NULL;
    sq_split split = {0};
    sq_model *best = NULL;
    trial *t = NULL;
    uint32_t *order = NULL;
    FILE *log = NULL;
    for (int i = 0; i < ngrids; i++) {
        if (parse_axis(grids[i], &ax[i]))
            goto done;
        combos *= (uint64_t)ax[i].n;
        if (combos > MAX_TRIALS) {
            fprintf(stderr, "seqrec tune: more than %d combinations; use --random N\n", MAX_TRIALS);
            goto done;
        }
    }
    ret = 1;
    if (!base) {
        sq_errorf(&err, SQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (config && sq_config_load(base, config, &err))
        goto done;
    for (int i = 0; i < nsets; i++)
        if (sq_config_set_arg(base, sets[i], &err))
            goto done;
    if (sq_config_set(base, "protocol", "loo", &err) || sq_data_open(&d, pos[0], &err) ||
        sq_split_make(d, "loo", 0, seed, &split, &err))
        goto done;
    if (!sq_model_find(model)) {
        sq_model *probe = NULL; /* for the message listing the known kinds */
        sq_model_create(&probe, model, base, d, seed, &err);
        goto done;
    }
    uint32_t n = (uint32_t)combos;
    order = sq_mallocn(n, sizeof *order);
    t = sq_calloc(n, sizeof *t);
    if (!order || !t) {
        sq_errorf(&err, SQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (uint32_t i = 0; i < n; i++)
        order[i] = i;
    if (random_n && random_n < n) {
        sq_rng r = sq_rng_derive(seed, 77);
        sq_rng_shuffle_u32(&r, order, n);
        n = (uint32_t)random_n;
    }
    if (log_path && !(log = fopen(log_path, "a"))) {
        sq_errorf(&err, SQ_ERR_IO, "%s: cannot open for appending", log_path);
        goto done;
    }
    sq_cli_reporter cr;
    sq_reporter rep = sq_cli_reporter_init(&cr, quiet || json);
    double best_ndcg = -1;
    sq_cli_catch_interrupt(); /* Ctrl-C: this trial keeps its best epoch, the search stops */
    for (uint32_t i = 0; i < n; i++) {
        trial *ti = &t[i];
        ti->combo = order[i];
        sq_config *cfg = sq_config_clone(base);
        sq_error te = {0};
        sq_model *m = NULL;
        sq_cli_fit_result fr;
        sq_status s = cfg ? SQ_OK : sq_errorf(&te, SQ_ERR_NOMEM, "out of memory");
        for (int a = 0; a < ngrids && !s; a++)
            s = sq_config_set(cfg, ax[a].key, ax[a].vals[value_of(ax, ngrids, ti->combo, a)], &te);
        if (!quiet && !json) {
            fprintf(stderr, "trial %u/%u:", i + 1, n);
            for (int a = 0; a < ngrids; a++)
                fprintf(stderr, " %s=%s", ax[a].key,
                        ax[a].vals[value_of(ax, ngrids, ti->combo, a)]);
            fputc('\n', stderr);
        }
        if (!s)
            s = sq_cli_fit(&m, model, cfg, d, &split, seed, &rep, NULL, &fr, &te);
        sq_progress_bar_done(&cr.bar);
        sq_config_free(cfg);
        if (s == SQ_ERR_NOMEM || s == SQ_ERR_IO) { /* the machine, not the trial: stop */
            sq_model_free(m);
            err = te;
            goto done;
        }
        if (s) {
            ti->failed = 1;
            snprintf(ti->msg, sizeof ti->msg, "%.159s", te.msg);
            sq_model_free(m);
        } else {
            int k = k10_index(&fr.valid);
            ti->ndcg = fr.valid.m[k][SQ_M_NDCG].mean;
            ti->hr = fr.valid.m[k][SQ_M_HR].mean;
            ti->mrr = fr.valid.m[k][SQ_M_MRR].mean;
            ti->epochs = fr.epochs;
            ti->best = fr.best_epoch;
            ti->seconds = fr.seconds;
            if (out && ti->ndcg > best_ndcg) {
                sq_model_free(best);
                best = m;
                best_ndcg = ti->ndcg;
            } else {
                sq_model_free(m);
            }
        }
        char *line = trial_json(ti, ax, ngrids, model);
        if (line && log) {
            fprintf(log, "%s\n", line);
            fflush(log);
        }
        if (line && json)
            puts(line);
        else if (!quiet && line)
            fprintf(stderr, "  %s\n", line);
        cJSON_free(line);
        if (sq_cli_interrupted() && i + 1 < n) {
            fprintf(stderr, "interrupted: the search stops after %u of %u trials\n", i + 1, n);
            n = i + 1;
        }
    }
    qsort(t, n, sizeof *t, by_ndcg);
    if (!json)
        print_table(t, n, ax, ngrids);
    if (t[0].failed) {
        sq_errorf(&err, SQ_ERR_ARG, "every trial failed; the first: %s", t[0].msg);
        goto done;
    }
    if (out && best && sq_model_save(best, out, &err))
        goto done;
    if (out && !quiet && !json)
        printf("saved the best trial's model to %s\n", out);
    ret = 0;
done:
    if (ret == 1)
        sq_cli_fail("tune", &err);
    if (log)
        fclose(log);
    for (int i = 0; i < ngrids; i++) {
        free(ax[i].key);
        for (int k = 0; k < ax[i].n; k++)
            free(ax[i].vals[k]);
    }
    sq_model_free(best);
    sq_free(t);
    sq_free(order);
    sq_split_free(&split);
    sq_data_close(d);
    sq_config_free(base);
    return ret;
}
