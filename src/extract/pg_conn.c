/*
 * pg_conn.c - the PostgreSQL driver (libpq): connect with timeouts and a
 * UTC session, describe a table through the catalog with the exact type
 * mapping, and stream `COPY (SELECT ...) TO STDOUT` in text format, decoding
 * each line into fields.  Text COPY is used because it keeps DECIMAL digits
 * exact and measured close to binary COPY (1.10M vs 1.31M rows/s) without a
 * per-type binary decoder.
 */
#include "extract/extract_int.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

struct x_conn {
    PGconn *pg;
    const x_source_cfg *src;
};

static st_rc pg_fail(x_conn *c, st_err *err, st_rc code, const char *what)
{
    const char *m = c && c->pg ? PQerrorMessage(c->pg) : "no connection";
    size_t n = strlen(m);
    while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
        n--;
    return st_fail(err, code, "postgres source %s: %s: %.*s", c ? c->src->name : "?", what,
                   (int)n, m);
}

static st_rc pg_exec_ok(x_conn *c, const char *sql, st_err *err)
{
    PGresult *r = PQexec(c->pg, sql);
    st_rc rc = ST_OK;
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = pg_fail(c, err, ST_ERR_REMOTE, sql);
    PQclear(r);
    return rc;
}

static st_rc pg_connect(const x_source_cfg *src, x_conn **out, st_err *err)
{
    x_conn *c = st_calloc(1, sizeof *c);
    if (!c)
        return st_fail(err, ST_ERR_NOMEM, "connecting %s", src->name);
    c->src = src;
    /* Keywords override the DSN; the password never goes into a message. */
    const char *keys[12], *vals[12];
    int n = 0;
    char ct[16];
    snprintf(ct, sizeof ct, "%d", src->connect_timeout > 0 ? src->connect_timeout : 10);
    keys[n] = "dbname"; vals[n++] = src->dsn ? src->dsn : "";
    if (!src->dsn) {
        char port[16];
        snprintf(port, sizeof port, "%d", src->port ? src->port : 5432);
        keys[n] = "host"; vals[n++] = src->host;
        keys[n] = "port"; vals[n++] = st_strdup(port);
        if (src->user) { keys[n] = "user"; vals[n++] = src->user; }
        if (src->database) { keys[n] = "dbname"; vals[n++] = src->database; }
    }
    if (src->password) { keys[n] = "password"; vals[n++] = src->password; }
    keys[n] = "connect_timeout"; vals[n++] = ct;
    keys[n] = "application_name"; vals[n++] = "strata-extract";
    keys[n] = "options"; vals[n++] = "-c TimeZone=UTC -c DateStyle=ISO -c extra_float_digits=3"
                                      " -c IntervalStyle=iso_8601 -c bytea_output=hex";
    keys[n] = NULL; vals[n] = NULL;
    c->pg = PQconnectdbParams(keys, vals, 1);
    if (!src->dsn)
        st_free((char *)vals[2]);
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
        st_rc rc = pg_fail(c, err, ST_ERR_REMOTE, "connect");
        PQfinish(c->pg);
        st_free(c);
        return rc;
    }
    if (src->read_timeout > 0) {
        char *sql = st_sprintf("SET statement_timeout = '%ds'", src->read_timeout);
        pg_exec_ok(c, sql, NULL);
        st_free(sql);
    }
    *out = c;
    return ST_OK;
}

static void pg_close(x_conn *c)
{
    if (!c)
        return;
    PQfinish(c->pg);
    st_free(c);
}

static st_rc pg_scalar(x_conn *c, const char *sql, char **out, st_err *err)
{
    PGresult *r = PQexec(c->pg, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        st_rc rc = pg_fail(c, err, ST_ERR_REMOTE, "query");
        PQclear(r);
        return rc;
    }
    *out = PQntuples(r) && !PQgetisnull(r, 0, 0) ? st_strdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    return ST_OK;
}

