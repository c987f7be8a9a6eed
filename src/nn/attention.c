/* attention.c — causal multi-head self-attention with a key padding mask (Vaswani et al. 2017).
 *
 * Layout. Q, K and V of all rows live side by side in one [N, 3C] buffer; head h of batch b is
 * the [T, D] slice at row b*T, column h*D (Q), C + h*D (K), 2C + h*D (V), row stride 3C, so the
 * per-(batch, head) GEMMs read them in place without copies. Scores and weights are
 * [B, H, T, T].
 *
 * Threads (the one place where BLAS is called inside an OpenMP region; docs/nn.md). The work of
 * one (batch, head) — score GEMMs, masked softmax and dropout, A·V, and in backward the four
 * gradient GEMMs and the softmax backward — is one task; an `omp parallel for` runs the B*H
 * tasks, each on one core with its [T, T] block hot in cache. The per-task GEMMs are small
 * ([64, T] x [T, D]): threading each of them across cores costs more in synchronisation than it
 * gains, and running them one after another leaves the other core idle. This needs a BLAS that
 * runs single-threaded inside a parallel region: OpenBLAS built with USE_OPENMP does (it checks
 * omp_in_parallel()), and shares libgomp's thread pool with us. With any other OpenBLAS build
 * (pthreads: its own pool would oversubscribe the cores) the same loop runs serially, BLAS
 * threads inside each GEMM, as before. Results do not depend on the choice: every task writes
 * only its own head's rows and columns, and each GEMM sums over K in the same order.
 * The projections (QKV, output) are large GEMMs, called outside any parallel region.
 *
 * Mask: query t sees key j iff (j <= t or not causal) and (key j not padded or j == t). The
 * diagonal is always allowed, so every row has at least one allowed key: a padded query attends
 * to itself only and nothing is ever NaN (the PyTorch peer does the same).
 *
 * Skipped work (same results, less of it):
 *  - with a causal mask, the leading padded positions p < lead[b] of a sequence (left padding)
 *    see only themselves: their weight rows are written directly (1 on the diagonal) and every
 *    GEMM runs on the [lead, T) sub-block only;
 *  - with a causal mask, the GEMMs go in chunks of CHUNK query rows, each against the keys up to
 *    its last row, so about half of the masked upper triangle is never computed.
 * Entries outside the computed region are written as 0 (weights) or never read.
 *
 * Dropout on the weights keeps both A (for softmax backward and explanations) and the dropped
 * copy Ad (for dV = Ad^T dZ); an element was dropped exactly when A > 0 and Ad == 0, so no
 * separate mask is stored. */
#include "seqrec/nn.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

int sq_nn_attn_init(sq_nn_attn *l, sq_params *ps, const char *prefix, int C, int H, int causal,
                    float p_drop) {
    if (C <= 0 || H <= 0 || C % H != 0 || p_drop < 0.0f || p_drop >= 1.0f)
        return -1;
    size_t wqkv[2] = {(size_t)3 * C, (size_t)C}, bqkv[1] = {(size_t)3 * C};
    size_t wo[2] = {(size_t)C, (size_t)C}, bo[1] = {(size_t)C};
    l->C = C;
    l->H = H;
    l->causal = causal ? 1 : 0;
    l->p_drop = p_drop;
    l->wqkv = sq_nn_declare(ps, prefix, "wqkv", 2, wqkv, 0);
    l->bqkv = sq_nn_declare(ps, prefix, "bqkv", 1, bqkv, 0);
    l->wo = sq_nn_declare(ps, prefix, "wo", 2, wo, 0);
    l->bo = sq_nn_declare(ps, prefix, "bo", 1, bo, 0);
    return l->wqkv < 0 || l->bqkv < 0 || l->wo < 0 || l->bo < 0 ? -1 : 0;
}

