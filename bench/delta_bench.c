/*
 * delta_bench.c - storage-layer figures for `make bench`.
 *
 *   delta_bench append-duckdb DIR ROWS   DuckDB's own COPY TO parquet (baseline)
 *   delta_bench append-strata DIR ROWS   st_delta_write of the same rows
 *   delta_bench snapshot DIR COMMITS     snapshot load with and without checkpoint
 *   delta_bench commit DIR N             latency of N small appends (p50/p99)
 *   delta_bench query DIR                aggregate over a Strata view vs read_parquet
 *
 * Each prints one line "name key=value ..." that scripts/bench.sh collects.
 * Peak RSS is measured by the script around each process.
 */
#include "strata/delta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void die(const st_err *e)
{
    fprintf(stderr, "delta_bench: %s\n", e->msg);
    exit(1);
}

static double secs(int64_t ns) { return (double)ns / 1e9; }

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* 10 mixed columns: ints, doubles, decimal, strings, date, timestamp, bool */
static const char *SRC =
    "CREATE OR REPLACE TABLE src AS SELECT i::BIGINT AS id, (i % 1000)::INTEGER AS c_int, "
    "(i * 0.37)::DOUBLE AS c_double, ((i % 100000) / 100.0)::DECIMAL(18,2) AS c_dec, "
    "'customer-' || (i % 50000)::VARCHAR AS c_str, ['DE','FR','LU','NL'][1 + (i % 4)::INTEGER] AS c_country, "
    "DATE '2024-01-01' + (i % 700)::INTEGER AS c_date, "
    "TIMESTAMPTZ '2024-01-01 00:00:00+00' + i * INTERVAL 1 SECOND AS c_ts, (i % 3 = 0) AS c_bool, "
    "md5(i::VARCHAR) AS c_hash FROM range(%lld) t(i)";

static st_engine *open_engine(void)
{
    st_err err;
    st_engine *e = NULL;
    if (st_engine_open(NULL, &e, &err))
        die(&err);
    return e;
}

static void make_src(st_engine *e, long long rows)
{
    st_err err;
    if (st_engine_execf(e, &err, SRC, rows))
        die(&err);
}

static int append_duckdb(const char *dir, long long rows)
{
    st_engine *e = open_engine();
    make_src(e, rows);
    st_err err;
    st_mkdirs(dir, &err);
    int64_t t = st_mono_ns();
    if (st_engine_execf(e, &err, "COPY src TO '%s/baseline.parquet' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1048576)", dir))
        die(&err);
    double s = secs(st_mono_ns() - t);
    printf("append-duckdb rows=%lld seconds=%.3f rows_per_s=%.0f\n", rows, s, (double)rows / s);
    st_engine_close(e);
    return 0;
}

static int append_strata(const char *dir, long long rows)
{
    st_engine *e = open_engine();
    make_src(e, rows);
    st_err err;
    char *table = st_sprintf("%s/strata_append", dir);
    st_rmtree(table, &err);
    st_delta_schema *schema = NULL;
    if (st_delta_schema_from_ddl("id long, c_int int, c_double double, c_dec decimal(18,2), c_str string, "
                                 "c_country string, c_date date, c_ts timestamp, c_bool boolean, c_hash string",
                                 &schema, &err) ||
        st_delta_create(table, schema, NULL, &err))
        die(&err);
    st_delta_write_opts wo = {.mode = ST_DELTA_APPEND, .target_file_rows = rows};
    st_delta_result res;
    int64_t t = st_mono_ns();
    if (st_delta_write(e, table, "SELECT * FROM src", &wo, &res, &err))
        die(&err);
    double s = secs(st_mono_ns() - t);
    printf("append-strata rows=%lld seconds=%.3f rows_per_s=%.0f files=%lld\n", rows, s,
           (double)rows / s, (long long)res.files_added);
    st_delta_schema_free(schema);
    st_free(table);
    st_engine_close(e);
    return 0;
}

/* Writes commits from..from+n-1 straight into _delta_log, one add of a hard
 * link to a tiny Parquet file each: the fixture for timing snapshot loads
 * (committing through the API would replay the growing log every time). */
