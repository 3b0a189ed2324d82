/*
 * maintain_test.c - optimize (fewer files, same rows), vacuum (dry run,
 * retention refusal, deletes only unreferenced old files, time travel to a
 * vacuumed version fails clearly), automatic checkpoints every 10 commits
 * with _last_checkpoint, and log cleanup that keeps what versions need.
 */
#include "testutil.h"
#include "delta_validate.h"
#include "strata/delta.h"

#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <dirent.h>

static st_engine *eng;
static char *dir;

static int setup(void **state)
{
    (void)state;
    eng = tu_engine();
    dir = tu_tempdir("dmaint");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    st_engine_close(eng);
    tu_rmdir(dir);
    return 0;
}

static char *mk_table(const char *name, const char *part)
{
    char *p = st_path_join(dir, name);
    st_delta_schema *s = NULL;
    TU_OK(st_delta_schema_from_ddl("id int, p string, v string", &s, &tu_err));
    const char *pb[] = {part};
    st_delta_create_opts o = {.partition_by = pb, .n_partition_by = part ? 1 : 0};
    TU_OK(st_delta_create(p, s, &o, &tu_err));
    st_delta_schema_free(s);
    return p;
}

static char *q_str(const char *table, int64_t version, const char *sql)
{
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(eng, table, version, &s, &tu_err));
    TU_OK(st_delta_register_view(eng, "t", s, &tu_err));
    char *v = NULL;
    TU_OK(st_engine_query_str(eng, sql, &v, &tu_err));
    st_delta_snapshot_free(s);
    return v;
}

static size_t n_files(const char *table)
{
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(eng, table, -1, &s, &tu_err));
    size_t n = s->n_files;
    st_delta_snapshot_free(s);
    return n;
}

#define DIGEST "SELECT md5(string_agg(id::VARCHAR || '|' || p || '|' || coalesce(v, '-'), ',' ORDER BY id)) FROM t"

static void test_optimize(void **state)
{
    (void)state;
    char *t = mk_table("opt", "p");
    for (int i = 0; i < 6; i++) {
        char *sql = st_sprintf("SELECT %d * 10 + i::INT AS id, 'p' || (i %% 2) AS p, 'v' || i AS v FROM range(10) r(i)", i);
        TU_OK(st_delta_write(eng, t, sql, NULL, NULL, &tu_err));
        st_free(sql);
    }
    assert_int_equal(n_files(t), 12);
    char *before = q_str(t, -1, DIGEST);
    const char *z[] = {"v"};
    st_delta_optimize_opts o = {.zorder_by = z, .n_zorder_by = 1};
    st_delta_result r;
    TU_OK(st_delta_optimize(eng, t, &o, &r, &tu_err));
    assert_true(r.version > 0);
    assert_int_equal(r.files_removed, 12);
    assert_int_equal(n_files(t), 2);
    char *after = q_str(t, -1, DIGEST);
    assert_string_equal(before, after);
    /* dataChange=false on both sides */
    char *p = st_sprintf("%s/_delta_log/%020lld.json", t, (long long)r.version);
    char *c = NULL;
    size_t len;
    TU_OK(st_file_read(p, 1 << 24, &c, &len, &tu_err));
    assert_null(strstr(c, "\"dataChange\":true"));
    assert_non_null(strstr(c, "\"operation\":\"OPTIMIZE\""));
    st_free(c);
    st_free(p);
    /* nothing left to compact: no commit */
    TU_OK(st_delta_optimize(eng, t, &o, &r, &tu_err));
    assert_int_equal(r.version, -1);
    TU_OK(st_test_delta_validate(t, eng, &tu_err));
    st_free(before);
    st_free(after);
    st_free(t);
}

/* Sets the mtime of every regular file under d to `ago_s` seconds ago. */
static void age_files(const char *d, int ago_s)
{
    DIR *dh = opendir(d);
    assert_non_null(dh);
    struct dirent *e;
    while ((e = readdir(dh)) != NULL) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "_delta_log"))
            continue;
        char *p = st_path_join(d, e->d_name);
        if (st_is_dir(p)) {
            age_files(p, ago_s);
        } else {
            struct timeval tv[2];
            gettimeofday(&tv[0], NULL);
            tv[0].tv_sec -= ago_s;
            tv[1] = tv[0];
            utimes(p, tv);
        }
        st_free(p);
    }
    closedir(dh);
}

