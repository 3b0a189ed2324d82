/*
 * mysql_conn.c - the MySQL / MariaDB driver (libmariadb): connect with
 * timeouts, optional compressed protocol and a UTC session, describe a table
 * through information_schema with the exact type mapping, and stream rows
 * with mysql_use_result so memory stays bounded whatever the table size.
 */
#include "extract/extract_int.h"

#include <mysql.h>
#include <stdlib.h>
#include <string.h>

struct x_conn {
    MYSQL *my;
    const x_source_cfg *src;
};

static st_rc my_fail(x_conn *c, st_err *err, const char *what)
{
    st_rc rc = st_fail(err, ST_ERR_REMOTE, "mysql source %s: %s: %s", c->src->name, what,
                       mysql_error(c->my));
    if (err)
        err->sub = (int)mysql_errno(c->my);
    return rc;
}

static st_rc my_connect(const x_source_cfg *src, x_conn **out, st_err *err)
{
    x_conn *c = st_calloc(1, sizeof *c);
    c->src = src;
    c->my = mysql_init(NULL);
    if (!c->my) {
        st_free(c);
        return st_fail(err, ST_ERR_NOMEM, "mysql_init");
    }
    unsigned int ct = (unsigned)(src->connect_timeout > 0 ? src->connect_timeout : 10);
    unsigned int rt = (unsigned)(src->read_timeout > 0 ? src->read_timeout : 3600);
    mysql_optionsv(c->my, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
    mysql_optionsv(c->my, MYSQL_OPT_READ_TIMEOUT, &rt);
    mysql_optionsv(c->my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_optionsv(c->my, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'");
    if (src->compress)
        mysql_optionsv(c->my, MYSQL_OPT_COMPRESS, NULL);
    const char *host = src->host ? src->host : "127.0.0.1";
    if (!mysql_real_connect(c->my, host, src->user, src->password, src->database,
                            (unsigned)(src->port ? src->port : 3306), NULL, 0)) {
        st_rc rc = my_fail(c, err, "connect");
        mysql_close(c->my);
        st_free(c);
        return rc;
    }
    *out = c;
    return ST_OK;
}

static void my_close(x_conn *c)
{
    if (!c)
        return;
    mysql_close(c->my);
    st_free(c);
}

static st_rc my_scalar(x_conn *c, const char *sql, char **out, st_err *err)
{
    if (mysql_query(c->my, sql))
        return my_fail(c, err, "query");
    MYSQL_RES *r = mysql_store_result(c->my);
    if (!r)
        return my_fail(c, err, "query");
    MYSQL_ROW row = mysql_fetch_row(r);
    *out = row && row[0] ? st_strdup(row[0]) : NULL;
    mysql_free_result(r);
    return ST_OK;
}

static void my_map(x_col *c, const char *dt, const char *ct, long prec, long scale)
{
    bool uns = strstr(ct, "unsigned") != NULL;
    const char *d = NULL;
    if (!strcmp(dt, "tinyint")) { d = uns ? "SMALLINT" : "TINYINT"; c->is_int = true; }
    else if (!strcmp(dt, "smallint")) { d = uns ? "INTEGER" : "SMALLINT"; c->is_int = true; }
    else if (!strcmp(dt, "mediumint")) { d = "INTEGER"; c->is_int = true; }
    else if (!strcmp(dt, "int") || !strcmp(dt, "integer")) { d = uns ? "BIGINT" : "INTEGER"; c->is_int = true; }
    else if (!strcmp(dt, "bigint")) { d = uns ? "DECIMAL(20,0)" : "BIGINT"; c->is_int = !uns; }
    else if (!strcmp(dt, "decimal") && prec <= 38) {
        c->duck_type = st_sprintf("DECIMAL(%ld,%ld)", prec, scale);
        return;
    } else if (!strcmp(dt, "float")) d = "FLOAT";
    else if (!strcmp(dt, "double")) d = "DOUBLE";
    else if (!strcmp(dt, "bit")) {
        d = "BIGINT";
        st_buf b;
        st_buf_init(&b, 0);
        st_buf_puts(&b, "CAST(");
        x_quote(&b, '`', c->name);
        st_buf_puts(&b, " AS UNSIGNED)");
        c->sel = st_buf_take(&b);
    } else if (!strcmp(dt, "date")) { d = "DATE"; c->is_temporal = true; }
    else if (!strcmp(dt, "datetime")) { d = "TIMESTAMP"; c->is_temporal = true; }
    else if (!strcmp(dt, "timestamp")) {
        /* the session runs in UTC, so the text is a UTC instant */
        d = "TIMESTAMPTZ";
        c->is_temporal = true;
        c->stage_expr = st_strdup("CAST(%s || '+00' AS TIMESTAMPTZ)");
    } else if (!strcmp(dt, "year")) d = "INTEGER";
    else if (strstr(dt, "char") || strstr(dt, "text") || !strcmp(dt, "enum") ||
             !strcmp(dt, "set") || !strcmp(dt, "json") || !strcmp(dt, "time") ||
             !strcmp(dt, "uuid") || !strcmp(dt, "inet4") || !strcmp(dt, "inet6"))
        d = "VARCHAR";
    else if (strstr(dt, "binary") || strstr(dt, "blob")) {
        d = "BLOB";
        st_buf b;
        st_buf_init(&b, 0);
        st_buf_puts(&b, "HEX(");
        x_quote(&b, '`', c->name);
        st_buf_puts(&b, ")");
        c->sel = st_buf_take(&b);
        c->stage_expr = st_strdup("from_hex(%s)");
    }
    if (d)
        c->duck_type = st_strdup(d);
}

static st_rc my_describe(x_conn *c, const x_table_cfg *t, x_col **out, size_t *n_out,
                         st_err *err)
{
    st_buf q;
    st_buf_init(&q, 0);
    st_buf_puts(&q, "SELECT column_name, data_type, column_type, coalesce(numeric_precision,0),"
                    " coalesce(numeric_scale,0) FROM information_schema.columns WHERE"
                    " table_schema = ");
    if (t->schema && *t->schema)
        st_buf_sql_str(&q, t->schema);
    else
        st_buf_puts(&q, "DATABASE()");
    st_buf_puts(&q, " AND table_name = ");
    st_buf_sql_str(&q, t->table);
    st_buf_puts(&q, " ORDER BY ordinal_position");
    int qrc = mysql_query(c->my, q.data);
    st_buf_free(&q);
    if (qrc)
        return my_fail(c, err, "describe");
    MYSQL_RES *r = mysql_store_result(c->my);
    if (!r)
        return my_fail(c, err, "describe");
    size_t n = (size_t)mysql_num_rows(r);
    if (n == 0) {
        mysql_free_result(r);
        return st_fail(err, ST_ERR_NOTFOUND, "mysql source %s: table %s does not exist",
                       c->src->name, t->name);
    }
    x_col *cols = st_calloc(n + 1, sizeof *cols);
    st_rc rc = ST_OK;
    MYSQL_ROW row;
    size_t i = 0;
    while (rc == ST_OK && (row = mysql_fetch_row(r)) != NULL && i < n) {
        cols[i].name = st_strdup(row[0]);
        cols[i].src_type = st_strdup(row[2]);
        my_map(&cols[i], row[1], row[2], strtol(row[3], NULL, 10), strtol(row[4], NULL, 10));
        rc = x_map_finish(&cols[i], t, X_DIALECT_MYSQL, err);
        i++;
    }
    mysql_free_result(r);
    if (rc) {
        x_cols_free(cols, n);
        return rc;
    }
    *out = cols;
    *n_out = n;
    return ST_OK;
}

static st_rc my_stream(x_conn *c, const char *sql, size_t n_cols, x_row_fn fn, void *ctx,
                       st_err *err)
{
    if (mysql_query(c->my, sql))
        return my_fail(c, err, "query");
    MYSQL_RES *r = mysql_use_result(c->my);
    if (!r)
        return my_fail(c, err, "query");
    if (mysql_num_fields(r) != n_cols) {
        mysql_free_result(r);
        return st_fail(err, ST_ERR_INVALID, "mysql source %s: query returned %u columns, expected %zu",
                       c->src->name, mysql_num_fields(r), n_cols);
    }
    st_rc rc = ST_OK;
    MYSQL_ROW row;
    size_t *lens = st_calloc(n_cols + 1, sizeof *lens);
    while ((row = mysql_fetch_row(r)) != NULL) {
        unsigned long *l = mysql_fetch_lengths(r);
        for (size_t i = 0; i < n_cols; i++)
            lens[i] = l[i];
        rc = fn(ctx, row, lens, n_cols, err);
        if (rc)
            break;
    }
    if (rc == ST_OK && mysql_errno(c->my))
        rc = my_fail(c, err, "reading rows");
    st_free(lens);
    mysql_free_result(r);   /* reads the rest of the result on early exit */
    return rc;
}

static st_rc my_list_tables(x_conn *c, const char *schema, char ***out, size_t *n_out,
                            st_err *err)
{
    st_buf q;
    st_buf_init(&q, 0);
    st_buf_puts(&q, "SELECT concat(table_schema, '.', table_name) FROM information_schema.tables"
                    " WHERE table_type = 'BASE TABLE' AND table_schema = ");
    st_buf_sql_str(&q, schema);
    st_buf_puts(&q, " ORDER BY 1");
    int qrc = mysql_query(c->my, q.data);
    st_buf_free(&q);
    MYSQL_RES *r = qrc ? NULL : mysql_store_result(c->my);
    if (!r)
        return my_fail(c, err, "listing tables");
    size_t n = (size_t)mysql_num_rows(r);
    char **v = st_calloc(n + 1, sizeof *v);
    MYSQL_ROW row;
    size_t i = 0;
    while ((row = mysql_fetch_row(r)) != NULL && i < n)
        v[i++] = st_strdup(row[0]);
    mysql_free_result(r);
    *out = v;
    *n_out = i;
    return ST_OK;
}

const x_driver x_mysql_driver = {
    .name = "mysql",
    .connect = my_connect,
    .close = my_close,
    .describe = my_describe,
    .scalar = my_scalar,
    .stream = my_stream,
    .list_tables = my_list_tables,
    .quote = '`',
};
