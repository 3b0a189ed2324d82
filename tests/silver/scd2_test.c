/*
 * scd2_test.c - hand-written cases for each SCD Type 2 rule, run on a plain
 * DuckDB table through st_silver_merge_duckdb (the same rebuild the Delta
 * path uses): first load, a change, a no-op, late changes in the middle and
 * before the first version, duplicates, deletes, reinserts, ties, NULLs,
 * a source schema change, config parsing.  Invariants are checked after
 * every merge.
 */
#include "testutil.h"

#include "strata/silver.h"

#include <stdio.h>
#include <string.h>

static const char *yml = "from: bronze.people\n"
                         "key: [id]\n"
                         "track: [name, city]\n"
                         "update_in_place: [note]\n"
                         "sequence: seq\n"
                         "delete: \"_op = 'D'\"\n";

static st_silver_entity *entity_from(const char *text)
{
    st_cfg_doc *doc = NULL;
    TU_OK(st_cfg_load_string("people.yml", text, strlen(text), &doc, &tu_err));
    st_silver_entity *e = NULL;
    TU_OK(st_silver_entity_parse(st_cfg_root(doc), "people", &e, &tu_err));
    st_cfg_doc_free(doc);
    return e;
}

/* Checks the SCD2 invariants of table t (key column id). */
static void check_invariants(st_engine *eng, const char *t)
{
    const char *checks[] = {
        /* one current version per key */
        "SELECT count(*) FROM (SELECT id, sum(CAST(_is_current AS INT)) c FROM %s GROUP BY id) "
        "WHERE c <> 1",
        /* intervals chain: no overlap, no gap; current iff open */
        "SELECT count(*) FROM (SELECT _valid_to, _is_current, lead(_valid_from) OVER (PARTITION "
        "BY id ORDER BY _valid_from) nf FROM %s) WHERE _valid_to IS DISTINCT FROM nf OR "
        "_is_current <> (_valid_to IS NULL)",
        /* versions 1..n in order */
        "SELECT count(*) FROM (SELECT _version, row_number() OVER (PARTITION BY id ORDER BY "
        "_valid_from) rn FROM %s) WHERE _version <> rn",
        /* no two consecutive versions with the same state */
        "SELECT count(*) FROM (SELECT _is_deleted d, _row_hash h, lag(_is_deleted) OVER w pd, "
        "lag(_row_hash) OVER w ph FROM %s WINDOW w AS (PARTITION BY id ORDER BY _valid_from)) "
        "WHERE pd IS NOT NULL AND d = pd AND h IS NOT DISTINCT FROM ph",
        /* valid_from < valid_to */
        "SELECT count(*) FROM %s WHERE _valid_to IS NOT NULL AND _valid_to <= _valid_from",
        NULL};
    for (int i = 0; checks[i]; i++) {
        char *sql = st_sprintf(checks[i], t);
        int64_t bad = -1;
        TU_OK(st_engine_query_i64(eng, sql, &bad, &tu_err));
        if (bad != 0)
            fail_msg("invariant %d violated %lld times: %s", i, (long long)bad, sql);
        st_free(sql);
    }
}

/* The history as "id:name:city:from-to[D]" joined by spaces. */
static char *history(st_engine *eng, const char *t)
{
    char *sql = st_sprintf(
        "SELECT string_agg(id || ':' || coalesce(name, '-') || ':' || coalesce(city, '-') || ':' "
        "|| _valid_from || '-' || coalesce(CAST(_valid_to AS VARCHAR), '') || CASE WHEN "
        "_is_deleted THEN 'D' ELSE '' END, ' ' ORDER BY id, _valid_from) FROM %s",
        t);
    char *out = NULL;
    TU_OK(st_engine_query_str(eng, sql, &out, &tu_err));
    st_free(sql);
    return out;
}

