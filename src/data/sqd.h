/* sqd.h — the .sqd dataset file format (internal to src/data; docs/sqd-format.md is the prose
 * version for people writing other readers).
 *
 * A .sqd file is one fixed header, a section directory, and sections. Every array a model
 * reads (CSR offsets, items, times, behaviours…) is a section stored exactly as it is used in
 * memory, so sq_data_open mmaps the file and hands out pointers into it: nothing is parsed at
 * train time. Writer: sqd_write.c (low level) driven by write.c. Reader: dataset.c.
 *
 *   offset 0          sqd_header (128 bytes)
 *   offset 128        sqd_dirent[n_sections] (32 bytes each)
 *   64-aligned        section 0 bytes, zero padding, section 1 bytes, … (directory order)
 *
 * All integers and floats are little-endian (the native order of every machine we build for;
 * a big-endian build refuses to compile rather than misread). Floats are IEEE-754 binary32.
 *
 * A string table ("strtab") is one section laid out as
 *   u64 count; u64 off[count + 1]; char bytes[off[count]];
 * string k is bytes[off[k] .. off[k+1] - 1), and bytes[off[k+1] - 1] is its NUL terminator, so
 * a string can be handed out in place as a C string (it may hold inner NULs: use its length).
 *
 * Invariants (sq_data_open checks every one and rejects the file with SQ_ERR_FORMAT naming the
 * file and the broken rule; nothing in a file can make the reader crash):
 *  1. The file starts with SQD_MAGIC; header.version == SQD_VERSION (another version is refused
 *     with "version N, this seqrec reads M"); header.header_size == sizeof(sqd_header).
 *  2. header.header_crc == crc32 of the header's first 124 bytes; header.file_size is the
 *     file's size (a truncated or extended file is refused); header.reserved is all zero.
 *  3. The directory (n_sections ≤ SQD_MAX_SECTIONS entries) follows the header and
 *     header.dir_crc == crc32 of its bytes.
 *  4. Every section starts at a multiple of SQD_ALIGN at or after the directory's end, lies
 *     inside the file, and sections appear in the directory in increasing, non-overlapping
 *     offset order. No (id, index) pair appears twice; index is 0 except for the per-field
 *     tables (SQD_SEC_CTX_VALUES, SQD_SEC_USER_ATTR_VALUES), where it is the field (< the field
 *     count). Section ids the reader does not know are skipped.
 *  5. dirent.crc == crc32 of the section's bytes.
 *  6. Counts: 1 ≤ n_events < 2^32 − 1, 1 ≤ n_users ≤ n_events, n_items ≥ 1,
 *     1 ≤ n_behaviours ≤ 255, 1 ≤ n_scenes ≤ 65536, n_ctx ≤ SQD_MAX_FIELDS,
 *     n_user_attrs ≤ SQD_MAX_FIELDS, n_item_num ≤ SQD_MAX_ITEM_NUM; only SQ_DATA_* flags;
 *     time_min ≤ time_max.
 *  7. Every required section is present with exactly the size its counts give (see
 *     sqd_section_id); SQD_SEC_SESSIONS is present iff flags has SQ_DATA_SESSIONS.
 *  8. Every strtab is well formed: off[0] == 0, each string ends with a NUL inside its table,
 *     off[count] is the end of the section; count equals the header count where there is one.
 *  9. CSR offsets: off[0] == 0, off[u] < off[u + 1] (every user has at least one event),
 *     off[n_users] == n_events. Tag offsets: tag_off[0] == 0, non-decreasing, and
 *     tag_off[n_items] is the number of tag ids.
 * 10. Ids are in range: item < n_items, behaviour < n_behaviours, scene < n_scenes, context
 *     value < that field's value count, tag id < n_tags, user attribute < that field's value
 *     count or UINT32_MAX (missing).
 * 11. Within a user, times are non-decreasing (ties keep input order), and every time lies in
 *     [time_min, time_max], both of which are reached by some event.
 * 12. Sessions: a user's first event is session 0 and each next event has the same session
 *     number or the next one.
 * 13. The meta section is NUL-terminated (JSON text, not parsed at open).
 * 14. header.fingerprint == sqd_fingerprint(header, directory): a hash of the counts and of
 *     (id, index, size, crc) of every section but the meta one, so it changes whenever the
 *     events, ids or side information change, and not when only provenance (paths) does.
 */
