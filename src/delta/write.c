/*
 * write.c - Delta operations built on transactions (txn.c): st_delta_write
 * (append, overwrite, replace_where, schema evolution, idempotent app
 * transactions), st_delta_delete and st_delta_update (copy-on-write of the
 * touched files, change data files when CDF is on) and st_delta_restore.
 * DuckDB writes the Parquet files; stats.c turns its COPY statistics into
 * add.stats so written files are never read back.
 */
#include "delta/write_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- paths */

char *st_deltaw_escape_part(const char *value)
{
    if (!value || !*value)
        return st_strdup("__HIVE_DEFAULT_PARTITION__");
    st_buf b;
    st_buf_init(&b, 0);
    st_rc rc = ST_OK;
    for (const unsigned char *p = (const unsigned char *)value; rc == ST_OK && *p; p++) {
        if (*p < 0x20 || *p == 0x7F || strchr("\"#%'*/:=?\\{[]^", *p))
            rc = st_buf_printf(&b, "%%%02X", *p);
        else
            rc = st_buf_putc(&b, (char)*p);
    }
    if (rc) {
        st_buf_free(&b);
        return NULL;
    }
    return st_buf_take(&b);
}

char *st_deltaw_uri_encode(const char *path)
{
    st_buf b;
    st_buf_init(&b, 0);
    st_rc rc = st_buf_puts(&b, "");
    for (const unsigned char *p = (const unsigned char *)path; rc == ST_OK && *p; p++) {
        bool keep = *p >= 0x80 || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || strchr("-_.!~*'()/=:@&+$,;", *p);
        rc = keep ? st_buf_putc(&b, (char)*p) : st_buf_printf(&b, "%%%02X", *p);
    }
    if (rc) {
        st_buf_free(&b);
        return NULL;
    }
    return st_buf_take(&b);
}

/* Removes now-empty directories from dir up to (not including) root. */
static void prune_empty_dirs(const char *root, char *dir)
{
    size_t rl = strlen(root);
    while (strlen(dir) > rl && !strncmp(dir, root, rl)) {
        if (rmdir(dir) != 0)
            return;
        char *slash = strrchr(dir, '/');
        if (!slash)
            return;
        *slash = '\0';
    }
}

/* Turns one written file into an add/cdc description: Spark-style partition
 * directory (moving the file when DuckDB's name differs), encoded relative
 * path and partition values. */
static st_rc place_file(const char *table_path, const char *sub, const st_parquet_file *pf,
                        char **out_rel, st_kv **out_part, st_err *err)
{
    const char *base = strrchr(pf->path, '/');
    base = base ? base + 1 : pf->path;
    st_buf dir;
    st_buf_init(&dir, 0);
    st_rc rc = st_buf_puts(&dir, sub ? sub : "");
    st_kv *part = pf->n_parts ? st_calloc(pf->n_parts, sizeof *part) : NULL;
    if (pf->n_parts && !part)
        rc = ST_ERR_NOMEM;
    for (size_t i = 0; rc == ST_OK && i < pf->n_parts; i++) {
        const char *v = pf->part_values[i];
        if (v && !*v)
            v = NULL;
        char *esc = st_deltaw_escape_part(v);
        part[i].key = st_strdup(pf->part_keys[i]);
        part[i].value = st_strdup(v);
        if (!esc || !part[i].key || (v && !part[i].value))
            rc = ST_ERR_NOMEM;
        if (rc == ST_OK && dir.len)
            rc = st_buf_putc(&dir, '/');
        rc = rc ? rc : st_buf_printf(&dir, "%s=%s", pf->part_keys[i], esc);
        st_free(esc);
    }
    char *rel = NULL, *want = NULL;
    if (rc == ST_OK)
        rel = dir.len ? st_sprintf("%s/%s", dir.data, base) : st_strdup(base);
    if (rc == ST_OK && rel)
        want = st_path_join(table_path, rel);
    if (rc == ST_OK && (!rel || !want))
        rc = ST_ERR_NOMEM;
    if (rc == ST_OK && strcmp(want, pf->path)) {
        char *wdir = st_strdup(want);
        char *slash = wdir ? strrchr(wdir, '/') : NULL;
        if (slash)
            *slash = '\0';
        rc = wdir ? st_mkdirs(wdir, err) : ST_ERR_NOMEM;
        st_free(wdir);
        if (rc == ST_OK && rename(pf->path, want) != 0)
            rc = st_fail_errno(err, ST_ERR_IO, "moving %s to %s", pf->path, want);
        if (rc == ST_OK) {
            char *old = st_strdup(pf->path);
            char *os = old ? strrchr(old, '/') : NULL;
            if (os) {
                *os = '\0';
                prune_empty_dirs(table_path, old);
            }
            st_free(old);
        }
    }
    char *enc = rc == ST_OK ? st_deltaw_uri_encode(rel) : NULL;
    if (rc == ST_OK && !enc)
        rc = ST_ERR_NOMEM;
    st_free(rel);
    st_free(want);
    st_buf_free(&dir);
    if (rc) {
        for (size_t i = 0; part && i < pf->n_parts; i++) {
            st_free(part[i].key);
            st_free(part[i].value);
        }
        st_free(part);
        st_free(enc);
        if (err && err->code != rc)
            st_fail(err, rc, "placing %s", pf->path);
        return rc;
    }
    *out_rel = enc;
    *out_part = part;
    return ST_OK;
}

