/*
 * loader_test.c - the loader on an event log written directly: dedup in one
 * batch, across batches and after a restart; late flag and event-date
 * partitions; every quarantine reason; replay after a crash between commits
 * writes nothing twice; schema evolution v1 -> v2 (new nullable column) and
 * an incompatible v3 refused; PII actions in bronze; erasure; tricky JSON
 * (duplicate keys, escapes, deep nesting) reads the same on both parse paths;
 * staging on two threads gives the same tables as on one.
 */
#include "testutil.h"
#include "strata/collect.h"
#include "strata/delta.h"
#include "strata/load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct env {
    char *dir;
    char *log_dir;
    st_evlog *log;
    st_loader_cfg *cfg;
} env;

static void env_open(env *e, const char *extra_yaml)
{
    e->dir = tu_tempdir("loader");
    char *yml = st_sprintf("name: t\n"
                           "collector:\n"
                           "  event_log: {dir: ./eventlog}\n"
                           "  sources:\n"
                           "    web: {key_hash: \"sha256:00\", families: [web_events]}\n"
                           "    llm: {key_hash: \"sha256:00\", families: [llm_calls]}\n"
                           "    backend: {key_hash: \"sha256:00\", families: [backend_events, orders]}\n"
                           "%s",
                           extra_yaml ? extra_yaml : "");
    st_cfg_doc *doc = NULL;
    TU_OK(st_cfg_load_string("strata.yml", yml, strlen(yml), &doc, &tu_err));
    TU_OK(st_loader_cfg_load(st_cfg_root(doc), e->dir, &e->cfg, &tu_err));
    st_cfg_doc_free(doc);
    st_free(yml);
    e->log_dir = st_path_join(e->dir, "eventlog");
    st_evlog_opts o = {.dir = e->log_dir};
    TU_OK(st_evlog_open(&o, &e->log, &tu_err));
}

static void env_close(env *e)
{
    st_evlog_close(e->log);
    st_loader_cfg_free(e->cfg);
    st_free(e->log_dir);
    tu_rmdir(e->dir);
}

/* Appends one event as the collector would store it (source as given). */
static void put(env *e, const char *source, const char *default_family, const char *json)
{
    st_envelope ev;
    st_err err;
    if (st_envelope_parse(json, strlen(json), &ev, &err))
        fail_msg("bad test event %s: %s", json, err.msg);
    st_buf rec, fr;
    st_buf_init(&rec, 0);
    st_buf_init(&fr, 0);
    TU_OK(st_envelope_record(&rec, json, strlen(json), &ev, source,
                             ev.family[0] ? ev.family : default_family, st_now_us()));
    TU_OK(st_evlog_frame(&fr, rec.data, rec.len));
    uint64_t ticket;
    TU_OK(st_evlog_append(e->log, fr.data, fr.len, 1, NULL, &ticket, &tu_err));
    TU_OK(st_evlog_wait(e->log, ticket, &tu_err));
    st_buf_free(&rec);
    st_buf_free(&fr);
}

/* Appends a record as is (to reach the loader's own checks). */
static void put_raw(env *e, const char *rec)
{
    st_buf fr;
    st_buf_init(&fr, 0);
    TU_OK(st_evlog_frame(&fr, rec, strlen(rec)));
    uint64_t ticket;
    TU_OK(st_evlog_append(e->log, fr.data, fr.len, 1, NULL, &ticket, &tu_err));
    TU_OK(st_evlog_wait(e->log, ticket, &tu_err));
    st_buf_free(&fr);
}

static st_load_stats load(env *e)
{
    st_loader *l = NULL;
    st_load_stats st = {0};
    TU_OK(st_loader_open(e->cfg, &l, &tu_err));
    TU_OK(st_loader_run_once(l, &st, &tu_err));
    st_loader_close(l);
    return st;
}

static int64_t q64(env *e, const char *sql) { return tu_lake_i64(e->cfg->lake, sql); }

static char *qstr(env *e, const char *sql) { return tu_lake_str(e->cfg->lake, sql); }

static void now_rfc(int64_t delta_s, char out[32])
{
    st_rfc3339_format(st_now_us() + delta_s * 1000000, out);
}

#define BK(id, t) "{\"event_id\":\"" id "\",\"event_type\":\"login\",\"schema_version\":1,\"event_time\":\"%s\",\"payload\":{\"u\":" #t "}}"

