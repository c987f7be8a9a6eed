/* hybrid.h — the hybrid model's loss of one (user, positive, negative) triple, exposed for the
 * gradient check (tests/nn/test_warp.c). Internal to src/models and its tests. */
#ifndef SEQREC_MODELS_HYBRID_H
#define SEQREC_MODELS_HYBRID_H

#include "seqrec/model.h"

/* What a user's representation is made of. */
typedef struct {
    uint32_t user;         /* dataset user whose id embedding is used, or UINT32_MAX */
    const uint32_t *attrs; /* n_user_attrs attribute values (UINT32_MAX: missing), or NULL */
    const uint32_t *hist;  /* recent items, whose representations are averaged in */
    uint32_t n_hist;
} sq_hybrid_user;

/* All the hybrid model's weights as one array (item ids, item id biases, item features,
 * item feature biases, user ids, user attributes), and its size. */
float *sq_hybrid_weights(sq_model *m, size_t *n);

/* The loss of one triple with a fixed WARP rank weight w (bpr 0):
 *     L = w · max(0, 1 − x_ui + x_uj)
 * or (bpr 1) L = −log σ(x_ui − x_uj), where x_ui = p_u · q_i + b_i; and, when grad is not NULL,
 * dL/dθ added into grad (laid out as sq_hybrid_weights). The negatives' sampling, which is not
 * differentiable, happens outside. */
double sq_hybrid_triple_loss(sq_model *m, const sq_hybrid_user *u, uint32_t i, uint32_t j, float w,
                             int bpr, float *grad);

#endif
