/*
 * checkpoint.c - classic single-file Parquet checkpoints
 * (N.checkpoint.parquet with Spark's nested schema) and _last_checkpoint,
 * plus st_delta_cleanup_log (§Metadata Cleanup).  Rows are staged in a
 * DuckDB temp table with bounded INSERT batches, copied to a temporary
 * name and renamed, so a crash never leaves a partial checkpoint under the
 * final name.  checkpoint_read.c reads them back.
 */
#include "delta/write_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INSERT_BATCH 256

static const char *CKPT_DDL =
    "CREATE OR REPLACE TEMP TABLE __st_ckpt ("
    "\"txn\" STRUCT(\"appId\" VARCHAR, \"version\" BIGINT, \"lastUpdated\" BIGINT),"
    "\"add\" STRUCT(\"path\" VARCHAR, \"partitionValues\" MAP(VARCHAR, VARCHAR), \"size\" BIGINT,"
    " \"modificationTime\" BIGINT, \"dataChange\" BOOLEAN, \"stats\" VARCHAR,"
    " \"tags\" MAP(VARCHAR, VARCHAR), \"deletionVector\" STRUCT(\"storageType\" VARCHAR,"
    " \"pathOrInlineDv\" VARCHAR, \"offset\" INTEGER, \"sizeInBytes\" INTEGER,"
    " \"cardinality\" BIGINT, \"maxRowIndex\" BIGINT), \"baseRowId\" BIGINT,"
    " \"defaultRowCommitVersion\" BIGINT),"
    "\"remove\" STRUCT(\"path\" VARCHAR, \"deletionTimestamp\" BIGINT, \"dataChange\" BOOLEAN,"
    " \"extendedFileMetadata\" BOOLEAN, \"partitionValues\" MAP(VARCHAR, VARCHAR),"
    " \"size\" BIGINT, \"deletionVector\" STRUCT(\"storageType\" VARCHAR,"
    " \"pathOrInlineDv\" VARCHAR, \"offset\" INTEGER, \"sizeInBytes\" INTEGER,"
    " \"cardinality\" BIGINT, \"maxRowIndex\" BIGINT), \"baseRowId\" BIGINT,"
    " \"defaultRowCommitVersion\" BIGINT),"
    "\"metaData\" STRUCT(\"id\" VARCHAR, \"name\" VARCHAR, \"description\" VARCHAR,"
    " \"format\" STRUCT(\"provider\" VARCHAR, \"options\" MAP(VARCHAR, VARCHAR)),"
    " \"schemaString\" VARCHAR, \"partitionColumns\" VARCHAR[],"
    " \"configuration\" MAP(VARCHAR, VARCHAR), \"createdTime\" BIGINT),"
    "\"protocol\" STRUCT(\"minReaderVersion\" INTEGER, \"minWriterVersion\" INTEGER,"
    " \"readerFeatures\" VARCHAR[], \"writerFeatures\" VARCHAR[]),"
    "\"domainMetadata\" STRUCT(\"domain\" VARCHAR, \"configuration\" VARCHAR,"
    " \"removed\" BOOLEAN))";

static st_rc str_or_null(st_buf *b, const char *s)
{
    return s ? st_buf_sql_str(b, s) : st_buf_puts(b, "NULL");
}

static st_rc kv_map(st_buf *b, const st_kv *kv, size_t n)
{
    st_rc rc = st_buf_puts(b, "MAP {");
    for (size_t i = 0; rc == ST_OK && i < n; i++) {
        rc = i ? st_buf_puts(b, ", ") : ST_OK;
        rc = rc ? rc : st_buf_sql_str(b, kv[i].key);
        rc = rc ? rc : st_buf_puts(b, ": ");
        rc = rc ? rc : str_or_null(b, kv[i].value);
    }
    return rc ? rc : st_buf_puts(b, "}::MAP(VARCHAR, VARCHAR)");
}

