/*
 * merge.c - silver on Delta: reads the stored versions of the affected keys
 * with their file and row position, runs the rebuild of scd2.c, and commits
 * the outcome once: a deletion vector on every file that held an old version
 * of a changed key, one appended file with the new history, and the `txn`
 * that makes reruns no-ops.  Also the incremental run over a bronze table
 * (files added since the recorded bronze version), erasure of keys and the
 * history views.  DV files are written by src/delta/dv_write.c.
 */
#include "silver/silver_int.h"

#include "delta/write_int.h"
#include "strata/delta.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- scanning */

/* Whether the statistics of f rule out no-op lists: a row's _seq is its
 * last change and _noop_seqs is set exactly when _seq > _valid_from, so
 * max(_seq) <= min(_valid_from) means _noop_seqs is NULL in every row.
 * Only integer statistics are compared; anything else says no. */
static bool file_without_noops(const st_delta_file *f)
{
    if (!f->stats)
        return false;
    json_t *j = json_loads(f->stats, 0, NULL);
    json_t *lo = json_object_get(json_object_get(j, "minValues"), "_valid_from");
    json_t *hi = json_object_get(json_object_get(j, "maxValues"), "_seq");
    bool none = json_is_integer(lo) && json_is_integer(hi) &&
                json_integer_value(hi) <= json_integer_value(lo);
    json_decref(j);
    return none;
}

static st_rc files_in_use(const st_delta_snapshot *s, const char *prune, bool **out, size_t *n_use,
                          st_err *err);

/* Creates view `view` over every live file of s: the table columns (with
 * partition values), _st_fi (index into s->files) and _st_pos (row number in
 * the file), without the rows deleted by existing deletion vectors.  With
 * keys (n_keys > 0), rows are first reduced to those whose non-partition key
 * columns appear in _st_in, before anything else touches them; `where` (SQL
 * over the file's columns, NULL = none) filters them in the scan itself.
 * Returns false in *has_rows when the table has no file. */
static st_rc scan_with_pos(st_engine *eng, const st_delta_snapshot *s, const char *view,
                           char **keys, size_t n_keys, const char *prune, const char *where,
                           bool *has_rows, st_err *err)
{
    const st_delta_metadata *m = &s->metadata;
    st_buf b;
    st_buf_init(&b, 0);
    st_rc rc = ST_OK;
    duckdb_appender app = NULL;
    /* the files that may hold the keys (partition values, min/max stats);
     * indexes stay those of s->files */
    bool *use = NULL;
    size_t n_use = 0;
    rc = files_in_use(s, prune, &use, &n_use, err);
    if (rc)
        return rc;
    *has_rows = n_use > 0;
    if (!*has_rows) {
        st_free(use);
        return ST_OK;
    }
    /* one row per file: index, path, partition values typed */
    rc = st_buf_puts(&b, "CREATE OR REPLACE TEMP TABLE _st_files (_st_fi INTEGER, _st_fname VARCHAR");
    for (size_t i = 0; rc == ST_OK && i < m->n_partition_columns; i++) {
        const st_dfield *f = st_delta_schema_find(m->schema, m->partition_columns[i]);
        char *ty = f ? st_delta_type_sql(&f->type) : NULL;
        rc = st_buf_puts(&b, ", ");
        rc = rc ? rc : st_buf_sql_ident(&b, m->partition_columns[i]);
        rc = rc ? rc : st_buf_printf(&b, " %s", ty ? ty : "VARCHAR");
        st_free(ty);
    }
    rc = rc ? rc : st_buf_puts(&b, ")");
    rc = rc ? rc : st_engine_exec(eng, b.data, err);
    st_buf_reset(&b);
    for (size_t i = 0; rc == ST_OK && i < s->n_files; i++) {
        const st_delta_file *f = s->files[i];
        if (!use[i])
            continue;
        rc = st_buf_printf(&b, "INSERT INTO _st_files VALUES (%zu, ", i);
        rc = rc ? rc : st_buf_sql_str(&b, f->abs_path);
        for (size_t k = 0; rc == ST_OK && k < m->n_partition_columns; k++) {
            const char *v = NULL;
            for (size_t j = 0; j < f->n_part; j++)
                if (!strcmp(f->part[j].key, m->partition_columns[k]))
                    v = f->part[j].value;
            const st_dfield *fd = st_delta_schema_find(m->schema, m->partition_columns[k]);
            rc = st_buf_puts(&b, ", ");
            rc = rc ? rc : (fd ? st_delta_part_literal(&fd->type, v, &b, err) : st_buf_puts(&b, "NULL"));
        }
        rc = rc ? rc : st_buf_puts(&b, ")");
        rc = rc ? rc : st_engine_exec(eng, b.data, err);
        st_buf_reset(&b);
    }
    /* rows already deleted by deletion vectors */
    rc = rc ? rc : st_engine_exec(eng, "CREATE OR REPLACE TEMP TABLE _st_dvpos (_st_fi INTEGER, "
                                       "_st_pos BIGINT)", err);
    rc = rc ? rc : st_engine_appender(eng, "_st_dvpos", &app, err);
    for (size_t i = 0; rc == ST_OK && i < s->n_files; i++) {
        if (!use[i] || !s->files[i]->has_dv)
            continue;
        uint64_t *pos = NULL;
        size_t n = 0;
        rc = st_delta_dv_load(s->table_path, &s->files[i]->dv, &pos, &n, err);
        for (size_t k = 0; rc == ST_OK && k < n; k++) {
            duckdb_append_int32(app, (int32_t)i);
            duckdb_append_int64(app, (int64_t)pos[k]);
            if (duckdb_appender_end_row(app) == DuckDBError)
                rc = st_fail(err, ST_ERR_ENGINE, "appending deletion vector positions");
        }
        st_free(pos);
    }
    if (app) {
        st_rc rc2 = st_engine_appender_close(&app, rc ? NULL : err);
        rc = rc ? rc : rc2;
    }
    /* the data columns (partition columns are not in the files) */
    rc = rc ? rc : st_buf_printf(&b, "CREATE OR REPLACE TEMP VIEW %s AS SELECT ", view);
    for (size_t i = 0; rc == ST_OK && i < m->schema->n_fields; i++) {
        const char *name = m->schema->fields[i].name;
        bool is_part = false;
        for (size_t k = 0; k < m->n_partition_columns; k++)
            is_part = is_part || !strcmp(m->partition_columns[k], name);
        rc = st_buf_puts(&b, is_part ? "f." : "r.");
        rc = rc ? rc : st_buf_sql_ident(&b, name);
        rc = rc ? rc : st_buf_puts(&b, ", ");
    }
    rc = rc ? rc : st_buf_puts(&b, "f._st_fi, r.file_row_number AS _st_pos FROM (SELECT * FROM (");
    /* files whose statistics rule out no-op lists are read without that
     * column (a list column costs as much to decode as a string) */
    const st_dfield *noops = st_delta_schema_find(m->schema, "_noop_seqs");
    char *noops_ty = noops ? st_delta_type_sql(&noops->type) : NULL;
    size_t n_groups = 0;
    for (int g = 0; rc == ST_OK && g < 2; g++) {
        size_t k = 0;
        for (size_t i = 0; rc == ST_OK && i < s->n_files; i++) {
            if (!use[i] || (g == 1) != (noops_ty && file_without_noops(s->files[i])))
                continue;
            if (k++ == 0) {
                rc = st_buf_puts(&b, n_groups++ ? " UNION ALL BY NAME " : "");
                rc = rc ? rc : (g ? st_buf_printf(&b, "SELECT * EXCLUDE (_noop_seqs), CAST(NULL AS "
                                                      "%s) AS _noop_seqs", noops_ty)
                                  : st_buf_puts(&b, "SELECT *"));
                rc = rc ? rc : st_buf_puts(&b, " FROM read_parquet([");
            } else {
                rc = st_buf_puts(&b, ", ");
            }
            rc = rc ? rc : st_buf_sql_str(&b, s->files[i]->abs_path);
        }
        if (rc == ST_OK && k > 0) {
            rc = st_buf_puts(&b, "], filename = true, file_row_number = true, union_by_name = "
                                 "true, hive_partitioning = false)");
            if (rc == ST_OK && where)
                rc = st_buf_printf(&b, " WHERE %s", where);
        }
    }
    st_free(noops_ty);
    rc = rc ? rc : st_buf_puts(&b, ") r0");
    /* the key semi-join first: only the affected rows meet the file table */
    size_t n_np = 0;
    for (size_t i = 0; rc == ST_OK && i < n_keys; i++) {
        bool is_part = false;
        for (size_t k = 0; k < m->n_partition_columns; k++)
            is_part = is_part || !strcmp(m->partition_columns[k], keys[i]);
        if (is_part)
            continue;
        rc = st_buf_puts(&b, n_np ? " AND r0." : " SEMI JOIN (SELECT DISTINCT * FROM (SELECT ");
        if (n_np == 0) {
            size_t c = 0;
            for (size_t j = 0; rc == ST_OK && j < n_keys; j++) {
                bool jp = false;
                for (size_t k = 0; k < m->n_partition_columns; k++)
                    jp = jp || !strcmp(m->partition_columns[k], keys[j]);
                if (jp)
                    continue;
                rc = st_buf_puts(&b, c++ ? ", " : "");
                rc = rc ? rc : st_buf_sql_ident(&b, keys[j]);
            }
            rc = rc ? rc : st_buf_puts(&b, " FROM _st_in)) k0 ON r0.");
        }
        rc = rc ? rc : st_buf_sql_ident(&b, keys[i]);
        rc = rc ? rc : st_buf_puts(&b, " = k0.");
        rc = rc ? rc : st_buf_sql_ident(&b, keys[i]);
        n_np++;
    }
    rc = rc ? rc : st_buf_puts(&b, ") r JOIN _st_files f ON f._st_fname = r.filename ANTI JOIN "
                                   "_st_dvpos d ON d._st_fi = f._st_fi AND d._st_pos = "
                                   "r.file_row_number");
    rc = rc ? rc : st_engine_exec(eng, b.data, err);
    st_buf_free(&b);
    st_free(use);
    if (rc)
        st_err_ctx(err, "reading silver table %s", s->table_path);
    return rc;
}

