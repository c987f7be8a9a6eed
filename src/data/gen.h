/* gen.h — internals of the synthetic log generator, shared by generate.c (options, the
 * simulation of every user, the driver), gen_world.c (the planted ground truth, the tables the
 * simulation draws from, the item side file) and gen_write.c (the output sink with optional
 * gzip, and one line per event in each input format).
 *
 * The simulation hands each event to gen_write_event as a gen_event; the writer formats it into
 * a large buffer by hand (no printf per field) and flushes the buffer through the sink: straight
 * to the sq_afile stream, or through a zlib deflate stream with a gzip wrapper. Write errors are
 * sticky in the sink and surface at gen_sink_commit, which is the only place the file appears
 * under its final name. */
#ifndef SEQREC_DATA_GEN_H
#define SEQREC_DATA_GEN_H

#include "seqrec/data.h"

#include <zlib.h>

enum {
    GEN_MAX_BEHAVIOURS = 8,        /* funnel stages */
    GEN_MAX_SCENES = 1000,         /* scenes option bound */
    GEN_NAME_MAX = 32,             /* longest behaviour name */
    GEN_DEVICES = 3,               /* mobile, desktop, tablet */
    GEN_BUF = 1 << 20,             /* sink buffer bytes */
    GEN_LINE_MAX = 512,            /* longest line one gen_write_* call may add */
    GEN_SCENE_NAME_MAX = 16,       /* "scene" + any uint32_t and the NUL fit */
    GEN_START_SPREAD = 30 * 86400, /* first sessions start within this after t0 */
    GEN_SESSION_MAX = 50,          /* steps in a session at most */
    GEN_GAP_VIEW_MIN = 10,         /* seconds between steps of a session, at least */
    GEN_GAP_VIEW_MEAN = 50,        /* plus an exponential with this mean */
    GEN_GAP_SESSION_MIN = 1800,    /* seconds between sessions, at least */
};
#define GEN_SESSION_CONT 0.8 /* a session goes on after a step: mean length 5 */
#define GEN_P_MAX 0.95       /* conversion probability cap */

/* One event as the simulation produces it; names are looked up in the gen_vocab. */
typedef struct {
    uint32_t user;  /* user number, written as is */
    uint32_t item;  /* item number, written as is */
    int64_t ts;     /* UTC seconds */
    uint16_t scene; /* index into gen_vocab.scene */
    uint8_t beh;    /* funnel stage, index into gen_vocab.beh */
    uint8_t device; /* index into gen_device_names */
    uint8_t hour;   /* hour of day of ts, 0..23 */
    uint8_t value;  /* planted rating 1..5 */
} gen_event;

/* A name with its length, for copying without strlen. */
typedef struct {
    const char *p; /* not NUL-terminated necessarily */
    uint32_t n;    /* bytes */
} gen_name;

/* The names an event line refers to. */
typedef struct {
    sq_format format;                 /* output format (never SQ_FMT_AUTO) */
    gen_name beh[GEN_MAX_BEHAVIOURS]; /* funnel stage names */
    uint32_t n_beh;                   /* stages */
    gen_name *scene;                  /* scene names, n_scenes of them */
    uint32_t n_scenes;                /* scenes */
} gen_vocab;

extern const gen_name gen_device_names[GEN_DEVICES];

/* An output file being written: buffer → (deflate →) sq_afile. */
typedef struct {
    sq_afile *af;     /* the atomic output file; NULL when not open */
    FILE *f;          /* its stream */
    char *buf;        /* pending uncompressed bytes, GEN_BUF of them */
    size_t n;         /* bytes pending in buf */
    int gz;           /* compress: gzip wrapper around deflate */
    int z_ready;      /* z was initialised (deflateEnd owed) */
    z_stream z;       /* deflate state when gz */
    char *zout;       /* deflate output chunk, GEN_BUF bytes */
    int err_no;       /* errno of the first failed write; 0: none */
    int z_err;        /* zlib error of the first failed deflate; Z_OK: none */
    const char *path; /* final name, for messages (caller's string) */
} gen_sink;

/* Opens path through sq_afile (temporary file beside it). Errors: SQ_ERR_IO, SQ_ERR_NOMEM. */
sq_status gen_sink_open(gen_sink *s, const char *path, int gzip, sq_error *err);
/* Flushes everything, finishes the gzip stream, fsyncs and renames; frees the sink's memory in
 * every case. Errors: SQ_ERR_IO (any write since open failed), SQ_ERR_NOMEM. */
sq_status gen_sink_commit(gen_sink *s, sq_error *err);
/* Drops the temporary file and frees the sink; a sink never opened (zeroed) is fine. */
void gen_sink_abort(gen_sink *s);
/* Writes pending bytes out (through deflate when gz); errors are kept in the sink. */
void gen_sink_flush(gen_sink *s);

/* Appends n bytes (n ≤ GEN_LINE_MAX) / a C string (flushing first when the buffer is full). */
void gen_put(gen_sink *s, const char *p, size_t n);
void gen_puts(gen_sink *s, const char *str);
/* Appends the decimal digits of v. */
void gen_put_u64(gen_sink *s, uint64_t v);

/* The header line of the format (csv, tsv, recbole), nothing for the others. */
void gen_write_header(gen_sink *s, const gen_vocab *v);
/* One event line in v->format. */
void gen_write_event(gen_sink *s, const gen_vocab *v, const gen_event *e);

/* Writes pending bytes out when fewer than GEN_LINE_MAX bytes are free. */
static inline void gen_sink_reserve(gen_sink *s) {
    if (s->n > GEN_BUF - GEN_LINE_MAX)
        gen_sink_flush(s);
}

