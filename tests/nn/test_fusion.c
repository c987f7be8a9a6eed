/* test_fusion.c — input fusion (nn_fusion.h): names and tensors of each kind, forward values
 * against hand-computed or naive double-precision results, finite-difference gradients of the
 * input and every parameter, accumulation, thread-count determinism and the error paths.
 *
 * Gradient checks (gradcheck.h) use the probe loss L = Σ w ⊙ y with w fixed random, so backward
 * gets dy = w. N = 5 events of F = 4 fields, C = 8. Parameters are moved away from their initial
 * values (N(0, 0.5²), ATTN's Wq N(0, 0.3²)) so that MEAN's softmax is not uniform and ATTN's
 * weights are neither uniform nor saturated; each test asserts that before checking. Central
 * differences with eps = 1e-2 on O(1) inputs, relative tolerance 2e-2 with a floor of 2e-2
 * (absolute 4e-4): the float forward leaves ~1e-6 of rounding in L, ~1e-4 in a difference quotient
 * at this step, and the curvature error of a 1e-2 step through the softmax stays ~1e-3 relative.
 *
 * Threads: the layer's own loops must give the same bits with one and two OpenMP threads
 * (test_threads_identical); its GEMMs follow OpenBLAS, whose OpenMP build splits big GEMMs by
 * the OpenMP thread count and so moves their last bits (test_threads_blas bounds that). */
#include "testutil.h"

#include "gradcheck.h"
#include "seqrec/nn_fusion.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static const gc_opts OPTS = {.eps = 1e-2, .tol = 2e-2, .floor = 2e-2, .stride = 1};

enum { GN = 5, GF = 4, GC = 8 };

/* ========================================== Harness ========================================== */

/* One fusion layer with its input x [N, F, C], output y [N, C], probe weights pw [N, C] (= dy)
 * and input gradient dx [N, F, C]. */
typedef struct {
    sq_params ps;
    sq_nn_fuse l;
    sq_nn_fuse_acts acts;
    sq_arena *a;
    sq_error err;
    int N, F, C;
    size_t nx, ny;
    float *x, *dx, *y, *pw;
} fz;

static void fz_setup(fz *t, sq_nn_fuse_kind kind, int N, int F, int C, unsigned long long seed) {
    memset(t, 0, sizeof *t);
    sq_params_init(&t->ps);
    assert_int_equal(sq_nn_fuse_init(&t->l, &t->ps, "fuse", kind, F, C), 0);
    assert_int_equal(sq_params_alloc(&t->ps, &t->err), SQ_OK);
    sq_rng rng;
    sq_rng_seed(&rng, seed);
    sq_nn_fuse_reset(&t->l, &t->ps, &rng);
    t->N = N, t->F = F, t->C = C;
    t->nx = (size_t)N * F * C;
    t->ny = (size_t)N * C;
    t->a = sq_arena_create(2 * (t->nx + t->ny) * sizeof(float) + 4096); /* ample */
    t->x = malloc(t->nx * sizeof *t->x);
    t->dx = calloc(t->nx, sizeof *t->dx);
    t->y = calloc(t->ny, sizeof *t->y);
    t->pw = malloc(t->ny * sizeof *t->pw);
    assert_true(t->a && t->x && t->dx && t->y && t->pw);
    gc_randn(t->x, t->nx, 1.0f, seed + 1);
    gc_randn(t->pw, t->ny, 1.0f, seed + 2);
}

static void fz_free(fz *t) {
    sq_arena_free(t->a);
    sq_params_free(&t->ps);
    free(t->x);
    free(t->dx);
    free(t->y);
    free(t->pw);
}

/* Every parameter tensor N(0, scale²): away from init (a = 0, b = 0, xavier). */
static void fz_perturb(fz *t, unsigned long long seed, float scale) {
    for (size_t i = 0; i < t->ps.n; i++)
        gc_randn(t->ps.p[i].data, t->ps.p[i].size, scale, seed + i);
}

