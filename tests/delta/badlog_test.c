/*
 * badlog_test.c - damaged tables: a truncated or corrupt commit, a missing
 * data file, a checkpoint that disagrees with _last_checkpoint, a corrupt
 * checkpoint, and a missing commit in the middle.  Each must give a clear
 * error naming the file (or be tolerated where the protocol allows), and
 * nothing may crash.
 */
#include "testutil.h"
#include "delta/delta_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROTO "{\"protocol\":{\"minReaderVersion\":1,\"minWriterVersion\":2}}\n"
#define META                                                                                       \
    "{\"metaData\":{\"id\":\"t1\",\"format\":{\"provider\":\"parquet\",\"options\":{}},"             \
    "\"schemaString\":\"{\\\"type\\\":\\\"struct\\\",\\\"fields\\\":[{\\\"name\\\":\\\"id\\\","        \
    "\\\"type\\\":\\\"long\\\",\\\"nullable\\\":true,\\\"metadata\\\":{}}]}\","                      \
    "\"partitionColumns\":[],\"configuration\":{}}}\n"
#define ADD(p)                                                                                     \
    "{\"add\":{\"path\":\"" p "\",\"partitionValues\":{},\"size\":1,\"modificationTime\":1,"         \
    "\"dataChange\":true}}\n"

static void put(const char *dir, const char *name, const char *text, size_t len)
{
    char *p = st_sprintf("%s/%s", dir, name);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    TU_OK(st_mkdirs(p, &tu_err));
    *slash = '/';
    TU_OK(st_file_write_atomic(p, text, len, &tu_err));
    st_free(p);
}

static void commit(const char *dir, int64_t v, const char *text)
{
    char name[64];
    snprintf(name, sizeof name, "_delta_log/%020lld.json", (long long)v);
    put(dir, name, text, strlen(text));
}

static void data_file(st_engine *e, const char *dir, const char *name)
{
    TU_OK(st_engine_execf(e, &tu_err, "COPY (SELECT range AS id FROM range(3)) TO '%s/%s' (FORMAT parquet)",
                          dir, name));
}

/* A table with commits 0..3, each adding one file. */
static char *make_table(st_engine *e)
{
    char *dir = tu_tempdir("badlog");
    data_file(e, dir, "f0.parquet");
    data_file(e, dir, "f1.parquet");
    data_file(e, dir, "f2.parquet");
    data_file(e, dir, "f3.parquet");
    commit(dir, 0, PROTO META ADD("f0.parquet"));
    commit(dir, 1, ADD("f1.parquet"));
    commit(dir, 2, ADD("f2.parquet"));
    commit(dir, 3, ADD("f3.parquet"));
    return dir;
}

static void test_truncated_commit(void **state)
{
    (void)state;
    st_engine *e = tu_engine();
    char *dir = make_table(e);
    const char *bad = "{\"add\":{\"path\":\"f2.parq";
    put(dir, "_delta_log/00000000000000000002.json", bad, strlen(bad));
    st_delta_snapshot *s = NULL;
    st_err err;
    assert_int_equal(st_delta_snapshot_load(e, dir, -1, &s, &err), ST_ERR_PARSE);
    assert_non_null(strstr(err.msg, "00000000000000000002.json"));
    assert_non_null(strstr(err.msg, "line 1"));
    /* earlier versions stay readable */
    TU_OK(st_delta_snapshot_load(e, dir, 1, &s, &tu_err));
    assert_int_equal(s->n_files, 2);
    st_delta_snapshot_free(s);
    /* binary garbage, a non-object line and an add without a path */
    const char garbage[] = "\x01\x02\xff\xfe{{{\n";
    put(dir, "_delta_log/00000000000000000002.json", garbage, sizeof garbage - 1);
    assert_int_equal(st_delta_snapshot_load(e, dir, -1, &s, &err), ST_ERR_PARSE);
    assert_non_null(strstr(err.msg, "00000000000000000002.json"));
    commit(dir, 2, "[1,2]\n");
    assert_int_equal(st_delta_snapshot_load(e, dir, -1, &s, &err), ST_ERR_PARSE);
    commit(dir, 2, "{\"add\":{\"size\":3}}\n");
    assert_int_equal(st_delta_snapshot_load(e, dir, -1, &s, &err), ST_ERR_PARSE);
    assert_non_null(strstr(err.msg, "without a path"));
    commit(dir, 2, "{\"metaData\":{\"id\":\"x\",\"schemaString\":\"{not json\"}}\n");
    assert_int_equal(st_delta_snapshot_load(e, dir, -1, &s, &err), ST_ERR_PARSE);
    assert_non_null(strstr(err.msg, "schemaString"));
    st_engine_close(e);
    tu_rmdir(dir);
}

static void test_missing_data_file(void **state)
{
    (void)state;
    st_engine *e = tu_engine();
    char *dir = make_table(e);
    char *p = st_sprintf("%s/f2.parquet", dir);
    remove(p);
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(e, dir, -1, &s, &tu_err));
    char *sql = NULL;
    st_err err;
    assert_int_equal(st_delta_scan_sql(e, s, NULL, &sql, &err), ST_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "f2.parquet"));
    st_delta_snapshot_free(s);
    /* a file that is there but is not Parquet: the query error names it */
    put(dir, "f2.parquet", "not parquet", 11);
    TU_OK(st_delta_snapshot_load(e, dir, -1, &s, &tu_err));
    TU_OK(st_delta_scan_sql(e, s, NULL, &sql, &tu_err));
    assert_int_not_equal(st_engine_exec(e, sql, &err), ST_OK);
    assert_non_null(strstr(err.msg, "f2.parquet"));
    st_free(sql);
    st_delta_snapshot_free(s);
    st_free(p);
    st_engine_close(e);
    tu_rmdir(dir);
}

