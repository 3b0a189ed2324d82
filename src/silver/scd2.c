/*
 * scd2.c - the SCD Type 2 history rebuild, in DuckDB SQL over the affected
 * keys only.
 *
 * Input: temp table _st_in (the batch, with the delete flag _st_del) and
 * _st_old (the stored versions of the batch's keys).  Every stored version is
 * turned back into the changes it stands for (its start and the no-op changes
 * it absorbed, kept in _noop_seqs), the batch's changes are added, one change
 * per (key, sequence) survives (the tie-break rule), changes are sorted by
 * sequence, consecutive equal states collapse, and intervals are derived.
 * The result equals what in-order arrival of every change would give.  Keys
 * whose rebuilt history equals the stored one are left out, so replays and
 * duplicates write nothing.  Keys whose one batch change comes after all
 * they had skip the rebuild: only their current row is replaced (_st_sver).
 * merge.c applies the result to Delta; the plain DuckDB variant
 * st_silver_merge_duckdb is here too.
 */
#include "silver/silver_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

st_rc scd_put_cols(st_buf *b, char **cols, size_t n, const char *alias)
{
    st_rc rc = ST_OK;
    for (size_t i = 0; rc == ST_OK && i < n; i++) {
        rc = i ? st_buf_puts(b, ", ") : ST_OK;
        if (rc == ST_OK && alias)
            rc = st_buf_printf(b, "%s.", alias);
        rc = rc ? rc : st_buf_sql_ident(b, cols[i]);
    }
    return rc;
}

st_rc scd_put_join(st_buf *b, char **cols, size_t n, const char *l, const char *r)
{
    st_rc rc = ST_OK;
    for (size_t i = 0; rc == ST_OK && i < n; i++) {
        rc = st_buf_printf(b, "%s%s.", i ? " AND " : "", l);
        rc = rc ? rc : st_buf_sql_ident(b, cols[i]);
        rc = rc ? rc : st_buf_printf(b, " = %s.", r);
        rc = rc ? rc : st_buf_sql_ident(b, cols[i]);
    }
    return rc;
}

/* st_xxh64(text): XXH3-64 of the bytes, shifted to a positive BIGINT.
 * XXH3 is a specified algorithm, so stored hashes and surrogate keys stay
 * stable across DuckDB versions (DuckDB's hash() promises no such thing),
 * and it costs a tenth of md5. */
static void xxh_fn(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output)
{
    (void)info;
    idx_t n = duckdb_data_chunk_get_size(input);
    duckdb_vector v = duckdb_data_chunk_get_vector(input, 0);
    duckdb_string_t *data = (duckdb_string_t *)duckdb_vector_get_data(v);
    uint64_t *valid = duckdb_vector_get_validity(v);
    int64_t *out = (int64_t *)duckdb_vector_get_data(output);
    for (idx_t i = 0; i < n; i++) {
        if (valid && !duckdb_validity_row_is_valid(valid, i)) {
            duckdb_vector_ensure_validity_writable(output);
            duckdb_validity_set_row_invalid(duckdb_vector_get_validity(output), i);
            continue;
        }
        const char *p = duckdb_string_t_data(&data[i]);
        out[i] = (int64_t)(XXH3_64bits(p, duckdb_string_t_length(data[i])) >> 1);
    }
}

/* Registers st_xxh64 on the engine's connection once. */
static st_rc register_xxh(st_engine *eng, st_err *err)
{
    /* present already when a call binds (listing duckdb_functions() costs
     * tens of milliseconds) */
    if (st_engine_exec(eng, "SELECT st_xxh64('') LIMIT 0", NULL) == ST_OK)
        return ST_OK;
    st_rc rc = ST_OK;
    duckdb_scalar_function f = duckdb_create_scalar_function();
    duckdb_scalar_function_set_name(f, "st_xxh64");
    duckdb_logical_type vt = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
    duckdb_logical_type bt = duckdb_create_logical_type(DUCKDB_TYPE_BIGINT);
    duckdb_scalar_function_add_parameter(f, vt);
    duckdb_scalar_function_set_return_type(f, bt);
    duckdb_scalar_function_set_function(f, xxh_fn);
    if (duckdb_register_scalar_function(st_engine_conn(eng), f) == DuckDBError)
        rc = st_fail(err, ST_ERR_ENGINE, "registering st_xxh64");
    duckdb_destroy_logical_type(&vt);
    duckdb_destroy_logical_type(&bt);
    duckdb_destroy_scalar_function(&f);
    return rc;
}

/* A 63-bit hash of values as a positive BIGINT: XXH3 over the JSON array of
 * their text forms.  JSON escaping keeps concatenations unambiguous and NULL
 * distinct from '' and 'null'; the text form keeps the hash stable across
 * integer widening and Parquet round trips. */
static st_rc put_hash(st_buf *b, char **cols, size_t n, const char *alias,
                      const char *const *extra, size_t n_extra)
{
    st_rc rc = st_buf_puts(b, "st_xxh64(CAST(to_json([");
    for (size_t i = 0; rc == ST_OK && i < n + n_extra; i++) {
        rc = st_buf_puts(b, i ? ", CAST(" : "CAST(");
        if (rc == ST_OK && i < n) {
            if (alias)
                rc = st_buf_printf(b, "%s.", alias);
            rc = rc ? rc : st_buf_sql_ident(b, cols[i]);
        } else if (rc == ST_OK) {
            rc = st_buf_puts(b, extra[i - n]);
        }
        rc = rc ? rc : st_buf_puts(b, " AS VARCHAR)");
    }
    return rc ? rc : st_buf_puts(b, "]) AS VARCHAR))");
}

/* The head of a version row: the entity's columns, the surrogate key (a
 * hash of the business key and the version's start) and _valid_from, each
 * followed by ", ". */
