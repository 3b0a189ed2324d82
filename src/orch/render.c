/*
 * render.c - expands the small template language of gold models and custom
 * checks: {{ ref('layer.table') }}, {{ this }}, {{ partition }},
 * {{ partition_start }}, {{ partition_end }}, {{ is_incremental }} and
 * {% if is_incremental %} ... {% else %} ... {% endif %} (not nested).
 * Anything else inside {{ }} or {% %} is an error naming it.
 */
#include "strata/orch.h"

#include <string.h>

#define MAX_RENDER (8u << 20)

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n'))
        p++;
    return p;
}

/* Appends "layer"."table" for name (resolved through d when unqualified). */
static st_rc put_ref(st_buf *b, const st_dag *d, const char *name, st_err *err)
{
    const char *key = name;
    if (!strchr(name, '.') && d) {
        static const char *const order[] = {"gold", "silver", "bronze"};
        for (size_t l = 0; l < 3 && key == name; l++)
            for (size_t i = 0; i < d->n; i++)
                if (!strcmp(d->a[i]->layer, order[l]) && !strcmp(d->a[i]->name, name)) {
                    key = d->a[i]->key;
                    break;
                }
    }
    const char *dot = strchr(key, '.');
    if (!dot)
        return st_fail(err, ST_ERR_NOTFOUND, "ref('%s'): unknown table (use layer.table)", name);
    char *layer = st_strndup(key, (size_t)(dot - key));
    st_rc rc = layer ? st_buf_sql_ident(b, layer) : ST_ERR_NOMEM;
    rc = rc ? rc : st_buf_putc(b, '.');
    rc = rc ? rc : st_buf_sql_ident(b, dot + 1);
    st_free(layer);
    return rc ? st_fail(err, rc, "rendering ref('%s')", name) : ST_OK;
}

st_rc st_render_sql(const char *tmpl, const st_dag *d, const st_render_vars *v, char **out,
                    st_err *err)
{
    st_render_vars none = {0};
    if (!v)
        v = &none;
    st_buf b;
    st_buf_init(&b, MAX_RENDER);
    const char *p = tmpl;
    int in_if = 0;        /* 0 none, 1 in the if branch, 2 in the else branch */
    bool emit = true;
    st_rc rc = ST_OK;
    while (rc == ST_OK && *p) {
        const char *o1 = strstr(p, "{{");
        const char *o2 = strstr(p, "{%");
        const char *o = o1 && (!o2 || o1 < o2) ? o1 : o2;
        if (!o) {
            if (emit)
                rc = st_buf_puts(&b, p);
            break;
        }
        if (emit && o > p)
            rc = st_buf_append(&b, p, (size_t)(o - p));
        bool is_stmt = o == o2;
        const char *close = strstr(o + 2, is_stmt ? "%}" : "}}");
        if (!close) {
            rc = st_fail(err, ST_ERR_PARSE, "template: unterminated %s", is_stmt ? "{%" : "{{");
            break;
        }
        const char *s = skip_ws(o + 2, close);
        const char *e = close;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n'))
            e--;
        size_t n = (size_t)(e - s);
        if (rc)
            break;
        if (is_stmt) {
            if (n == 17 && !strncmp(s, "if is_incremental", 17) && !in_if) {
                in_if = 1;
                emit = v->is_incremental;
            } else if (n == 21 && !strncmp(s, "if not is_incremental", 21) && !in_if) {
                in_if = 1;
                emit = !v->is_incremental;
            } else if (n == 4 && !strncmp(s, "else", 4) && in_if == 1) {
                in_if = 2;
                emit = !emit;
            } else if (n == 5 && !strncmp(s, "endif", 5) && in_if) {
                in_if = 0;
                emit = true;
            } else {
                rc = st_fail(err, ST_ERR_PARSE, "template: unsupported {%% %.*s %%}", (int)n, s);
            }
        } else if (!emit) {
            /* skipped branch: nothing */
        } else if (n > 4 && !strncmp(s, "ref(", 4) && s[n - 1] == ')') {
            const char *a = skip_ws(s + 4, e - 1);
            const char *z = e - 1;
            while (z > a && (z[-1] == ' ' || z[-1] == '\t'))
                z--;
            if (z - a >= 2 && (*a == '\'' || *a == '"') && z[-1] == *a) {
                a++;
                z--;
            }
            char *name = st_strndup(a, (size_t)(z - a));
            rc = name && *name ? put_ref(&b, d, name, err)
                               : st_fail(err, ST_ERR_PARSE, "template: empty ref()");
            st_free(name);
        } else if (n == 4 && !strncmp(s, "this", 4)) {
            rc = v->this_rel ? st_buf_puts(&b, v->this_rel)
                             : st_fail(err, ST_ERR_INVALID, "template: {{ this }} outside a model");
        } else if (n == 14 && !strncmp(s, "is_incremental", 14)) {
            rc = st_buf_puts(&b, v->is_incremental ? "true" : "false");
        } else if (n == 9 && !strncmp(s, "partition", 9)) {
            rc = v->partition ? st_buf_sql_str(&b, v->partition) : st_buf_puts(&b, "NULL");
        } else if ((n == 15 && !strncmp(s, "partition_start", 15)) ||
                   (n == 13 && !strncmp(s, "partition_end", 13))) {
            const char *val = n == 15 ? v->part_start : v->part_end;
            if (val) {
                rc = st_buf_puts(&b, "DATE ");
                rc = rc ? rc : st_buf_sql_str(&b, val);
            } else {
                rc = st_buf_puts(&b, "NULL::DATE");
            }
        } else {
            rc = st_fail(err, ST_ERR_PARSE, "template: unknown {{ %.*s }}", (int)n, s);
        }
        p = close + 2;
    }
    if (rc == ST_OK && in_if)
        rc = st_fail(err, ST_ERR_PARSE, "template: {%% if %%} without {%% endif %%}");
    if (rc) {
        if (rc == ST_ERR_LIMIT || rc == ST_ERR_NOMEM)
            st_fail(err, rc, "template: rendered SQL too large");
        st_buf_free(&b);
        return rc;
    }
    *out = b.data ? st_buf_take(&b) : st_strdup("");
    if (!*out)
        return st_fail(err, ST_ERR_NOMEM, "template");
    return ST_OK;
}
