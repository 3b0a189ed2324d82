/*
 * erase.c - `strata erase --subject ID`, the loader's part of erasure:
 * destroys the subject's key in the key store (crypto-shredding every value
 * encrypted for them, in any copy of any file) and deletes the subject's rows
 * from every Delta table under <lake>/raw and <lake>/bronze that has a
 * subject_id column (copy-on-write), and from every silver table with that
 * column, whose history is retired with deletion vectors by st_silver_erase
 * (src/silver) so SCD2 files are not rewritten.  Gold is rebuilt from
 * silver by its next run.
 */
#include "load_int.h"

#include "strata/delta.h"
#include "strata/silver.h"

#include <dirent.h>
#include <string.h>

static st_rc erase_layer(st_engine *eng, const char *lake, const char *layer,
                         const char *pred, int64_t *rows, st_err *err)
{
    char *dir = st_path_join(lake, layer);
    if (!dir)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    DIR *d = opendir(dir);
    st_rc rc = ST_OK;
    struct dirent *e;
    while (d && rc == ST_OK && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *path = st_path_join(dir, e->d_name);
        int64_t v = -1;
        st_delta_snapshot *s = NULL;
        rc = path ? st_delta_latest_version(path, &v, err) : st_fail(err, ST_ERR_NOMEM, "oom");
        if (rc == ST_OK && v >= 0)
            rc = st_delta_snapshot_load(eng, path, -1, &s, err);
        if (rc == ST_OK && s && s->metadata.schema &&
            st_delta_schema_find(s->metadata.schema, "subject_id")) {
            st_delta_result res;
            rc = st_delta_delete(eng, path, pred, &res, err);
            if (rc == ST_OK) {
                *rows += res.rows_deleted;
                if (res.rows_deleted)
                    st_info("erase: %s.%s: %lld rows deleted", layer, e->d_name,
                            (long long)res.rows_deleted);
            } else {
                st_err_ctx(err, "erase: table %s", path);
            }
        }
        st_delta_snapshot_free(s);
        st_free(path);
    }
    if (d)
        closedir(d);
    st_free(dir);
    return rc;
}

static bool has_dv_feature(const st_delta_protocol *p)
{
    for (size_t i = 0; i < p->n_writer_features; i++)
        if (!strcmp(p->writer_features[i], "deletionVectors"))
            return true;
    return false;
}

/* Rows of the table at path matching pred (0 when it has none). */
static st_rc count_matching(st_engine *eng, const st_delta_snapshot *s, const char *pred,
                            int64_t *out, st_err *err)
{
    char *scan = NULL;
    st_rc rc = st_delta_scan_sql(eng, s, NULL, &scan, err);
    char *q = rc ? NULL : st_sprintf("SELECT count(*) FROM (%s) WHERE %s", scan, pred);
    if (rc == ST_OK && !q)
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
    rc = rc ? rc : st_engine_query_i64(eng, q, out, err);
    st_free(q);
    st_free(scan);
    return rc;
}

/* Silver tables with a subject_id column: the subject's rows (every
 * version) get deletion vectors in one commit per table. */
static st_rc erase_silver(st_engine *eng, const char *lake, const char *pred, int64_t *rows,
                          st_err *err)
{
    char *dir = st_path_join(lake, "silver");
    if (!dir)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    DIR *d = opendir(dir);
    st_rc rc = ST_OK;
    struct dirent *e;
    while (d && rc == ST_OK && (e = readdir(d))) {
        if (e->d_name[0] == '.' || e->d_name[0] == '_')
            continue;
        char *path = st_path_join(dir, e->d_name);
        int64_t v = -1, n = 0;
        st_delta_snapshot *s = NULL;
        rc = path ? st_delta_latest_version(path, &v, err) : st_fail(err, ST_ERR_NOMEM, "oom");
        if (rc == ST_OK && v >= 0)
            rc = st_delta_snapshot_load(eng, path, -1, &s, err);
        bool has_col = rc == ST_OK && s && s->metadata.schema &&
                       st_delta_schema_find(s->metadata.schema, "subject_id");
        if (has_col)
            rc = count_matching(eng, s, pred, &n, err);
        /* tables made before DVs were enabled (facts, quarantine) get the
         * protocol upgrade first, only when there is something to erase */
        if (rc == ST_OK && n > 0 && !has_dv_feature(&s->protocol))
            rc = st_delta_dv_enable(eng, path, err);
        if (rc == ST_OK && n > 0) {
            st_silver_stats st;
            rc = st_silver_erase(eng, path, pred, &st, err);
            if (rc == ST_OK) {
                *rows += st.rows_deleted;
                st_info("erase: silver.%s: %lld rows retired", e->d_name,
                        (long long)st.rows_deleted);
            }
        }
        if (rc)
            st_err_ctx(err, "erase: table %s", path);
        st_delta_snapshot_free(s);
        st_free(path);
    }
    if (d)
        closedir(d);
    st_free(dir);
    return rc;
}

st_rc st_load_erase(const st_loader_cfg *cfg, const char *subject, int64_t *out_rows, st_err *err)
{
    if (!subject || !*subject)
        return st_fail(err, ST_ERR_INVALID, "erase: empty subject id");
    st_state *state = NULL;
    st_keystore *ks = NULL;
    st_engine *eng = NULL;
    st_buf pred;
    st_buf_init(&pred, 0);
    int64_t rows = 0;
    /* destroying a key needs no master key: it only removes the wrapped copy */
    uint8_t mk[32] = {0};
    st_rc rc = st_state_open(cfg->state_path, &state, err);
    rc = rc ? rc : st_keystore_open(state, mk, &ks, err);
    bool found = false;
    rc = rc ? rc : st_keystore_destroy(ks, subject, &found, err);
    if (rc)
        goto out;
    st_info("erase: subject '%s': %s", subject,
            found ? "key destroyed" : "no key was stored (nothing encrypted for them)");
    rc = st_engine_open(NULL, &eng, err);
    rc = rc ? rc : st_buf_puts(&pred, "subject_id = ");
    rc = rc ? rc : st_buf_sql_str(&pred, subject);
    rc = rc ? rc : erase_layer(eng, cfg->lake, "bronze", pred.data, &rows, err);
    rc = rc ? rc : erase_layer(eng, cfg->lake, "raw", pred.data, &rows, err);
    rc = rc ? rc : erase_silver(eng, cfg->lake, pred.data, &rows, err);
    if (rc == ST_OK && out_rows)
        *out_rows = rows;
out:
    st_buf_free(&pred);
    st_engine_close(eng);
    st_keystore_close(ks);
    st_state_close(state);
    return rc;
}
