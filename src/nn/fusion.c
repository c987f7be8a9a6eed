/* fusion.c — input fusion (nn_fusion.h): the F field embeddings of each event, x [N, F, C], become
 * one vector y [N, C] by a learned weighted average, a projection of their concatenation, or
 * attention over the context fields with the item as the query.
 *
 * Backward, per row n (dy = dL/dy[n]):
 *   MEAN:   dx[n,f] += F w_f dy;  dL/dw_f = F sum_n dy . x[n,f];
 *           da_f += w_f (dL/dw_f - sum_g w_g dL/dw_g)                  (softmax backward)
 *   CONCAT: the linear layer's backward on [N, F*C].
 *   ATTN:   dalpha_f = dy . x_f;  ds_f = alpha_f (dalpha_f - sum_g alpha_g dalpha_g);
 *           dq = sum_f ds_f x_f / sqrt(C);
 *           dx_0 += dy + dq Wq;  dx_f += alpha_f dy + ds_f q / sqrt(C)  (f >= 1);
 *           dWq += dq^T x_0.
 *
 * Determinism: each row is computed by one thread in a fixed order, so OpenMP's thread count
 * does not change any bit of the loops here. Parameter gradients are summed over rows in order,
 * never as per-thread partials: MEAN by a serial loop over the per-row dots, ATTN and CONCAT by
 * one sgemm outside any parallel region (whose bits follow BLAS's own threading: nn_fusion.h). */
#include "seqrec/nn_fusion.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Below this many input floats the rows run on one thread: a parallel region costs more. */
enum { PAR_MIN = 32768 };

static const char *const fuse_names[] = {"mean", "concat", "attention"};

const char *sq_nn_fuse_name(sq_nn_fuse_kind k) {
    return (unsigned)k < sizeof fuse_names / sizeof *fuse_names ? fuse_names[k] : "?";
}

int sq_nn_fuse_parse(const char *name, sq_nn_fuse_kind *out) {
    if (!name)
        return -1;
    for (size_t i = 0; i < sizeof fuse_names / sizeof *fuse_names; i++)
        if (!strcmp(name, fuse_names[i])) {
            *out = (sq_nn_fuse_kind)i;
            return 0;
        }
    return -1;
}

int sq_nn_fuse_init(sq_nn_fuse *l, sq_params *ps, const char *prefix, sq_nn_fuse_kind kind, int F,
                    int C) {
    memset(l, 0, sizeof *l);
    l->a = l->wq = l->proj.w = l->proj.b = -1;
    if (F < 1 || C < 1 || (long long)F * C > INT_MAX || (unsigned)kind > SQ_FUSE_ATTN)
        return -1;
    l->kind = kind;
    l->F = F;
    l->C = C;
    char name[SQ_PARAM_NAME_MAX];
    size_t fs[1] = {(size_t)F}, qs[2] = {(size_t)C, (size_t)C};
    int n;
    switch (kind) {
    case SQ_FUSE_MEAN:
        l->a = sq_nn_declare(ps, prefix, "a", 1, fs, 0);
        return l->a < 0 ? -1 : 0;
    case SQ_FUSE_CONCAT:
        n = prefix && *prefix ? snprintf(name, sizeof name, "%s.proj", prefix)
                              : snprintf(name, sizeof name, "proj");
        if (n < 0 || (size_t)n >= sizeof name)
            return -1;
        return sq_nn_linear_init(&l->proj, ps, name, F * C, C, 1);
    case SQ_FUSE_ATTN:
        l->wq = sq_nn_declare(ps, prefix, "wq", 2, qs, 0);
        return l->wq < 0 ? -1 : 0;
    }
    return -1;
}

void sq_nn_fuse_reset(const sq_nn_fuse *l, sq_params *ps, sq_rng *rng) {
    switch (l->kind) {
    case SQ_FUSE_MEAN:
        sq_nn_fill(sq_nn_val(ps, l->a), (size_t)l->F, 0.0f);
        break;
    case SQ_FUSE_CONCAT:
        sq_nn_linear_reset(&l->proj, ps, rng);
        break;
    case SQ_FUSE_ATTN:
        sq_nn_fill_xavier(sq_nn_val(ps, l->wq), l->C, l->C, rng);
        break;
    }
}

