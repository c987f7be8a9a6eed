/* test_item_enc.c — the item encoder (src/models/item_enc.c) and its use by SASRec, GRU4Rec and
 * LSTM (item_encoder=graph|id+graph):
 *   - the item-transition graph holds exactly the training transitions (plus self-loops), none
 *     of the held-out ones;
 *   - the encoder's backward matches finite differences (E and every GCN weight, both kinds);
 *   - a whole training step of each model with an encoder matches finite differences on the
 *     item table and the GCN weights (dropout 0, so the step is a deterministic function);
 *   - SASRec and GRU4Rec with id+graph learn the planted structure (far above popularity),
 *     scores survive save → load bit for bit and equal the dot products of their vectors;
 *   - bad settings are refused with a message naming the key, and a model never given a split
 *     says it has no graph.
 * Central differences: step 1e-2, relative error with a floor, tolerance 1e-2 with floor 1e-3
 * for the encoder (linear), 2e-2 with floor 1e-2 for whole steps (as test_layers.c: the loss,
 * ~2.4, is computed in float, ~1e-5 of noise in a difference quotient at this step). */
#include "models/fixture.h"
#include "testutil.h"

#include "models/item_enc.h"
#include "seqrec/eval.h"
#include "seqrec/train.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static sq_dataset *D, *TINY;
static sq_split S, TS;
static double POP_HR;

static int setup(void **state) {
    (void)state;
    sq_error err = {0};
    if (test_gen_loo("g", 1500, 300, 45000, 5, &D, &S) ||
        test_gen_loo("tiny", 20, 12, 160, 3, &TINY, &TS))
        return -1;
    omp_set_num_threads(1);
    sq_model *pop = NULL;
    if (sq_model_create(&pop, "pop", NULL, D, 1, &err) || pop->ops->fit(pop, D, &S, NULL, &err))
        return -1;
    sq_eval_opts eo = {.k = {10}, .n_k = 1};
    sq_eval_result r;
    sq_status rc = sq_evaluate(pop, D, &S, &eo, &r, &err);
    POP_HR = r.m[0][SQ_M_HR].mean;
    sq_model_free(pop);
    return rc ? -1 : 0;
}

static int teardown(void **state) {
    (void)state;
    test_gen_loo_free(D, &S);
    test_gen_loo_free(TINY, &TS);
    return 0;
}

/* ================================= the item-transition graph ================================ */

static void test_transition_graph(void **state) {
    (void)state;
    sq_nn_csr A;
    sq_error err = {0};
    assert_int_equal(sq_graph_item_transitions(&A, D, &S, &err), SQ_OK);
    const uint32_t nu = sq_data_info_of(D)->n_users, ni = sq_data_info_of(D)->n_items;
    const uint32_t V = ni + 1;
    assert_int_equal(A.n_rows, V);
    assert_int_equal(A.row_ptr[1], 0); /* padding: no edge, no loop */
    uint8_t *adj = calloc((size_t)V * V, 1);
    const uint64_t *off = sq_data_offsets(D);
    const uint32_t *items = sq_data_items(D);
    for (uint32_t u = 0; u < nu; u++)
        for (uint32_t k = 1; k < S.train_end[u]; k++) {
            uint32_t i = items[off[u] + k - 1] + 1, j = items[off[u] + k] + 1;
            adj[(size_t)i * V + j] = adj[(size_t)j * V + i] = 1;
        }
    for (uint32_t i = 1; i < V; i++)
        adj[(size_t)i * V + i] = 1;
    uint64_t want = 0;
    for (size_t k = 0; k < (size_t)V * V; k++)
        want += adj[k];
    assert_int_equal(A.row_ptr[V], want);
    for (uint32_t r = 0; r < V; r++)
        for (uint64_t k = A.row_ptr[r]; k < A.row_ptr[r + 1]; k++)
            assert_true(adj[(size_t)r * V + A.col[k]]);
    /* the held-out transitions (last training event → validation → test) that training never
     * shows are not in the graph */
    long held_out = 0;
    for (uint32_t u = 0; u < nu; u++)
        for (uint64_t k = off[u] + (S.train_end[u] ? S.train_end[u] : 1); k < off[u + 1]; k++) {
            uint32_t i = items[k - 1] + 1, j = items[k] + 1;
            held_out += i != j && !adj[(size_t)i * V + j];
        }
    print_message("held-out transitions absent from the graph: %ld\n", held_out);
    assert_true(held_out > 0);
    free(adj);
    sq_nn_csr_free(&A);
}

/* ==================================== the encoder's backward ================================ */

typedef struct {
    sq_item_enc e;
    sq_params ps;
    sq_arena *a;
    float *w; /* probe weights [V, C] */
    float *dtable;
} enc_ctx;

