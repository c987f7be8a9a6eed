/* fit.c — build, train and validate one model (see fit.h). */
#define _POSIX_C_SOURCE 200809L /* sigaction */
#include "cli/fit.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag;

static void on_interrupt(int sig) {
    if (stop_flag) { /* the second one: as if not caught */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_flag = 1;
    static const char msg[] = "\ninterrupted: stopping after this batch, keeping the best epoch "
                              "(again to quit at once)\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
}

void sq_cli_catch_interrupt(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* The window follows the data: the 90th percentile of sequence lengths, within 50..200. */
static sq_status default_maxlen(sq_config *cfg, const sq_dataset *d, sq_error *err) {
    sq_data_summary sum;
    sq_status rc = sq_data_summarize(d, &sum, err);
    if (rc)
        return rc;
    uint32_t ml = (sum.len_p90 + 9) / 10 * 10;
    sq_data_summary_free(&sum);
    char buf[16];
    snprintf(buf, sizeof buf, "%u", ml < 50 ? 50 : ml > 200 ? 200 : ml);
    return sq_config_set(cfg, "maxlen", buf, err);
}

sq_status sq_cli_fit(sq_model **out, const char *kind, sq_config *cfg, const sq_dataset *d,
                     const sq_split *s, uint64_t seed, const sq_reporter *rep, FILE *log,
                     sq_cli_fit_result *r, sq_error *err) {
    memset(r, 0, sizeof *r);
    *out = NULL;
    sq_status rc;
    const sq_model_ops *ops = sq_model_find(kind);
    if (ops && ops->iterative && !sq_config_get(cfg, "maxlen") &&
        (rc = default_maxlen(cfg, d, err)))
        return rc;
    if ((rc = sq_model_create(out, kind, cfg, d, seed, err)))
        return rc;
    sq_model *m = *out;
    double t0 = sq_now();
    r->epochs = r->best_epoch = 1;
    if (m->ops->iterative) {
        sq_train_opts to;
        if ((rc = sq_train_opts_from_config(m->cfg, &to, err)))
            return rc;
        to.seed = seed;
        to.metrics_log = log;
        to.stop = &stop_flag;
        if (rep)
            to.reporter = *rep;
        sq_train_result tr;
        if ((rc = sq_train(m, d, s, &to, &tr, err)))
            return rc;
        r->epochs = tr.epochs_run;
        r->best_epoch = tr.best_epoch;
        r->interrupted = tr.interrupted;
    } else if ((rc = m->ops->fit(m, d, s, rep, err))) {
        return rc;
    }
    r->seconds = sq_now() - t0;
    sq_eval_opts eo = {0};
    eo.part = SQ_EVAL_VALID;
    eo.seed = seed;
    if (rep)
        eo.reporter = *rep;
    return sq_evaluate(m, d, s, &eo, &r->valid, err);
}

void sq_cli_model_list(char *buf, size_t cap) {
    size_t o = 0;
    buf[0] = 0;
    const sq_model_ops *const *k = sq_model_kinds();
    for (size_t i = 0; k[i] && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? "|" : "", k[i]->name);
}