/* Writes a classic checkpoint of version 1 (files f0, f1) through DuckDB. */
static void write_checkpoint_v1(st_engine *e, const char *dir)
{
    TU_OK(st_engine_execf(
        e, &tu_err,
        "COPY (SELECT * FROM (VALUES "
        "({'minReaderVersion': 1, 'minWriterVersion': 2}, NULL, NULL),"
        "(NULL, {'id': 't1', 'format': {'provider': 'parquet', 'options': MAP{}::MAP(VARCHAR,VARCHAR)}, "
        "'schemaString': '{\"type\":\"struct\",\"fields\":[{\"name\":\"id\",\"type\":\"long\",\"nullable\":true,\"metadata\":{}}]}', "
        "'partitionColumns': []::VARCHAR[], 'configuration': MAP{}::MAP(VARCHAR,VARCHAR)}, NULL),"
        "(NULL, NULL, {'path': 'f0.parquet', 'partitionValues': MAP{}::MAP(VARCHAR,VARCHAR), 'size': 1, 'modificationTime': 1, 'dataChange': false}),"
        "(NULL, NULL, {'path': 'f1.parquet', 'partitionValues': MAP{}::MAP(VARCHAR,VARCHAR), 'size': 1, 'modificationTime': 1, 'dataChange': false})"
        ") AS t(protocol, \"metaData\", \"add\")) TO '%s/_delta_log/00000000000000000001.checkpoint.parquet' (FORMAT parquet)",
        dir));
}

static void test_checkpoint_disagrees(void **state)
{
    (void)state;
    st_engine *e = tu_engine();
    char *dir = make_table(e);
    write_checkpoint_v1(e, dir);
    /* _last_checkpoint names a checkpoint that does not exist: the listing wins */
    const char *lc = "{\"version\":3,\"size\":4}";
    put(dir, "_delta_log/_last_checkpoint", lc, strlen(lc));
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(e, dir, -1, &s, &tu_err));
    assert_int_equal(s->checkpoint_version, 1);
    assert_int_equal(s->n_files, 4);
    st_delta_snapshot_free(s);
    /* commit 0 cleaned up: the checkpoint covers it */
    char *c0 = st_sprintf("%s/_delta_log/00000000000000000000.json", dir);
    char *c0b = st_sprintf("%s.bak", c0);
    assert_int_equal(rename(c0, c0b), 0);
    TU_OK(st_delta_snapshot_load(e, dir, -1, &s, &tu_err));
    assert_int_equal(s->n_files, 4);
    st_delta_snapshot_free(s);
    st_err err;
    assert_int_equal(st_delta_snapshot_load(e, dir, 0, &s, &err), ST_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "00000000000000000000.json"));
    /* a corrupt checkpoint with its early commits gone: error names the checkpoint */
    put(dir, "_delta_log/00000000000000000001.checkpoint.parquet", "garbage", 7);
    assert_int_not_equal(st_delta_snapshot_load(e, dir, -1, &s, &err), ST_OK);
    assert_non_null(strstr(err.msg, "00000000000000000001.checkpoint.parquet"));
    /* with the commits back, the reader falls back to JSON replay */
    assert_int_equal(rename(c0b, c0), 0);
    TU_OK(st_delta_snapshot_load(e, dir, -1, &s, &tu_err));
    assert_int_equal(s->checkpoint_version, -1);
    assert_int_equal(s->n_files, 4);
    st_delta_snapshot_free(s);
    /* a corrupt _last_checkpoint is only a hint */
    put(dir, "_delta_log/_last_checkpoint", "{{{", 3);
    TU_OK(st_delta_snapshot_load(e, dir, -1, &s, &tu_err));
    st_delta_snapshot_free(s);
    st_free(c0);
    st_free(c0b);
    st_engine_close(e);
    tu_rmdir(dir);
}

static void test_missing_commit(void **state)
{
    (void)state;
    st_engine *e = tu_engine();
    char *dir = make_table(e);
    char *p = st_sprintf("%s/_delta_log/00000000000000000002.json", dir);
    assert_int_equal(remove(p), 0);
    st_delta_snapshot *s = NULL;
    st_err err;
    assert_int_equal(st_delta_snapshot_load(e, dir, -1, &s, &err), ST_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "00000000000000000002.json"));
    TU_OK(st_delta_snapshot_load(e, dir, 1, &s, &tu_err));
    st_delta_snapshot_free(s);
    /* with a checkpoint before the gap the gap still fails */
    write_checkpoint_v1(e, dir);
    assert_int_equal(st_delta_snapshot_load(e, dir, -1, &s, &err), ST_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "00000000000000000002.json"));
    /* no table at all */
    assert_int_equal(st_delta_snapshot_load(e, "/nonexistent/x", -1, &s, &err), ST_ERR_NOTFOUND);
    st_free(p);
    st_engine_close(e);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncated_commit),
        cmocka_unit_test(test_missing_data_file),
        cmocka_unit_test(test_checkpoint_disagrees),
        cmocka_unit_test(test_missing_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
