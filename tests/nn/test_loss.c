/* test_loss.c — losses: the chunked full-softmax cross-entropy against a naive double-precision
 * one and against finite differences; sampled softmax, BCE, BPR, WARP and MSE against hand
 * values and finite differences.
 *
 * Tolerances. Finite differences (gradcheck.h) run on float forward passes, central, with
 * eps 1e-2 (the losses are smooth away from the hinge, and a larger step keeps float rounding of
 * the loss, ~1e-7 relative, below 1e-4 of the difference); relative tolerance 1e-2 with a floor
 * of 1e-3 unless a test says otherwise. Comparisons with the naive double reference: 2e-5
 * relative to the largest value of the tensor. */
#include "testutil.h"

#include "gradcheck.h"
#include "seqrec/nn.h"

#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <stdlib.h>
#include <string.h>

static const gc_opts GC = {.eps = 1e-2, .tol = 1e-2, .floor = 1e-3, .stride = 1};
/* Chunked cross-entropy, two checks. (a) Through its own float forward: the loss is a float mean
 * of ~3 whose rounding (ulp 2.4e-7, plus float logits) puts ~1e-5 of noise on gradients of
 * ~1e-3, so eps 2e-2, tol 2e-2, floor 2e-3. (b) Through the double-precision naive forward (the
 * loss as defined), where the noise is ~1e-13: eps 1e-3, tol 1e-3, floor 1e-5. */
static const gc_opts GC_CE = {.eps = 2e-2, .tol = 2e-2, .floor = 2e-3, .stride = 1};
static const gc_opts GC_CE_EXACT = {.eps = 1e-3, .tol = 1e-3, .floor = 1e-5, .stride = 1};

/* ==================================== naive reference ==================================== */

/* The textbook cross-entropy in double: all logits at once. dh, dE overwritten. */
static double naive_ce(double *dh, double *dE, const float *h, const float *E, const int32_t *tgt,
                       int N, int C, int V, int first) {
    double *z = calloc((size_t)V, sizeof *z);
    int n = 0;
    for (int i = 0; i < N; i++)
        n += tgt[i] >= 0;
    memset(dh, 0, (size_t)N * C * sizeof *dh);
    memset(dE, 0, (size_t)V * C * sizeof *dE);
    double total = 0;
    for (int i = 0; i < N; i++) {
        if (tgt[i] < 0)
            continue;
        double m = -INFINITY, s = 0;
        for (int v = first; v < V; v++) {
            z[v] = 0;
            for (int c = 0; c < C; c++)
                z[v] += (double)h[i * C + c] * E[v * C + c];
            if (z[v] > m)
                m = z[v];
        }
        for (int v = first; v < V; v++)
            s += exp(z[v] - m);
        double lse = m + log(s);
        total += lse - z[tgt[i]];
        for (int v = first; v < V; v++) {
            double g = (exp(z[v] - lse) - (v == tgt[i])) / n;
            for (int c = 0; c < C; c++) {
                dh[i * C + c] += g * E[v * C + c];
                dE[v * C + c] += g * h[i * C + c];
            }
        }
    }
    free(z);
    return n ? total / n : 0;
}

/* max |a − b| / max |b| (with a floor of 1e-12): the error relative to the tensor's scale. */
static double rel_diff(const float *a, const double *b, size_t n) {
    double md = 0, mb = 1e-12;
    for (size_t i = 0; i < n; i++) {
        md = fmax(md, fabs(a[i] - b[i]));
        mb = fmax(mb, fabs(b[i]));
    }
    return md / mb;
}

/* ================================= chunked cross-entropy ================================= */

typedef struct {
    float *h, *E;
    int32_t *tgt;
    int N, C, V;
    sq_nn_ce_opts o;
    sq_arena *a;
    double *scratch_dh, *scratch_dE; /* for the double forward */
} ce_case;

static ce_case ce_make(int N, int C, int V, int chunk, int first, float scale, unsigned seed) {
    ce_case k = {.N = N, .C = C, .V = V, .o = {.chunk = chunk, .first_item = first}};
    k.h = malloc((size_t)N * C * sizeof *k.h);
    k.E = malloc((size_t)V * C * sizeof *k.E);
    k.tgt = malloc((size_t)N * sizeof *k.tgt);
    gc_randn(k.h, (size_t)N * C, scale, seed);
    gc_randn(k.E, (size_t)V * C, 1.0f, seed + 1);
    for (int i = 0; i < N; i++)
        k.tgt[i] = first + (int32_t)((i * 7 + 3) % (V - first));
    k.a = sq_arena_create(sq_nn_ce_chunked_scratch(N, C, V, &k.o));
    assert_non_null(k.a);
    return k;
}

