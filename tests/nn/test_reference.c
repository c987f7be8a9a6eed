/* test_reference.c — our layers against PyTorch: outputs and every gradient of a SASRec block
 * (2 heads, padding), a GRU and an LSTM, from fixtures written by
 * tests/reference/make_fixtures.py (torch is needed only to regenerate them).
 *
 * Tolerance: |ours - torch| <= 1e-4 * max(|ours|, |torch|, 1e-2) per value, i.e. 1e-4
 * relative with an absolute floor of 1e-6; the max difference of each tensor is printed. */
#include "testutil.h"

#include "fixture.h"

#include "seqrec/nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double REL_TOL = 1e-4, FLOOR = 1e-2;

/* ====================================== Fixture reading ====================================== */

/* Copies fixture tensor `name` into dst of n values (sizes must agree). */
static void take(const fx_fixture *fx, const char *name, float *dst, size_t n) {
    memcpy(dst, fx_get(fx, name, n)->v, n * sizeof *dst);
}

/* Every parameter of ps gets the fixture tensor of the same name. */
static void take_params(const fx_fixture *fx, sq_params *ps) {
    for (size_t i = 0; i < ps->n; i++)
        take(fx, ps->p[i].name, ps->p[i].data, ps->p[i].size);
}

static int compare(const fx_fixture *fx, const char *name, const float *ours, size_t n) {
    return fx_compare(fx, name, ours, n, REL_TOL, FLOOR);
}

static int compare_grads(const fx_fixture *fx, const sq_params *ps) {
    int bad = 0;
    char name[80];
    for (size_t i = 0; i < ps->n; i++) {
        snprintf(name, sizeof name, "grad.%s", ps->p[i].name);
        bad += compare(fx, name, ps->p[i].grad, ps->p[i].size);
    }
    return bad;
}

/* ===================================== SASRec block ========================================= */

static void test_sasrec_block(void **state) {
    (void)state;
    fx_fixture fx;
    fx_load(&fx, "sasrec_block.bin");
    const fx_record *cfg = fx_get(&fx, "config", 0);
    const int B = (int)cfg->v[0], T = (int)cfg->v[1], C = (int)cfg->v[2], H = (int)cfg->v[3];
    const float eps = cfg->v[4];
    const size_t n = (size_t)B * T * C;
    assert_true(B == 2 && T == 5 && C == 8 && H == 2);

    sq_params ps;
    sq_error err = {0};
    sq_nn_block blk;
    sq_params_init(&ps);
    assert_int_equal(
        sq_nn_block_init(&blk, &ps, "block0", SQ_BLOCK_SASREC, C, H, C, SQ_ACT_RELU, 0.2f, eps), 0);
    assert_int_equal(sq_params_alloc(&ps, &err), SQ_OK);
    take_params(&fx, &ps);

    float *x = calloc(n, sizeof *x), *w = calloc(n, sizeof *w), *y = calloc(n, sizeof *y);
    float *dx = calloc(n, sizeof *dx);
    uint8_t pad[2 * 5];
    float padf[2 * 5];
    assert_true(x && w && y && dx);
    take(&fx, "x", x, n);
    take(&fx, "w", w, n);
    take(&fx, "pad", padf, (size_t)B * T);
    for (int i = 0; i < B * T; i++)
        pad[i] = padf[i] != 0.0f;

    sq_arena *a = sq_arena_create(1 << 20);
    assert_non_null(a);
    sq_nn_block_acts acts;
    printf("SASRec block vs PyTorch (B=%d T=%d C=%d H=%d, padded, eps %g):\n", B, T, C, H, eps);
    /* rng NULL: inference, dropout off (the fixture has none) */
    assert_int_equal(sq_nn_block_forward(&blk, &ps, a, &acts, y, x, pad, B, T, NULL, &err), SQ_OK);
    int bad = compare(&fx, "y", y, n);
    bad += compare(&fx, "att", acts.attn.att, (size_t)B * H * T * T);
    sq_params_zero_grad(&ps);
    assert_int_equal(sq_nn_block_backward(&blk, &ps, a, &acts, dx, w, &err), SQ_OK);
    bad += compare(&fx, "grad.x", dx, n);
    bad += compare_grads(&fx, &ps);
    assert_int_equal(bad, 0);

    sq_arena_free(a);
    sq_params_free(&ps);
    free(x);
    free(w);
    free(y);
    free(dx);
    fx_free(&fx);
}

