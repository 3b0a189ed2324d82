/*
 * envelope_test.c - the body splitter, the envelope validator (each rule and
 * its message), RFC 3339 handling, CRC-32C vectors, the collector config
 * and the embedded tracker.
 */
#include "testutil.h"
#include "strata/collect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OKEV "\"event_id\":\"e1\",\"event_type\":\"page_view\",\"schema_version\":1,\"event_time\":\"2025-03-04T05:06:07.123Z\""

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(st_crc32c(0, "123456789", 9), 0xE3069283u);
    unsigned char z[32] = {0}, ff[32], inc[32], dec[32];
    memset(ff, 0xff, sizeof ff);
    for (int i = 0; i < 32; i++) {
        inc[i] = (unsigned char)i;
        dec[i] = (unsigned char)(31 - i);
    }
    /* RFC 3720 B.4 test vectors */
    assert_int_equal(st_crc32c(0, z, 32), 0x8A9136AAu);
    assert_int_equal(st_crc32c(0, ff, 32), 0x62A8AB43u);
    assert_int_equal(st_crc32c(0, inc, 32), 0x46DD794Eu);
    assert_int_equal(st_crc32c(0, dec, 32), 0x113FDB5Cu);
    assert_int_equal(st_crc32c(0, "", 0), 0u);
    /* incremental over odd splits equals one pass */
    const char *s = "The quick brown fox jumps over the lazy dog, twice over.";
    uint32_t whole = st_crc32c(0, s, strlen(s));
    for (size_t k = 0; k < strlen(s); k += 3)
        assert_int_equal(st_crc32c(st_crc32c(0, s, k), s + k, strlen(s) - k), whole);
}

static void split_ok(const char *body, size_t expect_n)
{
    st_span sp[16];
    size_t n = 0;
    st_split_limits lim = {.max_events = 16, .max_event_bytes = 1000, .max_depth = 8};
    st_rc rc = st_collect_split(body, strlen(body), &lim, sp, 16, &n, NULL, &tu_err);
    if (rc)
        fail_msg("split '%s': %s", body, tu_err.msg);
    assert_int_equal(n, expect_n);
}

static void split_bad(const char *body, st_rc want, size_t want_index, const char *want_msg)
{
    st_span sp[4];
    size_t n = 0, bad = 99;
    st_split_limits lim = {.max_events = 4, .max_event_bytes = 60, .max_depth = 4};
    st_rc rc = st_collect_split(body, strlen(body), &lim, sp, 4, &n, &bad, &tu_err);
    if (rc != want)
        fail_msg("split '%s': got %s (%s), want %s", body, st_rc_name(rc), tu_err.msg, st_rc_name(want));
    if (want_index != (size_t)-1)
        assert_int_equal(bad, want_index);
    if (!strstr(tu_err.msg, want_msg))
        fail_msg("split '%s': message '%s' lacks '%s'", body, tu_err.msg, want_msg);
}

static void test_split(void **state)
{
    (void)state;
    split_ok("[{\"a\":1},{\"b\":[1,2,{\"c\":null}]}]", 2);
    split_ok("  [ {} ,\n {} ] \n", 2);
    split_ok("{\"a\":1}\n{\"a\":2}\n\n{\"a\":3}", 3);
    split_ok("{\"a\":\"\\u00e9\\ud83d\\ude00 caf\xc3\xa9\"}\r\n", 1);
    split_ok("[1, \"x\", true]", 3); /* non-objects are the validator's business */
    st_span sp[4];
    size_t n;
    const char *b = "[ {\"x\":1} , {\"y\":2}]";
    TU_OK(st_collect_split(b, strlen(b), NULL, sp, 4, &n, NULL, &tu_err));
    assert_int_equal(sp[0].len, 7);
    assert_memory_equal(sp[1].p, "{\"y\":2}", 7);

    split_bad("", ST_ERR_INVALID, 0, "empty body");
    split_bad("[]", ST_ERR_INVALID, (size_t)-1, "empty batch");
    split_bad("hello", ST_ERR_PARSE, 0, "JSON array");
    split_bad("42", ST_ERR_PARSE, 0, "JSON array");
    split_bad("[{\"a\":1},{\"a\":]", ST_ERR_PARSE, 1, "event 1");
    split_bad("[{\"a\":1} {\"a\":2}]", ST_ERR_PARSE, 0, "expected ',' or ']'");
    split_bad("[{\"a\":1}", ST_ERR_PARSE, 0, "expected ',' or ']'");
    split_bad("{\"a\":1}\n{\"a\":\"\xff\"}", ST_ERR_PARSE, 1, "invalid UTF-8");
    split_bad("{\"a\":\"\xc0\xaf\"}", ST_ERR_PARSE, 0, "invalid UTF-8");     /* overlong */
    split_bad("{\"a\":\"\xed\xa0\x80\"}", ST_ERR_PARSE, 0, "invalid UTF-8"); /* surrogate */
    split_bad("{\"a\":\"\\ud800\"}", ST_ERR_PARSE, 0, "surrogate");
    split_bad("{\"a\":\"x\ty\"}", ST_ERR_PARSE, 0, "control character");
    split_bad("{\"a\":\"\\q\"}", ST_ERR_PARSE, 0, "bad escape");
    split_bad("{\"a\":01}", ST_ERR_PARSE, 0, "expected ',' or '}'");
    split_bad("{\"a\":tru}", ST_ERR_PARSE, 0, "not JSON");
    split_bad("{\"a\":[[[[1]]]]}", ST_ERR_PARSE, 0, "nested too deep");
    split_bad("{\"a\":\"0123456789012345678901234567890123456789012345678901234567890\"}",
              ST_ERR_LIMIT, 0, "more than the limit");
    split_bad("{}\n{}\n{}\n{}\n{}", ST_ERR_LIMIT, 4, "more than 4 events");
    split_bad("[{}] x", ST_ERR_PARSE, (size_t)-1, "trailing data");
    split_bad("{\"a\":\"unterminated", ST_ERR_PARSE, 0, "unterminated string");
}