/* ---------------------------------------------------------------- row selection
 *
 * The stored versions of a batch's keys are read through filters that DuckDB
 * pushes into the Parquet scan, which then decodes the other columns only
 * for the rows that pass (a join would decode every row first):
 * st_silver_keyin(token, v) tests one key column's value against a hash set
 * of the batch's values, st_silver_rowsel(token, file index,
 * file_row_number) tests a row number against a bitmap (rows deleted by
 * deletion vectors, or rows located beforehand by the key columns).  The
 * selection is handed over through a process-wide registry keyed by a token
 * (a SQL text cannot carry a pointer safely), so an unknown token selects
 * nothing. */

typedef struct rowsel {
    uint64_t token;
    size_t n_files;
    uint64_t **bits;   /* per file index: bitmap of selected row numbers, NULL = none */
    uint64_t *n_bits;  /* its size in bits */
    uint64_t *keys;    /* open-addressing set of the batch's key values (0 = empty slot) */
    size_t key_cap;    /* a power of two */
    bool key_zero;     /* 0 is in the set */
} rowsel;

/* Test hook: key values are masked before they meet the set, so that many
 * keys collide (scd_test_key_mask). */
static uint64_t g_key_mask = ~(uint64_t)0;

void scd_test_key_mask(uint64_t mask) { g_key_mask = mask ? mask : ~(uint64_t)0; }

enum { ROWSEL_SLOTS = 64 };
static pthread_mutex_t g_sel_mu = PTHREAD_MUTEX_INITIALIZER;
static rowsel *g_sel[ROWSEL_SLOTS];
static uint64_t g_sel_next = 1;

static void rowsel_free(rowsel *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&g_sel_mu);
    for (size_t i = 0; i < ROWSEL_SLOTS; i++)
        if (g_sel[i] == r)
            g_sel[i] = NULL;
    pthread_mutex_unlock(&g_sel_mu);
    for (size_t i = 0; i < r->n_files; i++)
        st_free(r->bits[i]);
    st_free(r->bits);
    st_free(r->n_bits);
    st_free(r->keys);
    st_free(r);
}

static uint64_t key_slot(uint64_t v) { return (v * 0x9E3779B97F4A7C15ull) >> 17; }

/* Adds v to the key set of r (sized for at most n_max values). */
static st_rc keyset_add(rowsel *r, uint64_t v, size_t n_max, st_err *err)
{
    v &= g_key_mask;
    if (!r->keys) {
        size_t cap = 16;
        while (cap < 2 * n_max + 16)
            cap *= 2;
        r->keys = st_calloc(cap, sizeof *r->keys);
        if (!r->keys)
            return st_fail(err, ST_ERR_NOMEM, "silver: key set of %zu values", n_max);
        r->key_cap = cap;
    }
    if (v == 0) {
        r->key_zero = true;
        return ST_OK;
    }
    for (size_t i = key_slot(v) & (r->key_cap - 1);; i = (i + 1) & (r->key_cap - 1)) {
        if (r->keys[i] == v)
            return ST_OK;
        if (r->keys[i] == 0) {
            r->keys[i] = v;
            return ST_OK;
        }
    }
}

static bool keyset_has(const rowsel *r, uint64_t v)
{
    v &= g_key_mask;
    if (v == 0)
        return r->key_zero;
    if (!r->keys)
        return false;
    for (size_t i = key_slot(v) & (r->key_cap - 1);; i = (i + 1) & (r->key_cap - 1)) {
        if (r->keys[i] == v)
            return true;
        if (r->keys[i] == 0)
            return false;
    }
}

static st_rc rowsel_new(size_t n_files, rowsel **out, st_err *err)
{
    *out = NULL;
    rowsel *r = st_calloc(1, sizeof *r);
    if (r) {
        r->n_files = n_files;
        r->bits = st_calloc(n_files + 1, sizeof *r->bits);
        r->n_bits = st_calloc(n_files + 1, sizeof *r->n_bits);
    }
    if (!r || !r->bits || !r->n_bits) {
        rowsel_free(r);
        return st_fail(err, ST_ERR_NOMEM, "silver: row selection");
    }
    pthread_mutex_lock(&g_sel_mu);
    for (size_t i = 0; i < ROWSEL_SLOTS && !r->token; i++)
        if (!g_sel[i]) {
            g_sel[i] = r;
            r->token = g_sel_next++;
        }
    pthread_mutex_unlock(&g_sel_mu);
    if (!r->token) {
        rowsel_free(r);
        return st_fail(err, ST_ERR_LIMIT, "silver: more than %d merges at once", ROWSEL_SLOTS);
    }
    *out = r;
    return ST_OK;
}

