/*
 * cmd_demo.c - `strata demo`: the README's main command.  It starts the
 * sample sources itself (PostgreSQL portfolio OLTP, MariaDB CRM, local
 * replays of the ECB and World Bank APIs, the event collector), runs the whole
 * DAG of examples/demo from sources to gold, changes source rows and runs
 * again so SCD2 history shows, prints a summary and stops the servers.
 * `strata demo --storage-only` keeps the older walk of one Delta table
 * through create, append, update, delete, time travel, change feed,
 * compaction and checkpoint.
 */
#include "cli.h"
#include "lake.h"

#include "strata/delta.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int step_no;

static void step(const char *fmt, const char *detail)
{
    printf("\n== %d. %s\n", ++step_no, fmt);
    if (detail)
        printf("   %s\n", detail);
}

/* shown is what the user reads: the SQL itself, or a shorter description */
static int query_as(st_engine *eng, const char *sql, const char *shown, st_err *err)
{
    printf("   sql> %s\n", shown);
    return cli_print_query(eng, sql, CLI_FMT_TABLE, stdout, err) ? -1 : 0;
}

static int query(st_engine *eng, const char *sql, st_err *err)
{
    printf("   sql> %s\n", sql);
    return cli_print_query(eng, sql, CLI_FMT_TABLE, stdout, err) ? -1 : 0;
}

static int mount(st_engine *eng, const char *path, int64_t version, st_err *err)
{
    return cli_mount_table(eng, "\"trades\"", path, version, err) ? -1 : 0;
}