static void fz_forward(fz *t) {
    sq_arena_reset(t->a);
    assert_int_equal(sq_nn_fuse_forward(&t->l, &t->ps, t->a, &t->acts, t->y, t->x, t->N, &t->err),
                     SQ_OK);
}

static void fz_backward(fz *t) {
    assert_int_equal(sq_nn_fuse_backward(&t->l, &t->ps, t->a, &t->acts, t->dx, t->pw, &t->err),
                     SQ_OK);
}

static double fz_loss(void *ctx) {
    fz *t = ctx;
    fz_forward(t);
    return gc_dot(t->pw, t->y, t->ny);
}

/* Clears dx and the parameter gradients, then one forward and one backward. */
static void fz_grads(fz *t) {
    memset(t->dx, 0, t->nx * sizeof *t->dx);
    sq_params_zero_grad(&t->ps);
    fz_forward(t);
    fz_backward(t);
}

/* dx and every parameter tensor against central differences. */
static void fz_gradcheck(fz *t, const char *what) {
    char name[128];
    fz_grads(t);
    snprintf(name, sizeof name, "%s dx", what);
    assert_int_equal(gc_check(name, fz_loss, t, t->x, t->dx, t->nx, &OPTS), 0);
    for (size_t i = 0; i < t->ps.n; i++) {
        sq_param *p = &t->ps.p[i];
        snprintf(name, sizeof name, "%s %s", what, p->name);
        assert_int_equal(gc_check(name, fz_loss, t, p->data, p->grad, p->size, &OPTS), 0);
    }
}

static double max_abs(const float *v, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(v[i]));
    return m;
}

/* ======================================= Names, tensors ====================================== */

static void test_names(void **state) {
    (void)state;
    const char *names[] = {"mean", "concat", "attention"};
    for (int k = 0; k < 3; k++) {
        sq_nn_fuse_kind got = (sq_nn_fuse_kind)-1;
        assert_string_equal(sq_nn_fuse_name((sq_nn_fuse_kind)k), names[k]);
        assert_int_equal(sq_nn_fuse_parse(names[k], &got), 0);
        assert_int_equal(got, k);
    }
    sq_nn_fuse_kind keep = SQ_FUSE_CONCAT;
    assert_int_equal(sq_nn_fuse_parse("attn", &keep), -1);
    assert_int_equal(sq_nn_fuse_parse("Mean", &keep), -1);
    assert_int_equal(sq_nn_fuse_parse("", &keep), -1);
    assert_int_equal(sq_nn_fuse_parse(NULL, &keep), -1);
    assert_int_equal(keep, SQ_FUSE_CONCAT); /* untouched on failure */
    assert_string_equal(sq_nn_fuse_name((sq_nn_fuse_kind)7), "?");
}

/* Each kind declares exactly its tensors, named and shaped as documented; reset sets them. */
static void test_tensors(void **state) {
    (void)state;
    fz t;
    fz_setup(&t, SQ_FUSE_MEAN, GN, GF, GC, 1);
    assert_int_equal(t.ps.n, 1);
    assert_string_equal(t.ps.p[t.l.a].name, "fuse.a");
    assert_int_equal(t.ps.p[t.l.a].ndim, 1);
    assert_int_equal(t.ps.p[t.l.a].shape[0], GF);
    assert_true(t.l.wq < 0 && t.l.proj.w < 0 && t.l.proj.b < 0);
    fz_free(&t);

    fz_setup(&t, SQ_FUSE_CONCAT, GN, GF, GC, 2);
    assert_int_equal(t.ps.n, 2);
    assert_string_equal(t.ps.p[t.l.proj.w].name, "fuse.proj.w");
    assert_int_equal(t.ps.p[t.l.proj.w].shape[0], GC);
    assert_int_equal(t.ps.p[t.l.proj.w].shape[1], GF * GC);
    assert_string_equal(t.ps.p[t.l.proj.b].name, "fuse.proj.b");
    assert_int_equal(t.ps.p[t.l.proj.b].shape[0], GC);
    assert_true(t.l.a < 0 && t.l.wq < 0);
    assert_true(max_abs(t.ps.p[t.l.proj.w].data, (size_t)GC * GF * GC) > 0.1); /* xavier */
    assert_true(max_abs(t.ps.p[t.l.proj.b].data, GC) == 0.0);
    fz_free(&t);

    fz_setup(&t, SQ_FUSE_ATTN, GN, GF, GC, 3);
    assert_int_equal(t.ps.n, 1);
    assert_string_equal(t.ps.p[t.l.wq].name, "fuse.wq");
    assert_int_equal(t.ps.p[t.l.wq].ndim, 2);
    assert_int_equal(t.ps.p[t.l.wq].shape[0], GC);
    assert_int_equal(t.ps.p[t.l.wq].shape[1], GC);
    assert_true(t.l.a < 0 && t.l.proj.w < 0);
    assert_true(max_abs(t.ps.p[t.l.wq].data, (size_t)GC * GC) > 0.1); /* xavier */
    fz_free(&t);
}

