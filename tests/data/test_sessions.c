/* test_sessions.c — SR-GNN's session protocol (sq_split_sessions, src/data/split_sessions.c)
 * and its evaluation, one prediction per target (src/eval/per_target.c), on a hand-made log
 * whose parts, filtered sessions and metrics are worked out below. */
#include "testutil.h"

#include "builder.h"

#include "data/ingest.h"
#include "seqrec/eval.h"
#include "seqrec/model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { DAY = 86400 };
static const int64_t T0 = 1600000000;

/* Sessions (users) with items and times in days after T0; the latest event is at day 30, so
 * with 7 test and 7 validation days t_test = day 23 and t_valid = day 16.
 *   s0  A                 day 0.5            training
 *   s1  A B C             days 0, 0.1, 0.2   training
 *   s2  A B               days 1, 1          training
 *   s3  B C D             days 18, 19, 20    validation (D: no training event)
 *   s4  C A               days 22, 23        test (its last event is exactly at t_test)
 *   s5  A X B C           days 29 .. 30      test (X: no training event)
 *   s6  Y                 day 25             test, but no prediction (one event, unseen)
 * Training counts: A 3, B 2, C 1. */
static sq_dataset *build(int by_user) {
    static const struct {
        const char *s, *item;
        double day;
    } ev[] = {{"s0", "A", 0.5},  {"s1", "A", 0},    {"s1", "B", 0.1}, {"s1", "C", 0.2},
              {"s2", "A", 1},    {"s2", "B", 1},    {"s3", "B", 18},  {"s3", "C", 19},
              {"s3", "D", 20},   {"s4", "C", 22},   {"s4", "A", 23},  {"s5", "A", 29},
              {"s5", "X", 29.5}, {"s5", "B", 29.8}, {"s5", "C", 30},  {"s6", "Y", 25}};
    /* by_user: the same sessions as users u1 (s0, s1, s2 merge into one session; then s5),
     * u2 (s3, then s4) and u3 (s6), cut into sessions by a 1.5-day gap at ingest */
    static const char *const owner[] = {"u1", "u1", "u1", "u2", "u2", "u1", "u3"};
    sq_ingest_opts io = {.session_gap = by_user ? 3 * DAY / 2 : 0};
    sq_ingest *g = NULL;
    sq_error err = {0};
    assert_int_equal(sq_ingest_create(&g, &io, &err), SQ_OK);
    for (size_t k = 0; k < sizeof ev / sizeof *ev; k++) {
        const char *u = by_user ? owner[ev[k].s[1] - '0'] : ev[k].s;
        tb_add_event(g, u, strlen(u), ev[k].item, 1, T0 + (int64_t)(ev[k].day * DAY), "view", "",
                     NAN, k + 1, NULL);
    }
    g->have_real_time = 1;
    const char *out = test_tmp(by_user ? "users.sqd" : "sessions.sqd");
    if (sq_ingest_write(g, out, &err))
        fail_msg("write: %s", err.msg);
    sq_ingest_free(g);
    sq_dataset *d = NULL;
    if (sq_data_open(&d, out, &err))
        fail_msg("open: %s", err.msg);
    return d;
}

static sq_dataset *sessions(void) {
    return build(0);
}

static uint32_t user(const sq_dataset *d, const char *id) {
    uint32_t u = sq_data_find_user(d, id, strlen(id));
    assert_true(u < sq_data_info_of(d)->n_users);
    return u;
}

static void test_split(void **state) {
    (void)state;
    sq_dataset *d = sessions();
    sq_split s;
    sq_error err = {0};
    assert_int_equal(sq_split_sessions(d, 7, 7, &s, &err), SQ_OK);
    assert_int_equal(s.kind, SQ_SPLIT_SESSIONS);
    assert_int_equal(s.per_target, 1);
    assert_true(s.t_test == T0 + 23 * DAY && s.t_valid == T0 + 16 * DAY);
    static const char *ids[] = {"s0", "s1", "s2", "s3", "s4", "s5", "s6"};
    static const uint32_t te[] = {1, 3, 2, 0, 0, 0, 0}, ve[] = {1, 3, 2, 3, 0, 0, 0};
    for (int k = 0; k < 7; k++) {
        uint32_t u = user(d, ids[k]);
        assert_int_equal(s.train_end[u], te[k]);
        assert_int_equal(s.valid_end[u], ve[k]);
    }
    const char *seen = "ABC", *unseen = "DXY";
    for (int k = 0; k < 3; k++) {
        assert_int_equal(s.seen[sq_data_find_item(d, seen + k, 1)], 1);
        assert_int_equal(s.seen[sq_data_find_item(d, unseen + k, 1)], 0);
    }
    sq_split m;
    assert_int_equal(sq_split_make(d, "sessions", 0, 1, &m, &err), SQ_OK); /* 7 and 7 days */
    assert_memory_equal(m.train_end, s.train_end, 7 * sizeof *s.train_end);
    assert_memory_equal(m.valid_end, s.valid_end, 7 * sizeof *s.valid_end);
    sq_split_free(&m);
    sq_split_free(&s);
    assert_null(s.seen);
    assert_int_equal(sq_split_sessions(d, 0, 7, &s, &err), SQ_ERR_ARG);
    assert_non_null(strstr(err.msg, "days"));
    sq_data_close(d);
}

