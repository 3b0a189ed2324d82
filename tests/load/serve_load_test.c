/*
 * serve_load_test.c - end to end through `strata serve` with the loader
 * thread: valid, invalid, duplicate, late and PII-bearing events from each
 * source checked row by row in bronze with quarantine reasons; no plaintext
 * prompt, e-mail or card number in any bronze Parquet file (raw bytes and
 * decoded values); `strata erase` makes a subject's prompts undecryptable;
 * durability: SIGKILL under load, restart, every acknowledged event_id is in
 * bronze exactly once.  Only 127.0.0.1.
 */
#include "testutil.h"
#include "strata/collect.h"
#include "strata/delta.h"
#include "strata/load.h"

#include <curl/curl.h>
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>


typedef struct server {
    pid_t pid;
    int port;
    char *dir, *cfg, *lake;
} server;

static void setup_dir(server *s)
{
    s->dir = tu_tempdir("serveload");
    s->cfg = st_path_join(s->dir, "strata.yml");
    s->lake = st_path_join(s->dir, "lake");
    const char *y =
        "name: t\n"
        "collector:\n"
        "  listen: 127.0.0.1:0\n"
        "  threads: 8\n"
        "  event_log: {dir: ./eventlog, fsync_ms: 2, min_free_bytes: 0}\n"
        "  sources:\n"
        "    web: {key_env: TST_KEY_WEB, families: [web_events]}\n"
        "    llm: {key_env: TST_KEY_LLM, families: [llm_calls]}\n"
        "    backend: {key_env: TST_KEY_BACKEND, families: [backend_events, orders]}\n"
        "loader: {interval_ms: 200, late_horizon_s: 86400}\n";
    TU_OK(st_file_write_atomic(s->cfg, y, strlen(y), &tu_err));
    char *sd = st_path_join(s->dir, "schemas");
    TU_OK(st_mkdirs(sd, &tu_err));
    char *f = st_path_join(sd, "orders.yml");
    const char *o = "family: orders\nevent_type: order_placed\nversion: 1\nfields:\n"
                    "  amount: {type: double, required: true}\n"
                    "  email: {type: string, classification: pii}\n";
    TU_OK(st_file_write_atomic(f, o, strlen(o), &tu_err));
    st_free(f);
    st_free(sd);
    setenv("TST_KEY_WEB", "web-secret", 1);
    setenv("TST_KEY_LLM", "llm-secret", 1);
    setenv("TST_KEY_BACKEND", "backend-secret", 1);
}

static void start(server *s)
{
    const char *const args[] = {"--config", s->cfg, NULL};
    s->pid = tu_serve_start(args, 30000, &s->port);
}

static int stop(server *s, int sig)
{
    int status = tu_serve_stop(s->pid, sig);
    s->pid = 0;
    return status;
}

static void cleanup(server *s)
{
    st_free(s->cfg);
    st_free(s->lake);
    tu_rmdir(s->dir);
}

static int64_t q64(const char *lake, const char *sql)
{
    st_engine *eng = tu_mount_events(lake);
    int64_t v = -1;
    st_err e;
    if (st_engine_query_i64(eng, sql, &v, &e))
        v = -1;
    st_engine_close(eng);
    return v;
}


/* Waits until sql returns want (the loader runs every 200 ms). */
static void wait_for(const char *lake, const char *sql, int64_t want)
{
    int64_t got = -1, deadline = st_now_ms() + 30000;
    while (st_now_ms() < deadline) {
        got = q64(lake, sql);
        if (got == want)
            return;
        usleep(200000);
    }
    fail_msg("%s: %lld, want %lld", sql, (long long)got, (long long)want);
}

/* Appends to *hits every Parquet file under dir containing needle. */
static void scan_bytes(const char *dir, const char *needle, int *hits)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || de->d_name[1] == '.'))
            continue;
        char *p = st_path_join(dir, de->d_name);
        if (st_is_dir(p)) {
            scan_bytes(p, needle, hits);
        } else if (strstr(de->d_name, ".parquet")) {
            char *data = NULL;
            size_t len = 0;
            TU_OK(st_file_read(p, 1 << 28, &data, &len, &tu_err));
            if (memmem(data, len, needle, strlen(needle))) {
                fprintf(stderr, "plaintext '%s' found in %s\n", needle, p);
                (*hits)++;
            }
            st_free(data);
        }
        st_free(p);
    }
    if (d)
        closedir(d);
}

