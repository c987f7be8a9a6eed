/* read_delim.c — delimited text with a header: CSV (',' ';' '|', RFC 4180 quoting), TSV and
 * RecBole atomic files (.inter events with a typed header "user_id:token\titem_id:token…";
 * .item and .user side files).
 *
 * CSV quoting: a field that starts with '"' runs to the matching '"', with "" standing for one
 * quote; it may hold delimiters and newlines (the record then continues on the next lines,
 * joined in a buffer bounded by max_line, and keeps the number of its first line). After the
 * closing quote only the delimiter or the end may follow (else bad_field). A quote inside an
 * unquoted field is an ordinary character. Unquoted lines — nearly all — are cut with memchr;
 * quoted fields are unescaped into one scratch buffer per file, never allocated per field.
 * TSV and RecBole files have no quoting: fields are what lies between tabs.
 *
 * The first non-blank line is the header when one of its names is recognised (columns.c), for
 * RecBole always, and with a --columns spec by name. A first line of numbers only is data, its
 * columns guessed (user,item[,value|ts][,ts]). With a positional --columns, the first line is a
 * header when it has a recognised name or when its mapped ts/date/value fields do not parse. */
#include "data/columns.h"
#include "data/read.h"

#include <string.h>

/* Per-file reading state. */
typedef struct {
    read_src *s;        /* the input */
    col_plan *pl;       /* column roles */
    sq_slice *f;        /* fields of the current record (COLS_MAX + 1) */
    char *scratch;      /* unquoted field bytes (grown to the longest quoted record) */
    size_t scratch_cap; /* its size */
    char *join;         /* a multi-line record being assembled (at most max_line bytes) */
    size_t join_cap;    /* its size */
    char delim;         /* field separator */
    int quotes;         /* CSV quoting applies */
} delim_state;

/* ======================================= Splitting =========================================== */

/* Cuts an unquoted record at every delimiter; stores at most cap fields, returns the count. */
static size_t split_plain(const char *p, size_t n, char d, sq_slice *f, size_t cap) {
    const char *end = p + n, *s = p;
    size_t nf = 0;
    for (;;) {
        const char *q = memchr(s, d, (size_t)(end - s));
        const char *e = q ? q : end;
        if (nf < cap) {
            f[nf].p = s;
            f[nf].n = (size_t)(e - s);
        }
        nf++;
        if (!q)
            return nf;
        s = q + 1;
    }
}

enum {
    SPLIT_BAD_QUOTE = -1,
    SPLIT_OPEN_QUOTE = -2,
    SPLIT_TOO_LONG = -3,
    SPLIT_IO = -4,
    SPLIT_NOMEM = -5
};

/* Makes *buf hold at least need bytes. */
static int reserve(char **buf, size_t *cap, size_t need) {
    return sq_grow((void **)buf, cap, need, 1) == SQ_OK ? 0 : -1;
}

/* Splits one CSV record with quoting; unquoted bytes go to scratch (≥ n bytes). Returns the
 * field count, SPLIT_BAD_QUOTE or SPLIT_OPEN_QUOTE (a quoted field runs past the end). */
static long split_csv(const char *p, size_t n, char d, sq_slice *f, size_t cap, char *scratch) {
    if (!memchr(p, '"', n))
        return (long)split_plain(p, n, d, f, cap);
    size_t i = 0, nf = 0;
    char *o = scratch;
    for (;;) {
        sq_slice fld;
        if (i < n && p[i] == '"') {
            i++;
            char *start = o;
            for (;;) {
                if (i >= n)
                    return SPLIT_OPEN_QUOTE;
                char c = p[i++];
                if (c == '"') {
                    if (i < n && p[i] == '"') {
                        *o++ = '"';
                        i++;
                    } else {
                        break;
                    }
                } else {
                    *o++ = c;
                }
            }
            fld.p = start;
            fld.n = (size_t)(o - start);
            if (i < n && p[i] != d)
                return SPLIT_BAD_QUOTE;
        } else {
            const char *q = memchr(p + i, d, n - i);
            size_t e = q ? (size_t)(q - p) : n;
            fld.p = p + i;
            fld.n = e - i;
            i = e;
        }
        if (nf < cap)
            f[nf] = fld;
        nf++;
        if (i >= n)
            return (long)nf;
        i++; /* the delimiter */
    }
}