static void ce_free(ce_case *k) {
    free(k->h);
    free(k->E);
    free(k->tgt);
    sq_arena_free(k->a);
}

static double ce_loss(void *ctx) {
    ce_case *k = ctx;
    float loss = NAN;
    sq_arena_reset(k->a);
    assert_int_equal(sq_nn_ce_chunked_forward(&loss, NULL, k->h, k->E, k->tgt, k->N, k->C, k->V,
                                              &k->o, k->a, NULL),
                     SQ_OK);
    return loss;
}

static double ce_loss_exact(void *ctx) {
    ce_case *k = ctx;
    return naive_ce(k->scratch_dh, k->scratch_dE, k->h, k->E, k->tgt, k->N, k->C, k->V,
                    k->o.first_item);
}

/* Chunked loss and gradients equal the naive ones for chunk sizes that do and do not divide
 * the number of items, with masked rows, with and without a padding item 0, in one row tile and
 * in tiles of 4 rows. */
static void test_ce_matches_naive(void **state) {
    (void)state;
    const int N = 11, C = 8, V = 37;
    const int chunks[] = {1, 5, 7, 12, 36, 37, 4096};
    for (int cfg = 0; cfg < 4; cfg++) {
        int first = cfg & 1, rows = (cfg & 2) ? 4 : 0; /* tiles of 4 of the 9 unmasked rows */
        for (size_t ci = 0; ci < sizeof chunks / sizeof *chunks; ci++) {
            ce_case k = ce_make(N, C, V, chunks[ci], first, 0.7f, 42);
            k.o.rows = rows;
            k.tgt[2] = -1;
            k.tgt[7] = -1;
            double *rdh = malloc((size_t)N * C * sizeof *rdh);
            double *rdE = malloc((size_t)V * C * sizeof *rdE);
            double ref = naive_ce(rdh, rdE, k.h, k.E, k.tgt, N, C, V, first);
            float *dh = calloc((size_t)N * C, sizeof *dh), *dE = calloc((size_t)V * C, sizeof *dE);
            float loss = 0;
            assert_int_equal(
                sq_nn_ce_chunked(&loss, dh, dE, k.h, k.E, k.tgt, N, C, V, 1.0f, &k.o, k.a, NULL),
                SQ_OK);
            assert_true(fabs(loss - ref) <= 2e-5 * fabs(ref));
            assert_true(rel_diff(dh, rdh, (size_t)N * C) < 2e-5);
            assert_true(rel_diff(dE, rdE, (size_t)V * C) < 2e-5);
            for (int c = 0; c < C; c++) { /* masked rows and the padding row are left alone */
                assert_true(dh[2 * C + c] == 0.0f && dh[7 * C + c] == 0.0f);
                if (first)
                    assert_true(dE[c] == 0.0f);
            }

            /* forward then backward (with and without the forward's lse) add the same again */
            float *dh2 = calloc((size_t)N * C, sizeof *dh2);
            float *dE2 = calloc((size_t)V * C, sizeof *dE2);
            float *lse = calloc((size_t)N, sizeof *lse), loss2 = 0;
            sq_arena_reset(k.a);
            assert_int_equal(
                sq_nn_ce_chunked_forward(&loss2, lse, k.h, k.E, k.tgt, N, C, V, &k.o, k.a, NULL),
                SQ_OK);
            assert_true(loss2 == loss);
            for (int pass = 0; pass < 2; pass++) {
                sq_arena_reset(k.a);
                assert_int_equal(sq_nn_ce_chunked_backward(dh2, dE2, 0.5f, pass ? NULL : lse, k.h,
                                                           k.E, k.tgt, N, C, V, &k.o, k.a, NULL),
                                 SQ_OK);
            }
            for (size_t j = 0; j < (size_t)N * C; j++)
                assert_true(fabs(dh2[j] - dh[j]) < 1e-6);
            for (size_t j = 0; j < (size_t)V * C; j++)
                assert_true(fabs(dE2[j] - dE[j]) < 1e-6);
            free(dh2);
            free(dE2);
            free(lse);
            free(dh);
            free(dE);
            free(rdh);
            free(rdE);
            ce_free(&k);
        }
    }
}

