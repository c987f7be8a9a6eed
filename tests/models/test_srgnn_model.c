/* test_srgnn_model.c — SR-GNN (src/models/srgnn.c) behind the model interface and the training
 * loop, on a generated log with planted Markov structure (the setup of test_rnn_models.c):
 *  - it learns: HR@10 far above popularity after a few epochs;
 *  - training is scoring: the loss of one batch row equals the mean cross-entropy of the scores
 *    of each of its prefixes, scored as sequences of their own (so a prefix's graph holds no
 *    later transition, and the train and score paths build the same graphs);
 *  - a finite-difference check of every parameter through the whole train_batch loss, with two
 *    GGNN steps and sessions that repeat items (self-loops, revisited nodes); l2 adds l2 · θ;
 *  - save → load gives the same scores bit for bit and the complete config; scores are the dot
 *    products of the sequence and item vectors; bad batches are refused.
 *
 * The floor was measured on one thread (hidden 32, maxlen 20, lr 0.01, seed 7, 4 epochs;
 * popularity HR@10 0.203): see test_learns for the figure and the margin asked for. */
#include "nn/gradcheck.c" /* helpers of tests/nn: this binary links tests/models' files only */

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

/* An untrained model for dataset d with "key=value" settings (NULL-terminated). */
static sq_model *create_for(const sq_dataset *d, const char *const *set) {
    return tm_create("srgnn", d, set, NULL, 7);
}

static sq_model *create(const char *const *set) {
    return create_for(D, set);
}

static const char *const SMALL[] = {"hidden=32", "maxlen=20", "lr=0.01", NULL};

static sq_model *train(uint32_t epochs, sq_train_result *tr) {
    sq_model *m = create(SMALL);
    tm_train(m, D, &S, epochs, 0, NULL, tr);
    return m;
}

static void test_learns(void **state) {
    (void)state;
    sq_train_result tr;
    sq_model *m = train(4, &tr);
    double h = hr10(m);
    print_message("HR@10 srgnn %.4f (best epoch %u of %u, %.1f s), pop %.4f\n", h, tr.best_epoch,
                  tr.epochs_run, tr.seconds, POP_HR);
    /* measured 0.665 after 4 epochs: ask for 75 % of it and twice popularity */
    assert_true(h > 2 * POP_HR);
    assert_true(h > 0.5);
    sq_model_free(m);
}

/* ========================================= Batches ========================================= */

enum { BB = 2, TT = 6 };

/* Row 0: padding, then 3 1 3 3 2 (a revisit and a self-loop) with targets 1 3 3 2 4;
 * row 1: 5 6 5 7 6 8 with a target only at some positions. Table rows are item + 1. */
static const uint32_t IN[BB * TT] = {0, 4, 2, 4, 4, 3, 6, 7, 6, 8, 7, 9};
static const uint32_t TG[BB * TT] = {0, 2, 4, 4, 3, 5, 7, 0, 8, 7, 0, 2};

static double batch_loss(sq_model *m, const uint32_t *in, const uint32_t *tg, long *nt) {
    sq_arena *a = sq_arena_create(m->ops->scratch(m, BB, TT));
    sq_batch b = {.B = BB, .T = TT, .inputs = in, .targets = tg};
    sq_error err = {0};
    sq_rng rng;
    sq_rng_seed(&rng, 1);
    double loss = -1;
    sq_params_zero_grad(m->params);
    if (m->ops->train_batch(m, &b, a, &rng, &loss, nt, &err))
        fail_msg("train_batch: %s", err.msg);
    sq_arena_free(a);
    return loss;
}

/* The train step's loss, recomputed from scratch (for the finite differences). */
static double loss_only(void *ctx) {
    long nt;
    return batch_loss(ctx, IN, TG, &nt);
}

