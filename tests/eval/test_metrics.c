/* test_metrics.c — every metric against values computed by hand. */
#include "testutil.h"

#include "seqrec/eval.h"

#include <math.h>
#include <stdlib.h>

#define NEAR(a, b) assert_true(fabs((a) - (b)) < 1e-9)

static void test_rank(void **state) {
    (void)state;
    const float s[] = {0.1f, 0.5f, 0.3f, 0.5f, 0.9f};
    uint64_t h, t;
    sq_eval_rank(s, 5, 2, NULL, 0, &h, &t);
    assert_int_equal(h, 3); /* 0.5, 0.5, 0.9 */
    assert_int_equal(t, 0);
    const uint32_t ex[] = {4, 4, 2, 77}; /* a repeat, the target (never excluded), out of range */
    sq_eval_rank(s, 5, 2, ex, 4, &h, &t);
    assert_int_equal(h, 2);
    assert_int_equal(t, 0);
    sq_eval_rank(s, 5, 1, NULL, 0, &h, &t); /* 0.5 ties with item 3 */
    assert_int_equal(h, 1);
    assert_int_equal(t, 1);
    const uint32_t ex3[] = {3};
    sq_eval_rank(s, 5, 1, ex3, 1, &h, &t);
    assert_int_equal(h, 1);
    assert_int_equal(t, 0);
    const float nan_s[] = {NAN, 0.2f, NAN, 0.1f};
    sq_eval_rank(nan_s, 4, 0, NULL, 0, &h, &t); /* NaN target: below every number */
    assert_int_equal(h, 2);
    assert_int_equal(t, 1);
    sq_eval_rank(nan_s, 4, 3, NULL, 0, &h, &t); /* NaN candidates rank below */
    assert_int_equal(h, 1);
    assert_int_equal(t, 0);
}

static void test_rank_long_exclusion(void **state) {
    (void)state;
    /* more than the stack buffer: the quadratic path must give the same answer */
    enum { N = 6000 };
    static float s[N];
    static uint32_t ex[N];
    for (uint32_t i = 0; i < N; i++)
        s[i] = (float)i;
    for (uint32_t i = 0; i < N; i++)
        ex[i] = (i * 7) % 5000 + 1000; /* repeats, some above */
    uint64_t h, t;
    sq_eval_rank(s, N, 2000, ex, N, &h, &t);
    /* items above 2000 are 2001..5999 (3999); excluded distinct ids above: 2001..5999 → all */
    assert_int_equal(h, 0);
    assert_int_equal(t, 0);
}

static void test_single(void **state) {
    (void)state;
    const uint32_t k[] = {1, 5};
    double v[2 * SQ_M_PER_K], auc;
    sq_eval_single(2, 0, 4, k, 2, v, &auc);
    NEAR(v[SQ_M_HR], 0);
    NEAR(v[SQ_M_NDCG], 0);
    NEAR(v[SQ_M_PER_K + SQ_M_HR], 1);
    NEAR(v[SQ_M_PER_K + SQ_M_NDCG], 0.5); /* 1 / log2(2 + 2) */
    NEAR(v[SQ_M_PER_K + SQ_M_MRR], 1.0 / 3);
    NEAR(v[SQ_M_PER_K + SQ_M_PREC], 0.2);
    NEAR(v[SQ_M_PER_K + SQ_M_RECALL], 1);
    NEAR(auc, 1.0 / 3); /* one of the three others is below */
    /* two items tied at the top: ranks 0 and 1 equally likely */
    const uint32_t k2[] = {1, 2};
    sq_eval_single(0, 1, 10, k2, 2, v, &auc);
    NEAR(v[SQ_M_HR], 0.5);
    NEAR(v[SQ_M_NDCG], 0.5);
    NEAR(v[SQ_M_MRR], 0.5);
    NEAR(v[SQ_M_PER_K + SQ_M_HR], 1);
    NEAR(v[SQ_M_PER_K + SQ_M_NDCG], 0.5 * (1 + 1 / log2(3.0)));
    NEAR(v[SQ_M_PER_K + SQ_M_MRR], 0.75);
    NEAR(v[SQ_M_PER_K + SQ_M_PREC], 0.5);
    NEAR(auc, (8 + 0.5) / 9);
}

static void test_constant_model_is_random(void **state) {
    (void)state;
    /* 100 items with the same score: HR@10 is 10 %, AUC one half, not 1 */
    float s[100] = {0};
    uint64_t h, t;
    sq_eval_rank(s, 100, 42, NULL, 0, &h, &t);
    const uint32_t k[] = {10};
    double v[SQ_M_PER_K], auc;
    sq_eval_single(h, t, 100, k, 1, v, &auc);
    NEAR(v[SQ_M_HR], 0.1);
    NEAR(auc, 0.5);
    double ndcg = 0;
    for (int r = 0; r < 10; r++)
        ndcg += 0.01 / log2(r + 2.0);
    NEAR(v[SQ_M_NDCG], ndcg);
}