/* Excluded items (a cold_items split's held-out items) leave the softmax: loss and dh equal the
 * naive ones over the table without their rows, their rows of dE stay exactly 0, for chunk sizes
 * where whole chunks (the first one among them) are excluded, with and without a padding row
 * (shift 1 / 0); an excluded target is refused. */
static void test_ce_excluded_items(void **state) {
    (void)state;
    const int N = 9, C = 6, V = 41;
    const int chunks[] = {1, 4, 7, 41, 4096};
    for (int first = 0; first < 2; first++) {
        /* ids (row − first): 0..3 (a whole chunk of 4), 10, 11, 25, the last one */
        const uint32_t ex[] = {0, 1, 2, 3, 10, 11, 25, (uint32_t)(V - 1 - first)};
        const int nex = (int)(sizeof ex / sizeof *ex);
        int keep[64], nk = 0, is_ex[64] = {0};
        for (int k = 0; k < nex; k++)
            is_ex[ex[k] + first] = 1;
        for (int v = 0; v < V; v++)
            if (v < first || !is_ex[v])
                keep[nk++] = v; /* the compacted table keeps the padding row, if any */
        for (size_t ci = 0; ci < sizeof chunks / sizeof *chunks; ci++) {
            ce_case k = ce_make(N, C, V, chunks[ci], first, 0.8f, 11);
            k.o.exclude = ex, k.o.n_exclude = nex, k.o.exclude_shift = first;
            for (int i = 0; i < N; i++) /* targets among the kept items */
                k.tgt[i] = keep[first + (i * 5 + 1) % (nk - first)];
            k.tgt[4] = -1;
            float *Ek = malloc((size_t)nk * C * sizeof *Ek);
            int32_t *tk = malloc((size_t)N * sizeof *tk);
            for (int j = 0; j < nk; j++)
                memcpy(Ek + (size_t)j * C, k.E + (size_t)keep[j] * C, (size_t)C * sizeof *Ek);
            for (int i = 0; i < N; i++) {
                tk[i] = -1;
                for (int j = 0; j < nk && k.tgt[i] >= 0; j++)
                    if (keep[j] == k.tgt[i])
                        tk[i] = j;
            }
            double *rdh = malloc((size_t)N * C * sizeof *rdh);
            double *rdE = malloc((size_t)nk * C * sizeof *rdE);
            double ref = naive_ce(rdh, rdE, k.h, Ek, tk, N, C, nk, first);
            float *dh = calloc((size_t)N * C, sizeof *dh), *dE = calloc((size_t)V * C, sizeof *dE);
            float loss = 0;
            assert_int_equal(
                sq_nn_ce_chunked(&loss, dh, dE, k.h, k.E, k.tgt, N, C, V, 1.0f, &k.o, k.a, NULL),
                SQ_OK);
            assert_true(fabs(loss - ref) <= 2e-5 * fabs(ref));
            assert_true(rel_diff(dh, rdh, (size_t)N * C) < 2e-5);
            float *dEk = malloc((size_t)nk * C * sizeof *dEk);
            for (int j = 0; j < nk; j++)
                memcpy(dEk + (size_t)j * C, dE + (size_t)keep[j] * C, (size_t)C * sizeof *dEk);
            assert_true(rel_diff(dEk, rdE, (size_t)nk * C) < 2e-5);
            for (int v = 0; v < V; v++)
                for (int c = 0; is_ex[v] && c < C; c++)
                    assert_true(dE[(size_t)v * C + c] == 0.0f);
            /* without the exclusion the same call differs: the test can fail */
            sq_nn_ce_opts plain = k.o;
            plain.exclude = NULL;
            float loss_all = 0;
            sq_arena_reset(k.a);
            assert_int_equal(sq_nn_ce_chunked_forward(&loss_all, NULL, k.h, k.E, k.tgt, N, C, V,
                                                      &plain, k.a, NULL),
                             SQ_OK);
            assert_true(loss_all > loss + 1e-3);
            k.tgt[0] = (int32_t)(ex[4] + (uint32_t)first); /* an excluded target */
            sq_error err = {0};
            sq_arena_reset(k.a);
            assert_int_equal(
                sq_nn_ce_chunked(&loss, dh, dE, k.h, k.E, k.tgt, N, C, V, 1.0f, &k.o, k.a, &err),
                SQ_ERR_ARG);
            assert_non_null(strstr(err.msg, "excluded"));
            free(dEk);
            free(dh);
            free(dE);
            free(rdh);
            free(rdE);
            free(Ek);
            free(tk);
            ce_free(&k);
        }
    }
}

