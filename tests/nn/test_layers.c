/* test_layers.c — parameters and every layer of nn_layers.h: finite-difference gradient checks
 * of each backward (inputs and every parameter), and the properties the layers promise
 * (dropout reproducibility, padding, sparse rows, attention masking, determinism).
 *
 * Gradient checks use gradcheck.h with the probe loss L = sum w * y (w random, fixed), central
 * differences with eps = 1e-2 on O(1) inputs (float forward: a smaller eps drowns in rounding
 * noise), and pass when |num - ana| <= tol * max(|num|, |ana|, floor) with tol = 2e-2 and
 * floor = 2e-2 (absolute 4e-4: float rounding noise of the loss is ~2.5e-4 at this eps) unless
 * a test says otherwise. Parameters are N(0, 0.3^2) so that eps stays in the near-linear range.
 * ReLU inputs are kept away from the kink; the ReLU SASRec block check relies on its fixed seeds
 * not putting a pre-activation within eps of 0 (the PyTorch fixture covers it exactly too).
 * GC_EPS, GC_TOL, GC_FLOOR in the environment override the defaults, for experiments. */
#include "testutil.h"

#include "gradcheck.h"
#include "seqrec/nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static gc_opts OPTS = {1e-2, 2e-2, 2e-2, 1};

/* ========================================== Harness ========================================== */

enum { MAXIN = 4 };

typedef struct harness harness;
struct harness {
    sq_arena *a;      /* activations; reset before every forward */
    sq_params ps;     /* the layer's parameters */
    sq_error err;     /* last error */
    float *y;         /* output [ny] */
    size_t ny;        /* output size */
    float *w;         /* probe weights [ny]: dL/dy */
    int nin;          /* inputs checked */
    float *x[MAXIN];  /* inputs */
    float *dx[MAXIN]; /* their gradients (outside the arena) */
    size_t nx[MAXIN]; /* their sizes */
    const char *xname[MAXIN];
    void (*fwd)(harness *h); /* y from x (arena already reset) */
    void (*bwd)(harness *h); /* dx and parameter grads from dy = w */
    uint64_t seed;           /* dropout RNG seed, reapplied before every forward */
    sq_rng rng;              /* the RNG handed to forward */
    int use_rng;             /* pass &rng (training, dropout on) or NULL */
    /* layer-specific */
    int B, T, C, O;
    uint8_t *pad;
    float aux;     /* eps / dropout p / scale */
    sq_nn_act act; /* activation under test */
    uint8_t *mask; /* dropout mask */
    sq_nn_linear lin;
    sq_nn_layernorm ln;
    sq_nn_attn attn;
    sq_nn_attn_acts attn_acts;
    int cross; /* attention: xq != xkv */
    sq_nn_ffn ffn;
    sq_nn_ffn_acts ffn_acts;
    sq_nn_block blk;
    sq_nn_block_acts blk_acts;
    sq_nn_rnn rnn;
    sq_nn_rnn_acts rnn_acts;
    sq_nn_mlp mlp;
    sq_nn_mlp_acts mlp_acts;
    float *mean, *rstd;
    int pos_param;
};

static void h_init(harness *h, size_t arena_bytes) {
    memset(h, 0, sizeof *h);
    h->a = sq_arena_create(arena_bytes);
    assert_non_null(h->a);
    sq_params_init(&h->ps);
    h->seed = 1234;
}

static float *h_input(harness *h, const char *name, size_t n, float scale, uint64_t seed) {
    assert_true(h->nin < MAXIN);
    float *x = calloc(n, sizeof *x);
    float *dx = calloc(n, sizeof *dx);
    assert_non_null(x);
    assert_non_null(dx);
    gc_randn(x, n, scale, seed);
    h->x[h->nin] = x;
    h->dx[h->nin] = dx;
    h->nx[h->nin] = n;
    h->xname[h->nin] = name;
    h->nin++;
    return x;
}

static void h_output(harness *h, size_t ny) {
    h->ny = ny;
    h->y = calloc(ny, sizeof *h->y);
    h->w = calloc(ny, sizeof *h->w);
    assert_non_null(h->y);
    assert_non_null(h->w);
    gc_randn(h->w, ny, 1.0f, 99);
}

/* Parameters: fill every tensor with N(0, 0.3^2) (LN gains around 1). */
static void h_fill_params(harness *h) {
    for (size_t i = 0; i < h->ps.n; i++) {
        sq_param *p = &h->ps.p[i];
        gc_randn(p->data, p->size, 0.3f, 1000 + i);
        size_t len = strlen(p->name);
        if (len > 2 && strcmp(p->name + len - 2, ".g") == 0)
            for (size_t k = 0; k < p->size; k++)
                p->data[k] += 1.0f;
    }
}

static void h_params(harness *h) {
    assert_int_equal(sq_params_alloc(&h->ps, &h->err), SQ_OK);
    h_fill_params(h);
}

static void h_forward(harness *h) {
    sq_arena_reset(h->a);
    sq_rng_seed(&h->rng, h->seed);
    h->fwd(h);
}

static double h_loss(void *ctx) {
    harness *h = ctx;
    h_forward(h);
    return gc_dot(h->w, h->y, h->ny);
}

/* One analytic forward + backward, then every input and parameter against finite differences.
 * Returns the number of values out of tolerance. */
