/*
 * xstate.c - extraction run records in the state DB: one row per table run
 * (strategy, watermark window, rows, bytes, duration, schema seen, outcome),
 * one row per chunk (predicate, done flag, written files with statistics)
 * so a failed run resumes with the chunks not yet done, and the per-table
 * committed watermark / hashdiff state.  Also the Parquet file list <-> JSON
 * codec used by chunk records and agent-mode manifests.
 */
#include "extract/extract_int.h"

#include <jansson.h>
#include <string.h>

static const char *const migrations[] = {
    "CREATE TABLE extract_runs(run_id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL,"
    " tbl TEXT NOT NULL, strategy TEXT NOT NULL, status TEXT NOT NULL, started_ms INTEGER,"
    " ended_ms INTEGER, wm_lo TEXT, wm_hi TEXT, rows_read INTEGER DEFAULT 0,"
    " rows_written INTEGER DEFAULT 0, bytes INTEGER DEFAULT 0, duration_ms INTEGER DEFAULT 0,"
    " schema_json TEXT, delta_version INTEGER, error TEXT);"
    "CREATE INDEX extract_runs_tbl ON extract_runs(source, tbl, run_id);"
    "CREATE TABLE extract_chunks(run_id INTEGER NOT NULL, chunk INTEGER NOT NULL,"
    " pred TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, rows INTEGER DEFAULT 0,"
    " files_json TEXT, PRIMARY KEY(run_id, chunk));"
    "CREATE TABLE extract_tables(source TEXT NOT NULL, tbl TEXT NOT NULL, watermark TEXT,"
    " hash_state TEXT, last_run_id INTEGER, PRIMARY KEY(source, tbl))",
};

st_rc x_state_init(st_state *s, st_err *err)
{
    return st_state_migrate(s, "extract", migrations, sizeof migrations / sizeof migrations[0],
                            err);
}

static st_rc sfail(st_state *s, st_err *err, const char *what)
{
    return st_fail(err, ST_ERR_IO, "state: %s: %s", what, sqlite3_errmsg(st_state_db(s)));
}

static char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? st_strdup((const char *)t) : NULL;
}

void x_run_free(x_run *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_chunks; i++) {
        st_free(r->chunks[i].pred);
        st_free(r->chunks[i].files_json);
    }
    st_free(r->chunks);
    st_free(r->strategy);
    st_free(r->wm_lo);
    st_free(r->wm_hi);
    st_free(r);
}

static st_rc load_chunks(st_state *s, x_run *r, st_err *err)
{
    sqlite3 *db = st_state_db(s);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT chunk, pred, done, rows, files_json FROM extract_chunks"
                               " WHERE run_id = ? ORDER BY chunk", -1, &st, NULL) != SQLITE_OK)
        return sfail(s, err, "reading chunks");
    sqlite3_bind_int64(st, 1, r->id);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        x_chunk *nc = st_realloc(r->chunks, (r->n_chunks + 1) * sizeof *nc);
        if (!nc)
            break;
        r->chunks = nc;
        x_chunk *c = &r->chunks[r->n_chunks++];
        c->no = sqlite3_column_int(st, 0);
        c->pred = col_text(st, 1);
        c->done = sqlite3_column_int(st, 2) != 0;
        c->rows = sqlite3_column_int64(st, 3);
        c->files_json = col_text(st, 4);
    }
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? ST_OK : sfail(s, err, "reading chunks");
}

st_rc x_state_open_run(st_state *s, const char *source, const char *table, x_run **out,
                       st_err *err)
{
    *out = NULL;
    st_state_lock(s);
    sqlite3 *db = st_state_db(s);
    sqlite3_stmt *st = NULL;
    st_rc rc = ST_OK;
    if (sqlite3_prepare_v2(db, "SELECT run_id, strategy, wm_lo, wm_hi FROM extract_runs"
                               " WHERE source = ? AND tbl = ? AND status IN ('running','failed')"
                               " ORDER BY run_id DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK) {
        rc = sfail(s, err, "reading runs");
        goto out;
    }
    sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, table, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        x_run *r = st_calloc(1, sizeof *r);
        r->id = sqlite3_column_int64(st, 0);
        r->strategy = col_text(st, 1);
        r->wm_lo = col_text(st, 2);
        r->wm_hi = col_text(st, 3);
        r->resumed = true;
        rc = load_chunks(s, r, err);
        if (rc)
            x_run_free(r);
        else
            *out = r;
    }
out:
    sqlite3_finalize(st);
    st_state_unlock(s);
    return rc;
}

