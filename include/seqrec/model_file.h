/* model_file.h — the .sqm model file: a header naming the model kind, its full configuration
 * (JSON) and the fingerprint of the dataset it was trained on, then named tensors, then a
 * checksum of everything before it. Written to a temporary file, fsynced and renamed: never
 * half-written.
 *
 * Layout (little-endian):
 *   magic "SQM\0" u8[4] | version u32 | header_len u32 | header JSON (header_len bytes:
 *   {"kind","config":{…},"fingerprint":"hex","n_items","n_users","created_by"})
 *   | n_tensors u32 | per tensor: name_len u16, name, dtype u8, ndim u8, shape u64[ndim],
 *   pad to 8, data (nbytes) | crc32 u32 of all bytes before it.
 * Invariants: 1. the file ends exactly after the crc; 2. the crc matches; 3. every tensor's
 * nbytes equals the product of its shape times its element size; 4. names are unique.
 *
 * Ownership: sq_sqm_read returns a handle freed by sq_sqm_close; blob data pointers live until
 * then. */
#ifndef SEQREC_MODEL_FILE_H
#define SEQREC_MODEL_FILE_H

#include "seqrec/core.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { SQ_SQM_VERSION = 1, SQ_BLOB_NAME_MAX = 64 };

typedef enum { SQ_DT_F32 = 0, SQ_DT_U32 = 1, SQ_DT_U8 = 2, SQ_DT_F64 = 3 } sq_dtype;

typedef struct {
    char name[SQ_BLOB_NAME_MAX]; /* "item_emb", "block0.attn.wqkv" */
    sq_dtype dtype;
    int ndim; /* 0..4 (0: a scalar of one element) */
    uint64_t shape[4];
    const void *data; /* nbytes of it */
    uint64_t nbytes;
} sq_blob;

typedef struct {
    const char *kind;        /* "sasrec" */
    const char *config_json; /* a flat JSON object */
    uint64_t fingerprint;    /* of the dataset */
    uint64_t n_items, n_users;
} sq_sqm_header;

/* Writes the file atomically. Errors: SQ_ERR_ARG (bad blob), SQ_ERR_IO, SQ_ERR_NOMEM. */
sq_status sq_sqm_write(const char *path, const sq_sqm_header *h, const sq_blob *blobs, size_t n,
                       sq_error *err);

typedef struct sq_sqm sq_sqm;

/* Reads and verifies a model file. Errors: SQ_ERR_IO, SQ_ERR_FORMAT (not a model file, other
 * version, truncated, checksum mismatch — each named in the message), SQ_ERR_NOMEM. */
sq_status sq_sqm_read(sq_sqm **out, const char *path, sq_error *err);
void sq_sqm_close(sq_sqm *m);
const sq_sqm_header *sq_sqm_header_of(const sq_sqm *m);
size_t sq_sqm_count(const sq_sqm *m);
const sq_blob *sq_sqm_blob(const sq_sqm *m, size_t i);
const sq_blob *sq_sqm_find(const sq_sqm *m, const char *name); /* NULL when absent */

#ifdef __cplusplus
}
#endif
#endif
