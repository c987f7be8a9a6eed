/* features.c — items' text and tags as hashed TF-IDF rows, users' attributes as one-hot rows
 * (features.h).
 *
 * Text is read as UTF-8, one code point at a time, and each code point falls in one class:
 *   WORD   letters and digits of spaced scripts (ASCII lower-cased, fullwidth ASCII folded);
 *   CJK    ideographs, kana and hangul: scripts written without spaces;
 *   SPACE  whitespace: ends a word, keeps the word chain (bigrams span it);
 *   PUNCT  everything else (punctuation, symbols, invalid bytes): ends a word and the chain.
 * A feature is hashed from a one-letter kind and its bytes, so "w" red (a word), "b" red·apple
 * (a bigram), "c" 蓝 (a character n-gram) and "t" red (a tag) are different features.
 *
 * Build: pass 1 hashes every item's features to 64 bits (so the dimension can be chosen from
 * the distinct count), pass 2 folds them into [0, dim), counts term frequencies per row and
 * document frequencies per column, then weights and normalises. */
#include "seqrec/features.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void sq_features_free(sq_features *f) {
    if (!f)
        return;
    sq_free(f->row_ptr);
    sq_free(f->col);
    sq_free(f->val);
    sq_free(f->idf);
    memset(f, 0, sizeof *f);
}

/* ======================================== Tokenizer ======================================== */

enum { C_WORD, C_CJK, C_SPACE, C_PUNCT };
enum { MAX_TOKEN = 64 }; /* bytes of a word kept (longer words are cut) */

