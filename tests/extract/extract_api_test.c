/*
 * extract_api_test.c - the statistics-API connectors (ECB and OECD SDMX-CSV,
 * World Bank v2 JSON, SDMX-ML) against a loopback replay server
 * (tests/util/replay_server.c) serving recorded responses: the real
 * recordings in ../shared/fixtures/ (read in place) and hand-written ones in
 * the documented formats under tests/extract/fixtures/ (see its README).
 * Scripted behaviours: World Bank pagination, 429 with Retry-After, 500 then
 * success, malformed bodies, a timeout; incremental runs by updatedAfter
 * (SDMX) and by date range (World Bank).  Bronze contents are asserted after
 * every run.
 */
#include "replay_server.h"
#include "testutil.h"

#include "strata/delta.h"
#include "strata/extract.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *g_dir;
static tu_replay *g_srv;
static char g_fix[1024];

static char *fix(const char *name)
{
    return st_sprintf("%s/%s", g_fix, name);
}

static char *project(const char *tag, const char *sources_yml)
{
    char *dir = st_sprintf("%s/%s", g_dir, tag);
    st_mkdirs(dir, NULL);
    char *yml = st_sprintf("lake: ./lake\nstate: ./state.db\nsources:\n%s", sources_yml);
    char *path = st_sprintf("%s/strata.yml", dir);
    TU_OK(st_file_write_atomic(path, yml, strlen(yml), &tu_err));
    st_free(yml);
    st_free(path);
    return dir;
}

static st_extract_report *run(const char *proj, const char *sel, st_rc want)
{
    st_extract_opts o = {0};
    o.project_dir = proj;
    st_extract_report *rep = NULL;
    st_rc rc = st_extract_run(&o, sel, &rep, &tu_err);
    if (rc != want)
        fail_msg("extract %s: rc %s, want %s: %s", sel, st_rc_name(rc), st_rc_name(want),
                 tu_err.msg);
    return rep;
}

/* One value (text) of a query over bronze table `target` registered as b. */
static char *bq(const char *proj, const char *target, const char *sql)
{
    char *path = st_sprintf("%s/lake/bronze/%s", proj, target);
    char *out = tu_delta_str(path, "b", sql);
    st_free(path);
    return out ? out : st_strdup("NULL");
}

#define ASSERT_BQ(proj, target, sql, want)                                                   \
    do {                                                                                     \
        char *got_ = bq(proj, target, sql);                                                  \
        if (strcmp(got_, want))                                                              \
            fail_msg("%s: got '%s', want '%s'", sql, got_, want);                            \
        st_free(got_);                                                                       \
    } while (0)

static int64_t version_of(const char *proj, const char *target)
{
    char *path = st_sprintf("%s/lake/bronze/%s", proj, target);
    int64_t v = -1;
    TU_OK(st_delta_latest_version(path, &v, &tu_err));
    st_free(path);
    return v;
}

static void add(const char *match, int status, const char *file, const char *body,
                const char *header, int delay_ms, int times)
{
    char *path = file ? fix(file) : NULL;
    tu_reply r = {.match = match, .status = status, .file = path, .body = body,
                  .header = header, .delay_ms = delay_ms, .times = times};
    tu_replay_add(g_srv, &r);
    st_free(path);
}

#define ECB_SRC(extra)                                                                        \
    "  ecb:\n    kind: ecb\n    url: %s/service\n    retries: 2\n" extra                       \
    "    series: {exr_m: \"EXR/M.USD+GBP.EUR.SP00.A\"}\n"

/* An incremental ECB project: the replay server answers the first run in
 * full, the second with a revision and new periods (updatedAfter), the third
 * with 304.  *yml is OWNED. */
