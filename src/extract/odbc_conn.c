/*
 * odbc_conn.c - the ODBC driver (unixODBC): connect with a connection string
 * (psqlODBC gets UseDeclareFetch so it streams instead of buffering the whole
 * result), describe a table with SQLColumns and map ODBC SQL types, and read
 * rows with a block cursor (SQL_ATTR_ROW_ARRAY_SIZE rows per fetch, column-
 * wise bound text buffers; a value longer than its buffer is re-read with
 * SQLGetData).  SQL text uses the configured dialect (postgres, mysql,
 * sqlserver, oracle) for identifier quoting and text casts.
 */
#include "extract/extract_int.h"

#include <sql.h>
#include <sqlext.h>
#include <string.h>

#define ROWS_PER_FETCH 256
#define BUF_MAX 8192

struct x_conn {
    SQLHENV env;
    SQLHDBC dbc;
    const x_source_cfg *src;
};

static st_rc odbc_fail(x_conn *c, SQLSMALLINT type, SQLHANDLE h, st_err *err, const char *what)
{
    SQLCHAR state[6] = "", msg[1024] = "";
    SQLINTEGER native = 0;
    SQLSMALLINT len = 0;
    SQLGetDiagRec(type, h, 1, state, &native, msg, sizeof msg, &len);
    return st_fail(err, ST_ERR_REMOTE, "odbc source %s: %s: [%s] %s", c->src->name, what,
                   (char *)state, (char *)msg);
}

static st_rc odbc_connect(const x_source_cfg *src, x_conn **out, st_err *err)
{
    x_conn *c = st_calloc(1, sizeof *c);
    c->src = src;
    SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &c->env);
    SQLSetEnvAttr(c->env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER)SQL_OV_ODBC3, 0);
    SQLAllocHandle(SQL_HANDLE_DBC, c->env, &c->dbc);
    SQLSetConnectAttr(c->dbc, SQL_ATTR_LOGIN_TIMEOUT,
                      (SQLPOINTER)(intptr_t)(src->connect_timeout > 0 ? src->connect_timeout : 10), 0);
    st_buf cs;
    st_buf_init(&cs, 0);
    st_buf_puts(&cs, src->dsn);
    if (cs.len && cs.data[cs.len - 1] != ';')
        st_buf_putc(&cs, ';');
    if (src->dialect == X_DIALECT_POSTGRES && !strstr(src->dsn, "UseDeclareFetch"))
        st_buf_puts(&cs, "UseDeclareFetch=1;Fetch=10000;");
    if (src->password)
        st_buf_printf(&cs, "PWD={%s};", src->password);
    SQLSMALLINT olen = 0;
    SQLRETURN r = SQLDriverConnect(c->dbc, NULL, (SQLCHAR *)cs.data, SQL_NTS, NULL, 0, &olen,
                                   SQL_DRIVER_NOPROMPT);
    memset(cs.data, 0, cs.len);
    st_buf_free(&cs);
    if (!SQL_SUCCEEDED(r)) {
        st_rc rc = odbc_fail(c, SQL_HANDLE_DBC, c->dbc, err, "connect");
        SQLFreeHandle(SQL_HANDLE_DBC, c->dbc);
        SQLFreeHandle(SQL_HANDLE_ENV, c->env);
        st_free(c);
        return rc;
    }
    SQLHSTMT st;
    SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &st);
    const char *init = src->dialect == X_DIALECT_POSTGRES ? "SET TimeZone = 'UTC'"
                       : src->dialect == X_DIALECT_MYSQL  ? "SET time_zone = '+00:00'"
                                                          : NULL;
    if (init)
        SQLExecDirect(st, (SQLCHAR *)init, SQL_NTS);
    SQLFreeHandle(SQL_HANDLE_STMT, st);
    *out = c;
    return ST_OK;
}

static void odbc_close(x_conn *c)
{
    if (!c)
        return;
    SQLDisconnect(c->dbc);
    SQLFreeHandle(SQL_HANDLE_DBC, c->dbc);
    SQLFreeHandle(SQL_HANDLE_ENV, c->env);
    st_free(c);
}

