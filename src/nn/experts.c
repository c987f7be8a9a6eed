/* experts.c — the multi-task sharing layer (nn_experts.h): shared-bottom, MMoE and PLE, with
 * scene-specific gate copies.
 *
 * All three kinds run through one code path, level by level. A level has E experts in the
 * order [task 0's n_specific | task 1's | ... | n_shared shared]; "group" t < T is task t's
 * experts (and gate), group T the shared ones. Each group reads one input: x at level 0, the
 * previous level's task-t / shared output above. Consecutive groups that read the same input
 * (all of them at level 0) share one GEMM, because their weight rows are contiguous.
 *   MMoE   = one level, n_specific = 0: every task gate mixes the n_shared experts.
 *   BOTTOM = MMoE with one expert and no gates: every task gets the expert's output.
 *
 * Per level, forward:
 *   z = in W^T + b per group        [N, E*H]   (expert e at columns e*H..)
 *   e = ReLU(z)
 *   logits of all S copies of every gate (task gates [N, T*S*K], shared gate [N, S*E])
 *   per row n (OpenMP), s = scene[n]: g = softmax(logits of copy s); out = sum_k g_k e_k
 * Backward reverses it: per row, dout -> (de, dlogits of copy s; other copies' columns stay 0),
 * ReLU mask, then the GEMMs of each group give the input and parameter gradients, summing over
 * rows inside BLAS. */
#include "seqrec/nn_experts.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ========================================== Names =========================================== */

static const char *const SHARE_NAMES[] = {"shared_bottom", "mmoe", "ple"};
enum { N_SHARE_KINDS = (int)(sizeof SHARE_NAMES / sizeof SHARE_NAMES[0]) };

const char *sq_nn_share_name(sq_nn_share_kind k) {
    return (int)k >= 0 && (int)k < N_SHARE_KINDS ? SHARE_NAMES[k] : "?";
}

int sq_nn_share_parse(const char *name, sq_nn_share_kind *out) {
    if (!name)
        return -1;
    for (int k = 0; k < N_SHARE_KINDS; k++)
        if (strcmp(name, SHARE_NAMES[k]) == 0) {
            *out = (sq_nn_share_kind)k;
            return 0;
        }
    return -1;
}

/* ======================================= Configuration ====================================== */

/* a * b * c <= INT_MAX, for 1 <= a, b, c (no overflow on the way). */
static int fits_int(long long a, long long b, long long c) {
    return a <= INT_MAX && b <= INT_MAX / a && c <= INT_MAX / (a * b);
}

/* 0 when the config is one init accepts (and its derived sizes agree), else -1. */
static int check_config(const sq_nn_experts *l) {
    const int T = l->n_tasks, S = l->n_scenes, ns = l->n_specific, nsh = l->n_shared;
    if (l->C < 1 || l->H < 1 || T < 1 || T > SQ_EXPERTS_MAX_TASKS || S < 1 || S > 65536)
        return -1;
    if (nsh < 1 || ns < 0 || l->levels < 1 || l->levels > SQ_EXPERTS_MAX_LEVELS)
        return -1;
    const long long E = (long long)T * ns + nsh, W = l->C > l->H ? l->C : l->H;
    if (E > INT_MAX || l->n_experts != E)
        return -1; /* and so ns + nsh <= E fits in an int */
    switch (l->kind) {
    case SQ_SHARE_BOTTOM:
        if (nsh != 1 || ns != 0 || l->levels != 1 || l->gate_k != 0)
            return -1;
        break;
    case SQ_SHARE_MMOE:
        if (ns != 0 || l->levels != 1 || l->gate_k != nsh)
            return -1;
        break;
    case SQ_SHARE_PLE:
        if (l->gate_k != ns + nsh)
            return -1;
        break;
    default:
        return -1;
    }
    /* GEMM widths and the parameter tensors (Cin <= W) must fit in an int */
    if (!fits_int(E, l->H, W) || !fits_int(S, E, W) || !fits_int((long long)T * S, ns + nsh, W))
        return -1;
    return 0;
}

/* Level `lev` has a shared gate (PLE, every level but the last). */
static int has_shared_gate(const sq_nn_experts *l, int lev) {
    return l->kind == SQ_SHARE_PLE && lev < l->levels - 1;
}

/* First expert and number of experts of group t (t == T: the shared group). */
static int group_first(const sq_nn_experts *l, int t) {
    return t * l->n_specific;
}
static int group_size(const sq_nn_experts *l, int t) {
    return t < l->n_tasks ? l->n_specific : l->n_shared;
}

