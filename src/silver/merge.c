/*
 * merge.c - silver on Delta: reads the stored versions of the affected keys
 * with their file and row position, runs the rebuild of scd2.c, and commits
 * the outcome once: a deletion vector on every file that held an old version
 * of a changed key, one appended file with the new history, and the `txn`
 * that makes reruns no-ops.  Also the incremental run over a bronze table
 * (files added since the recorded bronze version), erasure of keys and the
 * history views.  DV files are written by src/delta/dv_write.c.
 */
#include "silver/silver_int.h"

#include "delta/write_int.h"
#include "strata/delta.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- scanning */

/* Creates view `view` over every live file of s: the table columns (with
 * partition values), _st_fi (index into s->files) and _st_pos (row number in
 * the file), without the rows deleted by existing deletion vectors.  With
 * keys (n_keys > 0), rows are first reduced to those whose non-partition key
 * columns appear in _st_in, before anything else touches them.  Returns
 * false in *has_rows when the table has no file. */
static st_rc scan_with_pos(st_engine *eng, const st_delta_snapshot *s, const char *view,
                           char **keys, size_t n_keys, const char *prune, bool *has_rows,
                           st_err *err)
{
    const st_delta_metadata *m = &s->metadata;
    st_buf b;
    st_buf_init(&b, 0);
    st_rc rc = ST_OK;
    duckdb_appender app = NULL;
    /* the files that may hold the keys (partition values, min/max stats);
     * indexes stay those of s->files */
    bool *use = st_calloc(s->n_files + 1, sizeof *use);
    size_t n_use = 0;
    if (!use)
        return st_fail(err, ST_ERR_NOMEM, "reading %s", s->table_path);
    if (prune) {
        st_delta_file **pf = NULL;
        size_t n_pf = 0;
        rc = st_delta_prune(s, prune, &pf, &n_pf, err);
        for (size_t i = 0, j = 0; rc == ST_OK && i < s->n_files && j < n_pf; i++)
            if (s->files[i] == pf[j]) {
                use[i] = true;
                j++;
            }
        st_free(pf);
        if (rc) {
            st_free(use);
            return rc;
        }
    } else {
        for (size_t i = 0; i < s->n_files; i++)
            use[i] = true;
    }
    for (size_t i = 0; i < s->n_files; i++)
        n_use += use[i];
    *has_rows = n_use > 0;
    if (!*has_rows) {
        st_free(use);
        return ST_OK;
    }
    /* one row per file: index, path, partition values typed */
    rc = st_buf_puts(&b, "CREATE OR REPLACE TEMP TABLE _st_files (_st_fi INTEGER, _st_fname VARCHAR");
    for (size_t i = 0; rc == ST_OK && i < m->n_partition_columns; i++) {
        const st_dfield *f = st_delta_schema_find(m->schema, m->partition_columns[i]);
        char *ty = f ? st_delta_type_sql(&f->type) : NULL;
        rc = st_buf_puts(&b, ", ");
        rc = rc ? rc : st_buf_sql_ident(&b, m->partition_columns[i]);
        rc = rc ? rc : st_buf_printf(&b, " %s", ty ? ty : "VARCHAR");
        st_free(ty);
    }
    rc = rc ? rc : st_buf_puts(&b, ")");
    rc = rc ? rc : st_engine_exec(eng, b.data, err);
    st_buf_reset(&b);
    for (size_t i = 0; rc == ST_OK && i < s->n_files; i++) {
        const st_delta_file *f = s->files[i];
        if (!use[i])
            continue;
        rc = st_buf_printf(&b, "INSERT INTO _st_files VALUES (%zu, ", i);
        rc = rc ? rc : st_buf_sql_str(&b, f->abs_path);
        for (size_t k = 0; rc == ST_OK && k < m->n_partition_columns; k++) {
            const char *v = NULL;
            for (size_t j = 0; j < f->n_part; j++)
                if (!strcmp(f->part[j].key, m->partition_columns[k]))
                    v = f->part[j].value;
            const st_dfield *fd = st_delta_schema_find(m->schema, m->partition_columns[k]);
            rc = st_buf_puts(&b, ", ");
            rc = rc ? rc : (fd ? st_delta_part_literal(&fd->type, v, &b, err) : st_buf_puts(&b, "NULL"));
        }
        rc = rc ? rc : st_buf_puts(&b, ")");
        rc = rc ? rc : st_engine_exec(eng, b.data, err);
        st_buf_reset(&b);
    }
    /* rows already deleted by deletion vectors */
    rc = rc ? rc : st_engine_exec(eng, "CREATE OR REPLACE TEMP TABLE _st_dvpos (_st_fi INTEGER, "
                                       "_st_pos BIGINT)", err);
    rc = rc ? rc : st_engine_appender(eng, "_st_dvpos", &app, err);
    for (size_t i = 0; rc == ST_OK && i < s->n_files; i++) {
        if (!use[i] || !s->files[i]->has_dv)
            continue;
        uint64_t *pos = NULL;
        size_t n = 0;
        rc = st_delta_dv_load(s->table_path, &s->files[i]->dv, &pos, &n, err);
        for (size_t k = 0; rc == ST_OK && k < n; k++) {
            duckdb_append_int32(app, (int32_t)i);
            duckdb_append_int64(app, (int64_t)pos[k]);
            if (duckdb_appender_end_row(app) == DuckDBError)
                rc = st_fail(err, ST_ERR_ENGINE, "appending deletion vector positions");
        }
        st_free(pos);
    }
    if (app) {
        st_rc rc2 = st_engine_appender_close(&app, rc ? NULL : err);
        rc = rc ? rc : rc2;
    }
    /* the data columns (partition columns are not in the files) */
    rc = rc ? rc : st_buf_printf(&b, "CREATE OR REPLACE TEMP VIEW %s AS SELECT ", view);
    for (size_t i = 0; rc == ST_OK && i < m->schema->n_fields; i++) {
        const char *name = m->schema->fields[i].name;
        bool is_part = false;
        for (size_t k = 0; k < m->n_partition_columns; k++)
            is_part = is_part || !strcmp(m->partition_columns[k], name);
        rc = st_buf_puts(&b, is_part ? "f." : "r.");
        rc = rc ? rc : st_buf_sql_ident(&b, name);
        rc = rc ? rc : st_buf_puts(&b, ", ");
    }
    rc = rc ? rc : st_buf_puts(&b, "f._st_fi, r.file_row_number AS _st_pos FROM (SELECT * FROM "
                                   "read_parquet([");
    for (size_t i = 0, k = 0; rc == ST_OK && i < s->n_files; i++) {
        if (!use[i])
            continue;
        rc = k++ ? st_buf_puts(&b, ", ") : ST_OK;
        rc = rc ? rc : st_buf_sql_str(&b, s->files[i]->abs_path);
    }
    rc = rc ? rc : st_buf_puts(&b, "], filename = true, file_row_number = true, union_by_name = "
                                   "true) r0");
    /* the key semi-join first: only the affected rows meet the file table */
    size_t n_np = 0;
    for (size_t i = 0; rc == ST_OK && i < n_keys; i++) {
        bool is_part = false;
        for (size_t k = 0; k < m->n_partition_columns; k++)
            is_part = is_part || !strcmp(m->partition_columns[k], keys[i]);
        if (is_part)
            continue;
        rc = st_buf_puts(&b, n_np ? " AND r0." : " SEMI JOIN (SELECT DISTINCT * FROM (SELECT ");
        if (n_np == 0) {
            size_t c = 0;
            for (size_t j = 0; rc == ST_OK && j < n_keys; j++) {
                bool jp = false;
                for (size_t k = 0; k < m->n_partition_columns; k++)
                    jp = jp || !strcmp(m->partition_columns[k], keys[j]);
                if (jp)
                    continue;
                rc = st_buf_puts(&b, c++ ? ", " : "");
                rc = rc ? rc : st_buf_sql_ident(&b, keys[j]);
            }
            rc = rc ? rc : st_buf_puts(&b, " FROM _st_in)) k0 ON r0.");
        }
        rc = rc ? rc : st_buf_sql_ident(&b, keys[i]);
        rc = rc ? rc : st_buf_puts(&b, " = k0.");
        rc = rc ? rc : st_buf_sql_ident(&b, keys[i]);
        n_np++;
    }
    rc = rc ? rc : st_buf_puts(&b, ") r JOIN _st_files f ON f._st_fname = r.filename ANTI JOIN "
                                   "_st_dvpos d ON d._st_fi = f._st_fi AND d._st_pos = "
                                   "r.file_row_number");
    rc = rc ? rc : st_engine_exec(eng, b.data, err);
    st_buf_free(&b);
    st_free(use);
    if (rc)
        st_err_ctx(err, "reading silver table %s", s->table_path);
    return rc;
}

