/* test_optim.c — optimisers against hand-computed steps, lazy Adam against dense Adam, gradient
 * clipping, learning-rate schedules.
 *
 * The hand calculations use one tensor x0 = (1, −2, 0.5) with the gradients g1 = (0.1, −0.2, 0.3)
 * at step 1 and g2 = (−0.1, 0.4, 0) at step 2 (fed directly, not computed from x), lr 0.1.
 * Tolerance 1e-6 (float arithmetic on values of order 1). */
#include "testutil.h"

#include "seqrec/nn.h"

#include <math.h>
#include <string.h>

static const float X0[3] = {1.0f, -2.0f, 0.5f};
static const float G1[3] = {0.1f, -0.2f, 0.3f};
static const float G2[3] = {-0.1f, 0.4f, 0.0f};

/* A group with one dense tensor "w" of 3 values, set to X0. */
static sq_param *make_w(sq_params *ps) {
    sq_params_init(ps);
    size_t shape[1] = {3};
    assert_int_equal(sq_params_declare(ps, "w", 1, shape, 0), 0);
    assert_int_equal(sq_params_alloc(ps, NULL), SQ_OK);
    memcpy(ps->p[0].data, X0, sizeof X0);
    return &ps->p[0];
}

/* Runs two steps with G1, G2 and compares with the expected values after each. */
static void two_steps(const sq_optim_opts *o, const float want1[3], const float want2[3]) {
    sq_params ps;
    sq_param *w = make_w(&ps);
    sq_optim opt;
    assert_int_equal(sq_optim_init(&opt, &ps, o, NULL), SQ_OK);
    const float *g[2] = {G1, G2}, *want[2] = {want1, want2};
    for (int s = 0; s < 2; s++) {
        memcpy(w->grad, g[s], 3 * sizeof(float));
        assert_int_equal(sq_optim_step(&opt, &ps, 0.1f, NULL), SQ_OK);
        for (int i = 0; i < 3; i++)
            assert_float_equal(w->data[i], want[s][i], 1e-6);
    }
    assert_int_equal(opt.step, 2);
    sq_optim_free(&opt);
    sq_params_free(&ps);
}

static void test_sgd_momentum(void **state) {
    (void)state;
    /* μ 0.9. Step 1: u = g1 = (0.1, −0.2, 0.3); x = x0 − 0.1 u = (0.99, −1.98, 0.47).
     * Step 2: u = 0.9 u + g2 = (−0.01, 0.22, 0.27); x −= 0.1 u → (0.991, −2.002, 0.443). */
    sq_optim_opts o = {.kind = SQ_OPTIM_SGD, .momentum = 0.9f};
    two_steps(&o, (const float[]){0.99f, -1.98f, 0.47f}, (const float[]){0.991f, -2.002f, 0.443f});
    /* With L2 weight decay 0.5: step 1 g' = g1 + 0.5 x0 = (0.6, −1.2, 0.55), u = g',
     * x = (0.94, −1.88, 0.445). Step 2 g' = g2 + 0.5 x = (0.37, −0.54, 0.2225),
     * u = 0.9 (0.6, −1.2, 0.55) + g' = (0.91, −1.62, 0.7175), x = (0.849, −1.718, 0.37325). */
    o.weight_decay = 0.5f;
    two_steps(&o, (const float[]){0.94f, -1.88f, 0.445f},
              (const float[]){0.849f, -1.718f, 0.37325f});
}

static void test_adam(void **state) {
    (void)state;
    /* β (0.9, 0.999), eps 1e-8.
     * Step 1: m = 0.1 g1, v = 0.001 g1²; m̂ = g1, v̂ = g1²: x −= 0.1 sign(g1) → (0.9, −1.9, 0.4).
     * Step 2: m = 0.9 m + 0.1 g2 = (−0.001, 0.022, 0.027);
     *         v = 0.999 v + 0.001 g2² = (1.999e-5, 1.9996e-4, 8.991e-5);
     *         m̂ = m / 0.19 = (−0.00526316, 0.11578947, 0.14210526);
     *         v̂ = v / 0.001999 = (0.01, 0.10003002, 0.04497749), sqrt = (0.1, 0.31627523,
     *         0.21207897); x −= 0.1 m̂ / sqrt(v̂) = (−0.00526316, 0.03661037, 0.06700580)
     *         → (0.90526316, −1.93661037, 0.33299420). */
    sq_optim_opts o = {.kind = SQ_OPTIM_ADAM};
    two_steps(&o, (const float[]){0.9f, -1.9f, 0.4f},
              (const float[]){0.90526316f, -1.93661037f, 0.33299420f});
}

