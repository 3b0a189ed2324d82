/*
 * silver_delta_test.c - silver on Delta tables end to end: a bronze change
 * table written with st_delta_write, incremental runs (st_silver_run) that
 * read only new bronze files, deletion vectors on the touched files instead
 * of rewrites, the protocol of a DV table, reruns as no-ops, late changes,
 * erasure, `delete: missing` snapshots, and the history views.
 */
#include "testutil.h"

#include "delta/delta_int.h" /* st_delta_dv_load */
#include "strata/delta.h"
#include "strata/silver.h"

#include <stdio.h>
#include <string.h>

static const char *yml = "from: bronze.people\n"
                         "key: [id]\n"
                         "track: [name, city]\n"
                         "update_in_place: [note]\n"
                         "sequence: seq\n"
                         "delete: \"_op = 'D'\"\n";

static st_silver_entity *entity(void)
{
    st_cfg_doc *doc = NULL;
    TU_OK(st_cfg_load_string("people.yml", yml, strlen(yml), &doc, &tu_err));
    st_silver_entity *e = NULL;
    TU_OK(st_silver_entity_parse(st_cfg_root(doc), "people", &e, &tu_err));
    st_cfg_doc_free(doc);
    return e;
}

/* Appends change rows "(country, id, name, city, note, seq, op), ..." to bronze. */
static void bronze_append(st_engine *eng, const char *lake, const char *rows)
{
    char *path = st_sprintf("%s/bronze/people", lake);
    char *sql = st_sprintf("SELECT CAST(country AS VARCHAR) AS country, CAST(id AS BIGINT) AS id, "
                           "CAST(name AS VARCHAR) AS name, CAST(city AS VARCHAR) AS city, "
                           "CAST(note AS VARCHAR) AS note, CAST(seq AS BIGINT) AS seq, "
                           "CAST(_op AS VARCHAR) AS _op FROM (VALUES %s) v(country, id, name, "
                           "city, note, seq, _op)",
                           rows);
    int64_t v = -1;
    if (st_delta_latest_version(path, &v, NULL) != ST_OK || v < 0) {
        st_delta_schema *s = NULL;
        TU_OK(st_delta_schema_from_ddl("country string, id long, name string, city string, "
                                       "note string, seq long, _op string",
                                       &s, &tu_err));
        TU_OK(st_mkdirs(path, &tu_err));
        TU_OK(st_delta_create(path, s, NULL, &tu_err));
        st_delta_schema_free(s);
    }
    st_delta_write_opts o = {0};
    o.mode = ST_DELTA_APPEND;
    TU_OK(st_delta_write(eng, path, sql, &o, NULL, &tu_err));
    st_free(sql);
    st_free(path);
}

static char *history(st_engine *eng)
{
    char *out = NULL;
    TU_OK(st_engine_query_str(
        eng,
        "SELECT string_agg(country || id || ':' || coalesce(city, '-') || ':' || _valid_from || "
        "'-' || coalesce(CAST(_valid_to AS VARCHAR), '') || CASE WHEN _is_deleted THEN 'D' ELSE "
        "'' END || '#' || _version, ' ' ORDER BY country, id, _valid_from) FROM people_history",
        &out, &tu_err));
    return out;
}

static void expect(st_engine *eng, const char *silver, const char *want)
{
    TU_OK(st_silver_register_views(eng, silver, "people", &tu_err));
    char *got = history(eng);
    if (!got || strcmp(got, want))
        fail_msg("history\n  got:  %s\n  want: %s", got ? got : "(null)", want);
    st_free(got);
}

