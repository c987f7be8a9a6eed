/* routes_recs.c — the read side: recommendations (with cold start and explanations), similar
 * items, and the service routes (reload, health, info). */
#define _POSIX_C_SOURCE 200809L
#include "serve/serve_int.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_K = 1000, EXPLAIN_PER_ITEM = 3 };

/* k from the query: 1..MAX_K, default 10; 0 with an error response on a bad value. */
static uint32_t parse_k(const sv_req *q, sv_resp *r) {
    const char *ks = sv_query(q, "k");
    if (!ks)
        return 10;
    char *end;
    unsigned long k = strtoul(ks, &end, 10);
    if (!*ks || *end || k < 1 || k > MAX_K) {
        sv_error(r, 400, "k: expected 1..%d, got '%.32s'", MAX_K, ks);
        return 0;
    }
    return (uint32_t)k;
}

/* A boolean query flag: absent → 0; true/1 → 1; false/0 → 0; else −1 with an error. */
static int parse_flag(const sv_req *q, const char *name, sv_resp *r) {
    const char *v = sv_query(q, name);
    if (!v)
        return 0;
    if (!strcmp(v, "true") || !strcmp(v, "1") || !*v)
        return 1;
    if (!strcmp(v, "false") || !strcmp(v, "0"))
        return 0;
    sv_error(r, 400, "%s: expected true or false", name);
    return -1;
}

static uint64_t vec_key(uint32_t variant, uint64_t version) {
    return (uint64_t)variant << 48 | version;
}

static void add_reasons(sq_server *s, cJSON *it, const sv_view *v, const sq_reason *rs,
                        uint32_t n) {
    cJSON *arr = cJSON_AddArrayToObject(it, "explain");
    for (uint32_t j = 0; j < n; j++) {
        if (rs[j].pos == UINT32_MAX)
            continue;
        uint32_t p = rs[j].pos;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "item", sq_data_item_id(s->d, v->items[p], NULL));
        cJSON_AddStringToObject(
            e, "behaviour",
            v->beh[p] < s->info->n_behaviours ? sq_data_behaviour_name(s->d, v->beh[p]) : "");
        cJSON_AddNumberToObject(e, "ts", (double)v->ts[p]);
        cJSON_AddNumberToObject(e, "position", (double)p);
        cJSON_AddStringToObject(e, "source", p >= v->n - v->n_live ? "live" : "dataset");
        cJSON_AddNumberToObject(e, "contribution", rs[j].contribution);
        cJSON_AddItemToArray(arr, e);
    }
}

static void cold_start(sq_server *s, const char *user, uint32_t vi, uint64_t version,
                       uint32_t scene, uint32_t k, const sv_view *v, sv_resp *r) {
    uint32_t n;
    const uint32_t *counts;
    const uint32_t *ids = sv_popular(s, scene, &n, &counts);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "user", user);
    cJSON_AddStringToObject(out, "variant", s->var[vi].name);
    cJSON_AddNumberToObject(out, "model_version", (double)version);
    cJSON_AddBoolToObject(out, "cold_start", 1);
    cJSON_AddStringToObject(out, "via", "popularity");
    cJSON *arr = cJSON_AddArrayToObject(out, "items");
    uint32_t got = 0;
    for (uint32_t i = 0; i < n && got < k; i++) {
        int neg = 0;
        for (uint32_t j = 0; j < v->n_negative && !neg; j++)
            neg = v->negative[j] == ids[i];
        if (neg)
            continue;
        cJSON *it = cJSON_CreateObject();
        cJSON_AddStringToObject(it, "item", sq_data_item_id(s->d, ids[i], NULL));
        cJSON_AddNumberToObject(it, "score", (double)counts[i]);
        cJSON_AddItemToArray(arr, it);
        got++;
    }
    atomic_fetch_add_explicit(&s->met.cold_start, 1, memory_order_relaxed);
    r->variant = s->var[vi].name;
    sv_json_resp(r, 200, out);
}

