/* write.c — sq_ingest_write: from a filled builder to a .sqd file on disk.
 *
 *   check ids ─▶ duplicates ─▶ k-core ─▶ dense ids ─▶ per-user order ─▶ statistics
 *     ─▶ side information by dense id ─▶ meta JSON ─▶ sections through sq_afile ─▶ commit
 *     ─▶ rejects file commit
 *
 * The stages live in clean.c and stats.c; the file layout in sqd.h. Per-event columns are
 * never copied into sorted arrays: they are gathered through the final permutation in small
 * chunks straight into the file, so the extra memory is about 9 bytes per event (the dead
 * flags, and one scratch array that holds the duplicate finder's keys, then the k-core's
 * adjacency lists, then the final permutation) plus per-user and per-item arrays.
 *
 * The builder is only read until the file is complete; the report and the rejects file are
 * updated just before the commit, so a write that fails early (no memory, bad path) changes
 * nothing and can be retried. Nothing is left at out_path on failure: the file is written
 * under a temporary name and renamed into place only when complete. */
#define _POSIX_C_SOURCE 200809L
#include "data/clean.h"
#include "data/sqd.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

_Static_assert((int)SQD_MAX_FIELDS == (int)SQ_MAX_CTX, "context field limits differ");
_Static_assert((int)SQD_MAX_ITEM_NUM == (int)SQ_MAX_ITEM_NUM, "numeric attribute limits differ");

enum { CHUNK = 8192 }; /* elements per gather chunk */

/* Everything the write computes, freed in one place. */
typedef struct {
    uint8_t *dead;     /* per builder event: CLEAN_* */
    clean_dups dups;   /* duplicates in input order */
    clean_ids ids;     /* dense ids */
    uint64_t *work;    /* scratch of 8 bytes per builder event, shared by the stages */
    uint64_t *off;     /* CSR offsets, n_users + 1 */
    uint32_t *perm;    /* builder event index by dataset position (inside work) */
    float *ustats;     /* user statistics rows */
    float *istats;     /* item statistics rows */
    uint32_t *tag_off; /* per dense item + 1: CSR into tag_ids */
    uint32_t *tag_ids; /* item tags by dense item */
    float *item_num;   /* dense item × n_item_num */
    uint32_t *uattr;   /* dense user × n_user_attrs, UINT32_MAX missing */
    char *meta;        /* meta JSON text (cJSON's allocation) */
    sqd_writer *w;     /* the file writer */
    void *scratch;     /* gather chunk */
} wstate;

static void wstate_free(wstate *s) {
    sq_free(s->dead);
    clean_dups_free(&s->dups);
    clean_ids_free(&s->ids);
    sq_free(s->work);
    sq_free(s->off);
    sq_free(s->ustats);
    sq_free(s->istats);
    sq_free(s->tag_off);
    sq_free(s->tag_ids);
    sq_free(s->item_num);
    sq_free(s->uattr);
    if (s->meta)
        cJSON_free(s->meta);
    sq_free(s->w);
    sq_free(s->scratch);
}

/* ==================================== Side information ===================================== */

