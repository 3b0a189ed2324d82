/*
 * sched.c - the scheduler step st_sched_tick (called by `strata serve` and
 * `strata schedule --once`) and backfills (st_partitions,
 * st_orch_backfill).  Schedule state is one row per asset in
 * orch_schedules (last tick, last fire, missed count); backfill progress is
 * orch_backfills / orch_backfill_parts, so a backfill run again resumes.
 */
#include "orch_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PARTITIONS 100000

static st_rc db_fail(st_orch *o, st_err *err, const char *what)
{
    return st_fail(err, ST_ERR_IO, "state: %s: %s", what, sqlite3_errmsg(st_state_db(o->state)));
}

/* last_tick_ms of asset (-1 when never ticked). */
static int64_t last_tick(st_orch *o, const char *asset)
{
    int64_t v = -1;
    st_state_lock(o->state);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(st_state_db(o->state),
                           "SELECT last_tick_ms FROM orch_schedules WHERE asset=?", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, asset, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    st_state_unlock(o->state);
    return v;
}

static st_rc set_tick(st_orch *o, const char *asset, int64_t tick, int64_t fire, int64_t missed,
                      const char *run_id, st_err *err)
{
    st_state_lock(o->state);
    sqlite3_stmt *st = NULL;
    st_rc rc = ST_OK;
    if (sqlite3_prepare_v2(st_state_db(o->state),
                           "INSERT INTO orch_schedules(asset, last_tick_ms, last_fire_ms, "
                           "last_run_id, missed) VALUES(?1,?2,?3,?4,?5) ON CONFLICT(asset) DO "
                           "UPDATE SET last_tick_ms=?2, last_fire_ms=coalesce(?3, last_fire_ms), "
                           "last_run_id=coalesce(?4, last_run_id), missed=missed+?5",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(o, err, "schedule state");
    } else {
        sqlite3_bind_text(st, 1, asset, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, tick);
        if (fire >= 0)
            sqlite3_bind_int64(st, 3, fire);
        else
            sqlite3_bind_null(st, 3);
        if (run_id)
            sqlite3_bind_text(st, 4, run_id, -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_null(st, 4);
        sqlite3_bind_int64(st, 5, missed);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(o, err, "schedule state");
    }
    sqlite3_finalize(st);
    st_state_unlock(o->state);
    return rc;
}

/* True when another live run holds the asset's lock. */
static bool locked_elsewhere(st_orch *o, const char *asset)
{
    st_err e;
    char probe[37];
    st_uuid4(probe);
    if (oh_lock(o, asset, probe, &e) != ST_OK)
        return true;
    oh_unlock(o, asset, probe);
    return false;
}

st_rc st_sched_tick(st_orch *o, int64_t now_ms, st_run_summary **out, st_err *err)
{
    const st_dag *d = o->dag;
    if (out)
        *out = NULL;
    bool *due = st_calloc(d->n + 1, sizeof *due);
    int64_t *fire = st_calloc(d->n + 1, sizeof *fire);
    if (!due || !fire) {
        st_free(due);
        st_free(fire);
        return st_fail(err, ST_ERR_NOMEM, "scheduler");
    }
    st_rc rc = ST_OK;
    size_t n_due = 0;
    for (size_t i = 0; rc == ST_OK && i < d->n; i++) {
        const st_asset_def *a = d->a[i];
        fire[i] = -1;
        if (a->kind == ST_ASSET_SOURCE)
            continue;
        if (a->schedule) {
            st_cron c;
            rc = st_cron_parse(a->schedule, &c, err);
            if (rc) {
                st_err_ctx(err, "%s:%d: %s: schedule", a->file, a->line, a->key);
                break;
            }
            int64_t last = last_tick(o, a->key);
            if (last < 0) {
                rc = set_tick(o, a->key, now_ms, -1, 0, NULL, err);
                continue;
            }
            int64_t t = last, latest = -1, next = 0;
            int64_t count = 0;
            while (count < 100000 && st_cron_next(&c, t, &next, NULL) == ST_OK && next <= now_ms) {
                latest = next;
                count++;
                t = next;
            }
            if (!count)
                continue;
            const char *policy = a->missed ? a->missed : o->p->missed;
            bool run_once = policy && !strcmp(policy, "run_once");
            bool on_time = now_ms - latest <= 60000;
            int64_t missed = run_once ? count - 1 : (on_time ? count - 1 : count);
            if (missed)
                st_info("schedule %s: %lld fire time(s) missed (%s)", a->key, (long long)missed,
                        run_once ? "collapsed into one run" : "skipped");
            if (run_once || on_time) {
                due[i] = true;
                fire[i] = latest;
            }
            rc = set_tick(o, a->key, now_ms, latest, missed, NULL, err);
        }
        if (rc == ST_OK && a->on_upstream && !due[i]) {
            for (size_t j = 0; j < d->n_deps[i] && !due[i]; j++) {
                const st_asset_def *in = d->a[d->deps[i][j]];
                int64_t cur = orch_stamp(o, in);
                if (cur >= 0 && cur != oh_input_stamp(o, a->key, in->key))
                    due[i] = true;
            }
        }
        if (due[i] && locked_elsewhere(o, a->key)) {
            st_info("schedule %s: due but already running; not started again", a->key);
            due[i] = false;
        }
        n_due += due[i];
    }
    if (rc || !n_due) {
        st_free(due);
        st_free(fire);
        return rc;
    }
    st_buf sel;
    st_buf_init(&sel, 0);
    for (size_t i = 0; i < d->n; i++)
        if (due[i])
            st_buf_printf(&sel, "%s%s", sel.len ? " " : "", d->a[i]->key);
    st_run_opts ro = {.select = sel.data, .trigger = "schedule"};
    st_run_summary *sum = NULL;
    rc = sel.data ? st_orch_run(o, &ro, &sum, err) : st_fail(err, ST_ERR_NOMEM, "scheduler");
    for (size_t i = 0; sum && i < d->n; i++)
        if (due[i] && d->a[i]->schedule) {
            st_err e2;
            set_tick(o, d->a[i]->key, now_ms, fire[i], 0, sum->run_id, &e2);
        }
    st_buf_free(&sel);
    st_free(due);
    st_free(fire);
    if (out)
        *out = sum;
    else
        st_run_summary_free(sum);
    return rc;
}

/* ---------------------------------------------------------------- backfill */

static bool parse_ym(const char *s, bool month, struct tm *tm)
{
    int y = 0, m = 0, d = 1;
    char tail = 0;
    int n = month ? sscanf(s, "%4d-%2d%c", &y, &m, &tail) : sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail);
    if (n != (month ? 2 : 3) || strlen(s) != (month ? 7u : 10u) || m < 1 || m > 12 || d < 1 ||
        d > 31 || y < 1)
        return false;
    memset(tm, 0, sizeof *tm);
    tm->tm_year = y - 1900;
    tm->tm_mon = m - 1;
    tm->tm_mday = d;
    time_t t = timegm(tm);
    gmtime_r(&t, tm);
    return tm->tm_mday == d && tm->tm_mon == m - 1;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        st_free(v[i]);
    st_free(v);
}

st_rc st_partitions(const st_asset_def *a, const char *from, const char *to, char ***out,
                    size_t *n_out, st_err *err)
{
    char **v = NULL;
    size_t n = 0;
    if (a->part == ST_PART_VALUE) {
        size_t lo = 0, hi = a->n_part_values ? a->n_part_values - 1 : 0;
        bool f_ok = !from, t_ok = !to;
        for (size_t i = 0; i < a->n_part_values; i++) {
            if (from && !strcmp(a->part_values[i], from)) {
                lo = i;
                f_ok = true;
            }
            if (to && !strcmp(a->part_values[i], to)) {
                hi = i;
                t_ok = true;
            }
        }
        if (!f_ok || !t_ok)
            return st_fail(err, ST_ERR_INVALID, "%s: '%s' is not one of its partition values",
                           a->key, !f_ok ? from : to);
        if (lo > hi)
            return st_fail(err, ST_ERR_INVALID, "%s: --from comes after --to", a->key);
        v = st_calloc(hi - lo + 2, sizeof *v);
        for (size_t i = lo; v && i <= hi; i++)
            v[n++] = st_strdup(a->part_values[i]);
    } else if (a->part == ST_PART_DAY || a->part == ST_PART_MONTH) {
        bool month = a->part == ST_PART_MONTH;
        struct tm f, t;
        if (!from || !to)
            return st_fail(err, ST_ERR_INVALID, "%s: a backfill needs --from and --to", a->key);
        if (!parse_ym(from, month, &f) || !parse_ym(to, month, &t))
            return st_fail(err, ST_ERR_INVALID, "%s: --from/--to must be %s", a->key,
                           month ? "months (YYYY-MM)" : "days (YYYY-MM-DD)");
        time_t tf = timegm(&f), tt = timegm(&t);
        if (tf > tt)
            return st_fail(err, ST_ERR_INVALID, "%s: --from comes after --to", a->key);
        size_t cap = 64;
        v = st_calloc(cap, sizeof *v);
        while (v && timegm(&f) <= tt) {
            if (n + 1 >= MAX_PARTITIONS) {
                strv_free(v, n);
                return st_fail(err, ST_ERR_LIMIT, "%s: more than %d partitions", a->key,
                               MAX_PARTITIONS);
            }
            if (n + 1 >= cap) {
                char **nv = st_realloc(v, cap * 2 * sizeof *nv);
                if (!nv)
                    break;
                v = nv;
                cap *= 2;
            }
            v[n++] = month ? st_sprintf("%04d-%02d", f.tm_year + 1900, f.tm_mon + 1)
                           : st_sprintf("%04d-%02d-%02d", f.tm_year + 1900, f.tm_mon + 1, f.tm_mday);
            if (month)
                f.tm_mon++;
            else
                f.tm_mday++;
            time_t x = timegm(&f);
            gmtime_r(&x, &f);
        }
    } else {
        return st_fail(err, ST_ERR_INVALID, "%s is not partitioned (declare `partition:`)", a->key);
    }
    for (size_t i = 0; v && i < n; i++)
        if (!v[i]) {
            strv_free(v, n);
            v = NULL;
        }
    if (!v)
        return st_fail(err, ST_ERR_NOMEM, "partitions of %s", a->key);
    *out = v;
    *n_out = n;
    return ST_OK;
}

static char *part_status(st_orch *o, const char *bf, const char *part)
{
    char *s = NULL;
    st_state_lock(o->state);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(st_state_db(o->state),
                           "SELECT status FROM orch_backfill_parts WHERE backfill_id=? AND "
                           "partition=?", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, bf, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, part, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_ROW)
            s = st_strdup((const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    st_state_unlock(o->state);
    return s;
}

static st_rc bf_exec(st_orch *o, const char *sql, const char *const *args, size_t n, int64_t i64,
                     st_err *err)
{
    st_state_lock(o->state);
    sqlite3_stmt *st = NULL;
    st_rc rc = ST_OK;
    if (sqlite3_prepare_v2(st_state_db(o->state), sql, -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(o, err, "backfill state");
    } else {
        for (size_t i = 0; i < n; i++)
            if (args[i])
                sqlite3_bind_text(st, (int)i + 1, args[i], -1, SQLITE_TRANSIENT);
            else
                sqlite3_bind_null(st, (int)i + 1);
        sqlite3_bind_int64(st, (int)n + 1, i64);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(o, err, "backfill state");
    }
    sqlite3_finalize(st);
    st_state_unlock(o->state);
    return rc;
}

st_rc st_orch_backfill(st_orch *o, const char *key, const char *from, const char *to,
                       const st_run_opts *opts, size_t *out_done, size_t *out_skipped,
                       size_t *out_failed, st_err *err)
{
    size_t done = 0, skipped = 0, failed = 0;
    long idx = st_dag_find(o->dag, key);
    if (idx < 0)
        return st_fail(err, ST_ERR_NOTFOUND, "backfill: no asset %s", key);
    const st_asset_def *a = o->dag->a[idx];
    char **parts = NULL;
    size_t n = 0;
    st_rc rc = st_partitions(a, from, to, &parts, &n, err);
    if (rc)
        return rc;
    char *bf = st_sprintf("%s|%s|%s", key, from ? from : "", to ? to : "");
    if (!bf) {
        strv_free(parts, n);
        return st_fail(err, ST_ERR_NOMEM, "backfill");
    }
    const char *a1[] = {bf, key, from, to};
    rc = bf_exec(o, "INSERT INTO orch_backfills(backfill_id, asset, range_from, range_to, status,"
                    " created_ms) VALUES(?,?,?,?,'running',?) ON CONFLICT(backfill_id) DO UPDATE"
                    " SET status='running'", a1, 4, st_now_ms(), err);
    for (size_t i = 0; rc == ST_OK && i < n; i++) {
        char *s = part_status(o, bf, parts[i]);
        bool is_done = s && !strcmp(s, "ok");
        st_free(s);
        if (is_done) {
            skipped++;
            if (opts && opts->progress)
                fprintf(opts->progress, "done    %s partition %s (earlier run)\n", key, parts[i]);
            continue;
        }
        st_run_opts ro = opts ? *opts : (st_run_opts){0};
        ro.select = key;
        ro.exclude = NULL;
        ro.partition = parts[i];
        ro.trigger = "backfill";
        st_run_summary *sum = NULL;
        st_err re;
        st_err_clear(&re);
        st_rc rr = st_orch_run(o, &ro, &sum, &re);
        const char *a2[] = {bf, parts[i], rr ? "failed" : "ok", sum ? sum->run_id : NULL,
                            rr ? re.msg : NULL};
        st_err e2;
        bf_exec(o, "INSERT OR REPLACE INTO orch_backfill_parts(backfill_id, partition, status,"
                   " run_id, error, finished_ms) VALUES(?,?,?,?,?,?)", a2, 5, st_now_ms(), &e2);
        st_run_summary_free(sum);
        if (rr) {
            failed++;
            rc = st_fail(err, rr, "backfill %s: partition %s failed (%zu done before it; run the "
                         "same backfill again to resume): %s", key, parts[i], done + skipped,
                         re.msg);
        } else {
            done++;
        }
    }
    const char *a3[] = {rc ? "failed" : "ok", bf};
    st_err e3;
    bf_exec(o, "UPDATE orch_backfills SET status=?, finished_ms=?3 WHERE backfill_id=?2", a3, 2,
            st_now_ms(), &e3);
    st_free(bf);
    strv_free(parts, n);
    if (out_done)
        *out_done = done;
    if (out_skipped)
        *out_skipped = skipped;
    if (out_failed)
        *out_failed = failed;
    return rc;
}