/* ============================================ MEAN =========================================== */

/* At init (a = 0) the output is the plain sum of the fields; the weights are 1/F. */
static void test_mean_init_is_sum(void **state) {
    (void)state;
    for (int F = 3; F <= 4; F++) { /* 3: 1/F is not exact in float */
        fz t;
        fz_setup(&t, SQ_FUSE_MEAN, GN, F, GC, 10 + F);
        float *a = t.ps.p[t.l.a].data;
        sq_nn_fill(a, (size_t)F, 5.0f);
        sq_rng rng;
        sq_rng_seed(&rng, 1);
        sq_nn_fuse_reset(&t.l, &t.ps, &rng);
        for (int f = 0; f < F; f++)
            assert_true(a[f] == 0.0f);
        fz_forward(&t);
        for (int f = 0; f < F; f++)
            assert_float_equal(t.acts.w[f], 1.0 / F, 1e-7);
        for (int n = 0; n < GN; n++)
            for (int c = 0; c < GC; c++) {
                float s = 0.0f;
                for (int f = 0; f < F; f++)
                    s += t.x[((size_t)n * F + f) * GC + c];
                assert_float_equal(t.y[n * GC + c], s, 1e-6 * (1 + fabsf(s)));
            }
        fz_free(&t);
    }
}

static void test_mean_gradcheck(void **state) {
    (void)state;
    fz t;
    fz_setup(&t, SQ_FUSE_MEAN, GN, GF, GC, 20);
    fz_perturb(&t, 21, 0.5f);
    fz_forward(&t);
    /* the weights are far from uniform, and y matches y = F Σ_f softmax(a)_f x_f in double */
    const float *a = t.ps.p[t.l.a].data;
    double e[GF], s = 0, wmin = 1, wmax = 0;
    for (int f = 0; f < GF; f++)
        s += (e[f] = exp(a[f]));
    for (int f = 0; f < GF; f++) {
        assert_float_equal(t.acts.w[f], e[f] / s, 1e-6);
        wmin = fmin(wmin, e[f] / s);
        wmax = fmax(wmax, e[f] / s);
    }
    assert_true(wmax - wmin > 0.1 && wmin > 0.02);
    for (int n = 0; n < GN; n++)
        for (int c = 0; c < GC; c++) {
            double want = 0;
            for (int f = 0; f < GF; f++)
                want += GF * e[f] / s * t.x[((size_t)n * GF + f) * GC + c];
            assert_float_equal(t.y[n * GC + c], want, 1e-5 * (1 + fabs(want)));
        }
    fz_gradcheck(&t, "mean");
    assert_true(max_abs(t.ps.p[t.l.a].grad, GF) > 1e-2); /* the check was not vacuous */
    fz_free(&t);
}

/* =========================================== CONCAT ========================================== */

/* N = 1, F = 2, C = 2: x = [1, 2 | 3, 4], W = [[1, 0, -1, 2], [0.5, 1, 0, -1]], b = (0.25, -0.5).
 *   y = (1 - 3 + 8 + 0.25, 0.5 + 2 - 4 - 0.5) = (6.25, -2).
 * Backward with dy = (1, 2): dx = dy W = (2, 2, -1, 0); dW = dy^T x = [[1, 2, 3, 4],
 * [2, 4, 6, 8]]; db = (1, 2). */
