/*
 * serve_sched_test.c - the scheduler inside `strata serve`: a project with a
 * gold model scheduled "* * * * *" whose previous tick is seeded two minutes
 * back (`strata schedule --once --at`), so the first tick of serve finds the
 * cron fired; serve (--tick-ms) materialises the model, and SIGTERM stops it
 * cleanly.  A project without schedules serves without a scheduler.
 */
#include "testutil.h"

#include "strata/delta.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>


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

/* Starts `strata serve --project dir --tick-ms 200`; returns once it
 * printed its listening line. */
static pid_t serve(const char *dir)
{
    const char *const args[] = {"--project", dir, "--listen", "127.0.0.1:0", "--tick-ms", "200", NULL};
    return tu_serve_start(args, 20000, NULL);
}

static int stop(pid_t pid) { return tu_serve_stop(pid, SIGTERM); }

static const char *yml_fmt = "name: schedtest\nlake: ./lake\nstate: ./state.db\n"
                             "collector:\n  listen: 127.0.0.1:0\n"
                             "  event_log: {dir: ./eventlog}\n"
                             "  sources:\n    web: {key_env: TST_SCHED_KEY, families: [web_events]}\n"
                             "loader: {enabled: false}\n%s";

static void test_serve_runs_schedule(void **state)
{
    (void)state;
    char *dir = tu_tempdir("servesched");
    char *yml = st_sprintf(yml_fmt, "schedule:\n  gold.answer: \"* * * * *\"\n");
    write_file(dir, "strata.yml", yml);
    st_free(yml);
    write_file(dir, "models/gold/answer.sql", "SELECT 42::BIGINT AS answer\n");
    /* the first tick of an asset only records the time: seed it 2 min back */
    char *out = NULL;
    int code = tu_run(&out, "'%s' schedule --once --at %lld --project '%s' 2>&1", tu_strata_bin(),
                      (long long)(st_now_ms() - 120000), dir);
    if (code != 0)
        fail_msg("strata schedule --once: exit %d: %s", code, out ? out : "");
    st_free(out);
    char *table = st_path_join(dir, "lake/gold/answer");
    int64_t v = -1;
    st_delta_latest_version(table, &v, NULL);
    assert_true(v < 0);   /* nothing ran yet */

    pid_t pid = serve(dir);
    int64_t deadline = st_now_ms() + 30000;
    while (st_now_ms() < deadline) {
        v = -1;
        st_delta_latest_version(table, &v, NULL);
        if (v >= 0)
            break;
        usleep(100 * 1000);
    }
    int status = stop(pid);
    if (v < 0)
        fail_msg("serve did not materialise gold.answer within 30 s");
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    st_engine *eng = tu_engine();
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(eng, table, -1, &s, &tu_err));
    TU_OK(st_delta_register_view(eng, "answer", s, &tu_err));
    st_delta_snapshot_free(s);
    int64_t got = 0;
    TU_OK(st_engine_query_i64(eng, "SELECT sum(answer) FROM answer", &got, &tu_err));
    assert_int_equal(got, 42);
    /* the run is recorded as a scheduled one */
    code = tu_run(&out, "'%s' runs --project '%s' 2>&1", tu_strata_bin(), dir);
    assert_int_equal(code, 0);
    assert_non_null(strstr(out, "schedule"));
    st_free(out);
    st_engine_close(eng);
    st_free(table);
    tu_rmdir(dir);
}

static void test_serve_without_schedules(void **state)
{
    (void)state;
    char *dir = tu_tempdir("servenosched");
    char *yml = st_sprintf(yml_fmt, "");
    write_file(dir, "strata.yml", yml);
    st_free(yml);
    write_file(dir, "models/gold/answer.sql", "SELECT 42::BIGINT AS answer\n");
    pid_t pid = serve(dir);
    usleep(600 * 1000);
    int status = stop(pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* unscheduled: nothing materialised, no orchestrator state written */
    char *table = st_path_join(dir, "lake/gold/answer");
    int64_t v = -1;
    st_delta_latest_version(table, &v, NULL);
    assert_true(v < 0);
    st_free(table);
    tu_rmdir(dir);
}

int main(void)
{
    setenv("TST_SCHED_KEY", "sched-test-key", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_serve_runs_schedule, tu_serve_teardown),
        cmocka_unit_test_teardown(test_serve_without_schedules, tu_serve_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
