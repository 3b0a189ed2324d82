/*
 * init.c - `strata init DIR`: scaffolds a commented project (strata.yml,
 * schemas/, models/silver/, models/gold/ with one example model and its
 * checks).  Existing files are never overwritten.
 */
#include "strata/orch.h"

#include <string.h>

static const char strata_yml[] =
    "# strata.yml - one Strata project.  Every part of the platform (collector,\n"
    "# extractors, silver, gold, scheduler) reads this file, so names agree.\n"
    "name: my-project\n"
    "lake: ./lake            # Delta tables live in <lake>/<layer>/<table>/\n"
    "state: ./state.db       # SQLite: run history, schedules, extraction progress\n"
    "\n"
    "# Event collection (`strata serve`): each source posts events of its families;\n"
    "# each family lands as the table bronze.<family>.\n"
    "# collector:\n"
    "#   listen: 127.0.0.1:8686\n"
    "#   sources:\n"
    "#     web: {key_env: STRATA_KEY_WEB, families: [web_events]}\n"
    "\n"
    "# Batch sources (`strata extract`): each table lands as\n"
    "# bronze.<source>__<schema>__<table>.\n"
    "# sources:\n"
    "#   crm:\n"
    "#     kind: postgres\n"
    "#     dsn_env: CRM_DSN\n"
    "#     schedule: \"0 2 * * *\"        # cron (UTC): extract every night at 02:00\n"
    "#     tables:\n"
    "#       public.customers: {strategy: hashdiff, key: [customer_id]}\n"
    "\n"
    "# Silver entities live in models/silver/<entity>.yml (see the example there).\n"
    "# Gold SQL models live in models/gold/<model>.sql, their settings and quality\n"
    "# checks in models/gold/<model>.yml.\n"
    "\n"
    "# Schedules for any asset or source: a cron expression or on_upstream (run when\n"
    "# an input has a new version).  `strata serve` ticks them every minute.\n"
    "# schedule:\n"
    "#   gold.daily_orders: \"30 6 * * *\"\n"
    "\n"
    "# Run settings: parallel workers, per-asset timeout, retries with exponential\n"
    "# backoff, and what to do with schedule times missed while nothing ran\n"
    "# (skip, or run_once).\n"
    "orchestration:\n"
    "  workers: 4\n"
    "  timeout_s: 3600\n"
    "  retries: 1\n"
    "  retry_backoff_ms: 1000\n"
    "  missed: skip\n"
    "\n"
    "# OpenLineage events (START / COMPLETE / FAIL) as NDJSON, and/or POSTed to a URL.\n"
    "lineage:\n"
    "  file: ./lineage.ndjson\n"
    "  # url: http://localhost:5000/api/v1/lineage\n";

static const char silver_example[] =
    "# An example silver entity, kept as a comment so the project runs without\n"
    "# sources.  Copy to models/silver/customer.yml and adapt:\n"
    "#\n"
    "# from: bronze.crm__public__customers   # the bronze table it reads\n"
    "# key: [customer_id]                    # business key\n"
    "# track: [name, segment, country]       # a change opens a new SCD2 version\n"
    "# sequence: _extracted_at               # orders the changes\n";

static const char gold_sql[] =
    "/*---\n"
    "# Settings of this model (the same keys may live in daily_orders.yml).\n"
    "materialized: incremental             # table (replace all) | incremental (by partition)\n"
    "partition: {by: day, column: order_date}   # enables `strata backfill gold.daily_orders`\n"
    "tags: [example]\n"
    "---*/\n"
    "-- A gold model is one SELECT.  Other tables are named with ref('layer.table')\n"
    "-- in double braces; partition_start and partition_end (in double braces too)\n"
    "-- bound the partition being built.\n"
    "-- This example generates its rows so the project runs before any source exists.\n"
    "SELECT d::DATE AS order_date,\n"
    "       (hash(d) % 100)::BIGINT AS orders,\n"
    "       ((hash(d) % 10000) / 100.0)::DECIMAL(18,2) AS revenue\n"
    "FROM range({{ partition_start }}::TIMESTAMP, {{ partition_end }}::TIMESTAMP, INTERVAL 1 DAY) t(d)\n";

static const char gold_yml[] =
    "# Quality checks of gold.daily_orders.  They run on the new rows before they\n"
    "# are committed: a failing `error` check keeps the table at its previous\n"
    "# version and stops what depends on it; `warn` only records the result.\n"
    "# Results land in the Delta table <lake>/_system/quality_results.\n"
    "checks:\n"
    "  - not_null: [order_date, orders]\n"
    "  - unique: order_date\n"
    "  - range: {column: orders, min: 0, max: 1000}\n"
    "  - row_count: {min: 1}\n"
    "  - sql: \"SELECT * FROM {{ this }} WHERE revenue < 0\"\n"
    "    severity: warn\n";

static st_rc put(const char *dir, const char *rel, const char *text, st_err *err)
{
    char *path = st_path_join(dir, rel);
    if (!path)
        return st_fail(err, ST_ERR_NOMEM, "init");
    st_rc rc = st_file_put_if_absent(path, text, strlen(text), err);
    st_free(path);
    return rc == ST_ERR_EXISTS ? ST_OK : rc;
}

st_rc st_orch_init_project(const char *dir, st_err *err)
{
    char *yml = st_path_join(dir, "strata.yml");
    if (!yml)
        return st_fail(err, ST_ERR_NOMEM, "init");
    bool exists = st_path_exists(yml);
    st_free(yml);
    if (exists)
        return st_fail(err, ST_ERR_EXISTS, "%s already holds a strata.yml", dir);
    static const char *const dirs[] = {"schemas", "models/silver", "models/gold", "lake"};
    st_rc rc = ST_OK;
    for (size_t i = 0; rc == ST_OK && i < sizeof dirs / sizeof dirs[0]; i++) {
        char *p = st_path_join(dir, dirs[i]);
        rc = p ? st_mkdirs(p, err) : st_fail(err, ST_ERR_NOMEM, "init");
        st_free(p);
    }
    rc = rc ? rc : put(dir, "schemas/README.md",
                       "Event schemas (JSON Schema, one file per event type and version).\n", err);
    rc = rc ? rc : put(dir, "models/silver/README.example", silver_example, err);
    rc = rc ? rc : put(dir, "models/gold/daily_orders.sql", gold_sql, err);
    rc = rc ? rc : put(dir, "models/gold/daily_orders.yml", gold_yml, err);
    rc = rc ? rc : put(dir, "strata.yml", strata_yml, err);
    return rc;
}
