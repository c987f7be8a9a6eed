/* lineio.c — the buffered line reader (see lineio.h).
 *
 * One buffer of max_line + 2 + CHUNK bytes holds the unread input in [start, end) (a memory
 * reader starts at 64 KiB and doubles up to that size only when a line needs it).
 * sq_lineio_next looks for '\n' with memchr from `scan` (everything in [start, scan) is known
 * to hold no newline), hands out [start, newline) and moves start past it. When no newline is
 * left it moves the partial line to the front and reads more behind it. Because a partial line
 * longer than max_line + 1 bytes is never kept (it switches to skipping), at least CHUNK bytes
 * are always free for the next read: memory is bounded whatever the input.
 *
 * Sources: a file goes through zlib's gzread, which decompresses when the file starts with the
 * gzip magic bytes and copies it through otherwise (reading straight into our buffer, so a
 * plain file costs one copy). A memory buffer is copied into the line buffer in chunks, or
 * inflated (windowBits 15 + 16: gzip, members concatenated) when it starts with 1f 8b.
 *
 * Invariants:
 *  1. start <= scan <= end <= cap; no '\n' in [start, scan).
 *  2. nul is the offset of the first NUL byte in [start, end), or NO_NUL when there is none;
 *     so a line [s, e) holds a NUL exactly when nul < e.
 *  3. end - start <= max_line + 1 whenever no newline is in [start, end) and input remains. */
#define _POSIX_C_SOURCE 200809L
#include "data/lineio.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

enum {
    CHUNK = 1 << 20,       /* bytes read at a time (at least) */
    HEAD_BYTES = 64 << 10, /* what sq_lineio_head shows */
    MEM_CHUNK = 1 << 20,   /* inflate output per call */
    START_MEM = 64 << 10   /* first buffer size of a memory reader */
};
#define NO_NUL ((size_t)-1)

typedef enum { SRC_FILE, SRC_MEM, SRC_MEM_GZ } src_kind;

struct sq_lineio {
    src_kind kind;               /* where bytes come from */
    char *name;                  /* path or buffer name, for messages */
    gzFile gz;                   /* SRC_FILE: zlib handle (transparent for plain files) */
    const uint8_t *mem;          /* SRC_MEM*: the caller's bytes */
    size_t mem_n;                /* their count */
    size_t mem_pos;              /* SRC_MEM: bytes copied so far */
    z_stream zs;                 /* SRC_MEM_GZ: inflate state */
    int zs_live;                 /* zs was initialised (needs inflateEnd) */
    int zs_done;                 /* the last gzip member ended and no other follows */
    int gzip;                    /* input is gzip-compressed */
    uint64_t size;               /* input bytes in total (file size), 0 when unknown */
    char *buf;                   /* the line buffer */
    size_t cap;                  /* its size */
    size_t full_cap;             /* the size it may grow to: max_line + 2 + CHUNK */
    size_t start, scan, end;     /* see invariant 1 */
    size_t nul;                  /* see invariant 2 */
    int eof;                     /* the source has no more bytes */
    size_t max_line;             /* longest line returned whole */
    uint64_t line_no;            /* lines returned so far */
    char prefix[SQ_LINE_PREFIX]; /* beginning of a too-long line being skipped */
};

static sq_status alloc_reader(sq_lineio **out, const char *name, size_t max_line, size_t cap,
                              sq_error *err) {
    sq_lineio *r = sq_calloc(1, sizeof *r);
    if (!r || !(r->name = sq_strdup(name)) || !(r->buf = sq_malloc(cap))) {
        if (r)
            sq_free(r->name);
        sq_free(r);
        return sq_errorf(err, SQ_ERR_NOMEM, "%s: out of memory for the line buffer", name);
    }
    r->cap = cap;
    r->full_cap = max_line + 2 + CHUNK;
    r->max_line = max_line;
    r->nul = NO_NUL;
    *out = r;
    return SQ_OK;
}

static size_t norm_max_line(size_t max_line) {
    if (max_line == 0)
        return 1 << 20;
    if (max_line > ((size_t)1 << 30))
        return (size_t)1 << 30; /* gzread takes an unsigned int */
    return max_line;
}