static char *ecb_incremental(const char *tag, char **yml)
{
    tu_replay_reset(g_srv);
    add("updatedAfter=", 200, "ecb_exr_m_csvdata_updated.csv", NULL, NULL, 0, 1);
    add("updatedAfter=", 304, NULL, "", NULL, 0, 0);
    add("/service/data/EXR/M.USD", 200, "ecb_exr_m_csvdata.csv", NULL, NULL, 0, 0);
    *yml = st_sprintf(ECB_SRC("    strategy: incremental\n"), tu_replay_url(g_srv));
    return project(tag, *yml);
}

/* ECB csvdata: first run full, then updatedAfter returns a revision and new
 * periods merged by series key + period, then 304 leaves bronze alone. */
static void test_ecb_incremental(void **state)
{
    (void)state;
    char *yml = NULL;
    char *proj = ecb_incremental("ecb", &yml);
    st_extract_report *rep = run(proj, "ecb", ST_OK);
    assert_int_equal(rep->tables[0].rows_written, 12);
    assert_string_equal(rep->tables[0].target, "bronze.ecb__exr_m");
    st_extract_report_free(rep);
    char *r0 = tu_replay_request(g_srv, 0);
    assert_non_null(strstr(r0, "format=csvdata"));
    assert_null(strstr(r0, "updatedAfter"));
    st_free(r0);
    const char *t = "ecb__exr_m";
    ASSERT_BQ(proj, t, "SELECT count(*) FROM b", "12");
    ASSERT_BQ(proj, t, "SELECT typeof(OBS_VALUE) FROM b LIMIT 1", "DOUBLE");
    ASSERT_BQ(proj, t, "SELECT OBS_VALUE FROM b WHERE CURRENCY = 'USD' AND TIME_PERIOD = '2023-06'",
              "1.084");
    ASSERT_BQ(proj, t, "SELECT OBS_VALUE FROM b WHERE CURRENCY = 'GBP' AND TIME_PERIOD = '2023-01'",
              "0.88287");
    ASSERT_BQ(proj, t, "SELECT TITLE_COMPL FROM b WHERE CURRENCY = 'GBP' LIMIT 1",
              "ECB reference exchange rate, UK pound sterling/Euro, 2:15 pm (C.E.T.)");
    ASSERT_BQ(proj, t, "SELECT count(DISTINCT _batch_id) || ' ' || min(_batch_id) FROM b",
              "1 ecb.exr_m#1");
    int64_t v1 = version_of(proj, t);

    rep = run(proj, "ecb", ST_OK);
    assert_int_equal(rep->tables[0].rows_read, 3);
    st_extract_report_free(rep);
    char *r1 = tu_replay_request(g_srv, 1);
    assert_non_null(strstr(r1, "updatedAfter=20"));   /* the first run's start, UTC */
    st_free(r1);
    ASSERT_BQ(proj, t, "SELECT count(*) FROM b", "14");
    ASSERT_BQ(proj, t, "SELECT OBS_VALUE FROM b WHERE CURRENCY = 'USD' AND TIME_PERIOD = '2023-06'",
              "1.0841");
    ASSERT_BQ(proj, t, "SELECT OBS_VALUE FROM b WHERE CURRENCY = 'GBP' AND TIME_PERIOD = '2023-07'",
              "0.85852");
    ASSERT_BQ(proj, t, "SELECT count(*) FROM (SELECT KEY, TIME_PERIOD FROM b GROUP BY ALL"
                       " HAVING count(*) > 1)", "0");
    int64_t v2 = version_of(proj, t);
    assert_int_equal(v2, v1 + 1);

    /* 304 Not Modified: the run is recorded, bronze untouched */
    rep = run(proj, "ecb", ST_OK);
    assert_int_equal(rep->tables[0].rows_read, 0);
    st_extract_report_free(rep);
    assert_int_equal(version_of(proj, t), v2);
    ASSERT_BQ(proj, t, "SELECT count(*) FROM b", "14");
    assert_int_equal(tu_replay_count(g_srv, NULL), 3);
    st_free(yml);
    st_free(proj);
}

