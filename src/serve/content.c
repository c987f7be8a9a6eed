/* content.c — new items put with PUT /v1/items/{id} become recommendable through their tags.
 *
 * An item the dataset never saw has no embedding. Its content neighbours are the catalogue
 * items that share tags with it (weight: the number of tags shared; the CONTENT_NB best), and
 * its score for a sequence is the weighted mean of its neighbours' scores. For the embedding
 * models that is exactly the score of the mean of the neighbours' vectors (u · Σ w y / Σ w),
 * and for every other model it is the same rule on the model's own scores, so no model needs a
 * vector for the new item and a reload changes nothing here. Items without a shared tag are
 * stored but not recommendable.
 *
 * The set of new items is an immutable, refcounted snapshot: a PUT builds the next snapshot
 * and swaps it in; requests hold the one they started with. */
#define _POSIX_C_SOURCE 200809L
#include "serve/serve_int.h"
#include "seqrec/eval.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

enum { CONTENT_NB = 256 };

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

int sv_content_put(sq_server *s, const char *id, size_t len, const char *tags_json) {
    if (sq_data_find_item(s->d, id, len) != UINT32_MAX)
        return 0; /* a catalogue item: the model knows it */
    sv_extra e = {0};
    int recommendable = neighbours(s, tags_json, &e) == 0;
    pthread_mutex_lock(&s->extra_mu);
    sv_extras *old = s->extras, *nx = sq_calloc(1, sizeof *nx);
    uint32_t n_old = old ? old->n : 0;
    int ok = nx && (nx->item = sq_calloc((size_t)n_old + 1, sizeof *nx->item));
    for (uint32_t i = 0; ok && i < n_old; i++) { /* copy all but the item's old entry */
        const sv_extra *o = &old->item[i];
        if (strlen(o->id) == len && !memcmp(o->id, id, len))
            continue;
        sv_extra *c = &nx->item[nx->n];
        c->id = sq_strdup(o->id);
        c->nb = sq_mallocn(o->n_nb, sizeof *c->nb);
        c->w = sq_mallocn(o->n_nb, sizeof *c->w);
        ok = c->id && c->nb && c->w;
        if (ok) {
            memcpy(c->nb, o->nb, o->n_nb * sizeof *c->nb);
            memcpy(c->w, o->w, o->n_nb * sizeof *c->w);
            c->n_nb = o->n_nb;
        }
        nx->n++;
    }
    if (ok && recommendable) {
        e.id = sq_strndup(id, len);
        ok = e.id != NULL;
        if (ok)
            nx->item[nx->n++] = e;
    }
    if (!ok || !recommendable) {
        sq_free(e.nb);
        sq_free(e.w);
    }
    if (ok) {
        atomic_init(&nx->refs, 1);
        s->extras = nx;
    }
    pthread_mutex_unlock(&s->extra_mu);
    if (ok)
        sv_extras_release(old);
    else
        extras_free(nx);
    return ok && recommendable;
}

static int load_one(void *ud, const char *id, const char *tags_json, const char *text) {
    (void)text;
    sv_content_put(ud, id, strlen(id), tags_json);
    return 0;
}

sq_status sv_content_load(sq_server *s, sq_error *err) {
    return sq_store_items(s->store, load_one, s, err);
}

/* ====================================== Scoring ============================================== */

uint32_t sv_extras_topk(const sv_extras *x, const float *row, uint32_t k, uint32_t *ids,
                        float *vals, uint32_t ni) {
    uint32_t have = 0;
    for (uint32_t e = 0; x && e < x->n; e++) {
        const sv_extra *it = &x->item[e];
        float v = 0.0f;
        for (uint32_t j = 0; j < it->n_nb; j++)
            v += it->w[j] * row[it->nb[j]];
        if (have < k || v > vals[k - 1])
            have = sq_topk_insert(ids, vals, have, k, ni + e, v);
    }
    return have;
}
