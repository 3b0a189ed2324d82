/*
 * orch.h - the orchestrator: assets in a DAG, selection, plans, parallel
 * runs with timeouts and retries, schedules, partitions and backfills, run
 * history, data quality checks and OpenLineage events.
 *
 * Pieces, each usable on its own:
 *   - st_cron: 5-field cron expressions (UTC) and their next fire time;
 *   - st_select: dbt-style selection expressions over a DAG;
 *   - st_dag: the assets of a project (project.h) in topological order;
 *   - st_orch: an open orchestrator (project + state database) that plans,
 *     runs, backfills and ticks schedules, and records everything in the
 *     state database (tables orch_*), quality results in the Delta table
 *     <lake>/_system/quality_results and lineage as OpenLineage events.
 *
 * Thread safety: st_orch calls are not re-entrant on one handle; a run
 * starts worker threads of its own (each with its own st_engine).  Cron,
 * selection and DAG objects are immutable after construction.
 */
#ifndef STRATA_ORCH_H
#define STRATA_ORCH_H

#include "strata/core.h"
#include "strata/engine.h"
#include "strata/project.h"
#include "strata/state.h"

#include <stdio.h>

/* ---------------------------------------------------------------- cron */

/* A parsed cron expression: minute hour day-of-month month day-of-week,
 * each field with lists (1,5), ranges (9-17), steps (* /15, 10-50/20) and
 * names (jan..dec, sun..sat); day-of-week 0 and 7 are Sunday.  Macros:
 * @hourly @daily @midnight @weekly @monthly @yearly @annually.  As in Vixie
 * cron, when both day fields are restricted a day matches either of them. */
typedef struct st_cron {
    uint64_t minute;   /* bit i = minute i */
    uint32_t hour;
    uint32_t dom;      /* bits 1..31 */
    uint16_t month;    /* bits 1..12 */
    uint8_t dow;       /* bits 0..6 */
    bool dom_star, dow_star;
} st_cron;

/* ST_ERR_PARSE with the field and token at fault. */
st_rc st_cron_parse(const char *expr, st_cron *out, st_err *err);
bool st_cron_matches(const st_cron *c, int64_t t_ms);
/* The first fire time strictly after after_ms (minute resolution, UTC);
 * ST_ERR_NOTFOUND when none within 5 years (e.g. "0 0 30 2 *"). */
st_rc st_cron_next(const st_cron *c, int64_t after_ms, int64_t *out_ms, st_err *err);

/* ---------------------------------------------------------------- DAG */

typedef struct st_dag {
    size_t n;
    const st_asset_def **a;   /* BORROWED from the project, topological order */
    size_t **deps;            /* deps[i]: indexes of the assets i reads */
    size_t *n_deps;
    size_t **kids;            /* kids[i]: indexes of the assets reading i */
    size_t *n_kids;
    st_map *index;            /* key -> (index + 1) cast to a pointer */
    st_asset_def **implicit;  /* source assets made up for undeclared bronze inputs (OWNED) */
    size_t n_implicit;
} st_dag;

/* Builds the DAG of project p (which must outlive it).  Unqualified ref()
 * names are resolved by table name; an undeclared bronze input becomes an
 * observed source asset; any other unknown input, or a cycle, is an error
 * naming the assets involved.  @param[out] out OWNED, st_dag_free. */
st_rc st_dag_build(const st_project *p, st_dag **out, st_err *err);
void st_dag_free(st_dag *d);
/* Index of key, or -1. */
long st_dag_find(const st_dag *d, const char *key);

/* ---------------------------------------------------------------- selection */

typedef struct st_select st_select;

/* Parses "EXPR": terms separated by spaces or commas (a union), each
 *   [+]METHOD[+]    + before: with ancestors, + after: with descendants
 *   METHOD          asset key ("silver.customer"), table name ("customer"),
 *                   a glob ("gold.*"), layer:NAME, tag:NAME, kind:NAME
 * @param[out] out OWNED, st_select_free. */
st_rc st_select_parse(const char *expr, st_select **out, st_err *err);
void st_select_free(st_select *s);
/* Marks out[i] for the selected assets of d (out has d->n entries; it is
 * cleared first).  A term matching no asset fails with ST_ERR_NOTFOUND.
 * out_direct (may be NULL) marks the assets the terms named themselves. */
