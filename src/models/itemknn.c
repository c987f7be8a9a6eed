/* itemknn.c — item-based k-nearest neighbours: cosine similarity of items over the users who
 * had them in training, shrunk towards zero for rarely co-occurring pairs,
 *     sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i| |U_j|) + shrink),
 * keeping each item's `neighbours` most similar items. A sequence scores item j by the
 * similarity of j to its last `history` items, the most recent weighted most (decay^age).
 * Config: neighbours (100), shrink (10), history (10), decay (0.8). */
#include "seqrec/eval.h"
#include "seqrec/model.h"

#include <math.h>
#include <omp.h>
#include <string.h>

typedef struct {
    uint32_t k;       /* neighbours kept per item */
    double shrink;    /* added to the cosine denominator */
    uint32_t history; /* recent items a sequence is scored from */
    double decay;     /* weight of an item `age` steps back: decay^age */
    uint32_t *nb;     /* [n_items, k] neighbour ids, UINT32_MAX past the last */
    float *sim;       /* [n_items, k] their similarities, best first */
} knn_state;

static sq_status knn_init(sq_model *m, sq_rng *rng, sq_error *err) {
    (void)rng;
    long k, hist;
    double shrink, decay;
    sq_status rc;
    if ((rc = sq_config_int(m->cfg, "neighbours", 100, 1, 10000, &k, err)) ||
        (rc = sq_config_double(m->cfg, "shrink", 10, 0, 1e9, &shrink, err)) ||
        (rc = sq_config_int(m->cfg, "history", 10, 1, 100000, &hist, err)) ||
        (rc = sq_config_double(m->cfg, "decay", 0.8, 0, 1, &decay, err)))
        return rc;
    if ((rc = sq_config_set_num(m->cfg, "neighbours", (double)k, 1, err)) ||
        (rc = sq_config_set_num(m->cfg, "shrink", shrink, 0, err)) ||
        (rc = sq_config_set_num(m->cfg, "history", (double)hist, 1, err)) ||
        (rc = sq_config_set_num(m->cfg, "decay", decay, 0, err)))
        return rc;
    knn_state *s = sq_calloc(1, sizeof *s);
    if (!s)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    s->k = (uint32_t)k;
    s->shrink = shrink;
    s->history = (uint32_t)hist;
    s->decay = decay;
    size_t n = (size_t)m->info.n_items * s->k;
    s->nb = sq_mallocn(n ? n : 1, sizeof *s->nb);
    s->sim = sq_calloc(n ? n : 1, sizeof *s->sim);
    m->impl = s;
    if (!s->nb || !s->sim)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        s->nb[i] = UINT32_MAX;
    return SQ_OK;
}