static void env_ok(const char *json, st_envelope *out)
{
    st_rc rc = st_envelope_parse(json, strlen(json), out, &tu_err);
    if (rc)
        fail_msg("envelope %s: %s", json, tu_err.msg);
}

static void env_bad(const char *json, const char *want)
{
    st_envelope e;
    st_rc rc = st_envelope_parse(json, strlen(json), &e, &tu_err);
    if (rc == ST_OK)
        fail_msg("envelope %s accepted, want '%s'", json, want);
    if (strcmp(tu_err.msg, want))
        fail_msg("envelope %s: got '%s', want '%s'", json, tu_err.msg, want);
}

static void test_envelope(void **state)
{
    (void)state;
    st_envelope e;
    env_ok("{" OKEV "}", &e);
    assert_string_equal(e.event_id, "e1");
    assert_string_equal(e.event_type, "page_view");
    assert_string_equal(e.family, "");
    assert_string_equal(e.schema_version, "1");
    assert_false(e.has_sent_at);
    int64_t t;
    assert_true(st_rfc3339_parse("2025-03-04T05:06:07.123Z", 24, &t));
    assert_true(e.event_time_us == t);
    env_ok("{" OKEV ",\"sent_at\":\"2025-03-04T06:06:07+01:00\",\"country\":\"DE\","
           "\"entity_id\":\"fund-a\",\"subject_id\":\"u-1\",\"context\":{\"ip\":\"1.2.3.4\"},"
           "\"payload\":{\"a\":[1,2,{}]}}", &e);
    assert_true(e.has_sent_at);
    assert_true(e.sent_at_us == t - 123000); /* same instant, other zone, no fraction */
    assert_string_equal(e.country, "DE");
    assert_true(e.has_subject_id);
    env_ok("{\"event_id\":\"x\",\"event_type\":\"llm_calls.chat\",\"schema_version\":\"2-1-0\","
           "\"event_time\":\"2025-01-01T00:00:00Z\"}", &e);
    assert_string_equal(e.family, "llm_calls");
    assert_string_equal(e.schema_version, "2-1-0");

    env_bad("[1]", "event must be a JSON object");
    env_bad("{\"event_id\":", "not JSON: unexpected end of input");
    env_bad("{" OKEV ",\"foo\":1}", "unknown field 'foo'");
    env_bad("{" OKEV ",\"received_at\":\"x\"}", "unknown field 'received_at'");
    env_bad("{" OKEV ",\"event_id\":\"e2\"}", "event_id: duplicate field");
    env_bad("{\"event_type\":\"a\",\"schema_version\":1,\"event_time\":\"2025-01-01T00:00:00Z\"}",
            "event_id: required");
    env_bad("{\"event_id\":\"a\",\"schema_version\":1,\"event_time\":\"2025-01-01T00:00:00Z\"}",
            "event_type: required");
    env_bad("{\"event_id\":\"a\",\"event_type\":\"t\",\"event_time\":\"2025-01-01T00:00:00Z\"}",
            "schema_version: required");
    env_bad("{\"event_id\":\"a\",\"event_type\":\"t\",\"schema_version\":1}", "event_time: required");
    env_bad("{\"event_id\":7}", "event_id: must be a string");
    env_bad("{\"event_id\":\"\"}", "event_id: must not be empty");
    char big[300];
    snprintf(big, sizeof big, "{\"event_id\":\"%0129d\"}", 0);
    env_bad(big, "event_id: longer than 128 bytes");
    snprintf(big, sizeof big, "{\"event_id\":\"%0128d\",\"event_type\":\"t\",\"schema_version\":1,"
                              "\"event_time\":\"2025-01-01T00:00:00Z\"}", 0);
    env_ok(big, &e);
    env_bad("{\"event_type\":\"a b\"}", "event_type: only letters, digits, '_', '-' and '.' allowed");
    env_bad("{\"event_type\":\".x\"}", "event_type: expected 'name' or 'family.name'");
    env_bad("{\"event_type\":\"\"}", "event_type: must not be empty");
    env_bad("{\"schema_version\":1.5}", "schema_version: must be a positive integer or a string");
    env_bad("{\"schema_version\":0}", "schema_version: must be a positive integer or a string");
    env_bad("{\"schema_version\":\"1-0\"}",
            "schema_version: expected N or MODEL-REVISION-ADDITION like \"1-0-0\"");
    env_bad("{\"event_time\":\"2025-02-30T00:00:00Z\"}",
            "event_time: not an RFC 3339 timestamp (like 2025-01-02T03:04:05.678Z)");
    env_bad("{\"event_time\":\"2025-01-01 00:00:00\"}",
            "event_time: not an RFC 3339 timestamp (like 2025-01-02T03:04:05.678Z)");
    env_bad("{\"event_time\":1735689600}", "event_time: must be a string");
    env_bad("{\"sent_at\":\"yesterday\"}",
            "sent_at: not an RFC 3339 timestamp (like 2025-01-02T03:04:05.678Z)");
    env_bad("{\"country\":\"de\"}", "country: expected an ISO 3166-1 alpha-2 code like \"DE\"");
    env_bad("{\"country\":\"DEU\"}", "country: expected an ISO 3166-1 alpha-2 code like \"DE\"");
    env_bad("{\"context\":[]}", "context: must be a JSON object");
    env_bad("{\"payload\":\"x\"}", "payload: must be a JSON object");
    env_bad("{\"entity_id\":null}", "entity_id: must be a string");
    env_bad("{\"subject_id\":5}", "subject_id: must be a string");
    env_bad("{" OKEV "} x", "not JSON: trailing data after the event");
}

