/* test_core.c — status messages, allocation failure hook, arena, RNG, strmap, atomic files. */
#include "testutil.h"

#include "seqrec/core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_errorf(void **state) {
    (void)state;
    sq_error e = {0};
    assert_int_equal(sq_errorf(&e, SQ_ERR_PARSE, "a.csv:%d: ts: %s", 7, "bad\nline"), SQ_ERR_PARSE);
    assert_int_equal(e.code, SQ_ERR_PARSE);
    assert_string_equal(e.msg, "a.csv:7: ts: bad line"); /* newline flattened */
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    sq_errorf(&e, SQ_ERR_IO, "%s", big);
    assert_int_equal(strlen(e.msg), SQ_ERR_MSG_MAX - 1);
    assert_string_equal(e.msg + SQ_ERR_MSG_MAX - 4, "...");
    assert_int_equal(sq_errorf(NULL, SQ_ERR_IO, "x"), SQ_ERR_IO);
    assert_string_equal(sq_strerror(SQ_ERR_NOMEM), "out of memory");
}

static void test_alloc_fail(void **state) {
    (void)state;
    sq_alloc_fail_after(2);
    void *a = sq_malloc(8), *b = sq_malloc(8), *c = sq_malloc(8);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(c);
    assert_int_equal(sq_alloc_fail_after(-1), 3);
    sq_free(a);
    sq_free(b);
    assert_null(sq_mallocn(SIZE_MAX / 2, 4)); /* overflow caught */
    size_t cap = 0;
    int *buf = NULL;
    assert_int_equal(sq_grow((void **)&buf, &cap, 100, sizeof *buf), SQ_OK);
    assert_true(cap >= 100);
    buf[99] = 1;
    sq_free(buf);
}

static void test_arena(void **state) {
    (void)state;
    sq_arena *a = sq_arena_create(1000);
    assert_non_null(a);
    char *p = sq_arena_alloc(a, 10);
    char *q = sq_arena_alloc(a, 10);
    assert_non_null(p);
    assert_non_null(q);
    assert_int_equal((uintptr_t)p % 64, 0);
    assert_int_equal((uintptr_t)q % 64, 0);
    assert_int_equal(q - p, 64);
    assert_null(sq_arena_alloc(a, 1000)); /* does not fit any more */
    assert_int_equal(sq_arena_used(a), 74);
    sq_arena_reset(a);
    assert_int_equal(sq_arena_used(a), 0);
    assert_int_equal(sq_arena_peak(a), 74);
    assert_non_null(sq_arena_alloc(a, 1000));
    sq_arena_free(a);
    sq_arena_free(NULL);
}

static void test_rng(void **state) {
    (void)state;
    sq_rng a, b;
    sq_rng_seed(&a, 42);
    sq_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) assert_true(sq_rng_u64(&a) == sq_rng_u64(&b));
    sq_rng s1 = sq_rng_derive(42, 0), s2 = sq_rng_derive(42, 1);
    assert_true(sq_rng_u64(&s1) != sq_rng_u64(&s2));
    /* below(n) is uniform: chi-square over 10 bins with 100k draws stays small */
    int counts[10] = {0};
    for (int i = 0; i < 100000; i++) counts[sq_rng_below(&a, 10)]++;
    double chi = 0;
    for (int i = 0; i < 10; i++) chi += (counts[i] - 1e4) * (counts[i] - 1e4) / 1e4;
    assert_true(chi < 30.0); /* 9 dof: p(chi > 27.9) = 0.001 */
    double m = 0, v = 0;
    for (int i = 0; i < 100000; i++) {
        double x = sq_rng_normal(&a);
        m += x;
        v += x * x;
    }
    m /= 1e5;
    v = v / 1e5 - m * m;
    assert_true(fabs(m) < 0.02);
    assert_true(fabs(v - 1) < 0.03);
    for (int i = 0; i < 1000; i++) {
        double u = sq_rng_uniform(&a);
        float f = sq_rng_uniformf(&a);
        assert_true(u >= 0 && u < 1);
        assert_true(f >= 0 && f < 1);
    }
    uint32_t perm[50], seen[50] = {0};
    for (uint32_t i = 0; i < 50; i++) perm[i] = i;
    sq_rng_shuffle_u32(&a, perm, 50);
    for (int i = 0; i < 50; i++) seen[perm[i]]++;
    for (int i = 0; i < 50; i++) assert_int_equal(seen[i], 1);
}

static void test_crc(void **state) {
    (void)state;
    assert_int_equal(sq_crc32(0, "123456789", 9), 0xCBF43926u); /* the CRC-32 check value */
    assert_true(sq_hash64("a", 1) != sq_hash64("b", 1));
}

