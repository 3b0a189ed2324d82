/*
 * engine_test.c - the DuckDB wrapper: errors carry DuckDB's text, Parquet
 * writes report per-file statistics and partition values, empty results
 * write no file, values format as text and JSON.
 */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

static void test_errors_surface(void **state)
{
    (void)state;
    st_engine *e = tu_engine();
    st_err err;
    assert_int_equal(st_engine_exec(e, "SELECT * FROM no_such_table", &err), ST_ERR_ENGINE);
    assert_non_null(strstr(err.msg, "no_such_table"));
    int64_t v = 0;
    TU_OK(st_engine_query_i64(e, "SELECT 41 + 1", &v, &tu_err));
    assert_int_equal(v, 42);
    assert_int_equal(st_engine_query_i64(e, "SELECT NULL::INT", &v, &err), ST_ERR_NOTFOUND);
    char *s = NULL;
    TU_OK(st_engine_query_str(e, "SELECT current_setting('TimeZone')", &s, &tu_err));
    assert_string_equal(s, "UTC");
    st_free(s);
    st_engine_close(e);
    st_engine_close(NULL);
}

static const st_col_stats *col(const st_parquet_file *f, const char *name)
{
    for (size_t i = 0; i < f->n_cols; i++)
        if (!strcmp(f->cols[i].name, name))
            return &f->cols[i];
    return NULL;
}

static void test_write_parquet_stats(void **state)
{
    (void)state;
    st_engine *e = tu_engine();
    char *dir = tu_tempdir("engine");
    st_parquet_file *files = NULL;
    size_t n = 0;
    TU_OK(st_engine_write_parquet(e,
                                  "SELECT i::INT AS a, CASE WHEN i % 4 = 0 THEN NULL ELSE 'x' || i END AS s "
                                  "FROM range(100) t(i)",
                                  dir, NULL, &files, &n, &tu_err));
    assert_int_equal(n, 1);
    assert_int_equal(files[0].rows, 100);
    assert_true(files[0].size > 0);
    assert_true(st_path_exists(files[0].path));
    const st_col_stats *a = col(&files[0], "\"a\"");
    assert_non_null(a);
    assert_string_equal(a->min, "0");
    assert_string_equal(a->max, "99");
    assert_int_equal(a->null_count, 0);
    const st_col_stats *s = col(&files[0], "\"s\"");
    assert_non_null(s);
    assert_int_equal(s->null_count, 25);
    int64_t rows = 0;
    char *q = st_sprintf("SELECT count(*) FROM read_parquet('%s')", files[0].path);
    TU_OK(st_engine_query_i64(e, q, &rows, &tu_err));
    assert_int_equal(rows, 100);
    st_free(q);
    st_parquet_files_free(files, n);

    /* a zstd level: the same rows back; DuckDB refuses a level zstd has not */
    st_parquet_opts lo = {.compression_level = 1};
    char *ldir = st_path_join(dir, "level");
    TU_OK(st_mkdirs(ldir, &tu_err));
    TU_OK(st_engine_write_parquet(e, "SELECT i AS v, repeat('ab', i % 7) AS t FROM range(1000) t(i)",
                                  ldir, &lo, &files, &n, &tu_err));
    q = st_sprintf("SELECT sum(v) + sum(length(t)) FROM read_parquet('%s')", files[0].path);
    TU_OK(st_engine_query_i64(e, q, &rows, &tu_err));
    assert_int_equal(rows, 499500 + 5994);
    st_free(q);
    st_parquet_files_free(files, n);
    lo.compression_level = 99;
    st_err le;
    assert_int_not_equal(st_engine_write_parquet(e, "SELECT 1 AS v", ldir, &lo, &files, &n, &le), ST_OK);
    assert_non_null(strstr(le.msg, "Compression level"));
    st_free(ldir);

    /* partitioned: one file per value, partition columns not in the files */
    static const char *const by[] = {"p"};
    st_parquet_opts o = {.partition_by = by, .n_partition_by = 1, .row_group_size = 10};
    char *pdir = st_path_join(dir, "parts");
    TU_OK(st_engine_write_parquet(e, "SELECT i::BIGINT AS v, (i % 3)::VARCHAR AS p FROM range(30) t(i)", pdir, &o,
                                  &files, &n, &tu_err));
    assert_int_equal(n, 3);
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(files[i].n_parts, 1);
        assert_string_equal(files[i].part_keys[0], "p");
        assert_non_null(strstr(files[i].path, "p="));
        assert_null(col(&files[i], "\"p\""));
        total += files[i].rows;
    }
    assert_int_equal(total, 30);
    st_parquet_files_free(files, n);

    /* rolled files: row groups of 20480 rows, one row group per file */
    st_parquet_opts ro = {.row_group_size = 20480, .row_groups_per_file = 1};
    char *rdir = st_path_join(dir, "rolled");
    TU_OK(st_engine_write_parquet(e, "SELECT i::BIGINT AS v FROM range(61440) t(i)", rdir, &ro, &files, &n,
                                  &tu_err));
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(files[i].rows, 20480);
    st_parquet_files_free(files, n);
    st_free(rdir);

    /* no rows, no file */
    char *edir = st_path_join(dir, "empty");
    TU_OK(st_engine_write_parquet(e, "SELECT 1 AS a WHERE false", edir, NULL, &files, &n, &tu_err));
    assert_int_equal(n, 0);
    st_parquet_files_free(files, n);
    st_free(edir);
    st_free(pdir);
    tu_rmdir(dir);
    st_engine_close(e);
}

