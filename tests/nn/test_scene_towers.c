/* test_scene_towers.c — scene-specific towers over the experts (nn_experts.h, "Scene towers"):
 * y_t[n] = ReLU(W_{t,s} x_t[n] + b_{t,s}), s = scene[n].
 *
 * Forward values against a naive per-row reference in double (tolerance 1e-5), with scenes
 * and without (NULL: every row scene 0). Gradients: finite differences (gradcheck.h) of x and
 * both parameter tensors with the probe loss L = Σ w ⊙ y (eps 1e-2, tolerance 1e-2, floor
 * 2e-2 as test_experts.c), the seed advanced until no pre-activation is within 2·eps of ReLU's
 * kink. Properties: the copies are separate parameters (changing the gradient of scene-0 rows
 * leaves every scene-1 copy's gradient bit for bit the same; a copy no row uses gets exactly
 * zero); backward accumulates; bad arguments give -1 / SQ_ERR_ARG naming the row. */
#include "testutil.h"

#include "gradcheck.h"
#include "seqrec/nn_experts.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static gc_opts GC = {.eps = 1e-2, .tol = 1e-2, .floor = 2e-2, .stride = 1};

enum { T = 2, S = 4, H = 5, N = 9 };
/* scene 3 is used by no row */
static const uint16_t SCENE[N] = {2, 0, 1, 0, 2, 2, 1, 0, 1};

typedef struct {
    sq_nn_scene_towers l;
    sq_nn_scene_towers_acts acts;
    sq_params ps;
    sq_arena *a;
    sq_error err;
    const uint16_t *scene;
    float x[T * N * H], dx[T * N * H], y[T * N * H], w[T * N * H];
} fx;

static void fx_setup(fx *f, const uint16_t *scene) {
    memset(f, 0, sizeof *f);
    sq_params_init(&f->ps);
    assert_int_equal(sq_nn_scene_towers_init(&f->l, &f->ps, "tw", H, T, S), 0);
    assert_int_equal(sq_params_alloc(&f->ps, &f->err), SQ_OK);
    f->a = sq_arena_create(1 << 20);
    assert_non_null(f->a);
    f->scene = scene;
    gc_randn(f->w, T * N * H, 1.0f, 99);
}

static void fx_free(fx *f) {
    sq_params_free(&f->ps);
    sq_arena_free(f->a);
}

static void fx_forward(fx *f) {
    sq_arena_reset(f->a);
    assert_int_equal(
        sq_nn_scene_towers_forward(&f->l, &f->ps, f->a, &f->acts, f->y, f->x, f->scene, N, &f->err),
        SQ_OK);
}

static void fx_backward(fx *f) {
    assert_int_equal(
        sq_nn_scene_towers_backward(&f->l, &f->ps, f->a, &f->acts, f->dx, f->w, &f->err), SQ_OK);
}

/* The definition row by row in double: y [T, N, H]; returns min |pre-activation|. */
static double reference(const fx *f, double *y) {
    const float *W = sq_nn_val(&f->ps, f->l.w), *b = sq_nn_val(&f->ps, f->l.b);
    double mz = INFINITY;
    for (int t = 0; t < T; t++)
        for (int n = 0; n < N; n++) {
            int c = t * S + (f->scene ? f->scene[n] : 0);
            for (int o = 0; o < H; o++) {
                double z = b[c * H + o];
                for (int k = 0; k < H; k++)
                    z += (double)W[(c * H + o) * H + k] * f->x[(t * N + n) * H + k];
                mz = fmin(mz, fabs(z));
                y[(t * N + n) * H + o] = z > 0 ? z : 0;
            }
        }
    return mz;
}

static double fx_loss(void *ctx) {
    fx *f = ctx;
    fx_forward(f);
    return gc_dot(f->w, f->y, T * N * H);
}

/* x ~ N(0, 1), parameters ~ N(0, 0.5²), reseeded until clear of the kink; checks the values. */
static void fx_fill(fx *f) {
    double ref[T * N * H];
    unsigned long long seed = 1;
    for (; seed < 20000; seed++) {
        gc_randn(f->x, T * N * H, 1.0f, seed);
        for (size_t i = 0; i < f->ps.n; i++)
            gc_randn(f->ps.p[i].data, f->ps.p[i].size, 0.5f, seed * 1000 + i + 1);
        if (reference(f, ref) >= 2 * GC.eps)
            break;
    }
    assert_true(seed < 20000);
    fx_forward(f);
    for (int i = 0; i < T * N * H; i++)
        assert_true(fabs(f->y[i] - ref[i]) < 1e-5);
}

static void test_values_and_gradients(void **state) {
    (void)state;
    const uint16_t *cases[2] = {SCENE, NULL};
    for (int k = 0; k < 2; k++) {
        fx f;
        fx_setup(&f, cases[k]);
        fx_fill(&f);
        sq_params_zero_grad(&f.ps);
        memset(f.dx, 0, sizeof f.dx);
        fx_forward(&f);
        fx_backward(&f);
        float *g = malloc(f.ps.total * sizeof *g);
        assert_non_null(g);
        memcpy(g, f.ps.grads, f.ps.total * sizeof *g);
        int bad = gc_check(k ? "towers (no scene) dx" : "towers dx", fx_loss, &f, f.x, f.dx,
                           T * N * H, &GC);
        for (size_t i = 0; i < f.ps.n; i++)
            bad += gc_check(f.ps.p[i].name, fx_loss, &f, f.ps.p[i].data, g + f.ps.p[i].offset,
                            f.ps.p[i].size, &GC);
        assert_int_equal(bad, 0);
        free(g);
        fx_free(&f);
    }
}