static void test_integration(void **state)
{
    (void)state;
    server s = {0};
    setup_dir(&s);
    start(&s);
    char now[32], old[32], body[8192];
    st_rfc3339_format(st_now_us() - 5000000, now);
    st_rfc3339_format(st_now_us() - 3 * 86400000000LL, old);
    /* llm: a valid call with a prompt, its duplicate, a late one, an invalid one */
    snprintf(body, sizeof body,
             "[{\"event_id\":\"llm-1\",\"event_type\":\"chat\",\"schema_version\":1,\"event_time\":\"%s\","
             "\"subject_id\":\"user-42\",\"payload\":{\"gen_ai.operation.name\":\"chat\","
             "\"gen_ai.provider.name\":\"openai\",\"gen_ai.request.model\":\"gpt-4o\","
             "\"gen_ai.response.model\":\"gpt-4o-2024\",\"gen_ai.usage.input_tokens\":812,"
             "\"gen_ai.usage.output_tokens\":95,\"gen_ai.response.finish_reasons\":[\"stop\"],"
             "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"span_id\":\"00f067aa0ba902b7\","
             "\"gen_ai.conversation.id\":\"conv-1\",\"latency_ms\":420.5,\"cost\":0.0031,"
             "\"prompt\":\"SECRETPROMPT my card 4111 1111 1111 1111 mail jane.doe@example.com\","
             "\"response\":\"SECRETANSWER\"}},"
             "{\"event_id\":\"llm-1\",\"event_type\":\"chat\",\"schema_version\":1,\"event_time\":\"%s\","
             "\"subject_id\":\"user-42\",\"payload\":{\"gen_ai.operation.name\":\"chat\","
             "\"gen_ai.provider.name\":\"openai\",\"prompt\":\"SECRETPROMPT again\"}},"
             "{\"event_id\":\"llm-late\",\"event_type\":\"chat\",\"schema_version\":1,\"event_time\":\"%s\","
             "\"subject_id\":\"user-7\",\"payload\":{\"gen_ai.operation.name\":\"embeddings\","
             "\"gen_ai.provider.name\":\"mistral_ai\",\"prompt\":\"SECRETPROMPT seven\"}},"
             "{\"event_id\":\"llm-bad\",\"event_type\":\"chat\",\"schema_version\":1,\"event_time\":\"%s\","
             "\"payload\":{\"gen_ai.operation.name\":\"chat\",\"gen_ai.provider.name\":\"openai\","
             "\"gen_ai.usage.input_tokens\":\"many\"}}]",
             now, now, old, now);
    assert_int_equal(tu_post_events(s.port, "llm-secret", body, NULL), 200);
    /* web: page with IP and email in properties, a retry of it */
    snprintf(body, sizeof body,
             "[{\"event_id\":\"web-1\",\"event_type\":\"page\",\"schema_version\":1,\"event_time\":\"%s\","
             "\"context\":{\"ip\":\"203.0.113.9\",\"user_agent\":\"UA/1\",\"page\":{\"url\":\"https://a.example/p\","
             "\"path\":\"/p\",\"title\":\"P\"}},\"payload\":{\"anonymous_id\":\"anon-1\","
             "\"properties\":{\"contact\":\"jane.doe@example.com\"}}},"
             "{\"event_id\":\"web-2\",\"event_type\":\"track\",\"schema_version\":1,\"event_time\":\"%s\","
             "\"payload\":{\"event\":\"Signed Up\",\"user_id\":\"u-9\",\"traits\":{\"plan\":\"pro\"}}}]",
             now, now);
    assert_int_equal(tu_post_events(s.port, "web-secret", body, NULL), 200);
    snprintf(body, sizeof body,
             "{\"event_id\":\"web-1\",\"event_type\":\"page\",\"schema_version\":1,\"event_time\":\"%s\","
             "\"context\":{\"ip\":\"203.0.113.9\"}}", now);
    assert_int_equal(tu_post_events(s.port, "web-secret", body, NULL), 200);
    /* backend: generic event, a project schema (valid, invalid, unknown type) */
    snprintf(body, sizeof body,
             "[{\"event_id\":\"be-1\",\"event_type\":\"login\",\"schema_version\":1,\"event_time\":\"%s\","
             "\"country\":\"DE\",\"payload\":{\"method\":\"sso\"}},"
             "{\"event_id\":\"or-1\",\"event_type\":\"orders.order_placed\",\"schema_version\":1,"
             "\"event_time\":\"%s\",\"payload\":{\"amount\":12.5,\"email\":\"jane.doe@example.com\"}},"
             "{\"event_id\":\"or-2\",\"event_type\":\"orders.order_placed\",\"schema_version\":1,"
             "\"event_time\":\"%s\",\"payload\":{\"email\":\"x@example.com\"}},"
             "{\"event_id\":\"or-3\",\"event_type\":\"orders.refund\",\"schema_version\":1,"
             "\"event_time\":\"%s\",\"payload\":{}}]",
             now, now, now, now);
    assert_int_equal(tu_post_events(s.port, "backend-secret", body, NULL), 200);

    wait_for(s.lake, "SELECT count(*) FROM raw_events", 11);
    wait_for(s.lake, "SELECT count(*) FROM bronze_quarantine", 3);
    assert_int_equal(q64(s.lake, "SELECT count(*) FROM bronze_llm_calls"), 2);
    assert_int_equal(q64(s.lake, "SELECT count(*) FROM bronze_web_events"), 2);
    assert_int_equal(q64(s.lake, "SELECT count(*) FROM bronze_backend_events"), 1);
    assert_int_equal(q64(s.lake, "SELECT count(*) FROM bronze_orders"), 1);
    /* llm-1 row by row */
    assert_int_equal(q64(s.lake,
        "SELECT count(*) FROM bronze_llm_calls WHERE event_id = 'llm-1' AND event_type = 'chat' "
        "AND gen_ai_provider_name = 'openai' AND gen_ai_operation_name = 'chat' "
        "AND gen_ai_request_model = 'gpt-4o' AND gen_ai_response_model = 'gpt-4o-2024' "
        "AND gen_ai_usage_input_tokens = 812 AND gen_ai_usage_output_tokens = 95 "
        "AND gen_ai_response_finish_reasons = '[\"stop\"]' AND trace_id = '4bf92f3577b34da6a3ce929d0e0e4736' "
        "AND span_id = '00f067aa0ba902b7' AND conversation_id = 'conv-1' AND latency_ms = 420.5 "
        "AND cost = 0.0031 AND prompt LIKE 'enc:v1:%' AND response LIKE 'enc:v1:%' "
        "AND subject_id = 'user-42' AND source = 'llm' AND NOT _late AND _batch_id IS NOT NULL "
        "AND _loaded_at >= received_at AND event_date = event_time::DATE"), 1);
    assert_int_equal(q64(s.lake, "SELECT count(*) FROM bronze_llm_calls WHERE event_id = 'llm-late' "
                                 "AND _late AND event_date = (now() - INTERVAL 3 DAY)::DATE"), 1);
    /* web rows */
    assert_int_equal(q64(s.lake,
        "SELECT count(*) FROM bronze_web_events WHERE event_id = 'web-1' AND event = 'page' "
        "AND url = 'https://a.example/p' AND path = '/p' AND title = 'P' AND user_agent = 'UA/1' "
        "AND anonymous_id = 'anon-1' AND length(ip) = 64 AND properties = '{\"contact\":\"<email>\"}'"), 1);
    assert_int_equal(q64(s.lake,
        "SELECT count(*) FROM bronze_web_events WHERE event_id = 'web-2' AND event = 'Signed Up' "
        "AND user_id = 'u-9' AND traits = '{\"plan\":\"pro\"}' AND ip IS NULL"), 1);
    assert_int_equal(q64(s.lake,
        "SELECT count(*) FROM bronze_backend_events WHERE event_id = 'be-1' AND name = 'login' "
        "AND country = 'DE' AND properties = '{\"method\":\"sso\"}'"), 1);
    assert_int_equal(q64(s.lake,
        "SELECT count(*) FROM bronze_orders WHERE event_id = 'or-1' AND amount = 12.5 "
        "AND length(email) = 64"), 1);
    /* quarantine reasons */
    char *r = tu_lake_str(s.lake, "SELECT reason FROM bronze_quarantine WHERE event_id = 'llm-bad'");
    assert_string_equal(r, "field 'gen_ai.usage.input_tokens': expected long, got string");
    st_free(r);
    r = tu_lake_str(s.lake, "SELECT reason FROM bronze_quarantine WHERE event_id = 'or-2'");
    assert_string_equal(r, "field 'amount': required but missing");
    st_free(r);
    r = tu_lake_str(s.lake, "SELECT reason FROM bronze_quarantine WHERE event_id = 'or-3'");
    assert_string_equal(r, "unknown event type: orders.refund version 1");
    st_free(r);
    /* metrics carry the lag gauge */
    st_buf m;
    st_buf_init(&m, 0);
    {
        CURL *c = curl_easy_init();
        char url[64];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", s.port);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tu_curl_sink);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &m);
        curl_easy_perform(c);
        curl_easy_cleanup(c);
    }
    assert_non_null(strstr(m.data, "strata_loader_lag_events 0\n"));
    st_buf_free(&m);
    assert_int_equal(WEXITSTATUS(stop(&s, SIGTERM)), 0);

    /* PII: no plaintext in any bronze Parquet file, raw bytes and decoded values */
    char *bronze = st_path_join(s.lake, "bronze");
    const char *secrets[] = {"SECRETPROMPT", "SECRETANSWER", "jane.doe@example.com",
                             "4111 1111 1111 1111", "203.0.113.9"};
    int hits = 0;
    for (size_t i = 0; i < 5; i++)
        scan_bytes(bronze, secrets[i], &hits);
    assert_int_equal(hits, 0);
    st_engine *eng = tu_engine();
    for (size_t i = 0; i < 5; i++) {
        char *q = st_sprintf("SELECT count(*) FROM read_parquet('%s/**/*.parquet', union_by_name=true) t "
                             "WHERE strpos(CAST(t AS VARCHAR), '%s') > 0", bronze, secrets[i]);
        int64_t n = -1;
        TU_OK(st_engine_query_i64(eng, q, &n, &tu_err));
        if (n != 0)
            fail_msg("decoded bronze values contain '%s' (%lld rows)", secrets[i], (long long)n);
        st_free(q);
    }
    st_engine_close(eng);

    /* erasure through the CLI: user-42's prompts become undecryptable */
    char *enc = tu_lake_str(s.lake, "SELECT prompt FROM bronze_llm_calls WHERE event_id = 'llm-1'");
    char *out = NULL;
    int rc = tu_run(&out, "'%s' erase --subject user-42 --config '%s' 2>&1", tu_strata_bin(), s.cfg);
    if (rc != 0)
        fail_msg("strata erase: %s", out ? out : "");
    assert_non_null(strstr(out, "erased subject user-42"));
    st_free(out);
    assert_int_equal(q64(s.lake, "SELECT count(*) FROM bronze_llm_calls WHERE subject_id = 'user-42'"), 0);
    assert_int_equal(q64(s.lake, "SELECT count(*) FROM bronze_llm_calls"), 1);
    st_loader_cfg *lc = NULL;
    st_cfg_doc *doc = NULL;
    TU_OK(st_cfg_load_file(s.cfg, &doc, &tu_err));
    TU_OK(st_loader_cfg_load(st_cfg_root(doc), s.dir, &lc, &tu_err));
    uint8_t mk[32];
    st_state *stt = NULL;
    st_keystore *ks = NULL;
    TU_OK(st_keystore_master_key(lc->master_key_env, lc->master_key_file, false, mk, &tu_err));
    TU_OK(st_state_open(lc->state_path, &stt, &tu_err));
    TU_OK(st_keystore_open(stt, mk, &ks, &tu_err));
    st_buf p;
    st_buf_init(&p, 0);
    st_err e;
    assert_int_equal(st_keystore_decrypt(ks, "user-42", enc, &p, &e), ST_ERR_NOTFOUND);
    /* user-7 still decrypts */
    char *enc7 = tu_lake_str(s.lake, "SELECT prompt FROM bronze_llm_calls WHERE event_id = 'llm-late'");
    TU_OK(st_keystore_decrypt(ks, "user-7", enc7, &p, &tu_err));
    assert_string_equal(p.data, "SECRETPROMPT seven");
    st_buf_free(&p);
    st_free(enc7);
    st_free(enc);
    st_keystore_close(ks);
    st_state_close(stt);
    st_loader_cfg_free(lc);
    st_cfg_doc_free(doc);
    st_free(bronze);
    cleanup(&s);
}

