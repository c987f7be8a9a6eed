/* conv.c — Caser's horizontal and vertical convolutions (nn_conv.h).
 *
 * Sizes are small (L ≈ 5, d ≈ 50, a few filters), so plain loops: a window x[b, t : t+k, :] is
 * k·d contiguous floats, and so is a height-k filter, so each horizontal conv value is one dot
 * product. Threads: forward and the input gradient over the batch (disjoint rows); weight
 * gradients over filters, each summing its batch in order (deterministic, no reduction
 * buffers). */
#include "seqrec/nn.h"

#include <math.h>
#include <string.h>

static size_t wh_offset(const sq_nn_caser_conv *l, int k) { /* block of height k (1-based) */
    return (size_t)l->n_h * l->d * (size_t)k * (size_t)(k - 1) / 2;
}

int sq_nn_caser_conv_init(sq_nn_caser_conv *l, sq_params *ps, const char *prefix, int L, int d,
                          int n_h, int n_v) {
    memset(l, 0, sizeof *l);
    l->wh = l->bh = l->wv = l->bv = -1;
    if (L <= 0 || d <= 0 || n_h < 0 || n_v < 0 || n_h + n_v == 0)
        return -1;
    l->L = L;
    l->d = d;
    l->n_h = n_h;
    l->n_v = n_v;
    if (n_h) {
        size_t whs[1] = {(size_t)n_h * d * (size_t)L * (size_t)(L + 1) / 2};
        size_t bhs[2] = {(size_t)L, (size_t)n_h};
        l->wh = sq_nn_declare(ps, prefix, "wh", 1, whs, 0);
        l->bh = sq_nn_declare(ps, prefix, "bh", 2, bhs, 0);
        if (l->wh < 0 || l->bh < 0)
            return -1;
    }
    if (n_v) {
        size_t wvs[2] = {(size_t)n_v, (size_t)L}, bvs[1] = {(size_t)n_v};
        l->wv = sq_nn_declare(ps, prefix, "wv", 2, wvs, 0);
        l->bv = sq_nn_declare(ps, prefix, "bv", 1, bvs, 0);
        if (l->wv < 0 || l->bv < 0)
            return -1;
    }
    return 0;
}

void sq_nn_caser_conv_reset(const sq_nn_caser_conv *l, sq_params *ps, sq_rng *rng) {
    for (int k = 1; k <= l->L && l->n_h; k++) {
        float s = 1.0f / sqrtf((float)(k * l->d));
        sq_nn_fill_uniform(sq_nn_val(ps, l->wh) + wh_offset(l, k), (size_t)l->n_h * k * l->d, -s, s,
                           rng);
        sq_nn_fill_uniform(sq_nn_val(ps, l->bh) + (size_t)(k - 1) * l->n_h, (size_t)l->n_h, -s, s,
                           rng);
    }
    if (l->n_v) {
        float s = 1.0f / sqrtf((float)l->L);
        sq_nn_fill_uniform(sq_nn_val(ps, l->wv), (size_t)l->n_v * l->L, -s, s, rng);
        sq_nn_fill_uniform(sq_nn_val(ps, l->bv), (size_t)l->n_v, -s, s, rng);
    }
}

int sq_nn_caser_conv_width(const sq_nn_caser_conv *l) {
    return l->n_v * l->d + l->L * l->n_h;
}

static float dot(const float *a, const float *b, int n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

sq_status sq_nn_caser_conv_forward(const sq_nn_caser_conv *l, const sq_params *ps, sq_arena *a,
                                   sq_nn_caser_conv_acts *acts, float *y, const float *x, int B,
                                   sq_error *err) {
    const int L = l->L, d = l->d, nh = l->n_h, nv = l->n_v, W = sq_nn_caser_conv_width(l);
    if (B < 0 || !x || !y)
        return sq_errorf(err, SQ_ERR_ARG, "caser conv: bad input (B=%d)", B);
    acts->B = B;
    acts->x = x;
    acts->argmax = NULL;
    if (nh && B > 0 &&
        !(acts->argmax = sq_arena_alloc(a, (size_t)B * L * nh * sizeof *acts->argmax)))
        return sq_errorf(err, SQ_ERR_NOMEM, "caser conv: arena full");
    const float *wh = sq_nn_val(ps, l->wh), *bh = sq_nn_val(ps, l->bh);
    const float *wv = sq_nn_val(ps, l->wv), *bv = sq_nn_val(ps, l->bv);
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const float *xb = x + (size_t)b * L * d;
        float *yv = y + (size_t)b * W, *yh = yv + (size_t)nv * d;
        for (int f = 0; f < nv; f++) { /* vertical */
            float *o = yv + (size_t)f * d;
            for (int j = 0; j < d; j++)
                o[j] = bv[f];
            for (int t = 0; t < L; t++) {
                const float w = wv[f * L + t], *xt = xb + (size_t)t * d;
#pragma omp simd
                for (int j = 0; j < d; j++)
                    o[j] += w * xt[j];
            }
        }
        for (int k = 1; k <= L; k++) { /* horizontal, height k */
            for (int f = 0; f < nh; f++) {
                const float *wf = wh + wh_offset(l, k) + (size_t)f * k * d;
                float best = -INFINITY;
                int arg = 0;
                for (int t = 0; t + k <= L; t++) {
                    float c = dot(wf, xb + (size_t)t * d, k * d);
                    if (c > best) {
                        best = c;
                        arg = t;
                    }
                }
                best += bh[(k - 1) * nh + f];
                int o = (k - 1) * nh + f;
                yh[o] = best > 0.0f ? best : 0.0f;
                acts->argmax[(size_t)b * L * nh + o] = best > 0.0f ? arg : -1;
            }
        }
    }
    return SQ_OK;
}

