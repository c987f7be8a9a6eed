/* test_store.c — the SQLite event store: every field read back as written, after/limit, delete,
 * items, group commit under 8 appending threads, reopen, foreign files, and acknowledged events
 * surviving kill -9 of the writing process. */
#define _DEFAULT_SOURCE
#include "testutil.h"

#include "seqrec/core.h"
#include "serve/store.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ========================================= Helpers ======================================== */

/* One event as read back, every string copied. */
typedef struct {
    int64_t seq;
    char *user, *item, *behaviour, *scene, *context;
    size_t user_len, item_len;
    int64_t ts;
    double value;
} rec;

typedef struct {
    rec *v;
    size_t n, cap;
    size_t stop_at; /* the callback asks to stop once n reaches it (0: never) */
} recs;

static char *dup_bytes(const char *s, size_t n) {
    if (!s)
        return NULL;
    char *d = malloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static int collect(void *ud, int64_t seq, const sq_store_event *e) {
    recs *r = ud;
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 16;
        r->v = realloc(r->v, r->cap * sizeof *r->v);
    }
    rec *x = &r->v[r->n++];
    x->seq = seq;
    x->user = dup_bytes(e->user, e->user_len);
    x->user_len = e->user_len;
    x->item = dup_bytes(e->item, e->item_len);
    x->item_len = e->item_len;
    x->behaviour = dup_bytes(e->behaviour, strlen(e->behaviour));
    x->scene = e->scene ? dup_bytes(e->scene, strlen(e->scene)) : NULL;
    x->context = e->context ? dup_bytes(e->context, strlen(e->context)) : NULL;
    x->ts = e->ts;
    x->value = e->value;
    return r->stop_at && r->n >= r->stop_at;
}

static void recs_free(recs *r) {
    for (size_t i = 0; i < r->n; i++) {
        rec *x = &r->v[i];
        free(x->user);
        free(x->item);
        free(x->behaviour);
        free(x->scene);
        free(x->context);
    }
    free(r->v);
    memset(r, 0, sizeof *r);
}

static sq_store *open_store(const char *path, int no_sync, uint32_t readers, uint32_t max_batch) {
    sq_store_opts o = {.max_batch = max_batch, .readers = readers, .no_sync = no_sync};
    sq_store *st = NULL;
    sq_error err = {0};
    sq_status rc = sq_store_open(&st, path, &o, &err);
    if (rc)
        fprintf(stderr, "sq_store_open: %s\n", err.msg);
    assert_int_equal(rc, SQ_OK);
    assert_non_null(st);
    return st;
}

/* A plain event: behaviour "view", no scene, context or value. */
static sq_store_event plain(const char *user, const char *item, int64_t ts) {
    sq_store_event e = {.user = user,
                        .user_len = strlen(user),
                        .item = item,
                        .item_len = strlen(item),
                        .behaviour = "view",
                        .ts = ts,
                        .value = NAN};
    return e;
}

static int64_t append1(sq_store *st, const char *user, const char *item, int64_t ts) {
    sq_store_event e = plain(user, item, ts);
    int64_t seq = -1;
    sq_error err = {0};
    assert_int_equal(sq_store_append(st, &e, 1, &seq, &err), SQ_OK);
    return seq;
}

static void user_events(sq_store *st, const char *user, int64_t after, size_t limit, recs *out) {
    sq_error err = {0};
    assert_int_equal(sq_store_user_events(st, user, strlen(user), after, limit, collect, out, &err),
                     SQ_OK);
}

static void all_events(sq_store *st, recs *out) {
    sq_error err = {0};
    assert_int_equal(sq_store_events_since(st, 0, 0, collect, out, &err), SQ_OK);
}

static void assert_bytes(const char *got, size_t got_len, const char *want, size_t want_len) {
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
}

/* ======================================= Round trip ======================================= */

static const char U_SPACE[] = "alice smith";
static const char U_UTF8[] =
    "Zo\xc3\xab \xe7\x94\xa8\xe6\x88\xb7 \xf0\x9f\x8e\xa7";             /* Zoë 用户 🎧 */
static const char U_BYTES[] = {'a', 0, 'b', '\x01', '\xff', '\n', 'z'}; /* 7 bytes */
static const char I_BYTES[] = {'x', 0, 'y'};