static void test_dedup(void **state)
{
    (void)state;
    env e;
    env_open(&e, "loader: {batch_events: 3}\n");
    char t[32], ev[256];
    now_rfc(-60, t);
    /* b1 twice in one batch (positions 0,1), b2 then b1 again in the next batch */
    const char *ids[] = {"b1", "b1", "b2", "b3", "b1", "b2", "b4"};
    for (size_t i = 0; i < 7; i++) {
        snprintf(ev, sizeof ev, "{\"event_id\":\"%s\",\"event_type\":\"login\",\"schema_version\":1,"
                 "\"event_time\":\"%s\",\"payload\":{\"i\":%zu}}", ids[i], t, i);
        put(&e, "backend", "backend_events", ev);
    }
    st_load_stats st = load(&e);
    assert_int_equal(st.read, 7);
    assert_int_equal(st.batches, 3);
    assert_int_equal(st.duplicates, 3);
    assert_int_equal(st.loaded, 4);
    assert_int_equal(q64(&e, "SELECT count(*) FROM bronze_backend_events"), 4);
    assert_int_equal(q64(&e, "SELECT count(DISTINCT event_id) FROM bronze_backend_events"), 4);
    /* the first copy wins */
    char *p = qstr(&e, "SELECT properties FROM bronze_backend_events WHERE event_id = 'b1'");
    assert_string_equal(p, "{\"i\":0}");
    st_free(p);
    assert_int_equal(q64(&e, "SELECT count(*) FROM raw_events"), 7);
    /* after a restart (new loader, cold sets): duplicates still dropped */
    snprintf(ev, sizeof ev, BK("b3", 9), t);
    put(&e, "backend", "backend_events", ev);
    snprintf(ev, sizeof ev, BK("b5", 9), t);
    put(&e, "backend", "backend_events", ev);
    st = load(&e);
    assert_int_equal(st.read, 2);
    assert_int_equal(st.duplicates, 1);
    assert_int_equal(st.loaded, 1);
    assert_int_equal(q64(&e, "SELECT count(*) FROM bronze_backend_events"), 5);
    /* the ids are kept as hash runs beside the state database, not in memory */
    char *sd = st_strdup(e.cfg->state_path);
    *strrchr(sd, '/') = 0;
    char *runs = st_sprintf("%s/dedup/backend_events", sd);
    char *pos = st_sprintf("%s/dedup/position", sd);
    assert_true(st_is_dir(runs));
    /* runs that do not match the checkpoint are rebuilt from bronze */
    TU_OK(st_file_write_atomic(pos, "1\n", 2, &tu_err));
    snprintf(ev, sizeof ev, BK("b5", 10), t);
    put(&e, "backend", "backend_events", ev);
    st = load(&e);
    assert_int_equal(st.duplicates, 1);
    assert_int_equal(st.loaded, 0);
    assert_int_equal(q64(&e, "SELECT count(*) FROM bronze_backend_events"), 5);
    st_free(sd);
    st_free(runs);
    st_free(pos);
    /* the same id in another family is another event */
    snprintf(ev, sizeof ev, "{\"event_id\":\"b1\",\"event_type\":\"page\",\"schema_version\":1,"
             "\"event_time\":\"%s\"}", t);
    put(&e, "web", "web_events", ev);
    st = load(&e);
    assert_int_equal(st.loaded, 1);
    env_close(&e);
}

static void test_late(void **state)
{
    (void)state;
    env e;
    env_open(&e, "loader: {late_horizon_s: 3600}\n");
    char t[32], ev[256];
    now_rfc(-10 * 86400, t);   /* 10 days ago: outside the dedup window too */
    snprintf(ev, sizeof ev, BK("old", 1), t);
    put(&e, "backend", "backend_events", ev);
    now_rfc(-60, t);
    snprintf(ev, sizeof ev, BK("new", 1), t);
    put(&e, "backend", "backend_events", ev);
    /* sent_at corrects the clock but the date comes from event_time */
    snprintf(ev, sizeof ev, "{\"event_id\":\"skew\",\"event_type\":\"login\",\"schema_version\":1,"
             "\"event_time\":\"2025-01-01T23:59:00Z\",\"sent_at\":\"2025-01-01T23:59:30Z\"}");
    put(&e, "backend", "backend_events", ev);
    st_load_stats st = load(&e);
    assert_int_equal(st.late, 2);
    assert_int_equal(q64(&e, "SELECT count(*) FROM bronze_backend_events WHERE event_id='old' AND _late"), 1);
    assert_int_equal(q64(&e, "SELECT count(*) FROM bronze_backend_events WHERE event_id='new' AND NOT _late"), 1);
    assert_int_equal(q64(&e, "SELECT count(*) FROM bronze_backend_events WHERE event_id='old' "
                             "AND event_date = (now() - INTERVAL 10 DAY)::DATE "
                             "AND received_at > event_time"), 1);
    assert_int_equal(q64(&e, "SELECT count(*) FROM bronze_backend_events WHERE event_id='skew' "
                             "AND event_date = DATE '2025-01-01' AND event_time_corrected > "
                             "TIMESTAMPTZ '2025-06-01'"), 1);
    /* partitions on disk by event date */
    char *part = st_sprintf("%s/bronze/backend_events/event_date=2025-01-01", e.cfg->lake);
    assert_true(st_is_dir(part));
    st_free(part);
    env_close(&e);
}

