/*
 * cmd_reprocess.c - `strata reprocess SOURCE.TABLE [--run ID ...] [--project DIR]`:
 * rebuilds a bronze table from its raw layer for the chosen runs (all runs
 * in raw when no --run is given), in one commit recorded as a run.
 */
#include "cli.h"

#include "strata/extract.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_extract_print(const st_extract_report *rep);

static void usage(FILE *f)
{
    fprintf(f, "usage: strata reprocess SOURCE.TABLE [--run RUN_ID ...] [--project DIR]\n"
               "  rebuilds bronze from raw/<target> for the given extraction runs\n"
               "  (default: every run raw holds): from the last full run on, later\n"
               "  incremental runs replacing rows by key (hashdiff tables: the change\n"
               "  log between consecutive runs); one atomic commit\n");
}

int cmd_reprocess(int argc, char **argv)
{
    st_extract_opts o = {0};
    const char *sel = NULL;
    int64_t runs[256];
    size_t n_runs = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return ST_EXIT_OK;
        } else if (!strcmp(argv[i], "--project") && i + 1 < argc) {
            o.project_dir = argv[++i];
        } else if (!strcmp(argv[i], "--run") && i + 1 < argc) {
            char *end = NULL;
            long long v = strtoll(argv[++i], &end, 10);
            if (!end || *end || v <= 0 || n_runs == sizeof runs / sizeof runs[0]) {
                fprintf(stderr, "strata reprocess: bad --run '%s'\n", argv[i]);
                return ST_EXIT_USAGE;
            }
            runs[n_runs++] = v;
        } else if (argv[i][0] != '-' && !sel) {
            sel = argv[i];
        } else {
            fprintf(stderr, "strata reprocess: unexpected argument '%s'\n", argv[i]);
            return ST_EXIT_USAGE;
        }
    }
    if (!sel) {
        usage(stderr);
        return ST_EXIT_USAGE;
    }
    st_extract_report *rep = NULL;
    st_err err;
    st_err_clear(&err);
    st_rc rc = st_extract_reprocess(&o, sel, runs, n_runs, &rep, &err);
    cli_extract_print(rep);
    st_extract_report_free(rep);
    return rc ? cli_fail(&err) : ST_EXIT_OK;
}