/* Maps one PostgreSQL type (format_type text and typtype) to DuckDB. */
static void pg_map(x_col *c, const char *typtype)
{
    const char *t = c->src_type;
    int p = 0, s = 0;
    const char *d = NULL;
    if (!strcmp(t, "smallint")) { d = "SMALLINT"; c->is_int = true; }
    else if (!strcmp(t, "integer")) { d = "INTEGER"; c->is_int = true; }
    else if (!strcmp(t, "bigint")) { d = "BIGINT"; c->is_int = true; }
    else if (!strcmp(t, "real")) d = "FLOAT";
    else if (!strcmp(t, "double precision")) d = "DOUBLE";
    else if (sscanf(t, "numeric(%d,%d)", &p, &s) == 2 && p <= 38) {
        c->duck_type = st_sprintf("DECIMAL(%d,%d)", p, s);
        return;
    } else if (!strcmp(t, "boolean")) d = "BOOLEAN";
    else if (!strcmp(t, "date")) { d = "DATE"; c->is_temporal = true; }
    else if (!strncmp(t, "timestamp", 9) && strstr(t, "with time zone") && !strstr(t, "without")) {
        d = "TIMESTAMPTZ";
        c->is_temporal = true;
    } else if (!strncmp(t, "timestamp", 9)) { d = "TIMESTAMP"; c->is_temporal = true; }
    else if (!strcmp(t, "bytea")) {
        d = "BLOB";
        c->stage_expr = st_strdup("from_hex(%s)");
    } else if (!strcmp(t, "text") || !strncmp(t, "character", 9) || !strcmp(t, "uuid") ||
               !strcmp(t, "json") || !strcmp(t, "jsonb") || !strcmp(t, "name") ||
               !strcmp(t, "citext") || !strcmp(t, "xml") || !strcmp(t, "inet") ||
               !strcmp(t, "cidr") || !strcmp(t, "macaddr") || !strncmp(t, "time", 4) ||
               !strcmp(t, "interval") || !strcmp(t, "money") || !strcmp(t, "\"char\"") ||
               (typtype && *typtype == 'e'))
        d = "VARCHAR";
    if (d)
        c->duck_type = st_strdup(d);
    if (c->stage_expr == NULL && d && !strcmp(d, "BLOB"))
        c->stage_expr = st_strdup("from_hex(%s)");
    if (d && !strcmp(d, "BLOB")) {
        /* COPY text renders bytea as \x<hex>; encode() gives the bare hex */
        st_buf b;
        st_buf_init(&b, 0);
        st_buf_puts(&b, "encode(");
        x_quote(&b, '"', c->name);
        st_buf_puts(&b, ", 'hex')");
        c->sel = st_buf_take(&b);
    }
}

static st_rc pg_describe(x_conn *c, const x_table_cfg *t, x_col **out, size_t *n_out,
                         st_err *err)
{
    const char *params[2] = {t->schema && *t->schema ? t->schema : "public", t->table};
    PGresult *r = PQexecParams(
        c->pg,
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), ty.typtype"
        " FROM pg_attribute a JOIN pg_class cl ON cl.oid = a.attrelid"
        " JOIN pg_namespace ns ON ns.oid = cl.relnamespace JOIN pg_type ty ON ty.oid = a.atttypid"
        " WHERE ns.nspname = $1 AND cl.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum",
        2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        st_rc rc = pg_fail(c, err, ST_ERR_REMOTE, "describe");
        PQclear(r);
        return rc;
    }
    int n = PQntuples(r);
    if (n == 0) {
        PQclear(r);
        return st_fail(err, ST_ERR_NOTFOUND, "postgres source %s: table %s does not exist",
                       c->src->name, t->name);
    }
    x_col *cols = st_calloc((size_t)n + 1, sizeof *cols);
    st_rc rc = ST_OK;
    for (int i = 0; i < n && rc == ST_OK; i++) {
        cols[i].name = st_strdup(PQgetvalue(r, i, 0));
        cols[i].src_type = st_strdup(PQgetvalue(r, i, 1));
        pg_map(&cols[i], PQgetvalue(r, i, 2));
        rc = x_map_finish(&cols[i], t, X_DIALECT_POSTGRES, err);
    }
    PQclear(r);
    if (rc) {
        x_cols_free(cols, (size_t)n);
        return rc;
    }
    *out = cols;
    *n_out = (size_t)n;
    return ST_OK;
}

/* Decodes COPY text escapes in place; returns the new length. */
static size_t unescape(char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch != '\\' || i + 1 >= len) {
            s[o++] = ch;
            continue;
        }
        char e = s[++i];
        switch (e) {
        case 'b': s[o++] = '\b'; break;
        case 'f': s[o++] = '\f'; break;
        case 'n': s[o++] = '\n'; break;
        case 'r': s[o++] = '\r'; break;
        case 't': s[o++] = '\t'; break;
        case 'v': s[o++] = '\v'; break;
        case 'x': {
            int v = 0, k = 0;
            while (k < 2 && i + 1 < len && strchr("0123456789abcdefABCDEF", s[i + 1]) && s[i + 1]) {
                char h = s[++i];
                v = v * 16 + (h <= '9' ? h - '0' : (h | 32) - 'a' + 10);
                k++;
            }
            s[o++] = (char)v;
            break;
        }
        default:
            if (e >= '0' && e <= '7') {
                int v = e - '0', k = 1;
                while (k < 3 && i + 1 < len && s[i + 1] >= '0' && s[i + 1] <= '7') {
                    v = v * 8 + (s[++i] - '0');
                    k++;
                }
                s[o++] = (char)v;
            } else {
                s[o++] = e;
            }
        }
    }
    return o;
}

