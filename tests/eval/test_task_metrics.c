/* test_task_metrics.c — the per-task metrics (eval/task_metrics.h) against values computed by
 * hand for five samples, undefined metrics as NaN, the bootstrap intervals, and two models'
 * paired differences. */
#include "testutil.h"

#include "eval/task_metrics.h"

#include <math.h>
#include <string.h>

/*        beh pred click buy value pred_value  ctr  cvr  ctcvr  ndcg  hr  group */
static const sq_task_sample S5[5] = {
    {0, 0, 0, 0, 4.0f, 3.5f, 0.1f, 0.2f, 0.02f, 1.0f, 1.0f, 1},
    {1, 0, 1, 0, 2.0f, 3.0f, 0.6f, 0.3f, 0.18f, 0.0f, 0.0f, 1},
    {2, 2, 1, 1, 5.0f, 5.0f, 0.8f, 0.9f, 0.72f, 0.5f, 1.0f, 2},
    {0, 1, 0, 0, NAN, 4.0f, 0.6f, 0.5f, 0.15f, 0.0f, 0.0f, 2},
    {1, 1, 1, 0, 3.0f, 2.0f, 0.6f, 0.4f, 0.80f, 0.25f, 1.0f, 2},
};
static const uint32_t ALL[5] = {0, 1, 2, 3, 4};

static void test_hand_values(void **state) {
    (void)state;
    sq_eval_stat m[SQ_TM_N];
    sq_error err = {0};
    assert_int_equal(sq_task_group_stats(S5, ALL, 5, 3, 0, 1, m, &err), SQ_OK);
    assert_float_equal(m[SQ_TM_NDCG10].mean, 1.75 / 5, 1e-7);
    assert_float_equal(m[SQ_TM_HR10].mean, 0.6, 1e-7);
    assert_float_equal(m[SQ_TM_BEH_ACC].mean, 0.6, 1e-12);    /* samples 0, 2, 4 */
    assert_float_equal(m[SQ_TM_BEH_MAJ].mean, 0.4, 1e-12);    /* behaviour 0 or 1: 2 of 5 */
    assert_float_equal(m[SQ_TM_BEH_F1].mean, 2.0 / 3, 1e-12); /* F1 0.5, 0.5, 1 */
    /* value: samples 0, 1, 2, 4 (3 has none): errors −0.5, 1, 0, −1 */
    assert_float_equal(m[SQ_TM_VAL_RMSE].mean, 0.75, 1e-7);
    assert_float_equal(m[SQ_TM_VAL_MAE].mean, 0.625, 1e-7);
    /* click: positives 0.6, 0.8, 0.6 against negatives 0.1, 0.6 → 5 of 6 pairs (ties half) */
    assert_float_equal(m[SQ_TM_CTR_AUC].mean, 5.0 / 6, 1e-12);
    double ll = -(log(0.9) + log(0.6) + log(0.8) + log(0.4) + log(0.6)) / 5;
    assert_float_equal(m[SQ_TM_CTR_LL].mean, ll, 1e-6);
    /* cvr: the click-level samples 1, 2, 4; the buy (0.9) above both others */
    assert_float_equal(m[SQ_TM_CVR_AUC].mean, 1.0, 1e-12);
    assert_float_equal(m[SQ_TM_CVR_LL].mean, -(log(0.7) + log(0.9) + log(0.6)) / 3, 1e-6);
    /* ctcvr over all: the one buy (0.72) above 3 of the 4 others (0.80 is higher) */
    assert_float_equal(m[SQ_TM_CTCVR_AUC].mean, 0.75, 1e-12);
    ll = -(log(0.98) + log(0.82) + log(0.72) + log(0.85) + log(0.2)) / 5;
    assert_float_equal(m[SQ_TM_CTCVR_LL].mean, ll, 1e-6);
    for (int k = 0; k < SQ_TM_N; k++) /* no resampling: the interval is the point */
        assert_true(m[k].lo == m[k].mean && m[k].hi == m[k].mean);
}

/* A subset: samples 0 and 1 only. No buy among them → buy AUCs undefined; sample 1 is the only
 * click-level one → CVR AUC undefined but its log-loss defined. */
static void test_undefined(void **state) {
    (void)state;
    const uint32_t idx[2] = {0, 1};
    sq_eval_stat m[SQ_TM_N];
    sq_error err = {0};
    assert_int_equal(sq_task_group_stats(S5, idx, 2, 3, 0, 1, m, &err), SQ_OK);
    assert_true(isnan(m[SQ_TM_CTCVR_AUC].mean));
    assert_true(isnan(m[SQ_TM_CVR_AUC].mean));
    assert_float_equal(m[SQ_TM_CVR_LL].mean, -log(0.7), 1e-6);
    assert_float_equal(m[SQ_TM_CTR_AUC].mean, 1.0, 1e-12); /* 0.6 above 0.1 */
    /* behaviours 0 and 1 occur; pred 0 twice: F1(0) = 2/3, F1(1) = 0 → macro 1/3 */
    assert_float_equal(m[SQ_TM_BEH_F1].mean, 1.0 / 3, 1e-12);
    assert_int_equal(sq_task_group_stats(S5, idx, 0, 3, 10, 1, m, &err), SQ_OK); /* empty */
    for (int k = 0; k < SQ_TM_N; k++)
        assert_true(isnan(m[k].mean));
}

/* Bootstrap: intervals bracket the point for these metrics, stay in range, and the same seed
 * gives the same intervals. */
