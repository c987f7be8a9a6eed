/* mt_net.c — the multi-task network of mt_net.h: parameters, forward, task heads and losses,
 * backward, inference. */
#include "models/mt_net.h"
#include "seqrec/nn_loss.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

static size_t a64(size_t b) {
    return (b + 63) & ~(size_t)63;
}

static int has(const mt_net *n, sq_task t) {
    return (n->cfg.tasks >> t) & 1u;
}

/* ======================================== Parameters ========================================= */

uint32_t mt_value_bucket(const mt_config *c, float v) {
    if (!(v == v) || c->n_value_edges <= 0)
        return 0;
    uint32_t b = 1; /* edges e0 < e1 < …: v < e1 → 1, e_k <= v < e_k+1 → k + 1 */
    for (int k = 1; k < c->n_value_edges && v >= c->value_edges[k]; k++)
        b = (uint32_t)k + 1;
    return b;
}

static int table(sq_params *ps, const char *name, size_t rows, int C) {
    size_t shape[2] = {rows ? rows : 1, (size_t)C};
    return sq_params_declare(ps, name, 2, shape, 1);
}

sq_status mt_net_init(mt_net *n, const mt_config *c, sq_rng *rng, sq_error *err) {
    memset(n, 0, sizeof *n);
    n->cfg = *c;
    sq_status rc = sq_sasrec_net_declare(&n->enc, &c->enc, err);
    if (rc)
        return rc;
    sq_params *ps = &n->enc.ps;
    const int C = c->enc.hidden, H = c->expert_hidden, nb = (int)(c->n_beh ? c->n_beh : 1);
    int bad = 0;
    n->fk[0] = MT_F_ITEM;
    n->ftab[0] = n->enc.item_emb;
    n->F = 1;
    if (c->use_beh) {
        n->fk[n->F] = MT_F_BEH;
        n->ftab[n->F++] = table(ps, "f.beh", (size_t)nb, C);
    }
    if (c->use_gap) {
        n->fk[n->F] = MT_F_GAP;
        n->ftab[n->F++] = table(ps, "f.gap", SQ_GAP_BUCKETS, C);
    }
    if (c->n_value_edges > 0) {
        n->fk[n->F] = MT_F_VALUE;
        n->ftab[n->F++] = table(ps, "f.value", (size_t)c->n_value_edges + 1, C);
    }
    if (c->use_tags) {
        n->fk[n->F] = MT_F_TAGS;
        n->ftab[n->F++] = table(ps, "f.tags", c->n_tags, C);
    }
    for (int k = 0; k < c->n_uattr; k++) {
        char name[32];
        snprintf(name, sizeof name, "u.attr%d", k);
        n->uattr_tab[k] = table(ps, name, c->uattr_size[k], C);
        bad |= n->uattr_tab[k] < 0;
    }
    int scene_tab = -1, *ctx_tab = n->ctx_tab;
    if (c->use_scene || c->request) {
        scene_tab = table(ps, "f.scene", c->n_scenes, C);
        bad |= scene_tab < 0;
    }
    for (int k = 0; k < c->n_ctx_used; k++) {
        char name[32];
        snprintf(name, sizeof name, "f.ctx%d", k);
        ctx_tab[k] = table(ps, name, c->ctx_size[k], C);
        bad |= ctx_tab[k] < 0;
    }
    if (c->use_scene) {
        n->fk[n->F] = MT_F_SCENE;
        n->ftab[n->F++] = scene_tab;
    }
    for (int k = 0; k < c->n_ctx_used; k++) {
        n->fk[n->F] = MT_F_CTX;
        n->fctx[n->F] = k;
        n->ftab[n->F++] = ctx_tab[k];
    }
    for (int f = 0; f < n->F; f++)
        bad |= n->ftab[f] < 0;
    n->scene_tab = scene_tab;
    bad |= sq_nn_fuse_init(&n->fuse, ps, "fuse", c->fusion, n->F, C) < 0;
    if (c->user_features)
        bad |= sq_nn_linear_init(&n->ufeat, ps, "ufeat", 1 + nb, C, 1) < 0;
    n->n_slots = 0;
    for (int t = 0; t < SQ_TASK_N; t++)
        n->slot[t] = has(n, (sq_task)t) ? n->n_slots++ : -1;
    bad |=
        sq_nn_experts_init(&n->ex, ps, "experts", c->sharing, C, H, n->n_slots, c->experts,
                           c->task_experts, c->levels, c->scene_gates ? (int)c->n_scenes : 1) < 0;
    if (c->scene_towers)
        bad |=
            sq_nn_scene_towers_init(&n->towers, ps, "towers", H, n->n_slots, (int)c->n_scenes) < 0;
    if (has(n, SQ_TASK_NEXT_ITEM))
        bad |= sq_nn_linear_init(&n->item_tower, ps, "head.item", H, C, 0) < 0;
    if (has(n, SQ_TASK_NEXT_BEH))
        bad |= sq_nn_linear_init(&n->beh_head, ps, "head.beh", H, nb, 1) < 0;
    n->val_item = -1;
    if (has(n, SQ_TASK_VALUE)) {
        size_t vb[2] = {(size_t)c->enc.n_items + 1, 1};
        n->val_item = sq_params_declare(ps, "head.value_item", 2, vb, 1);
        bad |= n->val_item < 0 || sq_nn_linear_init(&n->val_lin, ps, "head.value", H, 1, 1) < 0 ||
               sq_nn_linear_init(&n->val_proj, ps, "head.value_proj", H, C, 0) < 0;
    }
    const int TI = H + (c->cand_history ? 2 : 1) * C; /* a tower's input [y; e (; m)] */
    n->hist_last = n->hist_dist = n->hist_seen = -1;
    if (c->cand_history && (has(n, SQ_TASK_CLICK) || has(n, SQ_TASK_BUY))) {
        n->hist_last = table(ps, "head.hist_last", (size_t)nb + 1, C);
        n->hist_dist = table(ps, "head.hist_dist", MT_HIST_BUCKETS, C);
        n->hist_seen = table(ps, "head.hist_seen", (size_t)nb, C);
        bad |= n->hist_last < 0 || n->hist_dist < 0 || n->hist_seen < 0;
    }
    if (has(n, SQ_TASK_CLICK) || has(n, SQ_TASK_BUY))
        bad |= sq_nn_linear_init(&n->ctr1, ps, "head.ctr1", TI, C, 1) < 0 ||
               sq_nn_linear_init(&n->ctr2, ps, "head.ctr2", C, 1, 1) < 0;
    if (has(n, SQ_TASK_BUY))
        bad |= sq_nn_linear_init(&n->cvr1, ps, "head.cvr1", TI, C, 1) < 0 ||
               sq_nn_linear_init(&n->cvr2, ps, "head.cvr2", C, 1, 1) < 0;
    n->logvar = -1;
    if (c->uncertainty) {
        size_t s1[1] = {SQ_TASK_N};
        n->logvar = sq_params_declare(ps, "task_logvar", 1, s1, 0);
        bad |= n->logvar < 0;
    }
    if (bad) {
        sq_params_free(ps);
        return sq_errorf(err, SQ_ERR_NOMEM, "multi-task network: declaring parameters failed");
    }
    if ((rc = sq_params_alloc(ps, err))) {
        sq_params_free(ps);
        return rc;
    }
    sq_sasrec_net_reset(&n->enc, rng);
    for (int f = 1; f < n->F; f++) {
        const sq_param *p = &ps->p[n->ftab[f]];
        sq_nn_fill_xavier(p->data, (int)p->shape[0], C, rng);
    }
    for (int k = 0; k < c->n_uattr; k++) {
        const sq_param *p = &ps->p[n->uattr_tab[k]];
        sq_nn_fill_xavier(p->data, (int)p->shape[0], C, rng);
    }
    const int hist[] = {n->hist_last, n->hist_dist, n->hist_seen};
    for (int k = 0; k < 3; k++)
        if (hist[k] >= 0) {
            const sq_param *p = &ps->p[hist[k]];
            sq_nn_fill_xavier(p->data, (int)p->shape[0], C, rng);
        }
    if (scene_tab >= 0 && !c->use_scene) {
        const sq_param *p = &ps->p[scene_tab];
        sq_nn_fill_xavier(p->data, (int)p->shape[0], C, rng);
    }
    sq_nn_fuse_reset(&n->fuse, ps, rng);
    if (c->user_features)
        sq_nn_linear_reset(&n->ufeat, ps, rng);
    sq_nn_experts_reset(&n->ex, ps, rng);
    sq_nn_linear *lin[] = {&n->item_tower, &n->beh_head, &n->val_lin, &n->val_proj,
                           &n->ctr1,       &n->ctr2,     &n->cvr1,    &n->cvr2};
    for (size_t i = 0; i < sizeof lin / sizeof *lin; i++)
        if (lin[i]->C)
            sq_nn_linear_reset(lin[i], ps, rng);
    if (c->scene_towers)
        sq_nn_scene_towers_reset(&n->towers, ps, rng);
    return SQ_OK;
}

