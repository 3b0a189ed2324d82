/*
 * quality_test.c - every check kind passing and failing on a DuckDB
 * relation, check declaration errors, and through the orchestrator: an
 * error check leaves the gold table at its previous version, stops what
 * depends on it, and the results land in _system.quality_results.
 */
#include "testutil.h"

#include "strata/delta.h"
#include "strata/orch.h"

#include <stdio.h>
#include <string.h>

static st_cfg_doc *yaml(const char *text)
{
    st_cfg_doc *d = NULL;
    TU_OK(st_cfg_load_string("t.yml", text, strlen(text), &d, &tu_err));
    return d;
}

/* Runs the single check declared in `decl` over relation `rel`. */
static bool check_passes(st_engine *eng, const char *decl, const char *rel, int64_t *failing)
{
    st_cfg_doc *d = yaml(decl);
    st_asset_def a;
    memset(&a, 0, sizeof a);
    a.key = "gold.t";
    a.checks = st_calloc(1, sizeof *a.checks);
    TU_OK(st_check_parse(st_cfg_root(d), &a.checks[0], &tu_err));
    a.n_checks = 1;
    st_check_result *r = NULL;
    size_t n_err = 0;
    TU_OK(st_quality_run(eng, &a, rel, &r, &n_err, &tu_err));
    bool passed = r[0].passed;
    if (failing)
        *failing = r[0].failing;
    assert_int_equal(n_err, passed || a.checks[0].severity == ST_SEV_WARN ? 0 : 1);
    assert_non_null(r[0].message);
    st_check_results_free(r, 1);
    st_check_clear(&a.checks[0]);
    st_free(a.checks);
    st_cfg_doc_free(d);
    return passed;
}