static int h_check(harness *h, const gc_opts *o) {
    for (int i = 0; i < h->nin; i++)
        memset(h->dx[i], 0, h->nx[i] * sizeof(float));
    sq_params_zero_grad(&h->ps);
    h_forward(h);
    h->bwd(h);
    float *gsave = malloc((h->ps.total + 1) * sizeof *gsave);
    assert_non_null(gsave);
    if (h->ps.total)
        memcpy(gsave, h->ps.grads, h->ps.total * sizeof *gsave);
    int bad = 0;
    for (int i = 0; i < h->nin; i++)
        bad += gc_check(h->xname[i], h_loss, h, h->x[i], h->dx[i], h->nx[i], o);
    for (size_t i = 0; i < h->ps.n; i++) {
        sq_param *p = &h->ps.p[i];
        bad += gc_check(p->name, h_loss, h, p->data, gsave + p->offset, p->size, o);
    }
    free(gsave);
    return bad;
}

static void h_free(harness *h) {
    for (int i = 0; i < h->nin; i++) {
        free(h->x[i]);
        free(h->dx[i]);
    }
    free(h->y);
    free(h->w);
    free(h->pad);
    free(h->mask);
    free(h->mean);
    free(h->rstd);
    sq_params_free(&h->ps);
    sq_arena_free(h->a);
}

/* pad [B*T]: batch 0 unpadded, batch 1 left-padded by `np` positions. */
static uint8_t *left_pad(int B, int T, int np) {
    uint8_t *p = calloc((size_t)B * T, 1);
    assert_non_null(p);
    for (int t = 0; t < np && B > 1; t++)
        p[T + t] = 1;
    return p;
}

/* ========================================= Parameters ======================================== */

static void test_params(void **state) {
    (void)state;
    sq_params ps;
    sq_error err = {0};
    sq_params_init(&ps);
    size_t s_emb[2] = {10, 3}, s_w[2] = {4, 3}, s_b[1] = {4}, s_bad[2] = {0, 3};
    assert_int_equal(sq_params_declare(&ps, "emb", 2, s_emb, 1), 0);
    assert_int_equal(sq_params_declare(&ps, "fc.w", 2, s_w, 0), 1);
    assert_int_equal(sq_params_declare(&ps, "fc.b", 1, s_b, 0), 2);
    assert_int_equal(sq_params_declare(&ps, "fc.b", 1, s_b, 0), -1);   /* duplicate name */
    assert_int_equal(sq_params_declare(&ps, "zero", 2, s_bad, 0), -1); /* empty dimension */
    assert_int_equal(sq_params_declare(&ps, "nd", 5, s_w, 0), -1);     /* too many dims */
    char longname[SQ_PARAM_NAME_MAX + 4];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    assert_int_equal(sq_params_declare(&ps, longname, 1, s_b, 0), -1);
    assert_int_equal(sq_nn_declare(&ps, "fc", "b2", 1, s_b, 0), 3);
    assert_non_null(sq_params_find(&ps, "fc.b2"));

    assert_int_equal(sq_params_alloc(&ps, &err), SQ_OK);
    assert_int_equal(sq_params_alloc(&ps, &err), SQ_ERR_ARG); /* once only */
    assert_int_equal(sq_params_declare(&ps, "late", 1, s_b, 0), -1);
    sq_param *emb = sq_params_find(&ps, "emb"), *w = sq_params_find(&ps, "fc.w");
    assert_non_null(emb);
    assert_non_null(w);
    assert_null(sq_params_find(&ps, "nope"));
    assert_int_equal(emb->size, 30);
    assert_int_equal(w->size, 12);
    /* one block, aligned offsets, declaration order */
    for (size_t i = 0; i < ps.n; i++) {
        assert_int_equal(ps.p[i].offset % 16, 0);
        assert_ptr_equal(ps.p[i].data, ps.values + ps.p[i].offset);
        assert_ptr_equal(ps.p[i].grad, ps.grads + ps.p[i].offset);
        assert_true(ps.p[i].offset + ps.p[i].size <= ps.total);
        for (size_t k = 0; k < ps.p[i].size; k++)
            assert_true(ps.p[i].data[k] == 0.0f);
    }
    assert_true(w->offset >= emb->offset + emb->size);

    /* touch: distinct rows only, in first-touch order */
    sq_param_touch(emb, 7);
    sq_param_touch(emb, 2);
    sq_param_touch(emb, 7);
    sq_param_touch(emb, 99); /* out of range: ignored */
    assert_int_equal(emb->n_touched, 2);
    assert_int_equal(emb->touched[0], 7);
    assert_int_equal(emb->touched[1], 2);

    /* zero_grad: sparse tensors only on touched rows, dense ones entirely */
    for (size_t k = 0; k < ps.total; k++)
        ps.grads[k] = 1.0f;
    sq_params_zero_grad(&ps);
    for (int r = 0; r < 10; r++)
        for (int c = 0; c < 3; c++) {
            float g = emb->grad[r * 3 + c];
            if (r == 7 || r == 2)
                assert_true(g == 0.0f);
            else
                assert_true(g == 1.0f); /* untouched rows are not walked */
        }
    for (size_t k = 0; k < w->size; k++)
        assert_true(w->grad[k] == 0.0f);
    assert_int_equal(emb->n_touched, 0);
    sq_param_touch(emb, 7); /* the marks were cleared too */
    assert_int_equal(emb->n_touched, 1);
    sq_params_free(&ps);
    assert_int_equal(ps.n, 0);
    sq_params_free(&ps); /* twice is harmless */
    sq_params_free(NULL);

    /* every allocation failure inside alloc is reported and cleaned up (ASan checks leaks) */
    for (long k = 0; k < 6; k++) {
        sq_params_init(&ps);
        assert_int_equal(sq_params_declare(&ps, "emb", 2, s_emb, 1), 0);
        assert_int_equal(sq_params_declare(&ps, "w", 2, s_w, 0), 1);
        sq_alloc_fail_after(k);
        sq_status rc = sq_params_alloc(&ps, &err);
        sq_alloc_fail_after(-1);
        if (k < 4)
            assert_int_equal(rc, SQ_ERR_NOMEM);
        else
            assert_int_equal(rc, SQ_OK);
        sq_params_free(&ps);
    }
}

