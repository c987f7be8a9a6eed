/* evaluate.c — the evaluation driver: for each user with targets, score the sequence before the
 * first target against every item (or a labelled sample), exclude the user's history unless
 * asked to keep it, rank the targets and accumulate the metrics. Users are scored in batches
 * so that models can use matrix products; ranking runs in parallel over a batch, and each
 * user's values enter the accumulator in user order (intervals that do not depend on the
 * threads, and paired comparisons of two models over the same users). */
#include "eval/per_target.h"
#include "seqrec/eval.h"
#include "seqrec/model.h"

#include <omp.h>
#include <string.h>

/* Users [0, n) spread evenly when only max_users of them are wanted. */
static uint32_t pick_user(uint32_t i, uint32_t n_eval, uint32_t n_all) {
    return n_eval == n_all ? i : (uint32_t)((uint64_t)i * n_all / n_eval);
}

/* Sampled protocol: the target and `n` items the user never had, drawn uniformly. Scores of
 * everything else become NaN, which ranks below every number. */
static void keep_sample(float *sc, uint32_t ni, uint32_t target, const uint32_t *hist, uint32_t nh,
                        uint32_t n, uint8_t *keep, sq_rng *rng) {
    memset(keep, 0, ni);
    keep[target] = 1;
    for (uint32_t j = 0; j < nh; j++)
        keep[hist[j]] |= 2; /* never sample these */
    uint32_t got = 0, tries = 0;
    while (got < n && tries < 100u * n + 1000) {
        uint32_t j = sq_rng_below(rng, ni);
        tries++;
        if (keep[j])
            continue;
        keep[j] = 1;
        got++;
    }
    for (uint32_t j = 0; j < ni; j++)
        if (keep[j] != 1)
            sc[j] = __builtin_nanf("");
}