static void test_incremental_runs(void **state)
{
    (void)state;
    st_engine *eng = tu_engine();
    char *lake = tu_tempdir("silverlake");
    char *silver = st_sprintf("%s/silver/people", lake);
    st_silver_entity *e = entity();
    st_silver_stats st;

    bronze_append(eng, lake, "('DE', 1, 'a', 'Berlin', 'n', 10, 'I'), ('DE', 2, 'b', 'Bonn', 'n', "
                             "10, 'I'), ('FR', 1, 'c', 'Lyon', 'n', 10, 'I')");
    TU_OK(st_silver_run(eng, lake, e, &st, &tu_err));
    assert_int_equal(st.rows_written, 3);
    assert_int_equal(st.files_touched, 0);
    expect(eng, silver, "DE1:Berlin:10-#1 DE2:Bonn:10-#1 FR1:Lyon:10-#1");

    /* the table uses deletion vectors: protocol 3/7 with the feature */
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(eng, silver, -1, &s, &tu_err));
    assert_true(s->protocol.min_reader >= 3 && s->protocol.min_writer >= 7);
    bool found = false;
    for (size_t i = 0; i < s->protocol.n_reader_features; i++)
        found = found || !strcmp(s->protocol.reader_features[i], "deletionVectors");
    assert_true(found);
    assert_string_equal(st_delta_config(s, "delta.enableDeletionVectors", ""), "true");
    assert_int_equal(s->metadata.n_partition_columns, 1);
    assert_string_equal(s->metadata.partition_columns[0], "country");
    st_delta_snapshot_free(s);

    /* nothing new in bronze: skipped */
    TU_OK(st_silver_run(eng, lake, e, &st, &tu_err));
    assert_true(st.skipped);

    /* a change and a late change for DE1, a delete for FR1 */
    bronze_append(eng, lake, "('DE', 1, 'a', 'Hamburg', 'n', 30, 'U')");
    bronze_append(eng, lake, "('DE', 1, 'a', 'Munich', 'n', 20, 'U'), ('FR', 1, NULL, NULL, NULL, "
                             "40, 'D')");
    TU_OK(st_silver_run(eng, lake, e, &st, &tu_err));
    assert_int_equal(st.rows_in, 3);          /* only what bronze gained */
    assert_int_equal(st.keys_changed, 2);
    assert_true(st.files_touched >= 1);       /* DVs, not rewrites */
    expect(eng, silver,
           "DE1:Berlin:10-20#1 DE1:Munich:20-30#2 DE1:Hamburg:30-#3 DE2:Bonn:10-#1 "
           "FR1:Lyon:10-40#1 FR1:-:40-D#2");
    TU_OK(st_delta_snapshot_load(eng, silver, -1, &s, &tu_err));
    size_t n_dv = 0;
    for (size_t i = 0; i < s->n_files; i++)
        n_dv += s->files[i]->has_dv;
    assert_true(n_dv >= 1);
    int64_t v_before = s->version;
    st_delta_snapshot_free(s);

    /* the same bronze changes arriving again (a replayed extract): no change
     * to silver's rows, only the processed version moves */
    bronze_append(eng, lake, "('DE', 1, 'a', 'Munich', 'n', 20, 'U')");
    TU_OK(st_silver_run(eng, lake, e, &st, &tu_err));
    assert_int_equal(st.keys_changed, 0);
    assert_int_equal(st.rows_written, 0);
    assert_int_equal(st.version, v_before + 1);
    expect(eng, silver,
           "DE1:Berlin:10-20#1 DE1:Munich:20-30#2 DE1:Hamburg:30-#3 DE2:Bonn:10-#1 "
           "FR1:Lyon:10-40#1 FR1:-:40-D#2");

    /* current and as-of views */
    int64_t n = 0;
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM people_current", &n, &tu_err));
    assert_int_equal(n, 2);
    char *city = NULL;
    TU_OK(st_engine_query_str(eng, "SELECT city FROM people_as_of(25) WHERE id = 1 AND country "
                                   "= 'DE'", &city, &tu_err));
    assert_string_equal(city, "Munich");
    st_free(city);

    /* erasure: every version of DE1 goes, in one commit, by DVs */
    TU_OK(st_silver_erase(eng, silver, "country = 'DE' AND id = 1", &st, &tu_err));
    assert_int_equal(st.rows_deleted, 3);
    expect(eng, silver, "DE2:Bonn:10-#1 FR1:Lyon:10-40#1 FR1:-:40-D#2");

    st_silver_entity_free(e);
    st_free(silver);
    tu_rmdir(lake);
    st_engine_close(eng);
}

/* `delete: missing` on a partitioned Delta table: a key live in silver and
 * absent from a snapshot is deleted at the snapshot's sequence; the stored
 * rows are found by the key filter, and only current rows are replaced. */
