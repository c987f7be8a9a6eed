/* rnn.c — GRU (Cho et al. 2014) and LSTM (Hochreiter & Schmidhuber 1997) over [B, T, C]
 * sequences, unrolled over T, with backpropagation through time. Gate order and equations are
 * PyTorch's (nn.GRU: r, z, n; nn.LSTM: i, f, g, o), so its weights load unchanged.
 *
 * Work per call: one GEMM projects the inputs of all steps at once (N = B*T rows); each step
 * then does one GEMM h_{t-1} Wh^T for all gates of all B rows (row stride T*kG picks step t
 * out of the [B, T, kG] buffers) and an OpenMP loop over b for the gate arithmetic. Backward
 * mirrors it: per step one element-wise pass and one GEMM dA_t Wh for the carried hidden
 * gradient; the weight gradients of all steps are one GEMM each at the end, which is why
 * forward keeps h_{t-1} of every step in `hprev`. */
#include "seqrec/nn.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

static int rnn_init(sq_nn_rnn *l, sq_params *ps, const char *prefix, int C, int G, int gates) {
    if (C <= 0 || G <= 0)
        return -1;
    size_t wx[2] = {(size_t)gates * G, (size_t)C}, wh[2] = {(size_t)gates * G, (size_t)G};
    size_t bs[1] = {(size_t)gates * G};
    l->C = C;
    l->G = G;
    l->gates = gates;
    l->wx = sq_nn_declare(ps, prefix, "wx", 2, wx, 0);
    l->wh = sq_nn_declare(ps, prefix, "wh", 2, wh, 0);
    l->bx = sq_nn_declare(ps, prefix, "bx", 1, bs, 0);
    l->bh = sq_nn_declare(ps, prefix, "bh", 1, bs, 0);
    return l->wx < 0 || l->wh < 0 || l->bx < 0 || l->bh < 0 ? -1 : 0;
}

int sq_nn_gru_init(sq_nn_rnn *l, sq_params *ps, const char *prefix, int C, int G) {
    return rnn_init(l, ps, prefix, C, G, 3);
}

int sq_nn_lstm_init(sq_nn_rnn *l, sq_params *ps, const char *prefix, int C, int G) {
    return rnn_init(l, ps, prefix, C, G, 4);
}

void sq_nn_rnn_reset(const sq_nn_rnn *l, sq_params *ps, sq_rng *rng) {
    float k = 1.0f / sqrtf((float)l->G);
    size_t kg = (size_t)l->gates * l->G;
    sq_nn_fill_uniform(sq_nn_val(ps, l->wx), kg * l->C, -k, k, rng);
    sq_nn_fill_uniform(sq_nn_val(ps, l->wh), kg * l->G, -k, k, rng);
    sq_nn_fill_uniform(sq_nn_val(ps, l->bx), kg, -k, k, rng);
    sq_nn_fill_uniform(sq_nn_val(ps, l->bh), kg, -k, k, rng);
}

static inline float sigm(float x) {
    return 1.0f / (1.0f + expf(-x));
}

/* Common setup: acts fields, the input projection of all steps into acts->gates. */
static sq_status rnn_begin(const sq_nn_rnn *l, const sq_params *ps, sq_arena *a,
                           sq_nn_rnn_acts *acts, float *y, const float *x, const float *h0,
                           const float *c0, const uint8_t *pad, int B, int T, sq_error *err) {
    if (B <= 0 || T <= 0)
        return sq_errorf(err, SQ_ERR_ARG, "rnn: B=%d T=%d", B, T);
    const int G = l->G, KG = l->gates * G, N = B * T;
    memset(acts, 0, sizeof *acts);
    acts->B = B;
    acts->T = T;
    acts->x = x;
    acts->h0 = h0;
    acts->c0 = c0;
    acts->pad = pad;
    acts->y = y;
    acts->gates = sq_arena_alloc(a, (size_t)N * KG * sizeof(float));
    acts->hg = sq_arena_alloc(a, (size_t)N * KG * sizeof(float));
    acts->hprev = sq_arena_alloc(a, (size_t)N * G * sizeof(float));
    if (l->gates == 4)
        acts->c = sq_arena_alloc(a, (size_t)N * G * sizeof(float));
    if (!acts->gates || !acts->hg || !acts->hprev || (l->gates == 4 && !acts->c))
        return sq_errorf(err, SQ_ERR_NOMEM, "rnn: arena full (B=%d T=%d G=%d)", B, T, G);
    sq_nn_linear_forward(acts->gates, x, sq_nn_val(ps, l->wx), sq_nn_val(ps, l->bx), N, l->C, KG);
    for (int b = 0; b < B; b++) {
        float *hp = acts->hprev + (size_t)b * T * G;
        if (h0)
            memcpy(hp, h0 + (size_t)b * G, (size_t)G * sizeof *hp);
        else
            memset(hp, 0, (size_t)G * sizeof *hp);
    }
    return SQ_OK;
}

