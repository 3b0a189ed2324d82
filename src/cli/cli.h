/*
 * cli.h - shared by the subcommand files of the `strata` binary.
 */
#ifndef ST_CLI_H
#define ST_CLI_H

#include "strata/core.h"

enum { ST_EXIT_OK = 0, ST_EXIT_ERROR = 1, ST_EXIT_USAGE = 2 };

struct st_cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
};

int cmd_sql(int argc, char **argv);
int cmd_table(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_extract(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_reprocess(int argc, char **argv);
int cmd_silver(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_erase(int argc, char **argv);
int cmd_run(int argc, char **argv);      /* cmd_run.c */
int cmd_plan(int argc, char **argv);
int cmd_backfill(int argc, char **argv);
int cmd_runs(int argc, char **argv);
int cmd_schedule(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_features(int argc, char **argv); /* cmd_features.c */
int cmd_gold(int argc, char **argv);

/* Prints "strata: <msg>" to stderr and returns ST_EXIT_ERROR. */
int cli_fail(const st_err *err);

#endif
