/* serve.h — `seqrec serve` as a library: an HTTP server (libmicrohttpd) answering recommendations
 * for a trained model and its dataset while events stream in (docs/serve.md has the API).
 *
 *   sq_serve_start(opts) ─▶ server (listening; threads running) ─▶ sq_serve_port()
 *                                 │  HTTP requests, until
 *   sq_serve_stop(server) ◀───────┘  (drains in-flight requests, commits the store, frees)
 *
 * Ownership: the server keeps its own copies of every option string; the dataset and models
 * are opened and owned by the server. sq_serve_stop frees everything. */
#ifndef SEQREC_SERVE_H
#define SEQREC_SERVE_H

#include "seqrec/core.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { SQ_SERVE_MAX_VARIANTS = 8 };

typedef struct {
    const char *name; /* shown in responses and metrics: [A-Za-z0-9_-], ≤ 31 bytes */
    const char *path; /* the .sqm file */
    double weight;    /* share of users (> 0; normalised over the variants) */
} sq_serve_variant;

typedef struct {
    const char *data_path; /* the .sqd the models were trained on */
    sq_serve_variant variants[SQ_SERVE_MAX_VARIANTS];
    uint32_t n_variants;      /* ≥ 1; variants[0] is the main model */
    const char *store_path;   /* the SQLite event store; NULL: "events.db" */
    const char *bind;         /* address to listen on; NULL: "127.0.0.1" */
    uint16_t port;            /* 0: any free port (see sq_serve_port) */
    const char *api_key_file; /* one key per line ("KEY" or "KEY admin"); NULL: no keys */
    uint32_t http_threads;    /* libmicrohttpd's thread pool; 0: 64 */
    uint32_t score_threads;   /* threads one batch is scored on (the catalogue split between
                                 them); 0: 1 */
    uint32_t score_workers;   /* batches scored at once; 0: the cores */
    int scan_fp32;            /* score every item in fp32 (default, when built for AVX512_BF16:
                                 scan a bf16 copy of the item table, then score the candidates
                                 in fp32; the same results) */
    uint64_t cache_bytes;     /* per-user state cache limit; 0: 256 MiB */
    uint32_t user_events;     /* live events kept per cached user; 0: 200 */
    uint64_t max_body;        /* request body limit in bytes; 0: 1 MiB */
    uint32_t max_batch;       /* events per POST; 0: 1000 */
    uint32_t max_depth;       /* JSON nesting; 0: 16 */
    double rate_limit;        /* requests per second per API key (or client address); 0: none */
    const char *negative;     /* behaviours that are negative feedback, "dislike,skip,hide";
                                 NULL: none */
    double hit_window;        /* seconds a recommendation counts for a later event (A/B hits);
                                 0: 3600 */
    const char *access_log;   /* append one line per request (user ids hashed); NULL: none */
    const char *static_dir;   /* files served at / (the dashboard); NULL: none */
    const char *const *metrics_logs; /* training metrics logs for GET /v1/dashboard/runs */
    uint32_t n_metrics_logs;
    const char *const *eval_jsons; /* `seqrec eval --json` outputs for /v1/dashboard/evals */
    uint32_t n_eval_jsons;
    double online_interval; /* seconds between online learning rounds; 0: only on
                               POST /v1/admin/learn */
    double online_lr;       /* online learning rate as a fraction of the model's lr; 0: 0.1 */
    uint32_t online_steps;  /* optimiser steps a round at least (passes repeat); 0: 50 */
    int sync_normal;        /* the store syncs at checkpoints, not at each commit: durable
                               against kill -9, not against power loss (default: each commit) */
    int no_sync;            /* tests only: the store does not fsync (not durable) */
    sq_reporter reporter;   /* log lines */
} sq_serve_opts;

typedef struct sq_server sq_server;

/* Opens the dataset, loads every variant's model (each must match the dataset), opens the
 * store, starts scoring workers and the HTTP daemon. Errors: SQ_ERR_ARG (options), SQ_ERR_IO
 * (files, the port is taken), SQ_ERR_FORMAT, SQ_ERR_MISMATCH (a model of another dataset),
 * SQ_ERR_NOMEM. Nothing is left running on failure. */
sq_status sq_serve_start(sq_server **out, const sq_serve_opts *opts, sq_error *err);
/* The port the server listens on (the chosen one when opts.port was 0). */
uint16_t sq_serve_port(const sq_server *s);
/* Stops accepting, finishes in-flight requests, closes the store, frees. NULL: no-op. */
void sq_serve_stop(sq_server *s);

#ifdef __cplusplus
}
#endif
#endif
