/*
 * txn_test.c - conflict classification of concurrent transactions: two
 * transactions begun on the same snapshot, committed one after the other;
 * logical-file identity (path + deletion vector) within a commit, and the
 * protocol upgrade that deletion vectors need.
 */
#include "testutil.h"
#include "delta_validate.h"
#include "strata/delta.h"

#include <string.h>

static st_engine *eng;
static char *dir;

static int setup(void **state)
{
    (void)state;
    eng = tu_engine();
    dir = tu_tempdir("dtxn");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    st_engine_close(eng);
    tu_rmdir(dir);
    return 0;
}

static char *mk_table(const char *name, bool partitioned)
{
    char *p = st_path_join(dir, name);
    st_delta_schema *s = NULL;
    TU_OK(st_delta_schema_from_ddl("id int, p string", &s, &tu_err));
    const char *pb[] = {"p"};
    st_delta_create_opts o = {.partition_by = pb, .n_partition_by = partitioned ? 1 : 0};
    TU_OK(st_delta_create(p, s, &o, &tu_err));
    st_delta_schema_free(s);
    TU_OK(st_delta_write(eng, p, "SELECT i::INT AS id, 'a' AS p FROM range(4) r(i)", NULL, NULL,
                         &tu_err));
    TU_OK(st_delta_write(eng, p, "SELECT 10 + i::INT AS id, 'b' AS p FROM range(4) r(i)", NULL,
                         NULL, &tu_err));
    return p;
}

/* A fresh data file written directly, added through the txn API. */
static void add_file(st_delta_txn *t, const char *table, const char *part, int id)
{
    char *sub = part ? st_sprintf("p=%s", part) : st_strdup("");
    char *d = st_path_join(table, sub);
    char *sql = st_sprintf("SELECT %d::INT AS id", id);
    st_parquet_file *f = NULL;
    size_t n = 0;
    TU_OK(st_engine_write_parquet(eng, sql, d, NULL, &f, &n, &tu_err));
    assert_int_equal(n, 1);
    const char *base = strrchr(f[0].path, '/') + 1;
    char *rel = part ? st_sprintf("p=%s/%s", part, base) : st_strdup(base);
    st_kv kv = {"p", (char *)part};
    st_delta_file df = {.path = rel, .part = &kv, .n_part = 1, .size = f[0].size,
                        .data_change = true, .base_row_id = -1,
                        .default_row_commit_version = -1};
    char *stats = st_sprintf("{\"numRecords\":1,\"minValues\":{\"id\":%d},\"maxValues\":{\"id\":%d},\"nullCount\":{\"id\":0}}", id, id);
    df.stats = stats;
    TU_OK(st_delta_txn_add(t, &df, &tu_err));
    st_free(stats);
    st_free(rel);
    st_parquet_files_free(f, n);
    st_free(sql);
    st_free(d);
    st_free(sub);
}

static const st_delta_file *find_file(const st_delta_snapshot *s, const char *part)
{
    for (size_t i = 0; i < s->n_files; i++)
        if (s->files[i]->n_part && s->files[i]->part[0].value &&
            !strcmp(s->files[i]->part[0].value, part))
            return s->files[i];
    fail_msg("no file in partition %s", part);
    return NULL;
}

static void test_append_append(void **state)
{
    (void)state;
    char *t = mk_table("aa", true);
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(eng, t, -1, &s, &tu_err));
    st_delta_txn *a = NULL, *b = NULL;
    TU_OK(st_delta_txn_begin(eng, t, s, "WRITE", &a, &tu_err));
    TU_OK(st_delta_txn_begin(eng, t, s, "WRITE", &b, &tu_err));
    add_file(a, t, "a", 100);
    add_file(b, t, "a", 101);
    int64_t va = -1, vb = -1;
    TU_OK(st_delta_txn_commit(a, &va, &tu_err));
    TU_OK(st_delta_txn_commit(b, &vb, &tu_err));
    assert_int_equal(va, 3);
    assert_int_equal(vb, 4);
    st_delta_snapshot_free(s);
    TU_OK(st_delta_snapshot_load(eng, t, -1, &s, &tu_err));
    assert_int_equal(s->n_files, 4);
    st_delta_snapshot_free(s);
    TU_OK(st_test_delta_validate(t, eng, &tu_err));
    st_free(t);
}

