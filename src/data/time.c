/* time.c — timestamps and numbers from text, without the C library's locale or time zone.
 *
 * sq_parse_time accepts, after trimming blanks:
 *   - epoch seconds, integer or decimal ("881250949", "881250949.5", "-5", "1.5e9"); a value
 *     whose magnitude is at least 1e11 is taken as epoch milliseconds (1e11 s is year 5138);
 *   - ISO-8601 / SQL dates: "YYYY-MM-DD", then optionally 'T', 't' or ' ' and "HH:MM" with
 *     optional ":SS" and a fraction (".123" or ",123"), then optionally a zone: 'Z', or
 *     ±hh, ±hhmm, ±hh:mm (one blank may precede the zone). No zone means UTC.
 * The result is whole UTC seconds: fractions are dropped (floor). Calendar arithmetic is
 * Howard Hinnant's days_from_civil (proleptic Gregorian), so no timegm, TZ or locale is used.
 *
 * sq_parse_double is a small decimal parser: sign, digits, optional fraction, optional
 * exponent. When the digits fit in 53 bits and the power of ten is at most 22 (every rating,
 * price and epoch), the result is m / 10^k or m * 10^k of two exact doubles, hence correctly
 * rounded; longer inputs fall back to m * 10^k through pow (within a few ulps). NaN, Inf, hex
 * and empty inputs are refused. */
#include "data/ingest.h"

#include <math.h>

static int is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static void trim(const char **p, size_t *n) {
    while (*n && is_blank(**p)) {
        (*p)++;
        (*n)--;
    }
    while (*n && is_blank((*p)[*n - 1]))
        (*n)--;
}

static int is_digit(char c) {
    return c >= '0' && c <= '9';
}

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

int sq_parse_double(const char *p, size_t n, double *out) {
    trim(&p, &n);
    size_t i = 0;
    int neg = 0;
    if (i < n && (p[i] == '+' || p[i] == '-')) {
        neg = p[i] == '-';
        i++;
    }
    uint64_t m = 0; /* significant digits, at most 18-19 of them */
    long dexp = 0;  /* value = m * 10^dexp */
    int digits = 0; /* digits seen in mantissa */
    for (; i < n && is_digit(p[i]); i++, digits++) {
        if (m < 100000000000000000ull)
            m = m * 10 + (uint64_t)(p[i] - '0');
        else
            dexp++;
    }
    if (i < n && p[i] == '.') {
        for (i++; i < n && is_digit(p[i]); i++, digits++) {
            if (m < 100000000000000000ull) {
                m = m * 10 + (uint64_t)(p[i] - '0');
                dexp--;
            }
        }
    }
    if (digits == 0)
        return -1;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        int eneg = 0;
        if (i < n && (p[i] == '+' || p[i] == '-')) {
            eneg = p[i] == '-';
            i++;
        }
        if (i >= n || !is_digit(p[i]))
            return -1;
        long e = 0;
        for (; i < n && is_digit(p[i]); i++)
            if (e < 100000)
                e = e * 10 + (p[i] - '0');
        dexp += eneg ? -e : e;
    }
    if (i != n)
        return -1;
    double v;
    if (m == 0)
        v = 0.0;
    else if (m < (1ull << 53) && dexp >= -22 && dexp <= 22)
        v = dexp < 0 ? (double)m / pow10_exact[-dexp] : (double)m * pow10_exact[dexp];
    else if (dexp < -330)
        v = 0.0;
    else
        v = (double)m * pow(10.0, (double)dexp);
    if (!isfinite(v))
        return -1;
    *out = neg ? -v : v;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12, d 1..31). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int is_leap(int64_t y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m) {
    static const unsigned dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* Reads exactly k digits at p[*i]; returns -1 when they are not all digits. */
static long fixed_digits(const char *p, size_t n, size_t *i, int k) {
    if (*i + (size_t)k > n)
        return -1;
    long v = 0;
    for (int j = 0; j < k; j++) {
        char c = p[*i + (size_t)j];
        if (!is_digit(c))
            return -1;
        v = v * 10 + (c - '0');
    }
    *i += (size_t)k;
    return v;
}

/* "YYYY-MM-DD[(T| )HH:MM[:SS[.f]]][ ][Z|±hh[[:]mm]]" → UTC seconds. */
static int parse_date(const char *p, size_t n, int64_t *out) {
    size_t i = 0;
    long y = fixed_digits(p, n, &i, 4);
    if (y < 0 || i >= n || p[i++] != '-')
        return -1;
    long mo = fixed_digits(p, n, &i, 2);
    if (mo < 1 || mo > 12 || i >= n || p[i++] != '-')
        return -1;
    long d = fixed_digits(p, n, &i, 2);
    if (d < 1 || (unsigned long)d > days_in_month(y, (unsigned)mo))
        return -1;
    long hh = 0, mi = 0, ss = 0, off = 0;
    if (i < n && (p[i] == 'T' || p[i] == 't' || p[i] == ' ')) {
        i++;
        hh = fixed_digits(p, n, &i, 2);
        if (hh < 0 || hh > 23 || i >= n || p[i++] != ':')
            return -1;
        mi = fixed_digits(p, n, &i, 2);
        if (mi < 0 || mi > 59)
            return -1;
        if (i < n && p[i] == ':') {
            i++;
            ss = fixed_digits(p, n, &i, 2);
            if (ss < 0 || ss > 59)
                return -1;
            if (i < n && (p[i] == '.' || p[i] == ',')) {
                i++;
                if (i >= n || !is_digit(p[i]))
                    return -1;
                while (i < n && is_digit(p[i]))
                    i++; /* fraction: dropped (floor) */
            }
        }
        if (i + 1 < n && p[i] == ' ' && (p[i + 1] == 'Z' || p[i + 1] == '+' || p[i + 1] == '-'))
            i++;
        if (i < n && (p[i] == 'Z' || p[i] == 'z')) {
            i++;
        } else if (i < n && (p[i] == '+' || p[i] == '-')) {
            int sign = p[i++] == '-' ? -1 : 1;
            long oh = fixed_digits(p, n, &i, 2), om = 0;
            if (oh < 0 || oh > 23)
                return -1;
            if (i < n && p[i] == ':')
                i++;
            if (i < n) {
                om = fixed_digits(p, n, &i, 2);
                if (om < 0 || om > 59)
                    return -1;
            }
            off = sign * (oh * 3600 + om * 60);
        }
    }
    if (i != n)
        return -1;
    *out = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + hh * 3600 + mi * 60 + ss - off;
    return 0;
}

int sq_parse_time(const char *p, size_t n, int64_t *out) {
    trim(&p, &n);
    if (n == 0)
        return -1;
    /* the common case first: plain epoch seconds or milliseconds */
    if (n <= 18) {
        int64_t v = 0;
        size_t i = 0;
        while (i < n && is_digit(p[i]))
            v = v * 10 + (p[i++] - '0');
        if (i == n) {
            *out = v >= 100000000000LL ? v / 1000 : v;
            return 0;
        }
    }
    if (n >= 10 && p[4] == '-' && is_digit(p[0]))
        return parse_date(p, n, out);
    double v;
    if (sq_parse_double(p, n, &v))
        return -1;
    if (fabs(v) >= 1e11)
        v /= 1000.0;
    if (fabs(v) > 9e15)
        return -1;
    *out = (int64_t)floor(v);
    return 0;
}
