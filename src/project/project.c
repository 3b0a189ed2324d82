/*
 * project.c - loads a project folder (strata.yml, models/silver/<entity>.yml,
 * models/gold/<model>.sql with their settings and checks) into st_project: one
 * st_asset_def per table with its dependencies.  Check parsing is in
 * checks.c; the DAG built on top is in src/orch/dag.c.
 */
#include "strata/project.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SQL_BYTES (4u << 20)

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        st_free(v[i]);
    st_free(v);
}

static st_rc strv_push(char ***v, size_t *n, const char *s)
{
    char **nv = st_realloc(*v, (*n + 2) * sizeof *nv);
    if (!nv)
        return ST_ERR_NOMEM;
    *v = nv;
    nv[*n] = st_strdup(s);
    if (!nv[*n])
        return ST_ERR_NOMEM;
    (*n)++;
    nv[*n] = NULL;
    return ST_OK;
}

static bool strv_has(char **v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i], s))
            return true;
    return false;
}

/* A scalar or a list of scalars -> string vector (appended). */
static st_rc str_list(const st_cfg *n, char ***out, size_t *n_out, st_err *err)
{
    if (!n)
        return ST_OK;
    if (st_cfg_kind_of(n) == ST_CFG_SCALAR)
        return strv_push(out, n_out, st_cfg_scalar(n)) ? st_fail(err, ST_ERR_NOMEM, "list")
                                                        : ST_OK;
    if (st_cfg_kind_of(n) != ST_CFG_SEQ)
        return st_cfg_fail(n, err, ST_ERR_INVALID, "expected a name or a list of names");
    for (size_t i = 0; i < st_cfg_len(n); i++) {
        const char *s = st_cfg_scalar(st_cfg_at(n, i));
        if (!s)
            return st_cfg_fail(st_cfg_at(n, i), err, ST_ERR_INVALID, "expected a scalar");
        if (strv_push(out, n_out, s))
            return st_fail(err, ST_ERR_NOMEM, "list");
    }
    return ST_OK;
}

void st_asset_def_free(st_asset_def *a)
{
    if (!a)
        return;
    st_free(a->key);
    st_free(a->layer);
    st_free(a->name);
    st_free(a->description);
    strv_free(a->deps, a->n_deps);
    strv_free(a->tags, a->n_tags);
    st_free(a->schedule);
    st_free(a->missed);
    st_free(a->part_column);
    strv_free(a->part_values, a->n_part_values);
    st_free(a->sql);
    strv_free(a->partition_by, a->n_partition_by);
    for (size_t i = 0; i < a->n_checks; i++)
        st_check_clear(&a->checks[i]);
    st_free(a->checks);
    st_free(a->selector);
    st_free(a->file);
    st_free(a);
}

void st_project_free(st_project *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_assets; i++)
        st_asset_def_free(p->assets[i]);
    st_free(p->assets);
    st_free(p->dir);
    st_free(p->name);
    st_free(p->lake);
    st_free(p->state_path);
    st_free(p->lineage_file);
    st_free(p->lineage_url);
    st_free(p->lineage_namespace);
    st_free(p->missed);
    st_cfg_doc_free(p->doc);
    st_free(p);
}

st_asset_def *st_project_find(const st_project *p, const char *key)
{
    for (size_t i = 0; i < p->n_assets; i++)
        if (!strcmp(p->assets[i]->key, key))
            return p->assets[i];
    return NULL;
}

char *st_project_table_path(const st_project *p, const char *key)
{
    const char *dot = strchr(key, '.');
    if (!dot)
        return st_path_join(p->lake, key);
    char *layer = st_strndup(key, (size_t)(dot - key));
    char *dir = layer ? st_path_join(p->lake, layer) : NULL;
    char *out = dir ? st_path_join(dir, dot + 1) : NULL;
    st_free(layer);
    st_free(dir);
    return out;
}

static char *resolve(const char *dir, const char *path)
{
    return path[0] == '/' ? st_strdup(path) : st_path_join(dir, path);
}

st_rc st_project_new(const char *dir, st_project **out, st_err *err)
{
    st_project *p = st_calloc(1, sizeof *p);
    if (!p)
        return st_fail(err, ST_ERR_NOMEM, "project %s", dir);
    p->dir = st_strdup(dir);
    p->name = st_strdup("strata");
    p->lake = st_path_join(dir, "lake");
    p->state_path = st_path_join(dir, "state.db");
    p->lineage_namespace = st_strdup("strata");
    p->missed = st_strdup("skip");
    p->workers = 4;
    p->timeout_ms = 3600 * 1000;
    p->retries = 0;
    p->retry_backoff_ms = 1000;
    if (!p->dir || !p->name || !p->lake || !p->state_path || !p->lineage_namespace ||
        !p->missed) {
        st_project_free(p);
        return st_fail(err, ST_ERR_NOMEM, "project %s", dir);
    }
    *out = p;
    return ST_OK;
}

