/*
 * golden_test.c - interoperability: reads every table of the Delta corpus
 * in ../shared/delta-golden (written by Spark, Databricks and delta-rs) and
 * compares version, live files, row count and the SHA-256 of the canonical
 * rows with MANIFEST.json, at the latest version, at every time-travel
 * version and for the change data feed.  Negative tables must fail with a
 * clear error.  One cmocka test per table.
 */
#include "testutil.h"
#include "canon.h"
#include "strata/delta.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *g_manifest;
static char *g_root;

typedef struct gctx {
    json_t *table;
    int failures;
    char name[128];
} gctx;

#define GFAIL(c, ...)                                                                              \
    do {                                                                                           \
        print_error("[%s] ", (c)->name);                                                           \
        print_error(__VA_ARGS__);                                                                  \
        print_error("\n");                                                                         \
        (c)->failures++;                                                                           \
    } while (0)

/* Renders a snapshot's rows (or any SQL) canonically; -1 on error. */
static int rows_of(gctx *c, st_engine *eng, const char *sql, char ***lines, size_t *n)
{
    st_err err = {0};
    if (canon_rows(eng, sql, lines, n, &err) != ST_OK) {
        GFAIL(c, "query failed: %s", err.msg);
        return -1;
    }
    return 0;
}

/* Prints the first line that differs from the expected file, to make a
 * mismatch easy to diagnose. */
static void show_diff(gctx *c, const char *rel, char **lines, size_t n)
{
    if (!rel)
        return;
    char *path = st_sprintf("%s/%s", g_root, rel);
    char *data = NULL;
    size_t len = 0;
    if (st_file_read(path, 1 << 26, &data, &len, NULL) == ST_OK) {
        size_t i = 0;
        char *save = NULL;
        for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
            if (i >= n || strcmp(line, lines[i])) {
                GFAIL(c, "first difference at line %zu:\n  expected %s\n  got      %s", i, line,
                      i < n ? lines[i] : "(end)");
                break;
            }
        }
    }
    st_free(data);
    st_free(path);
}

static void check_rows(gctx *c, st_engine *eng, const st_delta_snapshot *s, int64_t want_rows,
                       const char *want_sha, const char *rows_file, const char *what)
{
    char *sql = NULL;
    st_err err = {0};
    if (st_delta_scan_sql(eng, s, NULL, &sql, &err) != ST_OK) {
        GFAIL(c, "%s: scan_sql failed: %s", what, err.msg);
        return;
    }
    char **lines = NULL;
    size_t n = 0;
    if (rows_of(c, eng, sql, &lines, &n) == 0) {
        char *sha = canon_sha256(lines, n);
        if (want_rows >= 0 && (int64_t)n != want_rows)
            GFAIL(c, "%s: %zu rows, expected %lld", what, n, (long long)want_rows);
        if (want_sha && strcmp(sha, want_sha)) {
            GFAIL(c, "%s: rows sha256 %s, expected %s", what, sha, want_sha);
            show_diff(c, rows_file, lines, n);
        }
        st_free(sha);
        canon_free(lines, n);
    }
    st_free(sql);
}

static void check_error_table(gctx *c, st_engine *eng, const char *path, const char *expected)
{
    st_delta_snapshot *s = NULL;
    st_err err = {0};
    st_rc rc = st_delta_snapshot_load(eng, path, -1, &s, &err);
    if (rc == ST_OK) {
        /* reading the data must fail then */
        char *sql = NULL;
        rc = st_delta_scan_sql(eng, s, NULL, &sql, &err);
        if (rc == ST_OK)
            rc = st_engine_exec(eng, sql, &err);
        st_free(sql);
        st_delta_snapshot_free(s);
    }
    if (rc == ST_OK) {
        GFAIL(c, "reading must fail (%s) but succeeded", expected);
        return;
    }
    if (!err.msg[0])
        GFAIL(c, "failed without a message");
    /* "commit N missing": the message must name the missing commit file */
    const char *p = strstr(expected, "commit ");
    if (p && strstr(expected, "missing")) {
        long long v = strtoll(p + 7, NULL, 10);
        char fname[32];
        snprintf(fname, sizeof fname, "%020lld.json", v);
        if (!strstr(err.msg, fname))
            GFAIL(c, "error does not name %s: %s", fname, err.msg);
    }
    /* an unknown feature must be named */
    const char *q = strstr(expected, "feature");
    if (q) {
        const char *quote = strchr(expected, '"');
        if (quote) {
            const char *end = strchr(quote + 1, '"');
            char feat[64] = {0};
            if (end && (size_t)(end - quote - 1) < sizeof feat) {
                memcpy(feat, quote + 1, (size_t)(end - quote - 1));
                if (!strstr(err.msg, feat))
                    GFAIL(c, "error does not name feature %s: %s", feat, err.msg);
            }
        }
    }
    print_message("[%s] fails as expected: %s\n", c->name, err.msg);
}

