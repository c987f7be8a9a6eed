/* dot.c — S [B, ni] = U [B, dim] · Y [ni, dim]ᵀ with the item table in panels (sv_model.Yp):
 * the scores of a batch of sequences against every item.
 *
 * A GEMM, written out because BLAS packs (copies) the whole item table on every call: with a
 * few sequences a batch that copy was most of the time (perf: 35 % of the server in
 * sgemm_incopy for Beauty's 54,542 × 64 table). Here the table is read once per batch, front to
 * back; a panel (dim × SV_PANEL contiguous floats, 16 KiB at dim 64) stays in L1 while every
 * sequence of the batch uses it, and 4 sequences at a time keep 4 × SV_PANEL scores in
 * registers, so each load of the panel feeds 4 FMAs. Built with -O3 -ffp-contract=fast
 * (CMakeLists.txt): at -O2 without contraction it ran at half the speed (docs/benchmarks.md). */
#define _POSIX_C_SOURCE 200809L
#include "serve/serve_int.h"

#include <string.h>

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