static st_rc put_version_head(st_buf *b, const scd_plan *p)
{
    static const char *const vf[] = {"_vf"};
    st_rc rc = scd_put_cols(b, p->cols, p->n_cols, NULL);
    rc = rc ? rc : st_buf_puts(b, ", ");
    rc = rc ? rc : put_hash(b, p->key, p->n_key, NULL, vf, 1);
    return rc ? rc : st_buf_puts(b, " AS _sk, _vf AS _valid_from, ");
}

static bool has(char **l, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(l[i], s))
            return true;
    return false;
}

void scd_plan_clear(scd_plan *p)
{
    if (!p)
        return;
    st_arena_free(p->arena);
    memset(p, 0, sizeof *p);
}

static st_rc plan_push(scd_plan *p, char ***list, size_t *n, const char *s)
{
    if (has(*list, *n, s))
        return ST_OK;
    char **nl = st_arena_alloc(p->arena, (*n + 1) * sizeof *nl);
    if (!nl)
        return ST_ERR_NOMEM;
    if (*n)
        memcpy(nl, *list, *n * sizeof *nl);
    nl[*n] = st_arena_strdup(p->arena, s);
    if (!nl[*n])
        return ST_ERR_NOMEM;
    *list = nl;
    (*n)++;
    return ST_OK;
}

/* Column names and types of a relation, into the arena. */
static st_rc describe(st_engine *eng, const char *rel, scd_plan *p, char ***names, char ***types,
                      size_t *n, st_err *err)
{
    char *sql = st_sprintf("SELECT column_name, column_type FROM (DESCRIBE %s)", rel);
    duckdb_result r;
    st_rc rc = sql ? st_engine_query(eng, sql, &r, err) : st_fail(err, ST_ERR_NOMEM, "describe");
    st_free(sql);
    if (rc)
        return rc;
    idx_t rows = duckdb_row_count(&r);
    *names = st_arena_alloc(p->arena, (rows + 1) * sizeof **names);
    *types = st_arena_alloc(p->arena, (rows + 1) * sizeof **types);
    *n = 0;
    for (idx_t i = 0; *names && *types && i < rows; i++) {
        char *a = duckdb_value_varchar(&r, 0, i);
        char *t = duckdb_value_varchar(&r, 1, i);
        (*names)[i] = a ? st_arena_strdup(p->arena, a) : NULL;
        (*types)[i] = t ? st_arena_strdup(p->arena, t) : NULL;
        duckdb_free(a);
        duckdb_free(t);
        if (!(*names)[i] || !(*types)[i])
            break;
        (*n)++;
    }
    duckdb_destroy_result(&r);
    if (*n != rows)
        return st_fail(err, ST_ERR_NOMEM, "describe %s", rel);
    return ST_OK;
}

static st_rc add_role(scd_plan *p, const char *col, int role)
{
    for (size_t i = 0; i < p->n_cols; i++)
        if (!strcmp(p->cols[i], col))
            return ST_OK;
    size_t n = p->n_cols;
    st_rc rc = plan_push(p, &p->cols, &p->n_cols, col);
    if (rc)
        return rc;
    int *nr = st_arena_alloc(p->arena, (n + 1) * sizeof *nr);
    if (!nr)
        return ST_ERR_NOMEM;
    if (n)
        memcpy(nr, p->role, n * sizeof *nr);
    nr[n] = role;
    p->role = nr;
    return ST_OK;
}

