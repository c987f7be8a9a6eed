/* test_kcore.c — the iterative k-core filter against a brute-force reference (recount every
 * degree each round, drop every event under a threshold, repeat) on random bipartite graphs
 * with many seeds and thresholds: the same events removed, the same counts of events, users,
 * items and rounds. Then through sq_ingest_write (report and dataset agree), and on the real
 * MovieLens-100K file when ../shared/data is present (counts checked with an independent
 * script: 5/5 keeps 99,287 events, 943 users, 1,349 items in 1 round). */
#include "testutil.h"

#include "builder.h"

#include "data/clean.h"
#include "seqrec/data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sq_ingest *builder(const sq_ingest_opts *o) {
    sq_ingest *g = NULL;
    sq_error err = {0};
    assert_int_equal(sq_ingest_create(&g, o, &err), SQ_OK);
    assert_int_equal(ingest_begin_file(g, "graph.txt", &err), SQ_OK);
    return g;
}

/* Appends (user, item) with time ts, behaviour "interact", line = its row number. */
static void add_pair(sq_ingest *g, const char *user, size_t ul, const char *item, size_t il,
                     int64_t ts) {
    tb_add_event(g, user, ul, item, il, ts, "interact", "", NAN, g->ev.n + 1, NULL);
}

typedef struct {
    uint64_t events, users, items;
    uint32_t rounds;
} ref_result;

/* The definition, literally: O(rounds × n). */
static void reference(const sq_ingest *g, uint8_t *dead, uint32_t ku, uint32_t ki, ref_result *r) {
    const sq_events *e = &g->ev;
    size_t nu = sq_strmap_count(g->users), ni = sq_strmap_count(g->items);
    uint32_t *du = calloc(nu, sizeof *du), *di = calloc(ni, sizeof *di);
    memset(r, 0, sizeof *r);
    uint64_t ub = 0, ib = 0, ua = 0, ia = 0;
    for (int pass = 0;; pass++) {
        memset(du, 0, nu * sizeof *du);
        memset(di, 0, ni * sizeof *di);
        for (size_t k = 0; k < e->n; k++)
            if (!dead[k]) {
                du[e->user[k]]++;
                di[e->item[k]]++;
            }
        if (pass == 0) {
            for (size_t u = 0; u < nu; u++)
                ub += du[u] > 0;
            for (size_t i = 0; i < ni; i++)
                ib += di[i] > 0;
        }
        uint64_t removed = 0;
        for (size_t k = 0; k < e->n; k++)
            if (!dead[k] && (du[e->user[k]] < ku || di[e->item[k]] < ki)) {
                dead[k] = CLEAN_KCORE;
                removed++;
            }
        if (!removed) {
            for (size_t u = 0; u < nu; u++)
                ua += du[u] > 0;
            for (size_t i = 0; i < ni; i++)
                ia += di[i] > 0;
            break;
        }
        r->rounds++;
        r->events += removed;
    }
    r->users = ub - ua;
    r->items = ib - ia;
    free(du);
    free(di);
}

static void random_graph(sq_ingest *g, sq_rng *r, size_t n, uint32_t nu, uint32_t ni) {
    for (size_t k = 0; k < n; k++) {
        char u[16], it[16];
        /* skewed: low ids far more common, so thresholds bite at different depths */
        uint32_t a = sq_rng_below(r, nu), b = sq_rng_below(r, ni);
        if (sq_rng_below(r, 2))
            a = sq_rng_below(r, a + 1);
        if (sq_rng_below(r, 2))
            b = sq_rng_below(r, b + 1);
        int ul = snprintf(u, sizeof u, "u%u", a), il = snprintf(it, sizeof it, "i%u", b);
        add_pair(g, u, (size_t)ul, it, (size_t)il, (int64_t)k);
    }
}