/* SQ_ERR_ARG unless l is a usable layer of ps: sane sizes, a known kind, its tensors declared. */
static sq_status check_layer(const sq_nn_fuse *l, const sq_params *ps, sq_error *err) {
    const int F = l->F, C = l->C;
    if (F < 1 || C < 1 || (long long)F * C > INT_MAX)
        return sq_errorf(err, SQ_ERR_ARG, "fuse: bad sizes F=%d C=%d", F, C);
    int ok;
    switch (l->kind) {
    case SQ_FUSE_MEAN:
        ok = l->a >= 0 && (size_t)l->a < ps->n && ps->p[l->a].size == (size_t)F;
        break;
    case SQ_FUSE_CONCAT:
        ok = l->proj.w >= 0 && (size_t)l->proj.w < ps->n && l->proj.C == F * C && l->proj.O == C;
        break;
    case SQ_FUSE_ATTN:
        ok = l->wq >= 0 && (size_t)l->wq < ps->n && ps->p[l->wq].size == (size_t)C * C;
        break;
    default:
        return sq_errorf(err, SQ_ERR_ARG, "fuse: unknown kind %d", (int)l->kind);
    }
    if (!ok)
        return sq_errorf(err, SQ_ERR_ARG, "fuse (%s): tensors not declared for F=%d C=%d",
                         sq_nn_fuse_name(l->kind), F, C);
    return SQ_OK;
}

static int overlaps(const void *p, size_t np, const void *q, size_t nq) {
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)q;
    return a < b + nq && b < a + np;
}

/* ============================================ MEAN =========================================== */

/* w[0..F): softmax(a); w[F..2F): F * w, the scale applied to each field (exactly 1 at a = 0
 * up to the rounding of F * (1/F)). Softmax in double. */
static void mean_weights(float *w, const float *a, int F) {
    double m = a[0], s = 0.0;
    for (int f = 1; f < F; f++)
        m = a[f] > m ? a[f] : m;
    for (int f = 0; f < F; f++)
        s += exp((double)a[f] - m);
    for (int f = 0; f < F; f++) {
        double wf = exp((double)a[f] - m) / s;
        w[f] = (float)wf;
        w[F + f] = (float)(F * wf);
    }
}

/* x: [N, F, C] -> y: [N, C];  y[n] = sum_f sc_f x[n,f] with sc = w + F. */
static void mean_forward(float *y, const float *x, const float *w, int N, int F, int C) {
    const float *sc = w + F;
#pragma omp parallel for schedule(static) if ((long)N * F * C > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * F * C;
        float *yn = y + (size_t)n * C;
        for (int c = 0; c < C; c++)
            yn[c] = sc[0] * xn[c];
        for (int f = 1; f < F; f++) {
            const float s = sc[f], *xf = xn + (size_t)f * C;
            for (int c = 0; c < C; c++)
                yn[c] += s * xf[c];
        }
    }
}

/* g: [N + 1, F] scratch: rows 0..N-1 the per-row dots dy[n] . x[n,f], row N dL/dw. */
static void mean_backward(float *dx, float *da, float *g, const float *dy, const float *x,
                          const float *w, int N, int F, int C) {
    const float *sc = w + F;
#pragma omp parallel for schedule(static) if ((long)N * F * C > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * F * C, *dyn = dy + (size_t)n * C;
        for (int f = 0; f < F; f++) {
            const float *xf = xn + (size_t)f * C;
            float d = 0.0f;
            for (int c = 0; c < C; c++)
                d += dyn[c] * xf[c];
            g[(size_t)n * F + f] = d;
            if (dx) {
                float *dxf = dx + (size_t)n * F * C + (size_t)f * C;
                const float s = sc[f];
                for (int c = 0; c < C; c++)
                    dxf[c] += s * dyn[c];
            }
        }
    }
    /* dL/dw_f = F sum_n g[n,f], rows in order; then through the softmax. */
    float *dw = g + (size_t)N * F;
    double dot = 0.0;
    for (int f = 0; f < F; f++) {
        double s = 0.0;
        for (int n = 0; n < N; n++)
            s += g[(size_t)n * F + f];
        dw[f] = (float)(F * s);
        dot += (double)w[f] * dw[f];
    }
    for (int f = 0; f < F; f++)
        da[f] += (float)(w[f] * (dw[f] - dot));
}

/* ============================================ ATTN =========================================== */