/* Lake table <layer>/<target> is registered as b. */
#define ASSERT_LQ(proj, layer, target, sql, want)                                            \
    TU_ASSERT_PROJECT(proj, layer, target, "b", sql, want)

/* API tables land in raw like database tables (one _run_id partition per
 * run, the response rows as parsed); `strata reprocess` rebuilds bronze
 * from chosen runs, merging incremental runs by the series key and period;
 * agent mode writes the file and a manifest without committing, and
 * `strata import` commits them. */
static void test_api_raw_reprocess_agent(void **state)
{
    (void)state;
    char *yml = NULL;
    char *proj = ecb_incremental("ecb_raw", &yml);
    st_extract_report *rep = run(proj, "ecb", ST_OK);
    int64_t r1 = rep->tables[0].run_id;
    st_extract_report_free(rep);
    rep = run(proj, "ecb", ST_OK);
    int64_t r2 = rep->tables[0].run_id;
    st_extract_report_free(rep);
    rep = run(proj, "ecb", ST_OK);   /* 304: nothing new, no raw partition */
    int64_t r3 = rep->tables[0].run_id;
    st_extract_report_free(rep);
    const char *t = "ecb__exr_m";
    char want[128];
    snprintf(want, sizeof want, "%lld:12 %lld:3", (long long)r1, (long long)r2);
    ASSERT_LQ(proj, "raw", t, "SELECT string_agg(_run_id || ':' || n, ' ' ORDER BY _run_id) FROM"
                              " (SELECT _run_id, count(*) n FROM b GROUP BY 1)", want);
    ASSERT_LQ(proj, "raw", t, "SELECT any_value(typeof(OBS_VALUE)) || ' ' || count(DISTINCT _batch_id)"
                              " FROM b", "DOUBLE 2");
    ASSERT_LQ(proj, "bronze", t, "SELECT count(*) || ' ' || max(OBS_VALUE) FILTER (CURRENCY = 'USD'"
                                 " AND TIME_PERIOD = '2023-06') FROM b", "14 1.0841");

    /* bronze from the first run only: the values before the revision */
    st_extract_opts o = {0};
    o.project_dir = proj;
    rep = NULL;
    TU_OK(st_extract_reprocess(&o, "ecb.exr_m", &r1, 1, &rep, &tu_err));
    assert_int_equal(rep->tables[0].rows_written, 12);
    st_extract_report_free(rep);
    ASSERT_LQ(proj, "bronze", t, "SELECT count(*) || ' ' || max(OBS_VALUE) FILTER (CURRENCY = 'USD'"
                                 " AND TIME_PERIOD = '2023-06') FROM b", "12 1.084");
    /* every run (the empty third one included): merged by key, latest wins */
    int64_t all[] = {r1, r2, r3};
    TU_OK(st_extract_reprocess(&o, "ecb.exr_m", all, 3, &rep, &tu_err));
    assert_int_equal(rep->tables[0].rows_written, 14);
    st_extract_report_free(rep);
    ASSERT_LQ(proj, "bronze", t, "SELECT count(*) || ' ' || max(OBS_VALUE) FILTER (CURRENCY = 'USD'"
                                 " AND TIME_PERIOD = '2023-06') FROM b", "14 1.0841");
    ASSERT_LQ(proj, "bronze", t, "SELECT count(*) FROM (SELECT KEY, TIME_PERIOD FROM b GROUP BY ALL"
                                 " HAVING count(*) > 1)", "0");
    st_free(proj);

    /* agent mode: nothing committed until import */
    proj = project("ecb_agent", yml);
    char *out = st_sprintf("%s/ecb_agent/out", g_dir);
    o.project_dir = proj;
    o.to_dir = out;
    rep = NULL;
    TU_OK(st_extract_run(&o, "ecb", &rep, &tu_err));
    assert_int_equal(rep->tables[0].rows_written, 12);
    assert_int_equal(rep->tables[0].version, -1);
    st_extract_report_free(rep);
    assert_int_equal(version_of(proj, t), -1);
    char *mf = st_sprintf("%s/%s/manifest.json", out, t);
    char *mtext = NULL;
    size_t mlen = 0;
    TU_OK(st_file_read(mf, 1 << 20, &mtext, &mlen, &tu_err));
    assert_non_null(strstr(mtext, "\"strategy\":\"incremental\""));
    assert_non_null(strstr(mtext, "\"TIME_PERIOD\"]"));   /* the key ends with the period */
    st_free(mtext);
    st_free(mf);
    o.to_dir = NULL;
    rep = NULL;
    TU_OK(st_extract_import(&o, out, &rep, &tu_err));
    assert_int_equal(rep->tables[0].rows_written, 12);
    st_extract_report_free(rep);
    ASSERT_LQ(proj, "bronze", t, "SELECT count(*) || ' ' || max(OBS_VALUE) FILTER (CURRENCY = 'USD'"
                                 " AND TIME_PERIOD = '2023-06') FROM b", "12 1.084");
    st_free(out);
    st_free(yml);
    st_free(proj);
}

