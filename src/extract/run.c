/*
 * run.c - one extraction run per table: connect, describe and map the
 * columns, reconcile them with the bronze schema (drift), plan or resume the
 * chunks, extract the chunks with `parallel` worker threads (each with its
 * own source connection and DuckDB engine; rows stream into a staging
 * table - typed data chunks when the driver decodes a binary format
 * (PostgreSQL), text otherwise - flushed to a Parquet file every
 * batch_rows), then land everything in one commit (commit.c) and record the run (xstate.c).
 * hashdiff diffs the staged rows against the previous key->hash state file
 * in DuckDB (docs/decisions/0005-hashdiff-state.md).  HTTP sources go to
 * http_run.c.
 */
#include "extract/extract_int.h"
#include "delta/delta_int.h"

#include <fnmatch.h>
#include <glob.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

typedef struct tctx {
    const x_project *p;
    const x_source_cfg *src;
    const x_table_cfg *t;
    const st_extract_opts *o;
    const x_driver *drv;
    st_state *state;
    x_strategy strategy;
    bool range;               /* --from/--to */
    bool binary;              /* driver decodes into typed staging chunks */
    x_col *cols;
    size_t n_cols;
    char *table_sql;          /* quoted source table */
    char *select_list;        /* source SELECT list */
    char *stage_select;       /* DuckDB SELECT over the staging table */
    char *stage_ddl;
    st_delta_schema *schema;  /* target schema */
    char *table_path;         /* bronze table dir */
    char *stage_dir;          /* where chunk files go */
    char *spill_dir;          /* DuckDB temp_directory of the workers */
    char *batch_id;
    char *app_id;
    x_run *run;
    /* shared between workers */
    pthread_mutex_t mu;
    size_t next_chunk;
    bool failed;
    st_err first_err;
    st_rc first_rc;
    int64_t rows_read;
    int chunks_done;
    int64_t t0_ns;
} tctx;

/* ---------------------------------------------------------------- staging */

typedef struct worker {
    tctx *c;
    st_engine *eng;
    x_conn *conn;
    duckdb_appender app;
    bool has_app;
    duckdb_data_chunk dchunk; /* binary transfer: reused for every batch of rows */
    int chunk;
    int batch_no;
    int64_t staged;
    int64_t rows;
    st_parquet_file *files;
    size_t n_files;
} worker;

static st_rc open_appender(worker *w, st_err *err)
{
    st_rc rc = st_engine_appender(w->eng, "_x_stage", &w->app, err);
    w->has_app = rc == ST_OK;
    return rc;
}

/* Empties the staging table.  DROP + CREATE, not DELETE: an in-memory
 * table keeps the row groups of deleted rows, so RSS grew by one batch per
 * flush (36 MB per 250,000 rows of the bench table). */
static st_rc reset_stage(worker *w, st_err *err)
{
    st_rc rc = st_engine_exec(w->eng, "DROP TABLE _x_stage", err);
    return rc ? rc : st_engine_exec(w->eng, w->c->stage_ddl, err);
}

static st_rc flush_stage(worker *w, st_err *err)
{
    if (w->has_app) {
        w->has_app = false;
        st_rc rc = st_engine_appender_close(&w->app, err);
        if (rc)
            return rc;
    }
    if (w->staged > 0) {
        char prefix[96];
        snprintf(prefix, sizeof prefix, "r%lld-c%d-b%d-", (long long)w->c->run->id, w->chunk,
                 w->batch_no++);
        st_parquet_opts po = {0};
        po.file_prefix = prefix;
        /* zstd level 1: 0.4% larger files than the default level 3 for
         * ~0.3 s less CPU per 1M rows; 122,880-row groups bound the
         * writer's buffer (1M-row groups cost ~37 MB more per worker) */
        po.compression = "zstd, COMPRESSION_LEVEL 1";
        po.row_group_size = 122880;
        po.partition_by = (const char *const *)w->c->t->partition_by;
        po.n_partition_by = w->c->strategy == X_HASHDIFF ? 0 : w->c->t->n_partition_by;
        st_parquet_file *pf = NULL;
        size_t npf = 0;
        st_rc rc = st_engine_write_parquet(w->eng, w->c->stage_select, w->c->stage_dir, &po, &pf,
                                           &npf, err);
        if (rc) {
            st_err_ctx(err, "table %s, chunk %d", w->c->t->name, w->chunk);
            return rc;
        }
        st_parquet_file *nf = st_realloc(w->files, (w->n_files + npf + 1) * sizeof *nf);
        if (!nf) {
            st_parquet_files_free(pf, npf);
            return st_fail(err, ST_ERR_NOMEM, "staging");
        }
        w->files = nf;
        memcpy(w->files + w->n_files, pf, npf * sizeof *pf);
        w->n_files += npf;
        st_free(pf);   /* entries moved */
        rc = reset_stage(w, err);
        if (rc)
            return rc;
        w->staged = 0;
    }
    return open_appender(w, err);
}

static st_rc on_row(void *ctx, char **vals, const size_t *lens, size_t n, st_err *err)
{
    worker *w = ctx;
    for (size_t i = 0; i < n; i++) {
        duckdb_state s = vals[i] ? duckdb_append_varchar_length(w->app, vals[i], lens[i])
                                 : duckdb_append_null(w->app);
        if (s != DuckDBSuccess)
            return st_fail(err, ST_ERR_ENGINE, "staging column %s: %s", w->c->cols[i].name,
                           duckdb_appender_error(w->app));
    }
    if (duckdb_appender_end_row(w->app) != DuckDBSuccess)
        return st_fail(err, ST_ERR_ENGINE, "staging row: %s", duckdb_appender_error(w->app));
    w->staged++;
    w->rows++;
    if (w->staged >= w->c->src->batch_rows)
        return flush_stage(w, err);
    return ST_OK;
}

/* Binary transfer: appends a decoded chunk and sizes the next one so a
 * staged batch ends at batch_rows exactly. */
static st_rc on_chunk(void *ctx, duckdb_data_chunk chunk, size_t *room, st_err *err)
{
    worker *w = ctx;
    idx_t n = duckdb_data_chunk_get_size(chunk);
    if (n && duckdb_append_data_chunk(w->app, chunk) != DuckDBSuccess)
        return st_fail(err, ST_ERR_ENGINE, "staging rows of %s: %s", w->c->t->name,
                       duckdb_appender_error(w->app));
    w->staged += (int64_t)n;
    w->rows += (int64_t)n;
    st_rc rc = w->staged >= w->c->src->batch_rows ? flush_stage(w, err) : ST_OK;
    int64_t left = w->c->src->batch_rows - w->staged;
    *room = left < (int64_t)duckdb_vector_size() ? (size_t)left : duckdb_vector_size();
    return rc;
}

/* The staging table's column types, as a data chunk the driver fills. */
static st_rc make_chunk(worker *w, st_err *err)
{
    duckdb_result r;
    st_rc rc = st_engine_query(w->eng, "SELECT * FROM _x_stage LIMIT 0", &r, err);
    if (rc)
        return rc;
    idx_t n = duckdb_column_count(&r);
    duckdb_logical_type *types = st_calloc(n + 1, sizeof *types);
    for (idx_t i = 0; types && i < n; i++)
        types[i] = duckdb_column_logical_type(&r, i);
    w->dchunk = types ? duckdb_create_data_chunk(types, n) : NULL;
    for (idx_t i = 0; types && i < n; i++)
        duckdb_destroy_logical_type(&types[i]);
    st_free(types);
    duckdb_destroy_result(&r);
    return w->dchunk ? ST_OK : st_fail(err, ST_ERR_NOMEM, "staging chunk");
}

/* Deletes files a failed attempt of this chunk left behind. */
static void remove_partial(tctx *c, int chunk)
{
    char *pat = st_sprintf("%s/r%lld-c%d-*", c->stage_dir, (long long)c->run->id, chunk);
    glob_t g;
    if (pat && glob(pat, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++)
            unlink(g.gl_pathv[i]);
        globfree(&g);
    }
    st_free(pat);
}

static void progress(tctx *c)
{
    if (!c->o->progress)
        return;
    double secs = (double)(st_mono_ns() - c->t0_ns) / 1e9;
    double rate = secs > 0 ? (double)c->rows_read / secs : 0;
    int total = (int)c->run->n_chunks;
    double eta = c->chunks_done ? secs * (total - c->chunks_done) / c->chunks_done : 0;
    fprintf(stderr, "\r%s: %d/%d chunks, %lld rows, %.0f rows/s, ETA %.0fs   ", c->t->target,
            c->chunks_done, total, (long long)c->rows_read, rate, eta);
    if (c->chunks_done == total)
        fputc('\n', stderr);
}