/* Sets (on) or clears bit pos of file fi, growing the bitmap. */
static st_rc rowsel_set(rowsel *r, size_t fi, uint64_t pos, bool on, st_err *err)
{
    if (fi >= r->n_files)
        return st_fail(err, ST_ERR_CORRUPT, "silver: bad file index %zu", fi);
    if (pos >= r->n_bits[fi]) {
        if (!on)
            return ST_OK;
        uint64_t nb = (pos + 1 > 2 * r->n_bits[fi] ? pos + 1 : 2 * r->n_bits[fi]) + 63;
        uint64_t *w = st_calloc(nb / 64, sizeof *w);
        if (!w)
            return st_fail(err, ST_ERR_NOMEM, "silver: row selection");
        if (r->bits[fi])
            memcpy(w, r->bits[fi], r->n_bits[fi] / 64 * sizeof *w);
        st_free(r->bits[fi]);
        r->bits[fi] = w;
        r->n_bits[fi] = nb / 64 * 64;
    }
    if (on)
        r->bits[fi][pos / 64] |= (uint64_t)1 << (pos % 64);
    else
        r->bits[fi][pos / 64] &= ~((uint64_t)1 << (pos % 64));
    return ST_OK;
}

/* The selection named by the token in column 0 of a call (a constant of
 * the query, read from the first row), NULL when none.  A selection is not
 * freed while a query of its merge runs, so it is read after the lock. */
static const rowsel *sel_of_query(duckdb_data_chunk input)
{
    int64_t token = ((int64_t *)duckdb_vector_get_data(duckdb_data_chunk_get_vector(input, 0)))[0];
    const rowsel *sel = NULL;
    pthread_mutex_lock(&g_sel_mu);
    for (size_t i = 0; i < ROWSEL_SLOTS; i++)
        if (g_sel[i] && g_sel[i]->token == (uint64_t)token)
            sel = g_sel[i];
    pthread_mutex_unlock(&g_sel_mu);
    return sel;
}

/* st_silver_rowsel(token, fi, pos): the token and file index are constants
 * of the query (read from the first row); pos varies. */
static void rowsel_fn(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output)
{
    (void)info;
    idx_t n = duckdb_data_chunk_get_size(input);
    bool *out = (bool *)duckdb_vector_get_data(output);
    if (n == 0)
        return;
    const rowsel *sel = sel_of_query(input);
    int32_t fi = ((int32_t *)duckdb_vector_get_data(duckdb_data_chunk_get_vector(input, 1)))[0];
    duckdb_vector pv = duckdb_data_chunk_get_vector(input, 2);
    const int64_t *pos = (const int64_t *)duckdb_vector_get_data(pv);
    uint64_t *valid = duckdb_vector_get_validity(pv);
    const uint64_t *bits = NULL;
    uint64_t n_bits = 0;
    if (sel && fi >= 0 && (size_t)fi < sel->n_files) {
        bits = sel->bits[fi];
        n_bits = sel->n_bits[fi];
    }
    for (idx_t i = 0; i < n; i++) {
        uint64_t p = (uint64_t)pos[i];
        out[i] = bits && (!valid || duckdb_validity_row_is_valid(valid, i)) && p < n_bits &&
                 (bits[p / 64] >> (p % 64)) & 1;
    }
}

/* st_silver_keyin(token, v): whether v is in the key set of the selection
 * (the token is a constant of the query, read from the first row). */
static void keyin_fn(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output)
{
    (void)info;
    idx_t n = duckdb_data_chunk_get_size(input);
    bool *out = (bool *)duckdb_vector_get_data(output);
    if (n == 0)
        return;
    const rowsel *sel = sel_of_query(input);
    duckdb_vector kv = duckdb_data_chunk_get_vector(input, 1);
    const int64_t *v = (const int64_t *)duckdb_vector_get_data(kv);
    uint64_t *valid = duckdb_vector_get_validity(kv);
    for (idx_t i = 0; i < n; i++)
        out[i] = sel && (!valid || duckdb_validity_row_is_valid(valid, i)) &&
                 keyset_has(sel, (uint64_t)v[i]);
}

static st_rc register_fn(st_engine *eng, const char *name, duckdb_scalar_function_t fn,
                         const duckdb_type *params, size_t n_params, st_err *err)
{
    /* present already when a call binds (listing duckdb_functions() costs
     * tens of milliseconds) */
    st_buf q;
    st_buf_init(&q, 0);
    st_rc rc = st_buf_printf(&q, "SELECT %s(0", name);
    for (size_t i = 1; rc == ST_OK && i < n_params; i++)
        rc = st_buf_puts(&q, ", 0");
    rc = rc ? rc : st_buf_puts(&q, ") LIMIT 0");
    if (rc) {
        st_buf_free(&q);
        return st_fail(err, rc, "%s", name);
    }
    bool present = st_engine_exec(eng, q.data, NULL) == ST_OK;
    st_buf_free(&q);
    if (present)
        return ST_OK;
    duckdb_scalar_function f = duckdb_create_scalar_function();
    duckdb_scalar_function_set_name(f, name);
    for (size_t i = 0; i < n_params; i++) {
        duckdb_logical_type t = duckdb_create_logical_type(params[i]);
        duckdb_scalar_function_add_parameter(f, t);
        duckdb_destroy_logical_type(&t);
    }
    duckdb_logical_type ot = duckdb_create_logical_type(DUCKDB_TYPE_BOOLEAN);
    duckdb_scalar_function_set_return_type(f, ot);
    duckdb_scalar_function_set_function(f, fn);
    if (duckdb_register_scalar_function(st_engine_conn(eng), f) == DuckDBError)
        rc = st_fail(err, ST_ERR_ENGINE, "registering %s", name);
    duckdb_destroy_logical_type(&ot);
    duckdb_destroy_scalar_function(&f);
    return rc;
}

static st_rc register_rowsel(st_engine *eng, st_err *err)
{
    static const duckdb_type rp[] = {DUCKDB_TYPE_BIGINT, DUCKDB_TYPE_INTEGER, DUCKDB_TYPE_BIGINT};
    static const duckdb_type kp[] = {DUCKDB_TYPE_BIGINT, DUCKDB_TYPE_BIGINT};
    st_rc rc = register_fn(eng, "st_silver_rowsel", rowsel_fn, rp, 3, err);
    return rc ? rc : register_fn(eng, "st_silver_keyin", keyin_fn, kp, 2, err);
}

static bool is_part_col(const st_delta_metadata *m, const char *name)
{
    for (size_t k = 0; k < m->n_partition_columns; k++)
        if (!strcmp(m->partition_columns[k], name))
            return true;
    return false;
}

/* The live files of s that may hold keys of the batch (partition values,
 * min/max statistics against `prune`), as flags indexed like s->files. */