/* Reads column i of the current row as text via SQLGetData. */
static st_rc get_text(x_conn *c, SQLHSTMT st, SQLUSMALLINT col, st_buf *b, bool *is_null,
                      st_err *err)
{
    st_buf_reset(b);
    *is_null = false;
    char chunk[4096];
    for (;;) {
        SQLLEN ind = 0;
        SQLRETURN r = SQLGetData(st, col, SQL_C_CHAR, chunk, sizeof chunk, &ind);
        if (r == SQL_NO_DATA)
            break;
        if (!SQL_SUCCEEDED(r))
            return odbc_fail(c, SQL_HANDLE_STMT, st, err, "reading a value");
        if (ind == SQL_NULL_DATA) {
            *is_null = true;
            return ST_OK;
        }
        size_t got = (ind == SQL_NO_TOTAL || ind >= (SQLLEN)sizeof chunk) ? sizeof chunk - 1
                                                                          : (size_t)ind;
        st_rc rc = st_buf_append(b, chunk, got);
        if (rc)
            return st_fail(err, rc, "value too large");
        if (r == SQL_SUCCESS)
            break;
    }
    if (!b->data)
        st_buf_append(b, "", 0);
    return ST_OK;
}

static st_rc odbc_scalar(x_conn *c, const char *sql, char **out, st_err *err)
{
    SQLHSTMT st;
    SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &st);
    st_rc rc = ST_OK;
    *out = NULL;
    if (!SQL_SUCCEEDED(SQLExecDirect(st, (SQLCHAR *)sql, SQL_NTS))) {
        rc = odbc_fail(c, SQL_HANDLE_STMT, st, err, "query");
    } else if (SQL_SUCCEEDED(SQLFetch(st))) {
        st_buf b;
        st_buf_init(&b, 1 << 20);
        bool nul = false;
        rc = get_text(c, st, 1, &b, &nul, err);
        if (rc == ST_OK && !nul)
            *out = st_buf_take(&b);
        st_buf_free(&b);
    }
    SQLFreeHandle(SQL_HANDLE_STMT, st);
    return rc;
}

static void odbc_map(x_col *c, SQLSMALLINT dt, SQLINTEGER size, SQLSMALLINT digits, x_dialect d)
{
    const char *t = NULL;
    switch (dt) {
    case SQL_BIT: t = "BOOLEAN"; break;
    case SQL_TINYINT: t = "SMALLINT"; c->is_int = true; break;
    case SQL_SMALLINT: t = "SMALLINT"; c->is_int = true; break;
    case SQL_INTEGER: t = "INTEGER"; c->is_int = true; break;
    case SQL_BIGINT: t = "BIGINT"; c->is_int = true; break;
    case SQL_REAL: t = "FLOAT"; break;
    case SQL_FLOAT:
    case SQL_DOUBLE: t = "DOUBLE"; break;
    case SQL_DECIMAL:
    case SQL_NUMERIC:
        if (size > 0 && size <= 38) {
            c->duck_type = st_sprintf("DECIMAL(%d,%d)", (int)size, (int)digits);
            return;
        }
        break;
    case SQL_TYPE_DATE: t = "DATE"; c->is_temporal = true; break;
    case SQL_TYPE_TIMESTAMP: t = "TIMESTAMP"; c->is_temporal = true; break;
    case SQL_CHAR:
    case SQL_VARCHAR:
    case SQL_LONGVARCHAR:
    case SQL_WCHAR:
    case SQL_WVARCHAR:
    case SQL_WLONGVARCHAR:
    case SQL_TYPE_TIME: t = "VARCHAR"; break;
    case SQL_GUID:
        /* drivers print GUIDs in upper case; RFC 4122 text form is lower case */
        t = "VARCHAR";
        c->stage_expr = st_strdup("lower(%s)");
        break;
    case SQL_BINARY:
    case SQL_VARBINARY:
    case SQL_LONGVARBINARY: {
        t = "BLOB";
        st_buf b;
        st_buf_init(&b, 0);
        char q = d == X_DIALECT_MYSQL ? '`' : d == X_DIALECT_SQLSERVER ? '[' : '"';
        const char *pre = d == X_DIALECT_POSTGRES ? "encode(" : d == X_DIALECT_MYSQL ? "HEX("
                        : d == X_DIALECT_ORACLE ? "RAWTOHEX(" : "CONVERT(VARCHAR(MAX), ";
        st_buf_puts(&b, pre);
        x_quote(&b, q, c->name);
        st_buf_puts(&b, d == X_DIALECT_POSTGRES ? ", 'hex')" : d == X_DIALECT_SQLSERVER ? ", 2)" : ")");
        c->sel = st_buf_take(&b);
        c->stage_expr = st_strdup("from_hex(%s)");
        break;
    }
    default: break;
    }
    if (t)
        c->duck_type = st_strdup(t);
}