/* OECD SDMX-CSV 2.0 with a missing observation; a 500 then success. */
static void test_oecd_500_then_success(void **state)
{
    (void)state;
    tu_replay_reset(g_srv);
    add("/public/rest/data/OECD.SDD.STES", 200, "oecd_cli_csvfile.csv", NULL, NULL, 0, 0);
    char *yml = st_sprintf("  oecd:\n    kind: oecd\n    url: %s/public/rest\n    retries: 2\n"
                           "    series:\n      cli: {path: \"OECD.SDD.STES,DSD_STES@DF_CLI,4.1/DEU+FRA.M.LI...AA...H\"}\n",
                           tu_replay_url(g_srv));
    char *proj = project("oecd", yml);
    st_extract_report_free(run(proj, "oecd", ST_OK));
    const char *t = "oecd__cli";
    ASSERT_BQ(proj, t, "SELECT count(*) FROM b", "6");
    ASSERT_BQ(proj, t, "SELECT OBS_VALUE FROM b WHERE REF_AREA = 'DEU' AND TIME_PERIOD = '2024-01'",
              "99.21523");
    ASSERT_BQ(proj, t, "SELECT OBS_VALUE FROM b WHERE REF_AREA = 'FRA' AND TIME_PERIOD = '2024-02'",
              "100.1123");
    ASSERT_BQ(proj, t, "SELECT count(*) || ' ' || any_value(OBS_STATUS) FROM b WHERE OBS_VALUE IS NULL",
              "1 M");
    ASSERT_BQ(proj, t, "SELECT STRUCTURE_ID FROM b LIMIT 1", "OECD.SDD.STES:DSD_STES@DF_CLI(4.1)");
    char *r0 = tu_replay_request(g_srv, 0);
    assert_non_null(strstr(r0, "format=csvfile"));
    st_free(r0);

    tu_replay_reset(g_srv);
    add(NULL, 500, NULL, "upstream error", NULL, 0, 1);
    add("/public/rest/data/OECD.SDD.STES", 200, "oecd_cli_csvfile.csv", NULL, NULL, 0, 0);
    int64_t v = version_of(proj, t);
    st_extract_report_free(run(proj, "oecd", ST_OK));
    assert_int_equal(tu_replay_count(g_srv, NULL), 2);
    assert_int_equal(version_of(proj, t), v + 1);
    ASSERT_BQ(proj, t, "SELECT count(*) FROM b", "6");   /* full: replaced, not appended */
    st_free(yml);
    st_free(proj);
}

/* World Bank: every page is fetched; a second run asks for the range from
 * the latest period seen and merges by indicator, country and date. */
