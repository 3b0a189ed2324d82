/*
 * serve_test.c - `strata serve` end to end over loopback: answers for valid,
 * invalid, duplicate, late and PII-bearing events from each source, auth and
 * CORS, metrics, `strata send`, and that every acknowledged event is in the
 * log exactly as sent.  Then durability: SIGKILL under load from several
 * client threads, restart, and every event_id that got a 2xx must be there.
 */
#include "testutil.h"
#include "strata/collect.h"

#include <curl/curl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct server {
    pid_t pid;
    int port;
    char *dir;
    char *cfg;
    char *log;
} server;

static void write_cfg(server *s, int fsync_ms)
{
    s->cfg = st_path_join(s->dir, "strata.yml");
    s->log = st_path_join(s->dir, "eventlog");
    char *y = st_sprintf(
        "name: t\n"
        "collector:\n"
        "  listen: 127.0.0.1:0\n"
        "  threads: 4\n"
        "  max_body_bytes: 65536\n"
        "  max_events: 50\n"
        "  event_log: {dir: ./eventlog, fsync_ms: %d, segment_bytes: 65536}\n"
        "  sources:\n"
        "    web: {key_env: TST_KEY_WEB, families: [web_events], cors_origins: [\"https://app.example.com\"]}\n"
        "    llm: {key_env: TST_KEY_LLM, families: [llm_calls]}\n"
        "    backend: {key_env: TST_KEY_BACKEND, families: [backend_events], event_types: [order_placed, login]}\n",
        fsync_ms);
    TU_OK(st_file_write_atomic(s->cfg, y, strlen(y), &tu_err));
    st_free(y);
}

static void start(server *s)
{
    const char *const args[] = {"--config", s->cfg, NULL};
    s->pid = tu_serve_start(args, 20000, &s->port);
}

static int stop(server *s, int sig)
{
    int status = tu_serve_stop(s->pid, sig);
    s->pid = 0;
    return status;
}

typedef struct resp {
    long status;
    st_buf body;
    st_buf headers;
} resp;


/* One request; extra headers separated by '\n'. */
static void http(server *s, const char *method, const char *path, const char *hdrs,
                 const char *body, resp *out)
{
    CURL *c = curl_easy_init();
    char *url = st_sprintf("http://127.0.0.1:%d%s", s->port, path);
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    char *copy = hdrs ? st_strdup(hdrs) : NULL;
    for (char *save = NULL, *t = copy ? strtok_r(copy, "\n", &save) : NULL; t;
         t = strtok_r(NULL, "\n", &save))
        h = curl_slist_append(h, t);
    st_buf_init(&out->body, 0);
    st_buf_init(&out->headers, 0);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tu_curl_sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, tu_curl_sink);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &out->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode cc = curl_easy_perform(c);
    out->status = 0;
    if (cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    st_free(url);
    st_free(copy);
    if (!out->body.data)
        st_buf_puts(&out->body, "");
    if (!out->headers.data)
        st_buf_puts(&out->headers, "");
}

static void resp_free(resp *r)
{
    st_buf_free(&r->body);
    st_buf_free(&r->headers);
}

static void expect(server *s, const char *method, const char *path, const char *hdrs,
                   const char *body, long status, const char *needle)
{
    resp r;
    http(s, method, path, hdrs, body, &r);
    if (r.status != status || (needle && !strstr(r.body.data, needle)))
        fail_msg("%s %s: got %ld '%s', want %ld with '%s'", method, path, r.status, r.body.data,
                 status, needle ? needle : "");
    resp_free(&r);
}

#define WEB "Authorization: Bearer web-secret"
#define LLM "X-Strata-Key: llm-secret"
#define BACKEND "Authorization: Bearer backend-secret"

static void set_keys(void)
{
    setenv("TST_KEY_WEB", "web-secret", 1);
    setenv("TST_KEY_LLM", "llm-secret", 1);
    setenv("TST_KEY_BACKEND", "backend-secret", 1);
}

