/* users.c — per-user state: an LRU cache, bounded in bytes, of what the server knows about each
 * user beyond the dataset: their live events (from the store), the items they gave negative
 * feedback on, the attributes put for them (PUT /v1/users/{id}), their last sequence vector and
 * their last recommendations (for A/B hits). Putting attributes drops the user's entry (the next
 * view loads them again), as deleting the user does.
 *
 * 64 shards, each a chained hash table with its own mutex, LRU list and 1/64 of the byte limit;
 * a shard evicts from its LRU tail whenever it is over its share.
 *
 * Keeping the cache equal to the store (serve_int.h, invariant 1). Events are applied after
 * their commit and only above the entry's last_seq. A miss loads the user from the store
 * without holding the shard lock; any event applied to the shard meanwhile bumps the shard's
 * generation, and the loader, seeing it changed, reads the user's events above what it loaded
 * (under the lock) before inserting. So an event committed before a request started is always
 * in that request's view (read-your-writes) and never twice. */
#define _POSIX_C_SOURCE 200809L
#include "serve/serve_int.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

enum { N_SHARDS = 64, MAX_NEG = 1024, REC_MAX = 64, VIEW_MAX = 10000 };

typedef struct entry {
    struct entry *hnext;       /* hash chain */
    struct entry *prev, *next; /* LRU: head = most recent */
    uint64_t hash;
    char *key;
    uint32_t klen;
    uint32_t uid;     /* dataset user or UINT32_MAX */
    int64_t last_seq; /* highest store seq applied */
    uint32_t n, cap;  /* live events (model input only: known items and behaviours) */
    sv_live_event *ev;
    uint32_t n_neg, cap_neg;
    uint32_t *neg;   /* items with negative feedback */
    uint32_t *attrs; /* [n_ua] attributes put (UINT32_MAX: not put), or NULL */
    uint32_t n_ua;   /* the dataset's user attribute fields, when attrs */
    float *vec;      /* sequence vector for vec_version, or NULL */
    uint32_t dim;
    uint64_t vec_version;
    uint32_t rec[REC_MAX]; /* last recommendations */
    uint32_t n_rec;
    uint32_t rec_var;
    double rec_time;
    size_t bytes; /* accounted size */
} entry;

typedef struct {
    pthread_mutex_t mu;
    entry **table;
    size_t n_buckets, n;
    entry *head, *tail;
    uint64_t bytes, limit;
    uint64_t gen; /* events applied to this shard (cached user or not) */
} shard;

struct sv_cache {
    shard sh[N_SHARDS];
    uint32_t user_events;
};

sq_status sv_cache_create(sv_cache **out, uint64_t max_bytes, uint32_t user_events, sq_error *err) {
    sv_cache *c = sq_calloc(1, sizeof *c);
    if (!c)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    c->user_events = user_events;
    for (int i = 0; i < N_SHARDS; i++) {
        shard *h = &c->sh[i];
        pthread_mutex_init(&h->mu, NULL);
        h->limit = max_bytes / N_SHARDS;
        h->n_buckets = 256;
        if (!(h->table = sq_calloc(h->n_buckets, sizeof *h->table))) {
            sv_cache_free(c);
            return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        }
    }
    *out = c;
    return SQ_OK;
}

static void entry_free(entry *e) {
    sq_free(e->key);
    sq_free(e->ev);
    sq_free(e->neg);
    sq_free(e->attrs);
    sq_free(e->vec);
    sq_free(e);
}

void sv_cache_free(sv_cache *c) {
    if (!c)
        return;
    for (int i = 0; i < N_SHARDS; i++) {
        shard *h = &c->sh[i];
        for (entry *e = h->head, *nx; e; e = nx) {
            nx = e->next;
            entry_free(e);
        }
        sq_free(h->table);
        pthread_mutex_destroy(&h->mu);
    }
    sq_free(c);
}

