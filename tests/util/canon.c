/*
 * canon.c - see canon.h.  Renders DuckDB result vectors directly so the
 * text does not depend on DuckDB's own VARCHAR casts.
 */
#include "canon.h"

#include <inttypes.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool valid_at(duckdb_vector v, idx_t row)
{
    uint64_t *m = duckdb_vector_get_validity(v);
    return !m || duckdb_validity_row_is_valid(m, row);
}

static void put_ts(st_buf *b, int64_t us, bool z)
{
    int64_t days = us / 86400000000LL, rem = us % 86400000000LL;
    if (rem < 0) {
        rem += 86400000000LL;
        days--;
    }
    int64_t y;
    unsigned m, d;
    st_civil_from_days(days, &y, &m, &d);
    int64_t s = rem / 1000000;
    st_buf_printf(b, "\"%04" PRId64 "-%02u-%02uT%02d:%02d:%02d.%06d%s\"", y, m, d, (int)(s / 3600),
                  (int)(s / 60 % 60), (int)(s % 60), (int)(rem % 1000000), z ? "Z" : "");
}

static void put_str(st_buf *b, const char *s, size_t n)
{
    st_buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': st_buf_puts(b, "\\\""); break;
        case '\\': st_buf_puts(b, "\\\\"); break;
        case '\b': st_buf_puts(b, "\\b"); break;
        case '\f': st_buf_puts(b, "\\f"); break;
        case '\n': st_buf_puts(b, "\\n"); break;
        case '\r': st_buf_puts(b, "\\r"); break;
        case '\t': st_buf_puts(b, "\\t"); break;
        default:
            if (c < 0x20)
                st_buf_printf(b, "\\u%04x", c);
            else
                st_buf_putc(b, (char)c);
        }
    }
    st_buf_putc(b, '"');
}

static void put_float(st_buf *b, double d, const char *fmt)
{
    if (isnan(d))
        st_buf_puts(b, "\"NaN\"");
    else if (isinf(d))
        st_buf_puts(b, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    else
        st_buf_printf(b, fmt, d);
}

static void put_hugeint(st_buf *b, duckdb_hugeint h, int scale)
{
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
    st_buf_putc(b, '"');
    if (neg)
        st_buf_putc(b, '-');
    for (int i = n - 1; i >= 0; i--) {
        st_buf_putc(b, digits[i]);
        if (i == scale && scale > 0)
            st_buf_putc(b, '.');
    }
    st_buf_putc(b, '"');
}

typedef struct kv_text {
    char *key;
    char *val;
} kv_text;

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const kv_text *)a)->key, ((const kv_text *)b)->key);
}

static void put_value(st_buf *b, duckdb_vector v, duckdb_logical_type t, idx_t row);

static char *value_text(duckdb_vector v, duckdb_logical_type t, idx_t row)
{
    st_buf b;
    st_buf_init(&b, 0);
    put_value(&b, v, t, row);
    return st_buf_take(&b);
}

