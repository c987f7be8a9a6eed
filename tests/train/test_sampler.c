/* test_sampler.c — negative sampling for training batches: never the positive, uniform covers
 * the catalogue evenly, popularity sampling follows the training counts (and ignores events
 * outside the training part), positions without a target get no negatives. */
#include "testutil.h"

#include "train/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static sq_dataset *D;
static sq_split S;

static int setup(void **state) {
    (void)state;
    return test_gen_loo("g", 400, 50, 12000, 3, &D, &S);
}

static int teardown(void **state) {
    (void)state;
    test_gen_loo_free(D, &S);
    return 0;
}

static void test_uniform_never_positive(void **state) {
    (void)state;
    sq_error err = {0};
    sq_neg_sampler s;
    assert_int_equal(sq_neg_sampler_init(&s, D, &S, 0, &err), SQ_OK);
    uint32_t n = sq_data_info_of(D)->n_items;
    sq_rng r = sq_rng_derive(1, 0);
    long *cnt = calloc(n, sizeof *cnt);
    const long draws = 200000;
    for (long i = 0; i < draws; i++) {
        uint32_t it = sq_neg_draw(&s, &r, 7);
        assert_true(it < n);
        assert_int_not_equal(it, 7);
        cnt[it]++;
    }
    double expect = (double)draws / (n - 1);
    for (uint32_t i = 0; i < n; i++)
        if (i != 7) /* 5 sigma of a binomial count */
            assert_true(fabs(cnt[i] - expect) < 5 * sqrt(expect));
    free(cnt);
    sq_neg_sampler_free(&s);
}

static void test_pop_follows_training_counts(void **state) {
    (void)state;
    sq_error err = {0};
    sq_neg_sampler s;
    assert_int_equal(sq_neg_sampler_init(&s, D, &S, 1, &err), SQ_OK);
    const sq_data_info *info = sq_data_info_of(D);
    uint32_t n = info->n_items;
    double *want = calloc(n, sizeof *want), total = 0;
    for (uint32_t u = 0; u < info->n_users; u++)
        for (uint32_t k = 0; k < S.train_end[u]; k++)
            want[sq_data_items(D)[sq_data_offsets(D)[u] + k]] += 1;
    for (uint32_t i = 0; i < n; i++) {
        want[i] += 1; /* the documented +1 smoothing */
        total += want[i];
    }
    sq_rng r = sq_rng_derive(2, 0);
    long *cnt = calloc(n, sizeof *cnt);
    const long draws = 400000;
    for (long i = 0; i < draws; i++)
        cnt[sq_neg_draw(&s, &r, UINT32_MAX)]++;
    for (uint32_t i = 0; i < n; i++) {
        double e = draws * want[i] / total;
        assert_true(fabs(cnt[i] - e) < 5 * sqrt(e) + 1);
    }
    free(cnt);
    free(want);
    sq_neg_sampler_free(&s);
}

static void test_fill_only_targets(void **state) {
    (void)state;
    sq_error err = {0};
    sq_neg_sampler s;
    assert_int_equal(sq_neg_sampler_init(&s, D, &S, 1, &err), SQ_OK);
    uint32_t tg[2 * 3] = {0, 5, 9, 0, 0, 1};
    uint32_t negs[2 * 3 * 4];
    memset(negs, 0xff, sizeof negs);
    sq_rng r = sq_rng_derive(3, 0);
    sq_neg_fill(&s, &r, tg, 2, 3, 4, negs);
    for (int p = 0; p < 6; p++)
        for (int j = 0; j < 4; j++) {
            uint32_t v = negs[p * 4 + j];
            if (!tg[p])
                assert_int_equal(v, 0);
            else {
                assert_true(v >= 1 && v <= sq_data_info_of(D)->n_items);
                assert_int_not_equal(v, tg[p]);
            }
        }
    sq_neg_sampler_free(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uniform_never_positive),
        cmocka_unit_test(test_pop_follows_training_counts),
        cmocka_unit_test(test_fill_only_targets),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
