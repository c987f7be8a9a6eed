/* test_runlog.c — a metrics log read back as runs (train/runlog.h): runs end at their summary
 * line or where the epoch number does not grow; valid_tasks lines join the epoch before them;
 * a fitted model's run has no epochs; names, models and outputs come from the summaries; blank
 * lines are skipped; malformed input is an error naming file and line; an empty file gives no
 * run; a missing file is SQ_ERR_IO. */
#include "testutil.h"

#include "train/runlog.h"

#include <string.h>

static cJSON *read_ok(const char *text) {
    const char *p = test_tmp("log.jsonl");
    test_write_file(p, text, (size_t)-1);
    sq_error err = {0};
    cJSON *runs = NULL;
    if (sq_runlog_read(p, &runs, &err))
        fail_msg("sq_runlog_read: %s", err.msg);
    return runs;
}

static sq_status read_err(const char *text, char *msg, size_t cap) {
    const char *p = test_tmp("bad.jsonl");
    test_write_file(p, text, (size_t)-1);
    sq_error err = {0};
    cJSON *runs = NULL;
    sq_status rc = sq_runlog_read(p, &runs, &err);
    assert_null(runs);
    snprintf(msg, cap, "%s", err.msg);
    return rc;
}

static const char *str(const cJSON *o, const char *k) {
    return cJSON_GetStringValue(cJSON_GetObjectItem(o, k));
}

static int n_epochs(const cJSON *run) {
    return cJSON_GetArraySize(cJSON_GetObjectItem(run, "epochs"));
}

static void test_runs_split(void **state) {
    (void)state;
    cJSON *runs = read_ok("{\"model\":\"pop\",\"epochs\":1,\"output\":\"p.sqm\"}\n"
                          "{\"epoch\":1,\"loss\":3}\n"
                          "\n"
                          "{\"epoch\":2,\"loss\":2,\"valid\":{\"ndcg@10\":0.1}}\n"
                          "{\"valid_tasks\":{\"buy\":{\"auc\":0.7}}}\n"
                          "{\"model\":\"sasrec\",\"epochs\":2,\"output\":\"s.sqm\"}\n"
                          "{\"epoch\":1,\"loss\":4}\n"
                          "{\"epoch\":2,\"loss\":3.5}\n"
                          "{\"epoch\":1,\"loss\":5}\n");
    assert_int_equal(cJSON_GetArraySize(runs), 4);
    const cJSON *r0 = cJSON_GetArrayItem(runs, 0), *r1 = cJSON_GetArrayItem(runs, 1);
    const cJSON *r2 = cJSON_GetArrayItem(runs, 2), *r3 = cJSON_GetArrayItem(runs, 3);
    assert_string_equal(str(r0, "name"), "pop #1");
    assert_string_equal(str(r0, "output"), "p.sqm");
    assert_int_equal(n_epochs(r0), 0);
    assert_string_equal(str(r1, "name"), "sasrec #2");
    assert_string_equal(str(r1, "model"), "sasrec");
    assert_int_equal(n_epochs(r1), 2);
    const cJSON *e2 = cJSON_GetArrayItem(cJSON_GetObjectItem(r1, "epochs"), 1);
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(
                    cJSON_GetObjectItem(cJSON_GetObjectItem(e2, "valid_tasks"), "buy"), "auc")) ==
                0.7);
    /* cut short (epoch 1 after epoch 2), then a run still going: no summary, no model */
    assert_string_equal(str(r2, "name"), "run #3");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(r2, "model")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(r2, "summary")));
    assert_int_equal(n_epochs(r2), 2);
    assert_int_equal(n_epochs(r3), 1);
    assert_string_equal(str(r3, "name"), "run #4");
    cJSON_Delete(runs);
}

static void test_empty(void **state) {
    (void)state;
    cJSON *runs = read_ok("");
    assert_int_equal(cJSON_GetArraySize(runs), 0);
    cJSON_Delete(runs);
}

static void test_errors(void **state) {
    (void)state;
    char msg[SQ_ERR_MSG_MAX];
    assert_int_equal(read_err("{\"epoch\":1}\n[1,2]\n", msg, sizeof msg), SQ_ERR_PARSE);
    assert_non_null(strstr(msg, "bad.jsonl:2: not a JSON object"));
    assert_int_equal(read_err("{\"epoch\":1}\n{\"epoch\":2\n", msg, sizeof msg), SQ_ERR_PARSE);
    assert_non_null(strstr(msg, "bad.jsonl:2:"));
    assert_int_equal(read_err("{\"valid_tasks\":{}}\n", msg, sizeof msg), SQ_ERR_PARSE);
    assert_non_null(strstr(msg, "bad.jsonl:1: valid_tasks before any epoch"));
    assert_int_equal(read_err("{\"epoch\":1}\n{\"what\":1}\n", msg, sizeof msg), SQ_ERR_PARSE);
    assert_non_null(strstr(msg, "bad.jsonl:2: neither"));
    sq_error err = {0};
    cJSON *runs = NULL;
    assert_int_equal(sq_runlog_read(test_tmp("absent.jsonl"), &runs, &err), SQ_ERR_IO);
    assert_non_null(strstr(err.msg, "absent.jsonl"));
    assert_null(runs);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_split),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
