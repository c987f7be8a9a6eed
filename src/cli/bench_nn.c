/* bench_nn.c — `seqrec bench nn`: how fast the neural-network core runs on this machine, in one
 * run: a large square sgemm (the machine's practical peak), then one SASRec training step
 * (forward + full cross-entropy + backward) in two shapes, each as GFLOP/s and as a fraction of
 * the same-run sgemm figure, with the time of every stage. Prints figures; asserts nothing.
 *
 * Ratios on a shared machine. The load of other processes changes within seconds, so each
 * measured step is preceded by one 4096³ sgemm call and the step's ratio is taken against that
 * call; the reported ratio is the median of these per-run ratios (the up-front sgemm median is
 * printed too).
 *
 * FLOP convention (model FLOPs, matrix products only, 2 per multiply-add):
 *   encoder, per block and forward:  QKV 2·N·C·3C + output 2·N·C·C + FFN 2·2·N·C·F
 *                                    + attention 2·2·B·T·T·C (nominal full T×T: scores and A·V)
 *   with N = B·T (every position, padded or not, as the encoder computes them all);
 *   logits: 2·P·n_items·C with P the positions that have a target (non-padded);
 *   backward = 2 × forward for every product (two GEMMs per GEMM); the total is 3 × forward.
 *   Not counted: the cross-entropy's recomputation of logits in its backward pass, element-wise
 *   work (softmax, layer norm, dropout, ...), and the causal/padding work the kernels skip.
 *   The optimiser step is timed with the step (Adam, lr 1e-3, betas 0.9/0.98 as the peer; the
 *   table updated densely: the full softmax touches all of its rows anyway) but not counted.
 *
 * Batches: random item ids, sequence lengths drawn like the real data sets (left padded to T):
 *   MovieLens-1M: users' event counts lognormal with median 96 (σ 1.0, at least 20), as the
 *     peer's synthetic ML-1M log; inputs = the last min(n − 3, 200) training events, so about
 *     55 % of the 128 × 200 positions are real (the peer counts 659,002 of 1,208,000 per epoch);
 *   MovieLens-1M, full: every position real (the worst case for the logits);
 *   Beauty: 5-core, median 6 events (lognormal σ 0.9, at least 5), maxlen 50: most positions are
 *     padding. */
#include "cli/cli.h"
#include "models/sasrec_net.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

int sq_cli_bench_nn(int json, int runs, int threads);

enum { MAX_RUNS = 64 };

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n) {
    double s[MAX_RUNS];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

/* ========================================== sgemm ============================================ */

typedef struct {
    int M, N, K;
    double med, best, gflops; /* seconds (median, best) and GFLOP/s at the median */
} gemm_fig;

/* Operands of C = A B^T with A [M, K], B [N, K] (the layout of the logits GEMM). */
typedef struct {
    int M, N, K;
    float *A, *B, *Cm;
} gemm_buf;

static void gemm_free(gemm_buf *g) {
    sq_free(g->A), sq_free(g->B), sq_free(g->Cm);
    memset(g, 0, sizeof *g);
}

static int gemm_alloc(gemm_buf *g, int M, int N, int K) {
    g->M = M, g->N = N, g->K = K;
    g->A = sq_mallocn((size_t)M * K, sizeof *g->A);
    g->B = sq_mallocn((size_t)N * K, sizeof *g->B);
    g->Cm = sq_mallocn((size_t)M * N, sizeof *g->Cm);
    if (!g->A || !g->B || !g->Cm) {
        gemm_free(g);
        return -1;
    }
    sq_rng r;
    sq_rng_seed(&r, 1);
    for (size_t i = 0; i < (size_t)M * K; i++)
        g->A[i] = sq_rng_uniformf(&r) - 0.5f;
    for (size_t i = 0; i < (size_t)N * K; i++)
        g->B[i] = sq_rng_uniformf(&r) - 0.5f;
    return 0;
}

/* Seconds of one call. */
static double gemm_once(const gemm_buf *g) {
    double t0 = sq_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->M, g->N, g->K, 1.0f, g->A, g->K, g->B,
                g->K, 0.0f, g->Cm, g->N);
    return sq_now() - t0;
}

static double gemm_gflops(const gemm_buf *g, double seconds) {
    return 2.0 * g->M * g->N * (double)g->K / seconds / 1e9;
}