/* ======================================== GRU / LSTM ========================================= */

static void check_rnn(const char *file, int lstm) {
    fx_fixture fx;
    fx_load(&fx, file);
    const fx_record *cfg = fx_get(&fx, "config", 0);
    const int B = (int)cfg->v[0], T = (int)cfg->v[1], C = (int)cfg->v[2], G = (int)cfg->v[3];
    const size_t nx = (size_t)B * T * C, ny = (size_t)B * T * G, ns = (size_t)B * G;

    sq_params ps;
    sq_error err = {0};
    sq_nn_rnn l;
    sq_params_init(&ps);
    assert_int_equal(
        lstm ? sq_nn_lstm_init(&l, &ps, "rnn", C, G) : sq_nn_gru_init(&l, &ps, "rnn", C, G), 0);
    assert_int_equal(sq_params_alloc(&ps, &err), SQ_OK);
    take_params(&fx, &ps);

    float *x = calloc(nx, sizeof *x), *dx = calloc(nx, sizeof *dx);
    float *y = calloc(ny, sizeof *y), *w = calloc(ny, sizeof *w);
    float *h0 = calloc(ns, sizeof *h0), *c0 = calloc(ns, sizeof *c0);
    float *dh0 = calloc(ns, sizeof *dh0), *dc0 = calloc(ns, sizeof *dc0);
    assert_true(x && dx && y && w && h0 && c0 && dh0 && dc0);
    take(&fx, "x", x, nx);
    take(&fx, "w", w, ny);
    take(&fx, "h0", h0, ns);
    if (lstm)
        take(&fx, "c0", c0, ns);

    sq_arena *a = sq_arena_create(1 << 20);
    assert_non_null(a);
    sq_nn_rnn_acts acts;
    printf("%s vs PyTorch (B=%d T=%d C=%d G=%d, given initial state):\n", lstm ? "LSTM" : "GRU", B,
           T, C, G);
    sq_status rc = lstm ? sq_nn_lstm_forward(&l, &ps, a, &acts, y, x, h0, c0, NULL, B, T, &err)
                        : sq_nn_gru_forward(&l, &ps, a, &acts, y, x, h0, NULL, B, T, &err);
    assert_int_equal(rc, SQ_OK);
    int bad = compare(&fx, "y", y, ny);
    sq_params_zero_grad(&ps);
    rc = lstm ? sq_nn_lstm_backward(&l, &ps, a, &acts, dx, dh0, dc0, w, &err)
              : sq_nn_gru_backward(&l, &ps, a, &acts, dx, dh0, w, &err);
    assert_int_equal(rc, SQ_OK);
    bad += compare(&fx, "grad.x", dx, nx);
    bad += compare(&fx, "grad.h0", dh0, ns);
    if (lstm)
        bad += compare(&fx, "grad.c0", dc0, ns);
    bad += compare_grads(&fx, &ps);
    assert_int_equal(bad, 0);

    sq_arena_free(a);
    sq_params_free(&ps);
    free(x);
    free(dx);
    free(y);
    free(w);
    free(h0);
    free(c0);
    free(dh0);
    free(dc0);
    fx_free(&fx);
}

static void test_gru(void **state) {
    (void)state;
    check_rnn("gru.bin", 0);
}

static void test_lstm(void **state) {
    (void)state;
    check_rnn("lstm.bin", 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sasrec_block),
        cmocka_unit_test(test_gru),
        cmocka_unit_test(test_lstm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
