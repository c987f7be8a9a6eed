/* loss_bprmax.c — BPR-max (Hidasi & Karatzas 2018), the ranking loss of GRU4Rec with sampled
 * negatives (see nn_loss.h). Per row, with positive score p and the kept negatives x_j:
 *
 *     log s_j = x_j − lse(x)                   lse(x) = log Σ_k exp(x_k)
 *     l_j     = log s_j + log σ(p − x_j)        log S  = lse_j(l_j)
 *     loss    = −log S + reg · Q                Q      = Σ_j s_j x_j²
 *
 * Everything runs in double. S is summed directly (two exps per negative) unless the sum
 * underflows, when p is far below every negative; that row is then redone in the log domain
 * (l_j through a log-sum-exp), so the loss keeps growing where the authors' code, which adds
 * 1e-24, saturates at 55.3. With w_j = s_j σ(p − x_j) / S (each negative's share of S) the
 * gradients are
 *
 *     ∂loss/∂p   = −Σ_j w_j σ(x_j − p)
 *     ∂loss/∂x_j = s_j − w_j σ(p − x_j) + reg · s_j (x_j² − Q + 2 x_j)
 *
 * (the softmax weights are differentiated too). The gradients of a row sum to 0 when reg = 0:
 * adding a constant to every score of a row changes neither the softmax nor the differences.
 * Rows are independent: OpenMP over rows, each writing its own gradient entries; only the
 * forward's mean is a reduction. */
#include "seqrec/nn.h"

#include <math.h>

/* σ(d) and σ(−d) = 1 − σ(d) from one exp, without overflow for any d. */
static void sigmoid_pair(double d, double *sig, double *sig_neg) {
    double t = exp(-fabs(d)), r = 1.0 / (1.0 + t);
    *sig = d >= 0 ? r : t * r;
    *sig_neg = d >= 0 ? t * r : r;
}

/* log σ(d) = −softplus(−d), without overflow for any d. */
static double log_sigmoid(double d) {
    return -(fmax(-d, 0.0) + log1p(exp(-fabs(d))));
}

/* Is negative j of a row kept (not an accidental hit on the row's positive)? */
static int kept(const uint32_t *ids, int32_t pid, int j) {
    return !ids || ids[j] != (uint32_t)pid;
}

/* Below this, Σ_j exp(x_j − max x) σ(p − x_j) is recomputed in the log domain (it has lost
 * precision to underflow, or is 0: p is some 600 below the negatives). */
#define BPRMAX_TINY 1e-250

/* One row's statistics. */
typedef struct {
    double lse_x; /* log Σ_k exp(x_k) */
    double log_s; /* log S */
    double q;     /* Σ_j s_j x_j² */
    int logdom;   /* 1: S underflows, so w_j must be formed in the log domain */
} row_stats;

/* Fills st for a row (x: its K negative scores, ids: their ids or NULL) and returns how many
 * negatives are kept; 0 leaves st untouched. Two exps per negative (one more each, and a
 * log1p, in the rare log-domain case). */
static int row_compute(row_stats *st, double p, const float *x, const uint32_t *ids, int32_t pid,
                       int K) {
    double m = -INFINITY;
    int n = 0;
    for (int j = 0; j < K; j++)
        if (kept(ids, pid, j)) {
            m = fmax(m, (double)x[j]);
            n++;
        }
    if (!n)
        return 0;
    double z = 0.0, a = 0.0, qn = 0.0;
    for (int j = 0; j < K; j++)
        if (kept(ids, pid, j)) {
            double e = exp((double)x[j] - m), sig, sig_neg;
            sigmoid_pair(p - x[j], &sig, &sig_neg);
            z += e;
            a += e * sig;
            qn += e * (double)x[j] * (double)x[j];
        }
    st->lse_x = m + log(z);
    st->q = qn / z;
    st->logdom = !(a > BPRMAX_TINY);
    if (!st->logdom) {
        st->log_s = log(a) - log(z);
        return n;
    }
    double m2 = -INFINITY;
    for (int j = 0; j < K; j++)
        if (kept(ids, pid, j))
            m2 = fmax(m2, (double)x[j] - st->lse_x + log_sigmoid(p - x[j]));
    double z2 = 0.0;
    for (int j = 0; j < K; j++)
        if (kept(ids, pid, j))
            z2 += exp((double)x[j] - st->lse_x + log_sigmoid(p - x[j]) - m2);
    st->log_s = m2 + log(z2);
    return n;
}

