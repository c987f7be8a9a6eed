/* data.h — from event logs to the .sqd dataset, and views over it.
 *
 *   logs (ratings.dat, csv, tsv, jsonl, RecBole .inter/.item/.user, plain "user item", any .gz)
 *     ──sq_ingest_file──▶ sq_ingest (events in input order, id maps, side info, report)
 *     ──sq_ingest_write─▶ clean (duplicates), k-core, per-user time order, sessions, statistics,
 *                         data.sqd written atomically
 *   data.sqd ──sq_data_open──▶ sq_dataset (mmapped, read-only) ──sq_split_*──▶ sq_split views
 *
 * Ownership: sq_ingest_create returns a builder freed by sq_ingest_free. sq_data_open returns a
 * handle freed by sq_data_close; every pointer a sq_data_* accessor returns lives until then.
 * A dataset is read-only and thread-safe for readers. A split owns two small per-user arrays,
 * freed by sq_split_free; it never copies events.
 *
 * Ids: users are 0..n_users-1 and items 0..n_items-1 (dense, first-appearance order among the
 * kept events); external ids are the strings of the input. Behaviours, scenes and context values
 * are small vocabularies with their own dense ids. */
#ifndef SEQREC_DATA_H
#define SEQREC_DATA_H

#include "seqrec/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ========================================== Ingest =========================================== */

typedef enum {
    SQ_FMT_AUTO = 0,  /* decided from the file name and its first lines */
    SQ_FMT_MOVIELENS, /* "::"-separated ratings.dat (movies.dat, users.dat as side files) */
    SQ_FMT_CSV,       /* comma (or ';' / '|') separated with a header */
    SQ_FMT_TSV,       /* tab separated with a header */
    SQ_FMT_JSONL,     /* one JSON object per line */
    SQ_FMT_RECBOLE,   /* RecBole atomic files: typed header "user_id:token\titem_id:token..." */
    SQ_FMT_PLAIN      /* "user item" per line, file order is time order */
} sq_format;

const char *sq_format_name(sq_format f);             /* "csv" */
sq_status sq_format_parse(const char *name, sq_format *out); /* SQ_ERR_ARG when unknown */

/* Why a row was not kept. Every input row ends as kept or under exactly one reason. */
typedef enum {
    SQ_REJ_FIELD_COUNT = 0, /* fewer or more fields than the header / format says */
    SQ_REJ_MISSING_USER,    /* user (or session) field empty */
    SQ_REJ_MISSING_ITEM,    /* item field empty */
    SQ_REJ_BAD_TIME,        /* timestamp field missing or unparsable */
    SQ_REJ_TIME_RANGE,      /* timestamp parsed but outside [time_min, time_max] */
    SQ_REJ_BAD_VALUE,       /* numeric value field unparsable or not finite */
    SQ_REJ_UNKNOWN_BEHAVIOUR, /* behaviour not in the declared vocabulary (or over the cap) */
    SQ_REJ_BAD_FIELD,       /* another mapped field is malformed (bad JSON, bad escape, too long) */
    SQ_REJ_DUPLICATE,       /* exact duplicate of an earlier kept row (all fields equal) */
    SQ_REJ_COUNT
} sq_reject_reason;

const char *sq_reject_name(sq_reject_reason r); /* "bad_time" */

/* What ingest did with every input row: rows_read == kept + sum(rejected) + kcore_events. */
typedef struct {
    uint64_t files;                  /* event files read */
    uint64_t rows_read;              /* data rows in event files (blank and header lines excluded) */
    uint64_t blank_lines;            /* empty or whitespace-only lines, skipped */
    uint64_t header_lines;           /* header lines, skipped */
    uint64_t rejected[SQ_REJ_COUNT]; /* rows not kept, by reason */
    uint64_t kcore_events;           /* valid rows removed by the k-core filter */
    uint64_t kcore_users;            /* users removed by it */
    uint64_t kcore_items;            /* items removed by it */
    uint32_t kcore_rounds;           /* passes until stable */
    uint64_t kept;                   /* events in the dataset */
    uint64_t side_rows;              /* rows read from side files (items, users) */
    uint64_t side_rejected;          /* side rows not usable (malformed) */
    uint64_t side_unmatched;         /* side rows about items/users with no kept event */
} sq_ingest_report;