static void test_check_fresh(void **state) {
    (void)state;
    sq_store *st = open_store(test_tmp("fresh.db"), 1, 0, 0);
    sq_error err = {0};
    assert_int_equal(sq_store_check(st, &err), SQ_OK);
    assert_int_equal(sq_store_count(st), 0);
    assert_int_equal(sq_store_last_seq(st), 0);
    recs r = {0};
    all_events(st, &r);
    assert_int_equal(r.n, 0);
    sq_store_close(st);
    sq_store_close(NULL);
}

static void test_roundtrip(void **state) {
    (void)state;
    sq_store *st = open_store(test_tmp("roundtrip.db"), 1, 2, 0);
    sq_error err = {0};
    sq_store_event ev[3] = {
        {.user = U_SPACE,
         .user_len = strlen(U_SPACE),
         .item = "item one",
         .item_len = 8,
         .behaviour = "view",
         .ts = 1700000000,
         .scene = "home",
         .context = "{\"page\":1}",
         .value = 4.5},
        {.user = U_UTF8,
         .user_len = strlen(U_UTF8),
         .item = "\xc3\x9ftem/\xe4\xba\x8c",
         .item_len = 10,
         .behaviour = "buy",
         .ts = -5,
         .scene = "",
         .context = NULL,
         .value = NAN},
        {.user = U_BYTES,
         .user_len = sizeof U_BYTES,
         .item = I_BYTES,
         .item_len = sizeof I_BYTES,
         .behaviour = "rate",
         .ts = 0,
         .scene = NULL,
         .context = "{}",
         .value = -0.25},
    };
    int64_t first = -1;
    assert_int_equal(sq_store_append(st, ev, 3, &first, &err), SQ_OK);
    assert_int_equal(first, 1);
    assert_int_equal(sq_store_count(st), 3);
    assert_int_equal(sq_store_last_seq(st), 3);
    /* first_seq follows on across calls, consecutively within one */
    assert_int_equal(sq_store_append(st, ev + 1, 2, &first, &err), SQ_OK);
    assert_int_equal(first, 4);
    assert_int_equal(sq_store_append(st, ev, 1, NULL, &err), SQ_OK);
    assert_int_equal(append1(st, "bob", "i9", 7), 7);
    assert_int_equal(sq_store_count(st), 7);
    assert_int_equal(sq_store_last_seq(st), 7);

    recs r = {0};
    all_events(st, &r);
    assert_int_equal(r.n, 7);
    for (size_t i = 0; i < r.n; i++)
        assert_int_equal(r.v[i].seq, (int64_t)i + 1);
    rec *a = &r.v[0], *b = &r.v[1], *c = &r.v[2];
    assert_bytes(a->user, a->user_len, U_SPACE, strlen(U_SPACE));
    assert_bytes(a->item, a->item_len, "item one", 8);
    assert_string_equal(a->behaviour, "view");
    assert_int_equal(a->ts, 1700000000);
    assert_string_equal(a->scene, "home");
    assert_string_equal(a->context, "{\"page\":1}");
    assert_true(a->value == 4.5);
    assert_bytes(b->user, b->user_len, U_UTF8, strlen(U_UTF8));
    assert_bytes(b->item, b->item_len, "\xc3\x9ftem/\xe4\xba\x8c", 10);
    assert_string_equal(b->behaviour, "buy");
    assert_int_equal(b->ts, -5);
    assert_string_equal(b->scene, ""); /* "" and NULL both read back as "" */
    assert_null(b->context);
    assert_true(isnan(b->value));
    assert_bytes(c->user, c->user_len, U_BYTES, sizeof U_BYTES);
    assert_bytes(c->item, c->item_len, I_BYTES, sizeof I_BYTES);
    assert_string_equal(c->behaviour, "rate");
    assert_int_equal(c->ts, 0);
    assert_string_equal(c->scene, "");
    assert_string_equal(c->context, "{}");
    assert_true(c->value == -0.25);
    assert_bytes(r.v[3].user, r.v[3].user_len, U_UTF8, strlen(U_UTF8));
    assert_bytes(r.v[4].item, r.v[4].item_len, I_BYTES, sizeof I_BYTES);
    assert_bytes(r.v[5].user, r.v[5].user_len, U_SPACE, strlen(U_SPACE));
    recs_free(&r);

    /* ids are length-delimited: the 7-byte id with a NUL is not its 1-byte prefix "a" */
    assert_int_equal(sq_store_user_events(st, U_BYTES, sizeof U_BYTES, 0, 0, collect, &r, &err),
                     SQ_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.v[0].seq, 3);
    assert_int_equal(r.v[1].seq, 5);
    recs_free(&r);
    user_events(st, "a", 0, 0, &r);
    assert_int_equal(r.n, 0);

    /* the callback stops the walk */
    r.stop_at = 2;
    all_events(st, &r);
    assert_int_equal(r.n, 2);
    recs_free(&r);

    /* refused calls store nothing */
    assert_int_equal(sq_store_append(st, ev, 0, &first, &err), SQ_ERR_ARG);
    sq_store_event bad = ev[0];
    bad.item = NULL;
    assert_int_equal(sq_store_append(st, &bad, 1, &first, &err), SQ_ERR_ARG);
    assert_non_null(strstr(err.msg, "item"));
    sq_alloc_fail_after(0);
    assert_int_equal(sq_store_append(st, ev, 3, &first, &err), SQ_ERR_NOMEM);
    sq_alloc_fail_after(-1);
    assert_int_equal(sq_store_count(st), 7);
    assert_int_equal(sq_store_last_seq(st), 7);
    all_events(st, &r);
    assert_int_equal(r.n, 7);
    recs_free(&r);
    assert_int_equal(sq_store_check(st, &err), SQ_OK);
    sq_store_close(st);
}