static void write_commits(const char *table, const char *seed, int64_t from, int64_t n)
{
    for (int64_t i = from; i < from + n; i++) {
        char name[64];
        snprintf(name, sizeof name, "part-%08lld.parquet", (long long)i);
        char *abs = st_path_join(table, name);
        if (link(seed, abs) != 0) {
            perror("link");
            exit(1);
        }
        char *log = st_sprintf("%s/_delta_log/%020lld.json", table, (long long)i);
        char *body = st_sprintf("{\"commitInfo\":{\"timestamp\":%lld,\"operation\":\"WRITE\",\"isBlindAppend\":true}}\n"
                                "{\"add\":{\"path\":\"%s\",\"partitionValues\":{},\"size\":500,"
                                "\"modificationTime\":%lld,\"dataChange\":true,\"stats\":\"{\\\"numRecords\\\":1}\"}}\n",
                                (long long)st_now_ms(), name, (long long)st_now_ms());
        st_err err;
        if (st_file_put_if_absent(log, body, strlen(body), &err))
            die(&err);
        st_free(body);
        st_free(log);
        st_free(abs);
    }
}

static double median_load(st_engine *e, const char *table, int runs, int64_t *version)
{
    int64_t *ns = st_calloc((size_t)runs, sizeof *ns);
    st_err err;
    for (int r = 0; r < runs; r++) {
        st_delta_snapshot *s = NULL;
        int64_t t = st_mono_ns();
        if (st_delta_snapshot_load(e, table, -1, &s, &err))
            die(&err);
        ns[r] = st_mono_ns() - t;
        *version = s->version;
        st_delta_snapshot_free(s);
    }
    qsort(ns, (size_t)runs, sizeof *ns, cmp_i64);
    double ms = (double)ns[runs / 2] / 1e6;
    st_free(ns);
    return ms;
}

static int snapshot_bench(const char *dir, long long commits)
{
    st_engine *e = open_engine();
    st_err err;
    char *table = st_sprintf("%s/snap10k", dir);
    st_rmtree(table, &err);
    st_delta_schema *schema = NULL;
    st_kv props[] = {{"delta.checkpointInterval", "1000000000"}};
    st_delta_create_opts co = {.properties = props, .n_properties = 1};
    if (st_delta_schema_from_ddl("id long", &schema, &err) || st_delta_create(table, schema, &co, &err))
        die(&err);
    char *seed = st_sprintf("%s/seed.parquet", dir);
    if (st_engine_execf(e, &err, "COPY (SELECT 1::BIGINT AS id) TO '%s' (FORMAT parquet)", seed))
        die(&err);
    write_commits(table, seed, 1, commits - 10);   /* versions 1 .. commits-10 */
    int64_t v = 0;
    double no_cp = median_load(e, table, 5, &v);
    int64_t cpv = -1;
    if (st_delta_checkpoint(e, table, &cpv, &err))
        die(&err);
    write_commits(table, seed, commits - 9, 9);
    double with_cp = median_load(e, table, 21, &v);
    /* commits through the API on top of a checkpointed 10,000-file table */
    int64_t t = st_mono_ns();
    for (int k = 0; k < 50; k++) {
        char name[64];
        snprintf(name, sizeof name, "api-%03d.parquet", k);
        char *abs = st_path_join(table, name);
        if (link(seed, abs) != 0) {
            perror("link");
            exit(1);
        }
        st_delta_txn *tx = NULL;
        st_delta_file f = {.path = name, .abs_path = abs, .size = 500, .modification_time = st_now_ms(),
                           .data_change = true, .stats = "{\"numRecords\":1}", .num_records = 1,
                           .base_row_id = -1, .default_row_commit_version = -1};
        if (st_delta_txn_begin(e, table, NULL, "WRITE", &tx, &err) || st_delta_txn_add(tx, &f, &err) ||
            st_delta_txn_commit(tx, NULL, &err))
            die(&err);
        st_free(abs);
    }
    double commit_ms = secs(st_mono_ns() - t) * 1000 / 50;
    printf("snapshot commits=%lld version=%lld load_ms_checkpoint=%.2f load_ms_no_checkpoint=%.2f "
           "checkpoint_version=%lld commit_ms_avg=%.3f\n",
           commits, (long long)v, with_cp, no_cp, (long long)cpv, commit_ms);
    st_delta_schema_free(schema);
    st_free(seed);
    st_free(table);
    st_engine_close(e);
    return 0;
}

