/* read_jsonl.c — one JSON object per line, through cJSON:
 *   {"user":"u1","item":"i9","ts":"2024-01-02T10:00:00Z","behaviour":"cart","scene":"home",
 *    "value":1.0,"context":{"device":"ios","hour":"10"}}
 * Keys (case-insensitive): user / user_id, session / session_id, item / item_id, ts /
 * timestamp / time, behaviour / behavior / event, scene, value / rating, context (an object
 * whose members become context fields, at most SQ_MAX_CTX of them). Values may be strings,
 * numbers or booleans; null means absent. Other keys are ignored (logged once per file).
 *
 * Whether the file has times (else file order) and values (default behaviour "rate") is
 * decided by its first data row, as a header would. Hostile input stays bounded: a line is at
 * most max_line bytes, and nesting deeper than 16 is rejected before cJSON sees it. Numbers
 * are re-printed exactly when integral (up to 2^53); larger numeric ids should be strings. */
#include "data/read.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>
#include <strings.h>

enum { JSON_MAX_DEPTH = 16, NUM_SLOTS = 8 + SQ_MAX_CTX, UNKNOWN_KEYS = 16 };

/* 1 when the JSON text nests objects/arrays deeper than JSON_MAX_DEPTH. */
static int too_deep(const char *p, size_t n) {
    int depth = 0, str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                str = 0;
        } else if (c == '"') {
            str = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > JSON_MAX_DEPTH)
                return 1;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 0;
}

/* Per-row scratch for numbers printed back to text. */
typedef struct {
    char buf[NUM_SLOTS][40]; /* one per numeric value used in the row */
    int used;                /* slots taken */
} num_text;

/* A scalar JSON value as a slice; returns 0, 1 for null (absent), -1 for an object/array. */
static int scalar(const cJSON *v, num_text *nt, sq_slice *out) {
    if (cJSON_IsNull(v))
        return 1;
    if (cJSON_IsString(v)) {
        out->p = v->valuestring;
        out->n = strlen(v->valuestring);
        return 0;
    }
    if (cJSON_IsBool(v)) {
        out->p = cJSON_IsTrue(v) ? "true" : "false";
        out->n = strlen(out->p);
        return 0;
    }
    if (cJSON_IsNumber(v)) {
        if (nt->used >= NUM_SLOTS)
            return 1;
        char *b = nt->buf[nt->used++];
        double d = v->valuedouble;
        int k;
        if (isfinite(d) && d == floor(d) && fabs(d) < 9007199254740992.0)
            k = snprintf(b, 40, "%.0f", d);
        else
            k = snprintf(b, 40, "%.17g", d);
        out->p = b;
        out->n = k > 0 ? (size_t)k : 0;
        return 0;
    }
    return -1;
}

/* Row roles by key. */
typedef enum { K_NONE, K_USER, K_SESSION, K_ITEM, K_TS, K_BEH, K_SCENE, K_VALUE, K_CTX } key_role;

static key_role key_of(const char *k) {
    static const struct {
        const char *name;
        key_role role;
    } keys[] = {
        {"user", K_USER},   {"user_id", K_USER},  {"session", K_SESSION}, {"session_id", K_SESSION},
        {"item", K_ITEM},   {"item_id", K_ITEM},  {"ts", K_TS},           {"timestamp", K_TS},
        {"time", K_TS},     {"behaviour", K_BEH}, {"behavior", K_BEH},    {"event", K_BEH},
        {"scene", K_SCENE}, {"value", K_VALUE},   {"rating", K_VALUE},    {"context", K_CTX}};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (!strcasecmp(k, keys[i].name))
            return keys[i].role;
    return K_NONE;
}

/* Per-file state. */
typedef struct {
    int planned;                    /* the first data row was seen */
    int has_time;                   /* rows carry "ts" (decided on the first row) */
    char unknown[UNKNOWN_KEYS][32]; /* keys already reported as ignored */
    int n_unknown;                  /* how many */
    int ctx_full_logged;            /* the ctx limit was reported */
} jsonl_state;

static void note_unknown(read_src *s, jsonl_state *js, const char *key) {
    for (int i = 0; i < js->n_unknown; i++)
        if (!strncmp(js->unknown[i], key, sizeof js->unknown[i] - 1))
            return;
    if (js->n_unknown < UNKNOWN_KEYS) {
        snprintf(js->unknown[js->n_unknown++], sizeof js->unknown[0], "%s", key);
        sq_report_log(&s->g->opts.reporter, SQ_LOG_WARN, "ingest", "%s: key '%.40s' ignored",
                      s->name, key);
    }
}

