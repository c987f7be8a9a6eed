/* clean.c — the shaping stages between a filled ingest builder and the .sqd file: exact
 * duplicates, iterative k-core, dense ids in first-appearance order, and per-user time order.
 *
 * Design: events stay where the readers put them (struct of arrays, input order). A stage
 * either marks events dead (one byte each) or produces index arrays; the writer later gathers
 * the per-event columns through the final permutation straight into the file. Every stage is
 * linear or O(n log n) in the worst case and allocates a handful of arrays, never per event;
 * the big scratch array (8 bytes per event) is the caller's, shared by the stages so that its
 * pages are faulted in once.
 *
 *   duplicates   hash every event, counting-sort (hash, index) keys by the hash's top bits
 *                into cache-sized buckets (stable: input order inside a bucket), then one
 *                small open-addressing table of keys per bucket finds repeats of an earlier
 *                event; event fields are only read again when two hashes agree.
 *   k-core       round r removes every live event of a vertex under its threshold at the
 *                start of round r, exactly what a "filter users and items, repeat" loop does.
 *                The first rounds scan all events (one sequential pass each: most logs settle
 *                in two or three); longer cascades continue by peeling the frontier through
 *                CSR adjacency lists user → events and item → events, O(n) in all.
 *   dense ids    one pass in input order.
 *   order        counting sort by dense user (stable), then within each user a check for
 *                sorted times and, only if needed, a stable merge sort of (time, index). */
#include "data/clean.h"

#include <math.h>
#include <string.h>

/* ======================================== Checks ========================================== */

static uint32_t ctx_count(const sq_ingest *g) {
    return (uint32_t)sq_strmap_count(g->ctx_fields);
}

sq_status clean_check(const sq_ingest *g, sq_error *err) {
    const sq_events *e = &g->ev;
    if (e->n >= UINT32_MAX)
        return sq_errorf(err, SQ_ERR_LIMIT, "%zu events: a dataset holds at most %u", e->n,
                         UINT32_MAX - 1);
    size_t nu = sq_strmap_count(g->users), ni = sq_strmap_count(g->items);
    size_t nb = sq_strmap_count(g->behaviours), ns = sq_strmap_count(g->scenes);
    uint32_t nc = ctx_count(g);
    if (nc > SQ_MAX_CTX)
        return sq_errorf(err, SQ_ERR_INTERNAL, "%u context fields (at most %d)", nc, SQ_MAX_CTX);
    if (nb > 255)
        return sq_errorf(err, SQ_ERR_LIMIT, "%zu behaviours (at most 255)", nb);
    uint32_t nv[SQ_MAX_CTX];
    for (uint32_t f = 0; f < nc; f++)
        nv[f] = g->ctx_values[f] ? (uint32_t)sq_strmap_count(g->ctx_values[f]) : 0;
    for (size_t i = 0; i < e->n; i++) {
        if (e->user[i] >= nu || e->item[i] >= ni || e->beh[i] >= nb || e->scene[i] >= ns)
            return sq_errorf(err, SQ_ERR_INTERNAL,
                             "event %zu: id out of range (user %u/%zu, item %u/%zu, behaviour "
                             "%u/%zu, scene %u/%zu)",
                             i, e->user[i], nu, e->item[i], ni, e->beh[i], nb, e->scene[i], ns);
        for (uint32_t f = 0; f < nc; f++)
            if (e->ctx[i * nc + f] >= nv[f])
                return sq_errorf(err, SQ_ERR_INTERNAL,
                                 "event %zu: context field %u value %u out of range (%u values)", i,
                                 f, e->ctx[i * nc + f], nv[f]);
    }
    return SQ_OK;
}

/* ====================================== Duplicates ======================================== */

void clean_dups_free(clean_dups *d) {
    sq_free(d->dup);
    sq_free(d->first);
    memset(d, 0, sizeof *d);
}

static inline uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v;
    h *= 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

