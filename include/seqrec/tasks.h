/* tasks.h — the tasks a multi-task sequence model learns at once, their labels, and the
 * per-task evaluation (docs/multitask.md).
 *
 * Every task is asked at a position of a user's sequence: given the events so far and the
 * request (the scene and context of the next event), about the next event e:
 *   next_item       which item e is on (full ranking over all items)
 *   next_behaviour  e's behaviour type (classification over the behaviour vocabulary)
 *   value           e's value (regression: the rating in MovieLens), given its item
 *   click           is e a click-level event (CTR), given its item
 *   buy             is e a purchase (CTCVR = CTR × CVR, trained over the entire space as in
 *                   ESMM: CVR is never fitted on the clicked events alone), given its item
 * Each event is its own sample ("the entire space" is every event: an exposure is an event of an
 * exposure behaviour such as view): click = e's behaviour is in the click set, buy = it is in
 * the buy set. Defaults (sq_tasks_resolve): buy = the behaviours named buy, purchase, order, pay
 * or checkout; click = every behaviour that is not an exposure (view, pv, impression, show,
 * expose, browse), or every behaviour but the first when none is named so. */
#ifndef SEQREC_TASKS_H
#define SEQREC_TASKS_H

#include "seqrec/data.h"
#include "seqrec/eval.h"
#include "seqrec/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SQ_TASK_NEXT_ITEM = 0,
    SQ_TASK_NEXT_BEH,
    SQ_TASK_VALUE,
    SQ_TASK_CLICK,
    SQ_TASK_BUY,
    SQ_TASK_N
} sq_task;

const char *sq_task_name(sq_task t); /* "next_behaviour" */
/* "next_item,buy" → bit mask (1 << task). SQ_ERR_ARG names an unknown task or an empty list. */
sq_status sq_tasks_parse(const char *list, unsigned *mask, sq_error *err);
/* The mask as a list in task order ("next_item,buy"); buf of at least 64 bytes. */
void sq_tasks_format(unsigned mask, char *buf, size_t n);

/* Which behaviours are click-level and which are purchases. */
typedef struct {
    uint8_t click[256], buy[256]; /* by behaviour id: 1 = in the set */
    int n_click, n_buy;
} sq_task_labels;

/* Resolves `click_list` / `buy_list` (comma-separated behaviour names or ids; NULL or "" or
 * "auto": the defaults above) against d's vocabulary. SQ_ERR_ARG names an unknown behaviour. */
sq_status sq_tasks_resolve(const sq_dataset *d, const char *click_list, const char *buy_list,
                           sq_task_labels *out, sq_error *err);
/* Parses the id lists of a saved config ("1,2") for a vocabulary of n_beh behaviours. */
sq_status sq_tasks_labels_from_ids(const char *click_ids, const char *buy_ids, uint32_t n_beh,
                                   sq_task_labels *out, sq_error *err);
/* The label sets as id lists for a config ("1,2"); buf of at least 4 × 256 bytes. */
void sq_tasks_labels_ids(const uint8_t set[256], char *buf, size_t n);

/* Time-gap bucket of an event given the previous one's time (0: first event, or times are not
 * real): 1 < 1 min ≤ 2 < 10 min ≤ 3 < 1 h ≤ 4 < 1 day ≤ 5 < 1 week ≤ 6 < 30 days ≤ 7. */
enum { SQ_GAP_BUCKETS = 8 };
uint32_t sq_gap_bucket(int64_t prev, int64_t t, int real_time);

/* What a multi-task model predicts for one (sequence, request, candidate item):
 * the next-behaviour distribution, the value, pCTR, pCVR and pCTCVR = pCTR · pCVR. Fields of
 * tasks the model was not trained for are NaN. */
enum { SQ_TASK_MAX_BEH = 32 };
typedef struct {
    float p_beh[SQ_TASK_MAX_BEH]; /* over behaviour ids 0..n_beh−1 */
    float value, ctr, cvr, ctcvr;
} sq_task_pred;

/* ==================================== Multi-task models ===================================== */

/* Task predictions for B sequences, each with its request and candidate item (dataset id), and,
 * with scores != NULL, the next-item scores [B, n_items] of the same forward pass (what
 * sq_model_score gives). SQ_ERR_ARG for a model that is not multi-task. */
sq_status sq_model_predict_tasks(const sq_model *m, const sq_seq *seqs, const uint32_t *items,
                                 uint32_t B, sq_task_pred *out, float *scores, sq_arena *a,
                                 sq_error *err);