/* tags are kept as JSON text in the snapshot; the checkpoint wants a map */
static st_rc tags_map(st_buf *b, const char *tags)
{
    if (!tags)
        return st_buf_puts(b, "NULL");
    json_t *j = json_loads(tags, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return st_buf_puts(b, "NULL");
    }
    st_rc rc = st_buf_puts(b, "MAP {");
    const char *k;
    json_t *v;
    size_t i = 0;
    json_object_foreach(j, k, v)
    {
        rc = rc ? rc : (i++ ? st_buf_puts(b, ", ") : ST_OK);
        rc = rc ? rc : st_buf_sql_str(b, k);
        rc = rc ? rc : st_buf_puts(b, ": ");
        rc = rc ? rc : str_or_null(b, json_string_value(v));
    }
    json_decref(j);
    return rc ? rc : st_buf_puts(b, "}::MAP(VARCHAR, VARCHAR)");
}

static st_rc dv_struct(st_buf *b, bool has, const st_delta_dv *dv)
{
    if (!has)
        return st_buf_puts(b, "NULL");
    st_rc rc = st_buf_printf(b, "{'storageType': '%c', 'pathOrInlineDv': ", dv->storage_type);
    rc = rc ? rc : str_or_null(b, dv->path_or_inline);
    if (rc == ST_OK && dv->offset >= 0)
        rc = st_buf_printf(b, ", 'offset': %d", (int)dv->offset);
    else
        rc = rc ? rc : st_buf_puts(b, ", 'offset': NULL");
    rc = rc ? rc
            : st_buf_printf(b, ", 'sizeInBytes': %d, 'cardinality': %lld, 'maxRowIndex': ",
                            (int)dv->size_in_bytes, (long long)dv->cardinality);
    rc = rc ? rc
            : (dv->max_row_index >= 0 ? st_buf_printf(b, "%d", (int)dv->max_row_index)
                                       : st_buf_puts(b, "NULL"));
    return rc ? rc : st_buf_putc(b, '}');
}

static st_rc list_lit(st_buf *b, char **items, size_t n, bool present)
{
    if (!present)
        return st_buf_puts(b, "NULL");
    st_rc rc = st_buf_putc(b, '[');
    for (size_t i = 0; rc == ST_OK && i < n; i++) {
        rc = i ? st_buf_puts(b, ", ") : ST_OK;
        rc = rc ? rc : st_buf_sql_str(b, items[i]);
    }
    return rc ? rc : st_buf_puts(b, "]::VARCHAR[]");
}

static st_rc i64_or_null(st_buf *b, int64_t v)
{
    return v >= 0 ? st_buf_printf(b, "%lld", (long long)v) : st_buf_puts(b, "NULL");
}

/* Appends one row tuple; kind selects the action column that is set. */
static st_rc row_add(st_buf *b, const st_delta_file *f)
{
    st_rc rc = st_buf_puts(b, "(NULL, {'path': ");
    rc = rc ? rc : st_buf_sql_str(b, f->path);
    rc = rc ? rc : st_buf_puts(b, ", 'partitionValues': ");
    rc = rc ? rc : kv_map(b, f->part, f->n_part);
    rc = rc ? rc
            : st_buf_printf(b, ", 'size': %lld, 'modificationTime': %lld, 'dataChange': %s, 'stats': ",
                            (long long)f->size, (long long)f->modification_time,
                            f->data_change ? "true" : "false");
    rc = rc ? rc : str_or_null(b, f->stats);
    rc = rc ? rc : st_buf_puts(b, ", 'tags': ");
    rc = rc ? rc : tags_map(b, f->tags);
    rc = rc ? rc : st_buf_puts(b, ", 'deletionVector': ");
    rc = rc ? rc : dv_struct(b, f->has_dv, &f->dv);
    rc = rc ? rc : st_buf_puts(b, ", 'baseRowId': ");
    rc = rc ? rc : i64_or_null(b, f->base_row_id);
    rc = rc ? rc : st_buf_puts(b, ", 'defaultRowCommitVersion': ");
    rc = rc ? rc : i64_or_null(b, f->default_row_commit_version);
    return rc ? rc : st_buf_puts(b, "}, NULL, NULL, NULL, NULL)");
}