/* The run of groups t, t+1, … that read the same input (one GEMM serves all their experts):
 * returns the group after the run; *ne = the run's experts. */
static int group_run(const sq_nn_experts *l, const float *const *in, int t, int *ne) {
    int u = t;
    *ne = 0;
    for (; u <= l->n_tasks && in[u] == in[t]; u++)
        *ne += group_size(l, u);
    return u;
}

int sq_nn_experts_init(sq_nn_experts *l, sq_params *ps, const char *prefix, sq_nn_share_kind kind,
                       int C, int H, int n_tasks, int n_shared, int n_specific, int levels,
                       int n_scenes) {
    memset(l, 0, sizeof *l);
    for (int i = 0; i < SQ_EXPERTS_MAX_LEVELS; i++)
        l->ew[i] = l->eb[i] = l->gw[i] = l->gb[i] = l->sw[i] = l->sb[i] = -1;
    l->kind = kind;
    l->C = C;
    l->H = H;
    l->n_tasks = n_tasks;
    l->n_scenes = n_scenes;
    l->n_shared = kind == SQ_SHARE_BOTTOM ? 1 : n_shared;
    l->n_specific = kind == SQ_SHARE_PLE ? n_specific : 0;
    l->levels = kind == SQ_SHARE_PLE ? levels : 1;
    if (l->n_specific < 0 || l->n_shared < 1 || n_tasks < 1 || n_tasks > SQ_EXPERTS_MAX_TASKS)
        return -1; /* before the products below */
    long long E = (long long)n_tasks * l->n_specific + l->n_shared;
    if (E > INT_MAX)
        return -1;
    l->n_experts = (int)E;
    l->gate_k = kind == SQ_SHARE_BOTTOM ? 0 : l->n_specific + l->n_shared;
    if (check_config(l) < 0)
        return -1;
    const int T = n_tasks, S = n_scenes, K = l->gate_k;
    const size_t Ez = (size_t)l->n_experts;
    for (int lev = 0; lev < l->levels; lev++) {
        char name[SQ_PARAM_NAME_MAX];
        int k = snprintf(name, sizeof name, "%s.l%d", prefix, lev);
        if (k < 0 || (size_t)k >= sizeof name)
            return -1;
        const size_t cin = (size_t)(lev ? H : C);
        size_t ews[3] = {Ez, (size_t)H, cin}, ebs[2] = {Ez, (size_t)H};
        if ((l->ew[lev] = sq_nn_declare(ps, name, "ew", 3, ews, 0)) < 0 ||
            (l->eb[lev] = sq_nn_declare(ps, name, "eb", 2, ebs, 0)) < 0)
            return -1;
        if (K > 0) {
            size_t gws[3] = {(size_t)T * S, (size_t)K, cin}, gbs[2] = {(size_t)T * S, (size_t)K};
            if ((l->gw[lev] = sq_nn_declare(ps, name, "gw", 3, gws, 0)) < 0 ||
                (l->gb[lev] = sq_nn_declare(ps, name, "gb", 2, gbs, 0)) < 0)
                return -1;
        }
        if (has_shared_gate(l, lev)) {
            size_t sws[3] = {(size_t)S, Ez, cin}, sbs[2] = {(size_t)S, Ez};
            if ((l->sw[lev] = sq_nn_declare(ps, name, "sw", 3, sws, 0)) < 0 ||
                (l->sb[lev] = sq_nn_declare(ps, name, "sb", 2, sbs, 0)) < 0)
                return -1;
        }
    }
    return 0;
}

void sq_nn_experts_reset(const sq_nn_experts *l, sq_params *ps, sq_rng *rng) {
    const int H = l->H, E = l->n_experts, K = l->gate_k, TS = l->n_tasks * l->n_scenes;
    for (int lev = 0; lev < l->levels; lev++) {
        const int cin = lev ? H : l->C;
        float *w = sq_nn_val(ps, l->ew[lev]);
        for (int i = 0; i < E; i++)
            sq_nn_fill_xavier(w + (size_t)i * H * cin, H, cin, rng);
        sq_nn_fill(sq_nn_val(ps, l->eb[lev]), (size_t)E * H, 0.0f);
        if (l->gw[lev] >= 0) {
            float *g = sq_nn_val(ps, l->gw[lev]);
            for (int i = 0; i < TS; i++)
                sq_nn_fill_xavier(g + (size_t)i * K * cin, K, cin, rng);
            sq_nn_fill(sq_nn_val(ps, l->gb[lev]), (size_t)TS * K, 0.0f);
        }
        if (l->sw[lev] >= 0) {
            float *g = sq_nn_val(ps, l->sw[lev]);
            for (int s = 0; s < l->n_scenes; s++)
                sq_nn_fill_xavier(g + (size_t)s * E * cin, E, cin, rng);
            sq_nn_fill(sq_nn_val(ps, l->sb[lev]), (size_t)l->n_scenes * E, 0.0f);
        }
    }
}

