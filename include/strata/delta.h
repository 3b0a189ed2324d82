/*
 * delta.h - Delta Lake tables on the local filesystem.
 *
 * Strata owns the transaction log (_delta_log/N.json, checkpoints); DuckDB
 * writes and reads the Parquet data files.  See src/delta/README.md for the
 * supported protocol features.
 *
 * Objects:
 *   st_delta_schema    the table schema (Spark JSON <-> tree)
 *   st_delta_snapshot  the table state at one version: protocol, metadata,
 *                      live files, app transactions; immutable once loaded
 *   st_delta_txn       one commit in preparation (optimistic concurrency)
 *
 * Ownership: every *_load, *_begin and *_parse output is OWNED by the caller and
 * released with the matching *_free or *_abort.  Strings inside a snapshot are
 * BORROWED and live as long as the snapshot.
 */
#ifndef STRATA_DELTA_H
#define STRATA_DELTA_H

#include "strata/core.h"
#include "strata/engine.h"

/* ---------------------------------------------------------------- schema */

typedef enum st_dtype_kind {
    ST_DT_BOOLEAN,
    ST_DT_BYTE,
    ST_DT_SHORT,
    ST_DT_INTEGER,
    ST_DT_LONG,
    ST_DT_FLOAT,
    ST_DT_DOUBLE,
    ST_DT_DECIMAL,
    ST_DT_STRING,
    ST_DT_BINARY,
    ST_DT_DATE,
    ST_DT_TIMESTAMP,      /* microseconds, UTC-adjusted */
    ST_DT_TIMESTAMP_NTZ,  /* microseconds, no time zone */
    ST_DT_STRUCT,
    ST_DT_ARRAY,
    ST_DT_MAP,
} st_dtype_kind;

typedef struct st_dfield st_dfield;

typedef struct st_dtype {
    st_dtype_kind kind;
    int precision, scale;        /* DECIMAL */
    st_dfield *fields;           /* STRUCT */
    size_t n_fields;
    struct st_dtype *elem;       /* ARRAY element, MAP key */
    struct st_dtype *value;      /* MAP value */
    bool contains_null;          /* ARRAY */
    bool value_contains_null;    /* MAP */
} st_dtype;

struct st_dfield {
    char *name;
    st_dtype type;
    bool nullable;
    char *metadata_json;   /* the field's "metadata" object as JSON text, "{}" when empty */
    int64_t cm_id;         /* delta.columnMapping.id, 0 when absent */
    char *physical_name;   /* delta.columnMapping.physicalName, NULL when absent */
};

typedef struct st_delta_schema {
    st_dfield *fields;
    size_t n_fields;
} st_delta_schema;

/* Parses a Spark schema JSON string ({"type":"struct","fields":[...]}). */
st_rc st_delta_schema_parse(const char *json, st_delta_schema **out, st_err *err);
/* Serializes to Spark schema JSON, OWNED. */
char *st_delta_schema_to_json(const st_delta_schema *s);
st_delta_schema *st_delta_schema_copy(const st_delta_schema *s);
void st_delta_schema_free(st_delta_schema *s);
/* Parses a compact declaration "id long not null, name string, amount decimal(18,2),
 * tags array<string>, attrs map<string,string>, addr struct<city:string,zip:string>". */
st_rc st_delta_schema_from_ddl(const char *ddl, st_delta_schema **out, st_err *err);
/* Renders a type as DuckDB SQL ("DECIMAL(18,2)", "STRUCT(\"a\" INTEGER)", ...), OWNED. */
char *st_delta_type_sql(const st_dtype *t);
/* Renders a type in Delta's DDL style ("decimal(18,2)", "array<string>"), OWNED. */
char *st_delta_type_ddl(const st_dtype *t);
/* Maps a DuckDB logical type to a Delta type; ST_ERR_UNSUPPORTED names the type. */
st_rc st_delta_type_from_duckdb(duckdb_logical_type lt, st_dtype *out, st_err *err);
const st_dfield *st_delta_schema_find(const st_delta_schema *s, const char *name);

/* ---------------------------------------------------------------- snapshot */

typedef struct st_kv {
    char *key;
    char *value;   /* NULL = JSON null */
} st_kv;

typedef struct st_delta_dv {
    char storage_type;       /* 'u', 'i' or 'p' */
    char *path_or_inline;
    int32_t offset;          /* -1 when absent */
    int32_t size_in_bytes;
    int64_t cardinality;
    int32_t max_row_index;   /* -1 when absent */
} st_delta_dv;

