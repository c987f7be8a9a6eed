/* test_models.c — the baseline models on a generated log with planted structure: they learn
 * what they should, scores survive save → load exactly, a model refuses another dataset, and
 * evaluation never shows a model the events at or after its target (leakage). */
#include "testutil.h"

#include "seqrec/eval.h"
#include "seqrec/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static sq_dataset *make_dataset(const char *name, uint64_t seed, uint32_t users) {
    sq_dataset *d = test_gen_dataset(name, users, 300, (uint64_t)users * 30, seed);
    assert_non_null(d);
    return d;
}

static sq_dataset *D; /* shared by the tests: one generated log */

static int setup(void **state) {
    (void)state;
    D = make_dataset("gen", 5, 1500);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    sq_data_close(D);
    return 0;
}

static double eval_hr10(const sq_model *m, const sq_split *s) {
    sq_eval_opts o = {0};
    o.k[0] = 10;
    o.n_k = 1;
    sq_eval_result r;
    sq_error err = {0};
    assert_int_equal(sq_evaluate(m, D, s, &o, &r, &err), SQ_OK);
    assert_true(r.users > 1000);
    return r.m[0][SQ_M_HR].mean;
}

static sq_model *fit(const char *kind, const sq_split *s) {
    sq_model *m = NULL;
    sq_error err = {0};
    assert_int_equal(sq_model_create(&m, kind, NULL, D, 1, &err), SQ_OK);
    assert_int_equal(m->ops->fit(m, D, s, NULL, &err), SQ_OK);
    return m;
}

static void test_learn_planted_structure(void **state) {
    (void)state;
    sq_split s;
    sq_error err = {0};
    assert_int_equal(sq_split_loo(D, &s, &err), SQ_OK);
    sq_model *pop = fit("pop", &s), *knn = fit("itemknn", &s);
    double hr_pop = eval_hr10(pop, &s), hr_knn = eval_hr10(knn, &s);
    print_message("HR@10 pop %.4f, itemknn %.4f\n", hr_pop, hr_knn);
    /* the planted Markov chain makes the next item predictable from the last one */
    assert_true(hr_knn > 2 * hr_pop);
    assert_true(hr_knn > 0.2);
    sq_model_free(pop);
    sq_model_free(knn);
    sq_split_free(&s);
}

static void test_pop_counts_training_only(void **state) {
    (void)state;
    sq_split s;
    sq_error err = {0};
    assert_int_equal(sq_split_loo(D, &s, &err), SQ_OK);
    sq_model *pop = fit("pop", &s);
    const sq_data_info *in = sq_data_info_of(D);
    float *want = calloc(in->n_items, sizeof *want), *got = malloc(in->n_items * sizeof *got);
    const uint64_t *off = sq_data_offsets(D);
    const uint32_t *items = sq_data_items(D);
    for (uint32_t u = 0; u < in->n_users; u++)
        for (uint32_t p = 0; p < s.train_end[u]; p++)
            want[items[off[u] + p]] += 1;
    sq_seq q = sq_model_user_seq(D, 0, 1);
    sq_arena *a = sq_arena_create(1 << 20);
    assert_int_equal(sq_model_score(pop, &q, 1, got, a, &err), SQ_OK);
    assert_memory_equal(want, got, in->n_items * sizeof *got);
    free(want);
    free(got);
    sq_arena_free(a);
    sq_model_free(pop);
    sq_split_free(&s);
}

