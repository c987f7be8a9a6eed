/* gen_world.c — the planted ground truth of the synthetic log and the tables the simulation
 * draws from: strong successors, item quality, popularity, scene weights and conversion rates,
 * events per user, and the item side file (titles and tags). The model itself is described at
 * the top of generate.c and in docs/generator.md.
 *
 * Every per-item fact (successors, quality, title words, tags) is a pure function of
 * (seed, item) through a 64-bit hash, so that sq_gen_successors and friends answer without
 * generating anything and always agree with the log. */
#define _POSIX_C_SOURCE 200809L
#include "data/gen.h"

#include <math.h>
#include <string.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* as in generate.c: the same arithmetic with every compiler */
#endif

static const double RATE1[3] = {0.05, 0.15, 0.25}; /* stage 1 by scene */
static const double RATE2[3] = {0.20, 0.30, 0.40}; /* later stages by scene */
/* Scene of a step: after a followed successor, another view, a revisit of a carted item. */
static const double SCENE_W[3][3] = {{0.2, 0.2, 0.6}, {0.45, 0.45, 0.1}, {0.5, 0.2, 0.3}};
#define SCENE_W_EXTRA 0.05 /* weight of each scene beyond the third */

/* ================================== Planted ground truth ===================================== */

uint32_t gen_resolve_clusters(const sq_gen_opts *o) {
    uint32_t items = o->items ? o->items : 1;
    uint32_t c = o->clusters;
    if (c == 0)
        c = (uint32_t)floor(sqrt((double)items) + 0.5);
    if (c < 1)
        c = 1;
    return c > items ? items : c;
}

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A pure function of (seed, a, b): the source of every per-item fact. */
uint64_t gen_hash3(uint64_t seed, uint64_t a, uint64_t b) {
    return mix64(seed ^ mix64(a * 0x9E3779B97F4A7C15ull + b * 0xD1B54A32D192ED03ull + 1));
}

static void successors(uint64_t seed, uint32_t items, uint32_t C, uint32_t item,
                       uint32_t out[SQ_GEN_SUCCESSORS]) {
    uint32_t c = item % C, self = item / C, m = gen_cluster_size(items, C, c);
    uint32_t got = 0;
    if (m == 1) {
        for (; got < SQ_GEN_SUCCESSORS; got++)
            out[got] = item;
        return;
    }
    int distinct = m - 1 >= SQ_GEN_SUCCESSORS; /* else some successors repeat */
    for (uint32_t j = 0; got < SQ_GEN_SUCCESSORS && j < 64; j++) {
        /* Log-uniform rank: P(k) ∝ ln((k + 2) / (k + 1)) ≈ 1 / (k + 1), Zipf-like as
         * popularity, so that walks keep the long tail. */
        double u = (double)(gen_hash3(seed, item, j) >> 11) * 0x1.0p-53;
        uint32_t k = (uint32_t)exp(u * log((double)m)) - 1, dup = 0;
        if (k >= m)
            k = m - 1;
        for (uint32_t g = 0; g < got; g++)
            dup |= out[g] == c + k * C;
        if (k != self && !(dup && distinct))
            out[got++] = c + k * C;
    }
    for (uint32_t k = (self + 1) % m; got < SQ_GEN_SUCCESSORS; k = (k + 1) % m) {
        uint32_t dup = 0;
        for (uint32_t g = 0; g < got; g++)
            dup |= out[g] == c + k * C;
        if (k != self && !(dup && distinct))
            out[got++] = c + k * C;
    }
}

double gen_item_quality(uint64_t seed, uint32_t item) {
    return (double)(gen_hash3(seed, item, 0x51) >> 11) * 0x1.0p-52 - 1.0;
}

uint32_t sq_gen_clusters(const sq_gen_opts *o) {
    return gen_resolve_clusters(o);
}

uint32_t sq_gen_cluster_of(const sq_gen_opts *o, uint32_t item) {
    return item % gen_resolve_clusters(o);
}

void sq_gen_successors(const sq_gen_opts *o, uint32_t item, uint32_t out[SQ_GEN_SUCCESSORS]) {
    successors(o->seed, o->items ? o->items : 1, gen_resolve_clusters(o), item, out);
}

/* ======================================== The world ========================================== */

void gen_world_free(gen_world *w) {
    sq_free(w->pop_cdf);
    sq_free(w->succ);
    sq_free(w->scene_cdf);
    sq_free(w->rate);
    sq_free(w->len);
    sq_free(w->scene);
    sq_free(w->scene_buf);
    memset(w, 0, sizeof *w); /* freeing twice is harmless */
}

/* Events per user: a floor each, the rest shared by log-normal weights, exact total. */
static void plan_lengths(gen_world *w) {
    const gen_cfg *c = w->c;
    uint64_t U = c->users, E = c->events, base, rest;
    if (E >= 3 * U) {
        base = 3;
        rest = E - 3 * U;
    } else {
        base = E / U;
        rest = E % U;
    }
    sq_rng r = sq_rng_derive(c->seed, 0);
    unsigned __int128 total_w = 0;
    for (uint64_t u = 0; u < U; u++) {
        w->len[u] = (uint64_t)(exp(sq_rng_normal(&r)) * 65536.0) + 1;
        total_w += w->len[u];
    }
    uint64_t given = 0;
    for (uint64_t u = 0; u < U; u++) {
        uint64_t share =
            E >= 3 * U ? (uint64_t)(((unsigned __int128)rest * w->len[u]) / total_w) : 0;
        w->len[u] = base + share;
        given += share;
    }
    for (uint64_t u = 0; given < rest; u++, given++)
        w->len[u]++; /* fewer than U left over */
}

