/* mt.h — the multi-task SASRec's hooks into the model registry (models/mt.c). */
#ifndef SEQREC_MODELS_MT_H
#define SEQREC_MODELS_MT_H

#include "seqrec/model.h"
#include "seqrec/tasks.h"

/* Does this config ask for the multi-task model (a `tasks` or `inputs` key)? */
int sq_mt_wanted(const sq_config *cfg);
/* At creation, with the dataset at hand: behaviour names of click_behaviours / buy_behaviours
 * (or their defaults) become ids, and the context fields' vocabulary sizes are recorded
 * (ctx_sizes), so that the saved config rebuilds the same network without the dataset. */
sq_status sq_mt_resolve_config(sq_config *cfg, const sq_dataset *d, sq_error *err);
/* SASRec's init when sq_mt_wanted: switches m->ops to the multi-task ops and builds them. */
sq_status sq_mt_init(sq_model *m, sq_rng *rng, sq_error *err);

#endif
