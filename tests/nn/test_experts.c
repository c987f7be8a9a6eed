/* test_experts.c — the multi-task sharing layer (nn_experts.h): shared-bottom, MMoE and PLE with
 * scene-specific gates.
 *
 * Forward values: one example computed by hand, and every kind against a naive per-row
 * reference written from the header's definitions (double precision, tolerance 1e-5).
 * Gradients: finite differences (gradcheck.h) of x and every parameter tensor with the probe
 * loss L = Σ w ⊙ y, twice: with y from the layer's float forward (eps 1e-2, pass when
 * |num − ana| ≤ 1e-2 · max(|num|, |ana|, 2e-2); float rounding of L reaches ~2e-6 in the
 * 3-level case, ~1e-4 in a difference quotient, hence the floor), and with y from the double
 * reference (eps 1e-3, tolerance 1e-3, floor 1e-3: no rounding noise; agreement is ~2e-5).
 * Inputs and parameters are N(0, 1) and N(0, 0.5²); the seed is advanced until no expert
 * pre-activation is within 2·eps of ReLU's kink, and every float loss evaluation compares the
 * ReLU pattern with the unperturbed one: a flip fails the test (the difference would straddle
 * the kink). GC_EPS, GC_TOL, GC_FLOOR in the environment override the float check's options,
 * for experiments. Properties: identical MMoE experts equal one shared-bottom expert (values and
 * gradients); a row depends on its own scene's gates only; backward accumulates; results are
 * bit-identical with 1 and 2 OpenMP threads; bad arguments give SQ_ERR_ARG and a short arena
 * SQ_ERR_NOMEM. */
#include "testutil.h"

#include "gradcheck.h"
#include "seqrec/nn_experts.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static gc_opts GC = {.eps = 1e-2, .tol = 1e-2, .floor = 2e-2, .stride = 1};
static gc_opts GC_REF = {.eps = 1e-3, .tol = 1e-3, .floor = 1e-3, .stride = 1};

/* ========================================== Fixture ========================================== */

typedef struct {
    sq_nn_experts l;
    sq_nn_experts_acts acts;
    sq_params ps;
    sq_arena *a;
    sq_error err;
    int N, T, C, H;
    float *x, *dx;   /* [N, C] */
    float *y, *w;    /* [T, N, H] output and probe weights (dL/dy) */
    size_t nx, ny;   /* their sizes */
    uint16_t *scene; /* [N] or NULL */
    double *yref;    /* [T, N, H] the naive reference's output */
    uint8_t *sign;   /* ReLU pattern (z > 0) of the unperturbed forward, all levels; or NULL */
    long flips;      /* pattern changes seen by fx_loss since `sign` was taken */
} fx;

static void fx_setup(fx *f, sq_nn_share_kind kind, int C, int H, int T, int n_shared,
                     int n_specific, int levels, int S, int N, const uint16_t *scene) {
    memset(f, 0, sizeof *f);
    sq_params_init(&f->ps);
    assert_int_equal(
        sq_nn_experts_init(&f->l, &f->ps, "mt", kind, C, H, T, n_shared, n_specific, levels, S), 0);
    assert_int_equal(sq_params_alloc(&f->ps, &f->err), SQ_OK);
    f->a = sq_arena_create(1 << 20);
    assert_non_null(f->a);
    f->N = N;
    f->T = T;
    f->C = C;
    f->H = H;
    f->nx = (size_t)N * C;
    f->ny = (size_t)T * N * H;
    f->x = calloc(f->nx, sizeof *f->x);
    f->dx = calloc(f->nx, sizeof *f->dx);
    f->y = calloc(f->ny, sizeof *f->y);
    f->w = calloc(f->ny, sizeof *f->w);
    f->yref = calloc(f->ny, sizeof *f->yref);
    assert_true(f->x && f->dx && f->y && f->w && f->yref);
    gc_randn(f->w, f->ny, 1.0f, 99);
    if (scene) {
        f->scene = malloc((size_t)N * sizeof *f->scene);
        assert_non_null(f->scene);
        memcpy(f->scene, scene, (size_t)N * sizeof *f->scene);
    }
}

static void fx_free(fx *f) {
    free(f->x);
    free(f->dx);
    free(f->y);
    free(f->w);
    free(f->yref);
    free(f->scene);
    free(f->sign);
    sq_params_free(&f->ps);
    sq_arena_free(f->a);
}

/* x ~ N(0, 1), every parameter ~ N(0, 0.5²) (biases and gates too, so that they matter). */
static void fx_fill(fx *f, unsigned long long seed) {
    gc_randn(f->x, f->nx, 1.0f, seed);
    for (size_t i = 0; i < f->ps.n; i++)
        gc_randn(f->ps.p[i].data, f->ps.p[i].size, 0.5f, seed * 1000 + i + 1);
}

static void fx_forward(fx *f) {
    sq_arena_reset(f->a);
    assert_int_equal(
        sq_nn_experts_forward(&f->l, &f->ps, f->a, &f->acts, f->y, f->x, f->scene, f->N, &f->err),
        SQ_OK);
}

/* Backward with dy = w (the arena keeps the forward's buffers). */
static void fx_backward(fx *f, float *dx) {
    assert_int_equal(sq_nn_experts_backward(&f->l, &f->ps, f->a, &f->acts, dx, f->w, &f->err),
                     SQ_OK);
}

static size_t fx_nz(const fx *f) {
    return (size_t)f->N * f->l.n_experts * f->H;
}