static void test_strmap(void **state) {
    (void)state;
    sq_strmap *m = sq_strmap_create(0);
    assert_non_null(m);
    char key[32];
    for (uint32_t i = 0; i < 20000; i++) {
        int n = snprintf(key, sizeof key, "user%u", i);
        uint32_t id;
        int ins;
        assert_int_equal(sq_strmap_intern(m, key, (size_t)n, &id, &ins), SQ_OK);
        assert_int_equal(id, i);
        assert_int_equal(ins, 1);
    }
    for (uint32_t i = 0; i < 20000; i += 7) {
        int n = snprintf(key, sizeof key, "user%u", i);
        uint32_t id;
        int ins;
        assert_int_equal(sq_strmap_intern(m, key, (size_t)n, &id, &ins), SQ_OK);
        assert_int_equal(id, i);
        assert_int_equal(ins, 0);
        assert_int_equal(sq_strmap_find(m, key, (size_t)n), i);
    }
    assert_int_equal(sq_strmap_find(m, "nobody", 6), UINT32_MAX);
    size_t len;
    assert_string_equal(sq_strmap_key(m, 123, &len), "user123");
    assert_int_equal(len, 7);
    assert_null(sq_strmap_key(m, 20000, NULL));
    assert_int_equal(sq_strmap_count(m), 20000);
    /* the empty string and embedded NULs are keys like any other */
    uint32_t e1, e2;
    assert_int_equal(sq_strmap_intern(m, "", 0, &e1, NULL), SQ_OK);
    assert_int_equal(sq_strmap_intern(m, "a\0b", 3, &e2, NULL), SQ_OK);
    assert_true(e1 != e2);
    assert_int_equal(sq_strmap_find(m, "a\0b", 3), e2);
    sq_strmap_free(m);
    sq_strmap_free(NULL);
}

static void test_strmap_nomem(void **state) {
    (void)state;
    /* Fail each allocation in turn: every failure is reported, nothing leaks (ASan). */
    for (long k = 0; k < 40; k++) {
        sq_alloc_fail_after(k);
        sq_strmap *m = sq_strmap_create(0);
        if (!m) continue;
        sq_status rc = SQ_OK;
        char key[16];
        for (int i = 0; i < 200 && rc == SQ_OK; i++) {
            uint32_t id;
            rc = sq_strmap_intern(m, key, (size_t)snprintf(key, sizeof key, "k%d", i), &id, NULL);
        }
        if (rc != SQ_OK) assert_int_equal(rc, SQ_ERR_NOMEM);
        /* whatever got in is still findable */
        for (size_t i = 0; i < sq_strmap_count(m); i++) {
            size_t len;
            const char *k2 = sq_strmap_key(m, (uint32_t)i, &len);
            assert_int_equal(sq_strmap_find(m, k2, len), i);
        }
        sq_strmap_free(m);
    }
    sq_alloc_fail_after(-1);
}

static void test_afile(void **state) {
    (void)state;
    const char *path = test_tmp("out.txt");
    sq_error e = {0};
    sq_afile *f;
    assert_int_equal(sq_afile_open(&f, path, &e), SQ_OK);
    fputs("hello", sq_afile_stream(f));
    assert_int_equal(access(path, F_OK), -1); /* not there until commit */
    assert_int_equal(sq_afile_commit(f, &e), SQ_OK);
    size_t n;
    char *s = test_read_file(path, &n);
    assert_string_equal(s, "hello");
    free(s);
    /* abort leaves the old file untouched and no temporary behind */
    assert_int_equal(sq_afile_open(&f, path, &e), SQ_OK);
    fputs("half", sq_afile_stream(f));
    sq_afile_abort(f);
    s = test_read_file(path, &n);
    assert_string_equal(s, "hello");
    free(s);
    assert_int_equal(test_system("ls '%s' | grep -c tmp >/dev/null", test_tmpdir()), 1);
    /* unwritable place: clear error naming the path */
    assert_int_equal(sq_afile_open(&f, "/nonexistent-dir/x.sqd", &e), SQ_ERR_IO);
    assert_non_null(strstr(e.msg, "/nonexistent-dir/x.sqd"));
}

static void test_fmt_count(void **state) {
    (void)state;
    char b[32];
    assert_string_equal(sq_fmt_count(b, sizeof b, 1000209), "1,000,209");
    assert_string_equal(sq_fmt_count(b, sizeof b, 999), "999");
    assert_string_equal(sq_fmt_count(b, sizeof b, 0), "0");
}

static void test_progress_plain(void **state) {
    (void)state;
    const char *path = test_tmp("progress.txt");
    FILE *f = fopen(path, "w");
    sq_progress_bar b;
    sq_progress_bar_init(&b, f, 0);
    assert_int_equal(b.tty, 0);
    /* a quick stage says nothing */
    sq_progress_bar_update(&b, "quick", 0, 10, "rows");
    sq_progress_bar_update(&b, "quick", 10, 10, "rows");
    /* a long one: a line every 5 s (time simulated by moving the stage's clock back) */
    sq_progress_bar_update(&b, "reading", 0, 100, "rows");
    sq_progress_bar_update(&b, "reading", 20, 100, "rows"); /* too soon: not printed */
    b.t_start -= 6;
    b.t_last -= 6;
    sq_progress_bar_update(&b, "reading", 50, 100, "rows");
    sq_progress_bar_update(&b, "reading", 100, 100, "rows");
    sq_progress_bar_done(&b);
    fclose(f);
    char *s = test_read_file(path, NULL);
    assert_null(strstr(s, "quick"));
    assert_null(strstr(s, "reading: 0/100"));
    assert_null(strstr(s, "20/100"));
    assert_non_null(strstr(s, "reading: 50/100 rows (50%)"));
    assert_non_null(strstr(s, "reading: 100/100 rows (100%)"));
    free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errorf),      cmocka_unit_test(test_alloc_fail),
        cmocka_unit_test(test_arena),       cmocka_unit_test(test_rng),
        cmocka_unit_test(test_crc),         cmocka_unit_test(test_strmap),
        cmocka_unit_test(test_strmap_nomem), cmocka_unit_test(test_afile),
        cmocka_unit_test(test_fmt_count),   cmocka_unit_test(test_progress_plain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
