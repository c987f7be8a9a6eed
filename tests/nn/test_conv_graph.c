/* test_conv_graph.c — Caser's convolutions, the SR-GNN gated graph cell and attention readout,
 * graph attention and the expert gate: hand-checked forward values and finite-difference
 * gradients of every input and every parameter tensor.
 *
 * Gradient checks (gradcheck.h) use the probe loss L = Σ w ⊙ y with w fixed random, so backward
 * gets dy = w. Relative tolerance 1e-2 everywhere.
 *   Smooth layers (GGNN, GAT, gate): eps 1e-2, floor 2e-3. The forward runs in float, so L
 *   carries ~3e-7 of rounding, i.e. ~1.5e-5 of noise in a difference quotient at this step;
 *   the floor keeps that noise under the tolerance for tiny gradients, and the curvature error
 *   of a 1e-2 step through sigmoid / tanh / softmax stays ~1e-3 relative at these weights.
 *   Caser convolutions (piecewise linear): eps 1e-3, floor 1e-3. The difference is exact away
 *   from kinks; the inputs are checked to keep every max-pool winner and ReLU clear of a tie or
 *   of zero by more than a step can move them. */
#include "testutil.h"

#include "gradcheck.h"
#include "seqrec/nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const gc_opts GC_SMOOTH = {.eps = 1e-2, .tol = 1e-2, .floor = 2e-3, .stride = 1};
static const gc_opts GC_PWL = {.eps = 1e-3, .tol = 1e-2, .floor = 1e-3, .stride = 1};

/* A layer under test: forward(ctx) fills ctx->y from the current inputs and parameters. */
typedef struct probe probe;
struct probe {
    sq_params ps;
    sq_arena *a;
    float *y, *w; /* output and probe weights, ny values */
    size_t ny;
    void (*forward)(probe *);
    void *layer;
};

static double probe_loss(void *ctx) {
    probe *p = ctx;
    sq_arena_reset(p->a);
    p->forward(p);
    return gc_dot(p->w, p->y, p->ny);
}

static void probe_setup(probe *p, size_t ny, unsigned seed) {
    p->a = sq_arena_create(1 << 20);
    assert_non_null(p->a);
    p->ny = ny;
    p->y = calloc(ny, sizeof *p->y);
    p->w = malloc(ny * sizeof *p->w);
    gc_randn(p->w, ny, 1.0f, seed);
}

static void probe_teardown(probe *p) {
    sq_arena_free(p->a);
    free(p->y);
    free(p->w);
    sq_params_free(&p->ps);
}

/* Checks the gradient of every parameter tensor of p->ps (filled by one backward). */
static void check_params(probe *p, const char *what, const gc_opts *o) {
    char name[128];
    for (size_t i = 0; i < p->ps.n; i++) {
        sq_param *t = &p->ps.p[i];
        snprintf(name, sizeof name, "%s %s", what, t->name);
        assert_int_equal(gc_check(name, probe_loss, p, t->data, t->grad, t->size, o), 0);
    }
}

/* ==================================== Caser convolutions =================================== */

enum { CB = 3, CL = 4, CD = 5, CNH = 2, CNV = 3 };

typedef struct {
    sq_nn_caser_conv l;
    sq_nn_caser_conv_acts acts;
    float x[CB * CL * CD];
} conv_ctx;

static void conv_fwd(probe *p) {
    conv_ctx *c = p->layer;
    assert_int_equal(sq_nn_caser_conv_forward(&c->l, &p->ps, p->a, &c->acts, p->y, c->x, CB, NULL),
                     SQ_OK);
}

/* Smallest distance of any max-pool winner from the runner-up and of any pooled value from 0,
 * recomputed here naively: the check keeps clear of kinks. */
