/*
 * extract_int.h - internals of the extraction module: the parsed source
 * configuration, the driver interface every connector implements, the
 * column mapping, and the run state kept in SQLite.
 *
 * Data flow: config.c parses strata.yml -> run.c plans a table run (state.c
 * records it) -> workers in run.c open a driver connection each and stream
 * rows into a DuckDB staging table (typed data chunks from PostgreSQL's
 * binary COPY, text from the other drivers), flushed to Parquet every
 * batch_rows -> commit.c lands every chunk file in one Delta commit.
 * Drivers: pg_conn.c, mysql_conn.c, odbc_conn.c; HTTP APIs: http_*.c.
 */
#ifndef ST_EXTRACT_INT_H
#define ST_EXTRACT_INT_H

#include "strata/core.h"
#include "strata/delta.h"
#include "strata/engine.h"
#include "strata/extract.h"
#include "strata/state.h"

typedef enum x_kind { X_POSTGRES, X_MYSQL, X_ODBC, X_ECB, X_OECD, X_WORLDBANK } x_kind;
typedef enum x_dialect { X_DIALECT_POSTGRES, X_DIALECT_MYSQL, X_DIALECT_SQLSERVER,
                         X_DIALECT_ORACLE } x_dialect;
typedef enum x_strategy { X_FULL, X_INCREMENTAL, X_HASHDIFF } x_strategy;

typedef struct x_table_cfg {
    char *name;            /* "schema.table" as in the source (or API series name) */
    char *schema;          /* split of name; schema may be "" */
    char *table;
    char *target;          /* table name under bronze/, default <source>__<schema>__<table> */
    x_strategy strategy;
    char **key;            /* key columns */
    size_t n_key;
    char *cursor;          /* incremental cursor column */
    int64_t lookback;      /* seconds for temporal cursors, units for numeric ones */
    int chunks;            /* key-range chunks, 1 = none */
    bool sample_chunks;    /* `chunking: sample`: boundaries from a sample of the key even
                              when the first key column is an integer */
    char **partition_by;
    size_t n_partition_by;
    char **cast_to_string; /* columns whose unmappable type is read as text */
    size_t n_cast_to_string;
    char *country;
    char *entity;
    char *api_path;        /* HTTP: "EXR/M.USD.EUR.SP00.A" or "country/all/indicator/X" */
} x_table_cfg;

typedef struct x_source_cfg {
    char *name;
    x_kind kind;
    x_dialect dialect;
    char *dsn;             /* resolved secret: conninfo / ODBC string (never logged) */
    char *host, *user, *password, *database;
    int port;
    bool compress;
    int connect_timeout;   /* seconds */
    int read_timeout;      /* seconds */
    int64_t batch_rows;    /* rows per staged Parquet file */
    int parallel;          /* connections per table */
    int retries;           /* per chunk */
    int64_t bandwidth;     /* HTTP bytes/s cap, 0 = none */
    char *url;             /* HTTP base URL */
    char *start_period;    /* HTTP: first period of a full load */
    char *country, *entity;
    x_table_cfg *tables;
    size_t n_tables;
    char **include_schemas;/* `schemas:` patterns (tables listed at run time) */
    size_t n_include_schemas;
    char **exclude;        /* table patterns excluded */
    size_t n_exclude;
    x_strategy default_strategy;
} x_source_cfg;

typedef struct x_project {
    char *dir;
    char *lake;
    char *state_path;
    x_source_cfg *sources;
    size_t n_sources;
    st_cfg_doc *doc;
} x_project;

st_rc x_project_load(const st_extract_opts *o, x_project **out, st_err *err);
void x_project_free(x_project *p);
void x_table_cfg_clear(x_table_cfg *t);
const char *x_strategy_name(x_strategy s);

/* ---- columns ---- */

typedef struct x_col {
    char *name;
    char *src_type;        /* as the source reports it, e.g. "numeric(18,2)" */
    char *sel;             /* expression in the source SELECT (quoted ident or a cast) */
    char *duck_type;       /* DuckDB SQL type of the bronze column, NULL = unmappable */
    char *stage_expr;      /* DuckDB expression over the staged text column "c<i>" */
    char *bin_sel;         /* source SELECT expression for binary transfer into a
                              typed staging column; NULL = text transfer only */
    bool is_int;           /* integer type: usable for range chunking */
    bool is_temporal;
} x_col;

void x_cols_free(x_col *c, size_t n);

/* ---- drivers ---- */

typedef struct x_conn x_conn;

