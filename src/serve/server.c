/* server.c — the HTTP side of `seqrec serve` on libmicrohttpd (a thread pool over epoll):
 * request bodies (bounded), API keys, per-key rate limits, routing, responses, the access log,
 * and the server's start and stop.
 *
 * A request's life: MHD calls `handle` first with no body (the request is set up; an announced
 * body over the limit is refused at once with 413), then with each piece of the body (kept up
 * to max_body; beyond it the rest is discarded and the answer is 413), then once more with no
 * data: auth, rate limit, route, answer. */
#define _GNU_SOURCE /* strcasecmp, strtok_r */
#include "serve/serve_int.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { MAX_PATH_ID = 256, LIMIT_SLOTS = 4096 };

struct sv_req {
    struct MHD_Connection *conn;
    char *body;
    size_t len, cap;
    int too_big;
    double t0;
};

const char *sv_query(const sv_req *q, const char *key) {
    return MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, key);
}

typedef struct {
    const char *prefix;
    int (*fn)(void *ud, const char *key, const char *value);
    void *ud;
    int rc;
} each_ctx;

static enum MHD_Result each_one(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value) {
    (void)kind;
    each_ctx *c = cls;
    if (key && !strncmp(key, c->prefix, strlen(c->prefix)))
        c->rc = c->fn(c->ud, key, value);
    return c->rc ? MHD_NO : MHD_YES;
}

int sv_query_each(const sv_req *q, const char *prefix,
                  int (*fn)(void *ud, const char *key, const char *value), void *ud) {
    each_ctx c = {prefix, fn, ud, 0};
    MHD_get_connection_values(q->conn, MHD_GET_ARGUMENT_KIND, each_one, &c);
    return c.rc;
}

const char *sv_body(const sv_req *q, size_t *len) {
    *len = q->len;
    return q->body ? q->body : "";
}

cJSON *sv_body_json(const sq_server *s, const sv_req *q, sv_resp *r) {
    char msg[320];
    cJSON *root = sv_json_parse(q->body ? q->body : "", q->len, s->o.max_depth, msg, sizeof msg);
    if (!root)
        sv_error(r, 400, "%s", msg);
    return root;
}

/* ========================================= Responses ========================================= */

void sv_error(sv_resp *r, unsigned status, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg); /* cJSON escapes: user text cannot break JSON */
    sv_json_resp(r, status, o);
}

void sv_json_resp(sv_resp *r, unsigned status, cJSON *o) {
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    sq_free(r->body);
    r->body = NULL;
    if (!s) {
        static const char oom[] = "{\"error\":\"out of memory\"}";
        r->body = sq_malloc(sizeof oom);
        if (r->body)
            memcpy(r->body, oom, sizeof oom);
        r->len = r->body ? sizeof oom - 1 : 0;
        r->status = 500;
    } else {
        size_t n = strlen(s);
        r->body = sq_malloc(n + 2);
        if (r->body) {
            memcpy(r->body, s, n);
            r->body[n] = '\n';
            r->body[n + 1] = 0;
        }
        r->len = r->body ? n + 1 : 0;
        r->status = status;
        cJSON_free(s);
    }
    r->type = "application/json";
}

/* ============================================ JSON =========================================== */

cJSON *sv_json_parse(const char *text, size_t len, uint32_t max_depth, char *msg, size_t cap) {
    if (!len) {
        snprintf(msg, cap, "empty body: expected JSON");
        return NULL;
    }
    /* nesting depth, counted without recursion before cJSON (which recurses) sees the text */
    uint32_t depth = 0;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth) {
                snprintf(msg, cap, "JSON nested deeper than %u levels (--max-depth)", max_depth);
                return NULL;
            }
        } else if ((c == ']' || c == '}') && depth) {
            depth--;
        }
    }
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!o) {
        size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        snprintf(msg, cap, "invalid JSON at byte %zu", at);
        return NULL;
    }
    if (end && end < text + len) {
        size_t at = (size_t)(end - text);
        while (at < len &&
               (text[at] == ' ' || text[at] == '\n' || text[at] == '\r' || text[at] == '\t'))
            at++;
        if (at < len) {
            cJSON_Delete(o);
            snprintf(msg, cap, "invalid JSON: text after the value at byte %zu", at);
            return NULL;
        }
    }
    return o;
}

