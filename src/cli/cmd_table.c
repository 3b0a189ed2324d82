/*
 * cmd_table.c - `strata table <action> PATH ...`: create, describe,
 * history, append, delete, update, restore, optimize, vacuum, checkpoint and
 * changes on one Delta table.  Each action parses its own options and calls
 * the delta API; results are printed in a few stable lines.
 */
#include "cli.h"
#include "lake.h"

#include "strata/delta.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct action {
    const char *name;
    int (*fn)(st_engine *eng, const char *path, int argc, char **argv, st_err *err);
    const char *usage;
};

static int parse_i64(const char *s, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno)
        return -1;
    *out = v;
    return 0;
}

/* Splits "a,b,c" into a NULL-terminated OWNED array of OWNED strings. */
static char **split_list(const char *s, size_t *n_out)
{
    size_t n = 1;
    for (const char *p = s; *p; p++)
        n += *p == ',';
    char **v = st_calloc(n + 1, sizeof *v);
    size_t k = 0;
    const char *start = s;
    for (const char *p = s;; p++) {
        if (*p == ',' || !*p) {
            while (start < p && *start == ' ')
                start++;
            const char *end = p;
            while (end > start && end[-1] == ' ')
                end--;
            if (end > start)
                v[k++] = st_strndup(start, (size_t)(end - start));
            start = p + 1;
            if (!*p)
                break;
        }
    }
    *n_out = k;
    return v;
}

static void free_list(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        st_free(*p);
    st_free(v);
}

static void print_result(const char *what, const st_delta_result *r)
{
    if (r->skipped) {
        printf("%s: skipped (application transaction already applied)\n", what);
        return;
    }
    if (r->version < 0) {
        printf("%s: nothing to commit\n", what);
        return;
    }
    printf("%s: committed version %lld (rows written %lld, deleted %lld, updated %lld; "
           "files added %lld, removed %lld; bytes added %lld)\n",
           what, (long long)r->version, (long long)r->rows_written, (long long)r->rows_deleted,
           (long long)r->rows_updated, (long long)r->files_added, (long long)r->files_removed,
           (long long)r->bytes_added);
}

/* ---- create ---- */
static int act_create(st_engine *eng, const char *path, int argc, char **argv, st_err *err)
{
    (void)eng;
    static const struct option o[] = {{"schema", required_argument, NULL, 's'},
                                      {"partition-by", required_argument, NULL, 'p'},
                                      {"property", required_argument, NULL, 'P'},
                                      {"name", required_argument, NULL, 'n'},
                                      {NULL, 0, NULL, 0}};
    const char *schema_ddl = NULL, *parts = NULL, *name = NULL;
    st_kv props[64];
    size_t n_props = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
        if (c == 's')
            schema_ddl = optarg;
        else if (c == 'p')
            parts = optarg;
        else if (c == 'n')
            name = optarg;
        else if (c == 'P') {
            char *eq = strchr(optarg, '=');
            if (!eq || n_props == 64) {
                fprintf(stderr, "strata table create: --property expects KEY=VALUE\n");
                return ST_EXIT_USAGE;
            }
            *eq = '\0';
            props[n_props].key = optarg;
            props[n_props].value = eq + 1;
            n_props++;
        } else
            return ST_EXIT_USAGE;
    }
    if (!schema_ddl) {
        fprintf(stderr, "strata table create: --schema is required\n");
        return ST_EXIT_USAGE;
    }
    st_delta_schema *schema = NULL;
    if (st_delta_schema_from_ddl(schema_ddl, &schema, err))
        return cli_fail(err);
    size_t n_parts = 0;
    char **pv = parts ? split_list(parts, &n_parts) : NULL;
    st_delta_create_opts co = {.name = name,
                               .partition_by = (const char *const *)pv,
                               .n_partition_by = n_parts,
                               .properties = props,
                               .n_properties = n_props};
    st_rc rc = st_delta_create(path, schema, &co, err);
    free_list(pv);
    st_delta_schema_free(schema);
    if (rc)
        return cli_fail(err);
    printf("created %s at version 0\n", path);
    return ST_EXIT_OK;
}

