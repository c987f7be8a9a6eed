/* dot.c — S [B, ni] = U [B, dim] · Y [ni, dim]ᵀ with the item table in panels (sv_model.Yp):
 * the scores of a batch of sequences against every item.
 *
 * A GEMM, written out because BLAS packs (copies) the whole item table on every call: with a
 * few sequences a batch that copy was most of the time (perf: 35 % of the server in
 * sgemm_incopy for Beauty's 54,542 × 64 table). Here the table is read once per batch, front to
 * back; a panel (dim × SV_PANEL contiguous floats, 16 KiB at dim 64) stays in L1 while every
 * sequence of the batch uses it, and 4 sequences at a time keep 4 × SV_PANEL scores in
 * registers, so each load of the panel feeds 4 FMAs. Built with -O3 -ffp-contract=fast
 * (CMakeLists.txt): at -O2 without contraction it ran at half the speed (docs/benchmarks.md).
 *
 * The bf16 table (when the compiler targets AVX512_BF16): the same panels with each value
 * rounded to bfloat16 (8 significant bits) and two dimensions of an item side by side, so one
 * vdpbf16ps does 32 multiply-adds on half the bytes. Its scores are approximate; the scorer
 * (scorer.c) uses them only to find the few items that can be in the exact top k, and scores
 * those again with sv_dot_exact, which computes exactly what the fp32 kernel computes. */
#define _POSIX_C_SOURCE 200809L
#include "serve/serve_int.h"

#include <math.h>
#include <string.h>
#ifdef SV_HAVE_BF16
#include <immintrin.h>
#endif

typedef float v16 __attribute__((vector_size(64))); /* 16 floats: an AVX-512 register (or two
                                                       AVX ones: the compiler splits it) */
enum { NV = SV_PANEL / 16 };

/* R sequences × one panel: R × NV accumulators held in registers. */
#define PANEL_KERNEL(R)                                                                            \
    static void panel_##R(const float *U, uint32_t dim, const float *panel, float *out,            \
                          size_t ostride, uint32_t n) {                                            \
        v16 acc[R][NV];                                                                            \
        memset(acc, 0, sizeof acc);                                                                \
        for (uint32_t d = 0; d < dim; d++) {                                                       \
            v16 y[NV];                                                                             \
            memcpy(y, panel + (size_t)d * SV_PANEL, sizeof y);                                     \
            for (int r = 0; r < R; r++) {                                                          \
                const float ur = U[(size_t)r * dim + d];                                           \
                for (int v = 0; v < NV; v++)                                                       \
                    acc[r][v] += ur * y[v];                                                        \
            }                                                                                      \
        }                                                                                          \
        for (int r = 0; r < R; r++)                                                                \
            memcpy(out + (size_t)r * ostride, acc[r], n * sizeof(float));                          \
    }
PANEL_KERNEL(4)
PANEL_KERNEL(2)
PANEL_KERNEL(1)

void sv_dot_panels(const float *U, uint32_t B, uint32_t dim, const float *Yp, uint32_t ni, float *S,
                   uint32_t i0, uint32_t i1) {
    for (uint32_t p0 = i0; p0 < i1 && p0 < ni; p0 += SV_PANEL) {
        const float *panel = Yp + (size_t)p0 * dim;
        const uint32_t n = ni - p0 < SV_PANEL ? ni - p0 : SV_PANEL;
        uint32_t b = 0;
        for (; b + 4 <= B; b += 4)
            panel_4(U + (size_t)b * dim, dim, panel, S + (size_t)b * ni + p0, ni, n);
        for (; b + 2 <= B; b += 2)
            panel_2(U + (size_t)b * dim, dim, panel, S + (size_t)b * ni + p0, ni, n);
        for (; b < B; b++)
            panel_1(U + (size_t)b * dim, dim, panel, S + (size_t)b * ni + p0, ni, n);
    }
}

/* One item: the fp32 kernel's sum, in its order (d = 0, 1, …), each step one fused multiply-add
 * as the kernels' contracted `acc += u · y` (explicit here: a plain loop gets vectorised into
 * separate multiplies and adds, another rounding; test_serve_parts checks the bits agree). */
float sv_dot_exact(const float *u, const float *y, uint32_t dim) {
    float acc = 0.0f;
    for (uint32_t d = 0; d < dim; d++)
        acc = fmaf(u[d], y[d], acc);
    return acc;
}

/* Y [ni, dim] → panels: panel p holds items p·SV_PANEL… as [dim, SV_PANEL], zero past ni. */
float *sv_panels_make(const float *Y, uint32_t ni, uint32_t dim) {
    const size_t panels = (ni + SV_PANEL - 1) / SV_PANEL;
    float *Yp = sq_calloc(panels * SV_PANEL * dim, sizeof *Yp);
    if (!Yp)
        return NULL;
    for (uint32_t i = 0; i < ni; i++)
        for (uint32_t d = 0; d < dim; d++)
            Yp[((size_t)(i / SV_PANEL) * dim + d) * SV_PANEL + i % SV_PANEL] =
                Y[(size_t)i * dim + d];
    return Yp;
}

#ifdef SV_HAVE_BF16
/* fp32 → bf16, rounding to nearest even (finite values). */
static uint16_t to_bf16(float x) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    b += 0x7FFFu + ((b >> 16) & 1u);
    return (uint16_t)(b >> 16);
}

