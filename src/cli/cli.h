/* cli.h — the command table, option parsing and the reporter the commands hand to libraries.
 * Nothing here holds logic a library user would also need: commands parse, call libseqrec,
 * print. */
#ifndef SEQREC_CLI_H
#define SEQREC_CLI_H

#include "seqrec/core.h"

#define SEQREC_VERSION "0.1.0"

typedef struct {
    const char *name;                  /* "ingest" */
    const char *summary;               /* one line for `seqrec --help` */
    int (*run)(int argc, char **argv); /* argv[0] is the command name; returns the exit code */
} sq_cli_command;

int cmd_generate(int argc, char **argv);
int cmd_ingest(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_bench(int argc, char **argv);
/* `seqrec bench nn` (bench_nn.c): threads <= 0 keeps the default, runs 1..64. */
int sq_cli_bench_nn(int json, int runs, int threads);
/* `seqrec bench train` (bench_train.c): rows 0 = Beauty's size, runs = epochs (1..16). */
int sq_cli_bench_train(const char *model, uint64_t rows, int runs, int threads,
                       const char *const *sets, int nsets, int json, const char *dir);
int cmd_train(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_recommend(int argc, char **argv);
int cmd_similar(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_report(int argc, char **argv);

/* One option: names "o|output" (short|long), a kind, where the value goes, help text. */
typedef enum {
    OPT_FLAG,   /* int, set to 1 */
    OPT_STR,    /* const char * */
    OPT_U64,    /* uint64_t, decimal, ≥ 0 */
    OPT_I64,    /* int64_t */
    OPT_DOUBLE, /* double */
    OPT_MULTI   /* const char ** array of up to `max` strings, count in *count */
} sq_opt_kind;

typedef struct {
    const char *names; /* "o|output" or "strict" */
    sq_opt_kind kind;
    void *dst;
    const char *arg; /* value name in help ("FILE") */
    const char *help;
    int *count; /* OPT_MULTI: values stored */
    int max;    /* OPT_MULTI: capacity */
} sq_opt;

typedef struct {
    const char *usage; /* "seqrec ingest INPUT... -o data.sqd [options]" */
    const char *about; /* a paragraph under the usage line */
    const sq_opt *opts;
    int n_opts;
    const char **pos; /* positional arguments land here */
    int max_pos, min_pos;
    int *n_pos;
} sq_cli_spec;

/* Parses argv[1..]; "--help" prints help to stdout and returns 1; a bad option prints
 * "seqrec CMD: reason" to stderr and returns 2; success returns 0. */
int sq_cli_parse(const sq_cli_spec *spec, int argc, char **argv);

/* Prints "seqrec: <message>" for a failed status; returns the exit code (1). */
int sq_cli_fail(const char *cmd, const sq_error *err);

/* A reporter that draws progress on stderr (bar on a TTY, lines otherwise) and prints
 * warnings; quiet silences both. */
typedef struct {
    sq_progress_bar bar;
    int quiet;
} sq_cli_reporter;
sq_reporter sq_cli_reporter_init(sq_cli_reporter *r, int quiet);

#endif
