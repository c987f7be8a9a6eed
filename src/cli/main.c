/* main.c — `seqrec <command>`: dispatch to the command table in cli.h. */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const sq_cli_command commands[] = {
    {"generate", "write a synthetic event log with planted structure", cmd_generate},
    {"ingest", "read event logs, clean them and write a .sqd dataset", cmd_ingest},
    {"stats", "describe a .sqd dataset", cmd_stats},
    {"train", "train a model on a dataset and save it (.sqm)", cmd_train},
    {"tune", "search config values on the validation split (grid or random)", cmd_tune},
    {"eval", "evaluate a model: full-ranking metrics with confidence intervals", cmd_eval},
    {"recommend", "top-k items for a user", cmd_recommend},
    {"similar", "items nearest to an item", cmd_similar},
    {"serve", "serve recommendations over HTTP while events stream in", cmd_serve},
    {"report", "write a training run's curves as one self-contained HTML file", cmd_report},
    {"bench", "measure a part of seqrec and print the figures", cmd_bench},
};

static void usage(FILE *out) {
    fprintf(out,
            "seqrec %s — recommendations from user behaviour sequences\n\n"
            "usage: seqrec <command> [options]   (seqrec <command> --help for details)\n\n"
            "commands:\n",
            SEQREC_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

/* OpenMP threads that wait by spinning (libgomp's default) fight other busy processes for the
 * cores: on a shared 2-core machine a training step ran 3-5x slower than with passive waiting
 * (docs/benchmarks.md). libgomp reads OMP_WAIT_POLICY when it loads, before main, so when the
 * user has not chosen a policy we set "passive" and start ourselves again, once. */
static void prefer_passive_waiting(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("SEQREC_NO_REEXEC"))
        return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) || setenv("SEQREC_NO_REEXEC", "1", 1))
        return;
    execv("/proc/self/exe", argv); /* returns only on failure: then carry on as we are */
}

int main(int argc, char **argv) {
    prefer_passive_waiting(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("seqrec %s\n", SEQREC_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "seqrec: unknown command '%s' (seqrec --help lists them)\n", argv[1]);
    return 2;
}
