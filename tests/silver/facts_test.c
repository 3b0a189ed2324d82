/*
 * facts_test.c - silver facts: ISO country and currency checks, amounts as
 * decimals, the link to the dimension version valid at the fact's time
 * (ASOF), quarantine with reasons, incremental reruns, config errors.
 */
#include "testutil.h"

#include "strata/delta.h"
#include "strata/silver.h"

#include <string.h>

static void bronze(st_engine *eng, const char *lake, const char *table, const char *ddl,
                   const char *sql)
{
    char *path = st_sprintf("%s/bronze/%s", lake, table);
    int64_t v = -1;
    if (st_delta_latest_version(path, &v, NULL) != ST_OK || v < 0) {
        st_delta_schema *s = NULL;
        TU_OK(st_delta_schema_from_ddl(ddl, &s, &tu_err));
        TU_OK(st_mkdirs(path, &tu_err));
        TU_OK(st_delta_create(path, s, NULL, &tu_err));
        st_delta_schema_free(s);
    }
    st_delta_write_opts o = {0};
    o.mode = ST_DELTA_APPEND;
    TU_OK(st_delta_write(eng, path, sql, &o, NULL, &tu_err));
    st_free(path);
}

static void *parse(const char *text, bool fact)
{
    st_cfg_doc *doc = NULL;
    TU_OK(st_cfg_load_string("t.yml", text, strlen(text), &doc, &tu_err));
    void *out = NULL;
    if (fact)
        TU_OK(st_silver_fact_parse(st_cfg_root(doc), "trade", (st_silver_fact **)&out, &tu_err));
    else
        TU_OK(st_silver_entity_parse(st_cfg_root(doc), "client", (st_silver_entity **)&out,
                                     &tu_err));
    st_cfg_doc_free(doc);
    return out;
}

static void test_iso_lists(void **state)
{
    (void)state;
    assert_true(st_silver_iso_country("DE"));
    assert_true(st_silver_iso_country("ZW"));
    assert_true(st_silver_iso_country("AD"));
    assert_false(st_silver_iso_country("XX"));
    assert_false(st_silver_iso_country("de"));
    assert_false(st_silver_iso_country("DEU"));
    assert_false(st_silver_iso_country(""));
    assert_true(st_silver_iso_currency("EUR"));
    assert_true(st_silver_iso_currency("AED"));
    assert_true(st_silver_iso_currency("ZWL"));
    assert_false(st_silver_iso_currency("EUX"));
    assert_false(st_silver_iso_currency("XXX"));
    assert_false(st_silver_iso_currency("EU"));
}