/* Receives rows as text: vals[i] NULL means SQL NULL; lens[i] byte length. */
typedef st_rc (*x_row_fn)(void *ctx, char **vals, const size_t *lens, size_t n, st_err *err);

/* Receives rows decoded into a DuckDB data chunk whose vectors have the
 * staging table's column types; *room is the most rows the next chunk may
 * hold (the driver calls fn when a chunk has that many rows or at the end). */
typedef st_rc (*x_chunk_fn)(void *ctx, duckdb_data_chunk chunk, size_t *room, st_err *err);

typedef struct x_driver {
    const char *name;
    st_rc (*connect)(const x_source_cfg *src, x_conn **out, st_err *err);
    void (*close)(x_conn *c);
    /* Columns of a table with their mapping; ST_ERR_NOTFOUND when absent. */
    st_rc (*describe)(x_conn *c, const x_table_cfg *t, x_col **out, size_t *n_out, st_err *err);
    /* First column of the first row as text (OWNED, NULL for SQL NULL). */
    st_rc (*scalar)(x_conn *c, const char *sql, char **out, st_err *err);
    /* Streams the rows of sql into fn. */
    st_rc (*stream)(x_conn *c, const char *sql, size_t n_cols, x_row_fn fn, void *ctx,
                    st_err *err);
    /* Optional: streams the rows of sql (a SELECT of every column's bin_sel)
     * in the source's binary format decoded straight into chunk (cleared
     * and refilled for each call of fn).  NULL = text only. */
    st_rc (*stream_chunks)(x_conn *c, const char *sql, const x_col *cols, size_t n_cols,
                           duckdb_data_chunk chunk, size_t room, x_chunk_fn fn, void *ctx,
                           st_err *err);
    /* Tables of a schema, OWNED array of OWNED names. */
    st_rc (*list_tables)(x_conn *c, const char *schema, char ***out, size_t *n_out, st_err *err);
    char quote;            /* identifier quote character */
} x_driver;

extern const x_driver x_pg_driver;
extern const x_driver x_mysql_driver;
extern const x_driver x_odbc_driver;

/* Appends a quoted identifier with driver quoting. */
st_rc x_quote(st_buf *b, char q, const char *ident);
/* Fills sel/duck_type/stage_expr of a column from a normalised source type
 * family; cast_to_string honoured.  Used by every driver. */
st_rc x_map_finish(x_col *c, const x_table_cfg *t, x_dialect d, st_err *err);
bool x_name_in(char **list, size_t n, const char *name);

/* ---- run state (state.c) ---- */

typedef struct x_chunk {
    int no;
    char *pred;            /* source-side predicate, "" for none */
    bool done;
    int64_t rows;
    char *files_json;      /* JSON array of written Parquet files with stats */
} x_chunk;

typedef struct x_run {
    int64_t id;
    char *strategy;
    char *wm_lo, *wm_hi;   /* cursor window of the run (text as the source prints it) */
    x_chunk *chunks;
    size_t n_chunks;
    bool resumed;
} x_run;

st_rc x_state_init(st_state *s, st_err *err);
/* The unfinished run of (source, table), if any (*out NULL otherwise). */
st_rc x_state_open_run(st_state *s, const char *source, const char *table, x_run **out,
                       st_err *err);
st_rc x_state_new_run(st_state *s, const char *source, const char *table, const char *strategy,
                      const char *wm_lo, const char *wm_hi, char **preds, size_t n_preds,
                      x_run **out, st_err *err);
st_rc x_state_chunk_done(st_state *s, int64_t run_id, int chunk, int64_t rows,
                         const char *files_json, st_err *err);
st_rc x_state_finish_run(st_state *s, int64_t run_id, const char *status, int64_t rows_read,
                         int64_t rows_written, int64_t bytes, int64_t duration_ms,
                         const char *schema_json, int64_t version, const char *error,
                         st_err *err);
/* Per table: the committed watermark and hashdiff state file (OWNED, NULL when none). */
st_rc x_state_get_table(st_state *s, const char *source, const char *table, char **watermark,
                        char **hash_state, st_err *err);
st_rc x_state_set_table(st_state *s, const char *source, const char *table,
                        const char *watermark, const char *hash_state, int64_t run_id,
                        st_err *err);
void x_run_free(x_run *r);
/* Strategy and status of one run (OWNED); ST_ERR_NOTFOUND when unknown. */
st_rc x_state_run_info(st_state *s, int64_t run_id, char **strategy, char **status, st_err *err);

/* ---- hashdiff memory ---- */

