/*
 * config.c - silver entity declarations: parsing one entity's YAML map into
 * st_silver_entity and finding it in models/silver/<name>.yml or in the
 * `silver:` section of strata.yml.  The rebuild itself is in scd2.c; the
 * Delta side in merge.c.
 */
#include "strata/silver.h"

#include <string.h>

void st_silver_entity_free(st_silver_entity *e)
{
    if (!e)
        return;
    char **lists[] = {e->key, e->track, e->update_in_place, e->partition_by, e->tie_break};
    size_t ns[] = {e->n_key, e->n_track, e->n_update_in_place, e->n_partition_by,
                   e->n_tie_break};
    for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++) {
        for (size_t i = 0; i < ns[l]; i++)
            st_free(lists[l][i]);
        st_free(lists[l]);
    }
    st_free(e->name);
    st_free(e->from);
    st_free(e->sequence);
    st_free(e->delete_expr);
    st_free(e->file);
    st_free(e);
}

/* Reads a list of column names: a sequence of scalars or one scalar. */
static st_rc get_list(const st_cfg *map, const char *key, char ***out, size_t *n_out,
                      st_err *err)
{
    const st_cfg *n = st_cfg_get(map, key);
    *out = NULL;
    *n_out = 0;
    if (!n)
        return ST_OK;
    if (st_cfg_kind_of(n) == ST_CFG_SCALAR) {
        const char *s = st_cfg_scalar(n);
        if (!s || !*s)
            return ST_OK;
        *out = st_calloc(1, sizeof **out);
        if (!*out || !((*out)[0] = st_strdup(s)))
            return st_fail(err, ST_ERR_NOMEM, "silver entity %s", key);
        *n_out = 1;
        return ST_OK;
    }
    if (st_cfg_kind_of(n) != ST_CFG_SEQ)
        return st_cfg_fail(n, err, ST_ERR_INVALID, "expected a list of column names");
    size_t len = st_cfg_len(n);
    *out = st_calloc(len ? len : 1, sizeof **out);
    if (!*out)
        return st_fail(err, ST_ERR_NOMEM, "silver entity %s", key);
    for (size_t i = 0; i < len; i++) {
        const char *s = st_cfg_scalar(st_cfg_at(n, i));
        if (!s || !*s)
            return st_cfg_fail(st_cfg_at(n, i), err, ST_ERR_INVALID,
                               "expected a column name");
        for (size_t j = 0; j < *n_out; j++)
            if (!strcmp((*out)[j], s))
                return st_cfg_fail(st_cfg_at(n, i), err, ST_ERR_INVALID,
                                   "column '%s' is listed twice", s);
        if (!((*out)[i] = st_strdup(s)))
            return st_fail(err, ST_ERR_NOMEM, "silver entity %s", key);
        (*n_out)++;
    }
    return ST_OK;
}

static bool in_list(char **l, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(l[i], s))
            return true;
    return false;
}

