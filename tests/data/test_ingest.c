/* test_ingest.c — the reading half of ingest: every input format into the builder, checked
 * through the builder's own arrays and maps (src/data/ingest.h), without the writer.
 *
 * Fixtures (tests/fixtures/ingest/) are small files whose every count, id and timestamp is
 * stated here; the real data sets under $SEQREC_DATA give the published counts (the tests
 * skip with a message when they are absent). Gzip copies are made with zlib in the test's
 * temporary directory and must give identical builders. */
#include "testutil.h"

#include "data/ingest.h"
#include "data/lineio.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* ======================================== Helpers ============================================ */

static char logbuf[16384]; /* messages logged by the builder, one per line */

static void capture_log(void *ud, sq_log_level level, const char *module, const char *msg) {
    (void)ud;
    (void)module;
    size_t n = strlen(logbuf);
    snprintf(logbuf + n, sizeof logbuf - n, "%d %s\n", (int)level, msg);
}

static sq_ingest_opts base_opts(void) {
    sq_ingest_opts o;
    memset(&o, 0, sizeof o);
    o.reporter.log = capture_log;
    logbuf[0] = 0;
    return o;
}

static sq_ingest *make(const sq_ingest_opts *o) {
    sq_ingest *g = NULL;
    sq_error err = {0};
    sq_status rc = sq_ingest_create(&g, o, &err);
    if (rc)
        fail_msg("create: %s", err.msg);
    return g;
}

static void read_ok(sq_ingest *g, const char *path) {
    sq_error err = {0};
    sq_status rc = sq_ingest_file(g, path, &err);
    if (rc)
        fail_msg("%s: %s", path, err.msg);
}

static void buffer_ok(sq_ingest *g, const char *name, const char *text) {
    sq_error err = {0};
    sq_status rc = sq_ingest_buffer(g, name, text, strlen(text), &err);
    if (rc)
        fail_msg("%s: %s", name, err.msg);
}

static uint64_t total_rejected(const sq_ingest *g) {
    uint64_t s = 0;
    for (int r = 0; r < SQ_REJ_COUNT; r++)
        s += g->report.rejected[r];
    return s;
}

/* Invariant 1 of ingest.h: every data row is an event or one reject. */
static void check_accounting(const sq_ingest *g) {
    assert_int_equal(g->report.rows_read, g->ev.n + total_rejected(g));
}

static const char *ukey(const sq_ingest *g, size_t i) {
    return sq_strmap_key(g->users, g->ev.user[i], NULL);
}
static const char *ikey(const sq_ingest *g, size_t i) {
    return sq_strmap_key(g->items, g->ev.item[i], NULL);
}
static const char *bkey(const sq_ingest *g, size_t i) {
    return sq_strmap_key(g->behaviours, g->ev.beh[i], NULL);
}
static const char *scene_of(const sq_ingest *g, size_t i) {
    return sq_strmap_key(g->scenes, g->ev.scene[i], NULL);
}

static const char *item_text(const sq_ingest *g, const char *item) {
    uint32_t id = sq_strmap_find(g->items, item, strlen(item));
    if (id == UINT32_MAX || id >= g->item_text_cap)
        return NULL;
    return g->item_text[id];
}

/* Does item carry tag? */
static int has_tag(const sq_ingest *g, const char *item, const char *tag) {
    uint32_t id = sq_strmap_find(g->items, item, strlen(item));
    uint32_t t = sq_strmap_find(g->tags, tag, strlen(tag));
    for (size_t i = 0; i < g->item_tags.n; i++)
        if (g->item_tags.key[i] == id && g->item_tags.val[i] == t)
            return 1;
    return 0;
}

static size_t tags_of(const sq_ingest *g, const char *item) {
    uint32_t id = sq_strmap_find(g->items, item, strlen(item));
    size_t n = 0;
    for (size_t i = 0; i < g->item_tags.n; i++)
        n += g->item_tags.key[i] == id;
    return n;
}

static double item_num(const sq_ingest *g, const char *item, const char *name) {
    uint32_t id = sq_strmap_find(g->items, item, strlen(item));
    uint32_t k = sq_strmap_find(g->item_num_names, name, strlen(name));
    if (id == UINT32_MAX || k == UINT32_MAX || id >= g->item_num_cap)
        return NAN;
    return g->item_num[(size_t)id * SQ_MAX_ITEM_NUM + k];
}

/* The value of user attribute `field` of `user`, or NULL. */
static const char *user_attr(const sq_ingest *g, const char *user, const char *field) {
    uint32_t u = sq_strmap_find(g->users, user, strlen(user));
    uint32_t f = sq_strmap_find(g->user_attr_fields, field, strlen(field));
    if (u == UINT32_MAX || f == UINT32_MAX)
        return NULL;
    for (size_t i = 0; i < g->user_attrs.n; i++)
        if (g->user_attrs.key[i] == u && g->user_attrs.field[i] == f)
            return sq_strmap_key(g->user_attr_values[f], g->user_attrs.val[i], NULL);
    return NULL;
}

/* The value of context field `field` of event i ("" when absent). */
static const char *ctx_of(const sq_ingest *g, size_t i, const char *field) {
    uint32_t f = sq_strmap_find(g->ctx_fields, field, strlen(field));
    if (f == UINT32_MAX)
        return NULL;
    size_t w = sq_strmap_count(g->ctx_fields);
    return sq_strmap_key(g->ctx_values[f], g->ev.ctx[i * w + f], NULL);
}

static size_t n_texts(const sq_ingest *g) {
    size_t n = 0;
    for (size_t i = 0; i < g->item_text_cap; i++)
        n += g->item_text[i] != NULL;
    return n;
}

static uint64_t count_beh(const sq_ingest *g, const char *name) {
    uint32_t b = sq_strmap_find(g->behaviours, name, strlen(name));
    uint64_t n = 0;
    for (size_t i = 0; i < g->ev.n; i++)
        n += g->ev.beh[i] == b;
    return n;
}

/* Writes a gzip copy of src to dst with zlib. */
static void gz_copy(const char *src, const char *dst) {
    size_t n;
    char *data = test_read_file(src, &n);
    assert_non_null(data);
    gzFile z = gzopen(dst, "wb6");
    assert_non_null(z);
    assert_int_equal(gzwrite(z, data, (unsigned)n), (int)n);
    assert_int_equal(gzclose(z), Z_OK);
    free(data);
}

/* Gzip-compresses n bytes into a malloc'd buffer (one member). */
static unsigned char *gz_mem(const void *data, size_t n, size_t *out_n) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, (uLong)n) + 64;
    unsigned char *out = malloc(cap);
    zs.next_in = (Bytef *)(uintptr_t)data;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_n = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

