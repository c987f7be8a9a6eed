/* generate.c — sq_generate: a synthetic event log with planted, known structure, so that tests
 * can check that models learn it and benchmarks can make logs of any size.
 *
 * The world (every number below is a constant of this file; docs/generator.md has the table):
 *
 *  1. Items 0..items-1 fall into C clusters (C = clusters, or round(sqrt(items))): item i is in
 *     cluster i % C and is member number i / C of it. Within a cluster popularity is Zipf-like:
 *     member k has weight 1 / (k + 1), so overall popularity is long-tailed.
 *  2. Every item has 3 strong successors, other members of its cluster picked by a hash of
 *     (seed, item), Zipf-like by member rank (sq_gen_successors tells them). A step of a
 *     session follows successor 0, 1, 2 with probability 0.35, 0.21, 0.14 (P_FOLLOW = 0.70 in
 *     all); with 0.05 it switches cluster (half to another preferred cluster, half to any) and
 *     draws by popularity there; otherwise it draws by popularity in the current cluster.
 *  3. Every user has 1-3 preferred clusters (affinity 1.0, 0.7, 0.5 by rank; 0 elsewhere), each
 *     drawn half the time Zipf-like over cluster numbers and half uniformly (low-numbered
 *     clusters are the popular categories), and a primary device (mobile 55%, desktop 35%,
 *     tablet 10%). A session starts in a preferred cluster (the first most often) or, 10% of
 *     the time, in a random one, and uses the primary device 80% of the time. It has
 *     1 + Geometric views (mean 5, at most 50), 10 s + Exp(50 s) apart; sessions are
 *     30 min + Exp(36 h) apart (the mean shrinks for users with more than ~2,400 events, so
 *     that a log spans about two years at most); a user's first session starts in the 30 days
 *     after t0.
 *  4. Funnel (formats with a behaviour column): every step is a view (behaviour 0). After it the
 *     next stage follows with probability rate(stage, scene) × device × hour × taste, capped at
 *     0.95, each stage a separate event 1-30 s after the previous one, on the same item, scene
 *     and device. Stage 1 (cart) rates by scene: home 0.05, search 0.15, detail 0.25; later
 *     stages (buy): 0.20, 0.30, 0.40; extra scenes s ≥ 3: 0.05 + 0.02 (s % 11) and
 *     0.20 + 0.02 (s % 11). Device: mobile ×0.7, desktop ×1.3, tablet ×1.0. Hour: 18-23 ×1.25,
 *     0-5 ×0.75. Taste: item in a preferred cluster ×1.3, else ×0.6.
 *  5. Scene of a view: after a followed successor home 0.2, search 0.2, detail 0.6; otherwise
 *     home 0.45, search 0.45, detail 0.1; scenes beyond the third weigh 0.05 each.
 *  6. Value: the rating the user gives the item, round(1.8 + 2.6 affinity + 0.7 quality +
 *     0.6 N(0,1)) clamped to 1..5, quality in [-1, 1) hashed from (seed, item). The same on
 *     every funnel stage of a view.
 *  7. Event counts: every user gets 3 events (or events / users when there are fewer than
 *     3 per user) plus a share of the rest proportional to a log-normal(0, 1) weight; the total
 *     is exactly `events`.
 *
 * MovieLens and plain output have no behaviour column: the funnel is off and every event is a
 * view (a rating in ratings.dat). Users are written in order 0, 1, 2…, each user's events in
 * time order. Determinism: one RNG stream for the plan (event counts) and one per user, all
 * derived from the seed; nothing depends on time, addresses or thread count. */
#define _POSIX_C_SOURCE 200809L
#include "data/gen.h"

#include <math.h>
#include <string.h>
#include <strings.h>

#ifdef __clang__
/* Fused multiply-add would change the draws' arithmetic between compilers. GCC in ISO C mode
 * never contracts. */
#pragma STDC FP_CONTRACT OFF
#endif

enum {
    T0_DEFAULT = 1704067200,   /* 2024-01-01T00:00:00Z */
    GAP_SESSION_MEAN = 129600, /* plus an exponential with this mean (1.5 days) */
    SPAN_TARGET = 730 * 86400, /* a very active user's log spans about this at most */
    FUNNEL_GAP = 30,           /* a funnel stage comes 1..FUNNEL_GAP s after the previous */
};
static const int64_t T0_MAX = 4102444800; /* 2100-01-01: ingest's default upper bound */

