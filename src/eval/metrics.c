/* metrics.c — ranking metrics with ties resolved in expectation, and a per-user accumulator
 * with bootstrap confidence intervals. See eval.h for the definitions. */
#include "seqrec/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *metric_names[SQ_M_PER_K] = {"hr", "ndcg", "mrr", "precision", "recall"};

const char *sq_metric_name(sq_metric m) {
    return (unsigned)m < SQ_M_PER_K ? metric_names[m] : "?";
}

/* ======================================= Ranks ======================================= */

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Where a candidate stands against the target score: 1 higher, 0 tie, -1 lower. NaN is lowest
 * (and two NaNs tie). */
static inline int compare(float s, float t) {
    if (isnan(s))
        return isnan(t) ? 0 : -1;
    if (isnan(t))
        return 1;
    return s > t ? 1 : (s == t ? 0 : -1);
}

void sq_eval_rank(const float *scores, uint32_t n, uint32_t target, const uint32_t *excluded,
                  size_t n_excluded, uint64_t *higher, uint64_t *ties) {
    float t = scores[target];
    uint64_t h = 0, eq = 0;
    if (isnan(t)) {
        for (uint32_t i = 0; i < n; i++) {
            h += !isnan(scores[i]);
            eq += isnan(scores[i]);
        }
    } else {
        /* the hot loop: branch-free counts over the whole catalogue */
        for (uint32_t i = 0; i < n; i++) {
            h += scores[i] > t;
            eq += scores[i] == t;
        }
    }
    eq -= 1; /* the target itself */
    /* Take the excluded items back out, each distinct id once, never the target. */
    enum { STACK = 4096 };
    uint32_t buf[STACK];
    int sorted = n_excluded <= STACK;
    if (sorted && n_excluded) {
        memcpy(buf, excluded, n_excluded * sizeof *buf);
        qsort(buf, n_excluded, sizeof *buf, cmp_u32);
    }
    for (size_t j = 0; j < n_excluded; j++) {
        uint32_t e = sorted ? buf[j] : excluded[j];
        if (e >= n || e == target)
            continue;
        if (sorted && j > 0 && buf[j - 1] == e)
            continue;
        if (!sorted) { /* rare: a very long list; skip ids seen earlier in it */
            int seen = 0;
            for (size_t k = 0; k < j && !seen; k++)
                seen = excluded[k] == e;
            if (seen)
                continue;
        }
        int c = compare(scores[e], t);
        if (c > 0)
            h--;
        else if (c == 0)
            eq--;
    }
    *higher = h;
    *ties = eq;
}

/* ====================================== Metrics ====================================== */

