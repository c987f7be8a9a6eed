/* test_dataset.c — sq_ingest_write and the .sqd dataset: a hand-built builder written and read
 * back through every accessor (order, ties, names, side information, statistics worked out by
 * hand, meta JSON), duplicates and the rejects file, sessions, random round trips against a
 * naive reference, corrupted and truncated files, failed writes that must leave nothing
 * behind, and allocation failure at every step of a write.
 *
 * Builders are filled directly (events appended to g->ev, ids interned in the maps), so these
 * tests do not depend on the readers. */
#include "testutil.h"

#include "builder.h"

#include "data/ingest.h"
#include "data/sqd.h"
#include "seqrec/data.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ==================================== Builder helpers ===================================== */

static sq_ingest *builder(const sq_ingest_opts *o) {
    sq_ingest *g = NULL;
    sq_error err = {0};
    assert_int_equal(sq_ingest_create(&g, o, &err), SQ_OK);
    assert_int_equal(ingest_begin_file(g, "log.csv", &err), SQ_OK);
    return g;
}

/* Adds a context field (values map with "" as value 0, as the readers do). */
static uint32_t add_ctx_field(sq_ingest *g, const char *name) {
    assert_int_equal(g->ev.n, 0); /* fields first, in these tests */
    uint32_t f = tb_intern(g->ctx_fields, name);
    assert_non_null(g->ctx_values[f] = sq_strmap_create(16));
    tb_intern(g->ctx_values[f], "");
    return f;
}

/* Appends one event; ctx: one value per context field (NULL: all ""). */
static void add_ev(sq_ingest *g, const char *user, const char *item, int64_t ts, const char *beh,
                   const char *scene, float value, uint64_t line, const char *const *ctx) {
    tb_add_event(g, user, strlen(user), item, strlen(item), ts, beh, scene, value, line, ctx);
}

static void add_tag(sq_ingest *g, const char *item, const char *tag) {
    sq_pairs *p = &g->item_tags;
    size_t cap = p->cap;
    assert_int_equal(sq_grow((void **)&p->key, &cap, p->n + 1, sizeof *p->key), SQ_OK);
    cap = p->cap;
    assert_int_equal(sq_grow((void **)&p->val, &cap, p->n + 1, sizeof *p->val), SQ_OK);
    p->cap = cap;
    p->key[p->n] = tb_intern(g->items, item);
    p->val[p->n] = tb_intern(g->tags, tag);
    p->n++;
}

static void add_text(sq_ingest *g, const char *item, const char *text) {
    uint32_t id = tb_intern(g->items, item);
    size_t old = g->item_text_cap;
    assert_int_equal(sq_grow((void **)&g->item_text, &g->item_text_cap, id + 1, sizeof(char *)),
                     SQ_OK);
    for (size_t k = old; k < g->item_text_cap; k++)
        g->item_text[k] = NULL;
    assert_non_null(g->item_text[id] = sq_strdup(text));
}

static void add_num(sq_ingest *g, const char *item, const char *name, float v) {
    uint32_t id = tb_intern(g->items, item), a = tb_intern(g->item_num_names, name);
    size_t old = g->item_num_cap;
    if (id >= old) {
        size_t c = id + 8;
        assert_non_null(g->item_num = sq_reallocn(g->item_num, c * SQ_MAX_ITEM_NUM, sizeof(float)));
        for (size_t k = old * SQ_MAX_ITEM_NUM; k < c * SQ_MAX_ITEM_NUM; k++)
            g->item_num[k] = NAN;
        g->item_num_cap = c;
    }
    g->item_num[id * SQ_MAX_ITEM_NUM + a] = v;
}