/* ======================================== Row kernels ======================================= */

/* Gate slot k mixes expert a0 + k for k < na, else b0 + (k - na). */
static inline int slot_expert(int k, int na, int a0, int b0) {
    return k < na ? a0 + k : b0 + (k - na);
}

/* g[0..K) = softmax(logit[0..K)). */
static void softmax_row(float *g, const float *logit, int K) {
    float m = logit[0], s = 0.0f;
    for (int k = 1; k < K; k++)
        m = logit[k] > m ? logit[k] : m;
    for (int k = 0; k < K; k++)
        s += (g[k] = expf(logit[k] - m));
    for (int k = 0; k < K; k++)
        g[k] /= s;
}

/* o[0..H) = sum_k g[k] en[expert(k)] where en is one row of expert outputs [E*H]. */
static void mix_row(float *o, const float *g, int K, int na, int a0, int b0, const float *en,
                    int H) {
    for (int j = 0; j < H; j++)
        o[j] = 0.0f;
    for (int k = 0; k < K; k++) {
        const float w = g[k], *xe = en + (size_t)slot_expert(k, na, a0, b0) * H;
        for (int j = 0; j < H; j++)
            o[j] += w * xe[j];
    }
}

/* Backward of mix_row and the softmax: den[expert(k)] += g[k] dy; dlog[k] = g_k (dg_k - g.dg)
 * with dg_k = dy . en[expert(k)] (dlog overwritten: it is this row's slice of a zeroed buffer). */
static void mix_row_backward(float *dlog, float *den, const float *g, int K, int na, int a0, int b0,
                             const float *en, const float *dy, int H) {
    float dot = 0.0f;
    for (int k = 0; k < K; k++) {
        const size_t off = (size_t)slot_expert(k, na, a0, b0) * H;
        const float *xe = en + off, w = g[k];
        float *de = den + off, dg = 0.0f;
        for (int j = 0; j < H; j++) {
            dg += dy[j] * xe[j];
            de[j] += w * dy[j];
        }
        dlog[k] = dg;
        dot += w * dg;
    }
    for (int k = 0; k < K; k++)
        dlog[k] = g[k] * (dlog[k] - dot);
}

/* ========================================== Forward ========================================= */

/* Level lev's group inputs: in[t] for t < T (task groups) and in[T] (shared). */
static void level_inputs(const sq_nn_experts *l, const sq_nn_experts_acts *acts, int lev,
                         const float **in) {
    const size_t NH = (size_t)acts->N * l->H;
    for (int t = 0; t <= l->n_tasks; t++)
        in[t] = lev ? acts->out[lev - 1] + t * NH : acts->x;
}

