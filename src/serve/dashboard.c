/* dashboard.c — the read-only JSON the web dashboard (web/, served at / by --static) draws:
 *
 *   GET /v1/dashboard/dataset  the dataset's statistics (`seqrec stats --json`), a histogram of
 *                              sequence lengths, events over time, the top items and the most
 *                              active users (computed once at start: the dataset is read-only)
 *   GET /v1/dashboard/runs     the runs of every --metrics-log file (read at each request, so a
 *                              training in progress shows its new epochs)
 *   GET /v1/dashboard/evals    the results of every --eval-json file (`seqrec eval --json`, one
 *                              object a line), read at each request
 *   GET /v1/items/{id}         an item's content features: tags, text, numeric attributes and its
 *                              statistics from the dataset
 *
 * A file that cannot be read or parsed does not fail the request: its entry carries "error". */
#define _POSIX_C_SOURCE 200809L
#include "seqrec/eval.h"
#include "serve/serve_int.h"
#include "train/runlog.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { HIST_BINS = 40, TIME_BINS = 100, TOP_ITEMS = 20, TOP_USERS = 10 };

/* ======================================= Dataset JSON ======================================== */

/* Sequence lengths in at most HIST_BINS bins of equal width over [min, p99]; the last bin also
 * holds everything above (to max): {"lo":[…],"hi":[…],"users":[…]}. */
static cJSON *length_hist(const sq_dataset *d, const sq_data_summary *sum) {
    const sq_data_info *in = sq_data_info_of(d);
    const uint64_t *off = sq_data_offsets(d);
    uint32_t lo = sum->len_min, top = sum->len_p99 > lo ? sum->len_p99 : sum->len_max;
    uint32_t width = (top - lo + HIST_BINS) / HIST_BINS; /* ceil((top - lo + 1) / BINS) */
    if (width < 1)
        width = 1;
    uint32_t nb = (top - lo) / width + 1;
    uint64_t count[HIST_BINS + 1] = {0};
    for (uint32_t u = 0; u < in->n_users; u++) {
        uint64_t len = off[u + 1] - off[u];
        uint64_t b = len < lo ? 0 : (len - lo) / width;
        count[b < nb ? b : nb - 1]++;
    }
    cJSON *h = cJSON_CreateObject();
    cJSON *l = cJSON_AddArrayToObject(h, "lo"), *hi = cJSON_AddArrayToObject(h, "hi");
    cJSON *c = cJSON_AddArrayToObject(h, "users");
    for (uint32_t b = 0; b < nb; b++) {
        cJSON_AddItemToArray(l, cJSON_CreateNumber(lo + (double)b * width));
        cJSON_AddItemToArray(
            hi, cJSON_CreateNumber(b + 1 < nb ? lo + (double)(b + 1) * width - 1 : sum->len_max));
        cJSON_AddItemToArray(c, cJSON_CreateNumber((double)count[b]));
    }
    return h;
}

/* Events in TIME_BINS equal bins over [time_min, time_max] (file positions when the dataset has
 * no real time): {"start":t0,"width":seconds,"real_time":b,"events":[…]}. */
static cJSON *activity(const sq_dataset *d) {
    const sq_data_info *in = sq_data_info_of(d);
    const int64_t *t = sq_data_times(d);
    double span = (double)(in->time_max - in->time_min) + 1.0;
    double width = ceil(span / TIME_BINS);
    uint64_t count[TIME_BINS] = {0};
    for (uint64_t e = 0; e < in->n_events; e++) {
        uint64_t b = (uint64_t)((double)(t[e] - in->time_min) / width);
        count[b < TIME_BINS ? b : TIME_BINS - 1]++;
    }
    uint32_t nb = (uint32_t)ceil(span / width);
    if (nb > TIME_BINS)
        nb = TIME_BINS;
    cJSON *a = cJSON_CreateObject();
    cJSON_AddNumberToObject(a, "start", (double)in->time_min);
    cJSON_AddNumberToObject(a, "width", width);
    cJSON_AddBoolToObject(a, "real_time", (in->flags & SQ_DATA_REAL_TIME) != 0);
    cJSON *ev = cJSON_AddArrayToObject(a, "events");
    for (uint32_t b = 0; b < nb; b++)
        cJSON_AddItemToArray(ev, cJSON_CreateNumber((double)count[b]));
    return a;
}

/* The k largest of v[0..n) (every stride-th float) by value, ties by the smaller index, into
 * idx (vals: room for k); returns how many. */
static uint32_t top_k(const float *v, size_t stride, uint32_t n, uint32_t k, uint32_t *idx,
                      float *vals) {
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        const float x = v[(size_t)i * stride];
        if (m < k || x > vals[k - 1])
            m = sq_topk_insert(idx, vals, m, k, i, x);
    }
    return m;
}

