/* stats.c — per-user and per-item statistics computed once at ingest and stored in the .sqd,
 * the dense features models read (data.h, SQ_USTAT_* and SQ_ISTAT_*).
 *
 * One pass over the events in dataset order (user by user, each in time order). Distinct
 * counts use one stamp per item ("the last user seen on this item"): the first time user u
 * meets item i in its sequence is the only time stamp[i] != u, which counts both a distinct
 * item for u and a distinct user for i. Counts are kept as integers and turned into floats at
 * the end, so no count above 2^24 is rounded while accumulating. */
#include "data/clean.h"

#include <string.h>

static const double DAY = 86400.0;

sq_status stats_compute(const sq_ingest *g, const clean_ids *ids, const uint64_t *off,
                        const uint32_t *perm, uint32_t n_beh, int real_time, int64_t tmax,
                        float *ustats, float *istats, sq_error *err) {
    const sq_events *e = &g->ev;
    uint32_t nu = ids->n_users, ni = ids->n_items;
    size_t uw = SQ_USTAT_FIXED + n_beh, iw = SQ_ISTAT_FIXED + n_beh;
    uint32_t *stamp = sq_mallocn(ni, sizeof *stamp);
    uint32_t *icount = sq_calloc(ni, sizeof *icount), *iusers = sq_calloc(ni, sizeof *iusers);
    uint32_t *ibeh = sq_calloc((size_t)ni * (n_beh ? n_beh : 1), sizeof *ibeh);
    uint32_t *ubeh = sq_calloc(n_beh ? n_beh : 1, sizeof *ubeh);
    int64_t *ilast = sq_mallocn(ni, sizeof *ilast);
    if (!stamp || !icount || !iusers || !ibeh || !ubeh || !ilast) {
        sq_free(stamp);
        sq_free(icount);
        sq_free(iusers);
        sq_free(ibeh);
        sq_free(ubeh);
        sq_free(ilast);
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory computing statistics");
    }
    memset(stamp, 0xff, (size_t)ni * sizeof *stamp);
    for (uint32_t i = 0; i < ni; i++)
        ilast[i] = INT64_MIN;

    for (uint32_t u = 0; u < nu; u++) {
        uint64_t lo = off[u], hi = off[u + 1];
        uint32_t distinct = 0;
        memset(ubeh, 0, n_beh * sizeof *ubeh);
        for (uint64_t k = lo; k < hi; k++) {
            uint32_t ev = perm[k];
            uint32_t it = ids->item_new[e->item[ev]];
            uint8_t b = e->beh[ev];
            if (stamp[it] != u) {
                stamp[it] = u;
                distinct++;
                iusers[it]++;
            }
            icount[it]++;
            ibeh[(size_t)it * n_beh + b]++;
            ubeh[b]++;
            if (e->ts[ev] > ilast[it])
                ilast[it] = e->ts[ev];
        }
        float *row = ustats + (size_t)u * uw;
        double len = (double)(hi - lo);
        row[SQ_USTAT_EVENTS] = (float)len;
        row[SQ_USTAT_DISTINCT_ITEMS] = (float)distinct;
        if (real_time) {
            /* Times are sorted within the user: first and last are its bounds. */
            double span = (double)(e->ts[perm[hi - 1]] - e->ts[perm[lo]]) / DAY;
            row[SQ_USTAT_SPAN_DAYS] = (float)span;
            row[SQ_USTAT_PER_DAY] = (float)(len / (span > 1.0 ? span : 1.0));
            row[SQ_USTAT_RECENCY_DAYS] = (float)((double)(tmax - e->ts[perm[hi - 1]]) / DAY);
        } else {
            row[SQ_USTAT_SPAN_DAYS] = row[SQ_USTAT_PER_DAY] = row[SQ_USTAT_RECENCY_DAYS] = 0;
        }
        for (uint32_t b = 0; b < n_beh; b++)
            row[SQ_USTAT_FIXED + b] = (float)((double)ubeh[b] / len);
    }
    for (uint32_t i = 0; i < ni; i++) {
        float *row = istats + (size_t)i * iw;
        double cnt = (double)icount[i];
        row[SQ_ISTAT_EVENTS] = (float)cnt;
        row[SQ_ISTAT_USERS] = (float)iusers[i];
        row[SQ_ISTAT_RECENCY_DAYS] =
            real_time && icount[i] ? (float)((double)(tmax - ilast[i]) / DAY) : 0.0f;
        for (uint32_t b = 0; b < n_beh; b++)
            row[SQ_ISTAT_FIXED + b] = cnt > 0 ? (float)(ibeh[(size_t)i * n_beh + b] / cnt) : 0;
    }
    sq_free(stamp);
    sq_free(icount);
    sq_free(iusers);
    sq_free(ibeh);
    sq_free(ubeh);
    sq_free(ilast);
    return SQ_OK;
}
