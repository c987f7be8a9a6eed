/* split_sessions.c — SR-GNN's evaluation protocol as a split (data.h, sq_split_sessions).
 *
 * Each user is a session. A session belongs wholly to one part, by its time (its last event's,
 * as SR-GNN dates a session by its latest event): with t_max the latest event of the dataset,
 *   time ≥ t_test  = t_max − test_days · 86400            test        (train_end = valid_end = 0)
 *   time ≥ t_valid = t_test − valid_days · 86400          validation  (train_end = 0, valid_end =
 * n) otherwise                                             training    (train_end = valid_end = n)
 * Ties at a cut go to the later part. SR-GNN's script compares calendar dates and leaves out
 * the sessions of the cut day itself; here times are exact (DIGINETICA's eventdate plus its
 * timeframe offset), so no session is dropped.
 *
 * Evaluation (per_target, see sq_evaluate): every position from the second on of a validation
 * or test session is one prediction from the positions before it, after removing the events
 * of items that no training session has (`seen`), as SR-GNN's preprocessing does; a session
 * left with fewer than two events gives no prediction. */
#include "seqrec/data.h"

#include <string.h>

sq_status sq_split_sessions(const sq_dataset *d, double test_days, double valid_days, sq_split *s,
                            sq_error *err) {
    memset(s, 0, sizeof *s);
    if (!(test_days > 0 && valid_days > 0 && test_days < 1e6 && valid_days < 1e6))
        return sq_errorf(err, SQ_ERR_ARG,
                         "sessions split: test and validation days must be positive (test %g, "
                         "valid %g)",
                         test_days, valid_days);
    const sq_data_info *in = sq_data_info_of(d);
    const uint32_t nu = in->n_users, ni = in->n_items;
    s->kind = SQ_SPLIT_SESSIONS;
    s->n_users = nu;
    s->per_target = 1;
    s->train_end = sq_mallocn(nu ? nu : 1, sizeof *s->train_end);
    s->valid_end = sq_mallocn(nu ? nu : 1, sizeof *s->valid_end);
    s->seen = sq_calloc(ni ? ni : 1, 1);
    if (!s->train_end || !s->valid_end || !s->seen) {
        sq_split_free(s);
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory for a split of %u sessions", nu);
    }
    const uint64_t *off = sq_data_offsets(d);
    const int64_t *t = sq_data_times(d);
    const uint32_t *items = sq_data_items(d);
    int64_t t_max = INT64_MIN;
    for (uint32_t u = 0; u < nu; u++) /* sequences are in time order: the last is the latest */
        if (off[u + 1] > off[u] && t[off[u + 1] - 1] > t_max)
            t_max = t[off[u + 1] - 1];
    s->t_test = t_max - (int64_t)(test_days * 86400.0);
    s->t_valid = s->t_test - (int64_t)(valid_days * 86400.0);
    for (uint32_t u = 0; u < nu; u++) {
        uint32_t len = (uint32_t)(off[u + 1] - off[u]);
        int64_t last = len ? t[off[u + 1] - 1] : INT64_MIN;
        if (last >= s->t_test) {
            s->train_end[u] = s->valid_end[u] = 0;
        } else if (last >= s->t_valid) {
            s->train_end[u] = 0;
            s->valid_end[u] = len;
        } else {
            s->train_end[u] = s->valid_end[u] = len;
            for (uint64_t e = off[u]; e < off[u + 1]; e++)
                s->seen[items[e]] = 1;
        }
    }
    return SQ_OK;
}
