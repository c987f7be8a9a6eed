/* test_mt_net.c — the multi-task network (models/mt_net.h): a finite-difference check of the
 * whole training step's loss (every task, learned task weights) against its gradient for every
 * parameter tensor, for each input fusion mode and each sharing architecture; inference agreeing
 * with training; argument errors. Scene-specific towers: the same check over every sharing
 * architecture, and inference through them. The candidate's history the click and buy towers
 * read, against hand-computed values.
 *
 * Gradient check: the derivative along three random unit directions of every tensor, by central
 * differences of the float loss with a step of 1e-2 in norm, against the gradient's projection:
 * |num − ana| <= 3e-2 · max(|num|, |ana|, 2e-2). Directional, not element by element, because
 * the experts and the click/buy towers use ReLU: with the whole network between a parameter and
 * the loss, element-wise probes cross kinks somewhere; each layer's element-wise checks are in
 * tests/nn. A missing or wrong term of the composition moves the projection of its tensor. */
#include "testutil.h"

#include "models/mt_net.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const struct { double tol, floor; } OPTS = {3e-2, 2e-2};

enum { NI = 7, TT = 5, BB = 3, NB = 3, NS = 2, NCTX = 1, CTX0 = 3, NN = BB * TT };

/* Left-padded sequences (rows = item id + 1) with a target at every real position. */
static const uint32_t IN[NN] = {3, 1, 4, 1, 5, /**/ 0, 0, 2, 6, 7, /**/ 0, 0, 0, 2, 5};
static const uint32_t TG[NN] = {1, 4, 1, 5, 2, /**/ 0, 0, 6, 7, 3, /**/ 0, 0, 0, 5, 4};
static const uint32_t BEH[NN] = {0, 1, 2, 0, 0, /**/ 0, 0, 0, 1, 0, /**/ 0, 0, 0, 0, 1};
static const uint32_t TAG_OFF[NI + 1] = {0, 0, 1, 3, 4, 7, 7, 9};
static const uint32_t TAG_IDS[9] = {2, 0, 3, 1, 0, 1, 2, 3, 3};
static const uint32_t UATTR[BB * 2] = {2, 1, 0, 0, 1, 1};
static const uint32_t TBEH[NN] = {1, 2, 0, 0, 1, /**/ 0, 0, 1, 0, 2, /**/ 0, 0, 0, 1, 2};

typedef struct {
    mt_net net;
    sq_arena *a;
    mt_inputs in;
    mt_targets tg;
    uint32_t gap[NN], scene[NN], ctx[NN], rscene[NN], rctx[NN], vb[NN];
    float ustat[NN * (1 + NB)], value[NN];
} fixture;