static st_rc extract_chunk(worker *w, x_chunk *ch, st_err *err)
{
    tctx *c = w->c;
    w->chunk = ch->no;
    w->batch_no = 0;
    w->rows = 0;
    w->staged = 0;
    st_parquet_files_free(w->files, w->n_files);
    w->files = NULL;
    w->n_files = 0;
    remove_partial(c, ch->no);
    st_rc rc = open_appender(w, err);
    char *sql = st_sprintf("SELECT %s FROM %s%s%s", c->select_list, c->table_sql,
                           *ch->pred ? " WHERE " : "", ch->pred);
    if (c->binary) {
        size_t room = c->src->batch_rows < (int64_t)duckdb_vector_size()
                          ? (size_t)c->src->batch_rows : duckdb_vector_size();
        rc = rc ? rc : c->drv->stream_chunks(w->conn, sql, c->cols, c->n_cols, w->dchunk, room,
                                             on_chunk, w, err);
    } else {
        rc = rc ? rc : c->drv->stream(w->conn, sql, c->n_cols, on_row, w, err);
    }
    st_free(sql);
    rc = rc ? rc : flush_stage(w, err);
    if (w->has_app) {
        duckdb_appender_destroy(&w->app);
        w->has_app = false;
    }
    if (rc) {
        reset_stage(w, NULL);
        return rc;
    }
    char *json = x_files_to_json(w->files, w->n_files);
    rc = json ? x_state_chunk_done(c->state, c->run->id, ch->no, w->rows, json, err)
              : st_fail(err, ST_ERR_NOMEM, "chunk record");
    if (rc == ST_OK) {
        ch->done = true;
        ch->rows = w->rows;
        st_free(ch->files_json);
        ch->files_json = json;
        json = NULL;
    }
    st_free(json);
    return rc;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    tctx *c = w->c;
    st_err err;
    st_err_clear(&err);
    st_engine_opts eo = {0};
    /* one DuckDB thread per worker: the workers are the parallelism, and
     * idle DuckDB threads spin; the limit keeps RSS bounded per worker */
    eo.threads = 1;
    eo.memory_limit = "256MB";
    eo.temp_dir = c->spill_dir;
    st_rc rc = st_engine_open(&eo, &w->eng, &err);
    rc = rc ? rc : st_engine_exec(w->eng, c->stage_ddl, &err);
    if (rc == ST_OK && c->binary)
        rc = make_chunk(w, &err);
    while (rc == ST_OK) {
        pthread_mutex_lock(&c->mu);
        x_chunk *ch = NULL;
        while (!c->failed && c->next_chunk < c->run->n_chunks) {
            x_chunk *cand = &c->run->chunks[c->next_chunk++];
            if (!cand->done) {
                ch = cand;
                break;
            }
        }
        pthread_mutex_unlock(&c->mu);
        if (!ch)
            break;
        for (int attempt = 0;; attempt++) {
            if (!w->conn)
                rc = c->drv->connect(c->src, &w->conn, &err);
            rc = rc ? rc : extract_chunk(w, ch, &err);
            if (rc == ST_OK || rc != ST_ERR_REMOTE || attempt >= c->src->retries)
                break;
            st_warn("%s chunk %d: %s; retrying (%d of %d)", c->t->target, ch->no, err.msg,
                    attempt + 1, c->src->retries);
            c->drv->close(w->conn);
            w->conn = NULL;
            usleep((useconds_t)(200000u << (attempt < 5 ? attempt : 5)));
            rc = ST_OK;
            st_err_clear(&err);
        }
        if (rc == ST_OK) {
            pthread_mutex_lock(&c->mu);
            c->rows_read += w->rows;
            c->chunks_done++;
            progress(c);
            pthread_mutex_unlock(&c->mu);
            if (c->o->on_chunk)
                rc = c->o->on_chunk(c->o->on_chunk_arg, c->t->name, ch->no, &err);
        } else {
            st_err_ctx(&err, "chunk %d", ch->no);
        }
    }
    if (rc) {
        pthread_mutex_lock(&c->mu);
        if (!c->failed) {
            c->failed = true;
            c->first_rc = rc;
            c->first_err = err;
        }
        pthread_mutex_unlock(&c->mu);
    }
    st_parquet_files_free(w->files, w->n_files);
    w->files = NULL;
    if (w->conn)
        c->drv->close(w->conn);
    if (w->dchunk)
        duckdb_destroy_data_chunk(&w->dchunk);
    st_engine_close(w->eng);
    return NULL;
}

/* ---------------------------------------------------------------- schema */

static int int_rank(st_dtype_kind k)
{
    switch (k) {
    case ST_DT_BYTE: return 1;
    case ST_DT_SHORT: return 2;
    case ST_DT_INTEGER: return 3;
    case ST_DT_LONG: return 4;
    default: return 0;
    }
}

/* 1 = same, 2 = `to` is wider than `from`, 3 = `to` is narrower (cast to from), 0 = incompatible. */
static int compare_types(const st_dtype *old, const st_dtype *nw)
{
    char *a = st_delta_type_ddl(old), *b = st_delta_type_ddl(nw);
    bool same = a && b && !strcmp(a, b);
    st_free(a);
    st_free(b);
    if (same)
        return 1;
    int ro = int_rank(old->kind), rn = int_rank(nw->kind);
    if (ro && rn)
        return rn > ro ? 2 : 3;
    if (old->kind == ST_DT_FLOAT && nw->kind == ST_DT_DOUBLE)
        return 2;
    if (old->kind == ST_DT_DOUBLE && nw->kind == ST_DT_FLOAT)
        return 3;
    if (old->kind == ST_DT_DECIMAL && nw->kind == ST_DT_DECIMAL) {
        if (nw->scale >= old->scale && nw->precision - nw->scale >= old->precision - old->scale)
            return 2;
        if (nw->scale <= old->scale && nw->precision - nw->scale <= old->precision - old->scale)
            return 3;
        return 0;
    }
    static const int digits[] = {0, 3, 5, 10, 19};
    if (ro && nw->kind == ST_DT_DECIMAL && nw->precision - nw->scale >= digits[ro])
        return 2;
    if (old->kind == ST_DT_DATE && nw->kind == ST_DT_TIMESTAMP_NTZ)
        return 2;
    return 0;
}

static st_dfield *add_field(st_delta_schema *s, const char *name, const st_dtype *t)
{
    st_dfield *nf = st_realloc(s->fields, (s->n_fields + 1) * sizeof *nf);
    if (!nf)
        return NULL;
    s->fields = nf;
    st_dfield *f = &s->fields[s->n_fields++];
    memset(f, 0, sizeof *f);
    f->name = st_strdup(name);
    f->type = *t;
    f->nullable = true;
    f->metadata_json = st_strdup("{}");
    return f;
}

static bool is_system(const char *n)
{
    return !strcmp(n, "_batch_id") || !strcmp(n, "_loaded_at") || !strcmp(n, "_op");
}

