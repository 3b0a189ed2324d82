/*
 * cmd_sql.c - `strata sql`: mounts Delta tables as DuckDB views and prints
 * the result of one SQL statement as csv, json (one object per line) or an
 * aligned table.  Output formatting is shared with other commands through
 * cli_print_result (print.c).
 */
#include "cli.h"
#include "lake.h"

#include "strata/delta.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: strata sql [--lake DIR] [--table NAME=PATH[@VERSION]]... [--format csv|json|table] \"SQL\"\n"
            "\n"
            "Runs SQL over Delta tables.  Every table under the lake directory is a view\n"
            "named <layer>.<table> (e.g. bronze.web_events); --table mounts more tables,\n"
            "optionally at an older VERSION (time travel).\n"
            "\n"
            "  --lake DIR       lake root (default: $STRATA_LAKE, else ./lake if present)\n"
            "  --table N=P[@V]  mount the Delta table at path P as view N (at version V)\n"
            "  --format F       csv (header row), json (one object per line) or table (default)\n"
            "  --help           this text\n"
            "\n"
            "exit status: 0 ok, 1 error (names the table, file and reason), 2 usage\n");
}

int cmd_sql(int argc, char **argv)
{
    static const struct option opts[] = {
        {"lake", required_argument, NULL, 'l'},
        {"table", required_argument, NULL, 't'},
        {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *lake = getenv("STRATA_LAKE");
    const char *format = "table";
    const char *mounts[256];
    size_t n_mounts = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "l:t:f:h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': lake = optarg; break;
        case 't':
            if (n_mounts == sizeof mounts / sizeof mounts[0]) {
                fprintf(stderr, "strata sql: too many --table options\n");
                return ST_EXIT_USAGE;
            }
            mounts[n_mounts++] = optarg;
            break;
        case 'f': format = optarg; break;
        case 'h': usage(stdout); return ST_EXIT_OK;
        default: usage(stderr); return ST_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "strata sql: expected exactly one SQL statement\n");
        usage(stderr);
        return ST_EXIT_USAGE;
    }
    cli_format fmt;
    if (cli_parse_format(format, &fmt) != 0) {
        fprintf(stderr, "strata sql: unknown format '%s' (csv, json, table)\n", format);
        return ST_EXIT_USAGE;
    }
    if (!lake && st_is_dir("lake"))
        lake = "lake";

    st_err err;
    st_err_clear(&err);
    st_engine *eng = NULL;
    int rc = ST_EXIT_ERROR;
    if (st_engine_open(NULL, &eng, &err))
        return cli_fail(&err);
    if (lake && cli_mount_lake(eng, lake, &err))
        goto done;
    for (size_t i = 0; i < n_mounts; i++) {
        if (cli_mount_spec(eng, mounts[i], &err)) {
            if (err.code == ST_ERR_INVALID) {
                fprintf(stderr, "strata sql: %s\n", err.msg);
                rc = ST_EXIT_USAGE;
                st_engine_close(eng);
                return rc;
            }
            goto done;
        }
    }
    if (cli_print_query(eng, argv[optind], fmt, stdout, &err))
        goto done;
    rc = ST_EXIT_OK;
done:
    if (rc != ST_EXIT_OK && err.code != ST_OK)
        cli_fail(&err);
    st_engine_close(eng);
    return rc;
}
