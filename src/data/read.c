/* read.c — the ingest entry points: open an input (file or buffer, plain or gzip), detect its
 * format, hand it to its reader, and pick up the side files that belong beside an event file
 * (movies.dat and users.dat beside a *.dat; stem.item and stem.user beside stem.inter).
 *
 * Every input, event or side file, is registered with ingest_begin_file, so g->inputs lists
 * everything read (provenance) and a side file is never read twice, whether it was named on
 * the command line, found beside an event file, or both. report.files counts event files. */
#define _POSIX_C_SOURCE 200809L
#include "data/read.h"
#include "data/columns.h"

#include <string.h>
#include <sys/stat.h>

/* ======================================== Helpers ============================================ */

sq_status read_reject_line(read_src *s, const sq_line *ln, sq_reject_reason why, const char *field,
                           const char *detail, sq_error *err) {
    sq_row r;
    memset(&r, 0, sizeof r);
    r.line = ln->no;
    r.raw.p = ln->p;
    r.raw.n = ln->n;
    return ingest_reject(s->g, &r, why, field, detail, err);
}

int read_check_line(read_src *s, const sq_line *ln, int side, sq_status *rc, sq_error *err) {
    *rc = SQ_OK;
    if (!ln->too_long && !ln->has_nul)
        return 0;
    if (side) {
        s->g->report.side_rejected++;
        return 1;
    }
    char detail[64];
    if (ln->too_long)
        snprintf(detail, sizeof detail, "line too long (over %zu bytes)", s->g->opts.max_line);
    else
        snprintf(detail, sizeof detail, "NUL byte in line");
    *rc = read_reject_line(s, ln, SQ_REJ_BAD_FIELD, "row", detail, err);
    return 1;
}

void read_progress(read_src *s, uint64_t line) {
    uint64_t done, total;
    sq_lineio_progress(s->in, &done, &total);
    char b[200], stage[256];
    snprintf(stage, sizeof stage, "reading %s", detect_basename(s->name, b, sizeof b));
    (void)line;
    sq_report_progress(&s->g->opts.reporter, stage, done, total, "bytes");
}

int read_next_line(read_src *s, sq_line *ln, int side, sq_error *err) {
    int k;
    while ((k = sq_lineio_next(s->in, ln, err)) == 1) {
        s->last_line = ln->no;
        if (!side && (ln->no & 0xffff) == 0)
            read_progress(s, ln->no);
        if (ln->too_long || !read_is_blank(ln->p, ln->n))
            return 1;
        if (!side)
            s->g->report.blank_lines++;
    }
    return k;
}

