/* test_spconv.c — sparse graph convolution (nn_graph.h, src/nn/spconv.c): the normalised
 * adjacency built from edge lists against hand-computed values, the transpose, the product's
 * forward values, and finite-difference gradients of Y = A X (a non-symmetric A, so that the
 * backward's use of Aᵀ is really checked) and of the GCN layer Y = Â X Wᵀ (x and w).
 *
 * Everything here is linear, so central differences are exact up to float rounding: eps 1e-2,
 * relative tolerance 1e-2, floor 1e-3. */
#include "testutil.h"

#include "gradcheck.h"
#include "seqrec/nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const gc_opts GC_LIN = {.eps = 1e-2, .tol = 1e-2, .floor = 1e-3, .stride = 1};

/* 4 nodes, edges 0–1 (twice, once reversed), 1–2, and 3–3 (ignored without a loop). */
static const uint32_t SRC[] = {0, 1, 1, 3}, DST[] = {1, 2, 0, 3};

static void test_csr_from_edges(void **state) {
    (void)state;
    sq_nn_csr A;
    sq_error err = {0};
    assert_int_equal(sq_nn_csr_from_edges(&A, 4, SRC, DST, 4, NULL, &err), SQ_OK);
    /* degrees 1, 2, 1, 0: Â[0,1] = Â[1,0] = Â[1,2] = Â[2,1] = 1/√2, row 3 empty */
    const uint64_t rp[] = {0, 1, 3, 4, 4};
    const uint32_t col[] = {1, 0, 2, 1};
    for (int i = 0; i < 5; i++)
        assert_int_equal(A.row_ptr[i], rp[i]);
    for (int k = 0; k < 4; k++) {
        assert_int_equal(A.col[k], col[k]);
        assert_float_equal(A.val[k], 1.0 / sqrt(2.0), 1e-6);
    }
    sq_nn_csr_free(&A);
    sq_nn_csr_free(&A); /* a freed (zeroed) struct: no-op */

    /* self-loops everywhere: degrees 2, 3, 2, 1 */
    const uint8_t loops[] = {1, 1, 1, 1};
    assert_int_equal(sq_nn_csr_from_edges(&A, 4, SRC, DST, 4, loops, &err), SQ_OK);
    assert_int_equal(A.row_ptr[4], 8);
    const uint32_t col2[] = {0, 1, 0, 1, 2, 1, 2, 3};
    const double val2[] = {1 / 2.0,       1 / sqrt(6.0), 1 / sqrt(6.0), 1 / 3.0,
                           1 / sqrt(6.0), 1 / sqrt(6.0), 1 / 2.0,       1.0};
    for (int k = 0; k < 8; k++) {
        assert_int_equal(A.col[k], col2[k]);
        assert_float_equal(A.val[k], val2[k], 1e-6);
    }
    sq_nn_csr_free(&A);

    const uint32_t bad[] = {4};
    assert_int_equal(sq_nn_csr_from_edges(&A, 4, SRC, bad, 1, NULL, &err), SQ_ERR_ARG);
    assert_non_null(strstr(err.msg, "edge 0"));
    /* no edges at all: every row empty */
    assert_int_equal(sq_nn_csr_from_edges(&A, 3, NULL, NULL, 0, NULL, &err), SQ_OK);
    assert_int_equal(A.row_ptr[3], 0);
    sq_nn_csr_free(&A);
}

/* A non-symmetric 3 x 4 matrix:
 *   [1 0 2 0]
 *   [0 0 0 0]
 *   [0 3 0 4] */
static void make_rect(sq_nn_csr *A) {
    static uint64_t rp[] = {0, 2, 2, 4};
    static uint32_t col[] = {0, 2, 1, 3};
    static float val[] = {1, 2, 3, 4};
    A->n_rows = 3;
    A->n_cols = 4;
    A->row_ptr = rp;
    A->col = col;
    A->val = val;
}

enum { RC = 2 };

typedef struct {
    sq_nn_csr A;
    float x[4 * RC], y[3 * RC], w[3 * RC];
} spmm_ctx;

static double spmm_loss(void *ctx) {
    spmm_ctx *c = ctx;
    sq_nn_spmm_forward(c->y, &c->A, c->x, RC);
    return gc_dot(c->w, c->y, 3 * RC);
}