static float fx_min_abs_z(const fx *f) {
    float m = INFINITY;
    for (int lev = 0; lev < f->l.levels; lev++)
        for (size_t i = 0; i < fx_nz(f); i++)
            m = fminf(m, fabsf(f->acts.z[lev][i]));
    return m;
}

static double fx_loss(void *ctx) {
    fx *f = ctx;
    fx_forward(f);
    if (f->sign)
        for (int lev = 0; lev < f->l.levels; lev++)
            for (size_t i = 0; i < fx_nz(f); i++)
                f->flips += (f->acts.z[lev][i] > 0.0f) != f->sign[lev * fx_nz(f) + i];
    return gc_dot(f->w, f->y, f->ny);
}

/* Reseeds until every pre-activation is at least 2 eps from 0; returns the seed. */
static unsigned long long fx_fill_clear_of_kinks(fx *f) {
    unsigned long long seed = 1;
    for (; seed < 20000; seed++) {
        fx_fill(f, seed);
        fx_forward(f);
        if (fx_min_abs_z(f) >= 2 * GC.eps)
            break;
    }
    assert_true(seed < 20000);
    return seed;
}

/* ====================================== Naive reference ====================================== */

/* The header's definitions row by row, in double. y: [T, N, H]. */
static void ref_forward(const sq_nn_experts *l, const sq_params *ps, const float *x,
                        const uint16_t *scene, int N, double *y) {
    const int T = l->n_tasks, S = l->n_scenes, H = l->H, C = l->C, ns = l->n_specific;
    const int nsh = l->n_shared, E = T * ns + nsh, K = ns + nsh, W = C > H ? C : H;
    double *tin = malloc((size_t)T * W * sizeof *tin), *sin_ = malloc((size_t)W * sizeof *sin_);
    double *tout = malloc((size_t)T * H * sizeof *tout), *sout = malloc((size_t)H * sizeof *sout);
    double *eo = malloc((size_t)E * H * sizeof *eo), *lg = malloc((size_t)E * sizeof *lg);
    assert_true(tin && sin_ && tout && sout && eo && lg);
    for (int n = 0; n < N; n++) {
        const int s = scene ? scene[n] : 0;
        for (int i = 0; i < C; i++) {
            sin_[i] = x[(size_t)n * C + i];
            for (int t = 0; t < T; t++)
                tin[t * W + i] = x[(size_t)n * C + i];
        }
        for (int lev = 0; lev < l->levels; lev++) {
            const int cin = lev ? H : C;
            const float *ew = ps->p[l->ew[lev]].data, *eb = ps->p[l->eb[lev]].data;
            for (int e = 0; e < E; e++) {
                const double *in = e < T * ns ? tin + (e / ns) * W : sin_;
                for (int j = 0; j < H; j++) {
                    double v = eb[e * H + j];
                    for (int i = 0; i < cin; i++)
                        v += (double)ew[((size_t)e * H + j) * cin + i] * in[i];
                    eo[e * H + j] = v > 0 ? v : 0;
                }
            }
            for (int t = 0; t < T; t++) {
                if (l->kind == SQ_SHARE_BOTTOM) {
                    memcpy(tout + t * H, eo, (size_t)H * sizeof *eo);
                    continue;
                }
                const float *gw = ps->p[l->gw[lev]].data, *gb = ps->p[l->gb[lev]].data;
                const int c = t * S + s;
                double m = -INFINITY, sum = 0;
                for (int k = 0; k < K; k++) {
                    lg[k] = gb[c * K + k];
                    for (int i = 0; i < cin; i++)
                        lg[k] += (double)gw[((size_t)c * K + k) * cin + i] * tin[t * W + i];
                    m = fmax(m, lg[k]);
                }
                for (int k = 0; k < K; k++)
                    sum += exp(lg[k] - m);
                for (int j = 0; j < H; j++) {
                    double v = 0;
                    for (int k = 0; k < K; k++) {
                        int e = k < ns ? t * ns + k : T * ns + (k - ns);
                        v += exp(lg[k] - m) / sum * eo[e * H + j];
                    }
                    tout[t * H + j] = v;
                }
            }
            if (l->kind == SQ_SHARE_PLE && lev < l->levels - 1) {
                const float *sw = ps->p[l->sw[lev]].data, *sb = ps->p[l->sb[lev]].data;
                double m = -INFINITY, sum = 0;
                for (int e = 0; e < E; e++) {
                    lg[e] = sb[s * E + e];
                    for (int i = 0; i < cin; i++)
                        lg[e] += (double)sw[((size_t)s * E + e) * cin + i] * sin_[i];
                    m = fmax(m, lg[e]);
                }
                for (int e = 0; e < E; e++)
                    sum += exp(lg[e] - m);
                for (int j = 0; j < H; j++) {
                    double v = 0;
                    for (int e = 0; e < E; e++)
                        v += exp(lg[e] - m) / sum * eo[e * H + j];
                    sout[j] = v;
                }
            }
            for (int t = 0; t < T; t++)
                memcpy(tin + t * W, tout + t * H, (size_t)H * sizeof *tin);
            memcpy(sin_, sout, (size_t)H * sizeof *sin_);
        }
        for (int t = 0; t < T; t++)
            for (int j = 0; j < H; j++)
                y[((size_t)t * N + n) * H + j] = tin[t * W + j];
    }
    free(tin);
    free(sin_);
    free(tout);
    free(sout);
    free(eo);
    free(lg);
}

