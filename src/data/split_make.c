/* split_make.c — splits by protocol name, the one place the CLI, train, eval and tune agree on
 * what "loo", "temporal", "kfold", "sessions", "cold_items" and "cold_users" mean by default. */
#include "seqrec/data.h"

#include <stdlib.h>
#include <string.h>

sq_status sq_split_make(const sq_dataset *d, const char *protocol, uint32_t fold, uint64_t seed,
                        sq_split *s, sq_error *err) {
    if (!protocol || !strcmp(protocol, "loo"))
        return sq_split_loo(d, s, err);
    if (!strcmp(protocol, "temporal"))
        return sq_split_temporal(d, 0.1, 0.1, s, err);
    if (!strcmp(protocol, "kfold"))
        return sq_split_kfold(d, 5, fold, seed, s, err);
    if (!strcmp(protocol, "sessions"))
        return sq_split_sessions(d, 7, 7, s, err);
    int items = !strncmp(protocol, "cold_items", 10), users = !strncmp(protocol, "cold_users", 10);
    if ((items || users) && (protocol[10] == 0 || protocol[10] == ':')) {
        /* "cold_items[:SHARE]", "cold_users[:SHARE[:FIRST]]" */
        double share = 0.1;
        unsigned long first = 1;
        const char *p = protocol + 10;
        char *end = (char *)p;
        if (*p == ':') {
            share = strtod(p + 1, &end);
            if (end == p + 1 || (*end && !(users && *end == ':')))
                return sq_errorf(err, SQ_ERR_ARG, "protocol '%s': expected %s", protocol,
                                 items ? "cold_items:SHARE" : "cold_users:SHARE[:FIRST]");
            if (*end == ':') {
                const char *f = end + 1;
                first = strtoul(f, &end, 10);
                if (end == f || *end || first == 0 || first > 1000)
                    return sq_errorf(err, SQ_ERR_ARG, "protocol '%s': FIRST must be 1..1000 events",
                                     protocol);
            }
        }
        return items ? sq_split_cold_items(d, share, seed, s, err)
                     : sq_split_cold_users(d, share, (uint32_t)first, seed, s, err);
    }
    return sq_errorf(
        err, SQ_ERR_ARG,
        "unknown protocol '%s' (loo, temporal, kfold, sessions, cold_items, cold_users)", protocol);
}
