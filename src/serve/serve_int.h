/* serve_int.h — the parts of `seqrec serve` and how they meet (public face: seqrec/serve.h).
 *
 *   HTTP (server.c: daemon, body, auth, limits, dispatch)
 *     ├─ routes_events.c  POST /v1/events, GET history, DELETE user, PUT item
 *     ├─ routes_users.c   PUT user (a new user's attributes), attr.F=V query parameters
 *     └─ routes_recs.c    GET recommendations, GET similar, reload, healthz, metrics
 *           │                         │
 *   users.c: per-user state     variants.c: the served models (A/B split, refcounted,
 *   (LRU, bounded bytes)        swapped on reload), cold-start popularity
 *           │                         │
 *           └── scorer.c: scoring workers that take every pending request at once and score
 *               them in one batch (one GEMM against the item table), top-k with exclusions
 *   content.c: new items (PUT), scored by the model's features (sv_fx) or their tags
 *   store.c: the SQLite event store (group commit)        metrics.c: counters, histograms
 *
 * Invariants
 *  1. An event is applied to the user cache only after the store has committed it, and only if
 *     its seq is above the entry's last_seq: a cache entry holds exactly the store's events of
 *     its user up to last_seq (the most recent user_events of them).
 *  2. A cached sequence vector belongs to one model version; a reload makes it stale.
 *  3. A request holds a reference on the model it scores with: a reload never frees a model
 *     in use. */
#ifndef SEQREC_SERVE_INT_H
#define SEQREC_SERVE_INT_H

#include "seqrec/data.h"
#include "seqrec/model.h"
#include "seqrec/serve.h"
#include "serve/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

typedef struct sq_server sq_server;

/* ========================================== Metrics ========================================== */

enum { SV_HIST_BUCKETS = 14 };
extern const double SV_HIST_LE[SV_HIST_BUCKETS]; /* seconds; the last is +Inf */

typedef struct {
    atomic_ullong count;
    atomic_ullong sum_us;
    atomic_ullong bucket[SV_HIST_BUCKETS]; /* not cumulative; exposition sums them */
} sv_hist;

void sv_hist_add(sv_hist *h, double seconds);
/* The q-quantile (0..1) estimated from the buckets (upper bound of its bucket), seconds. */
double sv_hist_quantile(const sv_hist *h, double q);

typedef enum {
    SV_R_EVENTS = 0,
    SV_R_RECS,
    SV_R_SIMILAR,
    SV_R_HISTORY,
    SV_R_DELETE_USER,
    SV_R_PUT_ITEM,
    SV_R_PUT_USER,
    SV_R_RELOAD,
    SV_R_LEARN,
    SV_R_HEALTH,
    SV_R_METRICS,
    SV_R_INFO,
    SV_R_DASHBOARD,
    SV_R_ITEM,
    SV_R_STATIC,
    SV_R_OTHER,
    SV_R_COUNT
} sv_route;
extern const char *const SV_ROUTE_NAMES[SV_R_COUNT];

typedef struct {
    sv_hist latency[SV_R_COUNT];
    atomic_ullong status[SV_R_COUNT][5]; /* by class: 1xx..5xx */
    atomic_ullong events_posted;         /* events accepted */
    atomic_ullong events_unknown_item;   /* accepted events on items outside the catalogue */
    atomic_ullong cache_hits, cache_misses, cache_evictions;
    atomic_ullong cold_start;                /* recommendation requests answered by popularity */
    atomic_ullong batches, batched_requests; /* scoring batches and what they held */
    atomic_ullong rescored;                  /* items scored again in fp32 after the bf16 scan */
    atomic_ullong rate_limited;
} sv_metrics;

/* Prometheus text exposition of everything the server counts; malloc'd. */
char *sv_metrics_render(sq_server *s);

/* ========================================= Variants ========================================== */