static void test_kinds(void **state)
{
    (void)state;
    st_engine *eng = tu_engine();
    TU_OK(st_engine_exec(eng,
                         "CREATE TABLE good AS SELECT * FROM (VALUES"
                         " (1, 'DE', 'open', 10.0, now()::TIMESTAMP - INTERVAL 1 MINUTE),"
                         " (2, 'FR', 'closed', 20.0, now()::TIMESTAMP - INTERVAL 2 MINUTE),"
                         " (3, 'LU', 'open', 30.0, now()::TIMESTAMP - INTERVAL 3 MINUTE))"
                         " t(id, country, status, amount, loaded_at);"
                         "CREATE TABLE bad AS SELECT * FROM (VALUES"
                         " (1, 'DE', 'open', 10.0, TIMESTAMP '2020-01-01'),"
                         " (1, NULL, 'weird', -5.0, TIMESTAMP '2020-01-02'),"
                         " (4, 'XX', 'open', 1e9, TIMESTAMP '2020-01-03'))"
                         " t(id, country, status, amount, loaded_at);"
                         "CREATE SCHEMA silver; CREATE TABLE silver.country AS SELECT * FROM"
                         " (VALUES ('DE'), ('FR'), ('LU')) t(code);"
                         "CREATE TABLE empty AS SELECT * FROM good WHERE false;",
                         &tu_err));
    struct {
        const char *decl;
        int64_t bad_failing;   /* failing count on `bad` */
    } cases[] = {
        {"not_null: country", 1},
        {"not_null: [id, country]", 1},
        {"unique: id", 2},
        {"unique: [id, country]", 0},   /* (1,DE) and (1,NULL) differ: passes on bad too */
        {"accepted_values: {column: status, values: [open, closed]}", 1},
        {"relationships: {column: country, to: silver.country, field: code}", 1},
        {"range: {column: amount, min: 0, max: 1000}", 2},
        {"range: {column: amount, min: 0}", 1},
        {"row_count: {min: 1, max: 2}", 3},
        {"freshness: {column: loaded_at, max_age: 1h}", -2},
        {"sql: \"SELECT * FROM {{ this }} WHERE amount < 0\"", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t f = 0;
        bool good_ok = check_passes(eng, cases[i].decl, "good", &f);
        if (!strstr(cases[i].decl, "row_count") && !good_ok)
            fail_msg("check '%s' failed on good data (%lld)", cases[i].decl, (long long)f);
        bool bad_ok = check_passes(eng, cases[i].decl, "bad", &f);
        if (!strncmp(cases[i].decl, "unique: [id, country]", 21)) {
            assert_true(bad_ok);
            continue;
        }
        if (!strncmp(cases[i].decl, "row_count", 9)) {
            /* good has 3 rows too: both exceed max 2 */
            assert_false(good_ok);
            assert_false(bad_ok);
            assert_int_equal(f, 3);
            assert_true(check_passes(eng, "row_count: {min: 3, max: 3}", "bad", NULL));
            assert_false(check_passes(eng, "row_count: {min: 1}", "empty", NULL));
            continue;
        }
        if (bad_ok)
            fail_msg("check '%s' passed on bad data", cases[i].decl);
        if (cases[i].bad_failing >= 0 && f != cases[i].bad_failing)
            fail_msg("check '%s': %lld failing rows, want %lld", cases[i].decl, (long long)f,
                     (long long)cases[i].bad_failing);
        if (cases[i].bad_failing == -2)
            assert_true(f > 3600);   /* the freshness age in seconds */
    }
    /* freshness on no rows fails */
    assert_false(check_passes(eng, "freshness: {column: loaded_at, max_age: 1d}", "empty", NULL));
    /* a warn check that fails does not count as an error */
    assert_false(check_passes(eng, "{not_null: country, severity: warn}", "bad", NULL));
    /* a check whose SQL cannot run fails */
    assert_false(check_passes(eng, "not_null: no_such_column", "good", NULL));
    st_engine_close(eng);
}

static void test_decl_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "not_null: []",
        "accepted_values: {column: s}",
        "relationships: {column: c}",
        "relationships: {column: c, to: customer}",
        "range: {column: a}",
        "row_count: {min: -1}",
        "freshness: {column: t, max_age: soon}",
        "{not_null: a, unique: b}",
        "{not_null: a, severity: fatal}",
        "{mystery: a}",
        "range: {column: a, min: 0, bogus: 1}",
        NULL};
    for (size_t i = 0; bad[i]; i++) {
        st_cfg_doc *d = yaml(bad[i]);
        st_check c;
        st_err e;
        st_rc rc = st_check_parse(st_cfg_root(d), &c, &e);
        if (rc == ST_OK)
            fail_msg("check '%s' was accepted", bad[i]);
        assert_non_null(strstr(e.msg, "t.yml:"));
        st_cfg_doc_free(d);
    }
}

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

