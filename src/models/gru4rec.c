/* gru4rec.c — GRU4Rec (Hidasi et al. 2016; Hidasi & Karatzas 2018) and its LSTM twin behind the
 * model interface: two kinds, "gru4rec" and "lstm", one network (gru4rec.h: the picture, the
 * invariants, the config keys). This file runs it: forward and backward through the layers, the
 * two losses (full cross-entropy, BPR-max over the batch's sampled negatives), scoring, and the
 * ops tables. */
#include "models/gru4rec.h"

#include <cblas.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static size_t a64(size_t b) {
    return (b + 63) & ~(size_t)63;
}

/* ========================================== Network ========================================== */

/* table: the item table [n_items + 1, G] the inputs are read from (item_emb, or the encoder's). */
static sq_status net_forward(const sq_rnn_net *net, sq_arena *a, sq_rnn_acts *acts,
                             const float *table, const uint32_t *ids, int B, int T, sq_rng *rng,
                             sq_error *err) {
    const int G = net->G, N = B * T;
    const size_t ng = (size_t)N * G, nb = ng * sizeof(float);
    const int drop = rng && net->dropout > 0.0f;
    memset(acts, 0, sizeof *acts);
    acts->B = B;
    acts->T = T;
    acts->ids = ids;
    acts->pad = sq_arena_alloc(a, (size_t)N);
    acts->x0 = sq_arena_alloc(a, nb);
    if (drop)
        acts->m0 = sq_arena_alloc(a, ng);
    if (!acts->pad || !acts->x0 || (drop && !acts->m0))
        return sq_errorf(err, SQ_ERR_NOMEM, "%s: arena full (B=%d T=%d)",
                         net->lstm ? "lstm" : "gru4rec", B, T);
    for (int n = 0; n < N; n++)
        acts->pad[n] = ids[n] == 0;
    sq_status rc =
        sq_nn_embedding_forward(acts->x0, ids, table, N, net->n_items + 1, G, 0, 1.0f, err);
    if (rc)
        return rc;
    if (drop)
        sq_nn_dropout_forward(acts->x0, acts->m0, acts->x0, ng, net->dropout, rng);
    const float *in = acts->x0;
    for (int l = 0; l < net->layers; l++) {
        if (!(acts->y[l] = sq_arena_alloc(a, nb)))
            return sq_errorf(err, SQ_ERR_NOMEM, "rnn layer %d: arena full", l);
        rc = net->lstm ? sq_nn_lstm_forward(&net->rnn[l], &net->ps, a, &acts->ra[l], acts->y[l], in,
                                            NULL, NULL, acts->pad, B, T, err)
                       : sq_nn_gru_forward(&net->rnn[l], &net->ps, a, &acts->ra[l], acts->y[l], in,
                                           NULL, acts->pad, B, T, err);
        if (rc)
            return rc;
        acts->d[l] = acts->y[l];
        if (drop) {
            acts->d[l] = sq_arena_alloc(a, nb);
            acts->md[l] = sq_arena_alloc(a, ng);
            if (!acts->d[l] || !acts->md[l])
                return sq_errorf(err, SQ_ERR_NOMEM, "rnn layer %d dropout: arena full", l);
            sq_nn_dropout_forward(acts->d[l], acts->md[l], acts->y[l], ng, net->dropout, rng);
        }
        in = acts->d[l];
    }
    return SQ_OK;
}

/* dh: [N, G] gradient of the loss w.r.t. the last output d[layers − 1] (read only).
 * Accumulates into every parameter gradient. */