/* ---- describe ---- */
static void print_fields(const st_dfield *f, size_t n, int indent)
{
    for (size_t i = 0; i < n; i++) {
        char *ddl = st_delta_type_ddl(&f[i].type);
        printf("%*s%-24s %s%s", indent, "", f[i].name, ddl ? ddl : "?", f[i].nullable ? "" : " not null");
        if (f[i].physical_name)
            printf("  (physical %s, id %lld)", f[i].physical_name, (long long)f[i].cm_id);
        printf("\n");
        st_free(ddl);
    }
}

static int act_describe(st_engine *eng, const char *path, int argc, char **argv, st_err *err)
{
    static const struct option o[] = {{"version", required_argument, NULL, 'v'}, {NULL, 0, NULL, 0}};
    int64_t version = -1;
    int c;
    while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
        if (c != 'v' || parse_i64(optarg, &version))
            return ST_EXIT_USAGE;
    }
    st_delta_snapshot *s = NULL;
    if (st_delta_snapshot_load(eng, path, version, &s, err))
        return cli_fail(err);
    int64_t bytes = 0, rows = 0;
    bool rows_known = true;
    for (size_t i = 0; i < s->n_files; i++) {
        bytes += s->files[i]->size;
        if (s->files[i]->num_records < 0)
            rows_known = false;
        else
            rows += s->files[i]->num_records - (s->files[i]->has_dv ? s->files[i]->dv.cardinality : 0);
    }
    printf("table      %s\n", path);
    printf("version    %lld\n", (long long)s->version);
    printf("id         %s\n", s->metadata.id ? s->metadata.id : "");
    if (s->metadata.name)
        printf("name       %s\n", s->metadata.name);
    printf("protocol   reader %d, writer %d", s->protocol.min_reader, s->protocol.min_writer);
    for (size_t i = 0; i < s->protocol.n_reader_features; i++)
        printf("%s%s", i ? "," : " reader features: ", s->protocol.reader_features[i]);
    for (size_t i = 0; i < s->protocol.n_writer_features; i++)
        printf("%s%s", i ? "," : "; writer features: ", s->protocol.writer_features[i]);
    printf("\nfiles      %zu (%lld bytes)\n", s->n_files, (long long)bytes);
    if (rows_known)
        printf("rows       %lld\n", (long long)rows);
    printf("partitioned by");
    for (size_t i = 0; i < s->metadata.n_partition_columns; i++)
        printf("%s%s", i ? ", " : " ", s->metadata.partition_columns[i]);
    printf("%s\n", s->metadata.n_partition_columns ? "" : " (none)");
    for (size_t i = 0; i < s->metadata.n_configuration; i++)
        printf("property   %s = %s\n", s->metadata.configuration[i].key,
               s->metadata.configuration[i].value ? s->metadata.configuration[i].value : "null");
    printf("schema\n");
    if (s->metadata.schema)
        print_fields(s->metadata.schema->fields, s->metadata.schema->n_fields, 2);
    st_delta_snapshot_free(s);
    return ST_EXIT_OK;
}

/* ---- history ---- */
static int act_history(st_engine *eng, const char *path, int argc, char **argv, st_err *err)
{
    (void)eng;
    (void)argc;
    (void)argv;
    int64_t latest = -1;
    if (st_delta_latest_version(path, &latest, err))
        return cli_fail(err);
    if (latest < 0) {
        st_fail(err, ST_ERR_NOTFOUND, "%s is not a Delta table (no _delta_log commits)", path);
        return cli_fail(err);
    }
    printf("%-8s %-24s %-18s %s\n", "version", "timestamp", "operation", "parameters");
    for (int64_t v = latest; v >= 0; v--) {
        char *file = st_sprintf("%s/_delta_log/%020lld.json", path, (long long)v);
        char *text = NULL;
        size_t len = 0;
        st_rc rc = st_file_read(file, 256 << 20, &text, &len, NULL);
        st_free(file);
        if (rc)
            break; /* older commits removed by log cleanup */
        const char *op = "?";
        char params[512] = "";
        int64_t ts = -1;
        json_t *ci_root = NULL;
        for (char *line = text; line && *line;) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            json_error_t je;
            json_t *j = json_loads(line, 0, &je);
            json_t *ci = j ? json_object_get(j, "commitInfo") : NULL;
            if (ci) {
                ci_root = j;
                op = json_string_value(json_object_get(ci, "operation"));
                json_t *t = json_object_get(ci, "inCommitTimestamp");
                if (!json_is_integer(t))
                    t = json_object_get(ci, "timestamp");
                ts = json_is_integer(t) ? json_integer_value(t) : -1;
                char *p = json_dumps(json_object_get(ci, "operationParameters"), JSON_COMPACT | JSON_SORT_KEYS);
                if (p) {
                    snprintf(params, sizeof params, "%s", p);
                    free(p);
                }
                break;
            }
            json_decref(j);
            line = nl ? nl + 1 : NULL;
        }
        char when[32] = "";
        if (ts >= 0) {
            time_t secs = (time_t)(ts / 1000);
            struct tm tm;
            gmtime_r(&secs, &tm);
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        }
        printf("%-8lld %-24s %-18s %s\n", (long long)v, when, op ? op : "?", params);
        json_decref(ci_root);
        st_free(text);
    }
    return ST_EXIT_OK;
}

