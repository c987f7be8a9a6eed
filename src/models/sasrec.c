/* sasrec.c — SASRec (Kang & McAuley 2018) behind the model interface, trained with the full
 * softmax cross-entropy over all items by default ("SASRec+", Klenitskiy & Vasilev 2023). The
 * network itself is sasrec_net.c; this file maps config keys to it, batches to its step and
 * sequences to its scores. Config: maxlen (50), hidden (64), blocks (2), heads (1), dropout
 * (0.2), ffn (= hidden), act (relu|gelu), loss (ce | bce: the original SASRec, one uniform
 * negative by default | sampled: sampled softmax with log-Q correction, 256 negatives by
 * default, for catalogues too large for the full softmax). */
#include "models/mt.h"
#include "models/sasrec_net.h"
#include "seqrec/model.h"

#include <string.h>

typedef struct {
    sq_sasrec_net net;
    sq_sasrec_loss loss;
} sasrec;

static sq_status sasrec_init(sq_model *m, sq_rng *rng, sq_error *err) {
    if (sq_mt_wanted(m->cfg)) /* behaviour sequences, context, several tasks: models/mt.c */
        return sq_mt_init(m, rng, err);
    long maxlen, hidden, blocks, heads, ffn;
    double dropout;
    int act, loss;
    sq_status rc;
    if ((rc = sq_config_int(m->cfg, "maxlen", 50, 1, 4096, &maxlen, err)) ||
        (rc = sq_config_int(m->cfg, "hidden", 64, 1, 4096, &hidden, err)) ||
        (rc = sq_config_int(m->cfg, "blocks", 2, 1, SQ_SASREC_MAX_BLOCKS, &blocks, err)) ||
        (rc = sq_config_int(m->cfg, "heads", 1, 1, 64, &heads, err)) ||
        (rc = sq_config_int(m->cfg, "ffn", hidden, 1, 65536, &ffn, err)) ||
        (rc = sq_config_double(m->cfg, "dropout", 0.2, 0, 0.95, &dropout, err)) ||
        (rc = sq_config_choice(m->cfg, "act", "relu|gelu", 0, &act, err)) ||
        (rc = sq_config_choice(m->cfg, "loss", "ce|bce|sampled", 0, &loss, err)))
        return rc;
    static const char *const losses[] = {"ce", "bce", "sampled"}, *const negs[] = {"0", "1", "256"};
    if ((rc = sq_config_set(m->cfg, "loss", losses[loss], err)) ||
        (rc = sq_config_default(m->cfg, "negatives", negs[loss], err)))
        return rc;
    if (hidden % heads)
        return sq_errorf(err, SQ_ERR_ARG, "config: hidden (%ld) must be a multiple of heads (%ld)",
                         hidden, heads);
    char buf[6][32];
    snprintf(buf[0], 32, "%ld", maxlen);
    snprintf(buf[1], 32, "%ld", hidden);
    snprintf(buf[2], 32, "%ld", blocks);
    snprintf(buf[3], 32, "%ld", heads);
    snprintf(buf[4], 32, "%ld", ffn);
    snprintf(buf[5], 32, "%g", dropout);
    const char *keys[] = {"maxlen", "hidden", "blocks", "heads", "ffn", "dropout"};
    for (int i = 0; i < 6; i++)
        if ((rc = sq_config_set(m->cfg, keys[i], buf[i], err)))
            return rc;
    if ((rc = sq_config_set(m->cfg, "act", act ? "gelu" : "relu", err)))
        return rc;
    sasrec *net = sq_calloc(1, sizeof *net);
    if (!net)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    net->loss = (sq_sasrec_loss)loss;
    sq_sasrec_config c;
    sq_sasrec_config_default(&c, (int)m->info.n_items, (int)maxlen);
    c.hidden = (int)hidden;
    c.blocks = (int)blocks;
    c.heads = (int)heads;
    c.ffn = (int)ffn;
    c.dropout = (float)dropout;
    c.act = act ? SQ_ACT_GELU : SQ_ACT_RELU;
    if ((rc = sq_sasrec_net_init(&net->net, &c, err))) {
        sq_free(net);
        return rc;
    }
    sq_sasrec_net_reset(&net->net, rng);
    m->impl = net;
    m->params = &net->net.ps;
    return SQ_OK;
}

