/*
 * envelope.c - request body splitting and event envelope validation.
 *
 * A small validating JSON scanner (no tree, no allocation) finds each event
 * in a body (JSON array or NDJSON) and checks syntax, UTF-8 and depth; the
 * envelope validator then walks one event's top-level members with the same
 * scanner.  Events are stored as the exact bytes the client sent, so the
 * scanner only needs spans, never a parsed tree: this keeps the hot path of
 * the collector (server.c) free of per-event malloc.  evlog.c stores the
 * records built here.
 */
#include "strata/collect.h"

#include <stdio.h>
#include <string.h>

#define DEPTH_HARD_MAX 64

typedef struct scan {
    const char *p;
    const char *end;
    const char *why;   /* first error, static string */
    const char *at;    /* where it happened */
} scan;

static bool fail(scan *s, const char *why)
{
    if (!s->why) {
        s->why = why;
        s->at = s->p;
    }
    return false;
}

static void skip_ws(scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool hex4(scan *s, unsigned *out)
{
    if (s->end - s->p < 4)
        return fail(s, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = st_hex_digit((unsigned char)s->p[i]);
        if (h < 0)
            return fail(s, "bad \\u escape");
        v = v * 16 + (unsigned)h;
    }
    s->p += 4;
    *out = v;
    return true;
}

/* Length of the valid UTF-8 sequence at p (1-4), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned min;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2, min = 0x80, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, min = 0x800, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, min = 0x10000, cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* Scans a string starting at '"'.  When dst is not NULL, decodes into
 * dst[0..cap) (truncation reported through *out_len > cap). */
static bool scan_string(scan *s, char *dst, size_t cap, size_t *out_len)
{
    s->p++; /* opening quote */
    size_t n = 0;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            s->p++;
            if (out_len)
                *out_len = n;
            if (dst && cap)
                dst[n < cap ? n : cap - 1] = '\0';
            return true;
        }
        if (c < 0x20)
            return fail(s, "control character in string");
        if (c == '\\') {
            s->p++;
            if (s->p >= s->end)
                return fail(s, "truncated escape");
            char e = *s->p++;
            char out[4];
            size_t out_n = 1;
            switch (e) {
            case '"': out[0] = '"'; break;
            case '\\': out[0] = '\\'; break;
            case '/': out[0] = '/'; break;
            case 'b': out[0] = '\b'; break;
            case 'f': out[0] = '\f'; break;
            case 'n': out[0] = '\n'; break;
            case 'r': out[0] = '\r'; break;
            case 't': out[0] = '\t'; break;
            case 'u': {
                unsigned cp;
                if (!hex4(s, &cp))
                    return false;
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    return fail(s, "lone low surrogate in \\u escape");
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    unsigned lo;
                    if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
                        return fail(s, "lone high surrogate in \\u escape");
                    s->p += 2;
                    if (!hex4(s, &lo))
                        return false;
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return fail(s, "bad surrogate pair in \\u escape");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                if (cp == 0)
                    return fail(s, "\\u0000 in string");
                if (cp < 0x80) {
                    out[0] = (char)cp;
                } else if (cp < 0x800) {
                    out[0] = (char)(0xC0 | (cp >> 6));
                    out[1] = (char)(0x80 | (cp & 0x3F));
                    out_n = 2;
                } else if (cp < 0x10000) {
                    out[0] = (char)(0xE0 | (cp >> 12));
                    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    out[2] = (char)(0x80 | (cp & 0x3F));
                    out_n = 3;
                } else {
                    out[0] = (char)(0xF0 | (cp >> 18));
                    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    out[3] = (char)(0x80 | (cp & 0x3F));
                    out_n = 4;
                }
                break;
            }
            default:
                s->p--;
                return fail(s, "bad escape in string");
            }
            for (size_t i = 0; i < out_n; i++, n++)
                if (dst && n < cap)
                    dst[n] = out[i];
            continue;
        }
        size_t l = utf8_len((const unsigned char *)s->p, (const unsigned char *)s->end);
        if (!l)
            return fail(s, "invalid UTF-8 in string");
        for (size_t i = 0; i < l; i++, n++)
            if (dst && n < cap)
                dst[n] = s->p[i];
        s->p += l;
    }
    return fail(s, "unterminated string");
}

static bool scan_number(scan *s)
{
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p >= s->end)
        return fail(s, "bad number");
    if (*s->p == '0') {
        s->p++;
    } else if (*s->p >= '1' && *s->p <= '9') {
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    } else {
        return fail(s, "bad number");
    }
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9')
            return fail(s, "bad number");
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9')
            return fail(s, "bad number");
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    }
    return true;
}

