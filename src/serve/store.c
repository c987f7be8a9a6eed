/* store.c — the event store: SQLite in WAL mode, one writer thread that commits in groups, a
 * pool of read connections. The contract is in store.h; this file says how it is kept.
 *
 * Design notes
 *  1. Every write (append, delete, item put) is a job run by the writer thread on its one
 *     connection (st->wdb), so our own connections never meet SQLITE_BUSY. A caller copies its
 *     strings into one allocation owned by its job, links the job at the tail of the queue under
 *     st->mu and waits on the job's own condition variable until job->done.
 *  2. The writer takes jobs from the head while their events fit in max_batch (a delete or an
 *     item put weighs one event; the first job is always taken, so a larger append still goes
 *     through whole), runs them in one BEGIN IMMEDIATE ... COMMIT with prepared statements, then,
 *     under st->mu, publishes count and last_seq, sets every job's result and signals it.
 *  3. Between being dequeued and done = 1 a job is touched by the writer only; once done = 1 the
 *     writer never touches it again (it lives on the caller's stack).
 *  4. Retry policy: a batch whose transaction fails is rolled back. When a job's statement
 *     failed because of that job's own data (a constraint or trigger, a string over SQLite's
 *     length limit), that job alone fails and the others are run again together, as often as
 *     needed: one bad job does not fail its neighbours. Any other failure (BEGIN or COMMIT,
 *     I/O, disk full, a lock held past busy_timeout) fails every job of the batch at once, since
 *     running them one by one would only meet it again, each after its own busy wait. A failed
 *     job gets SQ_ERR_IO with SQLite's message, and nothing of it is stored.
 *  5. seq is INTEGER PRIMARY KEY AUTOINCREMENT: a seq is never reused, even after the events with
 *     the highest seqs were deleted, so seqs grow with commit order across deletes and restarts
 *     and an events_since reader never misses an event. last_seq is the highest seq ever given.
 *  6. count and last_seq are atomics written by the writer only, after COMMIT and before the
 *     callers are woken: when append returns, its events are counted.
 *  7. A read takes a connection from the pool (blocking while all are in use), steps one
 *     prepared statement, resets it (ending the read transaction, so the next read sees newer
 *     commits) and gives the connection back. Callbacks run while the connection is held: a
 *     callback that reads the store again needs a second connection (with readers = 1 it would
 *     wait forever).
 *  8. Events read back: scene "" or NULL is stored as NULL and read back as ""; context NULL
 *     stays NULL; value NaN is stored as NULL and read back as NaN.
 *
 * Life of the writer thread:
 *
 *     sq_store_open ──▶ WAITING ──job queued──▶ COMMITTING ──callers woken──▶ WAITING
 *                          │ sq_store_close sets stopping: the queue is drained first
 *                          ▼
 *                        EXITED (queue empty) ──▶ sq_store_close joins, closes connections
 */
#define _POSIX_C_SOURCE 200809L
#include "serve/store.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

enum { SCHEMA_VERSION = 1, DEFAULT_BATCH = 4096, DEFAULT_READERS = 8, BUSY_MS = 5000 };

static const char *const SCHEMA =
    "CREATE TABLE events(seq INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL,"
    " item TEXT NOT NULL, behaviour TEXT NOT NULL, ts INTEGER NOT NULL, scene TEXT,"
    " context TEXT, value REAL);"
    "CREATE INDEX events_user ON events(user, seq);"
    "CREATE TABLE items(id TEXT PRIMARY KEY, tags TEXT, text TEXT, updated INTEGER NOT NULL);"
    "CREATE TABLE forgotten(user TEXT PRIMARY KEY, at INTEGER NOT NULL);"
    "PRAGMA user_version = 1;";

/* Added without a version change: created where absent (stores made before it have none). */
static const char *const USERS_TABLE =
    "CREATE TABLE IF NOT EXISTS users(user TEXT PRIMARY KEY, attrs TEXT NOT NULL,"
    " updated INTEGER NOT NULL);";

#define EVENT_COLS "seq, user, item, behaviour, ts, scene, context, value"

/* ========================================= Types ========================================== */

typedef enum { JOB_APPEND, JOB_DELETE, JOB_PUT, JOB_PUT_USER } job_kind;

typedef struct job {
    job_kind kind;            /* what the writer does with it */
    struct job *next;         /* queue link, then batch link */
    sq_store_event *ev;       /* append: the events (strings point into buf) */
    size_t n;                 /* append: how many events */
    const char *id;           /* delete, put user: the user; put: the item (into buf) */
    size_t id_len;            /* its length in bytes */
    const char *tags;         /* put: JSON array text or NULL (into buf) */
    const char *text;         /* put: text or NULL; put user: the attributes (into buf) */
    char *buf;                /* the one allocation holding every copy */
    int done;                 /* set under st->mu once the result below is final */
    sq_status rc;             /* the result */
    int64_t first_seq;        /* append: seq of the first event */
    uint64_t deleted;         /* delete: events removed */
    char msg[SQ_ERR_MSG_MAX]; /* the error when rc != SQ_OK */
    pthread_cond_t cv;        /* signalled when done is set */
} job;