/* Decodes one code point at s[0..n) (n ≥ 1) into *cp; returns its byte length (an invalid
 * sequence is one byte, U+FFFD). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || len > n) {
        *cp = 0xFFFD;
        return 1;
    }
    uint32_t v = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        v = v << 6 | (s[i] & 0x3F);
    }
    *cp = v;
    return len;
}

static size_t utf8_put(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The class of cp; *fold receives the code point a WORD character is kept as. */
static int classify(uint32_t cp, uint32_t *fold) {
    *fold = cp;
    if (cp < 0x80) {
        if (cp >= 'A' && cp <= 'Z') {
            *fold = cp + 32;
            return C_WORD;
        }
        if ((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9'))
            return C_WORD;
        return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' || cp == '\v'
                   ? C_SPACE
                   : C_PUNCT;
    }
    if (cp == 0xA0 || cp == 0x3000 || (cp >= 0x2000 && cp <= 0x200B))
        return C_SPACE;
    if ((cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) ||
        (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x20000 && cp <= 0x2FFFF) ||
        (cp >= 0x3041 && cp <= 0x30FF && cp != 0x30FB) || (cp >= 0xAC00 && cp <= 0xD7AF))
        return C_CJK;
    if (cp >= 0xFF10 && cp <= 0xFF5A) { /* fullwidth digits and letters: as ASCII */
        uint32_t a = cp - 0xFEE0;
        if ((a >= '0' && a <= '9') || (a >= 'a' && a <= 'z'))
            return *fold = a, C_WORD;
        if (a >= 'A' && a <= 'Z')
            return *fold = a + 32, C_WORD;
        return C_PUNCT;
    }
    if ((cp >= 0xC0 && cp <= 0xDE && cp != 0xD7)) { /* Latin-1 capitals */
        *fold = cp + 32;
        return C_WORD;
    }
    if (cp < 0xC0 || (cp >= 0x2000 && cp <= 0x2BFF) || (cp >= 0x3000 && cp <= 0x303F) ||
        (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF65) || cp == 0xFFFD ||
        cp == 0xD7 || cp == 0xF7 || cp == 0x30FB)
        return C_PUNCT;
    return C_WORD;
}

/* A list of 64-bit feature hashes being filled. */
typedef struct {
    uint64_t *h;
    size_t n, cap;
    int oom; /* an append failed */
} hash_list;

static void push_hash(hash_list *l, char kind, const char *a, size_t na, const char *b, size_t nb) {
    char buf[2 * MAX_TOKEN + 8];
    size_t o = 0;
    buf[o++] = kind;
    memcpy(buf + o, a, na);
    o += na;
    if (b) {
        buf[o++] = 0x1f;
        memcpy(buf + o, b, nb);
        o += nb;
    }
    if (l->n == l->cap && sq_grow((void **)&l->h, &l->cap, l->n + 1, sizeof *l->h)) {
        l->oom = 1;
        return;
    }
    l->h[l->n++] = sq_hash64(buf, o);
}

/* Appends the features of text[0..len) to l. */
static void text_features(const char *text, size_t len, hash_list *l) {
    const unsigned char *s = (const unsigned char *)text;
    char cur[MAX_TOKEN], prev[MAX_TOKEN], cjk_prev[4];
    size_t ncur = 0, nprev = 0, ncjk = 0;
    int have_prev = 0, in_word = 0;
    for (size_t i = 0; i <= len;) {
        uint32_t cp = 0, fold = 0;
        int cls = C_SPACE;
        size_t step = 1;
        if (i < len) {
            step = utf8_next(s + i, len - i, &cp);
            cls = classify(cp, &fold);
        }
        if (cls == C_WORD) {
            char u[4];
            size_t k = utf8_put(fold, u);
            if (ncur + k <= MAX_TOKEN) {
                memcpy(cur + ncur, u, k);
                ncur += k;
            }
            in_word = 1;
        } else if (in_word) { /* a word ends */
            push_hash(l, 'w', cur, ncur, NULL, 0);
            if (have_prev)
                push_hash(l, 'b', prev, nprev, cur, ncur);
            memcpy(prev, cur, ncur);
            nprev = ncur;
            have_prev = 1;
            ncur = 0;
            in_word = 0;
        }
        if (cls == C_CJK) {
            char u[4];
            size_t k = utf8_put(cp, u);
            push_hash(l, 'c', u, k, NULL, 0);
            if (ncjk)
                push_hash(l, 'c', cjk_prev, ncjk, u, k);
            memcpy(cjk_prev, u, k);
            ncjk = k;
        } else {
            ncjk = 0;
        }
        if (cls == C_CJK || cls == C_PUNCT)
            have_prev = 0;
        i += step;
    }
}

static void tag_feature(const char *tag, hash_list *l) {
    size_t n = strlen(tag);
    push_hash(l, 't', tag, n < MAX_TOKEN ? n : MAX_TOKEN, NULL, 0);
}

/* ========================================= Build ========================================== */

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts cols[0..n) and folds repeats into (col, count) pairs in place; returns the count. */
static uint32_t count_cols(uint32_t *cols, float *cnt, uint32_t n) {
    qsort(cols, n, sizeof *cols, cmp_u32);
    uint32_t w = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (w && cols[w - 1] == cols[i]) {
            cnt[w - 1] += 1;
        } else {
            cols[w] = cols[i];
            cnt[w++] = 1;
        }
    }
    return w;
}

static void normalise(float *v, uint64_t n) {
    double ss = 0;
    for (uint64_t i = 0; i < n; i++)
        ss += (double)v[i] * v[i];
    if (ss > 0)
        for (uint64_t i = 0; i < n; i++)
            v[i] = (float)(v[i] / sqrt(ss));
}

static uint32_t pick_dim(const uint64_t *h, size_t n) {
    uint64_t *tmp = sq_mallocn(n ? n : 1, sizeof *tmp);
    size_t distinct = n; /* without memory: assume all distinct */
    if (tmp) {
        memcpy(tmp, h, n * sizeof *tmp);
        qsort(tmp, n, sizeof *tmp, cmp_u64);
        distinct = 0;
        for (size_t i = 0; i < n; i++)
            distinct += !i || tmp[i] != tmp[i - 1];
        sq_free(tmp);
    }
    uint32_t dim = 1u << 10;
    while (dim < (1u << 18) && (uint64_t)dim < 4 * (uint64_t)distinct)
        dim <<= 1;
    return dim;
}

sq_status sq_item_features_build(const sq_dataset *d, const sq_features_opts *o, sq_features *f,
                                 sq_error *err) {
    static const sq_features_opts defaults = {0};
    if (!o)
        o = &defaults;
    memset(f, 0, sizeof *f);
    if (o->dim && (o->dim < 256 || o->dim > (1u << 24) || (o->dim & (o->dim - 1))))
        return sq_errorf(err, SQ_ERR_ARG,
                         "item features: dim %u is not a power of two in [256, 2^24]", o->dim);
    uint32_t ni = sq_data_info_of(d)->n_items;
    sq_status rc = SQ_OK;
    hash_list l = {0};
    uint64_t *hoff = sq_calloc((size_t)ni + 1, sizeof *hoff);
    if (!hoff) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory for item features");
        goto fail;
    }
    for (uint32_t i = 0; i < ni; i++) { /* pass 1: hashes per item */
        if (!o->no_text) {
            size_t len = 0;
            const char *t = sq_data_item_text(d, i, &len);
            if (t)
                text_features(t, len, &l);
        }
        uint32_t nt = 0;
        const uint32_t *tags = o->no_tags ? NULL : sq_data_item_tags(d, i, &nt);
        for (uint32_t k = 0; tags && k < nt; k++) {
            const char *name = sq_data_tag_name(d, tags[k]);
            if (name)
                tag_feature(name, &l);
        }
        hoff[i + 1] = l.n;
    }
    if (l.oom) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory for item features");
        goto fail;
    }
    f->n_rows = ni;
    f->dim = o->dim ? o->dim : pick_dim(l.h, l.n);
    f->row_ptr = sq_calloc((size_t)ni + 1, sizeof *f->row_ptr);
    f->col = sq_mallocn(l.n ? l.n : 1, sizeof *f->col);
    f->val = sq_mallocn(l.n ? l.n : 1, sizeof *f->val);
    f->idf = sq_calloc(f->dim, sizeof *f->idf);
    if (!f->row_ptr || !f->col || !f->val || !f->idf) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory for item features (dim %u)", f->dim);
        goto fail;
    }
    uint64_t w = 0; /* pass 2: columns and term frequencies, compacted in place */
    for (uint32_t i = 0; i < ni; i++) {
        uint32_t n = (uint32_t)(hoff[i + 1] - hoff[i]);
        for (uint32_t k = 0; k < n; k++)
            f->col[w + k] = (uint32_t)(l.h[hoff[i] + k] & (f->dim - 1));
        n = count_cols(f->col + w, f->val + w, n);
        for (uint32_t k = 0; k < n; k++)
            f->idf[f->col[w + k]] += 1; /* document frequency for now */
        w += n;
        f->row_ptr[i + 1] = w;
    }
    for (uint32_t c = 0; c < f->dim; c++)
        f->idf[c] = (float)(log((1.0 + ni) / (1.0 + f->idf[c])) + 1.0);
    for (uint32_t i = 0; i < ni; i++) {
        for (uint64_t p = f->row_ptr[i]; p < f->row_ptr[i + 1]; p++)
            f->val[p] *= f->idf[f->col[p]];
        normalise(f->val + f->row_ptr[i], f->row_ptr[i + 1] - f->row_ptr[i]);
    }
    sq_free(l.h);
    sq_free(hoff);
    return SQ_OK;
