/*
 * config.c - parses the `sources:` section of strata.yml into x_project.
 * Unknown keys are rejected with file:line:key errors; secrets (DSNs,
 * passwords) come from environment variables or files named in the config
 * and are never logged.  Run planning is in run.c.
 */
#include "extract/extract_int.h"
#include "strata/project.h"

#include <stdlib.h>
#include <string.h>

static const char *const source_keys[] = {
    "kind", "dsn", "dsn_env", "dsn_file", "host", "port", "user", "database", "password_env",
    "password_file", "dialect", "compress", "connect_timeout", "read_timeout", "batch_rows",
    "parallel", "retries", "bandwidth", "url", "start_period", "country", "entity", "tables",
    "schemas", "exclude", "strategy", "series", "indicators", "schedule", NULL};
static const char *const table_keys[] = {"strategy", "key", "cursor", "lookback", "chunks",
                                         "target", "partition_by", "cast_to_string", "country",
                                         "entity", "path", "chunking", NULL};

const char *x_strategy_name(x_strategy s)
{
    return s == X_FULL ? "full" : s == X_INCREMENTAL ? "incremental" : "hashdiff";
}

bool x_name_in(char **list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], name))
            return true;
    return false;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        st_free(v[i]);
    st_free(v);
}

void x_table_cfg_clear(x_table_cfg *t)
{
    st_free(t->name);
    st_free(t->schema);
    st_free(t->table);
    st_free(t->target);
    strv_free(t->key, t->n_key);
    st_free(t->cursor);
    strv_free(t->partition_by, t->n_partition_by);
    strv_free(t->cast_to_string, t->n_cast_to_string);
    st_free(t->country);
    st_free(t->entity);
    st_free(t->api_path);
    memset(t, 0, sizeof *t);
}

static void source_free(x_source_cfg *s)
{
    st_free(s->name);
    if (s->password)
        memset(s->password, 0, strlen(s->password));
    if (s->dsn)
        memset(s->dsn, 0, strlen(s->dsn));
    st_free(s->dsn);
    st_free(s->host);
    st_free(s->user);
    st_free(s->password);
    st_free(s->database);
    st_free(s->url);
    st_free(s->start_period);
    st_free(s->country);
    st_free(s->entity);
    for (size_t i = 0; i < s->n_tables; i++)
        x_table_cfg_clear(&s->tables[i]);
    st_free(s->tables);
    strv_free(s->include_schemas, s->n_include_schemas);
    strv_free(s->exclude, s->n_exclude);
}

void x_project_free(x_project *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_sources; i++)
        source_free(&p->sources[i]);
    st_free(p->sources);
    st_free(p->dir);
    st_free(p->lake);
    st_free(p->state_path);
    st_cfg_doc_free(p->doc);
    st_free(p);
}

/* A scalar or a sequence of scalars as a string list. */
static st_rc str_list(const st_cfg *n, char ***out, size_t *n_out, st_err *err)
{
    *out = NULL;
    *n_out = 0;
    if (!n)
        return ST_OK;
    size_t cnt = st_cfg_kind_of(n) == ST_CFG_SEQ ? st_cfg_len(n) : 1;
    char **v = st_calloc(cnt + 1, sizeof *v);
    if (!v)
        return st_fail(err, ST_ERR_NOMEM, "config");
    for (size_t i = 0; i < cnt; i++) {
        const st_cfg *e = st_cfg_kind_of(n) == ST_CFG_SEQ ? st_cfg_at(n, i) : n;
        const char *s = st_cfg_scalar(e);
        if (!s) {
            strv_free(v, i);
            return st_cfg_fail(e, err, ST_ERR_INVALID, "expected a name or a list of names");
        }
        v[i] = st_strdup(s);
    }
    *out = v;
    *n_out = cnt;
    return ST_OK;
}