/* 1 when path names a file already registered as an input (same device and inode). */
static int already_read(const sq_ingest *g, const char *path) {
    struct stat a, b;
    if (stat(path, &a) != 0)
        return 0;
    for (size_t i = 0; i < g->n_inputs; i++)
        if (stat(g->inputs[i], &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
            return 1;
    return 0;
}

/* Reads one opened input whose format is known. */
static sq_status read_input(sq_ingest *g, const char *name, sq_lineio *in, const detected *det,
                            sq_error *err) {
    sq_status rc = ingest_begin_file(g, name, err);
    if (rc)
        return rc;
    read_src s = {.g = g, .in = in, .name = name, .det = *det, .last_line = 0};
    g->file_has_value = 0;
    if (det->kind == KIND_EVENTS) {
        g->report.files++;
        if (g->opts.columns && (det->format == SQ_FMT_MOVIELENS || det->format == SQ_FMT_JSONL))
            sq_report_log(&g->opts.reporter, SQ_LOG_WARN, "ingest",
                          "%s: --columns does not apply to %s files; ignored", name,
                          sq_format_name(det->format));
    }
    sq_report_log(&g->opts.reporter, SQ_LOG_DEBUG, "ingest", "%s: %s%s %s file", name,
                  sq_lineio_is_gzip(in) ? "gzip " : "", sq_format_name(det->format),
                  det->kind == KIND_EVENTS  ? "event"
                  : det->kind == KIND_ITEMS ? "item"
                                            : "user");
    switch (det->format) {
    case SQ_FMT_MOVIELENS:
        rc = read_movielens(&s, err);
        break;
    case SQ_FMT_RECBOLE:
        rc = det->kind == KIND_EVENTS ? read_delim(&s, err) : read_recbole_side(&s, err);
        break;
    case SQ_FMT_CSV:
    case SQ_FMT_TSV:
        rc = read_delim(&s, err);
        break;
    case SQ_FMT_JSONL:
        rc = read_jsonl(&s, err);
        break;
    default:
        rc = read_plain(&s, err);
        break;
    }
    if (det->kind == KIND_EVENTS)
        g->order_base += s.last_line;
    read_progress(&s, s.last_line);
    return rc;
}

/* Opens, detects and reads one file; `beside` marks a side file found next to an event file
 * (skipped quietly when absent). */
static sq_status ingest_path(sq_ingest *g, const char *path, int beside, sq_error *err);

/* Side files that belong next to an event file. */
static sq_status read_beside(sq_ingest *g, const char *path, const detected *det, sq_error *err) {
    char base[256];
    detect_basename(path, base, sizeof base);
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path + 1) : 0;
    const char *names[2] = {NULL, NULL};
    char stem_item[300], stem_user[300];
    if (det->format == SQ_FMT_MOVIELENS) {
        names[0] = "movies.dat";
        names[1] = "users.dat";
    } else if (det->format == SQ_FMT_RECBOLE) {
        /* the stem keeps the original case: take it from the path itself */
        const char *b = path + dlen;
        size_t n = strlen(b);
        if (n > 3 && !strcmp(b + n - 3, ".gz"))
            n -= 3;
        if (n > 6 && !strcmp(base + strlen(base) - 6, ".inter") && n - 6 < 250) {
            snprintf(stem_item, sizeof stem_item, "%.*s.item", (int)(n - 6), b);
            snprintf(stem_user, sizeof stem_user, "%.*s.user", (int)(n - 6), b);
            names[0] = stem_item;
            names[1] = stem_user;
        }
    }
    for (int k = 0; k < 2; k++) {
        if (!names[k])
            continue;
        for (int gz = 0; gz < 2; gz++) {
            size_t cap = dlen + strlen(names[k]) + 8;
            char *cand = sq_malloc(cap);
            if (!cand)
                return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
            snprintf(cand, cap, "%.*s%s%s", (int)dlen, path, names[k], gz ? ".gz" : "");
            struct stat st;
            sq_status rc = SQ_OK;
            int found = stat(cand, &st) == 0 && S_ISREG(st.st_mode);
            if (found)
                rc = ingest_path(g, cand, 1, err);
            sq_free(cand);
            if (rc)
                return rc;
            if (found)
                break;
        }
    }
    return SQ_OK;
}

static sq_status ingest_path(sq_ingest *g, const char *path, int beside, sq_error *err) {
    sq_lineio *in = NULL;
    sq_status rc = sq_lineio_open(&in, path, g->opts.max_line, err);
    if (rc)
        return rc;
    const char *head;
    size_t hn;
    if ((rc = sq_lineio_head(in, &head, &hn, err))) {
        sq_lineio_close(in);
        return rc;
    }
    detected det;
    detect_input(g, path, head, hn, &det);
    if (det.kind != KIND_EVENTS && already_read(g, path)) {
        sq_lineio_close(in);
        return SQ_OK;
    }
    if (beside)
        sq_report_log(&g->opts.reporter, SQ_LOG_INFO, "ingest", "%s: read as side information",
                      path);
    rc = read_input(g, path, in, &det, err);
    sq_lineio_close(in);
    if (!rc && det.kind == KIND_EVENTS && !g->opts.no_side_files)
        rc = read_beside(g, path, &det, err);
    return rc;
}

/* ====================================== Entry points ========================================= */

sq_status sq_ingest_file(sq_ingest *g, const char *path, sq_error *err) {
    if (!g || !path)
        return sq_errorf(err, SQ_ERR_ARG, "sq_ingest_file: no builder or path");
    return ingest_path(g, path, 0, err);
}

sq_status sq_ingest_buffer(sq_ingest *g, const char *name, const void *data, size_t n,
                           sq_error *err) {
    if (!g || (!data && n))
        return sq_errorf(err, SQ_ERR_ARG, "sq_ingest_buffer: no builder or data");
    if (!name)
        name = "<buffer>";
    sq_lineio *in = NULL;
    sq_status rc = sq_lineio_open_mem(&in, name, data ? data : "", n, g->opts.max_line, err);
    if (rc)
        return rc;
    const char *head;
    size_t hn;
    if (!(rc = sq_lineio_head(in, &head, &hn, err))) {
        detected det;
        detect_input(g, name, head, hn, &det);
        rc = read_input(g, name, in, &det, err);
    }
    sq_lineio_close(in);
    return rc;
}
