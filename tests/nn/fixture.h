/* fixture.h — PyTorch reference fixtures for the nn tests: files of records (u32 name length,
 * name, u32 count, count float32) written by tests/reference/make_*fixtures.py. */
#ifndef SEQREC_TEST_FIXTURE_H
#define SEQREC_TEST_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

enum { FX_MAXREC = 64 };

typedef struct {
    char name[64]; /* tensor name */
    uint32_t n;    /* values */
    float *v;      /* the values */
} fx_record;

typedef struct {
    fx_record r[FX_MAXREC];
    int n;
} fx_fixture;

/* Loads tests/reference/fixtures/<name> (from $SEQREC_SOURCE, else beside this file); fails the
 * test when it cannot. */
void fx_load(fx_fixture *fx, const char *name);
void fx_free(fx_fixture *fx);
/* The record `name` (the test fails without it), checked to hold n values unless n is 0. */
const fx_record *fx_get(const fx_fixture *fx, const char *name, size_t n);
/* Number of values of `ours` off the record: |a − b| > rel_tol · max(|a|, |b|, floor), NaN
 * counting as off. Prints the max differences. */
int fx_compare(const fx_fixture *fx, const char *name, const float *ours, size_t n, double rel_tol,
               double floor);

#endif