/* Splits "layer.name" into a fresh asset with key, layer and name set. */
static st_asset_def *asset_new(const char *key, st_asset_kind kind, const char *file, int line)
{
    st_asset_def *a = st_calloc(1, sizeof *a);
    if (!a)
        return NULL;
    const char *dot = strchr(key, '.');
    a->key = st_strdup(key);
    a->layer = dot ? st_strndup(key, (size_t)(dot - key)) : st_strdup("");
    a->name = st_strdup(dot ? dot + 1 : key);
    a->file = st_strdup(file ? file : "(code)");
    a->line = line;
    a->kind = kind;
    a->retries = -1;
    if (!a->key || !a->layer || !a->name || !a->file) {
        st_asset_def_free(a);
        return NULL;
    }
    return a;
}

st_rc st_project_add(st_project *p, st_asset_def *a, st_err *err)
{
    if (!a->key || !strchr(a->key, '.'))
        return st_fail(err, ST_ERR_INVALID, "asset key '%s' is not layer-qualified (layer.table)",
                       a->key ? a->key : "");
    st_asset_def *dup = st_project_find(p, a->key);
    if (dup)
        return st_fail(err, ST_ERR_EXISTS, "asset %s is declared twice (%s:%d and %s:%d)", a->key,
                       dup->file, dup->line, a->file ? a->file : "?", a->line);
    st_asset_def **na = st_realloc(p->assets, (p->n_assets + 1) * sizeof *na);
    st_asset_def *copy = st_malloc(sizeof *copy);
    if (!na || !copy) {
        if (na)
            p->assets = na;
        st_free(copy);
        return st_fail(err, ST_ERR_NOMEM, "asset %s", a->key);
    }
    *copy = *a;
    memset(a, 0, sizeof *a);
    p->assets = na;
    p->assets[p->n_assets++] = copy;
    return ST_OK;
}

st_asset_def *st_project_add_custom(st_project *p, const char *key, const char *const *deps,
                                    const char *tags, st_asset_fn fn, void *arg, st_err *err)
{
    st_asset_def *a = asset_new(key, ST_ASSET_CUSTOM, NULL, 0);
    if (!a) {
        st_fail(err, ST_ERR_NOMEM, "asset %s", key);
        return NULL;
    }
    st_rc rc = ST_OK;
    for (size_t i = 0; deps && deps[i] && rc == ST_OK; i++)
        rc = strv_push(&a->deps, &a->n_deps, deps[i]);
    while (rc == ST_OK && tags && *tags) {
        const char *c = strchr(tags, ',');
        size_t n = c ? (size_t)(c - tags) : strlen(tags);
        char *t = st_strndup(tags, n);
        rc = t ? strv_push(&a->tags, &a->n_tags, t) : ST_ERR_NOMEM;
        st_free(t);
        tags = c ? c + 1 : tags + n;
    }
    a->fn = fn;
    a->fn_arg = arg;
    if (rc) {
        st_asset_def_free(a);
        st_fail(err, ST_ERR_NOMEM, "asset %s", key);
        return NULL;
    }
    rc = st_project_add(p, a, err);
    st_free(a);  /* moved (or failed: free what is left) */
    if (rc)
        return NULL;
    return p->assets[p->n_assets - 1];
}

/* ---------------------------------------------------------------- settings */

static st_rc set_str(char **dst, const char *v, st_err *err)
{
    char *c = st_strdup(v);
    if (!c)
        return st_fail(err, ST_ERR_NOMEM, "setting");
    st_free(*dst);
    *dst = c;
    return ST_OK;
}

static st_rc parse_partition(st_asset_def *a, const st_cfg *n, st_err *err)
{
    static const char *const keys[] = {"by", "column", "values", NULL};
    if (st_cfg_kind_of(n) != ST_CFG_MAP)
        return st_cfg_fail(n, err, ST_ERR_INVALID,
                           "expected {by: day|month|country, column: COL[, values: [...]]}");
    st_rc rc = st_cfg_check_keys(n, keys, err);
    const char *by = NULL, *col = NULL;
    rc = rc ? rc : st_cfg_get_str(n, "by", NULL, &by, err);
    rc = rc ? rc : st_cfg_get_str(n, "column", NULL, &col, err);
    if (rc)
        return rc;
    if (!by || !col)
        return st_cfg_fail(n, err, ST_ERR_INVALID, "partition needs `by:` and `column:`");
    if (!strcmp(by, "day"))
        a->part = ST_PART_DAY;
    else if (!strcmp(by, "month"))
        a->part = ST_PART_MONTH;
    else if (!strcmp(by, "country") || !strcmp(by, "value"))
        a->part = ST_PART_VALUE;
    else
        return st_cfg_fail(st_cfg_get(n, "by"), err, ST_ERR_INVALID,
                           "unknown partition kind '%s' (day, month, country)", by);
    rc = set_str(&a->part_column, col, err);
    if (rc)
        return rc;
    strv_free(a->part_values, a->n_part_values);
    a->part_values = NULL;
    a->n_part_values = 0;
    rc = str_list(st_cfg_get(n, "values"), &a->part_values, &a->n_part_values, err);
    if (rc == ST_OK && a->part == ST_PART_VALUE && !a->n_part_values)
        return st_cfg_fail(n, err, ST_ERR_INVALID, "partition by %s needs `values:`", by);
    return rc;
}