#ifndef SEQREC_DATA_SQD_H
#define SEQREC_DATA_SQD_H

#include "seqrec/data.h"

#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error ".sqd files are little-endian and used in place: big-endian hosts are not supported"
#endif

#define SQD_MAGIC "SQD\0\r\n\x1a\n" /* "SQD\0" then bytes that catch text-mode mangling */
enum {
    SQD_MAGIC_LEN = 8,
    SQD_VERSION = 1,
    SQD_ALIGN = 64,        /* section alignment: a cache line, more than any element needs */
    SQD_MAX_SECTIONS = 96, /* 26 fixed kinds + 2 × 16 per-field tables fit with room */
    SQD_MAX_FIELDS = 16,   /* context fields, user attribute fields (= SQ_MAX_CTX) */
    SQD_MAX_ITEM_NUM = 4   /* numeric item attributes (= SQ_MAX_ITEM_NUM) */
};

/* The fixed header at offset 0 (128 bytes, no padding). */
typedef struct {
    uint8_t magic[SQD_MAGIC_LEN]; /* SQD_MAGIC */
    uint32_t version;             /* SQD_VERSION */
    uint32_t header_size;         /* sizeof(sqd_header): lets a reader of another version skip */
    uint64_t file_size;           /* bytes in the whole file */
    uint64_t n_events;            /* events kept */
    uint32_t n_users;             /* users (dense ids 0..n_users-1) */
    uint32_t n_items;             /* items (dense ids 0..n_items-1) */
    uint32_t n_behaviours;        /* behaviour vocabulary */
    uint32_t n_scenes;            /* scene vocabulary ("" is scene 0) */
    uint32_t n_ctx;               /* context fields per event */
    uint32_t n_tags;              /* item tag vocabulary */
    uint32_t n_item_num;          /* numeric item attributes */
    uint32_t n_user_attrs;        /* categorical user attribute fields */
    uint32_t flags;               /* SQ_DATA_* */
    uint32_t n_sections;          /* directory entries */
    int64_t time_min;             /* smallest event time */
    int64_t time_max;             /* largest event time */
    uint64_t fingerprint;         /* invariant 14 */
    uint32_t dir_crc;             /* crc32 of the directory */
    uint32_t reserved[6];         /* zero */
    uint32_t header_crc;          /* crc32 of the 124 bytes before this field */
} sqd_header;

/* One directory entry (32 bytes). */
typedef struct {
    uint32_t id;       /* sqd_section_id */
    uint32_t index;    /* field number for per-field tables, else 0 */
    uint64_t offset;   /* from the start of the file, multiple of SQD_ALIGN */
    uint64_t size;     /* bytes, without the padding that follows */
    uint32_t crc;      /* crc32 of the section's bytes */
    uint32_t reserved; /* zero */
} sqd_dirent;

_Static_assert(sizeof(sqd_header) == 128, "sqd_header must be 128 bytes");
_Static_assert(sizeof(sqd_dirent) == 32, "sqd_dirent must be 32 bytes");

