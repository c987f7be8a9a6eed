/* test_item_feat.c — content features in the item encoder (item_features=on, models/item_enc.h):
 *   - the encoder's backward with features matches finite differences (E, Wf and the GCN
 *     weights; encoders id, graph and id+graph), and table row 0 stays padding;
 *   - a whole training step of SASRec and GRU4Rec with item_features=on (encoders id and
 *     id+graph) matches finite differences on the item table, Wf and the GCN weights;
 *   - GRU4Rec and SASRec with item_features=on learn the generator's structure (items carry
 *     their cluster's tags and title words) far above popularity, and their scores survive
 *     save → load bit for bit;
 *   - item_features=off with item_encoder=id declares nothing more and saves no state;
 *   - bad settings are refused naming the key, and so is a dataset without item text or tags.
 * Central differences: step 1e-2; tolerance 1e-2 for the encoder (linear in each parameter,
 * so the quotient is exact but for float rounding: with Wf at N(0, 1) the table and the probe
 * loss are larger than without features, ~5e-5 of absolute noise, hence a floor of 1e-2 where
 * test_item_enc.c has 1e-3), 2e-2 with floor 1e-2 for whole steps. */
#include "models/fixture.h"
#include "testutil.h"

#include "models/item_enc.h"
#include "seqrec/eval.h"
#include "seqrec/train.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static sq_dataset *D, *TINY, *BARE;
static sq_split S, TS, BS;
static double POP_HR;

/* A tagged generated log (titles and tags: test_gen_tagged) and its leave-one-out split. */
static int gen_tagged(const char *name, uint32_t users, uint32_t items, uint64_t events,
                      sq_dataset **d, sq_split *s) {
    sq_error err = {0};
    if (!(*d = test_gen_tagged(name, users, items, events, 5)))
        return -1;
    if (sq_split_loo(*d, s, &err)) {
        fprintf(stderr, "setup %s: %s\n", name, err.msg);
        return -1;
    }
    return 0;
}

static int setup(void **state) {
    (void)state;
    if (gen_tagged("feat", 1500, 300, 45000, &D, &S) ||
        gen_tagged("feat_tiny", 20, 12, 160, &TINY, &TS) ||
        test_gen_loo("bare", 20, 12, 160, 3, &BARE, &BS)) /* .csv: no text, no tags */
        return -1;
    omp_set_num_threads(1);
    POP_HR = tm_pop_hr10(D, &S);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    test_gen_loo_free(D, &S);
    test_gen_loo_free(TINY, &TS);
    test_gen_loo_free(BARE, &BS);
    return 0;
}

/* ==================================== the encoder's backward ================================ */