enum { SV_PANEL = 64 };
#ifdef __AVX512BF16__
#define SV_HAVE_BF16 1 /* the bf16 item table (dot.c) */
#endif
enum { SV_BF16_BATCH = 32, SV_BF16_MAX_DIM = 256 }; /* its limits: sequences a call, width */

typedef struct sv_model {
    sq_model *m;
    atomic_int refs;       /* the variant's own reference + one per request using it */
    uint64_t version;      /* 1, 2, … per load of this variant */
    int fast;              /* scores are exactly seq_vectors · item_vectors (checked at load) */
    uint32_t dim;          /* vector width when fast */
    const float *Y;        /* [n_items, dim] when fast */
    float *Yp;             /* the same in panels of SV_PANEL items (owned), the scoring layout:
                              panel p is [dim, SV_PANEL], items p·SV_PANEL…, zero past the last */
    uint16_t *Yb;          /* the panels in bf16 (owned; sv_panels_make_bf16), or NULL: when set,
                              scoring scans these and scores its candidates exactly (scorer.c) */
    float ymax;            /* the largest Euclidean norm of an item vector (the bf16 bound) */
    uint32_t window;       /* most recent events the model reads (its maxlen); 0: all */
    double loaded_at;      /* UTC seconds */
    int feat;              /* scores items by their content features (sq_model_has_item_features) */
    uint32_t uattrs;       /* user attribute fields the model reads (sq_model_user_attrs) */
    pthread_mutex_t fx_mu; /* guards fx */
    struct sv_fx *fx;      /* the new items as this model sees them (content.c), or NULL */
} sv_model;

typedef struct {
    char name[32];
    char *path;
    double weight;      /* normalised: the variants' weights sum to 1 */
    pthread_mutex_t mu; /* guards cur */
    sv_model *cur;
    atomic_ullong requests;    /* recommendation requests answered with this variant */
    atomic_ullong recommended; /* items recommended */
    atomic_ullong hits;        /* later events on a recommended item within the hit window */
    sv_hist latency;
} sv_variant;

/* Loads path for the server's dataset into a new sv_model (refs 1). */
sq_status sv_model_load(sq_server *s, const char *path, uint64_t version, sv_model **out,
                        sq_error *err);
sv_model *sv_variant_acquire(sv_variant *v); /* a reference to the current model */
void sv_model_release(sv_model *m);          /* frees on the last reference */
/* The variant a user belongs to: stable, by a hash of the id against the weights. */
uint32_t sv_variant_of(const sq_server *s, const char *user, size_t len);
/* Loads the variant's file again (or `path` when not NULL) and swaps it in. */
sq_status sv_variant_reload(sq_server *s, uint32_t v, const char *path, uint64_t *version,
                            sq_error *err);

/* Cold start: the most popular items of a scene in the dataset (all scenes when scene is
 * UINT32_MAX or has none), best first, with their event counts; *n is how many (≤ SV_POPULAR). */
enum { SV_POPULAR = 1000 };
sq_status sv_popular_build(sq_server *s, sq_error *err);
const uint32_t *sv_popular(const sq_server *s, uint32_t scene, uint32_t *n,
                           const uint32_t **counts);

/* ================= New items (content.c): PUT, by the model's features or their tags ========== */

typedef struct {
    char *id;        /* external id */
    char *tags_json; /* as put: a JSON array of names, or NULL */
    char *text;      /* as put, or NULL */
    uint32_t *nb;    /* catalogue items sharing tags with it (the tag rule) */
    float *w;        /* their weights (shared tags, normalised to sum 1) */
    uint32_t n_nb;
} sv_extra;

typedef struct {
    atomic_int refs;
    uint64_t gen;   /* snapshot number: 1, 2, … per PUT */
    sv_extra *item; /* item e has score id n_items + e in a scored list */
    uint32_t n;
} sv_extras;

/* The new items of one snapshot as one model sees them: featurised with its featuriser, and
 * (fast models) their item vectors. Built lazily per model and snapshot (sv_fx_acquire). */
