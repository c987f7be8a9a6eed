/* fixture.c — see fixture.h. */
#include "fixture.h"

#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *fixture_path(const char *name) {
    static char buf[1024];
    const char *src = getenv("SEQREC_SOURCE");
    if (src && *src) {
        snprintf(buf, sizeof buf, "%s/tests/reference/fixtures/%s", src, name);
    } else {
        const char *f = __FILE__, *slash = strrchr(f, '/');
        int dir = slash ? (int)(slash - f) : 0;
        snprintf(buf, sizeof buf, "%.*s%s../reference/fixtures/%s", dir, f, dir ? "/" : "", name);
    }
    return buf;
}

void fx_load(fx_fixture *fx, const char *name) {
    const char *path = fixture_path(name);
    memset(fx, 0, sizeof *fx);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open fixture %s", path);
    uint32_t len;
    while (fread(&len, 4, 1, f) == 1) {
        assert_true(fx->n < FX_MAXREC);
        fx_record *r = &fx->r[fx->n++];
        assert_true(len < sizeof r->name);
        assert_int_equal(fread(r->name, 1, len, f), len);
        r->name[len] = 0;
        assert_int_equal(fread(&r->n, 4, 1, f), 1);
        assert_true(r->n < (1u << 20));
        r->v = malloc((r->n + 1) * sizeof(float));
        assert_non_null(r->v);
        assert_int_equal(fread(r->v, sizeof(float), r->n, f), r->n);
    }
    fclose(f);
}

void fx_free(fx_fixture *fx) {
    for (int i = 0; i < fx->n; i++)
        free(fx->r[i].v);
}

const fx_record *fx_get(const fx_fixture *fx, const char *name, size_t n) {
    for (int i = 0; i < fx->n; i++)
        if (strcmp(fx->r[i].name, name) == 0) {
            if (n)
                assert_int_equal(fx->r[i].n, n);
            return &fx->r[i];
        }
    fail_msg("fixture has no tensor %s", name);
    return NULL;
}

int fx_compare(const fx_fixture *fx, const char *name, const float *ours, size_t n, double rel_tol,
               double floor) {
    const fx_record *r = fx_get(fx, name, n);
    double maxdiff = 0, worst = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double a = ours[i], b = r->v[i], d = fabs(a - b);
        double rel = d / fmax(fmax(fabs(a), fabs(b)), floor);
        if (!(rel <= rel_tol))
            bad++; /* NaN counts as bad */
        maxdiff = fmax(maxdiff, d);
        worst = fmax(worst, rel);
    }
    printf("  %-22s %4zu values  max |diff| %.3g  max rel %.3g%s\n", name, n, maxdiff, worst,
           bad ? "  <-- FAIL" : "");
    return bad;
}
