/* test_rnn_models.c — GRU4Rec and its LSTM twin (src/models/gru4rec.c) behind the model
 * interface and the training loop, on a generated log with planted Markov structure (the setup
 * of test_sasrec_model.c): both kinds learn it within a few epochs with the full cross-entropy,
 * GRU4Rec also with BPR-max over sampled negatives (HR@10 far above popularity); one seed gives
 * bit-identical parameters on one thread; scores survive save → load exactly; left padding does
 * not change a sequence's scores; bad configs and batches are refused.
 *
 * The floors were measured on one thread (hidden 32, maxlen 20, lr 0.01, seed 7; popularity
 * HR@10 0.203): gru4rec/ce 0.80 after 5 epochs, lstm/ce 0.76 after 6, gru4rec/bprmax 0.84 after
 * 4; each test asks for 70-75 % of that and for twice popularity. lr is 0.01, not the loop's
 * 1e-3: with 12 steps per epoch GRU4Rec at 1e-3 is at 0.20 after 6 epochs and 0.68 after 30. */
#include "models/fixture.h"
#include "testutil.h"

#include "seqrec/eval.h"
#include "seqrec/train.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static sq_dataset *D;
static sq_split S;
static double POP_HR;

static double hr10(const sq_model *m) {
    return tm_eval10(m, D, &S, NULL);
}

static int setup(void **state) {
    (void)state;
    if (test_gen_loo("g", 1500, 300, 45000, 5, &D, &S))
        return -1;
    omp_set_num_threads(1);
    POP_HR = tm_pop_hr10(D, &S);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    test_gen_loo_free(D, &S);
    return 0;
}

/* A small model of `kind` with extra "key=value" settings (NULL-terminated), untrained. */
static sq_model *create(const char *kind, const char *const *extra) {
    static const char *const base[] = {"hidden=32", "maxlen=20", "lr=0.01", NULL};
    return tm_create(kind, D, base, extra, 7);
}

/* The same, trained for `epochs` on one thread. */
static sq_model *train(const char *kind, const char *const *extra, uint32_t epochs,
                       sq_train_result *tr) {
    sq_model *m = create(kind, extra);
    tm_train(m, D, &S, epochs, 0, NULL, tr);
    return m;
}

static void check_learns(const char *kind, const char *const *extra, uint32_t epochs,
                         double floor) {
    sq_train_result tr;
    sq_model *m = train(kind, extra, epochs, &tr);
    double h = hr10(m);
    print_message("HR@10 %s%s%s %.4f (best epoch %u of %u, %.1f s), pop %.4f\n", kind,
                  extra ? " " : "", extra ? extra[0] : "", h, tr.best_epoch, tr.epochs_run,
                  tr.seconds, POP_HR);
    assert_true(h > 2 * POP_HR);
    assert_true(h > floor);
    sq_model_free(m);
}

static void test_gru4rec_learns(void **state) {
    (void)state;
    check_learns("gru4rec", NULL, 5, 0.6);
}

static void test_lstm_learns(void **state) {
    (void)state;
    check_learns("lstm", NULL, 6, 0.55);
}

static void test_gru4rec_bprmax_learns(void **state) {
    (void)state;
    const char *bpr[] = {"loss=bprmax", NULL};
    check_learns("gru4rec", bpr, 4, 0.6);
}

/* Scores of the users' validation-time sequences [0, n) into a fresh buffer. */
static float *score_users(const sq_model *m, uint32_t n) {
    uint32_t ni = sq_data_info_of(D)->n_items;
    float *s = malloc((size_t)n * ni * sizeof *s);
    sq_seq *q = malloc(n * sizeof *q);
    for (uint32_t u = 0; u < n; u++)
        q[u] = sq_model_user_seq(D, u, S.valid_end[u]);
    sq_arena *ar = sq_arena_create(m->ops->scratch(m, n, 0));
    sq_error err = {0};
    assert_int_equal(sq_model_score(m, q, n, s, ar, &err), SQ_OK);
    sq_arena_free(ar);
    free(q);
    return s;
}