static int demo_storage(int argc, char **argv)
{
    static const struct option o[] = {{"lake", required_argument, NULL, 'l'},
                                      {"rows", required_argument, NULL, 'r'},
                                      {"help", no_argument, NULL, 'h'},
                                      {NULL, 0, NULL, 0}};
    const char *lake = "demo-lake";
    long rows = 100000;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
        if (c == 'l')
            lake = optarg;
        else if (c == 'r')
            rows = strtol(optarg, NULL, 10);
        else if (c == 'h') {
            printf("usage: strata demo --storage-only [--lake DIR] [--rows N]\n\n"
                   "Creates a lake in DIR (default ./demo-lake, replaced if present) and walks a\n"
                   "Delta table through create, append, update, delete, time travel, change\n"
                   "feed, optimize and checkpoint, printing each step.\n");
            return ST_EXIT_OK;
        } else
            return ST_EXIT_USAGE;
    }
    if (rows < 100) {
        fprintf(stderr, "strata demo: --rows must be at least 100\n");
        return ST_EXIT_USAGE;
    }
    st_err err;
    st_err_clear(&err);
    st_engine *eng = NULL;
    st_delta_schema *schema = NULL;
    char *table = st_sprintf("%s/bronze/trades", lake);
    char *sql = NULL;
    int rc = ST_EXIT_ERROR;
    int64_t t0 = st_mono_ns();

    printf("Strata demo: a Delta Lake table in %s\n", table);
    if (st_rmtree(lake, &err) || st_mkdirs(lake, &err) || st_engine_open(NULL, &eng, &err))
        goto fail;

    step("create the table (partitioned by country, change data feed on)", NULL);
    const char *ddl = "trade_id long not null, country string, entity string, "
                      "amount decimal(18,2), currency string, traded_at timestamp";
    printf("   schema: %s\n", ddl);
    if (st_delta_schema_from_ddl(ddl, &schema, &err))
        goto fail;
    static const char *const parts[] = {"country"};
    st_kv props[] = {{"delta.enableChangeDataFeed", "true"}};
    st_delta_create_opts co = {.name = "trades", .partition_by = parts, .n_partition_by = 1,
                               .properties = props, .n_properties = 1};
    if (st_delta_create(table, schema, &co, &err))
        goto fail;
    printf("   version 0 committed: %s/_delta_log/00000000000000000000.json\n", table);

    step("append trades for DE, FR, LU and NL", NULL);
    sql = st_sprintf(
        "SELECT i::BIGINT AS trade_id, ['DE','FR','LU','NL'][1 + i %% 4] AS country, "
        "'fund-' || chr(97 + (i %% 3)::INT) AS entity, "
        "((i * 7919) %% 1000000 / 100.0)::DECIMAL(18,2) AS amount, "
        "['EUR','USD','GBP'][1 + i %% 3] AS currency, "
        "TIMESTAMPTZ '2026-01-01 00:00:00+00' + (i * INTERVAL 37 SECOND) AS traded_at "
        "FROM range(%ld) t(i)", rows);
    st_delta_write_opts wo = {.mode = ST_DELTA_APPEND};
    st_delta_result res;
    if (st_delta_write(eng, table, sql, &wo, &res, &err))
        goto fail;
    printf("   version %lld: %lld rows in %lld files\n", (long long)res.version,
           (long long)res.rows_written, (long long)res.files_added);
    if (mount(eng, table, -1, &err) ||
        query(eng, "SELECT country, count(*) AS trades, sum(amount) AS amount FROM trades GROUP BY country ORDER BY country", &err))
        goto fail;

    step("update: fund-a amounts corrected by +10%", NULL);
    if (st_delta_update(eng, table, "amount = amount * 1.1", "entity = 'fund-a'", &res, &err))
        goto fail;
    printf("   version %lld: %lld rows updated, %lld files rewritten\n", (long long)res.version,
           (long long)res.rows_updated, (long long)res.files_removed);

    step("hard delete: every FR trade whose trade_id ends in 1 (copy-on-write)", NULL);
    if (st_delta_delete(eng, table, "country = 'FR' AND trade_id % 10 = 1", &res, &err))
        goto fail;
    printf("   version %lld: %lld rows deleted, only %lld file(s) of partition FR rewritten\n",
           (long long)res.version, (long long)res.rows_deleted, (long long)res.files_removed);

    step("time travel: the table at version 1 and now", NULL);
    if (mount(eng, table, 1, &err) ||
        query(eng, "SELECT count(*) AS rows_v1, sum(amount) AS amount_v1 FROM trades", &err) ||
        mount(eng, table, -1, &err) ||
        query(eng, "SELECT count(*) AS rows_now, sum(amount) AS amount_now FROM trades", &err))
        goto fail;

    step("change data feed from version 2 to 3", NULL);
    char *cdf = NULL;
    if (st_delta_changes_sql(eng, table, 2, 3, &cdf, &err))
        goto fail;
    st_free(sql);
    sql = st_sprintf("SELECT _commit_version, _change_type, count(*) AS n FROM (%s) "
                     "GROUP BY ALL ORDER BY ALL", cdf);
    st_free(cdf);
    if (query_as(eng, sql, "SELECT _commit_version, _change_type, count(*) FROM <changes 2..3> GROUP BY ALL", &err))
        goto fail;

    step("three small appends (as a stream would make them), then optimize", NULL);
    for (int b = 0; b < 3; b++) {
        st_free(sql);
        sql = st_sprintf("SELECT (%ld + %d * 100 + i)::BIGINT AS trade_id, ['DE','FR','LU','NL'][1 + i %% 4] AS country, "
                         "'fund-a' AS entity, 10.00::DECIMAL(18,2) AS amount, 'EUR' AS currency, "
                         "TIMESTAMPTZ '2026-06-01 00:00:00+00' + i * INTERVAL 1 MINUTE AS traded_at "
                         "FROM range(100) t(i)", rows, b);
        if (st_delta_write(eng, table, sql, &wo, &res, &err))
            goto fail;
        printf("   version %lld: %lld rows in %lld small files\n", (long long)res.version,
               (long long)res.rows_written, (long long)res.files_added);
    }

    step("optimize (compact small files per partition) and checkpoint", NULL);
    st_delta_optimize_opts oo = {0};
    if (st_delta_optimize(eng, table, &oo, &res, &err))
        goto fail;
    if (res.version >= 0)
        printf("   version %lld: %lld files compacted into %lld\n", (long long)res.version,
               (long long)res.files_removed, (long long)res.files_added);
    else
        printf("   nothing to compact\n");
    int64_t cp = -1;
    if (st_delta_checkpoint(eng, table, &cp, &err))
        goto fail;
    printf("   checkpoint at version %lld\n", (long long)cp);

    step("query the latest version", NULL);
    if (mount(eng, table, -1, &err) ||
        query(eng, "SELECT country, entity, count(*) AS trades, sum(amount) AS amount "
                   "FROM trades GROUP BY ALL ORDER BY ALL LIMIT 6", &err))
        goto fail;

    printf("\nDone in %.2f s.  Try:\n"
           "  build/strata table history %s\n"
           "  build/strata sql --lake %s \"SELECT count(*) FROM bronze.trades\"\n",
           (double)(st_mono_ns() - t0) / 1e9, table, lake);
    rc = ST_EXIT_OK;
fail:
    if (rc != ST_EXIT_OK)
        cli_fail(&err);
    st_free(sql);
    st_free(table);
    st_delta_schema_free(schema);
    st_engine_close(eng);
    return rc;
}

/* ================================================================ the platform demo */