/* Beyond 4096 items the default chunking deals 8 groups of chunks to the threads: 1, 2 and 3
 * threads give the same bits (groups merged in order), and the naive loss. */
static void test_ce_threads_identical(void **state) {
    (void)state;
    const int N = 40, C = 16, V = 9001;
    float loss[3], *dh[3], *dE[3];
    double *rdh = malloc((size_t)N * C * sizeof *rdh), *rdE = malloc((size_t)V * C * sizeof *rdE);
    for (int t = 0; t < 3; t++) {
#ifdef _OPENMP
        omp_set_num_threads(t + 1);
#endif
        ce_case k = ce_make(N, C, V, 0, 1, 0.9f, 5);
        k.tgt[3] = -1;
        dh[t] = calloc((size_t)N * C, sizeof *dh[t]);
        dE[t] = calloc((size_t)V * C, sizeof *dE[t]);
        assert_int_equal(sq_nn_ce_chunked(&loss[t], dh[t], dE[t], k.h, k.E, k.tgt, N, C, V, 1.0f,
                                          &k.o, k.a, NULL),
                         SQ_OK);
        if (t == 0) {
            double ref = naive_ce(rdh, rdE, k.h, k.E, k.tgt, N, C, V, 1);
            assert_true(fabs(loss[0] - ref) <= 2e-5 * fabs(ref));
            assert_true(rel_diff(dh[0], rdh, (size_t)N * C) < 2e-5);
            assert_true(rel_diff(dE[0], rdE, (size_t)V * C) < 2e-5);
        }
        ce_free(&k);
    }
    for (int t = 1; t < 3; t++) {
        assert_memory_equal(&loss[t], &loss[0], sizeof loss[0]);
        assert_memory_equal(dh[t], dh[0], (size_t)N * C * sizeof(float));
        assert_memory_equal(dE[t], dE[0], (size_t)V * C * sizeof(float));
    }
    for (int t = 0; t < 3; t++) {
        free(dh[t]);
        free(dE[t]);
    }
    free(rdh);
    free(rdE);
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
}

/* Finite differences through the chunked forward, for dh and dE. */
static void check_ce_fd(int N, int C, int V, int chunk, int first, int mask_row) {
    ce_case k = ce_make(N, C, V, chunk, first, 0.8f, 7 + (unsigned)chunk);
    if (mask_row >= 0)
        k.tgt[mask_row] = -1;
    float *dh = calloc((size_t)N * C, sizeof *dh), *dE = calloc((size_t)V * C, sizeof *dE);
    float loss;
    assert_int_equal(
        sq_nn_ce_chunked(&loss, dh, dE, k.h, k.E, k.tgt, N, C, V, 1.0f, &k.o, k.a, NULL), SQ_OK);
    assert_int_equal(gc_check("ce.dh", ce_loss, &k, k.h, dh, (size_t)N * C, &GC_CE), 0);
    assert_int_equal(gc_check("ce.dE", ce_loss, &k, k.E, dE, (size_t)V * C, &GC_CE), 0);
    k.scratch_dh = malloc((size_t)N * C * sizeof(double));
    k.scratch_dE = malloc((size_t)V * C * sizeof(double));
    assert_int_equal(
        gc_check("ce.dh exact", ce_loss_exact, &k, k.h, dh, (size_t)N * C, &GC_CE_EXACT), 0);
    assert_int_equal(
        gc_check("ce.dE exact", ce_loss_exact, &k, k.E, dE, (size_t)V * C, &GC_CE_EXACT), 0);
    free(k.scratch_dh);
    free(k.scratch_dE);
    free(dh);
    free(dE);
    ce_free(&k);
}

