/* test_bprmf_model.c — BPR-MF ("bpr") behind the model interface and the training loop, on a
 * generated log whose users have planted taste clusters: MF learns them (HR@10 and NDCG@10 far
 * above popularity), the BPR loss falls epoch after epoch, its gradient matches finite
 * differences and touches only the batch's rows, scores survive save → load bit for bit, and
 * a user the model never saw is folded in from its items (finite scores, better than
 * popularity; with no items the scores are the item biases). */
#include "models/fixture.h"
#include "testutil.h"

#include "seqrec/eval.h"
#include "seqrec/train.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static sq_dataset *D;
static sq_split S;

static int setup(void **state) {
    (void)state;
    return test_gen_loo("g", 1500, 300, 45000, 5, &D, &S);
}

static int teardown(void **state) {
    (void)state;
    test_gen_loo_free(D, &S);
    return 0;
}

/* BPR-MF with its defaults and `extra` ("key=value", may be NULL), trained for `epochs` on one
 * thread without early stopping. */
static sq_model *train(uint32_t epochs, const char *extra, sq_train_result *tr, FILE *log) {
    const char *const extras[] = {extra, NULL};
    sq_model *m = tm_create("bpr", D, NULL, extras, 7);
    tm_train(m, D, &S, epochs, 1, log, tr);
    return m;
}

static void eval10(const sq_model *m, double *hr, double *ndcg) {
    *hr = tm_eval10(m, D, &S, ndcg);
}

static sq_model *popularity(void) {
    return tm_popularity(D, &S);
}

static void test_beats_popularity_and_loss_falls(void **state) {
    (void)state;
    omp_set_num_threads(1);
    const char *logp = test_tmp("bpr_metrics.jsonl");
    FILE *log = fopen(logp, "w");
    assert_non_null(log);
    sq_train_result tr;
    sq_model *m = train(12, NULL, &tr, log);
    fclose(log);
    sq_model *pop = popularity();
    double h, n, hp, np;
    eval10(m, &h, &n);
    eval10(pop, &hp, &np);
    print_message("test HR@10 / NDCG@10: bpr %.4f / %.4f (best epoch %u of %u), pop %.4f / %.4f\n",
                  h, n, tr.best_epoch, tr.epochs_run, hp, np);
    assert_int_equal(tr.epochs_run, 12);
    assert_true(h > 2.5 * hp);
    assert_true(n > 3.5 * np);
    assert_true(h > 0.55 && n > 0.4);
    /* the epoch losses: near log 2 at the start (the factors are small), then down every epoch */
    size_t len;
    char *text = test_read_file(logp, &len);
    double loss[12];
    int lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        assert_non_null(o);
        assert_true(lines < 12);
        loss[lines++] = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "loss"));
        cJSON_Delete(o);
    }
    free(text);
    assert_int_equal(lines, 12);
    print_message("BPR loss: epoch 1 %.4f, 6 %.4f, 12 %.4f\n", loss[0], loss[5], loss[11]);
    assert_true(loss[0] > 0.6 && loss[0] < 0.72);
    for (int e = 1; e < 12; e++)
        assert_true(loss[e] < loss[e - 1]);
    assert_true(loss[11] < 0.5 * loss[0]);
    sq_model_free(pop);
    sq_model_free(m);
}

/* HR@10 of the test targets when every user is scored as one the model never saw (user =
 * UINT32_MAX, the items before the target), history masked as sq_evaluate does. */