/* Same seed, same parameters; save → load gives the same scores, bit for bit, and the saved
 * config is complete. Covers the GRU with the dense table and a two-layer LSTM with BPR-max's
 * row-sparse one. */
static void test_deterministic_and_save_load(void **state) {
    (void)state;
    const char *lstm2[] = {"loss=bprmax", "layers=2", NULL};
    const char *kinds[2] = {"gru4rec", "lstm"};
    const char *const *extra[2] = {NULL, lstm2};
    for (int c = 0; c < 2; c++) {
        sq_train_result t1, t2;
        sq_model *a = train(kinds[c], extra[c], 1, &t1), *b = train(kinds[c], extra[c], 1, &t2);
        assert_int_equal(a->params->total, b->params->total);
        assert_memory_equal(a->params->values, b->params->values, a->params->total * sizeof(float));
        sq_error err = {0};
        const char *path = test_tmp("r.sqm");
        assert_int_equal(sq_model_save(a, path, &err), SQ_OK);
        sq_model *l = NULL;
        assert_int_equal(sq_model_load(&l, path, D, &err), SQ_OK);
        assert_string_equal(l->ops->name, kinds[c]);
        uint32_t ni = sq_data_info_of(D)->n_items;
        float *s1 = score_users(a, 5), *s2 = score_users(l, 5);
        assert_memory_equal(s1, s2, 5 * ni * sizeof *s1);
        const char *keys[] = {"maxlen", "hidden", "layers", "dropout", "loss", "bpreg"};
        const char *want[] = {"20", "32", c ? "2" : "1", "0.2", c ? "bprmax" : "ce", "1"};
        for (int k = 0; k < 6; k++) {
            assert_non_null(sq_config_get(l->cfg, keys[k]));
            assert_string_equal(sq_config_get(l->cfg, keys[k]), want[k]);
        }
        assert_string_equal(sq_config_get(l->cfg, "negatives"), c ? "32" : "0");
        free(s1);
        free(s2);
        sq_model_free(a);
        sq_model_free(b);
        sq_model_free(l);
    }
}

/* max |a − b| over n values, relative to max |b|. */
static double rel_diff(const float *a, const float *b, size_t n) {
    double md = 0, mb = 1e-30;
    for (size_t i = 0; i < n; i++) {
        md = fmax(md, fabs((double)a[i] - b[i]));
        mb = fmax(mb, fabs((double)b[i]));
    }
    return md / mb;
}

/* A 4-event sequence scored alone (4 positions, no padding) and in a batch beside a sequence
 * longer than maxlen (so it is left-padded to 20) gets the same scores; the long one scores as
 * its last maxlen events. Equal up to float noise of the GEMMs' row blocking (1e-5). */
static void test_padding_invariance(void **state) {
    (void)state;
    const char *lstm2[] = {"layers=2", NULL};
    const char *kinds[2] = {"gru4rec", "lstm"};
    uint32_t ni = sq_data_info_of(D)->n_items;
    uint32_t *items = malloc(60 * sizeof *items);
    for (uint32_t k = 0; k < 60; k++)
        items[k] = (k * 37 + 11) % ni;
    for (int c = 0; c < 2; c++) {
        sq_train_result tr;
        sq_model *m = train(kinds[c], c ? lstm2 : NULL, 1, &tr);
        sq_seq shrt = {.items = items + 3, .n = 4, .user = UINT32_MAX};
        sq_seq lng = {.items = items, .n = 60, .user = UINT32_MAX};
        sq_seq tail = {.items = items + 40, .n = 20, .user = UINT32_MAX};
        sq_seq both[2] = {shrt, lng};
        float *alone = malloc(ni * sizeof *alone), *pair = malloc(2 * ni * sizeof *pair);
        float *last = malloc(ni * sizeof *last);
        sq_arena *ar = sq_arena_create(m->ops->scratch(m, 2, 0));
        sq_error err = {0};
        assert_int_equal(sq_model_score(m, &shrt, 1, alone, ar, &err), SQ_OK);
        sq_arena_reset(ar);
        assert_int_equal(sq_model_score(m, both, 2, pair, ar, &err), SQ_OK);
        sq_arena_reset(ar);
        assert_int_equal(sq_model_score(m, &tail, 1, last, ar, &err), SQ_OK);
        double d1 = rel_diff(pair, alone, ni), d2 = rel_diff(pair + ni, last, ni);
        print_message("%s: padded vs alone %.2g, long vs its last maxlen %.2g\n", kinds[c], d1, d2);
        assert_true(d1 < 1e-5);
        assert_true(d2 < 1e-5);
        /* and the padding really is there: the short sequence does not score like the long */
        assert_true(rel_diff(pair, pair + ni, ni) > 1e-2);
        sq_arena_free(ar);
        free(alone);
        free(pair);
        free(last);
        sq_model_free(m);
    }
    free(items);
}