/* ====================================== Users, feedback ====================================== */

int sv_forgotten(const sq_server *s, const char *user, size_t len) {
    sq_server *w = (sq_server *)s;
    pthread_mutex_lock(&w->forgot_mu);
    int f = sq_strmap_find(s->forgotten, user, len) != UINT32_MAX;
    pthread_mutex_unlock(&w->forgot_mu);
    return f;
}

void sv_forget(sq_server *s, const char *user, size_t len) {
    if (sq_data_find_user(s->d, user, len) == UINT32_MAX)
        return; /* only dataset users need remembering */
    uint32_t id;
    pthread_mutex_lock(&s->forgot_mu);
    sq_strmap_intern(s->forgotten, user, len, &id, NULL);
    pthread_mutex_unlock(&s->forgot_mu);
}

int sv_is_negative(const sq_server *s, const char *behaviour) {
    for (uint32_t i = 0; i < s->n_negative_names; i++)
        if (!strcmp(s->negative_names[i], behaviour))
            return 1;
    return 0;
}

void sv_user_hash(const sq_server *s, const char *user, size_t len, char buf[17]) {
    uint64_t h = sq_hash64(user, len) ^ s->log_salt;
    h = sq_hash64(&h, sizeof h);
    snprintf(buf, 17, "%016llx", (unsigned long long)h);
}

/* ======================================= Keys, limits ======================================== */

typedef struct {
    uint64_t who;  /* hash of the key or address */
    double tokens; /* requests left in the bucket */
    double last;   /* time of the last refill */
} bucket;

typedef struct {
    pthread_mutex_t mu;
    bucket slot[LIMIT_SLOTS];
} limiter;

/* 1 when the caller may go on: a token bucket of rate r and burst 2r per caller (a fixed table:
 * a new caller landing on a used slot takes it over, which can only be lenient). */
static int rate_ok(sq_server *s, uint64_t who) {
    limiter *l = s->limiter;
    const double r = s->o.rate_limit, now = sq_now();
    pthread_mutex_lock(&l->mu);
    bucket *b = &l->slot[who & (LIMIT_SLOTS - 1)];
    if (b->who != who || b->last == 0.0) {
        b->who = who;
        b->tokens = 2.0 * r;
        b->last = now;
    }
    b->tokens = fmin(2.0 * r, b->tokens + (now - b->last) * r);
    b->last = now;
    int ok = b->tokens >= 1.0;
    if (ok)
        b->tokens -= 1.0;
    pthread_mutex_unlock(&l->mu);
    return ok;
}

/* Constant-time string equality (keys). */
static int same(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = (unsigned char)(la != lb);
    for (size_t i = 0; i < la && i < lb; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

/* The key presented, or NULL. */
static const sv_key *find_key(const sq_server *s, struct MHD_Connection *c) {
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7))
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    const sv_key *found = NULL;
    for (uint32_t i = 0; i < s->n_keys; i++)
        if (same(h, s->keys[i].key))
            found = &s->keys[i];
    return found;
}