static void test_record(void **state)
{
    (void)state;
    const char *raw = "{" OKEV ",\"sent_at\":\"2025-03-04T05:06:17.123Z\",\"payload\":{\"k\":\"\\u00e9\"}}";
    st_envelope e;
    env_ok(raw, &e);
    int64_t recv;
    assert_true(st_rfc3339_parse("2025-03-04T05:06:08.123Z", 24, &recv));
    st_buf b;
    st_buf_init(&b, 0);
    TU_OK(st_envelope_record(&b, raw, strlen(raw), &e, "web", "web_events", recv));
    /* client clock 9 s ahead: corrected = event_time + (received - sent) */
    assert_non_null(strstr(b.data, "\"event_time_corrected\":\"2025-03-04T05:05:58.123000Z\""));
    assert_non_null(strstr(b.data, "\"received_at\":\"2025-03-04T05:06:08.123000Z\""));
    assert_non_null(strstr(b.data, "\"source\":\"web\",\"family\":\"web_events\""));
    /* the client's bytes follow unchanged */
    assert_non_null(strstr(b.data, raw + 1));
    TU_OK(st_json_check(b.data, b.len, 8, &tu_err));
    st_buf_free(&b);

    char ts[32];
    st_rfc3339_format(0, ts);
    assert_string_equal(ts, "1970-01-01T00:00:00.000000Z");
    int64_t us;
    assert_true(st_rfc3339_parse("2024-02-29T23:59:60.5-00:30", 27, &us));
    st_rfc3339_format(us, ts);
    assert_string_equal(ts, "2024-03-01T00:29:59.500000Z");
    assert_false(st_rfc3339_parse("2023-02-29T00:00:00Z", 20, &us));
    assert_false(st_rfc3339_parse("2023-01-01T24:00:00Z", 20, &us));
    assert_false(st_rfc3339_parse("2023-01-01T00:00:00.Z", 21, &us));
    assert_false(st_rfc3339_parse("2023-01-01T00:00:00+0100", 24, &us));
}

