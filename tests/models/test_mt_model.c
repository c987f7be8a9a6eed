/* test_mt_model.c — the multi-task SASRec (`--tasks`) on a generated log with a planted funnel
 * (view → cart → buy, rates by scene, device and hour; docs/generator.md): in a few epochs the
 * next-behaviour head beats always answering the commonest behaviour, the click and buy heads
 * rank far above chance, and the next-item ranking is learnt too; the defaults the creator
 * resolves (click and buy behaviours by name, context sizes); save → load gives the same
 * predictions; bad task lists and impossible tasks are refused with a clear message. */
#include "testutil.h"

#include "seqrec/eval.h"
#include "seqrec/tasks.h"
#include "seqrec/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static sq_dataset *D;
static sq_split S;

static int setup(void **state) {
    (void)state;
    return test_gen_loo("mt", 1500, 300, 45000, 5, &D, &S);
}

static int teardown(void **state) {
    (void)state;
    test_gen_loo_free(D, &S);
    return 0;
}

static sq_model *train_towers(const char *tasks, const char *sharing, uint32_t epochs,
                              const char *towers) {
    sq_error err = {0};
    sq_config *cfg = sq_config_create();
    if (towers && sq_config_set(cfg, "scene_towers", towers, &err))
        fail_msg("config: %s", err.msg);
    char ep[16];
    snprintf(ep, sizeof ep, "%u", epochs);
    if (sq_config_set(cfg, "tasks", tasks, &err) || sq_config_set(cfg, "sharing", sharing, &err) ||
        sq_config_set(cfg, "hidden", "32", &err) || sq_config_set(cfg, "maxlen", "20", &err) ||
        sq_config_set(cfg, "lr", "0.003", &err) || sq_config_set(cfg, "batch", "32", &err) ||
        sq_config_set(cfg, "epochs", ep, &err) || sq_config_set(cfg, "valid_every", ep, &err))
        fail_msg("config: %s", err.msg);
    sq_model *m = NULL;
    if (sq_model_create(&m, "sasrec", cfg, D, 7, &err))
        fail_msg("create: %s", err.msg);
    sq_train_opts o;
    assert_int_equal(sq_train_opts_from_config(m->cfg, &o, &err), SQ_OK);
    o.seed = 7;
    sq_train_result tr;
    if (sq_train(m, D, &S, &o, &tr, &err))
        fail_msg("train: %s", err.msg);
    sq_config_free(cfg);
    return m;
}

static sq_model *train(const char *tasks, const char *sharing, uint32_t epochs) {
    return train_towers(tasks, sharing, epochs, NULL);
}

static void eval_tasks(const sq_model *m, sq_task_eval *r) {
    sq_eval_opts o = {.bootstrap = 0};
    sq_error err = {0};
    if (sq_evaluate_tasks(m, D, &S, &o, r, &err))
        fail_msg("evaluate_tasks: %s", err.msg);
}