static float conv_margin(const conv_ctx *c, const sq_params *ps) {
    const float *wh = ps->p[c->l.wh].data, *bh = ps->p[c->l.bh].data;
    float margin = INFINITY;
    for (int b = 0; b < CB; b++)
        for (int k = 1; k <= CL; k++)
            for (int f = 0; f < CNH; f++) {
                const float *wf = wh + (size_t)CNH * CD * k * (k - 1) / 2 + (size_t)f * k * CD;
                float best = -INFINITY, second = -INFINITY;
                for (int t = 0; t + k <= CL; t++) {
                    float s = bh[(k - 1) * CNH + f];
                    for (int i = 0; i < k * CD; i++)
                        s += wf[i] * c->x[(b * CL + t) * CD + i];
                    if (s > best) {
                        second = best;
                        best = s;
                    } else if (s > second)
                        second = s;
                }
                margin = fminf(margin, fabsf(best));
                if (second > -INFINITY)
                    margin = fminf(margin, best - second);
            }
    return margin;
}

static void test_caser_conv_values(void **state) {
    (void)state;
    /* L = 2, d = 2, one filter of each kind. x = [[1, 2], [3, −1]].
     * vertical: Wv = (0.5, −1), bv = 0.25: o_v = 0.25 + 0.5 (1, 2) − (3, −1) = (−2.25, 2.25).
     * height 1: Wh = (1, 1), bh = −1: windows 3 − 1 = 2, 2 − 1 = 1 → max 2 at t = 0.
     * height 2: Wh = (1, 0, 0, 1), bh = −5: 1 − 1 − 5 = −5 → ReLU 0, no argmax. */
    probe p = {0};
    sq_params_init(&p.ps);
    sq_nn_caser_conv l;
    assert_int_equal(sq_nn_caser_conv_init(&l, &p.ps, "caser", 2, 2, 1, 1), 0);
    assert_int_equal(sq_params_alloc(&p.ps, NULL), SQ_OK);
    assert_int_equal(sq_nn_caser_conv_width(&l), 4);
    const float wh[6] = {1, 1, 1, 0, 0, 1}, bh[2] = {-1, -5}, wv[2] = {0.5f, -1}, bv = 0.25f;
    memcpy(p.ps.p[l.wh].data, wh, sizeof wh);
    memcpy(p.ps.p[l.bh].data, bh, sizeof bh);
    memcpy(p.ps.p[l.wv].data, wv, sizeof wv);
    p.ps.p[l.bv].data[0] = bv;
    float x[4] = {1, 2, 3, -1}, y[4];
    sq_nn_caser_conv_acts acts;
    p.a = sq_arena_create(4096);
    assert_int_equal(sq_nn_caser_conv_forward(&l, &p.ps, p.a, &acts, y, x, 1, NULL), SQ_OK);
    assert_float_equal(y[0], -2.25f, 1e-6);
    assert_float_equal(y[1], 2.25f, 1e-6);
    assert_float_equal(y[2], 2.0f, 1e-6);
    assert_float_equal(y[3], 0.0f, 1e-6);
    assert_int_equal(acts.argmax[0], 0);
    assert_int_equal(acts.argmax[1], -1);
    /* backward with dy = (0, 0, 1, 1): only the height-1 winner (t = 0) passes gradient:
     * dx[0] += Wh_1 = (1, 1); dWh_1 += x[0] = (1, 2); dbh = (1, 0) */
    float dy[4] = {0, 0, 1, 1}, dx[4] = {0};
    assert_int_equal(sq_nn_caser_conv_backward(&l, &p.ps, p.a, &acts, dx, dy, NULL), SQ_OK);
    assert_true(dx[0] == 1 && dx[1] == 1 && dx[2] == 0 && dx[3] == 0);
    float *dwh = p.ps.p[l.wh].grad, *dbh = p.ps.p[l.bh].grad;
    assert_true(dwh[0] == 1 && dwh[1] == 2 && dwh[2] == 0 && dbh[0] == 1 && dbh[1] == 0);
    sq_arena_free(p.a);
    sq_params_free(&p.ps);
}

