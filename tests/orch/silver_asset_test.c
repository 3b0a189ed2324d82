/*
 * silver_asset_test.c - silver assets through the orchestrator: a project
 * with a silver entity and a silver fact over bronze tables made here;
 * `st_orch_run` of "+silver.trades" runs the entity (st_silver_run) before
 * the fact (st_silver_fact_run, linked to it), and a rerun is a no-op;
 * `strata erase --subject` retires the subject's silver rows too.
 */
#include "testutil.h"

#include "strata/delta.h"
#include "strata/orch.h"

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

static void bronze(st_engine *eng, const char *lake, const char *table, const char *ddl,
                   const char *sql)
{
    char *path = st_sprintf("%s/bronze/%s", lake, table);
    st_delta_schema *sc = NULL;
    TU_OK(st_delta_schema_from_ddl(ddl, &sc, &tu_err));
    TU_OK(st_mkdirs(path, &tu_err));
    TU_OK(st_delta_create(path, sc, NULL, &tu_err));
    st_delta_schema_free(sc);
    st_delta_write_opts wo = {.mode = ST_DELTA_APPEND};
    TU_OK(st_delta_write(eng, path, sql, &wo, NULL, &tu_err));
    st_free(path);
}

static int64_t count_rows(st_engine *eng, const char *lake, const char *rel, const char *where)
{
    char *path = st_path_join(lake, rel);
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(eng, path, -1, &s, &tu_err));
    TU_OK(st_delta_register_view(eng, "t", s, &tu_err));
    st_delta_snapshot_free(s);
    char *q = st_sprintf("SELECT count(*) FROM t WHERE %s", where);
    int64_t n = -1;
    TU_OK(st_engine_query_i64(eng, q, &n, &tu_err));
    st_free(q);
    st_free(path);
    return n;
}

static const st_asset_result *result_of(const st_run_summary *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->assets[i].key, key))
            return &s->assets[i];
    fail_msg("asset %s not in the run", key);
    return NULL;
}

static void test_silver_assets(void **state)
{
    (void)state;
    st_engine *eng = tu_engine();
    char *dir = tu_tempdir("orchsilver");
    char *lake = st_path_join(dir, "lake");
    write_file(dir, "strata.yml", "name: silvertest\nlake: ./lake\nstate: ./state.db\n");
    write_file(dir, "models/silver/client.yml",
               "from: bronze.clients\nkey: [client_id]\ntrack: [city]\nsequence: ts\n");
    write_file(dir, "models/silver/trades.yml",
               "kind: fact\nfrom: bronze.trades\ntime: ts\ncountry: country\n"
               "link: {dimension: client, on: {client_id: client_id}}\n");
    bronze(eng, lake, "clients", "client_id long, city string, ts long",
           "SELECT * FROM (VALUES (7::BIGINT, 'Berlin', 10::BIGINT), (7, 'Bonn', 100), "
           "(8, 'Paris', 10)) v(client_id, city, ts)");
    bronze(eng, lake, "trades", "trade_id long, client_id long, country string, ts long",
           "SELECT * FROM (VALUES (1::BIGINT, 7::BIGINT, 'DE', 50::BIGINT), (2, 7, 'DE', 150), "
           "(3, 8, 'XX', 20)) v(trade_id, client_id, country, ts)");

    st_project *p = NULL;
    TU_OK(st_project_load(dir, &p, &tu_err));
    st_asset_def *fa = st_project_find(p, "silver.trades");
    assert_non_null(fa);
    bool dep_on_dim = false;
    for (size_t i = 0; i < fa->n_deps; i++)
        dep_on_dim = dep_on_dim || !strcmp(fa->deps[i], "silver.client");
    assert_true(dep_on_dim);
    st_orch *o = NULL;
    TU_OK(st_orch_open(p, &o, &tu_err));
    st_run_opts ro = {.select = "+silver.trades"};
    st_run_summary *sum = NULL;
    st_rc rc = st_orch_run(o, &ro, &sum, &tu_err);
    assert_non_null(sum);
    for (size_t i = 0; i < sum->n; i++)
        if (sum->assets[i].error)
            print_message("%s: %s\n", sum->assets[i].key, sum->assets[i].error);
    TU_OK(rc);
    const st_asset_result *rd = result_of(sum, "silver.client");
    const st_asset_result *rf = result_of(sum, "silver.trades");
    assert_int_equal(rd->status, ST_AS_OK);
    assert_int_equal(rf->status, ST_AS_OK);
    assert_int_equal(rd->rows, 3);       /* two versions of 7, one of 8 */
    assert_int_equal(rf->rows, 2);       /* 'XX' is not a country */
    assert_true(rd->version >= 0);
    /* the dimension ran first: the fact found both of 7's versions */
    size_t i_d = (size_t)(rd - sum->assets), i_f = (size_t)(rf - sum->assets);
    assert_true(i_d < i_f);
    st_run_summary_free(sum);
    assert_int_equal(count_rows(eng, lake, "silver/client", "client_id = 7"), 2);
    assert_int_equal(count_rows(eng, lake, "silver/client", "_valid_to IS NULL"), 2);
    assert_int_equal(count_rows(eng, lake, "silver/trades", "true"), 2);
    assert_int_equal(count_rows(eng, lake, "silver/trades__quarantine", "true"), 1);

    /* nothing new in bronze: both succeed without writing */
    sum = NULL;
    TU_OK(st_orch_run(o, &ro, &sum, &tu_err));
    assert_int_equal(result_of(sum, "silver.client")->status, ST_AS_OK);
    assert_int_equal(result_of(sum, "silver.client")->rows, 0);
    assert_int_equal(result_of(sum, "silver.trades")->rows, 0);
    st_run_summary_free(sum);
    assert_int_equal(count_rows(eng, lake, "silver/trades", "true"), 2);

    st_orch_close(o);
    st_project_free(p);
    st_engine_close(eng);
    st_free(lake);
    tu_rmdir(dir);
}

