/*
 * demo_test.c - `strata demo` end to end (its sample data is the reduced
 * size: 10 entities, 40 customers, 600 transactions, 250 events), with the
 * gold results checked against values computed here from the seed files and
 * the replayed ECB rates: the EUR amount of every transaction at the rate of
 * its booking date (or the last business day before), SCD2 versions of the
 * customers changed between runs, the customer version each new transaction
 * resolves to, the World Bank GDP in dim_country, and event deduplication.
 *
 * Needs root and the PostgreSQL / MariaDB server packages (scripts/setup.sh);
 * without them the test prints SKIP and is skipped.
 */
#include "testutil.h"

#include "strata/delta.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static char *src_path(const char *rel)
{
    const char *src = getenv("STRATA_SRC");
    return st_sprintf("%s/%s", src ? src : ".", rel);
}

/* Skips (visibly) unless the sample databases can start here. */
static void skip_without_databases(void)
{
    char *script = src_path("examples/demo/servers.sh");
    char *chk = NULL;
    int rc = tu_run(&chk, "sh %s check /tmp 0 0 2>&1", script);
    st_free(script);
    if (rc != 0) {
        printf("SKIP: demo_test needs the sample databases: %s", chk ? chk : "");
        st_free(chk);
        skip();
    }
    st_free(chk);
}

static void mount(st_engine *eng, const char *lake, const char *rel, const char *view)
{
    char *path = st_path_join(lake, rel);
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(eng, path, -1, &s, &tu_err));
    TU_OK(st_delta_register_view(eng, view, s, &tu_err));
    st_delta_snapshot_free(s);
    st_free(path);
}

/* ECB rates from the fixture: currency, date (days), rate; parsed in C. */
typedef struct rate {
    char ccy[4];
    int64_t day;
    double v;
} rate;

static int64_t day_of(const char *ymd)
{
    int y = 0, m = 0, d = 0;
    if (sscanf(ymd, "%d-%d-%d", &y, &m, &d) != 3)
        fail_msg("bad date %s", ymd);
    return st_days_from_civil(y, (unsigned)m, (unsigned)d);
}

static size_t load_rates(rate *r, size_t max)
{
    char *path = src_path("examples/demo/fixtures/ecb_exr_d_csvdata.csv");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    size_t n = 0;
    assert_non_null(fgets(line, sizeof line, f));  /* header */
    while (fgets(line, sizeof line, f) && n < max) {
        /* KEY,FREQ,CURRENCY,CURRENCY_DENOM,EXR_TYPE,EXR_SUFFIX,TIME_PERIOD,OBS_VALUE,... */
        char *field[8];
        char *p = line;
        for (int i = 0; i < 8; i++) {
            field[i] = p;
            p = strchr(p, ',');
            assert_non_null(p);
            *p++ = 0;
        }
        snprintf(r[n].ccy, sizeof r[n].ccy, "%s", field[2]);
        r[n].day = day_of(field[6]);
        r[n].v = strtod(field[7], NULL);
        n++;
    }
    fclose(f);
    st_free(path);
    return n;
}

static double rate_at(const rate *r, size_t n, const char *ccy, int64_t day)
{
    if (!strcmp(ccy, "EUR"))
        return 1.0;
    int64_t best = INT64_MIN;
    double v = NAN;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(r[i].ccy, ccy) && r[i].day <= day && r[i].day > best) {
            best = r[i].day;
            v = r[i].v;
        }
    return v;
}

