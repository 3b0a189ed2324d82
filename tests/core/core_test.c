/*
 * core_test.c - errors, arenas, buffers, maps, files and YAML config.
 */
#include "testutil.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void test_err_context(void **state)
{
    (void)state;
    st_err e;
    st_err_clear(&e);
    assert_int_equal(st_fail(&e, ST_ERR_PARSE, "bad token at %d", 7), ST_ERR_PARSE);
    st_err_ctx(&e, "file %s", "a.json");
    st_err_ctx(&e, "table %s", "t");
    assert_string_equal(e.msg, "table t: file a.json: bad token at 7");
    assert_int_equal(e.code, ST_ERR_PARSE);
    assert_int_equal(st_fail(NULL, ST_ERR_IO, "x"), ST_ERR_IO);
}

static void test_arena(void **state)
{
    (void)state;
    st_arena *a = st_arena_new(64);
    for (int i = 0; i < 1000; i++) {
        char *s = st_arena_sprintf(a, "row-%d", i);
        assert_non_null(s);
        assert_int_equal(((uintptr_t)s) % 16, 0);
    }
    void *big = st_arena_alloc(a, 100000);
    assert_non_null(big);
    st_arena_reset(a);
    assert_int_equal(st_arena_used(a), 0);
    st_arena_free(a);
}

static void bump(void *p) { (*(int *)p)++; }

static void test_arena_cleanup(void **state)
{
    (void)state;
    st_arena *a = st_arena_new(0);
    int n = 0;
    assert_true(st_arena_cleanup(a, bump, &n));
    assert_true(st_arena_cleanup(a, bump, &n));
    st_arena_reset(a);
    assert_int_equal(n, 2);
    st_arena_reset(a);
    assert_int_equal(n, 2);
    st_arena_free(a);
}

static void test_buf_limit_and_quoting(void **state)
{
    (void)state;
    st_buf b;
    st_buf_init(&b, 8);
    assert_int_equal(st_buf_puts(&b, "12345678"), ST_OK);
    assert_int_equal(st_buf_putc(&b, '9'), ST_ERR_LIMIT);
    assert_int_equal(b.len, 8);
    st_buf_free(&b);
    st_buf_init(&b, 0);
    st_buf_sql_str(&b, "it's");
    st_buf_putc(&b, ' ');
    st_buf_sql_ident(&b, "a\"b");
    st_buf_putc(&b, ' ');
    st_buf_json_str(&b, "q\"\n\x01");
    assert_string_equal(b.data, "'it''s' \"a\"\"b\" \"q\\\"\\n\\u0001\"");
    st_buf_free(&b);
}

static void test_map(void **state)
{
    (void)state;
    st_map *m = st_map_new();
    static int vals[5000];
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        vals[i] = i;
        assert_int_equal(st_map_put(m, key, &vals[i], NULL), ST_OK);
    }
    assert_int_equal(st_map_len(m), 5000);
    for (int i = 0; i < 5000; i += 2) {
        snprintf(key, sizeof key, "k%d", i);
        assert_ptr_equal(st_map_del(m, key), &vals[i]);
    }
    assert_int_equal(st_map_len(m), 2500);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        int *v = st_map_get(m, key);
        if (i % 2)
            assert_int_equal(*v, i);
        else
            assert_null(v);
    }
    void *old = NULL;
    st_map_put(m, "k1", &vals[7], &old);
    assert_ptr_equal(old, &vals[1]);
    size_t it = 0, n = 0;
    while (st_map_next(m, &it, NULL, NULL))
        n++;
    assert_int_equal(n, 2500);
    st_map_free(m);
}

