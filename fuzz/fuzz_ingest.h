/* fuzz_ingest.h — the driver shared by the reader fuzz targets: the first input byte picks
 * options (bit 0 strict, bit 1 a 64-byte line limit, bit 2 a positional --columns, bit 3 a
 * declared behaviour vocabulary, bits 4-5 the file name), the rest is the file. Checks that
 * ingest never crashes, leaks or breaks its accounting (every row an event or one reject). */
#ifndef SEQREC_FUZZ_INGEST_H
#define SEQREC_FUZZ_INGEST_H

#include "data/ingest.h"

#include <stdlib.h>
#include <string.h>

static int fuzz_ingest(const uint8_t *data, size_t size, sq_format format,
                       const char *const names[4], const char *columns) {
    if (size < 1)
        return 0;
    uint8_t cfg = data[0];
    sq_ingest_opts o;
    memset(&o, 0, sizeof o);
    o.format = format;
    o.strict = cfg & 1;
    o.max_line = (cfg & 2) ? 64 : 0;
    o.columns = (cfg & 4) ? columns : NULL;
    o.behaviours = (cfg & 8) ? "view,cart,buy" : NULL;
    sq_ingest *g = NULL;
    sq_error err = {0};
    if (sq_ingest_create(&g, &o, &err))
        return 0;
    sq_status rc = sq_ingest_buffer(g, names[(cfg >> 4) & 3], data + 1, size - 1, &err);
    uint64_t rej = 0;
    for (int r = 0; r < SQ_REJ_COUNT; r++)
        rej += g->report.rejected[r];
    if (rc == SQ_OK && g->report.rows_read != g->ev.n + rej)
        abort(); /* invariant 1 of ingest.h */
    if (rc != SQ_OK && !err.msg[0])
        abort(); /* every failure says why */
    sq_ingest_free(g);
    return 0;
}

#endif
