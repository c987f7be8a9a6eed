/* test_sasrec_net.c — the SASRec network (models/sasrec_net.h): a finite-difference check of the
 * whole training step's loss against its gradient for every parameter tensor, the block
 * composition equal (bit for bit) to sq_nn_block_*, determinism, padding that never reaches the
 * loss, scoring, the scratch estimate, and argument errors.
 *
 * Gradient check as tests/nn (gradcheck.h): central differences with eps 1e-2 on the float loss,
 * |num − ana| <= 2e-2 · max(|num|, |ana|, 2e-2). Tiny sizes, dropout 0, GELU in the FFN (no
 * kink for a perturbation to cross; ReLU's backward has its own checks in tests/nn). */
#include "nn/gradcheck.c" /* helpers of tests/nn: this binary links tests/models' files only */

#include "testutil.h"

#include "models/sasrec_net.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static const gc_opts OPTS = {1e-2, 2e-2, 2e-2, 1};

enum { NI = 7, TT = 5, BB = 3 };

/* Three left-padded sequences of length TT (ids are table rows, 0 = padding): one full, one with
 * two padded positions, one with a single real position; targets where the input is real. */
static const uint32_t IN[BB * TT] = {3, 1, 4, 1, 5, /**/ 0, 0, 2, 6, 7, /**/ 0, 0, 0, 0, 5};
static const uint32_t TG[BB * TT] = {1, 4, 1, 5, 2, /**/ 0, 0, 6, 7, 3, /**/ 0, 0, 0, 0, 4};

static void tiny_config(sq_sasrec_config *c, float dropout, sq_nn_act act) {
    sq_sasrec_config_default(c, NI, TT);
    c->hidden = 8;
    c->heads = 2;
    c->ffn = 12;
    c->blocks = 2;
    c->dropout = dropout;
    c->act = act;
    c->eps = 1e-5f; /* the gradcheck perturbs layer-norm inputs: keep rstd moderate */
}

typedef struct {
    sq_sasrec_net net;
    sq_arena *a;
    const uint32_t *in, *tg;
    int B, T;
} fixture;

static void fx_init(fixture *f, const sq_sasrec_config *c, uint64_t seed) {
    sq_error err = {0};
    memset(f, 0, sizeof *f);
    assert_int_equal(sq_sasrec_net_init(&f->net, c, &err), SQ_OK);
    sq_rng r;
    sq_rng_seed(&r, seed);
    sq_sasrec_net_reset(&f->net, &r);
    /* layer norms away from (1, 0) and non-zero biases, so that their gradients are exercised */
    sq_params *ps = &f->net.ps;
    for (size_t i = 0; i < ps->n; i++) {
        sq_param *p = &ps->p[i];
        if (p->ndim == 1)
            for (size_t k = 0; k < p->size; k++)
                p->data[k] += 0.2f * ((float)sq_rng_uniform(&r) - 0.5f);
    }
    f->a = sq_arena_create(sq_sasrec_net_scratch(c, BB, TT));
    assert_non_null(f->a);
    f->in = IN;
    f->tg = TG;
    f->B = BB;
    f->T = TT;
}

static void fx_free(fixture *f) {
    sq_arena_free(f->a);
    sq_sasrec_net_free(&f->net);
}

/* The step's loss without touching gradients: forward + cross-entropy forward. */
static double loss_only(void *ctx) {
    fixture *f = ctx;
    sq_error err = {0};
    sq_sasrec_acts acts;
    sq_arena_reset(f->a);
    assert_int_equal(
        sq_sasrec_net_forward(&f->net, f->a, &acts, f->in, f->B, f->T, NULL, NULL, &err), SQ_OK);
    int N = f->B * f->T, C = f->net.cfg.hidden;
    int32_t tgt[BB * TT];
    for (int n = 0; n < N; n++)
        tgt[n] = f->tg[n] ? (int32_t)f->tg[n] : -1;
    sq_nn_ce_opts o = {.first_item = 1};
    float l = 0.0f;
    assert_int_equal(sq_nn_ce_chunked_forward(&l, NULL, acts.h,
                                              sq_nn_val(&f->net.ps, f->net.item_emb), tgt, N, C,
                                              f->net.cfg.n_items + 1, &o, f->a, &err),
                     SQ_OK);
    sq_arena_reset(f->a);
    return l;
}