typedef struct {
    sq_format format;           /* SQ_FMT_AUTO: detect per file */
    const char *columns;        /* column mapping (see docs/formats.md); NULL: from the header */
    const char *behaviours;     /* declared vocabulary "view,cart,buy"; NULL: taken from data */
    const char *default_behaviour; /* for logs without a behaviour column; NULL: "rate" when a
                                      value column exists, else "interact" */
    char delimiter;             /* CSV delimiter; 0: detect among , ; | and tab */
    int no_side_files;          /* do not look for movies.dat/users.dat/.item/.user beside inputs */
    uint32_t min_user_events;   /* k-core: users need at least this many events (0/1: off) */
    uint32_t min_item_events;   /* k-core: items need at least this many events */
    int64_t session_gap;        /* seconds of inactivity that start a new session; 0: off */
    int64_t time_min, time_max; /* accepted timestamps, UTC seconds; both 0: 1970..2100 */
    int keep_duplicates;        /* keep exact duplicate rows instead of rejecting them */
    const char *rejects_path;   /* write each rejected row here with line and reason; NULL: no */
    int strict;                 /* the first bad row fails the run with file:line: field: reason */
    size_t max_line;            /* longest accepted line in bytes; 0: 1 MiB */
    sq_reporter reporter;       /* progress and log messages */
} sq_ingest_opts;

typedef struct sq_ingest sq_ingest;

/* Creates a builder. Errors: SQ_ERR_ARG (bad columns spec, behaviours list), SQ_ERR_IO (rejects
 * file cannot be created), SQ_ERR_NOMEM. */
sq_status sq_ingest_create(sq_ingest **out, const sq_ingest_opts *opts, sq_error *err);
void sq_ingest_free(sq_ingest *g);

/* Reads one input file (plain or gzip, detected by magic bytes). Side files (movies.dat,
 * users.dat, .item, .user) are recognised by name and read as side information; unless
 * opts.no_side_files, side files beside an event file are picked up too.
 * Errors: SQ_ERR_IO, SQ_ERR_PARSE (strict mode: "file:line: field: reason"; or a file that is
 * not of the forced format), SQ_ERR_NOMEM, SQ_ERR_LIMIT. */
sq_status sq_ingest_file(sq_ingest *g, const char *path, sq_error *err);

/* The same over a buffer in memory; `name` stands for the file name in messages and format
 * detection. For tests and fuzzing. */
sq_status sq_ingest_buffer(sq_ingest *g, const char *name, const void *data, size_t n,
                           sq_error *err);

/* Cleans, shapes and writes the dataset atomically to out_path (nothing is left there on
 * failure). Errors: SQ_ERR_EMPTY (no event left), SQ_ERR_IO, SQ_ERR_NOMEM. */
sq_status sq_ingest_write(sq_ingest *g, const char *out_path, sq_error *err);

const sq_ingest_report *sq_ingest_get_report(const sq_ingest *g);

/* ===================================== The dataset (.sqd) ==================================== */

typedef struct sq_dataset sq_dataset;

enum {
    SQ_DATA_REAL_TIME = 1u << 0, /* timestamps are real UTC seconds (not file order) */
    SQ_DATA_VALUES = 1u << 1,    /* events carry a numeric value (rating, watch time…) */
    SQ_DATA_SESSIONS = 1u << 2   /* events carry a session number */
};

typedef struct {
    uint64_t n_events;
    uint32_t n_users, n_items;
    uint32_t n_behaviours;  /* behaviour vocabulary size (≤ 255) */
    uint32_t n_scenes;      /* scene vocabulary size (≥ 1: "" is scene 0 when none given) */
    uint32_t n_ctx;         /* categorical context fields per event */
    uint32_t n_tags;        /* item tag vocabulary size */
    uint32_t n_item_num;    /* numeric item attributes (price…) */
    uint32_t n_user_attrs;  /* categorical user attribute fields */
    uint32_t flags;         /* SQ_DATA_* */
    int64_t time_min, time_max; /* over all events */
    uint64_t fingerprint;   /* content hash: binds a model to the dataset it was trained on */
} sq_data_info;

