/* test_config.c — config from defaults, files (JSON and key = value), --set; typed getters. */
#include "testutil.h"

#include "seqrec/core.h"

#include <stdlib.h>
#include <string.h>

static void test_set_get(void **state) {
    (void)state;
    sq_error e = {0};
    sq_config *c = sq_config_create();
    assert_int_equal(sq_config_set(c, "hidden", "64", &e), SQ_OK);
    assert_int_equal(sq_config_default(c, "hidden", "32", &e), SQ_OK); /* kept */
    assert_int_equal(sq_config_default(c, "lr", "0.001", &e), SQ_OK);
    assert_int_equal(sq_config_set_arg(c, "loss=bce", &e), SQ_OK);
    assert_int_equal(sq_config_set_arg(c, "noequals", &e), SQ_ERR_ARG);
    assert_int_equal(sq_config_set(c, "bad key", "1", &e), SQ_ERR_ARG);
    long h;
    double lr;
    int loss;
    assert_int_equal(sq_config_int(c, "hidden", 0, 1, 4096, &h, &e), SQ_OK);
    assert_int_equal(h, 64);
    assert_int_equal(sq_config_int(c, "absent", 7, 1, 10, &h, &e), SQ_OK);
    assert_int_equal(h, 7);
    assert_int_equal(sq_config_int(c, "hidden", 0, 1, 32, &h, &e), SQ_ERR_ARG);
    assert_non_null(strstr(e.msg, "hidden"));
    assert_int_equal(sq_config_double(c, "lr", 0, 0, 1, &lr, &e), SQ_OK);
    assert_true(lr == 0.001);
    assert_int_equal(sq_config_int(c, "loss", 0, 0, 9, &h, &e), SQ_ERR_ARG);
    assert_non_null(strstr(e.msg, "'bce' is not an integer"));
    assert_int_equal(sq_config_choice(c, "loss", "ce|bce|sampled", 0, &loss, &e), SQ_OK);
    assert_int_equal(loss, 1);
    sq_config_set(c, "loss", "bc", &e);
    assert_int_equal(sq_config_choice(c, "loss", "ce|bce|sampled", 0, &loss, &e), SQ_ERR_ARG);
    char *j = sq_config_to_json(c);
    assert_string_equal(j, "{\"hidden\":64,\"lr\":0.001,\"loss\":\"bc\"}");
    sq_config *d = sq_config_create();
    assert_int_equal(sq_config_from_json(d, j, "model", &e), SQ_OK);
    assert_string_equal(sq_config_get(d, "hidden"), "64");
    assert_string_equal(sq_config_get(d, "lr"), "0.001");
    assert_int_equal(sq_config_count(d), 3);
    sq_free(j);
    sq_config *cl = sq_config_clone(c);
    assert_string_equal(sq_config_get(cl, "loss"), "bc");
    sq_config_free(cl);
    sq_config_free(c);
    sq_config_free(d);
}

/* Numbers written back: integers as "%ld" (no exponent), the others as "%g". */
static void test_set_num(void **state) {
    (void)state;
    sq_config *c = sq_config_create();
    sq_error err = {0};
    assert_int_equal(sq_config_set_num(c, "epochs", 1000000, 1, &err), SQ_OK);
    assert_string_equal(sq_config_get(c, "epochs"), "1000000");
    assert_int_equal(sq_config_set_num(c, "lr", 0.005, 0, &err), SQ_OK);
    assert_string_equal(sq_config_get(c, "lr"), "0.005");
    assert_int_equal(sq_config_set_num(c, "big", 1000000, 0, &err), SQ_OK);
    assert_string_equal(sq_config_get(c, "big"), "1e+06");
    assert_int_equal(sq_config_set_num(c, "bad key", 1, 1, &err), SQ_ERR_ARG);
    sq_config_free(c);
}

static void test_files(void **state) {
    (void)state;
    sq_error e = {0};
    const char *kv = test_tmp("a.conf");
    test_write_file(kv, "# comment\nhidden = 128\n\nlr=0.01  # trailing\n", (size_t)-1);
    sq_config *c = sq_config_create();
    assert_int_equal(sq_config_load(c, kv, &e), SQ_OK);
    assert_string_equal(sq_config_get(c, "hidden"), "128");
    assert_string_equal(sq_config_get(c, "lr"), "0.01");
    const char *js = test_tmp("b.json");
    test_write_file(js, "{\"maxlen\": 50, \"model\": \"sasrec\", \"tied\": true}", (size_t)-1);
    assert_int_equal(sq_config_load(c, js, &e), SQ_OK);
    assert_string_equal(sq_config_get(c, "maxlen"), "50");
    assert_string_equal(sq_config_get(c, "tied"), "true");
    const char *bad = test_tmp("c.conf");
    test_write_file(bad, "a = 1\nthis line is wrong\n", (size_t)-1);
    assert_int_equal(sq_config_load(c, bad, &e), SQ_ERR_PARSE);
    assert_non_null(strstr(e.msg, "c.conf:2:"));
    test_write_file(bad, "{\"a\": [1, 2]}", (size_t)-1);
    assert_int_equal(sq_config_load(c, bad, &e), SQ_ERR_PARSE);
    assert_int_equal(sq_config_load(c, test_tmp("missing.conf"), &e), SQ_ERR_IO);
    sq_config_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_get),
        cmocka_unit_test(test_set_num),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
