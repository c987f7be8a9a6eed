/* ingest.c — the ingest builder's lifetime, the reject path every bad row takes, and the
 * names of formats and reject reasons. Readers live in read_*.c, row validation in row.c, the
 * cleaning and writing in write.c. */
#define _POSIX_C_SOURCE 200809L
#include "data/ingest.h"
#include "data/columns.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

static const char *format_names[] = {"auto",  "movielens", "csv",  "tsv",
                                     "jsonl", "recbole",   "plain"};

const char *sq_format_name(sq_format f) {
    return (unsigned)f < sizeof format_names / sizeof *format_names ? format_names[f] : "?";
}

sq_status sq_format_parse(const char *name, sq_format *out) {
    for (size_t i = 0; i < sizeof format_names / sizeof *format_names; i++)
        if (!strcmp(name, format_names[i])) {
            *out = (sq_format)i;
            return SQ_OK;
        }
    if (!strcmp(name, "ml") || !strcmp(name, "dat")) {
        *out = SQ_FMT_MOVIELENS;
        return SQ_OK;
    }
    if (!strcmp(name, "json")) {
        *out = SQ_FMT_JSONL;
        return SQ_OK;
    }
    if (!strcmp(name, "atomic") || !strcmp(name, "inter")) {
        *out = SQ_FMT_RECBOLE;
        return SQ_OK;
    }
    return SQ_ERR_ARG;
}

static const char *reject_names[SQ_REJ_COUNT] = {
    [SQ_REJ_FIELD_COUNT] = "field_count",
    [SQ_REJ_MISSING_USER] = "missing_user",
    [SQ_REJ_MISSING_ITEM] = "missing_item",
    [SQ_REJ_BAD_TIME] = "bad_time",
    [SQ_REJ_TIME_RANGE] = "time_out_of_range",
    [SQ_REJ_BAD_VALUE] = "bad_value",
    [SQ_REJ_UNKNOWN_BEHAVIOUR] = "unknown_behaviour",
    [SQ_REJ_BAD_FIELD] = "bad_field",
    [SQ_REJ_DUPLICATE] = "duplicate",
};

const char *sq_reject_name(sq_reject_reason r) {
    return (unsigned)r < SQ_REJ_COUNT ? reject_names[r] : "?";
}

/* Splits a comma list and interns each name; empty names are an error. */
static sq_status intern_list(sq_strmap *m, const char *list, const char *what, sq_error *err) {
    const char *p = list;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        uint32_t id;
        if (n == 0)
            return sq_errorf(err, SQ_ERR_ARG, "%s: empty name in '%s'", what, list);
        if (sq_strmap_intern(m, p, n, &id, NULL))
            return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        if (!c)
            return SQ_OK;
        p = c + 1;
    }
}

sq_status sq_ingest_create(sq_ingest **out, const sq_ingest_opts *opts, sq_error *err) {
    *out = NULL;
    sq_ingest *g = sq_calloc(1, sizeof *g);
    if (!g)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    sq_status rc = SQ_OK;
    if (opts)
        g->opts = *opts;
    if (g->opts.time_min == 0 && g->opts.time_max == 0) {
        g->opts.time_min = 0;          /* 1970-01-01 */
        g->opts.time_max = 4102444800; /* 2100-01-01 */
    }
    if (g->opts.time_min > g->opts.time_max) {
        rc = sq_errorf(err, SQ_ERR_ARG, "time range: minimum is after maximum");
        goto fail;
    }
    if (g->opts.columns && (rc = columns_check(g->opts.columns, err)))
        goto fail;
    if (g->opts.max_line == 0)
        g->opts.max_line = 1 << 20;
    if (!(g->users = sq_strmap_create(1 << 12)) || !(g->items = sq_strmap_create(1 << 12)) ||
        !(g->behaviours = sq_strmap_create(16)) || !(g->scenes = sq_strmap_create(16)) ||
        !(g->ctx_fields = sq_strmap_create(16)) || !(g->tags = sq_strmap_create(64)) ||
        !(g->item_num_names = sq_strmap_create(8)) ||
        !(g->user_attr_fields = sq_strmap_create(8))) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto fail;
    }
    uint32_t scene0;
    if (sq_strmap_intern(g->scenes, "", 0, &scene0, NULL)) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (g->opts.behaviours) {
        if ((rc = intern_list(g->behaviours, g->opts.behaviours, "--behaviours", err)))
            goto fail;
        if (sq_strmap_count(g->behaviours) > 255) {
            rc = sq_errorf(err, SQ_ERR_ARG, "--behaviours: more than 255 names");
            goto fail;
        }
        g->behaviours_declared = 1;
    }
    if (g->opts.rejects_path) {
        size_t n = strlen(g->opts.rejects_path) + 32;
        if (!(g->rejects_tmp = sq_malloc(n))) {
            rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
            goto fail;
        }
        snprintf(g->rejects_tmp, n, "%s.tmp.%ld", g->opts.rejects_path, (long)getpid());
        if (!(g->rejects = fopen(g->rejects_tmp, "wb"))) {
            rc = sq_errorf(err, SQ_ERR_IO, "%s: %s", g->opts.rejects_path, strerror(errno));
            sq_free(g->rejects_tmp);
            g->rejects_tmp = NULL;
            goto fail;
        }
        fputs("file\tline\treason\tfield\tdetail\trow\n", g->rejects);
    }
    *out = g;
    return SQ_OK;
