/*
 * pit_test.c - point-in-time correctness of training sets: a feature value
 * stamped after a spine row's label time never reaches that row.  Random
 * feature histories and label times are checked row by row against a
 * brute-force answer computed here, with "poison" rows placed just after
 * each label time; plus the manifest, a label before any feature, and the
 * CLI.
 */
#include "testutil.h"

#include "strata/delta.h"
#include "strata/gold.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_ENT 12
#define N_FEAT 400
#define N_SPINE 300

typedef struct frow {
    int ent;
    int64_t ts;   /* seconds since 2024-01-01 */
    int64_t val;
} frow;

static frow feats[N_FEAT + N_SPINE];
static size_t n_feats;

static void write_table(st_engine *eng, const char *lake, const char *name, const char *values)
{
    char *rel = st_sprintf("gold/%s", name);
    char *path = st_path_join(lake, rel);
    st_delta_schema *sc = NULL;
    TU_OK(st_delta_schema_from_ddl("customer_id int, feature_ts timestamp, score long", &sc,
                                   &tu_err));
    TU_OK(st_mkdirs(path, &tu_err));
    TU_OK(st_delta_create(path, sc, NULL, &tu_err));
    st_delta_schema_free(sc);
    char *sql = st_sprintf("SELECT customer_id::INT AS customer_id, (TIMESTAMP '2024-01-01' + "
                           "to_seconds(ts)) AS feature_ts, score::BIGINT AS score FROM (VALUES "
                           "%s) v(customer_id, ts, score)", values);
    st_delta_write_opts wo = {.mode = ST_DELTA_APPEND};
    TU_OK(st_delta_write(eng, path, sql, &wo, NULL, &tu_err));
    st_free(sql);
    st_free(rel);
    st_free(path);
}