void sv_cache_usage(const sv_cache *c, uint64_t *entries, uint64_t *bytes) {
    uint64_t n = 0, b = 0;
    for (int i = 0; i < N_SHARDS; i++) {
        shard *h = (shard *)&c->sh[i];
        pthread_mutex_lock(&h->mu);
        n += h->n;
        b += h->bytes;
        pthread_mutex_unlock(&h->mu);
    }
    *entries = n;
    *bytes = b;
}

/* ====================================== Shard internals ====================================== */

static size_t entry_bytes(const entry *e) {
    return sizeof *e + e->klen + 1 + (size_t)e->cap * sizeof *e->ev +
           (size_t)e->cap_neg * sizeof *e->neg + (e->vec ? (size_t)e->dim * sizeof(float) : 0) +
           (e->attrs ? (size_t)e->n_ua * sizeof *e->attrs : 0) +
           2 * sizeof(entry *); /* its share of the bucket array */
}

static void lru_unlink(shard *h, entry *e) {
    if (e->prev)
        e->prev->next = e->next;
    else
        h->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        h->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_front(shard *h, entry *e) {
    e->next = h->head;
    e->prev = NULL;
    if (h->head)
        h->head->prev = e;
    h->head = e;
    if (!h->tail)
        h->tail = e;
}

static entry *find(shard *h, uint64_t hash, const char *key, size_t len) {
    for (entry *e = h->table[hash & (h->n_buckets - 1)]; e; e = e->hnext)
        if (e->hash == hash && e->klen == len && !memcmp(e->key, key, len))
            return e;
    return NULL;
}

static void unhash(shard *h, entry *e) {
    entry **p = &h->table[e->hash & (h->n_buckets - 1)];
    while (*p != e)
        p = &(*p)->hnext;
    *p = e->hnext;
}

static void remove_entry(shard *h, entry *e) {
    unhash(h, e);
    lru_unlink(h, e);
    h->n--;
    h->bytes -= e->bytes;
    entry_free(e);
}

/* Re-accounts e's size and evicts least recently used entries (never e) while over the limit. */
static void account(sq_server *s, shard *h, entry *e) {
    size_t b = entry_bytes(e);
    h->bytes = h->bytes - e->bytes + b;
    e->bytes = b;
    while (h->bytes > h->limit && h->tail && h->tail != e) {
        remove_entry(h, h->tail);
        atomic_fetch_add_explicit(&s->met.cache_evictions, 1, memory_order_relaxed);
    }
}

static void grow_table(shard *h) {
    size_t nb = h->n_buckets * 2;
    entry **t = sq_calloc(nb, sizeof *t);
    if (!t)
        return; /* chains just get longer */
    for (size_t i = 0; i < h->n_buckets; i++)
        for (entry *e = h->table[i], *nx; e; e = nx) {
            nx = e->hnext;
            e->hnext = t[e->hash & (nb - 1)];
            t[e->hash & (nb - 1)] = e;
        }
    sq_free(h->table);
    h->table = t;
    h->n_buckets = nb;
}

static shard *shard_of(sq_server *s, uint64_t hash) {
    return &s->cache->sh[(hash >> 58) & (N_SHARDS - 1)];
}

/* Appends a live event (dropping the oldest past user_events). 0 or -1 out of memory. */
static int push_event(entry *e, const sv_live_event *ev, uint32_t max) {
    if (e->n == e->cap) {
        if (e->cap >= max) {
            memmove(e->ev, e->ev + 1, (size_t)(e->n - 1) * sizeof *e->ev);
            e->n--;
        } else {
            uint32_t nc = e->cap ? e->cap * 2 : 8;
            nc = nc > max ? max : nc;
            sv_live_event *p = sq_realloc(e->ev, (size_t)nc * sizeof *p);
            if (!p)
                return -1;
            e->ev = p;
            e->cap = nc;
        }
    }
    e->ev[e->n++] = *ev;
    return 0;
}

static int push_neg(entry *e, uint32_t item) {
    for (uint32_t i = 0; i < e->n_neg; i++)
        if (e->neg[i] == item)
            return 0;
    if (e->n_neg == e->cap_neg) {
        if (e->cap_neg >= MAX_NEG) {
            memmove(e->neg, e->neg + 1, (size_t)(e->n_neg - 1) * sizeof *e->neg);
            e->n_neg--;
        } else {
            uint32_t nc = e->cap_neg ? e->cap_neg * 2 : 4;
            uint32_t *p = sq_realloc(e->neg, (size_t)nc * sizeof *p);
            if (!p)
                return -1;
            e->neg = p;
            e->cap_neg = nc;
        }
    }
    e->neg[e->n_neg++] = item;
    return 0;
}

/* Applies one event to an entry; counts a hit when it lands on a recent recommendation. */
static void apply(sq_server *s, entry *e, int64_t seq, const sv_live_event *ev) {
    if (seq <= e->last_seq)
        return;
    e->last_seq = seq;
    if (ev->item == UINT32_MAX)
        return;
    if (e->n_rec && sq_now() - e->rec_time <= s->o.hit_window)
        for (uint32_t i = 0; i < e->n_rec; i++)
            if (e->rec[i] == ev->item && !ev->negative) {
                atomic_fetch_add_explicit(&s->var[e->rec_var].hits, 1, memory_order_relaxed);
                e->rec[i] = e->rec[--e->n_rec]; /* one hit per recommended item */
                break;
            }
    if (ev->negative)
        push_neg(e, ev->item);
    else if (ev->beh != 255) {
        push_event(e, ev, s->cache->user_events);
        sq_free(e->vec); /* the sequence changed */
        e->vec = NULL;
    }
}

/* ========================================== Loading ========================================== */

typedef struct {
    sq_server *s;
    entry *e;
    int failed;
} load_ctx;

static int load_one(void *ud, int64_t seq, const sq_store_event *se) {
    load_ctx *c = ud;
    sv_live_event ev;
    sv_live_from_store(c->s, se, &ev);
    /* no hit counting while loading: rec list is empty */
    apply(c->s, c->e, seq, &ev);
    return 0;
}

/* The user's events above e->last_seq, and (first load) the attributes put for them: values
 * the dataset no longer has (another dataset behind the same store) are skipped. */
static sq_status load_events(sq_server *s, entry *e, sq_error *err) {
    load_ctx c = {s, e, 0};
    sq_status rc =
        sq_store_user_events(s->store, e->key, e->klen, e->last_seq, 0, load_one, &c, err);
    const uint32_t na = s->info->n_user_attrs;
    char *json = NULL;
    if (rc || !na || e->attrs || (rc = sq_store_user_attrs(s->store, e->key, e->klen, &json, err)))
        return rc;
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    if (o && (e->attrs = sq_mallocn(na, sizeof *e->attrs))) {
        e->n_ua = na;
        for (uint32_t k = 0; k < na; k++)
            e->attrs[k] = UINT32_MAX;
        const cJSON *x;
        cJSON_ArrayForEach(x, o) {
            uint32_t k, v;
            if (cJSON_IsString(x) &&
                !sq_data_user_attr_find(s->d, x->string, strlen(x->string), x->valuestring,
                                        strlen(x->valuestring), &k, &v, NULL))
                e->attrs[k] = v;
        }
    } else if (o) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    }
    cJSON_Delete(o);
    sq_free(json);
    return rc;
}