/* Builds the target schema and the staging SELECT, applying the drift rules. */
static st_rc plan_schema(tctx *c, st_engine *eng, const st_delta_snapshot *snap, st_err *err)
{
    st_buf ddl, probe;
    st_buf_init(&ddl, 0);
    st_buf_init(&probe, 0);
    st_buf_puts(&ddl, "CREATE TEMP TABLE _x_stage(");
    st_buf_puts(&probe, "SELECT ");
    char **exprs = st_calloc(c->n_cols + 1, sizeof *exprs);
    for (size_t i = 0; i < c->n_cols; i++) {
        char cn[32];
        snprintf(cn, sizeof cn, "c%zu", i);
        st_buf_printf(&ddl, "%s%s %s", i ? ", " : "", cn,
                      c->binary ? c->cols[i].duck_type : "VARCHAR");
        if (c->binary)
            exprs[i] = st_strdup(cn);
        else if (c->cols[i].stage_expr)
            exprs[i] = st_sprintf(c->cols[i].stage_expr, cn);
        else
            exprs[i] = st_sprintf("CAST(%s AS %s)", cn, c->cols[i].duck_type);
        st_buf_printf(&probe, "%s%s AS ", i ? ", " : "", exprs[i]);
        st_buf_sql_ident(&probe, c->cols[i].name);
    }
    st_buf_puts(&ddl, ")");
    st_buf_puts(&probe, " FROM _x_stage LIMIT 0");
    c->stage_ddl = st_buf_take(&ddl);
    st_rc rc = st_engine_exec(eng, c->stage_ddl, err);
    duckdb_result r;
    rc = rc ? rc : st_engine_query(eng, probe.data, &r, err);
    st_buf_free(&probe);
    st_engine_exec(eng, "DROP TABLE IF EXISTS _x_stage", NULL);
    if (rc) {
        for (size_t i = 0; i < c->n_cols; i++)
            st_free(exprs[i]);
        st_free(exprs);
        return rc;
    }
    st_dtype *src_t = st_calloc(c->n_cols + 1, sizeof *src_t);
    for (size_t i = 0; rc == ST_OK && i < c->n_cols; i++) {
        duckdb_logical_type lt = duckdb_column_logical_type(&r, i);
        rc = st_delta_type_from_duckdb(lt, &src_t[i], err);
        duckdb_destroy_logical_type(&lt);
        if (rc)
            st_err_ctx(err, "table %s, column %s", c->t->name, c->cols[i].name);
    }
    duckdb_destroy_result(&r);

    st_delta_schema *s = st_calloc(1, sizeof *s);
    st_buf sel;
    st_buf_init(&sel, 0);
    st_buf_puts(&sel, "SELECT ");
    bool first = true;
    bool *used = st_calloc(c->n_cols + 1, sizeof *used);
    const st_delta_schema *old = snap ? snap->metadata.schema : NULL;
    /* existing target columns keep their order */
    for (size_t f = 0; rc == ST_OK && old && f < old->n_fields; f++) {
        const st_dfield *of = &old->fields[f];
        if (is_system(of->name))
            continue;
        size_t i = 0;
        while (i < c->n_cols && strcmp(c->cols[i].name, of->name))
            i++;
        st_dtype ty;
        memset(&ty, 0, sizeof ty);
        st_delta_dtype_copy(&of->type, &ty);
        if (i == c->n_cols) {
            st_info("%s: column %s was dropped at the source; it stays in %s and is NULL from"
                    " now on", c->t->name, of->name, c->t->target);
            char *ts = st_delta_type_sql(&of->type);
            st_buf_printf(&sel, "%sCAST(NULL AS %s) AS ", first ? "" : ", ", ts);
            st_free(ts);
        } else {
            used[i] = true;
            int cmp = compare_types(&of->type, &src_t[i]);
            if (cmp == 0) {
                char *a = st_delta_type_ddl(&of->type), *b = st_delta_type_ddl(&src_t[i]);
                rc = st_fail(err, ST_ERR_INVALID,
                             "table %s: column %s changed type from %s to %s (source type %s),"
                             " which cannot be converted safely; the table was not extracted",
                             c->t->name, of->name, a ? a : "?", b ? b : "?", c->cols[i].src_type);
                st_free(a);
                st_free(b);
                st_delta_dtype_clear(&ty);
                break;
            }
            if (cmp == 2) {
                char *a = st_delta_type_ddl(&of->type), *b = st_delta_type_ddl(&src_t[i]);
                st_info("%s: column %s widened from %s to %s", c->t->target, of->name, a, b);
                st_free(a);
                st_free(b);
                st_delta_dtype_clear(&ty);
                st_delta_dtype_copy(&src_t[i], &ty);
            }
            char *ts = st_delta_type_sql(&ty);
            st_buf_printf(&sel, "%sCAST(%s AS %s) AS ", first ? "" : ", ", exprs[i], ts);
            st_free(ts);
        }
        st_buf_sql_ident(&sel, of->name);
        first = false;
        add_field(s, of->name, &ty);
    }
    for (size_t i = 0; rc == ST_OK && i < c->n_cols; i++) {
        if (used[i])
            continue;
        if (is_system(c->cols[i].name)) {
            rc = st_fail(err, ST_ERR_INVALID, "table %s: column %s clashes with a system column",
                         c->t->name, c->cols[i].name);
            break;
        }
        if (old)
            st_info("%s: new column %s (%s) added to %s", c->t->name, c->cols[i].name,
                    c->cols[i].src_type, c->t->target);
        st_dtype ty;
        memset(&ty, 0, sizeof ty);
        st_delta_dtype_copy(&src_t[i], &ty);
        add_field(s, c->cols[i].name, &ty);
        st_buf_printf(&sel, "%s%s AS ", first ? "" : ", ", exprs[i]);
        st_buf_sql_ident(&sel, c->cols[i].name);
        first = false;
    }
    if (rc == ST_OK) {
        st_dtype str = {.kind = ST_DT_STRING}, ts = {.kind = ST_DT_TIMESTAMP};
        char now[64];
        int64_t ms = st_now_ms();
        time_t secs = (time_t)(ms / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        strftime(now, sizeof now, "%Y-%m-%d %H:%M:%S", &tm);
        if (c->strategy == X_HASHDIFF) {
            /* change detection: a stable digest of every source column */
            st_buf_puts(&sel, ", md5(CAST(to_json(struct_pack(");
            for (size_t i = 0; i < c->n_cols; i++) {
                st_buf_printf(&sel, "%s", i ? ", " : "");
                st_buf_sql_ident(&sel, c->cols[i].name);
                st_buf_printf(&sel, " := %s", exprs[i]);
            }
            st_buf_puts(&sel, ")) AS VARCHAR)) AS _hash");
            add_field(s, "_op", &str);
        }
        add_field(s, "_batch_id", &str);
        add_field(s, "_loaded_at", &ts);
        st_buf_puts(&sel, ", ");
        st_buf_sql_str(&sel, c->batch_id);
        st_buf_printf(&sel, " AS _batch_id, CAST('%s.%03d+00' AS TIMESTAMPTZ) AS _loaded_at"
                            " FROM _x_stage", now, (int)(ms % 1000));
        c->stage_select = st_buf_take(&sel);
        c->schema = s;
        s = NULL;
    }
    st_buf_free(&sel);
    st_delta_schema_free(s);
    for (size_t i = 0; i < c->n_cols; i++) {
        st_free(exprs[i]);
        st_delta_dtype_clear(&src_t[i]);
    }
    st_free(exprs);
    st_free(src_t);
    st_free(used);
    return rc;
}

/* ---------------------------------------------------------------- planning */

static char qchar(const x_source_cfg *s)
{
    return s->dialect == X_DIALECT_MYSQL ? '`' : s->dialect == X_DIALECT_SQLSERVER ? '[' : '"';
}

static const x_driver *driver_of(const x_source_cfg *s)
{
    switch (s->kind) {
    case X_POSTGRES: return &x_pg_driver;
    case X_MYSQL: return &x_mysql_driver;
    case X_ODBC: return &x_odbc_driver;
    default: return NULL;
    }
}

static const x_col *find_col(const tctx *c, const char *name)
{
    for (size_t i = 0; i < c->n_cols; i++)
        if (!strcmp(c->cols[i].name, name))
            return &c->cols[i];
    return NULL;
}

/* Source-side literal for a cursor value. */
static void put_lit(st_buf *b, const tctx *c, const x_col *col, const char *v)
{
    if (c->src->dialect == X_DIALECT_POSTGRES) {
        st_buf_puts(b, "CAST(");
        st_buf_sql_str(b, v);
        st_buf_printf(b, " AS %s)", col->src_type);
    } else {
        st_buf_sql_str(b, v);
    }
}

/* ------------------------------------------------------ sampled chunks */

/* A key boundary value as a source literal.  Native PostgreSQL casts it to
 * the column's type (the text came from that type's output function); in
 * the other dialects the comparison with the column gives the literal its
 * type and collation.
 * MySQL strings escape backslashes too (its default sql_mode reads them as
 * escapes). */
static void put_str(st_buf *b, const tctx *c, const char *v)
{
    if (c->src->dialect != X_DIALECT_MYSQL) {
        st_buf_sql_str(b, v);
        return;
    }
    st_buf_putc(b, '\'');
    for (const char *p = v; *p; p++) {
        if (*p == '\'' || *p == '\\')
            st_buf_putc(b, *p);
        st_buf_putc(b, *p);
    }
    st_buf_putc(b, '\'');
}

static void put_key_lit(st_buf *b, const tctx *c, const x_col *col, const char *v)
{
    if (c->src->kind == X_POSTGRES) {
        put_lit(b, c, col, v);
        return;
    }
    bool num = c->src->dialect == X_DIALECT_MYSQL && col->is_int && *v;
    for (const char *p = v; num && *p; p++)
        num = (*p >= '0' && *p <= '9') || (p == v && *p == '-');
    if (num)
        st_buf_puts(b, v);
    else
        put_str(b, c, v);
}

/* keys OP vals for OP "<" or ">=" over the key columns in order.
 * PostgreSQL and MySQL compare row values, (k1, k2) >= (v1, v2), which
 * their planners turn into an index range; SQL Server and Oracle have no
 * ordering comparison of row values, so it is spelled out:
 * k1 > v1 OR (k1 = v1 AND k2 >= v2). */
static void key_cmp(st_buf *b, const tctx *c, const x_col *const *kc, const char *const *kq,
                    size_t nk, char *const *vals, bool ge)
{
    x_dialect d = c->src->dialect;
    if (nk == 1 || d == X_DIALECT_POSTGRES || d == X_DIALECT_MYSQL) {
        st_buf_puts(b, nk > 1 ? "(" : "");
        for (size_t i = 0; i < nk; i++)
            st_buf_printf(b, "%s%s", i ? ", " : "", kq[i]);
        st_buf_printf(b, "%s %s %s", nk > 1 ? ")" : "", ge ? ">=" : "<", nk > 1 ? "(" : "");
        for (size_t i = 0; i < nk; i++) {
            st_buf_puts(b, i ? ", " : "");
            put_key_lit(b, c, kc[i], vals[i]);
        }
        st_buf_puts(b, nk > 1 ? ")" : "");
        return;
    }
    st_buf_putc(b, '(');
    for (size_t i = 0; i < nk; i++) {
        st_buf_puts(b, i ? " OR (" : "(");
        for (size_t j = 0; j < i; j++) {
            st_buf_printf(b, "%s = ", kq[j]);
            put_key_lit(b, c, kc[j], vals[j]);
            st_buf_puts(b, " AND ");
        }
        st_buf_printf(b, "%s %s ", kq[i], i + 1 < nk ? (ge ? ">" : "<") : (ge ? ">=" : "<"));
        put_key_lit(b, c, kc[i], vals[i]);
        st_buf_putc(b, ')');
    }
    st_buf_putc(b, ')');
}

typedef struct sample {
    size_t nk;
    char **vals;      /* n_rows * nk */
    size_t n_rows, cap;
} sample;

static st_rc on_sample_row(void *ctx, char **vals, const size_t *lens, size_t n, st_err *err)
{
    sample *s = ctx;
    if (s->n_rows == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        char **nv = st_realloc(s->vals, cap * s->nk * sizeof *nv);
        if (!nv)
            return st_fail(err, ST_ERR_NOMEM, "key sample");
        s->vals = nv;
        s->cap = cap;
    }
    for (size_t i = 0; i < n && i < s->nk; i++)
        s->vals[s->n_rows * s->nk + i] = vals[i] ? st_strndup(vals[i], lens[i]) : st_strdup("");
    s->n_rows++;
    return ST_OK;
}

static void sample_clear(sample *s)
{
    for (size_t i = 0; i < s->n_rows * s->nk; i++)
        st_free(s->vals[i]);
    st_free(s->vals);
    memset(s, 0, sizeof *s);
}

/* Rows of the table, from the catalogue's estimate where the source keeps
 * one (PostgreSQL reltuples, MySQL TABLE_ROWS), else count(*). */
static st_rc estimate_rows(tctx *c, x_conn *conn, int64_t *out, st_err *err)
{
    char *q = NULL, *v = NULL;
    st_buf b;
    st_buf_init(&b, 0);
    *out = -1;
    if (c->src->kind == X_POSTGRES) {
        st_buf_puts(&b, "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(");
        st_buf_sql_str(&b, c->table_sql);
        st_buf_puts(&b, ")");
    } else if (c->src->kind == X_MYSQL) {
        st_buf_puts(&b, "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ");
        put_str(&b, c, c->t->schema);
        st_buf_puts(&b, " AND TABLE_NAME = ");
        put_str(&b, c, c->t->table);
    }
    st_rc rc = ST_OK;
    if (b.len) {
        rc = c->drv->scalar(conn, b.data, &v, err);
        if (rc == ST_OK && v)
            *out = strtoll(v, NULL, 10);
        st_free(v);
        v = NULL;
    }
    st_buf_free(&b);
    /* never analysed (-1 / 0 on PostgreSQL) or no estimate: count */
    if (rc == ST_OK && *out < 1) {
        q = st_sprintf("SELECT count(*) FROM %s", c->table_sql);
        rc = c->drv->scalar(conn, q, &v, err);
        *out = rc == ST_OK && v ? strtoll(v, NULL, 10) : 0;
        st_free(v);
        st_free(q);
    }
    return rc;
}

/* Chunks from boundaries sampled from the key: half-open ranges
 * [b(i-1), b(i)) of the key columns in the source's own ordering (first
 * range open below, last open above), each also requiring every key column
 * to be non-NULL, plus one chunk for the rows with a NULL key column.
 * Whatever boundaries the sample gives, as long as they are in the
 * source's order the ranges are disjoint and cover every non-NULL key, so
 * the union of the chunks is the table (filtered by `base`). */
static st_rc plan_sampled(tctx *c, x_conn *conn, const char *base, int n, char ***preds,
                          size_t *n_preds, st_err *err)
{
    size_t nk = c->t->n_key;
    const x_col **kc = st_calloc(nk + 1, sizeof *kc);
    char **kq = st_calloc(nk + 1, sizeof *kq);
    sample s = {.nk = nk};
    st_buf nn, isnull, keys, q;
    st_buf_init(&nn, 0);
    st_buf_init(&isnull, 0);
    st_buf_init(&keys, 0);
    st_buf_init(&q, 0);
    char **v = NULL;
    size_t nv = 0;
    st_rc rc = kc && kq ? ST_OK : st_fail(err, ST_ERR_NOMEM, "chunk plan");
    for (size_t i = 0; rc == ST_OK && i < nk; i++) {
        kc[i] = find_col(c, c->t->key[i]);
        if (!kc[i]) {
            rc = st_fail(err, ST_ERR_INVALID, "table %s: key column %s does not exist",
                         c->t->name, c->t->key[i]);
            break;
        }
        if (kc[i]->duck_type && !strcmp(kc[i]->duck_type, "BLOB")) {
            rc = st_fail(err, ST_ERR_UNSUPPORTED, "table %s: key column %s has binary type %s,"
                         " which cannot be split into chunks; use chunks: 1",
                         c->t->name, kc[i]->name, kc[i]->src_type);
            break;
        }
        st_buf b;
        st_buf_init(&b, 0);
        x_quote(&b, qchar(c->src), kc[i]->name);
        kq[i] = st_buf_take(&b);
        st_buf_printf(&nn, "%s%s IS NOT NULL", i ? " AND " : "", kq[i]);
        st_buf_printf(&isnull, "%s%s IS NULL", i ? " OR " : "", kq[i]);
        st_buf_printf(&keys, "%s%s", i ? ", " : "", kq[i]);
    }
    int64_t est = 0;
    rc = rc ? rc : estimate_rows(c, conn, &est, err);
    /* ~100 sample rows per chunk: boundaries within about 10% of an even split */
    int64_t want = (int64_t)n * 100 < 1000 ? 1000 : (int64_t)n * 100;
    if (rc == ST_OK && c->src->kind == X_POSTGRES && est > want * 50) {
        /* block sample: reads about want * 4 rows' pages, not the table */
        double pct = 400.0 * (double)want / (double)est;
        st_buf_printf(&q, "SELECT %s FROM %s TABLESAMPLE SYSTEM (%.6f) WHERE %s ORDER BY %s",
                      keys.data, c->table_sql, pct > 100 ? 100.0 : pct, nn.data, keys.data);
        rc = c->drv->stream(conn, q.data, nk, on_sample_row, &s, err);
        if (rc == ST_OK && s.n_rows < (size_t)n * 4)
            sample_clear(&s);   /* stale estimate: take the strided sample below */
        s.nk = nk;
    }
    if (rc == ST_OK && s.n_rows == 0 && est > 0) {
        /* every m-th key in key order, numbered by the source */
        int64_t m = est / want > 1 ? est / want : 1;
        st_buf_reset(&q);
        st_buf_printf(&q, "SELECT %s FROM (SELECT %s, ROW_NUMBER() OVER (ORDER BY %s) AS x_rn"
                          " FROM %s WHERE %s) x_s WHERE ", keys.data, keys.data, keys.data,
                      c->table_sql, nn.data);
        if (c->src->dialect == X_DIALECT_ORACLE)
            st_buf_printf(&q, "MOD(x_rn, %lld) = 0", (long long)m);
        else
            st_buf_printf(&q, "x_rn %% %lld = 0", (long long)m);
        st_buf_puts(&q, " ORDER BY x_rn");
        rc = c->drv->stream(conn, q.data, nk, on_sample_row, &s, err);
    }
    if (rc)
        goto out;
    /* boundaries at the sample's quantiles, equal neighbours dropped */
    char ***bounds = st_calloc((size_t)n + 1, sizeof *bounds);   /* rows of s.vals */
    size_t nb = 0;
    for (int i = 1; i < n && s.n_rows > 1; i++) {
        size_t r = (size_t)((double)i * (double)s.n_rows / n);
        if (r == 0 || r >= s.n_rows)
            continue;
        char **row = &s.vals[r * nk];
        bool same = nb > 0;
        for (size_t k = 0; same && k < nk; k++)
            same = !strcmp(bounds[nb - 1][k], row[k]);
        if (!same)
            bounds[nb++] = row;
    }
    v = st_calloc(nb + 3, sizeof *v);
    for (size_t i = 0; i <= nb; i++) {
        st_buf p;
        st_buf_init(&p, 0);
        if (*base)
            st_buf_printf(&p, "%s AND ", base);
        st_buf_puts(&p, nn.data);
        if (i > 0) {
            st_buf_puts(&p, " AND ");
            key_cmp(&p, c, kc, (const char *const *)kq, nk, bounds[i - 1], true);
        }
        if (i < nb) {
            st_buf_puts(&p, " AND ");
            key_cmp(&p, c, kc, (const char *const *)kq, nk, bounds[i], false);
        }
        v[nv++] = st_buf_take(&p);
    }
    st_free(bounds);
    v[nv++] = *base ? st_sprintf("%s AND (%s)", base, isnull.data) : st_sprintf("(%s)", isnull.data);
    *preds = v;
    *n_preds = nv;
    v = NULL;
    st_info("%s: %zu chunks from a sample of %zu keys (about %lld rows)", c->t->target, nv,
            s.n_rows, (long long)est);
out:
    for (size_t i = 0; v && i < nv; i++)
        st_free(v[i]);
    st_free(v);
    for (size_t i = 0; kq && i < nk; i++)
        st_free(kq[i]);
    st_free(kq);
    st_free(kc);
    sample_clear(&s);
    st_buf_free(&nn);
    st_buf_free(&isnull);
    st_buf_free(&keys);
    st_buf_free(&q);
    return rc;
}

static st_rc plan_chunks(tctx *c, x_conn *conn, const char *wm_lo, char **out_hi, char ***preds,
                         size_t *n_preds, st_err *err)
{
    st_buf base;
    st_buf_init(&base, 0);
    st_rc rc = ST_OK;
    *out_hi = NULL;
    const x_col *cur = c->t->cursor ? find_col(c, c->t->cursor) : NULL;
    if (c->t->cursor && !cur && (c->strategy == X_INCREMENTAL || c->range))
        return st_fail(err, ST_ERR_INVALID, "table %s: cursor column %s does not exist",
                       c->t->name, c->t->cursor);
    st_buf qc;
    st_buf_init(&qc, 0);
    if (cur)
        x_quote(&qc, qchar(c->src), cur->name);
    if (c->range) {
        st_buf_printf(&base, "%s >= ", qc.data);
        put_lit(&base, c, cur, c->o->range_from);
        st_buf_printf(&base, " AND %s < ", qc.data);
        put_lit(&base, c, cur, c->o->range_to);
    } else if (c->strategy == X_INCREMENTAL) {
        char *q = st_sprintf("SELECT max(%s) FROM %s", qc.data, c->table_sql);
        rc = c->drv->scalar(conn, q, out_hi, err);
        st_free(q);
        if (rc == ST_OK && !*out_hi) {
            st_buf_puts(&base, wm_lo ? "1 = 0" : "");
        } else if (rc == ST_OK) {
            st_buf_printf(&base, "%s <= ", qc.data);
            put_lit(&base, c, cur, *out_hi);
            if (wm_lo) {
                st_buf_printf(&base, " AND %s > ", qc.data);
                put_lit(&base, c, cur, wm_lo);
                if (c->t->lookback > 0 && cur->is_temporal) {
                    if (c->src->dialect == X_DIALECT_MYSQL)
                        st_buf_printf(&base, " - INTERVAL %lld SECOND", (long long)c->t->lookback);
                    else
                        st_buf_printf(&base, " - INTERVAL '%lld seconds'", (long long)c->t->lookback);
                } else if (c->t->lookback > 0) {
                    st_buf_printf(&base, " - %lld", (long long)c->t->lookback);
                }
            } else {
                /* first run: rows without a cursor value are part of the snapshot */
                char *b2 = st_sprintf("(%s OR %s IS NULL)", base.data, qc.data);
                st_buf_reset(&base);
                st_buf_puts(&base, b2);
                st_free(b2);
            }
        }
    }
    st_buf_free(&qc);
    if (!base.data)
        st_buf_puts(&base, "");
    int n = c->t->chunks;
    const x_col *key = c->t->n_key ? find_col(c, c->t->key[0]) : NULL;
    if (rc == ST_OK && n > 1 && !key)
        rc = st_fail(err, ST_ERR_INVALID, "table %s: key column %s does not exist", c->t->name,
                     c->t->key[0]);
    long long mn = 0, mx = 0;
    if (rc == ST_OK && n > 1 && (!key->is_int || c->t->sample_chunks)) {
        rc = plan_sampled(c, conn, base.data, n, preds, n_preds, err);
    } else if (rc == ST_OK && n > 1) {
        st_buf kq;
        st_buf_init(&kq, 0);
        x_quote(&kq, qchar(c->src), key->name);
        char *q = st_sprintf("SELECT min(%s) FROM %s", kq.data, c->table_sql);
        char *smn = NULL, *smx = NULL;
        rc = c->drv->scalar(conn, q, &smn, err);
        st_free(q);
        q = st_sprintf("SELECT max(%s) FROM %s", kq.data, c->table_sql);
        rc = rc ? rc : c->drv->scalar(conn, q, &smx, err);
        st_free(q);
        if (rc == ST_OK && smn && smx) {
            mn = strtoll(smn, NULL, 10);
            mx = strtoll(smx, NULL, 10);
        } else {
            n = 1;
        }
        if (mx - mn + 1 < n)
            n = (int)(mx - mn + 1 > 0 ? mx - mn + 1 : 1);
        st_free(smn);
        st_free(smx);
        char **v = st_calloc((size_t)n + 1, sizeof *v);
        long long span = (mx - mn) / n + 1;
        for (int i = 0; i < n && rc == ST_OK; i++) {
            long long lo = mn + span * i, hi = lo + span;
            char *kp;
            if (n == 1)
                kp = st_strdup("");
            else if (i == 0)
                kp = st_sprintf("(%s < %lld OR %s IS NULL)", kq.data, hi, kq.data);
            else if (i == n - 1)
                kp = st_sprintf("%s >= %lld", kq.data, lo);
            else
                kp = st_sprintf("%s >= %lld AND %s < %lld", kq.data, lo, kq.data, hi);
            if (*kp && base.len)
                v[i] = st_sprintf("%s AND %s", base.data, kp);
            else
                v[i] = st_strdup(*kp ? kp : base.data);
            st_free(kp);
        }
        st_buf_free(&kq);
        *preds = v;
        *n_preds = (size_t)n;
    } else if (rc == ST_OK) {
        char **v = st_calloc(2, sizeof *v);
        v[0] = st_strdup(base.data);
        *preds = v;
        *n_preds = 1;
    }
    st_buf_free(&base);
    return rc;
}

/* ---------------------------------------------------------------- run */

static st_rc gather_files(tctx *c, st_parquet_file **out, size_t *n_out, st_err *err)
{
    st_parquet_file *all = NULL;
    size_t n = 0;
    for (size_t i = 0; i < c->run->n_chunks; i++) {
        st_parquet_file *f = NULL;
        size_t nf = 0;
        st_rc rc = x_files_from_json(c->run->chunks[i].files_json, &f, &nf, err);
        if (rc) {
            st_parquet_files_free(all, n);
            return rc;
        }
        for (size_t k = 0; k < nf; k++) {
            if (!st_path_exists(f[k].path)) {
                st_fail(err, ST_ERR_NOTFOUND, "chunk %zu file %s is missing", i, f[k].path);
                st_parquet_files_free(f, nf);
                st_parquet_files_free(all, n);
                return ST_ERR_NOTFOUND;
            }
        }
        all = st_realloc(all, (n + nf + 1) * sizeof *all);
        memcpy(all + n, f, nf * sizeof *f);
        n += nf;
        st_free(f);
    }
    *out = all;
    *n_out = n;
    return ST_OK;
}

static st_rc list_sql(st_buf *b, const st_parquet_file *f, size_t n)
{
    st_rc rc = st_buf_puts(b, "[");
    for (size_t i = 0; rc == ST_OK && i < n; i++) {
        rc = i ? st_buf_puts(b, ", ") : ST_OK;
        rc = rc ? rc : st_buf_sql_str(b, f[i].path);
    }
    return rc ? rc : st_buf_puts(b, "]");
}

static st_rc key_list(st_buf *b, const x_table_cfg *t, const char *alias)
{
    st_rc rc = ST_OK;
    for (size_t i = 0; rc == ST_OK && i < t->n_key; i++) {
        rc = st_buf_printf(b, "%s%s%s", i ? ", " : "", alias ? alias : "", alias ? "." : "");
        rc = rc ? rc : st_buf_sql_ident(b, t->key[i]);
    }
    return rc;
}

st_rc x_hashdiff_limit(st_engine *eng, const char *spill_dir, st_err *err)
{
    st_buf set;
    st_buf_init(&set, 0);
    st_buf_printf(&set, "SET memory_limit = '%s'; SET preserve_insertion_order = false;"
                        " SET temp_directory = ", X_HASHDIFF_MEMORY);
    st_buf_sql_str(&set, spill_dir);
    st_rc rc = st_engine_exec(eng, set.data, err);
    st_buf_free(&set);
    return rc;
}

/* hashdiff: writes the change set into the table dir and the new state file. */
static st_rc hashdiff(tctx *c, st_engine *eng, const st_parquet_file *staged, size_t n_staged,
                      const char *old_state, bool snapshot, const char *new_state,
                      st_parquet_file **out, size_t *n_out, st_err *err)
{
    st_buf src, q, cols;
    st_buf_init(&src, 0);
    st_buf_init(&q, 0);
    st_buf_init(&cols, 0);
    st_rc rc = ST_OK;
    if (n_staged) {
        st_buf_puts(&src, "read_parquet(");
        list_sql(&src, staged, n_staged);
        st_buf_puts(&src, ")");
    } else {
        /* empty source: an empty relation with the staged columns */
        st_buf_puts(&src, "(SELECT * FROM (");
        st_buf_puts(&src, c->stage_select);
        st_buf_puts(&src, ") WHERE false)");
    }
    /* columns of the change set, in schema order */
    for (size_t i = 0; i < c->schema->n_fields; i++) {
        const char *fn = c->schema->fields[i].name;
        if (!strcmp(fn, "_op"))
            continue;
        if (cols.len)
            st_buf_puts(&cols, ", ");
        st_buf_puts(&cols, "n.");
        st_buf_sql_ident(&cols, fn);
    }
    /* The join with the previous state is the one step whose memory grows
     * with the table (unbounded it peaked at 1.1 GB for 10M rows): cap
     * DuckDB's buffer pool and let it spill next to the lake; insertion
     * order does not matter for a change set. */
    rc = st_mkdirs(c->spill_dir, err);
    rc = rc ? rc : x_hashdiff_limit(eng, c->spill_dir, err);
    if (rc) {
        st_buf_free(&src);
        st_buf_free(&q);
        st_buf_free(&cols);
        return rc;
    }
    st_buf kn;
    st_buf_init(&kn, 0);
    key_list(&kn, c->t, NULL);
    if (snapshot || !old_state) {
        st_buf_printf(&q, "SELECT %s, 'I' AS _op FROM %s n", cols.data, src.data);
    } else {
        /* Which keys changed, from a join of (key, 64-bit hash of the
         * digest) only: the wide rows never enter a hash table, and the
         * narrow one spills under the memory limit when the table is
         * large.  (A missed update would need two different md5 digests
         * with the same 64-bit hash.) */
        st_buf on, nk, ck, nulls;
        st_buf_init(&on, 0);
        st_buf_init(&nk, 0);
        st_buf_init(&ck, 0);
        st_buf_init(&nulls, 0);
        for (size_t i = 0; i < c->t->n_key; i++) {
            st_buf_puts(&nk, i ? ", coalesce(n." : "coalesce(n.");
            st_buf_sql_ident(&nk, c->t->key[i]);
            st_buf_puts(&nk, ", o.");
            st_buf_sql_ident(&nk, c->t->key[i]);
            st_buf_puts(&nk, ") AS ");
            st_buf_sql_ident(&nk, c->t->key[i]);
            st_buf_puts(&on, i ? " AND n." : "n.");
            st_buf_sql_ident(&on, c->t->key[i]);
            st_buf_puts(&on, " = o.");
            st_buf_sql_ident(&on, c->t->key[i]);
            st_buf_puts(&ck, i ? " AND n." : "n.");
            st_buf_sql_ident(&ck, c->t->key[i]);
            st_buf_puts(&ck, " = c.");
            st_buf_sql_ident(&ck, c->t->key[i]);
            st_buf_puts(&nulls, i ? " OR n." : "n.");
            st_buf_sql_ident(&nulls, c->t->key[i]);
            st_buf_puts(&nulls, " IS NULL");
        }
        st_buf chg;
        st_buf_init(&chg, 0);
        st_buf_printf(&chg, "CREATE OR REPLACE TEMP TABLE _x_chg AS SELECT %s, CASE WHEN o.h IS NULL"
                            " THEN 'I' WHEN n.h IS NULL THEN 'D' ELSE 'U' END AS _op FROM"
                            " (SELECT %s, hash(_hash) AS h FROM %s) n FULL JOIN (SELECT %s,"
                            " hash(_hash) AS h FROM read_parquet(", nk.data, kn.data, src.data,
                      kn.data);
        st_buf_sql_str(&chg, old_state);
        st_buf_printf(&chg, ")) o ON %s WHERE n.h IS DISTINCT FROM o.h", on.data);
        rc = st_engine_exec(eng, chg.data, err);
        st_buf_free(&chg);
        /* inserted and updated rows: the staged rows of those keys (the
         * join's build side is the change set); rows with a NULL key match
         * nothing, so they are inserted every run, as they always were */
        st_buf_printf(&q, "SELECT %s, c._op FROM %s n JOIN (SELECT %s, min(_op) AS _op FROM _x_chg"
                          " WHERE _op <> 'D' GROUP BY ALL) c ON %s"
                          " UNION ALL BY NAME SELECT %s, 'I' AS _op FROM %s n WHERE %s"
                          " UNION ALL BY NAME SELECT %s, 'D' AS _op, ",
                      cols.data, src.data, kn.data, ck.data, cols.data, src.data, nulls.data,
                      kn.data);
        st_buf_sql_str(&q, c->batch_id);
        st_buf_printf(&q, " AS _batch_id, (SELECT max(_loaded_at) FROM %s) AS _loaded_at"
                          " FROM _x_chg WHERE _op = 'D'", src.data);
        st_buf_free(&on);
        st_buf_free(&nk);
        st_buf_free(&ck);
        st_buf_free(&nulls);
    }
    /* cast to the schema so D rows (mostly NULL) have the right types */
    st_buf fin;
    st_buf_init(&fin, 0);
    st_buf_puts(&fin, "SELECT ");
    for (size_t i = 0; i < c->schema->n_fields; i++) {
        char *ts = st_delta_type_sql(&c->schema->fields[i].type);
        st_buf_printf(&fin, "%sCAST(", i ? ", " : "");
        st_buf_sql_ident(&fin, c->schema->fields[i].name);
        st_buf_printf(&fin, " AS %s) AS ", ts);
        st_buf_sql_ident(&fin, c->schema->fields[i].name);
        st_free(ts);
    }
    st_buf_printf(&fin, " FROM (%s)", q.data);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "r%lld-chg-", (long long)c->run->id);
    st_parquet_opts po = {0};
    po.file_prefix = prefix;
    /* the writer buffers a row group per thread: 1M-row groups of a wide
     * table alone exceed the memory limit (a first run writes every row) */
    po.row_group_size = 122880;
    po.row_groups_per_file = 10;
    rc = rc ? rc : st_engine_write_parquet(eng, fin.data, c->table_path, &po, out, n_out, err);
    st_engine_exec(eng, "DROP TABLE IF EXISTS _x_chg", NULL);
    if (rc == ST_OK) {
        st_buf sq;
        st_buf_init(&sq, 0);
        st_buf_printf(&sq, "COPY (SELECT %s, _hash FROM %s) TO ", kn.data, src.data);
        st_buf_sql_str(&sq, new_state);
        st_buf_puts(&sq, " (FORMAT parquet, COMPRESSION zstd)");
        char *dir = st_strdup(new_state);
        *strrchr(dir, '/') = '\0';
        rc = st_mkdirs(dir, err);
        st_free(dir);
        rc = rc ? rc : st_engine_exec(eng, sq.data, err);
        st_buf_free(&sq);
    }
    st_buf_free(&fin);
    st_buf_free(&kn);
    st_buf_free(&src);
    st_buf_free(&q);
    st_buf_free(&cols);
    if (rc)
        st_err_ctx(err, "hashdiff of %s", c->t->name);
    return rc;
}