static size_t sasrec_scratch(const sq_model *m, uint32_t B, uint32_t T) {
    const sasrec *s = m->impl;
    size_t n = sq_sasrec_net_scratch(&s->net.cfg, (int)B, T ? (int)T : s->net.cfg.maxlen);
    if (T && s->loss != SQ_SASREC_CE) {
        long K = 0;
        sq_config_int(m->cfg, "negatives", 1, 1, 4096, &K, NULL);
        n += sq_sasrec_sampled_scratch((int)(B * T), (int)K);
    }
    return n;
}

static sq_status sasrec_train_batch(sq_model *m, const sq_batch *b, sq_arena *a, sq_rng *rng,
                                    double *loss, long *n_targets, sq_error *err) {
    sasrec *s = m->impl;
    float l = 0;
    sq_status rc;
    if (s->loss == SQ_SASREC_CE) {
        rc = sq_sasrec_net_step(&s->net, a, b->inputs, b->targets, (int)b->B, (int)b->T, rng, &l,
                                n_targets, NULL, err);
    } else {
        if (!b->negs || b->n_neg < 1)
            return sq_errorf(err, SQ_ERR_ARG, "sasrec: loss %s needs negatives (negatives >= 1)",
                             s->loss == SQ_SASREC_BCE ? "bce" : "sampled");
        sq_sasrec_sampling smp = {s->loss, b->negs, (int)b->n_neg, b->item_logq};
        rc = sq_sasrec_net_step_sampled(&s->net, a, b->inputs, b->targets, (int)b->B, (int)b->T,
                                        &smp, rng, &l, n_targets, err);
    }
    *loss = l;
    return rc;
}

static sq_status sasrec_score(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out,
                              sq_arena *a, sq_error *err) {
    const sq_sasrec_net *net = &((const sasrec *)m->impl)->net;
    uint32_t T = (uint32_t)net->cfg.maxlen, *ids = sq_model_window_ids(m, seqs, B, T, a);
    if (!ids)
        return sq_errorf(err, SQ_ERR_NOMEM, "scoring arena too small");
    return sq_sasrec_net_score(net, a, ids, (int)B, (int)T, out, err);
}

static const float *sasrec_item_vectors(const sq_model *m, uint32_t *dim) {
    const sq_sasrec_net *net = &((const sasrec *)m->impl)->net;
    *dim = (uint32_t)net->cfg.hidden;
    return sq_nn_val(&net->ps, net->item_emb) + net->cfg.hidden; /* row 0 is padding */
}

static sq_status sasrec_seq_vectors(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out,
                                    sq_arena *a, sq_error *err) {
    const sq_sasrec_net *net = &((const sasrec *)m->impl)->net;
    uint32_t T = (uint32_t)net->cfg.maxlen, *ids = sq_model_window_ids(m, seqs, B, T, a);
    if (!ids)
        return sq_errorf(err, SQ_ERR_NOMEM, "scoring arena too small");
    sq_sasrec_acts acts;
    sq_status rc = sq_sasrec_net_forward(net, a, &acts, ids, (int)B, (int)T, NULL, NULL, err);
    if (rc)
        return rc;
    const size_t C = (size_t)net->cfg.hidden;
    for (uint32_t b = 0; b < B; b++)
        memcpy(out + b * C, acts.h + ((size_t)b * T + T - 1) * C, C * sizeof *out);
    return SQ_OK;
}

static void sasrec_destroy(sq_model *m) {
    sasrec *net = m->impl;
    if (!net)
        return;
    sq_sasrec_net_free(&net->net);
    sq_free(net);
    m->impl = NULL;
    m->params = NULL;
}

const sq_model_ops sq_model_sasrec_ops = {
    .name = "sasrec",
    .about = "SASRec: causal self-attention over the sequence, full cross-entropy (SASRec+)",
    .iterative = 1,
    .init = sasrec_init,
    .train_batch = sasrec_train_batch,
    .scratch = sasrec_scratch,
    .score = sasrec_score,
    .item_vectors = sasrec_item_vectors,
    .seq_vectors = sasrec_seq_vectors,
    .destroy = sasrec_destroy,
};