/* A predicate that bounds the batch's keys, for file pruning: IN lists for
 * partition columns with few values, [min, max] for integer and string key
 * columns.  NULL (no pruning) when nothing applies.  OWNED. */
static char *key_bounds(st_engine *eng, const scd_plan *p, const st_delta_snapshot *s)
{
    st_buf b, q;
    st_buf_init(&b, 0);
    st_buf_init(&q, 0);
    for (size_t i = 0; i < p->n_key; i++) {
        bool is_part = false;
        for (size_t k = 0; k < s->metadata.n_partition_columns; k++)
            is_part = is_part || !strcmp(s->metadata.partition_columns[k], p->key[i]);
        st_buf_reset(&q);
        st_buf_puts(&q, "SELECT typeof(min(");
        st_buf_sql_ident(&q, p->key[i]);
        st_buf_puts(&q, ")), count(DISTINCT ");
        st_buf_sql_ident(&q, p->key[i]);
        st_buf_puts(&q, "), CAST(min(");
        st_buf_sql_ident(&q, p->key[i]);
        st_buf_puts(&q, ") AS VARCHAR), CAST(max(");
        st_buf_sql_ident(&q, p->key[i]);
        st_buf_puts(&q, ") AS VARCHAR), string_agg(DISTINCT CAST(");
        st_buf_sql_ident(&q, p->key[i]);
        st_buf_puts(&q, " AS VARCHAR), chr(31)) FROM _st_in");
        duckdb_result r;
        if (!q.data || st_engine_query(eng, q.data, &r, NULL) != ST_OK)
            continue;
        char *ty = duckdb_value_varchar(&r, 0, 0);
        int64_t n = duckdb_value_int64(&r, 1, 0);
        char *lo = duckdb_value_varchar(&r, 2, 0), *hi = duckdb_value_varchar(&r, 3, 0);
        char *all = duckdb_value_varchar(&r, 4, 0);
        bool is_str = ty && !strcmp(ty, "VARCHAR");
        bool is_int = ty && (strstr(ty, "INT") != NULL);
        if (ty && lo && hi && (is_str || is_int)) {
            st_buf_puts(&b, b.len ? " AND " : "");
            st_buf_sql_ident(&b, p->key[i]);
            if (is_part && is_str && all && n > 0 && n <= 64) {
                st_buf_puts(&b, " IN (");
                bool first = true;
                for (char *v = all; v;) {
                    char *sep = strchr(v, '\x1f');
                    if (sep)
                        *sep = '\0';
                    st_buf_puts(&b, first ? "" : ", ");
                    st_buf_sql_str(&b, v);
                    first = false;
                    v = sep ? sep + 1 : NULL;
                }
                st_buf_puts(&b, ")");
            } else if (is_str) {
                st_buf_puts(&b, " >= ");
                st_buf_sql_str(&b, lo);
                st_buf_puts(&b, " AND ");
                st_buf_sql_ident(&b, p->key[i]);
                st_buf_puts(&b, " <= ");
                st_buf_sql_str(&b, hi);
            } else {
                st_buf_printf(&b, " >= %s AND ", lo);
                st_buf_sql_ident(&b, p->key[i]);
                st_buf_printf(&b, " <= %s", hi);
            }
        }
        duckdb_free(ty);
        duckdb_free(lo);
        duckdb_free(hi);
        duckdb_free(all);
        duckdb_destroy_result(&r);
    }
    st_buf_free(&q);
    return b.len ? st_buf_take(&b) : (st_buf_free(&b), NULL);
}

