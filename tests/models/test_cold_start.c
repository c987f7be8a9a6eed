/* test_cold_start.c — the cold-start protocols on a generated log whose items carry informative
 * tags (each item's cluster tag, a title from its cluster's words): the splits' invariants,
 * that training never touches a held-out item (batches, negatives and full-softmax losses), and
 * that the content and hybrid models find held-out items through their tags where popularity
 * cannot. */
#include "models/fixture.h"
#include "testutil.h"

#include "seqrec/eval.h"
#include "seqrec/model.h"
#include "seqrec/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static sq_dataset *D;

/* The generator's RecBole output: events in .inter, titles and tags in the .item beside it. */
static int setup(void **state) {
    (void)state;
    return (D = test_gen_tagged("cold", 600, 200, 600 * 25, 7)) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    sq_data_close(D);
    return 0;
}

static void test_cold_items_split(void **state) {
    (void)state;
    sq_split s;
    sq_error err = {0};
    assert_int_equal(sq_split_cold_items(D, 0.1, 42, &s, &err), SQ_OK);
    const sq_data_info *in = sq_data_info_of(D);
    assert_int_equal(s.kind, SQ_SPLIT_COLD_ITEMS);
    assert_int_equal(s.n_cold, 20); /* 10 % of 200 */
    uint32_t marked = 0;
    for (uint32_t i = 0; i < in->n_items; i++)
        marked += s.item_cold[i];
    assert_int_equal(marked, 20);
    const uint64_t *off = sq_data_offsets(D);
    const uint32_t *items = sq_data_items(D);
    for (uint32_t u = 0; u < in->n_users; u++) {
        uint32_t len = (uint32_t)(off[u + 1] - off[u]);
        assert_true(s.train_end[u] <= s.valid_end[u] && s.valid_end[u] <= len);
        if (s.valid_end[u] == s.train_end[u] + 1) { /* validation: the last warm event */
            assert_true(sq_split_trains_on(&s, items[off[u] + s.train_end[u]]));
            for (uint32_t p = s.valid_end[u]; p < len; p++)
                assert_false(sq_split_trains_on(&s, items[off[u] + p]));
        }
    }
    /* the same seed, the same items; another seed, others */
    sq_split s2, s3;
    assert_int_equal(sq_split_make(D, "cold_items", 0, 42, &s2, &err), SQ_OK);
    assert_memory_equal(s.item_cold, s2.item_cold, in->n_items);
    assert_int_equal(sq_split_cold_items(D, 0.1, 43, &s3, &err), SQ_OK);
    assert_memory_not_equal(s.item_cold, s3.item_cold, in->n_items);
    sq_split_free(&s3);
    assert_int_equal(sq_split_cold_items(D, 1.5, 42, &s3, &err), SQ_ERR_ARG);
    sq_split_free(&s);
    sq_split_free(&s2);
    sq_split_free(&s3);
}

