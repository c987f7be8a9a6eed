/* cmd_ingest.c — `seqrec ingest INPUT... -o data.sqd`: read logs, clean, write the dataset,
 * print the cleaning report (text, or JSON with --json). */
#include "cli/cli.h"
#include "seqrec/data.h"

#include <cjson/cJSON.h>
#include <string.h>

static void print_report(const sq_ingest_report *r, const char *out) {
    char a[32], b[32], c[32];
    printf("read %s rows from %llu file(s)", sq_fmt_count(a, sizeof a, r->rows_read),
           (unsigned long long)r->files);
    if (r->blank_lines || r->header_lines)
        printf(" (skipped %llu header and %llu blank lines)", (unsigned long long)r->header_lines,
               (unsigned long long)r->blank_lines);
    printf("\n");
    uint64_t rej = 0;
    for (int i = 0; i < SQ_REJ_COUNT; i++)
        rej += r->rejected[i];
    printf("rejected %s rows", sq_fmt_count(a, sizeof a, rej));
    const char *sep = ": ";
    for (int i = 0; i < SQ_REJ_COUNT; i++)
        if (r->rejected[i]) {
            printf("%s%s %s", sep, sq_reject_name((sq_reject_reason)i),
                   sq_fmt_count(b, sizeof b, r->rejected[i]));
            sep = ", ";
        }
    printf("\n");
    if (r->kcore_rounds)
        printf("k-core removed %s events, %s users, %s items in %u round(s)\n",
               sq_fmt_count(a, sizeof a, r->kcore_events),
               sq_fmt_count(b, sizeof b, r->kcore_users), sq_fmt_count(c, sizeof c, r->kcore_items),
               r->kcore_rounds);
    if (r->side_rows)
        printf("side information: %s rows (%llu unusable, %llu about ids without events)\n",
               sq_fmt_count(a, sizeof a, r->side_rows), (unsigned long long)r->side_rejected,
               (unsigned long long)r->side_unmatched);
    printf("kept %s events -> %s\n", sq_fmt_count(a, sizeof a, r->kept), out);
}

static void print_report_json(const sq_ingest_report *r, const char *out) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "output", out);
    cJSON_AddNumberToObject(o, "files", (double)r->files);
    cJSON_AddNumberToObject(o, "rows_read", (double)r->rows_read);
    cJSON_AddNumberToObject(o, "header_lines", (double)r->header_lines);
    cJSON_AddNumberToObject(o, "blank_lines", (double)r->blank_lines);
    cJSON *rej = cJSON_AddObjectToObject(o, "rejected");
    for (int i = 0; i < SQ_REJ_COUNT; i++)
        cJSON_AddNumberToObject(rej, sq_reject_name((sq_reject_reason)i), (double)r->rejected[i]);
    cJSON_AddNumberToObject(o, "kcore_events", (double)r->kcore_events);
    cJSON_AddNumberToObject(o, "kcore_users", (double)r->kcore_users);
    cJSON_AddNumberToObject(o, "kcore_items", (double)r->kcore_items);
    cJSON_AddNumberToObject(o, "kcore_rounds", r->kcore_rounds);
    cJSON_AddNumberToObject(o, "side_rows", (double)r->side_rows);
    cJSON_AddNumberToObject(o, "side_rejected", (double)r->side_rejected);
    cJSON_AddNumberToObject(o, "side_unmatched", (double)r->side_unmatched);
    cJSON_AddNumberToObject(o, "kept", (double)r->kept);
    char *s = cJSON_PrintUnformatted(o);
    if (s)
        puts(s);
    cJSON_free(s);
    cJSON_Delete(o);
}