st_rc st_silver_entity_parse(const st_cfg *node, const char *name, st_silver_entity **out,
                             st_err *err)
{
    static const char *const allowed[] = {"from",      "key",     "track",        "update_in_place",
                                          "ignore",    "sequence", "delete",      "partition_by",
                                          "tie_break", "description", "kind", NULL};
    if (!node || st_cfg_kind_of(node) != ST_CFG_MAP)
        return node ? st_cfg_fail(node, err, ST_ERR_INVALID, "silver entity %s: expected a map",
                                  name)
                    : st_fail(err, ST_ERR_INVALID, "silver entity %s: empty declaration", name);
    st_rc rc = st_cfg_check_keys(node, allowed, err);
    const char *kind = NULL;
    rc = rc ? rc : st_cfg_get_str(node, "kind", "dimension", &kind, err);
    if (rc == ST_OK && strcmp(kind, "dimension"))
        rc = st_cfg_fail(st_cfg_get(node, "kind"), err, ST_ERR_INVALID,
                         "silver %s: kind '%s' is not a dimension (kinds: dimension, fact)", name,
                         kind);
    if (rc)
        return rc;
    st_silver_entity *e = st_calloc(1, sizeof *e);
    if (!e)
        return st_fail(err, ST_ERR_NOMEM, "silver entity %s", name);
    e->name = st_strdup(name);
    e->file = st_strdup(st_cfg_file(node) ? st_cfg_file(node) : "?");
    e->line = st_cfg_line(node);
    const char *from = NULL, *seq = NULL, *del = NULL;
    char **ignore = NULL;
    size_t n_ignore = 0;
    rc = st_cfg_get_str(node, "from", NULL, &from, err);
    rc = rc ? rc : st_cfg_get_str(node, "sequence", NULL, &seq, err);
    rc = rc ? rc : st_cfg_get_str(node, "delete", NULL, &del, err);
    rc = rc ? rc : get_list(node, "key", &e->key, &e->n_key, err);
    rc = rc ? rc : get_list(node, "track", &e->track, &e->n_track, err);
    rc = rc ? rc : get_list(node, "update_in_place", &e->update_in_place, &e->n_update_in_place,
                            err);
    rc = rc ? rc : get_list(node, "ignore", &ignore, &n_ignore, err);
    rc = rc ? rc : get_list(node, "partition_by", &e->partition_by, &e->n_partition_by, err);
    rc = rc ? rc : get_list(node, "tie_break", &e->tie_break, &e->n_tie_break, err);
    if (rc)
        goto fail;
    e->partition_by_set = st_cfg_get(node, "partition_by") != NULL;
    if (!e->name || !e->file) {
        rc = st_fail(err, ST_ERR_NOMEM, "silver entity %s", name);
        goto fail;
    }
    if (!from || !*from) {
        rc = st_cfg_fail(node, err, ST_ERR_INVALID, "silver entity %s: 'from' is required", name);
        goto fail;
    }
    if (!seq || !*seq) {
        rc = st_cfg_fail(node, err, ST_ERR_INVALID,
                         "silver entity %s: 'sequence' is required (the column that orders "
                         "changes)", name);
        goto fail;
    }
    if (e->n_key == 0) {
        rc = st_cfg_fail(node, err, ST_ERR_INVALID, "silver entity %s: 'key' is required", name);
        goto fail;
    }
    if (e->n_track == 0) {
        rc = st_cfg_fail(node, err, ST_ERR_INVALID,
                         "silver entity %s: 'track' needs at least one column", name);
        goto fail;
    }
    for (size_t i = 0; i < e->n_track; i++)
        if (in_list(e->key, e->n_key, e->track[i]) || in_list(ignore, n_ignore, e->track[i]) ||
            in_list(e->update_in_place, e->n_update_in_place, e->track[i])) {
            rc = st_cfg_fail(st_cfg_get(node, "track"), err, ST_ERR_INVALID,
                             "column '%s' is tracked and also a key, ignored or updated in place",
                             e->track[i]);
            goto fail;
        }
    e->from = st_strdup(from);
    e->sequence = st_strdup(seq);
    if (!del || !*del || !strcmp(del, "none")) {
        e->delete_kind = ST_SILVER_DELETE_NONE;
    } else if (!strcmp(del, "missing")) {
        e->delete_kind = ST_SILVER_DELETE_MISSING;
    } else {
        e->delete_kind = ST_SILVER_DELETE_EXPR;
        e->delete_expr = st_strdup(del);
    }
    if (!e->from || !e->sequence || (e->delete_kind == ST_SILVER_DELETE_EXPR && !e->delete_expr)) {
        rc = st_fail(err, ST_ERR_NOMEM, "silver entity %s", name);
        goto fail;
    }
    for (size_t i = 0; i < n_ignore; i++)
        st_free(ignore[i]);
    st_free(ignore);
    *out = e;
    return ST_OK;
fail:
    for (size_t i = 0; i < n_ignore; i++)
        st_free(ignore[i]);
    st_free(ignore);
    st_silver_entity_free(e);
    return rc;
}