/* Merges rows given as "(id, name, city, note, seq, op), ..." */
static void merge(st_engine *eng, st_silver_entity *e, const char *rows, st_silver_stats *st)
{
    char *sql = st_sprintf("SELECT id, CAST(name AS VARCHAR) AS name, CAST(city AS VARCHAR) AS city, "
                           "CAST(note AS VARCHAR) AS note, seq, CAST(_op AS VARCHAR) AS _op FROM "
                           "(VALUES %s) v(id, name, city, note, seq, _op)",
                           rows);
    TU_OK(st_silver_merge_duckdb(eng, e, sql, "people", NULL, st, &tu_err));
    st_free(sql);
    check_invariants(eng, "people");
}

static void expect(st_engine *eng, const char *want)
{
    char *got = history(eng, "people");
    if (!got || strcmp(got, want))
        fail_msg("history\n  got:  %s\n  want: %s", got ? got : "(null)", want);
    st_free(got);
}

static void test_first_load_change_noop(void **state)
{
    (void)state;
    st_engine *eng = tu_engine();
    st_silver_entity *e = entity_from(yml);
    st_silver_stats st;
    merge(eng, e, "(1, 'ann', 'Oslo', 'x', 1, 'U'), (2, 'bob', 'Rome', 'y', 1, 'U')", &st);
    expect(eng, "1:ann:Oslo:1- 2:bob:Rome:1-");
    assert_int_equal(st.rows_written, 2);
    /* a change */
    merge(eng, e, "(1, 'ann', 'Bergen', 'x', 5, 'U')", &st);
    expect(eng, "1:ann:Oslo:1-5 1:ann:Bergen:5- 2:bob:Rome:1-");
    assert_int_equal(st.keys_changed, 1);
    /* a no-op change (same tracked values, new untracked note): no new version */
    merge(eng, e, "(2, 'bob', 'Rome', 'z', 7, 'U')", &st);
    expect(eng, "1:ann:Oslo:1-5 1:ann:Bergen:5- 2:bob:Rome:1-");
    char *note = NULL;
    TU_OK(st_engine_query_str(eng, "SELECT note || _seq FROM people WHERE id = 2", &note, &tu_err));
    assert_string_equal(note, "z7");   /* untracked column updated in place; _seq = last change */
    st_free(note);
    /* the exact same batch again changes nothing */
    int64_t before = 0, after = 0;
    TU_OK(st_engine_query_i64(eng, "SELECT count(DISTINCT _batch_id) FROM people", &before,
                              &tu_err));
    merge(eng, e, "(1, 'ann', 'Bergen', 'x', 5, 'U')", &st);
    assert_int_equal(st.keys_changed, 0);
    assert_int_equal(st.rows_written, 0);
    TU_OK(st_engine_query_i64(eng, "SELECT count(DISTINCT _batch_id) FROM people", &after,
                              &tu_err));
    assert_int_equal(before, after);
    /* _sk is stable per (key, valid_from) and unique */
    int64_t n = 0;
    TU_OK(st_engine_query_i64(eng, "SELECT count(DISTINCT _sk) FROM people", &n, &tu_err));
    assert_int_equal(n, 3);
    st_silver_entity_free(e);
    st_engine_close(eng);
}

static void test_late_changes(void **state)
{
    (void)state;
    st_engine *eng = tu_engine();
    st_silver_entity *e = entity_from(yml);
    merge(eng, e, "(1, 'ann', 'A', '', 10, 'U'), (1, 'ann', 'C', '', 30, 'U')", NULL);
    expect(eng, "1:ann:A:10-30 1:ann:C:30-");
    /* late change in the middle of history: spliced at its sequence */
    merge(eng, e, "(1, 'ann', 'B', '', 20, 'U')", NULL);
    expect(eng, "1:ann:A:10-20 1:ann:B:20-30 1:ann:C:30-");
    /* late change before the first version */
    merge(eng, e, "(1, 'ann', 'Z', '', 5, 'U')", NULL);
    expect(eng, "1:ann:Z:5-10 1:ann:A:10-20 1:ann:B:20-30 1:ann:C:30-");
    /* a late change equal to its predecessor collapses into it */
    merge(eng, e, "(1, 'ann', 'A', '', 15, 'U')", NULL);
    expect(eng, "1:ann:Z:5-10 1:ann:A:10-20 1:ann:B:20-30 1:ann:C:30-");
    /* ... and a later split of that version restores the absorbed change:
     * in order: A@10, X@12, A@15, B@20 */
    merge(eng, e, "(1, 'ann', 'X', '', 12, 'U')", NULL);
    expect(eng, "1:ann:Z:5-10 1:ann:A:10-12 1:ann:X:12-15 1:ann:A:15-20 1:ann:B:20-30 "
                "1:ann:C:30-");
    st_silver_entity_free(e);
    st_engine_close(eng);
}