/* The stored record minus the server's fields equals what was sent. */
static void check_stored(json_t *log, const char *sent, const char *source, size_t copies)
{
    json_error_t je;
    json_t *want = json_loads(sent, 0, &je);
    assert_non_null(want);
    const char *id = json_string_value(json_object_get(want, "event_id"));
    json_t *arr = json_object_get(log, id);
    if (json_array_size(arr) != copies)
        fail_msg("event %s: %zu copies in the log, want %zu", id, json_array_size(arr), copies);
    for (size_t i = 0; i < copies; i++) {
        json_t *got = json_deep_copy(json_array_get(arr, i));
        assert_string_equal(json_string_value(json_object_get(got, "source")), source);
        assert_non_null(json_string_value(json_object_get(got, "received_at")));
        assert_non_null(json_string_value(json_object_get(got, "family")));
        if (json_object_get(want, "sent_at"))
            assert_non_null(json_string_value(json_object_get(got, "event_time_corrected")));
        json_object_del(got, "received_at");
        json_object_del(got, "source");
        json_object_del(got, "family");
        json_object_del(got, "event_time_corrected");
        if (!json_equal(got, want))
            fail_msg("event %s stored differently: %s", id, json_dumps(got, JSON_COMPACT));
        json_decref(got);
    }
    json_decref(want);
}

