/*
 * xmap.c - shared column-mapping helpers for the drivers: identifier
 * quoting, and x_map_finish, which turns a driver's type decision into the
 * source SELECT expression and the DuckDB cast applied to the staged text.
 * The per-source type tables live in each driver (pg_conn.c, mysql_conn.c,
 * odbc_conn.c) and are documented in docs/extraction.md.
 */
#include "extract/extract_int.h"

#include <string.h>

st_rc x_quote(st_buf *b, char q, const char *ident)
{
    st_rc rc = st_buf_putc(b, q == '[' ? '[' : q);
    char close = q == '[' ? ']' : q;
    for (const char *p = ident; rc == ST_OK && *p; p++) {
        if (*p == close)
            rc = st_buf_putc(b, close);
        rc = rc ? rc : st_buf_putc(b, *p);
    }
    return rc ? rc : st_buf_putc(b, close);
}

void x_cols_free(x_col *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) {
        st_free(c[i].name);
        st_free(c[i].src_type);
        st_free(c[i].sel);
        st_free(c[i].duck_type);
        st_free(c[i].stage_expr);
        st_free(c[i].bin_sel);
    }
    st_free(c);
}

static const char *text_cast(x_dialect d)
{
    switch (d) {
    case X_DIALECT_POSTGRES: return "CAST(%s AS text)";
    case X_DIALECT_MYSQL: return "CAST(%s AS CHAR)";
    case X_DIALECT_SQLSERVER: return "CAST(%s AS NVARCHAR(MAX))";
    case X_DIALECT_ORACLE: return "TO_CHAR(%s)";
    }
    return "%s";
}

st_rc x_map_finish(x_col *c, const x_table_cfg *t, x_dialect d, st_err *err)
{
    char q = d == X_DIALECT_MYSQL ? '`' : d == X_DIALECT_SQLSERVER ? '[' : '"';
    st_buf b;
    st_buf_init(&b, 0);
    st_rc rc = x_quote(&b, q, c->name);
    if (rc)
        return st_fail(err, rc, "column %s", c->name);
    char *ident = st_buf_take(&b);
    bool forced = x_name_in(t->cast_to_string, t->n_cast_to_string, c->name);
    if (!c->duck_type || forced) {
        if (!forced) {
            st_free(ident);
            return st_fail(err, ST_ERR_UNSUPPORTED,
                           "table %s: column %s has type %s, which has no exact Delta type;"
                           " list it under cast_to_string to read it as text",
                           t->name, c->name, c->src_type);
        }
        st_free(c->duck_type);
        st_free(c->sel);
        c->duck_type = st_strdup("VARCHAR");
        c->sel = st_sprintf(text_cast(d), ident);
        c->is_int = c->is_temporal = false;
        st_free(c->stage_expr);
        c->stage_expr = NULL;
    }
    if (!c->sel)
        c->sel = st_strdup(ident);
    st_free(ident);
    return ST_OK;
}