static float step(fixture *f, sq_rng *rng) {
    sq_error err = {0};
    float loss = -1.0f;
    long nt = -1;
    sq_params_zero_grad(&f->net.ps);
    sq_arena_reset(f->a);
    assert_int_equal(
        sq_sasrec_net_step(&f->net, f->a, f->in, f->tg, f->B, f->T, rng, &loss, &nt, NULL, &err),
        SQ_OK);
    long expect = 0;
    for (int n = 0; n < f->B * f->T; n++)
        expect += f->tg[n] != 0;
    assert_int_equal(nt, expect);
    sq_arena_reset(f->a);
    return loss;
}

/* ====================================== Gradient check ======================================= */

static void test_gradcheck_whole_step(void **state) {
    (void)state;
    sq_sasrec_config c;
    tiny_config(&c, 0.0f, SQ_ACT_GELU);
    fixture f;
    fx_init(&f, &c, 11);
    float loss = step(&f, NULL);
    assert_true(isfinite(loss) && loss > 0.0f);
    assert_float_equal(loss, loss_only(&f), 1e-6); /* the step's loss is the model's loss */
    sq_params *ps = &f.net.ps;
    int bad = 0;
    for (size_t i = 0; i < ps->n; i++) {
        sq_param *p = &ps->p[i];
        float *g = malloc(p->size * sizeof *g); /* the step's gradient; the probe changes none */
        assert_non_null(g);
        memcpy(g, p->grad, p->size * sizeof *g);
        bad += gc_check(p->name, loss_only, &f, p->data, g, p->size, &OPTS);
        free(g);
    }
    assert_int_equal(bad, 0);
    fx_free(&f);
}

/* The sampled objectives: the same whole-step check with BCE over K negatives and with the
 * log-Q-corrected sampled softmax (an accidental hit included: row 0's second negative). */
enum { KK = 3 };
static uint32_t NEGS[BB * TT * KK];
static float LOGQ[NI];

typedef struct {
    fixture f;
    sq_sasrec_sampling s;
} sfixture;

static double sampled_loss_only(void *ctx) {
    sfixture *sf = ctx;
    fixture *f = &sf->f;
    sq_error err = {0};
    sq_sasrec_acts acts;
    sq_arena_reset(f->a);
    assert_int_equal(
        sq_sasrec_net_forward(&f->net, f->a, &acts, f->in, f->B, f->T, NULL, NULL, &err), SQ_OK);
    float l = 0.0f;
    assert_int_equal(sq_sasrec_sampled_loss(&f->net, f->a, acts.h, f->tg, f->B * f->T, &sf->s, &l,
                                            NULL, NULL, &err),
                     SQ_OK);
    sq_arena_reset(f->a);
    return l;
}

static void check_sampled(sq_sasrec_loss kind, const float *logq) {
    for (int n = 0; n < BB * TT; n++)
        for (int k = 0; k < KK; k++)
            NEGS[n * KK + k] = TG[n] ? (uint32_t)(1 + (n * 5 + k * 3) % NI) : 0;
    NEGS[1] = TG[0]; /* a negative equal to the positive */
    for (int i = 0; i < NI; i++)
        LOGQ[i] = logf((float)(i + 1) / (NI * (NI + 1) / 2.0f));
    sq_sasrec_config c;
    tiny_config(&c, 0.0f, SQ_ACT_GELU);
    sfixture sf;
    fx_init(&sf.f, &c, 13);
    sq_arena_free(sf.f.a);
    sf.f.a =
        sq_arena_create(sq_sasrec_net_scratch(&c, BB, TT) + sq_sasrec_sampled_scratch(BB * TT, KK));
    sf.s = (sq_sasrec_sampling){kind, NEGS, KK, logq};
    sq_error err = {0};
    float loss = -1.0f;
    long nt = 0;
    sq_params_zero_grad(&sf.f.net.ps);
    assert_int_equal(sq_sasrec_net_step_sampled(&sf.f.net, sf.f.a, IN, TG, BB, TT, &sf.s, NULL,
                                                &loss, &nt, &err),
                     SQ_OK);
    assert_int_equal(nt, 9);
    assert_true(isfinite(loss) && loss > 0.0f);
    assert_float_equal(loss, sampled_loss_only(&sf), 1e-6);
    sq_params *ps = &sf.f.net.ps;
    int bad = 0;
    for (size_t i = 0; i < ps->n; i++) {
        sq_param *p = &ps->p[i];
        float *g = malloc(p->size * sizeof *g);
        assert_non_null(g);
        memcpy(g, p->grad, p->size * sizeof *g);
        bad += gc_check(p->name, sampled_loss_only, &sf, p->data, g, p->size, &OPTS);
        free(g);
    }
    assert_int_equal(bad, 0);
    fx_free(&sf.f);
}