static void test_ce_gradcheck(void **state) {
    (void)state;
    check_ce_fd(5, 6, 24, 8, 0, -1); /* chunk divides V */
    check_ce_fd(5, 6, 23, 7, 0, 3);  /* does not divide, a masked row */
    check_ce_fd(6, 4, 23, 5, 1, 0);  /* padding item 0, first row masked */
    check_ce_fd(4, 5, 19, 64, 1, 2); /* one chunk */
}

/* Logits of 1e4 and more: loss and gradients stay finite and match the double reference. */
static void test_ce_huge_logits(void **state) {
    (void)state;
    const int N = 4, C = 8, V = 29;
    ce_case k = ce_make(N, C, V, 6, 0, 1.0f, 99);
    for (int j = 0; j < N * C; j++)
        k.h[j] *= 2000.0f; /* |logit| up to ~5e4 */
    double *rdh = malloc((size_t)N * C * sizeof *rdh), *rdE = malloc((size_t)V * C * sizeof *rdE);
    double ref = naive_ce(rdh, rdE, k.h, k.E, k.tgt, N, C, V, 0);
    float *dh = calloc((size_t)N * C, sizeof *dh), *dE = calloc((size_t)V * C, sizeof *dE);
    float loss;
    assert_int_equal(
        sq_nn_ce_chunked(&loss, dh, dE, k.h, k.E, k.tgt, N, C, V, 1.0f, &k.o, k.a, NULL), SQ_OK);
    assert_true(isfinite(loss) && ref > 1e3);
    assert_true(fabs(loss - ref) <= 1e-4 * ref);
    for (int j = 0; j < N * C; j++)
        assert_true(isfinite(dh[j]));
    for (int j = 0; j < V * C; j++)
        assert_true(isfinite(dE[j]));
    assert_true(rel_diff(dh, rdh, (size_t)N * C) < 1e-3);
    assert_true(rel_diff(dE, rdE, (size_t)V * C) < 1e-3);
    free(dh);
    free(dE);
    free(rdh);
    free(rdE);
    ce_free(&k);
}

static void test_ce_errors(void **state) {
    (void)state;
    ce_case k = ce_make(3, 4, 10, 4, 1, 1.0f, 5);
    sq_error err = {0};
    float loss = -1;
    k.tgt[1] = 0; /* the padding item is not a valid target */
    assert_int_equal(
        sq_nn_ce_chunked(&loss, NULL, NULL, k.h, k.E, k.tgt, 3, 4, 10, 1.0f, &k.o, k.a, &err),
        SQ_ERR_ARG);
    assert_non_null(strstr(err.msg, "row 1"));
    k.tgt[1] = 10;
    assert_int_equal(
        sq_nn_ce_chunked(&loss, NULL, NULL, k.h, k.E, k.tgt, 3, 4, 10, 1.0f, &k.o, k.a, &err),
        SQ_ERR_ARG);
    k.tgt[0] = k.tgt[1] = k.tgt[2] = -1; /* everything masked: loss 0, gradients untouched */
    float dh[12] = {0};
    assert_int_equal(
        sq_nn_ce_chunked(&loss, dh, NULL, k.h, k.E, k.tgt, 3, 4, 10, 1.0f, &k.o, k.a, &err), SQ_OK);
    assert_true(loss == 0.0f);
    for (int j = 0; j < 12; j++)
        assert_true(dh[j] == 0.0f);
    k.tgt[0] = 3;
    sq_arena *tiny = sq_arena_create(64);
    assert_int_equal(
        sq_nn_ce_chunked(&loss, dh, NULL, k.h, k.E, k.tgt, 3, 4, 10, 1.0f, &k.o, tiny, &err),
        SQ_ERR_NOMEM);
    sq_arena_free(tiny);
    k.h[0] = NAN;
    sq_arena_reset(k.a);
    assert_int_equal(
        sq_nn_ce_chunked(&loss, dh, NULL, k.h, k.E, k.tgt, 3, 4, 10, 1.0f, &k.o, k.a, &err),
        SQ_ERR_NUMERIC);
    ce_free(&k);
}

/* ===================================== sampled softmax ===================================== */

typedef struct {
    float *pos, *neg;
    int32_t *pos_id;
    sq_nn_sampled_negs s;
    int N;
} ss_case;

static double ss_loss(void *ctx) {
    ss_case *k = ctx;
    return sq_nn_sampled_softmax_forward(k->pos, k->neg, k->pos_id, &k->s, k->N);
}

