/* scene_towers.c — scene-specific towers over the experts' task outputs (nn_experts.h): task
 * t's rows of scene s go through their own ReLU layer (W_{t,s}, b_{t,s}).
 *
 * Forward sorts the rows by scene once (stable counting sort: perm, start), gathers each task's
 * rows in that order, and runs one GEMM per (task, scene) copy over the copy's contiguous rows;
 * the outputs are scattered back to the row order. Backward gathers dy the same way, masks it
 * by the ReLU, and one GEMM per copy gives the copy's parameter gradients (summed over its rows
 * inside BLAS) and the gathered dx, which is scattered back and added. */
#include "seqrec/nn_experts.h"

#include <string.h>

int sq_nn_scene_towers_init(sq_nn_scene_towers *l, sq_params *ps, const char *prefix, int H,
                            int n_tasks, int n_scenes) {
    memset(l, 0, sizeof *l);
    l->w = l->b = -1;
    if (H < 1 || n_tasks < 1 || n_tasks > SQ_EXPERTS_MAX_TASKS || n_scenes < 1 ||
        n_scenes > 65536 || (long long)n_tasks * n_scenes * H > (1LL << 31) / H)
        return -1;
    l->H = H;
    l->n_tasks = n_tasks;
    l->n_scenes = n_scenes;
    size_t TS = (size_t)n_tasks * n_scenes, ws[3] = {TS, (size_t)H, (size_t)H},
           bs[2] = {TS, (size_t)H};
    if ((l->w = sq_nn_declare(ps, prefix, "w", 3, ws, 0)) < 0 ||
        (l->b = sq_nn_declare(ps, prefix, "b", 2, bs, 0)) < 0)
        return -1;
    return 0;
}

void sq_nn_scene_towers_reset(const sq_nn_scene_towers *l, sq_params *ps, sq_rng *rng) {
    const int H = l->H, TS = l->n_tasks * l->n_scenes;
    float *w = sq_nn_val(ps, l->w);
    for (int i = 0; i < TS; i++)
        sq_nn_fill_xavier(w + (size_t)i * H * H, H, H, rng);
    sq_nn_fill(sq_nn_val(ps, l->b), (size_t)TS * H, 0.0f);
}

sq_status sq_nn_scene_towers_forward(const sq_nn_scene_towers *l, const sq_params *ps, sq_arena *a,
                                     sq_nn_scene_towers_acts *acts, float *y, const float *x,
                                     const uint16_t *scene, int N, sq_error *err) {
    memset(acts, 0, sizeof *acts);
    const int H = l->H, T = l->n_tasks, S = l->n_scenes;
    if (N < 0)
        return sq_errorf(err, SQ_ERR_ARG, "scene towers: N = %d", N);
    for (int n = 0; scene && n < N; n++)
        if (scene[n] >= S)
            return sq_errorf(err, SQ_ERR_ARG, "scene towers: scene[%d] = %u >= n_scenes %d", n,
                             (unsigned)scene[n], S);
    const size_t R = (size_t)(N ? N : 1), TNH = (size_t)T * R * H;
    acts->N = N;
    acts->perm = sq_arena_alloc(a, R * sizeof *acts->perm);
    acts->start = sq_arena_calloc(a, (size_t)(S + 1) * sizeof *acts->start);
    acts->x = sq_arena_alloc(a, TNH * sizeof(float));
    acts->h = sq_arena_alloc(a, TNH * sizeof(float));
    if (!acts->perm || !acts->start || !acts->x || !acts->h)
        return sq_errorf(err, SQ_ERR_NOMEM, "scene towers: arena full");
    int *start = acts->start;
    for (int n = 0; n < N; n++)
        start[(scene ? scene[n] : 0) + 1]++;
    for (int s = 0; s < S; s++)
        start[s + 1] += start[s];
    for (int n = 0, *next = start; n < N; n++) /* stable: start[s] walks to start[s + 1] */
        acts->perm[next[scene ? scene[n] : 0]++] = n;
    for (int s = S; s > 0; s--) /* undo the walk: start[s] is scene s's first row again */
        start[s] = start[s - 1];
    start[0] = 0;
    const float *W = sq_nn_val(ps, l->w), *b = sq_nn_val(ps, l->b);
    for (int t = 0; t < T; t++) {
        const size_t off = (size_t)t * N * H;
        float *xs = acts->x + off, *hs = acts->h + off;
        for (int i = 0; i < N; i++)
            memcpy(xs + (size_t)i * H, x + off + (size_t)acts->perm[i] * H,
                   (size_t)H * sizeof(float));
        for (int s = 0; s < S; s++) {
            int lo = start[s], cnt = start[s + 1] - lo;
            if (cnt > 0)
                sq_nn_linear_forward(hs + (size_t)lo * H, xs + (size_t)lo * H,
                                     W + ((size_t)t * S + s) * H * H, b + ((size_t)t * S + s) * H,
                                     cnt, H, H);
        }
        sq_nn_relu_forward(hs, hs, (size_t)N * H);
        for (int i = 0; i < N; i++)
            memcpy(y + off + (size_t)acts->perm[i] * H, hs + (size_t)i * H,
                   (size_t)H * sizeof(float));
    }
    return SQ_OK;
}

sq_status sq_nn_scene_towers_backward(const sq_nn_scene_towers *l, sq_params *ps, sq_arena *a,
                                      const sq_nn_scene_towers_acts *acts, float *dx,
                                      const float *dy, sq_error *err) {
    const int H = l->H, T = l->n_tasks, S = l->n_scenes, N = acts->N;
    if (N == 0)
        return SQ_OK;
    float *dh = sq_arena_alloc(a, (size_t)N * H * sizeof(float));
    float *dxs = dx ? sq_arena_alloc(a, (size_t)N * H * sizeof(float)) : NULL;
    if (!dh || (dx && !dxs))
        return sq_errorf(err, SQ_ERR_NOMEM, "scene towers: arena full (backward)");
    const float *W = sq_nn_val(ps, l->w);
    float *dW = sq_nn_grad(ps, l->w), *db = sq_nn_grad(ps, l->b);
    for (int t = 0; t < T; t++) {
        const size_t off = (size_t)t * N * H;
        const float *xs = acts->x + off, *hs = acts->h + off;
        for (int i = 0; i < N; i++)
            memcpy(dh + (size_t)i * H, dy + off + (size_t)acts->perm[i] * H,
                   (size_t)H * sizeof(float));
        for (size_t k = 0; k < (size_t)N * H; k++)
            dh[k] = hs[k] > 0.0f ? dh[k] : 0.0f;
        if (dxs)
            memset(dxs, 0, (size_t)N * H * sizeof(float));
        for (int s = 0; s < S; s++) {
            int lo = acts->start[s], cnt = acts->start[s + 1] - lo;
            size_t c = (size_t)t * S + s;
            if (cnt > 0)
                sq_nn_linear_backward(dxs ? dxs + (size_t)lo * H : NULL, dW + c * H * H, db + c * H,
                                      dh + (size_t)lo * H, xs + (size_t)lo * H, W + c * H * H, cnt,
                                      H, H);
        }
        for (int i = 0; dxs && i < N; i++) {
            float *d = dx + off + (size_t)acts->perm[i] * H;
            const float *g = dxs + (size_t)i * H;
            for (int k = 0; k < H; k++)
                d[k] += g[k];
        }
    }
    return SQ_OK;
}