static void test_adamw(void **state) {
    (void)state;
    /* Decoupled weight decay 0.1: each step first x *= 1 − lr wd = 0.99, then the Adam step
     * above (the moments do not see the decay).
     * Step 1: x = 0.99 x0 − 0.1 sign(g1) = (0.89, −1.88, 0.395).
     * Step 2: x = 0.99 (0.89, −1.88, 0.395) − (−0.00526316, 0.03661037, 0.06700580)
     *           = (0.88636316, −1.89781037, 0.32404420). */
    sq_optim_opts o = {.kind = SQ_OPTIM_ADAMW, .weight_decay = 0.1f};
    two_steps(&o, (const float[]){0.89f, -1.88f, 0.395f},
              (const float[]){0.88636316f, -1.89781037f, 0.32404420f});
}

/* A group: dense "a" [3], table "emb" [5, 3] (sparse or not), dense "b" [2]. */
static void make_group(sq_params *ps, int sparse) {
    sq_params_init(ps);
    size_t s3[1] = {3}, s53[2] = {5, 3}, s2[1] = {2};
    assert_int_equal(sq_params_declare(ps, "a", 1, s3, 0), 0);
    assert_int_equal(sq_params_declare(ps, "emb", 2, s53, sparse), 1);
    assert_int_equal(sq_params_declare(ps, "b", 1, s2, 0), 2);
    assert_int_equal(sq_params_alloc(ps, NULL), SQ_OK);
    for (size_t i = 0; i < ps->n; i++)
        for (size_t j = 0; j < ps->p[i].size; j++)
            ps->p[i].data[j] = 0.1f * (float)(i + 1) - 0.07f * (float)j;
}

/* Deterministic gradient for step s at flat index j of tensor i. */
static float grad_at(int s, size_t i, size_t j) {
    return sinf(1.3f * (float)s + 0.7f * (float)i + 0.37f * (float)j);
}

/* When every row is touched every step, lazy Adam equals dense Adam exactly. */
static void test_lazy_equals_dense(void **state) {
    (void)state;
    sq_optim_kind kinds[3] = {SQ_OPTIM_ADAM, SQ_OPTIM_ADAMW, SQ_OPTIM_SGD};
    for (int kk = 0; kk < 3; kk++) {
        sq_params lz, dn;
        make_group(&lz, 1);
        make_group(&dn, 0);
        sq_optim_opts o = {.kind = kinds[kk], .momentum = 0.5f, .weight_decay = 0.01f};
        sq_optim ol, od;
        assert_int_equal(sq_optim_init(&ol, &lz, &o, NULL), SQ_OK);
        assert_int_equal(sq_optim_init(&od, &dn, &o, NULL), SQ_OK);
        for (int s = 0; s < 4; s++) {
            sq_params_zero_grad(&lz);
            sq_params_zero_grad(&dn);
            for (uint32_t r = 5; r-- > 0;)
                sq_param_touch(&lz.p[1], r); /* all, any order */
            for (size_t i = 0; i < 3; i++)
                for (size_t j = 0; j < lz.p[i].size; j++)
                    lz.p[i].grad[j] = dn.p[i].grad[j] = grad_at(s, i, j);
            assert_int_equal(sq_optim_step(&ol, &lz, 0.05f, NULL), SQ_OK);
            assert_int_equal(sq_optim_step(&od, &dn, 0.05f, NULL), SQ_OK);
        }
        for (size_t i = 0; i < 3; i++)
            for (size_t j = 0; j < lz.p[i].size; j++)
                assert_true(lz.p[i].data[j] == dn.p[i].data[j]);
        sq_optim_free(&ol);
        sq_optim_free(&od);
        sq_params_free(&lz);
        sq_params_free(&dn);
    }
}

/* Reference Adam on one value, in double, applied at the global steps listed. */
static double adam_ref(double x, const int *steps, const double *g, int n, double lr) {
    double m = 0, v = 0;
    for (int k = 0; k < n; k++) {
        int t = steps[k];
        m = 0.9 * m + 0.1 * g[k];
        v = 0.999 * v + 0.001 * g[k] * g[k];
        x -= lr / (1 - pow(0.9, t)) * m / (sqrt(v) / sqrt(1 - pow(0.999, t)) + 1e-8);
    }
    return x;
}

/* Untouched rows keep their values and moments; a row touched at steps 1 and 3 only gets two
 * Adam updates with the global step's bias correction and moments not decayed at step 2. */