/* ---------------------------------------------------------------- committing */

/* Marks the rows of query `pos_sql` (columns _st_fi, _st_pos, sorted) as
 * deleted: one DV per touched file of s, committed as remove(path, old DV) +
 * add(path, new DV), the protocol's way to give a file a new DV. */
static st_rc retire_rows(st_engine *eng, st_delta_txn *t, const st_delta_snapshot *s,
                         const char *pos_sql, st_silver_stats *stats, st_err *err)
{
    duckdb_result r;
    st_rc rc = st_engine_query(eng, pos_sql, &r, err);
    if (rc)
        return rc;
    idx_t n = duckdb_row_count(&r);
    uint64_t *pos = st_malloc((n + 1) * sizeof *pos);
    int32_t *fi = st_malloc((n + 1) * sizeof *fi);
    if (!pos || !fi) {
        rc = st_fail(err, ST_ERR_NOMEM, "retiring %llu rows", (unsigned long long)n);
        goto done;
    }
    for (idx_t i = 0; i < n; i++) {
        fi[i] = duckdb_value_int32(&r, 0, i);
        pos[i] = (uint64_t)duckdb_value_int64(&r, 1, i);
    }
    for (idx_t i = 0; rc == ST_OK && i < n;) {
        idx_t j = i;
        while (j < n && fi[j] == fi[i])
            j++;
        if (fi[i] < 0 || (size_t)fi[i] >= s->n_files) {
            rc = st_fail(err, ST_ERR_CORRUPT, "silver: bad file index %d", (int)fi[i]);
            break;
        }
        const st_delta_file *f = s->files[fi[i]];
        st_delta_dv dv;
        memset(&dv, 0, sizeof dv);
        int64_t bytes = 0;
        rc = st_delta_dv_build(s->table_path, pos + i, j - i, f->has_dv ? &f->dv : NULL, &dv,
                               &bytes, err);
        rc = rc ? rc : st_delta_txn_remove(t, f, true, err);
        if (rc == ST_OK) {
            st_delta_file nf = *f;
            nf.has_dv = true;
            nf.dv = dv;
            nf.modification_time = st_now_ms();
            nf.data_change = true;
            rc = st_delta_txn_add(t, &nf, err);
        }
        st_delta_dv_clear(&dv);
        if (stats) {
            stats->files_touched++;
            stats->rows_deleted += (int64_t)(j - i);
            stats->bytes_written += bytes;
        }
        i = j;
    }
done:
    duckdb_destroy_result(&r);
    st_free(pos);
    st_free(fi);
    return rc;
}