/* Writes schemas/<name> under the test's project folder. */
static void write_schema(env *e, const char *name, const char *yaml)
{
    char *sd = st_path_join(e->dir, "schemas");
    TU_OK(st_mkdirs(sd, &tu_err));
    char *f = st_path_join(sd, name);
    TU_OK(st_file_write_atomic(f, yaml, strlen(yaml), &tu_err));
    st_free(f);
    st_free(sd);
}

static void test_quarantine(void **state)
{
    (void)state;
    env e;
    env_open(&e, "loader: {schemas_dir: schemas}\n");
    const char *y = "family: orders\nevent_type: order_placed\nversion: 1\nfields:\n"
                    "  amount: {type: double, required: true}\n  qty: long\n";
    write_schema(&e, "orders.yml", y);
    char t[32], ev[512];
    now_rfc(-5, t);
    struct { const char *json; const char *reason; } cases[] = {
        {"{\"event_id\":\"q1\",\"event_type\":\"orders.refund\",\"schema_version\":1,\"event_time\":\"%s\"}",
         "unknown event type: orders.refund version 1"},
        {"{\"event_id\":\"q2\",\"event_type\":\"orders.order_placed\",\"schema_version\":7,\"event_time\":\"%s\"}",
         "unknown schema version: orders.order_placed version 7"},
        {"{\"event_id\":\"q3\",\"event_type\":\"orders.order_placed\",\"schema_version\":1,\"event_time\":\"%s\",\"payload\":{}}",
         "field 'amount': required but missing"},
        {"{\"event_id\":\"q4\",\"event_type\":\"orders.order_placed\",\"schema_version\":1,\"event_time\":\"%s\",\"payload\":{\"amount\":\"ten\"}}",
         "field 'amount': expected double, got string"},
        {"{\"event_id\":\"q5\",\"event_type\":\"orders.order_placed\",\"schema_version\":1,\"event_time\":\"%s\",\"payload\":{\"amount\":1,\"qty\":1.5}}",
         "field 'qty': expected long, got number"},
        {"{\"event_id\":\"q6\",\"event_type\":\"chat\",\"schema_version\":1,\"event_time\":\"%s\",\"payload\":{\"gen_ai.provider.name\":\"openai\"}}",
         "field 'gen_ai.operation.name': required but missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(ev, sizeof ev, cases[i].json, t);
        put(&e, i == 5 ? "llm" : "backend", i == 5 ? "llm_calls" : "orders", ev);
    }
    put_raw(&e, "this is not json");
    put_raw(&e, "{\"event_id\":\"q8\",\"family\":\"mystery\",\"event_type\":\"x\",\"schema_version\":1,"
                "\"event_time\":\"2025-01-01T00:00:00Z\",\"received_at\":\"2025-01-01T00:00:01Z\"}");
    put_raw(&e, "{\"event_id\":\"q9\",\"family\":\"orders\",\"event_type\":\"order_placed\","
                "\"schema_version\":1,\"event_time\":\"2025-01-01T00:00:00Z\",\"payload\":[1]}");
    snprintf(ev, sizeof ev, "{\"event_id\":\"ok1\",\"event_type\":\"orders.order_placed\","
             "\"schema_version\":1,\"event_time\":\"%s\",\"payload\":{\"amount\":2,\"qty\":3,\"zz\":1}}", t);
    put(&e, "backend", "orders", ev);
    st_load_stats st = load(&e);
    assert_int_equal(st.quarantined, 9);
    assert_int_equal(st.loaded, 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *sql = st_sprintf("SELECT reason FROM bronze_quarantine WHERE event_id = 'q%zu'", i + 1);
        char *r = qstr(&e, sql);
        if (!r || strcmp(r, cases[i].reason))
            fail_msg("q%zu: reason '%s', want '%s'", i + 1, r ? r : "(none)", cases[i].reason);
        st_free(r);
        st_free(sql);
    }
    char *r = qstr(&e, "SELECT reason FROM bronze_quarantine WHERE event_id IS NULL");
    assert_non_null(strstr(r, "record is not a JSON object"));
    st_free(r);
    r = qstr(&e, "SELECT reason FROM bronze_quarantine WHERE event_id = 'q8'");
    assert_string_equal(r, "unknown event family: mystery.x version 1");
    st_free(r);
    r = qstr(&e, "SELECT reason FROM bronze_quarantine WHERE event_id = 'q9'");
    assert_string_equal(r, "payload: expected an object");
    st_free(r);
    /* the schema checked against is named; the raw record is kept encrypted */
    r = qstr(&e, "SELECT schema_ref FROM bronze_quarantine WHERE event_id = 'q4'");
    assert_non_null(strstr(r, "orders.order_placed v1"));
    assert_non_null(strstr(r, "orders.yml"));
    st_free(r);
    assert_int_equal(q64(&e, "SELECT count(*) FROM bronze_quarantine WHERE record_enc LIKE 'enc:v1:%'"), 9);
    r = qstr(&e, "SELECT envelope FROM bronze_quarantine WHERE event_id = 'q4'");
    assert_non_null(strstr(r, "\"event_type\":\"orders.order_placed\""));
    assert_null(strstr(r, "payload"));
    st_free(r);
    r = qstr(&e, "SELECT _extra FROM bronze_orders WHERE event_id = 'ok1'");
    assert_string_equal(r, "{\"payload\":{\"zz\":1}}");
    st_free(r);
    env_close(&e);
}

static void test_replay(void **state)
{
    (void)state;
    env e;
    env_open(&e, "loader: {batch_events: 4, dedup_window_days: 0}\n");
    char t[32], ev[256];
    now_rfc(-5, t);
    for (int i = 0; i < 10; i++) {
        snprintf(ev, sizeof ev, "{\"event_id\":\"r%d\",\"event_type\":\"login\",\"schema_version\":1,"
                 "\"event_time\":\"%s\"}", i, t);
        put(&e, "backend", "backend_events", ev);
    }
    st_load_stats st = load(&e);
    assert_int_equal(st.loaded, 10);
    /* a crash after the commits of the last batch but before the checkpoint
     * moved, and before the raw table got its commit: put the checkpoint back
     * and drop the raw table's last commit */
    st_state *s = NULL;
    TU_OK(st_state_open(e.cfg->state_path, &s, &tu_err));
    TU_OK(st_state_exec(s, "UPDATE load_checkpoint SET seq = 8", &tu_err));
    st_state_close(s);
    int64_t v = -1;
    char *raw = st_sprintf("%s/raw/events", e.cfg->lake);
    TU_OK(st_delta_latest_version(raw, &v, &tu_err));
    char *last = st_sprintf("%s/_delta_log/%020lld.json", raw, (long long)v);
    assert_int_equal(remove(last), 0);
    int64_t raw_before = q64(&e, "SELECT count(*) FROM raw_events");
    assert_int_equal(raw_before, 8);
    for (int i = 10; i < 13; i++) {
        snprintf(ev, sizeof ev, "{\"event_id\":\"r%d\",\"event_type\":\"login\",\"schema_version\":1,"
                 "\"event_time\":\"%s\"}", i, t);
        put(&e, "backend", "backend_events", ev);
    }
    st = load(&e);
    /* batch [8,10) again, cut exactly there: bronze skips it by its txn
     * version (dedup is off here, so only the txn guards), raw writes it;
     * then [10,13) */
    assert_int_equal(st.read, 5);
    assert_int_equal(st.skipped_replay, 1);
    assert_int_equal(st.duplicates, 0);
    assert_int_equal(st.loaded, 3);
    assert_int_equal(q64(&e, "SELECT count(*) FROM bronze_backend_events"), 13);
    assert_int_equal(q64(&e, "SELECT count(DISTINCT event_id) FROM bronze_backend_events"), 13);
    assert_int_equal(q64(&e, "SELECT count(*) FROM raw_events"), 13);
    assert_int_equal(q64(&e, "SELECT count(DISTINCT seq) FROM raw_events"), 13);
    /* a checkpoint lost entirely: everything is replayed, nothing doubles */
    TU_OK(st_state_open(e.cfg->state_path, &s, &tu_err));
    TU_OK(st_state_exec(s, "DELETE FROM load_checkpoint", &tu_err));
    st_state_close(s);
    memset(&st, 0, sizeof st);
    st = load(&e);
    assert_int_equal(st.read, 13);
    assert_int_equal(st.skipped_replay, 2);
    assert_int_equal(q64(&e, "SELECT count(*) FROM bronze_backend_events"), 13);
    assert_int_equal(q64(&e, "SELECT count(*) FROM raw_events"), 13);
    st_free(last);
    st_free(raw);
    env_close(&e);
}

static void test_evolution(void **state)
{
    (void)state;
    env e;
    env_open(&e, NULL);
    char *sd = st_path_join(e.dir, "schemas");
    TU_OK(st_mkdirs(sd, &tu_err));
    char *f1 = st_path_join(sd, "orders_v1.yml"), *f2 = st_path_join(sd, "orders_v2.yml"),
         *f3 = st_path_join(sd, "orders_v3.yml");
    const char *y1 = "family: orders\nevent_type: order_placed\nversion: 1\nfields:\n"
                     "  amount: {type: double, required: true}\n";
    const char *y2 = "family: orders\nevent_type: order_placed\nversion: 2\nfields:\n"
                     "  amount: {type: double, required: true}\n  coupon: string\n";
    const char *y3 = "family: orders\nevent_type: order_placed\nversion: 3\nfields:\n"
                     "  amount: {type: long, required: true}\n  coupon: string\n";
    TU_OK(st_file_write_atomic(f1, y1, strlen(y1), &tu_err));
    char t[32], ev[300];
    now_rfc(-5, t);
    snprintf(ev, sizeof ev, "{\"event_id\":\"v1\",\"event_type\":\"orders.order_placed\",\"schema_version\":1,"
             "\"event_time\":\"%s\",\"payload\":{\"amount\":1.5,\"coupon\":\"X\"}}", t);
    put(&e, "backend", "orders", ev);
    st_load_stats st = load(&e);
    assert_int_equal(st.loaded, 1);
    /* coupon is unknown to v1: kept in _extra */
    char *r = qstr(&e, "SELECT _extra FROM bronze_orders");
    assert_string_equal(r, "{\"payload\":{\"coupon\":\"X\"}}");
    st_free(r);
    TU_OK(st_file_write_atomic(f2, y2, strlen(y2), &tu_err));
    snprintf(ev, sizeof ev, "{\"event_id\":\"v2\",\"event_type\":\"orders.order_placed\",\"schema_version\":2,"
             "\"event_time\":\"%s\",\"payload\":{\"amount\":2,\"coupon\":\"SPRING\"}}", t);
    put(&e, "backend", "orders", ev);
    st = load(&e);
    assert_int_equal(st.loaded, 1);
    r = qstr(&e, "SELECT coupon FROM bronze_orders WHERE event_id = 'v2'");
    assert_string_equal(r, "SPRING");
    st_free(r);
    assert_int_equal(q64(&e, "SELECT count(*) FROM bronze_orders WHERE event_id = 'v1' AND coupon IS NULL"), 1);
    assert_int_equal(q64(&e, "SELECT count(*) FROM bronze_orders WHERE _extra IS NULL"), 1);
    /* v3 changes a type: the loader refuses to start and names the field */
    TU_OK(st_file_write_atomic(f3, y3, strlen(y3), &tu_err));
    st_loader *l = NULL;
    st_err err;
    assert_int_equal(st_loader_open(e.cfg, &l, &err), ST_ERR_INVALID);
    assert_non_null(strstr(err.msg, "'amount'"));
    assert_non_null(strstr(err.msg, "orders_v3.yml"));
    /* editing a registered version is refused too */
    remove(f3);
    const char *y2x = "family: orders\nevent_type: order_placed\nversion: 2\nfields:\n"
                      "  amount: {type: double, required: true}\n  coupon: string\n  note: string\n";
    TU_OK(st_file_write_atomic(f2, y2x, strlen(y2x), &tu_err));
    assert_int_equal(st_loader_open(e.cfg, &l, &err), ST_ERR_INVALID);
    assert_non_null(strstr(err.msg, "changed after it was registered"));
    st_free(f1);
    st_free(f2);
    st_free(f3);
    st_free(sd);
    env_close(&e);
}

static void test_pii_and_erase(void **state)
{
    (void)state;
    env e;
    env_open(&e, "pii: {fields: {web_events.title: drop}}\n");
    char t[32], ev[1024];
    now_rfc(-5, t);
    snprintf(ev, sizeof ev,
             "{\"event_id\":\"p1\",\"event_type\":\"chat\",\"schema_version\":1,\"event_time\":\"%s\","
             "\"subject_id\":\"alice\",\"payload\":{\"gen_ai.operation.name\":\"chat\","
             "\"gen_ai.provider.name\":\"openai\",\"gen_ai.usage.input_tokens\":12,"
             "\"prompt\":\"PROMPT-PLAINTEXT-ALICE\",\"response\":\"RESPONSE-ALICE\","
             "\"note\":\"write to alice@example.com\"}}", t);
    put(&e, "llm", "llm_calls", ev);
    snprintf(ev, sizeof ev,
             "{\"event_id\":\"p2\",\"event_type\":\"chat\",\"schema_version\":1,\"event_time\":\"%s\","
             "\"subject_id\":\"bob\",\"payload\":{\"gen_ai.operation.name\":\"chat\","
             "\"gen_ai.provider.name\":\"openai\",\"prompt\":\"PROMPT-PLAINTEXT-BOB\"}}", t);
    put(&e, "llm", "llm_calls", ev);
    snprintf(ev, sizeof ev,
             "{\"event_id\":\"w1\",\"event_type\":\"page\",\"schema_version\":1,\"event_time\":\"%s\","
             "\"subject_id\":\"alice\",\"context\":{\"ip\":\"10.1.2.3\",\"page\":{\"title\":\"T\"}},"
             "\"payload\":{\"properties\":{\"card\":\"4111 1111 1111 1111\"}}}", t);
    put(&e, "web", "web_events", ev);
    load(&e);
    char *r = qstr(&e, "SELECT prompt FROM bronze_llm_calls WHERE event_id = 'p1'");
    assert_true(!strncmp(r, "enc:v1:", 7));
    /* the loader's key store decrypts it */
    st_state *s = NULL;
    st_keystore *ks = NULL;
    uint8_t mk[32];
    TU_OK(st_keystore_master_key(e.cfg->master_key_env, e.cfg->master_key_file, false, mk, &tu_err));
    TU_OK(st_state_open(e.cfg->state_path, &s, &tu_err));
    TU_OK(st_keystore_open(s, mk, &ks, &tu_err));
    st_buf p;
    st_buf_init(&p, 0);
    TU_OK(st_keystore_decrypt(ks, "alice", r, &p, &tu_err));
    assert_string_equal(p.data, "PROMPT-PLAINTEXT-ALICE");
    char *r2 = qstr(&e, "SELECT _extra FROM bronze_llm_calls WHERE event_id = 'p1'");
    assert_string_equal(r2, "{\"payload\":{\"note\":\"write to <email>\"}}");
    st_free(r2);
    r2 = qstr(&e, "SELECT ip FROM bronze_web_events");
    assert_int_equal(strlen(r2), 64);
    st_free(r2);
    r2 = qstr(&e, "SELECT properties FROM bronze_web_events");
    assert_string_equal(r2, "{\"card\":\"<card>\"}");
    st_free(r2);
    assert_int_equal(q64(&e, "SELECT count(*) FROM bronze_web_events WHERE title IS NULL"), 1);
    assert_int_equal(q64(&e, "SELECT gen_ai_usage_input_tokens FROM bronze_llm_calls WHERE event_id='p1'"), 12);

    /* erase alice: key gone, rows gone from bronze and raw; bob untouched */
    int64_t rows = 0;
    TU_OK(st_load_erase(e.cfg, "alice", &rows, &tu_err));
    assert_int_equal(rows, 4);   /* llm + web in bronze, two in raw */
    st_keystore_close(ks);
    TU_OK(st_keystore_open(s, mk, &ks, &tu_err));
    st_err err;
    st_buf_reset(&p);
    assert_int_equal(st_keystore_decrypt(ks, "alice", r, &p, &err), ST_ERR_NOTFOUND);
    assert_int_equal(q64(&e, "SELECT count(*) FROM bronze_llm_calls"), 1);
    assert_int_equal(q64(&e, "SELECT count(*) FROM bronze_web_events"), 0);
    assert_int_equal(q64(&e, "SELECT count(*) FROM raw_events WHERE subject_id = 'alice'"), 0);
    /* a later event of the erased subject keeps no encrypted content */
    snprintf(ev, sizeof ev,
             "{\"event_id\":\"p3\",\"event_type\":\"chat\",\"schema_version\":1,\"event_time\":\"%s\","
             "\"subject_id\":\"alice\",\"payload\":{\"gen_ai.operation.name\":\"chat\","
             "\"gen_ai.provider.name\":\"openai\",\"prompt\":\"AGAIN\"}}", t);
    put(&e, "llm", "llm_calls", ev);
    load(&e);
    assert_int_equal(q64(&e, "SELECT count(*) FROM bronze_llm_calls WHERE event_id='p3' AND prompt IS NULL"), 1);
    st_buf_free(&p);
    st_free(r);
    st_keystore_close(ks);
    st_state_close(s);
    env_close(&e);
}

/* Records read by the flat reader and by its jansson fallback (nesting
 * deeper than it takes) load the same: duplicate keys resolve to the last
 * value, escapes and surrogate pairs decode, JSON fields and _extra print as
 * json_dumps prints them. */
static void test_tricky_records(void **state)
{
    (void)state;
    env e;
    env_open(&e, "loader: {schemas_dir: schemas}\n");
    const char *y = "family: orders\nevent_type: order_placed\nversion: 1\nfields:\n"
                    "  amount: {type: double, required: true}\n  qty: long\n  note: string\n"
                    "  meta: json\n";
    write_schema(&e, "orders.yml", y);
    char deep[400];
    size_t n = 0;
    for (int i = 0; i < 80; i++)
        deep[n++] = '[';
    deep[n++] = '7';
    for (int i = 0; i < 80; i++)
        deep[n++] = ']';
    deep[n] = 0;
    const char *head = "{\"received_at\":\"2025-01-01T00:00:01Z\",\"source\":\"backend\","
                       "\"family\":\"orders\",\"event_type\":\"order_placed\",\"schema_version\":1,"
                       "\"event_time\":\"2025-01-01T00:00:00Z\",";
    for (int fallback = 0; fallback < 2; fallback++) {
        char *rec = st_sprintf(
            "%s\"event_id\":\"dup-first\",\"event_id\":\"t%d\",\"payload\":{\"amount\":1,"
            "\"qty\":2,\"amount\":5.5,\"note\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\"\\t/\","
            "\"meta\":{\"b\":[1,2.5,true,null,-0,1e-7],\"a\":\"x\\ny\",\"b\":{\"c\":0.0031}},"
            "\"zz\":1,\"y\":\"\\u0001\",\"zz\":%s}}",
            head, fallback, fallback ? deep : "3");
        put_raw(&e, rec);
        st_free(rec);
    }
    st_load_stats st = load(&e);
    assert_int_equal(st.quarantined, 0);
    assert_int_equal(st.loaded, 2);
    assert_int_equal(q64(&e, "SELECT count(*) FROM bronze_orders WHERE event_id = 'dup-first'"), 0);
    for (int fallback = 0; fallback < 2; fallback++) {
        char *sql = st_sprintf("SELECT concat_ws('|', amount, qty, note, meta) FROM bronze_orders "
                               "WHERE event_id = 't%d'", fallback);
        char *r = qstr(&e, sql);
        assert_string_equal(r, "5.5|2|caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\"\t/|"
                               "{\"b\":{\"c\":0.0030999999999999999},\"a\":\"x\\ny\"}");
        st_free(r);
        st_free(sql);
        sql = st_sprintf("SELECT _extra FROM bronze_orders WHERE event_id = 't%d'", fallback);
        r = qstr(&e, sql);
        char *want = st_sprintf("{\"payload\":{\"zz\":%s,\"y\":\"\\u0001\"}}", fallback ? deep : "3");
        assert_string_equal(r, want);
        st_free(want);
        st_free(r);
        st_free(sql);
    }
    env_close(&e);
}

/* The events of test_two_workers: three families, duplicates at several
 * distances (inside one half of a round, across the halves, across
 * batches), late events, quarantined ones.  A copy with another event date
 * is another row (the runs are per date), the same in both modes. */
static void put_mix(env *e, int n)
{
    char now[32], old[32], ev[1024];
    now_rfc(-60, now);
    now_rfc(-4 * 86400, old);
    for (int i = 0; i < n; i++) {
        int id = i % 7 == 3 && i >= 600 ? i - 600 : i % 11 == 5 ? i - 3 : i;
        const char *t = i % 13 == 0 ? old : now;
        const char *ver = i % 97 == 50 ? "7" : "1";   /* no version 7: quarantined */
        switch (id % 3) {
        case 0:
            snprintf(ev, sizeof ev, "{\"event_id\":\"e%d\",\"event_type\":\"login\","
                     "\"schema_version\":%s,\"event_time\":\"%s\",\"payload\":{\"i\":%d}}",
                     id, ver, t, i);
            put(e, "backend", "backend_events", ev);
            break;
        case 1:
            snprintf(ev, sizeof ev, "{\"event_id\":\"e%d\",\"event_type\":\"%s\","
                     "\"schema_version\":%s,\"event_time\":\"%s\",\"context\":{\"page\":"
                     "{\"path\":\"/p/%d\"}},\"payload\":{\"properties\":{\"copy\":%d}}}",
                     id, i % 89 == 7 ? "nope" : "page", ver, t, id, i);
            put(e, "web", "web_events", ev);
            break;
        default:
            snprintf(ev, sizeof ev, "{\"event_id\":\"e%d\",\"event_type\":\"chat\","
                     "\"schema_version\":%s,\"event_time\":\"%s\",\"subject_id\":\"s%d\","
                     "\"payload\":{\"gen_ai.operation.name\":\"chat\",\"gen_ai.provider.name\":"
                     "\"openai\",\"gen_ai.usage.input_tokens\":%s,\"prompt\":\"ask %d\"}}",
                     id, ver, t, id % 40, i % 83 == 9 ? "\"many\"" : "12", i);
            put(e, "llm", "llm_calls", ev);
            break;
        }
    }
}

static void test_two_workers(void **state)
{
    (void)state;
    env one, two;
    env_open(&one, "loader: {batch_events: 1000, stage_threads: 1}\n");
    env_open(&two, "loader: {batch_events: 1000, stage_threads: 2}\n");
    put_mix(&one, 2600);
    put_mix(&two, 2600);
    st_load_stats a = load(&one), b = load(&two);
    assert_int_equal(a.read, 2600);
    assert_int_equal(b.read, a.read);
    assert_int_equal(b.loaded, a.loaded);
    assert_int_equal(b.duplicates, a.duplicates);
    assert_int_equal(b.quarantined, a.quarantined);
    assert_int_equal(b.late, a.late);
    assert_true(a.duplicates > 300);
    assert_true(a.quarantined > 5);
    assert_true(a.late > 100);
    static const char *const sql[] = {
        "SELECT string_agg(concat_ws('|', event_id, properties, event_date, _late, _extra), ',' "
        "ORDER BY event_id, event_date) FROM bronze_backend_events",
        "SELECT string_agg(concat_ws('|', event_id, path, properties, event_date, _late), ',' "
        "ORDER BY event_id, event_date) FROM bronze_web_events",
        "SELECT string_agg(concat_ws('|', event_id, subject_id, gen_ai_usage_input_tokens, "
        "left(prompt, 7), event_date, _late), ',' ORDER BY event_id, event_date) FROM bronze_llm_calls",
        "SELECT string_agg(concat_ws('|', event_id, family, reason), ',' ORDER BY event_id, reason) "
        "FROM bronze_quarantine",
        "SELECT string_agg(concat_ws('|', seq, event_id, family), ',' ORDER BY seq) FROM raw_events",
    };
    for (size_t i = 0; i < sizeof sql / sizeof *sql; i++) {
        char *x = qstr(&one, sql[i]), *y = qstr(&two, sql[i]);
        if (strcmp(x, y))
            fail_msg("query %zu differs between one and two staging threads", i);
        assert_true(strlen(x) > 100);
        st_free(x);
        st_free(y);
    }
    /* the first copy wins: e0 came back at i=600 and i=... with other payloads */
    char *p = qstr(&two, "SELECT properties FROM bronze_backend_events WHERE event_id = 'e0'");
    assert_string_equal(p, "{\"i\":0}");
    st_free(p);
    p = qstr(&two, "SELECT properties FROM bronze_web_events WHERE event_id = 'e604'");
    assert_string_equal(p, "{\"copy\":604}");
    st_free(p);
    env_close(&one);
    env_close(&two);
}

/* One table of a batch cannot commit (its log is a file): the batch fails
 * whatever the other lane committed, and once the table is repaired the
 * retry completes it with nothing twice. */
static void test_lane_failure(void **state)
{
    (void)state;
    env e;
    env_open(&e, "loader: {batch_events: 1000, stage_threads: 2}\n");
    put_mix(&e, 300);
    /* one loader for both passes: the second finds the tables known and
     * fails only when it commits */
    st_loader *l = NULL;
    st_load_stats st = {0};
    TU_OK(st_loader_open(e.cfg, &l, &tu_err));
    TU_OK(st_loader_run_once(l, &st, &tu_err));
    int64_t web1 = q64(&e, "SELECT count(*) FROM bronze_web_events");
    assert_true(web1 > 0);
    char now[32], ev[512];
    now_rfc(-30, now);
    for (int i = 0; i < 400; i++) {
        snprintf(ev, sizeof ev, "{\"event_id\":\"f%d\",\"event_type\":\"%s\",\"schema_version\":1,"
                 "\"event_time\":\"%s\",\"payload\":{\"i\":%d}}", i % 300, i % 2 ? "page" : "login",
                 now, i);
        put(&e, i % 2 ? "web" : "backend", i % 2 ? "web_events" : "backend_events", ev);
    }
    char *log = st_sprintf("%s/bronze/web_events/_delta_log", e.cfg->lake);
    char *aside = st_sprintf("%s.aside", log);
    assert_int_equal(rename(log, aside), 0);
    TU_OK(st_file_write_atomic(log, "x", 1, &tu_err));
    memset(&st, 0, sizeof st);
    st_err err;
    assert_int_not_equal(st_loader_run_once(l, &st, &err), ST_OK);
    assert_non_null(strstr(err.msg, "bronze.web_events"));
    st_loader_close(l);
    assert_int_equal(remove(log), 0);
    assert_int_equal(rename(aside, log), 0);
    assert_int_equal(q64(&e, "SELECT count(*) FROM bronze_web_events"), web1);
    st = load(&e);
    assert_int_equal(st.read, 400);
    /* 200 sent to each family, 150 ids each (i % 300 keeps the parity) */
    assert_int_equal(q64(&e, "SELECT count(*) FROM bronze_web_events WHERE event_id LIKE 'f%'"), 150);
    assert_int_equal(q64(&e, "SELECT count(*) FROM bronze_backend_events WHERE event_id LIKE 'f%'"), 150);
    assert_int_equal(q64(&e, "SELECT count(*) - count(DISTINCT event_id) FROM bronze_web_events"), 0);
    assert_int_equal(q64(&e, "SELECT count(*) - count(DISTINCT event_id) FROM bronze_backend_events"), 0);
    assert_int_equal(q64(&e, "SELECT count(*) FROM raw_events"), 700);
    assert_int_equal(q64(&e, "SELECT count(DISTINCT seq) FROM raw_events"), 700);
    st_free(log);
    st_free(aside);
    env_close(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dedup),
        cmocka_unit_test(test_late),
        cmocka_unit_test(test_quarantine),
        cmocka_unit_test(test_replay),
        cmocka_unit_test(test_evolution),
        cmocka_unit_test(test_pii_and_erase),
        cmocka_unit_test(test_tricky_records),
        cmocka_unit_test(test_two_workers),
        cmocka_unit_test(test_lane_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