st_rc st_project_apply_settings(st_asset_def *a, const st_cfg *map, st_err *err)
{
    static const char *const keys[] = {"materialized", "partition",   "partition_by", "tags",
                                       "schedule",     "timeout_s",   "retries",      "missed",
                                       "description",  "checks",      "depends_on",   NULL};
    if (!map)
        return ST_OK;
    if (st_cfg_kind_of(map) != ST_CFG_MAP)
        return st_cfg_fail(map, err, ST_ERR_INVALID, "expected a map of model settings");
    st_rc rc = st_cfg_check_keys(map, keys, err);
    const char *s = NULL;
    rc = rc ? rc : st_cfg_get_str(map, "materialized", NULL, &s, err);
    if (rc == ST_OK && s) {
        if (!strcmp(s, "table"))
            a->mat = ST_MAT_TABLE;
        else if (!strcmp(s, "incremental"))
            a->mat = ST_MAT_INCREMENTAL;
        else
            rc = st_cfg_fail(st_cfg_get(map, "materialized"), err, ST_ERR_INVALID,
                             "unknown materialization '%s' (table, incremental)", s);
    }
    const st_cfg *pn = st_cfg_get(map, "partition");
    if (rc == ST_OK && pn)
        rc = parse_partition(a, pn, err);
    if (rc == ST_OK && st_cfg_get(map, "partition_by")) {
        strv_free(a->partition_by, a->n_partition_by);
        a->partition_by = NULL;
        a->n_partition_by = 0;
        rc = str_list(st_cfg_get(map, "partition_by"), &a->partition_by, &a->n_partition_by, err);
    }
    rc = rc ? rc : str_list(st_cfg_get(map, "tags"), &a->tags, &a->n_tags, err);
    rc = rc ? rc : str_list(st_cfg_get(map, "depends_on"), &a->deps, &a->n_deps, err);
    s = NULL;
    rc = rc ? rc : st_cfg_get_str(map, "schedule", NULL, &s, err);
    if (rc == ST_OK && s) {
        if (!strcmp(s, "on_upstream") || !strcmp(s, "upstream"))
            a->on_upstream = true;
        else
            rc = set_str(&a->schedule, s, err);
    }
    int64_t v = 0;
    rc = rc ? rc : st_cfg_get_int(map, "timeout_s", 0, &v, err);
    if (rc == ST_OK && v > 0)
        a->timeout_ms = v * 1000;
    rc = rc ? rc : st_cfg_get_int(map, "retries", -1, &v, err);
    if (rc == ST_OK && v >= 0)
        a->retries = v > 100 ? 100 : (int)v;
    s = NULL;
    rc = rc ? rc : st_cfg_get_str(map, "missed", NULL, &s, err);
    if (rc == ST_OK && s) {
        if (strcmp(s, "skip") && strcmp(s, "run_once"))
            rc = st_cfg_fail(st_cfg_get(map, "missed"), err, ST_ERR_INVALID,
                             "missed: expected skip or run_once, not '%s'", s);
        else
            rc = set_str(&a->missed, s, err);
    }
    s = NULL;
    rc = rc ? rc : st_cfg_get_str(map, "description", NULL, &s, err);
    if (rc == ST_OK && s)
        rc = set_str(&a->description, s, err);
    const st_cfg *cn = st_cfg_get(map, "checks");
    if (rc == ST_OK && cn) {
        if (st_cfg_kind_of(cn) != ST_CFG_SEQ)
            return st_cfg_fail(cn, err, ST_ERR_INVALID, "expected a list of checks");
        for (size_t i = 0; rc == ST_OK && i < st_cfg_len(cn); i++) {
            st_check *nc = st_realloc(a->checks, (a->n_checks + 1) * sizeof *nc);
            if (!nc)
                return st_fail(err, ST_ERR_NOMEM, "checks");
            a->checks = nc;
            rc = st_check_parse(st_cfg_at(cn, i), &a->checks[a->n_checks], err);
            if (rc == ST_OK)
                a->n_checks++;
        }
    }
    if (rc == ST_OK && a->mat == ST_MAT_INCREMENTAL && !a->part_column && !a->n_partition_by)
        return st_cfg_fail(map, err, ST_ERR_INVALID,
                           "materialized: incremental needs `partition:` or `partition_by:`");
    return rc;
}