/* Copy (t, s)'s gradient: W then b, H * H + H floats. */
static void copy_grad(const fx *f, int t, int s, float *out) {
    memcpy(out, sq_nn_grad(&f->ps, f->l.w) + (size_t)(t * S + s) * H * H, H * H * sizeof *out);
    memcpy(out + H * H, sq_nn_grad(&f->ps, f->l.b) + (size_t)(t * S + s) * H, H * sizeof *out);
}

static void test_scenes_separate(void **state) {
    (void)state;
    fx f;
    fx_setup(&f, SCENE);
    fx_fill(&f);
    float before[T][S][H * H + H], after[H * H + H];
    sq_params_zero_grad(&f.ps);
    fx_forward(&f);
    fx_backward(&f);
    for (int t = 0; t < T; t++)
        for (int s = 0; s < S; s++)
            copy_grad(&f, t, s, before[t][s]);
    /* scene 3 has no row: exactly zero; every used copy got something */
    for (int t = 0; t < T; t++)
        for (int s = 0; s < S; s++) {
            double m = 0;
            for (int i = 0; i < H * H + H; i++)
                m = fmax(m, fabs(before[t][s][i]));
            assert_true(s == 3 ? m == 0 : m > 0);
        }
    /* another dy on scene 0's rows: scene 1's (and 2's) copies do not move, scene 0's do */
    for (int t = 0; t < T; t++)
        for (int n = 0; n < N; n++)
            if (SCENE[n] == 0)
                for (int k = 0; k < H; k++)
                    f.w[(t * N + n) * H + k] += 1.0f;
    sq_params_zero_grad(&f.ps);
    fx_forward(&f);
    fx_backward(&f);
    for (int t = 0; t < T; t++)
        for (int s = 0; s < S; s++) {
            copy_grad(&f, t, s, after);
            int same = !memcmp(after, before[t][s], sizeof after);
            assert_true(s == 0 ? !same : same);
        }
    fx_free(&f);
}

static void test_accumulate(void **state) {
    (void)state;
    fx f;
    fx_setup(&f, SCENE);
    fx_fill(&f);
    sq_params_zero_grad(&f.ps);
    memset(f.dx, 0, sizeof f.dx);
    fx_forward(&f);
    fx_backward(&f);
    float *g1 = malloc(f.ps.total * sizeof *g1), dx1[T * N * H];
    assert_non_null(g1);
    memcpy(g1, f.ps.grads, f.ps.total * sizeof *g1);
    memcpy(dx1, f.dx, sizeof dx1);
    fx_backward(&f);
    for (size_t i = 0; i < f.ps.total; i++)
        assert_true(f.ps.grads[i] == 2 * g1[i]);
    for (int i = 0; i < T * N * H; i++)
        assert_true(f.dx[i] == 2 * dx1[i]);
    free(g1);
    fx_free(&f);
}

static void test_bad_args(void **state) {
    (void)state;
    sq_params ps;
    sq_params_init(&ps);
    sq_nn_scene_towers l;
    assert_int_equal(sq_nn_scene_towers_init(&l, &ps, "x", 0, 1, 1), -1);
    assert_int_equal(sq_nn_scene_towers_init(&l, &ps, "x", 4, 0, 1), -1);
    assert_int_equal(sq_nn_scene_towers_init(&l, &ps, "x", 4, SQ_EXPERTS_MAX_TASKS + 1, 1), -1);
    assert_int_equal(sq_nn_scene_towers_init(&l, &ps, "x", 4, 1, 0), -1);
    assert_int_equal(sq_nn_scene_towers_init(&l, &ps, "x", 4, 1, 65537), -1);
    sq_params_free(&ps);
    fx f;
    fx_setup(&f, SCENE);
    uint16_t bad[N];
    memcpy(bad, SCENE, sizeof bad);
    bad[6] = S;
    assert_int_equal(
        sq_nn_scene_towers_forward(&f.l, &f.ps, f.a, &f.acts, f.y, f.x, bad, N, &f.err),
        SQ_ERR_ARG);
    assert_non_null(strstr(f.err.msg, "scene[6]"));
    assert_int_equal(
        sq_nn_scene_towers_forward(&f.l, &f.ps, f.a, &f.acts, f.y, f.x, SCENE, -1, &f.err),
        SQ_ERR_ARG);
    sq_arena *tiny = sq_arena_create(64);
    assert_int_equal(
        sq_nn_scene_towers_forward(&f.l, &f.ps, tiny, &f.acts, f.y, f.x, SCENE, N, &f.err),
        SQ_ERR_NOMEM);
    sq_arena_free(tiny);
    fx_free(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_and_gradients),
        cmocka_unit_test(test_scenes_separate),
        cmocka_unit_test(test_accumulate),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
