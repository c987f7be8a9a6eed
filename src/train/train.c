/* train.c — the training loop for iterative models (see train.h): windows of each user's
 * training events as left-padded batches, Adam/AdamW with warm-up, clipping, validation by full
 * ranking after every epoch, early stopping with patience and the best parameters kept. */
#include "seqrec/train.h"
#include "seqrec/tasks.h"
#include "train/sampler.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

sq_status sq_train_opts_from_config(sq_config *cfg, sq_train_opts *o, sq_error *err) {
    long epochs, patience, batch, maxlen, valid_users, negatives, valid_every;
    double lr, warmup, clip, wd, min_lr;
    int decay, neg_pop;
    sq_status rc;
    if ((rc = sq_config_int(cfg, "epochs", 200, 1, 100000, &epochs, err)) ||
        (rc = sq_config_int(cfg, "patience", 5, 1, 100000, &patience, err)) ||
        (rc = sq_config_int(cfg, "batch", 128, 1, 65536, &batch, err)) ||
        (rc = sq_config_int(cfg, "maxlen", 50, 1, 4096, &maxlen, err)) ||
        (rc = sq_config_int(cfg, "valid_users", 0, 0, 1L << 31, &valid_users, err)) ||
        (rc = sq_config_int(cfg, "valid_every", 0, 0, 100000, &valid_every, err)) ||
        (rc = sq_config_double(cfg, "lr", 1e-3, 1e-9, 10, &lr, err)) ||
        (rc = sq_config_double(cfg, "warmup", 0, 0, 1, &warmup, err)) ||
        (rc = sq_config_double(cfg, "clip", 5.0, 0, 1e9, &clip, err)) ||
        (rc = sq_config_double(cfg, "weight_decay", 0, 0, 10, &wd, err)) ||
        (rc = sq_config_choice(cfg, "lr_schedule", "constant|linear|cosine", 0, &decay, err)) ||
        (rc = sq_config_double(cfg, "min_lr", 0, 0, 1, &min_lr, err)) ||
        (rc = sq_config_int(cfg, "negatives", 0, 0, 4096, &negatives, err)) ||
        (rc = sq_config_choice(cfg, "neg_sampling", "uniform|pop", 0, &neg_pop, err)))
        return rc;
    memset(o, 0, sizeof *o);
    o->epochs = (uint32_t)epochs;
    o->patience = (uint32_t)patience;
    o->batch = (uint32_t)batch;
    o->maxlen = (uint32_t)maxlen;
    o->valid_users = (uint32_t)valid_users;
    o->valid_every = (uint32_t)valid_every;
    o->lr = lr;
    o->warmup = warmup;
    o->clip = clip;
    o->weight_decay = wd;
    o->lr_decay = decay;
    o->min_lr = min_lr;
    o->negatives = (uint32_t)negatives;
    o->neg_pop = neg_pop;
    static const char *const decays[] = {"constant", "linear", "cosine"};
    if ((rc = sq_config_default(cfg, "lr_schedule", decays[decay], err)) ||
        (rc = sq_config_default(cfg, "neg_sampling", neg_pop ? "pop" : "uniform", err)))
        return rc;
    const char *keys[] = {"epochs",      "patience",  "batch",      "maxlen",
                          "valid_users", "negatives", "valid_every"};
    long vals[] = {epochs, patience, batch, maxlen, valid_users, negatives, valid_every};
    char buf[64];
    for (int i = 0; i < 7; i++) {
        snprintf(buf, sizeof buf, "%ld", vals[i]);
        if ((rc = sq_config_default(cfg, keys[i], buf, err)))
            return rc;
    }
    const char *dkeys[] = {"lr", "warmup", "clip", "weight_decay", "min_lr"};
    double dvals[] = {lr, warmup, clip, wd, min_lr};
    for (int i = 0; i < 5; i++) {
        snprintf(buf, sizeof buf, "%g", dvals[i]);
        if ((rc = sq_config_default(cfg, dkeys[i], buf, err)))
            return rc;
    }
    return SQ_OK;
}

/* Under a cold_items split: the same window over the user's events on items that may be
 * trained on (held-out items skipped wherever they stand). ev is the input event's index; the
 * target is the next kept event, not necessarily index + 1. */