/* ===================================== after and limit ==================================== */

static void test_after_limit(void **state) {
    (void)state;
    sq_store *st = open_store(test_tmp("limit.db"), 1, 1, 0);
    /* u1 gets seqs 1, 3, ..., 19 (ts 0..9), u2 seqs 2, 4, ..., 20 */
    for (int i = 0; i < 10; i++) {
        assert_int_equal(append1(st, "u1", "a", i), 2 * i + 1);
        assert_int_equal(append1(st, "u2", "b", 100 + i), 2 * i + 2);
    }
    recs r = {0};
    user_events(st, "u1", 5, 0, &r); /* after seq 5: 7, 9, ..., 19 */
    assert_int_equal(r.n, 7);
    for (size_t i = 0; i < r.n; i++) {
        assert_int_equal(r.v[i].seq, 7 + 2 * (int64_t)i);
        assert_int_equal(r.v[i].ts, 3 + (int64_t)i);
        assert_string_equal(r.v[i].user, "u1");
    }
    recs_free(&r);
    user_events(st, "u1", 5, 3, &r); /* the 3 most recent, oldest first */
    assert_int_equal(r.n, 3);
    assert_int_equal(r.v[0].seq, 15);
    assert_int_equal(r.v[1].seq, 17);
    assert_int_equal(r.v[2].seq, 19);
    recs_free(&r);
    user_events(st, "u1", 5, 100, &r);
    assert_int_equal(r.n, 7);
    assert_int_equal(r.v[0].seq, 7);
    recs_free(&r);
    user_events(st, "u1", 0, 1, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.v[0].seq, 19);
    recs_free(&r);
    user_events(st, "u1", 19, 0, &r);
    assert_int_equal(r.n, 0);
    user_events(st, "u3", 0, 0, &r);
    assert_int_equal(r.n, 0);

    /* events_since: every user, oldest first, the first `limit` */
    sq_error err = {0};
    assert_int_equal(sq_store_events_since(st, 4, 5, collect, &r, &err), SQ_OK);
    assert_int_equal(r.n, 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(r.v[i].seq, 5 + (int64_t)i);
    assert_string_equal(r.v[0].user, "u1");
    assert_string_equal(r.v[1].user, "u2");
    recs_free(&r);
    assert_int_equal(sq_store_events_since(st, 18, 0, collect, &r, &err), SQ_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.v[0].seq, 19);
    assert_int_equal(r.v[1].seq, 20);
    recs_free(&r);
    sq_store_close(st);
}

/* ========================================= Delete ========================================= */

typedef struct {
    char v[8][16];
    int n;
} forgot;

static int forgot_one(void *ud, const char *user, size_t len) {
    forgot *f = ud;
    if (f->n < 8 && len < 16) {
        memcpy(f->v[f->n], user, len);
        f->v[f->n][len] = 0;
    }
    f->n++;
    return 0;
}

static void test_delete_user(void **state) {
    (void)state;
    sq_store *st = open_store(test_tmp("delete.db"), 1, 2, 0);
    for (int i = 0; i < 3; i++)
        append1(st, "u2", "x", i); /* seqs 1..3 */
    for (int i = 0; i < 2; i++)
        append1(st, "u3", "y", i); /* 4..5 */
    for (int i = 0; i < 5; i++)
        append1(st, "u1", "z", i); /* 6..10: the highest */
    assert_int_equal(sq_store_count(st), 10);
    sq_error err = {0};
    uint64_t deleted = 99;
    assert_int_equal(sq_store_delete_user(st, "u1", 2, &deleted, &err), SQ_OK);
    assert_int_equal(deleted, 5);
    assert_int_equal(sq_store_count(st), 5);
    assert_int_equal(sq_store_last_seq(st), 10);
    recs r = {0};
    user_events(st, "u1", 0, 0, &r);
    assert_int_equal(r.n, 0);
    user_events(st, "u2", 0, 0, &r);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.v[2].seq, 3);
    recs_free(&r);
    user_events(st, "u3", 0, 0, &r);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.v[0].seq, 4);
    recs_free(&r);
    /* a prefix of an id, or an unknown id, deletes nothing */
    assert_int_equal(sq_store_delete_user(st, "u", 1, &deleted, &err), SQ_OK);
    assert_int_equal(deleted, 0);
    assert_int_equal(sq_store_delete_user(st, "nobody", 6, NULL, &err), SQ_OK);
    assert_int_equal(sq_store_count(st), 5);
    /* every deleted id is remembered as forgotten, in id order, once */
    forgot f = {0};
    assert_int_equal(sq_store_forgotten(st, forgot_one, &f, &err), SQ_OK);
    assert_int_equal(f.n, 3);
    assert_string_equal(f.v[0], "nobody");
    assert_string_equal(f.v[1], "u");
    assert_string_equal(f.v[2], "u1");
    /* seqs are never reused, even those of the deleted top events */
    assert_int_equal(append1(st, "u1", "again", 42), 11);
    assert_int_equal(sq_store_count(st), 6);
    assert_int_equal(sq_store_last_seq(st), 11);
    all_events(st, &r);
    assert_int_equal(r.n, 6);
    assert_int_equal(r.v[5].seq, 11);
    assert_string_equal(r.v[5].item, "again");
    recs_free(&r);
    assert_int_equal(sq_store_delete_user(st, NULL, 0, NULL, &err), SQ_ERR_ARG);
    sq_store_close(st);
}