void sv_route_recs(sq_server *s, const char *user, size_t len, const sv_req *q, sv_resp *r) {
    const uint32_t k = parse_k(q, r);
    const int explain = parse_flag(q, "explain", r);
    const int keep_seen = parse_flag(q, "keep_seen", r);
    if (!k || explain < 0 || keep_seen < 0)
        return;
    const char *scene_name = sv_query(q, "scene");
    uint32_t scene = UINT32_MAX;
    if (scene_name)
        scene = sq_strmap_find(s->scenes, scene_name, strlen(scene_name));
    const double t0 = sq_now();
    const uint32_t vi = sv_variant_of(s, user, len);
    sv_model *sm = sv_variant_acquire(&s->var[vi]);
    sv_view v;
    sq_error err = {0};
    uint32_t *exclude = NULL, *ids = NULL;
    float *scores = NULL, *vec_out = NULL;
    sq_reason *reasons = NULL;
    sv_extras *extras = NULL;
    sv_fx *fx = NULL;
    if (sv_user_view(s, user, len, &v, &err)) {
        sv_error(r, 500, "user state: %s", err.msg);
        sv_model_release(sm);
        return;
    }
    /* attr.FIELD=VALUE: this request's attributes over those put or in the dataset */
    char amsg[320];
    const int n_qa = sv_attrs_query(s, q, v.attrs, amsg, sizeof amsg);
    if (n_qa < 0) {
        sv_error(r, 400, "%s", amsg);
        goto done;
    }
    v.n_attrs += (uint32_t)n_qa; /* an upper bound: only whether it is 0 matters */
    /* a model that reads attributes ranks a user without events by them */
    const int by_attrs = sm->uattrs && v.n_attrs;
    if ((!v.known || !v.n) && !by_attrs) {
        cold_start(s, user, vi, sm->version, scene, k, &v, r);
        goto done;
    }
    const uint32_t n_ex = v.n_negative + (keep_seen ? 0 : v.n);
    exclude = sq_mallocn(n_ex ? n_ex : 1, sizeof *exclude);
    ids = sq_mallocn(k, sizeof *ids);
    scores = sq_mallocn(k, sizeof *scores);
    if (sm->fast)
        vec_out = sq_mallocn(sm->dim, sizeof *vec_out);
    if (!exclude || !ids || !scores || (sm->fast && !vec_out)) {
        sv_error(r, 500, "out of memory");
        goto done;
    }
    memcpy(exclude, v.negative, v.n_negative * sizeof *exclude);
    if (!keep_seen)
        memcpy(exclude + v.n_negative, v.items, v.n * sizeof *exclude);
    uint16_t req_scene = scene < s->info->n_scenes ? (uint16_t)scene : 0;
    extras = sv_extras_acquire(s);
    fx = sv_fx_acquire(sm, extras);
    sv_job job = {
        .model = sm,
        .seq = {.items = v.items,
                .beh = v.beh,
                .ts = v.ts,
                .scene = v.scene,
                .values = v.values,
                .n = v.n,
                .user = v.uid,
                /* the user's attributes (dataset, put, this request's), as `recommend --attr`;
                 * without any, their events are their representation, as cold_users */
                .attrs = v.n_attrs ? v.attrs : NULL,
                .req_scene = scene < s->info->n_scenes ? &req_scene : NULL},
        /* the cached vector holds the stored attributes, not this request's */
        .vec = v.vec && !n_qa && v.vec_version == vec_key(vi, sm->version) ? v.vec : NULL,
        .extras = extras,
        .fx = fx,
        .exclude = exclude,
        .n_exclude = n_ex,
        .k = k,
        .ids = ids,
        .scores = scores,
        .vec_out = vec_out,
    };
    if (sv_scorer_run(s->scorer, &job, &err)) {
        sv_error(r, 500, "scoring: %s", err.msg);
        goto done;
    }
    if (sm->fast && !job.vec && !n_qa)
        sv_user_set_vec(s, user, len, v.last_seq, vec_key(vi, sm->version), vec_out, sm->dim);
    uint32_t n_r = 0;
    const uint32_t ni = s->info->n_items;
    if (explain) { /* catalogue items only: a new item's score is its neighbours' */
        uint32_t *cat = sq_mallocn(job.n + 1, sizeof *cat), nc = 0;
        reasons = sq_mallocn((size_t)job.n * EXPLAIN_PER_ITEM + 1, sizeof *reasons);
        for (uint32_t i = 0; cat && i < job.n; i++)
            if (ids[i] < ni)
                cat[nc++] = ids[i];
        sq_status erc = !cat || !reasons
                            ? sq_errorf(&err, SQ_ERR_NOMEM, "out of memory")
                            : sq_model_explain(sm->m, &job.seq, cat, nc, EXPLAIN_PER_ITEM, sm->fast,
                                               reasons, &n_r, &err);
        /* spread the catalogue items' reasons back to their places in the list */
        for (uint32_t i = job.n, c = nc; !erc && i-- > 0;) {
            sq_reason *dst = reasons + (size_t)i * EXPLAIN_PER_ITEM;
            if (ids[i] < ni)
                memmove(dst, reasons + (size_t)--c * EXPLAIN_PER_ITEM,
                        EXPLAIN_PER_ITEM * sizeof *dst);
            else
                for (uint32_t j = 0; j < EXPLAIN_PER_ITEM; j++)
                    dst[j] = (sq_reason){UINT32_MAX, 0.0f};
        }
        sq_free(cat);
        if (erc) {
            sv_error(r, 500, "explain: %s", err.msg);
            goto done;
        }
    }
    sv_user_recommended(s, user, len, vi, ids, job.n);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "user", user);
    cJSON_AddStringToObject(out, "variant", s->var[vi].name);
    cJSON_AddNumberToObject(out, "model_version", (double)sm->version);
    cJSON_AddBoolToObject(out, "cold_start", 0);
    cJSON_AddStringToObject(out, "via",
                            !v.n       ? "attributes"
                            : by_attrs ? "events+attributes"
                                       : "events");
    cJSON *arr = cJSON_AddArrayToObject(out, "items");
    for (uint32_t i = 0; i < job.n; i++) {
        cJSON *it = cJSON_CreateObject();
        if (ids[i] < ni) {
            cJSON_AddStringToObject(it, "item", sq_data_item_id(s->d, ids[i], NULL));
        } else { /* a new item, scored by its content: the model's features or its tags */
            cJSON_AddStringToObject(it, "item", extras->item[ids[i] - ni].id);
            cJSON_AddBoolToObject(it, "content", 1);
            cJSON_AddStringToObject(it, "via", fx && fx->via[ids[i] - ni] ? "features" : "tags");
        }
        cJSON_AddNumberToObject(it, "score", scores[i]);
        if (explain)
            add_reasons(s, it, &v, reasons + (size_t)i * EXPLAIN_PER_ITEM, n_r);
        cJSON_AddItemToArray(arr, it);
    }
    atomic_fetch_add_explicit(&s->var[vi].recommended, job.n, memory_order_relaxed);
    r->variant = s->var[vi].name;
    sv_json_resp(r, 200, out);