void mt_net_free(mt_net *n) {
    if (n)
        sq_sasrec_net_free(&n->enc);
}

size_t mt_net_scratch(const mt_net *n, int B, int T) {
    const size_t N = (size_t)B * T, C = (size_t)n->cfg.enc.hidden, H = (size_t)n->cfg.expert_hidden;
    const size_t F = (size_t)n->F, S = (size_t)n->n_slots;
    const size_t E = (size_t)(n->cfg.experts + n->cfg.task_experts * (int)S + 2) *
                     (size_t)(n->cfg.levels > 0 ? n->cfg.levels : 1);
    size_t b = sq_sasrec_net_scratch(&n->cfg.enc, B, T);
    b += 4 * a64(N * F * C * 4) + 3 * a64(N * F * 4); /* X, dX, fusion */
    b += 12 * a64(N * C * 4) + 8 * a64(N * 4) + a64(N * (n->cfg.n_ctx_used + 2) * 4);
    b += a64(N * S * H * 4) * 2 + E * 6 * a64(N * (H + C) * 4) + E * 4 * a64(N * (E + 2) * 4);
    b += 10 * a64(N * (H + 2 * C) * 4) + 4 * a64(N * (n->cfg.n_beh + 2) * 4);
    b += 2 * a64(N * C * 4) + a64(N * 4 * 4); /* the candidates' history: m, dm, ids */
    if (n->cfg.scene_towers) /* perm, start, x, h, y, dh, dx, the experts' dy */
        b += 2 * a64(N * 4) + a64(((size_t)n->cfg.n_scenes + 1) * 4) + 4 * a64(N * S * H * 4) +
             2 * a64(N * H * 4);
    return b + (1u << 20);
}

/* ========================================== Forward ========================================== */

typedef struct {
    int N, M;      /* positions, selected rows */
    float *X;      /* [N, F, C] field embeddings */
    uint32_t *fid; /* [F, N] the ids looked up per field */
    sq_nn_fuse_acts fz;
    float *xin; /* [N, C] fused */
    sq_sasrec_acts enc;
    float *hp;     /* [N, C] h + U u */
    int *sel;      /* [M] selected positions */
    float *z;      /* [M, C] hp[sel] + r */
    uint16_t *sc;  /* [M] gate scenes, or NULL */
    uint32_t *rid; /* [(1 + n_ctx_used), M] request ids: scene, ctx k */
    sq_nn_experts_acts ex;
    float *ye;                      /* [n_slots, M, H] the experts' outputs (scene_towers) */
    sq_nn_scene_towers_acts towers; /* scene_towers */
    float *y;                       /* [n_slots, M, H] the heads' inputs */
} fwd;

/* Position n's id of field f. */
static uint32_t field_id(const mt_net *n, const mt_inputs *in, int f, int p) {
    switch (n->fk[f]) {
    case MT_F_ITEM:
        return in->ids[p];
    case MT_F_BEH:
        return in->beh[p] < n->cfg.n_beh ? in->beh[p] : 0;
    case MT_F_GAP:
        return in->gap[p] < SQ_GAP_BUCKETS ? in->gap[p] : 0;
    case MT_F_VALUE:
        return in->vbucket[p] <= (uint32_t)n->cfg.n_value_edges ? in->vbucket[p] : 0;
    case MT_F_TAGS:
        return 0; /* a bag of tags, looked up by tags_forward */
    case MT_F_SCENE:
        return in->scene[p] < n->cfg.n_scenes ? in->scene[p] : 0;
    case MT_F_CTX: {
        int k = n->fctx[f];
        uint32_t v = in->ctx[(size_t)p * in->n_ctx + (size_t)k];
        return v < n->cfg.ctx_size[k] ? v : 0;
    }
    }
    return 0;
}

/* The tags of position p's item as tag_ids[*lo .. *hi), and the weight √C / count of each in
 * the mean (0: no item, no tag lists, or no tags). */