/* =========================================== Linear ========================================== */

static void lin_fwd(harness *h) {
    sq_nn_linear_forward(h->y, h->x[0], sq_nn_val(&h->ps, h->lin.w), sq_nn_val(&h->ps, h->lin.b),
                         h->B, h->C, h->O);
}
static void lin_bwd(harness *h) {
    sq_nn_linear_backward(h->dx[0], sq_nn_grad(&h->ps, h->lin.w), sq_nn_grad(&h->ps, h->lin.b),
                          h->w, h->x[0], sq_nn_val(&h->ps, h->lin.w), h->B, h->C, h->O);
}

static void test_linear(void **state) {
    (void)state;
    harness h;
    h_init(&h, 1 << 16);
    h.B = 7, h.C = 5, h.O = 3; /* B plays N */
    assert_int_equal(sq_nn_linear_init(&h.lin, &h.ps, "fc", h.C, h.O, 1), 0);
    h_params(&h);
    h_input(&h, "x", (size_t)h.B * h.C, 1.0f, 1);
    h_output(&h, (size_t)h.B * h.O);
    h.fwd = lin_fwd;
    h.bwd = lin_bwd;
    /* y = x W^T + b by hand for one element */
    h_forward(&h);
    const float *W = sq_nn_val(&h.ps, h.lin.w), *b = sq_nn_val(&h.ps, h.lin.b);
    double e = b[2];
    for (int c = 0; c < h.C; c++)
        e += (double)h.x[0][3 * h.C + c] * W[2 * h.C + c];
    assert_float_equal(h.y[3 * h.O + 2], e, 1e-5);
    assert_int_equal(h_check(&h, &OPTS), 0);
    /* accumulation: a second backward doubles the gradients */
    sq_params_zero_grad(&h.ps);
    memset(h.dx[0], 0, h.nx[0] * sizeof(float));
    lin_bwd(&h);
    float g1 = h.dx[0][4], gw = sq_nn_grad(&h.ps, h.lin.w)[5];
    lin_bwd(&h);
    assert_float_equal(h.dx[0][4], 2 * g1, 1e-5);
    assert_float_equal(sq_nn_grad(&h.ps, h.lin.w)[5], 2 * gw, 1e-5);
    h_free(&h);
}

/* ========================================= Layer norm ======================================== */

static void ln_fwd(harness *h) {
    sq_nn_layernorm_forward(h->y, h->mean, h->rstd, h->x[0], sq_nn_val(&h->ps, h->ln.g),
                            sq_nn_val(&h->ps, h->ln.b), h->B, h->C, h->ln.eps);
}
static void ln_bwd(harness *h) {
    sq_nn_layernorm_backward(h->dx[0], sq_nn_grad(&h->ps, h->ln.g), sq_nn_grad(&h->ps, h->ln.b),
                             h->w, h->x[0], h->mean, h->rstd, sq_nn_val(&h->ps, h->ln.g), h->B,
                             h->C);
}

static void test_layernorm(void **state) {
    (void)state;
    harness h;
    h_init(&h, 1 << 16);
    h.B = 6, h.C = 8;
    assert_int_equal(sq_nn_layernorm_init(&h.ln, &h.ps, "ln", h.C, 1e-5f), 0);
    h_params(&h);
    h.mean = calloc((size_t)h.B, sizeof(float));
    h.rstd = calloc((size_t)h.B, sizeof(float));
    float *x = h_input(&h, "x", (size_t)h.B * h.C, 2.0f, 2);
    for (int i = 0; i < h.C; i++)
        x[i] += 3.0f; /* a row with a large mean */
    h_output(&h, (size_t)h.B * h.C);
    h.fwd = ln_fwd;
    h.bwd = ln_bwd;
    /* with gamma = 1, beta = 0 every row has mean 0 and variance 1 - eps-ish */
    sq_nn_layernorm_reset(&h.ln, &h.ps);
    h_forward(&h);
    for (int n = 0; n < h.B; n++) {
        double m = 0, v = 0;
        for (int c = 0; c < h.C; c++)
            m += h.y[n * h.C + c];
        m /= h.C;
        for (int c = 0; c < h.C; c++)
            v += (h.y[n * h.C + c] - m) * (h.y[n * h.C + c] - m);
        assert_float_equal(m, 0.0, 1e-5);
        assert_float_equal(v / h.C, 1.0, 1e-3);
    }
    h_fill_params(&h); /* random gamma, beta */
    assert_int_equal(h_check(&h, &OPTS), 0);
    h_free(&h);
}

/* ========================================= Activations ======================================= */

static void act_fwd(harness *h) {
    sq_nn_act_forward(h->act, h->y, h->x[0], h->ny);
}
static void act_bwd(harness *h) {
    sq_nn_act_backward(h->act, h->dx[0], h->w, h->x[0], h->y, h->ny);
}

