/* dataset.c — sq_data_open and every sq_data_* accessor: a .sqd file mapped read-only.
 *
 * Opening maps the whole file and checks it before anything is handed out: header (magic,
 * version, checksum, size), directory (alignment, bounds, order, checksums), the size of every
 * section against the counts, every string table, and every id, offset and time against the
 * invariants of sqd.h. A file that passes can be indexed without bounds checks by any code
 * that trusts the counts in sq_data_info; a file that fails is refused with SQ_ERR_FORMAT and a
 * message naming the file and the broken rule. Nothing in the bytes can make this code read
 * outside the mapping (the fuzz target fuzz/fuzz_sqd.c holds it to that).
 *
 * After open everything is immutable (the id → dense id hash indexes are built here too), so
 * a dataset is safe to share between reader threads without locks. */
#define _POSIX_C_SOURCE 200809L
#include "data/sqd.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A validated string table inside the mapping. */
typedef struct {
    uint64_t n;          /* strings */
    const uint64_t *off; /* n + 1 offsets into bytes */
    const char *bytes;   /* string k: bytes + off[k], NUL-terminated */
} strtab;

/* An open-addressing index external id → dense id over a strtab (slot: id + 1, 0 empty). */
typedef struct {
    uint32_t *slot; /* power-of-two table */
    size_t mask;    /* slots - 1 */
} idindex;

struct sq_dataset {
    void *map;                           /* the mapping */
    size_t size;                         /* its length */
    sq_data_info info;                   /* counts from the header */
    const uint64_t *off;                 /* CSR offsets, n_users + 1 */
    const uint32_t *items;               /* n_events */
    const int64_t *times;                /* n_events */
    const uint8_t *behs;                 /* n_events */
    const uint16_t *scenes;              /* n_events */
    const float *values;                 /* n_events */
    const uint32_t *ctx;                 /* n_events × n_ctx (NULL when n_ctx == 0) */
    const uint32_t *sessions;            /* n_events or NULL */
    const uint32_t *tag_off;             /* n_items + 1 */
    const uint32_t *tag_ids;             /* tag_off[n_items] */
    const float *item_num;               /* n_items × n_item_num (NULL when none) */
    const uint32_t *uattr;               /* n_users × n_user_attrs (NULL when none) */
    const float *ustats, *istats;        /* statistics rows */
    const char *meta;                    /* JSON text */
    strtab user_ids, item_ids;           /* external ids by dense id */
    strtab beh_names, scene_names;       /* vocabularies */
    strtab ctx_names;                    /* context field names */
    strtab ctx_values[SQD_MAX_FIELDS];   /* per context field */
    strtab tag_names;                    /* item tag vocabulary */
    strtab item_text;                    /* per item */
    strtab num_names;                    /* numeric item attribute names */
    strtab uattr_names;                  /* user attribute field names */
    strtab uattr_values[SQD_MAX_FIELDS]; /* per user attribute field */
    idindex user_index, item_index;      /* external id → dense id */
};

static const char *section_names[SQD_SEC_END] = {
    [SQD_SEC_USER_IDS] = "user ids",
    [SQD_SEC_ITEM_IDS] = "item ids",
    [SQD_SEC_BEHAVIOURS] = "behaviour names",
    [SQD_SEC_SCENES] = "scene names",
    [SQD_SEC_CTX_FIELDS] = "context field names",
    [SQD_SEC_CTX_VALUES] = "context values",
    [SQD_SEC_OFFSETS] = "user offsets",
    [SQD_SEC_ITEMS] = "items",
    [SQD_SEC_TIMES] = "times",
    [SQD_SEC_BEHS] = "behaviours",
    [SQD_SEC_SCENE_IDS] = "scenes",
    [SQD_SEC_VALUES] = "values",
    [SQD_SEC_CTX] = "context",
    [SQD_SEC_SESSIONS] = "sessions",
    [SQD_SEC_TAG_OFFSETS] = "tag offsets",
    [SQD_SEC_TAG_IDS] = "item tags",
    [SQD_SEC_TAG_NAMES] = "tag names",
    [SQD_SEC_ITEM_TEXT] = "item text",
    [SQD_SEC_ITEM_NUM] = "item numeric attributes",
    [SQD_SEC_ITEM_NUM_NAMES] = "item numeric attribute names",
    [SQD_SEC_USER_ATTRS] = "user attributes",
    [SQD_SEC_USER_ATTR_NAMES] = "user attribute names",
    [SQD_SEC_USER_ATTR_VALUES] = "user attribute values",
    [SQD_SEC_USER_STATS] = "user statistics",
    [SQD_SEC_ITEM_STATS] = "item statistics",
    [SQD_SEC_META] = "meta",
};

