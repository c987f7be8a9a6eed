/* cmd_report.c — `seqrec report RUN.jsonl [-o report.html]`: the runs of a training metrics log
 * (and, with --eval-json, evaluation tables) as one self-contained HTML file: the Training
 * page's charts drawn as inline SVG, styles inline, no script and nothing fetched, so it opens
 * anywhere without network. */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"
#include "cli/svg_chart.h"
#include "train/runlog.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MAX_NAMES = 32 };

/* The number at epoch line e under the path k0/k1/k2 (NULL ends it); NaN when absent. */
static double at(const cJSON *e, const char *k0, const char *k1, const char *k2) {
    const cJSON *v = cJSON_GetObjectItem(e, k0);
    if (k1)
        v = cJSON_GetObjectItem(v, k1);
    if (k2)
        v = cJSON_GetObjectItem(v, k2);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* Adds the keys of every epoch's e[k0] (or e[k0][k1]) to names (no duplicates). */
static int collect(const cJSON *runs, const char *k0, const char *k1, const char **names, int n) {
    const cJSON *r, *e, *k;
    cJSON_ArrayForEach(r, runs) {
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(r, "epochs")) {
            const cJSON *o = cJSON_GetObjectItem(e, k0);
            if (k1)
                o = cJSON_GetObjectItem(o, k1);
            cJSON_ArrayForEach(k, o) {
                int seen = 0;
                for (int i = 0; i < n && !seen; i++)
                    seen = !strcmp(names[i], k->string);
                if (!seen && n < MAX_NAMES && cJSON_IsNumber(k) == !cJSON_IsObject(k))
                    names[n++] = k->string;
            }
        }
    }
    return n;
}

typedef struct {
    FILE *f;
    const cJSON *runs; /* the runs with epochs */
    int n_runs, max_epoch;
    double *x, *y; /* [max_epoch], [n_runs × max_epoch] */
    int charts, points;
} chart_ctx;

/* One chart of the value at k0/k1/k2 per epoch, a series per run that has it. */
static void curve(chart_ctx *c, const char *title, const char *y_name, const char *k0,
                  const char *k1, const char *k2) {
    svg_series s[16];
    int ns = 0, ri = 0;
    const cJSON *r, *e;
    cJSON_ArrayForEach(r, c->runs) {
        double *y = c->y + (size_t)ri * c->max_epoch;
        int any = 0;
        for (int i = 0; i < c->max_epoch; i++)
            y[i] = NAN;
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(r, "epochs")) {
            double ep = at(e, "epoch", NULL, NULL), v = at(e, k0, k1, k2);
            if (ep >= 1 && ep <= c->max_epoch && isfinite(v))
                y[(int)ep - 1] = v, any = 1;
        }
        if (any && ns < 16)
            s[ns++] = (svg_series){cJSON_GetStringValue(cJSON_GetObjectItem(r, "name")), y,
                                   SVG_COLORS[ri % 10]};
        ri++;
    }
    if (!ns)
        return;
    c->points += svg_line_chart(c->f, title, "epoch", y_name, c->x, c->max_epoch, 1, s, ns);
    c->charts++;
}

static void cell_num(FILE *f, const cJSON *v, int digits) {
    if (cJSON_IsNumber(v))
        fprintf(f, "<td>%.*f</td>", digits, v->valuedouble);
    else
        fputs("<td>–</td>", f);
}

