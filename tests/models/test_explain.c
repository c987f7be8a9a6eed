/* test_explain.c — sq_model_explain (occlusion) against contributions computed here by hand:
 * score the whole sequence, score it again without each event, subtract. For item-kNN and for
 * SASRec (through its model scores and, separately, through its vectors), on a generated
 * dataset; plus the order of the reasons and short sequences. */
#include "seqrec/eval.h"
#include "seqrec/model.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static sq_dataset *D;
static sq_split S;

static int setup(void **state) {
    (void)state;
    return test_gen_loo("explain", 120, 80, 3000, 5, &D, &S);
}

static int teardown(void **state) {
    (void)state;
    test_gen_loo_free(D, &S);
    return 0;
}

/* score of item for q without event `drop` (UINT32_MAX: without none) */
static float score_without(const sq_model *m, const sq_seq *q, uint32_t drop, uint32_t item) {
    const uint32_t ni = m->info.n_items;
    uint32_t *it = malloc((q->n + 1) * sizeof *it);
    uint8_t *be = malloc(q->n + 1);
    int64_t *ts = malloc((q->n + 1) * sizeof *ts);
    uint32_t n = 0;
    for (uint32_t k = 0; k < q->n; k++)
        if (k != drop) {
            it[n] = q->items[k];
            be[n] = q->beh ? q->beh[k] : 0;
            ts[n++] = q->ts ? q->ts[k] : 0;
        }
    sq_seq c = *q;
    c.items = it;
    c.beh = q->beh ? be : NULL;
    c.ts = q->ts ? ts : NULL;
    c.scene = NULL;
    c.values = NULL;
    c.ctx = NULL;
    c.n = n;
    if (drop != UINT32_MAX) { /* the same fields as sq_model_explain keeps */
        c.scene = NULL;
    }
    float *sc = malloc(ni * sizeof *sc);
    sq_arena *a = sq_arena_create(m->ops->scratch ? m->ops->scratch(m, 1, 0) : 64u << 20);
    sq_error err = {0};
    assert_int_equal(sq_model_score(m, &c, 1, sc, a, &err), SQ_OK);
    float v = sc[item];
    sq_arena_free(a);
    free(sc);
    free(it);
    free(be);
    free(ts);
    return v;
}

static void check_model(sq_model *m, int use_vectors) {
    const uint64_t *off = sq_data_offsets(D);
    for (uint32_t u = 0; u < 5; u++) {
        sq_seq q = sq_model_user_seq(D, u, (uint32_t)(off[u + 1] - off[u]));
        q.scene = NULL; /* scenes, values: not what this test is about */
        q.values = NULL;
        q.ctx = NULL;
        const uint32_t items[2] = {0, 7}, per = 4;
        sq_reason rs[2 * 4];
        uint32_t nr = 0;
        sq_error err = {0};
        assert_int_equal(sq_model_explain(m, &q, items, 2, per, use_vectors, rs, &nr, &err), SQ_OK);
        assert_int_equal(nr, q.n < per ? q.n : per);
        for (uint32_t i = 0; i < 2; i++) {
            const float base = score_without(m, &q, UINT32_MAX, items[i]);
            float best_seen = INFINITY;
            for (uint32_t j = 0; j < nr; j++) {
                const sq_reason *r = &rs[i * per + j];
                assert_true(r->pos < q.n);
                assert_true(r->contribution <= best_seen); /* largest first */
                best_seen = r->contribution;
                const float want = base - score_without(m, &q, r->pos, items[i]);
                assert_true(fabsf(r->contribution - want) <= 1e-4f * (1.0f + fabsf(want)));
            }
            /* no event left out of the reasons (within the window) contributes more */
            long maxlen = 0;
            if (sq_config_get(m->cfg, "maxlen"))
                sq_config_int(m->cfg, "maxlen", 0, 0, 1 << 20, &maxlen, &err);
            uint32_t W = q.n < 50 ? q.n : 50;
            if (maxlen > 0 && W > (uint32_t)maxlen)
                W = (uint32_t)maxlen;
            for (uint32_t p = q.n - W; p < q.n; p++) {
                int listed = 0;
                for (uint32_t j = 0; j < nr; j++)
                    listed |= rs[i * per + j].pos == p;
                if (!listed && nr == per)
                    assert_true(base - score_without(m, &q, p, items[i]) <=
                                rs[i * per + nr - 1].contribution + 1e-4f);
            }
        }
    }
}

static void test_itemknn(void **state) {
    (void)state;
    sq_model *m = NULL;
    sq_error err = {0};
    assert_int_equal(sq_model_create(&m, "itemknn", NULL, D, 1, &err), SQ_OK);
    assert_int_equal(m->ops->fit(m, D, &S, NULL, &err), SQ_OK);
    check_model(m, 0);
    sq_model_free(m);
}

static void test_sasrec(void **state) {
    (void)state;
    sq_config *cfg = sq_config_create();
    sq_error err = {0};
    assert_int_equal(sq_config_set(cfg, "maxlen", "10", &err), SQ_OK);
    assert_int_equal(sq_config_set(cfg, "hidden", "16", &err), SQ_OK);
    sq_model *m = NULL;
    assert_int_equal(sq_model_create(&m, "sasrec", cfg, D, 3, &err), SQ_OK);
    check_model(m, 0); /* untrained weights are as good as any for this identity */
    check_model(m, 1); /* the vector path: SASRec's scores are exactly its dot products */
    sq_model_free(m);
    sq_config_free(cfg);
}

static void test_short(void **state) {
    (void)state;
    sq_model *m = NULL;
    sq_error err = {0};
    assert_int_equal(sq_model_create(&m, "itemknn", NULL, D, 1, &err), SQ_OK);
    assert_int_equal(m->ops->fit(m, D, &S, NULL, &err), SQ_OK);
    const uint32_t one = 3, item = 5;
    sq_seq q = {.items = &one, .n = 1, .user = UINT32_MAX};
    sq_reason rs[3];
    uint32_t nr = 9;
    assert_int_equal(sq_model_explain(m, &q, &item, 1, 3, 0, rs, &nr, &err), SQ_OK);
    assert_int_equal(nr, 1);
    assert_int_equal(rs[0].pos, 0);
    assert_int_equal(rs[1].pos, UINT32_MAX); /* past the last */
    q.n = 0;
    assert_int_equal(sq_model_explain(m, &q, &item, 1, 3, 0, rs, &nr, &err), SQ_OK);
    assert_int_equal(nr, 0);
    sq_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_itemknn),
        cmocka_unit_test(test_sasrec),
        cmocka_unit_test(test_short),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