static bool scan_lit(scan *s, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n))
        return fail(s, "not JSON (unexpected character)");
    s->p += n;
    return true;
}

/* Scans one value at s->p (no leading whitespace) with depth levels left. */
static bool scan_value(scan *s, int depth)
{
    if (s->p >= s->end)
        return fail(s, "unexpected end of input");
    char c = *s->p;
    if (c == '{' || c == '[') {
        if (depth <= 0)
            return fail(s, "nested too deep");
        char close = c == '{' ? '}' : ']';
        s->p++;
        skip_ws(s);
        if (s->p < s->end && *s->p == close) {
            s->p++;
            return true;
        }
        for (;;) {
            if (c == '{') {
                if (s->p >= s->end || *s->p != '"')
                    return fail(s, "expected a string key");
                if (!scan_string(s, NULL, 0, NULL))
                    return false;
                skip_ws(s);
                if (s->p >= s->end || *s->p != ':')
                    return fail(s, "expected ':'");
                s->p++;
                skip_ws(s);
            }
            if (!scan_value(s, depth - 1))
                return false;
            skip_ws(s);
            if (s->p >= s->end)
                return fail(s, "unexpected end of input");
            if (*s->p == ',') {
                s->p++;
                skip_ws(s);
                continue;
            }
            if (*s->p == close) {
                s->p++;
                return true;
            }
            return fail(s, c == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    if (c == '"')
        return scan_string(s, NULL, 0, NULL);
    if (c == '-' || (c >= '0' && c <= '9'))
        return scan_number(s);
    if (c == 't')
        return scan_lit(s, "true");
    if (c == 'f')
        return scan_lit(s, "false");
    if (c == 'n')
        return scan_lit(s, "null");
    return fail(s, (unsigned char)c >= 0x80 ? "not JSON (non-ASCII byte outside a string)"
                                            : "not JSON (unexpected character)");
}

static int clamp_depth(int d)
{
    return d <= 0 || d > DEPTH_HARD_MAX ? DEPTH_HARD_MAX : d;
}

st_rc st_json_check(const char *p, size_t len, int max_depth, st_err *err)
{
    scan s = {.p = p, .end = p + len};
    skip_ws(&s);
    if (!scan_value(&s, clamp_depth(max_depth)))
        return st_fail(err, ST_ERR_PARSE, "%s at byte %zu", s.why, (size_t)(s.at - p));
    skip_ws(&s);
    if (s.p != s.end)
        return st_fail(err, ST_ERR_PARSE, "trailing data at byte %zu", (size_t)(s.p - p));
    return ST_OK;
}

st_rc st_collect_split(const char *body, size_t len, const st_split_limits *lim, st_span *out,
                       size_t cap, size_t *out_n, size_t *out_bad_index, st_err *err)
{
    scan s = {.p = body, .end = body + len};
    size_t max_events = lim && lim->max_events ? lim->max_events : cap;
    if (max_events > cap)
        max_events = cap;
    size_t max_bytes = lim && lim->max_event_bytes ? lim->max_event_bytes : (size_t)-1;
    int depth = clamp_depth(lim ? lim->max_depth : 0);
    size_t n = 0;
    if (out_bad_index)
        *out_bad_index = 0;
    skip_ws(&s);
    if (s.p == s.end)
        return st_fail(err, ST_ERR_INVALID, "empty body: expected a JSON array or NDJSON events");
    bool is_array = *s.p == '[';
    if (!is_array && *s.p != '{')
        return st_fail(err, ST_ERR_PARSE,
                       "body must be a JSON array of event objects or NDJSON (one object per line)");
    if (is_array) {
        s.p++;
        skip_ws(&s);
        if (s.p < s.end && *s.p == ']') {
            s.p++;
            goto tail;
        }
    }
    for (;;) {
        if (n >= max_events) {
            if (out_bad_index)
                *out_bad_index = n;
            return st_fail(err, ST_ERR_LIMIT, "event %zu: more than %zu events in one request", n,
                           max_events);
        }
        const char *start = s.p;
        if (!scan_value(&s, depth)) {
            if (out_bad_index)
                *out_bad_index = n;
            return st_fail(err, ST_ERR_PARSE, "event %zu: %s at byte %zu", n, s.why,
                           (size_t)(s.at - body));
        }
        size_t elen = (size_t)(s.p - start);
        if (elen > max_bytes) {
            if (out_bad_index)
                *out_bad_index = n;
            return st_fail(err, ST_ERR_LIMIT, "event %zu: %zu bytes, more than the limit of %zu", n,
                           elen, max_bytes);
        }
        out[n].p = start;
        out[n].len = elen;
        n++;
        skip_ws(&s);
        if (is_array) {
            if (s.p < s.end && *s.p == ',') {
                s.p++;
                skip_ws(&s);
                continue;
            }
            if (s.p < s.end && *s.p == ']') {
                s.p++;
                break;
            }
            if (out_bad_index)
                *out_bad_index = n - 1;
            return st_fail(err, ST_ERR_PARSE, "event %zu: expected ',' or ']' after it at byte %zu",
                           n - 1, (size_t)(s.p - body));
        }
        if (s.p == s.end)
            break;
    }
tail:
    skip_ws(&s);
    if (s.p != s.end) {
        if (out_bad_index)
            *out_bad_index = n;
        return st_fail(err, ST_ERR_PARSE, "trailing data after the array at byte %zu",
                       (size_t)(s.p - body));
    }
    if (n == 0)
        return st_fail(err, ST_ERR_INVALID, "empty batch: no events");
    *out_n = n;
    return ST_OK;
}

/* ---- timestamps ---- */

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool st_rfc3339_parse(const char *s, size_t len, int64_t *out_us)
{
    int y, mo, d, h, mi, se;
    if (len < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &se))
        return false;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59 || se > 60)
        return false;
    size_t i = 19;
    int64_t frac_us = 0;
    if (i < len && s[i] == '.') {
        i++;
        size_t nd = 0;
        int64_t scale = 100000;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (nd < 6) {
                frac_us += (s[i] - '0') * scale;
                scale /= 10;
            }
            i++;
            nd++;
        }
        if (nd == 0 || nd > 9)
            return false;
    }
    if (i >= len)
        return false;
    int64_t off_s = 0;
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        int oh, om;
        if (len - i != 6 || !digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
            !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        off_s = (oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
        i += 6;
    } else {
        return false;
    }
    if (i != len)
        return false;
    if (se == 60)
        se = 59; /* a leap second is stored as the second before it */
    int64_t days = st_days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - off_s;
    *out_us = secs * 1000000 + frac_us;
    return true;
}

void st_rfc3339_format(int64_t us, char out[32])
{
    int64_t secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    int64_t frac = us - secs * 1000000;
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t rem = secs - days * 86400;
    int64_t y;
    unsigned m, d;
    st_civil_from_days(days, &y, &m, &d);
    /* a roomy scratch buffer keeps gcc's truncation analysis quiet; the
     * value always fits the caller's 32 bytes */
    char tmp[96];
    snprintf(tmp, sizeof tmp, "%04d-%02u-%02uT%02d:%02d:%02d.%06dZ", (int)(y % 10000), m, d,
             (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), (int)frac);
    memcpy(out, tmp, 32);
    out[31] = '\0';
}

/* ---- envelope ---- */

enum field {
    F_EVENT_ID,
    F_EVENT_TYPE,
    F_SCHEMA_VERSION,
    F_EVENT_TIME,
    F_SENT_AT,
    F_COUNTRY,
    F_ENTITY_ID,
    F_SUBJECT_ID,
    F_CONTEXT,
    F_PAYLOAD,
    F_COUNT
};
static const char *const field_names[F_COUNT] = {
    "event_id", "event_type", "schema_version", "event_time", "sent_at",
    "country",  "entity_id",  "subject_id",     "context",    "payload"};

static bool type_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '.';
}