static void test_cold_users_split(void **state) {
    (void)state;
    sq_split s;
    sq_error err = {0};
    assert_int_equal(sq_split_make(D, "cold_users", 0, 42, &s, &err), SQ_OK);
    assert_int_equal(s.kind, SQ_SPLIT_COLD_USERS);
    assert_int_equal(s.n_cold, 60);
    const uint64_t *off = sq_data_offsets(D);
    uint32_t cold = 0;
    for (uint32_t u = 0; u < s.n_users; u++) {
        uint32_t len = (uint32_t)(off[u + 1] - off[u]);
        if (s.user_cold[u]) {
            cold++;
            assert_int_equal(s.train_end[u], 0);
            assert_int_equal(s.valid_end[u], 1);
        } else {
            assert_int_equal(s.valid_end[u], len);
        }
    }
    assert_int_equal(cold, 60);
    /* another share and more first events, by protocol name; malformed names refused */
    sq_split s2;
    assert_int_equal(sq_split_make(D, "cold_users:0.2:3", 0, 42, &s2, &err), SQ_OK);
    assert_int_equal(s2.n_cold, 120);
    for (uint32_t u = 0; u < s2.n_users; u++)
        if (s2.user_cold[u])
            assert_true(s2.train_end[u] == 0 && s2.valid_end[u] == 3);
    sq_split_free(&s2);
    assert_int_equal(sq_split_make(D, "cold_items:0.2", 0, 42, &s2, &err), SQ_OK);
    assert_int_equal(s2.n_cold, 40);
    sq_split_free(&s2);
    const char *bad[] = {"cold_items:",      "cold_items:x", "cold_items:0.1:2",
                         "cold_users:0.1:0", "cold_itemsx",  "cold_users:2"};
    for (int k = 0; k < 6; k++)
        assert_int_equal(sq_split_make(D, bad[k], 0, 42, &s2, &err), SQ_ERR_ARG);
    /* evaluation: only the held-out users are tested, never validated */
    sq_model *pop = NULL;
    assert_int_equal(sq_model_create(&pop, "pop", NULL, D, 1, &err), SQ_OK);
    assert_int_equal(pop->ops->fit(pop, D, &s, NULL, &err), SQ_OK);
    sq_eval_opts o = {.k = {10}, .n_k = 1};
    sq_eval_result r;
    assert_int_equal(sq_evaluate(pop, D, &s, &o, &r, &err), SQ_OK);
    assert_int_equal(r.users, 60);
    o.part = SQ_EVAL_VALID;
    assert_int_equal(sq_evaluate(pop, D, &s, &o, &r, &err), SQ_OK);
    assert_int_equal(r.users, 600 - 60);
    o.cold_only = 1; /* only meaningful for held-out items */
    assert_int_equal(sq_evaluate(pop, D, &s, &o, &r, &err), SQ_ERR_ARG);
    sq_model_free(pop);
    sq_split_free(&s);
}

/* BPR trained under cold_items: the held-out items' factor rows are exactly as initialised
 * (no batch had them as input, target or negative), the others moved. */
static void test_training_never_sees_cold_items(void **state) {
    (void)state;
    sq_split s;
    sq_error err = {0};
    assert_int_equal(sq_split_cold_items(D, 0.1, 42, &s, &err), SQ_OK);
    sq_config *cfg = sq_config_create();
    assert_int_equal(sq_config_set(cfg, "epochs", "2", &err), SQ_OK);
    assert_int_equal(sq_config_set(cfg, "dim", "8", &err), SQ_OK);
    assert_int_equal(sq_config_set(cfg, "negatives", "4", &err), SQ_OK);
    sq_model *m = NULL, *init = NULL;
    assert_int_equal(sq_model_create(&m, "bpr", cfg, D, 5, &err), SQ_OK);
    assert_int_equal(sq_model_create(&init, "bpr", cfg, D, 5, &err), SQ_OK);
    for (int pop = 0; pop < 2; pop++) { /* uniform, then popularity negatives */
        sq_train_opts to;
        assert_int_equal(sq_config_set(m->cfg, "neg_sampling", pop ? "pop" : "uniform", &err),
                         SQ_OK);
        assert_int_equal(sq_train_opts_from_config(m->cfg, &to, &err), SQ_OK);
        to.seed = 3;
        sq_train_result tr;
        assert_int_equal(sq_train(m, D, &s, &to, &tr, &err), SQ_OK);
    }
    uint32_t dim, dim0;
    const float *Q = m->ops->item_vectors(m, &dim), *Q0 = init->ops->item_vectors(init, &dim0);
    uint32_t moved_warm = 0;
    for (uint32_t i = 0; i < s.n_items; i++) {
        int same = !memcmp(Q + (size_t)i * dim, Q0 + (size_t)i * dim, dim * sizeof *Q);
        if (s.item_cold[i])
            assert_true(same);
        else
            moved_warm += !same;
    }
    assert_true(moved_warm > 150);
    sq_model_free(m);
    sq_model_free(init);
    sq_config_free(cfg);
    sq_split_free(&s);
}

/* The full-softmax sequence models under cold_items: held-out items are never inputs or
 * targets and leave the softmax (sq_batch.cold_items), so their rows of the item table end
 * exactly as initialised while the warm rows move. Before the exclusion they were negatives of
 * every target and were pushed down: this fails then. */