/* Opens and mmaps a dataset, checking magic, version and every section's checksum.
 * Errors: SQ_ERR_IO, SQ_ERR_FORMAT (not a .sqd, other version, truncated, corrupt). */
sq_status sq_data_open(sq_dataset **out, const char *path, sq_error *err);
void sq_data_close(sq_dataset *d);

const sq_data_info *sq_data_info_of(const sq_dataset *d);

/* Per-user sequences in time order (ties in input order): user u's events are the indices
 * [offsets[u], offsets[u+1]) of every per-event array. */
const uint64_t *sq_data_offsets(const sq_dataset *d); /* n_users + 1 */
const uint32_t *sq_data_items(const sq_dataset *d);   /* n_events */
const int64_t *sq_data_times(const sq_dataset *d);    /* n_events, UTC seconds or file order */
const uint8_t *sq_data_behaviours(const sq_dataset *d); /* n_events */
const uint16_t *sq_data_scenes(const sq_dataset *d);  /* n_events */
const float *sq_data_values(const sq_dataset *d);     /* n_events; NaN where none was given */
const uint32_t *sq_data_context(const sq_dataset *d); /* n_events × n_ctx, row-major */
const uint32_t *sq_data_sessions(const sq_dataset *d); /* n_events: session number within the
                                                          user, from 0; NULL without sessions */

/* Names. Each returns a NUL-terminated string (len may be NULL) or NULL when out of range. */
const char *sq_data_user_id(const sq_dataset *d, uint32_t u, size_t *len);
const char *sq_data_item_id(const sq_dataset *d, uint32_t i, size_t *len);
const char *sq_data_behaviour_name(const sq_dataset *d, uint32_t b);
const char *sq_data_scene_name(const sq_dataset *d, uint32_t s);
const char *sq_data_ctx_name(const sq_dataset *d, uint32_t field);
uint32_t sq_data_ctx_size(const sq_dataset *d, uint32_t field); /* values of that field */
const char *sq_data_ctx_value(const sq_dataset *d, uint32_t field, uint32_t v);

/* External id → dense id; UINT32_MAX when absent. (A hash index built at open.) */
uint32_t sq_data_find_user(const sq_dataset *d, const char *id, size_t len);
uint32_t sq_data_find_item(const sq_dataset *d, const char *id, size_t len);
uint32_t sq_data_find_behaviour(const sq_dataset *d, const char *name);

/* Item side information. */
const uint32_t *sq_data_item_tags(const sq_dataset *d, uint32_t item, uint32_t *n); /* tag ids */
const char *sq_data_tag_name(const sq_dataset *d, uint32_t tag);
const char *sq_data_item_text(const sq_dataset *d, uint32_t item, size_t *len); /* "" if none */
const float *sq_data_item_num(const sq_dataset *d); /* n_items × n_item_num; NaN: missing */
const char *sq_data_item_num_name(const sq_dataset *d, uint32_t k);

/* User attributes: n_users × n_user_attrs value ids, UINT32_MAX where missing. */
const uint32_t *sq_data_user_attrs(const sq_dataset *d);
const char *sq_data_user_attr_name(const sq_dataset *d, uint32_t field);
uint32_t sq_data_user_attr_size(const sq_dataset *d, uint32_t field);
const char *sq_data_user_attr_value(const sq_dataset *d, uint32_t field, uint32_t v);
/* A user attribute given by name: field (flen bytes) and value (vlen bytes) into the field's
 * index *k and the value's id *v. Errors: SQ_ERR_NOTFOUND, the message naming the field the
 * dataset does not have ("no user attribute 'x'") or the value it never saw ("'v' is not a
 * value of 'x'"). For `recommend --attr` and serve's new users. */
sq_status sq_data_user_attr_find(const sq_dataset *d, const char *field, size_t flen,
                                 const char *value, size_t vlen, uint32_t *k, uint32_t *v,
                                 sq_error *err);

/* Statistics computed at ingest, the dense features models use.
 * User row (width SQ_USTAT_FIXED + n_behaviours): the fixed columns below, then the share of
 * each behaviour among the user's events (click rate, purchase rate…).
 * Item row (width SQ_ISTAT_FIXED + n_behaviours): the same for items. */