/* ================================ gen_world.c: ground truth ================================== */

/* The options resolved and checked, and the names lines refer to. */
typedef struct gen_cfg {
    uint64_t seed;      /* from the options */
    uint64_t events;    /* total events */
    uint32_t users;     /* users */
    uint32_t items;     /* items */
    uint32_t clusters;  /* resolved cluster count, 1..items */
    int64_t t0;         /* resolved first timestamp */
    int gzip;           /* compress the event file */
    int funnel;         /* the format has a behaviour column: simulate the funnel */
    int realistic;      /* funnel SQ_GEN_FUNNEL_REALISTIC (gen_funnel.c) */
    const char *oracle; /* oracle file path (realistic funnel only); NULL: none */
    gen_vocab vocab;    /* format and names (vocab.scene set by gen_world_build) */
    char beh_buf[GEN_MAX_BEHAVIOURS][GEN_NAME_MAX + 1]; /* behaviour names */
} gen_cfg;

/* Tables built once from the options. */
typedef struct gen_world {
    const gen_cfg *c;     /* resolved options */
    uint32_t max_members; /* size of the largest cluster */
    double *pop_cdf;      /* [max_members] cumulative Zipf weights of member ranks */
    uint32_t *succ;       /* [items × SQ_GEN_SUCCESSORS] strong successors */
    double *scene_cdf;    /* [3 × scenes] cumulative scene weights: row 0 after a followed
                             successor, row 1 otherwise, row 2 a revisit of a carted item
                             (realistic funnel) */
    double *rate;         /* [2 × scenes] conversion: row 0 stage 1, row 1 later stages */
    uint64_t *len;        /* [users] events of each user */
    gen_name *scene;      /* [scenes] names */
    char (*scene_buf)[GEN_SCENE_NAME_MAX]; /* their storage */
} gen_world;

/* Members of cluster c: items c, c + C, c + 2C, … below items. */
static inline uint32_t gen_cluster_size(uint32_t items, uint32_t C, uint32_t c) {
    return (items - 1 - c) / C + 1;
}

/* clusters option resolved: 0 → round(sqrt(items)), at most items. */
uint32_t gen_resolve_clusters(const sq_gen_opts *o);
/* A pure function of (seed, a, b): the source of every per-item fact. */
uint64_t gen_hash3(uint64_t seed, uint64_t a, uint64_t b);
/* Item quality in [-1, 1), part of the planted rating. */
double gen_item_quality(uint64_t seed, uint32_t item);
/* Builds every table and plans events per user. Errors: SQ_ERR_NOMEM (w left empty). */
sq_status gen_world_build(gen_world *w, const gen_cfg *c, sq_error *err);
void gen_world_free(gen_world *w); /* leaves w zeroed; twice is harmless */
/* The item side file: movies.dat rows for movielens, else a RecBole .item file. */
void gen_write_items(gen_sink *s, const gen_cfg *c);

/* ============================ generate.c: draws shared by the funnels ======================== */

/* Where events go, and progress. */
typedef struct {
    gen_sink *sink;         /* the event file */
    gen_sink *oracle;       /* the oracle file (realistic funnel); NULL: none */
    const gen_vocab *vocab; /* names */
    const sq_reporter *rep; /* progress callback */
    uint64_t done, total;   /* events written, to write */
} gen_emitter;

/* Writes e to the event file and counts it for the progress. */
void gen_emit(gen_emitter *em, const gen_event *e);

/* What a user is: drawn first from the user's stream, the same way in both funnels. */
typedef struct {
    uint32_t pref[3]; /* preferred clusters */
    uint32_t np;      /* how many, 1..3 */
    uint8_t primary;  /* primary device */
} gen_user;

void gen_user_draw(const gen_world *w, sq_rng *r, gen_user *g);
/* The affinity of the user to cluster cl: 1.0, 0.7, 0.5 by preference rank, else 0. */
double gen_affinity(const gen_user *g, uint32_t cl);
/* The planted rating 1..5 (one normal draw). */
uint8_t gen_value(const gen_world *w, sq_rng *r, double aff, uint32_t item);
/* A session's device, then its starting cluster (*cl) and first item. */
uint8_t gen_session_device(sq_rng *r, const gen_user *g);
uint32_t gen_session_item(const gen_world *w, sq_rng *r, const gen_user *g, uint32_t *cl);
/* The next item of a session's Markov walk from item; *cl may switch; *followed says whether
 * a strong successor was followed. */
uint32_t gen_walk(const gen_world *w, sq_rng *r, const gen_user *g, uint32_t item, uint32_t *cl,
                  int *followed);
/* A scene from row (0 followed, 1 other, 2 cart revisit) of the scene weights. */
uint16_t gen_scene_draw(const gen_world *w, sq_rng *r, int row);
/* Device × hour × taste factor of every conversion rate. */
double gen_rate_mult(uint8_t device, uint8_t hour, double aff);
int64_t gen_exp_draw(sq_rng *r, double mean);
/* The session-gap mean of a user with `left` events (shorter for very active users). */
double gen_gap_mean(uint64_t left);

/* ===================== gen_funnel.c: the realistic funnel (docs/generator.md) ================= */

/* Simulates user u with purchases not decided by the previous event; writes the oracle line of
 * every event when em->oracle is set. */
void gen_sim_user_realistic(const gen_world *w, uint32_t u, gen_emitter *em);
/* The oracle file's header line. */
void gen_write_oracle_header(gen_sink *s, const gen_vocab *v);

#endif