static void test_concat_values(void **state) {
    (void)state;
    fz t;
    fz_setup(&t, SQ_FUSE_CONCAT, 1, 2, 2, 30);
    const float W[8] = {1, 0, -1, 2, 0.5f, 1, 0, -1}, b[2] = {0.25f, -0.5f}, x[4] = {1, 2, 3, 4};
    memcpy(t.ps.p[t.l.proj.w].data, W, sizeof W);
    memcpy(t.ps.p[t.l.proj.b].data, b, sizeof b);
    memcpy(t.x, x, sizeof x);
    t.pw[0] = 1, t.pw[1] = 2;
    fz_grads(&t);
    assert_float_equal(t.y[0], 6.25f, 1e-6);
    assert_float_equal(t.y[1], -2.0f, 1e-6);
    assert_null(t.acts.w);
    const float dx[4] = {2, 2, -1, 0}, dW[8] = {1, 2, 3, 4, 2, 4, 6, 8}, db[2] = {1, 2};
    for (int i = 0; i < 4; i++)
        assert_float_equal(t.dx[i], dx[i], 1e-6);
    for (int i = 0; i < 8; i++)
        assert_float_equal(t.ps.p[t.l.proj.w].grad[i], dW[i], 1e-6);
    for (int i = 0; i < 2; i++)
        assert_float_equal(t.ps.p[t.l.proj.b].grad[i], db[i], 1e-6);
    fz_free(&t);
}

static void test_concat_gradcheck(void **state) {
    (void)state;
    fz t;
    fz_setup(&t, SQ_FUSE_CONCAT, GN, GF, GC, 40);
    fz_perturb(&t, 41, 0.5f);
    fz_gradcheck(&t, "concat");
    fz_free(&t);
}

/* ============================================ ATTN =========================================== */

/* y = x_0 + Σ_{f>=1} softmax_f(q · x_f / sqrt(C)) x_f, q = Wq x_0, all in double. Also returns
 * the mean over rows of (max α − min α) and the largest α. */
static void attn_reference(const fz *t, double *want, double *spread, double *amax) {
    const int F = t->F, C = t->C;
    const float *Wq = t->ps.p[t->l.wq].data;
    *spread = 0, *amax = 0;
    for (int n = 0; n < t->N; n++) {
        const float *xn = t->x + (size_t)n * F * C;
        double q[GC], s[GF], m = -INFINITY, z = 0, lo = 1, hi = 0;
        for (int i = 0; i < C; i++) {
            q[i] = 0;
            for (int j = 0; j < C; j++)
                q[i] += (double)Wq[i * C + j] * xn[j];
        }
        for (int f = 1; f < F; f++) {
            s[f] = 0;
            for (int c = 0; c < C; c++)
                s[f] += q[c] * xn[f * C + c];
            s[f] /= sqrt((double)C);
            m = fmax(m, s[f]);
        }
        for (int f = 1; f < F; f++)
            z += (s[f] = exp(s[f] - m));
        for (int c = 0; c < C; c++)
            want[n * C + c] = xn[c];
        for (int f = 1; f < F; f++) {
            double al = s[f] / z;
            assert_float_equal(t->acts.w[n * F + f], al, 1e-5);
            lo = fmin(lo, al);
            hi = fmax(hi, al);
            for (int c = 0; c < C; c++)
                want[n * C + c] += al * xn[f * C + c];
        }
        assert_true(t->acts.w[n * F] == 0.0f);
        *spread += (hi - lo) / t->N;
        *amax = fmax(*amax, hi);
    }
}

static void test_attn_gradcheck(void **state) {
    (void)state;
    fz t;
    fz_setup(&t, SQ_FUSE_ATTN, GN, GF, GC, 50);
    fz_perturb(&t, 51, 0.3f);
    fz_forward(&t);
    double want[GN * GC], spread, amax;
    attn_reference(&t, want, &spread, &amax);
    for (int i = 0; i < GN * GC; i++)
        assert_float_equal(t.y[i], want[i], 1e-5 * (1 + fabs(want[i])));
    assert_true(spread > 0.1); /* the weights are not uniform ... */
    assert_true(amax < 0.98);  /* ... nor saturated */
    fz_gradcheck(&t, "attention");
    assert_true(max_abs(t.ps.p[t.l.wq].grad, (size_t)GC * GC) > 1e-2);
    fz_free(&t);
}

