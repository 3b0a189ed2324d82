/*
 * checks.c - parses data quality check declarations (the `checks:` list of
 * a model) into st_check.  Running them is src/orch/quality.c.
 *
 * Shapes accepted, one kind key per item:
 *   - not_null: col | [a, b]
 *   - unique: col | [a, b]            (the combination is unique)
 *   - accepted_values: {column: c, values: [x, y]}
 *   - relationships: {column: c, to: silver.customer, field: id}
 *   - range: {column: c, min: 0, max: 100}
 *   - row_count: {min: 1, max: 1000000}
 *   - freshness: {column: ts, max_age: 2h}
 *   - sql: "SELECT ... returning the failing rows"
 * plus optional `severity: warn|error` (default error) and `name:`.
 */
#include "strata/project.h"

#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    st_check_kind kind;
} kinds[] = {{"not_null", ST_CHECK_NOT_NULL},
             {"unique", ST_CHECK_UNIQUE},
             {"accepted_values", ST_CHECK_ACCEPTED_VALUES},
             {"relationships", ST_CHECK_RELATIONSHIPS},
             {"range", ST_CHECK_RANGE},
             {"row_count", ST_CHECK_ROW_COUNT},
             {"freshness", ST_CHECK_FRESHNESS},
             {"sql", ST_CHECK_SQL}};

void st_check_clear(st_check *c)
{
    if (!c)
        return;
    st_free(c->name);
    for (size_t i = 0; i < c->n_columns; i++)
        st_free(c->columns[i]);
    st_free(c->columns);
    for (size_t i = 0; i < c->n_values; i++)
        st_free(c->values[i]);
    st_free(c->values);
    st_free(c->to);
    st_free(c->field);
    st_free(c->min);
    st_free(c->max);
    st_free(c->sql);
    st_free(c->file);
    memset(c, 0, sizeof *c);
}

static st_rc push(char ***v, size_t *n, const char *s, st_err *err)
{
    char **nv = st_realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return st_fail(err, ST_ERR_NOMEM, "check");
    *v = nv;
    nv[*n] = st_strdup(s);
    if (!nv[*n])
        return st_fail(err, ST_ERR_NOMEM, "check");
    (*n)++;
    return ST_OK;
}

static st_rc names(const st_cfg *n, char ***v, size_t *cnt, st_err *err)
{
    if (!n)
        return ST_OK;
    if (st_cfg_kind_of(n) == ST_CFG_SCALAR)
        return push(v, cnt, st_cfg_scalar(n), err);
    if (st_cfg_kind_of(n) != ST_CFG_SEQ)
        return st_cfg_fail(n, err, ST_ERR_INVALID, "expected a column or a list");
    for (size_t i = 0; i < st_cfg_len(n); i++) {
        const char *s = st_cfg_scalar(st_cfg_at(n, i));
        if (!s)
            return st_cfg_fail(st_cfg_at(n, i), err, ST_ERR_INVALID, "expected a scalar");
        st_rc rc = push(v, cnt, s, err);
        if (rc)
            return rc;
    }
    return ST_OK;
}

/* "90", "90s", "15m", "2h", "3d" -> seconds; -1 when malformed. */
static int64_t parse_age(const char *s)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (end == s || v < 0)
        return -1;
    int64_t mul = 1;
    if (*end == 's')
        end++;
    else if (*end == 'm')
        mul = 60, end++;
    else if (*end == 'h')
        mul = 3600, end++;
    else if (*end == 'd')
        mul = 86400, end++;
    if (*end)
        return -1;
    return (int64_t)v * mul;
}

static st_rc dup_opt(const st_cfg *m, const char *key, char **out, st_err *err)
{
    const char *s = NULL;
    st_rc rc = st_cfg_get_str(m, key, NULL, &s, err);
    if (rc == ST_OK && s) {
        *out = st_strdup(s);
        if (!*out)
            rc = st_fail(err, ST_ERR_NOMEM, "check");
    }
    return rc;
}

static const char *kind_name(st_check_kind k)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (kinds[i].kind == k)
            return kinds[i].name;
    return "?";
}