/* Item tags, numeric attributes, user attributes by dense id; counts side_unmatched. */
static sq_status side_info(const sq_ingest *g, wstate *s, uint32_t n_item_num, uint32_t n_uattr,
                           uint64_t *unmatched, sq_error *err) {
    const clean_ids *ids = &s->ids;
    size_t nim = sq_strmap_count(g->items), num = sq_strmap_count(g->users);
    size_t ntags = sq_strmap_count(g->tags);
    uint8_t *iside = sq_calloc(nim + 1, 1), *uside = sq_calloc(num + 1, 1);
    uint32_t *tstamp = sq_mallocn(ntags + 1, sizeof *tstamp);
    s->tag_off = sq_calloc((size_t)ids->n_items + 1, sizeof *s->tag_off);
    s->item_num = sq_mallocn((size_t)ids->n_items * n_item_num + 1, sizeof *s->item_num);
    s->uattr = sq_mallocn((size_t)ids->n_users * n_uattr + 1, sizeof *s->uattr);
    sq_status rc = SQ_OK;
    if (!iside || !uside || !tstamp || !s->tag_off || !s->item_num || !s->uattr)
        goto nomem;

    /* Tags: CSR by dense item, repeats of a tag on one item dropped, input order kept. */
    const sq_pairs *tp = &g->item_tags;
    for (size_t k = 0; k < tp->n; k++) {
        if (tp->key[k] >= nim || tp->val[k] >= ntags) {
            rc = sq_errorf(err, SQ_ERR_INTERNAL, "item tag %zu out of range", k);
            goto done;
        }
        iside[tp->key[k]] = 1;
        uint32_t it = ids->item_new[tp->key[k]];
        if (it != UINT32_MAX)
            s->tag_off[it + 1]++;
    }
    for (uint32_t i = 0; i < ids->n_items; i++)
        s->tag_off[i + 1] += s->tag_off[i];
    uint32_t total = s->tag_off[ids->n_items];
    if (!(s->tag_ids = sq_mallocn((size_t)total + 1, sizeof *s->tag_ids)))
        goto nomem;
    /* Scatter with tag_off[i] as item i's cursor, shift back, then compact each item's run
     * to drop a tag given twice. */
    for (size_t k = 0; k < tp->n; k++) {
        uint32_t it = ids->item_new[tp->key[k]];
        if (it != UINT32_MAX)
            s->tag_ids[s->tag_off[it]++] = tp->val[k];
    }
    for (uint32_t i = ids->n_items; i > 0; i--)
        s->tag_off[i] = s->tag_off[i - 1];
    s->tag_off[0] = 0;
    memset(tstamp, 0xff, (ntags + 1) * sizeof *tstamp);
    uint32_t o = 0;
    for (uint32_t i = 0; i < ids->n_items; i++) {
        uint32_t lo = s->tag_off[i], hi = s->tag_off[i + 1];
        s->tag_off[i] = o;
        for (uint32_t k = lo; k < hi; k++) {
            uint32_t t = s->tag_ids[k];
            if (tstamp[t] != i) {
                tstamp[t] = i;
                s->tag_ids[o++] = t;
            }
        }
    }
    s->tag_off[ids->n_items] = o;

    /* Text and numeric attributes: any item with some side information counts as matched or
     * not. */
    for (size_t k = 0; k < nim && g->item_text && k < g->item_text_cap; k++)
        if (g->item_text[k])
            iside[k] = 1;
    for (size_t k = 0; k < nim && g->item_num && k < g->item_num_cap; k++)
        for (uint32_t a = 0; a < n_item_num; a++)
            if (!isnan(g->item_num[k * SQ_MAX_ITEM_NUM + a]))
                iside[k] = 1;
    for (uint32_t i = 0; i < ids->n_items; i++) {
        uint32_t old = ids->item_old[i];
        for (uint32_t a = 0; a < n_item_num; a++)
            s->item_num[(size_t)i * n_item_num + a] =
                g->item_num && old < g->item_num_cap
                    ? g->item_num[(size_t)old * SQ_MAX_ITEM_NUM + a]
                    : NAN;
    }

    /* User attributes: the last value given for a (user, field) wins. */
    memset(s->uattr, 0xff, ((size_t)ids->n_users * n_uattr + 1) * sizeof *s->uattr);
    const sq_pairs *up = &g->user_attrs;
    for (size_t k = 0; k < up->n; k++) {
        uint32_t f = up->field ? up->field[k] : 0;
        if (up->key[k] >= num || f >= n_uattr || !g->user_attr_values[f] ||
            up->val[k] >= sq_strmap_count(g->user_attr_values[f])) {
            rc = sq_errorf(err, SQ_ERR_INTERNAL, "user attribute %zu out of range", k);
            goto done;
        }
        uside[up->key[k]] = 1;
        uint32_t u = ids->user_new[up->key[k]];
        if (u != UINT32_MAX)
            s->uattr[(size_t)u * n_uattr + f] = up->val[k];
    }
    *unmatched = 0;
    for (size_t k = 0; k < nim; k++)
        *unmatched += iside[k] && ids->item_new[k] == UINT32_MAX;
    for (size_t k = 0; k < num; k++)
        *unmatched += uside[k] && ids->user_new[k] == UINT32_MAX;
    goto done;
nomem:
    rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory arranging side information");
done:
    sq_free(iside);
    sq_free(uside);
    sq_free(tstamp);
    return rc;
}