static st_rc files_in_use(const st_delta_snapshot *s, const char *prune, bool **out, size_t *n_use,
                          st_err *err)
{
    bool *use = st_calloc(s->n_files + 1, sizeof *use);
    *n_use = 0;
    if (!use)
        return st_fail(err, ST_ERR_NOMEM, "reading %s", s->table_path);
    if (prune) {
        st_delta_file **pf = NULL;
        size_t n_pf = 0;
        st_rc rc = st_delta_prune(s, prune, &pf, &n_pf, err);
        for (size_t i = 0, j = 0; rc == ST_OK && i < s->n_files && j < n_pf; i++)
            if (s->files[i] == pf[j]) {
                use[i] = true;
                j++;
            }
        st_free(pf);
        if (rc) {
            st_free(use);
            return rc;
        }
    } else {
        for (size_t i = 0; i < s->n_files; i++)
            use[i] = true;
    }
    for (size_t i = 0; i < s->n_files; i++)
        *n_use += use[i];
    *out = use;
    return ST_OK;
}

/* The key column the scan can filter on by value: the first non-partition
 * key column that is an integer in both the table and the batch (compared
 * as BIGINT) or a string in both (compared by XXH3 of the text).  Other
 * types are left out, as their values could compare equal in SQL and
 * differently as text.  *expr is the SQL that maps the column to the
 * BIGINT the set holds (OWNED); NULL when no column qualifies. */
static st_rc filter_key(st_engine *eng, const st_delta_metadata *m, char **keys, size_t n_keys,
                        char **expr, st_err *err)
{
    *expr = NULL;
    for (size_t i = 0; i < n_keys; i++) {
        if (is_part_col(m, keys[i]))
            continue;
        const st_dfield *f = st_delta_schema_find(m->schema, keys[i]);
        if (!f)
            continue;
        st_dtype_kind k = f->type.kind;
        bool t_int = k == ST_DT_BYTE || k == ST_DT_SHORT || k == ST_DT_INTEGER || k == ST_DT_LONG;
        bool t_str = k == ST_DT_STRING;
        if (!t_int && !t_str)
            continue;
        st_buf q;
        st_buf_init(&q, 0);
        st_rc rc = st_buf_puts(&q, "SELECT column_type FROM (DESCRIBE _st_in) WHERE "
                                   "column_name = ");
        rc = rc ? rc : st_buf_sql_str(&q, keys[i]);
        duckdb_result r;
        rc = rc ? rc : st_engine_query(eng, q.data, &r, err);
        st_buf_free(&q);
        if (rc)
            return rc;
        char *bt = duckdb_row_count(&r) ? duckdb_value_varchar(&r, 0, 0) : NULL;
        duckdb_destroy_result(&r);
        static const char *const ints[] = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT",
                                           "UTINYINT", "USMALLINT", "UINTEGER"};
        bool b_int = false;
        for (size_t j = 0; bt && j < sizeof ints / sizeof *ints; j++)
            b_int = b_int || !strcmp(bt, ints[j]);
        bool b_str = bt && !strcmp(bt, "VARCHAR");
        duckdb_free(bt);
        if ((t_int && b_int) || (t_str && b_str)) {
            st_buf e;
            st_buf_init(&e, 0);
            rc = st_buf_puts(&e, t_int ? "CAST(" : "st_xxh64(");
            rc = rc ? rc : st_buf_sql_ident(&e, keys[i]);
            rc = rc ? rc : st_buf_puts(&e, t_int ? " AS BIGINT)" : ")");
            if (rc) {
                st_buf_free(&e);
                return st_fail(err, rc, "silver: key filter");
            }
            *expr = st_buf_take(&e);
            return ST_OK;
        }
    }
    return ST_OK;
}

/* Beyond this many files the per-file scans of the two-step read would make
 * one very deep UNION; the plain scan with a join is used instead. */
enum { MAX_PER_FILE_SCANS = 256 };

/* Creates view _st_rows (table columns, _st_fi, _st_pos) over the rows of s
 * whose non-partition key columns appear in _st_in (and possibly a few more:
 * the caller joins on the whole key), minus the rows deleted by deletion
 * vectors.  With a filter key (filter_key), the scan of all files filters
 * on its values through st_silver_keyin, so the other columns are decoded
 * only for the matching rows.  Otherwise the key columns first locate the
 * rows and one scan per file reads them through st_silver_rowsel.  *sel
 * must be freed with rowsel_free after the last query over _st_rows.  Falls
 * back to scan_with_pos with a join when every key column is a partition
 * column or there are too many files. */