static void fill_row_warm(const sq_dataset *d, const sq_split *s, uint32_t u, uint32_t T,
                          uint32_t *in, uint32_t *tg, uint8_t *beh, uint64_t *ev) {
    memset(in, 0, T * sizeof *in);
    memset(tg, 0, T * sizeof *tg);
    memset(beh, 0, T);
    for (uint32_t t = 0; t < T; t++)
        ev[t] = UINT64_MAX;
    const uint64_t base = sq_data_offsets(d)[u];
    const uint32_t *items = sq_data_items(d) + base;
    const uint8_t *b = sq_data_behaviours(d) + base;
    /* walk back from train_end, filling targets right to left */
    uint32_t slot = T, next = UINT32_MAX; /* next: the kept position after p */
    for (uint32_t p = s->train_end[u]; p-- > 0 && slot > 0;) {
        if (!sq_split_trains_on(s, items[p]))
            continue;
        if (next != UINT32_MAX) {
            slot--;
            in[slot] = items[p] + 1;
            tg[slot] = items[next] + 1;
            beh[slot] = b[p];
            ev[slot] = base + p;
        }
        next = p;
    }
}

/* Fills row b of a batch with user u's training window: inputs are the events before each
 * target, targets the training events from position 1 on, the last T of them, left-padded. */
static void fill_row(const sq_dataset *d, uint32_t u, uint32_t train_end, uint32_t T, uint32_t *in,
                     uint32_t *tg, uint8_t *beh, uint64_t *ev) {
    memset(in, 0, T * sizeof *in);
    memset(tg, 0, T * sizeof *tg);
    memset(beh, 0, T);
    for (uint32_t t = 0; t < T; t++)
        ev[t] = UINT64_MAX;
    const uint64_t base = sq_data_offsets(d)[u];
    const uint32_t *items = sq_data_items(d) + base;
    const uint8_t *b = sq_data_behaviours(d) + base;
    uint32_t n = train_end - 1 < T ? train_end - 1 : T; /* targets in the window */
    uint32_t first = train_end - n;                     /* position of the first target */
    for (uint32_t k = 0; k < n; k++) {
        uint32_t slot = T - n + k;
        in[slot] = items[first + k - 1] + 1;
        tg[slot] = items[first + k] + 1;
        beh[slot] = b[first + k - 1];
        ev[slot] = base + first + k - 1;
    }
}

/* Writes o as one line of f (flushed: the log is read while training runs) and frees it. */
static void write_line(FILE *f, cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    if (s) {
        fprintf(f, "%s\n", s);
        fflush(f);
    }
    cJSON_free(s);
    cJSON_Delete(o);
}

/* Per-task losses of an epoch (multi-task models), summed over samples. */
typedef struct {
    double sum[SQ_TASK_N];
    long n[SQ_TASK_N];
} task_acc;

static void log_epoch(FILE *f, uint32_t epoch, double loss, const task_acc *ta, double ndcg,
                      double hr, double train_s, double valid_s, uint64_t targets, float lr) {
    if (!f)
        return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "epoch", epoch);
    cJSON_AddNumberToObject(o, "loss", loss);
    cJSON *tl = NULL;
    for (int t = 0; t < SQ_TASK_N; t++)
        if (ta->n[t]) {
            if (!tl)
                tl = cJSON_AddObjectToObject(o, "task_loss");
            cJSON_AddNumberToObject(tl, sq_task_name((sq_task)t), ta->sum[t] / (double)ta->n[t]);
        }
    if (ndcg >= 0) { /* validated this epoch */
        cJSON *v = cJSON_AddObjectToObject(o, "valid");
        cJSON_AddNumberToObject(v, "ndcg@10", ndcg);
        cJSON_AddNumberToObject(v, "hr@10", hr);
    }
    cJSON_AddNumberToObject(o, "seconds", train_s);
    cJSON_AddNumberToObject(o, "valid_seconds", valid_s);
    cJSON_AddNumberToObject(o, "events_per_s", train_s > 0 ? targets / train_s : 0);
    cJSON_AddNumberToObject(o, "lr", lr);
    write_line(f, o);
}

/* The validation score of a model without next_item: the mean over its tasks of buy's and
 * click's AUC, next_behaviour's macro-F1 and 1 / (1 + value's RMSE) (each in [0, 1], higher
 * is better). */