/* Two builders hold the same events and side information. */
static void assert_same(const sq_ingest *a, const sq_ingest *b) {
    assert_int_equal(a->ev.n, b->ev.n);
    assert_int_equal(a->report.rows_read, b->report.rows_read);
    assert_int_equal(total_rejected(a), total_rejected(b));
    assert_int_equal(a->report.side_rows, b->report.side_rows);
    assert_int_equal(sq_strmap_count(a->users), sq_strmap_count(b->users));
    assert_int_equal(sq_strmap_count(a->items), sq_strmap_count(b->items));
    assert_int_equal(a->item_tags.n, b->item_tags.n);
    assert_int_equal(a->user_attrs.n, b->user_attrs.n);
    assert_int_equal(n_texts(a), n_texts(b));
    for (size_t i = 0; i < a->ev.n; i++) {
        assert_string_equal(ukey(a, i), ukey(b, i));
        assert_string_equal(ikey(a, i), ikey(b, i));
        assert_string_equal(bkey(a, i), bkey(b, i));
        assert_int_equal(a->ev.ts[i], b->ev.ts[i]);
        assert_true(a->ev.value[i] == b->ev.value[i] ||
                    (isnan(a->ev.value[i]) && isnan(b->ev.value[i])));
    }
}

/* ======================================== Line reader ======================================== */

static void test_lineio_basic(void **state) {
    (void)state;
    static const char text[] = "a\r\nbb\n\n  \nlast\0x";
    sq_lineio *r;
    sq_error err = {0};
    assert_int_equal(sq_lineio_open_mem(&r, "t", text, sizeof text - 1, 0, &err), SQ_OK);
    sq_line ln;
    const char *want[] = {"a", "bb", "", "  "};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(sq_lineio_next(r, &ln, &err), 1);
        assert_int_equal(ln.no, (uint64_t)i + 1);
        assert_int_equal(ln.n, strlen(want[i]));
        assert_memory_equal(ln.p, want[i], ln.n);
        assert_false(ln.has_nul);
        assert_false(ln.too_long);
    }
    assert_int_equal(sq_lineio_next(r, &ln, &err), 1); /* no newline at the end, a NUL inside */
    assert_int_equal(ln.n, 6);
    assert_memory_equal(ln.p, "last\0x", 6);
    assert_true(ln.has_nul);
    assert_int_equal(sq_lineio_next(r, &ln, &err), 0);
    assert_int_equal(sq_lineio_next(r, &ln, &err), 0);
    sq_lineio_close(r);
    sq_lineio_close(NULL);
}

static void test_lineio_long_lines(void **state) {
    (void)state;
    /* lines over max_line come back once, flagged, with only their beginning; the reader's
     * buffer never holds more than max_line + one chunk, even for a 5 MB line */
    size_t big = 5u << 20;
    char *text = malloc(big + 256);
    size_t n = 0;
    n += (size_t)sprintf(text + n, "short\n");
    memset(text + n, 'x', 100);
    n += 100;
    text[n++] = '\n';
    memset(text + n, 'y', big);
    n += big;
    n += (size_t)sprintf(text + n, "\nok\n");
    sq_lineio *r;
    sq_error err = {0};
    assert_int_equal(sq_lineio_open_mem(&r, "t", text, n, 64, &err), SQ_OK);
    sq_line ln;
    assert_int_equal(sq_lineio_next(r, &ln, &err), 1);
    assert_false(ln.too_long);
    assert_int_equal(sq_lineio_next(r, &ln, &err), 1);
    assert_true(ln.too_long);
    assert_int_equal(ln.no, 2);
    assert_true(ln.n <= SQ_LINE_PREFIX);
    assert_int_equal(ln.p[0], 'x');
    assert_int_equal(sq_lineio_next(r, &ln, &err), 1);
    assert_true(ln.too_long);
    assert_int_equal(ln.no, 3);
    assert_int_equal(ln.p[0], 'y');
    assert_int_equal(sq_lineio_next(r, &ln, &err), 1);
    assert_false(ln.too_long);
    assert_int_equal(ln.no, 4);
    assert_memory_equal(ln.p, "ok", 2);
    assert_int_equal(sq_lineio_next(r, &ln, &err), 0);
    sq_lineio_close(r);

    /* the same through gzip */
    size_t zn;
    unsigned char *z = gz_mem(text, n, &zn);
    assert_int_equal(sq_lineio_open_mem(&r, "t.gz", z, zn, 64, &err), SQ_OK);
    assert_true(sq_lineio_is_gzip(r));
    int lines = 0, longs = 0;
    while (sq_lineio_next(r, &ln, &err) == 1) {
        lines++;
        longs += ln.too_long;
    }
    assert_int_equal(lines, 4);
    assert_int_equal(longs, 2);
    sq_lineio_close(r);
    free(z);
    free(text);
}

static void test_lineio_gzip(void **state) {
    (void)state;
    static const char text[] = "one\ntwo\nthree";
    size_t zn;
    unsigned char *z = gz_mem(text, sizeof text - 1, &zn);
    /* two members back to back read as one stream */
    unsigned char *two = malloc(2 * zn);
    memcpy(two, z, zn);
    memcpy(two + zn, z, zn);
    sq_lineio *r;
    sq_error err = {0};
    assert_int_equal(sq_lineio_open_mem(&r, "t.gz", two, 2 * zn, 0, &err), SQ_OK);
    sq_line ln;
    int lines = 0;
    while (sq_lineio_next(r, &ln, &err) == 1)
        lines++;
    assert_int_equal(lines, 5); /* "three" + "one" join across the member boundary */
    sq_lineio_close(r);
    /* truncated: an error, not a silent short read */
    assert_int_equal(sq_lineio_open_mem(&r, "cut.gz", z, zn - 6, 0, &err), SQ_OK);
    int k;
    while ((k = sq_lineio_next(r, &ln, &err)) == 1)
        ;
    assert_int_equal(k, -1);
    assert_int_equal(err.code, SQ_ERR_IO);
    assert_non_null(strstr(err.msg, "cut.gz"));
    sq_lineio_close(r);
    /* the same with a file */
    const char *path = test_tmp("cut.csv.gz");
    test_write_file(path, (const char *)z, zn - 6);
    sq_ingest_opts o = base_opts();
    sq_ingest *g = make(&o);
    assert_int_equal(sq_ingest_file(g, path, &err), SQ_ERR_IO);
    assert_non_null(strstr(err.msg, "gzip"));
    sq_ingest_free(g);
    free(two);
    free(z);
}

/* ========================================== Formats ========================================== */

