/*
 * testutil.c - see testutil.h.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

st_err tu_err;

char *tu_tempdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char *tmpl = st_sprintf("%s/strata-%s-XXXXXX", base ? base : "/tmp", tag);
    if (!tmpl || !mkdtemp(tmpl))
        fail_msg("mkdtemp failed");
    return tmpl;
}

void tu_rmdir(char *dir)
{
    if (!dir)
        return;
    if (!getenv("STRATA_KEEP_TMP"))
        st_rmtree(dir, NULL);
    st_free(dir);
}

const char *tu_shared_dir(void)
{
    const char *s = getenv("STRATA_SHARED");
    if (!s || !st_is_dir(s))
        return NULL;
    return s;
}

const char *tu_strata_bin(void)
{
    const char *s = getenv("STRATA_BIN");
    return s ? s : "strata";
}

int tu_run(char **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = st_vsprintf(fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    st_free(cmd);
    if (!p)
        return -1;
    st_buf b;
    st_buf_init(&b, 0);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        st_buf_append(&b, chunk, n);
    int status = pclose(p);
    if (out)
        *out = st_buf_take(&b);
    else
        st_buf_free(&b);
    if (status < 0 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

st_engine *tu_engine(void)
{
    st_engine *e = NULL;
    st_engine_opts o = {.threads = 2};
    if (st_engine_open(&o, &e, &tu_err) != ST_OK)
        fail_msg("engine open: %s", tu_err.msg);
    return e;
}
