/* content.c — new items put with PUT /v1/items/{id} become recommendable through the model's
 * own item features, or else through their tags.
 *
 * Features ("via":"features"): a model with item features (hybrid, content, sasrec / gru4rec /
 * lstm with item_features=on; sq_model_has_item_features) featurises the item's text and tags
 * with its own featuriser (its dim and IDF, saved in the model) and scores it exactly as it
 * scores a catalogue item with that feature row and no learned id part (model.h, "Cold items").
 * Each model version of each variant sees the items through its own featuriser: sv_fx, built
 * on the first request that meets a new snapshot or a newly loaded model, holds the rows and,
 * for fast models, the item vectors, so a request adds one dot product per new item.
 *
 * Tags ("via":"tags"), for every other model: the item's content neighbours are the catalogue
 * items that share tags with it (weight: the number of tags shared; the CONTENT_NB best), and
 * its score for a sequence is the weighted mean of its neighbours' scores. For the embedding
 * models that is exactly the score of the mean of the neighbours' vectors (u · Σ w y / Σ w).
 * Items neither path can score are stored but not recommendable.
 *
 * The set of new items is an immutable, refcounted snapshot: a PUT builds the next snapshot
 * and swaps it in; requests hold the one they started with. */
#define _POSIX_C_SOURCE 200809L
#include "seqrec/eval.h"
#include "serve/serve_int.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

enum { CONTENT_NB = 256, FEAT_CAP = 1 << 16, MAX_TAGS = 256 };

/* ====================================== Tag index ============================================ */

sq_status sv_content_init(sq_server *s, sq_error *err) {
    const uint32_t nt = s->info->n_tags, ni = s->info->n_items;
    pthread_mutex_init(&s->extra_mu, NULL);
    if (!(s->tag_names = sq_strmap_create(nt ? nt : 1)) ||
        !(s->tag_off = sq_calloc((size_t)nt + 1, sizeof *s->tag_off)))
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory (tag index)");
    for (uint32_t t = 0; t < nt; t++) {
        const char *nm = sq_data_tag_name(s->d, t);
        uint32_t id;
        if (sq_strmap_intern(s->tag_names, nm, strlen(nm), &id, NULL))
            return sq_errorf(err, SQ_ERR_NOMEM, "out of memory (tag index)");
    }
    for (uint32_t i = 0; i < ni; i++) {
        uint32_t n;
        const uint32_t *tags = sq_data_item_tags(s->d, i, &n);
        for (uint32_t k = 0; k < n; k++)
            if (tags[k] < nt)
                s->tag_off[tags[k] + 1]++;
    }
    for (uint32_t t = 0; t < nt; t++)
        s->tag_off[t + 1] += s->tag_off[t];
    if (!(s->tag_items = sq_mallocn(s->tag_off[nt] ? s->tag_off[nt] : 1, sizeof *s->tag_items)))
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory (tag index)");
    uint64_t *at = sq_mallocn((size_t)nt + 1, sizeof *at);
    if (!at)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory (tag index)");
    memcpy(at, s->tag_off, ((size_t)nt + 1) * sizeof *at);
    for (uint32_t i = 0; i < ni; i++) {
        uint32_t n;
        const uint32_t *tags = sq_data_item_tags(s->d, i, &n);
        for (uint32_t k = 0; k < n; k++)
            if (tags[k] < nt)
                s->tag_items[at[tags[k]]++] = i;
    }
    sq_free(at);
    return SQ_OK;
}

/* ===================================== Snapshots ============================================= */

static void extras_free(sv_extras *x) {
    if (!x)
        return;
    for (uint32_t i = 0; i < x->n; i++) {
        sq_free(x->item[i].id);
        sq_free(x->item[i].tags_json);
        sq_free(x->item[i].text);
        sq_free(x->item[i].nb);
        sq_free(x->item[i].w);
    }
    sq_free(x->item);
    sq_free(x);
}

sv_extras *sv_extras_acquire(sq_server *s) {
    pthread_mutex_lock(&s->extra_mu);
    sv_extras *x = s->extras;
    if (x)
        atomic_fetch_add(&x->refs, 1);
    pthread_mutex_unlock(&s->extra_mu);
    return x;
}

void sv_extras_release(sv_extras *x) {
    if (x && atomic_fetch_sub(&x->refs, 1) == 1)
        extras_free(x);
}

void sv_content_free(sq_server *s) {
    if (s->extras) {
        sv_extras_release(s->extras);
        s->extras = NULL;
    }
    sq_strmap_free(s->tag_names);
    sq_free(s->tag_off);
    sq_free(s->tag_items);
    if (s->tag_off || s->tag_names)
        pthread_mutex_destroy(&s->extra_mu);
}

typedef struct {
    uint32_t item;
    float w;
} nbw;

static int cmp_nbw(const void *a, const void *b) {
    const nbw *x = a, *y = b;
    if (x->w != y->w)
        return x->w < y->w ? 1 : -1;
    return (x->item > y->item) - (x->item < y->item);
}

