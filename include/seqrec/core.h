/* core.h — what every seqrec module stands on: status codes and error messages, allocation
 * (with a fail-the-Nth-call hook for tests), per-step arenas, a seeded RNG, a string → id map,
 * atomic file output, and the logging / progress callbacks libraries report through.
 *
 * Ownership: every *_create has a *_free that accepts NULL. Libraries never print, exit or
 * abort on input: they return an sq_status and fill an sq_error; only the CLI turns that into
 * a message and an exit code.
 *
 * Example:
 *     sq_error err = {0};
 *     sq_arena *a = sq_arena_create(1 << 20);
 *     float *h = sq_arena_alloc(a, 256 * sizeof *h);   // NULL when the arena is full
 *     sq_arena_reset(a);                               // all of it gone at once
 *     sq_arena_free(a);
 */
#ifndef SEQREC_CORE_H
#define SEQREC_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ===================================== Status and errors ===================================== */

/* Our own codes, never errno values; sq_strerror names each. */
typedef enum {
    SQ_OK = 0,
    SQ_ERR_IO,       /* a file could not be opened, read, written, synced or renamed */
    SQ_ERR_NOMEM,    /* an allocation failed (or a configured limit was hit) */
    SQ_ERR_PARSE,    /* input text is malformed: message names file:line: field: reason */
    SQ_ERR_FORMAT,   /* a binary file is not ours, of another version, or corrupt */
    SQ_ERR_ARG,      /* the caller passed an invalid argument or option */
    SQ_ERR_NUMERIC,  /* NaN or Inf appeared in a computation */
    SQ_ERR_MISMATCH, /* two files do not belong together (model vs dataset) */
    SQ_ERR_NOTFOUND, /* an id or a key is unknown */
    SQ_ERR_LIMIT,    /* an input exceeds a bound (size, count, depth) */
    SQ_ERR_EMPTY,    /* nothing left to work on (e.g. every row rejected) */
    SQ_ERR_INTERNAL  /* a broken invariant: a bug */
} sq_status;

enum { SQ_ERR_MSG_MAX = 512 };

typedef struct {
    sq_status code;           /* SQ_OK when nothing went wrong */
    char msg[SQ_ERR_MSG_MAX]; /* one line, no trailing newline */
} sq_error;

/* Short name of a status code ("parse error"); never NULL. */
const char *sq_strerror(sq_status code);

/* Fills err (if not NULL) with code and the formatted message; returns code so that callers
 * can write `return sq_errorf(err, SQ_ERR_IO, "%s: %s", path, strerror(errno));`.
 * A message that does not fit is cut with "...". Newlines in it become spaces. */