st_rc st_check_parse(const st_cfg *node, st_check *out, st_err *err)
{
    static const char *const item_keys[] = {"not_null",  "unique",    "accepted_values",
                                            "relationships", "range", "row_count",
                                            "freshness", "sql",       "severity",
                                            "name",      NULL};
    static const char *const arg_keys[] = {"column", "columns", "values", "to",   "field",
                                           "min",    "max",     "max_age", "sql", NULL};
    memset(out, 0, sizeof *out);
    if (!node || st_cfg_kind_of(node) != ST_CFG_MAP)
        return st_cfg_fail(node, err, ST_ERR_INVALID,
                           "expected a check such as {not_null: customer_id}");
    st_rc rc = st_cfg_check_keys(node, item_keys, err);
    if (rc)
        return rc;
    out->file = st_strdup(st_cfg_file(node) ? st_cfg_file(node) : "?");
    out->line = st_cfg_line(node);
    const st_cfg *arg = NULL;
    int found = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const st_cfg *a = st_cfg_get(node, kinds[i].name);
        if (a) {
            out->kind = kinds[i].kind;
            arg = a;
            found++;
        }
    }
    if (found != 1) {
        rc = st_cfg_fail(node, err, ST_ERR_INVALID,
                         found ? "a check has exactly one kind"
                               : "no check kind (not_null, unique, accepted_values, "
                                 "relationships, range, row_count, freshness, sql)");
        goto fail;
    }
    out->severity = ST_SEV_ERROR;
    const char *sev = NULL;
    rc = st_cfg_get_str(node, "severity", "error", &sev, err);
    if (rc)
        goto fail;
    if (!strcmp(sev, "warn") || !strcmp(sev, "warning"))
        out->severity = ST_SEV_WARN;
    else if (strcmp(sev, "error")) {
        rc = st_cfg_fail(st_cfg_get(node, "severity"), err, ST_ERR_INVALID,
                         "severity: expected warn or error, not '%s'", sev);
        goto fail;
    }
    if (st_cfg_kind_of(arg) == ST_CFG_MAP) {
        rc = st_cfg_check_keys(arg, arg_keys, err);
        rc = rc ? rc : names(st_cfg_get(arg, "column"), &out->columns, &out->n_columns, err);
        rc = rc ? rc : names(st_cfg_get(arg, "columns"), &out->columns, &out->n_columns, err);
        rc = rc ? rc : names(st_cfg_get(arg, "values"), &out->values, &out->n_values, err);
        rc = rc ? rc : dup_opt(arg, "to", &out->to, err);
        rc = rc ? rc : dup_opt(arg, "field", &out->field, err);
        rc = rc ? rc : dup_opt(arg, "min", &out->min, err);
        rc = rc ? rc : dup_opt(arg, "max", &out->max, err);
        rc = rc ? rc : dup_opt(arg, "sql", &out->sql, err);
        const char *age = NULL;
        rc = rc ? rc : st_cfg_get_str(arg, "max_age", NULL, &age, err);
        if (rc == ST_OK && age) {
            out->max_age_s = parse_age(age);
            if (out->max_age_s < 0)
                rc = st_cfg_fail(st_cfg_get(arg, "max_age"), err, ST_ERR_INVALID,
                                 "max_age: expected a duration such as 90s, 15m, 2h or 3d");
        }
    } else if (out->kind == ST_CHECK_SQL && st_cfg_scalar(arg)) {
        out->sql = st_strdup(st_cfg_scalar(arg));
    } else {
        rc = names(arg, &out->columns, &out->n_columns, err);
    }
    if (rc)
        goto fail;
    const char *why = NULL;
    switch (out->kind) {
    case ST_CHECK_NOT_NULL:
    case ST_CHECK_UNIQUE:
        why = out->n_columns ? NULL : "needs a column";
        break;
    case ST_CHECK_ACCEPTED_VALUES:
        why = out->n_columns != 1 || !out->n_values ? "needs `column:` and `values:`" : NULL;
        break;
    case ST_CHECK_RELATIONSHIPS:
        why = out->n_columns != 1 || !out->to ? "needs `column:` and `to:`"
              : !strchr(out->to, '.') || strchr(out->to, '.') == out->to || !strchr(out->to, '.')[1]
                  ? "`to:` must name a table as layer.name, e.g. silver.customer"
                  : NULL;
        break;
    case ST_CHECK_RANGE:
        why = out->n_columns != 1 || (!out->min && !out->max) ? "needs `column:` and `min:` or `max:`"
                                                              : NULL;
        break;
    case ST_CHECK_ROW_COUNT:
        why = !out->min && !out->max ? "needs `min:` or `max:`" : NULL;
        if (!why && ((out->min && parse_age(out->min) < 0) || (out->max && parse_age(out->max) < 0)))
            why = "min/max must be non-negative integers";
        break;
    case ST_CHECK_FRESHNESS:
        why = out->n_columns != 1 || out->max_age_s <= 0 ? "needs `column:` and `max_age:`" : NULL;
        break;
    case ST_CHECK_SQL:
        why = out->sql && *out->sql ? NULL : "needs a query returning the failing rows";
        break;
    }
    if (why) {
        rc = st_cfg_fail(arg, err, ST_ERR_INVALID, "%s check %s", kind_name(out->kind), why);
        goto fail;
    }
    const char *name = NULL;
    rc = st_cfg_get_str(node, "name", NULL, &name, err);
    if (rc)
        goto fail;
    if (name) {
        out->name = st_strdup(name);
    } else {
        st_buf b;
        st_buf_init(&b, 4096);
        st_buf_printf(&b, "%s(", kind_name(out->kind));
        for (size_t i = 0; i < out->n_columns; i++)
            st_buf_printf(&b, "%s%s", i ? "," : "", out->columns[i]);
        if (out->kind == ST_CHECK_ROW_COUNT)
            st_buf_printf(&b, "%s..%s", out->min ? out->min : "", out->max ? out->max : "");
        if (out->kind == ST_CHECK_SQL)
            st_buf_printf(&b, "line %d", out->line);
        st_buf_putc(&b, ')');
        out->name = st_buf_take(&b);
    }
    if (!out->name || !out->file) {
        rc = st_fail(err, ST_ERR_NOMEM, "check");
        goto fail;
    }
    return ST_OK;
fail:
    st_check_clear(out);
    return rc;
}