/* Schema of the silver table from the columns of _st_new. OWNED *out. */
static st_rc schema_of_new(st_engine *eng, st_delta_schema **out, st_err *err)
{
    duckdb_result r;
    st_rc rc = st_engine_query(eng, "SELECT * FROM _st_new LIMIT 0", &r, err);
    if (rc)
        return rc;
    idx_t n = duckdb_column_count(&r);
    st_delta_schema *s = st_calloc(1, sizeof *s);
    if (s)
        s->fields = st_calloc(n, sizeof *s->fields);
    if (!s || !s->fields) {
        st_free(s);
        duckdb_destroy_result(&r);
        return st_fail(err, ST_ERR_NOMEM, "silver schema");
    }
    for (idx_t i = 0; rc == ST_OK && i < n; i++) {
        st_dfield *f = &s->fields[i];
        duckdb_logical_type lt = duckdb_column_logical_type(&r, i);
        rc = st_delta_type_from_duckdb(lt, &f->type, err);
        duckdb_destroy_logical_type(&lt);
        if (rc)
            break;
        s->n_fields++;
        f->name = st_strdup(duckdb_column_name(&r, i));
        f->metadata_json = st_strdup("{}");
        f->nullable = true;
        if (!f->name || !f->metadata_json)
            rc = st_fail(err, ST_ERR_NOMEM, "silver schema");
    }
    duckdb_destroy_result(&r);
    if (rc) {
        st_delta_schema_free(s);
        return rc;
    }
    *out = s;
    return ST_OK;
}