/* ====================================== Validation ======================================== */

/* Where each known section is, while opening. */
typedef struct {
    const sqd_dirent *main[SQD_SEC_END];            /* index 0 entry of each kind */
    const sqd_dirent *ctx_values[SQD_MAX_FIELDS];   /* per field */
    const sqd_dirent *uattr_values[SQD_MAX_FIELDS]; /* per field */
} sections;

#define BAD(...) return sq_errorf(err, SQ_ERR_FORMAT, __VA_ARGS__)

static const unsigned char *at(const sq_dataset *d, const sqd_dirent *e) {
    return (const unsigned char *)d->map + e->offset;
}

/* Checks a strtab section; want: the count it must hold, or UINT64_MAX for any. */
static sq_status check_strtab(const sq_dataset *d, const char *path, const sqd_dirent *e,
                              uint64_t want, const char *what, strtab *t, sq_error *err) {
    if (!e)
        BAD("%s: corrupt: %s section missing", path, what);
    const unsigned char *p = at(d, e);
    uint64_t size = e->size, n;
    if (size < 16)
        BAD("%s: corrupt: %s: string table of %llu bytes", path, what, (unsigned long long)size);
    memcpy(&n, p, sizeof n);
    if (n > (size - 16) / 8)
        BAD("%s: corrupt: %s: %llu strings do not fit", path, what, (unsigned long long)n);
    if (want != UINT64_MAX && n != want)
        BAD("%s: corrupt: %s: %llu strings, expected %llu", path, what, (unsigned long long)n,
            (unsigned long long)want);
    const uint64_t *off = (const uint64_t *)(p + 8);
    const char *bytes = (const char *)(p + 16 + 8 * n);
    uint64_t blen = size - 16 - 8 * n;
    if (off[0] != 0 || off[n] != blen)
        BAD("%s: corrupt: %s: string offsets do not span the table", path, what);
    for (uint64_t k = 0; k < n; k++)
        if (off[k + 1] <= off[k] || off[k + 1] > blen || bytes[off[k + 1] - 1] != 0)
            BAD("%s: corrupt: %s: string %llu is malformed", path, what, (unsigned long long)k);
    t->n = n;
    t->off = off;
    t->bytes = bytes;
    return SQ_OK;
}

/* Checks that a fixed-size section is present with exactly `want` bytes; returns its data. */
static sq_status check_array(const sq_dataset *d, const char *path, const sections *s,
                             sqd_section_id id, uint64_t want, const void **out, sq_error *err) {
    const sqd_dirent *e = s->main[id];
    if (!e)
        BAD("%s: corrupt: %s section missing", path, section_names[id]);
    if (e->size != want)
        BAD("%s: corrupt: %s section is %llu bytes, expected %llu", path, section_names[id],
            (unsigned long long)e->size, (unsigned long long)want);
    *out = at(d, e);
    return SQ_OK;
}