static void tctx_clear(tctx *c)
{
    x_cols_free(c->cols, c->n_cols);
    st_free(c->table_sql);
    st_free(c->select_list);
    st_free(c->stage_select);
    st_free(c->stage_ddl);
    st_delta_schema_free(c->schema);
    st_free(c->table_path);
    st_free(c->stage_dir);
    st_free(c->spill_dir);
    st_free(c->batch_id);
    st_free(c->app_id);
    x_run_free(c->run);
    pthread_mutex_destroy(&c->mu);
}

/* Writes the agent-mode manifest entry for a table. */
static st_rc write_manifest(tctx *c, const st_parquet_file *files, size_t n, st_err *err);

static st_rc run_db_table(const x_project *p, const x_source_cfg *src, const x_table_cfg *t,
                          const st_extract_opts *o, st_state *state, st_extract_result *res,
                          st_err *err)
{
    tctx c;
    memset(&c, 0, sizeof c);
    pthread_mutex_init(&c.mu, NULL);
    c.p = p;
    c.src = src;
    c.t = t;
    c.o = o;
    c.state = state;
    c.drv = driver_of(src);
    c.range = o->range_from && o->range_to;
    c.strategy = o->full && !c.range ? X_FULL : t->strategy;
    if (o->full && t->strategy == X_HASHDIFF)
        c.strategy = X_HASHDIFF;   /* re-snapshot of a change log: see `snapshot` below */
    c.t0_ns = st_mono_ns();
    int64_t t0 = st_mono_ns();
    x_conn *conn = NULL;
    st_engine *eng = NULL;
    st_delta_snapshot *snap = NULL;
    char *wm = NULL, *hstate = NULL, *new_hi = NULL, *new_state = NULL;
    char **preds = NULL;
    size_t n_preds = 0;
    st_parquet_file *files = NULL, *chg = NULL;
    size_t n_files = 0, n_chg = 0;
    st_rc rc;
    if (c.range && !t->cursor) {
        rc = st_fail(err, ST_ERR_INVALID, "table %s: --from/--to needs a `cursor:` column", t->name);
        goto fail;
    }
    char *bronze = st_path_join(p->lake, "bronze");
    c.table_path = st_path_join(bronze, t->target);
    st_free(bronze);
    c.app_id = st_sprintf("extract.%s.%s", src->name, t->name);
    st_buf tq;
    st_buf_init(&tq, 0);
    if (t->schema && *t->schema) {
        x_quote(&tq, qchar(c.src), t->schema);
        st_buf_putc(&tq, '.');
    }
    x_quote(&tq, qchar(c.src), t->table);
    c.table_sql = st_buf_take(&tq);

    rc = st_engine_open(NULL, &eng, err);
    rc = rc ? rc : c.drv->connect(src, &conn, err);
    rc = rc ? rc : c.drv->describe(conn, t, &c.cols, &c.n_cols, err);
    if (rc)
        goto fail;
    /* typed staging filled from the source's binary format when the driver
     * can decode every column (PostgreSQL); text staging otherwise */
    c.binary = c.drv->stream_chunks != NULL;
    for (size_t i = 0; i < c.n_cols; i++)
        c.binary = c.binary && c.cols[i].bin_sel;
    int64_t latest = -1;
    rc = st_delta_latest_version(c.table_path, &latest, err);
    if (rc == ST_OK && latest >= 0)
        rc = st_delta_snapshot_load(eng, c.table_path, -1, &snap, err);
    rc = rc ? rc : x_state_get_table(state, src->name, t->name, &wm, &hstate, err);
    if (rc)
        goto fail;
    /* An unfinished attempt with the same plan is resumed, unless the lake
     * shows its commit landed (crash between commit and bookkeeping). */
    rc = x_state_open_run(state, src->name, t->name, &c.run, err);
    if (rc)
        goto fail;
    if (c.run && snap) {
        for (size_t i = 0; i < snap->n_txns; i++) {
            if (!strcmp(snap->txns[i].app_id, c.app_id) && snap->txns[i].version >= c.run->id) {
                char *sp = NULL;
                if (!strcmp(c.run->strategy, "hashdiff"))
                    sp = st_sprintf("%s/_system/extract/%s/state-%lld.parquet", p->lake,
                                    t->target, (long long)c.run->id);
                x_state_set_table(state, src->name, t->name, c.run->wm_hi ? c.run->wm_hi : wm,
                                  sp ? sp : hstate, c.run->id, NULL);
                x_state_finish_run(state, c.run->id, "committed", 0, 0, 0, 0, NULL,
                                   snap->txns[i].version, NULL, NULL);
                st_free(sp);
                st_free(wm);
                st_free(hstate);
                x_state_get_table(state, src->name, t->name, &wm, &hstate, NULL);
                x_run_free(c.run);
                c.run = NULL;
                break;
            }
        }
    }
    const char *sname = c.range ? "range" : x_strategy_name(c.strategy);
    if (o->full && t->strategy == X_HASHDIFF)
        sname = "hashdiff-snapshot";
    if (c.run && (strcmp(c.run->strategy, sname) || c.range)) {
        x_run_free(c.run);
        c.run = NULL;
    }
    if (!c.run) {
        const char *lo = c.strategy == X_INCREMENTAL && !o->full ? wm : NULL;
        rc = plan_chunks(&c, conn, lo, &new_hi, &preds, &n_preds, err);
        rc = rc ? rc : x_state_new_run(state, src->name, t->name, sname, lo, new_hi, preds,
                                       n_preds, &c.run, err);
        if (rc)
            goto fail;
    } else {
        for (size_t i = 0; i < c.run->n_chunks; i++)
            res->n_chunks_resumed += c.run->chunks[i].done;
        st_info("%s: resuming run %lld (%d of %zu chunks already done)", t->target,
                (long long)c.run->id, res->n_chunks_resumed, c.run->n_chunks);
    }
    res->run_id = c.run->id;
    res->n_chunks = (int)c.run->n_chunks;
    c.batch_id = st_sprintf("%s.%s#%lld", src->name, t->name, (long long)c.run->id);
    rc = plan_schema(&c, eng, snap, err);
    if (rc)
        goto fail;
    st_buf sl;
    st_buf_init(&sl, 0);
    for (size_t i = 0; i < c.n_cols; i++)
        st_buf_printf(&sl, "%s%s", i ? ", " : "", c.binary ? c.cols[i].bin_sel : c.cols[i].sel);
    c.select_list = st_buf_take(&sl);
    if (o->to_dir)
        c.stage_dir = st_sprintf("%s/%s", o->to_dir, t->target);
    else if (c.strategy == X_HASHDIFF)
        c.stage_dir = st_sprintf("%s/_system/extract/%s/run-%lld", p->lake, t->target,
                                 (long long)c.run->id);
    else
        c.stage_dir = st_strdup(c.table_path);
    rc = st_mkdirs(c.stage_dir, err);
    if (rc)
        goto fail;
    /* spills (beyond the 256 MB per worker) go next to the output, not to
     * the working directory */
    c.spill_dir = o->to_dir ? st_sprintf("%s/.tmp", o->to_dir)
                            : st_sprintf("%s/_system/tmp", p->lake);
    c.drv->close(conn);
    conn = NULL;

    /* extract the chunks */
    int nw = src->parallel;
    worker *ws = st_calloc((size_t)nw + 1, sizeof *ws);
    pthread_t *th = st_calloc((size_t)nw + 1, sizeof *th);
    for (int i = 0; i < nw; i++) {
        ws[i].c = &c;
        if (nw == 1)
            worker_main(&ws[i]);
        else
            pthread_create(&th[i], NULL, worker_main, &ws[i]);
    }
    for (int i = 0; nw > 1 && i < nw; i++)
        pthread_join(th[i], NULL);
    st_free(ws);
    st_free(th);
    res->rows_read = c.rows_read;
    if (c.failed) {
        rc = c.first_rc;
        if (err)
            *err = c.first_err;
        goto fail;
    }
    rc = gather_files(&c, &files, &n_files, err);
    if (rc)
        goto fail;
    int64_t total_rows = 0;
    for (size_t i = 0; i < c.run->n_chunks; i++)
        total_rows += c.run->chunks[i].rows;
    if (o->to_dir) {
        rc = write_manifest(&c, files, n_files, err);
        if (rc)
            goto fail;
        res->rows_written = total_rows;
        for (size_t i = 0; i < n_files; i++)
            res->bytes += files[i].size;
        x_state_finish_run(state, c.run->id, "exported", c.rows_read, total_rows, res->bytes,
                           (st_mono_ns() - t0) / 1000000, NULL, -1, NULL, NULL);
        goto done;
    }

    /* raw first: its commit is idempotent per run, so a run that fails
     * between the two commits lands in raw once and in bronze on resume */
    if (c.strategy == X_HASHDIFF) {
        /* raw keeps the full staged snapshot (with _hash), not the change set */
        st_delta_schema *hs = st_delta_schema_copy(c.schema);
        for (size_t i = 0; hs && i < hs->n_fields; i++) {
            if (!strcmp(hs->fields[i].name, "_op")) {
                st_free(hs->fields[i].name);
                hs->fields[i].name = st_strdup("_hash");
            }
        }
        rc = hs ? x_raw_land(eng, p, src, t, c.run->id, hs, c.stage_dir, files, n_files, false, err)
                : st_fail(err, ST_ERR_NOMEM, "raw schema");
        st_delta_schema_free(hs);
    } else {
        rc = x_raw_land(eng, p, src, t, c.run->id, c.schema, c.stage_dir, files, n_files,
                        t->n_partition_by > 0, err);
    }
    if (rc)
        goto fail;

    /* land */
    x_land l;
    memset(&l, 0, sizeof l);
    l.table_path = c.table_path;
    l.app_id = c.app_id;
    l.run_id = c.run->id;
    l.batch_id = c.batch_id;
    l.schema = c.schema;
    l.partition_by = (const char *const *)t->partition_by;
    l.n_partition_by = t->n_partition_by;
    l.key = t->key;
    l.n_key = t->n_key;
    l.files = files;
    l.n_files = n_files;
    char *cond = NULL, *keys_sql = NULL;
    if (c.strategy == X_HASHDIFF) {
        bool snapshot = o->full;
        new_state = st_sprintf("%s/_system/extract/%s/state-%lld.parquet", p->lake, t->target,
                               (long long)c.run->id);
        rc = hashdiff(&c, eng, files, n_files, snapshot ? NULL : hstate, snapshot, new_state,
                      &chg, &n_chg, err);
        if (rc)
            goto fail;
        l.files = chg;
        l.n_files = n_chg;
        l.replace_all = snapshot;
    } else if (c.range) {
        const x_col *cur = find_col(&c, t->cursor);
        st_buf b;
        st_buf_init(&b, 0);
        st_buf_puts(&b, "t.");
        st_buf_sql_ident(&b, cur->name);
        st_buf_printf(&b, " >= CAST(");
        st_buf_sql_str(&b, o->range_from);
        st_buf_printf(&b, " AS %s) AND t.", cur->duck_type);
        st_buf_sql_ident(&b, cur->name);
        st_buf_printf(&b, " < CAST(");
        st_buf_sql_str(&b, o->range_to);
        st_buf_printf(&b, " AS %s)", cur->duck_type);
        cond = st_buf_take(&b);
        l.delete_cond = cond;
    } else if (c.strategy == X_FULL) {
        l.replace_all = true;
    } else if (t->n_key) {
        st_buf b, k;
        st_buf_init(&b, 0);
        st_buf_init(&k, 0);
        key_list(&k, t, NULL);
        st_buf_printf(&b, "SELECT DISTINCT %s FROM read_parquet(", k.data);
        list_sql(&b, files, n_files);
        st_buf_puts(&b, ")");
        keys_sql = st_buf_take(&b);
        st_buf_free(&k);
        l.keys_sql = n_files ? keys_sql : NULL;
    }
    st_delta_result dr;
    rc = x_land_commit(eng, &l, &dr, err);
    st_free(cond);
    st_free(keys_sql);
    if (rc)
        goto fail;
    res->version = dr.version;
    res->rows_written = c.strategy == X_HASHDIFF ? 0 : total_rows;
    for (size_t i = 0; i < l.n_files; i++) {
        res->bytes += l.files[i].size;
        if (c.strategy == X_HASHDIFF)
            res->rows_written += l.files[i].rows;
    }
    res->bytes += dr.bytes_added > res->bytes ? dr.bytes_added - res->bytes : 0;
    const char *new_wm = c.run->wm_hi ? c.run->wm_hi : wm;
    if (c.range)
        new_wm = wm;
    rc = x_state_set_table(state, src->name, t->name, new_wm,
                           new_state ? new_state : hstate, c.run->id, err);
    char *sj = st_delta_schema_to_json(c.schema);
    rc = rc ? rc : x_state_finish_run(state, c.run->id, "committed", c.rows_read,
                                      res->rows_written, res->bytes,
                                      (st_mono_ns() - t0) / 1000000, sj, dr.version, NULL, err);
    st_free(sj);
    if (rc)
        goto fail;
    if (c.strategy == X_HASHDIFF) {
        /* staged rows and the superseded state are no longer needed */
        st_rmtree(c.stage_dir, NULL);
        if (hstate && new_state && strcmp(hstate, new_state))
            unlink(hstate);
    }
done:
    res->duration_ms = (st_mono_ns() - t0) / 1000000;
    rc = ST_OK;
    goto out;
fail:
    res->duration_ms = (st_mono_ns() - t0) / 1000000;
    if (c.run)
        x_state_finish_run(state, c.run->id, "failed", c.rows_read, 0, 0,
                           (st_mono_ns() - t0) / 1000000, NULL, -1, err ? err->msg : "error",
                           NULL);
out:
    if (conn)
        c.drv->close(conn);
    st_parquet_files_free(files, n_files);
    st_parquet_files_free(chg, n_chg);
    for (size_t i = 0; i < n_preds; i++)
        st_free(preds[i]);
    st_free(preds);
    st_free(wm);
    st_free(hstate);
    st_free(new_hi);
    st_free(new_state);
    st_delta_snapshot_free(snap);
    st_engine_close(eng);
    tctx_clear(&c);
    return rc;
}

