/* svg_chart.h — line charts as inline SVG text, for `seqrec report` (a self-contained HTML file:
 * no script, no chart library, nothing fetched). Each point is also drawn as a circle, so one
 * validated epoch still shows; a series' line joins its finite points across missing (NaN)
 * ones.
 *
 * The SVG carries data-points (the finite values drawn) and data-colors (the series colours),
 * which the browser test checks against what chromium renders. */
#ifndef SEQREC_CLI_SVG_CHART_H
#define SEQREC_CLI_SVG_CHART_H

#include <stdio.h>

typedef struct {
    const char *name;  /* legend text (escaped when written) */
    const double *y;   /* [n]: NaN where the series has no value */
    const char *color; /* "#1f77b4" */
} svg_series;

/* The palette series take their colours from, in order. */
extern const char *const SVG_COLORS[10];

/* Writes <figure><svg>…</svg><figcaption>legend</figcaption></figure> to f: x[n] on the x axis
 * (integers when x_int), each series against it. Returns the number of finite points drawn. */
int svg_line_chart(FILE *f, const char *title, const char *x_name, const char *y_name,
                   const double *x, int n, int x_int, const svg_series *s, int ns);

/* Writes text with &, <, >, " escaped. */
void svg_escape(FILE *f, const char *text);

#endif