enum {
    SQ_USTAT_EVENTS = 0,     /* events of the user */
    SQ_USTAT_DISTINCT_ITEMS, /* distinct items */
    SQ_USTAT_SPAN_DAYS,      /* (last − first event time) in days */
    SQ_USTAT_PER_DAY,        /* activity: events / max(span_days, 1) */
    SQ_USTAT_RECENCY_DAYS,   /* days from the user's last event to the dataset's last event */
    SQ_USTAT_FIXED
};
enum {
    SQ_ISTAT_EVENTS = 0,     /* popularity: events on the item */
    SQ_ISTAT_USERS,          /* distinct users */
    SQ_ISTAT_RECENCY_DAYS,   /* days from its last event to the dataset's last event */
    SQ_ISTAT_FIXED
};
const float *sq_data_user_stats(const sq_dataset *d); /* n_users × (SQ_USTAT_FIXED + n_beh) */
const float *sq_data_item_stats(const sq_dataset *d); /* n_items × (SQ_ISTAT_FIXED + n_beh) */

/* The ingest report and provenance as JSON text (NUL-terminated), for stats and the
 * dashboard: {"report":{…}, "inputs":[…], "options":{…}}. */
const char *sq_data_meta_json(const sq_dataset *d);

/* A description of a dataset for `seqrec stats` and the dashboard. */
typedef struct {
    uint64_t *behaviour_counts; /* n_behaviours */
    uint64_t *scene_counts;     /* n_scenes */
    uint32_t len_min, len_max;  /* sequence length (events per user) */
    double len_mean;
    uint32_t len_p25, len_p50, len_p75, len_p90, len_p99; /* nearest-rank percentiles */
    double density;             /* distinct (user, item) pairs / (users × items) */
    uint64_t items_with_tags, items_with_text, users_with_attrs;
} sq_data_summary;

/* Computes the summary (one pass over the events). Free with sq_data_summary_free.
 * Errors: SQ_ERR_NOMEM. */
sq_status sq_data_summarize(const sq_dataset *d, sq_data_summary *s, sq_error *err);
void sq_data_summary_free(sq_data_summary *s);
/* The `seqrec stats --json` object as a malloc'd string (free with sq_free):
 * {"events","users","items","behaviours":{name:count},"scenes":{…},"time_min","time_max",
 *  "real_time","sequence_length":{min,p25,p50,p75,p90,p99,max,mean},"density",
 *  "context_fields":[…],"side":{…},"ingest":{report}}. NULL when out of memory. */
char *sq_data_stats_json(const sq_dataset *d, const sq_data_summary *s);

/* =========================================== Splits ========================================== */

typedef enum {
    SQ_SPLIT_LOO = 0,
    SQ_SPLIT_TEMPORAL,
    SQ_SPLIT_KFOLD,
    SQ_SPLIT_SESSIONS,
    SQ_SPLIT_COLD_ITEMS,
    SQ_SPLIT_COLD_USERS
} sq_split_kind;

/* A split is a view: for each user u with sequence length n_u, positions [0, train_end[u]) are
 * training targets, [train_end[u], valid_end[u]) validation targets, [valid_end[u], n_u) test
 * targets. A target at position p is always predicted from positions [0, p) of the same user.
 * Invariant: train_end[u] ≤ valid_end[u] ≤ n_u, so no test event precedes a training event. */
typedef struct {
    sq_split_kind kind;
    uint32_t n_users;
    uint32_t *train_end; /* per user */
    uint32_t *valid_end; /* per user */
    int64_t t_valid, t_test; /* temporal, sessions: the cut times */
    uint32_t fold, n_folds;  /* kfold: which fold is held out, of how many */
    /* sessions (SR-GNN's protocol; 0 / NULL for the others): */
    int per_target; /* 1: every target is one prediction from the events right before it (the
                       sequence's own items stay candidates); 0: as sq_evaluate says */
    uint8_t *seen;  /* [n_items] 1 for an item with a training event, or NULL; when set,
                       evaluated sequences leave out the events of unseen items */
    /* Cold start (NULL for the other kinds). item_cold: items held out of training entirely:
     * their events are neither inputs nor targets of training, whatever their position, and
     * models skip them when they read training events (sq_split_trains_on). user_cold: users
     * held out of training (train_end 0); evaluation scores them as users the model never saw
     * (sq_seq.user UINT32_MAX), from their attributes and first events. */
    uint8_t *item_cold; /* [n_items] 1: held out */
    uint8_t *user_cold; /* [n_users] 1: held out */
    uint32_t n_items;   /* size of item_cold */
    uint32_t n_cold;    /* items (cold_items) or users (cold_users) held out */
} sq_split;