#define P_SWITCH 0.05                                    /* a step changes cluster */
#define P_EXPLORE 0.10                                   /* a session starts in a random cluster */
static const double FOLLOW_CUM[3] = {0.5, 0.8, 1.0};     /* successor choice, cumulative */
static const double AFFINITY[3] = {1.0, 0.7, 0.5};       /* by preferred-cluster rank */
static const double DEVICE_SHARE[3] = {0.55, 0.90, 1.0}; /* primary device, cumulative */
static const double DEVICE_MULT[GEN_DEVICES] = {0.7, 1.3, 1.0};
#define TASTE_IN 1.3  /* conversion factor for items of a preferred cluster */
#define TASTE_OUT 0.6 /* and for the others */

/* ====================================== Options ============================================== */

/* Case-insensitive suffix test on the first n bytes of s. */
static int has_suffix(const char *s, size_t n, const char *suf) {
    size_t k = strlen(suf);
    return n >= k && strncasecmp(s + n - k, suf, k) == 0;
}

/* Length of path without a ".gz" ending. */
static size_t stem_len(const char *path) {
    size_t n = strlen(path);
    return has_suffix(path, n, ".gz") ? n - 3 : n;
}

static sq_format format_from_name(const char *path) {
    size_t n = stem_len(path);
    if (has_suffix(path, n, ".csv"))
        return SQ_FMT_CSV;
    if (has_suffix(path, n, ".tsv"))
        return SQ_FMT_TSV;
    if (has_suffix(path, n, ".jsonl") || has_suffix(path, n, ".json"))
        return SQ_FMT_JSONL;
    if (has_suffix(path, n, ".dat"))
        return SQ_FMT_MOVIELENS;
    if (has_suffix(path, n, ".inter"))
        return SQ_FMT_RECBOLE;
    if (has_suffix(path, n, ".txt"))
        return SQ_FMT_PLAIN;
    return SQ_FMT_AUTO;
}

static sq_status parse_behaviours(gen_cfg *c, const char *list, sq_error *err) {
    const char *p = list ? list : "view,cart,buy";
    c->vocab.n_beh = 0;
    for (;;) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n > GEN_NAME_MAX)
            return sq_errorf(err, SQ_ERR_ARG, "behaviours '%s': names must have 1 to %d characters",
                             list, GEN_NAME_MAX);
        for (size_t i = 0; i < n; i++) {
            char ch = p[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
                return sq_errorf(err, SQ_ERR_ARG,
                                 "behaviours '%s': names may use letters, digits, '_' and '-' only",
                                 list);
        }
        if (c->vocab.n_beh == GEN_MAX_BEHAVIOURS)
            return sq_errorf(err, SQ_ERR_ARG, "behaviours '%s': at most %d funnel stages", list,
                             GEN_MAX_BEHAVIOURS);
        char *dst = c->beh_buf[c->vocab.n_beh];
        memcpy(dst, p, n);
        dst[n] = 0;
        c->vocab.beh[c->vocab.n_beh++] = (gen_name){dst, (uint32_t)n};
        if (!p[n])
            return SQ_OK;
        p += n + 1;
    }
}