static void test_multi(void **state) {
    (void)state;
    const uint64_t pos[] = {7, 0, 3};
    const uint32_t k[] = {1, 5};
    double v[2 * SQ_M_PER_K];
    sq_eval_multi(pos, 3, k, 2, v);
    NEAR(v[SQ_M_HR], 1);
    NEAR(v[SQ_M_NDCG], 1); /* one target at position 0, ideal with K = 1 */
    NEAR(v[SQ_M_PREC], 1);
    NEAR(v[SQ_M_RECALL], 1.0 / 3);
    double *v5 = v + SQ_M_PER_K;
    NEAR(v5[SQ_M_HR], 1);
    NEAR(v5[SQ_M_PREC], 0.4);
    NEAR(v5[SQ_M_RECALL], 2.0 / 3);
    NEAR(v5[SQ_M_NDCG], (1 + 1 / log2(5.0)) / (1 + 1 / log2(3.0) + 0.5));
    NEAR(v5[SQ_M_MRR], 1);
    const uint64_t miss[] = {9};
    sq_eval_multi(miss, 1, k, 2, v);
    NEAR(v5[SQ_M_HR], 0);
    NEAR(v5[SQ_M_MRR], 0);
}

static void test_accumulator(void **state) {
    (void)state;
    const uint32_t k[] = {10};
    sq_eval_acc *a = sq_eval_acc_create(k, 1);
    assert_non_null(a);
    sq_eval_stat st[SQ_M_PER_K], auc;
    sq_error err = {0};
    assert_int_equal(sq_eval_acc_summary(a, 100, 1, st, &auc, &err), SQ_ERR_EMPTY);
    double hit[SQ_M_PER_K] = {1, 1, 1, 0.1, 1}, miss[SQ_M_PER_K] = {0};
    assert_int_equal(sq_eval_acc_add(a, hit, 1.0), SQ_OK);
    assert_int_equal(sq_eval_acc_add(a, miss, 0.0), SQ_OK);
    assert_int_equal(sq_eval_acc_summary(a, 2000, 7, st, &auc, &err), SQ_OK);
    NEAR(st[SQ_M_HR].mean, 0.5);
    NEAR(st[SQ_M_PREC].mean, 0.05);
    NEAR(auc.mean, 0.5);
    /* two users: resampled means are 0, 1/2, 1 with p 1/4, 1/2, 1/4 → 95 % interval [0, 1] */
    NEAR(st[SQ_M_HR].lo, 0);
    NEAR(st[SQ_M_HR].hi, 1);
    /* identical users: no spread */
    sq_eval_acc *b = sq_eval_acc_create(k, 1);
    for (int i = 0; i < 50; i++)
        sq_eval_acc_add(b, hit, 0.7);
    sq_eval_acc_add(b, hit, 1.0);
    sq_eval_acc_add(b, miss, 0.0);
    assert_int_equal(sq_eval_acc_users(b), 52);
    assert_int_equal(sq_eval_acc_summary(b, 500, 7, st, &auc, &err), SQ_OK);
    NEAR(st[SQ_M_HR].mean, 51.0 / 52);
    assert_true(st[SQ_M_HR].lo <= st[SQ_M_HR].mean && st[SQ_M_HR].mean <= st[SQ_M_HR].hi);
    assert_true(st[SQ_M_HR].lo < st[SQ_M_HR].hi);
    assert_int_equal(sq_eval_acc_summary(b, 0, 7, st, &auc, &err), SQ_OK);
    NEAR(st[SQ_M_HR].lo, st[SQ_M_HR].mean);
    sq_eval_acc_free(a);
    sq_eval_acc_free(b);
    assert_null(sq_eval_acc_create(k, 0));
    assert_null(sq_eval_acc_create(k, SQ_EVAL_MAX_K + 1));
}