/* Median of runs after one warm-up call. */
static void bench_sgemm(gemm_fig *f, const gemm_buf *g, int runs) {
    double t[MAX_RUNS];
    gemm_once(g);
    for (int i = 0; i < runs; i++)
        t[i] = gemm_once(g);
    f->M = g->M, f->N = g->N, f->K = g->K;
    f->med = median(t, runs);
    f->best = f->med;
    for (int i = 0; i < runs; i++)
        f->best = t[i] < f->best ? t[i] : f->best;
    f->gflops = gemm_gflops(g, f->med);
}

/* ======================================= SASRec step ========================================= */

typedef struct {
    const char *name;  /* "ml1m" */
    const char *about; /* one line */
    int B, T, items;   /* batch, maxlen, catalogue */
    double len_median; /* user event counts: lognormal median ... */
    double len_sigma;  /* ... and σ of the log; 0: every position real */
    int len_min;       /* ... at least this many events */
} shape;

typedef struct {
    long positions, targets;                       /* B·T and the non-padded (target) positions */
    double gflop, gflop_enc, gflop_attn, gflop_ce; /* model FLOPs of one step (see the top) */
    double med, best;                              /* seconds per step */
    double gflops;                                 /* at the median */
    double ratio;     /* median over runs of (step GFLOP/s / the sgemm run just before it) */
    double sgemm_adj; /* median GFLOP/s of those sgemm runs */
    float loss;       /* of the first measured step */
    double stage[SQ_SASREC_N_STAGES]; /* mean seconds per stage over the runs */
    double adam;                      /* mean seconds of the optimiser step */
    double other;                     /* step time not in a stage (zero_grad, ...) */
    size_t arena_peak;                /* bytes of activations and scratch one step used */
} step_fig;

/* One batch like the data set: per sequence a length n drawn as the shape says, then
 * min(n − 3, T) real positions at the right end (the training inputs of a leave-one-out
 * split: n − 2 training events give n − 3 input/target pairs), random items. */
static void make_batch(const shape *s, uint32_t *in, uint32_t *tg, sq_rng *r) {
    for (int b = 0; b < s->B; b++) {
        int len = s->T;
        if (s->len_sigma > 0) {
            double n = exp(log(s->len_median) + s->len_sigma * sq_rng_normal(r));
            n = n < s->len_min ? s->len_min : n;
            len = (int)n - 3 < s->T ? (int)n - 3 : s->T;
            len = len < 1 ? 1 : len;
        }
        uint32_t *ib = in + (size_t)b * s->T, *tb = tg + (size_t)b * s->T;
        for (int t = 0; t < s->T; t++) {
            int real = t >= s->T - len;
            ib[t] = real ? 1 + sq_rng_below(r, (uint32_t)s->items) : 0;
            tb[t] = real ? 1 + sq_rng_below(r, (uint32_t)s->items) : 0;
        }
    }
}

static void count_flops(const sq_sasrec_config *c, const shape *s, step_fig *f) {
    const double B = s->B, T = s->T, N = B * T, C = c->hidden, F = c->ffn;
    double attn = 2.0 * 2.0 * B * T * T * C;
    double enc = c->blocks * (2.0 * N * C * 3 * C + 2.0 * N * C * C + 2.0 * 2.0 * N * C * F + attn);
    double ce = 2.0 * (double)f->targets * c->n_items * C;
    f->gflop_enc = 3.0 * enc / 1e9;
    f->gflop_attn = 3.0 * c->blocks * attn / 1e9;
    f->gflop_ce = 3.0 * ce / 1e9;
    f->gflop = f->gflop_enc + f->gflop_ce;
}

/* Each measured step follows one reference sgemm call, so that each step's ratio compares two
 * figures taken under the same load (the machine may be shared). */