static st_rc fetch_affected(st_engine *eng, const st_delta_snapshot *s, char **keys,
                            size_t n_keys, const char *prune, rowsel **sel, bool *has_rows,
                            st_err *err)
{
    const st_delta_metadata *m = &s->metadata;
    size_t n_np = 0;
    for (size_t i = 0; i < n_keys; i++)
        n_np += !is_part_col(m, keys[i]);
    *sel = NULL;
    if (n_np == 0)
        return scan_with_pos(eng, s, "_st_rows", keys, n_keys, prune, NULL, has_rows, err);
    bool *use = NULL;
    size_t n_use = 0;
    st_rc rc = files_in_use(s, prune, &use, &n_use, err);
    if (rc)
        return rc;
    *has_rows = n_use > 0;
    if (!*has_rows) {
        st_free(use);
        return ST_OK;
    }
    st_buf b;
    st_buf_init(&b, 0);
    duckdb_result r;
    bool have_r = false;
    rowsel *rs = NULL;
    char *fexpr = NULL;
    rc = register_rowsel(eng, err);
    rc = rc ? rc : filter_key(eng, m, keys, n_keys, &fexpr, err);
    rc = rc ? rc : rowsel_new(s->n_files, &rs, err);
    if (rc == ST_OK && fexpr) {
        /* the set of the batch's values of the filter key */
        int64_t n_in = 0;
        rc = st_engine_query_i64(eng, "SELECT count(*) FROM _st_in", &n_in, err);
        rc = rc ? rc : st_buf_printf(&b, "SELECT DISTINCT %s FROM _st_in", fexpr);
        rc = rc ? rc : st_engine_query(eng, b.data, &r, err);
        have_r = rc == ST_OK;
        st_buf_reset(&b);
        for (idx_t c = 0; rc == ST_OK; c++) {
            duckdb_data_chunk ch = duckdb_result_get_chunk(r, c);
            if (!ch)
                break;
            idx_t n = duckdb_data_chunk_get_size(ch);
            const int64_t *v =
                (const int64_t *)duckdb_vector_get_data(duckdb_data_chunk_get_vector(ch, 0));
            for (idx_t i = 0; rc == ST_OK && i < n; i++)
                rc = keyset_add(rs, (uint64_t)v[i], (size_t)n_in, err);
            duckdb_destroy_data_chunk(&ch);
        }
        if (have_r)
            duckdb_destroy_result(&r);
        rc = rc ? rc : st_buf_printf(&b, "st_silver_keyin(%llu, %s)", (unsigned long long)rs->token,
                                     fexpr);
        rc = rc ? rc : scan_with_pos(eng, s, "_st_rows", NULL, 0, prune, b.data, has_rows, err);
        goto done;
    }
    if (rc == ST_OK && n_use > MAX_PER_FILE_SCANS) {
        rc = scan_with_pos(eng, s, "_st_rows", keys, n_keys, prune, NULL, has_rows, err);
        goto done;
    }
    /* 1. where the batch's keys are: key columns only */
    rc = rc ? rc : st_buf_puts(&b, "SELECT _st_fi, _st_pos FROM (");
    for (size_t i = 0, k = 0; rc == ST_OK && i < s->n_files; i++) {
        if (!use[i])
            continue;
        rc = st_buf_printf(&b, "%sSELECT %zu AS _st_fi, file_row_number AS _st_pos",
                           k++ ? " UNION ALL " : "", i);
        for (size_t j = 0; rc == ST_OK && j < n_keys; j++)
            if (!is_part_col(m, keys[j])) {
                rc = st_buf_puts(&b, ", ");
                rc = rc ? rc : st_buf_sql_ident(&b, keys[j]);
            }
        rc = rc ? rc : st_buf_puts(&b, " FROM read_parquet(");
        rc = rc ? rc : st_buf_sql_str(&b, s->files[i]->abs_path);
        rc = rc ? rc : st_buf_puts(&b, ", file_row_number = true, hive_partitioning = false)");
    }
    rc = rc ? rc : st_buf_puts(&b, ") r SEMI JOIN (SELECT DISTINCT ");
    for (size_t j = 0, c = 0; rc == ST_OK && j < n_keys; j++)
        if (!is_part_col(m, keys[j])) {
            rc = st_buf_puts(&b, c++ ? ", " : "");
            rc = rc ? rc : st_buf_sql_ident(&b, keys[j]);
        }
    rc = rc ? rc : st_buf_puts(&b, " FROM _st_in) k ON ");
    for (size_t j = 0, c = 0; rc == ST_OK && j < n_keys; j++)
        if (!is_part_col(m, keys[j])) {
            rc = st_buf_puts(&b, c++ ? " AND r." : "r.");
            rc = rc ? rc : st_buf_sql_ident(&b, keys[j]);
            rc = rc ? rc : st_buf_puts(&b, " = k.");
            rc = rc ? rc : st_buf_sql_ident(&b, keys[j]);
        }
    rc = rc ? rc : st_engine_query(eng, b.data, &r, err);
    have_r = rc == ST_OK;
    st_buf_reset(&b);
    /* the result is read chunk by chunk: value-by-value access would cost
     * more than the scan */
    for (idx_t c = 0; rc == ST_OK && have_r; c++) {
        duckdb_data_chunk ch = duckdb_result_get_chunk(r, c);
        if (!ch)
            break;
        idx_t n = duckdb_data_chunk_get_size(ch);
        const int32_t *fi =
            (const int32_t *)duckdb_vector_get_data(duckdb_data_chunk_get_vector(ch, 0));
        const int64_t *pos =
            (const int64_t *)duckdb_vector_get_data(duckdb_data_chunk_get_vector(ch, 1));
        for (idx_t i = 0; rc == ST_OK && i < n; i++)
            rc = rowsel_set(rs, (size_t)fi[i], (uint64_t)pos[i], true, err);
        duckdb_destroy_data_chunk(&ch);
    }
    if (have_r)
        duckdb_destroy_result(&r);
    /* rows already deleted by deletion vectors are not stored versions */
    for (size_t i = 0; rc == ST_OK && i < s->n_files; i++) {
        if (!use[i] || !s->files[i]->has_dv || !rs->bits[i])
            continue;
        uint64_t *pos = NULL;
        size_t n = 0;
        rc = st_delta_dv_load(s->table_path, &s->files[i]->dv, &pos, &n, err);
        for (size_t k = 0; rc == ST_OK && k < n; k++)
            rc = rowsel_set(rs, i, pos[k], false, err);
        st_free(pos);
    }
    /* 2. the selected rows, every column, partition values as constants */
    rc = rc ? rc : st_buf_puts(&b, "CREATE OR REPLACE TEMP VIEW _st_rows AS SELECT ");
    for (size_t i = 0; rc == ST_OK && i < m->schema->n_fields; i++) {
        rc = st_buf_sql_ident(&b, m->schema->fields[i].name);
        rc = rc ? rc : st_buf_puts(&b, ", ");
    }
    rc = rc ? rc : st_buf_puts(&b, "_st_fi, _st_pos FROM (");
    bool any = false;
    for (size_t i = 0; rc == ST_OK && i < s->n_files; i++) {
        const st_delta_file *f = s->files[i];
        if (!use[i] || !rs->bits[i])
            continue;
        rc = st_buf_puts(&b, any ? " UNION ALL BY NAME SELECT *" : "SELECT *");
        any = true;
        for (size_t k = 0; rc == ST_OK && k < m->n_partition_columns; k++) {
            const char *v = NULL;
            for (size_t j = 0; j < f->n_part; j++)
                if (!strcmp(f->part[j].key, m->partition_columns[k]))
                    v = f->part[j].value;
            const st_dfield *fd = st_delta_schema_find(m->schema, m->partition_columns[k]);
            rc = st_buf_puts(&b, ", ");
            rc = rc ? rc
                    : (fd ? st_delta_part_literal(&fd->type, v, &b, err) : st_buf_puts(&b, "NULL"));
            rc = rc ? rc : st_buf_puts(&b, " AS ");
            rc = rc ? rc : st_buf_sql_ident(&b, m->partition_columns[k]);
        }
        rc = rc ? rc : st_buf_printf(&b, ", CAST(%zu AS INTEGER) AS _st_fi, file_row_number AS "
                                         "_st_pos FROM read_parquet(", i);
        rc = rc ? rc : st_buf_sql_str(&b, f->abs_path);
        rc = rc ? rc : st_buf_printf(&b, ", file_row_number = true, hive_partitioning = false) "
                                         "WHERE st_silver_rowsel(%llu, %zu, file_row_number)",
                                     (unsigned long long)rs->token, i);
    }
    *has_rows = any;
    rc = rc ? rc : (any ? st_buf_puts(&b, ")") : ST_OK);
    rc = rc ? rc : (any ? st_engine_exec(eng, b.data, err) : ST_OK);
done:
    st_buf_free(&b);
    st_free(use);
    st_free(fexpr);
    if (rc) {
        rowsel_free(rs);
        st_err_ctx(err, "reading silver table %s", s->table_path);
        return rc;
    }
    *sel = rs;
    return ST_OK;
}

/* A predicate that bounds the batch's keys, for file pruning: IN lists for
 * partition columns with few values, [min, max] for integer and string key
 * columns.  NULL (no pruning) when nothing applies.  OWNED. */
