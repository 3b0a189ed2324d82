/*
 * scan.c - turns a snapshot into one DuckDB SELECT with logical column
 * names and Delta types, and prunes files for simple predicates.
 *
 * Shape of the SQL: a UNION ALL with one branch per group of files that
 * share partition values (and one branch per file with a deletion vector).
 * Each branch reads its files with read_parquet(union_by_name) and unions
 * BY NAME with an empty row of every physical column, so columns missing
 * from every file of the branch come out NULL.  Partition values become
 * literals; every column is cast to its Delta type (older files may hold
 * narrower types); column-mapped nested fields are renamed with
 * struct_pack.  Deleted rows are excluded by file_row_number.
 */
#include "delta/delta_int.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Positions up to this count are inlined as NOT IN (...); more go to a temp table. */
#define DV_INLINE_MAX 1000

/* ---------------------------------------------------------------- partition values */

static bool has_zone(const char *v)
{
    size_t n = strlen(v);
    if (n > 0 && (v[n - 1] == 'Z' || v[n - 1] == 'z'))
        return true;
    /* an offset after the time part: ...+hh:mm, ...-hh, +hhmm */
    for (size_t i = 11; i < n; i++)
        if (v[i] == '+' || v[i] == '-')
            return true;
    return false;
}

static bool valid_int(const char *v)
{
    const char *p = v;
    if (*p == '-' || *p == '+')
        p++;
    if (!*p)
        return false;
    for (; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    return true;
}

st_rc st_delta_part_literal(const st_dtype *t, const char *value, st_buf *out, st_err *err)
{
    char *ts = st_delta_type_sql(t);
    if (!ts)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    st_rc rc = ST_OK;
    if (!value || !value[0]) {
        rc = st_buf_printf(out, "CAST(NULL AS %s)", ts);
        st_free(ts);
        return rc;
    }
    switch (t->kind) {
    case ST_DT_STRING:
        rc = st_buf_sql_str(out, value);
        break;
    case ST_DT_BINARY:
        /* Spark writes the raw bytes as UTF-8 text */
        rc = st_buf_puts(out, "encode(");
        rc = rc ? rc : st_buf_sql_str(out, value);
        rc = rc ? rc : st_buf_putc(out, ')');
        break;
    case ST_DT_BOOLEAN:
        if (!strcasecmp(value, "true"))
            rc = st_buf_puts(out, "TRUE");
        else if (!strcasecmp(value, "false"))
            rc = st_buf_puts(out, "FALSE");
        else
            rc = st_fail(err, ST_ERR_PARSE, "partition value \"%s\" is not a boolean", value);
        break;
    case ST_DT_BYTE:
    case ST_DT_SHORT:
    case ST_DT_INTEGER:
    case ST_DT_LONG:
        if (!valid_int(value)) {
            rc = st_fail(err, ST_ERR_PARSE, "partition value \"%s\" is not an integer", value);
            break;
        }
        rc = st_buf_puts(out, "CAST(");
        rc = rc ? rc : st_buf_sql_str(out, value);
        rc = rc ? rc : st_buf_printf(out, " AS %s)", ts);
        break;
    case ST_DT_TIMESTAMP: {
        /* zone-less legacy values are taken as UTC */
        rc = st_buf_puts(out, "CAST(");
        if (has_zone(value)) {
            rc = rc ? rc : st_buf_sql_str(out, value);
        } else {
            char *z = st_sprintf("%s+00", value);
            rc = rc ? rc : (z ? st_buf_sql_str(out, z) : ST_ERR_NOMEM);
            st_free(z);
        }
        rc = rc ? rc : st_buf_puts(out, " AS TIMESTAMPTZ)");
        break;
    }
    case ST_DT_TIMESTAMP_NTZ: {
        char *v = st_strdup(value);
        if (!v) {
            rc = ST_ERR_NOMEM;
            break;
        }
        size_t n = strlen(v);
        if (n && (v[n - 1] == 'Z' || v[n - 1] == 'z'))
            v[n - 1] = '\0';
        rc = st_buf_puts(out, "CAST(");
        rc = rc ? rc : st_buf_sql_str(out, v);
        rc = rc ? rc : st_buf_puts(out, " AS TIMESTAMP)");
        st_free(v);
        break;
    }
    case ST_DT_STRUCT:
    case ST_DT_ARRAY:
    case ST_DT_MAP:
        rc = st_fail(err, ST_ERR_UNSUPPORTED, "partition column of nested type");
        break;
    default:
        rc = st_buf_puts(out, "CAST(");
        rc = rc ? rc : st_buf_sql_str(out, value);
        rc = rc ? rc : st_buf_printf(out, " AS %s)", ts);
        break;
    }
    st_free(ts);
    return rc;
}

/* ---------------------------------------------------------------- column expressions */

static bool type_has_struct(const st_dtype *t)
{
    switch (t->kind) {
    case ST_DT_STRUCT: return true;
    case ST_DT_ARRAY: return type_has_struct(t->elem);
    case ST_DT_MAP: return type_has_struct(t->elem) || type_has_struct(t->value);
    default: return false;
    }
}

/* Renames physical struct fields to logical ones; x already has the
 * physical type.  depth names lambda variables. */
static st_rc rename_expr(st_buf *b, const char *x, const st_dtype *t, int depth)
{
    st_rc rc = ST_OK;
    if (!type_has_struct(t))
        return st_buf_puts(b, x);
    if (t->kind == ST_DT_STRUCT) {
        rc = st_buf_printf(b, "CASE WHEN (%s) IS NULL THEN NULL ELSE struct_pack(", x);
        for (size_t i = 0; rc == ST_OK && i < t->n_fields; i++) {
            const st_dfield *f = &t->fields[i];
            if (i)
                rc = st_buf_puts(b, ", ");
            rc = rc ? rc : st_buf_sql_ident(b, f->name);
            rc = rc ? rc : st_buf_puts(b, " := ");
            st_buf sub;
            st_buf_init(&sub, 0);
            rc = rc ? rc : st_buf_printf(&sub, "struct_extract(%s, ", x);
            rc = rc ? rc : st_buf_sql_str(&sub, st_delta_field_phys(f, "name"));
            rc = rc ? rc : st_buf_putc(&sub, ')');
            rc = rc ? rc : rename_expr(b, sub.data, &f->type, depth + 1);
            st_buf_free(&sub);
        }
        return rc ? rc : st_buf_puts(b, ") END");
    }
    char var[32];
    snprintf(var, sizeof var, "x%d", depth);
    if (t->kind == ST_DT_ARRAY) {
        rc = st_buf_printf(b, "list_transform(%s, lambda %s: ", x, var);
        rc = rc ? rc : rename_expr(b, var, t->elem, depth + 1);
        return rc ? rc : st_buf_putc(b, ')');
    }
    /* MAP */
    char kx[48], vx[48];
    snprintf(kx, sizeof kx, "%s.\"key\"", var);
    snprintf(vx, sizeof vx, "%s.\"value\"", var);
    rc = st_buf_printf(b, "map_from_entries(list_transform(map_entries(%s), lambda %s: struct_pack(\"key\" := ",
                       x, var);
    rc = rc ? rc : rename_expr(b, kx, t->elem, depth + 1);
    rc = rc ? rc : st_buf_puts(b, ", \"value\" := ");
    rc = rc ? rc : rename_expr(b, vx, t->value, depth + 1);
    return rc ? rc : st_buf_puts(b, ")))");
}

/* Expression for one data column read under its physical name. */
static st_rc column_expr(st_buf *b, const st_dfield *f, const char *cm)
{
    const char *phys = st_delta_field_phys(f, cm);
    st_buf src;
    st_buf_init(&src, 0);
    st_rc rc = st_buf_sql_ident(&src, phys);
    bool mapped = strcmp(cm, "none") && type_has_struct(&f->type);
    char *ty = st_delta_type_sql_ex(&f->type, mapped);
    if (rc || !ty) {
        st_buf_free(&src);
        st_free(ty);
        return ST_ERR_NOMEM;
    }
    if (!mapped) {
        rc = st_buf_printf(b, "CAST(%s AS %s)", src.data, ty);
    } else {
        char *cast = st_sprintf("CAST(%s AS %s)", src.data, ty);
        rc = cast ? rename_expr(b, cast, &f->type, 0) : ST_ERR_NOMEM;
        st_free(cast);
    }
    st_buf_free(&src);
    st_free(ty);
    return rc;
}

/* ---------------------------------------------------------------- SQL assembly */

static bool is_part_col(const st_delta_snapshot *s, const char *name)
{
    for (size_t i = 0; i < s->metadata.n_partition_columns; i++)
        if (!strcasecmp(s->metadata.partition_columns[i], name))
            return true;
    return false;
}

static const char *part_value(const st_delta_file *f, const st_dfield *fld, const char *cm)
{
    const char *phys = st_delta_field_phys(fld, cm);
    for (size_t i = 0; i < f->n_part; i++)
        if (!strcmp(f->part[i].key, phys))
            return f->part[i].value;
    for (size_t i = 0; i < f->n_part; i++)
        if (!strcmp(f->part[i].key, fld->name))
            return f->part[i].value;
    for (size_t i = 0; i < f->n_part; i++)
        if (!strcasecmp(f->part[i].key, fld->name))
            return f->part[i].value;
    return NULL;
}

/* Group key of a file: its partition values in schema order. */
static char *group_key(const st_delta_snapshot *s, const st_delta_file *f, const char *cm)
{
    st_buf b;
    st_buf_init(&b, 0);
    st_buf_puts(&b, "");
    for (size_t i = 0; i < s->metadata.schema->n_fields; i++) {
        const st_dfield *fld = &s->metadata.schema->fields[i];
        if (!is_part_col(s, fld->name))
            continue;
        const char *v = part_value(f, fld, cm);
        if (v)
            st_buf_printf(&b, "V%zu:%s\x1e", strlen(v), v);
        else
            st_buf_puts(&b, "N\x1e");
    }
    return st_buf_take(&b);
}

/* The empty BY NAME partner that supplies every physical column. */
static st_rc null_row(st_buf *b, const st_delta_snapshot *s, const char *cm, const char *extra)
{
    st_rc rc = st_buf_puts(b, " UNION ALL BY NAME SELECT ");
    bool first = true;
    if (extra) {
        rc = rc ? rc : st_buf_puts(b, "NULL AS ");
        rc = rc ? rc : st_buf_sql_ident(b, extra);
        first = false;
    }
    for (size_t i = 0; rc == ST_OK && i < s->metadata.schema->n_fields; i++) {
        const st_dfield *f = &s->metadata.schema->fields[i];
        if (is_part_col(s, f->name))
            continue;
        if (!first)
            rc = st_buf_puts(b, ", ");
        first = false;
        rc = rc ? rc : st_buf_puts(b, "NULL AS ");
        rc = rc ? rc : st_buf_sql_ident(b, st_delta_field_phys(f, cm));
    }
    if (first)
        rc = rc ? rc : st_buf_puts(b, "NULL AS \"__st_none\"");
    return rc ? rc : st_buf_puts(b, " WHERE false");
}

/* SELECT list for a branch whose first file is f (partition values). */
static st_rc select_list(st_buf *b, const st_delta_snapshot *s, const st_delta_file *f,
                         const char *cm, st_err *err)
{
    st_rc rc = ST_OK;
    for (size_t i = 0; rc == ST_OK && i < s->metadata.schema->n_fields; i++) {
        const st_dfield *fld = &s->metadata.schema->fields[i];
        if (i)
            rc = st_buf_puts(b, ", ");
        if (rc)
            break;
        if (is_part_col(s, fld->name)) {
            rc = f ? st_delta_part_literal(&fld->type, part_value(f, fld, cm), b, err)
                   : st_delta_part_literal(&fld->type, NULL, b, err);
            if (rc) {
                st_err_ctx(err, "column %s of file %s", fld->name, f ? f->path : "?");
                return rc;
            }
        } else if (f) {
            rc = column_expr(b, fld, cm);
        } else {
            char *ty = st_delta_type_sql(&fld->type);
            rc = ty ? st_buf_printf(b, "CAST(NULL AS %s)", ty) : ST_ERR_NOMEM;
            st_free(ty);
        }
        rc = rc ? rc : st_buf_puts(b, " AS ");
        rc = rc ? rc : st_buf_sql_ident(b, fld->name);
    }
    if (rc && err && err->code == ST_OK)
        st_fail(err, rc, "building the scan");
    return rc;
}

/* Appends " WHERE file_row_number [NOT] IN (...)": inline for small sets,
 * through a temp table in eng for large ones. */
static st_rc pos_filter(st_engine *eng, st_buf *b, const uint64_t *pos, size_t n, bool negate,
                        st_err *err)
{
    st_rc rc;
    if (n <= DV_INLINE_MAX) {
        if (n == 0)
            return st_buf_puts(b, negate ? "" : " WHERE false") ? st_fail(err, ST_ERR_NOMEM, "out of memory") : ST_OK;
        rc = st_buf_printf(b, " WHERE file_row_number %sIN (", negate ? "NOT " : "");
        for (size_t i = 0; rc == ST_OK && i < n; i++)
            rc = st_buf_printf(b, i ? ",%llu" : "%llu", (unsigned long long)pos[i]);
        rc = rc ? rc : st_buf_putc(b, ')');
        return rc ? st_fail(err, rc, "building a row position filter") : ST_OK;
    }
    if (!eng)
        return st_fail(err, ST_ERR_INVALID, "large deletion vectors need an engine");
    char id[37];
    st_uuid4(id);
    for (char *p = id; *p; p++)
        if (*p == '-')
            *p = '_';
    char name[64];
    snprintf(name, sizeof name, "__st_dv_%s", id);
    rc = st_engine_execf(eng, err, "CREATE TEMP TABLE \"%s\" (pos BIGINT)", name);
    if (rc)
        return rc;
    duckdb_appender app;
    if (duckdb_appender_create_ext(st_engine_conn(eng), "temp", "main", name, &app) == DuckDBError) {
        duckdb_appender_destroy(&app);
        return st_fail(err, ST_ERR_ENGINE, "duckdb: cannot append to %s", name);
    }
    for (size_t i = 0; i < n; i++) {
        duckdb_append_int64(app, (int64_t)pos[i]);
        duckdb_appender_end_row(app);
    }
    rc = st_engine_appender_close(&app, err);
    if (rc)
        return rc;
    return st_buf_printf(b, " WHERE file_row_number %sIN (SELECT pos FROM temp.main.\"%s\")",
                         negate ? "NOT " : "", name)
               ? st_fail(err, ST_ERR_NOMEM, "out of memory")
               : ST_OK;
}

st_rc st_delta_scan_branch(st_engine *eng, const st_delta_snapshot *s,
                           const st_delta_file *const *files, size_t n,
                           const st_delta_branch_opts *o, st_buf *b, st_err *err)
{
    static const st_delta_branch_opts none = {0};
    if (!o)
        o = &none;
    const char *cm = st_delta_cm_mode(s);
    bool by_pos = o->use_keep || (n == 1 && files[0]->has_dv && !o->ignore_dv);
    if (by_pos && n != 1)
        return st_fail(err, ST_ERR_INVALID, "row position filters need one file per branch");
    st_rc rc = st_buf_puts(b, "SELECT ");
    rc = rc ? rc : select_list(b, s, files[0], cm, err);
    if (rc)
        return rc;
    if (o->extra_select)
        rc = st_buf_puts(b, o->extra_select);
    rc = rc ? rc : st_buf_puts(b, by_pos ? " FROM (SELECT * EXCLUDE (file_row_number) FROM read_parquet(["
                                         : " FROM (SELECT * FROM read_parquet([");
    for (size_t j = 0; rc == ST_OK && j < n; j++) {
        if (j)
            rc = st_buf_putc(b, ',');
        rc = rc ? rc : st_buf_sql_str(b, files[j]->abs_path);
    }
    rc = rc ? rc : st_buf_puts(b, by_pos ? "], union_by_name=true, file_row_number=true)"
                                         : "], union_by_name=true)");
    if (rc)
        return st_fail(err, rc, "out of memory");
    if (o->use_keep) {
        rc = pos_filter(eng, b, o->keep_pos, o->n_keep, false, err);
    } else if (by_pos) {
        uint64_t *pos = NULL;
        size_t np = 0;
        rc = st_delta_dv_load(s->table_path, &files[0]->dv, &pos, &np, err);
        if (rc) {
            st_err_ctx(err, "data file %s", files[0]->path);
            return rc;
        }
        rc = pos_filter(eng, b, pos, np, true, err);
        st_free(pos);
    }
    if (rc)
        return rc;
    rc = null_row(b, s, cm, o->extra_physical);
    rc = rc ? rc : st_buf_puts(b, ")");
    return rc ? st_fail(err, rc, "out of memory") : ST_OK;
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct grp {
    char *key;
    const st_delta_file **files;
    size_t n, cap;
} grp;

static st_rc build_scan(st_engine *eng, const st_delta_snapshot *s, st_delta_file **files,
                        size_t n_files, st_buf *b, st_err *err)
{
    const char *cm = st_delta_cm_mode(s);
    st_rc rc = ST_OK;
    if (!s->metadata.schema)
        return st_fail(err, ST_ERR_CORRUPT, "table %s has no schema", s->table_path);
    if (n_files == 0) {
        rc = st_buf_puts(b, "SELECT ");
        rc = rc ? rc : select_list(b, s, NULL, cm, err);
        return rc ? rc : st_buf_puts(b, " WHERE false");
    }
    /* group files without DV by partition values; sort keys for stable SQL */
    st_map *m = st_map_new();
    grp *groups = st_calloc(n_files, sizeof *groups);
    char **keys = st_calloc(n_files, sizeof *keys);
    size_t n_groups = 0;
    if (!m || !groups || !keys) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto done;
    }
    bool first_branch = true;
    for (size_t i = 0; rc == ST_OK && i < n_files; i++) {
        const st_delta_file *f = files[i];
        if (f->has_dv) {
            if (!first_branch)
                rc = st_buf_puts(b, " UNION ALL ");
            first_branch = false;
            if (rc)
                break;
            rc = st_delta_scan_branch(eng, s, (const st_delta_file *const *)&files[i], 1, NULL, b, err);
            if (rc)
                goto done;
            continue;
        }
        char *k = group_key(s, f, cm);
        if (!k) {
            rc = ST_ERR_NOMEM;
            break;
        }
        grp *g = st_map_get(m, k);
        if (!g) {
            g = &groups[n_groups];
            g->key = k;
            keys[n_groups++] = k;
            if (st_map_put(m, k, g, NULL)) {
                rc = ST_ERR_NOMEM;
                break;
            }
        } else {
            st_free(k);
        }
        if (g->n == g->cap) {
            size_t nc = g->cap ? g->cap * 2 : 4;
            const st_delta_file **nf = st_realloc(g->files, nc * sizeof *nf);
            if (!nf) {
                rc = ST_ERR_NOMEM;
                break;
            }
            g->files = nf;
            g->cap = nc;
        }
        g->files[g->n++] = f;
    }
    if (rc)
        goto done;
    qsort(keys, n_groups, sizeof *keys, cmp_str_ptr);
    for (size_t i = 0; rc == ST_OK && i < n_groups; i++) {
        grp *g = st_map_get(m, keys[i]);
        if (!first_branch)
            rc = st_buf_puts(b, " UNION ALL ");
        first_branch = false;
        if (rc)
            break;
        rc = st_delta_scan_branch(eng, s, g->files, g->n, NULL, b, err);
    }
done:
    if (rc && err && err->code == ST_OK)
        st_fail(err, rc, "building the scan of %s", s->table_path);
    for (size_t i = 0; i < n_groups; i++) {
        st_free(groups[i].key);
        st_free(groups[i].files);
    }
    st_free(groups);
    st_free(keys);
    st_map_free(m);
    return rc;
}

st_rc st_delta_scan_sql(st_engine *eng, const st_delta_snapshot *s, const char *predicate,
                        char **out_sql, st_err *err)
{
    st_delta_file **files = NULL;
    size_t n = 0;
    st_rc rc = st_delta_prune(s, predicate, &files, &n, err);
    if (rc)
        return rc;
    /* a missing data file gives a clear error now rather than a DuckDB
     * message later */
    for (size_t i = 0; i < n; i++) {
        if (!st_path_exists(files[i]->abs_path)) {
            rc = st_fail(err, ST_ERR_NOTFOUND, "table %s version %lld: data file %s is missing",
                         s->table_path, (long long)s->version, files[i]->abs_path);
            st_free(files);
            return rc;
        }
    }
    st_buf b;
    st_buf_init(&b, 0);
    if (err)
        st_err_clear(err);
    bool filtered = predicate && predicate[0];
    if (filtered)
        rc = st_buf_puts(&b, "SELECT * FROM (");
    rc = rc ? rc : build_scan(eng, s, files, n, &b, err);
    if (rc == ST_OK && filtered)
        rc = st_buf_printf(&b, ") AS __st_scan WHERE (%s)", predicate);
    st_free(files);
    if (rc) {
        st_buf_free(&b);
        if (err && err->code == ST_OK)
            st_fail(err, rc, "building the scan of %s", s->table_path);
        return err ? err->code : rc;
    }
    *out_sql = st_buf_take(&b);
    return ST_OK;
}

st_rc st_delta_register_view(st_engine *eng, const char *view_name, const st_delta_snapshot *s,
                             st_err *err)
{
    char *sql = NULL;
    st_rc rc = st_delta_scan_sql(eng, s, NULL, &sql, err);
    if (rc)
        return rc;
    st_buf b;
    st_buf_init(&b, 0);
    rc = st_buf_puts(&b, "CREATE OR REPLACE VIEW ");
    rc = rc ? rc : st_buf_sql_ident(&b, view_name);
    rc = rc ? rc : st_buf_puts(&b, " AS ");
    rc = rc ? rc : st_buf_puts(&b, sql);
    st_free(sql);
    if (rc) {
        st_buf_free(&b);
        return st_fail(err, rc, "out of memory");
    }
    rc = st_engine_exec(eng, b.data, err);
    st_buf_free(&b);
    if (rc)
        st_err_ctx(err, "creating view %s over %s", view_name, s->table_path);
    return rc;
}
