/* sasrec.c — SASRec (Kang & McAuley 2018) behind the model interface, trained with the full
 * softmax cross-entropy over all items by default ("SASRec+", Klenitskiy & Vasilev 2023). The
 * network itself is sasrec_net.c; this file maps config keys to it, batches to its step and
 * sequences to its scores. Config: maxlen (50), hidden (64), blocks (2), heads (1), dropout
 * (0.2), ffn (= hidden), act (relu|gelu), loss (ce | bce: the original SASRec, one uniform
 * negative by default | sampled: sampled softmax with log-Q correction, 256 negatives by
 * default, for catalogues too large for the full softmax), item_encoder (id | graph | id+graph,
 * models/item_enc.h; the graph ones with loss=ce), graph_layers (1), item_features (off | on:
 * content features added to the item table, loss=ce) and item_feature_dim (4096).
 *
 * With item_encoder=id and item_features=off the network runs exactly as before (its own
 * item_emb lookups and softmax). Otherwise each step builds the item table with the encoder, feeds
 * the network table[ids]·√C as its input embedding (sq_sasrec_net_forward_x), scores the softmax
 * against the same table, and carries the table's gradient (softmax rows + scattered input
 * gradient) back through the encoder. */
#include "models/item_enc.h"
#include "models/mt.h"
#include "models/sasrec_net.h"
#include "seqrec/model.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

typedef struct {
    sq_sasrec_net net;
    sq_sasrec_loss loss;
    sq_item_enc enc; /* kind id: the network's own table, nothing else */
} sasrec;

static sq_status sasrec_init(sq_model *m, sq_rng *rng, sq_error *err) {
    if (sq_mt_wanted(m->cfg)) { /* behaviour sequences, context, several tasks: models/mt.c */
        const char *ie = sq_config_get(m->cfg, "item_encoder"),
                   *ifeat = sq_config_get(m->cfg, "item_features");
        if (ie && strcmp(ie, "id"))
            return sq_errorf(err, SQ_ERR_ARG,
                             "config: item_encoder=%s is not available with "
                             "tasks, behaviours or context (use id)",
                             ie);
        if (ifeat && strcmp(ifeat, "off"))
            return sq_errorf(err, SQ_ERR_ARG,
                             "config: item_features=%s is not available with "
                             "tasks, behaviours or context (use off)",
                             ifeat);
        return sq_mt_init(m, rng, err);
    }
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
    sq_item_enc_opts eo;
    if ((rc = sq_item_enc_config(m->cfg, &eo, err)))
        return rc;
    if (eo.kind != SQ_ITEM_ENC_ID && loss != SQ_SASREC_CE)
        return sq_errorf(err, SQ_ERR_ARG, "config: item_encoder=%s needs loss=ce",
                         sq_config_get(m->cfg, "item_encoder"));
    if (eo.feat && loss != SQ_SASREC_CE)
        return sq_errorf(err, SQ_ERR_ARG, "config: item_features=on needs loss=ce");
    const int runs = eo.kind != SQ_ITEM_ENC_ID || eo.feat;
    static const char *const losses[] = {"ce", "bce", "sampled"}, *const negs[] = {"0", "1", "256"};
    if ((rc = sq_config_set(m->cfg, "loss", losses[loss], err)) ||
        (rc = sq_config_default(m->cfg, "negatives", negs[loss], err)))
        return rc;
    if (hidden % heads)
        return sq_errorf(err, SQ_ERR_ARG, "config: hidden (%ld) must be a multiple of heads (%ld)",
                         hidden, heads);
    if ((rc = sq_config_set_num(m->cfg, "maxlen", (double)maxlen, 1, err)) ||
        (rc = sq_config_set_num(m->cfg, "hidden", (double)hidden, 1, err)) ||
        (rc = sq_config_set_num(m->cfg, "blocks", (double)blocks, 1, err)) ||
        (rc = sq_config_set_num(m->cfg, "heads", (double)heads, 1, err)) ||
        (rc = sq_config_set_num(m->cfg, "ffn", (double)ffn, 1, err)) ||
        (rc = sq_config_set_num(m->cfg, "dropout", dropout, 0, err)) ||
        (rc = sq_config_set(m->cfg, "act", act ? "gelu" : "relu", err)))
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
    if (!runs) {
        if ((rc = sq_sasrec_net_init(&net->net, &c, err))) {
            sq_free(net);
            return rc;
        }
    } else if ((rc = sq_sasrec_net_declare(&net->net, &c, err))) {
        sq_free(net);
        return rc;
    }
    m->impl = net; /* destroy frees it from here on */
    if (sq_item_enc_declare(&net->enc, &net->net.ps, &eo, net->net.item_emb, c.n_items + 1,
                            c.hidden) < 0)
        return sq_errorf(err, SQ_ERR_NOMEM, "sasrec: declaring the item encoder failed");
    if (runs && (rc = sq_params_alloc(&net->net.ps, err)))
        return rc;
    sq_sasrec_net_reset(&net->net, rng);
    sq_item_enc_reset(&net->enc, &net->net.ps, rng);
    m->params = &net->net.ps;
    return SQ_OK;
}