/* ========================================== Items ========================================= */

typedef struct {
    int n;
    char id[8][32], tags[8][32], text[8][32];
    int tags_null[8], text_null[8];
} item_list;

static int collect_item(void *ud, const char *id, const char *tags, const char *text) {
    item_list *l = ud;
    if (l->n == 8)
        return 1;
    snprintf(l->id[l->n], 32, "%s", id);
    snprintf(l->tags[l->n], 32, "%s", tags ? tags : "");
    snprintf(l->text[l->n], 32, "%s", text ? text : "");
    l->tags_null[l->n] = !tags;
    l->text_null[l->n] = !text;
    l->n++;
    return 0;
}

static void test_items(void **state) {
    (void)state;
    sq_store *st = open_store(test_tmp("items.db"), 1, 2, 0);
    sq_error err = {0};
    assert_int_equal(sq_store_put_item(st, "b", 1, "[\"x\"]", "B", &err), SQ_OK);
    assert_int_equal(sq_store_put_item(st, "a", 1, NULL, NULL, &err), SQ_OK);
    assert_int_equal(sq_store_put_item(st, "c", 1, "[]", "C text", &err), SQ_OK);
    assert_int_equal(sq_store_put_item(st, "a bX", 3, "[\"s\"]", NULL, &err), SQ_OK); /* "a b" */
    item_list l = {0};
    assert_int_equal(sq_store_items(st, collect_item, &l, &err), SQ_OK);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.id[0], "a");
    assert_true(l.tags_null[0] && l.text_null[0]);
    assert_string_equal(l.id[1], "a b");
    assert_string_equal(l.tags[1], "[\"s\"]");
    assert_true(l.text_null[1]);
    assert_string_equal(l.id[2], "b");
    assert_string_equal(l.tags[2], "[\"x\"]");
    assert_string_equal(l.text[2], "B");
    assert_string_equal(l.id[3], "c");
    assert_string_equal(l.tags[3], "[]");
    assert_string_equal(l.text[3], "C text");
    /* replace: the new values win, the count stays */
    assert_int_equal(sq_store_put_item(st, "a", 1, "[\"new\"]", "A2", &err), SQ_OK);
    memset(&l, 0, sizeof l);
    assert_int_equal(sq_store_items(st, collect_item, &l, &err), SQ_OK);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.id[0], "a");
    assert_string_equal(l.tags[0], "[\"new\"]");
    assert_string_equal(l.text[0], "A2");
    assert_false(l.tags_null[0] || l.text_null[0]);
    assert_int_equal(sq_store_put_item(st, NULL, 0, NULL, NULL, &err), SQ_ERR_ARG);
    assert_int_equal(sq_store_count(st), 0); /* items are not events */
    sq_store_close(st);
}