static void add_uattr(sq_ingest *g, const char *user, const char *field, const char *value) {
    uint32_t f = tb_intern(g->user_attr_fields, field);
    if (!g->user_attr_values[f])
        assert_non_null(g->user_attr_values[f] = sq_strmap_create(16));
    sq_pairs *p = &g->user_attrs;
    size_t cap = p->cap;
    assert_int_equal(sq_grow((void **)&p->key, &cap, p->n + 1, sizeof *p->key), SQ_OK);
    cap = p->cap;
    assert_int_equal(sq_grow((void **)&p->val, &cap, p->n + 1, sizeof *p->val), SQ_OK);
    cap = p->cap;
    assert_int_equal(sq_grow((void **)&p->field, &cap, p->n + 1, sizeof *p->field), SQ_OK);
    p->cap = cap;
    p->key[p->n] = tb_intern(g->users, user);
    p->field[p->n] = f;
    p->val[p->n] = tb_intern(g->user_attr_values[f], value);
    p->n++;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static sq_dataset *open_ok(const char *path) {
    sq_dataset *d = NULL;
    sq_error err = {0};
    sq_status rc = sq_data_open(&d, path, &err);
    if (rc)
        fail_msg("sq_data_open: %s", err.msg);
    return d;
}

/* ================================== The hand-built case =================================== */

/* Nine rows of log.csv (lines 2..10), one an exact duplicate (line 6 of line 2, NaN values
 * equal), ties at t=100 for u1, side information for items/users with and without events. */
static sq_ingest *hand_builder(const char *rejects) {
    sq_ingest_opts o = {0};
    o.behaviours = "view,cart,buy";
    o.rejects_path = rejects;
    sq_ingest *g = builder(&o);
    add_ctx_field(g, "device");
    const char *mob[] = {"mobile"}, *desk[] = {"desktop"};
    add_ev(g, "u1", "iA", 100, "view", "home", NAN, 2, mob);
    add_ev(g, "u2", "iB", 50, "buy", "search", 5.0f, 3, desk);
    add_ev(g, "u1", "iB", 50, "view", "", NAN, 4, mob);
    add_ev(g, "u1", "iC", 100, "buy", "home", NAN, 5, desk);
    add_ev(g, "u1", "iA", 100, "view", "home", NAN, 6, mob); /* duplicate of line 2 */
    add_ev(g, "u2", "iA", 86500, "view", "", NAN, 7, mob);
    add_ev(g, "u3", "iC", 200000, "view", "", NAN, 8, NULL);
    add_ev(g, "u1", "iA", 300, "view", "home", 4.0f, 9, mob);
    add_ev(g, "u1", "iA", 100, "view", "home", 1.0f, 10, mob); /* not a duplicate: value */
    g->have_real_time = 1;
    g->report.files = 1;
    add_tag(g, "iA", "Drama");
    add_tag(g, "iA", "Comedy");
    add_tag(g, "iA", "Drama"); /* repeated: kept once */
    add_tag(g, "iB", "Drama");
    add_tag(g, "iD", "Horror"); /* no event: unmatched */
    add_text(g, "iA", "Title A");
    add_text(g, "iC", "Title C");
    add_num(g, "iA", "price", 9.5f);
    add_num(g, "iC", "price", 3.0f);
    add_uattr(g, "u1", "gender", "F");
    add_uattr(g, "u3", "gender", "M");
    add_uattr(g, "u9", "gender", "M"); /* no event: unmatched */
    return g;
}

static void test_hand_roundtrip(void **state) {
    (void)state;
    const char *out = test_tmp("hand.sqd"), *rej = test_tmp("hand.rejects.tsv");
    sq_ingest *g = hand_builder(rej);
    sq_error err = {0};
    assert_int_equal(sq_ingest_write(g, out, &err), SQ_OK);
    const sq_ingest_report *r = sq_ingest_get_report(g);
    assert_int_equal(r->rejected[SQ_REJ_DUPLICATE], 1);
    assert_int_equal(r->kept, 8);
    assert_int_equal(r->kcore_events, 0);
    assert_int_equal(r->kcore_rounds, 0);
    assert_int_equal(r->side_unmatched, 2); /* iD, u9 */
    sq_ingest_free(g);

    /* The rejects file names the duplicate's line and the line it repeats. */
    char *rtext = test_read_file(rej, NULL);
    assert_non_null(rtext);
    assert_string_equal(rtext, "file\tline\treason\tfield\tdetail\trow\n"
                               "log.csv\t6\tduplicate\trow\tsame as line 2\t\n");
    free(rtext);

    sq_dataset *d = open_ok(out);
    const sq_data_info *in = sq_data_info_of(d);
    assert_int_equal(in->n_events, 8);
    assert_int_equal(in->n_users, 3);
    assert_int_equal(in->n_items, 3);
    assert_int_equal(in->n_behaviours, 3);
    assert_int_equal(in->n_scenes, 3);
    assert_int_equal(in->n_ctx, 1);
    assert_int_equal(in->n_tags, 3);
    assert_int_equal(in->n_item_num, 1);
    assert_int_equal(in->n_user_attrs, 1);
    assert_int_equal(in->flags, SQ_DATA_REAL_TIME | SQ_DATA_VALUES);
    assert_int_equal(in->time_min, 50);
    assert_int_equal(in->time_max, 200000);
    assert_true(in->fingerprint != 0);

    /* Ids: first appearance among kept events. */
    size_t len;
    assert_string_equal(sq_data_user_id(d, 0, &len), "u1");
    assert_int_equal(len, 2);
    assert_string_equal(sq_data_user_id(d, 1, NULL), "u2");
    assert_string_equal(sq_data_user_id(d, 2, NULL), "u3");
    assert_null(sq_data_user_id(d, 3, NULL));
    assert_string_equal(sq_data_item_id(d, 0, NULL), "iA");
    assert_string_equal(sq_data_item_id(d, 1, NULL), "iB");
    assert_string_equal(sq_data_item_id(d, 2, NULL), "iC");
    assert_null(sq_data_item_id(d, 3, NULL));
    assert_int_equal(sq_data_find_user(d, "u2", 2), 1);
    assert_int_equal(sq_data_find_user(d, "u9", 2), UINT32_MAX);
    assert_int_equal(sq_data_find_item(d, "iC", 2), 2);
    assert_int_equal(sq_data_find_item(d, "iD", 2), UINT32_MAX);
    assert_int_equal(sq_data_find_behaviour(d, "buy"), 2);
    assert_int_equal(sq_data_find_behaviour(d, "cart"), 1);
    assert_int_equal(sq_data_find_behaviour(d, "click"), UINT32_MAX);
    assert_string_equal(sq_data_behaviour_name(d, 0), "view");
    assert_null(sq_data_behaviour_name(d, 3));
    assert_string_equal(sq_data_scene_name(d, 0), "");
    assert_string_equal(sq_data_scene_name(d, 1), "home");
    assert_string_equal(sq_data_scene_name(d, 2), "search");
    assert_string_equal(sq_data_ctx_name(d, 0), "device");
    assert_int_equal(sq_data_ctx_size(d, 0), 3);
    assert_string_equal(sq_data_ctx_value(d, 0, 1), "mobile");
    assert_string_equal(sq_data_ctx_value(d, 0, 2), "desktop");
    assert_null(sq_data_ctx_value(d, 1, 0));

    /* Sequences: u1 = lines 4 (t50), 2 (t100), 5 (t100), 10 (t100), 9 (t300): ties at 100 in
     * input order; u2 = lines 3, 7; u3 = line 8. */
    static const uint64_t eoff[] = {0, 5, 7, 8};
    static const uint32_t eitems[] = {1, 0, 2, 0, 0, 1, 0, 2};
    static const int64_t etimes[] = {50, 100, 100, 100, 300, 50, 86500, 200000};
    static const uint8_t ebeh[] = {0, 0, 2, 0, 0, 2, 0, 0};
    static const uint16_t escene[] = {0, 1, 1, 1, 1, 2, 0, 0};
    static const uint32_t ectx[] = {1, 1, 2, 1, 1, 2, 1, 0};
    static const float evals[] = {NAN, NAN, NAN, 1.0f, 4.0f, 5.0f, NAN, NAN};
    const uint64_t *off = sq_data_offsets(d);
    for (int k = 0; k < 4; k++)
        assert_int_equal(off[k], eoff[k]);
    for (int k = 0; k < 8; k++) {
        assert_int_equal(sq_data_items(d)[k], eitems[k]);
        assert_int_equal(sq_data_times(d)[k], etimes[k]);
        assert_int_equal(sq_data_behaviours(d)[k], ebeh[k]);
        assert_int_equal(sq_data_scenes(d)[k], escene[k]);
        assert_int_equal(sq_data_context(d)[k], ectx[k]);
        float v = sq_data_values(d)[k];
        if (isnan(evals[k]))
            assert_true(isnan(v));
        else
            assert_float_equal(v, evals[k], 0);
    }
    assert_null(sq_data_sessions(d));

    /* Side information by dense id. */
    uint32_t nt;
    const uint32_t *tags = sq_data_item_tags(d, 0, &nt);
    assert_int_equal(nt, 2);
    assert_string_equal(sq_data_tag_name(d, tags[0]), "Drama");
    assert_string_equal(sq_data_tag_name(d, tags[1]), "Comedy");
    tags = sq_data_item_tags(d, 1, &nt);
    assert_int_equal(nt, 1);
    assert_int_equal(tags[0], 0);
    sq_data_item_tags(d, 2, &nt);
    assert_int_equal(nt, 0);
    assert_string_equal(sq_data_tag_name(d, 2), "Horror");
    assert_string_equal(sq_data_item_text(d, 0, &len), "Title A");
    assert_int_equal(len, 7);
    assert_string_equal(sq_data_item_text(d, 1, &len), "");
    assert_int_equal(len, 0);
    assert_string_equal(sq_data_item_text(d, 2, NULL), "Title C");
    assert_string_equal(sq_data_item_num_name(d, 0), "price");
    assert_float_equal(sq_data_item_num(d)[0], 9.5, 0);
    assert_true(isnan(sq_data_item_num(d)[1]));
    assert_float_equal(sq_data_item_num(d)[2], 3.0, 0);
    assert_string_equal(sq_data_user_attr_name(d, 0), "gender");
    assert_int_equal(sq_data_user_attr_size(d, 0), 2);
    const uint32_t *ua = sq_data_user_attrs(d);
    assert_string_equal(sq_data_user_attr_value(d, 0, ua[0]), "F");
    assert_int_equal(ua[1], UINT32_MAX);
    assert_string_equal(sq_data_user_attr_value(d, 0, ua[2]), "M");

    /* Statistics, by hand. u1: 5 events, 3 distinct items, span 250 s, 5 per day (span < 1
     * day), recency (200000 - 300) s; shares view 4/5, cart 0, buy 1/5. u2: span 86450 s =
     * 1.000579 days, 2 / 1.000579 per day, recency 113500 s. u3: one event, recency 0. */
    const double day = 86400.0;
    const float *us = sq_data_user_stats(d);
    const float eus[3][8] = {{5, 3, (float)(250 / day), 5, (float)(199700 / day), 0.8f, 0, 0.2f},
                             {2, 2, (float)(86450 / day), (float)(2 / (86450 / day)),
                              (float)(113500 / day), 0.5f, 0, 0.5f},
                             {1, 1, 0, 1, 0, 1, 0, 0}};
    for (int u = 0; u < 3; u++)
        for (int c = 0; c < 8; c++)
            assert_float_equal(us[u * 8 + c], eus[u][c], 1e-6);
    /* iA: 4 events by 2 users, last at 86500; iB: 2 events, last at 50; iC: last at 200000. */
    const float *is = sq_data_item_stats(d);
    const float eis[3][6] = {{4, 2, (float)(113500 / day), 1, 0, 0},
                             {2, 2, (float)(199950 / day), 0.5f, 0, 0.5f},
                             {2, 2, 0, 0.5f, 0, 0.5f}};
    for (int i = 0; i < 3; i++)
        for (int c = 0; c < 6; c++)
            assert_float_equal(is[i * 6 + c], eis[i][c], 1e-6);

    /* Meta JSON: every report counter, inputs, options. */
    cJSON *m = cJSON_Parse(sq_data_meta_json(d));
    assert_non_null(m);
    cJSON *rep = cJSON_GetObjectItem(m, "report");
    assert_int_equal(cJSON_GetObjectItem(rep, "kept")->valuedouble, 8);
    assert_int_equal(cJSON_GetObjectItem(rep, "rows_read")->valuedouble, 9);
    assert_int_equal(cJSON_GetObjectItem(rep, "files")->valuedouble, 1);
    assert_int_equal(cJSON_GetObjectItem(rep, "side_unmatched")->valuedouble, 2);
    assert_int_equal(cJSON_GetObjectItem(rep, "kcore_rounds")->valuedouble, 0);
    cJSON *rj = cJSON_GetObjectItem(rep, "rejected");
    assert_int_equal(cJSON_GetObjectItem(rj, "duplicate")->valuedouble, 1);
    assert_int_equal(cJSON_GetObjectItem(rj, "bad_time")->valuedouble, 0);
    assert_int_equal(cJSON_GetArraySize(rj), SQ_REJ_COUNT);
    cJSON *inputs = cJSON_GetObjectItem(m, "inputs");
    assert_int_equal(cJSON_GetArraySize(inputs), 1);
    assert_string_equal(cJSON_GetArrayItem(inputs, 0)->valuestring, "log.csv");
    cJSON *opt = cJSON_GetObjectItem(m, "options");
    assert_int_equal(cJSON_GetObjectItem(opt, "min_user_events")->valuedouble, 0);
    assert_string_equal(cJSON_GetObjectItem(opt, "behaviours")->valuestring, "view,cart,buy");
    cJSON_Delete(m);
    uint64_t fp = in->fingerprint;
    sq_data_close(d);

    /* Same content again: same fingerprint. One event less: another fingerprint. */
    g = hand_builder(NULL);
    assert_int_equal(sq_ingest_write(g, test_tmp("hand2.sqd"), &err), SQ_OK);
    sq_ingest_free(g);
    d = open_ok(test_tmp("hand2.sqd"));
    assert_true(sq_data_info_of(d)->fingerprint == fp);
    sq_data_close(d);
    g = hand_builder(NULL);
    g->ev.n--;
    assert_int_equal(sq_ingest_write(g, test_tmp("hand3.sqd"), &err), SQ_OK);
    sq_ingest_free(g);
    d = open_ok(test_tmp("hand3.sqd"));
    assert_true(sq_data_info_of(d)->fingerprint != fp);
    sq_data_close(d);
}

/* Counts progress calls per stage name. */
typedef struct {
    int calls;        /* all calls */
    int writing;      /* calls of the "writing" stage */
    int ordering_end; /* "ordering" reported done == total */
} progress_seen;

static void on_progress(void *ud, const char *stage, uint64_t done, uint64_t total,
                        const char *unit) {
    progress_seen *p = ud;
    (void)unit;
    p->calls++;
    p->writing += strcmp(stage, "writing") == 0;
    p->ordering_end += strcmp(stage, "ordering") == 0 && done == total;
}

static void test_keep_duplicates(void **state) {
    (void)state;
    sq_ingest *g = hand_builder(NULL);
    g->opts.keep_duplicates = 1;
    progress_seen seen = {0};
    g->opts.reporter.progress = on_progress;
    g->opts.reporter.ud = &seen;
    sq_error err = {0};
    assert_int_equal(sq_ingest_write(g, test_tmp("keep.sqd"), &err), SQ_OK);
    assert_int_equal(seen.writing, 5); /* one per gathered event column */
    assert_int_equal(seen.ordering_end, 1);
    assert_true(seen.calls > 8);
    assert_int_equal(sq_ingest_get_report(g)->rejected[SQ_REJ_DUPLICATE], 0);
    assert_int_equal(sq_ingest_get_report(g)->kept, 9);
    sq_ingest_free(g);
    sq_dataset *d = open_ok(test_tmp("keep.sqd"));
    assert_int_equal(sq_data_info_of(d)->n_events, 9);
    /* u1: lines 4, 2, 5, 6, 10 (t=100 ties in input order), 9. */
    assert_int_equal(sq_data_offsets(d)[1], 6);
    static const float ev[] = {NAN, NAN, NAN, NAN, 1.0f, 4.0f};
    for (int k = 0; k < 6; k++)
        if (isnan(ev[k]))
            assert_true(isnan(sq_data_values(d)[k]));
        else
            assert_float_equal(sq_data_values(d)[k], ev[k], 0);
    assert_int_equal(sq_data_items(d)[3], 0);
    sq_data_close(d);
}

/* Without real time (plain files): times are file order, time-based statistics are 0, and a
 * session gap is ignored. */
static void test_no_real_time(void **state) {
    (void)state;
    sq_ingest_opts o = {0};
    o.session_gap = 1;
    sq_ingest *g = builder(&o);
    for (int k = 0; k < 6; k++) {
        char u[8], it[8];
        snprintf(u, sizeof u, "%d", 1 + k / 3);
        snprintf(it, sizeof it, "%d", k % 4);
        add_ev(g, u, it, k * 1000000, "interact", "", NAN, (uint64_t)k + 1, NULL);
    }
    sq_error err = {0};
    assert_int_equal(sq_ingest_write(g, test_tmp("plain.sqd"), &err), SQ_OK);
    sq_ingest_free(g);
    sq_dataset *d = open_ok(test_tmp("plain.sqd"));
    const sq_data_info *in = sq_data_info_of(d);
    assert_int_equal(in->flags, 0);
    assert_int_equal(in->n_users, 2);
    assert_int_equal(in->n_items, 4);
    assert_null(sq_data_sessions(d));
    assert_null(sq_data_context(d));
    assert_null(sq_data_item_num(d));
    assert_null(sq_data_user_attrs(d));
    const float *us = sq_data_user_stats(d);
    /* u "1": items 0,1,2; u "2": items 3,0,1. Width 5 + 1 behaviour. */
    static const float eus[2][6] = {{3, 3, 0, 0, 0, 1}, {3, 3, 0, 0, 0, 1}};
    for (int u = 0; u < 2; u++)
        for (int c = 0; c < 6; c++)
            assert_float_equal(us[u * 6 + c], eus[u][c], 0);
    const float *is = sq_data_item_stats(d);
    static const float eis[4][4] = {{2, 2, 0, 1}, {2, 2, 0, 1}, {1, 1, 0, 1}, {1, 1, 0, 1}};
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 4; c++)
            assert_float_equal(is[i * 4 + c], eis[i][c], 0);
    sq_data_close(d);
}