static int bench_step(const shape *s, int runs, const gemm_buf *ref, step_fig *f, sq_error *err) {
    memset(f, 0, sizeof *f);
    sq_sasrec_config c;
    sq_sasrec_config_default(&c, s->items, s->T);
    sq_sasrec_net net;
    sq_optim opt;
    memset(&opt, 0, sizeof opt);
    sq_arena *a = NULL;
    uint32_t *in = NULL, *tg = NULL;
    int rc = -1;
    if (sq_sasrec_net_init(&net, &c, err))
        return -1;
    sq_rng rng;
    sq_rng_seed(&rng, 42);
    sq_sasrec_net_reset(&net, &rng);
    /* the full softmax touches every table row each step, so a dense update of the table is the
     * same update as a lazy one (row 0 has zero gradient and moments: it stays 0) and one flat
     * pass is cheaper than row by row */
    const sq_optim_opts oo = {
        .kind = SQ_OPTIM_ADAM, .beta1 = 0.9f, .beta2 = 0.98f, .sparse_dense = 1};
    if (sq_optim_init(&opt, &net.ps, &oo, err))
        goto done;
    size_t N = (size_t)s->B * s->T;
    in = sq_mallocn(N, sizeof *in);
    tg = sq_mallocn(N, sizeof *tg);
    a = sq_arena_create(sq_sasrec_net_scratch(&c, s->B, s->T));
    if (!in || !tg || !a) {
        sq_errorf(err, SQ_ERR_NOMEM, "bench nn: out of memory");
        goto done;
    }
    make_batch(s, in, tg, &rng);
    f->positions = (long)N;
    for (size_t i = 0; i < N; i++)
        f->targets += tg[i] != 0;
    count_flops(&c, s, f);

    double t[MAX_RUNS], ratio[MAX_RUNS], sg[MAX_RUNS];
    for (int i = -1; i < runs; i++) {
        if (i >= 0)
            sg[i] = gemm_gflops(
                ref, gemm_once(ref)); /* run -1 warms up the arena pages and the caches */
        sq_sasrec_timing tm;
        memset(&tm, 0, sizeof tm);
        float loss;
        double t0 = sq_now();
        sq_params_zero_grad(&net.ps);
        if (sq_sasrec_net_step(&net, a, in, tg, s->B, s->T, &rng, &loss, NULL, &tm, err))
            goto done;
        sq_arena_reset(a);
        double t1 = sq_now();
        if (sq_optim_step(&opt, &net.ps, 1e-3f, err))
            goto done;
        double dt = sq_now() - t0;
        if (i >= 0)
            f->adam += (sq_now() - t1) / runs;
        if (i < 0)
            continue;
        t[i] = dt;
        ratio[i] = f->gflop / dt / sg[i];
        if (i == 0)
            f->loss = loss;
        for (int k = 0; k < SQ_SASREC_N_STAGES; k++)
            f->stage[k] += sq_sasrec_timing_get(&tm, k) / runs;
    }
    double sum_stages = 0.0;
    for (int k = 0; k < SQ_SASREC_N_STAGES; k++)
        sum_stages += f->stage[k];
    sum_stages += f->adam;
    double mean = 0.0;
    for (int i = 0; i < runs; i++)
        mean += t[i] / runs;
    f->other = mean - sum_stages > 0 ? mean - sum_stages : 0.0;
    f->arena_peak = sq_arena_peak(a);
    f->med = median(t, runs);
    f->best = t[0];
    for (int i = 0; i < runs; i++)
        f->best = t[i] < f->best ? t[i] : f->best;
    f->gflops = f->gflop / f->med;
    f->ratio = median(ratio, runs);
    f->sgemm_adj = median(sg, runs);
    rc = 0;
done:
    sq_optim_free(&opt);
    sq_arena_free(a);
    sq_free(in);
    sq_free(tg);
    sq_sasrec_net_free(&net);
    return rc;
}

/* ========================================== Output =========================================== */

static const shape SHAPES[] = {
    {"ml1m", "MovieLens-1M: batch 128, length 200, 3,416 items, data-like lengths", 128, 200, 3416,
     96.0, 1.0, 20},
    {"ml1m_full", "MovieLens-1M shape with every position real (worst case for the logits)", 128,
     200, 3416, 0.0, 0.0, 0},
    {"beauty", "Amazon Beauty: batch 128, length 50, 54,542 items, data-like lengths", 128, 50,
     54542, 6.0, 0.9, 5},
};
enum { N_SHAPES = (int)(sizeof SHAPES / sizeof *SHAPES) };

static const char *FLOP_CONVENTION =
    "model FLOPs of matrix products, 2 per multiply-add; encoder at all B*T positions with "
    "nominal full TxT attention (scores and A*V); logits over all items at the non-padded "
    "(target) positions only; backward = 2x forward; total = 3x forward; the cross-entropy's "
    "recomputation of logits and element-wise work are not counted";

/* 1 when name is one of the comma-separated words of list. */
static int listed(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        size_t w = strcspn(p, ",");
        if (w == n && !strncmp(p, name, n))
            return 1;
        p += w + (p[w] == ',');
    }
    return 0;
}