static float tag_bag(const mt_net *n, const mt_inputs *in, int p, float sc, uint32_t *lo,
                     uint32_t *hi) {
    uint32_t it = in->ids[p];
    if (!it || it > (uint32_t)n->cfg.enc.n_items || !in->tag_off)
        return 0.0f;
    *lo = in->tag_off[it - 1];
    *hi = in->tag_off[it];
    return *hi > *lo ? sc / (float)(*hi - *lo) : 0.0f;
}

/* The tags field: √C × the mean of the embeddings of the item's tags (0 without tags). */
static void tags_forward(const mt_net *n, const mt_inputs *in, const float *tab, float *y, int N,
                         int C, float sc) {
    memset(y, 0, (size_t)N * C * sizeof *y);
    for (int p = 0; p < N; p++) {
        uint32_t lo = 0, hi = 0;
        const float w = tag_bag(n, in, p, sc, &lo, &hi);
        for (uint32_t j = lo; w != 0.0f && j < hi; j++) {
            const float *r = tab + (size_t)in->tag_ids[j] * C;
            for (int c = 0; c < C; c++)
                y[(size_t)p * C + c] += w * r[c];
        }
    }
}

static void tags_backward(const mt_net *n, const mt_inputs *in, sq_param *tab, const float *dy,
                          int N, int C, float sc) {
    for (int p = 0; p < N; p++) {
        uint32_t lo = 0, hi = 0;
        const float w = tag_bag(n, in, p, sc, &lo, &hi);
        for (uint32_t j = lo; w != 0.0f && j < hi; j++) {
            float *g = tab->grad + (size_t)in->tag_ids[j] * C;
            for (int c = 0; c < C; c++)
                g[c] += w * dy[(size_t)p * C + c];
            sq_param_touch(tab, in->tag_ids[j]);
        }
    }
}

/* The user attribute of row b, field k (0 when none given or out of range). */
static uint32_t uattr_of(const mt_net *n, const mt_inputs *in, int b, int k) {
    uint32_t v = in->uattr ? in->uattr[(size_t)b * n->cfg.n_uattr + (size_t)k] : 0;
    return v < n->cfg.uattr_size[k] ? v : 0;
}

static sq_status forward(const mt_net *n, sq_arena *a, const mt_inputs *in, const int *sel, int M,
                         sq_rng *rng, fwd *f, sq_error *err) {
    const sq_params *ps = &n->enc.ps;
    const int B = in->B, T = in->T, N = B * T, C = n->cfg.enc.hidden, F = n->F;
    const float sc = sqrtf((float)C);
    memset(f, 0, sizeof *f);
    f->N = N;
    f->M = M;
    f->X = sq_arena_alloc(a, (size_t)N * F * C * sizeof(float));
    f->fid = sq_arena_alloc(a, (size_t)N * F * sizeof(uint32_t));
    float *tmp = sq_arena_alloc(a, (size_t)N * C * sizeof(float));
    f->xin = sq_arena_alloc(a, (size_t)N * C * sizeof(float));
    if (!f->X || !f->fid || !tmp || !f->xin)
        return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full (inputs)");
    sq_status rc;
    for (int k = 0; k < F; k++) {
        uint32_t *ids = f->fid + (size_t)k * N;
        for (int p = 0; p < N; p++)
            ids[p] = field_id(n, in, k, p);
        const sq_param *tab = &ps->p[n->ftab[k]];
        if (n->fk[k] == MT_F_TAGS)
            tags_forward(n, in, tab->data, tmp, N, C, sc);
        else if ((rc = sq_nn_embedding_forward(tmp, ids, tab->data, N, (int)tab->shape[0], C,
                                               k == 0 ? 0 : SQ_NN_NO_PAD, sc, err)))
            return rc;
        for (int p = 0; p < N; p++)
            memcpy(f->X + ((size_t)p * F + k) * C, tmp + (size_t)p * C, (size_t)C * sizeof(float));
    }
    if ((rc = sq_nn_fuse_forward(&n->fuse, ps, a, &f->fz, f->xin, f->X, N, err)) ||
        (rc = sq_sasrec_net_forward_x(&n->enc, a, &f->enc, in->ids, f->xin, B, T, rng, NULL, err)))
        return rc;
    f->hp = f->enc.h;
    if (n->cfg.user_features || n->cfg.n_uattr) {
        if (!(f->hp = sq_arena_calloc(a, (size_t)N * C * sizeof(float))))
            return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full (user features)");
        if (n->cfg.user_features)
            sq_nn_linear_forward(f->hp, in->ustat, sq_nn_val(ps, n->ufeat.w),
                                 sq_nn_val(ps, n->ufeat.b), N, n->ufeat.C, C);
        for (size_t i = 0; i < (size_t)N * C; i++)
            f->hp[i] += f->enc.h[i];
        for (int b = 0; b < B; b++)
            for (int k = 0; k < n->cfg.n_uattr; k++) {
                const float *r = sq_nn_val(ps, n->uattr_tab[k]) + (size_t)uattr_of(n, in, b, k) * C;
                for (int t = 0; t < T; t++)
                    for (int c = 0; c < C; c++)
                        f->hp[((size_t)b * T + t) * C + c] += r[c];
            }
    }
    /* the selected rows, with the request */
    const int nr = 1 + n->cfg.n_ctx_used;
    f->sel = sq_arena_alloc(a, (size_t)(M ? M : 1) * sizeof(int));
    f->z = sq_arena_alloc(a, (size_t)(M ? M : 1) * C * sizeof(float));
    f->rid = sq_arena_alloc(a, (size_t)nr * (M ? M : 1) * sizeof(uint32_t));
    float *rt = sq_arena_alloc(a, (size_t)(M ? M : 1) * C * sizeof(float));
    if (!f->sel || !f->z || !f->rid || !rt)
        return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full (rows)");
    memcpy(f->sel, sel, (size_t)M * sizeof(int));
    for (int i = 0; i < M; i++)
        memcpy(f->z + (size_t)i * C, f->hp + (size_t)sel[i] * C, (size_t)C * sizeof(float));
    for (int i = 0; i < M; i++) {
        uint32_t s = in->rscene[sel[i]];
        f->rid[i] = s < n->cfg.n_scenes ? s : 0;
        for (int k = 0; k < n->cfg.n_ctx_used; k++) {
            uint32_t v = in->rctx[(size_t)sel[i] * in->n_ctx + (size_t)k];
            f->rid[(size_t)(1 + k) * M + i] = v < n->cfg.ctx_size[k] ? v : 0;
        }
    }
    for (int k = 0; n->cfg.request && k < nr; k++) {
        const sq_param *tb = &ps->p[k == 0 ? n->scene_tab : n->ctx_tab[k - 1]];
        if ((rc = sq_nn_embedding_forward(rt, f->rid + (size_t)k * M, tb->data, M,
                                          (int)tb->shape[0], C, SQ_NN_NO_PAD, sc, err)))
            return rc;
        for (size_t i = 0; i < (size_t)M * C; i++)
            f->z[i] += rt[i];
    }
    if (n->cfg.scene_gates || n->cfg.scene_towers) {
        if (!(f->sc = sq_arena_alloc(a, (size_t)(M ? M : 1) * sizeof(uint16_t))))
            return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full (scenes)");
        for (int i = 0; i < M; i++)
            f->sc[i] = (uint16_t)f->rid[i];
    }
    const int H = n->cfg.expert_hidden;
    const size_t ysize = (size_t)n->n_slots * (M ? M : 1) * H * sizeof(float);
    if (!(f->y = sq_arena_alloc(a, ysize)) ||
        (n->cfg.scene_towers && !(f->ye = sq_arena_alloc(a, ysize))))
        return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full (experts)");
    if (M == 0)
        return SQ_OK;
    if (!n->cfg.scene_towers)
        return sq_nn_experts_forward(&n->ex, ps, a, &f->ex, f->y, f->z,
                                     n->cfg.scene_gates ? f->sc : NULL, M, err);
    if ((rc = sq_nn_experts_forward(&n->ex, ps, a, &f->ex, f->ye, f->z,
                                    n->cfg.scene_gates ? f->sc : NULL, M, err)))
        return rc;
    return sq_nn_scene_towers_forward(&n->towers, ps, a, &f->towers, f->y, f->ye, f->sc, M, err);
}

