/* routes_events.c — the write side and the history: POST /v1/events, GET /v1/users/{id}/history,
 * DELETE /v1/users/{id}, PUT /v1/items/{id}. A body is validated whole before anything is
 * stored; a write is answered only after the store has committed it. */
#define _POSIX_C_SOURCE 200809L
#include "serve/serve_int.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MAX_ID = 256, MAX_NAME = 64, MAX_CONTEXT = 4096 };
static const int64_t TS_MAX = 4102444800; /* 2100-01-01 */

/* ========================================== Parsing ========================================== */

typedef struct {
    sq_store_event ev;
    char user_num[32], item_num[32]; /* integer ids as text */
    char *context;                   /* malloc'd */
} parsed;

/* An id field: a non-empty string up to MAX_ID bytes, or an integer. */
static int parse_id(const cJSON *o, const char *name, char *num, const char **out, size_t *len,
                    char *msg, size_t cap, const char *where) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!f || cJSON_IsNull(f))
        return snprintf(msg, cap, "%s.%s: missing", where, name), -1;
    if (cJSON_IsString(f)) {
        size_t n = strlen(f->valuestring);
        if (n == 0 || n > MAX_ID)
            return snprintf(msg, cap, "%s.%s: must be 1..%d bytes", where, name, MAX_ID), -1;
        *out = f->valuestring;
        *len = n;
        return 0;
    }
    if (cJSON_IsNumber(f) && f->valuedouble == floor(f->valuedouble) &&
        fabs(f->valuedouble) < 9.0e15) {
        *len = (size_t)snprintf(num, 32, "%.0f", f->valuedouble);
        *out = num;
        return 0;
    }
    return snprintf(msg, cap, "%s.%s: expected a string or an integer", where, name), -1;
}

static int parse_event(const cJSON *o, parsed *p, int64_t now, char *msg, size_t cap,
                       const char *where) {
    memset(p, 0, sizeof *p);
    if (!cJSON_IsObject(o))
        return snprintf(msg, cap, "%s: expected an object", where), -1;
    if (parse_id(o, "user", p->user_num, &p->ev.user, &p->ev.user_len, msg, cap, where) ||
        parse_id(o, "item", p->item_num, &p->ev.item, &p->ev.item_len, msg, cap, where))
        return -1;
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "behaviour");
    if (!b || cJSON_IsNull(b))
        return snprintf(msg, cap, "%s.behaviour: missing", where), -1;
    if (!cJSON_IsString(b) || !*b->valuestring || strlen(b->valuestring) > MAX_NAME)
        return snprintf(msg, cap, "%s.behaviour: expected a name of 1..%d bytes", where, MAX_NAME),
               -1;
    p->ev.behaviour = b->valuestring;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "ts");
    p->ev.ts = now;
    if (t && !cJSON_IsNull(t)) {
        if (!cJSON_IsNumber(t) || !(t->valuedouble >= 0) || t->valuedouble > (double)TS_MAX)
            return snprintf(msg, cap, "%s.ts: expected UTC seconds in 0..%" PRId64, where, TS_MAX),
                   -1;
        p->ev.ts = (int64_t)t->valuedouble;
    }
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(o, "scene");
    p->ev.scene = "";
    if (sc && !cJSON_IsNull(sc)) {
        if (!cJSON_IsString(sc) || strlen(sc->valuestring) > MAX_NAME)
            return snprintf(msg, cap, "%s.scene: expected a name up to %d bytes", where, MAX_NAME),
                   -1;
        p->ev.scene = sc->valuestring;
    }
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "context");
    if (c && !cJSON_IsNull(c)) {
        if (!cJSON_IsObject(c))
            return snprintf(msg, cap, "%s.context: expected an object", where), -1;
        p->context = cJSON_PrintUnformatted(c);
        if (!p->context)
            return snprintf(msg, cap, "%s.context: out of memory", where), -1;
        if (strlen(p->context) > MAX_CONTEXT)
            return snprintf(msg, cap, "%s.context: over %d bytes", where, MAX_CONTEXT), -1;
        p->ev.context = p->context;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "value");
    p->ev.value = NAN;
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
            return snprintf(msg, cap, "%s.value: expected a finite number", where), -1;
        p->ev.value = v->valuedouble;
    }
    return 0;
}