/* ====================================== Group commit ====================================== */

enum { GC_THREADS = 8, GC_READERS = 2 };

typedef struct {
    sq_store *st;
    int t, appends;
    int64_t *first; /* [appends] */
    int *n;         /* [appends] */
    int failures;   /* appends that did not return SQ_OK */
} gc_writer;

static void *gc_write(void *p) {
    gc_writer *w = p;
    sq_rng rng = sq_rng_derive(1234, (uint64_t)w->t);
    char user[16], items[3][48];
    snprintf(user, sizeof user, "t%d", w->t);
    for (int k = 0; k < w->appends; k++) {
        sq_store_event ev[3];
        w->n[k] = 1 + (int)sq_rng_below(&rng, 3);
        for (int e = 0; e < w->n[k]; e++) {
            snprintf(items[e], sizeof items[e], "t%d-k%d-e%d", w->t, k, e);
            ev[e] = plain(user, items[e], k);
        }
        sq_error err = {0};
        if (sq_store_append(w->st, ev, (size_t)w->n[k], &w->first[k], &err) != SQ_OK)
            w->failures++;
    }
    return NULL;
}

typedef struct {
    sq_store *st;
    _Atomic int *stop;
    int bad;      /* reads that failed or came out of order */
    int64_t prev; /* last seq seen in the current read */
    long reads;
} gc_reader;

static int gc_check_order(void *ud, int64_t seq, const sq_store_event *e) {
    gc_reader *r = ud;
    (void)e;
    if (seq <= r->prev)
        r->bad++;
    r->prev = seq;
    return 0;
}

static void *gc_read(void *p) {
    gc_reader *r = p;
    sq_error err = {0};
    while (!*r->stop) {
        r->prev = 0;
        if (sq_store_user_events(r->st, "t3", 2, 0, 20, gc_check_order, r, &err))
            r->bad++;
        r->prev = 0;
        if (sq_store_events_since(r->st, sq_store_last_seq(r->st) - 50, 0, gc_check_order, r, &err))
            r->bad++;
        r->reads++;
    }
    return NULL;
}

static void group_commit(const char *name, int appends, uint32_t max_batch) {
    sq_store *st = open_store(test_tmp(name), 1, 1, max_batch);
    gc_writer w[GC_THREADS];
    gc_reader rd[GC_READERS];
    pthread_t wt[GC_THREADS], rt[GC_READERS];
    _Atomic int stop = 0;
    for (int i = 0; i < GC_READERS; i++) {
        rd[i] = (gc_reader){.st = st, .stop = &stop};
        assert_int_equal(pthread_create(&rt[i], NULL, gc_read, &rd[i]), 0);
    }
    for (int t = 0; t < GC_THREADS; t++) {
        w[t] = (gc_writer){.st = st, .t = t, .appends = appends};
        w[t].first = calloc((size_t)appends, sizeof *w[t].first);
        w[t].n = calloc((size_t)appends, sizeof *w[t].n);
        assert_int_equal(pthread_create(&wt[t], NULL, gc_write, &w[t]), 0);
    }
    int64_t total = 0;
    for (int t = 0; t < GC_THREADS; t++) {
        pthread_join(wt[t], NULL);
        assert_int_equal(w[t].failures, 0);
        for (int k = 0; k < appends; k++)
            total += w[t].n[k];
    }
    stop = 1;
    for (int i = 0; i < GC_READERS; i++) {
        pthread_join(rt[i], NULL);
        assert_int_equal(rd[i].bad, 0);
        assert_true(rd[i].reads > 0);
    }
    assert_int_equal(sq_store_count(st), total);
    assert_int_equal(sq_store_last_seq(st), total);

    /* seqs are exactly 1..total, and every append's events sit at first..first+n-1 */
    recs r = {0};
    all_events(st, &r);
    assert_int_equal(r.n, total);
    for (size_t i = 0; i < r.n; i++)
        assert_int_equal(r.v[i].seq, (int64_t)i + 1);
    char user[16], item[48];
    for (int t = 0; t < GC_THREADS; t++) {
        snprintf(user, sizeof user, "t%d", t);
        for (int k = 0; k < appends; k++) {
            for (int e = 0; e < w[t].n[k]; e++) {
                int64_t seq = w[t].first[k] + e;
                assert_in_range(seq, 1, total);
                rec *x = &r.v[seq - 1];
                snprintf(item, sizeof item, "t%d-k%d-e%d", t, k, e);
                assert_string_equal(x->user, user);
                assert_string_equal(x->item, item);
                assert_int_equal(x->ts, k);
            }
        }
        free(w[t].first);
        free(w[t].n);
    }
    recs_free(&r);
    sq_error err = {0};
    assert_int_equal(sq_store_check(st, &err), SQ_OK);
    sq_store_close(st);
}