static void test_movielens(void **state) {
    (void)state;
    sq_ingest_opts o = base_opts();
    sq_ingest *g = make(&o);
    read_ok(g, test_fixture("ingest/ml/ratings.dat"));
    assert_int_equal(g->ev.n, 5);
    assert_int_equal(g->report.files, 1);
    assert_int_equal(g->report.rows_read, 5);
    assert_int_equal(g->n_inputs, 3); /* ratings.dat, movies.dat, users.dat */
    assert_int_equal(sq_strmap_count(g->users), 3);
    assert_int_equal(sq_strmap_count(g->items), 4); /* 10, 20, 30 and side-only 40 */
    assert_string_equal(ukey(g, 3), "2");
    assert_string_equal(ikey(g, 3), "30");
    assert_int_equal(g->ev.ts[3], 978300275);
    assert_true(g->ev.value[3] == 1.0f);
    assert_string_equal(bkey(g, 0), "rate");
    assert_int_equal(sq_strmap_count(g->behaviours), 1);
    assert_true(g->have_real_time && g->have_values);
    assert_int_equal(g->ev.src[4], ((uint64_t)0 << SQ_SRC_LINE_BITS) | 5);
    /* movies.dat: titles and genres ("(no genres listed)" is no tag) */
    assert_int_equal(g->report.side_rows, 7);
    assert_int_equal(g->report.side_rejected, 0);
    assert_string_equal(item_text(g, "10"), "Toy Story (1995)");
    assert_string_equal(item_text(g, "40"), "Unseen (2000)");
    assert_true(has_tag(g, "10", "Children's"));
    assert_true(has_tag(g, "30", "Thriller"));
    assert_int_equal(tags_of(g, "40"), 0);
    assert_int_equal(sq_strmap_count(g->tags), 8);
    /* users.dat */
    assert_string_equal(user_attr(g, "1", "gender"), "F");
    assert_string_equal(user_attr(g, "2", "age"), "56");
    assert_string_equal(user_attr(g, "3", "zip"), "55117");
    assert_int_equal(g->user_attrs.n, 12);
    check_accounting(g);
    sq_ingest_free(g);

    /* without side files, and with the side file named first: read once */
    o.no_side_files = 1;
    g = make(&o);
    read_ok(g, test_fixture("ingest/ml/ratings.dat"));
    assert_int_equal(g->n_inputs, 1);
    assert_int_equal(n_texts(g), 0);
    sq_ingest_free(g);
    o.no_side_files = 0;
    g = make(&o);
    read_ok(g, test_fixture("ingest/ml/movies.dat"));
    assert_int_equal(g->report.files, 0);
    read_ok(g, test_fixture("ingest/ml/ratings.dat"));
    assert_int_equal(g->n_inputs, 3);
    assert_int_equal(g->report.side_rows, 7);
    assert_int_equal(g->ev.src[0] >> SQ_SRC_LINE_BITS, 1); /* ratings.dat is input 1 */
    sq_ingest_free(g);
}

static void test_csv(void **state) {
    (void)state;
    sq_ingest_opts o = base_opts();
    sq_ingest *g = make(&o);
    read_ok(g, test_fixture("ingest/events.csv"));
    assert_int_equal(g->ev.n, 4);
    assert_int_equal(g->report.header_lines, 1);
    assert_int_equal(g->report.rows_read, 4);
    assert_int_equal(total_rejected(g), 0);
    static const int64_t ts[4] = {1704067200, 1704067260, 1704067320, 1704067380};
    static const char *beh[4] = {"view", "cart", "buy", "view"};
    static const char *scene[4] = {"home", "search", "home", ""};
    static const char *dev[4] = {"ios", "android", "ios", "web"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(g->ev.ts[i], ts[i]);
        assert_string_equal(bkey(g, i), beh[i]);
        assert_string_equal(scene_of(g, i), scene[i]);
        assert_string_equal(ctx_of(g, i, "device"), dev[i]);
    }
    assert_true(isnan(g->ev.value[0]));
    assert_true(g->ev.value[1] == 4.5f);
    assert_true(g->ev.value[2] == 5.0f);
    assert_int_equal(sq_strmap_count(g->scenes), 3); /* "", home, search */
    /* quoted fields: "" is a quote, commas and newlines inside quotes are data */
    assert_string_equal(item_text(g, "i1"), "Red \"Shoe\"");
    assert_string_equal(item_text(g, "i2"), "Blue, hat");
    assert_string_equal(item_text(g, "i3"), "multi\nline title");
    assert_int_equal(g->ev.src[3] & ((1ull << SQ_SRC_LINE_BITS) - 1), 5); /* first line */
    check_accounting(g);
    sq_ingest_free(g);
}

static void test_tsv(void **state) {
    (void)state;
    sq_ingest_opts o = base_opts();
    sq_ingest *g = make(&o);
    read_ok(g, test_fixture("ingest/events.tsv"));
    assert_int_equal(g->ev.n, 3);
    assert_string_equal(ukey(g, 2), "b");
    assert_string_equal(ikey(g, 2), "x");
    assert_int_equal(g->ev.ts[2], 1000000002);
    assert_string_equal(bkey(g, 2), "buy");
    assert_int_equal(count_beh(g, "click"), 2);
    assert_true(isnan(g->ev.value[0]));
    check_accounting(g);
    sq_ingest_free(g);
}

static void test_jsonl(void **state) {
    (void)state;
    sq_ingest_opts o = base_opts();
    sq_ingest *g = make(&o);
    read_ok(g, test_fixture("ingest/events.jsonl"));
    assert_int_equal(g->ev.n, 3);
    assert_int_equal(g->report.blank_lines, 1);
    assert_string_equal(ukey(g, 1), "42");
    assert_string_equal(ikey(g, 1), "7");
    assert_int_equal(g->ev.ts[0], 1704067200);
    assert_int_equal(g->ev.ts[1], 1704067200);
    assert_int_equal(g->ev.ts[2], 1704067200); /* milliseconds */
    assert_string_equal(bkey(g, 0), "view");
    assert_string_equal(bkey(g, 1), "buy");
    assert_string_equal(bkey(g, 2), "view");
    assert_true(g->ev.value[1] == 2.5f);
    assert_string_equal(scene_of(g, 0), "home");
    assert_string_equal(ctx_of(g, 0, "device"), "ios");
    assert_string_equal(ctx_of(g, 0, "hour"), "10");
    assert_string_equal(ctx_of(g, 1, "device"), "");
    assert_non_null(strstr(logbuf, "key 'extra' ignored"));
    check_accounting(g);
    sq_ingest_free(g);

    /* malformed JSON lines are bad_field rejects; depth is bounded */
    g = make(&o);
    char deep[200] = "{\"user\":\"u\",\"item\":\"i\",\"ts\":1000000000,\"x\":";
    for (int i = 0; i < 20; i++)
        strcat(deep, "[");
    for (int i = 0; i < 20; i++)
        strcat(deep, "]");
    strcat(deep, "}\n");
    buffer_ok(g, "a.jsonl", "{\"user\":\"u\",\"item\":\"i\",\"ts\":1000000000}\n");
    buffer_ok(g, "b.jsonl",
              "{\"user\":\"u\",\"item\":\"i\",\"ts\":1000000000\n[1,2]\n{\"user\":{},\"item\":1,"
              "\"ts\":1}\n{\"user\":\"u\",\"item\":\"i\",\"ts\":1000000000} x\n");
    buffer_ok(g, "c.jsonl", deep);
    assert_int_equal(g->ev.n, 1);
    assert_int_equal(g->report.rejected[SQ_REJ_BAD_FIELD], 5);
    check_accounting(g);
    sq_ingest_free(g);
}