static void test_save_load_identical(void **state) {
    (void)state;
    sq_split s;
    sq_error err = {0};
    assert_int_equal(sq_split_loo(D, &s, &err), SQ_OK);
    const char *kinds[] = {"pop", "itemknn"};
    uint32_t ni = sq_data_info_of(D)->n_items;
    float *a1 = malloc(4 * ni * sizeof *a1), *a2 = malloc(4 * ni * sizeof *a2);
    sq_arena *ar = sq_arena_create(1 << 20);
    for (int k = 0; k < 2; k++) {
        sq_model *m = fit(kinds[k], &s), *l = NULL;
        const char *path = test_tmp("m.sqm");
        assert_int_equal(sq_model_save(m, path, &err), SQ_OK);
        assert_int_equal(sq_model_load(&l, path, D, &err), SQ_OK);
        assert_string_equal(l->ops->name, kinds[k]);
        sq_seq q[4];
        for (uint32_t u = 0; u < 4; u++)
            q[u] = sq_model_user_seq(D, u, s.valid_end[u]);
        assert_int_equal(sq_model_score(m, q, 4, a1, ar, &err), SQ_OK);
        assert_int_equal(sq_model_score(l, q, 4, a2, ar, &err), SQ_OK);
        assert_memory_equal(a1, a2, 4 * ni * sizeof *a1);
        /* the config came back whole */
        assert_string_equal(sq_config_get(l->cfg, "model"), kinds[k]);
        sq_model_free(m);
        sq_model_free(l);
    }
    free(a1);
    free(a2);
    sq_arena_free(ar);
    sq_split_free(&s);
}

static void test_wrong_dataset(void **state) {
    (void)state;
    sq_split s;
    sq_error err = {0};
    assert_int_equal(sq_split_loo(D, &s, &err), SQ_OK);
    sq_model *m = fit("pop", &s), *l = NULL;
    const char *path = test_tmp("w.sqm");
    assert_int_equal(sq_model_save(m, path, &err), SQ_OK);
    sq_dataset *other = make_dataset("other", 99, 400);
    assert_int_equal(sq_model_load(&l, path, other, &err), SQ_ERR_MISMATCH);
    assert_non_null(strstr(err.msg, "another dataset"));
    assert_null(l);
    sq_data_close(other);
    sq_model_free(m);
    sq_split_free(&s);
    assert_int_equal(sq_model_create(&m, "nosuch", NULL, D, 1, &err), SQ_ERR_ARG);
    assert_non_null(strstr(err.msg, "itemknn"));
}

/* A model that remembers the longest prefix it was shown of each user. */
static uint32_t *seen_len;
static sq_status spy_init(sq_model *m, sq_rng *r, sq_error *e) {
    (void)m;
    (void)r;
    (void)e;
    return SQ_OK;
}
static sq_status spy_score(const sq_model *m, const sq_seq *q, uint32_t B, float *out, sq_arena *a,
                           sq_error *e) {
    (void)a;
    (void)e;
    for (uint32_t b = 0; b < B; b++) {
        if (q[b].n > seen_len[q[b].user])
            seen_len[q[b].user] = q[b].n;
        for (uint32_t i = 0; i < m->info.n_items; i++)
            out[(size_t)b * m->info.n_items + i] = 0;
    }
    return SQ_OK;
}

static void test_no_leakage(void **state) {
    (void)state;
    static const sq_model_ops spy_ops = {.name = "spy", .init = spy_init, .score = spy_score};
    sq_model m = {0};
    m.ops = &spy_ops;
    m.info = *sq_data_info_of(D);
    seen_len = calloc(m.info.n_users, sizeof *seen_len);
    sq_split s;
    sq_error err = {0};
    sq_eval_opts o = {0};
    sq_eval_result r;
    const char *protocols[] = {"loo", "temporal", "kfold"};
    for (int p = 0; p < 3; p++) {
        assert_int_equal(sq_split_make(D, protocols[p], 1, 3, &s, &err), SQ_OK);
        for (int part = 0; part < 2; part++) {
            memset(seen_len, 0, m.info.n_users * sizeof *seen_len);
            o.part = part ? SQ_EVAL_VALID : SQ_EVAL_TEST;
            sq_status rc = sq_evaluate(&m, D, &s, &o, &r, &err);
            assert_true(rc == SQ_OK || rc == SQ_ERR_EMPTY);
            for (uint32_t u = 0; u < m.info.n_users; u++) {
                uint32_t first = part ? s.train_end[u] : s.valid_end[u];
                assert_true(seen_len[u] <= first); /* never the target or anything after */
            }
        }
        sq_split_free(&s);
    }
    free(seen_len);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learn_planted_structure),
        cmocka_unit_test(test_pop_counts_training_only),
        cmocka_unit_test(test_save_load_identical),
        cmocka_unit_test(test_wrong_dataset),
        cmocka_unit_test(test_no_leakage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
