/* columns.c — header recognition and the --columns mapping (see columns.h).
 *
 * A header name is normalised before lookup: blanks and surrounding quotes trimmed, a UTF-8
 * byte order mark dropped, a RecBole type suffix (":token", ":token_seq", ":float",
 * ":float_seq") cut, ASCII lower-cased ("用户ID" → "用户id"). The recognised names are the
 * table below; time has a precedence: a timestamp column wins over date (+ timeframe), which
 * wins over file order. */
#include "data/columns.h"

#include <string.h>

/* ===================================== Name normalising ===================================== */

static int is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static char lower(char c) {
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Writes the normalised name of p[0..n) into out (cap bytes, NUL-terminated); returns its
 * length, or (size_t)-1 when it does not fit. */
static size_t normalise(const char *p, size_t n, char *out, size_t cap) {
    if (n >= 3 && (unsigned char)p[0] == 0xef && (unsigned char)p[1] == 0xbb &&
        (unsigned char)p[2] == 0xbf) {
        p += 3;
        n -= 3;
    }
    while (n && is_blank(*p)) {
        p++;
        n--;
    }
    while (n && is_blank(p[n - 1]))
        n--;
    if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
        p++;
        n -= 2;
    }
    static const char *types[] = {":token_seq", ":float_seq", ":token", ":float"};
    for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
        size_t k = strlen(types[t]);
        if (n > k) {
            size_t j = 0;
            while (j < k && lower(p[n - k + j]) == types[t][j])
                j++;
            if (j == k) {
                n -= k;
                break;
            }
        }
    }
    if (n + 1 > cap)
        return (size_t)-1;
    for (size_t i = 0; i < n; i++)
        out[i] = lower(p[i]);
    out[n] = 0;
    return n;
}

static void copy_name(char *dst, const char *src) {
    size_t k = strlen(src);
    if (k >= COLS_NAME)
        k = COLS_NAME - 1;
    memcpy(dst, src, k);
    dst[k] = 0;
}

static void copy_slice(char *dst, const char *p, size_t n) {
    if (n >= COLS_NAME)
        n = COLS_NAME - 1;
    memcpy(dst, p, n);
    dst[n] = 0;
}

/* ===================================== Header recognition =================================== */

/* Time columns are told apart further: a real timestamp, a date, a millisecond offset. */
enum { TK_NONE = 0, TK_TS, TK_DATE, TK_TIMEFRAME };

typedef struct {
    const char *name;  /* normalised header name */
    col_role role;     /* role it plays */
    const char *field; /* canonical field name for side info (NULL: the header itself) */
    int tk;            /* time kind for COL_TS / COL_DATE */
} known_name;