static void test_caser_conv_gradcheck(void **state) {
    (void)state;
    conv_ctx c;
    probe p = {0};
    sq_params_init(&p.ps);
    assert_int_equal(sq_nn_caser_conv_init(&c.l, &p.ps, "caser", CL, CD, CNH, CNV), 0);
    assert_int_equal(sq_params_alloc(&p.ps, NULL), SQ_OK);
    sq_rng rng;
    sq_rng_seed(&rng, 3);
    sq_nn_caser_conv_reset(&c.l, &p.ps, &rng);
    gc_randn(c.x, CB * CL * CD, 1.0f, 4);
    probe_setup(&p, (size_t)CB * sq_nn_caser_conv_width(&c.l), 5);
    p.forward = conv_fwd;
    p.layer = &c;
    /* keep clear of kinks: every |w| ≤ 4 and |x| ≤ 4 here, so a step moves a conv value by
     * at most 4 · eps; the margin must be larger than twice that */
    assert_true(conv_margin(&c, &p.ps) > 8 * GC_PWL.eps);
    conv_fwd(&p);
    float dx[CB * CL * CD] = {0};
    assert_int_equal(sq_nn_caser_conv_backward(&c.l, &p.ps, p.a, &c.acts, dx, p.w, NULL), SQ_OK);
    int active = 0;
    for (int i = 0; i < CB * CL * CNH; i++)
        active += c.acts.argmax[i] >= 0;
    assert_true(active > 4 && active < CB * CL * CNH); /* both sides of the ReLU are exercised */
    assert_int_equal(gc_check("caser dx", probe_loss, &p, c.x, dx, CB * CL * CD, &GC_PWL), 0);
    check_params(&p, "caser", &GC_PWL);
    probe_teardown(&p);
}

/* ======================================== GGNN cell ======================================== */

enum { GN = 5, GD = 4 };

typedef struct {
    sq_nn_ggnn l;
    sq_nn_ggnn_acts acts;
    float h[GN * GD], Ain[GN * GN], Aout[GN * GN];
} ggnn_ctx;

static void ggnn_fwd(probe *p) {
    ggnn_ctx *c = p->layer;
    assert_int_equal(
        sq_nn_ggnn_forward(&c->l, &p->ps, p->a, &c->acts, p->y, c->h, c->Ain, c->Aout, GN, NULL),
        SQ_OK);
}

static void test_ggnn_gradcheck(void **state) {
    (void)state;
    ggnn_ctx c;
    probe p = {0};
    sq_params_init(&p.ps);
    assert_int_equal(sq_nn_ggnn_init(&c.l, &p.ps, "gnn", GD), 0);
    assert_int_equal(p.ps.n, 8);
    assert_int_equal(sq_params_alloc(&p.ps, NULL), SQ_OK);
    sq_rng rng;
    sq_rng_seed(&rng, 7);
    sq_nn_ggnn_reset(&c.l, &p.ps, &rng);
    gc_randn(c.h, GN * GD, 1.0f, 8);
    /* session 0 → 1 → 2 → 1 → 3, node 4 isolated: out-edges normalised by out-degree */
    memset(c.Ain, 0, sizeof c.Ain);
    memset(c.Aout, 0, sizeof c.Aout);
    const int edges[4][2] = {{0, 1}, {1, 2}, {2, 1}, {1, 3}};
    int outdeg[GN] = {0}, indeg[GN] = {0};
    for (int e = 0; e < 4; e++) {
        outdeg[edges[e][0]]++;
        indeg[edges[e][1]]++;
    }
    for (int e = 0; e < 4; e++) {
        int u = edges[e][0], v = edges[e][1];
        c.Aout[u * GN + v] = 1.0f / (float)outdeg[u];
        c.Ain[v * GN + u] = 1.0f / (float)indeg[v];
    }
    probe_setup(&p, GN * GD, 9);
    p.forward = ggnn_fwd;
    p.layer = &c;
    ggnn_fwd(&p);
    float dh[GN * GD] = {0};
    assert_int_equal(sq_nn_ggnn_backward(&c.l, &p.ps, p.a, &c.acts, dh, p.w, NULL), SQ_OK);
    assert_int_equal(gc_check("ggnn dh", probe_loss, &p, c.h, dh, GN * GD, &GC_SMOOTH), 0);
    check_params(&p, "ggnn", &GC_SMOOTH);
    /* isolated node 4 gets no message: a = 0 there */
    for (int j = 0; j < 2 * GD; j++)
        assert_true(c.acts.a[4 * 2 * GD + j] == 0.0f);
    probe_teardown(&p);
}

