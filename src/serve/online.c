/* online.c — online learning: fine-tunes a variant's model on the events posted since the last
 * round and swaps the result in, while requests go on with the old model.
 *
 *   events since last round (store) ─▶ their users ─▶ each user's sequence (dataset + live,
 *   as requests see it) ─▶ a copy of the model (saved and loaded: the copy shares nothing)
 *   ─▶ next-item training over those sequences (Adam at the model's lr × online_lr), passes
 *      until at least online_steps steps
 *   ─▶ saved to <store>.online-<variant>.sqm ─▶ swapped in as the variant's next version
 *
 * A round runs on POST /v1/admin/learn or, with --online-learning SECONDS, from a background
 * thread when new events have arrived. Rounds are serialised with reloads. Models trained batch
 * by batch on item sequences only (SASRec, GRU4Rec, LSTM, Caser, BPR) can learn online; the
 * multi-task SASRec needs dataset-side labels for its heads and is refused. */
#define _POSIX_C_SOURCE 200809L
#include "serve/serve_int.h"
#include "seqrec/nn_optim.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum { MAX_EVENTS = 200000, MAX_USERS = 8192, BATCH = 64, DEFAULT_T = 50 };

typedef struct {
    sq_strmap *users;
    int64_t last;
} collect_ctx;

static int collect(void *ud, int64_t seq, const sq_store_event *ev) {
    collect_ctx *c = ud;
    uint32_t id;
    c->last = seq > c->last ? seq : c->last;
    return sq_strmap_intern(c->users, ev->user, ev->user_len, &id, NULL) != SQ_OK;
}

/* One batch of up to BATCH sequences: windows of T + 1 events, left-padded, item id + 1. */
static void fill_batch(const sv_view *views, uint32_t nb, uint32_t T, uint32_t ni, uint32_t *in,
                       uint32_t *tg, uint32_t *users) {
    memset(in, 0, (size_t)nb * T * sizeof *in);
    memset(tg, 0, (size_t)nb * T * sizeof *tg);
    for (uint32_t b = 0; b < nb; b++) {
        const sv_view *v = &views[b];
        users[b] = v->uid;
        uint32_t n = v->n < T + 1 ? v->n : T + 1, first = v->n - n;
        for (uint32_t k = 0; k + 1 < n; k++) {
            uint32_t it = v->items[first + k], nx = v->items[first + k + 1];
            size_t at = (size_t)b * T + T - (n - 1) + k;
            in[at] = it < ni ? it + 1 : 0;
            tg[at] = in[at] && nx < ni ? nx + 1 : 0;
        }
    }
}

sq_status sv_online_round(sq_server *s, uint32_t vi, sv_online_result *res, sq_error *err) {
    memset(res, 0, sizeof *res);
    sv_variant *var = &s->var[vi];
    sv_model *cur = sv_variant_acquire(var);
    const sq_model *m = cur->m;
    sq_status rc = SQ_OK;
    if (!m->ops->iterative || !m->ops->train_batch || sq_config_get(m->cfg, "tasks") ||
        sq_config_get(m->cfg, "inputs")) {
        rc = sq_errorf(err, SQ_ERR_ARG,
                       "variant %s: a %s model cannot learn online (needs a model trained "
                       "batch by batch on item sequences: sasrec, gru4rec, lstm, caser, bpr)",
                       var->name, m->ops->name);
        sv_model_release(cur);
        return rc;
    }
    collect_ctx c = {sq_strmap_create(1024), s->online_seq[vi]};
    sq_model *copy = NULL;
    sv_view *views = NULL;
    uint32_t nv = 0;
    uint32_t *in = NULL, *tg = NULL, *users = NULL;
    sq_arena *a = NULL;
    sq_optim opt = {0};
    char path[1100];
    snprintf(path, sizeof path, "%s.online-%s.sqm", s->o.store_path, var->name);
    if (!c.users) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = sq_store_events_since(s->store, c.last, MAX_EVENTS, collect, &c, err)))
        goto done;
    res->events = (uint64_t)(c.last - s->online_seq[vi]);
    const uint32_t nu = (uint32_t)sq_strmap_count(c.users);
    res->users = nu;
    if (!nu)
        goto done; /* nothing new */
    /* the copy: through a file, so that it shares no state with the model in use */
    if ((rc = sq_model_save(m, path, err)) || (rc = sq_model_load(&copy, path, s->d, err)))
        goto done;
    const uint32_t T = cur->window ? cur->window : DEFAULT_T, ni = s->info->n_items;
    /* the users' sequences: the most recent MAX_USERS users with 2+ events */
    const uint32_t first_u = nu > MAX_USERS ? nu - MAX_USERS : 0;
    views = sq_calloc(nu - first_u, sizeof *views);
    in = sq_mallocn((size_t)BATCH * T, sizeof *in);
    tg = sq_mallocn((size_t)BATCH * T, sizeof *tg);
    users = sq_mallocn(BATCH, sizeof *users);
    a = sq_arena_create(copy->ops->scratch ? copy->ops->scratch(copy, BATCH, T) : (size_t)64 << 20);
    double lr = 1e-3, clip = 5.0;
    sq_error ignore = {0};
    sq_config_double(copy->cfg, "lr", 1e-3, 1e-9, 10, &lr, &ignore);
    sq_config_double(copy->cfg, "clip", 5.0, 0, 1e9, &clip, &ignore);
    lr *= s->o.online_lr;
    sq_optim_opts oo = {.kind = SQ_OPTIM_ADAM};
    if (!views || !in || !tg || !users || !a) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory (online learning)");
        goto done;
    }
    if ((rc = sq_optim_init(&opt, copy->params, &oo, err)))
        goto done;
    sq_rng rng;
    sq_rng_seed(&rng, (uint64_t)time(NULL));
    for (uint32_t u = first_u; u < nu && !rc; u++) {
        size_t len;
        const char *id = sq_strmap_key(c.users, u, &len);
        if ((rc = sv_user_view(s, id, len, &views[nv], err)))
            break;
        if (views[nv].n >= 2)
            nv++;
        else
            sv_view_free(&views[nv]);
    }
    res->sequences = nv;
    double loss_sum = 0.0;
    long targets = 0, steps = 0;
    const long min_steps = (long)s->o.online_steps;
    for (int pass = 0; !rc && nv && (pass == 0 || steps < min_steps); pass++) {
        for (uint32_t u0 = 0; u0 < nv && !rc; u0 += BATCH) {
            const uint32_t nb = nv - u0 < BATCH ? nv - u0 : BATCH;
            fill_batch(views + u0, nb, T, ni, in, tg, users);
            sq_batch b = {.B = nb, .T = T, .users = users, .inputs = in, .targets = tg};
            double loss = 0.0;
            long nt = 0;
            sq_params_zero_grad(copy->params);
            sq_arena_reset(a);
            rc = copy->ops->train_batch(copy, &b, a, &rng, &loss, &nt, err);
            if (rc || nt <= 0)
                continue;
            if (!isfinite(loss)) {
                rc = sq_errorf(err, SQ_ERR_NUMERIC, "online learning: loss %g", loss);
                break;
            }
            if (!(clip > 0 && (rc = sq_optim_clip_grad_norm(copy->params, (float)clip, NULL, err))))
                rc = sq_optim_step(&opt, copy->params, (float)lr, err);
            steps++;
            if (pass == 0) { /* the loss reported is the first pass's: before adapting much */
                loss_sum += loss * (double)nt;
                targets += nt;
            }
        }
    }
    res->steps = steps;
    if (rc || !targets)
        goto done;
    res->loss = loss_sum / (double)targets;
    if ((rc = sq_model_save(copy, path, err)))
        goto done;
    uint64_t version = 0;
    if ((rc = sv_variant_reload(s, vi, path, &version, err)))
        goto done;
    s->online_seq[vi] = c.last;
    res->version = version;