/* F == 1: y = x_0 exactly, dx += dy, no parameter touched (but wq is declared). */
static void test_attn_single_field(void **state) {
    (void)state;
    fz t;
    fz_setup(&t, SQ_FUSE_ATTN, GN, 1, GC, 60);
    assert_int_equal(t.ps.n, 1);
    assert_string_equal(t.ps.p[t.l.wq].name, "fuse.wq");
    fz_perturb(&t, 61, 0.5f);
    fz_forward(&t);
    assert_memory_equal(t.y, t.x, t.ny * sizeof *t.y);
    assert_null(t.acts.q);
    for (int n = 0; n < GN; n++)
        assert_true(t.acts.w[n] == 0.0f);
    sq_params_zero_grad(&t.ps);
    sq_nn_fill(t.dx, t.nx, 0.5f);
    fz_backward(&t);
    for (size_t i = 0; i < t.nx; i++)
        assert_true(t.dx[i] == 0.5f + t.pw[i]);
    assert_true(max_abs(t.ps.p[t.l.wq].grad, (size_t)GC * GC) == 0.0);
    fz_free(&t);
}

/* ==================================== Shared properties ===================================== */

/* A second backward adds the same gradients again: everything doubles. */
static void test_accumulates(void **state) {
    (void)state;
    for (int k = 0; k < 3; k++) {
        fz t;
        fz_setup(&t, (sq_nn_fuse_kind)k, GN, GF, GC, 70 + k);
        fz_perturb(&t, 75 + k, 0.3f);
        fz_grads(&t);
        size_t ng = t.ps.total;
        float *once = malloc((t.nx + ng) * sizeof *once);
        assert_non_null(once);
        memcpy(once, t.dx, t.nx * sizeof *once);
        memcpy(once + t.nx, t.ps.grads, ng * sizeof *once);
        assert_true(max_abs(once, t.nx) > 0.1 && max_abs(once + t.nx, ng) > 0.1);
        fz_backward(&t);
        for (size_t i = 0; i < t.nx; i++)
            assert_float_equal(t.dx[i], 2 * once[i], 1e-5 * (1 + fabsf(once[i])));
        for (size_t i = 0; i < ng; i++)
            assert_float_equal(t.ps.grads[i], 2 * once[t.nx + i],
                               1e-5 * (1 + fabsf(once[t.nx + i])));
        /* dx == NULL skips the input gradient but still adds the parameter gradients */
        assert_int_equal(sq_nn_fuse_backward(&t.l, &t.ps, t.a, &t.acts, NULL, t.pw, &t.err), SQ_OK);
        for (size_t i = 0; i < ng; i++)
            assert_float_equal(t.ps.grads[i], 3 * once[t.nx + i],
                               1e-5 * (1 + fabsf(once[t.nx + i])));
        free(once);
        fz_free(&t);
    }
}

/* Gradients of one forward + backward with `threads` OpenMP threads, as y | dx | parameter
 * gradients in a malloc'd array. */
static float *run_with_threads(fz *t, int threads) {
    size_t ng = t->ps.total;
    float *out = malloc((t->ny + t->nx + ng) * sizeof *out);
    assert_non_null(out);
#ifdef _OPENMP
    int nt = omp_get_max_threads();
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    fz_grads(t);
#ifdef _OPENMP
    omp_set_num_threads(nt);
#endif
    memcpy(out, t->y, t->ny * sizeof *out);
    memcpy(out + t->ny, t->dx, t->nx * sizeof *out);
    memcpy(out + t->ny + t->nx, t->ps.grads, ng * sizeof *out);
    return out;
}