/* ---- append / overwrite ---- */
static int act_append(st_engine *eng, const char *path, int argc, char **argv, st_err *err)
{
    static const struct option o[] = {{"sql", required_argument, NULL, 's'},
                                      {"csv", required_argument, NULL, 'c'},
                                      {"parquet", required_argument, NULL, 'q'},
                                      {"json", required_argument, NULL, 'j'},
                                      {"merge-schema", no_argument, NULL, 'm'},
                                      {"overwrite", no_argument, NULL, 'o'},
                                      {"replace-where", required_argument, NULL, 'r'},
                                      {"app-id", required_argument, NULL, 'a'},
                                      {"app-version", required_argument, NULL, 'V'},
                                      {NULL, 0, NULL, 0}};
    st_delta_write_opts wo = {.mode = ST_DELTA_APPEND};
    char *select = NULL;
    int c;
    st_buf b;
    st_buf_init(&b, 0);
    while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
        st_buf_reset(&b);
        switch (c) {
        case 's': st_free(select); select = st_strdup(optarg); break;
        case 'c': st_buf_puts(&b, "SELECT * FROM read_csv("); st_buf_sql_str(&b, optarg); st_buf_puts(&b, ", header=true)"); st_free(select); select = st_strdup(b.data); break;
        case 'q': st_buf_puts(&b, "SELECT * FROM read_parquet("); st_buf_sql_str(&b, optarg); st_buf_puts(&b, ")"); st_free(select); select = st_strdup(b.data); break;
        case 'j': st_buf_puts(&b, "SELECT * FROM read_json_auto("); st_buf_sql_str(&b, optarg); st_buf_puts(&b, ")"); st_free(select); select = st_strdup(b.data); break;
        case 'm': wo.merge_schema = true; break;
        case 'o': wo.mode = ST_DELTA_OVERWRITE; break;
        case 'r': wo.mode = ST_DELTA_OVERWRITE; wo.replace_where = optarg; break;
        case 'a': wo.app_id = optarg; break;
        case 'V':
            if (parse_i64(optarg, &wo.app_version)) {
                st_buf_free(&b);
                st_free(select);
                return ST_EXIT_USAGE;
            }
            break;
        default: st_buf_free(&b); st_free(select); return ST_EXIT_USAGE;
        }
    }
    st_buf_free(&b);
    if (!select) {
        fprintf(stderr, "strata table append: give the rows with --sql, --csv, --parquet or --json\n");
        return ST_EXIT_USAGE;
    }
    st_delta_result res;
    st_rc rc = st_delta_write(eng, path, select, &wo, &res, err);
    st_free(select);
    if (rc)
        return cli_fail(err);
    print_result(wo.mode == ST_DELTA_APPEND ? "append" : "overwrite", &res);
    return ST_EXIT_OK;
}

/* ---- delete / update ---- */
static int act_delete(st_engine *eng, const char *path, int argc, char **argv, st_err *err)
{
    static const struct option o[] = {{"where", required_argument, NULL, 'w'}, {NULL, 0, NULL, 0}};
    const char *where = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
        if (c != 'w')
            return ST_EXIT_USAGE;
        where = optarg;
    }
    if (!where) {
        fprintf(stderr, "strata table delete: --where PREDICATE is required (use --where true to delete all rows)\n");
        return ST_EXIT_USAGE;
    }
    st_delta_result res;
    if (st_delta_delete(eng, path, where, &res, err))
        return cli_fail(err);
    print_result("delete", &res);
    return ST_EXIT_OK;
}