/* q: [N, C] = x_0 Wq^T (given); w: [N, F] -> alpha (column 0 = 0); y: [N, C]. F > 1. */
static void attn_forward(float *y, float *w, const float *x, const float *q, int N, int F, int C) {
    const float inv = 1.0f / sqrtf((float)C);
#pragma omp parallel for schedule(static) if ((long)N * F * C > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * F * C, *qn = q + (size_t)n * C;
        float *wn = w + (size_t)n * F, *yn = y + (size_t)n * C, m = -INFINITY, s = 0.0f;
        wn[0] = 0.0f;
        for (int f = 1; f < F; f++) {
            const float *xf = xn + (size_t)f * C;
            float d = 0.0f;
            for (int c = 0; c < C; c++)
                d += qn[c] * xf[c];
            wn[f] = d * inv;
            m = wn[f] > m ? wn[f] : m;
        }
        for (int f = 1; f < F; f++)
            s += (wn[f] = expf(wn[f] - m));
        for (int f = 1; f < F; f++)
            wn[f] /= s;
        memcpy(yn, xn, (size_t)C * sizeof *yn);
        for (int f = 1; f < F; f++) {
            const float al = wn[f], *xf = xn + (size_t)f * C;
            for (int c = 0; c < C; c++)
                yn[c] += al * xf[c];
        }
    }
}

/* The per-row part: dq [N, C] (written), ds [N, F] scratch, dx accumulated except the dq Wq
 * term of dx_0, which the caller's sgemm adds. F > 1. */
static void attn_backward_rows(float *dx, float *dq, float *ds, const float *dy, const float *x,
                               const float *q, const float *w, int N, int F, int C) {
    const float inv = 1.0f / sqrtf((float)C);
#pragma omp parallel for schedule(static) if ((long)N * F * C > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * F * C, *dyn = dy + (size_t)n * C;
        const float *wn = w + (size_t)n * F, *qn = q + (size_t)n * C;
        float *dsn = ds + (size_t)n * F, *dqn = dq + (size_t)n * C, dot = 0.0f;
        for (int f = 1; f < F; f++) {
            const float *xf = xn + (size_t)f * C;
            float d = 0.0f;
            for (int c = 0; c < C; c++)
                d += dyn[c] * xf[c];
            dsn[f] = d;
            dot += wn[f] * d;
        }
        for (int f = 1; f < F; f++)
            dsn[f] = wn[f] * (dsn[f] - dot) * inv; /* dL/ds_f, with the 1/sqrt(C) folded in */
        for (int c = 0; c < C; c++)
            dqn[c] = 0.0f;
        for (int f = 1; f < F; f++) {
            const float d = dsn[f], *xf = xn + (size_t)f * C;
            for (int c = 0; c < C; c++)
                dqn[c] += d * xf[c];
        }
        if (!dx)
            continue;
        float *dxn = dx + (size_t)n * F * C;
        for (int c = 0; c < C; c++)
            dxn[c] += dyn[c];
        for (int f = 1; f < F; f++) {
            const float al = wn[f], d = dsn[f];
            float *dxf = dxn + (size_t)f * C;
            for (int c = 0; c < C; c++)
                dxf[c] += al * dyn[c] + d * qn[c];
        }
    }
}

/* F == 1: y = x_0, dx_0 += dy. */
static void copy_rows(float *y, const float *x, int N, int C) {
    memcpy(y, x, (size_t)N * C * sizeof *y);
}

static void add_rows(float *dx, const float *dy, int N, int C) {
    const size_t n = (size_t)N * C;
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        dx[i] += dy[i];
}

/* ========================================= Forward ========================================== */

