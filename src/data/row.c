/* row.c — one row in, one event (or one reject) out; and the side information calls.
 *
 * ingest_add_row checks a row in a fixed order, so that a row with several faults is
 * counted once, under the first: user (or session) → item → time → value → scene count →
 * behaviour. Nothing is interned before every check passed, so rejected rows leave no trace in
 * the id maps. Then user and item are interned, context values interned per field, and the
 * event appended to the struct-of-arrays g->ev, grown by doubling (no per-row allocation).
 *
 * Item side information carried on event rows (text, tags, numbers) is recorded the first
 * time the item is seen on a kept row (tags) or while it has none yet (text, numbers), so
 * a 40,000-row log about 165 items records 165 titles, not 40,000. */
#include "data/ingest.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* ========================================= Helpers =========================================== */

static inline sq_slice trim(sq_slice s) {
    if (!s.p)
        return s;
    while (s.n && (s.p[0] == ' ' || s.p[0] == '\t' || s.p[0] == '\r'))
        s.p++, s.n--;
    while (s.n && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t' || s.p[s.n - 1] == '\r'))
        s.n--;
    return s;
}

/* Quotes at most 40 bytes of a field for a reject detail. */
static const char *quote(char *buf, size_t cap, sq_slice s) {
    snprintf(buf, cap, "'%.*s'%s", (int)(s.n > 40 ? 40 : s.n), s.p ? s.p : "",
             s.n > 40 ? "..." : "");
    return buf;
}

/* Grows every per-event array so that one more event fits. */
static sq_status ev_reserve(sq_ingest *g) {
    sq_events *e = &g->ev;
    if (e->n < e->cap)
        return SQ_OK;
    size_t c = e->cap ? e->cap * 2 : 4096;
    size_t nctx = sq_strmap_count(g->ctx_fields);
    void *p;
#define GROW(field)                                                                                \
    if (!(p = sq_reallocn(e->field, c, sizeof *e->field)))                                         \
        return SQ_ERR_NOMEM;                                                                       \
    e->field = p;
    GROW(user)
    GROW(item)
    GROW(ts)
    GROW(beh)
    GROW(scene)
    GROW(value)
    GROW(src)
#undef GROW
    if (nctx) {
        if (c > SIZE_MAX / nctx || !(p = sq_reallocn(e->ctx, c * nctx, sizeof *e->ctx)))
            return SQ_ERR_NOMEM;
        e->ctx = p;
    }
    e->cap = c;
    return SQ_OK;
}

sq_status ingest_ctx_field(sq_ingest *g, const char *name, size_t n, uint32_t *id) {
    uint32_t f = sq_strmap_find(g->ctx_fields, name, n);
    if (f != UINT32_MAX) {
        *id = f;
        return SQ_OK;
    }
    size_t old = sq_strmap_count(g->ctx_fields);
    if (old >= SQ_MAX_CTX)
        return SQ_ERR_LIMIT;
    sq_events *e = &g->ev;
    size_t w = old + 1;
    sq_strmap *vals = sq_strmap_create(64);
    uint32_t v0;
    if (!vals || sq_strmap_intern(vals, "", 0, &v0, NULL)) {
        sq_strmap_free(vals);
        return SQ_ERR_NOMEM;
    }
    if (e->cap) {
        /* widen the rows from old to w columns, last row first so nothing is overwritten */
        uint32_t *c = sq_reallocn(e->ctx, e->cap * w, sizeof *c);
        if (!c) {
            sq_strmap_free(vals);
            return SQ_ERR_NOMEM;
        }
        for (size_t i = e->n; i-- > 0;) {
            c[i * w + old] = 0;
            for (size_t j = old; j-- > 0;)
                c[i * w + j] = c[i * old + j];
        }
        e->ctx = c;
    }
    if (sq_strmap_intern(g->ctx_fields, name, n, &f, NULL)) {
        sq_strmap_free(vals);
        return SQ_ERR_NOMEM;
    }
    g->ctx_values[f] = vals;
    *id = f;
    return SQ_OK;
}

sq_status ingest_item_num_field(sq_ingest *g, const char *name, uint32_t *id) {
    size_t n = strlen(name);
    uint32_t f = sq_strmap_find(g->item_num_names, name, n);
    if (f == UINT32_MAX) {
        if (sq_strmap_count(g->item_num_names) >= SQ_MAX_ITEM_NUM)
            return SQ_ERR_LIMIT;
        if (sq_strmap_intern(g->item_num_names, name, n, &f, NULL))
            return SQ_ERR_NOMEM;
    }
    *id = f;
    return SQ_OK;
}

/* Appends (key, val[, field]) to a pairs list. */
static sq_status pairs_push(sq_pairs *pr, uint32_t key, uint32_t val, uint32_t field,
                            int with_field) {
    if (pr->n == pr->cap) {
        size_t c = pr->cap ? pr->cap * 2 : 256;
        uint32_t *k = sq_reallocn(pr->key, c, sizeof *k);
        if (!k)
            return SQ_ERR_NOMEM;
        pr->key = k;
        uint32_t *v = sq_reallocn(pr->val, c, sizeof *v);
        if (!v)
            return SQ_ERR_NOMEM;
        pr->val = v;
        if (with_field) {
            uint32_t *f = sq_reallocn(pr->field, c, sizeof *f);
            if (!f)
                return SQ_ERR_NOMEM;
            pr->field = f;
        }
        pr->cap = c;
    }
    pr->key[pr->n] = key;
    pr->val[pr->n] = val;
    if (with_field)
        pr->field[pr->n] = field;
    pr->n++;
    return SQ_OK;
}

/* ===================================== Side information ====================================== */

static sq_status item_id(sq_ingest *g, sq_slice item, uint32_t *id) {
    item = trim(item);
    if (!item.n)
        return SQ_ERR_ARG;
    return sq_strmap_intern(g->items, item.p, item.n, id, NULL);
}

/* Sets the text of item id (replacing any). */
static sq_status set_item_text(sq_ingest *g, uint32_t id, sq_slice text) {
    if (id >= g->item_text_cap) {
        size_t c = g->item_text_cap ? g->item_text_cap : 1024;
        while (c <= id)
            c *= 2;
        char **t = sq_reallocn(g->item_text, c, sizeof *t);
        if (!t)
            return SQ_ERR_NOMEM;
        memset(t + g->item_text_cap, 0, (c - g->item_text_cap) * sizeof *t);
        g->item_text = t;
        g->item_text_cap = c;
    }
    char *s = sq_strndup(text.p, text.n);
    if (!s)
        return SQ_ERR_NOMEM;
    sq_free(g->item_text[id]);
    g->item_text[id] = s;
    return SQ_OK;
}

sq_status ingest_add_item_text(sq_ingest *g, sq_slice item, sq_slice text) {
    text = trim(text);
    if (!text.n)
        return SQ_OK;
    uint32_t id;
    sq_status rc = item_id(g, item, &id);
    return rc ? rc : set_item_text(g, id, text);
}

static sq_status add_tag(sq_ingest *g, uint32_t id, const char *field, sq_slice tag) {
    tag = trim(tag);
    if (!tag.n)
        return SQ_OK;
    uint32_t t;
    sq_status rc;
    if (field && *field) {
        char buf[512];
        size_t fn = strlen(field);
        if (fn + 1 + tag.n <= sizeof buf) {
            memcpy(buf, field, fn);
            buf[fn] = '=';
            memcpy(buf + fn + 1, tag.p, tag.n);
            rc = sq_strmap_intern(g->tags, buf, fn + 1 + tag.n, &t, NULL);
        } else {
            char *b = sq_malloc(fn + 1 + tag.n);
            if (!b)
                return SQ_ERR_NOMEM;
            memcpy(b, field, fn);
            b[fn] = '=';
            memcpy(b + fn + 1, tag.p, tag.n);
            rc = sq_strmap_intern(g->tags, b, fn + 1 + tag.n, &t, NULL);
            sq_free(b);
        }
    } else {
        rc = sq_strmap_intern(g->tags, tag.p, tag.n, &t, NULL);
    }
    return rc ? rc : pairs_push(&g->item_tags, id, t, 0, 0);
}

sq_status ingest_add_item_tag(sq_ingest *g, sq_slice item, const char *field, sq_slice tag) {
    if (!trim(tag).n)
        return SQ_OK;
    uint32_t id;
    sq_status rc = item_id(g, item, &id);
    return rc ? rc : add_tag(g, id, field, tag);
}

/* Sets numeric attribute k of item id; `only_if_missing` keeps an existing value. */
static sq_status set_item_num(sq_ingest *g, uint32_t id, uint32_t k, double v,
                              int only_if_missing) {
    if (id >= g->item_num_cap) {
        size_t c = g->item_num_cap ? g->item_num_cap : 1024;
        while (c <= id)
            c *= 2;
        float *a = sq_reallocn(g->item_num, c * SQ_MAX_ITEM_NUM, sizeof *a);
        if (!a)
            return SQ_ERR_NOMEM;
        for (size_t i = g->item_num_cap * SQ_MAX_ITEM_NUM; i < c * SQ_MAX_ITEM_NUM; i++)
            a[i] = NAN;
        g->item_num = a;
        g->item_num_cap = c;
    }
    float *cell = &g->item_num[(size_t)id * SQ_MAX_ITEM_NUM + k];
    if (!only_if_missing || isnan(*cell))
        *cell = (float)v;
    return SQ_OK;
}

sq_status ingest_add_item_num(sq_ingest *g, sq_slice item, const char *name, double v) {
    if (!isfinite(v) || fabs(v) > FLT_MAX)
        return SQ_OK;
    uint32_t k, id;
    sq_status rc = ingest_item_num_field(g, name, &k);
    if (!rc)
        rc = item_id(g, item, &id);
    return rc ? rc : set_item_num(g, id, k, v, 0);
}

sq_status ingest_add_user_attr(sq_ingest *g, sq_slice user, const char *field, sq_slice value) {
    user = trim(user);
    value = trim(value);
    if (!user.n || !value.n)
        return SQ_OK;
    size_t fn = strlen(field);
    uint32_t f = sq_strmap_find(g->user_attr_fields, field, fn);
    if (f == UINT32_MAX) {
        if (sq_strmap_count(g->user_attr_fields) >= SQ_MAX_CTX)
            return SQ_ERR_LIMIT;
        sq_strmap *vals = sq_strmap_create(64);
        if (!vals)
            return SQ_ERR_NOMEM;
        if (sq_strmap_intern(g->user_attr_fields, field, fn, &f, NULL)) {
            sq_strmap_free(vals);
            return SQ_ERR_NOMEM;
        }
        g->user_attr_values[f] = vals;
    }
    uint32_t u, v;
    sq_status rc = sq_strmap_intern(g->users, user.p, user.n, &u, NULL);
    if (!rc)
        rc = sq_strmap_intern(g->user_attr_values[f], value.p, value.n, &v, NULL);
    return rc ? rc : pairs_push(&g->user_attrs, u, v, f, 1);
}

/* ======================================== Event rows ========================================= */

/* Behaviour id for rows without a behaviour: opts.default_behaviour, else "rate" when the
 * file has values, else "interact"; interned on first use. Returns UINT32_MAX when the name
 * is not in a declared vocabulary. */
static sq_status default_behaviour(sq_ingest *g, uint32_t *id) {
    int hv = g->file_has_value ? 1 : 0;
    if (g->default_beh_cache[hv]) {
        *id = g->default_beh_cache[hv] - 1;
        return SQ_OK;
    }
    const char *name = g->opts.default_behaviour ? g->opts.default_behaviour
                       : hv                      ? "rate"
                                                 : "interact";
    size_t n = strlen(name);
    uint32_t b = sq_strmap_find(g->behaviours, name, n);
    if (b == UINT32_MAX) {
        if (g->behaviours_declared || sq_strmap_count(g->behaviours) >= SQ_MAX_BEHAVIOURS) {
            *id = UINT32_MAX;
            return SQ_OK;
        }
        if (sq_strmap_intern(g->behaviours, name, n, &b, NULL))
            return SQ_ERR_NOMEM;
    }
    g->default_beh_cache[hv] = b + 1;
    g->default_behaviour = b;
    *id = b;
    return SQ_OK;
}

/* The row's time: TIME_ORDER → file order; date (+ ts as ms) or ts parsed. On failure
 * returns the reject reason and sets *field. */
static int row_time(sq_ingest *g, const sq_row *r, int64_t *out, const char **field,
                    sq_slice *bad) {
    if (r->tkind == TIME_ORDER) {
        *out = (int64_t)(g->order_base + r->line);
        return -1;
    }
    int64_t t;
    if (r->date.p) {
        sq_slice d = trim(r->date);
        *field = "date";
        *bad = d;
        if (!d.n || sq_parse_time(d.p, d.n, &t))
            return SQ_REJ_BAD_TIME;
        sq_slice ms = trim(r->ts);
        if (ms.n) {
            double v;
            *field = "ts";
            *bad = ms;
            if (sq_parse_double(ms.p, ms.n, &v) || fabs(v) > 1e15)
                return SQ_REJ_BAD_TIME;
            t += (int64_t)floor(v / 1000.0);
        }
    } else {
        sq_slice s = trim(r->ts);
        *field = "ts";
        *bad = s;
        if (!s.n || sq_parse_time(s.p, s.n, &t))
            return SQ_REJ_BAD_TIME;
    }
    if (t < g->opts.time_min || t > g->opts.time_max)
        return SQ_REJ_TIME_RANGE;
    *out = t;
    return -1;
}

/* Records the item side information of a kept row. */
static sq_status row_item_side(sq_ingest *g, const sq_row *r, uint32_t item, int new_item) {
    sq_status rc = SQ_OK;
    if (r->item_text.p && (item >= g->item_text_cap || !g->item_text[item])) {
        sq_slice t = trim(r->item_text);
        if (t.n && (rc = set_item_text(g, item, t)))
            return rc;
    }
    if (new_item)
        for (uint32_t k = 0; k < r->n_item_tag && k < 8; k++)
            if (r->item_tag[k].p && (rc = add_tag(g, item, r->item_tag_field[k], r->item_tag[k])))
                return rc;
    for (uint32_t k = 0; k < r->n_item_num && k < 4; k++) {
        double v;
        sq_slice s = trim(r->item_num[k]);
        /* a malformed price does not make the event bad: the attribute stays missing */
        if (s.n && !sq_parse_double(s.p, s.n, &v) && fabs(v) <= FLT_MAX &&
            r->item_num_id[k] < SQ_MAX_ITEM_NUM &&
            (rc = set_item_num(g, item, r->item_num_id[k], v, 1)))
            return rc;
    }
    return SQ_OK;
}

static sq_status nomem(sq_error *err) {
    return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
}

sq_status ingest_add_row(sq_ingest *g, const sq_row *r, sq_error *err) {
    char qb[64];
    g->last_new_user = g->last_new_item = 0;
    int by_session = r->session.p != NULL;
    sq_slice user = trim(by_session ? r->session : r->user);
    if (!user.n)
        return ingest_reject(g, r, SQ_REJ_MISSING_USER, by_session ? "session" : "user", NULL, err);
    sq_slice item = trim(r->item);
    if (!item.n)
        return ingest_reject(g, r, SQ_REJ_MISSING_ITEM, "item", NULL, err);

    int64_t ts = 0;
    const char *tfield = "ts";
    sq_slice bad = {0};
    int why = row_time(g, r, &ts, &tfield, &bad);
    if (why >= 0)
        return ingest_reject(g, r, (sq_reject_reason)why, tfield, quote(qb, sizeof qb, bad), err);

    float value = NAN;
    sq_slice vs = trim(r->value);
    if (vs.n) {
        double v;
        if (sq_parse_double(vs.p, vs.n, &v) || fabs(v) > FLT_MAX)
            return ingest_reject(g, r, SQ_REJ_BAD_VALUE, "value", quote(qb, sizeof qb, vs), err);
        value = (float)v;
    }

    sq_slice sc = trim(r->scene);
    uint32_t scene = 0;
    if (sc.n) {
        scene = sq_strmap_find(g->scenes, sc.p, sc.n);
        if (scene == UINT32_MAX && sq_strmap_count(g->scenes) >= SQ_MAX_SCENES)
            return ingest_reject(g, r, SQ_REJ_BAD_FIELD, "scene", "more than 65535 scenes", err);
    }

    uint32_t beh;
    sq_slice bs = trim(r->behaviour);
    if (bs.n) {
        beh = sq_strmap_find(g->behaviours, bs.p, bs.n);
        if (beh == UINT32_MAX) {
            if (g->behaviours_declared)
                return ingest_reject(g, r, SQ_REJ_UNKNOWN_BEHAVIOUR, "behaviour",
                                     quote(qb, sizeof qb, bs), err);
            if (sq_strmap_count(g->behaviours) >= SQ_MAX_BEHAVIOURS)
                return ingest_reject(g, r, SQ_REJ_UNKNOWN_BEHAVIOUR, "behaviour",
                                     "more than 64 behaviour names", err);
            if (sq_strmap_intern(g->behaviours, bs.p, bs.n, &beh, NULL))
                return nomem(err);
        }
    } else {
        if (default_behaviour(g, &beh))
            return nomem(err);
        if (beh == UINT32_MAX)
            return ingest_reject(g, r, SQ_REJ_UNKNOWN_BEHAVIOUR, "behaviour",
                                 "no behaviour given and the default is not declared", err);
    }

    /* every check passed: intern and append */
    sq_status rc = SQ_OK;
    if (sc.n && scene == UINT32_MAX && sq_strmap_intern(g->scenes, sc.p, sc.n, &scene, NULL))
        return nomem(err);
    uint32_t u, it;
    int new_user = 0, new_item = 0;
    size_t cl;
    const char *ck = g->user_cache ? sq_strmap_key(g->users, g->user_cache - 1, &cl) : NULL;
    if (ck && cl == user.n && !memcmp(ck, user.p, cl))
        u = g->user_cache - 1;
    else
        rc = sq_strmap_intern(g->users, user.p, user.n, &u, &new_user);
    if (!rc) {
        g->user_cache = u + 1;
        rc = sq_strmap_intern(g->items, item.p, item.n, &it, &new_item);
    }
    if (rc)
        return sq_errorf(err, rc, "%s:%llu: %s", ingest_current_file(g),
                         (unsigned long long)r->line,
                         rc == SQ_ERR_LIMIT ? "too many distinct ids" : "out of memory");
    if (ev_reserve(g))
        return nomem(err);
    sq_events *e = &g->ev;
    size_t i = e->n;
    size_t nctx = sq_strmap_count(g->ctx_fields);
    if (nctx) {
        uint32_t *c = &e->ctx[i * nctx];
        for (size_t f = 0; f < nctx; f++) {
            c[f] = 0;
            if (f < r->n_ctx && f < SQ_MAX_CTX) {
                sq_slice cv = trim(r->ctx[f]);
                if (cv.n && sq_strmap_intern(g->ctx_values[f], cv.p, cv.n, &c[f], NULL))
                    return nomem(err);
            }
        }
    }
    e->user[i] = u;
    e->item[i] = it;
    e->ts[i] = ts;
    e->beh[i] = (uint8_t)beh;
    e->scene[i] = (uint16_t)scene;
    e->value[i] = value;
    e->src[i] = ((uint64_t)(g->n_inputs ? g->n_inputs - 1 : 0) << SQ_SRC_LINE_BITS) |
                (r->line & ((1ull << SQ_SRC_LINE_BITS) - 1));
    e->n = i + 1;
    if (r->tkind != TIME_ORDER)
        g->have_real_time = 1;
    if (vs.n)
        g->have_values = 1;
    g->last_new_user = new_user;
    g->last_new_item = new_item;
    if ((r->item_text.p || r->n_item_tag || r->n_item_num) &&
        (rc = row_item_side(g, r, it, new_item)))
        return sq_errorf(err, rc, "out of memory");
    return SQ_OK;
}