static void fx_init(fixture *f, sq_nn_fuse_kind fusion, sq_nn_share_kind sharing, unsigned tasks,
                    int uncertainty, int towers) {
    memset(f, 0, sizeof *f);
    mt_config c;
    memset(&c, 0, sizeof c);
    sq_sasrec_config_default(&c.enc, NI, TT);
    c.enc.hidden = 8;
    c.enc.heads = 2;
    c.enc.ffn = 12;
    c.enc.blocks = 1;
    c.enc.dropout = 0.0f;
    c.enc.act = SQ_ACT_GELU;
    c.enc.eps = 1e-5f;
    c.tasks = tasks;
    c.use_beh = c.use_gap = c.use_scene = 1;
    c.n_ctx_used = NCTX;
    c.use_tags = 1; /* 4 tags; items 0..6 with 0, 1, 2, 1, 3, 0, 2 of them (TAG_OFF, TAG_IDS) */
    c.n_tags = 4;
    c.n_uattr = 2;
    c.uattr_size[0] = 3;
    c.uattr_size[1] = 2;
    c.n_value_edges = 5; /* ratings 1..5 */
    for (int k = 0; k < 5; k++)
        c.value_edges[k] = (float)(k + 1);
    c.fusion = fusion;
    c.user_features = 1;
    c.request = 1;
    c.sharing = sharing;
    c.experts = 3;
    c.task_experts = 1;
    c.levels = sharing == SQ_SHARE_PLE ? 2 : 1;
    c.expert_hidden = 6;
    c.scene_gates = sharing != SQ_SHARE_BOTTOM;
    c.scene_towers = towers;
    c.cand_history = 1; /* the default of new models */
    c.uncertainty = uncertainty;
    for (int t = 0; t < SQ_TASK_N; t++)
        c.lambda[t] = 0.5f + 0.25f * (float)t;
    c.n_beh = NB;
    c.n_scenes = NS;
    c.ctx_size[0] = CTX0;
    c.real_time = 1;
    c.lab.click[1] = c.lab.click[2] = 1;
    c.lab.buy[2] = 1;
    c.lab.n_click = 2;
    c.lab.n_buy = 1;
    sq_error err = {0};
    sq_rng rng;
    sq_rng_seed(&rng, 5);
    assert_int_equal(mt_net_init(&f->net, &c, &rng, &err), SQ_OK);
    /* every parameter away from its init (zero biases, unit norms, zero gates) */
    sq_params *ps = &f->net.enc.ps;
    for (size_t i = 0; i < ps->n; i++) {
        sq_param *p = &ps->p[i];
        for (size_t j = 0; j < p->size; j++)
            p->data[j] += 0.2f * (sq_rng_uniform(&rng) - 0.5f);
    }
    /* ReLU units of the experts and the towers switched on with a margin (bias 1.5, small
     * weights): the directional probes then cross no kink (the ReLU backward's masking is
     * checked in tests/nn) */
    const int on[] = {f->net.ex.eb[0], f->net.ex.eb[1], f->net.ctr1.b, f->net.cvr1.b,
                      towers ? f->net.towers.b : -1};
    const int small[] = {f->net.ex.ew[0], f->net.ex.ew[1], f->net.ctr1.w, f->net.cvr1.w,
                         towers ? f->net.towers.w : -1};
    for (size_t i = 0; i < sizeof on / sizeof *on; i++) {
        if (on[i] >= 0)
            for (size_t j = 0; j < ps->p[on[i]].size; j++)
                ps->p[on[i]].data[j] += 1.5f;
        if (small[i] >= 0)
            for (size_t j = 0; j < ps->p[small[i]].size; j++)
                ps->p[small[i]].data[j] *= 0.1f;
    }
    for (int n = 0; n < NN; n++) {
        f->gap[n] = (uint32_t)(n * 3 % SQ_GAP_BUCKETS);
        f->vb[n] = mt_value_bucket(&f->net.cfg, 0.5f + (float)(n % 6));
        f->scene[n] = (uint32_t)(n % NS);
        f->ctx[n] = (uint32_t)(n * 2 % CTX0);
        f->rscene[n] = (uint32_t)((n + 1) % NS);
        f->rctx[n] = (uint32_t)((n + 2) % CTX0);
        f->value[n] = n % 4 == 3 ? NAN : 1.0f + (float)(n % 5);
        for (int k = 0; k <= NB; k++)
            f->ustat[n * (1 + NB) + k] = sq_rng_uniform(&rng);
    }
    f->in = (mt_inputs){.B = BB,
                        .T = TT,
                        .ids = IN,
                        .beh = BEH,
                        .gap = f->gap,
                        .scene = f->scene,
                        .ctx = f->ctx,
                        .vbucket = f->vb,
                        .ustat = f->ustat,
                        .rscene = f->rscene,
                        .rctx = f->rctx,
                        .n_ctx = NCTX,
                        .tag_off = TAG_OFF,
                        .tag_ids = TAG_IDS,
                        .uattr = UATTR};
    f->tg = (mt_targets){TG, TBEH, f->value};
    f->a = sq_arena_create(mt_net_scratch(&f->net, BB, TT) + (4u << 20));
    assert_non_null(f->a);
}

static void fx_free(fixture *f) {
    mt_net_free(&f->net);
    sq_arena_free(f->a);
}

static double step(fixture *f, double tl[SQ_TASK_N], long tn[SQ_TASK_N]) {
    sq_error err = {0};
    double loss = -1;
    sq_params_zero_grad(&f->net.enc.ps);
    sq_arena_reset(f->a);
    sq_status rc = mt_net_step(&f->net, f->a, &f->in, &f->tg, NULL, &loss, tl, tn, &err);
    if (rc)
        fail_msg("mt_net_step: %s", err.msg);
    sq_arena_reset(f->a);
    return loss;
}

static double loss_only(void *ctx) {
    fixture *f = ctx;
    double tl[SQ_TASK_N], loss = -1;
    long tn[SQ_TASK_N];
    sq_error err = {0};
    sq_arena_reset(f->a);
    /* the step accumulates into the gradients: harmless here, the check keeps its own copy */
    if (mt_net_step(&f->net, f->a, &f->in, &f->tg, NULL, &loss, tl, tn, &err))
        fail_msg("mt_net_step: %s", err.msg);
    sq_arena_reset(f->a);
    return loss;
}