static int act_update(st_engine *eng, const char *path, int argc, char **argv, st_err *err)
{
    static const struct option o[] = {{"set", required_argument, NULL, 's'},
                                      {"where", required_argument, NULL, 'w'},
                                      {NULL, 0, NULL, 0}};
    const char *set = NULL, *where = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
        if (c == 's')
            set = optarg;
        else if (c == 'w')
            where = optarg;
        else
            return ST_EXIT_USAGE;
    }
    if (!set) {
        fprintf(stderr, "strata table update: --set \"col = expr, ...\" is required\n");
        return ST_EXIT_USAGE;
    }
    st_delta_result res;
    if (st_delta_update(eng, path, set, where ? where : "true", &res, err))
        return cli_fail(err);
    print_result("update", &res);
    return ST_EXIT_OK;
}

static int act_restore(st_engine *eng, const char *path, int argc, char **argv, st_err *err)
{
    static const struct option o[] = {{"version", required_argument, NULL, 'v'}, {NULL, 0, NULL, 0}};
    int64_t version = -1;
    int c;
    while ((c = getopt_long(argc, argv, "", o, NULL)) != -1)
        if (c != 'v' || parse_i64(optarg, &version))
            return ST_EXIT_USAGE;
    if (version < 0) {
        fprintf(stderr, "strata table restore: --version N is required\n");
        return ST_EXIT_USAGE;
    }
    st_delta_result res;
    if (st_delta_restore(eng, path, version, &res, err))
        return cli_fail(err);
    print_result("restore", &res);
    return ST_EXIT_OK;
}

static int act_optimize(st_engine *eng, const char *path, int argc, char **argv, st_err *err)
{
    static const struct option o[] = {{"target-size", required_argument, NULL, 't'},
                                      {"sort-by", required_argument, NULL, 's'},
                                      {"where", required_argument, NULL, 'w'},
                                      {NULL, 0, NULL, 0}};
    st_delta_optimize_opts oo = {0};
    char **sort = NULL;
    size_t n_sort = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
        if (c == 't' && parse_i64(optarg, &oo.target_size) == 0)
            continue;
        if (c == 's') {
            free_list(sort);
            sort = split_list(optarg, &n_sort);
            continue;
        }
        if (c == 'w') {
            oo.partition_filter = optarg;
            continue;
        }
        free_list(sort);
        return ST_EXIT_USAGE;
    }
    oo.zorder_by = (const char *const *)sort;
    oo.n_zorder_by = n_sort;
    st_delta_result res;
    st_rc rc = st_delta_optimize(eng, path, &oo, &res, err);
    free_list(sort);
    if (rc)
        return cli_fail(err);
    print_result("optimize", &res);
    return ST_EXIT_OK;
}

static int act_vacuum(st_engine *eng, const char *path, int argc, char **argv, st_err *err)
{
    static const struct option o[] = {{"retain-hours", required_argument, NULL, 'r'},
                                      {"dry-run", no_argument, NULL, 'd'},
                                      {"force", no_argument, NULL, 'f'},
                                      {NULL, 0, NULL, 0}};
    st_delta_vacuum_opts vo = {.retention_hours = -1};
    int c;
    while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
        if (c == 'r') {
            char *end = NULL;
            vo.retention_hours = strtod(optarg, &end);
            if (end == optarg || *end || vo.retention_hours < 0)
                return ST_EXIT_USAGE;
        } else if (c == 'd')
            vo.dry_run = true;
        else if (c == 'f')
            vo.force = true;
        else
            return ST_EXIT_USAGE;
    }
    char **paths = NULL;
    size_t n = 0;
    if (st_delta_vacuum(eng, path, &vo, &paths, &n, err))
        return cli_fail(err);
    for (size_t i = 0; i < n; i++) {
        printf("%s %s\n", vo.dry_run ? "would delete" : "deleted", paths[i]);
        st_free(paths[i]);
    }
    st_free(paths);
    printf("vacuum: %zu file%s %s\n", n, n == 1 ? "" : "s", vo.dry_run ? "to delete (dry run)" : "deleted");
    return ST_EXIT_OK;
}

static int act_checkpoint(st_engine *eng, const char *path, int argc, char **argv, st_err *err)
{
    (void)argc;
    (void)argv;
    int64_t v = -1;
    if (st_delta_checkpoint(eng, path, &v, err))
        return cli_fail(err);
    printf("checkpoint written at version %lld\n", (long long)v);
    return ST_EXIT_OK;
}

