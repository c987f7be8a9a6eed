/* nn_graph.h — layers over small graphs (SR-GNN's gated graph cell and soft-attention readout,
 * graph attention) and the softmax gate over experts of MMoE / PLE.
 *
 * Follows nn_layers.h's conventions (tier 2: a struct of parameter indices, _init / _reset /
 * _forward / _backward, an _acts struct carved from the caller's arena, backward accumulates,
 * inputs remembered not copied, BLAS never inside OpenMP regions).
 *
 * Graph layers take one graph per call: n nodes with states [n, d] and dense [n, n] adjacency.
 * Session graphs are small (a session's distinct items), so a batch is a loop over graphs, each
 * with its own _acts from the same arena.
 */
#ifndef SEQREC_NN_GRAPH_H
#define SEQREC_NN_GRAPH_H

#include "seqrec/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ================================ Gated graph cell (SR-GNN) ================================ */

/* One propagation step of SR-GNN (Wu et al., AAAI 2019), callable repeatedly:
 *   a_in  = A_in  (H W_in^T  + b_in)          [n, d]
 *   a_out = A_out (H W_out^T + b_out)         [n, d]
 *   a = [a_in | a_out]                        [n, 2d]
 *   then a GRU cell with input a and state H (PyTorch's GRUCell, gate order r, z, n):
 *   r = σ(Wx_r a + bx_r + Wh_r H + bh_r),  z = σ(Wx_z a + bx_z + Wh_z H + bh_z),
 *   c = tanh(Wx_n a + bx_n + r ⊙ (Wh_n H + bh_n)),  H' = (1 − z) ⊙ c + z ⊙ H
 * A_in, A_out: [n, n], usually the in- and out-degree-normalised adjacency of the session graph
 * (row i: the nodes whose edges come into / go out of node i).
 * Tensors: "<prefix>.in.w" [d, d], "<prefix>.in.b" [d], "<prefix>.out.w" [d, d],
 *          "<prefix>.out.b" [d], "<prefix>.wx" [3d, 2d], "<prefix>.bx" [3d],
 *          "<prefix>.wh" [3d, d], "<prefix>.bh" [3d] (GRUCell's weight_ih, bias_ih, weight_hh,
 *          bias_hh). */
typedef struct {
    int d;                /* node state width */
    sq_nn_linear in, out; /* edge transforms d -> d */
    sq_nn_linear gx, gh;  /* GRU: 2d -> 3d (from a), d -> 3d (from H) */
} sq_nn_ggnn;

typedef struct {
    int n;                     /* nodes of this forward */
    const float *h;            /* [n, d] input states (caller's) */
    const float *A_in, *A_out; /* [n, n] (caller's) */
    float *a;                  /* [n, 2d] a_in | a_out */
    float *gates;              /* [n, 3d] r | z | c after their nonlinearity */
    float *gh;                 /* [n, 3d] Wh H + bh (its n part is needed by backward) */
} sq_nn_ggnn_acts;

int sq_nn_ggnn_init(sq_nn_ggnn *l, sq_params *ps, const char *prefix, int d);
/* uniform(±1/sqrt(d)) for every tensor, as SR-GNN. */
void sq_nn_ggnn_reset(const sq_nn_ggnn *l, sq_params *ps, sq_rng *rng);
/* h: [n, d] -> y: [n, d] (y must not alias h). */
sq_status sq_nn_ggnn_forward(const sq_nn_ggnn *l, const sq_params *ps, sq_arena *a,
                             sq_nn_ggnn_acts *acts, float *y, const float *h, const float *A_in,
                             const float *A_out, int n, sq_error *err);
/* dy: [n, d] -> dh: [n, d] (accumulated; may be NULL) and the parameter gradients. */
sq_status sq_nn_ggnn_backward(const sq_nn_ggnn *l, sq_params *ps, sq_arena *a,
                              const sq_nn_ggnn_acts *acts, float *dh, const float *dy,
                              sq_error *err);

/* ============================ Soft-attention readout (SR-GNN) ============================= */

/* SR-GNN's session embedding (eq. 6-7). S sessions; session s is rows [off[s], off[s+1]) of
 * x [N, d] (its positions in order, N = off[S], none empty) and v_last its last row:
 *   e_i = σ(W1 v_last + b1 + W2 v_i)            [d]   (b1 is the paper's c)
 *   α_i = q · e_i,   s_g = Σ_i α_i v_i          (no softmax: the paper's weights are free)
 *   y_s = W3 [v_last ; s_g] + b3                [d]   (the hybrid embedding s_h)
 * Tensors: "<prefix>.w1" [d, d], "<prefix>.b1" [d], "<prefix>.w2" [d, d], "<prefix>.q" [d],
 *          "<prefix>.w3" [d, 2d], "<prefix>.b3" [d]. */
typedef struct {
    int d;                   /* width of positions and output */
    sq_nn_linear w1, w2, w3; /* d -> d (bias b1), d -> d (no bias), 2d -> d (bias b3) */
    int q;                   /* parameter index of q [d] */
} sq_nn_readout;

typedef struct {
    int S, N;            /* sessions and rows of this forward */
    const float *x;      /* [N, d] (caller's) */
    const uint32_t *off; /* [S + 1] (caller's) */
    float *e;            /* [N, d] σ(W1 v_last + b1 + W2 v_i) */
    float *alpha;        /* [N] attention weights */
    float *cat;          /* [S, 2d] v_last | s_g */
} sq_nn_readout_acts;

