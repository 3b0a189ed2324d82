/*
 * quality.c - runs data quality checks as SQL over a relation (for gold
 * models the temp table holding the new data, before it is committed) and
 * appends the results to the Delta table <lake>/_system/quality_results.
 * Declarations are parsed by src/project/checks.c.
 */
#include "orch_int.h"

#include <stdlib.h>
#include <string.h>

#define MAX_CHECK_SQL (1u << 20)

void st_check_results_free(st_check_result *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++)
        st_free(r[i].message);
    st_free(r);
}

static bool is_number(const char *s)
{
    char *end = NULL;
    if (!s || !*s)
        return false;
    strtod(s, &end);
    return end && !*end;
}

static st_rc put_literal(st_buf *b, const char *v)
{
    return is_number(v) ? st_buf_puts(b, v) : st_buf_sql_str(b, v);
}

static st_rc put_table(st_buf *b, const char *key)
{
    const char *dot = strchr(key, '.');
    if (!dot)
        return st_buf_sql_ident(b, key);
    char *layer = st_strndup(key, (size_t)(dot - key));
    st_rc rc = layer ? st_buf_sql_ident(b, layer) : ST_ERR_NOMEM;
    rc = rc ? rc : st_buf_putc(b, '.');
    rc = rc ? rc : st_buf_sql_ident(b, dot + 1);
    st_free(layer);
    return rc;
}

/* Builds the query whose single value is the number of failing rows (the
 * row count for row_count, the age in seconds for freshness). */
static st_rc check_sql(const st_check *c, const char *rel, st_buf *b, st_err *err)
{
    st_rc rc = ST_OK;
    switch (c->kind) {
    case ST_CHECK_NOT_NULL:
        rc = st_buf_printf(b, "SELECT count(*) FROM %s WHERE ", rel);
        for (size_t i = 0; rc == ST_OK && i < c->n_columns; i++) {
            rc = i ? st_buf_puts(b, " OR ") : ST_OK;
            rc = rc ? rc : st_buf_sql_ident(b, c->columns[i]);
            rc = rc ? rc : st_buf_puts(b, " IS NULL");
        }
        break;
    case ST_CHECK_UNIQUE:
        rc = st_buf_puts(b, "SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM ");
        rc = rc ? rc : st_buf_printf(b, "%s GROUP BY ", rel);
        for (size_t i = 0; rc == ST_OK && i < c->n_columns; i++) {
            rc = i ? st_buf_puts(b, ", ") : ST_OK;
            rc = rc ? rc : st_buf_sql_ident(b, c->columns[i]);
        }
        rc = rc ? rc : st_buf_puts(b, " HAVING count(*) > 1)");
        break;
    case ST_CHECK_ACCEPTED_VALUES:
        rc = st_buf_printf(b, "SELECT count(*) FROM %s WHERE ", rel);
        rc = rc ? rc : st_buf_sql_ident(b, c->columns[0]);
        rc = rc ? rc : st_buf_puts(b, " IS NOT NULL AND CAST(");
        rc = rc ? rc : st_buf_sql_ident(b, c->columns[0]);
        rc = rc ? rc : st_buf_puts(b, " AS VARCHAR) NOT IN (");
        for (size_t i = 0; rc == ST_OK && i < c->n_values; i++) {
            rc = i ? st_buf_puts(b, ", ") : ST_OK;
            rc = rc ? rc : st_buf_sql_str(b, c->values[i]);
        }
        rc = rc ? rc : st_buf_putc(b, ')');
        break;
    case ST_CHECK_RELATIONSHIPS:
        rc = st_buf_printf(b, "SELECT count(*) FROM %s AS __c WHERE __c.", rel);
        rc = rc ? rc : st_buf_sql_ident(b, c->columns[0]);
        rc = rc ? rc : st_buf_puts(b, " IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ");
        rc = rc ? rc : put_table(b, c->to);
        rc = rc ? rc : st_buf_puts(b, " AS __p WHERE __p.");
        rc = rc ? rc : st_buf_sql_ident(b, c->field ? c->field : c->columns[0]);
        rc = rc ? rc : st_buf_puts(b, " = __c.");
        rc = rc ? rc : st_buf_sql_ident(b, c->columns[0]);
        rc = rc ? rc : st_buf_putc(b, ')');
        break;
    case ST_CHECK_RANGE:
        rc = st_buf_printf(b, "SELECT count(*) FROM %s WHERE ", rel);
        if (c->min) {
            rc = rc ? rc : st_buf_sql_ident(b, c->columns[0]);
            rc = rc ? rc : st_buf_puts(b, " < ");
            rc = rc ? rc : put_literal(b, c->min);
        }
        if (c->max) {
            rc = rc ? rc : st_buf_puts(b, c->min ? " OR " : "");
            rc = rc ? rc : st_buf_sql_ident(b, c->columns[0]);
            rc = rc ? rc : st_buf_puts(b, " > ");
            rc = rc ? rc : put_literal(b, c->max);
        }
        break;
    case ST_CHECK_ROW_COUNT:
        rc = st_buf_printf(b, "SELECT count(*) FROM %s", rel);
        break;
    case ST_CHECK_FRESHNESS:
        rc = st_buf_puts(b, "SELECT date_diff('second', max(");
        rc = rc ? rc : st_buf_sql_ident(b, c->columns[0]);
        rc = rc ? rc : st_buf_printf(b, ")::TIMESTAMP, now()::TIMESTAMP) FROM %s", rel);
        break;
    case ST_CHECK_SQL: {
        st_render_vars v = {.this_rel = rel};
        char *q = NULL;
        rc = st_render_sql(c->sql, NULL, &v, &q, err);
        if (rc)
            return rc;
        /* strip a trailing semicolon so the query nests */
        size_t n = strlen(q);
        while (n && (q[n - 1] == ';' || q[n - 1] == ' ' || q[n - 1] == '\n'))
            q[--n] = 0;
        rc = st_buf_printf(b, "SELECT count(*) FROM (%s)", q);
        st_free(q);
        break;
    }
    }
    return rc ? st_fail(err, rc, "check %s: query too large", c->name) : ST_OK;
}