static void check_cdf(gctx *c, st_engine *eng, const char *path, const json_t *cdf)
{
    int64_t from = json_integer_value(json_object_get(cdf, "start_version"));
    int64_t to = json_integer_value(json_object_get(cdf, "end_version"));
    char *sql = NULL;
    st_err err = {0};
    if (st_delta_changes_sql(eng, path, from, to, &sql, &err) != ST_OK) {
        GFAIL(c, "changes_sql(%lld, %lld) failed: %s", (long long)from, (long long)to, err.msg);
        return;
    }
    char *wrapped = st_sprintf("SELECT * EXCLUDE (_commit_timestamp) FROM (%s)", sql);
    char **lines = NULL;
    size_t n = 0;
    if (rows_of(c, eng, wrapped, &lines, &n) == 0) {
        int64_t want = json_integer_value(json_object_get(cdf, "row_count"));
        const char *want_sha = json_string_value(json_object_get(cdf, "rows_sha256"));
        char *sha = canon_sha256(lines, n);
        if ((int64_t)n != want)
            GFAIL(c, "cdf %lld..%lld: %zu rows, expected %lld", (long long)from, (long long)to, n,
                  (long long)want);
        if (want_sha && strcmp(sha, want_sha)) {
            GFAIL(c, "cdf: sha256 %s, expected %s", sha, want_sha);
            show_diff(c, json_string_value(json_object_get(cdf, "rows_file")), lines, n);
        }
        st_free(sha);
        canon_free(lines, n);
    }
    /* the timestamp column is a TIMESTAMPTZ */
    char *tsq = st_sprintf("SELECT typeof(_commit_timestamp) FROM (%s) LIMIT 1", sql);
    char *ty = NULL;
    if (st_engine_query_str(eng, tsq, &ty, &err) != ST_OK)
        GFAIL(c, "cdf timestamp query: %s", err.msg);
    else if (ty && strcmp(ty, "TIMESTAMP WITH TIME ZONE"))
        GFAIL(c, "_commit_timestamp is %s", ty);
    st_free(ty);
    st_free(tsq);
    st_free(wrapped);
    st_free(sql);
}