sq_status sq_nn_fuse_forward(const sq_nn_fuse *l, const sq_params *ps, sq_arena *a,
                             sq_nn_fuse_acts *acts, float *y, const float *x, int N,
                             sq_error *err) {
    sq_status rc = check_layer(l, ps, err);
    if (rc)
        return rc;
    const int F = l->F, C = l->C;
    if (N < 0)
        return sq_errorf(err, SQ_ERR_ARG, "fuse: bad sizes N=%d", N);
    memset(acts, 0, sizeof *acts);
    acts->N = N;
    acts->x = x;
    if (N == 0)
        return SQ_OK;
    const size_t nx = (size_t)N * F * C, ny = (size_t)N * C;
    if (!x || !y)
        return sq_errorf(err, SQ_ERR_ARG, "fuse: NULL %s", x ? "y" : "x");
    if (overlaps(y, ny * sizeof *y, x, nx * sizeof *x))
        return sq_errorf(err, SQ_ERR_ARG, "fuse: y must not alias x");
    switch (l->kind) {
    case SQ_FUSE_MEAN:
        if (!(acts->w = sq_arena_alloc(a, 2 * (size_t)F * sizeof *acts->w)))
            return sq_errorf(err, SQ_ERR_NOMEM, "fuse (mean): arena full (F=%d)", F);
        mean_weights(acts->w, sq_nn_val(ps, l->a), F);
        mean_forward(y, x, acts->w, N, F, C);
        break;
    case SQ_FUSE_CONCAT:
        sq_nn_linear_forward(y, x, sq_nn_val(ps, l->proj.w), sq_nn_val(ps, l->proj.b), N, F * C, C);
        break;
    case SQ_FUSE_ATTN:
        if (!(acts->w = sq_arena_calloc(a, (size_t)N * F * sizeof *acts->w)) ||
            (F > 1 && !(acts->q = sq_arena_alloc(a, ny * sizeof *acts->q))))
            return sq_errorf(err, SQ_ERR_NOMEM, "fuse (attention): arena full (N=%d F=%d C=%d)", N,
                             F, C);
        if (F == 1) {
            copy_rows(y, x, N, C);
            break;
        }
        /* q = x_0 Wq^T: x_0 is the first C floats of each [F*C] row */
        sq_nn_linear_forward_ld(acts->q, C, x, F * C, sq_nn_val(ps, l->wq), NULL, N, C, C);
        attn_forward(y, acts->w, x, acts->q, N, F, C);
        break;
    }
    return SQ_OK;
}

/* ========================================= Backward ========================================= */

sq_status sq_nn_fuse_backward(const sq_nn_fuse *l, sq_params *ps, sq_arena *a,
                              const sq_nn_fuse_acts *acts, float *dx, const float *dy,
                              sq_error *err) {
    sq_status rc = check_layer(l, ps, err);
    if (rc)
        return rc;
    const int N = acts->N, F = l->F, C = l->C;
    if (N < 0)
        return sq_errorf(err, SQ_ERR_ARG, "fuse backward: bad sizes N=%d", N);
    if (N == 0)
        return SQ_OK;
    if (!dy || !acts->x)
        return sq_errorf(err, SQ_ERR_ARG, "fuse backward: NULL %s", dy ? "x" : "dy");
    const size_t ny = (size_t)N * C;
    float *g, *dq, *ds;
    switch (l->kind) {
    case SQ_FUSE_MEAN:
        if (!acts->w)
            return sq_errorf(err, SQ_ERR_ARG, "fuse backward (mean): no forward weights");
        if (!(g = sq_arena_alloc(a, ((size_t)N + 1) * F * sizeof *g)))
            return sq_errorf(err, SQ_ERR_NOMEM, "fuse backward (mean): arena full (N=%d F=%d)", N,
                             F);
        mean_backward(dx, sq_nn_grad(ps, l->a), g, dy, acts->x, acts->w, N, F, C);
        break;
    case SQ_FUSE_CONCAT:
        sq_nn_linear_backward(dx, sq_nn_grad(ps, l->proj.w), sq_nn_grad(ps, l->proj.b), dy, acts->x,
                              sq_nn_val(ps, l->proj.w), N, F * C, C);
        break;
    case SQ_FUSE_ATTN:
        if (F == 1) {
            if (dx)
                add_rows(dx, dy, N, C);
            break;
        }
        if (!acts->w || !acts->q)
            return sq_errorf(err, SQ_ERR_ARG, "fuse backward (attention): no forward weights");
        dq = sq_arena_alloc(a, ny * sizeof *dq);
        ds = sq_arena_alloc(a, (size_t)N * F * sizeof *ds);
        if (!dq || !ds)
            return sq_errorf(err, SQ_ERR_NOMEM,
                             "fuse backward (attention): arena full (N=%d F=%d C=%d)", N, F, C);
        attn_backward_rows(dx, dq, ds, dy, acts->x, acts->q, acts->w, N, F, C);
        /* dx_0 += dq Wq; dWq += dq^T x_0 (rows summed by the GEMM, outside any region) */
        sq_nn_linear_backward_ld(dx, F * C, sq_nn_grad(ps, l->wq), NULL, dq, C, acts->x,
                                 sq_nn_val(ps, l->wq), N, C, C);
        break;
    }
    return SQ_OK;
}
