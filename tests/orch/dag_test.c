/*
 * dag_test.c - the DAG engine with C-callback assets: dependency order,
 * parallel workers (overlapping intervals in the run history), a failure
 * stopping only its dependants, retries (a flaky asset succeeding on
 * attempt 3), timeouts interrupting DuckDB, run locks, cycles and the
 * selection syntax.
 */
#include "testutil.h"

#include "strata/orch.h"

#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct probe {
    pthread_mutex_t mu;
    char order[32][64];
    int n;
    int calls;
    int fail_until;      /* fail while calls < fail_until */
    int sleep_ms;
    bool fail;
    bool long_query;
} probe;

static void probe_init(probe *p)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
}

static st_rc body(void *arg, st_asset_ctx *ctx, st_err *err)
{
    probe *p = arg;
    pthread_mutex_lock(&p->mu);
    int call = ++p->calls;
    if (p->n < 32)
        snprintf(p->order[p->n++], 64, "%s", ctx->asset->key);
    pthread_mutex_unlock(&p->mu);
    if (p->sleep_ms) {
        struct timespec ts = {p->sleep_ms / 1000, (long)(p->sleep_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (p->long_query) {
        /* long enough to be interrupted; returns the engine's error */
        return st_engine_exec(ctx->eng,
                              "SELECT sum(hash(i)) FROM range(1000000000000) t(i)", err);
    }
    st_asset_log(ctx, "call %d attempt %d", call, ctx->attempt);
    if (p->fail || call < p->fail_until)
        return st_fail(err, ST_ERR_REMOTE, "%s: induced failure on call %d", ctx->asset->key, call);
    ctx->rows = 10 * call;
    return ST_OK;
}

/* Per-asset probes, one shared order log. */
typedef struct world {
    char *dir;
    st_project *p;
    probe log;           /* shared order */
} world;

static st_rc logged(void *arg, st_asset_ctx *ctx, st_err *err)
{
    probe **pp = arg;    /* [0] own behaviour, [1] shared log */
    pthread_mutex_lock(&pp[1]->mu);
    if (pp[1]->n < 32)
        snprintf(pp[1]->order[pp[1]->n++], 64, "%s", ctx->asset->key);
    pthread_mutex_unlock(&pp[1]->mu);
    return body(pp[0], ctx, err);
}

static int pos_of(const probe *log, const char *key)
{
    for (int i = 0; i < log->n; i++)
        if (!strcmp(log->order[i], key))
            return i;
    return -1;
}

static int64_t q_i64(st_orch *o, const char *sql)
{
    sqlite3 *db = st_state_db(st_orch_state(o));
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    st_state_lock(st_orch_state(o));
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st_state_unlock(st_orch_state(o));
    return v;
}

static const st_asset_result *find_res(const st_run_summary *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->assets[i].key, key))
            return &s->assets[i];
    return NULL;
}

static void test_order(void **state)
{
    (void)state;
    char *dir = tu_tempdir("orch-order");
    st_project *p = NULL;
    TU_OK(st_project_new(dir, &p, &tu_err));
    probe own, log;
    probe_init(&own);
    probe_init(&log);
    own.sleep_ms = 20;
    probe *pp[2] = {&own, &log};
    /* declared out of order on purpose: d first */
    const char *dd[] = {"silver.b", "silver.c", NULL};
    const char *db[] = {"bronze.a", NULL};
    const char *de[] = {"gold.d", NULL};
    assert_non_null(st_project_add_custom(p, "gold.d", dd, NULL, logged, pp, &tu_err));
    assert_non_null(st_project_add_custom(p, "gold.e", de, NULL, logged, pp, &tu_err));
    assert_non_null(st_project_add_custom(p, "silver.b", db, NULL, logged, pp, &tu_err));
    assert_non_null(st_project_add_custom(p, "silver.c", db, NULL, logged, pp, &tu_err));
    assert_non_null(st_project_add_custom(p, "bronze.a", NULL, NULL, logged, pp, &tu_err));
    st_orch *o = NULL;
    TU_OK(st_orch_open(p, &o, &tu_err));
    const st_dag *d = st_orch_dag(o);
    assert_int_equal(d->n, 5);
    /* topological order of the DAG itself */
    for (size_t i = 0; i < d->n; i++)
        for (size_t j = 0; j < d->n_deps[i]; j++)
            assert_true(d->deps[i][j] < i);
    st_run_opts ro = {.workers = 4};
    st_run_summary *s = NULL;
    TU_OK(st_orch_run(o, &ro, &s, &tu_err));
    assert_int_equal(s->n_ok, 5);
    assert_int_equal(log.n, 5);
    assert_true(pos_of(&log, "bronze.a") < pos_of(&log, "silver.b"));
    assert_true(pos_of(&log, "bronze.a") < pos_of(&log, "silver.c"));
    assert_true(pos_of(&log, "silver.b") < pos_of(&log, "gold.d"));
    assert_true(pos_of(&log, "silver.c") < pos_of(&log, "gold.d"));
    assert_true(pos_of(&log, "gold.d") < pos_of(&log, "gold.e"));
    /* the history agrees: every dependant started after its inputs finished */
    assert_int_equal(q_i64(o, "SELECT count(*) FROM orch_mats m JOIN orch_mats u ON"
                              " u.run_id = m.run_id AND ((m.asset='gold.d' AND u.asset IN"
                              " ('silver.b','silver.c')) OR (m.asset IN ('silver.b','silver.c')"
                              " AND u.asset='bronze.a')) WHERE m.started_ms < u.finished_ms"),
                     0);
    st_run_summary_free(s);
    st_orch_close(o);
    st_project_free(p);
    tu_rmdir(dir);
}

static void test_parallel(void **state)
{
    (void)state;
    char *dir = tu_tempdir("orch-par");
    st_project *p = NULL;
    TU_OK(st_project_new(dir, &p, &tu_err));
    probe pr;
    probe_init(&pr);
    pr.sleep_ms = 400;
    assert_non_null(st_project_add_custom(p, "gold.x1", NULL, NULL, body, &pr, &tu_err));
    assert_non_null(st_project_add_custom(p, "gold.x2", NULL, NULL, body, &pr, &tu_err));
    assert_non_null(st_project_add_custom(p, "gold.x3", NULL, NULL, body, &pr, &tu_err));
    st_orch *o = NULL;
    TU_OK(st_orch_open(p, &o, &tu_err));
    st_run_opts ro = {.workers = 3};
    st_run_summary *s = NULL;
    TU_OK(st_orch_run(o, &ro, &s, &tu_err));
    assert_int_equal(s->n_ok, 3);
    char sql[512];
    /* all three intervals overlap: the latest start precedes the earliest finish */
    snprintf(sql, sizeof sql,
             "SELECT (SELECT max(started_ms) FROM orch_mats WHERE run_id='%s') <"
             " (SELECT min(finished_ms) FROM orch_mats WHERE run_id='%s')", s->run_id, s->run_id);
    assert_int_equal(q_i64(o, sql), 1);
    assert_true(s->duration_ms < 3 * 400);
    st_run_summary_free(s);
    /* one worker: the same assets run one after the other */
    ro.workers = 1;
    TU_OK(st_orch_run(o, &ro, &s, &tu_err));
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM orch_mats a JOIN orch_mats b ON a.run_id=b.run_id AND"
             " a.id < b.id WHERE a.run_id='%s' AND b.started_ms < a.finished_ms", s->run_id);
    assert_int_equal(q_i64(o, sql), 0);
    assert_true(s->duration_ms >= 3 * 400);
    st_run_summary_free(s);
    st_orch_close(o);
    st_project_free(p);
    tu_rmdir(dir);
}

