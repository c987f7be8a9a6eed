/* test_serve_parts.c — the serving pieces that can be checked without a socket: the panel
 * scoring kernel against a plain dot product, the JSON guard
 * (depth, trailing text), and the latency histogram. The server as a whole is tested over HTTP
 * by tests/serve/serve_*.py (CTest: cli_serve_*). */
#include "serve/serve_int.h"
#include "seqrec/eval.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_dot_panels(void **state) {
    (void)state;
    sq_rng rng;
    sq_rng_seed(&rng, 7);
    const uint32_t dims[] = {64, 24, 1}, nis[] = {1000, 64, 3, 129};
    for (size_t di = 0; di < 3; di++)
        for (size_t ii = 0; ii < 4; ii++) {
            const uint32_t dim = dims[di], ni = nis[ii], B = 9;
            float *Y = malloc((size_t)ni * dim * sizeof *Y), *U = malloc(B * dim * sizeof *U);
            float *S = malloc((size_t)B * ni * sizeof *S);
            for (size_t i = 0; i < (size_t)ni * dim; i++)
                Y[i] = (float)sq_rng_normal(&rng);
            for (size_t i = 0; i < (size_t)B * dim; i++)
                U[i] = (float)sq_rng_normal(&rng);
            float *Yp = sv_panels_make(Y, ni, dim);
            assert_non_null(Yp);
            for (uint32_t b = 1; b <= B; b++) { /* every remainder of the 4-, 2-, 1-kernels */
                memset(S, 0, (size_t)B * ni * sizeof *S);
                /* in two ranges, split at a panel boundary, as the scorer's threads do */
                const uint32_t mid = (ni / 2) / SV_PANEL * SV_PANEL;
                sv_dot_panels(U, b, dim, Yp, ni, S, 0, mid);
                sv_dot_panels(U, b, dim, Yp, ni, S, mid, ni);
                double worst = 0;
                for (uint32_t r = 0; r < b; r++)
                    for (uint32_t i = 0; i < ni; i++) {
                        double ref = 0;
                        for (uint32_t d = 0; d < dim; d++)
                            ref += (double)U[r * dim + d] * Y[(size_t)i * dim + d];
                        worst = fmax(worst, fabs(ref - S[(size_t)r * ni + i]));
                    }
                assert_true(worst < 1e-4 * dim);
            }
            sq_free(Yp);
            free(Y);
            free(U);
            free(S);
        }
}

static void test_json_guard(void **state) {
    (void)state;
    char msg[200];
    cJSON *o = sv_json_parse("{\"a\":[1,{\"b\":2}]}", 17, 3, msg, sizeof msg);
    assert_non_null(o);
    cJSON_Delete(o);
    /* depth 4 against a limit of 3; brackets inside strings do not count */
    assert_null(sv_json_parse("[[[[1]]]]", 9, 3, msg, sizeof msg));
    assert_non_null(strstr(msg, "nested deeper than 3"));
    o = sv_json_parse("{\"s\":\"[[[[[[\"}", 14, 1, msg, sizeof msg);
    assert_non_null(o);
    cJSON_Delete(o);
    o = sv_json_parse("{\"s\":\"\\\"[[[\"}", 13, 1, msg, sizeof msg);
    assert_non_null(o);
    cJSON_Delete(o);
    assert_null(sv_json_parse("{\"a\":1} x", 9, 8, msg, sizeof msg));
    assert_non_null(strstr(msg, "byte 8"));
    o = sv_json_parse("{\"a\":1} \n", 9, 8, msg, sizeof msg);
    assert_non_null(o);
    cJSON_Delete(o);
    assert_null(sv_json_parse("{\"a\":", 5, 8, msg, sizeof msg));
    assert_non_null(strstr(msg, "invalid JSON"));
    assert_null(sv_json_parse("", 0, 8, msg, sizeof msg));
    /* a body is not NUL-terminated past its length */
    assert_null(sv_json_parse("{\"a\":1}garbage", 8, 8, msg, sizeof msg));
}

static void test_histogram(void **state) {
    (void)state;
    sv_hist h;
    memset(&h, 0, sizeof h);
    for (int i = 0; i < 90; i++)
        sv_hist_add(&h, 0.0008); /* bucket le 0.001 */
    for (int i = 0; i < 10; i++)
        sv_hist_add(&h, 0.015); /* bucket le 0.02 */
    assert_int_equal(atomic_load(&h.count), 100);
    assert_true(fabs(sv_hist_quantile(&h, 0.5) - 0.001) < 1e-12);
    assert_true(fabs(sv_hist_quantile(&h, 0.9) - 0.001) < 1e-12);
    assert_true(fabs(sv_hist_quantile(&h, 0.99) - 0.02) < 1e-12);
    assert_int_equal(atomic_load(&h.sum_us), 90 * 800 + 10 * 15000);
    sv_hist_add(&h, 1e6); /* beyond every bound: +Inf */
    assert_int_equal(atomic_load(&h.bucket[SV_HIST_BUCKETS - 1]), 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dot_panels),
        cmocka_unit_test(test_json_guard),
        cmocka_unit_test(test_histogram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