static void part_free(st_kv *part, size_t n)
{
    for (size_t i = 0; part && i < n; i++) {
        st_free(part[i].key);
        st_free(part[i].value);
    }
    st_free(part);
}

st_rc st_deltaw_add_written(st_delta_txn *t, const st_delta_schema *schema,
                            const st_parquet_file *files, size_t n_files, bool data_change,
                            st_delta_result *res, st_err *err)
{
    const char *table = st_deltaw_txn_table(t);
    const char *cm = st_delta_cm_mode(st_delta_txn_snapshot(t));
    for (size_t i = 0; i < n_files; i++) {
        const st_parquet_file *pf = &files[i];
        st_delta_file f;
        memset(&f, 0, sizeof f);
        /* timestamp partition values in ISO-8601 UTC rather than DuckDB's text */
        st_parquet_file norm = *pf;
        char **vals = pf->n_parts ? st_calloc(pf->n_parts, sizeof *vals) : NULL;
        for (size_t k = 0; vals && k < pf->n_parts; k++) {
            const st_dfield *fd = NULL;
            for (size_t c = 0; c < schema->n_fields; c++)
                if (!strcmp(st_delta_field_phys(&schema->fields[c], cm), pf->part_keys[k]))
                    fd = &schema->fields[c];
            if (fd && fd->type.kind == ST_DT_TIMESTAMP && pf->part_values[k])
                vals[k] = st_deltaw_ts_part_value(pf->part_values[k]);
            else
                vals[k] = st_strdup(pf->part_values[k]);
        }
        if (vals)
            norm.part_values = vals;
        st_rc rc = place_file(table, NULL, &norm, &f.path, &f.part, err);
        for (size_t k = 0; vals && k < pf->n_parts; k++)
            st_free(vals[k]);
        st_free(vals);
        if (rc)
            return rc;
        f.n_part = pf->n_parts;
        f.size = pf->size;
        f.modification_time = st_now_ms();
        f.data_change = data_change;
        f.base_row_id = -1;
        f.default_row_commit_version = -1;
        f.num_records = pf->rows;
        rc = st_deltaw_stats_json(schema, cm, pf, &f.stats, err);
        rc = rc ? rc : st_delta_txn_add(t, &f, err);
        st_free(f.path);
        st_free(f.stats);
        part_free(f.part, f.n_part);
        if (rc)
            return rc;
        if (res) {
            res->files_added++;
            res->bytes_added += pf->size;
            res->rows_written += pf->rows;
        }
    }
    return ST_OK;
}

st_rc st_deltaw_add_cdc_written(st_delta_txn *t, const st_parquet_file *files, size_t n_files,
                                st_err *err)
{
    const char *table = st_deltaw_txn_table(t);
    for (size_t i = 0; i < n_files; i++) {
        char *rel = NULL;
        st_kv *part = NULL;
        st_rc rc = place_file(table, "_change_data", &files[i], &rel, &part, err);
        rc = rc ? rc : st_delta_txn_add_cdc(t, rel, part, files[i].n_parts, files[i].size, err);
        st_free(rel);
        part_free(part, files[i].n_parts);
        if (rc)
            return rc;
    }
    return ST_OK;
}

/* ---------------------------------------------------------------- SQL helpers */

static const char *cm_of(const st_delta_snapshot *s)
{
    return st_delta_cm_mode(s);
}

/* Appends "CAST(<expr> AS <type>) AS <physical name>" for every field;
 * exprs[i] NULL means the quoted logical column name. */
/* Appends e converted from the logical type t to the physical layout:
 * struct fields renamed to their column mapping physical names. */
static st_rc phys_expr(st_buf *b, const char *e, const st_dtype *t, const char *cm, int depth)
{
    if (depth > 32)
        return ST_ERR_LIMIT;
    if (t->kind == ST_DT_STRUCT) {
        st_rc rc = st_buf_printf(b, "CASE WHEN (%s) IS NULL THEN NULL ELSE struct_pack(", e);
        for (size_t i = 0; rc == ST_OK && i < t->n_fields; i++) {
            const st_dfield *f = &t->fields[i];
            rc = i ? st_buf_puts(b, ", ") : ST_OK;
            rc = rc ? rc : st_buf_sql_ident(b, st_delta_field_phys(f, cm));
            rc = rc ? rc : st_buf_puts(b, " := ");
            st_buf sub;
            st_buf_init(&sub, 0);
            rc = rc ? rc : st_buf_printf(&sub, "(%s).", e);
            rc = rc ? rc : st_buf_sql_ident(&sub, f->name);
            rc = rc ? rc : phys_expr(b, sub.data, &f->type, cm, depth + 1);
            st_buf_free(&sub);
        }
        return rc ? rc : st_buf_puts(b, ") END");
    }
    if (t->kind == ST_DT_ARRAY && t->elem && t->elem->kind == ST_DT_STRUCT) {
        char var[16];
        snprintf(var, sizeof var, "__x%d", depth);
        st_rc rc = st_buf_printf(b, "list_transform(%s, %s -> ", e, var);
        rc = rc ? rc : phys_expr(b, var, t->elem, cm, depth + 1);
        return rc ? rc : st_buf_putc(b, ')');
    }
    return st_buf_puts(b, e);
}

