/*
 * columns.c - column-wise staging into DuckDB data chunks (see columns.h).
 */
#include "columns.h"

#include <string.h>

void st_rows_close(st_rows *r)
{
    if (!r)
        return;
    if (r->chunk)
        duckdb_destroy_data_chunk(&r->chunk);
    st_free(r->types);
    st_free(r->vec);
    st_free(r->data);
    st_free(r->valid);
    memset(r, 0, sizeof *r);
}

static void bind_vectors(st_rows *r)
{
    for (size_t c = 0; c < r->n_cols; c++) {
        r->vec[c] = duckdb_data_chunk_get_vector(r->chunk, c);
        r->data[c] = duckdb_vector_get_data(r->vec[c]);
        r->valid[c] = NULL;
    }
}

st_rc st_rows_open(st_rows *r, duckdb_appender app, st_err *err)
{
    memset(r, 0, sizeof *r);
    r->app = app;
    r->n_cols = duckdb_appender_column_count(app);
    size_t n = r->n_cols ? r->n_cols : 1;
    duckdb_logical_type *lt = st_calloc(n, sizeof *lt);
    r->types = st_calloc(n, sizeof *r->types);
    r->vec = st_calloc(n, sizeof *r->vec);
    r->data = st_calloc(n, sizeof *r->data);
    r->valid = st_calloc(n, sizeof *r->valid);
    if (!lt || !r->types || !r->vec || !r->data || !r->valid) {
        st_free(lt);
        st_rows_close(r);
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    for (size_t c = 0; c < r->n_cols; c++) {
        lt[c] = duckdb_appender_column_type(app, c);
        r->types[c] = duckdb_get_type_id(lt[c]);
    }
    r->chunk = duckdb_create_data_chunk(lt, r->n_cols);
    for (size_t c = 0; c < r->n_cols; c++)
        duckdb_destroy_logical_type(&lt[c]);
    st_free(lt);
    if (!r->chunk) {
        st_rows_close(r);
        return st_fail(err, ST_ERR_ENGINE, "staging: cannot make a data chunk");
    }
    r->cap = duckdb_vector_size();
    bind_vectors(r);
    return ST_OK;
}

/* The slot of the next column when it has type t, else NULL (row refused). */
static void *slot(st_rows *r, duckdb_type t, const char *want)
{
    if (r->col >= r->n_cols) {
        if (!r->bad)
            r->bad = "more values than columns";
        return NULL;
    }
    size_t c = r->col++;
    if (r->types[c] != t) {
        if (!r->bad) {
            r->bad = want;
            r->bad_col = c;
        }
        return NULL;
    }
    return r->data[c];
}

void st_rows_null(st_rows *r)
{
    if (r->col >= r->n_cols) {
        if (!r->bad)
            r->bad = "more values than columns";
        return;
    }
    size_t c = r->col++;
    if (!r->valid[c]) {
        duckdb_vector_ensure_validity_writable(r->vec[c]);
        r->valid[c] = duckdb_vector_get_validity(r->vec[c]);
    }
    duckdb_validity_set_row_invalid(r->valid[c], r->row);
}

/* Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). */
static bool utf8_ok(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* eight ASCII bytes at a time */
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (!(w & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF) {
            k = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < k)
            return false;
        for (size_t x = 1; x < k; x++) {
            if ((p[i + x] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + x] & 0x3F);
        }
        if ((k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += k;
    }
    return true;
}

void st_rows_str(st_rows *r, const char *s, size_t len)
{
    if (!s) {
        st_rows_null(r);
        return;
    }
    size_t c = r->col;
    if (!slot(r, DUCKDB_TYPE_VARCHAR, "expected text"))
        return;
    if (!utf8_ok((const unsigned char *)s, len)) {
        if (!r->bad) {
            r->bad = "text is not valid UTF-8";
            r->bad_col = c;
        }
        return;
    }
    duckdb_vector_assign_string_element_len(r->vec[c], r->row, s, len);
}

void st_rows_cstr(st_rows *r, const char *s) { st_rows_str(r, s, s ? strlen(s) : 0); }

void st_rows_i64(st_rows *r, int64_t v)
{
    int64_t *d = slot(r, DUCKDB_TYPE_BIGINT, "expected BIGINT");
    if (d)
        d[r->row] = v;
}

void st_rows_f64(st_rows *r, double v)
{
    double *d = slot(r, DUCKDB_TYPE_DOUBLE, "expected DOUBLE");
    if (d)
        d[r->row] = v;
}

void st_rows_bool(st_rows *r, bool v)
{
    bool *d = slot(r, DUCKDB_TYPE_BOOLEAN, "expected BOOLEAN");
    if (d)
        d[r->row] = v;
}

void st_rows_ts(st_rows *r, int64_t us)
{
    duckdb_timestamp *d = slot(r, DUCKDB_TYPE_TIMESTAMP, "expected TIMESTAMP");
    if (d)
        d[r->row].micros = us;
}

void st_rows_date(st_rows *r, int32_t day)
{
    duckdb_date *d = slot(r, DUCKDB_TYPE_DATE, "expected DATE");
    if (d)
        d[r->row].days = day;
}

void st_rows_cancel(st_rows *r)
{
    /* validity bits set for this row are reset so the slot is clean */
    for (size_t c = 0; c < r->n_cols; c++)
        if (r->valid[c])
            duckdb_validity_set_row_valid(r->valid[c], r->row);
    r->col = 0;
    r->bad = NULL;
}

st_rc st_rows_flush(st_rows *r, const char *what, st_err *err)
{
    if (!r->row)
        return ST_OK;
    duckdb_data_chunk_set_size(r->chunk, r->row);
    duckdb_state s = duckdb_append_data_chunk(r->app, r->chunk);
    duckdb_data_chunk_reset(r->chunk);
    r->row = 0;
    bind_vectors(r);
    if (s == DuckDBError)
        return st_fail(err, ST_ERR_ENGINE, "%s staging: %s", what,
                       duckdb_appender_error(r->app));
    return ST_OK;
}

st_rc st_rows_end(st_rows *r, const char *what, st_err *err)
{
    if (!r->bad && r->col != r->n_cols)
        r->bad = "fewer values than columns";
    if (r->bad) {
        const char *why = r->bad;
        size_t c = r->bad_col;
        st_rows_cancel(r);
        return st_fail(err, ST_ERR_ENGINE, "%s staging: column %zu: %s", what, c + 1, why);
    }
    r->col = 0;
    if (++r->row == r->cap)
        return st_rows_flush(r, what, err);
    return ST_OK;
}