static void test_serve(void **state)
{
    (void)state;
    set_keys();
    server s = {.dir = tu_tempdir("serve")};
    write_cfg(&s, 1);
    start(&s);

    expect(&s, "GET", "/healthz", NULL, NULL, 200, "\"ok\":true");
    expect(&s, "GET", "/readyz", NULL, NULL, 200, "\"ready\":true");
    expect(&s, "GET", "/v1/tracker.js", NULL, NULL, 200, "sendBeacon");
    expect(&s, "GET", "/nope", NULL, NULL, 404, "no such endpoint");
    expect(&s, "GET", "/v1/events", NULL, NULL, 405, "use POST");

    const char *web1 = "{\"event_id\":\"w-1\",\"event_type\":\"page_view\",\"schema_version\":1,"
                       "\"event_time\":\"2025-06-01T10:00:00.000Z\",\"sent_at\":\"2025-06-01T10:00:02Z\","
                       "\"country\":\"DE\",\"context\":{\"page\":{\"url\":\"https://app.example.com/x\"}},"
                       "\"payload\":{\"n\":1.5e3,\"ok\":true,\"s\":\"caf\\u00e9 \xe2\x82\xac\"}}";
    const char *web2 = "{\"event_id\":\"w-2\",\"event_type\":\"web_events.click\",\"schema_version\":\"1-0-0\","
                       "\"event_time\":\"2025-06-01T10:00:01+02:00\",\"payload\":{}}";
    const char *late = "{\"event_id\":\"w-late\",\"event_type\":\"page_view\",\"schema_version\":1,"
                       "\"event_time\":\"2019-12-31T23:59:59Z\"}";
    const char *llm1 = "{\"event_id\":\"l-1\",\"event_type\":\"chat\",\"schema_version\":1,"
                       "\"event_time\":\"2025-06-01T10:00:00Z\",\"subject_id\":\"user-42\","
                       "\"payload\":{\"gen_ai.operation.name\":\"chat\",\"gen_ai.provider.name\":\"openai\","
                       "\"gen_ai.request.model\":\"gpt-4o\",\"gen_ai.usage.input_tokens\":12,"
                       "\"gen_ai.input.messages\":[{\"role\":\"user\",\"parts\":[{\"type\":\"text\","
                       "\"content\":\"my email is jane@example.com\"}]}]}}";
    const char *pii = "{\"event_id\":\"b-pii\",\"event_type\":\"login\",\"schema_version\":1,"
                      "\"event_time\":\"2025-06-01T10:00:00Z\",\"subject_id\":\"jane@example.com\","
                      "\"entity_id\":\"fund-a\",\"context\":{\"ip\":\"203.0.113.9\"},"
                      "\"payload\":{\"email\":\"jane@example.com\",\"iban\":\"DE89370400440532013000\"}}";
    const char *dup = "{\"event_id\":\"b-dup\",\"event_type\":\"order_placed\",\"schema_version\":1,"
                      "\"event_time\":\"2025-06-01T10:00:00Z\",\"payload\":{\"amount\":10}}";

    char *batch = st_sprintf("[%s,\n %s, %s]", web1, web2, late);
    expect(&s, "POST", "/v1/events", WEB "\nContent-Type: application/json", batch, 200,
           "\"accepted\":3,\"rejected\":0");
    st_free(batch);
    expect(&s, "POST", "/v1/event", LLM, llm1, 200, "\"accepted\":1");
    char *nd = st_sprintf("%s\n%s\n", pii, dup);
    expect(&s, "POST", "/v1/events", BACKEND "\nContent-Type: application/x-ndjson", nd, 200,
           "\"accepted\":2");
    st_free(nd);
    expect(&s, "POST", "/v1/event", BACKEND, dup, 200, "\"accepted\":1"); /* duplicate: kept, bronze dedups */

    /* a batch with bad envelopes: the good ones are accepted, errors per index */
    const char *good = "{\"event_id\":\"l-2\",\"event_type\":\"embeddings\",\"schema_version\":1,"
                       "\"event_time\":\"2025-06-01T10:00:00Z\"}";
    char *mixed = st_sprintf("[{\"event_id\":\"l-bad\",\"event_type\":\"chat\",\"schema_version\":1,"
                             "\"event_time\":\"June 1st\"},%s,{\"event_type\":\"chat\"},"
                             "{\"event_id\":\"l-fam\",\"event_type\":\"web_events.click\","
                             "\"schema_version\":1,\"event_time\":\"2025-06-01T10:00:00Z\"}]", good);
    resp r;
    http(&s, "POST", "/v1/events", LLM, mixed, &r);
    assert_int_equal(r.status, 207);
    json_error_t je;
    json_t *j = json_loads(r.body.data, 0, &je);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "accepted")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "rejected")), 3);
    json_t *errs = json_object_get(j, "errors");
    assert_int_equal(json_array_size(errs), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(errs, 0), "index")), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errs, 0), "event_id")), "l-bad");
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(errs, 0), "error")),
                           "event_time: not an RFC 3339"));
    assert_int_equal(json_integer_value(json_object_get(json_array_get(errs, 1), "index")), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errs, 1), "error")),
                        "event_id: required");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(errs, 2), "index")), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errs, 2), "code")), "forbidden");
    json_decref(j);
    resp_free(&r);
    st_free(mixed);

    /* auth */
    expect(&s, "POST", "/v1/events", NULL, dup, 401, "missing or unknown API key");
    expect(&s, "POST", "/v1/events", "Authorization: Bearer wrong", dup, 401, "unknown API key");
    const char *other_family = "{\"event_id\":\"l-x\",\"event_type\":\"backend_events.order_placed\","
                               "\"schema_version\":1,\"event_time\":\"2025-06-01T10:00:00Z\"}";
    expect(&s, "POST", "/v1/event", LLM, other_family, 403,
           "family 'backend_events' not allowed for source 'llm'");
    const char *bad_type = "{\"event_id\":\"b-t\",\"event_type\":\"refund\",\"schema_version\":1,"
                           "\"event_time\":\"2025-06-01T10:00:00Z\"}";
    expect(&s, "POST", "/v1/event", BACKEND, bad_type, 403, "'refund' not allowed for source 'backend'");
    expect(&s, "POST", "/v1/events?key=backend-secret", NULL, dup, 401, "API key"); /* URL keys: browsers only */

    /* malformed bodies */
    expect(&s, "POST", "/v1/events", WEB, "not json", 400, "JSON array");
    expect(&s, "POST", "/v1/events", WEB, "[{\"event_id\":\"x\"},{\"a\":\"\xff\"}]", 400, "\"index\":1");
    expect(&s, "POST", "/v1/events", WEB, "[{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}]",
           400, "nested too deep");
    expect(&s, "POST", "/v1/events", WEB, "", 400, "empty body");
    expect(&s, "POST", "/v1/event", WEB, "[{}]", 400, "expected one event object");
    st_buf big;
    st_buf_init(&big, 0);
    st_buf_puts(&big, "[");
    for (int i = 0; i < 51; i++)
        st_buf_printf(&big, "%s{\"event_id\":\"m%d\"}", i ? "," : "", i);
    st_buf_puts(&big, "]");
    expect(&s, "POST", "/v1/events", WEB, big.data, 413, "more than 50 events");
    st_buf_reset(&big);
    for (int i = 0; i < 70000; i++)
        st_buf_putc(&big, ' ');
    expect(&s, "POST", "/v1/events", WEB, big.data, 413, "larger than 65536");
    st_buf_free(&big);

    /* CORS */
    http(&s, "OPTIONS", "/v1/events", "Origin: https://app.example.com\nAccess-Control-Request-Method: POST",
         NULL, &r);
    assert_int_equal(r.status, 204);
    assert_non_null(strstr(r.headers.data, "Access-Control-Allow-Origin: https://app.example.com"));
    resp_free(&r);
    http(&s, "OPTIONS", "/v1/events", "Origin: https://evil.example.net", NULL, &r);
    assert_int_equal(r.status, 403);
    assert_null(strstr(r.headers.data, "Access-Control-Allow-Origin"));
    resp_free(&r);
    const char *web3 = "{\"event_id\":\"w-3\",\"event_type\":\"page_view\",\"schema_version\":1,"
                       "\"event_time\":\"2025-06-01T10:00:00Z\"}";
    http(&s, "POST", "/v1/events", WEB "\nOrigin: https://app.example.com", web3, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers.data, "Access-Control-Allow-Origin: https://app.example.com"));
    resp_free(&r);
    expect(&s, "POST", "/v1/events", WEB "\nOrigin: https://evil.example.net", web3, 403, "origin");
    expect(&s, "POST", "/v1/events", BACKEND "\nOrigin: https://app.example.com", dup, 403, "origin");
    /* sendBeacon: text/plain body, key in the URL */
    const char *web4 = "{\"event_id\":\"w-4\",\"event_type\":\"page_view\",\"schema_version\":1,"
                       "\"event_time\":\"2025-06-01T10:00:00Z\"}";
    char *bq = st_sprintf("[%s]", web4);
    expect(&s, "POST", "/v1/events?key=web-secret",
           "Origin: https://app.example.com\nContent-Type: text/plain", bq, 200, "\"accepted\":1");
    st_free(bq);

    /* strata send */
    char *ndf = st_path_join(s.dir, "events.ndjson");
    char *lines = st_sprintf("{\"event_id\":\"s-1\",\"event_type\":\"order_placed\",\"schema_version\":1,\"event_time\":\"2025-06-01T10:00:00Z\"}\n"
                             "\n"
                             "{\"event_id\":\"s-2\",\"event_type\":\"login\",\"schema_version\":1,\"event_time\":\"2025-06-01T10:00:00Z\"}\n");
    TU_OK(st_file_write_atomic(ndf, lines, strlen(lines), &tu_err));
    char *out = NULL;
    int rc = tu_run(&out, "TST_SEND_KEY=backend-secret '%s' send --url http://127.0.0.1:%d "
                          "--key-env TST_SEND_KEY --file '%s' --batch 1 2>&1",
                    tu_strata_bin(), s.port, ndf);
    if (rc != 0)
        fail_msg("strata send failed (%d): %s", rc, out);
    st_free(out);
    rc = tu_run(&out, "'%s' send --url http://127.0.0.1:%d/ --key backend-secret "
                      "--event '{\"event_id\":\"s-3\",\"event_type\":\"login\",\"schema_version\":1,\"event_time\":\"bad\"}' 2>&1",
                tu_strata_bin(), s.port);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "event_time"));
    st_free(out);
    rc = tu_run(&out, "'%s' send --url http://127.0.0.1:%d --key wrong --event '{}' 2>&1",
                tu_strata_bin(), s.port);
    assert_int_equal(rc, 1);
    st_free(out);
    st_free(lines);
    st_free(ndf);

    /* metrics */
    http(&s, "GET", "/metrics", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    const char *want_metrics[] = {
        "strata_collector_events_accepted_total{source=\"web\"} 5",
        "strata_collector_events_accepted_total{source=\"llm\"} 2",
        "strata_collector_events_accepted_total{source=\"backend\"} 5",
        "strata_collector_events_rejected_total{reason=\"invalid\"} 3",
        "strata_collector_events_rejected_total{reason=\"forbidden\"} 3",
        "strata_collector_requests_rejected_total{reason=\"unauthorized\"} 4",
        "strata_collector_fsync_seconds_count ",
        "strata_collector_queue_events 0",
        "strata_loader_lag_events ",  /* the loader runs inside serve: any value */
    };
    for (size_t i = 0; i < sizeof want_metrics / sizeof *want_metrics; i++)
        if (!strstr(r.body.data, want_metrics[i]))
            fail_msg("metrics lack '%s':\n%s", want_metrics[i], r.body.data);
    resp_free(&r);

    int status = stop(&s, SIGTERM);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    json_t *log = tu_read_log(s.log, false);
    check_stored(log, web1, "web", 1);
    check_stored(log, web2, "web", 1);
    check_stored(log, late, "web", 1);
    check_stored(log, llm1, "llm", 1);
    check_stored(log, pii, "backend", 1);
    check_stored(log, dup, "backend", 2);
    check_stored(log, good, "llm", 1);
    check_stored(log, web3, "web", 1);
    check_stored(log, web4, "web", 1);
    assert_non_null(json_object_get(log, "s-1"));
    assert_non_null(json_object_get(log, "s-2"));
    assert_null(json_object_get(log, "l-bad"));
    assert_null(json_object_get(log, "l-fam"));
    assert_null(json_object_get(log, "b-t"));
    assert_null(json_object_get(log, "l-x"));
    assert_null(json_object_get(log, "s-3"));
    assert_int_equal(json_object_size(log), 11);
    json_t *arr = json_object_get(log, "w-2");
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "family")), "web_events");
    arr = json_object_get(log, "w-1");
    /* sent 2 s after event_time by the client's clock */
    int64_t ev, corr, recv;
    const char *cs = json_string_value(json_object_get(json_array_get(arr, 0), "event_time_corrected"));
    const char *rs = json_string_value(json_object_get(json_array_get(arr, 0), "received_at"));
    assert_true(st_rfc3339_parse(cs, strlen(cs), &corr));
    assert_true(st_rfc3339_parse(rs, strlen(rs), &recv));
    assert_true(st_rfc3339_parse("2025-06-01T10:00:00Z", 20, &ev));
    assert_true(recv - corr == 2000000);
    json_decref(log);
    st_free(s.cfg);
    st_free(s.log);
    tu_rmdir(s.dir);
}