/* hg[:, t] = hprev[:, t] Wh^T + bh for the B rows of step t. */
static void step_gemm(const sq_nn_rnn *l, const sq_params *ps, const sq_nn_rnn_acts *acts, int t) {
    const int G = l->G, KG = l->gates * G, T = acts->T;
    sq_nn_linear_forward_ld(acts->hg + (size_t)t * KG, T * KG, acts->hprev + (size_t)t * G, T * G,
                            sq_nn_val(ps, l->wh), sq_nn_val(ps, l->bh), acts->B, G, KG);
}

/* ============================================ GRU ============================================ */

/* x: [B, T, C] -> y: [B, T, G]. */
sq_status sq_nn_gru_forward(const sq_nn_rnn *l, const sq_params *ps, sq_arena *a,
                            sq_nn_rnn_acts *acts, float *y, const float *x, const float *h0,
                            const uint8_t *pad, int B, int T, sq_error *err) {
    if (l->gates != 3)
        return sq_errorf(err, SQ_ERR_ARG, "gru_forward on an LSTM layer");
    sq_status rc = rnn_begin(l, ps, a, acts, y, x, h0, NULL, pad, B, T, err);
    if (rc)
        return rc;
    const int G = l->G, G3 = 3 * G;
    for (int t = 0; t < T; t++) {
        step_gemm(l, ps, acts, t);
#pragma omp parallel for schedule(static) if ((long)B * G > 4096)
        for (int b = 0; b < B; b++) {
            size_t n = (size_t)b * T + t;
            float *gt = acts->gates + n * G3, *yr = y + n * G;
            const float *hg = acts->hg + n * G3, *hp = acts->hprev + n * G;
            if (pad && pad[n]) { /* state carried unchanged */
                memcpy(yr, hp, (size_t)G * sizeof *yr);
                memset(gt, 0, (size_t)G3 * sizeof *gt);
            } else {
                for (int g = 0; g < G; g++) {
                    float r = sigm(gt[g] + hg[g]);
                    float z = sigm(gt[G + g] + hg[G + g]);
                    float nn = tanhf(gt[2 * G + g] + r * hg[2 * G + g]);
                    gt[g] = r;
                    gt[G + g] = z;
                    gt[2 * G + g] = nn;
                    yr[g] = (1.0f - z) * nn + z * hp[g];
                }
            }
            if (t + 1 < T)
                memcpy(acts->hprev + (n + 1) * G, yr, (size_t)G * sizeof *yr);
        }
    }
    return SQ_OK;
}