typedef struct {
    sqlite3 *db;             /* a connection used only for reading (query_only) */
    sqlite3_stmt *user_all;  /* one user's events after a seq, oldest first */
    sqlite3_stmt *user_last; /* the `limit` most recent of those, oldest first */
    sqlite3_stmt *since;     /* every event after a seq, oldest first, LIMIT ? */
    sqlite3_stmt *items;     /* every item by id */
    sqlite3_stmt *attrs;     /* one user's attributes */
} reader;

struct sq_store {
    char *path;                 /* the database file, for messages */
    uint32_t max_batch;         /* most events in one commit */
    sqlite3 *wdb;               /* the writer's connection: the writer thread's alone */
    sqlite3_stmt *w_begin;      /* BEGIN IMMEDIATE */
    sqlite3_stmt *w_commit;     /* COMMIT */
    sqlite3_stmt *w_rollback;   /* ROLLBACK */
    sqlite3_stmt *w_insert;     /* one event */
    sqlite3_stmt *w_delete;     /* one user's events */
    sqlite3_stmt *w_forget;     /* records a deleted user */
    sqlite3_stmt *w_put;        /* one item, insert or replace */
    sqlite3_stmt *w_put_user;   /* one user's attributes, insert or replace */
    sqlite3_stmt *w_unput_user; /* one user's attributes, deleted */
    pthread_t writer;           /* the writer thread */
    int writer_started;         /* writer is joinable */
    int sync_ready;             /* the mutexes and condition variables below exist */
    pthread_mutex_t mu;         /* guards head, tail, stopping and queued jobs' done/result */
    pthread_cond_t work;        /* signalled when a job is queued or stopping is set */
    job *head, *tail;           /* the queue, oldest first */
    int stopping;               /* sq_store_close was called: drain and exit */
    _Atomic uint64_t count;     /* events in the store */
    _Atomic int64_t last_seq;   /* highest seq ever committed */
    reader *readers;            /* the pool */
    uint32_t nreaders;          /* its size */
    uint32_t *free_idx;         /* a stack of idle readers' indices */
    uint32_t nfree;             /* its height */
    pthread_mutex_t pool_mu;    /* guards free_idx, nfree */
    pthread_cond_t pool_cv;     /* signalled when a reader is given back */
};

/* ======================================== Helpers ========================================= */

static sq_status sql_error(sq_error *err, sq_status code, const sq_store *st, sqlite3 *db) {
    return sq_errorf(err, code, "%s: %s", st->path, db ? sqlite3_errmsg(db) : "out of memory");
}

/* Runs a statement to its end (no rows expected), resets it and clears its bindings. Returns
 * SQLITE_DONE, or the error with its message written to msg (SQ_ERR_MSG_MAX bytes). */