/* The derivative of the loss along a random unit direction v of tensor p, by central
 * differences with a step of STEP in norm, against g · v. */
enum { DIRS = 3 };
#define STEP 1e-2

static int directional(fixture *f, sq_param *p, const float *g, sq_rng *rng, double *num,
                       double *ana) {
    double *v = malloc(p->size * sizeof *v), norm = 0;
    float *x0 = malloc(p->size * sizeof *x0);
    assert_true(v && x0);
    for (size_t j = 0; j < p->size; j++) {
        v[j] = sq_rng_uniform(rng) - 0.5;
        norm += v[j] * v[j];
    }
    norm = sqrt(norm);
    *ana = 0;
    for (size_t j = 0; j < p->size; j++) {
        v[j] /= norm;
        *ana += (double)g[j] * v[j];
    }
    memcpy(x0, p->data, p->size * sizeof *x0);
    for (size_t j = 0; j < p->size; j++)
        p->data[j] = (float)(x0[j] + STEP * v[j]);
    double lp = loss_only(f);
    for (size_t j = 0; j < p->size; j++)
        p->data[j] = (float)(x0[j] - STEP * v[j]);
    double lm = loss_only(f);
    memcpy(p->data, x0, p->size * sizeof *x0);
    *num = (lp - lm) / (2 * STEP);
    free(v);
    free(x0);
    double scale = fmax(fmax(fabs(*num), fabs(*ana)), OPTS.floor);
    return fabs(*num - *ana) <= OPTS.tol * scale;
}

static void gradcheck(sq_nn_fuse_kind fusion, sq_nn_share_kind sharing, int uncertainty,
                      int towers) {
    const unsigned all = (1u << SQ_TASK_N) - 1;
    fixture f;
    fx_init(&f, fusion, sharing, all, uncertainty, towers);
    if (towers) /* every (task slot, scene) has its tower */
        assert_int_equal(f.net.enc.ps.p[f.net.towers.w].shape[0], SQ_TASK_N * NS);
    double tl[SQ_TASK_N];
    long tn[SQ_TASK_N];
    double loss = step(&f, tl, tn);
    assert_true(isfinite(loss));
    for (int t = 0; t < SQ_TASK_N; t++) { /* every task took part */
        assert_true(tn[t] > 0);
        assert_true(isfinite(tl[t]) && tl[t] > 0);
    }
    assert_int_equal(tn[SQ_TASK_NEXT_ITEM], 10);
    assert_int_equal(tn[SQ_TASK_VALUE], 8); /* the targets whose value is not NaN */
    sq_params *ps = &f.net.enc.ps;
    /* the step's gradient, kept: every probe of the loss accumulates into ps's gradients */
    float *g0 = malloc(ps->total * sizeof *g0);
    assert_non_null(g0);
    memcpy(g0, ps->grads, ps->total * sizeof *g0);
    int failed = 0;
    sq_rng rng;
    sq_rng_seed(&rng, 99);
    for (size_t i = 0; i < ps->n; i++) {
        sq_param *p = &ps->p[i];
        const float *g = g0 + p->offset;
        for (int dir = 0; dir < DIRS; dir++) {
            double num, ana;
            if (!directional(&f, p, g, &rng, &num, &ana)) {
                print_message("%s/%s: %s, direction %d: numeric %g analytic %g\n",
                              sq_nn_fuse_name(fusion), sq_nn_share_name(sharing), p->name, dir, num,
                              ana);
                failed++;
            }
        }
    }
    free(g0);
    assert_int_equal(failed, 0);
    fx_free(&f);
}

static void test_gradcheck_fusion_mean(void **state) {
    (void)state;
    gradcheck(SQ_FUSE_MEAN, SQ_SHARE_MMOE, 1, 0);
}
static void test_gradcheck_fusion_concat(void **state) {
    (void)state;
    gradcheck(SQ_FUSE_CONCAT, SQ_SHARE_MMOE, 0, 0);
}
static void test_gradcheck_fusion_attention(void **state) {
    (void)state;
    gradcheck(SQ_FUSE_ATTN, SQ_SHARE_MMOE, 1, 0);
}
static void test_gradcheck_shared_bottom(void **state) {
    (void)state;
    gradcheck(SQ_FUSE_MEAN, SQ_SHARE_BOTTOM, 0, 0);
}
static void test_gradcheck_ple(void **state) {
    (void)state;
    gradcheck(SQ_FUSE_ATTN, SQ_SHARE_PLE, 1, 0);
}
/* Scene-specific towers over every sharing architecture. */
static void test_gradcheck_scene_towers(void **state) {
    (void)state;
    gradcheck(SQ_FUSE_MEAN, SQ_SHARE_BOTTOM, 0, 1);
    gradcheck(SQ_FUSE_ATTN, SQ_SHARE_MMOE, 0, 1);
    gradcheck(SQ_FUSE_CONCAT, SQ_SHARE_PLE, 1, 1);
}