static sq_status check_header(sq_dataset *d, const char *path, sq_error *err) {
    sqd_header h;
    if (d->size < sizeof h)
        BAD("%s: not a seqrec dataset (%zu bytes, shorter than a header)", path, d->size);
    memcpy(&h, d->map, sizeof h);
    if (memcmp(h.magic, SQD_MAGIC, SQD_MAGIC_LEN) != 0)
        BAD("%s: not a seqrec dataset (bad magic)", path);
    if (h.version != SQD_VERSION)
        BAD("%s: dataset format version %u, this seqrec reads %u", path, h.version, SQD_VERSION);
    if (h.header_size != sizeof h)
        BAD("%s: corrupt: header size %u, expected %zu", path, h.header_size, sizeof h);
    if (sq_crc32(0, &h, offsetof(sqd_header, header_crc)) != h.header_crc)
        BAD("%s: corrupt: header checksum mismatch", path);
    if (h.file_size != d->size)
        BAD("%s: corrupt: header says %llu bytes, the file has %zu (truncated or extended)", path,
            (unsigned long long)h.file_size, d->size);
    for (size_t k = 0; k < sizeof h.reserved / sizeof *h.reserved; k++)
        if (h.reserved[k])
            BAD("%s: corrupt: reserved header field is not zero", path);
    if (h.n_events == 0 || h.n_events >= UINT32_MAX || h.n_users == 0 || h.n_items == 0 ||
        h.n_users > h.n_events || h.n_behaviours == 0 || h.n_behaviours > 255 || h.n_scenes == 0 ||
        h.n_scenes > 65536 || h.n_ctx > SQD_MAX_FIELDS || h.n_user_attrs > SQD_MAX_FIELDS ||
        h.n_item_num > SQD_MAX_ITEM_NUM)
        BAD("%s: corrupt: counts out of range (events %llu, users %u, items %u, behaviours %u, "
            "scenes %u, context fields %u)",
            path, (unsigned long long)h.n_events, h.n_users, h.n_items, h.n_behaviours, h.n_scenes,
            h.n_ctx);
    if (h.flags & ~(uint32_t)(SQ_DATA_REAL_TIME | SQ_DATA_VALUES | SQ_DATA_SESSIONS))
        BAD("%s: corrupt: unknown flags 0x%x", path, h.flags);
    if (h.time_min > h.time_max)
        BAD("%s: corrupt: time range is reversed", path);
    if (h.n_sections > SQD_MAX_SECTIONS ||
        sizeof h + (uint64_t)h.n_sections * sizeof(sqd_dirent) > d->size)
        BAD("%s: corrupt: %u sections do not fit", path, h.n_sections);
    const sqd_dirent *dir = (const sqd_dirent *)((const unsigned char *)d->map + sizeof h);
    if (sq_crc32(0, dir, (size_t)h.n_sections * sizeof *dir) != h.dir_crc)
        BAD("%s: corrupt: section directory checksum mismatch", path);
    if (sqd_fingerprint(&h, dir, h.n_sections) != h.fingerprint)
        BAD("%s: corrupt: fingerprint does not match the contents", path);
    d->info.n_events = h.n_events;
    d->info.n_users = h.n_users;
    d->info.n_items = h.n_items;
    d->info.n_behaviours = h.n_behaviours;
    d->info.n_scenes = h.n_scenes;
    d->info.n_ctx = h.n_ctx;
    d->info.n_tags = h.n_tags;
    d->info.n_item_num = h.n_item_num;
    d->info.n_user_attrs = h.n_user_attrs;
    d->info.flags = h.flags;
    d->info.time_min = h.time_min;
    d->info.time_max = h.time_max;
    d->info.fingerprint = h.fingerprint;
    return SQ_OK;
}

