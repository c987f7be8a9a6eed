/* variants.c — the models the server answers with: one per A/B variant, each refcounted so that
 * a reload swaps in a new model while requests finish on the old one; the stable user → variant
 * split; and the cold-start popularity lists per scene. */
#define _POSIX_C_SOURCE 200809L
#include "serve/serve_int.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ========================================== Models =========================================== */

/* 1 when the model's scores are exactly its sequence vectors times its item vectors (no item
 * biases, no extra terms), checked on a few of the dataset's users: then the server scores
 * from cached vectors with one GEMM. */
static int check_fast(sq_server *s, sq_model *m, uint32_t *dim_out, sq_error *err) {
    if (!m->ops->item_vectors || !m->ops->seq_vectors)
        return 0;
    uint32_t dim = 0, ni = s->info->n_items;
    const float *Y = m->ops->item_vectors(m, &dim);
    if (!Y || !dim)
        return 0;
    enum { N = 4 };
    sq_seq q[N];
    uint32_t nq = 0;
    const uint64_t *off = sq_data_offsets(s->d);
    for (uint32_t u = 0; u < s->info->n_users && nq < N; u += 1 + s->info->n_users / N)
        q[nq++] = sq_model_user_seq(s->d, u, (uint32_t)(off[u + 1] - off[u]));
    float *sc = sq_mallocn((size_t)nq * ni, sizeof *sc), *v = sq_mallocn((size_t)nq * dim, 4);
    sq_arena *a = sq_arena_create(m->ops->scratch ? m->ops->scratch(m, nq, 0) : 64u << 20);
    int fast = 0;
    if (sc && v && a && !sq_model_score(m, q, nq, sc, a, err)) {
        sq_arena_reset(a);
        if (!m->ops->seq_vectors(m, q, nq, v, a, err)) {
            fast = 1;
            for (uint32_t b = 0; b < nq && fast; b++)
                for (uint32_t i = 0; i < ni && fast; i++) {
                    float dot =
                        cblas_sdot((int)dim, v + (size_t)b * dim, 1, Y + (size_t)i * dim, 1);
                    float ref = sc[(size_t)b * ni + i];
                    fast = fabsf(dot - ref) <= 1e-3f * (1.0f + fabsf(ref));
                }
        }
    }
    sq_free(sc);
    sq_free(v);
    sq_arena_free(a);
    *dim_out = dim;
    return fast;
}

sq_status sv_model_load(sq_server *s, const char *path, uint64_t version, sv_model **out,
                        sq_error *err) {
    sq_model *m = NULL;
    sq_status rc = sq_model_load(&m, path, s->d, err);
    if (rc)
        return rc;
    sv_model *sm = sq_calloc(1, sizeof *sm);
    if (!sm) {
        sq_model_free(m);
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    }
    sm->m = m;
    atomic_init(&sm->refs, 1);
    sm->version = version;
    sm->feat = sq_model_has_item_features(m);
    sm->uattrs = sq_model_user_attrs(m);
    pthread_mutex_init(&sm->fx_mu, NULL);
    sq_error ignore = {0};
    sm->fast = check_fast(s, m, &sm->dim, &ignore);
    if (sm->fast) {
        sm->Y = m->ops->item_vectors(m, &sm->dim);
        const uint32_t ni = m->info.n_items, dim = sm->dim;
        if (!(sm->Yp = sv_panels_make(sm->Y, ni, dim))) {
            pthread_mutex_destroy(&sm->fx_mu);
            sq_model_free(m);
            sq_free(sm);
            return sq_errorf(err, SQ_ERR_NOMEM, "out of memory (item table)");
        }
#ifdef SV_HAVE_BF16
        if (!s->o.scan_fp32 && dim <= SV_BF16_MAX_DIM) {
            double ymax = 0.0;
            for (uint32_t i = 0; i < ni; i++) {
                double n2 = 0.0;
                for (uint32_t d = 0; d < dim; d++)
                    n2 += (double)sm->Y[(size_t)i * dim + d] * sm->Y[(size_t)i * dim + d];
                ymax = fmax(ymax, sqrt(n2));
            }
            sm->ymax = (float)(ymax * (1.0 + 1e-6));
            if (!(sm->Yb = sv_panels_make_bf16(sm->Y, ni, dim))) {
                sq_free(sm->Yp);
                sq_model_free(m);
                sq_free(sm);
                return sq_errorf(err, SQ_ERR_NOMEM, "out of memory (bf16 item table)");
            }
        }
#endif
    }
    long maxlen = 0;
    if (sq_config_get(m->cfg, "maxlen") &&
        sq_config_int(m->cfg, "maxlen", 0, 0, 1 << 20, &maxlen, &ignore))
        maxlen = 0;
    sm->window = (uint32_t)maxlen;
    sm->loaded_at = (double)time(NULL);
    /* the new items put so far, through this model's featuriser, before the first request */
    sv_extras *x = sv_extras_acquire(s);
    sv_fx_release(sv_fx_acquire(sm, x));
    sv_extras_release(x);
    *out = sm;
    return SQ_OK;
}

static sq_status reload(sq_server *s, uint32_t vi, const char *path, uint64_t *version,
                        sq_error *err);

sv_model *sv_variant_acquire(sv_variant *v) {
    pthread_mutex_lock(&v->mu);
    sv_model *m = v->cur;
    atomic_fetch_add(&m->refs, 1);
    pthread_mutex_unlock(&v->mu);
    return m;
}

