/*
 * prune.c - file skipping for st_delta_prune / st_delta_scan_sql: a small
 * parser for conjunctions of `column op literal` (=, !=, <, <=, >, >=, IN,
 * IS [NOT] NULL) evaluated against partition values and min/max/nullCount
 * statistics.  Anything not understood means "may match": pruning must
 * never drop a file that could hold a matching row.
 */
#include "delta/delta_int.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- tokens */

typedef enum tok_kind {
    T_IDENT, T_STRING, T_NUMBER, T_OP, T_LP, T_RP, T_COMMA,
    T_AND, T_OR, T_NOT, T_IN, T_IS, T_NULL, T_TRUE, T_FALSE, T_DATE, T_TIMESTAMP,
} tok_kind;

typedef struct tok {
    tok_kind kind;
    char *text;  /* OWNED: identifier, string content, number, operator */
} tok;

typedef struct toks {
    tok *v;
    size_t n, cap;
} toks;

static void toks_free(toks *t)
{
    for (size_t i = 0; i < t->n; i++)
        st_free(t->v[i].text);
    st_free(t->v);
}

static bool push_tok(toks *t, tok_kind k, char *text)
{
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 16;
        tok *nv = st_realloc(t->v, nc * sizeof *nv);
        if (!nv) {
            st_free(text);
            return false;
        }
        t->v = nv;
        t->cap = nc;
    }
    t->v[t->n].kind = k;
    t->v[t->n].text = text;
    t->n++;
    return true;
}

