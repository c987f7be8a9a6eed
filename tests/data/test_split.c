/* test_split.c — leave-one-out, temporal and k-fold splits: exact positions on small hand-made
 * datasets, and the invariants on random ones (train_end ≤ valid_end ≤ length; temporal:
 * training times < t_valid ≤ validation times < t_test ≤ test times, an event at a cut time
 * belongs to the later part; k-fold: every user held out in exactly one fold, deterministic by
 * seed; never a test event before one of the same user's training events). */
#include "testutil.h"

#include "builder.h"

#include "data/ingest.h"
#include "seqrec/data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_ev(sq_ingest *g, const char *user, const char *item, int64_t ts) {
    tb_add_event(g, user, strlen(user), item, strlen(item), ts, "view", "", NAN, g->ev.n + 1, NULL);
    g->have_real_time = 1;
}

/* Writes g (freed) to a temporary .sqd and opens it. */
static sq_dataset *finish(sq_ingest *g, const char *name) {
    sq_error err = {0};
    const char *out = test_tmp(name);
    if (sq_ingest_write(g, out, &err))
        fail_msg("write: %s", err.msg);
    sq_ingest_free(g);
    sq_dataset *d = NULL;
    if (sq_data_open(&d, out, &err))
        fail_msg("open: %s", err.msg);
    return d;
}

static sq_ingest *builder(void) {
    sq_ingest *g = NULL;
    sq_error err = {0};
    assert_int_equal(sq_ingest_create(&g, NULL, &err), SQ_OK);
    return g;
}

/* Users a..d with 1, 2, 3 and 5 events; times 1..11 in this order. */
static sq_dataset *small(void) {
    sq_ingest *g = builder();
    static const char *users[] = {"a", "b", "b", "c", "c", "c", "d", "d", "d", "d", "d"};
    for (int k = 0; k < 11; k++) {
        char it[8];
        snprintf(it, sizeof it, "i%d", k % 4);
        add_ev(g, users[k], it, k + 1);
    }
    return finish(g, "small.sqd");
}

/* The invariants every split keeps. */
static void check_common(const sq_dataset *d, const sq_split *s) {
    const uint64_t *off = sq_data_offsets(d);
    const int64_t *t = sq_data_times(d);
    assert_int_equal(s->n_users, sq_data_info_of(d)->n_users);
    for (uint32_t u = 0; u < s->n_users; u++) {
        uint32_t len = (uint32_t)(off[u + 1] - off[u]);
        assert_true(s->train_end[u] <= s->valid_end[u]);
        assert_true(s->valid_end[u] <= len);
        /* No test (or validation) event earlier than one of the user's training events. */
        if (s->train_end[u] > 0 && s->train_end[u] < len)
            assert_true(t[off[u] + s->train_end[u] - 1] <= t[off[u] + s->train_end[u]]);
        if (s->valid_end[u] > 0 && s->valid_end[u] < len)
            assert_true(t[off[u] + s->valid_end[u] - 1] <= t[off[u] + s->valid_end[u]]);
    }
}

static void test_loo(void **state) {
    (void)state;
    sq_dataset *d = small();
    sq_split s;
    sq_error err = {0};
    assert_int_equal(sq_split_loo(d, &s, &err), SQ_OK);
    assert_int_equal(s.kind, SQ_SPLIT_LOO);
    /* a (1 event), b (2): all training; c (3): 1 | 1 | 1; d (5): 3 | 1 | 1. */
    static const uint32_t te[] = {1, 2, 1, 3}, ve[] = {1, 2, 2, 4};
    for (int u = 0; u < 4; u++) {
        assert_int_equal(s.train_end[u], te[u]);
        assert_int_equal(s.valid_end[u], ve[u]);
    }
    check_common(d, &s);
    sq_split_free(&s);
    assert_null(s.train_end);
    sq_split_free(&s); /* twice is harmless */
    sq_split_free(NULL);
    sq_data_close(d);
}