st_rc st_quality_run(st_engine *eng, const st_asset_def *a, const char *relation,
                     st_check_result **out, size_t *out_error_failed, st_err *err)
{
    st_check_result *res = st_calloc(a->n_checks + 1, sizeof *res);
    if (!res)
        return st_fail(err, ST_ERR_NOMEM, "checks of %s", a->key);
    size_t n_err = 0;
    for (size_t i = 0; i < a->n_checks; i++) {
        const st_check *c = &a->checks[i];
        st_check_result *r = &res[i];
        r->check = c;
        st_buf b;
        st_buf_init(&b, MAX_CHECK_SQL);
        st_err e;
        st_err_clear(&e);
        int64_t v = 0;
        st_rc rc = check_sql(c, relation, &b, &e);
        if (rc == ST_OK)
            rc = st_engine_query_i64(eng, b.data, &v, &e);
        st_buf_free(&b);
        if (c->kind == ST_CHECK_FRESHNESS && rc == ST_ERR_NOTFOUND) {
            /* max() of no rows: nothing is fresh */
            r->passed = false;
            r->failing = -1;
            r->message = st_sprintf("%s: no rows with a %s value", c->name, c->columns[0]);
        } else if (rc) {
            r->passed = false;
            r->failing = -1;
            r->message = st_sprintf("%s: the check could not run: %s", c->name, e.msg);
        } else if (c->kind == ST_CHECK_ROW_COUNT) {
            int64_t lo = c->min ? strtoll(c->min, NULL, 10) : INT64_MIN;
            int64_t hi = c->max ? strtoll(c->max, NULL, 10) : INT64_MAX;
            r->failing = v;
            r->passed = v >= lo && v <= hi;
            r->message = st_sprintf("%s: %lld rows%s", c->name, (long long)v,
                                    r->passed ? "" : " (outside the bounds)");
        } else if (c->kind == ST_CHECK_FRESHNESS) {
            r->failing = v;
            r->passed = v <= c->max_age_s;
            r->message = st_sprintf("%s: newest %s is %lld s old (max %lld s)", c->name,
                                    c->columns[0], (long long)v, (long long)c->max_age_s);
        } else {
            r->failing = v;
            r->passed = v == 0;
            r->message = st_sprintf("%s: %lld failing row(s)", c->name, (long long)v);
        }
        if (!r->passed && c->severity == ST_SEV_ERROR)
            n_err++;
    }
    *out = res;
    if (out_error_failed)
        *out_error_failed = n_err;
    return ST_OK;
}

