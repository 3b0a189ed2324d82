/*
 * silver.h - conformed entities with SCD Type 2 history.
 *
 * An entity is declared in YAML (models/silver/<entity>.yml or the `silver:`
 * section of strata.yml).  Each run reads what its bronze table gained since
 * the last processed version, rebuilds the history of the affected keys only
 * (late and out-of-order changes are spliced in by their sequence), and
 * commits the result to the silver Delta table in one commit: deletion
 * vectors on the files holding the affected keys' old versions, one appended
 * file with their new history, and a `txn` action so that a rerun is a no-op.
 * See docs/silver.md for the model and src/silver/README.md for the flow.
 *
 * Ownership: every *_load / *_parse output is OWNED by the caller and freed
 * with the matching *_free.  Nothing here is thread-safe across one engine.
 */
#ifndef STRATA_SILVER_H
#define STRATA_SILVER_H

#include "strata/core.h"
#include "strata/engine.h"

typedef enum st_silver_delete {
    ST_SILVER_DELETE_NONE,      /* the source never deletes */
    ST_SILVER_DELETE_EXPR,      /* rows matching a SQL predicate are deletes (`_op = 'D'`) */
    ST_SILVER_DELETE_MISSING,   /* snapshot source: a live key absent from a batch is deleted */
} st_silver_delete;

/* One entity as declared.  Lists are column names. */
typedef struct st_silver_entity {
    char *name;                  /* "customer" (the table is silver.<name>) */
    char *from;                  /* bronze table, "bronze.<table>" or a path */
    char **key;                  /* natural key; _source, country, entity_id are */
    size_t n_key;                /*   prepended at run time when the source has them */
    char **track;                /* a change in these opens a new version */
    size_t n_track;
    char **update_in_place;      /* copied from the latest change onto its version */
    size_t n_update_in_place;
    char *sequence;              /* orders changes; NULL sequence values are refused */
    st_silver_delete delete_kind;
    char *delete_expr;           /* ST_SILVER_DELETE_EXPR */
    char **partition_by;         /* default [country] when the source has it */
    size_t n_partition_by;
    bool partition_by_set;       /* declared explicitly (possibly empty) */
    char **tie_break;            /* ties on the sequence: the largest of these wins */
    size_t n_tie_break;
    char *file;                  /* where it was declared, for messages */
    int line;
} st_silver_entity;

/* Parses one entity declaration (a YAML map).  Unknown keys are refused
 * with "file:line: path: ..." errors.
 * @param[out] out OWNED, st_silver_entity_free. */
st_rc st_silver_entity_parse(const st_cfg *node, const char *name, st_silver_entity **out,
                             st_err *err);
/* Finds `name` in <project>/models/silver/<name>.yml (a map with the entity's
 * keys, or with a top-level `<name>:` map) or in the `silver:` section of
 * <project>/strata.yml.  ST_ERR_NOTFOUND when declared nowhere. */
st_rc st_silver_entity_load(const char *project_dir, const char *name, st_silver_entity **out,
                            st_err *err);
void st_silver_entity_free(st_silver_entity *e);

/* What one merge did. */
typedef struct st_silver_stats {
    int64_t rows_in;          /* change rows read from the source */
    int64_t keys_affected;    /* keys present in the batch */
    int64_t keys_changed;     /* keys whose history differs after the rebuild */
    int64_t rows_written;     /* version rows written (new history of changed keys) */
    int64_t rows_deleted;     /* old version rows retired (deletion vectors / erase) */
    int64_t files_touched;    /* existing files that got a (new) deletion vector */
    int64_t bytes_written;    /* Parquet + deletion vector bytes */
    int64_t version;          /* committed table version, -1 when nothing committed */
    int64_t source_version;   /* bronze version processed (st_silver_run) */
    bool skipped;             /* the batch was already applied (txn) or had no rows */
} st_silver_stats;

/* Merges the change rows of in_sql into a plain DuckDB table (created on
 * first use).  The same rebuild as the Delta path; used by tests and as a
 * reference.  batch_id is stamped on new rows (NULL = a random UUID). */
st_rc st_silver_merge_duckdb(st_engine *eng, const st_silver_entity *ent, const char *in_sql,
                             const char *target_table, const char *batch_id,
                             st_silver_stats *stats, st_err *err);

