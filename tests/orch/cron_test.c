/*
 * cron_test.c - cron parsing and next-fire computation: steps, ranges,
 * lists, names, macros, day-of-month / day-of-week OR semantics, month
 * and leap-year edges, and rejected expressions.
 */
#include "testutil.h"

#include "strata/orch.h"

#include <string.h>
#include <time.h>


static int64_t at(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
    return (int64_t)timegm(&tm) * 1000;
}

static int64_t next_of(const char *expr, int64_t after)
{
    st_cron c;
    TU_OK(st_cron_parse(expr, &c, &tu_err));
    int64_t n = 0;
    TU_OK(st_cron_next(&c, after, &n, &tu_err));
    return n;
}

static void test_steps_and_ranges(void **state)
{
    (void)state;
    /* every 15 minutes, 9-17h, Monday to Friday.  2026-01-02 is a Friday. */
    const char *e = "*/15 9-17 * * 1-5";
    assert_int_equal(next_of(e, at(2026, 1, 2, 9, 0)), at(2026, 1, 2, 9, 15));
    assert_int_equal(next_of(e, at(2026, 1, 2, 9, 7)), at(2026, 1, 2, 9, 15));
    assert_int_equal(next_of(e, at(2026, 1, 2, 17, 45)), at(2026, 1, 5, 9, 0)); /* skips the weekend */
    assert_int_equal(next_of(e, at(2026, 1, 2, 8, 59)), at(2026, 1, 2, 9, 0));
    /* strictly after: a fire time itself is not returned again */
    assert_int_equal(next_of("0 * * * *", at(2026, 3, 1, 10, 0)), at(2026, 3, 1, 11, 0));
    /* range with a step, and a start with a step */
    assert_int_equal(next_of("10-50/20 * * * *", at(2026, 3, 1, 10, 31)), at(2026, 3, 1, 10, 50));
    assert_int_equal(next_of("5/20 * * * *", at(2026, 3, 1, 10, 26)), at(2026, 3, 1, 10, 45));
    /* lists */
    assert_int_equal(next_of("0 6,18 * * *", at(2026, 3, 1, 7, 0)), at(2026, 3, 1, 18, 0));
}

static void test_month_edges(void **state)
{
    (void)state;
    /* first of every month at midnight */
    assert_int_equal(next_of("0 0 1 * *", at(2026, 1, 31, 23, 59)), at(2026, 2, 1, 0, 0));
    assert_int_equal(next_of("0 0 1 * *", at(2026, 12, 15, 0, 0)), at(2027, 1, 1, 0, 0));
    /* the 31st skips months without one */
    assert_int_equal(next_of("0 12 31 * *", at(2026, 4, 1, 0, 0)), at(2026, 5, 31, 12, 0));
    /* 29 February: next leap year */
    assert_int_equal(next_of("0 0 29 2 *", at(2026, 1, 1, 0, 0)), at(2028, 2, 29, 0, 0));
    /* never: 30 February */
    st_cron c;
    TU_OK(st_cron_parse("0 0 30 2 *", &c, &tu_err));
    int64_t n = 0;
    assert_int_equal(st_cron_next(&c, at(2026, 1, 1, 0, 0), &n, &tu_err), ST_ERR_NOTFOUND);
}

static void test_dom_dow_or(void **state)
{
    (void)state;
    /* both restricted: the 13th OR any Friday.  2026-02-06 is a Friday. */
    const char *e = "0 0 13 * 5";
    assert_int_equal(next_of(e, at(2026, 2, 1, 0, 0)), at(2026, 2, 6, 0, 0));
    assert_int_equal(next_of(e, at(2026, 2, 6, 0, 0)), at(2026, 2, 13, 0, 0)); /* also a Friday */
    assert_int_equal(next_of(e, at(2026, 2, 13, 0, 0)), at(2026, 2, 20, 0, 0));
    /* day-of-month star: only the weekday counts (AND with *) */
    assert_int_equal(next_of("0 0 * * 1", at(2026, 2, 1, 0, 0)), at(2026, 2, 2, 0, 0));
    /* a stepped star still counts as unrestricted (Vixie cron) */
    st_cron c;
    TU_OK(st_cron_parse("0 0 */2 * 1", &c, &tu_err));
    assert_true(c.dom_star);
    assert_false(c.dow_star);
    /* Monday 2026-02-02 is day 2 (even: not in 1,3,5...); 2026-02-09 is day 9 (odd) */
    assert_int_equal(next_of("0 0 */2 * 1", at(2026, 2, 1, 0, 0)), at(2026, 2, 9, 0, 0));
    /* Sunday as 0 and as 7 */
    assert_int_equal(next_of("0 0 * * 0", at(2026, 2, 2, 0, 0)), at(2026, 2, 8, 0, 0));
    assert_int_equal(next_of("0 0 * * 7", at(2026, 2, 2, 0, 0)), at(2026, 2, 8, 0, 0));
}

static void test_names_and_macros(void **state)
{
    (void)state;
    assert_int_equal(next_of("0 17 * * mon-fri", at(2026, 1, 3, 0, 0)), at(2026, 1, 5, 17, 0));
    assert_int_equal(next_of("0 0 1 jan,jul *", at(2026, 2, 1, 0, 0)), at(2026, 7, 1, 0, 0));
    assert_int_equal(next_of("0 0 1 JAN *", at(2026, 2, 1, 0, 0)), at(2027, 1, 1, 0, 0));
    assert_int_equal(next_of("@daily", at(2026, 2, 1, 10, 0)), at(2026, 2, 2, 0, 0));
    assert_int_equal(next_of("@hourly", at(2026, 2, 1, 10, 0)), at(2026, 2, 1, 11, 0));
    assert_int_equal(next_of("@monthly", at(2026, 2, 1, 10, 0)), at(2026, 3, 1, 0, 0));
    assert_int_equal(next_of("@weekly", at(2026, 2, 1, 10, 0)), at(2026, 2, 8, 0, 0));
    assert_int_equal(next_of("@yearly", at(2026, 2, 1, 10, 0)), at(2027, 1, 1, 0, 0));
    st_cron c;
    TU_OK(st_cron_parse("*/15 9-17 * * 1-5", &c, &tu_err));
    assert_true(st_cron_matches(&c, at(2026, 1, 2, 9, 45)));
    assert_false(st_cron_matches(&c, at(2026, 1, 2, 9, 46)));
    assert_false(st_cron_matches(&c, at(2026, 1, 3, 9, 45)));  /* Saturday */
}

static void test_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {"",          "* * * *",     "* * * * * *", "60 * * * *",
                                      "* 24 * * *", "* * 0 * *",  "* * 32 * *",  "* * * 13 *",
                                      "* * * * 8", "5-1 * * * *", "*/0 * * * *", "a * * * *",
                                      "1,,2 * * * *", "1, * * * *", "@often",    "* * * foo *",
                                      "1- * * * *", "*/ * * * *", NULL};
    for (size_t i = 0; bad[i]; i++) {
        st_cron c;
        st_err e;
        st_err_clear(&e);
        st_rc rc = st_cron_parse(bad[i], &c, &e);
        if (rc == ST_OK)
            fail_msg("cron '%s' was accepted", bad[i]);
        assert_int_equal(rc, ST_ERR_PARSE);
        assert_true(strlen(e.msg) > 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps_and_ranges), cmocka_unit_test(test_month_edges),
        cmocka_unit_test(test_dom_dow_or),       cmocka_unit_test(test_names_and_macros),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
