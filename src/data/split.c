/* split.c — train / validation / test views over a dataset (data.h, "Splits").
 *
 * A split never copies events: for each user it stores two positions into the user's
 * time-ordered sequence, train_end ≤ valid_end ≤ length. Positions before train_end are
 * training targets, [train_end, valid_end) validation targets, the rest test targets; a target
 * is always predicted from the positions before it, so no evaluation ever looks ahead.
 *
 *   loo       last event test, the one before it validation, the rest training; users with
 *             fewer than 3 events train on everything (SASRec's data_partition).
 *   temporal  two global cut times t_valid ≤ t_test taken at the quantiles 1 − valid − test
 *             and 1 − test of all event times (the sorted times' element at index
 *             floor(q · n), clamped to the last). Ties at a cut go to the later part: an event
 *             at exactly t_valid is validation, at exactly t_test test. So training times are
 *             < t_valid ≤ validation times < t_test ≤ test times, and with many equal times
 *             the training share can fall below its quantile. Per user the cuts are found by
 *             binary search, since each sequence is in time order.
 *   kfold     users are shuffled with the seed and dealt round-robin into k folds; users of
 *             the held-out fold have train_end = 0, valid_end = length − 1 (validation: all
 *             but the last event, test: the last), all others train on everything. */
#include "seqrec/data.h"

#include <string.h>

static sq_status split_alloc(const sq_dataset *d, sq_split *s, sq_split_kind kind, sq_error *err) {
    memset(s, 0, sizeof *s);
    uint32_t nu = sq_data_info_of(d)->n_users;
    s->kind = kind;
    s->n_users = nu;
    s->train_end = sq_mallocn(nu ? nu : 1, sizeof *s->train_end);
    s->valid_end = sq_mallocn(nu ? nu : 1, sizeof *s->valid_end);
    if (!s->train_end || !s->valid_end) {
        sq_split_free(s);
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory for a split of %u users", nu);
    }
    return SQ_OK;
}

void sq_split_free(sq_split *s) {
    if (!s)
        return;
    sq_free(s->train_end);
    sq_free(s->valid_end);
    sq_free(s->seen);
    sq_free(s->item_cold);
    sq_free(s->user_cold);
    s->train_end = s->valid_end = NULL;
    s->seen = NULL;
    s->item_cold = s->user_cold = NULL;
}

/* ===================================== Leave-one-out ====================================== */

sq_status sq_split_loo(const sq_dataset *d, sq_split *s, sq_error *err) {
    sq_status rc = split_alloc(d, s, SQ_SPLIT_LOO, err);
    if (rc)
        return rc;
    const uint64_t *off = sq_data_offsets(d);
    for (uint32_t u = 0; u < s->n_users; u++) {
        uint32_t len = (uint32_t)(off[u + 1] - off[u]);
        if (len < 3) {
            s->train_end[u] = s->valid_end[u] = len;
        } else {
            s->train_end[u] = len - 2;
            s->valid_end[u] = len - 1;
        }
    }
    return SQ_OK;
}

/* ======================================== Temporal ======================================== */

/* The k-th smallest of a[0..n) (0-based), reordering a: quickselect with a median-of-three
 * pivot and three-way partition, so runs of equal times cost nothing extra. */
static int64_t select_kth(int64_t *a, size_t n, size_t k) {
    size_t lo = 0, hi = n; /* answer in [lo, hi) */
    while (hi - lo > 1) {
        int64_t x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi - 1];
        int64_t p = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        size_t lt = lo, i = lo, gt = hi; /* [lo,lt) < p, [lt,i) == p, [gt,hi) > p */
        while (i < gt) {
            if (a[i] < p) {
                int64_t t = a[lt];
                a[lt++] = a[i];
                a[i++] = t;
            } else if (a[i] > p) {
                int64_t t = a[--gt];
                a[gt] = a[i];
                a[i] = t;
            } else {
                i++;
            }
        }
        if (k < lt)
            hi = lt;
        else if (k >= gt)
            lo = gt;
        else
            return p;
    }
    return a[lo];
}