static sq_status resolve(const sq_gen_opts *o, const char *path, gen_cfg *c, sq_error *err) {
    memset(c, 0, sizeof *c);
    if (!o || !path || !*path)
        return sq_errorf(err, SQ_ERR_ARG, "generate: options and an output path are needed");
    if (o->users < 1)
        return sq_errorf(err, SQ_ERR_ARG, "generate: users must be at least 1");
    if (o->items < 1)
        return sq_errorf(err, SQ_ERR_ARG, "generate: items must be at least 1");
    if (o->events < 1)
        return sq_errorf(err, SQ_ERR_ARG, "generate: events must be at least 1");
    if (o->clusters > o->items)
        return sq_errorf(err, SQ_ERR_ARG, "generate: clusters (%u) must not exceed items (%u)",
                         o->clusters, o->items);
    if (o->scenes > GEN_MAX_SCENES)
        return sq_errorf(err, SQ_ERR_ARG, "generate: scenes (%u) must be at most %d", o->scenes,
                         GEN_MAX_SCENES);
    if (o->t0 < 0 || o->t0 > T0_MAX)
        return sq_errorf(err, SQ_ERR_ARG, "generate: t0 (%lld) must be in 0..%lld",
                         (long long)o->t0, (long long)T0_MAX);
    sq_status rc = parse_behaviours(c, o->behaviours, err);
    if (rc)
        return rc;
    sq_format f = o->format;
    if ((unsigned)f > SQ_FMT_PLAIN)
        return sq_errorf(err, SQ_ERR_ARG, "generate: unknown format %d", (int)f);
    if (f == SQ_FMT_AUTO && (f = format_from_name(path)) == SQ_FMT_AUTO)
        return sq_errorf(err, SQ_ERR_ARG,
                         "%s: cannot tell the format from the name (use .csv, .tsv, .jsonl, "
                         ".dat, .inter or .txt, optionally with .gz, or set the format)",
                         path);
    c->vocab.format = f;
    c->funnel = f != SQ_FMT_MOVIELENS && f != SQ_FMT_PLAIN;
    if ((unsigned)o->funnel > SQ_GEN_FUNNEL_REALISTIC)
        return sq_errorf(err, SQ_ERR_ARG, "generate: unknown funnel %d", (int)o->funnel);
    c->realistic = o->funnel == SQ_GEN_FUNNEL_REALISTIC;
    if (c->realistic && (!c->funnel || c->vocab.n_beh < 2))
        return sq_errorf(err, SQ_ERR_ARG,
                         "generate: the realistic funnel needs at least 2 behaviours and a format "
                         "with a behaviour column (csv, tsv, jsonl, recbole)");
    if (o->oracle && !c->realistic)
        return sq_errorf(err, SQ_ERR_ARG, "generate: an oracle file needs the realistic funnel");
    if (o->oracle && (!*o->oracle || !strcmp(o->oracle, path)))
        return sq_errorf(err, SQ_ERR_ARG, "generate: the oracle file needs a name of its own");
    c->oracle = o->oracle;
    c->gzip = o->gzip || has_suffix(path, strlen(path), ".gz");
    c->seed = o->seed;
    c->events = o->events;
    c->users = o->users;
    c->items = o->items;
    c->clusters = gen_resolve_clusters(o);
    c->vocab.n_scenes = o->scenes ? o->scenes : 3;
    c->t0 = o->t0 ? o->t0 : T0_DEFAULT;
    return SQ_OK;
}

/* ========================================= Draws ============================================= */