/* ---------------------------------------------------------------- gold models */

/* Adds every {{ ref('x') }} of sql to a->deps (unqualified names are kept
 * as written and resolved by the DAG). */
static st_rc collect_refs(st_asset_def *a, st_err *err)
{
    const char *p = a->sql;
    while ((p = strstr(p, "{{")) != NULL) {
        const char *end = strstr(p, "}}");
        if (!end)
            return st_fail(err, ST_ERR_PARSE, "%s: unterminated {{", a->file);
        const char *r = p + 2;
        while (r < end && (*r == ' ' || *r == '\t'))
            r++;
        if (end - r > 4 && !strncmp(r, "ref(", 4)) {
            r += 4;
            while (r < end && (*r == ' ' || *r == '\'' || *r == '"'))
                r++;
            const char *e = r;
            while (e < end && *e != '\'' && *e != '"' && *e != ')' && *e != ' ')
                e++;
            if (e == r)
                return st_fail(err, ST_ERR_PARSE, "%s: empty ref()", a->file);
            char *name = st_strndup(r, (size_t)(e - r));
            if (!name)
                return st_fail(err, ST_ERR_NOMEM, "ref");
            st_rc rc = strv_has(a->deps, a->n_deps, name) ? ST_OK
                                                           : strv_push(&a->deps, &a->n_deps, name);
            st_free(name);
            if (rc)
                return st_fail(err, ST_ERR_NOMEM, "ref");
        }
        p = end + 2;
    }
    return ST_OK;
}

static bool ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

static st_rc load_gold_model(st_project *p, const char *dir, const char *file, st_err *err)
{
    char *path = st_path_join(dir, file);
    char *name = st_strndup(file, strlen(file) - 4);
    char *key = name ? st_sprintf("gold.%s", name) : NULL;
    char *side = name ? st_sprintf("%s/%s.yml", dir, name) : NULL;
    st_asset_def *a = key ? asset_new(key, ST_ASSET_GOLD, path, 1) : NULL;
    st_cfg_doc *hdr = NULL, *sd = NULL;
    size_t len = 0;
    st_rc rc = (path && a && side) ? ST_OK : st_fail(err, ST_ERR_NOMEM, "model %s", file);
    rc = rc ? rc : st_file_read(path, MAX_SQL_BYTES, &a->sql, &len, err);
    if (rc)
        goto done;
    /* a leading comment block of YAML between two --- lines */
    const char *s = a->sql;
    while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')
        s++;
    if (!strncmp(s, "/*---", 5)) {
        const char *b = s + 5;
        const char *e = strstr(b, "---*/");
        if (!e) {
            rc = st_fail(err, ST_ERR_PARSE, "%s: settings block /*--- has no closing ---*/", path);
            goto done;
        }
        rc = st_cfg_load_string(path, b, (size_t)(e - b), &hdr, err);
        if (rc == ST_OK && st_cfg_root(hdr) && st_cfg_kind_of(st_cfg_root(hdr)) == ST_CFG_MAP)
            rc = st_project_apply_settings(a, st_cfg_root(hdr), err);
        if (rc)
            goto done;
    }
    if (st_path_exists(side)) {
        rc = st_cfg_load_file(side, &sd, err);
        const st_cfg *root = sd ? st_cfg_root(sd) : NULL;
        if (rc == ST_OK && root && st_cfg_kind_of(root) == ST_CFG_MAP) {
            const st_cfg *inner = st_cfg_get(root, name);
            rc = st_project_apply_settings(a, inner && st_cfg_kind_of(inner) == ST_CFG_MAP ? inner
                                                                                          : root,
                                           err);
        }
        if (rc)
            goto done;
    }
    if (a->part_column && !a->n_partition_by)
        rc = strv_push(&a->partition_by, &a->n_partition_by, a->part_column)
                 ? st_fail(err, ST_ERR_NOMEM, "model %s", key)
                 : ST_OK;
    rc = rc ? rc : collect_refs(a, err);
    rc = rc ? rc : st_project_add(p, a, err);
done:
    st_asset_def_free(a);
    st_cfg_doc_free(hdr);
    st_cfg_doc_free(sd);
    st_free(path);
    st_free(name);
    st_free(key);
    st_free(side);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of dir's entries ending in suffix. */
static st_rc list_dir(const char *dir, const char *suffix, char ***out, size_t *n_out,
                      st_err *err)
{
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d)
        return ST_OK;
    struct dirent *e;
    st_rc rc = ST_OK;
    while (rc == ST_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !ends_with(e->d_name, suffix))
            continue;
        if (strv_push(out, n_out, e->d_name))
            rc = st_fail(err, ST_ERR_NOMEM, "listing %s", dir);
    }
    closedir(d);
    if (*n_out > 1)
        qsort(*out, *n_out, sizeof **out, cmp_str);
    return rc;
}