static const known_name known[] = {
    {"user_id", COL_USER, NULL, 0},
    {"userid", COL_USER, NULL, 0},
    {"user", COL_USER, NULL, 0},
    {"uid", COL_USER, NULL, 0},
    {"visitor_id", COL_USER, NULL, 0},
    {"visitorid", COL_USER, NULL, 0},
    {"customer_id", COL_USER, NULL, 0},
    {"用户id", COL_USER, NULL, 0},
    {"session_id", COL_SESSION, NULL, 0},
    {"sessionid", COL_SESSION, NULL, 0},
    {"session", COL_SESSION, NULL, 0},
    {"item_id", COL_ITEM, NULL, 0},
    {"itemid", COL_ITEM, NULL, 0},
    {"item", COL_ITEM, NULL, 0},
    {"iid", COL_ITEM, NULL, 0},
    {"product_id", COL_ITEM, NULL, 0},
    {"movie_id", COL_ITEM, NULL, 0},
    {"商品id", COL_ITEM, NULL, 0},
    {"timestamp", COL_TS, NULL, TK_TS},
    {"ts", COL_TS, NULL, TK_TS},
    {"time", COL_TS, NULL, TK_TS},
    {"datetime", COL_TS, NULL, TK_TS},
    {"event_time", COL_TS, NULL, TK_TS},
    {"时间戳", COL_TS, NULL, TK_TS},
    {"timeframe", COL_TS, NULL, TK_TIMEFRAME},
    {"eventdate", COL_DATE, NULL, TK_DATE},
    {"date", COL_DATE, NULL, TK_DATE},
    {"behaviour", COL_BEHAVIOUR, NULL, 0},
    {"behavior", COL_BEHAVIOUR, NULL, 0},
    {"behavior_type", COL_BEHAVIOUR, NULL, 0},
    {"behaviour_type", COL_BEHAVIOUR, NULL, 0},
    {"event", COL_BEHAVIOUR, NULL, 0},
    {"event_type", COL_BEHAVIOUR, NULL, 0},
    {"action", COL_BEHAVIOUR, NULL, 0},
    {"type", COL_BEHAVIOUR, NULL, 0},
    {"行为类型", COL_BEHAVIOUR, NULL, 0},
    {"rating", COL_VALUE, NULL, 0},
    {"value", COL_VALUE, NULL, 0},
    {"score", COL_VALUE, NULL, 0},
    {"评分", COL_VALUE, NULL, 0},
    {"scene", COL_SCENE, NULL, 0},
    {"channel", COL_SCENE, NULL, 0},
    {"page", COL_SCENE, NULL, 0},
    {"device", COL_CTX, NULL, 0},
    {"platform", COL_CTX, NULL, 0},
    {"os", COL_CTX, NULL, 0},
    {"hour", COL_CTX, NULL, 0},
    {"location", COL_CTX, NULL, 0},
    {"city", COL_CTX, NULL, 0},
    {"country", COL_CTX, NULL, 0},
    {"region", COL_CTX, NULL, 0},
    {"title", COL_ITEM_TEXT, NULL, 0},
    {"name", COL_ITEM_TEXT, NULL, 0},
    {"movie_title", COL_ITEM_TEXT, NULL, 0},
    {"商品名称", COL_ITEM_TEXT, NULL, 0},
    {"brand", COL_ITEM_TAG, "brand", 0},
    {"品牌", COL_ITEM_TAG, "brand", 0},
    {"category", COL_ITEM_TAG, "category", 0},
    {"category_name", COL_ITEM_TAG, "category", 0},
    {"商品类别", COL_ITEM_TAG, "category", 0},
    {"price", COL_ITEM_NUM, "price", 0},
    {"售价", COL_ITEM_NUM, "price", 0},
};

static const known_name *lookup(const char *p, size_t n, char *norm, size_t *len) {
    *len = normalise(p, n, norm, 128);
    if (*len == (size_t)-1)
        return NULL;
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcmp(norm, known[i].name))
            return &known[i];
    return NULL;
}

/* Ids of side entities ("品牌id", "category_id", "brand_id"): ignored quietly. */
static int side_id_name(const char *norm, size_t len) {
    return (len > 3 && !strcmp(norm + len - 3, "_id")) ||
           (len > 2 && !strcmp(norm + len - 2, "id") && (unsigned char)norm[0] >= 0x80);
}

col_role columns_recognise(const char *p, size_t n, char *field, int *side_id) {
    char norm[128];
    size_t len;
    const known_name *k = lookup(p, n, norm, &len);
    *side_id = 0;
    field[0] = 0;
    if (len == (size_t)-1)
        return COL_IGNORE;
    if (!k) {
        *side_id = side_id_name(norm, len);
        copy_name(field, norm);
        return COL_IGNORE;
    }
    copy_name(field, k->field ? k->field : norm);
    return k->role;
}

int columns_any_known(const sq_slice *f, size_t n) {
    char norm[128];
    size_t len;
    for (size_t i = 0; i < n; i++)
        if (lookup(f[i].p, f[i].n, norm, &len))
            return 1;
    return 0;
}

int columns_looks_like_time(const char *p, size_t n) {
    while (n && is_blank(*p)) {
        p++;
        n--;
    }
    while (n && is_blank(p[n - 1]))
        n--;
    if (n >= 10 && p[4] == '-') {
        int64_t t;
        return sq_parse_time(p, n, &t) == 0;
    }
    if (n < 9 || n > 13)
        return 0; /* epoch seconds ≥ 1e8 (1973) up to milliseconds */
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return 0;
    return 1;
}

/* ======================================== --columns ========================================== */

/* One entry of a --columns spec. */
typedef struct {
    col_role role;        /* COL_IGNORE for "-" */
    char name[COLS_NAME]; /* ":NAME" given after the role, or "" */
    const char *hdr;      /* by name: the header name (points into the spec) */
    size_t hdr_n;         /* its length */
} spec_entry;

/* A parsed spec. */
typedef struct {
    int by_name;   /* entries are role=header */
    size_t n;      /* entries */
    spec_entry *e; /* n of them */
} spec;

