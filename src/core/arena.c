/* arena.c — a bump allocator over one block (ggml's context idea): the activations of one
 * training step or one request come from here and vanish together at reset. */
#include "seqrec/core.h"

#include <string.h>

enum { ALIGN = 64 }; /* cache line, and enough for any SIMD load */

struct sq_arena {
    unsigned char *base; /* the block, ALIGN-aligned */
    void *raw;           /* what sq_malloc returned, for free */
    size_t cap;          /* usable bytes from base */
    size_t used;         /* bytes handed out since the last reset */
    size_t peak;         /* the largest `used` ever seen */
};

sq_arena *sq_arena_create(size_t capacity) {
    sq_arena *a = sq_malloc(sizeof *a);
    if (!a) return NULL;
    a->raw = sq_malloc(capacity + ALIGN);
    if (!a->raw) {
        sq_free(a);
        return NULL;
    }
    a->base = (unsigned char *)(((uintptr_t)a->raw + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
    a->cap = capacity;
    a->used = 0;
    a->peak = 0;
    return a;
}

void sq_arena_free(sq_arena *a) {
    if (!a) return;
    sq_free(a->raw);
    sq_free(a);
}

void *sq_arena_alloc(sq_arena *a, size_t size) {
    size_t start = (a->used + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (start > a->cap || size > a->cap - start) return NULL;
    a->used = start + size;
    if (a->used > a->peak) a->peak = a->used;
    return a->base + start;
}

void *sq_arena_calloc(sq_arena *a, size_t size) {
    void *p = sq_arena_alloc(a, size);
    if (p) memset(p, 0, size);
    return p;
}

void sq_arena_reset(sq_arena *a) {
    a->used = 0;
}

size_t sq_arena_used(const sq_arena *a) {
    return a->used;
}

size_t sq_arena_peak(const sq_arena *a) {
    return a->peak;
}

size_t sq_arena_capacity(const sq_arena *a) {
    return a->cap;
}
