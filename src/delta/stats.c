/*
 * stats.c - add.stats JSON from the per-file statistics DuckDB reports for
 * COPY ... (RETURN_STATS): converts DuckDB's min/max text to Delta's JSON
 * forms (numbers, ISO-8601 millisecond timestamps, dates, 32-char string
 * prefixes) so written files never need to be read back.  txn.c and
 * write.c use the result; scan.c prunes with it.
 */
#include "delta/write_int.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STR_PREFIX_CHARS 32

/* Splits DuckDB's quoted column path ("st"."x") into a key joined by 0x1f. */
static char *path_key(const char *name)
{
    st_buf b;
    st_buf_init(&b, 0);
    const char *p = name;
    bool first = true;
    while (*p) {
        if (!first) {
            if (*p == '.')
                p++;
            st_buf_putc(&b, '\x1f');
        }
        first = false;
        if (*p == '"') {
            p++;
            while (*p) {
                if (*p == '"' && p[1] == '"') {
                    st_buf_putc(&b, '"');
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    st_buf_putc(&b, *p++);
                }
            }
        } else {
            while (*p && *p != '.')
                st_buf_putc(&b, *p++);
        }
    }
    if (!b.data)
        st_buf_puts(&b, "");
    return st_buf_take(&b);
}

/* True when s is a finite JSON number. */
static bool json_number(const char *s)
{
    const char *p = s;
    if (*p == '-')
        p++;
    if (!isdigit((unsigned char)*p))
        return false;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    return *p == '\0' && isfinite(strtod(s, NULL));
}

/* Parses "YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]]" into epoch microseconds. */
static bool parse_ts(const char *s, int64_t *out_us)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%*[ T]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
        return false;
    const char *p = s + n;
    int64_t frac = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (isdigit((unsigned char)*p)) {
            if (digits < 6) {
                frac = frac * 10 + (*p - '0');
                digits++;
            }
            p++;
        }
        while (digits++ < 6)
            frac *= 10;
    }
    int64_t off_s = 0;
    if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int oh = 0, om = 0;
        p++;
        if (sscanf(p, "%2d", &oh) != 1)
            return false;
        p += 2;
        if (*p == ':')
            p++;
        if (isdigit((unsigned char)*p)) {
            if (sscanf(p, "%2d", &om) != 1)
                return false;
            p += 2;
        }
        off_s = sign * (oh * 3600 + om * 60);
    } else if (*p == 'Z') {
        p++;
    }
    if (*p)
        return false;
    int64_t days = st_days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - off_s;
    *out_us = secs * 1000000 + frac;
    return true;
}

static st_rc fmt_ts(st_buf *b, int64_t us, bool round_up, bool utc)
{
    int64_t ms = us / 1000;
    if (us % 1000 != 0 && us < 0)
        ms--;   /* floor for negatives */
    if (round_up && ms * 1000 != us)
        ms++;
    int64_t secs = ms / 1000, msr = ms % 1000;
    if (msr < 0) {
        msr += 1000;
        secs--;
    }
    int64_t days = secs / 86400, sod = secs % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    int64_t y;
    unsigned m, d;
    st_civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999)
        return ST_ERR_INVALID;
    return st_buf_printf(b, "\"%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03lld%s\"", (long long)y,
                         (long long)m, (long long)d, (long long)(sod / 3600),
                         (long long)(sod / 60 % 60), (long long)(sod % 60), (long long)msr,
                         utc ? "Z" : "");
}

/* Appends the Delta JSON form of one bound, or returns ST_ERR_INVALID when
 * the bound cannot be represented (then the key is left out). */
static st_rc bound_json(const st_dtype *t, const char *v, bool is_max, st_buf *b)
{
    switch (t->kind) {
    case ST_DT_BYTE:
    case ST_DT_SHORT:
    case ST_DT_INTEGER:
    case ST_DT_LONG:
    case ST_DT_FLOAT:
    case ST_DT_DOUBLE:
    case ST_DT_DECIMAL:
        if (!json_number(v))
            return ST_ERR_INVALID;
        return st_buf_puts(b, v);
    case ST_DT_DATE: {
        int y, m, d, n = 0;
        if (sscanf(v, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || v[n] || strlen(v) != 10)
            return ST_ERR_INVALID;
        return st_buf_json_str(b, v);
    }
    case ST_DT_TIMESTAMP:
    case ST_DT_TIMESTAMP_NTZ: {
        int64_t us;
        if (!parse_ts(v, &us))
            return ST_ERR_INVALID;
        return fmt_ts(b, us, is_max, t->kind == ST_DT_TIMESTAMP);
    }
    case ST_DT_STRING: {
        /* cut at 32 code points; a cut max gets U+10FFFF appended so it
         * still compares >= every value sharing the prefix */
        size_t chars = 0, i = 0;
        while (v[i] && chars < STR_PREFIX_CHARS) {
            i++;
            while (((unsigned char)v[i] & 0xC0) == 0x80)
                i++;
            chars++;
        }
        if (!v[i])
            return st_buf_json_str(b, v);
        char *cut = st_malloc(i + 5);
        if (!cut)
            return ST_ERR_NOMEM;
        memcpy(cut, v, i);
        cut[i] = '\0';
        if (is_max)
            memcpy(cut + i, "\xF4\x8F\xBF\xBF", 5);
        st_rc rc = st_buf_json_str(b, cut);
        st_free(cut);
        return rc;
    }
    default:
        return ST_ERR_INVALID;
    }
}

char *st_deltaw_ts_part_value(const char *v)
{
    int64_t us;
    if (!v || !parse_ts(v, &us))
        return st_strdup(v);
    int64_t secs = us / 1000000, frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        secs--;
    }
    int64_t days = secs / 86400, sod = secs % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    int64_t y;
    unsigned m, d;
    st_civil_from_days(days, &y, &m, &d);
    return st_sprintf("%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%06lldZ", (long long)y,
                      (long long)m, (long long)d, (long long)(sod / 3600),
                      (long long)(sod / 60 % 60), (long long)(sod % 60), (long long)frac);
}