static void test_sessions(void **state) {
    (void)state;
    sq_ingest_opts o = {0};
    o.session_gap = 1800;
    sq_ingest *g = builder(&o);
    /* u: 0, 1000, 2800 (gap 1800: same), 4601 (gap 1801: new), 4700; v: 10, 100000. */
    add_ev(g, "u", "a", 0, "view", "", NAN, 1, NULL);
    add_ev(g, "v", "a", 100000, "view", "", NAN, 2, NULL);
    add_ev(g, "u", "b", 1000, "view", "", NAN, 3, NULL);
    add_ev(g, "u", "c", 4601, "view", "", NAN, 4, NULL);
    add_ev(g, "u", "a", 2800, "view", "", NAN, 5, NULL);
    add_ev(g, "u", "b", 4700, "view", "", NAN, 6, NULL);
    add_ev(g, "v", "c", 10, "view", "", NAN, 7, NULL);
    g->have_real_time = 1;
    sq_error err = {0};
    assert_int_equal(sq_ingest_write(g, test_tmp("sess.sqd"), &err), SQ_OK);
    sq_ingest_free(g);
    sq_dataset *d = open_ok(test_tmp("sess.sqd"));
    assert_int_equal(sq_data_info_of(d)->flags, SQ_DATA_REAL_TIME | SQ_DATA_SESSIONS);
    static const uint32_t es[] = {0, 0, 0, 1, 1, 0, 1};
    const uint32_t *s = sq_data_sessions(d);
    assert_non_null(s);
    for (int k = 0; k < 7; k++)
        assert_int_equal(s[k], es[k]);
    sq_data_close(d);

    /* Sessions as the sequence key: one session per sequence, all numbered 0. */
    g = builder(NULL);
    add_ev(g, "s1", "a", 0, "view", "", NAN, 1, NULL);
    add_ev(g, "s1", "b", 99999, "view", "", NAN, 2, NULL);
    add_ev(g, "s2", "a", 5, "view", "", NAN, 3, NULL);
    g->have_real_time = 1;
    g->have_sessions = 1;
    assert_int_equal(sq_ingest_write(g, test_tmp("sess2.sqd"), &err), SQ_OK);
    sq_ingest_free(g);
    d = open_ok(test_tmp("sess2.sqd"));
    assert_int_equal(sq_data_info_of(d)->flags, SQ_DATA_REAL_TIME | SQ_DATA_SESSIONS);
    for (int k = 0; k < 3; k++)
        assert_int_equal(sq_data_sessions(d)[k], 0);
    sq_data_close(d);
}