static st_rc row_remove(st_buf *b, const st_delta_tombstone *t)
{
    st_rc rc = st_buf_puts(b, "(NULL, NULL, {'path': ");
    rc = rc ? rc : st_buf_sql_str(b, t->path);
    rc = rc ? rc
            : st_buf_printf(b,
                            ", 'deletionTimestamp': %lld, 'dataChange': %s, "
                            "'extendedFileMetadata': %s, 'partitionValues': ",
                            (long long)t->deletion_timestamp, t->data_change ? "true" : "false",
                            t->extended_file_metadata ? "true" : "false");
    rc = rc ? rc : kv_map(b, t->part, t->n_part);
    rc = rc ? rc : st_buf_puts(b, ", 'size': ");
    rc = rc ? rc : i64_or_null(b, t->size);
    rc = rc ? rc : st_buf_puts(b, ", 'deletionVector': ");
    rc = rc ? rc : dv_struct(b, t->has_dv, &t->dv);
    return rc ? rc : st_buf_puts(b, ", 'baseRowId': NULL, 'defaultRowCommitVersion': NULL}, NULL, NULL, NULL)");
}

static st_rc flush_rows(st_engine *eng, st_buf *b, size_t *n_rows, st_err *err)
{
    if (*n_rows == 0)
        return ST_OK;
    st_rc rc = st_engine_exec(eng, b->data, err);
    st_buf_reset(b);
    *n_rows = 0;
    return rc;
}

static st_rc begin_rows(st_buf *b, size_t *n_rows)
{
    st_rc rc = *n_rows ? st_buf_puts(b, ", ") : st_buf_puts(b, "INSERT INTO __st_ckpt VALUES ");
    (*n_rows)++;
    return rc;
}

