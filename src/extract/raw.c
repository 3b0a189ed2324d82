/*
 * raw.c - the raw layer of batch extraction: raw/<source>__<schema>__<table>
 * is a Delta table partitioned by _run_id that receives every run's
 * extracted rows (the Parquet files the run wrote, hard-linked, so the raw
 * copy costs no extra write) in one commit per run; and `strata reprocess`,
 * which rebuilds bronze from the raw partitions of chosen runs in one
 * replacing commit recorded in the state DB.
 */
#include "extract/extract_int.h"
#include "delta/delta_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* link(2), or a copy when the raw dir is on another filesystem. */
static st_rc link_or_copy(const char *from, const char *to, st_err *err)
{
    if (link(from, to) == 0)
        return ST_OK;
    if (errno == EEXIST) {
        /* a retried run: the same file name was linked before */
        unlink(to);
        if (link(from, to) == 0)
            return ST_OK;
    }
    if (errno != EXDEV && errno != EPERM && errno != EMLINK)
        return st_fail_errno(err, ST_ERR_IO, "linking %s to %s", from, to);
    char *data = NULL;
    size_t len = 0;
    st_rc rc = st_file_read(from, (size_t)1 << 40, &data, &len, err);
    rc = rc ? rc : st_file_write_atomic(to, data, len, err);
    st_free(data);
    return rc;
}

st_rc x_raw_land(st_engine *eng, const x_project *p, const x_source_cfg *src,
                 const x_table_cfg *t, int64_t run_id, const st_delta_schema *schema,
                 const char *stage_dir, const st_parquet_file *files, size_t n_files,
                 bool partitioned, st_err *err)
{
    char *raw = st_sprintf("%s/raw/%s", p->lake, t->target);
    char *app = st_sprintf("raw.%s.%s", src->name, t->name);
    char rid[32];
    snprintf(rid, sizeof rid, "%lld", (long long)run_id);
    st_delta_schema *rs = st_delta_schema_copy(schema);
    st_parquet_file *rf = st_calloc(n_files + 1, sizeof *rf);
    size_t n_parts = 1 + (partitioned ? t->n_partition_by : 0);
    const char **pby = st_calloc(n_parts + 1, sizeof *pby);
    st_rc rc = raw && app && rs && rf && pby ? ST_OK : st_fail(err, ST_ERR_NOMEM, "raw layer");
    if (rc)
        goto out;
    pby[0] = "_run_id";
    for (size_t i = 1; i < n_parts; i++)
        pby[i] = t->partition_by[i - 1];
    st_dtype lt = {.kind = ST_DT_LONG};
    st_dfield *nf = st_realloc(rs->fields, (rs->n_fields + 1) * sizeof *nf);
    rs->fields = nf;
    memset(&rs->fields[rs->n_fields], 0, sizeof *nf);
    rs->fields[rs->n_fields].name = st_strdup("_run_id");
    rs->fields[rs->n_fields].type = lt;
    rs->fields[rs->n_fields].nullable = true;
    rs->fields[rs->n_fields].metadata_json = st_strdup("{}");
    rs->n_fields++;
    size_t sl = strlen(stage_dir);
    for (size_t i = 0; rc == ST_OK && i < n_files; i++) {
        const st_parquet_file *f = &files[i];
        /* keep the file's path below the stage dir (its partition dirs) */
        const char *rel = !strncmp(f->path, stage_dir, sl) && f->path[sl] == '/' ? f->path + sl + 1
                                                                                 : strrchr(f->path, '/') + 1;
        char *to = st_sprintf("%s/_run_id=%s/%s", raw, rid, rel);
        char *dir = st_strdup(to);
        *strrchr(dir, '/') = '\0';
        rc = st_mkdirs(dir, err);
        st_free(dir);
        rc = rc ? rc : link_or_copy(f->path, to, err);
        rf[i] = *f;
        rf[i].path = to;
        rf[i].n_parts = n_parts;
        rf[i].part_keys = st_calloc(n_parts + 1, sizeof(char *));
        rf[i].part_values = st_calloc(n_parts + 1, sizeof(char *));
        rf[i].part_keys[0] = "_run_id";
        rf[i].part_values[0] = rid;
        for (size_t k = 1; k < n_parts && k - 1 < f->n_parts; k++) {
            rf[i].part_keys[k] = f->part_keys[k - 1];
            rf[i].part_values[k] = f->part_values[k - 1];
        }
    }
    if (rc == ST_OK) {
        x_land l;
        memset(&l, 0, sizeof l);
        l.table_path = raw;
        l.app_id = app;
        l.run_id = run_id;
        l.schema = rs;
        l.partition_by = pby;
        l.n_partition_by = n_parts;
        l.files = rf;
        l.n_files = n_files;
        st_delta_result dr;
        rc = x_land_commit(eng, &l, &dr, err);
    }
    if (rc)
        st_err_ctx(err, "raw layer of %s", t->target);
out:
    /* rf entries borrow everything but path and the part arrays */
    for (size_t i = 0; rf && i < n_files; i++) {
        st_free(rf[i].path);
        st_free(rf[i].part_keys);
        st_free(rf[i].part_values);
    }
    st_free(rf);
    st_free(pby);
    st_delta_schema_free(rs);
    st_free(raw);
    st_free(app);
    return rc;
}