/* One sequence against K candidate items: value, pCTR, pCVR, pCTCVR of each (p_beh NaN). The
 * arena needs sq_model_predict_items_scratch(m, K) bytes. SQ_ERR_ARG: not a multi-task model. */
sq_status sq_model_predict_items(const sq_model *m, const sq_seq *seq, const uint32_t *items,
                                 uint32_t K, sq_task_pred *out, sq_arena *a, sq_error *err);
size_t sq_model_predict_items_scratch(const sq_model *m, uint32_t K);
/* Tasks of a multi-task model (bit mask of sq_task), 0 for any other model; the click and buy
 * behaviour sets in *lab when not NULL. */
unsigned sq_model_tasks(const sq_model *m, sq_task_labels *lab);
/* Mean loss of each task over the last train_batch (n[t] samples; 0 for tasks not trained). */
void sq_model_task_losses(const sq_model *m, double loss[SQ_TASK_N], long n[SQ_TASK_N]);

/* ================================== Per-task evaluation ===================================== */

/* Metrics of the task heads, overall and per scene of the request, on the first target of each
 * user in the chosen part (the test event under leave-one-out): the sequence before it, its
 * scene and context as the request, its item as the candidate. */
typedef enum {
    SQ_TM_NDCG10 = 0, /* next_item: NDCG@10 and HR@10 (full ranking, history excluded unless
                         keep_history) */
    SQ_TM_HR10,
    SQ_TM_BEH_ACC,  /* next_behaviour: accuracy of the most probable behaviour */
    SQ_TM_BEH_F1,   /* next_behaviour: macro-F1 over the behaviours that occur */
    SQ_TM_BEH_MAJ,  /* next_behaviour: accuracy of always answering the commonest one */
    SQ_TM_VAL_RMSE, /* value */
    SQ_TM_VAL_MAE,
    SQ_TM_CTR_AUC, /* click: pCTR against "is a click-level event" */
    SQ_TM_CTR_LL,
    SQ_TM_CVR_AUC, /* buy: pCVR against "is a purchase", on click-level events only */
    SQ_TM_CVR_LL,
    SQ_TM_CTCVR_AUC, /* buy: pCTCVR against "is a purchase", on every event */
    SQ_TM_CTCVR_LL,
    SQ_TM_N
} sq_task_metric;

const char *sq_task_metric_name(sq_task_metric t); /* "auc" ... with the task it belongs to */
sq_task sq_task_metric_task(sq_task_metric t);

enum { SQ_TASK_EVAL_MAX_SCENES = 64 };

typedef struct {
    unsigned tasks;  /* the model's */
    uint32_t groups; /* 1 + scenes reported (group 0 = all; scenes beyond the limit are
                        only in group 0) */
    uint64_t n[SQ_TASK_EVAL_MAX_SCENES + 1]; /* samples per group */
    /* [group][metric]; NaN mean where the metric is undefined (no positive, no sample) */
    sq_eval_stat m[SQ_TASK_EVAL_MAX_SCENES + 1][SQ_TM_N];
    double seconds;
} sq_task_eval;

/* Evaluates every task head of m (sq_model_tasks(m) != 0). o as for sq_evaluate (part,
 * keep_history, max_users, bootstrap, seed, reporter). Errors: SQ_ERR_ARG (not a multi-task
 * model), SQ_ERR_EMPTY, SQ_ERR_NOMEM. */
sq_status sq_evaluate_tasks(const sq_model *m, const sq_dataset *d, const sq_split *s,
                            const sq_eval_opts *o, sq_task_eval *r, sq_error *err);

/* Model a against model b on the same events, one prediction pass each: a's metrics into ra,
 * b's into rb (each as sq_evaluate_tasks gives them), and into diff a's minus b's with a paired
 * 95 % bootstrap interval (both resampled alike; an interval that excludes 0 is a significant
 * difference). diff->tasks: the tasks both models have. Errors as sq_evaluate_tasks, for
 * either. */
sq_status sq_evaluate_tasks_diff(const sq_model *a, const sq_model *b, const sq_dataset *d,
                                 const sq_split *s, const sq_eval_opts *o, sq_task_eval *ra,
                                 sq_task_eval *rb, sq_task_eval *diff, sq_error *err);

#ifdef __cplusplus
}
#endif
#endif
