/* read.h — what the format readers (read_*.c) share, internal to src/data: the detected
 * format of an input, the reader entry points sq_ingest_file / sq_ingest_buffer dispatch to,
 * and small helpers for the line loops.
 *
 * Every reader follows the same loop: take a line from the sq_lineio; a blank line counts in
 * report.blank_lines; a data line of an event file counts in report.rows_read and then ends
 * as exactly one event or one reject (ingest.h invariant 1); a line of a side file counts in
 * report.side_rows and, when unusable, in report.side_rejected. Errors (strict mode, memory,
 * I/O) stop the loop and are returned as they are. */
#ifndef SEQREC_DATA_READ_H
#define SEQREC_DATA_READ_H

#include "data/ingest.h"
#include "data/lineio.h"

/* What a file holds. */
typedef enum {
    KIND_EVENTS = 0, /* interactions */
    KIND_ITEMS,      /* item side information (movies.dat, .item) */
    KIND_USERS       /* user side information (users.dat, .user) */
} file_kind;

/* The outcome of detection for one input. */
typedef struct {
    sq_format format; /* never SQ_FMT_AUTO */
    file_kind kind;   /* events or a side file */
    char delim;       /* CSV: the delimiter; TSV/RecBole: '\t' */
} detected;

/* detect.c: decides format, kind and delimiter from the file name (".gz" stripped) and the
 * first bytes `head`; opts.format and opts.delimiter override. Never fails: unknown text
 * falls back to plain. */
void detect_input(const sq_ingest *g, const char *name, const char *head, size_t n, detected *out);
/* The file name without directories and without a ".gz" suffix, into buf. */
const char *detect_basename(const char *path, char *buf, size_t cap);

/* One reader run over one input. */
typedef struct {
    sq_ingest *g;       /* the builder */
    sq_lineio *in;      /* the lines */
    const char *name;   /* path or buffer name, for messages */
    detected det;       /* its format */
    uint64_t last_line; /* highest line number seen (for order_base) */
} read_src;

/* The readers. Each reads every remaining line of s->in. */
sq_status read_movielens(read_src *s, sq_error *err);
sq_status read_delim(read_src *s, sq_error *err);        /* CSV, TSV, RecBole .inter */
sq_status read_recbole_side(read_src *s, sq_error *err); /* RecBole .item / .user */
sq_status read_jsonl(read_src *s, sq_error *err);
sq_status read_plain(read_src *s, sq_error *err);

/* read.c helpers. */

/* An empty or blank-only line? */
static inline int read_is_blank(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\f' && p[i] != '\v')
            return 0;
    return 1;
}

/* Rejects a whole event line (too long, NUL byte, field count, bad JSON) with a row that
 * holds only its line number and raw text. */
sq_status read_reject_line(read_src *s, const sq_line *ln, sq_reject_reason why, const char *field,
                           const char *detail, sq_error *err);

/* Checks a line before splitting: too long or holding a NUL → rejected (event file) or
 * counted as a side reject. Returns 1 when the line was consumed that way (*rc then holds the
 * reject's status: an error in strict mode), 0 when the line is fine. */
int read_check_line(read_src *s, const sq_line *ln, int side, sq_status *rc, sq_error *err);

/* Progress every 64 Ki lines. */
void read_progress(read_src *s, uint64_t line);

/* The next line that is not blank: records its number, reports progress every 64 Ki lines and
 * skips blank lines (counted in the report for event files, side = 0). Returns 1 with *ln set,
 * 0 at the end, < 0 on a read error (err filled). */
int read_next_line(read_src *s, sq_line *ln, int side, sq_error *err);

/* Error for a failed sq_lineio_next (err already filled). */
static inline sq_status read_io_error(sq_error *err) {
    return err && err->code ? err->code : SQ_ERR_IO;
}

#endif
