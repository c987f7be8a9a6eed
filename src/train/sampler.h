/* sampler.h — negative item sampling for training batches: uniform over the catalogue or in
 * proportion to each item's count among training events ("pop"), never the positive itself. */
#ifndef SEQREC_TRAIN_SAMPLER_H
#define SEQREC_TRAIN_SAMPLER_H

#include "seqrec/data.h"

typedef struct {
    uint32_t n_items;
    uint64_t *cum;       /* pop: cum[i] = training events of items 0..i; NULL: uniform */
    float *logq;         /* pop: log of each item's probability of being drawn; NULL: uniform */
    const uint8_t *skip; /* items never drawn (a cold_items split's held-out items), or NULL */
} sq_neg_sampler;

/* pop = 0: uniform; 1: by training popularity (events before each user's train_end). Items
 * held out by the split (item_cold) are never drawn. */
sq_status sq_neg_sampler_init(sq_neg_sampler *s, const sq_dataset *d, const sq_split *sp, int pop,
                              sq_error *err);
void sq_neg_sampler_free(sq_neg_sampler *s);
/* One item id in [0, n_items), redrawn (a bounded number of times) while it equals `avoid`. */
uint32_t sq_neg_draw(const sq_neg_sampler *s, sq_rng *rng, uint32_t avoid);
/* negs [B, T, k] (item id + 1) for every position with a target in tg [B, T]; 0 elsewhere. */
void sq_neg_fill(const sq_neg_sampler *s, sq_rng *rng, const uint32_t *tg, uint32_t B, uint32_t T,
                 uint32_t k, uint32_t *negs);

#endif