static entry *new_entry(sq_server *s, const char *user, size_t len, uint64_t hash) {
    entry *e = sq_calloc(1, sizeof *e);
    if (!e || !(e->key = sq_malloc(len + 1))) {
        sq_free(e);
        return NULL;
    }
    memcpy(e->key, user, len);
    e->key[len] = 0;
    e->klen = (uint32_t)len;
    e->hash = hash;
    e->uid = sv_forgotten(s, user, len) ? UINT32_MAX : sq_data_find_user(s->d, user, len);
    return e;
}

/* The entry of a user, locked in its shard (caller unlocks h->mu); loads on a miss. NULL with
 * err set on failure (shard unlocked then). */
static entry *get_locked(sq_server *s, const char *user, size_t len, shard **hp, sq_error *err) {
    uint64_t hash = sq_hash64(user, len);
    shard *h = shard_of(s, hash);
    *hp = h;
    pthread_mutex_lock(&h->mu);
    entry *e = find(h, hash, user, len);
    if (e) {
        atomic_fetch_add_explicit(&s->met.cache_hits, 1, memory_order_relaxed);
        lru_unlink(h, e);
        lru_front(h, e);
        return e;
    }
    uint64_t gen = h->gen;
    pthread_mutex_unlock(&h->mu);
    atomic_fetch_add_explicit(&s->met.cache_misses, 1, memory_order_relaxed);
    entry *ne = new_entry(s, user, len, hash);
    if (!ne) {
        sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (load_events(s, ne, err)) {
        entry_free(ne);
        return NULL;
    }
    pthread_mutex_lock(&h->mu);
    if ((e = find(h, hash, user, len))) { /* someone else loaded them meanwhile */
        entry_free(ne);
        lru_unlink(h, e);
        lru_front(h, e);
        return e;
    }
    if (h->gen != gen) { /* events or a deletion meanwhile: read the user again, locked */
        ne->n = ne->n_neg = 0;
        ne->last_seq = 0;
        sq_free(ne->attrs);
        ne->attrs = NULL;
        ne->uid = sv_forgotten(s, user, len) ? UINT32_MAX : sq_data_find_user(s->d, user, len);
        if (load_events(s, ne, err)) {
            pthread_mutex_unlock(&h->mu);
            entry_free(ne);
            return NULL;
        }
    }
    if (h->n + 1 > h->n_buckets)
        grow_table(h);
    ne->hnext = h->table[hash & (h->n_buckets - 1)];
    h->table[hash & (h->n_buckets - 1)] = ne;
    h->n++;
    lru_front(h, ne);
    account(s, h, ne);
    return ne;
}

/* ========================================== Views ============================================ */

void sv_view_free(sv_view *v) {
    sq_free(v->items);
    sq_free(v->beh);
    sq_free(v->ts);
    sq_free(v->scene);
    sq_free(v->values);
    sq_free(v->negative);
    sq_free(v->attrs);
    sq_free(v->vec);
    memset(v, 0, sizeof *v);
}

sq_status sv_user_view(sq_server *s, const char *user, size_t len, sv_view *v, sq_error *err) {
    memset(v, 0, sizeof *v);
    shard *h;
    entry *e = get_locked(s, user, len, &h, err);
    if (!e)
        return err->code ? err->code : SQ_ERR_INTERNAL;
    const uint64_t *off = sq_data_offsets(s->d);
    uint64_t d0 = 0, nd = 0;
    if (e->uid != UINT32_MAX) {
        d0 = off[e->uid];
        nd = off[e->uid + 1] - d0;
    }
    uint64_t total = nd + e->n, skip = total > VIEW_MAX ? total - VIEW_MAX : 0;
    uint32_t n = (uint32_t)(total - skip);
    v->uid = e->uid;
    v->known = e->uid != UINT32_MAX || e->last_seq > 0;
    v->last_seq = e->last_seq;
    v->items = sq_mallocn(n ? n : 1, sizeof *v->items);
    v->beh = sq_mallocn(n ? n : 1, sizeof *v->beh);
    v->ts = sq_mallocn(n ? n : 1, sizeof *v->ts);
    v->scene = sq_mallocn(n ? n : 1, sizeof *v->scene);
    v->values = sq_mallocn(n ? n : 1, sizeof *v->values);
    v->negative = sq_mallocn(e->n_neg ? e->n_neg : 1, sizeof *v->negative);
    const uint32_t na = s->info->n_user_attrs;
    v->attrs = sq_mallocn(na ? na : 1, sizeof *v->attrs);
    if (e->vec && (v->vec = sq_mallocn(e->dim, sizeof *v->vec))) {
        memcpy(v->vec, e->vec, e->dim * sizeof *v->vec);
        v->vec_version = e->vec_version;
    }
    if (!v->items || !v->beh || !v->ts || !v->scene || !v->values || !v->negative || !v->attrs) {
        pthread_mutex_unlock(&h->mu);
        sv_view_free(v);
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    }
    const uint32_t *di = sq_data_items(s->d);
    const uint8_t *db = sq_data_behaviours(s->d);
    const int64_t *dt = sq_data_times(s->d);
    const uint16_t *ds = sq_data_scenes(s->d);
    const float *dv = sq_data_values(s->d);
    uint32_t k = 0;
    for (uint64_t i = skip; i < nd; i++, k++) {
        v->items[k] = di[d0 + i];
        v->beh[k] = db[d0 + i];
        v->ts[k] = dt[d0 + i];
        v->scene[k] = ds ? ds[d0 + i] : 0;
        v->values[k] = dv ? dv[d0 + i] : NAN;
    }
    for (uint32_t i = skip > nd ? (uint32_t)(skip - nd) : 0; i < e->n; i++, k++) {
        v->items[k] = e->ev[i].item;
        v->beh[k] = e->ev[i].beh;
        v->ts[k] = e->ev[i].ts;
        v->scene[k] = e->ev[i].scene;
        v->values[k] = e->ev[i].value;
        v->n_live++;
    }
    v->n = k;
    if (e->n_neg)
        memcpy(v->negative, e->neg, e->n_neg * sizeof *v->negative);
    v->n_negative = e->n_neg;
    const uint32_t *da = sq_data_user_attrs(s->d);
    for (uint32_t a = 0; a < na; a++) {
        v->attrs[a] = e->attrs && e->attrs[a] != UINT32_MAX ? e->attrs[a]
                      : e->uid != UINT32_MAX && da          ? da[(size_t)e->uid * na + a]
                                                            : UINT32_MAX;
        v->n_attrs += v->attrs[a] != UINT32_MAX;
    }
    pthread_mutex_unlock(&h->mu);
    return SQ_OK;
}

void sv_user_set_vec(sq_server *s, const char *user, size_t len, int64_t last_seq, uint64_t version,
                     const float *vec, uint32_t dim) {
    uint64_t hash = sq_hash64(user, len);
    shard *h = shard_of(s, hash);
    pthread_mutex_lock(&h->mu);
    entry *e = find(h, hash, user, len);
    if (e && e->last_seq == last_seq && !(e->vec && e->vec_version == version)) {
        if (!e->vec || e->dim != dim) {
            sq_free(e->vec);
            e->vec = sq_mallocn(dim, sizeof *e->vec);
        }
        if (e->vec) {
            memcpy(e->vec, vec, dim * sizeof *vec);
            e->dim = dim;
            e->vec_version = version;
        }
        account(s, h, e);
    }
    pthread_mutex_unlock(&h->mu);
}

void sv_user_apply(sq_server *s, const char *user, size_t len, int64_t seq,
                   const sv_live_event *ev) {
    uint64_t hash = sq_hash64(user, len);
    shard *h = shard_of(s, hash);
    pthread_mutex_lock(&h->mu);
    h->gen++;
    entry *e = find(h, hash, user, len);
    if (e) {
        apply(s, e, seq, ev);
        account(s, h, e);
    }
    pthread_mutex_unlock(&h->mu);
}

void sv_user_recommended(sq_server *s, const char *user, size_t len, uint32_t variant,
                         const uint32_t *items, uint32_t n) {
    uint64_t hash = sq_hash64(user, len);
    shard *h = shard_of(s, hash);
    pthread_mutex_lock(&h->mu);
    entry *e = find(h, hash, user, len);
    if (e) {
        n = n < REC_MAX ? n : REC_MAX;
        memcpy(e->rec, items, n * sizeof *items);
        e->n_rec = n;
        e->rec_var = variant;
        e->rec_time = sq_now();
    }
    pthread_mutex_unlock(&h->mu);
}

void sv_user_forget(sq_server *s, const char *user, size_t len) {
    uint64_t hash = sq_hash64(user, len);
    shard *h = shard_of(s, hash);
    pthread_mutex_lock(&h->mu);
    h->gen++;
    entry *e = find(h, hash, user, len);
    if (e)
        remove_entry(h, e);
    pthread_mutex_unlock(&h->mu);
}