static st_rc create_table(st_engine *eng, const scd_plan *p, const char *table_path, st_err *err)
{
    st_delta_schema *schema = NULL;
    st_rc rc = schema_of_new(eng, &schema, err);
    if (rc)
        return rc;
    st_kv props[] = {{"delta.enableDeletionVectors", "true"}};
    st_delta_create_opts o = {0};
    o.name = p->ent->name;
    o.description = "Strata silver entity (SCD Type 2)";
    o.partition_by = (const char *const *)p->part;
    o.n_partition_by = p->n_part;
    o.properties = props;
    o.n_properties = 1;
    rc = st_mkdirs(table_path, err);
    /* the property makes version 0 reader 3 / writer 7 with deletionVectors */
    rc = rc ? rc : st_delta_create(table_path, schema, &o, err);
    st_delta_schema_free(schema);
    return rc;
}

static const st_delta_apptxn *find_app(const st_delta_snapshot *s, const char *app_id)
{
    for (size_t i = 0; s && app_id && i < s->n_txns; i++)
        if (!strcmp(s->txns[i].app_id, app_id))
            return &s->txns[i];
    return NULL;
}

st_rc st_silver_merge_delta(st_engine *eng, const st_silver_entity *ent, const char *in_sql,
                            const char *table_path, const char *batch_id, const char *app_id,
                            int64_t app_version, st_silver_stats *stats, st_err *err)
{
    st_silver_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    stats->version = -1;
    stats->source_version = -1;
    char uuid[37];
    if (!batch_id) {
        st_uuid4(uuid);
        batch_id = uuid;
    }
    scd_plan p;
    memset(&p, 0, sizeof p);
    st_delta_snapshot *snap = NULL;
    st_delta_txn *t = NULL;
    st_parquet_file *pf = NULL;
    size_t n_pf = 0;
    st_buf b;
    st_buf_init(&b, 0);
    int64_t latest = -1;
    bool has_rows = false;
    st_debug("silver %s: merge into %s", ent->name, table_path);
    st_rc rc = st_delta_latest_version(table_path, &latest, err);
    if (rc)
        goto done;
    if (latest >= 0) {
        rc = st_delta_snapshot_load(eng, table_path, -1, &snap, err);
        if (rc)
            goto done;
        const st_delta_apptxn *a = find_app(snap, app_id);
        if (a && a->version >= app_version) {
            stats->skipped = true;
            goto done;
        }
    }
    rc = scd_prepare(eng, ent, in_sql, &p, err);
    if (rc)
        goto done;
    if (snap && ent->delete_kind == ST_SILVER_DELETE_MISSING) {
        rc = scan_with_pos(eng, snap, "_st_all", NULL, 0, NULL, &has_rows, err);
        rc = rc ? rc : (has_rows ? scd_add_missing(eng, &p, "SELECT * FROM _st_all", err) : ST_OK);
        if (rc)
            goto done;
    }
    if (snap) {
        char *bounds = key_bounds(eng, &p, snap);
        rc = scan_with_pos(eng, snap, "_st_rows", p.key, p.n_key, bounds, &has_rows, err);
        st_free(bounds);
        if (rc)
            goto done;
    }
    st_debug("silver %s: batch read", ent->name);
    if (has_rows) {
        /* the stored versions of the batch's keys */
        rc = st_buf_puts(&b, "CREATE OR REPLACE TEMP TABLE _st_old AS SELECT ");
        rc = rc ? rc : scd_put_cols(&b, p.cols, p.n_cols, "o");
        /* only what the rebuild needs: _valid_to and _seq follow from the
         * others, _sk and _row_hash are recomputed (cheaper than decoding
         * them for every row of the table) */
        rc = rc ? rc : st_buf_puts(&b, ", o._valid_from, o._is_deleted, o._noop_seqs, o._st_fi, "
                                       "o._st_pos FROM _st_rows o SEMI JOIN (SELECT DISTINCT ");
        rc = rc ? rc : scd_put_cols(&b, p.key, p.n_key, NULL);
        rc = rc ? rc : st_buf_puts(&b, " FROM _st_in) k ON ");
        rc = rc ? rc : scd_put_join(&b, p.key, p.n_key, "o", "k");
        rc = rc ? rc : st_engine_exec(eng, b.data, err);
        st_buf_reset(&b);
    } else {
        rc = scd_empty_old(eng, &p, err);
    }
    st_debug("silver %s: stored versions read", ent->name);
    rc = rc ? rc : scd_rebuild(eng, &p, batch_id, stats, err);
    if (rc)
        goto done;
    st_debug("silver %s: rebuilt", ent->name);
    if (!snap) {
        if (stats->rows_written == 0) {
            stats->skipped = true;
            goto done;
        }
        rc = create_table(eng, &p, table_path, err);
        rc = rc ? rc : st_delta_snapshot_load(eng, table_path, -1, &snap, err);
        if (rc)
            goto done;
    }
    rc = st_delta_txn_begin(eng, table_path, snap, "MERGE", &t, err);
    rc = rc ? rc : st_delta_txn_param(t, "predicate", "silver SCD2 rebuild of affected keys", err);
    if (rc)
        goto done;
    if (stats->rows_written > 0) {
        const st_delta_schema *schema = snap->metadata.schema;
        rc = st_buf_puts(&b, "SELECT ");
        rc = rc ? rc : st_deltaw_select_list(schema, st_delta_cm_mode(snap), NULL, &b);
        rc = rc ? rc : st_buf_puts(&b, " FROM _st_new");
        if (rc) {
            rc = st_fail(err, rc, "silver %s: building the write", ent->name);
            goto done;
        }
        rc = st_deltaw_write_rows(eng, snap, b.data, table_path, 0, 0, &pf, &n_pf, err);
        st_buf_reset(&b);
        st_delta_result res = {0};
        rc = rc ? rc : st_deltaw_add_written(t, schema, pf, n_pf, true, &res, err);
        stats->bytes_written += res.bytes_added;
        if (rc)
            goto done;
        st_debug("silver %s: new versions written", ent->name);
    }
    if (has_rows && stats->keys_changed > 0) {
        rc = st_buf_puts(&b, "SELECT _st_fi, _st_pos FROM _st_old o SEMI JOIN _st_chg c ON ");
        rc = rc ? rc : scd_put_join(&b, p.key, p.n_key, "o", "c");
        rc = rc ? rc : st_buf_puts(&b, " ORDER BY _st_fi, _st_pos");
        rc = rc ? rc : retire_rows(eng, t, snap, b.data, stats, err);
        st_buf_reset(&b);
        if (rc)
            goto done;
    }
    if (app_id)
        rc = st_delta_txn_set_app(t, app_id, app_version, err);
    if (rc)
        goto done;
    if (stats->keys_changed == 0 && !app_id) {
        stats->skipped = true;
        goto done;
    }
    st_debug("silver %s: deletion vectors written", ent->name);
    rc = st_delta_txn_commit(t, &stats->version, err);
    t = NULL;
    st_debug("silver %s: committed", ent->name);
done:
    if (rc)
        st_err_ctx(err, "silver %s -> %s", ent->name, table_path);
    st_delta_txn_abort(t);
    st_parquet_files_free(pf, n_pf);
    st_delta_snapshot_free(snap);
    st_buf_free(&b);
    scd_plan_clear(&p);
    return rc;
}