void sv_live_from_store(const sq_server *s, const sq_store_event *se, sv_live_event *ev) {
    ev->item = sq_data_find_item(s->d, se->item, se->item_len);
    uint32_t b = sq_data_find_behaviour(s->d, se->behaviour);
    ev->beh = b < 255 ? (uint8_t)b : 255;
    ev->negative = sv_is_negative(s, se->behaviour);
    ev->ts = se->ts;
    uint32_t scene = se->scene ? sq_strmap_find(s->scenes, se->scene, strlen(se->scene)) : 0;
    ev->scene = scene < s->info->n_scenes ? (uint16_t)scene : 0;
    ev->value = isnan(se->value) ? NAN : (float)se->value;
}

/* ========================================== Routes =========================================== */

void sv_events_free(sv_events *e) {
    for (size_t k = 0; k < e->n; k++)
        cJSON_free(e->ctx[k]);
    sq_free(e->ctx);
    sq_free(e->ev);
    sq_free(e->nums);
    cJSON_Delete(e->root);
    memset(e, 0, sizeof *e);
}

unsigned sv_events_parse(const char *body, size_t len, uint32_t max_depth, uint32_t max_batch,
                         int64_t now, sv_events *out, char *msg, size_t cap) {
    memset(out, 0, sizeof *out);
    cJSON *root = sv_json_parse(body, len, max_depth, msg, cap);
    if (!root)
        return 400;
    out->root = root;
    const int array = cJSON_IsArray(root);
    size_t n = array ? (size_t)cJSON_GetArraySize(root) : 1;
    if (array && n == 0)
        return snprintf(msg, cap, "events: empty array"), 400;
    if (n > max_batch)
        return snprintf(msg, cap, "events: %zu in one request, the limit is %u (--max-batch)", n,
                        max_batch),
               413;
    out->ev = sq_calloc(n, sizeof *out->ev);
    out->ctx = sq_calloc(n, sizeof *out->ctx);
    out->nums = sq_calloc(n, 64);
    if (!out->ev || !out->ctx || !out->nums)
        return snprintf(msg, cap, "out of memory"), 500;
    const cJSON *o = array ? root->child : root;
    for (size_t i = 0; i < n && o; i++, o = array ? o->next : NULL) {
        char where[40];
        if (array)
            snprintf(where, sizeof where, "events[%zu]", i);
        else
            snprintf(where, sizeof where, "event");
        parsed p;
        int bad = parse_event(o, &p, now, msg, cap, where);
        out->ctx[i] = p.context; /* freed with the rest, even on error */
        out->n = i + 1;
        if (bad)
            return 400;
        /* integer ids were printed into p: keep them with the events */
        char *nums = out->nums + 64 * i;
        if (p.ev.user == p.user_num) {
            memcpy(nums, p.user_num, 32);
            p.ev.user = nums;
        }
        if (p.ev.item == p.item_num) {
            memcpy(nums + 32, p.item_num, 32);
            p.ev.item = nums + 32;
        }
        out->ev[i] = p.ev;
    }
    return 0;
}

void sv_route_events(sq_server *s, const sv_req *q, sv_resp *r) {
    size_t len;
    const char *body = sv_body(q, &len);
    char msg[320];
    sv_events e;
    unsigned status = sv_events_parse(body, len, s->o.max_depth, s->o.max_batch,
                                      (int64_t)time(NULL), &e, msg, sizeof msg);
    if (status) {
        sv_error(r, status, "%s", msg);
        sv_events_free(&e);
        return;
    }
    int64_t first = 0;
    sq_error err = {0};
    if (sq_store_append(s->store, e.ev, e.n, &first, &err)) {
        sv_error(r, 500, "event store: %s", err.msg);
        sv_events_free(&e);
        return;
    }
    for (size_t k = 0; k < e.n; k++) {
        sv_live_event le;
        sv_live_from_store(s, &e.ev[k], &le);
        if (le.item == UINT32_MAX)
            atomic_fetch_add_explicit(&s->met.events_unknown_item, 1, memory_order_relaxed);
        sv_user_apply(s, e.ev[k].user, e.ev[k].user_len, first + (int64_t)k, &le);
    }
    atomic_fetch_add_explicit(&s->met.events_posted, e.n, memory_order_relaxed);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "accepted", (double)e.n);
    cJSON_AddNumberToObject(out, "first_seq", (double)first);
    sv_json_resp(r, 200, out);
    sv_events_free(&e);
}