static int role_named(const char *p, size_t n, const char *name) {
    return strlen(name) == n && !memcmp(p, name, n);
}

/* Parses a role word ("item_tag:brand") into e; returns 0 or -1. */
static int parse_role(const char *p, size_t n, spec_entry *e) {
    const char *colon = memchr(p, ':', n);
    size_t rn = colon ? (size_t)(colon - p) : n;
    e->name[0] = 0;
    static const struct {
        const char *word;
        col_role role;
        int named; /* may carry ":NAME" */
    } roles[] = {
        {"user", COL_USER, 0},
        {"item", COL_ITEM, 0},
        {"ts", COL_TS, 0},
        {"time", COL_TS, 0},
        {"timestamp", COL_TS, 0},
        {"date", COL_DATE, 0},
        {"behaviour", COL_BEHAVIOUR, 0},
        {"behavior", COL_BEHAVIOUR, 0},
        {"scene", COL_SCENE, 0},
        {"value", COL_VALUE, 0},
        {"rating", COL_VALUE, 0},
        {"session", COL_SESSION, 0},
        {"ctx", COL_CTX, 1},
        {"item_text", COL_ITEM_TEXT, 0},
        {"item_tag", COL_ITEM_TAG, 1},
        {"item_num", COL_ITEM_NUM, 1},
        {"user_attr", COL_USER_ATTR, 1},
        {"-", COL_IGNORE, 0},
    };
    for (size_t i = 0; i < sizeof roles / sizeof *roles; i++) {
        if (!role_named(p, rn, roles[i].word))
            continue;
        if (colon) {
            size_t k = n - rn - 1;
            if (!roles[i].named || k == 0 || k >= COLS_NAME)
                return -1;
            copy_slice(e->name, colon + 1, k);
        }
        e->role = roles[i].role;
        return 0;
    }
    return -1;
}

static void spec_free(spec *s) {
    sq_free(s->e);
    s->e = NULL;
    s->n = 0;
}

static void trim_slice(const char **p, size_t *n) {
    while (*n && is_blank(**p)) {
        (*p)++;
        (*n)--;
    }
    while (*n && is_blank((*p)[*n - 1]))
        (*n)--;
}

static sq_status spec_parse(const char *text, spec *s, sq_error *err) {
    memset(s, 0, sizeof *s);
    size_t count = 1;
    for (const char *c = text; *c; c++)
        count += *c == ',';
    if (count > COLS_MAX)
        return sq_errorf(err, SQ_ERR_ARG, "--columns: more than %d entries", COLS_MAX);
    if (!(s->e = sq_calloc(count, sizeof *s->e)))
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    int named = 0, positional = 0, have_user = 0, have_item = 0;
    uint32_t n_ctx = 0, n_tag = 0, n_num = 0, n_attr = 0;
    int single[COL_ROLE_COUNT] = {0};
    const char *p = text;
    for (size_t i = 0; i < count; i++) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        const char *w = p;
        size_t wn = n;
        trim_slice(&w, &wn);
        spec_entry *e = &s->e[i];
        const char *eq = memchr(w, '=', wn);
        size_t rn = eq ? (size_t)(eq - w) : wn;
        const char *r = w;
        trim_slice(&r, &rn);
        if (wn == 0 || parse_role(r, rn, e)) {
            spec_free(s);
            return sq_errorf(err, SQ_ERR_ARG,
                             "--columns: bad entry '%.*s' (roles: user, item, ts, date, "
                             "behaviour, scene, value, session, ctx[:NAME], item_text, "
                             "item_tag[:NAME], item_num[:NAME], user_attr[:NAME], -)",
                             (int)n, p);
        }
        if (eq) {
            named = 1;
            e->hdr = eq + 1;
            e->hdr_n = (size_t)(w + wn - (eq + 1));
            trim_slice(&e->hdr, &e->hdr_n);
            if (e->hdr_n == 0 || e->role == COL_IGNORE) {
                spec_free(s);
                return sq_errorf(err, SQ_ERR_ARG, "--columns: bad entry '%.*s' (want role=NAME)",
                                 (int)n, p);
            }
        } else {
            positional = 1;
        }
        col_role ro = e->role;
        if (ro == COL_USER || ro == COL_SESSION || ro == COL_ITEM || ro == COL_TS ||
            ro == COL_DATE || ro == COL_BEHAVIOUR || ro == COL_VALUE || ro == COL_SCENE ||
            ro == COL_ITEM_TEXT) {
            if (single[ro]++) {
                spec_free(s);
                return sq_errorf(err, SQ_ERR_ARG, "--columns: role in '%.*s' given twice", (int)n,
                                 p);
            }
        }
        have_user |= ro == COL_USER || ro == COL_SESSION;
        have_item |= ro == COL_ITEM;
        n_ctx += ro == COL_CTX;
        n_tag += ro == COL_ITEM_TAG;
        n_num += ro == COL_ITEM_NUM;
        n_attr += ro == COL_USER_ATTR;
        p = c ? c + 1 : p + n;
    }
    s->n = count;
    s->by_name = named;
    const char *why = NULL;
    if (named && positional)
        why = "mixes positional entries and role=NAME entries";
    else if (!have_user)
        why = "maps no user (or session) column";
    else if (!have_item)
        why = "maps no item column";
    else if (n_ctx > SQ_MAX_CTX)
        why = "maps more than 16 ctx columns";
    else if (n_tag > COLS_MAX_TAGS)
        why = "maps more than 8 item_tag columns";
    else if (n_num > COLS_MAX_NUMS)
        why = "maps more than 4 item_num columns";
    else if (n_attr > COLS_MAX_ATTRS)
        why = "maps more than 8 user_attr columns";
    if (why) {
        spec_free(s);
        return sq_errorf(err, SQ_ERR_ARG, "--columns '%s' %s", text, why);
    }
    return SQ_OK;
}

