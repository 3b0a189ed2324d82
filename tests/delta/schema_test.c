/*
 * schema_test.c - Spark schema JSON round trips, the DDL parser, and the
 * Delta <-> DuckDB type mapping.
 */
#include "testutil.h"
#include "delta/delta_int.h"

#include <string.h>

static const char *k_nested =
    "{\"type\":\"struct\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"long\",\"nullable\":false,\"metadata\":{\"delta.columnMapping.id\":1,"
    "\"delta.columnMapping.physicalName\":\"col-1\"}},"
    "{\"name\":\"amount\",\"type\":\"decimal(18,2)\",\"nullable\":true,\"metadata\":{}},"
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"elementType\":\"string\",\"containsNull\":false},"
    "\"nullable\":true,\"metadata\":{}},"
    "{\"name\":\"attrs\",\"type\":{\"type\":\"map\",\"keyType\":\"string\",\"valueType\":{\"type\":\"struct\","
    "\"fields\":[{\"name\":\"x\",\"type\":\"timestamp_ntz\",\"nullable\":true,\"metadata\":{}}]},"
    "\"valueContainsNull\":true},\"nullable\":true,\"metadata\":{\"comment\":\"c\"}},"
    "{\"name\":\"ts\",\"type\":\"timestamp\",\"nullable\":true,\"metadata\":{}}]}";

static void test_json_round_trip(void **state)
{
    (void)state;
    st_delta_schema *s = NULL;
    TU_OK(st_delta_schema_parse(k_nested, &s, &tu_err));
    assert_int_equal(s->n_fields, 5);
    assert_int_equal(s->fields[0].type.kind, ST_DT_LONG);
    assert_false(s->fields[0].nullable);
    assert_int_equal(s->fields[0].cm_id, 1);
    assert_string_equal(s->fields[0].physical_name, "col-1");
    assert_int_equal(s->fields[1].type.precision, 18);
    assert_int_equal(s->fields[1].type.scale, 2);
    assert_false(s->fields[2].type.contains_null);
    assert_int_equal(s->fields[3].type.value->fields[0].type.kind, ST_DT_TIMESTAMP_NTZ);
    char *j = st_delta_schema_to_json(s);
    assert_string_equal(j, k_nested);
    st_delta_schema *c = st_delta_schema_copy(s);
    char *j2 = st_delta_schema_to_json(c);
    assert_string_equal(j2, k_nested);
    assert_ptr_equal(st_delta_schema_find(s, "AMOUNT"), &s->fields[1]);
    assert_null(st_delta_schema_find(s, "nope"));
    char *sql = st_delta_type_sql(&s->fields[3].type);
    assert_string_equal(sql, "MAP(VARCHAR, STRUCT(\"x\" TIMESTAMP))");
    char *ts = st_delta_type_sql(&s->fields[4].type);
    assert_string_equal(ts, "TIMESTAMPTZ");
    char *ddl = st_delta_type_ddl(&s->fields[3].type);
    assert_string_equal(ddl, "map<string,struct<x:timestamp_ntz>>");
    st_free(sql);
    st_free(ts);
    st_free(ddl);
    st_free(j);
    st_free(j2);
    st_delta_schema_free(s);
    st_delta_schema_free(c);
}

static void test_json_errors(void **state)
{
    (void)state;
    st_delta_schema *s = NULL;
    st_err err;
    assert_int_equal(st_delta_schema_parse("{not json", &s, &err), ST_ERR_PARSE);
    assert_int_equal(st_delta_schema_parse("{\"type\":\"array\"}", &s, &err), ST_ERR_PARSE);
    assert_int_equal(st_delta_schema_parse("{\"type\":\"struct\",\"fields\":[{\"name\":\"v\",\"type\":\"variant\"}]}",
                                           &s, &err),
                     ST_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "variant"));
    assert_non_null(strstr(err.msg, "\"v\""));
    assert_int_equal(st_delta_schema_parse("{\"type\":\"struct\",\"fields\":[{\"name\":\"d\",\"type\":\"decimal(40,2)\"}]}",
                                           &s, &err),
                     ST_ERR_UNSUPPORTED);
}