static void test_delete_delete(void **state)
{
    (void)state;
    char *t = mk_table("dd", true);
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(eng, t, -1, &s, &tu_err));
    const st_delta_file *f = find_file(s, "a");
    st_delta_txn *a = NULL, *b = NULL;
    TU_OK(st_delta_txn_begin(eng, t, s, "DELETE", &a, &tu_err));
    TU_OK(st_delta_txn_begin(eng, t, s, "DELETE", &b, &tu_err));
    TU_OK(st_delta_txn_remove(a, f, true, &tu_err));
    TU_OK(st_delta_txn_remove(b, f, true, &tu_err));
    st_delta_txn_read_predicate(a, "p = 'a'");
    st_delta_txn_read_predicate(b, "p = 'a'");
    TU_OK(st_delta_txn_commit(a, NULL, &tu_err));
    assert_int_equal(st_delta_txn_commit(b, NULL, &tu_err), ST_ERR_CONFLICT);
    assert_non_null(strstr(tu_err.msg, "version 3") ? strstr(tu_err.msg, "version 3")
                                                     : strstr(tu_err.msg, "commit 3"));
    assert_non_null(strstr(tu_err.msg, "removed"));
    /* the same file removed twice in one commit is refused up front */
    TU_OK(st_delta_txn_begin(eng, t, s, "DELETE", &a, &tu_err));
    TU_OK(st_delta_txn_remove(a, f, true, &tu_err));
    assert_int_equal(st_delta_txn_remove(a, f, true, &tu_err), ST_ERR_INVALID);
    st_delta_txn_abort(a);
    st_delta_snapshot_free(s);
    TU_OK(st_test_delta_validate(t, eng, &tu_err));
    st_free(t);
}

static void test_metadata_conflict(void **state)
{
    (void)state;
    char *t = mk_table("md", true);
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(eng, t, -1, &s, &tu_err));
    st_delta_txn *a = NULL, *b = NULL;
    TU_OK(st_delta_txn_begin(eng, t, s, "SET TBLPROPERTIES", &a, &tu_err));
    TU_OK(st_delta_txn_begin(eng, t, s, "WRITE", &b, &tu_err));
    TU_OK(st_delta_txn_set_property(a, "delta.appendOnly", "false", &tu_err));
    add_file(b, t, "a", 5);
    TU_OK(st_delta_txn_commit(a, NULL, &tu_err));
    assert_int_equal(st_delta_txn_commit(b, NULL, &tu_err), ST_ERR_CONFLICT);
    assert_non_null(strstr(tu_err.msg, "metadata"));
    /* same app id in concurrent commits conflicts */
    st_delta_snapshot_free(s);
    TU_OK(st_delta_snapshot_load(eng, t, -1, &s, &tu_err));
    TU_OK(st_delta_txn_begin(eng, t, s, "WRITE", &a, &tu_err));
    TU_OK(st_delta_txn_begin(eng, t, s, "WRITE", &b, &tu_err));
    TU_OK(st_delta_txn_set_app(a, "app", 1, &tu_err));
    TU_OK(st_delta_txn_set_app(b, "app", 1, &tu_err));
    add_file(a, t, "a", 6);
    add_file(b, t, "a", 7);
    TU_OK(st_delta_txn_commit(a, NULL, &tu_err));
    assert_int_equal(st_delta_txn_commit(b, NULL, &tu_err), ST_ERR_CONFLICT);
    assert_non_null(strstr(tu_err.msg, "app"));
    st_delta_snapshot_free(s);
    TU_OK(st_test_delta_validate(t, eng, &tu_err));
    st_free(t);
}