sq_status sq_lineio_open(sq_lineio **out, const char *path, size_t max_line, sq_error *err) {
    *out = NULL;
    max_line = norm_max_line(max_line);
    struct stat st;
    if (stat(path, &st) != 0)
        return sq_errorf(err, SQ_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return sq_errorf(err, SQ_ERR_IO, "%s: is a directory", path);
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return sq_errorf(err, SQ_ERR_IO, "%s: %s", path, errno ? strerror(errno) : "cannot open");
    gzbuffer(gz, 256 << 10);
    sq_lineio *r = NULL;
    sq_status rc = alloc_reader(&r, path, max_line, max_line + 2 + CHUNK, err);
    if (rc) {
        gzclose(gz);
        return rc;
    }
    r->kind = SRC_FILE;
    r->gz = gz;
    r->size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
    /* gzdirect is only meaningful after the first read: look at the magic bytes ourselves. */
    FILE *f = fopen(path, "rb");
    if (f) {
        unsigned char m[2];
        r->gzip = fread(m, 1, 2, f) == 2 && m[0] == 0x1f && m[1] == 0x8b;
        fclose(f);
    }
    *out = r;
    return SQ_OK;
}

sq_status sq_lineio_open_mem(sq_lineio **out, const char *name, const void *data, size_t n,
                             size_t max_line, sq_error *err) {
    *out = NULL;
    max_line = norm_max_line(max_line);
    const uint8_t *d = data;
    int gz = n >= 2 && d[0] == 0x1f && d[1] == 0x8b;
    /* buffers in memory are mostly small (tests, fuzzing): start small, grow when needed */
    size_t cap = max_line + 2 + CHUNK;
    if (!gz && n + 2 < cap)
        cap = n + 2;
    if (cap > START_MEM)
        cap = START_MEM;
    sq_lineio *r = NULL;
    sq_status rc = alloc_reader(&r, name, max_line, cap, err);
    if (rc)
        return rc;
    r->mem = d;
    r->mem_n = n;
    r->size = n;
    r->gzip = gz;
    r->kind = gz ? SRC_MEM_GZ : SRC_MEM;
    if (gz) {
        if (inflateInit2(&r->zs, 15 + 16) != Z_OK) {
            sq_lineio_close(r);
            return sq_errorf(err, SQ_ERR_NOMEM, "%s: cannot start inflate", name);
        }
        r->zs_live = 1;
        r->zs.next_in = (Bytef *)(uintptr_t)d; /* zlib's API is not const-correct */
        r->zs.avail_in = n > UINT32_MAX ? UINT32_MAX : (uInt)n;
    }
    *out = r;
    return SQ_OK;
}

void sq_lineio_close(sq_lineio *r) {
    if (!r)
        return;
    if (r->gz)
        gzclose(r->gz);
    if (r->zs_live)
        inflateEnd(&r->zs);
    sq_free(r->buf);
    sq_free(r->name);
    sq_free(r);
}

int sq_lineio_is_gzip(const sq_lineio *r) {
    return r->gzip;
}

void sq_lineio_progress(const sq_lineio *r, uint64_t *done, uint64_t *total) {
    *total = r->size;
    if (r->kind == SRC_FILE)
        *done = r->gzip ? (uint64_t)gzoffset(r->gz) : (uint64_t)gztell(r->gz);
    else if (r->kind == SRC_MEM)
        *done = r->mem_pos;
    else
        *done = r->mem_n - r->zs.avail_in;
    if (*done > *total && *total)
        *done = *total;
}

/* Reads up to `want` bytes into dst from the source; returns the count (0: end) or -1. */
static long source_read(sq_lineio *r, char *dst, size_t want, sq_error *err) {
    if (want > (size_t)INT32_MAX)
        want = (size_t)INT32_MAX;
    if (r->kind == SRC_FILE) {
        int got = gzread(r->gz, dst, (unsigned)want);
        int zerr = Z_OK;
        const char *msg = gzerror(r->gz, &zerr);
        if (got < 0 || (zerr != Z_OK && zerr != Z_BUF_ERROR) || (got == 0 && zerr == Z_BUF_ERROR))
            return sq_errorf(err, SQ_ERR_IO, "%s: %s", r->name,
                             zerr == Z_ERRNO       ? strerror(errno)
                             : zerr == Z_BUF_ERROR ? "truncated gzip data"
                                                   : msg),
                   -1;
        return got;
    }
    if (r->kind == SRC_MEM) {
        size_t k = r->mem_n - r->mem_pos;
        if (k > want)
            k = want;
        memcpy(dst, r->mem + r->mem_pos, k);
        r->mem_pos += k;
        return (long)k;
    }
    /* SRC_MEM_GZ */
    if (r->zs_done)
        return 0;
    if (want > MEM_CHUNK)
        want = MEM_CHUNK;
    r->zs.next_out = (Bytef *)dst;
    r->zs.avail_out = (uInt)want;
    while (r->zs.avail_out > 0) {
        int z = inflate(&r->zs, Z_NO_FLUSH);
        if (z == Z_STREAM_END) {
            /* another member follows only when the next bytes are gzip magic again */
            const uint8_t *nx = r->zs.next_in;
            if (r->zs.avail_in >= 2 && nx[0] == 0x1f && nx[1] == 0x8b) {
                inflateReset(&r->zs);
                continue;
            }
            r->zs_done = 1; /* trailing bytes after the last member are ignored, as gzread does */
            break;
        }
        if (z == Z_BUF_ERROR && r->zs.avail_in == 0)
            return sq_errorf(err, SQ_ERR_IO, "%s: truncated gzip data", r->name), -1;
        if (z != Z_OK && z != Z_BUF_ERROR)
            return sq_errorf(err, SQ_ERR_IO, "%s: corrupt gzip data (%s)", r->name,
                             r->zs.msg ? r->zs.msg : "inflate failed"),
                   -1;
    }
    return (long)(want - r->zs.avail_out);
}

/* Moves the unread bytes to the front and reads more behind them. Returns 0 or -1. */
static int fill(sq_lineio *r, sq_error *err) {
    if (r->start > 0) {
        size_t k = r->end - r->start;
        memmove(r->buf, r->buf + r->start, k);
        r->scan -= r->start;
        if (r->nul != NO_NUL)
            r->nul -= r->start;
        r->start = 0;
        r->end = k;
    }
    if (r->eof)
        return 0;
    if (r->kind == SRC_MEM && r->mem_pos == r->mem_n) {
        r->eof = 1;
        return 0;
    }
    if (r->cap - r->end < CHUNK / 16 && r->cap < r->full_cap) {
        size_t c = r->cap * 2 < r->full_cap ? r->cap * 2 : r->full_cap;
        char *b = sq_realloc(r->buf, c);
        if (!b)
            return sq_errorf(err, SQ_ERR_NOMEM, "%s: out of memory for the line buffer", r->name),
                   -1;
        r->buf = b;
        r->cap = c;
    }
    if (r->end == r->cap)
        return 0;
    long got = source_read(r, r->buf + r->end, r->cap - r->end, err);
    if (got < 0)
        return -1;
    if (got == 0) {
        r->eof = 1;
        return 0;
    }
    if (r->nul == NO_NUL) {
        const char *z = memchr(r->buf + r->end, 0, (size_t)got);
        if (z)
            r->nul = (size_t)(z - r->buf);
    }
    r->end += (size_t)got;
    return 0;
}

sq_status sq_lineio_head(sq_lineio *r, const char **p, size_t *n, sq_error *err) {
    size_t want = HEAD_BYTES < r->cap ? HEAD_BYTES : r->cap;
    while (!r->eof && r->end - r->start < want) {
        size_t before = r->end - r->start;
        if (fill(r, err))
            return err ? err->code : SQ_ERR_IO;
        if (r->end - r->start == before && !r->eof)
            break; /* buffer full */
    }
    *p = r->buf + r->start;
    *n = r->end - r->start;
    if (*n > want)
        *n = want;
    return SQ_OK;
}

/* Hands out [s, e) (e exclusive, before the newline) and consumes through `next`. */
static void emit(sq_lineio *r, sq_line *ln, size_t s, size_t e, size_t next) {
    size_t len = e - s;
    if (len > 0 && r->buf[e - 1] == '\r')
        len--;
    ln->p = r->buf + s;
    ln->n = len;
    ln->no = ++r->line_no;
    ln->too_long = len > r->max_line;
    if (ln->too_long && len > SQ_LINE_PREFIX)
        ln->n = SQ_LINE_PREFIX;
    ln->has_nul = r->nul != NO_NUL && r->nul < s + len;
    r->start = r->scan = next;
    if (r->nul != NO_NUL && r->nul < next) {
        const char *z = memchr(r->buf + next, 0, r->end - next);
        r->nul = z ? (size_t)(z - r->buf) : NO_NUL;
    }
}

/* The partial line in the buffer is already too long: keep its beginning, then drop input up
 * to and including the next newline (or the end). */
static int skip_long(sq_lineio *r, sq_line *ln, sq_error *err) {
    size_t keep = r->end - r->start < SQ_LINE_PREFIX ? r->end - r->start : SQ_LINE_PREFIX;
    memcpy(r->prefix, r->buf + r->start, keep);
    int nul = r->nul != NO_NUL;
    for (;;) {
        r->start = r->scan = r->end = 0;
        r->nul = NO_NUL;
        if (fill(r, err))
            return -1;
        if (r->end == 0)
            break; /* end of input inside the long line */
        const char *nl = memchr(r->buf, '\n', r->end);
        if (nl) {
            size_t at = (size_t)(nl - r->buf);
            nul |= r->nul != NO_NUL && r->nul < at;
            r->start = r->scan = at + 1;
            if (r->nul != NO_NUL && r->nul < r->start) {
                const char *z = memchr(r->buf + r->start, 0, r->end - r->start);
                r->nul = z ? (size_t)(z - r->buf) : NO_NUL;
            }
            break;
        }
        nul |= r->nul != NO_NUL;
    }
    ln->p = r->prefix;
    ln->n = keep;
    ln->no = ++r->line_no;
    ln->too_long = 1;
    ln->has_nul = nul;
    return 1;
}

int sq_lineio_next(sq_lineio *r, sq_line *ln, sq_error *err) {
    for (;;) {
        const char *nl = memchr(r->buf + r->scan, '\n', r->end - r->scan);
        if (nl) {
            size_t e = (size_t)(nl - r->buf);
            emit(r, ln, r->start, e, e + 1);
            return 1;
        }
        r->scan = r->end;
        if (r->eof) {
            if (r->start == r->end)
                return 0;
            emit(r, ln, r->start, r->end, r->end); /* last line without a newline */
            return 1;
        }
        if (r->end - r->start > r->max_line + 1)
            return skip_long(r, ln, err);
        if (fill(r, err))
            return -1;
    }
}
