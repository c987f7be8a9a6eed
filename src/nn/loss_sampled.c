/* loss_sampled.c — sampled softmax with log-Q correction over one positive and K negatives per
 * row. Each row's corrected logits o = (o_pos, o_1..o_K) go through a log-sum-exp with the row
 * maximum subtracted; a negative that is the row's own positive (an accidental hit) is left out
 * of the softmax and gets no gradient. The correction shifts logits only, so the gradient with
 * respect to a raw logit is that of its corrected one: softmax − onehot. */
#include "seqrec/nn.h"

#include <math.h>

static const uint32_t *neg_ids(const sq_nn_sampled_negs *s, int i) {
    return s->shared_neg ? s->neg_id : s->neg_id + (size_t)i * s->K;
}

static float neg_logq(const sq_nn_sampled_negs *s, int i, int k) {
    if (!s->logq_neg)
        return 0.0f;
    return s->shared_neg ? s->logq_neg[k] : s->logq_neg[(size_t)i * s->K + k];
}

/* Row i's corrected positive logit and log-sum-exp. */
static void row_lse(const float *pos, const float *neg, const int32_t *pos_id,
                    const sq_nn_sampled_negs *s, int i, double *o_pos, double *lse) {
    const uint32_t *ids = neg_ids(s, i);
    const float *nrow = neg + (size_t)i * s->K;
    double op = (double)pos[i] - (s->logq_pos ? s->logq_pos[i] : 0.0f);
    double mx = op;
    for (int k = 0; k < s->K; k++) {
        if (ids[k] == (uint32_t)pos_id[i])
            continue;
        double o = (double)nrow[k] - neg_logq(s, i, k);
        if (o > mx)
            mx = o;
    }
    double sum = exp(op - mx);
    for (int k = 0; k < s->K; k++) {
        if (ids[k] == (uint32_t)pos_id[i])
            continue;
        sum += exp((double)nrow[k] - neg_logq(s, i, k) - mx);
    }
    *o_pos = op;
    *lse = mx + log(sum);
}

/* pos: [N], neg: [N, K]; loss = mean over rows with pos_id >= 0 of lse(o) − o_pos. */
float sq_nn_sampled_softmax_forward(const float *pos, const float *neg, const int32_t *pos_id,
                                    const sq_nn_sampled_negs *s, int N) {
    double total = 0.0;
    int n = 0;
    for (int i = 0; i < N; i++) {
        if (pos_id[i] < 0)
            continue;
        double op, lse;
        row_lse(pos, neg, pos_id, s, i, &op, &lse);
        total += lse - op;
        n++;
    }
    return n ? (float)(total / n) : 0.0f;
}

/* dpos [N] += dloss/n (p_pos − 1); dneg [N, K] += dloss/n p_k (0 on accidental hits). */
void sq_nn_sampled_softmax_backward(float *dpos, float *dneg, float dloss, const float *pos,
                                    const float *neg, const int32_t *pos_id,
                                    const sq_nn_sampled_negs *s, int N) {
    int n = 0;
    for (int i = 0; i < N; i++)
        n += pos_id[i] >= 0;
    if (!n)
        return;
    double scale = (double)dloss / n;
    for (int i = 0; i < N; i++) {
        if (pos_id[i] < 0)
            continue;
        double op, lse;
        row_lse(pos, neg, pos_id, s, i, &op, &lse);
        if (dpos)
            dpos[i] += (float)(scale * (exp(op - lse) - 1.0));
        if (!dneg)
            continue;
        const uint32_t *ids = neg_ids(s, i);
        const float *nrow = neg + (size_t)i * s->K;
        float *drow = dneg + (size_t)i * s->K;
        for (int k = 0; k < s->K; k++) {
            if (ids[k] == (uint32_t)pos_id[i])
                continue;
            drow[k] += (float)(scale * exp((double)nrow[k] - neg_logq(s, i, k) - lse));
        }
    }
}