static void test_ddl(void **state)
{
    (void)state;
    st_delta_schema *s = NULL;
    TU_OK(st_delta_schema_from_ddl("id long not null, name string, amount decimal(18,2), "
                                   "tags array<string>, attrs map<string,string>, "
                                   "addr struct<city:string,zip:string>, `odd name` int, d date, "
                                   "t timestamp, n timestamp_ntz, b binary, f float, x double, "
                                   "ok boolean, s smallint, y tinyint",
                                   &s, &tu_err));
    assert_int_equal(s->n_fields, 16);
    assert_false(s->fields[0].nullable);
    assert_true(s->fields[1].nullable);
    assert_int_equal(s->fields[2].type.kind, ST_DT_DECIMAL);
    assert_int_equal(s->fields[5].type.n_fields, 2);
    assert_string_equal(s->fields[6].name, "odd name");
    char *j = st_delta_schema_to_json(s);
    st_delta_schema *back = NULL;
    TU_OK(st_delta_schema_parse(j, &back, &tu_err));
    char *j2 = st_delta_schema_to_json(back);
    assert_string_equal(j, j2);
    char *ddl = st_delta_type_ddl(&s->fields[5].type);
    assert_string_equal(ddl, "struct<city:string,zip:string>");
    st_free(ddl);
    st_free(j);
    st_free(j2);
    st_delta_schema_free(back);
    st_delta_schema_free(s);
    st_err err;
    const char *bad[] = {"", "id", "id long,", "id wat", "id decimal(50,1)", "a int, A int",
                         "m map<string>", "s struct<a:int", "`unterminated int"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s = NULL;
        if (st_delta_schema_from_ddl(bad[i], &s, &err) == ST_OK)
            fail_msg("DDL \"%s\" should be rejected", bad[i]);
        assert_int_equal(err.code, ST_ERR_PARSE);
    }
}

static void test_from_duckdb(void **state)
{
    (void)state;
    st_engine *e = tu_engine();
    duckdb_result r;
    TU_OK(st_engine_query(e,
                          "SELECT 1::TINYINT a, 1::INTEGER b, 1::BIGINT c, 1.5::DECIMAL(9,3) d, 'x' e, "
                          "'x'::BLOB f, DATE '2020-01-01' g, TIMESTAMP '2020-01-01' h, "
                          "TIMESTAMPTZ '2020-01-01 00:00:00+00' i, [1,2] j, {'k': 1} k, MAP{'a': 1} l, "
                          "1::UBIGINT m, 1::HUGEINT n",
                          &r, &tu_err));
    st_dtype_kind want[] = {ST_DT_BYTE,    ST_DT_INTEGER,       ST_DT_LONG,      ST_DT_DECIMAL,
                            ST_DT_STRING,  ST_DT_BINARY,        ST_DT_DATE,      ST_DT_TIMESTAMP_NTZ,
                            ST_DT_TIMESTAMP, ST_DT_ARRAY,       ST_DT_STRUCT,    ST_DT_MAP,
                            ST_DT_DECIMAL, ST_DT_DECIMAL};
    for (idx_t i = 0; i < duckdb_column_count(&r); i++) {
        duckdb_logical_type lt = duckdb_column_logical_type(&r, i);
        st_dtype t;
        TU_OK(st_delta_type_from_duckdb(lt, &t, &tu_err));
        assert_int_equal(t.kind, want[i]);
        /* the mapping is stable through SQL text */
        char *sql = st_delta_type_sql(&t);
        assert_non_null(sql);
        st_free(sql);
        st_delta_dtype_clear(&t);
        duckdb_destroy_logical_type(&lt);
    }
    duckdb_destroy_result(&r);
    TU_OK(st_engine_query(e, "SELECT INTERVAL 1 DAY", &r, &tu_err));
    duckdb_logical_type lt = duckdb_column_logical_type(&r, 0);
    st_dtype t;
    st_err err;
    assert_int_equal(st_delta_type_from_duckdb(lt, &t, &err), ST_ERR_UNSUPPORTED);
    duckdb_destroy_logical_type(&lt);
    duckdb_destroy_result(&r);
    st_engine_close(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_ddl),
        cmocka_unit_test(test_from_duckdb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
