/*
 * changes.c - change data feed reads (st_delta_changes_sql): for every
 * commit in a version range, the rows of its cdc files (which carry
 * _change_type), or, when a commit has none, its added files as inserts and
 * its removed files as deletes (a remove + add of the same path is a
 * deletion-vector update: only the newly deleted positions are deletes).
 * Each row gets _commit_version and _commit_timestamp (TIMESTAMPTZ).
 *
 * The SQL is built from scan.c's branches, so logical names, partition
 * values, column mapping and casts work as in a snapshot scan.
 */
#include "delta/delta_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static bool cdf_enabled(const st_kv *cfg, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcasecmp(cfg[i].key, "delta.enableChangeDataFeed"))
            return cfg[i].value && !strcasecmp(cfg[i].value, "true");
    return false;
}

static int64_t commit_ts(const st_delta_commit *c, const char *table_path, int64_t v)
{
    if (c->in_commit_timestamp >= 0)
        return c->in_commit_timestamp;
    if (c->commit_timestamp >= 0)
        return c->commit_timestamp;
    char *p = st_delta_commit_path(table_path, v);
    struct stat sb;
    int64_t t = 0;
    if (p && stat(p, &sb) == 0)
        t = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
    st_free(p);
    return t;
}

/* a \ b for sorted position arrays, OWNED *out. */
static st_rc pos_diff(const uint64_t *a, size_t na, const uint64_t *b, size_t nb, uint64_t **out,
                      size_t *n_out)
{
    uint64_t *r = st_malloc((na ? na : 1) * sizeof *r);
    if (!r)
        return ST_ERR_NOMEM;
    size_t i = 0, j = 0, n = 0;
    while (i < na) {
        if (j < nb && b[j] < a[i]) {
            j++;
        } else if (j < nb && b[j] == a[i]) {
            i++;
            j++;
        } else {
            r[n++] = a[i++];
        }
    }
    *out = r;
    *n_out = n;
    return ST_OK;
}

typedef struct cdf_build {
    st_engine *eng;
    const st_delta_snapshot *s;
    st_buf *b;
    bool first;
} cdf_build;

static st_rc branch(cdf_build *cb, const st_delta_file *f, const char *change_type, int64_t v,
                    int64_t ts, const st_delta_branch_opts *base, st_err *err)
{
    if (!st_path_exists(f->abs_path))
        return st_fail(err, ST_ERR_NOTFOUND, "version %lld: file %s is missing", (long long)v,
                       f->abs_path);
    st_delta_branch_opts o = base ? *base : (st_delta_branch_opts){0};
    char *extra;
    if (change_type)
        extra = st_sprintf(", CAST('%s' AS VARCHAR) AS \"_change_type\", CAST(%lld AS BIGINT) AS "
                           "\"_commit_version\", make_timestamptz(CAST(%lld AS BIGINT)) AS "
                           "\"_commit_timestamp\"",
                           change_type, (long long)v, (long long)ts * 1000);
    else
        extra = st_sprintf(", CAST(\"_change_type\" AS VARCHAR) AS \"_change_type\", CAST(%lld AS "
                           "BIGINT) AS \"_commit_version\", make_timestamptz(CAST(%lld AS BIGINT)) "
                           "AS \"_commit_timestamp\"",
                           (long long)v, (long long)ts * 1000);
    if (!extra)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    o.extra_select = extra;
    o.extra_physical = change_type ? NULL : "_change_type";
    st_rc rc = cb->first ? ST_OK : st_buf_puts(cb->b, " UNION ALL ");
    cb->first = false;
    if (rc == ST_OK)
        rc = st_delta_scan_branch(cb->eng, cb->s, &f, 1, &o, cb->b, err);
    st_free(extra);
    return rc;
}

static void tomb_as_file(const st_delta_tombstone *t, st_delta_file *f)
{
    memset(f, 0, sizeof *f);
    f->path = t->path;
    f->abs_path = t->abs_path;
    f->part = t->part;
    f->n_part = t->n_part;
    f->size = t->size;
    f->has_dv = t->has_dv;
    f->dv = t->dv;
    f->base_row_id = -1;
    f->default_row_commit_version = -1;
    f->num_records = -1;
}