static st_rc load_gold_dir(st_project *p, const char *dir, st_err *err)
{
    char **names = NULL;
    size_t n = 0;
    st_rc rc = list_dir(dir, ".sql", &names, &n, err);
    for (size_t i = 0; rc == ST_OK && i < n; i++)
        rc = load_gold_model(p, dir, names[i], err);
    strv_free(names, n);
    return rc;
}

/* ---------------------------------------------------------------- silver */

static st_rc add_silver(st_project *p, const char *name, const st_cfg *decl, st_err *err)
{
    char *key = st_sprintf("silver.%s", name);
    st_asset_def *a = key ? asset_new(key, ST_ASSET_SILVER, st_cfg_file(decl), st_cfg_line(decl))
                          : NULL;
    st_free(key);
    if (!a)
        return st_fail(err, ST_ERR_NOMEM, "silver %s", name);
    const char *from = NULL;
    st_rc rc = st_cfg_kind_of(decl) == ST_CFG_MAP
                   ? st_cfg_get_str(decl, "from", NULL, &from, err)
                   : st_cfg_fail(decl, err, ST_ERR_INVALID, "silver entity %s: expected a map",
                                 name);
    if (rc == ST_OK && !from)
        rc = st_cfg_fail(decl, err, ST_ERR_INVALID, "silver entity %s: missing `from:`", name);
    if (rc == ST_OK && strchr(from, '.') && from[0] != '.' && from[0] != '/' && !strchr(from, '/'))
        rc = strv_push(&a->deps, &a->n_deps, from) ? st_fail(err, ST_ERR_NOMEM, "silver") : ST_OK;
    /* a fact links rows to a dimension's versions, so it runs after it */
    const char *kind = NULL, *dim = NULL;
    rc = rc ? rc : st_cfg_get_str(decl, "kind", NULL, &kind, err);
    const st_cfg *link = rc == ST_OK && kind && !strcmp(kind, "fact") ? st_cfg_get(decl, "link")
                                                                      : NULL;
    if (link && st_cfg_kind_of(link) == ST_CFG_MAP)
        rc = st_cfg_get_str(link, "dimension", NULL, &dim, err);
    if (rc == ST_OK && dim && *dim) {
        char *dk = strchr(dim, '.') ? st_strdup(dim) : st_sprintf("silver.%s", dim);
        rc = dk && !strv_push(&a->deps, &a->n_deps, dk) ? ST_OK
                                                         : st_fail(err, ST_ERR_NOMEM, "silver");
        st_free(dk);
    }
    const char *desc = NULL;
    rc = rc ? rc : st_cfg_get_str(decl, "description", NULL, &desc, err);
    if (rc == ST_OK && desc)
        rc = set_str(&a->description, desc, err);
    rc = rc ? rc : st_project_add(p, a, err);
    st_asset_def_free(a);
    return rc;
}

static st_rc load_silver_dir(st_project *p, const char *dir, st_err *err)
{
    char **names = NULL;
    size_t n = 0;
    st_rc rc = list_dir(dir, ".yml", &names, &n, err);
    for (size_t i = 0; rc == ST_OK && i < n; i++) {
        if (ends_with(names[i], ".asset.yml"))
            continue;
        char *path = st_path_join(dir, names[i]);
        char *name = st_strndup(names[i], strlen(names[i]) - 4);
        st_cfg_doc *doc = NULL;
        rc = path && name ? st_cfg_load_file(path, &doc, err)
                          : st_fail(err, ST_ERR_NOMEM, "silver %s", names[i]);
        if (rc == ST_OK) {
            const st_cfg *root = st_cfg_root(doc);
            const st_cfg *inner = root ? st_cfg_get(root, name) : NULL;
            if (!root)
                rc = st_fail(err, ST_ERR_INVALID, "%s: empty entity declaration", path);
            else
                rc = add_silver(p, name, inner && !st_cfg_get(root, "from") ? inner : root, err);
        }
        st_cfg_doc_free(doc);
        st_free(path);
        st_free(name);
    }
    strv_free(names, n);
    return rc;
}

/* models/<layer>/<name>.asset.yml: settings and checks of any asset. */
static st_rc apply_asset_files(st_project *p, st_err *err)
{
    st_rc rc = ST_OK;
    for (size_t i = 0; rc == ST_OK && i < p->n_assets; i++) {
        st_asset_def *a = p->assets[i];
        char *rel = st_sprintf("models/%s/%s.asset.yml", a->layer, a->name);
        char *path = rel ? st_path_join(p->dir, rel) : NULL;
        st_free(rel);
        if (!path)
            return st_fail(err, ST_ERR_NOMEM, "asset settings");
        if (st_path_exists(path)) {
            st_cfg_doc *doc = NULL;
            rc = st_cfg_load_file(path, &doc, err);
            rc = rc ? rc : st_project_apply_settings(a, st_cfg_root(doc), err);
            st_cfg_doc_free(doc);
        }
        st_free(path);
    }
    return rc;
}