st_rc st_deltaw_select_list(const st_delta_schema *schema, const char *cm, char **exprs,
                            st_buf *b)
{
    st_rc rc = ST_OK;
    bool mapped = cm && strcmp(cm, "none");
    for (size_t i = 0; rc == ST_OK && i < schema->n_fields; i++) {
        const st_dfield *f = &schema->fields[i];
        char *ty = st_delta_type_sql(&f->type);
        if (!ty)
            return ST_ERR_NOMEM;
        st_buf e;
        st_buf_init(&e, 0);
        rc = st_buf_puts(&e, "CAST(");
        if (rc == ST_OK && exprs && exprs[i])
            rc = st_buf_printf(&e, "(%s)", exprs[i]);
        else if (rc == ST_OK)
            rc = st_buf_sql_ident(&e, f->name);
        rc = rc ? rc : st_buf_printf(&e, " AS %s)", ty);
        rc = rc ? rc : st_buf_puts(b, i ? ", " : "");
        if (rc == ST_OK)
            rc = mapped ? phys_expr(b, e.data, &f->type, cm, 0) : st_buf_puts(b, e.data);
        rc = rc ? rc : st_buf_puts(b, " AS ");
        rc = rc ? rc : st_buf_sql_ident(b, st_delta_field_phys(f, cm));
        st_buf_free(&e);
        st_free(ty);
    }
    return rc;
}

/* Physical partition column names of a snapshot, OWNED array of BORROWED. */
static const char **part_cols(const st_delta_snapshot *s)
{
    const st_delta_metadata *m = &s->metadata;
    const char **out = st_calloc(m->n_partition_columns + 1, sizeof *out);
    for (size_t i = 0; out && i < m->n_partition_columns; i++) {
        const st_dfield *f = st_delta_schema_find(m->schema, m->partition_columns[i]);
        out[i] = f ? st_delta_field_phys(f, cm_of(s)) : m->partition_columns[i];
    }
    return out;
}

st_rc st_deltaw_write_rows(st_engine *eng, const st_delta_snapshot *s, const char *sql,
                        const char *dest, int64_t rg_rows, int64_t file_rows, int zstd_level,
                        st_parquet_file **out, size_t *n_out, st_err *err)
{
    const char **pc = part_cols(s);
    if (!pc)
        return st_fail(err, ST_ERR_NOMEM, "writing %s", dest);
    st_parquet_opts po = {0};
    po.row_group_size = rg_rows > 0 ? rg_rows : 1048576;
    po.compression_level = zstd_level;
    if (file_rows > 0)
        po.row_groups_per_file = (file_rows + po.row_group_size - 1) / po.row_group_size;
    po.partition_by = pc;
    po.n_partition_by = s->metadata.n_partition_columns;
    st_rc rc = st_engine_write_parquet(eng, sql, dest, &po, out, n_out, err);
    st_free(pc);
    return rc;
}

/* True when the two types are the same Delta type. */
static bool same_type(const st_dtype *a, const st_dtype *b)
{
    char *x = st_delta_type_ddl(a), *y = st_delta_type_ddl(b);
    bool eq = x && y && !strcmp(x, y);
    st_free(x);
    st_free(y);
    return eq;
}

static int int_rank(st_dtype_kind k)
{
    switch (k) {
    case ST_DT_BYTE: return 1;
    case ST_DT_SHORT: return 2;
    case ST_DT_INTEGER: return 3;
    case ST_DT_LONG: return 4;
    default: return 0;
    }
}

/* Checks the query's columns against the table schema; with merge_schema
 * builds the evolved schema in *out_new (NULL when unchanged). */
