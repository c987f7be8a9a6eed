/* routes_users.c — a new user's attributes: PUT /v1/users/{id} {"attributes":{"gender":"F"}}
 * (kept in the event store, forgotten by DELETE /v1/users/{id}) and attr.FIELD=VALUE query
 * parameters of GET …/recommendations (for one request). Fields and values are the dataset's
 * (sq_data_user_attr_find, as `seqrec recommend --attr`); models that read attributes (hybrid,
 * multi-task models with user_attrs) then rank a user without events by them. */
#define _POSIX_C_SOURCE 200809L
#include "serve/serve_int.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

int sv_attrs_parse(const sq_server *s, const cJSON *obj, uint32_t *attrs, char *msg, size_t cap) {
    int n = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, obj) {
        uint32_t k, v;
        sq_error e = {0};
        if (!cJSON_IsString(x)) {
            snprintf(msg, cap, "attributes.%.64s: expected a string", x->string);
            return -1;
        }
        if (sq_data_user_attr_find(s->d, x->string, strlen(x->string), x->valuestring,
                                   strlen(x->valuestring), &k, &v, &e)) {
            snprintf(msg, cap, "attributes.%.64s: %s", x->string, e.msg);
            return -1;
        }
        attrs[k] = v;
        n++;
    }
    return n;
}

typedef struct {
    const sq_server *s;
    uint32_t *attrs;
    char *msg;
    size_t cap;
    int n;
} query_ctx;

static int query_one(void *ud, const char *key, const char *value) {
    query_ctx *c = ud;
    const char *field = key + strlen("attr.");
    uint32_t k, v;
    sq_error e = {0};
    if (sq_data_user_attr_find(c->s->d, field, strlen(field), value ? value : "",
                               value ? strlen(value) : 0, &k, &v, &e)) {
        snprintf(c->msg, c->cap, "%.64s: %s", key, e.msg);
        return -1;
    }
    c->attrs[k] = v;
    c->n++;
    return 0;
}

int sv_attrs_query(const sq_server *s, const struct sv_req *q, uint32_t *attrs, char *msg,
                   size_t cap) {
    query_ctx c = {s, attrs, msg, cap, 0};
    return sv_query_each(q, "attr.", query_one, &c) ? -1 : c.n;
}

void sv_route_put_user(sq_server *s, const char *user, size_t len, const sv_req *q, sv_resp *r) {
    cJSON *root = sv_body_json(s, q, r);
    if (!root)
        return;
    char msg[320];
    const uint32_t na = s->info->n_user_attrs;
    uint32_t *attrs = sq_mallocn(na ? na : 1, sizeof *attrs);
    char *json = NULL;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "attributes");
    if (!attrs) {
        sv_error(r, 500, "out of memory");
        goto done;
    }
    if (!cJSON_IsObject(root) || !cJSON_IsObject(a)) {
        sv_error(r, 400, "user: expected {\"attributes\":{\"field\":\"value\",…}}");
        goto done;
    }
    if (!na && cJSON_GetArraySize(a)) {
        sv_error(r, 400, "attributes: the dataset has no user attributes");
        goto done;
    }
    for (uint32_t k = 0; k < na; k++)
        attrs[k] = UINT32_MAX;
    if (sv_attrs_parse(s, a, attrs, msg, sizeof msg) < 0) {
        sv_error(r, 400, "%s", msg);
        goto done;
    }
    sq_error err = {0};
    if (!(json = cJSON_PrintUnformatted(a)) || sq_store_put_user(s->store, user, len, json, &err)) {
        sv_error(r, 500, "event store: %s", json ? err.msg : "out of memory");
        goto done;
    }
    sv_user_forget(s, user, len); /* the next view loads the attributes */
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "user", user);
    cJSON_AddItemToObject(out, "attributes", cJSON_Duplicate(a, 1));
    cJSON_AddBoolToObject(out, "known", sq_data_find_user(s->d, user, len) != UINT32_MAX);
    sv_json_resp(r, 200, out);
done:
    cJSON_free(json);
    sq_free(attrs);
    cJSON_Delete(root);
}
