/*
 * select.c - dbt-style selection expressions: `asset`, `+asset`, `asset+`,
 * `+asset+`, `layer:gold`, `tag:finance`, `kind:silver`, globs (`gold.*`),
 * unions by spaces or commas, and --exclude.  Evaluated over st_dag.
 */
#include "strata/orch.h"

#include <fnmatch.h>
#include <string.h>

#define MAX_TERMS 256
#define MAX_TERM_LEN 512

typedef enum method { M_NAME, M_LAYER, M_TAG, M_KIND } method;

typedef struct term {
    method m;
    char *value;
    bool ancestors, descendants;
} term;

struct st_select {
    term *terms;
    size_t n;
};

void st_select_free(st_select *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        st_free(s->terms[i].value);
    st_free(s->terms);
    st_free(s);
}

static bool valid_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '.' || c == '*' || c == '?' || c == ':' || c == '[' ||
           c == ']';
}

st_rc st_select_parse(const char *expr, st_select **out, st_err *err)
{
    if (!expr)
        return st_fail(err, ST_ERR_INVALID, "selection: empty expression");
    st_select *s = st_calloc(1, sizeof *s);
    if (!s)
        return st_fail(err, ST_ERR_NOMEM, "selection");
    const char *p = expr;
    st_rc rc = ST_OK;
    while (rc == ST_OK) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n')
            p++;
        if (!*p)
            break;
        const char *b = p;
        while (*p && *p != ' ' && *p != ',' && *p != '\t' && *p != '\n')
            p++;
        size_t len = (size_t)(p - b);
        if (len > MAX_TERM_LEN || s->n >= MAX_TERMS) {
            rc = st_fail(err, ST_ERR_LIMIT, "selection: more than %d terms or a term longer "
                         "than %d characters", MAX_TERMS, MAX_TERM_LEN);
            break;
        }
        term t = {0};
        if (*b == '+') {
            t.ancestors = true;
            b++;
            len--;
        }
        if (len && b[len - 1] == '+') {
            t.descendants = true;
            len--;
        }
        if (!len) {
            rc = st_fail(err, ST_ERR_PARSE, "selection: '+' without an asset");
            break;
        }
        for (size_t i = 0; i < len; i++) {
            if (!valid_char(b[i])) {
                rc = st_fail(err, ST_ERR_PARSE, "selection: unexpected character '%c' in '%.*s'",
                             b[i], (int)len, b);
                break;
            }
        }
        if (rc)
            break;
        const char *colon = memchr(b, ':', len);
        const char *val = b;
        size_t vlen = len;
        if (colon) {
            size_t mlen = (size_t)(colon - b);
            if (mlen == 5 && !strncmp(b, "layer", 5))
                t.m = M_LAYER;
            else if (mlen == 3 && !strncmp(b, "tag", 3))
                t.m = M_TAG;
            else if (mlen == 4 && !strncmp(b, "kind", 4))
                t.m = M_KIND;
            else {
                rc = st_fail(err, ST_ERR_PARSE,
                             "selection: unknown method '%.*s' (layer:, tag:, kind:)", (int)mlen, b);
                break;
            }
            val = colon + 1;
            vlen = len - mlen - 1;
            if (!vlen || memchr(val, ':', vlen)) {
                rc = st_fail(err, ST_ERR_PARSE, "selection: '%.*s' needs one value after ':'",
                             (int)len, b);
                break;
            }
        }
        t.value = st_strndup(val, vlen);
        term *nt = t.value ? st_realloc(s->terms, (s->n + 1) * sizeof *nt) : NULL;
        if (!nt) {
            st_free(t.value);
            rc = st_fail(err, ST_ERR_NOMEM, "selection");
            break;
        }
        s->terms = nt;
        s->terms[s->n++] = t;
    }
    if (rc == ST_OK && !s->n)
        rc = st_fail(err, ST_ERR_INVALID, "selection: empty expression");
    if (rc) {
        st_select_free(s);
        return rc;
    }
    *out = s;
    return ST_OK;
}

static const char *kind_name(st_asset_kind k)
{
    switch (k) {
    case ST_ASSET_SOURCE: return "source";
    case ST_ASSET_EXTRACT: return "extract";
    case ST_ASSET_SILVER: return "silver";
    case ST_ASSET_GOLD: return "gold";
    case ST_ASSET_CUSTOM: return "custom";
    }
    return "?";
}