/* Paired differences: a − b user by user; the interval of their mean. */
static void test_accumulator_diff(void **state) {
    (void)state;
    const uint32_t k[] = {10}, k5[] = {5};
    sq_eval_acc *a = sq_eval_acc_create(k, 1), *b = sq_eval_acc_create(k, 1);
    double hit[SQ_M_PER_K] = {1, 0.5, 0.25, 0.1, 1}, miss[SQ_M_PER_K] = {0};
    /* users: a hit, hit, miss, hit; b miss, hit, miss, miss */
    sq_eval_acc_add(a, hit, 0.9), sq_eval_acc_add(b, miss, 0.4);
    sq_eval_acc_add(a, hit, 0.8), sq_eval_acc_add(b, hit, 0.8);
    sq_eval_acc_add(a, miss, 0.2), sq_eval_acc_add(b, miss, 0.3);
    sq_eval_acc_add(a, hit, 0.7), sq_eval_acc_add(b, miss, 0.2);
    sq_eval_acc *d = sq_eval_acc_diff(a, b);
    assert_non_null(d);
    assert_int_equal(sq_eval_acc_users(d), 4);
    sq_eval_stat st[SQ_M_PER_K], auc;
    sq_error err = {0};
    assert_int_equal(sq_eval_acc_summary(d, 2000, 3, st, &auc, &err), SQ_OK);
    NEAR(st[SQ_M_HR].mean, 0.5);     /* (1 + 0 + 0 + 1) / 4 */
    NEAR(st[SQ_M_NDCG].mean, 0.25);  /* 0.5 × the same */
    NEAR(auc.mean, (0.5 + 0.0 - 0.1 + 0.5) / 4);
    /* differences 1, 0, 0, 1: resampled means k/4, k ~ Binomial(4, 1/2): P(0) = P(4) = 1/16 >
     * 2.5 %, so the 95 % interval is [0, 1] */
    NEAR(st[SQ_M_HR].lo, 0);
    NEAR(st[SQ_M_HR].hi, 1);
    sq_eval_acc_free(d);
    /* a model against itself: exactly 0, no spread */
    d = sq_eval_acc_diff(a, a);
    assert_int_equal(sq_eval_acc_summary(d, 500, 3, st, &auc, &err), SQ_OK);
    assert_true(st[SQ_M_NDCG].mean == 0 && st[SQ_M_NDCG].lo == 0 && st[SQ_M_NDCG].hi == 0);
    sq_eval_acc_free(d);
    /* other users or other K: no pairing */
    sq_eval_acc_add(b, hit, 1.0);
    assert_null(sq_eval_acc_diff(a, b));
    sq_eval_acc *c = sq_eval_acc_create(k5, 1);
    for (int i = 0; i < 4; i++)
        sq_eval_acc_add(c, hit, 1.0);
    assert_null(sq_eval_acc_diff(a, c));
    sq_eval_acc_free(a);
    sq_eval_acc_free(b);
    sq_eval_acc_free(c);
}

/* sq_topk against a reference that sorts everything: (score desc, id asc) without NaN and the
 * excluded ids, the first k. Sizes around the 64-score chunks it skips; ties; NaNs; exclusions
 * (sorted-list and, with an allocation failure, linear lookups). */
static const float *ref_scores;
static int ref_cmp(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    if (ref_scores[x] != ref_scores[y])
        return ref_scores[x] < ref_scores[y] ? 1 : -1;
    return (x > y) - (x < y);
}

static void test_topk(void **state) {
    (void)state;
    sq_rng rng;
    sq_rng_seed(&rng, 11);
    const uint32_t ns[] = {1, 63, 64, 65, 129, 1000, 5000};
    static uint32_t ids[6000], order[6000], ex[600];
    static float vals[6000];
    for (size_t t = 0; t < 7; t++)
        for (int variant = 0; variant < 4; variant++) {
            const uint32_t n = ns[t];
            float *row = malloc(n * sizeof *row);
            for (uint32_t i = 0; i < n; i++) {
                /* variant 1: few distinct values (ties); 2: NaNs; 3: ascending (every score
                 * enters the list: no chunk is skipped) */
                row[i] = variant == 1   ? (float)(sq_rng_u64(&rng) % 5)
                         : variant == 3 ? (float)i
                                        : (float)sq_rng_normal(&rng);
                if (variant == 2 && sq_rng_u64(&rng) % 3 == 0)
                    row[i] = NAN;
            }
            uint32_t n_ex = n / 10;
            for (uint32_t e = 0; e < n_ex; e++)
                ex[e] = (uint32_t)(sq_rng_u64(&rng) % n);
            uint32_t m = 0;
            for (uint32_t i = 0; i < n; i++) {
                int excluded = 0;
                for (uint32_t e = 0; e < n_ex; e++)
                    excluded |= ex[e] == i;
                if (!isnan(row[i]) && !excluded)
                    order[m++] = i;
            }
            ref_scores = row;
            qsort(order, m, sizeof *order, ref_cmp);
            const uint32_t ks[] = {1, 10, 100, n + 5};
            for (int ki = 0; ki < 4; ki++)
                for (int linear = 0; linear < 2; linear++) {
                    const uint32_t k = ks[ki], want = k < m ? k : m;
                    if (linear)
                        sq_alloc_fail_after(0); /* the sorted copy of the exclusions fails */
                    uint32_t got = sq_topk(row, n, k, ex, n_ex, ids, vals);
                    sq_alloc_fail_after(-1);
                    assert_int_equal(got, want);
                    assert_memory_equal(ids, order, got * sizeof *ids);
                    for (uint32_t i = 0; i < got; i++)
                        assert_true(vals[i] == row[ids[i]]);
                }
            free(row);
        }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rank),   cmocka_unit_test(test_rank_long_exclusion),
        cmocka_unit_test(test_single), cmocka_unit_test(test_constant_model_is_random),
        cmocka_unit_test(test_multi),  cmocka_unit_test(test_accumulator),
        cmocka_unit_test(test_accumulator_diff),
        cmocka_unit_test(test_topk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
