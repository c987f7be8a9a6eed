/* progress.c — the reporter callbacks libraries call, and the terminal renderer the CLI hands
 * them: a redrawn bar with rate and ETA on a TTY, plain lines every few seconds otherwise. */
#define _POSIX_C_SOURCE 200809L
#include "seqrec/core.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

double sq_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void sq_report_log(const sq_reporter *r, sq_log_level level, const char *module,
                   const char *fmt, ...) {
    if (!r || !r->log) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->log(r->ud, level, module, msg);
}

void sq_report_progress(const sq_reporter *r, const char *stage, uint64_t done, uint64_t total,
                        const char *unit) {
    if (r && r->progress) r->progress(r->ud, stage, done, total, unit);
}

char *sq_fmt_count(char *buf, size_t cap, uint64_t n) {
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)n);
    size_t o = 0;
    for (int i = 0; i < len && o + 1 < cap; i++) {
        if (i > 0 && (len - i) % 3 == 0 && o + 2 < cap) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    if (cap) buf[o < cap ? o : cap - 1] = 0;
    return buf;
}

void sq_progress_bar_init(sq_progress_bar *b, FILE *out, int quiet) {
    memset(b, 0, sizeof *b);
    b->out = out;
    b->tty = isatty(fileno(out));
    b->quiet = quiet;
}

static void fmt_rate(char *buf, size_t cap, double rate) {
    if (rate >= 1e6) snprintf(buf, cap, "%.2fM", rate / 1e6);
    else if (rate >= 1e3) snprintf(buf, cap, "%.1fk", rate / 1e3);
    else snprintf(buf, cap, "%.1f", rate);
}

static void fmt_secs(char *buf, size_t cap, double s) {
    if (s < 0 || s > 1e7) snprintf(buf, cap, "?");
    else if (s >= 3600) snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else if (s >= 60) snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else snprintf(buf, cap, "%.0fs", s);
}

void sq_progress_bar_update(void *bar, const char *stage, uint64_t done, uint64_t total,
                            const char *unit) {
    sq_progress_bar *b = bar;
    if (b->quiet) return;
    double now = sq_now();
    int new_stage = strncmp(b->stage, stage, sizeof b->stage - 1) != 0;
    if (new_stage) {
        sq_progress_bar_done(b);
        snprintf(b->stage, sizeof b->stage, "%s", stage);
        b->t_start = now;
        b->t_last = b->tty ? 0 : now; /* plain lines: the first after 5 s, not at 0 % */
        b->printed = 0;
    }
    int finished = total && done >= total;
    if (b->tty) {
        if (!new_stage && !finished && now - b->t_last < 0.1) return;
    } else if (finished) {
        /* a stage that was quick and silent stays silent */
        if (!b->printed && now - b->t_start < 2.0) return;
    } else if (now - b->t_last < 5.0) {
        return;
    }
    b->t_last = now;
    b->printed = 1;
    double el = now - b->t_start;
    char rate[32], eta[32], els[32];
    fmt_rate(rate, sizeof rate, el > 0 ? (double)done / el : 0);
    fmt_secs(els, sizeof els, el);
    if (total && done > 0 && el > 0)
        fmt_secs(eta, sizeof eta, (double)(total - (done < total ? done : total)) * el / done);
    else
        snprintf(eta, sizeof eta, "?");
    if (b->tty) {
        char line[320];
        if (total) {
            int width = 30, fill = (int)((double)width * done / total);
            if (fill > width) fill = width;
            char barbuf[40];
            for (int i = 0; i < width; i++) barbuf[i] = i < fill ? '#' : '.';
            barbuf[width] = 0;
            snprintf(line, sizeof line, "%s [%s] %3.0f%% %s %s %s/s eta %s", b->stage, barbuf,
                     100.0 * done / total, els, rate, unit, eta);
        } else {
            snprintf(line, sizeof line, "%s %llu %s %s %s %s/s", b->stage,
                     (unsigned long long)done, unit, els, rate, unit);
        }
        fprintf(b->out, "\r\033[K%s", line);
        b->open_line = 1;
        if (finished) sq_progress_bar_done(b);
    } else {
        if (total)
            fprintf(b->out, "%s: %llu/%llu %s (%.0f%%) %s %s/s eta %s\n", b->stage,
                    (unsigned long long)done, (unsigned long long)total, unit,
                    100.0 * done / total, rate, unit, eta);
        else
            fprintf(b->out, "%s: %llu %s %s %s/s\n", b->stage, (unsigned long long)done, unit,
                    rate, unit);
    }
    fflush(b->out);
}

void sq_progress_bar_done(sq_progress_bar *b) {
    if (b->open_line) {
        fputc('\n', b->out);
        b->open_line = 0;
    }
}
