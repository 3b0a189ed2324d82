/*
 * gold_test.c - a project folder end to end: SQL models with ref(), full
 * and incremental materialisations checked against values computed in the
 * test, plan reasons, a day-partitioned backfill that fails in the middle
 * and resumes, the scheduler tick, OpenLineage NDJSON events, and the CLI
 * (init, plan, run, runs, backfill).
 */
#include "testutil.h"

#include "strata/delta.h"
#include "strata/orch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void write_file(const char *dir, const char *rel, const char *text)
{
    char *path = st_path_join(dir, rel);
    char *slash = strrchr(path, '/');
    *slash = 0;
    TU_OK(st_mkdirs(path, &tu_err));
    *slash = '/';
    TU_OK(st_file_write_atomic(path, text, strlen(text), &tu_err));
    st_free(path);
}

static void bronze_write(st_engine *eng, const char *lake, const char *table, const char *ddl,
                         const char *sql)
{
    char *rel = st_sprintf("bronze/%s", table);
    char *path = st_path_join(lake, rel);
    int64_t v = -1;
    st_delta_latest_version(path, &v, NULL);
    if (v < 0) {
        st_delta_schema *sc = NULL;
        TU_OK(st_delta_schema_from_ddl(ddl, &sc, &tu_err));
        TU_OK(st_mkdirs(path, &tu_err));
        TU_OK(st_delta_create(path, sc, NULL, &tu_err));
        st_delta_schema_free(sc);
    }
    st_delta_write_opts wo = {.mode = ST_DELTA_OVERWRITE};
    TU_OK(st_delta_write(eng, path, sql, &wo, NULL, &tu_err));
    st_free(rel);
    st_free(path);
}

static int64_t table_i64(st_engine *eng, const char *lake, const char *rel, const char *sql_fmt)
{
    char *path = st_path_join(lake, rel);
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(eng, path, -1, &s, &tu_err));
    TU_OK(st_delta_register_view(eng, "t", s, &tu_err));
    st_delta_snapshot_free(s);
    int64_t v = 0;
    TU_OK(st_engine_query_i64(eng, sql_fmt, &v, &tu_err));
    st_free(path);
    return v;
}

static const char *orders_sql =
    "SELECT i::BIGINT AS order_id, DATE '2026-01-01' + (i % 5)::INT AS order_date,"
    " ['DE','FR','LU'][1 + i % 3] AS country, (i * 10)::BIGINT AS amount FROM range(30) t(i)";

static void make_project(const char *dir, st_engine *eng)
{
    write_file(dir, "strata.yml",
               "name: goldtest\nlake: ./lake\nstate: ./state.db\n"
               "lineage: {file: ./lineage.ndjson, namespace: test}\n"
               "orchestration: {workers: 2, retries: 0}\n"
               "schedule:\n  gold.by_country: \"0 6 * * *\"\n");
    /* incremental by day; one day at a time in a backfill */
    write_file(dir, "models/gold/daily.sql",
               "/*---\n"
               "materialized: incremental\n"
               "partition: {by: day, column: order_date}\n"
               "tags: [finance]\n"
               "---*/\n"
               "SELECT o.order_date, o.country,\n"
               "  sum(CASE WHEN f.fail_day = o.order_date THEN error('induced failure')::BIGINT\n"
               "      ELSE o.amount END)::BIGINT AS revenue, count(*) AS orders\n"
               "FROM {{ ref('bronze.orders') }} o, {{ ref('bronze.flags') }} f\n"
               "WHERE o.order_date >= {{ partition_start }} AND o.order_date < {{ partition_end }}\n"
               "GROUP BY ALL\n");
    /* full table over the whole incremental model, unqualified ref */
    write_file(dir, "models/gold/by_country.sql",
               "SELECT country, sum(revenue)::BIGINT AS revenue FROM {{ ref('daily') }} GROUP BY country;\n");
    write_file(dir, "models/gold/by_country.yml",
               "tags: [finance, report]\nchecks:\n  - unique: country\n"
               "  - accepted_values: {column: country, values: [DE, FR, LU]}\n");
    char *lake = st_path_join(dir, "lake");
    bronze_write(eng, lake, "orders", "order_id long, order_date date, country string, amount long",
                 orders_sql);
    bronze_write(eng, lake, "flags", "fail_day date", "SELECT NULL::DATE AS fail_day");
    st_free(lake);
}