static void test_learns_funnel(void **state) {
    (void)state;
    sq_model *m = train("next_item,next_behaviour,click,buy", "mmoe", 8);
    /* resolved by name from view,cart,buy: click = {cart, buy}, buy = {buy} */
    sq_task_labels lab;
    unsigned tasks = sq_model_tasks(m, &lab);
    assert_int_equal(tasks, 1u << SQ_TASK_NEXT_ITEM | 1u << SQ_TASK_NEXT_BEH | 1u << SQ_TASK_CLICK |
                                1u << SQ_TASK_BUY);
    uint32_t view = sq_data_find_behaviour(D, "view"), cart = sq_data_find_behaviour(D, "cart"),
             buy = sq_data_find_behaviour(D, "buy");
    assert_true(!lab.click[view] && lab.click[cart] && lab.click[buy]);
    assert_true(!lab.buy[view] && !lab.buy[cart] && lab.buy[buy]);
    assert_string_equal(sq_config_get(m->cfg, "inputs"), "item,behaviour,gap,value,scene,context");
    assert_string_equal(sq_config_get(m->cfg, "value_edges"), "1,2,3,4,5"); /* the ratings */
    sq_task_eval r;
    eval_tasks(m, &r);
    assert_int_equal(r.groups, 1 + sq_data_info_of(D)->n_scenes);
    const sq_eval_stat *all = r.m[0];
    print_message("next_item NDCG@10 %.3f; next_behaviour acc %.3f (majority %.3f) F1 %.3f; "
                  "click AUC %.3f; buy AUC %.3f\n",
                  all[SQ_TM_NDCG10].mean, all[SQ_TM_BEH_ACC].mean, all[SQ_TM_BEH_MAJ].mean,
                  all[SQ_TM_BEH_F1].mean, all[SQ_TM_CTR_AUC].mean, all[SQ_TM_CTCVR_AUC].mean);
    assert_true(all[SQ_TM_BEH_ACC].mean > all[SQ_TM_BEH_MAJ].mean + 0.02);
    assert_true(all[SQ_TM_BEH_F1].mean > 0.5); /* majority answers: F1 of one class of three */
    assert_true(all[SQ_TM_CTR_AUC].mean > 0.8);
    assert_true(all[SQ_TM_CTCVR_AUC].mean > 0.8);
    /* next item: well above popularity, whose NDCG@10 on this log is measured here */
    sq_model *pop = NULL;
    sq_error perr = {0};
    assert_int_equal(sq_model_create(&pop, "pop", NULL, D, 1, &perr), SQ_OK);
    assert_int_equal(pop->ops->fit(pop, D, &S, NULL, &perr), SQ_OK);
    sq_eval_opts po = {.k = {10}, .n_k = 1};
    sq_eval_result pr;
    assert_int_equal(sq_evaluate(pop, D, &S, &po, &pr, &perr), SQ_OK);
    print_message("popularity NDCG@10 %.3f\n", pr.m[0][SQ_M_NDCG].mean);
    assert_true(all[SQ_TM_NDCG10].mean > 2 * pr.m[0][SQ_M_NDCG].mean);
    sq_model_free(pop);
    assert_true(isnan(all[SQ_TM_VAL_RMSE].mean)); /* not a task of this model */
    /* save → load: the same predictions */
    sq_error err = {0};
    const char *path = test_tmp("mt.sqm");
    assert_int_equal(sq_model_save(m, path, &err), SQ_OK);
    sq_model *back = NULL;
    assert_int_equal(sq_model_load(&back, path, D, &err), SQ_OK);
    assert_int_equal(sq_model_tasks(back, NULL), tasks);
    sq_task_eval r2;
    eval_tasks(back, &r2);
    for (int k = 0; k < SQ_TM_N; k++)
        if (!isnan(all[k].mean))
            assert_true(all[k].mean == r2.m[0][k].mean);
    sq_model_free(back);
    sq_model_free(m);
}

/* The value task learns the planted rating (1.8 + 2.6 affinity + 0.7 quality + noise): RMSE
 * well under the spread of the ratings themselves. */
static void test_learns_value(void **state) {
    (void)state;
    sq_model *m = train("next_item,value", "shared_bottom", 6);
    sq_task_eval r;
    eval_tasks(m, &r);
    /* the standard deviation of the test ratings: the RMSE of predicting their mean */
    const uint64_t *off = sq_data_offsets(D);
    const float *val = sq_data_values(D);
    double s = 0, s2 = 0;
    long n = 0;
    for (uint32_t u = 0; u < sq_data_info_of(D)->n_users; u++) {
        if (S.valid_end[u] >= off[u + 1] - off[u])
            continue;
        double v = val[off[u] + S.valid_end[u]];
        s += v, s2 += v * v, n++;
    }
    double sd = sqrt(s2 / n - (s / n) * (s / n));
    print_message("value RMSE %.3f, MAE %.3f; ratings' sd %.3f\n", r.m[0][SQ_TM_VAL_RMSE].mean,
                  r.m[0][SQ_TM_VAL_MAE].mean, sd);
    assert_true(r.m[0][SQ_TM_VAL_RMSE].mean < 0.85 * sd);
    sq_model_free(m);
}

/* scene_towers: off by default; on, every (task, scene) has its tower, resolved in the saved
 * config, and save → load gives the same predictions. */
static void test_scene_towers(void **state) {
    (void)state;
    sq_model *m = train("next_behaviour,buy", "ple", 1);
    assert_string_equal(sq_config_get(m->cfg, "scene_towers"), "off");
    sq_model_free(m);
    m = train_towers("next_behaviour,buy", "ple", 2, "on");
    assert_string_equal(sq_config_get(m->cfg, "scene_towers"), "on");
    sq_task_eval r, r2;
    eval_tasks(m, &r);
    assert_true(r.m[0][SQ_TM_CTCVR_AUC].mean > 0.6);
    sq_error err = {0};
    const char *path = test_tmp("towers.sqm");
    assert_int_equal(sq_model_save(m, path, &err), SQ_OK);
    sq_model *back = NULL;
    assert_int_equal(sq_model_load(&back, path, D, &err), SQ_OK);
    eval_tasks(back, &r2);
    for (int k = 0; k < SQ_TM_N; k++)
        if (!isnan(r.m[0][k].mean))
            assert_true(r.m[0][k].mean == r2.m[0][k].mean);
    sq_model_free(back);
    sq_model_free(m);
    sq_config *cfg = sq_config_create();
    assert_int_equal(sq_config_set(cfg, "tasks", "buy", &err), SQ_OK);
    assert_int_equal(sq_config_set(cfg, "scene_towers", "yes", &err), SQ_OK);
    assert_int_equal(sq_model_create(&m, "sasrec", cfg, D, 1, &err), SQ_ERR_ARG);
    assert_non_null(strstr(err.msg, "scene_towers"));
    sq_config_free(cfg);
}

