/*
 * history.c - the orchestrator's tables in the state database: runs,
 * materialisations (status, attempts, version, rows, bytes, duration,
 * error), the input versions each materialisation read, logs, run locks,
 * schedule ticks and backfill progress.  Added through st_state_migrate
 * (module "orch"); printing for `strata runs` is at the end.
 */
#include "orch_int.h"

#include <errno.h>
#include <signal.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

static const char *const migrations[] = {
    "CREATE TABLE orch_runs(run_id TEXT PRIMARY KEY, started_ms INTEGER NOT NULL,"
    " finished_ms INTEGER, status TEXT NOT NULL, trigger TEXT NOT NULL, selection TEXT,"
    " n_ok INTEGER NOT NULL DEFAULT 0, n_failed INTEGER NOT NULL DEFAULT 0,"
    " n_skipped INTEGER NOT NULL DEFAULT 0, pid INTEGER);"
    "CREATE INDEX orch_runs_started ON orch_runs(started_ms);"
    "CREATE TABLE orch_mats(id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL,"
    " asset TEXT NOT NULL, partition TEXT, status TEXT NOT NULL, attempts INTEGER NOT NULL,"
    " started_ms INTEGER NOT NULL, finished_ms INTEGER NOT NULL, duration_ms INTEGER NOT NULL,"
    " version INTEGER, rows INTEGER, bytes INTEGER, checks_failed INTEGER NOT NULL DEFAULT 0,"
    " timed_out INTEGER NOT NULL DEFAULT 0, error TEXT);"
    "CREATE INDEX orch_mats_asset ON orch_mats(asset, status, id);"
    "CREATE INDEX orch_mats_run ON orch_mats(run_id);"
    "CREATE TABLE orch_inputs(mat_id INTEGER NOT NULL, input TEXT NOT NULL,"
    " stamp INTEGER NOT NULL);"
    "CREATE INDEX orch_inputs_mat ON orch_inputs(mat_id);"
    "CREATE TABLE orch_logs(id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL,"
    " asset TEXT, ts_ms INTEGER NOT NULL, level TEXT NOT NULL, msg TEXT NOT NULL);"
    "CREATE INDEX orch_logs_run ON orch_logs(run_id);"
    "CREATE TABLE orch_locks(asset TEXT PRIMARY KEY, run_id TEXT NOT NULL, pid INTEGER NOT NULL,"
    " acquired_ms INTEGER NOT NULL);"
    "CREATE TABLE orch_schedules(asset TEXT PRIMARY KEY, last_tick_ms INTEGER NOT NULL,"
    " last_fire_ms INTEGER, last_run_id TEXT, missed INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE orch_backfills(backfill_id TEXT PRIMARY KEY, asset TEXT NOT NULL,"
    " range_from TEXT, range_to TEXT, created_ms INTEGER NOT NULL, finished_ms INTEGER,"
    " status TEXT NOT NULL);"
    "CREATE TABLE orch_backfill_parts(backfill_id TEXT NOT NULL, partition TEXT NOT NULL,"
    " status TEXT NOT NULL, run_id TEXT, finished_ms INTEGER, error TEXT,"
    " PRIMARY KEY(backfill_id, partition));",
};

st_rc oh_migrate(st_state *s, st_err *err)
{
    return st_state_migrate(s, "orch", migrations, sizeof migrations / sizeof migrations[0], err);
}

static st_rc db_fail(sqlite3 *db, st_err *err, const char *what)
{
    return st_fail(err, ST_ERR_IO, "state: %s: %s", what, sqlite3_errmsg(db));
}

/* Runs sql on the raw handle; the caller holds the state lock (st_state_exec
 * would take it again). */
static st_rc raw_exec(st_orch *o, const char *sql, st_err *err)
{
    sqlite3 *db = st_state_db(o->state);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(db, err, sql);
    return ST_OK;
}

