/*
 * columns.h - private to src/load: rows staged column by column into DuckDB
 * data chunks (2048 rows each), kept in a list until the batch commits and
 * then scanned in place by the Parquet writes (st_stage_register).
 *
 * The loader appends ~45 values per event; through duckdb_append_<type>
 * each value pays a type dispatch and a conversion inside DuckDB, while a
 * chunk is filled with plain stores into its vectors.  Scanning the chunks
 * by reference, rather than appending them to a temporary table first,
 * saves a copy of every value (~7% of the loader's CPU).  Values must match the
 * column types exactly (BIGINT, DOUBLE, BOOLEAN, TIMESTAMP, DATE, VARCHAR);
 * a mismatch or text that is not UTF-8 fails the row at st_rows_end.
 */
#ifndef ST_COLUMNS_H
#define ST_COLUMNS_H

#include "strata/core.h"

#include <duckdb.h>

typedef struct st_rows {
    duckdb_data_chunk chunk;   /* being filled */
    duckdb_data_chunk *full;   /* OWNED: the filled chunks, in row order */
    size_t n_full, cap_full;
    uint32_t *drops;           /* rows dropped after staging, ascending */
    size_t n_drops, cap_drops;
    size_t n_cols;
    duckdb_type *types;
    duckdb_logical_type *ltypes;
    duckdb_vector *vec;
    void **data;
    uint64_t **valid;          /* NULL until the column gets its first NULL */
    idx_t cap, row;
    size_t col;                /* next column of the current row */
    const char *bad;           /* why the current row is refused, NULL if fine */
    size_t bad_col;
    uint32_t n_ended;          /* rows ended so far: the next row's number */
} st_rows;

/* Prepares chunks with these column types. */
st_rc st_rows_open(st_rows *r, const duckdb_type *types, size_t n_cols, st_err *err);
/* Frees the chunks.  Zeroed or NULL is fine. */
void st_rows_close(st_rows *r);

void st_rows_null(st_rows *r);
void st_rows_str(st_rows *r, const char *s, size_t len);   /* s NULL: NULL */
void st_rows_cstr(st_rows *r, const char *s);              /* s NULL: NULL */
void st_rows_i64(st_rows *r, int64_t v);
void st_rows_f64(st_rows *r, double v);
void st_rows_bool(st_rows *r, bool v);
void st_rows_ts(st_rows *r, int64_t us);                   /* TIMESTAMP, µs */
void st_rows_date(st_rows *r, int32_t day);                /* DATE, days since 1970 */
/* Ends the row (every column must have been given); a full chunk joins the
 * list.  what names the table in messages. */
st_rc st_rows_end(st_rows *r, const char *what, st_err *err);
/* Drops the values given so far for the current row. */
void st_rows_cancel(st_rows *r);
/* Moves the partial chunk to the list (the end of staging). */
st_rc st_rows_flush(st_rows *r, const char *what, st_err *err);
/* Leaves row number row (counted from 0 in staging order) out of scans;
 * numbers must come in ascending order. */
st_rc st_rows_drop(st_rows *r, uint32_t row, st_err *err);
/* Rows in the list minus the dropped ones. */
size_t st_rows_kept(const st_rows *r);

/*
 * A staged table: named, typed columns whose rows are its parts' chunks,
 * part after part.  st_stage_register adds a table function NAME(id BIGINT)
 * to a connection that scans stages[id]: the chunks are handed to DuckDB by
 * reference (no copy), dropped rows sliced away.  The stages must not change
 * while a query scans them.
 */
#define ST_STAGE_MAX_PARTS 4

typedef struct st_stage {
    char **names;              /* OWNED */
    duckdb_type *types;        /* OWNED */
    size_t n_cols;
    st_rows *parts[ST_STAGE_MAX_PARTS];   /* BORROWED */
    size_t n_parts;
} st_stage;

typedef struct st_stages {
    st_stage *v;
    size_t n;
} st_stages;

st_rc st_stage_register(duckdb_connection conn, const char *name, st_stages *stages, st_err *err);
void st_stage_clear(st_stage *s);

#endif