static const char *blas_parallel(void) {
    switch (openblas_get_parallel()) {
    case 0:
        return "sequential";
    case 1:
        return "pthreads";
    case 2:
        return "openmp";
    }
    return "unknown";
}

static void print_text(int threads, const gemm_fig *sq, const gemm_fig *lg, const step_fig *f) {
    const char *wp = getenv("OMP_WAIT_POLICY");
    printf("seqrec bench nn: %d threads, OpenBLAS %s (%s), OMP_WAIT_POLICY=%s\n", threads,
           openblas_get_config(), blas_parallel(), wp ? wp : "(unset)");
    printf("sgemm %dx%dx%d: %.1f GFLOP/s (median %.4f s; each step below is also paired with one "
           "such call just before it)\n",
           sq->M, sq->N, sq->K, sq->gflops, sq->med);
    printf("sgemm %dx%dx%d (the logits GEMM of ML-1M): %.1f GFLOP/s (%.0f %% of the above)\n",
           lg->M, lg->N, lg->K, lg->gflops, 100.0 * lg->gflops / sq->gflops);
    printf("FLOPs: %s.\nThe step includes zero_grad and an Adam update (timed, not counted).\n",
           FLOP_CONVENTION);
    for (int i = 0; i < N_SHAPES; i++) {
        const shape *s = &SHAPES[i];
        const step_fig *g = &f[i];
        if (!g->positions)
            continue; /* not run */
        printf("\n%s — %s\n", s->name, s->about);
        printf("  positions %ld, non-padded %ld (%.1f %%); model %.2f GFLOP (encoder %.2f of which "
               "attention %.2f, logits %.2f)\n",
               g->positions, g->targets, 100.0 * g->targets / g->positions, g->gflop, g->gflop_enc,
               g->gflop_attn, g->gflop_ce);
        printf("  activations and scratch: %.0f MiB (arena peak)\n", g->arena_peak / 1048576.0);
        printf("  step: median %.4f s (best %.4f) = %.1f GFLOP/s = %.1f %% of sgemm (median of "
               "per-run ratios to the sgemm run just before, %.1f GFLOP/s)   loss %.4f\n",
               g->med, g->best, g->gflops, 100.0 * g->ratio, g->sgemm_adj, g->loss);
        double total = g->other + g->adam;
        for (int k = 0; k < SQ_SASREC_N_STAGES; k++)
            total += g->stage[k];
        printf("  stage        seconds      %%\n");
        for (int k = 0; k < SQ_SASREC_N_STAGES; k++) {
            double v = g->stage[k];
            printf("  %-10s %9.4f  %5.1f\n", sq_sasrec_timing_name(k), v, 100.0 * v / total);
        }
        printf("  %-10s %9.4f  %5.1f\n", "adam", g->adam, 100.0 * g->adam / total);
        printf("  %-10s %9.4f  %5.1f\n", "other", g->other, 100.0 * g->other / total);
    }
}

static void add_gemm(cJSON *o, const char *key, const gemm_fig *g) {
    cJSON *x = cJSON_AddObjectToObject(o, key);
    cJSON_AddNumberToObject(x, "m", g->M);
    cJSON_AddNumberToObject(x, "n", g->N);
    cJSON_AddNumberToObject(x, "k", g->K);
    cJSON_AddNumberToObject(x, "seconds_median", g->med);
    cJSON_AddNumberToObject(x, "seconds_best", g->best);
    cJSON_AddNumberToObject(x, "gflops", g->gflops);
}