static void test_facts(void **state)
{
    (void)state;
    st_engine *eng = tu_engine();
    char *lake = tu_tempdir("silverfacts");
    /* the dimension: client 7 moves from Berlin to Paris at t=100 */
    bronze(eng, lake, "clients", "client_id long, city string, ts long",
           "SELECT 7::BIGINT AS client_id, 'Berlin' AS city, 10::BIGINT AS ts UNION ALL "
           "SELECT 7, 'Paris', 100");
    st_silver_entity *dim = parse("from: bronze.clients\nkey: [client_id]\ntrack: [city]\n"
                                  "sequence: ts\n", false);
    TU_OK(st_silver_run(eng, lake, dim, NULL, &tu_err));

    st_silver_fact *f = parse("kind: fact\nfrom: bronze.trades\ntime: ts\ncountry: country\n"
                              "currency: ccy\namounts: {amount: \"DECIMAL(18,2)\"}\n"
                              "link: {dimension: client, on: {client_id: client_id}}\n",
                              true);
    const char *ddl = "trade_id long, client_id long, country string, ccy string, amount string, "
                      "ts long";
    bronze(eng, lake, "trades", ddl,
           "SELECT * FROM (VALUES (1, 7, 'de', 'eur', '10.50', 50), (2, 7, 'FR', 'EUR', '7', 150), "
           "(3, 7, 'XX', 'EUR', '1', 150), (4, 7, 'DE', 'EUX', '1', 150), (5, 7, 'DE', 'EUR', "
           "'abc', 150), (6, 7, 'DE', 'EUR', '1', 5), (7, 99, 'DE', 'EUR', '1', 150)) v(trade_id, "
           "client_id, country, ccy, amount, ts)");
    st_silver_fact_stats st;
    TU_OK(st_silver_fact_run(eng, lake, f, &st, &tu_err));
    assert_int_equal(st.rows_in, 7);
    assert_int_equal(st.rows_ok, 2);
    assert_int_equal(st.rows_quarantined, 5);

    char *silver = st_sprintf("%s/silver/trade", lake);
    char *quar = st_sprintf("%s/silver/trade__quarantine", lake);
    char *dimp = st_sprintf("%s/silver/client", lake);
    TU_OK(st_silver_register_views(eng, dimp, "client", &tu_err));
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(eng, silver, -1, &s, &tu_err));
    TU_OK(st_delta_register_view(eng, "trade", s, &tu_err));
    st_delta_snapshot_free(s);
    TU_OK(st_delta_snapshot_load(eng, quar, -1, &s, &tu_err));
    TU_OK(st_delta_register_view(eng, "quar", s, &tu_err));
    st_delta_snapshot_free(s);

    /* conformed: upper-cased codes, decimal amounts; linked to the version
     * valid at the fact's time */
    char *got = NULL;
    TU_OK(st_engine_query_str(eng,
                              "SELECT string_agg(t.trade_id || ':' || t.country || ':' || t.ccy || "
                              "':' || t.amount || ':' || c.city, ' ' ORDER BY t.trade_id) FROM "
                              "trade t JOIN client_history c ON c._sk = t.client_sk",
                              &got, &tu_err));
    assert_string_equal(got, "1:DE:EUR:10.50:Berlin 2:FR:EUR:7.00:Paris");
    st_free(got);
    TU_OK(st_engine_query_str(eng, "SELECT typeof(amount) FROM trade LIMIT 1", &got, &tu_err));
    assert_string_equal(got, "DECIMAL(18,2)");
    st_free(got);
    /* quarantined rows keep their original values and say why */
    const char *want[][2] = {
        {"3", "country 'XX' is not an ISO 3166-1 alpha-2 code"},
        {"4", "ccy 'EUX' is not an ISO 4217 code"},
        {"5", "amount 'abc' is not a DECIMAL(18,2)"},
        {"6", "no client version valid at 5"},
        {"7", "no client version valid at 150"},
    };
    for (size_t i = 0; i < 5; i++) {
        char *sql = st_sprintf("SELECT _reason FROM quar WHERE trade_id = %s", want[i][0]);
        TU_OK(st_engine_query_str(eng, sql, &got, &tu_err));
        if (!got || !strstr(got, want[i][1]))
            fail_msg("trade %s: reason '%s', want '%s'", want[i][0], got ? got : "", want[i][1]);
        st_free(got);
        st_free(sql);
    }
    TU_OK(st_engine_query_str(eng, "SELECT amount FROM quar WHERE trade_id = 5", &got, &tu_err));
    assert_string_equal(got, "abc");
    st_free(got);

    /* rerun: nothing new */
    TU_OK(st_silver_fact_run(eng, lake, f, &st, &tu_err));
    assert_true(st.skipped);
    /* a new bronze batch: only its rows are read */
    bronze(eng, lake, "trades", ddl,
           "SELECT 8::BIGINT AS trade_id, 7::BIGINT AS client_id, 'IT' AS country, 'CHF' AS ccy, "
           "'3.333' AS amount, 200::BIGINT AS ts");
    TU_OK(st_silver_fact_run(eng, lake, f, &st, &tu_err));
    assert_int_equal(st.rows_in, 1);
    assert_int_equal(st.rows_ok, 1);

    st_free(silver);
    st_free(quar);
    st_free(dimp);
    st_silver_fact_free(f);
    st_silver_entity_free(dim);
    tu_rmdir(lake);
    st_engine_close(eng);
}