static void test_activations(void **state) {
    (void)state;
    const sq_nn_act acts[5] = {SQ_ACT_NONE, SQ_ACT_RELU, SQ_ACT_GELU, SQ_ACT_SIGMOID, SQ_ACT_TANH};
    for (int k = 0; k < 5; k++) {
        harness h;
        h_init(&h, 1 << 12);
        h.act = acts[k];
        float *x = h_input(&h, "x", 64, 1.5f, 3 + k);
        for (int i = 0; i < 64; i++) /* keep away from ReLU's kink at 0 (eps = 1e-2) */
            if (fabsf(x[i]) < 0.05f)
                x[i] = x[i] < 0 ? -0.1f : 0.1f;
        h_output(&h, 64);
        h.fwd = act_fwd;
        h.bwd = act_bwd;
        assert_int_equal(h_check(&h, &OPTS), 0);
        h_free(&h);
    }
    /* values: GELU (tanh form) at 1 is 0.841192, sigmoid(0) = 0.5, relu(-1) = 0 */
    float x[3] = {1.0f, 0.0f, -1.0f}, y[3];
    sq_nn_gelu_forward(y, x, 1);
    assert_float_equal(y[0], 0.8411920f, 1e-6);
    sq_nn_sigmoid_forward(y, x + 1, 1);
    assert_float_equal(y[0], 0.5f, 1e-7);
    sq_nn_relu_forward(y, x, 3);
    assert_true(y[2] == 0.0f && y[0] == 1.0f);
}

/* ========================================== Dropout ========================================== */

static void drop_fwd(harness *h) {
    sq_nn_dropout_forward(h->y, h->mask, h->x[0], h->ny, h->aux, h->use_rng ? &h->rng : NULL);
}
static void drop_bwd(harness *h) {
    sq_nn_dropout_backward(h->dx[0], h->w, h->use_rng ? h->mask : NULL, h->ny, h->aux);
}

static void test_dropout(void **state) {
    (void)state;
    const size_t n = 3 * SQ_NN_DROPOUT_BLOCK + 123; /* several blocks and a ragged end */
    float *x = malloc(n * sizeof *x), *y1 = malloc(n * sizeof *y1), *y2 = malloc(n * sizeof *y2);
    uint8_t *m1 = malloc(n), *m2 = malloc(n);
    assert_non_null(x);
    assert_non_null(y1);
    assert_non_null(y2);
    assert_non_null(m1);
    assert_non_null(m2);
    for (size_t i = 0; i < n; i++)
        x[i] = 1.0f + (float)(i % 7);
    sq_rng r1, r2;
    sq_rng_seed(&r1, 5);
    sq_rng_seed(&r2, 5);
    /* same seed -> same mask, whatever the thread count */
#ifdef _OPENMP
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
#endif
    sq_nn_dropout_forward(y1, m1, x, n, 0.3f, &r1);
#ifdef _OPENMP
    omp_set_num_threads(nt > 1 ? nt : 2);
#endif
    sq_nn_dropout_forward(y2, m2, x, n, 0.3f, &r2);
#ifdef _OPENMP
    omp_set_num_threads(nt);
#endif
    assert_memory_equal(m1, m2, n);
    assert_memory_equal(y1, y2, n * sizeof *y1);
    assert_memory_equal(&r1, &r2, sizeof r1); /* one draw each */
    /* the next call gives a different mask */
    sq_nn_dropout_forward(y2, m2, x, n, 0.3f, &r2);
    assert_true(memcmp(m1, m2, n) != 0);
    /* expectation: kept fraction ~ 0.7, mean of y ~ mean of x (inverted scaling) */
    size_t kept = 0;
    double sx = 0, sy = 0;
    for (size_t i = 0; i < n; i++) {
        kept += m1[i];
        sx += x[i];
        sy += y1[i];
        assert_true(m1[i] ? fabsf(y1[i] - x[i] / 0.7f) < 1e-5f : y1[i] == 0.0f);
    }
    assert_float_equal((double)kept / n, 0.7, 0.02); /* n = 12,411: sd 0.004 */
    assert_float_equal(sy / sx, 1.0, 0.03);
    /* p = 0 or no RNG: identity, RNG untouched */
    sq_rng r3 = r1;
    sq_nn_dropout_forward(y2, NULL, x, n, 0.0f, &r1);
    assert_memory_equal(y2, x, n * sizeof *x);
    assert_memory_equal(&r3, &r1, sizeof r1);
    sq_nn_dropout_forward(y2, NULL, x, n, 0.5f, NULL);
    assert_memory_equal(y2, x, n * sizeof *x);
    /* in place */
    memcpy(y2, x, n * sizeof *x);
    sq_rng_seed(&r1, 5);
    sq_nn_dropout_forward(y2, m2, y2, n, 0.3f, &r1);
    assert_memory_equal(y2, y1, n * sizeof *y1);
    free(x);
    free(y1);
    free(y2);
    free(m1);
    free(m2);

    /* backward against finite differences with the mask fixed by the seed */
    harness h;
    h_init(&h, 1 << 12);
    h.aux = 0.4f;
    h.use_rng = 1;
    h_input(&h, "x", 100, 1.0f, 7);
    h_output(&h, 100);
    h.mask = malloc(100);
    h.fwd = drop_fwd;
    h.bwd = drop_bwd;
    assert_int_equal(h_check(&h, &OPTS), 0);
    h.use_rng = 0; /* off: identity both ways */
    assert_int_equal(h_check(&h, &OPTS), 0);
    h_free(&h);
}

/* ========================================= Embedding ========================================= */

static const uint32_t EMB_IDS[8] = {3, 0, 5, 3, 0, 1, 5, 5}; /* 0 is padding */