static void runs_table(FILE *f, const cJSON *runs) {
    fputs("<table><thead><tr><th>run</th><th>model file</th><th>epochs</th><th>best epoch</th>"
          "<th>valid NDCG@10</th><th>valid HR@10</th><th>seconds</th></tr></thead><tbody>\n",
          f);
    const cJSON *r;
    cJSON_ArrayForEach(r, runs) {
        const cJSON *s = cJSON_GetObjectItem(r, "summary"), *v = cJSON_GetObjectItem(s, "valid");
        fputs("<tr><td>", f);
        svg_escape(f, cJSON_GetStringValue(cJSON_GetObjectItem(r, "name")));
        fputs("</td><td>", f);
        const char *out = cJSON_GetStringValue(cJSON_GetObjectItem(r, "output"));
        svg_escape(f, out ? out : "–");
        fputs("</td>", f);
        if (cJSON_GetObjectItem(s, "epochs"))
            cell_num(f, cJSON_GetObjectItem(s, "epochs"), 0);
        else
            fprintf(f, "<td>%d</td>", cJSON_GetArraySize(cJSON_GetObjectItem(r, "epochs")));
        cell_num(f, cJSON_GetObjectItem(s, "best_epoch"), 0);
        cell_num(f, cJSON_GetObjectItem(v, "ndcg@10"), 4);
        cell_num(f, cJSON_GetObjectItem(v, "hr@10"), 4);
        cell_num(f, cJSON_GetObjectItem(s, "seconds"), 2);
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
}

/* A metric with its interval: "0.1234 [0.1100, 0.1300]". */
static void cell_ci(FILE *f, const cJSON *v, const cJSON *ci) {
    if (!cJSON_IsNumber(v)) {
        fputs("<td>–</td>", f);
        return;
    }
    fprintf(f, "<td>%.4f", v->valuedouble);
    if (cJSON_GetArraySize(ci) == 2)
        fprintf(f, " [%.4f, %.4f]", cJSON_GetNumberValue(cJSON_GetArrayItem(ci, 0)),
                cJSON_GetNumberValue(cJSON_GetArrayItem(ci, 1)));
    fputs("</td>", f);
}

/* The tables of one `seqrec eval --json` result: K × ranking metrics, then tasks per scene. */
static void eval_tables(FILE *f, const cJSON *res) {
    static const char *const metrics[] = {"hr", "ndcg", "mrr", "precision", "recall"};
    const cJSON *m = cJSON_GetObjectItem(res, "metrics"), *ci = cJSON_GetObjectItem(res, "ci95");
    fputs("<table><thead><tr><th>K</th>", f);
    for (size_t i = 0; i < sizeof metrics / sizeof *metrics; i++)
        fprintf(f, "<th>%s@K [95 %% CI]</th>", metrics[i]);
    fputs("</tr></thead><tbody>\n", f);
    const cJSON *k;
    cJSON_ArrayForEach(k, cJSON_GetObjectItem(res, "k")) {
        fprintf(f, "<tr><td>%d</td>", k->valueint);
        for (size_t i = 0; i < sizeof metrics / sizeof *metrics; i++) {
            char key[48];
            snprintf(key, sizeof key, "%s@%d", metrics[i], k->valueint);
            cell_ci(f, cJSON_GetObjectItem(m, key), cJSON_GetObjectItem(ci, key));
        }
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
    const cJSON *tasks = cJSON_GetObjectItem(res, "tasks"), *t;
    if (!tasks)
        return;
    fputs("<h3>Tasks (per scene)</h3><table><thead><tr><th>task</th><th>metric</th><th>scene</th>"
          "<th>value [95 % CI]</th><th>n</th></tr></thead><tbody>\n",
          f);
    cJSON_ArrayForEach(t, tasks) {
        const cJSON *met;
        cJSON_ArrayForEach(met, t) {
            if (!(cJSON_IsNumber(met) || cJSON_IsNull(met)) || !strcmp(met->string, "n"))
                continue;
            const cJSON *g = t, *sc = cJSON_GetObjectItem(t, "scenes");
            const char *gname = "all";
            const cJSON *child = sc ? sc->child : NULL;
            for (;;) {
                fputs("<tr><td>", f);
                svg_escape(f, t->string);
                fputs("</td><td>", f);
                svg_escape(f, met->string);
                fputs("</td><td>", f);
                svg_escape(f, gname);
                fputs("</td>", f);
                cell_ci(f, cJSON_GetObjectItem(g, met->string),
                        cJSON_GetObjectItem(cJSON_GetObjectItem(g, "ci95"), met->string));
                cell_num(f, cJSON_GetObjectItem(g, "n"), 0);
                fputs("</tr>\n", f);
                if (!child)
                    break;
                g = child, gname = child->string, child = child->next;
            }
        }
    }
    fputs("</tbody></table>\n", f);
}

/* Every line of an eval file as a section; errors name the file and line. */
static sq_status evals(FILE *f, const char *path, sq_error *err) {
    FILE *in = fopen(path, "rb");
    if (!in)
        return sq_errorf(err, SQ_ERR_IO, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long lineno = 0;
    sq_status rc = SQ_OK;
    while (!rc && (n = getline(&line, &cap, in)) >= 0) {
        lineno++;
        if (strspn(line, " \t\r\n") == (size_t)n)
            continue;
        cJSON *res = cJSON_ParseWithLength(line, (size_t)n);
        if (!cJSON_IsObject(res) || !cJSON_GetObjectItem(res, "metrics")) {
            rc = sq_errorf(err, SQ_ERR_PARSE, "%s:%lu: not a `seqrec eval --json` object", path,
                           lineno);
        } else {
            fputs("<section><h2>Evaluation: ", f);
            const char *model = cJSON_GetStringValue(cJSON_GetObjectItem(res, "model"));
            if (model) {
                svg_escape(f, model);
            } else {
                svg_escape(f, path);
                fprintf(f, ":%lu", lineno);
            }
            fputs("</h2><p class=\"note\">", f);
            const char *keys[] = {"protocol", "ranking", "history", "part"};
            for (int i = 0; i < 4; i++) {
                fprintf(f, "%s%s ", i ? ", " : "", keys[i]);
                svg_escape(f, cJSON_GetStringValue(cJSON_GetObjectItem(res, keys[i])));
            }
            fprintf(f, "; %.0f users, %.0f targets</p>\n",
                    cJSON_GetNumberValue(cJSON_GetObjectItem(res, "users")),
                    cJSON_GetNumberValue(cJSON_GetObjectItem(res, "targets")));
            eval_tables(f, res);
            fputs("</section>\n", f);
        }
        cJSON_Delete(res);
    }
    free(line);
    fclose(in);
    return rc;
}

static const char STYLE[] =
    "body{font:14px/1.45 system-ui,sans-serif;color:#222;background:#f6f7f9;margin:0;"
    "padding:16px 24px}h1{font-size:22px}h2{font-size:16px;margin:0 0 10px}h3{font-size:14px}"
    "section{background:#fff;border:1px solid #e2e5ea;border-radius:6px;padding:14px 16px;"
    "margin:0 0 16px}.charts{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0}"
    ".title{font-weight:600;text-align:center}.legend span{margin-right:12px;font-size:12px}"
    ".legend i{display:inline-block;width:10px;height:10px;margin-right:4px}"
    "table{border-collapse:collapse;font-size:13px}th,td{text-align:left;padding:4px 10px;"
    "border-bottom:1px solid #eef0f3}th{background:#f3f5f8}.note{color:#667}";

/* The whole page to f; *charts and *points count what was drawn. */
static sq_status write_html(FILE *f, const char *log, const char *title, cJSON *runs,
                            const char *const *eval_files, int n_evals, int *charts, int *points,
                            sq_error *err) {
    cJSON *it = cJSON_CreateArray(); /* the runs with epochs (references) */
    if (!it)
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    int max_epoch = 0, n_it = 0;
    cJSON *r, *e;
    cJSON_ArrayForEach(r, runs) {
        if (!cJSON_GetArraySize(cJSON_GetObjectItem(r, "epochs")))
            continue;
        cJSON_AddItemReferenceToArray(it, r);
        n_it++;
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(r, "epochs")) {
            double ep = at(e, "epoch", NULL, NULL);
            if (ep > max_epoch && ep < 1e6)
                max_epoch = (int)ep;
        }
    }
    chart_ctx c = {f, it, n_it, max_epoch, NULL, NULL, 0, 0};
    c.x = sq_mallocn(max_epoch ? max_epoch : 1, sizeof *c.x);
    c.y = sq_mallocn((size_t)(n_it ? n_it : 1) * (max_epoch ? max_epoch : 1), sizeof *c.y);
    sq_status rc = SQ_OK;
    if (!c.x || !c.y) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < max_epoch; i++)
        c.x[i] = i + 1;
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
    fputs("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>", f);
    svg_escape(f, title);
    fprintf(f, "</title><style>%s</style></head><body>\n<h1>", STYLE);
    svg_escape(f, title);
    fputs("</h1><p class=\"note\">the runs of the metrics log ", f);
    svg_escape(f, log);
    fprintf(f, ", written by seqrec report at %s</p>\n", when);
    if (n_it) {
        fputs("<section><h2>Curves (runs overlaid)</h2><div class=\"charts\">\n", f);
        curve(&c, "Training loss", "loss", "loss", NULL, NULL);
        curve(&c, "Validation NDCG@10", "NDCG@10", "valid", "ndcg@10", NULL);
        curve(&c, "Validation HR@10", "HR@10", "valid", "hr@10", NULL);
        const char *tasks[MAX_NAMES], *mets[MAX_NAMES];
        int nt = collect(it, "task_loss", NULL, tasks, 0);
        char t2[200];
        for (int i = 0; i < nt; i++) {
            snprintf(t2, sizeof t2, "Task loss: %s", tasks[i]);
            curve(&c, t2, "loss", "task_loss", tasks[i], NULL);
        }
        nt = collect(it, "valid_tasks", NULL, tasks, 0);
        for (int i = 0; i < nt; i++) {
            int nm = collect(it, "valid_tasks", tasks[i], mets, 0);
            for (int j = 0; j < nm; j++) {
                snprintf(t2, sizeof t2, "Validation %s: %s", tasks[i], mets[j]);
                curve(&c, t2, mets[j], "valid_tasks", tasks[i], mets[j]);
            }
        }
        curve(&c, "Seconds per epoch (training)", "s", "seconds", NULL, NULL);
        fputs("</div></section>\n", f);
    }
    fputs("<section><h2>Runs</h2>\n", f);
    runs_table(f, runs);
    fputs("</section>\n", f);
    for (int i = 0; i < n_evals && !rc; i++)
        rc = evals(f, eval_files[i], err);
    fputs("</body></html>\n", f);
    *charts = c.charts, *points = c.points;
done:
    sq_free(c.x);
    sq_free(c.y);
    cJSON_Delete(it);
    return rc;
}

int cmd_report(int argc, char **argv) {
    const char *pos[1], *out = NULL, *title = NULL, *eval_files[16];
    int npos = 0, n_evals = 0, quiet = 0, json = 0;
    const sq_opt opts[] = {
        {"o|output", OPT_STR, &out, "FILE", "the HTML file to write (default: RUN with .html)", 0,
         0},
        {"eval-json", OPT_MULTI, eval_files, "FILE",
         "add the tables of a `seqrec eval --json` output (repeatable)", &n_evals, 16},
        {"title", OPT_STR, &title, "TEXT", "the page's title (default: seqrec report: RUN)", 0, 0},
        {"json", OPT_FLAG, &json, NULL, "print what was written as one JSON object", 0, 0},
        {"q|quiet", OPT_FLAG, &quiet, NULL, "print nothing", 0, 0},
    };
    sq_cli_spec spec = {
        "seqrec report RUN.jsonl [-o report.html] [--eval-json FILE]...",
        "Writes the runs of a training metrics log (seqrec train --metrics-log) as one\n"
        "self-contained HTML file: loss, validation and per-task curves, seconds per epoch,\n"
        "every run overlaid, as inline SVG; no script, nothing fetched: it opens offline.",
        opts,
        (int)(sizeof opts / sizeof *opts),
        pos,
        1,
        1,
        &npos};
    int rc = sq_cli_parse(&spec, argc, argv);
    if (rc)
        return rc == 1 ? 0 : 2;
    char def_out[4096], def_title[4200];
    if (!out) {
        const char *dot = strrchr(pos[0], '.'), *slash = strrchr(pos[0], '/');
        int stem = dot && (!slash || dot > slash) ? (int)(dot - pos[0]) : (int)strlen(pos[0]);
        snprintf(def_out, sizeof def_out, "%.*s.html", stem, pos[0]);
        out = def_out;
    }
    if (!title) {
        snprintf(def_title, sizeof def_title, "seqrec report: %s", pos[0]);
        title = def_title;
    }
    sq_error err = {0};
    cJSON *runs = NULL;
    if (sq_runlog_read(pos[0], &runs, &err))
        return sq_cli_fail("report", &err);
    if (!cJSON_GetArraySize(runs)) {
        cJSON_Delete(runs);
        fprintf(stderr, "seqrec report: %s: no run in the log (is it a --metrics-log file?)\n",
                pos[0]);
        return 1;
    }
    sq_afile *af = NULL;
    int charts = 0, points = 0;
    if (sq_afile_open(&af, out, &err) || write_html(sq_afile_stream(af), pos[0], title, runs,
                                                    eval_files, n_evals, &charts, &points, &err)) {
        sq_afile_abort(af);
        cJSON_Delete(runs);
        return sq_cli_fail("report", &err);
    }
    if (sq_afile_commit(af, &err)) {
        cJSON_Delete(runs);
        return sq_cli_fail("report", &err);
    }
    int n_runs = cJSON_GetArraySize(runs);
    cJSON_Delete(runs);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "output", out);
        cJSON_AddNumberToObject(o, "runs", n_runs);
        cJSON_AddNumberToObject(o, "charts", charts);
        cJSON_AddNumberToObject(o, "points", points);
        char *text = cJSON_PrintUnformatted(o);
        if (text)
            puts(text);
        cJSON_free(text);
        cJSON_Delete(o);
    } else if (!quiet)
        printf("wrote %s: %d run%s, %d chart%s\n", out, n_runs, n_runs == 1 ? "" : "s", charts,
               charts == 1 ? "" : "s");
    return 0;
}