static void test_models_backfill_plan(void **state)
{
    (void)state;
    char *dir = tu_tempdir("orch-gold");
    st_engine *eng = tu_engine();
    make_project(dir, eng);
    char *lake = st_path_join(dir, "lake");
    st_project *p = NULL;
    TU_OK(st_project_load(dir, &p, &tu_err));
    st_asset_def *daily = st_project_find(p, "gold.daily");
    assert_non_null(daily);
    assert_int_equal(daily->mat, ST_MAT_INCREMENTAL);
    assert_int_equal(daily->part, ST_PART_DAY);
    assert_int_equal(daily->n_deps, 2);
    assert_int_equal(st_project_find(p, "gold.by_country")->n_checks, 2);
    assert_string_equal(st_project_find(p, "gold.by_country")->schedule, "0 6 * * *");
    st_orch *o = NULL;
    TU_OK(st_orch_open(p, &o, &tu_err));

    /* plan before anything ran */
    st_plan *plan = NULL;
    TU_OK(st_orch_plan(o, "+gold.by_country", NULL, st_now_ms(), &plan, &tu_err));
    assert_int_equal(plan->n, 4);
    assert_string_equal(plan->items[3].asset->key, "gold.by_country");
    assert_non_null(strstr(plan->items[3].why, "never materialized"));
    assert_non_null(strstr(plan->items[3].why, "selected explicitly"));
    assert_false(plan->items[0].run);  /* bronze sources are observed */
    st_plan_free(plan);

    /* backfill 5 days with day 3 failing */
    bronze_write(eng, lake, "flags", NULL, "SELECT DATE '2026-01-03' AS fail_day");
    size_t done = 0, skipped = 0, failed = 0;
    st_err e;
    assert_int_not_equal(st_orch_backfill(o, "gold.daily", "2026-01-01", "2026-01-05", NULL, &done,
                                          &skipped, &failed, &e), ST_OK);
    assert_int_equal(done, 2);
    assert_int_equal(failed, 1);
    assert_non_null(strstr(e.msg, "2026-01-03"));
    assert_int_equal(table_i64(eng, lake, "gold/daily", "SELECT count(DISTINCT order_date) FROM t"), 2);
    /* fix the cause and run the same backfill: days 1-2 are skipped */
    bronze_write(eng, lake, "flags", NULL, "SELECT NULL::DATE AS fail_day");
    int64_t v_before = -1;
    char *daily_path = st_path_join(lake, "gold/daily");
    TU_OK(st_delta_latest_version(daily_path, &v_before, &tu_err));
    TU_OK(st_orch_backfill(o, "gold.daily", "2026-01-01", "2026-01-05", NULL, &done, &skipped,
                           &failed, &tu_err));
    assert_int_equal(done, 3);
    assert_int_equal(skipped, 2);
    assert_int_equal(failed, 0);
    int64_t v_after = -1;
    TU_OK(st_delta_latest_version(daily_path, &v_after, &tu_err));
    assert_int_equal(v_after, v_before + 3);   /* one commit per partition */
    /* values equal an independent computation over the source rows */
    int64_t want = 0;
    TU_OK(st_engine_query_i64(eng, "SELECT sum(i * 10) FROM range(30) t(i)", &want, &tu_err));
    assert_int_equal(table_i64(eng, lake, "gold/daily", "SELECT sum(revenue) FROM t"), want);
    assert_int_equal(table_i64(eng, lake, "gold/daily", "SELECT count(*) FROM t"), 15);
    TU_OK(st_engine_query_i64(eng, "SELECT sum(i * 10) FROM range(30) t(i) WHERE i % 5 = 2 AND i % 3 = 1",
                              &want, &tu_err));
    assert_int_equal(table_i64(eng, lake, "gold/daily",
                               "SELECT revenue FROM t WHERE order_date = DATE '2026-01-03' AND country = 'FR'"),
                     want);
    /* rebuilding one partition replaces only it (atomic replace_where) */
    bronze_write(eng, lake, "orders", NULL,
                 "SELECT order_id, order_date, country, CASE WHEN order_date = DATE '2026-01-02'"
                 " THEN amount * 2 ELSE amount END AS amount FROM (SELECT i::BIGINT AS order_id,"
                 " DATE '2026-01-01' + (i % 5)::INT AS order_date, ['DE','FR','LU'][1 + i % 3] AS"
                 " country, (i * 10)::BIGINT AS amount FROM range(30) t(i))");
    st_run_opts ro = {.select = "gold.daily", .partition = "2026-01-02"};
    st_run_summary *s = NULL;
    TU_OK(st_orch_run(o, &ro, &s, &tu_err));
    st_run_summary_free(s);
    TU_OK(st_engine_query_i64(eng, "SELECT sum(i * 10) + sum(CASE WHEN i % 5 = 1 THEN i * 10 ELSE 0 END)"
                                   " FROM range(30) t(i)", &want, &tu_err));
    assert_int_equal(table_i64(eng, lake, "gold/daily", "SELECT sum(revenue) FROM t"), want);

    /* the full-table model over it, and its plan reason afterwards */
    ro = (st_run_opts){.select = "gold.by_country"};
    TU_OK(st_orch_run(o, &ro, &s, &tu_err));
    assert_int_equal(s->n_ok, 1);
    st_run_summary_free(s);
    assert_int_equal(table_i64(eng, lake, "gold/by_country", "SELECT count(*) FROM t"), 3);
    assert_int_equal(table_i64(eng, lake, "gold/by_country", "SELECT sum(revenue) FROM t"), want);
    TU_OK(st_orch_plan(o, "gold.by_country", NULL, st_now_ms(), &plan, &tu_err));
    assert_null(strstr(plan->items[0].why, "newer version"));
    st_plan_free(plan);
    ro = (st_run_opts){.select = "gold.daily", .partition = "2026-01-04"};
    TU_OK(st_orch_run(o, &ro, &s, &tu_err));
    st_run_summary_free(s);
    TU_OK(st_orch_plan(o, "gold.by_country", NULL, st_now_ms(), &plan, &tu_err));
    assert_non_null(strstr(plan->items[0].why, "upstream gold.daily has a newer version"));
    st_plan_free(plan);
    /* a schedule due a day later */
    TU_OK(st_orch_plan(o, "gold.by_country", NULL, st_now_ms() + 86400000LL * 2, &plan, &tu_err));
    assert_non_null(strstr(plan->items[0].why, "schedule due"));
    st_plan_free(plan);

    /* lineage: every START has a COMPLETE or FAIL with the same runId, and the
     * required fields are there */
    char *lin = st_path_join(dir, "lineage.ndjson");
    char *q = st_sprintf("CREATE OR REPLACE TABLE lin AS SELECT json AS j FROM read_ndjson_objects('%s')", lin);
    TU_OK(st_engine_exec(eng, q, &tu_err));
    st_free(q);
    int64_t n = 0;
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM lin", &n, &tu_err));
    assert_true(n >= 10);
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM lin WHERE json_extract_string(j, '$.eventType') NOT IN"
                                   " ('START','COMPLETE','FAIL') OR json_extract_string(j, '$.eventTime') IS NULL OR"
                                   " json_extract_string(j, '$.producer') IS NULL OR json_extract_string(j, '$.schemaURL') NOT LIKE"
                                   " 'https://openlineage.io/spec/%' OR json_extract_string(j, '$.job.namespace') <> 'test'"
                                   " OR length(json_extract_string(j, '$.run.runId')) <> 36",
                              &n, &tu_err));
    assert_int_equal(n, 0);
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM (SELECT json_extract_string(j, '$.run.runId') AS r,"
                                   " count(*) FILTER (json_extract_string(j, '$.eventType') = 'START') AS s,"
                                   " count(*) FILTER (json_extract_string(j, '$.eventType') IN ('COMPLETE','FAIL')) AS e"
                                   " FROM lin GROUP BY r) WHERE s <> 1 OR e <> 1", &n, &tu_err));
    assert_int_equal(n, 0);
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM lin WHERE json_extract_string(j, '$.eventType') = 'FAIL' AND"
                                   " json_extract_string(j, '$.job.name') = 'gold.daily' AND"
                                   " json_extract_string(j, '$.run.facets.errorMessage.message') LIKE '%induced failure%'",
                              &n, &tu_err));
    assert_int_equal(n, 1);
    /* a COMPLETE of by_country: inputs gold.daily with its schema, output with its schema */
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM lin WHERE json_extract_string(j, '$.eventType') = 'COMPLETE' AND"
                                   " json_extract_string(j, '$.job.name') = 'gold.by_country' AND"
                                   " json_extract_string(j, '$.inputs[0].name') LIKE '%/gold/daily' AND"
                                   " json_array_length(json_extract(j, '$.inputs[0].facets.schema.fields')) = 4 AND"
                                   " json_extract_string(j, '$.outputs[0].facets.schema.fields[0].name') = 'country' AND"
                                   " json_extract_string(j, '$.outputs[0].facets.schema.fields[1].type') = 'long'",
                              &n, &tu_err));
    assert_int_equal(n, 1);
    st_free(lin);

    /* scheduler: the first tick records, a tick after 06:00 the next day runs it */
    int64_t t0 = 1767247200000LL;  /* 2026-01-01 06:00 UTC */
    st_run_summary *ts = NULL;
    TU_OK(st_sched_tick(o, t0 + 60000, &ts, &tu_err));
    assert_null(ts);
    TU_OK(st_sched_tick(o, t0 + 3600000, &ts, &tu_err));
    assert_null(ts);   /* nothing fired between 06:01 and 07:00 */
    TU_OK(st_sched_tick(o, t0 + 86400000LL + 30000, &ts, &tu_err));
    assert_non_null(ts);
    assert_int_equal(ts->n_ok, 1);
    assert_string_equal(ts->assets[0].key, "gold.by_country");
    st_run_summary_free(ts);
    /* three days missed with policy skip, then late: nothing runs */
    TU_OK(st_sched_tick(o, t0 + 4 * 86400000LL + 7200000, &ts, &tu_err));
    assert_null(ts);
    st_free(daily_path);
    st_free(lake);
    st_orch_close(o);
    st_project_free(p);
    st_engine_close(eng);
    tu_rmdir(dir);
}