static void test_jsonl_ctx_growth(void **state) {
    (void)state;
    /* a context field first seen on a later row: earlier events get "" (value 0) for it */
    sq_ingest_opts o = base_opts();
    sq_ingest *g = make(&o);
    buffer_ok(g, "c.jsonl",
              "{\"user\":\"a\",\"item\":\"x\",\"ts\":1000000000,\"context\":{\"device\":\"d1\"}}\n"
              "{\"user\":\"a\",\"item\":\"y\",\"ts\":1000000001,\"context\":{\"device\":\"d2\","
              "\"os\":\"linux\"}}\n"
              "{\"user\":\"b\",\"item\":\"y\",\"ts\":1000000002}\n");
    assert_int_equal(g->ev.n, 3);
    assert_int_equal(sq_strmap_count(g->ctx_fields), 2);
    assert_string_equal(ctx_of(g, 0, "device"), "d1");
    assert_string_equal(ctx_of(g, 0, "os"), "");
    assert_string_equal(ctx_of(g, 1, "device"), "d2");
    assert_string_equal(ctx_of(g, 1, "os"), "linux");
    assert_string_equal(ctx_of(g, 2, "device"), "");
    assert_string_equal(ctx_of(g, 2, "os"), "");
    sq_ingest_free(g);
}

static void test_recbole(void **state) {
    (void)state;
    sq_ingest_opts o = base_opts();
    sq_ingest *g = make(&o);
    read_ok(g, test_fixture("ingest/rb/mini.inter"));
    assert_int_equal(g->ev.n, 3);
    assert_int_equal(g->n_inputs, 3);
    assert_int_equal(g->ev.ts[2], 881250951);
    assert_true(g->ev.value[2] == 5.0f);
    assert_string_equal(bkey(g, 0), "rate");
    /* .item: title → text, class tokens → tags, token field → "field=value" */
    assert_string_equal(item_text(g, "100"), "Toy Story");
    assert_true(has_tag(g, "100", "Animation"));
    assert_true(has_tag(g, "100", "Comedy"));
    assert_true(has_tag(g, "100", "release_year=1995"));
    assert_int_equal(tags_of(g, "100"), 3);
    assert_string_equal(item_text(g, "300"), "Other"); /* no event, still recorded */
    assert_int_equal(sq_strmap_count(g->items), 3);
    /* .user: every non-id field an attribute */
    assert_string_equal(user_attr(g, "1", "occupation"), "technician");
    assert_string_equal(user_attr(g, "2", "gender"), "F");
    assert_string_equal(user_attr(g, "2", "zip_code"), "94043");
    assert_int_equal(g->report.side_rows, 5);
    assert_int_equal(g->report.header_lines, 1); /* the .inter's: side files are not counted */
    check_accounting(g);
    sq_ingest_free(g);
}

static void test_plain(void **state) {
    (void)state;
    sq_ingest_opts o = base_opts();
    sq_ingest *g = make(&o);
    read_ok(g, test_fixture("ingest/plain.txt"));
    assert_int_equal(g->ev.n, 4);
    assert_int_equal(g->report.blank_lines, 1);
    assert_int_equal(g->ev.ts[0], 1);
    assert_int_equal(g->ev.ts[1], 2);
    assert_int_equal(g->ev.ts[2], 4); /* time is the line number: the blank line 3 counts */
    assert_int_equal(g->ev.ts[3], 5);
    assert_string_equal(bkey(g, 0), "interact");
    assert_false(g->have_real_time);
    /* a second file continues the order */
    buffer_ok(g, "more.txt", "9 9\n");
    assert_int_equal(g->ev.ts[4], 5 + 1);
    assert_int_equal(g->ev.src[4] >> SQ_SRC_LINE_BITS, 1);
    /* a third column that looks like a timestamp is one */
    buffer_ok(g, "ts.txt", "7 8 1000000000\n7 9 1000000005\n");
    assert_int_equal(g->ev.ts[6], 1000000005);
    assert_true(g->have_real_time);
    /* lines with another field count */
    buffer_ok(g, "odd.txt", "1 2\n1 2 3\n3\n");
    assert_int_equal(g->report.rejected[SQ_REJ_FIELD_COUNT], 2);
    check_accounting(g);
    sq_ingest_free(g);

    o.default_behaviour = "click";
    g = make(&o);
    buffer_ok(g, "p.txt", "a b\n");
    assert_string_equal(bkey(g, 0), "click");
    sq_ingest_free(g);
}

static void test_diginetica_style(void **state) {
    (void)state;
    sq_ingest_opts o = base_opts();
    sq_ingest *g = make(&o);
    read_ok(g, test_fixture("ingest/digi.csv"));
    assert_int_equal(g->ev.n, 3);
    assert_int_equal(total_rejected(g), 0); /* user_id NA is no reject */
    assert_true(g->have_sessions);
    assert_int_equal(sq_strmap_count(g->users), 2); /* sessions are the sequences */
    assert_string_equal(ukey(g, 2), "2");
    /* 2016-05-09 is 1462752000; timeframe 526309 ms adds 526 s */
    assert_int_equal(g->ev.ts[0], 1462752526);
    assert_int_equal(g->ev.ts[1], 1462753031);
    assert_int_equal(g->ev.ts[2], 1462838643);
    check_accounting(g);
    sq_ingest_free(g);
}

static void check_taobao_fixture(const sq_ingest *g, int with_side) {
    assert_int_equal(g->ev.n, 3);
    assert_string_equal(bkey(g, 0), "buy");
    assert_string_equal(bkey(g, 1), "pv");
    assert_string_equal(bkey(g, 2), "cart");
    assert_int_equal(g->ev.ts[0], 1512189107);
    assert_string_equal(ukey(g, 2), "768933");
    assert_string_equal(ikey(g, 2), "4166112");
    if (with_side) {
        assert_string_equal(item_text(g, "4073737"), "VIVOX100 Pro 128GB 蓝色");
        assert_true(has_tag(g, "4073737", "brand=VIVO"));
        assert_true(has_tag(g, "4166112", "brand=华为"));
        assert_true(has_tag(g, "4166112", "category=电子产品"));
        assert_int_equal(g->item_tags.n, 4); /* recorded once per item, not per row */
        assert_int_equal(sq_strmap_count(g->tags), 3);
        assert_true(fabs(item_num(g, "4073737", "price") - 6329.2) < 1e-3);
    } else {
        assert_int_equal(g->item_tags.n, 0);
        assert_int_equal(n_texts(g), 0);
    }
}

