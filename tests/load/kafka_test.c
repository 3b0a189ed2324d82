/*
 * kafka_test.c - Kafka mode end to end against librdkafka's mock cluster
 * (3 brokers on 127.0.0.1, in this process): `strata serve` with
 * `event_log: kafka` produces every accepted event to strata.<source>;
 * a delivery failure (every broker down) answers 503 and the event never
 * reaches bronze; the loader consumes into raw and bronze in micro-batches,
 * is closed after one batch (consumer restart), fails an offset commit after
 * the bronze commit and retries in place, then fails one again and is closed
 * there (a crash between the two commits) and resumes: every event_id is in
 * bronze exactly once, raw has no duplicate and no gap.  Last, the loader
 * thread of `strata serve` consumes a new event by itself.
 * Durability: `strata serve` (collector and loader thread, Kafka mode) is
 * SIGKILLed under load and restarted; every acknowledged event_id ends up
 * in bronze exactly once.
 */
#include "testutil.h"
#include "strata/collect.h"
#include "strata/delta.h"
#include "strata/load.h"

#include <curl/curl.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_WEB 300
/* Kafka protocol ApiKey of OffsetCommit (rdkafka_protocol.h is not installed) */
#define KAFKA_API_OFFSET_COMMIT 8
#define N_BACKEND 100

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;

static char *batch_of(const char *prefix, int from, int to)
{
    st_buf b;
    st_buf_init(&b, 0);
    st_buf_putc(&b, '[');
    for (int i = from; i < to; i++) {
        if (i > from)
            st_buf_putc(&b, ',');
        if (!strcmp(prefix, "w"))
            st_buf_printf(&b,
                          "{\"event_id\":\"w-%04d\",\"event_type\":\"page_view\",\"schema_version\":1,"
                          "\"event_time\":\"2025-06-01T10:00:00Z\",\"context\":{\"page\":{\"url\":"
                          "\"https://app.example.com/%d\"}}}",
                          i, i);
        else
            st_buf_printf(&b,
                          "{\"event_id\":\"%s-%04d\",\"event_type\":\"login\",\"schema_version\":1,"
                          "\"event_time\":\"2025-06-01T10:00:00Z\",\"payload\":{\"n\":%d}}",
                          prefix, i, i);
    }
    st_buf_putc(&b, ']');
    return b.data;
}

/* The ids "<prefix>-0000".."<prefix>-(n-1)", comma separated, sorted. */
static char *ids_of(const char *prefix, int n)
{
    st_buf b;
    st_buf_init(&b, 0);
    for (int i = 0; i < n; i++)
        st_buf_printf(&b, "%s%s-%04d", i ? "," : "", prefix, i);
    return b.data;
}

/* strata.yml for Kafka mode on the mock cluster, sources web and backend
 * (keys in TST_KEY_WEB / TST_KEY_BACKEND, set here). */
static void write_config(const char *path, const char *prefix, const char *group,
                         const char *producer_props, const char *loader)
{
    char *y = st_sprintf(
        "name: t\n"
        "collector:\n"
        "  listen: 127.0.0.1:0\n"
        "  threads: 4\n"
        "  event_log: kafka\n"
        "  kafka:\n"
        "    brokers: \"%s\"\n"
        "    topic_prefix: %s\n"
        "    group_id: %s\n"
        "    producer_properties: %s\n"
        "    consumer_properties: {fetch.wait.max.ms: 50, session.timeout.ms: 3000, heartbeat.interval.ms: 300}\n"
        "  sources:\n"
        "    web: {key_env: TST_KEY_WEB, families: [web_events]}\n"
        "    backend: {key_env: TST_KEY_BACKEND, families: [backend_events]}\n"
        "loader: %s\n",
        rd_kafka_mock_cluster_bootstraps(mock), prefix, group, producer_props, loader);
    TU_OK(st_file_write_atomic(path, y, strlen(y), &tu_err));
    st_free(y);
    setenv("TST_KEY_WEB", "web-secret", 1);
    setenv("TST_KEY_BACKEND", "backend-secret", 1);
}

typedef struct loader_env {
    st_cfg_doc *doc;
    st_loader_cfg *cfg;
    st_loader *l;
} loader_env;

