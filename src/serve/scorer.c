/* scorer.c — scoring workers. A request thread queues its job and sleeps; a worker takes every
 * pending job of the same model at once (up to MAX_BATCH) and scores them together:
 *
 *   fast models: vectors of the jobs without a cached one ─ one seq_vectors call ─┐
 *                cached vectors ──────────────────────────────────────────────────┴▶ U [B, dim]
 *                S = U · Yᵀ (one GEMM: the item table is read once for the whole batch;
 *                in bf16 when the model has that table, then the candidates exactly: rescore)
 *   other models: S = sq_model_score(sequences)
 *   new items (content.c): per job, their feature scores (fast: u · v per item, from the
 *                vectors the model gave them; others: sq_model_score_features) or the tag rule
 *   then per job: excluded items → NaN, top k.
 *
 * Under load batches grow by themselves (everything that queued while a batch ran forms the
 * next), so throughput rises with load while an idle server answers a lone request at once.
 * Each worker runs its BLAS and OpenMP single-threaded: the workers are the parallelism. */
#define _POSIX_C_SOURCE 200809L
#include "seqrec/eval.h"
#include "serve/serve_int.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

enum { MAX_BATCH = 32, SV_MAX_TEAM = 16 };
_Static_assert((int)MAX_BATCH <= (int)SV_BF16_BATCH,
               "a batch must fit the bf16 kernel's sequence buffer");

typedef struct slot {
    sv_job *job;
    sq_status rc;
    sq_error err;
    int done;
    pthread_cond_t cv;
    struct slot *next;
} slot;

typedef struct {
    sv_scorer *sc;
    pthread_t th;
    float *S; /* [MAX_BATCH, n_items] */
    float *U; /* [MAX_BATCH, dim_cap] */
    uint32_t dim_cap;
    sq_arena *a;
    size_t a_size;
    uint32_t *part_ids; /* [team, B, kmax]: each thread's top-k of its part of the catalogue */
    float *part_vals;
    size_t part_cap;
    uint32_t part_n[SV_MAX_TEAM * MAX_BATCH];
    uint32_t *x_ids; /* [B, kmax]: the top new items (content.c) of each job */
    float *x_vals;
    size_t x_cap;
    uint32_t x_n[MAX_BATCH];
    float *xs; /* the feature scores of each job's new items, job j's at xs_off[j] */
    size_t xs_cap;
    size_t xs_off[MAX_BATCH];
    sq_arena *xa; /* scoring new items by features without vectors */
    size_t xa_size;
} worker;

struct sv_scorer {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* work arrived or stop */
    slot *head, *tail;
    int stop;
    uint32_t n_items;
    int team; /* threads a worker splits the catalogue across */
    worker *w;
    uint32_t n_w, cap_w;                         /* started, allocated */
    atomic_ullong *batches, *batched, *rescored; /* the server's counters, or NULL */
};

static sq_status ensure_arena(worker *w, const sq_model *m, uint32_t B, sq_error *err) {
    size_t need = m->ops->scratch ? m->ops->scratch(m, B, 0) : (size_t)64 << 20;
    if (need > w->a_size) {
        sq_arena_free(w->a);
        w->a_size = 0;
        if (!(w->a = sq_arena_create(need)))
            return sq_errorf(err, SQ_ERR_NOMEM, "out of memory (scoring arena %zu bytes)", need);
        w->a_size = need;
    }
    sq_arena_reset(w->a);
    return SQ_OK;
}

/* The feature scores of the jobs' new items (those with fx) into w->xs: fast models dot the
 * job's vector (row j of U) with each item's vector; others score through the model. */