static const char *kind_name(st_check_kind k)
{
    static const char *const names[] = {"not_null", "unique",    "accepted_values", "relationships",
                                        "range",    "row_count", "freshness",       "sql"};
    return (size_t)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

st_rc orch_quality_record(st_orch *o, st_engine *eng, const char *run_id, const st_asset_def *a,
                          const char *partition, const st_check_result *r, size_t n,
                          st_err *err)
{
    if (!n)
        return ST_OK;
    char *path = st_project_table_path(o->p, "_system.quality_results");
    st_buf b;
    st_buf_init(&b, 0);
    st_delta_schema *schema = NULL;
    st_rc rc = path ? ST_OK : st_fail(err, ST_ERR_NOMEM, "quality results");
    for (size_t i = 0; rc == ST_OK && i < n; i++) {
        rc = st_buf_puts(&b, i ? " UNION ALL SELECT " : "SELECT ");
        rc = rc ? rc : st_buf_sql_str(&b, run_id);
        rc = rc ? rc : st_buf_puts(&b, " AS run_id, ");
        rc = rc ? rc : st_buf_sql_str(&b, a->key);
        rc = rc ? rc : st_buf_puts(&b, " AS asset, ");
        rc = rc ? rc : (partition ? st_buf_sql_str(&b, partition) : st_buf_puts(&b, "NULL"));
        rc = rc ? rc : st_buf_puts(&b, "::VARCHAR AS partition, ");
        rc = rc ? rc : st_buf_sql_str(&b, r[i].check->name);
        rc = rc ? rc : st_buf_printf(&b, " AS check_name, '%s' AS kind, '%s' AS severity, %s AS"
                                         " passed, %lld::BIGINT AS failing_rows, ",
                                     kind_name(r[i].check->kind),
                                     r[i].check->severity == ST_SEV_ERROR ? "error" : "warn",
                                     r[i].passed ? "true" : "false", (long long)r[i].failing);
        rc = rc ? rc : st_buf_sql_str(&b, r[i].message ? r[i].message : "");
        rc = rc ? rc : st_buf_printf(&b, " AS message, to_timestamp(%lld / 1000000.0) AS checked_at",
                                     (long long)st_now_us());
    }
    if (rc) {
        rc = st_fail(err, ST_ERR_NOMEM, "quality results");
        goto done;
    }
    pthread_mutex_lock(&o->mu);
    int64_t v = -1;
    st_delta_latest_version(path, &v, NULL);
    if (v < 0) {
        rc = st_delta_schema_from_ddl("run_id string, asset string, partition string, "
                                      "check_name string, kind string, severity string, "
                                      "passed boolean, failing_rows long, message string, "
                                      "checked_at timestamp", &schema, err);
        st_delta_create_opts co = {.name = "quality_results",
                                   .description = "Strata data quality check results"};
        rc = rc ? rc : st_mkdirs(path, err);
        rc = rc ? rc : st_delta_create(path, schema, &co, err);
        if (rc == ST_ERR_EXISTS)
            rc = ST_OK;
    }
    st_delta_write_opts wo = {.mode = ST_DELTA_APPEND, .operation = "WRITE"};
    rc = rc ? rc : st_delta_write(eng, path, b.data, &wo, NULL, err);
    pthread_mutex_unlock(&o->mu);
    if (rc)
        st_err_ctx(err, "recording quality results of %s", a->key);
done:
    st_delta_schema_free(schema);
    st_buf_free(&b);
    st_free(path);
    return rc;
}