/* dx: [B, T, C], dh0: [B, G] (may be NULL), accumulated. */
sq_status sq_nn_gru_backward(const sq_nn_rnn *l, sq_params *ps, sq_arena *a,
                             const sq_nn_rnn_acts *acts, float *dx, float *dh0, const float *dy,
                             sq_error *err) {
    const int B = acts->B, T = acts->T, G = l->G, G3 = 3 * G, N = B * T;
    float *dgx = sq_arena_calloc(a, (size_t)N * G3 * sizeof(float));  /* dL/d(x-side pre-acts) */
    float *dhg = sq_arena_calloc(a, (size_t)N * G3 * sizeof(float));  /* dL/d(h-side pre-acts) */
    float *carry = sq_arena_calloc(a, (size_t)B * G * sizeof(float)); /* dL/dh_{t} from t+1 */
    if (!dgx || !dhg || !carry)
        return sq_errorf(err, SQ_ERR_NOMEM, "gru backward: arena full");
    const float *Wh = sq_nn_val(ps, l->wh);
    for (int t = T - 1; t >= 0; t--) {
#pragma omp parallel for schedule(static) if ((long)B * G > 4096)
        for (int b = 0; b < B; b++) {
            size_t n = (size_t)b * T + t;
            float *cr = carry + (size_t)b * G;
            const float *dyr = dy + n * G;
            if (acts->pad && acts->pad[n]) { /* h_t = h_{t-1}: the gradient passes through */
                for (int g = 0; g < G; g++)
                    cr[g] += dyr[g];
                continue;
            }
            const float *gt = acts->gates + n * G3, *hg = acts->hg + n * G3;
            const float *hp = acts->hprev + n * G;
            float *dxr = dgx + n * G3, *dhr = dhg + n * G3;
            for (int g = 0; g < G; g++) {
                float r = gt[g], z = gt[G + g], nn = gt[2 * G + g];
                float dh = dyr[g] + cr[g];
                float dan = dh * (1.0f - z) * (1.0f - nn * nn);
                float daz = dh * (hp[g] - nn) * z * (1.0f - z);
                float dar = dan * hg[2 * G + g] * r * (1.0f - r);
                dxr[g] = dar;
                dxr[G + g] = daz;
                dxr[2 * G + g] = dan;
                dhr[g] = dar;
                dhr[G + g] = daz;
                dhr[2 * G + g] = dan * r;
                cr[g] = dh * z;
            }
        }
        if (t > 0 || dh0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, G, G3, 1.0f,
                        dhg + (size_t)t * G3, T * G3, Wh, G, 1.0f, carry, G);
    }
    if (dh0)
        for (size_t i = 0; i < (size_t)B * G; i++)
            dh0[i] += carry[i];
    sq_nn_linear_backward(dx, sq_nn_grad(ps, l->wx), sq_nn_grad(ps, l->bx), dgx, acts->x,
                          sq_nn_val(ps, l->wx), N, l->C, G3);
    sq_nn_linear_backward(NULL, sq_nn_grad(ps, l->wh), sq_nn_grad(ps, l->bh), dhg, acts->hprev, Wh,
                          N, G, G3);
    return SQ_OK;
}

/* ============================================ LSTM =========================================== */

/* x: [B, T, C] -> y: [B, T, G]; cell states kept in acts->c. */
sq_status sq_nn_lstm_forward(const sq_nn_rnn *l, const sq_params *ps, sq_arena *a,
                             sq_nn_rnn_acts *acts, float *y, const float *x, const float *h0,
                             const float *c0, const uint8_t *pad, int B, int T, sq_error *err) {
    if (l->gates != 4)
        return sq_errorf(err, SQ_ERR_ARG, "lstm_forward on a GRU layer");
    sq_status rc = rnn_begin(l, ps, a, acts, y, x, h0, c0, pad, B, T, err);
    if (rc)
        return rc;
    const int G = l->G, G4 = 4 * G;
    for (int t = 0; t < T; t++) {
        step_gemm(l, ps, acts, t);
#pragma omp parallel for schedule(static) if ((long)B * G > 4096)
        for (int b = 0; b < B; b++) {
            size_t n = (size_t)b * T + t;
            float *gt = acts->gates + n * G4, *yr = y + n * G, *cr = acts->c + n * G;
            const float *hg = acts->hg + n * G4, *hp = acts->hprev + n * G;
            const float *cp = t > 0 ? acts->c + (n - 1) * G : c0 ? c0 + (size_t)b * G : NULL;
            if (pad && pad[n]) {
                memcpy(yr, hp, (size_t)G * sizeof *yr);
                if (cp)
                    memcpy(cr, cp, (size_t)G * sizeof *cr);
                else
                    memset(cr, 0, (size_t)G * sizeof *cr);
                memset(gt, 0, (size_t)G4 * sizeof *gt);
            } else {
                for (int g = 0; g < G; g++) {
                    float i = sigm(gt[g] + hg[g]);
                    float f = sigm(gt[G + g] + hg[G + g]);
                    float gg = tanhf(gt[2 * G + g] + hg[2 * G + g]);
                    float o = sigm(gt[3 * G + g] + hg[3 * G + g]);
                    float c = f * (cp ? cp[g] : 0.0f) + i * gg;
                    gt[g] = i;
                    gt[G + g] = f;
                    gt[2 * G + g] = gg;
                    gt[3 * G + g] = o;
                    cr[g] = c;
                    yr[g] = o * tanhf(c);
                }
            }
            if (t + 1 < T)
                memcpy(acts->hprev + (n + 1) * G, yr, (size_t)G * sizeof *yr);
        }
    }
    return SQ_OK;
}

