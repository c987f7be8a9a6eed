/* svg_chart.c — line charts as inline SVG (see svg_chart.h). Axis ticks are "nice" numbers
 * (1, 2 or 5 times a power of ten) covering the data's range. */
#include "cli/svg_chart.h"

#include <math.h>

const char *const SVG_COLORS[10] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                    "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f"};

enum { W = 560, H = 280, ML = 64, MR = 16, MT = 12, MB = 44 };

void svg_escape(FILE *f, const char *t) {
    for (; t && *t; t++) {
        switch (*t) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*t, f);
        }
    }
}

/* A tick step near range / 5: 1, 2 or 5 × 10^k (at least 1 when integer). */
static double nice_step(double range, int integer) {
    if (!(range > 0))
        range = 1;
    double raw = range / 5, p = pow(10, floor(log10(raw))), m = raw / p;
    double step = (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
    return integer && step < 1 ? 1 : step;
}

static void range_of(const double *v, int n, double *lo, double *hi) {
    *lo = INFINITY, *hi = -INFINITY;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i]))
            *lo = fmin(*lo, v[i]), *hi = fmax(*hi, v[i]);
    if (!isfinite(*lo))
        *lo = 0, *hi = 1;
    if (*hi - *lo < 1e-12 * fmax(1, fabs(*hi))) { /* a flat series: a band around it */
        double pad = fabs(*hi) > 0 ? fabs(*hi) * 0.1 : 1;
        *lo -= pad, *hi += pad;
    }
}

int svg_line_chart(FILE *f, const char *title, const char *x_name, const char *y_name,
                   const double *x, int n, int x_int, const svg_series *s, int ns) {
    double x0, x1, y0 = INFINITY, y1 = -INFINITY;
    range_of(x, n, &x0, &x1);
    if (n == 1)
        x0 -= 1, x1 += 1;
    for (int k = 0; k < ns; k++) {
        double a, b;
        range_of(s[k].y, n, &a, &b);
        y0 = fmin(y0, a), y1 = fmax(y1, b);
    }
    double ys = nice_step(y1 - y0, 0);
    y0 = floor(y0 / ys) * ys, y1 = ceil(y1 / ys) * ys;
    const double pw = W - ML - MR, ph = H - MT - MB;
#define PX(v) (ML + ((v)-x0) / (x1 - x0) * pw)
#define PY(v) (MT + (y1 - (v)) / (y1 - y0) * ph)
    int points = 0;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < n; i++)
            points += isfinite(s[k].y[i]) != 0;
    fputs("<figure class=\"chart\"><figcaption class=\"title\">", f);
    svg_escape(f, title);
    fprintf(f,
            "</figcaption><svg viewBox=\"0 0 %d %d\" "
            "width=\"%d\" height=\"%d\" data-points=\"%d\" data-colors=\"",
            W, H, W, H, points);
    for (int k = 0; k < ns; k++)
        fprintf(f, "%s%s", k ? "," : "", s[k].color);
    fputs("\" role=\"img\">\n", f);
    /* grid and y ticks */
    int guard = 0; /* at most a few dozen ticks, whatever rounding does */
    for (double v = y0; v <= y1 + ys * 1e-6 && guard++ < 40; v += ys) {
        fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e6e6e6\"/>", ML,
                W - MR, PY(v), PY(v));
        fprintf(f,
                "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\" "
                "fill=\"#444\">%.4g</text>\n",
                ML - 6, PY(v) + 4, fabs(v) < ys * 1e-6 ? 0.0 : v);
    }
    double xs = nice_step(x1 - x0, x_int);
    guard = 0;
    for (double v = ceil(x0 / xs) * xs; v <= x1 + xs * 1e-6 && guard++ < 40; v += xs)
        fprintf(f,
                "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\" "
                "fill=\"#444\">%.4g</text>",
                PX(v), H - MB + 16, v);
    fprintf(f, "\n<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#444\"/>", ML, W - MR,
            H - MB, H - MB);
    fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#444\"/>\n", ML, ML, MT,
            H - MB);
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"12\" fill=\"#222\">",
            ML + pw / 2, H - 8);
    svg_escape(f, x_name);
    fprintf(f,
            "</text><text transform=\"translate(14 %.1f) rotate(-90)\" text-anchor=\"middle\" "
            "font-size=\"12\" fill=\"#222\">",
            MT + ph / 2);
    svg_escape(f, y_name);
    fputs("</text>\n", f);
    /* the series: a line through its finite points (joined across missing ones: validation
     * runs every few epochs), a circle on each */
    for (int k = 0; k < ns; k++) {
        fprintf(f, "<g class=\"series\" stroke=\"%s\" fill=\"%s\">", s[k].color, s[k].color);
        int open = 0;
        for (int i = 0; i < n; i++)
            if (isfinite(s[k].y[i]) && isfinite(x[i])) {
                fprintf(f, "%s%.1f,%.1f", open ? " " : "<polyline points=\"", PX(x[i]),
                        PY(s[k].y[i]));
                open = 1;
            }
        if (open)
            fputs("\" fill=\"none\" stroke-width=\"2\"/>", f);
        for (int i = 0; i < n; i++)
            if (isfinite(s[k].y[i]) && isfinite(x[i]))
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\"/>", PX(x[i]), PY(s[k].y[i]));
        fputs("</g>\n", f);
    }
#undef PX
#undef PY
    fputs("</svg><figcaption class=\"legend\">", f);
    for (int k = 0; k < ns; k++) {
        fprintf(f, "<span><i style=\"background:%s\"></i>", s[k].color);
        svg_escape(f, s[k].name);
        fputs("</span> ", f);
    }
    fputs("</figcaption></figure>\n", f);
    return points;
}