/* ==================================== attention readout ==================================== */

enum { RS = 3, RD = 4, RN = 7 };

typedef struct {
    sq_nn_readout l;
    sq_nn_readout_acts acts;
    float x[RN * RD];
    uint32_t off[RS + 1];
} readout_ctx;

static void readout_fwd(probe *p) {
    readout_ctx *c = p->layer;
    assert_int_equal(
        sq_nn_readout_forward(&c->l, &p->ps, p->a, &c->acts, p->y, c->x, c->off, RS, NULL), SQ_OK);
}

static void test_readout(void **state) {
    (void)state;
    readout_ctx c;
    probe p = {0};
    sq_params_init(&p.ps);
    assert_int_equal(sq_nn_readout_init(&c.l, &p.ps, "readout", RD), 0);
    assert_int_equal(p.ps.n, 6);
    assert_int_equal(sq_params_alloc(&p.ps, NULL), SQ_OK);
    sq_rng rng;
    sq_rng_seed(&rng, 31);
    sq_nn_readout_reset(&c.l, &p.ps, &rng);
    gc_randn(c.x, RN * RD, 1.0f, 32);
    /* sessions of 1, 4 and 2 positions */
    const uint32_t off[RS + 1] = {0, 1, 5, 7};
    memcpy(c.off, off, sizeof off);
    probe_setup(&p, RS * RD, 33);
    p.forward = readout_fwd;
    p.layer = &c;
    readout_fwd(&p);
    /* hand check of session 1 (rows 1..4, last row 4), recomputed naively in double */
    const float *W1 = p.ps.p[c.l.w1.w].data, *b1 = p.ps.p[c.l.w1.b].data;
    const float *W2 = p.ps.p[c.l.w2.w].data, *q = p.ps.p[c.l.q].data;
    const float *W3 = p.ps.p[c.l.w3.w].data, *b3 = p.ps.p[c.l.w3.b].data;
    const float *vl = c.x + 4 * RD;
    double sg[RD] = {0};
    for (int i = 1; i <= 4; i++) {
        const float *xi = c.x + i * RD;
        double al = 0;
        for (int j = 0; j < RD; j++) {
            double pre = b1[j];
            for (int k = 0; k < RD; k++)
                pre += (double)W1[j * RD + k] * vl[k] + (double)W2[j * RD + k] * xi[k];
            al += q[j] / (1.0 + exp(-pre));
        }
        assert_float_equal(c.acts.alpha[i], al, 1e-5);
        for (int j = 0; j < RD; j++)
            sg[j] += al * xi[j];
    }
    for (int j = 0; j < RD; j++) {
        double want = b3[j];
        for (int k = 0; k < RD; k++)
            want += (double)W3[j * 2 * RD + k] * vl[k] + W3[j * 2 * RD + RD + k] * sg[k];
        assert_float_equal(p.y[RD + j], want, 1e-5);
    }
    float dx[RN * RD] = {0};
    assert_int_equal(sq_nn_readout_backward(&c.l, &p.ps, p.a, &c.acts, dx, p.w, NULL), SQ_OK);
    assert_int_equal(gc_check("readout dx", probe_loss, &p, c.x, dx, RN * RD, &GC_SMOOTH), 0);
    check_params(&p, "readout", &GC_SMOOTH);
    /* an empty session is refused */
    const uint32_t bad[RS + 1] = {0, 1, 1, 7};
    sq_nn_readout_acts acts;
    sq_error err = {0};
    assert_int_equal(sq_nn_readout_forward(&c.l, &p.ps, p.a, &acts, p.y, c.x, bad, RS, &err),
                     SQ_ERR_ARG);
    probe_teardown(&p);
}