static st_rc odbc_describe(x_conn *c, const x_table_cfg *t, x_col **out, size_t *n_out,
                           st_err *err)
{
    SQLHSTMT st;
    SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &st);
    const char *schema = t->schema && *t->schema ? t->schema : NULL;
    SQLRETURN r;
    if (c->src->dialect == X_DIALECT_MYSQL)   /* MySQL calls its schemas catalogs */
        r = SQLColumns(st, (SQLCHAR *)schema, SQL_NTS, NULL, 0, (SQLCHAR *)t->table, SQL_NTS,
                       NULL, 0);
    else
        r = SQLColumns(st, NULL, 0, (SQLCHAR *)schema, schema ? SQL_NTS : 0,
                       (SQLCHAR *)t->table, SQL_NTS, NULL, 0);
    if (!SQL_SUCCEEDED(r)) {
        st_rc rc = odbc_fail(c, SQL_HANDLE_STMT, st, err, "describe");
        SQLFreeHandle(SQL_HANDLE_STMT, st);
        return rc;
    }
    x_col *cols = NULL;
    size_t n = 0;
    st_rc rc = ST_OK;
    while (rc == ST_OK && SQL_SUCCEEDED(SQLFetch(st))) {
        SQLCHAR name[256] = "", tname[128] = "";
        SQLSMALLINT dt = 0, digits = 0;
        SQLINTEGER size = 0;
        SQLLEN ind;
        SQLGetData(st, 4, SQL_C_CHAR, name, sizeof name, &ind);
        SQLGetData(st, 5, SQL_C_SSHORT, &dt, 0, &ind);
        SQLGetData(st, 6, SQL_C_CHAR, tname, sizeof tname, &ind);
        SQLGetData(st, 7, SQL_C_SLONG, &size, 0, &ind);
        SQLGetData(st, 9, SQL_C_SSHORT, &digits, 0, &ind);
        if (ind == SQL_NULL_DATA)
            digits = 0;
        cols = st_realloc(cols, (n + 2) * sizeof *cols);
        x_col *col = &cols[n++];
        memset(col, 0, sizeof *col);
        col->name = st_strdup((char *)name);
        if (dt == SQL_DECIMAL || dt == SQL_NUMERIC)
            col->src_type = st_sprintf("%s(%d,%d)", (char *)tname, (int)size, (int)digits);
        else
            col->src_type = st_strdup((char *)tname);
        /* timestamptz arrives as SQL_TYPE_TIMESTAMP text with an offset */
        if (strstr((char *)tname, "timestamptz") || strstr((char *)tname, "with time zone")) {
            col->duck_type = st_strdup("TIMESTAMPTZ");
            col->is_temporal = true;
        } else if (!strcmp((char *)tname, "timestamp") && c->src->dialect == X_DIALECT_MYSQL) {
            col->duck_type = st_strdup("TIMESTAMPTZ");
            col->stage_expr = st_strdup("CAST(%s || '+00' AS TIMESTAMPTZ)");
            col->is_temporal = true;
        } else if (!strcmp((char *)tname, "bool")) {
            col->duck_type = st_strdup("BOOLEAN");
        } else {
            odbc_map(col, dt, size, digits, c->src->dialect);
        }
        rc = x_map_finish(col, t, c->src->dialect, err);
    }
    SQLFreeHandle(SQL_HANDLE_STMT, st);
    if (rc == ST_OK && n == 0)
        rc = st_fail(err, ST_ERR_NOTFOUND, "odbc source %s: table %s does not exist",
                     c->src->name, t->name);
    if (rc) {
        x_cols_free(cols, n);
        return rc;
    }
    *out = cols;
    *n_out = n;
    return ST_OK;
}