/* The layer's own loops run in parallel here (N·F·C = 65536 > its threshold of 32768) and give
 * the same bits with one and with two threads. MEAN calls no BLAS. ATTN's GEMMs (M·N·K =
 * 2048·8·8) are below the size at which OpenBLAS splits a GEMM among threads, so this isolates
 * the per-row loops; at larger sizes see test_threads_blas. */
static void test_threads_identical(void **state) {
    (void)state;
#ifndef _OPENMP
    skip();
#else
    const sq_nn_fuse_kind kinds[2] = {SQ_FUSE_MEAN, SQ_FUSE_ATTN};
    for (int i = 0; i < 2; i++) {
        fz t;
        fz_setup(&t, kinds[i], 2048, GF, GC, 80 + i);
        fz_perturb(&t, 85 + i, 0.3f);
        size_t n = t.ny + t.nx + t.ps.total;
        float *one = run_with_threads(&t, 1), *two = run_with_threads(&t, 2);
        assert_true(max_abs(one + t.ny + t.nx, t.ps.total) > 0.1);
        assert_memory_equal(one, two, n * sizeof *one);
        free(one);
        free(two);
        fz_free(&t);
    }
#endif
}

/* Where the GEMMs are big enough for OpenBLAS to thread (CONCAT: 2048·8·32; ATTN with C = 64),
 * the OpenMP build of OpenBLAS splits them among omp_get_max_threads() threads and the last bits
 * move with the thread count (nn_layers.h, convention 6): one thread twice gives the same bits,
 * one against two threads agrees within float rounding. */
static void test_threads_blas(void **state) {
    (void)state;
#ifndef _OPENMP
    skip();
#else
    for (int i = 0; i < 2; i++) {
        fz t;
        if (i == 0)
            fz_setup(&t, SQ_FUSE_CONCAT, 2048, GF, GC, 90);
        else
            fz_setup(&t, SQ_FUSE_ATTN, 2048, GF, 64, 91);
        fz_perturb(&t, 95 + i, i == 0 ? 0.3f : 0.1f);
        size_t n = t.ny + t.nx + t.ps.total;
        float *a = run_with_threads(&t, 1), *b = run_with_threads(&t, 1);
        float *two = run_with_threads(&t, 2);
        assert_memory_equal(a, b, n * sizeof *a);
        /* y and dx: a few rounding steps each; parameter gradients: sums over 2048 rows */
        for (size_t k = 0; k < n; k++)
            assert_float_equal(two[k], a[k], (k < t.ny + t.nx ? 1e-5 : 1e-4) * (1 + fabsf(a[k])));
        free(a);
        free(b);
        free(two);
        fz_free(&t);
    }
#endif
}

/* ========================================== Errors ========================================== */