/* ---------------------------------------------------------------- erase */

st_rc st_silver_erase(st_engine *eng, const char *table_path, const char *key_predicate,
                      st_silver_stats *stats, st_err *err)
{
    st_silver_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    stats->version = -1;
    stats->source_version = -1;
    st_delta_snapshot *snap = NULL;
    st_delta_txn *t = NULL;
    bool has_rows = false;
    char *sql = NULL;
    st_rc rc = st_delta_snapshot_load(eng, table_path, -1, &snap, err);
    rc = rc ? rc : scan_with_pos(eng, snap, "_st_rows", NULL, 0, NULL, &has_rows, err);
    if (rc || !has_rows)
        goto done;
    sql = st_sprintf("SELECT _st_fi, _st_pos FROM _st_rows WHERE (%s) ORDER BY _st_fi, _st_pos",
                     key_predicate);
    if (!sql) {
        rc = st_fail(err, ST_ERR_NOMEM, "erase");
        goto done;
    }
    rc = st_delta_txn_begin(eng, table_path, snap, "DELETE", &t, err);
    rc = rc ? rc : st_delta_txn_param(t, "predicate", key_predicate, err);
    rc = rc ? rc : retire_rows(eng, t, snap, sql, stats, err);
    if (rc)
        goto done;
    if (stats->rows_deleted == 0) {
        stats->skipped = true;
        goto done;
    }
    rc = st_delta_txn_commit(t, &stats->version, err);
    t = NULL;
done:
    if (rc)
        st_err_ctx(err, "erasing from %s", table_path);
    st_delta_txn_abort(t);
    st_delta_snapshot_free(snap);
    st_free(sql);
    return rc;
}

