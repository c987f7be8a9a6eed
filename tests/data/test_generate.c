/* test_generate.c — the synthetic log generator: every format's shape, exact counts and ranges
 * (by parsing the output here), determinism, gzip, the planted structure being measurable, the
 * ground-truth queries, bad options, I/O failure and allocation failure leaving no file. */
#define _DEFAULT_SOURCE
#include "testutil.h"

#include "seqrec/data.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* ========================================= Helpers =========================================== */

/* One parsed event; fields a format lacks stay at their defaults. */
typedef struct {
    unsigned user, item;
    long long ts;   /* -1: none */
    char beh[40];   /* "view" when none */
    char scene[20]; /* "" when none */
    char device[12];
    int hour;  /* -1: none */
    int value; /* -1: none */
} ev;

static sq_gen_opts small_opts(void) {
    sq_gen_opts o = {0};
    o.users = 50;
    o.items = 300;
    o.events = 3000;
    o.seed = 7;
    return o;
}

static sq_status gen(const sq_gen_opts *o, const char *path) {
    sq_error e = {0};
    sq_status rc = sq_generate(o, path, &e);
    if (rc)
        print_message("sq_generate(%s): %s\n", path, e.msg);
    return rc;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Parses a whole log of format f into a malloc'd array; fails the test on a malformed line. */
static ev *parse_log(const char *text, sq_format f, size_t *n_out) {
    size_t cap = 1024, n = 0;
    ev *a = malloc(cap * sizeof *a);
    const char *p = text;
    if (f == SQ_FMT_CSV || f == SQ_FMT_TSV || f == SQ_FMT_RECBOLE)
        p = strchr(p, '\n') + 1;
    while (*p) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        char line[512];
        size_t len = (size_t)(nl - p);
        assert_true(len < sizeof line);
        memcpy(line, p, len);
        line[len] = 0;
        p = nl + 1;
        if (n == cap)
            a = realloc(a, (cap *= 2) * sizeof *a);
        ev *e = &a[n++];
        memset(e, 0, sizeof *e);
        e->ts = -1;
        e->hour = e->value = -1;
        strcpy(e->beh, "view");
        int got = 0, want = 8;
        switch (f) {
        case SQ_FMT_CSV:
            got = sscanf(line, "%u,%u,%lld,%39[^,],%19[^,],%11[^,],%d,%d", &e->user, &e->item,
                         &e->ts, e->beh, e->scene, e->device, &e->hour, &e->value);
            break;
        case SQ_FMT_TSV:
        case SQ_FMT_RECBOLE:
            got = sscanf(line, "%u\t%u\t%lld\t%39[^\t]\t%19[^\t]\t%11[^\t]\t%d\t%d", &e->user,
                         &e->item, &e->ts, e->beh, e->scene, e->device, &e->hour, &e->value);
            break;
        case SQ_FMT_JSONL:
            got = sscanf(line,
                         "{\"user\":\"%u\",\"item\":\"%u\",\"ts\":%lld,\"behaviour\":\"%39[^\"]\","
                         "\"scene\":\"%19[^\"]\",\"context\":{\"device\":\"%11[^\"]\",\"hour\":"
                         "\"%d\"},\"value\":%d}",
                         &e->user, &e->item, &e->ts, e->beh, e->scene, e->device, &e->hour,
                         &e->value);
            assert_string_equal(line + len - 1, "}");
            break;
        case SQ_FMT_MOVIELENS:
            got = sscanf(line, "%u::%u::%d::%lld", &e->user, &e->item, &e->value, &e->ts);
            want = 4;
            break;
        default:
            got = sscanf(line, "%u %u", &e->user, &e->item);
            want = 2;
            break;
        }
        if (got != want)
            fail_msg("bad line '%s' (%d of %d fields)", line, got, want);
    }
    *n_out = n;
    return a;
}

static ev *gen_and_parse(const sq_gen_opts *o, const char *path, sq_format f, size_t *n) {
    assert_int_equal(gen(o, path), SQ_OK);
    size_t bytes;
    char *text = test_read_file(path, &bytes);
    ev *a = parse_log(text, f, n);
    free(text);
    return a;
}