static sq_status check_directory(const sq_dataset *d, const char *path, sections *s,
                                 sq_error *err) {
    sqd_header h;
    memcpy(&h, d->map, sizeof h);
    const sqd_dirent *dir = (const sqd_dirent *)((const unsigned char *)d->map + sizeof h);
    uint64_t end = sizeof h + (uint64_t)h.n_sections * sizeof *dir; /* end of what came before */
    memset(s, 0, sizeof *s);
    for (uint32_t k = 0; k < h.n_sections; k++) {
        const sqd_dirent *e = &dir[k];
        const char *name =
            e->id > 0 && e->id < SQD_SEC_END ? section_names[e->id] : "unknown section";
        if (e->reserved)
            BAD("%s: corrupt: directory entry %u: reserved field is not zero", path, k);
        if (e->offset % SQD_ALIGN)
            BAD("%s: corrupt: %s section is not %d-byte aligned", path, name, SQD_ALIGN);
        if (e->offset < end)
            BAD("%s: corrupt: %s section overlaps what precedes it", path, name);
        if (e->offset > d->size || e->size > d->size - e->offset)
            BAD("%s: corrupt: %s section runs past the end of the file", path, name);
        end = e->offset + e->size;
        if (sq_crc32(0, at(d, e), (size_t)e->size) != e->crc)
            BAD("%s: corrupt: %s section checksum mismatch", path, name);
        if (e->id == 0 || e->id >= SQD_SEC_END)
            continue; /* invariant 4: unknown kinds are skipped */
        const sqd_dirent **slot;
        if (e->id == SQD_SEC_CTX_VALUES || e->id == SQD_SEC_USER_ATTR_VALUES) {
            uint32_t nf = e->id == SQD_SEC_CTX_VALUES ? h.n_ctx : h.n_user_attrs;
            if (e->index >= nf)
                BAD("%s: corrupt: %s section for field %u of %u", path, name, e->index, nf);
            slot =
                e->id == SQD_SEC_CTX_VALUES ? &s->ctx_values[e->index] : &s->uattr_values[e->index];
        } else {
            if (e->index != 0)
                BAD("%s: corrupt: %s section has index %u", path, name, e->index);
            slot = &s->main[e->id];
        }
        if (*slot)
            BAD("%s: corrupt: %s section appears twice", path, name);
        *slot = e;
    }
    return SQ_OK;
}