st_rc scd_prepare(st_engine *eng, const st_silver_entity *ent, const char *in_sql, scd_plan *p,
                  st_err *err)
{
    memset(p, 0, sizeof *p);
    p->ent = ent;
    p->arena = st_arena_new(4096);
    if (!p->arena)
        return st_fail(err, ST_ERR_NOMEM, "silver %s", ent->name);
    st_rc rc = register_xxh(eng, err);
    rc = rc ? rc : st_engine_execf(eng, err,
                               "CREATE OR REPLACE TEMP TABLE _st_in AS SELECT *, "
                               "coalesce((%s), false) AS _st_del FROM (%s) _src",
                               ent->delete_kind == ST_SILVER_DELETE_EXPR ? ent->delete_expr
                                                                          : "false",
                               in_sql);
    if (rc) {
        st_err_ctx(err, "silver %s: reading the batch", ent->name);
        return rc;
    }
    char **names = NULL, **types = NULL;
    size_t n = 0;
    rc = describe(eng, "_st_in", p, &names, &types, &n, err);
    if (rc)
        return rc;
    /* business key: source system + country + entity + natural key */
    static const char *const bk[] = {"_source", "country", "entity_id"};
    for (size_t i = 0; rc == ST_OK && i < 3; i++)
        if (has(names, n, bk[i]) && !has(ent->key, ent->n_key, bk[i]))
            rc = plan_push(p, &p->key, &p->n_key, bk[i]);
    for (size_t i = 0; rc == ST_OK && i < ent->n_key; i++)
        rc = plan_push(p, &p->key, &p->n_key, ent->key[i]);
    for (size_t i = 0; rc == ST_OK && i < p->n_key; i++)
        rc = add_role(p, p->key[i], SCD_KEY);
    for (size_t i = 0; rc == ST_OK && i < ent->n_track; i++)
        rc = add_role(p, ent->track[i], SCD_TRACK);
    for (size_t i = 0; rc == ST_OK && i < ent->n_update_in_place; i++)
        rc = add_role(p, ent->update_in_place[i], SCD_LAST);
    for (size_t i = 0; rc == ST_OK && i < ent->n_tie_break; i++)
        rc = add_role(p, ent->tie_break[i], SCD_KEEP);
    if (ent->partition_by_set) {
        for (size_t i = 0; rc == ST_OK && i < ent->n_partition_by; i++)
            rc = plan_push(p, &p->part, &p->n_part, ent->partition_by[i]);
    } else if (rc == ST_OK && has(names, n, "country")) {
        rc = plan_push(p, &p->part, &p->n_part, "country");
    }
    for (size_t i = 0; rc == ST_OK && i < p->n_part; i++)
        rc = add_role(p, p->part[i], SCD_KEEP);
    if (rc)
        return st_fail(err, rc, "silver %s: planning", ent->name);
    for (size_t i = 0; i < p->n_cols; i++)
        if (!has(names, n, p->cols[i]))
            return st_fail(err, ST_ERR_INVALID,
                           "silver %s (%s:%d): column '%s' is not in the source %s", ent->name,
                           ent->file, ent->line, p->cols[i], ent->from);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], ent->sequence))
            p->seq_type = types[i];
    if (!p->seq_type)
        return st_fail(err, ST_ERR_INVALID,
                       "silver %s (%s:%d): sequence column '%s' is not in the source %s",
                       ent->name, ent->file, ent->line, ent->sequence, ent->from);
    /* NULL keys cannot be matched and NULL sequences cannot be ordered */
    st_buf b;
    st_buf_init(&b, 0);
    rc = st_buf_puts(&b, "SELECT count(*) FROM _st_in WHERE ");
    rc = rc ? rc : st_buf_sql_ident(&b, ent->sequence);
    rc = rc ? rc : st_buf_puts(&b, " IS NULL");
    int64_t bad = 0;
    rc = rc ? rc : st_engine_query_i64(eng, b.data, &bad, err);
    if (rc == ST_OK && bad > 0)
        rc = st_fail(err, ST_ERR_INVALID,
                     "silver %s: %lld change rows have a NULL sequence (column %s)", ent->name,
                     (long long)bad, ent->sequence);
    for (size_t i = 0; rc == ST_OK && i < p->n_key; i++) {
        st_buf_reset(&b);
        rc = st_buf_puts(&b, "SELECT count(*) FROM _st_in WHERE ");
        rc = rc ? rc : st_buf_sql_ident(&b, p->key[i]);
        rc = rc ? rc : st_buf_puts(&b, " IS NULL");
        rc = rc ? rc : st_engine_query_i64(eng, b.data, &bad, err);
        if (rc == ST_OK && bad > 0)
            rc = st_fail(err, ST_ERR_INVALID,
                         "silver %s: %lld change rows have a NULL business key column %s",
                         ent->name, (long long)bad, p->key[i]);
    }
    st_buf_free(&b);
    return rc;
}

st_rc scd_empty_old(st_engine *eng, const scd_plan *p, st_err *err)
{
    st_buf b;
    st_buf_init(&b, 0);
    st_rc rc = st_buf_puts(&b, "CREATE OR REPLACE TEMP TABLE _st_old AS SELECT ");
    rc = rc ? rc : scd_put_cols(&b, p->cols, p->n_cols, NULL);
    rc = rc ? rc
            : st_buf_printf(&b,
                            ", CAST(NULL AS BIGINT) AS _sk, CAST(NULL AS %s) AS _valid_from, "
                            "CAST(NULL AS %s) AS _valid_to, CAST(NULL AS BOOLEAN) AS _is_current, "
                            "CAST(NULL AS BOOLEAN) AS _is_deleted, CAST(NULL AS BIGINT) AS "
                            "_version, CAST(NULL AS BIGINT) AS _row_hash, CAST(NULL AS %s) AS "
                            "_seq, CAST(NULL AS %s[]) AS _noop_seqs, CAST(NULL AS VARCHAR) AS "
                            "_batch_id, CAST(NULL AS TIMESTAMPTZ) AS _loaded_at FROM _st_in LIMIT 0",
                            p->seq_type, p->seq_type, p->seq_type, p->seq_type);
    rc = rc ? st_fail(err, rc, "silver: building SQL") : st_engine_exec(eng, b.data, err);
    st_buf_free(&b);
    return rc;
}

st_rc scd_add_missing(st_engine *eng, const scd_plan *p, const char *current_sql, st_err *err)
{
    int64_t n_in = 0;
    st_rc rc = st_engine_query_i64(eng, "SELECT count(*) FROM _st_in", &n_in, err);
    if (rc || n_in == 0)
        return rc; /* an empty batch is no evidence that keys vanished */
    st_buf b;
    st_buf_init(&b, 0);
    rc = st_buf_puts(&b, "INSERT INTO _st_in BY NAME SELECT ");
    rc = rc ? rc : scd_put_cols(&b, p->key, p->n_key, "c");
    for (size_t i = 0; rc == ST_OK && i < p->n_part; i++)
        if (!has(p->key, p->n_key, p->part[i])) {
            rc = st_buf_puts(&b, ", c.");
            rc = rc ? rc : st_buf_sql_ident(&b, p->part[i]);
        }
    rc = rc ? rc : st_buf_puts(&b, ", (SELECT max(");
    rc = rc ? rc : st_buf_sql_ident(&b, p->ent->sequence);
    rc = rc ? rc : st_buf_puts(&b, ") FROM _st_in) AS ");
    rc = rc ? rc : st_buf_sql_ident(&b, p->ent->sequence);
    rc = rc ? rc : st_buf_printf(&b, ", true AS _st_del FROM (%s) c WHERE c._is_current AND NOT "
                                     "c._is_deleted AND NOT EXISTS (SELECT 1 FROM _st_in i WHERE ",
                                 current_sql);
    rc = rc ? rc : scd_put_join(&b, p->key, p->n_key, "i", "c");
    rc = rc ? rc : st_buf_puts(&b, ")");
    rc = rc ? st_fail(err, rc, "silver: building SQL") : st_engine_exec(eng, b.data, err);
    st_buf_free(&b);
    return rc;
}