/* ======================================== Task heads ========================================= */

/* Gathers rows E[ids[i]] (unscaled) into e [M, C]. */
static void gather_rows(float *e, const float *E, const uint32_t *ids, int M, int C) {
    for (int i = 0; i < M; i++)
        memcpy(e + (size_t)i * C, E + (size_t)ids[i] * C, (size_t)C * sizeof(float));
}

/* A click/conversion tower: logit = w2 · ReLU(W1 [y; e; m] + b1) + b2 for M rows, m the
 * candidate's history in the sequence (cand_history; else [y; e]). Keeps its input and hidden
 * layer for backward. */
typedef struct {
    float *in, *hid, *logit; /* [M, W], [M, C], [M]; W = l1->C */
} tower_acts;

static sq_status tower_forward(const sq_nn_linear *l1, const sq_nn_linear *l2, const sq_params *ps,
                               sq_arena *a, tower_acts *t, const float *y, const float *e,
                               const float *m, int M, int H, int C, sq_error *err) {
    const int W = l1->C;
    t->in = sq_arena_alloc(a, (size_t)M * W * sizeof(float));
    t->hid = sq_arena_alloc(a, (size_t)M * C * sizeof(float));
    t->logit = sq_arena_alloc(a, (size_t)M * sizeof(float));
    if (!t->in || !t->hid || !t->logit)
        return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full (towers)");
    for (int i = 0; i < M; i++) {
        float *r = t->in + (size_t)i * W;
        memcpy(r, y + (size_t)i * H, (size_t)H * sizeof(float));
        memcpy(r + H, e + (size_t)i * C, (size_t)C * sizeof(float));
        if (W > H + C)
            memcpy(r + H + C, m + (size_t)i * C, (size_t)C * sizeof(float));
    }
    sq_nn_linear_forward(t->hid, t->in, sq_nn_val(ps, l1->w), sq_nn_val(ps, l1->b), M, W, C);
    sq_nn_relu_forward(t->hid, t->hid, (size_t)M * C);
    sq_nn_linear_forward(t->logit, t->hid, sq_nn_val(ps, l2->w), sq_nn_val(ps, l2->b), M, C, 1);
    return SQ_OK;
}

/* dlogit [M] → dy [M, H], de and dm [M, C] (accumulated; dm may be NULL without m) and the
 * tower's parameter gradients. */
static sq_status tower_backward(const sq_nn_linear *l1, const sq_nn_linear *l2, sq_params *ps,
                                sq_arena *a, const tower_acts *t, const float *dlogit, float *dy,
                                float *de, float *dm, int M, int H, int C, sq_error *err) {
    const int W = l1->C;
    float *dhid = sq_arena_calloc(a, (size_t)M * C * sizeof(float));
    float *din = sq_arena_calloc(a, (size_t)M * W * sizeof(float));
    if (!dhid || !din)
        return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full (tower backward)");
    sq_nn_linear_backward(dhid, sq_nn_grad(ps, l2->w), sq_nn_grad(ps, l2->b), dlogit, t->hid,
                          sq_nn_val(ps, l2->w), M, C, 1);
    for (size_t i = 0; i < (size_t)M * C; i++)
        dhid[i] = t->hid[i] > 0.0f ? dhid[i] : 0.0f;
    sq_nn_linear_backward(din, sq_nn_grad(ps, l1->w), sq_nn_grad(ps, l1->b), dhid, t->in,
                          sq_nn_val(ps, l1->w), M, W, C);
    for (int i = 0; i < M; i++) {
        const float *d = din + (size_t)i * W;
        for (int k = 0; k < H; k++)
            dy[(size_t)i * H + k] += d[k];
        for (int k = 0; k < C; k++)
            de[(size_t)i * C + k] += d[H + k];
        for (int k = 0; W > H + C && k < C; k++)
            dm[(size_t)i * C + k] += d[H + C + k];
    }
    return SQ_OK;
}

/* ================================= The candidate's history =================================== */

mt_cand_hist mt_cand_history(const mt_net *n, const mt_inputs *in, int p, uint32_t cand) {
    mt_cand_hist h = {0, 0, 0};
    const int t0 = p - p % in->T;
    for (int t = p; cand && t >= t0; t--) {
        if (in->ids[t] != cand)
            continue;
        uint32_t b = in->beh[t] < n->cfg.n_beh ? in->beh[t] : 0;
        if (!h.last) {
            int d = p - t + 1;
            h.last = b + 1;
            h.dist = d <= 3 ? (uint32_t)d : d <= 5 ? 4 : d <= 10 ? 5 : d <= 20 ? 6 : 7;
        }
        if (b < 32)
            h.seen |= 1u << b;
    }
    return h;
}

