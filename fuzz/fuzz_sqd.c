/* fuzz_sqd.c — libFuzzer target for sq_data_open: whatever the bytes, opening must either fail
 * cleanly with SQ_ERR_FORMAT (or SQ_ERR_IO) or succeed, and then every accessor must stay
 * inside the mapping for every id the counts allow.
 *
 * Random bytes rarely get past the checksums, so each input is tried twice: as given, and
 * "resealed" — with every section crc, the directory crc, the fingerprint and the header crc
 * recomputed — so that mutations reach the structural and consistency checks behind them.
 * Seeds: fuzz/corpus/fuzz_sqd/ holds small valid datasets written by sq_ingest_write. */
#define _POSIX_C_SOURCE 200809L
#include "data/sqd.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static void cleanup(void) {
    if (path[0])
        unlink(path);
}

/* Recomputes the checksums of a copy; entries pointing outside the buffer are left alone. */
static void reseal(unsigned char *buf, size_t n) {
    sqd_header h;
    if (n < sizeof h)
        return;
    memcpy(&h, buf, sizeof h);
    if (h.n_sections > SQD_MAX_SECTIONS || sizeof h + (size_t)h.n_sections * 32 > n)
        return;
    sqd_dirent dir[SQD_MAX_SECTIONS];
    memcpy(dir, buf + sizeof h, (size_t)h.n_sections * sizeof *dir);
    for (uint32_t k = 0; k < h.n_sections; k++)
        if (dir[k].offset <= n && dir[k].size <= n - dir[k].offset)
            dir[k].crc = sq_crc32(0, buf + dir[k].offset, (size_t)dir[k].size);
    memcpy(buf + sizeof h, dir, (size_t)h.n_sections * sizeof *dir);
    h.dir_crc = sq_crc32(0, dir, (size_t)h.n_sections * sizeof *dir);
    h.file_size = n;
    h.fingerprint = sqd_fingerprint(&h, dir, h.n_sections);
    h.header_crc = sq_crc32(0, &h, offsetof(sqd_header, header_crc));
    memcpy(buf, &h, sizeof h);
}

/* Reads everything a model or the CLI could read; the sum keeps the loads alive. */
static uint64_t touch(const sq_dataset *d) {
    const sq_data_info *in = sq_data_info_of(d);
    uint64_t sum = 0;
    const uint64_t *off = sq_data_offsets(d);
    const uint32_t *ctx = sq_data_context(d), *sess = sq_data_sessions(d);
    for (uint32_t u = 0; u < in->n_users; u++) {
        for (uint64_t k = off[u]; k < off[u + 1]; k++) {
            uint32_t it = sq_data_items(d)[k];
            sum += it + (uint64_t)sq_data_times(d)[k] + sq_data_behaviours(d)[k] +
                   sq_data_scenes(d)[k] + (sq_data_values(d)[k] > 0);
            sum += strlen(sq_data_item_id(d, it, NULL));
            sum += strlen(sq_data_behaviour_name(d, sq_data_behaviours(d)[k]));
            sum += strlen(sq_data_scene_name(d, sq_data_scenes(d)[k]));
            for (uint32_t f = 0; f < in->n_ctx; f++)
                sum += strlen(sq_data_ctx_value(d, f, ctx[k * in->n_ctx + f]));
            if (sess)
                sum += sess[k];
        }
        size_t len;
        const char *id = sq_data_user_id(d, u, &len);
        if (sq_data_find_user(d, id, len) > u) /* a repeated id maps to its first copy */
            abort();
        for (uint32_t f = 0; f < in->n_user_attrs; f++) {
            uint32_t v = sq_data_user_attrs(d)[(size_t)u * in->n_user_attrs + f];
            if (v != UINT32_MAX)
                sum += strlen(sq_data_user_attr_value(d, f, v));
        }
        for (uint32_t c = 0; c < SQ_USTAT_FIXED + in->n_behaviours; c++)
            sum += sq_data_user_stats(d)[(size_t)u * (SQ_USTAT_FIXED + in->n_behaviours) + c] > 0;
    }
    for (uint32_t i = 0; i < in->n_items; i++) {
        size_t len;
        const char *id = sq_data_item_id(d, i, &len);
        if (sq_data_find_item(d, id, len) > i)
            abort();
        uint32_t nt;
        const uint32_t *tags = sq_data_item_tags(d, i, &nt);
        for (uint32_t k = 0; k < nt; k++)
            sum += strlen(sq_data_tag_name(d, tags[k]));
        sum += strlen(sq_data_item_text(d, i, NULL));
        for (uint32_t a = 0; a < in->n_item_num; a++)
            sum += sq_data_item_num(d)[(size_t)i * in->n_item_num + a] > 0;
        for (uint32_t c = 0; c < SQ_ISTAT_FIXED + in->n_behaviours; c++)
            sum += sq_data_item_stats(d)[(size_t)i * (SQ_ISTAT_FIXED + in->n_behaviours) + c] > 0;
    }
    for (uint32_t f = 0; f < in->n_ctx; f++)
        sum += strlen(sq_data_ctx_name(d, f)) + sq_data_ctx_size(d, f);
    for (uint32_t f = 0; f < in->n_user_attrs; f++)
        sum += strlen(sq_data_user_attr_name(d, f)) + sq_data_user_attr_size(d, f);
    for (uint32_t a = 0; a < in->n_item_num; a++)
        sum += strlen(sq_data_item_num_name(d, a));
    sum += strlen(sq_data_meta_json(d));
    sum += sq_data_find_behaviour(d, "view");
    return sum;
}

static void try_open(const unsigned char *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    sq_dataset *d = NULL;
    sq_error err = {0};
    sq_status rc = sq_data_open(&d, path, &err);
    if (rc == SQ_OK) {
        volatile uint64_t s = touch(d);
        (void)s;
        sq_data_close(d);
    } else if (d || (rc != SQ_ERR_FORMAT && rc != SQ_ERR_IO && rc != SQ_ERR_NOMEM)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/fuzz_sqd.%ld.sqd", (long)getpid());
        atexit(cleanup);
    }
    try_open(data, size);
    unsigned char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    reseal(copy, size);
    try_open(copy, size);
    free(copy);
    return 0;
}
