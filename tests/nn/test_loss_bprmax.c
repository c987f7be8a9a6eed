/* test_loss_bprmax.c — the BPR-max loss (nn_loss.h): hand-computed values and gradients, masked
 * rows and accidental hits, a positive far below its negatives (where the authors' 1e-24 guard
 * would saturate), and finite differences.
 *
 * Hand values. Row (p = 1; x = 0, 2): s = softmax(0, 2) = (0.119203, 0.880797),
 * σ(p − x) = (0.731059, 0.268941), S = Σ s σ = 0.324027, −log S = 1.126928,
 * Q = Σ s x² = 3.523188, so loss = 1.126928 + reg · 3.523188 = 4.650116 with reg = 1.
 * w = s σ / S = (0.268941, 0.731059); ∂/∂p = −Σ w σ(x − p) = −0.606776;
 * ∂/∂x_0 = s_0 − w_0 σ_0 + s_0 (x_0² − Q + 2 x_0) = −0.497383, ∂/∂x_1 = 4.627348.
 * Row (p = −0.5; x = 1, −1): loss 2.448685 (reg 1).
 *
 * Finite differences (gradcheck.h) through the float forward, central, eps 1e-2, relative
 * tolerance 1e-2 with a floor of 1e-3, as tests/nn/test_loss.c. */
#include "testutil.h"

#include "gradcheck.h"
#include "seqrec/nn.h"

#include <math.h>
#include <string.h>

static const gc_opts GC = {.eps = 1e-2, .tol = 1e-2, .floor = 1e-3, .stride = 1};

static void test_bprmax_hand_values(void **state) {
    (void)state;
    float pos[1] = {1.0f}, neg[2] = {0.0f, 2.0f};
    int32_t pid[1] = {7};
    assert_float_equal(sq_nn_bprmax_forward(pos, neg, pid, NULL, 2, 1.0f, 1), 4.650116f, 1e-5);
    assert_float_equal(sq_nn_bprmax_forward(pos, neg, pid, NULL, 2, 0.0f, 1), 1.126928f, 1e-5);
    float dpos[1] = {1.0f}, dneg[2] = {0}; /* dpos starts at 1: backward accumulates */
    sq_nn_bprmax_backward(dpos, dneg, 1.0f, pos, neg, pid, NULL, 2, 1.0f, 1);
    assert_float_equal(dpos[0], 1.0f - 0.606776f, 1e-5);
    assert_float_equal(dneg[0], -0.497383f, 1e-5);
    assert_float_equal(dneg[1], 4.627348f, 1e-5);
    /* dloss weights the gradient */
    float dp2[1] = {0}, dn2[2] = {0};
    sq_nn_bprmax_backward(dp2, dn2, 0.5f, pos, neg, pid, NULL, 2, 1.0f, 1);
    assert_float_equal(dp2[0], -0.5f * 0.606776f, 1e-5);
    assert_float_equal(dn2[1], 0.5f * 4.627348f, 1e-5);
    /* reg = 0: a row's gradients sum to 0 (shifting every score changes nothing) */
    float dp3[1] = {0}, dn3[2] = {0};
    sq_nn_bprmax_backward(dp3, dn3, 1.0f, pos, neg, pid, NULL, 2, 0.0f, 1);
    assert_float_equal(dp3[0] + dn3[0] + dn3[1], 0.0f, 1e-6);
    assert_true(dp3[0] < 0.0f); /* raising the positive lowers the loss */
}

/* Three negatives per row; the third of rows 0 and 1 is the row's own positive and drops out,
 * row 2 is masked, every negative of row 3 is a hit (the row does not count). The mean is over
 * rows 0 and 1: (4.650116 + 2.448685) / 2 = 3.549400. */
static void test_bprmax_masks_and_hits(void **state) {
    (void)state;
    float pos[4] = {1.0f, -0.5f, 3.0f, 2.0f};
    float neg[12] = {0.0f, 2.0f, 50.0f, 1.0f, -1.0f, -20.0f, 9.0f, 9.0f, 9.0f, 1.0f, 1.0f, 1.0f};
    int32_t pid[4] = {5, 6, -1, 4};
    uint32_t nid[12] = {1, 2, 5, 3, 9, 6, 1, 2, 3, 4, 4, 4};
    assert_float_equal(sq_nn_bprmax_forward(pos, neg, pid, nid, 3, 1.0f, 4), 3.549400f, 1e-5);
    float dpos[4] = {0}, dneg[12] = {0};
    sq_nn_bprmax_backward(dpos, dneg, 1.0f, pos, neg, pid, nid, 3, 1.0f, 4);
    /* row 0 as the hand row, halved by the mean over two rows */
    assert_float_equal(dpos[0], -0.606776f / 2, 1e-5);
    assert_float_equal(dneg[0], -0.497383f / 2, 1e-5);
    assert_float_equal(dneg[1], 4.627348f / 2, 1e-5);
    assert_true(dneg[2] == 0.0f && dneg[5] == 0.0f); /* hits */
    for (int j = 6; j < 12; j++)
        assert_true(dneg[j] == 0.0f); /* masked row, row without negatives */
    assert_true(dpos[2] == 0.0f && dpos[3] == 0.0f);
    assert_true(dpos[1] != 0.0f && dneg[3] != 0.0f && dneg[4] != 0.0f);
    /* nothing counts: loss 0, gradients untouched */
    int32_t none[4] = {-1, -1, -1, 4};
    assert_true(sq_nn_bprmax_forward(pos, neg, none, nid, 3, 1.0f, 4) == 0.0f);
    memset(dneg, 0, sizeof dneg);
    memset(dpos, 0, sizeof dpos);
    sq_nn_bprmax_backward(dpos, dneg, 1.0f, pos, neg, none, nid, 3, 1.0f, 4);
    for (int j = 0; j < 12; j++)
        assert_true(dneg[j] == 0.0f);
    for (int i = 0; i < 4; i++)
        assert_true(dpos[i] == 0.0f);
}

