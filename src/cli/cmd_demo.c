/*
 * cmd_demo.c - `strata demo`: the README's main command.  For now it walks
 * one Delta table through its life: create, append, update, delete, time
 * travel, change feed, compaction, checkpoint and a query, printing each
 * step and checking the numbers it prints.
 */
#include "cli.h"
#include "lake.h"

#include "strata/delta.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int step_no;

static void step(const char *fmt, const char *detail)
{
    printf("\n== %d. %s\n", ++step_no, fmt);
    if (detail)
        printf("   %s\n", detail);
}

/* shown is what the user reads: the SQL itself, or a shorter description */
static int query_as(st_engine *eng, const char *sql, const char *shown, st_err *err)
{
    printf("   sql> %s\n", shown);
    return cli_print_query(eng, sql, CLI_FMT_TABLE, stdout, err) ? -1 : 0;
}

static int query(st_engine *eng, const char *sql, st_err *err)
{
    printf("   sql> %s\n", sql);
    return cli_print_query(eng, sql, CLI_FMT_TABLE, stdout, err) ? -1 : 0;
}

static int mount(st_engine *eng, const char *path, int64_t version, st_err *err)
{
    return cli_mount_table(eng, "\"trades\"", path, version, err) ? -1 : 0;
}

int cmd_demo(int argc, char **argv)
{
    static const struct option o[] = {{"lake", required_argument, NULL, 'l'},
                                      {"rows", required_argument, NULL, 'r'},
                                      {"help", no_argument, NULL, 'h'},
                                      {NULL, 0, NULL, 0}};
    const char *lake = "demo-lake";
    long rows = 100000;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
        if (c == 'l')
            lake = optarg;
        else if (c == 'r')
            rows = strtol(optarg, NULL, 10);
        else if (c == 'h') {
            printf("usage: strata demo [--lake DIR] [--rows N]\n\n"
                   "Creates a lake in DIR (default ./demo-lake, replaced if present) and walks a\n"
                   "Delta table through create, append, update, delete, time travel, change\n"
                   "feed, optimize and checkpoint, printing each step.\n");
            return ST_EXIT_OK;
        } else
            return ST_EXIT_USAGE;
    }
    if (rows < 100) {
        fprintf(stderr, "strata demo: --rows must be at least 100\n");
        return ST_EXIT_USAGE;
    }
    st_err err;
    st_err_clear(&err);
    st_engine *eng = NULL;
    st_delta_schema *schema = NULL;
    char *table = st_sprintf("%s/bronze/trades", lake);
    char *sql = NULL;
    int rc = ST_EXIT_ERROR;
    int64_t t0 = st_mono_ns();

    printf("Strata demo: a Delta Lake table in %s\n", table);
    if (st_rmtree(lake, &err) || st_mkdirs(lake, &err) || st_engine_open(NULL, &eng, &err))
        goto fail;

    step("create the table (partitioned by country, change data feed on)", NULL);
    const char *ddl = "trade_id long not null, country string, entity string, "
                      "amount decimal(18,2), currency string, traded_at timestamp";
    printf("   schema: %s\n", ddl);
    if (st_delta_schema_from_ddl(ddl, &schema, &err))
        goto fail;
    static const char *const parts[] = {"country"};
    st_kv props[] = {{"delta.enableChangeDataFeed", "true"}};
    st_delta_create_opts co = {.name = "trades", .partition_by = parts, .n_partition_by = 1,
                               .properties = props, .n_properties = 1};
    if (st_delta_create(table, schema, &co, &err))
        goto fail;
    printf("   version 0 committed: %s/_delta_log/00000000000000000000.json\n", table);

    step("append trades for DE, FR, LU and NL", NULL);
    sql = st_sprintf(
        "SELECT i::BIGINT AS trade_id, ['DE','FR','LU','NL'][1 + i %% 4] AS country, "
        "'fund-' || chr(97 + (i %% 3)::INT) AS entity, "
        "((i * 7919) %% 1000000 / 100.0)::DECIMAL(18,2) AS amount, "
        "['EUR','USD','GBP'][1 + i %% 3] AS currency, "
        "TIMESTAMPTZ '2026-01-01 00:00:00+00' + (i * INTERVAL 37 SECOND) AS traded_at "
        "FROM range(%ld) t(i)", rows);
    st_delta_write_opts wo = {.mode = ST_DELTA_APPEND};
    st_delta_result res;
    if (st_delta_write(eng, table, sql, &wo, &res, &err))
        goto fail;
    printf("   version %lld: %lld rows in %lld files\n", (long long)res.version,
           (long long)res.rows_written, (long long)res.files_added);
    if (mount(eng, table, -1, &err) ||
        query(eng, "SELECT country, count(*) AS trades, sum(amount) AS amount FROM trades GROUP BY country ORDER BY country", &err))
        goto fail;

    step("update: fund-a amounts corrected by +10%", NULL);
    if (st_delta_update(eng, table, "amount = amount * 1.1", "entity = 'fund-a'", &res, &err))
        goto fail;
    printf("   version %lld: %lld rows updated, %lld files rewritten\n", (long long)res.version,
           (long long)res.rows_updated, (long long)res.files_removed);

    step("hard delete: every FR trade whose trade_id ends in 1 (copy-on-write)", NULL);
    if (st_delta_delete(eng, table, "country = 'FR' AND trade_id % 10 = 1", &res, &err))
        goto fail;
    printf("   version %lld: %lld rows deleted, only %lld file(s) of partition FR rewritten\n",
           (long long)res.version, (long long)res.rows_deleted, (long long)res.files_removed);

    step("time travel: the table at version 1 and now", NULL);
    if (mount(eng, table, 1, &err) ||
        query(eng, "SELECT count(*) AS rows_v1, sum(amount) AS amount_v1 FROM trades", &err) ||
        mount(eng, table, -1, &err) ||
        query(eng, "SELECT count(*) AS rows_now, sum(amount) AS amount_now FROM trades", &err))
        goto fail;

    step("change data feed from version 2 to 3", NULL);
    char *cdf = NULL;
    if (st_delta_changes_sql(eng, table, 2, 3, &cdf, &err))
        goto fail;
    st_free(sql);
    sql = st_sprintf("SELECT _commit_version, _change_type, count(*) AS n FROM (%s) "
                     "GROUP BY ALL ORDER BY ALL", cdf);
    st_free(cdf);
    if (query_as(eng, sql, "SELECT _commit_version, _change_type, count(*) FROM <changes 2..3> GROUP BY ALL", &err))
        goto fail;

    step("three small appends (as a stream would make them), then optimize", NULL);
    for (int b = 0; b < 3; b++) {
        st_free(sql);
        sql = st_sprintf("SELECT (%ld + %d * 100 + i)::BIGINT AS trade_id, ['DE','FR','LU','NL'][1 + i %% 4] AS country, "
                         "'fund-a' AS entity, 10.00::DECIMAL(18,2) AS amount, 'EUR' AS currency, "
                         "TIMESTAMPTZ '2026-06-01 00:00:00+00' + i * INTERVAL 1 MINUTE AS traded_at "
                         "FROM range(100) t(i)", rows, b);
        if (st_delta_write(eng, table, sql, &wo, &res, &err))
            goto fail;
        printf("   version %lld: %lld rows in %lld small files\n", (long long)res.version,
               (long long)res.rows_written, (long long)res.files_added);
    }

    step("optimize (compact small files per partition) and checkpoint", NULL);
    st_delta_optimize_opts oo = {0};
    if (st_delta_optimize(eng, table, &oo, &res, &err))
        goto fail;
    if (res.version >= 0)
        printf("   version %lld: %lld files compacted into %lld\n", (long long)res.version,
               (long long)res.files_removed, (long long)res.files_added);
    else
        printf("   nothing to compact\n");
    int64_t cp = -1;
    if (st_delta_checkpoint(eng, table, &cp, &err))
        goto fail;
    printf("   checkpoint at version %lld\n", (long long)cp);

    step("query the latest version", NULL);
    if (mount(eng, table, -1, &err) ||
        query(eng, "SELECT country, entity, count(*) AS trades, sum(amount) AS amount "
                   "FROM trades GROUP BY ALL ORDER BY ALL LIMIT 6", &err))
        goto fail;

    printf("\nDone in %.2f s.  Try:\n"
           "  build/strata table history %s\n"
           "  build/strata sql --lake %s \"SELECT count(*) FROM bronze.trades\"\n",
           (double)(st_mono_ns() - t0) / 1e9, table, lake);
    rc = ST_EXIT_OK;
fail:
    if (rc != ST_EXIT_OK)
        cli_fail(&err);
    st_free(sql);
    st_free(table);
    st_delta_schema_free(schema);
    st_engine_close(eng);
    return rc;
}