static void test_overwrite_vs_append(void **state)
{
    (void)state;
    char *t = mk_table("oa", true);
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(eng, t, -1, &s, &tu_err));
    const st_delta_file *fa = find_file(s, "a");
    /* overwrite of partition a vs an append to partition b: no conflict */
    st_delta_txn *ow = NULL, *ap = NULL;
    TU_OK(st_delta_txn_begin(eng, t, s, "WRITE", &ow, &tu_err));
    TU_OK(st_delta_txn_begin(eng, t, s, "WRITE", &ap, &tu_err));
    TU_OK(st_delta_txn_remove(ow, fa, true, &tu_err));
    add_file(ow, t, "a", 50);
    st_delta_txn_read_predicate(ow, "p = 'a'");
    add_file(ap, t, "b", 51);
    TU_OK(st_delta_txn_commit(ap, NULL, &tu_err));
    TU_OK(st_delta_txn_commit(ow, NULL, &tu_err));
    st_delta_snapshot_free(s);
    /* overwrite of partition a vs an append to partition a: conflict */
    TU_OK(st_delta_snapshot_load(eng, t, -1, &s, &tu_err));
    fa = find_file(s, "a");
    TU_OK(st_delta_txn_begin(eng, t, s, "WRITE", &ow, &tu_err));
    TU_OK(st_delta_txn_begin(eng, t, s, "WRITE", &ap, &tu_err));
    TU_OK(st_delta_txn_remove(ow, fa, true, &tu_err));
    st_delta_txn_read_predicate(ow, "p = 'a'");
    add_file(ap, t, "a", 52);
    TU_OK(st_delta_txn_commit(ap, NULL, &tu_err));
    assert_int_equal(st_delta_txn_commit(ow, NULL, &tu_err), ST_ERR_CONFLICT);
    assert_non_null(strstr(tu_err.msg, "added"));
    /* a whole-table read conflicts with any concurrent add */
    TU_OK(st_delta_txn_begin(eng, t, s, "WRITE", &ow, &tu_err));
    st_delta_txn_read_predicate(ow, NULL);
    add_file(ow, t, "b", 53);
    assert_int_equal(st_delta_txn_commit(ow, NULL, &tu_err), ST_ERR_CONFLICT);
    st_delta_snapshot_free(s);
    TU_OK(st_test_delta_validate(t, eng, &tu_err));
    st_free(t);
}

static void test_write_ops_conflict(void **state)
{
    (void)state;
    /* a delete whose snapshot is stale sees the concurrent delete */
    char *t = mk_table("ops", false);
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(eng, t, -1, &s, &tu_err));
    st_delta_txn *a = NULL;
    TU_OK(st_delta_txn_begin(eng, t, s, "DELETE", &a, &tu_err));
    TU_OK(st_delta_txn_remove(a, s->files[0], true, &tu_err));
    st_delta_txn_read_predicate(a, NULL);
    TU_OK(st_delta_delete(eng, t, "id = 0", NULL, &tu_err));
    assert_int_equal(st_delta_txn_commit(a, NULL, &tu_err), ST_ERR_CONFLICT);
    st_delta_snapshot_free(s);
    TU_OK(st_test_delta_validate(t, eng, &tu_err));
    st_free(t);
}

static bool has_feat(char **list, size_t n, const char *f)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], f))
            return true;
    return false;
}

static int64_t live_rows(const char *t)
{
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(eng, t, -1, &s, &tu_err));
    char *sql = NULL;
    TU_OK(st_delta_scan_sql(eng, s, NULL, &sql, &tu_err));
    char *q = st_sprintf("SELECT count(*) FROM (%s)", sql);
    int64_t n = -1;
    TU_OK(st_engine_query_i64(eng, q, &n, &tu_err));
    st_free(q);
    st_free(sql);
    st_delta_snapshot_free(s);
    return n;
}

/* Gives file `f` of s the rows `pos` as deleted: remove(path, old DV) +
 * add(path, new DV) in one commit, the protocol's way to attach a DV. */
static st_rc dv_update(const char *t, const st_delta_snapshot *s, const st_delta_file *f,
                       const uint64_t *pos, size_t n, st_delta_txn **keep)
{
    st_delta_dv dv;
    memset(&dv, 0, sizeof dv);
    TU_OK(st_delta_dv_build(t, pos, n, f->has_dv ? &f->dv : NULL, &dv, NULL, &tu_err));
    st_delta_txn *x = NULL;
    TU_OK(st_delta_txn_begin(eng, t, s, "DELETE", &x, &tu_err));
    TU_OK(st_delta_txn_remove(x, f, true, &tu_err));
    st_delta_file nf = *f;
    nf.has_dv = true;
    nf.dv = dv;
    TU_OK(st_delta_txn_add(x, &nf, &tu_err));
    st_delta_dv_clear(&dv);
    if (keep) {
        *keep = x;
        return ST_OK;
    }
    return st_delta_txn_commit(x, NULL, &tu_err);
}