st_rc st_deltaw_checkpoint_snapshot(st_engine *eng, const st_delta_snapshot *s, st_err *err)
{
    const st_delta_metadata *m = &s->metadata;
    const st_delta_protocol *p = &s->protocol;
    char *log_dir = st_path_join(s->table_path, "_delta_log");
    char *final = st_sprintf("%s/%020lld.checkpoint.parquet", log_dir ? log_dir : "",
                             (long long)s->version);
    char uuid[37];
    st_uuid4(uuid);
    char *tmp = st_sprintf("%s/.tmp-%s.checkpoint.parquet", log_dir ? log_dir : "", uuid);
    st_buf b;
    st_buf_init(&b, 0);
    size_t n_rows = 0;
    int64_t total = 0;
    st_rc rc = (log_dir && final && tmp) ? st_engine_exec(eng, CKPT_DDL, err) : ST_ERR_NOMEM;
    /* protocol and metaData */
    rc = rc ? rc : begin_rows(&b, &n_rows);
    rc = rc ? rc
            : st_buf_printf(&b, "(NULL, NULL, NULL, NULL, {'minReaderVersion': %d, "
                                "'minWriterVersion': %d, 'readerFeatures': ",
                            p->min_reader, p->min_writer);
    rc = rc ? rc : list_lit(&b, p->reader_features, p->n_reader_features, p->reader_features != NULL);
    rc = rc ? rc : st_buf_puts(&b, ", 'writerFeatures': ");
    rc = rc ? rc : list_lit(&b, p->writer_features, p->n_writer_features, p->writer_features != NULL);
    rc = rc ? rc : st_buf_puts(&b, "}, NULL)");
    rc = rc ? rc : begin_rows(&b, &n_rows);
    rc = rc ? rc : st_buf_puts(&b, "(NULL, NULL, NULL, {'id': ");
    rc = rc ? rc : str_or_null(&b, m->id);
    rc = rc ? rc : st_buf_puts(&b, ", 'name': ");
    rc = rc ? rc : str_or_null(&b, m->name);
    rc = rc ? rc : st_buf_puts(&b, ", 'description': ");
    rc = rc ? rc : str_or_null(&b, m->description);
    rc = rc ? rc : st_buf_puts(&b, ", 'format': {'provider': ");
    rc = rc ? rc : str_or_null(&b, m->format_provider ? m->format_provider : "parquet");
    rc = rc ? rc : st_buf_puts(&b, ", 'options': MAP {}::MAP(VARCHAR, VARCHAR)}, 'schemaString': ");
    rc = rc ? rc : str_or_null(&b, m->schema_string);
    rc = rc ? rc : st_buf_puts(&b, ", 'partitionColumns': ");
    rc = rc ? rc : list_lit(&b, m->partition_columns, m->n_partition_columns, true);
    rc = rc ? rc : st_buf_puts(&b, ", 'configuration': ");
    rc = rc ? rc : kv_map(&b, m->configuration, m->n_configuration);
    rc = rc ? rc : st_buf_puts(&b, ", 'createdTime': ");
    rc = rc ? rc : i64_or_null(&b, m->created_time);
    rc = rc ? rc : st_buf_puts(&b, "}, NULL, NULL)");
    total += 2;
    for (size_t i = 0; rc == ST_OK && i < s->n_txns; i++) {
        rc = begin_rows(&b, &n_rows);
        rc = rc ? rc : st_buf_puts(&b, "({'appId': ");
        rc = rc ? rc : st_buf_sql_str(&b, s->txns[i].app_id);
        rc = rc ? rc : st_buf_printf(&b, ", 'version': %lld, 'lastUpdated': ", (long long)s->txns[i].version);
        rc = rc ? rc : i64_or_null(&b, s->txns[i].last_updated);
        rc = rc ? rc : st_buf_puts(&b, "}, NULL, NULL, NULL, NULL, NULL)");
        total++;
    }
    for (size_t i = 0; rc == ST_OK && i < s->n_domains; i++) {
        if (s->domains[i].removed)
            continue;
        rc = begin_rows(&b, &n_rows);
        rc = rc ? rc : st_buf_puts(&b, "(NULL, NULL, NULL, NULL, NULL, {'domain': ");
        rc = rc ? rc : st_buf_sql_str(&b, s->domains[i].domain);
        rc = rc ? rc : st_buf_puts(&b, ", 'configuration': ");
        rc = rc ? rc : str_or_null(&b, s->domains[i].configuration);
        rc = rc ? rc : st_buf_puts(&b, ", 'removed': false})");
        total++;
    }
    rc = rc ? rc : flush_rows(eng, &b, &n_rows, err);
    for (size_t i = 0; rc == ST_OK && i < s->n_files; i++) {
        rc = begin_rows(&b, &n_rows);
        rc = rc ? rc : row_add(&b, s->files[i]);
        total++;
        if (rc == ST_OK && n_rows >= INSERT_BATCH)
            rc = flush_rows(eng, &b, &n_rows, err);
    }
    int64_t keep_ms = st_deltaw_interval_ms(st_delta_config(s, "delta.deletedFileRetentionDuration", NULL),
                                            7LL * 86400000);
    int64_t cutoff = st_now_ms() - keep_ms;
    for (size_t i = 0; rc == ST_OK && i < s->n_tombstones; i++) {
        if (s->tombstones[i]->deletion_timestamp < cutoff)
            continue;   /* expired tombstones are dropped, as the spec allows */
        rc = begin_rows(&b, &n_rows);
        rc = rc ? rc : row_remove(&b, s->tombstones[i]);
        total++;
        if (rc == ST_OK && n_rows >= INSERT_BATCH)
            rc = flush_rows(eng, &b, &n_rows, err);
    }
    rc = rc ? rc : flush_rows(eng, &b, &n_rows, err);
    if (rc == ST_OK) {
        st_buf_reset(&b);
        rc = st_buf_puts(&b, "COPY __st_ckpt TO ");
        rc = rc ? rc : st_buf_sql_str(&b, tmp);
        rc = rc ? rc : st_buf_puts(&b, " (FORMAT parquet, COMPRESSION snappy)");
        rc = rc ? rc : st_engine_exec(eng, b.data, err);
    }
    st_engine_exec(eng, "DROP TABLE IF EXISTS __st_ckpt", NULL);
    if (rc == ST_OK) {
        rc = st_fsync_path(tmp, err);
        if (rc == ST_OK && rename(tmp, final) != 0)
            rc = st_fail_errno(err, ST_ERR_IO, "renaming checkpoint to %s", final);
    }
    if (rc == ST_OK) {
        struct stat st;
        int64_t bytes = stat(final, &st) == 0 ? (int64_t)st.st_size : 0;
        char *last = st_path_join(log_dir, "_last_checkpoint");
        char *json = st_sprintf("{\"version\":%lld,\"size\":%lld,\"sizeInBytes\":%lld,\"numOfAddFiles\":%zu}\n",
                                (long long)s->version, (long long)total, (long long)bytes, s->n_files);
        rc = (last && json) ? st_file_write_atomic(last, json, strlen(json), err) : ST_ERR_NOMEM;
        st_free(last);
        st_free(json);
    }
    if (rc) {
        if (tmp)
            unlink(tmp);
        st_err_ctx(err, "table %s: checkpoint at version %lld", s->table_path, (long long)s->version);
    }
    st_buf_free(&b);
    st_free(log_dir);
    st_free(final);
    st_free(tmp);
    return rc;
}