/* Decodes a string value into buf (cap bytes incl. NUL); fails naming field. */
static st_rc get_str(scan *s, const char *field, char *buf, size_t cap, size_t max_chars,
                     size_t *out_len, st_err *err)
{
    if (*s->p != '"')
        return st_fail(err, ST_ERR_INVALID, "%s: must be a string", field);
    size_t n;
    if (!scan_string(s, buf, cap, &n))
        return st_fail(err, ST_ERR_PARSE, "%s: %s", field, s->why);
    if (n >= cap || n > max_chars)
        return st_fail(err, ST_ERR_INVALID, "%s: longer than %zu bytes", field, max_chars);
    if (out_len)
        *out_len = n;
    return ST_OK;
}

st_rc st_envelope_parse(const char *p, size_t len, st_envelope *out, st_err *err)
{
    scan s = {.p = p, .end = p + len};
    memset(out, 0, sizeof *out);
    bool seen[F_COUNT] = {0};
    char tmp[ST_SUBJECT_ID_MAX + 1];
    st_rc rc;
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{') {
        if (s.p < s.end && !scan_value(&s, DEPTH_HARD_MAX))
            return st_fail(err, ST_ERR_PARSE, "not JSON: %s", s.why);
        return st_fail(err, ST_ERR_INVALID, "event must be a JSON object");
    }
    s.p++;
    skip_ws(&s);
    bool first = true;
    while (s.p < s.end && *s.p != '}') {
        if (!first) {
            if (*s.p != ',')
                return st_fail(err, ST_ERR_PARSE, "not JSON: expected ',' or '}' at byte %zu",
                               (size_t)(s.p - p));
            s.p++;
            skip_ws(&s);
        }
        first = false;
        if (s.p >= s.end || *s.p != '"')
            return st_fail(err, ST_ERR_PARSE, "not JSON: expected a string key at byte %zu",
                           (size_t)(s.p - p));
        char key[40];
        size_t klen;
        if (!scan_string(&s, key, sizeof key, &klen))
            return st_fail(err, ST_ERR_PARSE, "not JSON: %s", s.why);
        skip_ws(&s);
        if (s.p >= s.end || *s.p != ':')
            return st_fail(err, ST_ERR_PARSE, "not JSON: expected ':' at byte %zu",
                           (size_t)(s.p - p));
        s.p++;
        skip_ws(&s);
        if (s.p >= s.end)
            return st_fail(err, ST_ERR_PARSE, "not JSON: unexpected end of input");
        int f = -1;
        for (int i = 0; i < F_COUNT; i++)
            if (klen < sizeof key && strlen(key) == klen && !strcmp(key, field_names[i]))
                f = i;
        if (f < 0) {
            if (klen >= sizeof key)
                return st_fail(err, ST_ERR_INVALID, "unknown field '%.32s...'", key);
            return st_fail(err, ST_ERR_INVALID, "unknown field '%s'", key);
        }
        if (seen[f])
            return st_fail(err, ST_ERR_INVALID, "%s: duplicate field", field_names[f]);
        seen[f] = true;
        const char *vstart = s.p;
        size_t n = 0;
        switch ((enum field)f) {
        case F_EVENT_ID:
            rc = get_str(&s, "event_id", out->event_id, sizeof out->event_id, ST_EVENT_ID_MAX, &n, err);
            if (rc)
                return rc;
            if (n == 0)
                return st_fail(err, ST_ERR_INVALID, "event_id: must not be empty");
            if (memchr(out->event_id, '\0', n))
                return st_fail(err, ST_ERR_INVALID, "event_id: contains NUL");
            break;
        case F_EVENT_TYPE: {
            rc = get_str(&s, "event_type", out->event_type, sizeof out->event_type,
                         ST_EVENT_TYPE_MAX, &n, err);
            if (rc)
                return rc;
            if (n == 0)
                return st_fail(err, ST_ERR_INVALID, "event_type: must not be empty");
            for (size_t i = 0; i < n; i++)
                if (!type_char_ok(out->event_type[i]))
                    return st_fail(err, ST_ERR_INVALID,
                                   "event_type: only letters, digits, '_', '-' and '.' allowed");
            const char *dot = strchr(out->event_type, '.');
            if (dot) {
                if (dot == out->event_type || dot[1] == '\0')
                    return st_fail(err, ST_ERR_INVALID,
                                   "event_type: expected 'name' or 'family.name'");
                memcpy(out->family, out->event_type, (size_t)(dot - out->event_type));
            }
            break;
        }
        case F_SCHEMA_VERSION:
            if (*s.p == '"') {
                rc = get_str(&s, "schema_version", out->schema_version, sizeof out->schema_version,
                             sizeof out->schema_version - 1, &n, err);
                if (rc)
                    return rc;
                int parts = 1;
                bool ok = n > 0 && out->schema_version[0] != '-';
                for (size_t i = 0; i < n && ok; i++) {
                    char c = out->schema_version[i];
                    if (c == '-') {
                        parts++;
                        ok = i + 1 < n && out->schema_version[i + 1] != '-';
                    } else if (c < '0' || c > '9') {
                        ok = false;
                    }
                }
                if (!ok || (parts != 1 && parts != 3))
                    return st_fail(err, ST_ERR_INVALID,
                                   "schema_version: expected N or MODEL-REVISION-ADDITION like \"1-0-0\"");
            } else if (*s.p >= '1' && *s.p <= '9') {
                if (!scan_number(&s))
                    return st_fail(err, ST_ERR_PARSE, "schema_version: %s", s.why);
                n = (size_t)(s.p - vstart);
                if (n >= sizeof out->schema_version || memchr(vstart, '.', n) ||
                    memchr(vstart, 'e', n) || memchr(vstart, 'E', n))
                    return st_fail(err, ST_ERR_INVALID,
                                   "schema_version: must be a positive integer or a string");
                memcpy(out->schema_version, vstart, n);
            } else {
                return st_fail(err, ST_ERR_INVALID,
                               "schema_version: must be a positive integer or a string");
            }
            break;
        case F_EVENT_TIME:
        case F_SENT_AT: {
            const char *name = field_names[f];
            rc = get_str(&s, name, tmp, sizeof tmp, 64, &n, err);
            if (rc)
                return rc;
            int64_t us;
            if (!st_rfc3339_parse(tmp, n, &us))
                return st_fail(err, ST_ERR_INVALID,
                               "%s: not an RFC 3339 timestamp (like 2025-01-02T03:04:05.678Z)", name);
            if (f == F_EVENT_TIME) {
                out->event_time_us = us;
            } else {
                out->sent_at_us = us;
                out->has_sent_at = true;
            }
            break;
        }
        case F_COUNTRY:
            rc = get_str(&s, "country", tmp, sizeof tmp, 8, &n, err);
            if (rc)
                return rc;
            if (n != 2 || tmp[0] < 'A' || tmp[0] > 'Z' || tmp[1] < 'A' || tmp[1] > 'Z')
                return st_fail(err, ST_ERR_INVALID,
                               "country: expected an ISO 3166-1 alpha-2 code like \"DE\"");
            memcpy(out->country, tmp, 3);
            break;
        case F_ENTITY_ID:
            rc = get_str(&s, "entity_id", tmp, sizeof tmp, ST_EVENT_ID_MAX, &n, err);
            if (rc)
                return rc;
            break;
        case F_SUBJECT_ID:
            rc = get_str(&s, "subject_id", tmp, sizeof tmp, ST_SUBJECT_ID_MAX, &n, err);
            if (rc)
                return rc;
            out->has_subject_id = n > 0;
            break;
        case F_CONTEXT:
        case F_PAYLOAD:
            if (*s.p != '{')
                return st_fail(err, ST_ERR_INVALID, "%s: must be a JSON object", field_names[f]);
            /* one level is the envelope itself */
            if (!scan_value(&s, DEPTH_HARD_MAX - 1))
                return st_fail(err, ST_ERR_PARSE, "%s: %s", field_names[f], s.why);
            break;
        case F_COUNT:
            break;
        }
        skip_ws(&s);
    }
    if (s.p >= s.end)
        return st_fail(err, ST_ERR_PARSE, "not JSON: unexpected end of input");
    s.p++;
    skip_ws(&s);
    if (s.p != s.end)
        return st_fail(err, ST_ERR_PARSE, "not JSON: trailing data after the event");
    for (int f = F_EVENT_ID; f <= F_EVENT_TIME; f++)
        if (!seen[f])
            return st_fail(err, ST_ERR_INVALID, "%s: required", field_names[f]);
    return ST_OK;
}

st_rc st_envelope_record(st_buf *out, const char *raw, size_t raw_len, const st_envelope *env,
                         const char *source, const char *family, int64_t received_us)
{
    while (raw_len && (*raw == ' ' || *raw == '\t' || *raw == '\n' || *raw == '\r')) {
        raw++;
        raw_len--;
    }
    if (!raw_len || *raw != '{')
        return ST_ERR_INVALID;
    char ts[32];
    st_rfc3339_format(received_us, ts);
    st_rc rc = st_buf_printf(out, "{\"received_at\":\"%s\",\"source\":", ts);
    if (!rc)
        rc = st_buf_json_str(out, source);
    if (!rc)
        rc = st_buf_puts(out, ",\"family\":");
    if (!rc)
        rc = st_buf_json_str(out, family);
    if (!rc && env->has_sent_at) {
        st_rfc3339_format(env->event_time_us + (received_us - env->sent_at_us), ts);
        rc = st_buf_printf(out, ",\"event_time_corrected\":\"%s\"", ts);
    }
    if (!rc)
        rc = st_buf_putc(out, ',');
    /* raw is "{ ...members... }" with at least one member (event_id is required) */
    if (!rc)
        rc = st_buf_append(out, raw + 1, raw_len - 1);
    return rc;
}