static void test_missing_on_delta(void **state)
{
    (void)state;
    static const char *ymlm = "from: bronze.people\nkey: [id]\ntrack: [name, city]\n"
                              "sequence: seq\ndelete: missing\n";
    st_cfg_doc *doc = NULL;
    TU_OK(st_cfg_load_string("people.yml", ymlm, strlen(ymlm), &doc, &tu_err));
    st_silver_entity *e = NULL;
    TU_OK(st_silver_entity_parse(st_cfg_root(doc), "people", &e, &tu_err));
    st_cfg_doc_free(doc);
    st_engine *eng = tu_engine();
    char *dir = tu_tempdir("silvermiss");
    char *silver = st_sprintf("%s/people", dir);
    st_silver_stats st;
    const char *snap =
        "SELECT * FROM (VALUES ('DE', 1::BIGINT, 'a', 'P', %d), ('DE', 2, 'b', 'Q', %d), "
        "('FR', 3, 'c', 'R', %d)) v(country, id, name, city, seq) WHERE id <> %d";
    char *s1 = st_sprintf(snap, 1, 1, 1, 0);
    TU_OK(st_silver_merge_delta(eng, e, s1, silver, "s1", "app", 1, &st, &tu_err));
    assert_int_equal(st.rows_written, 3);
    /* id 2 is missing from the second snapshot; id 3 unchanged (a no-op) */
    char *s2 = st_sprintf(snap, 2, 2, 2, 2);
    TU_OK(st_silver_merge_delta(eng, e, s2, silver, "s2", "app", 2, &st, &tu_err));
    expect(eng, silver, "DE1:P:1-#1 DE2:Q:1-2#1 DE2:-:2-D#2 FR3:R:1-#1");
    /* 3 keys changed (1 and 3 absorb a no-op, 2 is deleted), one current row
     * each retired, nothing else */
    assert_int_equal(st.keys_changed, 3);
    assert_int_equal(st.rows_deleted, 3);
    assert_int_equal(st.rows_written, 4);
    /* the key comes back */
    char *s3 = st_sprintf(snap, 3, 3, 3, 0);
    TU_OK(st_silver_merge_delta(eng, e, s3, silver, "s3", "app", 3, &st, &tu_err));
    expect(eng, silver, "DE1:P:1-#1 DE2:Q:1-2#1 DE2:-:2-3D#2 DE2:Q:3-#3 FR3:R:1-#1");
    int64_t n = 0;
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM people_history WHERE id = 1 AND "
                                   "_noop_seqs = [2, 3]",
                              &n, &tu_err));
    assert_int_equal(n, 1);
    st_free(s1);
    st_free(s2);
    st_free(s3);
    st_silver_entity_free(e);
    st_free(silver);
    tu_rmdir(dir);
    st_engine_close(eng);
}

static void test_merge_delta_txn(void **state)
{
    (void)state;
    st_engine *eng = tu_engine();
    char *dir = tu_tempdir("silvertxn");
    char *silver = st_sprintf("%s/people", dir);
    st_silver_entity *e = entity();
    st_silver_stats st;
    const char *b1 = "SELECT 1::BIGINT AS id, 'a' AS name, 'P' AS city, '' AS note, 1 AS seq, "
                     "'I' AS _op";
    TU_OK(st_silver_merge_delta(eng, e, b1, silver, "b1", "app", 1, &st, &tu_err));
    assert_int_equal(st.rows_written, 1);
    /* the same app version again: skipped by the txn */
    TU_OK(st_silver_merge_delta(eng, e, b1, silver, "b1", "app", 1, &st, &tu_err));
    assert_true(st.skipped);
    /* a DV on a file that already has one is united with it */
    const char *b2 = "SELECT 1::BIGINT AS id, 'a' AS name, 'Q' AS city, '' AS note, 2 AS seq, "
                     "'U' AS _op UNION ALL SELECT 2, 'b', 'R', '', 1, 'I'";
    TU_OK(st_silver_merge_delta(eng, e, b2, silver, "b2", "app", 2, &st, &tu_err));
    const char *b3 = "SELECT 1::BIGINT AS id, 'a' AS name, 'S' AS city, '' AS note, 3 AS seq, "
                     "'U' AS _op UNION ALL SELECT 2, 'b', 'T', '', 2, 'U'";
    TU_OK(st_silver_merge_delta(eng, e, b3, silver, "b3", "app", 3, &st, &tu_err));
    assert_int_equal(st.keys_changed, 2);
    TU_OK(st_silver_register_views(eng, silver, "people", &tu_err));
    int64_t n = 0;
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM people_history", &n, &tu_err));
    assert_int_equal(n, 5);
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM people_current", &n, &tu_err));
    assert_int_equal(n, 2);
    st_silver_entity_free(e);
    st_free(silver);
    tu_rmdir(dir);
    st_engine_close(eng);
}