static void test_demo(void **state)
{
    (void)state;
    skip_without_databases();
    char *dir = tu_tempdir("demo");
    char *work = st_path_join(dir, "w");
    char *tmpl = src_path("examples/demo");
    char *out = NULL;
    int rc = tu_run(&out, "%s demo --dir %s --project %s 2>&1", tu_strata_bin(), work, tmpl);
    if (rc != 0)
        fail_msg("strata demo failed (%d):\n%s", rc, out);
    /* both full runs succeed completely, the third (a selection) too */
    const char *need[] = {"run 1: run ", "17 ok, 0 failed, 0 skipped", "run 3: run ",
                          "3 ok, 0 failed", "sample servers stopped"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (!strstr(out, need[i]))
            fail_msg("demo output lacks '%s':\n%s", need[i], out);
    if (strstr(out, "SKIPPED") || strstr(out, "not available"))
        fail_msg("demo skipped a part:\n%s", out);

    char *lake = st_path_join(work, "project/lake");
    st_engine *eng = tu_engine();
    mount(eng, lake, "gold/fact_transactions", "f");
    mount(eng, lake, "gold/dim_customer", "dc");
    mount(eng, lake, "silver/customer", "sc");
    mount(eng, lake, "bronze/web_events", "web");

    /* 1. every seeded transaction's EUR amount, computed here */
    rate rates[1000];
    size_t n_rates = load_rates(rates, 1000);
    assert_true(n_rates > 100);
    char *tpath = src_path("examples/demo/seed/transactions.csv");
    FILE *tf = fopen(tpath, "r");
    assert_non_null(tf);
    char line[512];
    assert_non_null(fgets(line, sizeof line, tf));
    duckdb_result res;
    TU_OK(st_engine_query(eng, "SELECT txn_id, amount_eur::DOUBLE, amount::DOUBLE, currency_code "
                               "FROM f WHERE txn_id < 100000 ORDER BY txn_id", &res, &tu_err));
    idx_t n_rows = duckdb_row_count(&res);
    idx_t row = 0;
    double total_expected = 0, total_got = 0;
    int n_txn = 0;
    while (fgets(line, sizeof line, tf)) {
        /* txn_id,account_id,customer_id,entity_id,country,txn_type,amount,currency,booked_at,... */
        char *field[9];
        char *p = line;
        for (int i = 0; i < 9; i++) {
            field[i] = p;
            p = strchr(p, ',');
            if (p)
                *p++ = 0;
        }
        long id = strtol(field[0], NULL, 10);
        double amount = strtod(field[6], NULL);
        if (id == 1)
            amount += 100;  /* corrected at the source before run 2 (changes_portfolio.sql) */
        char ymd[11];
        snprintf(ymd, sizeof ymd, "%s", field[8]);
        double r = rate_at(rates, n_rates, field[7], day_of(ymd));
        assert_false(isnan(r));
        double eur = round(amount / r * 100.0) / 100.0;
        assert_true(row < n_rows);
        assert_int_equal(duckdb_value_int64(&res, 0, row), id);
        double got = duckdb_value_double(&res, 1, row);
        if (fabs(got - eur) > 0.0101)
            fail_msg("txn %ld: amount_eur %.2f, expected %.2f (%.2f %s at %.4f)", id, got, eur,
                     amount, field[7], r);
        assert_true(fabs(duckdb_value_double(&res, 2, row) - amount) < 0.001);
        total_expected += eur;
        total_got += got;
        row++;
        n_txn++;
    }
    fclose(tf);
    duckdb_destroy_result(&res);
    assert_int_equal(n_txn, 600);
    assert_int_equal(row, n_rows);
    printf("EUR total of the seeded transactions: gold %.2f, computed %.2f\n", total_got,
           total_expected);
    assert_true(fabs(total_got - total_expected) < 0.5);

    /* 2. SCD2: customers 1-3 changed between runs have two versions, the rest one */
    int64_t v = 0;
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM sc WHERE customer_id IN (1,2,3)", &v,
                              &tu_err));
    assert_int_equal(v, 6);
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM sc WHERE customer_id NOT IN (1,2,3)", &v,
                              &tu_err));
    assert_int_equal(v, 38);  /* 37 unchanged + the new customer 41 */
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM sc WHERE _is_current", &v, &tu_err));
    assert_int_equal(v, 41);

    /* 3. the new transactions resolve to the version valid when booked */
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM f JOIN dc USING (customer_sk) WHERE "
                                   "f.txn_id BETWEEN 100000 AND 199999 AND dc.version = 1", &v,
                              &tu_err));
    int64_t before = v;
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM f JOIN dc USING (customer_sk) WHERE "
                                   "f.txn_id >= 200000 AND dc.version = 2", &v, &tu_err));
    assert_true(before >= 3);
    assert_int_equal(v, before);
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM f", &v, &tu_err));
    assert_int_equal(v, 600 + 2 * before);

    /* 4. events: one row per event_id (the file repeats some ids) */
    char *wpath = src_path("examples/demo/events/web.ndjson");
    FILE *wf = fopen(wpath, "r");
    assert_non_null(wf);
    char ids[400][32];
    int n_ids = 0, n_lines = 0;
    char ev[4096];
    while (fgets(ev, sizeof ev, wf)) {
        const char *k = strstr(ev, "\"event_id\":\"");
        assert_non_null(k);
        k += 12;
        char id[32];
        snprintf(id, sizeof id, "%.*s", (int)(strchr(k, '"') - k), k);
        n_lines++;
        bool seen = false;
        for (int i = 0; i < n_ids; i++)
            seen = seen || !strcmp(ids[i], id);
        if (!seen && n_ids < 400)
            snprintf(ids[n_ids++], sizeof ids[0], "%s", id);
    }
    fclose(wf);
    assert_true(n_lines > n_ids);
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM web", &v, &tu_err));
    assert_int_equal(v, n_ids);

    /* PII: no e-mail address and no clear prompt reached bronze */
    mount(eng, lake, "bronze/backend_events", "be");
    mount(eng, lake, "bronze/llm_calls", "llm");
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FROM be WHERE properties LIKE '%@example.com%'",
                              &v, &tu_err));
    assert_int_equal(v, 0);
    TU_OK(st_engine_query_i64(eng, "SELECT count(*) FILTER (WHERE prompt NOT LIKE 'enc:v1:%') + "
                                   "(count(*) = 0)::INT FROM llm", &v, &tu_err));
    assert_int_equal(v, 0);

    /* 5. World Bank: the latest GDP of each country, as in the replayed fixture */
    mount(eng, lake, "gold/dim_country", "dco");
    char *g = NULL;
    TU_OK(st_engine_query_str(eng, "SELECT gdp_year || ' ' || CAST(gdp_usd AS DECIMAL(18,2)) "
                                   "FROM dco WHERE country_code = 'DE'", &g, &tu_err));
    assert_string_equal(g, "2023 4525703903627.53");
    st_free(g);

    /* 6. the Power BI model and the training set were written */
    char *tmdl = st_path_join(work, "powerbi/definition/tables/fact_transactions.tmdl");
    char *text = NULL;
    size_t len = 0;
    TU_OK(st_file_read(tmdl, 1 << 20, &text, &len, &tu_err));
    assert_non_null(strstr(text, "refreshPolicy"));
    assert_non_null(strstr(text, "RangeStart"));
    char *rels = st_path_join(work, "powerbi/definition/relationships.tmdl"), *rtext = NULL;
    TU_OK(st_file_read(rels, 1 << 20, &rtext, &len, &tu_err));
    assert_non_null(strstr(rtext, "fromColumn: fact_transactions.customer_sk\n"
                                  "\ttoColumn: dim_customer.customer_sk"));
    assert_non_null(strstr(rtext, "toColumn: dim_date.date_key"));
    st_free(rtext);
    st_free(rels);
    char *man = st_path_join(work, "training_set/manifest.json");
    assert_int_equal(access(man, R_OK), 0);

    st_free(man);
    st_free(text);
    st_free(tmdl);
    st_free(wpath);
    st_free(tpath);
    st_engine_close(eng);
    st_free(lake);
    st_free(out);
    st_free(tmpl);
    st_free(work);
    tu_rmdir(dir);
}