static void test_kcore_vs_reference(void **state) {
    (void)state;
    static const uint32_t th[][2] = {{0, 0}, {1, 1}, {2, 2},  {3, 1},  {1, 4},
                                     {5, 5}, {4, 7}, {10, 3}, {20, 20}};
    int rounds_seen = 0, emptied = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        sq_rng r;
        sq_rng_seed(&r, seed);
        size_t n = 1 + sq_rng_below(&r, 3000);
        uint32_t nu = 1 + sq_rng_below(&r, 300), ni = 1 + sq_rng_below(&r, 300);
        sq_ingest *g = builder(NULL);
        random_graph(g, &r, n, nu, ni);
        uint8_t *dead = malloc(n), *want = malloc(n);
        uint64_t *work = malloc(n * sizeof *work);
        for (size_t t = 0; t < 3 * sizeof th / sizeof *th; t++) {
            /* Each threshold pair by scanning only, peeling only, and half and half. */
            static const uint32_t scans[] = {100, 0, 2};
            clean_kcore_scan_rounds = scans[t % 3];
            /* Some events already dead (as duplicates would be): both must skip them. */
            for (size_t k = 0; k < n; k++)
                dead[k] = want[k] = (k % 17 == 5) ? CLEAN_DUP : CLEAN_KEPT;
            clean_kcore_result got;
            ref_result ref;
            sq_error err = {0};
            assert_int_equal(clean_kcore(g, dead, work, th[t / 3][0], th[t / 3][1], &got, &err),
                             SQ_OK);
            reference(g, want, th[t / 3][0], th[t / 3][1], &ref);
            assert_memory_equal(dead, want, n);
            assert_int_equal(got.events, ref.events);
            assert_int_equal(got.users, ref.users);
            assert_int_equal(got.items, ref.items);
            assert_int_equal(got.rounds, ref.rounds);
            rounds_seen += got.rounds > 1;
            uint64_t live = 0;
            for (size_t k = 0; k < n; k++)
                live += dead[k] == CLEAN_KEPT;
            emptied += live == 0;
        }
        free(dead);
        free(want);
        free(work);
        sq_ingest_free(g);
    }
    clean_kcore_scan_rounds = 6;
    assert_true(rounds_seen > 20); /* the cases do cascade over several rounds */
    assert_true(emptied > 0);      /* and some empty out completely */
}

/* A chain where each round peels one more layer: rounds must count them exactly. */
static void test_kcore_chain(void **state) {
    (void)state;
    sq_ingest *g = builder(NULL);
    /* User k rates items k and k + 1 (k = 0..5): every user has 2 events, items i1..i5 have
     * 2, the ends i0 and i6 only 1. */
    for (int k = 0; k < 6; k++) {
        char u[8], a[8], b[8];
        snprintf(u, sizeof u, "u%d", k);
        snprintf(a, sizeof a, "i%d", k);
        snprintf(b, sizeof b, "i%d", k + 1);
        add_pair(g, u, strlen(u), a, strlen(a), 2 * k);
        add_pair(g, u, strlen(u), b, strlen(b), 2 * k + 1);
    }
    size_t n = g->ev.n;
    uint8_t dead[12] = {0};
    uint64_t work[12];
    /* round 1: i0 and i6 (one event each) → round 2: u0, u5 → 3: i1, i5 → 4: u1, u4 →
     * 5: i2, i4 → 6: u2, u3 (i3's two events are theirs). Scanning, peeling, or both. */
    for (uint32_t sc = 0; sc < 8; sc++) {
        clean_kcore_scan_rounds = sc;
        clean_kcore_result res;
        sq_error err = {0};
        memset(dead, 0, sizeof dead);
        assert_int_equal(clean_kcore(g, dead, work, 2, 2, &res, &err), SQ_OK);
        assert_int_equal(res.events, n); /* everything goes */
        assert_int_equal(res.users, 6);
        assert_int_equal(res.items, 7);
        assert_int_equal(res.rounds, 6);
    }
    clean_kcore_scan_rounds = 6;
    sq_ingest_free(g);
}

