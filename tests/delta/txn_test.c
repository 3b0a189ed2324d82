/*
 * txn_test.c - conflict classification of concurrent transactions: two
 * transactions begun on the same snapshot, committed one after the other.
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_append),
        cmocka_unit_test(test_delete_delete),
        cmocka_unit_test(test_metadata_conflict),
        cmocka_unit_test(test_overwrite_vs_append),
        cmocka_unit_test(test_write_ops_conflict),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