void sv_model_release(sv_model *m) {
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) {
        sv_fx_release(m->fx);
        pthread_mutex_destroy(&m->fx_mu);
        sq_free(m->Yp);
        sq_free(m->Yb);
        sq_model_free(m->m);
        sq_free(m);
    }
}

uint32_t sv_variant_of(const sq_server *s, const char *user, size_t len) {
    if (s->n_var <= 1)
        return 0;
    /* a hash independent of the log salt, so a user keeps their variant across restarts */
    double x = (double)(sq_hash64(user, len) >> 11) * 0x1.0p-53, acc = 0.0;
    for (uint32_t v = 0; v + 1 < s->n_var; v++) {
        acc += s->var[v].weight;
        if (x < acc)
            return v;
    }
    return s->n_var - 1;
}

sq_status sv_variant_reload(sq_server *s, uint32_t vi, const char *path, uint64_t *version,
                            sq_error *err) {
    static pthread_mutex_t one_at_a_time = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&one_at_a_time);
    sq_status rc = reload(s, vi, path, version, err);
    pthread_mutex_unlock(&one_at_a_time);
    return rc;
}

/* One reload (reloads are serialised: the variant's path is read and replaced here). */
static sq_status reload(sq_server *s, uint32_t vi, const char *path, uint64_t *version,
                        sq_error *err) {
    sv_variant *v = &s->var[vi];
    char *copy = NULL;
    if (path && !(copy = sq_malloc(strlen(path) + 1)))
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    if (copy)
        strcpy(copy, path);
    sv_model *cur = sv_variant_acquire(v);
    uint64_t next = cur->version + 1;
    sv_model_release(cur);
    sv_model *nm = NULL;
    sq_status rc = sv_model_load(s, copy ? copy : v->path, next, &nm, err);
    if (rc) {
        sq_free(copy);
        return rc;
    }
    pthread_mutex_lock(&v->mu);
    sv_model *old = v->cur;
    nm->version = old->version + 1; /* two reloads racing still count up */
    v->cur = nm;
    if (copy) {
        sq_free(v->path);
        v->path = copy;
    }
    pthread_mutex_unlock(&v->mu);
    *version = nm->version;
    sv_model_release(old);
    return SQ_OK;
}

/* ======================================== Popularity ========================================= */

/* Per-scene lists for up to this many scenes (one pass over the events each); beyond, the
 * all-scenes list only. */
enum { SV_POP_SCENES = 64 };

typedef struct {
    uint32_t item;
    uint32_t count;
} pop_entry;

static int cmp_pop(const void *a, const void *b) {
    const pop_entry *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return (x->item > y->item) - (x->item < y->item);
}

sq_status sv_popular_build(sq_server *s, sq_error *err) {
    const uint32_t ns = s->info->n_scenes, ni = s->info->n_items;
    const uint64_t ne = s->info->n_events;
    s->popular = sq_mallocn((size_t)(ns + 1) * SV_POPULAR, sizeof *s->popular);
    s->popular_count = sq_mallocn((size_t)(ns + 1) * SV_POPULAR, sizeof *s->popular_count);
    s->n_popular = sq_calloc(ns + 1, sizeof *s->n_popular);
    uint32_t *cnt = sq_calloc(ni, sizeof *cnt);
    pop_entry *e = sq_mallocn(ni, sizeof *e);
    sq_status rc = SQ_OK;
    if (!s->popular || !s->popular_count || !s->n_popular || !cnt || !e) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory (popularity lists)");
        goto done;
    }
    const uint32_t *items = sq_data_items(s->d);
    const uint16_t *scenes = sq_data_scenes(s->d);
    for (uint32_t sc = ns > SV_POP_SCENES ? ns : 0; sc <= ns; sc++) {
        memset(cnt, 0, (size_t)ni * sizeof *cnt);
        uint64_t any = 0;
        for (uint64_t i = 0; i < ne; i++)
            if (sc == ns || (scenes && scenes[i] == sc)) {
                cnt[items[i]]++;
                any++;
            }
        if (!any)
            continue;
        uint32_t n = 0;
        for (uint32_t i = 0; i < ni; i++)
            if (cnt[i])
                e[n++] = (pop_entry){i, cnt[i]};
        qsort(e, n, sizeof *e, cmp_pop);
        n = n < SV_POPULAR ? n : SV_POPULAR;
        for (uint32_t i = 0; i < n; i++) {
            s->popular[(size_t)sc * SV_POPULAR + i] = e[i].item;
            s->popular_count[(size_t)sc * SV_POPULAR + i] = e[i].count;
        }
        s->n_popular[sc] = n;
        if (ns == 1) { /* one scene: the all-scenes list is the same */
            memcpy(s->popular + (size_t)ns * SV_POPULAR, s->popular, n * sizeof *s->popular);
            memcpy(s->popular_count + (size_t)ns * SV_POPULAR, s->popular_count,
                   n * sizeof *s->popular_count);
            s->n_popular[ns] = n;
            break;
        }
    }
done:
    sq_free(cnt);
    sq_free(e);
    return rc;
}

const uint32_t *sv_popular(const sq_server *s, uint32_t scene, uint32_t *n,
                           const uint32_t **counts) {
    const uint32_t ns = s->info->n_scenes;
    if (scene >= ns || !s->n_popular[scene])
        scene = ns;
    *n = s->n_popular[scene];
    *counts = s->popular_count + (size_t)scene * SV_POPULAR;
    return s->popular + (size_t)scene * SV_POPULAR;
}
