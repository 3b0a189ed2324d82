/*
 * cmd_features.c - `strata features training-set` (point-in-time correct
 * training sets from gold feature tables) and `strata gold powerbi` (the
 * TMDL semantic model of the gold star schema).
 */
#include "cli.h"

#include "strata/gold.h"
#include "strata/project.h"

#include <stdio.h>
#include <string.h>

/* The lake: --lake, else the project's (--project, default "."). OWNED. */
static char *lake_of(const char *lake, const char *project, st_err *err)
{
    if (lake)
        return st_strdup(lake);
    st_project *p = NULL;
    if (st_project_load(project ? project : ".", &p, err))
        return NULL;
    char *out = st_strdup(p->lake);
    st_project_free(p);
    return out;
}

static void usage_features(FILE *f)
{
    fprintf(f, "usage: strata features training-set --spine FILE --features NAME[,NAME...]\n"
               "                                    --out DIR [--entity COL] [--ts COL]\n"
               "                                    [--lake DIR | --project DIR]\n\n"
               "Joins every row of the spine (CSV or Parquet: entity, label time, label, ...)\n"
               "to the gold feature tables NAME (keyed by the entity column and feature_ts)\n"
               "as of the label time: the latest feature row with feature_ts <= label time,\n"
               "never a later one.  Writes DIR/training_set.parquet and DIR/manifest.json.\n");
}

int cmd_features(int argc, char **argv)
{
    st_err err = {0};
    const char *spine = NULL, *features = NULL, *out = NULL, *entity = NULL, *ts = NULL;
    const char *lake = NULL, *project = NULL;
    if (argc < 2 || strcmp(argv[1], "training-set")) {
        bool help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
        usage_features(help ? stdout : stderr);
        return help ? ST_EXIT_OK : ST_EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage_features(stdout);
            return ST_EXIT_OK;
        }
        const char **slot = !strcmp(a, "--spine")      ? &spine
                            : !strcmp(a, "--features") ? &features
                            : !strcmp(a, "--out")      ? &out
                            : !strcmp(a, "--entity")   ? &entity
                            : !strcmp(a, "--ts")       ? &ts
                            : !strcmp(a, "--lake")     ? &lake
                            : !strcmp(a, "--project")  ? &project
                                                       : NULL;
        if (!slot || i + 1 >= argc) {
            fprintf(stderr, "strata features: unknown or incomplete option '%s'\n", a);
            usage_features(stderr);
            return ST_EXIT_USAGE;
        }
        *slot = argv[++i];
    }
    if (!spine || !features || !out) {
        fprintf(stderr, "strata features training-set: --spine, --features and --out are needed\n");
        return ST_EXIT_USAGE;
    }
    int ret = ST_EXIT_ERROR;
    char *lk = lake_of(lake, project, &err);
    char *list = st_strdup(features);
    const char *names[64];
    size_t n = 0;
    st_engine *eng = NULL;
    if (!lk || !list)
        goto done;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t && n < 64;
         t = strtok_r(NULL, ",", &save))
        names[n++] = t;
    st_training_opts o = {.lake = lk, .spine = spine, .entity_col = entity, .ts_col = ts,
                          .features = names, .n_features = n, .out_dir = out};
    st_training_result r;
    if (st_engine_open(NULL, &eng, &err) || st_features_training_set(eng, &o, &r, &err))
        goto done;
    printf("training set: %lld rows (%lld with features) -> %s/training_set.parquet, "
           "%s/manifest.json\n", (long long)r.rows, (long long)r.rows_matched, out, out);
    ret = ST_EXIT_OK;
done:
    if (ret)
        cli_fail(&err);
    st_engine_close(eng);
    st_free(lk);
    st_free(list);
    return ret;
}

static void usage_gold(FILE *f)
{
    fprintf(f, "usage: strata gold powerbi --out DIR [--lake DIR | --project DIR]\n\n"
               "Writes a Power BI semantic model (TMDL folder DIR/definition) for the fact_*\n"
               "and dim_* tables in the lake's gold layer; see docs/powerbi.md.\n");
}

int cmd_gold(int argc, char **argv)
{
    st_err err = {0};
    const char *out = NULL, *lake = NULL, *project = NULL;
    if (argc < 2 || strcmp(argv[1], "powerbi")) {
        bool help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
        usage_gold(help ? stdout : stderr);
        return help ? ST_EXIT_OK : ST_EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = !strcmp(a, "--out")       ? &out
                            : !strcmp(a, "--lake")    ? &lake
                            : !strcmp(a, "--project") ? &project
                                                      : NULL;
        if (!slot || i + 1 >= argc) {
            fprintf(stderr, "strata gold: unknown or incomplete option '%s'\n", a);
            usage_gold(stderr);
            return ST_EXIT_USAGE;
        }
        *slot = argv[++i];
    }
    if (!out) {
        usage_gold(stderr);
        return ST_EXIT_USAGE;
    }
    int ret = ST_EXIT_ERROR;
    st_engine *eng = NULL;
    size_t n = 0;
    char *lk = lake_of(lake, project, &err);
    if (lk && !st_engine_open(NULL, &eng, &err) && !st_gold_powerbi(eng, lk, out, &n, &err)) {
        printf("power bi model: %zu tables -> %s/definition (TMDL)\n", n, out);
        ret = ST_EXIT_OK;
    }
    if (ret)
        cli_fail(&err);
    st_engine_close(eng);
    st_free(lk);
    return ret;
}