static void test_gradcheck_sampled_bce(void **state) {
    (void)state;
    check_sampled(SQ_SASREC_BCE, NULL);
}

static void test_gradcheck_sampled_softmax_logq(void **state) {
    (void)state;
    check_sampled(SQ_SASREC_SAMPLED, LOGQ);
}

/* BCE by hand for one position: −log σ(pos) − Σ log(1 − σ(neg)). */
static void test_sampled_bce_by_hand(void **state) {
    (void)state;
    sq_sasrec_config c;
    tiny_config(&c, 0.0f, SQ_ACT_GELU);
    c.hidden = 2;
    c.heads = 1;
    sq_sasrec_net net;
    sq_error err = {0};
    assert_int_equal(sq_sasrec_net_init(&net, &c, &err), SQ_OK);
    float *E = sq_nn_val(&net.ps, net.item_emb);
    for (int r = 0; r <= NI; r++) {
        E[r * 2] = 0.1f * r;
        E[r * 2 + 1] = -0.05f * r;
    }
    const float h[2 * 2] = {1.0f, 2.0f, 0.5f, -1.0f};
    const uint32_t tg[2] = {0, 3}, negs[2 * 2] = {0, 0, 5, 1};
    sq_sasrec_sampling s = {SQ_SASREC_BCE, negs, 2, NULL};
    sq_arena *a = sq_arena_create(sq_sasrec_sampled_scratch(2, 2));
    float l = 0;
    long nt = 0;
    assert_int_equal(sq_sasrec_sampled_loss(&net, a, h, tg, 2, &s, &l, NULL, &nt, &err), SQ_OK);
    assert_int_equal(nt, 1);
    /* h = (0.5, −1): pos = 0.5·0.3 + 0.15 = 0.3, neg5 = 0.25 + 0.25 = 0.5, neg1 = 0.05 + 0.05 = 0.1
     */
    double want = log1p(exp(-0.3)) + log1p(exp(0.5)) + log1p(exp(0.1));
    assert_float_equal(l, want, 1e-5);
    sq_arena_free(a);
    sq_sasrec_net_free(&net);
}

/* ======================================= Composition ========================================= */

/* The blocks run from their parts here; with one thread they must equal sq_nn_block_forward /
 * _backward exactly, dropout included. */