/* cand_history: on in a new model's saved config; off, the towers have no history tables. */
static void test_cand_history_key(void **state) {
    (void)state;
    sq_error err = {0};
    sq_config *cfg = sq_config_create();
    assert_int_equal(sq_config_set(cfg, "tasks", "click,buy", &err), SQ_OK);
    sq_model *on = NULL, *off = NULL;
    assert_int_equal(sq_model_create(&on, "sasrec", cfg, D, 1, &err), SQ_OK);
    assert_string_equal(sq_config_get(on->cfg, "cand_history"), "on");
    assert_int_equal(sq_config_set(cfg, "cand_history", "off", &err), SQ_OK);
    assert_int_equal(sq_model_create(&off, "sasrec", cfg, D, 1, &err), SQ_OK);
    assert_string_equal(sq_config_get(off->cfg, "cand_history"), "off");
    int hist_on = 0, hist_off = 0;
    for (size_t i = 0; i < on->params->n; i++)
        hist_on += strncmp(on->params->p[i].name, "head.hist_", 10) == 0;
    for (size_t i = 0; i < off->params->n; i++)
        hist_off += strncmp(off->params->p[i].name, "head.hist_", 10) == 0;
    assert_int_equal(hist_on, 3);
    assert_int_equal(hist_off, 0);
    sq_model_free(on);
    sq_model_free(off);
    assert_int_equal(sq_config_set(cfg, "cand_history", "yes", &err), SQ_OK);
    assert_int_equal(sq_model_create(&on, "sasrec", cfg, D, 1, &err), SQ_ERR_ARG);
    assert_non_null(strstr(err.msg, "cand_history"));
    sq_config_free(cfg);
}

static void test_bad_tasks(void **state) {
    (void)state;
    sq_error err = {0};
    sq_config *cfg = sq_config_create();
    sq_model *m = NULL;
    assert_int_equal(sq_config_set(cfg, "tasks", "next_item,clicks", &err), SQ_OK);
    assert_int_equal(sq_model_create(&m, "sasrec", cfg, D, 1, &err), SQ_ERR_ARG);
    assert_non_null(strstr(err.msg, "clicks"));
    assert_int_equal(sq_config_set(cfg, "tasks", "buy", &err), SQ_OK);
    assert_int_equal(sq_config_set(cfg, "buy_behaviours", "order", &err), SQ_OK);
    assert_int_equal(sq_model_create(&m, "sasrec", cfg, D, 1, &err), SQ_ERR_ARG);
    assert_non_null(strstr(err.msg, "order"));
    assert_int_equal(sq_config_set(cfg, "buy_behaviours", "cart", &err), SQ_OK); /* by name */
    assert_int_equal(sq_model_create(&m, "sasrec", cfg, D, 1, &err), SQ_OK);
    sq_task_labels lab;
    sq_model_tasks(m, &lab);
    assert_true(lab.buy[sq_data_find_behaviour(D, "cart")] && lab.n_buy == 1);
    sq_model_free(m);
    assert_int_equal(sq_config_set(cfg, "sharing", "moe", &err), SQ_OK);
    assert_int_equal(sq_model_create(&m, "sasrec", cfg, D, 1, &err), SQ_ERR_ARG);
    sq_config_free(cfg);
    /* a plain SASRec has no task heads */
    assert_int_equal(sq_model_create(&m, "sasrec", NULL, D, 1, &err), SQ_OK);
    assert_int_equal(sq_model_tasks(m, NULL), 0);
    sq_task_eval r;
    sq_eval_opts o = {0};
    assert_int_equal(sq_evaluate_tasks(m, D, &S, &o, &r, &err), SQ_ERR_ARG);
    sq_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learns_funnel),
        cmocka_unit_test(test_learns_value),
        cmocka_unit_test(test_scene_towers),
        cmocka_unit_test(test_cand_history_key),
        cmocka_unit_test(test_bad_tasks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