static sq_status load_keys(sq_server *s, const char *path, sq_error *err) {
    FILE *f = fopen(path, "r");
    if (!f)
        return sq_errorf(err, SQ_ERR_IO, "%s: %s", path, strerror(errno));
    char line[512];
    unsigned lineno = 0;
    sq_status rc = SQ_OK;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        char *save = NULL, *key = strtok_r(line, " \t\r\n", &save);
        if (!key || *key == '#')
            continue;
        char *role = strtok_r(NULL, " \t\r\n", &save);
        if (strlen(key) < 16 || strlen(key) >= sizeof s->keys[0].key)
            rc = sq_errorf(err, SQ_ERR_PARSE, "%s:%u: key: must be 16..127 characters", path,
                           lineno);
        else if (role && strcmp(role, "admin") && strcmp(role, "write"))
            rc = sq_errorf(err, SQ_ERR_PARSE, "%s:%u: role: '%s' is not write or admin", path,
                           lineno, role);
        else {
            sv_key *k = sq_reallocn(s->keys, s->n_keys + 1, sizeof *k);
            if (!k) {
                rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
                break;
            }
            s->keys = k;
            snprintf(k[s->n_keys].key, sizeof k->key, "%s", key);
            k[s->n_keys].admin = role && !strcmp(role, "admin");
            s->n_keys++;
        }
    }
    fclose(f);
    if (!rc && !s->n_keys)
        rc = sq_errorf(err, SQ_ERR_PARSE, "%s: no key in the file", path);
    return rc;
}

/* ========================================== Static =========================================== */

static const char *mime(const char *path) {
    const char *dot = strrchr(path, '.');
    static const char *const t[][2] = {{".html", "text/html; charset=utf-8"},
                                       {".js", "text/javascript"},
                                       {".css", "text/css"},
                                       {".json", "application/json"},
                                       {".svg", "image/svg+xml"},
                                       {".png", "image/png"},
                                       {".ico", "image/x-icon"},
                                       {".map", "application/json"}};
    for (size_t i = 0; dot && i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(dot, t[i][0]))
            return t[i][1];
    return "application/octet-stream";
}

static void route_static(sq_server *s, const char *url, sv_resp *r) {
    if (!s->o.static_dir || strstr(url, "..") || strlen(url) > 200) {
        sv_error(r, 404, "no route %.200s", url);
        return;
    }
    char path[512];
    snprintf(path, sizeof path, "%s%s%s", s->o.static_dir, url,
             url[strlen(url) - 1] == '/' ? "index.html" : "");
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) || !S_ISREG(st.st_mode) || st.st_size > (64 << 20)) {
        if (f)
            fclose(f);
        sv_error(r, 404, "no route %.200s", url);
        return;
    }
    char *buf = sq_malloc((size_t)st.st_size + 1);
    size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!buf || n != (size_t)st.st_size) {
        sq_free(buf);
        sv_error(r, 500, "cannot read %.200s", url);
        return;
    }
    sq_free(r->body);
    r->body = buf;
    r->len = n;
    r->status = 200;
    r->type = mime(path);
}

/* ========================================== Routing ========================================== */

/* "/v1/users/{id}/rest": the id (into id, NUL-terminated) and the rest ("" or "/rest"). */
static int split_id(const char *url, const char *prefix, char *id, size_t cap, const char **rest) {
    size_t pl = strlen(prefix);
    if (strncmp(url, prefix, pl))
        return 0;
    const char *p = url + pl, *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    if (n == 0 || n >= cap)
        return -1;
    memcpy(id, p, n);
    id[n] = 0;
    *rest = p + n;
    return 1;
}

typedef enum { AUTH_NONE = 0, AUTH_WRITE, AUTH_ADMIN } auth_need;