/* The bronze change log of a hashdiff table rebuilt from raw, which holds
 * each run's full snapshot with its _hash: the first run's rows as 'I',
 * then for each later run its differences from the run before (new key
 * 'I', other hash 'U', key gone 'D' with the key columns only), exactly as
 * the runs computed them against their stored state.  `bs` is the bronze
 * schema (raw's _hash already renamed _op). */
static char *hashdiff_log_sql(const char *scan, const st_delta_schema *bs,
                              const x_source_cfg *src, const x_table_cfg *t, const int64_t *runs,
                              size_t n)
{
    st_buf q, cols, ncols, keys, okeys;
    st_buf_init(&q, 0);
    st_buf_init(&cols, 0);
    st_buf_init(&ncols, 0);
    st_buf_init(&keys, 0);
    st_buf_init(&okeys, 0);
    for (size_t i = 0; i < bs->n_fields; i++) {
        if (!strcmp(bs->fields[i].name, "_op"))
            continue;
        st_buf_puts(&cols, cols.len ? ", " : "");
        st_buf_sql_ident(&cols, bs->fields[i].name);
        st_buf_puts(&ncols, ncols.len ? ", n." : "n.");
        st_buf_sql_ident(&ncols, bs->fields[i].name);
    }
    for (size_t i = 0; i < t->n_key; i++) {
        st_buf_puts(&keys, i ? ", " : "");
        st_buf_sql_ident(&keys, t->key[i]);
        st_buf_puts(&okeys, i ? ", o." : "o.");
        st_buf_sql_ident(&okeys, t->key[i]);
    }
    st_buf_printf(&q, "WITH r AS (%s) SELECT ", scan);
    for (size_t i = 0; i < bs->n_fields; i++) {
        char *ts = st_delta_type_sql(&bs->fields[i].type);
        st_buf_printf(&q, "%sCAST(", i ? ", " : "");
        st_buf_sql_ident(&q, bs->fields[i].name);
        st_buf_printf(&q, " AS %s) AS ", ts);
        st_buf_sql_ident(&q, bs->fields[i].name);
        st_free(ts);
    }
    st_buf_printf(&q, " FROM (SELECT %s, 'I' AS _op FROM r WHERE _run_id = %lld", cols.data,
                  (long long)runs[0]);
    for (size_t i = 1; i < n; i++) {
        long long cur = (long long)runs[i], prev = (long long)runs[i - 1];
        st_buf_printf(&q, " UNION ALL BY NAME SELECT %s, CASE WHEN o._hash IS NULL THEN 'I'"
                          " ELSE 'U' END AS _op FROM (SELECT * FROM r WHERE _run_id = %lld) n"
                          " LEFT JOIN (SELECT %s, _hash FROM r WHERE _run_id = %lld) o USING (%s)"
                          " WHERE o._hash IS DISTINCT FROM n._hash",
                      ncols.data, cur, keys.data, prev, keys.data);
        st_buf_printf(&q, " UNION ALL BY NAME SELECT %s, 'D' AS _op, '%s.%s#%lld' AS _batch_id,"
                          " (SELECT max(_loaded_at) FROM r WHERE _run_id = %lld) AS _loaded_at"
                          " FROM (SELECT %s FROM r WHERE _run_id = %lld) o ANTI JOIN"
                          " (SELECT %s FROM r WHERE _run_id = %lld) n USING (%s)",
                      okeys.data, src->name, t->name, cur, cur, keys.data, prev, keys.data, cur,
                      keys.data);
    }
    st_buf_puts(&q, ")");
    st_buf_free(&cols);
    st_buf_free(&ncols);
    st_buf_free(&keys);
    st_buf_free(&okeys);
    return st_buf_take(&q);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

st_rc st_extract_reprocess(const st_extract_opts *o, const char *selector, const int64_t *runs_in,
                           size_t n_runs_in, st_extract_report **out, st_err *err)
{
    st_extract_opts def = {0};
    if (!o)
        o = &def;
    *out = NULL;
    x_project *p = NULL;
    st_state *state = NULL;
    st_engine *eng = NULL;
    st_delta_snapshot *snap = NULL;
    st_delta_schema *bs = NULL;
    st_parquet_file *files = NULL;
    size_t n_files = 0;
    int64_t *runs = NULL;
    size_t n_runs = 0;
    char *sel = st_strdup(selector ? selector : ""), *raw = NULL, *bronze = NULL, *app = NULL;
    char *scan = NULL, *sql = NULL, *batch = NULL;
    x_run *run = NULL;
    int64_t t0 = st_mono_ns();
    st_extract_report *rep = st_calloc(1, sizeof *rep);
    st_extract_result *res = st_calloc(1, sizeof *res);
    rep->tables = res;
    rep->n_tables = 1;
    res->version = -1;
    st_rc rc = x_project_load(o, &p, err);
    if (rc)
        goto done;
    char *dot = strchr(sel, '.');
    if (!dot) {
        rc = st_fail(err, ST_ERR_INVALID, "reprocess: expected SOURCE.TABLE, got '%s'", sel);
        goto done;
    }
    *dot = '\0';
    const x_source_cfg *src = NULL;
    const x_table_cfg *t = NULL;
    for (size_t i = 0; i < p->n_sources; i++)
        if (!strcmp(p->sources[i].name, sel))
            src = &p->sources[i];
    for (size_t i = 0; src && i < src->n_tables; i++)
        if (!strcmp(src->tables[i].name, dot + 1) || !strcmp(src->tables[i].table, dot + 1))
            t = &src->tables[i];
    if (!t) {
        rc = st_fail(err, ST_ERR_NOTFOUND, "reprocess: no table %s in source %s of strata.yml",
                     dot + 1, sel);
        goto done;
    }
    res->source = st_strdup(src->name);
    res->table = st_strdup(t->name);
    res->target = st_sprintf("bronze.%s", t->target);
    res->strategy = st_strdup("reprocess");
    raw = st_sprintf("%s/raw/%s", p->lake, t->target);
    bronze = st_sprintf("%s/bronze/%s", p->lake, t->target);
    int64_t v = -1;
    rc = st_delta_latest_version(raw, &v, err);
    if (rc == ST_OK && v < 0)
        rc = st_fail(err, ST_ERR_NOTFOUND, "reprocess: %s has no raw table (%s)", t->name, raw);
    rc = rc ? rc : st_engine_open(NULL, &eng, err);
    rc = rc ? rc : st_delta_snapshot_load(eng, raw, -1, &snap, err);
    rc = rc ? rc : st_delta_scan_sql(eng, snap, NULL, &scan, err);
    rc = rc ? rc : st_state_open(p->state_path, &state, err);
    rc = rc ? rc : x_state_init(state, err);
    if (rc)
        goto done;
    /* the runs: given, or every run raw holds */
    if (n_runs_in) {
        runs = st_calloc(n_runs_in, sizeof *runs);
        memcpy(runs, runs_in, n_runs_in * sizeof *runs);
        n_runs = n_runs_in;
    } else {
        char *q = st_sprintf("SELECT string_agg(DISTINCT CAST(_run_id AS VARCHAR), ',') FROM (%s)", scan);
        char *list = NULL;
        rc = st_engine_query_str(eng, q, &list, err);
        st_free(q);
        for (char *s = list; rc == ST_OK && s && *s;) {
            runs = st_realloc(runs, (n_runs + 1) * sizeof *runs);
            runs[n_runs++] = strtoll(s, &s, 10);
            if (*s == ',')
                s++;
        }
        st_free(list);
    }
    if (rc)
        goto done;
    qsort(runs, n_runs, sizeof *runs, cmp_i64);
    /* a full run replaces everything before it; incremental runs after it
     * replace rows by key (latest run wins) */
    size_t from = 0;
    bool merge = false;
    for (size_t i = 0; rc == ST_OK && i < n_runs; i++) {
        char *q = st_sprintf("SELECT count(*) FROM (%s) WHERE _run_id = %lld", scan, (long long)runs[i]);
        char *cnt = NULL;
        rc = st_engine_query_str(eng, q, &cnt, err);
        st_free(q);
        if (rc == ST_OK && (!cnt || !strcmp(cnt, "0"))) {
            /* an empty partition is possible only for a run that read no rows */
            char *strat = NULL, *status = NULL;
            rc = x_state_run_info(state, runs[i], &strat, &status, err);
            if (rc == ST_OK && strcmp(status, "committed"))
                rc = st_fail(err, ST_ERR_NOTFOUND, "reprocess: run %lld is not in %s (status %s)",
                             (long long)runs[i], raw, status);
            st_free(strat);
            st_free(status);
        }
        st_free(cnt);
        char *strat = NULL, *status = NULL;
        rc = rc ? rc : x_state_run_info(state, runs[i], &strat, &status, err);
        if (rc == ST_OK && (!strcmp(strat, "full") || !strcmp(strat, "hashdiff-snapshot"))) {
            from = i;
            merge = false;
        } else if (rc == ST_OK) {
            merge = merge || t->n_key || src->kind >= X_ECB;
        }
        st_free(strat);
        st_free(status);
    }
    if (rc)
        goto done;
    /* bronze columns = raw columns without _run_id */
    bs = st_delta_schema_copy(snap->metadata.schema);
    st_buf cols, in, keys;
    st_buf_init(&cols, 0);
    st_buf_init(&in, 0);
    st_buf_init(&keys, 0);
    for (size_t i = 0; i < bs->n_fields; i++) {
        if (!strcmp(bs->fields[i].name, "_run_id")) {
            st_free(bs->fields[i].name);
            st_free(bs->fields[i].metadata_json);
            st_free(bs->fields[i].physical_name);
            st_delta_dtype_clear(&bs->fields[i].type);
            memmove(&bs->fields[i], &bs->fields[i + 1], (bs->n_fields - i - 1) * sizeof *bs->fields);
            bs->n_fields--;
            i--;
            continue;
        }
        if (t->strategy == X_HASHDIFF && !strcmp(bs->fields[i].name, "_hash")) {
            st_free(bs->fields[i].name);
            bs->fields[i].name = st_strdup("_op");
        }
        st_buf_puts(&cols, cols.len ? ", " : "");
        st_buf_sql_ident(&cols, bs->fields[i].name);
    }
    for (size_t i = from; i < n_runs; i++)
        st_buf_printf(&in, "%s%lld", i > from ? ", " : "", (long long)runs[i]);
    for (size_t i = 0; i < t->n_key; i++) {
        st_buf_puts(&keys, i ? ", " : "");
        st_buf_sql_ident(&keys, t->key[i]);
    }
    if (src->kind >= X_ECB) {
        /* API tables: the key is the response's dimensions and period, as
         * the incremental runs merged them */
        char **names = st_calloc(bs->n_fields + 1, sizeof *names);
        for (size_t i = 0; names && i < bs->n_fields; i++)
            names[i] = bs->fields[i].name;
        for (size_t i = 0; names && i < bs->n_fields; i++) {
            if (!x_api_is_key(src->kind, names, i))
                continue;
            st_buf_puts(&keys, keys.len ? ", " : "");
            st_buf_sql_ident(&keys, names[i]);
        }
        st_free(names);
    }
    if (t->strategy == X_HASHDIFF) {
        char *spill = st_sprintf("%s/_system/tmp", p->lake);
        rc = st_mkdirs(spill, err);
        rc = rc ? rc : x_hashdiff_limit(eng, spill, err);
        st_free(spill);
        sql = rc ? NULL : hashdiff_log_sql(scan, bs, src, t, runs + from, n_runs - from);
        rc = rc ? rc : sql ? ST_OK : st_fail(err, ST_ERR_NOMEM, "reprocess");
    } else {
        sql = st_sprintf("SELECT %s FROM (%s) WHERE _run_id IN (%s)%s%s%s", cols.data, scan,
                         in.data, merge ? " QUALIFY row_number() OVER (PARTITION BY " : "",
                         merge ? keys.data : "", merge ? " ORDER BY _run_id DESC) = 1" : "");
    }
    st_buf_free(&cols);
    st_buf_free(&keys);
    if (rc) {
        st_buf_free(&in);
        goto done;
    }
    char *preds = "";
    rc = x_state_new_run(state, src->name, t->name, "reprocess", NULL, in.data, &preds, 1, &run,
                         err);
    st_buf_free(&in);
    if (rc)
        goto done;
    res->run_id = run->id;
    res->n_chunks = 1;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "r%lld-reprocess-", (long long)run->id);
    st_parquet_opts po = {0};
    po.file_prefix = prefix;
    po.row_group_size = 122880;   /* bounds the writer's buffer, as in extraction */
    po.partition_by = (const char *const *)t->partition_by;
    po.n_partition_by = t->n_partition_by;
    rc = st_mkdirs(bronze, err);
    rc = rc ? rc : st_engine_write_parquet(eng, sql, bronze, &po, &files, &n_files, err);
    if (rc)
        goto done;
    app = st_sprintf("reprocess.%s.%s", src->name, t->name);
    batch = st_sprintf("%s.%s#%lld", src->name, t->name, (long long)run->id);
    x_land l;
    memset(&l, 0, sizeof l);
    l.table_path = bronze;
    l.app_id = app;
    l.run_id = run->id;
    l.batch_id = batch;
    l.schema = bs;
    l.partition_by = (const char *const *)t->partition_by;
    l.n_partition_by = t->n_partition_by;
    l.replace_all = true;
    l.files = files;
    l.n_files = n_files;
    st_delta_result dr;
    rc = x_land_commit(eng, &l, &dr, err);
    if (rc)
        goto done;
    res->version = dr.version;
    for (size_t i = 0; i < n_files; i++) {
        res->rows_written += files[i].rows;
        res->bytes += files[i].size;
    }
    res->rows_read = res->rows_written;
    char *sj = st_delta_schema_to_json(bs);
    rc = x_state_finish_run(state, run->id, "committed", res->rows_read, res->rows_written,
                            res->bytes, (st_mono_ns() - t0) / 1000000, sj, dr.version, NULL, err);
    st_free(sj);
    st_info("%s: rebuilt from raw runs of %s (%lld rows), version %lld", t->target, raw,
            (long long)res->rows_written, (long long)dr.version);
done:
    res->duration_ms = (st_mono_ns() - t0) / 1000000;
    res->rc = rc;
    if (rc) {
        if (run) {
            /* not 'failed': that status marks extraction runs to resume */
            x_state_finish_run(state, run->id, "reprocess-failed", 0, 0, 0, res->duration_ms,
                               NULL, -1, err ? err->msg : "error", NULL);
            /* files written but not committed are not referenced: remove them */
            for (size_t i = 0; i < n_files && res->version < 0; i++)
                unlink(files[i].path);
        }
        res->error = st_strdup(err ? err->msg : "error");
        rep->n_failed = 1;
    }
    *out = rep;
    st_parquet_files_free(files, n_files);
    st_delta_schema_free(bs);
    st_delta_snapshot_free(snap);
    st_engine_close(eng);
    st_state_close(state);
    x_run_free(run);
    x_project_free(p);
    st_free(runs);
    st_free(sel);
    st_free(raw);
    st_free(bronze);
    st_free(app);
    st_free(scan);
    st_free(sql);
    st_free(batch);
    return rc;
}
