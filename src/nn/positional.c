/* positional.c — positional encodings added to [B, T, C] inputs: a learned table (a parameter)
 * or the fixed sinusoidal one of Vaswani et al. 2017 (no parameters). Both add P[t] to
 * position t of every sequence. */
#include "seqrec/nn.h"

#include <math.h>

void sq_nn_pos_forward(float *y, const float *x, const float *P, int B, int T, int C) {
    long N = (long)B * T;
#pragma omp parallel for schedule(static) if (N * C > 32768)
    for (long n = 0; n < N; n++) {
        const float *pr = P + (size_t)(n % T) * C, *xr = x + (size_t)n * C;
        float *yr = y + (size_t)n * C;
        for (int c = 0; c < C; c++)
            yr[c] = xr[c] + pr[c];
    }
}

/* dx += dy;  dP[t] += sum_b dy[b, t]  (each (t, c) summed over b in order). */
void sq_nn_pos_backward(float *dx, float *dP, const float *dy, int B, int T, int C) {
    long N = (long)B * T;
    if (dx) {
#pragma omp parallel for schedule(static) if (N * C > 32768)
        for (long i = 0; i < N * C; i++)
            dx[i] += dy[i];
    }
    if (dP) {
#pragma omp parallel for schedule(static) if (N * C > 32768)
        for (int t = 0; t < T; t++) {
            float *pr = dP + (size_t)t * C;
            for (int b = 0; b < B; b++) {
                const float *dr = dy + ((size_t)b * T + t) * C;
                for (int c = 0; c < C; c++)
                    pr[c] += dr[c];
            }
        }
    }
}

void sq_nn_pos_sinusoid_table(float *P, int T, int C) {
    for (int t = 0; t < T; t++)
        for (int c = 0; c < C; c++) {
            int i2 = c & ~1; /* 2i */
            double a = t / pow(10000.0, (double)i2 / C);
            P[(size_t)t * C + c] = (float)(c & 1 ? cos(a) : sin(a));
        }
}