/* ---------------------------------------------------------------- strata.yml */

static bool http_kind(const char *kind)
{
    return kind && (!strcmp(kind, "ecb") || !strcmp(kind, "sdmx") || !strcmp(kind, "oecd") ||
                    !strcmp(kind, "worldbank"));
}

static st_rc add_extract(st_project *p, const char *src, const char *kind, const char *table,
                         const st_cfg *tn, const char *schedule, st_err *err)
{
    const char *target = NULL;
    if (tn && st_cfg_kind_of(tn) == ST_CFG_MAP) {
        st_rc rc = st_cfg_get_str(tn, "target", NULL, &target, err);
        if (rc)
            return rc;
    }
    char *tname = NULL;
    const char *dot = strchr(table, '.');
    if (target)
        tname = st_strdup(target);
    else if (dot && !http_kind(kind))
        tname = st_sprintf("%s__%.*s__%s", src, (int)(dot - table), table, dot + 1);
    else
        tname = st_sprintf("%s__%s", src, table);
    char *key = tname ? st_sprintf("bronze.%s", tname) : NULL;
    const st_cfg *where = tn ? tn : NULL;
    st_asset_def *a = key ? asset_new(key, ST_ASSET_EXTRACT, where ? st_cfg_file(where) : NULL,
                                      where ? st_cfg_line(where) : 0)
                          : NULL;
    st_rc rc = a ? ST_OK : st_fail(err, ST_ERR_NOMEM, "source %s", src);
    if (rc == ST_OK) {
        a->selector = st_sprintf("%s.%s", src, table);
        rc = a->selector ? ST_OK : st_fail(err, ST_ERR_NOMEM, "source %s", src);
    }
    rc = rc ? rc : strv_push(&a->tags, &a->n_tags, src) ? st_fail(err, ST_ERR_NOMEM, "tags") : ST_OK;
    if (rc == ST_OK && schedule)
        rc = set_str(&a->schedule, schedule, err);
    /* the same target from two sources is refused by st_project_add */
    rc = rc ? rc : st_project_add(p, a, err);
    st_asset_def_free(a);
    st_free(tname);
    st_free(key);
    return rc;
}

static st_rc load_sources(st_project *p, const st_cfg *srcs, st_err *err)
{
    if (!srcs)
        return ST_OK;
    if (st_cfg_kind_of(srcs) != ST_CFG_MAP)
        return st_cfg_fail(srcs, err, ST_ERR_INVALID, "expected a map of sources");
    st_rc rc = ST_OK;
    for (size_t i = 0; rc == ST_OK && i < st_cfg_len(srcs); i++) {
        const char *src = st_cfg_key_at(srcs, i);
        const st_cfg *sn = st_cfg_at(srcs, i);
        if (st_cfg_kind_of(sn) != ST_CFG_MAP)
            return st_cfg_fail(sn, err, ST_ERR_INVALID, "expected a map");
        const char *kind = NULL, *sched = NULL;
        rc = st_cfg_get_str(sn, "kind", NULL, &kind, err);
        rc = rc ? rc : st_cfg_get_str(sn, "schedule", NULL, &sched, err);
        const st_cfg *tabs = st_cfg_get(sn, "tables");
        if (!tabs && http_kind(kind))
            tabs = st_cfg_get(sn, kind && !strcmp(kind, "worldbank") ? "indicators" : "series");
        if (rc || !tabs)
            continue;
        if (st_cfg_kind_of(tabs) == ST_CFG_SEQ) {
            for (size_t t = 0; rc == ST_OK && t < st_cfg_len(tabs); t++) {
                const char *tn = st_cfg_scalar(st_cfg_at(tabs, t));
                if (!tn)
                    return st_cfg_fail(st_cfg_at(tabs, t), err, ST_ERR_INVALID,
                                       "expected a table name");
                rc = add_extract(p, src, kind, tn, st_cfg_at(tabs, t), sched, err);
            }
        } else if (st_cfg_kind_of(tabs) == ST_CFG_MAP) {
            for (size_t t = 0; rc == ST_OK && t < st_cfg_len(tabs); t++)
                rc = add_extract(p, src, kind, st_cfg_key_at(tabs, t), st_cfg_at(tabs, t), sched,
                                 err);
        }
    }
    return rc;
}