static double task_score(const sq_task_eval *te) {
    const sq_task_metric pick[] = {SQ_TM_CTCVR_AUC, SQ_TM_CTR_AUC, SQ_TM_BEH_F1, SQ_TM_VAL_RMSE};
    double sum = 0;
    int n = 0;
    for (int i = 0; i < 4; i++) {
        double v = te->m[0][pick[i]].mean;
        if (!((te->tasks >> sq_task_metric_task(pick[i])) & 1u) || !isfinite(v))
            continue;
        sum += pick[i] == SQ_TM_VAL_RMSE ? 1.0 / (1.0 + v) : v;
        n++;
    }
    return n ? sum / n : 0;
}

/* The task metrics of a validation as one more JSON line: {"valid_tasks": {"buy": {"auc": …}}}
 * (the epoch line before it names the epoch). */
static void log_valid_tasks(FILE *f, const sq_task_eval *te) {
    if (!f || !te)
        return;
    cJSON *o = cJSON_CreateObject(), *v = cJSON_AddObjectToObject(o, "valid_tasks");
    for (int k = 0; k < SQ_TM_N; k++) {
        sq_task t = sq_task_metric_task((sq_task_metric)k);
        double x = te->m[0][k].mean;
        if (!((te->tasks >> t) & 1u) || !isfinite(x))
            continue;
        cJSON *to = cJSON_GetObjectItem(v, sq_task_name(t));
        if (!to)
            to = cJSON_AddObjectToObject(v, sq_task_name(t));
        cJSON_AddNumberToObject(to, sq_task_metric_name((sq_task_metric)k), x);
    }
    write_line(f, o);
}