static void test_sampled_softmax_values(void **state) {
    (void)state;
    /* One row, two negatives (ids 5 and 9), positive id 9: negative 9 is an accidental hit and
     * drops out. Corrected logits: pos 2 − log 0.5, neg5 1 − log 0.25.
     * loss = log(e^{2.693147} + e^{2.386294}) − 2.693147 = log(1 + e^{−0.306853}) = 0.551445 */
    float pos[1] = {2.0f}, neg[2] = {1.0f, 30.0f}, lqp[1] = {logf(0.5f)};
    float lqn[2] = {logf(0.25f), logf(0.25f)};
    uint32_t nid[2] = {5, 9};
    int32_t pid[1] = {9};
    sq_nn_sampled_negs s = {
        .neg_id = nid, .logq_pos = lqp, .logq_neg = lqn, .K = 2, .shared_neg = 1};
    float l = sq_nn_sampled_softmax_forward(pos, neg, pid, &s, 1);
    assert_float_equal(l, 0.551445f, 1e-5);
    float dpos[1] = {0}, dneg[2] = {0};
    sq_nn_sampled_softmax_backward(dpos, dneg, 1.0f, pos, neg, pid, &s, 1);
    /* p_neg5 = σ(−0.306853) = 0.423883: dpos = p_pos − 1 = −0.423883, dneg5 = 0.423883 */
    assert_float_equal(dpos[0], -0.423883f, 1e-5);
    assert_float_equal(dneg[0], 0.423883f, 1e-5);
    assert_true(dneg[1] == 0.0f);
    pid[0] = -1; /* masked */
    assert_true(sq_nn_sampled_softmax_forward(pos, neg, pid, &s, 1) == 0.0f);
}

static void test_sampled_softmax_gradcheck(void **state) {
    (void)state;
    enum { N = 5, K = 6 };
    float pos[N], neg[N * K], lqp[N], lqn[N * K];
    uint32_t nid[N * K];
    int32_t pid[N] = {3, 8, -1, 2, 11};
    gc_randn(pos, N, 1.5f, 1);
    gc_randn(neg, N * K, 1.5f, 2);
    for (int i = 0; i < N; i++)
        lqp[i] = -2.0f - 0.1f * i;
    for (int j = 0; j < N * K; j++) {
        lqn[j] = -1.0f - 0.05f * j;
        nid[j] = (uint32_t)(j % 13);
    }
    nid[1 * K + 4] = 8; /* an accidental hit in row 1 */
    for (int shared = 0; shared <= 1; shared++) {
        ss_case k = {pos, neg, pid, {nid, lqp, lqn, K, shared}, N};
        float dpos[N] = {0}, dneg[N * K] = {0};
        sq_nn_sampled_softmax_backward(dpos, dneg, 1.0f, pos, neg, pid, &k.s, N);
        assert_int_equal(gc_check("ss.pos", ss_loss, &k, pos, dpos, N, &GC), 0);
        assert_int_equal(gc_check("ss.neg", ss_loss, &k, neg, dneg, N * K, &GC), 0);
        if (!shared)
            assert_true(dneg[1 * K + 4] == 0.0f);
        for (int kk = 0; kk < K; kk++)
            assert_true(dneg[2 * K + kk] == 0.0f); /* masked row */
    }
}

/* ================================ BCE, BPR, WARP, MSE ================================ */

typedef struct {
    float *a, *b, *w;
    float margin;
    int N, kind;
} pw_case;

enum { PW_BCE, PW_BPR, PW_WARP, PW_MSE };

static double pw_loss(void *ctx) {
    pw_case *k = ctx;
    switch (k->kind) {
    case PW_BCE:
        return sq_nn_bce_forward(k->a, k->b, k->w, k->N);
    case PW_BPR:
        return sq_nn_bpr_forward(k->a, k->b, k->N);
    case PW_WARP:
        return sq_nn_warp_forward(k->a, k->b, k->w, k->margin, k->N);
    default:
        return sq_nn_mse_forward(k->a, k->b, k->N);
    }
}