static char *key_bounds(st_engine *eng, const scd_plan *p, const st_delta_snapshot *s)
{
    st_buf b, q;
    st_buf_init(&b, 0);
    st_buf_init(&q, 0);
    for (size_t i = 0; i < p->n_key; i++) {
        bool is_part = false;
        for (size_t k = 0; k < s->metadata.n_partition_columns; k++)
            is_part = is_part || !strcmp(s->metadata.partition_columns[k], p->key[i]);
        st_buf_reset(&q);
        st_buf_puts(&q, "SELECT typeof(min(");
        st_buf_sql_ident(&q, p->key[i]);
        st_buf_puts(&q, is_part ? ")), count(DISTINCT " : ")), count(");
        st_buf_sql_ident(&q, p->key[i]);
        st_buf_puts(&q, "), CAST(min(");
        st_buf_sql_ident(&q, p->key[i]);
        st_buf_puts(&q, ") AS VARCHAR), CAST(max(");
        st_buf_sql_ident(&q, p->key[i]);
        st_buf_puts(&q, ") AS VARCHAR), ");
        if (is_part) {
            /* the value list only serves partition columns */
            st_buf_puts(&q, "string_agg(DISTINCT CAST(");
            st_buf_sql_ident(&q, p->key[i]);
            st_buf_puts(&q, " AS VARCHAR), chr(31))");
        } else {
            st_buf_puts(&q, "NULL");
        }
        st_buf_puts(&q, " FROM _st_in");
        duckdb_result r;
        if (!q.data || st_engine_query(eng, q.data, &r, NULL) != ST_OK)
            continue;
        char *ty = duckdb_value_varchar(&r, 0, 0);
        int64_t n = duckdb_value_int64(&r, 1, 0);
        char *lo = duckdb_value_varchar(&r, 2, 0), *hi = duckdb_value_varchar(&r, 3, 0);
        char *all = duckdb_value_varchar(&r, 4, 0);
        bool is_str = ty && !strcmp(ty, "VARCHAR");
        bool is_int = ty && (strstr(ty, "INT") != NULL);
        if (ty && lo && hi && (is_str || is_int)) {
            st_buf_puts(&b, b.len ? " AND " : "");
            st_buf_sql_ident(&b, p->key[i]);
            if (is_part && is_str && all && n > 0 && n <= 64) {
                st_buf_puts(&b, " IN (");
                bool first = true;
                for (char *v = all; v;) {
                    char *sep = strchr(v, '\x1f');
                    if (sep)
                        *sep = '\0';
                    st_buf_puts(&b, first ? "" : ", ");
                    st_buf_sql_str(&b, v);
                    first = false;
                    v = sep ? sep + 1 : NULL;
                }
                st_buf_puts(&b, ")");
            } else if (is_str) {
                st_buf_puts(&b, " >= ");
                st_buf_sql_str(&b, lo);
                st_buf_puts(&b, " AND ");
                st_buf_sql_ident(&b, p->key[i]);
                st_buf_puts(&b, " <= ");
                st_buf_sql_str(&b, hi);
            } else {
                st_buf_printf(&b, " >= %s AND ", lo);
                st_buf_sql_ident(&b, p->key[i]);
                st_buf_printf(&b, " <= %s", hi);
            }
        }
        duckdb_free(ty);
        duckdb_free(lo);
        duckdb_free(hi);
        duckdb_free(all);
        duckdb_destroy_result(&r);
    }
    st_buf_free(&q);
    return b.len ? st_buf_take(&b) : (st_buf_free(&b), NULL);
}

/* ---------------------------------------------------------------- committing */

/* Marks the rows of query `pos_sql` (columns _st_fi, _st_pos, sorted) as
 * deleted: one DV per touched file of s, committed as remove(path, old DV) +
 * add(path, new DV), the protocol's way to give a file a new DV. */
static st_rc retire_rows(st_engine *eng, st_delta_txn *t, const st_delta_snapshot *s,
                         const char *pos_sql, st_silver_stats *stats, st_err *err)
{
    duckdb_result r;
    st_rc rc = st_engine_query(eng, pos_sql, &r, err);
    if (rc)
        return rc;
    idx_t n = duckdb_row_count(&r);
    uint64_t *pos = st_malloc((n + 1) * sizeof *pos);
    int32_t *fi = st_malloc((n + 1) * sizeof *fi);
    if (!pos || !fi) {
        rc = st_fail(err, ST_ERR_NOMEM, "retiring %llu rows", (unsigned long long)n);
        goto done;
    }
    for (idx_t i = 0; i < n; i++) {
        fi[i] = duckdb_value_int32(&r, 0, i);
        pos[i] = (uint64_t)duckdb_value_int64(&r, 1, i);
    }
    for (idx_t i = 0; rc == ST_OK && i < n;) {
        idx_t j = i;
        while (j < n && fi[j] == fi[i])
            j++;
        if (fi[i] < 0 || (size_t)fi[i] >= s->n_files) {
            rc = st_fail(err, ST_ERR_CORRUPT, "silver: bad file index %d", (int)fi[i]);
            break;
        }
        const st_delta_file *f = s->files[fi[i]];
        st_delta_dv dv;
        memset(&dv, 0, sizeof dv);
        int64_t bytes = 0;
        rc = st_delta_dv_build(s->table_path, pos + i, j - i, f->has_dv ? &f->dv : NULL, &dv,
                               &bytes, err);
        rc = rc ? rc : st_delta_txn_remove(t, f, true, err);
        if (rc == ST_OK) {
            st_delta_file nf = *f;
            nf.has_dv = true;
            nf.dv = dv;
            nf.modification_time = st_now_ms();
            nf.data_change = true;
            rc = st_delta_txn_add(t, &nf, err);
        }
        st_delta_dv_clear(&dv);
        if (stats) {
            stats->files_touched++;
            stats->rows_deleted += (int64_t)(j - i);
            stats->bytes_written += bytes;
        }
        i = j;
    }
done:
    duckdb_destroy_result(&r);
    st_free(pos);
    st_free(fi);
    return rc;
}

/* Schema of the silver table from the columns of _st_new. OWNED *out. */
static st_rc schema_of_new(st_engine *eng, st_delta_schema **out, st_err *err)
{
    duckdb_result r;
    st_rc rc = st_engine_query(eng, "SELECT * FROM _st_new LIMIT 0", &r, err);
    if (rc)
        return rc;
    idx_t n = duckdb_column_count(&r);
    st_delta_schema *s = st_calloc(1, sizeof *s);
    if (s)
        s->fields = st_calloc(n, sizeof *s->fields);
    if (!s || !s->fields) {
        st_free(s);
        duckdb_destroy_result(&r);
        return st_fail(err, ST_ERR_NOMEM, "silver schema");
    }
    for (idx_t i = 0; rc == ST_OK && i < n; i++) {
        st_dfield *f = &s->fields[i];
        duckdb_logical_type lt = duckdb_column_logical_type(&r, i);
        rc = st_delta_type_from_duckdb(lt, &f->type, err);
        duckdb_destroy_logical_type(&lt);
        if (rc)
            break;
        s->n_fields++;
        f->name = st_strdup(duckdb_column_name(&r, i));
        f->metadata_json = st_strdup("{}");
        f->nullable = true;
        if (!f->name || !f->metadata_json)
            rc = st_fail(err, ST_ERR_NOMEM, "silver schema");
    }
    duckdb_destroy_result(&r);
    if (rc) {
        st_delta_schema_free(s);
        return rc;
    }
    *out = s;
    return ST_OK;
}

