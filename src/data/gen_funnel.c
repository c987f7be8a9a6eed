/* gen_funnel.c — the realistic funnel of the generator (SQ_GEN_FUNNEL_REALISTIC): purchases
 * that the previous event does not decide, and an oracle that knows how likely every event's
 * behaviour was.
 *
 * Every step of a session first picks, without looking at what the behaviour will be, WHERE the
 * user is — the step's item, scene, device and time — and only then draws the behaviour from a
 * distribution over all the funnel stages. So the distribution the behaviour was drawn from is
 * the true posterior of the behaviour given everything a model could see (the history, the
 * event's item, scene and context) plus the simulator's hidden state (the user's propensity,
 * the open cart): its AUC is the best any model can reach in expectation, and the oracle file
 * holds it, one line per event.
 *
 * A step is one of (B = behaviours, stage B-1 is the purchase, B-2 the cart when B ≥ 3):
 *   dwell    when the previous event was in this session and not a purchase, with P_DWELL_VIEW
 *            after a view and P_DWELL_FUNNEL after a click or cart: the same item and scene
 *            again; the next stage k+1 of the previous event's stage k with
 *            min(DWELL_BOOST · rate(k+1, scene) · mult · (π for a purchase, else √π), NEXT_MAX),
 *            a direct purchase (k + 1 < B-1) with min(DIRECT_DWELL · rate(B-1) · mult · π,
 *            DIRECT_MAX), else a view again;
 *   revisit  when the user has open cart items, with P_REVISIT_START on a session's first step
 *            and P_REVISIT on later ones: one of them (uniformly), a scene from the revisit
 *            weights; a purchase with min(rate(B-1) · mult · π, NEXT_MAX), else a view, after
 *            which the item leaves the cart for good with P_ABANDON;
 *   fresh    otherwise: the Markov walk of the ordered funnel (or a session's first item), its
 *            scene as there; a direct purchase with min(DIRECT_FRESH · rate(B-1) · mult · π,
 *            DIRECT_MAX), else a view.
 * rate(stage, scene) and mult (device × hour × taste) are the ordered funnel's (gen_world.c,
 * gen_rate_mult); π is the user's purchase propensity, exp(σ z − σ²/2) with z ~ N(0, 1), mean 1:
 * it scales the purchases and, as √π, the clicks and carts too, so that the dense tasks see it.
 * A cart event puts the item in the open cart (at most CART_MAX items, the oldest leaves); a
 * purchase takes it out. Steps of a session are 10 s + Exp(50 s) apart whatever happens, so a
 * time stamp tells nothing about the behaviour. */
#include "data/gen.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* as in generate.c: the same arithmetic with every compiler */
#endif

enum { CART_MAX = 8 }; /* open cart items at most */

#define P_DWELL_VIEW 0.35    /* a step stays on the previous event's item after a view */
#define P_DWELL_FUNNEL 0.75  /* and after a click or cart */
#define P_REVISIT_START 0.30 /* a session's first step revisits an open cart item */
#define P_REVISIT 0.05       /* a later step does */
#define P_ABANDON 0.50       /* a revisit without purchase drops the item from the cart */
#define DWELL_BOOST 1.5      /* stage rates on a dwell step */
#define DIRECT_FRESH 0.02    /* purchase rate factor on a fresh item's first event */
#define DIRECT_DWELL 0.10    /* and on a dwell step that skips stages */
#define NEXT_MAX 0.90        /* cap of the next-stage probability */
#define DIRECT_MAX 0.05      /* cap of a direct purchase */
#define PROP_SIGMA 1.0       /* log-normal spread of the purchase propensity */

typedef enum { STEP_FRESH, STEP_DWELL, STEP_REVISIT } step_kind;

/* The open cart: items carted and neither bought nor abandoned, oldest first. */
typedef struct {
    uint32_t item[CART_MAX];
    uint32_t n;
} cart;

static int cart_find(const cart *k, uint32_t item) {
    for (uint32_t j = 0; j < k->n; j++)
        if (k->item[j] == item)
            return (int)j;
    return -1;
}

static void cart_remove(cart *k, int j) {
    if (j < 0)
        return;
    memmove(k->item + j, k->item + j + 1, (k->n - (uint32_t)j - 1) * sizeof *k->item);
    k->n--;
}

static void cart_add(cart *k, uint32_t item) {
    if (cart_find(k, item) >= 0)
        return;
    if (k->n == CART_MAX)
        cart_remove(k, 0);
    k->item[k->n++] = item;
}

static double cap(double p, double max) {
    return p < max ? p : max;
}

/* The behaviour distribution p[0..B) of a step (the oracle's line). prev: the previous event's
 * stage (dwell steps). */