static void test_group_commit(void **state) {
    (void)state;
    group_commit("group.db", 500, 0);
}

/* max_batch 2: batches are cut, and a 3-event append (over the bound) still commits whole. */
static void test_group_commit_small_batch(void **state) {
    (void)state;
    group_commit("group2.db", 100, 2);
}

/* ===================================== Failed commits ===================================== */

/* A trigger (added behind the store's back) makes every insert of item "poison" fail, so the
 * transaction holding it fails: its append gets SQ_ERR_IO and stores nothing, and appends that
 * shared its batch are retried alone and succeed. */
enum { FAIL_THREADS = 4, FAIL_APPENDS = 150 };

typedef struct {
    sq_store *st;
    int t;
    int ok_events;  /* events of appends that returned SQ_OK */
    int unexpected; /* a poisoned append that succeeded, a clean one that failed, a bad message */
} fail_writer;

static void *fail_write(void *p) {
    fail_writer *w = p;
    char user[16], item0[48];
    snprintf(user, sizeof user, "f%d", w->t);
    for (int k = 0; k < FAIL_APPENDS; k++) {
        int poisoned = (k + w->t) % 7 == 0;
        snprintf(item0, sizeof item0, "f%d-k%d", w->t, k);
        sq_store_event ev[2] = {plain(user, item0, k), plain(user, poisoned ? "poison" : "ok", k)};
        sq_error err = {0};
        sq_status rc = sq_store_append(w->st, ev, 2, NULL, &err);
        if (poisoned) {
            if (rc != SQ_ERR_IO || !strstr(err.msg, "poisoned"))
                w->unexpected++;
        } else if (rc != SQ_OK) {
            w->unexpected++;
        } else {
            w->ok_events += 2;
        }
    }
    return NULL;
}

static void test_failed_commit(void **state) {
    (void)state;
    const char *path = test_tmp("fail.db");
    sq_store *st = open_store(path, 1, 1, 0);
    assert_int_equal(append1(st, "a", "fine", 1), 1);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TRIGGER poison BEFORE INSERT ON events"
                                  " WHEN NEW.item = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned');"
                                  " END",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);

    /* alone: the first event of the call is not stored either */
    sq_store_event ev[2] = {plain("a", "first", 2), plain("a", "poison", 2)};
    sq_error err = {0};
    int64_t first = -1;
    assert_int_equal(sq_store_append(st, ev, 2, &first, &err), SQ_ERR_IO);
    assert_non_null(strstr(err.msg, "poisoned"));
    assert_non_null(strstr(err.msg, "fail.db"));
    assert_int_equal(first, -1);
    assert_int_equal(sq_store_count(st), 1);
    assert_int_equal(sq_store_last_seq(st), 1);
    assert_int_equal(append1(st, "a", "after", 3), 2);

    /* in company: only the poisoned appends fail */
    fail_writer w[FAIL_THREADS];
    pthread_t th[FAIL_THREADS];
    for (int t = 0; t < FAIL_THREADS; t++) {
        w[t] = (fail_writer){.st = st, .t = t};
        assert_int_equal(pthread_create(&th[t], NULL, fail_write, &w[t]), 0);
    }
    uint64_t ok = 2;
    for (int t = 0; t < FAIL_THREADS; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(w[t].unexpected, 0);
        ok += (uint64_t)w[t].ok_events;
    }
    assert_int_equal(sq_store_count(st), ok);
    recs r = {0};
    all_events(st, &r);
    assert_int_equal(r.n, ok);
    for (size_t i = 0; i < r.n; i++) {
        assert_string_not_equal(r.v[i].item, "poison");
        if (i > 0)
            assert_true(r.v[i].seq > r.v[i - 1].seq);
    }
    assert_int_equal(sq_store_last_seq(st), r.v[r.n - 1].seq);
    recs_free(&r);
    sq_store_close(st);
}

/* ==================================== Reopen and files ==================================== */