/* ================================= Random round trips ==================================== */

typedef struct {
    uint32_t u, i, b, s, c;
    int64_t t;
    float v;
    size_t idx; /* input position */
} rev;

static int rev_cmp(const void *a, const void *b) {
    const rev *x = a, *y = b;
    /* within one user: by time, ties in input order */
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int same_event(const rev *a, const rev *b) {
    return a->u == b->u && a->i == b->i && a->b == b->b && a->s == b->s && a->c == b->c &&
           a->t == b->t && (a->v == b->v || (isnan(a->v) && isnan(b->v)));
}

static void test_random_roundtrip(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        sq_rng r;
        sq_rng_seed(&r, seed);
        size_t n = 50 + sq_rng_below(&r, 1500);
        uint32_t nu = 1 + sq_rng_below(&r, 60), ni = 1 + sq_rng_below(&r, 80);
        sq_ingest *g = builder(NULL);
        add_ctx_field(g, "dev");
        rev *ev = calloc(n, sizeof *ev);
        char names[3][16];
        for (size_t k = 0; k < n; k++) {
            rev *e = &ev[k];
            if (k > 0 && sq_rng_below(&r, 10) == 0) {
                *e = ev[sq_rng_below(&r, (uint32_t)k)]; /* an exact repeat */
            } else {
                e->u = sq_rng_below(&r, nu);
                e->i = sq_rng_below(&r, ni);
                e->b = sq_rng_below(&r, 3);
                e->s = sq_rng_below(&r, 2);
                e->c = sq_rng_below(&r, 3);
                e->t = (int64_t)sq_rng_below(&r, 40); /* many ties */
                e->v = sq_rng_below(&r, 3) == 0 ? NAN : (float)sq_rng_below(&r, 5);
            }
            e->idx = k;
            snprintf(names[0], 16, "user%u", e->u);
            snprintf(names[1], 16, "item%u", e->i);
            snprintf(names[2], 16, "c%u", e->c);
            const char *cv[] = {names[2]};
            static const char *behs[] = {"view", "cart", "buy"}, *scenes[] = {"", "feed"};
            add_ev(g, names[0], names[1], e->t, behs[e->b], scenes[e->s], e->v, k + 1, cv);
        }
        g->have_real_time = 1;
        sq_error err = {0};
        const char *out = test_tmp("rand.sqd");
        assert_int_equal(sq_ingest_write(g, out, &err), SQ_OK);
        sq_ingest_free(g);

        /* Reference: drop repeats (O(n^2)), group users by first appearance, stable by time. */
        uint8_t *dup = calloc(n, 1);
        size_t kept = 0;
        for (size_t k = 0; k < n; k++) {
            for (size_t j = 0; j < k && !dup[k]; j++)
                if (!dup[j] && same_event(&ev[j], &ev[k]))
                    dup[k] = 1;
            kept += !dup[k];
        }
        sq_dataset *d = open_ok(out);
        const sq_data_info *in = sq_data_info_of(d);
        assert_int_equal(in->n_events, kept);
        rev *seq = calloc(n, sizeof *seq);
        uint32_t user_rank = 0;
        uint8_t *seen_user = calloc(nu, 1);
        for (size_t k = 0; k < n; k++) {
            if (dup[k] || seen_user[ev[k].u])
                continue;
            seen_user[ev[k].u] = 1;
            uint32_t uu = ev[k].u;
            size_t m = 0;
            for (size_t j = 0; j < n; j++)
                if (!dup[j] && ev[j].u == uu)
                    seq[m++] = ev[j];
            qsort(seq, m, sizeof *seq, rev_cmp);
            char want[16];
            snprintf(want, sizeof want, "user%u", uu);
            assert_string_equal(sq_data_user_id(d, user_rank, NULL), want);
            assert_int_equal(sq_data_find_user(d, want, strlen(want)), user_rank);
            uint64_t lo = sq_data_offsets(d)[user_rank];
            assert_int_equal(sq_data_offsets(d)[user_rank + 1] - lo, m);
            for (size_t j = 0; j < m; j++) {
                char iname[16];
                snprintf(iname, sizeof iname, "item%u", seq[j].i);
                assert_string_equal(sq_data_item_id(d, sq_data_items(d)[lo + j], NULL), iname);
                assert_int_equal(sq_data_times(d)[lo + j], seq[j].t);
                static const char *bn[] = {"view", "cart", "buy"}; /* ids: first-seen order */
                assert_string_equal(sq_data_behaviour_name(d, sq_data_behaviours(d)[lo + j]),
                                    bn[seq[j].b]);
                assert_int_equal(sq_data_scenes(d)[lo + j], seq[j].s);
                char cname[16];
                snprintf(cname, sizeof cname, "c%u", seq[j].c);
                assert_string_equal(sq_data_ctx_value(d, 0, sq_data_context(d)[lo + j]), cname);
                float v = sq_data_values(d)[lo + j];
                assert_true(v == seq[j].v || (isnan(v) && isnan(seq[j].v)));
            }
            user_rank++;
        }
        assert_int_equal(user_rank, in->n_users);
        free(seen_user);
        free(seq);
        free(dup);
        free(ev);
        sq_data_close(d);
    }
}