static void test_autocdc_example(void **state)
{
    (void)state;
    /* the worked example of Databricks AUTO CDC (anchors.md section 4) */
    st_engine *eng = tu_engine();
    st_silver_entity *e = entity_from(yml);
    merge(eng, e, "(123, 'Isabel', 'Monterrey', '', 1, 'I'), (125, 'Mercedes', 'Tijuana', '', 2, "
                  "'I')", NULL);
    merge(eng, e, "(125, 'Mercedes', 'Guadalajara', '', 6, 'U'), (123, NULL, NULL, '', 6, 'D')",
          NULL);
    merge(eng, e, "(125, 'Mercedes', 'Mexicali', '', 5, 'U'), (123, 'Isabel', 'Chihuahua', '', 5, "
                  "'U')", NULL);
    expect(eng, "123:Isabel:Monterrey:1-5 123:Isabel:Chihuahua:5-6 123:-:-:6-D "
                "125:Mercedes:Tijuana:2-5 125:Mercedes:Mexicali:5-6 125:Mercedes:Guadalajara:6-");
    st_silver_entity_free(e);
    st_engine_close(eng);
}

static void test_duplicates_and_ties(void **state)
{
    (void)state;
    st_engine *eng = tu_engine();
    st_silver_entity *e = entity_from(yml);
    /* exact duplicates within and across batches */
    merge(eng, e, "(1, 'a', 'P', '', 1, 'U'), (1, 'a', 'P', '', 1, 'U'), (1, 'a', 'Q', '', 2, 'U')",
          NULL);
    merge(eng, e, "(1, 'a', 'Q', '', 2, 'U'), (1, 'a', 'P', '', 1, 'U')", NULL);
    expect(eng, "1:a:P:1-2 1:a:Q:2-");
    /* a tie on the sequence: one change survives, whatever the arrival order */
    merge(eng, e, "(2, 'b', 'M', '', 1, 'U'), (2, 'b', 'N', '', 1, 'U')", NULL);
    char *h1 = history(eng, "people");
    st_engine *eng2 = tu_engine();
    merge(eng2, e, "(1, 'a', 'Q', '', 2, 'U'), (1, 'a', 'P', '', 1, 'U')", NULL);
    merge(eng2, e, "(2, 'b', 'N', '', 1, 'U')", NULL);
    merge(eng2, e, "(2, 'b', 'M', '', 1, 'U')", NULL);
    char *h2 = history(eng2, "people");
    assert_string_equal(h1, h2);
    int64_t n = 0;
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM people WHERE id = 2", &n, &tu_err));
    assert_int_equal(n, 1);
    /* a delete and an update at the same sequence: the delete wins */
    merge(eng, e, "(1, 'a', 'R', '', 3, 'U'), (1, NULL, NULL, '', 3, 'D')", NULL);
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM people WHERE id = 1 AND _is_current AND "
                                    "_is_deleted", &n, &tu_err));
    assert_int_equal(n, 1);
    st_free(h1);
    st_free(h2);
    st_engine_close(eng2);
    st_silver_entity_free(e);
    st_engine_close(eng);
}