static void test_failure_stops_dependants(void **state)
{
    (void)state;
    char *dir = tu_tempdir("orch-fail");
    st_project *p = NULL;
    TU_OK(st_project_new(dir, &p, &tu_err));
    probe ok, bad;
    probe_init(&ok);
    probe_init(&bad);
    bad.fail = true;
    const char *on_a[] = {"bronze.a", NULL}, *on_b[] = {"silver.b", NULL},
               *on_c[] = {"gold.c", NULL}, *on_ab[] = {"bronze.a", "silver.b", NULL};
    assert_non_null(st_project_add_custom(p, "bronze.a", NULL, NULL, body, &ok, &tu_err));
    assert_non_null(st_project_add_custom(p, "silver.b", on_a, NULL, body, &bad, &tu_err));
    assert_non_null(st_project_add_custom(p, "gold.c", on_b, NULL, body, &ok, &tu_err));
    assert_non_null(st_project_add_custom(p, "gold.d", on_c, NULL, body, &ok, &tu_err));
    assert_non_null(st_project_add_custom(p, "gold.mixed", on_ab, NULL, body, &ok, &tu_err));
    assert_non_null(st_project_add_custom(p, "silver.e", on_a, NULL, body, &ok, &tu_err));
    assert_non_null(st_project_add_custom(p, "gold.f", NULL, NULL, body, &ok, &tu_err));
    st_orch *o = NULL;
    TU_OK(st_orch_open(p, &o, &tu_err));
    st_run_opts ro = {.workers = 2};
    st_run_summary *s = NULL;
    st_err e;
    assert_int_not_equal(st_orch_run(o, &ro, &s, &e), ST_OK);
    assert_non_null(strstr(e.msg, "silver.b"));
    assert_non_null(s);
    assert_int_equal(s->n_failed, 1);
    assert_int_equal(s->n_skipped, 3);
    assert_int_equal(s->n_ok, 3);
    assert_int_equal(find_res(s, "silver.b")->status, ST_AS_FAILED);
    assert_int_equal(find_res(s, "gold.c")->status, ST_AS_SKIPPED);
    assert_string_equal(find_res(s, "gold.c")->blocked_by, "silver.b");
    assert_int_equal(find_res(s, "gold.d")->status, ST_AS_SKIPPED);
    assert_int_equal(find_res(s, "gold.mixed")->status, ST_AS_SKIPPED);
    assert_int_equal(find_res(s, "silver.e")->status, ST_AS_OK);
    assert_int_equal(find_res(s, "gold.f")->status, ST_AS_OK);
    assert_int_equal(find_res(s, "bronze.a")->status, ST_AS_OK);
    /* the skipped assets never ran: ok ran a, e, f only */
    assert_int_equal(ok.calls, 3);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM orch_mats WHERE run_id='%s' AND status='skipped'",
             s->run_id);
    assert_int_equal(q_i64(o, sql), 3);
    snprintf(sql, sizeof sql, "SELECT n_failed * 100 + n_skipped * 10 + n_ok FROM orch_runs"
                              " WHERE run_id='%s'", s->run_id);
    assert_int_equal(q_i64(o, sql), 133);
    st_run_summary_free(s);
    st_orch_close(o);
    st_project_free(p);
    tu_rmdir(dir);
}