static sq_status sasrec_fit(sq_model *m, const sq_dataset *d, const sq_split *s,
                            const sq_reporter *rep, sq_error *err) {
    (void)rep;
    sasrec *net = m->impl;
    return sq_item_enc_fit(&net->enc, d, s, err);
}

static sq_status sasrec_prepare(sq_model *m, const sq_dataset *d, sq_error *err) {
    sasrec *net = m->impl;
    return sq_item_enc_prepare(&net->enc, d, err);
}

/* x [N, C] = table[ids]·√C, the input embedding of an encoded step or score. */
static sq_status lookup(const sq_sasrec_net *net, sq_arena *a, const float *table,
                        const uint32_t *ids, int N, float **x, sq_error *err) {
    const int C = net->cfg.hidden;
    const float sc = sqrtf((float)C);
    if (!(*x = sq_arena_alloc(a, (size_t)N * C * sizeof **x)))
        return sq_errorf(err, SQ_ERR_NOMEM, "sasrec: arena full (input lookup)");
    for (int n = 0; n < N; n++) {
        if (ids[n] > (uint32_t)net->cfg.n_items)
            return sq_errorf(err, SQ_ERR_ARG, "sasrec: input %u at position %d is above %d", ids[n],
                             n, net->cfg.n_items);
        const float *e = table + (size_t)ids[n] * C;
        float *o = *x + (size_t)n * C;
        for (int k = 0; k < C; k++)
            o[k] = sc * e[k];
    }
    return SQ_OK;
}

/* One training step with the item encoder's table in place of item_emb (see the header). */
static sq_status step_encoded(sasrec *s, sq_arena *a, const sq_batch *b, sq_rng *rng, float *loss,
                              long *n_targets, sq_error *err) {
    sq_sasrec_net *net = &s->net;
    sq_params *ps = &net->ps;
    const int B = (int)b->B, T = (int)b->T, C = net->cfg.hidden, N = B * T;
    const int V = net->cfg.n_items + 1;
    sq_item_enc_acts ea;
    sq_sasrec_acts acts;
    float *x;
    sq_status rc;
    if ((rc = sq_item_enc_forward(&s->enc, ps, a, &ea, err)) ||
        (rc = lookup(net, a, ea.table, b->inputs, N, &x, err)) ||
        (rc = sq_sasrec_net_forward_x(net, a, &acts, b->inputs, x, B, T, rng, NULL, err)))
        return rc;
    int32_t *tgt = sq_arena_alloc(a, (size_t)N * sizeof *tgt);
    float *dh = sq_arena_calloc(a, (size_t)N * C * sizeof *dh);
    float *dtable = sq_arena_calloc(a, (size_t)V * C * sizeof *dtable);
    if (!tgt || !dh || !dtable)
        return sq_errorf(err, SQ_ERR_NOMEM, "sasrec step: arena full");
    long nt = 0;
    for (int n = 0; n < N; n++) {
        if (b->targets[n] >= (uint32_t)V)
            return sq_errorf(err, SQ_ERR_ARG, "sasrec: target %u at position %d is above %d",
                             b->targets[n], n, V - 1);
        tgt[n] = b->targets[n] ? (int32_t)b->targets[n] : -1;
        nt += b->targets[n] != 0;
    }
    *n_targets = nt;
    const sq_nn_ce_opts o = {.first_item = 1,
                             .exclude = b->cold_items,
                             .n_exclude = (int)b->n_cold_items,
                             .exclude_shift = 1};
    if ((rc = sq_nn_ce_chunked(loss, dh, dtable, acts.h, ea.table, tgt, N, C, V, 1.0f, &o, a,
                               err)) ||
        nt == 0)
        return rc;
    if ((rc = sq_sasrec_net_backward(net, a, &acts, dh, NULL, err))) /* dh: now dL/dx */
        return rc;
    sq_item_enc_scatter(dtable, dh, b->inputs, N, C, sqrtf((float)C));
    return sq_item_enc_backward(&s->enc, ps, a, &ea, dtable, err);
}