/* Largest |y - reference|. */
static double fx_ref_diff(fx *f) {
    double *want = malloc(f->ny * sizeof *want), worst = 0;
    assert_non_null(want);
    ref_forward(&f->l, &f->ps, f->x, f->scene, f->N, want);
    for (size_t i = 0; i < f->ny; i++)
        worst = fmax(worst, fabs(f->y[i] - want[i]));
    free(want);
    return worst;
}

/* L = Σ w ⊙ y with y from the naive reference, in double. */
static double fx_ref_loss(void *ctx) {
    fx *f = ctx;
    ref_forward(&f->l, &f->ps, f->x, f->scene, f->N, f->yref);
    double s = 0;
    for (size_t i = 0; i < f->ny; i++)
        s += (double)f->w[i] * f->yref[i];
    return s;
}

/* Fills clear of kinks, runs one backward, and checks x and every parameter tensor twice:
 * against differences of the layer's own float forward (GC), and against differences of the
 * double reference (GC_REF: no float noise, so a tight tolerance). */
static void fx_gradcheck(fx *f, const char *what) {
    fx_fill_clear_of_kinks(f);
    const size_t nz = fx_nz(f);
    f->sign = malloc((size_t)f->l.levels * nz);
    assert_non_null(f->sign);
    for (int lev = 0; lev < f->l.levels; lev++)
        for (size_t i = 0; i < nz; i++)
            f->sign[lev * nz + i] = f->acts.z[lev][i] > 0.0f;
    memset(f->dx, 0, f->nx * sizeof *f->dx);
    sq_params_zero_grad(&f->ps);
    fx_forward(f);
    fx_backward(f, f->dx);
    float *g = malloc(f->ps.total * sizeof *g);
    assert_non_null(g);
    memcpy(g, f->ps.grads, f->ps.total * sizeof *g);
    char name[96];
    int bad = 0;
    f->flips = 0;
    for (int pass = 0; pass < 2; pass++) {
        gc_loss_fn loss = pass ? fx_ref_loss : fx_loss;
        const gc_opts *o = pass ? &GC_REF : &GC;
        const char *how = pass ? "ref" : "float";
        snprintf(name, sizeof name, "%s (%s) dx", what, how);
        bad += gc_check(name, loss, f, f->x, f->dx, f->nx, o);
        for (size_t i = 0; i < f->ps.n; i++) {
            const sq_param *p = &f->ps.p[i];
            snprintf(name, sizeof name, "%s (%s) %s", what, how, p->name);
            bad += gc_check(name, loss, f, p->data, g + p->offset, p->size, o);
        }
    }
    if (f->flips)
        fprintf(stderr, "%s: %ld ReLU flips during the check\n", what, f->flips);
    assert_int_equal(f->flips, 0);
    assert_int_equal(bad, 0);
    free(g);
}

/* ========================================== Tests =========================================== */

static void test_share_names(void **state) {
    (void)state;
    sq_nn_share_kind k = SQ_SHARE_PLE;
    assert_string_equal(sq_nn_share_name(SQ_SHARE_BOTTOM), "shared_bottom");
    assert_string_equal(sq_nn_share_name(SQ_SHARE_MMOE), "mmoe");
    assert_string_equal(sq_nn_share_name(SQ_SHARE_PLE), "ple");
    assert_string_equal(sq_nn_share_name((sq_nn_share_kind)3), "?");
    assert_int_equal(sq_nn_share_parse("shared_bottom", &k), 0);
    assert_int_equal(k, SQ_SHARE_BOTTOM);
    assert_int_equal(sq_nn_share_parse("ple", &k), 0);
    assert_int_equal(k, SQ_SHARE_PLE);
    assert_int_equal(sq_nn_share_parse("mmoe", &k), 0);
    assert_int_equal(k, SQ_SHARE_MMOE);
    assert_int_equal(sq_nn_share_parse("MMoE", &k), -1);
    assert_int_equal(sq_nn_share_parse("", &k), -1);
    assert_int_equal(sq_nn_share_parse(NULL, &k), -1);
    assert_int_equal(k, SQ_SHARE_MMOE); /* untouched on failure */
}

/* MMoE, C = H = 1, two experts, one task, two scenes, x = 1:
 *   expert 0: W = 2, b = 0     -> ReLU(2) = 2;  expert 1: W = -1, b = 0.5 -> ReLU(-0.5) = 0
 *   scene 0 gate: G = (0, 0), c = (ln 3, 0) -> g = (3/4, 1/4) -> y = 1.5
 *   scene 1 gate: G = (1, 0), c = (0, 1 + ln 3) -> logits (1, 1 + ln 3) -> g = (1/4, 3/4) -> 0.5
 * Backward with dy = 1 for row 0 (scene 0): dg = (2, 0), g.dg = 1.5, dlogits = g (dg - 1.5)
 *   = (0.375, -0.375); dc of copy 0 = that, dG = that * x; copy 1 untouched (0);
 *   expert 0: dz = 0.75 -> dW0 = 0.75, db0 = 0.75; expert 1 is off: 0;
 *   dx = 0.75 * 2 (expert 0) + 0.375 * 0 - 0.375 * 0 (gate G = 0 for scene 0) = 1.5. */