/* Finds the YAML map declaring `name`: <project>/models/silver/<name>.yml
 * (the keys at the top or under `<name>:`), else the silver: section of
 * <project>/strata.yml.  OWNED *doc holds *node. */
static st_rc find_decl(const char *project_dir, const char *name, st_cfg_doc **doc,
                       const st_cfg **node, st_err *err)
{
    st_rc rc = ST_OK;
    *doc = NULL;
    *node = NULL;
    char *rel = st_sprintf("models/silver/%s.yml", name);
    char *path = rel ? st_path_join(project_dir, rel) : NULL;
    if (!path) {
        rc = st_fail(err, ST_ERR_NOMEM, "silver %s", name);
        goto done;
    }
    if (st_path_exists(path)) {
        rc = st_cfg_load_file(path, doc, err);
        if (rc)
            goto done;
        const st_cfg *root = st_cfg_root(*doc);
        const st_cfg *n = st_cfg_get(root, name);
        /* either the entity's keys at the top or nested under its name */
        *node = n && !st_cfg_get(root, "from") ? n : root;
        goto done;
    }
    st_free(path);
    path = st_path_join(project_dir, "strata.yml");
    if (!path) {
        rc = st_fail(err, ST_ERR_NOMEM, "silver %s", name);
        goto done;
    }
    if (st_path_exists(path)) {
        rc = st_cfg_load_file(path, doc, err);
        if (rc)
            goto done;
        const st_cfg *sec = st_cfg_get(st_cfg_root(*doc), "silver");
        *node = sec ? st_cfg_get(sec, name) : NULL;
        if (*node)
            goto done;
    }
    rc = st_fail(err, ST_ERR_NOTFOUND,
                 "silver entity %s is not declared (looked in %s/models/silver/%s.yml and the "
                 "silver: section of %s/strata.yml)",
                 name, project_dir, name, project_dir);
done:
    if (rc) {
        st_cfg_doc_free(*doc);
        *doc = NULL;
    }
    st_free(rel);
    st_free(path);
    return rc;
}

st_rc st_silver_entity_load(const char *project_dir, const char *name, st_silver_entity **out,
                            st_err *err)
{
    st_cfg_doc *doc = NULL;
    const st_cfg *node = NULL;
    st_rc rc = find_decl(project_dir, name, &doc, &node, err);
    rc = rc ? rc : st_silver_entity_parse(node, name, out, err);
    st_cfg_doc_free(doc);
    return rc;
}

st_rc st_silver_is_fact(const char *project_dir, const char *name, bool *out, st_err *err)
{
    st_cfg_doc *doc = NULL;
    const st_cfg *node = NULL;
    st_rc rc = find_decl(project_dir, name, &doc, &node, err);
    const char *kind = NULL;
    rc = rc ? rc : st_cfg_get_str(node, "kind", "dimension", &kind, err);
    if (rc == ST_OK)
        *out = kind && !strcmp(kind, "fact");
    st_cfg_doc_free(doc);
    return rc;
}

st_rc st_silver_fact_load(const char *project_dir, const char *name, st_silver_fact **out,
                          st_err *err)
{
    st_cfg_doc *doc = NULL;
    const st_cfg *node = NULL;
    st_rc rc = find_decl(project_dir, name, &doc, &node, err);
    rc = rc ? rc : st_silver_fact_parse(node, name, out, err);
    st_cfg_doc_free(doc);
    return rc;
}

char *st_silver_table_path(const char *lake_dir, const char *name)
{
    const char *dot = strchr(name, '.');
    if (name[0] == '/' || name[0] == '.' || !dot || strchr(name, '/'))
        return st_strdup(name);
    char *layer = st_strndup(name, (size_t)(dot - name));
    char *p = layer ? st_sprintf("%s/%s/%s", lake_dir, layer, dot + 1) : NULL;
    st_free(layer);
    return p;
}