static void test_same_path_dv(void **state)
{
    (void)state;
    char *t = mk_table("dvsame", true);
    st_delta_txn *cx = NULL;
    TU_OK(st_delta_txn_begin(eng, t, NULL, "SET TBLPROPERTIES", &cx, &tu_err));
    TU_OK(st_delta_txn_set_property(cx, "delta.enableChangeDataFeed", "true", &tu_err));
    TU_OK(st_delta_txn_commit(cx, NULL, &tu_err));
    TU_OK(st_delta_dv_enable(eng, t, &tu_err));
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(eng, t, -1, &s, &tu_err));
    assert_int_equal(s->protocol.min_reader, 3);
    assert_int_equal(s->protocol.min_writer, 7);
    char *path_a = st_strdup(find_file(s, "a")->path);
    uint64_t p1[] = {1};
    TU_OK(dv_update(t, s, find_file(s, "a"), p1, 1, NULL));
    st_delta_snapshot_free(s);
    TU_OK(st_delta_snapshot_load(eng, t, -1, &s, &tu_err));
    /* one live file per path, now with its DV, under the same path */
    assert_int_equal(s->n_files, 2);
    const st_delta_file *fa = find_file(s, "a");
    assert_string_equal(fa->path, path_a);
    assert_true(fa->has_dv);
    assert_int_equal(fa->dv.cardinality, 1);
    assert_int_equal(live_rows(t), 7);
    /* the change feed pairs the remove and add of the path: one delete */
    char *cdf = NULL;
    TU_OK(st_delta_changes_sql(eng, t, s->version, s->version, &cdf, &tu_err));
    char *q = st_sprintf("SELECT count(*) FILTER (WHERE _change_type = 'delete' AND id = 1) * 10 "
                         "+ count(*) FROM (%s)", cdf);
    int64_t got = -1;
    TU_OK(st_engine_query_i64(eng, q, &got, &tu_err));
    assert_int_equal(got, 11);
    st_free(q);
    st_free(cdf);
    /* a second update replaces the DV (remove with the old DV id) */
    uint64_t p2[] = {3};
    TU_OK(dv_update(t, s, fa, p2, 1, NULL));
    st_delta_snapshot_free(s);
    TU_OK(st_delta_snapshot_load(eng, t, -1, &s, &tu_err));
    assert_int_equal(s->n_files, 2);
    fa = find_file(s, "a");
    assert_string_equal(fa->path, path_a);
    assert_int_equal(fa->dv.cardinality, 2);
    assert_int_equal(live_rows(t), 6);
    TU_OK(st_test_delta_validate(t, eng, &tu_err));

    /* two concurrent DV updates of one file: the second conflicts */
    st_delta_txn *x = NULL;
    uint64_t p3[] = {0};
    TU_OK(dv_update(t, s, fa, p3, 1, &x));
    TU_OK(dv_update(t, s, fa, p2, 1, NULL));
    assert_int_equal(st_delta_txn_commit(x, NULL, &tu_err), ST_ERR_CONFLICT);
    assert_non_null(strstr(tu_err.msg, "removed file"));

    /* the same logical file (path + DV) twice in one commit is refused */
    TU_OK(st_delta_txn_begin(eng, t, s, "WRITE", &x, &tu_err));
    st_delta_file nf = *fa;
    TU_OK(st_delta_txn_add(x, &nf, &tu_err));
    assert_int_equal(st_delta_txn_add(x, &nf, &tu_err), ST_ERR_INVALID);
    assert_non_null(strstr(tu_err.msg, "twice"));
    st_delta_txn_abort(x);
    /* ...and so is a remove and an add with the same DV */
    TU_OK(st_delta_txn_begin(eng, t, s, "WRITE", &x, &tu_err));
    TU_OK(st_delta_txn_remove(x, fa, true, &tu_err));
    assert_int_equal(st_delta_txn_add(x, fa, &tu_err), ST_ERR_INVALID);
    st_delta_txn_abort(x);
    st_delta_snapshot_free(s);
    TU_OK(st_test_delta_validate(t, eng, &tu_err));
    st_free(path_a);
    st_free(t);
}