int sq_nn_readout_init(sq_nn_readout *l, sq_params *ps, const char *prefix, int d);
/* uniform(±1/sqrt(d)) for every tensor, as SR-GNN. */
void sq_nn_readout_reset(const sq_nn_readout *l, sq_params *ps, sq_rng *rng);
/* x: [N, d] in S sessions (off) -> y: [S, d]. SQ_ERR_ARG for an empty session or bad offsets. */
sq_status sq_nn_readout_forward(const sq_nn_readout *l, const sq_params *ps, sq_arena *a,
                                sq_nn_readout_acts *acts, float *y, const float *x,
                                const uint32_t *off, int S, sq_error *err);
/* dy: [S, d] -> dx: [N, d] (accumulated; may be NULL) and the parameter gradients. */
sq_status sq_nn_readout_backward(const sq_nn_readout *l, sq_params *ps, sq_arena *a,
                                 const sq_nn_readout_acts *acts, float *dx, const float *dy,
                                 sq_error *err);

/* ================================ Graph attention (GAT) ================================== */

/* Graph attention (Veličković et al., ICLR 2018), K heads of width F, concatenated:
 *   z = x W^T                                         [n, K·F]  (z_k: head k's F columns)
 *   e[k, i, j] = LeakyReLU(a_dst[k] · z_k[i] + a_src[k] · z_k[j])  for j with adj[i, j] ≠ 0
 *   α[k, i, :] = softmax over those j;  y_k[i] = Σ_j α[k, i, j] z_k[j] + b_k
 * adj: uint8 [n, n], adj[i·n + j] = 1 when node i attends to node j; set the diagonal for the
 * usual self-loops. A node without neighbours gets y = b (and α row 0).
 * Tensors: "<prefix>.w" [K·F, C], "<prefix>.a_src" [K, F], "<prefix>.a_dst" [K, F],
 *          "<prefix>.b" [K·F]. */
typedef struct {
    int C, F, K;            /* input width, head width, heads */
    float slope;            /* LeakyReLU negative slope (0.2 in the paper) */
    int w, a_src, a_dst, b; /* parameter indices */
} sq_nn_gat;

typedef struct {
    int n;              /* nodes of this forward */
    const float *x;     /* [n, C] (caller's) */
    const uint8_t *adj; /* [n, n] (caller's) */
    float *z;           /* [n, K·F] */
    float *s_src;       /* [n, K] a_src · z */
    float *s_dst;       /* [n, K] a_dst · z */
    float *alpha;       /* [K, n, n] attention weights, 0 off the adjacency */
} sq_nn_gat_acts;

int sq_nn_gat_init(sq_nn_gat *l, sq_params *ps, const char *prefix, int C, int F, int K,
                   float slope);
void sq_nn_gat_reset(const sq_nn_gat *l, sq_params *ps, sq_rng *rng); /* xavier; b = 0 */
/* x: [n, C] -> y: [n, K·F]. */
sq_status sq_nn_gat_forward(const sq_nn_gat *l, const sq_params *ps, sq_arena *a,
                            sq_nn_gat_acts *acts, float *y, const float *x, const uint8_t *adj,
                            int n, sq_error *err);
/* dy: [n, K·F] -> dx: [n, C] (accumulated; may be NULL) and the parameter gradients. */
sq_status sq_nn_gat_backward(const sq_nn_gat *l, sq_params *ps, sq_arena *a,
                             const sq_nn_gat_acts *acts, float *dx, const float *dy, sq_error *err);

/* =============================== Softmax gate over experts ================================ */

/* The gate of MMoE / PLE: g = softmax(x W^T + b) over E experts, y = Σ_e g_e ⊙ expert_e(x).
 *   x: [N, C]; experts: [E, N, D] (expert e's outputs for every row); y: [N, D].
 * Backward reaches x (through the gate only: the experts' own backward is the caller's, from
 * dexperts), W, b and each expert's output.
 * Tensors: "<prefix>.w" [E, C], "<prefix>.b" [E]. */
typedef struct {
    sq_nn_linear lin; /* C -> E */
    int C, E;         /* input width, experts */
} sq_nn_gate;

typedef struct {
    int N, D;             /* rows and expert width of this forward */
    const float *x;       /* [N, C] (caller's) */
    const float *experts; /* [E, N, D] (caller's) */
    float *g;             /* [N, E] gate weights (softmax): also for explanations */
} sq_nn_gate_acts;

int sq_nn_gate_init(sq_nn_gate *l, sq_params *ps, const char *prefix, int C, int E);
void sq_nn_gate_reset(const sq_nn_gate *l, sq_params *ps, sq_rng *rng); /* xavier; b = 0 */
sq_status sq_nn_gate_forward(const sq_nn_gate *l, const sq_params *ps, sq_arena *a,
                             sq_nn_gate_acts *acts, float *y, const float *x, const float *experts,
                             int N, int D, sq_error *err);
/* dy: [N, D] -> dx: [N, C], dexperts: [E, N, D] (both accumulated; either may be NULL). */
sq_status sq_nn_gate_backward(const sq_nn_gate *l, sq_params *ps, sq_arena *a,
                              const sq_nn_gate_acts *acts, float *dx, float *dexperts,
                              const float *dy, sq_error *err);

#ifdef __cplusplus
}
#endif
#endif
