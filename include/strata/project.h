/*
 * project.h - a Strata project folder as one in-memory description.
 *
 * A project is a directory holding
 *   strata.yml           name, lake, state, sources, collector families,
 *                        silver entities, schedules, lineage, orchestration
 *   models/silver/<entity>.yml  silver entity declarations (one per file); optional
 *                        <entity>.asset.yml beside them with tags, schedule,
 *                        timeout, retries and checks
 *   models/gold/<model>.sql    gold SQL models with {{ ref('layer.table') }}; the
 *                        settings come from a leading comment block
 *                        holding YAML between two `---` lines and/or a
 *                        sidecar <model>.yml
 *                        which also declares the quality checks
 *   models/bronze/<table>.asset.yml  settings and checks of bronze tables
 *
 * st_project_load turns all of it into a flat list of asset definitions
 * (st_asset_def), one per table: batch source tables become EXTRACT assets
 * (bronze.<source>__<schema>__<table>), event families become SOURCE assets
 * (bronze.<family>, produced by the loader and only observed), silver
 * entities SILVER assets and gold models GOLD assets.  Dependencies are the
 * layer-qualified keys they read.  The orchestrator (orch.h) builds the DAG
 * from this list; other modules may use it to enumerate the tables.
 *
 * Ownership: the project and everything reachable from it are OWNED by the
 * st_project and freed by st_project_free.  Not thread-safe to modify;
 * read-only sharing between threads is fine.
 */
#ifndef STRATA_PROJECT_H
#define STRATA_PROJECT_H

#include "strata/core.h"

typedef enum st_asset_kind {
    ST_ASSET_SOURCE,   /* produced outside the DAG (loader, external): observed, never run */
    ST_ASSET_EXTRACT,  /* a batch source table, run through st_extract_run */
    ST_ASSET_SILVER,   /* a silver entity, run through st_silver_run */
    ST_ASSET_GOLD,     /* a SQL model */
    ST_ASSET_CUSTOM,   /* a C callback (tests, embedding programs) */
} st_asset_kind;

typedef enum st_mat {
    ST_MAT_TABLE,        /* the whole table replaced in one commit */
    ST_MAT_INCREMENTAL,  /* the partitions present in the result replaced */
} st_mat;

typedef enum st_part_kind {
    ST_PART_NONE,
    ST_PART_DAY,     /* partition keys YYYY-MM-DD */
    ST_PART_MONTH,   /* partition keys YYYY-MM */
    ST_PART_VALUE,   /* a declared list of values (countries) */
} st_part_kind;

typedef enum st_check_kind {
    ST_CHECK_NOT_NULL,
    ST_CHECK_UNIQUE,
    ST_CHECK_ACCEPTED_VALUES,
    ST_CHECK_RELATIONSHIPS,
    ST_CHECK_RANGE,
    ST_CHECK_ROW_COUNT,
    ST_CHECK_FRESHNESS,
    ST_CHECK_SQL,
} st_check_kind;

typedef enum st_severity { ST_SEV_WARN, ST_SEV_ERROR } st_severity;

/* One data quality check.  Which fields are used depends on kind. */
typedef struct st_check {
    st_check_kind kind;
    st_severity severity;
    char *name;            /* "not_null(customer_id)" unless given */
    char **columns;        /* not_null, unique (combination), accepted_values, range, freshness */
    size_t n_columns;
    char **values;         /* accepted_values: SQL literals as text, quoted when strings */
    size_t n_values;
    char *to;              /* relationships: "silver.customer" */
    char *field;           /* relationships: column of `to` */
    char *min, *max;       /* range: SQL literals; row_count: integers; NULL = open */
    int64_t max_age_s;     /* freshness */
    char *sql;             /* custom: a query returning the failing rows */
    char *file;
    int line;
} st_check;

struct st_asset_ctx;
/* A CUSTOM asset's body.  Returns ST_OK or a failure with err set. */
typedef st_rc (*st_asset_fn)(void *arg, struct st_asset_ctx *ctx, st_err *err);