/* The value's bits with every NaN alike and -0 equal to 0, as the equality below wants. */
static inline uint32_t value_key(float v) {
    if (isnan(v))
        return 0x7fc00000u;
    if (v == 0.0f)
        return 0;
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static uint64_t event_hash(const sq_events *e, size_t i, uint32_t nc) {
    uint64_t h = 0x243f6a8885a308d3ull;
    h = mix(h, ((uint64_t)e->user[i] << 32) | e->item[i]);
    h = mix(h, (uint64_t)e->ts[i]);
    h = mix(h,
            ((uint64_t)e->beh[i] << 48) | ((uint64_t)e->scene[i] << 32) | value_key(e->value[i]));
    for (uint32_t f = 0; f < nc; f++)
        h = mix(h, e->ctx[i * nc + f]);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static int event_equal(const sq_events *e, size_t a, size_t b, uint32_t nc) {
    if (e->user[a] != e->user[b] || e->item[a] != e->item[b] || e->ts[a] != e->ts[b] ||
        e->beh[a] != e->beh[b] || e->scene[a] != e->scene[b])
        return 0;
    float x = e->value[a], y = e->value[b];
    if (!(x == y || (isnan(x) && isnan(y))))
        return 0;
    for (uint32_t f = 0; f < nc; f++)
        if (e->ctx[a * nc + f] != e->ctx[b * nc + f])
            return 0;
    return 1;
}

sq_status clean_duplicates(const sq_ingest *g, uint8_t *dead, uint64_t *work, clean_dups *out,
                           sq_error *err) {
    const sq_events *e = &g->ev;
    size_t n = e->n;
    uint32_t nc = ctx_count(g);
    memset(out, 0, sizeof *out);
    if (n < 2)
        return SQ_OK;
    /* Up to 2^10 buckets of about 1024 events: the scatter writes to few enough places to stay
     * friendly to the TLB, and each bucket's table (16 KiB) stays in L1/L2. */
    unsigned bits = 0;
    while (bits < 10 && ((size_t)1024 << bits) < n)
        bits++;
    size_t nbuckets = (size_t)1 << bits;
    sq_status rc = SQ_OK;
    uint32_t *start = sq_calloc(nbuckets + 1, sizeof *start);
    uint64_t *table = NULL;
    if (!start)
        goto nomem;
    /* Pass 1 counts bucket sizes; pass 2 recomputes the hash (cheaper than keeping 8 bytes per
     * event) and deals keys (hash low half << 32 | index) into work, stably. */
    for (size_t i = 0; i < n; i++) {
        uint64_t h = event_hash(e, i, nc);
        start[(bits ? h >> (64 - bits) : 0) + 1]++;
    }
    size_t maxb = 0;
    for (size_t b = 0; b < nbuckets; b++) {
        if (start[b + 1] > maxb)
            maxb = start[b + 1];
        start[b + 1] += start[b];
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t h = event_hash(e, i, nc);
        work[start[bits ? h >> (64 - bits) : 0]++] = (h << 32) | (uint64_t)i;
    }
    /* start[b] is now the end of bucket b. Table slots hold hash << 32 | (index + 1), 0 empty
     * (index + 1 fits: clean_check keeps n below 2^32 - 1). */
    size_t tcap = 16;
    while (tcap < 2 * maxb)
        tcap *= 2;
    if (!(table = sq_mallocn(tcap, sizeof *table)))
        goto nomem;
    size_t lo = 0;
    for (size_t b = 0; b < nbuckets; b++) {
        size_t hi = start[b], ts = 16;
        while (ts < 2 * (hi - lo))
            ts *= 2;
        memset(table, 0, ts * sizeof *table);
        for (size_t k = lo; k < hi; k++) {
            uint64_t key = work[k];
            uint32_t i = (uint32_t)key, tag = (uint32_t)(key >> 32);
            size_t slot = tag & (ts - 1);
            for (;;) {
                uint64_t t = table[slot];
                if (t == 0) {
                    table[slot] = ((uint64_t)tag << 32) | ((uint64_t)i + 1);
                    break;
                }
                uint32_t j = (uint32_t)t - 1;
                if ((uint32_t)(t >> 32) == tag && event_equal(e, j, i, nc)) {
                    size_t cap = out->cap;
                    if (sq_grow((void **)&out->dup, &cap, out->n + 1, sizeof *out->dup))
                        goto nomem;
                    cap = out->cap;
                    if (sq_grow((void **)&out->first, &cap, out->n + 1, sizeof *out->first))
                        goto nomem;
                    out->cap = cap;
                    out->dup[out->n] = i;
                    out->first[out->n] = j;
                    out->n++;
                    dead[i] = CLEAN_DUP;
                    break;
                }
                slot = (slot + 1) & (ts - 1);
            }
        }
        lo = hi;
    }
    /* The list came bucket by bucket: put it in input order through work (free again). */
    for (size_t k = 0; k < out->n; k++)
        work[out->dup[k]] = out->first[k];
    for (size_t i = 0, k = 0; i < n; i++)
        if (dead[i] == CLEAN_DUP) {
            out->dup[k] = (uint32_t)i;
            out->first[k] = (uint32_t)work[i];
            k++;
        }
    goto done;
nomem:
    rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory finding duplicates of %zu events", n);
    for (size_t k = 0; k < out->n; k++)
        dead[out->dup[k]] = CLEAN_KEPT;
    clean_dups_free(out);
done:
    sq_free(start);
    sq_free(table);
    return rc;
}

/* ======================================== k-core ========================================== */

/* Vertex states: not under its threshold; in the frontier being removed this round; under its
 * threshold since a removal this round (next round's frontier); removed in an earlier round. */
enum { V_LIVE = 0, V_NOW = 1, V_NEXT = 2, V_DONE = 3 };

/* Rounds done by scanning every event before switching to peeling through adjacency lists:
 * a scan is one sequential pass and most logs settle in a few rounds; peeling bounds the
 * worst case (long cascades) by O(n) overall. A variable so that tests can force peeling. */
uint32_t clean_kcore_scan_rounds = 6;

/* CSR adjacency from one side's ids to the live events; ev has room for n entries. */
static sq_status adjacency(const uint32_t *key, size_t nkeys, const uint8_t *dead, size_t n,
                           uint32_t **off_out, uint32_t *ev) {
    uint32_t *off = sq_calloc(nkeys + 1, sizeof *off);
    if (!off)
        return SQ_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        if (dead[i] == CLEAN_KEPT)
            off[key[i] + 1]++;
    for (size_t k = 0; k < nkeys; k++)
        off[k + 1] += off[k];
    for (size_t i = 0; i < n; i++)
        if (dead[i] == CLEAN_KEPT)
            ev[off[key[i]]++] = (uint32_t)i;
    for (size_t k = nkeys; k > 0; k--) /* shift back: off[k] = start of k */
        off[k] = off[k - 1];
    off[0] = 0;
    *off_out = off;
    return SQ_OK;
}

/* One side of the frontier: the vertex's events, found through the adjacency. */
typedef struct {
    const uint32_t *key;   /* this side's id per event */
    const uint32_t *other; /* the other side's id per event */
    uint32_t *deg_other;   /* the other side's degrees */
    uint8_t *st_other;     /* the other side's states */
    uint32_t min_other;    /* the other side's threshold */
    uint32_t *next;        /* the other side's next frontier */
    size_t *next_n;        /* its length */
} side;

static uint64_t peel(uint8_t *dead, const uint32_t *front, size_t nf, const uint32_t *off,
                     const uint32_t *adj, uint32_t *deg, const side *s) {
    uint64_t removed = 0;
    for (size_t k = 0; k < nf; k++) {
        uint32_t v = front[k];
        for (uint32_t j = off[v]; j < off[v + 1]; j++) {
            uint32_t ev = adj[j];
            if (dead[ev] != CLEAN_KEPT)
                continue;
            dead[ev] = CLEAN_KCORE;
            removed++;
            deg[v]--;
            uint32_t o = s->other[ev];
            if (--s->deg_other[o] < s->min_other && s->st_other[o] == V_LIVE) {
                s->st_other[o] = V_NEXT;
                s->next[(*s->next_n)++] = o;
            }
        }
    }
    return removed;
}

sq_status clean_kcore(const sq_ingest *g, uint8_t *dead, uint64_t *work, uint32_t min_user,
                      uint32_t min_item, clean_kcore_result *res, sq_error *err) {
    memset(res, 0, sizeof *res);
    if (min_user <= 1 && min_item <= 1)
        return SQ_OK;
    const sq_events *e = &g->ev;
    size_t n = e->n, nu = sq_strmap_count(g->users), ni = sq_strmap_count(g->items);
    sq_status rc = SQ_OK;
    uint32_t *udeg = sq_calloc(nu + 1, sizeof *udeg), *ideg = sq_calloc(ni + 1, sizeof *ideg);
    uint8_t *ust = sq_calloc(nu + 1, 1), *ist = sq_calloc(ni + 1, 1);
    /* Frontiers: current and next, users and items; each vertex enters once. */
    uint32_t *fu = sq_mallocn(nu + 1, sizeof *fu), *fi = sq_mallocn(ni + 1, sizeof *fi);
    uint32_t *nfu = sq_mallocn(nu + 1, sizeof *nfu), *nfi = sq_mallocn(ni + 1, sizeof *nfi);
    uint32_t *uoff = NULL, *ioff = NULL;
    uint32_t *uadj = (uint32_t *)work, *iadj = (uint32_t *)work + n; /* work: 2n u32 */
    if (!udeg || !ideg || !ust || !ist || !fu || !fi || !nfu || !nfi) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory in the k-core filter");
        goto done;
    }
    for (size_t k = 0; k < n; k++)
        if (dead[k] == CLEAN_KEPT) {
            udeg[e->user[k]]++;
            ideg[e->item[k]]++;
        }
    size_t users_before = 0, items_before = 0, fu_n = 0, fi_n = 0, nfu_n, nfi_n;
    for (size_t u = 0; u < nu; u++) {
        users_before += udeg[u] > 0;
        if (udeg[u] > 0 && udeg[u] < min_user) {
            ust[u] = V_NOW;
            fu[fu_n++] = (uint32_t)u;
        }
    }
    for (size_t i = 0; i < ni; i++) {
        items_before += ideg[i] > 0;
        if (ideg[i] > 0 && ideg[i] < min_item) {
            ist[i] = V_NOW;
            fi[fi_n++] = (uint32_t)i;
        }
    }
    uint32_t scans = 0;
    while (fu_n + fi_n > 0) {
        uint64_t removed = 0;
        nfu_n = nfi_n = 0;
        if (scans < clean_kcore_scan_rounds) {
            scans++;
            for (size_t k = 0; k < n; k++) {
                if (dead[k] != CLEAN_KEPT)
                    continue;
                uint32_t u = e->user[k], it = e->item[k];
                if (ust[u] != V_NOW && ist[it] != V_NOW)
                    continue;
                dead[k] = CLEAN_KCORE;
                removed++;
                if (--udeg[u] < min_user && ust[u] == V_LIVE) {
                    ust[u] = V_NEXT;
                    nfu[nfu_n++] = u;
                }
                if (--ideg[it] < min_item && ist[it] == V_LIVE) {
                    ist[it] = V_NEXT;
                    nfi[nfi_n++] = it;
                }
            }
        } else {
            if (!uoff && (adjacency(e->user, nu, dead, n, &uoff, uadj) ||
                          adjacency(e->item, ni, dead, n, &ioff, iadj))) {
                rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory in the k-core filter");
                goto done;
            }
            side su = {e->user, e->item, ideg, ist, min_item, nfi, &nfi_n};
            side si = {e->item, e->user, udeg, ust, min_user, nfu, &nfu_n};
            removed += peel(dead, fu, fu_n, uoff, uadj, udeg, &su);
            removed += peel(dead, fi, fi_n, ioff, iadj, ideg, &si);
        }
        if (removed == 0)
            break;
        res->rounds++;
        res->events += removed;
        for (size_t k = 0; k < fu_n; k++)
            ust[fu[k]] = V_DONE;
        for (size_t k = 0; k < fi_n; k++)
            ist[fi[k]] = V_DONE;
        for (size_t k = 0; k < nfu_n; k++)
            ust[nfu[k]] = V_NOW;
        for (size_t k = 0; k < nfi_n; k++)
            ist[nfi[k]] = V_NOW;
        uint32_t *t = fu;
        fu = nfu;
        nfu = t;
        fu_n = nfu_n;
        t = fi;
        fi = nfi;
        nfi = t;
        fi_n = nfi_n;
        sq_report_progress(&g->opts.reporter, "k-core", res->events, 0, "events removed");
    }
    size_t users_after = 0, items_after = 0;
    for (size_t u = 0; u < nu; u++)
        users_after += udeg[u] > 0;
    for (size_t i = 0; i < ni; i++)
        items_after += ideg[i] > 0;
    res->users = users_before - users_after;
    res->items = items_before - items_after;
done:
    sq_free(udeg);
    sq_free(ideg);
    sq_free(ust);
    sq_free(ist);
    sq_free(fu);
    sq_free(fi);
    sq_free(nfu);
    sq_free(nfi);
    sq_free(uoff);
    sq_free(ioff);
    return rc;
}

/* ======================================= Dense ids ======================================== */

void clean_ids_free(clean_ids *ids) {
    sq_free(ids->user_new);
    sq_free(ids->item_new);
    sq_free(ids->user_old);
    sq_free(ids->item_old);
    memset(ids, 0, sizeof *ids);
}

sq_status clean_dense_ids(const sq_ingest *g, const uint8_t *dead, clean_ids *ids, sq_error *err) {
    const sq_events *e = &g->ev;
    size_t nu = sq_strmap_count(g->users), ni = sq_strmap_count(g->items);
    memset(ids, 0, sizeof *ids);
    ids->user_new = sq_mallocn(nu + 1, sizeof *ids->user_new);
    ids->item_new = sq_mallocn(ni + 1, sizeof *ids->item_new);
    ids->user_old = sq_mallocn(nu + 1, sizeof *ids->user_old);
    ids->item_old = sq_mallocn(ni + 1, sizeof *ids->item_old);
    if (!ids->user_new || !ids->item_new || !ids->user_old || !ids->item_old) {
        clean_ids_free(ids);
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory assigning ids");
    }
    memset(ids->user_new, 0xff, (nu + 1) * sizeof *ids->user_new);
    memset(ids->item_new, 0xff, (ni + 1) * sizeof *ids->item_new);
    for (size_t i = 0; i < e->n; i++) {
        if (dead[i] != CLEAN_KEPT)
            continue;
        ids->n_events++;
        uint32_t u = e->user[i], it = e->item[i];
        if (ids->user_new[u] == UINT32_MAX) {
            ids->user_old[ids->n_users] = u;
            ids->user_new[u] = ids->n_users++;
        }
        if (ids->item_new[it] == UINT32_MAX) {
            ids->item_old[ids->n_items] = it;
            ids->item_new[it] = ids->n_items++;
        }
    }
    return SQ_OK;
}

/* ========================================= Order ========================================== */

typedef struct {
    int64_t t;  /* time */
    uint32_t i; /* builder event index */
} tpair;

/* Stable merge sort of a[0..n) by t, with tmp of n entries; insertion sort for short runs. */
static void sort_pairs(tpair *a, tpair *tmp, size_t n) {
    if (n <= 24) {
        for (size_t k = 1; k < n; k++) {
            tpair x = a[k];
            size_t j = k;
            while (j > 0 && a[j - 1].t > x.t) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = x;
        }
        return;
    }
    size_t h = n / 2;
    sort_pairs(a, tmp, h);
    sort_pairs(a + h, tmp, n - h);
    if (a[h - 1].t <= a[h].t)
        return; /* already in order */
    memcpy(tmp, a, h * sizeof *a);
    size_t x = 0, y = h, o = 0;
    while (x < h && y < n)
        a[o++] = a[y].t < tmp[x].t ? a[y++] : tmp[x++]; /* ties: left first */
    while (x < h)
        a[o++] = tmp[x++];
}

sq_status clean_order(const sq_ingest *g, const uint8_t *dead, const clean_ids *ids, uint64_t *off,
                      uint32_t *perm, sq_error *err) {
    const sq_events *e = &g->ev;
    uint32_t nu = ids->n_users;
    memset(off, 0, ((size_t)nu + 1) * sizeof *off);
    for (size_t i = 0; i < e->n; i++)
        if (dead[i] == CLEAN_KEPT)
            off[ids->user_new[e->user[i]] + 1]++;
    size_t maxlen = 0;
    for (uint32_t u = 0; u < nu; u++) {
        if (off[u + 1] > maxlen)
            maxlen = (size_t)off[u + 1];
        off[u + 1] += off[u];
    }
    /* Scatter with off[u] as the cursor of u, then restore. */
    for (size_t i = 0; i < e->n; i++)
        if (dead[i] == CLEAN_KEPT)
            perm[off[ids->user_new[e->user[i]]]++] = (uint32_t)i;
    for (uint32_t u = nu; u > 0; u--)
        off[u] = off[u - 1];
    off[0] = 0;
    sq_report_progress(&g->opts.reporter, "ordering", 0, nu, "users");

    tpair *a = NULL, *tmp = NULL;
    for (uint32_t u = 0; u < nu; u++) {
        uint64_t lo = off[u], hi = off[u + 1];
        uint64_t k = lo + 1;
        while (k < hi && e->ts[perm[k - 1]] <= e->ts[perm[k]])
            k++;
        if (k >= hi)
            continue; /* already in time order (the usual case for logs) */
        if (!a) {
            a = sq_mallocn(maxlen, sizeof *a);
            tmp = sq_mallocn(maxlen / 2 + 1, sizeof *tmp);
            if (!a || !tmp) {
                sq_free(a);
                sq_free(tmp);
                return sq_errorf(err, SQ_ERR_NOMEM, "out of memory ordering events");
            }
        }
        size_t len = (size_t)(hi - lo);
        for (size_t j = 0; j < len; j++) {
            a[j].i = perm[lo + j];
            a[j].t = e->ts[a[j].i];
        }
        sort_pairs(a, tmp, len);
        for (size_t j = 0; j < len; j++)
            perm[lo + j] = a[j].i;
    }
    sq_free(a);
    sq_free(tmp);
    sq_report_progress(&g->opts.reporter, "ordering", nu, nu, "users");
    return SQ_OK;
}