static void test_taobao_style(void **state) {
    (void)state;
    sq_ingest_opts o = base_opts();
    sq_ingest *g = make(&o);
    read_ok(g, test_fixture("ingest/taobao.csv"));
    check_taobao_fixture(g, 1);
    assert_null(strstr(logbuf, "map it with --columns\n2")); /* side ids: not warnings */
    assert_non_null(strstr(logbuf, "品牌ID"));
    sq_ingest_free(g);
    o = base_opts();
    o.columns = "user=用户ID,item=商品ID,behaviour=行为类型,ts=时间戳";
    g = make(&o);
    read_ok(g, test_fixture("ingest/taobao.csv"));
    check_taobao_fixture(g, 0);
    sq_ingest_free(g);
}

static void test_gzip_fixtures(void **state) {
    (void)state;
    static const char *files[] = {
        "ml/ratings.dat", "ml/movies.dat", "ml/users.dat", "rb/mini.inter", "rb/mini.item",
        "rb/mini.user",   "events.csv",    "events.tsv",   "events.jsonl",  "plain.txt",
        "digi.csv",       "taobao.csv",    "bad.csv"};
    char dir[600];
    snprintf(dir, sizeof dir, "%s/gz", test_tmpdir());
    mkdir(dir, 0755);
    for (const char *sub = "ml"; sub; sub = strcmp(sub, "ml") ? NULL : "rb") {
        char d2[700];
        snprintf(d2, sizeof d2, "%s/%s", dir, sub);
        mkdir(d2, 0755);
    }
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char dst[800];
        snprintf(dst, sizeof dst, "%s/%s.gz", dir, files[i]);
        char rel[100];
        snprintf(rel, sizeof rel, "ingest/%s", files[i]);
        gz_copy(test_fixture(rel), dst);
    }
    static const char *events[] = {"ml/ratings.dat", "rb/mini.inter", "events.csv",
                                   "events.tsv",     "events.jsonl",  "plain.txt",
                                   "digi.csv",       "taobao.csv",    "bad.csv"};
    for (size_t i = 0; i < sizeof events / sizeof *events; i++) {
        sq_ingest_opts o = base_opts();
        sq_ingest *a = make(&o), *b = make(&o);
        char rel[100], dst[800];
        snprintf(rel, sizeof rel, "ingest/%s", events[i]);
        snprintf(dst, sizeof dst, "%s/%s.gz", dir, events[i]);
        read_ok(a, test_fixture(rel));
        read_ok(b, dst);
        assert_int_equal(a->n_inputs, b->n_inputs); /* side files found beside the .gz too */
        assert_same(a, b);
        sq_ingest_free(a);
        sq_ingest_free(b);
    }
    /* and a gzip buffer */
    size_t n, zn;
    char *text = test_read_file(test_fixture("ingest/events.csv"), &n);
    unsigned char *z = gz_mem(text, n, &zn);
    sq_ingest_opts o = base_opts();
    sq_ingest *a = make(&o), *b = make(&o);
    sq_error err = {0};
    assert_int_equal(sq_ingest_buffer(a, "e.csv", text, n, &err), SQ_OK);
    assert_int_equal(sq_ingest_buffer(b, "e.csv.gz", z, zn, &err), SQ_OK);
    assert_same(a, b);
    sq_ingest_free(a);
    sq_ingest_free(b);
    free(z);
    free(text);
}

/* ===================================== Rejects and strict ==================================== */

static void test_rejects(void **state) {
    (void)state;
    sq_ingest_opts o = base_opts();
    o.rejects_path = test_tmp("rejects.tsv");
    sq_ingest *g = make(&o);
    const char *path = test_fixture("ingest/bad.csv");
    read_ok(g, path);
    const sq_ingest_report *r = sq_ingest_get_report(g);
    assert_int_equal(g->ev.n, 2);
    assert_string_equal(ikey(g, 0), "i1");
    assert_string_equal(ikey(g, 1), "i4");
    assert_int_equal(r->rows_read, 10);
    assert_int_equal(r->rejected[SQ_REJ_BAD_TIME], 1);
    assert_int_equal(r->rejected[SQ_REJ_FIELD_COUNT], 1);
    assert_int_equal(r->rejected[SQ_REJ_MISSING_USER], 1);
    assert_int_equal(r->rejected[SQ_REJ_MISSING_ITEM], 1);
    assert_int_equal(r->rejected[SQ_REJ_BAD_VALUE], 2);
    assert_int_equal(r->rejected[SQ_REJ_TIME_RANGE], 1);
    assert_int_equal(r->rejected[SQ_REJ_BAD_FIELD], 1);
    assert_int_equal(r->rejected[SQ_REJ_UNKNOWN_BEHAVIOUR], 0);
    check_accounting(g);
    /* rejected rows left no trace in the id maps */
    assert_int_equal(sq_strmap_count(g->users), 2);
    assert_int_equal(sq_strmap_count(g->items), 2);
    sq_error err = {0};
    assert_int_equal(ingest_rejects_commit(g, &err), SQ_OK);
    size_t n;
    char *text = test_read_file(o.rejects_path, &n);
    assert_non_null(text);
    static const struct {
        int line;
        const char *reason, *field;
    } want[] = {{3, "bad_time", "ts"},       {4, "field_count", "row"},
                {5, "missing_user", "user"}, {6, "missing_item", "item"},
                {7, "bad_value", "value"},   {8, "time_out_of_range", "ts"},
                {9, "bad_field", "row"},     {11, "bad_value", "value"}};
    char *line = strtok(text, "\n");
    assert_string_equal(line, "file\tline\treason\tfield\tdetail\trow");
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        line = strtok(NULL, "\n");
        assert_non_null(line);
        char prefix[1200];
        snprintf(prefix, sizeof prefix, "%s\t%d\t%s\t%s\t", path, want[i].line, want[i].reason,
                 want[i].field);
        if (strncmp(line, prefix, strlen(prefix)))
            fail_msg("rejects line %zu: '%s', want prefix '%s'", i, line, prefix);
    }
    assert_null(strtok(NULL, "\n"));
    free(text);
    sq_ingest_free(g);
}

