/*
 * asset.c - one attempt of one asset: mounting its inputs as views in the
 * worker's engine, then the body of its kind.
 *   EXTRACT  st_extract_run on "source.table"
 *   SILVER   st_silver_run on the entity, or st_silver_fact_run for a
 *            `kind: fact` declaration (same as `strata silver run`)
 *   GOLD     render the SQL, compute it into a temp table, run the checks
 *            on it, and only then write it in one Delta commit (full
 *            overwrite, or replace_where on the partitions it covers)
 *   CUSTOM   the C callback
 * Checks of non-gold assets run on the table after its commit.
 */
#include "orch_int.h"

#include "strata/extract.h"
#include "strata/silver.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static st_rc split_key(const char *key, char **layer, const char **name)
{
    const char *dot = strchr(key, '.');
    if (!dot)
        return ST_ERR_INVALID;
    *layer = st_strndup(key, (size_t)(dot - key));
    *name = dot + 1;
    return *layer ? ST_OK : ST_ERR_NOMEM;
}

st_rc orch_mount(st_orch *o, st_engine *eng, const char *key, bool *out_exists, st_err *err)
{
    char *path = st_project_table_path(o->p, key);
    char *layer = NULL, *sql = NULL;
    const char *name = NULL;
    st_delta_snapshot *s = NULL;
    st_buf b;
    st_buf_init(&b, 0);
    int64_t v = -1;
    *out_exists = false;
    st_rc rc = path ? split_key(key, &layer, &name) : ST_ERR_NOMEM;
    if (rc) {
        rc = st_fail(err, rc, "mounting %s: not a layer.table key", key);
        goto done;
    }
    if (st_delta_latest_version(path, &v, NULL) != ST_OK || v < 0)
        goto done;
    rc = st_delta_snapshot_load(eng, path, -1, &s, err);
    rc = rc ? rc : st_delta_scan_sql(eng, s, NULL, &sql, err);
    rc = rc ? rc : st_buf_puts(&b, "CREATE SCHEMA IF NOT EXISTS ");
    rc = rc ? rc : st_buf_sql_ident(&b, layer);
    rc = rc ? rc : st_buf_puts(&b, "; CREATE OR REPLACE VIEW ");
    rc = rc ? rc : st_buf_sql_ident(&b, layer);
    rc = rc ? rc : st_buf_putc(&b, '.');
    rc = rc ? rc : st_buf_sql_ident(&b, name);
    rc = rc ? rc : st_buf_puts(&b, " AS ");
    rc = rc ? rc : st_buf_puts(&b, sql);
    rc = rc ? rc : st_engine_exec(eng, b.data, err);
    if (rc)
        st_err_ctx(err, "mounting %s", key);
    else
        *out_exists = true;
done:
    st_delta_snapshot_free(s);
    st_buf_free(&b);
    st_free(sql);
    st_free(layer);
    st_free(path);
    return rc;
}

/* Parses "YYYY-MM-DD" (or "YYYY-MM" with day 1 when month) into tm. */
static bool parse_date(const char *s, bool month, struct tm *tm)
{
    int y = 0, m = 0, d = 1;
    char tail = 0;
    int n = month ? sscanf(s, "%4d-%2d%c", &y, &m, &tail) : sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail);
    if (n != (month ? 2 : 3) || y < 1 || m < 1 || m > 12 || d < 1 || d > 31 ||
        strlen(s) != (month ? 7u : 10u))
        return false;
    memset(tm, 0, sizeof *tm);
    tm->tm_year = y - 1900;
    tm->tm_mon = m - 1;
    tm->tm_mday = d;
    time_t t = timegm(tm);
    struct tm back;
    gmtime_r(&t, &back);
    if (back.tm_mday != d || back.tm_mon != m - 1)
        return false;
    *tm = back;
    return true;
}

static char *fmt_date(const struct tm *tm)
{
    return st_sprintf("%04d-%02d-%02d", tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday);
}