static long split_record(delim_state *st, const char *p, size_t n) {
    if (st->quotes) {
        if (memchr(p, '"', n) && reserve(&st->scratch, &st->scratch_cap, n + 1))
            return SPLIT_NOMEM;
        return split_csv(p, n, st->delim, st->f, COLS_MAX + 1, st->scratch);
    }
    return (long)split_plain(p, n, st->delim, st->f, COLS_MAX + 1);
}

/* Splits the record starting at line *ln, joining following lines while a quoted field is
 * open. On return *rp and *rn hold the whole record (for the rejects file). Returns the field
 * count or a negative code: SPLIT_BAD_QUOTE, SPLIT_OPEN_QUOTE (end of input inside a quote),
 * SPLIT_TOO_LONG (record over max_line), SPLIT_IO (read error, err filled), SPLIT_NOMEM. */
static long split_joined(delim_state *st, const sq_line *ln, const char **rp, size_t *rn,
                         sq_error *err) {
    *rp = ln->p;
    *rn = ln->n;
    long nf = split_record(st, ln->p, ln->n);
    if (nf != SPLIT_OPEN_QUOTE)
        return nf;
    size_t max = st->s->g->opts.max_line, len = ln->n;
    if (reserve(&st->join, &st->join_cap, len + 1))
        return SPLIT_NOMEM;
    memcpy(st->join, ln->p, len);
    for (;;) {
        sq_line nx;
        int k = sq_lineio_next(st->s->in, &nx, err);
        if (k < 0)
            return SPLIT_IO;
        if (k == 0) {
            *rp = st->join;
            *rn = len;
            return SPLIT_OPEN_QUOTE;
        }
        st->s->last_line = nx.no;
        if (nx.too_long || len + 1 + nx.n > max) {
            *rp = st->join;
            *rn = len;
            return SPLIT_TOO_LONG;
        }
        if (reserve(&st->join, &st->join_cap, len + 1 + nx.n + 1))
            return SPLIT_NOMEM;
        st->join[len++] = '\n';
        memcpy(st->join + len, nx.p, nx.n);
        len += nx.n;
        *rp = st->join;
        *rn = len;
        nf = split_record(st, st->join, len);
        if (nf != SPLIT_OPEN_QUOTE)
            return nf;
    }
}

/* ====================================== Event files ========================================== */

/* Positional --columns: is the first line a header? Yes when its mapped time/value fields are
 * all non-empty and none parses. */
static int positional_header(const col_plan *probe, const sq_slice *f, size_t nf) {
    int checked = 0;
    for (size_t j = 0; j < probe->nmapped && j < nf; j++) {
        col_role r = probe->col[j].role;
        if (r != COL_TS && r != COL_DATE && r != COL_VALUE)
            continue;
        int64_t t;
        double v;
        if (!f[j].n)
            return 0;
        if (r == COL_VALUE ? !sq_parse_double(f[j].p, f[j].n, &v)
                           : !sq_parse_time(f[j].p, f[j].n, &t))
            return 0;
        checked = 1;
    }
    return checked;
}

static int all_numeric(const sq_slice *f, size_t nf) {
    for (size_t j = 0; j < nf; j++) {
        double v;
        if (sq_parse_double(f[j].p, f[j].n, &v))
            return 0;
    }
    return nf > 0;
}

/* Is the spec in opts.columns by name (has '=')? */
static int spec_by_name(const sq_ingest *g) {
    return g->opts.columns && strchr(g->opts.columns, '=');
}