done:
    for (uint32_t k = 0; views && k < nv; k++)
        sv_view_free(&views[k]);
    sq_optim_free(&opt);
    sq_arena_free(a);
    sq_free(views);
    sq_free(in);
    sq_free(tg);
    sq_free(users);
    sq_model_free(copy);
    sq_strmap_free(c.users);
    sv_model_release(cur);
    return rc;
}

/* ===================================== Background thread ===================================== */

static void *online_main(void *arg) {
    sq_server *s = arg;
    pthread_mutex_lock(&s->online_mu);
    while (!s->online_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)s->o.online_interval;
        pthread_cond_timedwait(&s->online_cv, &s->online_mu, &until);
        if (s->online_stop)
            break;
        pthread_mutex_unlock(&s->online_mu);
        for (uint32_t v = 0; v < s->n_var; v++) {
            if (sq_store_last_seq(s->store) <= s->online_seq[v])
                continue;
            sv_online_result r;
            sq_error err = {0};
            if (sv_online_round(s, v, &r, &err))
                sq_report_log(&s->o.reporter, SQ_LOG_WARN, "serve", "online learning: %s",
                              err.msg);
            else if (r.version)
                sq_report_log(&s->o.reporter, SQ_LOG_INFO, "serve",
                              "online learning: variant %s, %llu events of %u users, loss %.4f, "
                              "model version %llu",
                              s->var[v].name, (unsigned long long)r.events, r.users, r.loss,
                              (unsigned long long)r.version);
        }
        pthread_mutex_lock(&s->online_mu);
    }
    pthread_mutex_unlock(&s->online_mu);
    return NULL;
}

sq_status sv_online_start(sq_server *s, sq_error *err) {
    pthread_mutex_init(&s->online_mu, NULL);
    pthread_cond_init(&s->online_cv, NULL);
    s->online_inited = 1;
    if (s->o.online_interval <= 0)
        return SQ_OK;
    if (pthread_create(&s->online_th, NULL, online_main, s))
        return sq_errorf(err, SQ_ERR_NOMEM, "cannot start the online learning thread");
    s->online_running = 1;
    return SQ_OK;
}

void sv_online_stop(sq_server *s) {
    if (!s->online_inited)
        return;
    pthread_mutex_lock(&s->online_mu);
    s->online_stop = 1;
    pthread_cond_broadcast(&s->online_cv);
    pthread_mutex_unlock(&s->online_mu);
    if (s->online_running)
        pthread_join(s->online_th, NULL);
    pthread_cond_destroy(&s->online_cv);
    pthread_mutex_destroy(&s->online_mu);
    s->online_inited = 0;
}