static sq_status net_backward(sq_rnn_net *net, sq_arena *a, const sq_rnn_acts *acts,
                              const float *dh, float *dtable, sq_error *err) {
    const int G = net->G, N = acts->B * acts->T;
    const size_t ng = (size_t)N * G, nb = ng * sizeof(float);
    sq_params *ps = &net->ps;
    const float *dcur = dh;
    float *dx = NULL;
    for (int l = net->layers - 1; l >= 0; l--) {
        float *dy = NULL;
        dx = sq_arena_calloc(a, nb);
        if (acts->md[l] && (dy = sq_arena_calloc(a, nb)))
            sq_nn_dropout_backward(dy, dcur, acts->md[l], ng, net->dropout);
        if (!dx || (acts->md[l] && !dy))
            return sq_errorf(err, SQ_ERR_NOMEM, "rnn backward: arena full (layer %d)", l);
        const float *g = dy ? dy : dcur;
        sq_status rc =
            net->lstm
                ? sq_nn_lstm_backward(&net->rnn[l], ps, a, &acts->ra[l], dx, NULL, NULL, g, err)
                : sq_nn_gru_backward(&net->rnn[l], ps, a, &acts->ra[l], dx, NULL, g, err);
        if (rc)
            return rc;
        dcur = dx;
    }
    if (acts->m0) { /* dx = dL/dx0: back through the embedding dropout, in place */
        const float keep = 1.0f / (1.0f - net->dropout);
        const uint8_t *m0 = acts->m0;
#pragma omp parallel for schedule(static) if (ng > 65536)
        for (size_t i = 0; i < ng; i++)
            dx[i] = m0[i] ? dx[i] * keep : 0.0f;
    }
    if (dtable) /* an encoder's table: its gradient goes back through the encoder */
        sq_item_enc_scatter(dtable, dx, acts->ids, N, G, 1.0f);
    else
        sq_nn_embedding_backward(&ps->p[net->item_emb], dx, acts->ids, N, 0, 1.0f);
    return SQ_OK;
}

/* ========================================== Losses =========================================== */

/* Full softmax over items 1..n_items at every position with a target; dh gets dL/dh, the dense
 * table its dL/dE. */
static sq_status loss_ce(sq_rnn_net *net, sq_arena *a, const float *h, const sq_batch *b, int N,
                         const float *table, float *dtable, float *dh, float *loss, sq_error *err) {
    int32_t *tgt = sq_arena_alloc(a, (size_t)N * sizeof *tgt);
    if (!tgt)
        return sq_errorf(err, SQ_ERR_NOMEM, "rnn step: arena full");
    for (int n = 0; n < N; n++)
        tgt[n] = b->targets[n] ? (int32_t)b->targets[n] : -1;
    const sq_nn_ce_opts o = {.first_item = 1,
                             .exclude = b->cold_items,
                             .n_exclude = (int)b->n_cold_items,
                             .exclude_shift = 1};
    return sq_nn_ce_chunked(loss, dh, dtable, h, table, tgt, N, net->G, net->n_items + 1, 1.0f, &o,
                            a, err);
}

static float dot(const float *x, const float *y, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += x[i] * y[i];
    return s;
}

/* y += alpha x (no BLAS call: these run inside an OpenMP region). */
static void axpy(float *y, float alpha, const float *x, int n) {
    for (int i = 0; i < n; i++)
        y[i] += alpha * x[i];
}

/* BPR-max of each target against its K sampled negatives (negs [N, K], row ids). The scores
 * are gathered dot products; dL/dh is gathered back, and dL/dE scattered into the table's rows
 * with each thread owning the rows of id % threads (deterministic order within a row). */
