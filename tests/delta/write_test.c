/*
 * write_test.c - Delta write operations end to end: create, append,
 * partitioned writes with awkward values, overwrite and replaceWhere,
 * delete/update copy-on-write, restore, schema evolution and refusals,
 * idempotent app transactions, CDF files and stats; every table is checked
 * with the protocol validator and read back through the scan SQL.
 */
#include "testutil.h"
#include "delta_validate.h"
#include "strata/delta.h"

#include <string.h>

static st_engine *eng;
static char *dir;

static int setup(void **state)
{
    (void)state;
    eng = tu_engine();
    dir = tu_tempdir("dwrite");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    st_engine_close(eng);
    tu_rmdir(dir);
    return 0;
}

static char *mk_table(const char *name, const char *ddl, const char *part, const st_kv *props,
                      size_t n_props)
{
    char *p = st_path_join(dir, name);
    st_delta_schema *s = NULL;
    TU_OK(st_delta_schema_from_ddl(ddl, &s, &tu_err));
    st_delta_create_opts o = {0};
    const char *pb[1] = {part};
    if (part) {
        o.partition_by = pb;
        o.n_partition_by = 1;
    }
    o.properties = props;
    o.n_properties = n_props;
    TU_OK(st_delta_create(p, s, &o, &tu_err));
    st_delta_schema_free(s);
    return p;
}

/* Runs sql over view t of the table's latest snapshot; first value as int. */
static int64_t q_i64(const char *table, const char *sql)
{
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(eng, table, -1, &s, &tu_err));
    TU_OK(st_delta_register_view(eng, "t", s, &tu_err));
    int64_t v = -1;
    TU_OK(st_engine_query_i64(eng, sql, &v, &tu_err));
    st_delta_snapshot_free(s);
    return v;
}

static char *q_str(const char *table, const char *sql)
{
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(eng, table, -1, &s, &tu_err));
    TU_OK(st_delta_register_view(eng, "t", s, &tu_err));
    char *v = NULL;
    TU_OK(st_engine_query_str(eng, sql, &v, &tu_err));
    st_delta_snapshot_free(s);
    return v;
}

static void validate(const char *table)
{
    TU_OK(st_test_delta_validate(table, eng, &tu_err));
}

static char *read_commit(const char *table, int64_t v)
{
    char *p = st_sprintf("%s/_delta_log/%020lld.json", table, (long long)v);
    char *data = NULL;
    size_t len;
    TU_OK(st_file_read(p, 1 << 24, &data, &len, &tu_err));
    st_free(p);
    return data;
}

static void test_create_append(void **state)
{
    (void)state;
    char *t = mk_table("basic", "id long not null, name string, ts timestamp", NULL, NULL, 0);
    char *c0 = read_commit(t, 0);
    assert_non_null(strstr(c0, "\"minReaderVersion\":1,\"minWriterVersion\":2"));
    assert_non_null(strstr(c0, "\"operation\":\"CREATE TABLE\""));
    assert_true(strstr(c0, "commitInfo") < strstr(c0, "\"protocol\""));
    st_free(c0);
    st_delta_result r;
    TU_OK(st_delta_write(eng, t,
                         "SELECT i::BIGINT AS id, 'n' || i AS name, "
                         "TIMESTAMPTZ '2024-01-01 00:00:00.123456+00' + to_microseconds(i) AS ts "
                         "FROM range(100) r(i)",
                         NULL, &r, &tu_err));
    assert_int_equal(r.version, 1);
    assert_int_equal(r.rows_written, 100);
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t"), 100);
    assert_int_equal(q_i64(t, "SELECT sum(id) FROM t"), 4950);
    char *c1 = read_commit(t, 1);
    /* timestamp bounds in ms: min truncated, max rounded up */
    assert_non_null(strstr(c1, "\\\"ts\\\":\\\"2024-01-01T00:00:00.123Z\\\""));
    assert_non_null(strstr(c1, "\\\"ts\\\":\\\"2024-01-01T00:00:00.124Z\\\""));
    assert_non_null(strstr(c1, "\\\"numRecords\\\":100"));
    assert_non_null(strstr(c1, "\"isBlindAppend\":true"));
    st_free(c1);
    /* an empty result commits nothing */
    TU_OK(st_delta_write(eng, t, "SELECT 1::BIGINT AS id, 'x' AS name, NULL::TIMESTAMPTZ AS ts WHERE false",
                         NULL, &r, &tu_err));
    assert_int_equal(r.version, -1);
    /* creating twice is refused */
    st_delta_schema *s = NULL;
    TU_OK(st_delta_schema_from_ddl("id long", &s, &tu_err));
    assert_int_equal(st_delta_create(t, s, NULL, &tu_err), ST_ERR_EXISTS);
    st_delta_schema_free(s);
    validate(t);
    st_free(t);
}