/* ======================================== Meta JSON ======================================== */

static cJSON *num(cJSON *o, const char *k, double v) {
    return cJSON_AddNumberToObject(o, k, v);
}

static cJSON *str_or_null(cJSON *o, const char *k, const char *v) {
    return v ? cJSON_AddStringToObject(o, k, v) : cJSON_AddNullToObject(o, k);
}

static char *meta_json(const sq_ingest *g, const sq_ingest_report *r) {
    cJSON *root = cJSON_CreateObject(), *rep, *rej, *in, *opt;
    char *out = NULL;
    if (!root || !(rep = cJSON_AddObjectToObject(root, "report")))
        goto done;
    int ok = num(rep, "files", (double)r->files) && num(rep, "rows_read", (double)r->rows_read) &&
             num(rep, "blank_lines", (double)r->blank_lines) &&
             num(rep, "header_lines", (double)r->header_lines);
    if (!ok || !(rej = cJSON_AddObjectToObject(rep, "rejected")))
        goto done;
    for (int k = 0; k < SQ_REJ_COUNT; k++)
        ok = ok && num(rej, sq_reject_name((sq_reject_reason)k), (double)r->rejected[k]);
    ok = ok && num(rep, "kcore_events", (double)r->kcore_events) &&
         num(rep, "kcore_users", (double)r->kcore_users) &&
         num(rep, "kcore_items", (double)r->kcore_items) &&
         num(rep, "kcore_rounds", (double)r->kcore_rounds) && num(rep, "kept", (double)r->kept) &&
         num(rep, "side_rows", (double)r->side_rows) &&
         num(rep, "side_rejected", (double)r->side_rejected) &&
         num(rep, "side_unmatched", (double)r->side_unmatched);
    if (!ok || !(in = cJSON_AddArrayToObject(root, "inputs")))
        goto done;
    for (size_t k = 0; k < g->n_inputs; k++) {
        cJSON *sv = cJSON_CreateString(g->inputs[k]);
        if (!sv || !cJSON_AddItemToArray(in, sv)) {
            cJSON_Delete(sv);
            goto done;
        }
    }
    const sq_ingest_opts *o = &g->opts;
    if (!(opt = cJSON_AddObjectToObject(root, "options")))
        goto done;
    ok = cJSON_AddStringToObject(opt, "format", sq_format_name(o->format)) &&
         str_or_null(opt, "columns", o->columns) && str_or_null(opt, "behaviours", o->behaviours) &&
         str_or_null(opt, "default_behaviour", o->default_behaviour) &&
         num(opt, "min_user_events", o->min_user_events) &&
         num(opt, "min_item_events", o->min_item_events) &&
         num(opt, "session_gap", (double)o->session_gap) &&
         num(opt, "time_min", (double)o->time_min) && num(opt, "time_max", (double)o->time_max) &&
         cJSON_AddBoolToObject(opt, "keep_duplicates", o->keep_duplicates != 0) &&
         cJSON_AddBoolToObject(opt, "strict", o->strict != 0) &&
         cJSON_AddBoolToObject(opt, "no_side_files", o->no_side_files != 0) &&
         num(root, "sqd_version", SQD_VERSION);
    if (ok)
        out = cJSON_PrintUnformatted(root);
done:
    cJSON_Delete(root);
    return out;
}

