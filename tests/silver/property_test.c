/*
 * property_test.c - random histories for many keys, delivered in random
 * batches, in random order, with duplicates.  After all batches silver must
 * equal an oracle written here independently (sort each key's changes by
 * sequence, collapse equal states, derive intervals).  Any permutation of
 * the batches gives the same table; re-running any earlier batch changes
 * nothing; the SCD2 invariants hold after every run.  One permutation runs
 * on a Delta table (deletion vectors, txn), the others on DuckDB tables.
 */
#include "testutil.h"

#include "strata/delta.h"
#include "strata/silver.h"
#include "silver/silver_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_KEYS 200
#define N_BATCHES 20
#define N_PERMS 2 /* plus the reversed order on Delta below */
#ifndef PROPERTY_COLLISIONS
#define PROPERTY_COLLISIONS 0
#endif

typedef struct ev {
    int id, seq;
    bool del;
    int name, city;   /* -1 = NULL */
} ev;

static uint64_t rng_state;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static const char *names[] = {"ann", "bob", "cy"};
static const char *cities[] = {"Oslo", "Rome"};

static ev *g_ev;
static size_t g_n;

static void gen(void)
{
    g_ev = st_calloc(N_KEYS * 20, sizeof *g_ev);
    g_n = 0;
    for (int id = 0; id < N_KEYS; id++) {
        int m = 1 + (int)(rnd() % 8);
        bool used[64] = {0};
        for (int k = 0; k < m; k++) {
            int seq = 1 + (int)(rnd() % 60);
            if (used[seq])
                continue; /* one change per sequence value; ties have their own tests */
            used[seq] = true;
            ev e = {id, seq, rnd() % 6 == 0, (int)(rnd() % 4) - 1, (int)(rnd() % 3) - 1};
            if (e.del)
                e.name = e.city = -1;
            g_ev[g_n++] = e;
            if (rnd() % 10 == 0)
                g_ev[g_n++] = e; /* a duplicate delivery */
        }
    }
}

static int cmp_key_seq(const void *a, const void *b)
{
    const ev *x = a, *y = b;
    if (x->id != y->id)
        return x->id - y->id;
    return x->seq - y->seq;
}

/* The oracle: "id:name:city:from-to[D]" for every version, by id and from. */
static char *oracle(void)
{
    ev *s = st_malloc(g_n * sizeof *s);
    memcpy(s, g_ev, g_n * sizeof *s);
    qsort(s, g_n, sizeof *s, cmp_key_seq);
    st_buf b;
    st_buf_init(&b, 0);
    for (size_t i = 0; i < g_n;) {
        size_t j = i;
        while (j < g_n && s[j].id == s[i].id)
            j++;
        /* versions of this key: indexes into s of the changes that open one */
        size_t open[64];
        size_t n_open = 0;
        for (size_t k = i; k < j; k++) {
            if (k > i && s[k].seq == s[k - 1].seq)
                continue; /* duplicate */
            if (n_open) {
                const ev *p = &s[open[n_open - 1]];
                bool same = p->del == s[k].del &&
                            (s[k].del || (p->name == s[k].name && p->city == s[k].city));
                if (same)
                    continue;
            }
            open[n_open++] = k;
        }
        for (size_t v = 0; v < n_open; v++) {
            const ev *e = &s[open[v]];
            if (b.len)
                st_buf_putc(&b, ' ');
            st_buf_printf(&b, "%d:%s:%s:%d-", e->id, e->name < 0 ? "-" : names[e->name],
                          e->city < 0 ? "-" : cities[e->city], e->seq);
            if (v + 1 < n_open)
                st_buf_printf(&b, "%d", s[open[v + 1]].seq);
            if (e->del)
                st_buf_putc(&b, 'D');
        }
        i = j;
    }
    st_free(s);
    return st_buf_take(&b);
}

static const char *hist_sql =
    "SELECT string_agg(CAST(id AS BIGINT) || ':' || coalesce(name, '-') || ':' || "
    "coalesce(city, '-') || ':' || "
    "_valid_from || '-' || coalesce(CAST(_valid_to AS VARCHAR), '') || CASE WHEN _is_deleted "
    "THEN 'D' ELSE '' END, ' ' ORDER BY CAST(id AS BIGINT), _valid_from) FROM %s";

static char *history(st_engine *eng, const char *t)
{
    char *sql = st_sprintf(hist_sql, t);
    char *out = NULL;
    TU_OK(st_engine_query_str(eng, sql, &out, &tu_err));
    st_free(sql);
    return out;
}