static void test_bce(void **state) {
    (void)state;
    /* x = (0, 2, −3, 40, −40), y = (1, 0, 0, 1, 0), w = (1, 0.5, 2, 1, 1):
     * terms softplus(x) − x y = log 2, 2.126928, 0.048587, 4.2e-18, 4.2e-18
     * loss = (0.693147 + 0.5·2.126928 + 2·0.048587) / 5 = 0.370757 */
    float x[5] = {0, 2, -3, 40, -40}, y[5] = {1, 0, 0, 1, 0}, w[5] = {1, 0.5f, 2, 1, 1};
    assert_float_equal(sq_nn_bce_forward(x, y, w, 5), 0.370757f, 1e-5);
    /* unweighted: (0.693147 + 2.126928 + 0.048587) / 5 = 0.573732 */
    assert_float_equal(sq_nn_bce_forward(x, y, NULL, 5), 0.573732f, 1e-5);
    float big[2] = {1e4f, -1e4f}, yb[2] = {0, 1};
    assert_float_equal(sq_nn_bce_forward(big, yb, NULL, 2), 1e4f, 1e-1); /* finite */
    float dx[5] = {0};
    sq_nn_bce_backward(dx, 1.0f, x, y, w, 5);
    assert_float_equal(dx[0], (0.5f - 1.0f) / 5, 1e-7); /* w (σ(0) − 1) / N */

    enum { N = 7 };
    float a[N], b[N], ww[N], g[N] = {0};
    gc_randn(a, N, 2.0f, 11);
    for (int i = 0; i < N; i++) {
        b[i] = (float)(i % 3) / 2.0f; /* soft labels too */
        ww[i] = 0.5f + 0.25f * i;
    }
    pw_case k = {a, b, ww, 0, N, PW_BCE};
    sq_nn_bce_backward(g, 1.0f, a, b, ww, N);
    assert_int_equal(gc_check("bce.x", pw_loss, &k, a, g, N, &GC), 0);
}

static void test_bpr(void **state) {
    (void)state;
    /* pos − neg = 1, −2: loss = (softplus(−1) + softplus(2)) / 2 = (0.313262 + 2.126928) / 2 */
    float pos[2] = {1.5f, -1.0f}, neg[2] = {0.5f, 1.0f};
    assert_float_equal(sq_nn_bpr_forward(pos, neg, 2), 1.220095f, 1e-5);
    float dp[2] = {0}, dn[2] = {0};
    sq_nn_bpr_backward(dp, dn, 1.0f, pos, neg, 2);
    assert_float_equal(dp[0], -0.268941f / 2, 1e-6); /* σ(−1) / N */
    assert_float_equal(dn[1], 0.880797f / 2, 1e-6);  /* σ(2) / N */

    enum { N = 6 };
    float a[N], b[N], ga[N] = {0}, gb[N] = {0};
    gc_randn(a, N, 2.0f, 21);
    gc_randn(b, N, 2.0f, 22);
    pw_case k = {a, b, NULL, 0, N, PW_BPR};
    sq_nn_bpr_backward(ga, gb, 1.0f, a, b, N);
    assert_int_equal(gc_check("bpr.pos", pw_loss, &k, a, ga, N, &GC), 0);
    assert_int_equal(gc_check("bpr.neg", pw_loss, &k, b, gb, N, &GC), 0);
}

static uint32_t draw_next;
static float draw_score(void *ud, uint32_t *id) {
    const float *scores = ud;
    *id = 100 + draw_next;
    return scores[draw_next++];
}