typedef struct sv_fx {
    atomic_int refs;
    uint64_t gen;     /* the snapshot it was built for */
    uint8_t *via;     /* [n] 1: scored through the model's features (a non-empty row) */
    sq_features rows; /* [n] the items' feature rows (empty where via is 0) */
    float *V;         /* [n, dim] their item vectors when the model is fast, else NULL */
} sv_fx;

sq_status sv_content_init(sq_server *s, sq_error *err); /* the tag index (after the dataset) */
sq_status sv_content_load(sq_server *s, sq_error *err); /* items put earlier (from the store) */
void sv_content_free(sq_server *s);
/* Registers a put item unknown to the catalogue (kept in the snapshot whether or not it is
 * recommendable); 1 when it shares a tag with the catalogue (the tag rule can score it). */
int sv_content_put(sq_server *s, const char *id, size_t len, const char *tags_json,
                   const char *text);
/* How model sm scores an item with these tags and text: "features", "tags" or NULL (not at
 * all); tag_ok is what sv_content_put said. */
const char *sv_content_via(const sv_model *sm, const char *tags_json, const char *text, int tag_ok);
sv_extras *sv_extras_acquire(sq_server *s); /* NULL when none */
void sv_extras_release(sv_extras *x);
/* The snapshot x as model sm sees it (a reference, or NULL when x is NULL or the model has no
 * item features); built on first use per model and snapshot. */
sv_fx *sv_fx_acquire(sv_model *sm, const sv_extras *x);
void sv_fx_release(sv_fx *f);
/* The k best new items for one score row (the catalogue's scores, before exclusions), with
 * ids n_items + e, best first. xs [x->n]: feature scores of the items fx scores by features
 * (fx may be NULL); the others score by the tag rule or not at all. */
uint32_t sv_extras_topk(const sv_extras *x, const sv_fx *fx, const float *xs, const float *row,
                        uint32_t k, uint32_t *ids, float *vals, uint32_t ni);

/* ======================================== User state ========================================= */

/* What a request needs of a user, copied out of the cache (owned by the caller; sv_view_free). */
typedef struct {
    uint32_t uid; /* dataset user, UINT32_MAX when the dataset does not have them */
    int known;    /* the dataset has them or they posted events */
    uint32_t n;   /* model sequence: dataset history then live events, the last `cap` */
    uint32_t *items;
    uint8_t *beh;
    int64_t *ts;
    uint16_t *scene;
    float *values;
    uint32_t n_live;  /* how many of the n are live (posted) events */
    uint32_t *attrs;  /* [n_user_attrs]: the dataset's values, then those put (UINT32_MAX: none) */
    uint32_t n_attrs; /* how many of them are set */
    uint32_t *negative; /* items the user gave negative feedback on */
    uint32_t n_negative;
    float *vec;           /* the cached sequence vector, or NULL */
    uint64_t vec_version; /* model version of vec */
    int64_t last_seq;     /* store seq the view is current to */
} sv_view;

void sv_view_free(sv_view *v);

typedef struct sv_cache sv_cache;

sq_status sv_cache_create(sv_cache **out, uint64_t max_bytes, uint32_t user_events, sq_error *err);
void sv_cache_free(sv_cache *c);

/* Fills *v for the user (loading them from the dataset and the store on a miss): their last
 * 10,000 events at most. */
sq_status sv_user_view(sq_server *s, const char *user, size_t len, sv_view *v, sq_error *err);
/* Stores a sequence vector computed for the view (dropped when the user changed since). */
void sv_user_set_vec(sq_server *s, const char *user, size_t len, int64_t last_seq, uint64_t version,
                     const float *vec, uint32_t dim);
/* Applies committed events (store seq first_seq + i) of one user to their entry, if cached;
 * counts A/B hits against the user's last recommendations. */