/* collector.sources.*.families -> bronze.<family> source assets. */
static st_rc load_families(st_project *p, const st_cfg *coll, st_err *err)
{
    const st_cfg *srcs = coll ? st_cfg_get(coll, "sources") : NULL;
    if (!srcs || st_cfg_kind_of(srcs) != ST_CFG_MAP)
        return ST_OK;
    for (size_t i = 0; i < st_cfg_len(srcs); i++) {
        const st_cfg *sn = st_cfg_at(srcs, i);
        const st_cfg *fams = st_cfg_kind_of(sn) == ST_CFG_MAP ? st_cfg_get(sn, "families") : NULL;
        char **names = NULL;
        size_t n = 0;
        st_rc rc = str_list(fams, &names, &n, err);
        for (size_t f = 0; rc == ST_OK && f < n; f++) {
            char *key = st_sprintf("bronze.%s", names[f]);
            if (key && st_project_find(p, key)) {
                st_free(key);
                continue;
            }
            st_asset_def *a = key ? asset_new(key, ST_ASSET_SOURCE, st_cfg_file(fams),
                                              st_cfg_line(fams))
                                  : NULL;
            rc = a ? ST_OK : st_fail(err, ST_ERR_NOMEM, "family %s", names[f]);
            if (rc == ST_OK)
                rc = set_str(&a->description, "event family, loaded by the collector's loader",
                             err);
            if (rc == ST_OK && strv_push(&a->tags, &a->n_tags, "events"))
                rc = st_fail(err, ST_ERR_NOMEM, "tags");
            rc = rc ? rc : st_project_add(p, a, err);
            st_asset_def_free(a);
            st_free(key);
        }
        strv_free(names, n);
        if (rc)
            return rc;
    }
    return ST_OK;
}

/* schedule: {asset-or-source: cron | on_upstream} */
static st_rc apply_schedules(st_project *p, const st_cfg *sec, st_err *err)
{
    if (!sec)
        return ST_OK;
    if (st_cfg_kind_of(sec) != ST_CFG_MAP)
        return st_cfg_fail(sec, err, ST_ERR_INVALID,
                           "expected a map of asset (or source) -> cron expression");
    for (size_t i = 0; i < st_cfg_len(sec); i++) {
        const char *who = st_cfg_key_at(sec, i);
        const char *cron = st_cfg_scalar(st_cfg_at(sec, i));
        if (!cron)
            return st_cfg_fail(st_cfg_at(sec, i), err, ST_ERR_INVALID, "expected a cron expression");
        bool hit = false;
        for (size_t k = 0; k < p->n_assets; k++) {
            st_asset_def *a = p->assets[k];
            bool match = !strcmp(a->key, who) ||
                         (a->kind == ST_ASSET_EXTRACT && a->selector &&
                          !strncmp(a->selector, who, strlen(who)) &&
                          a->selector[strlen(who)] == '.');
            if (!match)
                continue;
            hit = true;
            if (!strcmp(cron, "on_upstream")) {
                a->on_upstream = true;
            } else {
                st_rc rc = set_str(&a->schedule, cron, err);
                if (rc)
                    return rc;
            }
        }
        if (!hit)
            return st_cfg_fail(st_cfg_at(sec, i), err, ST_ERR_NOTFOUND,
                               "schedule for '%s': no such asset or source", who);
    }
    return ST_OK;
}

static st_rc load_settings(st_project *p, const st_cfg *root, st_err *err)
{
    const st_cfg *lin = st_cfg_get(root, "lineage");
    st_rc rc = ST_OK;
    const char *s = NULL;
    if (lin) {
        static const char *const keys[] = {"file", "url", "namespace", NULL};
        rc = st_cfg_kind_of(lin) == ST_CFG_MAP
                 ? st_cfg_check_keys(lin, keys, err)
                 : st_cfg_fail(lin, err, ST_ERR_INVALID, "expected {file: PATH, url: URL}");
        rc = rc ? rc : st_cfg_get_str(lin, "file", NULL, &s, err);
        if (rc == ST_OK && s)
            p->lineage_file = resolve(p->dir, s);
        s = NULL;
        rc = rc ? rc : st_cfg_get_str(lin, "url", NULL, &s, err);
        if (rc == ST_OK && s)
            rc = set_str(&p->lineage_url, s, err);
        s = NULL;
        rc = rc ? rc : st_cfg_get_str(lin, "namespace", NULL, &s, err);
        if (rc == ST_OK && s)
            rc = set_str(&p->lineage_namespace, s, err);
    }
    const st_cfg *o = st_cfg_get(root, "orchestration");
    if (rc == ST_OK && o) {
        static const char *const keys[] = {"workers", "timeout_s", "retries", "retry_backoff_ms",
                                           "missed", NULL};
        int64_t v = 0;
        rc = st_cfg_kind_of(o) == ST_CFG_MAP ? st_cfg_check_keys(o, keys, err)
                                             : st_cfg_fail(o, err, ST_ERR_INVALID, "expected a map");
        rc = rc ? rc : st_cfg_get_int(o, "workers", 4, &v, err);
        p->workers = v < 1 ? 1 : v > 64 ? 64 : (int)v;
        rc = rc ? rc : st_cfg_get_int(o, "timeout_s", 3600, &v, err);
        p->timeout_ms = (v < 1 ? 1 : v) * 1000;
        rc = rc ? rc : st_cfg_get_int(o, "retries", 0, &v, err);
        p->retries = v < 0 ? 0 : v > 100 ? 100 : (int)v;
        rc = rc ? rc : st_cfg_get_int(o, "retry_backoff_ms", 1000, &p->retry_backoff_ms, err);
        s = NULL;
        rc = rc ? rc : st_cfg_get_str(o, "missed", NULL, &s, err);
        if (rc == ST_OK && s) {
            if (strcmp(s, "skip") && strcmp(s, "run_once"))
                rc = st_cfg_fail(st_cfg_get(o, "missed"), err, ST_ERR_INVALID,
                                 "missed: expected skip or run_once");
            else
                rc = set_str(&p->missed, s, err);
        }
    }
    return rc;
}

