/*
 * dedup_test.c - the on-disk hash runs of the loader's deduplication: lookups
 * across runs, merging keeps a date to few runs, runs survive a reopen, a
 * damaged run makes the date reseed instead of missing ids, dates leave the
 * window, and a reset forgets everything.
 */
#include "testutil.h"
#include "load/load_int.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static uint64_t hid(long i)
{
    char b[32];
    int n = snprintf(b, sizeof b, "ev-%ld", i);
    return st_id_hash(b, (size_t)n);
}

static void add_range(st_dedup *dd, int32_t day, long from, long to)
{
    uint64_t h[4096];
    size_t n = 0;
    for (long i = from; i < to; i++)
        h[n++] = hid(i);
    TU_OK(st_dedup_add(dd, day, h, n, &tu_err));
}

static void test_runs(void **state)
{
    (void)state;
    char *dir = tu_tempdir("dedup");
    char *root = st_path_join(dir, "fam");
    st_dedup *dd = NULL;
    TU_OK(st_dedup_open(root, &dd, &tu_err));
    bool seeded = true;
    TU_OK(st_dedup_day(dd, 20000, &seeded, &tu_err));
    assert_false(seeded);
    /* 100 batches of 100 ids: merging keeps the date to O(log n) runs */
    for (long b = 0; b < 100; b++)
        add_range(dd, 20000, b * 100, b * 100 + 100);
    assert_true(st_dedup_runs(dd, 20000) <= 8);
    for (long i = 0; i < 10000; i++)
        assert_true(st_dedup_has(dd, 20000, hid(i)));
    long false_hits = 0;
    for (long i = 10000; i < 20000; i++)
        false_hits += st_dedup_has(dd, 20000, hid(i));
    assert_int_equal(false_hits, 0);
    /* another date is independent */
    assert_false(st_dedup_has(dd, 20001, hid(5)));
    add_range(dd, 20001, 0, 0);   /* seeded, empty */
    TU_OK(st_dedup_day(dd, 20001, &seeded, &tu_err));
    assert_true(seeded);
    assert_false(st_dedup_has(dd, 20001, hid(5)));
    st_dedup_close(dd);

    /* reopen: the runs are on disk */
    dd = NULL;
    TU_OK(st_dedup_open(root, &dd, &tu_err));
    TU_OK(st_dedup_day(dd, 20000, &seeded, &tu_err));
    assert_true(seeded);
    assert_true(st_dedup_has(dd, 20000, hid(4242)));
    assert_false(st_dedup_has(dd, 20000, hid(14242)));
    /* new runs sort after the old ones and still merge */
    add_range(dd, 20000, 10000, 10100);
    assert_true(st_dedup_has(dd, 20000, hid(10050)));
    assert_true(st_dedup_has(dd, 20000, hid(50)));
    /* the window: dates before 20001 go, from memory and disk */
    TU_OK(st_dedup_forget_before(dd, 20001, &tu_err));
    assert_false(st_dedup_has(dd, 20000, hid(50)));
    char *d20000 = st_path_join(root, "20000");
    assert_false(st_path_exists(d20000));
    TU_OK(st_dedup_day(dd, 20001, &seeded, &tu_err));
    assert_true(seeded);
    /* reset forgets every date */
    TU_OK(st_dedup_reset(dd, &tu_err));
    TU_OK(st_dedup_day(dd, 20001, &seeded, &tu_err));
    assert_false(seeded);
    st_dedup_close(dd);
    st_free(d20000);
    st_free(root);
    tu_rmdir(dir);
}

static void test_damaged_run(void **state)
{
    (void)state;
    char *dir = tu_tempdir("dedup");
    st_dedup *dd = NULL;
    TU_OK(st_dedup_open(dir, &dd, &tu_err));
    add_range(dd, 7, 0, 1000);
    st_dedup_close(dd);
    /* truncate the run as a torn write would */
    char *ddir = st_path_join(dir, "7");
    DIR *d = opendir(ddir);
    assert_non_null(d);
    struct dirent *de;
    int cut = 0;
    while ((de = readdir(d)))
        if (!strncmp(de->d_name, "run-", 4)) {
            char *p = st_path_join(ddir, de->d_name);
            assert_int_equal(truncate(p, 100), 0);
            st_free(p);
            cut++;
        }
    closedir(d);
    assert_int_equal(cut, 1);
    dd = NULL;
    TU_OK(st_dedup_open(dir, &dd, &tu_err));
    bool seeded = true;
    TU_OK(st_dedup_day(dd, 7, &seeded, &tu_err));
    /* not trusted: the caller must reseed from bronze */
    assert_false(seeded);
    assert_false(st_path_exists(ddir));
    st_dedup_close(dd);
    st_free(ddir);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs),
        cmocka_unit_test(test_damaged_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