static void test_partitioned(void **state)
{
    (void)state;
    char *t = mk_table("part", "id int, p string", "p", NULL, 0);
    TU_OK(st_delta_write(eng, t,
                         "SELECT i::INT AS id, CASE i % 3 WHEN 0 THEN 'DE' WHEN 1 THEN 'A/B %x' "
                         "ELSE NULL END AS p FROM range(30) r(i)",
                         NULL, NULL, &tu_err));
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t WHERE p = 'A/B %x'"), 10);
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t WHERE p IS NULL"), 10);
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t WHERE p = 'DE'"), 10);
    char *null_dir = st_path_join(t, "p=__HIVE_DEFAULT_PARTITION__");
    char *esc_dir = st_path_join(t, "p=A%2FB %25x");
    assert_true(st_is_dir(null_dir));
    assert_true(st_is_dir(esc_dir));
    char *c1 = read_commit(t, 1);
    assert_non_null(strstr(c1, "\"path\":\"p=A%252FB%20%2525x/"));
    assert_non_null(strstr(c1, "\"partitionValues\":{\"p\":null}"));
    st_free(c1);
    st_free(null_dir);
    st_free(esc_dir);
    validate(t);
    st_free(t);
}

static void test_typed_partitions(void **state)
{
    (void)state;
    char *t = st_path_join(dir, "typed");
    st_delta_schema *s = NULL;
    TU_OK(st_delta_schema_from_ddl("id int, d date, ts timestamp, n int, b boolean", &s, &tu_err));
    const char *pb[] = {"d", "ts", "n", "b"};
    st_delta_create_opts o = {.partition_by = pb, .n_partition_by = 4};
    TU_OK(st_delta_create(t, s, &o, &tu_err));
    st_delta_schema_free(s);
    TU_OK(st_delta_write(eng, t,
                         "SELECT i::INT AS id, DATE '2024-03-01' + i::INT AS d, "
                         "TIMESTAMPTZ '2024-03-01 10:11:12+00' AS ts, (i % 2)::INT AS n, i > 0 AS b "
                         "FROM range(3) r(i)",
                         NULL, NULL, &tu_err));
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t WHERE d = DATE '2024-03-02'"), 1);
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t WHERE ts = TIMESTAMPTZ '2024-03-01 10:11:12+00'"), 3);
    assert_int_equal(q_i64(t, "SELECT sum(n) FROM t"), 1);
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t WHERE b"), 2);
    char *c1 = read_commit(t, 1);
    assert_non_null(strstr(c1, "\"d\":\"2024-03-01\""));
    assert_non_null(strstr(c1, "\"ts\":\"2024-03-01T10:11:12.000000Z\""));
    st_free(c1);
    TU_OK(st_delta_delete(eng, t, "n = 1", NULL, &tu_err));
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t"), 2);
    validate(t);
    st_free(t);
}

static void test_overwrite(void **state)
{
    (void)state;
    char *t = mk_table("ow", "id int, p string", "p", NULL, 0);
    TU_OK(st_delta_write(eng, t, "SELECT i::INT AS id, 'p' || (i % 2) AS p FROM range(10) r(i)",
                         NULL, NULL, &tu_err));
    st_delta_write_opts o = {.mode = ST_DELTA_OVERWRITE, .replace_where = "p = 'p0'"};
    st_delta_result r;
    TU_OK(st_delta_write(eng, t, "SELECT 100 + i::INT AS id, 'p0' AS p FROM range(3) r(i)", &o, &r,
                         &tu_err));
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t WHERE p = 'p0'"), 3);
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t WHERE p = 'p1'"), 5);
    assert_int_equal(q_i64(t, "SELECT min(id) FROM t WHERE p = 'p0'"), 100);
    /* rows outside replace_where are refused */
    assert_int_equal(st_delta_write(eng, t, "SELECT 1 AS id, 'p1' AS p", &o, NULL, &tu_err),
                     ST_ERR_INVALID);
    assert_non_null(strstr(tu_err.msg, "replaceWhere"));
    st_delta_write_opts all = {.mode = ST_DELTA_OVERWRITE};
    TU_OK(st_delta_write(eng, t, "SELECT 7 AS id, 'x' AS p", &all, NULL, &tu_err));
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t"), 1);
    assert_int_equal(q_i64(t, "SELECT sum(id) FROM t"), 7);
    validate(t);
    st_free(t);
}