/* ---- durability under SIGKILL ---- */

typedef struct loader_arg {
    server *s;
    int thread;
    volatile int *stop;
    char **acked;     /* event ids that got a 2xx */
    size_t n_acked, cap;
    size_t n_fail;
} loader_arg;

static void *load_thread(void *p)
{
    loader_arg *a = p;
    CURL *c = curl_easy_init();
    char *url = st_sprintf("http://127.0.0.1:%d/v1/events", a->s->port);
    struct curl_slist *h = curl_slist_append(NULL, BACKEND);
    h = curl_slist_append(h, "Expect:");
    st_buf body, sink;
    st_buf_init(&body, 0);
    st_buf_init(&sink, 0);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tu_curl_sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    for (int b = 0; !*a->stop && b < 100000; b++) {
        st_buf_reset(&body);
        for (int i = 0; i < 20; i++)
            st_buf_printf(&body, "{\"event_id\":\"t%d-b%d-%d\",\"event_type\":\"order_placed\","
                                 "\"schema_version\":1,\"event_time\":\"2025-06-01T10:00:00Z\","
                                 "\"payload\":{\"pad\":\"%0200d\"}}\n", a->thread, b, i, i);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body.len);
        st_buf_reset(&sink);
        long status = 0;
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (status == 200) {
            for (int i = 0; i < 20; i++) {
                if (a->n_acked == a->cap) {
                    a->cap = a->cap ? a->cap * 2 : 1024;
                    a->acked = st_realloc(a->acked, a->cap * sizeof *a->acked);
                }
                a->acked[a->n_acked++] = st_sprintf("t%d-b%d-%d", a->thread, b, i);
            }
        } else {
            a->n_fail++;
            if (a->n_fail > 3)
                break; /* the server is gone */
        }
    }
    st_buf_free(&body);
    st_buf_free(&sink);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    st_free(url);
    return NULL;
}