/* ---------------------------------------------------------------- views */

st_rc st_silver_register_views(st_engine *eng, const char *table_path, const char *prefix,
                               st_err *err)
{
    st_delta_snapshot *snap = NULL;
    char *hist = st_sprintf("%s_history", prefix);
    st_rc rc = hist ? st_delta_snapshot_load(eng, table_path, -1, &snap, err)
                    : st_fail(err, ST_ERR_NOMEM, "views");
    rc = rc ? rc : st_delta_register_view(eng, hist, snap, err);
    rc = rc ? rc : st_engine_execf(eng, err,
                                   "CREATE OR REPLACE VIEW \"%s_current\" AS SELECT * FROM \"%s\" "
                                   "WHERE _is_current AND NOT _is_deleted",
                                   prefix, hist);
    rc = rc ? rc : st_engine_execf(eng, err,
                                   "CREATE OR REPLACE MACRO \"%s_as_of\"(ts) AS TABLE SELECT * "
                                   "FROM \"%s\" WHERE _valid_from <= ts AND (_valid_to IS NULL OR "
                                   "_valid_to > ts) AND NOT _is_deleted",
                                   prefix, hist);
    st_delta_snapshot_free(snap);
    st_free(hist);
    return rc;
}

/* ---------------------------------------------------------------- incremental run */

static bool same_file(const st_delta_file *a, const st_delta_file *b)
{
    if (strcmp(a->path, b->path) || a->has_dv != b->has_dv)
        return false;
    if (!a->has_dv)
        return true;
    char *x = st_delta_dv_unique_id(&a->dv), *y = st_delta_dv_unique_id(&b->dv);
    bool eq = x && y && !strcmp(x, y);
    st_free(x);
    st_free(y);
    return eq;
}

