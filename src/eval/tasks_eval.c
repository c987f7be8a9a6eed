/* tasks_eval.c — per-task, per-scene evaluation of multi-task models (tasks.h): one sq_task_sample
 * per user (the first target of the part), predictions in batches, metrics overall and per request
 * scene with 95 % bootstrap intervals. A bootstrap round draws each sq_task_sample's multiplicity
 * and recomputes every metric as a weighted one, AUC included (one pass over the order sorted
 * once), so a round costs O(n). */
#include "eval/task_metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const TM_NAMES[SQ_TM_N] = {
    "ndcg@10",     "hr@10", "accuracy", "macro_f1", "majority_accuracy",
    "rmse",        "mae",   "auc",      "logloss",  "cvr_auc",
    "cvr_logloss", "auc",   "logloss"};
static const sq_task TM_TASK[SQ_TM_N] = {
    SQ_TASK_NEXT_ITEM, SQ_TASK_NEXT_ITEM, SQ_TASK_NEXT_BEH, SQ_TASK_NEXT_BEH, SQ_TASK_NEXT_BEH,
    SQ_TASK_VALUE,     SQ_TASK_VALUE,     SQ_TASK_CLICK,    SQ_TASK_CLICK,    SQ_TASK_BUY,
    SQ_TASK_BUY,       SQ_TASK_BUY,       SQ_TASK_BUY};

const char *sq_task_metric_name(sq_task_metric t) {
    return t < SQ_TM_N ? TM_NAMES[t] : "?";
}

sq_task sq_task_metric_task(sq_task_metric t) {
    return t < SQ_TM_N ? TM_TASK[t] : SQ_TASK_N;
}

/* ===================================== Weighted metrics ===================================== */

static double clampp(double p) {
    return p < 1e-7 ? 1e-7 : (p > 1 - 1e-7 ? 1 - 1e-7 : p);
}

static float score_of(const sq_task_sample *x, int which) {
    return which == 0 ? x->ctr : which == 1 ? x->cvr : x->ctcvr;
}

typedef struct {
    float v;
    uint32_t j;
} keyed;

static int cmp_keyed(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    return (x->v > y->v) - (x->v < y->v);
}

/* Weighted AUC over idx sorted ascending by the score; label(i) and included(i) per which. */
static double auc_sorted(const sq_task_sample *s, const uint32_t *ord, size_t n, const double *w,
                         int which) {
    double pos = 0, neg = 0, area = 0, neg_below = 0;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        float v = score_of(&s[ord[i]], which);
        double gp = 0, gn = 0;
        while (j < n && score_of(&s[ord[j]], which) == v) {
            const sq_task_sample *x = &s[ord[j]];
            double wt = w ? w[ord[j]] : 1.0;
            int y = which == 0 ? x->click : x->buy;
            if (y)
                gp += wt;
            else
                gn += wt;
            j++;
        }
        area += gp * (neg_below + 0.5 * gn);
        neg_below += gn;
        pos += gp;
        neg += gn;
        i = j;
    }
    return pos > 0 && neg > 0 ? area / (pos * neg) : NAN;
}

/* Every metric of one group (sq_task_samples idx[0..n)), with multiplicities w (NULL: 1 each).
 * ord[k]: the group's sq_task_samples eligible for AUC k, sorted by its score. */