static st_rc dup_str(const st_cfg *map, const char *key, const char *def, char **out, st_err *err)
{
    const char *s = NULL;
    st_rc rc = st_cfg_get_str(map, key, def, &s, err);
    if (rc)
        return rc;
    *out = s ? st_strdup(s) : NULL;
    return ST_OK;
}

/* Reads a secret from an environment variable or a file (trailing newline dropped). */
static st_rc secret(const st_cfg *map, const char *env_key, const char *file_key, char **out,
                    st_err *err)
{
    const char *env = NULL, *file = NULL;
    st_rc rc = st_cfg_get_str(map, env_key, NULL, &env, err);
    rc = rc ? rc : st_cfg_get_str(map, file_key, NULL, &file, err);
    if (rc)
        return rc;
    *out = NULL;
    if (env) {
        const char *v = getenv(env);
        if (!v)
            return st_cfg_fail(st_cfg_get(map, env_key), err, ST_ERR_INVALID,
                               "environment variable %s is not set", env);
        *out = st_strdup(v);
    } else if (file) {
        char *data = NULL;
        size_t len = 0;
        rc = st_file_read(file, 1 << 16, &data, &len, err);
        if (rc) {
            st_err_ctx(err, "%s:%d: %s", st_cfg_file(map), st_cfg_line(st_cfg_get(map, file_key)),
                       file_key);
            return rc;
        }
        while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
            data[--len] = '\0';
        *out = data;
    }
    return ST_OK;
}

static st_rc parse_strategy(const st_cfg *map, x_strategy def, x_strategy *out, st_err *err)
{
    const char *s = NULL;
    st_rc rc = st_cfg_get_str(map, "strategy", NULL, &s, err);
    if (rc)
        return rc;
    if (!s)
        *out = def;
    else if (!strcmp(s, "full"))
        *out = X_FULL;
    else if (!strcmp(s, "incremental"))
        *out = X_INCREMENTAL;
    else if (!strcmp(s, "hashdiff"))
        *out = X_HASHDIFF;
    else
        return st_cfg_fail(st_cfg_get(map, "strategy"), err, ST_ERR_INVALID,
                           "unknown strategy '%s' (full, incremental, hashdiff)", s);
    return ST_OK;
}

static char *target_name(const char *source, const char *schema, const char *table)
{
    if (schema && *schema)
        return st_sprintf("%s__%s__%s", source, schema, table);
    return st_sprintf("%s__%s", source, table);
}