static void test_blocks_equal_library_block(void **state) {
    (void)state;
#ifdef _OPENMP
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
#endif
    openblas_set_num_threads(1);
    sq_sasrec_config c;
    tiny_config(&c, 0.3f, SQ_ACT_RELU);
    c.blocks = 1;
    fixture f;
    fx_init(&f, &c, 5);
    sq_error err = {0};
    sq_params *ps = &f.net.ps;
    const int N = BB * TT, C = c.hidden;
    sq_rng r0;
    sq_rng_seed(&r0, 99);
    sq_rng r = r0;
    sq_sasrec_acts acts;
    sq_params_zero_grad(ps);
    assert_int_equal(sq_sasrec_net_forward(&f.net, f.a, &acts, IN, BB, TT, &r, NULL, &err), SQ_OK);
    float dh[BB * TT * 8], dh2[BB * TT * 8], dcur[BB * TT * 8] = {0};
    gc_randn(dh, (size_t)N * C, 1.0f, 3);
    memcpy(dh2, dh, sizeof dh);
    assert_int_equal(sq_sasrec_net_backward(&f.net, f.a, &acts, dh, NULL, &err), SQ_OK);
    float *g1 = malloc(ps->total * sizeof *g1);
    assert_non_null(g1);
    memcpy(g1, ps->grads, ps->total * sizeof *g1);

    /* the library block on the same input, with the RNG where the net's block found it: the
     * embedding dropout drew exactly one number (nn_layers.h, dropout) */
    sq_rng rb = r0;
    (void)sq_rng_u64(&rb);
    sq_nn_block_acts ba;
    float *y = sq_arena_alloc(f.a, (size_t)N * C * sizeof *y);
    assert_non_null(y);
    assert_int_equal(sq_nn_block_forward(&f.net.blk[0], ps, f.a, &ba, y, acts.xs[0], acts.pad, BB,
                                         TT, &rb, &err),
                     SQ_OK);
    assert_memory_equal(y, acts.xs[1], (size_t)N * C * sizeof *y);
    sq_params_zero_grad(ps);
    sq_nn_layernorm_backward(dcur, NULL, NULL, dh2, acts.xs[1], acts.mean_f, acts.rstd_f,
                             sq_nn_val(ps, f.net.ln_f.g), N, C);
    float *dx = sq_arena_calloc(f.a, (size_t)N * C * sizeof *dx);
    assert_non_null(dx);
    assert_int_equal(sq_nn_block_backward(&f.net.blk[0], ps, f.a, &ba, dx, dcur, &err), SQ_OK);
    for (size_t i = 0; i < ps->n; i++) {
        sq_param *p = &ps->p[i];
        if (strncmp(p->name, "block0.", 7) == 0)
            assert_memory_equal(p->grad, g1 + p->offset, p->size * sizeof(float));
    }
    free(g1);
    fx_free(&f);
#ifdef _OPENMP
    omp_set_num_threads(nt);
    openblas_set_num_threads(nt);
#endif
}

/* ====================================== Determinism ========================================== */

static void test_deterministic_one_thread(void **state) {
    (void)state;
#ifdef _OPENMP
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
#endif
    openblas_set_num_threads(1);
    sq_sasrec_config c;
    tiny_config(&c, 0.2f, SQ_ACT_RELU);
    fixture f;
    fx_init(&f, &c, 21);
    sq_rng r1, r2;
    sq_rng_seed(&r1, 7);
    r2 = r1;
    float l1 = step(&f, &r1);
    float *g1 = malloc(f.net.ps.total * sizeof *g1);
    assert_non_null(g1);
    memcpy(g1, f.net.ps.grads, f.net.ps.total * sizeof *g1);
    float l2 = step(&f, &r2);
    assert_memory_equal(&l1, &l2, sizeof l1);
    assert_memory_equal(g1, f.net.ps.grads, f.net.ps.total * sizeof *g1);
    /* dropout on: another RNG state gives another loss */
    float l3 = step(&f, &r2);
    assert_true(l3 != l1);
    free(g1);
    fx_free(&f);
#ifdef _OPENMP
    omp_set_num_threads(nt);
    openblas_set_num_threads(nt);
#endif
}

/* ========================================= Padding =========================================== */

