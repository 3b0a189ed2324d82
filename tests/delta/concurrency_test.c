/*
 * concurrency_test.c - four processes commit 200 small appends each to one
 * table at the same time: versions must stay contiguous and every append
 * must be present exactly once (no lost or duplicated commit).
 */
#include "testutil.h"
#include "delta_validate.h"
#include "strata/delta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_PROC 4
#define N_APPENDS 200

/* One child: commits its files one by one.  It refreshes its snapshot
 * only every REFRESH commits, so most commits start from a stale base and
 * must be rebased over the other writers' commits. */
#define REFRESH 20
static int child(const char *table, int who)
{
    st_engine *e = NULL;
    st_err err = {0};
    if (st_engine_open(NULL, &e, &err) != ST_OK)
        return 2;
    int rc = 0;
    st_delta_snapshot *base = NULL;
    for (int i = 0; i < N_APPENDS && rc == 0; i++) {
        if (i % REFRESH == 0) {
            st_delta_snapshot_free(base);
            base = NULL;
            if (st_delta_snapshot_load(e, table, -1, &base, &err) != ST_OK) {
                rc = 6;
                break;
            }
        }
        st_delta_txn *t = NULL;
        if (st_delta_txn_begin(e, table, base, "WRITE", &t, &err) != ST_OK) {
            rc = 3;
            break;
        }
        char k[32], rel[96], stats[64];
        snprintf(k, sizeof k, "%d", who * N_APPENDS + i);
        snprintf(rel, sizeof rel, "k=%s/part-%s.parquet", k, k);
        snprintf(stats, sizeof stats, "{\"numRecords\":1}");
        st_kv kv = {"k", k};
        st_delta_file df = {.path = rel, .part = &kv, .n_part = 1, .size = 1,
                            .data_change = true, .stats = stats, .base_row_id = -1,
                            .default_row_commit_version = -1};
        if (st_delta_txn_add(t, &df, &err) != ST_OK) {
            st_delta_txn_abort(t);
            rc = 4;
            break;
        }
        if (st_delta_txn_commit(t, NULL, &err) != ST_OK)
            rc = 5;
    }
    if (rc)
        fprintf(stderr, "child %d: %s\n", who, err.msg);
    st_delta_snapshot_free(base);
    st_engine_close(e);
    return rc;
}

static void test_four_writers(void **state)
{
    (void)state;
    char *dir = tu_tempdir("dconc");
    char *table = st_path_join(dir, "t");
    st_delta_schema *s = NULL;
    TU_OK(st_delta_schema_from_ddl("id int, k int", &s, &tu_err));
    const char *pb[] = {"k"};
    /* fewer, larger checkpoints keep the run short under ASan; the
     * checkpoints written still race between the processes */
    st_kv props[] = {{"delta.checkpointInterval", "50"}};
    st_delta_create_opts o = {.partition_by = pb, .n_partition_by = 1, .properties = props,
                              .n_properties = 1};
    TU_OK(st_delta_create(table, s, &o, &tu_err));
    st_delta_schema_free(s);
    /* one tiny Parquet file, hard-linked under every append's partition
     * directory, so the processes spend their time committing */
    st_engine *e = tu_engine();
    st_parquet_file *files = NULL;
    size_t n_files = 0;
    char *stage = st_path_join(dir, "stage");
    TU_OK(st_engine_write_parquet(e, "SELECT 1::INT AS id", stage, NULL, &files, &n_files, &tu_err));
    assert_int_equal(n_files, 1);
    for (int i = 0; i < N_PROC * N_APPENDS; i++) {
        char *pd = st_sprintf("%s/k=%d", table, i);
        char *pf = st_sprintf("%s/part-%d.parquet", pd, i);
        TU_OK(st_mkdirs(pd, &tu_err));
        assert_int_equal(link(files[0].path, pf), 0);
        st_free(pd);
        st_free(pf);
    }
    st_parquet_files_free(files, n_files);
    st_free(stage);
    st_engine_close(e);   /* no DuckDB threads across fork */
    int64_t t_start = st_mono_ns();
    pid_t pids[N_PROC];
    for (int p = 0; p < N_PROC; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0)
            _exit(child(table, p));
    }
    for (int p = 0; p < N_PROC; p++) {
        int st = 0;
        waitpid(pids[p], &st, 0);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    printf("commits done after %.1f s\n", (double)(st_mono_ns() - t_start) / 1e9);
    e = tu_engine();
    int64_t latest = -1;
    TU_OK(st_delta_latest_version(table, &latest, &tu_err));
    assert_int_equal(latest, N_PROC * N_APPENDS);
    st_delta_snapshot *snap = NULL;
    TU_OK(st_delta_snapshot_load(e, table, -1, &snap, &tu_err));
    assert_int_equal(snap->n_files, N_PROC * N_APPENDS);
    TU_OK(st_delta_register_view(e, "t", snap, &tu_err));
    int64_t n = -1;
    TU_OK(st_engine_query_i64(e, "SELECT count(*) FROM t", &n, &tu_err));
    assert_int_equal(n, N_PROC * N_APPENDS);
    TU_OK(st_engine_query_i64(e, "SELECT count(DISTINCT k) FROM t WHERE id = 1", &n, &tu_err));
    assert_int_equal(n, N_PROC * N_APPENDS);
    st_delta_snapshot_free(snap);
    printf("read back after %.1f s\n", (double)(st_mono_ns() - t_start) / 1e9);
    TU_OK(st_test_delta_validate(table, e, &tu_err));
    printf("validated after %.1f s\n", (double)(st_mono_ns() - t_start) / 1e9);
    st_engine_close(e);
    st_free(table);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_four_writers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
