/* cmd_serve.c — `seqrec serve`: parses options into sq_serve_opts, starts the server, prints
 * where it listens, and waits for SIGINT or SIGTERM to stop it cleanly. */
#define _DEFAULT_SOURCE /* realpath, readlink */
#include "cli/cli.h"
#include "seqrec/serve.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "NAME=PATH[:WEIGHT]" → a variant (pointing into arg, which it edits). */
static int parse_variant(char *arg, sq_serve_variant *v) {
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1])
        return -1;
    *eq = 0;
    v->name = arg;
    v->path = eq + 1;
    v->weight = 1.0;
    char *colon = strrchr(eq + 1, ':');
    if (colon) {
        char *end;
        double w = strtod(colon + 1, &end);
        if (*end || !(w > 0))
            return -1;
        *colon = 0;
        v->weight = w;
    }
    return 0;
}

/* The built dashboard when there is one: web/dist of the source tree the binary was built in
 * (the binary is build/seqrec), or share/seqrec/web of an install prefix (bin/seqrec). */
static const char *default_dashboard(char *buf, size_t cap) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return NULL;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash)
        return NULL;
    *slash = 0;
    static const char *const rel[] = {"/../web/dist", "/../share/seqrec/web"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        char index[4200];
        snprintf(buf, cap, "%s%s", exe, rel[i]);
        snprintf(index, sizeof index, "%s/index.html", buf);
        char real[4096];
        if (access(index, R_OK) == 0 && realpath(buf, real) && strlen(real) < cap) {
            memcpy(buf, real, strlen(real) + 1);
            return buf;
        }
    }
    return NULL;
}