static void test_worldbank_pages_incremental(void **state)
{
    (void)state;
    tu_replay_reset(g_srv);
    add("date=2024:9999", 200, "wb_gdp_since2024.json", NULL, NULL, 0, 0);
    add("&page=1", 200, "wb_gdp_page1.json", NULL, NULL, 0, 0);
    add("&page=2", 200, "wb_gdp_page2.json", NULL, NULL, 0, 0);
    char *yml = st_sprintf("  wb:\n    kind: worldbank\n    url: %s\n    strategy: incremental\n"
                           "    indicators: {gdp: \"country/DEU;FRA/indicator/NY.GDP.MKTP.CD\"}\n",
                           tu_replay_url(g_srv));
    char *proj = project("wb", yml);
    st_extract_report *rep = run(proj, "wb", ST_OK);
    assert_int_equal(rep->tables[0].rows_written, 6);
    st_extract_report_free(rep);
    assert_int_equal(tu_replay_count(g_srv, "&page=1"), 1);
    assert_int_equal(tu_replay_count(g_srv, "&page=2"), 1);
    assert_int_equal(tu_replay_count(g_srv, "format=json"), 2);
    const char *t = "wb__gdp";
    ASSERT_BQ(proj, t, "SELECT count(*) FROM b", "6");
    ASSERT_BQ(proj, t, "SELECT value = 4525703903627.53 FROM b WHERE country_id = 'DE' AND date = '2023'",
              "true");
    ASSERT_BQ(proj, t, "SELECT CAST(value AS DECIMAL(18,2)) FROM b WHERE country_id = 'FR' AND date = '2022'",
              "2796302210398.63");
    ASSERT_BQ(proj, t, "SELECT count(*) FROM b WHERE value IS NULL AND country_id = 'FR' AND date = '2024'",
              "1");
    ASSERT_BQ(proj, t, "SELECT countryiso3code || ' ' || indicator FROM b WHERE country_id = 'DE' LIMIT 1",
              "DEU GDP (current US$)");

    rep = run(proj, "wb", ST_OK);
    assert_int_equal(rep->tables[0].rows_read, 2);
    st_extract_report_free(rep);
    assert_int_equal(tu_replay_count(g_srv, "date=2024:9999"), 1);
    ASSERT_BQ(proj, t, "SELECT count(*) FROM b", "7");
    ASSERT_BQ(proj, t, "SELECT CAST(value AS DECIMAL(18,2)) FROM b WHERE country_id = 'FR' AND date = '2024'",
              "3162079365700.05");
    ASSERT_BQ(proj, t, "SELECT CAST(value AS DECIMAL(18,2)) FROM b WHERE country_id = 'DE' AND date = '2024'",
              "4659929336890.99");
    ASSERT_BQ(proj, t, "SELECT count(*) FROM (SELECT country_id, date FROM b GROUP BY ALL HAVING count(*) > 1)",
              "0");
    st_free(yml);
    st_free(proj);
}

/* 429 with Retry-After: 1: the client waits at least that long, then retries. */
static void test_429_retry_after(void **state)
{
    (void)state;
    tu_replay_reset(g_srv);
    add(NULL, 429, NULL, "slow down", "Retry-After: 1", 0, 1);
    add("/service/data/EXR/M.USD", 200, "ecb_exr_m_csvdata.csv", NULL, NULL, 0, 0);
    char *yml = st_sprintf(ECB_SRC(""), tu_replay_url(g_srv));
    char *proj = project("ecb429", yml);
    int64_t t0 = st_mono_ns();
    st_extract_report_free(run(proj, "ecb", ST_OK));
    int64_t ms = (st_mono_ns() - t0) / 1000000;
    assert_true(ms >= 950);
    assert_int_equal(tu_replay_count(g_srv, NULL), 2);
    ASSERT_BQ(proj, "ecb__exr_m", "SELECT count(*) FROM b", "12");

    /* out of retries: the error names the source and the status, nothing landed */
    tu_replay_reset(g_srv);
    add(NULL, 429, NULL, "slow down", "Retry-After: 0", 0, 0);
    int64_t v = version_of(proj, "ecb__exr_m");
    st_extract_report *rep = run(proj, "ecb", ST_ERR_REMOTE);
    assert_non_null(strstr(rep->tables[0].error, "ecb.exr_m"));
    assert_non_null(strstr(rep->tables[0].error, "HTTP 429"));
    st_extract_report_free(rep);
    assert_int_equal(tu_replay_count(g_srv, NULL), 3);   /* 1 + retries: 2 */
    assert_int_equal(version_of(proj, "ecb__exr_m"), v);
    st_free(yml);
    st_free(proj);
}