sq_status sq_nn_caser_conv_backward(const sq_nn_caser_conv *l, sq_params *ps, sq_arena *a,
                                    const sq_nn_caser_conv_acts *acts, float *dx, const float *dy,
                                    sq_error *err) {
    (void)a;
    (void)err;
    const int L = l->L, d = l->d, nh = l->n_h, nv = l->n_v, W = sq_nn_caser_conv_width(l);
    const int B = acts->B;
    const float *x = acts->x;
    const int32_t *am = acts->argmax;
    const float *wh = sq_nn_val(ps, l->wh), *wv = sq_nn_val(ps, l->wv);
    float *dwh = sq_nn_grad(ps, l->wh), *dbh = sq_nn_grad(ps, l->bh);
    float *dwv = sq_nn_grad(ps, l->wv), *dbv = sq_nn_grad(ps, l->bv);
    if (dx) {
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            float *dxb = dx + (size_t)b * L * d;
            const float *dyv = dy + (size_t)b * W, *dyh = dyv + (size_t)nv * d;
            for (int f = 0; f < nv; f++) /* dx[t, j] += Wv[f, t] dy_v[f, j] */
                for (int t = 0; t < L; t++) {
                    const float w = wv[f * L + t];
#pragma omp simd
                    for (int j = 0; j < d; j++)
                        dxb[(size_t)t * d + j] += w * dyv[(size_t)f * d + j];
                }
            for (int k = 1; k <= L; k++) /* dx[t*:t*+k] += dy_h Wh_k[f] */
                for (int f = 0; f < nh; f++) {
                    int o = (k - 1) * nh + f, t = am[(size_t)b * L * nh + o];
                    if (t < 0)
                        continue;
                    const float g = dyh[o], *wf = wh + wh_offset(l, k) + (size_t)f * k * d;
                    float *dw = dxb + (size_t)t * d;
#pragma omp simd
                    for (int i = 0; i < k * d; i++)
                        dw[i] += g * wf[i];
                }
        }
    }
    /* vertical weights: dWv[f, t] += Σ_b Σ_j dy_v[b, f, j] x[b, t, j]; dbv[f] += Σ_b,j dy_v */
#pragma omp parallel for schedule(static)
    for (int f = 0; f < nv; f++) {
        for (int b = 0; b < B; b++) {
            const float *dyv = dy + (size_t)b * W + (size_t)f * d, *xb = x + (size_t)b * L * d;
            for (int t = 0; t < L; t++)
                dwv[f * L + t] += dot(dyv, xb + (size_t)t * d, d);
            float s = 0.0f;
            for (int j = 0; j < d; j++)
                s += dyv[j];
            dbv[f] += s;
        }
    }
    /* horizontal weights, one filter (k, f) per iteration: dWh_k[f] += dy x[b, t* : t*+k] */
#pragma omp parallel for schedule(dynamic)
    for (int o = 0; o < L * nh; o++) {
        const int k = o / nh + 1, f = o % nh;
        float *dw = dwh + wh_offset(l, k) + (size_t)f * k * d;
        for (int b = 0; b < B; b++) {
            int t = am[(size_t)b * L * nh + o];
            if (t < 0)
                continue;
            const float g = dy[(size_t)b * W + (size_t)nv * d + o];
            const float *xw = x + (size_t)b * L * d + (size_t)t * d;
#pragma omp simd
            for (int i = 0; i < k * d; i++)
                dw[i] += g * xw[i];
            dbh[o] += g;
        }
    }
    return SQ_OK;
}
