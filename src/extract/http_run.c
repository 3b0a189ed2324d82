/*
 * http_run.c - one run of a statistics-API table: build the request URL
 * (ECB and OECD SDMX REST as CSV, World Bank v2 JSON with pagination; an
 * incremental run asks for `updatedAfter=` the previous run's start), fetch
 * with retries (http_fetch.c), parse (http_parse.c), stage the cells in
 * DuckDB with OBS_VALUE / value as DOUBLE and the rest as text, and land the
 * Parquet file in bronze in one commit: full replaces the table, incremental
 * merges by the series key and period.
 */
#include "extract/extract_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static bool is_value_col(x_kind k, const char *c)
{
    return k == X_WORLDBANK ? !strcmp(c, "value") : !strcmp(c, "OBS_VALUE");
}

/* Key columns: World Bank indicator/country/date; SDMX every column up to
 * TIME_PERIOD that is a dimension (attributes and the value come after). */
bool x_api_is_key(x_kind k, char *const *cols, size_t i)
{
    const char *c = cols[i];
    if (k == X_WORLDBANK)
        return !strcmp(c, "indicator_id") || !strcmp(c, "country_id") || !strcmp(c, "date");
    if (!strcmp(c, "TIME_PERIOD"))
        return true;
    if (!strcmp(c, "ACTION") || !strcmp(c, "STRUCTURE") || !strcmp(c, "STRUCTURE_ID") ||
        !strcmp(c, "OBS_VALUE") || !strncmp(c, "OBS_", 4) || c[0] == '_')
        return false;
    for (size_t j = 0; j < i; j++)
        if (!strcmp(cols[j], "TIME_PERIOD") || !strcmp(cols[j], "OBS_VALUE"))
            return false;
    return true;
}

/* `since` is the incremental lower bound: SDMX `updatedAfter=` (the previous
 * run's start), World Bank a `date=` range from the latest period seen. */
static st_rc fetch_all(const x_source_cfg *s, const x_table_cfg *t, const char *since,
                       x_table *tb, int64_t *bytes, st_err *err)
{
    x_http_opts ho = {.timeout_s = s->read_timeout > 0 ? s->read_timeout : 60,
                      .retries = s->retries, .bandwidth = s->bandwidth, .max_bytes = 0};
    const char *path = t->api_path ? t->api_path : t->name;
    st_rc rc = ST_OK;
    memset(tb, 0, sizeof *tb);
    for (int page = 1;; page++) {
        st_buf u;
        st_buf_init(&u, 0);
        if (s->kind == X_WORLDBANK) {
            st_buf_printf(&u, "%s/v2/%s?format=json&per_page=1000&page=%d", s->url, path, page);
            if (since || s->start_period)
                st_buf_printf(&u, "&date=%s:9999", since ? since : s->start_period);
        } else {
            st_buf_printf(&u, "%s/data/%s?format=%s", s->url, path,
                          s->kind == X_ECB ? "csvdata" : "csvfile");
            if (s->start_period)
                st_buf_printf(&u, "&startPeriod=%s", s->start_period);
            if (since)
                st_buf_printf(&u, "&updatedAfter=%s", since);
        }
        char *body = NULL;
        size_t len = 0;
        long status = 0;
        rc = x_http_get(u.data, &ho, &body, &len, &status, err);
        st_buf_free(&u);
        if (rc)
            break;
        *bytes += (int64_t)len;
        if (s->kind == X_WORLDBANK) {
            rc = x_parse_worldbank(body, len, tb, err);
        } else if (status == 304 || len == 0) {
            rc = ST_OK;   /* nothing updated since updatedAfter */
        } else if (len && body[0] == '<') {
            rc = x_parse_sdmx_ml(body, len, tb, err);
        } else {
            rc = x_parse_sdmx_csv(body, len, tb, err);
        }
        st_free(body);
        if (rc) {
            st_err_ctx(err, "page %d", page);
            break;
        }
        if (s->kind != X_WORLDBANK || page >= tb->pages || page >= 10000)
            break;
    }
    return rc;
}

