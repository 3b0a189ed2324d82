/*
 * features.c - point-in-time correct training sets.
 *
 * A spine (entity, label time, label, ...) is ASOF-joined to each feature
 * table on the entity and `feature_ts <= label time`: every spine row gets
 * the latest feature row known at its label time and never a later one,
 * which is what keeps future information out of training data (the leak a
 * plain join on the entity, or on the nearest timestamp, lets in).
 */
#include "strata/gold.h"

#include "strata/delta.h"

#include <stdio.h>
#include <string.h>

static bool ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

static bool plain_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

/* Column names of a relation, separated by \x1f.  OWNED. */
static st_rc columns_of(st_engine *eng, const char *rel, char **out, st_err *err)
{
    char *sql = st_sprintf("SELECT string_agg(column_name, chr(31) ORDER BY column_index) "
                           "FROM duckdb_columns() WHERE table_name = '%s'", rel);
    st_rc rc = sql ? st_engine_query_str(eng, sql, out, err)
                   : st_fail(err, ST_ERR_NOMEM, "columns");
    st_free(sql);
    return rc;
}

/* The n-th (0-based) \x1f-separated name in list, OWNED, NULL if absent. */
static char *nth_name(const char *list, int n)
{
    const char *p = list;
    for (int i = 0; p && i < n; i++) {
        p = strchr(p, '\x1f');
        p = p ? p + 1 : NULL;
    }
    if (!p)
        return NULL;
    const char *e = strchr(p, '\x1f');
    return e ? st_strndup(p, (size_t)(e - p)) : st_strdup(p);
}

static bool has_name(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p;) {
        const char *e = strchr(p, '\x1f');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !memcmp(p, name, n))
            return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

