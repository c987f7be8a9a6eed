/* test_features.c — hashed TF-IDF item rows checked against hand-computed values, UTF-8
 * Chinese text cut into character n-grams, empty text, user attributes as one-hot rows. */
#include "testutil.h"

#include "seqrec/features.h"
#include "seqrec/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static sq_dataset *D;

/* Three items: a "Red apple, apple", b "red", c no text and the tag "fruit"; two users with
 * a gender and an age attribute (user 2's age missing). */
static int setup(void **state) {
    (void)state;
    test_write_file(test_tmp("f.inter"),
                    "user_id:token\titem_id:token\ttimestamp:float\n"
                    "u1\ta\t1\nu1\tb\t2\nu2\tc\t3\nu2\ta\t4\n",
                    (size_t)-1);
    test_write_file(test_tmp("f.item"),
                    "item_id:token\ttitle:token_seq\ttags:token_seq\n"
                    "a\tRed apple, apple\t\nb\tred\t\nc\t\tfruit\n",
                    (size_t)-1);
    test_write_file(test_tmp("f.user"),
                    "user_id:token\tgender:token\tage:token\nu1\tF\t30\nu2\tM\t\n", (size_t)-1);
    sq_error err = {0};
    sq_ingest_opts o = {0};
    sq_ingest *g = NULL;
    if (sq_ingest_create(&g, &o, &err) || sq_ingest_file(g, test_tmp("f.inter"), &err) ||
        sq_ingest_write(g, test_tmp("f.sqd"), &err) || sq_data_open(&D, test_tmp("f.sqd"), &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        sq_ingest_free(g);
        return -1;
    }
    sq_ingest_free(g);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    sq_data_close(D);
    return 0;
}

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x > y ? -1 : x < y;
}

/* The values of row r, largest first, into out; returns how many. */
static uint32_t row_values(const sq_features *f, uint32_t r, float *out) {
    uint32_t n = (uint32_t)(f->row_ptr[r + 1] - f->row_ptr[r]);
    memcpy(out, f->val + f->row_ptr[r], n * sizeof *out);
    qsort(out, n, sizeof *out, cmp_desc);
    for (uint64_t p = f->row_ptr[r] + 1; p < f->row_ptr[r + 1]; p++)
        assert_true(f->col[p - 1] < f->col[p]); /* sorted, distinct */
    return n;
}

static void test_tfidf_hand_computed(void **state) {
    (void)state;
    sq_features f;
    sq_error err = {0};
    sq_features_opts o = {.dim = 1u << 20};
    assert_int_equal(sq_item_features_build(D, &o, &f, &err), SQ_OK);
    assert_int_equal(f.n_rows, 3);
    assert_int_equal(f.dim, 1u << 20);
    float v[8];
    uint32_t a = sq_data_find_item(D, "a", 1), b = sq_data_find_item(D, "b", 1),
             c = sq_data_find_item(D, "c", 1);
    /* a: red (tf 1, df 2), apple (tf 2, df 1), "red apple" (tf 1, df 1); the comma breaks the
     * pair "apple apple". idf = ln((1 + 3) / (1 + df)) + 1: red 1.287682, apple 1.693147;
     * weights 1.287682, 3.386294, 1.693147 over their norm 3.998987. */
    assert_int_equal(row_values(&f, a, v), 3);
    assert_float_equal(v[0], 0.8467890f, 1e-5);
    assert_float_equal(v[1], 0.4233945f, 1e-5);
    assert_float_equal(v[2], 0.3220024f, 1e-5);
    assert_int_equal(row_values(&f, b, v), 1); /* one feature: weight 1 after normalising */
    assert_float_equal(v[0], 1.0f, 1e-6);
    assert_int_equal(row_values(&f, c, v), 1); /* the tag alone */
    assert_float_equal(v[0], 1.0f, 1e-6);
    /* b's "red" is a's "red"; c's tag shares no column with the text */
    uint32_t red = f.col[f.row_ptr[b]];
    int found = 0;
    for (uint64_t p = f.row_ptr[a]; p < f.row_ptr[a + 1]; p++)
        found |= f.col[p] == red;
    assert_true(found);
    assert_float_equal(f.idf[red], (float)(log(4.0 / 3.0) + 1.0), 1e-6);
    /* a new item featurised with the saved IDF gets the same row as the build */
    uint32_t col[8];
    float val[8];
    uint32_t n = 0;
    assert_int_equal(sq_features_row(&f, "RED apple; Apple", 16, NULL, 0, col, val, 8, &n, &err),
                     SQ_OK);
    assert_int_equal(n, 3);
    for (uint32_t k = 0; k < n; k++) {
        assert_int_equal(col[k], f.col[f.row_ptr[a] + k]);
        assert_float_equal(val[k], f.val[f.row_ptr[a] + k], 1e-6);
    }
    /* too little room is an error, not a cut row */
    assert_int_equal(sq_features_row(&f, "red apple", 9, NULL, 0, col, val, 2, &n, &err),
                     SQ_ERR_LIMIT);
    sq_features_free(&f);
    sq_features_free(&f); /* a no-op on a freed (zeroed) struct */
}