static sq_status feature_scores(worker *w, slot **b, uint32_t B, sq_error *err) {
    size_t need = 0;
    for (uint32_t j = 0; j < B; j++) {
        w->xs_off[j] = need;
        need += b[j]->job->fx ? b[j]->job->extras->n : 0;
    }
    if (!need)
        return SQ_OK;
    if (need > w->xs_cap) {
        sq_free(w->xs);
        w->xs_cap = (w->xs = sq_mallocn(need, sizeof *w->xs)) ? need : 0;
        if (!w->xs)
            return sq_errorf(err, SQ_ERR_NOMEM, "out of memory (new items' scores)");
    }
    const sv_model *sm = b[0]->job->model;
    const sq_model *m = sm->m;
    for (uint32_t j = 0; j < B; j++) {
        const sv_job *job = b[j]->job;
        if (!job->fx)
            continue;
        const uint32_t n = job->extras->n;
        float *xs = w->xs + w->xs_off[j];
        if (job->fx->V) {
            for (uint32_t e = 0; e < n; e++)
                xs[e] = cblas_sdot((int)sm->dim, w->U + (size_t)j * sm->dim, 1,
                                   job->fx->V + (size_t)e * sm->dim, 1);
            continue;
        }
        uint32_t dim = 0;
        if (m->ops->item_vectors)
            m->ops->item_vectors(m, &dim);
        size_t an = (m->ops->scratch ? m->ops->scratch(m, 1, 0) : (size_t)64 << 20) +
                    ((size_t)n + 2) * dim * sizeof(float) + (1u << 20);
        if (an > w->xa_size) {
            sq_arena_free(w->xa);
            w->xa_size = (w->xa = sq_arena_create(an)) ? an : 0;
            if (!w->xa)
                return sq_errorf(err, SQ_ERR_NOMEM, "out of memory (new items' arena)");
        }
        sq_arena_reset(w->xa);
        sq_status rc = sq_model_score_features(m, &job->seq, 1, &job->fx->rows, xs, w->xa, err);
        if (rc)
            return rc;
    }
    return SQ_OK;
}

/* The exact top k from the bf16 scores `row` (excluded items NaN) and job's top k of them:
 * every item whose exact score can reach the k-th best is scored exactly (sv_dot_exact, what
 * the fp32 kernel computes), in id order, so the list is the fp32 path's, ties included. With
 * b the bound on |bf16 − exact| and a the k-th best bf16 score, the exact k-th best is at least
 * a − b (k items reach it), so an item of the exact top k has a bf16 score ≥ a − 2b. */
static uint32_t rescore(sv_job *job, const float *row, uint32_t ni, const float *u,
                        const sv_model *sm) {
    const uint32_t dim = sm->dim, k = job->k;
    double un = 0.0;
    for (uint32_t d = 0; d < dim; d++)
        un += (double)u[d] * u[d];
    const float t =
        job->n < k ? -INFINITY : job->scores[k - 1] - 2.0f * sv_bf16_bound(sqrt(un), sm->ymax, dim);
    uint32_t n = 0, scored = 0;
    for (uint32_t c0 = 0; c0 < ni; c0 += SV_PANEL) {
        const uint32_t c1 = c0 + SV_PANEL < ni ? c0 + SV_PANEL : ni;
        int any = 0;
        for (uint32_t i = c0; i < c1; i++)
            any |= row[i] >= t; /* NaN (excluded) never */
        for (uint32_t i = c0; any && i < c1; i++) {
            if (!(row[i] >= t))
                continue;
            const float v = sv_dot_exact(u, sm->Y + (size_t)i * dim, dim);
            scored++;
            if (n < k || v > job->scores[k - 1])
                n = sq_topk_insert(job->ids, job->scores, n, k, i, v);
        }
    }
    job->n = n;
    return scored;
}

