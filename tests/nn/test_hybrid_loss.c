/* test_hybrid_loss.c — the hybrid (LightFM) model's WARP and BPR losses of one fixed
 * (user, positive, negative) triple against finite differences over every weight: item ids and
 * biases, item feature embeddings and biases (hashed text and tags), user ids and attribute
 * embeddings, and the items of the user's history (whose representations enter the user's).
 * WARP's negative sampling is outside the loss: the triple and its rank weight are fixed.
 *
 * The losses are bilinear in the weights (quadratic when the positive is also in the history),
 * so central differences are exact up to float rounding: eps 1e-2, tol 1e-2, floor 1e-3 (as the
 * other loss checks). Weights with no part in the triple must get exactly zero. */
#include "testutil.h"

#include "gradcheck.h"
#include "models/hybrid.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const gc_opts GC = {.eps = 1e-2, .tol = 1e-2, .floor = 1e-3, .stride = 1};

static sq_dataset *D;
static sq_model *M;

static int setup(void **state) {
    (void)state;
    test_write_file(test_tmp("h.inter"),
                    "user_id:token\titem_id:token\ttimestamp:float\n"
                    "u1\ta\t1\nu1\tb\t2\nu1\tc\t3\nu2\tb\t4\nu2\td\t5\nu2\te\t6\n"
                    "u3\tc\t7\nu3\te\t8\nu3\tf\t9\nu4\ta\t10\nu4\tf\t11\nu4\td\t12\n",
                    (size_t)-1);
    test_write_file(test_tmp("h.item"),
                    "item_id:token\ttitle:token_seq\ttags:token_seq\n"
                    "a\tRed apple\tfruit\nb\tGreen apple pie\tfruit sweet\nc\t苹果派\tsweet\n"
                    "d\tBlue cheese\tdairy\ne\tcheese cake\tdairy sweet\nf\t\t\n",
                    (size_t)-1);
    test_write_file(test_tmp("h.user"),
                    "user_id:token\tgender:token\tage:token\nu1\tF\t30\nu2\tM\t20\n"
                    "u3\tF\t20\nu4\tM\t\n",
                    (size_t)-1);
    sq_error err = {0};
    sq_ingest_opts o = {0};
    sq_ingest *g = NULL;
    sq_config *cfg = sq_config_create();
    int bad = sq_ingest_create(&g, &o, &err) || sq_ingest_file(g, test_tmp("h.inter"), &err) ||
              sq_ingest_write(g, test_tmp("h.sqd"), &err) ||
              sq_data_open(&D, test_tmp("h.sqd"), &err) || sq_config_set(cfg, "dim", "4", &err) ||
              sq_config_set(cfg, "feature_dim", "256", &err) ||
              sq_model_create(&M, "hybrid", cfg, D, 3, &err);
    sq_ingest_free(g);
    sq_config_free(cfg);
    if (bad) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    size_t n;
    float *w = sq_hybrid_weights(M, &n);
    gc_randn(w, n, 0.3f, 11); /* every weight non-zero, the margin still active */
    return 0;
}

static int teardown(void **state) {
    (void)state;
    sq_model_free(M);
    sq_data_close(D);
    return 0;
}

typedef struct {
    sq_hybrid_user u;
    uint32_t i, j;
    float w;
    int bpr;
} triple;

static double loss_fn(void *ctx) {
    triple *t = ctx;
    return sq_hybrid_triple_loss(M, &t->u, t->i, t->j, t->w, t->bpr, NULL);
}

/* Checks one triple; returns its loss. */
static double check(const char *name, triple *t) {
    size_t n;
    float *w = sq_hybrid_weights(M, &n);
    float *g = calloc(n, sizeof *g);
    double loss = sq_hybrid_triple_loss(M, &t->u, t->i, t->j, t->w, t->bpr, g);
    size_t nz = 0;
    for (size_t k = 0; k < n; k++)
        nz += g[k] != 0;
    print_message("%s: loss %.4f, %zu of %zu weights with a gradient\n", name, loss, nz, n);
    assert_true(nz > 20 && nz < n / 2); /* the triple's rows only */
    assert_int_equal(gc_check(name, loss_fn, t, w, g, n, &GC), 0);
    free(g);
    return loss;
}

static uint32_t item(const char *id) {
    return sq_data_find_item(D, id, strlen(id));
}

static void test_warp_triple(void **state) {
    (void)state;
    uint32_t u1 = sq_data_find_user(D, "u1", 2);
    const uint32_t *attrs = sq_data_user_attrs(D) + (size_t)u1 * sq_data_info_of(D)->n_user_attrs;
    uint32_t hist[2] = {item("a"), item("c")};
    triple t = {{u1, attrs, hist, 2}, item("b"), item("e"), 1.7f, 0};
    double loss = check("warp", &t);
    assert_true(loss > 0); /* the hinge is active: away from its kink */
    /* the positive also in the history: x_ui is quadratic in its weights */
    uint32_t hist2[2] = {item("b"), item("d")};
    triple t2 = {{u1, attrs, hist2, 2}, item("b"), item("e"), 2.3f, 0};
    check("warp, positive in history", &t2);
    /* a user the model never saw: attributes and history only */
    triple t3 = {{UINT32_MAX, attrs, hist, 2}, item("c"), item("f"), 1.0f, 0};
    check("warp, new user", &t3);
}

static void test_warp_margin_satisfied(void **state) {
    (void)state;
    /* a negative far below the positive: no loss, no gradient */
    size_t n;
    float *w = sq_hybrid_weights(M, &n);
    float *save = malloc(n * sizeof *save), *g = calloc(n, sizeof *g);
    memcpy(save, w, n * sizeof *save);
    uint32_t i = item("a"), j = item("d");
    triple t = {{UINT32_MAX, NULL, NULL, 0}, i, j, 1.0f, 0};
    /* with no user part p = 0, so x_ui − x_uj = b_i − b_j: lift the positive's id bias */
    double base = sq_hybrid_triple_loss(M, &t.u, i, j, 1.0f, 0, NULL);
    assert_true(base > 0);
    /* b_item sits after the [n_items, dim] id table */
    uint32_t ni = sq_data_info_of(D)->n_items;
    w[(size_t)ni * 4 + i] += (float)base + 1.0f;
    assert_float_equal(sq_hybrid_triple_loss(M, &t.u, i, j, 1.0f, 0, g), 0.0, 0);
    for (size_t k = 0; k < n; k++)
        assert_true(g[k] == 0);
    memcpy(w, save, n * sizeof *save);
    free(save);
    free(g);
}

static void test_bpr_triple(void **state) {
    (void)state;
    uint32_t u2 = sq_data_find_user(D, "u2", 2);
    const uint32_t *attrs = sq_data_user_attrs(D) + (size_t)u2 * sq_data_info_of(D)->n_user_attrs;
    uint32_t hist[1] = {item("d")};
    triple t = {{u2, attrs, hist, 1}, item("e"), item("a"), 1.0f, 1};
    double loss = check("bpr", &t);
    assert_true(loss > 0 && loss < 10);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_warp_triple),
        cmocka_unit_test(test_warp_margin_satisfied),
        cmocka_unit_test(test_bpr_triple),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