/* Prepares sql under the state lock (caller unlocks). */
static st_rc prep(st_orch *o, const char *sql, sqlite3_stmt **st, st_err *err)
{
    sqlite3 *db = st_state_db(o->state);
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
        return db_fail(db, err, sql);
    return ST_OK;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

st_rc oh_run_begin(st_orch *o, const char *run_id, const char *trigger, const char *selection,
                   st_err *err)
{
    st_state_lock(o->state);
    sqlite3_stmt *st = NULL;
    st_rc rc = prep(o, "INSERT INTO orch_runs(run_id, started_ms, status, trigger, selection, pid)"
                       " VALUES(?,?,'running',?,?,?)", &st, err);
    if (rc == ST_OK) {
        bind_text(st, 1, run_id);
        sqlite3_bind_int64(st, 2, st_now_ms());
        bind_text(st, 3, trigger);
        bind_text(st, 4, selection);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)getpid());
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(st_state_db(o->state), err, "recording run");
    }
    sqlite3_finalize(st);
    st_state_unlock(o->state);
    return rc;
}

st_rc oh_run_end(st_orch *o, const st_run_summary *s, st_err *err)
{
    st_state_lock(o->state);
    sqlite3_stmt *st = NULL;
    st_rc rc = prep(o, "UPDATE orch_runs SET finished_ms=?, status=?, n_ok=?, n_failed=?,"
                       " n_skipped=? WHERE run_id=?", &st, err);
    if (rc == ST_OK) {
        sqlite3_bind_int64(st, 1, st_now_ms());
        bind_text(st, 2, s->n_failed ? "failed" : "ok");
        sqlite3_bind_int64(st, 3, (sqlite3_int64)(s->n_ok + s->n_observed));
        sqlite3_bind_int64(st, 4, (sqlite3_int64)s->n_failed);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)s->n_skipped);
        bind_text(st, 6, s->run_id);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(st_state_db(o->state), err, "finishing run");
    }
    sqlite3_finalize(st);
    st_state_unlock(o->state);
    return rc;
}

st_rc oh_mat_insert(st_orch *o, const char *run_id, const st_asset_result *r, int64_t started_ms,
                    int64_t finished_ms, const char *const *inputs, const int64_t *stamps,
                    size_t n_inputs, int64_t *out_id, st_err *err)
{
    st_state_lock(o->state);
    sqlite3 *db = st_state_db(o->state);
    sqlite3_stmt *st = NULL;
    st_rc rc = raw_exec(o, "BEGIN IMMEDIATE", err);
    rc = rc ? rc : prep(o, "INSERT INTO orch_mats(run_id, asset, partition, status, attempts,"
                           " started_ms, finished_ms, duration_ms, version, rows, bytes,"
                           " checks_failed, timed_out, error) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        &st, err);
    if (rc == ST_OK) {
        bind_text(st, 1, run_id);
        bind_text(st, 2, r->key);
        bind_text(st, 3, r->partition);
        bind_text(st, 4, st_asset_status_name(r->status));
        sqlite3_bind_int(st, 5, r->attempts);
        sqlite3_bind_int64(st, 6, started_ms);
        sqlite3_bind_int64(st, 7, finished_ms);
        sqlite3_bind_int64(st, 8, r->duration_ms);
        if (r->version >= 0)
            sqlite3_bind_int64(st, 9, r->version);
        else
            sqlite3_bind_null(st, 9);
        sqlite3_bind_int64(st, 10, r->rows);
        sqlite3_bind_int64(st, 11, r->bytes);
        sqlite3_bind_int(st, 12, r->n_checks_failed);
        sqlite3_bind_int(st, 13, r->timed_out ? 1 : 0);
        bind_text(st, 14, r->error);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(db, err, "recording materialisation");
    }
    sqlite3_finalize(st);
    st = NULL;
    int64_t id = sqlite3_last_insert_rowid(db);
    if (rc == ST_OK && n_inputs)
        rc = prep(o, "INSERT INTO orch_inputs(mat_id, input, stamp) VALUES(?,?,?)", &st, err);
    for (size_t i = 0; rc == ST_OK && i < n_inputs; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, id);
        bind_text(st, 2, inputs[i]);
        sqlite3_bind_int64(st, 3, stamps[i]);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(db, err, "recording inputs");
    }
    sqlite3_finalize(st);
    st_err e2;
    raw_exec(o, rc ? "ROLLBACK" : "COMMIT", rc ? &e2 : err);
    st_state_unlock(o->state);
    if (rc == ST_OK && out_id)
        *out_id = id;
    return rc;
}