done:
    atomic_fetch_add_explicit(&s->var[vi].requests, 1, memory_order_relaxed);
    sv_hist_add(&s->var[vi].latency, sq_now() - t0);
    sq_free(exclude);
    sq_free(ids);
    sq_free(scores);
    sq_free(vec_out);
    sq_free(reasons);
    sv_fx_release(fx);
    sv_extras_release(extras);
    sv_view_free(&v);
    sv_model_release(sm);
}

void sv_route_similar(sq_server *s, const char *item, size_t len, const sv_req *q, sv_resp *r) {
    const uint32_t k = parse_k(q, r);
    if (!k)
        return;
    uint32_t id = sq_data_find_item(s->d, item, len);
    if (id == UINT32_MAX) {
        sv_error(r, 404, "item '%.256s' is not in the catalogue", item);
        return;
    }
    sv_model *sm = sv_variant_acquire(&s->var[0]);
    uint32_t *ids = sq_mallocn(k, sizeof *ids);
    float *scores = sq_mallocn(k, sizeof *scores);
    sq_error err = {0};
    if (!ids || !scores) {
        sv_error(r, 500, "out of memory");
    } else {
        sv_job job = {.model = sm,
                      .seq = {.items = &id, .n = 1, .user = UINT32_MAX},
                      .exclude = &id,
                      .n_exclude = 1,
                      .k = k,
                      .ids = ids,
                      .scores = scores};
        if (sv_scorer_run(s->scorer, &job, &err)) {
            sv_error(r, 500, "scoring: %s", err.msg);
        } else {
            cJSON *out = cJSON_CreateObject();
            cJSON_AddStringToObject(out, "item", item);
            cJSON_AddStringToObject(out, "variant", s->var[0].name);
            cJSON *arr = cJSON_AddArrayToObject(out, "items");
            for (uint32_t i = 0; i < job.n; i++) {
                cJSON *it = cJSON_CreateObject();
                cJSON_AddStringToObject(it, "item", sq_data_item_id(s->d, ids[i], NULL));
                cJSON_AddNumberToObject(it, "score", scores[i]);
                cJSON_AddItemToArray(arr, it);
            }
            sv_json_resp(r, 200, out);
        }
    }
    sq_free(ids);
    sq_free(scores);
    sv_model_release(sm);
}