/* Sections → pointers, with exact sizes (invariants 7, 8). */
static sq_status map_sections(sq_dataset *d, const char *path, const sections *s, sq_error *err) {
    const sq_data_info *in = &d->info;
    uint64_t n = in->n_events, nu = in->n_users, ni = in->n_items, nb = in->n_behaviours;
    sq_status rc;
    const void *p;
#define ARRAY(id, bytes, dst)                                                                      \
    do {                                                                                           \
        if ((rc = check_array(d, path, s, id, bytes, &p, err)))                                    \
            return rc;                                                                             \
        dst = p;                                                                                   \
    } while (0)
#define STRTAB(e, want, what, dst)                                                                 \
    do {                                                                                           \
        if ((rc = check_strtab(d, path, e, want, what, dst, err)))                                 \
            return rc;                                                                             \
    } while (0)
    STRTAB(s->main[SQD_SEC_USER_IDS], nu, "user ids", &d->user_ids);
    STRTAB(s->main[SQD_SEC_ITEM_IDS], ni, "item ids", &d->item_ids);
    STRTAB(s->main[SQD_SEC_BEHAVIOURS], nb, "behaviour names", &d->beh_names);
    STRTAB(s->main[SQD_SEC_SCENES], in->n_scenes, "scene names", &d->scene_names);
    STRTAB(s->main[SQD_SEC_CTX_FIELDS], in->n_ctx, "context field names", &d->ctx_names);
    for (uint32_t f = 0; f < in->n_ctx; f++)
        STRTAB(s->ctx_values[f], UINT64_MAX, "context values", &d->ctx_values[f]);
    STRTAB(s->main[SQD_SEC_TAG_NAMES], in->n_tags, "tag names", &d->tag_names);
    STRTAB(s->main[SQD_SEC_ITEM_TEXT], ni, "item text", &d->item_text);
    STRTAB(s->main[SQD_SEC_ITEM_NUM_NAMES], in->n_item_num, "item numeric attribute names",
           &d->num_names);
    STRTAB(s->main[SQD_SEC_USER_ATTR_NAMES], in->n_user_attrs, "user attribute names",
           &d->uattr_names);
    for (uint32_t f = 0; f < in->n_user_attrs; f++)
        STRTAB(s->uattr_values[f], UINT64_MAX, "user attribute values", &d->uattr_values[f]);

    /* n < 2^32 (checked with the header), so no product below overflows. */
    ARRAY(SQD_SEC_OFFSETS, (nu + 1) * 8, d->off);
    ARRAY(SQD_SEC_ITEMS, n * 4, d->items);
    ARRAY(SQD_SEC_TIMES, n * 8, d->times);
    ARRAY(SQD_SEC_BEHS, n, d->behs);
    ARRAY(SQD_SEC_SCENE_IDS, n * 2, d->scenes);
    ARRAY(SQD_SEC_VALUES, n * 4, d->values);
    ARRAY(SQD_SEC_CTX, n * in->n_ctx * 4, d->ctx);
    if (in->flags & SQ_DATA_SESSIONS)
        ARRAY(SQD_SEC_SESSIONS, n * 4, d->sessions);
    else if (s->main[SQD_SEC_SESSIONS])
        BAD("%s: corrupt: sessions section without the sessions flag", path);
    ARRAY(SQD_SEC_TAG_OFFSETS, (ni + 1) * 4, d->tag_off);
    uint64_t ntag = d->tag_off[ni];
    ARRAY(SQD_SEC_TAG_IDS, ntag * 4, d->tag_ids);
    ARRAY(SQD_SEC_ITEM_NUM, ni * in->n_item_num * 4, d->item_num);
    ARRAY(SQD_SEC_USER_ATTRS, nu * in->n_user_attrs * 4, d->uattr);
    ARRAY(SQD_SEC_USER_STATS, nu * (SQ_USTAT_FIXED + nb) * 4, d->ustats);
    ARRAY(SQD_SEC_ITEM_STATS, ni * (SQ_ISTAT_FIXED + nb) * 4, d->istats);
    const char *meta;
    ARRAY(SQD_SEC_META, s->main[SQD_SEC_META] ? s->main[SQD_SEC_META]->size : 0, meta);
    if (s->main[SQD_SEC_META]->size == 0 || meta[s->main[SQD_SEC_META]->size - 1] != 0)
        BAD("%s: corrupt: meta section is not NUL-terminated", path);
    d->meta = meta;
    if (in->n_ctx == 0)
        d->ctx = NULL;
    if (in->n_item_num == 0)
        d->item_num = NULL;
    if (in->n_user_attrs == 0)
        d->uattr = NULL;
#undef ARRAY
#undef STRTAB
    return SQ_OK;
}

