/*
 * write_int.h - internals shared by the writing side of the Delta module:
 * txn.c (commits, conflicts), stats.c (add.stats from COPY statistics),
 * write.c (write/delete/update/restore), checkpoint.c and maintain.c.
 */
#ifndef ST_DELTA_WRITE_INT_H
#define ST_DELTA_WRITE_INT_H

#include "delta/delta_int.h"

#define ST_DELTA_ENGINE_INFO "Strata/0.1.0"

/* Escapes one partition value for a directory name the way Spark does
 * ("a/b" -> "a%2Fb"; NULL -> __HIVE_DEFAULT_PARTITION__).  OWNED. */
char *st_deltaw_escape_part(const char *value);
/* Percent-encodes a relative filesystem path for add.path (RFC 2396 path
 * characters kept, '%', space and other unsafe ASCII escaped).  OWNED. */
char *st_deltaw_uri_encode(const char *path);

/* Builds the add.stats JSON of one written file: numRecords, minValues,
 * maxValues and nullCount nested like the schema; partition columns and
 * types without meaningful bounds are left out.  cm_mode maps names to
 * physical names when column mapping is on.  OWNED *out. */
st_rc st_deltaw_stats_json(const st_delta_schema *schema, const char *cm_mode,
                           const st_parquet_file *f, char **out, st_err *err);

/* A timestamp partition value as DuckDB prints it ("2024-01-01 10:00:00+00")
 * in the ISO-8601 UTC form the protocol recommends
 * ("2024-01-01T10:00:00.000000Z").  OWNED. */
char *st_deltaw_ts_part_value(const char *v);

/* Writer-side protocol check: refuses writer versions/features we do not
 * implement, naming the feature. */
st_rc st_deltaw_check_write_protocol(const st_delta_protocol *p, const st_delta_metadata *m,
                                     const char *table_path, st_err *err);

/* Parses a Delta interval ("interval 7 days", "168 hours") into ms; def when
 * s is NULL or unparsable. */
int64_t st_deltaw_interval_ms(const char *s, int64_t def);

/* Writes a classic checkpoint of snapshot s and updates _last_checkpoint. */
st_rc st_deltaw_checkpoint_snapshot(st_engine *eng, const st_delta_snapshot *s, st_err *err);

/* Converts Parquet files written under table_path by st_engine_write_parquet
 * into add actions of t: moves partition files into Spark-escaped
 * directories, computes stats, encodes paths.  bytes/files are added to res
 * when not NULL. */
st_rc st_deltaw_add_written(st_delta_txn *t, const st_delta_schema *schema,
                            const st_parquet_file *files, size_t n_files, bool data_change,
                            st_delta_result *res, st_err *err);

/* Scan SQL over a subset of a snapshot's files (logical names/types),
 * OWNED *out. */
st_rc st_deltaw_files_sql(st_engine *eng, const st_delta_snapshot *s, st_delta_file **files,
                          size_t n_files, char **out, st_err *err);
/* "CAST(<col> AS <type>) AS <physical>" list of a schema (exprs may be NULL). */
st_rc st_deltaw_select_list(const st_delta_schema *schema, const char *cm, char **exprs,
                            st_buf *b);
/* Writes rows partitioned like the snapshot's table under dest: row groups
 * of rg_rows (0 = 1M), files rolled after file_rows (0 = one file per
 * partition per write; rounded to whole row groups), zstd at zstd_level
 * (0 = the default). */
st_rc st_deltaw_write_rows(st_engine *eng, const st_delta_snapshot *s, const char *sql,
                           const char *dest, int64_t rg_rows, int64_t file_rows, int zstd_level,
                           st_parquet_file **out, size_t *n_out, st_err *err);

/* Adds a cdc action for Parquet files written under table_path/_change_data. */
st_rc st_deltaw_add_cdc_written(st_delta_txn *t, const st_parquet_file *files, size_t n_files,
                                st_err *err);

/* The table path of a txn (BORROWED). */
const char *st_deltaw_txn_table(const st_delta_txn *t);
/* The schema the txn will commit (new one if set, else the snapshot's),
 * BORROWED until the txn ends. */
const st_delta_schema *st_deltaw_txn_schema(const st_delta_txn *t);
/* Marks the txn as not a blind append even without removes. */
void st_deltaw_txn_set_blind(st_delta_txn *t, bool blind);

#endif
