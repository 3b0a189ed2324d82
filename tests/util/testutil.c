/*
 * testutil.c - see testutil.h.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

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

int tu_serve_start(const char *const *args, int timeout_ms, int *out_port)
{
    const char *argv[32] = {"strata", "serve"};
    int k = 2;
    for (int i = 0; args[i] && k < 31; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    int p[2];
    if (pipe(p) != 0)
        fail_msg("pipe failed");
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork failed");
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execv(tu_strata_bin(), (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    char line[256];
    size_t n = 0;
    struct pollfd pf = {p[0], POLLIN, 0};
    int64_t deadline = st_now_ms() + timeout_ms;
    while (n < sizeof line - 1 && st_now_ms() < deadline) {
        if (poll(&pf, 1, 200) <= 0)
            continue;
        ssize_t r = read(p[0], line + n, 1);
        if (r <= 0 || line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    close(p[0]);
    int port = 0;
    if (sscanf(line, "listening on 127.0.0.1:%d", &port) != 1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("strata serve did not start: '%s'", line);
    }
    if (out_port)
        *out_port = port;
    return pid;
}
