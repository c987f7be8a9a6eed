/* task_metrics.h — the per-task metrics of one group of samples (eval/tasks_eval.c), exposed for
 * the evaluation driver and its tests. */
#ifndef SEQREC_EVAL_TASK_METRICS_H
#define SEQREC_EVAL_TASK_METRICS_H

#include "seqrec/tasks.h"

/* One evaluated event: its labels and what the model predicted for it. */
typedef struct {
    uint8_t beh, pred_beh, click, buy; /* label behaviour, its argmax prediction, click/buy */
    float value, pred_value;           /* NaN: none */
    float ctr, cvr, ctcvr;             /* NaN: not predicted */
    float ndcg, hr;                    /* next-item NDCG@10 / HR@10 of the event, or NaN */
    uint32_t group;                    /* 1 + scene, or 0 when beyond the reported scenes */
} sq_task_sample;

/* Every sq_task_metric over the samples s[idx[0..n)] into out[SQ_TM_N]: the point value as mean
 * and, with rounds > 0, the 2.5 and 97.5 percentiles of `rounds` bootstrap resamples (drawn
 * from seed) as lo and hi (rounds 0: lo = hi = mean). NaN where a metric is undefined: AUC with
 * one class only, value metrics with no value, CVR with no click-level sample. Macro-F1 averages
 * the F1 of the behaviours (< n_beh) that occur as a label or a prediction. */
sq_status sq_task_group_stats(const sq_task_sample *s, const uint32_t *idx, size_t n,
                              uint32_t n_beh, uint32_t rounds, uint64_t seed, sq_eval_stat *out,
                              sq_error *err);

/* The same for two models' samples of the same events (sb[i] is s[i]'s event as the other model
 * predicted it): each metric of s minus that of sb, the point difference and the percentiles
 * of its bootstrap resamples, both models resampled alike (a paired interval). sb NULL: as
 * sq_task_group_stats. */
sq_status sq_task_group_diff(const sq_task_sample *s, const sq_task_sample *sb,
                             const uint32_t *idx, size_t n, uint32_t n_beh, uint32_t rounds,
                             uint64_t seed, sq_eval_stat *out, sq_error *err);

#endif