static void test_tie_break_column(void **state)
{
    (void)state;
    st_engine *eng = tu_engine();
    st_silver_entity *e = entity_from("from: bronze.people\nkey: [id]\ntrack: [name, city]\n"
                                      "update_in_place: [note]\nsequence: seq\n"
                                      "tie_break: [note]\n");
    /* equal sequence: the larger note (e.g. an LSN) wins */
    merge(eng, e, "(1, 'a', 'late', '0002', 1, 'U'), (1, 'a', 'early', '0001', 1, 'U')", NULL);
    expect(eng, "1:a:late:1-");
    st_silver_entity_free(e);
    st_engine_close(eng);
}

static void test_delete_reinsert(void **state)
{
    (void)state;
    st_engine *eng = tu_engine();
    st_silver_entity *e = entity_from(yml);
    merge(eng, e, "(1, 'a', 'P', '', 1, 'I')", NULL);
    merge(eng, e, "(1, 'a', 'P', '', 4, 'D')", NULL);
    expect(eng, "1:a:P:1-4 1:-:-:4-D");
    /* a second delete is no new version */
    merge(eng, e, "(1, NULL, NULL, '', 6, 'D')", NULL);
    expect(eng, "1:a:P:1-4 1:-:-:4-D");
    /* reinsert with the same values as before the delete: a new version */
    merge(eng, e, "(1, 'a', 'P', '', 8, 'I')", NULL);
    expect(eng, "1:a:P:1-4 1:-:-:4-8D 1:a:P:8-");
    /* a late update between the two deletes splits the tombstone, and the
     * absorbed second delete closes it again */
    merge(eng, e, "(1, 'a', 'L', '', 5, 'U')", NULL);
    expect(eng, "1:a:P:1-4 1:-:-:4-5D 1:a:L:5-6 1:-:-:6-8D 1:a:P:8-");
    /* a delete before the first change is kept as a tombstone, so a late
     * insert before it is closed by it */
    merge(eng, e, "(2, NULL, NULL, '', 9, 'D')", NULL);
    expect(eng, "1:a:P:1-4 1:-:-:4-5D 1:a:L:5-6 1:-:-:6-8D 1:a:P:8- 2:-:-:9-D");
    merge(eng, e, "(2, 'b', 'Q', '', 3, 'I')", NULL);
    expect(eng, "1:a:P:1-4 1:-:-:4-5D 1:a:L:5-6 1:-:-:6-8D 1:a:P:8- 2:b:Q:3-9 2:-:-:9-D");
    st_silver_entity_free(e);
    st_engine_close(eng);
}

/* A change sequenced after everything a key has replaces only the key's
 * current row (closed, or absorbing a no-op); earlier versions stay as they
 * were written.  A late change afterwards still rebuilds the whole key to
 * what in-order arrival gives. */