/* ========================================== Service ========================================== */

/* The index of the variant called name; s->n_var when there is none. */
static uint32_t variant_named(const sq_server *s, const char *name) {
    uint32_t v = 0;
    while (v < s->n_var && strcmp(s->var[v].name, name))
        v++;
    return v;
}

void sv_route_reload(sq_server *s, const sv_req *q, sv_resp *r) {
    size_t len;
    sv_body(q, &len);
    uint32_t vi = 0;
    const char *path = NULL;
    cJSON *root = NULL;
    if (len) {
        if (!(root = sv_body_json(s, q, r)))
            return;
        const cJSON *vn = cJSON_GetObjectItemCaseSensitive(root, "variant");
        const cJSON *mp = cJSON_GetObjectItemCaseSensitive(root, "model");
        if (!cJSON_IsObject(root) || (vn && !cJSON_IsString(vn)) || (mp && !cJSON_IsString(mp))) {
            cJSON_Delete(root);
            sv_error(r, 400, "reload: expected {\"variant\":\"…\",\"model\":\"path.sqm\"}");
            return;
        }
        if (vn) {
            vi = variant_named(s, vn->valuestring);
            if (vi == s->n_var) {
                sv_error(r, 404, "reload: no variant '%.64s'", vn->valuestring);
                cJSON_Delete(root);
                return;
            }
        }
        path = mp ? mp->valuestring : NULL;
    }
    uint64_t version = 0;
    sq_error err = {0};
    if (sv_variant_reload(s, vi, path, &version, &err)) {
        sv_error(r, err.code == SQ_ERR_MISMATCH || err.code == SQ_ERR_FORMAT ? 400 : 500,
                 "reload: %s", err.msg);
    } else {
        sq_report_log(&s->o.reporter, SQ_LOG_INFO, "serve", "variant %s: model version %llu",
                      s->var[vi].name, (unsigned long long)version);
        cJSON *out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "variant", s->var[vi].name);
        cJSON_AddNumberToObject(out, "model_version", (double)version);
        sv_json_resp(r, 200, out);
    }
    cJSON_Delete(root);
}