static int commit_bench(const char *dir, int n)
{
    st_engine *e = open_engine();
    st_err err;
    char *table = st_sprintf("%s/small_appends", dir);
    st_rmtree(table, &err);
    st_delta_schema *schema = NULL;
    if (st_delta_schema_from_ddl("id long, v string", &schema, &err) ||
        st_delta_create(table, schema, NULL, &err))
        die(&err);
    int64_t *ns = st_calloc((size_t)n, sizeof *ns);
    for (int i = 0; i < n; i++) {
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT (%d * 100 + i)::BIGINT AS id, 'v' || i AS v FROM range(100) t(i)", i);
        st_delta_write_opts wo = {.mode = ST_DELTA_APPEND};
        st_delta_result res;
        int64_t t = st_mono_ns();
        if (st_delta_write(e, table, sql, &wo, &res, &err))
            die(&err);
        ns[i] = st_mono_ns() - t;
    }
    qsort(ns, (size_t)n, sizeof *ns, cmp_i64);
    printf("commit appends=%d rows_each=100 p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", n,
           (double)ns[n / 2] / 1e6, (double)ns[(n * 99) / 100] / 1e6, (double)ns[n - 1] / 1e6);
    st_free(ns);
    st_delta_schema_free(schema);
    st_free(table);
    st_engine_close(e);
    return 0;
}

static double time_query(st_engine *e, const char *sql)
{
    st_err err;
    int64_t best[3];
    for (int r = 0; r < 3; r++) {
        int64_t t = st_mono_ns();
        if (st_engine_exec(e, sql, &err))
            die(&err);
        best[r] = st_mono_ns() - t;
    }
    qsort(best, 3, sizeof best[0], cmp_i64);
    return (double)best[1] / 1e6;
}

static int query_bench(const char *dir)
{
    st_engine *e = open_engine();
    st_err err;
    char *table = st_sprintf("%s/strata_append", dir);
    st_delta_snapshot *s = NULL;
    if (st_delta_snapshot_load(e, table, -1, &s, &err) || st_delta_register_view(e, "t", s, &err))
        die(&err);
    st_buf files;
    st_buf_init(&files, 0);
    st_buf_puts(&files, "[");
    for (size_t i = 0; i < s->n_files; i++) {
        if (i)
            st_buf_puts(&files, ",");
        st_buf_sql_str(&files, s->files[i]->abs_path);
    }
    st_buf_puts(&files, "]");
    const char *agg = "SELECT c_country, c_int %% 10 AS k, count(*), sum(c_double), avg(c_dec), max(c_ts) FROM %s GROUP BY ALL";
    char *q_view = st_sprintf(agg, "t");
    char *src = st_sprintf("read_parquet(%s)", files.data);
    char *q_raw = st_sprintf(agg, src);
    double v = time_query(e, q_view);
    double raw = time_query(e, q_raw);
    printf("query files=%zu view_ms=%.1f read_parquet_ms=%.1f ratio=%.3f\n", s->n_files, v, raw, v / raw);
    st_free(q_view);
    st_free(q_raw);
    st_free(src);
    st_buf_free(&files);
    st_delta_snapshot_free(s);
    st_free(table);
    st_engine_close(e);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: delta_bench append-duckdb|append-strata|snapshot|commit|query DIR [N]\n");
        return 2;
    }
    long long n = argc > 3 ? atoll(argv[3]) : 0;
    if (!strcmp(argv[1], "append-duckdb"))
        return append_duckdb(argv[2], n ? n : 10000000);
    if (!strcmp(argv[1], "append-strata"))
        return append_strata(argv[2], n ? n : 10000000);
    if (!strcmp(argv[1], "snapshot"))
        return snapshot_bench(argv[2], n ? n : 10000);
    if (!strcmp(argv[1], "commit"))
        return commit_bench(argv[2], n ? (int)n : 200);
    if (!strcmp(argv[1], "query"))
        return query_bench(argv[2]);
    fprintf(stderr, "delta_bench: unknown benchmark '%s'\n", argv[1]);
    return 2;
}