static void test_padding_never_reaches_the_loss(void **state) {
    (void)state;
    sq_sasrec_config c;
    tiny_config(&c, 0.0f, SQ_ACT_RELU);
    fixture f;
    fx_init(&f, &c, 31);
    sq_params *ps = &f.net.ps;
    const int C = c.hidden;
    float *E = sq_nn_val(ps, f.net.item_emb);
    float l0 = step(&f, NULL);

    /* 1. the padding row of the table: no gradient, and its values change nothing */
    for (int k = 0; k < C; k++)
        assert_true(sq_nn_grad(ps, f.net.item_emb)[k] == 0.0f);
    for (int k = 0; k < C; k++)
        E[k] = 3.0f + (float)k;
    float l1 = step(&f, NULL);
    assert_memory_equal(&l0, &l1, sizeof l0);
    for (int k = 0; k < C; k++)
        assert_true(sq_nn_grad(ps, f.net.item_emb)[k] == 0.0f);

    /* 2. positions padded in every sequence (0 and 1 of sequences 1 and 2) get no positional
     *    gradient */
    f.in = IN + TT, f.tg = TG + TT, f.B = 2;
    (void)step(&f, NULL);
    f.in = IN, f.tg = TG, f.B = BB;
    const float *dP = sq_nn_grad(ps, f.net.pos_emb);
    for (int k = 0; k < 2 * C; k++)
        assert_true(dP[k] == 0.0f);
    int nz = 0;
    for (int k = 2 * C; k < TT * C; k++)
        nz += dP[k] != 0.0f;
    assert_true(nz > 0);

    /* 3. the batch loss is the target-weighted mean of each sequence's own loss: padding and
     *    the other sequences do not leak into a sequence */
    double sum = 0.0;
    long cnt = 0;
    for (int b = 0; b < BB; b++) {
        f.in = IN + b * TT;
        f.tg = TG + b * TT;
        f.B = 1;
        long n = 0;
        for (int t = 0; t < TT; t++)
            n += TG[b * TT + t] != 0;
        sum += (double)step(&f, NULL) * (double)n;
        cnt += n;
    }
    assert_float_equal(sum / (double)cnt, l0, 1e-5 * fabs(l0));

    /* 4. an all-padding sequence adds nothing and produces no NaN */
    uint32_t in2[2 * TT], tg2[2 * TT];
    memcpy(in2, IN, sizeof(uint32_t) * TT);
    memcpy(tg2, TG, sizeof(uint32_t) * TT);
    memset(in2 + TT, 0, sizeof(uint32_t) * TT);
    memset(tg2 + TT, 0, sizeof(uint32_t) * TT);
    f.in = IN, f.tg = TG, f.B = 1;
    float la = step(&f, NULL);
    f.in = in2, f.tg = tg2, f.B = 2;
    float lb = step(&f, NULL);
    assert_float_equal(la, lb, 1e-6 * fabs(la));
    for (size_t i = 0; i < ps->total; i++)
        assert_false(isnan(ps->grads[i]));

    /* 5. no targets at all: loss 0, no gradient, no error */
    memset(tg2, 0, sizeof tg2);
    f.tg = tg2;
    assert_true(step(&f, NULL) == 0.0f);
    for (size_t i = 0; i < ps->total; i++)
        assert_true(ps->grads[i] == 0.0f);
    fx_free(&f);
}

/* ========================================= Scoring =========================================== */

static void test_score_is_last_hidden_dot_table(void **state) {
    (void)state;
    sq_sasrec_config c;
    tiny_config(&c, 0.2f, SQ_ACT_RELU);
    fixture f;
    fx_init(&f, &c, 41);
    sq_error err = {0};
    const int C = c.hidden;
    float scores[BB * NI];
    assert_int_equal(sq_sasrec_net_score(&f.net, f.a, IN, BB, TT, scores, &err), SQ_OK);
    sq_arena_reset(f.a);
    sq_sasrec_acts acts;
    assert_int_equal(sq_sasrec_net_forward(&f.net, f.a, &acts, IN, BB, TT, NULL, NULL, &err),
                     SQ_OK);
    const float *E = sq_nn_val(&f.net.ps, f.net.item_emb);
    for (int b = 0; b < BB; b++) {
        const float *h = acts.h + ((size_t)b * TT + TT - 1) * C;
        for (int k = 0; k < NI; k++) {
            double s = 0.0;
            for (int j = 0; j < C; j++)
                s += (double)h[j] * E[(size_t)(k + 1) * C + j];
            assert_float_equal(scores[b * NI + k], s, 1e-5 * (1.0 + fabs(s)));
        }
    }
    sq_arena_reset(f.a);
    fx_free(&f);
}

/* ================================= Scratch size and errors =================================== */