typedef struct st_delta_file {
    char *path;              /* as in the log (relative URI, percent-encoded) */
    char *abs_path;          /* decoded filesystem path */
    st_kv *part;             /* partition values, as strings */
    size_t n_part;
    int64_t size;
    int64_t modification_time;
    bool data_change;
    char *stats;             /* JSON text or NULL */
    char *tags;              /* JSON object text or NULL */
    bool has_dv;
    st_delta_dv dv;
    int64_t base_row_id;     /* -1 when absent */
    int64_t default_row_commit_version; /* -1 when absent */
    int64_t num_records;     /* from stats, -1 when unknown */
} st_delta_file;

typedef struct st_delta_tombstone {
    char *path;
    char *abs_path;
    int64_t deletion_timestamp;
    bool data_change;
    bool extended_file_metadata;
    st_kv *part;
    size_t n_part;
    int64_t size;            /* -1 when absent */
    bool has_dv;
    st_delta_dv dv;
} st_delta_tombstone;

typedef struct st_delta_protocol {
    int min_reader;
    int min_writer;
    char **reader_features;  /* NULL when the version has no feature lists */
    size_t n_reader_features;
    char **writer_features;
    size_t n_writer_features;
} st_delta_protocol;

typedef struct st_delta_metadata {
    char *id;
    char *name;
    char *description;
    char *format_provider;   /* "parquet" */
    char *schema_string;
    st_delta_schema *schema;
    char **partition_columns;
    size_t n_partition_columns;
    st_kv *configuration;
    size_t n_configuration;
    int64_t created_time;    /* -1 when absent */
} st_delta_metadata;

typedef struct st_delta_apptxn {
    char *app_id;
    int64_t version;
    int64_t last_updated;    /* -1 when absent */
} st_delta_apptxn;

typedef struct st_delta_domain {
    char *domain;
    char *configuration;
    bool removed;
} st_delta_domain;

typedef struct st_delta_snapshot {
    char *table_path;             /* filesystem path of the table root */
    int64_t version;
    int64_t timestamp_ms;         /* commit timestamp of `version` */
    st_delta_protocol protocol;
    st_delta_metadata metadata;
    st_delta_file **files;        /* live files, sorted by path */
    size_t n_files;
    st_delta_tombstone **tombstones;
    size_t n_tombstones;
    st_delta_apptxn *txns;
    size_t n_txns;
    st_delta_domain *domains;
    size_t n_domains;
    int64_t checkpoint_version;   /* checkpoint the replay started from, -1 none */
    st_arena *arena;              /* owns everything above */
} st_delta_snapshot;

/* Loads the table at `version` (-1 = latest): newest complete checkpoint at
 * or below it, then JSON commits.  Refuses unknown reader features with
 * ST_ERR_UNSUPPORTED naming the feature.  `eng` reads Parquet checkpoints. */
st_rc st_delta_snapshot_load(st_engine *eng, const char *table_path, int64_t version,
                             st_delta_snapshot **out, st_err *err);
/* Loads the latest version whose commit timestamp is <= ts_ms (time travel
 * by timestamp); ST_ERR_NOTFOUND when ts_ms precedes the first commit. */
st_rc st_delta_snapshot_at_time(st_engine *eng, const char *table_path, int64_t ts_ms,
                                st_delta_snapshot **out, st_err *err);
void st_delta_snapshot_free(st_delta_snapshot *s);
/* Latest version number by listing the log (no replay), -1 if no table. */
st_rc st_delta_latest_version(const char *table_path, int64_t *out, st_err *err);
/* Value of a table property or def. */
const char *st_delta_config(const st_delta_snapshot *s, const char *key, const char *def);
/* Commit timestamp of one version (inCommitTimestamp or commitInfo.timestamp
 * or file mtime, in that order). */
st_rc st_delta_commit_timestamp(const char *table_path, int64_t version, int64_t *out_ms,
                                st_err *err);

/* ---------------------------------------------------------------- reading */

/* Builds a SELECT that returns the snapshot's rows with logical column
 * names and types (partition values, column mapping, deletion vectors and
 * missing columns resolved).  If `predicate` is not NULL, files that cannot
 * match it (partition values, min/max stats) are skipped and the predicate
 * is applied.  OWNED *out_sql.  May create temp tables in eng for deletion
 * vectors, so the SQL is valid on eng only. */
