/* test_model_file.c — .sqm round trip, and every kind of damage rejected with a message. */
#include "testutil.h"

#include "seqrec/model_file.h"

#include <stdlib.h>
#include <string.h>

static const float W[6] = {1, 2, 3, 4, 5, 6};
static const uint32_t IDS[3] = {7, 8, 9};

static void write_sample(const char *path) {
    sq_blob b[2] = {0};
    snprintf(b[0].name, sizeof b[0].name, "item_emb");
    b[0].dtype = SQ_DT_F32;
    b[0].ndim = 2;
    b[0].shape[0] = 2;
    b[0].shape[1] = 3;
    b[0].data = W;
    b[0].nbytes = sizeof W;
    snprintf(b[1].name, sizeof b[1].name, "neighbours");
    b[1].dtype = SQ_DT_U32;
    b[1].ndim = 1;
    b[1].shape[0] = 3;
    b[1].data = IDS;
    b[1].nbytes = sizeof IDS;
    sq_sqm_header h = {"pop", "{\"hidden\":64,\"loss\":\"ce\"}", 0xdeadbeef12345678ull, 2, 5};
    sq_error e = {0};
    assert_int_equal(sq_sqm_write(path, &h, b, 2, &e), SQ_OK);
}

static void test_round_trip(void **state) {
    (void)state;
    const char *path = test_tmp("m.sqm");
    write_sample(path);
    sq_sqm *m;
    sq_error e = {0};
    assert_int_equal(sq_sqm_read(&m, path, &e), SQ_OK);
    const sq_sqm_header *h = sq_sqm_header_of(m);
    assert_string_equal(h->kind, "pop");
    assert_string_equal(h->config_json, "{\"hidden\":64,\"loss\":\"ce\"}");
    assert_true(h->fingerprint == 0xdeadbeef12345678ull);
    assert_int_equal(h->n_items, 2);
    assert_int_equal(h->n_users, 5);
    assert_int_equal(sq_sqm_count(m), 2);
    const sq_blob *b = sq_sqm_find(m, "item_emb");
    assert_non_null(b);
    assert_int_equal(b->ndim, 2);
    assert_int_equal(b->shape[1], 3);
    assert_memory_equal(b->data, W, sizeof W);
    assert_int_equal((uintptr_t)b->data % 8, 0);
    b = sq_sqm_find(m, "neighbours");
    assert_memory_equal(b->data, IDS, sizeof IDS);
    assert_null(sq_sqm_find(m, "nope"));
    sq_sqm_close(m);
}

static void test_damage(void **state) {
    (void)state;
    const char *path = test_tmp("d.sqm"), *bad = test_tmp("bad.sqm");
    write_sample(path);
    size_t n;
    char *good = test_read_file(path, &n);
    sq_sqm *m;
    sq_error e = {0};
    /* every truncation is rejected */
    for (size_t cut = 0; cut < n; cut += 7) {
        test_write_file(bad, good, cut);
        assert_int_equal(sq_sqm_read(&m, bad, &e), SQ_ERR_FORMAT);
        assert_non_null(strstr(e.msg, "bad.sqm"));
    }
    /* every flipped byte is rejected (magic, version, checksum or content) */
    for (size_t i = 0; i < n; i++) {
        good[i] ^= 0x20;
        test_write_file(bad, good, n);
        assert_int_equal(sq_sqm_read(&m, bad, &e), SQ_ERR_FORMAT);
        good[i] ^= 0x20;
    }
    /* another version says so */
    good[4] = 9;
    test_write_file(bad, good, n);
    assert_int_equal(sq_sqm_read(&m, bad, &e), SQ_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "version 9"));
    free(good);
    assert_int_equal(sq_sqm_read(&m, test_tmp("absent.sqm"), &e), SQ_ERR_IO);
}

static void test_bad_blobs(void **state) {
    (void)state;
    sq_blob b[2] = {0};
    snprintf(b[0].name, sizeof b[0].name, "x");
    b[0].dtype = SQ_DT_F32;
    b[0].ndim = 1;
    b[0].shape[0] = 3;
    b[0].data = W;
    b[0].nbytes = 8; /* wrong size */
    sq_sqm_header h = {"pop", "{}", 1, 1, 1};
    sq_error e = {0};
    const char *path = test_tmp("x.sqm");
    assert_int_equal(sq_sqm_write(path, &h, b, 1, &e), SQ_ERR_ARG);
    b[0].nbytes = 12;
    b[1] = b[0]; /* same name twice */
    assert_int_equal(sq_sqm_write(path, &h, b, 2, &e), SQ_ERR_ARG);
    assert_int_equal(test_system("test -e '%s'", path), 1); /* nothing written */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_damage),
        cmocka_unit_test(test_bad_blobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