static void test_chinese_and_empty(void **state) {
    (void)state;
    sq_features f = {0};
    f.dim = 1u << 20;
    f.idf = malloc(f.dim * sizeof *f.idf);
    for (uint32_t c = 0; c < f.dim; c++)
        f.idf[c] = 1.0f;
    uint32_t col[32];
    float val[32];
    uint32_t n = 0;
    sq_error err = {0};
    /* 蓝色手机: 4 characters and 3 adjacent pairs, 7 features of equal weight */
    const char *zh = "蓝色手机";
    assert_int_equal(sq_features_row(&f, zh, strlen(zh), NULL, 0, col, val, 32, &n, &err), SQ_OK);
    assert_int_equal(n, 7);
    for (uint32_t k = 0; k < n; k++)
        assert_float_equal(val[k], 0.3779645f, 1e-6);
    /* mixed: "VIVO X100 蓝色": words vivo, x100, the pair "vivo x100", then 蓝, 色, 蓝色; a tag;
     * fullwidth "ＶＩＶＯ" folds to "vivo" (same column as the word) */
    const char *mix = "VIVO X100 蓝色";
    const char *tags[] = {"brand=VIVO"};
    assert_int_equal(sq_features_row(&f, mix, strlen(mix), tags, 1, col, val, 32, &n, &err), SQ_OK);
    assert_int_equal(n, 7);
    uint32_t c1[4];
    float v1[4];
    uint32_t n1 = 0;
    assert_int_equal(
        sq_features_row(&f, "ＶＩＶＯ", strlen("ＶＩＶＯ"), NULL, 0, c1, v1, 4, &n1, &err), SQ_OK);
    assert_int_equal(n1, 1);
    int found = 0;
    for (uint32_t k = 0; k < n; k++)
        found |= col[k] == c1[0];
    assert_true(found);
    /* a CJK character between words breaks the pair: "a 中 b" has a, b, 中 and no bigram */
    assert_int_equal(
        sq_features_row(&f, "a 中 b", strlen("a 中 b"), NULL, 0, col, val, 32, &n, &err), SQ_OK);
    assert_int_equal(n, 3);
    /* empty and punctuation-only text, invalid UTF-8: empty rows or bytes as separators */
    assert_int_equal(sq_features_row(&f, "", 0, NULL, 0, col, val, 32, &n, &err), SQ_OK);
    assert_int_equal(n, 0);
    assert_int_equal(sq_features_row(&f, "... ,;!", 7, NULL, 0, col, val, 32, &n, &err), SQ_OK);
    assert_int_equal(n, 0);
    assert_int_equal(sq_features_row(&f, "ab\xff\xfe", 4, NULL, 0, col, val, 32, &n, &err), SQ_OK);
    assert_int_equal(n, 1);
    assert_int_equal(sq_features_row(&f, "\xe8\x93", 2, NULL, 0, col, val, 32, &n, &err), SQ_OK);
    assert_int_equal(n, 0); /* a truncated sequence at the end */
    free(f.idf);
    f.idf = NULL;
    assert_int_equal(sq_features_row(&f, "a", 1, NULL, 0, col, val, 32, &n, &err), SQ_ERR_ARG);
}

static void test_dim_choice_and_errors(void **state) {
    (void)state;
    sq_features f;
    sq_error err = {0};
    assert_int_equal(sq_item_features_build(D, NULL, &f, &err), SQ_OK);
    assert_int_equal(f.dim, 1024); /* 5 distinct features: the smallest dimension */
    sq_features_free(&f);
    sq_features_opts bad = {.dim = 1000};
    assert_int_equal(sq_item_features_build(D, &bad, &f, &err), SQ_ERR_ARG);
    assert_non_null(strstr(err.msg, "power of two"));
    sq_features_opts tags_only = {.dim = 1024, .no_text = 1};
    assert_int_equal(sq_item_features_build(D, &tags_only, &f, &err), SQ_OK);
    assert_int_equal(f.row_ptr[f.n_rows], 1); /* only c's tag */
    sq_features_free(&f);
}

