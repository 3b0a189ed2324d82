/*
 * cron.c - 5-field cron expressions: parsing into bit sets and finding the
 * next fire time (UTC, minute resolution).  The scheduler (sched.c) calls
 * st_cron_next between ticks.
 */
#include "strata/orch.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                     "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

typedef struct field_spec {
    const char *name;
    int lo, hi;
    const char *const *names;  /* names[i] is value i + names_base */
    int n_names, names_base;
} field_spec;

static const field_spec fields[5] = {
    {"minute", 0, 59, NULL, 0, 0},
    {"hour", 0, 23, NULL, 0, 0},
    {"day-of-month", 1, 31, NULL, 0, 0},
    {"month", 1, 12, months, 12, 1},
    {"day-of-week", 0, 7, days, 7, 0},
};

/* Reads a number or a name at *p; -1 when neither. */
static int read_value(const field_spec *f, const char **p)
{
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        int v = 0;
        while (isdigit((unsigned char)*s) && v < 1000)
            v = v * 10 + (*s++ - '0');
        if (isdigit((unsigned char)*s))
            return -1;
        *p = s;
        return v;
    }
    for (int i = 0; f->names && i < f->n_names; i++) {
        if (!strncasecmp(s, f->names[i], 3) && !isalpha((unsigned char)s[3])) {
            *p = s + 3;
            return i + f->names_base;
        }
    }
    return -1;
}

/* Parses one field (text [b, e)) into bits. */
static st_rc parse_field(const field_spec *f, const char *b, const char *e, uint64_t *bits,
                         bool *star, st_err *err)
{
    *bits = 0;
    *star = *b == '*';
    const char *p = b;
    while (p < e) {
        const char *item = p;
        int lo, hi, step = 1;
        if (*p == '*') {
            lo = f->lo;
            hi = f->hi == 7 ? 6 : f->hi;
            p++;
        } else {
            lo = read_value(f, &p);
            if (lo < 0)
                goto bad;
            hi = lo;
            if (p < e && *p == '-') {
                p++;
                hi = read_value(f, &p);
                if (hi < 0)
                    goto bad;
            }
        }
        bool ranged = item[0] == '*' || hi != lo || (p > item && memchr(item, '-', (size_t)(p - item)));
        if (p < e && *p == '/') {
            p++;
            if (p >= e || !isdigit((unsigned char)*p))
                goto bad;
            step = 0;
            while (p < e && isdigit((unsigned char)*p) && step < 1000)
                step = step * 10 + (*p++ - '0');
            if (step < 1 || (p < e && isdigit((unsigned char)*p)))
                goto bad;
            if (!ranged)
                hi = f->hi == 7 ? 6 : f->hi;  /* "5/15" means 5-max/15 */
        }
        if (lo < f->lo || hi > f->hi || lo > hi)
            return st_fail(err, ST_ERR_PARSE, "cron %s: '%.*s' is outside %d-%d or reversed",
                           f->name, (int)(e - item), item, f->lo, f->hi);
        for (int v = lo; v <= hi; v += step)
            *bits |= 1ull << (f->hi == 7 && v == 7 ? 0 : v);
        if (p < e && *p != ',')
            goto bad;
        if (p < e)
            p++;
        if (p == e && p[-1] == ',')
            goto bad;
        continue;
    bad:
        return st_fail(err, ST_ERR_PARSE, "cron %s: cannot parse '%.*s'", f->name,
                       (int)(e - b), b);
    }
    if (!*bits)
        return st_fail(err, ST_ERR_PARSE, "cron %s: empty field", f->name);
    return ST_OK;
}