static void test_fact_config(void **state)
{
    (void)state;
    const char *bad[] = {
        "kind: fact\ntime: ts\n",                                          /* no from */
        "kind: fact\nfrom: b.x\n",                                         /* no time */
        "kind: fact\nfrom: b.x\ntime: t\nbogus: 1\n",                      /* unknown key */
        "kind: fact\nfrom: b.x\ntime: t\nlink: {dimension: c}\n",          /* link without on */
        "kind: fact\nfrom: b.x\ntime: t\namounts: [a]\n",                  /* amounts not a map */
        NULL};
    for (int i = 0; bad[i]; i++) {
        st_cfg_doc *doc = NULL;
        TU_OK(st_cfg_load_string("f.yml", bad[i], strlen(bad[i]), &doc, &tu_err));
        st_silver_fact *f = NULL;
        if (st_silver_fact_parse(st_cfg_root(doc), "f", &f, &tu_err) == ST_OK)
            fail_msg("case %d accepted", i);
        assert_non_null(strstr(tu_err.msg, "f.yml:"));
        st_cfg_doc_free(doc);
    }
    /* a fact declaration is not a dimension */
    const char *y = "kind: fact\nfrom: b.x\ntime: t\n";
    st_cfg_doc *doc = NULL;
    TU_OK(st_cfg_load_string("f.yml", y, strlen(y), &doc, &tu_err));
    st_silver_entity *e = NULL;
    assert_int_equal(st_silver_entity_parse(st_cfg_root(doc), "f", &e, &tu_err), ST_ERR_INVALID);
    st_cfg_doc_free(doc);
}

static void test_fact_cli(void **state)
{
    (void)state;
    st_engine *eng = tu_engine();
    char *proj = tu_tempdir("silverfactcli");
    char *lake = st_sprintf("%s/lake", proj);
    char *yml = st_sprintf("%s/strata.yml", proj);
    const char *text = "name: t\nlake: ./lake\nsilver:\n"
                       "  client:\n    from: bronze.clients\n    key: [client_id]\n"
                       "    track: [city]\n    sequence: ts\n"
                       "  trade:\n    kind: fact\n    from: bronze.trades\n    time: ts\n"
                       "    currency: ccy\n"
                       "    link: {dimension: client, on: {client_id: client_id}}\n";
    TU_OK(st_file_write_atomic(yml, text, strlen(text), &tu_err));
    bronze(eng, lake, "clients", "client_id long, city string, ts long",
           "SELECT 7::BIGINT AS client_id, 'Berlin' AS city, 10::BIGINT AS ts");
    bronze(eng, lake, "trades", "trade_id long, client_id long, ccy string, ts long",
           "SELECT * FROM (VALUES (1, 7, 'EUR', 20), (2, 7, 'XYZ', 20)) v(trade_id, client_id, "
           "ccy, ts)");
    char *out = NULL;
    int rc = tu_run(&out, "'%s' silver run client --project '%s' 2>&1", tu_strata_bin(), proj);
    if (rc != 0)
        fail_msg("silver run client: %s", out ? out : "");
    st_free(out);
    rc = tu_run(&out, "'%s' silver run trade --project '%s' 2>&1", tu_strata_bin(), proj);
    if (rc != 0 || !strstr(out, "rows_ok=1 quarantined=1"))
        fail_msg("silver run trade: exit %d: %s", rc, out ? out : "");
    st_free(out);
    rc = tu_run(&out, "'%s' silver run trade --project '%s' 2>&1", tu_strata_bin(), proj);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "up to date"));
    st_free(out);
    st_free(lake);
    st_free(yml);
    tu_rmdir(proj);
    st_engine_close(eng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iso_lists),
        cmocka_unit_test(test_fact_config),
        cmocka_unit_test(test_facts),
        cmocka_unit_test(test_fact_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