/* DuckDB memory of the hashdiff joins (the extraction workers have their
 * own 256 MB each, and are done by then). */
#define X_HASHDIFF_MEMORY "128MB"
/* Caps eng at X_HASHDIFF_MEMORY, spilling to spill_dir, without keeping
 * insertion order (run.c). */
st_rc x_hashdiff_limit(st_engine *eng, const char *spill_dir, st_err *err);

/* ---- raw layer (raw.c) ---- */

/* Adds the run's files to raw/<target> as partition _run_id=<run> (hard
 * links, copies across filesystems) in one commit with app id
 * "raw.<source>.<table>" = run id, so a retried run adds nothing twice.
 * `schema` is the files' schema (without _run_id); stage_dir is where the
 * files were written (their partition sub-directories are kept). */
st_rc x_raw_land(st_engine *eng, const x_project *p, const x_source_cfg *src,
                 const x_table_cfg *t, int64_t run_id, const st_delta_schema *schema,
                 const char *stage_dir, const st_parquet_file *files, size_t n_files,
                 bool partitioned, st_err *err);

/* Agent mode: <dir>/manifest.json for the chunk files of one table run
 * (row counts, sizes, xxh64 of the bytes, schema, key, watermark), read
 * back by import.c. */
typedef struct x_manifest {
    const char *dir;
    const char *source, *table, *target, *strategy;
    int64_t run_id;
    const char *watermark;                /* NULL = none */
    const char *const *key;
    size_t n_key;
    const st_delta_schema *schema;
    const st_parquet_file *files;
    size_t n_files;
} x_manifest;

st_rc x_write_manifest(const x_manifest *m, st_err *err);

/* Parquet file list <-> JSON (for chunk records and manifests). */
char *x_files_to_json(const st_parquet_file *f, size_t n);
st_rc x_files_from_json(const char *json, st_parquet_file **out, size_t *n_out, st_err *err);

/* ---- HTTP APIs (http_fetch.c, http_parse.c) ---- */

typedef struct x_http_opts {
    long timeout_s;
    int retries;
    int64_t bandwidth;     /* bytes/s, 0 = unlimited */
    size_t max_bytes;
} x_http_opts;

/* GET url into body (OWNED); retries 429/5xx with backoff honouring Retry-After. */
st_rc x_http_get(const char *url, const x_http_opts *o, char **body, size_t *len, long *status,
                 st_err *err);

/* A parsed API response: a table of text cells. */
typedef struct x_table {
    char **cols;
    size_t n_cols;
    char **cells;          /* n_rows * n_cols, NULL = missing */
    size_t n_rows;
    size_t cap_rows;
    int pages;             /* World Bank: total pages */
    int page;
} x_table;

void x_table_free(x_table *t);
/* SDMX-CSV (ECB csvdata, OECD SDMX-CSV 1.0/2.0). */
st_rc x_parse_sdmx_csv(const char *data, size_t len, x_table *out, st_err *err);
/* SDMX-ML 2.1 GenericData (ECB, WITS). */
st_rc x_parse_sdmx_ml(const char *data, size_t len, x_table *out, st_err *err);
/* World Bank Indicators API v2 JSON page; appends rows to out. */
st_rc x_parse_worldbank(const char *data, size_t len, x_table *out, st_err *err);

/* Whether column i of an API response is part of its key (SDMX
 * dimensions and TIME_PERIOD; World Bank indicator, country, date). */
bool x_api_is_key(x_kind k, char *const *cols, size_t i);

/* Runs one HTTP-API table (http_run.c). */
st_rc x_http_run_table(const x_project *p, const x_source_cfg *src, const x_table_cfg *t,
                       const st_extract_opts *o, st_state *state, st_extract_result *res,
                       st_err *err);

/* ---- landing (commit.c) ---- */

typedef struct x_land {
    const char *table_path;
    const char *app_id;
    int64_t run_id;
    const char *batch_id;
    st_delta_schema *schema;            /* target schema (BORROWED) */
    const char *const *partition_by;
    size_t n_partition_by;
    bool replace_all;                   /* full: remove every live file */
    const char *delete_cond;            /* rows of bronze to drop (DuckDB SQL over columns) */
    const char *keys_sql;               /* SELECT of keys replacing bronze rows, or NULL */
    char **key;
    size_t n_key;
    st_parquet_file *files;             /* new files under table_path */
    size_t n_files;
} x_land;

st_rc x_land_commit(st_engine *eng, const x_land *l, st_delta_result *res, st_err *err);

#endif
