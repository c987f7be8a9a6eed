/* gen_write.c — the generator's output: a buffered sink over an sq_afile, optionally through a
 * zlib deflate stream with a gzip wrapper, and one text line per event in each input format.
 *
 * Speed is the point here (the ingest benchmark asks for logs of millions of rows): lines are
 * built straight into a 1 MiB buffer with hand-rolled integer formatting and names copied by
 * length; the buffer goes out in one fwrite (or one deflate pass). Compression uses level 1:
 * generated logs are scratch data, and a faster level keeps gzip output close to plain speed.
 * The gzip header deflate writes carries no time stamp and no name, so the output stays
 * byte-identical from run to run. */
#define _POSIX_C_SOURCE 200809L
#include "data/gen.h"

#include <errno.h>
#include <string.h>

const gen_name gen_device_names[GEN_DEVICES] = {{"mobile", 6}, {"desktop", 7}, {"tablet", 6}};

/* ======================================== The sink =========================================== */

/* zlib allocates through sq_calloc too, so allocation-failure tests reach its error paths. */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size) {
    (void)opaque;
    return sq_calloc(items, size);
}

static void z_free(voidpf opaque, voidpf p) {
    (void)opaque;
    sq_free(p);
}

sq_status gen_sink_open(gen_sink *s, const char *path, int gzip, sq_error *err) {
    memset(s, 0, sizeof *s);
    s->path = path;
    s->gz = gzip;
    if (!(s->buf = sq_malloc(GEN_BUF)) || (gzip && !(s->zout = sq_malloc(GEN_BUF)))) {
        gen_sink_abort(s);
        return sq_errorf(err, SQ_ERR_NOMEM, "%s: out of memory", path);
    }
    if (gzip) {
        s->z.zalloc = z_alloc;
        s->z.zfree = z_free;
        /* 15 + 16: a 32 KiB window with a gzip (not zlib) wrapper. */
        int zr = deflateInit2(&s->z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
        if (zr != Z_OK) {
            gen_sink_abort(s);
            return sq_errorf(err, zr == Z_MEM_ERROR ? SQ_ERR_NOMEM : SQ_ERR_INTERNAL,
                             "%s: deflateInit2: %s", path, zError(zr));
        }
        s->z_ready = 1;
    }
    sq_status rc = sq_afile_open(&s->af, path, err);
    if (rc) {
        gen_sink_abort(s);
        return rc;
    }
    s->f = sq_afile_stream(s->af);
    return SQ_OK;
}

/* Runs deflate over the input set in s->z with `flush` and writes what comes out. */
static void sink_deflate(gen_sink *s, int flush) {
    do {
        s->z.next_out = (Bytef *)s->zout;
        s->z.avail_out = GEN_BUF;
        int zr = deflate(&s->z, flush);
        if (zr == Z_STREAM_ERROR) {
            if (s->z_err == Z_OK)
                s->z_err = zr;
            return;
        }
        size_t have = GEN_BUF - s->z.avail_out;
        if (have && fwrite(s->zout, 1, have, s->f) != have && !s->err_no)
            s->err_no = errno ? errno : EIO;
    } while (s->z.avail_out == 0 || (flush == Z_FINISH && s->z.avail_in != 0));
}

void gen_sink_flush(gen_sink *s) {
    if (s->n == 0)
        return;
    if (s->err_no || s->z_err) {
        s->n = 0; /* the file is lost anyway: stop writing */
        return;
    }
    if (s->gz) {
        s->z.next_in = (Bytef *)s->buf;
        s->z.avail_in = (uInt)s->n;
        sink_deflate(s, Z_NO_FLUSH);
    } else if (fwrite(s->buf, 1, s->n, s->f) != s->n) {
        s->err_no = errno ? errno : EIO;
    }
    s->n = 0;
}

sq_status gen_sink_commit(gen_sink *s, sq_error *err) {
    gen_sink_flush(s);
    if (s->gz && !s->err_no && !s->z_err) {
        s->z.next_in = NULL;
        s->z.avail_in = 0;
        /* Z_FINISH until Z_STREAM_END: sink_deflate loops while the output chunk fills up. */
        sink_deflate(s, Z_FINISH);
    }
    if (s->err_no || s->z_err) {
        sq_status rc = s->err_no ? sq_errorf(err, SQ_ERR_IO, "%s: %s", s->path, strerror(s->err_no))
                                 : sq_errorf(err, SQ_ERR_INTERNAL, "%s: deflate: %s", s->path,
                                             zError(s->z_err));
        gen_sink_abort(s);
        return rc;
    }
    sq_afile *af = s->af;
    s->af = NULL;
    gen_sink_abort(s); /* frees the buffers; af is committed below */
    return sq_afile_commit(af, err);
}

void gen_sink_abort(gen_sink *s) {
    if (s->z_ready)
        deflateEnd(&s->z);
    s->z_ready = 0;
    sq_afile_abort(s->af);
    s->af = NULL;
    s->f = NULL;
    sq_free(s->buf);
    sq_free(s->zout);
    s->buf = s->zout = NULL;
    s->n = 0;
}

/* ===================================== Line building ========================================= */

void gen_put(gen_sink *s, const char *p, size_t n) {
    gen_sink_reserve(s);
    memcpy(s->buf + s->n, p, n);
    s->n += n;
}

void gen_puts(gen_sink *s, const char *str) {
    gen_put(s, str, strlen(str));
}

/* Writes the digits of v at p; returns the end. */
static inline char *fmt_u64(char *p, uint64_t v) {
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

void gen_put_u64(gen_sink *s, uint64_t v) {
    gen_sink_reserve(s);
    s->n = (size_t)(fmt_u64(s->buf + s->n, v) - s->buf);
}

static inline char *fmt_name(char *p, gen_name nm) {
    memcpy(p, nm.p, nm.n);
    return p + nm.n;
}

static inline char *fmt_lit(char *p, const char *lit, size_t n) {
    memcpy(p, lit, n);
    return p + n;
}
#define LIT(p, s) fmt_lit((p), (s), sizeof(s) - 1)

void gen_write_header(gen_sink *s, const gen_vocab *v) {
    switch (v->format) {
    case SQ_FMT_CSV:
        gen_puts(s, "user_id,item_id,timestamp,behaviour,scene,device,hour,value\n");
        break;
    case SQ_FMT_TSV:
        gen_puts(s, "user_id\titem_id\ttimestamp\tbehaviour\tscene\tdevice\thour\tvalue\n");
        break;
    case SQ_FMT_RECBOLE:
        gen_puts(s, "user_id:token\titem_id:token\ttimestamp:float\tbehaviour:token\t"
                    "scene:token\tdevice:token\thour:token\tvalue:float\n");
        break;
    default:
        break;
    }
}

/* user SEP item SEP ts SEP behaviour SEP scene SEP device SEP hour SEP value: csv, tsv and
 * recbole rows differ only in the separator. */
static char *fmt_delimited(char *p, const gen_vocab *v, const gen_event *e, char sep) {
    p = fmt_u64(p, e->user);
    *p++ = sep;
    p = fmt_u64(p, e->item);
    *p++ = sep;
    p = fmt_u64(p, (uint64_t)e->ts);
    *p++ = sep;
    p = fmt_name(p, v->beh[e->beh]);
    *p++ = sep;
    p = fmt_name(p, v->scene[e->scene]);
    *p++ = sep;
    p = fmt_name(p, gen_device_names[e->device]);
    *p++ = sep;
    p = fmt_u64(p, e->hour);
    *p++ = sep;
    p = fmt_u64(p, e->value);
    *p++ = '\n';
    return p;
}

void gen_write_event(gen_sink *s, const gen_vocab *v, const gen_event *e) {
    gen_sink_reserve(s);
    char *p = s->buf + s->n;
    switch (v->format) {
    case SQ_FMT_CSV:
        p = fmt_delimited(p, v, e, ',');
        break;
    case SQ_FMT_TSV:
    case SQ_FMT_RECBOLE:
        p = fmt_delimited(p, v, e, '\t');
        break;
    case SQ_FMT_JSONL:
        p = LIT(p, "{\"user\":\"");
        p = fmt_u64(p, e->user);
        p = LIT(p, "\",\"item\":\"");
        p = fmt_u64(p, e->item);
        p = LIT(p, "\",\"ts\":");
        p = fmt_u64(p, (uint64_t)e->ts);
        p = LIT(p, ",\"behaviour\":\"");
        p = fmt_name(p, v->beh[e->beh]);
        p = LIT(p, "\",\"scene\":\"");
        p = fmt_name(p, v->scene[e->scene]);
        p = LIT(p, "\",\"context\":{\"device\":\"");
        p = fmt_name(p, gen_device_names[e->device]);
        p = LIT(p, "\",\"hour\":\"");
        p = fmt_u64(p, e->hour);
        p = LIT(p, "\"},\"value\":");
        p = fmt_u64(p, e->value);
        p = LIT(p, "}\n");
        break;
    case SQ_FMT_MOVIELENS:
        p = fmt_u64(p, e->user);
        p = LIT(p, "::");
        p = fmt_u64(p, e->item);
        p = LIT(p, "::");
        p = fmt_u64(p, e->value);
        p = LIT(p, "::");
        p = fmt_u64(p, (uint64_t)e->ts);
        *p++ = '\n';
        break;
    case SQ_FMT_PLAIN:
    default:
        p = fmt_u64(p, e->user);
        *p++ = ' ';
        p = fmt_u64(p, e->item);
        *p++ = '\n';
        break;
    }
    s->n = (size_t)(p - s->buf);
}
