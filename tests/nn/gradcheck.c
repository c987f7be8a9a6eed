/* gradcheck.c — see gradcheck.h. */
#include "gradcheck.h"

#include "seqrec/core.h"

#include <math.h>
#include <stdio.h>

int gc_check(const char *name, gc_loss_fn f, void *ctx, float *x, const float *g, size_t n,
             const gc_opts *opts) {
    gc_opts o = {1e-3, 1e-2, 1e-3, 1};
    if (opts) {
        if (opts->eps > 0) o.eps = opts->eps;
        if (opts->tol > 0) o.tol = opts->tol;
        if (opts->floor > 0) o.floor = opts->floor;
        if (opts->stride > 0) o.stride = opts->stride;
    }
    int bad = 0;
    double worst = 0, worst_num = 0, worst_ana = 0;
    size_t worst_i = 0;
    for (size_t i = 0; i < n; i += o.stride) {
        float orig = x[i];
        x[i] = (float)(orig + o.eps);
        double lp = f(ctx);
        x[i] = (float)(orig - o.eps);
        double lm = f(ctx);
        x[i] = orig;
        /* use the perturbation actually applied after float rounding */
        double h = (double)(float)(orig + o.eps) - (double)(float)(orig - o.eps);
        double num = (lp - lm) / h, ana = g[i];
        double den = fmax(fmax(fabs(num), fabs(ana)), o.floor);
        double rel = fabs(num - ana) / den;
        if (rel > o.tol) bad++;
        if (rel > worst) {
            worst = rel;
            worst_i = i;
            worst_num = num;
            worst_ana = ana;
        }
    }
    if (bad)
        fprintf(stderr, "gradcheck %s: %d of %zu values off; worst [%zu] numeric %.6g analytic "
                        "%.6g (rel %.3g > tol %.3g)\n",
                name, bad, (n + o.stride - 1) / o.stride, worst_i, worst_num, worst_ana, worst,
                o.tol);
    return bad;
}

double gc_dot(const float *w, const float *y, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)w[i] * y[i];
    return s;
}

void gc_randn(float *x, size_t n, float scale, unsigned long long seed) {
    sq_rng r;
    sq_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = (float)sq_rng_normal(&r) * scale;
}