typedef struct {
    uint32_t item; /* dataset id, UINT32_MAX: outside the catalogue */
    uint8_t beh;   /* dataset behaviour id; 255: not in the dataset's vocabulary */
    int negative;  /* a negative-feedback behaviour */
    int64_t ts;
    uint16_t scene;
    float value;
} sv_live_event;
void sv_user_apply(sq_server *s, const char *user, size_t len, int64_t seq,
                   const sv_live_event *ev);
/* What the cache keeps of a stored event (ids resolved against the dataset). */
void sv_live_from_store(const sq_server *s, const sq_store_event *se, sv_live_event *ev);
/* Remembers what a user was just recommended, by which variant (for hit counting). */
void sv_user_recommended(sq_server *s, const char *user, size_t len, uint32_t variant,
                         const uint32_t *items, uint32_t n);
/* Drops the user from the cache. */
void sv_user_forget(sq_server *s, const char *user, size_t len);
/* Entries and bytes in the cache. */
void sv_cache_usage(const sv_cache *c, uint64_t *entries, uint64_t *bytes);

/* ========================================== Scoring ========================================== */

typedef struct sv_scorer sv_scorer;

typedef struct {
    sv_model *model;         /* in: the model (the caller holds a reference) */
    sq_seq seq;              /* in: the sequence (used when vec is NULL or the model is not fast) */
    const float *vec;        /* in: a cached sequence vector for this model version, or NULL */
    const sv_extras *extras; /* in: new items to rank too (ids n_items + e), or NULL */
    const sv_fx *fx;         /* in: those items as the model sees them, or NULL (the tag rule) */
    const uint32_t *exclude; /* in: items never to return */
    uint32_t n_exclude;
    uint32_t k;     /* in */
    uint32_t *ids;  /* out [k] */
    float *scores;  /* out [k] */
    uint32_t n;     /* out: how many */
    float *vec_out; /* out [dim] when fast and vec was NULL: the computed vector, or NULL */
} sv_job;

/* threads workers, each splitting a batch's catalogue across `team` OpenMP threads. */
sq_status sv_scorer_create(sv_scorer **out, uint32_t threads, uint32_t team, uint32_t n_items,
                           sq_error *err);
void sv_scorer_free(sv_scorer *sc);
/* Counts batches, the jobs they held and the bf16 scan's candidates scored again in fp32 into
 * the given counters. */
void sv_scorer_count(sv_scorer *sc, atomic_ullong *batches, atomic_ullong *batched,
                     atomic_ullong *rescored);
/* Scores one job, batched with whatever else is pending; blocks until done. */
sq_status sv_scorer_run(sv_scorer *sc, sv_job *job, sq_error *err);

/* Columns [i0, i1) of S [B, ni] = U [B, dim] · Yᵀ from the panels of Y (dot.c; i0 a multiple
 * of SV_PANEL); the panels of Y [ni, dim] (sq_free; NULL when out of memory). */
void sv_dot_panels(const float *U, uint32_t B, uint32_t dim, const float *Yp, uint32_t ni, float *S,
                   uint32_t i0, uint32_t i1);
float *sv_panels_make(const float *Y, uint32_t ni, uint32_t dim);
/* One item's score, exactly as sv_dot_panels computes it. */
float sv_dot_exact(const float *u, const float *y, uint32_t dim);
/* The same with the bf16 panels (approximate scores; B ≤ SV_BF16_BATCH, dim ≤ SV_BF16_MAX_DIM;
 * only with SV_HAVE_BF16), and those panels (sq_free; NULL when out of memory). */
void sv_dot_panels_bf16(const float *U, uint32_t B, uint32_t dim, const uint16_t *Yb, uint32_t ni,
                        float *S, uint32_t i0, uint32_t i1);
uint16_t *sv_panels_make_bf16(const float *Y, uint32_t ni, uint32_t dim);
/* A bound on |bf16 score − sv_dot_exact score| for a vector of norm unorm against items of norm
 * ≤ ymax (dot.c explains it). */
float sv_bf16_bound(double unorm, double ymax, uint32_t dim);

/* ====================================== Online learning ====================================== */

