/* args.c — option parsing for every command: "--name value", "--name=value", "-o value",
 * flags, positionals, and --help generated from the option table. */
#include "cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int name_matches(const char *names, const char *arg, size_t len) {
    /* names is "o|output": compare arg (without dashes) with each alternative */
    const char *p = names;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && !strncmp(p, arg, len))
            return 1;
        if (!bar)
            break;
        p = bar + 1;
    }
    return 0;
}

static void print_help(const sq_cli_spec *s) {
    printf("usage: %s\n\n", s->usage);
    if (s->about)
        printf("%s\n\n", s->about);
    printf("options:\n");
    for (int i = 0; i < s->n_opts; i++) {
        const sq_opt *o = &s->opts[i];
        char names[64] = "", *w = names;
        const char *p = o->names;
        while (*p) {
            const char *bar = strchr(p, '|');
            size_t n = bar ? (size_t)(bar - p) : strlen(p);
            w += snprintf(w, (size_t)(names + sizeof names - w), "%s%s%.*s", w == names ? "" : ", ",
                          n == 1 ? "-" : "--", (int)n, p);
            if (!bar)
                break;
            p = bar + 1;
        }
        char left[96];
        snprintf(left, sizeof left, "%s%s%s", names, o->arg ? " " : "", o->arg ? o->arg : "");
        printf("  %-28s %s\n", left, o->help);
    }
    printf("  %-28s %s\n", "-h, --help", "show this help");
}

static int set_value(const char *cmd, const sq_opt *o, const char *v) {
    char *end = NULL;
    errno = 0;
    switch (o->kind) {
    case OPT_FLAG:
        *(int *)o->dst = 1;
        return 0;
    case OPT_STR:
        *(const char **)o->dst = v;
        return 0;
    case OPT_MULTI:
        if (*o->count >= o->max) {
            fprintf(stderr, "seqrec %s: --%s given more than %d times\n", cmd, o->names, o->max);
            return 2;
        }
        ((const char **)o->dst)[(*o->count)++] = v;
        return 0;
    case OPT_U64: {
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || end == v || *end || v[0] == '-')
            break;
        *(uint64_t *)o->dst = x;
        return 0;
    }
    case OPT_I64: {
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end)
            break;
        *(int64_t *)o->dst = x;
        return 0;
    }
    case OPT_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || end == v || *end)
            break;
        *(double *)o->dst = x;
        return 0;
    }
    }
    fprintf(stderr, "seqrec %s: --%s: '%s' is not a valid %s\n", cmd, o->names, v,
            o->kind == OPT_DOUBLE ? "number" : "integer");
    return 2;
}

int sq_cli_parse(const sq_cli_spec *s, int argc, char **argv) {
    const char *cmd = argv[0];
    int npos = 0, only_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            print_help(s);
            return 1;
        }
        if (!only_pos && !strcmp(a, "--")) {
            only_pos = 1;
            continue;
        }
        if (only_pos || a[0] != '-' || a[1] == 0) {
            if (npos >= s->max_pos) {
                fprintf(stderr, "seqrec %s: unexpected argument '%s' (see --help)\n", cmd, a);
                return 2;
            }
            s->pos[npos++] = a;
            continue;
        }
        const char *name = a + (a[1] == '-' ? 2 : 1);
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const sq_opt *o = NULL;
        for (int k = 0; k < s->n_opts && !o; k++)
            if (name_matches(s->opts[k].names, name, len))
                o = &s->opts[k];
        if (!o) {
            fprintf(stderr, "seqrec %s: unknown option '%s' (see --help)\n", cmd, a);
            return 2;
        }
        const char *v = NULL;
        if (o->kind != OPT_FLAG) {
            if (eq)
                v = eq + 1;
            else if (i + 1 < argc)
                v = argv[++i];
            else {
                fprintf(stderr, "seqrec %s: option '%s' needs a value\n", cmd, a);
                return 2;
            }
        } else if (eq) {
            fprintf(stderr, "seqrec %s: option '--%.*s' takes no value\n", cmd, (int)len, name);
            return 2;
        }
        int rc = set_value(cmd, o, v);
        if (rc)
            return rc;
    }
    if (npos < s->min_pos) {
        fprintf(stderr, "seqrec %s: missing argument (usage: %s)\n", cmd, s->usage);
        return 2;
    }
    if (s->n_pos)
        *s->n_pos = npos;
    return 0;
}

int sq_cli_fail(const char *cmd, const sq_error *err) {
    fprintf(stderr, "seqrec %s: %s\n", cmd, err->msg[0] ? err->msg : sq_strerror(err->code));
    return 1;
}

static void cli_log(void *ud, sq_log_level level, const char *module, const char *msg) {
    sq_cli_reporter *r = ud;
    if (r->quiet || level < SQ_LOG_INFO)
        return;
    sq_progress_bar_done(&r->bar);
    fprintf(stderr, "%s%s: %s\n", level >= SQ_LOG_WARN ? "warning: " : "", module, msg);
}

static void cli_progress(void *ud, const char *stage, uint64_t done, uint64_t total,
                         const char *unit) {
    sq_cli_reporter *r = ud;
    sq_progress_bar_update(&r->bar, stage, done, total, unit);
}

sq_reporter sq_cli_reporter_init(sq_cli_reporter *r, int quiet) {
    sq_progress_bar_init(&r->bar, stderr, quiet);
    r->quiet = quiet;
    sq_reporter rep = {cli_log, cli_progress, r};
    return rep;
}