static void test_warp(void **state) {
    (void)state;
    assert_true(sq_nn_warp_rank_weight(0) == 0.0);
    assert_float_equal(sq_nn_warp_rank_weight(1), 1.0, 1e-12);
    assert_float_equal(sq_nn_warp_rank_weight(3), 1.0 + 0.5 + 1.0 / 3, 1e-12);
    double h = 0;
    for (int r = 1; r <= 1000; r++) {
        h += 1.0 / r;
        if (r == 63 || r == 64 || r == 65 || r == 1000)
            assert_float_equal(sq_nn_warp_rank_weight(r), h, 1e-10);
    }
    /* positive 1.0, margin 1: a violator has score > 0. The third one (index 2) is the first.
     * 101 items → 100 negatives, 3 draws → rank floor(100/3) = 33, weight H_33 = 4.0880 */
    float negs[5] = {-0.5f, 0.0f, 0.25f, 3.0f, -2.0f}, w;
    assert_int_equal(sq_nn_warp_find(1.0f, negs, 5, 1.0f, 101, &w), 2);
    assert_float_equal(w, 4.088798f, 1e-5);
    assert_int_equal(sq_nn_warp_find(5.0f, negs, 5, 1.0f, 101, &w), -1);
    assert_true(w == 0.0f);
    assert_int_equal(sq_nn_warp_find(-9.0f, negs, 5, 1.0f, 101, &w), 0); /* first draw: H_100 */
    assert_float_equal(w, 5.187378f, 1e-5);
    uint32_t id;
    float s;
    draw_next = 0;
    assert_int_equal(sq_nn_warp_find_draw(1.0f, draw_score, negs, 5, 1.0f, 101, &id, &s, &w), 3);
    assert_int_equal(id, 102);
    assert_true(s == 0.25f);
    assert_float_equal(w, 4.088798f, 1e-5);
    draw_next = 0;
    assert_int_equal(sq_nn_warp_find_draw(9.0f, draw_score, negs, 5, 1.0f, 101, &id, &s, &w), 0);

    /* loss = (1/2)(4.0888 · (1 − 1 + 0.25) + 0) with the second row's hinge inactive */
    float pos[2] = {1.0f, 5.0f}, neg[2] = {0.25f, 0.0f}, wt[2] = {4.088798f, 2.0f};
    assert_float_equal(sq_nn_warp_forward(pos, neg, wt, 1.0f, 2), 0.5f * 4.088798f * 0.25f, 1e-6);
    float dp[2] = {0}, dn[2] = {0};
    sq_nn_warp_backward(dp, dn, 1.0f, pos, neg, wt, 1.0f, 2);
    assert_float_equal(dp[0], -4.088798f / 2, 1e-6);
    assert_float_equal(dn[0], 4.088798f / 2, 1e-6);
    assert_true(dp[1] == 0.0f && dn[1] == 0.0f);

    enum { N = 8 };
    float a[N], b[N], ww[N], ga[N] = {0}, gb[N] = {0};
    for (int i = 0; i < N; i++) { /* hinges at least 0.1 away from the kink */
        a[i] = 0.3f * i;
        b[i] = (i % 2) ? a[i] - 0.5f : a[i] - 1.6f; /* odd rows active, even rows inactive */
        ww[i] = (float)sq_nn_warp_rank_weight(1 + i * 5);
    }
    pw_case k = {a, b, ww, 1.0f, N, PW_WARP};
    sq_nn_warp_backward(ga, gb, 1.0f, a, b, ww, 1.0f, N);
    assert_int_equal(gc_check("warp.pos", pw_loss, &k, a, ga, N, &GC), 0);
    assert_int_equal(gc_check("warp.neg", pw_loss, &k, b, gb, N, &GC), 0);
}

static void test_mse(void **state) {
    (void)state;
    float p[3] = {1, 2, 5}, t[3] = {1.5f, 2, 3};
    assert_float_equal(sq_nn_mse_forward(p, t, 3), (0.25f + 0 + 4) / 3, 1e-6);
    float d[3] = {1, 1, 1}; /* accumulates */
    sq_nn_mse_backward(d, 1.0f, p, t, 3);
    assert_float_equal(d[0], 1.0f + 2 * -0.5f / 3, 1e-6);
    assert_float_equal(d[2], 1.0f + 2 * 2.0f / 3, 1e-6);

    enum { N = 6 };
    float a[N], b[N], g[N] = {0};
    gc_randn(a, N, 1.0f, 31);
    gc_randn(b, N, 1.0f, 32);
    pw_case k = {a, b, NULL, 0, N, PW_MSE};
    sq_nn_mse_backward(g, 1.0f, a, b, N);
    assert_int_equal(gc_check("mse.pred", pw_loss, &k, a, g, N, &GC), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ce_matches_naive),
        cmocka_unit_test(test_ce_excluded_items),
        cmocka_unit_test(test_ce_threads_identical),
        cmocka_unit_test(test_ce_gradcheck),
        cmocka_unit_test(test_ce_huge_logits),
        cmocka_unit_test(test_ce_errors),
        cmocka_unit_test(test_sampled_softmax_values),
        cmocka_unit_test(test_sampled_softmax_gradcheck),
        cmocka_unit_test(test_bce),
        cmocka_unit_test(test_bpr),
        cmocka_unit_test(test_warp),
        cmocka_unit_test(test_mse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