/* Offsets, ids, times and sessions (invariants 9–12). */
static sq_status check_content(const sq_dataset *d, const char *path, sq_error *err) {
    const sq_data_info *in = &d->info;
    uint64_t n = in->n_events;
    if (d->off[0] != 0 || d->off[in->n_users] != n)
        BAD("%s: corrupt: user offsets do not span the %llu events", path, (unsigned long long)n);
    int have_min = 0, have_max = 0;
    for (uint32_t u = 0; u < in->n_users; u++) {
        uint64_t lo = d->off[u], hi = d->off[u + 1];
        if (hi <= lo || hi > n)
            BAD("%s: corrupt: user %u has offsets %llu..%llu", path, u, (unsigned long long)lo,
                (unsigned long long)hi);
        for (uint64_t k = lo; k < hi; k++) {
            int64_t t = d->times[k];
            if (t < in->time_min || t > in->time_max)
                BAD("%s: corrupt: event %llu: time outside the header's range", path,
                    (unsigned long long)k);
            have_min |= t == in->time_min;
            have_max |= t == in->time_max;
            if (k > lo && t < d->times[k - 1])
                BAD("%s: corrupt: user %u: times are not in order at event %llu", path, u,
                    (unsigned long long)k);
            if (d->sessions) {
                uint32_t sv = d->sessions[k];
                if (k == lo ? sv != 0 : (sv != d->sessions[k - 1] && sv != d->sessions[k - 1] + 1))
                    BAD("%s: corrupt: user %u: session numbers skip at event %llu", path, u,
                        (unsigned long long)k);
            }
        }
    }
    if (!have_min || !have_max)
        BAD("%s: corrupt: time range in the header is not reached", path);
    for (uint64_t k = 0; k < n; k++)
        if (d->items[k] >= in->n_items || d->behs[k] >= in->n_behaviours ||
            d->scenes[k] >= in->n_scenes)
            BAD("%s: corrupt: event %llu: item, behaviour or scene id out of range", path,
                (unsigned long long)k);
    for (uint64_t k = 0; k < n && in->n_ctx; k++)
        for (uint32_t f = 0; f < in->n_ctx; f++)
            if (d->ctx[k * in->n_ctx + f] >= d->ctx_values[f].n)
                BAD("%s: corrupt: event %llu: context field %u value out of range", path,
                    (unsigned long long)k, f);
    if (d->tag_off[0] != 0)
        BAD("%s: corrupt: tag offsets do not start at 0", path);
    for (uint32_t i = 0; i < in->n_items; i++)
        if (d->tag_off[i + 1] < d->tag_off[i])
            BAD("%s: corrupt: tag offsets decrease at item %u", path, i);
    for (uint32_t k = 0; k < d->tag_off[in->n_items]; k++)
        if (d->tag_ids[k] >= in->n_tags)
            BAD("%s: corrupt: tag id out of range", path);
    for (uint64_t u = 0; u < in->n_users && in->n_user_attrs; u++)
        for (uint32_t f = 0; f < in->n_user_attrs; f++) {
            uint32_t v = d->uattr[u * in->n_user_attrs + f];
            if (v != UINT32_MAX && v >= d->uattr_values[f].n)
                BAD("%s: corrupt: user %llu: attribute %u value out of range", path,
                    (unsigned long long)u, f);
        }
    return SQ_OK;
}
#undef BAD

/* ====================================== Id indexes ======================================== */

static const char *tab_get(const strtab *t, uint64_t k, size_t *len) {
    if (k >= t->n)
        return NULL;
    if (len)
        *len = (size_t)(t->off[k + 1] - t->off[k] - 1);
    return t->bytes + t->off[k];
}

static sq_status index_build(idindex *x, const strtab *t) {
    size_t slots = 16;
    while (slots < 2 * t->n)
        slots *= 2;
    if (!(x->slot = sq_calloc(slots, sizeof *x->slot)))
        return SQ_ERR_NOMEM;
    x->mask = slots - 1;
    for (uint64_t k = 0; k < t->n; k++) {
        size_t len;
        const char *s = tab_get(t, k, &len);
        size_t i = (size_t)sq_hash64(s, len) & x->mask;
        for (;;) {
            uint32_t v = x->slot[i];
            if (v == 0) {
                x->slot[i] = (uint32_t)k + 1;
                break;
            }
            size_t l2 = 0;
            const char *s2 = tab_get(t, v - 1, &l2);
            if (l2 == len && memcmp(s2, s, len) == 0)
                break; /* a repeated id (only in a hand-made file): the first one wins */
            i = (i + 1) & x->mask;
        }
    }
    return SQ_OK;
}

static uint32_t index_find(const idindex *x, const strtab *t, const char *id, size_t len) {
    if (!x->slot || !id)
        return UINT32_MAX;
    size_t i = (size_t)sq_hash64(id, len) & x->mask;
    for (;;) {
        uint32_t v = x->slot[i];
        if (v == 0)
            return UINT32_MAX;
        size_t l2 = 0;
        const char *s2 = tab_get(t, v - 1, &l2);
        if (l2 == len && memcmp(s2, id, len) == 0)
            return v - 1;
        i = (i + 1) & x->mask;
    }
}