/* For scoring with the encoder: the table and the network's forward over the last maxlen items
 * of each sequence (acts->h: [B, T, C], T = maxlen). */
static sq_status encode(const sq_model *m, const sq_seq *seqs, uint32_t B, sq_arena *a,
                        sq_sasrec_acts *acts, const float **table, sq_error *err) {
    const sasrec *s = m->impl;
    const sq_sasrec_net *net = &s->net;
    uint32_t T = (uint32_t)net->cfg.maxlen, *ids = sq_model_window_ids(m, seqs, B, T, a);
    float *x;
    if (!ids)
        return sq_errorf(err, SQ_ERR_NOMEM, "scoring arena too small");
    sq_status rc;
    if ((rc = sq_item_enc_table(&s->enc, &net->ps, a, table, err)) ||
        (rc = lookup(net, a, *table, ids, (int)(B * T), &x, err)))
        return rc;
    return sq_sasrec_net_forward_x(net, a, acts, ids, x, (int)B, (int)T, NULL, NULL, err);
}

static size_t sasrec_scratch(const sq_model *m, uint32_t B, uint32_t T) {
    const sasrec *s = m->impl;
    size_t n = sq_sasrec_net_scratch(&s->net.cfg, (int)B, T ? (int)T : s->net.cfg.maxlen);
    if (T && s->loss != SQ_SASREC_CE) {
        long K = 0;
        sq_config_int(m->cfg, "negatives", 1, 1, 4096, &K, NULL);
        n += sq_sasrec_sampled_scratch((int)(B * T), (int)K);
    }
    if (sq_item_enc_runs(&s->enc)) /* the encoder (unless cached), the lookup, dtable */
        n += (T || !s->enc.cache ? sq_item_enc_scratch(&s->enc) : 0) +
             ((size_t)B * (T ? T : (uint32_t)s->net.cfg.maxlen) + (size_t)s->enc.V) * s->enc.C *
                 sizeof(float) +
             (64u << 10);
    return n;
}

static sq_status sasrec_train_batch(sq_model *m, const sq_batch *b, sq_arena *a, sq_rng *rng,
                                    double *loss, long *n_targets, sq_error *err) {
    sasrec *s = m->impl;
    float l = 0;
    sq_status rc;
    if (sq_item_enc_runs(&s->enc)) {
        sq_item_enc_drop(&s->enc); /* the parameters are about to change */
        rc = step_encoded(s, a, b, rng, &l, n_targets, err);
    } else if (s->loss == SQ_SASREC_CE) {
        s->net.exclude = b->cold_items, s->net.n_exclude = (int)b->n_cold_items;
        rc = sq_sasrec_net_step(&s->net, a, b->inputs, b->targets, (int)b->B, (int)b->T, rng, &l,
                                n_targets, NULL, err);
        s->net.exclude = NULL, s->net.n_exclude = 0;
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
    if (sq_item_enc_runs(&((const sasrec *)m->impl)->enc)) {
        sq_sasrec_acts acts;
        const float *table;
        sq_status rc = encode(m, seqs, B, a, &acts, &table, err);
        if (rc)
            return rc;
        const int T = net->cfg.maxlen, C = net->cfg.hidden;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, net->cfg.n_items, C, 1.0f,
                    acts.h + (size_t)(T - 1) * C, T * C, table + C, C, 0.0f, out, net->cfg.n_items);
        return SQ_OK;
    }
    uint32_t T = (uint32_t)net->cfg.maxlen, *ids = sq_model_window_ids(m, seqs, B, T, a);
    if (!ids)
        return sq_errorf(err, SQ_ERR_NOMEM, "scoring arena too small");
    return sq_sasrec_net_score(net, a, ids, (int)B, (int)T, out, err);
}