static int step_done(const sq_store *st, sqlite3_stmt *s, char *msg) {
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        rc = SQLITE_MISUSE; /* none of ours returns rows */
    if (rc != SQLITE_DONE && msg)
        snprintf(msg, SQ_ERR_MSG_MAX, "%s: %s", st->path, sqlite3_errmsg(sqlite3_db_handle(s)));
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

/* One integer from the first row of sql (NULL reads as 0). Returns an SQLite code. */
static int query_i64(sqlite3 *db, const char *sql, int64_t *out) {
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(s, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(s);
    return rc;
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **s) {
    return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, s, NULL);
}

/* Opens a connection with our settings common to the writer and the readers. */
static sq_status open_conn(sq_store *st, sqlite3 **db, int flags, sq_error *err) {
    int rc = sqlite3_open_v2(st->path, db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        sq_status code = rc == SQLITE_NOMEM ? SQ_ERR_NOMEM : SQ_ERR_IO;
        return sql_error(err, code, st, *db);
    }
    sqlite3_extended_result_codes(*db, 1);
    sqlite3_busy_timeout(*db, BUSY_MS);
    return SQ_OK;
}

static sq_status exec(sq_store *st, sqlite3 *db, const char *sql, sq_error *err) {
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sql_error(err, SQ_ERR_IO, st, db);
    return SQ_OK;
}

/* ========================================== Open ========================================== */

/* A version-0 database must be empty (we create the schema); a version-1 one must hold our
 * tables; any other version is someone else's. Run inside a transaction when creating. */
static sq_status check_version(sq_store *st, int create, sq_error *err) {
    int64_t v = 0, tables = 0;
    if (query_i64(st->wdb, "PRAGMA user_version", &v) != SQLITE_OK)
        return sql_error(err, SQ_ERR_IO, st, st->wdb);
    if (v == 0) {
        if (query_i64(st->wdb, "SELECT count(*) FROM sqlite_master", &tables) != SQLITE_OK)
            return sql_error(err, SQ_ERR_IO, st, st->wdb);
        if (tables != 0)
            return sq_errorf(err, SQ_ERR_FORMAT, "%s: not a seqrec event store (no version)",
                             st->path);
        return create ? exec(st, st->wdb, SCHEMA, err) : SQ_OK;
    }
    if (v != SCHEMA_VERSION)
        return sq_errorf(err, SQ_ERR_FORMAT, "%s: event store version %lld, expected %d", st->path,
                         (long long)v, SCHEMA_VERSION);
    if (query_i64(st->wdb,
                  "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                  " AND name IN ('events', 'items')",
                  &tables) != SQLITE_OK)
        return sql_error(err, SQ_ERR_IO, st, st->wdb);
    if (tables != 2)
        return sq_errorf(err, SQ_ERR_FORMAT, "%s: version 1 but tables are missing", st->path);
    return SQ_OK;
}

/* The writer connection: WAL, synchronous, schema, counters, statements. */
static sq_status open_writer(sq_store *st, int no_sync, int sync_normal, sq_error *err) {
    sq_status rc = open_conn(st, &st->wdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, err);
    if (rc)
        return rc;
    /* Check before switching to WAL so that a foreign database is left as it was. */
    if ((rc = check_version(st, 0, err)))
        return rc;
    sqlite3_stmt *s = NULL;
    int wal = sqlite3_prepare_v2(st->wdb, "PRAGMA journal_mode = WAL", -1, &s, NULL) == SQLITE_OK &&
              sqlite3_step(s) == SQLITE_ROW;
    if (wal)
        wal = sqlite3_stricmp((const char *)sqlite3_column_text(s, 0), "wal") == 0 ? 1 : -1;
    sqlite3_finalize(s);
    if (wal == 0)
        return sql_error(err, SQ_ERR_IO, st, st->wdb);
    if (wal < 0)
        return sq_errorf(err, SQ_ERR_IO, "%s: cannot use WAL mode", st->path);
    if ((rc = exec(st, st->wdb,
                   no_sync       ? "PRAGMA synchronous = OFF"
                   : sync_normal ? "PRAGMA synchronous = NORMAL"
                                 : "PRAGMA synchronous = FULL",
                   err)))
        return rc;
    if ((rc = exec(st, st->wdb, "BEGIN IMMEDIATE", err)))
        return rc;
    int64_t count = 0, last = 0;
    if (!(rc = check_version(st, 1, err)) && !(rc = exec(st, st->wdb, USERS_TABLE, err))) {
        if (query_i64(st->wdb, "SELECT count(*) FROM events", &count) != SQLITE_OK ||
            query_i64(st->wdb,
                      "SELECT max(coalesce((SELECT seq FROM sqlite_sequence"
                      " WHERE name = 'events'), 0), coalesce((SELECT max(seq) FROM events), 0))",
                      &last) != SQLITE_OK)
            rc = sql_error(err, SQ_ERR_IO, st, st->wdb);
    }
    if (!rc)
        rc = exec(st, st->wdb, "COMMIT", err);
    if (rc) {
        sqlite3_exec(st->wdb, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    atomic_store(&st->count, (uint64_t)count);
    atomic_store(&st->last_seq, last);
    if (prepare(st->wdb, "BEGIN IMMEDIATE", &st->w_begin) ||
        prepare(st->wdb, "COMMIT", &st->w_commit) ||
        prepare(st->wdb, "ROLLBACK", &st->w_rollback) ||
        prepare(st->wdb,
                "INSERT INTO events(user, item, behaviour, ts, scene, context, value)"
                " VALUES(?, ?, ?, ?, ?, ?, ?)",
                &st->w_insert) ||
        prepare(st->wdb, "DELETE FROM events WHERE user = ?", &st->w_delete) ||
        prepare(st->wdb, "INSERT OR REPLACE INTO forgotten(user, at) VALUES(?, ?)",
                &st->w_forget) ||
        prepare(st->wdb, "INSERT OR REPLACE INTO items(id, tags, text, updated) VALUES(?, ?, ?, ?)",
                &st->w_put) ||
        prepare(st->wdb, "INSERT OR REPLACE INTO users(user, attrs, updated) VALUES(?, ?, ?)",
                &st->w_put_user) ||
        prepare(st->wdb, "DELETE FROM users WHERE user = ?", &st->w_unput_user))
        return sql_error(err, SQ_ERR_IO, st, st->wdb);
    return SQ_OK;
}

static sq_status open_reader(sq_store *st, reader *r, sq_error *err) {
    sq_status rc = open_conn(st, &r->db, SQLITE_OPEN_READWRITE, err);
    if (rc)
        return rc;
    if ((rc = exec(st, r->db, "PRAGMA query_only = 1", err)))
        return rc;
    if (prepare(r->db,
                "SELECT " EVENT_COLS " FROM events WHERE user = ?1 AND seq > ?2 ORDER BY seq",
                &r->user_all) ||
        prepare(r->db,
                "SELECT * FROM (SELECT " EVENT_COLS " FROM events WHERE user = ?1 AND seq > ?2"
                " ORDER BY seq DESC LIMIT ?3) ORDER BY seq",
                &r->user_last) ||
        prepare(r->db, "SELECT " EVENT_COLS " FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                &r->since) ||
        prepare(r->db, "SELECT id, tags, text FROM items ORDER BY id", &r->items) ||
        prepare(r->db, "SELECT attrs FROM users WHERE user = ?", &r->attrs))
        return sql_error(err, SQ_ERR_IO, st, r->db);
    return SQ_OK;
}

static void *writer_main(void *arg);

/* Frees everything open built so far; the writer thread is already joined (or never ran). */
static void destroy(sq_store *st) {
    for (uint32_t i = 0; st->readers && i < st->nreaders; i++) {
        reader *r = &st->readers[i];
        sqlite3_finalize(r->user_all);
        sqlite3_finalize(r->user_last);
        sqlite3_finalize(r->since);
        sqlite3_finalize(r->items);
        sqlite3_finalize(r->attrs);
        sqlite3_close(r->db);
    }
    /* The writer's connection closes last: it checkpoints the WAL and removes it. */
    sqlite3_finalize(st->w_begin);
    sqlite3_finalize(st->w_commit);
    sqlite3_finalize(st->w_rollback);
    sqlite3_finalize(st->w_insert);
    sqlite3_finalize(st->w_delete);
    sqlite3_finalize(st->w_forget);
    sqlite3_finalize(st->w_put);
    sqlite3_finalize(st->w_put_user);
    sqlite3_finalize(st->w_unput_user);
    sqlite3_close(st->wdb);
    if (st->sync_ready) {
        pthread_mutex_destroy(&st->mu);
        pthread_cond_destroy(&st->work);
        pthread_mutex_destroy(&st->pool_mu);
        pthread_cond_destroy(&st->pool_cv);
    }
    sq_free(st->readers);
    sq_free(st->free_idx);
    sq_free(st->path);
    sq_free(st);
}

static int init_sync(sq_store *st) {
    if (pthread_mutex_init(&st->mu, NULL))
        return -1;
    if (pthread_cond_init(&st->work, NULL))
        goto no_work;
    if (pthread_mutex_init(&st->pool_mu, NULL))
        goto no_pool_mu;
    if (pthread_cond_init(&st->pool_cv, NULL))
        goto no_pool_cv;
    st->sync_ready = 1;
    return 0;
no_pool_cv:
    pthread_mutex_destroy(&st->pool_mu);
no_pool_mu:
    pthread_cond_destroy(&st->work);
no_work:
    pthread_mutex_destroy(&st->mu);
    return -1;
}

sq_status sq_store_open(sq_store **out, const char *path, const sq_store_opts *opts,
                        sq_error *err) {
    *out = NULL;
    if (!path)
        return sq_errorf(err, SQ_ERR_ARG, "event store: path is NULL");
    if (!sqlite3_threadsafe())
        return sq_errorf(err, SQ_ERR_IO, "%s: SQLite was built without thread support", path);
    sq_store_opts o = opts ? *opts : (sq_store_opts){0};
    sq_store *st = sq_calloc(1, sizeof *st);
    if (!st)
        return sq_errorf(err, SQ_ERR_NOMEM, "%s: out of memory", path);
    st->max_batch = o.max_batch ? o.max_batch : DEFAULT_BATCH;
    st->nreaders = o.readers ? o.readers : DEFAULT_READERS;
    st->path = sq_strdup(path);
    st->readers = sq_calloc(st->nreaders, sizeof *st->readers);
    st->free_idx = sq_calloc(st->nreaders, sizeof *st->free_idx);
    sq_status rc = SQ_OK;
    if (!st->path || !st->readers || !st->free_idx || init_sync(st)) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    if ((rc = open_writer(st, o.no_sync, o.sync_normal, err)))
        goto fail;
    for (uint32_t i = 0; i < st->nreaders; i++) {
        if ((rc = open_reader(st, &st->readers[i], err)))
            goto fail;
        st->free_idx[st->nfree++] = st->nreaders - 1 - i;
    }
    if (pthread_create(&st->writer, NULL, writer_main, st)) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "%s: cannot start the writer thread", path);
        goto fail;
    }
    st->writer_started = 1;
    *out = st;
    return SQ_OK;
fail:
    destroy(st);
    return rc;
}

void sq_store_close(sq_store *st) {
    if (!st)
        return;
    if (st->writer_started) {
        pthread_mutex_lock(&st->mu);
        st->stopping = 1;
        pthread_cond_signal(&st->work);
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->writer, NULL);
    }
    destroy(st);
}

/* ========================================= Writer ========================================= */

static size_t job_weight(const job *j) {
    return j->kind == JOB_APPEND ? j->n : 1;
}

/* Detaches the jobs of the next transaction from the queue (note 2). Under st->mu. */
static job *take_batch(sq_store *st) {
    job *first = st->head, *last = first;
    size_t events = job_weight(first);
    while (last->next && events < st->max_batch &&
           job_weight(last->next) <= st->max_batch - events) {
        events += job_weight(last->next);
        last = last->next;
    }
    st->head = last->next;
    if (!st->head)
        st->tail = NULL;
    last->next = NULL;
    return first;
}

static int bind_opt_text(sqlite3_stmt *s, int col, const char *t) {
    return t ? sqlite3_bind_text(s, col, t, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(s, col);
}

/* Runs one job inside the open transaction; *dcount gains the change in event count, *top the
 * highest seq inserted. Returns SQLITE_DONE or an error code with msg filled. */
static int run_job(sq_store *st, job *j, int64_t *dcount, int64_t *top, char *msg) {
    sqlite3_stmt *s;
    int rc = SQLITE_DONE;
    switch (j->kind) {
    case JOB_APPEND:
        s = st->w_insert;
        for (size_t i = 0; i < j->n && rc == SQLITE_DONE; i++) {
            const sq_store_event *e = &j->ev[i];
            sqlite3_bind_text(s, 1, e->user, (int)e->user_len, SQLITE_TRANSIENT);
            sqlite3_bind_text(s, 2, e->item, (int)e->item_len, SQLITE_TRANSIENT);
            sqlite3_bind_text(s, 3, e->behaviour, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(s, 4, e->ts);
            bind_opt_text(s, 5, e->scene && *e->scene ? e->scene : NULL);
            bind_opt_text(s, 6, e->context);
            if (isnan(e->value))
                sqlite3_bind_null(s, 7);
            else
                sqlite3_bind_double(s, 7, e->value);
            if ((rc = step_done(st, s, msg)) == SQLITE_DONE) {
                int64_t seq = sqlite3_last_insert_rowid(st->wdb);
                if (i == 0)
                    j->first_seq = seq;
                if (seq > *top)
                    *top = seq;
            }
        }
        if (rc == SQLITE_DONE)
            *dcount += (int64_t)j->n;
        return rc;
    case JOB_DELETE:
        s = st->w_delete;
        sqlite3_bind_text(s, 1, j->id, (int)j->id_len, SQLITE_TRANSIENT);
        if ((rc = step_done(st, s, msg)) == SQLITE_DONE) {
            j->deleted = (uint64_t)sqlite3_changes64(st->wdb);
            *dcount -= (int64_t)j->deleted;
            s = st->w_forget;
            sqlite3_bind_text(s, 1, j->id, (int)j->id_len, SQLITE_TRANSIENT);
            sqlite3_bind_int64(s, 2, (sqlite3_int64)time(NULL));
            rc = step_done(st, s, msg);
        }
        if (rc == SQLITE_DONE) {
            s = st->w_unput_user;
            sqlite3_bind_text(s, 1, j->id, (int)j->id_len, SQLITE_TRANSIENT);
            rc = step_done(st, s, msg);
        }
        return rc;
    case JOB_PUT_USER:
        s = st->w_put_user;
        sqlite3_bind_text(s, 1, j->id, (int)j->id_len, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 2, j->text, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 3, (int64_t)time(NULL));
        return step_done(st, s, msg);
    case JOB_PUT:
        s = st->w_put;
        sqlite3_bind_text(s, 1, j->id, (int)j->id_len, SQLITE_TRANSIENT);
        bind_opt_text(s, 2, j->tags);
        bind_opt_text(s, 3, j->text);
        sqlite3_bind_int64(s, 4, (int64_t)time(NULL));
        return step_done(st, s, msg);
    }
    snprintf(msg, SQ_ERR_MSG_MAX, "%s: unknown job", st->path);
    return SQLITE_INTERNAL;
}

/* Whether an error raised by a job's statement comes from that job's own data (a constraint or
 * trigger, a string over SQLite's length limit) rather than from the database, the disk or a
 * lock, which would fail any job. */
static int blames_job(int rc) {
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
        return 1;
    default:
        return 0;
    }
}

/* Runs the batch's jobs that have not failed yet in one transaction. On COMMIT adds to *dcount
 * and *top and returns 0. Otherwise rolls back and returns -1 with msg filled and *culprit the
 * job to blame (NULL when the failure is not one job's: BEGIN, COMMIT, I/O, disk full). */
static int run_txn(sq_store *st, job *batch, job **culprit, int64_t *dcount, int64_t *top,
                   char *msg) {
    int64_t dc = 0, tp = 0;
    *culprit = NULL;
    int ok = step_done(st, st->w_begin, msg) == SQLITE_DONE;
    for (job *j = batch; ok && j; j = j->next) {
        if (j->rc != SQ_OK)
            continue;
        int rc = run_job(st, j, &dc, &tp, msg);
        if (rc != SQLITE_DONE) {
            ok = 0;
            if (blames_job(rc))
                *culprit = j;
        }
    }
    if (ok)
        ok = step_done(st, st->w_commit, msg) == SQLITE_DONE;
    if (!ok) {
        /* A failed COMMIT may leave the transaction open (BUSY) or have rolled it back. */
        if (!sqlite3_get_autocommit(st->wdb))
            step_done(st, st->w_rollback, NULL);
        return -1;
    }
    *dcount += dc;
    if (tp > *top)
        *top = tp;
    return 0;
}

static void job_fail(job *j, const char *msg) {
    j->rc = SQ_ERR_IO;
    memcpy(j->msg, msg, SQ_ERR_MSG_MAX);
}

/* Commits a batch (note 4): a job to blame fails alone and the rest go again together; any
 * other failure fails every job still standing. Each round fails at least one job, so this
 * ends; the results of a rolled-back round are rewritten by the next. */
static void run_batch(sq_store *st, job *batch, int64_t *dcount, int64_t *top) {
    char msg[SQ_ERR_MSG_MAX];
    job *culprit;
    while (run_txn(st, batch, &culprit, dcount, top, msg) != 0) {
        if (culprit) {
            job_fail(culprit, msg);
            continue;
        }
        for (job *j = batch; j; j = j->next)
            if (j->rc == SQ_OK)
                job_fail(j, msg);
        return;
    }
}

static void *writer_main(void *arg) {
    sq_store *st = arg;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        while (!st->head && !st->stopping)
            pthread_cond_wait(&st->work, &st->mu);
        if (!st->head)
            break; /* stopping, and the queue is drained */
        job *batch = take_batch(st);
        pthread_mutex_unlock(&st->mu);

        int64_t dcount = 0, top = 0;
        run_batch(st, batch, &dcount, &top);

        pthread_mutex_lock(&st->mu);
        atomic_fetch_add(&st->count, (uint64_t)dcount); /* modular: a net delete subtracts */
        if (top > atomic_load(&st->last_seq))
            atomic_store(&st->last_seq, top);
        while (batch) {
            job *next = batch->next;
            batch->done = 1;
            pthread_cond_signal(&batch->cv);
            batch = next; /* the caller may free it once we unlock (note 3) */
        }
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/* ===================================== Write requests ===================================== */

/* Queues j and waits until the writer has committed (or failed) it (note 1). */
static sq_status submit(sq_store *st, job *j, sq_error *err) {
    if (pthread_cond_init(&j->cv, NULL)) {
        sq_free(j->buf);
        return sq_errorf(err, SQ_ERR_NOMEM, "%s: cannot create a condition variable", st->path);
    }
    pthread_mutex_lock(&st->mu);
    if (st->stopping) {
        j->rc = SQ_ERR_IO;
        snprintf(j->msg, sizeof j->msg, "%s: the store is closing", st->path);
    } else {
        if (st->tail)
            st->tail->next = j;
        else
            st->head = j;
        st->tail = j;
        pthread_cond_signal(&st->work);
        while (!j->done)
            pthread_cond_wait(&j->cv, &st->mu);
    }
    pthread_mutex_unlock(&st->mu);
    pthread_cond_destroy(&j->cv);
    sq_free(j->buf);
    j->buf = NULL;
    return j->rc ? sq_errorf(err, j->rc, "%s", j->msg) : SQ_OK;
}

/* Copies n bytes and a NUL to *p, advancing it; returns the copy. */
static const char *put_bytes(char **p, const char *s, size_t n) {
    char *d = *p;
    memcpy(d, s, n);
    d[n] = 0;
    *p += n + 1;
    return d;
}

static const char *put_str(char **p, const char *s) {
    return s ? put_bytes(p, s, strlen(s)) : NULL;
}

/* Adds a string of n bytes plus its NUL to *total; 0 on overflow. */
static int add_len(size_t *total, size_t n) {
    if (n >= SIZE_MAX - *total)
        return 0;
    *total += n + 1;
    return 1;
}

sq_status sq_store_append(sq_store *st, const sq_store_event *ev, size_t n, int64_t *first_seq,
                          sq_error *err) {
    if (!ev || n == 0)
        return sq_errorf(err, SQ_ERR_ARG, "append: no events");
    if (n > SIZE_MAX / sizeof *ev)
        return sq_errorf(err, SQ_ERR_ARG, "append: too many events");
    size_t total = n * sizeof *ev;
    for (size_t i = 0; i < n; i++) {
        const sq_store_event *e = &ev[i];
        if (!e->user || !e->item || !e->behaviour)
            return sq_errorf(err, SQ_ERR_ARG, "append: event %zu: %s is NULL", i,
                             !e->user   ? "user"
                             : !e->item ? "item"
                                        : "behaviour");
        if (e->user_len > INT_MAX || e->item_len > INT_MAX)
            return sq_errorf(err, SQ_ERR_ARG, "append: event %zu: id over %d bytes", i, INT_MAX);
        if (!add_len(&total, e->user_len) || !add_len(&total, e->item_len) ||
            !add_len(&total, strlen(e->behaviour)) ||
            !add_len(&total, e->scene ? strlen(e->scene) : 0) ||
            !add_len(&total, e->context ? strlen(e->context) : 0))
            return sq_errorf(err, SQ_ERR_ARG, "append: events too large");
    }
    job j = {.kind = JOB_APPEND, .n = n};
    if (!(j.buf = sq_malloc(total)))
        return sq_errorf(err, SQ_ERR_NOMEM, "append: out of memory (%zu bytes)", total);
    j.ev = (sq_store_event *)(void *)j.buf;
    char *p = j.buf + n * sizeof *ev;
    for (size_t i = 0; i < n; i++) {
        sq_store_event *d = &j.ev[i];
        *d = ev[i];
        d->user = put_bytes(&p, ev[i].user, ev[i].user_len);
        d->item = put_bytes(&p, ev[i].item, ev[i].item_len);
        d->behaviour = put_str(&p, ev[i].behaviour);
        d->scene = put_str(&p, ev[i].scene);
        d->context = put_str(&p, ev[i].context);
    }
    sq_status rc = submit(st, &j, err);
    if (!rc && first_seq)
        *first_seq = j.first_seq;
    return rc;
}

sq_status sq_store_delete_user(sq_store *st, const char *user, size_t user_len, uint64_t *deleted,
                               sq_error *err) {
    if (!user)
        return sq_errorf(err, SQ_ERR_ARG, "delete: user is NULL");
    if (user_len > INT_MAX)
        return sq_errorf(err, SQ_ERR_ARG, "delete: user id too long");
    job j = {.kind = JOB_DELETE, .id_len = user_len};
    if (!(j.buf = sq_malloc(user_len + 1)))
        return sq_errorf(err, SQ_ERR_NOMEM, "delete: out of memory");
    char *p = j.buf;
    j.id = put_bytes(&p, user, user_len);
    sq_status rc = submit(st, &j, err);
    if (!rc && deleted)
        *deleted = j.deleted;
    return rc;
}

sq_status sq_store_put_item(sq_store *st, const char *item, size_t item_len, const char *tags_json,
                            const char *text, sq_error *err) {
    if (!item)
        return sq_errorf(err, SQ_ERR_ARG, "put item: id is NULL");
    if (item_len > INT_MAX)
        return sq_errorf(err, SQ_ERR_ARG, "put item: id too long");
    size_t total = 0;
    if (!add_len(&total, item_len) || !add_len(&total, tags_json ? strlen(tags_json) : 0) ||
        !add_len(&total, text ? strlen(text) : 0))
        return sq_errorf(err, SQ_ERR_ARG, "put item: too large");
    job j = {.kind = JOB_PUT, .id_len = item_len};
    if (!(j.buf = sq_malloc(total)))
        return sq_errorf(err, SQ_ERR_NOMEM, "put item: out of memory");
    char *p = j.buf;
    j.id = put_bytes(&p, item, item_len);
    j.tags = put_str(&p, tags_json);
    j.text = put_str(&p, text);
    return submit(st, &j, err);
}

sq_status sq_store_put_user(sq_store *st, const char *user, size_t user_len, const char *attrs_json,
                            sq_error *err) {
    if (!user || !attrs_json)
        return sq_errorf(err, SQ_ERR_ARG, "put user: user or attributes NULL");
    if (user_len > INT_MAX)
        return sq_errorf(err, SQ_ERR_ARG, "put user: id too long");
    size_t total = 0;
    if (!add_len(&total, user_len) || !add_len(&total, strlen(attrs_json)))
        return sq_errorf(err, SQ_ERR_ARG, "put user: too large");
    job j = {.kind = JOB_PUT_USER, .id_len = user_len};
    if (!(j.buf = sq_malloc(total)))
        return sq_errorf(err, SQ_ERR_NOMEM, "put user: out of memory");
    char *p = j.buf;
    j.id = put_bytes(&p, user, user_len);
    j.text = put_str(&p, attrs_json);
    return submit(st, &j, err);
}

/* ========================================= Readers ======================================== */

static reader *acquire(sq_store *st) {
    pthread_mutex_lock(&st->pool_mu);
    while (st->nfree == 0)
        pthread_cond_wait(&st->pool_cv, &st->pool_mu);
    reader *r = &st->readers[st->free_idx[--st->nfree]];
    pthread_mutex_unlock(&st->pool_mu);
    return r;
}

static void release(sq_store *st, reader *r) {
    pthread_mutex_lock(&st->pool_mu);
    st->free_idx[st->nfree++] = (uint32_t)(r - st->readers);
    pthread_cond_signal(&st->pool_cv);
    pthread_mutex_unlock(&st->pool_mu);
}

static const char *col_text(sqlite3_stmt *s, int col, size_t *len) {
    const char *t = (const char *)sqlite3_column_text(s, col);
    if (len)
        *len = t ? (size_t)sqlite3_column_bytes(s, col) : 0;
    return t;
}

/* Steps an event query (columns EVENT_COLS) calling fn per row, then resets it (note 7). */
static sq_status run_events(sq_store *st, reader *r, sqlite3_stmt *s, sq_store_event_fn fn,
                            void *ud, sq_error *err) {
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        sq_store_event e;
        const char *t;
        int64_t seq = sqlite3_column_int64(s, 0);
        e.user = (t = col_text(s, 1, &e.user_len)) ? t : "";
        e.item = (t = col_text(s, 2, &e.item_len)) ? t : "";
        e.behaviour = (t = col_text(s, 3, NULL)) ? t : "";
        e.ts = sqlite3_column_int64(s, 4);
        e.scene = (t = col_text(s, 5, NULL)) ? t : "";
        e.context = col_text(s, 6, NULL);
        e.value = sqlite3_column_type(s, 7) == SQLITE_NULL ? NAN : sqlite3_column_double(s, 7);
        if (fn(ud, seq, &e)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sq_status out = rc == SQLITE_DONE ? SQ_OK : sql_error(err, SQ_ERR_IO, st, r->db);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return out;
}

/* SQLite's LIMIT: negative means none. */
static int64_t sql_limit(size_t limit) {
    return limit == 0 || limit > (size_t)INT64_MAX ? -1 : (int64_t)limit;
}

sq_status sq_store_user_events(sq_store *st, const char *user, size_t user_len, int64_t after,
                               size_t limit, sq_store_event_fn fn, void *ud, sq_error *err) {
    if (!user || !fn)
        return sq_errorf(err, SQ_ERR_ARG, "user events: user or callback is NULL");
    if (user_len > INT_MAX)
        return sq_errorf(err, SQ_ERR_ARG, "user events: user id too long");
    reader *r = acquire(st);
    sqlite3_stmt *s = limit ? r->user_last : r->user_all;
    sqlite3_bind_text(s, 1, user, (int)user_len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, after);
    if (limit)
        sqlite3_bind_int64(s, 3, sql_limit(limit));
    sq_status rc = run_events(st, r, s, fn, ud, err);
    release(st, r);
    return rc;
}

sq_status sq_store_events_since(sq_store *st, int64_t after, size_t limit, sq_store_event_fn fn,
                                void *ud, sq_error *err) {
    if (!fn)
        return sq_errorf(err, SQ_ERR_ARG, "events since: callback is NULL");
    reader *r = acquire(st);
    sqlite3_bind_int64(r->since, 1, after);
    sqlite3_bind_int64(r->since, 2, sql_limit(limit));
    sq_status rc = run_events(st, r, r->since, fn, ud, err);
    release(st, r);
    return rc;
}

sq_status sq_store_items(sq_store *st, sq_store_item_fn fn, void *ud, sq_error *err) {
    if (!fn)
        return sq_errorf(err, SQ_ERR_ARG, "items: callback is NULL");
    reader *r = acquire(st);
    sqlite3_stmt *s = r->items;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *id = col_text(s, 0, NULL);
        if (fn(ud, id ? id : "", col_text(s, 1, NULL), col_text(s, 2, NULL))) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sq_status out = rc == SQLITE_DONE ? SQ_OK : sql_error(err, SQ_ERR_IO, st, r->db);
    sqlite3_reset(s);
    release(st, r);
    return out;
}

sq_status sq_store_user_attrs(sq_store *st, const char *user, size_t user_len, char **attrs_json,
                              sq_error *err) {
    *attrs_json = NULL;
    if (user_len > INT_MAX)
        return sq_errorf(err, SQ_ERR_ARG, "user attributes: id too long");
    reader *r = acquire(st);
    sqlite3_stmt *s = r->attrs;
    sqlite3_bind_text(s, 1, user, (int)user_len, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    sq_status out = SQ_OK;
    if (rc == SQLITE_ROW) {
        const char *a = col_text(s, 0, NULL);
        if (a && !(*attrs_json = sq_strdup(a)))
            out = sq_errorf(err, SQ_ERR_NOMEM, "user attributes: out of memory");
    } else if (rc != SQLITE_DONE) {
        out = sql_error(err, SQ_ERR_IO, st, r->db);
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    release(st, r);
    return out;
}

sq_status sq_store_forgotten(sq_store *st, sq_store_user_fn fn, void *ud, sq_error *err) {
    if (!fn)
        return sq_errorf(err, SQ_ERR_ARG, "forgotten: callback is NULL");
    reader *r = acquire(st);
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(r->db, "SELECT user FROM forgotten ORDER BY user", -1, &s, NULL);
    if (rc == SQLITE_OK) {
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            size_t len = 0;
            const char *u = col_text(s, 0, &len);
            if (fn(ud, u ? u : "", len)) {
                rc = SQLITE_DONE;
                break;
            }
        }
    }
    sq_status out = rc == SQLITE_DONE ? SQ_OK : sql_error(err, SQ_ERR_IO, st, r->db);
    sqlite3_finalize(s);
    release(st, r);
    return out;
}

uint64_t sq_store_count(const sq_store *st) {
    return atomic_load(&st->count);
}

int64_t sq_store_last_seq(const sq_store *st) {
    return atomic_load(&st->last_seq);
}

sq_status sq_store_check(sq_store *st, sq_error *err) {
    reader *r = acquire(st);
    sqlite3_stmt *s = NULL;
    sq_status out = SQ_OK;
    int rc = sqlite3_prepare_v2(r->db, "PRAGMA integrity_check", -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *t = col_text(s, 0, NULL);
        if (!t || strcmp(t, "ok") != 0)
            out = sq_errorf(err, SQ_ERR_FORMAT, "%s: integrity check: %s", st->path,
                            t ? t : "no answer");
    } else {
        int prim = rc & 0xff;
        out = sql_error(err,
                        prim == SQLITE_CORRUPT || prim == SQLITE_NOTADB ? SQ_ERR_FORMAT : SQ_ERR_IO,
                        st, r->db);
    }
    sqlite3_finalize(s);
    release(st, r);
    return out;
}