sq_status sq_nn_experts_forward(const sq_nn_experts *l, const sq_params *ps, sq_arena *a,
                                sq_nn_experts_acts *acts, float *y, const float *x,
                                const uint16_t *scene, int N, sq_error *err) {
    memset(acts, 0, sizeof *acts);
    if (check_config(l) < 0)
        return sq_errorf(err, SQ_ERR_ARG, "experts: invalid layer config (kind %d, T=%d)",
                         (int)l->kind, l->n_tasks);
    if (N < 0)
        return sq_errorf(err, SQ_ERR_ARG, "experts: N=%d < 0", N);
    acts->N = N;
    acts->x = x;
    acts->scene = scene;
    if (N == 0)
        return SQ_OK;
    const int T = l->n_tasks, S = l->n_scenes, H = l->H, E = l->n_experts, K = l->gate_k;
    const int ns = l->n_specific, EH = E * H;
    const size_t NH = (size_t)N * H, ny = (size_t)T * NH, nx = (size_t)N * l->C;
    if (!x || !y)
        return sq_errorf(err, SQ_ERR_ARG, "experts: NULL %s", x ? "y" : "x");
    const uintptr_t xa = (uintptr_t)x, ya = (uintptr_t)y; /* integers: x, y may be unrelated */
    if (ya < xa + nx * sizeof *x && xa < ya + ny * sizeof *y)
        return sq_errorf(err, SQ_ERR_ARG, "experts: y overlaps x");
    if (scene)
        for (int n = 0; n < N; n++)
            if (scene[n] >= S)
                return sq_errorf(err, SQ_ERR_ARG, "experts: scene[%d] = %u >= n_scenes %d", n,
                                 (unsigned)scene[n], S);

    for (int lev = 0; lev < l->levels; lev++) {
        const int cin = lev ? H : l->C, last = lev == l->levels - 1, shg = has_shared_gate(l, lev);
        const float *in[SQ_EXPERTS_MAX_TASKS + 1];
        level_inputs(l, acts, lev, in);
        float *z = sq_arena_alloc(a, (size_t)N * EH * sizeof(float));
        float *ex = sq_arena_alloc(a, (size_t)N * EH * sizeof(float));
        float *glog = K ? sq_arena_alloc(a, (size_t)N * T * S * K * sizeof(float)) : NULL;
        float *g = K ? sq_arena_alloc(a, (size_t)N * T * K * sizeof(float)) : NULL;
        float *slog = shg ? sq_arena_alloc(a, (size_t)N * S * E * sizeof(float)) : NULL;
        float *sg = shg ? sq_arena_alloc(a, (size_t)N * E * sizeof(float)) : NULL;
        float *out = last ? y : sq_arena_alloc(a, (T + 1) * NH * sizeof(float));
        if (!z || !ex || (K && (!glog || !g)) || (shg && (!slog || !sg)) || !out)
            return sq_errorf(err, SQ_ERR_NOMEM, "experts: arena full (N=%d E=%d H=%d level %d)", N,
                             E, H, lev);
        acts->z[lev] = z;
        acts->e[lev] = ex;
        acts->g[lev] = g;
        acts->sg[lev] = sg;
        acts->out[lev] = last ? NULL : out;

        /* experts: one GEMM per run of groups reading the same input */
        const float *W = sq_nn_val(ps, l->ew[lev]), *b = sq_nn_val(ps, l->eb[lev]);
        for (int t = 0, u, ne; t <= T; t = u) {
            u = group_run(l, in, t, &ne);
            const size_t e0 = (size_t)group_first(l, t);
            if (ne > 0)
                sq_nn_linear_forward_ld(z + e0 * H, EH, in[t], cin, W + e0 * H * cin, b + e0 * H, N,
                                        cin, ne * H);
        }
        sq_nn_relu_forward(ex, z, (size_t)N * EH);

        /* gate logits of every scene copy */
        if (K) {
            const int SK = S * K, TSK = T * SK;
            const float *G = sq_nn_val(ps, l->gw[lev]), *c = sq_nn_val(ps, l->gb[lev]);
            for (int t = 0; t < T;) {
                int u = t;
                while (u < T && in[u] == in[t])
                    u++;
                const size_t c0 = (size_t)t * SK;
                sq_nn_linear_forward_ld(glog + c0, TSK, in[t], cin, G + c0 * cin, c + c0, N, cin,
                                        (u - t) * SK);
                t = u;
            }
        }
        if (shg)
            sq_nn_linear_forward(slog, in[T], sq_nn_val(ps, l->sw[lev]), sq_nn_val(ps, l->sb[lev]),
                                 N, cin, S * E);

            /* per row: softmax of the row's scene copy, then the mixtures */
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) {
            const int s = scene ? scene[n] : 0;
            const float *en = ex + (size_t)n * EH;
            for (int t = 0; t < T; t++) {
                float *o = out + t * NH + (size_t)n * H;
                if (!K) { /* shared bottom: the one expert */
                    memcpy(o, en, (size_t)H * sizeof *o);
                    continue;
                }
                float *gn = g + ((size_t)n * T + t) * K;
                softmax_row(gn, glog + (size_t)n * T * S * K + ((size_t)t * S + s) * K, K);
                mix_row(o, gn, K, ns, t * ns, T * ns, en, H);
            }
            if (shg) {
                float *gn = sg + (size_t)n * E;
                softmax_row(gn, slog + ((size_t)n * S + s) * E, E);
                mix_row(out + T * NH + (size_t)n * H, gn, E, E, 0, 0, en, H);
            }
        }
    }
    return SQ_OK;
}

/* ========================================= Backward ========================================= */

