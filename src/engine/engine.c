/*
 * engine.c - the DuckDB wrapper: connection lifecycle, SQL execution with
 * DuckDB's error text, appenders and Parquet writes with statistics
 * (COPY ... RETURN_STATS).  Value formatting lives in value.c.
 */
#include "strata/engine.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct st_engine {
    duckdb_database db;
    duckdb_connection conn;
    bool shared_db;            /* a second connection: the database is the parent's */
};

st_rc st_engine_open(const st_engine_opts *opts, st_engine **out, st_err *err)
{
    st_engine_opts def = {0};
    if (!opts)
        opts = &def;
    st_engine *e = st_calloc(1, sizeof *e);
    if (!e)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    duckdb_config cfg = NULL;
    char *open_err = NULL;
    st_rc rc = ST_OK;
    if (duckdb_create_config(&cfg) == DuckDBError) {
        rc = st_fail(err, ST_ERR_NOMEM, "duckdb: cannot create config");
        goto fail;
    }
    char threads[32];
    if (opts->threads > 0) {
        snprintf(threads, sizeof threads, "%d", opts->threads);
        duckdb_set_config(cfg, "threads", threads);
    }
    if (opts->memory_limit)
        duckdb_set_config(cfg, "memory_limit", opts->memory_limit);
    if (opts->temp_dir)
        duckdb_set_config(cfg, "temp_directory", opts->temp_dir);
    /* no network, no surprise extension downloads */
    duckdb_set_config(cfg, "autoinstall_known_extensions", "false");
    duckdb_set_config(cfg, "autoload_known_extensions", "false");
    if (duckdb_open_ext(opts->path, &e->db, cfg, &open_err) == DuckDBError) {
        rc = st_fail(err, ST_ERR_ENGINE, "duckdb: open %s: %s", opts->path ? opts->path : ":memory:",
                     open_err ? open_err : "unknown error");
        duckdb_free(open_err);
        goto fail;
    }
    if (duckdb_connect(e->db, &e->conn) == DuckDBError) {
        rc = st_fail(err, ST_ERR_ENGINE, "duckdb: connect failed");
        goto fail;
    }
    rc = st_engine_exec(e, "SET TimeZone='UTC'", err);
    if (rc)
        goto fail;
    duckdb_destroy_config(&cfg);
    *out = e;
    return ST_OK;
fail:
    duckdb_destroy_config(&cfg);
    st_engine_close(e);
    return rc;
}

st_rc st_engine_connect(st_engine *parent, st_engine **out, st_err *err)
{
    st_engine *e = st_calloc(1, sizeof *e);
    if (!e)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    e->db = parent->db;
    e->shared_db = true;
    st_rc rc = ST_OK;
    if (duckdb_connect(e->db, &e->conn) == DuckDBError)
        rc = st_fail(err, ST_ERR_ENGINE, "duckdb: connect failed");
    rc = rc ? rc : st_engine_exec(e, "SET TimeZone='UTC'", err);
    if (rc) {
        st_engine_close(e);
        return rc;
    }
    *out = e;
    return ST_OK;
}

void st_engine_close(st_engine *e)
{
    if (!e)
        return;
    if (e->conn)
        duckdb_disconnect(&e->conn);
    if (e->db && !e->shared_db)
        duckdb_close(&e->db);
    st_free(e);
}

duckdb_connection st_engine_conn(st_engine *e) { return e->conn; }

static st_rc result_error(duckdb_result *r, const char *sql, st_err *err)
{
    const char *msg = duckdb_result_error(r);
    /* the SQL can be long; keep the head so the message stays one line */
    st_rc rc = st_fail(err, ST_ERR_ENGINE, "duckdb: %s (in: %.200s%s)", msg ? msg : "unknown error",
                       sql, strlen(sql) > 200 ? "..." : "");
    duckdb_destroy_result(r);
    return rc;
}

st_rc st_engine_query(st_engine *e, const char *sql, duckdb_result *out, st_err *err)
{
    if (duckdb_query(e->conn, sql, out) == DuckDBError)
        return result_error(out, sql, err);
    return ST_OK;
}

