/*
 * extract_db_test.c - extraction against real PostgreSQL and MariaDB servers
 * started by tests/extract/servers.sh in a temp dir on loopback ports:
 * full / incremental / hashdiff across runs with inserts, updates and
 * deletes (row count + order-independent checksum on both sides), chunked
 * parallel runs, a connection killed mid-run then resumed, clear errors for
 * a wrong password / closed port / missing table, schema drift, and the
 * ODBC path (psqlODBC, MariaDB Connector/ODBC) against the native one.
 */
#include "testutil.h"

#include "strata/delta.h"
#include "strata/extract.h"

#include <libpq-fe.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *g_dir;
static int g_pg = 55000, g_my = 34000;

static void pg_sql(const char *sql)
{
    char ci[256];
    snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d user=strata password=stratapw dbname=src", g_pg);
    PGconn *c = PQconnectdb(ci);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("pg: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static char *pg_str(const char *sql)
{
    char ci[256];
    snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d user=strata password=stratapw dbname=src", g_pg);
    PGconn *c = PQconnectdb(ci);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("pg: %s: %s", sql, PQerrorMessage(c));
    char *out = st_strdup(PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return out;
}

static MYSQL *my_conn(void)
{
    MYSQL *m = mysql_init(NULL);
    mysql_optionsv(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_optionsv(m, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'");
    if (!mysql_real_connect(m, "127.0.0.1", "strata", "stratapw", "src", (unsigned)g_my, NULL,
                            CLIENT_MULTI_STATEMENTS))
        fail_msg("mysql connect: %s", mysql_error(m));
    return m;
}

static void my_sql(const char *sql)
{
    MYSQL *m = my_conn();
    if (mysql_query(m, sql))
        fail_msg("mysql: %s: %s", sql, mysql_error(m));
    int more;
    do {
        MYSQL_RES *r = mysql_store_result(m);
        if (r)
            mysql_free_result(r);
        more = mysql_next_result(m);
        if (more > 0)
            fail_msg("mysql: %s: %s", sql, mysql_error(m));
    } while (more == 0);
    mysql_close(m);
}

static char *my_str(const char *sql)
{
    MYSQL *m = my_conn();
    if (mysql_query(m, sql))
        fail_msg("mysql: %s: %s", sql, mysql_error(m));
    MYSQL_RES *r = mysql_store_result(m);
    MYSQL_ROW row = mysql_fetch_row(r);
    char *out = st_strdup(row && row[0] ? row[0] : "");
    mysql_free_result(r);
    mysql_close(m);
    return out;
}

/* count|md5 of the sorted rendered rows of bronze table `target`, with
 * `where` applied and `render` a DuckDB expression per row. */
static char *bronze_sum(const char *proj, const char *target, const char *render, const char *where)
{
    char *path = st_sprintf("%s/lake/bronze/%s", proj, target);
    char *sql = st_sprintf("SELECT count(*) || '|' || coalesce(md5(string_agg(r, chr(10) ORDER BY r)), '')"
                           " FROM (SELECT %s AS r FROM b %s)", render, where ? where : "");
    char *out = tu_delta_str(path, "b", sql);
    st_free(sql);
    st_free(path);
    return out;
}

/* The text of `expr` over bronze table `target` (one row expected). */
static char *bronze_str(const char *proj, const char *target, const char *expr, const char *where)
{
    char *path = st_sprintf("%s/lake/bronze/%s", proj, target);
    char *sql = st_sprintf("SELECT string_agg(%s, ' || ') FROM b %s", expr, where ? where : "");
    char *out = tu_delta_str(path, "b", sql);
    st_free(sql);
    st_free(path);
    return out;
}

static char *src_sum(bool my, const char *table, const char *render)
{
    char *sql = st_sprintf(my ? "SELECT concat(count(*), '|', coalesce(md5(group_concat(r ORDER BY r"
                                " SEPARATOR '\\n')), '')) FROM (SELECT %s AS r FROM %s) s"
                              : "SELECT count(*) || '|' || coalesce(md5(string_agg(r, chr(10) ORDER BY r"
                                " COLLATE \"C\")), '') FROM (SELECT %s AS r FROM %s) s",
                           render, table);
    char *out = my ? my_str(sql) : pg_str(sql);
    st_free(sql);
    return out;
}

static char *project(const char *tag, const char *sources_yml)
{
    char *dir = st_sprintf("%s/%s", g_dir, tag);
    st_mkdirs(dir, NULL);
    char *yml = st_sprintf("lake: ./lake\nstate: ./state.db\nsources:\n%s", sources_yml);
    char *path = st_sprintf("%s/strata.yml", dir);
    TU_OK(st_file_write_atomic(path, yml, strlen(yml), &tu_err));
    st_free(yml);
    st_free(path);
    return dir;
}

static st_extract_report *run(const char *proj, const char *sel, bool full, st_rc want)
{
    st_extract_opts o = {0};
    o.project_dir = proj;
    o.full = full;
    st_extract_report *rep = NULL;
    st_rc rc = st_extract_run(&o, sel, &rep, &tu_err);
    if (rc != want)
        fail_msg("extract %s: rc %s, want %s: %s", sel, st_rc_name(rc), st_rc_name(want), tu_err.msg);
    return rep;
}

#define PG_SRC(name, extra)                                                                 \
    "  " name ":\n    kind: postgres\n    host: 127.0.0.1\n    port: %d\n    user: strata\n"  \
    "    database: src\n    password_env: XPW\n" extra

/* PostgreSQL rendering of the typed test table, and the DuckDB rendering of bronze. */
#define PG_RENDER "concat_ws('|', id, name, amount, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), d, ok::int, encode(b, 'hex'), u, j)"
#define DK_RENDER "concat_ws('|', id, name, amount, strftime(ts, '%Y-%m-%d %H:%M:%S'), d, ok::int, lower(hex(b)), u, j)"

static void seed_pg_typed(const char *t, int n)
{
    char *sql = st_sprintf(
        "DROP TABLE IF EXISTS %s; CREATE TABLE %s(id bigint primary key, name text, amount numeric(18,2),"
        " ts timestamptz, d date, ok boolean, b bytea, u uuid, j jsonb, updated_at timestamp);"
        "INSERT INTO %s SELECT g, 'näme ' || g || E'\\t\\\\x€', g * 1.25 - 500, '2024-01-01 00:00:00+02'::timestamptz"
        " + g * interval '1 minute', date '2024-01-01' + g, g %% 2 = 0, decode(lpad(to_hex(g %% 65536), 4, '0'), 'hex'),"
        " md5(g::text)::uuid, jsonb_build_object('k', g), timestamp '2024-01-01' + g * interval '1 second'"
        " FROM generate_series(1, %d) g; INSERT INTO %s(id) VALUES (%d)",
        t, t, t, n, t, n + 1);
    pg_sql(sql);
    st_free(sql);
}

static void check_pg(const char *proj, const char *table, const char *target)
{
    char *a = src_sum(false, table, PG_RENDER);
    char *b = bronze_sum(proj, target, DK_RENDER, NULL);
    assert_string_equal(a, b);
    st_free(a);
    st_free(b);
}

static void test_pg_full(void **state)
{
    (void)state;
    if (!g_dir)
        skip();
    seed_pg_typed("tfull", 5000);
    char *yml = st_sprintf(PG_SRC("pg", "    parallel: 2\n    batch_rows: 1500\n    tables:\n"
                                        "      public.tfull: {strategy: full, key: [id], chunks: 4}\n"),
                           g_pg);
    char *proj = project("pgfull", yml);
    st_extract_report *rep = run(proj, "pg", false, ST_OK);
    assert_int_equal(rep->tables[0].rows_written, 5001);
    assert_int_equal(rep->tables[0].n_chunks, 4);
    st_extract_report_free(rep);
    check_pg(proj, "tfull", "pg__public__tfull");
    pg_sql("UPDATE tfull SET name = 'upd', amount = 1.01 WHERE id % 7 = 0; DELETE FROM tfull WHERE id % 11 = 0;"
           "INSERT INTO tfull(id, name) VALUES (90000, NULL), (90001, '')");
    rep = run(proj, "pg.tfull", false, ST_OK);
    st_extract_report_free(rep);
    check_pg(proj, "tfull", "pg__public__tfull");
    st_free(yml);
    st_free(proj);
}

static void test_pg_incremental(void **state)
{
    (void)state;
    if (!g_dir)
        skip();
    seed_pg_typed("tinc", 3000);
    pg_sql("UPDATE tinc SET updated_at = timestamp '2024-01-01' WHERE updated_at IS NULL");
    char *yml = st_sprintf(PG_SRC("pg", "    tables:\n      public.tinc: {strategy: incremental,"
                                        " key: [id], cursor: updated_at, lookback: 60, chunks: 3}\n"),
                           g_pg);
    char *proj = project("pginc", yml);
    st_extract_report_free(run(proj, "pg", false, ST_OK));
    check_pg(proj, "tinc", "pg__public__tinc");
    pg_sql("UPDATE tinc SET name = 'changed', updated_at = timestamp '2030-01-01' WHERE id <= 10;"
           "INSERT INTO tinc(id, name, updated_at) VALUES (50000, 'new', timestamp '2030-01-02')");
    st_extract_report *rep = run(proj, "pg", false, ST_OK);
    /* only the window (watermark - lookback, max] was read, not the table */
    assert_true(rep->tables[0].rows_read < 100);
    assert_true(rep->tables[0].rows_read >= 11);
    st_extract_report_free(rep);
    check_pg(proj, "tinc", "pg__public__tinc");
    /* a second identical run must not duplicate the lookback rows */
    st_extract_report_free(run(proj, "pg", false, ST_OK));
    check_pg(proj, "tinc", "pg__public__tinc");
    char *d = bronze_sum(proj, "pg__public__tinc", "CAST(count(*) OVER () - count(*) OVER (PARTITION BY id) AS VARCHAR)", "QUALIFY count(*) OVER (PARTITION BY id) > 1");
    assert_string_equal(d, "0|");
    st_free(d);
    st_free(yml);
    st_free(proj);
}

#define HD_RENDER_PG "concat_ws('|', k1, k2, v, amount)"
static void test_pg_hashdiff(void **state)
{
    (void)state;
    if (!g_dir)
        skip();
    pg_sql("DROP TABLE IF EXISTS thd; CREATE TABLE thd(k1 int, k2 text, v text, amount numeric(10,3));"
           "INSERT INTO thd SELECT g, 'k' || (g % 3), 'v' || g, g / 7.0 FROM generate_series(1, 2000) g");
    char *yml = st_sprintf(PG_SRC("pg", "    tables:\n      public.thd: {strategy: hashdiff, key: [k1, k2]}\n"),
                           g_pg);
    char *proj = project("pghd", yml);
    st_extract_report *rep = run(proj, "pg", false, ST_OK);
    assert_int_equal(rep->tables[0].rows_written, 2000);
    st_extract_report_free(rep);
    pg_sql("UPDATE thd SET v = 'changed' WHERE k1 <= 15; DELETE FROM thd WHERE k1 BETWEEN 100 AND 104;"
           "INSERT INTO thd VALUES (5000, 'x', NULL, NULL), (5001, 'ü', 'neu', 1.5)");
    rep = run(proj, "pg", false, ST_OK);
    assert_int_equal(rep->tables[0].rows_written, 15 + 5 + 2);   /* only the changes */
    st_extract_report_free(rep);
    rep = run(proj, "pg", false, ST_OK);
    assert_int_equal(rep->tables[0].rows_written, 0);            /* nothing changed */
    st_extract_report_free(rep);
    char *a = src_sum(false, "thd", HD_RENDER_PG);
    /* current state = the latest change per key, unless it is a delete */
    char *b = bronze_sum(proj, "pg__public__thd", "concat_ws('|', k1, k2, v, amount)",
                         "QUALIFY row_number() OVER (PARTITION BY k1, k2 ORDER BY _loaded_at DESC) = 1"
                         " AND _op <> 'D'");
    assert_string_equal(a, b);
    char *ops = bronze_sum(proj, "pg__public__thd", "_op", "WHERE _op <> 'I' OR k1 >= 5000");
    assert_int_equal(atoi(ops), 15 + 5 + 2);
    st_free(ops);
    /* reprocess rebuilds the same change log from raw's snapshots */
    const char *log = "concat_ws('|', k1, k2, v, amount, _op, _batch_id, epoch_ms(_loaded_at))";
    char *before = bronze_sum(proj, "pg__public__thd", log, NULL);
    st_extract_opts o = {0};
    o.project_dir = proj;
    rep = NULL;
    TU_OK(st_extract_reprocess(&o, "pg.thd", NULL, 0, &rep, &tu_err));
    assert_int_equal(rep->tables[0].rows_written, 2000 + 15 + 5 + 2);
    st_extract_report_free(rep);
    char *after = bronze_sum(proj, "pg__public__thd", log, NULL);
    assert_string_equal(before, after);
    st_free(before);
    st_free(after);
    /* and extraction goes on from the stored state */
    pg_sql("UPDATE thd SET v = 'again' WHERE k1 = 1");
    rep = run(proj, "pg", false, ST_OK);
    assert_int_equal(rep->tables[0].rows_written, 1);
    st_extract_report_free(rep);
    st_free(a);
    st_free(b);
    st_free(yml);
    st_free(proj);
}

#define MY_SRC(name, extra)                                                                 \
    "  " name ":\n    kind: mysql\n    host: 127.0.0.1\n    port: %d\n    user: strata\n"     \
    "    database: src\n    password_env: XPW\n" extra
#define MY_RENDER "concat_ws('|', id, name, amount, date_format(ts, '%Y-%m-%d %H:%i:%s'), dt, d, ok, lower(hex(b)), j)"
#define MYD_RENDER "concat_ws('|', id, name, amount, strftime(ts, '%Y-%m-%d %H:%M:%S'), strftime(dt, '%Y-%m-%d %H:%M:%S'), d, ok, lower(hex(b)), j)"

static void test_mysql(void **state)
{
    (void)state;
    if (!g_dir)
        skip();
    my_sql("DROP TABLE IF EXISTS tmy; CREATE TABLE tmy(id bigint primary key, name varchar(100), amount decimal(20,4),"
           " ts timestamp NULL, dt datetime NULL, d date, ok tinyint, b varbinary(16), j json, updated_at datetime NULL)"
           " CHARACTER SET utf8mb4;"
           "INSERT INTO tmy SELECT seq, concat('näme ', seq, '\\t€'), seq * 1.2345 - 300, CAST('2024-01-01' AS DATETIME) + interval seq minute,"
           " CAST('2024-01-01' AS DATETIME) + interval seq second, CAST('2024-01-01' AS DATE) + interval seq day, seq % 2,"
           " unhex(lpad(hex(seq), 4, '0')), json_object('k', seq), CAST('2024-01-01' AS DATETIME) + interval seq second"
           " FROM seq_1_to_4000; INSERT INTO tmy(id) VALUES (4001)");
    char *yml = st_sprintf(MY_SRC("my", "    parallel: 2\n    tables:\n"
                                        "      src.tmy: {strategy: full, key: [id], chunks: 3}\n"
                                        "      src.tmyi: {strategy: incremental, key: [id], cursor: updated_at, target: tmyi}\n"),
                           g_my);
    my_sql("DROP TABLE IF EXISTS tmyi; CREATE TABLE tmyi LIKE tmy; INSERT INTO tmyi SELECT * FROM tmy");
    char *proj = project("my", yml);
    st_extract_report_free(run(proj, "my", false, ST_OK));
    char *a = src_sum(true, "tmy", MY_RENDER), *b = bronze_sum(proj, "my__src__tmy", MYD_RENDER, NULL);
    assert_string_equal(a, b);
    st_free(a);
    st_free(b);
    my_sql("UPDATE tmyi SET name = 'u', updated_at = '2031-01-01' WHERE id < 20; INSERT INTO tmyi(id, updated_at) VALUES (9999, '2031-02-02');"
           "DELETE FROM tmy WHERE id % 5 = 0; UPDATE tmy SET amount = 0 WHERE id % 3 = 0");
    st_extract_report *rep = run(proj, "my", false, ST_OK);
    assert_int_equal(rep->tables[1].rows_read, 20);
    st_extract_report_free(rep);
    a = src_sum(true, "tmy", MY_RENDER);
    b = bronze_sum(proj, "my__src__tmy", MYD_RENDER, NULL);
    assert_string_equal(a, b);
    st_free(a);
    st_free(b);
    a = src_sum(true, "tmyi", MY_RENDER);
    b = bronze_sum(proj, "tmyi", MYD_RENDER, NULL);
    assert_string_equal(a, b);
    st_free(a);
    st_free(b);
    st_free(yml);
    st_free(proj);
}

/* Kills the extraction's PostgreSQL backends after the second chunk. */
static st_rc kill_after(void *arg, const char *table, int chunk, st_err *err)
{
    int *n = arg;
    if (++*n == 2)
        pg_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
               " WHERE application_name = 'strata-extract'");
    return ST_OK;
}

static void test_pg_resume(void **state)
{
    (void)state;
    if (!g_dir)
        skip();
    seed_pg_typed("tres", 4000);
    char *yml = st_sprintf(PG_SRC("pg", "    retries: 0\n    tables:\n"
                                        "      public.tres: {strategy: full, key: [id], chunks: 5}\n"),
                           g_pg);
    char *proj = project("pgres", yml);
    int n = 0;
    st_extract_opts o = {0};
    o.project_dir = proj;
    o.on_chunk = kill_after;
    o.on_chunk_arg = &n;
    st_extract_report *rep = NULL;
    st_rc rc = st_extract_run(&o, "pg", &rep, &tu_err);
    assert_int_not_equal(rc, ST_OK);
    assert_non_null(strstr(tu_err.msg, "chunk 2"));
    assert_int_equal(rep->tables[0].version, -1);
    int64_t first_run = rep->tables[0].run_id;
    st_extract_report_free(rep);
    /* nothing was committed */
    char *lake = st_sprintf("%s/lake/bronze/pg__public__tres", proj);
    int64_t v = 0;
    TU_OK(st_delta_latest_version(lake, &v, &tu_err));
    assert_true(v < 1);
    rep = run(proj, "pg", false, ST_OK);
    assert_int_equal(rep->tables[0].run_id, first_run);
    assert_int_equal(rep->tables[0].n_chunks_resumed, 2);
    assert_true(rep->tables[0].rows_read < 4001);
    assert_int_equal(rep->tables[0].rows_written, 4001);
    st_extract_report_free(rep);
    check_pg(proj, "tres", "pg__public__tres");
    st_free(lake);
    st_free(yml);
    st_free(proj);
}

static void test_errors(void **state)
{
    (void)state;
    if (!g_dir)
        skip();
    char *yml = st_sprintf(PG_SRC("pg", "    tables: [public.nosuch]\n")
                           "  bad:\n    kind: postgres\n    host: 127.0.0.1\n    port: %d\n"
                           "    user: strata\n    database: src\n    password_file: /nonexistent/pw\n"
                           "    tables: [public.x]\n", g_pg, g_pg);
    char *proj = project("errs", yml);
    st_extract_opts o = {0};
    o.project_dir = proj;
    st_extract_report *rep = NULL;
    /* config error names file and key */
    assert_int_not_equal(st_extract_run(&o, "pg", &rep, &tu_err), ST_OK);
    assert_non_null(strstr(tu_err.msg, "password_file"));
    st_free(yml);
    st_free(proj);
    yml = st_sprintf(PG_SRC("pg", "    tables: [public.nosuch]\n")
                     "  wrongpw:\n    kind: postgres\n    host: 127.0.0.1\n    port: %d\n"
                     "    user: strata\n    database: src\n    password_env: XBADPW\n    tables: [public.tfull]\n"
                     "  closed:\n    kind: mysql\n    host: 127.0.0.1\n    port: 1\n    user: strata\n"
                     "    password_env: XPW\n    connect_timeout: 2\n    tables: [src.tmy]\n"
                     "  strict:\n    kind: postgres\n    host: 127.0.0.1\n    port: %d\n    user: strata\n"
                     "    database: src\n    password_env: XPW\n    tables:\n      public.tfull: {strategy: full, typo: 1}\n",
                     g_pg, g_pg, g_pg);
    proj = project("errs2", yml);
    o.project_dir = proj;
    assert_int_equal(st_extract_run(&o, "pg", &rep, &tu_err), ST_ERR_INVALID);
    assert_non_null(strstr(tu_err.msg, "typo"));
    assert_non_null(strstr(tu_err.msg, "strata.yml:"));
    st_free(yml);
    st_free(proj);
    yml = st_sprintf(PG_SRC("pg", "    tables: [public.nosuch]\n")
                     "  wrongpw:\n    kind: postgres\n    host: 127.0.0.1\n    port: %d\n"
                     "    user: strata\n    database: src\n    password_env: XBADPW\n    tables: [public.tfull]\n"
                     "  closed:\n    kind: mysql\n    host: 127.0.0.1\n    port: 1\n    user: strata\n"
                     "    password_env: XPW\n    connect_timeout: 2\n    tables: [src.tmy]\n",
                     g_pg, g_pg);
    proj = project("errs3", yml);
    o.project_dir = proj;
    assert_int_equal(st_extract_run(&o, "pg", &rep, &tu_err), ST_ERR_NOTFOUND);
    assert_non_null(strstr(rep->tables[0].error, "nosuch does not exist"));
    st_extract_report_free(rep);
    assert_int_equal(st_extract_run(&o, "wrongpw", &rep, &tu_err), ST_ERR_REMOTE);
    assert_non_null(strstr(tu_err.msg, "password authentication failed"));
    assert_null(strstr(tu_err.msg, "definitely-wrong"));   /* secret never in messages */
    st_extract_report_free(rep);
    assert_int_equal(st_extract_run(&o, "closed", &rep, &tu_err), ST_ERR_REMOTE);
    assert_non_null(strstr(tu_err.msg, "connect"));
    st_extract_report_free(rep);
    st_free(yml);
    st_free(proj);
}

static void test_drift(void **state)
{
    (void)state;
    if (!g_dir)
        skip();
    pg_sql("DROP TABLE IF EXISTS tdr; CREATE TABLE tdr(id int primary key, a int, gone text, amt numeric(10,2));"
           "INSERT INTO tdr SELECT g, g, 'x', g FROM generate_series(1, 100) g");
    char *yml = st_sprintf(PG_SRC("pg", "    tables:\n      public.tdr: {strategy: full}\n"), g_pg);
    char *proj = project("drift", yml);
    st_extract_report_free(run(proj, "pg", false, ST_OK));
    /* added column, dropped column, widened int -> bigint and numeric(10,2) -> numeric(12,2) */
    pg_sql("ALTER TABLE tdr ADD COLUMN added text DEFAULT 'new'; ALTER TABLE tdr DROP COLUMN gone;"
           "ALTER TABLE tdr ALTER COLUMN a TYPE bigint; ALTER TABLE tdr ALTER COLUMN amt TYPE numeric(12,2);"
           "UPDATE tdr SET a = 5000000000 WHERE id = 1");
    st_extract_report_free(run(proj, "pg", false, ST_OK));
    char *b = bronze_sum(proj, "pg__public__tdr",
                         "concat_ws('|', id, a, coalesce(gone, 'null'), added, typeof(a), typeof(amt))", NULL);
    char *a = pg_str("SELECT count(*) || '|' || md5(string_agg(concat_ws('|', id, a, 'null', added,"
                     " 'BIGINT', 'DECIMAL(12,2)'), chr(10) ORDER BY concat_ws('|', id, a, 'null', added,"
                     " 'BIGINT', 'DECIMAL(12,2)') COLLATE \"C\")) FROM tdr");
    assert_string_equal(a, b);
    st_free(a);
    st_free(b);
    /* incompatible: bigint -> text stops the table, bronze unchanged */
    pg_sql("ALTER TABLE tdr ALTER COLUMN a TYPE text");
    st_extract_report *rep = run(proj, "pg", false, ST_ERR_INVALID);
    assert_non_null(strstr(rep->tables[0].error, "column a changed type"));
    st_extract_report_free(rep);
    st_free(yml);
    st_free(proj);
}

static void test_odbc(void **state)
{
    (void)state;
    if (!g_dir)
        skip();
    char *odbc = st_sprintf("%s/odbc", g_dir);
    st_mkdirs(odbc, NULL);
    char *ini = st_sprintf("%s/odbcinst.ini", odbc);
    const char *drivers = "[PostgreSQL Unicode]\nDriver=/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so\n"
                          "[MariaDB Unicode]\nDriver=/usr/lib/x86_64-linux-gnu/odbc/libmaodbc.so\n";
    TU_OK(st_file_write_atomic(ini, drivers, strlen(drivers), &tu_err));
    if (!st_path_exists("/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so")) {
        printf("SKIP: ODBC drivers not installed\n");
        skip();
    }
    setenv("ODBCSYSINI", odbc, 1);
    char *yml = st_sprintf(
        "  opg:\n    kind: odbc\n    dialect: postgres\n    dsn: \"Driver={PostgreSQL Unicode};Servername=127.0.0.1;Port=%d;Database=src;Username=strata\"\n"
        "    password_env: XPW\n    tables:\n      public.tfull: {strategy: full, key: [id], chunks: 2, target: odbc_tfull}\n"
        "  omy:\n    kind: odbc\n    dialect: mysql\n    dsn: \"Driver={MariaDB Unicode};Server=127.0.0.1;Port=%d;Database=src;User=strata\"\n"
        "    password_env: XPW\n    tables:\n      src.tmy: {strategy: full, target: odbc_tmy}\n",
        g_pg, g_my);
    char *proj = project("odbc", yml);
    st_extract_report_free(run(proj, "opg", false, ST_OK));
    check_pg(proj, "tfull", "odbc_tfull");
    st_extract_report_free(run(proj, "omy", false, ST_OK));
    char *a = src_sum(true, "tmy", MY_RENDER), *b = bronze_sum(proj, "odbc_tmy", MYD_RENDER, NULL);
    assert_string_equal(a, b);
    st_free(a);
    st_free(b);
    st_free(ini);
    st_free(odbc);
    st_free(yml);
    st_free(proj);
}

/* Lake table <layer>/<target> is registered as t. */
#define ASSERT_LQ(proj, layer, target, sql, want)                                            \
    TU_ASSERT_PROJECT(proj, layer, target, "t", sql, want)

static st_extract_report *reprocess(const char *proj, const char *sel, const int64_t *runs,
                                    size_t n, st_rc want)
{
    st_extract_opts o = {0};
    o.project_dir = proj;
    st_extract_report *rep = NULL;
    st_rc rc = st_extract_reprocess(&o, sel, runs, n, &rep, &tu_err);
    if (rc != want)
        fail_msg("reprocess %s: rc %s, want %s: %s", sel, st_rc_name(rc), st_rc_name(want),
                 tu_err.msg);
    return rep;
}

/* raw gets every run as partition _run_id (source-mapped types, _batch_id,
 * _loaded_at); reprocess rebuilds bronze from chosen runs atomically. */
static void test_raw_reprocess(void **state)
{
    (void)state;
    if (!g_dir)
        skip();
    seed_pg_typed("traw", 1000);
    pg_sql("UPDATE traw SET updated_at = timestamp '2024-01-01' WHERE updated_at IS NULL");
    char *yml = st_sprintf(PG_SRC("pg", "    tables:\n      public.traw: {strategy: incremental,"
                                        " key: [id], cursor: updated_at, chunks: 2}\n"), g_pg);
    char *proj = project("raw", yml);
    st_extract_report *rep = run(proj, "pg", false, ST_OK);
    int64_t r1 = rep->tables[0].run_id;
    st_extract_report_free(rep);
    pg_sql("UPDATE traw SET name = 'changed', updated_at = timestamp '2030-01-01' WHERE id <= 10;"
           "INSERT INTO traw(id, name, updated_at) VALUES (7000, 'new', timestamp '2030-01-02')");
    rep = run(proj, "pg", false, ST_OK);
    int64_t r2 = rep->tables[0].run_id;
    int64_t read2 = rep->tables[0].rows_read;
    st_extract_report_free(rep);
    check_pg(proj, "traw", "pg__public__traw");
    const char *tg = "pg__public__traw";
    char want[128];
    snprintf(want, sizeof want, "%lld:1001 %lld:%lld", (long long)r1, (long long)r2, (long long)read2);
    ASSERT_LQ(proj, "raw", tg, "SELECT string_agg(_run_id || ':' || n, ' ' ORDER BY _run_id) FROM"
                               " (SELECT _run_id, count(*) n FROM t GROUP BY 1)", want);
    ASSERT_LQ(proj, "raw", tg, "SELECT any_value(typeof(amount) || ' ' || typeof(ts) || ' ' || typeof(_loaded_at))"
                               " || ' ' || count(DISTINCT _batch_id) FROM t", "DECIMAL(18,2) TIMESTAMP WITH TIME ZONE TIMESTAMP WITH TIME ZONE 2");
    snprintf(want, sizeof want, "pg.public.traw#%lld", (long long)r2);
    ASSERT_LQ(proj, "raw", tg, "SELECT DISTINCT _batch_id FROM t WHERE name = 'changed'", want);

    /* bronze from run 1 only: the state before the updates */
    char *v0 = tu_project_str(proj, "bronze", tg, "t", "SELECT count(*) FROM t");
    assert_string_equal(v0, "1002");
    st_free(v0);
    rep = reprocess(proj, "pg.traw", &r1, 1, ST_OK);
    assert_int_equal(rep->tables[0].rows_written, 1001);
    assert_true(rep->tables[0].version > 0);
    int64_t rp = rep->tables[0].run_id;
    st_extract_report_free(rep);
    ASSERT_LQ(proj, "bronze", tg, "SELECT count(*) || ' ' || count(*) FILTER (name = 'changed') FROM t",
              "1001 0");
    /* every run (the default): bronze equals the source again, through the CLI */
    char *out = NULL;
    int ec = tu_run(&out, "XPW=stratapw %s reprocess pg.public.traw --project %s", tu_strata_bin(), proj);
    assert_int_equal(ec, 0);
    assert_non_null(strstr(out, "reprocess"));
    st_free(out);
    check_pg(proj, "traw", "pg__public__traw");
    /* recorded in the state DB */
    char *sdb = st_sprintf("sqlite3 %s/state.db \"SELECT strategy || ' ' || status || ' ' || wm_hi FROM"
                           " extract_runs WHERE run_id = %lld\"", proj, (long long)rp);
    ec = tu_run(&out, "%s", sdb);
    snprintf(want, sizeof want, "reprocess committed %lld\n", (long long)r1);
    assert_int_equal(ec, 0);
    assert_string_equal(out, want);
    st_free(out);
    st_free(sdb);
    /* a run raw does not hold, and a wrong selector */
    int64_t bad = 9999;
    rep = reprocess(proj, "pg.traw", &bad, 1, ST_ERR_NOTFOUND);
    assert_non_null(strstr(rep->tables[0].error, "run 9999"));
    st_extract_report_free(rep);
    rep = reprocess(proj, "pg.nosuch", NULL, 0, ST_ERR_NOTFOUND);
    st_extract_report_free(rep);
    check_pg(proj, "traw", "pg__public__traw");   /* failures changed nothing */
    st_free(yml);
    st_free(proj);
}

/* Every mapped PostgreSQL type through the binary COPY decoder, with edge
 * values: integer extremes, NaN and extreme doubles, NUMERIC at several
 * widths (38 digits, fractions below 10^-4, negatives), dates and
 * timestamps around the 2000-01-01 epoch and at +-infinity, bytea, text
 * with escapes, padded char, and types read through a text cast; then a
 * NaN in a numeric(p,s) column fails the table naming the column. */
static void test_pg_types(void **state)
{
    (void)state;
    if (!g_dir)
        skip();
    pg_sql("DROP TABLE IF EXISTS ttypes; DROP TYPE IF EXISTS mood; CREATE TYPE mood AS ENUM ('sad', 'happy');"
           "CREATE TABLE ttypes(id int primary key, i2 smallint, i4 integer, i8 bigint, f4 real,"
           " f8 double precision, n1 numeric(4,2), n2 numeric(9,0), n3 numeric(18,4),"
           " n4 numeric(38,10), n5 numeric(38,0), n6 numeric(5,5), b boolean, d date, ts timestamp,"
           " tz timestamptz, ba bytea, t text, vc varchar(10), ch char(5), u uuid, j json, tm time,"
           " iv interval, e mood, arr int[]);"
           "INSERT INTO ttypes VALUES"
           " (1, -32768, -2147483648, -9223372036854775808, -1.5, 1e308, -99.99, 999999999,"
           "  -12345678901234.5678, -9999999999999999999999999999.9999999999,"
           "  99999999999999999999999999999999999999, 0.12345, true, '-infinity',"
           "  '1900-01-01 00:00:00.000001', '1969-12-31 23:59:59.999999+00', '\\x00ff', 'n\xc3\xa4me \\x',"
           "  E'a\\tb\\n', 'ab', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{\"k\": [1, \"x\"]}', '23:59:59.5',"
           "  '1 day 2 hours', 'happy', '{1,NULL,3}'),"
           " (2, 32767, 2147483647, 9223372036854775807, 'NaN', 5e-324, 0.01, -1, 0.0001, 0.0000000001,"
           "  -1, -0.00001, false, '1999-12-31', 'infinity', '2038-01-19 03:14:08+02', '\\x', '', '', '',"
           "  NULL, 'null', '00:00', '-3 mons', 'sad', '{}'),"
           " (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
           "  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),"
           " (4, 0, 0, 0, '-Infinity', -0.0, 0, 0, 0, 0, 0, 0, true, '2000-01-01', '2000-01-01',"
           "  '2000-01-01 00:00:00+00', '\\xdeadbeef', repeat('x', 3000), 'z', 'abcde', NULL, '[]', '12:00',"
           "  '0', 'sad', NULL)");
    char *yml = st_sprintf(PG_SRC("pg", "    tables:\n"
                                        "      public.ttypes: {strategy: full, cast_to_string: [arr]}\n"),
                           g_pg);
    char *proj = project("pgtypes", yml);
    st_extract_report *rep = run(proj, "pg.ttypes", false, ST_OK);
    assert_int_equal(rep->tables[0].rows_written, 4);
    st_extract_report_free(rep);
    /* per row: checks over bronze; the failed ones are listed */
    static const char *want[][27] = {
        {"i2 = -32768", "i4 = -2147483648", "i8 = -9223372036854775808", "f4 = -1.5",
         "f8 = 1e308", "n1::VARCHAR = '-99.99'", "n2::VARCHAR = '999999999'",
         "n3::VARCHAR = '-12345678901234.5678'",
         "n4::VARCHAR = '-9999999999999999999999999999.9999999999'",
         "n5::VARCHAR = '99999999999999999999999999999999999999'", "n6 = 0.12345",
         "b", "d = '-infinity'::DATE", "ts = TIMESTAMP '1900-01-01 00:00:00.000001'",
         "tz = TIMESTAMPTZ '1969-12-31 23:59:59.999999+00'", "ba = '\\x00\\xFF'::BLOB",
         "t = 'n\xc3\xa4me \\x'", "vc = 'a' || chr(9) || 'b' || chr(10)", "ch = 'ab   '",
         "u = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "j = '{\"k\": [1, \"x\"]}'",
         "tm = '23:59:59.5'", "iv = 'P1DT2H'", "e = 'happy'", "arr = '{1,NULL,3}'",
         "typeof(n4) = 'DECIMAL(38,10)' AND typeof(tz) = 'TIMESTAMP WITH TIME ZONE'", NULL},
        {"i2 = 32767", "i4 = 2147483647", "i8 = 9223372036854775807", "isnan(f4)", "f8 = 5e-324",
         "n1::VARCHAR = '0.01'", "n2::VARCHAR = '-1'", "n3::VARCHAR = '0.0001'",
         "n4::VARCHAR = '0.0000000001'", "n5::VARCHAR = '-1'", "n6 = -0.00001",
         "NOT b", "d = DATE '1999-12-31'", "ts = 'infinity'::TIMESTAMP",
         "tz = TIMESTAMPTZ '2038-01-19 01:14:08+00'", "ba = ''::BLOB", "t = ''", "vc = ''",
         "ch = '     '", "u IS NULL", "j = 'null'", "tm = '00:00:00'", "iv = 'P-3M'", "e = 'sad'",
         "arr = '{}'", NULL},
        {"i2 IS NULL AND i4 IS NULL AND i8 IS NULL AND f4 IS NULL AND f8 IS NULL", "n1 IS NULL",
         "n2 IS NULL AND n3 IS NULL AND n4 IS NULL AND n5 IS NULL AND n6 IS NULL", "b IS NULL",
         "d IS NULL AND ts IS NULL AND tz IS NULL AND ba IS NULL AND t IS NULL AND vc IS NULL",
         "ch IS NULL AND u IS NULL AND j IS NULL AND tm IS NULL AND iv IS NULL AND e IS NULL",
         "arr IS NULL", NULL},
        {"i2 = 0 AND i4 = 0 AND i8 = 0", "f4 = '-infinity'::FLOAT", "f8 = 0", "n1 = 0 AND n4 = 0",
         "d = DATE '2000-01-01'", "ts = TIMESTAMP '2000-01-01'",
         "tz = TIMESTAMPTZ '2000-01-01 00:00:00+00'", "ba = '\\xDE\\xAD\\xBE\\xEF'::BLOB",
         "t = repeat('x', 3000)", "ch = 'abcde'", "j = '[]'", "iv = 'PT0S'", NULL},
    };
    for (int r = 0; r < 4; r++) {
        st_buf b;
        st_buf_init(&b, 0);
        st_buf_puts(&b, "concat_ws(' | '");
        for (int k = 0; want[r][k]; k++) {
            st_buf_puts(&b, ", CASE WHEN coalesce(");
            st_buf_puts(&b, want[r][k]);
            st_buf_puts(&b, ", false) THEN NULL ELSE ");
            st_buf_sql_str(&b, want[r][k]);
            st_buf_puts(&b, " END");
        }
        st_buf_puts(&b, ")");
        char *where = st_sprintf("WHERE id = %d", r + 1);
        char *got = bronze_str(proj, "pg__public__ttypes", b.data, where);
        if (!got || *got) {
            char *bad = bronze_str(proj, "pg__public__ttypes",
                                   "concat_ws(',', i2, i4, i8, f4, f8, n1, n2, n3, n4, n5, n6, b, d,"
                                   " ts, tz, hex(ba), t, vc, ch, u, j, tm, iv, e, arr)", where);
            fail_msg("row %d: failed checks: %s (row: %s)", r + 1, got ? got : "no row", bad);
        }
        st_free(got);
        st_free(where);
        st_buf_free(&b);
    }
    st_free(proj);
    st_free(yml);

    /* numeric(p,s) admits NaN, which no DECIMAL holds: the table fails
     * with the column named */
    pg_sql("DROP TABLE IF EXISTS tnan; CREATE TABLE tnan(id int, amount numeric(10,2));"
           "INSERT INTO tnan VALUES (1, 1.5), (2, 'NaN')");
    yml = st_sprintf(PG_SRC("pg", "    retries: 0\n    tables:\n      public.tnan: {strategy: full}\n"),
                     g_pg);
    proj = project("pgnan", yml);
    st_extract_opts o = {0};
    o.project_dir = proj;
    rep = NULL;
    st_rc rc = st_extract_run(&o, "pg.tnan", &rep, &tu_err);
    assert_int_not_equal(rc, ST_OK);
    if (!strstr(tu_err.msg, "amount") || !strstr(tu_err.msg, "NaN"))
        fail_msg("NaN error should name the column and the value: %s", tu_err.msg);
    st_extract_report_free(rep);
    st_free(proj);
    st_free(yml);
}

/* The large table of the issue: STRATA_TEST_BIG_ROWS rows (default 1M)
 * extracted in parallel chunks, bronze == source by count and checksum. */
static void test_pg_big(void **state)
{
    (void)state;
    if (!g_dir)
        skip();
    const char *env = getenv("STRATA_TEST_BIG_ROWS");
    int n = env ? atoi(env) : 1000000;
    char *sql = st_sprintf("DROP TABLE IF EXISTS tbig; CREATE TABLE tbig(id bigint primary key, qty int,"
                           " amount numeric(18,4), label text, ts timestamptz);"
                           "INSERT INTO tbig SELECT g, g %% 1000, g / 7.0, 'r' || g,"
                           " timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second'"
                           " FROM generate_series(1, %d) g", n);
    pg_sql(sql);
    st_free(sql);
    char *yml = st_sprintf(PG_SRC("pg", "    parallel: 2\n    batch_rows: 200000\n    tables:\n"
                                        "      public.tbig: {strategy: full, key: [id], chunks: 4}\n"),
                           g_pg);
    char *proj = project("pgbig", yml);
    st_extract_report *rep = run(proj, "pg", false, ST_OK);
    assert_int_equal(rep->tables[0].rows_written, n);
    st_extract_report_free(rep);
    char *a = src_sum(false, "tbig", "concat_ws('|', id, qty, amount, label,"
                                     " to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'))");
    char *b = bronze_sum(proj, "pg__public__tbig", "concat_ws('|', id, qty, amount, label,"
                                                   " strftime(ts, '%Y-%m-%d %H:%M:%S'))", NULL);
    assert_string_equal(a, b);
    st_free(a);
    st_free(b);
    st_free(yml);
    st_free(proj);
}

/* Rows per chunk of the latest run of a table, from the state DB: "n1 n2 ...". */
static char *chunk_rows(const char *proj, const char *table)
{
    char *out = NULL;
    int ec = tu_run(&out, "sqlite3 %s/state.db \"SELECT group_concat(rows, ' ') FROM (SELECT rows"
                          " FROM extract_chunks WHERE run_id = (SELECT max(run_id) FROM extract_runs"
                          " WHERE tbl = '%s') ORDER BY chunk)\"", proj, table);
    assert_int_equal(ec, 0);
    return out;
}

/* The largest range chunk (all but the last, the NULL-key chunk) holds at
 * most `pct` percent of `total` rows, and every row is in one chunk. */
static void check_balance(const char *proj, const char *table, int total, int pct)
{
    char *rows = chunk_rows(proj, table);
    int vals[64], n = 0, sum = 0;
    for (char *p = rows; *p && n < 64;) {
        vals[n++] = (int)strtol(p, &p, 10);
        while (*p == ' ' || *p == '\n')
            p++;
    }
    int mx = 0;
    for (int i = 0; i < n; i++) {
        sum += vals[i];
        if (i < n - 1 && vals[i] > mx)
            mx = vals[i];
    }
    if (n < 4 || sum != total || mx * 100 > total * pct)
        fail_msg("%s: chunk rows '%s' (want >= 4 chunks, sum %d, none above %d%%)", table, rows,
                 total, pct);
    st_free(rows);
}

/* MariaDB: kills every connection of user strata but this one. */
static st_rc my_kill_after(void *arg, const char *table, int chunk, st_err *err)
{
    (void)table;
    (void)chunk;
    (void)err;
    int *n = arg;
    if (++*n != 2)
        return ST_OK;
    MYSQL *m = my_conn();
    if (mysql_query(m, "SELECT id FROM information_schema.PROCESSLIST WHERE user = 'strata'"
                       " AND id <> CONNECTION_ID()"))
        fail_msg("processlist: %s", mysql_error(m));
    MYSQL_RES *r = mysql_store_result(m);
    MYSQL_ROW row;
    long long ids[16];
    int k = 0;
    while ((row = mysql_fetch_row(r)) != NULL && k < 16)
        ids[k++] = strtoll(row[0], NULL, 10);
    mysql_free_result(r);
    for (int i = 0; i < k; i++) {
        char q[64];
        snprintf(q, sizeof q, "KILL %lld", ids[i]);
        mysql_query(m, q);
    }
    mysql_close(m);
    return ST_OK;
}

/* Runs `sel` with a connection kill after the second chunk (fails), then
 * again (resumes the same run with the chunks done so far). */
/* PostgreSQL: kills every backend of user strata but this one (psqlODBC
 * sets no application_name). */
static st_rc pg_kill_all_after(void *arg, const char *table, int chunk, st_err *err)
{
    (void)table;
    (void)chunk;
    (void)err;
    int *n = arg;
    if (++*n == 2)
        pg_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
               " WHERE usename = 'strata' AND pid <> pg_backend_pid()");
    return ST_OK;
}

typedef st_rc (*kill_fn)(void *arg, const char *table, int chunk, st_err *err);

static void kill_and_resume(const char *proj, const char *sel, kill_fn kill)
{
    int n = 0;
    st_extract_opts o = {0};
    o.project_dir = proj;
    o.on_chunk = kill;
    o.on_chunk_arg = &n;
    st_extract_report *rep = NULL;
    st_rc rc = st_extract_run(&o, sel, &rep, &tu_err);
    if (rc == ST_OK)
        fail_msg("%s: the run should fail once its connection is killed", sel);
    int64_t first = rep->tables[0].run_id;
    assert_int_equal(rep->tables[0].version, -1);
    st_extract_report_free(rep);
    rep = run(proj, sel, false, ST_OK);
    assert_int_equal(rep->tables[0].run_id, first);
    /* with 2 workers the other one may finish a chunk before noticing */
    if (rep->tables[0].n_chunks_resumed < 2 ||
        rep->tables[0].n_chunks_resumed >= rep->tables[0].n_chunks)
        fail_msg("%s: resumed %d of %d chunks", sel, rep->tables[0].n_chunks_resumed,
                 rep->tables[0].n_chunks);
    st_extract_report_free(rep);
}

#define SK_RENDER "concat_ws('|', coalesce(k, '<null>'), v)"
#define SC_RENDER_PG "concat_ws('|', region, coalesce(to_char(day, 'YYYY-MM-DD'), '<null>'), n, v)"
#define SC_RENDER_DK "concat_ws('|', region, coalesce(strftime(day, '%Y-%m-%d'), '<null>'), n, v)"

/* Sampled chunk boundaries for keys that are not integers: a text key
 * (skewed, duplicated, NULLs, quotes, backslashes, non-ASCII) and a
 * composite (text, date, int) key with 85% of the rows under one region,
 * on PostgreSQL (TABLESAMPLE / strided sample, row-value ranges), MariaDB
 * (strided sample) and ODBC with the spelled-out comparisons of the SQL
 * Server / Oracle dialects; each with the connection killed mid-run and
 * resumed.  The union of the chunks must be the table: same count and
 * checksum of every row (duplicates would change both), chunks balanced. */
static void test_sampled_chunks(void **state)
{
    (void)state;
    if (!g_dir)
        skip();
    const char *text_rows =
        "SELECT CASE WHEN g % 97 = 0 THEN NULL WHEN g % 10 < 7 THEN 'a' || lpad((g % 2000)::text, 5, '0')"
        " WHEN g % 10 = 7 THEN 'Zürich ' || g WHEN g % 10 = 8 THEN 'O''Neil\\' || g ELSE 'm' || g END,"
        " g FROM generate_series(1, 6000) g";
    char *sql = st_sprintf("DROP TABLE IF EXISTS tsk; CREATE TABLE tsk(k text, v int); INSERT INTO tsk %s;"
                           "DROP TABLE IF EXISTS tsc; CREATE TABLE tsc(region text, day date, n int, v text);"
                           "INSERT INTO tsc SELECT CASE WHEN g %% 20 < 17 THEN 'EU' WHEN g %% 20 = 17 THEN 'US'"
                           " ELSE 'O''X' END, CASE WHEN g %% 501 = 0 THEN NULL ELSE date '2024-01-01' + (g %% 40) END,"
                           " g %% 7, 'v' || g FROM generate_series(1, 6000) g; ANALYZE tsk; ANALYZE tsc",
                           text_rows);
    pg_sql(sql);
    st_free(sql);
    char *yml = st_sprintf(PG_SRC("pg", "    parallel: 2\n    batch_rows: 1000\n    retries: 0\n    tables:\n"
                                        "      public.tsk: {strategy: full, key: [k], chunks: 5}\n"
                                        "      public.tsc: {strategy: full, key: [region, day, n], chunks: 5}\n")
                           "  opg:\n    kind: odbc\n    dialect: oracle\n    retries: 0\n"
                           "    dsn: \"Driver={PostgreSQL Unicode};Servername=127.0.0.1;Port=%d;Database=src;Username=strata\"\n"
                           "    password_env: XPW\n    tables:\n"
                           "      public.tsc: {strategy: full, key: [region, day, n], chunks: 5, target: odbc_tsc}\n",
                           g_pg, g_pg);
    char *proj = project("sampled", yml);
    st_extract_report *rep = run(proj, "pg", false, ST_OK);
    assert_int_equal(rep->tables[0].rows_written, 6000);
    assert_int_equal(rep->tables[1].rows_written, 6000);
    st_extract_report_free(rep);
    char *a = src_sum(false, "tsk", SK_RENDER), *b = bronze_sum(proj, "pg__public__tsk", SK_RENDER, NULL);
    assert_string_equal(a, b);
    st_free(a);
    st_free(b);
    /* 5 ranges + the NULL chunk; duplicates of one key cannot split, so
     * allow some slack over the even 20% */
    check_balance(proj, "public.tsk", 6000, 32);
    a = src_sum(false, "tsc", SC_RENDER_PG);
    b = bronze_sum(proj, "pg__public__tsc", SC_RENDER_DK, NULL);
    assert_string_equal(a, b);
    st_free(b);
    check_balance(proj, "public.tsc", 6000, 30);

    /* killed after two chunks, resumed: still exactly the table */
    pg_sql("UPDATE tsc SET v = v || '+' WHERE n = 3; DELETE FROM tsc WHERE n = 5 AND region = 'US'");
    kill_and_resume(proj, "pg.public.tsc", kill_after);
    st_free(a);
    a = src_sum(false, "tsc", SC_RENDER_PG);
    b = bronze_sum(proj, "pg__public__tsc", SC_RENDER_DK, NULL);
    assert_string_equal(a, b);
    st_free(b);
    kill_and_resume(proj, "pg.public.tsk", kill_after);
    char *a2 = src_sum(false, "tsk", SK_RENDER);
    b = bronze_sum(proj, "pg__public__tsk", SK_RENDER, NULL);
    assert_string_equal(a2, b);
    st_free(a2);
    st_free(b);

    /* ODBC, Oracle dialect: (k1 > v1 OR (k1 = v1 AND ...)) and MOD() */
    if (st_path_exists("/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so")) {
        char *odbc = st_sprintf("%s/odbc", g_dir), *ini = st_sprintf("%s/odbc/odbcinst.ini", g_dir);
        const char *drivers = "[PostgreSQL Unicode]\nDriver=/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so\n";
        st_mkdirs(odbc, NULL);
        TU_OK(st_file_write_atomic(ini, drivers, strlen(drivers), &tu_err));
        setenv("ODBCSYSINI", odbc, 1);
        kill_and_resume(proj, "opg", pg_kill_all_after);
        b = bronze_sum(proj, "odbc_tsc", SC_RENDER_DK, NULL);
        assert_string_equal(a, b);
        st_free(b);
        char *cnt = pg_str("SELECT count(*) FROM tsc");
        check_balance(proj, "public.tsc", atoi(cnt), 30);   /* the latest run of public.tsc */
        st_free(cnt);
        st_free(odbc);
        st_free(ini);
    } else {
        printf("SKIP: psqlODBC not installed, ODBC sampled chunks not tested\n");
    }
    st_free(a);
    st_free(yml);
    st_free(proj);

    /* a uuid key on a table big enough for the TABLESAMPLE block sample */
    pg_sql("DROP TABLE IF EXISTS tsu; CREATE TABLE tsu(u uuid PRIMARY KEY, v int);"
           "INSERT INTO tsu SELECT md5(g::text)::uuid, g FROM generate_series(1, 60000) g; ANALYZE tsu;"
           "DROP TABLE IF EXISTS tsi; CREATE TABLE tsi(id bigint, v int);"
           "INSERT INTO tsi SELECT CASE WHEN g % 10 = 0 THEN g::bigint * 1000000000 ELSE g END, g"
           " FROM generate_series(1, 4000) g");
    yml = st_sprintf(PG_SRC("pg", "    parallel: 2\n    tables:\n"
                                  "      public.tsu: {strategy: full, key: [u], chunks: 4}\n"
                                  "      public.tsi: {strategy: full, key: [id], chunks: 4, chunking: sample}\n"),
                     g_pg);
    proj = project("sampled_uuid", yml);
    rep = run(proj, "pg", false, ST_OK);
    assert_int_equal(rep->tables[0].rows_written, 60000);
    assert_int_equal(rep->tables[1].rows_written, 4000);
    st_extract_report_free(rep);
    /* skewed integers: min/max ranges would put 90% of the rows in the
     * first chunk; sampled boundaries split them evenly */
    check_balance(proj, "public.tsi", 4000, 35);
    a = src_sum(false, "tsi", "concat_ws('|', id, v)");
    b = bronze_sum(proj, "pg__public__tsi", "concat_ws('|', id, v)", NULL);
    assert_string_equal(a, b);
    st_free(a);
    st_free(b);
    a = src_sum(false, "tsu", "concat_ws('|', u, v)");
    b = bronze_sum(proj, "pg__public__tsu", "concat_ws('|', u, v)", NULL);
    assert_string_equal(a, b);
    st_free(a);
    st_free(b);
    check_balance(proj, "public.tsu", 60000, 35);
    st_free(yml);
    st_free(proj);

    /* MariaDB: the same text key (case-insensitive collation, backslashes) */
    my_sql("DROP TABLE IF EXISTS tsk; CREATE TABLE tsk(k varchar(40), v int) CHARACTER SET utf8mb4;"
           "INSERT INTO tsk SELECT CASE WHEN seq % 97 = 0 THEN NULL WHEN seq % 10 < 7 THEN concat('a', lpad(seq % 2000, 5, '0'))"
           " WHEN seq % 10 = 7 THEN concat(IF(seq % 3 = 0, 'Zürich ', 'zürich '), seq) WHEN seq % 10 = 8 THEN concat('O''Neil\\\\', seq)"
           " ELSE concat('m', seq) END, seq FROM seq_1_to_6000");
    yml = st_sprintf(MY_SRC("my", "    parallel: 2\n    batch_rows: 1000\n    retries: 0\n    tables:\n"
                                  "      src.tsk: {strategy: full, key: [k], chunks: 5, target: my_tsk}\n"), g_my);
    proj = project("sampled_my", yml);
    rep = run(proj, "my", false, ST_OK);
    assert_int_equal(rep->tables[0].rows_written, 6000);
    st_extract_report_free(rep);
    check_balance(proj, "src.tsk", 6000, 32);
    my_sql("UPDATE tsk SET v = -v WHERE v % 11 = 0");
    kill_and_resume(proj, "my", my_kill_after);
    const char *msum = "SELECT concat(count(*), '|', md5(group_concat(r ORDER BY r COLLATE utf8mb4_bin"
                       " SEPARATOR '\\n'))) FROM (SELECT concat_ws('|', coalesce(k, '<null>'), v) AS r FROM tsk) s";
    a = my_str(msum);
    b = bronze_sum(proj, "my_tsk", SK_RENDER, NULL);
    assert_string_equal(a, b);
    st_free(a);
    st_free(b);
    st_free(yml);
    st_free(proj);
}

static int setup(void **state)
{
    (void)state;
    if (getuid() != 0 || !st_path_exists("/usr/sbin/mariadbd")) {
        printf("SKIP: needs root and the postgresql/mariadb-server packages\n");
        return 0;
    }
    g_dir = tu_tempdir("extract-db");
    int base = 20000 + (int)(getpid() % 20000);
    g_pg = base;
    g_my = base + 1;
    setenv("XPW", "stratapw", 1);
    setenv("XBADPW", "definitely-wrong", 1);
    int rc = tu_run(NULL, "sh %s/tests/extract/servers.sh start %s %d %d", getenv("STRATA_SRC"),
                    g_dir, g_pg, g_my);
    return rc == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (g_dir) {
        tu_run(NULL, "sh %s/tests/extract/servers.sh stop %s", getenv("STRATA_SRC"), g_dir);
        tu_rmdir(g_dir);
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pg_full),     cmocka_unit_test(test_pg_incremental),
        cmocka_unit_test(test_pg_hashdiff), cmocka_unit_test(test_mysql),
        cmocka_unit_test(test_pg_resume),   cmocka_unit_test(test_errors),
        cmocka_unit_test(test_drift),       cmocka_unit_test(test_odbc),
        cmocka_unit_test(test_raw_reprocess), cmocka_unit_test(test_pg_types),
        cmocka_unit_test(test_sampled_chunks), cmocka_unit_test(test_pg_big),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