sq_status columns_check(const char *text, sq_error *err) {
    spec s;
    sq_status rc = spec_parse(text, &s, err);
    spec_free(&s);
    return rc;
}

/* ======================================== Plans ============================================== */

/* Lists the header's names into buf for error messages. */
static const char *list_header(const sq_slice *hdr, size_t nh, char *buf, size_t cap) {
    size_t o = 0;
    buf[0] = 0;
    for (size_t i = 0; i < nh && o + 8 < cap; i++) {
        int k = snprintf(buf + o, cap - o, "%s'%.*s'", i ? ", " : "",
                         (int)(hdr[i].n > 40 ? 40 : hdr[i].n), hdr[i].p);
        if (k < 0 || (size_t)k >= cap - o)
            break;
        o += (size_t)k;
    }
    return buf;
}

/* Header column matching a --columns name: exact, then normalised. */
static long find_header(const sq_slice *hdr, size_t nh, const char *name, size_t n) {
    for (size_t i = 0; i < nh; i++) {
        const char *p = hdr[i].p;
        size_t k = hdr[i].n;
        trim_slice(&p, &k);
        if (k == n && !memcmp(p, name, n))
            return (long)i;
    }
    char want[128], have[128];
    if (normalise(name, n, want, sizeof want) == (size_t)-1)
        return -1;
    for (size_t i = 0; i < nh; i++)
        if (normalise(hdr[i].p, hdr[i].n, have, sizeof have) != (size_t)-1 && !strcmp(have, want))
            return (long)i;
    return -1;
}

/* Gives each mapped side/ctx column its builder id; sets the summary flags. */
static sq_status finish_plan(sq_ingest *g, col_plan *pl, const char *file, sq_error *err) {
    for (size_t j = 0; j < pl->nmapped; j++) {
        col_info *c = &pl->col[j];
        switch (c->role) {
        case COL_CTX: {
            uint32_t id;
            sq_status rc = ingest_ctx_field(g, c->field, strlen(c->field), &id);
            if (rc == SQ_ERR_LIMIT) {
                sq_report_log(&g->opts.reporter, SQ_LOG_WARN, "ingest",
                              "%s: column '%s' ignored: at most %d context fields", file, c->field,
                              SQ_MAX_CTX);
                c->role = COL_IGNORE;
                break;
            }
            if (rc)
                return sq_errorf(err, rc, "%s: %s", file, sq_strerror(rc));
            c->id = id;
            if (id + 1 > pl->n_ctx)
                pl->n_ctx = id + 1;
            break;
        }
        case COL_ITEM_TAG:
            if (pl->n_tags >= COLS_MAX_TAGS) {
                c->role = COL_IGNORE;
                break;
            }
            c->id = pl->n_tags++;
            break;
        case COL_ITEM_NUM: {
            uint32_t id;
            sq_status rc = pl->n_nums >= COLS_MAX_NUMS ? SQ_ERR_LIMIT
                                                       : ingest_item_num_field(g, c->field, &id);
            if (rc == SQ_ERR_LIMIT) {
                sq_report_log(&g->opts.reporter, SQ_LOG_WARN, "ingest",
                              "%s: column '%s' ignored: at most %d numeric item attributes", file,
                              c->field, SQ_MAX_ITEM_NUM);
                c->role = COL_IGNORE;
                break;
            }
            if (rc)
                return sq_errorf(err, rc, "%s: %s", file, sq_strerror(rc));
            c->id = pl->n_nums++;
            c->bid = id;
            break;
        }
        case COL_USER_ATTR:
            if (pl->n_attrs >= COLS_MAX_ATTRS) {
                c->role = COL_IGNORE;
                break;
            }
            pl->n_attrs++;
            break;
        case COL_TS:
        case COL_DATE:
            pl->has_time = 1;
            break;
        case COL_VALUE:
            pl->has_value = 1;
            break;
        case COL_SESSION:
            pl->has_session = 1;
            break;
        default:
            break;
        }
    }
    return SQ_OK;
}