st_rc st_delta_checkpoint(st_engine *eng, const char *table_path, int64_t *out_version,
                          st_err *err)
{
    st_delta_snapshot *s = NULL;
    st_rc rc = st_delta_snapshot_load(eng, table_path, -1, &s, err);
    rc = rc ? rc : st_deltaw_checkpoint_snapshot(eng, s, err);
    if (rc == ST_OK && out_version)
        *out_version = s->version;
    st_delta_snapshot_free(s);
    return rc;
}

static int64_t file_mtime_ms(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

st_rc st_delta_cleanup_log(st_engine *eng, const char *table_path, int64_t now_ms,
                           int64_t *n_removed, st_err *err)
{
    st_delta_snapshot *s = NULL;
    st_delta_listing *l = NULL;
    int64_t removed = 0;
    st_rc rc = st_delta_snapshot_load(eng, table_path, -1, &s, err);
    rc = rc ? rc : st_delta_list_log(table_path, &l, err);
    if (rc)
        goto done;
    if (now_ms <= 0)
        now_ms = st_now_ms();
    int64_t keep = st_deltaw_interval_ms(st_delta_config(s, "delta.logRetentionDuration", NULL),
                                         30LL * 86400000);
    int64_t cutoff = now_ms - keep;
    /* the newest checkpoint whose commit is older than the cutoff: every
     * retained version can be rebuilt from it and the commits after it */
    int64_t anchor = -1;
    for (size_t i = 0; i < l->n_ckpts; i++) {
        int64_t v = l->ckpts[i].version;
        int64_t ts = -1;
        if (st_delta_commit_timestamp(table_path, v, &ts, NULL) != ST_OK)
            ts = file_mtime_ms(l->ckpts[i].files[0]);
        if (ts >= 0 && ts <= cutoff && v > anchor && v <= s->version)
            anchor = v;
    }
    if (anchor <= 0)
        goto done;
    for (size_t i = 0; i < l->n_commits; i++) {
        int64_t v = l->commits[i];
        if (v >= anchor)
            continue;
        char *p = st_delta_commit_path(table_path, v);
        if (p && unlink(p) == 0)
            removed++;
        char *crc = st_sprintf("%s/_delta_log/%020lld.crc", table_path, (long long)v);
        if (crc && unlink(crc) == 0)
            removed++;
        st_free(p);
        st_free(crc);
    }
    for (size_t i = 0; i < l->n_ckpts; i++) {
        if (l->ckpts[i].version >= anchor)
            continue;
        for (int k = 0; k < l->ckpts[i].n_parts; k++)
            if (unlink(l->ckpts[i].files[k]) == 0)
                removed++;
    }
done:
    if (rc == ST_OK && n_removed)
        *n_removed = removed;
    st_delta_listing_free(l);
    st_delta_snapshot_free(s);
    return rc;
}