static void test_malformed(void **state)
{
    (void)state;
    /* World Bank: page 2 truncated; the error names source, page and problem;
     * page 1 is not committed on its own */
    tu_replay_reset(g_srv);
    add("&page=1", 200, "wb_gdp_page1.json", NULL, NULL, 0, 0);
    add("&page=2", 200, NULL, "[{\"page\":2,\"pages\":2},[{\"indicator\":{\"id\":", NULL, 0, 0);
    char *yml = st_sprintf("  wb:\n    kind: worldbank\n    url: %s\n"
                           "    indicators: {gdp: \"country/DEU;FRA/indicator/NY.GDP.MKTP.CD\"}\n"
                           "  ecb:\n    kind: ecb\n    url: %s/service\n"
                           "    series: {exr_m: \"EXR/M.USD+GBP.EUR.SP00.A\"}\n",
                           tu_replay_url(g_srv), tu_replay_url(g_srv));
    char *proj = project("bad", yml);
    st_extract_report *rep = run(proj, "wb", ST_ERR_PARSE);
    const char *e = rep->tables[0].error;
    assert_non_null(strstr(e, "wb.gdp"));
    assert_non_null(strstr(e, "page 2"));
    assert_non_null(strstr(e, "World Bank JSON"));
    assert_int_equal(rep->tables[0].version, -1);
    st_extract_report_free(rep);
    assert_int_equal(version_of(proj, "wb__gdp"), -1);

    /* ECB: a good run, then a CSV row with too many fields: bronze unchanged */
    tu_replay_reset(g_srv);
    add("/service/data/EXR", 200, "ecb_exr_m_csvdata.csv", NULL, NULL, 0, 1);
    add("/service/data/EXR", 200, NULL,
        "KEY,FREQ,TIME_PERIOD,OBS_VALUE\r\nEXR.M.USD,M,2023-01,1.07\r\nEXR.M.USD,M,2023-02,1,07\r\n",
        NULL, 0, 0);
    st_extract_report_free(run(proj, "ecb", ST_OK));
    int64_t v = version_of(proj, "ecb__exr_m");
    rep = run(proj, "ecb", ST_ERR_PARSE);
    e = rep->tables[0].error;
    assert_non_null(strstr(e, "ecb.exr_m"));
    assert_non_null(strstr(e, "SDMX-CSV line 3"));
    st_extract_report_free(rep);
    assert_int_equal(version_of(proj, "ecb__exr_m"), v);
    ASSERT_BQ(proj, "ecb__exr_m", "SELECT count(*) FROM b", "12");

    /* an HTML error page with status 200 */
    tu_replay_reset(g_srv);
    add(NULL, 200, NULL, "<html><body>Service unavailable</body></html>", NULL, 0, 0);
    rep = run(proj, "ecb", ST_ERR_PARSE);
    assert_non_null(strstr(rep->tables[0].error, "no DataSet"));
    st_extract_report_free(rep);
    assert_int_equal(version_of(proj, "ecb__exr_m"), v);
    st_free(yml);
    st_free(proj);
}