st_rc orch_part_pred(const st_asset_def *a, const char *partition, char **out_pred,
                     char **out_start, char **out_end, st_err *err)
{
    st_buf b;
    st_buf_init(&b, 0);
    char *start = NULL, *end = NULL;
    st_rc rc = ST_OK;
    if (a->part == ST_PART_DAY || a->part == ST_PART_MONTH) {
        bool month = a->part == ST_PART_MONTH;
        struct tm tm;
        if (!parse_date(partition, month, &tm))
            return st_fail(err, ST_ERR_INVALID, "%s: partition '%s' is not a %s", a->key,
                           partition, month ? "month (YYYY-MM)" : "day (YYYY-MM-DD)");
        start = fmt_date(&tm);
        if (month)
            tm.tm_mon++;
        else
            tm.tm_mday++;
        time_t t = timegm(&tm);
        gmtime_r(&t, &tm);
        end = fmt_date(&tm);
        rc = start && end ? st_buf_sql_ident(&b, a->part_column) : ST_ERR_NOMEM;
        rc = rc ? rc : st_buf_printf(&b, " >= DATE '%s' AND ", start);
        rc = rc ? rc : st_buf_sql_ident(&b, a->part_column);
        rc = rc ? rc : st_buf_printf(&b, " < DATE '%s'", end);
    } else if (a->part == ST_PART_VALUE) {
        bool known = false;
        for (size_t i = 0; i < a->n_part_values; i++)
            known = known || !strcmp(a->part_values[i], partition);
        if (!known)
            return st_fail(err, ST_ERR_INVALID, "%s: '%s' is not one of its partitions", a->key,
                           partition);
        rc = st_buf_sql_ident(&b, a->part_column);
        rc = rc ? rc : st_buf_puts(&b, " = ");
        rc = rc ? rc : st_buf_sql_str(&b, partition);
    } else {
        return st_fail(err, ST_ERR_INVALID, "%s is not partitioned", a->key);
    }
    if (rc) {
        st_buf_free(&b);
        st_free(start);
        st_free(end);
        return st_fail(err, ST_ERR_NOMEM, "partition predicate");
    }
    *out_pred = st_buf_take(&b);
    if (out_start)
        *out_start = start;
    else
        st_free(start);
    if (out_end)
        *out_end = end;
    else
        st_free(end);
    return ST_OK;
}

/* Logs each result and records them; the number of failed error checks. */
static st_rc run_checks(st_orch *o, st_asset_ctx *ctx, const char *rel, size_t *n_err_out,
                        int *n_failed_out, char **names_out, st_err *err)
{
    const st_asset_def *a = ctx->asset;
    st_check_result *res = NULL;
    size_t n_err = 0;
    st_rc rc = ST_OK;
    /* a relationships check reads its target under its layer.name; the DAG
     * made it an upstream, so it is mounted here whether or not the model's
     * SQL reads it */
    for (size_t i = 0; rc == ST_OK && i < a->n_checks; i++) {
        const st_check *c = &a->checks[i];
        bool exists = false;
        if (c->kind != ST_CHECK_RELATIONSHIPS || !strcmp(c->to, a->key))
            continue;
        rc = orch_mount(o, ctx->eng, c->to, &exists, err);
        if (rc == ST_OK && !exists)
            rc = st_fail(err, ST_ERR_NOTFOUND, "%s: check %s reads %s, which has no table yet",
                         a->key, c->name, c->to);
    }
    rc = rc ? rc : st_quality_run(ctx->eng, a, rel, &res, &n_err, err);
    if (rc)
        return rc;
    st_buf names;
    st_buf_init(&names, 4096);
    int n_failed = 0;
    for (size_t i = 0; i < a->n_checks; i++) {
        st_asset_log(ctx, "check %s %s: %s", res[i].passed ? "passed" : "FAILED",
                     res[i].check->severity == ST_SEV_ERROR ? "(error)" : "(warn)",
                     res[i].message ? res[i].message : "");
        if (!res[i].passed) {
            n_failed++;
            if (res[i].check->severity == ST_SEV_ERROR)
                st_buf_printf(&names, "%s%s", names.len ? ", " : "", res[i].check->name);
        }
    }
    st_err e2;
    if (orch_quality_record(o, ctx->eng, ctx->run_id, a, ctx->partition, res, a->n_checks, &e2))
        st_asset_log(ctx, "warning: %s", e2.msg);
    st_check_results_free(res, a->n_checks);
    *n_err_out = n_err;
    *n_failed_out = n_failed;
    *names_out = names.data ? st_buf_take(&names) : st_strdup("");
    return ST_OK;
}

