/* testutil.h — small helpers shared by the test binaries (cmocka). */
#ifndef SEQREC_TESTUTIL_H
#define SEQREC_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the three headers above first */
#include <cmocka.h>

#include "seqrec/data.h"

/* Exit code ctest reads as "skipped" (SKIP_RETURN_CODE). */
enum { TEST_SKIP = 77 };

/* Path of a real data set file under $SEQREC_DATA (../shared/data), or NULL when it is absent
 * (the caller then skips with a message naming the file). Static buffer. */
const char *test_data_path(const char *rel);
/* Path of a fixture under tests/fixtures. Static buffer. */
const char *test_fixture(const char *rel);
/* A fresh temporary directory for this test binary (removed at exit). */
const char *test_tmpdir(void);
/* "<tmpdir>/<name>" in a static rotating buffer (8 slots). */
const char *test_tmp(const char *name);
/* Writes n bytes (or a C string when n == (size_t)-1) to path; fails the test on error. */
void test_write_file(const char *path, const char *data, size_t n);
/* Reads a whole file; returns malloc'd bytes (NUL-terminated) and its size. */
char *test_read_file(const char *path, size_t *n);
/* A generated log (the synthetic generator with planted structure) ingested with default
 * options and opened: "<tmpdir>/<name>.csv" and ".sqd". NULL, with the error on stderr, when
 * a step fails. Close with sq_data_close. */
struct sq_dataset *test_gen_dataset(const char *name, uint32_t users, uint32_t items,
                                    uint64_t events, uint64_t seed);
/* The same from the generator's RecBole output: "<name>.inter" and the ".item" beside it with
 * each item's title and tags (for the content-feature tests). */
struct sq_dataset *test_gen_tagged(const char *name, uint32_t users, uint32_t items,
                                   uint64_t events, uint64_t seed);
/* test_gen_dataset and its leave-one-out split: 0, or -1 with the reason on stderr (a cmocka
 * group setup can return it). Free both with test_gen_loo_free. */
int test_gen_loo(const char *name, uint32_t users, uint32_t items, uint64_t events, uint64_t seed,
                 sq_dataset **d, sq_split *s);
void test_gen_loo_free(sq_dataset *d, sq_split *s);
/* Runs a shell command; returns its exit status. */
int test_system(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