/* ========================================== History ========================================== */

/* Appends an event to arr and returns it. */
static cJSON *add_event(cJSON *arr, const char *item, const char *beh, int64_t ts,
                        const char *scene, double value, const char *context, const char *source,
                        int64_t seq) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "item", item);
    cJSON_AddStringToObject(e, "behaviour", beh);
    cJSON_AddNumberToObject(e, "ts", (double)ts);
    cJSON_AddStringToObject(e, "scene", scene ? scene : "");
    if (isnan(value))
        cJSON_AddNullToObject(e, "value");
    else
        cJSON_AddNumberToObject(e, "value", value);
    if (context) {
        cJSON *c = cJSON_Parse(context);
        if (c)
            cJSON_AddItemToObject(e, "context", c);
    }
    cJSON_AddStringToObject(e, "source", source);
    if (seq > 0)
        cJSON_AddNumberToObject(e, "seq", (double)seq);
    cJSON_AddItemToArray(arr, e);
    return e;
}

/* The dataset event's context fields as "context":{field:value} on e (none: nothing added). */
static void add_context(const sq_dataset *d, uint64_t ev, cJSON *e) {
    const uint32_t nc = sq_data_info_of(d)->n_ctx;
    if (!nc || !e)
        return;
    const uint32_t *ctx = sq_data_context(d) + ev * nc;
    cJSON *c = cJSON_AddObjectToObject(e, "context");
    for (uint32_t f = 0; c && f < nc; f++) {
        const char *v = sq_data_ctx_value(d, f, ctx[f]);
        cJSON_AddStringToObject(c, sq_data_ctx_name(d, f), v ? v : "");
    }
}

static int hist_one(void *ud, int64_t seq, const sq_store_event *se) {
    cJSON *arr = ud;
    char item[MAX_ID + 1];
    size_t n = se->item_len < MAX_ID ? se->item_len : MAX_ID;
    memcpy(item, se->item, n);
    item[n] = 0;
    add_event(arr, item, se->behaviour, se->ts, se->scene, se->value, se->context, "live", seq);
    return 0;
}

void sv_route_history(sq_server *s, const char *user, size_t len, const sv_req *q, sv_resp *r) {
    unsigned long limit = 100;
    const char *ls = sv_query(q, "limit");
    if (ls) {
        char *end;
        limit = strtoul(ls, &end, 10);
        if (*end || !*ls || limit < 1 || limit > 1000000) {
            sv_error(r, 400, "limit: expected 1..1000000");
            return;
        }
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "user", user);
    cJSON *arr = cJSON_CreateArray();
    /* the most recent `limit`: live events first from the store (newest `limit`), then as many
     * dataset events as are left, before them */
    cJSON *live = cJSON_CreateArray();
    sq_error err = {0};
    if (sq_store_user_events(s->store, user, len, 0, limit, hist_one, live, &err)) {
        cJSON_Delete(live);
        cJSON_Delete(arr);
        cJSON_Delete(out);
        sv_error(r, 500, "event store: %s", err.msg);
        return;
    }
    const uint32_t n_live = (uint32_t)cJSON_GetArraySize(live);
    const uint32_t uid =
        sv_forgotten(s, user, len) ? UINT32_MAX : sq_data_find_user(s->d, user, len);
    if (uid != UINT32_MAX && n_live < limit) {
        const uint64_t *off = sq_data_offsets(s->d);
        uint64_t b = off[uid], e = off[uid + 1], want = limit - n_live;
        if (e - b > want)
            b = e - want;
        const uint16_t *scn = sq_data_scenes(s->d);
        const float *val = sq_data_values(s->d);
        for (uint64_t i = b; i < e; i++) {
            cJSON *ev =
                add_event(arr, sq_data_item_id(s->d, sq_data_items(s->d)[i], NULL),
                          sq_data_behaviour_name(s->d, sq_data_behaviours(s->d)[i]),
                          sq_data_times(s->d)[i], scn ? sq_data_scene_name(s->d, scn[i]) : "",
                          val ? val[i] : NAN, NULL, "dataset", 0);
            add_context(s->d, i, ev);
        }
    }
    while (live->child)
        cJSON_AddItemToArray(arr, cJSON_DetachItemViaPointer(live, live->child));
    cJSON_Delete(live);
    cJSON_AddBoolToObject(out, "known", uid != UINT32_MAX || n_live > 0);
    cJSON_AddItemToObject(out, "events", arr);
    sv_json_resp(r, 200, out);
}