/* ---- durability ---- */

static void test_durability(void **state)
{
    (void)state;
    server s = {0};
    setup_dir(&s);
    start(&s);
    tu_client *c = tu_client_new("backend-secret");
    tu_client_start(c, s.port);
    usleep(1500000);
    stop(&s, SIGKILL);           /* mid-load, mid-batch maybe */
    tu_client_stop(c);
    size_t before = tu_client_acked(c);
    assert_true(before > 0);
    start(&s);                    /* recovery; the loader resumes from its checkpoint */
    tu_client_start(c, s.port);
    usleep(1000000);
    tu_client_stop(c);
    assert_true(tu_client_acked(c) > before);
    /* wait until everything acknowledged is loaded, then stop cleanly */
    int64_t distinct = tu_client_distinct(c);
    wait_for(s.lake, "SELECT count(DISTINCT event_id) FROM bronze_backend_events", distinct);
    assert_int_equal(WEXITSTATUS(stop(&s, SIGTERM)), 0);
    /* exactly once: every acknowledged id once, nothing twice */
    tu_client_check(c, s.lake, "bronze_backend_events");
    fprintf(stderr, "durability: %zu acknowledged (%lld distinct), all in bronze once\n",
            tu_client_acked(c), (long long)distinct);
    tu_client_free(c);
    cleanup(&s);
}


int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_integration, tu_serve_teardown),
        cmocka_unit_test_teardown(test_durability, tu_serve_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
