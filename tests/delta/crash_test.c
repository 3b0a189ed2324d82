/*
 * crash_test.c - a child process appends in a loop and is killed with
 * SIGKILL at random points; after every kill the table must read as its
 * last committed version: the snapshot loads, the validator passes and the
 * row count equals the number of committed appends.
 */
#include "testutil.h"
#include "delta_validate.h"
#include "strata/delta.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 6

static void writer_loop(const char *table, int round)
{
    st_engine *e = NULL;
    st_err err = {0};
    if (st_engine_open(NULL, &e, &err) != ST_OK)
        _exit(2);
    for (int i = 0;; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT %d AS id", round * 100000 + i);
        if (st_delta_write(e, table, sql, NULL, NULL, &err) != ST_OK) {
            fprintf(stderr, "writer: %s\n", err.msg);
            _exit(3);
        }
    }
}

static void test_kill_loop(void **state)
{
    (void)state;
    char *dir = tu_tempdir("dcrash");
    char *table = st_path_join(dir, "t");
    st_delta_schema *s = NULL;
    TU_OK(st_delta_schema_from_ddl("id int", &s, &tu_err));
    TU_OK(st_delta_create(table, s, NULL, &tu_err));
    st_delta_schema_free(s);
    srand((unsigned)time(NULL));
    int64_t last = 0;
    for (int round = 0; round < ROUNDS; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            writer_loop(table, round);
        /* kill at a random point, at least after the child got going */
        struct timespec ts = {0, (long)(150 + rand() % 400) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int st = 0;
        waitpid(pid, &st, 0);
        assert_true(WIFSIGNALED(st));
        st_engine *e = tu_engine();
        int64_t v = -1;
        TU_OK(st_delta_latest_version(table, &v, &tu_err));
        assert_true(v >= last);
        st_delta_snapshot *snap = NULL;
        TU_OK(st_delta_snapshot_load(e, table, -1, &snap, &tu_err));
        assert_int_equal(snap->version, v);
        TU_OK(st_delta_register_view(e, "t", snap, &tu_err));
        int64_t n = -1;
        TU_OK(st_engine_query_i64(e, "SELECT count(*) FROM t", &n, &tu_err));
        /* every commit after the create appended exactly one row */
        assert_int_equal(n, v);
        TU_OK(st_engine_query_i64(e, "SELECT count(DISTINCT id) FROM t", &n, &tu_err));
        assert_int_equal(n, v);
        st_delta_snapshot_free(snap);
        TU_OK(st_test_delta_validate(table, e, &tu_err));
        st_engine_close(e);
        printf("round %d: killed at version %lld\n", round, (long long)v);
        last = v;
    }
    assert_true(last > 0);
    st_free(table);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