/* Unknown loss, too many layers: SQ_ERR_ARG at create. A bprmax batch without negatives:
 * SQ_ERR_ARG from train_batch; an item id beyond the catalogue: SQ_ERR_ARG. */
static void test_refuses_bad_input(void **state) {
    (void)state;
    sq_error err = {0};
    sq_config *cfg = sq_config_create();
    sq_model *m = NULL;
    assert_int_equal(sq_config_set(cfg, "loss", "hinge", &err), SQ_OK);
    assert_int_equal(sq_model_create(&m, "gru4rec", cfg, D, 1, &err), SQ_ERR_ARG);
    assert_null(m);
    assert_int_equal(sq_config_set(cfg, "loss", "ce", &err), SQ_OK);
    assert_int_equal(sq_config_set(cfg, "layers", "99", &err), SQ_OK);
    assert_int_equal(sq_model_create(&m, "lstm", cfg, D, 1, &err), SQ_ERR_ARG);
    assert_null(m);
    sq_config_free(cfg);

    const char *bpr[] = {"loss=bprmax", NULL};
    m = create("gru4rec", bpr);
    uint32_t in[2 * 3] = {0, 1, 2, 0, 0, 5}, tg[2 * 3] = {0, 2, 3, 0, 0, 6}, users[2] = {0, 1};
    sq_batch b = {.B = 2, .T = 3, .users = users, .inputs = in, .targets = tg};
    sq_arena *ar = sq_arena_create(m->ops->scratch(m, 2, 3));
    sq_rng rng;
    sq_rng_seed(&rng, 1);
    double loss;
    long nt;
    assert_int_equal(m->ops->train_batch(m, &b, ar, &rng, &loss, &nt, &err), SQ_ERR_ARG);
    assert_non_null(strstr(err.msg, "negatives"));
    uint32_t negs[2 * 3 * 2] = {0, 0, 7, 8, 9, 10, 0, 0, 0, 0, 11, 12};
    b.negs = negs;
    b.n_neg = 2;
    sq_arena_reset(ar);
    assert_int_equal(m->ops->train_batch(m, &b, ar, &rng, &loss, &nt, &err), SQ_OK);
    assert_int_equal(nt, 3);
    assert_true(isfinite(loss) && loss > 0);
    in[5] = sq_data_info_of(D)->n_items + 1; /* past the last row of the table */
    sq_arena_reset(ar);
    assert_int_equal(m->ops->train_batch(m, &b, ar, &rng, &loss, &nt, &err), SQ_ERR_ARG);
    sq_arena_free(ar);
    sq_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gru4rec_learns),
        cmocka_unit_test(test_lstm_learns),
        cmocka_unit_test(test_gru4rec_bprmax_learns),
        cmocka_unit_test(test_deterministic_and_save_load),
        cmocka_unit_test(test_padding_invariance),
        cmocka_unit_test(test_refuses_bad_input),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
