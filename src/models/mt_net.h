/* mt_net.h — the multi-task, multi-behaviour sequence network (docs/multitask.md): SASRec's
 * encoder over fused event embeddings, shared by task heads through experts.
 *
 *   per event: item, behaviour, time-gap bucket, value bucket, item tags, scene, context
 *     ─▶ F embeddings [N,F,C]
 *     ─▶ fusion (mean | concat | attention) ─▶ SASRec blocks ─▶ h [N,C]
 *   h' = h + U·u + Σ A_k[a_k]   u: the user's statistics up to that event (activity, behaviour
 *                               shares); a_k: the user's attributes (age, gender…)
 *   z  = h' + r        r: the request, the next event's scene and context embeddings
 *   at the positions with a target: experts (shared_bottom | mmoe | ple, gates per scene)
 *     ─▶ one representation y_t [M,H] per task slot
 *     [─▶ scene_towers: y_t = ReLU(W_{t,s} y_t + b_{t,s}), s the request's scene] ─▶ heads:
 *        next_item       q = z + Wn·y, softmax over all items (tied table E)
 *        next_behaviour  softmax(Wb·y + bb) over the behaviours
 *        value           bv + b[item] + wv·y + (Pv·y)·E[item]
 *        click, buy      towers σ(w2·ReLU(W1 [y; E[item]; m] + b1) + b2): pCTR, pCVR, with m
 *                        the candidate's history in the sequence (cand_history): L[behaviour
 *                        of its last occurrence] + D[how far back] + Σ S[behaviours seen on it];
 *                        pCTCVR = pCTR · pCVR (ESMM)
 *   loss = Σ_t λ_t L_t  (λ fixed) or Σ_t e^(−s_t) L_t + s_t  (uncertainty weighting, s learned)
 *
 * Tables (sparse rows): "item_emb" (the encoder's), "f.beh", "f.gap", "f.value", "f.scene",
 * "f.ctx<k>";
 * every field embedding is scaled by √C as the item's. */
#ifndef SEQREC_MODELS_MT_NET_H
#define SEQREC_MODELS_MT_NET_H

#include "models/sasrec_net.h"
#include "seqrec/nn_experts.h"
#include "seqrec/nn_fusion.h"
#include "seqrec/tasks.h"

enum { MT_MAX_CTX = 8, MT_MAX_UATTR = 8, MT_MAX_FIELDS = 5 + MT_MAX_CTX };

typedef enum {
    MT_F_ITEM = 0,
    MT_F_BEH,
    MT_F_GAP,
    MT_F_VALUE,
    MT_F_TAGS,
    MT_F_SCENE,
    MT_F_CTX
} mt_field_kind;

enum { MT_MAX_VALUE_EDGES = 31, MT_HIST_BUCKETS = 8 };

typedef struct {
    sq_sasrec_config enc;                        /* the encoder */
    unsigned tasks;                              /* 1 << sq_task */
    int use_beh, use_gap, use_scene, n_ctx_used; /* input fields */
    int use_tags;    /* the item's tags (the mean of their embeddings) are an input */
    uint32_t n_tags; /* tag vocabulary */
    int n_uattr;     /* user attribute fields added to h' (0: none) */
    uint32_t uattr_size[MT_MAX_UATTR];
    int n_value_edges; /* > 0: the event's value is an input, bucketed by these edges */
    float value_edges[MT_MAX_VALUE_EDGES];
    sq_nn_fuse_kind fusion;
    int user_features; /* u on */
    int request;       /* r on */
    sq_nn_share_kind sharing;
    int experts, task_experts, levels, expert_hidden, scene_gates;
    int scene_towers; /* a tower per (task, scene) over the experts' outputs */
    int cand_history; /* the click and buy towers read the candidate's history (m) */
    int uncertainty;  /* 1: learned task weights */
    float lambda[SQ_TASK_N];
    uint32_t n_beh, n_scenes, ctx_size[MT_MAX_CTX];
    int real_time;
    sq_task_labels lab;
} mt_config;