st_rc x_state_new_run(st_state *s, const char *source, const char *table, const char *strategy,
                      const char *wm_lo, const char *wm_hi, char **preds, size_t n_preds,
                      x_run **out, st_err *err)
{
    st_state_lock(s);
    sqlite3 *db = st_state_db(s);
    sqlite3_stmt *st = NULL;
    st_rc rc = ST_OK;
    x_run *r = NULL;
    sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    /* an older unfinished attempt is superseded by this plan */
    if (sqlite3_prepare_v2(db, "UPDATE extract_runs SET status = 'abandoned' WHERE source = ?"
                               " AND tbl = ? AND status IN ('running','failed')", -1, &st, NULL) ||
        sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC) ||
        sqlite3_bind_text(st, 2, table, -1, SQLITE_STATIC) || sqlite3_step(st) != SQLITE_DONE) {
        rc = sfail(s, err, "recording run");
        goto fail;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db, "INSERT INTO extract_runs(source, tbl, strategy, status,"
                               " started_ms, wm_lo, wm_hi) VALUES(?,?,?,'running',?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = sfail(s, err, "recording run");
        goto fail;
    }
    sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, table, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, strategy, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, st_now_ms());
    sqlite3_bind_text(st, 5, wm_lo, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, wm_hi, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = sfail(s, err, "recording run");
        goto fail;
    }
    sqlite3_finalize(st);
    st = NULL;
    r = st_calloc(1, sizeof *r);
    r->id = sqlite3_last_insert_rowid(db);
    r->strategy = st_strdup(strategy);
    r->wm_lo = st_strdup(wm_lo);
    r->wm_hi = st_strdup(wm_hi);
    r->chunks = st_calloc(n_preds + 1, sizeof *r->chunks);
    if (sqlite3_prepare_v2(db, "INSERT INTO extract_chunks(run_id, chunk, pred) VALUES(?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = sfail(s, err, "recording chunks");
        goto fail;
    }
    for (size_t i = 0; i < n_preds; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, r->id);
        sqlite3_bind_int(st, 2, (int)i);
        sqlite3_bind_text(st, 3, preds[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = sfail(s, err, "recording chunks");
            goto fail;
        }
        r->chunks[i].no = (int)i;
        r->chunks[i].pred = st_strdup(preds[i]);
        r->n_chunks++;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = sfail(s, err, "recording run");
        goto fail;
    }
    st_state_unlock(s);
    *out = r;
    return ST_OK;
fail:
    sqlite3_finalize(st);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    st_state_unlock(s);
    x_run_free(r);
    return rc;
}

st_rc x_state_chunk_done(st_state *s, int64_t run_id, int chunk, int64_t rows,
                         const char *files_json, st_err *err)
{
    st_state_lock(s);
    sqlite3_stmt *st = NULL;
    st_rc rc = ST_OK;
    if (sqlite3_prepare_v2(st_state_db(s), "UPDATE extract_chunks SET done = 1, rows = ?,"
                           " files_json = ? WHERE run_id = ? AND chunk = ?", -1, &st, NULL) ||
        sqlite3_bind_int64(st, 1, rows) ||
        sqlite3_bind_text(st, 2, files_json, -1, SQLITE_STATIC) ||
        sqlite3_bind_int64(st, 3, run_id) || sqlite3_bind_int(st, 4, chunk) ||
        sqlite3_step(st) != SQLITE_DONE)
        rc = sfail(s, err, "recording chunk");
    sqlite3_finalize(st);
    st_state_unlock(s);
    return rc;
}

st_rc x_state_finish_run(st_state *s, int64_t run_id, const char *status, int64_t rows_read,
                         int64_t rows_written, int64_t bytes, int64_t duration_ms,
                         const char *schema_json, int64_t version, const char *error,
                         st_err *err)
{
    st_state_lock(s);
    sqlite3_stmt *st = NULL;
    st_rc rc = ST_OK;
    if (sqlite3_prepare_v2(st_state_db(s), "UPDATE extract_runs SET status = ?, ended_ms = ?,"
                           " rows_read = rows_read + ?, rows_written = ?, bytes = ?,"
                           " duration_ms = duration_ms + ?, schema_json = coalesce(?, schema_json),"
                           " delta_version = ?, error = ? WHERE run_id = ?", -1, &st, NULL) ||
        sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC) ||
        sqlite3_bind_int64(st, 2, st_now_ms()) || sqlite3_bind_int64(st, 3, rows_read) ||
        sqlite3_bind_int64(st, 4, rows_written) || sqlite3_bind_int64(st, 5, bytes) ||
        sqlite3_bind_int64(st, 6, duration_ms) ||
        sqlite3_bind_text(st, 7, schema_json, -1, SQLITE_STATIC) ||
        (version >= 0 ? sqlite3_bind_int64(st, 8, version) : sqlite3_bind_null(st, 8)) ||
        sqlite3_bind_text(st, 9, error, -1, SQLITE_STATIC) || sqlite3_bind_int64(st, 10, run_id) ||
        sqlite3_step(st) != SQLITE_DONE)
        rc = sfail(s, err, "recording run outcome");
    sqlite3_finalize(st);
    st_state_unlock(s);
    return rc;
}

st_rc x_state_get_table(st_state *s, const char *source, const char *table, char **watermark,
                        char **hash_state, st_err *err)
{
    *watermark = NULL;
    *hash_state = NULL;
    st_state_lock(s);
    sqlite3_stmt *st = NULL;
    st_rc rc = ST_OK;
    if (sqlite3_prepare_v2(st_state_db(s), "SELECT watermark, hash_state FROM extract_tables"
                           " WHERE source = ? AND tbl = ?", -1, &st, NULL) != SQLITE_OK) {
        rc = sfail(s, err, "reading table state");
    } else {
        sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, table, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            *watermark = col_text(st, 0);
            *hash_state = col_text(st, 1);
        }
    }
    sqlite3_finalize(st);
    st_state_unlock(s);
    return rc;
}