static sv_route dispatch(sq_server *s, const char *url, const char *method, sv_req *q, sv_resp *r,
                         char *user_for_log, size_t log_cap) {
    const int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    char id[MAX_PATH_ID + 1];
    const char *rest = "";
    int m;
    /* route and what it needs */
    sv_route route = SV_R_OTHER;
    auth_need need = AUTH_NONE;
    int method_ok = 0;
    if (!strcmp(url, "/healthz"))
        route = SV_R_HEALTH, method_ok = get;
    else if (!strcmp(url, "/metrics"))
        route = SV_R_METRICS, method_ok = get;
    else if (!strcmp(url, "/v1/info"))
        route = SV_R_INFO, method_ok = get;
    else if (!strcmp(url, "/v1/events"))
        route = SV_R_EVENTS, method_ok = !strcmp(method, "POST"), need = AUTH_WRITE;
    else if (!strcmp(url, "/v1/admin/reload"))
        route = SV_R_RELOAD, method_ok = !strcmp(method, "POST"), need = AUTH_ADMIN;
    else if (!strcmp(url, "/v1/admin/learn"))
        route = SV_R_LEARN, method_ok = !strcmp(method, "POST"), need = AUTH_ADMIN;
    else if (!strncmp(url, "/v1/dashboard/", 14))
        route = SV_R_DASHBOARD, method_ok = get;
    else if ((m = split_id(url, "/v1/users/", id, sizeof id, &rest)) != 0) {
        if (m < 0) {
            sv_error(r, 400, "user id: 1..%d bytes", MAX_PATH_ID);
            return SV_R_OTHER;
        }
        if (!strcmp(rest, "/recommendations"))
            route = SV_R_RECS, method_ok = get;
        else if (!strcmp(rest, "/history"))
            route = SV_R_HISTORY, method_ok = get;
        else if (!*rest && !strcmp(method, "PUT"))
            route = SV_R_PUT_USER, method_ok = 1, need = AUTH_WRITE;
        else if (!*rest)
            route = SV_R_DELETE_USER, method_ok = !strcmp(method, "DELETE"), need = AUTH_WRITE;
        if (route != SV_R_OTHER)
            snprintf(user_for_log, log_cap, "%s", id);
    } else if ((m = split_id(url, "/v1/items/", id, sizeof id, &rest)) != 0) {
        if (m < 0) {
            sv_error(r, 400, "item id: 1..%d bytes", MAX_PATH_ID);
            return SV_R_OTHER;
        }
        if (!strcmp(rest, "/similar"))
            route = SV_R_SIMILAR, method_ok = get;
        else if (!*rest && get)
            route = SV_R_ITEM, method_ok = 1;
        else if (!*rest)
            route = SV_R_PUT_ITEM, method_ok = !strcmp(method, "PUT"), need = AUTH_WRITE;
    } else if (s->o.static_dir && get && strncmp(url, "/v1/", 4)) {
        route = SV_R_STATIC, method_ok = 1;
    }
    if (route == SV_R_OTHER) {
        sv_error(r, 404, "no route %.200s %.200s", method, url);
        return route;
    }
    if (!method_ok) {
        sv_error(r, 405, "%s is not allowed on %.200s", method, url);
        return route;
    }
    const sv_key *key = find_key(s, q->conn);
    if (need != AUTH_NONE && s->n_keys) {
        if (!key) {
            sv_error(r, 401, "this call needs an API key: Authorization: Bearer KEY");
            return route;
        }
        if (need == AUTH_ADMIN && !key->admin) {
            sv_error(r, 403, "this call needs an admin key");
            return route;
        }
    }
    if (s->o.rate_limit > 0) {
        uint64_t who;
        if (key) {
            who = sq_hash64(key->key, strlen(key->key));
        } else {
            const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(q->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
            const struct sockaddr *sa = ci ? ci->client_addr : NULL;
            if (sa && sa->sa_family == AF_INET)
                who = sq_hash64(&((const struct sockaddr_in *)sa)->sin_addr, 4);
            else if (sa && sa->sa_family == AF_INET6)
                who = sq_hash64(&((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
            else
                who = 0;
        }
        if (!rate_ok(s, who)) {
            atomic_fetch_add_explicit(&s->met.rate_limited, 1, memory_order_relaxed);
            sv_error(r, 429, "over the rate limit of %g requests a second", s->o.rate_limit);
            return route;
        }
    }
    switch (route) {
    case SV_R_HEALTH:
        sv_route_health(s, r);
        break;
    case SV_R_METRICS: {
        char *txt = sv_metrics_render(s);
        if (!txt) {
            sv_error(r, 500, "out of memory");
            break;
        }
        r->body = txt;
        r->len = strlen(txt);
        r->status = 200;
        r->type = "text/plain; version=0.0.4";
        break;
    }
    case SV_R_INFO:
        sv_route_info(s, r);
        break;
    case SV_R_EVENTS:
        sv_route_events(s, q, r);
        break;
    case SV_R_RELOAD:
        sv_route_reload(s, q, r);
        break;
    case SV_R_LEARN:
        sv_route_learn(s, q, r);
        break;
    case SV_R_RECS:
        sv_route_recs(s, id, strlen(id), q, r);
        break;
    case SV_R_HISTORY:
        sv_route_history(s, id, strlen(id), q, r);
        break;
    case SV_R_DELETE_USER:
        sv_route_delete_user(s, id, strlen(id), r);
        break;
    case SV_R_SIMILAR:
        sv_route_similar(s, id, strlen(id), q, r);
        break;
    case SV_R_PUT_ITEM:
        sv_route_put_item(s, id, strlen(id), q, r);
        break;
    case SV_R_PUT_USER:
        sv_route_put_user(s, id, strlen(id), q, r);
        break;
    case SV_R_DASHBOARD:
        sv_route_dashboard(s, url + 14, r);
        break;
    case SV_R_ITEM:
        sv_route_item_info(s, id, strlen(id), r);
        break;
    case SV_R_STATIC:
        route_static(s, url, r);
        break;
    default:
        sv_error(r, 404, "no route");
    }
    return route;
}

static void access_log(sq_server *s, const char *method, sv_route route, unsigned status,
                       double secs, const char *user) {
    if (!s->access_log)
        return;
    char uh[17] = "-";
    if (*user)
        sv_user_hash(s, user, strlen(user), uh);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    pthread_mutex_lock(&s->log_mu);
    fprintf(s->access_log, "%s %s %s %u %.3fms user=%s\n", ts, method, SV_ROUTE_NAMES[route],
            status, secs * 1e3, uh);
    fflush(s->access_log);
    pthread_mutex_unlock(&s->log_mu);
}

static enum MHD_Result respond(struct MHD_Connection *c, sv_resp *r) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(r->len, r->body, sq_free);
    if (!resp) {
        sq_free(r->body);
        return MHD_NO;
    }
    r->body = NULL;
    MHD_add_response_header(resp, "Content-Type", r->type ? r->type : "application/json");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (r->variant)
        MHD_add_response_header(resp, "X-Seqrec-Variant", r->variant);
    enum MHD_Result ret = MHD_queue_response(c, r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls) {
    (void)version;
    sq_server *s = cls;
    sv_req *q = *con_cls;
    if (!q) {                   /* first call: headers only */
        omp_set_num_threads(1); /* this thread's model work runs single-threaded */
        if (!(q = sq_calloc(1, sizeof *q)))
            return MHD_NO;
        q->conn = c;
        q->t0 = sq_now();
        *con_cls = q;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->o.max_body)
            q->too_big = 1;
        if (!q->too_big)
            return MHD_YES;
        /* refuse at once, without reading the body */
    } else if (*upload_size) {
        if (!q->too_big && q->len + *upload_size > s->o.max_body)
            q->too_big = 1;
        if (!q->too_big) {
            if (sq_grow((void **)&q->body, &q->cap, q->len + *upload_size + 1, 1))
                q->too_big = 1;
            else {
                memcpy(q->body + q->len, upload, *upload_size);
                q->len += *upload_size;
                q->body[q->len] = 0;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    sv_resp r = {0};
    char user[MAX_PATH_ID + 1] = "";
    sv_route route = SV_R_OTHER;
    if (q->too_big)
        sv_error(&r, 413, "body over %llu bytes (--max-body)", (unsigned long long)s->o.max_body);
    else
        route = dispatch(s, url, method, q, &r, user, sizeof user);
    if (!r.body)
        sv_error(&r, 500, "no answer");
    const double secs = sq_now() - q->t0;
    sv_hist_add(&s->met.latency[route], secs);
    unsigned cls_i = r.status / 100 - 1;
    atomic_fetch_add_explicit(&s->met.status[route][cls_i < 5 ? cls_i : 4], 1,
                              memory_order_relaxed);
    access_log(s, method, route, r.status, secs, user);
    return respond(c, &r);
}

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls, (void)c, (void)toe;
    sv_req *q = *con_cls;
    if (q) {
        sq_free(q->body);
        sq_free(q);
        *con_cls = NULL;
    }
}

/* ====================================== Start and stop ======================================= */

static char *own(sq_server *s, const char *str) {
    if (!str)
        return NULL;
    for (size_t i = 0; i < sizeof s->owned / sizeof s->owned[0]; i++)
        if (!s->owned[i])
            return s->owned[i] = sq_strdup(str);
    return NULL;
}

/* Copies of the dashboard's file lists (the options then point into them); each file must be
 * readable now (it is read again at each request). */
static sq_status own_files(sq_server *s, sq_error *err) {
    const uint32_t nl = s->o.n_metrics_logs, ne = s->o.n_eval_jsons;
    if (!nl && !ne)
        return SQ_OK;
    if (!(s->dash_files = sq_calloc(nl + ne, sizeof *s->dash_files))) {
        s->o.n_metrics_logs = s->o.n_eval_jsons = 0;
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < nl + ne; i++) {
        const char *p = i < nl ? s->o.metrics_logs[i] : s->o.eval_jsons[i - nl];
        if (!(s->dash_files[i] = sq_strdup(p)))
            return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        FILE *f = fopen(p, "rb");
        if (!f)
            return sq_errorf(err, SQ_ERR_IO, "%s %s: %s", i < nl ? "--metrics-log" : "--eval-json",
                             p, strerror(errno));
        fclose(f);
    }
    s->o.metrics_logs = (const char *const *)s->dash_files;
    s->o.eval_jsons = (const char *const *)s->dash_files + nl;
    return SQ_OK;
}

static int add_forgotten(void *ud, const char *user, size_t len) {
    sv_forget(ud, user, len);
    return 0;
}

static sq_status parse_negative(sq_server *s, sq_error *err) {
    if (!s->o.negative || !*s->o.negative)
        return SQ_OK;
    char *copy = sq_strdup(s->o.negative), *save = NULL;
    if (!copy)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char **p = sq_reallocn(s->negative_names, s->n_negative_names + 1, sizeof *p);
        if (!p || !(p[s->n_negative_names] = sq_strdup(t))) {
            if (p)
                s->negative_names = p;
            sq_free(copy);
            return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        }
        s->negative_names = p;
        s->n_negative_names++;
    }
    sq_free(copy);
    return SQ_OK;
}

static sq_status start_http(sq_server *s, sq_error *err) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD;
    if (strchr(s->o.bind, ':')) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(s->o.port);
        if (inet_pton(AF_INET6, s->o.bind, &a6->sin6_addr) != 1)
            return sq_errorf(err, SQ_ERR_ARG, "--bind '%s': not an IPv6 address", s->o.bind);
        flags |= MHD_USE_IPv6;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        a4->sin_family = AF_INET;
        a4->sin_port = htons(s->o.port);
        if (inet_pton(AF_INET, s->o.bind, &a4->sin_addr) != 1)
            return sq_errorf(err, SQ_ERR_ARG, "--bind '%s': not an IPv4 address", s->o.bind);
    }
    s->httpd = MHD_start_daemon(flags, s->o.port, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR,
                                (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
                                (unsigned)s->o.http_threads, MHD_OPTION_CONNECTION_LIMIT,
                                (unsigned)4096, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                                MHD_OPTION_NOTIFY_COMPLETED, request_done, s, MHD_OPTION_END);
    if (!s->httpd)
        return sq_errorf(err, SQ_ERR_IO, "cannot listen on %s:%u (in use, or not allowed)",
                         s->o.bind, s->o.port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->httpd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->o.port;
    return SQ_OK;
}

sq_status sq_serve_start(sq_server **out, const sq_serve_opts *opts, sq_error *err) {
    *out = NULL;
    if (!opts->data_path || opts->n_variants < 1 || opts->n_variants > SQ_SERVE_MAX_VARIANTS)
        return sq_errorf(err, SQ_ERR_ARG, "serve: a dataset and 1..%d models are needed",
                         SQ_SERVE_MAX_VARIANTS);
    sq_server *s = sq_calloc(1, sizeof *s);
    if (!s)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    s->started = sq_now();
    s->o = *opts;
    pthread_mutex_init(&s->log_mu, NULL);
    pthread_mutex_init(&s->forgot_mu, NULL);
    for (uint32_t v = 0; v < SQ_SERVE_MAX_VARIANTS; v++)
        pthread_mutex_init(&s->var[v].mu, NULL);
    sq_status rc = SQ_OK;
#define DEF(field, val)                                                                            \
    if (!s->o.field)                                                                               \
    s->o.field = (val)
    DEF(store_path, "events.db");
    DEF(bind, "127.0.0.1");
    DEF(http_threads, 64);
    DEF(score_workers,
        (uint32_t)(sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 1));
    DEF(score_threads, 1);
    DEF(cache_bytes, (uint64_t)256 << 20);
    DEF(user_events, 200);
    DEF(max_body, 1u << 20);
    DEF(max_batch, 1000);
    DEF(max_depth, 16);
    DEF(hit_window, 3600.0);
    DEF(online_lr, 0.1);
    DEF(online_steps, 50);
#undef DEF
    s->o.data_path = own(s, s->o.data_path);
    s->o.store_path = own(s, s->o.store_path);
    s->o.bind = own(s, s->o.bind);
    s->o.negative = own(s, s->o.negative);
    s->o.static_dir = own(s, s->o.static_dir);
    s->o.api_key_file = own(s, s->o.api_key_file);
    s->o.access_log = own(s, s->o.access_log);
    if ((rc = own_files(s, err)))
        goto fail;
    {
        FILE *ur = fopen("/dev/urandom", "rb");
        if (!ur || fread(&s->log_salt, sizeof s->log_salt, 1, ur) != 1)
            s->log_salt = sq_hash64(&s, sizeof s) ^ (uint64_t)time(NULL);
        if (ur)
            fclose(ur);
    }
    if (!(s->limiter = sq_calloc(1, sizeof(limiter))) || !(s->forgotten = sq_strmap_create(16))) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto fail;
    }
    pthread_mutex_init(&((limiter *)s->limiter)->mu, NULL);
    if ((rc = parse_negative(s, err)))
        goto fail;
    if (s->o.api_key_file && (rc = load_keys(s, s->o.api_key_file, err)))
        goto fail;
    if (s->o.access_log && !(s->access_log = fopen(s->o.access_log, "a"))) {
        rc = sq_errorf(err, SQ_ERR_IO, "%s: %s", s->o.access_log, strerror(errno));
        goto fail;
    }
    if ((rc = sq_data_open(&s->d, s->o.data_path, err)))
        goto fail;
    s->info = sq_data_info_of(s->d);
    if (!(s->scenes = sq_strmap_create(s->info->n_scenes))) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (uint32_t i = 0; i < s->info->n_scenes; i++) {
        const char *nm = sq_data_scene_name(s->d, i);
        uint32_t id;
        if ((rc = sq_strmap_intern(s->scenes, nm, strlen(nm), &id, NULL))) {
            sq_errorf(err, rc, "out of memory");
            goto fail;
        }
    }
    if ((rc = sv_content_init(s, err)) || (rc = sv_dash_init(s, err)))
        goto fail;
    double wsum = 0.0;
    for (uint32_t v = 0; v < opts->n_variants; v++) {
        const sq_serve_variant *sv = &opts->variants[v];
        if (!sv->name || !*sv->name || strlen(sv->name) >= sizeof s->var[v].name ||
            !(sv->weight > 0) || !isfinite(sv->weight) || !sv->path) {
            rc = sq_errorf(err, SQ_ERR_ARG,
                           "variant %u: needs a name of 1..31 characters, a model file and a "
                           "weight > 0",
                           v + 1);
            goto fail;
        }
        for (uint32_t w = 0; w < v; w++)
            if (!strcmp(s->var[w].name, sv->name)) {
                rc = sq_errorf(err, SQ_ERR_ARG, "variant '%s' given twice", sv->name);
                goto fail;
            }
        snprintf(s->var[v].name, sizeof s->var[v].name, "%s", sv->name);
        if (!(s->var[v].path = sq_strdup(sv->path))) {
            rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
            goto fail;
        }
        s->var[v].weight = sv->weight;
        wsum += sv->weight;
        s->n_var = v + 1;
        sq_report_log(&s->o.reporter, SQ_LOG_INFO, "serve", "loading %s (variant %s)", sv->path,
                      sv->name);
        if ((rc = sv_model_load(s, sv->path, 1, &s->var[v].cur, err)))
            goto fail;
    }
    for (uint32_t v = 0; v < s->n_var; v++)
        s->var[v].weight /= wsum;
    if ((rc = sv_popular_build(s, err)))
        goto fail;
    sq_store_opts so = {.no_sync = s->o.no_sync, .sync_normal = s->o.sync_normal};
    if ((rc = sq_store_open(&s->store, s->o.store_path, &so, err)) ||
        (rc = sq_store_forgotten(s->store, add_forgotten, s, err)) ||
        (rc = sv_content_load(s, err)))
        goto fail;
    if ((rc = sv_cache_create(&s->cache, s->o.cache_bytes, s->o.user_events, err)) ||
        (rc = sv_scorer_create(&s->scorer, s->o.score_workers, s->o.score_threads, s->info->n_items,
                               err)))
        goto fail;
    sv_scorer_count(s->scorer, &s->met.batches, &s->met.batched_requests, &s->met.rescored);
    if ((rc = sv_online_start(s, err)) || (rc = start_http(s, err)))
        goto fail;
    *out = s;
    return SQ_OK;
fail:
    sq_serve_stop(s);
    return rc;
}

uint16_t sq_serve_port(const sq_server *s) {
    return s->port;
}

void sq_serve_stop(sq_server *s) {
    if (!s)
        return;
    if (s->httpd)
        MHD_stop_daemon(s->httpd); /* waits for in-flight requests */
    sv_online_stop(s);
    sv_scorer_free(s->scorer);
    sq_store_close(s->store);
    sv_cache_free(s->cache);
    for (uint32_t v = 0; v < SQ_SERVE_MAX_VARIANTS; v++) {
        sv_model_release(s->var[v].cur);
        sq_free(s->var[v].path);
        pthread_mutex_destroy(&s->var[v].mu);
    }
    if (s->limiter)
        pthread_mutex_destroy(&((limiter *)s->limiter)->mu);
    sq_free(s->limiter);
    for (uint32_t i = 0; i < s->n_negative_names; i++)
        sq_free(s->negative_names[i]);
    sq_free(s->negative_names);
    sq_free(s->keys);
    sv_content_free(s);
    sv_dash_free(s);
    for (uint32_t i = 0; s->dash_files && i < s->o.n_metrics_logs + s->o.n_eval_jsons; i++)
        sq_free(s->dash_files[i]);
    sq_free(s->dash_files);
    sq_free(s->popular);
    sq_free(s->popular_count);
    sq_free(s->n_popular);
    sq_strmap_free(s->scenes);
    sq_strmap_free(s->forgotten);
    if (s->access_log)
        fclose(s->access_log);
    sq_data_close(s->d);
    for (size_t i = 0; i < sizeof s->owned / sizeof s->owned[0]; i++)
        sq_free(s->owned[i]);
    pthread_mutex_destroy(&s->forgot_mu);
    pthread_mutex_destroy(&s->log_mu);
    sq_free(s);
}