st_rc x_http_run_table(const x_project *p, const x_source_cfg *src, const x_table_cfg *t,
                       const st_extract_opts *o, st_state *state, st_extract_result *res,
                       st_err *err)
{
    int64_t t0 = st_mono_ns();
    x_table tb;
    memset(&tb, 0, sizeof tb);
    st_engine *eng = NULL;
    st_delta_schema *schema = NULL;
    st_parquet_file *files = NULL;
    size_t n_files = 0;
    char *wm = NULL, *hs = NULL, *table_path = NULL, *app_id = NULL, *batch = NULL;
    x_run *run = NULL;
    bool incremental = t->strategy == X_INCREMENTAL && !o->full;
    char now[32];
    time_t secs = time(NULL);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    st_rc rc = x_state_get_table(state, src->name, t->name, &wm, &hs, err);
    char *pred = "";
    rc = rc ? rc : x_state_new_run(state, src->name, t->name, incremental ? "incremental" : "full",
                                   incremental ? wm : NULL, now, &pred, 1, &run, err);
    if (rc)
        goto out;
    res->run_id = run->id;
    res->n_chunks = 1;
    rc = fetch_all(src, t, incremental ? wm : NULL, &tb, &res->bytes, err);
    if (rc)
        goto out;
    res->rows_read = (int64_t)tb.n_rows;
    if ((tb.n_cols == 0 || tb.n_rows == 0) && incremental) {
        /* nothing new: record the run, keep the table (a World Bank range
         * keeps its lower bound: the latest period may still be revised) */
        rc = x_state_set_table(state, src->name, t->name,
                               src->kind == X_WORLDBANK ? wm : now, NULL, run->id, err);
        rc = rc ? rc : x_state_finish_run(state, run->id, "committed", 0, 0, res->bytes,
                                          (st_mono_ns() - t0) / 1000000, NULL, -1, NULL, err);
        goto out;
    }
    rc = st_engine_open(NULL, &eng, err);
    st_buf ddl;
    st_buf_init(&ddl, 0);
    st_buf_puts(&ddl, "CREATE TEMP TABLE _x_api(");
    for (size_t i = 0; i < tb.n_cols; i++) {
        st_buf_puts(&ddl, i ? ", " : "");
        st_buf_sql_ident(&ddl, tb.cols[i]);
        st_buf_puts(&ddl, " VARCHAR");
    }
    st_buf_puts(&ddl, ")");
    rc = rc ? rc : st_engine_exec(eng, ddl.data, err);
    st_buf_free(&ddl);
    duckdb_appender app;
    rc = rc ? rc : st_engine_appender(eng, "_x_api", &app, err);
    if (rc)
        goto out;
    for (size_t r = 0; r < tb.n_rows; r++) {
        for (size_t c = 0; c < tb.n_cols; c++) {
            const char *v = tb.cells[r * tb.n_cols + c];
            if (v)
                duckdb_append_varchar(app, v);
            else
                duckdb_append_null(app);
        }
        duckdb_appender_end_row(app);
    }
    rc = st_engine_appender_close(&app, err);
    if (rc)
        goto out;
    table_path = st_sprintf("%s/bronze/%s", p->lake, t->target);
    app_id = st_sprintf("extract.%s.%s", src->name, t->name);
    batch = st_sprintf("%s.%s#%lld", src->name, t->name, (long long)run->id);
    st_buf sel;
    st_buf_init(&sel, 0);
    st_buf_puts(&sel, "SELECT ");
    for (size_t i = 0; i < tb.n_cols; i++) {
        st_buf_puts(&sel, i ? ", " : "");
        if (is_value_col(src->kind, tb.cols[i])) {
            /* "NaN" and "" are how the APIs spell a missing observation */
            st_buf_puts(&sel, "TRY_CAST(nullif(");
            st_buf_sql_ident(&sel, tb.cols[i]);
            st_buf_puts(&sel, ", 'NaN') AS DOUBLE) AS ");
        } else {
            st_buf_sql_ident(&sel, tb.cols[i]);
            st_buf_puts(&sel, " AS ");
        }
        st_buf_sql_ident(&sel, tb.cols[i]);
    }
    st_buf_puts(&sel, ", ");
    st_buf_sql_str(&sel, batch);
    st_buf_puts(&sel, " AS _batch_id, now()::TIMESTAMPTZ AS _loaded_at");
    if (t->country || src->country) {
        st_buf_puts(&sel, ", ");
        st_buf_sql_str(&sel, t->country ? t->country : src->country);
        st_buf_puts(&sel, " AS _country");
    }
    st_buf_puts(&sel, " FROM _x_api");
    /* schema from the staged query */
    char *probe = st_sprintf("%s LIMIT 0", sel.data);
    duckdb_result r;
    rc = st_engine_query(eng, probe, &r, err);
    st_free(probe);
    if (rc) {
        st_buf_free(&sel);
        goto out;
    }
    schema = st_calloc(1, sizeof *schema);
    schema->fields = st_calloc(duckdb_column_count(&r) + 1, sizeof *schema->fields);
    for (idx_t i = 0; rc == ST_OK && i < duckdb_column_count(&r); i++) {
        duckdb_logical_type lt = duckdb_column_logical_type(&r, i);
        st_dfield *f = &schema->fields[schema->n_fields++];
        f->name = st_strdup(duckdb_column_name(&r, i));
        f->nullable = true;
        f->metadata_json = st_strdup("{}");
        rc = st_delta_type_from_duckdb(lt, &f->type, err);
        duckdb_destroy_logical_type(&lt);
    }
    duckdb_destroy_result(&r);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "r%lld-c0-b0-", (long long)run->id);
    st_parquet_opts po = {0};
    po.file_prefix = prefix;
    /* agent mode: the file and a manifest go to --to-dir, nothing is committed */
    char *out_dir = o->to_dir ? st_sprintf("%s/%s", o->to_dir, t->target) : st_strdup(table_path);
    rc = rc ? rc : st_mkdirs(out_dir, err);
    rc = rc ? rc : st_engine_write_parquet(eng, sel.data, out_dir, &po, &files, &n_files, err);
    st_buf_free(&sel);
    if (rc) {
        st_free(out_dir);
        goto out;
    }
    char **keys = st_calloc(tb.n_cols + 1, sizeof *keys);
    size_t nk = 0;
    for (size_t i = 0; i < tb.n_cols; i++)
        if (x_api_is_key(src->kind, tb.cols, i))
            keys[nk++] = tb.cols[i];
    if (o->to_dir) {
        x_manifest m = {.dir = out_dir, .source = src->name, .table = t->name,
                        .target = t->target, .strategy = incremental ? "incremental" : "full",
                        .run_id = run->id, .watermark = NULL,
                        .key = (const char *const *)keys, .n_key = nk, .schema = schema,
                        .files = files, .n_files = n_files};
        rc = x_write_manifest(&m, err);
        st_free(keys);
        st_free(out_dir);
        if (rc)
            goto out;
        res->rows_written = n_files ? files[0].rows : 0;
        rc = x_state_finish_run(state, run->id, "exported", res->rows_read, res->rows_written,
                                res->bytes, (st_mono_ns() - t0) / 1000000, NULL, -1, NULL, err);
        goto out;
    }
    st_free(out_dir);
    /* raw first, as for database tables: the response rows of this run as
     * partition _run_id, so `strata reprocess` can rebuild bronze */
    rc = x_raw_land(eng, p, src, t, run->id, schema, table_path, files, n_files, false, err);
    if (rc) {
        st_free(keys);
        goto out;
    }
    x_land l;
    memset(&l, 0, sizeof l);
    l.table_path = table_path;
    l.app_id = app_id;
    l.run_id = run->id;
    l.batch_id = batch;
    l.schema = schema;
    l.files = files;
    l.n_files = n_files;
    char *keys_sql = NULL;
    if (incremental && n_files) {
        st_buf k;
        st_buf_init(&k, 0);
        st_buf_puts(&k, "SELECT DISTINCT ");
        for (size_t i = 0; i < nk; i++) {
            st_buf_puts(&k, i ? ", " : "");
            st_buf_sql_ident(&k, keys[i]);
        }
        st_buf_puts(&k, " FROM read_parquet(");
        st_buf_sql_str(&k, files[0].path);
        st_buf_puts(&k, ")");
        keys_sql = st_buf_take(&k);
        l.keys_sql = keys_sql;
        l.key = keys;
        l.n_key = nk;
    } else {
        l.replace_all = true;
    }
    st_delta_result dr;
    rc = x_land_commit(eng, &l, &dr, err);
    st_free(keys_sql);
    st_free(keys);
    if (rc)
        goto out;
    res->version = dr.version;
    res->rows_written = n_files ? files[0].rows : 0;
    char *next_wm = NULL;
    if (src->kind == X_WORLDBANK) {
        /* the latest period fetched: the next run asks for date=<it>:9999 so
         * revisions of that period and new periods come back; merged by key */
        rc = st_engine_query_str(eng, "SELECT max(date) FROM _x_api", &next_wm, err);
        if (rc)
            goto out;
    }
    rc = x_state_set_table(state, src->name, t->name,
                           src->kind == X_WORLDBANK ? (next_wm ? next_wm : wm) : now, NULL,
                           run->id, err);
    st_free(next_wm);
    char *sj = st_delta_schema_to_json(schema);
    rc = rc ? rc : x_state_finish_run(state, run->id, "committed", res->rows_read,
                                      res->rows_written, res->bytes,
                                      (st_mono_ns() - t0) / 1000000, sj, dr.version, NULL, err);
    st_free(sj);
out:
    if (rc && run)
        x_state_finish_run(state, run->id, "failed", res->rows_read, 0, 0,
                           (st_mono_ns() - t0) / 1000000, NULL, -1, err ? err->msg : "error",
                           NULL);
    res->duration_ms = (st_mono_ns() - t0) / 1000000;
    x_table_free(&tb);
    st_parquet_files_free(files, n_files);
    st_delta_schema_free(schema);
    st_engine_close(eng);
    x_run_free(run);
    st_free(wm);
    st_free(hs);
    st_free(table_path);
    st_free(app_id);
    st_free(batch);
    return rc;
}
