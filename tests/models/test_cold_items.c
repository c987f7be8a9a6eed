/* test_cold_items.c — items given only by their content features and users by their
 * attributes (model.h, "Cold items and users"), on a generated log whose items carry titles and
 * cluster tags and whose users carry one attribute written here:
 *   - sq_model_featurize of a catalogue item's own text and tags gives the model's row for it
 *     (hybrid, content, gru4rec with item_features=on);
 *   - hybrid trained under cold_items: sq_model_score_features of a held-out item's row is the
 *     model's own score for that item (no id embedding: it had no training event), and its
 *     feature vector is the item's row of item_vectors; for a trained item the op leaves the id
 *     out, so the two differ;
 *   - gru4rec, lstm and sasrec with item_features=on: the op's score of item w's row is the
 *     model's score of w once w's id embedding row is zeroed (table row = F·Wf), and differs
 *     before;
 *   - content: the op's score of item i's row is score's for i;
 *   - models without item features (pop, sasrec with item_features=off) refuse with SQ_ERR_ARG;
 *   - sq_model_user_attrs: hybrid reads the dataset's attribute field (0 with user_features=0),
 *     so does a multi-task sasrec (0 when its inputs leave user_attrs out), sasrec and pop none. */
#include "models/fixture.h"
#include "testutil.h"

#include "seqrec/eval.h"
#include "seqrec/model.h"
#include "seqrec/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static sq_dataset *D;

enum { CAP = 4096 };