static void loader_open(loader_env *le, const char *dir, const char *yml)
{
    memset(le, 0, sizeof *le);
    TU_OK(st_cfg_load_file(yml, &le->doc, &tu_err));
    TU_OK(st_loader_cfg_load(st_cfg_root(le->doc), dir, &le->cfg, &tu_err));
    assert_non_null(le->cfg->kafka);
    assert_int_equal(le->cfg->n_kafka_topics, 2);
    TU_OK(st_loader_open(le->cfg, &le->l, &tu_err));
}

static void loader_close(loader_env *le)
{
    st_loader_close(le->l);
    st_loader_cfg_free(le->cfg);
    st_cfg_doc_free(le->doc);
}

static void test_kafka_mode(void **state)
{
    (void)state;
    int64_t t_start = st_now_ms();
    char *dir = tu_tempdir("kafka");
    char *yml = st_path_join(dir, "strata.yml");
    char *lake = st_path_join(dir, "lake");
    const char *boot = rd_kafka_mock_cluster_bootstraps(mock);
    assert_non_null(boot);
    assert_non_null(strstr(boot, "127.0.0.1:"));
    write_config(yml, "strata.", "loader-test",
                 "{message.timeout.ms: 2000, request.timeout.ms: 1500, linger.ms: 2}",
                 "{enabled: false, batch_events: 150, interval_ms: 200}");

    /* --- the collector produces; every 2xx means acks=all delivery --- */
    const char *const args[] = {"--config", yml, NULL};
    int port = 0;
    int pid = tu_serve_start(args, 30000, &port);
    for (int i = 0; i < N_WEB; i += 100) {
        char *b = batch_of("w", i, i + 100);
        st_buf out;
        st_buf_init(&out, 0);
        long code = tu_post_events(port, "web-secret", b, &out);
        if (code != 200)
            fail_msg("web batch %d: %ld %.*s", i, code, (int)out.len, out.data ? out.data : "");
        assert_non_null(strstr(out.data, "\"accepted\":100"));
        st_buf_free(&out);
        st_free(b);
    }
    for (int i = 0; i < N_BACKEND; i += 50) {
        char *b = batch_of("b", i, i + 50);
        assert_int_equal(tu_post_events(port, "backend-secret", b, NULL), 200);
        st_free(b);
    }
    printf("produced %d events through strata serve in %lld ms\n", N_WEB + N_BACKEND,
           (long long)(st_now_ms() - t_start));

    /* --- delivery failure: every broker down -> 503, never 2xx --- */
    for (int b = 1; b <= 3; b++)
        assert_int_equal(rd_kafka_mock_broker_set_down(mock, b), RD_KAFKA_RESP_ERR_NO_ERROR);
    char *bad = batch_of("lost", 0, 1);
    st_buf out;
    st_buf_init(&out, 0);
    int64_t t0 = st_now_ms();
    long code = tu_post_events(port, "backend-secret", bad, &out);
    printf("with the brokers down: %ld after %lld ms: %.*s", code, (long long)(st_now_ms() - t0),
           (int)out.len, out.data ? out.data : "");
    assert_int_equal(code, 503);
    assert_non_null(strstr(out.data, "\"code\":\"unavailable\""));
    st_buf_free(&out);
    st_free(bad);
    for (int b = 1; b <= 3; b++)
        assert_int_equal(rd_kafka_mock_broker_set_up(mock, b), RD_KAFKA_RESP_ERR_NO_ERROR);
    /* the producer recovers once the brokers are back */
    char *again = batch_of("back", 0, 1);
    code = 0;
    for (int tries = 0; tries < 10 && code != 200; tries++) {
        code = tu_post_events(port, "backend-secret", again, NULL);
        if (code != 200)
            usleep(500000);
    }
    assert_int_equal(code, 200);
    st_free(again);
    int status = tu_serve_stop(pid, SIGTERM);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* --- loader: one micro-batch, then a consumer restart --- */
    loader_env le;
    st_load_stats st = {0};
    size_t n = 0;
    loader_open(&le, dir, yml);
    TU_OK(st_loader_step(le.l, &st, &n, &tu_err));
    assert_int_equal(n, 150);
    loader_close(&le);
    assert_int_equal(tu_lake_i64(lake, "SELECT count(*) FROM raw_events"), 150);
    assert_int_equal(tu_lake_i64(lake, "SELECT count(DISTINCT seq) FROM raw_events WHERE seq < 150"), 150);

    /* --- a batch commits bronze, then its offset commit fails; the same
     * loader retries: it re-reads that batch exactly, the tables skip it --- */
    rd_kafka_mock_push_request_errors(mock, KAFKA_API_OFFSET_COMMIT, 1,
                                      RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE);
    loader_open(&le, dir, yml);
    memset(&st, 0, sizeof st);
    st_rc rc = st_loader_step(le.l, &st, &n, &tu_err);
    printf("step with a failing offset commit: %s n=%zu (%s)\n", st_rc_name(rc), n, tu_err.msg);
    assert_int_not_equal(rc, ST_OK);
    assert_non_null(strstr(tu_err.msg, "committing the offsets"));
    assert_int_equal(tu_lake_i64(lake, "SELECT count(*) FROM raw_events"), 300);
    memset(&st, 0, sizeof st);
    TU_OK(st_loader_step(le.l, &st, &n, &tu_err));
    assert_int_equal(n, 150);
    assert_true(st.skipped_replay >= 2);   /* raw and every bronze table of the batch had it */
    assert_int_equal(st.loaded, 0);
    assert_int_equal(st.position, 300);
    loader_close(&le);
    assert_int_equal(tu_lake_i64(lake, "SELECT count(*) FROM raw_events"), 300);

    /* --- again, but now the process dies between bronze and the offsets --- */
    rd_kafka_mock_push_request_errors(mock, KAFKA_API_OFFSET_COMMIT, 1,
                                      RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE);
    loader_open(&le, dir, yml);
    memset(&st, 0, sizeof st);
    rc = st_loader_step(le.l, &st, &n, &tu_err);
    assert_int_not_equal(rc, ST_OK);
    loader_close(&le);   /* as if the process died here */
    assert_int_equal(tu_lake_i64(lake, "SELECT count(*) FROM raw_events"), N_WEB + N_BACKEND + 1);

    /* --- resume: the interrupted batch is re-read and skipped, then the rest --- */
    loader_open(&le, dir, yml);
    memset(&st, 0, sizeof st);
    TU_OK(st_loader_run_once(le.l, &st, &tu_err));
    printf("resume: batches=%lld read=%lld loaded=%lld skipped_replay=%lld position=%llu\n",
           (long long)st.batches, (long long)st.read, (long long)st.loaded,
           (long long)st.skipped_replay, (unsigned long long)st.position);
    assert_true(st.skipped_replay >= 1);
    assert_int_equal(st.position, N_WEB + N_BACKEND + 1);
    /* a second pass finds nothing new */
    memset(&st, 0, sizeof st);
    TU_OK(st_loader_run_once(le.l, &st, &tu_err));
    assert_int_equal(st.read, 0);
    loader_close(&le);

    /* --- exactly once, row by row --- */
    int total = N_WEB + N_BACKEND + 1;
    assert_int_equal(tu_lake_i64(lake, "SELECT count(*) FROM raw_events"), total);
    assert_int_equal(tu_lake_i64(lake, "SELECT count(DISTINCT seq) FROM raw_events"), total);
    assert_int_equal(tu_lake_i64(lake, "SELECT min(seq) FROM raw_events"), 0);
    assert_int_equal(tu_lake_i64(lake, "SELECT max(seq) FROM raw_events"), total - 1);
    assert_int_equal(tu_lake_i64(lake, "SELECT count(DISTINCT event_id) FROM raw_events"), total);
    char *want = ids_of("w", N_WEB);
    char *got = tu_lake_str(lake, "SELECT string_agg(event_id, ',' ORDER BY event_id) FROM bronze_web_events");
    assert_string_equal(got, want);
    st_free(got);
    st_free(want);
    assert_int_equal(tu_lake_i64(lake, "SELECT count(*) FROM bronze_web_events"), N_WEB);
    assert_int_equal(tu_lake_i64(lake, "SELECT count(*) FROM bronze_web_events WHERE source <> 'web'"), 0);
    st_buf wb;
    st_buf_init(&wb, 0);
    char *b_ids = ids_of("b", N_BACKEND);
    st_buf_printf(&wb, "%s,back-0000", b_ids);   /* '-' sorts before 'a' */
    st_free(b_ids);
    got = tu_lake_str(lake, "SELECT string_agg(event_id, ',' ORDER BY event_id) FROM bronze_backend_events");
    assert_string_equal(got, wb.data);
    st_free(got);
    st_buf_free(&wb);
    /* the refused event was never acknowledged and is nowhere */
    assert_int_equal(tu_lake_i64(lake, "SELECT count(*) FROM raw_events WHERE event_id LIKE 'lost-%'"), 0);
    /* payloads made it through unchanged */
    assert_int_equal(tu_lake_i64(lake, "SELECT count(*) FROM bronze_backend_events "
                               "WHERE properties::JSON->>'n' = split_part(event_id, '-', 2)::INT::VARCHAR"),
                     N_BACKEND + 1);   /* b-0000..b-0099 and back-0000 (n = 0) */

    /* --- strata serve with its loader thread consumes on its own --- */
    char *y2 = NULL;
    size_t y2len = 0;
    TU_OK(st_file_read(yml, 1 << 20, &y2, &y2len, &tu_err));
    char *at = strstr(y2, "enabled: false");
    assert_non_null(at);
    memcpy(at, "enabled: true ", 14);
    TU_OK(st_file_write_atomic(yml, y2, strlen(y2), &tu_err));
    st_free(y2);
    pid = tu_serve_start(args, 30000, &port);
    char *one = batch_of("s", 0, 1);
    assert_int_equal(tu_post_events(port, "backend-secret", one, NULL), 200);
    st_free(one);
    int64_t got_n = -1, deadline = st_now_ms() + 30000;
    while (st_now_ms() < deadline &&
           (got_n = tu_lake_i64(lake, "SELECT count(*) FROM bronze_backend_events WHERE event_id = 's-0000'")) != 1)
        usleep(300000);
    assert_int_equal(got_n, 1);
    status = tu_serve_stop(pid, SIGTERM);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(tu_lake_i64(lake, "SELECT count(*) FROM raw_events"), total + 1);
    assert_int_equal(tu_lake_i64(lake, "SELECT count(DISTINCT seq) FROM raw_events"), total + 1);
    printf("kafka test: %lld ms\n", (long long)(st_now_ms() - t_start));
    st_free(yml);
    st_free(lake);
    tu_rmdir(dir);
}