static void test_hand_values(void **state) {
    (void)state;
    const uint16_t scene[2] = {0, 1};
    fx f;
    fx_setup(&f, SQ_SHARE_MMOE, 1, 1, 1, 2, 0, 1, 2, 2, scene);
    const float ew[2] = {2, -1}, eb[2] = {0, 0.5f}, gw[4] = {0, 0, 1, 0};
    const float gb[4] = {logf(3), 0, 0, 1 + logf(3)};
    memcpy(f.ps.p[f.l.ew[0]].data, ew, sizeof ew);
    memcpy(f.ps.p[f.l.eb[0]].data, eb, sizeof eb);
    memcpy(f.ps.p[f.l.gw[0]].data, gw, sizeof gw);
    memcpy(f.ps.p[f.l.gb[0]].data, gb, sizeof gb);
    f.x[0] = f.x[1] = 1;
    fx_forward(&f);
    assert_float_equal(f.y[0], 1.5, 1e-6);
    assert_float_equal(f.y[1], 0.5, 1e-6);
    assert_float_equal(f.acts.g[0][0], 0.75, 1e-6); /* row 0's weights, for explanations */
    assert_float_equal(f.acts.g[0][1], 0.25, 1e-6);
    assert_float_equal(f.acts.g[0][2], 0.25, 1e-6); /* row 1 */
    f.w[0] = 1;
    f.w[1] = 0;
    sq_params_zero_grad(&f.ps);
    fx_backward(&f, f.dx);
    const float *dgb = f.ps.p[f.l.gb[0]].grad, *dgw = f.ps.p[f.l.gw[0]].grad;
    const float *dew = f.ps.p[f.l.ew[0]].grad, *deb = f.ps.p[f.l.eb[0]].grad;
    assert_float_equal(dgb[0], 0.375, 1e-6);
    assert_float_equal(dgb[1], -0.375, 1e-6);
    assert_float_equal(dgw[0], 0.375, 1e-6);
    assert_float_equal(dgw[1], -0.375, 1e-6);
    assert_true(dgb[2] == 0 && dgb[3] == 0 && dgw[2] == 0 && dgw[3] == 0);
    assert_float_equal(dew[0], 0.75, 1e-6);
    assert_float_equal(deb[0], 0.75, 1e-6);
    assert_true(dew[1] == 0 && deb[1] == 0);
    assert_float_equal(f.dx[0], 1.5, 1e-6);
    assert_true(f.dx[1] == 0);
    fx_free(&f);
}

/* Every kind against the naive reference, with and without scenes. */
static void test_reference(void **state) {
    (void)state;
    const uint16_t scene[7] = {2, 0, 1, 1, 0, 2, 1};
    struct {
        sq_nn_share_kind kind;
        int T, nsh, nspec, levels, S;
        const uint16_t *scene;
    } cases[] = {
        {SQ_SHARE_BOTTOM, 3, 1, 0, 1, 3, scene}, {SQ_SHARE_MMOE, 2, 3, 0, 1, 3, scene},
        {SQ_SHARE_MMOE, 3, 2, 0, 1, 1, NULL},    {SQ_SHARE_PLE, 2, 2, 1, 2, 3, scene},
        {SQ_SHARE_PLE, 3, 1, 2, 3, 3, scene},    {SQ_SHARE_PLE, 2, 1, 0, 4, 1, NULL},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fx f;
        fx_setup(&f, cases[c].kind, 5, 4, cases[c].T, cases[c].nsh, cases[c].nspec, cases[c].levels,
                 cases[c].S, 7, cases[c].scene);
        fx_fill(&f, 7 + c);
        fx_forward(&f);
        double d = fx_ref_diff(&f);
        if (d > 1e-5)
            fprintf(stderr, "case %zu: max |y - ref| = %g\n", c, d);
        assert_true(d <= 1e-5);
        fx_free(&f);
    }
}

static void test_grad_bottom(void **state) {
    (void)state;
    fx f;
    fx_setup(&f, SQ_SHARE_BOTTOM, 5, 4, 3, 1, 0, 1, 1, 6, NULL);
    fx_gradcheck(&f, "bottom");
    fx_free(&f);
}

static void test_grad_mmoe(void **state) {
    (void)state;
    const uint16_t scene[6] = {0, 1, 1, 0, 1, 0};
    fx f;
    fx_setup(&f, SQ_SHARE_MMOE, 5, 4, 2, 3, 0, 1, 2, 6, scene);
    fx_gradcheck(&f, "mmoe");
    fx_free(&f);
}

static void test_grad_ple(void **state) {
    (void)state;
    const uint16_t scene[6] = {0, 1, 1, 0, 1, 0};
    fx f;
    fx_setup(&f, SQ_SHARE_PLE, 5, 3, 2, 2, 1, 2, 2, 6, scene);
    fx_gradcheck(&f, "ple");
    fx_free(&f);
}

/* Three levels (a middle level that both reads and feeds a shared output), 3 tasks with 2
 * specific experts each, one shared, NULL scene. */
static void test_grad_ple_deep(void **state) {
    (void)state;
    fx f;
    fx_setup(&f, SQ_SHARE_PLE, 4, 3, 3, 1, 2, 3, 1, 5, NULL);
    fx_gradcheck(&f, "ple3");
    fx_free(&f);
}

/* MMoE whose three experts are copies of one expert computes that expert (the gate weights sum
 * to 1): y and dx equal shared-bottom's, the experts' weight gradients sum to shared-bottom's,
 * and the gates get no gradient (every dlogit is g_k (dg_k - Σ g dg) with equal dg_k). */