static void test_softmax_never_sees_cold_items(void **state) {
    (void)state;
    sq_split s;
    sq_error err = {0};
    assert_int_equal(sq_split_cold_items(D, 0.1, 42, &s, &err), SQ_OK);
    const char *kinds[] = {"sasrec", "gru4rec", "caser", "srgnn"};
    for (int k = 0; k < 4; k++) {
        sq_config *cfg = sq_config_create();
        const char *sets[] = {"epochs=2", "hidden=8", "maxlen=10", "valid_every=1"};
        for (int j = 0; j < 4; j++)
            assert_int_equal(sq_config_set_arg(cfg, sets[j], &err), SQ_OK);
        if (!strcmp(kinds[k], "srgnn")) /* its coupled L2 shrinks every row, as weight decay */
            assert_int_equal(sq_config_set_arg(cfg, "l2=0", &err), SQ_OK);
        sq_model *m = NULL, *init = NULL;
        assert_int_equal(sq_model_create(&m, kinds[k], cfg, D, 5, &err), SQ_OK);
        assert_int_equal(sq_model_create(&init, kinds[k], cfg, D, 5, &err), SQ_OK);
        sq_train_opts to;
        assert_int_equal(sq_train_opts_from_config(m->cfg, &to, &err), SQ_OK);
        to.seed = 3;
        sq_train_result tr;
        if (sq_train(m, D, &s, &to, &tr, &err))
            fail_msg("%s: %s", kinds[k], err.msg);
        uint32_t dim, dim0;
        const float *Q = m->ops->item_vectors(m, &dim), *Q0 = init->ops->item_vectors(init, &dim0);
        assert_int_equal(dim, dim0);
        uint32_t moved_warm = 0, moved_cold = 0;
        for (uint32_t i = 0; i < s.n_items; i++) {
            int same = !memcmp(Q + (size_t)i * dim, Q0 + (size_t)i * dim, dim * sizeof *Q);
            if (s.item_cold[i])
                moved_cold += !same;
            else
                moved_warm += !same;
        }
        print_message("%s: %u warm and %u held-out item rows moved\n", kinds[k], moved_warm,
                      moved_cold);
        assert_int_equal(moved_cold, 0);
        assert_true(moved_warm > 150);
        sq_model_free(m);
        sq_model_free(init);
        sq_config_free(cfg);
    }
    sq_split_free(&s);
}

static sq_model *fit(const char *kind, const sq_split *s, const char *const *sets) {
    sq_model *m = tm_create(kind, D, sets, NULL, 1);
    sq_error err = {0};
    assert_int_equal(m->ops->fit(m, D, s, NULL, &err), SQ_OK);
    return m;
}

static void eval_cold(const sq_model *m, const sq_split *s, int cold_only, double *hr10,
                      double *auc) {
    sq_eval_opts o = {.k = {10}, .n_k = 1, .cold_only = cold_only};
    sq_eval_result r;
    sq_error err = {0};
    assert_int_equal(sq_evaluate(m, D, s, &o, &r, &err), SQ_OK);
    assert_true(r.users > 300);
    assert_int_equal(r.candidates, cold_only ? 20 : 200);
    *hr10 = r.m[0][SQ_M_HR].mean;
    *auc = r.auc.mean;
}