/* dx: [B, T, C], dh0, dc0: [B, G] (each may be NULL), accumulated. */
sq_status sq_nn_lstm_backward(const sq_nn_rnn *l, sq_params *ps, sq_arena *a,
                              const sq_nn_rnn_acts *acts, float *dx, float *dh0, float *dc0,
                              const float *dy, sq_error *err) {
    const int B = acts->B, T = acts->T, G = l->G, G4 = 4 * G, N = B * T;
    float *da = sq_arena_calloc(a, (size_t)N * G4 * sizeof(float)); /* dL/d(pre-activations) */
    float *ch = sq_arena_calloc(a, (size_t)B * G * sizeof(float));  /* dL/dh_t from t+1 */
    float *cc = sq_arena_calloc(a, (size_t)B * G * sizeof(float));  /* dL/dc_t from t+1 */
    if (!da || !ch || !cc)
        return sq_errorf(err, SQ_ERR_NOMEM, "lstm backward: arena full");
    const float *Wh = sq_nn_val(ps, l->wh);
    for (int t = T - 1; t >= 0; t--) {
#pragma omp parallel for schedule(static) if ((long)B * G > 4096)
        for (int b = 0; b < B; b++) {
            size_t n = (size_t)b * T + t;
            float *chr = ch + (size_t)b * G, *ccr = cc + (size_t)b * G;
            const float *dyr = dy + n * G;
            if (acts->pad && acts->pad[n]) { /* h_t = h_{t-1}, c_t = c_{t-1} */
                for (int g = 0; g < G; g++)
                    chr[g] += dyr[g];
                continue;
            }
            const float *gt = acts->gates + n * G4, *cr = acts->c + n * G;
            const float *cp = t > 0      ? acts->c + (n - 1) * G
                              : acts->c0 ? acts->c0 + (size_t)b * G
                                         : NULL;
            float *dr = da + n * G4;
            for (int g = 0; g < G; g++) {
                float i = gt[g], f = gt[G + g], gg = gt[2 * G + g], o = gt[3 * G + g];
                float dh = dyr[g] + chr[g], tc = tanhf(cr[g]);
                float dc = ccr[g] + dh * o * (1.0f - tc * tc);
                dr[g] = dc * gg * i * (1.0f - i);
                dr[G + g] = dc * (cp ? cp[g] : 0.0f) * f * (1.0f - f);
                dr[2 * G + g] = dc * i * (1.0f - gg * gg);
                dr[3 * G + g] = dh * tc * o * (1.0f - o);
                ccr[g] = dc * f;
                chr[g] = 0.0f; /* replaced by dA_t Wh below */
            }
        }
        if (t > 0 || dh0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, G, G4, 1.0f,
                        da + (size_t)t * G4, T * G4, Wh, G, 1.0f, ch, G);
    }
    if (dh0)
        for (size_t i = 0; i < (size_t)B * G; i++)
            dh0[i] += ch[i];
    if (dc0)
        for (size_t i = 0; i < (size_t)B * G; i++)
            dc0[i] += cc[i];
    sq_nn_linear_backward(dx, sq_nn_grad(ps, l->wx), sq_nn_grad(ps, l->bx), da, acts->x,
                          sq_nn_val(ps, l->wx), N, l->C, G4);
    sq_nn_linear_backward(NULL, sq_nn_grad(ps, l->wh), sq_nn_grad(ps, l->bh), da, acts->hprev, Wh,
                          N, G, G4);
    return SQ_OK;
}