static st_rc create_from_new(st_engine *eng, const st_asset_def *a, const char *path, st_err *err)
{
    duckdb_result r;
    st_rc rc = st_engine_query(eng, "SELECT * FROM __st_new LIMIT 0", &r, err);
    if (rc)
        return rc;
    idx_t n = duckdb_column_count(&r);
    st_delta_schema *s = st_calloc(1, sizeof *s);
    if (s)
        s->fields = st_calloc(n + 1, sizeof *s->fields);
    if (!s || !s->fields) {
        st_free(s);
        duckdb_destroy_result(&r);
        return st_fail(err, ST_ERR_NOMEM, "%s: schema", a->key);
    }
    for (idx_t i = 0; rc == ST_OK && i < n; i++) {
        st_dfield *f = &s->fields[i];
        duckdb_logical_type lt = duckdb_column_logical_type(&r, i);
        rc = st_delta_type_from_duckdb(lt, &f->type, err);
        duckdb_destroy_logical_type(&lt);
        if (rc) {
            st_err_ctx(err, "%s: column %s", a->key, duckdb_column_name(&r, i));
            break;
        }
        s->n_fields++;
        f->name = st_strdup(duckdb_column_name(&r, i));
        f->metadata_json = st_strdup("{}");
        f->nullable = true;
        if (!f->name || !f->metadata_json)
            rc = st_fail(err, ST_ERR_NOMEM, "%s: schema", a->key);
    }
    duckdb_destroy_result(&r);
    for (size_t i = 0; rc == ST_OK && i < a->n_partition_by; i++)
        if (!st_delta_schema_find(s, a->partition_by[i]))
            rc = st_fail(err, ST_ERR_INVALID, "%s: partition column %s is not in the result",
                         a->key, a->partition_by[i]);
    st_delta_create_opts co = {.name = a->name,
                               .description = a->description,
                               .partition_by = (const char *const *)a->partition_by,
                               .n_partition_by = a->n_partition_by};
    rc = rc ? rc : st_mkdirs(path, err);
    rc = rc ? rc : st_delta_create(path, s, &co, err);
    if (rc == ST_ERR_EXISTS)
        rc = ST_OK;
    st_delta_schema_free(s);
    return rc;
}

/* replace_where covering the partition values present in __st_new. */
static st_rc dynamic_pred(st_engine *eng, const char *col, char **out, st_err *err)
{
    st_buf q;
    st_buf_init(&q, 0);
    st_rc rc = st_buf_puts(&q, "SELECT coalesce(string_agg(DISTINCT quote(CAST(");
    rc = rc ? rc : st_buf_sql_ident(&q, col);
    rc = rc ? rc : st_buf_puts(&q, " AS VARCHAR)), ', '), '') || CASE WHEN count(*) > count(");
    rc = rc ? rc : st_buf_sql_ident(&q, col);
    rc = rc ? rc : st_buf_puts(&q, ") THEN '|null' ELSE '' END FROM __st_new");
    char *vals = NULL;
    rc = rc ? rc : st_engine_query_str(eng, q.data, &vals, err);
    st_buf_free(&q);
    if (rc)
        return rc;
    st_buf b;
    st_buf_init(&b, 0);
    bool has_null = vals && strstr(vals, "|null") && !strcmp(strstr(vals, "|null"), "|null");
    if (has_null)
        *strstr(vals, "|null") = 0;
    bool any = vals && *vals;
    rc = st_buf_putc(&b, '(');
    if (any) {
        rc = rc ? rc : st_buf_puts(&b, "CAST(");
        rc = rc ? rc : st_buf_sql_ident(&b, col);
        rc = rc ? rc : st_buf_printf(&b, " AS VARCHAR) IN (%s)", vals);
    }
    if (has_null) {
        rc = rc ? rc : st_buf_puts(&b, any ? " OR " : "");
        rc = rc ? rc : st_buf_sql_ident(&b, col);
        rc = rc ? rc : st_buf_puts(&b, " IS NULL");
    }
    if (!any && !has_null)
        rc = rc ? rc : st_buf_puts(&b, "false");
    rc = rc ? rc : st_buf_putc(&b, ')');
    st_free(vals);
    if (rc) {
        st_buf_free(&b);
        return st_fail(err, ST_ERR_NOMEM, "partition predicate");
    }
    *out = st_buf_take(&b);
    return ST_OK;
}

