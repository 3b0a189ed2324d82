/*
 * state.c - the SQLite state database: open in WAL mode, per-module
 * versioned migrations, a mutex so worker threads can share one handle.
 * Modules keep their own tables and queries (src/extract/xstate.c).
 */
#include "strata/state.h"

#include <pthread.h>
#include <string.h>

struct st_state {
    sqlite3 *db;
    char *path;
    pthread_mutex_t mu;
};

static st_rc db_fail(st_state *s, st_err *err, const char *what)
{
    return st_fail(err, ST_ERR_IO, "state %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

st_rc st_state_open(const char *path, st_state **out, st_err *err)
{
    st_state *s = st_calloc(1, sizeof *s);
    if (!s)
        return st_fail(err, ST_ERR_NOMEM, "opening state %s", path);
    s->path = st_strdup(path);
    pthread_mutex_init(&s->mu, NULL);
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                          SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
        st_rc rc = db_fail(s, err, "open");
        st_state_close(s);
        return rc;
    }
    sqlite3_busy_timeout(s->db, 10000);
    const char *init = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                       "CREATE TABLE IF NOT EXISTS st_migrations(module TEXT NOT NULL,"
                       " version INTEGER NOT NULL, applied_ms INTEGER NOT NULL,"
                       " PRIMARY KEY(module, version));";
    st_rc rc = st_state_exec(s, init, err);
    if (rc) {
        st_state_close(s);
        return rc;
    }
    *out = s;
    return ST_OK;
}

void st_state_close(st_state *s)
{
    if (!s)
        return;
    if (s->db)
        sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    st_free(s->path);
    st_free(s);
}

sqlite3 *st_state_db(st_state *s) { return s->db; }
void st_state_lock(st_state *s) { pthread_mutex_lock(&s->mu); }
void st_state_unlock(st_state *s) { pthread_mutex_unlock(&s->mu); }

st_rc st_state_exec(st_state *s, const char *sql, st_err *err)
{
    char *msg = NULL;
    st_state_lock(s);
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    st_state_unlock(s);
    if (rc != SQLITE_OK) {
        st_rc r = st_fail(err, ST_ERR_IO, "state %s: %s", s->path, msg ? msg : "error");
        sqlite3_free(msg);
        return r;
    }
    return ST_OK;
}

st_rc st_state_version(st_state *s, const char *module, int64_t *out, st_err *err)
{
    sqlite3_stmt *st = NULL;
    st_state_lock(s);
    int rc = sqlite3_prepare_v2(s->db, "SELECT count(*) FROM st_migrations WHERE module = ?", -1,
                                &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, module, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        st_state_unlock(s);
        return ST_OK;
    }
    st_rc r = db_fail(s, err, "reading migrations");
    sqlite3_finalize(st);
    st_state_unlock(s);
    return r;
}

st_rc st_state_migrate(st_state *s, const char *module, const char *const *migrations, size_t n,
                       st_err *err)
{
    int64_t have = 0;
    st_rc rc = st_state_version(s, module, &have, err);
    if (rc)
        return rc;
    if ((size_t)have > n)
        return st_fail(err, ST_ERR_CORRUPT,
                       "state %s: module %s is at schema version %lld, this binary knows %zu",
                       s->path, module, (long long)have, n);
    for (size_t v = (size_t)have; v < n; v++) {
        char *sql = st_sprintf("BEGIN IMMEDIATE; %s;"
                               " INSERT INTO st_migrations VALUES('%s', %zu, %lld); COMMIT;",
                               migrations[v], module, v + 1, (long long)st_now_ms());
        if (!sql)
            return st_fail(err, ST_ERR_NOMEM, "state migration");
        rc = st_state_exec(s, sql, err);
        st_free(sql);
        if (rc) {
            st_state_exec(s, "ROLLBACK", NULL);
            st_err_ctx(err, "migration %zu of %s", v + 1, module);
            return rc;
        }
    }
    return ST_OK;
}