/* ======================================= Open/close ======================================= */

sq_status sq_data_open(sq_dataset **out, const char *path, sq_error *err) {
    *out = NULL;
    sq_dataset *d = sq_calloc(1, sizeof *d);
    if (!d)
        return sq_errorf(err, SQ_ERR_NOMEM, "%s: out of memory", path);
    sq_status rc = SQ_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        rc = sq_errorf(err, SQ_ERR_IO, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (fstat(fd, &st) != 0) {
        rc = sq_errorf(err, SQ_ERR_IO, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = sq_errorf(err, SQ_ERR_IO, "%s: not a regular file", path);
        goto fail;
    }
    if (st.st_size < (off_t)sizeof(sqd_header)) {
        rc = sq_errorf(err, SQ_ERR_FORMAT, "%s: not a seqrec dataset (%lld bytes)", path,
                       (long long)st.st_size);
        goto fail;
    }
    d->size = (size_t)st.st_size;
    void *m = mmap(NULL, d->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
        rc = sq_errorf(err, SQ_ERR_IO, "%s: mmap: %s", path, strerror(errno));
        goto fail;
    }
    d->map = m;
    close(fd);
    fd = -1;
    sections s;
    if ((rc = check_header(d, path, err)) || (rc = check_directory(d, path, &s, err)) ||
        (rc = map_sections(d, path, &s, err)) || (rc = check_content(d, path, err)))
        goto fail;
    if (index_build(&d->user_index, &d->user_ids) || index_build(&d->item_index, &d->item_ids)) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "%s: out of memory indexing ids", path);
        goto fail;
    }
    *out = d;
    return SQ_OK;
fail:
    if (fd >= 0)
        close(fd);
    sq_data_close(d);
    return rc;
}

void sq_data_close(sq_dataset *d) {
    if (!d)
        return;
    if (d->map)
        munmap(d->map, d->size);
    sq_free(d->user_index.slot);
    sq_free(d->item_index.slot);
    sq_free(d);
}

/* ======================================== Accessors ======================================= */

const sq_data_info *sq_data_info_of(const sq_dataset *d) {
    return &d->info;
}
const uint64_t *sq_data_offsets(const sq_dataset *d) {
    return d->off;
}
const uint32_t *sq_data_items(const sq_dataset *d) {
    return d->items;
}
const int64_t *sq_data_times(const sq_dataset *d) {
    return d->times;
}
const uint8_t *sq_data_behaviours(const sq_dataset *d) {
    return d->behs;
}
const uint16_t *sq_data_scenes(const sq_dataset *d) {
    return d->scenes;
}
const float *sq_data_values(const sq_dataset *d) {
    return d->values;
}
const uint32_t *sq_data_context(const sq_dataset *d) {
    return d->ctx;
}
const uint32_t *sq_data_sessions(const sq_dataset *d) {
    return d->sessions;
}

const char *sq_data_user_id(const sq_dataset *d, uint32_t u, size_t *len) {
    return tab_get(&d->user_ids, u, len);
}
const char *sq_data_item_id(const sq_dataset *d, uint32_t i, size_t *len) {
    return tab_get(&d->item_ids, i, len);
}
const char *sq_data_behaviour_name(const sq_dataset *d, uint32_t b) {
    return tab_get(&d->beh_names, b, NULL);
}
const char *sq_data_scene_name(const sq_dataset *d, uint32_t s) {
    return tab_get(&d->scene_names, s, NULL);
}
const char *sq_data_ctx_name(const sq_dataset *d, uint32_t field) {
    return tab_get(&d->ctx_names, field, NULL);
}
uint32_t sq_data_ctx_size(const sq_dataset *d, uint32_t field) {
    return field < d->info.n_ctx ? (uint32_t)d->ctx_values[field].n : 0;
}
const char *sq_data_ctx_value(const sq_dataset *d, uint32_t field, uint32_t v) {
    return field < d->info.n_ctx ? tab_get(&d->ctx_values[field], v, NULL) : NULL;
}