/* Mean cross-entropy of targets tg over the scores of the sequences seqs. */
static double score_ce(const sq_model *m, const sq_seq *seqs, const uint32_t *tg, uint32_t n) {
    uint32_t ni = sq_data_info_of(D)->n_items;
    float *sc = malloc((size_t)n * ni * sizeof *sc);
    sq_arena *a = sq_arena_create(m->ops->scratch(m, n, 0));
    sq_error err = {0};
    assert_int_equal(sq_model_score(m, seqs, n, sc, a, &err), SQ_OK);
    double sum = 0;
    for (uint32_t k = 0; k < n; k++) {
        const float *s = sc + (size_t)k * ni;
        double mx = -INFINITY, z = 0;
        for (uint32_t j = 0; j < ni; j++)
            mx = fmax(mx, s[j]);
        for (uint32_t j = 0; j < ni; j++)
            z += exp(s[j] - mx);
        sum += mx + log(z) - s[tg[k]];
    }
    sq_arena_free(a);
    free(sc);
    return sum / n;
}

static void test_train_is_score(void **state) {
    (void)state;
    const char *set[] = {"hidden=8", "maxlen=6", "steps=2", NULL};
    sq_model *m = create(set);
    long nt = 0;
    double loss = batch_loss(m, IN, TG, &nt);
    assert_int_equal(nt, 9); /* 5 targets in row 0, 4 in row 1 */
    /* every prefix with a target, as a sequence of dataset ids (rows − 1) */
    uint32_t items[BB * TT], tg[9];
    sq_seq seqs[9];
    uint32_t n = 0;
    for (int r = 0; r < BB; r++) {
        int s0 = 0;
        for (int t = 0; t < TT; t++) {
            items[r * TT + t] = IN[r * TT + t] - 1;
            if (!IN[r * TT + t]) {
                s0 = t + 1;
                continue;
            }
            if (!TG[r * TT + t])
                continue;
            seqs[n] = (sq_seq){
                .items = items + r * TT + s0, .n = (uint32_t)(t - s0 + 1), .user = UINT32_MAX};
            tg[n++] = TG[r * TT + t] - 1;
        }
    }
    assert_int_equal(n, 9);
    double want = score_ce(m, seqs, tg, n);
    print_message("train_batch loss %.6f, mean CE of the prefixes' scores %.6f\n", loss, want);
    assert_float_equal(loss, want, 1e-4 * want);
    /* the worst case fits ops->scratch: full rows of distinct items, a target everywhere */
    uint32_t full_in[BB * TT], full_tg[BB * TT];
    for (int k = 0; k < BB * TT; k++) {
        full_in[k] = (uint32_t)k + 1;
        full_tg[k] = (uint32_t)k + 2;
    }
    batch_loss(m, full_in, full_tg, &nt);
    assert_int_equal(nt, BB * TT);
    /* a batch row with an item outside the catalogue is refused */
    uint32_t bad[BB * TT];
    memcpy(bad, IN, sizeof bad);
    bad[3] = sq_data_info_of(D)->n_items + 1;
    sq_arena *a = sq_arena_create(m->ops->scratch(m, BB, TT));
    sq_batch b = {.B = BB, .T = TT, .inputs = bad, .targets = TG};
    sq_error err = {0};
    double l;
    assert_int_equal(m->ops->train_batch(m, &b, a, NULL, &l, &nt, &err), SQ_ERR_ARG);
    sq_arena_free(a);
    sq_model_free(m);
}

/* Every parameter of a tiny model (two GGNN steps) over a catalogue of 12 items against
 * central differences of the batch loss. The loss is a float (~1e-7 relative rounding), so
 * the step is 1e-2 and the floor 2e-3 (the noise of a quotient is ~1e-5); the curvature error
 * of that step stays under the 2 % tolerance at these weights. */