/* Does row i count (unmasked, at least one kept negative)? */
static int row_counts(const int32_t *pos_id, const uint32_t *neg_id, int K, int i) {
    if (pos_id[i] < 0)
        return 0;
    const uint32_t *ids = neg_id ? neg_id + (size_t)i * K : NULL;
    for (int j = 0; j < K; j++)
        if (kept(ids, pos_id[i], j))
            return 1;
    return 0;
}

/* pos: [N], neg: [N, K]; the mean of the counted rows' losses (0 when none counts). */
float sq_nn_bprmax_forward(const float *pos, const float *neg, const int32_t *pos_id,
                           const uint32_t *neg_id, int K, float reg, int N) {
    if (N <= 0 || K <= 0)
        return 0.0f;
    double total = 0.0;
    long n = 0;
#pragma omp parallel for schedule(static) reduction(+ : total, n) if ((long)N * K > 16384)
    for (int i = 0; i < N; i++) {
        if (pos_id[i] < 0)
            continue;
        row_stats st;
        const uint32_t *ids = neg_id ? neg_id + (size_t)i * K : NULL;
        if (!row_compute(&st, pos[i], neg + (size_t)i * K, ids, pos_id[i], K))
            continue;
        total += -st.log_s + (double)reg * st.q;
        n++;
    }
    return n ? (float)(total / (double)n) : 0.0f;
}

/* dpos [N] += dloss/n · ∂loss_i/∂p, dneg [N, K] += dloss/n · ∂loss_i/∂x_j (formulas above). */
void sq_nn_bprmax_backward(float *dpos, float *dneg, float dloss, const float *pos,
                           const float *neg, const int32_t *pos_id, const uint32_t *neg_id, int K,
                           float reg, int N) {
    if (N <= 0 || K <= 0 || (!dpos && !dneg))
        return;
    long n = 0;
    for (int i = 0; i < N; i++)
        n += row_counts(pos_id, neg_id, K, i);
    if (!n)
        return;
    const double scale = (double)dloss / (double)n, r = reg;
#pragma omp parallel for schedule(static) if ((long)N * K > 16384)
    for (int i = 0; i < N; i++) {
        if (pos_id[i] < 0)
            continue;
        row_stats st;
        const uint32_t *ids = neg_id ? neg_id + (size_t)i * K : NULL;
        const float *x = neg + (size_t)i * K;
        const double p = pos[i];
        if (!row_compute(&st, p, x, ids, pos_id[i], K))
            continue;
        const double inv_s = st.logdom ? 0.0 : exp(-st.log_s);
        double dp = 0.0;
        for (int j = 0; j < K; j++) {
            if (!kept(ids, pos_id[i], j))
                continue;
            const double xj = x[j], s = exp(xj - st.lse_x);
            double sig, sig_neg;
            sigmoid_pair(p - xj, &sig, &sig_neg);
            const double w =
                st.logdom ? exp(xj - st.lse_x + log_sigmoid(p - xj) - st.log_s) : s * sig * inv_s;
            dp -= w * sig_neg;
            if (dneg)
                dneg[(size_t)i * K + j] +=
                    (float)(scale * (s - w * sig + r * s * (xj * xj - st.q + 2.0 * xj)));
        }
        if (dpos)
            dpos[i] += (float)(scale * dp);
    }
}
