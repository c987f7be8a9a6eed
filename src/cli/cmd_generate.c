/* cmd_generate.c — `seqrec generate`: a synthetic log with planted structure. */
#include "cli/cli.h"
#include "seqrec/data.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

int cmd_generate(int argc, char **argv) {
    const char *pos[1];
    int npos = 0, quiet = 0, gz = 0, json = 0;
    uint64_t users = 1000, items = 500, events = 20000, clusters = 0, scenes = 0, seed = 1;
    const char *out = NULL, *format = "auto", *behaviours = NULL, *funnel = "ordered",
               *oracle = NULL;
    const sq_opt opts[] = {
        {"o|output", OPT_STR, &out, "FILE", "the log to write; the format follows the name", 0, 0},
        {"users", OPT_U64, &users, "N", "users (default 1000)", 0, 0},
        {"items", OPT_U64, &items, "M", "items (default 500)", 0, 0},
        {"events", OPT_U64, &events, "E", "events in all (default 20000)", 0, 0},
        {"clusters", OPT_U64, &clusters, "C", "item clusters (default about sqrt(items))", 0, 0},
        {"behaviours", OPT_STR, &behaviours, "LIST", "funnel stages (default view,cart,buy)", 0, 0},
        {"scenes", OPT_U64, &scenes, "S", "scenes (default 3: home, search, detail)", 0, 0},
        {"funnel", OPT_STR, &funnel, "F",
         "ordered (default: a buy only right after a cart) or realistic", 0, 0},
        {"oracle", OPT_STR, &oracle, "FILE",
         "realistic funnel: each event's behaviour probabilities to FILE", 0, 0},
        {"seed", OPT_U64, &seed, "S", "random seed; the same seed gives the same file", 0, 0},
        {"format", OPT_STR, &format, "F",
         "csv|tsv|jsonl|movielens|recbole|plain (default: from the file name)", 0, 0},
        {"gzip", OPT_FLAG, &gz, NULL, "gzip the output (implied by a .gz name)", 0, 0},
        {"q|quiet", OPT_FLAG, &quiet, NULL, "no progress output", 0, 0},
        {"json", OPT_FLAG, &json, NULL,
         "print what was written as one JSON object (implies --quiet)", 0, 0},
    };
    sq_cli_spec spec = {
        "seqrec generate --users N --items M --events E [options] -o log.csv",
        "Writes a synthetic event log with planted, known structure (item clusters with "
        "Markov\ntransitions, a view -> cart -> buy funnel with scene-dependent rates, context "
        "effects;\nsee docs/generator.md). Deterministic by seed. --funnel realistic: purchases "
        "the previous\nevent does not decide (direct and delayed buys, abandoned carts, a per-user "
        "propensity);\n--oracle FILE with it: scripts/gen_ceiling.py FILE gives the best "
        "achievable task scores.",
        opts,
        (int)(sizeof opts / sizeof *opts),
        pos,
        0,
        0,
        &npos};
    int rc = sq_cli_parse(&spec, argc, argv);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (!out) {
        fprintf(stderr, "seqrec generate: -o FILE is required\n");
        return 2;
    }
    if (users > UINT32_MAX || items > UINT32_MAX || clusters > UINT32_MAX || scenes > UINT32_MAX) {
        fprintf(stderr, "seqrec generate: --users, --items, --clusters, --scenes must be < 2^32\n");
        return 2;
    }
    sq_gen_opts g = {0};
    if (sq_format_parse(format, &g.format) != SQ_OK) {
        fprintf(stderr, "seqrec generate: --format: unknown format '%s'\n", format);
        return 2;
    }
    if (!strcmp(funnel, "realistic"))
        g.funnel = SQ_GEN_FUNNEL_REALISTIC;
    else if (strcmp(funnel, "ordered")) {
        fprintf(stderr, "seqrec generate: --funnel: '%s' is not ordered or realistic\n", funnel);
        return 2;
    }
    g.oracle = oracle;
    sq_cli_reporter cr;
    g.users = (uint32_t)users;
    g.items = (uint32_t)items;
    g.events = events;
    g.clusters = (uint32_t)clusters;
    g.behaviours = behaviours;
    g.scenes = (uint32_t)scenes;
    g.seed = seed;
    g.gzip = gz;
    g.reporter = sq_cli_reporter_init(&cr, quiet || json);
    sq_error err = {0};
    rc = sq_generate(&g, out, &err) ? sq_cli_fail("generate", &err) : 0;
    sq_progress_bar_done(&cr.bar);
    if (!rc && json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "output", out);
        cJSON_AddNumberToObject(o, "users", (double)users);
        cJSON_AddNumberToObject(o, "items", (double)items);
        cJSON_AddNumberToObject(o, "events", (double)events);
        cJSON_AddNumberToObject(o, "seed", (double)seed);
        cJSON_AddStringToObject(o, "funnel", funnel);
        if (oracle)
            cJSON_AddStringToObject(o, "oracle", oracle);
        char *text = o ? cJSON_PrintUnformatted(o) : NULL;
        if (!text) {
            fprintf(stderr, "seqrec generate: out of memory\n");
            rc = 1;
        } else
            printf("%s\n", text);
        free(text);
        cJSON_Delete(o);
    } else if (!rc && !quiet) {
        char a[32];
        fprintf(stderr, "wrote %s events -> %s\n", sq_fmt_count(a, sizeof a, events), out);
    }
    return rc;
}
