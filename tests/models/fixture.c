/* fixture.c — see fixture.h. */
#include "models/fixture.h"

#include "testutil.h"

#include <omp.h>

sq_model *tm_create(const char *kind, const sq_dataset *d, const char *const *base,
                    const char *const *extra, uint64_t seed) {
    sq_error err = {0};
    sq_config *cfg = sq_config_create();
    assert_non_null(cfg);
    for (int i = 0; base && base[i]; i++)
        if (sq_config_set_arg(cfg, base[i], &err))
            fail_msg("%s: %s", base[i], err.msg);
    for (int i = 0; extra && extra[i]; i++)
        if (sq_config_set_arg(cfg, extra[i], &err))
            fail_msg("%s: %s", extra[i], err.msg);
    sq_model *m = NULL;
    if (sq_model_create(&m, kind, cfg, d, seed, &err))
        fail_msg("create %s: %s", kind, err.msg);
    sq_config_free(cfg);
    return m;
}

void tm_train(sq_model *m, const sq_dataset *d, const sq_split *s, uint32_t epochs, int no_stop,
              FILE *log, sq_train_result *tr) {
    omp_set_num_threads(1);
    sq_error err = {0};
    char kv[64];
    snprintf(kv, sizeof kv, "epochs=%u", epochs);
    assert_int_equal(sq_config_set_arg(m->cfg, kv, &err), SQ_OK);
    if (no_stop) {
        snprintf(kv, sizeof kv, "patience=%u", epochs);
        assert_int_equal(sq_config_set_arg(m->cfg, kv, &err), SQ_OK);
    }
    sq_train_opts o;
    assert_int_equal(sq_train_opts_from_config(m->cfg, &o, &err), SQ_OK);
    o.seed = 7;
    o.metrics_log = log;
    if (sq_train(m, d, s, &o, tr, &err))
        fail_msg("train %s: %s", m->ops->name, err.msg);
}

double tm_eval10(const sq_model *m, const sq_dataset *d, const sq_split *s, double *ndcg) {
    sq_eval_opts o = {.k = {10}, .n_k = 1};
    sq_eval_result r;
    sq_error err = {0};
    if (sq_evaluate(m, d, s, &o, &r, &err))
        fail_msg("evaluate %s: %s", m->ops->name, err.msg);
    if (ndcg)
        *ndcg = r.m[0][SQ_M_NDCG].mean;
    return r.m[0][SQ_M_HR].mean;
}

sq_model *tm_popularity(const sq_dataset *d, const sq_split *s) {
    sq_model *pop = NULL;
    sq_error err = {0};
    if (sq_model_create(&pop, "pop", NULL, d, 1, &err) || pop->ops->fit(pop, d, s, NULL, &err))
        fail_msg("pop: %s", err.msg);
    return pop;
}

double tm_pop_hr10(const sq_dataset *d, const sq_split *s) {
    sq_model *pop = tm_popularity(d, s);
    const double h = tm_eval10(pop, d, s, NULL);
    sq_model_free(pop);
    return h;
}
