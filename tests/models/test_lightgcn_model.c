/* test_lightgcn_model.c — LightGCN ("lightgcn") behind the model interface and the training
 * loop: its graph holds exactly each user's training items (no validation or test event); the
 * gradient of its loss (BPR on propagated embeddings + L2 on the ego embeddings) matches finite
 * differences for every entry of the table, including rows outside the batch that the
 * propagation reaches; it learns the generator's planted tastes (far above popularity); scores
 * survive save → load bit for bit and equal the dot products of its vectors; a user outside the
 * graph is folded in from its items; a model without a graph says so. */
#include "models/fixture.h"
#include "testutil.h"

#include "models/graphs.h"
#include "seqrec/eval.h"
#include "seqrec/train.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static sq_dataset *D;
static sq_split S;

static int setup(void **state) {
    (void)state;
    return test_gen_loo("g", 1500, 300, 45000, 5, &D, &S);
}

static int teardown(void **state) {
    (void)state;
    test_gen_loo_free(D, &S);
    return 0;
}

static sq_model *train(uint32_t epochs, const char *extra, sq_train_result *tr) {
    const char *const extras[] = {extra, NULL};
    sq_model *m = tm_create("lightgcn", D, NULL, extras, 7);
    tm_train(m, D, &S, epochs, 1, NULL, tr);
    return m;
}

static void eval10(const sq_model *m, double *hr, double *ndcg) {
    *hr = tm_eval10(m, D, &S, ndcg);
}

/* The user–item graph: user u's neighbours are exactly the distinct items of its training
 * events (so its validation and test items only when they also occur in training), weighted
 * 1/sqrt(deg_u deg_i). */
static void test_graph_is_training_only(void **state) {
    (void)state;
    sq_nn_csr A;
    sq_error err = {0};
    assert_int_equal(sq_graph_user_item(&A, D, &S, &err), SQ_OK);
    const uint32_t nu = sq_data_info_of(D)->n_users, ni = sq_data_info_of(D)->n_items;
    assert_int_equal(A.n_rows, nu + ni);
    const uint64_t *off = sq_data_offsets(D);
    const uint32_t *items = sq_data_items(D);
    uint8_t *seen = calloc(ni, 1);
    long held_out_absent = 0;
    for (uint32_t u = 0; u < nu; u++) {
        memset(seen, 0, ni);
        uint32_t distinct = 0;
        for (uint32_t k = 0; k < S.train_end[u]; k++)
            distinct += !seen[items[off[u] + k]]++;
        assert_int_equal(A.row_ptr[u + 1] - A.row_ptr[u], distinct);
        for (uint64_t k = A.row_ptr[u]; k < A.row_ptr[u + 1]; k++) {
            uint32_t i = A.col[k] - nu;
            assert_true(A.col[k] >= nu && seen[i]);
            uint64_t di = A.row_ptr[A.col[k] + 1] - A.row_ptr[A.col[k]];
            assert_float_equal(A.val[k], 1.0 / sqrt((double)distinct * (double)di), 1e-6);
        }
        for (uint64_t k = off[u] + S.train_end[u]; k < off[u + 1]; k++)
            held_out_absent += !seen[items[k]];
    }
    assert_true(held_out_absent > 0); /* held-out items the graph must not (and does not) link */
    free(seen);
    sq_nn_csr_free(&A);
    /* a split of another dataset is refused */
    sq_split bad = S;
    bad.n_users = S.n_users - 1;
    assert_int_equal(sq_graph_user_item(&A, D, &bad, &err), SQ_ERR_ARG);
}

/* Under cold_items, neither graph links a held-out item: it has no user in the user–item graph
 * and only its self-loop in the transition graph; and the transition graph still joins the
 * training events around a held-out one. */
static void test_graphs_leave_out_cold_items(void **state) {
    (void)state;
    sq_split cs = {0};
    sq_error err = {0};
    assert_int_equal(sq_split_cold_items(D, 0.2, 5, &cs, &err), SQ_OK);
    assert_true(cs.n_cold > 0);
    const uint32_t nu = sq_data_info_of(D)->n_users, ni = sq_data_info_of(D)->n_items;
    sq_nn_csr A, T;
    assert_int_equal(sq_graph_user_item(&A, D, &cs, &err), SQ_OK);
    assert_int_equal(sq_graph_item_transitions(&T, D, &cs, &err), SQ_OK);
    uint32_t cold_seen = 0;
    for (uint32_t i = 0; i < ni; i++) {
        if (!cs.item_cold[i])
            continue;
        cold_seen++;
        assert_int_equal(A.row_ptr[nu + i + 1] - A.row_ptr[nu + i], 0);
        assert_int_equal(T.row_ptr[i + 2] - T.row_ptr[i + 1], 1); /* the self-loop */
        assert_int_equal(T.col[T.row_ptr[i + 1]], i + 1);
    }
    assert_int_equal(cold_seen, cs.n_cold);
    /* an edge of the transition graph for a pair of warm events with a cold one between */
    const uint64_t *off = sq_data_offsets(D);
    const uint32_t *items = sq_data_items(D);
    int bridged = 0;
    for (uint32_t u = 0; u < nu && !bridged; u++)
        for (uint32_t k = 2; k < cs.train_end[u] && !bridged; k++) {
            uint32_t a = items[off[u] + k - 2], c = items[off[u] + k - 1], b = items[off[u] + k];
            if (!cs.item_cold[a] && cs.item_cold[c] && !cs.item_cold[b] && a != b) {
                int found = 0;
                for (uint64_t e = T.row_ptr[a + 1]; e < T.row_ptr[a + 2]; e++)
                    found |= T.col[e] == b + 1;
                assert_true(found);
                bridged = 1;
            }
        }
    assert_true(bridged);
    sq_nn_csr_free(&A);
    sq_nn_csr_free(&T);
    sq_split_free(&cs);
}

