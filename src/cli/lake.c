/*
 * lake.c - lake discovery, view mounting and result printing for the CLI.
 */
#include "lake.h"

#include "cli.h"

#include "strata/delta.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cli_parse_format(const char *s, cli_format *out)
{
    if (!strcmp(s, "table"))
        *out = CLI_FMT_TABLE;
    else if (!strcmp(s, "csv"))
        *out = CLI_FMT_CSV;
    else if (!strcmp(s, "json"))
        *out = CLI_FMT_JSON;
    else
        return -1;
    return 0;
}

st_rc cli_mount_table(st_engine *eng, const char *name, const char *path, int64_t version,
                      st_err *err)
{
    st_delta_snapshot *snap = NULL;
    char *scan = NULL;
    char *sql = NULL;
    st_rc rc = st_delta_snapshot_load(eng, path, version, &snap, err);
    if (rc == ST_OK)
        rc = st_delta_scan_sql(eng, snap, NULL, &scan, err);
    if (rc == ST_OK) {
        /* name is already quoted (and possibly schema-qualified) by the caller */
        sql = st_sprintf("CREATE OR REPLACE VIEW %s AS %s", name, scan);
        rc = sql ? st_engine_exec(eng, sql, err) : st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    st_free(sql);
    st_free(scan);
    st_delta_snapshot_free(snap);
    if (rc)
        st_err_ctx(err, "table %s (%s)", name, path);
    return rc;
}

static bool valid_ident(const char *s)
{
    if (!*s)
        return false;
    for (const char *p = s; *p; p++)
        if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

st_rc cli_mount_lake(st_engine *eng, const char *lake, st_err *err)
{
    DIR *d = opendir(lake);
    if (!d)
        return st_fail_errno(err, ST_ERR_NOTFOUND, "lake %s", lake);
    st_rc rc = ST_OK;
    struct dirent *layer;
    while (rc == ST_OK && (layer = readdir(d))) {
        if (layer->d_name[0] == '.' || !valid_ident(layer->d_name))
            continue;
        char *ldir = st_path_join(lake, layer->d_name);
        DIR *ld = ldir ? opendir(ldir) : NULL;
        if (!ld) {
            st_free(ldir);
            continue;
        }
        bool schema_made = false;
        struct dirent *t;
        while (rc == ST_OK && (t = readdir(ld))) {
            if (t->d_name[0] == '.' || !valid_ident(t->d_name))
                continue;
            char *tdir = st_path_join(ldir, t->d_name);
            char *log = tdir ? st_path_join(tdir, "_delta_log") : NULL;
            if (log && st_is_dir(log)) {
                if (!schema_made) {
                    rc = st_engine_execf(eng, err, "CREATE SCHEMA IF NOT EXISTS \"%s\"", layer->d_name);
                    schema_made = true;
                }
                char *view = st_sprintf("\"%s\".\"%s\"", layer->d_name, t->d_name);
                if (rc == ST_OK)
                    rc = view ? cli_mount_table(eng, view, tdir, -1, err) : ST_ERR_NOMEM;
                st_free(view);
            }
            st_free(log);
            st_free(tdir);
        }
        closedir(ld);
        st_free(ldir);
    }
    closedir(d);
    return rc;
}

st_rc cli_mount_spec(st_engine *eng, const char *spec, st_err *err)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || !eq[1])
        return st_fail(err, ST_ERR_INVALID, "--table expects NAME=PATH[@VERSION], got '%s'", spec);
    char *name = st_strndup(spec, (size_t)(eq - spec));
    char *path = st_strdup(eq + 1);
    int64_t version = -1;
    st_rc rc = ST_OK;
    char *at = strrchr(path, '@');
    if (at) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(at + 1, &end, 10);
        if (end == at + 1 || *end || v < 0 || errno)
            rc = st_fail(err, ST_ERR_INVALID, "--table %s: bad version '%s'", spec, at + 1);
        version = v;
        *at = '\0';
    }
    if (rc == ST_OK && !valid_ident(name))
        rc = st_fail(err, ST_ERR_INVALID, "--table %s: view name must be [A-Za-z0-9_]+", spec);
    if (rc == ST_OK) {
        char *quoted = st_sprintf("\"%s\"", name);
        rc = cli_mount_table(eng, quoted, path, version, err);
        st_free(quoted);
    }
    st_free(name);
    st_free(path);
    return rc;
}

/* ---- printing ---- */

static void csv_field(FILE *out, const char *s, size_t len)
{
    bool quote = false;
    for (size_t i = 0; i < len && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    if (!quote) {
        fwrite(s, 1, len, out);
        return;
    }
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"')
            fputc('"', out);
        fputc(s[i], out);
    }
    fputc('"', out);
}

struct table_buf {
    char **cells;   /* rows x cols, NULL = NULL value */
    size_t rows, cap;
};