static void test_mmoe_identical_experts(void **state) {
    (void)state;
    const int C = 5, H = 4, T = 2, E = 3, N = 6;
    const uint16_t scene[6] = {1, 0, 1, 1, 0, 0};
    fx m, b;
    fx_setup(&m, SQ_SHARE_MMOE, C, H, T, E, 0, 1, 2, N, scene);
    fx_setup(&b, SQ_SHARE_BOTTOM, C, H, T, 1, 0, 1, 1, N, NULL);
    fx_fill(&m, 5);
    fx_fill(&b, 6);
    memcpy(b.x, m.x, m.nx * sizeof *m.x);
    float *mw = m.ps.p[m.l.ew[0]].data, *mb = m.ps.p[m.l.eb[0]].data;
    for (int e = 1; e < E; e++) {
        memcpy(mw + (size_t)e * H * C, mw, (size_t)H * C * sizeof *mw);
        memcpy(mb + (size_t)e * H, mb, (size_t)H * sizeof *mb);
    }
    memcpy(b.ps.p[b.l.ew[0]].data, mw, (size_t)H * C * sizeof *mw);
    memcpy(b.ps.p[b.l.eb[0]].data, mb, (size_t)H * sizeof *mb);
    fx_forward(&m);
    fx_forward(&b);
    for (size_t i = 0; i < m.ny; i++)
        assert_float_equal(m.y[i], b.y[i], 1e-5);
    /* the gates are far from uniform, so the equality above is not a coincidence of g = 1/3 */
    float gmax = 0;
    for (size_t i = 0; i < (size_t)N * T * E; i++)
        gmax = fmaxf(gmax, m.acts.g[0][i]);
    assert_true(gmax > 0.5f);
    sq_params_zero_grad(&m.ps);
    sq_params_zero_grad(&b.ps);
    fx_backward(&m, m.dx);
    fx_backward(&b, b.dx);
    for (size_t i = 0; i < m.nx; i++)
        assert_float_equal(m.dx[i], b.dx[i], 1e-5);
    const float *gm = m.ps.p[m.l.ew[0]].grad, *gb = b.ps.p[b.l.ew[0]].grad;
    for (int i = 0; i < H * C; i++)
        assert_float_equal(gm[i] + gm[H * C + i] + gm[2 * H * C + i], gb[i], 1e-5);
    const sq_param *gw = &m.ps.p[m.l.gw[0]], *gbias = &m.ps.p[m.l.gb[0]];
    for (size_t i = 0; i < gw->size; i++)
        assert_float_equal(gw->grad[i], 0, 1e-5);
    for (size_t i = 0; i < gbias->size; i++)
        assert_float_equal(gbias->grad[i], 0, 1e-5);
    /* and once expert 1 differs, so does the output */
    mw[(size_t)H * C] += 1.0f;
    fx_forward(&m);
    double d = 0;
    for (size_t i = 0; i < m.ny; i++)
        d = fmax(d, fabs(m.y[i] - b.y[i]));
    assert_true(d > 1e-3);
    fx_free(&m);
    fx_free(&b);
}

/* Adds N(0, 0.5²) noise (not a constant: a softmax ignores a shift) to gate copy s of every
 * gate tensor of every level. */
static void perturb_scene_gates(fx *f, int s, unsigned long long seed) {
    const int S = f->l.n_scenes, T = f->l.n_tasks, K = f->l.gate_k, E = f->l.n_experts;
    for (int lev = 0; lev < f->l.levels; lev++) {
        const int cin = lev ? f->H : f->C;
        for (int t = 0; t < T; t++) {
            const size_t c = (size_t)t * S + s;
            gc_randn(f->ps.p[f->l.gw[lev]].data + c * K * cin, (size_t)K * cin, 0.5f, seed++);
            gc_randn(f->ps.p[f->l.gb[lev]].data + c * K, (size_t)K, 0.5f, seed++);
        }
        if (f->l.sw[lev] >= 0) {
            gc_randn(f->ps.p[f->l.sw[lev]].data + (size_t)s * E * cin, (size_t)E * cin, 0.5f,
                     seed++);
            gc_randn(f->ps.p[f->l.sb[lev]].data + (size_t)s * E, (size_t)E, 0.5f, seed++);
        }
    }
}

/* Largest |a - b| over the rows of scene s of [T, N, H] outputs. */
static double rows_diff(const fx *f, const float *a, const float *b, int s) {
    double d = 0;
    for (int t = 0; t < f->T; t++)
        for (int n = 0; n < f->N; n++)
            if (f->scene[n] == s)
                for (int j = 0; j < f->H; j++) {
                    size_t i = ((size_t)t * f->N + n) * f->H + j;
                    d = fmax(d, fabs(a[i] - b[i]));
                }
    return d;
}

/* A row's output depends on its own scene's gates only, and different scenes' gates give
 * different outputs for the same input. For MMoE and PLE (whose shared gate has scene copies
 * too). */