st_rc st_delta_scan_sql(st_engine *eng, const st_delta_snapshot *s, const char *predicate,
                        char **out_sql, st_err *err);
/* CREATE OR REPLACE VIEW name AS <scan sql>. */
st_rc st_delta_register_view(st_engine *eng, const char *view_name, const st_delta_snapshot *s,
                             st_err *err);
/* Selects the files that may hold rows matching predicate (NULL = all).
 * OWNED *out array of BORROWED file pointers. */
st_rc st_delta_prune(const st_delta_snapshot *s, const char *predicate, st_delta_file ***out,
                     size_t *n_out, st_err *err);

/* Change data feed between two versions (inclusive) as a SELECT with the
 * table columns plus _change_type, _commit_version, _commit_timestamp. */
st_rc st_delta_changes_sql(st_engine *eng, const char *table_path, int64_t from_version,
                           int64_t to_version, char **out_sql, st_err *err);

/* ---------------------------------------------------------------- writing */

typedef struct st_delta_create_opts {
    const char *name;                  /* metaData.name, optional */
    const char *description;
    const char *const *partition_by;
    size_t n_partition_by;
    const st_kv *properties;           /* table properties (delta.*) */
    size_t n_properties;
} st_delta_create_opts;

/* Creates an empty table (version 0) at path with the given schema.
 * ST_ERR_EXISTS if a table is already there. */
st_rc st_delta_create(const char *table_path, const st_delta_schema *schema,
                      const st_delta_create_opts *opts, st_err *err);

typedef struct st_delta_txn st_delta_txn;

/* Begins a transaction on the latest snapshot (or on `base` if not NULL;
 * the txn then BORROWS base).  `operation` names it in commitInfo ("WRITE",
 * "DELETE", ...). */
st_rc st_delta_txn_begin(st_engine *eng, const char *table_path, const st_delta_snapshot *base,
                         const char *operation, st_delta_txn **out, st_err *err);
/* The snapshot the transaction reads from (BORROWED). */
const st_delta_snapshot *st_delta_txn_snapshot(const st_delta_txn *t);
/* Adds a data file; `f` is copied.  data_change as in the protocol. */
st_rc st_delta_txn_add(st_delta_txn *t, const st_delta_file *f, st_err *err);
/* Removes a live file of the read snapshot (marks it read, for conflicts). */
st_rc st_delta_txn_remove(st_delta_txn *t, const st_delta_file *f, bool data_change, st_err *err);
/* Adds a change-data file (path relative to the table root). */
st_rc st_delta_txn_add_cdc(st_delta_txn *t, const char *path, const st_kv *part, size_t n_part,
                           int64_t size, st_err *err);
/* Replaces the schema (evolution) and/or configuration. */
st_rc st_delta_txn_set_schema(st_delta_txn *t, const st_delta_schema *schema, st_err *err);
st_rc st_delta_txn_set_property(st_delta_txn *t, const char *key, const char *value, st_err *err);
/* Records an application transaction for idempotent writes. */
st_rc st_delta_txn_set_app(st_delta_txn *t, const char *app_id, int64_t version, st_err *err);
/* Declares what the txn read, for conflict detection: the whole table
 * (predicate NULL) or the files matching a predicate over partition columns. */
void st_delta_txn_read_predicate(st_delta_txn *t, const char *predicate);
/* Adds a key/value to commitInfo.operationParameters. */
st_rc st_delta_txn_param(st_delta_txn *t, const char *key, const char *value, st_err *err);
/* Commits.  On a lost race the winning commits are read; blind appends and
 * non-overlapping changes are rebased and retried, real conflicts fail with
 * ST_ERR_CONFLICT naming the winning version and the reason.  Writes a
 * checkpoint when the interval says so.  The txn is freed either way. */
st_rc st_delta_txn_commit(st_delta_txn *t, int64_t *out_version, st_err *err);
void st_delta_txn_abort(st_delta_txn *t);

/* ---------------------------------------------------------------- operations */

typedef enum st_delta_mode {
    ST_DELTA_APPEND,
    ST_DELTA_OVERWRITE,        /* whole table, or partitions matching replace_where */
} st_delta_mode;

typedef struct st_delta_write_opts {
    st_delta_mode mode;
    const char *replace_where;   /* OVERWRITE: predicate over partition columns */
    bool merge_schema;           /* allow new nullable columns and widening */
    const char *app_id;          /* idempotent write: skipped if app_version <= recorded */
    int64_t app_version;
    int64_t target_file_rows;    /* rows per file hint, 0 = default */
    int64_t row_group_rows;      /* 0 = default (1M) */
    int compression_level;       /* zstd level of the data files, 0 = default (3) */
    const char *operation;       /* commitInfo operation, default WRITE */
} st_delta_write_opts;

