/* cmd_bench.c — `seqrec bench ingest|nn|train` (nn: bench_nn.c, train: bench_train.c).
 * `seqrec bench ingest`: ingest speed and peak memory on a generated 1 M-row
 * MovieLens-style `::` file, each run in a child process so that its peak RSS is its own.
 * Prints figures; asserts nothing. */
#define _GNU_SOURCE
#include "cli/cli.h"
#include "seqrec/data.h"

#include <cjson/cJSON.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Runs one ingest in a child on one thread; returns wall seconds (or < 0), the child's CPU
 * seconds (user + system: steadier than wall time on a shared machine) and its peak RSS. */
static double run_child(const char *in, const char *out, double *cpu, long *maxrss_kib) {
    double t0 = sq_now();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        omp_set_num_threads(1);
        sq_ingest_opts o = {0};
        sq_ingest *g = NULL;
        sq_error err = {0};
        int ok = sq_ingest_create(&g, &o, &err) == SQ_OK && sq_ingest_file(g, in, &err) == SQ_OK &&
                 sq_ingest_write(g, out, &err) == SQ_OK;
        if (!ok)
            fprintf(stderr, "seqrec bench: %s\n", err.msg);
        sq_ingest_free(g);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
        return -1;
    *maxrss_kib = ru.ru_maxrss;
    *cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
    return sq_now() - t0;
}

static int bench_ingest(uint64_t rows, int runs, int json, const char *dir) {
    char in[1024], out[1024];
    snprintf(in, sizeof in, "%s/bench-ratings.dat", dir);
    snprintf(out, sizeof out, "%s/bench.sqd", dir);
    sq_gen_opts g = {0};
    g.users = (uint32_t)(rows / 165 + 1); /* MovieLens-1M's shape: ~165 ratings per user */
    g.items = 3706;
    g.events = rows;
    g.seed = 7;
    g.format = SQ_FMT_MOVIELENS;
    sq_error err = {0};
    if (!json)
        fprintf(stderr, "generating %llu rows into %s\n", (unsigned long long)rows, in);
    if (sq_generate(&g, in, &err))
        return sq_cli_fail("bench", &err);
    double secs[16], cpu[16];
    long rss[16];
    for (int r = 0; r < runs; r++) {
        secs[r] = run_child(in, out, &cpu[r], &rss[r]);
        if (secs[r] < 0) {
            fprintf(stderr, "seqrec bench: ingest run failed\n");
            return 1;
        }
        if (!json)
            fprintf(stderr, "run %d: %.3f s wall, %.3f s CPU, %.2f M events/s, peak RSS %.1f MiB\n",
                    r + 1, secs[r], cpu[r], rows / secs[r] / 1e6, rss[r] / 1024.0);
    }
    struct stat si, so;
    stat(in, &si);
    stat(out, &so);
    double sorted[16];
    memcpy(sorted, secs, sizeof(double) * (size_t)runs);
    qsort(sorted, (size_t)runs, sizeof *sorted, cmp_double);
    long rss_max = 0;
    for (int r = 0; r < runs; r++)
        rss_max = rss[r] > rss_max ? rss[r] : rss_max;
    double med = sorted[runs / 2];
    memcpy(sorted, cpu, sizeof(double) * (size_t)runs);
    qsort(sorted, (size_t)runs, sizeof *sorted, cmp_double);
    double cpu_med = sorted[runs / 2];
    memcpy(sorted, secs, sizeof(double) * (size_t)runs);
    qsort(sorted, (size_t)runs, sizeof *sorted, cmp_double);
    double ratio = (double)rss_max * 1024.0 / (double)so.st_size;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "bench", "ingest");
        cJSON_AddNumberToObject(o, "rows", (double)rows);
        cJSON_AddNumberToObject(o, "runs", runs);
        cJSON_AddNumberToObject(o, "seconds_median", med);
        cJSON_AddNumberToObject(o, "seconds_min", sorted[0]);
        cJSON_AddNumberToObject(o, "seconds_max", sorted[runs - 1]);
        cJSON_AddNumberToObject(o, "events_per_second", rows / med);
        cJSON_AddNumberToObject(o, "cpu_seconds_median", cpu_med);
        cJSON_AddNumberToObject(o, "events_per_cpu_second", rows / cpu_med);
        cJSON_AddNumberToObject(o, "input_bytes", (double)si.st_size);
        cJSON_AddNumberToObject(o, "output_bytes", (double)so.st_size);
        cJSON_AddNumberToObject(o, "peak_rss_bytes", (double)rss_max * 1024.0);
        cJSON_AddNumberToObject(o, "peak_rss_over_output", ratio);
        char *s = cJSON_PrintUnformatted(o);
        puts(s);
        cJSON_free(s);
        cJSON_Delete(o);
    } else {
        printf("ingest %llu-row ratings.dat (%.1f MiB), one thread, %d runs: median %.3f s wall "
               "(min %.3f, max %.3f) = %.2f M events/s; median %.3f s CPU = %.2f M events/s\n",
               (unsigned long long)rows, si.st_size / 1048576.0, runs, med, sorted[0],
               sorted[runs - 1], rows / med / 1e6, cpu_med, rows / cpu_med / 1e6);
        printf("output %.1f MiB, peak RSS %.1f MiB = %.2fx the output file\n",
               so.st_size / 1048576.0, rss_max / 1024.0, ratio);
    }
    unlink(in);
    unlink(out);
    return 0;
}