static void test_timeout(void **state)
{
    (void)state;
    tu_replay_reset(g_srv);
    add(NULL, 200, "ecb_exr_m_csvdata.csv", NULL, NULL, 2500, 1);
    add("/service/data/EXR", 200, "ecb_exr_m_csvdata.csv", NULL, NULL, 0, 0);
    char *yml = st_sprintf("  ecb:\n    kind: ecb\n    url: %s/service\n    read_timeout: 1\n"
                           "    retries: 0\n    series: {exr_m: \"EXR/M.USD+GBP.EUR.SP00.A\"}\n"
                           "  ecb2:\n    kind: ecb\n    url: %s/service\n    read_timeout: 1\n"
                           "    retries: 1\n    series: {exr_m: \"EXR/M.USD+GBP.EUR.SP00.A\"}\n",
                           tu_replay_url(g_srv), tu_replay_url(g_srv));
    char *proj = project("timeout", yml);
    int64_t t0 = st_mono_ns();
    st_extract_report *rep = run(proj, "ecb", ST_ERR_REMOTE);
    int64_t ms = (st_mono_ns() - t0) / 1000000;
    assert_true(ms < 2400);   /* gave up at the timeout, did not wait for the body */
    assert_non_null(strstr(rep->tables[0].error, "Timeout"));
    assert_non_null(strstr(rep->tables[0].error, "ecb.exr_m"));
    st_extract_report_free(rep);
    assert_int_equal(version_of(proj, "ecb__exr_m"), -1);
    /* with a retry, a timed-out request is repeated and the run lands */
    tu_replay_reset(g_srv);
    add(NULL, 200, "ecb_exr_m_csvdata.csv", NULL, NULL, 2500, 1);
    add("/service/data/EXR", 200, "ecb_exr_m_csvdata.csv", NULL, NULL, 0, 0);
    st_extract_report_free(run(proj, "ecb2", ST_OK));
    assert_int_equal(tu_replay_count(g_srv, NULL), 2);
    ASSERT_BQ(proj, "ecb2__exr_m", "SELECT count(*) FROM b", "12");
    st_free(yml);
    st_free(proj);
}

