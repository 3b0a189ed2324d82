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
    for (size_t i = 0; i < r->n_full; i++)
        duckdb_destroy_data_chunk(&r->full[i]);
    st_free(r->full);
    st_free(r->drops);
    for (size_t c = 0; r->ltypes && c < r->n_cols; c++)
        duckdb_destroy_logical_type(&r->ltypes[c]);
    st_free(r->ltypes);
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

static st_rc new_chunk(st_rows *r, st_err *err)
{
    r->chunk = duckdb_create_data_chunk(r->ltypes, r->n_cols);
    if (!r->chunk)
        return st_fail(err, ST_ERR_ENGINE, "staging: cannot make a data chunk");
    r->row = 0;
    bind_vectors(r);
    return ST_OK;
}

st_rc st_rows_open(st_rows *r, const duckdb_type *types, size_t n_cols, st_err *err)
{
    memset(r, 0, sizeof *r);
    r->n_cols = n_cols;
    size_t n = n_cols ? n_cols : 1;
    r->ltypes = st_calloc(n, sizeof *r->ltypes);
    r->types = st_calloc(n, sizeof *r->types);
    r->vec = st_calloc(n, sizeof *r->vec);
    r->data = st_calloc(n, sizeof *r->data);
    r->valid = st_calloc(n, sizeof *r->valid);
    if (!r->ltypes || !r->types || !r->vec || !r->data || !r->valid) {
        st_rows_close(r);
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    for (size_t c = 0; c < n_cols; c++) {
        r->types[c] = types[c];
        r->ltypes[c] = duckdb_create_logical_type(types[c]);
    }
    r->cap = duckdb_vector_size();
    st_rc rc = new_chunk(r, err);
    if (rc)
        st_rows_close(r);
    return rc;
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
    if (r->n_full == r->cap_full) {
        size_t nc = r->cap_full ? r->cap_full * 2 : 16;
        duckdb_data_chunk *nf = st_realloc(r->full, nc * sizeof *nf);
        if (!nf)
            return st_fail(err, ST_ERR_NOMEM, "%s staging: out of memory", what);
        r->full = nf;
        r->cap_full = nc;
    }
    duckdb_data_chunk_set_size(r->chunk, r->row);
    r->full[r->n_full++] = r->chunk;
    r->chunk = NULL;
    st_rc rc = new_chunk(r, err);
    if (rc)
        st_err_ctx(err, "%s", what);
    return rc;
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
    r->n_ended++;
    if (++r->row == r->cap)
        return st_rows_flush(r, what, err);
    return ST_OK;
}

st_rc st_rows_drop(st_rows *r, uint32_t row, st_err *err)
{
    if (r->n_drops == r->cap_drops) {
        size_t nc = r->cap_drops ? r->cap_drops * 2 : 64;
        uint32_t *nd = st_realloc(r->drops, nc * sizeof *nd);
        if (!nd)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        r->drops = nd;
        r->cap_drops = nc;
    }
    r->drops[r->n_drops++] = row;
    return ST_OK;
}

size_t st_rows_kept(const st_rows *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_full; i++)
        n += duckdb_data_chunk_get_size(r->full[i]);
    return n - r->n_drops;
}

/* ---------------------------------------------------------------- scans */

void st_stage_clear(st_stage *s)
{
    if (!s)
        return;
    for (size_t c = 0; s->names && c < s->n_cols; c++)
        st_free(s->names[c]);
    st_free(s->names);
    st_free(s->types);
    memset(s, 0, sizeof *s);
}

typedef struct scan_state {
    size_t part, chunk;
    uint32_t base;             /* row number of the chunk's first row */
    size_t drop;               /* next drop of the part to consider */
} scan_state;

static void scan_bind(duckdb_bind_info info)
{
    st_stages *ss = duckdb_bind_get_extra_info(info);
    duckdb_value v = duckdb_bind_get_parameter(info, 0);
    int64_t id = duckdb_get_int64(v);
    duckdb_destroy_value(&v);
    if (id < 0 || (size_t)id >= ss->n) {
        duckdb_bind_set_error(info, "staging scan: no such stage");
        return;
    }
    st_stage *s = &ss->v[id];
    for (size_t c = 0; c < s->n_cols; c++) {
        duckdb_logical_type t = duckdb_create_logical_type(s->types[c]);
        duckdb_bind_add_result_column(info, s->names[c], t);
        duckdb_destroy_logical_type(&t);
    }
    duckdb_bind_set_bind_data(info, s, NULL);
}

static void scan_state_free(void *p) { st_free(p); }

static void scan_init(duckdb_init_info info)
{
    scan_state *st = st_calloc(1, sizeof *st);
    if (!st) {
        duckdb_init_set_error(info, "staging scan: out of memory");
        return;
    }
    duckdb_init_set_init_data(info, st, scan_state_free);
}

static void scan_next(duckdb_function_info info, duckdb_data_chunk out)
{
    st_stage *s = duckdb_function_get_bind_data(info);
    scan_state *st = duckdb_function_get_init_data(info);
    while (st->part < s->n_parts) {
        st_rows *r = s->parts[st->part];
        if (!r || st->chunk >= r->n_full) {
            st->part++;
            st->chunk = 0;
            st->base = 0;
            st->drop = 0;
            continue;
        }
        duckdb_data_chunk ch = r->full[st->chunk++];
        idx_t n = duckdb_data_chunk_get_size(ch);
        uint32_t base = st->base;
        st->base += (uint32_t)n;
        for (size_t c = 0; c < s->n_cols; c++)
            duckdb_vector_reference_vector(duckdb_data_chunk_get_vector(out, c),
                                           duckdb_data_chunk_get_vector(ch, c));
        if (st->drop < r->n_drops && r->drops[st->drop] < base + n) {
            /* slice the dropped rows away; a selection per chunk, as the
             * sliced vectors share it (a reused one would change chunks
             * already handed out) */
            duckdb_selection_vector sel = duckdb_create_selection_vector(n);
            sel_t *sv = duckdb_selection_vector_get_data_ptr(sel);
            idx_t k = 0;
            for (idx_t i = 0; i < n; i++) {
                if (st->drop < r->n_drops && r->drops[st->drop] == base + i) {
                    st->drop++;
                    continue;
                }
                sv[k++] = (sel_t)i;
            }
            for (size_t c = 0; k && c < s->n_cols; c++)
                duckdb_slice_vector(duckdb_data_chunk_get_vector(out, c), sel, k);
            duckdb_destroy_selection_vector(sel);
            if (k == 0)
                continue;
            n = k;
        }
        duckdb_data_chunk_set_size(out, n);
        return;
    }
    duckdb_data_chunk_set_size(out, 0);
}

st_rc st_stage_register(duckdb_connection conn, const char *name, st_stages *stages, st_err *err)
{
    duckdb_table_function f = duckdb_create_table_function();
    duckdb_table_function_set_name(f, name);
    duckdb_logical_type t = duckdb_create_logical_type(DUCKDB_TYPE_BIGINT);
    duckdb_table_function_add_parameter(f, t);
    duckdb_destroy_logical_type(&t);
    duckdb_table_function_set_extra_info(f, stages, NULL);
    duckdb_table_function_set_bind(f, scan_bind);
    duckdb_table_function_set_init(f, scan_init);
    duckdb_table_function_set_function(f, scan_next);
    duckdb_state ok = duckdb_register_table_function(conn, f);
    duckdb_destroy_table_function(&f);
    if (ok == DuckDBError)
        return st_fail(err, ST_ERR_ENGINE, "duckdb: registering the table function %s", name);
    return ST_OK;
}
