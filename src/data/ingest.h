/* ingest.h — the builder between the readers and the .sqd writer (internal to src/data).
 *
 * Readers (read_*.c) only cut lines into fields and map columns to roles; they hand each row to
 * ingest_add_row as string slices. ingest_add_row validates and converts (timestamps, values,
 * behaviour names), interns ids and appends one event, or records one reject. Side files go
 * through ingest_add_item_* / ingest_add_user_attr. sq_ingest_write (write.c) then cleans
 * (duplicates), filters (k-core), orders, computes statistics and writes the file.
 *
 * Invariants:
 *  1. Every data row of an event file ends in exactly one of: an appended event, or
 *     report.rejected[reason] += 1 (and a line in the rejects file when one is open).
 *  2. ev.* arrays all have ev.n valid entries (ctx: ev.n * n_ctx); ev.src[i] orders events in
 *     input order (file index in the high 24 bits, line number in the low 40).
 *  3. Side information is keyed by the items/users maps, which may hold ids that end up with
 *     no kept event: write.c drops those and counts them in report.side_unmatched. */
#ifndef SEQREC_DATA_INGEST_H
#define SEQREC_DATA_INGEST_H

#include "seqrec/data.h"

enum {
    SQ_MAX_CTX = 16,      /* categorical context fields per event */
    SQ_MAX_BEHAVIOURS = 64, /* behaviour vocabulary cap when taken from data */
    SQ_MAX_SCENES = 65535,
    SQ_SRC_LINE_BITS = 40
};

/* A byte slice of the current line; p need not be NUL-terminated. n == 0: empty/missing. */
typedef struct {
    const char *p;
    size_t n;
} sq_slice;

/* How a reader's time field is to be read. */
typedef enum {
    TIME_TEXT = 0,  /* parse `ts` as epoch s/ms, ISO-8601 or "YYYY-MM-DD HH:MM:SS" */
    TIME_ORDER      /* no time in the file: the event's time is its row number (file order) */
} time_kind;

/* One input row, cut into role slices by a reader. Empty slices mean "column absent". */
typedef struct {
    sq_slice user, item, ts, behaviour, scene, value, session;
    sq_slice date;              /* a date column added to ts (ts then is an offset in ms) */
    sq_slice ctx[SQ_MAX_CTX];   /* indexed as the builder's ctx field ids */
    uint32_t n_ctx;             /* how many ctx slices are set */
    time_kind tkind;
    uint64_t line;              /* 1-based line number in its file */
    sq_slice raw;               /* the whole line, for the rejects file */
    /* item side information carried on event rows (taobao: brand, title, category, price) */
    sq_slice item_text;
    sq_slice item_tag[8];
    const char *item_tag_field[8]; /* field name of each tag (prefix "brand=") or NULL */
    uint32_t n_item_tag;
    sq_slice item_num[4];
    uint32_t item_num_id[4];    /* builder's numeric attribute ids */
    uint32_t n_item_num;
} sq_row;

/* Events in input order, struct of arrays. */
typedef struct {
    size_t n, cap;
    uint32_t *user;  /* users map id (or session id when sessions are the key) */
    uint32_t *item;  /* items map id */
    int64_t *ts;     /* UTC seconds, or row order */
    uint8_t *beh;    /* behaviour id */
    uint16_t *scene; /* scene id */
    float *value;    /* NaN when absent */
    uint64_t *src;   /* (file index << 40) | line */
    uint32_t *ctx;   /* n × n_ctx */
} sq_events;

/* Per-item / per-user side information, appended as (id, value) pairs. */
typedef struct {
    size_t n, cap;
    uint32_t *key; /* item (or user) map id */
    uint32_t *val; /* tag id / attribute value id */
    uint32_t *field; /* for user attributes: field id; unused (NULL) for tags */
} sq_pairs;

