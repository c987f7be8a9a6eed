/* summary.c — a description of a dataset (counts per behaviour and scene, sequence-length
 * percentiles, density, side information) for `seqrec stats` and the dashboard. */
#include "seqrec/data.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n): the smallest value with ≥ q·n values at or below. */
static uint32_t percentile(const uint32_t *v, size_t n, double q) {
    size_t rank = (size_t)ceil(q * (double)n);
    if (rank < 1)
        rank = 1;
    return v[rank - 1];
}

sq_status sq_data_summarize(const sq_dataset *d, sq_data_summary *s, sq_error *err) {
    memset(s, 0, sizeof *s);
    const sq_data_info *info = sq_data_info_of(d);
    uint32_t nu = info->n_users;
    uint32_t *lens = sq_mallocn(nu ? nu : 1, sizeof *lens);
    uint32_t *last_seen = sq_calloc(info->n_items ? info->n_items : 1, sizeof *last_seen);
    s->behaviour_counts = sq_calloc(info->n_behaviours + 1, sizeof *s->behaviour_counts);
    s->scene_counts = sq_calloc(info->n_scenes + 1, sizeof *s->scene_counts);
    if (!lens || !last_seen || !s->behaviour_counts || !s->scene_counts) {
        sq_free(lens);
        sq_free(last_seen);
        sq_data_summary_free(s);
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
    }
    const uint64_t *off = sq_data_offsets(d);
    const uint32_t *items = sq_data_items(d);
    const uint8_t *beh = sq_data_behaviours(d);
    const uint16_t *scene = sq_data_scenes(d);
    uint64_t pairs = 0;
    double sum = 0;
    for (uint32_t u = 0; u < nu; u++) {
        lens[u] = (uint32_t)(off[u + 1] - off[u]);
        sum += lens[u];
        for (uint64_t e = off[u]; e < off[u + 1]; e++) {
            s->behaviour_counts[beh[e]]++;
            s->scene_counts[scene[e]]++;
            /* last_seen holds user + 1 of the last user that had the item: counts distinct
             * (user, item) pairs in one pass because each user's events are contiguous. */
            if (last_seen[items[e]] != u + 1) {
                last_seen[items[e]] = u + 1;
                pairs++;
            }
        }
    }
    if (nu) {
        s->len_mean = sum / nu;
        qsort(lens, nu, sizeof *lens, cmp_u32);
        s->len_min = lens[0];
        s->len_max = lens[nu - 1];
        s->len_p25 = percentile(lens, nu, 0.25);
        s->len_p50 = percentile(lens, nu, 0.50);
        s->len_p75 = percentile(lens, nu, 0.75);
        s->len_p90 = percentile(lens, nu, 0.90);
        s->len_p99 = percentile(lens, nu, 0.99);
    }
    if (nu && info->n_items)
        s->density = (double)pairs / ((double)nu * info->n_items);
    for (uint32_t i = 0; i < info->n_items; i++) {
        uint32_t nt = 0;
        size_t tl = 0;
        sq_data_item_tags(d, i, &nt);
        sq_data_item_text(d, i, &tl);
        s->items_with_tags += nt > 0;
        s->items_with_text += tl > 0;
    }
    const uint32_t *ua = sq_data_user_attrs(d);
    if (ua && info->n_user_attrs)
        for (uint32_t u = 0; u < nu; u++)
            for (uint32_t f = 0; f < info->n_user_attrs; f++)
                if (ua[(size_t)u * info->n_user_attrs + f] != UINT32_MAX) {
                    s->users_with_attrs++;
                    break;
                }
    sq_free(lens);
    sq_free(last_seen);
    return SQ_OK;
}

void sq_data_summary_free(sq_data_summary *s) {
    if (!s)
        return;
    sq_free(s->behaviour_counts);
    sq_free(s->scene_counts);
    s->behaviour_counts = NULL;
    s->scene_counts = NULL;
}

char *sq_data_stats_json(const sq_dataset *d, const sq_data_summary *s) {
    const sq_data_info *info = sq_data_info_of(d);
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "events", (double)info->n_events);
    cJSON_AddNumberToObject(o, "users", info->n_users);
    cJSON_AddNumberToObject(o, "items", info->n_items);
    cJSON *b = cJSON_AddObjectToObject(o, "behaviours");
    for (uint32_t i = 0; b && i < info->n_behaviours; i++)
        cJSON_AddNumberToObject(b, sq_data_behaviour_name(d, i), (double)s->behaviour_counts[i]);
    cJSON *sc = cJSON_AddObjectToObject(o, "scenes");
    for (uint32_t i = 0; sc && i < info->n_scenes; i++)
        if (s->scene_counts[i])
            cJSON_AddNumberToObject(sc, sq_data_scene_name(d, i), (double)s->scene_counts[i]);
    cJSON_AddNumberToObject(o, "time_min", (double)info->time_min);
    cJSON_AddNumberToObject(o, "time_max", (double)info->time_max);
    cJSON_AddBoolToObject(o, "real_time", (info->flags & SQ_DATA_REAL_TIME) != 0);
    cJSON *l = cJSON_AddObjectToObject(o, "sequence_length");
    if (l) {
        cJSON_AddNumberToObject(l, "min", s->len_min);
        cJSON_AddNumberToObject(l, "p25", s->len_p25);
        cJSON_AddNumberToObject(l, "p50", s->len_p50);
        cJSON_AddNumberToObject(l, "p75", s->len_p75);
        cJSON_AddNumberToObject(l, "p90", s->len_p90);
        cJSON_AddNumberToObject(l, "p99", s->len_p99);
        cJSON_AddNumberToObject(l, "max", s->len_max);
        cJSON_AddNumberToObject(l, "mean", s->len_mean);
    }
    cJSON_AddNumberToObject(o, "density", s->density);
    cJSON *cf = cJSON_AddArrayToObject(o, "context_fields");
    for (uint32_t f = 0; cf && f < info->n_ctx; f++)
        cJSON_AddItemToArray(cf, cJSON_CreateString(sq_data_ctx_name(d, f)));
    cJSON *side = cJSON_AddObjectToObject(o, "side");
    if (side) {
        cJSON_AddNumberToObject(side, "tags", info->n_tags);
        cJSON_AddNumberToObject(side, "items_with_tags", (double)s->items_with_tags);
        cJSON_AddNumberToObject(side, "items_with_text", (double)s->items_with_text);
        cJSON *num = cJSON_AddArrayToObject(side, "item_numeric");
        for (uint32_t k = 0; num && k < info->n_item_num; k++)
            cJSON_AddItemToArray(num, cJSON_CreateString(sq_data_item_num_name(d, k)));
        cJSON *ua = cJSON_AddArrayToObject(side, "user_attributes");
        for (uint32_t f = 0; ua && f < info->n_user_attrs; f++)
            cJSON_AddItemToArray(ua, cJSON_CreateString(sq_data_user_attr_name(d, f)));
        cJSON_AddNumberToObject(side, "users_with_attributes", (double)s->users_with_attrs);
    }
    const char *meta = sq_data_meta_json(d);
    cJSON *m = meta ? cJSON_Parse(meta) : NULL;
    if (m)
        cJSON_AddItemToObject(o, "ingest", m);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text)
        return NULL;
    char *out = sq_strdup(text);
    cJSON_free(text);
    return out;
}