/* ==================================== Corrupted files ===================================== */

static void expect_format_error(const char *path, const char *what) {
    sq_dataset *d = NULL;
    sq_error err = {0};
    sq_status rc = sq_data_open(&d, path, &err);
    if (rc != SQ_ERR_FORMAT)
        fail_msg("%s: expected a format error, got %d (%s)", what, rc, err.msg);
    assert_null(d);
    assert_non_null(strstr(err.msg, path)); /* the message names the file */
}

/* Recomputes every checksum and the fingerprint after a deliberate edit, so that only the
 * consistency checks can catch it. */
static void reseal(char *buf) {
    sqd_header h;
    memcpy(&h, buf, sizeof h);
    sqd_dirent *dir = (sqd_dirent *)(buf + sizeof h);
    for (uint32_t k = 0; k < h.n_sections; k++)
        dir[k].crc = sq_crc32(0, buf + dir[k].offset, dir[k].size);
    h.dir_crc = sq_crc32(0, dir, h.n_sections * sizeof *dir);
    h.fingerprint = sqd_fingerprint(&h, dir, h.n_sections);
    h.header_crc = sq_crc32(0, &h, offsetof(sqd_header, header_crc));
    memcpy(buf, &h, sizeof h);
}

static const sqd_dirent *find_section(const char *buf, uint32_t id) {
    sqd_header h;
    memcpy(&h, buf, sizeof h);
    const sqd_dirent *dir = (const sqd_dirent *)(buf + sizeof h);
    for (uint32_t k = 0; k < h.n_sections; k++)
        if (dir[k].id == id)
            return &dir[k];
    return NULL;
}