static void print_json(int threads, int runs, const gemm_fig *sq, const gemm_fig *lg,
                       const step_fig *f) {
    const char *wp = getenv("OMP_WAIT_POLICY");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "bench", "nn");
    cJSON_AddNumberToObject(o, "threads", threads);
    cJSON_AddNumberToObject(o, "runs", runs);
    cJSON_AddStringToObject(o, "openblas", openblas_get_config());
    cJSON_AddStringToObject(o, "openblas_parallel", blas_parallel());
    cJSON_AddStringToObject(o, "omp_wait_policy", wp ? wp : "");
    cJSON_AddBoolToObject(o, "adam_included", 1);
    cJSON_AddStringToObject(o, "flop_convention", FLOP_CONVENTION);
    add_gemm(o, "sgemm", sq);
    add_gemm(o, "sgemm_logits_shape", lg);
    cJSON *arr = cJSON_AddArrayToObject(o, "sasrec_step");
    for (int i = 0; i < N_SHAPES; i++) {
        const shape *s = &SHAPES[i];
        const step_fig *g = &f[i];
        if (!g->positions)
            continue; /* not run */
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "shape", s->name);
        cJSON_AddNumberToObject(x, "batch", s->B);
        cJSON_AddNumberToObject(x, "maxlen", s->T);
        cJSON_AddNumberToObject(x, "items", s->items);
        cJSON_AddNumberToObject(x, "hidden", 64);
        cJSON_AddNumberToObject(x, "blocks", 2);
        cJSON_AddNumberToObject(x, "heads", 1);
        cJSON_AddNumberToObject(x, "dropout", 0.2);
        cJSON_AddNumberToObject(x, "positions", (double)g->positions);
        cJSON_AddNumberToObject(x, "non_padded", (double)g->targets);
        cJSON_AddNumberToObject(x, "gflop", g->gflop);
        cJSON_AddNumberToObject(x, "gflop_encoder", g->gflop_enc);
        cJSON_AddNumberToObject(x, "gflop_attention", g->gflop_attn);
        cJSON_AddNumberToObject(x, "gflop_logits", g->gflop_ce);
        cJSON_AddNumberToObject(x, "seconds_median", g->med);
        cJSON_AddNumberToObject(x, "seconds_best", g->best);
        cJSON_AddNumberToObject(x, "gflops", g->gflops);
        cJSON_AddNumberToObject(x, "ratio_to_sgemm", g->ratio);
        cJSON_AddNumberToObject(x, "sgemm_gflops_interleaved", g->sgemm_adj);
        cJSON_AddNumberToObject(x, "loss", g->loss);
        cJSON_AddNumberToObject(x, "arena_peak_bytes", (double)g->arena_peak);
        cJSON *st = cJSON_AddObjectToObject(x, "stages_seconds");
        for (int k = 0; k < SQ_SASREC_N_STAGES; k++)
            cJSON_AddNumberToObject(st, sq_sasrec_timing_name(k), g->stage[k]);
        cJSON_AddNumberToObject(st, "adam", g->adam);
        cJSON_AddNumberToObject(st, "other", g->other);
        cJSON_AddItemToArray(arr, x);
    }
    char *txt = cJSON_PrintUnformatted(o);
    if (txt)
        puts(txt);
    cJSON_free(txt);
    cJSON_Delete(o);
}

/* `seqrec bench nn [--json] [--runs R] [--threads N]`: threads <= 0 keeps the default (OpenMP's
 * and OpenBLAS's own); runs is clamped to 1..64 (5 is a good default). Returns the exit code. */
int sq_cli_bench_nn(int json, int runs, int threads) {
    runs = runs < 1 ? 1 : (runs > MAX_RUNS ? MAX_RUNS : runs);
    if (threads > 0) {
#ifdef _OPENMP
        omp_set_num_threads(threads);
#endif
        openblas_set_num_threads(threads);
    }
#ifdef _OPENMP
    threads = omp_get_max_threads();
#else
    threads = 1;
#endif
    sq_error err = {0};
    gemm_fig sq, lg;
    if (!json)
        fprintf(stderr, "bench nn: sgemm...\n");
    gemm_buf ref, lgb;
    if (gemm_alloc(&ref, 4096, 4096, 4096) || gemm_alloc(&lgb, 25600, 3416, 64)) {
        gemm_free(&ref);
        fprintf(stderr, "seqrec bench: out of memory\n");
        return 1;
    }
    bench_sgemm(&sq, &ref, runs);
    bench_sgemm(&lg, &lgb, runs);
    gemm_free(&lgb);
    step_fig f[N_SHAPES];
    memset(f, 0, sizeof f);
    const char *only = getenv("SEQREC_BENCH_NN_SHAPES"); /* e.g. "ml1m,beauty": a subset */
    for (int i = 0; i < N_SHAPES; i++) {
        if (only && !listed(only, SHAPES[i].name))
            continue;
        if (!json)
            fprintf(stderr, "bench nn: SASRec step, %s...\n", SHAPES[i].name);
        if (bench_step(&SHAPES[i], runs, &ref, &f[i], &err)) {
            gemm_free(&ref);
            return sq_cli_fail("bench", &err);
        }
    }
    gemm_free(&ref);
    if (json)
        print_json(threads, runs, &sq, &lg, f);
    else
        print_text(threads, &sq, &lg, f);
    return 0;
}