st_rc st_features_training_set(st_engine *eng, const st_training_opts *o,
                               st_training_result *res, st_err *err)
{
    st_rc rc = ST_OK;
    char *spine_cols = NULL, *entity = NULL, *ts = NULL, *sql = NULL, *parquet = NULL;
    char *manifest = NULL, *mpath = NULL;
    int64_t *versions = NULL;
    st_buf q, m;
    st_buf_init(&q, 0);
    st_buf_init(&m, 0);
    memset(res, 0, sizeof *res);
    if (!o->n_features) {
        rc = st_fail(err, ST_ERR_INVALID, "training set: no features given");
        goto fail;
    }
    versions = st_calloc(o->n_features, sizeof *versions);
    if (!versions) {
        rc = st_fail(err, ST_ERR_NOMEM, "training set");
        goto fail;
    }
    /* the spine */
    const char *reader = ends_with(o->spine, ".parquet") ? "read_parquet" : "read_csv_auto";
    st_buf_printf(&q, "CREATE OR REPLACE TEMP TABLE st_spine AS SELECT row_number() OVER () AS "
                      "_spine_row, * FROM %s(", reader);
    st_buf_sql_str(&q, o->spine);
    st_buf_puts(&q, ")");
    rc = st_engine_exec(eng, q.data, err);
    if (rc) {
        st_err_ctx(err, "training set: spine %s", o->spine);
        goto fail;
    }
    rc = columns_of(eng, "st_spine", &spine_cols, err);
    if (rc)
        goto fail;
    entity = o->entity_col ? st_strdup(o->entity_col) : nth_name(spine_cols, 1);
    ts = o->ts_col ? st_strdup(o->ts_col) : nth_name(spine_cols, 2);
    if (!entity || !ts || !has_name(spine_cols, entity) || !has_name(spine_cols, ts)) {
        rc = st_fail(err, ST_ERR_INVALID,
                     "training set: spine %s needs an entity column and a label time column "
                     "(%s, %s)", o->spine, entity ? entity : "?", ts ? ts : "?");
        goto fail;
    }
    /* the label time as TIMESTAMP, whatever the file's type for it */
    st_buf_reset(&q);
    st_buf_puts(&q, "CREATE OR REPLACE TEMP TABLE st_spine_t AS SELECT *, CAST(");
    st_buf_sql_ident(&q, ts);
    st_buf_puts(&q, " AS TIMESTAMP) AS _label_ts FROM st_spine");
    rc = st_engine_exec(eng, q.data, err);
    if (rc) {
        st_err_ctx(err, "training set: spine %s: column %s is not a timestamp", o->spine, ts);
        goto fail;
    }

    st_buf select, joins;
    st_buf_init(&select, 0);
    st_buf_init(&joins, 0);
    st_buf_puts(&select, "SELECT s.* EXCLUDE (_spine_row, _label_ts)");
    for (size_t i = 0; i < o->n_features && !rc; i++) {
        const char *f = o->features[i];
        char *fcols = NULL, *rel = NULL, *path = NULL, *view = NULL;
        st_delta_snapshot *snap = NULL;
        if (!plain_name(f)) {
            rc = st_fail(err, ST_ERR_INVALID, "training set: feature '%s': expected a gold table "
                         "name (a-z 0-9 _)", f);
            break;
        }
        rel = st_sprintf("gold/%s", f);
        path = st_path_join(o->lake, rel);
        view = st_sprintf("st_feat_%zu", i);
        rc = st_delta_snapshot_load(eng, path, -1, &snap, err);
        if (rc)
            st_err_ctx(err, "training set: feature table %s", path);
        rc = rc ? rc : st_delta_register_view(eng, view, snap, err);
        versions[i] = rc ? -1 : snap->version;
        st_delta_snapshot_free(snap);
        rc = rc ? rc : columns_of(eng, view, &fcols, err);
        if (!rc && (!fcols || !has_name(fcols, entity) || !has_name(fcols, "feature_ts")))
            rc = st_fail(err, ST_ERR_INVALID, "training set: feature table %s needs the "
                         "columns %s and feature_ts", path, entity);
        for (int c = 0; !rc; c++) {
            char *col = nth_name(fcols, c);
            if (!col)
                break;
            if (strcmp(col, entity)) {
                st_buf_printf(&select, ", f%zu.", i);
                st_buf_sql_ident(&select, col);
                st_buf_puts(&select, " AS ");
                char *alias = st_sprintf("%s__%s", f, col);
                st_buf_sql_ident(&select, alias);
                st_free(alias);
            }
            st_free(col);
        }
        /* ASOF: the latest feature row with feature_ts <= label time */
        st_buf_printf(&joins, " ASOF LEFT JOIN %s f%zu ON f%zu.", view, i, i);
        st_buf_sql_ident(&joins, entity);
        st_buf_puts(&joins, " = s.");
        st_buf_sql_ident(&joins, entity);
        st_buf_printf(&joins, " AND s._label_ts >= CAST(f%zu.feature_ts AS TIMESTAMP)", i);
        st_free(fcols);
        st_free(rel);
        st_free(path);
        st_free(view);
    }
    if (!rc) {
        sql = st_sprintf("CREATE OR REPLACE TEMP TABLE st_training AS %s FROM st_spine_t s%s "
                         "ORDER BY s._spine_row", select.data, joins.data);
        rc = sql ? st_engine_exec(eng, sql, err) : st_fail(err, ST_ERR_NOMEM, "training set");
        if (rc)
            st_err_ctx(err, "training set: ASOF join");
    }
    st_buf_free(&select);
    st_buf_free(&joins);
    if (rc)
        goto fail;
    rc = st_engine_query_i64(eng, "SELECT count(*) FROM st_training", &res->rows, err);
    if (rc)
        goto fail;
    {
        char *cnt = st_sprintf("SELECT count(*) FROM st_training WHERE \"%s__feature_ts\" IS NOT "
                               "NULL", o->features[0]);
        rc = st_engine_query_i64(eng, cnt, &res->rows_matched, err);
        st_free(cnt);
        if (rc)
            goto fail;
    }
    rc = st_mkdirs(o->out_dir, err);
    if (rc)
        goto fail;
    parquet = st_path_join(o->out_dir, "training_set.parquet");
    st_buf_reset(&q);
    st_buf_puts(&q, "COPY st_training TO ");
    st_buf_sql_str(&q, parquet);
    st_buf_puts(&q, " (FORMAT parquet, COMPRESSION zstd)");
    rc = st_engine_exec(eng, q.data, err);
    if (rc) {
        st_err_ctx(err, "training set: writing %s", parquet);
        goto fail;
    }
    /* manifest: what was joined, how, and from which table versions */
    st_buf_puts(&m, "{\n  \"format\": \"parquet\",\n  \"file\": \"training_set.parquet\",\n"
                    "  \"spine\": ");
    st_buf_json_str(&m, o->spine);
    st_buf_puts(&m, ",\n  \"entity\": ");
    st_buf_json_str(&m, entity);
    st_buf_puts(&m, ",\n  \"label_time\": ");
    st_buf_json_str(&m, ts);
    st_buf_printf(&m, ",\n  \"rows\": %lld,\n  \"rows_with_features\": %lld,\n",
                  (long long)res->rows, (long long)res->rows_matched);
    st_buf_puts(&m, "  \"join\": \"ASOF LEFT JOIN on entity, feature_ts <= label_time (latest "
                    "feature row known at the label time)\",\n  \"features\": [");
    for (size_t i = 0; i < o->n_features; i++) {
        st_buf_puts(&m, i ? ",\n    {\"name\": " : "\n    {\"name\": ");
        st_buf_json_str(&m, o->features[i]);
        st_buf_printf(&m, ", \"table\": \"gold.%s\", \"delta_version\": %lld}", o->features[i],
                      (long long)versions[i]);
    }
    st_buf_printf(&m, "\n  ],\n  \"created_at_ms\": %lld\n}\n", (long long)st_now_ms());
    manifest = st_buf_take(&m);
    mpath = st_path_join(o->out_dir, "manifest.json");
    rc = manifest && mpath ? st_file_write_atomic(mpath, manifest, strlen(manifest), err)
                           : st_fail(err, ST_ERR_NOMEM, "manifest");
fail:
    st_buf_free(&q);
    st_buf_free(&m);
    st_free(spine_cols);
    st_free(entity);
    st_free(ts);
    st_free(sql);
    st_free(parquet);
    st_free(manifest);
    st_free(mpath);
    st_free(versions);
    return rc;
}
