/* optim.c — SGD with momentum, Adam, AdamW over a parameter group; lazy (row-sparse) updates of
 * embedding tables; global gradient-norm clipping; learning-rate schedules.
 *
 * Every update is written once, as a kernel over a range of floats (`upd_range`), and applied
 * either to runs of consecutive dense tensors (one flat range each: the gaps between tensors are
 * zero in values, gradients and state, and an update of zeros leaves zeros) or to the touched
 * rows of a sparse tensor. The formulas are PyTorch's, so that its numbers can be checked by
 * hand (see test_optim.c):
 *   SGD:   g' = g + wd θ;  u = μ u + g';  θ −= lr u
 *   Adam:  g' = g + wd θ;  m = β1 m + (1 − β1) g';  v = β2 v + (1 − β2) g'²;
 *          θ −= (lr / (1 − β1^t)) · m / (sqrt(v) / sqrt(1 − β2^t) + eps)
 *   AdamW: θ −= lr wd θ;  then Adam with g' = g. */
#include "seqrec/nn.h"

#include <math.h>
#include <string.h>

/* Per-step constants shared by every range. */
typedef struct {
    sq_optim_kind kind;
    float lr, mu, wd;
    float b1, b2, eps;
    float step_size; /* Adam: lr / (1 − β1^t) */
    float inv_bc2;   /* Adam: 1 / sqrt(1 − β2^t) */
    float decay;     /* AdamW: 1 − lr wd */
} upd_consts;

/* Updates n consecutive floats: values x, gradients g, state m (and v); one thread. */
static void upd_kernel(const upd_consts *k, float *x, const float *g, float *m, float *v,
                       size_t n) {
    const float lr = k->lr, mu = k->mu, wd = k->wd, b1 = k->b1, b2 = k->b2, eps = k->eps;
    const float ss = k->step_size, ib = k->inv_bc2, decay = k->decay;
    switch (k->kind) {
    case SQ_OPTIM_SGD:
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] + wd * x[i];
            m[i] = mu * m[i] + gi;
            x[i] -= lr * m[i];
        }
        break;
    case SQ_OPTIM_ADAM:
    case SQ_OPTIM_ADAMW:
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float xi = x[i] * decay;     /* 1 for Adam */
            float gi = g[i] + wd * x[i]; /* wd is 0 for AdamW here */
            m[i] = b1 * m[i] + (1.0f - b1) * gi;
            v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
            x[i] = xi - ss * m[i] / (sqrtf(v[i]) * ib + eps);
        }
        break;
    }
}

/* The same over a long range, in blocks spread over the threads. */
static void upd_range(const upd_consts *k, float *x, const float *g, float *m, float *v, size_t n) {
    enum { BLOCK = 16384 };
    size_t nb = (n + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static) if (nb > 4)
    for (size_t b = 0; b < nb; b++) {
        size_t o = b * BLOCK, len = n - o < BLOCK ? n - o : BLOCK;
        upd_kernel(k, x + o, g + o, m + o, v ? v + o : NULL, len);
    }
}

sq_status sq_optim_init(sq_optim *opt, const sq_params *ps, const sq_optim_opts *opts,
                        sq_error *err) {
    memset(opt, 0, sizeof *opt);
    if (!ps || !ps->values || !opts)
        return sq_errorf(err, SQ_ERR_ARG, "optimiser: parameters not allocated");
    sq_optim_opts o = *opts;
    if (o.kind != SQ_OPTIM_SGD && o.kind != SQ_OPTIM_ADAM && o.kind != SQ_OPTIM_ADAMW)
        return sq_errorf(err, SQ_ERR_ARG, "optimiser: unknown kind %d", (int)o.kind);
    if (o.beta1 == 0.0f && o.beta2 == 0.0f) {
        o.beta1 = 0.9f;
        o.beta2 = 0.999f;
    }
    if (o.eps == 0.0f)
        o.eps = 1e-8f;
    if (!(o.momentum >= 0.0f && o.momentum < 1.0f) || !(o.beta1 >= 0.0f && o.beta1 < 1.0f) ||
        !(o.beta2 >= 0.0f && o.beta2 < 1.0f) || !(o.eps > 0.0f) || !(o.weight_decay >= 0.0f))
        return sq_errorf(err, SQ_ERR_ARG,
                         "optimiser: need 0 <= momentum, beta1, beta2 < 1, eps > 0, "
                         "weight_decay >= 0");
    size_t blocks = o.kind == SQ_OPTIM_SGD ? 1 : 2;
    float *state = sq_calloc(blocks * ps->total, sizeof *state);
    if (!state)
        return sq_errorf(err, SQ_ERR_NOMEM, "optimiser: state of %zu floats", blocks * ps->total);
    opt->o = o;
    opt->m = state;
    opt->v = blocks == 2 ? state + ps->total : NULL;
    opt->total = ps->total;
    return SQ_OK;
}

void sq_optim_free(sq_optim *opt) {
    if (!opt)
        return;
    sq_free(opt->m);
    memset(opt, 0, sizeof *opt);
}

/* Is tensor p updated row by row (lazily)? */
static int lazy(const sq_optim *opt, const sq_param *p) {
    return p->sparse_rows && !opt->o.sparse_dense;
}

