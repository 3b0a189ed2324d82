/*
 * import.c - agent mode, second half: `strata import DIR` reads each
 * <DIR>/<target>/manifest.json written by `strata extract --to-dir`, checks
 * every file (size, xxh64 of the bytes, row count read back by DuckDB) and
 * commits the files to bronze with the manifest's strategy, in one commit
 * per table (app id "extract.<source>.<table>" = the agent's run id, so an
 * import repeated after a crash is a no-op).
 */
#include "extract/extract_int.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static st_rc import_one(st_engine *eng, const x_project *p, const char *mdir,
                        st_extract_result *res, st_err *err)
{
    char *mpath = st_path_join(mdir, "manifest.json");
    char *text = NULL;
    size_t len = 0;
    st_rc rc = st_file_read(mpath, 64 << 20, &text, &len, err);
    st_free(mpath);
    if (rc)
        return rc;
    json_error_t je;
    json_t *m = json_loadb(text, len, 0, &je);
    st_free(text);
    if (!m)
        return st_fail(err, ST_ERR_PARSE, "%s/manifest.json: %s", mdir, je.text);
    const char *source = json_string_value(json_object_get(m, "source"));
    const char *table = json_string_value(json_object_get(m, "table"));
    const char *target = json_string_value(json_object_get(m, "target"));
    const char *strategy = json_string_value(json_object_get(m, "strategy"));
    int64_t run_id = json_integer_value(json_object_get(m, "run_id"));
    char *schema_json = json_dumps(json_object_get(m, "schema"), JSON_COMPACT);
    char *stats_json = json_dumps(json_object_get(m, "stats"), JSON_COMPACT);
    st_delta_schema *schema = NULL;
    st_parquet_file *files = NULL;
    size_t n_files = 0;
    char *table_path = NULL, *app_id = NULL, *keys_sql = NULL;
    char **keys = NULL;
    size_t nk = 0;
    if (!source || !table || !target || !strategy || !schema_json || !stats_json) {
        rc = st_fail(err, ST_ERR_CORRUPT, "%s/manifest.json: missing fields", mdir);
        goto out;
    }
    res->source = st_strdup(source);
    res->table = st_strdup(table);
    res->target = st_sprintf("bronze.%s", target);
    res->strategy = st_strdup(strategy);
    res->run_id = run_id;
    rc = st_delta_schema_parse(schema_json, &schema, err);
    rc = rc ? rc : x_files_from_json(stats_json, &files, &n_files, err);
    if (rc)
        goto out;
    json_t *fl = json_object_get(m, "files");
    if (json_array_size(fl) != n_files) {
        rc = st_fail(err, ST_ERR_CORRUPT, "%s: manifest lists %zu files but %zu stats", mdir,
                     json_array_size(fl), n_files);
        goto out;
    }
    for (size_t i = 0; rc == ST_OK && i < n_files; i++) {
        json_t *e = json_array_get(fl, i);
        const char *name = json_string_value(json_object_get(e, "file"));
        const char *h = json_string_value(json_object_get(e, "hash64"));
        char *path = name ? st_path_join(mdir, name) : NULL;
        char *data = NULL;
        size_t dl = 0;
        rc = path ? st_file_read(path, (size_t)1 << 34, &data, &dl, err)
                  : st_fail(err, ST_ERR_CORRUPT, "%s: file entry %zu has no name", mdir, i);
        char hx[20];
        if (rc == ST_OK) {
            snprintf(hx, sizeof hx, "%016llx", (unsigned long long)st_hash64(data, dl));
            if ((int64_t)dl != json_integer_value(json_object_get(e, "size")) || !h || strcmp(h, hx))
                rc = st_fail(err, ST_ERR_CORRUPT, "%s: size or checksum mismatch (damaged in"
                             " transfer?)", path);
        }
        st_free(data);
        if (rc == ST_OK) {
            st_buf q;
            st_buf_init(&q, 0);
            st_buf_puts(&q, "SELECT count(*) FROM read_parquet(");
            st_buf_sql_str(&q, path);
            st_buf_puts(&q, ")");
            int64_t rows = -1;
            rc = st_engine_query_i64(eng, q.data, &rows, err);
            st_buf_free(&q);
            if (rc == ST_OK && rows != json_integer_value(json_object_get(e, "rows")))
                rc = st_fail(err, ST_ERR_CORRUPT, "%s: %lld rows, manifest says %lld", path,
                             (long long)rows, (long long)json_integer_value(json_object_get(e, "rows")));
        }
        if (rc == ST_OK) {
            st_free(files[i].path);
            files[i].path = path;
            path = NULL;
            res->rows_read += files[i].rows;
            res->bytes += files[i].size;
        }
        st_free(path);
    }
    if (rc)
        goto out;
    table_path = st_sprintf("%s/bronze/%s", p->lake, target);
    app_id = st_sprintf("extract.%s.%s", source, table);
    x_land l;
    memset(&l, 0, sizeof l);
    l.table_path = table_path;
    l.app_id = app_id;
    l.run_id = run_id;
    l.schema = schema;
    l.files = files;
    l.n_files = n_files;
    json_t *ka = json_object_get(m, "key");
    nk = json_array_size(ka);
    keys = st_calloc(nk + 1, sizeof *keys);
    for (size_t i = 0; i < nk; i++)
        keys[i] = (char *)json_string_value(json_array_get(ka, i));
    if (!strcmp(strategy, "incremental") && nk && n_files) {
        st_buf k;
        st_buf_init(&k, 0);
        st_buf_puts(&k, "SELECT DISTINCT ");
        for (size_t i = 0; i < nk; i++) {
            st_buf_puts(&k, i ? ", " : "");
            st_buf_sql_ident(&k, keys[i]);
        }
        st_buf_puts(&k, " FROM read_parquet([");
        for (size_t i = 0; i < n_files; i++) {
            st_buf_puts(&k, i ? ", " : "");
            st_buf_sql_str(&k, files[i].path);
        }
        st_buf_puts(&k, "])");
        keys_sql = st_buf_take(&k);
        l.keys_sql = keys_sql;
        l.key = keys;
        l.n_key = nk;
    } else if (!strcmp(strategy, "full")) {
        l.replace_all = true;
    } else if (strcmp(strategy, "incremental")) {
        rc = st_fail(err, ST_ERR_UNSUPPORTED, "%s: strategy %s cannot be imported (agent mode"
                     " supports full and incremental)", mdir, strategy);
        goto out;
    }
    st_delta_result dr;
    rc = x_land_commit(eng, &l, &dr, err);
    if (rc == ST_OK) {
        res->version = dr.version;
        res->rows_written = res->rows_read;
    }
out:
    st_free(keys);
    st_free(keys_sql);
    st_free(table_path);
    st_free(app_id);
    free(schema_json);
    free(stats_json);
    st_delta_schema_free(schema);
    st_parquet_files_free(files, n_files);
    json_decref(m);
    return rc;
}