static void check_invariants(st_engine *eng, const char *t)
{
    const char *checks[] = {
        "SELECT count(*) FROM (SELECT id, sum(CAST(_is_current AS INT)) c FROM %s GROUP BY id) "
        "WHERE c <> 1",
        "SELECT count(*) FROM (SELECT _valid_to, _is_current, lead(_valid_from) OVER (PARTITION "
        "BY id ORDER BY _valid_from) nf FROM %s) WHERE _valid_to IS DISTINCT FROM nf OR "
        "_is_current <> (_valid_to IS NULL)",
        "SELECT count(*) FROM (SELECT _version, row_number() OVER (PARTITION BY id ORDER BY "
        "_valid_from) rn FROM %s) WHERE _version <> rn",
        "SELECT count(*) FROM (SELECT _is_deleted d, _row_hash h, lag(_is_deleted) OVER w pd, "
        "lag(_row_hash) OVER w ph FROM %s WINDOW w AS (PARTITION BY id ORDER BY _valid_from)) "
        "WHERE pd IS NOT NULL AND d = pd AND h IS NOT DISTINCT FROM ph",
        "SELECT count(*) - count(DISTINCT _sk) FROM %s",
        NULL};
    for (int i = 0; checks[i]; i++) {
        char *sql = st_sprintf(checks[i], t);
        int64_t bad = -1;
        TU_OK(st_engine_query_i64(eng, sql, &bad, &tu_err));
        if (bad != 0)
            fail_msg("invariant %d violated %lld times on %s", i, (long long)bad, t);
        st_free(sql);
    }
}

/* Loads the changes into table "ev" with their batch number. */
static void load_events(st_engine *eng, const int *batch_of)
{
    TU_OK(st_engine_exec(eng, "CREATE OR REPLACE TABLE ev (b INT, id BIGINT, name VARCHAR, city "
                              "VARCHAR, seq BIGINT, _op VARCHAR)", &tu_err));
    duckdb_appender app;
    TU_OK(st_engine_appender(eng, "ev", &app, &tu_err));
    for (size_t i = 0; i < g_n; i++) {
        const ev *e = &g_ev[i];
        duckdb_append_int32(app, batch_of[i]);
        duckdb_append_int64(app, e->id);
        if (e->name < 0)
            duckdb_append_null(app);
        else
            duckdb_append_varchar(app, names[e->name]);
        if (e->city < 0)
            duckdb_append_null(app);
        else
            duckdb_append_varchar(app, cities[e->city]);
        duckdb_append_int64(app, e->seq);
        duckdb_append_varchar(app, e->del ? "D" : "U");
        duckdb_appender_end_row(app);
    }
    TU_OK(st_engine_appender_close(&app, &tu_err));
}

static char *batch_sql(int b)
{
    return st_sprintf("SELECT id, name, city, seq, _op FROM ev WHERE b = %d", b);
}

#if PROPERTY_COLLISIONS
/* The batches with the key as text: the Delta scan then filters on the
 * XXH3 of the key's text rather than on its integer value. */
static char *batch_sql_str(int b)
{
    return st_sprintf("SELECT CAST(id AS VARCHAR) AS id, name, city, seq, _op FROM ev WHERE b = %d",
                      b);
}

/* The key as DOUBLE: no column to filter on by value, so the scan locates
 * the rows by the key columns first and reads them by row number. */
static char *batch_sql_dbl(int b)
{
    return st_sprintf("SELECT CAST(id AS DOUBLE) AS id, name, city, seq, _op FROM ev WHERE b = %d",
                      b);
}
#endif

/* All batches, latest first (maximally late), into a Delta table, checking
 * txn skips, invariants, a replay and the final history against the oracle.
 * key_mask != 0 makes the key filter of the scan see only those bits of each
 * key value, so that most keys collide and only the exact join on the key
 * keeps the result right. */
