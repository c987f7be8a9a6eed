/* activation.c — element-wise nonlinearities. Each loop is specialised (no per-element function
 * pointer); sq_nn_act_* dispatch once per call. GELU is GPT-2's tanh approximation. */
#include "seqrec/nn.h"

#include <math.h>

#define PAR _Pragma("omp parallel for schedule(static) if (n > 65536)")

void sq_nn_relu_forward(float *y, const float *x, size_t n) {
    PAR for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* x may be the forward input or output: both are > 0 at the same places. */
void sq_nn_relu_backward(float *dx, const float *dy, const float *x, size_t n) {
    PAR for (size_t i = 0; i < n; i++) dx[i] += x[i] > 0.0f ? dy[i] : 0.0f;
}

static const float GELU_K = 0.7978845608028654f; /* sqrt(2 / pi) */
static const float GELU_A = 0.044715f;

/* y = 0.5 x (1 + tanh(k (x + a x^3))) */
void sq_nn_gelu_forward(float *y, const float *x, size_t n) {
    PAR for (size_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + tanhf(GELU_K * (v + GELU_A * v * v * v)));
    }
}

/* dy/dx = 0.5 (1 + th) + 0.5 x (1 - th^2) k (1 + 3 a x^2) */
void sq_nn_gelu_backward(float *dx, const float *dy, const float *x, size_t n) {
    PAR for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float th = tanhf(GELU_K * (v + GELU_A * v * v * v));
        float d = 0.5f * (1.0f + th) +
                  0.5f * v * (1.0f - th * th) * GELU_K * (1.0f + 3.0f * GELU_A * v * v);
        dx[i] += dy[i] * d;
    }
}

void sq_nn_sigmoid_forward(float *y, const float *x, size_t n) {
    PAR for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}

void sq_nn_sigmoid_backward(float *dx, const float *dy, const float *y, size_t n) {
    PAR for (size_t i = 0; i < n; i++) dx[i] += dy[i] * y[i] * (1.0f - y[i]);
}

void sq_nn_tanh_forward(float *y, const float *x, size_t n) {
    PAR for (size_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

void sq_nn_tanh_backward(float *dx, const float *dy, const float *y, size_t n) {
    PAR for (size_t i = 0; i < n; i++) dx[i] += dy[i] * (1.0f - y[i] * y[i]);
}

void sq_nn_act_forward(sq_nn_act act, float *y, const float *x, size_t n) {
    switch (act) {
    case SQ_ACT_RELU:
        sq_nn_relu_forward(y, x, n);
        break;
    case SQ_ACT_GELU:
        sq_nn_gelu_forward(y, x, n);
        break;
    case SQ_ACT_SIGMOID:
        sq_nn_sigmoid_forward(y, x, n);
        break;
    case SQ_ACT_TANH:
        sq_nn_tanh_forward(y, x, n);
        break;
    case SQ_ACT_NONE:
    default:
        if (y != x)
            PAR for (size_t i = 0; i < n; i++) y[i] = x[i];
        break;
    }
}

void sq_nn_act_backward(sq_nn_act act, float *dx, const float *dy, const float *x, const float *y,
                        size_t n) {
    switch (act) {
    case SQ_ACT_RELU:
        sq_nn_relu_backward(dx, dy, x ? x : y, n);
        break;
    case SQ_ACT_GELU:
        sq_nn_gelu_backward(dx, dy, x, n);
        break;
    case SQ_ACT_SIGMOID:
        sq_nn_sigmoid_backward(dx, dy, y, n);
        break;
    case SQ_ACT_TANH:
        sq_nn_tanh_backward(dx, dy, y, n);
        break;
    case SQ_ACT_NONE:
    default:
        PAR for (size_t i = 0; i < n; i++) dx[i] += dy[i];
        break;
    }
}