static void test_reopen(void **state) {
    (void)state;
    const char *path = test_tmp("reopen.db");
    sq_store *st = open_store(path, 1, 0, 0);
    sq_error err = {0};
    char item[16];
    for (int i = 0; i < 12; i++) {
        snprintf(item, sizeof item, "i%d", i);
        append1(st, i % 3 == 2 ? "gone" : "kept", item, i);
    }
    append1(st, "gone", "top", 99); /* seq 13, deleted below */
    assert_int_equal(sq_store_put_item(st, "i1", 2, "[\"t\"]", "one", &err), SQ_OK);
    uint64_t deleted = 0;
    assert_int_equal(sq_store_delete_user(st, "gone", 4, &deleted, &err), SQ_OK);
    assert_int_equal(deleted, 5);
    sq_store_close(st);

    st = open_store(path, 1, 0, 0);
    assert_int_equal(sq_store_count(st), 8);
    assert_int_equal(sq_store_last_seq(st), 13); /* the highest seq ever given, not present */
    recs r = {0};
    all_events(st, &r);
    assert_int_equal(r.n, 8);
    for (size_t i = 0, j = 0; i < 12; i++) {
        if (i % 3 == 2)
            continue;
        snprintf(item, sizeof item, "i%zu", i);
        assert_int_equal(r.v[j].seq, (int64_t)i + 1);
        assert_string_equal(r.v[j].user, "kept");
        assert_string_equal(r.v[j].item, item);
        assert_int_equal(r.v[j].ts, (int64_t)i);
        j++;
    }
    recs_free(&r);
    item_list l = {0};
    assert_int_equal(sq_store_items(st, collect_item, &l, &err), SQ_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.id[0], "i1");
    assert_string_equal(l.text[0], "one");
    assert_int_equal(append1(st, "kept", "next", 100), 14);
    sq_store_close(st);
}

