/* test_vectors.c — every embedding model's vectors are the ones it scores with: for each kind
 * that exposes item_vectors / seq_vectors, score(seq, i) = u(seq) · y_i (BPR-MF adds an item
 * bias: the difference is then the same for every sequence), and kinds without vectors say so. */
#include "testutil.h"

#include "seqrec/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static sq_dataset *D;

static int setup(void **state) {
    (void)state;
    return (D = test_gen_dataset("g", 60, 40, 900, 9)) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    sq_data_close(D);
    return 0;
}

static void check_kind(const char *kind, int has_vectors, int biased) {
    sq_error err = {0};
    sq_config *cfg = sq_config_create();
    sq_config_set(cfg, "maxlen", "8", &err);
    sq_model *m = NULL;
    if (sq_model_create(&m, kind, cfg, D, 3, &err))
        fail_msg("%s: %s", kind, err.msg);
    sq_config_free(cfg);
    assert_int_equal(m->ops->item_vectors != NULL && m->ops->seq_vectors != NULL, has_vectors);
    if (!has_vectors) {
        sq_model_free(m);
        return;
    }
    const uint32_t ni = sq_data_info_of(D)->n_items, B = 3;
    sq_seq q[3];
    const uint64_t *off = sq_data_offsets(D);
    for (uint32_t b = 0; b < B; b++)
        q[b] = sq_model_user_seq(D, b, (uint32_t)(off[b + 1] - off[b]));
    q[2].user = UINT32_MAX; /* a sequence the model never saw as a user */
    uint32_t dim = 0;
    const float *Y = m->ops->item_vectors(m, &dim);
    assert_true(dim > 0);
    float *s = malloc((size_t)B * ni * sizeof *s), *u = malloc((size_t)B * dim * sizeof *u);
    sq_arena *a = sq_arena_create(m->ops->scratch ? m->ops->scratch(m, B, 0) : 64u << 20);
    assert_int_equal(sq_model_score(m, q, B, s, a, &err), SQ_OK);
    sq_arena_reset(a);
    assert_int_equal(m->ops->seq_vectors(m, q, B, u, a, &err), SQ_OK);
    double worst = 0;
    for (uint32_t i = 0; i < ni; i++) {
        double diff0 = 0;
        for (uint32_t b = 0; b < B; b++) {
            double d = 0;
            for (uint32_t c = 0; c < dim; c++)
                d += (double)u[b * dim + c] * Y[(size_t)i * dim + c];
            double diff = s[(size_t)b * ni + i] - d; /* 0, or the item's bias */
            if (b == 0)
                diff0 = diff;
            double off_by = biased ? fabs(diff - diff0) : fabs(diff);
            worst = off_by > worst ? off_by : worst;
        }
    }
    print_message("%s: dim %u, worst |score − u·y%s| %.2g\n", kind, dim, biased ? " − bias" : "",
                  worst);
    assert_true(worst < 1e-4);
    free(s);
    free(u);
    sq_arena_free(a);
    sq_model_free(m);
}

static void test_vectors_score(void **state) {
    (void)state;
    check_kind("sasrec", 1, 0);
    check_kind("gru4rec", 1, 0);
    check_kind("lstm", 1, 0);
    check_kind("caser", 1, 0);
    check_kind("bpr", 1, 1);
    check_kind("pop", 0, 0);
    check_kind("itemknn", 0, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_vectors_score)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