static cJSON *top_items(const sq_dataset *d) {
    const sq_data_info *in = sq_data_info_of(d);
    const size_t w = SQ_ISTAT_FIXED + in->n_behaviours;
    const float *st = sq_data_item_stats(d);
    uint32_t idx[TOP_ITEMS];
    float vals[TOP_ITEMS];
    uint32_t n = top_k(st + SQ_ISTAT_EVENTS, w, in->n_items, TOP_ITEMS, idx, vals);
    cJSON *a = cJSON_CreateArray();
    for (uint32_t k = 0; k < n; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "item", sq_data_item_id(d, idx[k], NULL));
        cJSON_AddNumberToObject(o, "events", st[idx[k] * w + SQ_ISTAT_EVENTS]);
        cJSON_AddNumberToObject(o, "users", st[idx[k] * w + SQ_ISTAT_USERS]);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static cJSON *top_users(const sq_dataset *d) {
    const sq_data_info *in = sq_data_info_of(d);
    const size_t w = SQ_USTAT_FIXED + in->n_behaviours;
    const float *st = sq_data_user_stats(d);
    uint32_t idx[TOP_USERS];
    float vals[TOP_USERS];
    uint32_t n = top_k(st + SQ_USTAT_EVENTS, w, in->n_users, TOP_USERS, idx, vals);
    cJSON *a = cJSON_CreateArray();
    for (uint32_t k = 0; k < n; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "user", sq_data_user_id(d, idx[k], NULL));
        cJSON_AddNumberToObject(o, "events", st[idx[k] * w + SQ_USTAT_EVENTS]);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

sq_status sv_dash_init(sq_server *s, sq_error *err) {
    sq_data_summary sum;
    sq_status rc = sq_data_summarize(s->d, &sum, err);
    if (rc)
        return rc;
    char *stats = sq_data_stats_json(s->d, &sum);
    cJSON *o = cJSON_CreateObject(), *st = stats ? cJSON_Parse(stats) : NULL;
    sq_free(stats);
    if (o && st) {
        cJSON_AddItemToObject(o, "stats", st);
        st = NULL;
        cJSON_AddItemToObject(o, "sequence_lengths", length_hist(s->d, &sum));
        cJSON_AddItemToObject(o, "activity", activity(s->d));
        cJSON_AddItemToObject(o, "top_items", top_items(s->d));
        cJSON_AddItemToObject(o, "top_users", top_users(s->d));
        s->dash_dataset = cJSON_PrintUnformatted(o);
    }
    cJSON_Delete(st);
    cJSON_Delete(o);
    sq_data_summary_free(&sum);
    return s->dash_dataset ? SQ_OK : sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
}

void sv_dash_free(sq_server *s) {
    cJSON_free(s->dash_dataset);
    s->dash_dataset = NULL;
}

/* ========================================== Routes =========================================== */

static void text_resp(sv_resp *r, const char *text) {
    size_t n = strlen(text);
    sq_free(r->body);
    if (!(r->body = sq_malloc(n + 2))) {
        sv_error(r, 500, "out of memory");
        return;
    }
    memcpy(r->body, text, n);
    memcpy(r->body + n, "\n", 2);
    r->len = n + 1;
    r->status = 200;
    r->type = "application/json";
}

static void route_runs(sq_server *s, sv_resp *r) {
    cJSON *o = cJSON_CreateObject(), *runs = cJSON_AddArrayToObject(o, "runs");
    cJSON *errs = cJSON_AddArrayToObject(o, "errors");
    for (uint32_t f = 0; f < s->o.n_metrics_logs; f++) {
        sq_error e = {0};
        cJSON *rs = NULL;
        if (sq_runlog_read(s->o.metrics_logs[f], &rs, &e)) {
            cJSON_AddItemToArray(errs, cJSON_CreateString(e.msg));
            continue;
        }
        while (cJSON_GetArraySize(rs))
            cJSON_AddItemToArray(runs, cJSON_DetachItemFromArray(rs, 0));
        cJSON_Delete(rs);
    }
    sv_json_resp(r, 200, o);
}

/* Every line of an eval file ({} objects of `seqrec eval --json`) as an entry
 * {"file","name","line","result"}; a bad file or line gives {"file","error"}. */
static void read_evals(const char *path, cJSON *evals, cJSON *errs) {
    FILE *f = fopen(path, "rb");
    char msg[SQ_ERR_MSG_MAX];
    if (!f) {
        snprintf(msg, sizeof msg, "%s: %s", path, strerror(errno));
        cJSON_AddItemToArray(errs, cJSON_CreateString(msg));
        return;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long lineno = 0, got = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        cJSON *res = cJSON_ParseWithLength(line, (size_t)n);
        if (!res && strspn(line, " \t\r\n") == (size_t)n)
            continue;
        if (!cJSON_IsObject(res) || !cJSON_GetObjectItem(res, "metrics")) {
            cJSON_Delete(res);
            snprintf(msg, sizeof msg, "%s:%lu: not a `seqrec eval --json` object", path, lineno);
            cJSON_AddItemToArray(errs, cJSON_CreateString(msg));
            continue;
        }
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "file", path);
        /* named by the model file it evaluated (older outputs: by the file and line) */
        char name[300];
        const char *model = cJSON_GetStringValue(cJSON_GetObjectItem(res, "model"));
        const char *mbase = model && strrchr(model, '/') ? strrchr(model, '/') + 1 : model;
        if (mbase && *mbase)
            snprintf(name, sizeof name, "%.250s", mbase);
        else if (++got > 1)
            snprintf(name, sizeof name, "%.250s:%lu", base, lineno);
        else
            snprintf(name, sizeof name, "%.250s", base);
        cJSON_AddStringToObject(e, "name", name);
        cJSON_AddNumberToObject(e, "line", (double)lineno);
        cJSON_AddItemToObject(e, "result", res);
        cJSON_AddItemToArray(evals, e);
    }
    free(line);
    fclose(f);
}

static void route_evals(sq_server *s, sv_resp *r) {
    cJSON *o = cJSON_CreateObject(), *evals = cJSON_AddArrayToObject(o, "evals");
    cJSON *errs = cJSON_AddArrayToObject(o, "errors");
    for (uint32_t f = 0; f < s->o.n_eval_jsons; f++)
        read_evals(s->o.eval_jsons[f], evals, errs);
    sv_json_resp(r, 200, o);
}

void sv_route_dashboard(sq_server *s, const char *what, sv_resp *r) {
    if (!strcmp(what, "dataset"))
        text_resp(r, s->dash_dataset);
    else if (!strcmp(what, "runs"))
        route_runs(s, r);
    else if (!strcmp(what, "evals"))
        route_evals(s, r);
    else
        sv_error(r, 404, "no route /v1/dashboard/%.100s (dataset, runs, evals)", what);
}

void sv_route_item_info(sq_server *s, const char *item, size_t len, sv_resp *r) {
    uint32_t i = sq_data_find_item(s->d, item, len);
    if (i == UINT32_MAX) {
        sv_error(r, 404, "item '%.*s' is not in the dataset", (int)(len > 200 ? 200 : len), item);
        return;
    }
    const sq_data_info *in = s->info;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "item", sq_data_item_id(s->d, i, NULL));
    uint32_t nt = 0;
    const uint32_t *tags = sq_data_item_tags(s->d, i, &nt);
    cJSON *ta = cJSON_AddArrayToObject(o, "tags");
    for (uint32_t k = 0; k < nt; k++)
        cJSON_AddItemToArray(ta, cJSON_CreateString(sq_data_tag_name(s->d, tags[k])));
    size_t tl = 0;
    const char *text = sq_data_item_text(s->d, i, &tl);
    char *tx = sq_malloc(tl + 1);
    if (tx) {
        memcpy(tx, text, tl);
        tx[tl] = 0;
        cJSON_AddStringToObject(o, "text", tx);
        sq_free(tx);
    }
    cJSON *num = cJSON_AddObjectToObject(o, "numeric");
    const float *nv = sq_data_item_num(s->d);
    for (uint32_t k = 0; k < in->n_item_num; k++) {
        float v = nv[(size_t)i * in->n_item_num + k];
        if (isfinite(v))
            cJSON_AddNumberToObject(num, sq_data_item_num_name(s->d, k), v);
        else
            cJSON_AddNullToObject(num, sq_data_item_num_name(s->d, k));
    }
    const size_t w = SQ_ISTAT_FIXED + in->n_behaviours;
    const float *st = sq_data_item_stats(s->d) + (size_t)i * w;
    cJSON *so = cJSON_AddObjectToObject(o, "stats");
    cJSON_AddNumberToObject(so, "events", st[SQ_ISTAT_EVENTS]);
    cJSON_AddNumberToObject(so, "users", st[SQ_ISTAT_USERS]);
    cJSON_AddNumberToObject(so, "recency_days", st[SQ_ISTAT_RECENCY_DAYS]);
    cJSON *bs = cJSON_AddObjectToObject(so, "behaviour_share");
    for (uint32_t b = 0; b < in->n_behaviours; b++)
        cJSON_AddNumberToObject(bs, sq_data_behaviour_name(s->d, b), st[SQ_ISTAT_FIXED + b]);
    sv_json_resp(r, 200, o);
}