static void put_value(st_buf *b, duckdb_vector v, duckdb_logical_type t, idx_t row)
{
    if (!valid_at(v, row)) {
        st_buf_puts(b, "null");
        return;
    }
    void *data = duckdb_vector_get_data(v);
    duckdb_type id = duckdb_get_type_id(t);
    switch (id) {
    case DUCKDB_TYPE_BOOLEAN: st_buf_puts(b, ((bool *)data)[row] ? "true" : "false"); break;
    case DUCKDB_TYPE_TINYINT: st_buf_printf(b, "%d", ((int8_t *)data)[row]); break;
    case DUCKDB_TYPE_SMALLINT: st_buf_printf(b, "%d", ((int16_t *)data)[row]); break;
    case DUCKDB_TYPE_INTEGER: st_buf_printf(b, "%d", ((int32_t *)data)[row]); break;
    case DUCKDB_TYPE_BIGINT: st_buf_printf(b, "%" PRId64, ((int64_t *)data)[row]); break;
    case DUCKDB_TYPE_FLOAT: put_float(b, (double)((float *)data)[row], "%.9g"); break;
    case DUCKDB_TYPE_DOUBLE: put_float(b, ((double *)data)[row], "%.17g"); break;
    case DUCKDB_TYPE_DECIMAL: {
        int scale = duckdb_decimal_scale(t);
        duckdb_hugeint h;
        int64_t x = 0;
        switch (duckdb_decimal_internal_type(t)) {
        case DUCKDB_TYPE_SMALLINT: x = ((int16_t *)data)[row]; break;
        case DUCKDB_TYPE_INTEGER: x = ((int32_t *)data)[row]; break;
        case DUCKDB_TYPE_BIGINT: x = ((int64_t *)data)[row]; break;
        default: put_hugeint(b, ((duckdb_hugeint *)data)[row], scale); return;
        }
        h.lower = (uint64_t)x;
        h.upper = x < 0 ? -1 : 0;
        put_hugeint(b, h, scale);
        break;
    }
    case DUCKDB_TYPE_VARCHAR: {
        duckdb_string_t *s = (duckdb_string_t *)data + row;
        put_str(b, duckdb_string_t_data(s), duckdb_string_t_length(*s));
        break;
    }
    case DUCKDB_TYPE_BLOB: {
        duckdb_string_t *s = (duckdb_string_t *)data + row;
        const unsigned char *p = (const unsigned char *)duckdb_string_t_data(s);
        uint32_t n = duckdb_string_t_length(*s);
        st_buf_putc(b, '"');
        for (uint32_t i = 0; i < n; i++)
            st_buf_printf(b, "%02x", p[i]);
        st_buf_putc(b, '"');
        break;
    }
    case DUCKDB_TYPE_DATE: {
        int64_t y;
        unsigned m, d;
        st_civil_from_days(((int32_t *)data)[row], &y, &m, &d);
        st_buf_printf(b, "\"%04" PRId64 "-%02u-%02u\"", y, m, d);
        break;
    }
    case DUCKDB_TYPE_TIMESTAMP_TZ: put_ts(b, ((int64_t *)data)[row], true); break;
    case DUCKDB_TYPE_TIMESTAMP: put_ts(b, ((int64_t *)data)[row], false); break;
    case DUCKDB_TYPE_TIMESTAMP_MS: put_ts(b, ((int64_t *)data)[row] * 1000, false); break;
    case DUCKDB_TYPE_TIMESTAMP_S: put_ts(b, ((int64_t *)data)[row] * 1000000, false); break;
    case DUCKDB_TYPE_TIMESTAMP_NS: put_ts(b, ((int64_t *)data)[row] / 1000, false); break;
    case DUCKDB_TYPE_STRUCT: {
        idx_t n = duckdb_struct_type_child_count(t);
        kv_text *kv = st_calloc(n ? n : 1, sizeof *kv);
        for (idx_t i = 0; i < n; i++) {
            char *name = duckdb_struct_type_child_name(t, i);
            duckdb_logical_type ct = duckdb_struct_type_child_type(t, i);
            kv[i].key = st_strdup(name);
            kv[i].val = value_text(duckdb_struct_vector_get_child(v, i), ct, row);
            duckdb_destroy_logical_type(&ct);
            duckdb_free(name);
        }
        qsort(kv, n, sizeof *kv, cmp_kv);
        st_buf_putc(b, '{');
        for (idx_t i = 0; i < n; i++) {
            if (i)
                st_buf_putc(b, ',');
            put_str(b, kv[i].key, strlen(kv[i].key));
            st_buf_putc(b, ':');
            st_buf_puts(b, kv[i].val);
            st_free(kv[i].key);
            st_free(kv[i].val);
        }
        st_buf_putc(b, '}');
        st_free(kv);
        break;
    }
    case DUCKDB_TYPE_LIST: {
        duckdb_list_entry *e = (duckdb_list_entry *)data + row;
        duckdb_vector child = duckdb_list_vector_get_child(v);
        duckdb_logical_type ct = duckdb_list_type_child_type(t);
        st_buf_putc(b, '[');
        for (idx_t i = 0; i < e->length; i++) {
            if (i)
                st_buf_putc(b, ',');
            put_value(b, child, ct, e->offset + i);
        }
        st_buf_putc(b, ']');
        duckdb_destroy_logical_type(&ct);
        break;
    }
    case DUCKDB_TYPE_MAP: {
        duckdb_list_entry *e = (duckdb_list_entry *)data + row;
        duckdb_vector child = duckdb_list_vector_get_child(v);
        duckdb_vector kv_k = duckdb_struct_vector_get_child(child, 0);
        duckdb_vector kv_v = duckdb_struct_vector_get_child(child, 1);
        duckdb_logical_type kt = duckdb_map_type_key_type(t);
        duckdb_logical_type vt = duckdb_map_type_value_type(t);
        kv_text *kv = st_calloc(e->length ? e->length : 1, sizeof *kv);
        for (idx_t i = 0; i < e->length; i++) {
            kv[i].key = value_text(kv_k, kt, e->offset + i);
            kv[i].val = value_text(kv_v, vt, e->offset + i);
        }
        qsort(kv, e->length, sizeof *kv, cmp_kv);
        st_buf_putc(b, '[');
        for (idx_t i = 0; i < e->length; i++) {
            st_buf_printf(b, "%s[%s,%s]", i ? "," : "", kv[i].key, kv[i].val);
            st_free(kv[i].key);
            st_free(kv[i].val);
        }
        st_buf_putc(b, ']');
        st_free(kv);
        duckdb_destroy_logical_type(&kt);
        duckdb_destroy_logical_type(&vt);
        break;
    }
    default:
        st_buf_printf(b, "\"<unsupported type %d>\"", (int)id);
        break;
    }
}

