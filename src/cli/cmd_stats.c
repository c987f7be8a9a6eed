/* cmd_stats.c — `seqrec stats data.sqd [--json]`: what is in a dataset. */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"
#include "seqrec/data.h"

#include <time.h>

static const char *iso_date(char *buf, size_t cap, int64_t t) {
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm))
        snprintf(buf, cap, "%lld", (long long)t);
    return buf;
}

static void print_text(const sq_dataset *d, const sq_data_summary *s, const char *path) {
    const sq_data_info *in = sq_data_info_of(d);
    char a[32], b[32], c[32], t0[64], t1[64];
    printf("%s\n", path);
    printf("  events     %s\n  users      %s\n  items      %s\n",
           sq_fmt_count(a, sizeof a, in->n_events), sq_fmt_count(b, sizeof b, in->n_users),
           sq_fmt_count(c, sizeof c, in->n_items));
    printf("  density    %.6f\n", s->density);
    if (in->flags & SQ_DATA_REAL_TIME)
        printf("  time       %s .. %s\n", iso_date(t0, sizeof t0, in->time_min),
               iso_date(t1, sizeof t1, in->time_max));
    else
        printf("  time       none (file order)\n");
    printf("  behaviours");
    for (uint32_t i = 0; i < in->n_behaviours; i++)
        printf(" %s %s%s", sq_data_behaviour_name(d, i),
               sq_fmt_count(a, sizeof a, s->behaviour_counts[i]),
               i + 1 < in->n_behaviours ? "," : "");
    printf("\n");
    if (in->n_scenes > 1) {
        printf("  scenes    ");
        for (uint32_t i = 0; i < in->n_scenes; i++)
            if (s->scene_counts[i])
                printf(" %s %s", *sq_data_scene_name(d, i) ? sq_data_scene_name(d, i) : "(none)",
                       sq_fmt_count(a, sizeof a, s->scene_counts[i]));
        printf("\n");
    }
    printf("  sequences  min %u, p25 %u, median %u, p75 %u, p90 %u, p99 %u, max %u, mean %.1f\n",
           s->len_min, s->len_p25, s->len_p50, s->len_p75, s->len_p90, s->len_p99, s->len_max,
           s->len_mean);
    if (in->n_ctx) {
        printf("  context   ");
        for (uint32_t f = 0; f < in->n_ctx; f++)
            printf(" %s (%u values)", sq_data_ctx_name(d, f), sq_data_ctx_size(d, f));
        printf("\n");
    }
    if (in->n_tags || s->items_with_text || in->n_item_num)
        printf("  items      %llu with tags (%u distinct), %llu with text, %u numeric attributes\n",
               (unsigned long long)s->items_with_tags, in->n_tags,
               (unsigned long long)s->items_with_text, in->n_item_num);
    if (in->n_user_attrs) {
        printf("  users      %llu with attributes:", (unsigned long long)s->users_with_attrs);
        for (uint32_t f = 0; f < in->n_user_attrs; f++)
            printf(" %s (%u)", sq_data_user_attr_name(d, f), sq_data_user_attr_size(d, f));
        printf("\n");
    }
}

int cmd_stats(int argc, char **argv) {
    const char *pos[1];
    int npos = 0, json = 0;
    const sq_opt opts[] = {
        {"json", OPT_FLAG, &json, NULL, "print one JSON object", 0, 0},
    };
    sq_cli_spec spec = {"seqrec stats data.sqd [--json]",
                        "Describes a dataset: counts, behaviours, scenes, time range, sequence "
                        "lengths,\ncontext fields, side information and the ingest report.",
                        opts,
                        1,
                        pos,
                        1,
                        1,
                        &npos};
    int rc = sq_cli_parse(&spec, argc, argv);
    if (rc)
        return rc == 1 ? 0 : 2;
    sq_error err = {0};
    sq_dataset *d = NULL;
    if (sq_data_open(&d, pos[0], &err))
        return sq_cli_fail("stats", &err);
    sq_data_summary s;
    if (sq_data_summarize(d, &s, &err)) {
        sq_data_close(d);
        return sq_cli_fail("stats", &err);
    }
    int ret = 0;
    if (json) {
        char *text = sq_data_stats_json(d, &s);
        if (text)
            puts(text);
        else
            ret = sq_cli_fail("stats", &(sq_error){SQ_ERR_NOMEM, "out of memory"});
        sq_free(text);
    } else {
        print_text(d, &s, pos[0]);
    }
    sq_data_summary_free(&s);
    sq_data_close(d);
    return ret;
}