/* With an encoder: its cached table, built on first use in a model still training (dropped by
 * the next train_batch: call from one thread, as after loading). */
static const float *sasrec_item_vectors(const sq_model *m, uint32_t *dim) {
    sasrec *s = m->impl;
    const sq_sasrec_net *net = &s->net;
    *dim = (uint32_t)net->cfg.hidden;
    const float *E = !sq_item_enc_runs(&s->enc) ? sq_nn_val(&net->ps, net->item_emb)
                                                : sq_item_enc_cache(&s->enc, &net->ps);
    return E ? E + net->cfg.hidden : NULL; /* row 0 is padding */
}

static sq_status sasrec_seq_vectors(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out,
                                    sq_arena *a, sq_error *err) {
    const sq_sasrec_net *net = &((const sasrec *)m->impl)->net;
    uint32_t T = (uint32_t)net->cfg.maxlen;
    sq_sasrec_acts acts;
    sq_status rc;
    if (sq_item_enc_runs(&((const sasrec *)m->impl)->enc)) {
        const float *table;
        rc = encode(m, seqs, B, a, &acts, &table, err);
    } else {
        uint32_t *ids = sq_model_window_ids(m, seqs, B, T, a);
        if (!ids)
            return sq_errorf(err, SQ_ERR_NOMEM, "scoring arena too small");
        rc = sq_sasrec_net_forward(net, a, &acts, ids, (int)B, (int)T, NULL, NULL, err);
    }
    if (rc)
        return rc;
    const size_t C = (size_t)net->cfg.hidden;
    for (uint32_t b = 0; b < B; b++)
        memcpy(out + b * C, acts.h + ((size_t)b * T + T - 1) * C, C * sizeof *out);
    return SQ_OK;
}

static const sq_features *sasrec_item_features(const sq_model *m, sq_features_opts *o) {
    return sq_item_enc_features(&((const sasrec *)m->impl)->enc, o);
}

static sq_status sasrec_feature_vectors(const sq_model *m, const sq_features *rows, float *out,
                                        sq_error *err) {
    const sasrec *s = m->impl;
    return sq_item_enc_feature_vectors(&s->enc, &s->net.ps, rows, out, err);
}

static sq_status sasrec_save_state(const sq_model *m, sq_blob **blobs, size_t *n, sq_error *err) {
    sasrec *s = m->impl;
    *blobs = NULL;
    *n = 0;
    if (!sq_item_enc_runs(&s->enc))
        return SQ_OK;
    if (!(*blobs = sq_calloc(SQ_ITEM_ENC_BLOBS, sizeof **blobs)))
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    return sq_item_enc_blobs(&s->enc, *blobs, n, err);
}

static sq_status sasrec_load_state(sq_model *m, const sq_sqm *f, sq_error *err) {
    sasrec *s = m->impl;
    return sq_item_enc_load(&s->enc, &s->net.ps, f, err);
}

static void sasrec_destroy(sq_model *m) {
    sasrec *net = m->impl;
    if (!net)
        return;
    sq_item_enc_free(&net->enc);
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
    .fit = sasrec_fit,
    .prepare = sasrec_prepare,
    .train_batch = sasrec_train_batch,
    .scratch = sasrec_scratch,
    .score = sasrec_score,
    .item_vectors = sasrec_item_vectors,
    .seq_vectors = sasrec_seq_vectors,
    .save_state = sasrec_save_state,
    .load_state = sasrec_load_state,
    .destroy = sasrec_destroy,
    .item_features = sasrec_item_features,
    .feature_vectors = sasrec_feature_vectors,
};
