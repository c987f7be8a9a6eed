/* fuzz_events.c — libFuzzer target for the body of POST /v1/events: the JSON guard (nesting
 * depth, trailing text) and the event validation the server runs before storing anything.
 * Checks: it never crashes or leaks; an accepted body has 1..max_batch events, each with a
 * non-empty user, item and behaviour of bounded length and a time in range. */
#include "serve/serve_int.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char msg[320];
    sv_events e;
    unsigned st = sv_events_parse((const char *)data, size, 16, 50, 1700000000, &e, msg,
                                  sizeof msg);
    if (st == 0) {
        if (e.n < 1 || e.n > 50)
            abort();
        for (size_t i = 0; i < e.n; i++) {
            const sq_store_event *v = &e.ev[i];
            if (!v->user_len || v->user_len > 256 || !v->item_len || v->item_len > 256 ||
                !v->behaviour || !*v->behaviour || strlen(v->behaviour) > 64 || v->ts < 0 ||
                v->ts > 4102444800LL || !v->scene)
                abort();
        }
    } else if (st != 400 && st != 413 && st != 500) {
        abort();
    } else if (!memchr(msg, 0, sizeof msg) || !*msg) {
        abort();
    }
    sv_events_free(&e);
    return 0;
}
