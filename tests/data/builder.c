/* builder.c — see builder.h. */
#include "builder.h"

#include "testutil.h"

#include <math.h>
#include <string.h>

uint32_t tb_intern(sq_strmap *m, const char *s) {
    uint32_t id;
    assert_int_equal(sq_strmap_intern(m, s, strlen(s), &id, NULL), SQ_OK);
    return id;
}

void tb_add_event(sq_ingest *g, const char *user, size_t ul, const char *item, size_t il,
                  int64_t ts, const char *beh, const char *scene, float value, uint64_t line,
                  const char *const *ctx) {
    sq_events *e = &g->ev;
    size_t nc = sq_strmap_count(g->ctx_fields);
    if (e->n == e->cap) {
        size_t c = e->cap ? e->cap * 2 : 64;
        assert_non_null(e->user = sq_reallocn(e->user, c, sizeof *e->user));
        assert_non_null(e->item = sq_reallocn(e->item, c, sizeof *e->item));
        assert_non_null(e->ts = sq_reallocn(e->ts, c, sizeof *e->ts));
        assert_non_null(e->beh = sq_reallocn(e->beh, c, sizeof *e->beh));
        assert_non_null(e->scene = sq_reallocn(e->scene, c, sizeof *e->scene));
        assert_non_null(e->value = sq_reallocn(e->value, c, sizeof *e->value));
        assert_non_null(e->src = sq_reallocn(e->src, c, sizeof *e->src));
        if (nc)
            assert_non_null(e->ctx = sq_reallocn(e->ctx, c * nc, sizeof *e->ctx));
        e->cap = c;
    }
    size_t i = e->n++;
    assert_int_equal(sq_strmap_intern(g->users, user, ul, &e->user[i], NULL), SQ_OK);
    assert_int_equal(sq_strmap_intern(g->items, item, il, &e->item[i], NULL), SQ_OK);
    e->ts[i] = ts;
    e->beh[i] = (uint8_t)tb_intern(g->behaviours, beh);
    e->scene[i] = (uint16_t)tb_intern(g->scenes, scene);
    e->value[i] = value;
    uint64_t file = g->n_inputs ? g->n_inputs - 1 : 0;
    e->src[i] = (file << SQ_SRC_LINE_BITS) | line;
    for (size_t f = 0; f < nc; f++)
        e->ctx[i * nc + f] = tb_intern(g->ctx_values[f], ctx ? ctx[f] : "");
    if (!isnan(value))
        g->have_values = 1;
    g->report.rows_read++;
}
