/* explain.c — why an item was recommended: occlusion. For each of the last events of the
 * sequence (at most EXPLAIN_MAX, and only those the model reads), the sequence is scored again
 * without that event; the event's contribution to an item is the score the item loses. All the
 * occluded sequences are scored in one batch.
 *
 * Exact for every model and specific to each recommended item. For item-kNN, whose score is a
 * sum of similarities to the history's items, the contribution of an event is the similarity
 * it brought (the neighbour similarity). Attention weights are not used: they are the same for
 * every candidate item and do not say how much an event moved a given item's score. */
#include "seqrec/model.h"

#include <cblas.h>
#include <string.h>

enum { EXPLAIN_MAX = 50 };

sq_status sq_model_explain(const sq_model *m, const sq_seq *seq, const uint32_t *items,
                           uint32_t n, uint32_t per_item, int use_vectors, sq_reason *reasons,
                           uint32_t *n_reasons, sq_error *err) {
    const uint32_t ni = m->info.n_items;
    uint32_t W = seq->n < EXPLAIN_MAX ? seq->n : EXPLAIN_MAX;
    long window = 0;
    sq_error ignore = {0};
    if (sq_config_get(m->cfg, "maxlen") &&
        sq_config_int(m->cfg, "maxlen", 0, 0, 1 << 20, &window, &ignore))
        window = 0;
    if (window > 0 && W > (uint32_t)window)
        W = (uint32_t)window;
    uint32_t dim = 0;
    const float *Y = use_vectors && m->ops->item_vectors && m->ops->seq_vectors
                         ? m->ops->item_vectors(m, &dim)
                         : NULL;
    const int fast = Y != NULL;
    *n_reasons = 0;
    if (!W || !n || !per_item)
        return SQ_OK;
    const uint32_t B = W + 1, L = seq->n - 1, first = seq->n - W;
    sq_seq *qs = sq_calloc(B, sizeof *qs);
    uint32_t *it = sq_mallocn((size_t)W * L + 1, sizeof *it);
    uint8_t *be = seq->beh ? sq_mallocn((size_t)W * L + 1, 1) : NULL;
    int64_t *ts = seq->ts ? sq_mallocn((size_t)W * L + 1, sizeof *ts) : NULL;
    uint16_t *sc = seq->scene ? sq_mallocn((size_t)W * L + 1, sizeof *sc) : NULL;
    float *va = seq->values ? sq_mallocn((size_t)W * L + 1, sizeof *va) : NULL;
    const size_t width = fast ? dim : ni;
    float *out = sq_mallocn((size_t)B * width, sizeof *out);
    float *contrib = sq_mallocn((size_t)W, sizeof *contrib);
    sq_arena *a = sq_arena_create(m->ops->scratch ? m->ops->scratch(m, B, 0) : (size_t)64 << 20);
    sq_status rc = SQ_OK;
    if (!qs || !it || (seq->beh && !be) || (seq->ts && !ts) || (seq->scene && !sc) ||
        (seq->values && !va) || !out || !contrib || !a) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory (explain)");
        goto done;
    }
    qs[0] = *seq;
    for (uint32_t j = 0; j < W; j++) {
        const uint32_t drop = first + j;
        const size_t o = (size_t)j * L;
        sq_seq *q = &qs[j + 1];
        *q = *seq;
        q->n = L;
        q->items = it + o;
        memcpy(it + o, seq->items, drop * sizeof *it);
        memcpy(it + o + drop, seq->items + drop + 1, (L - drop) * sizeof *it);
#define CUT(arr, field)                                                                            \
    if (arr) {                                                                                     \
        memcpy(arr + o, seq->field, drop * sizeof *arr);                                           \
        memcpy(arr + o + drop, seq->field + drop + 1, (L - drop) * sizeof *arr);                   \
        q->field = arr + o;                                                                        \
    }
        CUT(be, beh)
        CUT(ts, ts)
        CUT(sc, scene)
        CUT(va, values)
#undef CUT
    }
    if (fast)
        rc = m->ops->seq_vectors(m, qs, B, out, a, err);
    else
        rc = sq_model_score(m, qs, B, out, a, err);
    if (rc)
        goto done;
    for (uint32_t r = 0; r < n; r++) {
        const uint32_t item = items[r];
        float base;
        if (fast)
            base = cblas_sdot((int)dim, out, 1, Y + (size_t)item * dim, 1);
        else
            base = out[item];
        for (uint32_t j = 0; j < W; j++) {
            const float *row = out + (size_t)(j + 1) * width;
            float s = fast ? cblas_sdot((int)dim, row, 1, Y + (size_t)item * dim, 1) : row[item];
            contrib[j] = base - s;
        }
        /* the per_item largest contributions, largest first */
        uint32_t got = 0;
        sq_reason *best = reasons + (size_t)r * per_item;
        for (uint32_t j = 0; j < W; j++) {
            sq_reason x = {first + j, contrib[j]};
            if (got == per_item && x.contribution <= best[got - 1].contribution)
                continue;
            uint32_t p = got < per_item ? got++ : per_item - 1;
            while (p > 0 && best[p - 1].contribution < x.contribution) {
                best[p] = best[p - 1];
                p--;
            }
            best[p] = x;
        }
        for (uint32_t g = got; g < per_item; g++)
            best[g] = (sq_reason){UINT32_MAX, 0.0f};
    }
    *n_reasons = W < per_item ? W : per_item;
done:
    sq_free(qs);
    sq_free(it);
    sq_free(be);
    sq_free(ts);
    sq_free(sc);
    sq_free(va);
    sq_free(out);
    sq_free(contrib);
    sq_arena_free(a);
    return rc;
}