/* m [M, C] = L[last] + D[dist] + Σ_{b seen} S[b] for each row's candidate (positions pos [M]). */
static void hist_forward(const mt_net *n, const mt_inputs *in, const int *pos,
                         const uint32_t *cand, mt_cand_hist *hs, float *m, int M, int C) {
    const sq_params *ps = &n->enc.ps;
    const float *L = sq_nn_val(ps, n->hist_last), *D = sq_nn_val(ps, n->hist_dist),
                *S = sq_nn_val(ps, n->hist_seen);
    for (int i = 0; i < M; i++) {
        mt_cand_hist h = hs[i] = mt_cand_history(n, in, pos[i], cand[i]);
        float *r = m + (size_t)i * C;
        for (int k = 0; k < C; k++)
            r[k] = L[(size_t)h.last * C + k] + D[(size_t)h.dist * C + k];
        for (uint32_t b = 0; b < n->cfg.n_beh && b < 32; b++)
            for (int k = 0; (h.seen >> b & 1u) && k < C; k++)
                r[k] += S[(size_t)b * C + k];
    }
}

static void hist_backward(mt_net *n, const mt_cand_hist *hs, const float *dm, int M, int C) {
    sq_params *ps = &n->enc.ps;
    sq_param *L = &ps->p[n->hist_last], *D = &ps->p[n->hist_dist], *S = &ps->p[n->hist_seen];
    for (int i = 0; i < M; i++) {
        const float *g = dm + (size_t)i * C;
        const mt_cand_hist h = hs[i];
        for (int k = 0; k < C; k++) {
            L->grad[(size_t)h.last * C + k] += g[k];
            D->grad[(size_t)h.dist * C + k] += g[k];
        }
        sq_param_touch(L, h.last);
        sq_param_touch(D, h.dist);
        for (uint32_t b = 0; b < n->cfg.n_beh && b < 32; b++) {
            if (!(h.seen >> b & 1u))
                continue;
            for (int k = 0; k < C; k++)
                S->grad[(size_t)b * C + k] += g[k];
            sq_param_touch(S, b);
        }
    }
}

static float sigm(float x) {
    return x >= 0 ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
}

/* Everything the heads computed for the selected rows. */
typedef struct {
    float *e;            /* [M, C] candidate item rows E[item] */
    float *q;            /* [M, C] next-item query */
    float *blog;         /* [M, n_beh] behaviour logits */
    float *vproj, *vlin; /* [M, C], [M] value parts */
    float *m;            /* [M, C] the candidates' history (cand_history), or NULL */
    mt_cand_hist *hs;    /* [M] */
    tower_acts ctr, cvr;
} heads;

static const float *slot_y(const mt_net *n, const fwd *f, sq_task t) {
    int s = n->slot[t];
    if (t == SQ_TASK_CLICK && s < 0)
        s = n->slot[SQ_TASK_BUY];
    return f->y + (size_t)s * f->M * n->cfg.expert_hidden;
}

static float *slot_dy(const mt_net *n, float *dy, int M, sq_task t) {
    int s = n->slot[t];
    if (t == SQ_TASK_CLICK && s < 0)
        s = n->slot[SQ_TASK_BUY];
    return dy + (size_t)s * M * n->cfg.expert_hidden;
}

/* The heads at rows f->sel (positions of in) for candidates cand [M] (table rows; NULL: none). */
static sq_status heads_forward(const mt_net *n, sq_arena *a, const mt_inputs *in, const fwd *f,
                               const uint32_t *cand, heads *h, sq_error *err) {
    const sq_params *ps = &n->enc.ps;
    const int M = f->M, C = n->cfg.enc.hidden, H = n->cfg.expert_hidden;
    const int nb = (int)n->cfg.n_beh;
    memset(h, 0, sizeof *h);
    sq_status rc;
    if (has(n, SQ_TASK_NEXT_ITEM)) {
        if (!(h->q = sq_arena_alloc(a, (size_t)M * C * sizeof(float))))
            return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full (heads)");
        sq_nn_linear_forward(h->q, slot_y(n, f, SQ_TASK_NEXT_ITEM), sq_nn_val(ps, n->item_tower.w),
                             NULL, M, H, C);
        for (size_t i = 0; i < (size_t)M * C; i++)
            h->q[i] += f->z[i];
    }
    if (has(n, SQ_TASK_NEXT_BEH)) {
        if (!(h->blog = sq_arena_alloc(a, (size_t)M * nb * sizeof(float))))
            return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full (heads)");
        sq_nn_linear_forward(h->blog, slot_y(n, f, SQ_TASK_NEXT_BEH), sq_nn_val(ps, n->beh_head.w),
                             sq_nn_val(ps, n->beh_head.b), M, H, nb);
    }
    int need_e = cand && (has(n, SQ_TASK_VALUE) || has(n, SQ_TASK_CLICK) || has(n, SQ_TASK_BUY));
    if (!need_e)
        return SQ_OK;
    if (!(h->e = sq_arena_alloc(a, (size_t)M * C * sizeof(float))))
        return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full (heads)");
    gather_rows(h->e, sq_nn_val(ps, n->enc.item_emb), cand, M, C);
    if (has(n, SQ_TASK_VALUE)) {
        h->vproj = sq_arena_alloc(a, (size_t)M * C * sizeof(float));
        h->vlin = sq_arena_alloc(a, (size_t)M * sizeof(float));
        if (!h->vproj || !h->vlin)
            return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full (heads)");
        const float *y = slot_y(n, f, SQ_TASK_VALUE);
        sq_nn_linear_forward(h->vproj, y, sq_nn_val(ps, n->val_proj.w), NULL, M, H, C);
        sq_nn_linear_forward(h->vlin, y, sq_nn_val(ps, n->val_lin.w), sq_nn_val(ps, n->val_lin.b),
                             M, H, 1);
        const float *bi = sq_nn_val(ps, n->val_item);
        for (int i = 0; i < M; i++)
            h->vlin[i] += bi[cand[i]];
    }
    if (n->hist_last >= 0) {
        h->m = sq_arena_alloc(a, (size_t)M * C * sizeof(float));
        h->hs = sq_arena_alloc(a, (size_t)M * sizeof(mt_cand_hist));
        if (!h->m || !h->hs)
            return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full (heads)");
        hist_forward(n, in, f->sel, cand, h->hs, h->m, M, C);
    }
    if (has(n, SQ_TASK_CLICK) || has(n, SQ_TASK_BUY))
        if ((rc = tower_forward(&n->ctr1, &n->ctr2, ps, a, &h->ctr, slot_y(n, f, SQ_TASK_CLICK),
                                h->e, h->m, M, H, C, err)))
            return rc;
    if (has(n, SQ_TASK_BUY))
        if ((rc = tower_forward(&n->cvr1, &n->cvr2, ps, a, &h->cvr, slot_y(n, f, SQ_TASK_BUY), h->e,
                                h->m, M, H, C, err)))
            return rc;
    return SQ_OK;
}

