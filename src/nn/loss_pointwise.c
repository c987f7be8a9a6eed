/* loss_pointwise.c — losses on one or two scores per row: binary cross-entropy with logits,
 * BPR, WARP (with its violator search) and MSE. Sums run in double; sigmoids and softplus are
 * written in forms that never overflow (exp of a non-positive number only). */
#include "seqrec/nn.h"

#include <math.h>

/* σ(x) without overflow for any x. */
static double sigmoid(double x) {
    if (x >= 0)
        return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

/* log(1 + exp(x)) without overflow for any x. */
static double softplus(double x) {
    return fmax(x, 0.0) + log1p(exp(-fabs(x)));
}

/* ================================ BCE with logits ================================ */

/* x, y, w: [N]; loss = (1/N) Σ w (softplus(x) − x y). */
float sq_nn_bce_forward(const float *x, const float *y, const float *w, int N) {
    if (N <= 0)
        return 0.0f;
    double total = 0.0;
    for (int i = 0; i < N; i++) {
        double l = softplus(x[i]) - (double)x[i] * y[i];
        total += w ? w[i] * l : l;
    }
    return (float)(total / N);
}

/* dx += dloss · w (σ(x) − y) / N. */
void sq_nn_bce_backward(float *dx, float dloss, const float *x, const float *y, const float *w,
                        int N) {
    if (N <= 0)
        return;
    double scale = (double)dloss / N;
    for (int i = 0; i < N; i++) {
        double g = scale * (sigmoid(x[i]) - y[i]);
        dx[i] += (float)(w ? w[i] * g : g);
    }
}

/* ====================================== BPR ====================================== */

/* pos, neg: [N]; loss = (1/N) Σ softplus(neg − pos). */
float sq_nn_bpr_forward(const float *pos, const float *neg, int N) {
    if (N <= 0)
        return 0.0f;
    double total = 0.0;
    for (int i = 0; i < N; i++)
        total += softplus((double)neg[i] - pos[i]);
    return (float)(total / N);
}

/* dpos −= dloss σ(neg − pos)/N; dneg += the same. Either may be NULL. */
void sq_nn_bpr_backward(float *dpos, float *dneg, float dloss, const float *pos, const float *neg,
                        int N) {
    if (N <= 0)
        return;
    double scale = (double)dloss / N;
    for (int i = 0; i < N; i++) {
        float g = (float)(scale * sigmoid((double)neg[i] - pos[i]));
        if (dpos)
            dpos[i] -= g;
        if (dneg)
            dneg[i] += g;
    }
}

/* ====================================== WARP ===================================== */

double sq_nn_warp_rank_weight(long r) {
    if (r <= 0)
        return 0.0;
    if (r < 64) {
        double s = 0.0;
        for (long k = r; k >= 1; k--)
            s += 1.0 / (double)k; /* small terms first */
        return s;
    }
    /* H_r = ln r + γ + 1/(2r) − 1/(12r²) + 1/(120r⁴) − …; the next term is below 1e−13 here */
    double x = (double)r;
    return log(x) + 0.57721566490153286061 + 1.0 / (2.0 * x) - 1.0 / (12.0 * x * x) +
           1.0 / (120.0 * x * x * x * x);
}

/* Rank estimate from the number of draws it took: floor((n_items − 1) / draws), at least 1. */
static float warp_weight(long n_items, long draws) {
    long r = (n_items - 1) / draws;
    return (float)sq_nn_warp_rank_weight(r < 1 ? 1 : r);
}

int sq_nn_warp_find(float pos, const float *neg_scores, int n_neg, float margin, long n_items,
                    float *weight) {
    for (int k = 0; k < n_neg; k++) {
        if (neg_scores[k] > pos - margin) {
            *weight = warp_weight(n_items, k + 1);
            return k;
        }
    }
    *weight = 0.0f;
    return -1;
}

int sq_nn_warp_find_draw(float pos, sq_nn_warp_draw_fn draw, void *ud, int max_draws, float margin,
                         long n_items, uint32_t *neg_id, float *neg_score, float *weight) {
    for (int t = 1; t <= max_draws; t++) {
        uint32_t id;
        float s = draw(ud, &id);
        if (s > pos - margin) {
            *neg_id = id;
            *neg_score = s;
            *weight = warp_weight(n_items, t);
            return t;
        }
    }
    *weight = 0.0f;
    return 0;
}

/* pos, neg, weight: [N]; loss = (1/N) Σ weight · max(0, margin − pos + neg). */
float sq_nn_warp_forward(const float *pos, const float *neg, const float *weight, float margin,
                         int N) {
    if (N <= 0)
        return 0.0f;
    double total = 0.0;
    for (int i = 0; i < N; i++) {
        double hinge = (double)margin - pos[i] + neg[i];
        if (hinge > 0)
            total += weight[i] * hinge;
    }
    return (float)(total / N);
}

/* Where the hinge is active: dpos −= dloss · weight/N, dneg += dloss · weight/N. */
void sq_nn_warp_backward(float *dpos, float *dneg, float dloss, const float *pos, const float *neg,
                         const float *weight, float margin, int N) {
    if (N <= 0)
        return;
    double scale = (double)dloss / N;
    for (int i = 0; i < N; i++) {
        if ((double)margin - pos[i] + neg[i] <= 0)
            continue;
        float g = (float)(scale * weight[i]);
        if (dpos)
            dpos[i] -= g;
        if (dneg)
            dneg[i] += g;
    }
}

/* ====================================== MSE ====================================== */

/* pred, target: [N]; loss = (1/N) Σ (pred − target)². */
float sq_nn_mse_forward(const float *pred, const float *target, int N) {
    if (N <= 0)
        return 0.0f;
    double total = 0.0;
    for (int i = 0; i < N; i++) {
        double d = (double)pred[i] - target[i];
        total += d * d;
    }
    return (float)(total / N);
}

/* dpred += dloss · 2 (pred − target)/N. */
void sq_nn_mse_backward(float *dpred, float dloss, const float *pred, const float *target, int N) {
    if (N <= 0)
        return;
    double scale = 2.0 * dloss / N;
    for (int i = 0; i < N; i++)
        dpred[i] += (float)(scale * ((double)pred[i] - target[i]));
}