/* count(DISTINCT event_id) of bronze.backend_events, -1 before it exists. */
static int64_t backend_ids(const char *lake)
{
    st_engine *eng = tu_mount_events(lake);
    int64_t v = -1;
    st_err e;
    if (st_engine_query_i64(eng, "SELECT count(DISTINCT event_id) FROM bronze_backend_events", &v, &e))
        v = -1;
    st_engine_close(eng);
    return v;
}

static void test_kafka_sigkill(void **state)
{
    (void)state;
    char *dir = tu_tempdir("kafka-kill");
    char *yml = st_path_join(dir, "strata.yml");
    char *lake = st_path_join(dir, "lake");
    write_config(yml, "dur.", "dur-loader", "{message.timeout.ms: 5000, linger.ms: 2}",
                 "{batch_events: 250, interval_ms: 200}");
    const char *const args[] = {"--config", yml, NULL};
    int port = 0;
    int pid = tu_serve_start(args, 30000, &port);
    tu_client *c = tu_client_new("backend-secret");
    tu_client_start(c, port);
    /* kill once the loader thread is committing batches (the consumer's
     * group join takes a few seconds) */
    int64_t loaded = -1, deadline = st_now_ms() + 30000;
    while (st_now_ms() < deadline && (loaded = backend_ids(lake)) <= 0)
        usleep(100000);
    assert_true(loaded > 0);
    usleep(500000);
    tu_serve_stop(pid, SIGKILL);   /* producing, consuming, maybe between commits */
    tu_client_stop(c);
    size_t before = tu_client_acked(c);
    int64_t loaded_before = backend_ids(lake);
    assert_true(before > 0);
    pid = tu_serve_start(args, 30000, &port);
    tu_client_start(c, port);
    usleep(1500000);
    tu_client_stop(c);
    assert_true(tu_client_acked(c) > before);
    int64_t distinct = tu_client_distinct(c), got = -1;
    /* the restarted consumer rejoins the group once the killed member's
     * session (3 s) has expired */
    deadline = st_now_ms() + 40000;
    while (st_now_ms() < deadline && (got = backend_ids(lake)) < distinct)
        usleep(300000);
    assert_int_equal(got, distinct);
    int status = tu_serve_stop(pid, SIGTERM);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tu_client_check(c, lake, "bronze_backend_events");
    printf("kafka durability: %zu acknowledged (%lld distinct; %lld in bronze at the kill), "
           "all in bronze once\n", tu_client_acked(c), (long long)distinct,
           (long long)loaded_before);
    tu_client_free(c);
    st_free(yml);
    st_free(lake);
    tu_rmdir(dir);
}