static void test_lazy_untouched(void **state) {
    (void)state;
    sq_params ps;
    make_group(&ps, 1);
    sq_param *e = &ps.p[1];
    float before[15];
    memcpy(before, e->data, sizeof before);
    sq_optim_opts o = {.kind = SQ_OPTIM_ADAM};
    sq_optim opt;
    assert_int_equal(sq_optim_init(&opt, &ps, &o, NULL), SQ_OK);
    const uint32_t touched[3][2] = {{1, 3}, {3, 3}, {1, 3}}; /* row 3 twice at step 2 */
    for (int s = 0; s < 3; s++) {
        sq_params_zero_grad(&ps);
        for (int k = 0; k < 2; k++) {
            uint32_t r = touched[s][k];
            sq_param_touch(e, r);
            for (int c = 0; c < 3; c++)
                e->grad[r * 3 + c] += 0.5f * grad_at(s, 1, r * 3 + c);
        }
        assert_int_equal(sq_optim_step(&opt, &ps, 0.01f, NULL), SQ_OK);
    }
    for (int r = 0; r < 5; r += 2) /* rows 0, 2, 4: untouched */
        for (int c = 0; c < 3; c++) {
            assert_true(e->data[r * 3 + c] == before[r * 3 + c]);
            assert_true(opt.m[e->offset + r * 3 + c] == 0.0f);
            assert_true(opt.v[e->offset + r * 3 + c] == 0.0f);
        }
    for (int c = 0; c < 3; c++) {
        int steps1[2] = {1, 3}, steps3[3] = {1, 2, 3};
        double g1[2] = {0.5 * grad_at(0, 1, 3 + c), 0.5 * grad_at(2, 1, 3 + c)};
        double g3[3] = {0.5 * grad_at(0, 1, 9 + c), 2 * 0.5 * grad_at(1, 1, 9 + c),
                        0.5 * grad_at(2, 1, 9 + c)};
        assert_float_equal(e->data[3 + c], adam_ref(before[3 + c], steps1, g1, 2, 0.01), 1e-6);
        assert_float_equal(e->data[9 + c], adam_ref(before[9 + c], steps3, g3, 3, 0.01), 1e-6);
    }
    sq_optim_free(&opt);
    sq_params_free(&ps);
}

static void test_optim_errors(void **state) {
    (void)state;
    sq_params ps, other;
    make_w(&ps);
    make_group(&other, 0);
    sq_optim opt;
    sq_error err = {0};
    sq_optim_opts bad = {.kind = SQ_OPTIM_SGD, .momentum = 1.0f};
    assert_int_equal(sq_optim_init(&opt, &ps, &bad, &err), SQ_ERR_ARG);
    sq_optim_free(&opt); /* empty: fine */
    sq_optim_opts o = {.kind = SQ_OPTIM_ADAM};
    assert_int_equal(sq_optim_init(&opt, &ps, &o, &err), SQ_OK);
    assert_int_equal(sq_optim_step(&opt, &other, 0.1f, &err), SQ_ERR_MISMATCH);
    assert_int_equal(sq_optim_step(&opt, &ps, NAN, &err), SQ_ERR_ARG);
    sq_optim_free(&opt);
    sq_alloc_fail_after(0);
    assert_int_equal(sq_optim_init(&opt, &ps, &o, &err), SQ_ERR_NOMEM);
    sq_alloc_fail_after(-1);
    sq_params_free(&ps);
    sq_params_free(&other);
}

/* Norm over a (dense) and the touched rows of emb (sparse): a.grad = (1, 2, 2), row 1 = (0, 4, 0)
 * → norm sqrt(9 + 16) = 5. Row 2 holds a stray value that is not touched: neither counted nor
 * scaled. Clipping to 2.5 halves everything counted. */
static void test_clip(void **state) {
    (void)state;
    sq_params ps;
    make_group(&ps, 1);
    sq_params_zero_grad(&ps);
    float *a = ps.p[0].grad, *e = ps.p[1].grad;
    a[0] = 1;
    a[1] = 2;
    a[2] = 2;
    sq_param_touch(&ps.p[1], 1);
    sq_param_touch(&ps.p[1], 1); /* once */
    e[3 + 1] = 4;
    e[6 + 0] = 100; /* row 2, untouched */
    float norm = 0;
    assert_int_equal(sq_optim_clip_grad_norm(&ps, 10.0f, &norm, NULL), SQ_OK);
    assert_float_equal(norm, 5.0f, 1e-6);
    assert_true(a[1] == 2.0f); /* under the limit: unchanged */
    assert_int_equal(sq_optim_clip_grad_norm(&ps, 2.5f, &norm, NULL), SQ_OK);
    assert_float_equal(norm, 5.0f, 1e-6);
    assert_float_equal(a[0], 0.5f, 1e-7);
    assert_float_equal(a[2], 1.0f, 1e-7);
    assert_float_equal(e[4], 2.0f, 1e-7);
    assert_true(e[6] == 100.0f);
    assert_int_equal(sq_optim_clip_grad_norm(&ps, 0.0f, &norm, NULL), SQ_OK); /* measure only */
    assert_float_equal(norm, 2.5f, 1e-6);
    a[0] = INFINITY;
    sq_error err = {0};
    assert_int_equal(sq_optim_clip_grad_norm(&ps, 1.0f, &norm, &err), SQ_ERR_NUMERIC);
    assert_true(a[1] == 1.0f); /* nothing scaled */
    sq_params_free(&ps);
}