/* The task weights: with fixed λ the total is Σ λ_t L_t; with learned ones Σ e^−s L + s. */
static void test_total_loss(void **state) {
    (void)state;
    const unsigned all = (1u << SQ_TASK_N) - 1;
    fixture f;
    fx_init(&f, SQ_FUSE_MEAN, SQ_SHARE_MMOE, all, 0, 0);
    double tl[SQ_TASK_N];
    long tn[SQ_TASK_N];
    double loss = step(&f, tl, tn), want = 0;
    for (int t = 0; t < SQ_TASK_N; t++)
        want += (0.5 + 0.25 * t) * tl[t];
    assert_float_equal(loss, want, 1e-5 * fabs(want));
    fx_free(&f);
    fx_init(&f, SQ_FUSE_MEAN, SQ_SHARE_MMOE, all, 1, 0);
    const float *s = sq_nn_val(&f.net.enc.ps, f.net.logvar);
    loss = step(&f, tl, tn);
    want = 0;
    for (int t = 0; t < SQ_TASK_N; t++)
        want += exp(-s[t]) * tl[t] + s[t];
    assert_float_equal(loss, want, 1e-5 * fabs(want));
    fx_free(&f);
}

/* Inference at the last position: the same next-behaviour distribution and click/buy
 * probabilities the training step's losses were computed from (a one-task model per check
 * keeps the comparison exact: the loss of a single sample equals −log p). */
static void predict_matches_step(int towers) {
    fixture f;
    fx_init(&f, SQ_FUSE_CONCAT, SQ_SHARE_PLE, 1u << SQ_TASK_NEXT_BEH | 1u << SQ_TASK_BUY, 0,
            towers);
    /* only the last position of row 0 has a target: item row 2, behaviour 1 (no buy) */
    uint32_t tg1[NN] = {0};
    tg1[TT - 1] = 2;
    f.tg.item = tg1;
    double tl[SQ_TASK_N];
    long tn[SQ_TASK_N];
    step(&f, tl, tn);
    assert_int_equal(tn[SQ_TASK_NEXT_BEH], 1);
    sq_task_pred pred[BB];
    uint32_t items[BB] = {1, 0, 0}; /* dataset ids: row 2 = item 1 */
    sq_error err = {0};
    sq_arena_reset(f.a);
    assert_int_equal(mt_net_predict(&f.net, f.a, &f.in, NULL, items, pred, NULL, &err), SQ_OK);
    assert_float_equal(-log(pred[0].p_beh[TBEH[TT - 1]]), tl[SQ_TASK_NEXT_BEH], 1e-4);
    assert_float_equal(-log1p(-(double)pred[0].ctcvr), tl[SQ_TASK_BUY], 1e-4);
    assert_float_equal(pred[0].ctcvr, pred[0].ctr * pred[0].cvr, 1e-6);
    double sum = 0;
    for (int k = 0; k < NB; k++)
        sum += pred[0].p_beh[k];
    assert_float_equal(sum, 1.0, 1e-5);
    assert_true(isnan(pred[0].value)); /* not a task of this model */
    fx_free(&f);
}

static void test_predict_matches_step(void **state) {
    (void)state;
    predict_matches_step(0);
    predict_matches_step(1); /* with scene towers: inference goes through them too */
}

