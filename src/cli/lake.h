/*
 * lake.h - finding Delta tables under a lake directory and mounting them
 * as DuckDB views; printing query results.
 *
 * Lake layout: <lake>/<layer>/<table>/_delta_log.  A table is mounted as the
 * view <layer>.<table> (one DuckDB schema per layer).
 */
#ifndef ST_CLI_LAKE_H
#define ST_CLI_LAKE_H

#include "strata/engine.h"

#include <stdio.h>

typedef enum cli_format { CLI_FMT_TABLE, CLI_FMT_CSV, CLI_FMT_JSON } cli_format;

int cli_parse_format(const char *s, cli_format *out);
/* Mounts every table of the lake as <layer>.<table>. */
st_rc cli_mount_lake(st_engine *eng, const char *lake, st_err *err);
/* Mounts "NAME=PATH[@VERSION]"; ST_ERR_INVALID for a malformed spec. */
st_rc cli_mount_spec(st_engine *eng, const char *spec, st_err *err);
/* Mounts one table as view `name` (a quoted, possibly schema-qualified SQL
 * name) at version (-1 latest). */
st_rc cli_mount_table(st_engine *eng, const char *name, const char *path, int64_t version,
                      st_err *err);
/* Runs sql and prints every row in fmt. */
st_rc cli_print_query(st_engine *eng, const char *sql, cli_format fmt, FILE *out, st_err *err);

#endif