static double hr10_unknown_users(const sq_model *m) {
    enum { NB = 64 };
    uint32_t nu = sq_data_info_of(D)->n_users, ni = sq_data_info_of(D)->n_items, k = 10;
    const uint64_t *off = sq_data_offsets(D);
    const uint32_t *items = sq_data_items(D);
    float *sc = malloc((size_t)NB * ni * sizeof *sc);
    sq_arena *ar = sq_arena_create(m->ops->scratch ? m->ops->scratch(m, NB, 0) : 64u << 20);
    sq_seq q[NB];
    uint32_t us[NB], nq = 0;
    double hits = 0;
    long users = 0;
    sq_error err = {0};
    for (uint32_t u = 0; u <= nu; u++) {
        if (u < nu && S.valid_end[u] < off[u + 1] - off[u] && S.valid_end[u] > 0) {
            q[nq] = sq_model_user_seq(D, u, S.valid_end[u]);
            q[nq].user = UINT32_MAX;
            us[nq++] = u;
        }
        if (nq < NB && u < nu)
            continue;
        sq_arena_reset(ar);
        assert_int_equal(sq_model_score(m, q, nq, sc, ar, &err), SQ_OK);
        for (uint32_t b = 0; b < nq; b++) {
            uint64_t hi, ties;
            double vals[SQ_M_PER_K], auc;
            sq_eval_rank(sc + (size_t)b * ni, ni, items[off[us[b]] + q[b].n], q[b].items, q[b].n,
                         &hi, &ties);
            sq_eval_single(hi, ties, ni, &k, 1, vals, &auc);
            hits += vals[SQ_M_HR];
            users++;
            for (uint32_t i = 0; i < ni; i++)
                assert_true(isfinite(sc[(size_t)b * ni + i]));
        }
        nq = 0;
    }
    sq_arena_free(ar);
    free(sc);
    return hits / (double)users;
}

static void test_save_load_and_unknown_users(void **state) {
    (void)state;
    omp_set_num_threads(1);
    sq_train_result tr;
    sq_model *m = train(8, "dim=32", &tr, NULL);
    sq_error err = {0};
    const char *path = test_tmp("bpr.sqm");
    assert_int_equal(sq_model_save(m, path, &err), SQ_OK);
    sq_model *l = NULL;
    assert_int_equal(sq_model_load(&l, path, D, &err), SQ_OK);
    /* the saved config is complete: model keys and the loop keys it set */
    assert_string_equal(sq_config_get(l->cfg, "dim"), "32");
    assert_non_null(sq_config_get(l->cfg, "reg"));
    assert_string_equal(sq_config_get(l->cfg, "negatives"), "1");
    assert_non_null(sq_config_get(l->cfg, "lr"));
    /* three known users, one unknown with a history, one unknown with none */
    uint32_t ni = sq_data_info_of(D)->n_items;
    sq_seq q[5];
    for (uint32_t u = 0; u < 3; u++)
        q[u] = sq_model_user_seq(D, u, S.valid_end[u]);
    q[3] = sq_model_user_seq(D, 4, S.valid_end[4]);
    q[3].user = UINT32_MAX;
    q[4] = q[3];
    q[4].n = 0;
    float *s1 = malloc(5 * ni * sizeof *s1), *s2 = malloc(5 * ni * sizeof *s2);
    sq_arena *ar = sq_arena_create(m->ops->scratch(m, 5, 0));
    assert_int_equal(sq_model_score(m, q, 5, s1, ar, &err), SQ_OK);
    sq_arena_reset(ar);
    assert_int_equal(sq_model_score(l, q, 5, s2, ar, &err), SQ_OK);
    assert_memory_equal(s1, s2, 5 * ni * sizeof *s1);
    /* an empty unknown user gets the item biases, and they are not all equal after training */
    const float *bias = sq_params_find(m->params, "bpr.bias")->data;
    assert_memory_equal(s1 + 4 * ni, bias, ni * sizeof *bias);
    int differ = 0;
    for (uint32_t i = 1; i < ni; i++)
        differ |= bias[i] != bias[0];
    assert_true(differ);
    /* folding in from the items works far better than popularity and gives finite scores */
    sq_model *pop = popularity();
    double hf = hr10_unknown_users(m), hp = hr10_unknown_users(pop);
    print_message("HR@10 of users as unknown: bpr fold-in %.4f, pop %.4f\n", hf, hp);
    assert_true(hf > 2 * hp);
    sq_model_free(pop);
    free(s1);
    free(s2);
    sq_arena_free(ar);
    sq_model_free(m);
    sq_model_free(l);
}

/* ∂(BPR loss + L2 term)/∂θ from train_batch against central differences, on a hand-made batch:
 * 2 users × 3 positions × 2 negatives, one padded position. Only the batch's rows are touched. */
