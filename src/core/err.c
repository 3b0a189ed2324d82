/*
 * err.c - st_err reports and logging.
 *
 * An error is one line that grows context prefixes as it travels up the
 * call stack; st_log writes leveled lines to stderr.
 */
#include "strata/core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *st_rc_name(st_rc rc)
{
    switch (rc) {
    case ST_OK: return "ok";
    case ST_ERR_NOMEM: return "out of memory";
    case ST_ERR_IO: return "I/O error";
    case ST_ERR_PARSE: return "parse error";
    case ST_ERR_INVALID: return "invalid";
    case ST_ERR_CONFLICT: return "conflict";
    case ST_ERR_EXISTS: return "already exists";
    case ST_ERR_NOTFOUND: return "not found";
    case ST_ERR_UNSUPPORTED: return "unsupported";
    case ST_ERR_ENGINE: return "engine error";
    case ST_ERR_REMOTE: return "remote error";
    case ST_ERR_CORRUPT: return "corrupt";
    case ST_ERR_LIMIT: return "limit exceeded";
    }
    return "unknown";
}

static void vset(st_err *err, st_rc code, int sub, const char *fmt, va_list ap)
{
    err->code = code;
    err->sub = sub;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
}

st_rc st_fail(st_err *err, st_rc code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vset(err, code, 0, fmt, ap);
        va_end(ap);
    }
    return code;
}

st_rc st_fail_errno(st_err *err, st_rc code, const char *fmt, ...)
{
    int e = errno;
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vset(err, code, e, fmt, ap);
        va_end(ap);
        size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof err->msg - n, ": %s", strerror(e));
    }
    errno = e;
    return code;
}

void st_err_ctx(st_err *err, const char *fmt, ...)
{
    if (!err)
        return;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* shift the message right and put the prefix in front; truncation at
     * the end is acceptable, the head of the chain matters most */
    size_t pl = strlen(prefix);
    if (pl + 2 >= sizeof err->msg)
        pl = sizeof err->msg - 3;
    size_t ml = strlen(err->msg);
    if (pl + 2 + ml >= sizeof err->msg)
        ml = sizeof err->msg - pl - 3;
    memmove(err->msg + pl + 2, err->msg, ml);
    err->msg[pl + 2 + ml] = '\0';
    memcpy(err->msg, prefix, pl);
    err->msg[pl] = ':';
    err->msg[pl + 1] = ' ';
}

void st_err_clear(st_err *err)
{
    if (err) {
        err->code = ST_OK;
        err->sub = 0;
        err->msg[0] = '\0';
    }
}

/* Set once at start-up, read everywhere: the one piece of global state. */
static st_log_level g_level = ST_LOG_INFO;

void st_log_init(void)
{
    const char *v = getenv("STRATA_LOG");
    if (!v)
        return;
    if (!strcasecmp(v, "debug"))
        g_level = ST_LOG_DEBUG;
    else if (!strcasecmp(v, "info"))
        g_level = ST_LOG_INFO;
    else if (!strcasecmp(v, "warn"))
        g_level = ST_LOG_WARN;
    else if (!strcasecmp(v, "error"))
        g_level = ST_LOG_ERROR;
}

void st_log_set_level(st_log_level level) { g_level = level; }
st_log_level st_log_get_level(void) { return g_level; }

void st_log(st_log_level level, const char *fmt, ...)
{
    if (level < g_level)
        return;
    static const char *names[] = {"debug", "info", "warn", "error"};
    char line[4096];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, names[level]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    /* one fputs per line so concurrent writers do not interleave mid-line */
    size_t len = strlen(line);
    if (len + 1 < sizeof line) {
        line[len] = '\n';
        line[len + 1] = '\0';
    }
    fputs(line, stderr);
}