/* First index whose cumulative weight exceeds u (u < cdf[n - 1]). */
static uint32_t cdf_find(const double *cdf, uint32_t n, double u) {
    uint32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* An item of cluster cl by popularity. */
static uint32_t pop_draw(const gen_world *w, sq_rng *r, uint32_t cl) {
    uint32_t C = w->c->clusters, m = gen_cluster_size(w->c->items, C, cl);
    uint32_t k = cdf_find(w->pop_cdf, m, sq_rng_uniform(r) * w->pop_cdf[m - 1]);
    return cl + k * C;
}

/* A rank in [0, n) with P(k) ∝ ln((k + 2) / (k + 1)) ≈ 1 / (k + 1): Zipf-like, no table. */
static uint32_t log_uniform(sq_rng *r, uint32_t n) {
    uint32_t k = (uint32_t)exp(sq_rng_uniform(r) * log((double)n)) - 1;
    return k < n ? k : n - 1;
}

int64_t gen_exp_draw(sq_rng *r, double mean) {
    return (int64_t)(-mean * log(1.0 - sq_rng_uniform(r)));
}

void gen_user_draw(const gen_world *w, sq_rng *r, gen_user *g) {
    uint32_t C = w->c->clusters;
    g->np = 1 + sq_rng_below(r, 3);
    if (g->np > C)
        g->np = C;
    for (uint32_t i = 0; i < g->np; i++) {
        uint32_t dup;
        do {
            g->pref[i] = sq_rng_uniform(r) < 0.5 ? log_uniform(r, C) : sq_rng_below(r, C);
            dup = 0;
            for (uint32_t j = 0; j < i; j++)
                dup |= g->pref[j] == g->pref[i];
        } while (dup);
    }
    double x = sq_rng_uniform(r);
    g->primary = x < DEVICE_SHARE[0] ? 0 : x < DEVICE_SHARE[1] ? 1 : 2;
}

double gen_affinity(const gen_user *g, uint32_t cl) {
    double aff = 0;
    for (uint32_t j = 0; j < g->np; j++)
        if (g->pref[j] == cl)
            aff = AFFINITY[j];
    return aff;
}

uint8_t gen_value(const gen_world *w, sq_rng *r, double aff, uint32_t item) {
    double rating =
        1.8 + 2.6 * aff + 0.7 * gen_item_quality(w->c->seed, item) + 0.6 * sq_rng_normal(r);
    long rv = lround(rating);
    return (uint8_t)(rv < 1 ? 1 : rv > 5 ? 5 : rv);
}

uint8_t gen_session_device(sq_rng *r, const gen_user *g) {
    return sq_rng_uniform(r) < 0.8 ? g->primary : (uint8_t)sq_rng_below(r, GEN_DEVICES);
}

uint32_t gen_session_item(const gen_world *w, sq_rng *r, const gen_user *g, uint32_t *cl) {
    if (sq_rng_uniform(r) < P_EXPLORE) {
        *cl = sq_rng_below(r, w->c->clusters);
    } else {
        double x = sq_rng_uniform(r);
        *cl = g->pref[g->np == 1 || x < 0.6 ? 0 : g->np == 2 || x < 0.85 ? 1 : 2];
    }
    return pop_draw(w, r, *cl);
}

uint32_t gen_walk(const gen_world *w, sq_rng *r, const gen_user *g, uint32_t item, uint32_t *cl,
                  int *followed) {
    double x = sq_rng_uniform(r);
    *followed = x < SQ_GEN_P_FOLLOW;
    if (*followed) {
        double y = x / SQ_GEN_P_FOLLOW;
        int k = y < FOLLOW_CUM[0] ? 0 : y < FOLLOW_CUM[1] ? 1 : 2;
        return w->succ[(size_t)item * SQ_GEN_SUCCESSORS + k];
    }
    if (x < SQ_GEN_P_FOLLOW + P_SWITCH)
        *cl = sq_rng_uniform(r) < 0.5 ? sq_rng_below(r, w->c->clusters)
                                      : g->pref[sq_rng_below(r, g->np)];
    return pop_draw(w, r, *cl);
}

uint16_t gen_scene_draw(const gen_world *w, sq_rng *r, int row) {
    uint32_t S = w->c->vocab.n_scenes;
    const double *cdf = w->scene_cdf + (size_t)row * S;
    return (uint16_t)cdf_find(cdf, S, sq_rng_uniform(r) * cdf[S - 1]);
}

double gen_rate_mult(uint8_t device, uint8_t hour, double aff) {
    return DEVICE_MULT[device] * (aff > 0 ? TASTE_IN : TASTE_OUT) *
           (hour >= 18 ? 1.25
            : hour < 6 ? 0.75
                       : 1.0);
}

double gen_gap_mean(uint64_t left) {
    /* About left / 5 sessions: very active users get shorter gaps, so that their log spans at
     * most about SPAN_TARGET instead of running into the next century. */
    double gap_mean = (double)SPAN_TARGET / (double)(left / 5 + 1);
    return gap_mean > GAP_SESSION_MEAN ? GAP_SESSION_MEAN : gap_mean;
}

/* ======================================= Simulation ========================================== */

void gen_emit(gen_emitter *em, const gen_event *e) {
    gen_write_event(em->sink, em->vocab, e);
    if ((++em->done & 0xFFFF) == 0)
        sq_report_progress(em->rep, "generating", em->done, em->total, "events");
}

/* The strictly ordered funnel: view, then each further stage on the same item or none. */
static void sim_user(const gen_world *w, uint32_t u, gen_emitter *em) {
    const gen_cfg *c = w->c;
    uint64_t left = w->len[u];
    if (!left)
        return;
    uint32_t S = c->vocab.n_scenes;
    sq_rng r = sq_rng_derive(c->seed, (uint64_t)u + 1);
    gen_user g;
    gen_user_draw(w, &r, &g);
    int64_t t = c->t0 + sq_rng_below(&r, GEN_START_SPREAD);
    double gap_mean = gen_gap_mean(left);
    gen_event e = {.user = u};
    while (left) {
        e.device = gen_session_device(&r, &g);
        uint32_t views = 1;
        while (views < GEN_SESSION_MAX && sq_rng_uniform(&r) < GEN_SESSION_CONT)
            views++;
        uint32_t cl, item = gen_session_item(w, &r, &g, &cl);
        int followed = 0;
        for (uint32_t v = 0; v < views && left; v++) {
            if (v > 0) {
                item = gen_walk(w, &r, &g, item, &cl, &followed);
                t += GEN_GAP_VIEW_MIN + gen_exp_draw(&r, GEN_GAP_VIEW_MEAN);
            }
            double aff = gen_affinity(&g, item % c->clusters);
            e.value = gen_value(w, &r, aff, item);
            e.item = item;
            e.ts = t;
            e.hour = (uint8_t)((t % 86400) / 3600);
            e.scene = gen_scene_draw(w, &r, followed ? 0 : 1);
            e.beh = 0;
            gen_emit(em, &e);
            left--;
            if (!c->funnel)
                continue;
            double mult = gen_rate_mult(e.device, e.hour, aff);
            for (uint32_t st = 1; st < c->vocab.n_beh && left; st++) {
                double p = w->rate[(st > 1 ? S : 0) + e.scene] * mult;
                if (sq_rng_uniform(&r) >= (p < GEN_P_MAX ? p : GEN_P_MAX))
                    break;
                t += 1 + sq_rng_below(&r, FUNNEL_GAP);
                e.ts = t;
                e.hour = (uint8_t)((t % 86400) / 3600);
                e.beh = (uint8_t)st;
                gen_emit(em, &e);
                left--;
            }
        }
        t += GEN_GAP_SESSION_MIN + gen_exp_draw(&r, gap_mean);
    }
}

/* ======================================= Side files ========================================== */

/* Side file beside path for the format, or NULL when there is none; *out is sq_malloc'd. */
static sq_status side_path(const gen_cfg *c, const char *path, char **out, sq_error *err) {
    *out = NULL;
    size_t n = stem_len(path);
    const char *want = NULL;
    size_t keep = 0;
    if (c->vocab.format == SQ_FMT_MOVIELENS && has_suffix(path, n, ".dat")) {
        const char *slash = strrchr(path, '/');
        keep = slash ? (size_t)(slash - path) + 1 : 0;
        if (n - keep == 10 && !strncasecmp(path + keep, "movies.dat", 10))
            return sq_errorf(err, SQ_ERR_ARG, "%s: the ratings file cannot be named movies.dat",
                             path);
        want = "movies.dat";
    } else if (c->vocab.format == SQ_FMT_RECBOLE && has_suffix(path, n, ".inter")) {
        keep = n - 6;
        want = ".item";
    } else {
        return SQ_OK;
    }
    if (!(*out = sq_malloc(keep + strlen(want) + 1)))
        return sq_errorf(err, SQ_ERR_NOMEM, "generate: out of memory");
    memcpy(*out, path, keep);
    strcpy(*out + keep, want);
    return SQ_OK;
}

/* ========================================== Driver =========================================== */

sq_status sq_generate(const sq_gen_opts *o, const char *path, sq_error *err) {
    gen_cfg c;
    sq_status rc = resolve(o, path, &c, err);
    if (rc)
        return rc;
    char *side = NULL;
    gen_world w = {0};
    gen_sink main_out = {0}, side_out = {0}, oracle_out = {0};
    if ((rc = side_path(&c, path, &side, err)) || (rc = gen_world_build(&w, &c, err)))
        goto done;
    c.vocab.scene = w.scene;
    if ((rc = gen_sink_open(&main_out, path, c.gzip, err)))
        goto done;
    if (side) {
        if ((rc = gen_sink_open(&side_out, side, 0, err)))
            goto done;
        gen_write_items(&side_out, &c);
    }
    if (c.oracle) {
        if ((rc = gen_sink_open(&oracle_out, c.oracle, 0, err)))
            goto done;
        gen_write_oracle_header(&oracle_out, &c.vocab);
    }
    gen_write_header(&main_out, &c.vocab);
    gen_emitter em = {&main_out, c.oracle ? &oracle_out : NULL, &c.vocab, &o->reporter, 0,
                      c.events};
    sq_report_progress(em.rep, "generating", 0, em.total, "events");
    for (uint32_t u = 0; u < c.users; u++) {
        if (c.realistic)
            gen_sim_user_realistic(&w, u, &em);
        else
            sim_user(&w, u, &em);
    }
    if (em.done != c.events) {
        rc = sq_errorf(err, SQ_ERR_INTERNAL, "generate: wrote %llu events instead of %llu",
                       (unsigned long long)em.done, (unsigned long long)c.events);
        goto done;
    }
    sq_report_progress(em.rep, "generating", em.done, em.total, "events");
    /* The side file first: a log is never left without the items it names. */
    if ((side && (rc = gen_sink_commit(&side_out, err))) ||
        (c.oracle && (rc = gen_sink_commit(&oracle_out, err))))
        goto done;
    rc = gen_sink_commit(&main_out, err);
done:
    gen_sink_abort(&main_out);
    gen_sink_abort(&oracle_out);
    gen_sink_abort(&side_out);
    gen_world_free(&w);
    sq_free(side);
    return rc;
}