static void test_random_histories(void **state)
{
    (void)state;
    char *dir = tu_tempdir("pit");
    char *lake = st_path_join(dir, "lake");
    st_engine *eng = tu_engine();
    srand(42);
    st_buf v, s;
    st_buf_init(&v, 0);
    st_buf_init(&s, 0);
    st_buf_puts(&s, "customer_id,label_ts,label\n");
    n_feats = 0;
    int64_t labels[N_SPINE];
    int label_ent[N_SPINE];
    for (int i = 0; i < N_FEAT; i++) {
        frow f = {1 + rand() % N_ENT, (int64_t)(rand() % (90 * 86400)), 0};
        f.val = i;  /* unique: tells which row was joined */
        feats[n_feats++] = f;
    }
    for (int i = 0; i < N_SPINE; i++) {
        label_ent[i] = 1 + rand() % (N_ENT + 1);  /* entity N_ENT+1 has no features */
        labels[i] = (int64_t)(rand() % (95 * 86400)) - 3 * 86400;
        /* poison: a feature stamped one second after the label time */
        frow p = {label_ent[i], labels[i] + 1, 1000000 + i};
        feats[n_feats++] = p;
        st_buf_printf(&s, "%d,%s,%d\n", label_ent[i], "", i);
    }
    /* label times as text via DuckDB, so the spine is an ordinary CSV */
    st_buf_reset(&s);
    st_buf_puts(&s, "SELECT * FROM (VALUES ");
    for (int i = 0; i < N_SPINE; i++)
        st_buf_printf(&s, "%s(%d, %lld, %d)", i ? "," : "", label_ent[i], (long long)labels[i], i);
    st_buf_puts(&s, ") t(customer_id, secs, label)");
    for (size_t i = 0; i < n_feats; i++)
        st_buf_printf(&v, "%s(%d, %lld, %lld)", i ? "," : "", feats[i].ent,
                      (long long)feats[i].ts, (long long)feats[i].val);
    write_table(eng, lake, "activity", v.data);
    char *spine = st_path_join(dir, "spine.csv");
    char *copy = st_sprintf("COPY (SELECT customer_id, TIMESTAMP '2024-01-01' + to_seconds(secs) "
                            "AS label_ts, label FROM (%s)) TO '%s' (HEADER)", s.data, spine);
    TU_OK(st_engine_exec(eng, copy, &tu_err));

    char *out = st_path_join(dir, "ts");
    const char *names[] = {"activity"};
    st_training_opts o = {.lake = lake, .spine = spine, .features = names, .n_features = 1,
                          .out_dir = out};
    st_training_result r;
    TU_OK(st_features_training_set(eng, &o, &r, &tu_err));
    assert_int_equal(r.rows, N_SPINE);

    /* read the Parquet file back and compare every row with brute force */
    char *q = st_sprintf("SELECT label, coalesce(activity__score, -1), "
                         "coalesce(epoch(label_ts)::BIGINT - epoch(activity__feature_ts)::BIGINT, "
                         "-1) FROM read_parquet('%s/training_set.parquet') ORDER BY label", out);
    duckdb_result res;
    TU_OK(st_engine_query(eng, q, &res, &tu_err));
    assert_int_equal(duckdb_row_count(&res), N_SPINE);
    int matched = 0;
    for (idx_t row = 0; row < N_SPINE; row++) {
        int i = (int)duckdb_value_int64(&res, 0, row);
        int64_t got = duckdb_value_int64(&res, 1, row);
        int64_t lag = duckdb_value_int64(&res, 2, row);
        /* expected: the row with the largest ts <= label (ties: any of them) */
        int64_t best_ts = INT64_MIN;
        for (size_t k = 0; k < n_feats; k++)
            if (feats[k].ent == label_ent[i] && feats[k].ts <= labels[i] && feats[k].ts > best_ts)
                best_ts = feats[k].ts;
        if (best_ts == INT64_MIN) {
            assert_int_equal(got, -1);
            continue;
        }
        matched++;
        assert_true(got >= 0 && got < 1000000 + N_SPINE);
        const frow *f = NULL;
        for (size_t k = 0; k < n_feats; k++)
            if (feats[k].val == got)
                f = &feats[k];
        assert_non_null(f);
        assert_int_equal(f->ent, label_ent[i]);
        assert_true(f->ts <= labels[i]);   /* never from after the label time */
        assert_int_equal(f->ts, best_ts);  /* and the latest known one */
        assert_int_equal(lag, labels[i] - f->ts);
    }
    duckdb_destroy_result(&res);
    assert_true(matched > N_SPINE / 2);
    assert_int_equal(r.rows_matched, matched);

    /* the manifest names the join rule and the feature table version */
    char *mpath = st_path_join(out, "manifest.json"), *m = NULL;
    size_t mlen = 0;
    TU_OK(st_file_read(mpath, 1 << 20, &m, &mlen, &tu_err));
    assert_non_null(strstr(m, "\"delta_version\": 1"));
    assert_non_null(strstr(m, "feature_ts <= label_time"));
    char rows[64];
    snprintf(rows, sizeof rows, "\"rows\": %d", N_SPINE);
    assert_non_null(strstr(m, rows));

    /* the CLI gives the same file */
    char *cli = NULL;
    int rc = tu_run(&cli, "%s features training-set --lake %s --spine %s --features activity "
                          "--out %s/cli 2>&1", tu_strata_bin(), lake, spine, dir);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(cli, "300 rows"));
    char *same = st_sprintf("SELECT count(*) FROM (SELECT * FROM read_parquet('%s/cli/"
                            "training_set.parquet') EXCEPT ALL SELECT * FROM read_parquet('%s/"
                            "training_set.parquet'))", dir, out);
    int64_t diff = -1;
    TU_OK(st_engine_query_i64(eng, same, &diff, &tu_err));
    assert_int_equal(diff, 0);

    /* a feature table that does not exist is refused, naming it */
    st_err e;
    st_err_clear(&e);
    const char *bad[] = {"missing_table"};
    o.features = bad;
    assert_int_not_equal(st_features_training_set(eng, &o, &r, &e), ST_OK);
    assert_non_null(strstr(e.msg, "missing_table"));

    st_free(same);
    st_free(cli);
    st_free(m);
    st_free(mpath);
    st_free(q);
    st_free(out);
    st_free(copy);
    st_free(spine);
    st_buf_free(&v);
    st_buf_free(&s);
    st_engine_close(eng);
    st_free(lake);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_histories),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