static void scene_case(sq_nn_share_kind kind, int nsh, int nspec, int levels) {
    const int N = 6, C = 5, H = 4, T = 2, S = 2;
    const uint16_t scene[6] = {0, 1, 0, 1, 1, 0};
    fx f;
    fx_setup(&f, kind, C, H, T, nsh, nspec, levels, S, N, scene);
    fx_fill(&f, 31);
    for (int n = 1; n < N; n += 2) /* rows 2k and 2k+1: the same input, scenes 0 and 1 */
        memcpy(f.x + (size_t)n * C, f.x + (size_t)(n - 1) * C, (size_t)C * sizeof *f.x);
    fx_forward(&f);
    for (int t = 0; t < T; t++)
        for (int n = 0; n < N; n += 2) {
            double d = 0;
            for (int j = 0; j < H; j++)
                d = fmax(d, fabs(f.y[((size_t)t * N + n) * H + j] -
                                 f.y[((size_t)t * N + n + 1) * H + j]));
            assert_true(d > 1e-3);
        }
    float *y0 = malloc(f.ny * sizeof *y0), *y1 = malloc(f.ny * sizeof *y1);
    assert_true(y0 && y1);
    memcpy(y0, f.y, f.ny * sizeof *y0);
    /* scene 1's gates change: scene-0 rows bit-identical, scene-1 rows not */
    perturb_scene_gates(&f, 1, 500);
    fx_forward(&f);
    memcpy(y1, f.y, f.ny * sizeof *y1);
    assert_true(rows_diff(&f, y0, y1, 0) == 0);
    assert_true(rows_diff(&f, y0, y1, 1) > 1e-3);
    /* and the other way round */
    perturb_scene_gates(&f, 0, 600);
    fx_forward(&f);
    assert_true(rows_diff(&f, y1, f.y, 1) == 0);
    assert_true(rows_diff(&f, y1, f.y, 0) > 1e-3);
    /* every row in scene 0: copy 1 of every gate gets exactly no gradient, copy 0 some; and a
     * NULL scene is scene 0 */
    memset(f.scene, 0, (size_t)N * sizeof *f.scene);
    fx_forward(&f);
    memcpy(y0, f.y, f.ny * sizeof *y0);
    sq_params_zero_grad(&f.ps);
    fx_backward(&f, NULL);
    const int K = f.l.gate_k, E = f.l.n_experts;
    for (int lev = 0; lev < levels; lev++) {
        const size_t cin = (size_t)(lev ? H : C);
        for (int t = 0; t < T; t++) {
            const float *dg = f.ps.p[f.l.gw[lev]].grad + ((size_t)t * S) * K * cin;
            float m0 = 0, m1 = 0;
            for (size_t i = 0; i < K * cin; i++) {
                m0 = fmaxf(m0, fabsf(dg[i]));
                m1 = fmaxf(m1, fabsf(dg[K * cin + i]));
            }
            assert_true(m0 > 0);
            assert_true(m1 == 0);
        }
        if (f.l.sw[lev] >= 0) {
            const float *dg = f.ps.p[f.l.sw[lev]].grad, *db = f.ps.p[f.l.sb[lev]].grad;
            float m0 = 0, m1 = 0;
            for (size_t i = 0; i < E * cin; i++) {
                m0 = fmaxf(m0, fabsf(dg[i]));
                m1 = fmaxf(m1, fabsf(dg[E * cin + i]));
            }
            for (int e = 0; e < E; e++)
                m1 = fmaxf(m1, fabsf(db[E + e]));
            assert_true(m0 > 0);
            assert_true(m1 == 0);
        }
    }
    free(f.scene);
    f.scene = NULL;
    fx_forward(&f);
    assert_memory_equal(f.y, y0, f.ny * sizeof *y0);
    free(y0);
    free(y1);
    fx_free(&f);
}

static void test_scene_gates(void **state) {
    (void)state;
    scene_case(SQ_SHARE_MMOE, 3, 0, 1);
    scene_case(SQ_SHARE_PLE, 2, 1, 2);
}

/* Backward adds: a second call doubles every gradient; dx NULL still adds parameter grads. */
static void test_accumulate(void **state) {
    (void)state;
    const uint16_t scene[6] = {0, 1, 1, 0, 1, 0};
    fx f;
    fx_setup(&f, SQ_SHARE_PLE, 5, 3, 2, 2, 1, 2, 2, 6, scene);
    fx_fill(&f, 3);
    sq_params_zero_grad(&f.ps);
    fx_forward(&f);
    fx_backward(&f, f.dx);
    float *g1 = malloc(f.ps.total * sizeof *g1), *dx1 = malloc(f.nx * sizeof *dx1);
    assert_true(g1 && dx1);
    memcpy(g1, f.ps.grads, f.ps.total * sizeof *g1);
    memcpy(dx1, f.dx, f.nx * sizeof *dx1);
    for (size_t i = 0; i < f.ps.n; i++) { /* every tensor got some gradient */
        float m = 0;
        for (size_t k = 0; k < f.ps.p[i].size; k++)
            m = fmaxf(m, fabsf(g1[f.ps.p[i].offset + k]));
        assert_true(m > 0);
    }
    fx_backward(&f, f.dx);
    for (size_t i = 0; i < f.ps.total; i++)
        assert_float_equal(f.ps.grads[i], 2 * g1[i], 1e-6 * (1 + fabsf(g1[i])));
    for (size_t i = 0; i < f.nx; i++)
        assert_float_equal(f.dx[i], 2 * dx1[i], 1e-6 * (1 + fabsf(dx1[i])));
    fx_backward(&f, NULL);
    for (size_t i = 0; i < f.ps.total; i++)
        assert_float_equal(f.ps.grads[i], 3 * g1[i], 1e-6 * (1 + fabsf(g1[i])));
    free(g1);
    free(dx1);
    fx_free(&f);
}

/* y, dx and every gradient bit-identical with 1 and 2 OpenMP threads. The sizes keep each
 * GEMM far below OpenBLAS's threading threshold, so BLAS runs on one thread either way and
 * only this layer's own OpenMP loops see the thread count. */
