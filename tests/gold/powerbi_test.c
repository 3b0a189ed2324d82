/*
 * powerbi_test.c - the TMDL semantic model written for a small star schema:
 * typed columns, relationships found by key names (and none invented),
 * measures, RangeStart/RangeEnd filtering with a refresh policy on the
 * fact, tables that are neither fact nor dimension left out, the CLI, and
 * the error for a lake without gold tables.
 */
#include "testutil.h"

#include "strata/delta.h"
#include "strata/gold.h"

#include <stdio.h>
#include <string.h>

static void table(st_engine *eng, const char *lake, const char *name, const char *ddl,
                  const char *sql)
{
    char *rel = st_sprintf("gold/%s", name);
    char *path = st_path_join(lake, rel);
    st_delta_schema *sc = NULL;
    TU_OK(st_delta_schema_from_ddl(ddl, &sc, &tu_err));
    TU_OK(st_mkdirs(path, &tu_err));
    TU_OK(st_delta_create(path, sc, NULL, &tu_err));
    st_delta_schema_free(sc);
    st_delta_write_opts wo = {.mode = ST_DELTA_APPEND};
    TU_OK(st_delta_write(eng, path, sql, &wo, NULL, &tu_err));
    st_free(rel);
    st_free(path);
}

static char *slurp(const char *dir, const char *rel)
{
    char *path = st_path_join(dir, rel), *text = NULL;
    size_t len = 0;
    TU_OK(st_file_read(path, 1 << 20, &text, &len, &tu_err));
    st_free(path);
    return text;
}

static void test_model(void **state)
{
    (void)state;
    char *dir = tu_tempdir("pbi");
    char *lake = st_path_join(dir, "lake");
    char *out = st_path_join(dir, "model");
    st_engine *eng = tu_engine();
    table(eng, lake, "fact_sales",
          "sale_id long, date_key int, customer_sk long, currency_code string, "
          "amount_eur decimal(18,2), sold_at timestamp",
          "SELECT 1::BIGINT AS sale_id, 20240101 AS date_key, 7::BIGINT AS customer_sk, "
          "'EUR' AS currency_code, 10.5::DECIMAL(18,2) AS amount_eur, "
          "TIMESTAMP '2024-01-01 10:00:00' AS sold_at");
    table(eng, lake, "dim_customer", "customer_sk long, name string, is_current boolean",
          "SELECT 7::BIGINT AS customer_sk, 'Ann' AS name, true AS is_current");
    table(eng, lake, "dim_date", "date_key int, date date",
          "SELECT 20240101 AS date_key, DATE '2024-01-01' AS date");
    table(eng, lake, "scratch", "x int", "SELECT 1 AS x");
    size_t n = 0;
    TU_OK(st_gold_powerbi(eng, lake, out, &n, &tu_err));
    assert_int_equal(n, 3);

    char *model = slurp(out, "definition/model.tmdl");
    assert_non_null(strstr(model, "ref table fact_sales\n"));
    assert_non_null(strstr(model, "ref table dim_date\n"));
    assert_null(strstr(model, "scratch"));
    char *rels = slurp(out, "definition/relationships.tmdl");
    assert_non_null(strstr(rels, "fromColumn: fact_sales.customer_sk\n\ttoColumn: "
                                 "dim_customer.customer_sk"));
    assert_non_null(strstr(rels, "fromColumn: fact_sales.date_key\n\ttoColumn: dim_date.date_key"));
    assert_null(strstr(rels, "currency_code"));  /* no dim_currency: no relationship */
    char *fact = slurp(out, "definition/tables/fact_sales.tmdl");
    assert_non_null(strstr(fact, "column amount_eur\n\t\tdataType: decimal"));
    assert_non_null(strstr(fact, "column sale_id\n\t\tdataType: int64"));
    assert_non_null(strstr(fact, "column sold_at\n\t\tdataType: dateTime"));
    assert_non_null(strstr(fact, "column currency_code\n\t\tdataType: string"));
    assert_non_null(strstr(fact, "measure 'Amount EUR' = SUM(fact_sales[amount_eur])"));
    assert_non_null(strstr(fact, "each [sold_at] >= RangeStart and [sold_at] < RangeEnd"));
    assert_non_null(strstr(fact, "refreshPolicy\n\t\tpolicyType: basic"));
    assert_non_null(strstr(fact, "incrementalGranularity: month"));
    char *dim = slurp(out, "definition/tables/dim_customer.tmdl");
    assert_non_null(strstr(dim, "column is_current\n\t\tdataType: boolean"));
    assert_null(strstr(dim, "refreshPolicy"));
    assert_null(strstr(dim, "RangeStart"));
    char *expr = slurp(out, "definition/expressions.tmdl");
    assert_non_null(strstr(expr, "expression RangeStart = #datetime("));
    assert_non_null(strstr(expr, "expression RangeEnd = #datetime("));
    assert_non_null(strstr(expr, "expression LakePath = "));

    char *cli = NULL;
    assert_int_equal(tu_run(&cli, "%s gold powerbi --lake %s --out %s/cli 2>&1", tu_strata_bin(),
                            lake, dir), 0);
    assert_non_null(strstr(cli, "3 tables"));

    /* a lake without gold tables: an error naming the folder */
    st_err e;
    st_err_clear(&e);
    char *empty = st_path_join(dir, "empty");
    assert_int_not_equal(st_gold_powerbi(eng, empty, out, NULL, &e), ST_OK);
    assert_non_null(strstr(e.msg, empty));

    st_free(empty);
    st_free(cli);
    st_free(expr);
    st_free(dim);
    st_free(fact);
    st_free(rels);
    st_free(model);
    st_engine_close(eng);
    st_free(out);
    st_free(lake);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
