/* store.h — the event store of `seqrec serve`: every event posted over HTTP, every item's
 * metadata, in one SQLite database in WAL mode. An event is acknowledged only after the
 * transaction holding it has committed (synchronous=FULL): an acknowledged event survives
 * kill -9 and power loss.
 *
 *   handler threads ── sq_store_append(events) ──▶ queue ──▶ writer thread: one transaction
 *        ▲  (blocked until their events are committed)         for everything queued (group
 *        └──────────────────── woken after COMMIT ◀──────────── commit), prepared statements
 *   handler threads ── sq_store_user_events ──▶ a pool of read connections (WAL: readers never
 *                                               block the writer nor each other)
 *
 * One writer: every write (append, delete, item put) goes through the writer thread, so there
 * is never a SQLITE_BUSY between our own connections. Commits are batched: the writer takes
 * everything queued (up to max_batch events), commits once, wakes the callers.
 *
 * Schema (version 1, in PRAGMA user_version):
 *   events(seq INTEGER PRIMARY KEY, user TEXT, item TEXT, behaviour TEXT, ts INTEGER,
 *          scene TEXT, context TEXT (a JSON object or NULL), value REAL (NULL: none))
 *   index events_user(user, seq)
 *   items(id TEXT PRIMARY KEY, tags TEXT (JSON array), text TEXT, updated INTEGER)
 *   forgotten(user TEXT PRIMARY KEY, at INTEGER): users deleted (DELETE /v1/users/{id})
 *   users(user TEXT PRIMARY KEY, attrs TEXT (a JSON object), updated INTEGER): attributes put
 *     with PUT /v1/users/{id} (created where absent: version 1 stores made before it lack it)
 * seq grows with commit order; one append's events get consecutive seqs.
 *
 * Ownership: sq_store_open returns a handle freed by sq_store_close (which drains the queue
 * first). Strings passed in are copied before the call returns; strings handed to callbacks
 * live only during the callback. Every function is thread-safe. */
#ifndef SEQREC_SERVE_STORE_H
#define SEQREC_SERVE_STORE_H

#include "seqrec/core.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *user; /* external user id */
    size_t user_len;
    const char *item; /* external item id */
    size_t item_len;
    const char *behaviour; /* behaviour name, NUL-terminated ("view") */
    int64_t ts;            /* UTC seconds */
    const char *scene;     /* NUL-terminated; "" or NULL: none */
    const char *context;   /* a JSON object as text, NUL-terminated, or NULL */
    double value;          /* NaN: none */
} sq_store_event;

typedef struct {
    uint32_t max_batch; /* most events in one commit; 0: 4096 */
    uint32_t readers;   /* read connections in the pool; 0: 8 */
    int no_sync;        /* tests and benchmarks only: synchronous=OFF (not durable) */
    int sync_normal;    /* synchronous=NORMAL: an acknowledged event survives the process's
                           crash (kill -9) but not the machine's (power loss): no fsync per
                           commit, the WAL is synced at checkpoints */
} sq_store_opts;

typedef struct sq_store sq_store;

/* Opens (creating if absent) the database at path, sets WAL and synchronous=FULL, creates or
 * checks the schema, prepares statements and starts the writer thread. opts may be NULL.
 * Errors: SQ_ERR_IO (cannot open/create, not a database, locked by another writer),
 * SQ_ERR_FORMAT (a database of another schema version), SQ_ERR_NOMEM. */
sq_status sq_store_open(sq_store **out, const char *path, const sq_store_opts *opts, sq_error *err);
/* Commits what is queued, stops the writer, closes every connection. NULL: no-op. */
void sq_store_close(sq_store *st);

/* Appends n ≥ 1 events and returns once they are committed; *first_seq (may be NULL) is the
 * seq of the first, the others follow consecutively. Concurrent callers share commits.
 * Errors: SQ_ERR_IO (the commit failed: nothing of this call is stored), SQ_ERR_ARG (n = 0,
 * NULL user/item/behaviour), SQ_ERR_NOMEM. */
sq_status sq_store_append(sq_store *st, const sq_store_event *ev, size_t n, int64_t *first_seq,
                          sq_error *err);

/* Calls fn(ud, seq, ev) for the events of one user with seq > after, oldest first; with
 * limit > 0 only the `limit` most recent of those. fn returns 0 to go on, non-zero to stop.
 * Sees every append that returned before the call started. Errors: SQ_ERR_IO. */
typedef int (*sq_store_event_fn)(void *ud, int64_t seq, const sq_store_event *ev);
sq_status sq_store_user_events(sq_store *st, const char *user, size_t user_len, int64_t after,
                               size_t limit, sq_store_event_fn fn, void *ud, sq_error *err);

/* Every event with seq > after, in seq order, at most limit (0: all): for online learning. */
sq_status sq_store_events_since(sq_store *st, int64_t after, size_t limit, sq_store_event_fn fn,
                                void *ud, sq_error *err);

/* Deletes every event of the user and records them as forgotten, in one transaction committed
 * before returning (their attributes too); *deleted (may be NULL) is how many events.
 * Errors: SQ_ERR_IO. */
sq_status sq_store_delete_user(sq_store *st, const char *user, size_t user_len, uint64_t *deleted,
                               sq_error *err);

/* Calls fn(ud, user, len) for every forgotten user. */
typedef int (*sq_store_user_fn)(void *ud, const char *user, size_t len);
sq_status sq_store_forgotten(sq_store *st, sq_store_user_fn fn, void *ud, sq_error *err);

/* Inserts or replaces an item's metadata (committed before returning). tags_json: a JSON array
 * as text or NULL; text may be NULL. Errors: SQ_ERR_IO, SQ_ERR_ARG. */
sq_status sq_store_put_item(sq_store *st, const char *item, size_t item_len, const char *tags_json,
                            const char *text, sq_error *err);

/* Calls fn(ud, id, tags_json or NULL, text or NULL) for every item put, in id order. */
typedef int (*sq_store_item_fn)(void *ud, const char *id, const char *tags_json, const char *text);
sq_status sq_store_items(sq_store *st, sq_store_item_fn fn, void *ud, sq_error *err);

/* Inserts or replaces a user's attributes, attrs_json a JSON object as text (committed before
 * returning). Errors: SQ_ERR_IO, SQ_ERR_ARG. */
sq_status sq_store_put_user(sq_store *st, const char *user, size_t user_len, const char *attrs_json,
                            sq_error *err);
/* A user's attributes as put: *attrs_json a malloc'd copy (sq_free), NULL when none.
 * Errors: SQ_ERR_IO, SQ_ERR_NOMEM. */
sq_status sq_store_user_attrs(sq_store *st, const char *user, size_t user_len, char **attrs_json,
                              sq_error *err);

/* Events in the store (kept current by the writer; no query). */
uint64_t sq_store_count(const sq_store *st);
/* The highest seq committed (0: none). */
int64_t sq_store_last_seq(const sq_store *st);

/* PRAGMA integrity_check: SQ_OK or SQ_ERR_FORMAT with SQLite's first complaint. */
sq_status sq_store_check(sq_store *st, sq_error *err);

#endif