/* Whether an event on `item` may be trained on (not a held-out item). */
static inline int sq_split_trains_on(const sq_split *s, uint32_t item) {
    return !s->item_cold || !s->item_cold[item];
}

/* Leave-one-out: last event test, the one before validation, the rest training. Users with
 * fewer than 3 events keep all of them for training (as in SASRec's data_partition). */
sq_status sq_split_loo(const sq_dataset *d, sq_split *s, sq_error *err);
/* Global temporal cut: events before the time quantile 1 − valid_frac − test_frac train, before
 * 1 − test_frac validation, the rest test. Errors: SQ_ERR_ARG for fractions outside (0, 1). */
sq_status sq_split_temporal(const sq_dataset *d, double valid_frac, double test_frac,
                            sq_split *s, sq_error *err);
/* k-fold over users: users are dealt into k folds by a seeded shuffle; users of fold `fold` are
 * held out (validation: all but their last event, test: their last event), the others train on
 * everything. Folds are disjoint and cover every user. Errors: SQ_ERR_ARG for k < 2 or
 * fold ≥ k. */
sq_status sq_split_kfold(const sq_dataset *d, uint32_t k, uint32_t fold, uint64_t seed,
                         sq_split *s, sq_error *err);
/* SR-GNN's session protocol. Sessions are the dataset's (ingest --session-gap) or its users
 * (a session-id column); a session's time is its last event's. Sessions of the last
 * test_days days before the latest event (time ≥ t_test = t_max − test_days · 86400) are
 * test sessions, those of the valid_days before (time ≥ t_valid = t_test − valid_days · 86400)
 * validation sessions, the rest training: per user, train_end and valid_end fall on session
 * starts. per_target is set: every event after the first of an evaluated session is predicted
 * from the session's events before it; seen marks the items of training sessions, and
 * evaluated sessions drop the others first. Errors: SQ_ERR_ARG (days not positive),
 * SQ_ERR_NOMEM. */
sq_status sq_split_sessions(const sq_dataset *d, double test_days, double valid_days, sq_split *s,
                            sq_error *err);
/* Cold items: a seeded share of the items (at least one) is held out. Per user, training and
 * validation are leave-one-out over the user's other ("warm") events: the last warm event is
 * validation (train_end its position, valid_end one past it), the warm events before it train;
 * a user with fewer than 3 warm events trains on all of them. Test (what sq_evaluate does with
 * item_cold): every held-out item the user had, predicted from all the user's warm events
 * (LightFM's cold-start setting; users without a warm event are not tested).
 * Errors: SQ_ERR_ARG for share outside (0, 1). */
sq_status sq_split_cold_items(const sq_dataset *d, double share, uint64_t seed, sq_split *s,
                              sq_error *err);
/* Cold users: a seeded share of the users with more than n_first events is held out
 * (train_end 0, valid_end n_first): each is represented by their attributes and first n_first
 * events, and test is all their later events. Every other user trains on all but the last
 * event, which is validation. Errors: SQ_ERR_ARG for share outside (0, 1) or n_first 0. */
sq_status sq_split_cold_users(const sq_dataset *d, double share, uint32_t n_first, uint64_t seed,
                              sq_split *s, sq_error *err);
void sq_split_free(sq_split *s);
/* A split by protocol name: "loo", "temporal" (valid 0.1, test 0.1 of the time range's
 * events), "kfold" (5 folds, `fold` held out), "sessions" (7 test days, 7 validation days),
 * "cold_items" (10 % of the items held out; "cold_items:0.2" another share), "cold_users"
 * (10 % of the users, represented by their first event; "cold_users:0.2:3" another share and
 * their first 3 events). Errors: SQ_ERR_ARG for another name or a malformed share. */
sq_status sq_split_make(const sq_dataset *d, const char *protocol, uint32_t fold, uint64_t seed,
                        sq_split *s, sq_error *err);

/* ========================================= Generator ========================================= */

