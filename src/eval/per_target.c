/* per_target.c — the evaluation of the sessions protocol (per_target.h): SR-GNN's "every
 * prefix of a test session predicts its next item", P@K (= HR@K here) and MRR@K averaged over
 * all those predictions.
 *
 * A prediction's input is the events of its own session before it (the dataset's sessions, or
 * the whole user without them). The evaluated users' sequences are first copied without the
 * events of unseen items (when the split has `seen`); a user who lost none is scored from the
 * dataset's own arrays (with behaviours, times and context), the others from the filtered item
 * ids alone. Predictions are
 * scored in batches of o->batch sequences and ranked in parallel over a batch; their values
 * enter the accumulator in prediction order. */
#include "eval/per_target.h"

#include <omp.h>
#include <string.h>

typedef struct {
    uint32_t user;  /* dataset user */
    uint32_t start; /* where the target's session starts in the user's (filtered) sequence */
    uint32_t pos;   /* position of the target there */
    uint32_t c;     /* index of the user among the chosen ones */
} prediction;

/* Events [start, end) of user u, with every array the dataset has. */
static sq_seq window(const sq_dataset *d, uint32_t u, uint32_t start, uint32_t end) {
    sq_seq q = sq_model_user_seq(d, u, end);
    const uint32_t nc = sq_data_info_of(d)->n_ctx;
    q.items += start;
    q.beh += start;
    q.ts += start;
    q.scene += start;
    if (q.ctx)
        q.ctx += (size_t)start * nc;
    if (q.values)
        q.values += start;
    q.n = end - start;
    return q;
}