#include "strata/gold.h"
#include "strata/orch.h"
#include "strata/project.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct demo {
    char *exe;        /* this binary, for `strata serve/send/load` children */
    char *tmpl;       /* examples/demo */
    char *work;       /* everything the demo writes */
    char *proj;       /* the project copy */
    char *srv;        /* server data (removed at the end) */
    char *lake;
    int pg_port, my_port, coll_port;
    bool have_db;     /* the sample databases are running */
    st_replay_srv *ecb, *wb;
    int64_t ms_events, ms_run1, ms_run2;
    int64_t ms_layer[3];  /* asset time summed per layer: bronze, silver, gold */
} demo;

static void say(const char *fmt, const char *arg)
{
    printf("\n== %d. ", ++step_no);
    printf(fmt, arg);
    printf("\n");
    fflush(stdout);
}

/* A free loopback TCP port (bound and released; the gap is small enough
 * for a demo on one machine). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    int port = 0;
    if (!bind(fd, (struct sockaddr *)&sa, sizeof sa) &&
        !getsockname(fd, (struct sockaddr *)&sa, &len))
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

/* Starts argv with stdout/stderr appended to log (NULL = inherited).
 * Returns the pid, -1 on failure. */
static pid_t spawn(char *const argv[], const char *log)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    if (log) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
    }
    execvp(argv[0], argv);
    _exit(127);
}