/* Popularity (A 3, B 2, C 1, the rest 0) ranks the same list for every prefix, so the
 * metrics of each prediction follow from the counts:
 *   test:  s4: A from [C]        rank 1
 *          s5 (X dropped): B from [A]     rank 2;   C from [A, B]   rank 3 (A and B, the
 *                session's own items, stay candidates)
 *          s6: nothing.   HR@1 = 1/3, HR@5 = 1, MRR@20 = (1 + 1/2 + 1/3) / 3, 2 users
 *   valid: s3 (D dropped): C from [B]   rank 3: MRR@20 = 1/3 */
static void test_evaluate(void **state) {
    (void)state;
    sq_dataset *d = sessions();
    sq_split s;
    sq_error err = {0};
    assert_int_equal(sq_split_sessions(d, 7, 7, &s, &err), SQ_OK);
    sq_model *m = NULL;
    assert_int_equal(sq_model_create(&m, "pop", NULL, d, 1, &err), SQ_OK);
    assert_int_equal(m->ops->fit(m, d, &s, NULL, &err), SQ_OK);
    sq_eval_opts o = {.k = {1, 5, 20}, .n_k = 3};
    sq_eval_result r;
    assert_int_equal(sq_evaluate(m, d, &s, &o, &r, &err), SQ_OK);
    assert_int_equal(r.targets, 3);
    assert_int_equal(r.users, 2);
    assert_float_equal(r.m[0][SQ_M_HR].mean, 1.0 / 3, 1e-9);
    assert_float_equal(r.m[1][SQ_M_HR].mean, 1.0, 1e-9);
    assert_float_equal(r.m[2][SQ_M_MRR].mean, (1 + 0.5 + 1.0 / 3) / 3, 1e-9);
    o.part = SQ_EVAL_VALID;
    assert_int_equal(sq_evaluate(m, d, &s, &o, &r, &err), SQ_OK);
    assert_int_equal(r.targets, 1);
    assert_float_equal(r.m[2][SQ_M_MRR].mean, 1.0 / 3, 1e-9);
    assert_float_equal(r.m[0][SQ_M_HR].mean, 0.0, 1e-9);
    /* MRR@K is cut at K: rank 3 gives 0 at K = 1 */
    assert_float_equal(r.m[0][SQ_M_MRR].mean, 0.0, 1e-9);
    /* sampled ranking is refused, not silently changed */
    o.sampled = 10;
    assert_int_equal(sq_evaluate(m, d, &s, &o, &r, &err), SQ_ERR_ARG);
    /* only one test day: s5 alone (its C at day 30, t_test = day 29): 2 predictions */
    sq_split_free(&s);
    assert_int_equal(sq_split_sessions(d, 1, 7, &s, &err), SQ_OK);
    o.sampled = 0;
    o.part = SQ_EVAL_TEST;
    assert_int_equal(m->ops->fit(m, d, &s, NULL, &err), SQ_OK);
    assert_int_equal(sq_evaluate(m, d, &s, &o, &r, &err), SQ_OK);
    assert_int_equal(r.targets, 2);
    assert_int_equal(r.users, 1);
    sq_model_free(m);
    sq_split_free(&s);
    sq_data_close(d);
}

/* Sessions inside users (ingest --session-gap): the split falls on session starts, and a
 * prediction never reaches into an earlier session: the first events of s4 and s5 predict
 * nothing although their users have earlier events, so the predictions and metrics are those
 * of test_evaluate. */
static void test_sessions_in_users(void **state) {
    (void)state;
    sq_dataset *d = build(1);
    assert_non_null(sq_data_sessions(d));
    sq_split s;
    sq_error err = {0};
    assert_int_equal(sq_split_sessions(d, 7, 7, &s, &err), SQ_OK);
    /* u1: A B C A A B | A X B C; u2: B C D | C A; u3: Y */
    static const char *ids[] = {"u1", "u2", "u3"};
    static const uint32_t te[] = {6, 0, 0}, ve[] = {6, 3, 0};
    for (int k = 0; k < 3; k++) {
        uint32_t u = user(d, ids[k]);
        assert_int_equal(s.train_end[u], te[k]);
        assert_int_equal(s.valid_end[u], ve[k]);
    }
    sq_model *m = NULL;
    assert_int_equal(sq_model_create(&m, "pop", NULL, d, 1, &err), SQ_OK);
    assert_int_equal(m->ops->fit(m, d, &s, NULL, &err), SQ_OK);
    sq_eval_opts o = {.k = {1, 5, 20}, .n_k = 3};
    sq_eval_result r;
    assert_int_equal(sq_evaluate(m, d, &s, &o, &r, &err), SQ_OK);
    assert_int_equal(r.targets, 3);
    assert_int_equal(r.users, 2);
    assert_float_equal(r.m[0][SQ_M_HR].mean, 1.0 / 3, 1e-9);
    assert_float_equal(r.m[2][SQ_M_MRR].mean, (1 + 0.5 + 1.0 / 3) / 3, 1e-9);
    o.part = SQ_EVAL_VALID;
    assert_int_equal(sq_evaluate(m, d, &s, &o, &r, &err), SQ_OK);
    assert_int_equal(r.targets, 1);
    sq_model_free(m);
    sq_split_free(&s);
    sq_data_close(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_evaluate),
        cmocka_unit_test(test_sessions_in_users),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