typedef struct {
    uint64_t events;    /* store seqs covered by the round */
    uint32_t users;     /* users with new events */
    uint32_t sequences; /* sequences trained on (users with 2+ events) */
    long steps;         /* optimiser steps */
    double loss;        /* mean next-item loss over the round */
    uint64_t version;   /* the variant's new model version; 0: nothing new, no swap */
} sv_online_result;

/* One round for variant vi (online.c). Errors: SQ_ERR_ARG (the model cannot learn online), IO,
 * NOMEM, NUMERIC. */
sq_status sv_online_round(sq_server *s, uint32_t vi, sv_online_result *res, sq_error *err);
sq_status sv_online_start(sq_server *s, sq_error *err); /* the thread, with online_interval */
void sv_online_stop(sq_server *s);

/* ========================================== Server =========================================== */

typedef struct {
    char key[128];
    int admin;
} sv_key;

struct sq_server {
    sq_serve_opts o; /* options, strings pointing into owned copies */
    sq_dataset *d;
    const sq_data_info *info;
    sv_variant var[SQ_SERVE_MAX_VARIANTS];
    uint32_t n_var;
    sq_store *store;
    sv_cache *cache;
    sv_scorer *scorer;
    sv_metrics met;
    struct MHD_Daemon *httpd;
    uint16_t port;
    sv_key *keys;
    uint32_t n_keys;
    sq_strmap *scenes; /* scene name → dataset scene id */
    pthread_mutex_t forgot_mu;
    sq_strmap *forgotten;  /* users deleted while serving (their dataset history unused) */
    char **negative_names; /* negative behaviours by name (also those not in the dataset) */
    uint32_t n_negative_names;
    uint32_t *popular;       /* [(n_scenes + 1) × SV_POPULAR]: row n_scenes = all scenes */
    uint32_t *popular_count; /* the same shape: event counts */
    uint32_t *n_popular;     /* [n_scenes + 1] */
    sq_strmap *tag_names;    /* dataset tag name → tag id */
    uint64_t *tag_off;       /* [n_tags + 1]: items of tag t are tag_items[off[t]..off[t+1]) */
    uint32_t *tag_items;
    pthread_mutex_t extra_mu; /* guards the extras pointer */
    sv_extras *extras;        /* new items put over HTTP (refcounted snapshot) */
    void *limiter;            /* rate limiter state (server.c) */
    pthread_mutex_t log_mu;
    FILE *access_log;
    uint64_t log_salt; /* random per process: access logs hash user ids with it */
    double started;
    int64_t online_seq[SQ_SERVE_MAX_VARIANTS]; /* store seq each variant has learnt through */
    pthread_mutex_t online_mu;
    pthread_cond_t online_cv;
    pthread_t online_th;
    int online_stop, online_inited, online_running;
    char *owned[16];    /* copies of option strings */
    char **dash_files;  /* copies of the metrics logs, then the eval files (dashboard) */
    char *dash_dataset; /* GET /v1/dashboard/dataset, computed at start (cJSON_free) */
};

/* A user deleted with DELETE /v1/users/{id}: their dataset history is no longer used. */
int sv_forgotten(const sq_server *s, const char *user, size_t len);
void sv_forget(sq_server *s, const char *user, size_t len);
/* Behaviour name → negative feedback? */
int sv_is_negative(const sq_server *s, const char *behaviour);
/* The salted hash of a user id as it appears in logs (16 hex digits into buf[17]). */
void sv_user_hash(const sq_server *s, const char *user, size_t len, char buf[17]);

/* ========================================== Routes =========================================== */

/* A response to send: status, body (malloc'd, owned by the response), content type. */
typedef struct {
    unsigned status;
    char *body;
    size_t len;
    const char *type;
    const char *variant; /* X-Seqrec-Variant header, or NULL */
} sv_resp;