static st_rc create_table(st_engine *eng, const scd_plan *p, const char *table_path, st_err *err)
{
    st_delta_schema *schema = NULL;
    st_rc rc = schema_of_new(eng, &schema, err);
    if (rc)
        return rc;
    st_kv props[] = {{"delta.enableDeletionVectors", "true"}};
    st_delta_create_opts o = {0};
    o.name = p->ent->name;
    o.description = "Strata silver entity (SCD Type 2)";
    o.partition_by = (const char *const *)p->part;
    o.n_partition_by = p->n_part;
    o.properties = props;
    o.n_properties = 1;
    rc = st_mkdirs(table_path, err);
    /* the property makes version 0 reader 3 / writer 7 with deletionVectors */
    rc = rc ? rc : st_delta_create(table_path, schema, &o, err);
    st_delta_schema_free(schema);
    return rc;
}

static const st_delta_apptxn *find_app(const st_delta_snapshot *s, const char *app_id)
{
    for (size_t i = 0; s && app_id && i < s->n_txns; i++)
        if (!strcmp(s->txns[i].app_id, app_id))
            return &s->txns[i];
    return NULL;
}

st_rc st_silver_merge_delta(st_engine *eng, const st_silver_entity *ent, const char *in_sql,
                            const char *table_path, const char *batch_id, const char *app_id,
                            int64_t app_version, st_silver_stats *stats, st_err *err)
{
    st_silver_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    stats->version = -1;
    stats->source_version = -1;
    char uuid[37];
    if (!batch_id) {
        st_uuid4(uuid);
        batch_id = uuid;
    }
    scd_plan p;
    memset(&p, 0, sizeof p);
    st_delta_snapshot *snap = NULL;
    st_delta_txn *t = NULL;
    rowsel *sel = NULL;
    st_parquet_file *pf = NULL;
    size_t n_pf = 0;
    st_buf b;
    st_buf_init(&b, 0);
    int64_t latest = -1;
    bool has_rows = false;
    st_debug("silver %s: merge into %s", ent->name, table_path);
    st_rc rc = st_delta_latest_version(table_path, &latest, err);
    if (rc)
        goto done;
    if (latest >= 0) {
        rc = st_delta_snapshot_load(eng, table_path, -1, &snap, err);
        if (rc)
            goto done;
        const st_delta_apptxn *a = find_app(snap, app_id);
        if (a && a->version >= app_version) {
            stats->skipped = true;
            goto done;
        }
    }
    st_debug("silver %s: snapshot loaded", ent->name);
    rc = scd_prepare(eng, ent, in_sql, &p, err);
    if (rc)
        goto done;
    st_debug("silver %s: batch prepared", ent->name);
    if (snap && ent->delete_kind == ST_SILVER_DELETE_MISSING) {
        rc = scan_with_pos(eng, snap, "_st_all", NULL, 0, NULL, NULL, &has_rows, err);
        rc = rc ? rc : (has_rows ? scd_add_missing(eng, &p, "SELECT * FROM _st_all", err) : ST_OK);
        if (rc)
            goto done;
    }
    if (snap) {
        char *bounds = key_bounds(eng, &p, snap);
        st_debug("silver %s: bounds %s", ent->name, bounds ? bounds : "(none)");
        rc = fetch_affected(eng, snap, p.key, p.n_key, bounds, &sel, &has_rows, err);
        st_free(bounds);
        if (rc)
            goto done;
    }
    st_debug("silver %s: batch read", ent->name);
    if (has_rows) {
        /* the stored versions of the batch's keys */
        rc = st_buf_puts(&b, "CREATE OR REPLACE TEMP TABLE _st_old AS SELECT ");
        rc = rc ? rc : scd_put_cols(&b, p.cols, p.n_cols, "o");
        /* only what the rebuild needs: _valid_to and _seq follow from the
         * others, _sk and _row_hash are recomputed (cheaper than decoding
         * them for every row of the table) */
        rc = rc ? rc : st_buf_puts(&b, ", o._valid_from, o._is_current, o._is_deleted, o._version, "
                                       "o._noop_seqs, o._st_fi, "
                                       "o._st_pos FROM _st_rows o SEMI JOIN (SELECT DISTINCT ");
        rc = rc ? rc : scd_put_cols(&b, p.key, p.n_key, NULL);
        rc = rc ? rc : st_buf_puts(&b, " FROM _st_in) k ON ");
        rc = rc ? rc : scd_put_join(&b, p.key, p.n_key, "o", "k");
        rc = rc ? rc : scd_run(eng, &b, err);
    } else {
        rc = scd_empty_old(eng, &p, err);
    }
    st_debug("silver %s: stored versions read", ent->name);
    rc = rc ? rc : scd_rebuild(eng, &p, batch_id, stats, err);
    if (rc)
        goto done;
    st_debug("silver %s: rebuilt", ent->name);
    if (!snap) {
        if (stats->rows_written == 0) {
            stats->skipped = true;
            goto done;
        }
        rc = create_table(eng, &p, table_path, err);
        rc = rc ? rc : st_delta_snapshot_load(eng, table_path, -1, &snap, err);
        if (rc)
            goto done;
    }
    rc = st_delta_txn_begin(eng, table_path, snap, "MERGE", &t, err);
    rc = rc ? rc : st_delta_txn_param(t, "predicate", "silver SCD2 rebuild of affected keys", err);
    if (rc)
        goto done;
    if (stats->rows_written > 0) {
        const st_delta_schema *schema = snap->metadata.schema;
        rc = st_buf_puts(&b, "SELECT ");
        rc = rc ? rc : st_deltaw_select_list(schema, st_delta_cm_mode(snap), NULL, &b);
        rc = rc ? rc : st_buf_puts(&b, " FROM _st_new");
        if (rc) {
            rc = st_fail(err, rc, "silver %s: building the write", ent->name);
            goto done;
        }
        rc = st_deltaw_write_rows(eng, snap, b.data, table_path, 0, 0, 0, &pf, &n_pf, err);
        st_buf_reset(&b);
        st_delta_result res = {0};
        rc = rc ? rc : st_deltaw_add_written(t, schema, pf, n_pf, true, &res, err);
        stats->bytes_written += res.bytes_added;
        if (rc)
            goto done;
        st_debug("silver %s: new versions written", ent->name);
    }
    if (has_rows && stats->keys_changed > 0) {
        rc = st_buf_puts(&b, "SELECT _st_fi, _st_pos FROM _st_old o SEMI JOIN _st_ret c ON ");
        rc = rc ? rc : scd_put_join(&b, p.key, p.n_key, "o", "c");
        rc = rc ? rc : st_buf_puts(&b, " AND o._valid_from = c._valid_from ORDER BY _st_fi, _st_pos");
        rc = rc ? rc : retire_rows(eng, t, snap, b.data, stats, err);
        st_buf_reset(&b);
        if (rc)
            goto done;
    }
    if (app_id)
        rc = st_delta_txn_set_app(t, app_id, app_version, err);
    if (rc)
        goto done;
    if (stats->keys_changed == 0 && !app_id) {
        stats->skipped = true;
        goto done;
    }
    st_debug("silver %s: deletion vectors written", ent->name);
    rc = st_delta_txn_commit(t, &stats->version, err);
    t = NULL;
    st_debug("silver %s: committed", ent->name);
done:
    if (rc)
        st_err_ctx(err, "silver %s -> %s", ent->name, table_path);
    st_delta_txn_abort(t);
    rowsel_free(sel);
    st_parquet_files_free(pf, n_pf);
    st_delta_snapshot_free(snap);
    st_buf_free(&b);
    scd_plan_clear(&p);
    return rc;
}

