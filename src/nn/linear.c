/* linear.c — fully connected layer y = x W^T + b on cblas_sgemm, rows batched (N = B*T).
 * W is [O, C] as in PyTorch, so a row of W is one output unit's weights. */
#include "seqrec/nn.h"

#include <cblas.h>
#include <string.h>

/* x: [N, C] (row stride ldx) -> y: [N, O] (row stride ldy); W: [O, C]; b: [O] or NULL. */
void sq_nn_linear_forward_ld(float *y, int ldy, const float *x, int ldx, const float *W,
                             const float *b, int N, int C, int O) {
    if (N <= 0 || O <= 0)
        return;
    if (b) {
#pragma omp parallel for schedule(static) if ((long)N * O > 32768)
        for (int n = 0; n < N; n++)
            memcpy(y + (size_t)n * ldy, b, (size_t)O * sizeof *y);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, O, C, 1.0f, x, ldx, W, C,
                b ? 1.0f : 0.0f, y, ldy);
}

/* dx += dy W;  dW += dy^T x;  db += sum_n dy[n]. Each may be NULL. */
void sq_nn_linear_backward_ld(float *dx, int ldx, float *dW, float *db, const float *dy, int ldy,
                              const float *x, const float *W, int N, int C, int O) {
    if (N <= 0)
        return;
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, O, 1.0f, dy, ldy, W, C, 1.0f,
                    dx, ldx);
    if (dW)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, O, C, N, 1.0f, dy, ldy, x, ldx, 1.0f,
                    dW, C);
    if (db)
        sq_nn_colsum_acc(db, dy, N, O, ldy);
}

void sq_nn_linear_forward(float *y, const float *x, const float *W, const float *b, int N, int C,
                          int O) {
    sq_nn_linear_forward_ld(y, O, x, C, W, b, N, C, O);
}

void sq_nn_linear_backward(float *dx, float *dW, float *db, const float *dy, const float *x,
                           const float *W, int N, int C, int O) {
    sq_nn_linear_backward_ld(dx, C, dW, db, dy, O, x, W, N, C, O);
}

int sq_nn_linear_init(sq_nn_linear *l, sq_params *ps, const char *prefix, int C, int O, int bias) {
    if (C <= 0 || O <= 0)
        return -1;
    size_t ws[2] = {(size_t)O, (size_t)C}, bs[1] = {(size_t)O};
    l->C = C;
    l->O = O;
    l->w = sq_nn_declare(ps, prefix, "w", 2, ws, 0);
    l->b = bias ? sq_nn_declare(ps, prefix, "b", 1, bs, 0) : -1;
    return l->w < 0 || (bias && l->b < 0) ? -1 : 0;
}

void sq_nn_linear_reset(const sq_nn_linear *l, sq_params *ps, sq_rng *rng) {
    sq_nn_fill_xavier(sq_nn_val(ps, l->w), l->O, l->C, rng);
    if (l->b >= 0)
        sq_nn_fill(sq_nn_val(ps, l->b), (size_t)l->O, 0.0f);
}