/* p = softmax(x) over n values; returns log Σ exp(x). */
static float softmax_row(const float *x, int n, float *p) {
    float mx = x[0], z = 0;
    for (int k = 1; k < n; k++)
        mx = x[k] > mx ? x[k] : mx;
    for (int k = 0; k < n; k++)
        z += (p[k] = expf(x[k] - mx));
    for (int k = 0; k < n; k++)
        p[k] /= z;
    return mx + logf(z);
}

static float value_of(const heads *h, int i, int C) {
    float v = h->vlin[i];
    for (int k = 0; k < C; k++)
        v += h->vproj[(size_t)i * C + k] * h->e[(size_t)i * C + k];
    return v;
}

/* ========================================= Training ========================================== */

static void touch_rows(sq_param *tab, const uint32_t *ids, int M) {
    for (int i = 0; i < M; i++)
        sq_param_touch(tab, ids[i]);
}

sq_status mt_net_step(mt_net *n, sq_arena *a, const mt_inputs *in, const mt_targets *tg,
                      sq_rng *rng, double *loss, double task_loss[SQ_TASK_N],
                      long task_n[SQ_TASK_N], sq_error *err) {
    sq_params *ps = &n->enc.ps;
    const int B = in->B, T = in->T, N = B * T, C = n->cfg.enc.hidden, H = n->cfg.expert_hidden;
    const int nb = (int)n->cfg.n_beh, V = n->cfg.enc.n_items + 1;
    for (int t = 0; t < SQ_TASK_N; t++)
        task_loss[t] = 0, task_n[t] = 0;
    *loss = 0;
    int *sel = sq_arena_alloc(a, (size_t)N * sizeof(int)), M = 0;
    if (!sel)
        return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full");
    for (int p = 0; p < N; p++) {
        if (tg->item[p] > (uint32_t)n->cfg.enc.n_items)
            return sq_errorf(err, SQ_ERR_ARG, "multi-task: target %u above %d", tg->item[p],
                             n->cfg.enc.n_items);
        if (tg->item[p])
            sel[M++] = p;
    }
    if (M == 0)
        return SQ_OK;
    fwd f;
    sq_status rc = forward(n, a, in, sel, M, rng, &f, err);
    if (rc)
        return rc;
    uint32_t *cand = sq_arena_alloc(a, (size_t)M * sizeof(uint32_t));
    if (!cand)
        return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full");
    for (int i = 0; i < M; i++)
        cand[i] = tg->item[sel[i]];
    heads h;
    if ((rc = heads_forward(n, a, in, &f, cand, &h, err)))
        return rc;
    /* task weights: fixed, or e^(−s) with s learned */
    float w[SQ_TASK_N];
    const float *s = n->logvar >= 0 ? sq_nn_val(ps, n->logvar) : NULL;
    for (int t = 0; t < SQ_TASK_N; t++)
        w[t] = s ? expf(-s[t]) : n->cfg.lambda[t];
    float *dy = sq_arena_calloc(a, (size_t)n->n_slots * M * H * sizeof(float));
    float *dz = sq_arena_calloc(a, (size_t)M * C * sizeof(float));
    float *de = sq_arena_calloc(a, (size_t)M * C * sizeof(float));
    if (!dy || !dz || !de)
        return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full (gradients)");
    sq_param *tab = &ps->p[n->enc.item_emb];
    if (has(n, SQ_TASK_NEXT_ITEM)) {
        int32_t *t32 = sq_arena_alloc(a, (size_t)M * sizeof(int32_t));
        float *dq = sq_arena_calloc(a, (size_t)M * C * sizeof(float));
        if (!t32 || !dq)
            return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full");
        for (int i = 0; i < M; i++)
            t32[i] = (int32_t)cand[i];
        float l = 0;
        const sq_nn_ce_opts o = {.first_item = 1};
        if ((rc = sq_nn_ce_chunked(&l, dq, tab->grad, h.q, tab->data, t32, M, C, V,
                                   w[SQ_TASK_NEXT_ITEM], &o, a, err)))
            return rc;
        for (uint32_t r = 1; r < (uint32_t)V; r++)
            sq_param_touch(tab, r);
        task_loss[SQ_TASK_NEXT_ITEM] = l;
        task_n[SQ_TASK_NEXT_ITEM] = M;
        for (size_t i = 0; i < (size_t)M * C; i++)
            dz[i] += dq[i];
        sq_nn_linear_backward(slot_dy(n, dy, M, SQ_TASK_NEXT_ITEM), sq_nn_grad(ps, n->item_tower.w),
                              NULL, dq, slot_y(n, &f, SQ_TASK_NEXT_ITEM),
                              sq_nn_val(ps, n->item_tower.w), M, H, C);
    }
    if (has(n, SQ_TASK_NEXT_BEH)) {
        float *dl = sq_arena_alloc(a, (size_t)M * nb * sizeof(float));
        if (!dl)
            return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full");
        double l = 0;
        for (int i = 0; i < M; i++) {
            const float *x = h.blog + (size_t)i * nb;
            float *d = dl + (size_t)i * nb, lse = softmax_row(x, nb, d);
            uint32_t y = tg->beh[sel[i]] < (uint32_t)nb ? tg->beh[sel[i]] : 0;
            l += (double)(lse - x[y]);
            for (int k = 0; k < nb; k++)
                d[k] = w[SQ_TASK_NEXT_BEH] * (d[k] - (k == (int)y)) / (float)M;
        }
        task_loss[SQ_TASK_NEXT_BEH] = l / M;
        task_n[SQ_TASK_NEXT_BEH] = M;
        sq_nn_linear_backward(slot_dy(n, dy, M, SQ_TASK_NEXT_BEH), sq_nn_grad(ps, n->beh_head.w),
                              sq_nn_grad(ps, n->beh_head.b), dl, slot_y(n, &f, SQ_TASK_NEXT_BEH),
                              sq_nn_val(ps, n->beh_head.w), M, H, nb);
    }
    if (has(n, SQ_TASK_VALUE)) {
        int K = 0;
        for (int i = 0; i < M; i++)
            K += isfinite(tg->value[sel[i]]);
        float *dlin = sq_arena_calloc(a, (size_t)M * sizeof(float));
        float *dproj = sq_arena_calloc(a, (size_t)M * C * sizeof(float));
        if (!dlin || !dproj)
            return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full");
        double l = 0;
        for (int i = 0; i < M && K; i++) {
            float v = tg->value[sel[i]];
            if (!isfinite(v))
                continue;
            float pred = value_of(&h, i, C), g = w[SQ_TASK_VALUE] * 2.0f * (pred - v) / (float)K;
            l += (double)(pred - v) * (pred - v);
            dlin[i] = g;
            for (int k = 0; k < C; k++) {
                dproj[(size_t)i * C + k] = g * h.e[(size_t)i * C + k];
                de[(size_t)i * C + k] += g * h.vproj[(size_t)i * C + k];
            }
        }
        task_loss[SQ_TASK_VALUE] = K ? l / K : 0;
        task_n[SQ_TASK_VALUE] = K;
        float *dyv = slot_dy(n, dy, M, SQ_TASK_VALUE);
        const float *yv = slot_y(n, &f, SQ_TASK_VALUE);
        sq_nn_linear_backward(dyv, sq_nn_grad(ps, n->val_lin.w), sq_nn_grad(ps, n->val_lin.b), dlin,
                              yv, sq_nn_val(ps, n->val_lin.w), M, H, 1);
        sq_nn_linear_backward(dyv, sq_nn_grad(ps, n->val_proj.w), NULL, dproj, yv,
                              sq_nn_val(ps, n->val_proj.w), M, H, C);
        sq_param *bi = &ps->p[n->val_item];
        for (int i = 0; i < M; i++)
            bi->grad[cand[i]] += dlin[i];
        touch_rows(bi, cand, M);
    }
    if (has(n, SQ_TASK_CLICK) || has(n, SQ_TASK_BUY)) {
        float *dlc = sq_arena_calloc(a, (size_t)M * sizeof(float));
        float *dlv = sq_arena_calloc(a, (size_t)M * sizeof(float));
        float *dm = h.m ? sq_arena_calloc(a, (size_t)M * C * sizeof(float)) : NULL;
        if (!dlc || !dlv || (h.m && !dm))
            return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full");
        double lc = 0, lb = 0;
        for (int i = 0; i < M; i++) {
            uint32_t b = tg->beh[sel[i]];
            float yc = n->cfg.lab.click[b & 255], yb = n->cfg.lab.buy[b & 255];
            float xc = h.ctr.logit[i], pc = sigm(xc);
            if (has(n, SQ_TASK_CLICK)) {
                lc += (double)(fmaxf(xc, 0) - xc * yc + log1pf(expf(-fabsf(xc))));
                dlc[i] += w[SQ_TASK_CLICK] * (pc - yc) / (float)M;
            }
            if (has(n, SQ_TASK_BUY)) {
                float pv = sigm(h.cvr.logit[i]), p = pc * pv;
                p = fminf(fmaxf(p, 1e-7f), 1.0f - 1e-7f);
                lb -= yb ? log((double)p) : log1p(-(double)p);
                /* d(−log-lik)/dp · dp/dlogit, simplified with p = pc · pv */
                float g = w[SQ_TASK_BUY] / (float)M;
                if (yb) {
                    dlc[i] += g * -(1.0f - pc);
                    dlv[i] += g * -(1.0f - pv);
                } else {
                    dlc[i] += g * p * (1.0f - pc) / (1.0f - p);
                    dlv[i] += g * p * (1.0f - pv) / (1.0f - p);
                }
            }
        }
        if (has(n, SQ_TASK_CLICK)) {
            task_loss[SQ_TASK_CLICK] = lc / M;
            task_n[SQ_TASK_CLICK] = M;
        }
        if (has(n, SQ_TASK_BUY)) {
            task_loss[SQ_TASK_BUY] = lb / M;
            task_n[SQ_TASK_BUY] = M;
            if ((rc = tower_backward(&n->cvr1, &n->cvr2, ps, a, &h.cvr, dlv,
                                     slot_dy(n, dy, M, SQ_TASK_BUY), de, dm, M, H, C, err)))
                return rc;
        }
        if ((rc = tower_backward(&n->ctr1, &n->ctr2, ps, a, &h.ctr, dlc,
                                 slot_dy(n, dy, M, SQ_TASK_CLICK), de, dm, M, H, C, err)))
            return rc;
        if (dm)
            hist_backward(n, h.hs, dm, M, C);
    }
    /* the total, and the learned weights' own gradient: d/ds (e^−s L + s) = 1 − e^−s L */
    double total = 0;
    for (int t = 0; t < SQ_TASK_N; t++) {
        if (!has(n, (sq_task)t))
            continue;
        total += w[t] * task_loss[t] + (s ? s[t] : 0.0f);
        if (s)
            sq_nn_grad(ps, n->logvar)[t] += 1.0f - w[t] * (float)task_loss[t];
    }
    *loss = total;
    if (h.e) { /* the candidate rows of the item table */
        float *de_tab = tab->grad;
        for (int i = 0; i < M; i++)
            for (int k = 0; k < C; k++)
                de_tab[(size_t)cand[i] * C + k] += de[(size_t)i * C + k];
        touch_rows(tab, cand, M);
    }
    /* experts, the request, the user features, the encoder, the fusion, the tables */
    if (n->cfg.scene_towers) { /* dy of the towers' outputs -> of the experts' outputs */
        float *dye = sq_arena_calloc(a, (size_t)n->n_slots * M * H * sizeof(float));
        if (!dye)
            return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full (towers)");
        if ((rc = sq_nn_scene_towers_backward(&n->towers, ps, a, &f.towers, dye, dy, err)))
            return rc;
        dy = dye;
    }
    if ((rc = sq_nn_experts_backward(&n->ex, ps, a, &f.ex, dz, dy, err)))
        return rc;
    const float sc = sqrtf((float)C);
    for (int k = 0; n->cfg.request && k < 1 + n->cfg.n_ctx_used; k++)
        sq_nn_embedding_backward(&ps->p[k == 0 ? n->scene_tab : n->ctx_tab[k - 1]], dz,
                                 f.rid + (size_t)k * M, M, SQ_NN_NO_PAD, sc);
    float *dh = sq_arena_calloc(a, (size_t)N * C * sizeof(float));
    if (!dh)
        return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full (backward)");
    for (int i = 0; i < M; i++)
        for (int k = 0; k < C; k++)
            dh[(size_t)sel[i] * C + k] += dz[(size_t)i * C + k];
    if (n->cfg.user_features)
        sq_nn_linear_backward(NULL, sq_nn_grad(ps, n->ufeat.w), sq_nn_grad(ps, n->ufeat.b), dh,
                              in->ustat, sq_nn_val(ps, n->ufeat.w), N, n->ufeat.C, C);
    for (int b = 0; b < B; b++)
        for (int k = 0; k < n->cfg.n_uattr; k++) {
            sq_param *ua = &ps->p[n->uattr_tab[k]];
            uint32_t v = uattr_of(n, in, b, k);
            float *g = ua->grad + (size_t)v * C;
            for (int t = 0; t < T; t++)
                for (int c = 0; c < C; c++)
                    g[c] += dh[((size_t)b * T + t) * C + c];
            sq_param_touch(ua, v);
        }
    if ((rc = sq_sasrec_net_backward(&n->enc, a, &f.enc, dh, NULL, err)))
        return rc;
    /* dh is now dL/dxin */
    const int F = n->F;
    float *dX = sq_arena_calloc(a, (size_t)N * F * C * sizeof(float));
    float *tmp = sq_arena_alloc(a, (size_t)N * C * sizeof(float));
    if (!dX || !tmp)
        return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full (fusion backward)");
    if ((rc = sq_nn_fuse_backward(&n->fuse, ps, a, &f.fz, dX, dh, err)))
        return rc;
    for (int k = 0; k < F; k++) {
        for (int p = 0; p < N; p++)
            memcpy(tmp + (size_t)p * C, dX + ((size_t)p * F + k) * C, (size_t)C * sizeof(float));
        if (n->fk[k] == MT_F_TAGS)
            tags_backward(n, in, &ps->p[n->ftab[k]], tmp, N, C, sc);
        else
            sq_nn_embedding_backward(&ps->p[n->ftab[k]], tmp, f.fid + (size_t)k * N, N,
                                     k == 0 ? 0 : SQ_NN_NO_PAD, sc);
    }
    return SQ_OK;
}

