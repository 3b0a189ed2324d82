/*
 * project_keys_test.c - one list of top-level strata.yml keys for every
 * module: the scaffold of `strata init` (with its lineage: and
 * orchestration: sections) loads as a project and is accepted by the
 * extractor's config; an unknown top-level key is refused by both, naming
 * the file, line and key.
 */
#include "testutil.h"

#include "strata/extract.h"
#include "strata/project.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void append(const char *dir, const char *text)
{
    char *path = st_path_join(dir, "strata.yml");
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    st_free(path);
}

static st_rc extract(const char *dir, const char *sel)
{
    st_extract_opts o;
    memset(&o, 0, sizeof o);
    o.project_dir = dir;
    char *lake = st_path_join(dir, "lake");
    char *state = st_path_join(dir, "state.db");
    o.lake = lake;
    o.state_path = state;
    st_extract_report *rep = NULL;
    st_rc rc = st_extract_run(&o, sel, &rep, &tu_err);
    st_extract_report_free(rep);
    st_free(lake);
    st_free(state);
    return rc;
}

static void test_init_scaffold_everywhere(void **state)
{
    (void)state;
    const char *bin = getenv("STRATA_BIN");
    if (!bin) {
        printf("SKIP: STRATA_BIN not set\n");
        skip();
    }
    char *root = tu_tempdir("pkeys");
    char *dir = st_path_join(root, "proj");
    char *out = NULL;
    int code = tu_run(&out, "'%s' init '%s' 2>&1", bin, dir);
    if (code != 0)
        fail_msg("strata init: exit %d: %s", code, out ? out : "");
    st_free(out);
    /* a source so that the extractor has something to plan */
    append(dir, "sources:\n  ecb:\n    kind: ecb\n    url: http://127.0.0.1:9/service\n"
                "    series: {exr_m: \"EXR/M.USD.EUR.SP00.A\"}\n");

    st_project *p = NULL;
    TU_OK(st_project_load(dir, &p, &tu_err));
    st_project_free(p);
    /* the extractor no longer trips over lineage: / orchestration: */
    memset(&tu_err, 0, sizeof tu_err);
    st_rc rc = extract(dir, "nosuchsource");
    assert_int_not_equal(rc, ST_OK);
    if (strstr(tu_err.msg, "lineage") || strstr(tu_err.msg, "orchestration") ||
        strstr(tu_err.msg, "unknown key"))
        fail_msg("extract refused the init scaffold: %s", tu_err.msg);
    /* the CLI agrees */
    code = tu_run(&out, "cd '%s' && '%s' extract nosuchsource --project . 2>&1", dir, bin);
    assert_int_not_equal(code, 0);
    if (out && (strstr(out, "lineage") || strstr(out, "orchestration")))
        fail_msg("strata extract refused the init scaffold: %s", out);
    st_free(out);

    /* an unknown top-level key: refused by both, with file:line: key */
    append(dir, "bogus_section: 1\n");
    assert_int_equal(st_project_load(dir, &p, &tu_err), ST_ERR_INVALID);
    assert_non_null(strstr(tu_err.msg, "bogus_section"));
    assert_non_null(strstr(tu_err.msg, "strata.yml:"));
    char *m1 = st_strdup(tu_err.msg);
    assert_int_not_equal(extract(dir, "ecb"), ST_OK);
    assert_non_null(strstr(tu_err.msg, "bogus_section"));
    assert_string_equal(m1, tu_err.msg);
    st_free(m1);
    st_free(dir);
    tu_rmdir(root);
}

static void test_list_covers_modules(void **state)
{
    (void)state;
    const char *need[] = {"name",   "lake",     "state",    "collector", "sources", "silver",
                          "gold",   "schedule", "lineage",  "orchestration", "loader", "pii",
                          "schemas", NULL};
    for (int i = 0; need[i]; i++) {
        bool found = false;
        for (int k = 0; st_project_top_keys[k]; k++)
            found = found || !strcmp(st_project_top_keys[k], need[i]);
        if (!found)
            fail_msg("top-level key %s missing from st_project_top_keys", need[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_scaffold_everywhere),
        cmocka_unit_test(test_list_covers_modules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