/* Roles of a header without --columns. */
static sq_status plan_from_header(sq_ingest *g, col_plan *pl, const char *file, const sq_slice *hdr,
                                  size_t nh, sq_error *err) {
    long user = -1, session = -1, item = -1, ts = -1, date = -1, tf = -1;
    int first[COL_ROLE_COUNT] = {0};
    int nctx = 0;
    for (size_t j = 0; j < nh; j++) {
        char norm[128];
        size_t len;
        const known_name *k = lookup(hdr[j].p, hdr[j].n, norm, &len);
        col_info *c = &pl->col[j];
        c->role = COL_IGNORE;
        if (len == (size_t)-1)
            copy_slice(c->field, hdr[j].p, hdr[j].n);
        else
            copy_name(c->field, norm);
        if (!k) {
            const char *hp = hdr[j].p; /* messages name the column as the file spells it */
            size_t hn = hdr[j].n;
            trim_slice(&hp, &hn);
            copy_slice(c->field, hp, hn);
            if (len != (size_t)-1 && len > 0 && side_id_name(norm, len))
                sq_report_log(&g->opts.reporter, SQ_LOG_INFO, "ingest",
                              "%s: column '%s' (an id of a side entity) ignored; map it with "
                              "--columns",
                              file, c->field);
            else if (len != 0)
                sq_report_log(&g->opts.reporter, SQ_LOG_WARN, "ingest",
                              "%s: column '%s' ignored; map it with --columns", file, c->field);
            continue;
        }
        if (k->field)
            copy_name(c->field, k->field);
        col_role ro = k->role;
        long *slot = ro == COL_USER          ? &user
                     : ro == COL_SESSION     ? &session
                     : ro == COL_ITEM        ? &item
                     : k->tk == TK_TS        ? &ts
                     : k->tk == TK_DATE      ? &date
                     : k->tk == TK_TIMEFRAME ? &tf
                                             : NULL;
        if (slot) {
            if (*slot < 0)
                *slot = (long)j;
            else
                sq_report_log(&g->opts.reporter, SQ_LOG_WARN, "ingest",
                              "%s: column '%s' ignored: another column already gives the %s", file,
                              c->field, ro == COL_ITEM ? "item" : "same role");
            continue;
        }
        if (ro == COL_BEHAVIOUR || ro == COL_VALUE || ro == COL_SCENE || ro == COL_ITEM_TEXT) {
            if (first[ro]++) {
                sq_report_log(&g->opts.reporter, SQ_LOG_WARN, "ingest",
                              "%s: column '%s' ignored: another column already gives it", file,
                              c->field);
                continue;
            }
        }
        if (ro == COL_CTX && ++nctx > SQ_MAX_CTX)
            continue;
        c->role = ro;
    }
    char list[400];
    if (user < 0 && session < 0)
        return sq_errorf(err, SQ_ERR_PARSE,
                         "%s: no user column in the header (%s); name it user_id (or "
                         "session_id), or map it with --columns user=NAME",
                         file, list_header(hdr, nh, list, sizeof list));
    if (item < 0)
        return sq_errorf(err, SQ_ERR_PARSE,
                         "%s: no item column in the header (%s); name it item_id, or map it "
                         "with --columns item=NAME",
                         file, list_header(hdr, nh, list, sizeof list));
    if (session >= 0) {
        pl->col[session].role = COL_SESSION;
        if (user >= 0)
            sq_report_log(&g->opts.reporter, SQ_LOG_INFO, "ingest",
                          "%s: column '%s' ignored: sessions ('%s') are the sequences", file,
                          pl->col[user].field, pl->col[session].field);
    } else {
        pl->col[user].role = COL_USER;
    }
    pl->col[item].role = COL_ITEM;
    if (ts >= 0) {
        pl->col[ts].role = COL_TS;
    } else if (date >= 0) {
        pl->col[date].role = COL_DATE;
        if (tf >= 0)
            pl->col[tf].role = COL_TS; /* milliseconds after the date */
    } else if (tf >= 0) {
        sq_report_log(&g->opts.reporter, SQ_LOG_WARN, "ingest",
                      "%s: column 'timeframe' ignored: an offset without a date column", file);
    }
    if (ts < 0 && date < 0)
        sq_report_log(&g->opts.reporter, SQ_LOG_INFO, "ingest",
                      "%s: no time column: file order is time order", file);
    return SQ_OK;
}

