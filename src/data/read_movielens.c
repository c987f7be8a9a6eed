/* read_movielens.c — the "::"-separated MovieLens files (ml-1m, ml-10m):
 *   ratings.dat  user::item::rating::timestamp      → events (behaviour "rate", value rating)
 *   movies.dat   item::title::Genre1|Genre2|…       → item text (the title) and tags (genres)
 *   users.dat    user::gender::age::occupation::zip → user attributes of those four names
 *
 * ratings.dat is the speed path of ingest (a million rows in well under a second): fields are
 * cut with memchr, the row template is filled once and only its four slices change per line,
 * and ingest_add_row's integer fast paths do the rest. Any "::" file that is not movies.dat or
 * users.dat is read as ratings (ml-10m's tags.dat has text in the third field and would be
 * rejected as bad_value row by row, which the report makes visible). */
#include "data/read.h"

#include <string.h>

/* Cuts p[0..n) at every "::"; stores at most cap fields and returns how many there are. */
static size_t split_dcolon(const char *p, size_t n, sq_slice *f, size_t cap) {
    const char *end = p + n, *s = p;
    size_t nf = 0;
    for (;;) {
        const char *q = s;
        for (;;) {
            q = memchr(q, ':', (size_t)(end - q));
            if (!q || q + 1 >= end) {
                q = NULL;
                break;
            }
            if (q[1] == ':')
                break;
            q++;
        }
        if (!q) {
            if (nf < cap) {
                f[nf].p = s;
                f[nf].n = (size_t)(end - s);
            }
            return nf + 1;
        }
        if (nf < cap) {
            f[nf].p = s;
            f[nf].n = (size_t)(q - s);
        }
        nf++;
        s = q + 2;
    }
}

static sq_status ratings(read_src *s, sq_error *err) {
    sq_ingest *g = s->g;
    sq_row r;
    memset(&r, 0, sizeof r);
    r.tkind = TIME_TEXT;
    g->file_has_value = 1;
    sq_line ln;
    int k;
    sq_status rc;
    while ((k = read_next_line(s, &ln, 0, err)) == 1) {
        g->report.rows_read++;
        if (read_check_line(s, &ln, 0, &rc, err)) {
            if (rc)
                return rc;
            continue;
        }
        sq_slice f[4];
        size_t nf = split_dcolon(ln.p, ln.n, f, 4);
        r.line = ln.no;
        r.raw.p = ln.p;
        r.raw.n = ln.n;
        if (nf != 4) {
            char d[64];
            snprintf(d, sizeof d, "expected 4 fields (user::item::rating::ts), found %zu", nf);
            if ((rc = ingest_reject(g, &r, SQ_REJ_FIELD_COUNT, "row", d, err)))
                return rc;
            continue;
        }
        r.user = f[0];
        r.item = f[1];
        r.value = f[2];
        r.ts = f[3];
        if ((rc = ingest_add_row(g, &r, err)))
            return rc;
    }
    return k < 0 ? read_io_error(err) : SQ_OK;
}

/* movies.dat and users.dat. */
static sq_status side(read_src *s, sq_error *err) {
    sq_ingest *g = s->g;
    int items = s->det.kind == KIND_ITEMS;
    size_t want = items ? 3 : 5;
    static const char *user_fields[4] = {"gender", "age", "occupation", "zip"};
    sq_line ln;
    int k;
    while ((k = read_next_line(s, &ln, 1, err)) == 1) {
        g->report.side_rows++;
        sq_status rc = SQ_OK;
        if (read_check_line(s, &ln, 1, &rc, err))
            continue;
        sq_slice f[5];
        size_t nf = split_dcolon(ln.p, ln.n, f, 5);
        sq_slice id = f[0];
        while (id.n && (id.p[0] == ' ' || id.p[0] == '\t'))
            id.p++, id.n--;
        while (id.n && (id.p[id.n - 1] == ' ' || id.p[id.n - 1] == '\t'))
            id.n--;
        if (nf != want || id.n == 0) {
            g->report.side_rejected++;
            continue;
        }
        if (items) {
            rc = ingest_add_item_text(g, id, f[1]);
            const char *p = f[2].p, *end = f[2].p + f[2].n;
            while (!rc && p < end) {
                const char *bar = memchr(p, '|', (size_t)(end - p));
                sq_slice tag = {p, (size_t)((bar ? bar : end) - p)};
                static const char none[] = "(no genres listed)";
                if (!(tag.n == sizeof none - 1 && !memcmp(tag.p, none, tag.n)))
                    rc = ingest_add_item_tag(g, id, NULL, tag);
                p = bar ? bar + 1 : end;
            }
        } else {
            for (int j = 0; j < 4 && !rc; j++)
                rc = ingest_add_user_attr(g, id, user_fields[j], f[j + 1]);
        }
        if (rc == SQ_ERR_LIMIT)
            g->report.side_rejected++;
        else if (rc)
            return sq_errorf(err, rc, "%s:%llu: %s", s->name, (unsigned long long)ln.no,
                             sq_strerror(rc));
    }
    return k < 0 ? read_io_error(err) : SQ_OK;
}

sq_status read_movielens(read_src *s, sq_error *err) {
    return s->det.kind == KIND_EVENTS ? ratings(s, err) : side(s, err);
}