static void test_strict(void **state) {
    (void)state;
    sq_ingest_opts o = base_opts();
    o.strict = 1;
    sq_ingest *g = make(&o);
    const char *path = test_fixture("ingest/bad.csv");
    sq_error err = {0};
    assert_int_equal(sq_ingest_file(g, path, &err), SQ_ERR_PARSE);
    char want[1200];
    snprintf(want, sizeof want, "%s:3: ts: bad_time: 'yesterday'", path);
    assert_string_equal(err.msg, want);
    assert_int_equal(g->ev.n, 1);
    sq_ingest_free(g);
    /* strict with a clean file is fine */
    g = make(&o);
    read_ok(g, test_fixture("ingest/events.csv"));
    assert_int_equal(g->ev.n, 4);
    sq_ingest_free(g);
    /* each reader stops at its first bad row */
    static const struct {
        const char *name, *text, *msg;
    } cases[] = {
        {"r.dat", "1::2::3::4\n1::2::3\n",
         "r.dat:2: row: field_count: expected 4 fields (user::item::rating::ts), found 3"},
        {"p.txt", "a b\nc d\n e \n", "p.txt:3: row: field_count: expected 2 fields, found 1"},
        {"j.jsonl", "{\"user\":\"\",\"item\":\"i\"}\n", "j.jsonl:1: user: missing_user"},
        {"t.tsv", "user\titem\tts\nu\ti\t2024-13-01\n", "t.tsv:2: ts: bad_time: '2024-13-01'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        g = make(&o);
        assert_int_equal(
            sq_ingest_buffer(g, cases[i].name, cases[i].text, strlen(cases[i].text), &err),
            SQ_ERR_PARSE);
        if (strncmp(err.msg, cases[i].msg, strlen(cases[i].msg)))
            fail_msg("'%s' does not start with '%s'", err.msg, cases[i].msg);
        sq_ingest_free(g);
    }
}

static void test_reject_reasons(void **state) {
    (void)state;
    /* unknown_behaviour against a declared vocabulary */
    sq_ingest_opts o = base_opts();
    o.behaviours = "view,buy";
    sq_ingest *g = make(&o);
    buffer_ok(g, "b.csv",
              "user,item,ts,behaviour\nu,i,1000000000,view\nu,i,1000000001,cart\n"
              "u,j,1000000002,buy\n");
    assert_int_equal(g->ev.n, 2);
    assert_int_equal(g->report.rejected[SQ_REJ_UNKNOWN_BEHAVIOUR], 1);
    assert_int_equal(sq_strmap_count(g->behaviours), 2);
    /* no behaviour column and "interact" is not declared */
    buffer_ok(g, "nb.txt", "u i\n");
    assert_int_equal(g->report.rejected[SQ_REJ_UNKNOWN_BEHAVIOUR], 2);
    check_accounting(g);
    sq_ingest_free(g);

    /* the cap of 64 behaviour names taken from data */
    o = base_opts();
    g = make(&o);
    char text[4096] = "user,item,ts,behaviour\n";
    for (int i = 0; i < 66; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "u,i,1000000000,b%d\n", i);
    buffer_ok(g, "many.csv", text);
    assert_int_equal(g->ev.n, 64);
    assert_int_equal(g->report.rejected[SQ_REJ_UNKNOWN_BEHAVIOUR], 2);
    sq_ingest_free(g);

    /* line too long and NUL bytes: bad_field; the lines around them are kept */
    o = base_opts();
    o.max_line = 40;
    o.rejects_path = test_tmp("long.tsv");
    g = make(&o);
    char buf[512];
    size_t n = (size_t)snprintf(buf, sizeof buf, "user,item,ts\nu,i,1000000000\nu,");
    memset(buf + n, 'x', 100);
    n += 100;
    static const char tail[] = ",1000000001\nu,j\0k,1000000002\nu,k,1000000003";
    memcpy(buf + n, tail, sizeof tail - 1);
    n += sizeof tail - 1;
    sq_error err = {0};
    assert_int_equal(sq_ingest_buffer(g, "long.csv", buf, n, &err), SQ_OK);
    assert_int_equal(g->ev.n, 2);
    assert_int_equal(g->report.rejected[SQ_REJ_BAD_FIELD], 2);
    assert_int_equal(ingest_rejects_commit(g, &err), SQ_OK);
    char *rej = test_read_file(o.rejects_path, NULL);
    assert_non_null(strstr(rej, "long.csv\t3\tbad_field\trow\tline too long"));
    assert_non_null(strstr(rej, "long.csv\t4\tbad_field\trow\tNUL byte"));
    free(rej);
    check_accounting(g);
    sq_ingest_free(g);

    /* time range from the options */
    o = base_opts();
    o.time_min = 1000000000;
    o.time_max = 1000000100;
    g = make(&o);
    buffer_ok(g, "r.csv", "user,item,ts\nu,i,999999999\nu,i,1000000000\nu,i,1000000101\n");
    assert_int_equal(g->ev.n, 1);
    assert_int_equal(g->report.rejected[SQ_REJ_TIME_RANGE], 2);
    sq_ingest_free(g);
}

static void test_malformed_middle(void **state) {
    (void)state;
    /* bad rows among good ones: good rows kept in order, each bad row counted once */
    sq_ingest_opts o = base_opts();
    sq_ingest *g = make(&o);
    buffer_ok(g, "m.csv",
              "user_id,item_id,timestamp\n"
              "u1,a,1000000000\n"
              "u1,b,not-a-time\n"
              "u1,c,1000000002\n"
              "u2,d\n"
              "u2,e,1000000004\n"
              ",f,1000000005\n"
              "u3,g,1000000006,extra\n"
              "\n"
              "u3,h,1000000008\n");
    assert_int_equal(g->ev.n, 4);
    static const char *items[] = {"a", "c", "e", "h"};
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(ikey(g, i), items[i]);
    assert_int_equal(g->report.rows_read, 8);
    assert_int_equal(g->report.blank_lines, 1);
    assert_int_equal(g->report.rejected[SQ_REJ_BAD_TIME], 1);
    assert_int_equal(g->report.rejected[SQ_REJ_FIELD_COUNT], 2);
    assert_int_equal(g->report.rejected[SQ_REJ_MISSING_USER], 1);
    check_accounting(g);
    sq_ingest_free(g);
}

/* ========================================= --columns ========================================= */

static void test_columns_positional(void **state) {
    (void)state;
    sq_ingest_opts o = base_opts();
    o.columns = "user,item,-,ts";
    sq_ingest *g = make(&o);
    buffer_ok(g, "h.csv", "u1,i1,x,1000000000\nu2,i2,y,2024-01-01\n");
    assert_int_equal(g->ev.n, 2);
    assert_int_equal(g->report.header_lines, 0);
    assert_int_equal(g->ev.ts[1], 1704067200);
    /* a header line is recognised and skipped */
    buffer_ok(g, "h2.csv", "who,what,junk,when\nu3,i3,z,1000000001\n");
    assert_int_equal(g->ev.n, 3);
    assert_int_equal(g->report.header_lines, 1);
    /* plain text by position */
    buffer_ok(g, "p.txt", "u4 i4 q 1000000009\n");
    assert_int_equal(g->ev.ts[3], 1000000009);
    check_accounting(g);
    sq_ingest_free(g);
}

static void test_columns_by_name(void **state) {
    (void)state;
    sq_ingest_opts o = base_opts();
    o.columns = "user=uid,item=sku,ts=when,ctx=Dev,item_tag:brand=br,item_num:price=pr,"
                "user_attr:age=age,scene=where";
    sq_ingest *g = make(&o);
    buffer_ok(g, "n.csv",
              "uid,sku,when,Dev,br,pr,age,where,other\n"
              "a,x,1000000000,ios,acme,9.5,30,home,zz\n"
              "a,y,1000000001,web,acme,1,30,feed,zz\n"
              "b,x,1000000002,ios,acme,2,41,home,zz\n");
    assert_int_equal(g->ev.n, 3);
    assert_string_equal(ctx_of(g, 1, "dev"), "web");
    assert_true(has_tag(g, "x", "brand=acme"));
    assert_true(item_num(g, "x", "price") == 9.5f);
    assert_string_equal(user_attr(g, "b", "age"), "41");
    assert_int_equal(g->user_attrs.n, 2); /* once per user */
    assert_string_equal(scene_of(g, 1), "feed");
    assert_null(strstr(logbuf, "'other' ignored")); /* with --columns only mapped ones count */
    sq_ingest_free(g);

    /* a name the header lacks */
    o.columns = "user=uid,item=nope";
    g = make(&o);
    sq_error err = {0};
    assert_int_equal(sq_ingest_buffer(g, "n.csv", "uid,sku\na,b\n", 12, &err), SQ_ERR_PARSE);
    assert_non_null(strstr(err.msg, "n.csv"));
    assert_non_null(strstr(err.msg, "'nope'"));
    sq_ingest_free(g);
}

static void test_columns_invalid(void **state) {
    (void)state;
    static const struct {
        const char *spec, *needle;
    } bad[] = {
        {"user,item,bogus", "'bogus'"}, {"user=a,item", "mixes"},     {"item,ts", "no user"},
        {"user,ts", "no item"},         {"user,item,ctx:", "'ctx:'"}, {"user,user,item", "twice"},
        {"user,item,,ts", "bad entry"}, {"user=,item=b", "'user='"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        /* a bad spec is refused when the builder is created, before any file is read */
        sq_ingest_opts o = base_opts();
        o.columns = bad[i].spec;
        sq_ingest *g = NULL;
        sq_error err = {0};
        assert_int_equal(sq_ingest_create(&g, &o, &err), SQ_ERR_ARG);
        assert_null(g);
        if (!strstr(err.msg, bad[i].needle))
            fail_msg("spec '%s': message '%s' lacks '%s'", bad[i].spec, err.msg, bad[i].needle);
    }
}

static void test_unknown_header(void **state) {
    (void)state;
    sq_ingest_opts o = base_opts();
    sq_ingest *g = make(&o);
    sq_error err = {0};
    assert_int_equal(sq_ingest_buffer(g, "u.csv", "foo,bar\nx,y\n", 12, &err), SQ_ERR_PARSE);
    assert_non_null(strstr(err.msg, "u.csv"));
    assert_non_null(strstr(err.msg, "no user column"));
    assert_non_null(strstr(err.msg, "--columns user="));
    assert_int_equal(sq_ingest_buffer(g, "v.csv", "user_id,foo\n1,2\n", 16, &err), SQ_ERR_PARSE);
    assert_non_null(strstr(err.msg, "no item column"));
    /* an unknown column next to known ones is only a warning */
    buffer_ok(g, "w.csv", "user_id,item_id,colour\n1,2,red\n");
    assert_int_equal(g->ev.n, 1);
    assert_non_null(strstr(logbuf, "column 'colour' ignored; map it with --columns"));
    /* a header-less numeric file is guessed, with a message */
    buffer_ok(g, "u.data", "1\t2\t3\t881250949\n");
    assert_int_equal(g->ev.ts[1], 881250949);
    assert_true(g->ev.value[1] == 3.0f);
    assert_non_null(strstr(logbuf, "user,item,value,ts"));
    sq_ingest_free(g);
}

static void test_detect_and_forced_format(void **state) {
    (void)state;
    sq_ingest_opts o = base_opts();
    sq_ingest *g = make(&o);
    /* sniffed from content when the name says nothing */
    buffer_ok(g, "log", "{\"user\":\"a\",\"item\":\"b\",\"ts\":1000000000}\n");
    buffer_ok(g, "log2", "a::b::3::1000000000\n");
    buffer_ok(g, "log3", "user;item;ts\na;b;1000000000\n");
    buffer_ok(g, "log4", "user_id:token\titem_id:token\na\tb\n");
    assert_int_equal(g->ev.n, 4);
    check_accounting(g);
    sq_ingest_free(g);
    /* forced: a .txt read as CSV with a '|' delimiter */
    o.format = SQ_FMT_CSV;
    o.delimiter = '|';
    g = make(&o);
    buffer_ok(g, "x.txt", "user|item\na|b\n");
    assert_int_equal(g->ev.n, 1);
    sq_ingest_free(g);
}

static void test_alloc_failures(void **state) {
    (void)state;
    /* fail the Nth allocation for every N: each run ends in SQ_OK or SQ_ERR_NOMEM and frees
     * everything (ASan's leak checker watches) */
    static const char *files[] = {"ingest/ml/ratings.dat", "ingest/events.csv",
                                  "ingest/events.jsonl", "ingest/rb/mini.inter",
                                  "ingest/taobao.csv"};
    for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
        char path[1024];
        snprintf(path, sizeof path, "%s", test_fixture(files[f]));
        int finished = 0;
        for (long n = 0; n < 2000 && !finished; n++) {
            sq_ingest_opts o = base_opts();
            sq_alloc_fail_after(n);
            sq_ingest *g = NULL;
            sq_error err = {0};
            sq_status rc = sq_ingest_create(&g, &o, &err);
            if (!rc)
                rc = sq_ingest_file(g, path, &err);
            sq_alloc_fail_after(-1);
            if (rc != SQ_OK && rc != SQ_ERR_NOMEM)
                fail_msg("%s, allocation %ld failing: %s (%s)", files[f], n, sq_strerror(rc),
                         err.msg);
            finished = rc == SQ_OK;
            sq_ingest_free(g);
        }
        assert_true(finished);
    }
}

/* ======================================== Real data ========================================== */

#define NEED(rel)                                                                                  \
    const char *path_ = test_data_path(rel);                                                       \
    if (!path_) {                                                                                  \
        print_message("skipped: %s not found under $SEQREC_DATA (../shared/data)\n", rel);         \
        skip();                                                                                    \
    }                                                                                              \
    char path[1024];                                                                               \
    snprintf(path, sizeof path, "%s", path_)

static void test_real_ml100k(void **state) {
    (void)state;
    NEED("ml-100k/ml-100k.inter");
    sq_ingest_opts o = base_opts();
    sq_ingest *g = make(&o);
    read_ok(g, path);
    assert_int_equal(g->ev.n, 100000);
    assert_int_equal(total_rejected(g), 0);
    assert_int_equal(sq_strmap_count(g->users), 943);
    assert_int_equal(sq_strmap_count(g->items), 1682);
    assert_int_equal(n_texts(g), 1682);
    assert_string_equal(item_text(g, "1"), "Toy Story");
    assert_true(has_tag(g, "1", "Animation"));
    assert_true(has_tag(g, "1", "release_year=1995"));
    assert_int_equal(g->user_attrs.n, 943 * 4);
    assert_string_equal(user_attr(g, "1", "occupation"), "technician");
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < g->ev.n; i++) {
        lo = g->ev.ts[i] < lo ? g->ev.ts[i] : lo;
        hi = g->ev.ts[i] > hi ? g->ev.ts[i] : hi;
    }
    assert_int_equal(lo, 874724710);
    assert_int_equal(hi, 893286638);
    sq_ingest_free(g);
    /* gzip copies of the trio give the same builder */
    char dir[600];
    snprintf(dir, sizeof dir, "%s/ml100k", test_tmpdir());
    mkdir(dir, 0755);
    static const char *ext[] = {"inter", "item", "user"};
    char src[1100], dst[700];
    for (int i = 0; i < 3; i++) {
        snprintf(src, sizeof src, "%.*s%s", (int)(strlen(path) - 5), path, ext[i]);
        snprintf(dst, sizeof dst, "%s/ml-100k.%s.gz", dir, ext[i]);
        gz_copy(src, dst);
    }
    sq_ingest *a = make(&o), *b = make(&o);
    read_ok(a, path);
    snprintf(dst, sizeof dst, "%s/ml-100k.inter.gz", dir);
    read_ok(b, dst);
    assert_same(a, b);
    sq_ingest_free(a);
    sq_ingest_free(b);
}

