/*
 * silver_bench.c - the silver figure: a 10M-row SCD2 dimension, a batch
 * changing 1% of the keys (a tenth of them late, i.e. 0.1% of all keys,
 * sequenced before the stored history), merged by Strata (affected keys
 * only, deletion vectors + one appended file) versus the straightforward
 * SQL a user would write (recompute every key's history with window
 * functions and overwrite the table), in the same run.
 *
 *   silver_bench setup  DIR [ROWS]   builds DIR/silver (first load) and DIR/batch.parquet
 *   silver_bench full   DIR          full recompute + overwrite into DIR/full (same columns
 *                                    and rules as silver); full-lean: windows only
 *   silver_bench strata DIR          st_silver_merge_delta of the batch
 *   silver_bench sql    DIR SQL...   runs each statement on a fresh engine, printing its time
 *                                    and first row (for profiling the queries above)
 *   silver_bench all    DIR [ROWS]   the three in child processes, then one line:
 *     silver rows=... strata_s=... full_s=... speedup=... full_lean_s=... speedup_lean=...
 *            strata_bytes=... full_bytes=... strata_rss_mb=... full_rss_mb=...
 */
#include "strata/delta.h"
#include "strata/silver.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

static const char *yml = "from: bronze.dim\n"
                         "key: [id]\n"
                         "track: [name, score, segment]\n"
                         "sequence: seq\n"
                         "delete: \"_op = 'D'\"\n";

static int die(const st_err *err, const char *what)
{
    fprintf(stderr, "silver_bench: %s: %s\n", what, err->msg);
    return 1;
}

static double secs(int64_t t0) { return (double)(st_mono_ns() - t0) / 1e9; }

static long rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

static int64_t dir_bytes(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return 0;
    if (!S_ISDIR(sb.st_mode))
        return sb.st_size;
    int64_t total = 0;
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = st_path_join(path, e->d_name);
        total += dir_bytes(p);
        st_free(p);
    }
    if (d)
        closedir(d);
    return total;
}

static st_silver_entity *entity(st_err *err)
{
    st_cfg_doc *doc = NULL;
    st_silver_entity *e = NULL;
    if (st_cfg_load_string("dim.yml", yml, strlen(yml), &doc, err) == ST_OK)
        st_silver_entity_parse(st_cfg_root(doc), "dim", &e, err);
    st_cfg_doc_free(doc);
    return e;
}

static int setup(const char *dir, int64_t rows)
{
    st_err err = {0};
    st_engine *eng = NULL;
    st_silver_entity *ent = entity(&err);
    char *silver = st_path_join(dir, "silver");
    st_silver_stats st;
    if (!ent || st_engine_open(NULL, &eng, &err) != ST_OK)
        return die(&err, "setup");
    int64_t t0 = st_mono_ns();
    /* five countries; every key's first version at sequence 100 */
    if (st_engine_execf(eng, &err,
                        "CREATE TABLE base AS SELECT i AS id, (['DE','FR','IT','ES','NL'])[i %% 5 + "
                        "1] AS country, 'name-' || i AS name, CAST(i * 7 %% 1000 AS INTEGER) AS "
                        "score, 'seg-' || (i %% 13) AS segment, CAST(100 AS BIGINT) AS seq, 'I' "
                        "AS _op FROM range(%lld) t(i)",
                        (long long)rows) != ST_OK)
        return die(&err, "generate");
    if (st_silver_merge_delta(eng, ent, "SELECT * FROM base", silver, "load", "bench", 1, &st,
                              &err) != ST_OK)
        return die(&err, "first load");
    double load_s = secs(t0);
    /* the batch: 1% of keys change at sequence 200; a tenth of those (0.1%
     * of all keys) also get a late change at sequence 50, before the stored
     * first version */
    char *batch = st_path_join(dir, "batch.parquet");
    if (st_engine_execf(eng, &err,
                        "COPY (SELECT id, country, name, score + 1 AS score, segment, "
                        "CAST(200 AS BIGINT) AS seq, 'U' AS _op FROM base WHERE (id // 5) %% 100 = 7 "
                        "UNION ALL SELECT id, country, 'late-' || id, score, segment, CAST(50 AS "
                        "BIGINT), 'U' FROM base WHERE (id // 5) %% 1000 = 7) TO '%s' (FORMAT parquet)",
                        batch) != ST_OK)
        return die(&err, "batch");
    printf("silver-setup rows=%lld load_s=%.2f files=%lld\n", (long long)rows, load_s,
           (long long)st.rows_written);
    st_free(batch);
    st_free(silver);
    st_silver_entity_free(ent);
    st_engine_close(eng);
    return 0;
}

