/* config.c — a flat ordered key → value map with file/JSON/--set input and typed getters.
 * Small (tens of keys): linear search is the right data structure. */
#include "seqrec/core.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sq_config {
    char **key; /* owned */
    char **val; /* owned */
    size_t n, cap;
};

sq_config *sq_config_create(void) {
    return sq_calloc(1, sizeof(sq_config));
}

void sq_config_free(sq_config *c) {
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        sq_free(c->key[i]);
        sq_free(c->val[i]);
    }
    sq_free(c->key);
    sq_free(c->val);
    sq_free(c);
}

static int find(const sq_config *c, const char *key) {
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->key[i], key))
            return (int)i;
    return -1;
}

static int valid_key(const char *k) {
    if (!*k)
        return 0;
    for (; *k; k++)
        if (!isalnum((unsigned char)*k) && *k != '_' && *k != '.' && *k != '-')
            return 0;
    return 1;
}

sq_status sq_config_set(sq_config *c, const char *key, const char *value, sq_error *err) {
    if (!valid_key(key))
        return sq_errorf(err, SQ_ERR_ARG, "config key '%s': use letters, digits, _ . -", key);
    char *v = sq_strdup(value);
    if (!v)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    int i = find(c, key);
    if (i >= 0) {
        sq_free(c->val[i]);
        c->val[i] = v;
        return SQ_OK;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        char **k2 = sq_reallocn(c->key, cap, sizeof *k2);
        if (k2)
            c->key = k2;
        char **v2 = k2 ? sq_reallocn(c->val, cap, sizeof *v2) : NULL;
        if (v2)
            c->val = v2;
        if (!k2 || !v2) {
            sq_free(v);
            return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        }
        c->cap = cap;
    }
    char *k = sq_strdup(key);
    if (!k) {
        sq_free(v);
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    }
    c->key[c->n] = k;
    c->val[c->n] = v;
    c->n++;
    return SQ_OK;
}

sq_status sq_config_set_num(sq_config *c, const char *key, double v, int is_int, sq_error *err) {
    char buf[32];
    if (is_int)
        snprintf(buf, sizeof buf, "%ld", (long)v);
    else
        snprintf(buf, sizeof buf, "%g", v);
    return sq_config_set(c, key, buf, err);
}

sq_status sq_config_default(sq_config *c, const char *key, const char *value, sq_error *err) {
    return find(c, key) >= 0 ? SQ_OK : sq_config_set(c, key, value, err);
}

sq_config *sq_config_clone(const sq_config *c) {
    sq_config *d = sq_config_create();
    for (size_t i = 0; d && i < c->n; i++)
        if (sq_config_set(d, c->key[i], c->val[i], NULL)) {
            sq_config_free(d);
            return NULL;
        }
    return d;
}

sq_status sq_config_set_arg(sq_config *c, const char *arg, sq_error *err) {
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return sq_errorf(err, SQ_ERR_ARG, "--set '%s': expected key=value", arg);
    char key[128];
    size_t n = (size_t)(eq - arg);
    if (n >= sizeof key)
        return sq_errorf(err, SQ_ERR_ARG, "--set '%s': key too long", arg);
    memcpy(key, arg, n);
    key[n] = 0;
    return sq_config_set(c, key, eq + 1, err);
}

/* Converts one JSON value to the text form stored in the map. */
static sq_status json_value_text(const cJSON *it, char *buf, size_t cap) {
    if (cJSON_IsString(it))
        snprintf(buf, cap, "%s", it->valuestring);
    else if (cJSON_IsBool(it))
        snprintf(buf, cap, "%s", cJSON_IsTrue(it) ? "true" : "false");
    else if (cJSON_IsNumber(it)) {
        double v = it->valuedouble;
        if (v == floor(v) && fabs(v) < 1e15)
            snprintf(buf, cap, "%.0f", v);
        else
            snprintf(buf, cap, "%.17g", v);
    } else
        return SQ_ERR_ARG;
    return SQ_OK;
}

sq_status sq_config_from_json(sq_config *c, const char *json, const char *what, sq_error *err) {
    cJSON *o = cJSON_Parse(json);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return sq_errorf(err, SQ_ERR_PARSE, "%s: not a JSON object", what);
    }
    sq_status rc = SQ_OK;
    char buf[1024];
    for (cJSON *it = o->child; it && !rc; it = it->next) {
        if (json_value_text(it, buf, sizeof buf))
            rc = sq_errorf(err, SQ_ERR_PARSE, "%s: key '%s': expected a number, string or boolean",
                           what, it->string);
        else
            rc = sq_config_set(c, it->string, buf, err);
    }
    cJSON_Delete(o);
    return rc;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

