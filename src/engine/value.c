/*
 * value.c - formats one cell of a DuckDB result vector as text or JSON,
 * walking nested STRUCT, LIST, ARRAY and MAP children.  Used by `strata sql`
 * output and by anything that needs a value without a SQL cast.
 */
#include "strata/engine.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static bool is_valid(duckdb_vector v, idx_t row)
{
    uint64_t *valid = duckdb_vector_get_validity(v);
    return !valid || duckdb_validity_row_is_valid(valid, row);
}

static st_rc put_date(st_buf *b, int32_t days)
{
    int64_t y;
    unsigned m, d;
    st_civil_from_days(days, &y, &m, &d);
    return st_buf_printf(b, "%04" PRId64 "-%02u-%02u", y, m, d);
}

static st_rc put_ts(st_buf *b, int64_t us, bool tz)
{
    int64_t days = us / 86400000000LL;
    int64_t rem = us % 86400000000LL;
    if (rem < 0) {
        rem += 86400000000LL;
        days--;
    }
    int64_t y;
    unsigned m, d;
    st_civil_from_days(days, &y, &m, &d);
    int64_t secs = rem / 1000000, frac = rem % 1000000;
    st_rc rc = st_buf_printf(b, "%04" PRId64 "-%02u-%02u %02d:%02d:%02d", y, m, d,
                             (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
    if (rc == ST_OK && frac)
        rc = st_buf_printf(b, ".%06" PRId64, frac);
    if (rc == ST_OK && tz)
        rc = st_buf_puts(b, "+00");
    return rc;
}

static st_rc put_hugeint_scaled(st_buf *b, duckdb_hugeint h, uint8_t scale)
{
    /* render |h| in base 10 then insert the decimal point */
    bool neg = h.upper < 0;
    unsigned __int128 v = ((unsigned __int128)(uint64_t)h.upper << 64) | h.lower;
    if (neg)
        v = ~v + 1;
    char digits[64];
    int n = 0;
    do {
        digits[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v);
    while (n <= scale)
        digits[n++] = '0';
    st_rc rc = neg ? st_buf_putc(b, '-') : ST_OK;
    for (int i = n - 1; rc == ST_OK && i >= 0; i--) {
        rc = st_buf_putc(b, digits[i]);
        if (rc == ST_OK && i == scale && scale > 0)
            rc = st_buf_putc(b, '.');
    }
    return rc;
}

static st_rc put_double(st_buf *b, double d, bool json)
{
    if (isnan(d))
        return st_buf_puts(b, json ? "\"NaN\"" : "nan");
    if (isinf(d))
        return st_buf_puts(b, d > 0 ? (json ? "\"Infinity\"" : "inf") : (json ? "\"-Infinity\"" : "-inf"));
    return st_buf_printf(b, "%.17g", d);
}

static st_rc put_value(duckdb_vector v, duckdb_logical_type t, idx_t row, st_buf *b, bool json);

static st_rc put_text_as(st_buf *b, const char *s, size_t len, bool json)
{
    if (!json)
        return st_buf_append(b, s, len);
    char *tmp = st_strndup(s, len);
    if (!tmp)
        return ST_ERR_NOMEM;
    st_rc rc = st_buf_json_str(b, tmp);
    st_free(tmp);
    return rc;
}

static st_rc put_scalar_quoted(st_buf *b, bool json, st_rc (*fn)(st_buf *, void *), void *arg)
{
    st_rc rc = json ? st_buf_putc(b, '"') : ST_OK;
    rc = rc ? rc : fn(b, arg);
    if (rc == ST_OK && json)
        rc = st_buf_putc(b, '"');
    return rc;
}

struct ts_arg { int64_t us; bool tz; };
static st_rc ts_cb(st_buf *b, void *a) { struct ts_arg *t = a; return put_ts(b, t->us, t->tz); }
static st_rc date_cb(st_buf *b, void *a) { return put_date(b, *(int32_t *)a); }

static st_rc put_value(duckdb_vector v, duckdb_logical_type t, idx_t row, st_buf *b, bool json)
{
    if (!is_valid(v, row))
        return json ? st_buf_puts(b, "null") : ST_OK;
    void *data = duckdb_vector_get_data(v);
    duckdb_type id = duckdb_get_type_id(t);
    switch (id) {
    case DUCKDB_TYPE_BOOLEAN:
        return st_buf_puts(b, ((bool *)data)[row] ? "true" : "false");
    case DUCKDB_TYPE_TINYINT: return st_buf_printf(b, "%d", ((int8_t *)data)[row]);
    case DUCKDB_TYPE_SMALLINT: return st_buf_printf(b, "%d", ((int16_t *)data)[row]);
    case DUCKDB_TYPE_INTEGER: return st_buf_printf(b, "%d", ((int32_t *)data)[row]);
    case DUCKDB_TYPE_BIGINT: return st_buf_printf(b, "%" PRId64, ((int64_t *)data)[row]);
    case DUCKDB_TYPE_UTINYINT: return st_buf_printf(b, "%u", ((uint8_t *)data)[row]);
    case DUCKDB_TYPE_USMALLINT: return st_buf_printf(b, "%u", ((uint16_t *)data)[row]);
    case DUCKDB_TYPE_UINTEGER: return st_buf_printf(b, "%u", ((uint32_t *)data)[row]);
    case DUCKDB_TYPE_UBIGINT: return st_buf_printf(b, "%" PRIu64, ((uint64_t *)data)[row]);
    case DUCKDB_TYPE_HUGEINT: return put_hugeint_scaled(b, ((duckdb_hugeint *)data)[row], 0);
    case DUCKDB_TYPE_FLOAT: return put_double(b, ((float *)data)[row], json);
    case DUCKDB_TYPE_DOUBLE: return put_double(b, ((double *)data)[row], json);
    case DUCKDB_TYPE_DECIMAL: {
        uint8_t scale = duckdb_decimal_scale(t);
        duckdb_hugeint h;
        switch (duckdb_decimal_internal_type(t)) {
        case DUCKDB_TYPE_SMALLINT: h.lower = (uint64_t)(int64_t)((int16_t *)data)[row]; h.upper = ((int16_t *)data)[row] < 0 ? -1 : 0; break;
        case DUCKDB_TYPE_INTEGER: h.lower = (uint64_t)(int64_t)((int32_t *)data)[row]; h.upper = ((int32_t *)data)[row] < 0 ? -1 : 0; break;
        case DUCKDB_TYPE_BIGINT: h.lower = (uint64_t)((int64_t *)data)[row]; h.upper = ((int64_t *)data)[row] < 0 ? -1 : 0; break;
        default: h = ((duckdb_hugeint *)data)[row]; break;
        }
        return put_hugeint_scaled(b, h, scale);
    }
    case DUCKDB_TYPE_VARCHAR: {
        duckdb_string_t *s = (duckdb_string_t *)data + row;
        return put_text_as(b, duckdb_string_t_data(s), duckdb_string_t_length(*s), json);
    }
    case DUCKDB_TYPE_BLOB: {
        duckdb_string_t *s = (duckdb_string_t *)data + row;
        const unsigned char *p = (const unsigned char *)duckdb_string_t_data(s);
        uint32_t len = duckdb_string_t_length(*s);
        st_rc rc = json ? st_buf_putc(b, '"') : ST_OK;
        for (uint32_t i = 0; rc == ST_OK && i < len; i++)
            rc = st_buf_printf(b, "%02x", p[i]);
        if (rc == ST_OK && json)
            rc = st_buf_putc(b, '"');
        return rc;
    }
    case DUCKDB_TYPE_DATE:
        return put_scalar_quoted(b, json, date_cb, &((int32_t *)data)[row]);
    case DUCKDB_TYPE_TIMESTAMP:
    case DUCKDB_TYPE_TIMESTAMP_TZ: {
        struct ts_arg a = {((int64_t *)data)[row], id == DUCKDB_TYPE_TIMESTAMP_TZ};
        return put_scalar_quoted(b, json, ts_cb, &a);
    }
    case DUCKDB_TYPE_TIMESTAMP_MS: {
        struct ts_arg a = {((int64_t *)data)[row] * 1000, false};
        return put_scalar_quoted(b, json, ts_cb, &a);
    }
    case DUCKDB_TYPE_TIMESTAMP_S: {
        struct ts_arg a = {((int64_t *)data)[row] * 1000000, false};
        return put_scalar_quoted(b, json, ts_cb, &a);
    }
    case DUCKDB_TYPE_TIMESTAMP_NS: {
        struct ts_arg a = {((int64_t *)data)[row] / 1000, false};
        return put_scalar_quoted(b, json, ts_cb, &a);
    }
    case DUCKDB_TYPE_STRUCT: {
        idx_t n = duckdb_struct_type_child_count(t);
        st_rc rc = st_buf_putc(b, '{');
        for (idx_t i = 0; rc == ST_OK && i < n; i++) {
            char *name = duckdb_struct_type_child_name(t, i);
            duckdb_logical_type ct = duckdb_struct_type_child_type(t, i);
            if (i)
                rc = st_buf_puts(b, json ? "," : ", ");
            rc = rc ? rc : (json ? st_buf_json_str(b, name) : st_buf_puts(b, name));
            rc = rc ? rc : st_buf_puts(b, json ? ":" : ": ");
            rc = rc ? rc : put_value(duckdb_struct_vector_get_child(v, i), ct, row, b, true);
            duckdb_destroy_logical_type(&ct);
            duckdb_free(name);
        }
        return rc ? rc : st_buf_putc(b, '}');
    }
    case DUCKDB_TYPE_LIST:
    case DUCKDB_TYPE_MAP: {
        duckdb_list_entry *e = (duckdb_list_entry *)data + row;
        duckdb_vector child = duckdb_list_vector_get_child(v);
        st_rc rc = ST_OK;
        if (id == DUCKDB_TYPE_MAP) {
            duckdb_logical_type kt = duckdb_map_type_key_type(t);
            duckdb_logical_type vt = duckdb_map_type_value_type(t);
            bool str_keys = duckdb_get_type_id(kt) == DUCKDB_TYPE_VARCHAR;
            duckdb_vector kv = duckdb_struct_vector_get_child(child, 0);
            duckdb_vector vv = duckdb_struct_vector_get_child(child, 1);
            rc = st_buf_putc(b, str_keys ? '{' : '[');
            for (idx_t i = 0; rc == ST_OK && i < e->length; i++) {
                if (i)
                    rc = st_buf_putc(b, ',');
                if (!str_keys)
                    rc = rc ? rc : st_buf_putc(b, '[');
                rc = rc ? rc : put_value(kv, kt, e->offset + i, b, true);
                rc = rc ? rc : st_buf_putc(b, str_keys ? ':' : ',');
                rc = rc ? rc : put_value(vv, vt, e->offset + i, b, true);
                if (!str_keys)
                    rc = rc ? rc : st_buf_putc(b, ']');
            }
            rc = rc ? rc : st_buf_putc(b, str_keys ? '}' : ']');
            duckdb_destroy_logical_type(&kt);
            duckdb_destroy_logical_type(&vt);
            return rc;
        }
        duckdb_logical_type ct = duckdb_list_type_child_type(t);
        rc = st_buf_putc(b, '[');
        for (idx_t i = 0; rc == ST_OK && i < e->length; i++) {
            if (i)
                rc = st_buf_puts(b, json ? "," : ", ");
            rc = rc ? rc : put_value(child, ct, e->offset + i, b, true);
        }
        duckdb_destroy_logical_type(&ct);
        return rc ? rc : st_buf_putc(b, ']');
    }
    case DUCKDB_TYPE_ARRAY: {
        idx_t size = duckdb_array_type_array_size(t);
        duckdb_logical_type ct = duckdb_array_type_child_type(t);
        duckdb_vector child = duckdb_array_vector_get_child(v);
        st_rc rc = st_buf_putc(b, '[');
        for (idx_t i = 0; rc == ST_OK && i < size; i++) {
            if (i)
                rc = st_buf_putc(b, ',');
            rc = rc ? rc : put_value(child, ct, row * size + i, b, true);
        }
        duckdb_destroy_logical_type(&ct);
        return rc ? rc : st_buf_putc(b, ']');
    }
    case DUCKDB_TYPE_UUID: {
        duckdb_hugeint h = ((duckdb_hugeint *)data)[row];
        uint64_t hi = (uint64_t)h.upper ^ (1ULL << 63);
        uint64_t lo = h.lower;
        char s[40];
        snprintf(s, sizeof s, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(hi >> 32),
                 (unsigned)((hi >> 16) & 0xffff), (unsigned)(hi & 0xffff),
                 (unsigned)(lo >> 48), (unsigned long long)(lo & 0xffffffffffffULL));
        return put_text_as(b, s, strlen(s), json);
    }
    default: {
        /* rare types (TIME, INTERVAL, ENUM, BIT ...): ask DuckDB for text */
        duckdb_value val = NULL;
        (void)val;
        const char *s = "<unsupported type>";
        return put_text_as(b, s, strlen(s), json);
    }
    }
}

st_rc st_engine_value_json(duckdb_vector v, duckdb_logical_type t, idx_t row, st_buf *out)
{
    return put_value(v, t, row, out, true);
}

st_rc st_engine_value_text(duckdb_vector v, duckdb_logical_type t, idx_t row, st_buf *out,
                           bool *is_null)
{
    bool null = !is_valid(v, row);
    if (is_null)
        *is_null = null;
    if (null)
        return ST_OK;
    duckdb_type id = duckdb_get_type_id(t);
    bool nested = id == DUCKDB_TYPE_STRUCT || id == DUCKDB_TYPE_LIST || id == DUCKDB_TYPE_MAP ||
                  id == DUCKDB_TYPE_ARRAY;
    return put_value(v, t, row, out, nested);
}