static st_rc odbc_stream(x_conn *c, const char *sql, size_t n_cols, x_row_fn fn, void *ctx,
                         st_err *err)
{
    SQLHSTMT st;
    SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &st);
    st_rc rc = ST_OK;
    char **bufs = st_calloc(n_cols + 1, sizeof *bufs);
    SQLLEN **inds = st_calloc(n_cols + 1, sizeof *inds);
    size_t *widths = st_calloc(n_cols + 1, sizeof *widths);
    char **vals = st_calloc(n_cols + 1, sizeof *vals);
    size_t *lens = st_calloc(n_cols + 1, sizeof *lens);
    st_buf *big = st_calloc(n_cols + 1, sizeof *big);
    SQLULEN fetched = 0;
    SQLSetStmtAttr(st, SQL_ATTR_ROW_BIND_TYPE, SQL_BIND_BY_COLUMN, 0);
    SQLSetStmtAttr(st, SQL_ATTR_ROW_ARRAY_SIZE, (SQLPOINTER)ROWS_PER_FETCH, 0);
    SQLSetStmtAttr(st, SQL_ATTR_ROWS_FETCHED_PTR, &fetched, 0);
    if (!SQL_SUCCEEDED(SQLExecDirect(st, (SQLCHAR *)sql, SQL_NTS))) {
        rc = odbc_fail(c, SQL_HANDLE_STMT, st, err, "query");
        goto out;
    }
    for (size_t i = 0; i < n_cols; i++) {
        SQLULEN size = 0;
        SQLSMALLINT dt, dig, nul, nl;
        SQLCHAR nm[8];
        SQLDescribeCol(st, (SQLUSMALLINT)(i + 1), nm, sizeof nm, &nl, &dt, &size, &dig, &nul);
        size_t w = size > 0 && size < BUF_MAX ? (size_t)size * 4 + 64 : BUF_MAX;
        widths[i] = w;
        bufs[i] = st_malloc(w * ROWS_PER_FETCH);
        inds[i] = st_calloc(ROWS_PER_FETCH, sizeof(SQLLEN));
        st_buf_init(&big[i], (size_t)1 << 30);
        SQLBindCol(st, (SQLUSMALLINT)(i + 1), SQL_C_CHAR, bufs[i], (SQLLEN)w, inds[i]);
    }
    SQLRETURN r;
    while (rc == ST_OK && SQL_SUCCEEDED(r = SQLFetch(st))) {
        for (SQLULEN row = 0; rc == ST_OK && row < fetched; row++) {
            for (size_t i = 0; i < n_cols; i++) {
                SQLLEN ind = inds[i][row];
                if (ind == SQL_NULL_DATA) {
                    vals[i] = NULL;
                    lens[i] = 0;
                } else if (ind == SQL_NO_TOTAL || ind >= (SQLLEN)widths[i]) {
                    rc = st_fail(err, ST_ERR_LIMIT,
                                 "odbc source %s: a value of column %zu exceeds %zu bytes",
                                 c->src->name, i + 1, widths[i]);
                    break;
                } else {
                    vals[i] = bufs[i] + widths[i] * row;
                    lens[i] = (size_t)ind;
                }
            }
            rc = rc ? rc : fn(ctx, vals, lens, n_cols, err);
        }
    }
    if (rc == ST_OK && r != SQL_NO_DATA)
        rc = odbc_fail(c, SQL_HANDLE_STMT, st, err, "fetch");
out:
    SQLFreeHandle(SQL_HANDLE_STMT, st);
    for (size_t i = 0; i < n_cols; i++) {
        st_free(bufs[i]);
        st_free(inds[i]);
        st_buf_free(&big[i]);
    }
    st_free(bufs);
    st_free(inds);
    st_free(widths);
    st_free(vals);
    st_free(lens);
    st_free(big);
    return rc;
}

static st_rc odbc_list_tables(x_conn *c, const char *schema, char ***out, size_t *n_out,
                              st_err *err)
{
    SQLHSTMT st;
    SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &st);
    SQLRETURN r = c->src->dialect == X_DIALECT_MYSQL
                      ? SQLTables(st, (SQLCHAR *)schema, SQL_NTS, NULL, 0, NULL, 0,
                                  (SQLCHAR *)"TABLE", SQL_NTS)
                      : SQLTables(st, NULL, 0, (SQLCHAR *)schema, SQL_NTS, NULL, 0,
                                  (SQLCHAR *)"TABLE", SQL_NTS);
    if (!SQL_SUCCEEDED(r)) {
        st_rc rc = odbc_fail(c, SQL_HANDLE_STMT, st, err, "listing tables");
        SQLFreeHandle(SQL_HANDLE_STMT, st);
        return rc;
    }
    char **v = NULL;
    size_t n = 0;
    while (SQL_SUCCEEDED(SQLFetch(st))) {
        SQLCHAR name[256] = "";
        SQLLEN ind;
        SQLGetData(st, 3, SQL_C_CHAR, name, sizeof name, &ind);
        v = st_realloc(v, (n + 2) * sizeof *v);
        v[n++] = st_sprintf("%s.%s", schema, (char *)name);
    }
    SQLFreeHandle(SQL_HANDLE_STMT, st);
    *out = v ? v : st_calloc(1, sizeof *v);
    *n_out = n;
    return ST_OK;
}

const x_driver x_odbc_driver = {
    .name = "odbc",
    .connect = odbc_connect,
    .close = odbc_close,
    .describe = odbc_describe,
    .scalar = odbc_scalar,
    .stream = odbc_stream,
    .list_tables = odbc_list_tables,
    .quote = '"',
};
