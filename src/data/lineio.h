/* lineio.h — a buffered line reader for the ingest readers: over a file (plain, or gzip when
 * it starts with the magic bytes 1f 8b, through zlib) or over a buffer in memory (plain or
 * gzip too).
 *
 * Lines come back as slices into one large internal buffer, without the "\n" or "\r\n" that
 * ended them; a last line without a newline is still a line. A line longer than max_line is
 * returned once with too_long set and only its first bytes (SQ_LINE_PREFIX) in the slice; the
 * rest is skipped in chunks, so memory stays bounded by max_line plus one read chunk whatever
 * the input. NUL bytes are ordinary bytes; a line holding one is flagged (has_nul) so readers
 * can reject it instead of passing cut strings on.
 *
 * Ownership: sq_lineio_open / sq_lineio_open_mem return a reader freed by sq_lineio_close
 * (NULL is a no-op). A slice stays valid until the next call on the same reader. A memory
 * reader does not copy or own `data`; it must outlive the reader. Not thread-safe. */
#ifndef SEQREC_DATA_LINEIO_H
#define SEQREC_DATA_LINEIO_H

#include "seqrec/core.h"

enum { SQ_LINE_PREFIX = 256 /* bytes of a too-long line kept for the rejects file */ };

typedef struct sq_lineio sq_lineio;

/* One line of input. */
typedef struct {
    const char *p; /* its bytes (no newline, no trailing CR); valid until the next call */
    size_t n;      /* their count (at most SQ_LINE_PREFIX when too_long) */
    uint64_t no;   /* 1-based line number in the input */
    int too_long;  /* the line is longer than max_line: p/n hold only its beginning */
    int has_nul;   /* the line contains a NUL byte */
} sq_line;

/* Opens path for reading; max_line 0 means 1 MiB. Errors: SQ_ERR_IO (naming path), NOMEM. */
sq_status sq_lineio_open(sq_lineio **out, const char *path, size_t max_line, sq_error *err);

/* Reads from n bytes at data (gzip when they start with 1f 8b); `name` is used in messages. */
sq_status sq_lineio_open_mem(sq_lineio **out, const char *name, const void *data, size_t n,
                             size_t max_line, sq_error *err);

void sq_lineio_close(sq_lineio *r);

/* Next line: returns 1 and fills *ln, 0 at the end of input, or -1 on a read error or corrupt
 * gzip data (err: SQ_ERR_IO naming the input). */
int sq_lineio_next(sq_lineio *r, sq_line *ln, sq_error *err);

/* The first bytes of the (decompressed) input, without consuming anything: up to 64 KiB, less
 * only when the input is shorter. For format detection before the first sq_lineio_next. */
sq_status sq_lineio_head(sq_lineio *r, const char **p, size_t *n, sq_error *err);

/* 1 when the input is gzip-compressed. */
int sq_lineio_is_gzip(const sq_lineio *r);

/* Progress in input bytes (compressed bytes for gzip): consumed so far and the total (0 when
 * unknown). */
void sq_lineio_progress(const sq_lineio *r, uint64_t *done, uint64_t *total);

#endif