st_rc st_extract_import(const st_extract_opts *o, const char *dir, st_extract_report **out,
                        st_err *err)
{
    x_project *p = NULL;
    st_rc rc = x_project_load(o, &p, err);
    if (rc)
        return rc;
    DIR *d = opendir(dir);
    if (!d) {
        x_project_free(p);
        return st_fail_errno(err, ST_ERR_IO, "opening %s", dir);
    }
    st_engine *eng = NULL;
    rc = st_engine_open(NULL, &eng, err);
    st_extract_report *rep = st_calloc(1, sizeof *rep);
    struct dirent *de;
    st_rc first = rc;
    while (rc == ST_OK && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char *sub = st_path_join(dir, de->d_name);
        char *mf = st_path_join(sub, "manifest.json");
        if (st_path_exists(mf)) {
            st_extract_result *nr = st_realloc(rep->tables, (rep->n_tables + 1) * sizeof *nr);
            rep->tables = nr;
            st_extract_result *r = &rep->tables[rep->n_tables++];
            memset(r, 0, sizeof *r);
            r->version = -1;
            st_err e;
            st_err_clear(&e);
            r->rc = import_one(eng, p, sub, r, &e);
            if (!r->target)
                r->target = st_strdup(de->d_name);
            if (r->rc) {
                r->error = st_strdup(e.msg);
                rep->n_failed++;
                if (!first) {
                    first = r->rc;
                    if (err)
                        *err = e;
                }
            }
        }
        st_free(mf);
        st_free(sub);
    }
    closedir(d);
    st_engine_close(eng);
    x_project_free(p);
    *out = rep;
    return first;
}