/* A synthetic log with planted, known structure:
 *  - items fall into clusters; within a session a user walks a sparse Markov chain over their
 *    current cluster's items (each item has a few likely successors), switching cluster rarely;
 *  - every user has a taste (preferred clusters);
 *  - a view → cart → buy funnel whose conversion rates depend on the scene (and the device);
 *  - context fields (device, hour bucket) that shift behaviour;
 *  - items carry tags derived from their cluster and a short title text.
 * The same options and seed give byte-identical output. */
/* The funnel: ORDERED, a view then each further stage on the same item at once or never (the
 * previous event decides a purchase); REALISTIC, purchases that the previous event does not
 * decide: direct buys, delayed buys of items carted earlier, abandoned carts, a latent
 * per-user purchase propensity (docs/generator.md, "Realistic funnel"). */
typedef enum { SQ_GEN_FUNNEL_ORDERED = 0, SQ_GEN_FUNNEL_REALISTIC } sq_gen_funnel;

typedef struct {
    uint32_t users, items;      /* counts (items ≥ clusters) */
    uint64_t events;            /* total events to write (approximately per user, exact total) */
    uint32_t clusters;          /* item clusters; 0: about sqrt(items) */
    const char *behaviours;     /* funnel names, first is the most common; NULL: "view,cart,buy" */
    uint32_t scenes;            /* 0: 3 */
    uint64_t seed;
    sq_format format;           /* output format (SQ_FMT_AUTO: from the file name) */
    int gzip;                   /* compress (also implied by a .gz name) */
    int64_t t0;                 /* first timestamp; 0: 2024-01-01 */
    sq_gen_funnel funnel;       /* SQ_GEN_FUNNEL_ORDERED (default) or _REALISTIC */
    const char *oracle;         /* realistic funnel: also write this oracle file; NULL: none */
    sq_reporter reporter;
} sq_gen_opts;

/* Writes the log (and, for movielens/recbole, side files beside it) atomically.
 * Users and items are written as their numbers 0..users-1 and 0..items-1; users in order, each
 * user's events in time order. Format from the name when o->format is SQ_FMT_AUTO: .csv, .tsv,
 * .jsonl/.json, .dat (movielens; movies.dat beside it), .inter (recbole; <stem>.item beside it),
 * .txt (plain), each optionally .gz. Movielens and plain have no behaviour column: every event
 * is then a view/rating. The planted model is described in docs/generator.md.
 * Errors: SQ_ERR_ARG (users, items or events 0; clusters > items; scenes > 1000; behaviours not
 * 1..8 names of [A-Za-z0-9_-]; t0 outside 0..2100-01-01; format not known from the name;
 * a realistic funnel with fewer than 2 behaviours or a format without a behaviour column; an
 * oracle without the realistic funnel, or at the log's own path), SQ_ERR_IO (nothing is left
 * at path or beside it), SQ_ERR_NOMEM. */
sq_status sq_generate(const sq_gen_opts *o, const char *path, sq_error *err);

/* Ground truth of the planted structure, for tests that measure what a model learnt. Pure
 * functions of the options (o->seed, o->items, o->clusters); `item` is an item number as
 * written in the log, < o->items. Within a session the next view follows one of the item's
 * SQ_GEN_SUCCESSORS strong successors with probability SQ_GEN_P_FOLLOW (split 0.5/0.3/0.2,
 * out[0] most likely), so predicting out[0] scores HR@1 ≈ 0.35 and out[0..2] HR@3 ≈ 0.70 on
 * consecutive same-session views, before popularity draws that happen to hit them. */
enum { SQ_GEN_SUCCESSORS = 3 };
#define SQ_GEN_P_FOLLOW 0.70
uint32_t sq_gen_clusters(const sq_gen_opts *o);                  /* resolved cluster count */
uint32_t sq_gen_cluster_of(const sq_gen_opts *o, uint32_t item); /* 0..clusters-1 */
/* Items of the same cluster, distinct and ≠ item when the cluster has ≥ 4 members (a
 * 1-member cluster's successors are the item itself). */
void sq_gen_successors(const sq_gen_opts *o, uint32_t item, uint32_t out[SQ_GEN_SUCCESSORS]);

#ifdef __cplusplus
}
#endif
#endif