static void test_corrupt(void **state) {
    (void)state;
    const char *good = test_tmp("good.sqd"), *bad = test_tmp("bad.sqd");
    sq_ingest *g = hand_builder(NULL);
    sq_error err = {0};
    assert_int_equal(sq_ingest_write(g, good, &err), SQ_OK);
    sq_ingest_free(g);
    size_t n;
    char *orig = test_read_file(good, &n);
    assert_non_null(orig);
    assert_int_equal(n % SQD_ALIGN, 0);
    char *buf = malloc(n);
    sqd_header h;
    memcpy(&h, orig, sizeof h);
    const sqd_dirent *dir = (const sqd_dirent *)(orig + sizeof h);

    /* A flipped byte in the header, in the directory, in every non-empty section. */
    size_t spots[3 + SQD_MAX_SECTIONS];
    size_t nspots = 0;
    spots[nspots++] = 9;            /* version */
    spots[nspots++] = 40;           /* a count */
    spots[nspots++] = sizeof h + 8; /* directory */
    for (uint32_t k = 0; k < h.n_sections; k++) {
        assert_int_equal(dir[k].offset % SQD_ALIGN, 0);
        if (dir[k].size)
            spots[nspots++] = dir[k].offset + dir[k].size / 2;
    }
    assert_true(nspots > 20);
    for (size_t k = 0; k < nspots; k++) {
        memcpy(buf, orig, n);
        buf[spots[k]] ^= 0x10;
        test_write_file(bad, buf, n);
        char what[64];
        snprintf(what, sizeof what, "byte %zu flipped", spots[k]);
        expect_format_error(bad, what);
    }
    /* Truncated at many points, and one byte appended. */
    for (size_t cut = 0; cut < n; cut += (cut < 256 ? 7 : 61)) {
        test_write_file(bad, orig, cut);
        expect_format_error(bad, "truncated");
    }
    memcpy(buf, orig, n);
    test_write_file(bad, buf, n);
    FILE *f = fopen(bad, "ab");
    fputc(0, f);
    fclose(f);
    expect_format_error(bad, "extended");

    /* Wrong magic. */
    memcpy(buf, orig, n);
    buf[0] = 'X';
    test_write_file(bad, buf, n);
    expect_format_error(bad, "magic");
    sq_dataset *d = NULL;
    assert_int_equal(sq_data_open(&d, bad, &err), SQ_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "not a seqrec dataset"));

    /* Another version, with a valid header checksum: named clearly. */
    memcpy(buf, orig, n);
    sqd_header h2 = h;
    h2.version = 7;
    h2.header_crc = sq_crc32(0, &h2, offsetof(sqd_header, header_crc));
    memcpy(buf, &h2, sizeof h2);
    test_write_file(bad, buf, n);
    assert_int_equal(sq_data_open(&d, bad, &err), SQ_ERR_FORMAT);
    char want[128];
    snprintf(want, sizeof want, "%s: dataset format version 7, this seqrec reads %d", bad,
             SQD_VERSION);
    assert_string_equal(err.msg, want);

    /* Consistent checksums, inconsistent content: each caught by its own rule. */
    struct {
        uint32_t id;
        size_t at;       /* byte offset in the section */
        uint32_t value;  /* written as u32 (or u8 / u64 as the section wants) */
        const char *msg; /* part of the expected message */
    } edits[] = {
        {SQD_SEC_ITEMS, 0, 3, "out of range"},                /* item id 3 of 3 */
        {SQD_SEC_BEHS, 2, 3, "out of range"},                 /* behaviour 3 of 3 */
        {SQD_SEC_CTX, 4, 9, "context field 0"},               /* value 9 of 3 */
        {SQD_SEC_OFFSETS, 8, 0, "offsets"},                   /* user 0 has no event */
        {SQD_SEC_OFFSETS, 16, 4, "offsets"},                  /* user 1 ends before it starts */
        {SQD_SEC_TIMES, 0, 400, "not in order"},              /* 400 before 100 */
        {SQD_SEC_TIMES, 7 * 8, 1, "range"},                   /* below time_min */
        {SQD_SEC_TAG_IDS, 0, 5, "tag id"},                    /* tag 5 of 3 */
        {SQD_SEC_TAG_OFFSETS, 4, 7, "tag"},                   /* offsets past the ids */
        {SQD_SEC_USER_ATTRS, 0, 4, "attribute"},              /* value 4 of 2 */
        {SQD_SEC_USER_IDS, 16 + 3 * 8 + 2, 'x', "malformed"}, /* a NUL terminator gone */
        {SQD_SEC_USER_IDS, 0, 4, "strings"},                  /* string count 4, header says 3 */
        {SQD_SEC_META, 0, 0, "NUL"},                          /* handled below: last byte */
    };
    for (size_t k = 0; k < sizeof edits / sizeof *edits; k++) {
        memcpy(buf, orig, n);
        const sqd_dirent *e = find_section(buf, edits[k].id);
        assert_non_null(e);
        char *p = buf + e->offset + edits[k].at;
        if (edits[k].id == SQD_SEC_BEHS || (edits[k].id == SQD_SEC_USER_IDS && edits[k].at > 0))
            *p = (char)edits[k].value;
        else if (edits[k].id == SQD_SEC_OFFSETS || edits[k].id == SQD_SEC_TIMES ||
                 edits[k].id == SQD_SEC_USER_IDS) {
            uint64_t v = edits[k].value;
            memcpy(p, &v, 8);
        } else if (edits[k].id == SQD_SEC_META)
            buf[e->offset + e->size - 1] = '}';
        else
            memcpy(p, &edits[k].value, 4);
        reseal(buf);
        test_write_file(bad, buf, n);
        d = NULL;
        sq_status rc = sq_data_open(&d, bad, &err);
        if (rc != SQ_ERR_FORMAT || !strstr(err.msg, edits[k].msg))
            fail_msg("edit %zu: got %d: %s", k, rc, err.msg);
    }
    /* A misaligned section and overlapping sections. */
    memcpy(buf, orig, n);
    sqd_dirent *wdir = (sqd_dirent *)(buf + sizeof h);
    wdir[3].offset += 8;
    reseal(buf);
    test_write_file(bad, buf, n);
    assert_int_equal(sq_data_open(&d, bad, &err), SQ_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "aligned"));
    memcpy(buf, orig, n);
    wdir[3].offset = wdir[2].offset;
    reseal(buf);
    test_write_file(bad, buf, n);
    assert_int_equal(sq_data_open(&d, bad, &err), SQ_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "overlaps"));

    /* The untouched file still opens. */
    test_write_file(bad, orig, n);
    sq_data_close(open_ok(bad));
    free(buf);
    free(orig);

    /* Not a file at all. */
    assert_int_equal(sq_data_open(&d, test_tmp("missing.sqd"), &err), SQ_ERR_IO);
    assert_int_equal(sq_data_open(&d, test_tmpdir(), &err), SQ_ERR_IO);
    test_write_file(bad, "", 0);
    expect_format_error(bad, "empty");
}