static void emb_fwd(harness *h) {
    assert_int_equal(sq_nn_embedding_forward(h->y, EMB_IDS, sq_nn_val(&h->ps, 0), 8, 6, h->C, 0,
                                             h->aux, &h->err),
                     SQ_OK);
}
static void emb_bwd(harness *h) {
    sq_nn_embedding_backward(&h->ps.p[0], h->w, EMB_IDS, 8, 0, h->aux);
}

static void test_embedding(void **state) {
    (void)state;
    harness h;
    h_init(&h, 1 << 12);
    h.C = 4;
    h.aux = 2.0f; /* scale, as SASRec's sqrt(d) */
    size_t shape[2] = {6, 4};
    assert_int_equal(sq_params_declare(&h.ps, "item", 2, shape, 1), 0);
    h_params(&h);
    h_output(&h, 8 * 4);
    h.fwd = emb_fwd;
    h.bwd = emb_bwd;
    h_forward(&h);
    const float *tab = sq_nn_val(&h.ps, 0);
    for (int n = 0; n < 8; n++)
        for (int c = 0; c < 4; c++)
            assert_true(h.y[n * 4 + c] == (EMB_IDS[n] ? 2.0f * tab[EMB_IDS[n] * 4 + c] : 0.0f));
    assert_int_equal(h_check(&h, &OPTS), 0);

    /* sparse bookkeeping: rows 3, 5, 1 touched (first-seen order), padding row 0 untouched */
    sq_param *p = &h.ps.p[0];
    sq_params_zero_grad(&h.ps);
    emb_bwd(&h);
    assert_int_equal(p->n_touched, 3);
    assert_int_equal(p->touched[0], 3);
    assert_int_equal(p->touched[1], 5);
    assert_int_equal(p->touched[2], 1);
    for (int c = 0; c < 4; c++) {
        assert_true(p->grad[0 * 4 + c] == 0.0f); /* padding row: no gradient */
        assert_true(p->grad[2 * 4 + c] == 0.0f); /* unused rows */
        assert_true(p->grad[4 * 4 + c] == 0.0f);
        /* row 5 = 2 * (w[2] + w[6] + w[7]) */
        float e = 2.0f * (h.w[2 * 4 + c] + h.w[6 * 4 + c] + h.w[7 * 4 + c]);
        assert_float_equal(p->grad[5 * 4 + c], e, 1e-5);
    }
    sq_params_zero_grad(&h.ps);
    for (size_t k = 0; k < p->size; k++)
        assert_true(p->grad[k] == 0.0f);

    /* an id past the table is an argument error */
    uint32_t bad[2] = {1, 6};
    assert_int_equal(sq_nn_embedding_forward(h.y, bad, tab, 2, 6, 4, 0, 1.0f, &h.err), SQ_ERR_ARG);
    assert_non_null(strstr(h.err.msg, "id 6"));
    h_free(&h);
}

/* ======================================== Positional ========================================= */

static void pos_fwd(harness *h) {
    sq_nn_pos_forward(h->y, h->x[0], sq_nn_val(&h->ps, 0), h->B, h->T, h->C);
}
static void pos_bwd(harness *h) {
    sq_nn_pos_backward(h->dx[0], sq_nn_grad(&h->ps, 0), h->w, h->B, h->T, h->C);
}

static void test_positional(void **state) {
    (void)state;
    harness h;
    h_init(&h, 1 << 12);
    h.B = 3, h.T = 4, h.C = 5;
    size_t shape[2] = {6, 5}; /* Tmax 6 > T */
    assert_int_equal(sq_params_declare(&h.ps, "pos", 2, shape, 0), 0);
    h_params(&h);
    h_input(&h, "x", 60, 1.0f, 8);
    h_output(&h, 60);
    h.fwd = pos_fwd;
    h.bwd = pos_bwd;
    assert_int_equal(h_check(&h, &OPTS), 0);
    /* rows 4, 5 of the table are beyond T: no gradient */
    sq_params_zero_grad(&h.ps);
    pos_bwd(&h);
    for (int k = 20; k < 30; k++)
        assert_true(sq_nn_grad(&h.ps, 0)[k] == 0.0f);
    h_free(&h);

    float P[3 * 4];
    sq_nn_pos_sinusoid_table(P, 3, 4);
    assert_float_equal(P[0], 0.0f, 1e-7); /* t = 0: sin 0, cos 0 */
    assert_float_equal(P[1], 1.0f, 1e-7);
    assert_float_equal(P[4 + 0], sinf(1.0f), 1e-6);
    assert_float_equal(P[4 + 1], cosf(1.0f), 1e-6);
    assert_float_equal(P[8 + 2], sinf(2.0f / 100.0f), 1e-6); /* 10000^(2/4) = 100 */
    assert_float_equal(P[8 + 3], cosf(2.0f / 100.0f), 1e-6);
}

/* ========================================= Attention ========================================= */

static void attn_fwd(harness *h) {
    const float *xkv = h->cross ? h->x[1] : h->x[0];
    sq_status rc = sq_nn_attn_forward(&h->attn, &h->ps, h->a, &h->attn_acts, h->y, h->x[0], xkv,
                                      h->pad, h->B, h->T, h->use_rng ? &h->rng : NULL, &h->err);
    assert_int_equal(rc, SQ_OK);
}
static void attn_bwd(harness *h) {
    float *dkv = h->cross ? h->dx[1] : h->dx[0];
    assert_int_equal(
        sq_nn_attn_backward(&h->attn, &h->ps, h->a, &h->attn_acts, h->dx[0], dkv, h->w, &h->err),
        SQ_OK);
}

