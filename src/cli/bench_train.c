/* bench_train.c — `seqrec bench train`: seconds per training epoch, targets per second and peak
 * memory of one model on a generated log with Amazon Beauty's shape (353,962 events over 40,226
 * users and 54,542 items at the default size; --rows scales all three), so that the figure can
 * be compared across machines and with the PyTorch SASRec of docs/benchmarks.md without the real
 * data. The training is the real loop (sq_train through sq_cli_fit) with validation only after
 * the last epoch; each epoch is one run. Prints figures; asserts nothing. */
#define _GNU_SOURCE
#include "cli/cli.h"
#include "cli/fit.h"
#include "seqrec/data.h"

#include <cjson/cJSON.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

enum { BEAUTY_EVENTS = 353962, BEAUTY_USERS = 40226, BEAUTY_ITEMS = 54542 };

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Reads the per-epoch "seconds" and "events_per_s" of the metrics log into secs/tps (at most
 * cap); returns how many epochs, and the last validation's seconds into *valid_s. */
static int read_epochs(FILE *log, double *secs, double *tps, int cap, double *valid_s) {
    char line[4096];
    int n = 0;
    rewind(log);
    while (n < cap && fgets(line, sizeof line, log)) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *ep = cJSON_GetObjectItemCaseSensitive(o, "epoch"),
                    *s = cJSON_GetObjectItemCaseSensitive(o, "seconds"),
                    *t = cJSON_GetObjectItemCaseSensitive(o, "events_per_s"),
                    *v = cJSON_GetObjectItemCaseSensitive(o, "valid_seconds");
        if (cJSON_IsNumber(ep) && cJSON_IsNumber(s) && cJSON_IsNumber(t)) {
            secs[n] = s->valuedouble, tps[n] = t->valuedouble;
            if (cJSON_IsNumber(v) && v->valuedouble > 0)
                *valid_s = v->valuedouble;
            n++;
        }
        cJSON_Delete(o);
    }
    return n;
}

int sq_cli_bench_train(const char *model, uint64_t rows, int runs, int threads,
                       const char *const *sets, int nsets, int json, const char *dir) {
    if (!rows)
        rows = BEAUTY_EVENTS;
    const double scale = (double)rows / BEAUTY_EVENTS;
    sq_gen_opts g = {0};
    g.users = (uint32_t)(BEAUTY_USERS * scale) + 1;
    g.items = (uint32_t)(BEAUTY_ITEMS * scale) + 1;
    g.events = rows;
    g.seed = 7;
    g.format = SQ_FMT_CSV;
    if (threads)
        omp_set_num_threads(threads);
    char in[1024], sqd[1024];
    snprintf(in, sizeof in, "%s/seqrec-bench-train-%d.csv", dir, (int)getpid());
    snprintf(sqd, sizeof sqd, "%s/seqrec-bench-train-%d.sqd", dir, (int)getpid());
    sq_error err = {0};
    sq_ingest *ing = NULL;
    sq_dataset *d = NULL;
    sq_split split = {0};
    sq_model *m = NULL;
    sq_config *cfg = sq_config_create();
    FILE *log = tmpfile();
    int ret = 1;
    if (!cfg || !log) {
        sq_errorf(&err, SQ_ERR_NOMEM, "out of memory or no temporary file");
        goto done;
    }
    if (!sq_model_find(model)) {
        sq_errorf(&err, SQ_ERR_ARG, "unknown model '%s'", model);
        goto done;
    }
    if (!sq_model_find(model)->iterative) {
        sq_errorf(&err, SQ_ERR_ARG, "%s is fitted in one pass, not trained by epochs", model);
        goto done;
    }
    if (!json)
        fprintf(stderr, "generating %llu events (%u users, %u items: Beauty's shape) in %s\n",
                (unsigned long long)rows, g.users, g.items, dir);
    sq_ingest_opts io = {0};
    if (sq_generate(&g, in, &err) || sq_ingest_create(&ing, &io, &err) ||
        sq_ingest_file(ing, in, &err) || sq_ingest_write(ing, sqd, &err) ||
        sq_data_open(&d, sqd, &err) || sq_split_make(d, "loo", 0, 42, &split, &err))
        goto done;
    for (int i = 0; i < nsets; i++)
        if (sq_config_set_arg(cfg, sets[i], &err))
            goto done;
    char ep[16];
    snprintf(ep, sizeof ep, "%d", runs);
    if (sq_config_set(cfg, "epochs", ep, &err) || sq_config_set(cfg, "valid_every", ep, &err))
        goto done;
    sq_cli_reporter cr;
    sq_reporter rep = sq_cli_reporter_init(&cr, json);
    sq_cli_fit_result fr;
    sq_cli_catch_interrupt();
    if (sq_cli_fit(&m, model, cfg, d, &split, 42, &rep, log, &fr, &err))
        goto done;
    sq_progress_bar_done(&cr.bar);
    double secs[64], tps[64], valid_s = 0, sorted[64];
    const int n = read_epochs(log, secs, tps, 64, &valid_s);
    if (n < 1) {
        sq_errorf(&err, SQ_ERR_FORMAT, "the training logged no epoch");
        goto done;
    }
    memcpy(sorted, secs, sizeof(double) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_double);
    const double med = sorted[n / 2], lo = sorted[0], hi = sorted[n - 1];
    memcpy(sorted, tps, sizeof(double) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_double);
    const double tps_med = sorted[n / 2];
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const int nthreads = omp_get_max_threads();
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "bench", "train");
        cJSON_AddStringToObject(o, "model", model);
        cJSON_AddNumberToObject(o, "events", (double)rows);
        cJSON_AddNumberToObject(o, "users", g.users);
        cJSON_AddNumberToObject(o, "items", g.items);
        cJSON_AddNumberToObject(o, "threads", nthreads);
        cJSON_AddNumberToObject(o, "epochs", n);
        cJSON_AddNumberToObject(o, "seconds_per_epoch_median", med);
        cJSON_AddNumberToObject(o, "seconds_per_epoch_min", lo);
        cJSON_AddNumberToObject(o, "seconds_per_epoch_max", hi);
        cJSON *a = cJSON_AddArrayToObject(o, "seconds_per_epoch");
        for (int i = 0; i < n; i++)
            cJSON_AddItemToArray(a, cJSON_CreateNumber(secs[i]));
        cJSON_AddNumberToObject(o, "targets_per_second_median", tps_med);
        cJSON_AddNumberToObject(o, "validation_seconds", valid_s);
        cJSON_AddNumberToObject(o, "peak_rss_mib", (double)ru.ru_maxrss / 1024.0);
        char *s = cJSON_PrintUnformatted(o);
        puts(s);
        cJSON_free(s);
        cJSON_Delete(o);
    } else {
        printf("train %s on %llu generated events (%u users, %u items), %d thread%s, %d epochs: "
               "median %.2f s an epoch (min %.2f, max %.2f) = %.0f targets/s; validation %.2f s; "
               "peak RSS %.1f MiB\n",
               model, (unsigned long long)rows, g.users, g.items, nthreads, nthreads > 1 ? "s" : "",
               n, med, lo, hi, tps_med, valid_s, ru.ru_maxrss / 1024.0);
    }
    ret = 0;
done:
    if (ret)
        sq_cli_fail("bench", &err);
    if (log)
        fclose(log);
    sq_model_free(m);
    sq_split_free(&split);
    sq_data_close(d);
    sq_ingest_free(ing);
    sq_config_free(cfg);
    unlink(in);
    unlink(sqd);
    return ret;
}