sq_status sq_eval_per_target(const sq_model *m, const sq_dataset *d, const sq_split *s,
                             const sq_eval_opts *o, sq_eval_result *r, sq_error *err) {
    double t0 = sq_now();
    memset(r, 0, sizeof *r);
    if (o->sampled)
        return sq_errorf(err, SQ_ERR_ARG,
                         "sampled ranking is not available with the sessions protocol");
    static const uint32_t default_k[] = {1, 5, 10, 20};
    r->n_k = o->n_k ? o->n_k : 4;
    memcpy(r->k, o->n_k ? o->k : default_k, (size_t)r->n_k * sizeof *r->k);
    const sq_data_info *info = sq_data_info_of(d);
    const uint32_t ni = info->n_items, nu = info->n_users, B = o->batch ? o->batch : 256;
    const uint64_t *off = sq_data_offsets(d);
    const uint32_t *items = sq_data_items(d), *sess = sq_data_sessions(d);
    const int test = o->part == SQ_EVAL_TEST;
    sq_status rc = SQ_OK;
    uint32_t *users = sq_mallocn(nu ? nu : 1, sizeof *users), n_eval = 0;
    uint32_t *fil = NULL, *foff = NULL;
    uint8_t *whole = NULL;
    prediction *pred = NULL;
    sq_eval_acc *acc = sq_eval_acc_create(r->k, r->n_k);
    const size_t width = (size_t)r->n_k * SQ_M_PER_K;
    double *bvals = sq_mallocn((size_t)B * (width + 1), sizeof *bvals); /* a batch's, AUC last */
    float *scores = sq_mallocn((size_t)B * ni, sizeof *scores);
    sq_seq *seqs = sq_mallocn(B, sizeof *seqs);
    uint8_t *has = NULL;
    sq_arena *arena = sq_arena_create(m->ops->scratch ? m->ops->scratch(m, B, 0) : 64u << 20);
    if (!users || !acc || !bvals || !scores || !seqs || !arena) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    uint64_t total = 0;
    for (uint32_t u = 0; u < nu; u++) {
        uint32_t len = (uint32_t)(off[u + 1] - off[u]);
        uint32_t first = test ? s->valid_end[u] : s->train_end[u],
                 last = test ? len : s->valid_end[u];
        if (first < last)
            users[n_eval++] = u;
    }
    uint32_t n_pick = o->max_users && o->max_users < n_eval ? o->max_users : n_eval;
    for (uint32_t c = 0; c < n_pick; c++) { /* an even spread when fewer are wanted */
        uint32_t u = users[n_pick == n_eval ? c : (uint32_t)((uint64_t)c * n_eval / n_pick)];
        users[c] = u;
        total += test ? off[u + 1] - off[u] : s->valid_end[u];
    }
    fil = sq_mallocn(total ? total : 1, sizeof *fil);
    foff = sq_mallocn((size_t)n_pick + 1, sizeof *foff);
    whole = sq_mallocn(n_pick ? n_pick : 1, 1);
    has = sq_calloc(n_pick ? n_pick : 1, 1);
    pred = sq_mallocn(total ? total : 1, sizeof *pred);
    if (!fil || !foff || !whole || !has || !pred) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* the filtered sequences [0, last) and one prediction per kept target position ≥ 1 */
    uint64_t np = 0, w = 0;
    for (uint32_t c = 0; c < n_pick; c++) {
        uint32_t u = users[c], len = (uint32_t)(off[u + 1] - off[u]);
        uint32_t first = test ? s->valid_end[u] : s->train_end[u],
                 last = test ? len : s->valid_end[u];
        foff[c] = (uint32_t)w;
        uint32_t kept = 0, start = 0;
        for (uint32_t p = 0; p < last; p++) {
            uint32_t it = items[off[u] + p];
            if (sess && p > 0 && sess[off[u] + p] != sess[off[u] + p - 1])
                start = kept; /* a new session: its first kept event will be here */
            if (s->seen && !s->seen[it])
                continue;
            fil[w++] = it;
            if (p >= first && kept > start)
                pred[np++] = (prediction){u, start, kept, c};
            kept++;
        }
        whole[c] = kept == last;
    }
    foff[n_pick] = (uint32_t)w;
    if (np == 0) {
        rc = sq_errorf(err, SQ_ERR_EMPTY,
                       "no %s target follows an event of an item seen in training",
                       test ? "test" : "validation");
        goto done;
    }
    for (uint64_t start = 0; start < np && !rc; start += B) {
        uint32_t nb = np - start < B ? (uint32_t)(np - start) : B;
        for (uint32_t b = 0; b < nb; b++) {
            const prediction *q = &pred[start + b];
            seqs[b] = whole[q->c] ? window(d, q->user, q->start, q->pos)
                                  : (sq_seq){.items = fil + foff[q->c] + q->start,
                                             .n = q->pos - q->start,
                                             .user = q->user};
        }
        sq_arena_reset(arena);
        if ((rc = sq_model_score(m, seqs, nb, scores, arena, err)))
            break;
#pragma omp parallel for schedule(dynamic, 16)
        for (uint32_t b = 0; b < nb; b++) {
            const prediction *q = &pred[start + b];
            uint32_t target = fil[foff[q->c] + q->pos];
            uint64_t h, ties;
            double *vals = bvals + (size_t)b * (width + 1);
            sq_eval_rank(scores + (size_t)b * ni, ni, target, NULL, 0, &h, &ties);
            sq_eval_single(h, ties, ni, r->k, r->n_k, vals, &vals[width]);
        }
        for (uint32_t b = 0; b < nb && !rc; b++) {
            const double *v = bvals + (size_t)b * (width + 1);
            has[pred[start + b].c] = 1;
            if (sq_eval_acc_add(acc, v, v[width]) ||
                (o->users_out && sq_eval_acc_add(o->users_out, v, v[width])))
                rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        }
        sq_report_progress(&o->reporter, "evaluating", start + nb, np, "predictions");
    }
    sq_eval_stat flat[SQ_EVAL_MAX_K * SQ_M_PER_K];
    if (rc || (rc = sq_eval_acc_summary(acc, o->bootstrap, o->seed, flat, &r->auc, err)))
        goto done;
    for (int j = 0; j < r->n_k; j++)
        for (int mt = 0; mt < SQ_M_PER_K; mt++)
            r->m[j][mt] = flat[j * SQ_M_PER_K + mt];
    for (uint32_t c = 0; c < n_pick; c++)
        r->users += has[c];
    r->targets = np;
    r->candidates = ni;
    r->seconds = sq_now() - t0;
done:
    sq_eval_acc_free(acc);
    sq_free(bvals);
    sq_free(scores);
    sq_free(seqs);
    sq_free(users);
    sq_free(fil);
    sq_free(foff);
    sq_free(whole);
    sq_free(has);
    sq_free(pred);
    sq_arena_free(arena);
    return rc;
}