sq_status gen_world_build(gen_world *w, const gen_cfg *c, sq_error *err) {
    memset(w, 0, sizeof *w);
    w->c = c;
    uint32_t S = c->vocab.n_scenes, C = c->clusters;
    w->max_members = gen_cluster_size(c->items, C, 0);
    if (!(w->pop_cdf = sq_mallocn(w->max_members, sizeof *w->pop_cdf)) ||
        !(w->succ = sq_mallocn((size_t)c->items * SQ_GEN_SUCCESSORS, sizeof *w->succ)) ||
        !(w->scene_cdf = sq_mallocn(3 * (size_t)S, sizeof *w->scene_cdf)) ||
        !(w->rate = sq_mallocn(2 * (size_t)S, sizeof *w->rate)) ||
        !(w->len = sq_mallocn(c->users, sizeof *w->len)) ||
        !(w->scene = sq_mallocn(S, sizeof *w->scene)) ||
        !(w->scene_buf = sq_mallocn(S, sizeof *w->scene_buf))) {
        gen_world_free(w);
        return sq_errorf(err, SQ_ERR_NOMEM, "generate: out of memory for %u items, %u users",
                         c->items, c->users);
    }
    double acc = 0;
    for (uint32_t k = 0; k < w->max_members; k++)
        w->pop_cdf[k] = acc += 1.0 / (k + 1.0);
    for (uint32_t i = 0; i < c->items; i++)
        successors(c->seed, c->items, C, i, w->succ + (size_t)i * SQ_GEN_SUCCESSORS);
    static const char *const base_names[3] = {"home", "search", "detail"};
    for (int row = 0; row < 3; row++) {
        acc = 0;
        for (uint32_t s = 0; s < S; s++) {
            w->scene_cdf[row * S + s] = acc += s < 3 ? SCENE_W[row][s] : SCENE_W_EXTRA;
            if (row < 2)
                w->rate[row * S + s] = s < 3 ? (row ? RATE2[s] : RATE1[s])
                                             : (row ? 0.20 : 0.05) + 0.02 * (double)(s % 11);
        }
    }
    for (uint32_t s = 0; s < S; s++) {
        if (s < 3)
            snprintf(w->scene_buf[s], GEN_SCENE_NAME_MAX, "%s", base_names[s]);
        else
            snprintf(w->scene_buf[s], GEN_SCENE_NAME_MAX, "scene%u", s);
        w->scene[s] = (gen_name){w->scene_buf[s], (uint32_t)strlen(w->scene_buf[s])};
    }
    plan_lengths(w);
    return SQ_OK;
}

/* ======================================= Side files ========================================== */

static const char *const WORDS[] = {
    "amber", "harbor", "quiet",  "river", "stone",  "velvet", "echo",  "lumen",
    "north", "cedar",  "ember",  "frost", "garden", "hollow", "iris",  "jade",
    "kite",  "lotus",  "meadow", "nova",  "orbit",  "pearl",  "quill", "raven",
    "sable", "tide",   "umber",  "vale",  "willow", "zephyr", "atlas", "bloom"};
enum { N_WORDS = sizeof WORDS / sizeof *WORDS };

/* movies.dat "id::Title::tag3|tag17" or RecBole .item "id\ttitle\ttag3 tag17": a title from
 * the cluster's four words plus one of any cluster, a cluster tag, and for a quarter of the
 * items a second (noise) tag of another cluster. */
void gen_write_items(gen_sink *s, const gen_cfg *c) {
    int ml = c->vocab.format == SQ_FMT_MOVIELENS;
    const char *sep = ml ? "::" : "\t";
    if (!ml)
        gen_puts(s, "item_id:token\ttitle:token_seq\ttags:token_seq\n");
    for (uint32_t i = 0; i < c->items; i++) {
        uint32_t cl = i % c->clusters;
        const char *a = WORDS[gen_hash3(c->seed, cl, gen_hash3(c->seed, i, 1) % 4) % N_WORDS];
        const char *b = WORDS[gen_hash3(c->seed, cl, gen_hash3(c->seed, i, 2) % 4) % N_WORDS];
        const char *g = WORDS[gen_hash3(c->seed, i, 3) % N_WORDS];
        char line[160];
        int n = snprintf(line, sizeof line, "%u%s%c%s %s %s %u%stag%u", i, sep, a[0] - 32, a + 1, b,
                         g, i, sep, cl);
        uint32_t other = (uint32_t)(gen_hash3(c->seed, i, 5) % c->clusters);
        if (gen_hash3(c->seed, i, 4) % 4 == 0 && other != cl)
            n += snprintf(line + n, sizeof line - (size_t)n, "%stag%u", ml ? "|" : " ", other);
        gen_put(s, line, (size_t)n);
        gen_put(s, "\n", 1);
    }
}