static int act_changes(st_engine *eng, const char *path, int argc, char **argv, st_err *err)
{
    static const struct option o[] = {{"from", required_argument, NULL, 'f'},
                                      {"to", required_argument, NULL, 't'},
                                      {"format", required_argument, NULL, 'F'},
                                      {NULL, 0, NULL, 0}};
    int64_t from = -1, to = -1;
    cli_format fmt = CLI_FMT_TABLE;
    int c;
    while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
        if (c == 'f' && parse_i64(optarg, &from) == 0)
            continue;
        if (c == 't' && parse_i64(optarg, &to) == 0)
            continue;
        if (c == 'F' && cli_parse_format(optarg, &fmt) == 0)
            continue;
        return ST_EXIT_USAGE;
    }
    if (from < 0) {
        fprintf(stderr, "strata table changes: --from VERSION is required\n");
        return ST_EXIT_USAGE;
    }
    if (to < 0 && st_delta_latest_version(path, &to, err))
        return cli_fail(err);
    char *sql = NULL;
    if (st_delta_changes_sql(eng, path, from, to, &sql, err))
        return cli_fail(err);
    char *q = st_sprintf("SELECT * FROM (%s) ORDER BY _commit_version", sql);
    st_rc rc = cli_print_query(eng, q, fmt, stdout, err);
    st_free(q);
    st_free(sql);
    return rc ? cli_fail(err) : ST_EXIT_OK;
}

static const struct action actions[] = {
    {"create", act_create, "PATH --schema \"id long not null, name string, ...\" [--partition-by a,b] [--property k=v]... [--name N]"},
    {"describe", act_describe, "PATH [--version N]"},
    {"history", act_history, "PATH"},
    {"append", act_append, "PATH (--sql SELECT | --csv F | --parquet F | --json F) [--merge-schema] [--overwrite | --replace-where PRED] [--app-id ID --app-version N]"},
    {"delete", act_delete, "PATH --where PREDICATE"},
    {"update", act_update, "PATH --set \"col = expr, ...\" [--where PREDICATE]"},
    {"restore", act_restore, "PATH --version N"},
    {"optimize", act_optimize, "PATH [--target-size BYTES] [--sort-by a,b] [--where PARTITION_PREDICATE]"},
    {"vacuum", act_vacuum, "PATH [--retain-hours H] [--dry-run] [--force]"},
    {"checkpoint", act_checkpoint, "PATH"},
    {"changes", act_changes, "PATH --from V [--to V] [--format csv|json|table]"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: strata table <action> PATH [options]\n\nactions:\n");
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        fprintf(f, "  %-10s %s\n", actions[i].name, actions[i].usage);
    fprintf(f, "\nexit status: 0 ok, 1 error, 2 usage\n");
}

int cmd_table(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? ST_EXIT_USAGE : ST_EXIT_OK;
    }
    const struct action *a = NULL;
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (!strcmp(argv[1], actions[i].name))
            a = &actions[i];
    if (!a) {
        fprintf(stderr, "strata table: unknown action '%s'\n", argv[1]);
        usage(stderr);
        return ST_EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: strata table %s %s\n", a->name, a->usage);
            return ST_EXIT_OK;
        }
    }
    if (argc < 3 || argv[2][0] == '-') {
        fprintf(stderr, "usage: strata table %s %s\n", a->name, a->usage);
        return ST_EXIT_USAGE;
    }
    const char *path = argv[2];
    st_err err;
    st_err_clear(&err);
    st_engine *eng = NULL;
    if (st_engine_open(NULL, &eng, &err))
        return cli_fail(&err);
    optind = 1;
    /* getopt sees "<action> --opt ..." with PATH removed */
    char **sub = st_calloc((size_t)argc, sizeof *sub);
    int n = 0;
    sub[n++] = argv[1];
    for (int i = 3; i < argc; i++)
        sub[n++] = argv[i];
    int rc = a->fn(eng, path, n, sub, &err);
    if (rc == ST_EXIT_USAGE)
        fprintf(stderr, "usage: strata table %s %s\n", a->name, a->usage);
    st_free(sub);
    st_engine_close(eng);
    return rc;
}