static int strata(const char *dir)
{
    st_err err = {0};
    st_engine *eng = NULL;
    st_silver_entity *ent = entity(&err);
    char *silver = st_path_join(dir, "silver");
    char *sql = st_sprintf("SELECT * FROM read_parquet('%s/batch.parquet')", dir);
    st_silver_stats st;
    if (!ent || st_engine_open(NULL, &eng, &err) != ST_OK)
        return die(&err, "strata");
    int64_t t0 = st_mono_ns();
    if (st_silver_merge_delta(eng, ent, sql, silver, "batch", "bench", st_now_ms(), &st, &err) != ST_OK)
        return die(&err, "strata merge");
    double s = secs(t0);
    printf("silver-strata wall_s=%.3f rows_in=%lld keys_changed=%lld rows_written=%lld "
           "rows_retired=%lld files_touched=%lld bytes_written=%lld rss_mb=%ld\n",
           s, (long long)st.rows_in, (long long)st.keys_changed, (long long)st.rows_written,
           (long long)st.rows_deleted, (long long)st.files_touched, (long long)st.bytes_written,
           rss_mb());
    st_free(sql);
    st_free(silver);
    st_silver_entity_free(ent);
    st_engine_close(eng);
    return 0;
}

/* What a user would write: every stored version back as a change, plus the
 * batch, window functions over everything to collapse repeats and derive
 * intervals, overwrite.  (Leaner than Strata's rebuild: no dedupe of ties,
 * no surrogate keys or hashes, no absorbed-change bookkeeping.) */
static int full(const char *dir, bool lean)
{
    st_err err = {0};
    st_engine *eng = NULL;
    st_delta_snapshot *s = NULL;
    char *silver = st_path_join(dir, "silver");
    char *out = st_path_join(dir, "full");
    char *scan = NULL;
    if (st_engine_open(NULL, &eng, &err) != ST_OK)
        return die(&err, "full");
    int64_t t0 = st_mono_ns();
    if (st_delta_snapshot_load(eng, silver, -1, &s, &err) != ST_OK)
        return die(&err, "full: reading silver");
    /* the files as a user would read them: Parquet with hive partitions
     * (the freshly loaded table has no deletion vector) */
    st_buf files;
    st_buf_init(&files, 0);
    for (size_t i = 0; i < s->n_files; i++) {
        if (s->files[i]->has_dv) {
            fprintf(stderr, "silver_bench: full: run it on the freshly loaded table\n");
            return 1;
        }
        st_buf_puts(&files, i ? ", " : "");
        st_buf_sql_str(&files, s->files[i]->abs_path);
    }
    scan = st_sprintf("SELECT * FROM read_parquet([%s], hive_partitioning = true)", files.data);
    st_buf_free(&files);
    st_rmtree(out, NULL);
    /* lean: the minimum (collapse repeats, intervals); same: the columns
     * and rules of Strata's table too (one change per key and sequence,
     * surrogate key, row hash) */
    const char *dedupe = lean ? "ev" : "(SELECT * FROM ev QUALIFY row_number() OVER (PARTITION BY "
                                       "country, id, seq ORDER BY del DESC, name DESC, score "
                                       "DESC, segment DESC) = 1)";
    const char *extra = lean ? ""
                             : ", CAST(md5_number_upper(CAST(to_json([country, CAST(id AS "
                               "VARCHAR), CAST(seq AS VARCHAR)]) AS VARCHAR)) >> 1 AS BIGINT) AS "
                               "_sk, CASE WHEN del THEN NULL ELSE CAST(md5_number_upper(CAST("
                               "to_json([name, CAST(score AS VARCHAR), segment]) AS VARCHAR)) >> 1 "
                               "AS BIGINT) END AS _row_hash";
    if (st_engine_execf(
            eng, &err,
            "COPY (WITH ev AS (SELECT id, country, name, score, segment, _valid_from AS seq, "
            "_is_deleted AS del FROM (%s) UNION ALL SELECT id, country, name, score, segment, seq, "
            "_op = 'D' FROM read_parquet('%s/batch.parquet')), "
            "c AS (SELECT *, lag(name) OVER w AS pn, lag(score) OVER w AS ps, lag(segment) OVER w "
            "AS pg, lag(del) OVER w AS pd FROM %s WINDOW w AS (PARTITION BY country, id ORDER BY "
            "seq)), "
            "v AS (SELECT * FROM c WHERE pd IS NULL OR pd <> del OR name IS DISTINCT FROM pn OR "
            "score IS DISTINCT FROM ps OR segment IS DISTINCT FROM pg) "
            "SELECT id, country, name, score, segment, seq AS _valid_from, lead(seq) OVER w AS "
            "_valid_to, lead(seq) OVER w IS NULL AS _is_current, del AS _is_deleted, row_number() "
            "OVER w AS _version%s FROM v WINDOW w AS (PARTITION BY country, id ORDER BY seq)) "
            "TO '%s' (FORMAT parquet, PARTITION_BY (country))",
            scan, dir, dedupe, extra, out) != ST_OK)
        return die(&err, "full recompute");
    double sec = secs(t0);
    printf("silver-full%s wall_s=%.3f bytes_written=%lld rss_mb=%ld\n", lean ? "-lean" : "", sec,
           (long long)dir_bytes(out), rss_mb());
    st_free(scan);
    st_delta_snapshot_free(s);
    st_free(silver);
    st_free(out);
    st_engine_close(eng);
    return 0;
}