static void test_gradient(void **state) {
    (void)state;
    sq_error err = {0};
    sq_config *cfg = sq_config_create();
    assert_int_equal(sq_config_set_arg(cfg, "dim=4", &err), SQ_OK);
    assert_int_equal(sq_config_set_arg(cfg, "reg=0.05", &err), SQ_OK);
    assert_int_equal(sq_config_set_arg(cfg, "init_std=0.5", &err), SQ_OK);
    sq_model *m = NULL;
    assert_int_equal(sq_model_create(&m, "bpr", cfg, D, 3, &err), SQ_OK);
    sq_config_free(cfg);
    uint32_t users[2] = {10, 20}, in[6] = {0};
    uint32_t tg[6] = {5, 6, 7, 0, 8, 9};
    uint32_t negs[12] = {11, 12, 13, 5, 15, 16, 0, 0, 17, 18, 19, 6}; /* ids + 1 */
    sq_batch b = {
        .B = 2, .T = 3, .users = users, .inputs = in, .targets = tg, .negs = negs, .n_neg = 2};
    sq_params *ps = m->params;
    float *P = sq_params_find(ps, "bpr.P")->data, *Q = sq_params_find(ps, "bpr.Q")->data;
    float *bias = sq_params_find(ps, "bpr.bias")->data;
    for (int i = 0; i < 300; i++)
        bias[i] = 0.1f * (float)(i % 7) - 0.3f;
    sq_arena *a = sq_arena_create(m->ops->scratch(m, 2, 3));
    /* the objective: the reported loss plus (reg/2)/pairs Σ over triples of squared norms */
    const double reg = 0.05;
#define OBJ(out)                                                                                   \
    do {                                                                                           \
        double l_;                                                                                 \
        long nt_;                                                                                  \
        sq_arena_reset(a);                                                                         \
        sq_params_zero_grad(ps);                                                                   \
        assert_int_equal(m->ops->train_batch(m, &b, a, NULL, &l_, &nt_, &err), SQ_OK);             \
        assert_int_equal(nt_, 5);                                                                  \
        double r_ = 0;                                                                             \
        for (int p_ = 0; p_ < 6; p_++)                                                             \
            for (int k_ = 0; tg[p_] && k_ < 2; k_++) {                                             \
                uint32_t u_ = users[p_ / 3], i_ = tg[p_] - 1, j_ = negs[p_ * 2 + k_] - 1;          \
                r_ += (double)bias[i_] * bias[i_] + (double)bias[j_] * bias[j_];                   \
                for (int c_ = 0; c_ < 4; c_++)                                                     \
                    r_ += (double)P[u_ * 4 + c_] * P[u_ * 4 + c_] +                                \
                          (double)Q[i_ * 4 + c_] * Q[i_ * 4 + c_] +                                \
                          (double)Q[j_ * 4 + c_] * Q[j_ * 4 + c_];                                 \
            }                                                                                      \
        (out) = l_ + reg / 2 * r_ / 10;                                                            \
    } while (0)
    double f0;
    OBJ(f0);
    assert_true(isfinite(f0) && f0 > 0);
    assert_int_equal(sq_params_find(ps, "bpr.P")->n_touched, 2);
    assert_int_equal(sq_params_find(ps, "bpr.Q")->n_touched, 13); /* 5 targets, 10 negs, 2 dup */
    size_t nparam = ps->total;
    float *g = malloc(nparam * sizeof *g);
    memcpy(g, ps->grads, nparam * sizeof *g);
    float *checks[] = {&P[10 * 4 + 1], &P[20 * 4 + 3], &Q[4 * 4 + 0], &Q[5 * 4 + 2],
                       &Q[12 * 4 + 1], &Q[18 * 4 + 3], &bias[6],      &bias[14],
                       &P[30 * 4 + 0], &Q[100 * 4 + 0]}; /* the last two: not in the batch */
    double worst = 0;
    for (size_t c = 0; c < sizeof checks / sizeof *checks; c++) {
        float *x = checks[c], x0 = *x;
        const float h = 1e-2f;
        double fp, fm;
        *x = x0 + h;
        OBJ(fp);
        *x = x0 - h;
        OBJ(fm);
        *x = x0;
        double num = (fp - fm) / (2.0 * h), ana = g[x - ps->values];
        double rel = fabs(num - ana) / fmax(fabs(num) + fabs(ana), 1e-3);
        worst = fmax(worst, rel);
        if (c >= 8)
            assert_true(ana == 0.0);
    }
#undef OBJ
    print_message("gradient check: worst relative error %.2e\n", worst);
    assert_true(worst < 1e-2);
    free(g);
    sq_arena_free(a);
    sq_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_beats_popularity_and_loss_falls),
        cmocka_unit_test(test_save_load_and_unknown_users),
        cmocka_unit_test(test_gradient),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