fail:
    sq_ingest_free(g);
    return rc;
}

void sq_ingest_free(sq_ingest *g) {
    if (!g)
        return;
    if (g->rejects) {
        fclose(g->rejects);
        unlink(g->rejects_tmp); /* never committed: leave nothing behind */
    }
    sq_free(g->rejects_tmp);
    sq_events *e = &g->ev;
    sq_free(e->user);
    sq_free(e->item);
    sq_free(e->ts);
    sq_free(e->beh);
    sq_free(e->scene);
    sq_free(e->value);
    sq_free(e->src);
    sq_free(e->ctx);
    sq_strmap_free(g->users);
    sq_strmap_free(g->items);
    sq_strmap_free(g->behaviours);
    sq_strmap_free(g->scenes);
    sq_strmap_free(g->ctx_fields);
    for (int i = 0; i < SQ_MAX_CTX; i++) {
        sq_strmap_free(g->ctx_values[i]);
        sq_strmap_free(g->user_attr_values[i]);
    }
    sq_strmap_free(g->tags);
    sq_free(g->item_tags.key);
    sq_free(g->item_tags.val);
    sq_free(g->item_tags.field);
    if (g->item_text)
        for (size_t i = 0; i < g->item_text_cap; i++)
            sq_free(g->item_text[i]);
    sq_free(g->item_text);
    sq_strmap_free(g->item_num_names);
    sq_free(g->item_num);
    sq_strmap_free(g->user_attr_fields);
    sq_free(g->user_attrs.key);
    sq_free(g->user_attrs.val);
    sq_free(g->user_attrs.field);
    for (size_t i = 0; i < g->n_inputs; i++)
        sq_free(g->inputs[i]);
    sq_free(g->inputs);
    sq_free(g);
}

const sq_ingest_report *sq_ingest_get_report(const sq_ingest *g) {
    return &g->report;
}

const char *ingest_current_file(const sq_ingest *g) {
    return g->n_inputs ? g->inputs[g->n_inputs - 1] : "<input>";
}

sq_status ingest_begin_file(sq_ingest *g, const char *path, sq_error *err) {
    if (g->n_inputs >= (1u << 24) - 1)
        return sq_errorf(err, SQ_ERR_LIMIT, "%s: too many input files", path);
    char **in = sq_reallocn(g->inputs, g->n_inputs + 1, sizeof *in);
    if (!in)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    g->inputs = in;
    if (!(in[g->n_inputs] = sq_strdup(path)))
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    g->n_inputs++;
    return SQ_OK;
}

/* Writes s with tabs, newlines and backslashes escaped so that one reject is one TSV line. */
static void put_escaped(FILE *f, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\t')
            fputs("\\t", f);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\r')
            fputs("\\r", f);
        else if (c == '\\')
            fputs("\\\\", f);
        else
            fputc(c, f);
    }
}

void ingest_reject_at(sq_ingest *g, uint64_t src, sq_reject_reason why, const char *field,
                      const char *detail, sq_slice raw) {
    g->report.rejected[why]++;
    if (!g->rejects)
        return;
    FILE *f = g->rejects;
    size_t fi = (size_t)(src >> SQ_SRC_LINE_BITS);
    const char *file = fi < g->n_inputs ? g->inputs[fi] : "<input>";
    put_escaped(f, file, strlen(file));
    fprintf(f, "\t%llu\t%s\t%s\t", (unsigned long long)(src & ((1ull << SQ_SRC_LINE_BITS) - 1)),
            sq_reject_name(why), field ? field : "row");
    if (detail)
        put_escaped(f, detail, strlen(detail));
    fputc('\t', f);
    if (raw.p)
        put_escaped(f, raw.p, raw.n);
    fputc('\n', f);
}

sq_status ingest_reject(sq_ingest *g, const sq_row *r, sq_reject_reason why, const char *field,
                        const char *detail, sq_error *err) {
    if (g->opts.strict)
        return sq_errorf(err, SQ_ERR_PARSE, "%s:%llu: %s: %s%s%s", ingest_current_file(g),
                         (unsigned long long)r->line, field ? field : "row", sq_reject_name(why),
                         detail ? ": " : "", detail ? detail : "");
    uint64_t src = ((uint64_t)(g->n_inputs ? g->n_inputs - 1 : 0) << SQ_SRC_LINE_BITS) | r->line;
    ingest_reject_at(g, src, why, field, detail, r->raw);
    return SQ_OK;
}

sq_status ingest_rejects_commit(sq_ingest *g, sq_error *err) {
    if (!g->rejects)
        return SQ_OK;
    FILE *f = g->rejects;
    g->rejects = NULL;
    int e = 0;
    if (fflush(f) != 0 || ferror(f))
        e = errno ? errno : EIO;
    if (!e && fsync(fileno(f)) != 0)
        e = errno;
    if (fclose(f) != 0 && !e)
        e = errno;
    if (!e && rename(g->rejects_tmp, g->opts.rejects_path) != 0)
        e = errno;
    if (e) {
        unlink(g->rejects_tmp);
        return sq_errorf(err, SQ_ERR_IO, "%s: %s", g->opts.rejects_path, strerror(e));
    }
    return SQ_OK;
}
