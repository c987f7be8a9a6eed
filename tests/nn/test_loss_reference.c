/* test_loss_reference.c — the chunked full-softmax cross-entropy against PyTorch: loss and the
 * gradients with respect to h and E, from fixtures written by
 * tests/reference/make_loss_fixtures.py (torch is needed only to regenerate them).
 * N = 6, C = 8, V = 37, one masked row; with and without a padding item 0; several chunk and
 * row-tile sizes.
 *
 * Tolerance: |ours − torch| <= 1e-4 · max(|ours|, |torch|, 1e-3) per value, i.e. 1e-4 relative
 * with an absolute floor of 1e-7; the max difference of each tensor is printed. */
#include "testutil.h"

#include "fixture.h"

#include "seqrec/nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double REL_TOL = 1e-4, FLOOR = 1e-3;

static int compare(const fx_fixture *fx, const char *name, const float *ours, size_t n) {
    return fx_compare(fx, name, ours, n, REL_TOL, FLOOR);
}

static void check_fixture(const char *file) {
    fx_fixture fx;
    fx_load(&fx, file);
    const float *meta = fx_get(&fx, "meta", 4)->v;
    const int N = (int)meta[0], C = (int)meta[1], V = (int)meta[2];
    sq_nn_ce_opts o = {.first_item = (int)meta[3]};
    int32_t *tgt = malloc((size_t)N * sizeof *tgt);
    const float *tf = fx_get(&fx, "targets", (size_t)N)->v;
    for (int i = 0; i < N; i++)
        tgt[i] = (int32_t)tf[i];
    const float *h = fx_get(&fx, "h", (size_t)N * C)->v, *E = fx_get(&fx, "E", (size_t)V * C)->v;
    float *dh = malloc((size_t)N * C * sizeof *dh), *dE = malloc((size_t)V * C * sizeof *dE);
    const int chunks[3] = {5, 37, 4096}, rows[2] = {0, 2};
    for (int ci = 0; ci < 3; ci++)
        for (int ri = 0; ri < 2; ri++) {
            o.chunk = chunks[ci];
            o.rows = rows[ri];
            sq_arena *a = sq_arena_create(sq_nn_ce_chunked_scratch(N, C, V, &o));
            memset(dh, 0, (size_t)N * C * sizeof *dh);
            memset(dE, 0, (size_t)V * C * sizeof *dE);
            float loss = NAN;
            assert_int_equal(sq_nn_ce_chunked(&loss, dh, dE, h, E, tgt, N, C, V, 1.0f, &o, a, NULL),
                             SQ_OK);
            printf("  %s chunk %d rows %d:\n", file, o.chunk, o.rows);
            int bad = compare(&fx, "loss", &loss, 1);
            bad += compare(&fx, "dh", dh, (size_t)N * C);
            bad += compare(&fx, "dE", dE, (size_t)V * C);
            assert_int_equal(bad, 0);
            sq_arena_free(a);
        }
    free(dh);
    free(dE);
    free(tgt);
    fx_free(&fx);
}

static void test_ce_torch_first0(void **state) {
    (void)state;
    check_fixture("loss_ce_first0.bin");
}

static void test_ce_torch_first1(void **state) {
    (void)state;
    check_fixture("loss_ce_first1.bin");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ce_torch_first0),
        cmocka_unit_test(test_ce_torch_first1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