/* p = −d far below x = (d, d + 1): S = e^−2d (0.268941 + 0.731059 e^−1), so loss = 2d + 0.620115
 * (reg 0), well past the authors' 1e-24 guard (55.3). d = 100: S ≈ 1e-87 is still summed
 * directly; d = 400: S ≈ e^−800 underflows double and the row goes through the log domain.
 * Either way ∂/∂p = −Σ w σ(x − p) = −1 (to 1e-43, σ(x − p) = 1), and as σ(p − x) ≈ 0 the
 * negatives get ∂/∂x_j = s_j − w_j σ(p − x_j) = s_j = (0.268941, 0.731059). */
static void test_bprmax_far_below(void **state) {
    (void)state;
    for (int c = 0; c < 2; c++) {
        float d = c ? 400.0f : 100.0f;
        float pos[1] = {-d}, neg[2] = {d, d + 1.0f};
        int32_t pid[1] = {0};
        float l = sq_nn_bprmax_forward(pos, neg, pid, NULL, 2, 0.0f, 1);
        assert_float_equal(l, 2.0f * d + 0.620115f, 1e-3);
        float dpos[1] = {0}, dneg[2] = {0};
        sq_nn_bprmax_backward(dpos, dneg, 1.0f, pos, neg, pid, NULL, 2, 0.0f, 1);
        assert_float_equal(dpos[0], -1.0f, 1e-6);
        assert_float_equal(dneg[0], 0.268941f, 1e-5);
        assert_float_equal(dneg[1], 0.731059f, 1e-5);
    }
    float pos[1] = {-100.0f};
    int32_t pid[1] = {0};
    /* huge scores with the regulariser stay finite too */
    float big[2] = {1e4f, -1e4f};
    float l = sq_nn_bprmax_forward(pos, big, pid, NULL, 2, 1.0f, 1);
    assert_true(isfinite(l) && l > 1e4f);
}

typedef struct {
    float *pos, *neg;
    int32_t *pid;
    uint32_t *nid;
    int K, N;
    float reg;
} bm_case;

static double bm_loss(void *ctx) {
    bm_case *k = ctx;
    return sq_nn_bprmax_forward(k->pos, k->neg, k->pid, k->nid, k->K, k->reg, k->N);
}

static void test_bprmax_gradcheck(void **state) {
    (void)state;
    enum { N = 6, K = 5 };
    const float regs[3] = {0.0f, 1.0f, 0.25f};
    for (int r = 0; r < 3; r++) {
        float pos[N], neg[N * K], dpos[N] = {0}, dneg[N * K] = {0};
        int32_t pid[N] = {3, 8, -1, 2, 11, 0};
        uint32_t nid[N * K];
        gc_randn(pos, N, 1.5f, 40 + (unsigned long long)r);
        gc_randn(neg, N * K, 1.5f, 50 + (unsigned long long)r);
        for (int j = 0; j < N * K; j++)
            nid[j] = 20 + (uint32_t)j;
        nid[1 * K + 2] = 8; /* an accidental hit in row 1 */
        bm_case k = {pos, neg, pid, r == 2 ? NULL : nid, K, N, regs[r]};
        sq_nn_bprmax_backward(dpos, dneg, 1.0f, pos, neg, pid, k.nid, K, regs[r], N);
        assert_int_equal(gc_check("bprmax.pos", bm_loss, &k, pos, dpos, N, &GC), 0);
        assert_int_equal(gc_check("bprmax.neg", bm_loss, &k, neg, dneg, N * K, &GC), 0);
        assert_true(dpos[2] == 0.0f); /* masked */
        if (k.nid)
            assert_true(dneg[1 * K + 2] == 0.0f);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bprmax_hand_values),
        cmocka_unit_test(test_bprmax_masks_and_hits),
        cmocka_unit_test(test_bprmax_far_below),
        cmocka_unit_test(test_bprmax_gradcheck),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