st_rc st_select_eval(const st_select *s, const st_dag *d, bool *out, bool *out_direct,
                     st_err *err);
/* select (NULL = everything) minus exclude (NULL = nothing). */
st_rc st_select_resolve(const st_dag *d, const char *select, const char *exclude, bool *out,
                        bool *out_direct, st_err *err);

/* ---------------------------------------------------------------- running */

typedef enum st_asset_status {
    ST_AS_PENDING,
    ST_AS_OK,
    ST_AS_FAILED,
    ST_AS_SKIPPED,      /* an upstream asset failed or was skipped */
    ST_AS_OBSERVED,     /* a source asset: its latest version recorded */
    ST_AS_NOT_SELECTED,
} st_asset_status;
const char *st_asset_status_name(st_asset_status s);

/* What an asset body sees while it runs. */
typedef struct st_asset_ctx {
    st_engine *eng;            /* the worker's engine (BORROWED) */
    const st_asset_def *asset;
    const char *run_id;
    const char *partition;     /* NULL when the run is not for one partition */
    int attempt;               /* 1, 2, ... */
    int64_t rows, bytes;       /* set by the body: what it materialised */
    int64_t version;           /* the table version produced, -1 when none */
    int checks_failed;         /* quality checks that failed (warn or error) */
    /* internal */
    volatile int *cancel;
    void *priv;
} st_asset_ctx;

