/*
 * columns.h - private to src/load: rows staged column by column into DuckDB
 * data chunks and handed to an appender a chunk (2048 rows) at a time.
 *
 * The loader appends ~45 values per event; through duckdb_append_<type>
 * each value pays a type dispatch and a conversion inside DuckDB, while a
 * chunk is filled with plain stores into its vectors.  Values must match the
 * column types exactly (BIGINT, DOUBLE, BOOLEAN, TIMESTAMP, DATE, VARCHAR);
 * a mismatch or text that is not UTF-8 fails the row at st_rows_end.
 */
#ifndef ST_COLUMNS_H
#define ST_COLUMNS_H

#include "strata/core.h"

#include <duckdb.h>

typedef struct st_rows {
    duckdb_appender app;       /* BORROWED */
    duckdb_data_chunk chunk;
    size_t n_cols;
    duckdb_type *types;
    duckdb_vector *vec;
    void **data;
    uint64_t **valid;          /* NULL until the column gets its first NULL */
    idx_t cap, row;
    size_t col;                /* next column of the current row */
    const char *bad;           /* why the current row is refused, NULL if fine */
    size_t bad_col;
} st_rows;

/* Prepares chunks shaped like the appender's table.  BORROWS app. */
st_rc st_rows_open(st_rows *r, duckdb_appender app, st_err *err);
/* Frees the chunk; rows not flushed are dropped.  Zeroed or NULL is fine. */
void st_rows_close(st_rows *r);

void st_rows_null(st_rows *r);
void st_rows_str(st_rows *r, const char *s, size_t len);   /* s NULL: NULL */
void st_rows_cstr(st_rows *r, const char *s);              /* s NULL: NULL */
void st_rows_i64(st_rows *r, int64_t v);
void st_rows_f64(st_rows *r, double v);
void st_rows_bool(st_rows *r, bool v);
void st_rows_ts(st_rows *r, int64_t us);                   /* TIMESTAMP, µs */
void st_rows_date(st_rows *r, int32_t day);                /* DATE, days since 1970 */
/* Ends the row (every column must have been given); appends the chunk when
 * it is full.  what names the table in messages. */
st_rc st_rows_end(st_rows *r, const char *what, st_err *err);
/* Drops the values given so far for the current row. */
void st_rows_cancel(st_rows *r);
/* Appends the rows of the partial chunk. */
st_rc st_rows_flush(st_rows *r, const char *what, st_err *err);

#endif