sq_status sq_train(sq_model *m, const sq_dataset *d, const sq_split *s, const sq_train_opts *o,
                   sq_train_result *r, sq_error *err) {
    memset(r, 0, sizeof *r);
    if (!m->ops->iterative || !m->ops->train_batch || !m->params)
        return sq_errorf(err, SQ_ERR_ARG, "model '%s' is not trained by batches", m->ops->name);
    if (o->batch < 1 || o->maxlen < 1 || o->epochs < 1)
        return sq_errorf(err, SQ_ERR_ARG, "batch, maxlen and epochs must be positive");
    double t0 = sq_now();
    uint32_t nu = sq_data_info_of(d)->n_users, B = o->batch, T = o->maxlen;
    sq_params *ps = m->params;
    sq_status rc = SQ_OK;
    uint32_t *users = sq_mallocn(nu ? nu : 1, sizeof *users), n_users = 0;
    uint32_t *in = sq_mallocn((size_t)B * T, sizeof *in);
    uint32_t *tg = sq_mallocn((size_t)B * T, sizeof *tg);
    uint8_t *beh = sq_mallocn((size_t)B * T, 1);
    uint64_t *ev = sq_mallocn((size_t)B * T, sizeof *ev);
    uint32_t *ub = sq_mallocn(B, sizeof *ub);
    uint32_t *cold = s->item_cold ? sq_mallocn(s->n_cold ? s->n_cold : 1, sizeof *cold) : NULL,
             n_cold = 0;
    uint32_t K = o->negatives;
    uint32_t *negs = K ? sq_mallocn((size_t)B * T * K, sizeof *negs) : NULL;
    sq_neg_sampler sampler = {0};
    float *best = sq_mallocn(ps->total, sizeof *best);
    sq_arena *arena = sq_arena_create(m->ops->scratch ? m->ops->scratch(m, B, T) : 64u << 20);
    sq_optim opt = {0};
    if (!users || !in || !tg || !beh || !ev || !ub || !best || !arena || (K && !negs) ||
        (s->item_cold && !cold)) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory for training buffers");
        goto done;
    }
    if (s->item_cold && sq_model_tasks(m, NULL)) {
        rc = sq_errorf(err, SQ_ERR_ARG,
                       "multi-task models are not trained under cold_items (their targets are "
                       "the next event, which may be a held-out item's)");
        goto done;
    }
    for (uint32_t i = 0; cold && i < s->n_items && n_cold < s->n_cold; i++)
        if (s->item_cold[i])
            cold[n_cold++] = i;
    const uint64_t *uoff = sq_data_offsets(d);
    const uint32_t *uitems = sq_data_items(d);
    for (uint32_t u = 0; u < nu; u++) {
        uint32_t warm = 0;
        for (uint32_t p = 0; p < s->train_end[u] && warm < 2; p++)
            warm += sq_split_trains_on(s, uitems[uoff[u] + p]);
        if (warm >= 2)
            users[n_users++] = u;
    }
    if (n_users == 0) {
        rc = sq_errorf(err, SQ_ERR_EMPTY, "no user has two training events");
        goto done;
    }
    /* an iterative model with a fit op sees the split before its first batch: graph models
     * build their graph from the training part there (never from validation or test events) */
    if (m->ops->fit && (rc = m->ops->fit(m, d, s, &o->reporter, err)))
        goto done;
    sq_optim_opts oo = {.kind = o->weight_decay > 0 ? SQ_OPTIM_ADAMW : SQ_OPTIM_ADAM,
                        .beta1 = 0.9f,
                        .beta2 = 0.98f, /* as the original SASRec */
                        .weight_decay = (float)o->weight_decay};
    if ((rc = sq_optim_init(&opt, ps, &oo, err)))
        goto done;
    if (K && (rc = sq_neg_sampler_init(&sampler, d, s, o->neg_pop, err)))
        goto done;
    long steps_per_epoch = (n_users + B - 1) / B;
    /* validate (and count patience) every `every` epochs: at least SQ_TRAIN_MIN_STEPS steps
     * between validations, so that a small log's few steps per epoch are not judged by noise */
    uint32_t every = o->valid_every
                         ? o->valid_every
                         : (uint32_t)((SQ_TRAIN_MIN_STEPS + steps_per_epoch - 1) / steps_per_epoch);
    sq_lr_schedule sched = {(float)o->lr, (long)(o->warmup * steps_per_epoch * o->epochs),
                            steps_per_epoch * (long)o->epochs, (float)(o->lr * o->min_lr),
                            (sq_lr_decay)o->lr_decay};
    sq_rng rng = sq_rng_derive(o->seed, 1), shuffle = sq_rng_derive(o->seed, 2);
    long step = 0;
    uint32_t since_best = 0;
    r->best_ndcg10 = -1;
    r->interrupted = 0;
    sq_eval_opts vo = {
        .k = {10}, .n_k = 1, .part = SQ_EVAL_VALID, .max_users = o->valid_users, .seed = o->seed};
    for (uint32_t ep = 1; ep <= o->epochs; ep++) {
        double te = sq_now(), loss_sum = 0;
        task_acc ta = {{0}, {0}};
        uint64_t targets = 0;
        sq_rng_shuffle_u32(&shuffle, users, n_users);
        char stage[64];
        snprintf(stage, sizeof stage, "epoch %u/%u", ep, o->epochs);
        for (uint32_t start = 0; start < n_users; start += B) {
            uint32_t nb = n_users - start < B ? n_users - start : B;
            for (uint32_t b = 0; b < nb; b++) {
                ub[b] = users[start + b];
                if (s->item_cold)
                    fill_row_warm(d, s, ub[b], T, in + (size_t)b * T, tg + (size_t)b * T,
                                  beh + (size_t)b * T, ev + (size_t)b * T);
                else
                    fill_row(d, ub[b], s->train_end[ub[b]], T, in + (size_t)b * T,
                             tg + (size_t)b * T, beh + (size_t)b * T, ev + (size_t)b * T);
            }
            if (K)
                sq_neg_fill(&sampler, &rng, tg, nb, T, K, negs);
            sq_batch batch = {nb, T, ub, in, tg, beh, negs, K, sampler.logq, d, ev, cold, n_cold};
            sq_params_zero_grad(ps);
            double loss = 0;
            long nt = 0;
            sq_arena_reset(arena);
            if ((rc = m->ops->train_batch(m, &batch, arena, &rng, &loss, &nt, err)))
                goto done;
            if (!isfinite(loss)) {
                rc = sq_errorf(err, SQ_ERR_NUMERIC, "epoch %u: the loss is %g", ep, loss);
                goto done;
            }
            if (o->clip > 0 && (rc = sq_optim_clip_grad_norm(ps, (float)o->clip, NULL, err)))
                goto done;
            if ((rc = sq_optim_step(&opt, ps, sq_lr_at(&sched, step), err)))
                goto done;
            step++;
            loss_sum += loss * (double)nt;
            double tl[SQ_TASK_N];
            long tn[SQ_TASK_N];
            sq_model_task_losses(m, tl, tn);
            for (int t = 0; t < SQ_TASK_N; t++)
                ta.sum[t] += tl[t] * (double)tn[t], ta.n[t] += tn[t];
            targets += (uint64_t)nt;
            sq_report_progress(&o->reporter, stage, start + nb, n_users, "users");
            if (o->stop && *o->stop) {
                r->interrupted = 1;
                break;
            }
        }
        double train_s = sq_now() - te, tv = sq_now();
        double mean_loss = targets ? loss_sum / (double)targets : 0;
        r->epochs_run = ep;
        r->last_loss = mean_loss;
        if (ep % every && ep != o->epochs && !r->interrupted) { /* no validation this epoch */
            log_epoch(o->metrics_log, ep, mean_loss, &ta, -1, -1, train_s, 0, targets,
                      sq_lr_at(&sched, step));
            sq_report_log(&o->reporter, SQ_LOG_INFO, "train", "epoch %u: loss %.4f, %.1f s", ep,
                          mean_loss, train_s);
            continue;
        }
        /* validation: next-item ranking, and the task heads of a multi-task model (on an even
         * spread of at most 5,000 users); a model without next_item is judged by its tasks */
        double ndcg = -1, hr = -1, score;
        const unsigned tasks = sq_model_tasks(m, NULL);
        const int ranks = !tasks || (tasks >> SQ_TASK_NEXT_ITEM & 1u);
        if (ranks) {
            sq_eval_result vr;
            if ((rc = sq_evaluate(m, d, s, &vo, &vr, err)))
                goto done;
            ndcg = vr.m[0][SQ_M_NDCG].mean, hr = vr.m[0][SQ_M_HR].mean;
        }
        score = ndcg;
        sq_task_eval tev, *tep = NULL;
        if (tasks & ~(1u << SQ_TASK_NEXT_ITEM)) {
            sq_eval_opts to = vo;
            to.max_users = vo.max_users && vo.max_users < 5000 ? vo.max_users : 5000;
            if ((rc = sq_evaluate_tasks(m, d, s, &to, &tev, err)))
                goto done;
            tep = &tev;
            if (!ranks)
                score = task_score(&tev);
        }
        log_epoch(o->metrics_log, ep, mean_loss, &ta, ndcg, hr, train_s, sq_now() - tv, targets,
                  sq_lr_at(&sched, step));
        log_valid_tasks(o->metrics_log, tep);
        if (ranks)
            sq_report_log(&o->reporter, SQ_LOG_INFO, "train",
                          "epoch %u: loss %.4f, valid NDCG@10 %.4f HR@10 %.4f, %.1f s (%.0f "
                          "targets/s)",
                          ep, mean_loss, ndcg, hr, train_s, train_s > 0 ? targets / train_s : 0);
        else
            sq_report_log(&o->reporter, SQ_LOG_INFO, "train",
                          "epoch %u: loss %.4f, valid task score %.4f, %.1f s (%.0f targets/s)", ep,
                          mean_loss, score, train_s, train_s > 0 ? targets / train_s : 0);
        if (score > r->best_ndcg10) {
            r->best_ndcg10 = score;
            r->best_epoch = ep;
            memcpy(best, ps->values, ps->total * sizeof *best);
            since_best = 0;
        } else if (++since_best >= o->patience) {
            break;
        }
        if (r->interrupted) {
            sq_report_log(&o->reporter, SQ_LOG_INFO, "train",
                          "interrupted in epoch %u: keeping epoch %u", ep, r->best_epoch);
            break;
        }
    }
    memcpy(ps->values, best, ps->total * sizeof *best); /* the best epoch's parameters */
    r->seconds = sq_now() - t0;
done:
    sq_optim_free(&opt);
    sq_neg_sampler_free(&sampler);
    sq_arena_free(arena);
    sq_free(negs);
    sq_free(users);
    sq_free(in);
    sq_free(tg);
    sq_free(beh);
    sq_free(ev);
    sq_free(ub);
    sq_free(best);
    sq_free(cold);
    return rc;
}