static void test_delete_update(void **state)
{
    (void)state;
    char *t = mk_table("du", "id int, v string", NULL, NULL, 0);
    TU_OK(st_delta_write(eng, t, "SELECT i::INT AS id, CASE WHEN i < 5 THEN NULL ELSE 'v' || i END AS v FROM range(20) r(i)",
                         NULL, NULL, &tu_err));
    TU_OK(st_delta_write(eng, t, "SELECT 1000 + i::INT AS id, 'w' AS v FROM range(5) r(i)", NULL,
                         NULL, &tu_err));
    st_delta_result r;
    /* NULL-safe: rows where v <> 'v7' is NULL stay */
    TU_OK(st_delta_delete(eng, t, "v <> 'v7' AND id < 100", &r, &tu_err));
    assert_int_equal(r.rows_deleted, 14);
    assert_int_equal(r.files_removed, 1);
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t"), 11);
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t WHERE v IS NULL"), 5);
    /* a predicate matching nothing commits nothing */
    TU_OK(st_delta_delete(eng, t, "id = -1", &r, &tu_err));
    assert_int_equal(r.version, -1);
    TU_OK(st_delta_update(eng, t, "v = 'upd', id = id + 1", "id >= 1000", &r, &tu_err));
    assert_int_equal(r.rows_updated, 5);
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t WHERE v = 'upd'"), 5);
    assert_int_equal(q_i64(t, "SELECT min(id) FROM t WHERE v = 'upd'"), 1001);
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t"), 11);
    /* deleting every row of a file removes it without a rewrite */
    TU_OK(st_delta_delete(eng, t, "v = 'upd'", &r, &tu_err));
    assert_int_equal(r.files_added, 0);
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t"), 6);
    validate(t);
    st_free(t);
}

static void test_restore(void **state)
{
    (void)state;
    char *t = mk_table("rs", "id int", NULL, NULL, 0);
    TU_OK(st_delta_write(eng, t, "SELECT i::INT AS id FROM range(10) r(i)", NULL, NULL, &tu_err));
    TU_OK(st_delta_write(eng, t, "SELECT 50 AS id", NULL, NULL, &tu_err));
    TU_OK(st_delta_delete(eng, t, "id < 5", NULL, &tu_err));
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t"), 6);
    st_delta_result r;
    TU_OK(st_delta_restore(eng, t, 1, &r, &tu_err));
    assert_int_equal(r.version, 4);
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t"), 10);
    assert_int_equal(q_i64(t, "SELECT sum(id) FROM t"), 45);
    char *c = read_commit(t, 4);
    assert_non_null(strstr(c, "\"operation\":\"RESTORE\""));
    st_free(c);
    validate(t);
    st_free(t);
}

static void test_schema_merge(void **state)
{
    (void)state;
    char *t = mk_table("sm", "id int, name string", NULL, NULL, 0);
    TU_OK(st_delta_write(eng, t, "SELECT 1::INT AS id, 'a' AS name", NULL, NULL, &tu_err));
    assert_int_equal(st_delta_write(eng, t, "SELECT 2::INT AS id, 'b' AS name, 3 AS extra", NULL,
                                    NULL, &tu_err),
                     ST_ERR_INVALID);
    assert_non_null(strstr(tu_err.msg, "extra"));
    assert_int_equal(st_delta_write(eng, t, "SELECT 'x' AS id, 'b' AS name", NULL, NULL, &tu_err),
                     ST_ERR_INVALID);
    assert_non_null(strstr(tu_err.msg, "id"));
    assert_non_null(strstr(tu_err.msg, "string"));
    assert_non_null(strstr(tu_err.msg, "integer"));
    /* widening int -> long needs merge_schema */
    assert_int_equal(st_delta_write(eng, t, "SELECT 5000000000::BIGINT AS id, 'b' AS name", NULL,
                                    NULL, &tu_err),
                     ST_ERR_INVALID);
    st_delta_write_opts m = {.merge_schema = true};
    TU_OK(st_delta_write(eng, t, "SELECT 5000000000::BIGINT AS id, 'b' AS name, 3.5::DOUBLE AS extra",
                         &m, NULL, &tu_err));
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t"), 2);
    assert_int_equal(q_i64(t, "SELECT max(id) FROM t"), 5000000000LL);
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t WHERE extra IS NULL"), 1);
    /* narrower input is cast up without merge */
    TU_OK(st_delta_write(eng, t, "SELECT 7::SMALLINT AS id, 'c' AS name", NULL, NULL, &tu_err));
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t"), 3);
    validate(t);
    st_free(t);
}