static void test_value_format(void **state)
{
    (void)state;
    st_engine *e = tu_engine();
    duckdb_result r;
    TU_OK(st_engine_query(e,
                          "SELECT 12.30::DECIMAL(10,2) AS d, -0.05::DECIMAL(38,10) AS h, DATE '2024-02-29' AS dt, "
                          "TIMESTAMPTZ '2024-01-02 03:04:05.123456+00' AS ts, {'a': 1, 'b': [1, NULL]} AS st, "
                          "MAP {'k': 'v'} AS m, '\\x00'::BLOB AS bl, NULL::INT AS n, 'q\"'::VARCHAR AS s",
                          &r, &tu_err));
    duckdb_data_chunk c = duckdb_fetch_chunk(r);
    assert_non_null(c);
    static const char *text[] = {"12.30", "-0.0500000000", "2024-02-29", "2024-01-02 03:04:05.123456+00",
                                 "{\"a\":1,\"b\":[1,null]}", "{\"k\":\"v\"}", "00", "", "q\""};
    static const char *json[] = {"12.30", "-0.0500000000", "\"2024-02-29\"", "\"2024-01-02 03:04:05.123456+00\"",
                                 "{\"a\":1,\"b\":[1,null]}", "{\"k\":\"v\"}", "\"00\"", "null", "\"q\\\"\""};
    for (idx_t j = 0; j < 9; j++) {
        duckdb_logical_type t = duckdb_column_logical_type(&r, j);
        duckdb_vector v = duckdb_data_chunk_get_vector(c, j);
        st_buf b;
        st_buf_init(&b, 0);
        bool is_null = false;
        TU_OK(st_engine_value_text(v, t, 0, &b, &is_null));
        assert_string_equal(b.data ? b.data : "", text[j]);
        assert_int_equal(is_null, j == 7);
        st_buf_reset(&b);
        TU_OK(st_engine_value_json(v, t, 0, &b));
        assert_string_equal(b.data, json[j]);
        st_buf_free(&b);
        duckdb_destroy_logical_type(&t);
    }
    duckdb_destroy_data_chunk(&c);
    duckdb_destroy_result(&r);
    st_engine_close(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors_surface),
        cmocka_unit_test(test_write_parquet_stats),
        cmocka_unit_test(test_value_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