int cmd_ingest(int argc, char **argv) {
    const char *inputs[256];
    int n_inputs = 0, quiet = 0, json = 0, keep_dup = 0, no_side = 0, strict = 0;
    const char *out = NULL, *format = "auto", *columns = NULL, *behaviours = NULL,
               *default_beh = NULL, *rejects = NULL, *delim = NULL;
    uint64_t min_user = 0, min_item = 0, max_line = 0;
    int64_t gap = 0, tmin = 0, tmax = 0;
    const sq_opt opts[] = {
        {"o|output", OPT_STR, &out, "FILE", "the dataset to write (.sqd)", 0, 0},
        {"format", OPT_STR, &format, "F",
         "auto|movielens|csv|tsv|jsonl|recbole|plain (default auto: by name and content)", 0, 0},
        {"columns", OPT_STR, &columns, "SPEC",
         "column roles, positional 'user,item,-,ts' or by header 'user=uid,item=sku' "
         "(docs/formats.md)",
         0, 0},
        {"delimiter", OPT_STR, &delim, "C", "CSV delimiter (default: detect , ; | tab)", 0, 0},
        {"behaviours", OPT_STR, &behaviours, "LIST",
         "declared behaviour names 'view,cart,buy'; rows with others are rejected", 0, 0},
        {"default-behaviour", OPT_STR, &default_beh, "NAME",
         "behaviour of rows without one (default 'rate' with a value column, else 'interact')", 0,
         0},
        {"min-user-events", OPT_U64, &min_user, "K", "k-core: drop users with fewer events", 0, 0},
        {"min-item-events", OPT_U64, &min_item, "K", "k-core: drop items with fewer events", 0, 0},
        {"session-gap", OPT_I64, &gap, "SECONDS", "start a new session after this inactivity", 0,
         0},
        {"time-min", OPT_I64, &tmin, "EPOCH", "reject events before (default 1970-01-01)", 0, 0},
        {"time-max", OPT_I64, &tmax, "EPOCH", "reject events after (default 2100-01-01)", 0, 0},
        {"keep-duplicates", OPT_FLAG, &keep_dup, NULL, "keep exact duplicate rows", 0, 0},
        {"no-side-files", OPT_FLAG, &no_side, NULL,
         "do not read movies.dat/users.dat/.item/.user found beside the inputs", 0, 0},
        {"max-line", OPT_U64, &max_line, "BYTES", "longest accepted line (default 1 MiB)", 0, 0},
        {"rejects", OPT_STR, &rejects, "FILE",
         "write every rejected row with file, line and reason (TSV)", 0, 0},
        {"strict", OPT_FLAG, &strict, NULL,
         "stop at the first bad row (file:line: field: reason); write nothing", 0, 0},
        {"json", OPT_FLAG, &json, NULL, "print the report as one JSON object", 0, 0},
        {"q|quiet", OPT_FLAG, &quiet, NULL, "no progress output", 0, 0},
    };
    sq_cli_spec spec = {
        "seqrec ingest INPUT... -o data.sqd [options]",
        "Reads event logs (MovieLens .dat, CSV/TSV with a header, JSON lines, RecBole atomic "
        "files,\nplain 'user item' lines; any of them gzip-compressed), cleans them with a "
        "report that\naccounts for every row, and writes a .sqd dataset atomically.",
        opts,
        (int)(sizeof opts / sizeof *opts),
        inputs,
        256,
        1,
        &n_inputs};
    int rc = sq_cli_parse(&spec, argc, argv);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (!out) {
        fprintf(stderr, "seqrec ingest: -o FILE is required\n");
        return 2;
    }
    sq_error err = {0};
    sq_cli_reporter cr;
    sq_ingest_opts io = {0};
    if (sq_format_parse(format, &io.format) != SQ_OK) {
        fprintf(stderr, "seqrec ingest: --format: unknown format '%s'\n", format);
        return 2;
    }
    if (delim) {
        if (!strcmp(delim, "tab") || !strcmp(delim, "\\t"))
            io.delimiter = '\t';
        else if (strlen(delim) == 1)
            io.delimiter = delim[0];
        else {
            fprintf(stderr, "seqrec ingest: --delimiter: one character or 'tab'\n");
            return 2;
        }
    }
    io.columns = columns;
    io.behaviours = behaviours;
    io.default_behaviour = default_beh;
    io.no_side_files = no_side;
    io.min_user_events = (uint32_t)min_user;
    io.min_item_events = (uint32_t)min_item;
    io.session_gap = gap;
    io.time_min = tmin;
    io.time_max = tmax;
    io.keep_duplicates = keep_dup;
    io.rejects_path = rejects;
    io.strict = strict;
    io.max_line = (size_t)max_line;
    io.reporter = sq_cli_reporter_init(&cr, quiet || json);
    sq_ingest *g = NULL;
    if (sq_ingest_create(&g, &io, &err))
        return sq_cli_fail("ingest", &err);
    for (int i = 0; i < n_inputs; i++)
        if (sq_ingest_file(g, inputs[i], &err)) {
            sq_progress_bar_done(&cr.bar);
            sq_ingest_free(g);
            return sq_cli_fail("ingest", &err);
        }
    if (sq_ingest_write(g, out, &err)) {
        sq_progress_bar_done(&cr.bar);
        sq_ingest_free(g);
        return sq_cli_fail("ingest", &err);
    }
    sq_progress_bar_done(&cr.bar);
    if (json)
        print_report_json(sq_ingest_get_report(g), out);
    else if (!quiet)
        print_report(sq_ingest_get_report(g), out);
    sq_ingest_free(g);
    return 0;
}
