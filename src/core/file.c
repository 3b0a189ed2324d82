/*
 * file.c - durable file primitives: whole-file read, atomic replace,
 * put-if-absent create (the Delta commit primitive), fsync of files and
 * directories, mkdir -p and rm -rf, clocks and UUIDs.
 */
#include "strata/core.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

st_rc st_file_read(const char *path, size_t max, char **out, size_t *out_len, st_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return st_fail_errno(err, errno == ENOENT ? ST_ERR_NOTFOUND : ST_ERR_IO, "open %s", path);
    st_buf b;
    st_buf_init(&b, max);
    char chunk[65536];
    st_rc rc = ST_OK;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = st_fail_errno(err, ST_ERR_IO, "read %s", path);
            break;
        }
        if (n == 0)
            break;
        rc = st_buf_append(&b, chunk, (size_t)n);
        if (rc) {
            rc = st_fail(err, rc, "read %s: file larger than %zu bytes", path, max);
            break;
        }
    }
    close(fd);
    if (rc) {
        st_buf_free(&b);
        return rc;
    }
    if (out_len)
        *out_len = b.len;
    *out = st_buf_take(&b);
    return ST_OK;
}

static st_rc write_all(int fd, const void *data, size_t len, const char *path, st_err *err)
{
    const char *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return st_fail_errno(err, ST_ERR_IO, "write %s", path);
        }
        p += n;
        len -= (size_t)n;
    }
    return ST_OK;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return st_strdup(".");
    if (slash == path)
        return st_strdup("/");
    return st_strndup(path, (size_t)(slash - path));
}

st_rc st_fsync_dir(const char *dir, st_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return st_fail_errno(err, ST_ERR_IO, "open directory %s", dir);
    int r = fsync(fd);
    close(fd);
    if (r < 0 && errno != EINVAL)
        return st_fail_errno(err, ST_ERR_IO, "fsync directory %s", dir);
    return ST_OK;
}

st_rc st_fsync_path(const char *path, st_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return st_fail_errno(err, ST_ERR_IO, "open %s", path);
    int r = fsync(fd);
    close(fd);
    if (r < 0)
        return st_fail_errno(err, ST_ERR_IO, "fsync %s", path);
    return ST_OK;
}

/* Writes data to a fresh unique temp file beside path; OWNED *tmp_out. */
static st_rc write_temp(const char *path, const void *data, size_t len, char **tmp_out,
                        st_err *err)
{
    char id[37];
    st_uuid4(id);
    char *dir = dir_of(path);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char *tmp = st_sprintf("%s/.%s.%s.tmp", dir, base, id);
    st_free(dir);
    if (!tmp)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        st_rc rc = st_fail_errno(err, ST_ERR_IO, "create %s", tmp);
        st_free(tmp);
        return rc;
    }
    st_rc rc = write_all(fd, data, len, tmp, err);
    if (rc == ST_OK && fsync(fd) < 0)
        rc = st_fail_errno(err, ST_ERR_IO, "fsync %s", tmp);
    close(fd);
    if (rc) {
        unlink(tmp);
        st_free(tmp);
        return rc;
    }
    *tmp_out = tmp;
    return ST_OK;
}

st_rc st_file_write_atomic(const char *path, const void *data, size_t len, st_err *err)
{
    char *tmp = NULL;
    st_rc rc = write_temp(path, data, len, &tmp, err);
    if (rc)
        return rc;
    if (rename(tmp, path) < 0) {
        rc = st_fail_errno(err, ST_ERR_IO, "rename %s to %s", tmp, path);
        unlink(tmp);
        st_free(tmp);
        return rc;
    }
    st_free(tmp);
    char *dir = dir_of(path);
    rc = st_fsync_dir(dir, err);
    st_free(dir);
    return rc;
}

st_rc st_file_put_if_absent(const char *path, const void *data, size_t len, st_err *err)
{
    char *tmp = NULL;
    st_rc rc = write_temp(path, data, len, &tmp, err);
    if (rc)
        return rc;
    /* link(2) fails with EEXIST atomically and never exposes a partial file */
    if (link(tmp, path) < 0) {
        if (errno == EEXIST)
            rc = st_fail(err, ST_ERR_EXISTS, "%s already exists", path);
        else
            rc = st_fail_errno(err, ST_ERR_IO, "link %s", path);
        unlink(tmp);
        st_free(tmp);
        return rc;
    }
    unlink(tmp);
    st_free(tmp);
    char *dir = dir_of(path);
    rc = st_fsync_dir(dir, err);
    st_free(dir);
    return rc;
}

st_rc st_mkdirs(const char *path, st_err *err)
{
    char *p = st_strdup(path);
    if (!p)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    size_t n = strlen(p);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] == '/' || p[i] == '\0') {
            char c = p[i];
            p[i] = '\0';
            if (mkdir(p, 0755) < 0 && errno != EEXIST) {
                st_rc rc = st_fail_errno(err, ST_ERR_IO, "mkdir %s", p);
                st_free(p);
                return rc;
            }
            p[i] = c;
        }
    }
    st_free(p);
    return ST_OK;
}

st_rc st_rmtree(const char *path, st_err *err)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? ST_OK : st_fail_errno(err, ST_ERR_IO, "stat %s", path);
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) < 0 && errno != ENOENT)
            return st_fail_errno(err, ST_ERR_IO, "unlink %s", path);
        return ST_OK;
    }
    DIR *d = opendir(path);
    if (!d)
        return st_fail_errno(err, ST_ERR_IO, "opendir %s", path);
    st_rc rc = ST_OK;
    struct dirent *e;
    while (rc == ST_OK && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *child = st_path_join(path, e->d_name);
        rc = child ? st_rmtree(child, err) : ST_ERR_NOMEM;
        st_free(child);
    }
    closedir(d);
    if (rc == ST_OK && rmdir(path) < 0)
        rc = st_fail_errno(err, ST_ERR_IO, "rmdir %s", path);
    return rc;
}

bool st_path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

bool st_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *st_path_join(const char *a, const char *b)
{
    size_t la = strlen(a);
    while (la > 1 && a[la - 1] == '/')
        la--;
    while (*b == '/')
        b++;
    return st_sprintf("%.*s/%s", (int)la, a, b);
}

int64_t st_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t st_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t st_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void st_uuid4(char out[37])
{
    unsigned char r[16];
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t n = getrandom(r + got, sizeof r - got, 0);
        if (n > 0)
            got += (size_t)n;
    }
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12],
             r[13], r[14], r[15]);
}