static void test_gradcheck(void **state) {
    (void)state;
    sq_dataset *d;
    sq_split s;
    assert_int_equal(test_gen_loo("tiny", 30, 12, 300, 3, &d, &s), 0);
    assert_int_equal(sq_data_info_of(d)->n_items, 12);
    const char *set[] = {"hidden=4", "maxlen=6", "steps=2", "l2=0", NULL};
    sq_model *m = create_for(d, set);
    long nt;
    sq_params *ps = m->params;
    const gc_opts o = {.eps = 1e-2, .tol = 2e-2, .floor = 2e-3, .stride = 1};
    int bad = 0;
    for (size_t i = 0; i < ps->n; i++) {
        sq_param *p = &ps->p[i];
        float *g = malloc(p->size * sizeof *g);
        batch_loss(m, IN, TG, &nt); /* the probes leave gradients of a perturbed point behind */
        memcpy(g, p->grad, p->size * sizeof *g);
        bad += gc_check(p->name, loss_only, m, p->data, g, p->size, &o);
        free(g);
    }
    assert_int_equal(bad, 0);
    /* l2 adds l2 · θ to every gradient, and nothing to the loss */
    float *g0 = malloc(ps->total * sizeof *g0);
    double l0 = batch_loss(m, IN, TG, &nt);
    memcpy(g0, ps->grads, ps->total * sizeof *g0);
    sq_model_free(m);
    const char *set2[] = {"hidden=4", "maxlen=6", "steps=2", "l2=0.5", NULL};
    m = create_for(d, set2);
    ps = m->params;
    assert_float_equal(batch_loss(m, IN, TG, &nt), l0, 1e-6);
    double worst = 0;
    for (size_t j = 0; j < ps->total; j++)
        worst = fmax(worst, fabs(ps->grads[j] - g0[j] - 0.5 * ps->values[j]));
    assert_true(worst < 1e-6);
    free(g0);
    sq_model_free(m);
    test_gen_loo_free(d, &s);
}

/* ==================================== Files and vectors ==================================== */

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

static void test_save_load_vectors(void **state) {
    (void)state;
    sq_train_result tr;
    sq_model *a = train(1, &tr);
    sq_error err = {0};
    const char *path = test_tmp("s.sqm");
    assert_int_equal(sq_model_save(a, path, &err), SQ_OK);
    sq_model *l = NULL;
    assert_int_equal(sq_model_load(&l, path, D, &err), SQ_OK);
    assert_string_equal(l->ops->name, "srgnn");
    uint32_t ni = sq_data_info_of(D)->n_items;
    float *s1 = score_users(a, 5), *s2 = score_users(l, 5);
    assert_memory_equal(s1, s2, 5 * ni * sizeof *s1);
    const char *keys[] = {"maxlen", "hidden", "steps", "l2", "epochs"};
    const char *want[] = {"20", "32", "1", "1e-05", "1"};
    for (int k = 0; k < 5; k++) {
        assert_non_null(sq_config_get(l->cfg, keys[k]));
        assert_string_equal(sq_config_get(l->cfg, keys[k]), want[k]);
    }
    /* scores are sequence vector · item vector; a sequence of unknown items scores all 0 */
    uint32_t dim = 0;
    const float *iv = l->ops->item_vectors(l, &dim);
    assert_int_equal(dim, 32);
    uint32_t unknown[2] = {ni, ni + 5};
    sq_seq q[2] = {sq_model_user_seq(D, 0, S.valid_end[0]),
                   {.items = unknown, .n = 2, .user = UINT32_MAX}};
    float sv[2 * 32], sc[2 * 300];
    assert_true(ni <= 300);
    sq_arena *ar = sq_arena_create(l->ops->scratch(l, 2, 0));
    assert_int_equal(l->ops->seq_vectors(l, q, 2, sv, ar, &err), SQ_OK);
    sq_arena_reset(ar);
    assert_int_equal(sq_model_score(l, q, 2, sc, ar, &err), SQ_OK);
    for (uint32_t j = 0; j < ni; j++) {
        double dp = 0;
        for (uint32_t k = 0; k < dim; k++)
            dp += (double)sv[k] * iv[(size_t)j * dim + k];
        assert_float_equal(sc[j], dp, 1e-4);
        assert_true(sc[ni + j] == 0.0f);
    }
    for (uint32_t j = 0; j < ni; j++) /* user 0 alone scores as in a batch of 5 (GEMM noise) */
        assert_float_equal(sc[j], s1[j], 1e-4 * (1 + fabsf(s1[j])));
    sq_arena_free(ar);
    free(s1);
    free(s2);
    sq_model_free(a);
    sq_model_free(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train_is_score),
        cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_save_load_vectors),
        cmocka_unit_test(test_learns),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