static void test_error_check_keeps_version(void **state)
{
    (void)state;
    char *dir = tu_tempdir("orch-quality");
    write_file(dir, "strata.yml", "name: q\nlake: ./lake\nstate: ./state.db\n");
    /* gold.scores reads bronze.scores (written by the test); gold.top reads gold.scores */
    write_file(dir, "models/gold/scores.sql",
               "SELECT id, score FROM {{ ref('bronze.scores') }}\n");
    write_file(dir, "models/gold/scores.yml",
               "checks:\n"
               "  - not_null: id\n"
               "  - range: {column: score, min: 0, max: 100}\n"
               "  - {unique: score, severity: warn}\n");
    write_file(dir, "models/gold/top.sql",
               "SELECT max(score) AS best FROM {{ ref('scores') }}\n");
    st_engine *eng = tu_engine();
    char *lake = st_path_join(dir, "lake");
    char *bronze = st_path_join(lake, "bronze/scores");
    st_delta_schema *sc = NULL;
    TU_OK(st_delta_schema_from_ddl("id long, score long", &sc, &tu_err));
    TU_OK(st_mkdirs(bronze, &tu_err));
    TU_OK(st_delta_create(bronze, sc, NULL, &tu_err));
    st_delta_schema_free(sc);
    st_delta_write_opts wo = {.mode = ST_DELTA_OVERWRITE};
    TU_OK(st_delta_write(eng, bronze, "SELECT * FROM (VALUES (1, 50), (2, 50), (3, 70)) t(id, score)",
                         &wo, NULL, &tu_err));
    st_project *p = NULL;
    TU_OK(st_project_load(dir, &p, &tu_err));
    st_orch *o = NULL;
    TU_OK(st_orch_open(p, &o, &tu_err));
    st_run_summary *s = NULL;
    TU_OK(st_orch_run(o, NULL, &s, &tu_err));
    assert_int_equal(s->n_ok, 2);
    assert_int_equal(s->n_observed, 1);
    st_run_summary_free(s);
    char *scores = st_path_join(lake, "gold/scores");
    int64_t v1 = -1;
    TU_OK(st_delta_latest_version(scores, &v1, &tu_err));
    /* bad data: a NULL id and a score of 150 */
    TU_OK(st_delta_write(eng, bronze, "SELECT * FROM (VALUES (1, 50), (NULL, 60), (3, 150)) t(id, score)",
                         &wo, NULL, &tu_err));
    st_err e;
    assert_int_not_equal(st_orch_run(o, NULL, &s, &e), ST_OK);
    const st_asset_result *r = NULL, *top = NULL;
    for (size_t i = 0; i < s->n; i++) {
        if (!strcmp(s->assets[i].key, "gold.scores"))
            r = &s->assets[i];
        if (!strcmp(s->assets[i].key, "gold.top"))
            top = &s->assets[i];
    }
    assert_non_null(r);
    assert_int_equal(r->status, ST_AS_FAILED);
    assert_int_equal(r->attempts, 1);
    assert_non_null(strstr(r->error, "not_null(id)"));
    assert_non_null(strstr(r->error, "range(score)"));
    assert_int_equal(top->status, ST_AS_SKIPPED);
    int64_t v2 = -1;
    TU_OK(st_delta_latest_version(scores, &v2, &tu_err));
    assert_int_equal(v2, v1);
    /* the table still holds the good rows */
    st_delta_snapshot *snap = NULL;
    TU_OK(st_delta_snapshot_load(eng, scores, -1, &snap, &tu_err));
    TU_OK(st_delta_register_view(eng, "scores_now", snap, &tu_err));
    st_delta_snapshot_free(snap);
    int64_t n = 0;
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM scores_now WHERE score <= 70 AND id IS NOT NULL",
                              &n, &tu_err));
    assert_int_equal(n, 3);
    /* results: first run 3 passed (warn unique failed: 50 twice), second run 2 errors failed */
    char *qr = st_path_join(lake, "_system/quality_results");
    TU_OK(st_delta_snapshot_load(eng, qr, -1, &snap, &tu_err));
    TU_OK(st_delta_register_view(eng, "qr", snap, &tu_err));
    st_delta_snapshot_free(snap);
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM qr WHERE asset = 'gold.scores'", &n, &tu_err));
    assert_int_equal(n, 6);
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM qr WHERE NOT passed AND severity = 'error'",
                              &n, &tu_err));
    assert_int_equal(n, 2);
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM qr WHERE NOT passed AND severity = 'warn'"
                                   " AND kind = 'unique' AND failing_rows = 2", &n, &tu_err));
    assert_int_equal(n, 1);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM qr WHERE run_id = '%s' AND check_name = 'not_null(id)'"
                              " AND failing_rows = 1", s->run_id);
    TU_OK(st_engine_query_i64(eng, sql, &n, &tu_err));
    assert_int_equal(n, 1);
    st_run_summary_free(s);
    st_free(qr);
    st_free(scores);
    st_free(bronze);
    st_free(lake);
    st_orch_close(o);
    st_project_free(p);
    st_engine_close(eng);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_decl_errors),
        cmocka_unit_test(test_error_check_keeps_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
