/*
 * async_test.c - the collector's suspended-connection path over loopback:
 * many keep-alive clients on threads sending single events (and batches with
 * bad envelopes) at once, every 2xx event in the log exactly once after the
 * server stops; a request larger than the queue bound answers 503 with
 * Retry-After and leaves nothing in the log; a failing event-log write
 * (RLIMIT_FSIZE in the server) answers 503, /readyz turns 503, and every
 * event acknowledged before it is still in the log; one keep-alive
 * connection changing API keys gets each checked (the per-connection key
 * cache) and large headers fit.
 */
#include "testutil.h"
#include "strata/collect.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>


typedef struct server {
    pid_t pid;
    int port;
    char *dir;
    char *cfg;
    char *log;
} server;

/* extra: more lines of the event_log mapping, e.g. ", max_pending_bytes: 65536" */
static void setup_server(server *s, const char *tag, const char *extra, size_t max_body)
{
    s->dir = tu_tempdir(tag);
    s->cfg = st_path_join(s->dir, "strata.yml");
    s->log = st_path_join(s->dir, "eventlog");
    char *y = st_sprintf("name: t\n"
                         "collector:\n"
                         "  listen: 127.0.0.1:0\n"
                         "  threads: 2\n"
                         "  max_body_bytes: %zu\n"
                         "  event_log: {dir: ./eventlog%s}\n"
                         "  sources:\n"
                         "    backend: {key_env: TST_ASYNC_KEY, families: [backend_events]}\n"
                         "loader:\n"
                         "  enabled: false\n",
                         max_body, extra);
    TU_OK(st_file_write_atomic(s->cfg, y, strlen(y), &tu_err));
    st_free(y);
    setenv("TST_ASYNC_KEY", "async-secret", 1);
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

static void server_free(server *s)
{
    st_free(s->cfg);
    st_free(s->log);
    tu_rmdir(s->dir);
}


/* A keep-alive client: one CURL handle reused for every request. */
typedef struct client {
    CURL *c;
    struct curl_slist *h;
    st_buf body, headers;
    long status;
} client;

static void client_init(client *k)
{
    k->c = curl_easy_init();
    k->h = curl_slist_append(NULL, "Authorization: Bearer async-secret");
    k->h = curl_slist_append(k->h, "Expect:");
    st_buf_init(&k->body, 0);
    st_buf_init(&k->headers, 0);
    curl_easy_setopt(k->c, CURLOPT_HTTPHEADER, k->h);
    curl_easy_setopt(k->c, CURLOPT_WRITEFUNCTION, tu_curl_sink);
    curl_easy_setopt(k->c, CURLOPT_WRITEDATA, &k->body);
    curl_easy_setopt(k->c, CURLOPT_HEADERFUNCTION, tu_curl_sink);
    curl_easy_setopt(k->c, CURLOPT_HEADERDATA, &k->headers);
    curl_easy_setopt(k->c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(k->c, CURLOPT_NOSIGNAL, 1L);
}

static void client_free(client *k)
{
    curl_slist_free_all(k->h);
    curl_easy_cleanup(k->c);
    st_buf_free(&k->body);
    st_buf_free(&k->headers);
}

/* method NULL = POST body; returns the status (0 when the transfer failed). */
static long client_do(client *k, int port, const char *path, const char *body)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    st_buf_reset(&k->body);
    st_buf_reset(&k->headers);
    st_buf_puts(&k->body, "");
    st_buf_puts(&k->headers, "");
    curl_easy_setopt(k->c, CURLOPT_URL, url);
    if (body) {
        curl_easy_setopt(k->c, CURLOPT_POST, 1L);
        curl_easy_setopt(k->c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(k->c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else {
        curl_easy_setopt(k->c, CURLOPT_HTTPGET, 1L);
    }
    k->status = 0;
    if (curl_easy_perform(k->c) == CURLE_OK)
        curl_easy_getinfo(k->c, CURLINFO_RESPONSE_CODE, &k->status);
    return k->status;
}

/* Every record in the log: event_id -> number of copies (sequence numbers
 * dense). */
static json_t *log_counts(const char *dir)
{
    json_t *log = tu_read_log(dir, true), *all = json_object();
    const char *id;
    json_t *recs;
    json_object_foreach(log, id, recs)
        json_object_set_new(all, id, json_integer((json_int_t)json_array_size(recs)));
    json_decref(log);
    return all;
}

static const char *event_fmt = "{\"event_id\":\"%s\",\"event_type\":\"order_placed\",\"schema_version\":1,"
                               "\"event_time\":\"2025-06-01T10:00:00Z\",\"payload\":{\"pad\":\"%0300d\"}}";

/* ---- many concurrent keep-alive clients ---- */

typedef struct worker {
    int port;
    int thread;
    int n;
    bool batches;        /* send 5-event batches with one bad envelope each */
    char **acked;        /* event ids that got a 2xx */
    size_t n_acked;
    char **refused;      /* ids the server said it rejected (bad envelopes) */
    size_t n_refused;
    size_t n_other;      /* unexpected answers */
    char first_bad[256];
} worker;

static void push(char ***v, size_t *n, char *s)
{
    *v = st_realloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = s;
}

static void *worker_main(void *p)
{
    worker *w = p;
    client k;
    client_init(&k);
    st_buf body;
    st_buf_init(&body, 0);
    for (int i = 0; i < w->n; i++) {
        st_buf_reset(&body);
        if (!w->batches) {
            char id[64];
            snprintf(id, sizeof id, "a%d-%d", w->thread, i);
            st_buf_printf(&body, event_fmt, id, i);
            long st = client_do(&k, w->port, "/v1/event", body.data);
            if (st == 200 && strstr(k.body.data, "\"accepted\":1,\"rejected\":0"))
                push(&w->acked, &w->n_acked, st_strdup(id));
            else if (!w->n_other++)
                snprintf(w->first_bad, sizeof w->first_bad, "%ld %s", st, k.body.data);
            continue;
        }
        /* events 0..3 valid, event 4 lacks event_time: 207 with its index */
        for (int e = 0; e < 5; e++) {
            char id[64];
            snprintf(id, sizeof id, "b%d-%d-%d", w->thread, i, e);
            if (e == 4)
                st_buf_printf(&body, "{\"event_id\":\"%s\",\"event_type\":\"order_placed\","
                                     "\"schema_version\":1}\n", id);
            else {
                st_buf_printf(&body, event_fmt, id, e);
                st_buf_putc(&body, '\n');
            }
        }
        long st = client_do(&k, w->port, "/v1/events", body.data);
        if (st == 207 && strstr(k.body.data, "\"accepted\":4,\"rejected\":1") &&
            strstr(k.body.data, "\"index\":4")) {
            for (int e = 0; e < 5; e++) {
                char *id = st_sprintf("b%d-%d-%d", w->thread, i, e);
                if (e == 4)
                    push(&w->refused, &w->n_refused, id);
                else
                    push(&w->acked, &w->n_acked, id);
            }
        } else if (!w->n_other++) {
            snprintf(w->first_bad, sizeof w->first_bad, "%ld %s", st, k.body.data);
        }
    }
    st_buf_free(&body);
    client_free(&k);
    return NULL;
}

static void test_concurrent_keepalive(void **state)
{
    (void)state;
    server s;
    /* small segments: rolls happen while fsyncs are in flight */
    setup_server(&s, "async-many", ", segment_bytes: 65536, commit_threads: 3", 65536);
    start(&s);
    enum { N = 16, PER = 60 };
    worker w[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        w[i] = (worker){.port = s.port, .thread = i, .n = PER, .batches = i % 4 == 3};
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);

    client k;
    client_init(&k);
    assert_int_equal(client_do(&k, s.port, "/metrics", NULL), 200);
    /* nothing left suspended once every client has its answer */
    assert_non_null(strstr(k.body.data, "\nstrata_collector_waiting_requests 0\n"));
    size_t total = 0;
    for (int i = 0; i < N; i++)
        total += w[i].n_acked;
    char want[128];
    snprintf(want, sizeof want, "strata_collector_events_accepted_total{source=\"backend\"} %zu\n",
             total);
    if (!strstr(k.body.data, want))
        fail_msg("metrics do not count %zu accepted events:\n%s", total, k.body.data);
    client_free(&k);
    assert_int_equal(WEXITSTATUS(stop(&s, SIGTERM)), 0);

    json_t *log = log_counts(s.log);
    for (int i = 0; i < N; i++) {
        if (w[i].n_other)
            fail_msg("client %d: %zu unexpected answers, first: %s", i, w[i].n_other,
                     w[i].first_bad);
        assert_int_equal(w[i].n_acked, w[i].batches ? PER * 4 : PER);
        for (size_t j = 0; j < w[i].n_acked; j++) {
            json_int_t c = json_integer_value(json_object_get(log, w[i].acked[j]));
            if (c != 1)
                fail_msg("acknowledged event %s: %lld copies in the log, want 1", w[i].acked[j],
                         (long long)c);
            st_free(w[i].acked[j]);
        }
        for (size_t j = 0; j < w[i].n_refused; j++) {
            if (json_object_get(log, w[i].refused[j]))
                fail_msg("rejected event %s is in the log", w[i].refused[j]);
            st_free(w[i].refused[j]);
        }
        st_free(w[i].acked);
        st_free(w[i].refused);
    }
    assert_int_equal(json_object_size(log), total);
    printf("async: %d keep-alive clients, %zu events acknowledged, all in the log once\n", N,
           total);
    json_decref(log);
    server_free(&s);
}

/* ---- a request larger than the queue bound ---- */

static void test_queue_full(void **state)
{
    (void)state;
    server s;
    setup_server(&s, "async-full", ", max_pending_bytes: 65536", 1 << 20);
    start(&s);
    client k;
    client_init(&k);
    st_buf body;
    st_buf_init(&body, 0);
    for (int i = 0; i < 200; i++) { /* ~100 KB framed: more than the queue may hold */
        char id[32];
        snprintf(id, sizeof id, "full-%d", i);
        st_buf_printf(&body, event_fmt, id, i);
        st_buf_putc(&body, '\n');
    }
    assert_int_equal(client_do(&k, s.port, "/v1/events", body.data), 503);
    assert_non_null(strstr(k.body.data, "\"code\":\"overloaded\""));
    assert_non_null(strstr(k.body.data, "queue full"));
    assert_non_null(strcasestr(k.headers.data, "\nRetry-After: "));
    /* a request that fits is still served on the same connection */
    st_buf_reset(&body);
    st_buf_printf(&body, event_fmt, "fits-1", 1);
    assert_int_equal(client_do(&k, s.port, "/v1/event", body.data), 200);
    assert_int_equal(client_do(&k, s.port, "/metrics", NULL), 200);
    assert_non_null(strstr(k.body.data, "strata_collector_events_rejected_total{reason=\"overloaded\"} 200\n"));
    client_free(&k);
    st_buf_free(&body);
    stop(&s, SIGTERM);
    json_t *log = log_counts(s.log);
    assert_int_equal(json_object_size(log), 1);
    assert_non_null(json_object_get(log, "fits-1"));
    json_decref(log);
    server_free(&s);
}

/* ---- the event log cannot write: 503, never a 2xx ---- */

static void test_write_failure(void **state)
{
    (void)state;
    server s;
    setup_server(&s, "async-fail", ", segment_bytes: 16777216", 65536);
    /* The server inherits a file size limit: once its segment reaches it,
     * write() fails (EFBIG; SIGXFSZ ignored, which exec keeps) and the log
     * turns fail-stop.  Restored for this process right after the fork. */
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 96 << 10;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    const char *const args[] = {"--config", s.cfg, NULL};
    s.pid = tu_serve_start(args, 20000, &s.port);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);

    client k;
    client_init(&k);
    st_buf body;
    st_buf_init(&body, 0);
    char **acked = NULL;
    size_t n_acked = 0;
    long last = 0;
    int i;
    for (i = 0; i < 2000; i++) {
        char id[32];
        snprintf(id, sizeof id, "w-%d", i);
        st_buf_reset(&body);
        st_buf_printf(&body, event_fmt, id, i);
        last = client_do(&k, s.port, "/v1/event", body.data);
        if (last != 200)
            break;
        push(&acked, &n_acked, st_strdup(id));
    }
    if (last != 503)
        fail_msg("after %d events: status %ld '%s', want a 503 once the log cannot write", i,
                 last, k.body.data);
    assert_non_null(strstr(k.body.data, "\"code\":\"unavailable\""));
    assert_non_null(strcasestr(k.headers.data, "\nRetry-After: "));
    assert_true(n_acked > 50); /* the limit was reached by real traffic */
    /* fail-stop: the next event is refused too, and the server says why */
    st_buf_reset(&body);
    st_buf_printf(&body, event_fmt, "after-failure", 0);
    assert_int_equal(client_do(&k, s.port, "/v1/event", body.data), 503);
    assert_int_equal(client_do(&k, s.port, "/readyz", NULL), 503);
    assert_non_null(strstr(k.body.data, "event log failed"));
    client_free(&k);
    st_buf_free(&body);
    stop(&s, SIGKILL);

    json_t *log = log_counts(s.log);
    for (size_t j = 0; j < n_acked; j++) {
        if (json_integer_value(json_object_get(log, acked[j])) != 1)
            fail_msg("acknowledged event %s is not in the log once", acked[j]);
        st_free(acked[j]);
    }
    st_free(acked);
    assert_null(json_object_get(log, "after-failure"));
    printf("write failure: %zu events acknowledged before it, all in the log; then 503\n",
           n_acked);
    json_decref(log);
    server_free(&s);
}

/* ---- one keep-alive connection, changing keys, large headers ---- */

static void set_headers(client *k, const char *key, const char *extra)
{
    curl_slist_free_all(k->h);
    char *a = st_sprintf("Authorization: Bearer %s", key);
    k->h = curl_slist_append(NULL, a);
    k->h = curl_slist_append(k->h, "Expect:");
    if (extra)
        k->h = curl_slist_append(k->h, extra);
    st_free(a);
    curl_easy_setopt(k->c, CURLOPT_HTTPHEADER, k->h);
}

/* event_id -> source of every record in the log. */
static json_t *log_sources(const char *dir)
{
    json_t *log = tu_read_log(dir, false), *all = json_object();
    const char *id;
    json_t *recs;
    json_object_foreach(log, id, recs)
        json_object_set(all, id, json_object_get(json_array_get(recs, 0), "source"));
    json_decref(log);
    return all;
}

/* The key of a keep-alive connection is remembered with its source: a
 * different key on the same connection (same length, longer, another
 * source's) must be checked again, and the single-event answer is the
 * shared one.  Headers of 10 KB still fit the connection's memory. */
static void test_keepalive_keys(void **state)
{
    (void)state;
    server s;
    s.dir = tu_tempdir("async-keys");
    s.cfg = st_path_join(s.dir, "strata.yml");
    s.log = st_path_join(s.dir, "eventlog");
    const char *y = "name: t\n"
                    "collector:\n"
                    "  listen: 127.0.0.1:0\n"
                    "  threads: 1\n"
                    "  event_log: {dir: ./eventlog}\n"
                    "  sources:\n"
                    "    backend: {key_env: TST_ASYNC_KEY, families: [backend_events]}\n"
                    "    other: {key_env: TST_ASYNC_KEY2, families: [backend_events]}\n"
                    "loader:\n"
                    "  enabled: false\n";
    TU_OK(st_file_write_atomic(s.cfg, y, strlen(y), &tu_err));
    setenv("TST_ASYNC_KEY", "async-secret", 1);
    setenv("TST_ASYNC_KEY2", "other-secret", 1);
    start(&s);
    client k;
    client_init(&k);
    st_buf body, cookie;
    st_buf_init(&body, 0);
    st_buf_init(&cookie, 0);
    static const char one[] = "{\"accepted\":1,\"rejected\":0}\n";
    struct {
        const char *id, *key, *path;
        long want;
    } steps[] = {
        /* each wrong key follows a 2xx on the same connection, whose key
         * is then remembered; a 401 closes the connection (its body is
         * not read) */
        {"k1", "async-secret", "/v1/event", 200},
        {"x1", "async-secreT", "/v1/event", 401},   /* same length */
        {"k2", "async-secret", "/v1/event", 200},
        {"x2", "async-secretx", "/v1/event", 401},  /* longer */
        {"k3", "async-secret", "/v1/event", 200},
        {"x3", "async-secre", "/v1/event", 401},    /* a prefix */
        {"k4", "async-secret", "/v1/event", 200},
        {"k5", "other-secret", "/v1/event", 200},   /* another source */
        {"k6", "async-secret", "/v1/events", 200},  /* a batch of one */
        /* a 10 KB cookie: libmicrohttpd's default 32 KiB connection pool
         * holds ~14 KB of headers */
        {"k7", "async-secret", "/v1/event", 200},
    };
    long prev = 0;
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        st_buf_reset(&cookie);
        if (!strcmp(steps[i].id, "k7")) {
            st_buf_puts(&cookie, "Cookie: c=");
            for (int j = 0; j < 10000; j++)
                st_buf_putc(&cookie, 'a' + j % 26);
        }
        set_headers(&k, steps[i].key, cookie.len ? cookie.data : NULL);
        st_buf_reset(&body);
        st_buf_printf(&body, event_fmt, steps[i].id, (int)i);
        long st = client_do(&k, s.port, steps[i].path, body.data);
        if (st != steps[i].want)
            fail_msg("%s: status %ld '%s', want %ld", steps[i].id, st, k.body.data, steps[i].want);
        if (st == 200 && strcmp(k.body.data, one))
            fail_msg("%s: body '%s', want '%s'", steps[i].id, k.body.data, one);
        long conns = -1;
        curl_easy_getinfo(k.c, CURLINFO_NUM_CONNECTS, &conns);
        /* after a 2xx the next request must reuse the connection, or the
         * remembered key would not be what it is checked against */
        if (prev == 200 && conns != 0)
            fail_msg("%s: curl opened %ld new connection(s)", steps[i].id, conns);
        prev = st;
    }
    client_free(&k);
    st_buf_free(&body);
    st_buf_free(&cookie);
    assert_int_equal(WEXITSTATUS(stop(&s, SIGTERM)), 0);
    json_t *src = log_sources(s.log);
    assert_int_equal(json_object_size(src), 7);
    for (const char *const *id = (const char *const[]){"k1", "k2", "k3", "k4", NULL}; *id; id++)
        assert_string_equal(json_string_value(json_object_get(src, *id)), "backend");
    assert_string_equal(json_string_value(json_object_get(src, "k5")), "other");
    assert_string_equal(json_string_value(json_object_get(src, "k6")), "backend");
    assert_string_equal(json_string_value(json_object_get(src, "k7")), "backend");
    json_decref(src);
    server_free(&s);
}


int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_concurrent_keepalive, tu_serve_teardown),
        cmocka_unit_test_teardown(test_queue_full, tu_serve_teardown),
        cmocka_unit_test_teardown(test_write_failure, tu_serve_teardown),
        cmocka_unit_test_teardown(test_keepalive_keys, tu_serve_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