static st_rc exec_gold(st_orch *o, st_asset_ctx *ctx, st_err *err)
{
    const st_asset_def *a = ctx->asset;
    const st_dag *d = o->dag;
    long idx = st_dag_find(d, a->key);
    char *path = st_project_table_path(o->p, a->key);
    char *pred = NULL, *start = NULL, *end = NULL, *sql = NULL, *create = NULL;
    char *this_rel = NULL, *names = NULL, *cur = NULL;
    st_rc rc = path && idx >= 0 ? ST_OK : st_fail(err, ST_ERR_NOMEM, "%s", a->key);
    for (size_t j = 0; rc == ST_OK && j < d->n_deps[idx]; j++) {
        const st_asset_def *in = d->a[d->deps[idx][j]];
        bool exists = false;
        rc = orch_mount(o, ctx->eng, in->key, &exists, err);
        if (rc == ST_OK && !exists)
            rc = st_fail(err, ST_ERR_NOTFOUND, "%s reads %s, which has no table yet (run it first)",
                         a->key, in->key);
    }
    bool this_exists = false;
    rc = rc ? rc : orch_mount(o, ctx->eng, a->key, &this_exists, err);
    if (rc)
        goto done;
    const char *part = ctx->partition;
    if (!part && (a->part == ST_PART_DAY || a->part == ST_PART_MONTH)) {
        /* an ordinary run of a time-partitioned model builds the current partition */
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        cur = a->part == ST_PART_DAY ? st_sprintf("%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday)
                                     : st_sprintf("%04d-%02d", tm.tm_year + 1900, tm.tm_mon + 1);
        part = cur;
        st_asset_log(ctx, "no partition given: building the current one, %s", part ? part : "?");
    }
    if (part && a->part != ST_PART_NONE) {
        rc = orch_part_pred(a, part, &pred, &start, &end, err);
        if (rc)
            goto done;
    }
    if (this_exists) {
        char *layer = NULL;
        const char *name = NULL;
        st_buf tb;
        st_buf_init(&tb, 0);
        rc = split_key(a->key, &layer, &name);
        rc = rc ? rc : st_buf_sql_ident(&tb, layer);
        rc = rc ? rc : st_buf_putc(&tb, '.');
        rc = rc ? rc : st_buf_sql_ident(&tb, name);
        st_free(layer);
        this_rel = rc ? NULL : st_buf_take(&tb);
        st_buf_free(&tb);
        if (!this_rel) {
            rc = st_fail(err, ST_ERR_NOMEM, "%s", a->key);
            goto done;
        }
    }
    st_render_vars v = {.this_rel = this_rel,
                        .is_incremental = this_exists && a->mat == ST_MAT_INCREMENTAL,
                        .partition = part,
                        .part_start = start,
                        .part_end = end};
    rc = st_render_sql(a->sql, d, &v, &sql, err);
    if (rc) {
        st_err_ctx(err, "%s", a->file);
        goto done;
    }
    size_t n = strlen(sql);
    while (n && (sql[n - 1] == ';' || sql[n - 1] == ' ' || sql[n - 1] == '\n' || sql[n - 1] == '\t'))
        sql[--n] = 0;
    create = st_sprintf("CREATE OR REPLACE TEMP TABLE __st_new AS SELECT * FROM (\n%s\n) AS __m%s%s",
                        sql, pred ? " WHERE " : "", pred ? pred : "");
    rc = create ? st_engine_exec(ctx->eng, create, err) : st_fail(err, ST_ERR_NOMEM, "%s", a->key);
    if (rc) {
        st_err_ctx(err, "%s: computing the model", a->key);
        goto done;
    }
    if (st_asset_cancelled(ctx)) {
        rc = st_fail(err, ST_ERR_LIMIT, "%s: timed out", a->key);
        goto done;
    }
    int64_t n_rows = 0;
    rc = st_engine_query_i64(ctx->eng, "SELECT count(*) FROM __st_new", &n_rows, err);
    if (rc)
        goto done;
    if (a->n_checks) {
        size_t n_err = 0;
        int n_failed = 0;
        rc = run_checks(o, ctx, "__st_new", &n_err, &n_failed, &names, err);
        if (rc)
            goto done;
        ctx->rows = n_rows;
        ctx->checks_failed = n_failed;
        if (n_err) {
            rc = st_fail(err, ST_ERR_INVALID,
                         "%s: %zu error check(s) failed (%s); the table stays at its previous "
                         "version", a->key, n_err, names);
            goto done;
        }
    }
    if (!this_exists) {
        rc = create_from_new(ctx->eng, a, path, err);
        if (rc)
            goto done;
    }
    st_delta_write_opts wo = {.mode = ST_DELTA_OVERWRITE, .operation = "WRITE"};
    char *dyn = NULL;
    if (pred) {
        wo.replace_where = pred;
    } else if (a->mat == ST_MAT_INCREMENTAL || a->part == ST_PART_VALUE) {
        const char *col = a->part_column ? a->part_column : a->partition_by[0];
        rc = dynamic_pred(ctx->eng, col, &dyn, err);
        if (rc)
            goto done;
        wo.replace_where = dyn;
    }
    st_delta_result res;
    if (wo.replace_where && !strcmp(wo.replace_where, "(false)")) {
        st_asset_log(ctx, "no rows: nothing to replace");
        res.version = -1;
        res.rows_written = 0;
        res.bytes_added = 0;
    } else {
        rc = st_delta_write(ctx->eng, path, "SELECT * FROM __st_new", &wo, &res, err);
    }
    st_free(dyn);
    if (rc)
        goto done;
    if (res.version < 0)
        st_delta_latest_version(path, &res.version, NULL);
    ctx->version = res.version;
    ctx->rows = res.rows_written;
    ctx->bytes = res.bytes_added;
    st_asset_log(ctx, "wrote %lld rows (%lld bytes) as version %lld%s%s", (long long)res.rows_written,
                 (long long)res.bytes_added, (long long)res.version,
                 wo.replace_where ? ", replacing " : "", wo.replace_where ? (pred ? pred : "the partitions in the result") : "");
done:
    st_engine_exec(ctx->eng, "DROP TABLE IF EXISTS __st_new", NULL);
    st_free(path);
    st_free(pred);
    st_free(start);
    st_free(end);
    st_free(sql);
    st_free(create);
    st_free(this_rel);
    st_free(names);
    st_free(cur);
    return rc;
}

/* Checks of a non-gold asset, over its committed table. */
static st_rc post_checks(st_orch *o, st_asset_ctx *ctx, st_err *err)
{
    const st_asset_def *a = ctx->asset;
    if (!a->n_checks)
        return ST_OK;
    bool exists = false;
    st_rc rc = orch_mount(o, ctx->eng, a->key, &exists, err);
    if (rc)
        return rc;
    if (!exists)
        return st_fail(err, ST_ERR_NOTFOUND, "%s: no table to check", a->key);
    char *layer = NULL;
    const char *name = NULL;
    st_buf tb;
    st_buf_init(&tb, 0);
    rc = split_key(a->key, &layer, &name);
    rc = rc ? rc : st_buf_sql_ident(&tb, layer);
    rc = rc ? rc : st_buf_putc(&tb, '.');
    rc = rc ? rc : st_buf_sql_ident(&tb, name);
    st_free(layer);
    if (rc) {
        st_buf_free(&tb);
        return st_fail(err, ST_ERR_NOMEM, "%s", a->key);
    }
    size_t n_err = 0;
    int n_failed = 0;
    char *names = NULL;
    rc = run_checks(o, ctx, tb.data, &n_err, &n_failed, &names, err);
    st_buf_free(&tb);
    ctx->checks_failed = n_failed;
    if (rc == ST_OK && n_err)
        rc = st_fail(err, ST_ERR_INVALID,
                     "%s: %zu error check(s) failed (%s); what depends on it is stopped", a->key,
                     n_err, names);
    st_free(names);
    return rc;
}

/* A `kind: fact` declaration: st_silver_fact_run (conform, link, quarantine). */
static st_rc exec_silver_fact(st_orch *o, st_asset_ctx *ctx, st_err *err)
{
    const st_asset_def *a = ctx->asset;
    st_silver_fact *f = NULL;
    st_silver_fact_stats st;
    memset(&st, 0, sizeof st);
    st_rc rc = st_silver_fact_load(o->p->dir, a->name, &f, err);
    rc = rc ? rc : st_silver_fact_run(ctx->eng, o->p->lake, f, &st, err);
    st_silver_fact_free(f);
    if (rc)
        return rc;
    ctx->rows = st.rows_ok;
    char *path = st_project_table_path(o->p, a->key);
    if (path)
        st_delta_latest_version(path, &ctx->version, NULL);
    st_free(path);
    st_asset_log(ctx, "%s: bronze version %lld, %lld rows in, %lld conformed, %lld quarantined",
                 st.skipped ? "up to date" : "conformed", (long long)st.source_version,
                 (long long)st.rows_in, (long long)st.rows_ok, (long long)st.rows_quarantined);
    return post_checks(o, ctx, err);
}

static st_rc exec_silver(st_orch *o, st_asset_ctx *ctx, st_err *err)
{
    const st_asset_def *a = ctx->asset;
    bool is_fact = false;
    st_rc rc = st_silver_is_fact(o->p->dir, a->name, &is_fact, err);
    if (rc)
        return rc;
    if (is_fact)
        return exec_silver_fact(o, ctx, err);
    st_silver_entity *ent = NULL;
    st_silver_stats st;
    memset(&st, 0, sizeof st);
    rc = st_silver_entity_load(o->p->dir, a->name, &ent, err);
    rc = rc ? rc : st_silver_run(ctx->eng, o->p->lake, ent, &st, err);
    st_silver_entity_free(ent);
    if (rc)
        return rc;
    ctx->rows = st.rows_written;
    ctx->bytes = st.bytes_written;
    ctx->version = st.version;
    if (ctx->version < 0) {
        char *path = st_project_table_path(o->p, a->key);
        if (path)
            st_delta_latest_version(path, &ctx->version, NULL);
        st_free(path);
    }
    st_asset_log(ctx, "%s: bronze version %lld, %lld change rows, %lld keys changed, %lld rows "
                 "written", st.skipped ? "up to date" : "merged", (long long)st.source_version,
                 (long long)st.rows_in, (long long)st.keys_changed, (long long)st.rows_written);
    return post_checks(o, ctx, err);
}

static st_rc exec_extract(st_orch *o, st_asset_ctx *ctx, st_err *err)
{
    const st_asset_def *a = ctx->asset;
    st_extract_opts xo;
    memset(&xo, 0, sizeof xo);
    xo.project_dir = o->p->dir;
    xo.lake = o->p->lake;
    xo.state_path = o->p->state_path;
    st_extract_report *rep = NULL;
    st_rc rc = st_extract_run(&xo, a->selector, &rep, err);
    for (size_t i = 0; rep && i < rep->n_tables; i++) {
        const st_extract_result *t = &rep->tables[i];
        ctx->rows += t->rows_written;
        ctx->bytes += t->bytes;
        if (t->version >= 0)
            ctx->version = t->version;
        st_asset_log(ctx, "%s %s: %lld rows read, %lld written, version %lld%s%s", t->target,
                     t->strategy ? t->strategy : "", (long long)t->rows_read,
                     (long long)t->rows_written, (long long)t->version, t->error ? ": " : "",
                     t->error ? t->error : "");
    }
    st_extract_report_free(rep);
    if (rc)
        return rc;
    return post_checks(o, ctx, err);
}

st_rc orch_exec(st_orch *o, st_asset_ctx *ctx, st_err *err)
{
    const st_asset_def *a = ctx->asset;
    switch (a->kind) {
    case ST_ASSET_GOLD:
        return exec_gold(o, ctx, err);
    case ST_ASSET_SILVER:
        return exec_silver(o, ctx, err);
    case ST_ASSET_EXTRACT:
        return exec_extract(o, ctx, err);
    case ST_ASSET_CUSTOM: {
        if (!a->fn)
            return st_fail(err, ST_ERR_INVALID, "%s: custom asset without a body", a->key);
        st_rc rc = a->fn(a->fn_arg, ctx, err);
        return rc ? rc : post_checks(o, ctx, err);
    }
    case ST_ASSET_SOURCE:
        break;
    }
    return st_fail(err, ST_ERR_INVALID, "%s: source assets are observed, not run", a->key);
}
