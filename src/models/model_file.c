/* model_file.c — writing and verifying .sqm model files (format in model_file.h). */
#define _POSIX_C_SOURCE 200809L
#include "seqrec/model_file.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char MAGIC[4] = {'S', 'Q', 'M', 0};

static size_t dtype_size(sq_dtype t) {
    switch (t) {
    case SQ_DT_F32:
        return 4;
    case SQ_DT_U32:
        return 4;
    case SQ_DT_U8:
        return 1;
    case SQ_DT_F64:
        return 8;
    }
    return 0;
}

static uint64_t blob_elems(const sq_blob *b) {
    uint64_t n = 1;
    for (int d = 0; d < b->ndim; d++)
        n *= b->shape[d];
    return n;
}

/* ---- writing: every byte goes through put() so that the crc covers it ---- */

typedef struct {
    FILE *f;
    uint32_t crc;
    int failed;
} out_stream;

static void put(out_stream *o, const void *p, size_t n) {
    if (o->failed || n == 0)
        return;
    if (fwrite(p, 1, n, o->f) != n)
        o->failed = 1;
    o->crc = sq_crc32(o->crc, p, n);
}

static void put_u32(out_stream *o, uint32_t v) {
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    put(o, b, 4);
}

static void put_u64(out_stream *o, uint64_t v) {
    put_u32(o, (uint32_t)v);
    put_u32(o, (uint32_t)(v >> 32));
}

static char *header_json(const sq_sqm_header *h) {
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "kind", h->kind);
    cJSON *cfg = cJSON_Parse(h->config_json ? h->config_json : "{}");
    if (!cfg)
        cfg = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "config", cfg);
    char fp[32];
    snprintf(fp, sizeof fp, "%016" PRIx64, h->fingerprint);
    cJSON_AddStringToObject(o, "fingerprint", fp);
    cJSON_AddNumberToObject(o, "n_items", (double)h->n_items);
    cJSON_AddNumberToObject(o, "n_users", (double)h->n_users);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