/* ================================ Failures leave nothing ================================== */

static void test_failed_write(void **state) {
    (void)state;
    sq_error err = {0};
    /* A missing directory. */
    const char *missing = test_tmp("no/such/dir/out.sqd");
    sq_ingest *g = hand_builder(NULL);
    assert_int_equal(sq_ingest_write(g, missing, &err), SQ_ERR_IO);
    assert_false(file_exists(missing));
    /* The builder is unchanged by the failure: the same write to a good path succeeds. */
    assert_int_equal(sq_ingest_get_report(g)->rejected[SQ_REJ_DUPLICATE], 0);
    assert_int_equal(sq_ingest_write(g, test_tmp("retry.sqd"), &err), SQ_OK);
    assert_int_equal(sq_ingest_get_report(g)->rejected[SQ_REJ_DUPLICATE], 1);
    sq_ingest_free(g);

    /* Everything removed by k-core: SQ_ERR_EMPTY saying why; an existing file is untouched. */
    const char *out = test_tmp("existing.sqd");
    test_write_file(out, "old contents", (size_t)-1);
    sq_ingest_opts o = {0};
    o.min_user_events = 5;
    o.min_item_events = 5;
    o.rejects_path = test_tmp("empty.rejects");
    g = builder(&o);
    add_ev(g, "a", "x", 1, "view", "", NAN, 1, NULL);
    add_ev(g, "a", "x", 1, "view", "", NAN, 2, NULL); /* a duplicate */
    add_ev(g, "b", "y", 2, "view", "", NAN, 3, NULL);
    assert_int_equal(sq_ingest_write(g, out, &err), SQ_ERR_EMPTY);
    assert_string_equal(err.msg, "no event left after k-core (min-user-events 5, "
                                 "min-item-events 5): 2 events removed in 1 rounds");
    sq_ingest_free(g);
    char *s = test_read_file(out, NULL);
    assert_string_equal(s, "old contents");
    free(s);
    assert_false(file_exists(test_tmp("empty.rejects")));
    char tmpname[600];
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", out, (long)getpid());
    assert_false(file_exists(tmpname));

    /* Nothing read at all. */
    g = builder(NULL);
    assert_int_equal(sq_ingest_write(g, out, &err), SQ_ERR_EMPTY);
    assert_string_equal(err.msg, "no event to write: no rows were read");
    g->report.rows_read = 4;
    g->report.rejected[SQ_REJ_BAD_TIME] = 4;
    assert_int_equal(sq_ingest_write(g, out, &err), SQ_ERR_EMPTY);
    assert_string_equal(err.msg, "no event to write: all 4 rows were rejected");
    sq_ingest_free(g);
}