static void test_table(void **state)
{
    gctx *c = *state;
    const json_t *t = c->table;
    char *path = st_sprintf("%s/%s", g_root, json_string_value(json_object_get(t, "path")));
    st_engine *eng = tu_engine();
    const char *expected_error = json_string_value(json_object_get(t, "expected_error"));
    if (expected_error) {
        check_error_table(c, eng, path, expected_error);
        goto done;
    }
    st_delta_snapshot *s = NULL;
    st_err err = {0};
    if (st_delta_snapshot_load(eng, path, -1, &s, &err) != ST_OK) {
        GFAIL(c, "snapshot_load failed: %s", err.msg);
        goto done;
    }
    int64_t want_v = json_integer_value(json_object_get(t, "expected_version"));
    int64_t want_files = json_integer_value(json_object_get(t, "expected_active_files"));
    if (s->version != want_v)
        GFAIL(c, "version %lld, expected %lld", (long long)s->version, (long long)want_v);
    if ((int64_t)s->n_files != want_files)
        GFAIL(c, "%zu active files, expected %lld", s->n_files, (long long)want_files);
    int64_t latest = -2;
    if (st_delta_latest_version(path, &latest, &err) != ST_OK || latest != want_v)
        GFAIL(c, "latest_version %lld, expected %lld", (long long)latest, (long long)want_v);
    check_rows(c, eng, s, json_integer_value(json_object_get(t, "expected_row_count")),
               json_string_value(json_object_get(t, "expected_rows_sha256")),
               json_string_value(json_object_get(t, "expected_rows_file")), "latest");
    const json_t *apps = json_object_get(t, "app_txns");
    if (json_is_object(apps)) {
        const char *app;
        json_t *ver;
        json_object_foreach((json_t *)apps, app, ver)
        {
            bool found = false;
            for (size_t i = 0; i < s->n_txns; i++)
                if (!strcmp(s->txns[i].app_id, app)) {
                    found = true;
                    if (s->txns[i].version != json_integer_value(ver))
                        GFAIL(c, "txn %s version %lld, expected %lld", app,
                              (long long)s->txns[i].version, (long long)json_integer_value(ver));
                }
            if (!found)
                GFAIL(c, "txn %s missing", app);
        }
    }
    st_delta_snapshot_free(s);

    const json_t *tt = json_object_get(t, "time_travel");
    size_t i;
    const json_t *e;
    json_array_foreach(tt, i, e)
    {
        int64_t v = json_integer_value(json_object_get(e, "version"));
        const json_t *readable = json_object_get(e, "readable");
        const char *note = json_string_value(json_object_get(e, "note"));
        bool not_readable = json_is_false(readable) || (note && strstr(note, "not readable"));
        char what[64];
        snprintf(what, sizeof what, "version %lld", (long long)v);
        st_delta_snapshot *ts = NULL;
        st_rc rc = st_delta_snapshot_load(eng, path, v, &ts, &err);
        if (not_readable) {
            if (rc == ST_OK) {
                char *sql = NULL;
                rc = st_delta_scan_sql(eng, ts, NULL, &sql, &err);
                if (rc == ST_OK)
                    rc = st_engine_exec(eng, sql, &err);
                st_free(sql);
                st_delta_snapshot_free(ts);
            }
            if (rc == ST_OK)
                GFAIL(c, "%s is marked not readable but reading succeeded", what);
            continue;
        }
        if (rc != ST_OK) {
            GFAIL(c, "%s: snapshot_load failed: %s", what, err.msg);
            continue;
        }
        if (ts->version != v)
            GFAIL(c, "%s: loaded version %lld", what, (long long)ts->version);
        const json_t *af = json_object_get(e, "active_files");
        if (json_is_integer(af) && (int64_t)ts->n_files != json_integer_value(af))
            GFAIL(c, "%s: %zu active files, expected %lld", what, ts->n_files,
                  (long long)json_integer_value(af));
        char rows_file[256];
        snprintf(rows_file, sizeof rows_file, "expected/%s/rows_v%lld.jsonl",
                 json_string_value(json_object_get(t, "name")), (long long)v);
        check_rows(c, eng, ts, json_integer_value(json_object_get(e, "row_count")),
                   json_string_value(json_object_get(e, "rows_sha256")), rows_file, what);
        /* time travel by timestamp lands on the same version */
        st_delta_snapshot *bt = NULL;
        if (ts->timestamp_ms >= 0 &&
            st_delta_snapshot_at_time(eng, path, ts->timestamp_ms, &bt, &err) == ST_OK) {
            if (bt->timestamp_ms != ts->timestamp_ms)
                GFAIL(c, "%s: at_time(%lld) gave a version with timestamp %lld", what,
                      (long long)ts->timestamp_ms, (long long)bt->timestamp_ms);
            st_delta_snapshot_free(bt);
        } else if (ts->timestamp_ms >= 0) {
            GFAIL(c, "%s: at_time failed: %s", what, err.msg);
        }
        st_delta_snapshot_free(ts);
    }
    const json_t *cdf = json_object_get(t, "cdf");
    if (json_is_object(cdf))
        check_cdf(c, eng, path, cdf);
    else if (json_is_array(cdf)) {
        json_array_foreach(cdf, i, e) check_cdf(c, eng, path, e);
    }
done:
    st_engine_close(eng);
    st_free(path);
    if (c->failures)
        fail_msg("[%s] %d mismatch(es), see above", c->name, c->failures);
}

static void skip_corpus(void **state)
{
    (void)state;
    skip();
}

int main(void)
{
    const char *shared = tu_shared_dir();
    char *root = shared ? st_sprintf("%s/delta-golden", shared) : NULL;
    char *mpath = root ? st_sprintf("%s/MANIFEST.json", root) : NULL;
    if (!mpath || !st_path_exists(mpath)) {
        printf("SKIP: Delta golden corpus not found (%s); interoperability tests skipped\n",
               root ? root : "STRATA_SHARED unset or not a directory");
        st_free(root);
        st_free(mpath);
        const struct CMUnitTest skipped[] = {cmocka_unit_test(skip_corpus)};
        return cmocka_run_group_tests(skipped, NULL, NULL);
    }
    g_root = root;
    json_error_t je;
    g_manifest = json_load_file(mpath, 0, &je);
    st_free(mpath);
    if (!g_manifest) {
        fprintf(stderr, "cannot parse MANIFEST.json: %s\n", je.text);
        return 1;
    }
    const json_t *tables = json_object_get(g_manifest, "tables");
    size_t n = json_array_size(tables);
    struct CMUnitTest *tests = st_calloc(n, sizeof *tests);
    gctx *ctx = st_calloc(n, sizeof *ctx);
    for (size_t i = 0; i < n; i++) {
        ctx[i].table = json_array_get(tables, i);
        snprintf(ctx[i].name, sizeof ctx[i].name, "%s",
                 json_string_value(json_object_get(ctx[i].table, "name")));
        tests[i].name = ctx[i].name;
        tests[i].test_func = test_table;
        tests[i].initial_state = &ctx[i];
    }
    int rc = _cmocka_run_group_tests("delta_golden", tests, n, NULL, NULL);
    st_free(tests);
    st_free(ctx);
    json_decref(g_manifest);
    st_free(root);
    return rc;
}