static sq_status score_batch(worker *w, slot **b, uint32_t B, sq_error *err) {
    const sv_model *sm = b[0]->job->model;
    const sq_model *m = sm->m;
    const uint32_t ni = w->sc->n_items;
    sq_status rc = ensure_arena(w, m, B, err);
    if (rc)
        return rc;
    if (sm->fast) {
        const uint32_t dim = sm->dim;
        if (dim > w->dim_cap) {
            float *u = sq_reallocn(w->U, (size_t)MAX_BATCH * dim, sizeof *u);
            if (!u)
                return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
            w->U = u;
            w->dim_cap = dim;
        }
        sq_seq seqs[MAX_BATCH];
        uint32_t need[MAX_BATCH], nn = 0;
        for (uint32_t j = 0; j < B; j++) {
            if (b[j]->job->vec)
                memcpy(w->U + (size_t)j * dim, b[j]->job->vec, dim * sizeof(float));
            else {
                need[nn] = j;
                seqs[nn++] = b[j]->job->seq;
            }
        }
        if (nn) {
            float *tmp = sq_arena_alloc(w->a, (size_t)nn * dim * sizeof *tmp);
            if (!tmp)
                return sq_errorf(err, SQ_ERR_NOMEM, "scoring arena too small");
            if ((rc = m->ops->seq_vectors(m, seqs, nn, tmp, w->a, err)))
                return rc;
            for (uint32_t t = 0; t < nn; t++) {
                memcpy(w->U + (size_t)need[t] * dim, tmp + (size_t)t * dim, dim * sizeof *tmp);
                if (b[need[t]]->job->vec_out)
                    memcpy(b[need[t]]->job->vec_out, tmp + (size_t)t * dim, dim * sizeof *tmp);
            }
        }
    } else {
        sq_seq seqs[MAX_BATCH];
        for (uint32_t j = 0; j < B; j++)
            seqs[j] = b[j]->job->seq;
        if ((rc = sq_model_score(m, seqs, B, w->S, w->a, err)))
            return rc;
    }
    /* scores (fast models), exclusions and top-k, the catalogue split across the cores */
    uint32_t kmax = 0;
    for (uint32_t j = 0; j < B; j++)
        kmax = b[j]->job->k > kmax ? b[j]->job->k : kmax;
    const int nt = w->sc->team;
    const size_t need = (size_t)nt * B * kmax;
    if (need > w->part_cap) {
        sq_free(w->part_ids);
        sq_free(w->part_vals);
        w->part_ids = sq_mallocn(need, sizeof *w->part_ids);
        w->part_vals = sq_mallocn(need, sizeof *w->part_vals);
        w->part_cap = w->part_ids && w->part_vals ? need : 0;
        if (!w->part_cap)
            return sq_errorf(err, SQ_ERR_NOMEM, "out of memory (top-k lists)");
    }
    if ((size_t)B * kmax > w->x_cap) {
        sq_free(w->x_ids);
        sq_free(w->x_vals);
        w->x_ids = sq_mallocn((size_t)B * kmax, sizeof *w->x_ids);
        w->x_vals = sq_mallocn((size_t)B * kmax, sizeof *w->x_vals);
        w->x_cap = w->x_ids && w->x_vals ? (size_t)B * kmax : 0;
        if (!w->x_cap)
            return sq_errorf(err, SQ_ERR_NOMEM, "out of memory (top-k lists)");
    }
    if ((rc = feature_scores(w, b, B, err)))
        return rc;
    uint32_t *pn = w->part_n;
    const uint32_t n_panels = (ni + SV_PANEL - 1) / SV_PANEL;
    /* the bf16 scan: approximate scores, then the candidates scored exactly (below) */
    int bf = sm->fast && sm->Yb;
    for (uint32_t j = 0; j < B && bf; j++)
        bf = !b[j]->job->extras || !b[j]->job->extras->n; /* new items need the exact row */
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num(), tn = omp_get_num_threads();
        const uint32_t i0 = (uint32_t)((uint64_t)n_panels * t / tn) * SV_PANEL;
        uint32_t i1 = (uint32_t)((uint64_t)n_panels * (t + 1) / tn) * SV_PANEL;
        i1 = i1 < ni ? i1 : ni;
        if (bf && i0 < i1)
            sv_dot_panels_bf16(w->U, B, sm->dim, sm->Yb, ni, w->S, i0, i1);
        else if (sm->fast && i0 < i1)
            sv_dot_panels(w->U, B, sm->dim, sm->Yp, ni, w->S, i0, i1);
            /* new items score from their neighbours' scores: the whole row, before exclusions */
#pragma omp barrier
#pragma omp for
        for (uint32_t j = 0; j < B; j++)
            w->x_n[j] = sv_extras_topk(
                b[j]->job->extras, b[j]->job->fx, b[j]->job->fx ? w->xs + w->xs_off[j] : NULL,
                w->S + (size_t)j * ni, b[j]->job->k, w->x_ids + (size_t)j * kmax,
                w->x_vals + (size_t)j * kmax, ni);
        for (uint32_t j = 0; j < B; j++) {
            sv_job *job = b[j]->job;
            float *row = w->S + (size_t)j * ni;
            for (uint32_t e = 0; e < job->n_exclude; e++)
                if (job->exclude[e] >= i0 && job->exclude[e] < i1)
                    row[job->exclude[e]] = NAN;
            uint32_t *ids = w->part_ids + ((size_t)t * B + j) * kmax;
            float *vals = w->part_vals + ((size_t)t * B + j) * kmax;
            uint32_t n = i0 < i1 ? sq_topk(row + i0, i1 - i0, job->k, NULL, 0, ids, vals) : 0;
            for (uint32_t q = 0; q < n; q++)
                ids[q] += i0;
            pn[t * MAX_BATCH + j] = n;
        }
    }
    /* merge the threads' lists, then the new items' (catalogue items win ties): ranges are in
     * id order and an equal score stays behind those inserted before it, so the result is
     * sq_topk's over the whole row (ties by the smaller id) */
    for (uint32_t j = 0; j < B; j++) {
        sv_job *job = b[j]->job;
        uint32_t n = 0;
        for (int t = 0; t <= nt; t++) {
            const uint32_t len = t < nt ? pn[t * MAX_BATCH + j] : w->x_n[j];
            const size_t at = t < nt ? ((size_t)t * B + j) * kmax : (size_t)j * kmax;
            const uint32_t *ids = t < nt ? w->part_ids + at : w->x_ids + at;
            const float *vals = t < nt ? w->part_vals + at : w->x_vals + at;
            for (uint32_t q = 0; q < len && (n < job->k || vals[q] > job->scores[job->k - 1]); q++)
                n = sq_topk_insert(job->ids, job->scores, n, job->k, ids[q], vals[q]);
        }
        job->n = n;
        if (bf) {
            const uint32_t c =
                rescore(job, w->S + (size_t)j * ni, ni, w->U + (size_t)j * sm->dim, sm);
            if (w->sc->rescored)
                atomic_fetch_add_explicit(w->sc->rescored, c, memory_order_relaxed);
        }
    }
    return SQ_OK;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    sv_scorer *sc = w->sc;
    omp_set_num_threads(1);
    for (;;) {
        slot *b[MAX_BATCH];
        uint32_t B = 0;
        pthread_mutex_lock(&sc->mu);
        while (!sc->head && !sc->stop)
            pthread_cond_wait(&sc->cv, &sc->mu);
        if (!sc->head) {
            pthread_mutex_unlock(&sc->mu);
            break;
        }
        /* every pending job of the first job's model, oldest first */
        const sv_model *m = sc->head->job->model;
        slot **pp = &sc->head;
        while (*pp && B < MAX_BATCH) {
            slot *s = *pp;
            if (s->job->model == m) {
                b[B++] = s;
                *pp = s->next;
            } else {
                pp = &s->next;
            }
        }
        sc->tail = NULL;
        for (slot *s = sc->head; s; s = s->next)
            sc->tail = s;
        pthread_mutex_unlock(&sc->mu);

        sq_error err = {0};
        sq_status rc = score_batch(w, b, B, &err);
        if (sc->batches) {
            atomic_fetch_add_explicit(sc->batches, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(sc->batched, B, memory_order_relaxed);
        }
        pthread_mutex_lock(&sc->mu);
        for (uint32_t j = 0; j < B; j++) {
            b[j]->rc = rc;
            b[j]->err = err;
            b[j]->done = 1;
            pthread_cond_signal(&b[j]->cv);
        }
        pthread_mutex_unlock(&sc->mu);
    }
    return NULL;
}

