/* gradcheck.h — finite-difference gradient checks for the nn tests.
 *
 * A test sets up a layer, defines a scalar loss L = Σ w ⊙ y (w fixed random, so dL/dy = w is
 * what backward receives), runs backward once to get analytic gradients, then perturbs each
 * input or parameter value x_i by ±eps, recomputes L (accumulated in double) and compares
 * (L(x+eps) − L(x−eps)) / 2eps with the analytic value:
 *     |num − ana| ≤ tol · max(|num|, |ana|, floor)
 * Kinks (ReLU at 0, max-pool ties) are avoided by the test's choice of inputs. */
#ifndef SEQREC_GRADCHECK_H
#define SEQREC_GRADCHECK_H

#include <stddef.h>

/* Recomputes the forward pass from the current buffers and returns the scalar loss. */
typedef double (*gc_loss_fn)(void *ctx);

typedef struct {
    double eps;    /* perturbation; default 1e-3 */
    double tol;    /* relative tolerance; default 1e-2 */
    double floor;  /* absolute floor of the denominator; default 1e-3 */
    size_t stride; /* check every stride-th value (1: all); for big tensors */
} gc_opts;

/* Checks g (analytic dL/dx, n values) against central differences of f over x. Returns the
 * number of values outside tolerance (0 = pass) and prints the worst one with `name`.
 * x is restored exactly. opts may be NULL for the defaults. */
int gc_check(const char *name, gc_loss_fn f, void *ctx, float *x, const float *g, size_t n,
             const gc_opts *opts);

/* L = Σ w_i y_i in double: the usual probe loss. */
double gc_dot(const float *w, const float *y, size_t n);

/* Fills x with N(0, scale²) values from a fixed seed. */
void gc_randn(float *x, size_t n, float scale, unsigned long long seed);

#endif