static void test_user_attributes(void **state) {
    (void)state;
    sq_features f;
    sq_error err = {0};
    assert_int_equal(sq_user_features_build(D, &f, &err), SQ_OK);
    const sq_data_info *in = sq_data_info_of(D);
    assert_int_equal(in->n_user_attrs, 2);
    uint32_t g = sq_data_user_attr_size(D, 0);
    assert_int_equal(f.dim, g + sq_data_user_attr_size(D, 1));
    assert_null(f.idf);
    uint32_t u1 = sq_data_find_user(D, "u1", 2), u2 = sq_data_find_user(D, "u2", 2);
    assert_int_equal(f.row_ptr[u1 + 1] - f.row_ptr[u1], 2);
    assert_int_equal(f.row_ptr[u2 + 1] - f.row_ptr[u2], 1); /* age missing */
    assert_true(f.col[f.row_ptr[u1]] < g);                  /* gender first */
    assert_true(f.col[f.row_ptr[u1] + 1] >= g);             /* then age */
    assert_true(f.col[f.row_ptr[u1]] != f.col[f.row_ptr[u2]]);
    assert_float_equal(f.val[f.row_ptr[u1]], 1.0f, 0);
    sq_features_free(&f);
}

/* The content model's scores are the cosines of the rows above: after [a], b scores a's weight
 * of "red" (0.322002) and c (no shared feature) 0; after [b, a] the profile is
 * x_a + 0.8 x_b, of norm 1.468064, so b scores (0.322002 + 0.8) / 1.468064 = 0.764275 and
 * a (1 + 0.8 · 0.322002) / 1.468064 = 0.856641. */
static void test_content_model_cosines(void **state) {
    (void)state;
    sq_error err = {0};
    sq_config *cfg = sq_config_create();
    assert_int_equal(sq_config_set(cfg, "feature_dim", "1048576", &err), SQ_OK);
    sq_model *m = NULL;
    assert_int_equal(sq_model_create(&m, "content", cfg, D, 1, &err), SQ_OK);
    uint32_t a = sq_data_find_item(D, "a", 1), b = sq_data_find_item(D, "b", 1),
             c = sq_data_find_item(D, "c", 1);
    uint32_t s1[1] = {a}, s2[2] = {b, a};
    sq_seq q[3] = {{.items = s1, .n = 1, .user = UINT32_MAX},
                   {.items = s2, .n = 2, .user = UINT32_MAX},
                   {.items = NULL, .n = 0, .user = UINT32_MAX}};
    float out[9];
    sq_arena *ar = sq_arena_create(m->ops->scratch(m, 3, 0));
    assert_int_equal(sq_model_score(m, q, 3, out, ar, &err), SQ_OK);
    assert_float_equal(out[a], 1.0f, 1e-6);
    assert_float_equal(out[b], 0.3220024f, 1e-6);
    assert_float_equal(out[c], 0.0f, 0);
    assert_float_equal(out[3 + b], 0.7642749f, 1e-6);
    assert_float_equal(out[3 + a], 0.8566413f, 1e-6);
    assert_float_equal(out[3 + c], 0.0f, 0);
    for (int i = 0; i < 3; i++) /* an empty sequence: no profile, every score 0 */
        assert_float_equal(out[6 + i], 0.0f, 0);
    sq_arena_free(ar);
    sq_model_free(m);
    sq_config_free(cfg);
}

/* Every allocation of the builders failing in turn: a clean SQ_ERR_NOMEM (nothing leaks,
 * under the sanitizers), then success once enough allocations go through. */
static void test_out_of_memory(void **state) {
    (void)state;
    sq_error err = {0};
    int ok = 0;
    for (long n = 0; n < 200 && !ok; n++) {
        sq_features f;
        sq_alloc_fail_after(n);
        sq_status rc = sq_item_features_build(D, NULL, &f, &err);
        sq_alloc_fail_after(-1);
        assert_true(rc == SQ_OK || rc == SQ_ERR_NOMEM);
        ok = rc == SQ_OK;
        sq_features_free(&f);
    }
    assert_true(ok);
    ok = 0;
    for (long n = 0; n < 50 && !ok; n++) {
        sq_features f;
        sq_alloc_fail_after(n);
        sq_status rc = sq_user_features_build(D, &f, &err);
        sq_alloc_fail_after(-1);
        assert_true(rc == SQ_OK || rc == SQ_ERR_NOMEM);
        ok = rc == SQ_OK;
        sq_features_free(&f);
    }
    assert_true(ok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tfidf_hand_computed),   cmocka_unit_test(test_chinese_and_empty),
        cmocka_unit_test(test_dim_choice_and_errors), cmocka_unit_test(test_user_attributes),
        cmocka_unit_test(test_out_of_memory),         cmocka_unit_test(test_content_model_cosines),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
