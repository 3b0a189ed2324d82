/*
 * main.c - the `strata` command: dispatches subcommands and maps st_rc to
 * exit codes (0 ok, 1 error, 2 usage).  Subcommands live in cmd_*.c.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const struct st_cmd commands[] = {
    {"sql", cmd_sql, "run SQL over Delta tables"},
    {"table", cmd_table, "create, inspect and maintain a Delta table"},
    {"serve", cmd_serve, "run the event collector (and loader)"},
    {"send", cmd_send, "send events to a collector"},
    {"load", cmd_load, "load the event log into raw and bronze tables (one pass)"},
    {"erase", cmd_erase, "erase a subject: destroy their key, delete their rows"},
    {"extract", cmd_extract, "extract source tables into bronze"},
    {"import", cmd_import, "commit chunks written by extract --to-dir"},
    {"reprocess", cmd_reprocess, "rebuild a bronze table from raw for chosen runs"},
    {"silver", cmd_silver, "build silver SCD2 entities (run, erase)"},
    {"init", cmd_init, "create a commented project folder"},
    {"plan", cmd_plan, "show the asset DAG and what a run would do, and why"},
    {"run", cmd_run, "run assets in dependency order (--select, --workers)"},
    {"backfill", cmd_backfill, "run a partitioned asset once per partition (resumable)"},
    {"runs", cmd_runs, "list runs; `runs show RUN_ID` for one run"},
    {"schedule", cmd_schedule, "list schedules; --once runs one scheduler tick"},
    {"features", cmd_features, "build a point-in-time correct training set"},
    {"gold", cmd_gold, "gold tools: the Power BI semantic model (TMDL)"},
    {"demo", cmd_demo, "run the end-to-end demo"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: strata <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`strata <command> --help` describes each.\n");
}

int main(int argc, char **argv)
{
    st_log_init();
    if (argc < 2) {
        usage(stderr);
        return ST_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return ST_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "strata: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return ST_EXIT_USAGE;
}