/* The real recordings in ../shared/fixtures, served as they are. */
static void test_shared_recordings(void **state)
{
    (void)state;
    const char *sh = tu_shared_dir();
    char *ecb = sh ? st_sprintf("%s/fixtures/ecb_EXR_M.USD.EUR.SP00.A_sdmxml21-generic_2020-01-16.xml", sh) : NULL;
    char *wb = sh ? st_sprintf("%s/fixtures/worldbank_v2_all_NY.GDP.PCAP.CD_econgraph.json", sh) : NULL;
    char *wberr = sh ? st_sprintf("%s/fixtures/worldbank_v2_error_120_invalid-value.json", sh) : NULL;
    char *wits = sh ? st_sprintf("%s/fixtures/worldbank_wits_sdmxml21-generic_2024-11-05.xml", sh) : NULL;
    if (!sh || !st_path_exists(ecb) || !st_path_exists(wb) || !st_path_exists(wberr) ||
        !st_path_exists(wits)) {
        printf("SKIP: shared API recordings not found (STRATA_SHARED/fixtures)\n");
        st_free(ecb);
        st_free(wb);
        st_free(wberr);
        st_free(wits);
        skip();
    }
    tu_replay_reset(g_srv);
    tu_reply r = {.match = "/service/data/EXR/", .file = ecb, .ctype = "application/xml"};
    tu_replay_add(g_srv, &r);
    tu_reply r2 = {.match = "NY.GDP.PCAP.CD", .file = wb, .ctype = "application/json"};
    tu_replay_add(g_srv, &r2);
    tu_reply r3 = {.match = "BAD.INDICATOR", .file = wberr, .ctype = "application/json"};
    tu_replay_add(g_srv, &r3);
    tu_reply r4 = {.match = "/wits/data/", .file = wits, .ctype = "application/xml"};
    tu_replay_add(g_srv, &r4);
    char *yml = st_sprintf("  ecb:\n    kind: ecb\n    url: %s/service\n"
                           "    series: {usd: \"EXR/M.USD.EUR.SP00.A\"}\n"
                           "  wb:\n    kind: worldbank\n    url: %s\n"
                           "    indicators: {pcap: \"country/all/indicator/NY.GDP.PCAP.CD\","
                           " bad: \"country/all/indicator/BAD.INDICATOR\"}\n"
                           "  wits:\n    kind: sdmx\n    url: %s/wits\n"
                           "    series: {tariff: \"DF_WITS_Tariff_TRAINS/A.840.000.020110.reported\"}\n",
                           tu_replay_url(g_srv), tu_replay_url(g_srv), tu_replay_url(g_srv));
    char *proj = project("shared", yml);
    /* ECB SDMX-ML 2.1 GenericData: 252 monthly observations 1999-01..2019-12 */
    st_extract_report_free(run(proj, "ecb", ST_OK));
    ASSERT_BQ(proj, "ecb__usd", "SELECT count(*) || ' ' || min(TIME_PERIOD) || ' ' || max(TIME_PERIOD) FROM b",
              "252 1999-01 2019-12");
    ASSERT_BQ(proj, "ecb__usd", "SELECT OBS_VALUE FROM b WHERE TIME_PERIOD = '1999-01'", "1.16078");
    ASSERT_BQ(proj, "ecb__usd", "SELECT OBS_VALUE = 1.088295652173913 FROM b WHERE TIME_PERIOD = '1999-03'",
              "true");
    ASSERT_BQ(proj, "ecb__usd", "SELECT DISTINCT CURRENCY || '/' || CURRENCY_DENOM || ' ' || OBS_STATUS FROM b"
              " WHERE TIME_PERIOD = '2019-12'", "USD/EUR A");
    /* World Bank: one page of 39 rows with aggregates and nulls; the error
     * object is an error naming its id and key */
    st_extract_report *rep = run(proj, "wb", ST_ERR_REMOTE);
    assert_int_equal(rep->n_tables, 2);
    assert_null(rep->tables[0].error);
    assert_non_null(strstr(rep->tables[1].error, "wb.bad"));
    assert_non_null(strstr(rep->tables[1].error, "World Bank API error 120: Invalid value"));
    st_extract_report_free(rep);
    assert_int_equal(version_of(proj, "wb__bad"), -1);
    ASSERT_BQ(proj, "wb__pcap", "SELECT count(*) || ' ' || count(value) FROM b", "39 33");
    ASSERT_BQ(proj, "wb__pcap", "SELECT value FROM b WHERE countryiso3code = 'DEU' AND date = '2023'",
              "54343.2");
    ASSERT_BQ(proj, "wb__pcap", "SELECT value FROM b WHERE countryiso3code = 'AFE' AND date = '2023'",
              "1520.1");
    /* World Bank WITS SDMX-ML (another SDMX 2.1 producer) */
    st_extract_report_free(run(proj, "wits", ST_OK));
    ASSERT_BQ(proj, "wits__tariff", "SELECT count(*) || ' ' || min(TIME_PERIOD) FROM b", "1 1989");
    ASSERT_BQ(proj, "wits__tariff", "SELECT OBS_VALUE FROM b", "0.0");
    st_free(ecb);
    st_free(wb);
    st_free(wberr);
    st_free(wits);
    st_free(yml);
    st_free(proj);
}

static int setup(void **state)
{
    (void)state;
    g_dir = tu_tempdir("extract-api");
    const char *src = getenv("STRATA_SRC");
    snprintf(g_fix, sizeof g_fix, "%s/tests/extract/fixtures", src ? src : ".");
    g_srv = tu_replay_start();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_replay_stop(g_srv);
    tu_rmdir(g_dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ecb_incremental),
        cmocka_unit_test(test_api_raw_reprocess_agent),
        cmocka_unit_test(test_oecd_500_then_success),
        cmocka_unit_test(test_worldbank_pages_incremental),
        cmocka_unit_test(test_429_retry_after),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_shared_recordings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