static st_rc check_schema(st_engine *eng, const char *table, const st_delta_schema *ts,
                          const char *select_sql, bool merge, st_delta_schema **out_new,
                          st_map *out_cols, st_err *err)
{
    *out_new = NULL;
    char *sql = st_sprintf("SELECT * FROM (%s) LIMIT 0", select_sql);
    duckdb_result r;
    st_rc rc = sql ? st_engine_query(eng, sql, &r, err) : ST_ERR_NOMEM;
    st_free(sql);
    if (rc)
        return rc;
    st_delta_schema *ns = NULL;
    idx_t nc = duckdb_column_count(&r);
    for (idx_t c = 0; rc == ST_OK && c < nc; c++) {
        const char *name = duckdb_column_name(&r, c);
        rc = st_map_put(out_cols, name, (void *)1, NULL);
        if (rc) {
            st_fail(err, rc, "table %s", table);
            break;
        }
        duckdb_logical_type lt = duckdb_column_logical_type(&r, c);
        st_dtype in;
        memset(&in, 0, sizeof in);
        rc = st_delta_type_from_duckdb(lt, &in, err);
        duckdb_destroy_logical_type(&lt);
        if (rc) {
            st_err_ctx(err, "table %s: column %s", table, name);
            break;
        }
        const st_dfield *f = st_delta_schema_find(ns ? ns : ts, name);
        if (!f) {
            if (!merge) {
                rc = st_fail(err, ST_ERR_INVALID,
                             "table %s: column %s is not in the table schema (use merge_schema)",
                             table, name);
            } else {
                if (!ns)
                    ns = st_delta_schema_copy(ts);
                st_dfield *nf = ns ? st_realloc(ns->fields, (ns->n_fields + 1) * sizeof *nf) : NULL;
                if (!nf) {
                    rc = st_fail(err, ST_ERR_NOMEM, "table %s", table);
                } else {
                    ns->fields = nf;
                    nf = &ns->fields[ns->n_fields++];
                    memset(nf, 0, sizeof *nf);
                    nf->name = st_strdup(name);
                    nf->nullable = true;
                    nf->metadata_json = st_strdup("{}");
                    rc = st_delta_dtype_copy(&in, &nf->type);
                }
            }
        } else if (!same_type(&f->type, &in)) {
            int ri = int_rank(in.kind), rt = int_rank(f->type.kind);
            bool ts_pair = (in.kind == ST_DT_TIMESTAMP || in.kind == ST_DT_TIMESTAMP_NTZ) &&
                           (f->type.kind == ST_DT_TIMESTAMP || f->type.kind == ST_DT_TIMESTAMP_NTZ);
            bool dec_fits = in.kind == ST_DT_DECIMAL && f->type.kind == ST_DT_DECIMAL &&
                            in.scale <= f->type.scale &&
                            in.precision - in.scale <= f->type.precision - f->type.scale;
            bool narrower = (ri && rt && ri < rt) || dec_fits ||
                            (in.kind == ST_DT_FLOAT && f->type.kind == ST_DT_DOUBLE) || ts_pair;
            bool widen = (ri && rt && ri > rt && rt >= 1) ||
                         (in.kind == ST_DT_DOUBLE && f->type.kind == ST_DT_FLOAT);
            if (narrower) {
                /* the write casts up to the table type */
            } else if (widen && merge) {
                if (!ns)
                    ns = st_delta_schema_copy(ts);
                st_dfield *mf = ns ? (st_dfield *)st_delta_schema_find(ns, name) : NULL;
                if (!mf) {
                    rc = st_fail(err, ST_ERR_NOMEM, "table %s", table);
                } else {
                    st_dtype_kind k = in.kind;
                    if (ri && k != ST_DT_LONG && k != ST_DT_INTEGER)
                        k = ST_DT_INTEGER;
                    mf->type.kind = k;
                }
            } else {
                char *a = st_delta_type_ddl(&f->type), *b = st_delta_type_ddl(&in);
                rc = st_fail(err, ST_ERR_INVALID,
                             "table %s: column %s has type %s in the table but %s in the "
                             "data%s",
                             table, name, a ? a : "?", b ? b : "?",
                             widen ? " (widening needs merge_schema)" : "");
                st_free(a);
                st_free(b);
            }
        }
        st_delta_dtype_clear(&in);
    }
    duckdb_destroy_result(&r);
    if (rc) {
        st_delta_schema_free(ns);
        return rc;
    }
    /* columns the data lacks are written as NULL: they must be nullable */
    const st_delta_schema *fs = ns ? ns : ts;
    (void)fs;
    *out_new = ns;
    return ST_OK;
}

/* Indexes (into s->files) of files whose partition values match pred;
 * evaluated in DuckDB so the predicate's semantics are SQL's. */
