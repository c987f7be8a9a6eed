/* afile.c — atomic file output: write a temporary file beside the target, fsync, rename over
 * the target, fsync the directory. A crash leaves the old file or the new one, never half. */
#define _POSIX_C_SOURCE 200809L
#include "seqrec/core.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <unistd.h>

struct sq_afile {
    FILE *f;     /* the temporary file */
    char *path;  /* the final name */
    char *tmp;   /* the temporary name */
};

static void afile_release(sq_afile *a) {
    sq_free(a->path);
    sq_free(a->tmp);
    sq_free(a);
}

sq_status sq_afile_open(sq_afile **out, const char *path, sq_error *err) {
    *out = NULL;
    sq_afile *a = sq_calloc(1, sizeof *a);
    size_t n = strlen(path) + 32;
    if (!a || !(a->path = sq_strdup(path)) || !(a->tmp = sq_malloc(n))) {
        if (a) afile_release(a);
        return sq_errorf(err, SQ_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(a->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(a->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        sq_status rc = sq_errorf(err, SQ_ERR_IO, "%s: %s", path, strerror(errno));
        afile_release(a);
        return rc;
    }
    if (!(a->f = fdopen(fd, "wb"))) {
        sq_status rc = sq_errorf(err, SQ_ERR_IO, "%s: %s", path, strerror(errno));
        close(fd);
        unlink(a->tmp);
        afile_release(a);
        return rc;
    }
    *out = a;
    return SQ_OK;
}

FILE *sq_afile_stream(sq_afile *a) {
    return a->f;
}

sq_status sq_afile_commit(sq_afile *a, sq_error *err) {
    sq_status rc = SQ_OK;
    int e = 0;
    if (fflush(a->f) != 0 || ferror(a->f)) e = errno ? errno : EIO;
    if (!e && fsync(fileno(a->f)) != 0) e = errno;
    if (fclose(a->f) != 0 && !e) e = errno;
    a->f = NULL;
    if (!e && rename(a->tmp, a->path) != 0) e = errno;
    if (e) {
        rc = sq_errorf(err, SQ_ERR_IO, "%s: %s", a->path, strerror(e));
        unlink(a->tmp);
    } else {
        /* Make the rename itself durable. */
        char *d = sq_strdup(a->path);
        if (d) {
            int dfd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                (void)fsync(dfd);
                close(dfd);
            }
            sq_free(d);
        }
    }
    afile_release(a);
    return rc;
}

void sq_afile_abort(sq_afile *a) {
    if (!a) return;
    if (a->f) {
        fclose(a->f);
        unlink(a->tmp);
    }
    afile_release(a);
}