static void test_pruning(void **state)
{
    (void)state;
    st_engine *eng = tu_engine();
    char *dir = tu_tempdir("silverprune");
    char *silver = st_sprintf("%s/people", dir);
    st_silver_entity *e = entity();
    st_silver_stats st;
    TU_OK(st_silver_merge_delta(eng, e,
                                "SELECT i::BIGINT AS id, 'n' AS name, 'c' AS city, '' AS note, 1 AS "
                                "seq, 'I' AS _op FROM range(1, 101) t(i)",
                                silver, "b1", "app", 1, &st, &tu_err));
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(eng, silver, -1, &s, &tu_err));
    assert_int_equal(s->n_files, 1);
    char *first = st_strdup(s->files[0]->abs_path);
    st_delta_snapshot_free(s);
    TU_OK(st_silver_merge_delta(eng, e,
                                "SELECT i::BIGINT AS id, 'n' AS name, 'c' AS city, '' AS note, 1 AS "
                                "seq, 'I' AS _op FROM range(1001, 1101) t(i)",
                                silver, "b2", "app", 2, &st, &tu_err));
    /* a change to id 1050 must not open the file of ids 1..100 (min/max
     * stats prune it): take that file away to prove it */
    char *moved = st_sprintf("%s.away", first);
    assert_int_equal(rename(first, moved), 0);
    TU_OK(st_silver_merge_delta(eng, e,
                                "SELECT 1050::BIGINT AS id, 'n' AS name, 'd' AS city, '' AS note, 2 "
                                "AS seq, 'U' AS _op",
                                silver, "b3", "app", 3, &st, &tu_err));
    assert_int_equal(st.files_touched, 1);
    assert_int_equal(st.rows_deleted, 1);
    assert_int_equal(rename(moved, first), 0);
    TU_OK(st_silver_register_views(eng, silver, "p", &tu_err));
    int64_t n = 0;
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM p_history", &n, &tu_err));
    assert_int_equal(n, 201);
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM p_current WHERE city = 'd'", &n, &tu_err));
    assert_int_equal(n, 1);
    st_free(first);
    st_free(moved);
    st_silver_entity_free(e);
    st_free(silver);
    tu_rmdir(dir);
    st_engine_close(eng);
}

static void test_dv_roundtrip(void **state)
{
    (void)state;
    char *dir = tu_tempdir("silverdv");
    uint64_t pos[] = {5, 1, 3, 1, (1ULL << 32) + 7, 100000};
    st_delta_dv dv, dv2;
    int64_t bytes = 0;
    TU_OK(st_delta_dv_build(dir, pos, 6, NULL, &dv, &bytes, &tu_err));
    assert_int_equal(dv.cardinality, 5);
    assert_int_equal(dv.storage_type, 'u');
    assert_int_equal(dv.offset, 1);
    assert_int_equal(strlen(dv.path_or_inline), 20);
    assert_true(bytes > 0);
    uint64_t more[] = {2, 5};
    TU_OK(st_delta_dv_build(dir, more, 2, &dv, &dv2, NULL, &tu_err));
    assert_int_equal(dv2.cardinality, 6);
    /* the reader decodes what was written */
    uint64_t *got = NULL;
    size_t n = 0;
    TU_OK(st_delta_dv_load(dir, &dv2, &got, &n, &tu_err));
    uint64_t want[] = {1, 2, 3, 5, 100000, (1ULL << 32) + 7};
    assert_int_equal(n, 6);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i], want[i]);
    st_free(got);
    st_delta_dv_clear(&dv);
    st_delta_dv_clear(&dv2);
    st_delta_dv_clear(NULL);
    tu_rmdir(dir);
}

static void test_cli(void **state)
{
    (void)state;
    st_engine *eng = tu_engine();
    char *proj = tu_tempdir("silvercli");
    char *lake = st_sprintf("%s/lake", proj);
    char *md = st_sprintf("%s/models/silver", proj);
    char *ymlp = st_sprintf("%s/people.yml", md);
    TU_OK(st_mkdirs(md, &tu_err));
    TU_OK(st_file_write_atomic(ymlp, yml, strlen(yml), &tu_err));
    bronze_append(eng, lake, "('DE', 1, 'a', 'Berlin', 'n', 10, 'I')");
    char *out = NULL;
    int rc = tu_run(&out, "'%s' silver run people --project '%s' 2>&1", tu_strata_bin(), proj);
    if (rc != 0)
        fail_msg("strata silver run: exit %d: %s", rc, out ? out : "");
    assert_non_null(strstr(out, "merged"));
    st_free(out);
    rc = tu_run(&out, "'%s' silver run silver.people --project '%s' 2>&1", tu_strata_bin(), proj);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "up to date"));
    st_free(out);
    rc = tu_run(&out, "'%s' silver erase people --where 'id = 1' --project '%s' 2>&1",
                tu_strata_bin(), proj);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "erased 1 rows"));
    st_free(out);
    /* usage errors and unknown entities */
    rc = tu_run(&out, "'%s' silver run 2>&1", tu_strata_bin());
    assert_int_equal(rc, 2);
    st_free(out);
    rc = tu_run(&out, "'%s' silver run nope --project '%s' 2>&1", tu_strata_bin(), proj);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "not declared"));
    st_free(out);
    st_free(lake);
    st_free(md);
    st_free(ymlp);
    tu_rmdir(proj);
    st_engine_close(eng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_dv_roundtrip),
        cmocka_unit_test(test_pruning),
        cmocka_unit_test(test_merge_delta_txn),
        cmocka_unit_test(test_missing_on_delta),
        cmocka_unit_test(test_incremental_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
