/*
 * engine.h - a thin wrapper over DuckDB: open/close, SQL with DuckDB's error
 * text surfaced, appenders, Parquet writes that report per-file statistics,
 * Parquet reads, and helpers to walk result vectors.
 *
 * One st_engine owns one database and one connection; it is not thread-safe
 * (open one per thread).  Sessions run with TimeZone=UTC.
 */
#ifndef STRATA_ENGINE_H
#define STRATA_ENGINE_H

#include "strata/core.h"

#include <duckdb.h>

typedef struct st_engine st_engine;

typedef struct st_engine_opts {
    const char *path;          /* database file, NULL = in memory */
    int threads;               /* 0 = DuckDB default */
    const char *memory_limit;  /* e.g. "2GB", NULL = default */
    const char *temp_dir;      /* spill directory, NULL = default */
} st_engine_opts;

/* @param[in] opts may be NULL for an in-memory engine with defaults.
 * @param[out] out OWNED, close with st_engine_close. */
st_rc st_engine_open(const st_engine_opts *opts, st_engine **out, st_err *err);
/* A second connection to parent's database, for queries on another thread
 * (DuckDB runs a query on the thread that calls it).  Close it before the
 * parent. */
st_rc st_engine_connect(st_engine *parent, st_engine **out, st_err *err);
void st_engine_close(st_engine *e);
/* BORROWED: valid until st_engine_close. */
duckdb_connection st_engine_conn(st_engine *e);

/* Runs SQL, discarding any result. */
st_rc st_engine_exec(st_engine *e, const char *sql, st_err *err);
st_rc st_engine_execf(st_engine *e, st_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Runs SQL; on success *out must be released with duckdb_destroy_result. */
st_rc st_engine_query(st_engine *e, const char *sql, duckdb_result *out, st_err *err);
/* First column of first row as int64 (NULL -> ST_ERR_NOTFOUND). */
st_rc st_engine_query_i64(st_engine *e, const char *sql, int64_t *out, st_err *err);
/* First column of first row as text, OWNED (st_free); NULL value -> *out NULL. */
st_rc st_engine_query_str(st_engine *e, const char *sql, char **out, st_err *err);

/* An appender on table (optionally "schema.table"); destroy with duckdb_appender_destroy. */
st_rc st_engine_appender(st_engine *e, const char *table, duckdb_appender *out, st_err *err);
/* Flushes and destroys, surfacing the appender's error text. */
st_rc st_engine_appender_close(duckdb_appender *app, st_err *err);

/* ---- Parquet ---- */

typedef struct st_col_stats {
    char *name;          /* column path as DuckDB reports it: quoted identifiers
                            joined by dots, e.g. "a" or "st"."x" (quotes included) */
    char *min;           /* NULL when unknown */
    char *max;
    int64_t null_count;  /* -1 when unknown */
} st_col_stats;

typedef struct st_parquet_file {
    char *path;              /* as written (absolute or as given in dest) */
    int64_t rows;
    int64_t size;
    size_t n_cols;
    st_col_stats *cols;
    size_t n_parts;          /* hive partition keys, when partitioned */
    char **part_keys;
    char **part_values;      /* NULL entry = NULL partition value */
} st_parquet_file;

typedef struct st_parquet_opts {
    const char *compression;         /* default "zstd" */
    int compression_level;           /* zstd level, 0 = DuckDB's default (3) */
    int64_t row_group_size;          /* rows, default 1,048,576 */
    const char *const *partition_by; /* columns for hive-style directories */
    size_t n_partition_by;
    int64_t file_size_bytes;         /* roll files at this size, 0 = one file (per partition) */
    int64_t row_groups_per_file;     /* roll files after this many row groups, 0 = no limit */
    const char *file_prefix;         /* file name prefix, default "part-" */
} st_parquet_opts;

/* Writes the rows of select_sql as Parquet files under directory dest and
 * returns one entry per file written with its statistics.
 * @param[out] out OWNED array, free with st_parquet_files_free.  A query that
 * produces no rows yields *n_out == 0 and no file. */
st_rc st_engine_write_parquet(st_engine *e, const char *select_sql, const char *dest,
                              const st_parquet_opts *opts, st_parquet_file **out, size_t *n_out,
                              st_err *err);
void st_parquet_files_free(st_parquet_file *files, size_t n);

/* ---- walking results ---- */

/* Appends the value at row of vector v (of logical type t) as JSON: numbers
 * bare, strings quoted, structs as objects, lists as arrays, maps as objects
 * when keys are strings else as [[k,v],...].  Used for stats and for output. */
st_rc st_engine_value_json(duckdb_vector v, duckdb_logical_type t, idx_t row, st_buf *out);
/* Appends the value as plain text (NULL -> nothing, returns false in *is_null). */
st_rc st_engine_value_text(duckdb_vector v, duckdb_logical_type t, idx_t row, st_buf *out,
                           bool *is_null);

#endif