/* ∂(BPR + L2)/∂E⁽⁰⁾ from train_batch against central differences over the whole table of a tiny
 * data set (every row: the batch's, and the others the propagation reaches). */
typedef struct {
    sq_model *m;
    sq_arena *a;
    sq_batch b;
    double reg;
} grad_ctx;

static double objective(void *ctx) {
    grad_ctx *c = ctx;
    sq_params *ps = c->m->params;
    double l;
    long nt;
    sq_error err = {0};
    sq_arena_reset(c->a);
    sq_params_zero_grad(ps);
    assert_int_equal(c->m->ops->train_batch(c->m, &c->b, c->a, NULL, &l, &nt, &err), SQ_OK);
    const uint32_t nu = c->m->info.n_users, C = 3, K = c->b.n_neg;
    const float *E = ps->p[0].data;
    double r = 0;
    long n = 0;
    for (uint32_t p = 0; p < c->b.B * c->b.T; p++)
        for (uint32_t k = 0; c->b.targets[p] && k < K; k++, n++) {
            size_t rows[3] = {c->b.users[p / c->b.T], nu + c->b.targets[p] - 1,
                              nu + c->b.negs[p * K + k] - 1};
            for (int q = 0; q < 3; q++)
                for (uint32_t d = 0; d < C; d++)
                    r += (double)E[rows[q] * C + d] * E[rows[q] * C + d];
        }
    return l + c->reg / 2 * r / (double)n;
}

static void test_gradient(void **state) {
    (void)state;
    sq_dataset *d;
    sq_split s;
    assert_int_equal(test_gen_loo("tiny", 20, 15, 200, 3, &d, &s), 0);
    sq_error err = {0};
    sq_config *cfg = sq_config_create();
    assert_int_equal(sq_config_set_arg(cfg, "dim=3", &err), SQ_OK);
    assert_int_equal(sq_config_set_arg(cfg, "reg=0.05", &err), SQ_OK);
    assert_int_equal(sq_config_set_arg(cfg, "init_std=0.5", &err), SQ_OK);
    assert_int_equal(sq_config_set_arg(cfg, "layers=2", &err), SQ_OK);
    grad_ctx c = {.reg = 0.05};
    assert_int_equal(sq_model_create(&c.m, "lightgcn", cfg, d, 3, &err), SQ_OK);
    sq_config_free(cfg);
    /* without the graph, training says what is missing */
    uint32_t users[2] = {3, 11}, in[6] = {0};
    uint32_t tg[6] = {5, 6, 7, 0, 8, 9};
    uint32_t negs[12] = {11, 12, 13, 5, 15, 1, 0, 0, 2, 3, 4, 6}; /* ids + 1 */
    c.b = (sq_batch){
        .B = 2, .T = 3, .users = users, .inputs = in, .targets = tg, .negs = negs, .n_neg = 2};
    c.a = sq_arena_create(c.m->ops->scratch(c.m, 2, 3));
    double l;
    long nt;
    assert_int_equal(c.m->ops->train_batch(c.m, &c.b, c.a, NULL, &l, &nt, &err), SQ_ERR_ARG);
    assert_non_null(strstr(err.msg, "graph"));
    assert_int_equal(c.m->ops->fit(c.m, d, &s, NULL, &err), SQ_OK);
    double f0 = objective(&c);
    assert_true(isfinite(f0) && f0 > 0);
    sq_params *ps = c.m->params;
    float *g = malloc(ps->total * sizeof *g);
    memcpy(g, ps->grads, ps->total * sizeof *g);
    /* central differences, step 1e-2, relative error with a floor of 1e-3 */
    double worst = 0;
    for (size_t k = 0; k < ps->total; k++) {
        float *x = ps->values + k, x0 = *x;
        *x = x0 + 1e-2f;
        double fp = objective(&c);
        *x = x0 - 1e-2f;
        double fm = objective(&c);
        *x = x0;
        double num = (fp - fm) / 2e-2,
               rel = fabs(num - g[k]) / fmax(fmax(fabs(num), fabs(g[k])), 1e-3);
        worst = fmax(worst, rel);
    }
    print_message("gradient check over %zu entries: worst relative error %.2e\n", ps->total, worst);
    assert_true(worst < 1e-2);
    /* rows outside the batch got gradient through the graph, and not all of them */
    int reached = 0;
    for (size_t k = 0; k < ps->total; k++)
        reached += g[k] != 0.0f;
    print_message("entries with a gradient: %d of %zu\n", reached, ps->total);
    assert_true(reached > 3 * 9); /* more than the batch's own rows */
    free(g);
    sq_arena_free(c.a);
    sq_model_free(c.m);
    test_gen_loo_free(d, &s);
}

