/*
 * cmd_import.c - `strata import DIR [--project DIR]`: the second half of
 * agent mode.  Verifies the manifests written by `strata extract --to-dir`
 * (file sizes, row counts, hashes, schema) and commits the chunks to bronze.
 */
#include "cli.h"

#include "strata/extract.h"

#include <stdio.h>
#include <string.h>

int cli_extract_print(const st_extract_report *rep);

int cmd_import(int argc, char **argv)
{
    st_extract_opts o = {0};
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: strata import DIR [--project DIR]\n");
            return ST_EXIT_OK;
        } else if (!strcmp(argv[i], "--project") && i + 1 < argc) {
            o.project_dir = argv[++i];
        } else if (argv[i][0] != '-' && !dir) {
            dir = argv[i];
        } else {
            fprintf(stderr, "strata import: unexpected argument '%s'\n", argv[i]);
            return ST_EXIT_USAGE;
        }
    }
    if (!dir) {
        fprintf(stderr, "usage: strata import DIR [--project DIR]\n");
        return ST_EXIT_USAGE;
    }
    st_extract_report *rep = NULL;
    st_err err;
    st_err_clear(&err);
    st_rc rc = st_extract_import(&o, dir, &rep, &err);
    cli_extract_print(rep);
    st_extract_report_free(rep);
    return rc ? cli_fail(&err) : ST_EXIT_OK;
}