/* First position in t[lo, hi) whose time is ≥ cut (hi when none), as an offset from lo. */
static uint32_t lower_bound(const int64_t *t, uint64_t lo, uint64_t hi, int64_t cut) {
    uint64_t a = lo, b = hi;
    while (a < b) {
        uint64_t m = a + (b - a) / 2;
        if (t[m] < cut)
            a = m + 1;
        else
            b = m;
    }
    return (uint32_t)(a - lo);
}

sq_status sq_split_temporal(const sq_dataset *d, double valid_frac, double test_frac, sq_split *s,
                            sq_error *err) {
    memset(s, 0, sizeof *s);
    if (!(valid_frac > 0 && valid_frac < 1 && test_frac > 0 && test_frac < 1 &&
          valid_frac + test_frac < 1))
        return sq_errorf(err, SQ_ERR_ARG,
                         "temporal split: fractions must be in (0, 1) with a sum below 1 "
                         "(valid %g, test %g)",
                         valid_frac, test_frac);
    const sq_data_info *in = sq_data_info_of(d);
    size_t n = (size_t)in->n_events;
    int64_t *tmp = sq_mallocn(n ? n : 1, sizeof *tmp);
    if (!tmp)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory for a temporal split");
    sq_status rc = split_alloc(d, s, SQ_SPLIT_TEMPORAL, err);
    if (rc) {
        sq_free(tmp);
        return rc;
    }
    const int64_t *times = sq_data_times(d);
    memcpy(tmp, times, n * sizeof *tmp);
    /* floor(q · n), with a hair of slack so that 0.6 × 10 is 6 even when 1 − 0.2 − 0.2
     * rounds to 0.59999…. */
    size_t kv = (size_t)((double)n * (1.0 - valid_frac - test_frac) + 1e-9);
    size_t kt = (size_t)((double)n * (1.0 - test_frac) + 1e-9);
    if (kv >= n)
        kv = n - 1;
    if (kt >= n)
        kt = n - 1;
    /* Selecting kv first leaves every element ≥ position kv at or after it: kt ≥ kv is then
     * found inside that tail. */
    s->t_valid = select_kth(tmp, n, kv);
    s->t_test = kt > kv ? select_kth(tmp + kv, n - kv, kt - kv) : s->t_valid;
    sq_free(tmp);
    const uint64_t *off = sq_data_offsets(d);
    for (uint32_t u = 0; u < s->n_users; u++) {
        s->train_end[u] = lower_bound(times, off[u], off[u + 1], s->t_valid);
        s->valid_end[u] = lower_bound(times, off[u], off[u + 1], s->t_test);
    }
    return SQ_OK;
}

/* ========================================= k-fold ========================================= */

sq_status sq_split_kfold(const sq_dataset *d, uint32_t k, uint32_t fold, uint64_t seed, sq_split *s,
                         sq_error *err) {
    memset(s, 0, sizeof *s);
    if (k < 2 || fold >= k)
        return sq_errorf(err, SQ_ERR_ARG, "k-fold split: need k >= 2 and fold < k (k %u, fold %u)",
                         k, fold);
    uint32_t nu = sq_data_info_of(d)->n_users;
    uint32_t *order = sq_mallocn(nu ? nu : 1, sizeof *order);
    if (!order)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory for a k-fold split");
    sq_status rc = split_alloc(d, s, SQ_SPLIT_KFOLD, err);
    if (rc) {
        sq_free(order);
        return rc;
    }
    s->fold = fold;
    s->n_folds = k;
    for (uint32_t u = 0; u < nu; u++)
        order[u] = u;
    sq_rng r;
    sq_rng_seed(&r, seed);
    sq_rng_shuffle_u32(&r, order, nu);
    const uint64_t *off = sq_data_offsets(d);
    for (uint32_t p = 0; p < nu; p++) {
        uint32_t u = order[p];
        uint32_t len = (uint32_t)(off[u + 1] - off[u]);
        if (p % k == fold) {
            s->train_end[u] = 0;
            s->valid_end[u] = len - 1; /* len ≥ 1: every user has an event */
        } else {
            s->train_end[u] = s->valid_end[u] = len;
        }
    }
    sq_free(order);
    return SQ_OK;
}