sq_status sq_config_load(sq_config *c, const char *path, sq_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return sq_errorf(err, SQ_ERR_IO, "%s: %s", path, strerror(errno));
    char *text = NULL;
    size_t n = 0, cap = 0;
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (n + got > (1u << 20)) {
            fclose(f);
            sq_free(text);
            return sq_errorf(err, SQ_ERR_LIMIT, "%s: config file over 1 MiB", path);
        }
        if (sq_grow((void **)&text, &cap, n + got + 1, 1)) {
            fclose(f);
            sq_free(text);
            return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        }
        memcpy(text + n, chunk, got);
        n += got;
    }
    fclose(f);
    if (!text)
        return SQ_OK; /* empty file: nothing to set */
    text[n] = 0;
    sq_status rc = SQ_OK;
    char *p = trim(text);
    if (*p == '{') {
        rc = sq_config_from_json(c, p, path, err);
    } else {
        int line = 0;
        for (char *s = text; s && !rc;) {
            char *nl = strchr(s, '\n');
            if (nl)
                *nl = 0;
            line++;
            char *hash = strchr(s, '#');
            if (hash)
                *hash = 0;
            char *l = trim(s);
            if (*l) {
                char *eq = strchr(l, '=');
                if (!eq) {
                    rc = sq_errorf(err, SQ_ERR_PARSE, "%s:%d: expected key = value", path, line);
                } else {
                    *eq = 0;
                    sq_error e2 = {0};
                    if (sq_config_set(c, trim(l), trim(eq + 1), &e2))
                        rc = sq_errorf(err, e2.code, "%s:%d: %s", path, line, e2.msg);
                }
            }
            s = nl ? nl + 1 : NULL;
        }
    }
    sq_free(text);
    return rc;
}

char *sq_config_to_json(const sq_config *c) {
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    for (size_t i = 0; i < c->n; i++) {
        char *end;
        const char *v = c->val[i];
        errno = 0;
        double d = strtod(v, &end);
        if (*v && !*end && !errno && isfinite(d) && !isspace((unsigned char)*v))
            cJSON_AddNumberToObject(o, c->key[i], d);
        else
            cJSON_AddStringToObject(o, c->key[i], v);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s)
        return NULL;
    char *r = sq_strdup(s);
    cJSON_free(s);
    return r;
}

const char *sq_config_get(const sq_config *c, const char *key) {
    int i = find(c, key);
    return i >= 0 ? c->val[i] : NULL;
}

size_t sq_config_count(const sq_config *c) {
    return c->n;
}

const char *sq_config_key_at(const sq_config *c, size_t i) {
    return i < c->n ? c->key[i] : NULL;
}

sq_status sq_config_int(const sq_config *c, const char *key, long def, long lo, long hi, long *out,
                        sq_error *err) {
    const char *v = sq_config_get(c, key);
    if (!v) {
        *out = def;
        return SQ_OK;
    }
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno)
        return sq_errorf(err, SQ_ERR_ARG, "config key '%s': '%s' is not an integer", key, v);
    if (x < lo || x > hi)
        return sq_errorf(err, SQ_ERR_ARG, "config key '%s': %ld is outside [%ld, %ld]", key, x, lo,
                         hi);
    *out = x;
    return SQ_OK;
}

sq_status sq_config_double(const sq_config *c, const char *key, double def, double lo, double hi,
                           double *out, sq_error *err) {
    const char *v = sq_config_get(c, key);
    if (!v) {
        *out = def;
        return SQ_OK;
    }
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (!*v || *end || errno || !isfinite(x))
        return sq_errorf(err, SQ_ERR_ARG, "config key '%s': '%s' is not a number", key, v);
    if (x < lo || x > hi)
        return sq_errorf(err, SQ_ERR_ARG, "config key '%s': %g is outside [%g, %g]", key, x, lo,
                         hi);
    *out = x;
    return SQ_OK;
}

sq_status sq_config_choice(const sq_config *c, const char *key, const char *choices, int def,
                           int *out, sq_error *err) {
    const char *v = sq_config_get(c, key);
    if (!v) {
        *out = def;
        return SQ_OK;
    }
    int idx = 0;
    size_t vl = strlen(v);
    for (const char *p = choices;; idx++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == vl && !strncmp(p, v, n)) {
            *out = idx;
            return SQ_OK;
        }
        if (!bar)
            break;
        p = bar + 1;
    }
    return sq_errorf(err, SQ_ERR_ARG, "config key '%s': '%s' is not one of %s", key, v, choices);
}