/* Merges the change rows of in_sql (evaluated on eng) into the silver Delta
 * table at table_path (created with deletion vectors enabled on first use).
 * When app_id is not NULL the commit records txn(app_id, app_version) and a
 * batch whose app_version <= the recorded one is skipped. */
st_rc st_silver_merge_delta(st_engine *eng, const st_silver_entity *ent, const char *in_sql,
                            const char *table_path, const char *batch_id, const char *app_id,
                            int64_t app_version, st_silver_stats *stats, st_err *err);

/* Runs one entity incrementally: reads what the bronze table gained since the
 * version recorded in the silver table's txn "silver.<entity>", merges it and
 * records the new bronze version.  Tables live at <lake>/<layer>/<table>. */
st_rc st_silver_run(st_engine *eng, const char *lake_dir, const st_silver_entity *ent,
                    st_silver_stats *stats, st_err *err);

/* Hard delete (erasure): retires every version of the keys matching
 * key_predicate (SQL over the entity's columns) with deletion vectors, in one
 * commit.  Reusable by `strata erase`. */
st_rc st_silver_erase(st_engine *eng, const char *table_path, const char *key_predicate,
                      st_silver_stats *stats, st_err *err);

/* Creates views <prefix>_history (all versions), <prefix>_current (the live
 * version of each key that is not deleted) and the macro <prefix>_as_of(ts)
 * (versions valid at ts) over the silver table. */
st_rc st_silver_register_views(st_engine *eng, const char *table_path, const char *prefix,
                               st_err *err);

/* ---------------------------------------------------------------- facts
 *
 * A silver fact (`kind: fact`) is validated and conformed: country codes
 * (ISO 3166-1 alpha-2) and currency codes (ISO 4217) are trimmed,
 * upper-cased and checked, amounts are cast to the declared decimals, and
 * each row is linked to the dimension version valid at its time (an ASOF
 * join on the dimension's [_valid_from, _valid_to)), giving <dim>_sk.  Rows
 * that fail any check go to silver.<fact>__quarantine with `_reason`. */
typedef struct st_silver_fact {
    char *name;
    char *from;              /* bronze table */
    char *time;              /* the fact's time, compared with the dimension's sequence */
    char *country;           /* column checked as ISO 3166-1 alpha-2; NULL = none */
    char *currency;          /* column checked as ISO 4217; NULL = none */
    char **amounts;          /* columns cast to ... */
    char **amount_types;     /* ... these types, e.g. "DECIMAL(18,2)" */
    size_t n_amounts;
    char *dimension;         /* silver entity linked, NULL = none */
    char **fact_cols;        /* link: fact column = dimension column */
    char **dim_cols;
    size_t n_link;
    char *file;
    int line;
} st_silver_fact;

/* Parses a `kind: fact` declaration.  @param[out] out OWNED. */
st_rc st_silver_fact_parse(const st_cfg *node, const char *name, st_silver_fact **out,
                           st_err *err);
st_rc st_silver_fact_load(const char *project_dir, const char *name, st_silver_fact **out,
                          st_err *err);
void st_silver_fact_free(st_silver_fact *f);
/* Whether the declaration of `name` says `kind: fact`. */
st_rc st_silver_is_fact(const char *project_dir, const char *name, bool *out, st_err *err);

typedef struct st_silver_fact_stats {
    int64_t rows_in;
    int64_t rows_ok;           /* appended to silver.<fact> */
    int64_t rows_quarantined;  /* appended to silver.<fact>__quarantine */
    int64_t source_version;
    bool skipped;              /* this bronze version was already processed */
} st_silver_fact_stats;

/* Runs one fact incrementally (bronze files added since the last processed
 * version; txn "silver.<fact>" on both tables, so reruns are no-ops). */
st_rc st_silver_fact_run(st_engine *eng, const char *lake_dir, const st_silver_fact *f,
                         st_silver_fact_stats *stats, st_err *err);
/* True if code is an ISO 3166-1 alpha-2 country / ISO 4217 currency code. */
bool st_silver_iso_country(const char *code);
bool st_silver_iso_currency(const char *code);

/* Path of the table behind "bronze.x" / "silver.x" (or a path as is). OWNED. */
char *st_silver_table_path(const char *lake_dir, const char *name);

#endif