/* Xavier per projection (each of Wq, Wk, Wv is [C, C]), biases zero. */
void sq_nn_attn_reset(const sq_nn_attn *l, sq_params *ps, sq_rng *rng) {
    int C = l->C;
    float *w = sq_nn_val(ps, l->wqkv);
    for (int k = 0; k < 3; k++)
        sq_nn_fill_xavier(w + (size_t)k * C * C, C, C, rng);
    sq_nn_fill(sq_nn_val(ps, l->bqkv), (size_t)3 * C, 0.0f);
    sq_nn_fill_xavier(sq_nn_val(ps, l->wo), C, C, rng);
    sq_nn_fill(sq_nn_val(ps, l->bo), (size_t)C, 0.0f);
}

const float *sq_nn_attn_weights(const sq_nn_attn *l, const sq_nn_attn_acts *acts, int b, int h) {
    size_t T = (size_t)acts->T;
    return acts->att + ((size_t)b * l->H + h) * T * T;
}

enum { CHUNK = 64 }; /* query rows per causal GEMM chunk */

/* 1 when cblas_sgemm may be called inside an OpenMP parallel region and then runs on the calling
 * thread only: OpenBLAS built with USE_OPENMP (openblas_get_parallel() == 2). See "Threads". */
static int blas_serial_in_parallel(void) {
    return openblas_get_parallel() == 2;
}

/* Leading padded positions of a sequence whose queries see only themselves (causal only). */
static int lead_pad(const uint8_t *padb, int T, int causal) {
    int p = 0;
    if (padb && causal)
        while (p < T && padb[p])
            p++;
    return p;
}

/* Views of one (batch, head) restricted to the sub-block [lead, T): pointers to row `lead`. */
typedef struct {
    int L;            /* rows in the sub-block: T - lead */
    float *q, *k, *v; /* [L, D] slices of qkv, row stride 3C */
    float *s;         /* [L, L] slice of a [T, T] matrix, row stride T */
} view;

static view make_view(float *qkv, float *tt, int b, int h, int lead, int T, int C, int H) {
    const int D = C / H;
    view w;
    w.L = T - lead;
    w.q = qkv + ((size_t)b * T + lead) * 3 * C + (size_t)h * D;
    w.k = w.q + C;
    w.v = w.q + 2 * C;
    w.s = tt + ((size_t)b * H + h) * T * T + (size_t)lead * T + lead;
    return w;
}

/* exp for the softmax rows, written so that the compiler vectorises it (glibc's expf is a scalar
 * call): Cephes' expf as in loss_ce.c — range reduction by ln 2, degree-6 polynomial, about
 * 2 ulp; arguments clamped to [-87, 88] (they are <= 0 here: s - max). */