/* {"error":"…"} with the status. */
void sv_error(sv_resp *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The request as routes see it: the path's id (percent-decoded), query parameters, body. */
typedef struct sv_req sv_req;
const char *sv_query(const sv_req *q, const char *key); /* NULL when absent */
const char *sv_body(const sv_req *q, size_t *len);
/* The body parsed as JSON within the server's depth limit, or NULL after answering 400 with the
 * reason (an empty body included). */
struct cJSON *sv_body_json(const sq_server *s, const sv_req *q, sv_resp *r);
/* Calls fn(ud, key, value) for each query parameter whose key starts with prefix (in order);
 * stops at the first non-zero return, which it returns. */
int sv_query_each(const sv_req *q, const char *prefix,
                  int (*fn)(void *ud, const char *key, const char *value), void *ud);

/* The body of POST /v1/events, validated whole: 0 and the events, or the HTTP status of the
 * refusal (400, 413, 500) with the reason in msg. Free *out with sv_events_free either way. */
typedef struct {
    struct cJSON *root; /* the parsed body: the events' strings point into it */
    sq_store_event *ev;
    size_t n;
    char **ctx; /* [n] context objects printed as text (cJSON_free) */
    char *nums; /* [n × 64] integer ids printed as text */
} sv_events;
unsigned sv_events_parse(const char *body, size_t len, uint32_t max_depth, uint32_t max_batch,
                         int64_t now, sv_events *out, char *msg, size_t cap);
void sv_events_free(sv_events *e);

/* ===================== New users' attributes (routes_users.c): PUT, attr.F=V ================= */

/* The attributes of a JSON object {"field":"value",…} into attrs (n_user_attrs values, left as
 * they are for fields not given); returns how many were given, or −1 with the reason (naming
 * the field or value) in msg. */
int sv_attrs_parse(const sq_server *s, const struct cJSON *obj, uint32_t *attrs, char *msg,
                   size_t cap);
/* The attr.FIELD=VALUE query parameters likewise; −1 with msg on an unknown field or value. */
int sv_attrs_query(const sq_server *s, const sv_req *q, uint32_t *attrs, char *msg, size_t cap);

void sv_route_events(sq_server *s, const sv_req *q, sv_resp *r);
void sv_route_history(sq_server *s, const char *user, size_t len, const sv_req *q, sv_resp *r);
void sv_route_delete_user(sq_server *s, const char *user, size_t len, sv_resp *r);
void sv_route_put_item(sq_server *s, const char *item, size_t len, const sv_req *q, sv_resp *r);
void sv_route_put_user(sq_server *s, const char *user, size_t len, const sv_req *q, sv_resp *r);
void sv_route_recs(sq_server *s, const char *user, size_t len, const sv_req *q, sv_resp *r);
void sv_route_similar(sq_server *s, const char *item, size_t len, const sv_req *q, sv_resp *r);
void sv_route_reload(sq_server *s, const sv_req *q, sv_resp *r);
void sv_route_learn(sq_server *s, const sv_req *q, sv_resp *r);
void sv_route_health(sq_server *s, sv_resp *r);
void sv_route_info(sq_server *s, sv_resp *r);
/* The dashboard's JSON (dashboard.c): `what` is dataset, runs or evals. */
sq_status sv_dash_init(sq_server *s, sq_error *err); /* the dataset's JSON, once */
void sv_dash_free(sq_server *s);
void sv_route_dashboard(sq_server *s, const char *what, sv_resp *r);
/* GET /v1/items/{id}: the item's content features and statistics. */
void sv_route_item_info(sq_server *s, const char *item, size_t len, sv_resp *r);

/* JSON text → cJSON after checking nesting depth ≤ max_depth (without recursion); NULL with a
 * message in msg on error. */
struct cJSON *sv_json_parse(const char *text, size_t len, uint32_t max_depth, char *msg,
                            size_t cap);
/* Prints the object into r (200 unless status given) and deletes it. */
void sv_json_resp(sv_resp *r, unsigned status, struct cJSON *o);

#endif
