/* nn_graph.h — layers over small graphs (SR-GNN's gated graph cell and soft-attention readout,
 * graph attention), sparse graph convolution over large graphs (LightGCN, the item encoders),
 * and the softmax gate over experts of MMoE / PLE.
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

/* ============================ Sparse graph convolution (GCN) =============================== */

/* Graphs too big for dense adjacency (the user–item graph of LightGCN, the global item-transition
 * graph of the item encoders) are CSR matrices (src/nn/spconv.c). Row r holds its neighbours
 * col[row_ptr[r] .. row_ptr[r+1]) with weights val[…], columns sorted and distinct.
 *
 * sq_nn_csr_from_edges builds the symmetric-normalised adjacency of an undirected graph,
 *     Â = D^-1/2 A D^-1/2,   A[i, j] = A[j, i] = 1 for every edge (i, j), i ≠ j,
 * with A[i, i] = 1 added for every node listed in `loops` (GCN's self-loops; NULL: none), D the
 * degrees of A. Duplicate edges count once; edges i == i are ignored (use loops). A node with
 * no edge has an empty row. Â is symmetric: it is its own transpose.
 *
 * Ownership: _from_edges / _transpose fill a struct whose arrays are malloc'd; sq_nn_csr_free
 * frees them (no-op on a zeroed struct). Read-only afterwards: safe to share between threads. */
typedef struct {
    uint32_t n_rows, n_cols; /* shape */
    uint64_t *row_ptr;       /* n_rows + 1 */
    uint32_t *col;           /* row_ptr[n_rows] column indices */
    float *val;              /* row_ptr[n_rows] weights */
} sq_nn_csr;

/* n nodes; edges (src[e], dst[e]) for e < n_edges, ids < n; loops: n bytes, 1 = self-loop, or
 * NULL. Errors: SQ_ERR_ARG (an id ≥ n: the message names the edge), SQ_ERR_NOMEM. */
sq_status sq_nn_csr_from_edges(sq_nn_csr *A, uint32_t n, const uint32_t *src, const uint32_t *dst,
                               size_t n_edges, const uint8_t *loops, sq_error *err);
/* At = Aᵀ. Errors: SQ_ERR_NOMEM. */
sq_status sq_nn_csr_transpose(sq_nn_csr *At, const sq_nn_csr *A, sq_error *err);
void sq_nn_csr_free(sq_nn_csr *A);

/* Y = A X.  X: [n_cols, C] -> Y: [n_rows, C] (overwritten; must not alias X). OpenMP over
 * rows: each thread writes its own rows, each row summed in column order (deterministic). */
void sq_nn_spmm_forward(float *Y, const sq_nn_csr *A, const float *X, int C);
/* dX += Aᵀ dY, given At = Aᵀ (A itself when symmetric, as Â). dY: [n_rows(A), C]. */
void sq_nn_spmm_backward(float *dX, const sq_nn_csr *At, const float *dY, int C);

/* A graph convolution with a weight (Kipf & Welling 2017, without the nonlinearity, which the
 * caller applies if it wants one):  Y = Â X Wᵀ   (Z = X Wᵀ first: [n, O], then Y = Â Z).
 * Â: [n, n] (its transpose for backward: the same matrix when symmetric). Tensor:
 * "<prefix>.w" [O, C]. */
typedef struct {
    int C, O; /* input and output width */
    int w;    /* parameter index */
} sq_nn_gcn;

typedef struct {
    int n;              /* nodes of this forward */
    const float *x;     /* [n, C] (caller's) */
    const sq_nn_csr *A; /* Â (caller's) */
} sq_nn_gcn_acts;

int sq_nn_gcn_init(sq_nn_gcn *l, sq_params *ps, const char *prefix, int C, int O); /* 0 or -1 */
void sq_nn_gcn_reset(const sq_nn_gcn *l, sq_params *ps, sq_rng *rng);              /* xavier */
/* x: [n, C] -> y: [n, O] with n = A->n_rows = A->n_cols. Errors: SQ_ERR_ARG (A not square or
 * of another size), SQ_ERR_NOMEM (arena). */
sq_status sq_nn_gcn_forward(const sq_nn_gcn *l, const sq_params *ps, sq_arena *a,
                            sq_nn_gcn_acts *acts, float *y, const float *x, const sq_nn_csr *A,
                            int n, sq_error *err);
/* dy: [n, O] -> dx: [n, C] (accumulated; may be NULL) and dW. At: Âᵀ (A when symmetric). */
sq_status sq_nn_gcn_backward(const sq_nn_gcn *l, sq_params *ps, sq_arena *a,
                             const sq_nn_gcn_acts *acts, const sq_nn_csr *At, float *dx,
                             const float *dy, sq_error *err);

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