st_rc st_cron_parse(const char *expr, st_cron *out, st_err *err)
{
    static const struct {
        const char *macro, *expansion;
    } macros[] = {{"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
                  {"@weekly", "0 0 * * 0"},  {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
                  {"@hourly", "0 * * * *"}};
    if (!expr)
        return st_fail(err, ST_ERR_PARSE, "cron: empty expression");
    while (isspace((unsigned char)*expr))
        expr++;
    if (*expr == '@') {
        for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++) {
            size_t n = strlen(macros[i].macro);
            if (!strncmp(expr, macros[i].macro, n)) {
                const char *rest = expr + n;
                while (isspace((unsigned char)*rest))
                    rest++;
                if (!*rest)
                    return st_cron_parse(macros[i].expansion, out, err);
            }
        }
        return st_fail(err, ST_ERR_PARSE, "cron: unknown macro '%.32s'", expr);
    }
    st_cron c;
    memset(&c, 0, sizeof c);
    const char *p = expr;
    for (int i = 0; i < 5; i++) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            return st_fail(err, ST_ERR_PARSE,
                           "cron '%.64s': expected 5 fields (minute hour day-of-month month "
                           "day-of-week), got %d", expr, i);
        const char *b = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        uint64_t bits = 0;
        bool star = false;
        st_rc rc = parse_field(&fields[i], b, p, &bits, &star, err);
        if (rc)
            return rc;
        switch (i) {
        case 0: c.minute = bits; break;
        case 1: c.hour = (uint32_t)bits; break;
        case 2: c.dom = (uint32_t)bits; c.dom_star = star; break;
        case 3: c.month = (uint16_t)bits; break;
        default: c.dow = (uint8_t)bits; c.dow_star = star; break;
        }
    }
    while (isspace((unsigned char)*p))
        p++;
    if (*p)
        return st_fail(err, ST_ERR_PARSE, "cron '%.64s': more than 5 fields", expr);
    *out = c;
    return ST_OK;
}

static bool day_matches(const st_cron *c, const struct tm *tm)
{
    bool dom = (c->dom >> tm->tm_mday) & 1u;
    bool dow = (c->dow >> tm->tm_wday) & 1u;
    if (c->dom_star || c->dow_star)
        return dom && dow;
    return dom || dow;
}

bool st_cron_matches(const st_cron *c, int64_t t_ms)
{
    time_t t = (time_t)(t_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    return ((c->minute >> tm.tm_min) & 1u) && ((c->hour >> tm.tm_hour) & 1u) &&
           ((c->month >> (tm.tm_mon + 1)) & 1u) && day_matches(c, &tm);
}

st_rc st_cron_next(const st_cron *c, int64_t after_ms, int64_t *out_ms, st_err *err)
{
    time_t t = (time_t)(after_ms / 1000);
    if (after_ms < 0 && after_ms % 1000)
        t--;
    t = t - t % 60 + 60;  /* the next whole minute */
    struct tm tm;
    gmtime_r(&t, &tm);
    tm.tm_sec = 0;
    int start_year = tm.tm_year;
    /* jump whole months, days and hours that cannot match */
    for (int guard = 0; guard < 200000; guard++) {
        if (tm.tm_year - start_year > 5)
            break;
        if (!((c->month >> (tm.tm_mon + 1)) & 1u)) {
            tm.tm_mon++;
            tm.tm_mday = 1;
            tm.tm_hour = 0;
            tm.tm_min = 0;
            t = timegm(&tm);
            gmtime_r(&t, &tm);
            continue;
        }
        if (!day_matches(c, &tm)) {
            tm.tm_mday++;
            tm.tm_hour = 0;
            tm.tm_min = 0;
            t = timegm(&tm);
            gmtime_r(&t, &tm);
            continue;
        }
        if (!((c->hour >> tm.tm_hour) & 1u)) {
            tm.tm_hour++;
            tm.tm_min = 0;
            t = timegm(&tm);
            gmtime_r(&t, &tm);
            continue;
        }
        if (!((c->minute >> tm.tm_min) & 1u)) {
            tm.tm_min++;
            t = timegm(&tm);
            gmtime_r(&t, &tm);
            continue;
        }
        *out_ms = (int64_t)timegm(&tm) * 1000;
        return ST_OK;
    }
    return st_fail(err, ST_ERR_NOTFOUND, "cron: no fire time within 5 years");
}