/* Every allocation of a write failing in turn: SQ_ERR_NOMEM, no file, no leak (ASan). */
static void test_alloc_failure(void **state) {
    (void)state;
    const char *out = test_tmp("nomem.sqd");
    long k;
    for (k = 0; k < 10000; k++) {
        sq_ingest *g = hand_builder(NULL);
        g->opts.min_user_events = 2;
        g->opts.min_item_events = 2;
        sq_error err = {0};
        sq_alloc_fail_after(k);
        sq_status rc = sq_ingest_write(g, out, &err);
        sq_alloc_fail_after(-1);
        sq_ingest_free(g);
        if (rc == SQ_OK)
            break;
        if (rc != SQ_ERR_NOMEM)
            fail_msg("failing allocation %ld: status %d (%s)", k, rc, err.msg);
        assert_false(file_exists(out));
    }
    assert_true(k > 10); /* the write does allocate, and each failure point was reached */
    sq_dataset *d = open_ok(out);
    /* u3 and its only item iC... k-core 2/2: u3 (1 event) goes, then iC has 1 (u1) and goes. */
    assert_int_equal(sq_data_info_of(d)->n_users, 2);
    assert_int_equal(sq_data_info_of(d)->n_items, 2);
    sq_data_close(d);
    /* Opening under allocation failure: SQ_ERR_NOMEM until it has what it needs. */
    for (k = 0; k < 100; k++) {
        sq_error err = {0};
        d = NULL;
        sq_alloc_fail_after(k);
        sq_status rc = sq_data_open(&d, out, &err);
        sq_alloc_fail_after(-1);
        if (rc == SQ_OK)
            break;
        assert_int_equal(rc, SQ_ERR_NOMEM);
        assert_null(d);
    }
    assert_int_equal(k, 3); /* the handle and two id indexes */
    sq_data_close(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_roundtrip),   cmocka_unit_test(test_keep_duplicates),
        cmocka_unit_test(test_no_real_time),     cmocka_unit_test(test_sessions),
        cmocka_unit_test(test_random_roundtrip), cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_failed_write),     cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