void oh_log(st_orch *o, const char *run_id, const char *asset, const char *level,
            const char *msg)
{
    st_state_lock(o->state);
    sqlite3_stmt *st = NULL;
    if (prep(o, "INSERT INTO orch_logs(run_id, asset, ts_ms, level, msg) VALUES(?,?,?,?,?)", &st,
             NULL) == ST_OK) {
        bind_text(st, 1, run_id);
        bind_text(st, 2, asset);
        sqlite3_bind_int64(st, 3, st_now_ms());
        bind_text(st, 4, level);
        bind_text(st, 5, msg);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    st_state_unlock(o->state);
}

static bool pid_alive(int64_t pid)
{
    if (pid <= 0)
        return false;
    if (kill((pid_t)pid, 0) == 0)
        return true;
    return errno == EPERM;
}

st_rc oh_lock(st_orch *o, const char *asset, const char *run_id, st_err *err)
{
    st_state_lock(o->state);
    sqlite3 *db = st_state_db(o->state);
    sqlite3_stmt *st = NULL;
    st_rc rc = raw_exec(o, "BEGIN IMMEDIATE", err);
    bool took = false;
    rc = rc ? rc : prep(o, "SELECT run_id, pid, acquired_ms FROM orch_locks WHERE asset=?", &st, err);
    if (rc == ST_OK) {
        bind_text(st, 1, asset);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            const char *holder = (const char *)sqlite3_column_text(st, 0);
            int64_t pid = sqlite3_column_int64(st, 1);
            bool same_run = holder && !strcmp(holder, run_id);
            if (!same_run && pid_alive(pid) && pid != (int64_t)getpid())
                rc = st_fail(err, ST_ERR_CONFLICT,
                             "%s is already running (run %s, pid %lld); one run per asset at a time",
                             asset, holder ? holder : "?", (long long)pid);
            else if (!same_run && pid == (int64_t)getpid())
                rc = st_fail(err, ST_ERR_CONFLICT, "%s is already running (run %s)", asset,
                             holder ? holder : "?");
        } else if (step != SQLITE_DONE) {
            rc = db_fail(db, err, "reading lock");
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    rc = rc ? rc : prep(o, "INSERT OR REPLACE INTO orch_locks(asset, run_id, pid, acquired_ms)"
                           " VALUES(?,?,?,?)", &st, err);
    if (rc == ST_OK) {
        bind_text(st, 1, asset);
        bind_text(st, 2, run_id);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)getpid());
        sqlite3_bind_int64(st, 4, st_now_ms());
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(db, err, "taking lock");
        else
            took = true;
    }
    sqlite3_finalize(st);
    st_err e2;
    raw_exec(o, took ? "COMMIT" : "ROLLBACK", took ? err : &e2);
    st_state_unlock(o->state);
    return rc;
}