sq_status read_delim(read_src *s, sq_error *err) {
    sq_ingest *g = s->g;
    delim_state st = {.s = s, .delim = s->det.delim, .quotes = s->det.format == SQ_FMT_CSV};
    if (s->det.format != SQ_FMT_CSV)
        st.delim = '\t';
    sq_status rc = SQ_OK;
    st.pl = sq_calloc(1, sizeof *st.pl);
    st.f = sq_mallocn(COLS_MAX + 1, sizeof *st.f);
    if (!st.pl || !st.f) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    sq_row r;
    memset(&r, 0, sizeof r);
    int planned = 0;
    sq_line ln;
    int k;
    while ((k = read_next_line(s, &ln, 0, err)) == 1) {
        uint64_t line = ln.no;
        if (!planned && (ln.too_long || ln.has_nul)) {
            rc = sq_errorf(err, SQ_ERR_PARSE, "%s:%llu: first line %s", s->name,
                           (unsigned long long)line,
                           ln.too_long ? "is longer than the line limit" : "holds a NUL byte");
            goto done;
        }
        if (planned) {
            g->report.rows_read++;
            if (read_check_line(s, &ln, 0, &rc, err)) {
                if (rc)
                    goto done;
                continue;
            }
        }
        const char *raw;
        size_t rawn;
        long nf = split_joined(&st, &ln, &raw, &rawn, err);
        if (nf == SPLIT_IO) {
            rc = read_io_error(err);
            goto done;
        }
        if (nf == SPLIT_NOMEM) {
            rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
            goto done;
        }
        if (!planned) {
            if (nf < 0) {
                rc = sq_errorf(err, SQ_ERR_PARSE, "%s:%llu: header: %s", s->name,
                               (unsigned long long)line,
                               nf == SPLIT_BAD_QUOTE  ? "text after a closing quote"
                               : nf == SPLIT_TOO_LONG ? "longer than the line limit"
                                                      : "unterminated quoted field");
                goto done;
            }
            size_t nh = (size_t)nf;
            int header;
            if (s->det.format == SQ_FMT_RECBOLE || spec_by_name(g) ||
                columns_any_known(st.f, nh > COLS_MAX ? COLS_MAX : nh))
                header = 1;
            else if (g->opts.columns) {
                /* probe the positional spec on this line without a header */
                if ((rc = columns_plan(g, st.pl, s->name, st.f, nh > COLS_MAX ? 0 : nh, 0, err)))
                    goto done;
                header = positional_header(st.pl, st.f, nh);
            } else
                header = !all_numeric(st.f, nh);
            if ((rc = columns_plan(g, st.pl, s->name, st.f, nh, header, err)))
                goto done;
            planned = 1;
            columns_row_template(st.pl, &r);
            g->file_has_value = st.pl->has_value;
            if (st.pl->has_session)
                g->have_sessions = 1;
            if (header) {
                g->report.header_lines++;
                continue;
            }
            g->report.rows_read++;
        }
        r.line = line;
        r.raw.p = raw;
        r.raw.n = rawn;
        if (nf < 0) {
            rc = ingest_reject(g, &r, SQ_REJ_BAD_FIELD, "row",
                               nf == SPLIT_BAD_QUOTE  ? "text after a closing quote"
                               : nf == SPLIT_TOO_LONG ? "line too long"
                                                      : "unterminated quoted field",
                               err);
            if (rc)
                goto done;
            continue;
        }
        if ((size_t)nf != st.pl->ncols) {
            char d[64];
            snprintf(d, sizeof d, "expected %zu fields, found %ld", st.pl->ncols, nf);
            if ((rc = ingest_reject(g, &r, SQ_REJ_FIELD_COUNT, "row", d, err)))
                goto done;
            continue;
        }
        columns_fill_row(st.pl, st.f, (size_t)nf, &r);
        if ((rc = ingest_add_row(g, &r, err)))
            goto done;
        if (st.pl->n_attrs && g->last_new_user &&
            (rc = columns_user_attrs(g, st.pl, st.f, (size_t)nf,
                                     r.session.p ? r.session : r.user))) {
            rc = sq_errorf(err, rc, "out of memory");
            goto done;
        }
    }
    if (k < 0)
        rc = read_io_error(err);
done:
    sq_free(st.pl);
    sq_free(st.f);
    sq_free(st.scratch);
    sq_free(st.join);
    return rc;
}

