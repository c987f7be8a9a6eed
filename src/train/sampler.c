/* sampler.c — negative sampling (see sampler.h). Popularity sampling keeps cumulative counts
 * (8 bytes per item) and draws by binary search, so memory does not grow with the log. */
#include "train/sampler.h"

#include <math.h>
#include <string.h>

sq_status sq_neg_sampler_init(sq_neg_sampler *s, const sq_dataset *d, const sq_split *sp, int pop,
                              sq_error *err) {
    const sq_data_info *info = sq_data_info_of(d);
    memset(s, 0, sizeof *s);
    s->n_items = info->n_items;
    s->skip = sp->item_cold;
    if (s->n_items == 0 || (sp->item_cold && sp->n_cold >= s->n_items))
        return sq_errorf(err, SQ_ERR_EMPTY, "no items to sample negatives from");
    if (!pop)
        return SQ_OK;
    s->cum = sq_calloc(s->n_items, sizeof *s->cum);
    if (!s->cum)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory for the negative sampler");
    const uint64_t *off = sq_data_offsets(d);
    const uint32_t *items = sq_data_items(d);
    for (uint32_t u = 0; u < info->n_users; u++)
        for (uint32_t k = 0; k < sp->train_end[u]; k++)
            s->cum[items[off[u] + k]]++;
    /* +1 smoothing: an item never seen in training can still be drawn, rarely (never a
     * held-out one: its count stays 0). */
    uint64_t acc = 0;
    for (uint32_t i = 0; i < s->n_items; i++) {
        acc += sq_split_trains_on(sp, i) ? s->cum[i] + 1 : 0;
        s->cum[i] = acc;
    }
    s->logq = sq_mallocn(s->n_items, sizeof *s->logq);
    if (!s->logq) {
        sq_neg_sampler_free(s);
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory for the negative sampler");
    }
    for (uint32_t i = 0; i < s->n_items; i++) { /* a held-out item: as if drawn once */
        uint64_t c = s->cum[i] - (i ? s->cum[i - 1] : 0);
        s->logq[i] = (float)log((double)(c ? c : 1) / (double)acc);
    }
    return SQ_OK;
}

void sq_neg_sampler_free(sq_neg_sampler *s) {
    sq_free(s->cum);
    sq_free(s->logq);
    s->cum = NULL;
    s->logq = NULL;
}

static uint32_t draw_once(const sq_neg_sampler *s, sq_rng *rng) {
    if (!s->cum)
        return sq_rng_below(rng, s->n_items);
    uint64_t total = s->cum[s->n_items - 1];
    uint64_t x = (uint64_t)(sq_rng_uniform(rng) * (double)total); /* in [0, total) */
    uint32_t lo = 0, hi = s->n_items - 1;
    while (lo < hi) { /* the first i with cum[i] > x */
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->cum[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

uint32_t sq_neg_draw(const sq_neg_sampler *s, sq_rng *rng, uint32_t avoid) {
    uint32_t it = draw_once(s, rng);
    for (int tries = 0; it == avoid && s->n_items > 1 && tries < 32; tries++)
        it = draw_once(s, rng);
    /* uniform draws skip held-out items (popularity draws never reach them) */
    while (s->skip && s->skip[it])
        it = draw_once(s, rng);
    return it;
}

void sq_neg_fill(const sq_neg_sampler *s, sq_rng *rng, const uint32_t *tg, uint32_t B, uint32_t T,
                 uint32_t k, uint32_t *negs) {
    for (size_t p = 0; p < (size_t)B * T; p++)
        for (uint32_t j = 0; j < k; j++)
            negs[p * k + j] = tg[p] ? sq_neg_draw(s, rng, tg[p] - 1) + 1 : 0;
}