static void test_in_order_replaces_current_only(void **state)
{
    (void)state;
    st_engine *eng = tu_engine();
    st_silver_entity *e = entity_from(yml);
    st_silver_stats st;
    merge(eng, e, "(1, 'a', 'X', '', 1, 'I'), (2, 'z', 'Z', '', 1, 'I')", &st);
    merge(eng, e, "(1, 'b', 'X', '', 5, 'U')", &st);
    merge(eng, e, "(1, 'c', 'X', '', 9, 'U')", &st);
    expect(eng, "1:a:X:1-5 1:b:X:5-9 1:c:X:9- 2:z:Z:1-");
    char *b1 = NULL, *b1_after = NULL;
    TU_OK(st_engine_query_str(eng, "SELECT _batch_id FROM people WHERE id = 1 AND _valid_from = 1",
                              &b1, &tu_err));
    /* a change: the current row closed, one version opened */
    merge(eng, e, "(1, 'd', 'X', 'n1', 12, 'U')", &st);
    assert_int_equal(st.keys_changed, 1);
    assert_int_equal(st.rows_written, 2);
    assert_int_equal(st.rows_deleted, 1);
    TU_OK(st_engine_query_str(eng, "SELECT _batch_id FROM people WHERE id = 1 AND _valid_from = 1",
                              &b1_after, &tu_err));
    assert_string_equal(b1, b1_after);
    /* a no-op: the current row absorbs it (note, _seq, _noop_seqs) */
    merge(eng, e, "(1, 'd', 'X', 'n2', 15, 'U')", &st);
    assert_int_equal(st.rows_written, 1);
    assert_int_equal(st.rows_deleted, 1);
    char *cur = NULL;
    TU_OK(st_engine_query_str(eng, "SELECT note || ' ' || _seq || ' ' || CAST(_noop_seqs AS VARCHAR) "
                                   "|| ' ' || _version FROM people WHERE id = 1 AND _is_current",
                              &cur, &tu_err));
    assert_string_equal(cur, "n2 15 [15] 4");
    st_free(cur);
    /* a delete, then a second delete absorbed by the tombstone */
    merge(eng, e, "(1, 'd', 'X', 'n3', 20, 'D')", &st);
    assert_int_equal(st.rows_written, 2);
    merge(eng, e, "(1, NULL, NULL, NULL, 22, 'D')", &st);
    assert_int_equal(st.rows_written, 1);
    cur = NULL;
    TU_OK(st_engine_query_str(eng, "SELECT coalesce(note, '-') || ' ' || _seq || ' ' || "
                                   "CAST(_noop_seqs AS VARCHAR) FROM people WHERE id = 1 AND "
                                   "_is_current AND _is_deleted",
                              &cur, &tu_err));
    assert_string_equal(cur, "- 22 [22]");
    st_free(cur);
    expect(eng, "1:a:X:1-5 1:b:X:5-9 1:c:X:9-12 1:d:X:12-20 1:-:-:20-D 2:z:Z:1-");
    /* late: splits the version that absorbed the no-op at 15 */
    merge(eng, e, "(1, 'e', 'X', '', 13, 'U')", &st);
    expect(eng, "1:a:X:1-5 1:b:X:5-9 1:c:X:9-12 1:d:X:12-13 1:e:X:13-15 1:d:X:15-20 "
                "1:-:-:20-D 2:z:Z:1-");
    /* the documented rule for update-in-place columns: the split parts of
     * the version that had absorbed the no-op at 15 both carry its note */
    char *notes = NULL;
    TU_OK(st_engine_query_str(eng, "SELECT string_agg(note, ',' ORDER BY _valid_from) FROM people "
                                   "WHERE id = 1 AND _valid_from IN (12, 15)",
                              &notes, &tu_err));
    assert_string_equal(notes, "n2,n2");
    st_free(notes);
    /* the same changes in one batch give the same table (but for that note) */
    TU_OK(st_engine_exec(eng, "CREATE TABLE people_inc AS SELECT * FROM people", &tu_err));
    TU_OK(st_engine_exec(eng, "DROP TABLE people", &tu_err));
    merge(eng, e,
          "(1, 'a', 'X', '', 1, 'I'), (2, 'z', 'Z', '', 1, 'I'), (1, 'b', 'X', '', 5, 'U'), "
          "(1, 'c', 'X', '', 9, 'U'), (1, 'd', 'X', 'n1', 12, 'U'), (1, 'd', 'X', 'n2', 15, 'U'), "
          "(1, 'd', 'X', 'n3', 20, 'D'), (1, NULL, NULL, NULL, 22, 'D'), "
          "(1, 'e', 'X', '', 13, 'U')",
          &st);
    static const char *cmp = "SELECT * EXCLUDE (note, _batch_id, _loaded_at)";
    char *sql = st_sprintf("SELECT count(*) FROM ((%s FROM people EXCEPT %s FROM people_inc) UNION "
                           "ALL (%s FROM people_inc EXCEPT %s FROM people))",
                           cmp, cmp, cmp, cmp);
    int64_t diff = -1;
    TU_OK(st_engine_query_i64(eng, sql, &diff, &tu_err));
    st_free(sql);
    assert_int_equal(diff, 0);
    TU_OK(st_engine_query_str(eng, "SELECT string_agg(note, ',' ORDER BY _valid_from) FROM people "
                                   "WHERE id = 1 AND _valid_from IN (12, 15)",
                              &notes, &tu_err));
    assert_string_equal(notes, "n1,n2");
    st_free(notes);
    st_free(b1);
    st_free(b1_after);
    st_silver_entity_free(e);
    st_engine_close(eng);
}