static st_rc parse_table(const x_source_cfg *src, const char *name, const st_cfg *n,
                         x_table_cfg *t, st_err *err)
{
    memset(t, 0, sizeof *t);
    t->name = st_strdup(name);
    const char *dot = strchr(name, '.');
    bool http = src->kind >= X_ECB;
    if (dot && !http) {
        t->schema = st_strndup(name, (size_t)(dot - name));
        t->table = st_strdup(dot + 1);
    } else {
        t->schema = st_strdup("");
        t->table = st_strdup(name);
    }
    t->chunks = 1;
    t->strategy = src->default_strategy;
    if (!n || st_cfg_kind_of(n) == ST_CFG_SCALAR) {
        if (http && n)
            t->api_path = st_strdup(st_cfg_scalar(n));
        t->target = target_name(src->name, t->schema, t->table);
        return ST_OK;
    }
    if (st_cfg_kind_of(n) != ST_CFG_MAP)
        return st_cfg_fail(n, err, ST_ERR_INVALID, "expected a map of table options");
    st_rc rc = st_cfg_check_keys(n, table_keys, err);
    rc = rc ? rc : parse_strategy(n, src->default_strategy, &t->strategy, err);
    rc = rc ? rc : str_list(st_cfg_get(n, "key"), &t->key, &t->n_key, err);
    rc = rc ? rc : dup_str(n, "cursor", NULL, &t->cursor, err);
    rc = rc ? rc : st_cfg_get_int(n, "lookback", 0, &t->lookback, err);
    int64_t chunks = 1;
    rc = rc ? rc : st_cfg_get_int(n, "chunks", 1, &chunks, err);
    t->chunks = chunks < 1 ? 1 : chunks > 4096 ? 4096 : (int)chunks;
    rc = rc ? rc : dup_str(n, "target", NULL, &t->target, err);
    rc = rc ? rc : str_list(st_cfg_get(n, "partition_by"), &t->partition_by, &t->n_partition_by, err);
    rc = rc ? rc : str_list(st_cfg_get(n, "cast_to_string"), &t->cast_to_string,
                            &t->n_cast_to_string, err);
    rc = rc ? rc : dup_str(n, "country", src->country, &t->country, err);
    rc = rc ? rc : dup_str(n, "entity", src->entity, &t->entity, err);
    rc = rc ? rc : dup_str(n, "path", NULL, &t->api_path, err);
    if (rc)
        return rc;
    if (t->api_path && !http)
        return st_cfg_fail(n, err, ST_ERR_INVALID, "`path:` is for API series and indicators only");
    if (!t->target)
        t->target = target_name(src->name, t->schema, t->table);
    if (t->strategy == X_INCREMENTAL && !t->cursor && !http)
        return st_cfg_fail(n, err, ST_ERR_INVALID, "strategy incremental needs `cursor:`");
    if (t->strategy == X_HASHDIFF && !t->n_key)
        return st_cfg_fail(n, err, ST_ERR_INVALID, "strategy hashdiff needs `key:`");
    const char *chunking = NULL;
    rc = st_cfg_get_str(n, "chunking", NULL, &chunking, err);
    if (rc)
        return rc;
    if (chunking && !strcmp(chunking, "sample"))
        t->sample_chunks = true;
    else if (chunking && strcmp(chunking, "auto"))
        return st_cfg_fail(n, err, ST_ERR_INVALID, "chunking: expected auto or sample, got '%s'",
                           chunking);
    if (t->chunks > 1 && !t->n_key)
        return st_cfg_fail(n, err, ST_ERR_INVALID, "chunks > 1 needs `key:` columns to split on");
    for (const char *c = t->target; *c; c++)
        if (!(*c == '_' || *c == '-' || (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') ||
              (*c >= 'A' && *c <= 'Z')))
            return st_cfg_fail(n, err, ST_ERR_INVALID, "target '%s': letters, digits, _ and - only",
                               t->target);
    return ST_OK;
}

static st_rc parse_source(const char *name, const st_cfg *n, x_source_cfg *s, st_err *err)
{
    memset(s, 0, sizeof *s);
    s->name = st_strdup(name);
    if (st_cfg_kind_of(n) != ST_CFG_MAP)
        return st_cfg_fail(n, err, ST_ERR_INVALID, "expected a map");
    st_rc rc = st_cfg_check_keys(n, source_keys, err);
    const char *kind = NULL;
    rc = rc ? rc : st_cfg_get_str(n, "kind", NULL, &kind, err);
    if (rc)
        return rc;
    if (!kind)
        return st_cfg_fail(n, err, ST_ERR_INVALID, "missing `kind:` (postgres, mysql, odbc, ecb, oecd, worldbank)");
    static const struct { const char *n; x_kind k; } kinds[] = {
        {"postgres", X_POSTGRES}, {"postgresql", X_POSTGRES}, {"mysql", X_MYSQL},
        {"mariadb", X_MYSQL}, {"odbc", X_ODBC}, {"ecb", X_ECB}, {"sdmx", X_ECB},
        {"oecd", X_OECD}, {"worldbank", X_WORLDBANK}};
    bool found = false;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(kind, kinds[i].n)) {
            s->kind = kinds[i].k;
            found = true;
        }
    if (!found)
        return st_cfg_fail(st_cfg_get(n, "kind"), err, ST_ERR_INVALID, "unknown kind '%s'", kind);
    s->dialect = s->kind == X_MYSQL ? X_DIALECT_MYSQL : X_DIALECT_POSTGRES;
    const char *dialect = NULL;
    rc = st_cfg_get_str(n, "dialect", NULL, &dialect, err);
    if (rc == ST_OK && dialect) {
        if (!strcmp(dialect, "postgres"))
            s->dialect = X_DIALECT_POSTGRES;
        else if (!strcmp(dialect, "mysql") || !strcmp(dialect, "mariadb"))
            s->dialect = X_DIALECT_MYSQL;
        else if (!strcmp(dialect, "sqlserver"))
            s->dialect = X_DIALECT_SQLSERVER;
        else if (!strcmp(dialect, "oracle"))
            s->dialect = X_DIALECT_ORACLE;
        else
            rc = st_cfg_fail(st_cfg_get(n, "dialect"), err, ST_ERR_INVALID,
                             "unknown dialect '%s' (postgres, mysql, sqlserver, oracle)", dialect);
    }
    const char *dsn = NULL;
    rc = rc ? rc : st_cfg_get_str(n, "dsn", NULL, &dsn, err);
    if (rc)
        return rc;
    if (dsn)
        s->dsn = st_strdup(dsn);
    else
        rc = secret(n, "dsn_env", "dsn_file", &s->dsn, err);
    rc = rc ? rc : secret(n, "password_env", "password_file", &s->password, err);
    rc = rc ? rc : dup_str(n, "host", "127.0.0.1", &s->host, err);
    rc = rc ? rc : dup_str(n, "user", NULL, &s->user, err);
    rc = rc ? rc : dup_str(n, "database", NULL, &s->database, err);
    int64_t v = 0;
    rc = rc ? rc : st_cfg_get_int(n, "port", 0, &v, err);
    s->port = (int)v;
    rc = rc ? rc : st_cfg_get_bool(n, "compress", false, &s->compress, err);
    rc = rc ? rc : st_cfg_get_int(n, "connect_timeout", 10, &v, err);
    s->connect_timeout = (int)v;
    rc = rc ? rc : st_cfg_get_int(n, "read_timeout", 3600, &v, err);
    s->read_timeout = (int)v;
    rc = rc ? rc : st_cfg_get_int(n, "batch_rows", 1000000, &s->batch_rows, err);
    rc = rc ? rc : st_cfg_get_int(n, "parallel", 1, &v, err);
    s->parallel = v < 1 ? 1 : v > 64 ? 64 : (int)v;
    rc = rc ? rc : st_cfg_get_int(n, "retries", 2, &v, err);
    s->retries = v < 0 ? 0 : (int)v;
    rc = rc ? rc : st_cfg_get_int(n, "bandwidth", 0, &s->bandwidth, err);
    rc = rc ? rc : dup_str(n, "url", NULL, &s->url, err);
    rc = rc ? rc : dup_str(n, "start_period", NULL, &s->start_period, err);
    rc = rc ? rc : dup_str(n, "country", NULL, &s->country, err);
    rc = rc ? rc : dup_str(n, "entity", NULL, &s->entity, err);
    rc = rc ? rc : parse_strategy(n, X_FULL, &s->default_strategy, err);
    rc = rc ? rc : str_list(st_cfg_get(n, "schemas"), &s->include_schemas, &s->n_include_schemas, err);
    rc = rc ? rc : str_list(st_cfg_get(n, "exclude"), &s->exclude, &s->n_exclude, err);
    if (rc)
        return rc;
    if (s->batch_rows < 1)
        s->batch_rows = 1000000;
    bool http = s->kind >= X_ECB;
    if (http && !s->url)
        return st_cfg_fail(n, err, ST_ERR_INVALID, "missing `url:`");
    const st_cfg *tabs = st_cfg_get(n, "tables");
    if (!tabs && http)
        tabs = st_cfg_get(n, s->kind == X_WORLDBANK ? "indicators" : "series");
    if (tabs && st_cfg_kind_of(tabs) == ST_CFG_SEQ) {
        s->tables = st_calloc(st_cfg_len(tabs) + 1, sizeof *s->tables);
        for (size_t i = 0; rc == ST_OK && i < st_cfg_len(tabs); i++) {
            const char *tn = st_cfg_scalar(st_cfg_at(tabs, i));
            if (!tn)
                return st_cfg_fail(st_cfg_at(tabs, i), err, ST_ERR_INVALID, "expected a table name");
            rc = parse_table(s, tn, NULL, &s->tables[i], err);
            s->n_tables++;
        }
    } else if (tabs && st_cfg_kind_of(tabs) == ST_CFG_MAP) {
        s->tables = st_calloc(st_cfg_len(tabs) + 1, sizeof *s->tables);
        for (size_t i = 0; rc == ST_OK && i < st_cfg_len(tabs); i++) {
            rc = parse_table(s, st_cfg_key_at(tabs, i), st_cfg_at(tabs, i), &s->tables[i], err);
            s->n_tables++;
        }
    } else if (tabs) {
        return st_cfg_fail(tabs, err, ST_ERR_INVALID, "expected a list or a map of tables");
    }
    if (rc)
        return rc;
    if (!http && !s->dsn && s->kind == X_ODBC)
        return st_cfg_fail(n, err, ST_ERR_INVALID, "odbc source needs dsn, dsn_env or dsn_file");
    if (!s->n_tables && !s->n_include_schemas)
        return st_cfg_fail(n, err, ST_ERR_INVALID, "no `tables:` (or `schemas:`) declared");
    return ST_OK;
}