/* True once the attempt ran past its timeout; long bodies poll this. */
bool st_asset_cancelled(const st_asset_ctx *ctx);
/* Appends a line to the run's log for this asset (stored in orch_logs). */
void st_asset_log(st_asset_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef struct st_asset_result {
    char *key;                 /* OWNED */
    char *partition;           /* OWNED, NULL when none */
    st_asset_status status;
    int attempts;
    int64_t version, rows, bytes, duration_ms;
    int n_checks_failed;       /* error + warn checks that failed */
    bool timed_out;
    char *error;               /* OWNED, NULL on success */
    char *blocked_by;          /* OWNED: the failed upstream for ST_AS_SKIPPED */
} st_asset_result;

typedef struct st_run_summary {
    char run_id[37];
    st_asset_result *assets;   /* every asset the run touched, in run order */
    size_t n;
    size_t n_ok, n_failed, n_skipped, n_observed;
    int64_t duration_ms;
} st_run_summary;
void st_run_summary_free(st_run_summary *s);

typedef struct st_run_opts {
    const char *select;        /* NULL = every asset */
    const char *exclude;
    int workers;               /* 0 = project default */
    const char *partition;     /* run partitioned assets for this partition only */
    const char *trigger;       /* "manual" (default), "schedule", "backfill" */
    int64_t retry_backoff_ms;  /* 0 = project default; first delay, doubled each attempt */
    /* progress lines ("ok gold.x 12 ms"), NULL = none */
    FILE *progress;
} st_run_opts;

typedef struct st_orch st_orch;

/* Opens the orchestrator for project p (BORROWED, must outlive it): opens
 * the state database and applies the orch migrations.
 * @param[out] out OWNED, st_orch_close. */
st_rc st_orch_open(const st_project *p, st_orch **out, st_err *err);
void st_orch_close(st_orch *o);
/* BORROWED. */
st_state *st_orch_state(st_orch *o);
const st_dag *st_orch_dag(st_orch *o);

/* Runs the selected assets in dependency order.  Always writes *out (OWNED,
 * st_run_summary_free) when the run started, even if assets failed; returns
 * ST_ERR_REMOTE... of the first failure, or ST_OK. */
st_rc st_orch_run(st_orch *o, const st_run_opts *opts, st_run_summary **out, st_err *err);

/* ---------------------------------------------------------------- plan */

typedef struct st_plan_item {
    const st_asset_def *asset; /* BORROWED */
    bool run;                  /* false for source assets (observed) */
    char *why;                 /* OWNED: reasons, "; "-separated */
    int64_t version;           /* current table version, -1 when none */
} st_plan_item;

typedef struct st_plan {
    st_plan_item *items;       /* selected assets, topological order */
    size_t n;
} st_plan;
void st_plan_free(st_plan *p);
/* Why each selected asset would run now: never materialized, upstream has a
 * newer version, schedule due, selected explicitly.  OWNED *out. */
st_rc st_orch_plan(st_orch *o, const char *select, const char *exclude, int64_t now_ms,
                   st_plan **out, st_err *err);
/* Prints a plan: one line per asset with its deps and reasons. */
void st_plan_print(const st_plan *p, const st_dag *d, FILE *f);

/* ---------------------------------------------------------------- backfill */

/* The partition keys of asset a between from and to (inclusive; day
 * "YYYY-MM-DD", month "YYYY-MM", values by their declared order; NULL =
 * first/last value).  OWNED array of OWNED strings. */
st_rc st_partitions(const st_asset_def *a, const char *from, const char *to, char ***out,
                    size_t *n_out, st_err *err);
/* Runs asset `key` once per partition in [from, to], each atomically
 * (replace_where on the partition).  Done partitions are recorded, so the
 * same backfill run again skips them.  Stops at the first failing
 * partition.  The counts out_done, out_skipped, out_failed may be NULL. */
st_rc st_orch_backfill(st_orch *o, const char *key, const char *from, const char *to,
                       const st_run_opts *opts, size_t *out_done, size_t *out_skipped,
                       size_t *out_failed, st_err *err);

/* ---------------------------------------------------------------- scheduling */

/* One scheduler step at now_ms: runs (as one run with trigger "schedule")
 * the assets whose cron fired since the previous tick, following each
 * asset's missed-run policy (skip: run only when the latest fire time is
 * within a minute of now; run_once: one run however many were missed), and
 * the `on_upstream` assets whose inputs have a newer version than the one
 * they last read.  The first tick of an asset only records the time.
 * *out (may be NULL) receives the run summary, NULL when nothing ran. */
st_rc st_sched_tick(st_orch *o, int64_t now_ms, st_run_summary **out, st_err *err);

/* ---------------------------------------------------------------- history */

/* Prints the latest runs (of one asset when asset != NULL). */
st_rc st_orch_runs_print(st_orch *o, const char *asset, int limit, FILE *f, st_err *err);
/* Prints one run: every materialisation with its version, rows, bytes,
 * duration, error, quality results and logs. */
st_rc st_orch_run_show(st_orch *o, const char *run_id, FILE *f, st_err *err);

/* ---------------------------------------------------------------- quality */

typedef struct st_check_result {
    const st_check *check;     /* BORROWED */
    bool passed;
    int64_t failing;           /* failing rows (row_count: the count; freshness: age s) */
    char *message;             /* OWNED */
} st_check_result;

/* Runs the checks of asset a on `relation` (a table or view name in eng,
 * e.g. the temp table holding the new data).  Refs inside custom SQL and
 * relationships resolve like in models (views must be mounted).  results
 * is an OWNED array of a->n_checks entries; *out_error_failed counts error
 * checks that failed.  A check whose SQL fails counts as failed. */
st_rc st_quality_run(st_engine *eng, const st_asset_def *a, const char *relation,
                     st_check_result **out, size_t *out_error_failed, st_err *err);
void st_check_results_free(st_check_result *r, size_t n);

/* ---------------------------------------------------------------- templates */

typedef struct st_render_vars {
    const char *this_rel;      /* {{ this }} */
    bool is_incremental;       /* {% if is_incremental %} ... {% else %} ... {% endif %} */
    const char *partition;     /* {{ partition }} as a SQL string literal */
    const char *part_start;    /* {{ partition_start }} / {{ partition_end }} as DATE literals */
    const char *part_end;
} st_render_vars;

/* Expands {{ ref('layer.table') }} to "layer"."table" (unqualified names
 * through d when not NULL), {{ this }}, partition variables and the
 * is_incremental block.  OWNED *out. */
st_rc st_render_sql(const char *tmpl, const st_dag *d, const st_render_vars *v, char **out,
                    st_err *err);

/* ---------------------------------------------------------------- scaffolding */

/* Creates a commented project in dir (which may exist but must not hold a
 * strata.yml): strata.yml, schemas/, models/silver/, models/gold/ with an
 * example model and its checks. */
st_rc st_orch_init_project(const char *dir, st_err *err);

#endif