st_rc x_state_set_table(st_state *s, const char *source, const char *table,
                        const char *watermark, const char *hash_state, int64_t run_id,
                        st_err *err)
{
    st_state_lock(s);
    sqlite3_stmt *st = NULL;
    st_rc rc = ST_OK;
    if (sqlite3_prepare_v2(st_state_db(s),
                           "INSERT INTO extract_tables VALUES(?,?,?,?,?) ON CONFLICT(source, tbl)"
                           " DO UPDATE SET watermark = excluded.watermark,"
                           " hash_state = excluded.hash_state, last_run_id = excluded.last_run_id",
                           -1, &st, NULL) ||
        sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC) ||
        sqlite3_bind_text(st, 2, table, -1, SQLITE_STATIC) ||
        sqlite3_bind_text(st, 3, watermark, -1, SQLITE_STATIC) ||
        sqlite3_bind_text(st, 4, hash_state, -1, SQLITE_STATIC) ||
        sqlite3_bind_int64(st, 5, run_id) || sqlite3_step(st) != SQLITE_DONE)
        rc = sfail(s, err, "recording table state");
    sqlite3_finalize(st);
    st_state_unlock(s);
    return rc;
}

/* ---- Parquet file lists as JSON ---- */

char *x_files_to_json(const st_parquet_file *f, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "path", json_string(f[i].path));
        json_object_set_new(o, "rows", json_integer(f[i].rows));
        json_object_set_new(o, "size", json_integer(f[i].size));
        json_t *cols = json_array();
        for (size_t c = 0; c < f[i].n_cols; c++) {
            json_t *co = json_object();
            json_object_set_new(co, "name", json_string(f[i].cols[c].name));
            json_object_set_new(co, "min", f[i].cols[c].min ? json_string(f[i].cols[c].min)
                                                            : json_null());
            json_object_set_new(co, "max", f[i].cols[c].max ? json_string(f[i].cols[c].max)
                                                            : json_null());
            json_object_set_new(co, "nulls", json_integer(f[i].cols[c].null_count));
            json_array_append_new(cols, co);
        }
        json_object_set_new(o, "cols", cols);
        json_array_append_new(arr, o);
    }
    char *txt = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    char *out = txt ? st_strdup(txt) : NULL;
    free(txt);
    return out;
}

static char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? st_strdup(s) : NULL;
}

st_rc x_files_from_json(const char *json, st_parquet_file **out, size_t *n_out, st_err *err)
{
    json_error_t je;
    json_t *arr = json_loads(json ? json : "[]", 0, &je);
    if (!arr || !json_is_array(arr)) {
        json_decref(arr);
        return st_fail(err, ST_ERR_CORRUPT, "chunk file list: %s", arr ? "not an array" : je.text);
    }
    size_t n = json_array_size(arr);
    st_parquet_file *f = st_calloc(n + 1, sizeof *f);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        f[i].path = jstr(o, "path");
        f[i].rows = json_integer_value(json_object_get(o, "rows"));
        f[i].size = json_integer_value(json_object_get(o, "size"));
        json_t *cols = json_object_get(o, "cols");
        f[i].n_cols = json_array_size(cols);
        f[i].cols = st_calloc(f[i].n_cols + 1, sizeof *f[i].cols);
        for (size_t c = 0; c < f[i].n_cols; c++) {
            json_t *co = json_array_get(cols, c);
            f[i].cols[c].name = jstr(co, "name");
            f[i].cols[c].min = jstr(co, "min");
            f[i].cols[c].max = jstr(co, "max");
            f[i].cols[c].null_count = json_integer_value(json_object_get(co, "nulls"));
        }
        if (!f[i].path) {
            st_parquet_files_free(f, n);
            json_decref(arr);
            return st_fail(err, ST_ERR_CORRUPT, "chunk file list: entry %zu has no path", i);
        }
    }
    json_decref(arr);
    *out = f;
    *n_out = n;
    return ST_OK;
}

st_rc x_state_run_info(st_state *s, int64_t run_id, char **strategy, char **status, st_err *err)
{
    *strategy = NULL;
    *status = NULL;
    st_state_lock(s);
    sqlite3_stmt *st = NULL;
    st_rc rc = ST_OK;
    if (sqlite3_prepare_v2(st_state_db(s), "SELECT strategy, status FROM extract_runs"
                           " WHERE run_id = ?", -1, &st, NULL) != SQLITE_OK) {
        rc = sfail(s, err, "reading runs");
    } else {
        sqlite3_bind_int64(st, 1, run_id);
        if (sqlite3_step(st) == SQLITE_ROW) {
            *strategy = col_text(st, 0);
            *status = col_text(st, 1);
        } else {
            rc = st_fail(err, ST_ERR_NOTFOUND, "run %lld is not in the state DB", (long long)run_id);
        }
    }
    sqlite3_finalize(st);
    st_state_unlock(s);
    return rc;
}