/* Roles of a header-less file from its first row. */
static void plan_guess(sq_ingest *g, col_plan *pl, const char *file, const sq_slice *f, size_t n) {
    static const char *names[COL_ROLE_COUNT] = {[COL_IGNORE] = "-",
                                                [COL_USER] = "user",
                                                [COL_ITEM] = "item",
                                                [COL_TS] = "ts",
                                                [COL_VALUE] = "value"};
    pl->col[0].role = COL_USER;
    pl->col[1].role = COL_ITEM;
    if (n == 3) {
        double v;
        if (columns_looks_like_time(f[2].p, f[2].n))
            pl->col[2].role = COL_TS;
        else if (!sq_parse_double(f[2].p, f[2].n, &v))
            pl->col[2].role = COL_VALUE;
    } else if (n >= 4) {
        double v;
        if (!sq_parse_double(f[2].p, f[2].n, &v))
            pl->col[2].role = COL_VALUE;
        if (columns_looks_like_time(f[3].p, f[3].n))
            pl->col[3].role = COL_TS;
    }
    char buf[200];
    size_t o = 0;
    for (size_t j = 0; j < n && j < 8 && o + 16 < sizeof buf; j++)
        o +=
            (size_t)snprintf(buf + o, sizeof buf - o, "%s%s", j ? "," : "", names[pl->col[j].role]);
    sq_report_log(&g->opts.reporter, SQ_LOG_INFO, "ingest",
                  "%s: no header; columns read as %s%s (map them with --columns)", file, buf,
                  n > 8 ? ",..." : "");
}