static void test_beats_popularity(void **state) {
    (void)state;
    omp_set_num_threads(1);
    sq_train_result tr;
    sq_model *m = train(12, NULL, &tr);
    sq_model *pop = NULL;
    sq_error err = {0};
    assert_int_equal(sq_model_create(&pop, "pop", NULL, D, 1, &err), SQ_OK);
    assert_int_equal(pop->ops->fit(pop, D, &S, NULL, &err), SQ_OK);
    double h, n, hp, np;
    eval10(m, &h, &n);
    eval10(pop, &hp, &np);
    print_message("test HR@10 / NDCG@10: lightgcn %.4f / %.4f (best epoch %u of %u), "
                  "pop %.4f / %.4f\n",
                  h, n, tr.best_epoch, tr.epochs_run, hp, np);
    assert_true(h > 2.5 * hp);
    assert_true(n > 3.5 * np);
    sq_model_free(pop);
    sq_model_free(m);
}

static void test_save_load_vectors_unknown(void **state) {
    (void)state;
    omp_set_num_threads(1);
    sq_train_result tr;
    sq_model *m = train(3, "dim=16", &tr);
    sq_error err = {0};
    const char *path = test_tmp("lightgcn.sqm");
    assert_int_equal(sq_model_save(m, path, &err), SQ_OK);
    sq_model *l = NULL;
    assert_int_equal(sq_model_load(&l, path, D, &err), SQ_OK);
    assert_string_equal(sq_config_get(l->cfg, "dim"), "16");
    assert_string_equal(sq_config_get(l->cfg, "layers"), "3");
    assert_string_equal(sq_config_get(l->cfg, "reg"), "0.0001");
    /* three known users, one unknown with a history, one unknown with none */
    const uint32_t ni = sq_data_info_of(D)->n_items;
    sq_seq q[5];
    for (uint32_t u = 0; u < 3; u++)
        q[u] = sq_model_user_seq(D, u, S.valid_end[u]);
    q[3] = sq_model_user_seq(D, 4, S.valid_end[4]);
    q[3].user = UINT32_MAX;
    q[4] = q[3];
    q[4].n = 0;
    float *s1 = malloc(5 * ni * sizeof *s1), *s2 = malloc(5 * ni * sizeof *s2);
    sq_arena *ar = sq_arena_create(m->ops->scratch(m, 5, 0));
    assert_int_equal(sq_model_score(m, q, 5, s1, ar, &err), SQ_OK); /* propagates in the arena */
    sq_arena_reset(ar);
    assert_int_equal(sq_model_score(l, q, 5, s2, ar, &err), SQ_OK); /* the table from load */
    assert_memory_equal(s1, s2, 5 * ni * sizeof *s1);
    for (uint32_t i = 0; i < ni; i++)
        assert_true(s1[4 * ni + i] == 0.0f); /* nothing known: a zero vector */
    /* the scores are the dot products of the sequence and item vectors */
    uint32_t dim;
    const float *Y = l->ops->item_vectors(l, &dim);
    assert_int_equal(dim, 16);
    float U[5 * 16];
    sq_arena_reset(ar);
    assert_int_equal(l->ops->seq_vectors(l, q, 5, U, ar, &err), SQ_OK);
    for (int b = 0; b < 4; b++)
        for (uint32_t i = 0; i < ni; i += 37) {
            double dot = 0;
            for (int c = 0; c < 16; c++)
                dot += (double)U[b * 16 + c] * Y[i * 16 + c];
            assert_float_equal(s2[b * ni + i], dot, 1e-4 * (1 + fabs(dot)));
        }
    free(s1);
    free(s2);
    sq_arena_free(ar);
    sq_model_free(m);
    sq_model_free(l);
    /* a model that never saw a split cannot score, and says why */
    sq_model *u = NULL;
    assert_int_equal(sq_model_create(&u, "lightgcn", NULL, D, 1, &err), SQ_OK);
    float one[300];
    ar = sq_arena_create(u->ops->scratch(u, 1, 0));
    assert_int_equal(sq_model_score(u, q, 1, one, ar, &err), SQ_ERR_ARG);
    assert_non_null(strstr(err.msg, "graph"));
    sq_arena_free(ar);
    sq_model_free(u);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graph_is_training_only),
        cmocka_unit_test(test_graphs_leave_out_cold_items),
        cmocka_unit_test(test_gradient),
        cmocka_unit_test(test_beats_popularity),
        cmocka_unit_test(test_save_load_vectors_unknown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