/* The content neighbours of a tag list (JSON array text): 0 and *out, or −1 (none / OOM). */
static int neighbours(sq_server *s, const char *tags_json, sv_extra *out) {
    cJSON *t = tags_json ? cJSON_Parse(tags_json) : NULL;
    const uint32_t ni = s->info->n_items;
    float *w = sq_calloc(ni, sizeof *w);
    int rc = -1;
    if (!w)
        goto done;
    const cJSON *x;
    cJSON_ArrayForEach(x, t) {
        if (!cJSON_IsString(x))
            continue;
        uint32_t tag = sq_strmap_find(s->tag_names, x->valuestring, strlen(x->valuestring));
        if (tag == UINT32_MAX)
            continue;
        for (uint64_t k = s->tag_off[tag]; k < s->tag_off[tag + 1]; k++)
            w[s->tag_items[k]] += 1.0f;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < ni; i++)
        n += w[i] > 0;
    if (!n)
        goto done;
    nbw *all = sq_mallocn(n, sizeof *all);
    if (!all)
        goto done;
    n = 0;
    for (uint32_t i = 0; i < ni; i++)
        if (w[i] > 0)
            all[n++] = (nbw){i, w[i]};
    qsort(all, n, sizeof *all, cmp_nbw);
    n = n < CONTENT_NB ? n : CONTENT_NB;
    out->nb = sq_mallocn(n, sizeof *out->nb);
    out->w = sq_mallocn(n, sizeof *out->w);
    if (out->nb && out->w) {
        float sum = 0.0f;
        for (uint32_t i = 0; i < n; i++)
            sum += all[i].w;
        for (uint32_t i = 0; i < n; i++) {
            out->nb[i] = all[i].item;
            out->w[i] = all[i].w / sum;
        }
        out->n_nb = n;
        rc = 0;
    }
    sq_free(all);
done:
    sq_free(w);
    cJSON_Delete(t);
    return rc;
}

/* A copy of o into c; 0 or −1 (out of memory: c holds what was copied, for extras_free). */
static int extra_copy(sv_extra *c, const sv_extra *o) {
    c->id = sq_strdup(o->id);
    c->tags_json = o->tags_json ? sq_strdup(o->tags_json) : NULL;
    c->text = o->text ? sq_strdup(o->text) : NULL;
    c->nb = sq_mallocn(o->n_nb ? o->n_nb : 1, sizeof *c->nb);
    c->w = sq_mallocn(o->n_nb ? o->n_nb : 1, sizeof *c->w);
    if (!c->id || (o->tags_json && !c->tags_json) || (o->text && !c->text) || !c->nb || !c->w)
        return -1;
    if (o->n_nb) { /* the tag rule's neighbours (none: NULL) */
        memcpy(c->nb, o->nb, o->n_nb * sizeof *c->nb);
        memcpy(c->w, o->w, o->n_nb * sizeof *c->w);
    }
    c->n_nb = o->n_nb;
    return 0;
}

int sv_content_put(sq_server *s, const char *id, size_t len, const char *tags_json,
                   const char *text) {
    if (sq_data_find_item(s->d, id, len) != UINT32_MAX)
        return 0; /* a catalogue item: the model knows it */
    sv_extra e = {0};
    int tag_ok = neighbours(s, tags_json, &e) == 0;
    e.id = sq_strndup(id, len);
    e.tags_json = tags_json ? sq_strdup(tags_json) : NULL;
    e.text = text ? sq_strdup(text) : NULL;
    int ok = e.id && (!tags_json || e.tags_json) && (!text || e.text);
    pthread_mutex_lock(&s->extra_mu);
    sv_extras *old = s->extras, *nx = sq_calloc(1, sizeof *nx);
    uint32_t n_old = old ? old->n : 0;
    ok = ok && nx && (nx->item = sq_calloc((size_t)n_old + 1, sizeof *nx->item));
    for (uint32_t i = 0; ok && i < n_old; i++) { /* copy all but the item's old entry */
        const sv_extra *o = &old->item[i];
        if (strlen(o->id) == len && !memcmp(o->id, id, len))
            continue;
        ok = extra_copy(&nx->item[nx->n++], o) == 0;
    }
    if (ok) {
        nx->item[nx->n++] = e;
        nx->gen = (old ? old->gen : 0) + 1;
        atomic_init(&nx->refs, 1);
        s->extras = nx;
    }
    pthread_mutex_unlock(&s->extra_mu);
    if (ok) {
        sv_extras_release(old);
    } else {
        extras_free(nx);
        sq_free(e.id);
        sq_free(e.tags_json);
        sq_free(e.text);
        sq_free(e.nb);
        sq_free(e.w);
    }
    return ok && tag_ok;
}

/* ================================ The model's features ======================================= */

/* Featurises one put item with the model's featuriser into col/val (FEAT_CAP); 0 columns when
 * it has no text and no tags, or they do not fit. */
