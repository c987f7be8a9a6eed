/* alloc.c — every allocation in seqrec goes through here so that tests can fail the Nth one
 * (SQLite's test_malloc idea) and check that each error path cleans up. */
#include "seqrec/core.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Atomic (relaxed) because `serve` allocates from many threads; failure injection itself is
 * for single-threaded tests. */
static atomic_long fail_after = -1; /* allocations left before failing; < 0: never fail */
static atomic_long alloc_count = 0; /* allocations since the last sq_alloc_fail_after */

static int should_fail(void) {
    atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
    long left = atomic_load_explicit(&fail_after, memory_order_relaxed);
    if (left < 0) return 0;
    if (left == 0) return 1;
    atomic_store_explicit(&fail_after, left - 1, memory_order_relaxed);
    return 0;
}

long sq_alloc_fail_after(long n) {
    long c = atomic_exchange(&alloc_count, 0);
    atomic_store(&fail_after, n);
    return c;
}

void *sq_malloc(size_t size) {
    if (should_fail()) return NULL;
    return malloc(size ? size : 1);
}

void *sq_calloc(size_t n, size_t size) {
    if (should_fail()) return NULL;
    if (n == 0 || size == 0) return calloc(1, 1);
    return calloc(n, size);
}

void *sq_mallocn(size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    return sq_malloc(n * size);
}

void *sq_realloc(void *p, size_t size) {
    if (should_fail()) return NULL;
    return realloc(p, size ? size : 1);
}

void *sq_reallocn(void *p, size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    return sq_realloc(p, n * size);
}

char *sq_strndup(const char *s, size_t n) {
    char *d = sq_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *sq_strdup(const char *s) {
    return sq_strndup(s, strlen(s));
}

void sq_free(void *p) {
    free(p);
}

sq_status sq_grow(void **buf, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return SQ_OK;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2 / size) return SQ_ERR_NOMEM;
        c *= 2;
    }
    void *p = sq_reallocn(*buf, c, size);
    if (!p) return SQ_ERR_NOMEM;
    *buf = p;
    *cap = c;
    return SQ_OK;
}