static sq_status loss_bprmax(sq_rnn_net *net, sq_arena *a, const float *h, const uint32_t *targets,
                             const uint32_t *negs, int K, int N, float *dh, float *loss,
                             sq_error *err) {
    const int G = net->G;
    sq_param *tab = &net->ps.p[net->item_emb];
    const float *E = tab->data;
    int32_t *pid = sq_arena_alloc(a, (size_t)N * sizeof *pid);
    float *pos = sq_arena_calloc(a, (size_t)N * sizeof *pos);
    float *dpos = sq_arena_calloc(a, (size_t)N * sizeof *dpos);
    float *neg = sq_arena_calloc(a, (size_t)N * K * sizeof *neg);
    float *dneg = sq_arena_calloc(a, (size_t)N * K * sizeof *dneg);
    if (!pid || !pos || !dpos || !neg || !dneg)
        return sq_errorf(err, SQ_ERR_NOMEM, "rnn bprmax: arena full");
    for (int n = 0; n < N; n++) {
        if (targets[n] > (uint32_t)net->n_items)
            return sq_errorf(err, SQ_ERR_ARG, "rnn bprmax: target %u at position %d is above %d",
                             targets[n], n, net->n_items);
        pid[n] = targets[n] ? (int32_t)targets[n] : -1;
        for (int k = 0; targets[n] && k < K; k++)
            if (negs[(size_t)n * K + k] - 1 >= (uint32_t)net->n_items) /* 0 wraps */
                return sq_errorf(err, SQ_ERR_ARG, "rnn bprmax: negative %u at position %d",
                                 negs[(size_t)n * K + k], n);
    }
#pragma omp parallel for schedule(static) if ((long)N * K * G > 65536)
    for (int n = 0; n < N; n++) {
        if (pid[n] < 0)
            continue;
        const float *hn = h + (size_t)n * G;
        pos[n] = dot(hn, E + (size_t)pid[n] * G, G);
        for (int k = 0; k < K; k++)
            neg[(size_t)n * K + k] = dot(hn, E + (size_t)negs[(size_t)n * K + k] * G, G);
    }
    *loss = sq_nn_bprmax_forward(pos, neg, pid, negs, K, net->bpreg, N);
    sq_nn_bprmax_backward(dpos, dneg, 1.0f, pos, neg, pid, negs, K, net->bpreg, N);
    float *gE = tab->grad;
#pragma omp parallel if ((long)N * K * G > 65536)
    {
        uint32_t nt = 1, me = 0;
#ifdef _OPENMP
        nt = (uint32_t)omp_get_num_threads();
        me = (uint32_t)omp_get_thread_num();
#endif
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) { /* dh: rows are the threads' own */
            if (pid[n] < 0)
                continue;
            float *dr = dh + (size_t)n * G;
            axpy(dr, dpos[n], E + (size_t)pid[n] * G, G);
            for (int k = 0; k < K; k++)
                axpy(dr, dneg[(size_t)n * K + k], E + (size_t)negs[(size_t)n * K + k] * G, G);
        }
        for (int n = 0; n < N; n++) { /* dE: every thread scans, each writes its own rows */
            if (pid[n] < 0)
                continue;
            const float *hn = h + (size_t)n * G;
            if ((uint32_t)pid[n] % nt == me)
                axpy(gE + (size_t)pid[n] * G, dpos[n], hn, G);
            for (int k = 0; k < K; k++) {
                uint32_t id = negs[(size_t)n * K + k];
                if (id % nt == me)
                    axpy(gE + (size_t)id * G, dneg[(size_t)n * K + k], hn, G);
            }
        }
    }
    for (int n = 0; n < N; n++) {
        if (pid[n] < 0)
            continue;
        sq_param_touch(tab, (uint32_t)pid[n]);
        for (int k = 0; k < K; k++)
            sq_param_touch(tab, negs[(size_t)n * K + k]);
    }
    return SQ_OK;
}

/* ======================================= Model interface ===================================== */