/* ---------------------------------------------------------------- erase */

st_rc st_silver_erase(st_engine *eng, const char *table_path, const char *key_predicate,
                      st_silver_stats *stats, st_err *err)
{
    st_silver_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    stats->version = -1;
    stats->source_version = -1;
    st_delta_snapshot *snap = NULL;
    st_delta_txn *t = NULL;
    bool has_rows = false;
    char *sql = NULL;
    st_rc rc = st_delta_snapshot_load(eng, table_path, -1, &snap, err);
    rc = rc ? rc : scan_with_pos(eng, snap, "_st_rows", NULL, 0, NULL, NULL, &has_rows, err);
    if (rc || !has_rows)
        goto done;
    sql = st_sprintf("SELECT _st_fi, _st_pos FROM _st_rows WHERE (%s) ORDER BY _st_fi, _st_pos",
                     key_predicate);
    if (!sql) {
        rc = st_fail(err, ST_ERR_NOMEM, "erase");
        goto done;
    }
    rc = st_delta_txn_begin(eng, table_path, snap, "DELETE", &t, err);
    rc = rc ? rc : st_delta_txn_param(t, "predicate", key_predicate, err);
    rc = rc ? rc : retire_rows(eng, t, snap, sql, stats, err);
    if (rc)
        goto done;
    if (stats->rows_deleted == 0) {
        stats->skipped = true;
        goto done;
    }
    rc = st_delta_txn_commit(t, &stats->version, err);
    t = NULL;
done:
    if (rc)
        st_err_ctx(err, "erasing from %s", table_path);
    st_delta_txn_abort(t);
    st_delta_snapshot_free(snap);
    st_free(sql);
    return rc;
}

/* ---------------------------------------------------------------- views */

st_rc st_silver_register_views(st_engine *eng, const char *table_path, const char *prefix,
                               st_err *err)
{
    st_delta_snapshot *snap = NULL;
    char *hist = st_sprintf("%s_history", prefix);
    st_rc rc = hist ? st_delta_snapshot_load(eng, table_path, -1, &snap, err)
                    : st_fail(err, ST_ERR_NOMEM, "views");
    rc = rc ? rc : st_delta_register_view(eng, hist, snap, err);
    rc = rc ? rc : st_engine_execf(eng, err,
                                   "CREATE OR REPLACE VIEW \"%s_current\" AS SELECT * FROM \"%s\" "
                                   "WHERE _is_current AND NOT _is_deleted",
                                   prefix, hist);
    rc = rc ? rc : st_engine_execf(eng, err,
                                   "CREATE OR REPLACE MACRO \"%s_as_of\"(ts) AS TABLE SELECT * "
                                   "FROM \"%s\" WHERE _valid_from <= ts AND (_valid_to IS NULL OR "
                                   "_valid_to > ts) AND NOT _is_deleted",
                                   prefix, hist);
    st_delta_snapshot_free(snap);
    st_free(hist);
    return rc;
}

/* ---------------------------------------------------------------- incremental run */

static bool same_file(const st_delta_file *a, const st_delta_file *b)
{
    if (strcmp(a->path, b->path) || a->has_dv != b->has_dv)
        return false;
    if (!a->has_dv)
        return true;
    char *x = st_delta_dv_unique_id(&a->dv), *y = st_delta_dv_unique_id(&b->dv);
    bool eq = x && y && !strcmp(x, y);
    st_free(x);
    st_free(y);
    return eq;
}

st_rc scd_app_version(st_engine *eng, const char *path, const char *app_id, int64_t *out,
                      st_err *err)
{
    *out = -1;
    int64_t latest = -1;
    st_rc rc = st_delta_latest_version(path, &latest, err);
    if (rc || latest < 0)
        return rc;
    st_delta_snapshot *s = NULL;
    rc = st_delta_snapshot_load(eng, path, -1, &s, err);
    const st_delta_apptxn *a = rc ? NULL : find_app(s, app_id);
    if (a)
        *out = a->version;
    st_delta_snapshot_free(s);
    return rc;
}

st_rc scd_bronze_increment(st_engine *eng, const char *bronze, int64_t done_v, char **out_sql,
                           int64_t *out_version, st_err *err)
{
    st_delta_snapshot *bs = NULL, *bold = NULL;
    st_delta_file **newf = NULL;
    st_rc rc = st_delta_snapshot_load(eng, bronze, -1, &bs, err);
    if (rc)
        return rc;
    *out_version = bs->version;
    /* only the files bronze gained since the processed version; a file seen
     * again (e.g. rewritten with a DV) only repeats changes, which the
     * rebuild deduplicates */
    st_delta_snapshot sub = *bs;
    if (done_v >= 0 && done_v < bs->version) {
        rc = st_delta_snapshot_load(eng, bronze, done_v, &bold, err);
        if (rc)
            goto done;
        newf = st_calloc(bs->n_files + 1, sizeof *newf);
        if (!newf) {
            rc = st_fail(err, ST_ERR_NOMEM, "reading %s", bronze);
            goto done;
        }
        size_t n = 0;
        for (size_t i = 0, j = 0; i < bs->n_files; i++) {
            while (j < bold->n_files && strcmp(bold->files[j]->path, bs->files[i]->path) < 0)
                j++;
            if (j < bold->n_files && same_file(bold->files[j], bs->files[i]))
                continue;
            newf[n++] = bs->files[i];
        }
        sub.files = newf;
        sub.n_files = n;
    }
    rc = st_delta_scan_sql(eng, &sub, NULL, out_sql, err);
done:
    st_free(newf);
    st_delta_snapshot_free(bs);
    st_delta_snapshot_free(bold);
    return rc;
}

st_rc st_silver_run(st_engine *eng, const char *lake_dir, const st_silver_entity *ent,
                    st_silver_stats *stats, st_err *err)
{
    st_silver_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    stats->version = -1;
    char *bronze = st_silver_table_path(lake_dir, ent->from);
    char *name = st_sprintf("silver.%s", ent->name);
    char *silver = name ? st_silver_table_path(lake_dir, name) : NULL;
    char *sql = NULL;
    int64_t done_v = -1, bv = -1;
    st_rc rc = ST_OK;
    if (!bronze || !silver) {
        rc = st_fail(err, ST_ERR_NOMEM, "silver %s", ent->name);
        goto done;
    }
    rc = scd_app_version(eng, silver, name, &done_v, err);
    rc = rc ? rc : st_delta_latest_version(bronze, &bv, err);
    if (rc == ST_OK && bv < 0)
        rc = st_fail(err, ST_ERR_NOTFOUND, "bronze table %s does not exist", bronze);
    if (rc)
        goto done;
    stats->source_version = bv;
    if (done_v >= bv) {
        stats->skipped = true;
        goto done;
    }
    rc = scd_bronze_increment(eng, bronze, done_v, &sql, &bv, err);
    rc = rc ? rc : st_silver_merge_delta(eng, ent, sql, silver, NULL, name, bv, stats, err);
    stats->source_version = bv;
done:
    if (rc)
        st_err_ctx(err, "silver.%s", ent->name);
    st_free(sql);
    st_free(bronze);
    st_free(name);
    st_free(silver);
    return rc;
}