int cmd_bench(int argc, char **argv) {
    const char *pos[1] = {NULL}, *model = "sasrec", *sets[64];
    int npos = 0, json = 0, nsets = 0;
    uint64_t rows = 0, runs = 0, threads = 0;
    const char *dir = NULL;
    const sq_opt opts[] = {
        {"rows", OPT_U64, &rows, "N",
         "ingest: rows in the generated input (default 1,000,000); train: events of the "
         "generated log (default 353,962, Beauty's size)",
         0, 0},
        {"runs", OPT_U64, &runs, "R",
         "repetitions, the median is reported (default 5; train: epochs, default 3)", 0, 0},
        {"model", OPT_STR, &model, "M", "train: the model (default sasrec)", 0, 0},
        {"set", OPT_MULTI, sets, "KEY=VALUE", "train: a config key of the model (repeatable)",
         &nsets, 64},
        {"dir", OPT_STR, &dir, "DIR", "where to put temporary files (default $TMPDIR or /tmp)", 0,
         0},
        {"threads", OPT_U64, &threads, "N", "nn: threads (default: all cores)", 0, 0},
        {"json", OPT_FLAG, &json, NULL, "print one JSON object", 0, 0},
    };
    sq_cli_spec spec = {"seqrec bench ingest|nn|train [--runs R] [--rows N] [--threads N] "
                        "[--model M] [--set K=V]... [--json]",
                        "Measures a part of seqrec and prints the figures (median of runs).\n"
                        "  ingest  a generated MovieLens-style '::' file, one core, each run in "
                        "its own process\n"
                        "  nn      same-run sgemm GFLOP/s and one SASRec training step (forward,\n"
                        "          backward, Adam) in the ML-1M and Beauty shapes, with a "
                        "per-stage breakdown\n"
                        "  train   seconds per epoch of a model's whole training loop on a "
                        "generated log\n"
                        "          of Beauty's shape (users, items, events), validation once "
                        "at the end",
                        opts,
                        (int)(sizeof opts / sizeof *opts),
                        pos,
                        1,
                        1,
                        &npos};
    int rc = sq_cli_parse(&spec, argc, argv);
    if (rc)
        return rc == 1 ? 0 : 2;
    const int is_train = !strcmp(pos[0], "train");
    if (!runs)
        runs = is_train ? 3 : 5;
    if (runs < 1 || runs > 16) {
        fprintf(stderr, "seqrec bench: --runs must be 1..16\n");
        return 2;
    }
    if (!dir)
        dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    if (is_train)
        return sq_cli_bench_train(model, rows, (int)runs, (int)threads, sets, nsets, json, dir);
    if (!strcmp(pos[0], "ingest"))
        return bench_ingest(rows ? rows : 1000000, (int)runs, json, dir);
    if (!strcmp(pos[0], "nn"))
        return sq_cli_bench_nn(json, (int)runs, (int)threads);
    fprintf(stderr, "seqrec bench: unknown benchmark '%s' (available: ingest, nn, train)\n",
            pos[0]);
    return 2;
}