/* Runs argv to completion; its exit status (-1 when it could not run). */
static int run_wait(char *const argv[], const char *log)
{
    pid_t pid = spawn(argv, log);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int servers(demo *d, const char *what)
{
    char *script = st_path_join(d->proj, "servers.sh");
    char pg[16], my[16];
    snprintf(pg, sizeof pg, "%d", d->pg_port);
    snprintf(my, sizeof my, "%d", d->my_port);
    char *log = st_path_join(d->work, "servers.log");
    char *argv[] = {"sh", script, (char *)what, d->srv, pg, my, NULL};
    int rc = run_wait(argv, log);
    st_free(script);
    st_free(log);
    return rc;
}

/* A process that outlives the demo only to clean up after it.  It holds the
 * read end of a pipe whose write end only the demo has (close-on-exec, so no
 * server inherits it).  A clean finish writes one byte and the watchdog just
 * exits; end of file means the demo died (Ctrl-C, kill, a crash), and the
 * watchdog then stops the sample servers and removes their data.  It runs
 * in its own session so the terminal's Ctrl-C does not reach it. */
static int watchdog_start(demo *d, pid_t *out_pid)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    char *script = st_path_join(d->proj, "servers.sh");
    char pg[16], my[16];
    snprintf(pg, sizeof pg, "%d", d->pg_port);
    snprintf(my, sizeof my, "%d", d->my_port);
    fflush(NULL);
    pid_t pid = script ? fork() : -1;
    if (pid == 0) {
        setsid();
        signal(SIGINT, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        close(fds[1]);
        char c;
        ssize_t n;
        do
            n = read(fds[0], &c, 1);
        while (n < 0 && errno == EINTR);
        if (n == 1)
            _exit(0);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
        /* exec at once: the demo has threads, so nothing that may allocate
         * runs in this forked copy */
        execlp("sh", "sh", "-c", "sh \"$0\" stop \"$1\" \"$2\" \"$3\"; rm -rf \"$1\"", script,
               d->srv, pg, my, (char *)NULL);
        _exit(0);
    }
    st_free(script);
    close(fds[0]);
    if (pid < 0) {
        close(fds[1]);
        return -1;
    }
    *out_pid = pid;
    return fds[1];
}

/* The demo cleaned up itself: release the watchdog. */
static void watchdog_release(int fd, pid_t pid)
{
    if (fd < 0)
        return;
    ssize_t n;
    do
        n = write(fd, "x", 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    int status;
    waitpid(pid, &status, 0);
}

static char *replace_all(const char *s, const char *from, const char *to)
{
    st_buf b;
    st_buf_init(&b, 0);
    size_t n = strlen(from);
    for (const char *p = s; *p;) {
        const char *hit = strstr(p, from);
        if (!hit) {
            st_buf_puts(&b, p);
            break;
        }
        st_buf_append(&b, p, (size_t)(hit - p));
        st_buf_puts(&b, to);
        p = hit + n;
    }
    return st_buf_take(&b);
}

/* Copies the template project and fills in the ports of this run. */
static st_rc make_project(demo *d, st_err *err)
{
    char *argv[] = {"cp", "-R", d->tmpl, d->proj, NULL};
    if (run_wait(argv, NULL) != 0)
        return st_fail(err, ST_ERR_IO, "demo: cannot copy %s to %s", d->tmpl, d->proj);
    char *yml = st_path_join(d->proj, "strata.yml"), *text = NULL;
    size_t len = 0;
    st_rc rc = st_file_read(yml, 1 << 20, &text, &len, err);
    char pg[16], my[16], ecb[64], wb[64], coll[64];
    snprintf(pg, sizeof pg, "%d", d->pg_port);
    snprintf(my, sizeof my, "%d", d->my_port);
    snprintf(ecb, sizeof ecb, "http://127.0.0.1:%d/service", st_replay_srv_port(d->ecb));
    snprintf(wb, sizeof wb, "http://127.0.0.1:%d", st_replay_srv_port(d->wb));
    snprintf(coll, sizeof coll, "127.0.0.1:%d", d->coll_port);
    const char *from[] = {"@PG_PORT@", "@MY_PORT@", "@ECB_URL@", "@WB_URL@", "@COLLECTOR@"};
    const char *to[] = {pg, my, ecb, wb, coll};
    for (int i = 0; i < 5 && !rc; i++) {
        char *next = replace_all(text, from[i], to[i]);
        st_free(text);
        text = next;
        if (!text)
            rc = st_fail(err, ST_ERR_NOMEM, "demo: strata.yml");
    }
    rc = rc ? rc : st_file_write_atomic(yml, text, strlen(text), err);
    st_free(text);
    st_free(yml);
    return rc;
}

/* Collector + events: serve, send web/llm/backend (with duplicates, late
 * events and PII), stop, then one loader pass into bronze. */
static st_rc events(demo *d, st_err *err)
{
    int64_t t0 = st_now_ms();
    char *log = st_path_join(d->work, "serve.log");
    char *sargv[] = {d->exe, "serve", "--project", d->proj, NULL};
    pid_t pid = spawn(sargv, log);
    st_rc rc = ST_OK;
    for (int i = 0; pid > 0 && i < 200 && !port_open(d->coll_port); i++)
        usleep(50 * 1000);
    if (pid < 0 || !port_open(d->coll_port)) {
        rc = st_fail(err, ST_ERR_REMOTE, "demo: the collector did not start (see %s)", log);
        goto done;
    }
    printf("   collector listening on 127.0.0.1:%d\n", d->coll_port);
    static const char *const fams[][2] = {{"web", "STRATA_DEMO_KEY_WEB"},
                                          {"llm", "STRATA_DEMO_KEY_LLM"},
                                          {"backend", "STRATA_DEMO_KEY_BACKEND"}};
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", d->coll_port);
    for (int i = 0; i < 3 && !rc; i++) {
        char *rel = st_sprintf("events/%s.ndjson", fams[i][0]);
        char *file = st_path_join(d->proj, rel);
        char *argv[] = {d->exe, "send", "--url", url, "--key-env", (char *)fams[i][1], "--file",
                        file, NULL};
        printf("   strata send %s events (%s)\n", fams[i][0], rel);
        if (run_wait(argv, log) != 0)
            rc = st_fail(err, ST_ERR_REMOTE, "demo: sending %s failed (see %s)", file, log);
        st_free(rel);
        st_free(file);
    }
done:
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
    if (!rc) {
        char *argv[] = {d->exe, "load", "--project", d->proj, NULL};
        printf("   strata load: event log -> raw.events, "
               "bronze.web_events/llm_calls/backend_events\n");
        if (run_wait(argv, log) != 0)
            rc = st_fail(err, ST_ERR_IO, "demo: the loader failed (see %s)", log);
    }
    st_free(log);
    d->ms_events = st_now_ms() - t0;
    return rc;
}

static st_rc run_dag(demo *d, const char *label, const char *select, int64_t *ms, st_err *err)
{
    st_project *p = NULL;
    st_orch *o = NULL;
    st_run_summary *sum = NULL;
    int64_t t0 = st_now_ms();
    st_rc rc = st_project_load(d->proj, &p, err);
    rc = rc ? rc : st_orch_open(p, &o, err);
    if (rc)
        goto done;
    st_run_opts ro = {.trigger = "manual", .select = select};
    st_rc run_rc = st_orch_run(o, &ro, &sum, err);
    if (sum) {
        printf("   %s: run %s, %zu ok, %zu failed, %zu skipped, %zu observed, %lld ms\n", label,
               sum->run_id, sum->n_ok, sum->n_failed, sum->n_skipped, sum->n_observed,
               (long long)sum->duration_ms);
        for (size_t i = 0; i < sum->n; i++) {
            const st_asset_result *a = &sum->assets[i];
            int layer = !strncmp(a->key, "bronze.", 7)   ? 0
                        : !strncmp(a->key, "silver.", 7) ? 1
                                                         : 2;
            d->ms_layer[layer] += a->duration_ms;
            printf("     %-9s %-38s v%-3lld %7lld rows %6lld ms%s%s\n",
                   st_asset_status_name(a->status), a->key, (long long)a->version,
                   (long long)a->rows, (long long)a->duration_ms,
                   a->error ? "  " : (a->blocked_by ? "  blocked by " : ""),
                   a->error ? a->error : (a->blocked_by ? a->blocked_by : ""));
        }
    }
    /* failed assets are reported above and the demo goes on with the rest */
    if (run_rc && !sum)
        rc = run_rc;
    else
        st_err_clear(err);
done:
    *ms = st_now_ms() - t0;
    st_run_summary_free(sum);
    st_orch_close(o);
    st_project_free(p);
    return rc;
}

static int show(st_engine *eng, const char *title, const char *sql)
{
    st_err err;
    st_err_clear(&err);
    printf("\n   -- %s\n", title);
    if (cli_print_query(eng, sql, CLI_FMT_TABLE, stdout, &err)) {
        printf("   (not available: %s)\n", err.msg);
        return -1;
    }
    return 0;
}

static void summary(demo *d)
{
    st_err err;
    st_err_clear(&err);
    st_engine *eng = NULL;
    if (st_engine_open(NULL, &eng, &err) || cli_mount_lake(eng, d->lake, &err)) {
        printf("   summary unavailable: %s\n", err.msg);
        st_engine_close(eng);
        return;
    }
    say("summary of the lake %s", d->lake);
    st_project *p = NULL;
    if (!st_project_load(d->proj, &p, &err)) {
        printf("   %-40s %8s %8s\n", "table", "version", "rows");
        for (size_t i = 0; i < p->n_assets; i++) {
            const st_asset_def *a = p->assets[i];
            char *path = st_project_table_path(p, a->key);
            int64_t v = -1, rows = -1;
            if (path && !st_delta_latest_version(path, &v, NULL) && v >= 0) {
                char *sql = st_sprintf("SELECT count(*) FROM \"%s\".\"%s\"", a->layer, a->name);
                if (st_engine_query_i64(eng, sql, &rows, &err))
                    rows = -1;
                st_free(sql);
            }
            if (v >= 0)
                printf("   %-40s %8lld %8lld\n", a->key, (long long)v, (long long)rows);
            else
                printf("   %-40s %8s %8s\n", a->key, "-", "-");
            st_free(path);
        }
        st_project_free(p);
    }
    show(eng, "quality checks (latest run of each asset)",
         "SELECT asset, count(*) AS checks, count(*) FILTER (WHERE passed) AS passed, "
         "count(*) FILTER (WHERE NOT passed AND severity = 'warn') AS warned, "
         "count(*) FILTER (WHERE NOT passed AND severity = 'error') AS failed "
         "FROM _system.quality_results q WHERE run_id = (SELECT arg_max(run_id, checked_at) FROM "
         "_system.quality_results r WHERE r.asset = q.asset) GROUP BY asset ORDER BY asset");
    show(eng, "SCD2 history: customers changed in the CRM between the two runs",
         "SELECT customer_id, segment, risk_score, _version, _valid_from, _valid_to, _is_current "
         "FROM silver.customer WHERE customer_id IN (1, 2, 3) ORDER BY customer_id, _version");
    show(eng, "gold: EUR volume by country and month "
              "(fact_transactions x dim_entity x dim_country)",
         "SELECT c.country_name, f.booked_month, count(*) AS txns, sum(f.amount_eur) AS amount_eur "
         "FROM gold.fact_transactions f JOIN gold.dim_entity e USING (entity_sk) "
         "JOIN gold.dim_country c ON c.country_code = e.country_code "
         "GROUP BY ALL ORDER BY 1, 2");
    show(eng, "gold: dim_country with the latest GDP from the World Bank replay",
         "SELECT country_code, country_name, region, gdp_year, round(gdp_usd / 1e9, 1) AS "
         "gdp_usd_bn FROM gold.dim_country ORDER BY 1");
    show(eng, "gold: transactions of the changed customers, each resolved to the customer "
              "version valid when booked (the 1000xx ones were booked before the CRM change "
              "was extracted, the 2000xx ones after)",
         "SELECT f.txn_id, f.booked_at, d.customer_id, d.risk_score, d.version AS customer_version,"
         " f.amount, f.currency_code, f.amount_eur FROM gold.fact_transactions f "
         "JOIN gold.dim_customer d USING (customer_sk) WHERE f.txn_id >= 100000 "
         "ORDER BY 1 LIMIT 8");
    show(eng, "events: PII as stored in bronze (e-mail redacted, prompt encrypted per "
              "subject, IP hashed)",
         "SELECT (SELECT properties FROM bronze.backend_events ORDER BY event_id LIMIT 1) AS "
         "backend_properties, (SELECT left(prompt, 20) || '...' FROM bronze.llm_calls LIMIT 1) "
         "AS llm_prompt, (SELECT left(ip, 16) || '...' FROM bronze.web_events LIMIT 1) AS web_ip");
    show(eng, "events: deduplicated by event_id; all of them arrived late (2024 event times)",
         "SELECT count(*) AS rows, count(DISTINCT event_id) AS event_ids, "
         "count(*) FILTER (WHERE _late) AS late FROM bronze.backend_events");

    /* ML: a point-in-time correct training set from the feature table */
    say("ML: training set from gold.customer_activity (point in time)%s", "");
    char *spine = st_path_join(d->work, "spine.csv");
    char *tsdir = st_path_join(d->work, "training_set");
    char *spine_sql = st_sprintf(
        "COPY (SELECT customer_id, TIMESTAMP '2024-03-01' + INTERVAL (customer_id %% 20) DAY "
        "AS label_ts, (customer_id %% 3 = 0) AS churned FROM range(1, 41) t(customer_id)) TO '%s' "
        "(HEADER)", spine);
    const char *feats[] = {"customer_activity"};
    st_training_opts to = {.lake = d->lake, .spine = spine, .features = feats, .n_features = 1,
                           .out_dir = tsdir};
    st_training_result tr;
    if (st_engine_exec(eng, spine_sql, &err) || st_features_training_set(eng, &to, &tr, &err))
        printf("   training set not built: %s\n", err.msg);
    else {
        printf("   strata features training-set --spine %s --features customer_activity --out %s\n",
               spine, tsdir);
        printf("   %lld spine rows, %lld with features; manifest.json beside the Parquet file\n",
               (long long)tr.rows, (long long)tr.rows_matched);
        show(eng, "a few rows: the features are those known at label_ts",
             "SELECT customer_id, label_ts, churned, customer_activity__feature_ts AS feature_ts, "
             "customer_activity__txn_count_30d AS txns_30d, customer_activity__txn_eur_30d AS "
             "eur_30d FROM st_training ORDER BY customer_id LIMIT 5");
    }
    st_free(spine);
    st_free(tsdir);
    st_free(spine_sql);

    say("Power BI and notebooks%s", "");
    char *pbi = st_path_join(d->work, "powerbi");
    size_t nt = 0;
    if (st_gold_powerbi(eng, d->lake, pbi, &nt, &err))
        printf("   power bi model not written: %s\n", err.msg);
    else
        printf("   TMDL semantic model (%zu tables, relationships, measures, incremental refresh):"
               "\n     %s/definition  (open in Power BI Desktop / Tabular Editor; docs/powerbi.md)"
               "\n", nt, pbi);
    printf("   Power BI Delta tables: "
           "DeltaLake.Table(Folder.Files(\"%s/gold/fact_transactions\"))\n"
           "   SQL:      strata sql --lake %s \"SELECT * FROM gold.fact_transactions LIMIT 5\"\n"
           "   Notebook: import duckdb; duckdb.sql(\"INSTALL delta; LOAD delta\");\n"
           "             duckdb.sql(\"SELECT * FROM "
           "delta_scan('%s/gold/customer_activity')\").df()\n"
           "   or:       from deltalake import DeltaTable; "
           "DeltaTable('%s/gold/fact_transactions').to_pandas()\n",
           d->lake, d->lake, d->lake, d->lake);
    printf("   project:  %s  (strata plan / run / runs --project work here)\n", d->proj);
    st_free(pbi);
    st_engine_close(eng);
}

static char *find_template(const char *exe)
{
    const char *src = getenv("STRATA_SRC");
    char *cands[3] = {st_strdup("examples/demo"),
                      src ? st_sprintf("%s/examples/demo", src) : NULL, NULL};
    if (exe) {
        char *dir = st_strdup(exe);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = 0;
        cands[2] = st_sprintf("%s/../examples/demo", dir);
        st_free(dir);
    }
    char *found = NULL;
    for (int i = 0; i < 3; i++) {
        char *yml = cands[i] ? st_path_join(cands[i], "strata.yml") : NULL;
        if (!found && yml && access(yml, R_OK) == 0)
            found = realpath(cands[i], NULL);
        st_free(yml);
        st_free(cands[i]);
    }
    /* realpath allocates with malloc; hand back an st_ string */
    char *out = st_strdup(found);
    free(found);
    return out;
}

static void usage_full(FILE *f)
{
    fprintf(f,
            "usage: strata demo [--dir DIR] [--project TEMPLATE] [--no-servers]\n"
            "       strata demo --storage-only [--lake DIR] [--rows N]\n\n"
            "Runs the platform end to end on the examples/demo project: starts a PostgreSQL\n"
            "(portfolio OLTP) and a MariaDB (CRM) on loopback ports, local replays of the\n"
            "ECB and World Bank APIs and the event collector; sends web, LLM and backend\n"
            "events; runs the DAG to gold; changes source rows and runs again (SCD2\n"
            "history); prints a summary and stops the servers.  Output stays in DIR\n"
            "(default a new /tmp/strata-demo-* directory).  The databases need root and the\n"
            "packages scripts/setup.sh installs; without them the rest still runs.\n");
}

int cmd_demo(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--storage-only")) {
            char **rest = st_calloc((size_t)argc, sizeof *rest);
            int n = 0;
            for (int j = 0; j < argc; j++)
                if (j != i)
                    rest[n++] = argv[j];
            int r = demo_storage(n, rest);
            st_free(rest);
            return r;
        }
    const char *dir = NULL, *tmpl = NULL;
    bool no_servers = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage_full(stdout);
            return ST_EXIT_OK;
        } else if (!strcmp(argv[i], "--no-servers"))
            no_servers = true;
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--project") && i + 1 < argc)
            tmpl = argv[++i];
        else {
            fprintf(stderr, "strata demo: unknown or incomplete option '%s'\n", argv[i]);
            usage_full(stderr);
            return ST_EXIT_USAGE;
        }
    }
    st_err err;
    st_err_clear(&err);
    demo d;
    memset(&d, 0, sizeof d);
    int ret = ST_EXIT_ERROR;
    bool started = false;
    int guard_fd = -1;
    pid_t guard_pid = -1;
    int64_t t0 = st_now_ms();
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        st_fail(&err, ST_ERR_IO, "demo: cannot find the strata binary (/proc/self/exe)");
        goto done;
    }
    exe[n] = 0;
    d.exe = st_strdup(exe);
    d.tmpl = tmpl ? realpath(tmpl, NULL) : find_template(exe);
    if (tmpl && d.tmpl) { /* realpath's malloc'd string into an st_ one */
        char *t = st_strdup(d.tmpl);
        free(d.tmpl);
        d.tmpl = t;
    }
    if (!d.tmpl) {
        st_fail(&err, ST_ERR_NOTFOUND, "demo: project template %s not found (run from the "
                "source tree or pass --project examples/demo)", tmpl ? tmpl : "examples/demo");
        goto done;
    }
    if (dir) {
        d.work = st_strdup(dir);
        /* replace only an earlier demo's directory, never arbitrary data */
        char *mark = st_path_join(dir, "project/strata.yml");
        bool earlier = mark && access(mark, F_OK) == 0;
        st_free(mark);
        if (!earlier && rmdir(dir) != 0 && errno != ENOENT) {
            st_fail(&err, ST_ERR_EXISTS, "demo: %s exists and is not an earlier demo "
                    "directory; choose an empty or new one", dir);
            goto done;
        }
        if (st_rmtree(dir, &err) || st_mkdirs(dir, &err))
            goto done;
    } else {
        char tmp[] = "/tmp/strata-demo-XXXXXX";
        if (!mkdtemp(tmp)) {
            st_fail_errno(&err, ST_ERR_IO, "demo: mkdtemp");
            goto done;
        }
        d.work = st_strdup(tmp);
    }
    d.proj = st_path_join(d.work, "project");
    {
        /* PostgreSQL runs as user postgres, which must reach its data dir:
         * the servers live apart from the (possibly private) work dir */
        char stmp[] = "/tmp/strata-demo-srv-XXXXXX";
        if (!mkdtemp(stmp) || chmod(stmp, 0711)) {
            st_fail_errno(&err, ST_ERR_IO, "demo: server directory %s", stmp);
            goto done;
        }
        d.srv = st_strdup(stmp);
    }
    d.lake = st_path_join(d.proj, "lake");
    d.pg_port = free_port();
    d.my_port = free_port();
    d.coll_port = free_port();
    printf("Strata demo: the platform end to end in %s\n", d.work);

    say("sources: ECB reference rates and World Bank GDP replayed from %s", "fixtures/");
    char *fx = st_path_join(d.tmpl, "fixtures/ecb_exr_d_csvdata.csv");
    char *gdp = st_path_join(d.tmpl, "fixtures/wb_gdp.json");
    st_rc rc = st_replay_srv_start(fx, "text/csv", 0, &d.ecb, &err);
    rc = rc ? rc : st_replay_srv_start(gdp, "application/json", 0, &d.wb, &err);
    st_free(fx);
    st_free(gdp);
    if (rc || make_project(&d, &err))
        goto done;
    printf("   ECB SDMX-CSV replay on http://127.0.0.1:%d/service, World Bank API v2 replay on "
           "http://127.0.0.1:%d\n", st_replay_srv_port(d.ecb), st_replay_srv_port(d.wb));
    setenv("STRATA_DEMO_PW", "stratapw", 1);
    setenv("STRATA_DEMO_KEY_WEB", "demo-web-key", 1);
    setenv("STRATA_DEMO_KEY_LLM", "demo-llm-key", 1);
    setenv("STRATA_DEMO_KEY_BACKEND", "demo-backend-key", 1);
    setenv("STRATA_DEMO_MASTER_KEY",
           "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 0);

    say("sources: PostgreSQL (portfolio OLTP) and MariaDB (CRM, no timestamps)%s", "");
    if (no_servers)
        printf("   SKIPPED (--no-servers): the database sources and what depends on them "
               "will fail\n");
    else if (servers(&d, "check") != 0)
        printf("   SKIPPED: cannot start the sample databases here (%s); see %s/servers.log. "
               "Run as root after scripts/setup.sh for the full demo; the rest runs now.\n",
               getuid() ? "not root" : "postgresql or mariadb-server missing", d.work);
    else {
        started = true;
        guard_fd = watchdog_start(&d, &guard_pid);
        if (servers(&d, "start") != 0 || servers(&d, "seed") != 0)
            printf("   FAILED to start or seed the databases (see %s/servers.log); "
                   "going on without them\n", d.work);
        else {
            d.have_db = true;
            printf("   PostgreSQL 127.0.0.1:%d: core.entities (10 funds in DE, FR, LU, GB), "
                   "core.accounts, core.transactions\n   MariaDB    127.0.0.1:%d: "
                   "crm.customers\n   (data in %s; stopped and removed at the end, also if the demo is "
                   "interrupted)\n", d.pg_port, d.my_port, d.srv);
        }
    }

    say("events: web, LLM and backend events through the collector (duplicates, late, PII)%s", "");
    if (events(&d, &err)) {
        printf("   events not loaded: %s\n", err.msg);
        st_err_clear(&err);
    }

    say("run 1: the whole DAG, sources -> bronze -> silver -> gold%s", "");
    if (run_dag(&d, "run 1", NULL, &d.ms_run1, &err))
        goto done;

    say("source changes: risk re-ratings, a segment change, a closed account, new "
        "transactions%s", "");
    if (d.have_db && servers(&d, "change") == 0) {
        printf("   applied examples/demo/seed/changes_portfolio.sql and changes_crm.sql\n");
        say("run 2: incremental extraction, SCD2 merge, gold rebuilt%s", "");
        if (run_dag(&d, "run 2", NULL, &d.ms_run2, &err))
            goto done;
        say("new transactions booked after the CRM changes; run 3: "
            "bronze.portfolio__core__transactions+ (it and what depends on it)%s", "");
        int64_t ms3 = 0;
        if (servers(&d, "book") != 0)
            printf("   booking the new transactions failed (see %s/servers.log)\n", d.work);
        else if (run_dag(&d, "run 3", "bronze.portfolio__core__transactions+", &ms3, &err))
            goto done;
        d.ms_run2 += ms3;
    } else
        printf("   SKIPPED: no sample databases\n");

    summary(&d);
    printf("\n   time: events %lld ms, run 1 %lld ms, runs 2+3 %lld ms, total %lld ms\n"
           "   asset time per layer (all runs, summed over parallel workers): bronze %lld ms, "
           "silver %lld ms, gold %lld ms\n",
           (long long)d.ms_events, (long long)d.ms_run1, (long long)d.ms_run2,
           (long long)(st_now_ms() - t0), (long long)d.ms_layer[0], (long long)d.ms_layer[1],
           (long long)d.ms_layer[2]);
    ret = ST_EXIT_OK;
done:
    if (started) {
        servers(&d, "stop");
        printf("   sample servers stopped\n");
    }
    if (d.srv)
        st_rmtree(d.srv, NULL);
    watchdog_release(guard_fd, guard_pid);
    st_replay_srv_stop(d.ecb);
    st_replay_srv_stop(d.wb);
    if (ret)
        cli_fail(&err);
    else
        printf("   output kept in %s (remove it when done)\n", d.work);
    st_free(d.exe);
    st_free(d.tmpl);
    st_free(d.work);
    st_free(d.proj);
    st_free(d.srv);
    st_free(d.lake);
    return ret;
}