static st_rc match_partitions(st_engine *eng, const st_delta_snapshot *s, const char *pred,
                              bool **out, st_err *err)
{
    const st_delta_metadata *m = &s->metadata;
    bool *hit = st_calloc(s->n_files + 1, sizeof *hit);
    if (!hit)
        return st_fail(err, ST_ERR_NOMEM, "table %s", s->table_path);
    st_rc rc = ST_OK;
    const size_t chunk = 500;
    for (size_t start = 0; rc == ST_OK && start < s->n_files; start += chunk) {
        st_buf b;
        st_buf_init(&b, 0);
        rc = st_buf_puts(&b, "SELECT __i FROM (");
        for (size_t i = start; rc == ST_OK && i < s->n_files && i < start + chunk; i++) {
            const st_delta_file *f = s->files[i];
            rc = st_buf_printf(&b, "%sSELECT %zu AS __i", i > start ? " UNION ALL " : "", i);
            for (size_t c = 0; rc == ST_OK && c < m->n_partition_columns; c++) {
                const st_dfield *fd = st_delta_schema_find(m->schema, m->partition_columns[c]);
                const char *phys = fd ? st_delta_field_phys(fd, cm_of(s)) : m->partition_columns[c];
                const char *v = NULL;
                for (size_t k = 0; k < f->n_part; k++)
                    if (!strcmp(f->part[k].key, phys) || !strcmp(f->part[k].key, m->partition_columns[c]))
                        v = f->part[k].value;
                rc = st_buf_puts(&b, ", ");
                rc = rc ? rc : (fd ? st_delta_part_literal(&fd->type, v, &b, err) : ST_ERR_CORRUPT);
                rc = rc ? rc : st_buf_puts(&b, " AS ");
                rc = rc ? rc : st_buf_sql_ident(&b, m->partition_columns[c]);
            }
        }
        rc = rc ? rc : st_buf_printf(&b, ") WHERE (%s)", pred);
        duckdb_result r;
        if (rc == ST_OK) {
            rc = st_engine_query(eng, b.data, &r, err);
            if (rc)
                st_err_ctx(err, "table %s: predicate %s must use partition columns only",
                           s->table_path, pred);
        }
        if (rc == ST_OK) {
            for (idx_t row = 0; row < duckdb_row_count(&r); row++) {
                int64_t i = duckdb_value_int64(&r, 0, row);
                if (i >= 0 && (size_t)i < s->n_files)
                    hit[i] = true;
            }
            duckdb_destroy_result(&r);
        }
        st_buf_free(&b);
    }
    if (rc) {
        st_free(hit);
        return rc;
    }
    *out = hit;
    return ST_OK;
}

st_rc st_deltaw_files_sql(st_engine *eng, const st_delta_snapshot *s, st_delta_file **files,
                          size_t n_files, char **out, st_err *err)
{
    /* a shallow copy restricted to the files lets the reader resolve
     * partition values, column mapping and deletion vectors for us */
    st_delta_snapshot part = *s;
    part.files = files;
    part.n_files = n_files;
    return st_delta_scan_sql(eng, &part, NULL, out, err);
}

/* ---------------------------------------------------------------- write */

st_rc st_delta_write(st_engine *eng, const char *table_path, const char *select_sql,
                     const st_delta_write_opts *opts, st_delta_result *res, st_err *err)
{
    st_delta_write_opts def = {0};
    if (!opts)
        opts = &def;
    st_delta_result dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    res->version = -1;
    st_delta_txn *t = NULL;
    st_delta_schema *ns = NULL;
    st_parquet_file *files = NULL;
    size_t n_files = 0;
    bool *hit = NULL;
    st_map *in_cols = NULL;
    st_buf sql;
    st_buf_init(&sql, 0);
    bool overwrite = opts->mode == ST_DELTA_OVERWRITE;
    st_rc rc = st_delta_txn_begin(eng, table_path, NULL,
                                  opts->operation ? opts->operation : "WRITE", &t, err);
    if (rc)
        return rc;
    const st_delta_snapshot *s = st_delta_txn_snapshot(t);
    if (opts->app_id) {
        for (size_t i = 0; i < s->n_txns; i++) {
            if (!strcmp(s->txns[i].app_id, opts->app_id) && s->txns[i].version >= opts->app_version) {
                res->skipped = true;
                goto fail;
            }
        }
        rc = st_delta_txn_set_app(t, opts->app_id, opts->app_version, err);
        if (rc)
            goto fail;
    }
    in_cols = st_map_new();
    rc = in_cols ? check_schema(eng, table_path, s->metadata.schema, select_sql,
                                opts->merge_schema, &ns, in_cols, err)
                 : st_fail(err, ST_ERR_NOMEM, "table %s", table_path);
    if (rc)
        goto fail;
    if (ns) {
        rc = st_delta_txn_set_schema(t, ns, err);
        if (rc)
            goto fail;
    }
    /* the txn's copy carries column mapping ids of new columns */
    const st_delta_schema *schema = st_deltaw_txn_schema(t);
    if (overwrite && opts->replace_where) {
        char *chk = st_sprintf("SELECT count(*) FROM (%s) WHERE (%s) IS NOT TRUE", select_sql,
                               opts->replace_where);
        int64_t bad = 0;
        rc = chk ? st_engine_query_i64(eng, chk, &bad, err) : ST_ERR_NOMEM;
        st_free(chk);
        if (rc == ST_OK && bad > 0)
            rc = st_fail(err, ST_ERR_INVALID,
                         "table %s: %lld rows do not match replaceWhere %s", table_path,
                         (long long)bad, opts->replace_where);
        if (rc)
            goto fail;
    }
    /* columns the query lacks are written as NULL */
    char **exprs = st_calloc(schema->n_fields + 1, sizeof *exprs);
    rc = exprs ? ST_OK : ST_ERR_NOMEM;
    for (size_t i = 0; rc == ST_OK && i < schema->n_fields; i++) {
        if (st_map_get(in_cols, schema->fields[i].name))
            continue;
        if (!schema->fields[i].nullable)
            rc = st_fail(err, ST_ERR_INVALID, "table %s: non-nullable column %s is missing",
                         table_path, schema->fields[i].name);
        exprs[i] = st_strdup("NULL");
    }
    rc = rc ? rc : st_buf_puts(&sql, "SELECT ");
    rc = rc ? rc : st_deltaw_select_list(schema, cm_of(s), exprs, &sql);
    rc = rc ? rc : st_buf_printf(&sql, " FROM (%s) AS __src", select_sql);
    for (size_t i = 0; exprs && i < schema->n_fields; i++)
        st_free(exprs[i]);
    st_free(exprs);
    if (rc)
        goto fail;
    rc = st_deltaw_write_rows(eng, s, sql.data, table_path, opts->row_group_rows,
                              opts->target_file_rows, opts->compression_level, &files, &n_files,
                              err);
    if (rc) {
        st_err_ctx(err, "table %s: writing data", table_path);
        goto fail;
    }
    rc = st_deltaw_add_written(t, schema, files, n_files, true, res, err);
    if (rc)
        goto fail;
    if (overwrite) {
        if (opts->replace_where) {
            rc = match_partitions(eng, s, opts->replace_where, &hit, err);
            if (rc)
                goto fail;
        }
        for (size_t i = 0; rc == ST_OK && i < s->n_files; i++) {
            if (hit && !hit[i])
                continue;
            rc = st_delta_txn_remove(t, s->files[i], true, err);
            res->files_removed++;
            res->rows_deleted += s->files[i]->num_records > 0 ? s->files[i]->num_records : 0;
        }
        st_delta_txn_read_predicate(t, opts->replace_where);
        rc = rc ? rc : st_delta_txn_param(t, "mode", "Overwrite", err);
        if (rc == ST_OK && opts->replace_where)
            rc = st_delta_txn_param(t, "predicate", opts->replace_where, err);
    } else {
        rc = st_delta_txn_param(t, "mode", "Append", err);
    }
    if (rc)
        goto fail;
    if (n_files == 0 && !overwrite && !ns && !opts->app_id) {
        /* nothing to commit */
        goto fail;
    }
    rc = st_delta_txn_commit(t, &res->version, err);
    t = NULL;
fail:
    st_delta_txn_abort(t);
    st_delta_schema_free(ns);
    st_parquet_files_free(files, n_files);
    st_free(hit);
    st_map_free(in_cols);
    st_buf_free(&sql);
    return rc;
}

