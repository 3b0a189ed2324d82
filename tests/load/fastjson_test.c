/*
 * fastjson_test.c - the loader's flat JSON reader against jansson, the
 * reference it replaces on the hot path: for a corpus of tricky records
 * (escapes, unicode, surrogate pairs, nesting, duplicate keys, numbers at
 * the edges, huge values, malformed text) it must accept nothing jansson
 * rejects, accept the ordinary cases itself, read the same member values and
 * print exactly what json_dumps prints; what it refuses must come out the
 * same through the jansson conversion.
 */
#include "testutil.h"
#include "load/fastjson.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FAST: fastjson must accept it; JANSSON: fastjson may refuse, jansson
 * accepts; BAD: both reject. */
enum { FAST, JANSSON, BAD };

typedef struct tcase {
    int expect;
    const char *text;
} tcase;

static const tcase cases[] = {
    {FAST, "{}"},
    {FAST, "[]"},
    {FAST, " \t\r\n{ \"a\" : 1 , \"b\" : [ ] } \n"},
    {FAST, "{\"event_id\":\"e-1\",\"payload\":{\"gen_ai.request.model\":\"gpt-4o\",\"n\":3}}"},
    /* escapes, every short form and \u forms, '/' unescaped on output */
    {FAST, "{\"s\":\"q\\\"b\\\\s\\/f\\bf\\fn\\nr\\rt\\t\"}"},
    {FAST, "{\"s\":\"\\u0001\\u001f\\u007f\\u00e9\\u20AC\\u2028\"}"},
    /* raw UTF-8 of every length, and a surrogate pair (U+1F600) */
    {FAST, "{\"s\":\"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\",\"t\":\"\\ud83d\\ude00\"}"},
    {FAST, "{\"\\u00e9k\\\"ey\":\"v\",\"\":\"empty key\"}"},
    /* duplicate keys: the last value counts, at the first key's place */
    {FAST, "{\"a\":1,\"b\":2,\"a\":3}"},
    {FAST, "{\"p\":{\"x\":[1,{\"y\":null}],\"x\":true,\"z\":{\"k\":1,\"k\":{\"d\":2}}}}"},
    /* numbers */
    {FAST, "{\"i\":0,\"n\":-0,\"m\":-1,\"big\":9223372036854775807,\"small\":-9223372036854775808}"},
    {FAST, "{\"r\":0.0031,\"e\":1e300,\"E\":1E-7,\"f\":100.0,\"g\":1e22,\"h\":-0.0,\"u\":1e-400,"
           "\"d\":1.5e-320,\"x\":2.5e+3,\"y\":123.456e-2}"},
    {FAST, "[1,2.5,\"x\",true,false,null,[[]],{}]"},
    {FAST, "{\"deep\":[[[[[[[[[[[[[[[[[[[[{\"a\":[[[[1]]]]}]]]]]]]]]]]]]]]]]]]]}"},
    /* beyond fastjson's limits, still valid */
    {JANSSON, "{\"long_number\":1.00000000000000000000000000000000000000000000000000000000000000001}"},
    /* malformed: both reject */
    {BAD, ""},
    {BAD, "   "},
    {BAD, "1"},
    {BAD, "\"just a string\""},
    {BAD, "{\"a\":1}x"},
    {BAD, "{\"a\":1,}"},
    {BAD, "[1,]"},
    {BAD, "{\"a\" 1}"},
    {BAD, "{'a':1}"},
    {BAD, "{\"a\":01}"},
    {BAD, "{\"a\":1.}"},
    {BAD, "{\"a\":.5}"},
    {BAD, "{\"a\":-}"},
    {BAD, "{\"a\":1e}"},
    {BAD, "{\"a\":+1}"},
    {BAD, "{\"a\":9223372036854775808}"},
    {BAD, "{\"a\":-9223372036854775809}"},
    {BAD, "{\"a\":1e400}"},
    {BAD, "{\"a\":NaN}"},
    {BAD, "{\"a\":tru}"},
    {BAD, "{\"a\":nul}"},
    {BAD, "{\"a\":\"\\u0000\"}"},
    {BAD, "{\"a\":\"\\ud83d\"}"},
    {BAD, "{\"a\":\"\\ud83dx\"}"},
    {BAD, "{\"a\":\"\\ud83d\\u0041\"}"},
    {BAD, "{\"a\":\"\\ude00\"}"},
    {BAD, "{\"a\":\"\\u12G4\"}"},
    {BAD, "{\"a\":\"\\x41\"}"},
    {BAD, "{\"a\":\"tab\there\"}"},
    {BAD, "{\"a\":\"\xc0\x80\"}"},           /* overlong NUL */
    {BAD, "{\"a\":\"\xed\xa0\x80\"}"},       /* UTF-8 encoded surrogate */
    {BAD, "{\"a\":\"\xf4\x90\x80\x80\"}"},   /* past U+10FFFF */
    {BAD, "{\"a\":\"\xe2\x82\"}"},           /* truncated sequence */
    {BAD, "{\"a\":\"\x80\"}"},
    {BAD, "{\"a\":\"unterminated}"},
    {BAD, "{\"a\":[1,2}"},
    {BAD, "{\"a\":{\"b\":1]}"},
    {BAD, "\xef\xbb\xbf{}"},                 /* a byte order mark */
};

