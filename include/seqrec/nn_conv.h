/* nn_conv.h — Caser's convolutions over an embedded sequence (Tang & Wang, WSDM 2018).
 *
 * Follows nn_layers.h's conventions (tier 2: a struct of parameter indices, _init / _reset /
 * _forward / _backward, an _acts struct carved from the caller's arena, backward accumulates).
 *
 * x: [B, L, d], the embeddings of the last L items of each sequence (a [L, d] "image").
 *   horizontal: for each height k = 1..L, n_h filters of size [k, d] slide over time:
 *       c[b, k, f, t] = ReLU(bh[k, f] + Σ_{i<k, j<d} Wh_k[f, i, j] x[b, t + i, j]),  t = 0..L−k
 *       o_h[b, k, f] = max_t c[b, k, f, t]                       (max-pool over time)
 *   vertical: n_v filters of size [L, 1], weighted sums over positions, no activation:
 *       o_v[b, f, j] = bv[f] + Σ_t Wv[f, t] x[b, t, j]
 *   y[b] = [ o_v (n_v · d values, f-major) | o_h (L · n_h values, height-major) ]: Caser's
 *   torch.cat([out_v, out_h], 1), of width sq_nn_caser_conv_width().
 *
 * Tensors: "<prefix>.wh" [n_h · d · L(L+1)/2]: the [n_h, k, d] block of height k starts at
 *          n_h · d · k(k−1)/2 (PyTorch's conv_h[k−1].weight [n_h, 1, k, d], in order);
 *          "<prefix>.bh" [L, n_h]; "<prefix>.wv" [n_v, L]; "<prefix>.bv" [n_v]
 *          (conv_v.weight [n_v, 1, L, 1] and conv_v.bias). n_h or n_v may be 0 (that part off).
 */
#ifndef SEQREC_NN_CONV_H
#define SEQREC_NN_CONV_H

#include "seqrec/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int L, d;           /* sequence length, embedding width */
    int n_h, n_v;       /* horizontal filters per height, vertical filters */
    int wh, bh, wv, bv; /* parameter indices (-1 for an absent part) */
} sq_nn_caser_conv;

typedef struct {
    int B;           /* batch of this forward */
    const float *x;  /* [B, L, d] input (caller's; must stay unchanged until backward) */
    int32_t *argmax; /* [B, L · n_h] the t of each max-pool, −1 where the ReLU output is 0 */
} sq_nn_caser_conv_acts;

/* Declares the tensors; 0 or −1 (bad sizes, SQ_ERR_NOMEM). */
int sq_nn_caser_conv_init(sq_nn_caser_conv *l, sq_params *ps, const char *prefix, int L, int d,
                          int n_h, int n_v);
/* Weights uniform(±1/sqrt(fan_in)) as PyTorch's Conv2d, fan_in = k·d or L; biases the same. */
void sq_nn_caser_conv_reset(const sq_nn_caser_conv *l, sq_params *ps, sq_rng *rng);
/* Width of one output row: n_v · d + L · n_h. */
int sq_nn_caser_conv_width(const sq_nn_caser_conv *l);

/* x: [B, L, d] -> y: [B, width]. Errors: SQ_ERR_NOMEM (arena), SQ_ERR_ARG. */
sq_status sq_nn_caser_conv_forward(const sq_nn_caser_conv *l, const sq_params *ps, sq_arena *a,
                                   sq_nn_caser_conv_acts *acts, float *y, const float *x, int B,
                                   sq_error *err);
/* dy: [B, width] -> dx: [B, L, d] (accumulated; may be NULL) and the parameter gradients.
 * The max-pool passes its gradient to the kept argmax only. */
sq_status sq_nn_caser_conv_backward(const sq_nn_caser_conv *l, sq_params *ps, sq_arena *a,
                                    const sq_nn_caser_conv_acts *acts, float *dx, const float *dy,
                                    sq_error *err);

#ifdef __cplusplus
}
#endif
#endif