st_rc st_engine_exec(st_engine *e, const char *sql, st_err *err)
{
    duckdb_result r;
    st_rc rc = st_engine_query(e, sql, &r, err);
    if (rc == ST_OK)
        duckdb_destroy_result(&r);
    return rc;
}

st_rc st_engine_execf(st_engine *e, st_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = st_vsprintf(fmt, ap);
    va_end(ap);
    if (!sql)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    st_rc rc = st_engine_exec(e, sql, err);
    st_free(sql);
    return rc;
}

st_rc st_engine_query_i64(st_engine *e, const char *sql, int64_t *out, st_err *err)
{
    duckdb_result r;
    st_rc rc = st_engine_query(e, sql, &r, err);
    if (rc)
        return rc;
    if (duckdb_row_count(&r) == 0 || duckdb_column_count(&r) == 0 || duckdb_value_is_null(&r, 0, 0))
        rc = st_fail(err, ST_ERR_NOTFOUND, "query returned no value: %.200s", sql);
    else
        *out = duckdb_value_int64(&r, 0, 0);
    duckdb_destroy_result(&r);
    return rc;
}

st_rc st_engine_query_str(st_engine *e, const char *sql, char **out, st_err *err)
{
    duckdb_result r;
    st_rc rc = st_engine_query(e, sql, &r, err);
    if (rc)
        return rc;
    char *s = NULL;
    if (duckdb_row_count(&r) > 0 && duckdb_column_count(&r) > 0 && !duckdb_value_is_null(&r, 0, 0)) {
        char *v = duckdb_value_varchar(&r, 0, 0);
        s = st_strdup(v);
        duckdb_free(v);
        if (!s)
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    duckdb_destroy_result(&r);
    if (rc == ST_OK)
        *out = s;
    return rc;
}

st_rc st_engine_appender(st_engine *e, const char *table, duckdb_appender *out, st_err *err)
{
    const char *dot = strchr(table, '.');
    char schema[256] = {0};
    const char *name = table;
    if (dot && (size_t)(dot - table) < sizeof schema) {
        memcpy(schema, table, (size_t)(dot - table));
        name = dot + 1;
    }
    if (duckdb_appender_create(e->conn, schema[0] ? schema : NULL, name, out) == DuckDBError) {
        const char *msg = duckdb_appender_error(*out);
        st_rc rc = st_fail(err, ST_ERR_ENGINE, "duckdb: appender on %s: %s", table,
                           msg ? msg : "unknown error");
        duckdb_appender_destroy(out);
        return rc;
    }
    return ST_OK;
}

st_rc st_engine_appender_close(duckdb_appender *app, st_err *err)
{
    st_rc rc = ST_OK;
    if (duckdb_appender_flush(*app) == DuckDBError) {
        const char *msg = duckdb_appender_error(*app);
        rc = st_fail(err, ST_ERR_ENGINE, "duckdb: appender flush: %s", msg ? msg : "unknown error");
    }
    duckdb_appender_destroy(app);
    return rc;
}

/* ---- Parquet writes ---- */

static void file_clear(st_parquet_file *f)
{
    st_free(f->path);
    for (size_t j = 0; j < f->n_cols; j++) {
        st_free(f->cols[j].name);
        st_free(f->cols[j].min);
        st_free(f->cols[j].max);
    }
    st_free(f->cols);
    for (size_t j = 0; j < f->n_parts; j++) {
        st_free(f->part_keys[j]);
        st_free(f->part_values[j]);
    }
    st_free(f->part_keys);
    st_free(f->part_values);
}

void st_parquet_files_free(st_parquet_file *files, size_t n)
{
    if (!files)
        return;
    for (size_t i = 0; i < n; i++)
        file_clear(&files[i]);
    st_free(files);
}

static char *vec_str(duckdb_vector v, idx_t row)
{
    duckdb_string_t *s = (duckdb_string_t *)duckdb_vector_get_data(v) + row;
    uint64_t *valid = duckdb_vector_get_validity(v);
    if (valid && !duckdb_validity_row_is_valid(valid, row))
        return NULL;
    return st_strndup(duckdb_string_t_data(s), duckdb_string_t_length(*s));
}

static bool vec_valid(duckdb_vector v, idx_t row)
{
    uint64_t *valid = duckdb_vector_get_validity(v);
    return !valid || duckdb_validity_row_is_valid(valid, row);
}

/* Reads a MAP(VARCHAR, VARCHAR) cell into parallel key/value arrays. */
static st_rc read_str_map(duckdb_vector map, idx_t row, char ***keys, char ***vals, size_t *n)
{
    *keys = NULL;
    *vals = NULL;
    *n = 0;
    if (!vec_valid(map, row))
        return ST_OK;
    duckdb_list_entry *e = (duckdb_list_entry *)duckdb_vector_get_data(map) + row;
    duckdb_vector kv = duckdb_list_vector_get_child(map);
    duckdb_vector kvec = duckdb_struct_vector_get_child(kv, 0);
    duckdb_vector vvec = duckdb_struct_vector_get_child(kv, 1);
    if (e->length == 0)
        return ST_OK;
    *keys = st_calloc(e->length, sizeof(char *));
    *vals = st_calloc(e->length, sizeof(char *));
    if (!*keys || !*vals)
        return ST_ERR_NOMEM;
    for (idx_t i = 0; i < e->length; i++) {
        (*keys)[i] = vec_str(kvec, e->offset + i);
        (*vals)[i] = vec_str(vvec, e->offset + i);
    }
    *n = e->length;
    return ST_OK;
}

static st_rc read_col_stats(duckdb_vector map, idx_t row, st_parquet_file *f)
{
    if (!vec_valid(map, row))
        return ST_OK;
    duckdb_list_entry *e = (duckdb_list_entry *)duckdb_vector_get_data(map) + row;
    duckdb_vector kv = duckdb_list_vector_get_child(map);
    duckdb_vector kvec = duckdb_struct_vector_get_child(kv, 0);
    duckdb_vector vvec = duckdb_struct_vector_get_child(kv, 1);
    if (e->length == 0)
        return ST_OK;
    f->cols = st_calloc(e->length, sizeof *f->cols);
    if (!f->cols)
        return ST_ERR_NOMEM;
    f->n_cols = e->length;
    for (idx_t i = 0; i < e->length; i++) {
        st_col_stats *c = &f->cols[i];
        c->name = vec_str(kvec, e->offset + i);
        c->null_count = -1;
        char **k = NULL, **v = NULL;
        size_t n = 0;
        st_rc rc = read_str_map(vvec, e->offset + i, &k, &v, &n);
        for (size_t j = 0; j < n; j++) {
            if (rc == ST_OK && k[j] && !strcmp(k[j], "min")) {
                c->min = v[j];
                v[j] = NULL;
            } else if (rc == ST_OK && k[j] && !strcmp(k[j], "max")) {
                c->max = v[j];
                v[j] = NULL;
            } else if (rc == ST_OK && k[j] && !strcmp(k[j], "null_count") && v[j]) {
                c->null_count = strtoll(v[j], NULL, 10);
            }
            st_free(k[j]);
            st_free(v[j]);
        }
        st_free(k);
        st_free(v);
        if (rc)
            return rc;
    }
    return ST_OK;
}

st_rc st_engine_write_parquet(st_engine *e, const char *select_sql, const char *dest,
                              const st_parquet_opts *opts, st_parquet_file **out, size_t *n_out,
                              st_err *err)
{
    st_parquet_opts def = {0};
    if (!opts)
        opts = &def;
    st_rc rc = st_mkdirs(dest, err);
    if (rc)
        return rc;
    st_buf sql;
    st_buf_init(&sql, 0);
    const char *prefix = opts->file_prefix ? opts->file_prefix : "part-";
    bool dir_mode = opts->n_partition_by > 0 || opts->file_size_bytes > 0 || opts->row_groups_per_file > 0;
    char id[37];
    st_uuid4(id);
    rc = st_buf_printf(&sql, "COPY (%s) TO ", select_sql);
    if (dir_mode) {
        rc = rc ? rc : st_buf_sql_str(&sql, dest);
    } else {
        char *file = st_sprintf("%s/%s%s.zstd.parquet", dest, prefix, id);
        rc = rc ? rc : (file ? st_buf_sql_str(&sql, file) : ST_ERR_NOMEM);
        st_free(file);
    }
    rc = rc ? rc : st_buf_printf(&sql, " (FORMAT parquet, COMPRESSION %s, ROW_GROUP_SIZE %lld, RETURN_STATS",
                                 opts->compression ? opts->compression : "zstd",
                                 (long long)(opts->row_group_size > 0 ? opts->row_group_size : 1048576));
    if (opts->compression_level > 0)
        rc = rc ? rc : st_buf_printf(&sql, ", COMPRESSION_LEVEL %d", opts->compression_level);
    if (dir_mode) {
        rc = rc ? rc : st_buf_printf(&sql, ", FILENAME_PATTERN '%s{uuid}', OVERWRITE_OR_IGNORE", prefix);
        if (opts->file_size_bytes > 0)
            rc = rc ? rc : st_buf_printf(&sql, ", FILE_SIZE_BYTES %lld", (long long)opts->file_size_bytes);
        if (opts->row_groups_per_file > 0)
            rc = rc ? rc : st_buf_printf(&sql, ", ROW_GROUPS_PER_FILE %lld", (long long)opts->row_groups_per_file);
        if (opts->n_partition_by) {
            rc = rc ? rc : st_buf_puts(&sql, ", PARTITION_BY (");
            for (size_t i = 0; i < opts->n_partition_by; i++) {
                if (i)
                    rc = rc ? rc : st_buf_puts(&sql, ", ");
                rc = rc ? rc : st_buf_sql_ident(&sql, opts->partition_by[i]);
            }
            rc = rc ? rc : st_buf_puts(&sql, ")");
        }
    }
    rc = rc ? rc : st_buf_puts(&sql, ")");
    if (rc) {
        st_buf_free(&sql);
        return st_fail(err, rc, "building COPY statement");
    }
    duckdb_result r;
    rc = st_engine_query(e, sql.data, &r, err);
    st_buf_free(&sql);
    if (rc)
        return rc;
    st_parquet_file *files = NULL;
    size_t n = 0, cap = 0;
    duckdb_data_chunk chunk;
    while (rc == ST_OK && (chunk = duckdb_fetch_chunk(r)) != NULL) {
        idx_t rows = duckdb_data_chunk_get_size(chunk);
        duckdb_vector vname = duckdb_data_chunk_get_vector(chunk, 0);
        duckdb_vector vcount = duckdb_data_chunk_get_vector(chunk, 1);
        duckdb_vector vsize = duckdb_data_chunk_get_vector(chunk, 2);
        duckdb_vector vstats = duckdb_data_chunk_get_vector(chunk, 4);
        duckdb_vector vparts = duckdb_data_chunk_get_vector(chunk, 5);
        for (idx_t i = 0; rc == ST_OK && i < rows; i++) {
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 8;
                st_parquet_file *nf = st_realloc(files, ncap * sizeof *nf);
                if (!nf) {
                    rc = ST_ERR_NOMEM;
                    break;
                }
                files = nf;
                cap = ncap;
            }
            st_parquet_file *f = &files[n++];
            memset(f, 0, sizeof *f);
            f->path = vec_str(vname, i);
            f->rows = ((int64_t *)duckdb_vector_get_data(vcount))[i];
            f->size = ((int64_t *)duckdb_vector_get_data(vsize))[i];
            rc = read_col_stats(vstats, i, f);
            if (rc == ST_OK)
                rc = read_str_map(vparts, i, &f->part_keys, &f->part_values, &f->n_parts);
        }
        duckdb_destroy_data_chunk(&chunk);
    }
    duckdb_destroy_result(&r);
    if (rc) {
        st_parquet_files_free(files, n);
        return st_fail(err, rc, "reading COPY statistics");
    }
    /* DuckDB reports a zero-row file for an empty result in single-file mode;
     * drop it so callers never commit an empty file */
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (files[i].rows == 0) {
            if (files[i].path)
                remove(files[i].path);
            file_clear(&files[i]);
            continue;
        }
        files[kept++] = files[i];
    }
    *out = files;
    *n_out = kept;
    return ST_OK;
}