static void test_real_beauty(void **state) {
    (void)state;
    NEED("beauty/beauty.txt");
    sq_ingest_opts o = base_opts();
    sq_ingest *g = make(&o);
    read_ok(g, path);
    assert_int_equal(g->ev.n, 353962);
    assert_int_equal(total_rejected(g), 0);
    assert_int_equal(sq_strmap_count(g->users), 40226);
    assert_int_equal(sq_strmap_count(g->items), 54542);
    for (size_t i = 0; i < g->ev.n; i++)
        assert_int_equal(g->ev.ts[i], (int64_t)i + 1); /* file order */
    const char *gz = test_tmp("beauty.txt.gz");
    gz_copy(path, gz);
    sq_ingest *b = make(&o);
    read_ok(b, gz);
    assert_same(g, b);
    sq_ingest_free(b);
    sq_ingest_free(g);
}

static void check_taobao_real(const sq_ingest *g) {
    assert_int_equal(g->ev.n, 40000);
    assert_int_equal(total_rejected(g), 0);
    assert_int_equal(sq_strmap_count(g->users), 3990);
    assert_int_equal(sq_strmap_count(g->items), 165);
    assert_int_equal(count_beh(g, "pv"), 5030);
    assert_int_equal(count_beh(g, "fav"), 961);
    assert_int_equal(count_beh(g, "cart"), 2009);
    assert_int_equal(count_beh(g, "buy"), 32000);
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < g->ev.n; i++) {
        lo = g->ev.ts[i] < lo ? g->ev.ts[i] : lo;
        hi = g->ev.ts[i] > hi ? g->ev.ts[i] : hi;
    }
    assert_int_equal(lo, 1511546236);
    assert_int_equal(hi, 1512370314);
}

