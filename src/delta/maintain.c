/*
 * maintain.c - table maintenance: st_delta_optimize (bin-packing of small
 * files per partition, optionally sorted by the zorder_by columns with a
 * plain multi-column sort, committed with dataChange=false) and
 * st_delta_vacuum (deletes unreferenced data files older than the
 * retention).  Commits go through txn.c; rows are rewritten by DuckDB.
 */
#include "delta/write_int.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Partition key of a file: its partition values joined, for grouping. */
static char *part_key(const st_delta_file *f)
{
    st_buf b;
    st_buf_init(&b, 0);
    st_rc rc = st_buf_puts(&b, "");
    for (size_t i = 0; rc == ST_OK && i < f->n_part; i++)
        rc = st_buf_printf(&b, "%s=%s%c", f->part[i].key, f->part[i].value ? f->part[i].value : "\x01", 0x1f);
    if (rc) {
        st_buf_free(&b);
        return NULL;
    }
    return st_buf_take(&b);
}

/* Rewrites one bin of files into new files; adds/removes with dataChange=false. */
static st_rc compact_bin(st_engine *eng, st_delta_txn *t, st_delta_file **bin, size_t n,
                         const st_delta_optimize_opts *o, st_delta_result *res, st_err *err)
{
    const st_delta_snapshot *s = st_delta_txn_snapshot(t);
    char *scan = NULL;
    st_buf sql;
    st_buf_init(&sql, 0);
    st_parquet_file *files = NULL;
    size_t n_files = 0;
    st_rc rc = st_deltaw_files_sql(eng, s, bin, n, &scan, err);
    rc = rc ? rc : st_buf_puts(&sql, "SELECT ");
    rc = rc ? rc : st_deltaw_select_list(s->metadata.schema, st_delta_cm_mode(s), NULL, &sql);
    rc = rc ? rc : st_buf_printf(&sql, " FROM (%s) AS __f", scan);
    for (size_t i = 0; rc == ST_OK && i < o->n_zorder_by; i++) {
        rc = st_buf_puts(&sql, i ? ", " : " ORDER BY ");
        rc = rc ? rc : st_buf_sql_ident(&sql, o->zorder_by[i]);
    }
    rc = rc ? rc : st_deltaw_write_rows(eng, s, sql.data, s->table_path, 0, 0, 0, &files, &n_files, err);
    rc = rc ? rc : st_deltaw_add_written(t, s->metadata.schema, files, n_files, false, NULL, err);
    for (size_t i = 0; rc == ST_OK && i < n; i++)
        rc = st_delta_txn_remove(t, bin[i], false, err);
    if (rc == ST_OK) {
        res->files_removed += (int64_t)n;
        res->files_added += (int64_t)n_files;
        for (size_t i = 0; i < n_files; i++)
            res->bytes_added += files[i].size;
    }
    st_parquet_files_free(files, n_files);
    st_free(scan);
    st_buf_free(&sql);
    return rc;
}