uint32_t sq_data_find_user(const sq_dataset *d, const char *id, size_t len) {
    return index_find(&d->user_index, &d->user_ids, id, len);
}
uint32_t sq_data_find_item(const sq_dataset *d, const char *id, size_t len) {
    return index_find(&d->item_index, &d->item_ids, id, len);
}
uint32_t sq_data_find_behaviour(const sq_dataset *d, const char *name) {
    if (!name)
        return UINT32_MAX;
    for (uint32_t b = 0; b < d->beh_names.n; b++)
        if (strcmp(tab_get(&d->beh_names, b, NULL), name) == 0)
            return b;
    return UINT32_MAX;
}

const uint32_t *sq_data_item_tags(const sq_dataset *d, uint32_t item, uint32_t *n) {
    if (item >= d->info.n_items) {
        if (n)
            *n = 0;
        return NULL;
    }
    if (n)
        *n = d->tag_off[item + 1] - d->tag_off[item];
    return d->tag_ids + d->tag_off[item];
}
const char *sq_data_tag_name(const sq_dataset *d, uint32_t tag) {
    return tab_get(&d->tag_names, tag, NULL);
}
const char *sq_data_item_text(const sq_dataset *d, uint32_t item, size_t *len) {
    return tab_get(&d->item_text, item, len);
}
const float *sq_data_item_num(const sq_dataset *d) {
    return d->item_num;
}
const char *sq_data_item_num_name(const sq_dataset *d, uint32_t k) {
    return tab_get(&d->num_names, k, NULL);
}

const uint32_t *sq_data_user_attrs(const sq_dataset *d) {
    return d->uattr;
}
const char *sq_data_user_attr_name(const sq_dataset *d, uint32_t field) {
    return tab_get(&d->uattr_names, field, NULL);
}
uint32_t sq_data_user_attr_size(const sq_dataset *d, uint32_t field) {
    return field < d->info.n_user_attrs ? (uint32_t)d->uattr_values[field].n : 0;
}
const char *sq_data_user_attr_value(const sq_dataset *d, uint32_t field, uint32_t v) {
    return field < d->info.n_user_attrs ? tab_get(&d->uattr_values[field], v, NULL) : NULL;
}
sq_status sq_data_user_attr_find(const sq_dataset *d, const char *field, size_t flen,
                                 const char *value, size_t vlen, uint32_t *k, uint32_t *v,
                                 sq_error *err) {
    const uint32_t na = d->info.n_user_attrs;
    uint32_t f = 0;
    while (f < na && (strlen(sq_data_user_attr_name(d, f)) != flen ||
                      memcmp(sq_data_user_attr_name(d, f), field, flen)))
        f++;
    if (f == na)
        return sq_errorf(err, SQ_ERR_NOTFOUND, "the dataset has no user attribute '%.*s'",
                         (int)(flen > 64 ? 64 : flen), field);
    const uint32_t size = sq_data_user_attr_size(d, f);
    uint32_t x = 0;
    while (x < size && (strlen(sq_data_user_attr_value(d, f, x)) != vlen ||
                        memcmp(sq_data_user_attr_value(d, f, x), value, vlen)))
        x++;
    if (x == size)
        return sq_errorf(err, SQ_ERR_NOTFOUND, "'%.*s' is not a value of '%s' in the data",
                         (int)(vlen > 64 ? 64 : vlen), value, sq_data_user_attr_name(d, f));
    *k = f;
    *v = x;
    return SQ_OK;
}

const float *sq_data_user_stats(const sq_dataset *d) {
    return d->ustats;
}
const float *sq_data_item_stats(const sq_dataset *d) {
    return d->istats;
}
const char *sq_data_meta_json(const sq_dataset *d) {
    return d->meta;
}
