/* cmd_recommend.c — `seqrec recommend` (top-k for a user from their whole history, seen items
 * excluded) and `seqrec similar` (items nearest to an item). Scores are the model's (a dot
 * product for embedding models) or, with --score cosine, the cosine between the sequence's (or
 * the item's) vector and each item vector. Embedding models also show r = σ(uᵀy). */
#include "cli/cli.h"
#include "seqrec/eval.h"
#include "seqrec/model.h"
#include "seqrec/tasks.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

/* Prints a ranked list as text or JSON; `what` names the query. */
/* The events behind item i's score (reasons of --explain, NULL: none) as JSON or text. */
static void add_reasons(const sq_dataset *d, const sq_seq *q, const sq_reason *rs, uint32_t nr,
                        cJSON *item) {
    cJSON *arr = item ? cJSON_AddArrayToObject(item, "explain") : NULL;
    for (uint32_t j = 0; j < nr; j++) {
        if (rs[j].pos == UINT32_MAX)
            continue;
        const uint32_t p = rs[j].pos;
        const char *beh = q->beh ? sq_data_behaviour_name(d, q->beh[p]) : "";
        if (arr) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "item", sq_data_item_id(d, q->items[p], NULL));
            cJSON_AddStringToObject(e, "behaviour", beh);
            if (q->ts)
                cJSON_AddNumberToObject(e, "ts", (double)q->ts[p]);
            cJSON_AddNumberToObject(e, "position", p);
            cJSON_AddNumberToObject(e, "contribution", rs[j].contribution);
            cJSON_AddItemToArray(arr, e);
        } else {
            printf("       %s %-12s %-8s event %u of %u  %+.4f\n", j ? "  " : "<-",
                   sq_data_item_id(d, q->items[p], NULL), beh, p + 1, q->n, rs[j].contribution);
        }
    }
}

static void print_list(const sq_dataset *d, const char *what, const char *id, const uint32_t *ids,
                       const float *vals, const float *prob, uint32_t n, int json,
                       const char *model, const char *score, const sq_seq *q, const sq_reason *rs,
                       uint32_t nr, uint32_t per) {
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, what, id);
        cJSON_AddStringToObject(o, "model", model);
        cJSON_AddStringToObject(o, "score", score);
        cJSON *a = cJSON_AddArrayToObject(o, "items");
        for (uint32_t i = 0; i < n; i++) {
            cJSON *it = cJSON_CreateObject();
            cJSON_AddStringToObject(it, "item", sq_data_item_id(d, ids[i], NULL));
            cJSON_AddNumberToObject(it, "score", vals[i]);
            if (prob)
                cJSON_AddNumberToObject(it, "probability", prob[i]);
            size_t tl = 0;
            const char *text = sq_data_item_text(d, ids[i], &tl);
            if (text && tl)
                cJSON_AddStringToObject(it, "title", text);
            if (rs)
                add_reasons(d, q, rs + (size_t)i * per, nr, it);
            cJSON_AddItemToArray(a, it);
        }
        char *s = cJSON_PrintUnformatted(o);
        puts(s);
        cJSON_free(s);
        cJSON_Delete(o);
        return;
    }
    printf("%s %s (model %s, %s scores%s)\n", what, id, model, score, prob ? ", p = σ(uᵀy)" : "");
    for (uint32_t i = 0; i < n; i++) {
        size_t tl = 0;
        const char *text = sq_data_item_text(d, ids[i], &tl);
        printf("%3u. %-16s %10.4f", i + 1, sq_data_item_id(d, ids[i], NULL), vals[i]);
        if (prob)
            printf("  p %.4f", prob[i]);
        printf("  %.*s\n", (int)(tl > 60 ? 60 : tl), text ? text : "");
        if (rs)
            add_reasons(d, q, rs + (size_t)i * per, nr, NULL);
    }
}

/* The sequence's vector u [dim] (item_itself: the item's own vector, for `similar` by cosine). */
static sq_status query_vector(const sq_model *m, const sq_seq *q, int item_itself, float *u,
                              sq_arena *a, sq_error *err) {
    uint32_t dim;
    const float *Y = m->ops->item_vectors(m, &dim);
    if (item_itself) {
        memcpy(u, Y + (size_t)q->items[0] * dim, dim * sizeof *u);
        return SQ_OK;
    }
    return m->ops->seq_vectors(m, q, 1, u, a, err);
}