/* Profiling aid: runs each statement, printing its time and first row. */
static int sql_timed(int n, char **stmts)
{
    st_err err = {0};
    st_engine *eng = NULL;
    if (st_engine_open(NULL, &eng, &err) != ST_OK)
        return die(&err, "sql");
    for (int i = 0; i < n; i++) {
        int64_t t0 = st_mono_ns();
        duckdb_result r;
        if (st_engine_query(eng, stmts[i], &r, &err) != ST_OK)
            return die(&err, stmts[i]);
        printf("%.3f s rows=%llu:", secs(t0), (unsigned long long)duckdb_row_count(&r));
        for (idx_t c = 0; duckdb_row_count(&r) > 0 && c < duckdb_column_count(&r) && c < 8; c++) {
            char *v = duckdb_value_varchar(&r, c, 0);
            printf(" %s", v ? v : "NULL");
            duckdb_free(v);
        }
        printf("  [%.60s]\n", stmts[i]);
        duckdb_destroy_result(&r);
    }
    st_engine_close(eng);
    return 0;
}

/* Runs "self MODE DIR [ROWS]" and returns the value of key in its output. */
static double child(const char *self, const char *mode, const char *dir, const char *rows,
                    const char *const *keys, double *vals, size_t n_keys)
{
    char *cmd = st_sprintf("'%s' %s '%s' %s", self, mode, dir, rows ? rows : "");
    FILE *p = popen(cmd, "r");
    st_free(cmd);
    char line[1024] = "";
    if (!p || !fgets(line, sizeof line, p)) {
        if (p)
            pclose(p);
        return -1;
    }
    fprintf(stderr, "%s", line);
    if (pclose(p) != 0)
        return -1;
    for (size_t k = 0; k < n_keys; k++) {
        char pat[64];
        snprintf(pat, sizeof pat, " %s=", keys[k]);
        const char *at = strstr(line, pat);
        vals[k] = at ? strtod(at + strlen(pat), NULL) : -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    st_log_init();
    if (argc < 3) {
        fprintf(stderr, "usage: silver_bench setup|strata|full|all DIR [ROWS]\n");
        return 2;
    }
    const char *mode = argv[1], *dir = argv[2];
    int64_t rows = argc > 3 ? strtoll(argv[3], NULL, 10) : 10000000;
    st_err err = {0};
    if (st_mkdirs(dir, &err) != ST_OK)
        return die(&err, "mkdir");
    if (!strcmp(mode, "setup"))
        return setup(dir, rows);
    if (!strcmp(mode, "strata"))
        return strata(dir);
    if (!strcmp(mode, "full"))
        return full(dir, false);
    if (!strcmp(mode, "full-lean"))
        return full(dir, true);
    if (!strcmp(mode, "sql"))
        return sql_timed(argc - 3, argv + 3);
    if (strcmp(mode, "all"))
        return 2;
    char rs[32];
    snprintf(rs, sizeof rs, "%lld", (long long)rows);
    const char *sk[] = {"wall_s", "bytes_written", "rss_mb", "rows_written", "files_touched"};
    double sv[5], fv[5], lv[5], dummy[1];
    const char *none[] = {"rows"};
    if (child(argv[0], "setup", dir, rs, none, dummy, 1) ||
        child(argv[0], "full", dir, NULL, sk, fv, 3) ||
        child(argv[0], "full-lean", dir, NULL, sk, lv, 3) ||
        child(argv[0], "strata", dir, NULL, sk, sv, 5)) {
        fprintf(stderr, "silver_bench: a phase failed\n");
        return 1;
    }
    printf("silver rows=%lld strata_s=%.3f full_s=%.3f speedup=%.1f full_lean_s=%.3f "
           "speedup_lean=%.1f strata_bytes=%.0f full_bytes=%.0f strata_rows_written=%.0f "
           "files_touched=%.0f strata_rss_mb=%.0f full_rss_mb=%.0f\n",
           (long long)rows, sv[0], fv[0], sv[0] > 0 ? fv[0] / sv[0] : 0, lv[0],
           sv[0] > 0 ? lv[0] / sv[0] : 0, sv[1], fv[1], sv[3], sv[4], sv[2], fv[2]);
    return 0;
}
