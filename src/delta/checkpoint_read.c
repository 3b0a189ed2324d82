/*
 * checkpoint_read.c - reads checkpoints into the same action structures as
 * JSON commits: classic and multi-part Parquet checkpoints, V2 checkpoints
 * (UUID-named .json or .parquet) and their _delta_log/_sidecars files.
 *
 * Parquet is decoded by DuckDB; each row is rendered with to_json(row) so
 * checkpoints from any writer (whatever optional columns they carry, e.g.
 * stats_parsed or partitionValues_parsed) go through log.c's action parser.
 */
#include "delta/delta_int.h"

#include <stdlib.h>
#include <string.h>

/* The add fields read straight from columns (the bulk of a checkpoint);
 * other actions and unusual add shapes go through to_json + the parser. */
enum {
    A_PATH, A_PV, A_PV_JSON, A_SIZE, A_MTIME, A_DCHANGE, A_STATS, A_TAGS, A_DV, A_BASEROW,
    A_DEFCOMMIT, A_ROWJSON, A_NCOLS
};

static bool has_child(duckdb_logical_type st, const char *name)
{
    idx_t n = duckdb_struct_type_child_count(st);
    for (idx_t i = 0; i < n; i++) {
        char *c = duckdb_struct_type_child_name(st, i);
        bool eq = !strcmp(c, name);
        duckdb_free(c);
        if (eq)
            return true;
    }
    return false;
}

static st_rc files_list(st_buf *b, char *const *files, size_t n)
{
    st_rc rc = st_buf_puts(b, "read_parquet([");
    for (size_t i = 0; rc == ST_OK && i < n; i++) {
        if (i)
            rc = st_buf_putc(b, ',');
        rc = rc ? rc : st_buf_sql_str(b, files[i]);
    }
    return rc ? rc : st_buf_puts(b, "], union_by_name=true) t");
}