st_rc st_delta_optimize(st_engine *eng, const char *table_path, const st_delta_optimize_opts *o,
                        st_delta_result *res, st_err *err)
{
    st_delta_optimize_opts def = {0};
    if (!o)
        o = &def;
    st_delta_result dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    res->version = -1;
    int64_t target = o->target_size > 0 ? o->target_size : 128LL * 1024 * 1024;
    int64_t min_size = o->min_file_size > 0 ? o->min_file_size : target * 3 / 4;
    st_delta_txn *t = NULL;
    st_delta_file **cand = NULL, **bin = NULL;
    size_t n_cand = 0;
    char **keys = NULL;
    bool *done = NULL;
    st_rc rc = st_delta_txn_begin(eng, table_path, NULL, "OPTIMIZE", &t, err);
    if (rc)
        return rc;
    const st_delta_snapshot *s = st_delta_txn_snapshot(t);
    rc = st_delta_prune(s, o->partition_filter, &cand, &n_cand, err);
    if (rc)
        goto fail;
    keys = st_calloc(n_cand + 1, sizeof *keys);
    done = st_calloc(n_cand + 1, sizeof *done);
    bin = st_calloc(n_cand + 1, sizeof *bin);
    if (!keys || !done || !bin) {
        rc = st_fail(err, ST_ERR_NOMEM, "optimize %s", table_path);
        goto fail;
    }
    for (size_t i = 0; i < n_cand; i++) {
        keys[i] = part_key(cand[i]);
        done[i] = cand[i]->size >= min_size;
    }
    for (size_t i = 0; rc == ST_OK && i < n_cand; i++) {
        if (done[i])
            continue;
        /* greedy bins of about target bytes within one partition */
        size_t n_bin = 0;
        int64_t bytes = 0;
        for (size_t j = i; j < n_cand; j++) {
            if (done[j] || !keys[i] || !keys[j] || strcmp(keys[i], keys[j]))
                continue;
            if (n_bin > 0 && bytes + cand[j]->size > target) {
                if (n_bin >= 2) {
                    rc = compact_bin(eng, t, bin, n_bin, o, res, err);
                    if (rc)
                        break;
                }
                n_bin = 0;
                bytes = 0;
            }
            bin[n_bin++] = cand[j];
            bytes += cand[j]->size;
            done[j] = true;
        }
        /* a single file alone would not reduce the file count */
        if (rc == ST_OK && n_bin >= 2)
            rc = compact_bin(eng, t, bin, n_bin, o, res, err);
    }
    if (rc || res->files_removed == 0)
        goto fail;
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)target);
    rc = st_delta_txn_param(t, "targetSize", num, err);
    st_delta_txn_read_predicate(t, o->partition_filter);
    rc = rc ? rc : st_delta_txn_commit(t, &res->version, err);
    t = NULL;
fail:
    st_delta_txn_abort(t);
    for (size_t i = 0; keys && i < n_cand; i++)
        st_free(keys[i]);
    st_free(keys);
    st_free(done);
    st_free(bin);
    st_free(cand);
    return rc;
}

/* ---------------------------------------------------------------- vacuum */

typedef struct vac {
    const char *root;
    size_t root_len;
    st_map *keep;
    int64_t cutoff_ms;
    bool dry_run;
    char **out;
    size_t n_out, cap_out;
    st_err *err;
} vac;