static void test_retries(void **state)
{
    (void)state;
    char *dir = tu_tempdir("orch-retry");
    st_project *p = NULL;
    TU_OK(st_project_new(dir, &p, &tu_err));
    p->retries = 2;
    probe flaky, flaky2;
    probe_init(&flaky);
    probe_init(&flaky2);
    flaky.fail_until = 3;   /* calls 1 and 2 fail */
    flaky2.fail_until = 3;
    assert_non_null(st_project_add_custom(p, "gold.flaky", NULL, NULL, body, &flaky, &tu_err));
    st_asset_def *one = st_project_add_custom(p, "gold.flaky_one_retry", NULL, NULL, body, &flaky2,
                                              &tu_err);
    assert_non_null(one);
    one->retries = 1;
    st_orch *o = NULL;
    TU_OK(st_orch_open(p, &o, &tu_err));
    st_run_opts ro = {.workers = 2, .retry_backoff_ms = 50};
    st_run_summary *s = NULL;
    st_err e;
    int64_t t0 = st_now_ms();
    assert_int_not_equal(st_orch_run(o, &ro, &s, &e), ST_OK);
    int64_t took = st_now_ms() - t0;
    const st_asset_result *r = find_res(s, "gold.flaky");
    assert_int_equal(r->status, ST_AS_OK);
    assert_int_equal(r->attempts, 3);
    assert_int_equal(flaky.calls, 3);
    assert_int_equal(r->rows, 30);   /* from the third call */
    const st_asset_result *r1 = find_res(s, "gold.flaky_one_retry");
    assert_int_equal(r1->status, ST_AS_FAILED);
    assert_int_equal(r1->attempts, 2);
    assert_non_null(strstr(r1->error, "call 2"));
    /* backoff: 50 ms then 100 ms (each 0.5x..1.5x with jitter) were slept */
    assert_true(took >= 75);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT attempts FROM orch_mats WHERE run_id='%s' AND"
                              " asset='gold.flaky'", s->run_id);
    assert_int_equal(q_i64(o, sql), 3);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM orch_logs WHERE run_id='%s' AND"
                              " asset='gold.flaky' AND msg LIKE 'attempt %% failed%%retrying'",
             s->run_id);
    assert_int_equal(q_i64(o, sql), 2);
    st_run_summary_free(s);
    st_orch_close(o);
    st_project_free(p);
    tu_rmdir(dir);
}

