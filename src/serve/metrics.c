/* metrics.c — the server's counters and latency histograms, and their Prometheus text
 * exposition (text format 0.0.4): counters end in _total, histograms give cumulative
 * _bucket{le} lines, _sum and _count. Every counter is a relaxed atomic: no lock on the request
 * path. */
#define _POSIX_C_SOURCE 200809L
#include "serve/serve_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const double SV_HIST_LE[SV_HIST_BUCKETS] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
                                            0.1,    0.25,  0.5,   1.0,   2.5,  10.0, INFINITY};

const char *const SV_ROUTE_NAMES[SV_R_COUNT] = {"events",      "recommendations",
                                                "similar",     "history",
                                                "delete_user", "put_item",
                                                "put_user",    "reload",
                                                "learn",       "healthz",
                                                "metrics",     "info",
                                                "dashboard",   "item",
                                                "static",      "other"};

void sv_hist_add(sv_hist *h, double seconds) {
    int b = 0;
    while (b < SV_HIST_BUCKETS - 1 && seconds > SV_HIST_LE[b])
        b++;
    atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (unsigned long long)(seconds * 1e6),
                              memory_order_relaxed);
}

double sv_hist_quantile(const sv_hist *h, double q) {
    unsigned long long n = atomic_load(&h->count), acc = 0;
    if (!n)
        return 0.0;
    double want = q * (double)n;
    for (int b = 0; b < SV_HIST_BUCKETS; b++) {
        acc += atomic_load(&h->bucket[b]);
        if ((double)acc >= want)
            return SV_HIST_LE[b];
    }
    return INFINITY;
}

/* ======================================== Exposition ========================================= */

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...) {
    if (!b->buf && sq_grow((void **)&b->buf, &b->cap, 4096, 1))
        b->failed = 1;
    for (int tries = 0; tries < 2 && !b->failed; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        if (sq_grow((void **)&b->buf, &b->cap, b->len + (size_t)n + 1, 1))
            b->failed = 1;
    }
}

static void hist(sbuf *b, const char *name, const char *labels, const sv_hist *h) {
    unsigned long long acc = 0;
    for (int i = 0; i < SV_HIST_BUCKETS; i++) {
        acc += atomic_load(&h->bucket[i]);
        if (isinf(SV_HIST_LE[i]))
            put(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, *labels ? "," : "", acc);
        else
            put(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, *labels ? "," : "",
                SV_HIST_LE[i], acc);
    }
    put(b, "%s_sum{%s} %.6f\n", name, labels, (double)atomic_load(&h->sum_us) / 1e6);
    put(b, "%s_count{%s} %llu\n", name, labels, (unsigned long long)atomic_load(&h->count));
}

static unsigned long long ld(atomic_ullong *x) {
    return atomic_load_explicit(x, memory_order_relaxed);
}