static void test_temporal_exact(void **state) {
    (void)state;
    sq_dataset *d = small();
    sq_split s;
    sq_error err = {0};
    /* 11 events at times 1..11: t_valid = sorted[floor(11 · 0.6)] = sorted[6] = 7,
     * t_test = sorted[floor(11 · 0.8)] = sorted[8] = 9. */
    assert_int_equal(sq_split_temporal(d, 0.2, 0.2, &s, &err), SQ_OK);
    assert_int_equal(s.kind, SQ_SPLIT_TEMPORAL);
    assert_int_equal(s.t_valid, 7);
    assert_int_equal(s.t_test, 9);
    /* a: t1 train. b: t2, t3 train. c: t4..6 train. d: t7, t8 valid; t9..11 test. */
    static const uint32_t te[] = {1, 2, 3, 0}, ve[] = {1, 2, 3, 2};
    for (int u = 0; u < 4; u++) {
        assert_int_equal(s.train_end[u], te[u]);
        assert_int_equal(s.valid_end[u], ve[u]);
    }
    check_common(d, &s);
    sq_split_free(&s);
    /* Bad fractions. */
    assert_int_equal(sq_split_temporal(d, 0, 0.2, &s, &err), SQ_ERR_ARG);
    assert_int_equal(sq_split_temporal(d, 0.2, 1.0, &s, &err), SQ_ERR_ARG);
    assert_int_equal(sq_split_temporal(d, 0.5, 0.5, &s, &err), SQ_ERR_ARG);
    assert_int_equal(sq_split_temporal(d, NAN, 0.1, &s, &err), SQ_ERR_ARG);
    assert_null(s.train_end);
    sq_data_close(d);

    /* Ties at the cut go to the later part: every event at the same time is test. */
    sq_ingest *g = builder();
    for (int k = 0; k < 6; k++) {
        char it[8];
        snprintf(it, sizeof it, "i%d", k);
        add_ev(g, k % 2 ? "x" : "y", it, 500);
    }
    d = finish(g, "ties.sqd");
    assert_int_equal(sq_split_temporal(d, 0.2, 0.2, &s, &err), SQ_OK);
    assert_int_equal(s.t_valid, 500);
    assert_int_equal(s.t_test, 500);
    for (uint32_t u = 0; u < 2; u++) {
        assert_int_equal(s.train_end[u], 0);
        assert_int_equal(s.valid_end[u], 0);
    }
    sq_split_free(&s);
    sq_data_close(d);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static sq_dataset *random_dataset(uint64_t seed, const char *name) {
    sq_rng r;
    sq_rng_seed(&r, seed);
    sq_ingest *g = builder();
    size_t n = 100 + sq_rng_below(&r, 3000);
    uint32_t nu = 1 + sq_rng_below(&r, 200);
    for (size_t k = 0; k < n; k++) {
        char u[16], it[16];
        snprintf(u, sizeof u, "u%u", sq_rng_below(&r, nu));
        snprintf(it, sizeof it, "i%zu", k); /* distinct: no duplicates */
        add_ev(g, u, it, (int64_t)sq_rng_below(&r, 500));
    }
    return finish(g, name);
}

static void test_temporal_random(void **state) {
    (void)state;
    static const double fr[][2] = {{0.1, 0.1}, {0.2, 0.3}, {0.05, 0.01}, {0.45, 0.45}};
    for (uint64_t seed = 1; seed <= 10; seed++) {
        sq_dataset *d = random_dataset(seed, "trand.sqd");
        const sq_data_info *in = sq_data_info_of(d);
        const uint64_t *off = sq_data_offsets(d);
        const int64_t *t = sq_data_times(d);
        size_t n = (size_t)in->n_events;
        int64_t *sorted = malloc(n * sizeof *sorted);
        memcpy(sorted, t, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, cmp_i64);
        for (size_t f = 0; f < sizeof fr / sizeof *fr; f++) {
            sq_split s;
            sq_error err = {0};
            assert_int_equal(sq_split_temporal(d, fr[f][0], fr[f][1], &s, &err), SQ_OK);
            size_t kv = (size_t)(n * (1 - fr[f][0] - fr[f][1]) + 1e-9);
            size_t kt = (size_t)(n * (1 - fr[f][1]) + 1e-9);
            assert_int_equal(s.t_valid, sorted[kv < n ? kv : n - 1]);
            assert_int_equal(s.t_test, sorted[kt < n ? kt : n - 1]);
            check_common(d, &s);
            for (uint32_t u = 0; u < in->n_users; u++)
                for (uint64_t k = off[u]; k < off[u + 1]; k++) {
                    uint64_t p = k - off[u];
                    if (p < s.train_end[u])
                        assert_true(t[k] < s.t_valid);
                    else if (p < s.valid_end[u])
                        assert_true(t[k] >= s.t_valid && t[k] < s.t_test);
                    else
                        assert_true(t[k] >= s.t_test);
                }
            sq_split_free(&s);
        }
        free(sorted);
        sq_data_close(d);
    }
}

static void test_kfold(void **state) {
    (void)state;
    sq_dataset *d = random_dataset(7, "kfold.sqd");
    const sq_data_info *in = sq_data_info_of(d);
    const uint64_t *off = sq_data_offsets(d);
    uint32_t nu = in->n_users;
    assert_true(nu > 50);
    sq_error err = {0};
    sq_split s, s2;
    for (uint32_t k = 2; k <= 5; k++) {
        uint32_t *held = calloc(nu, sizeof *held);
        for (uint32_t f = 0; f < k; f++) {
            assert_int_equal(sq_split_kfold(d, k, f, 42, &s, &err), SQ_OK);
            assert_int_equal(s.kind, SQ_SPLIT_KFOLD);
            assert_int_equal(s.fold, f);
            assert_int_equal(s.n_folds, k);
            check_common(d, &s);
            uint32_t in_fold = 0;
            for (uint32_t u = 0; u < nu; u++) {
                uint32_t len = (uint32_t)(off[u + 1] - off[u]);
                if (s.train_end[u] == 0 && s.valid_end[u] == len - 1) {
                    held[u]++;
                    in_fold++;
                } else {
                    assert_int_equal(s.train_end[u], len);
                    assert_int_equal(s.valid_end[u], len);
                }
            }
            /* Round-robin dealing: fold sizes differ by at most one. */
            assert_true(in_fold == nu / k || in_fold == nu / k + 1);
            /* Same seed, same split. */
            assert_int_equal(sq_split_kfold(d, k, f, 42, &s2, &err), SQ_OK);
            assert_memory_equal(s.train_end, s2.train_end, nu * sizeof *s.train_end);
            assert_memory_equal(s.valid_end, s2.valid_end, nu * sizeof *s.valid_end);
            sq_split_free(&s2);
            sq_split_free(&s);
        }
        for (uint32_t u = 0; u < nu; u++)
            assert_int_equal(held[u], 1); /* disjoint and covering */
        free(held);
    }
    /* Another seed deals users differently. */
    assert_int_equal(sq_split_kfold(d, 2, 0, 42, &s, &err), SQ_OK);
    assert_int_equal(sq_split_kfold(d, 2, 0, 43, &s2, &err), SQ_OK);
    uint32_t differ = 0;
    for (uint32_t u = 0; u < nu; u++)
        differ += s.train_end[u] != s2.train_end[u];
    assert_true(differ > nu / 8);
    sq_split_free(&s);
    sq_split_free(&s2);
    assert_int_equal(sq_split_kfold(d, 1, 0, 1, &s, &err), SQ_ERR_ARG);
    assert_int_equal(sq_split_kfold(d, 3, 3, 1, &s, &err), SQ_ERR_ARG);
    sq_data_close(d);
}

static void test_split_nomem(void **state) {
    (void)state;
    sq_dataset *d = small();
    sq_split s;
    sq_error err = {0};
    for (long k = 0; k < 3; k++) {
        sq_alloc_fail_after(k);
        sq_status a = sq_split_loo(d, &s, &err);
        if (a == SQ_OK)
            sq_split_free(&s);
        sq_alloc_fail_after(k);
        sq_status b = sq_split_temporal(d, 0.1, 0.1, &s, &err);
        if (b == SQ_OK)
            sq_split_free(&s);
        sq_alloc_fail_after(k);
        sq_status c = sq_split_kfold(d, 2, 0, 1, &s, &err);
        if (c == SQ_OK)
            sq_split_free(&s);
        sq_alloc_fail_after(-1);
        if (k < 2) {
            assert_int_equal(a, SQ_ERR_NOMEM);
            assert_int_equal(b, SQ_ERR_NOMEM);
            assert_int_equal(c, SQ_ERR_NOMEM);
        } else {
            assert_int_equal(a, SQ_OK);
        }
    }
    sq_data_close(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loo),
        cmocka_unit_test(test_temporal_exact),
        cmocka_unit_test(test_temporal_random),
        cmocka_unit_test(test_kfold),
        cmocka_unit_test(test_split_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