sq_status sq_errorf(sq_error *err, sq_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ======================================== Allocation ========================================= */

/* malloc/calloc/realloc/free through one place, so that tests can make the Nth call fail and
 * check that every error path cleans up. sq_calloc and sq_mallocn check n * size for overflow. */
void *sq_malloc(size_t size);
void *sq_calloc(size_t n, size_t size);
void *sq_mallocn(size_t n, size_t size);
void *sq_realloc(void *p, size_t size);
void *sq_reallocn(void *p, size_t n, size_t size);
char *sq_strdup(const char *s);
char *sq_strndup(const char *s, size_t n);
void sq_free(void *p);

/* Test hook: after `n` more successful allocations every allocation fails (n < 0: never).
 * Returns the number of allocations made since the last call. Not thread-safe. */
long sq_alloc_fail_after(long n);

/* Grows *buf (of *cap elements of `size` bytes) so that it holds at least `need` elements:
 * doubles, never shrinks. Returns SQ_OK or SQ_ERR_NOMEM (the old buffer stays valid). */
sq_status sq_grow(void **buf, size_t *cap, size_t need, size_t size);

/* ========================================== Arenas =========================================== */

/* A bump allocator over one block: alloc is a pointer increment (64-byte aligned), reset frees
 * everything at once. Used for the activations of one training step and per-request scratch.
 * One arena per thread: not thread-safe. */
typedef struct sq_arena sq_arena;

sq_arena *sq_arena_create(size_t capacity); /* NULL when out of memory */
void sq_arena_free(sq_arena *a);
void *sq_arena_alloc(sq_arena *a, size_t size); /* NULL when the arena is full; never mallocs */
void *sq_arena_calloc(sq_arena *a, size_t size);
void sq_arena_reset(sq_arena *a);
size_t sq_arena_used(const sq_arena *a);
size_t sq_arena_peak(const sq_arena *a); /* the most ever used: to size the next arena */
size_t sq_arena_capacity(const sq_arena *a);

/* ============================================ RNG ============================================ */

/* xoshiro256** seeded through splitmix64: fast, good, and the same sequence on every platform.
 * State is explicit; give each thread its own via sq_rng_derive(seed, thread_index). */
typedef struct {
    uint64_t s[4];
} sq_rng;

void sq_rng_seed(sq_rng *r, uint64_t seed);
sq_rng sq_rng_derive(uint64_t seed, uint64_t stream); /* independent stream `stream` of seed */
uint64_t sq_rng_u64(sq_rng *r);
uint32_t sq_rng_below(sq_rng *r, uint32_t n); /* uniform in [0, n), unbiased; n > 0 */
double sq_rng_uniform(sq_rng *r);             /* uniform in [0, 1), 53 bits */
float sq_rng_uniformf(sq_rng *r);             /* uniform in [0, 1), 24 bits */
double sq_rng_normal(sq_rng *r);              /* standard normal (Box–Muller, no caching) */
void sq_rng_shuffle_u32(sq_rng *r, uint32_t *a, size_t n); /* Fisher–Yates */

/* ========================================== Hashing ========================================== */

uint32_t sq_crc32(uint32_t crc, const void *data, size_t n); /* zlib's CRC-32; start with 0 */
uint64_t sq_hash64(const void *data, size_t n);              /* FNV-1a then a 64-bit mix */

/* ====================================== String → id map ====================================== */

/* Interns byte strings and gives each a dense id 0, 1, 2… in first-seen order: the id maps of
 * users, items, behaviours, tags. Keys are copied into the map's own storage; pointers from
 * sq_strmap_key stay valid until the map is freed (storage grows in chunks, never moves). */
typedef struct sq_strmap sq_strmap;

sq_strmap *sq_strmap_create(size_t expected); /* NULL when out of memory */
void sq_strmap_free(sq_strmap *m);
/* Id of key, inserting it when absent (then *inserted = 1 if inserted is not NULL).
 * Returns SQ_OK, SQ_ERR_NOMEM, or SQ_ERR_LIMIT past 2^32 - 2 keys. */
sq_status sq_strmap_intern(sq_strmap *m, const char *key, size_t len, uint32_t *id, int *inserted);
/* Id of key, or UINT32_MAX when absent. */
uint32_t sq_strmap_find(const sq_strmap *m, const char *key, size_t len);
size_t sq_strmap_count(const sq_strmap *m);
const char *sq_strmap_key(const sq_strmap *m, uint32_t id, size_t *len); /* NUL-terminated */
size_t sq_strmap_bytes(const sq_strmap *m); /* memory held, for reports */

/* ===================================== Atomic file output ==================================== */

/* Writes to "<path>.tmp.<pid>" and, on commit, fsyncs it, renames it over path and fsyncs the
 * directory: readers see the old file or the whole new one, never half of it. abort (or free
 * without commit) removes the temporary file. */
typedef struct sq_afile sq_afile;

sq_status sq_afile_open(sq_afile **out, const char *path, sq_error *err);
FILE *sq_afile_stream(sq_afile *f);
sq_status sq_afile_commit(sq_afile *f, sq_error *err); /* frees f in every case */
void sq_afile_abort(sq_afile *f);                      /* frees f; NULL is a no-op */

/* ==================================== Logging and progress =================================== */

typedef enum { SQ_LOG_DEBUG = 0, SQ_LOG_INFO, SQ_LOG_WARN, SQ_LOG_ERROR } sq_log_level;

/* Libraries report through these; the CLI decides what to show and how. Either may be NULL. */
typedef void (*sq_log_fn)(void *ud, sq_log_level level, const char *module, const char *msg);
/* `stage` names the work ("reading ratings.dat"), done/total in `unit`s (total 0: unknown). */
typedef void (*sq_progress_fn)(void *ud, const char *stage, uint64_t done, uint64_t total,
                               const char *unit);

typedef struct {
    sq_log_fn log;           /* messages; NULL: dropped */
    sq_progress_fn progress; /* progress of long work; NULL: none */
    void *ud;                /* passed to both */
} sq_reporter;

void sq_report_log(const sq_reporter *r, sq_log_level level, const char *module, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
void sq_report_progress(const sq_reporter *r, const char *stage, uint64_t done, uint64_t total,
                        const char *unit);

/* A terminal progress renderer for the CLI: on a TTY a redrawn bar with rate and ETA (at most
 * 10 redraws a second), otherwise a plain line every 5 s of a stage and one when a stage that
 * printed (or took over 2 s) finishes; nothing when quiet. */
typedef struct {
    FILE *out;      /* usually stderr */
    int tty;        /* draw a bar (1) or plain lines (0) */
    int quiet;      /* print nothing */
    double t_start; /* wall time the current stage began */
    double t_last;  /* wall time of the last redraw */
    char stage[96]; /* current stage, to notice a new one */
    int open_line;  /* a bar is on screen without its newline yet */
    int printed;    /* something was shown for the current stage */
} sq_progress_bar;

void sq_progress_bar_init(sq_progress_bar *b, FILE *out, int quiet);
void sq_progress_bar_update(void *bar, const char *stage, uint64_t done, uint64_t total,
                            const char *unit); /* an sq_progress_fn */
void sq_progress_bar_done(sq_progress_bar *b); /* ends an open bar line */

double sq_now(void); /* monotonic wall-clock seconds */

/* ========================================== Config =========================================== */

/* A flat, ordered set of key → value strings: a model's or a run's configuration. Built from
 * defaults, then a config file (a flat JSON object, or "key = value" lines with # comments),
 * then `--set key=value` overrides; stored in model files as JSON. Getters parse on demand and
 * report the key and the bad value. */
typedef struct sq_config sq_config;

sq_config *sq_config_create(void); /* NULL when out of memory */
void sq_config_free(sq_config *c);
sq_config *sq_config_clone(const sq_config *c);
/* Sets key to value (both copied), replacing an earlier value. SQ_ERR_ARG for an empty or
 * malformed key (letters, digits, '_', '.', '-'), SQ_ERR_NOMEM. */
sq_status sq_config_set(sq_config *c, const char *key, const char *value, sq_error *err);
/* Sets key to a number: "%ld" of (long)v when is_int, else "%g" (how models write their
 * resolved settings back). */
sq_status sq_config_set_num(sq_config *c, const char *key, double v, int is_int, sq_error *err);
/* Sets only when the key is absent (defaults). */
sq_status sq_config_default(sq_config *c, const char *key, const char *value, sq_error *err);
/* "key=value" as given to --set. */
sq_status sq_config_set_arg(sq_config *c, const char *arg, sq_error *err);
/* Reads a config file (JSON object or key = value lines). Errors name file:line. */
sq_status sq_config_load(sq_config *c, const char *path, sq_error *err);
/* Merges a flat JSON object text (numbers, strings, booleans). */
sq_status sq_config_from_json(sq_config *c, const char *json, const char *what, sq_error *err);
/* A flat JSON object of all keys (numbers stay numbers); malloc'd, free with sq_free. */
char *sq_config_to_json(const sq_config *c);
const char *sq_config_get(const sq_config *c, const char *key); /* NULL when absent */
size_t sq_config_count(const sq_config *c);
const char *sq_config_key_at(const sq_config *c, size_t i);
/* Typed getters: the default when absent; SQ_ERR_ARG "key 'hidden': 'abc' is not an integer"
 * (or out of [lo, hi]) otherwise. */
sq_status sq_config_int(const sq_config *c, const char *key, long def, long lo, long hi, long *out,
                        sq_error *err);
sq_status sq_config_double(const sq_config *c, const char *key, double def, double lo, double hi,
                           double *out, sq_error *err);
/* One of a |-separated list of choices ("ce|bce|sampled"); returns its index. */
sq_status sq_config_choice(const sq_config *c, const char *key, const char *choices, int def,
                           int *out, sq_error *err);

/* ======================================= Small helpers ======================================= */

/* Formats n with thousands separators ("1,000,209") into buf; returns buf. */
char *sq_fmt_count(char *buf, size_t cap, uint64_t n);

#ifdef __cplusplus
}
#endif
#endif