/* ===================================== Section writers ===================================== */

typedef struct {
    const sq_strmap *m;  /* the builder's map */
    const uint32_t *old; /* dense id → map id */
} remapped;

static const char *remapped_get(const void *ud, uint32_t k, size_t *len) {
    const remapped *r = ud;
    return sq_strmap_key(r->m, r->old[k], len);
}

typedef struct {
    const sq_ingest *g;   /* builder */
    const clean_ids *ids; /* dense ids */
} text_src;

static const char *text_get(const void *ud, uint32_t k, size_t *len) {
    const text_src *t = ud;
    uint32_t old = t->ids->item_old[k];
    const char *s = t->g->item_text && old < t->g->item_text_cap ? t->g->item_text[old] : NULL;
    *len = s ? strlen(s) : 0;
    return s;
}

/* The per-event columns, gathered through perm in chunks. */
static void write_events(const sq_ingest *g, wstate *s, uint32_t nc, int sessions, int64_t gap) {
    const sq_events *e = &g->ev;
    const uint32_t *perm = s->perm;
    uint64_t n = s->ids.n_events;
    sqd_writer *w = s->w;
    union {
        uint32_t u32[CHUNK];
        int64_t i64[CHUNK];
        uint16_t u16[CHUNK];
        uint8_t u8[CHUNK];
        float f32[CHUNK];
    } *c = s->scratch;

    sqd_w_begin(w, SQD_SEC_OFFSETS, 0);
    sqd_w_put(w, s->off, ((size_t)s->ids.n_users + 1) * sizeof *s->off);
    sqd_w_end(w);

#define GATHER(sec, field, expr)                                                                   \
    do {                                                                                           \
        sqd_w_begin(w, sec, 0);                                                                    \
        for (uint64_t k0 = 0; k0 < n; k0 += CHUNK) {                                               \
            size_t m = n - k0 < CHUNK ? (size_t)(n - k0) : CHUNK;                                  \
            for (size_t j = 0; j < m; j++) {                                                       \
                uint32_t i = perm[k0 + j];                                                         \
                c->field[j] = (expr);                                                              \
            }                                                                                      \
            sqd_w_put(w, c->field, m * sizeof c->field[0]);                                        \
        }                                                                                          \
        sqd_w_end(w);                                                                              \
        sq_report_progress(&g->opts.reporter, "writing", (uint64_t)(sec), SQD_SEC_END,             \
                           "sections");                                                            \
    } while (0)

    GATHER(SQD_SEC_ITEMS, u32, s->ids.item_new[e->item[i]]);
    GATHER(SQD_SEC_TIMES, i64, e->ts[i]);
    GATHER(SQD_SEC_BEHS, u8, e->beh[i]);
    GATHER(SQD_SEC_SCENE_IDS, u16, e->scene[i]);
    GATHER(SQD_SEC_VALUES, f32, e->value[i]);
#undef GATHER

    sqd_w_begin(w, SQD_SEC_CTX, 0);
    if (nc > 0) {
        size_t per = CHUNK / nc; /* events per chunk */
        for (uint64_t k0 = 0; k0 < n; k0 += per) {
            size_t m = n - k0 < per ? (size_t)(n - k0) : per;
            for (size_t j = 0; j < m; j++)
                memcpy(c->u32 + j * nc, e->ctx + (size_t)perm[k0 + j] * nc, nc * sizeof(uint32_t));
            sqd_w_put(w, c->u32, m * nc * sizeof(uint32_t));
        }
    }
    sqd_w_end(w);

    if (sessions) {
        /* gap > 0: a new session after more than `gap` seconds of inactivity; otherwise each
         * sequence is one session (sessions were the sequence key). */
        sqd_w_begin(w, SQD_SEC_SESSIONS, 0);
        size_t m = 0;
        for (uint32_t u = 0; u < s->ids.n_users; u++) {
            uint32_t sess = 0;
            for (uint64_t k = s->off[u]; k < s->off[u + 1]; k++) {
                if (gap > 0 && k > s->off[u] && e->ts[perm[k]] - e->ts[perm[k - 1]] > gap)
                    sess++;
                c->u32[m++] = sess;
                if (m == CHUNK) {
                    sqd_w_put(w, c->u32, m * sizeof(uint32_t));
                    m = 0;
                }
            }
        }
        sqd_w_put(w, c->u32, m * sizeof(uint32_t));
        sqd_w_end(w);
    }
}