/* Y [ni, dim] → bf16 panels: panel p holds items p·SV_PANEL… as [ceil(dim / 2)][SV_PANEL][2]
 * (dimensions 2h and 2h + 1 of an item side by side), zero past ni and past dim. */
uint16_t *sv_panels_make_bf16(const float *Y, uint32_t ni, uint32_t dim) {
    const size_t panels = (ni + SV_PANEL - 1) / SV_PANEL, d2 = (dim + 1) / 2 * 2;
    uint16_t *Yb = sq_calloc(panels * SV_PANEL * d2, sizeof *Yb);
    if (!Yb)
        return NULL;
    for (uint32_t i = 0; i < ni; i++)
        for (uint32_t d = 0; d < dim; d++)
            Yb[(((size_t)(i / SV_PANEL) * (d2 / 2) + d / 2) * SV_PANEL + i % SV_PANEL) * 2 +
               d % 2] = to_bf16(Y[(size_t)i * dim + d]);
    return Yb;
}

/* R sequences (as bf16 pairs, one 32-bit word a pair of dimensions) × one bf16 panel. */
#define PANEL_KERNEL_BF16(R)                                                                       \
    static void panel_bf16_##R(const uint32_t *U2, uint32_t h2, const uint16_t *panel, float *out, \
                               size_t ostride, uint32_t n) {                                       \
        __m512 acc[R][NV];                                                                         \
        for (int r = 0; r < R; r++)                                                                \
            for (int v = 0; v < NV; v++)                                                           \
                acc[r][v] = _mm512_setzero_ps();                                                   \
        for (uint32_t h = 0; h < h2; h++) {                                                        \
            __m512bh y[NV];                                                                        \
            for (int v = 0; v < NV; v++)                                                           \
                y[v] = (__m512bh)_mm512_loadu_si512(panel + ((size_t)h * SV_PANEL + 16 * v) * 2);  \
            for (int r = 0; r < R; r++) {                                                          \
                const __m512bh ur = (__m512bh)_mm512_set1_epi32((int)U2[(size_t)r * h2 + h]);      \
                for (int v = 0; v < NV; v++)                                                       \
                    acc[r][v] = _mm512_dpbf16_ps(acc[r][v], ur, y[v]);                             \
            }                                                                                      \
        }                                                                                          \
        for (int r = 0; r < R; r++) {                                                              \
            float tmp[SV_PANEL], *o = n == SV_PANEL ? out + (size_t)r * ostride : tmp;             \
            for (int v = 0; v < NV; v++)                                                           \
                _mm512_storeu_ps(o + 16 * v, acc[r][v]);                                           \
            if (o == tmp) /* the last panel, part full */                                          \
                memcpy(out + (size_t)r * ostride, tmp, n * sizeof(float));                         \
        }                                                                                          \
    }
PANEL_KERNEL_BF16(4)
PANEL_KERNEL_BF16(3)
PANEL_KERNEL_BF16(2)
PANEL_KERNEL_BF16(1)

void sv_dot_panels_bf16(const float *U, uint32_t B, uint32_t dim, const uint16_t *Yb, uint32_t ni,
                        float *S, uint32_t i0, uint32_t i1) {
    const uint32_t h2 = (dim + 1) / 2;
    uint32_t U2[SV_BF16_BATCH * SV_BF16_MAX_DIM / 2];
    for (uint32_t r = 0; r < B; r++)
        for (uint32_t h = 0; h < h2; h++) {
            const float *u = U + (size_t)r * dim;
            const uint32_t lo = to_bf16(u[2 * h]);
            const uint32_t hi = 2 * h + 1 < dim ? to_bf16(u[2 * h + 1]) : 0;
            U2[r * h2 + h] = lo | hi << 16;
        }
    for (uint32_t p0 = i0; p0 < i1 && p0 < ni; p0 += SV_PANEL) {
        const uint16_t *panel = Yb + (size_t)p0 * h2 * 2;
        const uint32_t n = ni - p0 < SV_PANEL ? ni - p0 : SV_PANEL;
        uint32_t r = 0;
        for (; r + 4 <= B; r += 4)
            panel_bf16_4(U2 + r * h2, h2, panel, S + (size_t)r * ni + p0, ni, n);
        float *o = S + (size_t)r * ni + p0;
        if (B - r == 3)
            panel_bf16_3(U2 + r * h2, h2, panel, o, ni, n);
        else if (B - r == 2)
            panel_bf16_2(U2 + r * h2, h2, panel, o, ni, n);
        else if (B - r == 1)
            panel_bf16_1(U2 + r * h2, h2, panel, o, ni, n);
    }
}
#endif

/* How far a bf16 score can be from the exact one for a sequence vector of Euclidean norm unorm
 * against items of norm at most ymax, over dim dimensions: each product of bf16-rounded values
 * is within 2⁻⁷ + 2⁻¹⁶ of the true product (relative), the bf16 and the fp32 sums each add at
 * most dim · 2⁻²⁴ of Σ|u_d y_d| (to first order, doubled here), Σ|u_d y_d| ≤ |u| |y|
 * (Cauchy–Schwarz), and flushing subnormals costs at most 2⁻¹²⁵ a step. */
float sv_bf16_bound(double unorm, double ymax, uint32_t dim) {
    const double rel = 0x1p-7 + 0x1p-16 + 4.0 * dim * 0x1p-24;
    return (float)(unorm * ymax * rel * 1.001 + dim * 0x1p-120);
}