static st_rc commit_changes(cdf_build *cb, const st_delta_commit *c, int64_t v, int64_t ts,
                            st_err *err)
{
    st_rc rc = ST_OK;
    if (c->n_cdcs) {
        for (size_t i = 0; rc == ST_OK && i < c->n_cdcs; i++) {
            const st_delta_cdc *d = &c->cdcs[i];
            st_delta_file f;
            memset(&f, 0, sizeof f);
            f.path = d->path;
            f.abs_path = d->abs_path;
            f.part = d->part;
            f.n_part = d->n_part;
            rc = branch(cb, &f, NULL, v, ts, NULL, err);
        }
        return rc;
    }
    bool *paired = st_calloc(c->n_adds + 1, sizeof *paired);
    if (!paired)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    for (size_t i = 0; rc == ST_OK && i < c->n_removes; i++) {
        const st_delta_tombstone *t = c->removes[i];
        if (!t->data_change)
            continue;
        const st_delta_file *add = NULL;
        for (size_t j = 0; j < c->n_adds; j++) {
            if (!paired[j] && !strcmp(c->adds[j]->abs_path, t->abs_path)) {
                add = c->adds[j];
                paired[j] = true;
                break;
            }
        }
        st_delta_file f;
        tomb_as_file(t, &f);
        if (!add) {
            rc = branch(cb, &f, "delete", v, ts, NULL, err);
            continue;
        }
        /* same file, new deletion vector: newly deleted rows are deletes,
         * rows no longer deleted are inserts */
        uint64_t *old_pos = NULL, *new_pos = NULL, *del = NULL, *ins = NULL;
        size_t n_old = 0, n_new = 0, n_del = 0, n_ins = 0;
        if (t->has_dv)
            rc = st_delta_dv_load(cb->s->table_path, &t->dv, &old_pos, &n_old, err);
        if (rc == ST_OK && add->has_dv)
            rc = st_delta_dv_load(cb->s->table_path, &add->dv, &new_pos, &n_new, err);
        if (rc == ST_OK && (pos_diff(new_pos, n_new, old_pos, n_old, &del, &n_del) ||
                            pos_diff(old_pos, n_old, new_pos, n_new, &ins, &n_ins)))
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        if (rc == ST_OK && n_del) {
            st_delta_branch_opts o = {.use_keep = true, .keep_pos = del, .n_keep = n_del};
            rc = branch(cb, &f, "delete", v, ts, &o, err);
        }
        if (rc == ST_OK && n_ins) {
            st_delta_branch_opts o = {.use_keep = true, .keep_pos = ins, .n_keep = n_ins};
            rc = branch(cb, &f, "insert", v, ts, &o, err);
        }
        st_free(old_pos);
        st_free(new_pos);
        st_free(del);
        st_free(ins);
    }
    for (size_t j = 0; rc == ST_OK && j < c->n_adds; j++) {
        if (paired[j] || !c->adds[j]->data_change)
            continue;
        rc = branch(cb, c->adds[j], "insert", v, ts, NULL, err);
    }
    st_free(paired);
    return rc;
}

st_rc st_delta_changes_sql(st_engine *eng, const char *table_path, int64_t from_version,
                           int64_t to_version, char **out_sql, st_err *err)
{
    if (from_version < 0 || to_version < from_version)
        return st_fail(err, ST_ERR_INVALID, "change data feed of %s: bad version range %lld..%lld",
                       table_path, (long long)from_version, (long long)to_version);
    st_delta_listing *l = NULL;
    st_delta_snapshot *s_from = NULL, *s_to = NULL;
    st_arena *a = NULL;
    st_buf b;
    st_buf_init(&b, 0);
    st_rc rc = st_delta_list_log(table_path, &l, err);
    if (rc)
        return rc;
    rc = st_delta_snapshot_load_listed(eng, table_path, l, to_version, &s_to, err);
    if (rc)
        goto done;
    rc = st_delta_snapshot_load_listed(eng, table_path, l, from_version, &s_from, err);
    if (rc)
        goto done;
    bool enabled = cdf_enabled(s_from->metadata.configuration, s_from->metadata.n_configuration);
    a = st_arena_new(0);
    if (!a) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto done;
    }
    cdf_build cb = {eng, s_to, &b, true};
    rc = st_buf_puts(&b, "SELECT * FROM (");
    for (int64_t v = from_version; rc == ST_OK && v <= to_version; v++) {
        char *path = st_delta_commit_path(table_path, v);
        char *data = NULL;
        size_t len = 0;
        st_delta_commit c;
        rc = path ? st_file_read(path, (size_t)1 << 31, &data, &len, err)
                  : st_fail(err, ST_ERR_NOMEM, "out of memory");
        if (rc == ST_OK)
            rc = st_delta_log_parse_commit(data, len, path, table_path, a, &c, err);
        st_free(data);
        if (rc) {
            if (path && !st_path_exists(path))
                rc = st_fail(err, ST_ERR_NOTFOUND,
                             "change data feed of %s: commit %lld (%s) is not available", table_path,
                             (long long)v, path);
            st_free(path);
            break;
        }
        st_free(path);
        if (c.metadata && v > from_version)
            enabled = cdf_enabled(c.metadata->configuration, c.metadata->n_configuration);
        if (!enabled) {
            rc = st_fail(err, ST_ERR_INVALID,
                         "change data feed of %s: delta.enableChangeDataFeed is not true at version "
                         "%lld",
                         table_path, (long long)v);
            break;
        }
        rc = commit_changes(&cb, &c, v, commit_ts(&c, table_path, v), err);
    }
    if (rc == ST_OK && cb.first) {
        /* no changes: an empty result with the right columns */
        rc = st_buf_puts(&b, "SELECT ");
        for (size_t i = 0; rc == ST_OK && i < s_to->metadata.schema->n_fields; i++) {
            const st_dfield *f = &s_to->metadata.schema->fields[i];
            char *ty = st_delta_type_sql(&f->type);
            rc = ty ? st_buf_printf(&b, "CAST(NULL AS %s) AS ", ty) : ST_ERR_NOMEM;
            rc = rc ? rc : st_buf_sql_ident(&b, f->name);
            rc = rc ? rc : st_buf_puts(&b, ", ");
            st_free(ty);
        }
        rc = rc ? rc : st_buf_puts(&b, "CAST(NULL AS VARCHAR) AS \"_change_type\", CAST(NULL AS "
                                       "BIGINT) AS \"_commit_version\", CAST(NULL AS TIMESTAMPTZ) "
                                       "AS \"_commit_timestamp\" WHERE false");
        if (rc && err && err->code == ST_OK)
            st_fail(err, rc, "out of memory");
    }
    rc = rc ? rc : st_buf_puts(&b, ") AS __st_changes");
done:
    st_arena_free(a);
    st_delta_snapshot_free(s_from);
    st_delta_snapshot_free(s_to);
    st_delta_listing_free(l);
    if (rc) {
        st_buf_free(&b);
        return rc;
    }
    *out_sql = st_buf_take(&b);
    return ST_OK;
}