static size_t rnn_scratch(const sq_model *m, uint32_t B, uint32_t T) {
    const sq_rnn_net *net = m->impl;
    const int train = T > 0;
    const size_t G = (size_t)net->G, KG = (size_t)(net->lstm ? 4 : 3) * G;
    const size_t N = (size_t)B * (train ? T : (uint32_t)net->maxlen);
    const size_t nb = a64(N * G * sizeof(float)), nk = a64(N * KG * sizeof(float));
    const size_t bg = a64((size_t)B * G * sizeof(float)), mask = a64(N * G);
    /* forward of one layer: output, gates, hidden-side gates, h_{t-1} (and LSTM cells) */
    size_t layer = nb + 2 * nk + nb + (net->lstm ? nb : 0);
    size_t top = a64(N) + nb + a64(N * sizeof(uint32_t)); /* pad, embeddings, score ids */
    if (train) {
        long K = 0;
        if (sq_config_int(m->cfg, "negatives", 0, 0, 4096, &K, NULL))
            K = 0;
        /* dropout copies and masks; backward: dL/dy, dL/dx and the cell's own scratch */
        layer += nb + mask + nb + nb + (net->lstm ? nk + 2 * bg : 2 * nk + bg);
        top += mask + nb; /* embedding dropout mask, dL/dh */
        if (net->loss == SQ_RNN_CE)
            top += a64(N * sizeof(int32_t)) +
                   sq_nn_ce_chunked_scratch((int)N, net->G, net->n_items + 1,
                                            &(sq_nn_ce_opts){.first_item = 1});
        else
            top += 3 * a64(N * sizeof(float)) + 2 * a64(N * (size_t)K * sizeof(float));
    }
    if (sq_item_enc_runs(&net->enc)) /* the encoder (unless cached) and dtable */
        top += (train || !net->enc.cache ? sq_item_enc_scratch(&net->enc) : 0) +
               a64((size_t)(net->n_items + 1) * G * sizeof(float));
    return top + (size_t)net->layers * layer + (64u << 10);
}

static sq_status rnn_train_batch(sq_model *m, const sq_batch *b, sq_arena *a, sq_rng *rng,
                                 double *loss, long *n_targets, sq_error *err) {
    sq_rnn_net *net = m->impl;
    const int B = (int)b->B, T = (int)b->T, G = net->G;
    if (B <= 0 || T <= 0 || (long)B * T > INT32_MAX / (4 * G + 1))
        return sq_errorf(err, SQ_ERR_ARG, "%s: batch B=%u T=%u", m->ops->name, b->B, b->T);
    if (net->loss == SQ_RNN_BPRMAX && (!b->negs || b->n_neg == 0))
        return sq_errorf(err, SQ_ERR_ARG,
                         "%s: loss=bprmax needs sampled negatives (config negatives > 0)",
                         m->ops->name);
    const int N = B * T;
    sq_param *tab = &net->ps.p[net->item_emb];
    const float *table = tab->data;
    float *dtable = tab->grad; /* id: the softmax's gradient goes straight into item_emb */
    sq_item_enc_acts ea;
    sq_status rc;
    if (sq_item_enc_runs(&net->enc)) {
        sq_item_enc_drop(&net->enc); /* the parameters are about to change */
        if ((rc = sq_item_enc_forward(&net->enc, &net->ps, a, &ea, err)))
            return rc;
        table = ea.table;
        if (!(dtable = sq_arena_calloc(a, (size_t)(net->n_items + 1) * G * sizeof *dtable)))
            return sq_errorf(err, SQ_ERR_NOMEM, "%s step: arena full", m->ops->name);
    }
    sq_rnn_acts acts;
    if ((rc = net_forward(net, a, &acts, table, b->inputs, B, T, rng, err)))
        return rc;
    float *dh = sq_arena_calloc(a, (size_t)N * G * sizeof *dh);
    if (!dh)
        return sq_errorf(err, SQ_ERR_NOMEM, "%s step: arena full", m->ops->name);
    long nt = 0;
    for (int n = 0; n < N; n++)
        nt += b->targets[n] != 0;
    *n_targets = nt;
    const float *h = acts.d[net->layers - 1];
    float l = 0.0f;
    rc = net->loss == SQ_RNN_CE
             ? loss_ce(net, a, h, b, N, table, dtable, dh, &l, err)
             : loss_bprmax(net, a, h, b->targets, b->negs, (int)b->n_neg, N, dh, &l, err);
    *loss = l;
    if (rc || nt == 0)
        return rc;
    if (!sq_item_enc_runs(&net->enc))
        return net_backward(net, a, &acts, dh, NULL, err);
    if ((rc = net_backward(net, a, &acts, dh, dtable, err)))
        return rc;
    return sq_item_enc_backward(&net->enc, &net->ps, a, &ea, dtable, err);
}