static sq_status knn_fit(sq_model *m, const sq_dataset *d, const sq_split *sp,
                         const sq_reporter *rep, sq_error *err) {
    knn_state *s = m->impl;
    uint32_t nu = m->info.n_users, ni = m->info.n_items;
    const uint64_t *off = sq_data_offsets(d);
    const uint32_t *items = sq_data_items(d);
    sq_status rc = SQ_OK;
    /* distinct training items per user (CSR), then users per item (CSR) */
    uint64_t *uoff = sq_calloc((size_t)nu + 1, sizeof *uoff);
    uint64_t *ioff = sq_calloc((size_t)ni + 1, sizeof *ioff);
    uint32_t *mark = sq_mallocn(ni ? ni : 1, sizeof *mark);
    uint64_t total = 0;
    for (uint32_t u = 0; u < nu; u++)
        total += sp->train_end[u];
    uint32_t *uitems = sq_mallocn(total ? total : 1, sizeof *uitems);
    uint32_t *iusers = sq_mallocn(total ? total : 1, sizeof *iusers);
    if (!uoff || !ioff || !mark || !uitems || !iusers) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    memset(mark, 0xff, (size_t)ni * sizeof *mark);
    uint64_t w = 0;
    for (uint32_t u = 0; u < nu; u++) {
        uoff[u] = w;
        for (uint64_t e = off[u]; e < off[u] + sp->train_end[u]; e++)
            if (mark[items[e]] != u && sq_split_trains_on(sp, items[e])) {
                mark[items[e]] = u;
                uitems[w++] = items[e];
                ioff[items[e] + 1]++;
            }
    }
    uoff[nu] = w;
    for (uint32_t i = 0; i < ni; i++)
        ioff[i + 1] += ioff[i];
    for (uint32_t i = 0; i < ni; i++)
        mark[i] = 0;
    for (uint32_t u = 0; u < nu; u++)
        for (uint64_t p = uoff[u]; p < uoff[u + 1]; p++) {
            uint32_t it = uitems[p];
            iusers[ioff[it] + mark[it]++] = u;
        }
    int nth = omp_get_max_threads();
    float *co_all = sq_calloc((size_t)nth * ni, sizeof *co_all);
    uint32_t *touched_all = sq_mallocn((size_t)nth * ni, sizeof *touched_all);
    if (!co_all || !touched_all) {
        sq_free(co_all);
        sq_free(touched_all);
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    uint64_t done_items = 0;
#pragma omp parallel for schedule(dynamic, 64)
    for (uint32_t i = 0; i < ni; i++) {
        int t = omp_get_thread_num();
        float *co = co_all + (size_t)t * ni;
        uint32_t *touched = touched_all + (size_t)t * ni, nt = 0;
        for (uint64_t p = ioff[i]; p < ioff[i + 1]; p++) {
            uint32_t u = iusers[p];
            for (uint64_t q = uoff[u]; q < uoff[u + 1]; q++) {
                uint32_t j = uitems[q];
                if (j == i)
                    continue;
                if (co[j] == 0)
                    touched[nt++] = j;
                co[j] += 1.0f;
            }
        }
        double ci = (double)(ioff[i + 1] - ioff[i]);
        uint32_t *ids = s->nb + (size_t)i * s->k;
        float *vals = s->sim + (size_t)i * s->k;
        uint32_t n = 0;
        for (uint32_t a = 0; a < nt; a++) {
            uint32_t j = touched[a];
            double cj = (double)(ioff[j + 1] - ioff[j]);
            float v = (float)(co[j] / (sqrt(ci * cj) + s->shrink));
            co[j] = 0;
            /* ties broken by the smaller id, whatever the thread schedule */
            if (n == s->k && v == vals[s->k - 1] && j > ids[s->k - 1])
                continue;
            if (n < s->k || v > vals[s->k - 1])
                n = sq_topk_insert(ids, vals, n, s->k, j, v);
        }
        uint64_t finished;
#pragma omp atomic capture
        finished = ++done_items;
        if (t == 0 && finished % 256 == 0)
            sq_report_progress(rep, "item-knn similarities", finished, ni, "items");
    }
    sq_report_progress(rep, "item-knn similarities", ni, ni, "items");
    sq_free(co_all);
    sq_free(touched_all);
done:
    sq_free(uoff);
    sq_free(ioff);
    sq_free(mark);
    sq_free(uitems);
    sq_free(iusers);
    return rc;
}

static sq_status knn_score(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out,
                           sq_arena *a, sq_error *err) {
    (void)a;
    (void)err;
    const knn_state *s = m->impl;
    uint32_t ni = m->info.n_items;
    for (uint32_t b = 0; b < B; b++) {
        float *o = out + (size_t)b * ni;
        memset(o, 0, ni * sizeof *o);
        const sq_seq *q = &seqs[b];
        double wgt = 1.0;
        for (uint32_t age = 0; age < s->history && age < q->n; age++, wgt *= s->decay) {
            uint32_t it = q->items[q->n - 1 - age];
            if (it >= ni)
                continue;
            const uint32_t *ids = s->nb + (size_t)it * s->k;
            const float *vals = s->sim + (size_t)it * s->k;
            for (uint32_t j = 0; j < s->k && ids[j] != UINT32_MAX; j++)
                o[ids[j]] += (float)wgt * vals[j];
        }
    }
    return SQ_OK;
}

static sq_status knn_save(const sq_model *m, sq_blob **blobs, size_t *n, sq_error *err) {
    const knn_state *s = m->impl;
    sq_blob *b = sq_calloc(2, sizeof *b);
    if (!b)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    for (int i = 0; i < 2; i++) {
        snprintf(b[i].name, sizeof b[i].name, i ? "knn.sim" : "knn.neighbours");
        b[i].dtype = i ? SQ_DT_F32 : SQ_DT_U32;
        b[i].ndim = 2;
        b[i].shape[0] = m->info.n_items;
        b[i].shape[1] = s->k;
        b[i].data = i ? (const void *)s->sim : (const void *)s->nb;
        b[i].nbytes = (uint64_t)m->info.n_items * s->k * 4;
    }
    *blobs = b;
    *n = 2;
    return SQ_OK;
}

static sq_status knn_load(sq_model *m, const sq_sqm *f, sq_error *err) {
    knn_state *s = m->impl;
    uint64_t bytes = (uint64_t)m->info.n_items * s->k * 4;
    const sq_blob *nb = sq_sqm_find(f, "knn.neighbours"), *sim = sq_sqm_find(f, "knn.sim");
    if (!nb || !sim || nb->nbytes != bytes || sim->nbytes != bytes || nb->dtype != SQ_DT_U32 ||
        sim->dtype != SQ_DT_F32)
        return sq_errorf(err, SQ_ERR_FORMAT, "model file: item-knn tables missing or malformed");
    memcpy(s->nb, nb->data, bytes);
    memcpy(s->sim, sim->data, bytes);
    for (uint64_t i = 0; i < bytes / 4; i++)
        if (s->nb[i] != UINT32_MAX && s->nb[i] >= m->info.n_items)
            return sq_errorf(err, SQ_ERR_FORMAT, "model file: item-knn neighbour id out of range");
    return SQ_OK;
}

static void knn_destroy(sq_model *m) {
    knn_state *s = m->impl;
    if (!s)
        return;
    sq_free(s->nb);
    sq_free(s->sim);
    sq_free(s);
    m->impl = NULL;
}

const sq_model_ops sq_model_itemknn_ops = {
    .name = "itemknn",
    .about = "item-based nearest neighbours (cosine with shrinkage) over recent items",
    .iterative = 0,
    .init = knn_init,
    .fit = knn_fit,
    .score = knn_score,
    .save_state = knn_save,
    .load_state = knn_load,
    .destroy = knn_destroy,
};