const char *const st_project_top_keys[] = {
    "name",     "lake",     "state",  "defaults",      "collector", "sources",
    "silver",   "gold",     "models", "schedule",      "lineage",   "orchestration",
    "loader",   "pii",      "schemas", "govern",       "web",       NULL};

st_rc st_project_check_top_keys(const st_cfg *root, st_err *err)
{
    return st_cfg_check_keys(root, st_project_top_keys, err);
}

st_rc st_project_load(const char *dir, st_project **out, st_err *err)
{
    st_project *p = NULL;
    char *yml = st_path_join(dir, "strata.yml");
    char *gold_dir = NULL, *silver_dir = NULL;
    st_rc rc = yml ? st_project_new(dir, &p, err) : st_fail(err, ST_ERR_NOMEM, "project");
    if (rc)
        goto fail;
    if (!st_path_exists(yml)) {
        rc = st_fail(err, ST_ERR_NOTFOUND, "%s: not a Strata project (no strata.yml; see "
                     "`strata init`)", dir);
        goto fail;
    }
    rc = st_cfg_load_file(yml, &p->doc, err);
    if (rc)
        goto fail;
    const st_cfg *root = st_cfg_root(p->doc);
    if (!root || st_cfg_kind_of(root) != ST_CFG_MAP) {
        rc = st_fail(err, ST_ERR_INVALID, "%s: expected a map at the top level", yml);
        goto fail;
    }
    rc = st_project_check_top_keys(root, err);
    if (rc)
        goto fail;
    const char *s = NULL;
    rc = st_cfg_get_str(root, "name", "strata", &s, err);
    rc = rc ? rc : set_str(&p->name, s, err);
    rc = rc ? rc : st_cfg_get_str(root, "lake", "./lake", &s, err);
    if (rc == ST_OK) {
        st_free(p->lake);
        p->lake = resolve(dir, s);
    }
    rc = rc ? rc : st_cfg_get_str(root, "state", "./state.db", &s, err);
    if (rc == ST_OK) {
        st_free(p->state_path);
        p->state_path = resolve(dir, s);
    }
    rc = rc ? rc : load_settings(p, root, err);
    rc = rc ? rc : load_sources(p, st_cfg_get(root, "sources"), err);
    rc = rc ? rc : load_families(p, st_cfg_get(root, "collector"), err);
    const st_cfg *sil = st_cfg_get(root, "silver");
    if (rc == ST_OK && sil) {
        if (st_cfg_kind_of(sil) != ST_CFG_MAP)
            rc = st_cfg_fail(sil, err, ST_ERR_INVALID, "expected a map of entities");
        for (size_t i = 0; rc == ST_OK && i < st_cfg_len(sil); i++)
            rc = add_silver(p, st_cfg_key_at(sil, i), st_cfg_at(sil, i), err);
    }
    silver_dir = st_path_join(dir, "models/silver");
    rc = rc ? rc : load_silver_dir(p, silver_dir, err);
    const st_cfg *gold = st_cfg_get(root, "gold");
    const char *gm = "models/gold";
    if (rc == ST_OK && gold && st_cfg_kind_of(gold) == ST_CFG_MAP)
        rc = st_cfg_get_str(gold, "models", gm, &gm, err);
    gold_dir = resolve(dir, gm);
    rc = rc ? rc : load_gold_dir(p, gold_dir, err);
    rc = rc ? rc : apply_asset_files(p, err);
    rc = rc ? rc : apply_schedules(p, st_cfg_get(root, "schedule"), err);
    if (rc == ST_OK && (!p->lake || !p->state_path))
        rc = st_fail(err, ST_ERR_NOMEM, "project");
    if (rc)
        goto fail;
    st_free(yml);
    st_free(gold_dir);
    st_free(silver_dir);
    *out = p;
    return ST_OK;
fail:
    st_free(yml);
    st_free(gold_dir);
    st_free(silver_dir);
    st_project_free(p);
    return rc;
}
