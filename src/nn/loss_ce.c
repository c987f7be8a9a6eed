/* loss_ce.c — full softmax cross-entropy over the whole catalogue, in chunks of items.
 *
 * The idea. logits = h E^T is [N, V] (25,600 × 55k floats = 5.6 GB for SASRec on a large
 * catalogue): too big to hold. We hold one tile of it at a time: `rows` rows (all of them by
 * default) × `chunk` items:
 *
 *   pass 1 (loss): for each tile, S = h_rows E_chunk^T (one sgemm), then per row an online
 *            log-sum-exp: m = running max, s = running Σ exp(logit − m), rescaled when m grows;
 *            the target's logit is read from the tile that holds it.
 *            lse = m + log s, loss_i = lse_i − logit_i,target.
 *   pass 2 (gradient): for each tile, S again, turned in place into
 *            G = dloss/n · (softmax − onehot) = dloss/n · (exp(S − lse) − [v == target]),
 *            then dh_rows += G E_chunk and dE_chunk += G^T h_rows (two sgemms).
 *
 * Pass 2 walks the tiles backwards, so that the tile pass 1 ended on is still in the buffer
 * and is not recomputed: with V ≤ chunk (and one row tile) the loss costs three GEMMs, as the
 * naive one; otherwise four GEMMs of N × V × C each, one of them the recomputation.
 *
 * Threads. The chunks are dealt to CE_GROUPS groups of consecutive chunks (fewer when there are
 * fewer chunks); each group keeps its own running (max, sum) per row in pass 1 and its own dh
 * in pass 2, and owns its rows of dE. The groups are merged in group order, so the result does
 * not depend on how many threads ran them. With OpenMP OpenBLAS (sgemm single-threaded inside
 * a parallel region, see attention.c) each thread runs whole groups with single-threaded
 * GEMMs: no synchronisation inside a GEMM, whose K = C is thin (on 2 cores, OpenBLAS's threads
 * spent a quarter of the step yielding to each other in these GEMMs). Otherwise the groups run
 * one after another with threaded GEMMs.
 *
 * Invariants:
 *   1. Masked rows (target < 0) are compacted away before any GEMM: no work is spent on padding
 *      positions, and their dh rows are never written.
 *   2. With more than one chunk, results do not depend on the thread count (fixed groups,
 *      merged in order); one chunk is up to BLAS's own threading.
 *   3. Every exp argument is ≤ 0 up to rounding (logit − running max, logit − lse), so nothing
 *      overflows, whatever the size of the logits.
 */
#include "seqrec/nn.h"

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <math.h>
#include <string.h>

enum { CE_DEFAULT_CHUNK = 4096, CE_MIN_CHUNK = 256, CE_GROUPS = 8 };

/* exp(x) for the softmax loops: Cephes' expf (range reduction by ln 2, degree-6 polynomial,
 * about 2 ulp), written so that the compiler vectorises it; glibc's expf is a scalar call.
 * Arguments are clamped to [−87, 88]: exp(−87) ≈ 1.6e−38 stands in for anything smaller (and
 * for NaN, which the loss then reports through its NaN target logit or log-sum-exp).
 * n = round(x / ln 2) by adding and subtracting 1.5 · 2^23 (floorf does not vectorise while
 * math may trap); under -ffast-math that pair would be folded away, so floorf is used there. */