static void threads_case(sq_nn_share_kind kind, int nsh, int nspec, int levels) {
    enum { N = 67 };
    uint16_t scene[N];
    for (int n = 0; n < N; n++)
        scene[n] = (uint16_t)((n * 7) % 3);
    fx f;
    fx_setup(&f, kind, 8, 6, 3, nsh, nspec, levels, 3, N, scene);
    fx_fill(&f, 11);
    const size_t nout = f.ny + f.nx + f.ps.total;
    float *out[2];
    for (int run = 0; run < 2; run++) {
#ifdef _OPENMP
        int nt = omp_get_max_threads();
        omp_set_num_threads(run + 1);
#endif
        memset(f.dx, 0, f.nx * sizeof *f.dx);
        sq_params_zero_grad(&f.ps);
        fx_forward(&f);
        fx_backward(&f, f.dx);
#ifdef _OPENMP
        omp_set_num_threads(nt);
#endif
        out[run] = malloc(nout * sizeof(float));
        assert_non_null(out[run]);
        memcpy(out[run], f.y, f.ny * sizeof(float));
        memcpy(out[run] + f.ny, f.dx, f.nx * sizeof(float));
        memcpy(out[run] + f.ny + f.nx, f.ps.grads, f.ps.total * sizeof(float));
    }
    assert_memory_equal(out[0], out[1], nout * sizeof(float));
    free(out[0]);
    free(out[1]);
    fx_free(&f);
}

static void test_threads(void **state) {
    (void)state;
    threads_case(SQ_SHARE_BOTTOM, 1, 0, 1);
    threads_case(SQ_SHARE_MMOE, 4, 0, 1);
    threads_case(SQ_SHARE_PLE, 2, 1, 3);
}

static void test_bad_args(void **state) {
    (void)state;
    sq_params ps;
    sq_params_init(&ps);
    sq_nn_experts l;
    /* init: -1 and nothing declared */
    assert_int_equal(sq_nn_experts_init(&l, &ps, "m", SQ_SHARE_MMOE, 4, 3, 0, 2, 0, 1, 1), -1);
    assert_int_equal(sq_nn_experts_init(&l, &ps, "m", SQ_SHARE_MMOE, 4, 3, 9, 2, 0, 1, 1), -1);
    assert_int_equal(sq_nn_experts_init(&l, &ps, "m", SQ_SHARE_MMOE, 4, 3, 2, 0, 0, 1, 1), -1);
    assert_int_equal(sq_nn_experts_init(&l, &ps, "m", SQ_SHARE_PLE, 4, 3, 2, 0, 1, 1, 1), -1);
    assert_int_equal(sq_nn_experts_init(&l, &ps, "m", SQ_SHARE_PLE, 4, 3, 2, 1, -1, 1, 1), -1);
    assert_int_equal(sq_nn_experts_init(&l, &ps, "m", SQ_SHARE_PLE, 4, 3, 2, 1, 1, 0, 1), -1);
    assert_int_equal(sq_nn_experts_init(&l, &ps, "m", SQ_SHARE_PLE, 4, 3, 2, 1, 1, 5, 1), -1);
    assert_int_equal(sq_nn_experts_init(&l, &ps, "m", SQ_SHARE_PLE, 4, 3, 2, 1, 1, 2, 0), -1);
    assert_int_equal(sq_nn_experts_init(&l, &ps, "m", SQ_SHARE_PLE, 4, 3, 2, 1, 1, 2, 65537), -1);
    assert_int_equal(sq_nn_experts_init(&l, &ps, "m", SQ_SHARE_MMOE, 0, 3, 2, 2, 0, 1, 1), -1);
    assert_int_equal(sq_nn_experts_init(&l, &ps, "m", SQ_SHARE_MMOE, 4, 0, 2, 2, 0, 1, 1), -1);
    assert_int_equal(sq_nn_experts_init(&l, &ps, "m", (sq_nn_share_kind)7, 4, 3, 2, 2, 0, 1, 1),
                     -1);
    assert_int_equal(
        sq_nn_experts_init(&l, &ps, "m", SQ_SHARE_PLE, 4, 1 << 16, 8, 1, 1 << 14, 1, 1), -1);
    assert_int_equal(
        sq_nn_experts_init(&l, &ps, "m", SQ_SHARE_PLE, 4, 3, 8, INT_MAX, INT_MAX, 1, 1), -1);
    assert_int_equal(ps.n, 0);
    char longp[SQ_PARAM_NAME_MAX];
    memset(longp, 'p', sizeof longp - 1);
    longp[sizeof longp - 1] = 0;
    assert_int_equal(sq_nn_experts_init(&l, &ps, longp, SQ_SHARE_MMOE, 4, 3, 2, 2, 0, 1, 1), -1);
    /* BOTTOM ignores n_shared, n_specific and levels; MMoE n_specific and levels */
    assert_int_equal(sq_nn_experts_init(&l, &ps, "b", SQ_SHARE_BOTTOM, 4, 3, 2, 0, 5, 0, 1), 0);
    assert_int_equal(l.n_shared, 1);
    assert_int_equal(l.levels, 1);
    assert_int_equal(l.gw[0], -1);
    assert_int_equal(sq_nn_experts_init(&l, &ps, "mm", SQ_SHARE_MMOE, 4, 3, 2, 3, 5, 0, 2), 0);
    assert_int_equal(l.n_specific, 0);
    assert_int_equal(l.n_experts, 3);
    assert_int_equal(l.sw[0], -1);
    sq_params_free(&ps);

    /* forward / backward */
    const uint16_t scene[4] = {0, 1, 1, 0};
    fx f;
    fx_setup(&f, SQ_SHARE_PLE, 3, 2, 2, 1, 1, 2, 2, 4, scene);
    fx_fill(&f, 1);
    sq_nn_experts_acts acts;
    f.scene[3] = 2;
    assert_int_equal(sq_nn_experts_forward(&f.l, &f.ps, f.a, &acts, f.y, f.x, f.scene, 4, &f.err),
                     SQ_ERR_ARG);
    assert_non_null(strstr(f.err.msg, "scene[3] = 2"));
    /* a failed forward leaves nothing for backward */
    assert_int_equal(sq_nn_experts_backward(&f.l, &f.ps, f.a, &acts, f.dx, f.w, &f.err),
                     SQ_ERR_ARG);
    f.scene[3] = 1;
    assert_int_equal(sq_nn_experts_forward(&f.l, &f.ps, f.a, &acts, f.y, f.x, f.scene, -1, &f.err),
                     SQ_ERR_ARG);
    assert_int_equal(sq_nn_experts_forward(&f.l, &f.ps, f.a, &acts, f.y, NULL, f.scene, 4, &f.err),
                     SQ_ERR_ARG);
    float *big = calloc(64, sizeof *big); /* y [2, 4, 2] over x [4, 3] */
    assert_non_null(big);
    assert_int_equal(
        sq_nn_experts_forward(&f.l, &f.ps, f.a, &acts, big + 8, big, f.scene, 4, &f.err),
        SQ_ERR_ARG);
    assert_non_null(strstr(f.err.msg, "overlaps"));
    assert_int_equal(
        sq_nn_experts_forward(&f.l, &f.ps, f.a, &acts, big + 12, big, f.scene, 4, &f.err), SQ_OK);
    free(big);
    sq_nn_experts bad = f.l;
    bad.n_tasks = SQ_EXPERTS_MAX_TASKS + 1;
    assert_int_equal(sq_nn_experts_forward(&bad, &f.ps, f.a, &acts, f.y, f.x, f.scene, 4, &f.err),
                     SQ_ERR_ARG);
    bad = f.l;
    bad.levels = SQ_EXPERTS_MAX_LEVELS + 1;
    assert_int_equal(sq_nn_experts_forward(&bad, &f.ps, f.a, &acts, f.y, f.x, f.scene, 4, &f.err),
                     SQ_ERR_ARG);
    /* N == 0: nothing to do, and backward of it neither */
    assert_int_equal(sq_nn_experts_forward(&f.l, &f.ps, f.a, &acts, NULL, NULL, NULL, 0, &f.err),
                     SQ_OK);
    assert_int_equal(sq_nn_experts_backward(&f.l, &f.ps, f.a, &acts, NULL, NULL, &f.err), SQ_OK);
    fx_free(&f);
}

