/*
 * cmd_silver.c - `strata silver run ENTITY` and `strata silver erase ENTITY
 * --where PRED`: thin shells over st_silver_run / st_silver_fact_run (for
 * `kind: fact`) and st_silver_erase.  The
 * entity is read from the project (models/silver/ENTITY.yml or the silver:
 * section of strata.yml); the lake is strata.yml's `lake` (default ./lake)
 * relative to the project, or --lake.
 */
#include "cli.h"

#include "strata/silver.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: strata silver run ENTITY [--project DIR] [--lake DIR]\n"
               "       strata silver erase ENTITY --where PREDICATE [--project DIR] [--lake DIR]\n"
               "\n"
               "run    merges what the entity's bronze table gained since the last run into\n"
               "       silver.ENTITY (SCD Type 2 history; late changes are placed by sequence)\n"
               "erase  removes every version of the keys matching PREDICATE (hard delete)\n");
}

/* The lake directory: --lake, else strata.yml's `lake` relative to the
 * project, else <project>/lake.  OWNED. */
static char *lake_dir(const char *project, const char *lake_opt, st_err *err)
{
    if (lake_opt)
        return st_strdup(lake_opt);
    char *yml = st_path_join(project, "strata.yml");
    const char *lake = "lake";
    st_cfg_doc *doc = NULL;
    if (yml && st_path_exists(yml) && st_cfg_load_file(yml, &doc, err) == ST_OK) {
        const char *v = NULL;
        if (st_cfg_get_str(st_cfg_root(doc), "lake", "lake", &v, err) == ST_OK && v)
            lake = v;
    }
    char *out = lake[0] == '/' ? st_strdup(lake) : st_path_join(project, lake);
    st_cfg_doc_free(doc);
    st_free(yml);
    return out;
}

int cmd_silver(int argc, char **argv)
{
    const char *project = ".", *lake_opt = NULL, *where = NULL, *action = NULL, *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return ST_EXIT_OK;
        } else if (!strcmp(argv[i], "--project") && i + 1 < argc) {
            project = argv[++i];
        } else if (!strcmp(argv[i], "--lake") && i + 1 < argc) {
            lake_opt = argv[++i];
        } else if (!strcmp(argv[i], "--where") && i + 1 < argc) {
            where = argv[++i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "strata silver: unknown option %s\n", argv[i]);
            usage(stderr);
            return ST_EXIT_USAGE;
        } else if (!action) {
            action = argv[i];
        } else if (!name) {
            name = argv[i];
        } else {
            usage(stderr);
            return ST_EXIT_USAGE;
        }
    }
    if (!action || !name || (strcmp(action, "run") && strcmp(action, "erase")) ||
        (!strcmp(action, "erase") && !where)) {
        usage(stderr);
        return ST_EXIT_USAGE;
    }
    if (!strncmp(name, "silver.", 7))
        name += 7;
    st_err err = {0};
    st_silver_entity *ent = NULL;
    st_engine *eng = NULL;
    char *lake = NULL, *table = NULL;
    int code = ST_EXIT_ERROR;
    st_silver_stats st;
    bool is_fact = false;
    if (st_silver_is_fact(project, name, &is_fact, &err) != ST_OK)
        goto done;
    lake = lake_dir(project, lake_opt, &err);
    if (!lake) {
        st_fail(&err, ST_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (st_engine_open(NULL, &eng, &err) != ST_OK)
        goto done;
    if (is_fact && !strcmp(action, "run")) {
        st_silver_fact *fact = NULL;
        st_silver_fact_stats fs;
        st_rc frc = st_silver_fact_load(project, name, &fact, &err);
        frc = frc ? frc : st_silver_fact_run(eng, lake, fact, &fs, &err);
        st_silver_fact_free(fact);
        if (frc != ST_OK)
            goto done;
        printf("silver.%s: %s bronze_version=%lld rows_in=%lld rows_ok=%lld quarantined=%lld\n",
               name, fs.skipped ? "up to date" : "loaded", (long long)fs.source_version,
               (long long)fs.rows_in, (long long)fs.rows_ok, (long long)fs.rows_quarantined);
        code = ST_EXIT_OK;
        goto done;
    }
    if (st_silver_entity_load(project, name, &ent, &err) != ST_OK)
        goto done;
    if (!strcmp(action, "run")) {
        if (st_silver_run(eng, lake, ent, &st, &err) != ST_OK)
            goto done;
        printf("silver.%s: %s bronze_version=%lld rows_in=%lld keys=%lld changed=%lld "
               "rows_written=%lld rows_retired=%lld files_touched=%lld version=%lld\n",
               name, st.skipped ? "up to date" : "merged", (long long)st.source_version,
               (long long)st.rows_in, (long long)st.keys_affected, (long long)st.keys_changed,
               (long long)st.rows_written, (long long)st.rows_deleted,
               (long long)st.files_touched, (long long)st.version);
    } else {
        char *full = st_sprintf("silver.%s", name);
        table = full ? st_silver_table_path(lake, full) : NULL;
        st_free(full);
        if (!table || st_silver_erase(eng, table, where, &st, &err) != ST_OK)
            goto done;
        printf("silver.%s: erased %lld rows in %lld files, version=%lld\n", name,
               (long long)st.rows_deleted, (long long)st.files_touched, (long long)st.version);
    }
    code = ST_EXIT_OK;
done:
    if (code != ST_EXIT_OK)
        cli_fail(&err);
    st_engine_close(eng);
    st_silver_entity_free(ent);
    st_free(lake);
    st_free(table);
    return code;
}
