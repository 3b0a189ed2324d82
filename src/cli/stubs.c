#include "cli.h"
#include <stdio.h>
int cli_fail(const st_err *err)
{
    fprintf(stderr, "strata: %s\n", err->msg);
    return ST_EXIT_ERROR;
}
int cmd_sql(int argc, char **argv) { (void)argc; (void)argv; return ST_EXIT_USAGE; }
int cmd_table(int argc, char **argv) { (void)argc; (void)argv; return ST_EXIT_USAGE; }
int cmd_demo(int argc, char **argv) { (void)argc; (void)argv; return ST_EXIT_USAGE; }