static void test_nulls_in_tracked(void **state)
{
    (void)state;
    st_engine *eng = tu_engine();
    st_silver_entity *e = entity_from(yml);
    merge(eng, e, "(1, 'a', NULL, '', 1, 'U')", NULL);
    /* NULL -> NULL is no change; NULL -> '' is one; (a,NULL) vs (NULL,a) differ */
    merge(eng, e, "(1, 'a', NULL, '', 2, 'U')", NULL);
    expect(eng, "1:a:-:1-");
    merge(eng, e, "(1, 'a', '', '', 3, 'U')", NULL);
    merge(eng, e, "(1, NULL, 'a', '', 4, 'U')", NULL);
    merge(eng, e, "(1, 'a', NULL, '', 5, 'U')", NULL);
    int64_t n = 0;
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM people", &n, &tu_err));
    assert_int_equal(n, 4);
    st_silver_entity_free(e);
    st_engine_close(eng);
}

static void test_schema_change_and_errors(void **state)
{
    (void)state;
    st_engine *eng = tu_engine();
    st_silver_entity *e = entity_from(yml);
    TU_OK(st_silver_merge_duckdb(eng, e,
                                 "SELECT * FROM (VALUES (1, 'a', 'P', '', 1, 'U')) "
                                 "v(id, name, city, note, seq, _op)",
                                 "people", NULL, NULL, &tu_err));
    /* the source gains a column and widens the key and sequence types: no
     * spurious versions (the hash is type-stable), the new column is ignored */
    st_silver_stats st;
    TU_OK(st_silver_merge_duckdb(eng, e,
                                 "SELECT CAST(id AS BIGINT) id, name, city, note, CAST(seq AS "
                                 "BIGINT) seq, _op, 'new' extra FROM (VALUES (1, 'a', 'P', '', 2, "
                                 "'U')) v(id, name, city, note, seq, _op)",
                                 "people", NULL, &st, &tu_err));
    assert_int_equal(st.keys_changed, 1);   /* only _noop_seqs and _seq moved */
    expect(eng, "1:a:P:1-");
    check_invariants(eng, "people");
    /* a tracked column missing from the source is an error naming it */
    st_rc rc = st_silver_merge_duckdb(eng, e, "SELECT 1 id, 'a' AS name, 2 seq, '' note, 'U' _op",
                                      "people", NULL, NULL, &tu_err);
    assert_int_equal(rc, ST_ERR_INVALID);
    assert_non_null(strstr(tu_err.msg, "city"));
    /* NULL sequence and NULL keys are refused */
    rc = st_silver_merge_duckdb(eng, e,
                                "SELECT 1 id, 'a' AS name, 'b' city, '' note, NULL::INT seq, 'U' _op",
                                "people", NULL, NULL, &tu_err);
    assert_int_equal(rc, ST_ERR_INVALID);
    assert_non_null(strstr(tu_err.msg, "NULL sequence"));
    rc = st_silver_merge_duckdb(eng, e,
                                "SELECT NULL::INT id, 'a' AS name, 'b' city, '' note, 1 seq, 'U' _op",
                                "people", NULL, NULL, &tu_err);
    assert_int_equal(rc, ST_ERR_INVALID);
    st_silver_entity_free(e);
    st_engine_close(eng);
}

static void test_missing_deletes_snapshots(void **state)
{
    (void)state;
    st_engine *eng = tu_engine();
    st_silver_entity *e = entity_from("from: bronze.people\nkey: [id]\ntrack: [name, city]\n"
                                      "sequence: seq\ndelete: missing\n");
    merge(eng, e, "(1, 'a', 'P', '', 1, ''), (2, 'b', 'Q', '', 1, '')", NULL);
    merge(eng, e, "(1, 'a', 'P', '', 2, '')", NULL);   /* 2 vanished from the snapshot */
    expect(eng, "1:a:P:1- 2:b:Q:1-2 2:-:-:2-D");
    merge(eng, e, "(1, 'a', 'P', '', 3, ''), (2, 'b', 'Q', '', 3, '')", NULL);
    expect(eng, "1:a:P:1- 2:b:Q:1-2 2:-:-:2-3D 2:b:Q:3-");
    st_silver_entity_free(e);
    st_engine_close(eng);
}