static st_rc write_manifest(tctx *c, const st_parquet_file *files, size_t n, st_err *err)
{
    x_manifest m = {.dir = c->stage_dir, .source = c->src->name, .table = c->t->name,
                    .target = c->t->target,
                    .strategy = c->range ? "range" : x_strategy_name(c->strategy),
                    .run_id = c->run->id, .watermark = c->run->wm_hi,
                    .key = (const char *const *)c->t->key, .n_key = c->t->n_key,
                    .schema = c->schema, .files = files, .n_files = n};
    return x_write_manifest(&m, err);
}

st_rc x_write_manifest(const x_manifest *mf, st_err *err)
{
    const st_parquet_file *files = mf->files;
    size_t n = mf->n_files;
    char *fj = x_files_to_json(files, n);
    char *sj = st_delta_schema_to_json(mf->schema);
    st_buf m;
    st_buf_init(&m, 0);
    st_buf_puts(&m, "{\"format\":\"strata-extract-manifest/1\",\"source\":");
    st_buf_json_str(&m, mf->source);
    st_buf_puts(&m, ",\"table\":");
    st_buf_json_str(&m, mf->table);
    st_buf_puts(&m, ",\"target\":");
    st_buf_json_str(&m, mf->target);
    st_buf_puts(&m, ",\"strategy\":");
    st_buf_json_str(&m, mf->strategy);
    st_buf_printf(&m, ",\"run_id\":%lld,\"watermark\":", (long long)mf->run_id);
    if (mf->watermark)
        st_buf_json_str(&m, mf->watermark);
    else
        st_buf_puts(&m, "null");
    st_buf_puts(&m, ",\"key\":[");
    for (size_t i = 0; i < mf->n_key; i++) {
        if (i)
            st_buf_putc(&m, ',');
        st_buf_json_str(&m, mf->key[i]);
    }
    st_buf_puts(&m, "],\"schema\":");
    st_buf_puts(&m, sj ? sj : "null");
    st_buf_puts(&m, ",\"files\":[");
    /* per file: name relative to the manifest, rows, size, xxh64 of the bytes */
    for (size_t i = 0; i < n; i++) {
        char *data = NULL;
        size_t len = 0;
        st_rc rc = st_file_read(files[i].path, (size_t)1 << 34, &data, &len, err);
        if (rc) {
            st_free(fj);
            st_free(sj);
            st_buf_free(&m);
            return rc;
        }
        uint64_t h = st_hash64(data, len);
        st_free(data);
        const char *base = strrchr(files[i].path, '/');
        st_buf_printf(&m, "%s{\"file\":", i ? "," : "");
        st_buf_json_str(&m, base ? base + 1 : files[i].path);
        st_buf_printf(&m, ",\"rows\":%lld,\"size\":%lld,\"hash64\":\"%016llx\"}",
                      (long long)files[i].rows, (long long)files[i].size, (unsigned long long)h);
    }
    st_buf_puts(&m, "],\"stats\":");
    st_buf_puts(&m, fj ? fj : "[]");
    st_buf_puts(&m, "}\n");
    char *path = st_sprintf("%s/manifest.json", mf->dir);
    st_rc rc = st_file_write_atomic(path, m.data, m.len, err);
    st_free(path);
    st_free(fj);
    st_free(sj);
    st_buf_free(&m);
    return rc;
}