/* Makes a database of someone else: user_version v and one table. */
static void foreign_db(const char *path, int version) {
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char sql[128];
    snprintf(sql, sizeof sql,
             "PRAGMA user_version = %d; CREATE TABLE t(x); INSERT INTO t VALUES(1);", version);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void assert_journal_delete(const char *path) {
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "delete");
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static void test_foreign_files(void **state) {
    (void)state;
    sq_store *st = (sq_store *)&st; /* must come back NULL */
    sq_error err = {0};

    const char *v7 = test_tmp("v7.db");
    foreign_db(v7, 7);
    assert_int_equal(sq_store_open(&st, v7, NULL, &err), SQ_ERR_FORMAT);
    assert_null(st);
    assert_non_null(strstr(err.msg, "v7.db"));
    assert_non_null(strstr(err.msg, "version 7"));
    assert_journal_delete(v7); /* refused before anything was changed */

    const char *v0 = test_tmp("v0.db");
    foreign_db(v0, 0);
    assert_int_equal(sq_store_open(&st, v0, NULL, &err), SQ_ERR_FORMAT);
    assert_null(st);

    const char *junk = test_tmp("junk.db");
    char bytes[16384];
    sq_rng rng;
    sq_rng_seed(&rng, 7);
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (char)sq_rng_below(&rng, 256);
    test_write_file(junk, bytes, sizeof bytes);
    assert_int_equal(sq_store_open(&st, junk, NULL, &err), SQ_ERR_IO);
    assert_null(st);
    assert_non_null(strstr(err.msg, "junk.db"));

    const char *nodir = test_tmp("no/such/dir/x.db");
    assert_int_equal(sq_store_open(&st, nodir, NULL, &err), SQ_ERR_IO);
    assert_null(st);
    assert_non_null(strstr(err.msg, "no/such/dir/x.db"));
}

/* ==================================== Crash durability ==================================== */

enum { CRASH_THREADS = 3 };

typedef struct {
    int64_t first_seq; /* seq of the append's first event */
    int32_t t, k, n;   /* thread, its append number, events in it */
    int32_t pad;
} ack;

typedef struct {
    sq_store *st;
    int fd, t;
} crash_arg;

/* Child: appends forever; an ack goes down the pipe only after append returned SQ_OK. */
static void *crash_write(void *p) {
    crash_arg *a = p;
    char user[16], items[3][48];
    snprintf(user, sizeof user, "c%d", a->t);
    for (int k = 0;; k++) {
        sq_store_event ev[3];
        int n = 1 + k % 3;
        for (int e = 0; e < n; e++) {
            snprintf(items[e], sizeof items[e], "c%d-k%d-e%d", a->t, k, e);
            ev[e] = plain(user, items[e], k);
            ev[e].value = k + 0.5;
        }
        sq_error err = {0};
        ack x = {.t = a->t, .k = k, .n = n};
        if (sq_store_append(a->st, ev, (size_t)n, &x.first_seq, &err) != SQ_OK)
            _exit(3);
        if (write(a->fd, &x, sizeof x) != (ssize_t)sizeof x)
            _exit(4); /* < PIPE_BUF: atomic */
    }
    return NULL;
}

static void crash_child(const char *path, int fd) {
    sq_store *st = NULL;
    sq_error err = {0};
    if (sq_store_open(&st, path, NULL, &err) != SQ_OK)
        _exit(2); /* synchronous = FULL */
    crash_arg a[CRASH_THREADS];
    pthread_t th[CRASH_THREADS];
    for (int t = 0; t < CRASH_THREADS; t++) {
        a[t] = (crash_arg){.st = st, .fd = fd, .t = t};
        if (pthread_create(&th[t], NULL, crash_write, &a[t]))
            _exit(5);
    }
    for (int t = 0; t < CRASH_THREADS; t++)
        pthread_join(th[t], NULL);
    _exit(6);
}

/* Reads one whole ack; 0 at end of file. */
static int read_ack(int fd, ack *x) {
    size_t got = 0;
    while (got < sizeof *x) {
        ssize_t r = read(fd, (char *)x + got, sizeof *x - got);
        if (r <= 0) {
            assert_int_equal(got, 0); /* no torn ack */
            return 0;
        }
        got += (size_t)r;
    }
    return 1;
}

static void crash_run(const char *name, size_t min_acks, long delay_us) {
    const char *path = test_tmp(name);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        crash_child(path, fds[1]);
    }
    close(fds[1]);
    size_t n = 0, cap = 1024;
    ack *acks = malloc(cap * sizeof *acks);
    while (n < min_acks) {
        if (!read_ack(fds[0], &acks[n])) {
            int status = 0;
            waitpid(pid, &status, 0);
            fprintf(stderr, "crash child ended early: status %d\n", status);
            fail();
        }
        n++;
    }
    struct timespec d = {.tv_sec = delay_us / 1000000, .tv_nsec = (delay_us % 1000000) * 1000};
    nanosleep(&d, NULL);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    /* whatever reached the pipe was acknowledged before the kill */
    for (;;) {
        if (n == cap)
            acks = realloc(acks, (cap *= 2) * sizeof *acks);
        if (!read_ack(fds[0], &acks[n]))
            break;
        n++;
    }
    close(fds[0]);
    assert_true(n >= min_acks);

    sq_store *st = open_store(path, 0, 1, 0);
    sq_error err = {0};
    assert_int_equal(sq_store_check(st, &err), SQ_OK);
    recs r = {0};
    all_events(st, &r);
    assert_int_equal(sq_store_count(st), r.n);
    assert_true(r.n > 0);
    assert_int_equal(sq_store_last_seq(st), r.v[r.n - 1].seq);
    char user[16], item[48];
    for (size_t i = 0; i < n; i++) {
        snprintf(user, sizeof user, "c%d", acks[i].t);
        for (int e = 0; e < acks[i].n; e++) {
            int64_t seq = acks[i].first_seq + e;
            size_t lo = 0, hi = r.n; /* binary search: r is in seq order */
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (r.v[mid].seq < seq)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            assert_true(lo < r.n);
            assert_int_equal(r.v[lo].seq, seq);
            snprintf(item, sizeof item, "c%d-k%d-e%d", acks[i].t, acks[i].k, e);
            assert_string_equal(r.v[lo].user, user);
            assert_string_equal(r.v[lo].item, item);
            assert_true(r.v[lo].value == acks[i].k + 0.5);
        }
    }
    recs_free(&r);
    free(acks);
    sq_store_close(st);
}

static void test_crash_durability(void **state) {
    (void)state;
    crash_run("crash1.db", 200, 0);
    crash_run("crash2.db", 300, 1500);
    crash_run("crash3.db", 400, 7000);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_fresh),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_after_limit),
        cmocka_unit_test(test_delete_user),
        cmocka_unit_test(test_items),
        cmocka_unit_test(test_group_commit),
        cmocka_unit_test(test_group_commit_small_batch),
        cmocka_unit_test(test_failed_commit),
        cmocka_unit_test(test_reopen),
        cmocka_unit_test(test_foreign_files),
        cmocka_unit_test(test_crash_durability),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