/* scores[i] = cos(u, y_i); probs (if not NULL) of the top ids: σ(u · y). */
static void cosine_scores(const sq_model *m, const float *u, float *scores, uint32_t ni) {
    uint32_t dim;
    const float *Y = m->ops->item_vectors(m, &dim);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)ni, (int)dim, 1.0f, Y, (int)dim, u, 1, 0.0f,
                scores, 1);
    double un = cblas_snrm2((int)dim, u, 1);
    for (uint32_t i = 0; i < ni; i++) {
        double yn = cblas_snrm2((int)dim, Y + (size_t)i * dim, 1);
        scores[i] = (float)(scores[i] / (un * yn + 1e-12));
    }
}

/* Objective scores of every item for a multi-task model: p(click), p(click) · p(buy | click),
 * or that times the item's first numeric attribute (0 where missing). */
static sq_status objective_scores(const sq_model *m, const sq_dataset *d, const sq_seq *q, int obj,
                                  float *scores, sq_error *err) {
    const uint32_t ni = sq_data_info_of(d)->n_items, K = 4096;
    const float *num = sq_data_item_num(d);
    const uint32_t nnum = sq_data_info_of(d)->n_item_num;
    if (obj == 3 && !nnum)
        return sq_errorf(err, SQ_ERR_ARG,
                         "--objective revenue: the items carry no numeric "
                         "attribute (a price column)");
    unsigned tasks = sq_model_tasks(m, NULL);
    if (!(tasks >> (obj == 1 ? SQ_TASK_CLICK : SQ_TASK_BUY) & 1u))
        return sq_errorf(err, SQ_ERR_ARG,
                         "--objective %s: the model was not trained with the %s "
                         "task (--tasks)",
                         obj == 1   ? "click"
                         : obj == 2 ? "buy"
                                    : "revenue",
                         obj == 1 ? "click" : "buy");
    sq_task_pred *p = sq_mallocn(K, sizeof *p);
    uint32_t *ids = sq_mallocn(K, sizeof *ids);
    sq_arena *a = sq_arena_create(sq_model_predict_items_scratch(m, K));
    sq_status rc = SQ_OK;
    if (!p || !ids || !a)
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    for (uint32_t start = 0; start < ni && !rc; start += K) {
        uint32_t n = ni - start < K ? ni - start : K;
        for (uint32_t i = 0; i < n; i++)
            ids[i] = start + i;
        sq_arena_reset(a);
        if ((rc = sq_model_predict_items(m, q, ids, n, p, a, err)))
            break;
        for (uint32_t i = 0; i < n; i++) {
            float v = obj == 1 ? p[i].ctr : p[i].ctcvr;
            if (obj == 3) {
                float price = num[(size_t)(start + i) * nnum];
                v *= isfinite(price) && price > 0 ? price : 0.0f;
            }
            scores[start + i] = v;
        }
    }
    sq_free(p);
    sq_free(ids);
    sq_arena_free(a);
    return rc;
}

/* A user who is not in the dataset: the events `list` (comma-separated external item ids,
 * oldest first) and attributes "field=value" into items / attrs (n_user_attrs values,
 * UINT32_MAX where not given). Errors name the unknown item, field or value. */
static sq_status new_user(const sq_dataset *d, const char *list, const char *const *av, int nav,
                          uint32_t *items, uint32_t cap, uint32_t *n, uint32_t *attrs,
                          sq_error *err) {
    *n = 0;
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        uint32_t id = sq_data_find_item(d, p, len);
        if (id == UINT32_MAX)
            return sq_errorf(err, SQ_ERR_NOTFOUND, "--items: item '%.*s' is not in the dataset",
                             (int)len, p);
        if (*n == cap)
            return sq_errorf(err, SQ_ERR_LIMIT, "--items: more than %u items", cap);
        items[(*n)++] = id;
        p = e ? e + 1 : p + len;
    }
    const uint32_t na = sq_data_info_of(d)->n_user_attrs;
    for (uint32_t k = 0; k < na; k++)
        attrs[k] = UINT32_MAX;
    for (int a = 0; a < nav; a++) {
        const char *eq = strchr(av[a], '=');
        if (!eq)
            return sq_errorf(err, SQ_ERR_ARG, "--attr '%s': expected FIELD=VALUE", av[a]);
        uint32_t k, v;
        sq_error e = {0};
        if (sq_data_user_attr_find(d, av[a], (size_t)(eq - av[a]), eq + 1, strlen(eq + 1), &k, &v,
                                   &e))
            return sq_errorf(err, e.code, "--attr: %s", e.msg);
        attrs[k] = v;
    }
    return SQ_OK;
}

