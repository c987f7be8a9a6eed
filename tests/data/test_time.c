/* test_time.c — sq_parse_time and sq_parse_double against a table of strings whose UTC
 * seconds were worked out by hand (days from 1970-01-01 × 86400 + time of day − offset) and
 * checked with `date -u -d STRING +%s`. */
#include "testutil.h"

#include "data/ingest.h"

#include <math.h>
#include <string.h>

typedef struct {
    const char *text;
    int64_t want;
} time_case;

static void test_time_ok(void **state) {
    (void)state;
    static const time_case cases[] = {
        /* epoch seconds, integer and decimal (floored) */
        {"0", 0},
        {"881250949", 881250949},
        {"  881250949 ", 881250949},
        {"881250949.0", 881250949},
        {"881250949.999", 881250949},
        {"1.5e9", 1500000000},
        {"-86400", -86400},
        {"+1000", 1000},
        /* epoch milliseconds: |v| >= 1e11 */
        {"1704067200123", 1704067200},
        {"100000000000", 100000000},
        {"99999999999", 99999999999},
        {"1704067200123.7", 1704067200},
        /* dates: 2024-01-01 is day 19723 since 1970-01-01 */
        {"2024-01-01T00:00:00Z", 1704067200},
        {"2024-01-01t00:00:00z", 1704067200},
        {"2024-01-01 00:00:00", 1704067200},
        {"2024-01-01", 1704067200},
        {"2024-01-01T00:00", 1704067200},
        {"1970-01-01", 0},
        {"1999-12-31T23:59:59", 946684799},
        {"2016-05-09", 1462752000},
        {"1997-09-20", 874713600},
        {"2012-06-30 23:59:59", 1341100799},
        {"2038-01-19T03:14:08Z", 2147483648LL},
        {"2100-01-01", 4102444800LL},
        /* leap years: 2000 (divisible by 400) and 2024 have Feb 29; 1900 does not */
        {"2000-02-29 12:34:56", 951827696},
        {"2000-03-01", 951868800},
        {"1900-03-01", -2203891200LL},
        {"1600-02-29", -11670998400LL},
        /* fractions and offsets: local = UTC + offset */
        {"2017-11-24T10:00:00.750-05:30", 1511537400},
        {"2017-11-24T10:00:00,5Z", 1511517600},
        {"2024-02-29T00:00:00+01:00", 1709161200},
        {"2020-06-15T08:30:00+0200", 1592202600},
        {"2020-06-15T08:30:00+02", 1592202600},
        {"2020-06-15 08:30:00 +02:00", 1592202600},
        {"2020-06-15T08:30:00-00:00", 1592209800},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int64_t t = 12345;
        int rc = sq_parse_time(cases[i].text, strlen(cases[i].text), &t);
        if (rc != 0 || t != cases[i].want)
            fail_msg("'%s': rc %d, got %lld, want %lld", cases[i].text, rc, (long long)t,
                     (long long)cases[i].want);
    }
}

static void test_time_bad(void **state) {
    (void)state;
    static const char *bad[] = {
        "",
        "   ",
        "yesterday",
        "2024-13-01",
        "2024-00-10",
        "2024-01-32",
        "2023-02-29",
        "1900-02-29",
        "2024-04-31",
        "2024-01-01T24:00:00",
        "2024-01-01T10:60",
        "2024-01-01T10:00:60",
        "2024-01-01X",
        "2024-1-01",
        "2024-01-01T",
        "2024-01-01T10:00:00+25:00",
        "2024-01-01T10:00:00.",
        "2024-01-01T10:00:00Zjunk",
        "12abc",
        "1e",
        "nan",
        "inf",
        "0x10",
        "--5",
        "1.2.3",
        "1e400",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int64_t t = 7;
        if (sq_parse_time(bad[i], strlen(bad[i]), &t) == 0)
            fail_msg("'%s' parsed as %lld, should fail", bad[i], (long long)t);
    }
    /* a slice is not read past its length */
    int64_t t;
    assert_int_equal(sq_parse_time("20240101junk", 8, &t), 0);
    assert_int_equal(t, 20240101);
    assert_int_equal(sq_parse_time("2024-01-01junk", 10, &t), 0);
    assert_int_equal(t, 1704067200);
}

static void test_double(void **state) {
    (void)state;
    static const struct {
        const char *text;
        double want;
    } ok[] = {{"0", 0.0},
              {"3", 3.0},
              {"-3.5", -3.5},
              {"4.25", 4.25},
              {".5", 0.5},
              {"5.", 5.0},
              {"+2", 2.0},
              {"1e3", 1000.0},
              {"2.5E-2", 0.025},
              {" 6329.2 ", 6329.2},
              {"3824.76", 3824.76},
              {"0.1", 0.1},
              {"123456789012345678901234", 1.2345678901234568e23}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        double v = -1;
        assert_int_equal(sq_parse_double(ok[i].text, strlen(ok[i].text), &v), 0);
        if (v != ok[i].want && fabs(v - ok[i].want) > 1e-12 * fabs(ok[i].want))
            fail_msg("'%s': got %.17g want %.17g", ok[i].text, v, ok[i].want);
    }
    /* exactly the double nearest to the decimal (correct rounding on the fast path) */
    double v;
    assert_int_equal(sq_parse_double("6329.2", 6, &v), 0);
    assert_true(v == 6329.2);
    static const char *bad[] = {"",    "-",   ".",   "e5",        "1e",    "1e+", "abc",   "1,5",
                                "nan", "NaN", "inf", "-Infinity", "0x1p3", "1 2", "1e999", "--1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (sq_parse_double(bad[i], strlen(bad[i]), &v) == 0)
            fail_msg("'%s' parsed as %g, should fail", bad[i], v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_ok),
        cmocka_unit_test(test_time_bad),
        cmocka_unit_test(test_double),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