static double enc_loss(void *ctx) {
    enc_ctx *c = ctx;
    sq_item_enc_acts acts;
    sq_arena_reset(c->a);
    assert_int_equal(sq_item_enc_forward(&c->e, &c->ps, c->a, &acts, NULL), SQ_OK);
    double l = 0;
    for (size_t k = 0; k < (size_t)c->e.V * c->e.C; k++)
        l += (double)c->w[k] * acts.table[k];
    return l;
}

static double central_h(double (*f)(void *), void *ctx, float *x, float h) {
    const float x0 = *x;
    *x = x0 + h;
    double fp = f(ctx);
    *x = x0 - h;
    double fm = f(ctx);
    *x = x0;
    return (fp - fm) / (2.0 * (double)h);
}

/* For the whole steps (nonlinear): a small step. */
static double central(double (*f)(void *), void *ctx, float *x) {
    return central_h(f, ctx, x, 1e-2f);
}

/* The encoder's table is linear in each single parameter (no nonlinearity between the GCN
 * layers), so its central difference has no truncation error at any step: a large one keeps
 * float rounding in the forward far below the gradients compared. With 1e-2, id+graph's worst
 * error under clang was 1.1e-2 (rounding, not a wrong gradient). */
static double central_linear(double (*f)(void *), void *ctx, float *x) {
    return central_h(f, ctx, x, 0.25f);
}

static double rel_err(double num, double ana, double floor) {
    return fabs(num - ana) / fmax(fmax(fabs(num), fabs(ana)), floor);
}

static void test_encoder_gradient(void **state) {
    (void)state;
    const int V = (int)sq_data_info_of(TINY)->n_items + 1, C = 3;
    for (int kind = SQ_ITEM_ENC_GRAPH; kind <= SQ_ITEM_ENC_ID_GRAPH; kind++) {
        enc_ctx c;
        memset(&c, 0, sizeof c);
        sq_error err = {0};
        sq_params_init(&c.ps);
        size_t shape[2] = {(size_t)V, (size_t)C};
        int emb = sq_params_declare(&c.ps, "item_emb", 2, shape, 1);
        sq_item_enc_opts eo = {.kind = (sq_item_enc_kind)kind, .layers = 2};
        assert_int_equal(sq_item_enc_declare(&c.e, &c.ps, &eo, emb, V, C), 0);
        assert_int_equal(sq_params_alloc(&c.ps, &err), SQ_OK);
        sq_rng rng;
        sq_rng_seed(&rng, 9);
        sq_nn_fill_normal(sq_nn_val(&c.ps, emb), (size_t)V * C, 1.0f, &rng);
        sq_nn_fill(sq_nn_val(&c.ps, emb), (size_t)C, 0.0f); /* padding row */
        sq_item_enc_reset(&c.e, &c.ps, &rng);
        c.a = sq_arena_create(sq_item_enc_scratch(&c.e));
        sq_item_enc_acts acts;
        assert_int_equal(sq_item_enc_forward(&c.e, &c.ps, c.a, &acts, &err), SQ_ERR_ARG);
        assert_non_null(strstr(err.msg, "graph"));
        assert_int_equal(sq_item_enc_fit(&c.e, TINY, &TS, &err), SQ_OK);
        c.w = malloc((size_t)V * C * sizeof *c.w);
        for (int k = 0; k < V * C; k++)
            c.w[k] = (float)sin(1.0 + k);
        sq_params_zero_grad(&c.ps);
        assert_int_equal(sq_item_enc_forward(&c.e, &c.ps, c.a, &acts, &err), SQ_OK);
        for (int k = 0; k < C; k++)
            assert_true(acts.table[k] == 0.0f); /* table row 0 stays padding */
        assert_int_equal(sq_item_enc_backward(&c.e, &c.ps, c.a, &acts, c.w, &err), SQ_OK);
        assert_int_equal(c.ps.p[emb].n_touched, (size_t)V - 1);
        double worst = 0;
        for (size_t k = 0; k < c.ps.n; k++) {
            sq_param *t = &c.ps.p[k];
            for (size_t i = 0; i < t->size; i++)
                worst = fmax(worst,
                             rel_err(central_linear(enc_loss, &c, &t->data[i]), t->grad[i], 1e-3));
        }
        print_message("encoder %s: worst relative error %.2e\n",
                      kind == SQ_ITEM_ENC_GRAPH ? "graph" : "id+graph", worst);
        assert_true(worst < 1e-2);
        for (int k = 0; k < C; k++)
            assert_true(c.ps.p[emb].grad[k] == 0.0f); /* nothing flows into padding */
        free(c.w);
        sq_arena_free(c.a);
        sq_item_enc_free(&c.e);
        sq_params_free(&c.ps);
    }
}