static void test_dv_protocol(void **state)
{
    (void)state;
    /* created with the property: 3/7 and the feature from version 0 */
    char *p = st_path_join(dir, "dvproto");
    st_delta_schema *sc = NULL;
    TU_OK(st_delta_schema_from_ddl("id int, p string", &sc, &tu_err));
    st_kv props[] = {{"delta.enableDeletionVectors", "true"}};
    st_delta_create_opts o = {.properties = props, .n_properties = 1};
    TU_OK(st_delta_create(p, sc, &o, &tu_err));
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(eng, p, -1, &s, &tu_err));
    assert_int_equal(s->version, 0);
    assert_int_equal(s->protocol.min_reader, 3);
    assert_int_equal(s->protocol.min_writer, 7);
    assert_true(has_feat(s->protocol.reader_features, s->protocol.n_reader_features,
                         "deletionVectors"));
    assert_true(has_feat(s->protocol.writer_features, s->protocol.n_writer_features,
                         "deletionVectors"));
    /* legacy writer 2 implied these */
    assert_true(has_feat(s->protocol.writer_features, s->protocol.n_writer_features,
                         "appendOnly"));
    assert_true(has_feat(s->protocol.writer_features, s->protocol.n_writer_features,
                         "invariants"));
    st_delta_snapshot_free(s);
    TU_OK(st_test_delta_validate(p, eng, &tu_err));
    st_free(p);

    /* set on a CDF table (1/4): upgraded in the same commit as metaData */
    p = st_path_join(dir, "dvprop");
    st_kv cdf[] = {{"delta.enableChangeDataFeed", "true"}};
    st_delta_create_opts o2 = {.properties = cdf, .n_properties = 1};
    TU_OK(st_delta_create(p, sc, &o2, &tu_err));
    TU_OK(st_delta_snapshot_load(eng, p, -1, &s, &tu_err));
    assert_int_equal(s->protocol.min_writer, 4);
    st_delta_snapshot_free(s);
    st_delta_txn *t = NULL;
    TU_OK(st_delta_txn_begin(eng, p, NULL, "SET TBLPROPERTIES", &t, &tu_err));
    TU_OK(st_delta_txn_set_property(t, "delta.enableDeletionVectors", "true", &tu_err));
    int64_t v = -1;
    TU_OK(st_delta_txn_commit(t, &v, &tu_err));
    assert_int_equal(v, 1);
    TU_OK(st_delta_snapshot_load(eng, p, -1, &s, &tu_err));
    assert_int_equal(s->protocol.min_reader, 3);
    assert_int_equal(s->protocol.min_writer, 7);
    assert_string_equal(st_delta_config(s, "delta.enableDeletionVectors", ""), "true");
    const char *want[] = {"appendOnly", "invariants", "checkConstraints", "changeDataFeed",
                          "generatedColumns", "deletionVectors"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!has_feat(s->protocol.writer_features, s->protocol.n_writer_features, want[i]))
            fail_msg("writer feature %s missing after the upgrade", want[i]);
    assert_true(has_feat(s->protocol.reader_features, s->protocol.n_reader_features,
                         "deletionVectors"));
    st_delta_snapshot_free(s);
    /* the upgrade is in version 1 itself, next to the metaData */
    char *c1 = st_sprintf("%s/_delta_log/%020d.json", p, 1);
    char *data = NULL;
    size_t len = 0;
    TU_OK(st_file_read(c1, 1 << 20, &data, &len, &tu_err));
    assert_non_null(strstr(data, "\"protocol\""));
    assert_non_null(strstr(data, "\"metaData\""));
    st_free(data);
    st_free(c1);
    /* enabling again is a no-op */
    TU_OK(st_delta_dv_enable(eng, p, &tu_err));
    int64_t latest = -1;
    TU_OK(st_delta_latest_version(p, &latest, &tu_err));
    assert_int_equal(latest, 1);
    TU_OK(st_test_delta_validate(p, eng, &tu_err));
    st_delta_schema_free(sc);
    st_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_append),
        cmocka_unit_test(test_delete_delete),
        cmocka_unit_test(test_metadata_conflict),
        cmocka_unit_test(test_overwrite_vs_append),
        cmocka_unit_test(test_write_ops_conflict),
        cmocka_unit_test(test_same_path_dv),
        cmocka_unit_test(test_dv_protocol),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