static void test_scratch_estimate_suffices(void **state) {
    (void)state;
    const int shapes[3][4] = {{7, 5, 3, 1}, {30, 17, 4, 2}, {200, 40, 2, 3}}; /* items, T, B, L */
    for (int s = 0; s < 3; s++) {
        sq_sasrec_config c;
        sq_sasrec_config_default(&c, shapes[s][0], shapes[s][1]);
        c.hidden = 16;
        c.heads = 2;
        c.ffn = 24;
        c.blocks = shapes[s][3];
        sq_sasrec_net net;
        sq_error err = {0};
        assert_int_equal(sq_sasrec_net_init(&net, &c, &err), SQ_OK);
        sq_rng r;
        sq_rng_seed(&r, 1);
        sq_sasrec_net_reset(&net, &r);
        int B = shapes[s][2], T = c.maxlen, N = B * T;
        uint32_t *in = malloc((size_t)N * sizeof *in), *tg = malloc((size_t)N * sizeof *tg);
        assert_non_null(in);
        assert_non_null(tg);
        for (int n = 0; n < N; n++) {
            in[n] = n % T < 2 ? 0 : 1 + sq_rng_below(&r, (uint32_t)c.n_items);
            tg[n] = in[n] ? 1 + sq_rng_below(&r, (uint32_t)c.n_items) : 0;
        }
        size_t need = sq_sasrec_net_scratch(&c, B, T);
        sq_arena *a = sq_arena_create(need);
        assert_non_null(a);
        float loss;
        assert_int_equal(sq_sasrec_net_step(&net, a, in, tg, B, T, &r, &loss, NULL, NULL, &err),
                         SQ_OK);
        assert_true(sq_arena_peak(a) <= need);
        sq_arena_free(a);
        /* an arena that is too small is an error, not a crash */
        a = sq_arena_create(need / 4);
        assert_non_null(a);
        assert_int_equal(sq_sasrec_net_step(&net, a, in, tg, B, T, &r, &loss, NULL, NULL, &err),
                         SQ_ERR_NOMEM);
        sq_arena_free(a);
        free(in);
        free(tg);
        sq_sasrec_net_free(&net);
    }
}

static void test_argument_errors(void **state) {
    (void)state;
    sq_error err = {0};
    sq_sasrec_config c;
    sq_sasrec_net net;
    tiny_config(&c, 0.0f, SQ_ACT_RELU);
    c.heads = 3; /* 8 % 3 != 0 */
    assert_int_equal(sq_sasrec_net_init(&net, &c, &err), SQ_ERR_ARG);
    sq_sasrec_net_free(&net); /* safe after a failed init */
    tiny_config(&c, 1.0f, SQ_ACT_RELU);
    assert_int_equal(sq_sasrec_net_init(&net, &c, &err), SQ_ERR_ARG);
    tiny_config(&c, 0.0f, SQ_ACT_RELU);
    c.n_items = 0;
    assert_int_equal(sq_sasrec_net_init(&net, &c, &err), SQ_ERR_ARG);
    sq_sasrec_net_free(NULL);

    tiny_config(&c, 0.0f, SQ_ACT_RELU);
    fixture f;
    fx_init(&f, &c, 51);
    float loss;
    uint32_t in[TT] = {0, 1, 2, NI + 1, 3}, tg[TT] = {0, 1, 2, 3, 4};
    assert_int_equal(sq_sasrec_net_step(&f.net, f.a, in, tg, 1, TT, NULL, &loss, NULL, NULL, &err),
                     SQ_ERR_ARG); /* input id above n_items */
    sq_arena_reset(f.a);
    in[3] = NI;
    tg[4] = NI + 1;
    assert_int_equal(sq_sasrec_net_step(&f.net, f.a, in, tg, 1, TT, NULL, &loss, NULL, NULL, &err),
                     SQ_ERR_ARG); /* target above n_items */
    sq_arena_reset(f.a);
    assert_int_equal(
        sq_sasrec_net_step(&f.net, f.a, in, tg, 1, TT + 1, NULL, &loss, NULL, NULL, &err),
        SQ_ERR_ARG); /* T above maxlen */
    sq_arena_reset(f.a);
    fx_free(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradcheck_whole_step),
        cmocka_unit_test(test_gradcheck_sampled_bce),
        cmocka_unit_test(test_gradcheck_sampled_softmax_logq),
        cmocka_unit_test(test_sampled_bce_by_hand),
        cmocka_unit_test(test_blocks_equal_library_block),
        cmocka_unit_test(test_deterministic_one_thread),
        cmocka_unit_test(test_padding_never_reaches_the_loss),
        cmocka_unit_test(test_score_is_last_hidden_dot_table),
        cmocka_unit_test(test_scratch_estimate_suffices),
        cmocka_unit_test(test_argument_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