/* ===================================== sq_ingest_write ===================================== */

sq_status sq_ingest_write(sq_ingest *g, const char *out_path, sq_error *err) {
    wstate s;
    memset(&s, 0, sizeof s);
    sq_ingest_report rep = g->report;
    sq_afile *af = NULL;
    sq_status rc;
    const sq_events *e = &g->ev;
    size_t n = e->n;
    const sq_reporter *rp = &g->opts.reporter;

    if ((rc = clean_check(g, err)))
        goto fail;
    if (n == 0) {
        uint64_t rej = 0;
        for (int k = 0; k < SQ_REJ_COUNT; k++)
            rej += rep.rejected[k];
        rc = rep.rows_read
                 ? sq_errorf(err, SQ_ERR_EMPTY, "no event to write: all %llu rows were rejected",
                             (unsigned long long)rej)
                 : sq_errorf(err, SQ_ERR_EMPTY, "no event to write: no rows were read");
        goto fail;
    }
    if (!(s.dead = sq_calloc(n, 1)) || !(s.work = sq_mallocn(n, sizeof *s.work))) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto fail;
    }

    /* 1. Duplicates. */
    sq_report_progress(rp, "duplicates", 0, n, "events");
    if (!g->opts.keep_duplicates && (rc = clean_duplicates(g, s.dead, s.work, &s.dups, err)))
        goto fail;
    rep.rejected[SQ_REJ_DUPLICATE] += s.dups.n;
    sq_report_progress(rp, "duplicates", n, n, "events");

    /* 2. k-core. */
    clean_kcore_result kc;
    if ((rc = clean_kcore(g, s.dead, s.work, g->opts.min_user_events, g->opts.min_item_events, &kc,
                          err)))
        goto fail;
    rep.kcore_events = kc.events;
    rep.kcore_users = kc.users;
    rep.kcore_items = kc.items;
    rep.kcore_rounds = kc.rounds;

    /* 3. Dense ids. */
    if ((rc = clean_dense_ids(g, s.dead, &s.ids, err)))
        goto fail;
    rep.kept = s.ids.n_events;
    if (s.ids.n_events == 0) {
        rc = sq_errorf(err, SQ_ERR_EMPTY,
                       "no event left after k-core (min-user-events %u, min-item-events %u): "
                       "%llu events removed in %u rounds",
                       g->opts.min_user_events, g->opts.min_item_events,
                       (unsigned long long)kc.events, kc.rounds);
        goto fail;
    }

    /* 4. Per-user order. */
    uint32_t nu = s.ids.n_users, ni = s.ids.n_items;
    uint64_t ne = s.ids.n_events;
    if (!(s.off = sq_mallocn((size_t)nu + 1, sizeof *s.off))) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto fail;
    }
    s.perm = (uint32_t *)s.work; /* ne ≤ n u32 fit in n u64 */
    if ((rc = clean_order(g, s.dead, &s.ids, s.off, s.perm, err)))
        goto fail;
    sq_free(s.dead); /* not needed past here: give the memory back before statistics */
    s.dead = NULL;

    sqd_header h;
    memset(&h, 0, sizeof h);
    h.n_events = ne;
    h.n_users = nu;
    h.n_items = ni;
    h.n_behaviours = (uint32_t)sq_strmap_count(g->behaviours);
    h.n_scenes = (uint32_t)sq_strmap_count(g->scenes);
    h.n_ctx = (uint32_t)sq_strmap_count(g->ctx_fields);
    h.n_tags = (uint32_t)sq_strmap_count(g->tags);
    h.n_item_num = (uint32_t)sq_strmap_count(g->item_num_names);
    h.n_user_attrs = (uint32_t)sq_strmap_count(g->user_attr_fields);
    if (h.n_item_num > SQ_MAX_ITEM_NUM || h.n_user_attrs > SQ_MAX_CTX) {
        rc = sq_errorf(err, SQ_ERR_INTERNAL, "too many item or user attribute fields");
        goto fail;
    }
    h.time_min = INT64_MAX;
    h.time_max = INT64_MIN;
    for (uint64_t k = 0; k < ne; k++) {
        int64_t t = e->ts[s.perm[k]];
        if (t < h.time_min)
            h.time_min = t;
        if (t > h.time_max)
            h.time_max = t;
    }
    int64_t gap = 0;
    int sessions = 0;
    if (g->opts.session_gap > 0 && g->have_real_time) {
        gap = g->opts.session_gap;
        sessions = 1;
    } else if (g->have_sessions) {
        sessions = 1;
    }
    if (g->opts.session_gap > 0 && !g->have_real_time)
        sq_report_log(rp, SQ_LOG_WARN, "data",
                      "--session-gap ignored: the input has no timestamps (file order only)");
    h.flags = (g->have_real_time ? SQ_DATA_REAL_TIME : 0) | (g->have_values ? SQ_DATA_VALUES : 0) |
              (sessions ? SQ_DATA_SESSIONS : 0);

    /* 5. Statistics. */
    uint32_t nb = h.n_behaviours;
    s.ustats = sq_mallocn((size_t)nu * (SQ_USTAT_FIXED + nb), sizeof *s.ustats);
    s.istats = sq_mallocn((size_t)ni * (SQ_ISTAT_FIXED + nb), sizeof *s.istats);
    if (!s.ustats || !s.istats) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto fail;
    }
    sq_report_progress(rp, "statistics", 0, ne, "events");
    if ((rc = stats_compute(g, &s.ids, s.off, s.perm, nb, g->have_real_time, h.time_max, s.ustats,
                            s.istats, err)))
        goto fail;
    if ((rc = side_info(g, &s, h.n_item_num, h.n_user_attrs, &rep.side_unmatched, err)))
        goto fail;

    /* 7. Meta JSON (its report is the one the builder will hold after the commit). */
    if (!(s.meta = meta_json(g, &rep))) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory building the meta JSON");
        goto fail;
    }

    /* 6. The file. */
    if (!(s.w = sq_malloc(sizeof *s.w)) || !(s.scratch = sq_malloc(CHUNK * sizeof(int64_t)))) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((rc = sq_afile_open(&af, out_path, err)))
        goto fail;
    uint32_t nsec = 23 + h.n_ctx + h.n_user_attrs + (uint32_t)sessions;
    sqd_writer *w = s.w;
    sqd_w_open(w, sq_afile_stream(af), nsec);
    remapped ru = {g->users, s.ids.user_old}, ri = {g->items, s.ids.item_old};
    sqd_w_strtab(w, SQD_SEC_USER_IDS, 0, nu, remapped_get, &ru);
    sqd_w_strtab(w, SQD_SEC_ITEM_IDS, 0, ni, remapped_get, &ri);
    sqd_w_strmap(w, SQD_SEC_BEHAVIOURS, 0, g->behaviours);
    sqd_w_strmap(w, SQD_SEC_SCENES, 0, g->scenes);
    sqd_w_strmap(w, SQD_SEC_CTX_FIELDS, 0, g->ctx_fields);
    for (uint32_t f = 0; f < h.n_ctx; f++)
        sqd_w_strmap(w, SQD_SEC_CTX_VALUES, f, g->ctx_values[f]);
    write_events(g, &s, h.n_ctx, sessions, gap);
    sqd_w_begin(w, SQD_SEC_TAG_OFFSETS, 0);
    sqd_w_put(w, s.tag_off, ((size_t)ni + 1) * sizeof *s.tag_off);
    sqd_w_end(w);
    sqd_w_begin(w, SQD_SEC_TAG_IDS, 0);
    sqd_w_put(w, s.tag_ids, (size_t)s.tag_off[ni] * sizeof *s.tag_ids);
    sqd_w_end(w);
    sqd_w_strmap(w, SQD_SEC_TAG_NAMES, 0, g->tags);
    text_src ts = {g, &s.ids};
    sqd_w_strtab(w, SQD_SEC_ITEM_TEXT, 0, ni, text_get, &ts);
    sqd_w_begin(w, SQD_SEC_ITEM_NUM, 0);
    sqd_w_put(w, s.item_num, (size_t)ni * h.n_item_num * sizeof *s.item_num);
    sqd_w_end(w);
    sqd_w_strmap(w, SQD_SEC_ITEM_NUM_NAMES, 0, g->item_num_names);
    sqd_w_begin(w, SQD_SEC_USER_ATTRS, 0);
    sqd_w_put(w, s.uattr, (size_t)nu * h.n_user_attrs * sizeof *s.uattr);
    sqd_w_end(w);
    sqd_w_strmap(w, SQD_SEC_USER_ATTR_NAMES, 0, g->user_attr_fields);
    for (uint32_t f = 0; f < h.n_user_attrs; f++)
        sqd_w_strmap(w, SQD_SEC_USER_ATTR_VALUES, f, g->user_attr_values[f]);
    sqd_w_begin(w, SQD_SEC_USER_STATS, 0);
    sqd_w_put(w, s.ustats, (size_t)nu * (SQ_USTAT_FIXED + nb) * sizeof *s.ustats);
    sqd_w_end(w);
    sqd_w_begin(w, SQD_SEC_ITEM_STATS, 0);
    sqd_w_put(w, s.istats, (size_t)ni * (SQ_ISTAT_FIXED + nb) * sizeof *s.istats);
    sqd_w_end(w);
    sqd_w_begin(w, SQD_SEC_META, 0);
    sqd_w_put(w, s.meta, strlen(s.meta) + 1);
    sqd_w_end(w);
    if ((rc = sqd_w_finish(w, &h, out_path, err)))
        goto fail;

    /* Duplicates go to the rejects file (and the report) in input order, then both files are
     * committed, the dataset first. */
    sq_ingest_report saved = g->report;
    for (size_t k = 0; k < s.dups.n; k++) {
        uint64_t src = e->src[s.dups.dup[k]], first = e->src[s.dups.first[k]];
        char detail[96];
        unsigned long long line = first & ((1ull << SQ_SRC_LINE_BITS) - 1);
        if ((first >> SQ_SRC_LINE_BITS) == (src >> SQ_SRC_LINE_BITS))
            snprintf(detail, sizeof detail, "same as line %llu", line);
        else
            snprintf(detail, sizeof detail, "same as line %llu of input %llu", line,
                     (unsigned long long)(first >> SQ_SRC_LINE_BITS) + 1);
        ingest_reject_at(g, src, SQ_REJ_DUPLICATE, "row", detail, (sq_slice){NULL, 0});
    }
    rc = sq_afile_commit(af, err);
    af = NULL;
    if (rc) {
        g->report = saved;
        goto fail;
    }
    g->report = rep;
    if ((rc = ingest_rejects_commit(g, err))) {
        unlink(out_path); /* a run that failed leaves no dataset behind */
        goto fail;
    }
    wstate_free(&s);
    return SQ_OK;
fail:
    sq_afile_abort(af);
    wstate_free(&s);
    return rc;
}