/* Returns false when the text uses anything outside the subset. */
static bool tokenize(const char *p, toks *out)
{
    while (*p) {
        if (isspace((unsigned char)*p)) {
            p++;
            continue;
        }
        if (*p == '(' || *p == ')' || *p == ',') {
            if (!push_tok(out, *p == '(' ? T_LP : *p == ')' ? T_RP : T_COMMA, NULL))
                return false;
            p++;
            continue;
        }
        if (*p == '\'' || *p == '"' || *p == '`') {
            char q = *p++;
            st_buf b;
            st_buf_init(&b, 0);
            for (;;) {
                if (!*p) {
                    st_buf_free(&b);
                    return false;
                }
                if (*p == q) {
                    if (p[1] == q) {
                        st_buf_putc(&b, q);
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                st_buf_putc(&b, *p++);
            }
            /* DATE 'x' / TIMESTAMP 'x': the string becomes the typed token's text */
            if (q == '\'' && out->n && !out->v[out->n - 1].text &&
                (out->v[out->n - 1].kind == T_DATE || out->v[out->n - 1].kind == T_TIMESTAMP)) {
                out->v[out->n - 1].text = st_buf_take(&b);
                continue;
            }
            if (!push_tok(out, q == '\'' ? T_STRING : T_IDENT, st_buf_take(&b)))
                return false;
            continue;
        }
        if (strchr("=<>!", *p)) {
            char op[3] = {*p, 0, 0};
            if ((p[1] == '=' && *p != '=') || (*p == '<' && p[1] == '>') || (*p == '=' && p[1] == '='))
                op[1] = p[1];
            p += op[1] ? 2 : 1;
            if (!strcmp(op, "!"))
                return false;
            if (!strcmp(op, "=="))
                op[1] = 0;
            if (!strcmp(op, "<>")) {
                op[0] = '!';
                op[1] = '=';
            }
            if (!push_tok(out, T_OP, st_strdup(op)))
                return false;
            continue;
        }
        if (isdigit((unsigned char)*p) || ((*p == '-' || *p == '+' || *p == '.') &&
                                           (isdigit((unsigned char)p[1]) || p[1] == '.'))) {
            const char *s = p;
            char *end;
            strtod(p, &end);
            if (end == p)
                return false;
            p = end;
            if (isalpha((unsigned char)*p) || *p == '_')
                return false;
            if (!push_tok(out, T_NUMBER, st_strndup(s, (size_t)(p - s))))
                return false;
            continue;
        }
        if (isalpha((unsigned char)*p) || *p == '_') {
            const char *s = p;
            while (isalnum((unsigned char)*p) || *p == '_')
                p++;
            size_t n = (size_t)(p - s);
            static const struct {
                const char *w;
                tok_kind k;
            } kw[] = {{"and", T_AND},   {"or", T_OR},       {"not", T_NOT},   {"in", T_IN},
                      {"is", T_IS},     {"null", T_NULL},   {"true", T_TRUE}, {"false", T_FALSE},
                      {"date", T_DATE}, {"timestamp", T_TIMESTAMP}};
            tok_kind k = T_IDENT;
            for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++)
                if (strlen(kw[i].w) == n && !strncasecmp(s, kw[i].w, n))
                    k = kw[i].k;
            /* DATE / TIMESTAMP are keywords only before a string literal */
            if (k == T_DATE || k == T_TIMESTAMP) {
                const char *q = p;
                while (isspace((unsigned char)*q))
                    q++;
                if (*q != '\'')
                    k = T_IDENT;
            }
            if (!push_tok(out, k, k == T_IDENT ? st_strndup(s, n) : NULL))
                return false;
            continue;
        }
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------- values */

typedef enum vkind { V_NONE, V_NUM, V_STR, V_INT, V_BOOL } vkind;

typedef struct val {
    vkind kind;
    long double num;   /* V_NUM */
    int64_t i;         /* V_INT: days (date) or micros (timestamps) */
    const char *s;     /* V_STR */
    bool b;
} val;

static bool parse_date(const char *s, int64_t *days, const char **rest)
{
    int y, m, d, n = 0;
    if (sscanf(s, "%d-%d-%d%n", &y, &m, &d, &n) != 3 || m < 1 || m > 12 || d < 1 || d > 31)
        return false;
    *days = st_days_from_civil(y, (unsigned)m, (unsigned)d);
    if (rest)
        *rest = s + n;
    return true;
}

/* "YYYY-MM-DD[( |T)HH:MM[:SS[.ffffff]]][Z|(+|-)HH[:MM]]" -> micros (UTC). */
static bool parse_ts(const char *s, int64_t *us)
{
    int64_t days;
    const char *p;
    if (!parse_date(s, &days, &p))
        return false;
    int64_t t = days * 86400000000LL;
    if (*p == ' ' || *p == 'T' || *p == 't') {
        int hh, mm, ss = 0, n = 0;
        if (sscanf(p + 1, "%d:%d%n", &hh, &mm, &n) != 2)
            return false;
        p += 1 + n;
        if (*p == ':') {
            if (sscanf(p + 1, "%d%n", &ss, &n) != 1)
                return false;
            p += 1 + n;
        }
        int64_t frac = 0;
        if (*p == '.') {
            p++;
            int digits = 0;
            while (isdigit((unsigned char)*p)) {
                if (digits < 6) {
                    frac = frac * 10 + (*p - '0');
                    digits++;
                }
                p++;
            }
            while (digits++ < 6)
                frac *= 10;
        }
        t += ((int64_t)hh * 3600 + mm * 60 + ss) * 1000000LL + frac;
    }
    while (*p == ' ')
        p++;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int oh = 0, om = 0, n = 0;
        if (sscanf(p + 1, "%2d%n", &oh, &n) != 1)
            return false;
        p += 1 + n;
        if (*p == ':')
            p++;
        if (isdigit((unsigned char)*p)) {
            sscanf(p, "%2d%n", &om, &n);
            p += n;
        }
        t -= sign * ((int64_t)oh * 3600 + om * 60) * 1000000LL;
    }
    if (*p)
        return false;
    *us = t;
    return true;
}

/* Converts a text form (partition value, stats JSON value) to a comparable
 * value of column type t. */
static val from_text(const st_dtype *t, const char *s)
{
    val v = {0};
    if (!s)
        return v;
    char *end;
    switch (t->kind) {
    case ST_DT_BYTE:
    case ST_DT_SHORT:
    case ST_DT_INTEGER:
    case ST_DT_LONG:
    case ST_DT_FLOAT:
    case ST_DT_DOUBLE:
    case ST_DT_DECIMAL:
        v.num = strtold(s, &end);
        if (end != s && !*end)
            v.kind = V_NUM;
        break;
    case ST_DT_STRING:
        v.kind = V_STR;
        v.s = s;
        break;
    case ST_DT_DATE:
        if (parse_date(s, &v.i, (const char **)&end) && !*end)
            v.kind = V_INT;
        break;
    case ST_DT_TIMESTAMP:
    case ST_DT_TIMESTAMP_NTZ:
        if (parse_ts(s, &v.i))
            v.kind = V_INT;
        break;
    case ST_DT_BOOLEAN:
        if (!strcasecmp(s, "true") || !strcasecmp(s, "false")) {
            v.kind = V_BOOL;
            v.b = !strcasecmp(s, "true");
        }
        break;
    default:
        break;
    }
    return v;
}

/* Literal token(s) as a value of column type t. */
static val from_literal(const st_dtype *t, const tok *k)
{
    val v = {0};
    switch (k->kind) {
    case T_NUMBER:
        if (t->kind >= ST_DT_BYTE && t->kind <= ST_DT_DECIMAL)
            return from_text(t, k->text);
        return v;
    case T_STRING:
    case T_DATE:
    case T_TIMESTAMP:
        return from_text(t, k->text);
    case T_TRUE:
    case T_FALSE:
        if (t->kind == ST_DT_BOOLEAN) {
            v.kind = V_BOOL;
            v.b = k->kind == T_TRUE;
        }
        return v;
    default:
        return v;
    }
}

/* -1, 0, 1, or 2 when unknown (never guess: 2 keeps the file). */
static int cmpv(val a, val b)
{
    if (a.kind == V_NONE || a.kind != b.kind)
        return 2;
    switch (a.kind) {
    case V_NUM: {
        if (isnan((double)a.num) || isnan((double)b.num))
            return 2;
        long double diff = fabsl(a.num - b.num);
        long double scale = fabsl(a.num) > fabsl(b.num) ? fabsl(a.num) : fabsl(b.num);
        if (diff <= scale * 1e-12L)
            return a.num == b.num ? 0 : 2; /* too close to call after rounding */
        return a.num < b.num ? -1 : 1;
    }
    case V_INT: return a.i < b.i ? -1 : a.i > b.i;
    case V_STR: {
        int c = strcmp(a.s, b.s);
        return c < 0 ? -1 : c > 0;
    }
    case V_BOOL: return a.b == b.b ? 0 : a.b ? 1 : -1;
    default: return 2;
    }
}

/* ---------------------------------------------------------------- terms */

typedef enum term_op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_ISNULL, OP_NOTNULL } term_op;

typedef struct term {
    const st_dfield *field;
    bool is_part;
    term_op op;
    const tok *lits;   /* op literal(s) */
    size_t n_lits;
    bool lit_null;     /* comparison with NULL: never true */
} term;

static term_op flip(term_op op)
{
    switch (op) {
    case OP_LT: return OP_GT;
    case OP_LE: return OP_GE;
    case OP_GT: return OP_LT;
    case OP_GE: return OP_LE;
    default: return op;
    }
}

static bool op_of(const char *s, term_op *op)
{
    if (!strcmp(s, "="))
        *op = OP_EQ;
    else if (!strcmp(s, "!="))
        *op = OP_NE;
    else if (!strcmp(s, "<"))
        *op = OP_LT;
    else if (!strcmp(s, "<="))
        *op = OP_LE;
    else if (!strcmp(s, ">"))
        *op = OP_GT;
    else if (!strcmp(s, ">="))
        *op = OP_GE;
    else
        return false;
    return true;
}

static bool is_lit(const tok *k)
{
    return k->kind == T_STRING || k->kind == T_NUMBER || k->kind == T_TRUE || k->kind == T_FALSE ||
           k->kind == T_DATE || k->kind == T_TIMESTAMP || k->kind == T_NULL;
}

/* Length of a literal at k (DATE 'x' is one token already). */
static bool parse_term(const st_delta_snapshot *s, const tok *k, size_t n, term *t)
{
    memset(t, 0, sizeof *t);
    if (n >= 2 && k[0].kind == T_LP && k[n - 1].kind == T_RP) {
        /* ( term ) */
        int depth = 0;
        for (size_t i = 0; i < n; i++) {
            depth += k[i].kind == T_LP ? 1 : k[i].kind == T_RP ? -1 : 0;
            if (depth == 0 && i + 1 < n)
                return false;
        }
        return parse_term(s, k + 1, n - 2, t);
    }
    const tok *id = NULL;
    if (n == 3 && k[0].kind == T_IDENT && k[1].kind == T_OP && is_lit(&k[2])) {
        id = &k[0];
        if (!op_of(k[1].text, &t->op))
            return false;
        t->lits = &k[2];
        t->n_lits = 1;
    } else if (n == 3 && is_lit(&k[0]) && k[1].kind == T_OP && k[2].kind == T_IDENT) {
        id = &k[2];
        if (!op_of(k[1].text, &t->op))
            return false;
        t->op = flip(t->op);
        t->lits = &k[0];
        t->n_lits = 1;
    } else if (n == 3 && k[0].kind == T_IDENT && k[1].kind == T_IS && k[2].kind == T_NULL) {
        id = &k[0];
        t->op = OP_ISNULL;
    } else if (n == 4 && k[0].kind == T_IDENT && k[1].kind == T_IS && k[2].kind == T_NOT &&
               k[3].kind == T_NULL) {
        id = &k[0];
        t->op = OP_NOTNULL;
    } else if (n >= 5 && k[0].kind == T_IDENT && k[1].kind == T_IN && k[2].kind == T_LP &&
               k[n - 1].kind == T_RP) {
        id = &k[0];
        t->op = OP_IN;
        /* lit , lit , ... */
        for (size_t i = 3; i < n - 1; i++) {
            bool want_lit = (i - 3) % 2 == 0;
            if (want_lit ? !is_lit(&k[i]) : k[i].kind != T_COMMA)
                return false;
        }
        if ((n - 4) % 2 == 0)
            return false;
        t->lits = &k[3];
        t->n_lits = n - 4; /* includes commas; stepped by 2 */
    } else {
        return false;
    }
    t->field = st_delta_schema_find(s->metadata.schema, id->text);
    if (!t->field)
        return false;
    for (size_t i = 0; i < s->metadata.n_partition_columns; i++)
        if (!strcasecmp(s->metadata.partition_columns[i], t->field->name))
            t->is_part = true;
    if (t->n_lits == 1 && t->lits[0].kind == T_NULL)
        t->lit_null = true;
    return true;
}

/* Does a single known value v (NULL = SQL NULL) satisfy the term?
 * 1 yes, 0 no, 2 unknown. */
static int eval_value(const term *t, const char *text)
{
    bool is_null = !text || !text[0];
    if (t->op == OP_ISNULL)
        return is_null;
    if (t->op == OP_NOTNULL)
        return !is_null;
    if (is_null || t->lit_null)
        return 0;
    val v = from_text(&t->field->type, text);
    if (t->op == OP_IN) {
        int res = 0;
        for (size_t i = 0; i < t->n_lits; i += 2) {
            if (t->lits[i].kind == T_NULL)
                continue;
            int c = cmpv(v, from_literal(&t->field->type, &t->lits[i]));
            if (c == 0)
                return 1;
            if (c == 2)
                res = 2;
        }
        return res;
    }
    int c = cmpv(v, from_literal(&t->field->type, &t->lits[0]));
    if (c == 2)
        return 2;
    switch (t->op) {
    case OP_EQ: return c == 0;
    case OP_NE: return c != 0;
    case OP_LT: return c < 0;
    case OP_LE: return c <= 0;
    case OP_GT: return c > 0;
    case OP_GE: return c >= 0;
    default: return 2;
    }
}

static const char *part_text(const st_delta_file *f, const st_dfield *fld, const char *cm)
{
    const char *phys = st_delta_field_phys(fld, cm);
    for (size_t i = 0; i < f->n_part; i++)
        if (!strcmp(f->part[i].key, phys) || !strcasecmp(f->part[i].key, fld->name))
            return f->part[i].value;
    return NULL;
}

/* Stats value text of a JSON scalar, in buf. */
static const char *stat_text(const json_t *v, char *buf, size_t n)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    if (json_is_real(v)) {
        snprintf(buf, n, "%.17g", json_real_value(v));
        return buf;
    }
    if (json_is_boolean(v))
        return json_is_true(v) ? "true" : "false";
    return NULL;
}