static void attn_setup(harness *h, int B, int T, int C, int H, int causal, float p, int cross) {
    h_init(h, 8 << 20);
    h->B = B, h->T = T, h->C = C;
    h->cross = cross;
    assert_int_equal(sq_nn_attn_init(&h->attn, &h->ps, "attn", C, H, causal, p), 0);
    h_params(h);
    h_input(h, "xq", (size_t)B * T * C, 1.0f, 11);
    if (cross)
        h_input(h, "xkv", (size_t)B * T * C, 1.0f, 12);
    h_output(h, (size_t)B * T * C);
    h->fwd = attn_fwd;
    h->bwd = attn_bwd;
}

static void test_attention_grad(void **state) {
    (void)state;
    /* self-attention, 2 heads, causal, batch 1 left-padded by 2, dropout on the weights */
    harness h;
    attn_setup(&h, 2, 5, 8, 2, 1, 0.25f, 0);
    h.pad = left_pad(2, 5, 2);
    h.use_rng = 1;
    assert_int_equal(h_check(&h, &OPTS), 0);
    h.use_rng = 0;
    assert_int_equal(h_check(&h, &OPTS), 0);
    h_free(&h);
    /* separate query and key/value inputs (the SASRec block's use), not causal, 1 head */
    attn_setup(&h, 2, 4, 6, 1, 0, 0.0f, 1);
    h.pad = left_pad(2, 4, 1);
    assert_int_equal(h_check(&h, &OPTS), 0);
    h_free(&h);
}

/* T > the causal GEMM chunk (64): several chunks, a long leading padding, a hole, dropout.
 * Every 7th value is checked (stride) to keep it quick. */
static void test_attention_long(void **state) {
    (void)state;
    harness h;
    const int B = 2, T = 150;
    attn_setup(&h, B, T, 4, 2, 1, 0.1f, 0);
    h.pad = left_pad(B, T, 70);
    h.pad[T + 100] = 1;
    h.use_rng = 1;
    gc_opts o = OPTS;
    o.stride = 7;
    assert_int_equal(h_check(&h, &o), 0);
    h_forward(&h); /* rows still sum to 1 across chunk boundaries */
    for (int b = 0; b < B; b++) {
        const float *A = sq_nn_attn_weights(&h.attn, &h.attn_acts, b, 1);
        for (int t = 0; t < T; t++) {
            double s = 0;
            for (int j = 0; j < T; j++)
                s += A[t * T + j];
            assert_float_equal(s, 1.0, 1e-5);
        }
    }
    h_free(&h);
}

static void test_attention_mask(void **state) {
    (void)state;
    harness h;
    const int B = 3, T = 6, H = 2;
    attn_setup(&h, B, T, 8, H, 1, 0.0f, 0);
    h.pad = calloc((size_t)B * T, 1);
    for (int t = 0; t < 4; t++)
        h.pad[T + t] = 1; /* batch 1: left padding */
    for (int t = 0; t < T; t++)
        h.pad[2 * T + t] = 1; /* batch 2: nothing but padding */
    h.pad[0 * T + 2] = 1;     /* batch 0: a hole in the middle */
    h_forward(&h);
    for (int b = 0; b < B; b++)
        for (int hh = 0; hh < H; hh++) {
            const float *A = sq_nn_attn_weights(&h.attn, &h.attn_acts, b, hh);
            for (int t = 0; t < T; t++) {
                double s = 0;
                for (int j = 0; j < T; j++) {
                    float v = A[t * T + j];
                    assert_false(isnan(v));
                    int allowed = j <= t && (!h.pad[b * T + j] || j == t);
                    if (!allowed)
                        assert_true(v == 0.0f); /* exactly zero */
                    else
                        assert_true(v > 0.0f);
                    s += v;
                }
                assert_float_equal(s, 1.0, 1e-6);
                int alone = 1; /* no unpadded earlier key: the query sees itself only */
                for (int j = 0; j < t; j++)
                    alone &= h.pad[b * T + j];
                if (alone)
                    assert_true(A[t * T + t] == 1.0f);
            }
        }
    for (size_t i = 0; i < h.ny; i++)
        assert_false(isnan(h.y[i]));
    /* and the backward of the fully padded batch is finite */
    assert_int_equal(h_check(&h, &OPTS), 0);
    h_free(&h);
}

/* ======================================= Feed-forward ======================================== */

static void ffn_fwd(harness *h) {
    assert_int_equal(sq_nn_ffn_forward(&h->ffn, &h->ps, h->a, &h->ffn_acts, h->y, h->x[0], h->B,
                                       h->use_rng ? &h->rng : NULL, &h->err),
                     SQ_OK);
}
static void ffn_bwd(harness *h) {
    assert_int_equal(
        sq_nn_ffn_backward(&h->ffn, &h->ps, h->a, &h->ffn_acts, h->dx[0], h->w, &h->err), SQ_OK);
}

static void test_ffn(void **state) {
    (void)state;
    const sq_nn_act acts[3] = {SQ_ACT_GELU, SQ_ACT_TANH, SQ_ACT_NONE};
    for (int k = 0; k < 3; k++) {
        harness h;
        h_init(&h, 1 << 18);
        h.B = 10; /* rows */
        assert_int_equal(sq_nn_ffn_init(&h.ffn, &h.ps, "ffn", 6, 12, acts[k], 0.2f), 0);
        h_params(&h);
        h_input(&h, "x", 60, 1.0f, 13);
        h_output(&h, 60);
        h.fwd = ffn_fwd;
        h.bwd = ffn_bwd;
        h.use_rng = 1;
        assert_int_equal(h_check(&h, &OPTS), 0);
        h.use_rng = 0;
        assert_int_equal(h_check(&h, &OPTS), 0);
        h_free(&h);
    }
}

