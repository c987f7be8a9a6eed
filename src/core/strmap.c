/* strmap.c — string interning with dense ids: an open-addressing table (linear probing, power
 * of two size, load ≤ 1/2) whose slots hold id + 1 and a 32-bit hash tag; key bytes live in
 * chunks that never move, so key pointers stay valid while the map grows.
 *
 * Invariants:
 *  1. slot[i] == 0 means empty; otherwise slot[i] - 1 is an id < count and tag[i] is the high
 *     half of that key's 64-bit hash.
 *  2. ids are 0..count-1 in insertion order; keys[id] points at len[id] bytes plus a NUL.
 *  3. count * 2 <= nslots. */
#include "seqrec/core.h"

#include <string.h>

enum { CHUNK = 1 << 16 };

typedef struct chunk {
    struct chunk *next; /* older chunk */
    size_t used, cap;   /* bytes used / available in data */
    char data[];
} chunk;

struct sq_strmap {
    uint32_t *slot;   /* id + 1, or 0 when empty */
    uint32_t *tag;    /* hash >> 32 of the key in the slot */
    size_t nslots;    /* power of two */
    const char **key; /* per id: its bytes */
    uint32_t *len;    /* per id: its length */
    size_t count;     /* ids handed out */
    size_t cap;       /* room in key/len */
    chunk *chunks;    /* newest first */
    size_t bytes;     /* memory held */
};

sq_strmap *sq_strmap_create(size_t expected) {
    sq_strmap *m = sq_calloc(1, sizeof *m);
    if (!m) return NULL;
    size_t n = 64;
    while (n < expected * 2) n *= 2;
    m->slot = sq_calloc(n, sizeof *m->slot);
    m->tag = sq_mallocn(n, sizeof *m->tag);
    if (!m->slot || !m->tag) {
        sq_strmap_free(m);
        return NULL;
    }
    m->nslots = n;
    m->bytes = n * 8;
    return m;
}

void sq_strmap_free(sq_strmap *m) {
    if (!m) return;
    for (chunk *c = m->chunks, *next; c; c = next) {
        next = c->next;
        sq_free(c);
    }
    sq_free(m->slot);
    sq_free(m->tag);
    sq_free(m->key);
    sq_free(m->len);
    sq_free(m);
}

static size_t probe(const sq_strmap *m, const char *key, size_t len, uint64_t h) {
    size_t mask = m->nslots - 1, i = (size_t)h & mask;
    uint32_t t = (uint32_t)(h >> 32);
    for (;;) {
        uint32_t s = m->slot[i];
        if (s == 0) return i;
        uint32_t id = s - 1;
        if (m->tag[i] == t && m->len[id] == len && memcmp(m->key[id], key, len) == 0) return i;
        i = (i + 1) & mask;
    }
}

static sq_status rehash(sq_strmap *m) {
    size_t n = m->nslots * 2;
    uint32_t *slot = sq_calloc(n, sizeof *slot);
    uint32_t *tag = sq_mallocn(n, sizeof *tag);
    if (!slot || !tag) {
        sq_free(slot);
        sq_free(tag);
        return SQ_ERR_NOMEM;
    }
    for (size_t i = 0; i < m->nslots; i++) {
        if (!m->slot[i]) continue;
        uint32_t id = m->slot[i] - 1;
        uint64_t h = sq_hash64(m->key[id], m->len[id]);
        size_t j = (size_t)h & (n - 1);
        while (slot[j]) j = (j + 1) & (n - 1);
        slot[j] = m->slot[i];
        tag[j] = (uint32_t)(h >> 32);
    }
    sq_free(m->slot);
    sq_free(m->tag);
    m->bytes += (n - m->nslots) * 8;
    m->slot = slot;
    m->tag = tag;
    m->nslots = n;
    return SQ_OK;
}

static char *store(sq_strmap *m, const char *key, size_t len) {
    chunk *c = m->chunks;
    if (!c || c->cap - c->used < len + 1) {
        size_t cap = len + 1 > CHUNK ? len + 1 : CHUNK;
        c = sq_malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->next = m->chunks;
        c->used = 0;
        c->cap = cap;
        m->chunks = c;
        m->bytes += sizeof *c + cap;
    }
    char *p = c->data + c->used;
    memcpy(p, key, len);
    p[len] = 0;
    c->used += len + 1;
    return p;
}

sq_status sq_strmap_intern(sq_strmap *m, const char *key, size_t len, uint32_t *id,
                           int *inserted) {
    uint64_t h = sq_hash64(key, len);
    size_t i = probe(m, key, len, h);
    if (inserted) *inserted = 0;
    if (m->slot[i]) {
        *id = m->slot[i] - 1;
        return SQ_OK;
    }
    if (m->count >= UINT32_MAX - 2 || len > UINT32_MAX) return SQ_ERR_LIMIT;
    if (m->count == m->cap) {
        size_t cap = m->cap, cap2 = m->cap;
        if (sq_grow((void **)&m->key, &cap, m->count + 1, sizeof *m->key) ||
            sq_grow((void **)&m->len, &cap2, m->count + 1, sizeof *m->len))
            return SQ_ERR_NOMEM;
        m->bytes += (cap - m->cap) * (sizeof *m->key + sizeof *m->len);
        m->cap = cap < cap2 ? cap : cap2;
    }
    char *p = store(m, key, len);
    if (!p) return SQ_ERR_NOMEM;
    uint32_t nid = (uint32_t)m->count;
    m->key[nid] = p;
    m->len[nid] = (uint32_t)len;
    m->count++;
    m->slot[i] = nid + 1;
    m->tag[i] = (uint32_t)(h >> 32);
    if (m->count * 2 > m->nslots && rehash(m) != SQ_OK) {
        /* The key is in; only the table could not grow. Keep invariant 3 by undoing. */
        m->slot[probe(m, key, len, h)] = 0;
        m->count--;
        return SQ_ERR_NOMEM;
    }
    *id = nid;
    if (inserted) *inserted = 1;
    return SQ_OK;
}

uint32_t sq_strmap_find(const sq_strmap *m, const char *key, size_t len) {
    size_t i = probe(m, key, len, sq_hash64(key, len));
    return m->slot[i] ? m->slot[i] - 1 : UINT32_MAX;
}

size_t sq_strmap_count(const sq_strmap *m) {
    return m->count;
}

const char *sq_strmap_key(const sq_strmap *m, uint32_t id, size_t *len) {
    if (id >= m->count) return NULL;
    if (len) *len = m->len[id];
    return m->key[id];
}

size_t sq_strmap_bytes(const sq_strmap *m) {
    return m->bytes;
}