static void test_timeout(void **state)
{
    (void)state;
    char *dir = tu_tempdir("orch-timeout");
    st_project *p = NULL;
    TU_OK(st_project_new(dir, &p, &tu_err));
    p->retries = 3;   /* a timeout is not retried */
    probe slow, ok;
    probe_init(&slow);
    probe_init(&ok);
    slow.long_query = true;
    const char *on_slow[] = {"gold.slow", NULL};
    st_asset_def *a = st_project_add_custom(p, "gold.slow", NULL, NULL, body, &slow, &tu_err);
    assert_non_null(a);
    a->timeout_ms = 300;
    assert_non_null(st_project_add_custom(p, "gold.after", on_slow, NULL, body, &ok, &tu_err));
    assert_non_null(st_project_add_custom(p, "gold.other", NULL, NULL, body, &ok, &tu_err));
    st_orch *o = NULL;
    TU_OK(st_orch_open(p, &o, &tu_err));
    /* one worker: gold.other runs on the same engine after the interrupt */
    st_run_opts ro = {.workers = 1, .select = "gold.slow+ gold.other"};
    st_run_summary *s = NULL;
    st_err e;
    int64_t t0 = st_now_ms();
    assert_int_not_equal(st_orch_run(o, &ro, &s, &e), ST_OK);
    int64_t took = st_now_ms() - t0;
    assert_true(took < 20000);
    const st_asset_result *r = find_res(s, "gold.slow");
    assert_int_equal(r->status, ST_AS_FAILED);
    assert_true(r->timed_out);
    assert_int_equal(r->attempts, 1);
    assert_int_equal(slow.calls, 1);
    assert_non_null(strstr(r->error, "timed out"));
    assert_int_equal(find_res(s, "gold.after")->status, ST_AS_SKIPPED);
    assert_int_equal(find_res(s, "gold.other")->status, ST_AS_OK);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT timed_out FROM orch_mats WHERE run_id='%s' AND"
                              " asset='gold.slow'", s->run_id);
    assert_int_equal(q_i64(o, sql), 1);
    /* no lock is left behind */
    assert_int_equal(q_i64(o, "SELECT count(*) FROM orch_locks"), 0);
    st_run_summary_free(s);
    st_orch_close(o);
    st_project_free(p);
    tu_rmdir(dir);
}

static void test_lock(void **state)
{
    (void)state;
    char *dir = tu_tempdir("orch-lock");
    st_project *p = NULL;
    TU_OK(st_project_new(dir, &p, &tu_err));
    probe ok;
    probe_init(&ok);
    assert_non_null(st_project_add_custom(p, "gold.l", NULL, NULL, body, &ok, &tu_err));
    st_orch *o = NULL;
    TU_OK(st_orch_open(p, &o, &tu_err));
    char *sql = st_sprintf("INSERT INTO orch_locks VALUES('gold.l', 'other-run', %d, 0)",
                           (int)getppid());
    TU_OK(st_state_exec(st_orch_state(o), sql, &tu_err));
    st_free(sql);
    st_run_summary *s = NULL;
    st_err e;
    assert_int_not_equal(st_orch_run(o, NULL, &s, &e), ST_OK);
    assert_int_equal(s->assets[0].status, ST_AS_FAILED);
    assert_non_null(strstr(s->assets[0].error, "already running"));
    assert_int_equal(ok.calls, 0);
    st_run_summary_free(s);
    /* a lock whose process is gone is taken over */
    TU_OK(st_state_exec(st_orch_state(o),
                        "UPDATE orch_locks SET pid = 2147483000 WHERE asset='gold.l'", &tu_err));
    TU_OK(st_orch_run(o, NULL, &s, &tu_err));
    assert_int_equal(ok.calls, 1);
    assert_int_equal(q_i64(o, "SELECT count(*) FROM orch_locks"), 0);
    st_run_summary_free(s);
    st_orch_close(o);
    st_project_free(p);
    tu_rmdir(dir);
}