/* An arena one byte short of the forward's needs fails with SQ_ERR_NOMEM; one of exactly its
 * needs runs the forward and then fails the backward. */
static void test_arena_short(void **state) {
    (void)state;
    const uint16_t scene[6] = {0, 1, 1, 0, 1, 0};
    fx f;
    fx_setup(&f, SQ_SHARE_PLE, 5, 3, 2, 2, 1, 2, 2, 6, scene);
    fx_fill(&f, 2);
    fx_forward(&f);
    const size_t need = sq_arena_used(f.a);
    sq_nn_experts_acts acts;
    for (int k = 0; k < 3; k++) {
        size_t cap = k == 0 ? 64 : k == 1 ? need / 2 : need - 1;
        sq_arena *a = sq_arena_create(cap);
        assert_non_null(a);
        f.err.msg[0] = 0;
        assert_int_equal(
            sq_nn_experts_forward(&f.l, &f.ps, a, &acts, f.y, f.x, f.scene, f.N, &f.err),
            SQ_ERR_NOMEM);
        assert_non_null(strstr(f.err.msg, "arena full"));
        sq_arena_free(a);
    }
    sq_arena *a = sq_arena_create(need);
    assert_non_null(a);
    assert_int_equal(sq_nn_experts_forward(&f.l, &f.ps, a, &acts, f.y, f.x, f.scene, f.N, &f.err),
                     SQ_OK);
    assert_int_equal(sq_nn_experts_backward(&f.l, &f.ps, a, &acts, f.dx, f.w, &f.err),
                     SQ_ERR_NOMEM);
    assert_non_null(strstr(f.err.msg, "arena full"));
    sq_arena_free(a);
    fx_free(&f);
}

int main(void) {
    if (getenv("GC_EPS"))
        GC.eps = atof(getenv("GC_EPS"));
    if (getenv("GC_TOL"))
        GC.tol = atof(getenv("GC_TOL"));
    if (getenv("GC_FLOOR"))
        GC.floor = atof(getenv("GC_FLOOR"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_share_names),   cmocka_unit_test(test_hand_values),
        cmocka_unit_test(test_reference),     cmocka_unit_test(test_grad_bottom),
        cmocka_unit_test(test_grad_mmoe),     cmocka_unit_test(test_grad_ple),
        cmocka_unit_test(test_grad_ple_deep), cmocka_unit_test(test_mmoe_identical_experts),
        cmocka_unit_test(test_scene_gates),   cmocka_unit_test(test_accumulate),
        cmocka_unit_test(test_threads),       cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_arena_short),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