/* Turns one parsed object into a row and adds it. */
static sq_status json_row(read_src *s, jsonl_state *js, const cJSON *o, sq_row *r, sq_error *err) {
    sq_ingest *g = s->g;
    num_text nt;
    nt.used = 0;
    sq_slice *slot[K_CTX] = {NULL,   &r->user,      &r->session, &r->item,
                             &r->ts, &r->behaviour, &r->scene,   &r->value};
    for (const cJSON *c = o->child; c; c = c->next) {
        if (!c->string)
            continue;
        key_role kr = key_of(c->string);
        if (kr == K_NONE) {
            note_unknown(s, js, c->string);
            continue;
        }
        if (kr == K_CTX) {
            if (!cJSON_IsObject(c)) {
                if (cJSON_IsNull(c))
                    continue;
                return ingest_reject(g, r, SQ_REJ_BAD_FIELD, "context", "not an object", err);
            }
            for (const cJSON *m = c->child; m; m = m->next) {
                uint32_t f;
                sq_slice v;
                int sv = scalar(m, &nt, &v);
                if (sv < 0)
                    return ingest_reject(g, r, SQ_REJ_BAD_FIELD, "context",
                                         "a context value is not a scalar", err);
                if (sv > 0 || !m->string)
                    continue;
                sq_status rc = ingest_ctx_field(g, m->string, strlen(m->string), &f);
                if (rc == SQ_ERR_LIMIT) {
                    if (!js->ctx_full_logged++)
                        sq_report_log(&g->opts.reporter, SQ_LOG_WARN, "ingest",
                                      "%s: context field '%.40s' ignored: at most %d fields",
                                      s->name, m->string, SQ_MAX_CTX);
                    continue;
                }
                if (rc)
                    return sq_errorf(err, rc, "out of memory");
                r->ctx[f] = v;
                if (f + 1 > r->n_ctx)
                    r->n_ctx = f + 1;
            }
            continue;
        }
        sq_slice v;
        int sv = scalar(c, &nt, &v);
        if (sv < 0) {
            char d[64];
            snprintf(d, sizeof d, "'%.30s' is not a scalar", c->string);
            return ingest_reject(g, r, SQ_REJ_BAD_FIELD, c->string, d, err);
        }
        if (sv == 0)
            *slot[kr] = v;
    }
    if (!js->planned) {
        js->planned = 1;
        js->has_time = r->ts.p != NULL;
        g->file_has_value = r->value.p != NULL;
    }
    if (r->session.p)
        g->have_sessions = 1;
    r->tkind = js->has_time ? TIME_TEXT : TIME_ORDER;
    return ingest_add_row(g, r, err);
}

sq_status read_jsonl(read_src *s, sq_error *err) {
    sq_ingest *g = s->g;
    jsonl_state js;
    memset(&js, 0, sizeof js);
    sq_row r;
    sq_line ln;
    int k;
    sq_status rc = SQ_OK;
    while ((k = read_next_line(s, &ln, 0, err)) == 1) {
        g->report.rows_read++;
        if (read_check_line(s, &ln, 0, &rc, err)) {
            if (rc)
                return rc;
            continue;
        }
        memset(&r, 0, sizeof r);
        r.line = ln.no;
        r.raw.p = ln.p;
        r.raw.n = ln.n;
        if (too_deep(ln.p, ln.n)) {
            if ((rc = ingest_reject(g, &r, SQ_REJ_BAD_FIELD, "row", "JSON nested deeper than 16",
                                    err)))
                return rc;
            continue;
        }
        const char *end = NULL;
        cJSON *o = cJSON_ParseWithLengthOpts(ln.p, ln.n, &end, 0);
        const char *bad = !o ? "invalid JSON" : !cJSON_IsObject(o) ? "not a JSON object" : NULL;
        if (!bad && end && !read_is_blank(end, (size_t)(ln.p + ln.n - end)))
            bad = "text after the JSON object";
        if (bad) {
            cJSON_Delete(o);
            if ((rc = ingest_reject(g, &r, SQ_REJ_BAD_FIELD, "row", bad, err)))
                return rc;
            continue;
        }
        rc = json_row(s, &js, o, &r, err);
        cJSON_Delete(o);
        if (rc)
            return rc;
    }
    return k < 0 ? read_io_error(err) : SQ_OK;
}
