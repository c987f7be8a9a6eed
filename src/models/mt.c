/* mt.c — the multi-task SASRec behind the model interface (`--model sasrec --tasks …`): config
 * keys, batches and sequences turned into the network's inputs (mt_net.h), task predictions.
 * SASRec's own init hands over to this file when the config names tasks or inputs
 * (sq_mt_wanted); the kind stays "sasrec" in model files. Keys, with their defaults, in
 * docs/multitask.md. */
#define _POSIX_C_SOURCE 200809L /* strtok_r */
#include "models/mt.h"
#include "models/mt_net.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    mt_net net;
    uint32_t *tag_off, *tag_ids; /* item i's tags: tag_ids[tag_off[i] .. tag_off[i + 1]) */
    uint64_t n_tag_ids;
    int value_ready; /* the value head's bias starts at the first batch's mean */
    double loss[SQ_TASK_N];
    long n[SQ_TASK_N];
} mt_model;

int sq_mt_wanted(const sq_config *cfg) {
    return sq_config_get(cfg, "tasks") || sq_config_get(cfg, "inputs");
}

static sq_status set_long(sq_config *c, const char *k, long v, sq_error *err) {
    char b[32];
    snprintf(b, sizeof b, "%ld", v);
    return sq_config_set(c, k, b, err);
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The bucket edges of event values ("value_edges"): the distinct values when there are at most
 * MT_MAX_VALUE_EDGES of them (ratings: one bucket each), else distinct quantiles, from up to
 * 2^16 values spread over the log (the marginal distribution only: no user's label). */
static sq_status value_edges(sq_config *cfg, const sq_dataset *d, sq_error *err) {
    const sq_data_info *in = sq_data_info_of(d);
    const float *v = sq_data_values(d);
    if (!v || !(in->flags & SQ_DATA_VALUES) || sq_config_get(cfg, "value_edges"))
        return SQ_OK;
    size_t n = 0, cap = 1u << 16, step = in->n_events / cap + 1;
    float *x = sq_mallocn(cap, sizeof *x);
    if (!x)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    for (uint64_t e = 0; e < in->n_events && n < cap; e += step)
        if (isfinite(v[e]))
            x[n++] = v[e];
    qsort(x, n, sizeof *x, cmp_float);
    float edge[MT_MAX_VALUE_EDGES];
    int ne = 0, distinct = n > 0;
    for (size_t i = 1; i < n; i++)
        distinct += x[i] != x[i - 1];
    if (distinct <= MT_MAX_VALUE_EDGES) {
        for (size_t i = 0; i < n; i++)
            if (!ne || x[i] > edge[ne - 1])
                edge[ne++] = x[i];
    } else {
        for (int k = 0; k < MT_MAX_VALUE_EDGES; k++) {
            float c = x[(size_t)((double)k / MT_MAX_VALUE_EDGES * (double)(n - 1))];
            if (!ne || c > edge[ne - 1])
                edge[ne++] = c;
        }
    }
    sq_free(x);
    char buf[MT_MAX_VALUE_EDGES * 24] = "";
    size_t o = 0;
    for (int k = 0; k < ne; k++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%.9g", k ? "," : "", (double)edge[k]);
    return ne ? sq_config_set(cfg, "value_edges", buf, err) : SQ_OK;
}

sq_status sq_mt_resolve_config(sq_config *cfg, const sq_dataset *d, sq_error *err) {
    if (!sq_mt_wanted(cfg))
        return SQ_OK;
    /* on for new models; a model file written before the key existed reads as off */
    sq_status rc = sq_config_default(cfg, "cand_history", "on", err);
    if (rc)
        return rc;
    sq_task_labels lab;
    rc = sq_tasks_resolve(d, sq_config_get(cfg, "click_behaviours"),
                                    sq_config_get(cfg, "buy_behaviours"), &lab, err);
    if (rc)
        return rc;
    char buf[1024];
    sq_tasks_labels_ids(lab.click, buf, sizeof buf);
    if ((rc = sq_config_set(cfg, "click_behaviours", buf, err)))
        return rc;
    sq_tasks_labels_ids(lab.buy, buf, sizeof buf);
    if ((rc = sq_config_set(cfg, "buy_behaviours", buf, err)))
        return rc;
    size_t o = 0;
    buf[0] = 0;
    for (uint32_t k = 0; k < sq_data_info_of(d)->n_ctx && k < MT_MAX_CTX; k++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%u", k ? "," : "",
                              sq_data_ctx_size(d, k) ? sq_data_ctx_size(d, k) : 1);
    if ((rc = sq_config_set(cfg, "ctx_sizes", buf, err)))
        return rc;
    const sq_data_info *in = sq_data_info_of(d);
    o = 0;
    buf[0] = 0;
    for (uint32_t k = 0; k < in->n_user_attrs && k < MT_MAX_UATTR; k++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%u", k ? "," : "",
                              sq_data_user_attr_size(d, k) ? sq_data_user_attr_size(d, k) : 1);
    if ((rc = sq_config_set(cfg, "user_attr_sizes", buf, err)) ||
        (rc = set_long(cfg, "tag_count", (long)in->n_tags, err)))
        return rc;
    return value_edges(cfg, d, err);
}

/* ========================================== Config =========================================== */

/* Which inputs: "auto" or a list of item, behaviour, gap, scene, context. */
static sq_status read_inputs(sq_model *m, mt_config *c, sq_error *err) {
    const char *s = sq_config_get(m->cfg, "inputs");
    const sq_data_info *in = &m->info;
    int beh = 0, gap = 0, scene = 0, ctx = 0, value = 0, tags = 0, uattr = 0;
    if (!s || !strcmp(s, "auto")) {
        beh = in->n_behaviours > 1;
        gap = (in->flags & SQ_DATA_REAL_TIME) != 0;
        scene = in->n_scenes > 1;
        ctx = in->n_ctx > 0;
        value = (in->flags & SQ_DATA_VALUES) != 0;
        tags = in->n_tags > 0;
        uattr = in->n_user_attrs > 0;
    } else {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", s);
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (!strcmp(t, "behaviour"))
                beh = 1;
            else if (!strcmp(t, "gap"))
                gap = 1;
            else if (!strcmp(t, "value"))
                value = 1;
            else if (!strcmp(t, "tags"))
                tags = 1;
            else if (!strcmp(t, "user_attrs"))
                uattr = 1;
            else if (!strcmp(t, "scene"))
                scene = 1;
            else if (!strcmp(t, "context"))
                ctx = 1;
            else if (strcmp(t, "item"))
                return sq_errorf(err, SQ_ERR_ARG,
                                 "config: inputs: unknown field '%s' (item, behaviour, gap, value, "
                                 "tags, user_attrs, "
                                 "scene, context or auto)",
                                 t);
        }
    }
    c->use_beh = beh && in->n_behaviours > 0;
    c->use_gap = gap;
    const char *tc = sq_config_get(m->cfg, "tag_count");
    c->n_tags = tc ? (uint32_t)strtoul(tc, NULL, 10) : 0;
    c->use_tags = tags && c->n_tags > 0;
    const char *us = sq_config_get(m->cfg, "user_attr_sizes");
    for (; uattr && us && *us && c->n_uattr < MT_MAX_UATTR && c->n_uattr < (int)in->n_user_attrs;) {
        char *end;
        unsigned long v = strtoul(us, &end, 10);
        if (end == us || v == 0)
            return sq_errorf(err, SQ_ERR_ARG, "config: user_attr_sizes: positive counts");
        c->uattr_size[c->n_uattr++] = (uint32_t)v;
        us = *end == ',' ? end + 1 : end;
    }
    if (value && (in->flags & SQ_DATA_VALUES)) { /* the edges the creator found */
        const char *ve = sq_config_get(m->cfg, "value_edges");
        while (ve && *ve && c->n_value_edges < MT_MAX_VALUE_EDGES) {
            char *end;
            float e = strtof(ve, &end);
            if (end == ve || (c->n_value_edges && !(e > c->value_edges[c->n_value_edges - 1])))
                return sq_errorf(err, SQ_ERR_ARG,
                                 "config: value_edges: increasing numbers, comma-separated");
            c->value_edges[c->n_value_edges++] = e;
            ve = *end == ',' ? end + 1 : end;
        }
    }
    c->real_time = (in->flags & SQ_DATA_REAL_TIME) != 0;
    c->use_scene = scene && in->n_scenes > 0;
    c->n_ctx_used = ctx ? (int)(in->n_ctx < MT_MAX_CTX ? in->n_ctx : MT_MAX_CTX) : 0;
    char list[128] = "item";
    if (c->use_beh)
        strcat(list, ",behaviour");
    if (c->use_gap)
        strcat(list, ",gap");
    if (c->n_value_edges)
        strcat(list, ",value");
    if (c->use_tags)
        strcat(list, ",tags");
    if (c->n_uattr)
        strcat(list, ",user_attrs");
    if (c->use_scene)
        strcat(list, ",scene");
    if (c->n_ctx_used)
        strcat(list, ",context");
    return sq_config_set(m->cfg, "inputs", list, err);
}

static sq_status read_config(sq_model *m, mt_config *c, sq_error *err) {
    memset(c, 0, sizeof *c);
    sq_config *cfg = m->cfg;
    long maxlen, hidden, blocks, heads, ffn, experts, texp, levels, eh;
    double dropout;
    int act, fusion, sharing, weighting, uf, req, sg, stw, ch;
    sq_status rc;
    if ((rc = sq_config_int(cfg, "maxlen", 50, 1, 4096, &maxlen, err)) ||
        (rc = sq_config_int(cfg, "hidden", 64, 1, 4096, &hidden, err)) ||
        (rc = sq_config_int(cfg, "blocks", 2, 1, SQ_SASREC_MAX_BLOCKS, &blocks, err)) ||
        (rc = sq_config_int(cfg, "heads", 1, 1, 64, &heads, err)) ||
        (rc = sq_config_int(cfg, "ffn", hidden, 1, 65536, &ffn, err)) ||
        (rc = sq_config_double(cfg, "dropout", 0.2, 0, 0.95, &dropout, err)) ||
        (rc = sq_config_choice(cfg, "act", "relu|gelu", 0, &act, err)) ||
        (rc = sq_config_choice(cfg, "fusion", "mean|concat|attention", 2, &fusion, err)) ||
        (rc = sq_config_choice(cfg, "sharing", "shared_bottom|mmoe|ple", 0, &sharing, err)) ||
        (rc = sq_config_int(cfg, "experts", 4, 1, 64, &experts, err)) ||
        (rc = sq_config_int(cfg, "task_experts", 1, 1, 16, &texp, err)) ||
        (rc = sq_config_int(cfg, "levels", sharing == 2 ? 2 : 1, 1, SQ_EXPERTS_MAX_LEVELS, &levels,
                            err)) ||
        (rc = sq_config_int(cfg, "expert_hidden", hidden, 1, 4096, &eh, err)) ||
        (rc = sq_config_choice(cfg, "weighting", "fixed|uncertainty", 0, &weighting, err)) ||
        (rc = sq_config_choice(cfg, "user_features", "on|off", 0, &uf, err)) ||
        (rc = sq_config_choice(cfg, "request", "on|off", 0, &req, err)) ||
        (rc = sq_config_choice(cfg, "scene_gates", "auto|on|off", 0, &sg, err)) ||
        (rc = sq_config_choice(cfg, "scene_towers", "off|on", 0, &stw, err)) ||
        (rc = sq_config_choice(cfg, "cand_history", "off|on", 0, &ch, err)))
        return rc;
    if (hidden % heads)
        return sq_errorf(err, SQ_ERR_ARG, "config: hidden (%ld) must be a multiple of heads (%ld)",
                         hidden, heads);
    const char *tl = sq_config_get(cfg, "tasks");
    if ((rc = sq_tasks_parse(tl ? tl : "next_item", &c->tasks, err)))
        return rc;
    char tbuf[96];
    sq_tasks_format(c->tasks, tbuf, sizeof tbuf);
    if ((rc = sq_config_set(cfg, "tasks", tbuf, err)) || (rc = read_inputs(m, c, err)))
        return rc;
    sq_sasrec_config_default(&c->enc, (int)m->info.n_items, (int)maxlen);
    c->enc.hidden = (int)hidden;
    c->enc.blocks = (int)blocks;
    c->enc.heads = (int)heads;
    c->enc.ffn = (int)ffn;
    c->enc.dropout = (float)dropout;
    c->enc.act = act ? SQ_ACT_GELU : SQ_ACT_RELU;
    c->fusion = (sq_nn_fuse_kind)fusion;
    c->sharing = (sq_nn_share_kind)sharing;
    c->experts = (int)experts;
    c->task_experts = (int)texp;
    c->levels = sharing == SQ_SHARE_PLE ? (int)levels : 1;
    c->expert_hidden = (int)eh;
    c->uncertainty = weighting == 1;
    c->user_features = uf == 0;
    c->request = req == 0;
    c->n_beh = m->info.n_behaviours ? m->info.n_behaviours : 1;
    c->n_scenes = m->info.n_scenes ? m->info.n_scenes : 1;
    c->scene_gates = sg == 1 || (sg == 0 && c->n_scenes > 1 && sharing != SQ_SHARE_BOTTOM);
    c->scene_towers = stw == 1;
    c->cand_history = ch == 1;
    /* context sizes: the largest value seen + 1 is not in the info; the dataset's vocabulary
     * sizes are, through the config the creator resolved (ctx_sizes) */
    const char *cs = sq_config_get(cfg, "ctx_sizes");
    for (int k = 0; k < c->n_ctx_used; k++) {
        unsigned long v = 0;
        if (cs) {
            char *end;
            v = strtoul(cs, &end, 10);
            cs = *end == ',' ? end + 1 : end;
        }
        if (v == 0)
            return sq_errorf(err, SQ_ERR_ARG, "config: ctx_sizes lacks context field %d", k);
        c->ctx_size[k] = (uint32_t)v;
    }
    if ((c->tasks >> SQ_TASK_NEXT_BEH & 1u) && c->n_beh > SQ_TASK_MAX_BEH)
        return sq_errorf(err, SQ_ERR_LIMIT, "next_behaviour: %u behaviours (at most %d)", c->n_beh,
                         SQ_TASK_MAX_BEH);
    for (int t = 0; t < SQ_TASK_N; t++) {
        char key[48];
        double v;
        snprintf(key, sizeof key, "w_%s", sq_task_name((sq_task)t));
        if ((rc = sq_config_double(cfg, key, 1.0, 0, 1e6, &v, err)))
            return rc;
        c->lambda[t] = (float)v;
    }
    const char *ci = sq_config_get(cfg, "click_behaviours"),
               *bi = sq_config_get(cfg, "buy_behaviours");
    if ((rc = sq_tasks_labels_from_ids(ci ? ci : "", bi ? bi : "", c->n_beh, &c->lab, err)))
        return rc;
    if ((c->tasks >> SQ_TASK_BUY & 1u) && !c->lab.n_buy)
        return sq_errorf(err, SQ_ERR_ARG,
                         "task buy: no behaviour of this dataset is a purchase (name one with "
                         "--set buy_behaviours=NAME)");
    if ((c->tasks >> SQ_TASK_CLICK & 1u) && !c->lab.n_click)
        return sq_errorf(err, SQ_ERR_ARG,
                         "task click: no click-level behaviour (name them with --set "
                         "click_behaviours=A,B)");
    if ((c->tasks >> SQ_TASK_VALUE & 1u) && !(m->info.flags & SQ_DATA_VALUES))
        return sq_errorf(err, SQ_ERR_ARG, "task value: the dataset's events carry no value");
    const char *keys[] = {"maxlen",  "hidden",       "blocks", "heads",        "ffn",
                          "experts", "task_experts", "levels", "expert_hidden"};
    long vals[] = {maxlen, hidden, blocks, heads, ffn, experts, texp, c->levels, eh};
    for (int i = 0; i < 9; i++)
        if ((rc = set_long(cfg, keys[i], vals[i], err)))
            return rc;
    char d[32];
    snprintf(d, sizeof d, "%g", dropout);
    static const char *const fus[] = {"mean", "concat", "attention"};
    static const char *const sh[] = {"shared_bottom", "mmoe", "ple"};
    if ((rc = sq_config_set(cfg, "dropout", d, err)) ||
        (rc = sq_config_set(cfg, "act", act ? "gelu" : "relu", err)) ||
        (rc = sq_config_set(cfg, "fusion", fus[fusion], err)) ||
        (rc = sq_config_set(cfg, "sharing", sh[sharing], err)) ||
        (rc = sq_config_set(cfg, "weighting", weighting ? "uncertainty" : "fixed", err)) ||
        (rc = sq_config_set(cfg, "user_features", uf ? "off" : "on", err)) ||
        (rc = sq_config_set(cfg, "request", req ? "off" : "on", err)) ||
        (rc = sq_config_set(cfg, "scene_gates", c->scene_gates ? "on" : "off", err)) ||
        (rc = sq_config_set(cfg, "scene_towers", c->scene_towers ? "on" : "off", err)) ||
        (rc = sq_config_set(cfg, "cand_history", c->cand_history ? "on" : "off", err)))
        return rc;
    return SQ_OK;
}

/* ========================================== Inputs =========================================== */

/* Buffers of mt_inputs for B × T positions, from the arena. */
static sq_status inputs_alloc(const mt_net *n, sq_arena *a, int B, int T, uint32_t n_ctx,
                              mt_inputs *in, sq_error *err) {
    const size_t N = (size_t)B * T, u4 = sizeof(uint32_t), nc = n_ctx ? n_ctx : 1;
    memset(in, 0, sizeof *in);
    in->B = B;
    in->T = T;
    in->n_ctx = n_ctx;
    uint32_t *ids = sq_arena_calloc(a, N * u4), *beh = sq_arena_calloc(a, N * u4),
             *gap = sq_arena_calloc(a, N * u4), *sc = sq_arena_calloc(a, N * u4),
             *ctx = sq_arena_calloc(a, N * nc * u4), *rs = sq_arena_calloc(a, N * u4),
             *rc = sq_arena_calloc(a, N * nc * u4), *vb = sq_arena_calloc(a, N * u4);
    float *us = sq_arena_calloc(a, N * (1 + n->cfg.n_beh) * sizeof(float));
    if (!ids || !beh || !gap || !sc || !ctx || !rs || !rc || !us || !vb)
        return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full (inputs)");
    in->ids = ids, in->beh = beh, in->gap = gap, in->scene = sc, in->ctx = ctx;
    in->rscene = rs, in->rctx = rc, in->ustat = us, in->vbucket = vb;
    if (n->cfg.n_uattr &&
        !(in->uattr = sq_arena_calloc(a, (size_t)B * (size_t)n->cfg.n_uattr * u4)))
        return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full (inputs)");
    return SQ_OK;
}

/* The user statistics u after `seen` events of which cnt[b] had behaviour b. */
static void ustat_row(float *u, const uint32_t *cnt, uint32_t seen, uint32_t nb) {
    u[0] = log1pf((float)seen) / 5.0f;
    for (uint32_t b = 0; b < nb; b++)
        u[1 + b] = seen ? (float)cnt[b] / (float)seen : 0.0f;
}

/* Fills the inputs of one row from events [lo, hi) of arrays (oldest first), ending at the
 * window's last slot; the counts over the events before lo come in cnt (updated). */
typedef struct {
    const uint32_t *items;
    const uint8_t *beh;
    const int64_t *ts;
    const uint16_t *scene;
    const uint32_t *ctx; /* n_ctx per event */
    const float *val;    /* or NULL */
} ev_arrays;

static void fill_window(const mt_net *n, mt_inputs *in, int b, const ev_arrays *e, uint32_t lo,
                        uint32_t hi, uint32_t *cnt, uint32_t seen, int ids_too) {
    const int T = in->T;
    const uint32_t nb = n->cfg.n_beh, len = hi - lo < (uint32_t)T ? hi - lo : (uint32_t)T;
    uint32_t start = hi - len;
    for (uint32_t k = lo; k < start; k++) { /* events before the window count in u */
        cnt[e->beh ? e->beh[k] % nb : 0]++;
        seen++;
    }
    uint32_t *ids = (uint32_t *)in->ids, *bh = (uint32_t *)in->beh, *gp = (uint32_t *)in->gap,
             *sc = (uint32_t *)in->scene, *cx = (uint32_t *)in->ctx, *vb = (uint32_t *)in->vbucket;
    float *us = (float *)in->ustat;
    for (uint32_t k = start; k < hi; k++) {
        size_t p = (size_t)b * T + (size_t)T - (hi - k);
        if (ids_too)
            ids[p] = e->items[k] < (uint32_t)n->cfg.enc.n_items ? e->items[k] + 1 : 0;
        bh[p] = e->beh ? e->beh[k] : 0;
        gp[p] = k > 0 && e->ts ? sq_gap_bucket(e->ts[k - 1], e->ts[k], n->cfg.real_time) : 0;
        sc[p] = e->scene ? e->scene[k] : 0;
        vb[p] = e->val ? mt_value_bucket(&n->cfg, e->val[k]) : 0;
        if (e->ctx)
            memcpy(cx + p * in->n_ctx, e->ctx + (size_t)k * in->n_ctx, in->n_ctx * sizeof *cx);
        cnt[bh[p] % nb]++;
        seen++;
        ustat_row(us + p * (1 + nb), cnt, seen, nb);
    }
}

/* Inputs of B sequences for inference, with their requests at the last slot. */
static sq_status seq_inputs(const sq_model *m, sq_arena *a, const sq_seq *seqs, uint32_t B,
                            mt_inputs *in, sq_error *err) {
    const mt_model *mm = m->impl;
    const mt_net *n = &mm->net;
    const int T = n->cfg.enc.maxlen;
    const uint32_t n_ctx = m->info.n_ctx, nb = n->cfg.n_beh;
    sq_status rc = inputs_alloc(n, a, (int)B, T, n_ctx, in, err);
    if (rc)
        return rc;
    uint32_t *cnt = sq_arena_alloc(a, nb * sizeof *cnt);
    if (!cnt)
        return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full");
    in->tag_off = mm->tag_off;
    in->tag_ids = mm->tag_ids;
    for (uint32_t b = 0; b < B; b++) {
        const sq_seq *q = &seqs[b];
        for (int k = 0; q->attrs && k < n->cfg.n_uattr; k++)
            ((uint32_t *)in->uattr)[(size_t)b * n->cfg.n_uattr + (size_t)k] = q->attrs[k];
        memset(cnt, 0, nb * sizeof *cnt);
        ev_arrays e = {q->items, q->beh, q->ts, q->scene, n_ctx ? q->ctx : NULL, q->values};
        if (q->n)
            fill_window(n, in, (int)b, &e, 0, q->n, cnt, 0, 1);
        size_t last = (size_t)b * T + T - 1;
        uint32_t *rs = (uint32_t *)in->rscene, *rcx = (uint32_t *)in->rctx;
        rs[last] = q->req_scene ? *q->req_scene : (q->n && q->scene ? q->scene[q->n - 1] : 0);
        for (uint32_t k = 0; k < n_ctx; k++)
            rcx[last * n_ctx + k] =
                q->req_ctx ? q->req_ctx[k]
                           : (q->n && q->ctx ? q->ctx[(size_t)(q->n - 1) * n_ctx + k] : 0);
    }
    return SQ_OK;
}

/* =========================================== Ops ============================================ */

static sq_status mt_train_batch(sq_model *m, const sq_batch *bt, sq_arena *a, sq_rng *rng,
                                double *loss, long *n_targets, sq_error *err) {
    mt_model *mm = m->impl;
    mt_net *n = &mm->net;
    const sq_dataset *d = bt->data;
    if (!d || !bt->events)
        return sq_errorf(err, SQ_ERR_ARG, "multi-task: the batch carries no events");
    const int B = (int)bt->B, T = (int)bt->T;
    if (T > n->cfg.enc.maxlen)
        return sq_errorf(err, SQ_ERR_ARG, "multi-task: T %d above maxlen %d", T, n->cfg.enc.maxlen);
    const uint32_t n_ctx = m->info.n_ctx, nb = n->cfg.n_beh;
    mt_inputs in;
    sq_status rc = inputs_alloc(n, a, B, T, n_ctx, &in, err);
    if (rc)
        return rc;
    in.ids = bt->inputs;
    in.tag_off = mm->tag_off;
    in.tag_ids = mm->tag_ids;
    const uint32_t na = sq_data_info_of(d)->n_user_attrs;
    const uint32_t *attrs = sq_data_user_attrs(d);
    for (int b = 0; attrs && b < B; b++)
        for (int k = 0; k < n->cfg.n_uattr; k++)
            ((uint32_t *)in.uattr)[(size_t)b * n->cfg.n_uattr + (size_t)k] =
                attrs[(size_t)bt->users[b] * na + (size_t)k];
    const size_t N = (size_t)B * T;
    uint32_t *tb = sq_arena_calloc(a, N * sizeof *tb), *cnt = sq_arena_alloc(a, nb * sizeof *cnt);
    float *tv = sq_arena_alloc(a, N * sizeof *tv);
    if (!tb || !tv || !cnt)
        return sq_errorf(err, SQ_ERR_NOMEM, "multi-task: arena full");
    const uint64_t *off = sq_data_offsets(d);
    const uint8_t *beh = sq_data_behaviours(d);
    const uint16_t *scn = sq_data_scenes(d);
    const uint32_t *ctx = sq_data_context(d);
    const float *val = sq_data_values(d);
    ev_arrays e = {sq_data_items(d), beh, sq_data_times(d), scn, n_ctx ? ctx : NULL, val};
    double vsum = 0;
    long vn = 0;
    for (int b = 0; b < B; b++) {
        const uint64_t *ev = bt->events + (size_t)b * T;
        int last = T - 1;
        while (last >= 0 && ev[last] == UINT64_MAX)
            last--;
        int first = last;
        while (first > 0 && ev[first - 1] != UINT64_MAX)
            first--;
        if (last < 0)
            continue;
        uint64_t u0 = off[bt->users[b]];
        memset(cnt, 0, nb * sizeof *cnt);
        /* the window's events are u0 + [lo, hi): fill_window puts them at the last slots */
        uint32_t hi = (uint32_t)(ev[last] - u0) + 1, lo = (uint32_t)(ev[first] - u0);
        ev_arrays eu = e;
        eu.items += u0, eu.beh += u0, eu.ts += u0, eu.scene += u0;
        if (eu.val)
            eu.val += u0;
        if (eu.ctx)
            eu.ctx += u0 * n_ctx;
        uint32_t seen = 0;
        for (uint32_t k = 0; k < lo; k++, seen++) /* the user's events before the window */
            cnt[beh[u0 + k] % nb]++;
        fill_window(n, &in, b, &eu, lo, hi, cnt, seen, 0);
        for (int t = first; t <= last; t++) {
            size_t p = (size_t)b * T + (size_t)t;
            if (!bt->targets[p])
                continue;
            uint64_t nx = ev[t] + 1; /* the target event */
            tb[p] = beh[nx];
            tv[p] = val ? val[nx] : NAN;
            if (isfinite(tv[p]))
                vsum += tv[p], vn++;
            ((uint32_t *)in.rscene)[p] = scn[nx];
            for (uint32_t k = 0; k < n_ctx; k++)
                ((uint32_t *)in.rctx)[p * n_ctx + k] = ctx[nx * n_ctx + k];
        }
    }
    if (!mm->value_ready && n->slot[SQ_TASK_VALUE] >= 0 && vn) {
        sq_nn_val(&n->enc.ps, n->val_lin.b)[0] = (float)(vsum / (double)vn);
        mm->value_ready = 1;
    }
    mt_targets tg = {bt->targets, tb, tv};
    long nt = 0;
    for (size_t p = 0; p < N; p++)
        nt += bt->targets[p] != 0;
    *n_targets = nt;
    return mt_net_step(n, a, &in, &tg, rng, loss, mm->loss, mm->n, err);
}

static size_t mt_scratch(const sq_model *m, uint32_t B, uint32_t T) {
    const mt_model *mm = m->impl;
    int t = T ? (int)T : mm->net.cfg.enc.maxlen;
    size_t N = (size_t)B * t, extra = N * (8 + 3 * (m->info.n_ctx + 1)) * 4 +
                                      N * (2 + mm->net.cfg.n_beh) * 4 + (1u << 16);
    return mt_net_scratch(&mm->net, (int)B, t) + extra;
}

static sq_status mt_score(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out,
                          sq_arena *a, sq_error *err) {
    mt_inputs in;
    sq_status rc = seq_inputs(m, a, seqs, B, &in, err);
    if (rc)
        return rc;
    return mt_net_predict(&((const mt_model *)m->impl)->net, a, &in, out, NULL, NULL, NULL, err);
}

static const float *mt_item_vectors(const sq_model *m, uint32_t *dim) {
    const mt_net *n = &((const mt_model *)m->impl)->net;
    *dim = (uint32_t)n->cfg.enc.hidden;
    return sq_nn_val(&n->enc.ps, n->enc.item_emb) + n->cfg.enc.hidden;
}

static sq_status mt_seq_vectors(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out,
                                sq_arena *a, sq_error *err) {
    mt_inputs in;
    sq_status rc = seq_inputs(m, a, seqs, B, &in, err);
    if (rc)
        return rc;
    return mt_net_predict(&((const mt_model *)m->impl)->net, a, &in, NULL, NULL, NULL, out, err);
}

/* The item tag lists, kept from the dataset at creation (used when tags are an input). */
static sq_status mt_prepare(sq_model *m, const sq_dataset *d, sq_error *err) {
    mt_model *mm = m->impl;
    if (!mm->net.cfg.use_tags)
        return SQ_OK;
    const uint32_t ni = m->info.n_items;
    uint64_t total = 0;
    for (uint32_t i = 0; i < ni; i++) {
        uint32_t nt = 0;
        sq_data_item_tags(d, i, &nt);
        total += nt;
    }
    mm->tag_off = sq_mallocn((size_t)ni + 1, sizeof *mm->tag_off);
    mm->tag_ids = sq_mallocn(total ? total : 1, sizeof *mm->tag_ids);
    if (!mm->tag_off || !mm->tag_ids)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory (item tags)");
    uint64_t o = 0;
    for (uint32_t i = 0; i < ni; i++) {
        uint32_t nt = 0;
        const uint32_t *t = sq_data_item_tags(d, i, &nt);
        mm->tag_off[i] = (uint32_t)o;
        for (uint32_t j = 0; j < nt; j++)
            mm->tag_ids[o++] = t[j] < mm->net.cfg.n_tags ? t[j] : 0;
    }
    mm->tag_off[ni] = (uint32_t)o;
    mm->n_tag_ids = o;
    return SQ_OK;
}

static sq_status mt_save(const sq_model *m, sq_blob **blobs, size_t *n, sq_error *err) {
    const mt_model *mm = m->impl;
    *blobs = NULL;
    *n = 0;
    if (!mm->tag_off)
        return SQ_OK;
    sq_blob *b = sq_calloc(2, sizeof *b);
    if (!b)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    snprintf(b[0].name, sizeof b[0].name, "mt.tag_off");
    snprintf(b[1].name, sizeof b[1].name, "mt.tag_ids");
    b[0].dtype = b[1].dtype = SQ_DT_U32;
    b[0].ndim = b[1].ndim = 1;
    b[0].shape[0] = (uint64_t)m->info.n_items + 1;
    b[1].shape[0] = mm->n_tag_ids;
    b[0].data = mm->tag_off;
    b[1].data = mm->tag_ids;
    b[0].nbytes = b[0].shape[0] * 4;
    b[1].nbytes = mm->n_tag_ids * 4;
    *blobs = b;
    *n = 2;
    return SQ_OK;
}

static sq_status mt_load(sq_model *m, const sq_sqm *f, sq_error *err) {
    mt_model *mm = m->impl;
    if (!mm->net.cfg.use_tags)
        return SQ_OK;
    const sq_blob *off = sq_sqm_find(f, "mt.tag_off"), *ids = sq_sqm_find(f, "mt.tag_ids");
    const uint64_t ni = m->info.n_items;
    if (!off || !ids || off->dtype != SQ_DT_U32 || ids->dtype != SQ_DT_U32 ||
        off->nbytes != (ni + 1) * 4 || ids->nbytes % 4)
        return sq_errorf(err, SQ_ERR_FORMAT, "model file: item tag lists missing or malformed");
    mm->n_tag_ids = ids->nbytes / 4;
    mm->tag_off = sq_mallocn((size_t)ni + 1, sizeof *mm->tag_off);
    mm->tag_ids = sq_mallocn(mm->n_tag_ids ? mm->n_tag_ids : 1, sizeof *mm->tag_ids);
    if (!mm->tag_off || !mm->tag_ids)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory (item tags)");
    memcpy(mm->tag_off, off->data, off->nbytes);
    memcpy(mm->tag_ids, ids->data, ids->nbytes);
    for (uint64_t i = 0; i < ni; i++)
        if (mm->tag_off[i] > mm->tag_off[i + 1])
            return sq_errorf(err, SQ_ERR_FORMAT, "model file: item tag offsets decrease");
    if (mm->tag_off[0] || mm->tag_off[ni] != mm->n_tag_ids)
        return sq_errorf(err, SQ_ERR_FORMAT, "model file: item tag offsets out of range");
    for (uint64_t j = 0; j < mm->n_tag_ids; j++)
        if (mm->tag_ids[j] >= mm->net.cfg.n_tags)
            return sq_errorf(err, SQ_ERR_FORMAT, "model file: item tag id out of range");
    return SQ_OK;
}

static void mt_destroy(sq_model *m) {
    mt_model *mm = m->impl;
    if (!mm)
        return;
    sq_free(mm->tag_off);
    sq_free(mm->tag_ids);
    mt_net_free(&mm->net);
    sq_free(mm);
    m->impl = NULL;
    m->params = NULL;
}

static uint32_t mt_user_attrs(const sq_model *m) {
    return (uint32_t)((const mt_model *)m->impl)->net.cfg.n_uattr;
}

static const sq_model_ops mt_ops = {
    .name = "sasrec",
    .about = "SASRec over behaviour sequences with context, several tasks at once",
    .iterative = 1,
    .init = sq_mt_init,
    .train_batch = mt_train_batch,
    .scratch = mt_scratch,
    .score = mt_score,
    .item_vectors = mt_item_vectors,
    .seq_vectors = mt_seq_vectors,
    .prepare = mt_prepare,
    .save_state = mt_save,
    .load_state = mt_load,
    .destroy = mt_destroy,
    .user_attrs = mt_user_attrs,
};

sq_status sq_mt_init(sq_model *m, sq_rng *rng, sq_error *err) {
    mt_config c;
    sq_status rc = read_config(m, &c, err);
    if (rc)
        return rc;
    mt_model *mm = sq_calloc(1, sizeof *mm);
    if (!mm)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    if ((rc = mt_net_init(&mm->net, &c, rng, err))) {
        sq_free(mm);
        return rc;
    }
    m->ops = &mt_ops;
    m->impl = mm;
    m->params = &mm->net.enc.ps;
    return SQ_OK;
}

/* ====================================== Public helpers ====================================== */

unsigned sq_model_tasks(const sq_model *m, sq_task_labels *lab) {
    if (m->ops != &mt_ops)
        return 0;
    const mt_model *mm = m->impl;
    if (lab)
        *lab = mm->net.cfg.lab;
    return mm->net.cfg.tasks;
}

void sq_model_task_losses(const sq_model *m, double loss[SQ_TASK_N], long n[SQ_TASK_N]) {
    for (int t = 0; t < SQ_TASK_N; t++)
        loss[t] = 0, n[t] = 0;
    if (m->ops != &mt_ops)
        return;
    const mt_model *mm = m->impl;
    memcpy(loss, mm->loss, sizeof mm->loss);
    memcpy(n, mm->n, sizeof mm->n);
}

sq_status sq_model_predict_tasks(const sq_model *m, const sq_seq *seqs, const uint32_t *items,
                                 uint32_t B, sq_task_pred *out, float *scores, sq_arena *a,
                                 sq_error *err) {
    if (m->ops != &mt_ops)
        return sq_errorf(err, SQ_ERR_ARG, "model '%s' has no task heads (train with --tasks)",
                         m->ops->name);
    mt_inputs in;
    sq_status rc = seq_inputs(m, a, seqs, B, &in, err);
    if (rc)
        return rc;
    return mt_net_predict(&((const mt_model *)m->impl)->net, a, &in, scores, items, out, NULL, err);
}

sq_status sq_model_predict_items(const sq_model *m, const sq_seq *seq, const uint32_t *items,
                                 uint32_t K, sq_task_pred *out, sq_arena *a, sq_error *err) {
    if (m->ops != &mt_ops)
        return sq_errorf(err, SQ_ERR_ARG, "model '%s' has no task heads (train with --tasks)",
                         m->ops->name);
    mt_inputs in;
    sq_status rc = seq_inputs(m, a, seq, 1, &in, err);
    if (rc)
        return rc;
    return mt_net_predict_items(&((const mt_model *)m->impl)->net, a, &in, items, (int)K, out, err);
}

size_t sq_model_predict_items_scratch(const sq_model *m, uint32_t K) {
    if (m->ops != &mt_ops)
        return 0;
    const mt_net *n = &((const mt_model *)m->impl)->net;
    size_t row = (size_t)(8 * (n->cfg.expert_hidden + n->cfg.enc.hidden) +
                          n->n_slots * n->cfg.expert_hidden + 16) *
                 sizeof(float);
    return mt_scratch(m, 1, 0) + (size_t)K * row + (1u << 20);
}