st_rc cli_print_query(st_engine *eng, const char *sql, cli_format fmt, FILE *out, st_err *err)
{
    duckdb_result r;
    st_rc rc = st_engine_query(eng, sql, &r, err);
    if (rc)
        return rc;
    idx_t ncol = duckdb_column_count(&r);
    duckdb_logical_type *types = st_calloc(ncol ? ncol : 1, sizeof *types);
    size_t *width = st_calloc(ncol ? ncol : 1, sizeof *width);
    struct table_buf tb = {0};
    st_buf cell;
    st_buf_init(&cell, 0);
    if (!types || !width) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (idx_t j = 0; j < ncol; j++) {
        types[j] = duckdb_column_logical_type(&r, j);
        width[j] = strlen(duckdb_column_name(&r, j));
    }
    if (fmt == CLI_FMT_CSV) {
        for (idx_t j = 0; j < ncol; j++) {
            if (j)
                fputc(',', out);
            const char *n = duckdb_column_name(&r, j);
            csv_field(out, n, strlen(n));
        }
        fputc('\n', out);
    }
    duckdb_data_chunk chunk;
    while (rc == ST_OK && (chunk = duckdb_fetch_chunk(r)) != NULL) {
        idx_t rows = duckdb_data_chunk_get_size(chunk);
        for (idx_t i = 0; rc == ST_OK && i < rows; i++) {
            if (fmt == CLI_FMT_JSON)
                fputc('{', out);
            for (idx_t j = 0; rc == ST_OK && j < ncol; j++) {
                duckdb_vector v = duckdb_data_chunk_get_vector(chunk, j);
                st_buf_reset(&cell);
                bool is_null = false;
                if (fmt == CLI_FMT_JSON) {
                    if (j)
                        fputc(',', out);
                    st_buf_json_str(&cell, duckdb_column_name(&r, j));
                    st_buf_putc(&cell, ':');
                    rc = st_engine_value_json(v, types[j], i, &cell);
                    fwrite(cell.data, 1, cell.len, out);
                    continue;
                }
                rc = st_engine_value_text(v, types[j], i, &cell, &is_null);
                if (rc)
                    break;
                if (fmt == CLI_FMT_CSV) {
                    if (j)
                        fputc(',', out);
                    if (!is_null)
                        csv_field(out, cell.data ? cell.data : "", cell.len);
                    continue;
                }
                /* table: buffer everything to size the columns */
                if (tb.rows * ncol + j >= tb.cap) {
                    size_t ncap = tb.cap ? tb.cap * 2 : 64 * (ncol ? ncol : 1);
                    char **nc = st_realloc(tb.cells, ncap * sizeof *nc);
                    if (!nc) {
                        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
                        break;
                    }
                    tb.cells = nc;
                    tb.cap = ncap;
                }
                char *s = is_null ? NULL : st_strdup(cell.data ? cell.data : "");
                tb.cells[tb.rows * ncol + j] = s;
                size_t w = s ? strlen(s) : 4;
                if (w > width[j])
                    width[j] = w;
            }
            if (fmt == CLI_FMT_JSON)
                fputs("}\n", out);
            else if (fmt == CLI_FMT_CSV)
                fputc('\n', out);
            else
                tb.rows++;
        }
        duckdb_destroy_data_chunk(&chunk);
    }
    if (rc == ST_OK && fmt == CLI_FMT_TABLE) {
        for (idx_t j = 0; j < ncol; j++)
            fprintf(out, "%s%-*s", j ? " | " : "", (int)width[j], duckdb_column_name(&r, j));
        fputc('\n', out);
        for (idx_t j = 0; j < ncol; j++) {
            fputs(j ? "-+-" : "", out);
            for (size_t k = 0; k < width[j]; k++)
                fputc('-', out);
        }
        fputc('\n', out);
        for (size_t i = 0; i < tb.rows; i++) {
            for (idx_t j = 0; j < ncol; j++) {
                const char *s = tb.cells[i * ncol + j];
                fprintf(out, "%s%-*s", j ? " | " : "", (int)width[j], s ? s : "NULL");
            }
            fputc('\n', out);
        }
        fprintf(out, "(%zu row%s)\n", tb.rows, tb.rows == 1 ? "" : "s");
    }
done:
    for (size_t i = 0; i < tb.rows * ncol; i++)
        st_free(tb.cells[i]);
    st_free(tb.cells);
    if (types)
        for (idx_t j = 0; j < ncol; j++)
            duckdb_destroy_logical_type(&types[j]);
    st_free(types);
    st_free(width);
    st_buf_free(&cell);
    duckdb_destroy_result(&r);
    return rc;
}

int cli_fail(const st_err *err)
{
    fflush(stdout);
    fprintf(stderr, "strata: %s\n", err->msg[0] ? err->msg : st_rc_name(err->code));
    return 1;
}