struct sq_ingest {
    sq_ingest_opts opts;        /* copied; strings point at the caller's */
    sq_events ev;
    sq_strmap *users, *items;   /* external ids */
    sq_strmap *behaviours;      /* declared or seen behaviour names */
    int behaviours_declared;    /* 1: unknown names are rejected */
    sq_strmap *scenes;          /* scene names; "" is interned first as scene 0 */
    sq_strmap *ctx_fields;      /* context field names */
    sq_strmap *ctx_values[SQ_MAX_CTX]; /* per field */
    sq_strmap *tags;            /* item tag vocabulary */
    sq_pairs item_tags;         /* (item, tag) */
    char **item_text;           /* per item map id: owned text or NULL */
    size_t item_text_cap;
    sq_strmap *item_num_names;  /* numeric attribute names */
    float *item_num;            /* item map id × SQ_MAX_ITEM_NUM, NaN when missing */
    size_t item_num_cap;        /* rows allocated */
    sq_strmap *user_attr_fields;
    sq_strmap *user_attr_values[SQ_MAX_CTX];
    sq_pairs user_attrs;        /* (user, field, value) */
    uint32_t default_behaviour; /* behaviour id for rows without one */
    int have_real_time;         /* some file had real timestamps */
    int have_values;            /* some row had a value */
    int have_sessions;          /* sessions are the sequence key (session column) */
    sq_ingest_report report;
    FILE *rejects;              /* open rejects file or NULL */
    char *rejects_tmp;          /* its temporary name (renamed at write) */
    char **inputs;              /* paths read, for the meta JSON and src decoding */
    size_t n_inputs;
    uint64_t order_base;        /* TIME_ORDER: rows before this file, so order keeps rising */
    /* reading state kept by read*.c / row.c (scalars: nothing to free) */
    int file_has_value;         /* current event file has a value column: default "rate" */
    uint32_t default_beh_cache[2]; /* default behaviour id + 1 for file_has_value 0/1; 0: none */
    int last_new_user;          /* the last ingest_add_row appended an event of a new user */
    int last_new_item;          /* ... of an item not in the items map before */
    uint32_t user_cache;        /* id + 1 of the last row's user (logs come grouped by user) */
};

enum { SQ_MAX_ITEM_NUM = 4 };

/* ---- ingest.c: builder lifetime and rejects ---- */

/* Records a rejected row. In strict mode returns SQ_ERR_PARSE with
 * "file:line: field: reason"; otherwise counts it, writes it to the rejects file, returns
 * SQ_OK. */
sq_status ingest_reject(sq_ingest *g, const sq_row *r, sq_reject_reason why, const char *field,
                        const char *detail, sq_error *err);
/* Counts and writes a reject found after reading (duplicates): never fails, even in strict
 * mode (cleaning is not an input error). src is the event's (file << 40 | line). */
void ingest_reject_at(sq_ingest *g, uint64_t src, sq_reject_reason why, const char *field,
                      const char *detail, sq_slice raw);
const char *ingest_current_file(const sq_ingest *g);
/* Registers a new input file (copied into g->inputs); readers call it before their first row.
 * Returns SQ_ERR_NOMEM or SQ_ERR_LIMIT (over 2^24 files). */
sq_status ingest_begin_file(sq_ingest *g, const char *path, sq_error *err);
/* Makes the rejects file durable under its final name (sq_ingest_write calls it after the
 * dataset is committed). Without a rejects path it does nothing. */
sq_status ingest_rejects_commit(sq_ingest *g, sq_error *err);

/* ---- row.c: validation and conversion of one row ---- */

/* Validates r and appends an event or records a reject. Errors only in strict mode
 * (SQ_ERR_PARSE) or on SQ_ERR_NOMEM / SQ_ERR_LIMIT. */
sq_status ingest_add_row(sq_ingest *g, const sq_row *r, sq_error *err);

/* Side information (from .item/.user/movies.dat/users.dat or event rows). */
sq_status ingest_add_item_text(sq_ingest *g, sq_slice item, sq_slice text);
sq_status ingest_add_item_tag(sq_ingest *g, sq_slice item, const char *field, sq_slice tag);
sq_status ingest_add_item_num(sq_ingest *g, sq_slice item, const char *name, double v);
sq_status ingest_add_user_attr(sq_ingest *g, sq_slice user, const char *field, sq_slice value);

/* Context fields: the id of field `name`, created on first use (SQ_ERR_LIMIT past SQ_MAX_CTX).
 * Each field's value map starts with "" as value 0: the value of events whose row lacks the
 * field, including events appended before the field existed (ev.ctx is re-laid out to the
 * new width n × count(ctx_fields)). */
sq_status ingest_ctx_field(sq_ingest *g, const char *name, size_t n, uint32_t *id);
/* Numeric item attribute id of `name` (SQ_ERR_LIMIT past SQ_MAX_ITEM_NUM). */
sq_status ingest_item_num_field(sq_ingest *g, const char *name, uint32_t *id);

/* ---- time.c ---- */

/* Parses epoch seconds (integer or decimal), epoch milliseconds (|v| ≥ 1e11), ISO-8601
 * ("2017-11-24T10:00:00Z", fractional seconds, ±hh:mm offsets), "YYYY-MM-DD HH:MM:SS" and
 * "YYYY-MM-DD" (UTC). Returns 0 and sets *out (UTC seconds), or -1. */
int sq_parse_time(const char *p, size_t n, int64_t *out);
/* Parses a finite decimal number; 0 on success, -1 otherwise. */
int sq_parse_double(const char *p, size_t n, double *out);

#endif