static void test_idempotent(void **state)
{
    (void)state;
    char *t = mk_table("idem", "id int", NULL, NULL, 0);
    st_delta_write_opts o = {.app_id = "loader-1", .app_version = 5};
    st_delta_result r;
    TU_OK(st_delta_write(eng, t, "SELECT 1 AS id", &o, &r, &tu_err));
    assert_false(r.skipped);
    TU_OK(st_delta_write(eng, t, "SELECT 1 AS id", &o, &r, &tu_err));
    assert_true(r.skipped);
    assert_int_equal(r.version, -1);
    o.app_version = 6;
    TU_OK(st_delta_write(eng, t, "SELECT 2 AS id", &o, &r, &tu_err));
    assert_false(r.skipped);
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t"), 2);
    validate(t);
    st_free(t);
}

static void test_cdf(void **state)
{
    (void)state;
    st_kv props[] = {{"delta.enableChangeDataFeed", "true"}};
    char *t = mk_table("cdf", "id int, v string", NULL, props, 1);
    char *c0 = read_commit(t, 0);
    assert_non_null(strstr(c0, "\"minWriterVersion\":4"));
    st_free(c0);
    TU_OK(st_delta_write(eng, t, "SELECT i::INT AS id, 'a' AS v FROM range(10) r(i)", NULL, NULL,
                         &tu_err));
    TU_OK(st_delta_delete(eng, t, "id < 3", NULL, &tu_err));
    TU_OK(st_delta_update(eng, t, "v = 'b'", "id = 5", NULL, &tu_err));
    char *c2 = read_commit(t, 2);
    assert_non_null(strstr(c2, "{\"cdc\":{\"path\":\"_change_data/"));
    st_free(c2);
    char *glob = st_sprintf("SELECT count(*) FROM read_parquet('%s/_change_data/*.parquet') "
                            "WHERE _change_type = 'delete'", t);
    int64_t n = -1;
    TU_OK(st_engine_query_i64(eng, glob, &n, &tu_err));
    assert_int_equal(n, 3);
    st_free(glob);
    glob = st_sprintf("SELECT count(*) FROM read_parquet('%s/_change_data/*.parquet') "
                      "WHERE (_change_type = 'update_preimage' AND v = 'a' AND id = 5) OR "
                      "(_change_type = 'update_postimage' AND v = 'b' AND id = 5)", t);
    TU_OK(st_engine_query_i64(eng, glob, &n, &tu_err));
    assert_int_equal(n, 2);
    st_free(glob);
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t"), 7);
    validate(t);
    st_free(t);
}

static void test_stats_strings(void **state)
{
    (void)state;
    char *t = mk_table("st", "s string, d date, x double, b boolean, st struct<a:int,b:string>",
                       NULL, NULL, 0);
    TU_OK(st_delta_write(eng, t,
                         "SELECT repeat('z', 40) AS s, DATE '2024-02-03' AS d, 1.5::DOUBLE AS x, "
                         "true AS b, {'a': 4, 'b': 'q'} AS st",
                         NULL, NULL, &tu_err));
    char *c1 = read_commit(t, 1);
    assert_non_null(strstr(c1, "\\\"d\\\":\\\"2024-02-03\\\""));
    assert_non_null(strstr(c1, "\\\"st\\\":{\\\"a\\\":4"));
    /* min is the 32-char prefix, max the prefix plus U+10FFFF */
    assert_non_null(strstr(c1, "\\\"s\\\":\\\"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\\\""));
    assert_non_null(strstr(c1, "\\\"s\\\":\\\"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\xF4\x8F\xBF\xBF\\\""));
    st_free(c1);
    char *v = q_str(t, "SELECT st.b FROM t");
    assert_string_equal(v, "q");
    st_free(v);
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t WHERE s = repeat('z', 40)"), 1);
    validate(t);
    st_free(t);
}