/* ===================================== Deletion, items ======================================= */

void sv_route_delete_user(sq_server *s, const char *user, size_t len, sv_resp *r) {
    uint64_t deleted = 0;
    sq_error err = {0};
    if (sq_store_delete_user(s->store, user, len, &deleted, &err)) {
        sv_error(r, 500, "event store: %s", err.msg);
        return;
    }
    sv_forget(s, user, len);
    sv_user_forget(s, user, len);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "user", user);
    cJSON_AddNumberToObject(out, "deleted", (double)deleted);
    sv_json_resp(r, 200, out);
}

void sv_route_put_item(sq_server *s, const char *item, size_t len, const sv_req *q, sv_resp *r) {
    cJSON *root = sv_body_json(s, q, r);
    if (!root)
        return;
    char *tags = NULL;
    const char *text = NULL;
    if (!cJSON_IsObject(root)) {
        sv_error(r, 400, "item: expected an object {\"tags\":[…],\"text\":\"…\"}");
        goto done;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "tags");
    if (t && !cJSON_IsNull(t)) {
        const cJSON *x;
        int ok = cJSON_IsArray(t);
        cJSON_ArrayForEach(x, t) ok = ok && cJSON_IsString(x) && strlen(x->valuestring) <= MAX_NAME;
        if (!ok) {
            sv_error(r, 400, "item.tags: expected an array of names up to %d bytes", MAX_NAME);
            goto done;
        }
        tags = cJSON_PrintUnformatted(t);
    }
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(root, "text");
    if (x && !cJSON_IsNull(x)) {
        if (!cJSON_IsString(x)) {
            sv_error(r, 400, "item.text: expected a string");
            goto done;
        }
        text = x->valuestring;
    }
    sq_error err = {0};
    if (sq_store_put_item(s->store, item, len, tags, text, &err)) {
        sv_error(r, 500, "event store: %s", err.msg);
        goto done;
    }
    const int known = sq_data_find_item(s->d, item, len) != UINT32_MAX;
    const int tag_ok = sv_content_put(s, item, len, tags, text);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "item", item);
    cJSON_AddBoolToObject(out, "known", known);
    /* how each variant's model scores it: its features, its tags' neighbours, or not at all */
    cJSON *vs = cJSON_CreateArray();
    const char *via0 = NULL;
    for (uint32_t v = 0; !known && v < s->n_var; v++) {
        sv_model *sm = sv_variant_acquire(&s->var[v]);
        const char *via = sv_content_via(sm, tags, text, tag_ok);
        sv_model_release(sm);
        via0 = v ? via0 : via;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "variant", s->var[v].name);
        if (via)
            cJSON_AddStringToObject(o, "via", via);
        else
            cJSON_AddNullToObject(o, "via");
        cJSON_AddItemToArray(vs, o);
    }
    cJSON_AddBoolToObject(out, "recommendable", known || via0);
    if (!known && via0)
        cJSON_AddStringToObject(out, "via", via0);
    if (s->n_var > 1 && !known)
        cJSON_AddItemToObject(out, "variants", vs);
    else
        cJSON_Delete(vs);
    sv_json_resp(r, 200, out);
done:
    cJSON_free(tags);
    cJSON_Delete(root);
}
