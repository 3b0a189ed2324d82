/*
 * cmd_load.c - `strata load` (one loader pass: raw event log -> raw and
 * bronze Delta tables) and `strata erase --subject ID` (crypto-shred the
 * subject's key and delete their raw/bronze rows).  The loader itself is
 * src/load/; this file reads flags and strata.yml.
 */
#include "cli.h"
#include "strata/load.h"

#include <stdio.h>
#include <string.h>

static void usage_load(FILE *f)
{
    fprintf(f, "usage: strata load [--project DIR | --config FILE]\n"
               "\n"
               "Loads the collector's event log from the checkpoint to its end into\n"
               "<lake>/raw/events and <lake>/bronze/<family> (schema registry, dedup,\n"
               "quarantine, PII policy; see docs/ingestion.md), then prints a summary.\n");
}

static void usage_erase(FILE *f)
{
    fprintf(f, "usage: strata erase --subject ID [--project DIR | --config FILE]\n"
               "\n"
               "Destroys the subject's encryption key (their encrypted prompts become\n"
               "unreadable everywhere) and deletes their rows from the raw and bronze\n"
               "tables.\n");
}

/* Loads strata.yml into *cfg; path from --config or <project>/strata.yml. */
static st_rc load_cfg(const char *project, const char *config, st_loader_cfg **cfg, st_err *err)
{
    char *path = config ? st_strdup(config) : st_path_join(project ? project : ".", "strata.yml");
    if (!path)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    const char *slash = strrchr(path, '/');
    char *base = slash ? st_strndup(path, (size_t)(slash - path)) : st_strdup(".");
    st_cfg_doc *doc = NULL;
    st_rc rc = st_cfg_load_file(path, &doc, err);
    rc = rc ? rc : st_loader_cfg_load(st_cfg_root(doc), base && *base ? base : "/", cfg, err);
    st_cfg_doc_free(doc);
    st_free(path);
    st_free(base);
    return rc;
}

static int parse(int argc, char **argv, const char **project, const char **config,
                 const char **subject, void (*usage)(FILE *))
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 1;
        }
        if (i + 1 >= argc || (strcmp(a, "--project") && strcmp(a, "--config") &&
                              (!subject || strcmp(a, "--subject")))) {
            fprintf(stderr, "strata %s: unknown or incomplete option '%s'\n", argv[0], a);
            usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--project"))
            *project = argv[++i];
        else if (!strcmp(a, "--config"))
            *config = argv[++i];
        else
            *subject = argv[++i];
    }
    return 0;
}

int cmd_load(int argc, char **argv)
{
    const char *project = NULL, *config = NULL;
    int p = parse(argc, argv, &project, &config, NULL, usage_load);
    if (p)
        return p == 1 ? ST_EXIT_OK : ST_EXIT_USAGE;
    st_err err;
    st_loader_cfg *cfg = NULL;
    st_loader *l = NULL;
    st_load_stats st = {0};
    int code = ST_EXIT_ERROR;
    int64_t t0 = st_mono_ns();
    if (load_cfg(project, config, &cfg, &err) || st_loader_open(cfg, &l, &err) ||
        st_loader_run_once(l, &st, &err)) {
        cli_fail(&err);
        goto out;
    }
    double s = (double)(st_mono_ns() - t0) / 1e9;
    printf("loaded %lld events in %lld batches (%.2f s): %lld rows to bronze, %lld duplicates, "
           "%lld quarantined, %lld late; log position %llu\n",
           (long long)st.read, (long long)st.batches, s, (long long)st.loaded,
           (long long)st.duplicates, (long long)st.quarantined, (long long)st.late,
           (unsigned long long)st.position);
    code = ST_EXIT_OK;
out:
    st_loader_close(l);
    st_loader_cfg_free(cfg);
    return code;
}

int cmd_erase(int argc, char **argv)
{
    const char *project = NULL, *config = NULL, *subject = NULL;
    int p = parse(argc, argv, &project, &config, &subject, usage_erase);
    if (p)
        return p == 1 ? ST_EXIT_OK : ST_EXIT_USAGE;
    if (!subject) {
        fprintf(stderr, "strata erase: --subject ID is required\n");
        usage_erase(stderr);
        return ST_EXIT_USAGE;
    }
    st_err err;
    st_loader_cfg *cfg = NULL;
    int64_t rows = 0;
    int code = ST_EXIT_ERROR;
    if (load_cfg(project, config, &cfg, &err) || st_load_erase(cfg, subject, &rows, &err)) {
        cli_fail(&err);
        goto out;
    }
    printf("erased subject %s: key destroyed, %lld rows deleted from raw and bronze\n", subject,
           (long long)rows);
    code = ST_EXIT_OK;
out:
    st_loader_cfg_free(cfg);
    return code;
}