fail:
    sq_free(l.h);
    sq_free(hoff);
    sq_features_free(f);
    return rc;
}

sq_status sq_features_row(const sq_features *f, const char *text, size_t len,
                          const char *const *tags, uint32_t n_tags, uint32_t *col, float *val,
                          uint32_t cap, uint32_t *n, sq_error *err) {
    *n = 0;
    if (!f->idf || !f->dim)
        return sq_errorf(err, SQ_ERR_ARG, "features: no IDF table to featurise new text with");
    hash_list l = {0};
    if (text)
        text_features(text, len, &l);
    for (uint32_t k = 0; k < n_tags; k++)
        if (tags[k])
            tag_feature(tags[k], &l);
    uint32_t *cols = sq_mallocn(l.n ? l.n : 1, sizeof *cols);
    float *cnt = sq_mallocn(l.n ? l.n : 1, sizeof *cnt);
    sq_status rc = SQ_OK;
    if (l.oom || !cols || !cnt) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory featurising an item");
        goto done;
    }
    for (size_t k = 0; k < l.n; k++)
        cols[k] = (uint32_t)(l.h[k] & (f->dim - 1));
    uint32_t m = count_cols(cols, cnt, (uint32_t)l.n);
    if (m > cap) {
        rc = sq_errorf(err, SQ_ERR_LIMIT, "features: %u distinct columns, room for %u", m, cap);
        goto done;
    }
    for (uint32_t k = 0; k < m; k++) {
        col[k] = cols[k];
        val[k] = cnt[k] * f->idf[cols[k]];
    }
    normalise(val, m);
    *n = m;
done:
    sq_free(l.h);
    sq_free(cols);
    sq_free(cnt);
    return rc;
}

/* ===================================== User attributes ==================================== */

uint32_t sq_user_features_cols(const sq_dataset *d, const uint32_t *attrs, uint32_t *col) {
    uint32_t na = sq_data_info_of(d)->n_user_attrs, n = 0, base = 0;
    for (uint32_t k = 0; k < na; k++) {
        uint32_t size = sq_data_user_attr_size(d, k);
        if (attrs && attrs[k] < size)
            col[n++] = base + attrs[k];
        base += size;
    }
    return n;
}

sq_status sq_user_features_build(const sq_dataset *d, sq_features *f, sq_error *err) {
    memset(f, 0, sizeof *f);
    const sq_data_info *in = sq_data_info_of(d);
    uint32_t nu = in->n_users, na = in->n_user_attrs;
    const uint32_t *attrs = sq_data_user_attrs(d);
    for (uint32_t k = 0; k < na; k++)
        f->dim += sq_data_user_attr_size(d, k);
    f->n_rows = nu;
    f->row_ptr = sq_calloc((size_t)nu + 1, sizeof *f->row_ptr);
    size_t cap = (size_t)nu * na;
    f->col = sq_mallocn(cap ? cap : 1, sizeof *f->col);
    f->val = sq_mallocn(cap ? cap : 1, sizeof *f->val);
    if (!f->row_ptr || !f->col || !f->val) {
        sq_features_free(f);
        return sq_errorf(err, SQ_ERR_NOMEM, "out of memory for user features");
    }
    uint64_t w = 0;
    for (uint32_t u = 0; u < nu; u++) {
        uint32_t n = na && attrs ? sq_user_features_cols(d, attrs + (size_t)u * na, f->col + w) : 0;
        for (uint32_t k = 0; k < n; k++)
            f->val[w + k] = 1.0f;
        w += n;
        f->row_ptr[u + 1] = w;
    }
    return SQ_OK;
}