static void test_cycle(void **state)
{
    (void)state;
    char *dir = tu_tempdir("orch-cycle");
    st_project *p = NULL;
    TU_OK(st_project_new(dir, &p, &tu_err));
    probe ok;
    probe_init(&ok);
    const char *on_b[] = {"gold.b", NULL}, *on_a[] = {"gold.a", NULL}, *on_x[] = {"silver.x", NULL};
    assert_non_null(st_project_add_custom(p, "gold.a", on_b, NULL, body, &ok, &tu_err));
    assert_non_null(st_project_add_custom(p, "gold.b", on_a, NULL, body, &ok, &tu_err));
    st_dag *d = NULL;
    st_err e;
    assert_int_equal(st_dag_build(p, &d, &e), ST_ERR_INVALID);
    assert_non_null(strstr(e.msg, "cycle"));
    assert_non_null(strstr(e.msg, "gold.a"));
    assert_non_null(strstr(e.msg, "gold.b"));
    st_project_free(p);
    /* an unknown non-bronze input is an error; an unknown bronze one a source */
    TU_OK(st_project_new(dir, &p, &tu_err));
    assert_non_null(st_project_add_custom(p, "gold.y", on_x, NULL, body, &ok, &tu_err));
    assert_int_equal(st_dag_build(p, &d, &e), ST_ERR_NOTFOUND);
    assert_non_null(strstr(e.msg, "silver.x"));
    st_project_free(p);
    TU_OK(st_project_new(dir, &p, &tu_err));
    const char *on_bz[] = {"bronze.web_events", NULL};
    assert_non_null(st_project_add_custom(p, "silver.z", on_bz, NULL, body, &ok, &tu_err));
    TU_OK(st_dag_build(p, &d, &tu_err));
    assert_int_equal(d->n, 2);
    assert_int_equal(d->a[0]->kind, ST_ASSET_SOURCE);
    assert_string_equal(d->a[0]->key, "bronze.web_events");
    st_dag_free(d);
    st_project_free(p);
    tu_rmdir(dir);
}

/* ---- selection ---- */

static char *selected(const st_dag *d, const char *sel, const char *ex, st_rc *rc_out)
{
    bool mark[64];
    st_err e;
    st_rc rc = st_select_resolve(d, sel, ex, mark, NULL, &e);
    if (rc_out)
        *rc_out = rc;
    if (rc)
        return NULL;
    /* sorted keys, comma-joined */
    st_buf b;
    st_buf_init(&b, 0);
    const char *keys[64];
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++)
        if (mark[i])
            keys[n++] = d->a[i]->key;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(keys[j], keys[i]) < 0) {
                const char *t = keys[i];
                keys[i] = keys[j];
                keys[j] = t;
            }
    for (size_t i = 0; i < n; i++)
        st_buf_printf(&b, "%s%s", i ? "," : "", keys[i]);
    return b.data ? st_buf_take(&b) : st_strdup("");
}

static void expect_sel(const st_dag *d, const char *sel, const char *ex, const char *want)
{
    st_rc rc;
    char *got = selected(d, sel, ex, &rc);
    if (!got)
        fail_msg("selection '%s' failed: rc %d", sel ? sel : "", rc);
    if (strcmp(got, want))
        fail_msg("selection '%s' --exclude '%s': got %s, want %s", sel ? sel : "", ex ? ex : "", got, want);
    st_free(got);
}