/* ================================= RecBole .item / .user ===================================== */

/* A typed header field. */
typedef enum { RB_TOKEN, RB_TOKEN_SEQ, RB_FLOAT, RB_FLOAT_SEQ } rb_type;

/* Splits "name:type" into a lower-cased name (cap bytes) and its type (token by default). */
static rb_type rb_field(sq_slice h, char *name, size_t cap) {
    rb_type t = RB_TOKEN;
    const char *colon = NULL;
    for (size_t i = h.n; i-- > 0;)
        if (h.p[i] == ':') {
            colon = h.p + i;
            break;
        }
    size_t n = h.n;
    if (colon) {
        const char *ty = colon + 1;
        size_t tn = (size_t)(h.p + h.n - ty);
        if (tn == 9 && !memcmp(ty, "token_seq", 9))
            t = RB_TOKEN_SEQ, n = (size_t)(colon - h.p);
        else if (tn == 9 && !memcmp(ty, "float_seq", 9))
            t = RB_FLOAT_SEQ, n = (size_t)(colon - h.p);
        else if (tn == 5 && !memcmp(ty, "token", 5))
            t = RB_TOKEN, n = (size_t)(colon - h.p);
        else if (tn == 5 && !memcmp(ty, "float", 5))
            t = RB_FLOAT, n = (size_t)(colon - h.p);
    }
    const char *p = h.p;
    if (n >= 3 && (unsigned char)p[0] == 0xef && (unsigned char)p[1] == 0xbb &&
        (unsigned char)p[2] == 0xbf)
        p += 3, n -= 3;
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        name[i] = p[i] >= 'A' && p[i] <= 'Z' ? (char)(p[i] - 'A' + 'a') : p[i];
    name[n] = 0;
    return t;
}

/* What a side column becomes. */
typedef enum {
    SIDE_SKIP,
    SIDE_ID,
    SIDE_TEXT,
    SIDE_TAGS,
    SIDE_TAG_FIELD,
    SIDE_NUM,
    SIDE_ATTR
} side_use;