/* ---------------------------------------------------------------- delete / update */

/* Splits "a = a + 1, b = 'x'" at top-level commas into column/expression
 * pairs (quotes and parentheses respected). */
static st_rc parse_set(const char *set_sql, const st_delta_schema *schema, char **exprs,
                       st_err *err)
{
    const char *p = set_sql;
    while (*p) {
        const char *start = p;
        int depth = 0;
        char q = 0;
        const char *eq = NULL;
        for (; *p; p++) {
            if (q) {
                if (*p == q)
                    q = 0;
            } else if (*p == '\'' || *p == '"') {
                q = *p;
            } else if (*p == '(') {
                depth++;
            } else if (*p == ')') {
                depth--;
            } else if (*p == ',' && depth == 0) {
                break;
            } else if (*p == '=' && depth == 0 && !eq && p[1] != '=' && (p == start || (p[-1] != '<' && p[-1] != '>' && p[-1] != '!'))) {
                eq = p;
            }
        }
        if (!eq)
            return st_fail(err, ST_ERR_PARSE, "update: expected column = expression in '%s'",
                           set_sql);
        const char *ns = start, *ne = eq;
        while (ns < ne && (*ns == ' ' || *ns == '\t'))
            ns++;
        while (ne > ns && (ne[-1] == ' ' || ne[-1] == '\t'))
            ne--;
        if (ne - ns >= 2 && *ns == '"' && ne[-1] == '"') {
            ns++;
            ne--;
        }
        char *col = st_strndup(ns, (size_t)(ne - ns));
        char *ex = st_strndup(eq + 1, (size_t)(p - eq - 1));
        size_t idx = schema->n_fields;
        for (size_t i = 0; col && i < schema->n_fields; i++)
            if (!strcmp(schema->fields[i].name, col) || !strcasecmp(schema->fields[i].name, col))
                idx = i;
        if (!col || !ex || idx == schema->n_fields) {
            st_rc rc = (!col || !ex) ? st_fail(err, ST_ERR_NOMEM, "update")
                                     : st_fail(err, ST_ERR_INVALID, "update: no column %s", col);
            st_free(col);
            st_free(ex);
            return rc;
        }
        st_free(col);
        st_free(exprs[idx]);
        exprs[idx] = ex;
        if (*p == ',')
            p++;
    }
    return ST_OK;
}

/* Copy-on-write of the files that hold rows matching pred: DELETE drops
 * them, UPDATE rewrites them with set_sql applied. */
