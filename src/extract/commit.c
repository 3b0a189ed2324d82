/*
 * commit.c - lands the Parquet files of one extraction run in a bronze
 * Delta table in ONE commit: full runs remove every live file, merges by key
 * or cursor range remove the live files that hold affected rows and add
 * them rewritten without those rows, and the new files are added.  The app
 * transaction "extract.<source>.<table>" = run id makes a retried commit of
 * the same run a no-op.  Chunk extraction is in run.c.
 */
#include "extract/extract_int.h"
#include "delta/write_int.h"

#include <string.h>

static st_rc files_list_sql(st_buf *b, st_delta_file **files, size_t n)
{
    st_rc rc = st_buf_puts(b, "[");
    for (size_t i = 0; rc == ST_OK && i < n; i++) {
        if (i)
            rc = st_buf_puts(b, ", ");
        rc = rc ? rc : st_buf_sql_str(b, files[i]->abs_path);
    }
    return rc ? rc : st_buf_puts(b, "]");
}

/* Rewrites the live files holding rows that match cond, without those rows. */
static st_rc merge_files(st_engine *eng, st_delta_txn *t, const x_land *l, const char *cond,
                         st_delta_result *res, st_err *err)
{
    const st_delta_snapshot *s = st_delta_txn_snapshot(t);
    if (s->n_files == 0)
        return ST_OK;
    st_buf q;
    st_buf_init(&q, 0);
    st_rc rc = st_buf_puts(&q, "SELECT DISTINCT filename FROM read_parquet(");
    rc = rc ? rc : files_list_sql(&q, s->files, s->n_files);
    rc = rc ? rc : st_buf_printf(&q, ", filename = true, union_by_name = true) t WHERE %s", cond);
    duckdb_result r;
    rc = rc ? rc : st_engine_query(eng, q.data, &r, err);
    st_buf_free(&q);
    if (rc)
        return rc;
    idx_t n = duckdb_row_count(&r);
    for (idx_t i = 0; rc == ST_OK && i < n; i++) {
        char *fname = duckdb_value_varchar(&r, 0, i);
        st_delta_file *hit = NULL;
        for (size_t k = 0; k < s->n_files && fname; k++)
            if (!strcmp(s->files[k]->abs_path, fname))
                hit = s->files[k];
        duckdb_free(fname);
        if (!hit) {
            rc = st_fail(err, ST_ERR_CORRUPT, "merge: a scanned file is not in the snapshot");
            break;
        }
        char *fsql = NULL;
        rc = st_deltaw_files_sql(eng, s, &hit, 1, &fsql, err);
        char *sql = rc ? NULL : st_sprintf("SELECT * FROM (%s) t WHERE NOT (%s)", fsql, cond);
        st_free(fsql);
        st_parquet_file *pf = NULL;
        size_t npf = 0;
        rc = rc ? rc : st_deltaw_write_rows(eng, s, sql, l->table_path, 0, 0, 0, &pf, &npf, err);
        st_free(sql);
        rc = rc ? rc : st_delta_txn_remove(t, hit, true, err);
        rc = rc ? rc : st_deltaw_add_written(t, l->schema, pf, npf, true, NULL, err);
        if (rc == ST_OK) {
            res->files_removed++;
            for (size_t k = 0; k < npf; k++) {
                res->bytes_added += pf[k].size;
                res->files_added++;
            }
            res->rows_deleted += (hit->num_records >= 0 ? hit->num_records : 0);
            for (size_t k = 0; k < npf; k++)
                res->rows_deleted -= pf[k].rows;
        }
        st_parquet_files_free(pf, npf);
    }
    duckdb_destroy_result(&r);
    return rc;
}

static bool schema_same(const st_delta_schema *a, const st_delta_schema *b)
{
    char *ja = st_delta_schema_to_json(a), *jb = st_delta_schema_to_json(b);
    bool same = ja && jb && !strcmp(ja, jb);
    st_free(ja);
    st_free(jb);
    return same;
}

st_rc x_land_commit(st_engine *eng, const x_land *l, st_delta_result *res, st_err *err)
{
    memset(res, 0, sizeof *res);
    res->version = -1;
    int64_t latest = -1;
    st_rc rc = st_delta_latest_version(l->table_path, &latest, err);
    if (rc)
        return rc;
    if (latest < 0) {
        st_delta_create_opts co = {0};
        co.partition_by = l->partition_by;
        co.n_partition_by = l->n_partition_by;
        rc = st_delta_create(l->table_path, l->schema, &co, err);
        if (rc && rc != ST_ERR_EXISTS)
            return rc;
    }
    st_delta_txn *t = NULL;
    rc = st_delta_txn_begin(eng, l->table_path, NULL, l->replace_all ? "WRITE" : "MERGE", &t, err);
    if (rc)
        return rc;
    const st_delta_snapshot *s = st_delta_txn_snapshot(t);
    for (size_t i = 0; i < s->n_txns; i++) {
        if (!strcmp(s->txns[i].app_id, l->app_id) && s->txns[i].version >= l->run_id) {
            /* this run was committed before a crash: nothing to do */
            res->version = s->version;
            st_delta_txn_abort(t);
            return ST_OK;
        }
    }
    if (!schema_same(s->metadata.schema, l->schema))
        rc = st_delta_txn_set_schema(t, l->schema, err);
    rc = rc ? rc : st_delta_txn_set_app(t, l->app_id, l->run_id, err);
    char *rid = st_sprintf("%lld", (long long)l->run_id);
    rc = rc ? rc : st_delta_txn_param(t, "extractRun", rid, err);
    st_free(rid);
    if (rc == ST_OK && l->replace_all) {
        for (size_t i = 0; rc == ST_OK && i < s->n_files; i++) {
            rc = st_delta_txn_remove(t, s->files[i], true, err);
            res->files_removed++;
            res->rows_deleted += s->files[i]->num_records > 0 ? s->files[i]->num_records : 0;
        }
    } else if (rc == ST_OK && (l->delete_cond || l->keys_sql)) {
        st_delta_txn_read_predicate(t, NULL);
        char *cond = NULL;
        if (l->keys_sql) {
            st_buf c;
            st_buf_init(&c, 0);
            rc = st_engine_execf(eng, err, "CREATE OR REPLACE TEMP TABLE _x_keys AS %s",
                                 l->keys_sql);
            st_buf_puts(&c, "EXISTS (SELECT 1 FROM _x_keys k WHERE ");
            for (size_t i = 0; i < l->n_key; i++) {
                st_buf_puts(&c, i ? " AND k." : "k.");
                st_buf_sql_ident(&c, l->key[i]);
                st_buf_puts(&c, " = t.");
                st_buf_sql_ident(&c, l->key[i]);
            }
            st_buf_puts(&c, ")");
            if (l->delete_cond)
                st_buf_printf(&c, " OR (%s)", l->delete_cond);
            cond = st_buf_take(&c);
        } else {
            cond = st_strdup(l->delete_cond);
        }
        rc = rc ? rc : merge_files(eng, t, l, cond, res, err);
        st_free(cond);
        if (l->keys_sql)
            st_engine_exec(eng, "DROP TABLE IF EXISTS _x_keys", NULL);
    }
    rc = rc ? rc : st_deltaw_add_written(t, l->schema, l->files, l->n_files, true, res, err);
    if (rc) {
        st_delta_txn_abort(t);
        return rc;
    }
    return st_delta_txn_commit(t, &res->version, err);
}
