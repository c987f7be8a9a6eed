/* runlog.c — a metrics log back into runs (see runlog.h). */
#define _POSIX_C_SOURCE 200809L
#include "train/runlog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A fresh run object appended to runs. */
static cJSON *new_run(cJSON *runs, const char *path) {
    cJSON *r = cJSON_CreateObject();
    if (!r)
        return NULL;
    cJSON_AddItemToArray(runs, r);
    if (!cJSON_AddStringToObject(r, "file", path) ||
        !cJSON_AddNumberToObject(r, "run", cJSON_GetArraySize(runs)) ||
        !cJSON_AddArrayToObject(r, "epochs") || !cJSON_AddNullToObject(r, "summary"))
        return NULL;
    return r;
}

/* Gives the run its model, output and name (from the summary when there is one). */
static int finish_run(cJSON *r) {
    const cJSON *sum = cJSON_GetObjectItem(r, "summary");
    const char *model = cJSON_GetStringValue(cJSON_GetObjectItem(sum, "model"));
    const char *output = cJSON_GetStringValue(cJSON_GetObjectItem(sum, "output"));
    char name[160];
    snprintf(name, sizeof name, "%.100s #%d", model ? model : "run",
             (int)cJSON_GetNumberValue(cJSON_GetObjectItem(r, "run")));
    if (!cJSON_AddStringToObject(r, "name", name))
        return -1;
    if (!(model ? cJSON_AddStringToObject(r, "model", model) : cJSON_AddNullToObject(r, "model")))
        return -1;
    if (!(output ? cJSON_AddStringToObject(r, "output", output)
                 : cJSON_AddNullToObject(r, "output")))
        return -1;
    return 0;
}

sq_status sq_runlog_read(const char *path, cJSON **out, sq_error *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return sq_errorf(err, SQ_ERR_IO, "%s: %s", path, strerror(errno));
    sq_status rc = SQ_OK;
    cJSON *runs = cJSON_CreateArray(), *cur = NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long lineno = 0;
    double last_epoch = 0;
    if (!runs) {
        rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
            line[--n] = 0;
        if (!n)
            continue;
        cJSON *o = cJSON_ParseWithLength(line, (size_t)n);
        if (!o || !cJSON_IsObject(o)) {
            cJSON_Delete(o);
            rc = sq_errorf(err, SQ_ERR_PARSE, "%s:%lu: not a JSON object", path, lineno);
            goto done;
        }
        const cJSON *ep = cJSON_GetObjectItem(o, "epoch");
        const cJSON *vt = cJSON_GetObjectItem(o, "valid_tasks");
        if (cJSON_IsNumber(ep)) {
            if (cur && cJSON_GetArraySize(cJSON_GetObjectItem(cur, "epochs")) &&
                ep->valuedouble <= last_epoch) { /* a run stopped before its summary */
                if (finish_run(cur))
                    goto nomem;
                cur = NULL;
            }
            if (!cur && !(cur = new_run(runs, path))) {
                cJSON_Delete(o);
                goto nomem;
            }
            last_epoch = ep->valuedouble;
            cJSON_AddItemToArray(cJSON_GetObjectItem(cur, "epochs"), o);
        } else if (vt) {
            cJSON *eps = cur ? cJSON_GetObjectItem(cur, "epochs") : NULL;
            cJSON *lastep = eps ? cJSON_GetArrayItem(eps, cJSON_GetArraySize(eps) - 1) : NULL;
            if (!lastep) {
                cJSON_Delete(o);
                rc = sq_errorf(err, SQ_ERR_PARSE, "%s:%lu: valid_tasks before any epoch", path,
                               lineno);
                goto done;
            }
            cJSON_AddItemToObject(lastep, "valid_tasks",
                                  cJSON_DetachItemFromObject(o, "valid_tasks"));
            cJSON_Delete(o);
        } else if (cJSON_GetObjectItem(o, "model")) {
            if (!cur && !(cur = new_run(runs, path))) {
                cJSON_Delete(o);
                goto nomem;
            }
            cJSON_ReplaceItemInObject(cur, "summary", o);
            if (finish_run(cur))
                goto nomem;
            cur = NULL;
        } else {
            cJSON_Delete(o);
            rc = sq_errorf(err, SQ_ERR_PARSE,
                           "%s:%lu: neither an epoch, valid_tasks nor a run summary (model)", path,
                           lineno);
            goto done;
        }
    }
    if (ferror(f)) {
        rc = sq_errorf(err, SQ_ERR_IO, "%s: read error", path);
        goto done;
    }
    if (cur && finish_run(cur))
        goto nomem;
    goto done;
nomem:
    rc = sq_errorf(err, SQ_ERR_NOMEM, "out of memory");
done:
    free(line);
    fclose(f);
    if (rc)
        cJSON_Delete(runs);
    else
        *out = runs;
    return rc;
}