static void test_vacuum(void **state)
{
    (void)state;
    char *t = mk_table("vac", NULL);
    TU_OK(st_delta_write(eng, t, "SELECT i::INT AS id, 'x' AS p, 'a' AS v FROM range(10) r(i)",
                         NULL, NULL, &tu_err));
    st_delta_write_opts ow = {.mode = ST_DELTA_OVERWRITE};
    TU_OK(st_delta_write(eng, t, "SELECT 99 AS id, 'x' AS p, 'b' AS v", &ow, NULL, &tu_err));
    /* an orphan file nobody references */
    char *orphan = st_path_join(t, "part-orphan.parquet");
    TU_OK(st_file_write_atomic(orphan, "x", 1, &tu_err));
    age_files(t, 10 * 86400);
    /* shorter than the table's 168 h is refused without force */
    st_delta_vacuum_opts o = {.retention_hours = 1};
    char **paths = NULL;
    size_t n = 0;
    assert_int_equal(st_delta_vacuum(eng, t, &o, &paths, &n, &tu_err), ST_ERR_INVALID);
    assert_non_null(strstr(tu_err.msg, "retention"));
    /* default retention: the removed file's tombstone is fresh, so only the
     * orphan goes */
    st_delta_vacuum_opts d = {.retention_hours = -1, .dry_run = true};
    TU_OK(st_delta_vacuum(eng, t, &d, &paths, &n, &tu_err));
    assert_int_equal(n, 1);
    assert_string_equal(paths[0], "part-orphan.parquet");
    assert_true(st_path_exists(orphan));   /* dry run */
    for (size_t i = 0; i < n; i++)
        st_free(paths[i]);
    st_free(paths);
    /* forced zero retention removes the overwritten file too */
    st_delta_vacuum_opts f = {.retention_hours = 0, .force = true};
    TU_OK(st_delta_vacuum(eng, t, &f, &paths, &n, &tu_err));
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++)
        st_free(paths[i]);
    st_free(paths);
    assert_false(st_path_exists(orphan));
    char *v = q_str(t, -1, "SELECT count(*)::VARCHAR FROM t");
    assert_string_equal(v, "1");
    st_free(v);
    /* time travel to the vacuumed version fails naming a missing file */
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(eng, t, 1, &s, &tu_err));
    int64_t cnt;
    st_rc vr = st_delta_register_view(eng, "old", s, &tu_err);
    if (vr == ST_OK)
        vr = st_engine_query_i64(eng, "SELECT count(*) FROM old", &cnt, &tu_err);
    assert_int_not_equal(vr, ST_OK);
    assert_non_null(strstr(tu_err.msg, "part-"));
    st_delta_snapshot_free(s);
    assert_int_equal(st_delta_restore(eng, t, 1, NULL, &tu_err), ST_ERR_NOTFOUND);
    assert_non_null(strstr(tu_err.msg, "part-"));
    TU_OK(st_test_delta_validate(t, eng, &tu_err));
    st_free(orphan);
    st_free(t);
}

static void test_checkpoint_cleanup(void **state)
{
    (void)state;
    char *t = mk_table("ckpt", NULL);
    for (int i = 0; i < 12; i++) {
        char *sql = st_sprintf("SELECT %d AS id, 'x' AS p, 'v' AS v", i);
        TU_OK(st_delta_write(eng, t, sql, NULL, NULL, &tu_err));
        st_free(sql);
    }
    TU_OK(st_delta_delete(eng, t, "id = 3", NULL, &tu_err));  /* version 13 */
    char *ck = st_sprintf("%s/_delta_log/%020d.checkpoint.parquet", t, 10);
    assert_true(st_path_exists(ck));
    char *lc = st_sprintf("%s/_delta_log/_last_checkpoint", t);
    char *data = NULL;
    size_t len;
    TU_OK(st_file_read(lc, 4096, &data, &len, &tu_err));
    assert_non_null(strstr(data, "\"version\":10"));
    assert_non_null(strstr(data, "\"numOfAddFiles\":10"));
    assert_non_null(strstr(data, "\"size\":12"));
    st_free(data);
    TU_OK(st_test_delta_validate(t, eng, &tu_err));
    /* an explicit checkpoint at the latest version */
    int64_t cv = -1;
    TU_OK(st_delta_checkpoint(eng, t, &cv, &tu_err));
    assert_int_equal(cv, 13);
    TU_OK(st_test_delta_validate(t, eng, &tu_err));
    /* nothing is old enough yet */
    int64_t removed = -1;
    TU_OK(st_delta_cleanup_log(eng, t, st_now_ms(), &removed, &tu_err));
    assert_int_equal(removed, 0);
    /* 40 days later: commits before the newest old-enough checkpoint go */
    TU_OK(st_delta_cleanup_log(eng, t, st_now_ms() + 40LL * 86400000, &removed, &tu_err));
    assert_true(removed >= 13);
    char *c0 = st_sprintf("%s/_delta_log/%020d.json", t, 0);
    char *c13 = st_sprintf("%s/_delta_log/%020d.json", t, 13);
    assert_false(st_path_exists(c0));
    assert_true(st_path_exists(c13));
    char *v = q_str(t, -1, "SELECT count(*)::VARCHAR FROM t");
    assert_string_equal(v, "11");
    st_free(v);
    TU_OK(st_test_delta_validate(t, eng, &tu_err));
    /* more commits still work on the cleaned log */
    TU_OK(st_delta_write(eng, t, "SELECT 100 AS id, 'x' AS p, 'v' AS v", NULL, NULL, &tu_err));
    TU_OK(st_test_delta_validate(t, eng, &tu_err));
    st_free(c0);
    st_free(c13);
    st_free(lc);
    st_free(ck);
    st_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_optimize),
        cmocka_unit_test(test_vacuum),
        cmocka_unit_test(test_checkpoint_cleanup),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