static void test_spmm(void **state) {
    (void)state;
    spmm_ctx c;
    make_rect(&c.A);
    for (int i = 0; i < 4 * RC; i++)
        c.x[i] = (float)(i + 1); /* x rows (1,2) (3,4) (5,6) (7,8) */
    sq_nn_spmm_forward(c.y, &c.A, c.x, RC);
    const float want[] = {1 + 10, 2 + 12, 0, 0, 9 + 28, 12 + 32};
    for (int i = 0; i < 3 * RC; i++)
        assert_float_equal(c.y[i], want[i], 1e-5);

    sq_nn_csr At;
    sq_error err = {0};
    assert_int_equal(sq_nn_csr_transpose(&At, &c.A, &err), SQ_OK);
    assert_int_equal(At.n_rows, 4);
    assert_int_equal(At.n_cols, 3);
    const uint64_t rp[] = {0, 1, 2, 3, 4};
    const uint32_t col[] = {0, 2, 0, 2};
    const float val[] = {1, 3, 2, 4};
    for (int i = 0; i < 5; i++)
        assert_int_equal(At.row_ptr[i], rp[i]);
    for (int k = 0; k < 4; k++) {
        assert_int_equal(At.col[k], col[k]);
        assert_float_equal(At.val[k], val[k], 0);
    }

    gc_randn(c.x, 4 * RC, 1.0f, 11);
    gc_randn(c.w, 3 * RC, 1.0f, 12);
    float dx[4 * RC];
    for (int i = 0; i < 4 * RC; i++)
        dx[i] = 0.5f; /* backward accumulates: start from a known value */
    sq_nn_spmm_backward(dx, &At, c.w, RC);
    for (int i = 0; i < 4 * RC; i++)
        dx[i] -= 0.5f;
    assert_int_equal(gc_check("spmm dx", spmm_loss, &c, c.x, dx, 4 * RC, &GC_LIN), 0);
    sq_nn_csr_free(&At);
}

/* ========================================= GCN layer ======================================== */

enum { GN = 6, GC = 4, GO = 3 };

typedef struct {
    sq_params ps;
    sq_arena *a;
    sq_nn_gcn l;
    sq_nn_gcn_acts acts;
    sq_nn_csr A;
    float x[GN * GC], y[GN * GO], w[GN * GO];
} gcn_ctx;

static double gcn_loss(void *ctx) {
    gcn_ctx *c = ctx;
    sq_arena_reset(c->a);
    assert_int_equal(sq_nn_gcn_forward(&c->l, &c->ps, c->a, &c->acts, c->y, c->x, &c->A, GN, NULL),
                     SQ_OK);
    return gc_dot(c->w, c->y, GN * GO);
}

static void test_gcn(void **state) {
    (void)state;
    static gcn_ctx c;
    memset(&c, 0, sizeof c);
    sq_error err = {0};
    /* a path 0-1-2-3-4 and a lone node 5 with a self-loop; loops on 1 and 3 only */
    const uint32_t s[] = {0, 1, 2, 3}, d[] = {1, 2, 3, 4};
    const uint8_t loops[GN] = {0, 1, 0, 1, 0, 1};
    assert_int_equal(sq_nn_csr_from_edges(&c.A, GN, s, d, 4, loops, &err), SQ_OK);
    sq_params_init(&c.ps);
    assert_int_equal(sq_nn_gcn_init(&c.l, &c.ps, "gcn", GC, GO), 0);
    assert_int_equal(sq_params_alloc(&c.ps, &err), SQ_OK);
    sq_rng rng;
    sq_rng_seed(&rng, 5);
    sq_nn_gcn_reset(&c.l, &c.ps, &rng);
    c.a = sq_arena_create(1 << 16);
    gc_randn(c.x, GN * GC, 1.0f, 21);
    gc_randn(c.w, GN * GO, 1.0f, 22);

    /* node 5 is alone with its loop (Â[5,5] = 1): y[5] = W x[5] */
    gcn_loss(&c);
    const float *W = sq_nn_val(&c.ps, c.l.w);
    for (int o = 0; o < GO; o++) {
        double z = 0;
        for (int k = 0; k < GC; k++)
            z += W[o * GC + k] * c.x[5 * GC + k];
        assert_float_equal(c.y[5 * GO + o], z, 1e-5);
    }

    sq_params_zero_grad(&c.ps);
    float dx[GN * GC] = {0};
    assert_int_equal(sq_nn_gcn_backward(&c.l, &c.ps, c.a, &c.acts, &c.A, dx, c.w, &err), SQ_OK);
    assert_int_equal(gc_check("gcn dx", gcn_loss, &c, c.x, dx, GN * GC, &GC_LIN), 0);
    sq_param *t = &c.ps.p[c.l.w];
    assert_int_equal(gc_check("gcn w", gcn_loss, &c, t->data, t->grad, t->size, &GC_LIN), 0);

    /* a graph of another size is refused, naming both */
    sq_nn_csr B;
    assert_int_equal(sq_nn_csr_from_edges(&B, 3, s, d, 2, NULL, &err), SQ_OK);
    assert_int_equal(sq_nn_gcn_forward(&c.l, &c.ps, c.a, &c.acts, c.y, c.x, &B, GN, &err),
                     SQ_ERR_ARG);
    assert_non_null(strstr(err.msg, "3 x 3"));
    sq_nn_csr_free(&B);
    sq_nn_csr_free(&c.A);
    sq_arena_free(c.a);
    sq_params_free(&c.ps);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csr_from_edges),
        cmocka_unit_test(test_spmm),
        cmocka_unit_test(test_gcn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