typedef struct st_delta_result {
    int64_t version;            /* committed version, or -1 if nothing was committed */
    int64_t rows_written;
    int64_t rows_deleted;
    int64_t rows_updated;
    int64_t files_added;
    int64_t files_removed;
    int64_t bytes_added;
    bool skipped;               /* idempotent write already applied */
} st_delta_result;

/* Writes the rows of select_sql (evaluated on eng) to the table.  Column
 * names must match the schema; with merge_schema new columns are added. */
st_rc st_delta_write(st_engine *eng, const char *table_path, const char *select_sql,
                     const st_delta_write_opts *opts, st_delta_result *res, st_err *err);
/* Hard delete of rows matching predicate (copy-on-write of touched files). */
st_rc st_delta_delete(st_engine *eng, const char *table_path, const char *predicate,
                      st_delta_result *res, st_err *err);
/* UPDATE table SET <set_sql> WHERE predicate; set_sql like "a = a + 1, b = 'x'". */
st_rc st_delta_update(st_engine *eng, const char *table_path, const char *set_sql,
                      const char *predicate, st_delta_result *res, st_err *err);
/* Restores the table content of `version` as a new commit. */
st_rc st_delta_restore(st_engine *eng, const char *table_path, int64_t version,
                       st_delta_result *res, st_err *err);

typedef struct st_delta_optimize_opts {
    int64_t target_size;         /* bytes, default 128 MiB */
    int64_t min_file_size;       /* files at or above are left alone, default target*3/4 */
    const char *const *zorder_by;/* sort columns within each compacted file */
    size_t n_zorder_by;
    const char *partition_filter;
} st_delta_optimize_opts;
st_rc st_delta_optimize(st_engine *eng, const char *table_path, const st_delta_optimize_opts *o,
                        st_delta_result *res, st_err *err);

typedef struct st_delta_vacuum_opts {
    double retention_hours;      /* < 0 = table setting or 168 */
    bool dry_run;
    bool force;                  /* allow retention below the table's setting */
} st_delta_vacuum_opts;
/* Deletes data files not referenced by the table and older than the
 * retention.  *out_paths (if not NULL) receives the list, OWNED (free each
 * and the array). */
st_rc st_delta_vacuum(st_engine *eng, const char *table_path, const st_delta_vacuum_opts *o,
                      char ***out_paths, size_t *n_out, st_err *err);
/* Writes a classic checkpoint for the latest version and _last_checkpoint. */
st_rc st_delta_checkpoint(st_engine *eng, const char *table_path, int64_t *out_version,
                          st_err *err);
/* Deletes log files older than delta.logRetentionDuration that no retained
 * version needs.  Returns the number removed. */
st_rc st_delta_cleanup_log(st_engine *eng, const char *table_path, int64_t now_ms,
                           int64_t *n_removed, st_err *err);

/* ---------------------------------------------------------------- deletion vector writing */

/* Writes a deletion vector file `deletion_vector_<uuid>.bin` at the table
 * root holding `positions` (row indexes in one data file, any order,
 * duplicates allowed) united with the rows of `existing` (the file's current
 * DV, or NULL).  *out describes it (storage 'u', offset 1, cardinality);
 * out->path_or_inline is OWNED (st_delta_dv_clear).  *out_bytes (may be NULL)
 * receives the file size.  Tables using DVs need protocol 3/7 with the
 * deletionVectors feature and delta.enableDeletionVectors=true. */
st_rc st_delta_dv_build(const char *table_path, const uint64_t *positions, size_t n,
                        const st_delta_dv *existing, st_delta_dv *out, int64_t *out_bytes,
                        st_err *err);
/* Frees what st_delta_dv_build allocated in dv and resets it; NULL is fine. */
void st_delta_dv_clear(st_delta_dv *dv);
/* Sets delta.enableDeletionVectors=true in a commit of its own, which raises
 * the protocol to reader 3 / writer 7 with the deletionVectors feature
 * (keeping the features the old versions implied); no-op when already there.
 * Same as st_delta_txn_set_property of that key, or st_delta_create with it.
 * ST_ERR_CONFLICT on a concurrent metadata change. */
st_rc st_delta_dv_enable(st_engine *eng, const char *table_path, st_err *err);

#endif