static void delta_pass(st_engine *eng, const st_silver_entity *ent, const char *want,
                       char *(*bsql)(int), uint64_t key_mask)
{
    scd_test_key_mask(key_mask);
    char *dir = tu_tempdir("silverprop");
    char *path = st_sprintf("%s/p", dir);
    for (int i = 0; i < N_BATCHES; i++) {
        int b = N_BATCHES - 1 - i; /* reversed: maximally late */
        char *sql = bsql(b);
        st_silver_stats st;
        TU_OK(st_silver_merge_delta(eng, ent, sql, path, NULL, "prop", i + 1, &st, &tu_err));
        /* the same app version again is skipped by the txn */
        TU_OK(st_silver_merge_delta(eng, ent, sql, path, NULL, "prop", i + 1, &st, &tu_err));
        assert_true(st.skipped);
        st_free(sql);
        if (i % 5 == 4 || i == N_BATCHES - 1) {
            TU_OK(st_silver_register_views(eng, path, "dp", &tu_err));
            check_invariants(eng, "dp_history");
        }
    }
    /* a replay of a batch under a new app version changes no row */
    char *sql = bsql(3);
    st_silver_stats st;
    TU_OK(st_silver_merge_delta(eng, ent, sql, path, NULL, "prop", N_BATCHES + 1, &st, &tu_err));
    assert_int_equal(st.keys_changed, 0);
    st_free(sql);
    TU_OK(st_silver_register_views(eng, path, "dp", &tu_err));
    char *got = history(eng, "dp_history");
    if (strcmp(got, want))
        fail_msg("delta table (key mask %llx) differs from the oracle\n got:  %.600s\n want: %.600s",
                 (unsigned long long)key_mask, got, want);
    st_free(got);
    scd_test_key_mask(0);
    st_free(path);
    tu_rmdir(dir);
}

static void test_property(void **state)
{
    (void)state;
    rng_state = 0x9E3779B97F4A7C15ULL;
    gen();
    char *want = oracle();
    /* the generated histories exercise what they should: deletes, several
     * versions per key */
    assert_non_null(strstr(want, "D "));
    size_t n_versions = 1;
    for (const char *c = want; *c; c++)
        n_versions += *c == ' ';
    assert_true(n_versions > 2 * N_KEYS);
    int *batch_of = st_malloc(g_n * sizeof *batch_of);
    for (size_t i = 0; i < g_n; i++)
        batch_of[i] = (int)(rnd() % N_BATCHES);
    const char *yml = "from: bronze.p\nkey: [id]\ntrack: [name, city]\nsequence: seq\n"
                      "delete: \"_op = 'D'\"\n";
    st_cfg_doc *doc = NULL;
    TU_OK(st_cfg_load_string("p.yml", yml, strlen(yml), &doc, &tu_err));
    st_silver_entity *ent = NULL;
    TU_OK(st_silver_entity_parse(st_cfg_root(doc), "p", &ent, &tu_err));
    st_cfg_doc_free(doc);
    st_engine *eng = tu_engine();
    load_events(eng, batch_of);

    /* permutations of the batch order on DuckDB tables */
    for (int perm = 0; perm < (PROPERTY_COLLISIONS ? 0 : N_PERMS); perm++) {
        int order[N_BATCHES];
        for (int i = 0; i < N_BATCHES; i++)
            order[i] = i;
        for (int i = N_BATCHES - 1; perm > 0 && i > 0; i--) {
            int j = (int)(rnd() % (unsigned)(i + 1));
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        char table[32];
        snprintf(table, sizeof table, "silver_p%d", perm);
        for (int i = 0; i < N_BATCHES; i++) {
            char *sql = batch_sql(order[i]);
            st_silver_stats st;
            TU_OK(st_silver_merge_duckdb(eng, ent, sql, table, NULL, &st, &tu_err));
            st_free(sql);
            check_invariants(eng, table);
            /* re-running any batch already applied is a no-op */
            int j = (int)(rnd() % (unsigned)(i + 1));
            sql = batch_sql(order[j]);
            TU_OK(st_silver_merge_duckdb(eng, ent, sql, table, NULL, &st, &tu_err));
            st_free(sql);
            if (st.keys_changed != 0 || st.rows_written != 0)
                fail_msg("perm %d: re-running batch %d changed %lld keys", perm, order[j],
                         (long long)st.keys_changed);
        }
        char *got = history(eng, table);
        if (strcmp(got, want))
            fail_msg("perm %d differs from the oracle\n got:  %.600s\n want: %.600s", perm, got,
                     want);
        st_free(got);
    }

#if !PROPERTY_COLLISIONS
    /* one order on a Delta table: deletion vectors + appended files */
    delta_pass(eng, ent, want, batch_sql, 0);
#else
    /* forced collisions in the scan's key filter (3 bits of every key value
     * or text hash): exact all the same (property_collide_test.c) */
    delta_pass(eng, ent, want, batch_sql_str, 0x7);
    delta_pass(eng, ent, want, batch_sql, 0x3);
    delta_pass(eng, ent, want, batch_sql_dbl, 0);
#endif

    st_free(want);
    st_free(batch_of);
    st_free(g_ev);
    st_silver_entity_free(ent);
    st_engine_close(eng);
}

int main(void)
{
    st_log_init(); /* STRATA_LOG=debug shows each statement's time */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_property),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