/* ===================================== Transformer block ===================================== */

static void blk_fwd(harness *h) {
    assert_int_equal(sq_nn_block_forward(&h->blk, &h->ps, h->a, &h->blk_acts, h->y, h->x[0], h->pad,
                                         h->B, h->T, h->use_rng ? &h->rng : NULL, &h->err),
                     SQ_OK);
}
static void blk_bwd(harness *h) {
    assert_int_equal(
        sq_nn_block_backward(&h->blk, &h->ps, h->a, &h->blk_acts, h->dx[0], h->w, &h->err), SQ_OK);
}

static void blk_setup(harness *h, sq_nn_block_kind kind, int H, sq_nn_act act, float p) {
    h_init(h, 1 << 20);
    h->B = 2, h->T = 5, h->C = 8;
    assert_int_equal(sq_nn_block_init(&h->blk, &h->ps, "block0", kind, h->C, H, 16, act, p, 1e-5f),
                     0);
    h_params(h);
    h_input(h, "x", (size_t)h->B * h->T * h->C, 1.0f, 21);
    h_output(h, (size_t)h->B * h->T * h->C);
    h->pad = left_pad(h->B, h->T, 2);
    h->fwd = blk_fwd;
    h->bwd = blk_bwd;
}

static void test_block_sasrec(void **state) {
    (void)state;
    harness h;
    /* the SASRec block with ReLU, padding and dropout (mask fixed by the seed) */
    blk_setup(&h, SQ_BLOCK_SASREC, 1, SQ_ACT_RELU, 0.2f);
    h.use_rng = 1;
    assert_int_equal(h_check(&h, &OPTS), 0);
    h_forward(&h); /* padded rows are zero */
    for (int t = 0; t < 2; t++)
        for (int c = 0; c < h.C; c++)
            assert_true(h.y[(h.T + t) * h.C + c] == 0.0f);
    h_free(&h);
    blk_setup(&h, SQ_BLOCK_SASREC, 2, SQ_ACT_GELU, 0.0f);
    assert_int_equal(h_check(&h, &OPTS), 0);
    h_free(&h);
}

static void test_block_pre_post(void **state) {
    (void)state;
    harness h;
    blk_setup(&h, SQ_BLOCK_PRE_LN, 2, SQ_ACT_GELU, 0.1f);
    h.use_rng = 1;
    assert_int_equal(h_check(&h, &OPTS), 0);
    h_free(&h);
    blk_setup(&h, SQ_BLOCK_POST_LN, 2, SQ_ACT_GELU, 0.1f);
    h.use_rng = 1;
    assert_int_equal(h_check(&h, &OPTS), 0);
    h_free(&h);
}

/* Two runs with one thread are bit-identical; two threads agree within float noise. */
static void test_block_determinism(void **state) {
    (void)state;
    harness h;
    blk_setup(&h, SQ_BLOCK_SASREC, 2, SQ_ACT_RELU, 0.2f);
    h.use_rng = 1;
    size_t nx = h.nx[0], ng = h.ps.total;
    float *ref[3];
    for (int run = 0; run < 3; run++) {
#ifdef _OPENMP
        int nt = omp_get_max_threads();
        omp_set_num_threads(run < 2 ? 1 : 2);
#endif
        memset(h.dx[0], 0, nx * sizeof(float));
        sq_params_zero_grad(&h.ps);
        h_forward(&h);
        h.bwd(&h);
#ifdef _OPENMP
        omp_set_num_threads(nt);
#endif
        ref[run] = malloc((h.ny + nx + ng) * sizeof(float));
        assert_non_null(ref[run]);
        memcpy(ref[run], h.y, h.ny * sizeof(float));
        memcpy(ref[run] + h.ny, h.dx[0], nx * sizeof(float));
        memcpy(ref[run] + h.ny + nx, h.ps.grads, ng * sizeof(float));
    }
    assert_memory_equal(ref[0], ref[1], (h.ny + nx + ng) * sizeof(float));
    for (size_t i = 0; i < h.ny + nx + ng; i++)
        assert_true(fabsf(ref[0][i] - ref[2][i]) <= 1e-5f * (1.0f + fabsf(ref[0][i])));
    for (int run = 0; run < 3; run++)
        free(ref[run]);
    h_free(&h);
}

static void test_arena_full(void **state) {
    (void)state;
    harness h;
    blk_setup(&h, SQ_BLOCK_SASREC, 1, SQ_ACT_RELU, 0.0f);
    sq_arena_free(h.a);
    h.a = sq_arena_create(1024); /* far too small */
    assert_non_null(h.a);
    assert_int_equal(sq_nn_block_forward(&h.blk, &h.ps, h.a, &h.blk_acts, h.y, h.x[0], h.pad, h.B,
                                         h.T, NULL, &h.err),
                     SQ_ERR_NOMEM);
    assert_non_null(strstr(h.err.msg, "arena full"));
    assert_int_equal(sq_nn_block_forward(&h.blk, &h.ps, h.a, &h.blk_acts, h.x[0], h.x[0], h.pad,
                                         h.B, h.T, NULL, &h.err),
                     SQ_ERR_ARG); /* y aliasing x */
    h_free(&h);
}

/* ======================================== GRU / LSTM ========================================= */