/* ============================== whole steps of the three models ============================= */

static sq_model *create(const char *kind, const sq_dataset *d, const char *const *extra) {
    sq_error err = {0};
    sq_config *cfg = sq_config_create();
    for (int i = 0; extra[i]; i++)
        assert_int_equal(sq_config_set_arg(cfg, extra[i], &err), SQ_OK);
    sq_model *m = NULL;
    if (sq_model_create(&m, kind, cfg, d, 7, &err))
        fail_msg("create %s: %s", kind, err.msg);
    sq_config_free(cfg);
    return m;
}

typedef struct {
    sq_model *m;
    sq_arena *a;
    sq_batch b;
} step_ctx;

static double step_loss(void *ctx) {
    step_ctx *c = ctx;
    double l;
    long nt;
    sq_error err = {0};
    sq_arena_reset(c->a);
    sq_params_zero_grad(c->m->params);
    if (c->m->ops->train_batch(c->m, &c->b, c->a, NULL, &l, &nt, &err))
        fail_msg("step: %s", err.msg);
    return l;
}

static void test_step_gradients(void **state) {
    (void)state;
    const char *kinds[] = {"sasrec", "gru4rec", "lstm"};
    const char *const extra[] = {"hidden=4",       "maxlen=4", "blocks=1", "dropout=0",
                                 "graph_layers=2", NULL,       NULL};
    const char *encs[] = {"item_encoder=graph", "item_encoder=id+graph"};
    /* 2 sequences of 4 (one left-padded), item ids + 1 */
    uint32_t in[8] = {0, 3, 5, 2, 7, 1, 4, 6}, tg[8] = {0, 5, 2, 8, 1, 4, 6, 9}, users[2] = {0, 1};
    for (int k = 0; k < 3; k++)
        for (int e = 0; e < 2; e++) {
            const char *x[7];
            memcpy(x, extra, sizeof x);
            x[5] = encs[e];
            if (strcmp(kinds[k], "sasrec"))
                x[2] = "layers=1";
            step_ctx c = {.m = create(kinds[k], TINY, x)};
            c.b = (sq_batch){.B = 2, .T = 4, .users = users, .inputs = in, .targets = tg};
            c.a = sq_arena_create(c.m->ops->scratch(c.m, 2, 4));
            sq_error err = {0};
            double l;
            long nt;
            assert_int_equal(c.m->ops->train_batch(c.m, &c.b, c.a, NULL, &l, &nt, &err),
                             SQ_ERR_ARG); /* no graph before fit */
            assert_non_null(strstr(err.msg, "graph"));
            assert_int_equal(c.m->ops->fit(c.m, TINY, &TS, NULL, &err), SQ_OK);
            step_loss(&c);
            sq_params *ps = c.m->params;
            float *g = malloc(ps->total * sizeof *g);
            memcpy(g, ps->grads, ps->total * sizeof *g);
            double worst = 0;
            int checked = 0;
            for (size_t t = 0; t < ps->n; t++) {
                sq_param *p = &ps->p[t];
                if (strcmp(p->name, "item_emb") && strncmp(p->name, "item_enc.", 9))
                    continue;
                for (size_t i = 0; i < p->size; i++, checked++)
                    worst = fmax(worst, rel_err(central(step_loss, &c, &p->data[i]),
                                                g[p->data + i - ps->values], 1e-2));
            }
            print_message("%s %s: %d entries, worst relative error %.2e\n", kinds[k], encs[e],
                          checked, worst);
            assert_true(checked > 40);
            assert_true(worst < 2e-2);
            free(g);
            sq_arena_free(c.a);
            sq_model_free(c.m);
        }
}

/* ======================================= learning, files ==================================== */

static sq_model *train(const char *kind, const char *const *extra, uint32_t epochs) {
    sq_model *m = create(kind, D, extra);
    sq_train_result tr;
    tm_train(m, D, &S, epochs, 1, NULL, &tr);
    return m;
}

static double hr10(const sq_model *m) {
    return tm_eval10(m, D, &S, NULL);
}

/* Scores of a few sequences from m and from m saved and loaded: equal bit for bit, and equal to
 * the dot products of the loaded model's sequence and item vectors. */
