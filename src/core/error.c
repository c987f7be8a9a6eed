/* error.c — status names and the one formatter every error message goes through. */
#include "seqrec/core.h"

#include <stdio.h>
#include <string.h>

const char *sq_strerror(sq_status code) {
    switch (code) {
    case SQ_OK: return "ok";
    case SQ_ERR_IO: return "I/O error";
    case SQ_ERR_NOMEM: return "out of memory";
    case SQ_ERR_PARSE: return "parse error";
    case SQ_ERR_FORMAT: return "bad file format";
    case SQ_ERR_ARG: return "invalid argument";
    case SQ_ERR_NUMERIC: return "numeric error";
    case SQ_ERR_MISMATCH: return "mismatch";
    case SQ_ERR_NOTFOUND: return "not found";
    case SQ_ERR_LIMIT: return "limit exceeded";
    case SQ_ERR_EMPTY: return "nothing left";
    case SQ_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

sq_status sq_errorf(sq_error *err, sq_status code, const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n < 0) {
        snprintf(err->msg, sizeof err->msg, "%s", sq_strerror(code));
    } else if ((size_t)n >= sizeof err->msg) {
        memcpy(err->msg + sizeof err->msg - 4, "...", 4);
    }
    /* One line: user text must not be able to break a protocol or a log line. */
    for (char *p = err->msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    return code;
}