sq_status sq_sqm_write(const char *path, const sq_sqm_header *h, const sq_blob *blobs, size_t n,
                       sq_error *err) {
    for (size_t i = 0; i < n; i++) {
        const sq_blob *b = &blobs[i];
        size_t nl = strnlen(b->name, SQ_BLOB_NAME_MAX);
        if (nl == 0 || nl == SQ_BLOB_NAME_MAX || b->ndim < 0 || b->ndim > 4 ||
            !dtype_size(b->dtype) || blob_elems(b) * dtype_size(b->dtype) != b->nbytes)
            return sq_errorf(err, SQ_ERR_ARG, "%s: tensor %zu ('%.*s') is malformed", path, i,
                             (int)nl, b->name);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(blobs[j].name, b->name))
                return sq_errorf(err, SQ_ERR_ARG, "%s: tensor name '%s' used twice", path, b->name);
    }
    char *hj = header_json(h);
    if (!hj)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    sq_afile *af;
    sq_status rc = sq_afile_open(&af, path, err);
    if (rc) {
        cJSON_free(hj);
        return rc;
    }
    out_stream o = {sq_afile_stream(af), 0, 0};
    put(&o, MAGIC, 4);
    put_u32(&o, SQ_SQM_VERSION);
    uint32_t hl = (uint32_t)strlen(hj);
    put_u32(&o, hl);
    put(&o, hj, hl);
    cJSON_free(hj);
    put_u32(&o, (uint32_t)n);
    uint64_t pos = 4 + 4 + 4 + hl + 4;
    static const unsigned char zeros[8] = {0};
    for (size_t i = 0; i < n; i++) {
        const sq_blob *b = &blobs[i];
        uint16_t nl = (uint16_t)strlen(b->name);
        unsigned char l2[2] = {(unsigned char)nl, (unsigned char)(nl >> 8)};
        put(&o, l2, 2);
        put(&o, b->name, nl);
        unsigned char td[2] = {(unsigned char)b->dtype, (unsigned char)b->ndim};
        put(&o, td, 2);
        for (int d = 0; d < b->ndim; d++)
            put_u64(&o, b->shape[d]);
        pos += 2 + nl + 2 + 8 * (uint64_t)b->ndim;
        size_t pad = (size_t)((8 - pos % 8) % 8);
        put(&o, zeros, pad);
        pos += pad;
        put(&o, b->data, (size_t)b->nbytes);
        pos += b->nbytes;
    }
    uint32_t crc = o.crc;
    put_u32(&o, crc);
    if (o.failed) {
        sq_afile_abort(af);
        return sq_errorf(err, SQ_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    return sq_afile_commit(af, err);
}

/* ---- reading ---- */

struct sq_sqm {
    unsigned char *buf; /* the whole file */
    size_t size;
    sq_sqm_header h; /* strings point into owned copies below */
    char *kind, *config;
    sq_blob *blobs;
    size_t n;
};

static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p) {
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

void sq_sqm_close(sq_sqm *m) {
    if (!m)
        return;
    sq_free(m->buf);
    sq_free(m->kind);
    sq_free(m->config);
    sq_free(m->blobs);
    sq_free(m);
}

static sq_status parse_header(sq_sqm *m, const char *path, const char *text, size_t len,
                              sq_error *err) {
    cJSON *o = cJSON_ParseWithLength(text, len);
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(o, "kind");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(o, "config");
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(o, "fingerprint");
    const cJSON *ni = cJSON_GetObjectItemCaseSensitive(o, "n_items");
    const cJSON *nu = cJSON_GetObjectItemCaseSensitive(o, "n_users");
    if (!cJSON_IsString(kind) || !cJSON_IsObject(cfg) || !cJSON_IsString(fp) ||
        !cJSON_IsNumber(ni) || !cJSON_IsNumber(nu)) {
        cJSON_Delete(o);
        return sq_errorf(err, SQ_ERR_FORMAT, "%s: malformed model header", path);
    }
    char *cs = cJSON_PrintUnformatted(cfg);
    m->kind = sq_strdup(kind->valuestring);
    m->config = cs ? sq_strdup(cs) : NULL;
    cJSON_free(cs);
    m->h.fingerprint = strtoull(fp->valuestring, NULL, 16);
    m->h.n_items = (uint64_t)ni->valuedouble;
    m->h.n_users = (uint64_t)nu->valuedouble;
    cJSON_Delete(o);
    if (!m->kind || !m->config)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    m->h.kind = m->kind;
    m->h.config_json = m->config;
    return SQ_OK;
}

sq_status sq_sqm_read(sq_sqm **out, const char *path, sq_error *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return sq_errorf(err, SQ_ERR_IO, "%s: %s", path, strerror(errno));
    sq_status rc = SQ_OK;
    sq_sqm *m = sq_calloc(1, sizeof *m);
    if (!m) {
        fclose(f);
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    }
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        len = ftell(f);
    if (len < 0 || fseek(f, 0, SEEK_SET) != 0) {
        rc = sq_errorf(err, SQ_ERR_IO, "%s: cannot size the file", path);
        goto done;
    }
    m->size = (size_t)len;
    if (!(m->buf = sq_malloc(m->size ? m->size : 1))) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "%s: out of memory (%zu bytes)", path, m->size);
        goto done;
    }
    if (fread(m->buf, 1, m->size, f) != m->size) {
        rc = sq_errorf(err, SQ_ERR_IO, "%s: read failed", path);
        goto done;
    }
    const unsigned char *p = m->buf, *end = m->buf + m->size;
    if (m->size < 16 || memcmp(p, MAGIC, 4) != 0) {
        rc = sq_errorf(err, SQ_ERR_FORMAT, "%s: not a seqrec model file", path);
        goto done;
    }
    uint32_t ver = get_u32(p + 4);
    if (ver != SQ_SQM_VERSION) {
        rc = sq_errorf(err, SQ_ERR_FORMAT, "%s: model file version %u, this seqrec reads %u", path,
                       ver, SQ_SQM_VERSION);
        goto done;
    }
    if (sq_crc32(0, m->buf, m->size - 4) != get_u32(end - 4)) {
        rc = sq_errorf(err, SQ_ERR_FORMAT, "%s: checksum mismatch (truncated or corrupt)", path);
        goto done;
    }
    end -= 4;
    uint32_t hl = get_u32(p + 8);
    p += 12;
    if ((size_t)(end - p) < (size_t)hl + 4) {
        rc = sq_errorf(err, SQ_ERR_FORMAT, "%s: truncated header", path);
        goto done;
    }
    if ((rc = parse_header(m, path, (const char *)p, hl, err)))
        goto done;
    p += hl;
    uint32_t nt = get_u32(p);
    p += 4;
    if (nt > (size_t)(end - p) / 4) {
        rc = sq_errorf(err, SQ_ERR_FORMAT, "%s: bad tensor count %u", path, nt);
        goto done;
    }
    if (!(m->blobs = sq_calloc(nt ? nt : 1, sizeof *m->blobs))) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (uint32_t i = 0; i < nt; i++) {
        sq_blob *b = &m->blobs[i];
        if (end - p < 4)
            goto trunc;
        uint16_t nl = (uint16_t)(p[0] | p[1] << 8);
        if (nl == 0 || nl >= SQ_BLOB_NAME_MAX || end - p < 2 + nl + 2)
            goto trunc;
        memcpy(b->name, p + 2, nl);
        b->name[nl] = 0;
        p += 2 + nl;
        b->dtype = (sq_dtype)p[0];
        b->ndim = p[1];
        p += 2;
        if (!dtype_size(b->dtype) || b->ndim > 4 || end - p < 8 * b->ndim)
            goto trunc;
        uint64_t elems = 1;
        for (int d = 0; d < b->ndim; d++) {
            b->shape[d] = get_u64(p);
            p += 8;
            if (b->shape[d] && elems > UINT64_MAX / b->shape[d])
                goto trunc;
            elems *= b->shape[d];
        }
        size_t pad = (size_t)((8 - (size_t)(p - m->buf) % 8) % 8);
        if ((size_t)(end - p) < pad)
            goto trunc;
        p += pad;
        if (elems > (uint64_t)(end - p) / dtype_size(b->dtype))
            goto trunc;
        b->nbytes = elems * dtype_size(b->dtype);
        b->data = p;
        p += b->nbytes;
        m->n++;
    }
    if (p != end) {
        rc = sq_errorf(err, SQ_ERR_FORMAT, "%s: %zu unexpected bytes after the tensors", path,
                       (size_t)(end - p));
        goto done;
    }
    goto done;
trunc:
    rc = sq_errorf(err, SQ_ERR_FORMAT, "%s: tensor %zu is malformed or truncated", path, m->n);
done:
    fclose(f);
    if (rc)
        sq_sqm_close(m);
    else
        *out = m;
    return rc;
}

const sq_sqm_header *sq_sqm_header_of(const sq_sqm *m) {
    return &m->h;
}

size_t sq_sqm_count(const sq_sqm *m) {
    return m->n;
}

const sq_blob *sq_sqm_blob(const sq_sqm *m, size_t i) {
    return i < m->n ? &m->blobs[i] : NULL;
}

const sq_blob *sq_sqm_find(const sq_sqm *m, const char *name) {
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->blobs[i].name, name))
            return &m->blobs[i];
    return NULL;
}