static uint32_t featurize(const sq_model *m, const char *tags_json, const char *text, uint32_t *col,
                          float *val) {
    const char *names[MAX_TAGS];
    uint32_t nt = 0, n = 0;
    cJSON *t = tags_json ? cJSON_Parse(tags_json) : NULL;
    const cJSON *x;
    cJSON_ArrayForEach(x, t) {
        if (cJSON_IsString(x) && nt < MAX_TAGS)
            names[nt++] = x->valuestring;
    }
    if (sq_model_featurize(m, text, text ? strlen(text) : 0, names, nt, col, val, FEAT_CAP, &n,
                           NULL))
        n = 0;
    cJSON_Delete(t);
    return n;
}

const char *sv_content_via(const sv_model *sm, const char *tags_json, const char *text,
                           int tag_ok) {
    uint32_t *col = sm->feat ? sq_mallocn(FEAT_CAP, sizeof *col) : NULL;
    float *val = sm->feat ? sq_mallocn(FEAT_CAP, sizeof *val) : NULL;
    int feat = col && val && featurize(sm->m, tags_json, text, col, val) > 0;
    sq_free(col);
    sq_free(val);
    return feat ? "features" : tag_ok ? "tags" : NULL;
}

void sv_fx_release(sv_fx *f) {
    if (f && atomic_fetch_sub(&f->refs, 1) == 1) {
        sq_features_free(&f->rows);
        sq_free(f->via);
        sq_free(f->V);
        sq_free(f);
    }
}

/* The snapshot's items through model sm (NULL when out of memory). */
static sv_fx *fx_build(const sv_model *sm, const sv_extras *x) {
    sv_fx *f = sq_calloc(1, sizeof *f);
    uint32_t *col = sq_mallocn(FEAT_CAP, sizeof *col);
    float *val = sq_mallocn(FEAT_CAP, sizeof *val);
    int ok = f && col && val && (f->via = sq_calloc(x->n ? x->n : 1, 1)) &&
             (f->rows.row_ptr = sq_calloc((size_t)x->n + 1, sizeof *f->rows.row_ptr));
    uint64_t cap = 0;
    for (uint32_t e = 0; ok && e < x->n; e++) {
        uint32_t n = featurize(sm->m, x->item[e].tags_json, x->item[e].text, col, val);
        const uint64_t at = f->rows.row_ptr[e];
        if (at + n > cap) {
            cap = 2 * (at + n);
            uint32_t *nc = sq_reallocn(f->rows.col, cap, sizeof *nc);
            if (nc)
                f->rows.col = nc;
            float *nv = sq_reallocn(f->rows.val, cap, sizeof *nv);
            if (nv)
                f->rows.val = nv;
            ok = nc && nv;
        }
        if (ok && n) {
            memcpy(f->rows.col + at, col, n * sizeof *col);
            memcpy(f->rows.val + at, val, n * sizeof *val);
        }
        if (ok) {
            f->rows.row_ptr[e + 1] = at + n;
            f->via[e] = n > 0;
        }
    }
    sq_free(col);
    sq_free(val);
    if (ok) {
        f->rows.n_rows = x->n;
        f->gen = x->gen;
        atomic_init(&f->refs, 1);
        if (sm->fast && sm->m->ops->feature_vectors)
            ok = (f->V = sq_mallocn((size_t)x->n * sm->dim + 1, sizeof *f->V)) &&
                 !sq_model_feature_vectors(sm->m, &f->rows, f->V, NULL);
    }
    if (!ok && f) {
        atomic_init(&f->refs, 1);
        sv_fx_release(f);
        f = NULL;
    }
    return f;
}

sv_fx *sv_fx_acquire(sv_model *sm, const sv_extras *x) {
    if (!x || !sm->feat)
        return NULL;
    pthread_mutex_lock(&sm->fx_mu);
    if (!sm->fx || sm->fx->gen != x->gen) {
        sv_fx *f = fx_build(sm, x);
        if (f) {
            sv_fx_release(sm->fx);
            sm->fx = f;
        }
    }
    sv_fx *f = sm->fx && sm->fx->gen == x->gen ? sm->fx : NULL;
    if (f)
        atomic_fetch_add(&f->refs, 1);
    pthread_mutex_unlock(&sm->fx_mu);
    return f;
}

static int load_one(void *ud, const char *id, const char *tags_json, const char *text) {
    sv_content_put(ud, id, strlen(id), tags_json, text);
    return 0;
}

sq_status sv_content_load(sq_server *s, sq_error *err) {
    return sq_store_items(s->store, load_one, s, err);
}

/* ====================================== Scoring ============================================== */

uint32_t sv_extras_topk(const sv_extras *x, const sv_fx *fx, const float *xs, const float *row,
                        uint32_t k, uint32_t *ids, float *vals, uint32_t ni) {
    uint32_t have = 0;
    for (uint32_t e = 0; x && e < x->n; e++) {
        const sv_extra *it = &x->item[e];
        float v = 0.0f;
        if (fx && fx->via[e]) {
            v = xs[e];
        } else if (it->n_nb) {
            for (uint32_t j = 0; j < it->n_nb; j++)
                v += it->w[j] * row[it->nb[j]];
        } else {
            continue; /* neither path can score it */
        }
        if (have < k || v > vals[k - 1])
            have = sq_topk_insert(ids, vals, have, k, ni + e, v);
    }
    return have;
}