/* A table big enough that clipping runs over its touched rows in parallel: the norm equals a
 * serial double sum, every touched row is scaled, untouched rows keep their stray values. */
static void test_clip_large_sparse(void **state) {
    (void)state;
    enum { ROWS = 4000, C = 64 };
    sq_params ps;
    sq_params_init(&ps);
    size_t shape[2] = {ROWS, C};
    assert_int_equal(sq_params_declare(&ps, "emb", 2, shape, 1), 0);
    assert_int_equal(sq_params_alloc(&ps, NULL), SQ_OK);
    sq_params_zero_grad(&ps);
    sq_param *p = &ps.p[0];
    double want = 0;
    for (uint32_t r = 0; r < ROWS; r++) {
        for (uint32_t c = 0; c < C; c++)
            p->grad[(size_t)r * C + c] = grad_at((int)r, 1, c);
        if (r % 3 != 2) { /* two rows in three touched: 2667 × 64 floats > the parallel cut */
            sq_param_touch(p, r);
            for (uint32_t c = 0; c < C; c++)
                want += (double)p->grad[(size_t)r * C + c] * p->grad[(size_t)r * C + c];
        }
    }
    want = sqrt(want);
    float norm = 0, before = p->grad[2 * C + 5], touched = p->grad[4 * C + 7];
    assert_int_equal(sq_optim_clip_grad_norm(&ps, (float)(want / 4), &norm, NULL), SQ_OK);
    assert_float_equal(norm, want, want * 1e-6);
    assert_float_equal(p->grad[4 * C + 7], touched / 4, fabsf(touched) * 1e-5f + 1e-7f);
    assert_true(p->grad[2 * C + 5] == before); /* row 2: untouched, unscaled */
    assert_int_equal(sq_optim_clip_grad_norm(&ps, 0.0f, &norm, NULL), SQ_OK);
    assert_float_equal(norm, want / 4, want * 1e-6);
    sq_params_free(&ps);
}

static void test_schedule(void **state) {
    (void)state;
    sq_lr_schedule s = {
        .lr = 1e-3f, .warmup = 10, .total = 110, .min_lr = 1e-4f, .decay = SQ_LR_LINEAR};
    assert_float_equal(sq_lr_at(&s, 0), 1e-4f, 1e-10);    /* 1e-3 · 1/10 */
    assert_float_equal(sq_lr_at(&s, 4), 5e-4f, 1e-10);    /* 1e-3 · 5/10 */
    assert_float_equal(sq_lr_at(&s, 9), 1e-3f, 1e-10);    /* warm-up done */
    assert_float_equal(sq_lr_at(&s, 10), 1e-3f, 1e-10);   /* p = 0 */
    assert_float_equal(sq_lr_at(&s, 60), 5.5e-4f, 1e-10); /* p = 0.5: 1e-4 + 9e-4 / 2 */
    assert_float_equal(sq_lr_at(&s, 110), 1e-4f, 1e-10);
    assert_float_equal(sq_lr_at(&s, 5000), 1e-4f, 1e-10);
    s.decay = SQ_LR_COSINE;
    assert_float_equal(sq_lr_at(&s, 60), 5.5e-4f, 1e-10);
    /* p = 0.25: 1e-4 + 9e-4 (1 + cos(π/4)) / 2 = 8.681981e-4 */
    assert_float_equal(sq_lr_at(&s, 35), 8.681981e-4f, 1e-10);
    assert_float_equal(sq_lr_at(&s, 110), 1e-4f, 1e-10);
    s.decay = SQ_LR_CONSTANT;
    assert_float_equal(sq_lr_at(&s, 100000), 1e-3f, 1e-10);
    s.warmup = 0;
    assert_float_equal(sq_lr_at(&s, 0), 1e-3f, 1e-10);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_momentum),   cmocka_unit_test(test_adam),
        cmocka_unit_test(test_adamw),          cmocka_unit_test(test_lazy_equals_dense),
        cmocka_unit_test(test_lazy_untouched), cmocka_unit_test(test_optim_errors),
        cmocka_unit_test(test_clip),           cmocka_unit_test(test_clip_large_sparse),
        cmocka_unit_test(test_schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