sq_status sv_scorer_create(sv_scorer **out, uint32_t threads, uint32_t team, uint32_t n_items,
                           sq_error *err) {
    sv_scorer *sc = sq_calloc(1, sizeof *sc);
    if (!sc)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&sc->mu, NULL);
    pthread_cond_init(&sc->cv, NULL);
    sc->n_items = n_items;
    sc->team = team < 1 ? 1 : team > SV_MAX_TEAM ? SV_MAX_TEAM : (int)team;
    if (!(sc->w = sq_calloc(threads, sizeof *sc->w))) {
        sv_scorer_free(sc);
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    }
    sc->cap_w = threads;
    for (uint32_t i = 0; i < threads; i++) {
        worker *w = &sc->w[i];
        w->sc = sc;
        if (!(w->S = sq_mallocn((size_t)MAX_BATCH * n_items, sizeof *w->S))) {
            sv_scorer_free(sc);
            return sq_errorf(err, SQ_ERR_NOMEM, "out of memory (score buffers)");
        }
        if (pthread_create(&w->th, NULL, worker_main, w)) {
            sv_scorer_free(sc);
            return sq_errorf(err, SQ_ERR_NOMEM, "cannot start a scoring thread");
        }
        sc->n_w++;
    }
    *out = sc;
    return SQ_OK;
}

