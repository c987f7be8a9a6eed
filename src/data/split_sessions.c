/* split_sessions.c — SR-GNN's evaluation protocol as a split (data.h, sq_split_sessions).
 *
 * Sessions are the dataset's sessions (ingest --session-gap: sq_data_sessions numbers them
 * within each user) or, without them, its users (ingest of a session-id column). A session
 * belongs wholly to one part, by its time (its last event's, as SR-GNN dates a session by its
 * latest event): with t_max the latest event of the dataset,
 *   time ≥ t_test  = t_max − test_days · 86400            test
 *   time ≥ t_valid = t_test − valid_days · 86400          validation
 *   otherwise                                             training
 * Ties at a cut go to the later part. A user's sessions are in time order, so its training
 * sessions come first, then its validation ones, then its test ones: train_end is where its
 * first validation or test session starts, valid_end where its first test session starts.
 * SR-GNN's script compares calendar dates and leaves out the sessions of the cut day itself;
 * here times are exact (DIGINETICA's eventdate plus its timeframe offset), so no session is
 * dropped.
 *
 * Evaluation (per_target, see sq_evaluate): every event after the first of a validation or
 * test session is one prediction from the session's events before it (never from an earlier
 * session), after removing the events of items that no training session has (`seen`), as
 * SR-GNN's preprocessing does; a session left with fewer than two events gives no
 * prediction. Training is the train loop's: with --session-gap its windows still run across a
 * user's training sessions. */
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
    const uint32_t *sess = sq_data_sessions(d); /* NULL: each user is one session */
    for (uint32_t u = 0; u < nu; u++) {
        uint32_t len = (uint32_t)(off[u + 1] - off[u]), a = 0;
        s->train_end[u] = s->valid_end[u] = 0;
        while (a < len) { /* session [a, b) */
            uint32_t b = a + 1;
            while (b < len && sess && sess[off[u] + b] == sess[off[u] + a])
                b++;
            if (!sess)
                b = len;
            int64_t last = t[off[u] + b - 1];
            if (last < s->t_valid)
                s->train_end[u] = s->valid_end[u] = b;
            else if (last < s->t_test)
                s->valid_end[u] = b;
            a = b;
        }
        for (uint64_t e = off[u]; e < off[u] + s->train_end[u]; e++)
            s->seen[items[e]] = 1;
    }
    return SQ_OK;
}