/* Section kinds. "N" is n_events, "U" n_users, "I" n_items, "B" n_behaviours. */
typedef enum {
    SQD_SEC_USER_IDS = 1,          /* strtab, U external user ids by dense id */
    SQD_SEC_ITEM_IDS = 2,          /* strtab, I external item ids by dense id */
    SQD_SEC_BEHAVIOURS = 3,        /* strtab, n_behaviours names */
    SQD_SEC_SCENES = 4,            /* strtab, n_scenes names */
    SQD_SEC_CTX_FIELDS = 5,        /* strtab, n_ctx field names */
    SQD_SEC_CTX_VALUES = 6,        /* strtab per field (index = field): its value names */
    SQD_SEC_OFFSETS = 7,           /* u64[U + 1] CSR offsets */
    SQD_SEC_ITEMS = 8,             /* u32[N] */
    SQD_SEC_TIMES = 9,             /* i64[N] UTC seconds or file order */
    SQD_SEC_BEHS = 10,             /* u8[N] */
    SQD_SEC_SCENE_IDS = 11,        /* u16[N] */
    SQD_SEC_VALUES = 12,           /* f32[N], NaN where none */
    SQD_SEC_CTX = 13,              /* u32[N × n_ctx] row-major */
    SQD_SEC_SESSIONS = 14,         /* u32[N], only with SQ_DATA_SESSIONS */
    SQD_SEC_TAG_OFFSETS = 15,      /* u32[I + 1] CSR into the tag ids */
    SQD_SEC_TAG_IDS = 16,          /* u32[tag_off[I]] */
    SQD_SEC_TAG_NAMES = 17,        /* strtab, n_tags */
    SQD_SEC_ITEM_TEXT = 18,        /* strtab, I texts ("" when none) */
    SQD_SEC_ITEM_NUM = 19,         /* f32[I × n_item_num], NaN missing */
    SQD_SEC_ITEM_NUM_NAMES = 20,   /* strtab, n_item_num */
    SQD_SEC_USER_ATTRS = 21,       /* u32[U × n_user_attrs], UINT32_MAX missing */
    SQD_SEC_USER_ATTR_NAMES = 22,  /* strtab, n_user_attrs */
    SQD_SEC_USER_ATTR_VALUES = 23, /* strtab per field (index = field) */
    SQD_SEC_USER_STATS = 24,       /* f32[U × (SQ_USTAT_FIXED + B)] */
    SQD_SEC_ITEM_STATS = 25,       /* f32[I × (SQ_ISTAT_FIXED + B)] */
    SQD_SEC_META = 26,             /* JSON text + NUL: report, inputs, options */
    SQD_SEC_END
} sqd_section_id;

/* Fingerprint of a dataset from its header counts and directory (invariant 14). */
uint64_t sqd_fingerprint(const sqd_header *h, const sqd_dirent *dir, uint32_t n);

/* ---- sqd_write.c: sequential writer over a FILE (the sq_afile stream) ----
 *
 * sqd_w_open reserves room for the header and the announced directory; each section is written
 * between sqd_w_begin and sqd_w_end (which pad to SQD_ALIGN and record offset, size and crc);
 * sqd_w_finish fills in file_size, n_sections, dir_crc, fingerprint and header_crc, then writes
 * header and directory at offset 0. Write errors are sticky: they surface at finish. */
typedef struct {
    FILE *f;                          /* output stream (not owned) */
    uint64_t pos;                     /* bytes written so far */
    sqd_dirent dir[SQD_MAX_SECTIONS]; /* entries so far */
    uint32_t n;                       /* entries used */
    uint32_t planned;                 /* entries announced to sqd_w_open */
    int open;                         /* a section is being written */
    int failed;                       /* a write failed (errno kept in err_no) */
    int err_no;                       /* errno of the first failure */
    unsigned char buf[1 << 16];       /* staging buffer for small puts */
    size_t used;                      /* bytes staged in buf */
} sqd_writer;

/* n_sections: exactly how many sections will be written (the directory's room). */
void sqd_w_open(sqd_writer *w, FILE *f, uint32_t n_sections);
void sqd_w_begin(sqd_writer *w, sqd_section_id id, uint32_t index);
void sqd_w_put(sqd_writer *w, const void *p, size_t n);
void sqd_w_end(sqd_writer *w);
/* A strtab of n strings; get(ud, k, &len) returns string k (NULL counts as ""). */
typedef const char *(*sqd_str_fn)(const void *ud, uint32_t k, size_t *len);
void sqd_w_strtab(sqd_writer *w, sqd_section_id id, uint32_t index, uint32_t n, sqd_str_fn get,
                  const void *ud);
/* A strtab of every key of a string map, in id order. */
void sqd_w_strmap(sqd_writer *w, sqd_section_id id, uint32_t index, const sq_strmap *m);
/* Completes the file: h carries the counts; the rest of it is filled here. */
sq_status sqd_w_finish(sqd_writer *w, sqd_header *h, const char *path, sq_error *err);

#endif