static void metrics(const sq_task_sample *s, const uint32_t *idx, size_t n, const double *w,
                    uint32_t *const ord[3], const size_t nord[3], uint32_t n_beh, double *out) {
    double W = 0, ndcg = 0, hr = 0, acc = 0, vw = 0, se = 0, ae = 0;
    double ll[3] = {0}, llw[3] = {0};
    double tp[SQ_TASK_MAX_BEH] = {0}, fp[SQ_TASK_MAX_BEH] = {0}, fn[SQ_TASK_MAX_BEH] = {0};
    double cls[SQ_TASK_MAX_BEH] = {0};
    for (size_t k = 0; k < n; k++) {
        const sq_task_sample *x = &s[idx[k]];
        double wt = w ? w[idx[k]] : 1.0;
        if (wt == 0)
            continue;
        W += wt;
        ndcg += wt * x->ndcg;
        hr += wt * x->hr;
        acc += wt * (x->pred_beh == x->beh);
        if (x->beh < SQ_TASK_MAX_BEH)
            cls[x->beh] += wt;
        if (x->pred_beh == x->beh && x->beh < SQ_TASK_MAX_BEH) {
            tp[x->beh] += wt;
        } else {
            if (x->pred_beh < SQ_TASK_MAX_BEH)
                fp[x->pred_beh] += wt;
            if (x->beh < SQ_TASK_MAX_BEH)
                fn[x->beh] += wt;
        }
        if (isfinite(x->value) && isfinite(x->pred_value)) {
            double e = (double)x->pred_value - x->value;
            vw += wt, se += wt * e * e, ae += wt * fabs(e);
        }
        if (isfinite(x->ctr)) {
            double p = clampp(x->ctr);
            ll[0] -= wt * (x->click ? log(p) : log1p(-p));
            llw[0] += wt;
        }
        if (isfinite(x->cvr) && x->click) {
            double p = clampp(x->cvr);
            ll[1] -= wt * (x->buy ? log(p) : log1p(-p));
            llw[1] += wt;
        }
        if (isfinite(x->ctcvr)) {
            double p = clampp(x->ctcvr);
            ll[2] -= wt * (x->buy ? log(p) : log1p(-p));
            llw[2] += wt;
        }
    }
    for (int t = 0; t < SQ_TM_N; t++)
        out[t] = NAN;
    if (W == 0)
        return;
    out[SQ_TM_NDCG10] = ndcg / W;
    out[SQ_TM_HR10] = hr / W;
    out[SQ_TM_BEH_ACC] = acc / W;
    double f1 = 0, maj = 0;
    int nc = 0;
    for (uint32_t c = 0; c < n_beh && c < SQ_TASK_MAX_BEH; c++) {
        if (tp[c] + fp[c] + fn[c] > 0) {
            f1 += 2 * tp[c] / (2 * tp[c] + fp[c] + fn[c]);
            nc++;
        }
        maj = cls[c] > maj ? cls[c] : maj;
    }
    out[SQ_TM_BEH_F1] = nc ? f1 / nc : NAN;
    out[SQ_TM_BEH_MAJ] = maj / W;
    if (vw > 0) {
        out[SQ_TM_VAL_RMSE] = sqrt(se / vw);
        out[SQ_TM_VAL_MAE] = ae / vw;
    }
    static const int AUC[3] = {SQ_TM_CTR_AUC, SQ_TM_CVR_AUC, SQ_TM_CTCVR_AUC};
    static const int LL[3] = {SQ_TM_CTR_LL, SQ_TM_CVR_LL, SQ_TM_CTCVR_LL};
    for (int k = 0; k < 3; k++) {
        if (llw[k] > 0)
            out[LL[k]] = ll[k] / llw[k];
        if (nord[k])
            out[AUC[k]] = auc_sorted(s, ord[k], nord[k], w, k);
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One model's samples of a group, contiguous, and their AUC orders. */
typedef struct {
    sq_task_sample *g;
    uint32_t *ord[3];
    size_t nord[3];
} group_view;

static void view_free(group_view *v) {
    sq_free(v->g);
    for (int k = 0; k < 3; k++)
        sq_free(v->ord[k]);
}

static sq_status view_init(group_view *v, const sq_task_sample *s, const uint32_t *idx, size_t n,
                           sq_error *err) {
    memset(v, 0, sizeof *v);
    if (!(v->g = sq_mallocn(n ? n : 1, sizeof *v->g)))
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < n; k++)
        v->g[k] = s[idx[k]];
    for (int k = 0; k < 3; k++) {
        keyed *kv = sq_mallocn(n ? n : 1, sizeof *kv);
        if (!kv || !(v->ord[k] = sq_mallocn(n ? n : 1, sizeof *v->ord[k]))) {
            sq_free(kv);
            return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        }
        for (size_t j = 0; j < n; j++) {
            float x = score_of(&v->g[j], k);
            if (isfinite(x) && (k != 1 || v->g[j].click))
                kv[v->nord[k]++] = (keyed){x, (uint32_t)j};
        }
        qsort(kv, v->nord[k], sizeof *kv, cmp_keyed);
        for (size_t j = 0; j < v->nord[k]; j++)
            v->ord[k][j] = kv[j].j;
        sq_free(kv);
    }
    return SQ_OK;
}

/* The metrics of a (with b: a's minus b's, the same samples weighted alike) into out. */
static void view_metrics(const group_view *a, const group_view *b, const uint32_t *id, size_t n,
                         const double *w, uint32_t n_beh, double *out) {
    metrics(a->g, id, n, w, a->ord, a->nord, n_beh, out);
    if (!b)
        return;
    double ob[SQ_TM_N];
    metrics(b->g, id, n, w, b->ord, b->nord, n_beh, ob);
    for (int t = 0; t < SQ_TM_N; t++)
        out[t] -= ob[t];
}

sq_status sq_task_group_diff(const sq_task_sample *s, const sq_task_sample *sb,
                             const uint32_t *idx, size_t n, uint32_t n_beh, uint32_t rounds,
                             uint64_t seed, sq_eval_stat *out, sq_error *err) {
    group_view va = {0}, vb = {0};
    double *w = sq_calloc(n ? n : 1, sizeof *w); /* multiplicities of the group's samples */
    double *vals = rounds ? sq_mallocn((size_t)rounds * SQ_TM_N, sizeof *vals) : NULL;
    double *col = rounds ? sq_mallocn(rounds, sizeof *col) : NULL;
    uint32_t *id = sq_mallocn(n ? n : 1, sizeof *id);
    sq_status rc = view_init(&va, s, idx, n, err);
    if (!rc && sb)
        rc = view_init(&vb, sb, idx, n, err);
    if (!rc && (!w || !id || (rounds && (!vals || !col))))
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    if (rc)
        goto done;
    for (size_t k = 0; k < n; k++)
        id[k] = (uint32_t)k;
    double point[SQ_TM_N];
    view_metrics(&va, sb ? &vb : NULL, id, n, NULL, n_beh, point);
    sq_rng rng;
    sq_rng_seed(&rng, seed);
    for (uint32_t r = 0; r < rounds; r++) {
        memset(w, 0, n * sizeof *w);
        for (size_t k = 0; k < n; k++)
            w[sq_rng_below(&rng, (uint32_t)n)] += 1.0;
        view_metrics(&va, sb ? &vb : NULL, id, n, w, n_beh, vals + (size_t)r * SQ_TM_N);
    }
    for (int t = 0; t < SQ_TM_N; t++) {
        out[t].mean = point[t];
        out[t].lo = out[t].hi = point[t];
        if (!rounds || !isfinite(point[t]))
            continue;
        size_t m = 0;
        for (uint32_t r = 0; r < rounds; r++)
            if (isfinite(vals[(size_t)r * SQ_TM_N + t]))
                col[m++] = vals[(size_t)r * SQ_TM_N + t];
        if (!m)
            continue;
        qsort(col, m, sizeof *col, cmp_double);
        out[t].lo = col[(size_t)(0.025 * (double)(m - 1) + 0.5)];
        out[t].hi = col[(size_t)(0.975 * (double)(m - 1) + 0.5)];
    }
done:
    view_free(&va);
    view_free(&vb);
    sq_free(w);
    sq_free(vals);
    sq_free(col);
    sq_free(id);
    return rc;
}

sq_status sq_task_group_stats(const sq_task_sample *s, const uint32_t *idx, size_t n,
                              uint32_t n_beh, uint32_t rounds, uint64_t seed, sq_eval_stat *out,
                              sq_error *err) {
    return sq_task_group_diff(s, NULL, idx, n, n_beh, rounds, seed, out, err);
}

/* ========================================= Driver ========================================== */

/* The evaluated users: those with a target in the part and an event before it (an even spread
 * of o->max_users of them). users has room for every user; returns how many. */
static uint32_t task_users(const sq_dataset *d, const sq_split *s, const sq_eval_opts *o,
                           uint32_t *users) {
    const uint32_t nu = sq_data_info_of(d)->n_users;
    const uint64_t *off = sq_data_offsets(d);
    uint32_t n_eval = 0;
    for (uint32_t u = 0; u < nu; u++) {
        uint32_t len = (uint32_t)(off[u + 1] - off[u]);
        uint32_t first = o->part == SQ_EVAL_TEST ? s->valid_end[u] : s->train_end[u];
        uint32_t last = o->part == SQ_EVAL_TEST ? len : s->valid_end[u];
        if (first < last && first > 0)
            users[n_eval++] = u;
    }
    if (o->max_users && o->max_users < n_eval) { /* an even spread */
        for (uint32_t i = 0; i < o->max_users; i++)
            users[i] = users[(uint64_t)i * n_eval / o->max_users];
        n_eval = o->max_users;
    }
    return n_eval;
}

/* m's predictions for the first target of each of users[0..n_eval), one sample each. */
static sq_status collect(const sq_model *m, const sq_dataset *d, const sq_split *s,
                         const sq_eval_opts *o, const uint32_t *users, uint32_t n_eval,
                         sq_task_sample *smp, sq_error *err) {
    sq_task_labels lab;
    const unsigned tasks = sq_model_tasks(m, &lab);
    const sq_data_info *info = sq_data_info_of(d);
    const uint32_t ni = info->n_items, n_ctx = info->n_ctx;
    const uint32_t ns =
        info->n_scenes < SQ_TASK_EVAL_MAX_SCENES ? info->n_scenes : SQ_TASK_EVAL_MAX_SCENES;
    const uint64_t *off = sq_data_offsets(d);
    const uint32_t *items = sq_data_items(d), *ctx = sq_data_context(d);
    const uint8_t *beh = sq_data_behaviours(d);
    const uint16_t *scn = sq_data_scenes(d);
    const float *val = sq_data_values(d);
    sq_status rc = SQ_OK;
    const uint32_t B = 256;
    sq_seq *seqs = sq_mallocn(B, sizeof *seqs);
    uint32_t *cand = sq_mallocn(B, sizeof *cand);
    uint16_t *rscene = sq_mallocn(B, sizeof *rscene);
    sq_task_pred *pred = sq_mallocn(B, sizeof *pred);
    float *scores = sq_mallocn((size_t)B * ni, sizeof *scores);
    sq_arena *a = sq_arena_create(m->ops->scratch ? m->ops->scratch(m, B, 0) : 64u << 20);
    if (!seqs || !cand || !rscene || !pred || !scores || !a) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (uint32_t start = 0; start < n_eval && !rc; start += B) {
        uint32_t nb = n_eval - start < B ? n_eval - start : B;
        for (uint32_t b = 0; b < nb; b++) {
            uint32_t u = users[start + b];
            uint32_t first = o->part == SQ_EVAL_TEST ? s->valid_end[u] : s->train_end[u];
            uint64_t e = off[u] + first; /* the target event */
            seqs[b] = sq_model_user_seq(d, u, first);
            rscene[b] = scn[e];
            seqs[b].req_scene = &rscene[b];
            seqs[b].req_ctx = n_ctx ? ctx + e * n_ctx : NULL;
            cand[b] = items[e];
        }
        const int ranks = (tasks >> SQ_TASK_NEXT_ITEM) & 1u;
        sq_arena_reset(a); /* one forward pass: the heads and, for next_item, the scores */
        if ((rc = sq_model_predict_tasks(m, seqs, cand, nb, pred, ranks ? scores : NULL, a, err)))
            break;
        for (uint32_t b = 0; b < nb; b++) {
            uint32_t u = users[start + b], first = seqs[b].n;
            uint64_t e = off[u] + first;
            sq_task_sample *x = &smp[start + b];
            memset(x, 0, sizeof *x);
            x->beh = beh[e];
            x->click = lab.click[beh[e]];
            x->buy = lab.buy[beh[e]];
            x->value = val ? val[e] : NAN;
            x->group = scn[e] < ns ? 1u + scn[e] : 0;
            const sq_task_pred *p = &pred[b];
            uint32_t best = 0;
            for (uint32_t k = 1; k < info->n_behaviours && k < SQ_TASK_MAX_BEH; k++)
                best = p->p_beh[k] > p->p_beh[best] ? k : best;
            x->pred_beh = (uint8_t)best;
            x->pred_value = p->value;
            x->ctr = (tasks >> SQ_TASK_CLICK) & 1u ? p->ctr : NAN;
            x->cvr = p->cvr;
            x->ctcvr = p->ctcvr;
            x->ndcg = x->hr = NAN;
            if (ranks) {
                uint64_t h, ties;
                sq_eval_rank(scores + (size_t)b * ni, ni, items[e],
                             o->keep_history ? NULL : items + off[u], o->keep_history ? 0 : first,
                             &h, &ties);
                double v[SQ_M_PER_K], auc;
                const uint32_t k10 = 10;
                sq_eval_single(h, ties, ni, &k10, 1, v, &auc);
                x->ndcg = (float)v[SQ_M_NDCG];
                x->hr = (float)v[SQ_M_HR];
            }
        }
        sq_report_progress(&o->reporter, "evaluating tasks", start + nb, n_eval, "users");
    }
done:
    sq_free(seqs);
    sq_free(cand);
    sq_free(rscene);
    sq_free(pred);
    sq_free(scores);
    sq_arena_free(a);
    return rc;
}

/* m's task metrics into ra; with mb also mb's into rb and m's minus mb's into rd (paired: the
 * same samples, resampled alike), from one prediction pass per model. */
static sq_status evaluate_tasks(const sq_model *m, const sq_model *mb, const sq_dataset *d,
                                const sq_split *s, const sq_eval_opts *o, sq_task_eval *ra,
                                sq_task_eval *rb, sq_task_eval *rd, sq_error *err) {
    sq_task_eval *const res[3] = {ra, mb ? rb : NULL, mb ? rd : NULL};
    for (int k = 0; k < 3; k++)
        if (res[k])
            memset(res[k], 0, sizeof *res[k]);
    const sq_model *const mods[2] = {m, mb};
    for (int k = 0; k < 2; k++)
        if (mods[k] && !sq_model_tasks(mods[k], NULL))
            return sq_errorf(err, SQ_ERR_ARG,
                             "model '%s' has no task heads (train with --tasks)",
                             mods[k]->ops->name);
    const sq_data_info *info = sq_data_info_of(d);
    const uint32_t nu = info->n_users;
    const uint32_t ns =
        info->n_scenes < SQ_TASK_EVAL_MAX_SCENES ? info->n_scenes : SQ_TASK_EVAL_MAX_SCENES;
    ra->tasks = sq_model_tasks(m, NULL);
    if (mb) {
        rb->tasks = sq_model_tasks(mb, NULL);
        rd->tasks = ra->tasks & rb->tasks; /* a difference: the tasks of both */
    }
    for (int k = 0; k < 3; k++)
        if (res[k])
            res[k]->groups = 1 + ns;
    uint32_t *users = sq_mallocn(nu ? nu : 1, sizeof *users);
    if (!users)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    const uint32_t n_eval = task_users(d, s, o, users);
    sq_status rc = SQ_OK;
    sq_task_sample *smp[2] = {sq_mallocn(n_eval ? n_eval : 1, sizeof **smp),
                              mb ? sq_mallocn(n_eval ? n_eval : 1, sizeof **smp) : NULL};
    uint32_t *idx = sq_mallocn(n_eval ? n_eval : 1, sizeof *idx);
    if (!smp[0] || !idx || (mb && !smp[1])) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (n_eval == 0) {
        rc = sq_errorf(err, SQ_ERR_EMPTY, "no user has a %s target in this split",
                       o->part == SQ_EVAL_TEST ? "test" : "validation");
        goto done;
    }
    for (int k = 0; k < 2 && !rc; k++) {
        double t0 = sq_now();
        if (mods[k] && !(rc = collect(mods[k], d, s, o, users, n_eval, smp[k], err)))
            res[k]->seconds = sq_now() - t0;
    }
    for (uint32_t g = 0; g < 1 + ns && !rc; g++) {
        size_t n = 0;
        for (uint32_t i = 0; i < n_eval; i++)
            if (g == 0 || smp[0][i].group == g)
                idx[n++] = i;
        for (int k = 0; k < 3 && !rc; k++) {
            if (!res[k])
                continue;
            res[k]->n[g] = n;
            rc = sq_task_group_diff(smp[k == 1], k == 2 ? smp[1] : NULL, idx, n,
                                    info->n_behaviours, o->bootstrap, o->seed + g, res[k]->m[g],
                                    err);
        }
    }
done:
    sq_free(users);
    sq_free(smp[0]);
    sq_free(smp[1]);
    sq_free(idx);
    return rc;
}

sq_status sq_evaluate_tasks(const sq_model *m, const sq_dataset *d, const sq_split *s,
                            const sq_eval_opts *o, sq_task_eval *r, sq_error *err) {
    return evaluate_tasks(m, NULL, d, s, o, r, NULL, NULL, err);
}

sq_status sq_evaluate_tasks_diff(const sq_model *a, const sq_model *b, const sq_dataset *d,
                                 const sq_split *s, const sq_eval_opts *o, sq_task_eval *ra,
                                 sq_task_eval *rb, sq_task_eval *diff, sq_error *err) {
    return evaluate_tasks(a, b, d, s, o, ra, rb, diff, err);
}