static int run(int argc, char **argv, int similar) {
    const char *pos[2], *who = NULL, *score_kind = "dot", *objective = "next_item";
    const char *new_items = NULL, *attr_args[64];
    int npos = 0, json = 0, keep = 0, explain = 0, nattr = 0;
    uint64_t k = 10;
    const sq_opt rec_opts[] = {
        {"user", OPT_STR, &who, "ID",
         "the user (external id as in the input log); absent or unknown with --items/--attr: "
         "a new user",
         0, 0},
        {"items", OPT_STR, &new_items, "LIST",
         "a new user's first items, oldest first (comma-separated external ids)", 0, 0},
        {"attr", OPT_MULTI, attr_args, "FIELD=VALUE",
         "a new user's attribute (repeatable; e.g. gender=F), for models that use them (hybrid)",
         &nattr, 64},
        {"k", OPT_U64, &k, "K", "how many (default 10)", 0, 0},
        {"keep-history", OPT_FLAG, &keep, NULL, "also recommend items the user already had", 0, 0},
        {"score", OPT_STR, &score_kind, "S", "dot (the model's scores, default) or cosine", 0, 0},
        {"objective", OPT_STR, &objective, "O",
         "multi-task models: rank by next_item (default), click = p(click), buy = p(click) x "
         "p(buy | click), revenue = buy x the item's price (its first numeric attribute)",
         0, 0},
        {"explain", OPT_FLAG, &explain, NULL,
         "for each item, the history events that raised its score most (occlusion: the score "
         "lost without the event; the model's next-item scores)",
         0, 0},
        {"json", OPT_FLAG, &json, NULL, "print one JSON object", 0, 0},
    };
    const sq_opt sim_opts[] = {
        {"item", OPT_STR, &who, "ID", "the item (external id as in the input log)", 0, 0},
        {"k", OPT_U64, &k, "K", "how many (default 10)", 0, 0},
        {"score", OPT_STR, &score_kind, "S",
         "dot (the model's scores after the item, default) or cosine (between item vectors)", 0, 0},
        {"json", OPT_FLAG, &json, NULL, "print one JSON object", 0, 0},
    };
    sq_cli_spec spec = {
        similar
            ? "seqrec similar model.sqm data.sqd --item ID [-k 10] [--score dot|cosine] [--json]"
            : "seqrec recommend model.sqm data.sqd --user ID [-k 10] [--score dot|cosine] "
              "[--explain] [--json]",
        similar ? "Items the model finds nearest to an item (as the next item after it)."
                : "Top-k items for a user from their whole history; items they already had are "
                  "excluded.",
        similar ? sim_opts : rec_opts,
        similar ? 4 : 9,
        pos,
        2,
        2,
        &npos};
    int rc = sq_cli_parse(&spec, argc, argv);
    if (rc)
        return rc == 1 ? 0 : 2;
    const char *cmd = similar ? "similar" : "recommend";
    const int is_new = !similar && (new_items || nattr);
    if ((!who && !is_new) || k < 1 || k > 10000) {
        fprintf(stderr, "seqrec %s: %s ID is required and -k must be 1..10000\n", cmd,
                similar ? "--item" : "--user");
        return 2;
    }
    static const char *const objs[] = {"next_item", "click", "buy", "revenue"};
    int obj = -1;
    for (int i = 0; i < 4; i++)
        obj = !strcmp(objective, objs[i]) ? i : obj;
    if (obj < 0) {
        fprintf(stderr, "seqrec %s: --objective '%s': expected next_item, click, buy or revenue\n",
                "recommend", objective);
        return 2;
    }
    const int cosine = !strcmp(score_kind, "cosine");
    if (!cosine && strcmp(score_kind, "dot")) {
        fprintf(stderr, "seqrec %s: --score '%s': expected dot or cosine\n", cmd, score_kind);
        return 2;
    }
    sq_error err = {0};
    sq_dataset *d = NULL;
    sq_model *m = NULL;
    float *scores = NULL, *vals = NULL, *u = NULL, *prob = NULL;
    uint32_t *ids = NULL, *new_seq = NULL, *new_attrs = NULL;
    sq_arena *a = NULL;
    int ret = 1;
    if (sq_data_open(&d, pos[1], &err) || sq_model_load(&m, pos[0], d, &err))
        goto done;
    uint32_t ni = sq_data_info_of(d)->n_items, id;
    sq_seq q;
    uint32_t one;
    if (similar) {
        id = sq_data_find_item(d, who, strlen(who));
        if (id == UINT32_MAX) {
            sq_errorf(&err, SQ_ERR_NOTFOUND, "item '%s' is not in %s", who, pos[1]);
            goto done;
        }
        one = id;
        q = (sq_seq){.items = &one, .n = 1, .user = UINT32_MAX};
    } else if (is_new && (!who || sq_data_find_user(d, who, strlen(who)) == UINT32_MAX)) {
        /* a new user: the path cold_users evaluates (no id; attributes and first events) */
        if (!(new_seq = sq_mallocn(4096, sizeof *new_seq)) ||
            !(new_attrs = sq_mallocn(sq_data_info_of(d)->n_user_attrs + 1, sizeof *new_attrs))) {
            sq_errorf(&err, SQ_ERR_NOMEM, "out of memory");
            goto done;
        }
        uint32_t nn = 0;
        if (new_user(d, new_items, attr_args, nattr, new_seq, 4096, &nn, new_attrs, &err))
            goto done;
        q = (sq_seq){.items = new_seq, .n = nn, .user = UINT32_MAX, .attrs = new_attrs};
        if (!who)
            who = "(new user)";
    } else {
        id = sq_data_find_user(d, who, strlen(who));
        if (id == UINT32_MAX) {
            sq_errorf(&err, SQ_ERR_NOTFOUND, "user '%s' is not in %s", who, pos[1]);
            goto done;
        }
        const uint64_t *off = sq_data_offsets(d);
        q = sq_model_user_seq(d, id, (uint32_t)(off[id + 1] - off[id]));
    }
    const int vectors = m->ops->item_vectors && m->ops->seq_vectors;
    if (cosine && !vectors) {
        sq_errorf(&err, SQ_ERR_ARG,
                  "model '%s' has no item vectors: --score cosine needs an "
                  "embedding model (e.g. sasrec)",
                  m->ops->name);
        goto done;
    }
    uint32_t dim = 0;
    if (vectors)
        m->ops->item_vectors(m, &dim);
    scores = sq_mallocn(ni, sizeof *scores);
    ids = sq_mallocn(k, sizeof *ids);
    vals = sq_mallocn(k, sizeof *vals);
    prob = sq_mallocn(k, sizeof *prob);
    u = sq_mallocn(dim ? dim : 1, sizeof *u);
    a = sq_arena_create(m->ops->scratch ? m->ops->scratch(m, 1, 0) : 64u << 20);
    if (!scores || !ids || !vals || !prob || !u || !a) {
        sq_errorf(&err, SQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (vectors && query_vector(m, &q, similar && cosine, u, a, &err))
        goto done;
    sq_arena_reset(a);
    char score_name[160];
    snprintf(score_name, sizeof score_name, "%s", cosine ? "cosine" : "dot");
    if (obj > 0) {
        if (objective_scores(m, d, &q, obj, scores, &err))
            goto done;
        snprintf(score_name, sizeof score_name, "%s%s%s",
                 obj == 1 ? "p(click)" : "p(click) x p(buy | click)", obj == 3 ? " x " : "",
                 obj == 3 ? sq_data_item_num_name(d, 0) : "");
    } else if (cosine) {
        cosine_scores(m, u, scores, ni);
    } else if (sq_model_score(m, &q, 1, scores, a, &err)) {
        goto done;
    }
    uint32_t n = sq_topk(scores, ni, (uint32_t)k, q.items, similar || !keep ? q.n : 0, ids, vals);
    if (vectors) {
        const float *Y = m->ops->item_vectors(m, &dim);
        for (uint32_t i = 0; i < n; i++)
            prob[i] =
                1.0f / (1.0f + expf(-cblas_sdot((int)dim, u, 1, Y + (size_t)ids[i] * dim, 1)));
    }
    enum { PER = 3 };
    sq_reason *rs = NULL;
    uint32_t nr = 0;
    if (explain && !similar) {
        if (!(rs = sq_mallocn((size_t)n * PER + 1, sizeof *rs))) {
            sq_errorf(&err, SQ_ERR_NOMEM, "out of memory");
            goto done;
        }
        if (sq_model_explain(m, &q, ids, n, PER, 0, rs, &nr, &err)) {
            sq_free(rs);
            goto done;
        }
    }
    print_list(d, similar ? "item" : "user", who, ids, vals, vectors && obj <= 0 ? prob : NULL, n,
               json, m->ops->name, score_name, &q, rs, nr, PER);
    sq_free(rs);
    ret = 0;
done:
    if (ret)
        sq_cli_fail(cmd, &err);
    sq_free(scores);
    sq_free(ids);
    sq_free(vals);
    sq_free(prob);
    sq_free(u);
    sq_free(new_seq);
    sq_free(new_attrs);
    sq_arena_free(a);
    sq_model_free(m);
    sq_data_close(d);
    return ret;
}

int cmd_recommend(int argc, char **argv) {
    return run(argc, argv, 0);
}

int cmd_similar(int argc, char **argv) {
    return run(argc, argv, 1);
}