st_rc x_project_load(const st_extract_opts *o, x_project **out, st_err *err)
{
    x_project *p = st_calloc(1, sizeof *p);
    if (!p)
        return st_fail(err, ST_ERR_NOMEM, "loading project");
    p->dir = st_strdup(o && o->project_dir ? o->project_dir : ".");
    char *cfg_path = o && o->config_path ? st_strdup(o->config_path)
                                         : st_path_join(p->dir, "strata.yml");
    st_rc rc = st_cfg_load_file(cfg_path, &p->doc, err);
    st_free(cfg_path);
    if (rc)
        goto fail;
    const st_cfg *root = st_cfg_root(p->doc);
    if (!root || st_cfg_kind_of(root) != ST_CFG_MAP) {
        rc = st_fail(err, ST_ERR_INVALID, "strata.yml: expected a map at the top level");
        goto fail;
    }
    /* one list for the whole project (src/project), not the extractor's view */
    rc = st_project_check_top_keys(root, err);
    const char *lake = NULL, *state = NULL;
    rc = rc ? rc : st_cfg_get_str(root, "lake", "./lake", &lake, err);
    rc = rc ? rc : st_cfg_get_str(root, "state", "./state.db", &state, err);
    if (rc)
        goto fail;
    lake = o && o->lake ? o->lake : lake;
    state = o && o->state_path ? o->state_path : state;
    p->lake = lake[0] == '/' ? st_strdup(lake) : st_path_join(p->dir, lake);
    p->state_path = state[0] == '/' ? st_strdup(state) : st_path_join(p->dir, state);
    const st_cfg *srcs = st_cfg_get(root, "sources");
    if (!srcs || st_cfg_kind_of(srcs) != ST_CFG_MAP) {
        rc = srcs ? st_cfg_fail(srcs, err, ST_ERR_INVALID, "expected a map of sources")
                  : st_fail(err, ST_ERR_INVALID, "strata.yml has no `sources:` section");
        goto fail;
    }
    p->sources = st_calloc(st_cfg_len(srcs) + 1, sizeof *p->sources);
    for (size_t i = 0; i < st_cfg_len(srcs); i++) {
        p->n_sources++;
        rc = parse_source(st_cfg_key_at(srcs, i), st_cfg_at(srcs, i), &p->sources[i], err);
        if (rc)
            goto fail;
    }
    *out = p;
    return ST_OK;
fail:
    x_project_free(p);
    return rc;
}
