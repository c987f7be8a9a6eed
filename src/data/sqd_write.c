/* sqd_write.c — the low-level .sqd writer: sections appended in order through a staging
 * buffer (checksummed as they pass), 64-byte padding between them, and the header and
 * directory written last at offset 0 once every offset, size and crc is known. The layout and
 * its invariants are in sqd.h. */
#include "data/sqd.h"

#include <errno.h>
#include <string.h>

static void w_fail(sqd_writer *w) {
    if (!w->failed) {
        w->failed = 1;
        w->err_no = errno ? errno : EIO;
    }
}

static void w_raw(sqd_writer *w, const void *p, size_t n) {
    if (w->failed || n == 0)
        return;
    if (fwrite(p, 1, n, w->f) != n)
        w_fail(w);
}

/* Writes the staged bytes, adding them to the open section's crc. */
static void w_flush(sqd_writer *w) {
    if (w->used == 0)
        return;
    if (w->open)
        w->dir[w->n].crc = sq_crc32(w->dir[w->n].crc, w->buf, w->used);
    w_raw(w, w->buf, w->used);
    w->used = 0;
}

void sqd_w_open(sqd_writer *w, FILE *f, uint32_t n_sections) {
    static const unsigned char zero[sizeof(sqd_dirent)];
    w->f = f;
    w->n = 0;
    w->planned = n_sections < SQD_MAX_SECTIONS ? n_sections : SQD_MAX_SECTIONS;
    w->open = 0;
    w->failed = 0;
    w->err_no = 0;
    w->used = 0;
    w->pos = 0;
    /* Room for the header and the directory; both are filled in by sqd_w_finish. */
    for (uint32_t k = 0; k < w->planned + sizeof(sqd_header) / sizeof(sqd_dirent); k++) {
        w_raw(w, zero, sizeof zero);
        w->pos += sizeof zero;
    }
}

void sqd_w_begin(sqd_writer *w, sqd_section_id id, uint32_t index) {
    static const unsigned char zero[SQD_ALIGN];
    if (w->n >= w->planned) { /* more sections than announced: a bug in the caller */
        errno = EOVERFLOW;
        w_fail(w);
        return;
    }
    size_t pad = (size_t)((SQD_ALIGN - w->pos % SQD_ALIGN) % SQD_ALIGN);
    w_raw(w, zero, pad);
    w->pos += pad;
    sqd_dirent *e = &w->dir[w->n];
    memset(e, 0, sizeof *e);
    e->id = (uint32_t)id;
    e->index = index;
    e->offset = w->pos;
    w->open = 1;
}

void sqd_w_put(sqd_writer *w, const void *p, size_t n) {
    if (!w->open || w->failed)
        return;
    w->dir[w->n].size += n;
    w->pos += n;
    if (w->used + n <= sizeof w->buf) {
        memcpy(w->buf + w->used, p, n);
        w->used += n;
        return;
    }
    w_flush(w);
    if (n < sizeof w->buf) {
        memcpy(w->buf, p, n);
        w->used = n;
        return;
    }
    w->dir[w->n].crc = sq_crc32(w->dir[w->n].crc, p, n);
    w_raw(w, p, n);
}

void sqd_w_end(sqd_writer *w) {
    if (!w->open)
        return;
    w_flush(w);
    w->open = 0;
    w->n++;
}

void sqd_w_strtab(sqd_writer *w, sqd_section_id id, uint32_t index, uint32_t n, sqd_str_fn get,
                  const void *ud) {
    sqd_w_begin(w, id, index);
    uint64_t count = n, off = 0;
    sqd_w_put(w, &count, sizeof count);
    sqd_w_put(w, &off, sizeof off);
    for (uint32_t k = 0; k < n; k++) {
        size_t len = 0;
        const char *s = get(ud, k, &len);
        off += (s ? len : 0) + 1;
        sqd_w_put(w, &off, sizeof off);
    }
    for (uint32_t k = 0; k < n; k++) {
        size_t len = 0;
        const char *s = get(ud, k, &len);
        if (s)
            sqd_w_put(w, s, len);
        sqd_w_put(w, "", 1);
    }
    sqd_w_end(w);
}

static const char *strmap_get(const void *ud, uint32_t k, size_t *len) {
    return sq_strmap_key((const sq_strmap *)ud, k, len);
}

void sqd_w_strmap(sqd_writer *w, sqd_section_id id, uint32_t index, const sq_strmap *m) {
    uint32_t n = m ? (uint32_t)sq_strmap_count(m) : 0;
    sqd_w_strtab(w, id, index, n, strmap_get, m);
}

uint64_t sqd_fingerprint(const sqd_header *h, const sqd_dirent *dir, uint32_t n) {
    /* The counts (n_events .. time_max) then (id, index, size, crc) per content section. */
    unsigned char buf[64 + SQD_MAX_SECTIONS * 20];
    size_t used = 0;
    size_t counts = offsetof(sqd_header, fingerprint) - offsetof(sqd_header, n_events);
    memcpy(buf, (const unsigned char *)h + offsetof(sqd_header, n_events), counts);
    used += counts;
    for (uint32_t k = 0; k < n && k < SQD_MAX_SECTIONS; k++) {
        if (dir[k].id == SQD_SEC_META)
            continue;
        memcpy(buf + used, &dir[k].id, 4);
        memcpy(buf + used + 4, &dir[k].index, 4);
        memcpy(buf + used + 8, &dir[k].size, 8);
        memcpy(buf + used + 16, &dir[k].crc, 4);
        used += 20;
    }
    return sq_hash64(buf, used);
}

sq_status sqd_w_finish(sqd_writer *w, sqd_header *h, const char *path, sq_error *err) {
    static const unsigned char zero[SQD_ALIGN];
    if (w->open)
        sqd_w_end(w);
    w_flush(w);
    /* Pad the tail so that the file size is a multiple of SQD_ALIGN too: handy for mmap users
     * that read whole cache lines, and free. */
    size_t pad = (size_t)((SQD_ALIGN - w->pos % SQD_ALIGN) % SQD_ALIGN);
    w_raw(w, zero, pad);
    w->pos += pad;

    if (w->n != w->planned && !w->failed) {
        errno = EINVAL;
        w_fail(w);
    }
    memcpy(h->magic, SQD_MAGIC, SQD_MAGIC_LEN);
    h->version = SQD_VERSION;
    h->header_size = sizeof *h;
    h->file_size = w->pos;
    h->n_sections = w->n;
    memset(h->reserved, 0, sizeof h->reserved);
    h->dir_crc = sq_crc32(0, w->dir, (size_t)w->n * sizeof *w->dir);
    h->fingerprint = sqd_fingerprint(h, w->dir, w->n);
    h->header_crc = sq_crc32(0, h, offsetof(sqd_header, header_crc));
    if (!w->failed && fseek(w->f, 0, SEEK_SET) != 0)
        w_fail(w);
    w_raw(w, h, sizeof *h);
    w_raw(w, w->dir, (size_t)w->n * sizeof *w->dir);
    if (!w->failed && fflush(w->f) != 0)
        w_fail(w);
    if (w->failed)
        return sq_errorf(err, SQ_ERR_IO, "%s: write failed: %s", path, strerror(w->err_no));
    return SQ_OK;
}