static void gru_fwd(harness *h) {
    assert_int_equal(sq_nn_gru_forward(&h->rnn, &h->ps, h->a, &h->rnn_acts, h->y, h->x[0],
                                       h->nin > 1 ? h->x[1] : NULL, h->pad, h->B, h->T, &h->err),
                     SQ_OK);
}
static void gru_bwd(harness *h) {
    assert_int_equal(sq_nn_gru_backward(&h->rnn, &h->ps, h->a, &h->rnn_acts, h->dx[0],
                                        h->nin > 1 ? h->dx[1] : NULL, h->w, &h->err),
                     SQ_OK);
}
static void lstm_fwd(harness *h) {
    assert_int_equal(sq_nn_lstm_forward(&h->rnn, &h->ps, h->a, &h->rnn_acts, h->y, h->x[0],
                                        h->nin > 1 ? h->x[1] : NULL, h->nin > 2 ? h->x[2] : NULL,
                                        h->pad, h->B, h->T, &h->err),
                     SQ_OK);
}
static void lstm_bwd(harness *h) {
    assert_int_equal(sq_nn_lstm_backward(&h->rnn, &h->ps, h->a, &h->rnn_acts, h->dx[0],
                                         h->nin > 1 ? h->dx[1] : NULL, h->nin > 2 ? h->dx[2] : NULL,
                                         h->w, &h->err),
                     SQ_OK);
}

static void rnn_setup(harness *h, int lstm, int with_state, int padded) {
    h_init(h, 1 << 18);
    h->B = 3, h->T = 5, h->C = 4;
    const int G = 6;
    assert_int_equal(lstm ? sq_nn_lstm_init(&h->rnn, &h->ps, "rnn", h->C, G)
                          : sq_nn_gru_init(&h->rnn, &h->ps, "rnn", h->C, G),
                     0);
    h_params(h);
    h_input(h, "x", (size_t)h->B * h->T * h->C, 1.0f, 31);
    if (with_state)
        h_input(h, "h0", (size_t)h->B * G, 0.5f, 32);
    if (with_state && lstm)
        h_input(h, "c0", (size_t)h->B * G, 0.5f, 33);
    h_output(h, (size_t)h->B * h->T * G);
    if (padded)
        h->pad = left_pad(h->B, h->T, 2);
    h->fwd = lstm ? lstm_fwd : gru_fwd;
    h->bwd = lstm ? lstm_bwd : gru_bwd;
}

static void test_gru(void **state) {
    (void)state;
    harness h;
    rnn_setup(&h, 0, 1, 0); /* 5 steps, given h0 */
    assert_int_equal(h_check(&h, &OPTS), 0);
    h_free(&h);
    rnn_setup(&h, 0, 0, 1); /* zero h0, left padding */
    assert_int_equal(h_check(&h, &OPTS), 0);
    h_forward(&h); /* padded steps with zero h0 keep the state at 0 */
    for (int k = 0; k < 2 * 6; k++)
        assert_true(h.y[(5 + 0) * 6 + k] == 0.0f);
    h_free(&h);
}

static void test_lstm(void **state) {
    (void)state;
    harness h;
    rnn_setup(&h, 1, 1, 0);
    assert_int_equal(h_check(&h, &OPTS), 0);
    h_free(&h);
    rnn_setup(&h, 1, 1, 1); /* given state carried through padded steps */
    assert_int_equal(h_check(&h, &OPTS), 0);
    h_free(&h);
}

/* ========================================= MLP tower ========================================= */

static void mlp_fwd(harness *h) {
    assert_int_equal(
        sq_nn_mlp_forward(&h->mlp, &h->ps, h->a, &h->mlp_acts, h->y, h->x[0], h->B, &h->err),
        SQ_OK);
}
static void mlp_bwd(harness *h) {
    assert_int_equal(
        sq_nn_mlp_backward(&h->mlp, &h->ps, h->a, &h->mlp_acts, h->dx[0], h->w, &h->err), SQ_OK);
}

static void test_mlp(void **state) {
    (void)state;
    const int widths[4] = {5, 9, 7, 3};
    const sq_nn_act acts[3] = {SQ_ACT_GELU, SQ_ACT_SIGMOID, SQ_ACT_TANH};
    for (int k = 0; k < 3; k++)
        for (int last = 0; last < 2; last++) {
            harness h;
            h_init(&h, 1 << 16);
            h.B = 6;
            assert_int_equal(sq_nn_mlp_init(&h.mlp, &h.ps, "tower", 3, widths, acts[k], last), 0);
            assert_non_null(sq_params_find(&h.ps, "tower.fc2.b"));
            h_params(&h);
            h_input(&h, "x", 30, 1.0f, 41);
            h_output(&h, 18);
            h.fwd = mlp_fwd;
            h.bwd = mlp_bwd;
            assert_int_equal(h_check(&h, &OPTS), 0);
            h_free(&h);
        }
}

int main(void) {
    if (getenv("GC_EPS"))
        OPTS.eps = atof(getenv("GC_EPS"));
    if (getenv("GC_TOL"))
        OPTS.tol = atof(getenv("GC_TOL"));
    if (getenv("GC_FLOOR"))
        OPTS.floor = atof(getenv("GC_FLOOR"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_embedding),
        cmocka_unit_test(test_positional),
        cmocka_unit_test(test_attention_grad),
        cmocka_unit_test(test_attention_long),
        cmocka_unit_test(test_attention_mask),
        cmocka_unit_test(test_ffn),
        cmocka_unit_test(test_block_sasrec),
        cmocka_unit_test(test_block_pre_post),
        cmocka_unit_test(test_block_determinism),
        cmocka_unit_test(test_arena_full),
        cmocka_unit_test(test_gru),
        cmocka_unit_test(test_lstm),
        cmocka_unit_test(test_mlp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