static int cmp_line(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

st_rc canon_rows(st_engine *eng, const char *sql, char ***lines, size_t *n_lines, st_err *err)
{
    duckdb_result r;
    st_rc rc = st_engine_query(eng, sql, &r, err);
    if (rc)
        return rc;
    idx_t nc = duckdb_column_count(&r);
    kv_text *cols = st_calloc(nc ? nc : 1, sizeof *cols);
    idx_t *order = st_calloc(nc ? nc : 1, sizeof *order);
    for (idx_t c = 0; c < nc; c++) {
        cols[c].key = (char *)duckdb_column_name(&r, c);
        cols[c].val = (char *)(uintptr_t)c;
    }
    qsort(cols, nc, sizeof *cols, cmp_kv);
    for (idx_t c = 0; c < nc; c++)
        order[c] = (idx_t)(uintptr_t)cols[c].val;
    duckdb_logical_type *types = st_calloc(nc ? nc : 1, sizeof *types);
    for (idx_t c = 0; c < nc; c++)
        types[c] = duckdb_column_logical_type(&r, c);
    char **out = NULL;
    size_t n = 0, cap = 0;
    duckdb_data_chunk ch;
    while ((ch = duckdb_fetch_chunk(r)) != NULL) {
        idx_t rows = duckdb_data_chunk_get_size(ch);
        for (idx_t i = 0; i < rows; i++) {
            st_buf b;
            st_buf_init(&b, 0);
            st_buf_putc(&b, '{');
            for (idx_t k = 0; k < nc; k++) {
                idx_t c = order[k];
                if (k)
                    st_buf_putc(&b, ',');
                put_str(&b, cols[k].key, strlen(cols[k].key));
                st_buf_putc(&b, ':');
                put_value(&b, duckdb_data_chunk_get_vector(ch, c), types[c], i);
            }
            st_buf_putc(&b, '}');
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                out = st_realloc(out, cap * sizeof *out);
            }
            out[n++] = st_buf_take(&b);
        }
        duckdb_destroy_data_chunk(&ch);
    }
    for (idx_t c = 0; c < nc; c++)
        duckdb_destroy_logical_type(&types[c]);
    st_free(types);
    st_free(cols);
    st_free(order);
    duckdb_destroy_result(&r);
    if (n)
        qsort(out, n, sizeof *out, cmp_line);
    *lines = out;
    *n_lines = n;
    return ST_OK;
}

void canon_free(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        st_free(lines[i]);
    st_free(lines);
}

char *canon_sha256(char *const *lines, size_t n)
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    for (size_t i = 0; i < n; i++) {
        if (i)
            crypto_hash_sha256_update(&st, (const unsigned char *)"\n", 1);
        crypto_hash_sha256_update(&st, (const unsigned char *)lines[i], strlen(lines[i]));
    }
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, h);
    char *hex = st_malloc(2 * sizeof h + 1);
    for (size_t i = 0; i < sizeof h; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    return hex;
}