static size_t count_lines(const char *path) {
    size_t n, lines = 0;
    char *t = test_read_file(path, &n);
    for (size_t i = 0; i < n; i++)
        lines += t[i] == '\n';
    free(t);
    return lines;
}

static char *read_gz(const char *path, size_t *n) {
    gzFile g = gzopen(path, "rb");
    assert_non_null(g);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    int r;
    while ((r = gzread(g, buf + len, (unsigned)(cap - len))) > 0) {
        len += (size_t)r;
        if (len == cap)
            buf = realloc(buf, cap *= 2);
    }
    assert_int_equal(r, 0);
    gzclose(g);
    *n = len;
    return buf;
}

/* Files in the test directory whose name contains ".tmp.": left-over temporaries. */
static int tmp_leftovers(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strstr(de->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

/* Checks what every format shares: exact count, ranges, users contiguous in order, time order,
 * hour from the timestamp, values 1..5, every user ≥ 3 events. */
static void check_common(const ev *a, size_t n, const sq_gen_opts *o, int has_ts) {
    assert_int_equal(n, o->events);
    unsigned *per_user = calloc(o->users, sizeof *per_user);
    for (size_t i = 0; i < n; i++) {
        assert_true(a[i].user < o->users);
        assert_true(a[i].item < o->items);
        per_user[a[i].user]++;
        if (i > 0) {
            assert_true(a[i].user >= a[i - 1].user); /* contiguous, in user order */
            if (has_ts && a[i].user == a[i - 1].user)
                assert_true(a[i].ts >= a[i - 1].ts);
        }
        if (has_ts)
            assert_true(a[i].ts >= 1704067200);
        if (a[i].hour >= 0)
            assert_int_equal(a[i].hour, (a[i].ts % 86400) / 3600);
        if (a[i].value >= 0)
            assert_true(a[i].value >= 1 && a[i].value <= 5);
    }
    for (unsigned u = 0; u < o->users; u++)
        assert_true(per_user[u] >= 3);
    free(per_user);
}

/* ========================================== Tests ============================================ */

static void test_formats(void **state) {
    (void)state;
    sq_gen_opts o = small_opts();
    static const struct {
        const char *name;
        sq_format f;
        const char *header; /* first line, or NULL */
    } cases[] = {
        {"g.csv", SQ_FMT_CSV, "user_id,item_id,timestamp,behaviour,scene,device,hour,value"},
        {"g.tsv", SQ_FMT_TSV, "user_id\titem_id\ttimestamp\tbehaviour\tscene\tdevice\thour\tvalue"},
        {"g.jsonl", SQ_FMT_JSONL, NULL},
        {"g.inter", SQ_FMT_RECBOLE,
         "user_id:token\titem_id:token\ttimestamp:float\tbehaviour:token\tscene:token\t"
         "device:token\thour:token\tvalue:float"},
        {"ml/ratings.dat", SQ_FMT_MOVIELENS, NULL},
        {"g.txt", SQ_FMT_PLAIN, NULL},
    };
    mkdir(test_tmp("ml"), 0755);
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const char *path = test_tmp(cases[k].name);
        size_t n;
        ev *a = gen_and_parse(&o, path, cases[k].f, &n);
        int has_ts = cases[k].f != SQ_FMT_PLAIN;
        check_common(a, n, &o, has_ts);
        size_t bytes;
        char *text = test_read_file(path, &bytes);
        if (cases[k].header) {
            size_t hl = strlen(cases[k].header);
            assert_memory_equal(text, cases[k].header, hl);
            assert_int_equal(text[hl], '\n');
        }
        free(text);
        int funnel = cases[k].f != SQ_FMT_MOVIELENS && cases[k].f != SQ_FMT_PLAIN;
        size_t carts = 0;
        for (size_t i = 0; i < n; i++) {
            if (funnel) {
                assert_true(!strcmp(a[i].beh, "view") || !strcmp(a[i].beh, "cart") ||
                            !strcmp(a[i].beh, "buy"));
                assert_true(!strcmp(a[i].scene, "home") || !strcmp(a[i].scene, "search") ||
                            !strcmp(a[i].scene, "detail"));
                assert_true(!strcmp(a[i].device, "mobile") || !strcmp(a[i].device, "desktop") ||
                            !strcmp(a[i].device, "tablet"));
                carts += !strcmp(a[i].beh, "cart");
            }
        }
        if (funnel)
            assert_true(carts > 0);
        free(a);
    }
    /* Side files: movies.dat beside ratings.dat, g.item beside g.inter, one row per item. */
    const char *movies = test_tmp("ml/movies.dat");
    assert_int_equal(count_lines(movies), o.items);
    size_t mn;
    char *m = test_read_file(movies, &mn);
    unsigned id, tag;
    char title[100];
    assert_int_equal(sscanf(m, "%u::%99[^:]::tag%u", &id, title, &tag), 3);
    assert_int_equal(id, 0);
    assert_int_equal(tag, sq_gen_cluster_of(&o, 0));
    free(m);
    const char *item = test_tmp("g.item");
    assert_int_equal(count_lines(item), o.items + 1);
    char *it = test_read_file(item, &mn);
    assert_memory_equal(it, "item_id:token\ttitle:token_seq\ttags:token_seq\n", 45);
    free(it);
    /* Forced format with a neutral name: no side file, still the format. */
    o.format = SQ_FMT_MOVIELENS;
    size_t n;
    ev *a = gen_and_parse(&o, test_tmp("forced.log"), SQ_FMT_MOVIELENS, &n);
    assert_int_equal(n, o.events);
    free(a);
}

static void test_determinism(void **state) {
    (void)state;
    sq_gen_opts o = small_opts();
    const char *names[] = {"d1.csv", "d2.csv", "d3.csv"};
    assert_int_equal(gen(&o, test_tmp(names[0])), SQ_OK);
    assert_int_equal(gen(&o, test_tmp(names[1])), SQ_OK);
    o.seed = 8;
    assert_int_equal(gen(&o, test_tmp(names[2])), SQ_OK);
    size_t n1, n2, n3;
    char *a = test_read_file(test_tmp(names[0]), &n1);
    char *b = test_read_file(test_tmp(names[1]), &n2);
    char *c = test_read_file(test_tmp(names[2]), &n3);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    assert_true(n1 != n3 || memcmp(a, c, n1) != 0);
    free(a);
    free(b);
    free(c);
}

static void test_gzip(void **state) {
    (void)state;
    sq_gen_opts o = small_opts();
    o.events = 40000; /* several deflate output chunks' worth of input */
    const char *plain[] = {"z.csv", "z.inter", "z.dat"};
    const char *gz[] = {"z.csv.gz", "zz.inter.gz", "zz.dat.gz"};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(gen(&o, test_tmp(plain[k])), SQ_OK);
        assert_int_equal(gen(&o, test_tmp(gz[k])), SQ_OK);
        size_t n1, n2, nz;
        char *a = test_read_file(test_tmp(plain[k]), &n1);
        char *raw = test_read_file(test_tmp(gz[k]), &nz);
        assert_true(nz > 2 && (unsigned char)raw[0] == 0x1f && (unsigned char)raw[1] == 0x8b);
        assert_true(nz < n1);
        char *b = read_gz(test_tmp(gz[k]), &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(a, b, n1);
        free(a);
        free(b);
        free(raw);
    }
    assert_true(exists(test_tmp("zz.item")));    /* side file of zz.inter.gz, plain */
    assert_true(exists(test_tmp("movies.dat"))); /* beside zz.dat.gz */
    /* opts.gzip with a plain name compresses too. */
    o.gzip = 1;
    assert_int_equal(gen(&o, test_tmp("zflag.csv")), SQ_OK);
    size_t n1, n2;
    char *a = test_read_file(test_tmp("z.csv"), &n1);
    char *b = read_gz(test_tmp("zflag.csv"), &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    free(a);
    free(b);
}

static void test_exact_counts(void **state) {
    (void)state;
    static const struct {
        uint32_t users, items, clusters;
        uint64_t events;
    } cases[] = {
        {10, 20, 0, 25},     /* fewer than 3 per user: 2 or 3 each */
        {10, 20, 0, 4},      /* fewer events than users */
        {1, 1, 0, 100},      /* one item: its successors are itself */
        {7, 5, 5, 1000},     /* one item per cluster */
        {3, 50, 1, 12345},   /* one cluster */
        {200, 1000, 0, 601}, /* 3 each plus one */
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        sq_gen_opts o = {0};
        o.users = cases[k].users;
        o.items = cases[k].items;
        o.clusters = cases[k].clusters;
        o.events = cases[k].events;
        o.seed = k;
        size_t n;
        ev *a = gen_and_parse(&o, test_tmp("c.tsv"), SQ_FMT_TSV, &n);
        assert_int_equal(n, o.events);
        unsigned *per = calloc(o.users, sizeof *per);
        for (size_t i = 0; i < n; i++) {
            assert_true(a[i].user < o.users && a[i].item < o.items);
            per[a[i].user]++;
        }
        uint64_t floor_each = o.events >= 3ull * o.users ? 3 : o.events / o.users;
        for (uint32_t u = 0; u < o.users; u++)
            assert_true(per[u] >= floor_each);
        free(per);
        free(a);
    }
}

/* The planted structure shows in the output: consecutive views of a session follow a strong
 * successor far more often than chance, stay in their cluster, and the funnel's cart rate
 * depends on scene and device as planted. */
static void test_structure(void **state) {
    (void)state;
    sq_gen_opts o = {0};
    o.users = 400;
    o.items = 2000;
    o.events = 100000;
    o.seed = 42;
    size_t n;
    ev *a = gen_and_parse(&o, test_tmp("s.csv"), SQ_FMT_CSV, &n);
    uint32_t C = sq_gen_clusters(&o);
    assert_int_equal(C, 45); /* round(sqrt(2000)) */
    size_t pairs = 0, follow = 0, same_cluster = 0, prev = SIZE_MAX;
    double views[3] = {0}, carts[3] = {0}, dviews[3] = {0}, dcarts[3] = {0};
    static const char *scenes[3] = {"home", "search", "detail"};
    static const char *devices[3] = {"mobile", "desktop", "tablet"};
    uint64_t max_len = 0, len = 0;
    for (size_t i = 0; i < n; i++) {
        len = i > 0 && a[i].user == a[i - 1].user ? len + 1 : 1;
        if (len > max_len)
            max_len = len;
        int s = -1, d = -1;
        for (int k = 0; k < 3; k++) {
            if (!strcmp(a[i].scene, scenes[k]))
                s = k;
            if (!strcmp(a[i].device, devices[k]))
                d = k;
        }
        assert_true(s >= 0 && d >= 0);
        if (!strcmp(a[i].beh, "view")) {
            views[s]++;
            dviews[d]++;
            /* Sessions are ≥ 30 min apart, views within one a few minutes at most. */
            if (prev != SIZE_MAX && a[prev].user == a[i].user && a[i].ts - a[prev].ts < 1800) {
                uint32_t succ[SQ_GEN_SUCCESSORS];
                sq_gen_successors(&o, a[prev].item, succ);
                pairs++;
                follow += succ[0] == a[i].item || succ[1] == a[i].item || succ[2] == a[i].item;
                same_cluster +=
                    sq_gen_cluster_of(&o, a[prev].item) == sq_gen_cluster_of(&o, a[i].item);
            }
            prev = i;
        } else if (!strcmp(a[i].beh, "cart")) {
            carts[s]++;
            dcarts[d]++;
            /* A cart is right after the view of the same item. */
            assert_int_equal(a[i].item, a[i - 1].item);
            assert_string_equal(a[i - 1].beh, "view");
            assert_true(a[i].ts - a[i - 1].ts >= 1 && a[i].ts - a[i - 1].ts <= 30);
        } else {
            assert_string_equal(a[i].beh, "buy");
            assert_string_equal(a[i - 1].beh, "cart");
        }
    }
    double frac = (double)follow / (double)pairs;
    double chance = 3.0 / (2000.0 / C - 1.0); /* uniform pick among the other members */
    print_message("follow %.3f (chance %.3f), same cluster %.3f over %zu pairs\n", frac, chance,
                  (double)same_cluster / (double)pairs, pairs);
    assert_true(pairs > 50000);
    assert_true(frac > 0.6 && frac > 5 * chance);
    assert_true((double)same_cluster / (double)pairs > 0.9);
    double home = carts[0] / views[0], search = carts[1] / views[1], detail = carts[2] / views[2];
    print_message("cart rate home %.3f search %.3f detail %.3f; mobile %.3f desktop %.3f\n", home,
                  search, detail, dcarts[0] / dviews[0], dcarts[1] / dviews[1]);
    assert_true(detail > 2 * home);
    assert_true(search > home);
    assert_true(dcarts[0] / dviews[0] < dcarts[1] / dviews[1]);
    /* Long-tailed lengths: the longest user has well over the mean. */
    assert_true(max_len > 3 * o.events / o.users);
    free(a);
}

static void test_funnel_stages(void **state) {
    (void)state;
    sq_gen_opts o = small_opts();
    o.events = 20000;
    o.behaviours = "view,click,cart,buy";
    o.scenes = 5;
    size_t n;
    ev *a = gen_and_parse(&o, test_tmp("f.csv"), SQ_FMT_CSV, &n);
    static const char *names[4] = {"view", "click", "cart", "buy"};
    size_t seen[4] = {0}, extra_scene = 0;
    int prev_stage = -1;
    for (size_t i = 0; i < n; i++) {
        int st = -1;
        for (int k = 0; k < 4; k++)
            if (!strcmp(a[i].beh, names[k]))
                st = k;
        assert_true(st >= 0);
        seen[st]++;
        if (st > 0) { /* each later stage right after the previous stage, same item */
            assert_int_equal(st, prev_stage + 1);
            assert_int_equal(a[i].item, a[i - 1].item);
            assert_string_equal(a[i].scene, a[i - 1].scene);
        }
        extra_scene += !strcmp(a[i].scene, "scene3") || !strcmp(a[i].scene, "scene4");
        prev_stage = st;
    }
    for (int k = 0; k < 4; k++)
        assert_true(seen[k] > 0);
    assert_true(seen[0] > seen[1] && seen[1] > seen[2] && seen[2] > seen[3]);
    assert_true(extra_scene > 0);
    free(a);
    /* A single stage: views only. */
    o.behaviours = "rate";
    o.scenes = 1;
    a = gen_and_parse(&o, test_tmp("f1.csv"), SQ_FMT_CSV, &n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(a[i].beh, "rate");
        assert_string_equal(a[i].scene, "home");
    }
    free(a);
}

/* The realistic funnel: the oracle file has one line per event, the same user, item and
 * behaviour, probabilities that sum to 1 and give the drawn behaviour a chance; purchases are a
 * few % of the events and come in every planted way: direct (right after a view of the item, or
 * at first sight), right after its cart, delayed (after other items, also in a later session),
 * and some carts are never bought; the users' purchase propensity shows in the oracle. */
static void test_realistic_funnel(void **state) {
    (void)state;
    sq_gen_opts o = small_opts();
    o.users = 200;
    o.events = 20000;
    o.behaviours = "view,click,cart,buy";
    o.funnel = SQ_GEN_FUNNEL_REALISTIC;
    o.oracle = test_tmp("r.oracle.tsv");
    size_t n, bytes;
    ev *a = gen_and_parse(&o, test_tmp("r.csv"), SQ_FMT_CSV, &n);
    char *text = test_read_file(o.oracle, &bytes), *p = strchr(text, '\n') + 1;
    assert_true(!strncmp(text, "user\titem\tbehaviour\tp_view\tp_click\tp_cart\tp_buy\n", 46));
    static const char *names[4] = {"view", "click", "cart", "buy"};
    double ub[200] = {0}, un[200] = {0}; /* per user: Σ p(buy) and count of fresh steps */
    size_t buys = 0, direct = 0, after_cart = 0, delayed = 0, later_session = 0, carts = 0,
           fresh = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned u, it;
        char beh[16];
        double q[4];
        int used = 0;
        assert_int_equal(sscanf(p, "%u\t%u\t%15s\t%lf\t%lf\t%lf\t%lf\n%n", &u, &it, beh, &q[0],
                                &q[1], &q[2], &q[3], &used),
                         7);
        p += used;
        assert_int_equal(u, a[i].user);
        assert_int_equal(it, a[i].item);
        assert_string_equal(beh, a[i].beh);
        int st = 0;
        while (st < 4 && strcmp(names[st], beh))
            st++;
        assert_true(st < 4 && q[st] > 0);
        assert_true(fabs(q[0] + q[1] + q[2] + q[3] - 1.0) < 1e-6);
        carts += st == 2;
        if (q[1] == 0 && q[2] == 0 && q[3] < 0.05) { /* a fresh item's step: p(buy) ∝ π */
            ub[u] += q[3];
            un[u]++;
        }
        if (st != 3)
            continue;
        buys++;
        if (i == 0 || a[i - 1].user != u) { /* a user's first event */
            fresh++;
            continue;
        }
        if (a[i - 1].item == it) {
            direct += !strcmp(a[i - 1].beh, "view");
            after_cart += !strcmp(a[i - 1].beh, "cart");
        } else { /* after another item: delayed when carted before, else bought at once */
            size_t j = i;
            while (j > 0 && a[j - 1].user == u &&
                   !(a[j - 1].item == it && !strcmp(a[j - 1].beh, "cart")))
                j--;
            int carted = j > 0 && a[j - 1].user == u;
            delayed += carted;
            fresh += !carted;
            later_session += carted && a[i].ts - a[i - 1].ts >= 1800;
        }
    }
    assert_int_equal(*p, 0);
    print_message("buys %zu of %zu: after a view %zu, after a cart %zu, delayed %zu (%zu after a "
                  "session gap), at first sight %zu; carts %zu\n",
                  buys, n, direct, after_cart, delayed, later_session, fresh, carts);
    assert_true(buys > n / 200 && buys < n * 6 / 100);
    assert_true(direct > 0 && after_cart > 0 && fresh > 0);
    /* delayed buys come from revisits of the open cart (a fresh draw of a carted item rarely) */
    assert_true(delayed > buys / 10 && later_session > buys / 20);
    assert_true(carts > after_cart + delayed); /* abandoned carts */
    /* the propensity: users' mean p(buy) on fresh steps spreads far more than the scene, device,
     * hour and taste mix alone would make it (coefficient of variation ~0.2 with π = 1) */
    double m1 = 0, m2 = 0, nu = 0;
    for (int u = 0; u < 200; u++)
        if (un[u] >= 20) {
            double x = ub[u] / un[u];
            m1 += x, m2 += x * x, nu++;
        }
    m1 /= nu;
    double cv = sqrt(m2 / nu - m1 * m1) / m1;
    print_message("users' mean fresh p(buy): coefficient of variation %.2f over %.0f users\n", cv,
                  nu);
    assert_true(nu > 100 && cv > 0.5);
    free(text);
    free(a);
    /* Refused: an oracle without the realistic funnel, a log without behaviours, one stage. */
    sq_error err = {0};
    o.funnel = SQ_GEN_FUNNEL_ORDERED;
    assert_int_equal(sq_generate(&o, test_tmp("x.csv"), &err), SQ_ERR_ARG);
    assert_non_null(strstr(err.msg, "oracle"));
    o.funnel = SQ_GEN_FUNNEL_REALISTIC;
    assert_int_equal(sq_generate(&o, o.oracle, &err), SQ_ERR_ARG); /* the same file twice */
    assert_non_null(strstr(err.msg, "name of its own"));
    assert_int_equal(sq_generate(&o, test_tmp("x.dat"), &err), SQ_ERR_ARG);
    assert_non_null(strstr(err.msg, "behaviour column"));
    o.behaviours = "view";
    assert_int_equal(sq_generate(&o, test_tmp("x.csv"), &err), SQ_ERR_ARG);
    assert_false(exists(test_tmp("x.csv")));
}

static void test_ground_truth(void **state) {
    (void)state;
    sq_gen_opts o = {0};
    o.items = 1000;
    o.seed = 3;
    assert_int_equal(sq_gen_clusters(&o), 32); /* round(sqrt(1000)) = 31.6 → 32 */
    for (uint32_t i = 0; i < o.items; i++) {
        uint32_t s[SQ_GEN_SUCCESSORS], t[SQ_GEN_SUCCESSORS];
        sq_gen_successors(&o, i, s);
        sq_gen_successors(&o, i, t);
        assert_memory_equal(s, t, sizeof s); /* a pure function */
        for (int k = 0; k < SQ_GEN_SUCCESSORS; k++) {
            assert_true(s[k] < o.items && s[k] != i);
            assert_int_equal(sq_gen_cluster_of(&o, s[k]), sq_gen_cluster_of(&o, i));
        }
        assert_true(s[0] != s[1] && s[0] != s[2] && s[1] != s[2]);
    }
    /* Small clusters: two members point at each other; one member at itself. */
    o.items = 2;
    o.clusters = 1;
    uint32_t s[SQ_GEN_SUCCESSORS];
    sq_gen_successors(&o, 0, s);
    assert_true(s[0] == 1 && s[1] == 1 && s[2] == 1);
    o.clusters = 2;
    sq_gen_successors(&o, 1, s);
    assert_true(s[0] == 1 && s[1] == 1 && s[2] == 1);
    /* Another seed, another chain. */
    o.items = 1000;
    o.clusters = 0;
    size_t differ = 0;
    for (uint32_t i = 0; i < o.items; i++) {
        uint32_t a[SQ_GEN_SUCCESSORS], b[SQ_GEN_SUCCESSORS];
        o.seed = 3;
        sq_gen_successors(&o, i, a);
        o.seed = 4;
        sq_gen_successors(&o, i, b);
        differ += a[0] != b[0];
    }
    assert_true(differ > 800);
}

static void test_bad_options(void **state) {
    (void)state;
    const char *path = test_tmp("bad.csv");
    sq_error e = {0};
    sq_gen_opts o = small_opts();
    assert_int_equal(sq_generate(NULL, path, &e), SQ_ERR_ARG);
    assert_int_equal(sq_generate(&o, NULL, &e), SQ_ERR_ARG);
    o.users = 0;
    assert_int_equal(sq_generate(&o, path, &e), SQ_ERR_ARG);
    assert_non_null(strstr(e.msg, "users"));
    o = small_opts();
    o.items = 0;
    assert_int_equal(sq_generate(&o, path, &e), SQ_ERR_ARG);
    assert_non_null(strstr(e.msg, "items"));
    o = small_opts();
    o.events = 0;
    assert_int_equal(sq_generate(&o, path, &e), SQ_ERR_ARG);
    assert_non_null(strstr(e.msg, "events"));
    o = small_opts();
    o.scenes = 1001;
    assert_int_equal(sq_generate(&o, path, &e), SQ_ERR_ARG);
    assert_non_null(strstr(e.msg, "scenes"));
    o = small_opts();
    o.clusters = o.items + 1;
    assert_int_equal(sq_generate(&o, path, &e), SQ_ERR_ARG);
    assert_non_null(strstr(e.msg, "clusters"));
    o = small_opts();
    o.t0 = -5;
    assert_int_equal(sq_generate(&o, path, &e), SQ_ERR_ARG);
    const char *bad_beh[] = {"",
                             "view,,buy",
                             "view,",
                             "a,b,c,d,e,f,g,h,i",
                             "view,add to cart",
                             "view,\"x\"",
                             "abcdefghijabcdefghijabcdefghijabc"};
    for (size_t k = 0; k < sizeof bad_beh / sizeof *bad_beh; k++) {
        o = small_opts();
        o.behaviours = bad_beh[k];
        assert_int_equal(sq_generate(&o, path, &e), SQ_ERR_ARG);
        assert_non_null(strstr(e.msg, "behaviours"));
    }
    o = small_opts();
    o.behaviours = "a,b,c,d,e,f,g,h"; /* 8 names are fine */
    assert_int_equal(gen(&o, path), SQ_OK);
    o = small_opts();
    assert_int_equal(sq_generate(&o, test_tmp("noext"), &e), SQ_ERR_ARG);
    assert_non_null(strstr(e.msg, "format"));
    o.format = (sq_format)99;
    assert_int_equal(sq_generate(&o, path, &e), SQ_ERR_ARG);
    o = small_opts();
    mkdir(test_tmp("mv"), 0755);
    assert_int_equal(sq_generate(&o, test_tmp("mv/movies.dat"), &e), SQ_ERR_ARG);
    assert_false(exists(test_tmp("noext")));
    assert_false(exists(test_tmp("mv/movies.dat")));
}

static void test_io_error(void **state) {
    (void)state;
    sq_gen_opts o = small_opts();
    sq_error e = {0};
    const char *missing[] = {"missing/x.csv", "missing/ratings.dat", "missing/x.inter.gz"};
    for (int k = 0; k < 3; k++) {
        const char *p = test_tmp(missing[k]);
        assert_int_equal(sq_generate(&o, p, &e), SQ_ERR_IO);
        assert_non_null(strstr(e.msg, "missing/"));
        assert_false(exists(p));
    }
    assert_false(exists(test_tmp("missing")));
    /* The rename fails (a directory is in the way): nothing half-written stays behind. */
    mkdir(test_tmp("in_the_way.csv"), 0755);
    test_write_file(test_tmp("in_the_way.csv/f"), "x", (size_t)-1);
    assert_int_equal(sq_generate(&o, test_tmp("in_the_way.csv"), &e), SQ_ERR_IO);
    assert_int_equal(tmp_leftovers(test_tmpdir()), 0);
}

static void test_alloc_failure(void **state) {
    (void)state;
    sq_gen_opts o = small_opts();
    const char *path = test_tmp("af.inter.gz");
    sq_status rc = SQ_ERR_NOMEM;
    long k;
    for (k = 0; k < 200 && rc == SQ_ERR_NOMEM; k++) {
        sq_error e = {0};
        sq_alloc_fail_after(k);
        rc = sq_generate(&o, path, &e);
        sq_alloc_fail_after(-1);
        if (rc == SQ_ERR_NOMEM) {
            assert_false(exists(path));
            assert_int_equal(tmp_leftovers(test_tmpdir()), 0);
        }
    }
    assert_int_equal(rc, SQ_OK);
    assert_true(k > 5); /* the loop did reach the allocations */
    assert_true(exists(path));
}

/* Progress callback: records what it was told. */
typedef struct {
    int calls;
    uint64_t last_done, total;
    int monotonic;
} progress_log;

static void on_progress(void *ud, const char *stage, uint64_t done, uint64_t total,
                        const char *unit) {
    progress_log *p = ud;
    assert_string_equal(stage, "generating");
    assert_string_equal(unit, "events");
    if (p->calls && done < p->last_done)
        p->monotonic = 0;
    p->calls++;
    p->last_done = done;
    p->total = total;
}

static void test_progress(void **state) {
    (void)state;
    sq_gen_opts o = small_opts();
    o.events = 300000;
    progress_log p = {0, 0, 0, 1};
    o.reporter.progress = on_progress;
    o.reporter.ud = &p;
    assert_int_equal(gen(&o, test_tmp("p.txt")), SQ_OK);
    assert_true(p.monotonic);
    assert_int_equal(p.total, o.events);
    assert_int_equal(p.last_done, o.events);
    /* start, every 65536 events (4 of them), end */
    assert_int_equal(p.calls, 2 + 300000 / 65536);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_exact_counts),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_funnel_stages),
        cmocka_unit_test(test_realistic_funnel),
        cmocka_unit_test(test_ground_truth),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_io_error),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_progress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