typedef struct {
    sq_item_enc e;
    sq_params ps;
    sq_arena *a;
    float *w; /* probe weights [V, C] */
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

static double central(double (*f)(void *), void *ctx, float *x) {
    const float x0 = *x;
    *x = x0 + 1e-2f;
    double fp = f(ctx);
    *x = x0 - 1e-2f;
    double fm = f(ctx);
    *x = x0;
    return (fp - fm) / 2e-2;
}

static double rel_err(double num, double ana, double floor) {
    return fabs(num - ana) / fmax(fmax(fabs(num), fabs(ana)), floor);
}

static void test_encoder_gradient(void **state) {
    (void)state;
    const int V = (int)sq_data_info_of(TINY)->n_items + 1, C = 3;
    const char *names[] = {"id", "graph", "id+graph"};
    for (int kind = SQ_ITEM_ENC_ID; kind <= SQ_ITEM_ENC_ID_GRAPH; kind++) {
        enc_ctx c;
        memset(&c, 0, sizeof c);
        sq_error err = {0};
        sq_params_init(&c.ps);
        size_t shape[2] = {(size_t)V, (size_t)C};
        int emb = sq_params_declare(&c.ps, "item_emb", 2, shape, 1);
        sq_item_enc_opts eo = {.kind = (sq_item_enc_kind)kind, .layers = 2, .feat = 1, .fdim = 256};
        assert_int_equal(sq_item_enc_declare(&c.e, &c.ps, &eo, emb, V, C), 0);
        assert_true(sq_item_enc_runs(&c.e));
        assert_int_equal(sq_params_alloc(&c.ps, &err), SQ_OK);
        sq_rng rng;
        sq_rng_seed(&rng, 9);
        sq_nn_fill_normal(sq_nn_val(&c.ps, emb), (size_t)V * C, 1.0f, &rng);
        sq_nn_fill(sq_nn_val(&c.ps, emb), (size_t)C, 0.0f); /* padding row */
        sq_item_enc_reset(&c.e, &c.ps, &rng);
        /* Wf at N(0, 1) for the check: at its 0.01 init the feature term is below the noise */
        sq_nn_fill_normal(sq_nn_val(&c.ps, c.e.wf), (size_t)256 * C, 1.0f, &rng);
        c.a = sq_arena_create(sq_item_enc_scratch(&c.e));
        sq_item_enc_acts acts;
        assert_int_equal(sq_item_enc_forward(&c.e, &c.ps, c.a, &acts, &err), SQ_ERR_ARG);
        assert_non_null(strstr(err.msg, "item_features"));
        assert_int_equal(sq_item_enc_prepare(&c.e, TINY, &err), SQ_OK);
        assert_int_equal(c.e.F.n_rows, (uint32_t)V - 1);
        assert_int_equal(c.e.F.dim, 256);
        assert_true(c.e.F.row_ptr[c.e.F.n_rows] > 0);
        assert_int_equal(sq_item_enc_fit(&c.e, TINY, &TS, &err), SQ_OK);
        c.w = malloc((size_t)V * C * sizeof *c.w);
        for (int k = 0; k < V * C; k++)
            c.w[k] = (float)sin(1.0 + k);
        sq_params_zero_grad(&c.ps);
        sq_arena_reset(c.a);
        assert_int_equal(sq_item_enc_forward(&c.e, &c.ps, c.a, &acts, &err), SQ_OK);
        for (int k = 0; k < C; k++)
            assert_true(acts.table[k] == 0.0f); /* table row 0 stays padding */
        if (kind == SQ_ITEM_ENC_ID) { /* table = E + F·Wf exactly, computed here the long way */
            const float *E = sq_nn_val(&c.ps, emb), *W = sq_nn_val(&c.ps, c.e.wf);
            for (int i = 1; i < V; i++)
                for (int ch = 0; ch < C; ch++) {
                    double t = E[i * C + ch];
                    for (uint64_t k = c.e.F.row_ptr[i - 1]; k < c.e.F.row_ptr[i]; k++)
                        t += (double)c.e.F.val[k] * W[(size_t)c.e.F.col[k] * C + ch];
                    assert_float_equal(acts.table[i * C + ch], t, 1e-5);
                }
        }
        assert_int_equal(sq_item_enc_backward(&c.e, &c.ps, c.a, &acts, c.w, &err), SQ_OK);
        double worst = 0;
        int wf_nonzero = 0;
        for (size_t k = 0; k < c.ps.n; k++) {
            sq_param *t = &c.ps.p[k];
            /* E's row 0 (padding) is by design given no gradient: id's table reads it as is */
            for (size_t i = (int)k == emb ? (size_t)C : 0; i < t->size; i++) {
                worst = fmax(worst, rel_err(central(enc_loss, &c, &t->data[i]), t->grad[i], 1e-2));
                wf_nonzero += (int)k == c.e.wf && t->grad[i] != 0.0f;
            }
        }
        print_message("encoder %s + features: worst relative error %.2e, %d nonzero in dWf\n",
                      names[kind], worst, wf_nonzero);
        assert_true(worst < 1e-2);
        assert_true(wf_nonzero > 10);
        for (int k = 0; k < C; k++)
            assert_true(c.ps.p[emb].grad[k] == 0.0f); /* nothing flows into padding */
        free(c.w);
        sq_arena_free(c.a);
        sq_item_enc_free(&c.e);
        sq_params_free(&c.ps);
    }
}

/* ============================== whole steps of SASRec and GRU4Rec =========================== */

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
    const char *kinds[] = {"sasrec", "gru4rec"};
    const char *const extra[] = {"hidden=4",
                                 "maxlen=4",
                                 "blocks=1",
                                 "dropout=0",
                                 "graph_layers=1",
                                 "item_features=on",
                                 "item_feature_dim=256",
                                 NULL,
                                 NULL};
    const char *encs[] = {"item_encoder=id", "item_encoder=id+graph"};
    uint32_t in[8] = {0, 3, 5, 2, 7, 1, 4, 6}, tg[8] = {0, 5, 2, 8, 1, 4, 6, 9}, users[2] = {0, 1};
    for (int k = 0; k < 2; k++)
        for (int e = 0; e < 2; e++) {
            const char *x[9];
            memcpy(x, extra, sizeof x);
            x[7] = encs[e];
            if (k)
                x[2] = "layers=1";
            step_ctx c = {.m = create(kinds[k], TINY, x)};
            c.b = (sq_batch){.B = 2, .T = 4, .users = users, .inputs = in, .targets = tg};
            c.a = sq_arena_create(c.m->ops->scratch(c.m, 2, 4));
            sq_error err = {0};
            assert_int_equal(c.m->ops->fit(c.m, TINY, &TS, NULL, &err), SQ_OK);
            step_loss(&c);
            sq_params *ps = c.m->params;
            float *g = malloc(ps->total * sizeof *g);
            memcpy(g, ps->grads, ps->total * sizeof *g);
            double worst = 0;
            int checked = 0, wf_nonzero = 0;
            for (size_t t = 0; t < ps->n; t++) {
                sq_param *p = &ps->p[t];
                if (strcmp(p->name, "item_emb") && strncmp(p->name, "item_enc.", 9))
                    continue;
                const int is_wf = !strcmp(p->name, "item_enc.feat.w");
                for (size_t i = 0; i < p->size; i++, checked++) {
                    const float ana = g[p->data + i - ps->values];
                    worst = fmax(worst, rel_err(central(step_loss, &c, &p->data[i]), ana, 1e-2));
                    wf_nonzero += is_wf && ana != 0.0f;
                }
            }
            print_message("%s %s + features: %d entries (%d nonzero in dWf), worst relative "
                          "error %.2e\n",
                          kinds[k], encs[e], checked, wf_nonzero, worst);
            assert_true(wf_nonzero > 10);
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

/* Scores of a few sequences from m and from m saved and loaded: equal bit for bit. */
static void check_round_trip(sq_model *m, const char *file) {
    sq_error err = {0};
    const char *path = test_tmp(file);
    assert_int_equal(sq_model_save(m, path, &err), SQ_OK);
    sq_model *l = NULL;
    if (sq_model_load(&l, path, D, &err))
        fail_msg("load: %s", err.msg);
    assert_string_equal(sq_config_get(l->cfg, "item_features"), "on");
    const uint32_t ni = sq_data_info_of(D)->n_items;
    sq_seq q[4];
    for (uint32_t u = 0; u < 4; u++)
        q[u] = sq_model_user_seq(D, u, S.valid_end[u]);
    float *s1 = malloc(4 * ni * sizeof *s1), *s2 = malloc(4 * ni * sizeof *s2);
    sq_arena *ar = sq_arena_create(m->ops->scratch(m, 4, 0));
    assert_int_equal(sq_model_score(m, q, 4, s1, ar, &err), SQ_OK);
    sq_arena_reset(ar);
    assert_int_equal(sq_model_score(l, q, 4, s2, ar, &err), SQ_OK);
    assert_memory_equal(s1, s2, 4 * ni * sizeof *s1);
    free(s1);
    free(s2);
    sq_arena_free(ar);
    sq_model_free(l);
}

static void test_learns_and_round_trips(void **state) {
    (void)state;
    const char *const rnn[] = {"hidden=32", "maxlen=20", "lr=0.01", "item_features=on", NULL};
    sq_model *g = train("gru4rec", rnn, 4);
    double hg = hr10(g);
    const char *const sas[] = {"hidden=32", "maxlen=20",        "lr=0.005",
                               "blocks=1",  "item_features=on", NULL};
    sq_model *s = train("sasrec", sas, 3);
    double hs = hr10(s);
    print_message("HR@10 with item features: gru4rec %.4f (4 epochs), sasrec %.4f (3 epochs), "
                  "pop %.4f\n",
                  hg, hs, POP_HR);
    assert_true(hg > 2 * POP_HR);
    assert_true(hs > 2 * POP_HR);
    check_round_trip(g, "gru4rec_feat.sqm");
    check_round_trip(s, "sasrec_feat.sqm");
    sq_model_free(g);
    sq_model_free(s);
}

/* item_encoder=id, item_features=off: the network's own table, no encoder parameter, no state. */
static void test_off_declares_nothing(void **state) {
    (void)state;
    const char *kinds[] = {"sasrec", "gru4rec", "lstm"};
    const char *const none[] = {NULL}, *const on[] = {"item_features=on", NULL};
    for (int k = 0; k < 3; k++) {
        sq_model *off = create(kinds[k], TINY, none), *with = create(kinds[k], TINY, on);
        assert_string_equal(sq_config_get(off->cfg, "item_features"), "off");
        assert_int_equal(with->params->n, off->params->n + 1);
        for (size_t t = 0; t < off->params->n; t++)
            assert_null(strstr(off->params->p[t].name, "item_enc"));
        sq_blob *b = NULL;
        size_t n = 9;
        sq_error err = {0};
        assert_int_equal(off->ops->save_state(off, &b, &n, &err), SQ_OK);
        assert_int_equal(n, 0);
        sq_free(b);
        sq_model_free(off);
        sq_model_free(with);
    }
}

static void test_bad_settings(void **state) {
    (void)state;
    const char *bad[][2] = {{"item_features=yes", "item_features"},
                            {"item_feature_dim=1000", "item_feature_dim"},
                            {"item_feature_dim=65536", "item_feature_dim"}};
    const char *kinds[] = {"sasrec", "gru4rec", "lstm"};
    sq_error err = {0};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 3; i++) {
            sq_config *cfg = sq_config_create();
            assert_int_equal(sq_config_set_arg(cfg, "item_features=on", &err), SQ_OK);
            assert_int_equal(sq_config_set_arg(cfg, bad[i][0], &err), SQ_OK);
            sq_model *m = NULL;
            assert_int_equal(sq_model_create(&m, kinds[k], cfg, TINY, 1, &err), SQ_ERR_ARG);
            assert_non_null(strstr(err.msg, bad[i][1]));
            sq_config_free(cfg);
        }
        sq_config *cfg = sq_config_create();
        assert_int_equal(sq_config_set_arg(cfg, "item_features=on", &err), SQ_OK);
        assert_int_equal(sq_config_set_arg(cfg, k ? "loss=bprmax" : "loss=bce", &err), SQ_OK);
        sq_model *m = NULL;
        assert_int_equal(sq_model_create(&m, kinds[k], cfg, TINY, 1, &err), SQ_ERR_ARG);
        assert_non_null(strstr(err.msg, "item_features=on needs loss=ce"));
        sq_config_free(cfg);
        /* a dataset without any item text or tags */
        cfg = sq_config_create();
        assert_int_equal(sq_config_set_arg(cfg, "item_features=on", &err), SQ_OK);
        assert_int_equal(sq_model_create(&m, kinds[k], cfg, BARE, 1, &err), SQ_ERR_ARG);
        assert_null(m);
        assert_non_null(strstr(err.msg, "item_features"));
        assert_non_null(strstr(err.msg, "text or tags"));
        sq_config_free(cfg);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoder_gradient),       cmocka_unit_test(test_step_gradients),
        cmocka_unit_test(test_learns_and_round_trips), cmocka_unit_test(test_off_declares_nothing),
        cmocka_unit_test(test_bad_settings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