static void test_bad_args(void **state) {
    (void)state;
    sq_params ps;
    sq_params_init(&ps);
    sq_nn_fuse l;
    assert_int_equal(sq_nn_fuse_init(&l, &ps, "fuse", SQ_FUSE_MEAN, 0, GC), -1);
    assert_int_equal(sq_nn_fuse_init(&l, &ps, "fuse", SQ_FUSE_ATTN, GF, 0), -1);
    assert_int_equal(sq_nn_fuse_init(&l, &ps, "fuse", (sq_nn_fuse_kind)3, GF, GC), -1);
    assert_int_equal(sq_nn_fuse_init(&l, &ps, "fuse", SQ_FUSE_CONCAT, 1 << 16, 1 << 16), -1);
    assert_int_equal(ps.n, 0); /* nothing declared on failure */
    sq_params_free(&ps);

    for (int k = 0; k < 3; k++) {
        fz t;
        fz_setup(&t, (sq_nn_fuse_kind)k, GN, GF, GC, 90 + k);
        sq_nn_fuse bad = t.l;
        sq_status rc;
        rc = sq_nn_fuse_forward(&t.l, &t.ps, t.a, &t.acts, t.y, t.x, -1, &t.err);
        assert_int_equal(rc, SQ_ERR_ARG);
        bad.F = 0;
        rc = sq_nn_fuse_forward(&bad, &t.ps, t.a, &t.acts, t.y, t.x, GN, &t.err);
        assert_int_equal(rc, SQ_ERR_ARG);
        bad = t.l;
        bad.C = 0;
        rc = sq_nn_fuse_forward(&bad, &t.ps, t.a, &t.acts, t.y, t.x, GN, &t.err);
        assert_int_equal(rc, SQ_ERR_ARG);
        bad = t.l;
        bad.kind = (sq_nn_fuse_kind)((k + 1) % 3); /* that kind's tensors are not declared */
        rc = sq_nn_fuse_forward(&bad, &t.ps, t.a, &t.acts, t.y, t.x, GN, &t.err);
        assert_int_equal(rc, SQ_ERR_ARG);
        /* y aliasing x (its first rows) */
        rc = sq_nn_fuse_forward(&t.l, &t.ps, t.a, &t.acts, t.x, t.x, GN, &t.err);
        assert_int_equal(rc, SQ_ERR_ARG);
        assert_non_null(strstr(t.err.msg, "alias"));
        /* N == 0 is fine and does nothing */
        rc = sq_nn_fuse_forward(&t.l, &t.ps, t.a, &t.acts, t.y, t.x, 0, &t.err);
        assert_int_equal(rc, SQ_OK);
        assert_int_equal(sq_nn_fuse_backward(&t.l, &t.ps, t.a, &t.acts, t.dx, t.pw, &t.err), SQ_OK);
        fz_forward(&t);
        sq_nn_fuse_acts acts = t.acts;
        acts.N = -1;
        rc = sq_nn_fuse_backward(&t.l, &t.ps, t.a, &acts, t.dx, t.pw, &t.err);
        assert_int_equal(rc, SQ_ERR_ARG);
        bad = t.l;
        bad.F = 0;
        rc = sq_nn_fuse_backward(&bad, &t.ps, t.a, &t.acts, t.dx, t.pw, &t.err);
        assert_int_equal(rc, SQ_ERR_ARG);
        assert_true(max_abs(t.dx, t.nx) == 0.0); /* failed calls wrote nothing */
        fz_free(&t);
    }
}

/* An arena one byte short of what forward needs fails forward; one holding exactly forward's
 * buffers fails backward. CONCAT needs no arena at all. */
static void test_arena_full(void **state) {
    (void)state;
    for (int k = 0; k < 3; k++) {
        fz t;
        fz_setup(&t, (sq_nn_fuse_kind)k, GN, GF, GC, 100 + k);
        fz_forward(&t);
        size_t need = sq_arena_used(t.a);
        sq_arena_free(t.a);
        if (k == SQ_FUSE_CONCAT) {
            assert_int_equal(need, 0);
            assert_non_null(t.a = sq_arena_create(0));
            fz_forward(&t);
            fz_backward(&t);
            fz_free(&t);
            continue;
        }
        assert_true(need > 0);
        assert_non_null(t.a = sq_arena_create(need - 1));
        assert_int_equal(sq_nn_fuse_forward(&t.l, &t.ps, t.a, &t.acts, t.y, t.x, GN, &t.err),
                         SQ_ERR_NOMEM);
        assert_non_null(strstr(t.err.msg, "arena full"));
        sq_arena_free(t.a);
        assert_non_null(t.a = sq_arena_create(need));
        fz_forward(&t);
        assert_int_equal(sq_nn_fuse_backward(&t.l, &t.ps, t.a, &t.acts, t.dx, t.pw, &t.err),
                         SQ_ERR_NOMEM);
        assert_non_null(strstr(t.err.msg, "arena full"));
        fz_free(&t);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_tensors),
        cmocka_unit_test(test_mean_init_is_sum),
        cmocka_unit_test(test_mean_gradcheck),
        cmocka_unit_test(test_concat_values),
        cmocka_unit_test(test_concat_gradcheck),
        cmocka_unit_test(test_attn_gradcheck),
        cmocka_unit_test(test_attn_single_field),
        cmocka_unit_test(test_accumulates),
        cmocka_unit_test(test_threads_identical),
        cmocka_unit_test(test_threads_blas),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_arena_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