enum { PASS_MIN, PASS_MAX, PASS_NULLS };

/* Appends "name":{...} / "name":value entries for the fields; returns the
 * number appended through *n_out. */
static st_rc emit_fields(const st_dfield *fields, size_t n_fields, const char *cm_mode,
                         const st_map *cols, const char *prefix, int pass, st_buf *b,
                         size_t *n_out)
{
    st_rc rc = ST_OK;
    size_t n = 0;
    for (size_t i = 0; rc == ST_OK && i < n_fields; i++) {
        const st_dfield *f = &fields[i];
        const char *nm = st_delta_field_phys(f, cm_mode);
        char *key = prefix ? st_sprintf("%s\x1f%s", prefix, nm) : st_strdup(nm);
        if (!key)
            return ST_ERR_NOMEM;
        if (f->type.kind == ST_DT_STRUCT) {
            size_t save = b->len, sub = 0;
            rc = st_buf_printf(b, "%s", n ? "," : "");
            rc = rc ? rc : st_buf_json_str(b, nm);
            rc = rc ? rc : st_buf_putc(b, ':');
            rc = rc ? rc : st_buf_putc(b, '{');
            rc = rc ? rc
                    : emit_fields(f->type.fields, f->type.n_fields, cm_mode, cols, key, pass, b,
                                  &sub);
            rc = rc ? rc : st_buf_putc(b, '}');
            if (rc == ST_OK && sub == 0) {
                b->len = save;
                b->data[save] = '\0';
            } else if (rc == ST_OK) {
                n++;
            }
        } else {
            const st_col_stats *c = st_map_get(cols, key);
            if (c) {
                size_t save = b->len;
                rc = st_buf_printf(b, "%s", n ? "," : "");
                rc = rc ? rc : st_buf_json_str(b, nm);
                rc = rc ? rc : st_buf_putc(b, ':');
                st_rc vr = ST_ERR_INVALID;
                if (rc == ST_OK && pass == PASS_NULLS && c->null_count >= 0)
                    vr = st_buf_printf(b, "%lld", (long long)c->null_count);
                else if (rc == ST_OK && pass == PASS_MIN && c->min)
                    vr = bound_json(&f->type, c->min, false, b);
                else if (rc == ST_OK && pass == PASS_MAX && c->max)
                    vr = bound_json(&f->type, c->max, true, b);
                if (rc == ST_OK && vr == ST_OK) {
                    n++;
                } else if (rc == ST_OK) {
                    if (vr == ST_ERR_NOMEM)
                        rc = vr;
                    b->len = save;
                    if (b->data)
                        b->data[save] = '\0';
                }
            }
        }
        st_free(key);
    }
    *n_out = n;
    return rc;
}

st_rc st_deltaw_stats_json(const st_delta_schema *schema, const char *cm_mode,
                           const st_parquet_file *f, char **out, st_err *err)
{
    st_map *cols = st_map_new();
    if (!cols)
        return st_fail(err, ST_ERR_NOMEM, "stats of %s", f->path);
    st_rc rc = ST_OK;
    char **keys = st_calloc(f->n_cols + 1, sizeof *keys);
    if (!keys)
        rc = ST_ERR_NOMEM;
    for (size_t i = 0; rc == ST_OK && i < f->n_cols; i++) {
        keys[i] = path_key(f->cols[i].name ? f->cols[i].name : "");
        if (!keys[i])
            rc = ST_ERR_NOMEM;
        else
            rc = st_map_put(cols, keys[i], (void *)&f->cols[i], NULL);
    }
    st_buf b;
    st_buf_init(&b, 0);
    static const char *names[] = {"minValues", "maxValues", "nullCount"};
    rc = rc ? rc : st_buf_printf(&b, "{\"numRecords\":%lld", (long long)f->rows);
    for (int pass = 0; rc == ST_OK && pass < 3; pass++) {
        size_t n = 0;
        rc = st_buf_printf(&b, ",\"%s\":{", names[pass]);
        rc = rc ? rc
                : emit_fields(schema->fields, schema->n_fields, cm_mode, cols, NULL, pass, &b, &n);
        rc = rc ? rc : st_buf_putc(&b, '}');
    }
    rc = rc ? rc : st_buf_putc(&b, '}');
    for (size_t i = 0; keys && i < f->n_cols; i++)
        st_free(keys[i]);
    st_free(keys);
    st_map_free(cols);
    if (rc) {
        st_buf_free(&b);
        return st_fail(err, rc, "building stats of %s", f->path);
    }
    *out = st_buf_take(&b);
    return ST_OK;
}