typedef struct {
    mt_config cfg;
    sq_sasrec_net enc; /* owns the one parameter set of the whole network */
    int F;             /* fields */
    mt_field_kind fk[MT_MAX_FIELDS];
    int ftab[MT_MAX_FIELDS];            /* table of field f (item: enc.item_emb) */
    int fctx[MT_MAX_FIELDS];            /* context field number of an MT_F_CTX field */
    int scene_tab, ctx_tab[MT_MAX_CTX]; /* tables of the scene and context fields (−1: none) */
    int uattr_tab[MT_MAX_UATTR];        /* "u.attr<k>" [size, C] */
    sq_nn_fuse fuse;
    sq_nn_linear ufeat; /* (1 + n_beh) -> C */
    sq_nn_experts ex;
    sq_nn_scene_towers towers;           /* scene_towers: [n_slots × scenes] ReLU layers H -> H */
    int n_slots, slot[SQ_TASK_N];        /* experts' output index of each task (−1: none) */
    sq_nn_linear item_tower;             /* H -> C */
    sq_nn_linear beh_head;               /* H -> n_beh */
    sq_nn_linear val_lin;                /* H -> 1 */
    sq_nn_linear val_proj;               /* H -> C, dotted with E[item] */
    int val_item;                        /* [n_items + 1, 1] per-item value bias, sparse rows */
    sq_nn_linear ctr1, ctr2, cvr1, cvr2; /* (H + C [+ C]) -> C -> 1 */
    int hist_last, hist_dist, hist_seen; /* cand_history: [n_beh + 1 | 8 | n_beh, C], or −1 */
    int logvar;                          /* [SQ_TASK_N] s_t, or −1 */
} mt_net;

/* Inputs of one forward: B sequences of T positions, left-padded; ids are table rows (item id +
 * 1, 0 = padding). Field values per position (0 at padding): beh, gap, scene [N]; ctx [N, n_ctx]
 * (the dataset's context fields, all of them); ustat [N, 1 + n_beh]; request scene and context
 * per position: rscene [N], rctx [N, n_ctx]; vbucket [N] the value bucket of each input
 * (mt_value_bucket; 0 = none); the item tag lists (use_tags) and each sequence's user
 * attributes (n_uattr). */
typedef struct {
    int B, T;
    const uint32_t *ids;
    const uint32_t *beh, *gap, *scene, *ctx, *vbucket;
    const float *ustat;
    const uint32_t *rscene, *rctx;
    uint32_t n_ctx;
    const uint32_t *tag_off, *tag_ids; /* item i's tags: tag_ids[tag_off[i] .. tag_off[i + 1]) */
    const uint32_t *uattr;             /* [B, n_uattr] user attribute values, or NULL */
} mt_inputs;

/* Targets at the positions that have one (rows where tgt_item != 0). */
typedef struct {
    const uint32_t *item; /* [N] row id of the next item, 0 = no target */
    const uint32_t *beh;  /* [N] its behaviour */
    const float *value;   /* [N] its value, NaN = none */
} mt_targets;

/* Bucket of value v for the edges of c: 0 when NaN or no edges, else 1 + the edges <= v. */
uint32_t mt_value_bucket(const mt_config *c, float v);

sq_status mt_net_init(mt_net *n, const mt_config *c, sq_rng *rng, sq_error *err);
void mt_net_free(mt_net *n);
size_t mt_net_scratch(const mt_net *n, int B, int T);

/* One training step (forward, losses, backward into the parameters). loss: the weighted total;
 * task_loss[t] / task_n[t]: each task's mean loss and sample count (0 for tasks not trained). */
sq_status mt_net_step(mt_net *n, sq_arena *a, const mt_inputs *in, const mt_targets *tg,
                      sq_rng *rng, double *loss, double task_loss[SQ_TASK_N],
                      long task_n[SQ_TASK_N], sq_error *err);

/* Inference at the last position of each sequence. scores [B, n_items] (may be NULL): the
 * next-item scores. With items [B] (dataset ids) and pred [B]: the task predictions for that
 * candidate. */
sq_status mt_net_predict(const mt_net *n, sq_arena *a, const mt_inputs *in, float *scores,
                         const uint32_t *items, sq_task_pred *pred, float *qvec, sq_error *err);

/* What row p / T of the sequences shows of the candidate item cand (a table row) at or before
 * position p: last = the behaviour of its last occurrence + 1 (0: none), dist = how far back
 * that is, bucketed (0 none; 1, 2, 3 events; 4-5, 6-10, 11-20, 21+: 4..7), seen = a bit per
 * behaviour (< 32) seen on it. The click and buy towers' m is L[last] + D[dist] + Σ S[seen]. */
typedef struct {
    uint32_t last, dist, seen;
} mt_cand_hist;

mt_cand_hist mt_cand_history(const mt_net *n, const mt_inputs *in, int p, uint32_t cand);

/* One sequence (in->B == 1) against K candidate items (dataset ids): value, pCTR, pCVR, pCTCVR
 * per candidate (the next-behaviour distribution does not depend on the item: NaN here). */
sq_status mt_net_predict_items(const mt_net *n, sq_arena *a, const mt_inputs *in,
                               const uint32_t *items, int K, sq_task_pred *pred, sq_error *err);

#endif