int cmd_serve(int argc, char **argv) {
    const char *pos[2], *store = NULL, *bind = NULL, *keys = NULL, *negative = NULL,
                        *access_log = NULL, *static_dir = NULL, *variants[SQ_SERVE_MAX_VARIANTS],
                        *logs[16], *evals[16];
    int npos = 0, nvar = 0, nlogs = 0, nevals = 0, quiet = 0, no_sync = 0;
    const char *sync = "full", *scan = "bf16";
    uint64_t port = 8080, http_threads = 0, score_threads = 0, score_workers = 0, cache_mb = 256,
             user_events = 0, max_body = 0, max_batch = 0, max_depth = 0;
    double weight = 1.0, rate = 0.0, hit_window = 0.0, online = 0.0, online_lr = 0.0;
    uint64_t online_steps = 0;
    const sq_opt opts[] = {
        {"store", OPT_STR, &store, "FILE", "the SQLite event store (default events.db)", 0, 0},
        {"port", OPT_U64, &port, "N", "TCP port (default 8080; 0: any free port)", 0, 0},
        {"bind", OPT_STR, &bind, "ADDR", "address to listen on (default 127.0.0.1)", 0, 0},
        {"api-key-file", OPT_STR, &keys, "F",
         "keys for writes and admin calls, one a line: KEY [admin]", 0, 0},
        {"variant", OPT_MULTI, variants, "NAME=PATH[:W]",
         "serve another model side by side for an A/B test, with weight W (default 1)", &nvar,
         SQ_SERVE_MAX_VARIANTS - 1},
        {"weight", OPT_DOUBLE, &weight, "W", "the main model's A/B weight (default 1)", 0, 0},
        {"negative", OPT_STR, &negative, "LIST",
         "behaviours that are negative feedback, never recommended back (dislike,skip,hide)", 0, 0},
        {"cache-mb", OPT_U64, &cache_mb, "MB", "per-user state cache limit (default 256)", 0, 0},
        {"user-events", OPT_U64, &user_events, "N", "live events kept per cached user (200)", 0, 0},
        {"http-threads", OPT_U64, &http_threads, "N",
         "HTTP thread pool (default 64: a request waiting on scoring or a commit holds its thread)",
         0, 0},
        {"score-threads", OPT_U64, &score_threads, "N",
         "threads a batch of requests is scored on (default 1)", 0, 0},
        {"score-workers", OPT_U64, &score_workers, "N",
         "batches scored at once (default: the cores)", 0, 0},
        {"score-scan", OPT_STR, &scan, "MODE",
         "bf16 (default when built for AVX512_BF16): scan a bf16 copy of the item table, then "
         "score in fp32 the items that can make the top k (the same results as fp32, faster); "
         "fp32: score every item in fp32",
         0, 0},
        {"max-body", OPT_U64, &max_body, "BYTES", "request body limit (default 1 MiB)", 0, 0},
        {"max-batch", OPT_U64, &max_batch, "N", "events per POST (default 1000)", 0, 0},
        {"max-depth", OPT_U64, &max_depth, "N", "JSON nesting limit (default 16)", 0, 0},
        {"rate-limit", OPT_DOUBLE, &rate, "N",
         "requests a second per API key or client address (default: none)", 0, 0},
        {"hit-window", OPT_DOUBLE, &hit_window, "S",
         "seconds a recommendation counts toward A/B hits (default 3600)", 0, 0},
        {"online-learning", OPT_DOUBLE, &online, "S",
         "every S seconds, fine-tune each model on the new events and swap it in (default: "
         "only on POST /v1/admin/learn)",
         0, 0},
        {"online-lr", OPT_DOUBLE, &online_lr, "F",
         "online learning rate as a fraction of the model's lr (default 0.1)", 0, 0},
        {"online-steps", OPT_U64, &online_steps, "N",
         "optimiser steps a round at least, in passes over the new sequences (default 50)", 0, 0},
        {"access-log", OPT_STR, &access_log, "FILE", "append a line per request (ids hashed)", 0,
         0},
        {"static", OPT_STR, &static_dir, "DIR",
         "serve the files of DIR at / (default: the built dashboard, web/dist beside the build "
         "directory, when there is one)",
         0, 0},
        {"metrics-log", OPT_MULTI, logs, "FILE",
         "a training metrics log the dashboard's Training page draws (repeatable)", &nlogs, 16},
        {"eval-json", OPT_MULTI, evals, "FILE",
         "`seqrec eval --json` output the dashboard's Models page lists (repeatable)", &nevals, 16},
        {"sync", OPT_STR, &sync, "MODE",
         "full (default): each acknowledged event is fsync'd, it survives power loss; normal: "
         "synced at checkpoints, an acknowledged event survives kill -9 but not power loss",
         0, 0},
        {"no-sync", OPT_FLAG, &no_sync, NULL, "tests only: the store does not fsync", 0, 0},
        {"q|quiet", OPT_FLAG, &quiet, NULL, "no log lines on stderr", 0, 0},
    };
    sq_cli_spec spec = {
        "seqrec serve model.sqm data.sqd [--store events.db] [--port 8080] [--bind 127.0.0.1] "
        "[--api-key-file F] [options]",
        "Serves recommendations over HTTP (docs/serve.md): events posted to /v1/events are "
        "stored durably and change the user's next recommendations at once. Prints "
        "'listening on http://ADDR:PORT' when ready; stops cleanly on SIGINT or SIGTERM.",
        opts,
        (int)(sizeof opts / sizeof opts[0]),
        pos,
        2,
        2,
        &npos};
    int rc = sq_cli_parse(&spec, argc, argv);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (port > 65535 || cache_mb < 1 || !(weight > 0) || !(online >= 0) || !(online_lr >= 0) ||
        !(rate >= 0) || !(hit_window >= 0)) {
        fprintf(stderr, "seqrec serve: --port must be 0..65535, --cache-mb ≥ 1, --weight > 0, "
                        "--online-learning, --online-lr, --rate-limit, --hit-window ≥ 0\n");
        return 2;
    }
    if (strcmp(sync, "full") && strcmp(sync, "normal")) {
        fprintf(stderr, "seqrec serve: --sync '%s': expected full or normal\n", sync);
        return 2;
    }
    if (strcmp(scan, "bf16") && strcmp(scan, "fp32")) {
        fprintf(stderr, "seqrec serve: --score-scan '%s': expected bf16 or fp32\n", scan);
        return 2;
    }
    sq_serve_opts o = {0};
    o.sync_normal = !strcmp(sync, "normal");
    o.scan_fp32 = !strcmp(scan, "fp32");
    o.data_path = pos[1];
    o.variants[0] = (sq_serve_variant){"main", pos[0], weight};
    o.n_variants = 1;
    for (int i = 0; i < nvar; i++) {
        char *arg = (char *)variants[i];
        if (parse_variant(arg, &o.variants[o.n_variants])) {
            fprintf(stderr, "seqrec serve: --variant '%s': expected NAME=PATH[:WEIGHT > 0]\n",
                    variants[i]);
            return 2;
        }
        o.n_variants++;
    }
    o.store_path = store;
    o.bind = bind;
    o.port = (uint16_t)port;
    o.api_key_file = keys;
    o.http_threads = (uint32_t)http_threads;
    o.score_threads = (uint32_t)score_threads;
    o.score_workers = (uint32_t)score_workers;
    o.cache_bytes = cache_mb << 20;
    o.user_events = (uint32_t)user_events;
    o.max_body = max_body;
    o.max_batch = (uint32_t)max_batch;
    o.max_depth = (uint32_t)max_depth;
    o.rate_limit = rate;
    o.negative = negative;
    o.hit_window = hit_window;
    o.online_interval = online;
    o.online_lr = online_lr;
    o.online_steps = (uint32_t)online_steps;
    o.access_log = access_log;
    char dash[4096];
    o.static_dir = static_dir ? static_dir : default_dashboard(dash, sizeof dash);
    o.metrics_logs = logs;
    o.n_metrics_logs = (uint32_t)nlogs;
    o.eval_jsons = evals;
    o.n_eval_jsons = (uint32_t)nevals;
    o.no_sync = no_sync;
    sq_cli_reporter cr;
    o.reporter = sq_cli_reporter_init(&cr, quiet);

    /* the signals are taken by sigwait below, never delivered to a server thread */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    sq_error err = {0};
    sq_server *s = NULL;
    if (sq_serve_start(&s, &o, &err))
        return sq_cli_fail("serve", &err);
    printf("listening on http://%s:%u\n", bind ? bind : "127.0.0.1", sq_serve_port(s));
    if (o.static_dir)
        printf("dashboard on http://%s:%u/ (files from %s)\n", bind ? bind : "127.0.0.1",
               sq_serve_port(s), o.static_dir);
    fflush(stdout);
    int sig = 0;
    sigwait(&sigs, &sig);
    if (!quiet)
        fprintf(stderr, "seqrec serve: %s: stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    sq_serve_stop(s);
    return 0;
}