/* True when something accepts TCP connections on 127.0.0.1:port. */
static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Ctrl-C in the middle of the demo (SIGINT to its process group, as a
 * terminal sends it): the sample databases it started stop and their data
 * directory is removed. */
static void test_demo_interrupted(void **state)
{
    (void)state;
    skip_without_databases();
    char *dir = tu_tempdir("demo-int");
    char *work = st_path_join(dir, "w");
    char *logp = st_path_join(dir, "demo.log");
    char *tmpl = src_path("examples/demo");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setsid();
        signal(SIGINT, SIG_DFL);
        int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(tu_strata_bin(), "strata", "demo", "--dir", work, "--project", tmpl, (char *)NULL);
        _exit(127);
    }
    /* wait until the databases are up and the demo has moved on to events */
    char *log = NULL, srv[512] = "";
    int pg_port = 0;
    for (int i = 0; i < 1200; i++) {
        size_t n = 0;
        st_free(log);
        log = NULL;
        st_file_read(logp, 1 << 20, &log, &n, NULL);
        const char *ev = log ? strstr(log, "events: web") : NULL;
        const char *data = log ? strstr(log, "(data in ") : NULL;
        const char *pg = log ? strstr(log, "PostgreSQL 127.0.0.1:") : NULL;
        if (ev && data && pg) {
            sscanf(data, "(data in %511[^;]", srv);
            pg_port = atoi(pg + strlen("PostgreSQL 127.0.0.1:"));
            break;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            fail_msg("demo ended before the databases were up:\n%s", log ? log : "");
        usleep(50 * 1000);
    }
    if (!srv[0] || !pg_port)
        fail_msg("demo did not start its databases in time:\n%s", log ? log : "");
    assert_true(st_path_exists(srv));
    assert_true(port_open(pg_port));
    assert_int_equal(kill(-pid, SIGINT), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    /* the cleanup runs after the demo is gone: allow it some seconds */
    bool gone = false;
    for (int i = 0; i < 300 && !gone; i++) {
        gone = !st_path_exists(srv) && !port_open(pg_port);
        if (!gone)
            usleep(100 * 1000);
    }
    if (!gone)
        fail_msg("after Ctrl-C: %s %s, PostgreSQL port %d %s", srv,
                 st_path_exists(srv) ? "still exists" : "removed", pg_port,
                 port_open(pg_port) ? "still open" : "closed");
    st_free(log);
    st_free(tmpl);
    st_free(logp);
    st_free(work);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo),
        cmocka_unit_test(test_demo_interrupted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