static void stage_probs(const gen_world *w, step_kind kind, uint32_t prev, uint16_t scene,
                        double mult, double prop, double *p) {
    uint32_t B = w->c->vocab.n_beh, S = w->c->vocab.n_scenes, last = B - 1;
    double buy_rate = w->rate[(last > 1 ? S : 0) + scene] * mult * prop;
    for (uint32_t b = 0; b < B; b++)
        p[b] = 0;
    if (kind == STEP_FRESH) {
        p[last] = cap(DIRECT_FRESH * buy_rate, DIRECT_MAX);
    } else if (kind == STEP_REVISIT) {
        p[last] = cap(buy_rate, NEXT_MAX);
    } else {
        uint32_t nxt = prev + 1;
        double r = w->rate[(nxt > 1 ? S : 0) + scene] * mult * (nxt == last ? prop : sqrt(prop));
        p[nxt] = cap(DWELL_BOOST * r, NEXT_MAX);
        if (nxt < last)
            p[last] = cap(DIRECT_DWELL * buy_rate, DIRECT_MAX);
    }
    double rest = 1.0;
    for (uint32_t b = 1; b < B; b++)
        rest -= p[b];
    p[0] = rest;
}

/* One oracle line: user, item, behaviour, then p of every behaviour. */
static void write_oracle(gen_sink *s, const gen_vocab *v, const gen_event *e, const double *p) {
    char line[GEN_LINE_MAX];
    int n = snprintf(line, sizeof line, "%u\t%u\t%.*s", e->user, e->item, (int)v->beh[e->beh].n,
                     v->beh[e->beh].p);
    for (uint32_t b = 0; b < v->n_beh; b++)
        n += snprintf(line + n, sizeof line - (size_t)n, "\t%.9g", p[b]);
    line[n++] = '\n';
    gen_put(s, line, (size_t)n);
}

void gen_write_oracle_header(gen_sink *s, const gen_vocab *v) {
    gen_puts(s, "user\titem\tbehaviour");
    for (uint32_t b = 0; b < v->n_beh; b++) {
        gen_puts(s, "\tp_");
        gen_put(s, v->beh[b].p, v->beh[b].n);
    }
    gen_puts(s, "\n");
}

void gen_sim_user_realistic(const gen_world *w, uint32_t u, gen_emitter *em) {
    const gen_cfg *c = w->c;
    uint64_t left = w->len[u];
    if (!left)
        return;
    uint32_t B = c->vocab.n_beh, last = B - 1;
    sq_rng r = sq_rng_derive(c->seed, (uint64_t)u + 1);
    gen_user g;
    gen_user_draw(w, &r, &g);
    double prop = exp(PROP_SIGMA * sq_rng_normal(&r) - 0.5 * PROP_SIGMA * PROP_SIGMA);
    int64_t t = c->t0 + sq_rng_below(&r, GEN_START_SPREAD);
    double gap_mean = gen_gap_mean(left), p[GEN_MAX_BEHAVIOURS];
    cart k = {{0}, 0};
    gen_event e = {.user = u};
    while (left) {
        e.device = gen_session_device(&r, &g);
        uint32_t steps = 1;
        while (steps < GEN_SESSION_MAX && sq_rng_uniform(&r) < GEN_SESSION_CONT)
            steps++;
        uint32_t cl = 0, browse = 0; /* the Markov walk's cluster and item */
        int walking = 0;             /* browse is set */
        for (uint32_t v = 0; v < steps && left; v++) {
            if (v > 0)
                t += GEN_GAP_VIEW_MIN + gen_exp_draw(&r, GEN_GAP_VIEW_MEAN);
            step_kind kind = STEP_FRESH;
            int slot = -1;
            if (v > 0 && e.beh != last &&
                sq_rng_uniform(&r) < (e.beh ? P_DWELL_FUNNEL : P_DWELL_VIEW)) {
                kind = STEP_DWELL;
            } else if (k.n && sq_rng_uniform(&r) < (v == 0 ? P_REVISIT_START : P_REVISIT)) {
                kind = STEP_REVISIT;
                slot = (int)sq_rng_below(&r, k.n);
                e.item = k.item[slot];
                e.scene = gen_scene_draw(w, &r, 2);
            } else {
                int followed = 0;
                browse = walking ? gen_walk(w, &r, &g, browse, &cl, &followed)
                                 : gen_session_item(w, &r, &g, &cl);
                walking = 1;
                e.item = browse;
                e.scene = gen_scene_draw(w, &r, followed ? 0 : 1);
            }
            double aff = gen_affinity(&g, e.item % c->clusters);
            e.value = gen_value(w, &r, aff, e.item);
            e.ts = t;
            e.hour = (uint8_t)((t % 86400) / 3600);
            stage_probs(w, kind, e.beh, e.scene, gen_rate_mult(e.device, e.hour, aff), prop, p);
            double x = sq_rng_uniform(&r), acc = 0;
            uint32_t b = 0;
            while (b < last && x >= (acc += p[b]))
                b++;
            e.beh = (uint8_t)b;
            gen_emit(em, &e);
            if (em->oracle)
                write_oracle(em->oracle, em->vocab, &e, p);
            left--;
            if (b == last)
                cart_remove(&k, cart_find(&k, e.item));
            else if (B >= 3 && b == B - 2)
                cart_add(&k, e.item);
            else if (kind == STEP_REVISIT && sq_rng_uniform(&r) < P_ABANDON)
                cart_remove(&k, slot);
        }
        t += GEN_GAP_SESSION_MIN + gen_exp_draw(&r, gap_mean);
    }
}