static void test_column_mapping_ntz(void **state)
{
    (void)state;
    st_kv props[] = {{"delta.columnMapping.mode", "name"}};
    char *t = mk_table("cm", "id int, s struct<a:int>", NULL, props, 1);
    char *c0 = read_commit(t, 0);
    assert_non_null(strstr(c0, "\"minReaderVersion\":2,\"minWriterVersion\":5"));
    assert_non_null(strstr(c0, "delta.columnMapping.physicalName"));
    assert_non_null(strstr(c0, "\"delta.columnMapping.maxColumnId\":\"3\""));
    st_free(c0);
    TU_OK(st_delta_write(eng, t, "SELECT 3 AS id, {'a': 1} AS s", NULL, NULL, &tu_err));
    assert_int_equal(q_i64(t, "SELECT sum(id) FROM t"), 3);
    assert_int_equal(q_i64(t, "SELECT sum(s.a) FROM t"), 1);
    /* a merged column gets its own id and physical name */
    st_delta_write_opts m = {.merge_schema = true};
    TU_OK(st_delta_write(eng, t, "SELECT 4 AS id, {'a': 2} AS s, 9 AS extra", &m, NULL, &tu_err));
    assert_int_equal(q_i64(t, "SELECT sum(extra) FROM t"), 9);
    assert_int_equal(q_i64(t, "SELECT sum(s.a) FROM t"), 3);
    TU_OK(st_delta_delete(eng, t, "id = 3", NULL, &tu_err));
    assert_int_equal(q_i64(t, "SELECT count(*) FROM t"), 1);
    char *c2 = read_commit(t, 2);
    assert_non_null(strstr(c2, "\"delta.columnMapping.maxColumnId\":\"4\""));
    st_free(c2);
    validate(t);
    st_free(t);
    char *n = mk_table("ntz", "id int, t timestamp_ntz", NULL, NULL, 0);
    c0 = read_commit(n, 0);
    assert_non_null(strstr(c0, "\"minReaderVersion\":3,\"minWriterVersion\":7"));
    assert_non_null(strstr(c0, "\"timestampNtz\""));
    st_free(c0);
    st_free(n);
}

static void test_unknown_writer_feature(void **state)
{
    (void)state;
    char *t = st_path_join(dir, "feat");
    char *log = st_path_join(t, "_delta_log");
    TU_OK(st_mkdirs(log, &tu_err));
    const char *c0 =
        "{\"commitInfo\":{\"timestamp\":1}}\n"
        "{\"protocol\":{\"minReaderVersion\":1,\"minWriterVersion\":7,\"writerFeatures\":[\"fancyFeature\"]}}\n"
        "{\"metaData\":{\"id\":\"x\",\"format\":{\"provider\":\"parquet\",\"options\":{}},"
        "\"schemaString\":\"{\\\"type\\\":\\\"struct\\\",\\\"fields\\\":[{\\\"name\\\":\\\"id\\\",\\\"type\\\":\\\"integer\\\",\\\"nullable\\\":true,\\\"metadata\\\":{}}]}\","
        "\"partitionColumns\":[],\"configuration\":{}}}\n";
    char *p = st_path_join(log, "00000000000000000000.json");
    TU_OK(st_file_write_atomic(p, c0, strlen(c0), &tu_err));
    assert_int_equal(st_delta_write(eng, t, "SELECT 1 AS id", NULL, NULL, &tu_err),
                     ST_ERR_UNSUPPORTED);
    assert_non_null(strstr(tu_err.msg, "fancyFeature"));
    st_free(p);
    st_free(log);
    st_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_append),
        cmocka_unit_test(test_partitioned),
        cmocka_unit_test(test_typed_partitions),
        cmocka_unit_test(test_overwrite),
        cmocka_unit_test(test_delete_update),
        cmocka_unit_test(test_restore),
        cmocka_unit_test(test_schema_merge),
        cmocka_unit_test(test_idempotent),
        cmocka_unit_test(test_cdf),
        cmocka_unit_test(test_stats_strings),
        cmocka_unit_test(test_column_mapping_ntz),
        cmocka_unit_test(test_unknown_writer_feature),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