static void test_files(void **state)
{
    (void)state;
    char *dir = tu_tempdir("core");
    char *p = st_path_join(dir, "a/b/c");
    TU_OK(st_mkdirs(p, &tu_err));
    assert_true(st_is_dir(p));
    char *f = st_path_join(p, "x.json");
    TU_OK(st_file_put_if_absent(f, "one", 3, &tu_err));
    st_err e;
    assert_int_equal(st_file_put_if_absent(f, "two", 3, &e), ST_ERR_EXISTS);
    assert_non_null(strstr(e.msg, "x.json"));
    char *data = NULL;
    size_t len = 0;
    TU_OK(st_file_read(f, 100, &data, &len, &tu_err));
    assert_string_equal(data, "one");
    st_free(data);
    TU_OK(st_file_write_atomic(f, "three", 5, &tu_err));
    TU_OK(st_file_read(f, 100, &data, &len, &tu_err));
    assert_string_equal(data, "three");
    st_free(data);
    assert_int_equal(st_file_read(f, 2, &data, &len, &e), ST_ERR_LIMIT);
    char *missing = st_path_join(dir, "nope");
    assert_int_equal(st_file_read(missing, 100, &data, &len, &e), ST_ERR_NOTFOUND);
    assert_non_null(strstr(e.msg, "nope"));
    st_free(missing);
    st_free(f);
    st_free(p);
    tu_rmdir(dir);
}

static void test_cfg(void **state)
{
    (void)state;
    const char *y = "name: acme\nlake: ./lake\nnum: 42\nflag: yes\n"
                    "sources:\n  pg:\n    kind: postgres\n    tables: [a, b]\n";
    st_cfg_doc *d = NULL;
    TU_OK(st_cfg_load_string("strata.yml", y, strlen(y), &d, &tu_err));
    const st_cfg *r = st_cfg_root(d);
    const char *s;
    int64_t n;
    bool b;
    TU_OK(st_cfg_get_str(r, "name", NULL, &s, &tu_err));
    assert_string_equal(s, "acme");
    TU_OK(st_cfg_get_int(r, "num", 0, &n, &tu_err));
    assert_int_equal(n, 42);
    TU_OK(st_cfg_get_bool(r, "flag", false, &b, &tu_err));
    assert_true(b);
    const st_cfg *pg = st_cfg_get(st_cfg_get(r, "sources"), "pg");
    assert_string_equal(st_cfg_path(pg), "sources.pg");
    assert_int_equal(st_cfg_line(pg), 6);
    const st_cfg *tables = st_cfg_get(pg, "tables");
    assert_int_equal(st_cfg_len(tables), 2);
    assert_string_equal(st_cfg_scalar(st_cfg_at(tables, 1)), "b");
    st_err e;
    /* wrong type: error names file, line and key path */
    assert_int_equal(st_cfg_get_int(pg, "kind", 0, &n, &e), ST_ERR_INVALID);
    assert_string_equal(e.msg, "strata.yml:7: sources.pg.kind: expected an integer, found 'postgres'");
    static const char *const allowed[] = {"kind", NULL};
    assert_int_equal(st_cfg_check_keys(pg, allowed, &e), ST_ERR_INVALID);
    assert_non_null(strstr(e.msg, "unknown key 'tables'"));
    st_cfg_doc_free(d);

    const char *bad = "a: 1\nb: [1, 2\n";
    assert_int_equal(st_cfg_load_string("bad.yml", bad, strlen(bad), &d, &e), ST_ERR_PARSE);
    assert_non_null(strstr(e.msg, "bad.yml:"));
    const char *dup = "a: 1\na: 2\n";
    assert_int_equal(st_cfg_load_string("dup.yml", dup, strlen(dup), &d, &e), ST_ERR_PARSE);
    assert_non_null(strstr(e.msg, "dup.yml:2: a: duplicate key"));
}

static void test_alloc_failure(void **state)
{
    (void)state;
    st_mem_fail_after(1);
    assert_null(st_strdup("x"));
    st_arena *a = st_arena_new(0);
    assert_non_null(a);
    st_mem_fail_after(1);
    assert_null(st_arena_alloc(a, 10));
    st_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_context),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_arena_cleanup),
        cmocka_unit_test(test_buf_limit_and_quoting),
        cmocka_unit_test(test_map),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_cfg),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