/* Row 0: items (rows) 3 1 4 1 5 with behaviours 0 1 2 0 0; row 1: _ _ 2 6 7 with 0 0 0 1 0. */
static void test_cand_history(void **state) {
    (void)state;
    fixture f;
    fx_init(&f, SQ_FUSE_MEAN, SQ_SHARE_MMOE, 1u << SQ_TASK_BUY, 0, 0);
    static const struct {
        int p;
        uint32_t cand, last, dist, seen;
    } want[] = {
        {4, 1, 1, 2, 3},  /* last at position 3 (behaviour 0), also seen at 1 (behaviour 1) */
        {4, 4, 3, 3, 4},  /* position 2, behaviour 2, three events back */
        {4, 5, 1, 1, 1},  /* the event at p itself */
        {4, 6, 0, 0, 0},  /* never in row 0 */
        {2, 5, 0, 0, 0},  /* position 4 is after p */
        {2, 1, 2, 2, 2},  /* only the occurrence at 1 counts */
        {7, 5, 0, 0, 0},  /* row 1 does not see row 0 */
        {9, 2, 1, 3, 1},  /* row 1, position 7 */
        {9, 6, 2, 2, 2},  /* behaviour 1 */
        {9, 0, 0, 0, 0},  /* no candidate (padding row) */
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        mt_cand_hist h = mt_cand_history(&f.net, &f.in, want[i].p, want[i].cand);
        if (h.last != want[i].last || h.dist != want[i].dist || h.seen != want[i].seen)
            fail_msg("p %d cand %u: %u %u %u, want %u %u %u", want[i].p, want[i].cand, h.last,
                     h.dist, h.seen, want[i].last, want[i].dist, want[i].seen);
    }
    /* distance buckets 4-5, 6-10, 11-20, 21+ on a long sequence of one item then others */
    enum { L = 30 };
    uint32_t ids[L], beh[L] = {0};
    for (int t = 0; t < L; t++)
        ids[t] = t == 0 ? 1 : 2 + (uint32_t)(t % 5);
    mt_inputs in = {.B = 1, .T = L, .ids = ids, .beh = beh};
    static const int p_of[][2] = {{3, 4}, {4, 4}, {5, 5}, {9, 5}, {10, 6}, {19, 6}, {20, 7}, {29, 7}};
    for (size_t i = 0; i < sizeof p_of / sizeof *p_of; i++)
        assert_int_equal(mt_cand_history(&f.net, &in, p_of[i][0], 1).dist, (uint32_t)p_of[i][1]);
    assert_true(f.net.hist_last >= 0 && f.net.hist_dist >= 0 && f.net.hist_seen >= 0);
    fx_free(&f);
    /* without click or buy there are no towers and no history tables */
    fx_init(&f, SQ_FUSE_MEAN, SQ_SHARE_MMOE, 1u << SQ_TASK_NEXT_BEH, 0, 0);
    assert_true(f.net.hist_last < 0 && f.net.hist_dist < 0 && f.net.hist_seen < 0);
    fx_free(&f);
}

/* Value buckets over edges 1..5: below the first edge → 1, [e_k, e_k+1) → k + 1, NaN → 0. */
static void test_value_bucket(void **state) {
    (void)state;
    fixture f;
    fx_init(&f, SQ_FUSE_MEAN, SQ_SHARE_BOTTOM, 1u << SQ_TASK_NEXT_ITEM, 0, 0);
    const mt_config *c = &f.net.cfg;
    assert_int_equal(mt_value_bucket(c, NAN), 0);
    assert_int_equal(mt_value_bucket(c, -3.0f), 1);
    assert_int_equal(mt_value_bucket(c, 1.0f), 1);
    assert_int_equal(mt_value_bucket(c, 1.99f), 1);
    assert_int_equal(mt_value_bucket(c, 2.0f), 2);
    assert_int_equal(mt_value_bucket(c, 4.5f), 4);
    assert_int_equal(mt_value_bucket(c, 5.0f), 5);
    assert_int_equal(mt_value_bucket(c, 1e9f), 5);
    fx_free(&f);
}

static void test_bad_target(void **state) {
    (void)state;
    fixture f;
    fx_init(&f, SQ_FUSE_MEAN, SQ_SHARE_BOTTOM, 1u << SQ_TASK_NEXT_ITEM, 0, 0);
    uint32_t tg[NN] = {0};
    tg[2] = NI + 1; /* above the catalogue */
    f.tg.item = tg;
    double loss, tl[SQ_TASK_N];
    long tn[SQ_TASK_N];
    sq_error err = {0};
    assert_int_equal(mt_net_step(&f.net, f.a, &f.in, &f.tg, NULL, &loss, tl, tn, &err), SQ_ERR_ARG);
    fx_free(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradcheck_fusion_mean),
        cmocka_unit_test(test_gradcheck_fusion_concat),
        cmocka_unit_test(test_gradcheck_fusion_attention),
        cmocka_unit_test(test_gradcheck_shared_bottom),
        cmocka_unit_test(test_gradcheck_ple),
        cmocka_unit_test(test_gradcheck_scene_towers),
        cmocka_unit_test(test_total_loss),
        cmocka_unit_test(test_predict_matches_step),
        cmocka_unit_test(test_cand_history),
        cmocka_unit_test(test_value_bucket),
        cmocka_unit_test(test_bad_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