static st_rc pg_stream(x_conn *c, const char *sql, size_t n_cols, x_row_fn fn, void *ctx,
                       st_err *err)
{
    char *copy = st_sprintf("COPY (%s) TO STDOUT", sql);
    if (!copy)
        return st_fail(err, ST_ERR_NOMEM, "query");
    PGresult *r = PQexec(c->pg, copy);
    st_free(copy);
    if (PQresultStatus(r) != PGRES_COPY_OUT) {
        st_rc rc = pg_fail(c, err, ST_ERR_REMOTE, "COPY");
        PQclear(r);
        return rc;
    }
    PQclear(r);
    char **vals = st_calloc(n_cols + 1, sizeof *vals);
    size_t *lens = st_calloc(n_cols + 1, sizeof *lens);
    st_rc rc = ST_OK;
    char *line = NULL;
    int got;
    while ((got = PQgetCopyData(c->pg, &line, 0)) > 0) {
        size_t len = (size_t)got;
        if (len && line[len - 1] == '\n')
            len--;
        size_t f = 0, start = 0;
        for (size_t i = 0; i <= len && rc == ST_OK; i++) {
            if (i < len && line[i] != '\t')
                continue;
            if (f >= n_cols) {
                rc = st_fail(err, ST_ERR_PARSE, "COPY row has more than %zu fields", n_cols);
                break;
            }
            char *v = line + start;
            size_t vl = i - start;
            if (vl == 2 && v[0] == '\\' && v[1] == 'N') {
                vals[f] = NULL;
                lens[f] = 0;
            } else {
                vals[f] = v;
                lens[f] = memchr(v, '\\', vl) ? unescape(v, vl) : vl;
            }
            f++;
            start = i + 1;
        }
        if (rc == ST_OK && f != n_cols)
            rc = st_fail(err, ST_ERR_PARSE, "COPY row has %zu fields, expected %zu", f, n_cols);
        rc = rc ? rc : fn(ctx, vals, lens, n_cols, err);
        PQfreemem(line);
        line = NULL;
        if (rc)
            break;
    }
    if (rc) {
        /* drain the COPY so the connection stays usable */
        PGcancel *cancel = PQgetCancel(c->pg);
        char eb[256];
        if (cancel) {
            PQcancel(cancel, eb, sizeof eb);
            PQfreeCancel(cancel);
        }
        while (PQgetCopyData(c->pg, &line, 0) > 0)
            PQfreemem(line);
    } else if (got == -2) {
        rc = pg_fail(c, err, ST_ERR_REMOTE, "reading COPY data");
    }
    while ((r = PQgetResult(c->pg)) != NULL) {
        if (rc == ST_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = pg_fail(c, err, ST_ERR_REMOTE, "COPY");
        PQclear(r);
    }
    st_free(vals);
    st_free(lens);
    return rc;
}

static st_rc pg_list_tables(x_conn *c, const char *schema, char ***out, size_t *n_out,
                            st_err *err)
{
    const char *params[1] = {schema};
    PGresult *r = PQexecParams(c->pg,
                               "SELECT table_schema || '.' || table_name FROM"
                               " information_schema.tables WHERE table_schema = $1"
                               " AND table_type = 'BASE TABLE' ORDER BY 1",
                               1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        st_rc rc = pg_fail(c, err, ST_ERR_REMOTE, "listing tables");
        PQclear(r);
        return rc;
    }
    int n = PQntuples(r);
    char **v = st_calloc((size_t)n + 1, sizeof *v);
    for (int i = 0; i < n; i++)
        v[i] = st_strdup(PQgetvalue(r, i, 0));
    PQclear(r);
    *out = v;
    *n_out = (size_t)n;
    return ST_OK;
}

const x_driver x_pg_driver = {
    .name = "postgres",
    .connect = pg_connect,
    .close = pg_close,
    .describe = pg_describe,
    .scalar = pg_scalar,
    .stream = pg_stream,
    .list_tables = pg_list_tables,
    .quote = '"',
};