sq_status columns_plan(sq_ingest *g, col_plan *pl, const char *file, const sq_slice *hdr, size_t nh,
                       int have_header, sq_error *err) {
    memset(pl, 0, sizeof *pl);
    if (nh > COLS_MAX)
        return sq_errorf(err, SQ_ERR_LIMIT, "%s: %zu columns, at most %d are supported", file, nh,
                         COLS_MAX);
    sq_status rc = SQ_OK;
    if (g->opts.columns) {
        spec s;
        if ((rc = spec_parse(g->opts.columns, &s, err)))
            return rc;
        if (s.by_name && !have_header) {
            spec_free(&s);
            return sq_errorf(err, SQ_ERR_PARSE,
                             "%s: --columns maps header names but the file has no header "
                             "line; give the columns by position (user,item,-,ts)",
                             file);
        }
        if (s.by_name) {
            pl->ncols = pl->nmapped = nh;
            for (size_t j = 0; j < nh; j++)
                copy_slice(pl->col[j].field, hdr[j].p, hdr[j].n);
            for (size_t i = 0; i < s.n; i++) {
                spec_entry *e = &s.e[i];
                long j = find_header(hdr, nh, e->hdr, e->hdr_n);
                char list[400];
                if (j < 0) {
                    rc = sq_errorf(err, SQ_ERR_PARSE,
                                   "%s: --columns: no column named '%.*s' in the header (%s)", file,
                                   (int)e->hdr_n, e->hdr, list_header(hdr, nh, list, sizeof list));
                    break;
                }
                if (pl->col[j].role != COL_IGNORE) {
                    rc = sq_errorf(err, SQ_ERR_ARG, "--columns: column '%.*s' mapped twice",
                                   (int)e->hdr_n, e->hdr);
                    break;
                }
                pl->col[j].role = e->role;
                if (e->name[0])
                    copy_name(pl->col[j].field, e->name);
                else {
                    char norm[128];
                    if (normalise(hdr[j].p, hdr[j].n, norm, sizeof norm) != (size_t)-1)
                        copy_name(pl->col[j].field, norm);
                }
            }
        } else {
            if (have_header && s.n > nh) {
                rc = sq_errorf(err, SQ_ERR_PARSE,
                               "%s: --columns lists %zu columns but the header has %zu", file, s.n,
                               nh);
            } else {
                pl->ncols = have_header ? nh : s.n;
                pl->nmapped = s.n;
                for (size_t j = 0; j < s.n; j++) {
                    col_info *c = &pl->col[j];
                    c->role = s.e[j].role;
                    if (s.e[j].name[0])
                        copy_name(c->field, s.e[j].name);
                    else if (have_header) {
                        char norm[128];
                        if (normalise(hdr[j].p, hdr[j].n, norm, sizeof norm) != (size_t)-1)
                            copy_name(c->field, norm);
                    } else {
                        snprintf(c->field, sizeof c->field, "col%zu", j + 1);
                    }
                }
            }
        }
        spec_free(&s);
        if (rc)
            return rc;
    } else if (have_header) {
        pl->ncols = pl->nmapped = nh;
        if ((rc = plan_from_header(g, pl, file, hdr, nh, err)))
            return rc;
    } else {
        if (nh < 2)
            return sq_errorf(err, SQ_ERR_PARSE,
                             "%s: the first line has %zu field%s: need at least user and item "
                             "(or map the columns with --columns)",
                             file, nh, nh == 1 ? "" : "s");
        pl->ncols = pl->nmapped = nh;
        plan_guess(g, pl, file, hdr, nh);
    }
    return finish_plan(g, pl, file, err);
}

void columns_row_template(const col_plan *pl, sq_row *r) {
    r->tkind = pl->has_time ? TIME_TEXT : TIME_ORDER;
    r->n_item_tag = pl->n_tags;
    r->n_item_num = pl->n_nums;
    r->n_ctx = pl->n_ctx;
    for (size_t j = 0; j < pl->nmapped; j++) {
        const col_info *c = &pl->col[j];
        if (c->role == COL_ITEM_TAG)
            r->item_tag_field[c->id] = c->field;
        else if (c->role == COL_ITEM_NUM)
            r->item_num_id[c->id] = c->bid;
    }
}

void columns_fill_row(const col_plan *pl, const sq_slice *f, size_t n, sq_row *r) {
    size_t m = pl->nmapped < n ? pl->nmapped : n;
    for (size_t j = 0; j < m; j++) {
        const col_info *c = &pl->col[j];
        switch (c->role) {
        case COL_USER:
            r->user = f[j];
            break;
        case COL_SESSION:
            r->session = f[j];
            break;
        case COL_ITEM:
            r->item = f[j];
            break;
        case COL_TS:
            r->ts = f[j];
            break;
        case COL_DATE:
            r->date = f[j];
            break;
        case COL_BEHAVIOUR:
            r->behaviour = f[j];
            break;
        case COL_VALUE:
            r->value = f[j];
            break;
        case COL_SCENE:
            r->scene = f[j];
            break;
        case COL_CTX:
            r->ctx[c->id] = f[j];
            break;
        case COL_ITEM_TEXT:
            r->item_text = f[j];
            break;
        case COL_ITEM_TAG:
            r->item_tag[c->id] = f[j];
            break;
        case COL_ITEM_NUM:
            r->item_num[c->id] = f[j];
            break;
        default:
            break;
        }
    }
}

sq_status columns_user_attrs(sq_ingest *g, const col_plan *pl, const sq_slice *f, size_t n,
                             sq_slice user) {
    for (size_t j = 0; j < pl->nmapped && j < n; j++) {
        if (pl->col[j].role != COL_USER_ATTR)
            continue;
        sq_status rc = ingest_add_user_attr(g, user, pl->col[j].field, f[j]);
        if (rc && rc != SQ_ERR_LIMIT)
            return rc;
    }
    return SQ_OK;
}