static st_rc rewrite_op(st_engine *eng, const char *table_path, const char *op,
                        const char *set_sql, const char *predicate, st_delta_result *res,
                        st_err *err)
{
    st_delta_result dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    res->version = -1;
    if (!predicate || !*predicate)
        predicate = "true";
    st_delta_txn *t = NULL;
    st_delta_file **cand = NULL;
    size_t n_cand = 0;
    char **exprs = NULL;
    st_parquet_file *files = NULL, *cdc = NULL;
    size_t n_files = 0, n_cdc = 0;
    st_buf keep, chg;
    st_buf_init(&keep, 0);
    st_buf_init(&chg, 0);
    bool is_update = set_sql != NULL;
    size_t n_fields = 0;
    st_rc rc = st_delta_txn_begin(eng, table_path, NULL, op, &t, err);
    if (rc)
        return rc;
    const st_delta_snapshot *s = st_delta_txn_snapshot(t);
    const st_delta_schema *schema = s->metadata.schema;
    const char *cm = cm_of(s);
    bool cdf = !strcasecmp(st_delta_config(s, "delta.enableChangeDataFeed", "false"), "true");
    n_fields = schema->n_fields;
    exprs = st_calloc(schema->n_fields + 1, sizeof *exprs);
    if (!exprs) {
        rc = st_fail(err, ST_ERR_NOMEM, "table %s", table_path);
        goto fail;
    }
    if (is_update) {
        rc = parse_set(set_sql, schema, exprs, err);
        for (size_t i = 0; rc == ST_OK && i < schema->n_fields; i++) {
            if (!exprs[i])
                continue;
            st_buf cw;
            st_buf_init(&cw, 0);
            rc = st_buf_printf(&cw, "CASE WHEN (%s) IS TRUE THEN (%s) ELSE ", predicate, exprs[i]);
            rc = rc ? rc : st_buf_sql_ident(&cw, schema->fields[i].name);
            rc = rc ? rc : st_buf_puts(&cw, " END");
            st_free(exprs[i]);
            exprs[i] = st_buf_take(&cw);
        }
        if (rc)
            goto fail;
    }
    rc = st_delta_prune(s, predicate, &cand, &n_cand, err);
    if (rc)
        goto fail;
    size_t n_touched = 0;
    for (size_t i = 0; rc == ST_OK && i < n_cand; i++) {
        char *scan = NULL;
        rc = st_deltaw_files_sql(eng, s, &cand[i], 1, &scan, err);
        if (rc)
            break;
        char *q = st_sprintf("SELECT count(*) FILTER (WHERE (%s) IS TRUE), count(*) FROM (%s) AS __f",
                             predicate, scan);
        duckdb_result r;
        rc = q ? st_engine_query(eng, q, &r, err) : ST_ERR_NOMEM;
        st_free(q);
        if (rc) {
            st_free(scan);
            st_err_ctx(err, "table %s: %s predicate on %s", table_path, op, cand[i]->path);
            break;
        }
        int64_t matched = duckdb_value_int64(&r, 0, 0), total = duckdb_value_int64(&r, 1, 0);
        duckdb_destroy_result(&r);
        if (matched == 0) {
            st_free(scan);
            continue;
        }
        rc = st_delta_txn_remove(t, cand[i], true, err);
        res->files_removed++;
        if (is_update)
            res->rows_updated += matched;
        else
            res->rows_deleted += matched;
        if (rc == ST_OK && (is_update || matched < total)) {
            rc = st_buf_puts(&keep, n_touched ? " UNION ALL SELECT " : "SELECT ");
            rc = rc ? rc : st_deltaw_select_list(schema, cm, is_update ? exprs : NULL, &keep);
            rc = rc ? rc : st_buf_printf(&keep, " FROM (%s) AS __f", scan);
            if (rc == ST_OK && !is_update)
                rc = st_buf_printf(&keep, " WHERE (%s) IS NOT TRUE", predicate);
            n_touched++;
        }
        if (rc == ST_OK && cdf) {
            if (chg.len)
                rc = st_buf_puts(&chg, " UNION ALL ");
            rc = rc ? rc : st_buf_puts(&chg, "SELECT ");
            rc = rc ? rc : st_deltaw_select_list(schema, cm, NULL, &chg);
            rc = rc ? rc
                    : st_buf_printf(&chg, ", '%s' AS _change_type FROM (%s) AS __f WHERE (%s) IS TRUE",
                                    is_update ? "update_preimage" : "delete", scan, predicate);
            if (rc == ST_OK && is_update) {
                rc = st_buf_puts(&chg, " UNION ALL SELECT ");
                rc = rc ? rc : st_deltaw_select_list(schema, cm, exprs, &chg);
                rc = rc ? rc
                        : st_buf_printf(&chg,
                                        ", 'update_postimage' AS _change_type FROM (%s) AS __f "
                                        "WHERE (%s) IS TRUE",
                                        scan, predicate);
            }
        }
        st_free(scan);
    }
    if (rc)
        goto fail;
    if (res->files_removed == 0)
        goto fail;   /* no row matched: nothing to commit */
    if (keep.len) {
        rc = st_deltaw_write_rows(eng, s, keep.data, table_path, 0, 0, 0, &files, &n_files, err);
        rc = rc ? rc : st_deltaw_add_written(t, schema, files, n_files, true, NULL, err);
        if (rc == ST_OK) {
            res->files_added = (int64_t)n_files;
            for (size_t i = 0; i < n_files; i++)
                res->bytes_added += files[i].size;
        }
    }
    if (rc == ST_OK && chg.len) {
        char *dest = st_path_join(table_path, "_change_data");
        rc = dest ? st_deltaw_write_rows(eng, s, chg.data, dest, 0, 0, 0, &cdc, &n_cdc, err) : ST_ERR_NOMEM;
        st_free(dest);
        rc = rc ? rc : st_deltaw_add_cdc_written(t, cdc, n_cdc, err);
    }
    st_delta_txn_read_predicate(t, predicate);
    rc = rc ? rc : st_delta_txn_param(t, "predicate", predicate, err);
    if (rc)
        goto fail;
    rc = st_delta_txn_commit(t, &res->version, err);
    t = NULL;
fail:
    st_delta_txn_abort(t);
    for (size_t i = 0; exprs && i < n_fields; i++)
        st_free(exprs[i]);
    st_free(exprs);
    st_free(cand);
    st_parquet_files_free(files, n_files);
    st_parquet_files_free(cdc, n_cdc);
    st_buf_free(&keep);
    st_buf_free(&chg);
    return rc;
}