char *sv_metrics_render(sq_server *s) {
    sbuf b = {0};
    sv_metrics *m = &s->met;
    static const char *const cls[5] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    char lab[96];
    put(&b, "# HELP seqrec_http_requests_total HTTP requests by route and status class.\n"
            "# TYPE seqrec_http_requests_total counter\n");
    for (int r = 0; r < SV_R_COUNT; r++)
        for (int c = 0; c < 5; c++)
            if (ld(&m->status[r][c]) || c == 1)
                put(&b, "seqrec_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                    SV_ROUTE_NAMES[r], cls[c], ld(&m->status[r][c]));
    put(&b, "# HELP seqrec_http_request_seconds Request latency by route.\n"
            "# TYPE seqrec_http_request_seconds histogram\n");
    for (int r = 0; r < SV_R_COUNT; r++) {
        snprintf(lab, sizeof lab, "route=\"%s\"", SV_ROUTE_NAMES[r]);
        hist(&b, "seqrec_http_request_seconds", lab, &m->latency[r]);
    }
    uint64_t entries = 0, bytes = 0;
    sv_cache_usage(s->cache, &entries, &bytes);
    unsigned long long hits = ld(&m->cache_hits), misses = ld(&m->cache_misses);
    put(&b,
        "# TYPE seqrec_events_stored gauge\nseqrec_events_stored %llu\n"
        "# TYPE seqrec_events_posted_total counter\nseqrec_events_posted_total %llu\n"
        "# TYPE seqrec_events_unknown_item_total counter\nseqrec_events_unknown_item_total %llu\n"
        "# TYPE seqrec_cache_hits_total counter\nseqrec_cache_hits_total %llu\n"
        "# TYPE seqrec_cache_misses_total counter\nseqrec_cache_misses_total %llu\n"
        "# TYPE seqrec_cache_hit_ratio gauge\nseqrec_cache_hit_ratio %.6f\n"
        "# TYPE seqrec_cache_evictions_total counter\nseqrec_cache_evictions_total %llu\n"
        "# TYPE seqrec_cache_users gauge\nseqrec_cache_users %llu\n"
        "# TYPE seqrec_cache_bytes gauge\nseqrec_cache_bytes %llu\n"
        "# TYPE seqrec_cache_limit_bytes gauge\nseqrec_cache_limit_bytes %llu\n"
        "# TYPE seqrec_cold_start_total counter\nseqrec_cold_start_total %llu\n"
        "# TYPE seqrec_score_batches_total counter\nseqrec_score_batches_total %llu\n"
        "# TYPE seqrec_score_batched_requests_total counter\n"
        "seqrec_score_batched_requests_total %llu\n"
        "# TYPE seqrec_score_rescored_items_total counter\n"
        "seqrec_score_rescored_items_total %llu\n"
        "# TYPE seqrec_rate_limited_total counter\nseqrec_rate_limited_total %llu\n"
        "# TYPE seqrec_uptime_seconds gauge\nseqrec_uptime_seconds %.1f\n",
        (unsigned long long)sq_store_count(s->store), ld(&m->events_posted),
        ld(&m->events_unknown_item), hits, misses,
        hits + misses ? (double)hits / (double)(hits + misses) : 0.0, ld(&m->cache_evictions),
        (unsigned long long)entries, (unsigned long long)bytes,
        (unsigned long long)s->o.cache_bytes, ld(&m->cold_start), ld(&m->batches),
        ld(&m->batched_requests), ld(&m->rescored), ld(&m->rate_limited), sq_now() - s->started);
    put(&b, "# HELP seqrec_model_version Load count of each variant's model (1 = as started).\n"
            "# TYPE seqrec_model_version gauge\n");
    for (uint32_t v = 0; v < s->n_var; v++) {
        sv_model *cur = sv_variant_acquire(&s->var[v]);
        put(&b, "seqrec_model_version{variant=\"%s\",kind=\"%s\"} %llu\n", s->var[v].name,
            cur->m->ops->name, (unsigned long long)cur->version);
        sv_model_release(cur);
    }
    put(&b, "# TYPE seqrec_variant_weight gauge\n");
    for (uint32_t v = 0; v < s->n_var; v++)
        put(&b, "seqrec_variant_weight{variant=\"%s\"} %.6f\n", s->var[v].name, s->var[v].weight);
    put(&b, "# HELP seqrec_variant_requests_total Recommendation requests per A/B variant.\n"
            "# TYPE seqrec_variant_requests_total counter\n");
    for (uint32_t v = 0; v < s->n_var; v++)
        put(&b, "seqrec_variant_requests_total{variant=\"%s\"} %llu\n", s->var[v].name,
            ld(&s->var[v].requests));
    put(&b, "# TYPE seqrec_variant_recommended_items_total counter\n");
    for (uint32_t v = 0; v < s->n_var; v++)
        put(&b, "seqrec_variant_recommended_items_total{variant=\"%s\"} %llu\n", s->var[v].name,
            ld(&s->var[v].recommended));
    put(&b, "# HELP seqrec_variant_hits_total Later events of a user on an item the variant "
            "recommended them within the hit window.\n"
            "# TYPE seqrec_variant_hits_total counter\n");
    for (uint32_t v = 0; v < s->n_var; v++)
        put(&b, "seqrec_variant_hits_total{variant=\"%s\"} %llu\n", s->var[v].name,
            ld(&s->var[v].hits));
    put(&b, "# TYPE seqrec_variant_request_seconds histogram\n");
    for (uint32_t v = 0; v < s->n_var; v++) {
        snprintf(lab, sizeof lab, "variant=\"%s\"", s->var[v].name);
        hist(&b, "seqrec_variant_request_seconds", lab, &s->var[v].latency);
    }
    if (b.failed) {
        sq_free(b.buf);
        return NULL;
    }
    return b.buf;
}