void sq_eval_single(uint64_t higher, uint64_t ties, uint64_t candidates, const uint32_t *k, int n_k,
                    double *out, double *auc) {
    double w = 1.0 / (double)(ties + 1); /* each rank in higher..higher+ties equally likely */
    for (int j = 0; j < n_k; j++) {
        double hr = 0, ndcg = 0, mrr = 0;
        uint64_t last = higher + ties;
        for (uint64_t r = higher; r <= last && r < k[j]; r++) {
            hr += w;
            ndcg += w / log2((double)r + 2.0);
            mrr += w / ((double)r + 1.0);
        }
        double *o = out + (size_t)j * SQ_M_PER_K;
        o[SQ_M_HR] = hr;
        o[SQ_M_NDCG] = ndcg;
        o[SQ_M_MRR] = mrr;
        o[SQ_M_PREC] = hr / k[j];
        o[SQ_M_RECALL] = hr;
    }
    if (auc) {
        if (candidates <= 1) {
            *auc = 0.5;
        } else {
            double others = (double)(candidates - 1);
            double lower = others - (double)higher - (double)ties;
            *auc = (lower + 0.5 * (double)ties) / others;
        }
    }
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

void sq_eval_multi(const uint64_t *positions, size_t n_targets, const uint32_t *k, int n_k,
                   double *out) {
    enum { MAXT = 1024 };
    uint64_t pos[MAXT];
    size_t n = n_targets < MAXT ? n_targets : MAXT; /* more targets than 1024: the first 1024 */
    memcpy(pos, positions, n * sizeof *pos);
    qsort(pos, n, sizeof *pos, cmp_u64);
    for (int j = 0; j < n_k; j++) {
        double *o = out + (size_t)j * SQ_M_PER_K;
        double hits = 0, dcg = 0, idcg = 0;
        for (size_t i = 0; i < n && pos[i] < k[j]; i++) {
            hits += 1;
            dcg += 1.0 / log2((double)pos[i] + 2.0);
        }
        for (size_t i = 0; i < n && i < k[j]; i++)
            idcg += 1.0 / log2((double)i + 2.0);
        o[SQ_M_HR] = hits > 0;
        o[SQ_M_NDCG] = idcg > 0 ? dcg / idcg : 0;
        o[SQ_M_MRR] = n && pos[0] < k[j] ? 1.0 / ((double)pos[0] + 1.0) : 0;
        o[SQ_M_PREC] = hits / k[j];
        o[SQ_M_RECALL] = n ? hits / (double)n : 0;
    }
}

/* ==================================== Accumulator ==================================== */

struct sq_eval_acc {
    uint32_t k[SQ_EVAL_MAX_K]; /* the K values */
    int n_k;
    size_t width;  /* values per user: n_k * SQ_M_PER_K + 1 (AUC last) */
    double *v;     /* users × width */
    size_t n, cap; /* users added / room */
};

sq_eval_acc *sq_eval_acc_create(const uint32_t *k, int n_k) {
    if (n_k < 1 || n_k > SQ_EVAL_MAX_K)
        return NULL;
    sq_eval_acc *a = sq_calloc(1, sizeof *a);
    if (!a)
        return NULL;
    memcpy(a->k, k, (size_t)n_k * sizeof *k);
    a->n_k = n_k;
    a->width = (size_t)n_k * SQ_M_PER_K + 1;
    return a;
}

void sq_eval_acc_free(sq_eval_acc *a) {
    if (!a)
        return;
    sq_free(a->v);
    sq_free(a);
}

sq_status sq_eval_acc_add(sq_eval_acc *a, const double *values, double auc) {
    size_t cap_vals = a->cap * a->width;
    if (sq_grow((void **)&a->v, &cap_vals, (a->n + 1) * a->width, sizeof *a->v))
        return SQ_ERR_NOMEM;
    a->cap = cap_vals / a->width;
    double *row = a->v + a->n * a->width;
    memcpy(row, values, (a->width - 1) * sizeof *row);
    row[a->width - 1] = auc;
    a->n++;
    return SQ_OK;
}

sq_eval_acc *sq_eval_acc_diff(const sq_eval_acc *a, const sq_eval_acc *b) {
    if (a->n != b->n || a->n_k != b->n_k || memcmp(a->k, b->k, (size_t)a->n_k * sizeof *a->k))
        return NULL;
    sq_eval_acc *d = sq_eval_acc_create(a->k, a->n_k);
    if (!d || !(d->v = sq_mallocn(a->n ? a->n * a->width : 1, sizeof *d->v))) {
        sq_eval_acc_free(d);
        return NULL;
    }
    for (size_t i = 0; i < a->n * a->width; i++)
        d->v[i] = a->v[i] - b->v[i];
    d->n = d->cap = a->n;
    return d;
}

size_t sq_eval_acc_users(const sq_eval_acc *a) {
    return a->n;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

sq_status sq_eval_acc_summary(const sq_eval_acc *a, uint32_t rounds, uint64_t seed,
                              sq_eval_stat *out, sq_eval_stat *auc, sq_error *err) {
    if (a->n == 0)
        return sq_errorf(err, SQ_ERR_EMPTY, "no user to evaluate");
    size_t w = a->width;
    double *mean = sq_calloc(w, sizeof *mean);
    double *boot = rounds ? sq_mallocn((size_t)rounds * w, sizeof *boot) : NULL;
    double *col = rounds ? sq_mallocn(rounds, sizeof *col) : NULL;
    if (!mean || (rounds && (!boot || !col))) {
        sq_free(mean);
        sq_free(boot);
        sq_free(col);
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < a->n; i++)
        for (size_t m = 0; m < w; m++)
            mean[m] += a->v[i * w + m];
    for (size_t m = 0; m < w; m++)
        mean[m] /= (double)a->n;
    sq_rng r;
    sq_rng_seed(&r, seed);
    for (uint32_t b = 0; b < rounds; b++) {
        double *s = boot + (size_t)b * w;
        memset(s, 0, w * sizeof *s);
        for (size_t i = 0; i < a->n; i++) {
            const double *row = a->v + (size_t)sq_rng_below(&r, (uint32_t)a->n) * w;
            for (size_t m = 0; m < w; m++)
                s[m] += row[m];
        }
        for (size_t m = 0; m < w; m++)
            s[m] /= (double)a->n;
    }
    for (size_t m = 0; m < w; m++) {
        sq_eval_stat st = {mean[m], mean[m], mean[m]};
        if (rounds) {
            for (uint32_t b = 0; b < rounds; b++)
                col[b] = boot[(size_t)b * w + m];
            qsort(col, rounds, sizeof *col, cmp_double);
            st.lo = col[(size_t)floor(0.025 * (rounds - 1) + 0.5)];
            st.hi = col[(size_t)floor(0.975 * (rounds - 1) + 0.5)];
        }
        if (m + 1 < w)
            out[m] = st;
        else if (auc)
            *auc = st;
    }
    sq_free(mean);
    sq_free(boot);
    sq_free(col);
    return SQ_OK;
}