/* ========================================= Inference ========================================= */

sq_status mt_net_predict(const mt_net *n, sq_arena *a, const mt_inputs *in, float *scores,
                         const uint32_t *items, sq_task_pred *pred, float *qvec, sq_error *err) {
    const sq_params *ps = &n->enc.ps;
    const int B = in->B, T = in->T, C = n->cfg.enc.hidden, nb = (int)n->cfg.n_beh;
    int *sel = sq_arena_alloc(a, (size_t)B * sizeof(int));
    uint32_t *cand = items ? sq_arena_alloc(a, (size_t)B * sizeof(uint32_t)) : NULL;
    if (!sel || (items && !cand))
        return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full");
    for (int b = 0; b < B; b++) {
        sel[b] = b * T + T - 1;
        if (cand)
            cand[b] = items[b] < (uint32_t)n->cfg.enc.n_items ? items[b] + 1 : 0;
    }
    fwd f;
    sq_status rc = forward(n, a, in, sel, B, NULL, &f, err);
    if (rc)
        return rc;
    heads h;
    if ((rc = heads_forward(n, a, in, &f, cand, &h, err)))
        return rc;
    const float *q = h.q ? h.q : f.z;
    if (qvec)
        memcpy(qvec, q, (size_t)B * C * sizeof(float));
    if (scores)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, n->cfg.enc.n_items, C, 1.0f, q, C,
                    sq_nn_val(ps, n->enc.item_emb) + C, C, 0.0f, scores, n->cfg.enc.n_items);
    for (int b = 0; pred && b < B; b++) {
        sq_task_pred *o = &pred[b];
        for (int k = 0; k < SQ_TASK_MAX_BEH; k++)
            o->p_beh[k] = NAN;
        o->value = o->ctr = o->cvr = o->ctcvr = NAN;
        if (h.blog) /* nb <= SQ_TASK_MAX_BEH: checked with the config */
            softmax_row(h.blog + (size_t)b * nb, nb, o->p_beh);
        if (!cand)
            continue;
        if (h.vlin)
            o->value = value_of(&h, b, C);
        if (h.ctr.logit)
            o->ctr = sigm(h.ctr.logit[b]);
        if (h.cvr.logit) {
            o->cvr = sigm(h.cvr.logit[b]);
            o->ctcvr = o->ctr * o->cvr;
        }
    }
    return SQ_OK;
}

