/*
 * registry_test.c - the schema registry: built-in families, YAML schemas,
 * backward compatibility (v1, v2 adds an optional field, v3 changing a type
 * or adding a required field is refused naming the field), lookup rules,
 * recorded versions that must not change.
 */
#include "testutil.h"
#include "strata/load.h"
#include "load/load_int.h"

#include <string.h>

static const char *v1 =
    "family: orders\nevent_type: order_placed\nversion: 1\nfields:\n"
    "  amount: {type: double, required: true}\n"
    "  email: {type: string, classification: pii}\n";
static const char *v2 =
    "family: orders\nevent_type: order_placed\nversion: 2\nfields:\n"
    "  amount: {type: double, required: true}\n"
    "  email: {type: string, classification: pii}\n"
    "  coupon: string\n";

static void test_builtins(void **state)
{
    (void)state;
    st_registry *r = NULL;
    TU_OK(st_registry_new(&r, &tu_err));
    const char *why = NULL;
    int v[3] = {1, 0, 0};
    const st_schema *s = st_registry_find(r, "llm_calls", "chat", v, &why);
    assert_non_null(s);
    assert_string_equal(s->event_type, "*");
    bool saw_prompt = false, saw_model = false;
    for (size_t i = 0; i < s->n_fields; i++) {
        if (!strcmp(s->fields[i].column, "prompt")) {
            saw_prompt = true;
            assert_int_equal(s->fields[i].action, ST_PII_ENCRYPT);
        }
        if (!strcmp(s->fields[i].column, "gen_ai_request_model"))
            saw_model = !strcmp(s->fields[i].name, "gen_ai.request.model");
    }
    assert_true(saw_prompt && saw_model);
    assert_non_null(st_registry_find(r, "web_events", "page_view", v, &why));
    assert_null(st_registry_find(r, "nope", "x", v, &why));
    assert_string_equal(why, "unknown event family");
    TU_OK(st_registry_add_family(r, "nope", &tu_err));
    assert_non_null(st_registry_find(r, "nope", "x", v, &why));
    st_bcol *cols = NULL;
    size_t n = 0;
    TU_OK(st_registry_columns(r, "web_events", &cols, &n, &tu_err));
    assert_true(n >= 10);
    assert_string_equal(cols[n - 1].name, "ip");
    st_free(cols);
    st_registry_free(r);
}

static void test_evolution(void **state)
{
    (void)state;
    st_registry *r = NULL;
    TU_OK(st_registry_new(&r, &tu_err));
    TU_OK(st_registry_add_yaml(r, "orders_v1.yml", v1, strlen(v1), &tu_err));
    TU_OK(st_registry_add_yaml(r, "orders_v2.yml", v2, strlen(v2), &tu_err));
    st_bcol *cols = NULL;
    size_t n = 0;
    TU_OK(st_registry_columns(r, "orders", &cols, &n, &tu_err));
    assert_int_equal(n, 3);
    assert_string_equal(cols[2].name, "coupon");
    st_free(cols);

    /* v3: type change */
    const char *v3 = "family: orders\nevent_type: order_placed\nversion: 3\nfields:\n"
                     "  amount: {type: string, required: true}\n";
    st_err e;
    assert_int_equal(st_registry_add_yaml(r, "v3.yml", v3, strlen(v3), &e), ST_ERR_INVALID);
    assert_non_null(strstr(e.msg, "'amount'"));
    assert_non_null(strstr(e.msg, "changes type from double to string"));
    /* v3: a new required field */
    const char *v3b = "family: orders\nevent_type: order_placed\nversion: 3\nfields:\n"
                      "  amount: {type: double, required: true}\n"
                      "  store: {type: string, required: true}\n";
    assert_int_equal(st_registry_add_yaml(r, "v3b.yml", v3b, strlen(v3b), &e), ST_ERR_INVALID);
    assert_non_null(strstr(e.msg, "new required field 'store'"));
    /* optional -> required is refused too */
    const char *v3c = "family: orders\nevent_type: order_placed\nversion: 3\nfields:\n"
                      "  coupon: {type: string, required: true}\n";
    assert_int_equal(st_registry_add_yaml(r, "v3c.yml", v3c, strlen(v3c), &e), ST_ERR_INVALID);
    assert_non_null(strstr(e.msg, "'coupon'"));
    /* removing a field is backward compatible; compatibility none allows anything */
    const char *v3d = "family: orders\nevent_type: order_placed\nversion: 3\nfields:\n"
                      "  amount: {type: double, required: true}\n";
    TU_OK(st_registry_add_yaml(r, "v3d.yml", v3d, strlen(v3d), &tu_err));
    /* a same version twice, or an older one, is refused */
    assert_int_equal(st_registry_add_yaml(r, "again.yml", v2, strlen(v2), &e), ST_ERR_EXISTS);
    assert_int_equal(st_registry_add_yaml(r, "again.yml", v3d, strlen(v3d), &e), ST_ERR_EXISTS);
    const char *t2 = "family: orders\nevent_type: t\nversion: 2\n";
    const char *t1 = "family: orders\nevent_type: t\nversion: 1\n";
    TU_OK(st_registry_add_yaml(r, "t2.yml", t2, strlen(t2), &tu_err));
    assert_int_equal(st_registry_add_yaml(r, "t1.yml", t1, strlen(t1), &e), ST_ERR_INVALID);
    assert_non_null(strstr(e.msg, "older than the registered version 2"));

    const char *why = NULL;
    int v[3] = {2, 0, 0};
    const st_schema *s = st_registry_find(r, "orders", "order_placed", v, &why);
    assert_non_null(s);
    assert_string_equal(s->version_text, "2");
    v[0] = 9;
    assert_null(st_registry_find(r, "orders", "order_placed", v, &why));
    assert_string_equal(why, "unknown schema version");
    v[0] = 1;
    assert_null(st_registry_find(r, "orders", "refund", v, &why));
    assert_string_equal(why, "unknown event type");
    st_registry_free(r);
}