/* ===================================== graph attention ===================================== */

enum { AN = 5, AC = 4, AF = 3, AK = 2 };

typedef struct {
    sq_nn_gat l;
    sq_nn_gat_acts acts;
    float x[AN * AC];
    uint8_t adj[AN * AN];
} gat_ctx;

static void gat_fwd(probe *p) {
    gat_ctx *c = p->layer;
    assert_int_equal(sq_nn_gat_forward(&c->l, &p->ps, p->a, &c->acts, p->y, c->x, c->adj, AN, NULL),
                     SQ_OK);
}

static void test_gat(void **state) {
    (void)state;
    gat_ctx c;
    probe p = {0};
    sq_params_init(&p.ps);
    assert_int_equal(sq_nn_gat_init(&c.l, &p.ps, "gat", AC, AF, AK, 0.2f), 0);
    assert_int_equal(sq_params_alloc(&p.ps, NULL), SQ_OK);
    sq_rng rng;
    sq_rng_seed(&rng, 11);
    sq_nn_gat_reset(&c.l, &p.ps, &rng);
    gc_randn(p.ps.p[c.l.b].data, AK * AF, 0.5f, 12);
    /* self-loops on 0..3, a few edges, node 4 has no neighbours at all */
    memset(c.adj, 0, sizeof c.adj);
    for (int i = 0; i < 4; i++)
        c.adj[i * AN + i] = 1;
    const int edges[5][2] = {{0, 1}, {0, 2}, {1, 3}, {2, 0}, {3, 4}};
    for (int e = 0; e < 5; e++)
        c.adj[edges[e][0] * AN + edges[e][1]] = 1;
    probe_setup(&p, AN * AK * AF, 14);
    p.forward = gat_fwd;
    p.layer = &c;
    /* inputs: the first seed from 13 on whose LeakyReLU inputs all keep 0.05 from the kink */
    float gap = 0;
    for (unsigned seed = 13; seed < 100 && gap <= 0.05f; seed++) {
        gc_randn(c.x, AN * AC, 1.0f, seed);
        sq_arena_reset(p.a);
        gat_fwd(&p);
        gap = INFINITY;
        for (int k = 0; k < AK; k++)
            for (int i = 0; i < AN; i++)
                for (int j = 0; j < AN; j++)
                    if (c.adj[i * AN + j])
                        gap =
                            fminf(gap, fabsf(c.acts.s_dst[i * AK + k] + c.acts.s_src[j * AK + k]));
    }
    assert_true(gap > 0.05f);
    /* rows of α sum to 1 over the neighbours; node 4's output is the bias; node 0's head 0 is
     * the α-weighted mean of z over {0, 1, 2} plus the bias (recomputed here) */
    for (int k = 0; k < AK; k++)
        for (int i = 0; i < 4; i++) {
            double s = 0;
            for (int j = 0; j < AN; j++) {
                float al = c.acts.alpha[(k * AN + i) * AN + j];
                assert_true(c.adj[i * AN + j] || al == 0.0f);
                s += al;
            }
            assert_float_equal(s, 1.0, 1e-6);
        }
    for (int f = 0; f < AK * AF; f++)
        assert_true(p.y[4 * AK * AF + f] == p.ps.p[c.l.b].data[f]);
    for (int f = 0; f < AF; f++) {
        double want = p.ps.p[c.l.b].data[f];
        for (int j = 0; j < 3; j++)
            want += c.acts.alpha[j] * c.acts.z[j * AK * AF + f];
        assert_float_equal(p.y[f], want, 1e-5);
    }
    float dx[AN * AC] = {0};
    assert_int_equal(sq_nn_gat_backward(&c.l, &p.ps, p.a, &c.acts, dx, p.w, NULL), SQ_OK);
    assert_int_equal(gc_check("gat dx", probe_loss, &p, c.x, dx, AN * AC, &GC_SMOOTH), 0);
    check_params(&p, "gat", &GC_SMOOTH);
    probe_teardown(&p);
}

