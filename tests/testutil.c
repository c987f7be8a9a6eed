/* testutil.c — see testutil.h. */
#define _DEFAULT_SOURCE
#include "testutil.h"

#include "seqrec/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static void remove_tmpdir(void) {
    if (tmpdir[0] && !getenv("SEQREC_KEEP_TMP")) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmpdir);
    }
}

const char *test_tmpdir(void) {
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/seqrec-test-XXXXXX");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(1);
        }
        atexit(remove_tmpdir);
    }
    return tmpdir;
}

const char *test_tmp(const char *name) {
    static char buf[8][512];
    static int slot;
    char *b = buf[slot++ % 8];
    snprintf(b, 512, "%s/%s", test_tmpdir(), name);
    return b;
}

const char *test_data_path(const char *rel) {
    static char buf[1024];
    const char *root = getenv("SEQREC_DATA");
    if (!root || !*root)
        root = "../shared/data";
    snprintf(buf, sizeof buf, "%s/%s", root, rel);
    struct stat st;
    return stat(buf, &st) == 0 ? buf : NULL;
}

const char *test_fixture(const char *rel) {
    static char buf[8][1024];
    static int slot;
    char *b = buf[slot++ % 8];
    const char *root = getenv("SEQREC_FIXTURES");
    if (!root || !*root)
        root = "tests/fixtures";
    snprintf(b, 1024, "%s/%s", root, rel);
    return b;
}

void test_write_file(const char *path, const char *data, size_t n) {
    if (n == (size_t)-1)
        n = strlen(data);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

char *test_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)len + 1);
    if (fread(b, 1, (size_t)len, f) != (size_t)len) {
        fclose(f);
        free(b);
        return NULL;
    }
    b[len] = 0;
    fclose(f);
    if (n)
        *n = (size_t)len;
    return b;
}

int test_system(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static sq_dataset *gen_open(const char *name, const char *ext, uint32_t users, uint32_t items,
                            uint64_t events, uint64_t seed) {
    char log[512], sqd[512];
    snprintf(log, sizeof log, "%s/%s.%s", test_tmpdir(), name, ext);
    snprintf(sqd, sizeof sqd, "%s/%s.sqd", test_tmpdir(), name);
    sq_error err = {0};
    sq_gen_opts g = {0};
    g.users = users;
    g.items = items;
    g.events = events;
    g.seed = seed;
    sq_ingest_opts o = {0};
    sq_ingest *in = NULL;
    sq_dataset *d = NULL;
    if (sq_generate(&g, log, &err) || sq_ingest_create(&in, &o, &err) ||
        sq_ingest_file(in, log, &err) || sq_ingest_write(in, sqd, &err) ||
        sq_data_open(&d, sqd, &err)) {
        fprintf(stderr, "test_gen_dataset %s: %s\n", name, err.msg);
        d = NULL;
    }
    sq_ingest_free(in);
    return d;
}

sq_dataset *test_gen_dataset(const char *name, uint32_t users, uint32_t items, uint64_t events,
                             uint64_t seed) {
    return gen_open(name, "csv", users, items, events, seed);
}

sq_dataset *test_gen_tagged(const char *name, uint32_t users, uint32_t items, uint64_t events,
                            uint64_t seed) {
    return gen_open(name, "inter", users, items, events, seed);
}

int test_gen_loo(const char *name, uint32_t users, uint32_t items, uint64_t events, uint64_t seed,
                 sq_dataset **d, sq_split *s) {
    sq_error err = {0};
    if (!(*d = test_gen_dataset(name, users, items, events, seed)))
        return -1;
    if (sq_split_loo(*d, s, &err)) {
        fprintf(stderr, "test_gen_loo %s: %s\n", name, err.msg);
        return -1;
    }
    return 0;
}

void test_gen_loo_free(sq_dataset *d, sq_split *s) {
    sq_split_free(s);
    sq_data_close(d);
}
