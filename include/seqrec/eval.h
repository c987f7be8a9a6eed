/* eval.h — ranking metrics and their confidence intervals, computed honestly.
 *
 * Full ranking: a user's target is ranked against every item (minus the items excluded for
 * that user, e.g. their history). Its rank is given as (higher, ties): how many candidates score
 * strictly higher, and how many score exactly the same. Ties are broken uniformly at random *in
 * expectation*: every metric is the mean of its value over ranks higher .. higher + ties. So a
 * model that gives every item the same score gets the metrics of a random ranking, not perfect
 * ones (the classic `>`-only bug), and not zero either.
 *
 * Accumulation: sq_eval_acc collects per-user metric values (so that confidence intervals can
 * resample users) and reports means and 95 % bootstrap intervals.
 *
 * Ownership: sq_eval_acc_create/free. Not thread-safe: add from one thread, in a fixed order
 * (the evaluators add users in user order, so that two models' accumulators pair user by user). */
#ifndef SEQREC_EVAL_H
#define SEQREC_EVAL_H

#include "seqrec/core.h"
#include "seqrec/data.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { SQ_EVAL_MAX_K = 8 };

/* The metrics of one list of K values. Index with sq_eval_metric_index. */
typedef enum {
    SQ_M_HR = 0, /* hit rate: at least one target in the top K */
    SQ_M_NDCG,   /* normalised discounted cumulative gain at K */
    SQ_M_MRR,    /* reciprocal rank of the first target if within K, else 0 */
    SQ_M_PREC,   /* targets in the top K / K */
    SQ_M_RECALL, /* targets in the top K / targets */
    SQ_M_PER_K   /* metrics per K */
} sq_metric;

const char *sq_metric_name(sq_metric m); /* "hr", "ndcg", "mrr", "precision", "recall" */

/* Rank of one target among scores[0..n) (n candidates including the target): counts the
 * candidates scoring strictly higher and equally (the target itself excluded). `excluded`
 * (sorted or not, may contain the target, which is never excluded) lists item ids that are not
 * candidates. NaN scores count as lower than everything. */
void sq_eval_rank(const float *scores, uint32_t n, uint32_t target, const uint32_t *excluded,
                  size_t n_excluded, uint64_t *higher, uint64_t *ties);

/* Metric values for a single target of rank (higher, ties) among `candidates` items, into
 * out[k_index * SQ_M_PER_K + metric], and the AUC (fraction of other candidates ranked below,
 * ties counting half) into *auc. */
void sq_eval_single(uint64_t higher, uint64_t ties, uint64_t candidates, const uint32_t *k, int n_k,
                    double *out, double *auc);

/* Metric values for several targets: positions[i] is the 0-based position of target i in the
 * ranking (ties already resolved by the caller, e.g. mid-rank); n_targets of them. */
void sq_eval_multi(const uint64_t *positions, size_t n_targets, const uint32_t *k, int n_k,
                   double *out);

typedef struct sq_eval_acc sq_eval_acc;

/* An accumulator for the metrics at k[0..n_k) plus AUC. NULL on bad n_k or out of memory. */
sq_eval_acc *sq_eval_acc_create(const uint32_t *k, int n_k);
void sq_eval_acc_free(sq_eval_acc *a);
/* Adds one user's values (as filled by sq_eval_single / sq_eval_multi, and its AUC). */
sq_status sq_eval_acc_add(sq_eval_acc *a, const double *values, double auc);
/* A new accumulator of the per-user differences a − b, for a paired comparison of two models
 * over the same users in the same order: its summary is the mean difference and its 95 %
 * bootstrap interval. NULL when the users or the K lists differ, or out of memory. */
sq_eval_acc *sq_eval_acc_diff(const sq_eval_acc *a, const sq_eval_acc *b);
size_t sq_eval_acc_users(const sq_eval_acc *a);

