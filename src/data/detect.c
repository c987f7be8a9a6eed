/* detect.c — which reader an input goes to.
 *
 * The file name decides first (a ".gz" suffix is ignored): ratings.dat / movies.dat /
 * users.dat and other *.dat → MovieLens; *.inter / *.item / *.user → RecBole; *.jsonl,
 * *.ndjson, *.json → JSON lines; *.tsv, *.tab → TSV; *.csv → CSV. Any other name is decided by
 * the first non-blank line: '{' → JSON lines; "::" → MovieLens; a RecBole typed header
 * ("…:token", "…:float") → RecBole; a tab → TSV; ',' ';' or '|' → CSV; otherwise plain
 * "user item" text. A CSV delimiter is the most frequent of , ; | and tab on the first line
 * (outside quotes; ties go to ','). opts.format forces the format (the name still tells a
 * side file from an event file) and opts.delimiter the delimiter. */
#include "data/read.h"

#include <string.h>

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

const char *detect_basename(const char *path, char *buf, size_t cap) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = b[i] >= 'A' && b[i] <= 'Z' ? (char)(b[i] - 'A' + 'a') : b[i];
    buf[n] = 0;
    if (ends_with(buf, ".gz"))
        buf[n - 3] = 0;
    return buf;
}

/* The first non-blank line of head (without its newline). */
static void first_line(const char *head, size_t n, const char **lp, size_t *ln) {
    size_t i = 0;
    if (n >= 3 && (unsigned char)head[0] == 0xef && (unsigned char)head[1] == 0xbb &&
        (unsigned char)head[2] == 0xbf)
        i = 3;
    for (;;) {
        const char *nl = memchr(head + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - head) : n;
        size_t k = i;
        while (k < e && (head[k] == ' ' || head[k] == '\t' || head[k] == '\r'))
            k++;
        if (k < e || !nl) {
            *lp = head + i;
            *ln = e - i;
            if (*ln && (*lp)[*ln - 1] == '\r')
                (*ln)--;
            return;
        }
        i = e + 1;
    }
}

static char pick_delim(const char *p, size_t n) {
    static const char cand[4] = {',', ';', '|', '\t'};
    size_t count[4] = {0};
    int inq = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '"')
            inq = !inq;
        else if (!inq)
            for (int c = 0; c < 4; c++)
                count[c] += p[i] == cand[c];
    }
    int best = 0;
    for (int c = 1; c < 4; c++)
        if (count[c] > count[best])
            best = c;
    return cand[best];
}

static int contains(const char *p, size_t n, const char *s) {
    size_t k = strlen(s);
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(p + i, s, k))
            return 1;
    return 0;
}

static sq_format sniff(const char *p, size_t n) {
    if (n && p[0] == '{')
        return SQ_FMT_JSONL;
    if (contains(p, n, "::"))
        return SQ_FMT_MOVIELENS;
    if (memchr(p, '\t', n) && (contains(p, n, ":token") || contains(p, n, ":float")))
        return SQ_FMT_RECBOLE;
    if (memchr(p, '\t', n))
        return SQ_FMT_TSV;
    if (memchr(p, ',', n) || memchr(p, ';', n) || memchr(p, '|', n))
        return SQ_FMT_CSV;
    return SQ_FMT_PLAIN;
}

void detect_input(const sq_ingest *g, const char *name, const char *head, size_t n, detected *out) {
    char b[256];
    detect_basename(name, b, sizeof b);
    const char *lp;
    size_t ln;
    first_line(head, n, &lp, &ln);
    out->kind = KIND_EVENTS;
    out->format = SQ_FMT_AUTO;
    if (!strcmp(b, "movies.dat") || !strcmp(b, "users.dat")) {
        out->format = SQ_FMT_MOVIELENS;
        out->kind = b[0] == 'm' ? KIND_ITEMS : KIND_USERS;
    } else if (ends_with(b, ".dat")) {
        out->format = SQ_FMT_MOVIELENS;
    } else if (ends_with(b, ".inter")) {
        out->format = SQ_FMT_RECBOLE;
    } else if (ends_with(b, ".item") || ends_with(b, ".user")) {
        out->format = SQ_FMT_RECBOLE;
        out->kind = ends_with(b, ".item") ? KIND_ITEMS : KIND_USERS;
    } else if (ends_with(b, ".jsonl") || ends_with(b, ".ndjson") || ends_with(b, ".json")) {
        out->format = SQ_FMT_JSONL;
    } else if (ends_with(b, ".tsv") || ends_with(b, ".tab")) {
        out->format = SQ_FMT_TSV;
    } else if (ends_with(b, ".csv")) {
        out->format = SQ_FMT_CSV;
    }
    /* a *.dat that is not "::"-separated is left to the content */
    if (out->format == SQ_FMT_MOVIELENS && out->kind == KIND_EVENTS && ln &&
        !contains(lp, ln, "::"))
        out->format = SQ_FMT_AUTO;
    if (out->format == SQ_FMT_AUTO)
        out->format = sniff(lp, ln);
    if (g->opts.format != SQ_FMT_AUTO) {
        out->format = g->opts.format;
        /* the name still tells side files apart, but only within their own format */
        if ((out->format == SQ_FMT_MOVIELENS &&
             !(!strcmp(b, "movies.dat") || !strcmp(b, "users.dat"))) ||
            (out->format == SQ_FMT_RECBOLE && !ends_with(b, ".item") && !ends_with(b, ".user")) ||
            (out->format != SQ_FMT_MOVIELENS && out->format != SQ_FMT_RECBOLE))
            out->kind = KIND_EVENTS;
    }
    out->delim = out->format == SQ_FMT_CSV ? pick_delim(lp, ln) : '\t';
    if (g->opts.delimiter && out->format == SQ_FMT_CSV)
        out->delim = g->opts.delimiter;
}
