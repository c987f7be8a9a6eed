/* fuzz_time.c — libFuzzer target for sq_parse_time and sq_parse_double: never crash, never
 * read past the slice (the input is copied to an exact-size buffer so ASan sees overreads),
 * and a parsed date lies within what four-digit years allow. */
#include "data/ingest.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *p = malloc(size ? size : 1);
    if (!p)
        return 0;
    memcpy(p, data, size);
    int64_t t;
    if (sq_parse_time(p, size, &t) == 0 && size >= 10 && p[0] >= '0' && p[0] <= '9' &&
        p[4] == '-' && (t < -62167305600LL - 86400 || t > 253402387200LL + 86400))
        abort(); /* years 0000..9999 with offsets */
    double v;
    if (sq_parse_double(p, size, &v) == 0 && !isfinite(v))
        abort();
    free(p);
    return 0;
}