static void test_selection(void **state)
{
    (void)state;
    char *dir = tu_tempdir("orch-sel");
    st_project *p = NULL;
    TU_OK(st_project_new(dir, &p, &tu_err));
    probe ok;
    probe_init(&ok);
    /* bronze.raw -> silver.customer -> gold.revenue (finance) -> gold.report
     *            -> silver.account  -> gold.revenue
     * bronze.web -> gold.sessions (web) */
    const char *on_raw[] = {"bronze.raw", NULL}, *on_web[] = {"bronze.web", NULL},
               *on_ca[] = {"silver.customer", "silver.account", NULL},
               *on_rev[] = {"gold.revenue", NULL};
    assert_non_null(st_project_add_custom(p, "bronze.raw", NULL, NULL, body, &ok, &tu_err));
    assert_non_null(st_project_add_custom(p, "bronze.web", NULL, "web", body, &ok, &tu_err));
    assert_non_null(st_project_add_custom(p, "silver.customer", on_raw, NULL, body, &ok, &tu_err));
    assert_non_null(st_project_add_custom(p, "silver.account", on_raw, NULL, body, &ok, &tu_err));
    assert_non_null(st_project_add_custom(p, "gold.revenue", on_ca, "finance,daily", body, &ok, &tu_err));
    assert_non_null(st_project_add_custom(p, "gold.report", on_rev, "finance", body, &ok, &tu_err));
    assert_non_null(st_project_add_custom(p, "gold.sessions", on_web, "web", body, &ok, &tu_err));
    st_dag *d = NULL;
    TU_OK(st_dag_build(p, &d, &tu_err));
    expect_sel(d, "gold.revenue", NULL, "gold.revenue");
    expect_sel(d, "revenue", NULL, "gold.revenue");
    expect_sel(d, "+gold.revenue", NULL,
               "bronze.raw,gold.revenue,silver.account,silver.customer");
    expect_sel(d, "gold.revenue+", NULL, "gold.report,gold.revenue");
    expect_sel(d, "+gold.revenue+", NULL,
               "bronze.raw,gold.report,gold.revenue,silver.account,silver.customer");
    expect_sel(d, "silver.customer+", NULL, "gold.report,gold.revenue,silver.customer");
    expect_sel(d, "layer:gold", NULL, "gold.report,gold.revenue,gold.sessions");
    expect_sel(d, "tag:finance", NULL, "gold.report,gold.revenue");
    expect_sel(d, "tag:web", NULL, "bronze.web,gold.sessions");
    expect_sel(d, "gold.sessions, silver.account", NULL, "gold.sessions,silver.account");
    expect_sel(d, "gold.sessions silver.account,bronze.raw", NULL,
               "bronze.raw,gold.sessions,silver.account");
    expect_sel(d, "silver.*", NULL, "silver.account,silver.customer");
    expect_sel(d, "layer:gold", "tag:finance", "gold.sessions");
    expect_sel(d, "+gold.report", "layer:bronze silver.account",
               "gold.report,gold.revenue,silver.customer");
    expect_sel(d, NULL, "layer:gold layer:silver", "bronze.raw,bronze.web");
    expect_sel(d, "kind:custom", "layer:gold,layer:silver", "bronze.raw,bronze.web");
    /* errors */
    static const char *const bad[] = {"+", "++", "owner:bob", "layer:", "a;b", "tag:x:y", "", NULL};
    for (size_t i = 0; bad[i]; i++) {
        st_select *s = NULL;
        st_err e;
        st_rc rc = st_select_parse(bad[i], &s, &e);
        if (rc == ST_OK)
            fail_msg("selection '%s' was accepted", bad[i]);
    }
    st_rc rc;
    assert_null(selected(d, "gold.nope", NULL, &rc));
    assert_int_equal(rc, ST_ERR_NOTFOUND);
    assert_null(selected(d, "tag:nothing", NULL, &rc));
    assert_int_equal(rc, ST_ERR_NOTFOUND);
    st_dag_free(d);
    st_project_free(p);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),   cmocka_unit_test(test_parallel),
        cmocka_unit_test(test_failure_stops_dependants),
        cmocka_unit_test(test_retries), cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_lock),    cmocka_unit_test(test_cycle),
        cmocka_unit_test(test_selection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
