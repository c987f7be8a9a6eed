/* tasks.c — task names, the click and buy behaviour sets, time-gap buckets (see tasks.h). */
#include "seqrec/tasks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const NAMES[SQ_TASK_N] = {"next_item", "next_behaviour", "value", "click",
                                             "buy"};

const char *sq_task_name(sq_task t) {
    return t < SQ_TASK_N ? NAMES[t] : "?";
}

/* Calls f(token, len, ud) for each comma-separated token (spaces trimmed, empty ones skipped);
 * stops at the first non-zero return. */
static int each_token(const char *list, int (*f)(const char *, size_t, void *), void *ud) {
    const char *p = list;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *s = p;
        while (n && (*s == ' ' || *s == '\t'))
            s++, n--;
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        int rc = n ? f(s, n, ud) : 0;
        if (rc)
            return rc;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

typedef struct {
    unsigned mask;
    char bad[64];
} parse_ctx;

static int add_task(const char *s, size_t n, void *ud) {
    parse_ctx *c = ud;
    for (int t = 0; t < SQ_TASK_N; t++)
        if (strlen(NAMES[t]) == n && !strncmp(NAMES[t], s, n)) {
            c->mask |= 1u << t;
            return 0;
        }
    snprintf(c->bad, sizeof c->bad, "%.*s", (int)(n < 60 ? n : 60), s);
    return 1;
}

sq_status sq_tasks_parse(const char *list, unsigned *mask, sq_error *err) {
    parse_ctx c = {0};
    if (each_token(list, add_task, &c))
        return sq_errorf(err, SQ_ERR_ARG,
                         "tasks: unknown task '%s' (known: next_item, next_behaviour, value, "
                         "click, buy)",
                         c.bad);
    if (!c.mask)
        return sq_errorf(err, SQ_ERR_ARG, "tasks: the list is empty");
    *mask = c.mask;
    return SQ_OK;
}

void sq_tasks_format(unsigned mask, char *buf, size_t n) {
    size_t o = 0;
    buf[0] = 0;
    for (int t = 0; t < SQ_TASK_N && o < n; t++)
        if (mask & (1u << t))
            o += (size_t)snprintf(buf + o, n - o, "%s%s", o ? "," : "", NAMES[t]);
}

/* ===================================== Behaviour sets ====================================== */

static int named(const char *name, const char *const *list) {
    for (size_t i = 0; list[i]; i++)
        if (!strcasecmp(name, list[i]))
            return 1;
    return 0;
}

static const char *const EXPOSURE[] = {"view",   "pv",     "impression", "show",
                                       "expose", "browse", "exposure",   NULL};
static const char *const PURCHASE[] = {"buy", "purchase", "order", "pay", "checkout", NULL};

typedef struct {
    const sq_dataset *d;
    uint32_t n_beh;
    uint8_t *set;
    char bad[64];
} set_ctx;

static int add_beh(const char *s, size_t n, void *ud) {
    set_ctx *c = ud;
    char tok[128];
    snprintf(tok, sizeof tok, "%.*s", (int)(n < 120 ? n : 120), s);
    uint32_t id = UINT32_MAX;
    if (c->d)
        id = sq_data_find_behaviour(c->d, tok);
    if (id >= c->n_beh) { /* an id? */
        char *end;
        unsigned long v = strtoul(tok, &end, 10);
        if (*tok && !*end && v < c->n_beh)
            id = (uint32_t)v;
    }
    if (id >= c->n_beh) {
        snprintf(c->bad, sizeof c->bad, "%.60s", tok);
        return 1;
    }
    c->set[id] = 1;
    return 0;
}

static int count(const uint8_t set[256]) {
    int n = 0;
    for (int i = 0; i < 256; i++)
        n += set[i] != 0;
    return n;
}

static sq_status parse_set(const sq_dataset *d, uint32_t n_beh, const char *list, uint8_t set[256],
                           const char *what, sq_error *err) {
    set_ctx c = {d, n_beh, set, ""};
    if (each_token(list, add_beh, &c))
        return sq_errorf(err, SQ_ERR_ARG, "%s: no behaviour '%s' in this dataset", what, c.bad);
    return SQ_OK;
}

static int is_auto(const char *s) {
    return !s || !*s || !strcmp(s, "auto");
}

sq_status sq_tasks_resolve(const sq_dataset *d, const char *click_list, const char *buy_list,
                           sq_task_labels *out, sq_error *err) {
    memset(out, 0, sizeof *out);
    uint32_t nb = sq_data_info_of(d)->n_behaviours;
    sq_status rc;
    if (!is_auto(buy_list)) {
        if ((rc = parse_set(d, nb, buy_list, out->buy, "buy_behaviours", err)))
            return rc;
    } else {
        for (uint32_t b = 0; b < nb; b++)
            out->buy[b] = (uint8_t)named(sq_data_behaviour_name(d, b), PURCHASE);
    }
    if (!is_auto(click_list)) {
        if ((rc = parse_set(d, nb, click_list, out->click, "click_behaviours", err)))
            return rc;
    } else {
        int any_exposure = 0;
        for (uint32_t b = 0; b < nb; b++)
            any_exposure |= named(sq_data_behaviour_name(d, b), EXPOSURE);
        for (uint32_t b = 0; b < nb; b++)
            out->click[b] =
                (uint8_t)(any_exposure ? !named(sq_data_behaviour_name(d, b), EXPOSURE) : b > 0);
    }
    out->n_click = count(out->click);
    out->n_buy = count(out->buy);
    return SQ_OK;
}

sq_status sq_tasks_labels_from_ids(const char *click_ids, const char *buy_ids, uint32_t n_beh,
                                   sq_task_labels *out, sq_error *err) {
    memset(out, 0, sizeof *out);
    sq_status rc;
    if ((rc = parse_set(NULL, n_beh, click_ids, out->click, "click_behaviours", err)) ||
        (rc = parse_set(NULL, n_beh, buy_ids, out->buy, "buy_behaviours", err)))
        return rc;
    out->n_click = count(out->click);
    out->n_buy = count(out->buy);
    return SQ_OK;
}

void sq_tasks_labels_ids(const uint8_t set[256], char *buf, size_t n) {
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < 256 && o < n; i++)
        if (set[i])
            o += (size_t)snprintf(buf + o, n - o, "%s%d", o ? "," : "", i);
}

uint32_t sq_gap_bucket(int64_t prev, int64_t t, int real_time) {
    if (!real_time)
        return 0;
    int64_t g = t - prev;
    if (g < 60)
        return 1;
    if (g < 600)
        return 2;
    if (g < 3600)
        return 3;
    if (g < 86400)
        return 4;
    if (g < 7 * 86400)
        return 5;
    if (g < 30 * 86400)
        return 6;
    return 7;
}
