/* split_make.c — splits by protocol name, the one place the CLI, train, eval and tune agree on
 * what "loo", "temporal", "kfold",
 * "cold_items" and "cold_users" mean by default. */
#include "seqrec/data.h"

#include <string.h>

sq_status sq_split_make(const sq_dataset *d, const char *protocol, uint32_t fold, uint64_t seed,
                        sq_split *s, sq_error *err) {
    if (!protocol || !strcmp(protocol, "loo"))
        return sq_split_loo(d, s, err);
    if (!strcmp(protocol, "temporal"))
        return sq_split_temporal(d, 0.1, 0.1, s, err);
    if (!strcmp(protocol, "kfold"))
        return sq_split_kfold(d, 5, fold, seed, s, err);
    if (!strcmp(protocol, "cold_items"))
        return sq_split_cold_items(d, 0.1, seed, s, err);
    if (!strcmp(protocol, "cold_users"))
        return sq_split_cold_users(d, 0.1, 1, seed, s, err);
    return sq_errorf(err, SQ_ERR_ARG,
                     "unknown protocol '%s' (loo, temporal, kfold, cold_items, cold_users)",
                     protocol);
}