/* ======================================= expert gate ======================================= */

enum { EN = 4, EC = 5, EE = 3, ED = 6 };

typedef struct {
    sq_nn_gate l;
    sq_nn_gate_acts acts;
    float x[EN * EC], ex[EE * EN * ED];
} gate_ctx;

static void gate_fwd(probe *p) {
    gate_ctx *c = p->layer;
    assert_int_equal(
        sq_nn_gate_forward(&c->l, &p->ps, p->a, &c->acts, p->y, c->x, c->ex, EN, ED, NULL), SQ_OK);
}

static void test_gate(void **state) {
    (void)state;
    gate_ctx c;
    probe p = {0};
    sq_params_init(&p.ps);
    assert_int_equal(sq_nn_gate_init(&c.l, &p.ps, "gate", EC, EE), 0);
    assert_int_equal(sq_params_alloc(&p.ps, NULL), SQ_OK);
    sq_rng rng;
    sq_rng_seed(&rng, 21);
    sq_nn_gate_reset(&c.l, &p.ps, &rng);
    gc_randn(p.ps.p[c.l.lin.b].data, EE, 0.5f, 22);
    gc_randn(c.x, EN * EC, 1.0f, 23);
    gc_randn(c.ex, EE * EN * ED, 1.0f, 24);
    probe_setup(&p, EN * ED, 25);
    p.forward = gate_fwd;
    p.layer = &c;
    gate_fwd(&p);
    /* hand check of row 0: g = softmax(x0 W^T + b), y0 = Σ_e g_e experts[e, 0] */
    const float *W = p.ps.p[c.l.lin.w].data, *b = p.ps.p[c.l.lin.b].data;
    double lg[EE], m = -INFINITY, s = 0;
    for (int e = 0; e < EE; e++) {
        lg[e] = b[e];
        for (int k = 0; k < EC; k++)
            lg[e] += (double)c.x[k] * W[e * EC + k];
        m = fmax(m, lg[e]);
    }
    for (int e = 0; e < EE; e++)
        s += exp(lg[e] - m);
    for (int j = 0; j < ED; j++) {
        double want = 0;
        for (int e = 0; e < EE; e++)
            want += exp(lg[e] - m) / s * c.ex[(e * EN + 0) * ED + j];
        assert_float_equal(p.y[j], want, 1e-5);
    }
    float dx[EN * EC] = {0}, dex[EE * EN * ED] = {0};
    assert_int_equal(sq_nn_gate_backward(&c.l, &p.ps, p.a, &c.acts, dx, dex, p.w, NULL), SQ_OK);
    assert_int_equal(gc_check("gate dx", probe_loss, &p, c.x, dx, EN * EC, &GC_SMOOTH), 0);
    assert_int_equal(gc_check("gate dexperts", probe_loss, &p, c.ex, dex, EE * EN * ED, &GC_SMOOTH),
                     0);
    check_params(&p, "gate", &GC_SMOOTH);
    probe_teardown(&p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_caser_conv_values),
        cmocka_unit_test(test_caser_conv_gradcheck),
        cmocka_unit_test(test_ggnn_gradcheck),
        cmocka_unit_test(test_readout),
        cmocka_unit_test(test_gat),
        cmocka_unit_test(test_gate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