/* The last hidden state of each sequence: into out [B, G] (vectors) or its scores [B, n_items]. */
static sq_status rnn_encode(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out,
                            int vectors, sq_arena *a, sq_error *err) {
    const sq_rnn_net *net = m->impl;
    if (B == 0)
        return SQ_OK;
    uint32_t T = 1, maxlen = (uint32_t)net->maxlen; /* invariant 1: only the longest matters */
    for (uint32_t b = 0; b < B; b++) {
        uint32_t n = seqs[b].n < maxlen ? seqs[b].n : maxlen;
        T = n > T ? n : T;
    }
    uint32_t *ids = sq_model_window_ids(m, seqs, B, T, a);
    if (!ids)
        return sq_errorf(err, SQ_ERR_NOMEM, "scoring arena too small");
    const float *E = sq_nn_val(&net->ps, net->item_emb);
    sq_status rc;
    if (sq_item_enc_runs(&net->enc) && (rc = sq_item_enc_table(&net->enc, &net->ps, a, &E, err)))
        return rc;
    sq_rnn_acts acts;
    if ((rc = net_forward(net, a, &acts, E, ids, (int)B, (int)T, NULL, err)))
        return rc;
    /* the last position of each sequence: rows T-1, 2T-1, ... of h, a row stride of T*G */
    const int G = net->G;
    const float *h = acts.d[net->layers - 1] + (size_t)(T - 1) * G;
    if (vectors) {
        for (uint32_t b = 0; b < B; b++)
            memcpy(out + (size_t)b * G, h + (size_t)b * T * G, (size_t)G * sizeof *out);
        return SQ_OK;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, net->n_items, G, 1.0f, h,
                (int)T * G, E + G, G, 0.0f, out, net->n_items);
    return SQ_OK;
}

static sq_status rnn_score(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out,
                           sq_arena *a, sq_error *err) {
    return rnn_encode(m, seqs, B, out, 0, a, err);
}

static sq_status rnn_seq_vectors(const sq_model *m, const sq_seq *seqs, uint32_t B, float *out,
                                 sq_arena *a, sq_error *err) {
    return rnn_encode(m, seqs, B, out, 1, a, err);
}

/* With an encoder: its cached table, built on first use in a model still training (dropped by
 * the next train_batch: call from one thread, as after loading). */
static const float *rnn_item_vectors(const sq_model *m, uint32_t *dim) {
    sq_rnn_net *net = m->impl;
    *dim = (uint32_t)net->G;
    const float *E = !sq_item_enc_runs(&net->enc) ? sq_nn_val(&net->ps, net->item_emb)
                                                  : sq_item_enc_cache(&net->enc, &net->ps);
    return E ? E + net->G : NULL; /* row 0 is padding */
}

static const sq_features *rnn_item_features(const sq_model *m, sq_features_opts *o) {
    return sq_item_enc_features(&((const sq_rnn_net *)m->impl)->enc, o);
}

static sq_status rnn_feature_vectors(const sq_model *m, const sq_features *rows, float *out,
                                     sq_error *err) {
    const sq_rnn_net *net = m->impl;
    return sq_item_enc_feature_vectors(&net->enc, &net->ps, rows, out, err);
}

static sq_status rnn_fit(sq_model *m, const sq_dataset *d, const sq_split *s,
                         const sq_reporter *rep, sq_error *err) {
    (void)rep;
    sq_rnn_net *net = m->impl;
    return sq_item_enc_fit(&net->enc, d, s, err);
}

static sq_status rnn_prepare(sq_model *m, const sq_dataset *d, sq_error *err) {
    sq_rnn_net *net = m->impl;
    return sq_item_enc_prepare(&net->enc, d, err);
}

