/*
 * extract.h - batch extraction from OLTP databases (PostgreSQL, MySQL /
 * MariaDB, ODBC) and public statistics APIs (ECB, OECD, World Bank) into
 * bronze Delta tables, with run records and chunk progress in the state DB.
 *
 * A run reads the project's strata.yml `sources:` section, extracts every
 * selected table with its strategy (full, incremental, hashdiff), writes
 * each chunk to its own Parquet file, records the chunk as done, and lands
 * all chunks of the run in one Delta commit.  A failed run resumes with the
 * chunks not yet done.  See docs/extraction.md.
 *
 * Not thread-safe per call; a call may start worker threads of its own.
 */
#ifndef STRATA_EXTRACT_H
#define STRATA_EXTRACT_H

#include "strata/core.h"

typedef struct st_extract_opts {
    const char *project_dir;   /* directory holding strata.yml (default ".") */
    const char *config_path;   /* default <project_dir>/strata.yml */
    const char *lake;          /* overrides `lake:` */
    const char *state_path;    /* overrides `state:` */
    bool full;                 /* re-snapshot: incremental/hashdiff tables run as full */
    const char *range_from;    /* --from/--to: re-extract [from, to) of the cursor */
    const char *range_to;
    const char *to_dir;        /* agent mode: write chunks + manifest here, no commit */
    bool progress;             /* progress lines on stderr */
    /* Test hook, called after each chunk is recorded done; a non-OK return
     * stops the run as if the source had failed. */
    st_rc (*on_chunk)(void *arg, const char *table, int chunk, st_err *err);
    void *on_chunk_arg;
} st_extract_opts;

/* Outcome of one table of a run. */
typedef struct st_extract_result {
    char *source;          /* OWNED strings */
    char *table;           /* source table, e.g. "public.trades" or a series name */
    char *target;          /* "bronze.<source>__<schema>__<table>" */
    char *strategy;
    int64_t run_id;
    int64_t rows_read;
    int64_t rows_written;
    int64_t bytes;
    int64_t duration_ms;
    int64_t version;       /* committed Delta version, -1 when none */
    int n_chunks;
    int n_chunks_resumed;  /* chunks taken over from an earlier failed attempt */
    st_rc rc;
    char *error;           /* NULL on success */
} st_extract_result;

typedef struct st_extract_report {
    st_extract_result *tables;
    size_t n_tables;
    size_t n_failed;
} st_extract_report;

/* Extracts `selector` ("SOURCE" or "SOURCE.TABLE"; NULL = every source).
 * A table that fails does not stop the others: its error is in the report
 * and the call returns ST_ERR_REMOTE/INVALID... of the first failure after
 * all tables ran.  Config errors fail before anything runs.
 * @param[out] out OWNED (st_extract_report_free), written even on a table
 * failure so callers can print the summary. */
st_rc st_extract_run(const st_extract_opts *o, const char *selector, st_extract_report **out,
                     st_err *err);
void st_extract_report_free(st_extract_report *r);

/* Agent mode, second half: verifies the manifest of a directory written by
 * `--to-dir` (row counts, checksums, schema) and commits its chunks to the
 * lake like a normal run. */
st_rc st_extract_import(const st_extract_opts *o, const char *dir, st_extract_report **out,
                        st_err *err);

/* Rebuilds bronze table `selector` ("SOURCE.TABLE") from its raw layer
 * (raw/<target>, one partition per run) for the given runs (all runs raw
 * holds when n_runs is 0): from the last full run among them on, later
 * incremental runs replacing rows by key (API tables: by their dimensions
 * and period); hashdiff tables get the change log between consecutive
 * runs' snapshots.  Bronze is replaced in one commit; the rebuild is
 * recorded as a run with strategy "reprocess".  @param[out] out OWNED. */
st_rc st_extract_reprocess(const st_extract_opts *o, const char *selector, const int64_t *runs,
                           size_t n_runs, st_extract_report **out, st_err *err);

#endif
