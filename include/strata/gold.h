/*
 * gold.h - the gold layer's own pieces: point-in-time correct training sets
 * from feature tables, the Power BI semantic model (TMDL) of the demo star
 * schema, and a one-file HTTP replay server the demo uses to stand in for a
 * public statistics API.
 *
 * Gold tables themselves are SQL models run by the orchestrator (orch.h);
 * see docs/gold.md.
 */
#ifndef STRATA_GOLD_H
#define STRATA_GOLD_H

#include "strata/core.h"
#include "strata/engine.h"

/* ---------------------------------------------------------------- features */

/* A feature table is a gold table keyed by an entity column and a
 * `feature_ts` TIMESTAMP: the row holds what was known at feature_ts. */
typedef struct st_training_opts {
    const char *lake;          /* the lake holding gold/<feature> */
    const char *spine;         /* CSV or Parquet: entity, label time, label, ... */
    const char *entity_col;    /* NULL = the spine's first column */
    const char *ts_col;        /* NULL = the spine's second column */
    const char *const *features; /* gold table names */
    size_t n_features;
    const char *out_dir;       /* receives training_set.parquet and manifest.json */
} st_training_opts;

typedef struct st_training_result {
    int64_t rows;              /* = spine rows */
    int64_t rows_matched;      /* spine rows with at least one feature row */
} st_training_result;

/* Builds the training set: every spine row, ASOF-joined to each feature
 * table on entity and `feature_ts <= label time` (the latest row known at
 * the label time, never a later one).  Feature columns are named
 * <feature>__<column>, plus <feature>__feature_ts.  Writes
 * <out>/training_set.parquet and <out>/manifest.json (spine, features with
 * their Delta versions, the join rule, row counts). */
st_rc st_features_training_set(st_engine *eng, const st_training_opts *o,
                               st_training_result *res, st_err *err);

/* ---------------------------------------------------------------- Power BI */

/* Writes a TMDL semantic model for the star schema found in <lake>/gold
 * (fact_* and dim_* tables) into out_dir/definition: typed columns,
 * relationships from <x>_sk / <x>_code / date_key columns, measures, the
 * RangeStart/RangeEnd parameters and an incremental refresh policy on each
 * fact table with a booked_at-like timestamp column.  tables_written may be
 * NULL. */
st_rc st_gold_powerbi(st_engine *eng, const char *lake, const char *out_dir,
                      size_t *tables_written, st_err *err);

/* ---------------------------------------------------------------- replay */

/* A loopback HTTP server answering every GET with the bytes of one file
 * (recorded API responses for demos).  Port 0 picks a free port. */
typedef struct st_replay_srv st_replay_srv;
st_rc st_replay_srv_start(const char *file, const char *content_type, int port,
                          st_replay_srv **out, st_err *err);
int st_replay_srv_port(const st_replay_srv *s);
/* Requests answered so far. */
long st_replay_srv_hits(const st_replay_srv *s);
void st_replay_srv_stop(st_replay_srv *s);

#endif