static void test_cold_items_found_through_tags(void **state) {
    (void)state;
    sq_split s;
    sq_error err = {0};
    assert_int_equal(sq_split_cold_items(D, 0.1, 42, &s, &err), SQ_OK);
    static const char *const hy_sets[] = {"epochs=8", "dim=16", NULL};
    sq_model *pop = fit("pop", &s, NULL), *content = fit("content", &s, NULL),
             *hybrid = fit("hybrid", &s, hy_sets);
    double hr[3][2], auc[3][2];
    const sq_model *ms[3] = {pop, content, hybrid};
    const char *names[3] = {"pop", "content", "hybrid"};
    for (int k = 0; k < 3; k++) {
        eval_cold(ms[k], &s, 0, &hr[k][0], &auc[k][0]);
        eval_cold(ms[k], &s, 1, &hr[k][1], &auc[k][1]);
        print_message("%-8s all items: HR@10 %.4f AUC %.4f; held-out only: HR@10 %.4f AUC %.4f\n",
                      names[k], hr[k][0], auc[k][0], hr[k][1], auc[k][1]);
    }
    /* popularity never counted a held-out item: below every trained item, tied among them */
    assert_true(hr[0][0] == 0 && auc[0][0] < 0.2);
    assert_float_equal(auc[0][1], 0.5, 1e-9);
    /* the tags place a held-out item in its cluster: both rank them well above chance */
    for (int k = 1; k < 3; k++) {
        assert_true(auc[k][1] > 0.65);
        assert_true(auc[k][0] > auc[0][0] + 0.4);
        assert_true(hr[k][1] > hr[0][1] + 0.15);
    }
    assert_true(hr[1][0] > 0.1); /* content ranks them among all items too */
    sq_model_free(pop);
    sq_model_free(content);
    sq_model_free(hybrid);
    sq_split_free(&s);
}

/* content and hybrid: the scores of a loaded model are those of the model that was saved */
static void test_save_load_exact(void **state) {
    (void)state;
    sq_split s;
    sq_error err = {0};
    assert_int_equal(sq_split_cold_users(D, 0.1, 1, 42, &s, &err), SQ_OK);
    static const char *const hy_sets[] = {"epochs=2", "dim=8", NULL};
    const char *kinds[2] = {"content", "hybrid"};
    for (int k = 0; k < 2; k++) {
        sq_model *m = fit(kinds[k], &s, k ? hy_sets : NULL), *l = NULL;
        const char *path = test_tmp(k ? "hy.sqm" : "ct.sqm");
        assert_int_equal(sq_model_save(m, path, &err), SQ_OK);
        assert_int_equal(sq_model_load(&l, path, D, &err), SQ_OK);
        uint32_t ni = sq_data_info_of(D)->n_items, u = 0;
        while (!s.user_cold[u])
            u++;
        sq_seq q[2] = {sq_model_user_seq(D, 3, 10), sq_model_user_seq(D, u, 1)};
        q[1].user = UINT32_MAX; /* a user never seen: attributes and first event */
        float *a = malloc(2 * ni * sizeof *a), *b = malloc(2 * ni * sizeof *b);
        sq_arena *ar = sq_arena_create(8u << 20);
        assert_int_equal(sq_model_score(m, q, 2, a, ar, &err), SQ_OK);
        sq_arena_reset(ar);
        assert_int_equal(sq_model_score(l, q, 2, b, ar, &err), SQ_OK);
        assert_memory_equal(a, b, 2 * ni * sizeof *a);
        if (l->ops->seq_vectors) { /* the hybrid's vectors give its scores, bias included */
            uint32_t dim;
            const float *Y = l->ops->item_vectors(l, &dim);
            float *v = malloc(2 * dim * sizeof *v);
            sq_arena_reset(ar);
            assert_int_equal(l->ops->seq_vectors(l, q, 2, v, ar, &err), SQ_OK);
            for (uint32_t r = 0; r < 2; r++)
                for (uint32_t i = 0; i < ni; i++) {
                    double dot = 0;
                    for (uint32_t c = 0; c < dim; c++)
                        dot += (double)v[r * dim + c] * Y[(size_t)i * dim + c];
                    assert_float_equal(dot, b[r * ni + i], 1e-4 * (1 + fabs(dot)));
                }
            free(v);
        }
        float mx = a[0], mn = a[0];
        for (uint32_t i = 0; i < ni; i++)
            mx = a[i] > mx ? a[i] : mx, mn = a[i] < mn ? a[i] : mn;
        assert_true(mx > mn); /* not a constant */
        free(a);
        free(b);
        sq_arena_free(ar);
        sq_model_free(m);
        sq_model_free(l);
    }
    sq_split_free(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cold_items_split),
        cmocka_unit_test(test_cold_users_split),
        cmocka_unit_test(test_training_never_sees_cold_items),
        cmocka_unit_test(test_softmax_never_sees_cold_items),
        cmocka_unit_test(test_cold_items_found_through_tags),
        cmocka_unit_test(test_save_load_exact),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
