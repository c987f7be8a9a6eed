/* test_serve_parts.c — the serving pieces that can be checked without a socket: the panel
 * scoring kernel against a plain dot product, the bf16 scan (its error bound, and the scorer's
 * top k through it identical to the fp32 path's), the JSON guard
 * (depth, trailing text), and the latency histogram. The server as a whole is tested over HTTP
 * by tests/serve/serve_*.py (CTest: cli_serve_*). */
#include "seqrec/eval.h"
#include "serve/serve_int.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
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

#ifdef SV_HAVE_BF16
/* An item table with traps for an approximate scan: exact duplicates (ties: the smaller id must
 * win), near-duplicates closer than bf16 can tell apart, norms spread over 3 orders. */
static float *trap_table(sq_rng *rng, uint32_t ni, uint32_t dim) {
    float *Y = malloc((size_t)ni * dim * sizeof *Y);
    for (uint32_t i = 0; i < ni; i++) {
        const float scale = (float)exp(sq_rng_uniform(rng) * 3.0 - 1.5);
        for (uint32_t d = 0; d < dim; d++)
            Y[(size_t)i * dim + d] = scale * (float)sq_rng_normal(rng);
        if (i >= 10 && i % 7 == 0) { /* a copy of an earlier item, sometimes nudged */
            const uint32_t src = (uint32_t)(sq_rng_uniform(rng) * (i - 1));
            for (uint32_t d = 0; d < dim; d++)
                Y[(size_t)i * dim + d] =
                    Y[(size_t)src * dim + d] * (i % 2 ? 1.0f : 1.0f + 1e-4f * (d % 3));
        }
    }
    return Y;
}

static void test_bf16_bound(void **state) {
    (void)state;
    sq_rng rng;
    sq_rng_seed(&rng, 11);
    const uint32_t dims[] = {64, 7}, ni = 700, B = 9;
    for (size_t di = 0; di < 2; di++) {
        const uint32_t dim = dims[di];
        float *Y = trap_table(&rng, ni, dim), *U = malloc(B * dim * sizeof *U);
        float *S = malloc((size_t)B * ni * sizeof *S);
        for (size_t i = 0; i < (size_t)B * dim; i++)
            U[i] = (float)sq_rng_normal(&rng) * (i % dim == 0 ? 50.0f : 1.0f);
        double ymax = 0;
        for (uint32_t i = 0; i < ni; i++) {
            double n2 = 0;
            for (uint32_t d = 0; d < dim; d++)
                n2 += (double)Y[(size_t)i * dim + d] * Y[(size_t)i * dim + d];
            ymax = fmax(ymax, sqrt(n2));
        }
        uint16_t *Yb = sv_panels_make_bf16(Y, ni, dim);
        float *Yp = sv_panels_make(Y, ni, dim);
        assert_non_null(Yb);
        assert_non_null(Yp);
        float *E = malloc((size_t)B * ni * sizeof *E);
        sv_dot_panels(U, B, dim, Yp, ni, E, 0, ni);
        for (uint32_t b = 1; b <= B; b++) { /* the 4-kernel, every remainder (3-, 2-, 1-) */
            sv_dot_panels_bf16(U, b, dim, Yb, ni, S, 0, ni);
            double worst = 0, used = 0;
            for (uint32_t r = 0; r < b; r++) {
                double un = 0;
                for (uint32_t d = 0; d < dim; d++)
                    un += (double)U[r * dim + d] * U[r * dim + d];
                const double bound = sv_bf16_bound(sqrt(un), ymax, dim);
                for (uint32_t i = 0; i < ni; i++) {
                    const float exact = E[(size_t)r * ni + i];
                    /* sv_dot_exact is the fp32 kernel's sum, bit for bit */
                    assert_true(sv_dot_exact(U + r * dim, Y + (size_t)i * dim, dim) == exact);
                    const double err = fabs((double)S[(size_t)r * ni + i] - exact);
                    worst = fmax(worst, err / bound);
                    used = fmax(used, err);
                }
            }
            assert_true(worst <= 1.0);
            assert_true(used > 0); /* bf16 is approximate: the bound is doing work */
        }
        sq_free(Yb);
        sq_free(Yp);
        free(Y);
        free(U);
        free(S);
        free(E);
    }
}

typedef struct {
    sv_scorer *sc;
    sv_job *job;
    sq_status rc;
} run_arg;

static void *run_job(void *p) {
    run_arg *a = p;
    a->rc = sv_scorer_run(a->sc, a->job, NULL);
    return NULL;
}

/* Runs the jobs from as many threads at once (so batches of several form), returns them. */
static void run_jobs(sv_scorer *sc, sv_job *jobs, uint32_t n) {
    pthread_t th[16];
    run_arg a[16];
    for (uint32_t j = 0; j < n; j++) {
        a[j] = (run_arg){sc, &jobs[j], SQ_OK};
        assert_int_equal(pthread_create(&th[j], NULL, run_job, &a[j]), 0);
    }
    for (uint32_t j = 0; j < n; j++) {
        pthread_join(th[j], NULL);
        assert_int_equal(a[j].rc, SQ_OK);
    }
}

/* The scorer's top k through the bf16 scan: the same ids and the same fp32 scores, bit for
 * bit, as the fp32 path, on a table where the bf16 order differs from the exact one. */