/* Body {"variant":"main"} or none (every variant). */
void sv_route_learn(sq_server *s, const sv_req *q, sv_resp *r) {
    size_t len;
    sv_body(q, &len);
    uint32_t v0 = 0, v1 = s->n_var;
    if (len) {
        cJSON *root = sv_body_json(s, q, r);
        if (!root)
            return;
        const cJSON *vn = cJSON_GetObjectItemCaseSensitive(root, "variant");
        if (!cJSON_IsObject(root) || (vn && !cJSON_IsString(vn))) {
            cJSON_Delete(root);
            sv_error(r, 400, "learn: expected {\"variant\":\"…\"} or no body");
            return;
        }
        if (vn) {
            v0 = variant_named(s, vn->valuestring);
            if (v0 == s->n_var) {
                sv_error(r, 404, "learn: no variant '%.64s'", vn->valuestring);
                cJSON_Delete(root);
                return;
            }
            v1 = v0 + 1;
        }
        cJSON_Delete(root);
    }
    cJSON *out = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(out, "variants");
    for (uint32_t v = v0; v < v1; v++) {
        sv_online_result res;
        sq_error err = {0};
        if (sv_online_round(s, v, &res, &err)) {
            cJSON_Delete(out);
            sv_error(r, err.code == SQ_ERR_ARG ? 409 : 500, "learn: %s", err.msg);
            return;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "variant", s->var[v].name);
        cJSON_AddNumberToObject(o, "users", res.users);
        cJSON_AddNumberToObject(o, "sequences", res.sequences);
        cJSON_AddNumberToObject(o, "steps", (double)res.steps);
        cJSON_AddNumberToObject(o, "loss", res.loss);
        cJSON_AddBoolToObject(o, "updated", res.version != 0);
        sv_model *sm = sv_variant_acquire(&s->var[v]);
        cJSON_AddNumberToObject(o, "model_version", (double)sm->version);
        sv_model_release(sm);
        cJSON_AddItemToArray(arr, o);
    }
    sv_json_resp(r, 200, out);
}

void sv_route_health(sq_server *s, sv_resp *r) {
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "status", "ok");
    cJSON_AddNumberToObject(out, "events", (double)sq_store_count(s->store));
    sv_model *sm = sv_variant_acquire(&s->var[0]);
    cJSON_AddNumberToObject(out, "model_version", (double)sm->version);
    sv_model_release(sm);
    cJSON_AddNumberToObject(out, "uptime", sq_now() - s->started);
    sv_json_resp(r, 200, out);
}

void sv_route_info(sq_server *s, sv_resp *r) {
    cJSON *out = cJSON_CreateObject();
    cJSON *d = cJSON_AddObjectToObject(out, "dataset");
    cJSON_AddStringToObject(d, "path", s->o.data_path);
    cJSON_AddNumberToObject(d, "users", s->info->n_users);
    cJSON_AddNumberToObject(d, "items", s->info->n_items);
    cJSON_AddNumberToObject(d, "events", (double)s->info->n_events);
    cJSON *b = cJSON_AddArrayToObject(d, "behaviours");
    for (uint32_t i = 0; i < s->info->n_behaviours; i++)
        cJSON_AddItemToArray(b, cJSON_CreateString(sq_data_behaviour_name(s->d, i)));
    cJSON *sc = cJSON_AddArrayToObject(d, "scenes");
    for (uint32_t i = 0; i < s->info->n_scenes; i++)
        cJSON_AddItemToArray(sc, cJSON_CreateString(sq_data_scene_name(s->d, i)));
    cJSON *vs = cJSON_AddArrayToObject(out, "variants");
    for (uint32_t i = 0; i < s->n_var; i++) {
        sv_model *sm = sv_variant_acquire(&s->var[i]);
        cJSON *v = cJSON_CreateObject();
        cJSON_AddStringToObject(v, "name", s->var[i].name);
        pthread_mutex_lock(&s->var[i].mu);
        cJSON_AddStringToObject(v, "model", s->var[i].path);
        pthread_mutex_unlock(&s->var[i].mu);
        cJSON_AddStringToObject(v, "kind", sm->m->ops->name);
        cJSON_AddNumberToObject(v, "weight", s->var[i].weight);
        cJSON_AddNumberToObject(v, "model_version", (double)sm->version);
        cJSON_AddBoolToObject(v, "vectors", sm->fast);
        cJSON_AddNumberToObject(v, "window", sm->window);
        char *cfg = sq_config_to_json(sm->m->cfg);
        cJSON *c = cfg ? cJSON_Parse(cfg) : NULL;
        if (c)
            cJSON_AddItemToObject(v, "config", c);
        sq_free(cfg);
        cJSON_AddItemToArray(vs, v);
        sv_model_release(sm);
    }
    cJSON *neg = cJSON_AddArrayToObject(out, "negative");
    for (uint32_t i = 0; i < s->n_negative_names; i++)
        cJSON_AddItemToArray(neg, cJSON_CreateString(s->negative_names[i]));
    sv_json_resp(r, 200, out);
}