static void test_bootstrap(void **state) {
    (void)state;
    enum { N = 400 };
    static sq_task_sample s[N];
    static uint32_t idx[N];
    for (int i = 0; i < N; i++) {
        int pos = i % 3 == 0;
        s[i] = (sq_task_sample){(uint8_t)(i % 3), (uint8_t)(i % 5 ? i % 3 : 0), (uint8_t)pos,
                                (uint8_t)(i % 6 == 0), (float)(i % 5), (float)(i % 4),
                                (float)((i * 37 % 100) / 100.0 + 0.3 * pos) / 1.4f,
                                0.5f, (float)((i * 53 % 100) / 100.0) * 0.9f, 0.3f, 1.0f, 1};
        idx[i] = (uint32_t)i;
    }
    sq_eval_stat a[SQ_TM_N], b[SQ_TM_N];
    sq_error err = {0};
    assert_int_equal(sq_task_group_stats(s, idx, N, 3, 300, 9, a, &err), SQ_OK);
    assert_int_equal(sq_task_group_stats(s, idx, N, 3, 300, 9, b, &err), SQ_OK);
    const int ks[] = {SQ_TM_BEH_ACC, SQ_TM_VAL_RMSE, SQ_TM_CTR_AUC, SQ_TM_CTR_LL};
    for (int j = 0; j < 4; j++) {
        const sq_eval_stat *x = &a[ks[j]];
        assert_true(x->lo < x->mean && x->mean < x->hi);
        assert_true(x->lo == b[ks[j]].lo && x->hi == b[ks[j]].hi);
    }
    assert_true(a[SQ_TM_CTR_AUC].lo > 0.5 && a[SQ_TM_CTR_AUC].hi <= 1.0);
    assert_true(a[SQ_TM_BEH_ACC].lo >= 0 && a[SQ_TM_BEH_ACC].hi <= 1);
}

/* Paired differences: a model against itself is 0 with no spread; against another, every point
 * difference is the difference of the two models' points (CTR AUC by hand: S5's is 5/6, the
 * other's, with sample 0's pCTR raised above every other, 1/2), and the paired interval of a
 * small change is narrower than either model's own interval. */
static void test_paired_diff(void **state) {
    (void)state;
    sq_eval_stat d[SQ_TM_N], a[SQ_TM_N], b[SQ_TM_N];
    sq_error err = {0};
    assert_int_equal(sq_task_group_diff(S5, S5, ALL, 5, 3, 200, 4, d, &err), SQ_OK);
    for (int k = 0; k < SQ_TM_N; k++)
        if (k != SQ_TM_CVR_AUC && k != SQ_TM_VAL_RMSE) /* defined ones */
            assert_true(d[k].mean == 0 && d[k].lo == 0 && d[k].hi == 0);
    sq_task_sample o[5];
    memcpy(o, S5, sizeof o);
    o[0].ctr = 0.95f; /* the one non-click now scores highest */
    o[2].pred_beh = 0;
    assert_int_equal(sq_task_group_diff(S5, o, ALL, 5, 3, 0, 4, d, &err), SQ_OK);
    assert_int_equal(sq_task_group_stats(S5, ALL, 5, 3, 0, 4, a, &err), SQ_OK);
    assert_int_equal(sq_task_group_stats(o, ALL, 5, 3, 0, 4, b, &err), SQ_OK);
    for (int k = 0; k < SQ_TM_N; k++)
        if (isfinite(a[k].mean) && isfinite(b[k].mean))
            assert_true(fabs(d[k].mean - (a[k].mean - b[k].mean)) < 1e-12);
    /* CTR: clicks 1, 2, 4 (0.6, 0.8, 0.6) against non-clicks 0, 3. S5: 0 (0.1) below all three,
     * 3 (0.6) ties 1 and 4 and is below 2: (3 + 2) / 6. Other: 0 (0.95) above all: (0 + 2) / 6 */
    assert_float_equal(a[SQ_TM_CTR_AUC].mean, 5.0 / 6, 1e-12);
    assert_float_equal(d[SQ_TM_CTR_AUC].mean, 5.0 / 6 - 2.0 / 6, 1e-12);
    assert_float_equal(d[SQ_TM_BEH_ACC].mean, 0.2, 1e-12); /* sample 2 no longer right */
    /* a small change over many samples: the pair moves together */
    enum { N = 600 };
    static sq_task_sample x[N], y[N];
    static uint32_t idx[N];
    for (int i = 0; i < N; i++) {
        int pos = i % 4 == 0;
        float v = (float)((i * 37 % 100) / 100.0 + 0.4 * pos) / 1.4f;
        x[i] = (sq_task_sample){0, 0, (uint8_t)pos, 0, NAN, NAN, v, NAN, NAN, NAN, NAN, 1};
        y[i] = x[i];
        y[i].ctr = v + (i % 7 == 0 ? 0.05f : 0.0f);
        idx[i] = (uint32_t)i;
    }
    assert_int_equal(sq_task_group_diff(x, y, idx, N, 1, 300, 5, d, &err), SQ_OK);
    assert_int_equal(sq_task_group_stats(x, idx, N, 1, 300, 5, a, &err), SQ_OK);
    const double paired = d[SQ_TM_CTR_AUC].hi - d[SQ_TM_CTR_AUC].lo,
                 own = a[SQ_TM_CTR_AUC].hi - a[SQ_TM_CTR_AUC].lo;
    assert_true(d[SQ_TM_CTR_AUC].lo <= d[SQ_TM_CTR_AUC].mean &&
                d[SQ_TM_CTR_AUC].mean <= d[SQ_TM_CTR_AUC].hi);
    assert_true(paired > 0 && paired < own / 3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_values),
        cmocka_unit_test(test_undefined),
        cmocka_unit_test(test_bootstrap),
        cmocka_unit_test(test_paired_diff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
