/* clean.h — the stages sq_ingest_write (write.c) runs over a filled builder before writing:
 * duplicate removal, iterative k-core, dense ids, per-user time order (clean.c) and the
 * user/item statistics (stats.c). Internal to src/data.
 *
 * Every stage works on the builder's events in place, by index: nothing is copied per event.
 * An event's fate is one byte in `dead` (CLEAN_KEPT, CLEAN_DUP, CLEAN_KCORE); the kept events'
 * final order is one u32 permutation. The builder itself is never modified, so a failed write
 * can be retried.
 *
 * Event order: index order in g->ev is input order (ingest.h invariant 2); "first" and
 * "stable" below mean by index. */
#ifndef SEQREC_DATA_CLEAN_H
#define SEQREC_DATA_CLEAN_H

#include "data/ingest.h"

enum { CLEAN_KEPT = 0, CLEAN_DUP = 1, CLEAN_KCORE = 2 };

/* Duplicates found: dup[k] repeats the earlier event first[k]; sorted by dup (input order). */
typedef struct {
    size_t n, cap;   /* pairs used / allocated */
    uint32_t *dup;   /* index of the duplicate */
    uint32_t *first; /* index of the event it repeats (its first occurrence) */
} clean_dups;

void clean_dups_free(clean_dups *d);

/* Checks that every id in the events is inside its vocabulary (a builder bug otherwise:
 * SQ_ERR_INTERNAL) and that there are fewer than 2^32 - 1 events (SQ_ERR_LIMIT). */
sq_status clean_check(const sq_ingest *g, sq_error *err);

/* Marks every exact duplicate of an earlier event (same user, item, ts, behaviour, scene,
 * value — NaN equal to NaN, -0 equal to 0 — and context) as dead[i] = CLEAN_DUP and lists it.
 * work: scratch of g->ev.n u64. Hashing into cache-sized buckets: O(n) expected.
 * Errors: SQ_ERR_NOMEM (dead is then as it was). */
sq_status clean_duplicates(const sq_ingest *g, uint8_t *dead, uint64_t *work, clean_dups *out,
                           sq_error *err);

/* What the k-core filter removed. */
typedef struct {
    uint64_t events; /* events marked CLEAN_KCORE */
    uint64_t users;  /* users that had a live event before and none after */
    uint64_t items;  /* the same for items */
    uint32_t rounds; /* rounds that removed at least one event */
} clean_kcore_result;

/* Iterative k-core on the live events (dead[i] == CLEAN_KEPT): round by round, every live event
 * whose user has < min_user live events or whose item has < min_item (counted at the start of
 * the round) is marked CLEAN_KCORE, until a round removes nothing. Thresholds 0 and 1 are off.
 * The result is the largest sub-log where every user and item meets its threshold.
 * work: scratch of g->ev.n u64. O(n + users + items). Errors: SQ_ERR_NOMEM. */
sq_status clean_kcore(const sq_ingest *g, uint8_t *dead, uint64_t *work, uint32_t min_user,
                      uint32_t min_item, clean_kcore_result *res, sq_error *err);

/* Rounds clean_kcore does by scanning all events before it peels through adjacency lists
 * (default 6). The result never depends on it; tests set it to reach both paths. */
extern uint32_t clean_kcore_scan_rounds;

/* Dense ids of the live events' users and items, in order of first appearance. */
typedef struct {
    uint32_t n_users, n_items; /* dense counts */
    uint32_t *user_new;        /* per builder user id: dense id or UINT32_MAX */
    uint32_t *item_new;        /* per builder item id: dense id or UINT32_MAX */
    uint32_t *user_old;        /* per dense user: builder id */
    uint32_t *item_old;        /* per dense item: builder id */
    uint64_t n_events;         /* live events */
} clean_ids;

sq_status clean_dense_ids(const sq_ingest *g, const uint8_t *dead, clean_ids *ids, sq_error *err);
void clean_ids_free(clean_ids *ids);

/* The live events grouped by dense user, each user's events in time order with ties in input
 * order: perm[off[u] .. off[u+1]) are builder event indices. off has n_users + 1 entries,
 * perm n_events. A counting sort by user then a per-user stable sort by time (skipped when a
 * user's events already are in time order). Errors: SQ_ERR_NOMEM. */
sq_status clean_order(const sq_ingest *g, const uint8_t *dead, const clean_ids *ids, uint64_t *off,
                      uint32_t *perm, sq_error *err);

/* ---- stats.c ---- */

/* User and item statistics (data.h, SQ_USTAT_* / SQ_ISTAT_*), written as rows of
 * SQ_USTAT_FIXED + n_beh and SQ_ISTAT_FIXED + n_beh floats into the caller's arrays.
 * real_time == 0: the time-based columns are 0. tmax: the dataset's last event time. */
sq_status stats_compute(const sq_ingest *g, const clean_ids *ids, const uint64_t *off,
                        const uint32_t *perm, uint32_t n_beh, int real_time, int64_t tmax,
                        float *ustats, float *istats, sq_error *err);

#endif
