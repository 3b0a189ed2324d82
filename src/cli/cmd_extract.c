/*
 * cmd_extract.c - `strata extract SOURCE[.TABLE] [--project DIR] [--full]
 * [--from X --to Y] [--to-dir DIR] [--quiet]`: runs the extraction module
 * (src/extract) and prints one summary line per table.
 */
#include "cli.h"

#include "strata/extract.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: strata extract [SOURCE[.TABLE]] [--project DIR] [--full]\n"
               "                      [--from X --to Y] [--to-dir DIR] [--quiet]\n\n"
               "Extracts the tables declared under `sources:` in strata.yml into bronze.\n"
               "  --full        re-snapshot (incremental and hashdiff tables too)\n"
               "  --from/--to   re-extract the cursor range [X, Y) and replace it in bronze\n"
               "  --to-dir DIR  agent mode: write Parquet chunks + manifest.json, no commit\n"
               "                (commit later with `strata import DIR`)\n");
}

int cli_extract_print(const st_extract_report *rep);
int cli_extract_print(const st_extract_report *rep)
{
    for (size_t i = 0; rep && i < rep->n_tables; i++) {
        const st_extract_result *t = &rep->tables[i];
        if (t->rc == 0)
            printf("ok     %-40s %-11s run=%lld rows_read=%lld rows_written=%lld bytes=%lld"
                   " chunks=%d resumed=%d version=%lld %lld ms\n",
                   t->target, t->strategy, (long long)t->run_id, (long long)t->rows_read,
                   (long long)t->rows_written, (long long)t->bytes, t->n_chunks,
                   t->n_chunks_resumed, (long long)t->version, (long long)t->duration_ms);
        else
            printf("FAILED %-40s %s\n", t->target, t->error ? t->error : "");
    }
    return 0;
}

int cmd_extract(int argc, char **argv)
{
    st_extract_opts o = {0};
    const char *selector = NULL;
    o.progress = isatty(2);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return ST_EXIT_OK;
        } else if (!strcmp(a, "--project") && more) {
            o.project_dir = argv[++i];
        } else if (!strcmp(a, "--full")) {
            o.full = true;
        } else if (!strcmp(a, "--from") && more) {
            o.range_from = argv[++i];
        } else if (!strcmp(a, "--to") && more) {
            o.range_to = argv[++i];
        } else if (!strcmp(a, "--to-dir") && more) {
            o.to_dir = argv[++i];
        } else if (!strcmp(a, "--quiet")) {
            o.progress = false;
        } else if (a[0] != '-' && !selector) {
            selector = a;
        } else {
            fprintf(stderr, "strata extract: unexpected argument '%s'\n", a);
            usage(stderr);
            return ST_EXIT_USAGE;
        }
    }
    st_extract_report *rep = NULL;
    st_err err;
    st_err_clear(&err);
    st_rc rc = st_extract_run(&o, selector, &rep, &err);
    cli_extract_print(rep);
    st_extract_report_free(rep);
    if (rc)
        return cli_fail(&err);
    return ST_EXIT_OK;
}