/* One asset (a table). */
typedef struct st_asset_def {
    char *key;             /* "gold.daily_revenue" */
    char *layer;           /* "gold" */
    char *name;            /* "daily_revenue" */
    st_asset_kind kind;
    char *description;
    char **deps;           /* keys this asset reads */
    size_t n_deps;
    char **tags;
    size_t n_tags;
    char *schedule;        /* cron expression, NULL = none */
    bool on_upstream;      /* run when an upstream asset has a new version */
    char *missed;          /* "skip" or "run_once"; NULL = project default */
    int64_t timeout_ms;    /* 0 = project default */
    int retries;           /* -1 = project default */
    st_part_kind part;
    char *part_column;     /* column holding the partition key */
    char **part_values;    /* ST_PART_VALUE */
    size_t n_part_values;
    /* gold */
    st_mat mat;
    char *sql;             /* the template as written */
    char **partition_by;   /* Delta partition columns */
    size_t n_partition_by;
    /* checks */
    st_check *checks;
    size_t n_checks;
    /* extract: st_extract_run selector "source.table" */
    char *selector;
    /* custom */
    st_asset_fn fn;
    void *fn_arg;
    char *file;            /* where it was declared */
    int line;
} st_asset_def;

typedef struct st_project {
    char *dir;
    char *name;
    char *lake;            /* absolute or relative to the working directory */
    char *state_path;
    st_asset_def **assets;
    size_t n_assets;
    /* lineage: */
    char *lineage_file;    /* NDJSON file, NULL = none */
    char *lineage_url;     /* POST target, NULL = none */
    char *lineage_namespace;
    /* orchestration defaults: */
    int workers;           /* default 4 */
    int64_t timeout_ms;    /* per asset, default 1 h */
    int retries;           /* default 0 */
    int64_t retry_backoff_ms; /* first backoff, default 1000 */
    char *missed;          /* default "skip" */
    st_cfg_doc *doc;       /* strata.yml, NULL for a project built in code */
} st_project;

/* The top-level keys of strata.yml, NULL-terminated: the union of what every
 * module reads (project, collector, extractors, loader, silver, gold,
 * orchestration, lineage).  Each module that checks the top level checks
 * against this one list, so a file valid for one command is valid for all. */
extern const char *const st_project_top_keys[];
/* Refuses top-level keys not in st_project_top_keys ("file:line: key"). */
st_rc st_project_check_top_keys(const st_cfg *root, st_err *err);

/* Loads the project in dir (strata.yml must exist).  Errors name
 * "file:line: key".  @param[out] out OWNED, st_project_free. */
st_rc st_project_load(const char *dir, st_project **out, st_err *err);
/* An empty project with defaults (lake <dir>/lake, state <dir>/state.db),
 * for programs and tests that add assets in code.  OWNED. */
st_rc st_project_new(const char *dir, st_project **out, st_err *err);
void st_project_free(st_project *p);

/* Adds an asset; *a is moved into the project (the caller's struct is
 * zeroed), so build it with st_malloc'd strings.  Fails with ST_ERR_EXISTS
 * on a duplicate key. */
st_rc st_project_add(st_project *p, st_asset_def *a, st_err *err);
/* Convenience for code: a CUSTOM asset with deps (NULL-terminated) and tags
 * (comma-separated, may be NULL).  BORROWED return value (owned by p). */
st_asset_def *st_project_add_custom(st_project *p, const char *key, const char *const *deps,
                                    const char *tags, st_asset_fn fn, void *arg, st_err *err);
/* Finds an asset by key, NULL if absent. */
st_asset_def *st_project_find(const st_project *p, const char *key);
/* Filesystem path of the table behind key ("layer.table") in the lake. OWNED. */
char *st_project_table_path(const st_project *p, const char *key);

/* Parses one check (a YAML map, e.g. {not_null: customer_id, severity: warn}
 * or {kind: range, column: amount, min: 0}).  Fills *out (clear with
 * st_check_clear). */
st_rc st_check_parse(const st_cfg *node, st_check *out, st_err *err);
void st_check_clear(st_check *c);
void st_asset_def_free(st_asset_def *a);

/* Parses the settings a gold model may carry (materialized, partition,
 * partition_by, tags, schedule, timeout_s, retries, missed, description,
 * checks) from a YAML map into a. */
st_rc st_project_apply_settings(st_asset_def *a, const st_cfg *map, st_err *err);

#endif