/* 0 when the file's stats prove no row matches, else 1. */
static int eval_stats(const term *t, const st_delta_file *f, json_t *stats, const char *cm)
{
    if (!stats || t->field->type.kind == ST_DT_BINARY || t->field->type.kind == ST_DT_STRUCT ||
        t->field->type.kind == ST_DT_ARRAY || t->field->type.kind == ST_DT_MAP)
        return 1;
    const char *key = st_delta_field_phys(t->field, cm);
    json_t *nc = json_object_get(json_object_get(stats, "nullCount"), key);
    json_t *nr = json_object_get(stats, "numRecords");
    if (t->op == OP_ISNULL)
        return !(json_is_integer(nc) && json_integer_value(nc) == 0);
    if (t->op == OP_NOTNULL)
        return !(json_is_integer(nc) && json_is_integer(nr) &&
                 json_integer_value(nc) == json_integer_value(nr) && !f->has_dv);
    if (t->lit_null)
        return 0;
    char b1[64], b2[64];
    const char *smin = stat_text(json_object_get(json_object_get(stats, "minValues"), key), b1, sizeof b1);
    const char *smax = stat_text(json_object_get(json_object_get(stats, "maxValues"), key), b2, sizeof b2);
    const st_dtype *ty = &t->field->type;
    val mn = from_text(ty, smin), mx = from_text(ty, smax);
    /* timestamps in stats are truncated to milliseconds: widen max */
    if (mx.kind == V_INT && (ty->kind == ST_DT_TIMESTAMP || ty->kind == ST_DT_TIMESTAMP_NTZ))
        mx.i += 999;
    /* long strings may be truncated prefixes: the max is not a bound */
    if (ty->kind == ST_DT_STRING && smax && strlen(smax) >= 32)
        mx.kind = V_NONE;
    int n_lit = t->op == OP_IN ? (int)(t->n_lits + 1) / 2 : 1;
    for (int i = 0; i < n_lit; i++) {
        const tok *lk = &t->lits[t->op == OP_IN ? i * 2 : 0];
        if (lk->kind == T_NULL)
            continue;
        val lit = from_literal(ty, lk);
        if (lit.kind == V_NONE)
            return 1;
        int cmin = cmpv(lit, mn), cmax = cmpv(lit, mx);
        bool may;
        switch (t->op) {
        case OP_EQ:
        case OP_IN:
            may = !((cmin != 2 && cmin < 0) || (cmax != 2 && cmax > 0));
            break;
        case OP_LT: may = !(cmin != 2 && cmin <= 0); break;  /* need min < lit */
        case OP_LE: may = !(cmin != 2 && cmin < 0); break;
        case OP_GT: may = !(cmax != 2 && cmax >= 0); break;  /* need max > lit */
        case OP_GE: may = !(cmax != 2 && cmax > 0); break;
        default: may = true; break;
        }
        if (may)
            return 1;
    }
    return 0;
}