/* ---------------------------------------------------------------- entry */

static void result_init(st_extract_result *r, const x_source_cfg *s, const x_table_cfg *t,
                        x_strategy strat)
{
    memset(r, 0, sizeof *r);
    r->source = st_strdup(s->name);
    r->table = st_strdup(t->name);
    r->target = st_sprintf("bronze.%s", t->target);
    r->strategy = st_strdup(x_strategy_name(strat));
    r->version = -1;
}

void st_extract_report_free(st_extract_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_tables; i++) {
        st_extract_result *t = &r->tables[i];
        st_free(t->source);
        st_free(t->table);
        st_free(t->target);
        st_free(t->strategy);
        st_free(t->error);
    }
    st_free(r->tables);
    st_free(r);
}

static st_extract_result *report_add(st_extract_report *r)
{
    st_extract_result *n = st_realloc(r->tables, (r->n_tables + 1) * sizeof *n);
    if (!n)
        return NULL;
    r->tables = n;
    return &r->tables[r->n_tables++];
}

/* Expands `schemas:` patterns into table entries (once per run). */
static st_rc expand_schemas(x_source_cfg *s, st_err *err)
{
    if (!s->n_include_schemas || s->kind >= X_ECB)
        return ST_OK;
    const x_driver *d = driver_of(s);
    x_conn *conn = NULL;
    st_rc rc = d->connect(s, &conn, err);
    for (size_t i = 0; rc == ST_OK && i < s->n_include_schemas; i++) {
        char **names = NULL;
        size_t n = 0;
        rc = d->list_tables(conn, s->include_schemas[i], &names, &n, err);
        for (size_t k = 0; rc == ST_OK && k < n; k++) {
            bool skip = false;
            for (size_t e = 0; e < s->n_exclude; e++)
                skip = skip || fnmatch(s->exclude[e], names[k], 0) == 0;
            for (size_t e = 0; e < s->n_tables; e++)
                skip = skip || !strcmp(s->tables[e].name, names[k]);
            if (skip)
                continue;
            x_table_cfg *nt = st_realloc(s->tables, (s->n_tables + 1) * sizeof *nt);
            s->tables = nt;
            x_table_cfg *t = &s->tables[s->n_tables++];
            memset(t, 0, sizeof *t);
            const char *dot = strchr(names[k], '.');
            t->name = st_strdup(names[k]);
            t->schema = st_strndup(names[k], (size_t)(dot - names[k]));
            t->table = st_strdup(dot + 1);
            t->target = st_sprintf("%s__%s__%s", s->name, t->schema, t->table);
            t->strategy = X_FULL;
            t->chunks = 1;
        }
        for (size_t k = 0; k < n; k++)
            st_free(names[k]);
        st_free(names);
    }
    d->close(conn);
    s->n_include_schemas = 0;
    return rc;
}