void sv_scorer_count(sv_scorer *sc, atomic_ullong *batches, atomic_ullong *batched,
                     atomic_ullong *rescored) {
    sc->batches = batches;
    sc->batched = batched;
    sc->rescored = rescored;
}

void sv_scorer_free(sv_scorer *sc) {
    if (!sc)
        return;
    pthread_mutex_lock(&sc->mu);
    sc->stop = 1;
    pthread_cond_broadcast(&sc->cv);
    pthread_mutex_unlock(&sc->mu);
    for (uint32_t i = 0; i < sc->n_w; i++)
        pthread_join(sc->w[i].th, NULL);
    if (sc->w)
        for (uint32_t i = 0; i < sc->cap_w; i++) {
            sq_free(sc->w[i].S);
            sq_free(sc->w[i].U);
            sq_free(sc->w[i].part_ids);
            sq_free(sc->w[i].part_vals);
            sq_free(sc->w[i].x_ids);
            sq_free(sc->w[i].x_vals);
            sq_free(sc->w[i].xs);
            sq_arena_free(sc->w[i].a);
            sq_arena_free(sc->w[i].xa);
        }
    sq_free(sc->w);
    pthread_cond_destroy(&sc->cv);
    pthread_mutex_destroy(&sc->mu);
    sq_free(sc);
}

sq_status sv_scorer_run(sv_scorer *sc, sv_job *job, sq_error *err) {
    if (job->k == 0) {
        job->n = 0;
        return SQ_OK;
    }
    slot s = {.job = job};
    pthread_cond_init(&s.cv, NULL);
    pthread_mutex_lock(&sc->mu);
    if (sc->tail)
        sc->tail->next = &s;
    else
        sc->head = &s;
    sc->tail = &s;
    pthread_cond_signal(&sc->cv);
    while (!s.done)
        pthread_cond_wait(&s.cv, &sc->mu);
    pthread_mutex_unlock(&sc->mu);
    pthread_cond_destroy(&s.cv);
    if (s.rc && err)
        *err = s.err;
    return s.rc;
}