st_rc scd_run(st_engine *eng, st_buf *b, st_err *err)
{
    int64_t t0 = st_mono_ns();
    st_rc rc;
    if (getenv("ST_SILVER_EXPLAIN")) {
        duckdb_result er;
        char *q = st_sprintf("EXPLAIN ANALYZE %s", b->data);
        rc = st_engine_query(eng, q, &er, err);
        st_free(q);
        if (rc == ST_OK) {
            char *v = duckdb_value_varchar(&er, 1, 0);
            fprintf(stderr, "%s\n", v ? v : "");
            duckdb_free(v);
            duckdb_destroy_result(&er);
        }
    } else {
        rc = st_engine_exec(eng, b->data, err);
    }
    st_debug("silver: %.3f s: %.60s", (double)(st_mono_ns() - t0) / 1e9, b->data);
    st_buf_reset(b);
    return rc;
}

/* Expressions of the "event" projection: the entity columns, then _s, _del,
  * _noops. */
static st_rc put_event_cols(st_buf *b, const scd_plan *p)
{
    st_rc rc = scd_put_cols(b, p->cols, p->n_cols, NULL);
    return rc;
}

st_rc scd_rebuild(st_engine *eng, const scd_plan *p, const char *batch_id, st_silver_stats *stats,
                  st_err *err)
{
    size_t n_track = 0;
    /* tracked columns in declaration order */
    char **tr = st_arena_alloc(p->arena, (p->n_cols + 1) * sizeof *tr);
    char **pres = st_arena_alloc(p->arena, (p->n_cols + 1) * sizeof *pres);
    size_t n_pres = 0;
    if (!tr || !pres)
        return st_fail(err, ST_ERR_NOMEM, "silver %s", p->ent->name);
    for (size_t i = 0; i < p->n_cols; i++) {
        if (p->role[i] == SCD_TRACK)
            tr[n_track++] = p->cols[i];
        /* columns a tombstone keeps: key, partition and tie-break columns */
        if (p->role[i] == SCD_KEY || p->role[i] == SCD_KEEP)
            pres[n_pres++] = p->cols[i];
    }
    char **track = tr;
    const char *seq = p->ent->sequence;
    st_buf b;
    st_buf_init(&b, 0);
    st_rc rc = ST_OK;

    /* 0. The common case without windows: a key whose batch holds one
     * change row, sequenced after every change its stored rows stand for,
     * and whose stored rows have one current row.  In-order arrival of that
     * change either is a no-op (same state: the current version absorbs it)
     * or closes the current version and opens the next one, so only the
     * current row is replaced and the earlier versions stay as stored.  The
     * general rebuild below handles every other key. */
    rc = rc ? rc : st_buf_puts(&b, "CREATE OR REPLACE TEMP TABLE _st_sver AS WITH bk AS (SELECT ");
    rc = rc ? rc : scd_put_cols(&b, p->key, p->n_key, NULL);
    rc = rc ? rc : st_buf_puts(&b, " FROM _st_in GROUP BY ALL HAVING count(*) = 1), ok AS "
                                   "(SELECT ");
    rc = rc ? rc : scd_put_cols(&b, p->key, p->n_key, NULL);
    rc = rc ? rc : st_buf_puts(&b, ", count(*) FILTER (WHERE _is_current) AS _nc, max(coalesce("
                                   "list_max(_noop_seqs), _valid_from)) AS _last FROM _st_old "
                                   "GROUP BY ALL), sim AS (SELECT ");
    for (size_t i = 0; rc == ST_OK && i < p->n_cols; i++) {
        rc = st_buf_puts(&b, i ? ", i." : "i.");
        rc = rc ? rc : st_buf_sql_ident(&b, p->cols[i]);
    }
    rc = rc ? rc : st_buf_puts(&b, ", CAST(i.");
    rc = rc ? rc : st_buf_sql_ident(&b, seq);
    rc = rc ? rc : st_buf_printf(&b, " AS %s) AS _s, i._st_del AS _del FROM _st_in i SEMI JOIN bk "
                                     "ON ",
                                 p->seq_type);
    rc = rc ? rc : scd_put_join(&b, p->key, p->n_key, "i", "bk");
    rc = rc ? rc : st_buf_puts(&b, " LEFT JOIN ok ON ");
    rc = rc ? rc : scd_put_join(&b, p->key, p->n_key, "i", "ok");
    rc = rc ? rc : st_buf_puts(&b, " WHERE ok._nc IS NULL OR (ok._nc = 1 AND i.");
    rc = rc ? rc : st_buf_sql_ident(&b, seq);
    rc = rc ? rc : st_buf_puts(&b, " > ok._last)), ");
    /* the simple keys' current stored rows (absent for new keys) */
    rc = rc ? rc : st_buf_puts(&b, "scur AS (SELECT o.* FROM _st_old o SEMI JOIN sim s ON ");
    rc = rc ? rc : scd_put_join(&b, p->key, p->n_key, "o", "s");
    rc = rc ? rc : st_buf_puts(&b, " WHERE o._is_current), ");
    /* their new rows: the current row absorbing the change (same state), or
     * the current row closed plus the version the change opens */
    rc = rc ? rc : st_buf_puts(&b, "j AS (SELECT s.*, "
                                   "c._valid_from AS _cvf, c._is_deleted AS _cdel, c._version AS "
                                   "_cver, c._noop_seqs AS _cnoops, c._valid_from IS NOT NULL AND "
                                   "c._is_deleted = s._del AND (s._del OR (true");
    for (size_t i = 0; rc == ST_OK && i < n_track; i++) {
        rc = st_buf_puts(&b, " AND s.");
        rc = rc ? rc : st_buf_sql_ident(&b, track[i]);
        rc = rc ? rc : st_buf_puts(&b, " IS NOT DISTINCT FROM c.");
        rc = rc ? rc : st_buf_sql_ident(&b, track[i]);
    }
    rc = rc ? rc : st_buf_puts(&b, ")) AS _same");
    for (size_t i = 0; rc == ST_OK && i < p->n_cols; i++) {
        if (p->role[i] == SCD_KEY)
            continue;
        rc = st_buf_printf(&b, ", c.");
        rc = rc ? rc : st_buf_sql_ident(&b, p->cols[i]);
        rc = rc ? rc : st_buf_printf(&b, " AS _c%zu", i);
    }
    rc = rc ? rc : st_buf_puts(&b, " FROM sim s LEFT JOIN scur c ON ");
    rc = rc ? rc : scd_put_join(&b, p->key, p->n_key, "s", "c");
    rc = rc ? rc : st_buf_puts(&b, "), r AS (");
    /* the stored current row, absorbing or closed: _vf, _vt, _del, _ver,
     * _seq, _noops, columns from the stored row except update-in-place ones
     * of an absorbing live version, which come from the change */
    rc = rc ? rc : st_buf_puts(&b, "SELECT ");
    for (size_t i = 0; rc == ST_OK && i < p->n_cols; i++) {
        rc = st_buf_puts(&b, i ? ", " : "");
        if (rc == ST_OK && p->role[i] == SCD_KEY) {
            rc = st_buf_sql_ident(&b, p->cols[i]);
        } else if (rc == ST_OK && p->role[i] == SCD_LAST) {
            rc = st_buf_printf(&b, "CASE WHEN NOT _same THEN _c%zu WHEN _cdel THEN NULL ELSE ", i);
            rc = rc ? rc : st_buf_sql_ident(&b, p->cols[i]);
            rc = rc ? rc : st_buf_puts(&b, " END AS ");
            rc = rc ? rc : st_buf_sql_ident(&b, p->cols[i]);
        } else if (rc == ST_OK) {
            rc = st_buf_printf(&b, "_c%zu AS ", i);
            rc = rc ? rc : st_buf_sql_ident(&b, p->cols[i]);
        }
    }
    rc = rc ? rc : st_buf_printf(&b, ", _cvf AS _vf, CASE WHEN _same THEN NULL ELSE _s END AS _vt, "
                                     "_cdel AS _del, _cver AS _ver, CASE WHEN _same THEN _s ELSE "
                                     "coalesce(list_max(_cnoops), _cvf) END AS _seq, CASE WHEN "
                                     "_same THEN list_append(coalesce(_cnoops, CAST([] AS %s[])), "
                                     "_s) ELSE _cnoops END AS _noops, true AS _st_rw FROM j "
                                     "WHERE _cvf IS NOT NULL",
                                 p->seq_type);
    /* the version the change opens */
    rc = rc ? rc : st_buf_puts(&b, " UNION ALL SELECT ");
    for (size_t i = 0; rc == ST_OK && i < p->n_cols; i++) {
        rc = st_buf_puts(&b, i ? ", " : "");
        if (rc == ST_OK && (p->role[i] == SCD_KEY || p->role[i] == SCD_KEEP)) {
            rc = st_buf_sql_ident(&b, p->cols[i]);
        } else if (rc == ST_OK) {
            rc = st_buf_puts(&b, "CASE WHEN _del THEN NULL ELSE ");
            rc = rc ? rc : st_buf_sql_ident(&b, p->cols[i]);
            rc = rc ? rc : st_buf_puts(&b, " END AS ");
            rc = rc ? rc : st_buf_sql_ident(&b, p->cols[i]);
        }
    }
    rc = rc ? rc : st_buf_printf(&b, ", _s AS _vf, CAST(NULL AS %s) AS _vt, _del, coalesce(_cver, 0) "
                                     "+ 1 AS _ver, _s AS _seq, CAST(NULL AS %s[]) AS _noops, false AS "
                                     "_st_rw FROM j WHERE NOT _same) SELECT ",
                                 p->seq_type, p->seq_type);
    rc = rc ? rc : put_version_head(&b, p);
    rc = rc ? rc : st_buf_puts(&b, "_vt AS _valid_to, _vt IS NULL AS "
                                   "_is_current, _del AS _is_deleted, _ver AS _version, CASE WHEN "
                                   "_del THEN NULL ELSE ");
    rc = rc ? rc : put_hash(&b, track, n_track, NULL, NULL, 0);
    rc = rc ? rc : st_buf_puts(&b, " END AS _row_hash, _seq, _noops AS _noop_seqs, _st_rw FROM r");
    rc = rc ? rc : scd_run(eng, &b, err);
    /* the batch and stored rows of the other keys, for the general rebuild */
    st_buf cin, cold;
    st_buf_init(&cin, 0);
    st_buf_init(&cold, 0);
    for (int k = 0; rc == ST_OK && k < 2; k++) {
        st_buf *o = k ? &cold : &cin;
        rc = st_buf_printf(o, "(SELECT * FROM %s x ANTI JOIN (SELECT DISTINCT ",
                           k ? "_st_old" : "_st_in");
        rc = rc ? rc : scd_put_cols(o, p->key, p->n_key, NULL);
        rc = rc ? rc : st_buf_puts(o, " FROM _st_sver) y ON ");
        rc = rc ? rc : scd_put_join(o, p->key, p->n_key, "x", "y");
        rc = rc ? rc : st_buf_puts(o, ")");
    }

    /* One statement, so DuckDB pipelines the steps without materializing
     * them.  States are compared column by column (NULL-safe) rather than by
     * hash, and the stored _row_hash and _sk are not read back: both follow
     * from the columns, and decoding random 64-bit values for every row of
     * the table costs more than recomputing them for the affected rows. */
    rc = rc ? rc : st_buf_puts(&b, "CREATE OR REPLACE TEMP TABLE _st_ver AS WITH ");
    /* 1. the changes: the batch's, and those the stored versions stand for */
    rc = rc ? rc : st_buf_puts(&b, "ev AS (SELECT ");
    rc = rc ? rc : put_event_cols(&b, p);
    rc = rc ? rc : st_buf_puts(&b, ", CAST(");
    rc = rc ? rc : st_buf_sql_ident(&b, seq);
    rc = rc ? rc : st_buf_printf(&b, " AS %s) AS _s, _st_del AS _del, CAST(NULL AS %s[]) AS _noops "
                                     "FROM %s", p->seq_type, p->seq_type, cin.data);
    /* a stored version: its start ... */
    rc = rc ? rc : st_buf_puts(&b, " UNION ALL BY NAME SELECT ");
    rc = rc ? rc : put_event_cols(&b, p);
    rc = rc ? rc : st_buf_puts(&b, ", _valid_from AS _s, _is_deleted AS _del, _noop_seqs AS "
                                   "_noops FROM ");
    rc = rc ? rc : st_buf_puts(&b, cold.data);
    /* ... and the no-op changes it absorbed (same state, later sequence) */
    rc = rc ? rc : st_buf_puts(&b, " UNION ALL BY NAME SELECT * EXCLUDE (_x), _x AS _s FROM "
                                   "(SELECT ");
    rc = rc ? rc : put_event_cols(&b, p);
    rc = rc ? rc : st_buf_printf(&b, ", unnest(_noop_seqs) AS _x, _is_deleted AS _del, "
                                     "CAST(NULL AS %s[]) AS _noops FROM %s WHERE "
                                     "_noop_seqs IS NOT NULL)), ", p->seq_type, cold.data);

    /* 2. one change per (key, sequence): the largest (tie-break columns,
     * delete over update, tracked values, other values) wins, compared as
     * one struct.  A total order, so the winner never depends on arrival; an
     * aggregate rather than a window, which would sort every column. */
    rc = rc ? rc : st_buf_puts(&b, "e1 AS (SELECT unnest(_w) FROM (SELECT arg_max(struct_pack(");
    for (size_t i = 0; rc == ST_OK && i < p->n_cols; i++) {
        rc = st_buf_sql_ident(&b, p->cols[i]);
        rc = rc ? rc : st_buf_puts(&b, " := ");
        rc = rc ? rc : st_buf_sql_ident(&b, p->cols[i]);
        rc = rc ? rc : st_buf_puts(&b, ", ");
    }
    rc = rc ? rc : st_buf_puts(&b, "_s := _s, _del := _del, _noops := _noops), struct_pack(");
    for (size_t i = 0; rc == ST_OK && i < p->ent->n_tie_break; i++) {
        rc = st_buf_printf(&b, "t%zu := ", i);
        rc = rc ? rc : st_buf_sql_ident(&b, p->ent->tie_break[i]);
        rc = rc ? rc : st_buf_puts(&b, ", ");
    }
    rc = rc ? rc : st_buf_puts(&b, "d := _del");
    for (int pass = 0; rc == ST_OK && pass < 2; pass++)
        for (size_t i = 0; rc == ST_OK && i < p->n_cols; i++) {
            /* tracked columns first, then the others */
            if (p->role[i] == SCD_KEY || (p->role[i] == SCD_TRACK) != (pass == 0))
                continue;
            rc = st_buf_printf(&b, ", c%zu := ", i);
            rc = rc ? rc : st_buf_sql_ident(&b, p->cols[i]);
        }
    rc = rc ? rc : st_buf_puts(&b, ")) AS _w FROM ev GROUP BY ");
    rc = rc ? rc : scd_put_cols(&b, p->key, p->n_key, NULL);
    rc = rc ? rc : st_buf_puts(&b, ", _s)), ");

    /* 3. sort by sequence; a change equal to the state before it opens no
     * version (its sequence is kept in _noop_seqs of the version) */
    rc = rc ? rc : st_buf_puts(&b, "e2 AS (SELECT *, CASE WHEN lag(_del) OVER w IS NULL THEN 1 "
                                   "WHEN lag(_del) OVER w <> _del THEN 1 WHEN NOT _del AND (false");
    for (size_t i = 0; rc == ST_OK && i < n_track; i++) {
        rc = st_buf_puts(&b, " OR lag(");
        rc = rc ? rc : st_buf_sql_ident(&b, track[i]);
        rc = rc ? rc : st_buf_puts(&b, ") OVER w IS DISTINCT FROM ");
        rc = rc ? rc : st_buf_sql_ident(&b, track[i]);
    }
    rc = rc ? rc : st_buf_puts(&b, ") THEN 1 ELSE 0 END AS _new FROM e1 WINDOW w AS (PARTITION BY ");
    rc = rc ? rc : scd_put_cols(&b, p->key, p->n_key, NULL);
    rc = rc ? rc : st_buf_puts(&b, " ORDER BY _s)), e3 AS (SELECT *, sum(_new) OVER (PARTITION BY ");
    rc = rc ? rc : scd_put_cols(&b, p->key, p->n_key, NULL);
    rc = rc ? rc : st_buf_puts(&b, " ORDER BY _s ROWS UNBOUNDED PRECEDING) AS _g FROM e2), ");

    /* 4. one row per version, then intervals */
    rc = rc ? rc : st_buf_puts(&b, "g AS (SELECT ");
    rc = rc ? rc : scd_put_cols(&b, p->key, p->n_key, NULL);
    for (size_t i = 0; rc == ST_OK && i < p->n_cols; i++) {
        if (p->role[i] == SCD_KEY)
            continue;
        bool keep = p->role[i] == SCD_KEEP;
        rc = st_buf_puts(&b, keep ? ", " : ", CASE WHEN bool_or(_del) THEN NULL ELSE ");
        /* tracked values are equal within a version: any row will do */
        rc = rc ? rc : st_buf_puts(&b, p->role[i] == SCD_LAST    ? "arg_max_null("
                                       : p->role[i] == SCD_TRACK ? "first("
                                                                 : "arg_min_null(");
        rc = rc ? rc : st_buf_sql_ident(&b, p->cols[i]);
        rc = rc ? rc : st_buf_puts(&b, p->role[i] == SCD_TRACK ? ")" : ", _s)");
        rc = rc ? rc : st_buf_puts(&b, keep ? " AS " : " END AS ");
        rc = rc ? rc : st_buf_sql_ident(&b, p->cols[i]);
    }
    /* the changes after the first of a version are its no-op changes; the
     * list is built only for versions that have some */
    rc = rc ? rc : st_buf_puts(&b, ", min(_s) AS _vf, max(_s) AS _seq, bool_or(_del) AS _del, "
                                   "list(_s ORDER BY _s) FILTER (WHERE _new = 0) AS _noops "
                                   "FROM e3 GROUP BY ");
    rc = rc ? rc : scd_put_cols(&b, p->key, p->n_key, NULL);
    rc = rc ? rc : st_buf_puts(&b, ", _g) SELECT ");
    rc = rc ? rc : put_version_head(&b, p);
    rc = rc ? rc : st_buf_puts(&b, "lead(_vf) OVER w AS _valid_to, "
                                   "lead(_vf) OVER w IS NULL AS _is_current, _del AS _is_deleted, "
                                   "row_number() OVER w AS _version, CASE WHEN _del THEN NULL ELSE ");
    rc = rc ? rc : put_hash(&b, track, n_track, NULL, NULL, 0);
    rc = rc ? rc : st_buf_puts(&b, " END AS _row_hash, _seq, _noops AS _noop_seqs FROM g WINDOW w "
                                   "AS (PARTITION BY ");
    rc = rc ? rc : scd_put_cols(&b, p->key, p->n_key, NULL);
    rc = rc ? rc : st_buf_puts(&b, " ORDER BY _vf)");
    rc = rc ? rc : scd_run(eng, &b, err);

    /* 5. keys whose history changed: set difference both ways over the
     * columns that define a version (NULL-safe, no hashing).  The stored
     * rows' _valid_to and _seq follow from the key's stored rows (next start;
     * last absorbed change), so they are derived rather than read. */
    st_buf cmp;
    st_buf_init(&cmp, 0);
    rc = rc ? rc : scd_put_cols(&cmp, p->cols, p->n_cols, NULL);
    rc = rc ? rc : st_buf_puts(&cmp, ", _valid_from, _valid_to, _is_deleted, _noop_seqs, _seq");
    rc = rc ? rc : st_buf_puts(&b, "CREATE OR REPLACE TEMP TABLE _st_chg AS WITH o AS (SELECT ");
    rc = rc ? rc : scd_put_cols(&b, p->cols, p->n_cols, NULL);
    rc = rc ? rc : st_buf_puts(&b, ", _valid_from, lead(_valid_from) OVER (PARTITION BY ");
    rc = rc ? rc : scd_put_cols(&b, p->key, p->n_key, NULL);
    rc = rc ? rc : st_buf_puts(&b, " ORDER BY _valid_from) AS _valid_to, _is_deleted, _noop_seqs, "
                                   "coalesce(list_max(_noop_seqs), _valid_from) AS _seq FROM ");
    rc = rc ? rc : st_buf_puts(&b, cold.data);
    rc = rc ? rc : st_buf_puts(&b, ") SELECT DISTINCT ");
    rc = rc ? rc : scd_put_cols(&b, p->key, p->n_key, NULL);
    rc = rc ? rc : st_buf_printf(&b, " FROM ((SELECT %s FROM _st_ver EXCEPT SELECT %s FROM o) "
                                     "UNION ALL (SELECT %s FROM o EXCEPT SELECT %s FROM _st_ver))",
                                 cmp.data, cmp.data, cmp.data, cmp.data);
    st_buf_free(&cmp);
    /* a simple key always changes: its change is later than all it had */
    rc = rc ? rc : st_buf_puts(&b, " UNION ALL SELECT DISTINCT ");
    rc = rc ? rc : scd_put_cols(&b, p->key, p->n_key, NULL);
    rc = rc ? rc : st_buf_puts(&b, " FROM _st_sver");
    rc = rc ? rc : scd_run(eng, &b, err);

    /* the stored rows to retire: every row of a changed key of the general
     * rebuild, the current row of a simple key */
    rc = rc ? rc : st_buf_puts(&b, "CREATE OR REPLACE TEMP TABLE _st_ret AS SELECT ");
    rc = rc ? rc : scd_put_cols(&b, p->key, p->n_key, "o");
    rc = rc ? rc : st_buf_printf(&b, ", o._valid_from FROM %s o SEMI JOIN _st_chg c ON ", cold.data);
    rc = rc ? rc : scd_put_join(&b, p->key, p->n_key, "o", "c");
    rc = rc ? rc : st_buf_puts(&b, " UNION ALL SELECT ");
    rc = rc ? rc : scd_put_cols(&b, p->key, p->n_key, NULL);
    rc = rc ? rc : st_buf_puts(&b, ", _valid_from FROM _st_sver WHERE _st_rw");
    rc = rc ? rc : scd_run(eng, &b, err);

    /* 6. the new rows of changed keys, stamped with this batch: a view, as
     * its rows are read once by the write (every simple key changed) */
    rc = rc ? rc : st_buf_puts(&b, "CREATE OR REPLACE TEMP VIEW _st_new AS SELECT ");
    rc = rc ? rc : scd_put_cols(&b, p->cols, p->n_cols, "v");
    rc = rc ? rc : st_buf_puts(&b, ", v._sk, v._valid_from, v._valid_to, v._is_current, "
                                   "v._is_deleted, v._version, v._row_hash, v._seq, v._noop_seqs, ");
    rc = rc ? rc : st_buf_sql_str(&b, batch_id);
    rc = rc ? rc : st_buf_puts(&b, " AS _batch_id, CAST(now() AS TIMESTAMPTZ) AS _loaded_at FROM "
                                   "(SELECT x.* FROM _st_ver x SEMI JOIN _st_chg c ON ");
    rc = rc ? rc : scd_put_join(&b, p->key, p->n_key, "x", "c");
    rc = rc ? rc : st_buf_puts(&b, " UNION ALL BY NAME SELECT * FROM _st_sver) v");
    rc = rc ? rc : scd_run(eng, &b, err);

    int64_t v = 0;
    if (rc == ST_OK && stats) {
        rc = st_engine_query_i64(eng, "SELECT count(*) FROM _st_in", &v, err);
        stats->rows_in = v;
        st_buf_puts(&b, "SELECT count(*) FROM (SELECT DISTINCT ");
        scd_put_cols(&b, p->key, p->n_key, NULL);
        st_buf_puts(&b, " FROM _st_in)");
        rc = rc ? rc : st_engine_query_i64(eng, b.data, &v, err);
        st_buf_reset(&b);
        stats->keys_affected = v;
        rc = rc ? rc : st_engine_query_i64(eng, "SELECT count(*) FROM _st_chg", &v, err);
        stats->keys_changed = v;
        rc = rc ? rc : st_engine_query_i64(eng, "SELECT count(*) FROM _st_new", &v, err);
        stats->rows_written = v;
    }
    st_buf_free(&b);
    st_buf_free(&cin);
    st_buf_free(&cold);
    if (rc)
        st_err_ctx(err, "silver %s: rebuilding history", p->ent->name);
    return rc;
}