sq_status sq_optim_step(sq_optim *opt, sq_params *ps, float lr, sq_error *err) {
    if (!opt->m || ps->total != opt->total || !ps->values)
        return sq_errorf(err, SQ_ERR_MISMATCH,
                         "optimiser: state for %zu floats, parameters have %zu", opt->total,
                         ps->total);
    if (!(lr >= 0.0f) || !isfinite(lr))
        return sq_errorf(err, SQ_ERR_ARG, "optimiser: learning rate %g", (double)lr);
    const sq_optim_opts *o = &opt->o;
    long t = opt->step + 1;
    upd_consts k = {.kind = o->kind,
                    .lr = lr,
                    .mu = o->momentum,
                    .wd = o->weight_decay,
                    .b1 = o->beta1,
                    .b2 = o->beta2,
                    .eps = o->eps,
                    .decay = 1.0f};
    if (o->kind != SQ_OPTIM_SGD) {
        k.step_size = (float)(lr / (1.0 - pow(o->beta1, (double)t)));
        k.inv_bc2 = (float)(1.0 / sqrt(1.0 - pow(o->beta2, (double)t)));
    }
    if (o->kind == SQ_OPTIM_ADAMW) {
        k.decay = 1.0f - lr * o->weight_decay;
        k.wd = 0.0f;
    }
    float *x = ps->values, *g = ps->grads, *m = opt->m, *v = opt->v;
    for (size_t i = 0; i < ps->n;) {
        const sq_param *p = &ps->p[i];
        if (lazy(opt, p)) {
            const size_t row = p->size / p->shape[0], nt = p->n_touched;
#pragma omp parallel for schedule(static) if (nt * row > 65536)
            for (size_t r = 0; r < nt; r++) {
                size_t off = p->offset + (size_t)p->touched[r] * row;
                upd_kernel(&k, x + off, g + off, m + off, v ? v + off : NULL, row);
            }
            i++;
            continue;
        }
        size_t j = i + 1; /* a run of dense tensors [i, j): one flat range */
        while (j < ps->n && !lazy(opt, &ps->p[j]))
            j++;
        size_t begin = p->offset, end = ps->p[j - 1].offset + ps->p[j - 1].size;
        upd_range(&k, x + begin, g + begin, m + begin, v ? v + begin : NULL, end - begin);
        i = j;
    }
    opt->step = t;
    return SQ_OK;
}

/* ===================================== clipping ===================================== */

/* Sum of squares of a tensor's gradient: all of it, or only the touched rows of a sparse one
 * (one parallel region over the rows: a region per row costs more than its 64 floats). */
static double grad_sumsq(const sq_param *p) {
    const float *g = p->grad;
    double s = 0.0;
    if (!p->sparse_rows) {
        const size_t n = p->size;
#pragma omp parallel for simd reduction(+ : s) schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++)
            s += (double)g[i] * g[i];
        return s;
    }
    const size_t row = p->size / p->shape[0], nr = p->n_touched;
    const uint32_t *tr = p->touched;
#pragma omp parallel for reduction(+ : s) schedule(static) if (nr * row > 65536)
    for (size_t r = 0; r < nr; r++) {
        const float *x = g + (size_t)tr[r] * row;
        double t = 0.0;
#pragma omp simd reduction(+ : t)
        for (size_t i = 0; i < row; i++)
            t += (double)x[i] * x[i];
        s += t;
    }
    return s;
}

static void grad_scale(sq_param *p, float c) {
    float *g = p->grad;
    if (!p->sparse_rows) {
        const size_t n = p->size;
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++)
            g[i] *= c;
        return;
    }
    const size_t row = p->size / p->shape[0], nr = p->n_touched;
    const uint32_t *tr = p->touched;
#pragma omp parallel for schedule(static) if (nr * row > 65536)
    for (size_t r = 0; r < nr; r++) {
        float *x = g + (size_t)tr[r] * row;
#pragma omp simd
        for (size_t i = 0; i < row; i++)
            x[i] *= c;
    }
}

sq_status sq_optim_clip_grad_norm(sq_params *ps, float max_norm, float *norm, sq_error *err) {
    double total = 0.0;
    for (size_t i = 0; i < ps->n; i++)
        total += grad_sumsq(&ps->p[i]);
    double nrm = sqrt(total);
    if (norm)
        *norm = (float)nrm;
    if (!isfinite(nrm))
        return sq_errorf(err, SQ_ERR_NUMERIC, "gradient norm is %g", nrm);
    if (max_norm <= 0.0f || nrm <= max_norm)
        return SQ_OK;
    float c = (float)(max_norm / nrm);
    for (size_t i = 0; i < ps->n; i++)
        grad_scale(&ps->p[i], c);
    return SQ_OK;
}

/* ===================================== schedule ===================================== */

float sq_lr_at(const sq_lr_schedule *s, long step) {
    if (step < 0)
        step = 0;
    if (step < s->warmup)
        return s->lr * (float)(step + 1) / (float)s->warmup;
    if (s->decay == SQ_LR_CONSTANT)
        return s->lr;
    long span = s->total - s->warmup;
    double p = span > 0 ? (double)(step - s->warmup) / (double)span : 1.0;
    if (p > 1.0)
        p = 1.0;
    double f = s->decay == SQ_LR_LINEAR ? 1.0 - p : 0.5 * (1.0 + cos(3.14159265358979323846 * p));
    return (float)(s->min_lr + (s->lr - s->min_lr) * f);
}