st_rc st_extract_run(const st_extract_opts *o, const char *selector, st_extract_report **out,
                     st_err *err)
{
    st_extract_opts def = {0};
    if (!o)
        o = &def;
    x_project *p = NULL;
    st_state *state = NULL;
    st_rc rc = x_project_load(o, &p, err);
    if (rc)
        return rc;
    if ((o->range_from != NULL) != (o->range_to != NULL)) {
        x_project_free(p);
        return st_fail(err, ST_ERR_INVALID, "--from and --to go together");
    }
    char *sel_src = selector ? st_strdup(selector) : NULL;
    char *sel_tab = sel_src ? strchr(sel_src, '.') : NULL;
    if (sel_tab)
        *sel_tab++ = '\0';
    bool found = !sel_src;
    for (size_t i = 0; i < p->n_sources; i++)
        found = found || !strcmp(p->sources[i].name, sel_src);
    if (!found) {
        rc = st_fail(err, ST_ERR_NOTFOUND, "no source named %s in strata.yml", sel_src);
        goto fail;
    }
    rc = st_mkdirs(p->lake, err);
    rc = rc ? rc : st_state_open(p->state_path, &state, err);
    rc = rc ? rc : x_state_init(state, err);
    if (rc)
        goto fail;
    st_extract_report *rep = st_calloc(1, sizeof *rep);
    st_rc first = ST_OK;
    for (size_t i = 0; i < p->n_sources; i++) {
        x_source_cfg *s = &p->sources[i];
        if (sel_src && strcmp(s->name, sel_src))
            continue;
        st_err e;
        st_err_clear(&e);
        if (expand_schemas(s, &e) != ST_OK) {
            st_error("source %s: %s", s->name, e.msg);
            st_extract_result *r = report_add(rep);
            memset(r, 0, sizeof *r);
            r->source = st_strdup(s->name);
            r->table = st_strdup("*");
            r->target = st_strdup("-");
            r->strategy = st_strdup("-");
            r->rc = e.code ? e.code : ST_ERR_REMOTE;
            r->error = st_strdup(e.msg);
            r->version = -1;
            rep->n_failed++;
            if (!first) {
                first = r->rc;
                if (err)
                    *err = e;
            }
            continue;
        }
        bool any = false;
        for (size_t k = 0; k < s->n_tables; k++) {
            const x_table_cfg *t = &s->tables[k];
            if (sel_tab && strcmp(t->name, sel_tab) && strcmp(t->table, sel_tab))
                continue;
            any = true;
            st_extract_result *r = report_add(rep);
            result_init(r, s, t, o->full ? X_FULL : t->strategy);
            st_err_clear(&e);
            st_rc trc = s->kind >= X_ECB ? x_http_run_table(p, s, t, o, state, r, &e)
                                         : run_db_table(p, s, t, o, state, r, &e);
            r->rc = trc;
            if (trc) {
                st_err_ctx(&e, "%s.%s", s->name, t->name);
                r->error = st_strdup(e.msg);
                rep->n_failed++;
                st_error("%s", e.msg);
                if (!first) {
                    first = trc;
                    if (err)
                        *err = e;
                }
            }
        }
        if (sel_tab && !any && !first) {
            first = st_fail(err, ST_ERR_NOTFOUND, "source %s has no table %s", s->name, sel_tab);
        }
    }
    *out = rep;
    rc = first;
fail:
    st_free(sel_src);
    st_state_close(state);
    x_project_free(p);
    return rc;
}