static void check_round_trip(sq_model *m, const char *file) {
    sq_error err = {0};
    const char *path = test_tmp(file);
    assert_int_equal(sq_model_save(m, path, &err), SQ_OK);
    sq_model *l = NULL;
    if (sq_model_load(&l, path, D, &err))
        fail_msg("load: %s", err.msg);
    assert_string_equal(sq_config_get(l->cfg, "item_encoder"), "id+graph");
    const uint32_t ni = sq_data_info_of(D)->n_items;
    sq_seq q[4];
    for (uint32_t u = 0; u < 4; u++)
        q[u] = sq_model_user_seq(D, u, S.valid_end[u]);
    float *s1 = malloc(4 * ni * sizeof *s1), *s2 = malloc(4 * ni * sizeof *s2);
    sq_arena *ar = sq_arena_create(m->ops->scratch(m, 4, 0));
    assert_int_equal(sq_model_score(m, q, 4, s1, ar, &err), SQ_OK); /* computes the table */
    sq_arena_reset(ar);
    assert_int_equal(sq_model_score(l, q, 4, s2, ar, &err), SQ_OK); /* the cache from load */
    assert_memory_equal(s1, s2, 4 * ni * sizeof *s1);
    uint32_t dim;
    const float *Y = l->ops->item_vectors(l, &dim);
    assert_non_null(Y);
    float *U = malloc(4 * dim * sizeof *U);
    sq_arena_reset(ar);
    assert_int_equal(l->ops->seq_vectors(l, q, 4, U, ar, &err), SQ_OK);
    for (int b = 0; b < 4; b++)
        for (uint32_t i = 0; i < ni; i += 29) {
            double dot = 0;
            for (uint32_t c = 0; c < dim; c++)
                dot += (double)U[b * dim + c] * Y[i * dim + c];
            assert_float_equal(s2[b * ni + i], dot, 1e-4 * (1 + fabs(dot)));
        }
    free(U);
    free(s1);
    free(s2);
    sq_arena_free(ar);
    sq_model_free(l);
}

static void test_learns_and_round_trips(void **state) {
    (void)state;
    const char *const rnn[] = {"hidden=32", "maxlen=20", "lr=0.01", "item_encoder=id+graph", NULL};
    sq_model *g = train("gru4rec", rnn, 4);
    double hg = hr10(g);
    const char *const sas[] = {
        "hidden=32", "maxlen=20", "lr=0.005", "blocks=1", "item_encoder=id+graph", NULL};
    sq_model *s = train("sasrec", sas, 3);
    double hs = hr10(s);
    print_message(
        "HR@10 with id+graph: gru4rec %.4f (4 epochs), sasrec %.4f (3 epochs), pop %.4f\n", hg, hs,
        POP_HR);
    assert_true(hg > 2 * POP_HR);
    assert_true(hs > 2 * POP_HR);
    check_round_trip(g, "gru4rec_graph.sqm");
    check_round_trip(s, "sasrec_graph.sqm");
    sq_model_free(g);
    sq_model_free(s);
}

static void test_bad_settings(void **state) {
    (void)state;
    const char *bad[][2] = {{"item_encoder=gcn", "item_encoder"},
                            {"graph_layers=9", "graph_layers"}};
    const char *kinds[] = {"sasrec", "gru4rec"};
    sq_error err = {0};
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 2; i++) {
            sq_config *cfg = sq_config_create();
            assert_int_equal(sq_config_set_arg(cfg, "item_encoder=graph", &err), SQ_OK);
            assert_int_equal(sq_config_set_arg(cfg, bad[i][0], &err), SQ_OK);
            sq_model *m = NULL;
            assert_int_equal(sq_model_create(&m, kinds[k], cfg, TINY, 1, &err), SQ_ERR_ARG);
            assert_non_null(strstr(err.msg, bad[i][1]));
            sq_config_free(cfg);
        }
        sq_config *cfg = sq_config_create();
        assert_int_equal(sq_config_set_arg(cfg, "item_encoder=graph", &err), SQ_OK);
        assert_int_equal(sq_config_set_arg(cfg, k ? "loss=bprmax" : "loss=bce", &err), SQ_OK);
        sq_model *m = NULL;
        assert_int_equal(sq_model_create(&m, kinds[k], cfg, TINY, 1, &err), SQ_ERR_ARG);
        assert_non_null(strstr(err.msg, "needs loss=ce"));
        sq_config_free(cfg);
    }
    /* never given a split: scoring says there is no graph */
    const char *const x[] = {"item_encoder=graph", NULL};
    sq_model *m = create("sasrec", TINY, x);
    sq_seq q = sq_model_user_seq(TINY, 0, TS.valid_end[0]);
    float *out = malloc(sq_data_info_of(TINY)->n_items * sizeof *out);
    sq_arena *ar = sq_arena_create(m->ops->scratch(m, 1, 0));
    assert_int_equal(sq_model_score(m, &q, 1, out, ar, &err), SQ_ERR_ARG);
    assert_non_null(strstr(err.msg, "graph"));
    free(out);
    sq_arena_free(ar);
    sq_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transition_graph), cmocka_unit_test(test_encoder_gradient),
        cmocka_unit_test(test_step_gradients),   cmocka_unit_test(test_learns_and_round_trips),
        cmocka_unit_test(test_bad_settings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