static void test_durability_sigkill(void **state)
{
    (void)state;
    set_keys();
    server s = {.dir = tu_tempdir("serve-kill")};
    write_cfg(&s, 2);
    start(&s);
    enum { N = 3 };
    volatile int stop_flag = 0;
    loader_arg args[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        args[i] = (loader_arg){.s = &s, .thread = i, .stop = &stop_flag};
        pthread_create(&th[i], NULL, load_thread, &args[i]);
    }
    usleep(1500 * 1000);
    int status = stop(&s, SIGKILL);
    assert_true(WIFSIGNALED(status));
    stop_flag = 1;
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);

    /* restart: recovery runs; then read everything through the reader API */
    start(&s);
    resp r;
    http(&s, "GET", "/readyz", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    stop(&s, SIGTERM);
    json_t *log = tu_read_log(s.log, false);
    size_t total = 0;
    for (int i = 0; i < N; i++) {
        total += args[i].n_acked;
        for (size_t k = 0; k < args[i].n_acked; k++) {
            if (!json_object_get(log, args[i].acked[k]))
                fail_msg("acknowledged event %s is not in the log after SIGKILL", args[i].acked[k]);
            st_free(args[i].acked[k]);
        }
        st_free(args[i].acked);
    }
    printf("durability: %zu acknowledged events, all in the log (%zu records)\n", total,
           json_object_size(log));
    assert_true(total >= 100); /* the load really ran */
    assert_true(json_object_size(log) >= total);
    json_decref(log);
    st_free(s.cfg);
    st_free(s.log);
    tu_rmdir(s.dir);
}


int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_serve, tu_serve_teardown),
        cmocka_unit_test_teardown(test_durability_sigkill, tu_serve_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