st_rc st_delta_delete(st_engine *eng, const char *table_path, const char *predicate,
                      st_delta_result *res, st_err *err)
{
    return rewrite_op(eng, table_path, "DELETE", NULL, predicate, res, err);
}

st_rc st_delta_update(st_engine *eng, const char *table_path, const char *set_sql,
                      const char *predicate, st_delta_result *res, st_err *err)
{
    if (!set_sql || !*set_sql)
        return st_fail(err, ST_ERR_INVALID, "update of %s: empty SET list", table_path);
    return rewrite_op(eng, table_path, "UPDATE", set_sql, predicate, res, err);
}

/* ---------------------------------------------------------------- restore */

st_rc st_delta_restore(st_engine *eng, const char *table_path, int64_t version,
                       st_delta_result *res, st_err *err)
{
    st_delta_result dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    res->version = -1;
    st_delta_snapshot *target = NULL;
    st_delta_txn *t = NULL;
    st_map *cur = NULL, *tgt = NULL;
    st_rc rc = st_delta_snapshot_load(eng, table_path, version, &target, err);
    if (rc) {
        st_err_ctx(err, "restore %s to version %lld", table_path, (long long)version);
        return rc;
    }
    rc = st_delta_txn_begin(eng, table_path, NULL, "RESTORE", &t, err);
    if (rc)
        goto fail;
    const st_delta_snapshot *s = st_delta_txn_snapshot(t);
    cur = st_map_new();
    tgt = st_map_new();
    if (!cur || !tgt) {
        rc = st_fail(err, ST_ERR_NOMEM, "restore %s", table_path);
        goto fail;
    }
    for (size_t i = 0; rc == ST_OK && i < s->n_files; i++)
        rc = st_map_put(cur, s->files[i]->abs_path, s->files[i], NULL);
    for (size_t i = 0; rc == ST_OK && i < target->n_files; i++)
        rc = st_map_put(tgt, target->files[i]->abs_path, target->files[i], NULL);
    for (size_t i = 0; rc == ST_OK && i < target->n_files; i++) {
        st_delta_file *f = target->files[i];
        if (st_map_get(cur, f->abs_path))
            continue;
        if (!st_path_exists(f->abs_path)) {
            rc = st_fail(err, ST_ERR_NOTFOUND,
                         "restore %s to version %lld: data file %s no longer exists (vacuumed?)",
                         table_path, (long long)version, f->path);
            break;
        }
        st_delta_file c = *f;
        c.data_change = true;
        c.modification_time = f->modification_time;
        rc = st_delta_txn_add(t, &c, err);
        res->files_added++;
        res->bytes_added += f->size;
    }
    for (size_t i = 0; rc == ST_OK && i < s->n_files; i++) {
        if (st_map_get(tgt, s->files[i]->abs_path))
            continue;
        rc = st_delta_txn_remove(t, s->files[i], true, err);
        res->files_removed++;
    }
    if (rc == ST_OK && strcmp(s->metadata.schema_string, target->metadata.schema_string))
        rc = st_delta_txn_set_schema(t, target->metadata.schema, err);
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)version);
    rc = rc ? rc : st_delta_txn_param(t, "version", num, err);
    st_delta_txn_read_predicate(t, NULL);
    if (rc)
        goto fail;
    rc = st_delta_txn_commit(t, &res->version, err);
    t = NULL;
fail:
    st_delta_txn_abort(t);
    st_map_free(cur);
    st_map_free(tgt);
    st_delta_snapshot_free(target);
    return rc;
}
