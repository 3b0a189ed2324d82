/*
 * silver_int.h - internals of the silver module shared by scd2.c (the
 * history rebuild in SQL), merge.c (Delta integration, incremental runs,
 * erasure) and config.c.
 */
#ifndef ST_SILVER_INT_H
#define ST_SILVER_INT_H

#include "strata/silver.h"

/* How a column of the entity is filled when versions are built. */
enum { SCD_KEY, SCD_TRACK, SCD_LAST, SCD_KEEP };

/* The resolved shape of one merge: business key, output columns and their
 * roles, the sequence type.  Strings live in the arena. */
typedef struct scd_plan {
    st_arena *arena;
    const st_silver_entity *ent;
    char **key;            /* business key (prefix _source, country, entity_id if present) */
    size_t n_key;
    char **cols;           /* entity columns in output order (keys first) */
    int *role;
    size_t n_cols;
    char **part;           /* partition columns (a subset of cols) */
    size_t n_part;
    char *seq_type;        /* SQL type of the sequence column */
} scd_plan;

/* Metadata columns appended after the entity's own, in this order. */
#define SCD_META_COLS                                                                           \
    "_sk, _valid_from, _valid_to, _is_current, _is_deleted, _version, _row_hash, _seq, "       \
    "_noop_seqs, _batch_id, _loaded_at"

/* Materializes in_sql as temp table _st_in with the delete flag _st_del and
 * resolves the plan against its columns.  Fails naming missing columns,
 * NULL keys and NULL sequence values. */
st_rc scd_prepare(st_engine *eng, const st_silver_entity *ent, const char *in_sql, scd_plan *p,
                  st_err *err);
void scd_plan_clear(scd_plan *p);

/* Creates empty temp table _st_old with the silver columns of the plan. */
st_rc scd_empty_old(st_engine *eng, const scd_plan *p, st_err *err);

/* Adds to _st_in a delete for every key live in current_sql (rows with the
 * silver columns) that the batch does not mention (delete: missing). */
st_rc scd_add_missing(st_engine *eng, const scd_plan *p, const char *current_sql, st_err *err);

/* Rebuilds the history of every key of _st_in from _st_in and _st_old (the
 * stored versions of those keys; columns of the plan plus _valid_from,
 * _is_current, _is_deleted, _version, _noop_seqs).  Leaves temp tables
 * _st_chg (keys whose history changed), _st_ret (business key and
 * _valid_from of the stored rows to retire) and _st_new (the rows to write,
 * silver columns in order).  Counts go to stats. */
st_rc scd_rebuild(st_engine *eng, const scd_plan *p, const char *batch_id, st_silver_stats *stats,
                  st_err *err);

/* Version recorded by txn app_id in the Delta table at path (-1 when the
 * table or the txn is absent). */
st_rc scd_app_version(st_engine *eng, const char *path, const char *app_id, int64_t *out,
                      st_err *err);
/* A SELECT over the rows of the bronze table at `bronze` in the files added
 * after version done_v (-1 = all), at its latest version (*out_version).
 * OWNED *out_sql. */
st_rc scd_bronze_increment(st_engine *eng, const char *bronze, int64_t done_v, char **out_sql,
                           int64_t *out_version, st_err *err);

/* Test hook: the Delta scan's key filter sees only the bits of mask of each
 * key value (0 = all bits), so tests can force collisions; the result must
 * not change, since the exact join on the key follows the filter. */
void scd_test_key_mask(uint64_t mask);

/* Runs the statement in b and resets b; with STRATA_LOG=debug logs its time,
 * and with ST_SILVER_EXPLAIN set prints DuckDB's profile of it instead. */
st_rc scd_run(st_engine *eng, st_buf *b, st_err *err);

/* SQL helpers: "a", "b" quoted and comma separated, with an alias prefix. */
st_rc scd_put_cols(st_buf *b, char **cols, size_t n, const char *alias);
/* "l.a = r.a AND l.b = r.b" */
st_rc scd_put_join(st_buf *b, char **cols, size_t n, const char *l, const char *r);

#endif