typedef struct {
    double mean, lo, hi; /* mean and its 95 % bootstrap percentile interval */
} sq_eval_stat;

/* Means over users and 95 % bootstrap intervals (`rounds` resamples of users with
 * replacement, seeded; rounds 0: lo = hi = mean). out has n_k * SQ_M_PER_K entries; auc one.
 * Errors: SQ_ERR_EMPTY when no user was added, SQ_ERR_NOMEM. */
sq_status sq_eval_acc_summary(const sq_eval_acc *a, uint32_t rounds, uint64_t seed,
                              sq_eval_stat *out, sq_eval_stat *auc, sq_error *err);

/* The k best of scores[0..n) (NaN never chosen), skipping the `excluded` ids, best first;
 * ties by the smaller id. Returns how many were written (≤ k). */
uint32_t sq_topk(const float *scores, uint32_t n, uint32_t k, const uint32_t *excluded,
                 size_t n_excluded, uint32_t *ids, float *vals);
/* Inserts (id, v) into the best-first list ids/vals of `have` entries, at most k (when full,
 * v must beat vals[k − 1]: the last entry drops out); an equal score stays behind the entries
 * already there. Returns the new count. For lists merged or built outside sq_topk. */
uint32_t sq_topk_insert(uint32_t *ids, float *vals, uint32_t have, uint32_t k, uint32_t id,
                        float v);

/* ================================= Evaluating a model ================================= */

struct sq_model;

typedef enum { SQ_EVAL_TEST = 0, SQ_EVAL_VALID } sq_eval_part;

typedef struct {
    uint32_t k[SQ_EVAL_MAX_K]; /* cut-offs; n_k 0: 1, 5, 10, 20 */
    int n_k;
    sq_eval_part part;  /* which targets: test (after valid_end) or validation */
    int keep_history;   /* 0 (default): the user's earlier items are not ranked */
    uint32_t sampled;   /* 0: full ranking over all items (default); N: rank among N
                           uniformly sampled items the user never had ("sampled") */
    uint32_t max_users; /* evaluate at most this many users (an even spread); 0: all */
    sq_eval_acc *users_out; /* not NULL: also receives every evaluated user's (or, under the
                               sessions protocol, prediction's) values, in order */
    uint32_t bootstrap; /* resamples for the 95 % intervals; 0: none */
    uint32_t batch;     /* users scored per call; 0: 256 */
    int cold_only;      /* cold_items split: rank among the held-out items only (the others
                           are not candidates) instead of among all items */
    uint64_t seed;
    sq_reporter reporter;
} sq_eval_opts;

typedef struct {
    uint32_t k[SQ_EVAL_MAX_K];
    int n_k;
    sq_eval_stat m[SQ_EVAL_MAX_K][SQ_M_PER_K]; /* [k index][metric] */
    sq_eval_stat auc;
    uint64_t users; /* users with at least one target */
    uint64_t targets;
    uint64_t candidates; /* items ranked per user (before history exclusion) */
    double seconds;
} sq_eval_result;

/* Scores every user that has targets in the chosen part and accumulates the metrics. A target
 * at position p is predicted from the user's events [0, p) (never from later ones); with
 * several targets (temporal splits) all are predicted from [0, first target).
 * Cold-start splits: under cold_items the held-out items are never inputs; a test's targets
 * are every held-out item of the user, predicted from all the user's other events (through
 * valid_end). Under cold_users the held-out users are scored as unknown users (sq_seq.user
 * UINT32_MAX) and left out of validation. Errors: SQ_ERR_ARG (cold_only without cold_items).
 * Errors: SQ_ERR_EMPTY (no user has a target), SQ_ERR_NOMEM, and the model's own. */
sq_status sq_evaluate(const struct sq_model *m, const sq_dataset *d, const sq_split *s,
                      const sq_eval_opts *o, sq_eval_result *r, sq_error *err);

#ifdef __cplusplus
}
#endif
#endif
