/* split_cold.c — the cold-start splits (data.h, "Splits"): items or users held out of training
 * entirely, chosen by a seeded shuffle, so that a model can only reach them through their
 * features (item text and tags, user attributes) or, for users, their first events.
 *
 * Both keep the split's invariant train_end ≤ valid_end ≤ length. cold_items adds a mask the
 * training code and fit models consult (sq_split_trains_on): a held-out item's events are
 * skipped wherever they stand in a sequence. */
#include "seqrec/data.h"

#include <math.h>
#include <string.h>

static sq_status cold_alloc(const sq_dataset *d, sq_split *s, sq_split_kind kind, sq_error *err) {
    const sq_data_info *in = sq_data_info_of(d);
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->n_users = in->n_users;
    s->n_items = in->n_items;
    s->train_end = sq_mallocn(in->n_users ? in->n_users : 1, sizeof *s->train_end);
    s->valid_end = sq_mallocn(in->n_users ? in->n_users : 1, sizeof *s->valid_end);
    if (kind == SQ_SPLIT_COLD_ITEMS)
        s->item_cold = sq_calloc(in->n_items ? in->n_items : 1, 1);
    else
        s->user_cold = sq_calloc(in->n_users ? in->n_users : 1, 1);
    if (!s->train_end || !s->valid_end || !(s->item_cold || s->user_cold)) {
        sq_split_free(s);
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory for a cold-start split");
    }
    return SQ_OK;
}

/* A seeded permutation of 0..n-1 (malloc'd), or NULL when out of memory. */
static uint32_t *shuffled(uint32_t n, uint64_t seed) {
    uint32_t *p = sq_mallocn(n ? n : 1, sizeof *p);
    if (!p)
        return NULL;
    for (uint32_t i = 0; i < n; i++)
        p[i] = i;
    sq_rng r = sq_rng_derive(seed, 0xC01D);
    sq_rng_shuffle_u32(&r, p, n);
    return p;
}

sq_status sq_split_cold_items(const sq_dataset *d, double share, uint64_t seed, sq_split *s,
                              sq_error *err) {
    memset(s, 0, sizeof *s);
    if (!(share > 0 && share < 1))
        return sq_errorf(err, SQ_ERR_ARG, "cold_items split: share %g is not in (0, 1)", share);
    sq_status rc = cold_alloc(d, s, SQ_SPLIT_COLD_ITEMS, err);
    if (rc)
        return rc;
    uint32_t ni = s->n_items;
    uint32_t *perm = shuffled(ni, seed);
    if (!perm) {
        sq_split_free(s);
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory for a cold-start split");
    }
    uint32_t n_cold = (uint32_t)llround(share * ni);
    n_cold = n_cold < 1 ? 1 : n_cold >= ni ? ni - 1 : n_cold;
    for (uint32_t k = 0; k < n_cold && k < ni; k++)
        s->item_cold[perm[k]] = 1;
    s->n_cold = ni > 1 ? n_cold : 0;
    sq_free(perm);
    const uint64_t *off = sq_data_offsets(d);
    const uint32_t *items = sq_data_items(d);
    for (uint32_t u = 0; u < s->n_users; u++) {
        uint32_t len = (uint32_t)(off[u + 1] - off[u]), warm = 0, last = 0;
        for (uint32_t p = 0; p < len; p++)
            if (!s->item_cold[items[off[u] + p]])
                warm++, last = p;
        if (warm < 3) {
            s->train_end[u] = s->valid_end[u] = len;
        } else {
            s->train_end[u] = last;
            s->valid_end[u] = last + 1;
        }
    }
    return SQ_OK;
}

sq_status sq_split_cold_users(const sq_dataset *d, double share, uint32_t n_first, uint64_t seed,
                              sq_split *s, sq_error *err) {
    memset(s, 0, sizeof *s);
    if (!(share > 0 && share < 1) || n_first == 0)
        return sq_errorf(err, SQ_ERR_ARG,
                         "cold_users split: share %g must be in (0, 1) and first events %u > 0",
                         share, n_first);
    sq_status rc = cold_alloc(d, s, SQ_SPLIT_COLD_USERS, err);
    if (rc)
        return rc;
    uint32_t nu = s->n_users;
    const uint64_t *off = sq_data_offsets(d);
    uint32_t *perm = shuffled(nu, seed);
    if (!perm) {
        sq_split_free(s);
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory for a cold-start split");
    }
    uint32_t want = (uint32_t)llround(share * nu);
    want = want < 1 ? 1 : want;
    for (uint32_t k = 0; k < nu && s->n_cold < want; k++) {
        uint32_t u = perm[k];
        if (off[u + 1] - off[u] > n_first) {
            s->user_cold[u] = 1;
            s->n_cold++;
        }
    }
    sq_free(perm);
    for (uint32_t u = 0; u < nu; u++) {
        uint32_t len = (uint32_t)(off[u + 1] - off[u]);
        if (s->user_cold[u]) {
            s->train_end[u] = 0;
            s->valid_end[u] = n_first;
        } else if (len >= 2) {
            s->train_end[u] = len - 1;
            s->valid_end[u] = len;
        } else {
            s->train_end[u] = s->valid_end[u] = len;
        }
    }
    return SQ_OK;
}
