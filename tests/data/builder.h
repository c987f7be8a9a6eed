/* builder.h — filling an ingest builder by hand in the data tests, without the readers: one
 * event at a time, ids interned as the readers would. */
#ifndef SEQREC_TEST_BUILDER_H
#define SEQREC_TEST_BUILDER_H

#include "data/ingest.h"

/* Appends one event of (user[0..ul), item[0..il)) at time ts with behaviour `beh`, scene
 * `scene`, value (NaN: none), input line `line` of the current file and one value per context
 * field (ctx NULL: all ""); counts it as a row read. Fails the test on out of memory. */
void tb_add_event(sq_ingest *g, const char *user, size_t ul, const char *item, size_t il,
                  int64_t ts, const char *beh, const char *scene, float value, uint64_t line,
                  const char *const *ctx);
/* Interns a NUL-terminated string into m and returns its id. */
uint32_t tb_intern(sq_strmap *m, const char *s);

#endif