/* Through sq_ingest_write: the report and the dataset agree with the reference. */
static void test_kcore_write(void **state) {
    (void)state;
    for (uint64_t seed = 100; seed < 106; seed++) {
        sq_rng r;
        sq_rng_seed(&r, seed);
        sq_ingest_opts o = {0};
        o.min_user_events = 3;
        o.min_item_events = 3;
        sq_ingest *g = builder(&o);
        random_graph(g, &r, 2000, 150, 150);
        size_t n = g->ev.n;
        uint8_t *want = calloc(n, 1);
        ref_result ref;
        reference(g, want, 3, 3, &ref);
        uint64_t live = 0;
        for (size_t k = 0; k < n; k++)
            live += want[k] == CLEAN_KEPT;
        /* Every (user, item, time) is distinct: no duplicate interferes. */
        sq_error err = {0};
        const char *out = test_tmp("kcore.sqd");
        assert_int_equal(sq_ingest_write(g, out, &err), SQ_OK);
        const sq_ingest_report *rep = sq_ingest_get_report(g);
        assert_int_equal(rep->kcore_events, ref.events);
        assert_int_equal(rep->kcore_users, ref.users);
        assert_int_equal(rep->kcore_items, ref.items);
        assert_int_equal(rep->kcore_rounds, ref.rounds);
        assert_int_equal(rep->kept, live);
        assert_int_equal(rep->rows_read, rep->kept + rep->kcore_events);
        sq_dataset *d = NULL;
        assert_int_equal(sq_data_open(&d, out, &err), SQ_OK);
        assert_int_equal(sq_data_info_of(d)->n_events, live);
        /* Every user and item of the dataset meets the thresholds. */
        const sq_data_info *in = sq_data_info_of(d);
        const uint64_t *off = sq_data_offsets(d);
        uint32_t *cnt = calloc(in->n_items, sizeof *cnt);
        for (uint32_t u = 0; u < in->n_users; u++)
            assert_true(off[u + 1] - off[u] >= 3);
        for (uint64_t k = 0; k < in->n_events; k++)
            cnt[sq_data_items(d)[k]]++;
        for (uint32_t i = 0; i < in->n_items; i++)
            assert_true(cnt[i] >= 3);
        free(cnt);
        sq_data_close(d);
        free(want);
        sq_ingest_free(g);
    }
}

/* MovieLens-100K (RecBole atomic file), read here with a few lines of parsing. */
static void test_kcore_ml100k(void **state) {
    (void)state;
    const char *path = test_data_path("ml-100k/ml-100k.inter");
    if (!path) {
        print_message("skipped: ml-100k/ml-100k.inter not found under $SEQREC_DATA\n");
        skip();
    }
    size_t len;
    char *text = test_read_file(path, &len);
    assert_non_null(text);
    static const struct {
        uint32_t k;
        uint64_t events, users, items;
        uint32_t rounds;
    } want[] = {{5, 99287, 943, 1349, 1}, {30, 86295, 720, 795, 4}};
    for (size_t w = 0; w < 2; w++) {
        sq_ingest_opts o = {0};
        o.min_user_events = o.min_item_events = want[w].k;
        sq_ingest *g = builder(&o);
        char *p = strchr(text, '\n') + 1; /* header */
        while (*p) {
            char *u = p, *t1 = strchr(u, '\t'), *it = t1 + 1, *t2 = strchr(it, '\t');
            char *rt = t2 + 1, *t3 = strchr(rt, '\t'), *nl = strchr(t3 + 1, '\n');
            add_pair(g, u, (size_t)(t1 - u), it, (size_t)(t2 - it), atoll(t3 + 1));
            g->ev.value[g->ev.n - 1] = (float)atof(rt);
            p = nl ? nl + 1 : t3 + strlen(t3);
        }
        assert_int_equal(g->ev.n, 100000);
        g->have_real_time = g->have_values = 1;
        sq_error err = {0};
        assert_int_equal(sq_ingest_write(g, test_tmp("ml100k.sqd"), &err), SQ_OK);
        const sq_ingest_report *rep = sq_ingest_get_report(g);
        assert_int_equal(rep->kept, want[w].events);
        assert_int_equal(rep->kcore_rounds, want[w].rounds);
        assert_int_equal(rep->rejected[SQ_REJ_DUPLICATE], 0);
        sq_dataset *d = NULL;
        assert_int_equal(sq_data_open(&d, test_tmp("ml100k.sqd"), &err), SQ_OK);
        assert_int_equal(sq_data_info_of(d)->n_users, want[w].users);
        assert_int_equal(sq_data_info_of(d)->n_items, want[w].items);
        assert_int_equal(sq_data_info_of(d)->time_min, 874724710);
        sq_data_close(d);
        sq_ingest_free(g);
    }
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kcore_vs_reference),
        cmocka_unit_test(test_kcore_chain),
        cmocka_unit_test(test_kcore_write),
        cmocka_unit_test(test_kcore_ml100k),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