sq_status read_recbole_side(read_src *s, sq_error *err) {
    sq_ingest *g = s->g;
    int items = s->det.kind == KIND_ITEMS;
    sq_status rc = SQ_OK;
    sq_slice *f = sq_mallocn(COLS_MAX + 1, sizeof *f);
    char(*names)[COLS_NAME] = sq_mallocn(COLS_MAX, sizeof *names);
    side_use *use = sq_mallocn(COLS_MAX, sizeof *use);
    if (!f || !names || !use) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    size_t ncols = 0, idcol = 0;
    int planned = 0;
    sq_line ln;
    int k;
    while ((k = read_next_line(s, &ln, 1, err)) == 1) {
        if (!planned) {
            if (ln.too_long || ln.has_nul) {
                rc = sq_errorf(err, SQ_ERR_PARSE, "%s:%llu: bad header line", s->name,
                               (unsigned long long)ln.no);
                goto done;
            }
            ncols = split_plain(ln.p, ln.n, '\t', f, COLS_MAX + 1);
            if (ncols > COLS_MAX) {
                rc = sq_errorf(err, SQ_ERR_LIMIT, "%s: more than %d columns", s->name, COLS_MAX);
                goto done;
            }
            const char *idname = items ? "item_id" : "user_id";
            long id = -1;
            int have_text = 0;
            for (size_t j = 0; j < ncols; j++) {
                rb_type t = rb_field(f[j], names[j], COLS_NAME);
                if (id < 0 && !strcmp(names[j], idname)) {
                    id = (long)j;
                    use[j] = SIDE_ID;
                    continue;
                }
                if (!items)
                    use[j] = t == RB_FLOAT_SEQ ? SIDE_SKIP : SIDE_ATTR;
                else if (t == RB_TOKEN_SEQ && !have_text &&
                         (strstr(names[j], "title") || strstr(names[j], "name")))
                    use[j] = SIDE_TEXT, have_text = 1;
                else if (t == RB_TOKEN_SEQ)
                    use[j] = SIDE_TAGS;
                else if (t == RB_TOKEN)
                    use[j] = SIDE_TAG_FIELD;
                else if (t == RB_FLOAT)
                    use[j] = SIDE_NUM;
                else
                    use[j] = SIDE_SKIP;
            }
            if (id < 0) {
                id = 0; /* RecBole's own default: the first column is the id */
                use[0] = SIDE_ID;
                sq_report_log(&g->opts.reporter, SQ_LOG_WARN, "ingest",
                              "%s: no %s column; the first column is taken as the id", s->name,
                              idname);
            }
            idcol = (size_t)id;
            planned = 1;
            /* report.header_lines counts event files only */
            continue;
        }
        g->report.side_rows++;
        sq_status lrc;
        if (read_check_line(s, &ln, 1, &lrc, err))
            continue;
        size_t nf = split_plain(ln.p, ln.n, '\t', f, COLS_MAX + 1);
        if (nf != ncols) {
            g->report.side_rejected++;
            continue;
        }
        sq_slice id = f[idcol];
        while (id.n && (id.p[0] == ' ' || id.p[id.n - 1] == ' ')) {
            if (id.p[0] == ' ')
                id.p++;
            id.n--;
        }
        if (id.n == 0) {
            g->report.side_rejected++;
            continue;
        }
        for (size_t j = 0; j < ncols && !rc; j++) {
            switch (use[j]) {
            case SIDE_TEXT:
                rc = ingest_add_item_text(g, id, f[j]);
                break;
            case SIDE_TAGS: {
                const char *p = f[j].p, *end = f[j].p + f[j].n;
                while (!rc && p < end) {
                    const char *sp = memchr(p, ' ', (size_t)(end - p));
                    sq_slice tag = {p, (size_t)((sp ? sp : end) - p)};
                    rc = ingest_add_item_tag(g, id, NULL, tag);
                    p = sp ? sp + 1 : end;
                }
                break;
            }
            case SIDE_TAG_FIELD:
                rc = ingest_add_item_tag(g, id, names[j], f[j]);
                break;
            case SIDE_NUM: {
                double v;
                if (f[j].n && !sq_parse_double(f[j].p, f[j].n, &v))
                    rc = ingest_add_item_num(g, id, names[j], v);
                if (rc == SQ_ERR_LIMIT) {
                    use[j] = SIDE_SKIP; /* over SQ_MAX_ITEM_NUM attributes */
                    rc = SQ_OK;
                }
                break;
            }
            case SIDE_ATTR:
                rc = ingest_add_user_attr(g, id, names[j], f[j]);
                if (rc == SQ_ERR_LIMIT) {
                    use[j] = SIDE_SKIP; /* over SQ_MAX_CTX fields */
                    rc = SQ_OK;
                }
                break;
            default:
                break;
            }
        }
        if (rc) {
            rc = sq_errorf(err, rc, "%s:%llu: %s", s->name, (unsigned long long)ln.no,
                           sq_strerror(rc));
            goto done;
        }
    }
    if (k < 0)
        rc = read_io_error(err);
done:
    sq_free(f);
    sq_free(names);
    sq_free(use);
    return rc;
}