static st_rc vac_walk(vac *v, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return st_fail_errno(v->err, ST_ERR_IO, "vacuum: opening %s", dir);
    st_rc rc = ST_OK;
    struct dirent *e;
    while (rc == ST_OK && (e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (!strcmp(n, ".") || !strcmp(n, ".."))
            continue;
        /* hidden files and _-prefixed directories belong to the log or to
         * other tools; _change_data holds CDF files we do manage */
        if (n[0] == '.' || (n[0] == '_' && strcmp(n, "_change_data")))
            continue;
        char *p = st_path_join(dir, n);
        if (!p) {
            rc = st_fail(v->err, ST_ERR_NOMEM, "vacuum");
            break;
        }
        struct stat st;
        if (lstat(p, &st) != 0) {
            st_free(p);
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            if (depth < 64)
                rc = vac_walk(v, p, depth + 1);
            if (!v->dry_run)
                rmdir(p);   /* only succeeds when the vacuum emptied it */
        } else if (S_ISREG(st.st_mode) && !st_map_get(v->keep, p)) {
            int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
            if (mt <= v->cutoff_ms) {
                if (v->n_out == v->cap_out) {
                    size_t nc = v->cap_out ? v->cap_out * 2 : 16;
                    char **no = st_realloc(v->out, nc * sizeof *no);
                    if (!no) {
                        st_free(p);
                        rc = st_fail(v->err, ST_ERR_NOMEM, "vacuum");
                        break;
                    }
                    v->out = no;
                    v->cap_out = nc;
                }
                v->out[v->n_out++] = st_strdup(p + v->root_len + 1);
                if (!v->dry_run && unlink(p) != 0)
                    rc = st_fail_errno(v->err, ST_ERR_IO, "vacuum: deleting %s", p);
            }
        }
        st_free(p);
    }
    closedir(d);
    return rc;
}

/* Deletion-vector files referenced by live files or fresh tombstones are
 * kept like data files; unreferenced ones age out with the retention. */
static st_rc keep_dv(st_map *keep, const char *table_path, const st_delta_dv *dv, st_err *err)
{
    if (dv->storage_type == 'i')
        return ST_OK;
    char *p = st_delta_dv_file_path(table_path, dv, err);
    if (!p)
        return err ? err->code : ST_ERR_CORRUPT;
    st_rc rc = st_map_put(keep, p, (void *)1, NULL);
    st_free(p);
    return rc;
}

st_rc st_delta_vacuum(st_engine *eng, const char *table_path, const st_delta_vacuum_opts *o,
                      char ***out_paths, size_t *n_out, st_err *err)
{
    st_delta_vacuum_opts def = {.retention_hours = -1};
    if (!o)
        o = &def;
    st_delta_snapshot *s = NULL;
    st_rc rc = st_delta_snapshot_load(eng, table_path, -1, &s, err);
    if (rc)
        return rc;
    rc = st_deltaw_check_write_protocol(&s->protocol, &s->metadata, table_path, err);
    if (rc) {
        st_delta_snapshot_free(s);
        return rc;
    }
    int64_t table_ms = st_deltaw_interval_ms(
        st_delta_config(s, "delta.deletedFileRetentionDuration", NULL), 168LL * 3600000);
    int64_t keep_ms = o->retention_hours < 0 ? table_ms : (int64_t)(o->retention_hours * 3600000.0);
    if (keep_ms < table_ms && !o->force) {
        st_delta_snapshot_free(s);
        return st_fail(err, ST_ERR_INVALID,
                       "vacuum %s: retention of %.1f hours is shorter than the table's %.1f "
                       "hours (delta.deletedFileRetentionDuration); use force to override",
                       table_path, (double)keep_ms / 3600000.0, (double)table_ms / 3600000.0);
    }
    int64_t cutoff = st_now_ms() - keep_ms;
    vac v = {.root = table_path, .root_len = strlen(table_path), .keep = st_map_new(),
             .cutoff_ms = cutoff, .dry_run = o->dry_run, .err = err};
    if (!v.keep)
        rc = st_fail(err, ST_ERR_NOMEM, "vacuum %s", table_path);
    for (size_t i = 0; rc == ST_OK && i < s->n_files; i++) {
        rc = st_map_put(v.keep, s->files[i]->abs_path, (void *)1, NULL);
        if (rc == ST_OK && s->files[i]->has_dv)
            rc = keep_dv(v.keep, table_path, &s->files[i]->dv, err);
    }
    for (size_t i = 0; rc == ST_OK && i < s->n_tombstones; i++) {
        if (s->tombstones[i]->deletion_timestamp <= cutoff)
            continue;
        rc = st_map_put(v.keep, s->tombstones[i]->abs_path, (void *)1, NULL);
        if (rc == ST_OK && s->tombstones[i]->has_dv)
            rc = keep_dv(v.keep, table_path, &s->tombstones[i]->dv, err);
    }
    rc = rc ? rc : vac_walk(&v, table_path, 0);
    st_map_free(v.keep);
    st_delta_snapshot_free(s);
    if (rc == ST_OK && out_paths) {
        *out_paths = v.out;
        *n_out = v.n_out;
    } else {
        for (size_t i = 0; i < v.n_out; i++)
            st_free(v.out[i]);
        st_free(v.out);
        if (rc == ST_OK && n_out)
            *n_out = v.n_out;
    }
    return rc;
}