void oh_unlock(st_orch *o, const char *asset, const char *run_id)
{
    st_state_lock(o->state);
    sqlite3_stmt *st = NULL;
    if (prep(o, "DELETE FROM orch_locks WHERE asset=? AND run_id=?", &st, NULL) == ST_OK) {
        bind_text(st, 1, asset);
        bind_text(st, 2, run_id);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    st_state_unlock(o->state);
}

static int64_t query_i64(st_orch *o, const char *sql, const char *a1, const char *a2)
{
    int64_t v = -1;
    st_state_lock(o->state);
    sqlite3_stmt *st = NULL;
    if (prep(o, sql, &st, NULL) == ST_OK) {
        bind_text(st, 1, a1);
        if (a2)
            bind_text(st, 2, a2);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
            v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    st_state_unlock(o->state);
    return v;
}

int64_t oh_input_stamp(st_orch *o, const char *asset, const char *input)
{
    return query_i64(o, "SELECT i.stamp FROM orch_inputs i WHERE i.mat_id = (SELECT max(id) FROM"
                        " orch_mats WHERE asset=? AND status='ok') AND i.input=?", asset, input);
}

int64_t oh_last_ok_ms(st_orch *o, const char *asset)
{
    return query_i64(o, "SELECT max(finished_ms) FROM orch_mats WHERE asset=? AND status='ok'",
                     asset, NULL);
}

int64_t oh_last_ok_id(st_orch *o, const char *asset)
{
    return query_i64(o, "SELECT max(id) FROM orch_mats WHERE asset=? AND status IN ('ok','observed')",
                     asset, NULL);
}

int64_t orch_stamp(st_orch *o, const st_asset_def *a)
{
    char *path = st_project_table_path(o->p, a->key);
    int64_t v = -1;
    if (path && st_delta_latest_version(path, &v, NULL) != ST_OK)
        v = -1;
    st_free(path);
    if (v >= 0)
        return v;
    /* no table: the latest successful materialisation stands for a version,
     * offset so it never compares equal to a table version by accident */
    int64_t id = oh_last_ok_id(o, a->key);
    return id >= 0 ? (int64_t)1 << 40 | id : -1;
}

/* ---------------------------------------------------------------- printing */

static void fmt_time(int64_t ms, char out[32])
{
    if (ms <= 0) {
        strcpy(out, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%d %H:%M:%SZ", &tm);
}

static const char *col(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    return s ? s : "";
}

st_rc st_orch_runs_print(st_orch *o, const char *asset, int limit, FILE *f, st_err *err)
{
    const char *sql_all =
        "SELECT run_id, started_ms, finished_ms, status, trigger, coalesce(selection,''), n_ok,"
        " n_failed, n_skipped FROM orch_runs ORDER BY started_ms DESC, rowid DESC LIMIT ?";
    const char *sql_asset =
        "SELECT r.run_id, m.started_ms, m.finished_ms, m.status, r.trigger,"
        " coalesce(m.partition,''), m.version, m.rows, m.duration_ms, m.attempts,"
        " coalesce(m.error,'') FROM orch_mats m JOIN orch_runs r USING(run_id) WHERE m.asset=?"
        " ORDER BY m.id DESC LIMIT ?";
    st_state_lock(o->state);
    sqlite3_stmt *st = NULL;
    st_rc rc = prep(o, asset ? sql_asset : sql_all, &st, err);
    if (rc == ST_OK) {
        if (asset) {
            bind_text(st, 1, asset);
            sqlite3_bind_int(st, 2, limit);
            fprintf(f, "%-36s  %-20s  %-8s  %-9s  %-10s  %7s  %9s  %8s  %s\n", "RUN", "STARTED",
                    "STATUS", "TRIGGER", "PARTITION", "VERSION", "ROWS", "MS", "ERROR");
        } else {
            sqlite3_bind_int(st, 1, limit);
            fprintf(f, "%-36s  %-20s  %-8s  %-9s  %4s  %6s  %7s  %8s  %s\n", "RUN", "STARTED",
                    "STATUS", "TRIGGER", "OK", "FAILED", "SKIPPED", "MS", "SELECTION");
        }
        char t[32];
        while (sqlite3_step(st) == SQLITE_ROW) {
            fmt_time(sqlite3_column_int64(st, 1), t);
            if (asset) {
                char ver[24];
                if (sqlite3_column_type(st, 6) == SQLITE_NULL)
                    strcpy(ver, "-");
                else
                    snprintf(ver, sizeof ver, "%lld", (long long)sqlite3_column_int64(st, 6));
                fprintf(f, "%-36s  %-20s  %-8s  %-9s  %-10s  %7s  %9lld  %8lld  %s\n", col(st, 0),
                        t, col(st, 3), col(st, 4), col(st, 5), ver,
                        (long long)sqlite3_column_int64(st, 7),
                        (long long)sqlite3_column_int64(st, 8), col(st, 10));
            } else {
                int64_t fin = sqlite3_column_int64(st, 2);
                fprintf(f, "%-36s  %-20s  %-8s  %-9s  %4lld  %6lld  %7lld  %8lld  %s\n",
                        col(st, 0), t, col(st, 3), col(st, 4),
                        (long long)sqlite3_column_int64(st, 6),
                        (long long)sqlite3_column_int64(st, 7),
                        (long long)sqlite3_column_int64(st, 8),
                        (long long)(fin ? fin - sqlite3_column_int64(st, 1) : 0), col(st, 5));
            }
        }
    }
    sqlite3_finalize(st);
    st_state_unlock(o->state);
    return rc;
}

st_rc st_orch_run_show(st_orch *o, const char *run_id, FILE *f, st_err *err)
{
    st_state_lock(o->state);
    sqlite3_stmt *st = NULL;
    st_rc rc = prep(o, "SELECT run_id, started_ms, finished_ms, status, trigger,"
                       " coalesce(selection,''), n_ok, n_failed, n_skipped FROM orch_runs"
                       " WHERE run_id=? OR run_id LIKE ? || '%' ORDER BY started_ms DESC LIMIT 1",
                    &st, err);
    char id[64] = "";
    if (rc == ST_OK) {
        bind_text(st, 1, run_id);
        bind_text(st, 2, run_id);
        if (sqlite3_step(st) == SQLITE_ROW) {
            char t1[32], t2[32];
            fmt_time(sqlite3_column_int64(st, 1), t1);
            fmt_time(sqlite3_column_int64(st, 2), t2);
            snprintf(id, sizeof id, "%s", col(st, 0));
            fprintf(f, "run       %s\nstatus    %s\ntrigger   %s\nselection %s\nstarted   %s\n"
                       "finished  %s\nassets    %lld ok, %lld failed, %lld skipped\n\n",
                    id, col(st, 3), col(st, 4), col(st, 5), t1, t2,
                    (long long)sqlite3_column_int64(st, 6), (long long)sqlite3_column_int64(st, 7),
                    (long long)sqlite3_column_int64(st, 8));
        } else {
            rc = st_fail(err, ST_ERR_NOTFOUND, "no run %s in the history", run_id);
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    rc = rc ? rc : prep(o, "SELECT asset, coalesce(partition,''), status, attempts, version, rows,"
                           " bytes, duration_ms, checks_failed, coalesce(error,'') FROM orch_mats"
                           " WHERE run_id=? ORDER BY id", &st, err);
    if (rc == ST_OK) {
        bind_text(st, 1, id);
        fprintf(f, "%-40s  %-10s  %-8s  %3s  %7s  %9s  %10s  %8s  %s\n", "ASSET", "PARTITION",
                "STATUS", "TRY", "VERSION", "ROWS", "BYTES", "MS", "CHECKS/ERROR");
        while (sqlite3_step(st) == SQLITE_ROW) {
            char ver[24];
            if (sqlite3_column_type(st, 4) == SQLITE_NULL)
                strcpy(ver, "-");
            else
                snprintf(ver, sizeof ver, "%lld", (long long)sqlite3_column_int64(st, 4));
            fprintf(f, "%-40s  %-10s  %-8s  %3d  %7s  %9lld  %10lld  %8lld  ", col(st, 0),
                    col(st, 1), col(st, 2), sqlite3_column_int(st, 3), ver,
                    (long long)sqlite3_column_int64(st, 5), (long long)sqlite3_column_int64(st, 6),
                    (long long)sqlite3_column_int64(st, 7));
            if (sqlite3_column_int(st, 8))
                fprintf(f, "%d check(s) failed; ", sqlite3_column_int(st, 8));
            fprintf(f, "%s\n", col(st, 9));
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    rc = rc ? rc : prep(o, "SELECT ts_ms, level, coalesce(asset,''), msg FROM orch_logs"
                           " WHERE run_id=? ORDER BY id", &st, err);
    if (rc == ST_OK) {
        bind_text(st, 1, id);
        bool first = true;
        while (sqlite3_step(st) == SQLITE_ROW) {
            if (first)
                fprintf(f, "\nlog:\n");
            first = false;
            char t[32];
            fmt_time(sqlite3_column_int64(st, 0), t);
            fprintf(f, "  %s %-5s %s: %s\n", t, col(st, 1), col(st, 2), col(st, 3));
        }
    }
    sqlite3_finalize(st);
    st_state_unlock(o->state);
    return rc;
}