static sq_status rnn_save_state(const sq_model *m, sq_blob **blobs, size_t *n, sq_error *err) {
    sq_rnn_net *net = m->impl;
    *blobs = NULL;
    *n = 0;
    if (!sq_item_enc_runs(&net->enc))
        return SQ_OK;
    if (!(*blobs = sq_calloc(SQ_ITEM_ENC_BLOBS, sizeof **blobs)))
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    return sq_item_enc_blobs(&net->enc, *blobs, n, err);
}

static sq_status rnn_load_state(sq_model *m, const sq_sqm *f, sq_error *err) {
    sq_rnn_net *net = m->impl;
    return sq_item_enc_load(&net->enc, &net->ps, f, err);
}

static void rnn_destroy(sq_model *m) {
    sq_rnn_net *net = m->impl;
    if (!net)
        return;
    sq_item_enc_free(&net->enc);
    sq_params_free(&net->ps);
    sq_free(net);
    m->impl = NULL;
    m->params = NULL;
}

/* Reads and completes the config, declares, allocates and initialises the network: the table
 * xavier-normal with a zero padding row, the cells uniform(±1/√G) as PyTorch. */
static sq_status rnn_init(sq_model *m, sq_rng *rng, int lstm, sq_error *err) {
    long maxlen, hidden, layers;
    double dropout, bpreg;
    int loss;
    sq_status rc;
    if ((rc = sq_config_int(m->cfg, "maxlen", 50, 1, 4096, &maxlen, err)) ||
        (rc = sq_config_int(m->cfg, "hidden", 64, 1, 4096, &hidden, err)) ||
        (rc = sq_config_int(m->cfg, "layers", 1, 1, SQ_RNN_MAX_LAYERS, &layers, err)) ||
        (rc = sq_config_double(m->cfg, "dropout", 0.2, 0, 0.95, &dropout, err)) ||
        (rc = sq_config_choice(m->cfg, "loss", "ce|bprmax", SQ_RNN_CE, &loss, err)) ||
        (rc = sq_config_double(m->cfg, "bpreg", 1.0, 0, 1e6, &bpreg, err)))
        return rc;
    sq_item_enc_opts eo;
    if ((rc = sq_item_enc_config(m->cfg, &eo, err)))
        return rc;
    if (eo.kind != SQ_ITEM_ENC_ID && loss != SQ_RNN_CE)
        return sq_errorf(err, SQ_ERR_ARG, "config: item_encoder=%s needs loss=ce",
                         sq_config_get(m->cfg, "item_encoder"));
    if (eo.feat && loss != SQ_RNN_CE)
        return sq_errorf(err, SQ_ERR_ARG, "config: item_features=on needs loss=ce");
    if (m->info.n_items < 1)
        return sq_errorf(err, SQ_ERR_ARG, "%s: the dataset has no items", m->ops->name);
    char buf[5][32];
    snprintf(buf[0], 32, "%ld", maxlen);
    snprintf(buf[1], 32, "%ld", hidden);
    snprintf(buf[2], 32, "%ld", layers);
    snprintf(buf[3], 32, "%g", dropout);
    snprintf(buf[4], 32, "%g", bpreg);
    const char *keys[] = {"maxlen", "hidden", "layers", "dropout", "bpreg"};
    for (int i = 0; i < 5; i++)
        if ((rc = sq_config_set(m->cfg, keys[i], buf[i], err)))
            return rc;
    if ((rc = sq_config_set(m->cfg, "loss", loss == SQ_RNN_CE ? "ce" : "bprmax", err)))
        return rc;
    if ((rc = sq_config_default(m->cfg, "lr", "0.003", err))) /* the loop's key: gru4rec.h */
        return rc;
    if (loss == SQ_RNN_BPRMAX) {
        snprintf(buf[0], 32, "%d", SQ_RNN_DEFAULT_NEGATIVES);
        if ((rc = sq_config_default(m->cfg, "negatives", buf[0], err)))
            return rc;
    }
    sq_rnn_net *net = sq_calloc(1, sizeof *net);
    if (!net)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    *net = (sq_rnn_net){.lstm = lstm,
                        .n_items = (int)m->info.n_items,
                        .maxlen = (int)maxlen,
                        .G = (int)hidden,
                        .layers = (int)layers,
                        .dropout = (float)dropout,
                        .loss = (sq_rnn_loss)loss,
                        .bpreg = (float)bpreg};
    sq_params_init(&net->ps);
    const int G = net->G;
    size_t emb[2] = {(size_t)net->n_items + 1, (size_t)G};
    net->item_emb = sq_params_declare(&net->ps, "item_emb", 2, emb, loss == SQ_RNN_BPRMAX);
    int bad = net->item_emb < 0;
    for (int l = 0; l < net->layers && !bad; l++) {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "rnn%d", l);
        bad = (lstm ? sq_nn_lstm_init : sq_nn_gru_init)(&net->rnn[l], &net->ps, prefix, G, G) < 0;
    }
    if (!bad)
        bad = sq_item_enc_declare(&net->enc, &net->ps, &eo, net->item_emb, net->n_items + 1, G) < 0;
    if (bad)
        rc = sq_errorf(err, SQ_ERR_NOMEM, "%s: declaring parameters failed", m->ops->name);
    if (rc || (rc = sq_params_alloc(&net->ps, err))) {
        sq_params_free(&net->ps);
        sq_free(net);
        return rc;
    }
    float *E = sq_nn_val(&net->ps, net->item_emb);
    sq_nn_fill_xavier(E, net->n_items + 1, G, rng);
    sq_nn_fill(E, (size_t)G, 0.0f); /* padding row */
    for (int l = 0; l < net->layers; l++)
        sq_nn_rnn_reset(&net->rnn[l], &net->ps, rng);
    sq_item_enc_reset(&net->enc, &net->ps, rng); /* id: nothing, no draw */
    m->impl = net;
    m->params = &net->ps;
    return SQ_OK;
}