sq_status mt_net_predict_items(const mt_net *n, sq_arena *a, const mt_inputs *in,
                               const uint32_t *items, int K, sq_task_pred *pred, sq_error *err) {
    if (in->B != 1 || K < 1)
        return sq_errorf(err, SQ_ERR_ARG, "multi-task: one sequence, at least one item");
    const int T = in->T, C = n->cfg.enc.hidden, H = n->cfg.expert_hidden;
    int sel = T - 1;
    fwd f;
    sq_status rc = forward(n, a, in, &sel, 1, NULL, &f, err);
    if (rc)
        return rc;
    /* the one sequence's rows repeated for K candidates */
    fwd g = f;
    g.M = K;
    g.sel = sq_arena_alloc(a, (size_t)K * sizeof(int));
    g.z = sq_arena_alloc(a, (size_t)K * C * sizeof(float));
    g.y = sq_arena_alloc(a, (size_t)n->n_slots * K * H * sizeof(float));
    uint32_t *cand = sq_arena_alloc(a, (size_t)K * sizeof(uint32_t));
    if (!g.sel || !g.z || !g.y || !cand)
        return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full (candidates)");
    for (int i = 0; i < K; i++) {
        g.sel[i] = sel;
        memcpy(g.z + (size_t)i * C, f.z, (size_t)C * sizeof(float));
        for (int s = 0; s < n->n_slots; s++)
            memcpy(g.y + ((size_t)s * K + i) * H, f.y + (size_t)s * H, (size_t)H * sizeof(float));
        cand[i] = items[i] < (uint32_t)n->cfg.enc.n_items ? items[i] + 1 : 0;
    }
    heads h;
    if ((rc = heads_forward(n, a, in, &g, cand, &h, err)))
        return rc;
    for (int i = 0; i < K; i++) {
        sq_task_pred *o = &pred[i];
        for (int k = 0; k < SQ_TASK_MAX_BEH; k++)
            o->p_beh[k] = NAN;
        o->value = h.vlin ? value_of(&h, i, C) : NAN;
        o->ctr = h.ctr.logit ? sigm(h.ctr.logit[i]) : NAN;
        o->cvr = h.cvr.logit ? sigm(h.cvr.logit[i]) : NAN;
        o->ctcvr = o->ctr * o->cvr;
    }
    return SQ_OK;
}