static void test_real_taobao(void **state) {
    (void)state;
    NEED("taobao-40k/UserBehavior.csv");
    sq_ingest_opts o = base_opts();
    sq_ingest *g = make(&o);
    read_ok(g, path);
    check_taobao_real(g);
    assert_int_equal(n_texts(g), 165);
    uint32_t cats = 0;
    for (uint32_t t = 0; t < sq_strmap_count(g->tags); t++)
        cats += !strncmp(sq_strmap_key(g->tags, t, NULL), "category=", 9);
    assert_int_equal(cats, 6);
    const char *gz = test_tmp("UserBehavior.csv.gz");
    gz_copy(path, gz);
    sq_ingest *b = make(&o);
    read_ok(b, gz);
    assert_same(g, b);
    sq_ingest_free(b);
    sq_ingest_free(g);
    o.columns = "user=用户ID,item=商品ID,behaviour=行为类型,ts=时间戳";
    g = make(&o);
    read_ok(g, path);
    check_taobao_real(g);
    sq_ingest_free(g);
}

static void test_real_diginetica(void **state) {
    (void)state;
    NEED("diginetica-sample/sample_train-item-views.csv");
    sq_ingest_opts o = base_opts();
    sq_ingest *g = make(&o);
    read_ok(g, path);
    assert_int_equal(g->ev.n, 12391);
    assert_int_equal(total_rejected(g), 0);
    assert_true(g->have_sessions);
    assert_int_equal(sq_strmap_count(g->users), 2986);
    assert_int_equal(sq_strmap_count(g->items), 7139);
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < g->ev.n; i++) {
        lo = g->ev.ts[i] < lo ? g->ev.ts[i] : lo;
        hi = g->ev.ts[i] > hi ? g->ev.ts[i] : hi;
    }
    assert_true(lo >= 1451779200);        /* 2016-01-03 */
    assert_true(hi < 1464739200 + 86400); /* 2016-06-01 */
    const char *gz = test_tmp("sample_train-item-views.csv.gz");
    gz_copy(path, gz);
    sq_ingest *b = make(&o);
    read_ok(b, gz);
    assert_same(g, b);
    sq_ingest_free(b);
    sq_ingest_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lineio_basic),
        cmocka_unit_test(test_lineio_long_lines),
        cmocka_unit_test(test_lineio_gzip),
        cmocka_unit_test(test_movielens),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_tsv),
        cmocka_unit_test(test_jsonl),
        cmocka_unit_test(test_jsonl_ctx_growth),
        cmocka_unit_test(test_recbole),
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_diginetica_style),
        cmocka_unit_test(test_taobao_style),
        cmocka_unit_test(test_gzip_fixtures),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_strict),
        cmocka_unit_test(test_reject_reasons),
        cmocka_unit_test(test_malformed_middle),
        cmocka_unit_test(test_columns_positional),
        cmocka_unit_test(test_columns_by_name),
        cmocka_unit_test(test_columns_invalid),
        cmocka_unit_test(test_unknown_header),
        cmocka_unit_test(test_detect_and_forced_format),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_real_ml100k),
        cmocka_unit_test(test_real_beauty),
        cmocka_unit_test(test_real_taobao),
        cmocka_unit_test(test_real_diginetica),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
