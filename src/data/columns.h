/* columns.h — which column of a delimited file plays which role: header recognition
 * (user_id, 商品ID, timestamp:float, …) and the --columns mapping.
 *
 * A column plan is made once per file from its header (or from --columns, or guessed from an
 * all-numeric first line), then used for every row: columns_fill_row points the roles of an
 * sq_row at the fields of one line, without copying.
 *
 * --columns (opts.columns) is a comma list, either positional — one role per column in
 * order, "-" skipping one: "user,item,-,ts" — or by header name — "role=header name" entries:
 * "user=用户ID,item=商品ID,ts=时间戳". Roles: user, item, ts, date, behaviour, scene, value,
 * session, ctx[:NAME], item_text, item_tag[:NAME], item_num[:NAME], user_attr[:NAME], "-".
 * With --columns only the mapped columns are used.
 *
 * Ownership: a col_plan is caller-allocated (it is large: use sq_calloc) and freed with
 * columns_plan_free, which releases only what the plan holds. */
#ifndef SEQREC_DATA_COLUMNS_H
#define SEQREC_DATA_COLUMNS_H

#include "data/ingest.h"

enum {
    COLS_MAX = 1024,   /* columns a header may have */
    COLS_NAME = 48,    /* bytes kept of a field name (with the NUL) */
    COLS_MAX_TAGS = 8, /* item tag columns per row (sq_row.item_tag) */
    COLS_MAX_NUMS = 4, /* numeric item columns per row (sq_row.item_num) */
    COLS_MAX_ATTRS = 8 /* user attribute columns on event rows */
};

typedef enum {
    COL_IGNORE = 0, /* not used */
    COL_USER,       /* user id */
    COL_SESSION,    /* session id: the sequence key when present */
    COL_ITEM,       /* item id */
    COL_TS,         /* timestamp (or, with COL_DATE, an offset in milliseconds) */
    COL_DATE,       /* a date; with a ts/timeframe column the time is date + ts ms */
    COL_BEHAVIOUR,  /* behaviour name */
    COL_VALUE,      /* numeric value (rating) */
    COL_SCENE,      /* scene name */
    COL_CTX,        /* categorical context field */
    COL_ITEM_TEXT,  /* item title / text */
    COL_ITEM_TAG,   /* item tag with a field prefix ("brand=VIVO") */
    COL_ITEM_NUM,   /* numeric item attribute ("price") */
    COL_USER_ATTR,  /* categorical user attribute */
    COL_ROLE_COUNT
} col_role;

/* One column of a plan. */
typedef struct {
    col_role role;         /* what the column holds */
    uint32_t id;           /* ctx field id; slot in the row's item_tag / item_num arrays */
    uint32_t bid;          /* item_num: the builder's numeric attribute id */
    char field[COLS_NAME]; /* tag prefix, attribute or ctx name; header name otherwise */
} col_info;

/* How the fields of each row of one file map to roles. */
typedef struct {
    size_t ncols;           /* fields each row must have; 0: learn from the first data row */
    size_t nmapped;         /* columns in col[] (≤ COLS_MAX) */
    col_info col[COLS_MAX]; /* per column */
    int has_time;           /* a ts or date column is mapped (else time is file order) */
    int has_value;          /* a value column is mapped */
    int has_session;        /* a session column is mapped */
    uint32_t n_tags;        /* tag columns (slots 0..n_tags-1 of sq_row.item_tag) */
    uint32_t n_nums;        /* numeric item columns */
    uint32_t n_attrs;       /* user attribute columns */
    uint32_t n_ctx;         /* 1 + highest ctx field id used, for sq_row.n_ctx */
} col_plan;

/* Checks a --columns spec without a file. Errors: SQ_ERR_ARG naming the bad entry. */
sq_status columns_check(const char *spec, sq_error *err);

/* Recognises a header field (after trimming, stripping quotes, a BOM, and a RecBole ":type"
 * suffix; case-insensitive). Returns the role (COL_IGNORE when unknown) and writes the
 * canonical field name into field (COLS_NAME bytes): "brand" for 品牌, "price" for 售价, the
 * lower-cased header for context fields. *side_id is set for ids of side entities (品牌ID,
 * category_id…), which are ignored without a warning. */
col_role columns_recognise(const char *p, size_t n, char *field, int *side_id);

/* 1 when at least one field is a recognised header name. */
int columns_any_known(const sq_slice *f, size_t n);

/* Builds the plan of one file. hdr/nh: the header's fields (have_header) or the first data
 * row's (otherwise). With opts.columns the spec decides (by name needs a header); without,
 * the header does; without either an all-numeric first row is guessed as user,item[,value|ts]
 * [,ts] (logged). Registers ctx fields and numeric attributes with the builder. Errors:
 * SQ_ERR_ARG (bad spec), SQ_ERR_PARSE (a named column absent, or no user/item column: the
 * message names the file and says how to map it), SQ_ERR_LIMIT, SQ_ERR_NOMEM. */
sq_status columns_plan(sq_ingest *g, col_plan *pl, const char *file, const sq_slice *hdr, size_t nh,
                       int have_header, sq_error *err);

/* Points the role slices of r at fields f[0..n) per the plan (r's other fields untouched;
 * roles the plan lacks keep p == NULL). */
void columns_fill_row(const col_plan *pl, const sq_slice *f, size_t n, sq_row *r);

/* Prepares the per-file constant part of a row: tkind, tag field names, num ids, n_ctx. */
void columns_row_template(const col_plan *pl, sq_row *r);

/* After ingest_add_row appended an event of a new user: records the mapped user attribute
 * columns of the row. */
sq_status columns_user_attrs(sq_ingest *g, const col_plan *pl, const sq_slice *f, size_t n,
                             sq_slice user);

/* Is this field text a plausible epoch timestamp (integer ≥ 1e8) or an ISO date? */
int columns_looks_like_time(const char *p, size_t n);

#endif