sq_status sq_nn_experts_backward(const sq_nn_experts *l, sq_params *ps, sq_arena *a,
                                 const sq_nn_experts_acts *acts, float *dx, const float *dy,
                                 sq_error *err) {
    const int N = acts->N;
    if (N == 0)
        return SQ_OK;
    const int T = l->n_tasks, S = l->n_scenes, H = l->H, E = l->n_experts, K = l->gate_k;
    const int ns = l->n_specific, EH = E * H;
    const size_t NH = (size_t)N * H;
    const uint16_t *scene = acts->scene;
    if (!acts->e[l->levels - 1] || !dy)
        return sq_errorf(err, SQ_ERR_ARG, "experts backward: no successful forward or NULL dy");
    const float *dcur = dy; /* dL/d(outputs of level lev): [T, N, H], or [T+1, N, H] below */

    for (int lev = l->levels - 1; lev >= 0; lev--) {
        const int cin = lev ? H : l->C, shg = has_shared_gate(l, lev);
        const float *in[SQ_EXPERTS_MAX_TASKS + 1];
        float *din[SQ_EXPERTS_MAX_TASKS + 1];
        level_inputs(l, acts, lev, in);
        float *dprev = lev ? sq_arena_calloc(a, (T + 1) * NH * sizeof(float)) : NULL;
        float *de = sq_arena_calloc(a, (size_t)N * EH * sizeof(float));
        float *dglog = K ? sq_arena_calloc(a, (size_t)N * T * S * K * sizeof(float)) : NULL;
        float *dslog = shg ? sq_arena_calloc(a, (size_t)N * S * E * sizeof(float)) : NULL;
        if ((lev && !dprev) || !de || (K && !dglog) || (shg && !dslog))
            return sq_errorf(err, SQ_ERR_NOMEM, "experts backward: arena full (N=%d level %d)", N,
                             lev);
        for (int t = 0; t <= T; t++)
            din[t] = lev ? dprev + t * NH : dx;
        const float *ex = acts->e[lev], *g = acts->g[lev], *sg = acts->sg[lev];

        /* per row: mixtures and softmax backward into de and the scene copy's dlogits */
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) {
            const int s = scene ? scene[n] : 0;
            const float *en = ex + (size_t)n * EH;
            float *den = de + (size_t)n * EH;
            for (int t = 0; t < T; t++) {
                const float *dyn = dcur + t * NH + (size_t)n * H;
                if (!K) {
                    for (int j = 0; j < H; j++)
                        den[j] += dyn[j];
                    continue;
                }
                mix_row_backward(dglog + (size_t)n * T * S * K + ((size_t)t * S + s) * K, den,
                                 g + ((size_t)n * T + t) * K, K, ns, t * ns, T * ns, en, dyn, H);
            }
            if (shg)
                mix_row_backward(dslog + ((size_t)n * S + s) * E, den, sg + (size_t)n * E, E, E, 0,
                                 0, en, dcur + T * NH + (size_t)n * H, H);
        }
        /* ReLU: ReLU(z) > 0 exactly where z > 0 */
        const float *z = acts->z[lev];
        const size_t nz = (size_t)N * EH;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < nz; i++)
            de[i] = z[i] > 0.0f ? de[i] : 0.0f;

        /* experts: the same runs of groups as forward */
        const float *W = sq_nn_val(ps, l->ew[lev]);
        float *dW = sq_nn_grad(ps, l->ew[lev]), *db = sq_nn_grad(ps, l->eb[lev]);
        for (int t = 0, u, ne; t <= T; t = u) {
            u = group_run(l, in, t, &ne);
            const size_t e0 = (size_t)group_first(l, t);
            if (ne > 0)
                sq_nn_linear_backward_ld(din[t], cin, dW + e0 * H * cin, db + e0 * H, de + e0 * H,
                                         EH, in[t], W + e0 * H * cin, N, cin, ne * H);
        }
        if (K) {
            const int SK = S * K, TSK = T * SK;
            const float *G = sq_nn_val(ps, l->gw[lev]);
            float *dG = sq_nn_grad(ps, l->gw[lev]), *dc = sq_nn_grad(ps, l->gb[lev]);
            for (int t = 0; t < T;) {
                int u = t;
                while (u < T && in[u] == in[t])
                    u++;
                const size_t c0 = (size_t)t * SK;
                sq_nn_linear_backward_ld(din[t], cin, dG + c0 * cin, dc + c0, dglog + c0, TSK,
                                         in[t], G + c0 * cin, N, cin, (u - t) * SK);
                t = u;
            }
        }
        if (shg)
            sq_nn_linear_backward(din[T], sq_nn_grad(ps, l->sw[lev]), sq_nn_grad(ps, l->sb[lev]),
                                  dslog, in[T], sq_nn_val(ps, l->sw[lev]), N, cin, S * E);
        dcur = dprev;
    }
    return SQ_OK;
}