static void test_yaml_errors(void **state)
{
    (void)state;
    static const struct { const char *yml, *want; } cases[] = {
        {"family: f\nevent_type: t\nversion: 1\nfields: {a: {type: strin}}\n", "unknown type 'strin'"},
        {"family: f\nevent_type: t\nversion: x\n", "version"},
        {"family: f\nevent_type: t\nversion: 1\ncolour: red\n", "colour"},
        {"family: f\nevent_type: t\nversion: 1\nfields: {a: {type: string, pii: shred}}\n", "unknown pii action"},
        {"family: f\nevent_type: t\nversion: 1\nfields: {a: {type: string, classification: top}}\n", "unknown classification"},
        {"family: f\nevent_type: t\nversion: 1\nfields: {event_id: string}\n", "reserved column"},
        {"family: f\nevent_type: t\nversion: 1\nfields: {a: {type: string, from: body.x}}\n", "must start with payload."},
        {"family: f\nevent_type: t\nversion: 1\nfields: {a.b: string, a_b: long}\n", "one column"},
        {"- 1\n- 2\n", "expected a schema map"},
        {"schemas: [{family: f, event_type: t, version: 1}, {family: f, event_type: t, version: 1}]\n", "already registered"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        st_registry *r = NULL;
        TU_OK(st_registry_new(&r, &tu_err));
        st_err e;
        st_err_clear(&e);
        st_rc rc = st_registry_add_yaml(r, "s.yml", cases[i].yml, strlen(cases[i].yml), &e);
        if (rc == ST_OK || !strstr(e.msg, cases[i].want))
            fail_msg("case %zu: rc %d msg '%s', want '%s'", i, rc, e.msg, cases[i].want);
        st_registry_free(r);
    }
    /* SchemaVer and several schemas per file */
    st_registry *r = NULL;
    TU_OK(st_registry_new(&r, &tu_err));
    const char *y = "schemas:\n"
                    "  - {family: f, event_type: t, version: 1-0-0, fields: {a: long}}\n"
                    "  - {family: f, event_type: t, version: 1-0-1, fields: {a: long, b: json}}\n";
    TU_OK(st_registry_add_yaml(r, "s.yml", y, strlen(y), &tu_err));
    const char *why;
    int v[3] = {1, 0, 1};
    assert_non_null(st_registry_find(r, "f", "t", v, &why));
    st_registry_free(r);
}

static void test_state_records_versions(void **state)
{
    (void)state;
    char *dir = tu_tempdir("registry");
    char *db = st_path_join(dir, "state.db");
    st_state *s = NULL;
    TU_OK(st_state_open(db, &s, &tu_err));
    st_registry *r = NULL;
    TU_OK(st_registry_new(&r, &tu_err));
    TU_OK(st_registry_add_yaml(r, "v1.yml", v1, strlen(v1), &tu_err));
    TU_OK(st_registry_sync_state(r, s, &tu_err));
    TU_OK(st_registry_sync_state(r, s, &tu_err));   /* idempotent */
    st_registry_free(r);
    /* the same version with another definition is refused */
    const char *v1x = "family: orders\nevent_type: order_placed\nversion: 1\nfields:\n"
                      "  amount: {type: double, required: true}\n";
    TU_OK(st_registry_new(&r, &tu_err));
    TU_OK(st_registry_add_yaml(r, "v1.yml", v1x, strlen(v1x), &tu_err));
    st_err e;
    assert_int_equal(st_registry_sync_state(r, s, &e), ST_ERR_INVALID);
    assert_non_null(strstr(e.msg, "changed after it was registered"));
    st_registry_free(r);
    st_state_close(s);
    st_free(db);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtins),
        cmocka_unit_test(test_evolution),
        cmocka_unit_test(test_yaml_errors),
        cmocka_unit_test(test_state_records_versions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