static bool term_matches(const term *t, const st_asset_def *a)
{
    switch (t->m) {
    case M_LAYER:
        return !strcmp(a->layer, t->value);
    case M_KIND:
        return !strcmp(kind_name(a->kind), t->value);
    case M_TAG:
        for (size_t i = 0; i < a->n_tags; i++)
            if (!fnmatch(t->value, a->tags[i], 0))
                return true;
        return false;
    case M_NAME:
        return !fnmatch(t->value, a->key, 0) ||
               (!strchr(t->value, '.') && !fnmatch(t->value, a->name, 0));
    }
    return false;
}

/* Marks i and everything upstream (dir 0) or downstream (dir 1) of it. */
static void walk(const st_dag *d, size_t i, int dir, bool *mark, size_t *stack)
{
    size_t top = 0;
    stack[top++] = i;
    while (top) {
        size_t k = stack[--top];
        size_t n = dir ? d->n_kids[k] : d->n_deps[k];
        const size_t *next = dir ? d->kids[k] : d->deps[k];
        for (size_t j = 0; j < n; j++) {
            if (!mark[next[j]]) {
                mark[next[j]] = true;
                stack[top++] = next[j];
            }
        }
    }
}

st_rc st_select_eval(const st_select *s, const st_dag *d, bool *out, bool *out_direct,
                     st_err *err)
{
    memset(out, 0, d->n * sizeof *out);
    if (out_direct)
        memset(out_direct, 0, d->n * sizeof *out_direct);
    bool *up = st_calloc(d->n + 1, sizeof *up);
    bool *down = st_calloc(d->n + 1, sizeof *down);
    size_t *stack = st_calloc(d->n + 1, sizeof *stack);
    st_rc rc = up && down && stack ? ST_OK : st_fail(err, ST_ERR_NOMEM, "selection");
    for (size_t ti = 0; rc == ST_OK && ti < s->n; ti++) {
        const term *t = &s->terms[ti];
        bool any = false;
        memset(up, 0, d->n * sizeof *up);
        memset(down, 0, d->n * sizeof *down);
        for (size_t i = 0; i < d->n; i++) {
            if (!term_matches(t, d->a[i]))
                continue;
            any = true;
            out[i] = true;
            if (out_direct)
                out_direct[i] = true;
            if (t->ancestors && !up[i])
                walk(d, i, 0, up, stack);
            if (t->descendants && !down[i])
                walk(d, i, 1, down, stack);
        }
        for (size_t i = 0; i < d->n; i++)
            out[i] = out[i] || up[i] || down[i];
        if (!any)
            rc = st_fail(err, ST_ERR_NOTFOUND, "selection: nothing matches '%s%s%s%s%s'",
                         t->ancestors ? "+" : "",
                         t->m == M_LAYER ? "layer:" : t->m == M_TAG ? "tag:" : t->m == M_KIND ? "kind:" : "",
                         t->value, "", t->descendants ? "+" : "");
    }
    st_free(up);
    st_free(down);
    st_free(stack);
    return rc;
}

st_rc st_select_resolve(const st_dag *d, const char *select, const char *exclude, bool *out,
                        bool *out_direct, st_err *err)
{
    st_select *s = NULL;
    bool *ex = NULL;
    st_rc rc = ST_OK;
    if (select && *select) {
        rc = st_select_parse(select, &s, err);
        rc = rc ? rc : st_select_eval(s, d, out, out_direct, err);
    } else {
        for (size_t i = 0; i < d->n; i++)
            out[i] = true;
        if (out_direct)
            memset(out_direct, 0, d->n * sizeof *out_direct);
    }
    st_select_free(s);
    s = NULL;
    if (rc == ST_OK && exclude && *exclude) {
        ex = st_calloc(d->n + 1, sizeof *ex);
        rc = ex ? st_select_parse(exclude, &s, err) : st_fail(err, ST_ERR_NOMEM, "selection");
        rc = rc ? rc : st_select_eval(s, d, ex, NULL, err);
        for (size_t i = 0; rc == ST_OK && i < d->n; i++) {
            if (ex[i]) {
                out[i] = false;
                if (out_direct)
                    out_direct[i] = false;
            }
        }
    }
    st_select_free(s);
    st_free(ex);
    return rc;
}