st_rc st_delta_prune(const st_delta_snapshot *s, const char *predicate, st_delta_file ***out,
                     size_t *n_out, st_err *err)
{
    st_delta_file **res = st_calloc(s->n_files ? s->n_files : 1, sizeof *res);
    if (!res)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    size_t n = 0;
    toks tk = {0};
    term *terms = NULL;
    size_t n_terms = 0;
    bool usable = predicate && predicate[0] && s->metadata.schema && tokenize(predicate, &tk);
    if (usable) {
        /* split on top-level AND; a top-level OR disables pruning */
        terms = st_calloc(tk.n + 1, sizeof *terms);
        size_t start = 0;
        int depth = 0;
        for (size_t i = 0; usable && i <= tk.n; i++) {
            if (i < tk.n) {
                depth += tk.v[i].kind == T_LP ? 1 : tk.v[i].kind == T_RP ? -1 : 0;
                if (depth == 0 && tk.v[i].kind == T_OR)
                    usable = false;
                if (depth != 0 || tk.v[i].kind != T_AND)
                    continue;
            }
            /* "a BETWEEN" is not in the subset; unknown terms just don't prune */
            if (terms && i > start && parse_term(s, tk.v + start, i - start, &terms[n_terms]))
                n_terms++;
            start = i + 1;
        }
        if (!terms)
            usable = false;
    }
    const char *cm = st_delta_cm_mode(s);
    for (size_t fi = 0; fi < s->n_files; fi++) {
        st_delta_file *f = s->files[fi];
        bool keep = true;
        json_t *stats = NULL;
        bool stats_loaded = false;
        for (size_t ti = 0; usable && keep && ti < n_terms; ti++) {
            const term *t = &terms[ti];
            if (t->is_part) {
                if (eval_value(t, part_text(f, t->field, cm)) == 0)
                    keep = false;
                continue;
            }
            if (!stats_loaded) {
                stats_loaded = true;
                if (f->stats)
                    stats = json_loads(f->stats, 0, NULL);
            }
            if (eval_stats(t, f, stats, cm) == 0)
                keep = false;
        }
        json_decref(stats);
        if (keep)
            res[n++] = f;
    }
    toks_free(&tk);
    st_free(terms);
    *out = res;
    *n_out = n;
    return ST_OK;
}