static void test_kafka_config(void **state)
{
    (void)state;
    struct {
        const char *yaml, *want;
    } bad[] = {
        {"collector:\n  event_log: kafka\n", "needs a kafka: section"},
        {"collector:\n  event_log: {kind: kafka}\n  kafka: {topic_prefix: x.}\n", "brokers is required"},
        {"collector:\n  event_log: kafka\n  kafka: {brokers: h:1, properties: {acks: '1'}}\n",
         "acks is set by strata"},
        {"collector:\n  event_log: kafka\n  kafka: {brokers: h:1, consumer_properties: "
         "{enable.auto.commit: 'true'}}\n",
         "enable.auto.commit is set by strata"},
        {"collector:\n  kafka: {brokers: h:1}\n", "only applies to event_log: kafka"},
        {"collector:\n  event_log: kafka\n  kafka: {brokers: h:1, topic_prefix: 'a b'}\n",
         "topic names use"},
        {"collector:\n  event_log: nats\n", "unknown event log 'nats'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        st_cfg_doc *d = NULL;
        TU_OK(st_cfg_load_string("strata.yml", bad[i].yaml, strlen(bad[i].yaml), &d, &tu_err));
        st_collect_cfg *c = NULL;
        st_rc rc = st_collect_cfg_load(st_cfg_root(d), ".", &c, &tu_err);
        st_cfg_doc_free(d);
        if (rc == ST_OK) {
            st_collect_cfg_free(c);
            fail_msg("config %zu accepted", i);
        }
        if (!strstr(tu_err.msg, bad[i].want))
            fail_msg("config %zu: '%s' does not contain '%s'", i, tu_err.msg, bad[i].want);
    }
    const char *ok = "collector:\n  event_log: {kind: kafka}\n  kafka:\n    brokers: 127.0.0.1:1\n"
                     "    properties: {client.id: strata-t, socket.timeout.ms: 1000}\n";
    st_cfg_doc *d = NULL;
    TU_OK(st_cfg_load_string("strata.yml", ok, strlen(ok), &d, &tu_err));
    st_collect_cfg *c = NULL;
    TU_OK(st_collect_cfg_load(st_cfg_root(d), ".", &c, &tu_err));
    assert_string_equal(c->log_kind, "kafka");
    assert_non_null(c->kafka);
    assert_string_equal(c->kafka->brokers, "127.0.0.1:1");
    assert_string_equal(c->kafka->topic_prefix, "strata.");
    assert_string_equal(c->kafka->group_id, "strata-loader");
    assert_int_equal(c->kafka->n_props, 2);
    assert_string_equal(c->kafka->props[2], "socket.timeout.ms");
    st_collect_cfg_free(c);
    st_cfg_doc_free(d);
}

static int setup(void **state)
{
    (void)state;
    char es[256];
    if (getenv("KAFKA_TEST_DEBUG"))
        st_log_set_level(ST_LOG_DEBUG);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", es, sizeof es);
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, es, sizeof es);
    if (!mock_rk)
        return -1;
    mock = rd_kafka_mock_cluster_new(mock_rk, 3);
    if (!mock)
        return -1;
    /* several partitions per topic, so batches span partitions */
    if (rd_kafka_mock_topic_create(mock, "strata.web", 3, 3) ||
        rd_kafka_mock_topic_create(mock, "strata.backend", 2, 3) ||
        rd_kafka_mock_topic_create(mock, "dur.web", 1, 3) ||
        rd_kafka_mock_topic_create(mock, "dur.backend", 3, 3))
        return -1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_serve_teardown(state);
    if (mock)
        rd_kafka_mock_cluster_destroy(mock);
    if (mock_rk)
        rd_kafka_destroy(mock_rk);
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kafka_config),
        cmocka_unit_test(test_kafka_mode),
        cmocka_unit_test(test_kafka_sigkill),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