static inline float fast_expf(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
#ifdef __FAST_MATH__
    float n = floorf(x * 1.44269504088896341f + 0.5f);
#else
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
#endif
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23; /* 2^n */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* Masked softmax of row t (0-based within the sequence) over keys [j0, T); 0 elsewhere.
 * Keys before j0 are padded leading positions (masked for t >= j0). padb NULL: no key in
 * [j0, T) is padded (the usual left-padded sequence), and the row takes a vectorised path. */
static void softmax_row(float *s, int t, int j0, int T, int causal, const uint8_t *padb) {
    int jend = causal ? t + 1 : T;
    if (!padb) {
        float mx = -INFINITY, sum = 0.0f;
        for (int j = 0; j < j0; j++)
            s[j] = 0.0f;
#pragma omp simd reduction(max : mx)
        for (int j = j0; j < jend; j++)
            mx = s[j] > mx ? s[j] : mx;
#pragma omp simd reduction(+ : sum)
        for (int j = j0; j < jend; j++) {
            float e = fast_expf(s[j] - mx);
            s[j] = e;
            sum += e;
        }
        float inv = 1.0f / sum;
#pragma omp simd
        for (int j = j0; j < jend; j++)
            s[j] *= inv;
        for (int j = jend; j < T; j++)
            s[j] = 0.0f;
        return;
    }
    float mx = -INFINITY;
    for (int j = j0; j < jend; j++)
        if ((!padb || !padb[j] || j == t) && s[j] > mx)
            mx = s[j];
    float sum = 0.0f;
    for (int j = 0; j < j0; j++)
        s[j] = 0.0f;
    for (int j = j0; j < jend; j++) {
        if (!padb || !padb[j] || j == t) {
            float e = expf(s[j] - mx);
            s[j] = e;
            sum += e;
        } else {
            s[j] = 0.0f;
        }
    }
    float inv = 1.0f / sum; /* sum >= 1: the maximum contributes e^0 */
    for (int j = j0; j < jend; j++)
        s[j] *= inv;
    for (int j = jend; j < T; j++)
        s[j] = 0.0f;
}

sq_status sq_nn_attn_forward(const sq_nn_attn *l, const sq_params *ps, sq_arena *a,
                             sq_nn_attn_acts *acts, float *y, const float *xq, const float *xkv,
                             const uint8_t *pad, int B, int T, sq_rng *rng, sq_error *err) {
    if (B <= 0 || T <= 0)
        return sq_errorf(err, SQ_ERR_ARG, "attention: B=%d T=%d", B, T);
    const int C = l->C, H = l->H, D = C / H, C3 = 3 * C, N = B * T;
    const size_t TT = (size_t)T * T, natt = (size_t)B * H * TT;
    const float scale = 1.0f / sqrtf((float)D);
    const float *W = sq_nn_val(ps, l->wqkv), *bias = sq_nn_val(ps, l->bqkv);
    const int drop = rng && l->p_drop > 0.0f;
    const int chunk = l->causal ? CHUNK : T;

    memset(acts, 0, sizeof *acts);
    acts->B = B;
    acts->T = T;
    acts->xq = xq;
    acts->xkv = xkv;
    acts->pad = pad;
    acts->qkv = sq_arena_alloc(a, (size_t)N * C3 * sizeof(float));
    acts->att = sq_arena_alloc(a, natt * sizeof(float));
    acts->attd = drop ? sq_arena_alloc(a, natt * sizeof(float)) : acts->att;
    acts->z = sq_arena_alloc(a, (size_t)N * C * sizeof(float));
    acts->lead = sq_arena_alloc(a, (size_t)B * sizeof(int));
    if (!acts->qkv || !acts->att || !acts->attd || !acts->z || !acts->lead)
        return sq_errorf(err, SQ_ERR_NOMEM, "attention: arena full (B=%d T=%d C=%d H=%d)", B, T, C,
                         H);
    float *qkv = acts->qkv, *att = acts->att, *attd = acts->attd, *z = acts->z;
    int *lead = acts->lead;
    for (int b = 0; b < B; b++)
        lead[b] = lead_pad(pad ? pad + (size_t)b * T : NULL, T, l->causal);

    /* projections: one fused GEMM for self-attention, else Q from xq and K|V from xkv */
    if (xq == xkv) {
        sq_nn_linear_forward_ld(qkv, C3, xq, C, W, bias, N, C, C3);
    } else {
        sq_nn_linear_forward_ld(qkv, C3, xq, C, W, bias, N, C, C);
        sq_nn_linear_forward_ld(qkv + C, C3, xkv, C, W + (size_t)C * C, bias + C, N, C, 2 * C);
    }

    /* Per (batch, head), one task each: scores S = Q K^T / sqrt(D) on the sub-block (query
     * chunks against keys up to their end), masked softmax and dropout row by row, then
     * Z = Ad V into the head's columns of z. See "Threads" at the top for the BLAS calls. */
    const float pd = l->p_drop, sd = drop ? 1.0f / (1.0f - pd) : 1.0f;
    const uint64_t seed = drop ? sq_rng_u64(rng) : 0;
    const uint32_t thr = drop ? (uint32_t)fmin((double)pd * 4294967296.0, 4294967295.0) : 0;
    const long BH = (long)B * H;
#pragma omp parallel for schedule(dynamic, 1) if (BH > 1 && blas_serial_in_parallel())
    for (long bh = 0; bh < BH; bh++) {
        const int b = (int)(bh / H), h = (int)(bh % H);
        const uint8_t *padb = pad ? pad + (size_t)b * T : NULL;
        if (padb) { /* only leading padding (the usual case): the softmax's fast path */
            uint8_t inner = 0;
            for (int j = lead[b]; j < T; j++)
                inner |= padb[j];
            if (!inner)
                padb = NULL;
        }
        view w = make_view(qkv, att, b, h, lead[b], T, C, H);
        for (int r0 = 0; r0 < w.L; r0 += chunk) {
            int r1 = r0 + chunk < w.L ? r0 + chunk : w.L;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, r1, D, scale,
                        w.q + (size_t)r0 * C3, C3, w.k, C3, 0.0f, w.s + (size_t)r0 * T, T);
        }
        for (int t = 0; t < T; t++) {
            const long r = bh * T + t;
            int j0 = lead[b];
            float *s = att + (size_t)r * T;
            if (t < j0) { /* a leading padded query: itself only */
                memset(s, 0, (size_t)T * sizeof *s);
                s[t] = 1.0f;
                j0 = t;
            } else {
                softmax_row(s, t, j0, T, l->causal, padb);
            }
            if (drop) {
                int jend = l->causal ? t + 1 : T;
                sq_rng g = sq_rng_derive(seed, (uint64_t)r);
                float *sdr = attd + (size_t)r * T;
                for (int j = 0; j < j0; j++)
                    sdr[j] = 0.0f;
                for (int j = j0; j < jend; j++)
                    sdr[j] = (uint32_t)sq_rng_u64(&g) >= thr ? s[j] * sd : 0.0f;
                for (int j = jend; j < T; j++)
                    sdr[j] = 0.0f;
            }
        }
        view wd = make_view(qkv, attd, b, h, lead[b], T, C, H);
        float *zh = z + ((size_t)b * T + lead[b]) * C + (size_t)h * D;
        for (int r0 = 0; r0 < wd.L; r0 += chunk) {
            int r1 = r0 + chunk < wd.L ? r0 + chunk : wd.L;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, D, r1, 1.0f,
                        wd.s + (size_t)r0 * T, T, wd.v, C3, 0.0f, zh + (size_t)r0 * C, C);
        }
        /* leading padded rows: z = Ad[t][t] V[t] */
        for (int t = 0; t < lead[b]; t++) {
            float at = attd[((size_t)b * H + h) * TT + (size_t)t * T + t];
            const float *vt = qkv + ((size_t)b * T + t) * C3 + 2 * C + (size_t)h * D;
            float *zt = z + ((size_t)b * T + t) * C + (size_t)h * D;
            for (int d = 0; d < D; d++)
                zt[d] = at * vt[d];
        }
    }

    sq_nn_linear_forward(y, z, sq_nn_val(ps, l->wo), sq_nn_val(ps, l->bo), N, C, C);
    return SQ_OK;
}