static int setup(void **state) {
    (void)state;
    char log[512], sqd[512], users[512];
    snprintf(log, sizeof log, "%s/coldi.inter", test_tmpdir());
    snprintf(users, sizeof users, "%s/coldi.user", test_tmpdir());
    snprintf(sqd, sizeof sqd, "%s/coldi.sqd", test_tmpdir());
    sq_error err = {0};
    sq_gen_opts g = {.users = 300, .items = 100, .events = 6000, .seed = 11};
    if (sq_generate(&g, log, &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    FILE *f = fopen(users, "w");
    if (!f)
        return -1;
    fprintf(f, "user_id:token\tgroup:token\n");
    for (uint32_t u = 0; u < 300; u++)
        fprintf(f, "%u\tg%u\n", u, u % 3);
    fclose(f);
    sq_ingest_opts o = {0};
    sq_ingest *in = NULL;
    int bad = sq_ingest_create(&in, &o, &err) || sq_ingest_file(in, log, &err) ||
              sq_ingest_write(in, sqd, &err) || sq_data_open(&D, sqd, &err);
    sq_ingest_free(in);
    if (bad)
        fprintf(stderr, "setup: %s\n", err.msg);
    return bad ? -1 : 0;
}

static int teardown(void **state) {
    (void)state;
    sq_data_close(D);
    return 0;
}

static sq_model *make(const char *kind, const char *const *sets) {
    return tm_create(kind, D, sets, NULL, 1);
}

/* Item i's text and tags through the model's featuriser, as a one-row sq_features in row. */
typedef struct {
    uint32_t col[CAP];
    float val[CAP];
    uint64_t ptr[2];
    sq_features f;
} one_row;

static void featurize_item(const sq_model *m, uint32_t i, one_row *r) {
    size_t len = 0;
    const char *text = sq_data_item_text(D, i, &len);
    uint32_t nt = 0;
    const uint32_t *tags = sq_data_item_tags(D, i, &nt);
    const char *names[64];
    for (uint32_t k = 0; k < nt && k < 64; k++)
        names[k] = sq_data_tag_name(D, tags[k]);
    uint32_t n = 0;
    sq_error err = {0};
    assert_int_equal(
        sq_model_featurize(m, text, len, names, nt < 64 ? nt : 64, r->col, r->val, CAP, &n, &err),
        SQ_OK);
    assert_true(n > 0);
    r->ptr[0] = 0;
    r->ptr[1] = n;
    r->f = (sq_features){.n_rows = 1, .row_ptr = r->ptr, .col = r->col, .val = r->val};
}

/* The first B dataset users' whole sequences. */
static void user_seqs(sq_seq *q, uint32_t B) {
    const uint64_t *off = sq_data_offsets(D);
    for (uint32_t u = 0; u < B; u++)
        q[u] = sq_model_user_seq(D, u * 7, (uint32_t)(off[u * 7 + 1] - off[u * 7]));
}

/* Scores of item `item` by the model (row of score) and of `row` by the op, for B sequences. */
static void both(const sq_model *m, const sq_seq *q, uint32_t B, uint32_t item, const one_row *r,
                 float *cat, float *op) {
    const uint32_t ni = sq_data_info_of(D)->n_items;
    float *all = malloc((size_t)B * ni * sizeof *all);
    size_t sz = (m->ops->scratch ? m->ops->scratch(m, B, 0) : 64u << 20) + (8u << 20);
    sq_arena *a = sq_arena_create(sz);
    sq_error err = {0};
    assert_non_null(all);
    assert_int_equal(sq_model_score(m, q, B, all, a, &err), SQ_OK);
    for (uint32_t b = 0; b < B; b++)
        cat[b] = all[(size_t)b * ni + item];
    sq_arena_reset(a);
    assert_int_equal(sq_model_score_features(m, q, B, &r->f, op, a, &err), SQ_OK);
    sq_arena_free(a);
    free(all);
}

static void test_featurize_gives_the_catalogue_row(void **state) {
    (void)state;
    static const char *const hy[] = {"epochs=1", "dim=8", NULL};
    static const char *const gru[] = {"item_features=on", "hidden=8", NULL};
    const char *kinds[3] = {"hybrid", "content", "gru4rec"};
    const char *const *sets[3] = {hy, NULL, gru};
    for (int k = 0; k < 3; k++) {
        sq_model *m = make(kinds[k], sets[k]);
        sq_features_opts o;
        const sq_features *F = m->ops->item_features(m, &o);
        assert_non_null(F);
        assert_int_equal(sq_model_has_item_features(m), 1);
        for (uint32_t i = 0; i < 100; i += 9) {
            one_row r;
            featurize_item(m, i, &r);
            assert_int_equal(r.ptr[1], F->row_ptr[i + 1] - F->row_ptr[i]);
            for (uint64_t p = 0; p < r.ptr[1]; p++) {
                assert_int_equal(r.col[p], F->col[F->row_ptr[i] + p]);
                assert_true(fabsf(r.val[p] - F->val[F->row_ptr[i] + p]) < 1e-6f);
            }
        }
        sq_model_free(m);
    }
}

static void test_hybrid_cold_item_is_its_features(void **state) {
    (void)state;
    sq_split s;
    sq_error err = {0};
    assert_int_equal(sq_split_cold_items(D, 0.1, 42, &s, &err), SQ_OK);
    static const char *const sets[] = {"epochs=4", "dim=8", NULL};
    sq_model *m = make("hybrid", sets);
    assert_int_equal(m->ops->fit(m, D, &s, NULL, &err), SQ_OK);
    enum { B = 4 };
    sq_seq q[B];
    user_seqs(q, B);
    uint32_t dim = 0, cold = 0, warm = 0;
    const float *Y = m->ops->item_vectors(m, &dim);
    float *v = malloc(dim * sizeof *v);
    for (uint32_t i = 0; i < 100; i++) {
        one_row r;
        float cat[B], op[B];
        featurize_item(m, i, &r);
        both(m, q, B, i, &r, cat, op);
        assert_int_equal(sq_model_feature_vectors(m, &r.f, v, &err), SQ_OK);
        double diff = 0, vdiff = 0;
        for (uint32_t b = 0; b < B; b++)
            diff = fmax(diff, fabs((double)cat[b] - op[b]) / (1 + fabs((double)cat[b])));
        for (uint32_t c = 0; c < dim; c++)
            vdiff = fmax(vdiff, fabs((double)v[c] - Y[(size_t)i * dim + c]));
        if (s.item_cold[i]) { /* no training event: its score is its features' */
            assert_true(diff < 1e-5);
            assert_true(vdiff < 1e-6);
            cold++;
        } else { /* a trained id embedding, which the op leaves out */
            warm += diff > 1e-3;
        }
    }
    printf("hybrid: %u cold items scored exactly; %u of %u trained items differ\n", cold, warm,
           100 - cold);
    assert_int_equal(cold, s.n_cold);
    assert_true(cold >= 5);
    assert_true(warm > (100 - cold) / 2);
    free(v);
    sq_model_free(m);
    sq_split_free(&s);
}

/* item_features=on: the op's score is the model's once the item's id row is zero. Two models of
 * the same seed: one as created, one whose id rows of the probed items are zeroed before
 * anything is scored (scoring caches the item table). */
static void check_zeroed_id(const char *kind, const char *const *sets) {
    sq_model *m = make(kind, sets), *z = make(kind, sets);
    enum { B = 3 };
    sq_seq q[B];
    user_seqs(q, B);
    sq_param *E = sq_params_find(z->params, "item_emb");
    assert_non_null(E);
    const size_t C = E->shape[1];
    for (uint32_t w = 3; w < 100; w += 31)
        memset(E->data + (size_t)(w + 1) * C, 0, C * sizeof *E->data);
    for (uint32_t w = 3; w < 100; w += 31) {
        one_row r;
        float cat[B], op[B];
        featurize_item(m, w, &r);
        both(m, q, B, w, &r, cat, op);
        double before = 0, after = 0;
        for (uint32_t b = 0; b < B; b++)
            before = fmax(before, fabs((double)cat[b] - op[b]));
        both(z, q, B, w, &r, cat, op);
        for (uint32_t b = 0; b < B; b++)
            after = fmax(after, fabs((double)cat[b] - op[b]) / (1 + fabs((double)cat[b])));
        printf("%s item %u: |score - op| %.3g with its id row, %.3g without\n", kind, w, before,
               after);
        assert_true(before > 1e-4);
        assert_true(after < 1e-5);
    }
    sq_model_free(m);
    sq_model_free(z);
}

static void test_item_features_models_zeroed_id(void **state) {
    (void)state;
    static const char *const gru[] = {"item_features=on", "hidden=8", "maxlen=20", NULL};
    static const char *const sas[] = {"item_features=on", "hidden=8", "maxlen=20", NULL};
    check_zeroed_id("gru4rec", gru);
    check_zeroed_id("lstm", gru);
    check_zeroed_id("sasrec", sas);
}

static void test_content_scores_rows_as_items(void **state) {
    (void)state;
    sq_model *m = make("content", NULL);
    enum { B = 4 };
    sq_seq q[B];
    user_seqs(q, B);
    for (uint32_t i = 0; i < 100; i += 7) {
        one_row r;
        float cat[B], op[B];
        featurize_item(m, i, &r);
        both(m, q, B, i, &r, cat, op);
        for (uint32_t b = 0; b < B; b++)
            assert_true(fabsf(cat[b] - op[b]) < 1e-6f);
    }
    sq_model_free(m);
}

static void test_models_without_features_refuse(void **state) {
    (void)state;
    static const char *const off[] = {"hidden=8", NULL};
    sq_model *ms[2] = {make("pop", NULL), make("sasrec", off)};
    for (int k = 0; k < 2; k++) {
        sq_model *m = ms[k];
        assert_int_equal(sq_model_has_item_features(m), 0);
        uint32_t col[8], n = 5;
        float val[8], out[4];
        sq_error err = {0};
        assert_int_equal(sq_model_featurize(m, "a b", 3, NULL, 0, col, val, 8, &n, &err),
                         SQ_ERR_ARG);
        assert_int_equal(n, 0);
        uint64_t ptr[2] = {0, 0};
        sq_features rows = {.n_rows = 1, .row_ptr = ptr};
        sq_seq q;
        user_seqs(&q, 1);
        assert_int_equal(sq_model_score_features(m, &q, 1, &rows, out, NULL, &err), SQ_ERR_ARG);
        assert_int_equal(sq_model_feature_vectors(m, &rows, out, &err), SQ_ERR_ARG);
        sq_model_free(m);
    }
}

static void test_user_attrs(void **state) {
    (void)state;
    assert_int_equal(sq_data_info_of(D)->n_user_attrs, 1);
    static const char *const hy[] = {"epochs=1", "dim=8", NULL};
    static const char *const hy_off[] = {"epochs=1", "dim=8", "user_features=0", NULL};
    static const char *const sas[] = {"hidden=8", NULL};
    static const char *const mt[] = {"tasks=next_item,next_behaviour", "hidden=8", NULL};
    static const char *const mt_off[] = {"tasks=next_item,next_behaviour", "hidden=8",
                                         "inputs=item,behaviour", NULL};
    sq_model *a = make("hybrid", hy), *b = make("hybrid", hy_off), *c = make("sasrec", sas),
             *p = make("pop", NULL), *t = make("sasrec", mt), *t0 = make("sasrec", mt_off);
    assert_int_equal(sq_model_user_attrs(t), 1); /* multi-task: user_attrs among its inputs */
    assert_int_equal(sq_model_user_attrs(t0), 0);
    sq_model_free(t);
    sq_model_free(t0);
    assert_int_equal(sq_model_user_attrs(a), 1);
    assert_int_equal(sq_model_user_attrs(b), 0);
    assert_int_equal(sq_model_user_attrs(c), 0);
    assert_int_equal(sq_model_user_attrs(p), 0);
    sq_model_free(a);
    sq_model_free(b);
    sq_model_free(c);
    sq_model_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_featurize_gives_the_catalogue_row),
        cmocka_unit_test(test_hybrid_cold_item_is_its_features),
        cmocka_unit_test(test_item_features_models_zeroed_id),
        cmocka_unit_test(test_content_scores_rows_as_items),
        cmocka_unit_test(test_models_without_features_refuse),
        cmocka_unit_test(test_user_attrs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