sq_status sq_evaluate(const sq_model *m, const sq_dataset *d, const sq_split *s,
                      const sq_eval_opts *o, sq_eval_result *r, sq_error *err) {
    if (s->per_target) /* the sessions protocol: one prediction per target */
        return sq_eval_per_target(m, d, s, o, r, err);
    double t0 = sq_now();
    memset(r, 0, sizeof *r);
    static const uint32_t default_k[] = {1, 5, 10, 20};
    r->n_k = o->n_k ? o->n_k : 4;
    memcpy(r->k, o->n_k ? o->k : default_k, (size_t)r->n_k * sizeof *r->k);
    const sq_data_info *info = sq_data_info_of(d);
    uint32_t ni = info->n_items, nu = info->n_users;
    uint32_t B = o->batch ? o->batch : 256;
    const uint64_t *off = sq_data_offsets(d);
    const uint32_t *items = sq_data_items(d);
    /* which users have targets */
    uint32_t *users = sq_mallocn(nu ? nu : 1, sizeof *users), n_eval = 0, max_len = 0;
    if (!users)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    const int cold_test = s->item_cold && o->part == SQ_EVAL_TEST;
    if (o->cold_only && !s->item_cold) {
        sq_free(users);
        return sq_errorf(err, SQ_ERR_ARG, "ranking among held-out items needs a cold_items split");
    }
    for (uint32_t u = 0; u < nu; u++) {
        uint32_t len = (uint32_t)(off[u + 1] - off[u]);
        max_len = len > max_len ? len : max_len;
        uint32_t first = o->part == SQ_EVAL_TEST ? s->valid_end[u] : s->train_end[u];
        uint32_t last = o->part == SQ_EVAL_TEST ? len : s->valid_end[u];
        if (s->user_cold && s->user_cold[u] && o->part == SQ_EVAL_VALID)
            continue;    /* held-out users are only tested */
        if (cold_test) { /* needs a held-out item to find and a warm event to start from */
            int cold = 0, warm = 0;
            for (uint32_t p = 0; p < len; p++) {
                uint32_t it = items[off[u] + p];
                cold |= !sq_split_trains_on(s, it);
                warm |= p < s->valid_end[u] && sq_split_trains_on(s, it);
            }
            if (cold && warm)
                users[n_eval++] = u;
        } else if (first < last) {
            users[n_eval++] = u;
        }
    }
    if (n_eval == 0) {
        sq_free(users);
        return sq_errorf(err, SQ_ERR_EMPTY, "no user has a %s target in this split",
                         o->part == SQ_EVAL_TEST ? "test" : "validation");
    }
    uint32_t n_pick = o->max_users && o->max_users < n_eval ? o->max_users : n_eval;
    int nth = omp_get_max_threads();
    sq_status rc = SQ_OK;
    sq_eval_acc *acc = sq_eval_acc_create(r->k, r->n_k);
    const size_t width = (size_t)r->n_k * SQ_M_PER_K;
    double *bvals = sq_mallocn((size_t)B * (width + 1), sizeof *bvals); /* a batch's, AUC last */
    float *scores = sq_mallocn((size_t)B * ni, sizeof *scores);
    sq_seq *seqs = sq_mallocn(B, sizeof *seqs);
    uint32_t *excl = sq_mallocn((size_t)nth * (max_len + 1), sizeof *excl); /* histories */
    uint8_t *keep = o->sampled ? sq_mallocn((size_t)nth * ni, 1) : NULL;
    uint32_t *uid = sq_mallocn(B, sizeof *uid); /* dataset user of each row */
    /* cold_items: the rows' sequences without held-out items, and each thread's targets */
    const size_t wl = (size_t)max_len + 1;
    uint32_t *w_items = s->item_cold ? sq_mallocn((size_t)B * wl, sizeof *w_items) : NULL;
    uint8_t *w_beh = s->item_cold ? sq_mallocn((size_t)B * wl, 1) : NULL;
    int64_t *w_ts = s->item_cold ? sq_mallocn((size_t)B * wl, sizeof *w_ts) : NULL;
    uint16_t *w_scene = s->item_cold ? sq_mallocn((size_t)B * wl, sizeof *w_scene) : NULL;
    uint32_t *tgts = sq_mallocn((size_t)nth * wl, sizeof *tgts);
    uint64_t cand_all = o->cold_only ? s->n_cold : ni;
    sq_arena *arena = sq_arena_create(m->ops->scratch ? m->ops->scratch(m, B, 0) : 64u << 20);
    if (!acc || !bvals || !scores || !seqs || !excl || (o->sampled && !keep) || !arena || !uid ||
        !tgts ||
        (s->item_cold && (!w_items || !w_beh || !w_ts || !w_scene))) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    uint64_t n_targets = 0;
    for (uint32_t start = 0; start < n_pick && !rc; start += B) {
        uint32_t nb = n_pick - start < B ? n_pick - start : B;
        for (uint32_t b = 0; b < nb; b++) {
            uint32_t u = users[pick_user(start + b, n_pick, n_eval)];
            uint32_t first = o->part == SQ_EVAL_TEST ? s->valid_end[u] : s->train_end[u];
            uid[b] = u;
            seqs[b] = sq_model_user_seq(d, u, first);
            if (s->user_cold && s->user_cold[u])
                seqs[b].user = UINT32_MAX; /* a user the model never saw */
            if (s->item_cold) {            /* the events on items that may be trained on */
                size_t base = (size_t)b * wl;
                uint32_t n = 0;
                for (uint32_t p = 0; p < first; p++)
                    if (sq_split_trains_on(s, seqs[b].items[p])) {
                        w_items[base + n] = seqs[b].items[p];
                        w_beh[base + n] = seqs[b].beh[p];
                        w_ts[base + n] = seqs[b].ts[p];
                        w_scene[base + n] = seqs[b].scene[p];
                        n++;
                    }
                seqs[b].items = w_items + base;
                seqs[b].beh = w_beh + base;
                seqs[b].ts = w_ts + base;
                seqs[b].scene = w_scene + base;
                seqs[b].ctx = NULL;
                seqs[b].values = NULL;
                seqs[b].n = n;
            }
        }
        sq_arena_reset(arena);
        if ((rc = sq_model_score(m, seqs, nb, scores, arena, err)))
            break;
#pragma omp parallel for schedule(dynamic, 4) reduction(+ : n_targets)
        for (uint32_t b = 0; b < nb; b++) {
            int t = omp_get_thread_num();
            uint32_t *ex = excl + (size_t)t * (max_len + 1);
            uint32_t u = uid[b], first = seqs[b].n; /* first: inputs (held-out items left out) */
            uint32_t len = (uint32_t)(off[u + 1] - off[u]);
            uint32_t pfirst = o->part == SQ_EVAL_TEST ? s->valid_end[u] : s->train_end[u];
            uint32_t last = o->part == SQ_EVAL_TEST ? len : s->valid_end[u];
            const uint32_t *seq = items + off[u];
            float *sc = scores + (size_t)b * ni;
            double *vals = bvals + (size_t)b * (width + 1), auc = 0;
            uint32_t nex = 0;
            if (!o->keep_history)
                for (uint32_t p = 0; p < first; p++)
                    ex[nex++] = seqs[b].items[p];
            /* the targets, each distinct item once: the positions [first, last), or under a
             * cold_items test every held-out item of the sequence */
            uint32_t *tg = tgts + (size_t)t * wl, nt = 0;
            for (uint32_t p = cold_test ? 0 : pfirst; p < last; p++) {
                uint32_t it = seq[p];
                if (cold_test && sq_split_trains_on(s, it))
                    continue;
                int dup = 0;
                for (uint32_t j = 0; j < nt && !dup; j++)
                    dup = tg[j] == it;
                if (!dup)
                    tg[nt++] = it;
            }
            if (o->cold_only) /* rank among the held-out items only */
                for (uint32_t j = 0; j < ni; j++)
                    if (sq_split_trains_on(s, j))
                        sc[j] = __builtin_nanf("");
            if (o->sampled) {
                sq_rng rng = sq_rng_derive(o->seed, u);
                keep_sample(sc, ni, tg[0], seqs[b].items, first, o->sampled, keep + (size_t)t * ni,
                            &rng);
                nex = 0; /* the sample already leaves the history out */
            }
            if (nt == 1) {
                uint64_t h, ties;
                sq_eval_rank(sc, ni, tg[0], ex, nex, &h, &ties);
                sq_eval_single(h, ties, o->sampled ? o->sampled + 1 : cand_all, r->k, r->n_k, vals,
                               &auc);
            } else {
                /* several targets: positions by mid-rank among candidates; the other targets
                 * are not excluded (they are items the user will have) */
                uint64_t pos[1024];
                nt = nt < 1024 ? nt : 1024;
                double auc_sum = 0;
                for (uint32_t i = 0; i < nt; i++) {
                    uint64_t h, ties;
                    sq_eval_rank(sc, ni, tg[i], ex, nex, &h, &ties);
                    pos[i] = h + ties / 2;
                    double a1;
                    double tmp[SQ_EVAL_MAX_K * SQ_M_PER_K];
                    sq_eval_single(h, ties, cand_all, r->k, r->n_k, tmp, &a1);
                    auc_sum += a1;
                }
                sq_eval_multi(pos, nt, r->k, r->n_k, vals);
                auc = auc_sum / nt;
            }
            n_targets += cold_test ? nt : last - pfirst;
            vals[width] = auc;
        }
        for (uint32_t b = 0; b < nb && !rc; b++) {
            const double *v = bvals + (size_t)b * (width + 1);
            if (sq_eval_acc_add(acc, v, v[width]) ||
                (o->users_out && sq_eval_acc_add(o->users_out, v, v[width])))
                rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        }
        sq_report_progress(&o->reporter, "evaluating", start + nb, n_pick, "users");
    }
    if (rc)
        goto done;
    sq_eval_stat flat[SQ_EVAL_MAX_K * SQ_M_PER_K];
    rc = sq_eval_acc_summary(acc, o->bootstrap, o->seed, flat, &r->auc, err);
    if (rc)
        goto done;
    for (int j = 0; j < r->n_k; j++)
        for (int mt = 0; mt < SQ_M_PER_K; mt++)
            r->m[j][mt] = flat[j * SQ_M_PER_K + mt];
    r->users = sq_eval_acc_users(acc);
    r->targets = n_targets;
    r->candidates = o->sampled ? o->sampled + 1 : cand_all;
    r->seconds = sq_now() - t0;
done:
    sq_eval_acc_free(acc);
    sq_free(bvals);
    sq_free(scores);
    sq_free(seqs);
    sq_free(excl);
    sq_free(keep);
    sq_free(uid);
    sq_free(w_items);
    sq_free(w_beh);
    sq_free(w_ts);
    sq_free(w_scene);
    sq_free(tgts);
    sq_arena_free(arena);
    sq_free(users);
    return rc;
}