static void test_bf16_scorer_exact(void **state) {
    (void)state;
    sq_rng rng;
    sq_rng_seed(&rng, 5);
    static const sq_model_ops no_ops; /* the jobs bring their vectors: no forward pass */
    sq_model fake = {.ops = &no_ops};
    enum { NJ = 12 };
    const uint32_t ks[NJ] = {1, 10, 10, 10, 50, 3, 10, 200, 1000, 10, 2, 10};
    /* widths (odd too) and catalogues (a small one: k over the items left, a partial panel) */
    const uint32_t shapes[][2] = {{64, 3001}, {7, 3001}, {64, 70}};
    for (size_t si = 0; si < 3; si++) {
        const uint32_t dim = shapes[si][0], ni = shapes[si][1];
        float *Y = trap_table(&rng, ni, dim);
        sv_model fp = {.m = &fake, .fast = 1, .dim = dim, .Y = Y};
        fp.Yp = sv_panels_make(Y, ni, dim);
        sv_model bf = fp;
        bf.Yb = sv_panels_make_bf16(Y, ni, dim);
        assert_non_null(fp.Yp);
        assert_non_null(bf.Yb);
        for (uint32_t i = 0; i < ni; i++) {
            double n2 = 0;
            for (uint32_t d = 0; d < dim; d++)
                n2 += (double)Y[(size_t)i * dim + d] * Y[(size_t)i * dim + d];
            bf.ymax = fmaxf(bf.ymax, (float)(sqrt(n2) * (1 + 1e-6)));
        }
        for (uint32_t team = 1; team <= 2; team++) {
            sv_scorer *sc;
            assert_int_equal(sv_scorer_create(&sc, 1, team, ni, NULL), SQ_OK);
            float *U = malloc(NJ * dim * sizeof *U);
            uint32_t *ex = malloc(NJ * 40 * sizeof *ex), *ids[2][NJ];
            float *sco[2][NJ];
            sv_job jobs[2][NJ];
            for (uint32_t j = 0; j < NJ; j++) {
                /* a user close to an item and its copies: near-ties at the top */
                const uint32_t near = (uint32_t)(sq_rng_uniform(&rng) * ni);
                for (uint32_t d = 0; d < dim; d++)
                    U[j * dim + d] = Y[(size_t)near * dim + d] +
                                     0.05f * (float)sq_rng_normal(&rng) * (j % 3 == 0);
                for (uint32_t e = 0; e < 40; e++) /* exclusions, with repeats */
                    ex[j * 40 + e] = (uint32_t)(sq_rng_uniform(&rng) * ni) % (j == 5 ? 45 : ni);
                for (int p = 0; p < 2; p++) {
                    ids[p][j] = malloc(ks[j] * sizeof **ids);
                    sco[p][j] = malloc(ks[j] * sizeof **sco);
                    jobs[p][j] = (sv_job){.model = p ? &bf : &fp,
                                          .vec = U + j * dim,
                                          .exclude = ex + j * 40,
                                          .n_exclude = j == 9 ? 0 : 40,
                                          .k = ks[j],
                                          .ids = ids[p][j],
                                          .scores = sco[p][j]};
                }
            }
            atomic_ullong nb = 0, nbj = 0, nr = 0;
            sv_scorer_count(sc, &nb, &nbj, &nr);
            run_jobs(sc, jobs[0], NJ);
            assert_int_equal(atomic_load(&nr), 0); /* the fp32 model: no bf16 scan */
            run_jobs(sc, jobs[1], NJ);
            /* every item returned was re-scored; with a large catalogue, few others were */
            uint64_t returned = 0;
            for (uint32_t j = 0; j < NJ; j++)
                returned += jobs[1][j].n;
            assert_true(atomic_load(&nr) >= returned);
            if (ni > 1000)
                assert_true(atomic_load(&nr) < (uint64_t)NJ * ni / 4);
            assert_int_equal(atomic_load(&nbj), 2 * NJ);
            int order_differs = 0;
            float *S = malloc((size_t)ni * sizeof *S);
            for (uint32_t j = 0; j < NJ; j++) {
                assert_int_equal(jobs[1][j].n, jobs[0][j].n);
                assert_memory_equal(ids[1][j], ids[0][j], jobs[0][j].n * sizeof(uint32_t));
                assert_memory_equal(sco[1][j], sco[0][j], jobs[0][j].n * sizeof(float));
                /* would the bf16 scores alone have given another list? */
                sv_dot_panels_bf16(U + j * dim, 1, dim, bf.Yb, ni, S, 0, ni);
                uint32_t *aid = malloc(ks[j] * sizeof *aid);
                float *av = malloc(ks[j] * sizeof *av);
                uint32_t an =
                    sq_topk(S, ni, ks[j], jobs[0][j].exclude, jobs[0][j].n_exclude, aid, av);
                order_differs |=
                    an != jobs[0][j].n || memcmp(aid, ids[0][j], an * sizeof *aid) != 0;
                free(aid);
                free(av);
                for (int p = 0; p < 2; p++) {
                    free(ids[p][j]);
                    free(sco[p][j]);
                }
            }
            if (ni > 1000) {
                assert_true(order_differs);
                assert_int_equal(jobs[0][8].n, 1000);
            } else { /* k over what is left: every item not excluded */
                uint32_t left = 0;
                for (uint32_t i = 0; i < ni; i++) {
                    int x = 0;
                    for (uint32_t e = 0; e < 40; e++)
                        x |= ex[8 * 40 + e] == i;
                    left += !x;
                }
                assert_int_equal(jobs[0][8].n, left);
            }
            free(S);
            free(U);
            free(ex);
            sv_scorer_free(sc);
        }
        sq_free(fp.Yp);
        sq_free(bf.Yb);
        free(Y);
    }
}
#endif

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
#ifdef SV_HAVE_BF16
        cmocka_unit_test(test_bf16_bound), cmocka_unit_test(test_bf16_scorer_exact),
#endif
        cmocka_unit_test(test_json_guard), cmocka_unit_test(test_histogram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
