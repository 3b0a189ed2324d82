/*
 * cli_test.c - the `strata` binary end to end: exit codes (0 ok, 1 error,
 * 2 usage), output formats, table actions and the error messages a user
 * sees for unreadable tables.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *lake;

static int setup(void **state)
{
    (void)state;
    lake = tu_tempdir("cli");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmdir(lake);
    return 0;
}

#define S tu_strata_bin()

static void test_usage_codes(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(tu_run(&out, "%s --help", S), 0);
    assert_non_null(strstr(out, "usage: strata"));
    st_free(out);
    assert_int_equal(tu_run(NULL, "%s 2>/dev/null", S), 2);
    assert_int_equal(tu_run(NULL, "%s nosuchcommand 2>/dev/null", S), 2);
    assert_int_equal(tu_run(NULL, "%s sql 2>/dev/null", S), 2);
    assert_int_equal(tu_run(NULL, "%s sql --format xml 'SELECT 1' 2>/dev/null", S), 2);
    assert_int_equal(tu_run(NULL, "%s sql --table novalue 'SELECT 1' 2>/dev/null", S), 2);
    assert_int_equal(tu_run(NULL, "%s table 2>/dev/null", S), 2);
    assert_int_equal(tu_run(NULL, "%s table frobnicate x 2>/dev/null", S), 2);
    static const char *actions[] = {"create", "describe", "history", "append", "delete", "update",
                                    "restore", "optimize", "vacuum", "checkpoint", "changes"};
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
        out = NULL;
        assert_int_equal(tu_run(&out, "%s table %s --help", S, actions[i]), 0);
        assert_non_null(strstr(out, actions[i]));
        st_free(out);
    }
    /* a required option missing is a usage error */
    assert_int_equal(tu_run(NULL, "%s table create %s/x 2>/dev/null", S, lake), 2);
    assert_int_equal(tu_run(NULL, "%s table delete %s/x 2>/dev/null", S, lake), 2);
}

static void test_table_lifecycle(void **state)
{
    (void)state;
    char *t = st_sprintf("%s/bronze/trades", lake);
    char *out = NULL;
    assert_int_equal(tu_run(&out, "%s table create %s --schema 'id long not null, country string, amount decimal(10,2)' "
                                  "--partition-by country --property delta.enableChangeDataFeed=true", S, t), 0);
    st_free(out);
    /* creating twice fails and says so */
    assert_int_equal(tu_run(&out, "%s table create %s --schema 'id long' 2>&1", S, t), 1);
    assert_non_null(strstr(out, "exists"));
    st_free(out);
    assert_int_equal(tu_run(&out, "%s table append %s --sql \"SELECT i::BIGINT AS id, "
                                  "CASE WHEN i %% 2 = 0 THEN 'DE' ELSE 'FR' END AS country, "
                                  "(i / 4)::DECIMAL(10,2) AS amount FROM range(10) t(i)\"", S, t), 0);
    assert_non_null(strstr(out, "committed version 1"));
    st_free(out);

    /* csv: header row then values, decimals exact */
    assert_int_equal(tu_run(&out, "%s sql --lake %s --format csv \"SELECT country, count(*) AS n, sum(amount) AS s "
                                  "FROM bronze.trades GROUP BY 1 ORDER BY 1\"", S, lake), 0);
    assert_string_equal(out, "country,n,s\nDE,5,5.00\nFR,5,6.25\n");
    st_free(out);

    assert_int_equal(tu_run(&out, "%s table delete %s --where 'id < 3'", S, t), 0);
    assert_non_null(strstr(out, "rows written 0, deleted 3"));
    st_free(out);
    assert_int_equal(tu_run(&out, "%s table update %s --set 'amount = amount + 1' --where \"country = 'FR'\"", S, t), 0);
    assert_non_null(strstr(out, "committed version 3"));
    st_free(out);

    /* time travel through --table NAME=PATH@VERSION, json format */
    assert_int_equal(tu_run(&out, "%s sql --table t=%s@1 --table u=%s --format json "
                                  "\"SELECT (SELECT count(*) FROM t) AS v1, (SELECT count(*) FROM u) AS now\"", S, t, t), 0);
    assert_string_equal(out, "{\"v1\":10,\"now\":7}\n");
    st_free(out);

    assert_int_equal(tu_run(&out, "%s table history %s", S, t), 0);
    assert_non_null(strstr(out, "UPDATE"));
    assert_non_null(strstr(out, "DELETE"));
    assert_non_null(strstr(out, "CREATE TABLE"));
    st_free(out);
    assert_int_equal(tu_run(&out, "%s table describe %s", S, t), 0);
    assert_non_null(strstr(out, "version    3"));
    assert_non_null(strstr(out, "decimal(10,2)"));
    assert_non_null(strstr(out, "rows       7"));
    st_free(out);

    /* change feed of the delete: three delete rows */
    assert_int_equal(tu_run(&out, "%s table changes %s --from 2 --to 2 --format csv", S, t), 0);
    int n = 0;
    for (char *p = out; (p = strstr(p, ",delete,")); p++)
        n++;
    assert_int_equal(n, 3);
    st_free(out);

    assert_int_equal(tu_run(&out, "%s table restore %s --version 1", S, t), 0);
    st_free(out);
    assert_int_equal(tu_run(&out, "%s sql --table t=%s --format csv 'SELECT count(*) AS n FROM t'", S, t), 0);
    assert_string_equal(out, "n\n10\n");
    st_free(out);
    assert_int_equal(tu_run(&out, "%s table vacuum %s --retain-hours 0 2>&1", S, t), 1);
    assert_non_null(strstr(out, "retention"));
    st_free(out);
    assert_int_equal(tu_run(&out, "%s table vacuum %s --dry-run", S, t), 0);
    assert_non_null(strstr(out, "vacuum:"));
    st_free(out);
    st_free(t);
}

static void test_unreadable_table_errors(void **state)
{
    (void)state;
    char *t = st_sprintf("%s/bronze/broken", lake);
    char *out = NULL;
    assert_int_equal(tu_run(&out, "%s table create %s --schema 'id long'", S, t), 0);
    st_free(out);
    assert_int_equal(tu_run(&out, "%s table append %s --sql 'SELECT 1::BIGINT AS id'", S, t), 0);
    st_free(out);
    /* corrupt the second commit: the error names the table and the file */
    char *f = st_sprintf("%s/_delta_log/00000000000000000001.json", t);
    FILE *fp = fopen(f, "w");
    fputs("{\"add\": {\"path\": ", fp);
    fclose(fp);
    assert_int_equal(tu_run(&out, "%s sql --table b=%s 'SELECT * FROM b' 2>&1", S, t), 1);
    assert_non_null(strstr(out, "00000000000000000001.json"));
    assert_non_null(strstr(out, "table"));
    st_free(out);
    /* the lake mount names the layer-qualified table */
    assert_int_equal(tu_run(&out, "%s sql --lake %s 'SELECT 1' 2>&1", S, lake), 1);
    assert_non_null(strstr(out, "broken"));
    st_free(out);
    assert_int_equal(tu_run(&out, "%s sql --table b=%s/nope 'SELECT 1' 2>&1", S, lake), 1);
    assert_non_null(strstr(out, "nope"));
    st_free(out);
    st_free(f);
    st_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_codes),
        cmocka_unit_test(test_table_lifecycle),
        cmocka_unit_test(test_unreadable_table_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
