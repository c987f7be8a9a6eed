/* read_plain.c — plain "user item" text, fields separated by runs of blanks (spaces, tabs),
 * as in the SASRec / BERT4Rec data files (beauty.txt): each user's lines are in time order, no
 * timestamps. The event's time is then its position: order_base + line number, so order keeps
 * rising across files (TIME_ORDER).
 *
 * The first data line fixes the columns of the file (unless --columns says): two fields are
 * user, item; a third is a timestamp when it looks like one (an integer of 9 to 13 digits, or
 * an ISO date: real time instead of file order), else a value when numeric, else ignored; with
 * four or more, the third is the value and the fourth the timestamp (MovieLens u.data order).
 * The choice is logged. Every later line must have the same number of fields (field_count).
 * A first line made of recognised column names ("user item ts") is a header. */
#include "data/columns.h"
#include "data/read.h"

#include <string.h>

/* Cuts at runs of blanks; stores at most cap fields, returns the count. */
static size_t split_ws(const char *p, size_t n, sq_slice *f, size_t cap) {
    size_t i = 0, nf = 0;
    for (;;) {
        while (i < n && (p[i] == ' ' || p[i] == '\t'))
            i++;
        if (i >= n)
            return nf;
        size_t s = i;
        while (i < n && p[i] != ' ' && p[i] != '\t')
            i++;
        if (nf < cap) {
            f[nf].p = p + s;
            f[nf].n = i - s;
        }
        nf++;
    }
}

sq_status read_plain(read_src *s, sq_error *err) {
    sq_ingest *g = s->g;
    sq_status rc = SQ_OK;
    col_plan *pl = sq_calloc(1, sizeof *pl);
    sq_slice *f = sq_mallocn(COLS_MAX + 1, sizeof *f);
    if (!pl || !f) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    sq_row r;
    memset(&r, 0, sizeof r);
    int planned = 0;
    sq_line ln;
    int k;
    while ((k = read_next_line(s, &ln, 0, err)) == 1) {
        if (!planned) {
            if (ln.too_long || ln.has_nul) {
                rc = sq_errorf(err, SQ_ERR_PARSE, "%s:%llu: first line %s", s->name,
                               (unsigned long long)ln.no,
                               ln.too_long ? "is longer than the line limit" : "holds a NUL byte");
                goto done;
            }
            size_t nh = split_ws(ln.p, ln.n, f, COLS_MAX + 1);
            int header = (g->opts.columns && strchr(g->opts.columns, '=')) ||
                         columns_any_known(f, nh > COLS_MAX ? COLS_MAX : nh);
            if ((rc = columns_plan(g, pl, s->name, f, nh, header, err)))
                goto done;
            planned = 1;
            columns_row_template(pl, &r);
            g->file_has_value = pl->has_value;
            if (pl->has_session)
                g->have_sessions = 1;
            if (header) {
                g->report.header_lines++;
                continue;
            }
        } else if (read_check_line(s, &ln, 0, &rc, err)) {
            g->report.rows_read++;
            if (rc)
                goto done;
            continue;
        }
        g->report.rows_read++;
        size_t nf = split_ws(ln.p, ln.n, f, COLS_MAX + 1);
        r.line = ln.no;
        r.raw.p = ln.p;
        r.raw.n = ln.n;
        if (nf != pl->ncols) {
            char d[64];
            snprintf(d, sizeof d, "expected %zu fields, found %zu", pl->ncols, nf);
            if ((rc = ingest_reject(g, &r, SQ_REJ_FIELD_COUNT, "row", d, err)))
                goto done;
            continue;
        }
        columns_fill_row(pl, f, nf, &r);
        if ((rc = ingest_add_row(g, &r, err)))
            goto done;
        if (pl->n_attrs && g->last_new_user &&
            (rc = columns_user_attrs(g, pl, f, nf, r.session.p ? r.session : r.user))) {
            rc = sq_errorf(err, rc, "out of memory");
            goto done;
        }
    }
    if (k < 0)
        rc = read_io_error(err);
done:
    sq_free(pl);
    sq_free(f);
    return rc;
}