/* ---------------------------------------------------------------- DuckDB tables */

st_rc st_silver_merge_duckdb(st_engine *eng, const st_silver_entity *ent, const char *in_sql,
                             const char *target_table, const char *batch_id,
                             st_silver_stats *stats, st_err *err)
{
    st_silver_stats local = {0};
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
    st_buf b;
    st_buf_init(&b, 0);
    st_rc rc = scd_prepare(eng, ent, in_sql, &p, err);
    int64_t exists = 0;
    rc = rc ? rc : st_buf_puts(&b, "SELECT count(*) FROM duckdb_tables() WHERE table_name = ");
    rc = rc ? rc : st_buf_sql_str(&b, target_table);
    rc = rc ? rc : st_engine_query_i64(eng, b.data, &exists, err);
    st_buf_reset(&b);
    if (rc)
        goto done;
    if (exists && ent->delete_kind == ST_SILVER_DELETE_MISSING) {
        rc = st_buf_puts(&b, "SELECT * FROM ");
        rc = rc ? rc : st_buf_sql_ident(&b, target_table);
        rc = rc ? rc : scd_add_missing(eng, &p, b.data, err);
        st_buf_reset(&b);
        if (rc)
            goto done;
    }
    if (exists) {
        rc = st_buf_puts(&b, "CREATE OR REPLACE TEMP TABLE _st_old AS SELECT t.* FROM ");
        rc = rc ? rc : st_buf_sql_ident(&b, target_table);
        rc = rc ? rc : st_buf_puts(&b, " t SEMI JOIN (SELECT DISTINCT ");
        rc = rc ? rc : scd_put_cols(&b, p.key, p.n_key, NULL);
        rc = rc ? rc : st_buf_puts(&b, " FROM _st_in) k ON ");
        rc = rc ? rc : scd_put_join(&b, p.key, p.n_key, "t", "k");
        rc = rc ? rc : st_engine_exec(eng, b.data, err);
        st_buf_reset(&b);
    } else {
        rc = scd_empty_old(eng, &p, err);
    }
    rc = rc ? rc : scd_rebuild(eng, &p, batch_id, stats, err);
    if (rc)
        goto done;
    if (!exists) {
        rc = st_buf_puts(&b, "CREATE TABLE ");
        rc = rc ? rc : st_buf_sql_ident(&b, target_table);
        rc = rc ? rc : st_buf_puts(&b, " AS SELECT * FROM _st_new");
        rc = rc ? rc : st_engine_exec(eng, b.data, err);
        goto done;
    }
    rc = st_engine_query_i64(eng, "SELECT count(*) FROM _st_ret", &stats->rows_deleted, err);
    rc = rc ? rc : st_buf_puts(&b, "DELETE FROM ");
    rc = rc ? rc : st_buf_sql_ident(&b, target_table);
    rc = rc ? rc : st_buf_puts(&b, " t USING _st_ret c WHERE ");
    rc = rc ? rc : scd_put_join(&b, p.key, p.n_key, "t", "c");
    rc = rc ? rc : st_buf_puts(&b, " AND t._valid_from = c._valid_from");
    rc = rc ? rc : st_engine_exec(eng, b.data, err);
    st_buf_reset(&b);
    rc = rc ? rc : st_buf_puts(&b, "INSERT INTO ");
    rc = rc ? rc : st_buf_sql_ident(&b, target_table);
    rc = rc ? rc : st_buf_puts(&b, " BY NAME SELECT * FROM _st_new");
    rc = rc ? rc : st_engine_exec(eng, b.data, err);
done:
    if (rc)
        st_err_ctx(err, "silver %s -> %s", ent->name, target_table);
    st_buf_free(&b);
    scd_plan_clear(&p);
    return rc;
}
