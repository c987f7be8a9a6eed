/* cmd_recommend.c — `seqrec recommend` (top-k for a user from their whole history, seen items
 * excluded) and `seqrec similar` (items nearest to an item). */
#include "cli/cli.h"
#include "seqrec/eval.h"
#include "seqrec/model.h"

#include <cjson/cJSON.h>
#include <string.h>

/* Prints a ranked list as text or JSON; `what` names the query. */
static void print_list(const sq_dataset *d, const char *what, const char *id, const uint32_t *ids,
                       const float *vals, uint32_t n, int json, const char *model) {
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, what, id);
        cJSON_AddStringToObject(o, "model", model);
        cJSON *a = cJSON_AddArrayToObject(o, "items");
        for (uint32_t i = 0; i < n; i++) {
            cJSON *it = cJSON_CreateObject();
            cJSON_AddStringToObject(it, "item", sq_data_item_id(d, ids[i], NULL));
            cJSON_AddNumberToObject(it, "score", vals[i]);
            size_t tl = 0;
            const char *text = sq_data_item_text(d, ids[i], &tl);
            if (text && tl)
                cJSON_AddStringToObject(it, "title", text);
            cJSON_AddItemToArray(a, it);
        }
        char *s = cJSON_PrintUnformatted(o);
        puts(s);
        cJSON_free(s);
        cJSON_Delete(o);
        return;
    }
    printf("%s %s (model %s)\n", what, id, model);
    for (uint32_t i = 0; i < n; i++) {
        size_t tl = 0;
        const char *text = sq_data_item_text(d, ids[i], &tl);
        printf("%3u. %-16s %10.4f  %.*s\n", i + 1, sq_data_item_id(d, ids[i], NULL), vals[i],
               (int)(tl > 60 ? 60 : tl), text ? text : "");
    }
}

static int run(int argc, char **argv, int similar) {
    const char *pos[2], *who = NULL;
    int npos = 0, json = 0, keep = 0;
    uint64_t k = 10;
    const sq_opt rec_opts[] = {
        {"user", OPT_STR, &who, "ID", "the user (external id as in the input log)", 0, 0},
        {"k", OPT_U64, &k, "K", "how many (default 10)", 0, 0},
        {"keep-history", OPT_FLAG, &keep, NULL, "also recommend items the user already had", 0, 0},
        {"json", OPT_FLAG, &json, NULL, "print one JSON object", 0, 0},
    };
    const sq_opt sim_opts[] = {
        {"item", OPT_STR, &who, "ID", "the item (external id as in the input log)", 0, 0},
        {"k", OPT_U64, &k, "K", "how many (default 10)", 0, 0},
        {"json", OPT_FLAG, &json, NULL, "print one JSON object", 0, 0},
    };
    sq_cli_spec spec = {
        similar ? "seqrec similar model.sqm data.sqd --item ID [-k 10] [--json]"
                : "seqrec recommend model.sqm data.sqd --user ID [-k 10] [--json]",
        similar ? "Items the model finds nearest to an item (as the next item after it)."
                : "Top-k items for a user from their whole history; items they already had are "
                  "excluded.",
        similar ? sim_opts : rec_opts,
        similar ? 3 : 4,
        pos,
        2,
        2,
        &npos};
    int rc = sq_cli_parse(&spec, argc, argv);
    if (rc)
        return rc == 1 ? 0 : 2;
    const char *cmd = similar ? "similar" : "recommend";
    if (!who || k < 1 || k > 10000) {
        fprintf(stderr, "seqrec %s: %s ID is required and -k must be 1..10000\n", cmd,
                similar ? "--item" : "--user");
        return 2;
    }
    sq_error err = {0};
    sq_dataset *d = NULL;
    sq_model *m = NULL;
    float *scores = NULL, *vals = NULL;
    uint32_t *ids = NULL;
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
        q = (sq_seq){&one, NULL, NULL, NULL, 1, UINT32_MAX};
    } else {
        id = sq_data_find_user(d, who, strlen(who));
        if (id == UINT32_MAX) {
            sq_errorf(&err, SQ_ERR_NOTFOUND, "user '%s' is not in %s", who, pos[1]);
            goto done;
        }
        const uint64_t *off = sq_data_offsets(d);
        q = sq_model_user_seq(d, id, (uint32_t)(off[id + 1] - off[id]));
    }
    scores = sq_mallocn(ni, sizeof *scores);
    ids = sq_mallocn(k, sizeof *ids);
    vals = sq_mallocn(k, sizeof *vals);
    a = sq_arena_create(16u << 20);
    if (!scores || !ids || !vals || !a) {
        sq_errorf(&err, SQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (sq_model_score(m, &q, 1, scores, a, &err))
        goto done;
    uint32_t n = sq_topk(scores, ni, (uint32_t)k, q.items, similar || !keep ? q.n : 0, ids, vals);
    print_list(d, similar ? "item" : "user", who, ids, vals, n, json, m->ops->name);
    ret = 0;
done:
    if (ret)
        sq_cli_fail(cmd, &err);
    sq_free(scores);
    sq_free(ids);
    sq_free(vals);
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