static inline float ce_expf(float x) {
    x = x > -87.0f ? x : -87.0f; /* NaN becomes −87 here: no NaN reaches the int conversion */
    x = x < 88.0f ? x : 88.0f;
#ifdef __FAST_MATH__
    float n = floorf(x * 1.44269504088896341f + 0.5f);
#else
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
#endif
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23; /* 2^n */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* ----------------------------------------- the plan ----------------------------------------- */

typedef struct {
    const float *h;         /* [n, C] the unmasked rows (h itself when nothing is masked) */
    const float *E;         /* [V, C] */
    const int32_t *tgt;     /* [n] their targets */
    const int32_t *rows_of; /* [n] their row in the caller's h, or NULL when nothing is masked */
    int n, C, V, first;
    int chunk, nchunks;   /* items per tile, and tiles along the items */
    int rows, nblocks;    /* rows per tile, and tiles along the rows */
    int groups;           /* chunk groups (see "Threads") */
    int threads;          /* threads with their own S */
    float *S;             /* [threads][rows, chunk] logits / gradient of one tile */
    double *m, *s;        /* [groups][n] running max and rescaled sum (pass 1) */
    float *zt;            /* [n] target logits */
    float *lse;           /* [n] log-sum-exp per row */
    float *dhg;           /* [groups][n, C] each group's dh (pass 2) */
    const uint32_t *excl; /* ascending excluded ids (row = id + shift), or NULL */
    int n_excl, shift;
} ce_plan;

static size_t align64(size_t b) {
    return (b + 63) & ~(size_t)63;
}

static int ce_threads(void) {
#ifdef _OPENMP
    return openblas_get_parallel() == 2 ? omp_get_max_threads() : 1;
#else
    return 1;
#endif
}

/* Chunks along the items: as asked; else one chunk up to 4096 items (three GEMMs, no
 * recomputation, threaded by BLAS); else chunks of at most 4096 items, a multiple of CE_GROUPS
 * of them (whole groups balance across threads). */
static int ce_chunk(int V, const sq_nn_ce_opts *o) {
    int first = o ? o->first_item : 0;
    int items = V - first > 0 ? V - first : 1;
    if (o && o->chunk > 0)
        return o->chunk < items ? o->chunk : items;
    if (items <= CE_DEFAULT_CHUNK)
        return items;
    int n =
        CE_GROUPS * ((items + CE_GROUPS * CE_DEFAULT_CHUNK - 1) / (CE_GROUPS * CE_DEFAULT_CHUNK));
    int most = (items + CE_MIN_CHUNK - 1) / CE_MIN_CHUNK;
    n = n < most ? n : most;
    return (items + n - 1) / n;
}

/* Rows per tile: as asked, else all of them. */
static int ce_rows(int n, const sq_nn_ce_opts *o) {
    int rows = (o && o->rows > 0) ? o->rows : n;
    return rows < n ? rows : (n > 0 ? n : 1);
}

static int ce_groups(int V, const sq_nn_ce_opts *o) {
    int first = o ? o->first_item : 0, chunk = ce_chunk(V, o);
    int nchunks = (V - first + chunk - 1) / chunk;
    return nchunks < CE_GROUPS ? (nchunks > 0 ? nchunks : 1) : CE_GROUPS;
}

size_t sq_nn_ce_chunked_scratch(int N, int C, int V, const sq_nn_ce_opts *opts) {
    if (N <= 0 || C <= 0 || V <= 0)
        return 0;
    size_t n = (size_t)N, chunk = (size_t)ce_chunk(V, opts);
    size_t rows = (size_t)ce_rows(N, opts), g = (size_t)ce_groups(V, opts);
    size_t t = (size_t)ce_threads();
    return align64(n * (size_t)C * sizeof(float))       /* compacted h */
           + t * align64(rows * chunk * sizeof(float))  /* S per thread */
           + g * align64(n * sizeof(double)) * 2        /* m, s per group */
           + g * align64(n * (size_t)C * sizeof(float)) /* dh per group */
           + align64(n * sizeof(float)) * 2             /* zt, lse */
           + align64(n * sizeof(int32_t)) * 2;          /* tgt, rows */
}

#define CE_ALLOC(dst, count, type)                                                                 \
    do {                                                                                           \
        if (!((dst) = sq_arena_alloc(arena, (size_t)(count) * sizeof(type))))                      \
            return sq_errorf(err, SQ_ERR_NOMEM,                                                    \
                             "chunked cross-entropy: arena too small (%zu bytes free, "            \
                             "sq_nn_ce_chunked_scratch says %zu)",                                 \
                             sq_arena_capacity(arena) - sq_arena_used(arena),                      \
                             sq_nn_ce_chunked_scratch(N, C, V, opts));                             \
    } while (0)

/* The first k with excl[k] + shift >= row (n_excl when none). */
static int ce_excl_from(const ce_plan *p, long row) {
    int lo = 0, hi = p->n_excl;
    while (lo < hi) {
        const int mid = lo + (hi - lo) / 2;
        if ((long)p->excl[mid] + p->shift < row)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Writes v into the tile's columns of excluded items: −∞ after the logits, 0 after the
 * softmax (where exp(−∞ − lse) is ce_expf's floor, not 0). */
static void ce_mask(const ce_plan *p, int nr, int v0, int ck, float *S, float v) {
    for (int k = ce_excl_from(p, v0); k < p->n_excl && (long)p->excl[k] + p->shift < v0 + ck; k++) {
        const int j = (int)((long)p->excl[k] + p->shift - v0);
        for (int r = 0; r < nr; r++)
            S[(size_t)r * ck + j] = v;
    }
}

/* Validates the arguments, compacts the unmasked rows and carves the scratch. */
static sq_status ce_plan_make(ce_plan *p, const float *h, const float *E, const int32_t *targets,
                              int N, int C, int V, int need_dh, const sq_nn_ce_opts *opts,
                              sq_arena *arena, sq_error *err) {
    memset(p, 0, sizeof *p);
    int first = opts ? opts->first_item : 0;
    if (N < 0 || C <= 0 || V <= 0 || first < 0 || first >= V)
        return sq_errorf(err, SQ_ERR_ARG,
                         "chunked cross-entropy: bad sizes N=%d C=%d V=%d first_item=%d", N, C, V,
                         first);
    if (N > 0 && (!h || !E || !targets || !arena))
        return sq_errorf(err, SQ_ERR_ARG, "chunked cross-entropy: NULL input or arena");
    int n = 0;
    for (int i = 0; i < N; i++) {
        int32_t t = targets[i];
        if (t < 0)
            continue;
        if (t < first || t >= V)
            return sq_errorf(err, SQ_ERR_ARG,
                             "chunked cross-entropy: row %d: target %d outside [%d, %d)", i, t,
                             first, V);
        n++;
    }
    if (opts && opts->exclude && opts->n_exclude > 0) {
        p->excl = opts->exclude, p->n_excl = opts->n_exclude, p->shift = opts->exclude_shift;
        for (int i = 0; i < N; i++) {
            const int k = targets[i] < 0 ? p->n_excl : ce_excl_from(p, targets[i]);
            if (k < p->n_excl && (long)p->excl[k] + p->shift == targets[i])
                return sq_errorf(err, SQ_ERR_ARG,
                                 "chunked cross-entropy: row %d: target %d is an excluded item", i,
                                 targets[i]);
        }
    }
    p->E = E;
    p->n = n;
    p->C = C;
    p->V = V;
    p->first = first;
    p->chunk = ce_chunk(V, opts);
    if (n == 0)
        return SQ_OK;
    if (n == N) {
        p->h = h;
        p->tgt = targets;
    } else {
        float *hc;
        int32_t *tgt, *rows;
        CE_ALLOC(hc, (size_t)n * C, float);
        CE_ALLOC(tgt, n, int32_t);
        CE_ALLOC(rows, n, int32_t);
        for (int i = 0, j = 0; i < N; i++) {
            if (targets[i] < 0)
                continue;
            memcpy(hc + (size_t)j * C, h + (size_t)i * C, (size_t)C * sizeof *hc);
            tgt[j] = targets[i];
            rows[j++] = i;
        }
        p->h = hc;
        p->tgt = tgt;
        p->rows_of = rows;
    }
    p->rows = ce_rows(n, opts);
    p->nblocks = (n + p->rows - 1) / p->rows;
    p->nchunks = (V - first + p->chunk - 1) / p->chunk;
    p->groups = p->nchunks < CE_GROUPS ? p->nchunks : CE_GROUPS;
    p->threads = ce_threads();
    p->threads = p->threads < p->groups ? p->threads : p->groups;
    CE_ALLOC(p->S, (size_t)p->threads * p->rows * p->chunk, float);
    CE_ALLOC(p->m, (size_t)p->groups * n, double);
    CE_ALLOC(p->s, (size_t)p->groups * n, double);
    CE_ALLOC(p->zt, n, float);
    CE_ALLOC(p->lse, n, float);
    if (need_dh)
        CE_ALLOC(p->dhg, (size_t)p->groups * n * C, float);
    return SQ_OK;
}

/* One tile: rows [r0, r0 + nr) of the compacted batch, items [v0, v0 + ck). */
typedef struct {
    int r0, nr, v0, ck;
} ce_tile;

/* S = h[r0 : r0+nr] E[v0 : v0+ck]^T: [nr, ck]. */
static void ce_logits(const ce_plan *p, ce_tile t, float *S) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t.nr, t.ck, p->C, 1.0f,
                p->h + (size_t)t.r0 * p->C, p->C, p->E + (size_t)t.v0 * p->C, p->C, 0.0f, S, t.ck);
    if (p->excl)
        ce_mask(p, t.nr, t.v0, t.ck, S, -INFINITY);
}

static ce_tile ce_tile_at(const ce_plan *p, int rb, int c) {
    ce_tile t;
    t.r0 = rb * p->rows;
    t.nr = p->n - t.r0 < p->rows ? p->n - t.r0 : p->rows;
    t.v0 = p->first + c * p->chunk;
    t.ck = p->V - t.v0 < p->chunk ? p->V - t.v0 : p->chunk;
    return t;
}

/* Group g's chunks: [c0, c1). */
static void ce_group_chunks(const ce_plan *p, int g, int *c0, int *c1) {
    *c0 = (int)((long)p->nchunks * g / p->groups);
    *c1 = (int)((long)p->nchunks * (g + 1) / p->groups);
}

/* This thread's groups [g0, g1) and its S, out of nt threads. */
static float *ce_my_groups(const ce_plan *p, int tid, int nt, int *g0, int *g1) {
    *g0 = (int)((long)p->groups * tid / nt);
    *g1 = (int)((long)p->groups * (tid + 1) / nt);
    return p->S + (size_t)tid * p->rows * p->chunk;
}

static int ce_tid(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static int ce_nthreads(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* --------------------------------------- pass 1: loss --------------------------------------- */

/* Folds the tile's logits S into group g's running max / sum of its rows. */
static void ce_pass1_tile(ce_plan *p, int g, ce_tile t, const float *S) {
    double *gm = p->m + (size_t)g * p->n, *gs = p->s + (size_t)g * p->n;
    /* one group at a time (threaded GEMMs): the rows' work is parallel instead */
#pragma omp parallel for schedule(static) if (p->threads == 1 && t.nr >= 64)
    for (int r = 0; r < t.nr; r++) {
        const int i = t.r0 + r;
        const float *row = S + (size_t)r * t.ck;
        float cmax = row[0];
#pragma omp simd reduction(max : cmax)
        for (int j = 1; j < t.ck; j++)
            cmax = row[j] > cmax ? row[j] : cmax;
        double m = gm[i];
        if (cmax > m) {
            gs[i] *= exp(m - cmax); /* exp(−inf) = 0 on the group's first chunk */
            gm[i] = m = cmax;
        }
        const float mf = (float)m;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < t.ck; j++)
            sum += ce_expf(row[j] - mf);
        gs[i] += sum;
        int k = p->tgt[i] - t.v0;
        if (k >= 0 && k < t.ck) /* one tile holds it: one writer */
            p->zt[i] = row[k];
    }
}

/* Pass 1 over all tiles, each thread over its groups (chunks outer, row blocks inner); each
 * thread's S is left holding its last tile. Returns Σ_i loss_i. */
static double ce_pass1(ce_plan *p) {
    for (size_t i = 0; i < (size_t)p->groups * p->n; i++) {
        p->m[i] = -INFINITY;
        p->s[i] = 0.0;
    }
#pragma omp parallel num_threads(p->threads) if (p->threads > 1)
    {
        int g0, g1;
        float *S = ce_my_groups(p, ce_tid(), ce_nthreads(), &g0, &g1);
        for (int g = g0; g < g1; g++) {
            int c0, c1;
            ce_group_chunks(p, g, &c0, &c1);
            for (int c = c0; c < c1; c++)
                for (int rb = 0; rb < p->nblocks; rb++) {
                    ce_tile t = ce_tile_at(p, rb, c);
                    ce_logits(p, t, S);
                    ce_pass1_tile(p, g, t, S);
                }
        }
    }
    double total = 0.0;
    for (int i = 0; i < p->n; i++) { /* merge the groups in order */
        double m = -INFINITY, s = 0.0;
        for (int g = 0; g < p->groups; g++)
            m = p->m[(size_t)g * p->n + i] > m ? p->m[(size_t)g * p->n + i] : m;
        for (int g = 0; g < p->groups; g++)
            s += p->s[(size_t)g * p->n + i] * exp(p->m[(size_t)g * p->n + i] - m);
        double lse = m + log(s);
        p->lse[i] = (float)lse;
        total += lse - p->zt[i];
    }
    return total;
}

/* ------------------------------------- pass 2: gradient ------------------------------------- */

/* S (the tile's logits) becomes G = scale · (softmax − onehot) in place. */
static void ce_pass2_softmax(const ce_plan *p, ce_tile t, float *S, float scale) {
#pragma omp parallel for schedule(static) if (p->threads == 1 && t.nr >= 64)
    for (int r = 0; r < t.nr; r++) {
        const int i = t.r0 + r;
        float *row = S + (size_t)r * t.ck;
        const float l = p->lse[i];
#pragma omp simd
        for (int j = 0; j < t.ck; j++)
            row[j] = scale * ce_expf(row[j] - l);
        int k = p->tgt[i] - t.v0;
        if (k >= 0 && k < t.ck)
            row[k] -= scale;
    }
    if (p->excl)
        ce_mask(p, t.nr, t.v0, t.ck, S, 0.0f);
}

/* Each thread walks its tiles in the reverse order of pass 1, so that with `have_last` (its S
 * still holds its last tile of pass 1) the first one needs no recomputation. dh: into each
 * group's own buffer, then summed in group order. */
static void ce_pass2(ce_plan *p, float *dh, float *dE, float scale, int have_last) {
    const int C = p->C;
    const size_t nc = (size_t)p->n * C;
    if (dh)
        memset(p->dhg, 0, (size_t)p->groups * nc * sizeof *p->dhg);
#pragma omp parallel num_threads(p->threads) if (p->threads > 1)
    {
        int g0, g1;
        float *S = ce_my_groups(p, ce_tid(), ce_nthreads(), &g0, &g1);
        int first = 1;
        for (int g = g1 - 1; g >= g0; g--) {
            int c0, c1;
            ce_group_chunks(p, g, &c0, &c1);
            float *dhg = dh ? p->dhg + (size_t)g * nc : NULL;
            for (int c = c1 - 1; c >= c0; c--)
                for (int rb = p->nblocks - 1; rb >= 0; rb--) {
                    ce_tile t = ce_tile_at(p, rb, c);
                    if (!(have_last && first))
                        ce_logits(p, t, S);
                    first = 0;
                    ce_pass2_softmax(p, t, S, scale);
                    if (dhg) /* dh_g[r0 : r0+nr] += G E[v0 : v0+ck] */
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t.nr, C, t.ck, 1.0f,
                                    S, t.ck, p->E + (size_t)t.v0 * C, C, 1.0f,
                                    dhg + (size_t)t.r0 * C, C);
                    if (dE) /* dE[v0 : v0+ck] += G^T h[r0 : r0+nr]: the group's own rows */
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, t.ck, C, t.nr, 1.0f, S,
                                    t.ck, p->h + (size_t)t.r0 * C, C, 1.0f, dE + (size_t)t.v0 * C,
                                    C);
                }
        }
    }
    if (!dh)
        return;
#pragma omp parallel for schedule(static) if (p->n > 256)
    for (int j = 0; j < p->n; j++) {
        float *d = dh + (size_t)(p->rows_of ? p->rows_of[j] : j) * C;
        for (int g = 0; g < p->groups; g++) {
            const float *src = p->dhg + (size_t)g * nc + (size_t)j * C;
            for (int k = 0; k < C; k++)
                d[k] += src[k];
        }
    }
}

/* ------------------------------------------- API -------------------------------------------- */

static sq_status ce_check_loss(double total, int n, float *loss, sq_error *err) {
    double l = n ? total / n : 0.0;
    if (!isfinite(l))
        return sq_errorf(err, SQ_ERR_NUMERIC, "chunked cross-entropy: loss is %g over %d rows", l,
                         n);
    if (loss)
        *loss = (float)l;
    return SQ_OK;
}

sq_status sq_nn_ce_chunked(float *loss, float *dh, float *dE, const float *h, const float *E,
                           const int32_t *targets, int N, int C, int V, float dloss,
                           const sq_nn_ce_opts *opts, sq_arena *arena, sq_error *err) {
    ce_plan p;
    sq_status rc = ce_plan_make(&p, h, E, targets, N, C, V, dh != NULL, opts, arena, err);
    if (rc)
        return rc;
    if (p.n == 0) {
        if (loss)
            *loss = 0.0f;
        return SQ_OK;
    }
    if ((rc = ce_check_loss(ce_pass1(&p), p.n, loss, err)))
        return rc;
    if (dh || dE)
        ce_pass2(&p, dh, dE, dloss / (float)p.n, 1);
    return SQ_OK;
}

sq_status sq_nn_ce_chunked_forward(float *loss, float *lse, const float *h, const float *E,
                                   const int32_t *targets, int N, int C, int V,
                                   const sq_nn_ce_opts *opts, sq_arena *arena, sq_error *err) {
    ce_plan p;
    sq_status rc = ce_plan_make(&p, h, E, targets, N, C, V, 0, opts, arena, err);
    if (rc)
        return rc;
    if (p.n == 0) {
        if (loss)
            *loss = 0.0f;
        return SQ_OK;
    }
    if ((rc = ce_check_loss(ce_pass1(&p), p.n, loss, err)))
        return rc;
    if (lse)
        for (int j = 0; j < p.n; j++)
            lse[p.rows_of ? p.rows_of[j] : j] = p.lse[j];
    return SQ_OK;
}

sq_status sq_nn_ce_chunked_backward(float *dh, float *dE, float dloss, const float *lse,
                                    const float *h, const float *E, const int32_t *targets, int N,
                                    int C, int V, const sq_nn_ce_opts *opts, sq_arena *arena,
                                    sq_error *err) {
    ce_plan p;
    sq_status rc = ce_plan_make(&p, h, E, targets, N, C, V, dh != NULL, opts, arena, err);
    if (rc || p.n == 0 || (!dh && !dE))
        return rc;
    int have_last = 0;
    if (lse) {
        for (int j = 0; j < p.n; j++)
            p.lse[j] = lse[p.rows_of ? p.rows_of[j] : j];
    } else {
        if ((rc = ce_check_loss(ce_pass1(&p), p.n, NULL, err)))
            return rc;
        have_last = 1;
    }
    ce_pass2(&p, dh, dE, dloss / (float)p.n, have_last);
    return SQ_OK;
}