static void test_config_errors(void **state)
{
    (void)state;
    const char *bad[] = {
        "from: x\nkey: [id]\ntrack: [a]\nsequence: s\nbogus: 1\n",   /* unknown key */
        "key: [id]\ntrack: [a]\nsequence: s\n",                      /* no from */
        "from: x\nkey: [id]\ntrack: [a]\n",                          /* no sequence */
        "from: x\ntrack: [a]\nsequence: s\n",                        /* no key */
        "from: x\nkey: [id]\ntrack: [id]\nsequence: s\n",            /* key tracked */
        "from: x\nkey: {a: 1}\ntrack: [a]\nsequence: s\n",           /* not a list */
        NULL};
    for (int i = 0; bad[i]; i++) {
        st_cfg_doc *doc = NULL;
        TU_OK(st_cfg_load_string("e.yml", bad[i], strlen(bad[i]), &doc, &tu_err));
        st_silver_entity *e = NULL;
        st_rc rc = st_silver_entity_parse(st_cfg_root(doc), "e", &e, &tu_err);
        if (rc == ST_OK)
            fail_msg("case %d accepted", i);
        assert_non_null(strstr(tu_err.msg, "e.yml:"));
        st_cfg_doc_free(doc);
    }
    /* a good one, with the defaults */
    st_silver_entity *e = entity_from(yml);
    assert_int_equal(e->delete_kind, ST_SILVER_DELETE_EXPR);
    assert_int_equal(e->n_track, 2);
    assert_false(e->partition_by_set);
    st_silver_entity_free(e);
    /* loading from a project: models/silver/<name>.yml, then strata.yml */
    char *dir = tu_tempdir("silvercfg");
    char *p1 = st_sprintf("%s/strata.yml", dir);
    const char *proj = "name: t\nsilver:\n  customer:\n    from: bronze.c\n    key: [cid]\n"
                       "    track: [n]\n    sequence: s\n";
    TU_OK(st_file_write_atomic(p1, proj, strlen(proj), &tu_err));
    TU_OK(st_silver_entity_load(dir, "customer", &e, &tu_err));
    assert_string_equal(e->from, "bronze.c");
    st_silver_entity_free(e);
    assert_int_equal(st_silver_entity_load(dir, "nope", &e, &tu_err), ST_ERR_NOTFOUND);
    char *md = st_sprintf("%s/models/silver", dir);
    TU_OK(st_mkdirs(md, &tu_err));
    char *p2 = st_sprintf("%s/customer.yml", md);
    const char *m = "from: bronze.d\nkey: [cid]\ntrack: [n]\nsequence: s\n";
    TU_OK(st_file_write_atomic(p2, m, strlen(m), &tu_err));
    TU_OK(st_silver_entity_load(dir, "customer", &e, &tu_err));
    assert_string_equal(e->from, "bronze.d");
    st_silver_entity_free(e);
    char *tp = st_silver_table_path("/lake", "bronze.x");
    assert_string_equal(tp, "/lake/bronze/x");
    st_free(tp);
    st_free(p1);
    st_free(p2);
    st_free(md);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_load_change_noop),
        cmocka_unit_test(test_late_changes),
        cmocka_unit_test(test_autocdc_example),
        cmocka_unit_test(test_duplicates_and_ties),
        cmocka_unit_test(test_tie_break_column),
        cmocka_unit_test(test_delete_reinsert),
        cmocka_unit_test(test_in_order_replaces_current_only),
        cmocka_unit_test(test_nulls_in_tracked),
        cmocka_unit_test(test_schema_change_and_errors),
        cmocka_unit_test(test_missing_deletes_snapshots),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