static void test_cli(void **state)
{
    (void)state;
    char *dir = tu_tempdir("orch-cli");
    char *proj = st_path_join(dir, "proj");
    const char *bin = tu_strata_bin();
    char *out = NULL;
    assert_int_equal(tu_run(&out, "'%s' init '%s'", bin, proj), 0);
    st_free(out);
    assert_int_not_equal(tu_run(&out, "'%s' init '%s' 2>&1", bin, proj), 0);  /* exists */
    st_free(out);
    assert_int_equal(tu_run(&out, "'%s' plan --project '%s'", bin, proj), 0);
    assert_non_null(strstr(out, "gold.daily_orders"));
    assert_non_null(strstr(out, "never materialized"));
    st_free(out);
    assert_int_equal(tu_run(&out, "'%s' run --project '%s'", bin, proj), 0);
    assert_non_null(strstr(out, "1 succeeded, 0 failed"));
    char *p = strstr(out, "runs show ");
    assert_non_null(p);
    char run_id[37];
    memcpy(run_id, p + 10, 36);
    run_id[36] = 0;
    st_free(out);
    assert_int_equal(tu_run(&out, "'%s' runs --project '%s'", bin, proj), 0);
    assert_non_null(strstr(out, run_id));
    st_free(out);
    assert_int_equal(tu_run(&out, "'%s' runs show %s --project '%s'", bin, run_id, proj), 0);
    assert_non_null(strstr(out, "gold.daily_orders"));
    assert_non_null(strstr(out, "check passed"));
    st_free(out);
    assert_int_equal(tu_run(&out, "'%s' backfill gold.daily_orders --from 2026-01-01 --to 2026-01-03"
                                  " --project '%s'", bin, proj), 0);
    assert_non_null(strstr(out, "3 partition(s) built, 0 already done"));
    st_free(out);
    assert_int_equal(tu_run(&out, "'%s' sql --lake '%s/lake' \"SELECT count(*) FROM gold.daily_orders"
                                  " WHERE order_date BETWEEN '2026-01-01' AND '2026-01-03'\"", bin, proj), 0);
    assert_non_null(strstr(out, "3"));
    st_free(out);
    assert_int_equal(tu_run(&out, "'%s' runs --asset gold.daily_orders --project '%s'", bin, proj), 0);
    assert_non_null(strstr(out, "2026-01-02"));
    st_free(out);
    assert_int_equal(tu_run(&out, "'%s' run --select nothing.here --project '%s' 2>&1", bin, proj), 1);
    assert_non_null(strstr(out, "nothing matches"));
    st_free(out);
    assert_int_equal(tu_run(&out, "'%s' run --bogus 2>&1", bin), 2);
    st_free(out);
    st_free(proj);
    tu_rmdir(dir);
}