sq_status sq_nn_attn_backward(const sq_nn_attn *l, sq_params *ps, sq_arena *a,
                              const sq_nn_attn_acts *acts, float *dxq, float *dxkv, const float *dy,
                              sq_error *err) {
    const int B = acts->B, T = acts->T, C = l->C, H = l->H, D = C / H, C3 = 3 * C, N = B * T;
    const size_t TT = (size_t)T * T;
    const float scale = 1.0f / sqrtf((float)D);
    float *qkv = acts->qkv, *att = acts->att, *attd = acts->attd;
    const int *lead = acts->lead;
    const int drop = acts->attd != acts->att;
    const float sd = drop ? 1.0f / (1.0f - l->p_drop) : 1.0f;
    const int chunk = l->causal ? CHUNK : T;

    float *dz = sq_arena_calloc(a, (size_t)N * C * sizeof(float));
    float *dqkv = sq_arena_calloc(a, (size_t)N * C3 * sizeof(float));
    float *datt = sq_arena_alloc(a, (size_t)B * H * TT * sizeof(float));
    if (!dz || !dqkv || !datt)
        return sq_errorf(err, SQ_ERR_NOMEM, "attention backward: arena full (B=%d T=%d)", B, T);

    /* output projection */
    sq_nn_linear_backward(dz, sq_nn_grad(ps, l->wo), sq_nn_grad(ps, l->bo), dy, acts->z,
                          sq_nn_val(ps, l->wo), N, C, C);

    /* Per (batch, head), one task each (see "Threads" at the top): dAd = dZ V^T and
     * dV += Ad^T dZ on the sub-block, chunked like the forward; then through dropout and softmax
     * in place, dS = A (dA - sum_j A dA) (rows of leading padded queries have a one-hot A, so
     * their dS is 0 and nothing reads it); then dQ += scale dS K and dK += scale dS^T Q. */
    const long BH = (long)B * H;
#pragma omp parallel for schedule(dynamic, 1) if (BH > 1 && blas_serial_in_parallel())
    for (long bh = 0; bh < BH; bh++) {
        const int b = (int)(bh / H), h = (int)(bh % H);
        view w = make_view(qkv, attd, b, h, lead[b], T, C, H);
        view g = make_view(dqkv, datt, b, h, lead[b], T, C, H);
        const float *dzh = dz + ((size_t)b * T + lead[b]) * C + (size_t)h * D;
        for (int r0 = 0; r0 < w.L; r0 += chunk) {
            int r1 = r0 + chunk < w.L ? r0 + chunk : w.L;
            /* rows r0..r1 of dAd, keys 0..r1 */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, r1, D, 1.0f,
                        dzh + (size_t)r0 * C, C, w.v, C3, 0.0f, g.s + (size_t)r0 * T, T);
            /* keys r0..r1 of dV, from queries r0..L */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1 - r0, D, w.L - r0, 1.0f,
                        w.s + (size_t)r0 * T + r0, T, dzh + (size_t)r0 * C, C, 1.0f,
                        g.v + (size_t)r0 * C3, C3);
        }
        for (int t = 0; t < lead[b]; t++) { /* leading padded rows: dV[t] += Ad[t][t] dZ[t] */
            float at = attd[((size_t)b * H + h) * TT + (size_t)t * T + t];
            const float *dzt = dz + ((size_t)b * T + t) * C + (size_t)h * D;
            float *dvt = dqkv + ((size_t)b * T + t) * C3 + 2 * C + (size_t)h * D;
            for (int d = 0; d < D; d++)
                dvt[d] += at * dzt[d];
        }
        for (int t = lead[b]; t < T; t++) {
            const long r = bh * T + t;
            const int j0 = lead[b], jend = l->causal ? t + 1 : T;
            const float *ar = att + (size_t)r * T, *adr = attd + (size_t)r * T;
            float *dr = datt + (size_t)r * T;
            if (drop)
                for (int j = j0; j < jend; j++)
                    dr[j] = adr[j] != 0.0f ? dr[j] * sd : 0.0f;
            float dot = 0.0f;
            for (int j = j0; j < jend; j++)
                dot += ar[j] * dr[j];
            for (int j = j0; j < jend; j++)
                dr[j] = ar[j] * (dr[j] - dot);
            for (int j = jend; j < T; j++)
                dr[j] = 0.0f; /* read by the chunked GEMMs below */
        }
        view ws = make_view(qkv, datt, b, h, lead[b], T, C, H);
        for (int r0 = 0; r0 < ws.L; r0 += chunk) {
            int r1 = r0 + chunk < ws.L ? r0 + chunk : ws.L;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, D, r1, scale,
                        ws.s + (size_t)r0 * T, T, ws.k, C3, 1.0f, g.q + (size_t)r0 * C3, C3);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1 - r0, D, ws.L - r0, scale,
                        ws.s + (size_t)r0 * T + r0, T, ws.q + (size_t)r0 * C3, C3, 1.0f,
                        g.k + (size_t)r0 * C3, C3);
        }
    }

    /* input projections */
    const float *W = sq_nn_val(ps, l->wqkv);
    float *dW = sq_nn_grad(ps, l->wqkv), *db = sq_nn_grad(ps, l->bqkv);
    if (acts->xq == acts->xkv && dxq == dxkv) {
        sq_nn_linear_backward_ld(dxq, C, dW, db, dqkv, C3, acts->xq, W, N, C, C3);
    } else {
        sq_nn_linear_backward_ld(dxq, C, dW, db, dqkv, C3, acts->xq, W, N, C, C);
        sq_nn_linear_backward_ld(dxkv, C, dW + (size_t)C * C, db + C, dqkv + C, C3, acts->xkv,
                                 W + (size_t)C * C, N, C, 2 * C);
    }
    return SQ_OK;
}