static void test_erase_reaches_silver(void **state)
{
    (void)state;
    st_engine *eng = tu_engine();
    char *dir = tu_tempdir("orcherase");
    char *lake = st_path_join(dir, "lake");
    write_file(dir, "strata.yml", "name: erasetest\nlake: ./lake\nstate: ./state.db\n");
    write_file(dir, "models/silver/client.yml",
               "from: bronze.clients\nkey: [client_id]\ntrack: [city]\n"
               "update_in_place: [subject_id]\nsequence: ts\n");
    write_file(dir, "models/silver/trades.yml",
               "kind: fact\nfrom: bronze.trades\ntime: ts\n"
               "link: {dimension: client, on: {client_id: client_id}}\n");
    bronze(eng, lake, "clients", "client_id long, subject_id string, city string, ts long",
           "SELECT * FROM (VALUES (7::BIGINT, 'u7', 'Berlin', 10::BIGINT), (7, 'u7', 'Bonn', 100), "
           "(8, 'u8', 'Paris', 10)) v(client_id, subject_id, city, ts)");
    bronze(eng, lake, "trades", "trade_id long, client_id long, subject_id string, ts long",
           "SELECT * FROM (VALUES (1::BIGINT, 7::BIGINT, 'u7', 50::BIGINT), (2, 7, 'u7', 150), "
           "(3, 8, 'u8', 20)) v(trade_id, client_id, subject_id, ts)");
    /* through the CLI this time: `strata run` selects silver assets */
    char *out = NULL;
    int code = tu_run(&out, "'%s' run silver.client silver.trades --project '%s' 2>&1",
                      tu_strata_bin(), dir);
    if (code != 0)
        fail_msg("strata run: exit %d: %s", code, out ? out : "");
    st_free(out);
    assert_int_equal(count_rows(eng, lake, "silver/client", "subject_id = 'u7'"), 2);
    assert_int_equal(count_rows(eng, lake, "silver/trades", "subject_id = 'u7'"), 2);

    code = tu_run(&out, "'%s' erase --subject u7 --project '%s' 2>&1", tu_strata_bin(), dir);
    if (code != 0)
        fail_msg("strata erase: exit %d: %s", code, out ? out : "");
    st_free(out);
    /* every version of the subject is gone from silver; others stay */
    assert_int_equal(count_rows(eng, lake, "silver/client", "subject_id = 'u7'"), 0);
    assert_int_equal(count_rows(eng, lake, "silver/client", "subject_id = 'u8'"), 1);
    assert_int_equal(count_rows(eng, lake, "silver/trades", "subject_id = 'u7'"), 0);
    assert_int_equal(count_rows(eng, lake, "silver/trades", "subject_id = 'u8'"), 1);
    assert_int_equal(count_rows(eng, lake, "bronze/clients", "subject_id = 'u7'"), 0);
    /* the silver table still has its data files: rows were retired by DVs */
    char *sp = st_path_join(lake, "silver/client");
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(eng, sp, -1, &s, &tu_err));
    bool any_dv = false;
    for (size_t i = 0; i < s->n_files; i++)
        any_dv = any_dv || s->files[i]->has_dv;
    assert_true(any_dv);
    st_delta_snapshot_free(s);
    st_free(sp);
    st_engine_close(eng);
    st_free(lake);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_silver_assets),
        cmocka_unit_test(test_erase_reaches_silver),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