/* Reloads the project folder after its files changed. */
static void reopen(const char *dir, st_project **p, st_orch **o)
{
    st_orch_close(*o);
    st_project_free(*p);
    *p = NULL;
    TU_OK(st_project_load(dir, p, &tu_err));
    TU_OK(st_orch_open(*p, o, &tu_err));
}

/* A relationships check whose target the model does not read: the DAG makes
 * the target an upstream (built first, its failure stops the check's table),
 * the check mounts it, an orphan fails the error check and leaves no table,
 * and the fixed target lets the same run pass. */
static void test_relationships_target_not_an_input(void **state)
{
    (void)state;
    char *dir = tu_tempdir("orch-rel");
    st_engine *eng = tu_engine();
    write_file(dir, "strata.yml", "name: reltest\nlake: ./lake\nstate: ./state.db\n"
                                  "orchestration: {workers: 1, retries: 0}\n");
    write_file(dir, "models/gold/countries.sql", "SELECT * FROM (VALUES ('DE'), ('FR')) t(code)\n");
    write_file(dir, "models/gold/by_country.sql",
               "SELECT country, sum(amount)::BIGINT AS amount FROM {{ ref('bronze.orders') }}"
               " GROUP BY country\n");
    write_file(dir, "models/gold/by_country.yml",
               "checks:\n  - relationships: {column: country, to: gold.countries, field: code}\n");
    char *lake = st_path_join(dir, "lake");
    bronze_write(eng, lake, "orders", "order_id long, order_date date, country string, amount long",
                 orders_sql);
    st_project *p = NULL;
    TU_OK(st_project_load(dir, &p, &tu_err));
    st_orch *o = NULL;
    TU_OK(st_orch_open(p, &o, &tu_err));
    st_plan *plan = NULL;
    TU_OK(st_orch_plan(o, "+gold.by_country", NULL, st_now_ms(), &plan, &tu_err));
    assert_int_equal(plan->n, 3);
    bool countries_first = false;
    for (size_t i = 0; i < plan->n; i++) {
        if (!strcmp(plan->items[i].asset->key, "gold.countries"))
            countries_first = true;
        if (!strcmp(plan->items[i].asset->key, "gold.by_country"))
            assert_true(countries_first);
    }
    st_plan_free(plan);

    /* LU has no country row: the error check fails, by_country gets no table */
    st_run_opts ro = {.select = "+gold.by_country"};
    st_run_summary *s = NULL;
    st_err e;
    assert_int_not_equal(st_orch_run(o, &ro, &s, &e), ST_OK);
    assert_non_null(s);
    assert_int_equal(s->n_failed, 1);
    bool saw = false;
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->assets[i].key, "gold.by_country")) {
            saw = true;
            assert_int_equal(s->assets[i].status, ST_AS_FAILED);
            assert_non_null(strstr(s->assets[i].error, "relationships"));
        }
    assert_true(saw);
    st_run_summary_free(s);
    char *bc = st_path_join(lake, "gold/by_country");
    int64_t v = -1;
    st_delta_latest_version(bc, &v, NULL);
    assert_true(v < 0);

    /* the target gains LU: the same selection passes */
    write_file(dir, "models/gold/countries.sql",
               "SELECT * FROM (VALUES ('DE'), ('FR'), ('LU')) t(code)\n");
    reopen(dir, &p, &o);
    TU_OK(st_orch_run(o, &ro, &s, &tu_err));
    assert_int_equal(s->n_failed, 0);
    st_run_summary_free(s);
    assert_int_equal(table_i64(eng, lake, "gold/by_country", "SELECT count(*) FROM t"), 3);

    /* a target nobody declares is refused when the DAG is built */
    write_file(dir, "models/gold/by_country.yml",
               "checks:\n  - relationships: {column: country, to: gold.nowhere, field: code}\n");
    st_orch_close(o);
    st_project_free(p);
    p = NULL;
    TU_OK(st_project_load(dir, &p, &tu_err));
    assert_int_not_equal(st_orch_open(p, &o, &e), ST_OK);
    assert_non_null(strstr(e.msg, "gold.nowhere"));
    assert_non_null(strstr(e.msg, "by_country.yml"));
    st_project_free(p);
    st_free(bc);
    st_free(lake);
    st_engine_close(eng);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models_backfill_plan),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_relationships_target_not_an_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