/* SQL selecting the A_* columns; has_add false when the files have no add column. */
static st_rc build_sql(st_engine *eng, char *const *files, size_t n, st_buf *sql, st_err *err)
{
    st_buf probe;
    st_buf_init(&probe, 0);
    st_rc rc = st_buf_puts(&probe, "SELECT * FROM ");
    rc = rc ? rc : files_list(&probe, files, n);
    rc = rc ? rc : st_buf_puts(&probe, " LIMIT 0");
    if (rc) {
        st_buf_free(&probe);
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    duckdb_result res;
    rc = st_engine_query(eng, probe.data, &res, err);
    st_buf_free(&probe);
    if (rc)
        return rc;
    duckdb_logical_type add_t = NULL;
    for (idx_t i = 0; i < duckdb_column_count(&res); i++) {
        if (!strcmp(duckdb_column_name(&res, i), "add")) {
            duckdb_logical_type t = duckdb_column_logical_type(&res, i);
            if (duckdb_get_type_id(t) == DUCKDB_TYPE_STRUCT)
                add_t = t;
            else
                duckdb_destroy_logical_type(&t);
        }
    }
    duckdb_destroy_result(&res);
#define F(name) (add_t && has_child(add_t, name))
    bool fast = F("path");
    rc = st_buf_puts(sql, "SELECT ");
    if (fast) {
        rc = rc ? rc : st_buf_printf(sql,
            "CAST(t.\"add\".\"path\" AS VARCHAR), %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
            "CASE WHEN t.\"add\" IS NULL THEN to_json(t) END",
            F("partitionValues") ? "CAST(t.\"add\".\"partitionValues\" AS MAP(VARCHAR, VARCHAR))" : "NULL::MAP(VARCHAR, VARCHAR)",
            !F("partitionValues") && F("partitionValues_parsed") ? "CAST(to_json(t.\"add\".\"partitionValues_parsed\") AS VARCHAR)" : "NULL::VARCHAR",
            F("size") ? "CAST(t.\"add\".\"size\" AS BIGINT)" : "NULL::BIGINT",
            F("modificationTime") ? "CAST(t.\"add\".\"modificationTime\" AS BIGINT)" : "NULL::BIGINT",
            F("dataChange") ? "CAST(t.\"add\".\"dataChange\" AS BOOLEAN)" : "NULL::BOOLEAN",
            F("stats") && F("stats_parsed") ? "COALESCE(CAST(t.\"add\".\"stats\" AS VARCHAR), CAST(to_json(t.\"add\".\"stats_parsed\") AS VARCHAR))"
            : F("stats") ? "CAST(t.\"add\".\"stats\" AS VARCHAR)"
            : F("stats_parsed") ? "CAST(to_json(t.\"add\".\"stats_parsed\") AS VARCHAR)" : "NULL::VARCHAR",
            F("tags") ? "CAST(to_json(t.\"add\".\"tags\") AS VARCHAR)" : "NULL::VARCHAR",
            F("deletionVector") ? "CAST(to_json(t.\"add\".\"deletionVector\") AS VARCHAR)" : "NULL::VARCHAR",
            F("baseRowId") ? "CAST(t.\"add\".\"baseRowId\" AS BIGINT)" : "NULL::BIGINT",
            F("defaultRowCommitVersion") ? "CAST(t.\"add\".\"defaultRowCommitVersion\" AS BIGINT)" : "NULL::BIGINT");
    } else {
        rc = rc ? rc : st_buf_puts(sql, "NULL::VARCHAR, NULL::MAP(VARCHAR, VARCHAR), NULL::VARCHAR, "
                                        "NULL::BIGINT, NULL::BIGINT, NULL::BOOLEAN, NULL::VARCHAR, "
                                        "NULL::VARCHAR, NULL::VARCHAR, NULL::BIGINT, NULL::BIGINT, to_json(t)");
    }
#undef F
    if (add_t)
        duckdb_destroy_logical_type(&add_t);
    rc = rc ? rc : st_buf_puts(sql, " FROM ");
    rc = rc ? rc : files_list(sql, files, n);
    return rc ? st_fail(err, ST_ERR_NOMEM, "out of memory") : ST_OK;
}

static bool valid(duckdb_vector v, idx_t row)
{
    uint64_t *m = duckdb_vector_get_validity(v);
    return !m || duckdb_validity_row_is_valid(m, row);
}

static char *vstr(st_arena *a, duckdb_vector v, idx_t row)
{
    if (!valid(v, row))
        return NULL;
    duckdb_string_t *s = (duckdb_string_t *)duckdb_vector_get_data(v) + row;
    return st_arena_strndup(a, duckdb_string_t_data(s), duckdb_string_t_length(*s));
}

static int64_t vi64(duckdb_vector v, idx_t row, int64_t def)
{
    return valid(v, row) ? ((int64_t *)duckdb_vector_get_data(v))[row] : def;
}

static st_rc add_from_columns(duckdb_data_chunk ch, idx_t row, const char *table_path,
                              st_arena *a, st_delta_commit *c, st_err *err)
{
    duckdb_vector vp = duckdb_data_chunk_get_vector(ch, A_PATH);
    st_delta_file *f = st_arena_alloc(a, sizeof *f);
    if (!f)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    f->path = vstr(a, vp, row);
    char *abs = st_delta_abs_path(table_path, f->path);
    f->abs_path = abs ? st_arena_strdup(a, abs) : NULL;
    st_free(abs);
    if (!f->path || !f->abs_path)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    duckdb_vector pv = duckdb_data_chunk_get_vector(ch, A_PV);
    if (valid(pv, row)) {
        duckdb_list_entry *e = (duckdb_list_entry *)duckdb_vector_get_data(pv) + row;
        duckdb_vector kv = duckdb_list_vector_get_child(pv);
        duckdb_vector kk = duckdb_struct_vector_get_child(kv, 0);
        duckdb_vector vv = duckdb_struct_vector_get_child(kv, 1);
        f->part = st_arena_alloc(a, (e->length ? e->length : 1) * sizeof *f->part);
        if (!f->part)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        for (idx_t i = 0; i < e->length; i++) {
            f->part[i].key = vstr(a, kk, e->offset + i);
            f->part[i].value = vstr(a, vv, e->offset + i);
            if (!f->part[i].key)
                return st_fail(err, ST_ERR_PARSE, "add %s: partition value without a key", f->path);
        }
        f->n_part = e->length;
    } else {
        char *pvj = vstr(a, duckdb_data_chunk_get_vector(ch, A_PV_JSON), row);
        if (pvj) {
            st_rc rc = st_delta_parse_kv_json(a, pvj, &f->part, &f->n_part, err);
            if (rc)
                return rc;
        }
    }
    f->size = vi64(duckdb_data_chunk_get_vector(ch, A_SIZE), row, -1);
    f->modification_time = vi64(duckdb_data_chunk_get_vector(ch, A_MTIME), row, 0);
    duckdb_vector dc = duckdb_data_chunk_get_vector(ch, A_DCHANGE);
    f->data_change = valid(dc, row) ? ((bool *)duckdb_vector_get_data(dc))[row] : true;
    f->stats = vstr(a, duckdb_data_chunk_get_vector(ch, A_STATS), row);
    f->tags = vstr(a, duckdb_data_chunk_get_vector(ch, A_TAGS), row);
    f->dv.offset = -1;
    f->dv.max_row_index = -1;
    char *dvj = vstr(a, duckdb_data_chunk_get_vector(ch, A_DV), row);
    if (dvj) {
        st_rc rc = st_delta_parse_dv_json(a, dvj, &f->has_dv, &f->dv, err);
        if (rc)
            return rc;
    }
    f->base_row_id = vi64(duckdb_data_chunk_get_vector(ch, A_BASEROW), row, -1);
    f->default_row_commit_version = vi64(duckdb_data_chunk_get_vector(ch, A_DEFCOMMIT), row, -1);
    f->num_records = st_delta_stats_num_records(f->stats);
    return st_delta_commit_push_add(a, c, f, err);
}

/* Reads every row of the Parquet files and parses the actions. */
static st_rc parquet_actions(st_engine *eng, const char *table_path, char *const *files,
                             size_t n_files, st_arena *a, st_delta_commit *c, st_err *err)
{
    if (!eng)
        return st_fail(err, ST_ERR_INVALID, "reading Parquet checkpoint %s needs an engine",
                       files[0]);
    st_buf sql;
    st_buf_init(&sql, 0);
    st_rc rc = build_sql(eng, files, n_files, &sql, err);
    duckdb_result res;
    if (rc == ST_OK)
        rc = st_engine_query(eng, sql.data, &res, err);
    st_buf_free(&sql);
    if (rc) {
        st_err_ctx(err, "reading checkpoint %s%s", files[0], n_files > 1 ? " (and more parts)" : "");
        return rc;
    }
    duckdb_data_chunk chunk;
    size_t row_no = 0;
    while (rc == ST_OK && (chunk = duckdb_fetch_chunk(res)) != NULL) {
        idx_t n = duckdb_data_chunk_get_size(chunk);
        duckdb_vector vpath = duckdb_data_chunk_get_vector(chunk, A_PATH);
        duckdb_vector vjson = duckdb_data_chunk_get_vector(chunk, A_ROWJSON);
        duckdb_string_t *data = duckdb_vector_get_data(vjson);
        for (idx_t i = 0; rc == ST_OK && i < n; i++, row_no++) {
            if (valid(vpath, i)) {
                rc = add_from_columns(chunk, i, table_path, a, c, err);
                if (rc)
                    st_err_ctx(err, "checkpoint %s: row %zu", files[0], row_no);
                continue;
            }
            if (!valid(vjson, i))
                continue;
            const char *txt = duckdb_string_t_data(&data[i]);
            size_t len = duckdb_string_t_length(data[i]);
            json_error_t je;
            json_t *obj = json_loadb(txt, len, 0, &je);
            if (!json_is_object(obj)) {
                json_decref(obj);
                rc = st_fail(err, ST_ERR_PARSE, "checkpoint %s: row %zu is not an action object",
                             files[0], row_no);
                break;
            }
            const char *k;
            json_t *v;
            json_object_foreach(obj, k, v)
            {
                rc = st_delta_log_parse_action(k, v, table_path, a, c, err);
                if (rc) {
                    st_err_ctx(err, "checkpoint %s: row %zu", files[0], row_no);
                    break;
                }
            }
            json_decref(obj);
        }
        duckdb_destroy_data_chunk(&chunk);
    }
    duckdb_destroy_result(&res);
    return rc;
}

static char *sidecar_path(const char *table_path, const char *p)
{
    char *dec = st_delta_url_decode_path(p);
    if (!dec)
        return NULL;
    if (dec[0] == '/' || strchr(dec, ':')) {
        char *abs = st_delta_abs_path(table_path, p);
        st_free(dec);
        return abs;
    }
    char *r = st_sprintf("%s/_delta_log/_sidecars/%s", table_path, dec);
    st_free(dec);
    return r;
}

st_rc st_delta_checkpoint_read(st_engine *eng, const char *table_path, const st_delta_ckpt *ck,
                               st_arena *a, st_delta_commit *c, st_err *err)
{
    memset(c, 0, sizeof *c);
    c->commit_timestamp = -1;
    c->in_commit_timestamp = -1;
    c->checkpoint_metadata_version = -1;
    st_rc rc;
    if (ck->kind == ST_CKPT_V2_JSON) {
        char *data = NULL;
        size_t len = 0;
        rc = st_file_read(ck->files[0], (size_t)1 << 31, &data, &len, err);
        if (rc == ST_OK)
            rc = st_delta_log_parse_commit(data, len, ck->files[0], table_path, a, c, err);
        st_free(data);
    } else {
        rc = parquet_actions(eng, table_path, ck->files, (size_t)ck->n_parts, a, c, err);
    }
    if (rc)
        return rc;
    if (c->n_sidecars == 0)
        return ST_OK;
    if (ck->kind != ST_CKPT_V2_JSON && ck->kind != ST_CKPT_V2_PARQUET)
        return st_fail(err, ST_ERR_CORRUPT, "checkpoint %s: sidecar actions outside a V2 checkpoint",
                       ck->files[0]);
    char **paths = st_calloc(c->n_sidecars, sizeof *paths);
    if (!paths)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    size_t n = c->n_sidecars;
    for (size_t i = 0; rc == ST_OK && i < n; i++) {
        paths[i] = sidecar_path(table_path, c->sidecars[i].path);
        if (!paths[i])
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        else if (!st_path_exists(paths[i]))
            rc = st_fail(err, ST_ERR_NOTFOUND, "checkpoint %s: sidecar file %s is missing",
                         ck->files[0], paths[i]);
    }
    /* sidecars hold only add/remove rows; they cannot add more sidecars */
    size_t before = c->n_sidecars;
    if (rc == ST_OK)
        rc = parquet_actions(eng, table_path, paths, n, a, c, err);
    if (rc == ST_OK && c->n_sidecars != before)
        rc = st_fail(err, ST_ERR_CORRUPT, "checkpoint %s: a sidecar file lists sidecars",
                     ck->files[0]);
    for (size_t i = 0; i < n; i++)
        st_free(paths[i]);
    st_free(paths);
    return rc;
}