static char *jansson_dump(json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static char *fj_dump_text(const st_fj *d, int i)
{
    st_buf b;
    st_buf_init(&b, 0);
    assert_int_equal(st_fj_dump(d, i, &b), ST_OK);
    return st_buf_take(&b);
}

/* Every member of every object reads as jansson reads it. */
static void same_members(const st_fj *d, int node, json_t *v)
{
    if (json_is_object(v)) {
        assert_int_equal(d->n[node].type, ST_FJ_OBJ);
        const char *k;
        json_t *m;
        json_object_foreach(v, k, m) {
            int x = st_fj_get(d, node, k, strlen(k));
            assert_true(x > node);
            same_members(d, x, m);
        }
        /* and nothing more: the distinct keys are jansson's keys */
        size_t distinct = 0;
        for (int m2 = node + 1; m2 < (int)d->n[node].end; m2 = st_fj_next(d, m2))
            distinct += st_fj_member(d, node, m2) >= 0;
        assert_int_equal(distinct, json_object_size(v));
    } else if (json_is_array(v)) {
        assert_int_equal(d->n[node].type, ST_FJ_ARR);
        assert_int_equal(d->n[node].len, json_array_size(v));
        int m = node + 1;
        for (size_t i = 0; i < json_array_size(v); i++, m = st_fj_next(d, m))
            same_members(d, m, json_array_get(v, i));
    } else if (json_is_string(v)) {
        assert_int_equal(d->n[node].type, ST_FJ_STR);
        assert_int_equal(d->n[node].len, json_string_length(v));
        assert_memory_equal(st_fj_str(d, node), json_string_value(v), json_string_length(v));
        assert_int_equal(st_fj_str(d, node)[d->n[node].len], 0);
    } else if (json_is_integer(v)) {
        assert_int_equal(d->n[node].type, ST_FJ_INT);
        assert_true(d->n[node].v.i == (int64_t)json_integer_value(v));
    } else if (json_is_real(v)) {
        assert_int_equal(d->n[node].type, ST_FJ_REAL);
        double a = d->n[node].v.d, b = json_real_value(v);
        assert_memory_equal(&a, &b, sizeof a);   /* bit for bit, -0.0 too */
    } else if (json_is_true(v)) {
        assert_int_equal(d->n[node].type, ST_FJ_TRUE);
    } else if (json_is_false(v)) {
        assert_int_equal(d->n[node].type, ST_FJ_FALSE);
    } else {
        assert_int_equal(d->n[node].type, ST_FJ_NULL);
    }
}

static void check_text(st_fj *d, const char *text, size_t len, int expect)
{
    json_error_t jerr;
    json_t *v = json_loadb(text, len, 0, &jerr);
    bool fast = st_fj_parse(d, text, len);
    if (fast && !v)
        fail_msg("fastjson accepted what jansson rejects (%s): %.*s", jerr.text, (int)len, text);
    if (expect == FAST && !fast)
        fail_msg("fastjson refused an ordinary record: %.*s", (int)len, text);
    if (expect == BAD && v)
        fail_msg("jansson accepted a case listed as malformed: %.*s", (int)len, text);
    if (expect == JANSSON) {
        assert_non_null(v);
        assert_false(fast);   /* the case is there to exercise the fallback */
    }
    if (!v)
        return;
    char *want = jansson_dump(v);
    assert_non_null(want);
    if (!fast)
        TU_OK(st_fj_from_jansson(d, v, &tu_err));
    char *got = fj_dump_text(d, 0);
    assert_string_equal(got, want);
    same_members(d, 0, v);
    st_free(got);
    /* the conversion path prints and reads the same */
    TU_OK(st_fj_from_jansson(d, v, &tu_err));
    got = fj_dump_text(d, 0);
    assert_string_equal(got, want);
    same_members(d, 0, v);
    st_free(got);
    free(want);
    json_decref(v);
}

static void test_corpus(void **state)
{
    (void)state;
    st_fj d;
    st_fj_init(&d);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_text(&d, cases[i].text, strlen(cases[i].text), cases[i].expect);
    /* an embedded NUL byte is malformed, not the end of the text */
    check_text(&d, "{\"a\":\"x\0y\"}", 11, BAD);
    check_text(&d, "{\"a\":1}\0", 8, BAD);
    st_fj_free(&d);
}

/* Deeper than ST_FJ_MAX_DEPTH: refused by fastjson, read through jansson. */
static void test_deep(void **state)
{
    (void)state;
    st_buf b;
    st_buf_init(&b, 0);
    st_buf_puts(&b, "{\"a\":");
    for (int i = 0; i < 200; i++)
        st_buf_puts(&b, "[");
    st_buf_puts(&b, "7");
    for (int i = 0; i < 200; i++)
        st_buf_puts(&b, "]");
    st_buf_puts(&b, "}");
    st_fj d;
    st_fj_init(&d);
    assert_false(st_fj_parse(&d, b.data, b.len));
    check_text(&d, b.data, b.len, JANSSON);
    st_fj_free(&d);
    st_buf_free(&b);
}

static void huge(st_fj *d, int keys_mod, int expect)
{
    st_buf b;
    st_buf_init(&b, 0);
    st_buf_puts(&b, "{\"big\":\"");
    for (int i = 0; i < 100000; i++)
        st_buf_puts(&b, i % 7 ? "abcdefghi\\n" : "\xc3\xa9\\u00e9\\ud83d\\ude00");
    st_buf_puts(&b, "\",\"obj\":{");
    for (int i = 0; i < 3000; i++)
        st_buf_printf(&b, "%s\"k%d\":%d.5", i ? "," : "", i % keys_mod, i);
    st_buf_puts(&b, "}}");
    check_text(d, b.data, b.len, expect);
    st_buf_free(&b);
}

/* Huge values: a 1 MB string with escapes and a 3000-member object; with
 * repeated keys that object goes through jansson (linear, where resolving
 * duplicates pairwise would be quadratic). */
static void test_huge(void **state)
{
    (void)state;
    st_fj d;
    st_fj_init(&d);
    huge(&d, 3000, FAST);
    huge(&d, 2500, JANSSON);
    st_fj_free(&d);
}

/* Reuse: a long record then a short one leaves nothing of the first. */
static void test_reuse(void **state)
{
    (void)state;
    st_fj d;
    st_fj_init(&d);
    const char *a = "{\"x\":\"a long value that fills the pool\",\"y\":[1,2,3,4,5,6]}";
    const char *b = "{\"x\":\"s\"}";
    assert_true(st_fj_parse(&d, a, strlen(a)));
    assert_true(st_fj_parse(&d, b, strlen(b)));
    assert_int_equal(d.n_nodes, 2);
    int x = st_fj_get(&d, 0, "x", 1);
    assert_string_equal(st_fj_str(&d, x), "s");
    assert_int_equal(st_fj_get(&d, 0, "y", 1), -1);
    static const char *const skip[] = {"x"};
    st_buf out;
    st_buf_init(&out, 0);
    TU_OK(st_fj_dump_except(&d, 0, skip, 1, &out));
    assert_string_equal(out.data, "{}");
    st_buf_free(&out);
    st_fj_free(&d);
    st_fj_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_deep),
        cmocka_unit_test(test_huge),
        cmocka_unit_test(test_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