st_rc scd_app_version(st_engine *eng, const char *path, const char *app_id, int64_t *out,
                      st_err *err)
{
    *out = -1;
    int64_t latest = -1;
    st_rc rc = st_delta_latest_version(path, &latest, err);
    if (rc || latest < 0)
        return rc;
    st_delta_snapshot *s = NULL;
    rc = st_delta_snapshot_load(eng, path, -1, &s, err);
    const st_delta_apptxn *a = rc ? NULL : find_app(s, app_id);
    if (a)
        *out = a->version;
    st_delta_snapshot_free(s);
    return rc;
}

st_rc scd_bronze_increment(st_engine *eng, const char *bronze, int64_t done_v, char **out_sql,
                           int64_t *out_version, st_err *err)
{
    st_delta_snapshot *bs = NULL, *bold = NULL;
    st_delta_file **newf = NULL;
    st_rc rc = st_delta_snapshot_load(eng, bronze, -1, &bs, err);
    if (rc)
        return rc;
    *out_version = bs->version;
    /* only the files bronze gained since the processed version; a file seen
     * again (e.g. rewritten with a DV) only repeats changes, which the
     * rebuild deduplicates */
    st_delta_snapshot sub = *bs;
    if (done_v >= 0 && done_v < bs->version) {
        rc = st_delta_snapshot_load(eng, bronze, done_v, &bold, err);
        if (rc)
            goto done;
        newf = st_calloc(bs->n_files + 1, sizeof *newf);
        if (!newf) {
            rc = st_fail(err, ST_ERR_NOMEM, "reading %s", bronze);
            goto done;
        }
        size_t n = 0;
        for (size_t i = 0, j = 0; i < bs->n_files; i++) {
            while (j < bold->n_files && strcmp(bold->files[j]->path, bs->files[i]->path) < 0)
                j++;
            if (j < bold->n_files && same_file(bold->files[j], bs->files[i]))
                continue;
            newf[n++] = bs->files[i];
        }
        sub.files = newf;
        sub.n_files = n;
    }
    rc = st_delta_scan_sql(eng, &sub, NULL, out_sql, err);
done:
    st_free(newf);
    st_delta_snapshot_free(bs);
    st_delta_snapshot_free(bold);
    return rc;
}

st_rc st_silver_run(st_engine *eng, const char *lake_dir, const st_silver_entity *ent,
                    st_silver_stats *stats, st_err *err)
{
    st_silver_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    stats->version = -1;
    char *bronze = st_silver_table_path(lake_dir, ent->from);
    char *name = st_sprintf("silver.%s", ent->name);
    char *silver = name ? st_silver_table_path(lake_dir, name) : NULL;
    char *sql = NULL;
    int64_t done_v = -1, bv = -1;
    st_rc rc = ST_OK;
    if (!bronze || !silver) {
        rc = st_fail(err, ST_ERR_NOMEM, "silver %s", ent->name);
        goto done;
    }
    rc = scd_app_version(eng, silver, name, &done_v, err);
    rc = rc ? rc : st_delta_latest_version(bronze, &bv, err);
    if (rc == ST_OK && bv < 0)
        rc = st_fail(err, ST_ERR_NOTFOUND, "bronze table %s does not exist", bronze);
    if (rc)
        goto done;
    stats->source_version = bv;
    if (done_v >= bv) {
        stats->skipped = true;
        goto done;
    }
    rc = scd_bronze_increment(eng, bronze, done_v, &sql, &bv, err);
    rc = rc ? rc : st_silver_merge_delta(eng, ent, sql, silver, NULL, name, bv, stats, err);
    stats->source_version = bv;
done:
    if (rc)
        st_err_ctx(err, "silver.%s", ent->name);
    st_free(sql);
    st_free(bronze);
    st_free(name);
    st_free(silver);
    return rc;
}