static sq_status gru4rec_init(sq_model *m, sq_rng *rng, sq_error *err) {
    return rnn_init(m, rng, 0, err);
}

static sq_status lstm_init(sq_model *m, sq_rng *rng, sq_error *err) {
    return rnn_init(m, rng, 1, err);
}

const sq_model_ops sq_model_gru4rec_ops = {
    .name = "gru4rec",
    .about = "GRU4Rec: GRU layers over the sequence, tied item table, full CE or BPR-max",
    .iterative = 1,
    .init = gru4rec_init,
    .fit = rnn_fit,
    .prepare = rnn_prepare,
    .train_batch = rnn_train_batch,
    .scratch = rnn_scratch,
    .score = rnn_score,
    .item_vectors = rnn_item_vectors,
    .seq_vectors = rnn_seq_vectors,
    .item_features = rnn_item_features,
    .feature_vectors = rnn_feature_vectors,
    .save_state = rnn_save_state,
    .load_state = rnn_load_state,
    .destroy = rnn_destroy,
};

const sq_model_ops sq_model_lstm_ops = {
    .name = "lstm",
    .about = "LSTM: GRU4Rec's network with LSTM cells, tied item table, full CE or BPR-max",
    .iterative = 1,
    .init = lstm_init,
    .fit = rnn_fit,
    .prepare = rnn_prepare,
    .train_batch = rnn_train_batch,
    .scratch = rnn_scratch,
    .score = rnn_score,
    .item_vectors = rnn_item_vectors,
    .seq_vectors = rnn_seq_vectors,
    .item_features = rnn_item_features,
    .feature_vectors = rnn_feature_vectors,
    .save_state = rnn_save_state,
    .load_state = rnn_load_state,
    .destroy = rnn_destroy,
};