static void test_config(void **state)
{
    (void)state;
    setenv("ENV_TEST_KEY_WEB", "k-web", 1);
    const char *y = "collector:\n"
                    "  listen: 0.0.0.0:9000\n"
                    "  event_log: {dir: ./ev, fsync_ms: 7, retention_days: 3}\n"
                    "  sources:\n"
                    "    web: {key_env: ENV_TEST_KEY_WEB, families: [web_events], cors_origins: [\"https://a.example\"]}\n"
                    "    backend: {key_hash: \"sha256:"
                    "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae\", event_types: [order_placed]}\n";
    st_cfg_doc *d;
    TU_OK(st_cfg_load_string("strata.yml", y, strlen(y), &d, &tu_err));
    st_collect_cfg *c;
    TU_OK(st_collect_cfg_load(st_cfg_root(d), "/proj", &c, &tu_err));
    assert_string_equal(c->listen_host, "0.0.0.0");
    assert_int_equal(c->listen_port, 9000);
    assert_string_equal(c->log_dir, "/proj/ev");
    assert_int_equal(c->log.fsync_ms, 7);
    assert_int_equal(c->log.retention_days, 3);
    assert_true(c->durable);
    assert_int_equal(c->n_sources, 2);
    assert_string_equal(c->sources[1].families[0], "backend_events");
    assert_int_equal(c->sources[1].n_event_types, 1);
    char hex[65];
    st_collect_key_hash_hex("foo", hex);
    assert_string_equal(hex, "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae");
    assert_memory_equal(c->sources[1].key_hash, "\x2c\x26\xb4\x6b", 4);
    TU_OK(st_collect_cfg_set_listen(c, "127.0.0.1:0", &tu_err));
    assert_int_equal(c->listen_port, 0);
    st_collect_cfg_free(c);
    st_cfg_doc_free(d);

    struct { const char *yaml, *want; } bad[] = {
        {"collector:\n  bogus: 1\n", "strata.yml:2: collector.bogus"},
        {"collector:\n  event_log: {kind: kafka, brokers: x}\n", "collector.event_log.brokers: unknown key"},
        {"collector:\n  event_log: {fsync_ms: -1}\n", "collector.event_log.fsync_ms: must be between"},
        {"collector:\n  sources:\n    web: {families: [a]}\n", "key_env or key_hash is required"},
        {"collector:\n  sources:\n    web: {key_env: ENV_TEST_UNSET_XYZ}\n", "ENV_TEST_UNSET_XYZ is not set"},
        {"collector:\n  sources:\n    web: {key_hash: abc}\n", "expected sha256:<64 hex digits>"},
        {"collector:\n  sources:\n    web: {key_env: ENV_TEST_KEY_WEB, colour: red}\n", "collector.sources.web.colour"},
        {"collector:\n  sources:\n    a: {key_env: ENV_TEST_KEY_WEB}\n    b: {key_env: ENV_TEST_KEY_WEB}\n", "same key as source 'a'"},
        {"collector:\n  listen: nowhere\n", "expected HOST:PORT"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        TU_OK(st_cfg_load_string("strata.yml", bad[i].yaml, strlen(bad[i].yaml), &d, &tu_err));
        c = NULL;
        st_rc rc = st_collect_cfg_load(st_cfg_root(d), ".", &c, &tu_err);
        st_cfg_doc_free(d);
        if (rc == ST_OK) {
            st_collect_cfg_free(c);
            fail_msg("config %zu accepted", i);
        }
        if (!strstr(tu_err.msg, bad[i].want))
            fail_msg("config %zu: '%s' lacks '%s'", i, tu_err.msg, bad[i].want);
    }
}

static void test_tracker_matches_source(void **state)
{
    (void)state;
    const char *src = getenv("STRATA_SRC");
    assert_non_null(src);
    char *path = st_sprintf("%s/src/collect/tracker.js", src);
    char *js;
    size_t len;
    TU_OK(st_file_read(path, 1 << 20, &js, &len, &tu_err));
    if (strcmp(js, st_tracker_js))
        fail_msg("src/collect/tracker_js.c is stale: regenerate it from tracker.js");
    assert_non_null(strstr(js, "crypto.randomUUID"));
    assert_non_null(strstr(js, "sendBeacon"));
    st_free(js);
    st_free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_envelope),
        cmocka_unit_test(test_record),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_tracker_matches_source),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
