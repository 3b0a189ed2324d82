/*
 * schema.c - Delta table schemas: Spark schema JSON <-> st_delta_schema,
 * a compact DDL parser, and the mapping between Delta types and DuckDB
 * types (SQL text for casts, logical types from query results).
 *
 * The schema tree is allocated with st_malloc and owned by the caller;
 * snapshot.c ties the table schema to the snapshot's arena.
 */
#include "delta/delta_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- tree helpers */

static void field_clear(st_dfield *f)
{
    st_free(f->name);
    st_free(f->metadata_json);
    st_free(f->physical_name);
    st_delta_dtype_clear(&f->type);
}

void st_delta_dtype_clear(st_dtype *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_fields; i++)
        field_clear(&t->fields[i]);
    st_free(t->fields);
    if (t->elem) {
        st_delta_dtype_clear(t->elem);
        st_free(t->elem);
    }
    if (t->value) {
        st_delta_dtype_clear(t->value);
        st_free(t->value);
    }
    memset(t, 0, sizeof *t);
}

static st_rc field_copy(const st_dfield *src, st_dfield *dst)
{
    memset(dst, 0, sizeof *dst);
    dst->name = st_strdup(src->name);
    dst->metadata_json = st_strdup(src->metadata_json ? src->metadata_json : "{}");
    dst->physical_name = st_strdup(src->physical_name);
    dst->nullable = src->nullable;
    dst->cm_id = src->cm_id;
    if (!dst->name || !dst->metadata_json || (src->physical_name && !dst->physical_name))
        return ST_ERR_NOMEM;
    return st_delta_dtype_copy(&src->type, &dst->type);
}

st_rc st_delta_dtype_copy(const st_dtype *src, st_dtype *dst)
{
    memset(dst, 0, sizeof *dst);
    dst->kind = src->kind;
    dst->precision = src->precision;
    dst->scale = src->scale;
    dst->contains_null = src->contains_null;
    dst->value_contains_null = src->value_contains_null;
    if (src->n_fields) {
        dst->fields = st_calloc(src->n_fields, sizeof *dst->fields);
        if (!dst->fields)
            return ST_ERR_NOMEM;
        dst->n_fields = src->n_fields;
        for (size_t i = 0; i < src->n_fields; i++)
            if (field_copy(&src->fields[i], &dst->fields[i]))
                return ST_ERR_NOMEM;
    }
    if (src->elem) {
        dst->elem = st_calloc(1, sizeof *dst->elem);
        if (!dst->elem || st_delta_dtype_copy(src->elem, dst->elem))
            return ST_ERR_NOMEM;
    }
    if (src->value) {
        dst->value = st_calloc(1, sizeof *dst->value);
        if (!dst->value || st_delta_dtype_copy(src->value, dst->value))
            return ST_ERR_NOMEM;
    }
    return ST_OK;
}

void st_delta_schema_free(st_delta_schema *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_fields; i++)
        field_clear(&s->fields[i]);
    st_free(s->fields);
    st_free(s);
}

st_delta_schema *st_delta_schema_copy(const st_delta_schema *s)
{
    if (!s)
        return NULL;
    st_delta_schema *d = st_calloc(1, sizeof *d);
    if (!d)
        return NULL;
    if (s->n_fields) {
        d->fields = st_calloc(s->n_fields, sizeof *d->fields);
        if (!d->fields) {
            st_free(d);
            return NULL;
        }
        d->n_fields = s->n_fields;
        for (size_t i = 0; i < s->n_fields; i++) {
            if (field_copy(&s->fields[i], &d->fields[i])) {
                st_delta_schema_free(d);
                return NULL;
            }
        }
    }
    return d;
}

const st_dfield *st_delta_schema_find(const st_delta_schema *s, const char *name)
{
    if (!s || !name)
        return NULL;
    for (size_t i = 0; i < s->n_fields; i++)
        if (!strcmp(s->fields[i].name, name))
            return &s->fields[i];
    /* Spark resolves column names case-insensitively */
    for (size_t i = 0; i < s->n_fields; i++)
        if (!strcasecmp(s->fields[i].name, name))
            return &s->fields[i];
    return NULL;
}

const char *st_delta_field_phys(const st_dfield *f, const char *cm_mode)
{
    if (cm_mode && strcmp(cm_mode, "none") && f->physical_name && f->physical_name[0])
        return f->physical_name;
    return f->name;
}

/* ---------------------------------------------------------------- JSON -> tree */

static const struct {
    const char *name;
    st_dtype_kind kind;
} g_prims[] = {
    {"boolean", ST_DT_BOOLEAN}, {"byte", ST_DT_BYTE},       {"short", ST_DT_SHORT},
    {"integer", ST_DT_INTEGER}, {"long", ST_DT_LONG},       {"float", ST_DT_FLOAT},
    {"double", ST_DT_DOUBLE},   {"string", ST_DT_STRING},   {"binary", ST_DT_BINARY},
    {"date", ST_DT_DATE},       {"timestamp", ST_DT_TIMESTAMP},
    {"timestamp_ntz", ST_DT_TIMESTAMP_NTZ},
};

/* Parses "decimal", "decimal(p)" or "decimal(p,s)" with optional blanks. */
static bool parse_decimal(const char *s, int *p, int *sc)
{
    if (strncasecmp(s, "decimal", 7))
        return false;
    s += 7;
    while (isspace((unsigned char)*s))
        s++;
    if (!*s) {
        *p = 10;
        *sc = 0;
        return true;
    }
    if (*s != '(')
        return false;
    char *end;
    long pp = strtol(s + 1, &end, 10);
    long ss = 0;
    while (isspace((unsigned char)*end))
        end++;
    if (*end == ',') {
        ss = strtol(end + 1, &end, 10);
        while (isspace((unsigned char)*end))
            end++;
    }
    if (*end != ')' || end[1] || pp < 1 || pp > 38 || ss < 0 || ss > pp)
        return false;
    *p = (int)pp;
    *sc = (int)ss;
    return true;
}

static st_rc prim_from_name(const char *s, st_dtype *out, st_err *err)
{
    for (size_t i = 0; i < sizeof g_prims / sizeof g_prims[0]; i++) {
        if (!strcmp(s, g_prims[i].name)) {
            out->kind = g_prims[i].kind;
            return ST_OK;
        }
    }
    if (parse_decimal(s, &out->precision, &out->scale)) {
        out->kind = ST_DT_DECIMAL;
        return ST_OK;
    }
    return st_fail(err, ST_ERR_UNSUPPORTED, "unsupported Delta type \"%s\"", s);
}

static st_rc fields_from_json(const json_t *arr, st_dfield **out, size_t *n_out, st_err *err);

st_rc st_delta_dtype_from_json(const json_t *j, st_dtype *out, st_err *err)
{
    memset(out, 0, sizeof *out);
    if (json_is_string(j))
        return prim_from_name(json_string_value(j), out, err);
    if (!json_is_object(j))
        return st_fail(err, ST_ERR_PARSE, "schema: type must be a string or an object");
    const char *kind = json_string_value(json_object_get(j, "type"));
    if (!kind)
        return st_fail(err, ST_ERR_PARSE, "schema: type object without \"type\"");
    st_rc rc;
    if (!strcmp(kind, "struct")) {
        out->kind = ST_DT_STRUCT;
        return fields_from_json(json_object_get(j, "fields"), &out->fields, &out->n_fields, err);
    }
    if (!strcmp(kind, "array")) {
        out->kind = ST_DT_ARRAY;
        out->contains_null = !json_is_false(json_object_get(j, "containsNull"));
        out->elem = st_calloc(1, sizeof *out->elem);
        if (!out->elem)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        const json_t *et = json_object_get(j, "elementType");
        if (!et)
            return st_fail(err, ST_ERR_PARSE, "schema: array without elementType");
        rc = st_delta_dtype_from_json(et, out->elem, err);
        return rc;
    }
    if (!strcmp(kind, "map")) {
        out->kind = ST_DT_MAP;
        out->value_contains_null = !json_is_false(json_object_get(j, "valueContainsNull"));
        out->elem = st_calloc(1, sizeof *out->elem);
        out->value = st_calloc(1, sizeof *out->value);
        if (!out->elem || !out->value)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        const json_t *kt = json_object_get(j, "keyType"), *vt = json_object_get(j, "valueType");
        if (!kt || !vt)
            return st_fail(err, ST_ERR_PARSE, "schema: map without keyType/valueType");
        rc = st_delta_dtype_from_json(kt, out->elem, err);
        return rc ? rc : st_delta_dtype_from_json(vt, out->value, err);
    }
    return prim_from_name(kind, out, err);
}

static st_rc fields_from_json(const json_t *arr, st_dfield **out, size_t *n_out, st_err *err)
{
    if (!json_is_array(arr))
        return st_fail(err, ST_ERR_PARSE, "schema: struct without a \"fields\" array");
    size_t n = json_array_size(arr);
    *out = st_calloc(n ? n : 1, sizeof **out);
    if (!*out)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    *n_out = n;
    for (size_t i = 0; i < n; i++) {
        const json_t *fj = json_array_get(arr, i);
        st_dfield *f = &(*out)[i];
        const char *name = json_string_value(json_object_get(fj, "name"));
        if (!json_is_object(fj) || !name)
            return st_fail(err, ST_ERR_PARSE, "schema: field %zu has no name", i);
        f->name = st_strdup(name);
        f->nullable = !json_is_false(json_object_get(fj, "nullable"));
        const json_t *md = json_object_get(fj, "metadata");
        if (json_is_object(md)) {
            f->metadata_json = json_dumps(md, JSON_COMPACT | JSON_PRESERVE_ORDER);
            /* json_dumps uses malloc; move it to st_malloc memory */
            char *m = st_strdup(f->metadata_json);
            free(f->metadata_json);
            f->metadata_json = m;
            const json_t *id = json_object_get(md, "delta.columnMapping.id");
            if (json_is_integer(id))
                f->cm_id = json_integer_value(id);
            const char *pn = json_string_value(json_object_get(md, "delta.columnMapping.physicalName"));
            if (pn)
                f->physical_name = st_strdup(pn);
        } else {
            f->metadata_json = st_strdup("{}");
        }
        if (!f->name || !f->metadata_json)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        const json_t *tj = json_object_get(fj, "type");
        if (!tj)
            return st_fail(err, ST_ERR_PARSE, "schema: field \"%s\" has no type", name);
        st_rc rc = st_delta_dtype_from_json(tj, &f->type, err);
        if (rc) {
            st_err_ctx(err, "field \"%s\"", name);
            return rc;
        }
    }
    return ST_OK;
}

st_rc st_delta_schema_parse(const char *json, st_delta_schema **out, st_err *err)
{
    if (!json)
        return st_fail(err, ST_ERR_INVALID, "schema: no schema string");
    json_error_t je;
    json_t *root = json_loads(json, JSON_DECODE_ANY, &je);
    if (!root)
        return st_fail(err, ST_ERR_PARSE, "schema: invalid JSON at line %d column %d: %s", je.line,
                       je.column, je.text);
    st_delta_schema *s = st_calloc(1, sizeof *s);
    st_rc rc;
    if (!s) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto fail;
    }
    const char *kind = json_string_value(json_object_get(root, "type"));
    if (!kind || strcmp(kind, "struct")) {
        rc = st_fail(err, ST_ERR_PARSE, "schema: top level must be {\"type\":\"struct\",...}");
        goto fail;
    }
    rc = fields_from_json(json_object_get(root, "fields"), &s->fields, &s->n_fields, err);
    if (rc)
        goto fail;
    json_decref(root);
    *out = s;
    return ST_OK;
fail:
    json_decref(root);
    st_delta_schema_free(s);
    return rc;
}

/* ---------------------------------------------------------------- tree -> JSON */

static const char *prim_name(st_dtype_kind k)
{
    for (size_t i = 0; i < sizeof g_prims / sizeof g_prims[0]; i++)
        if (g_prims[i].kind == k)
            return g_prims[i].name;
    return NULL;
}

static st_rc fields_to_json(const st_dfield *fields, size_t n, st_buf *b)
{
    st_rc rc = st_buf_puts(b, "{\"type\":\"struct\",\"fields\":[");
    for (size_t i = 0; rc == ST_OK && i < n; i++) {
        const st_dfield *f = &fields[i];
        rc = st_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        rc = rc ? rc : st_buf_json_str(b, f->name);
        rc = rc ? rc : st_buf_puts(b, ",\"type\":");
        rc = rc ? rc : st_delta_dtype_to_json(&f->type, b);
        rc = rc ? rc : st_buf_printf(b, ",\"nullable\":%s,\"metadata\":%s}",
                                     f->nullable ? "true" : "false",
                                     f->metadata_json && f->metadata_json[0] ? f->metadata_json : "{}");
    }
    return rc ? rc : st_buf_puts(b, "]}");
}

st_rc st_delta_dtype_to_json(const st_dtype *t, st_buf *b)
{
    st_rc rc;
    switch (t->kind) {
    case ST_DT_DECIMAL:
        return st_buf_printf(b, "\"decimal(%d,%d)\"", t->precision, t->scale);
    case ST_DT_STRUCT:
        return fields_to_json(t->fields, t->n_fields, b);
    case ST_DT_ARRAY:
        rc = st_buf_puts(b, "{\"type\":\"array\",\"elementType\":");
        rc = rc ? rc : st_delta_dtype_to_json(t->elem, b);
        return rc ? rc : st_buf_printf(b, ",\"containsNull\":%s}", t->contains_null ? "true" : "false");
    case ST_DT_MAP:
        rc = st_buf_puts(b, "{\"type\":\"map\",\"keyType\":");
        rc = rc ? rc : st_delta_dtype_to_json(t->elem, b);
        rc = rc ? rc : st_buf_puts(b, ",\"valueType\":");
        rc = rc ? rc : st_delta_dtype_to_json(t->value, b);
        return rc ? rc : st_buf_printf(b, ",\"valueContainsNull\":%s}",
                                       t->value_contains_null ? "true" : "false");
    default:
        return st_buf_printf(b, "\"%s\"", prim_name(t->kind));
    }
}

char *st_delta_schema_to_json(const st_delta_schema *s)
{
    st_buf b;
    st_buf_init(&b, 0);
    if (fields_to_json(s->fields, s->n_fields, &b)) {
        st_buf_free(&b);
        return NULL;
    }
    return st_buf_take(&b);
}

/* ---------------------------------------------------------------- SQL and DDL text */

static st_rc type_sql(const st_dtype *t, bool physical, st_buf *b)
{
    st_rc rc;
    switch (t->kind) {
    case ST_DT_BOOLEAN: return st_buf_puts(b, "BOOLEAN");
    case ST_DT_BYTE: return st_buf_puts(b, "TINYINT");
    case ST_DT_SHORT: return st_buf_puts(b, "SMALLINT");
    case ST_DT_INTEGER: return st_buf_puts(b, "INTEGER");
    case ST_DT_LONG: return st_buf_puts(b, "BIGINT");
    case ST_DT_FLOAT: return st_buf_puts(b, "FLOAT");
    case ST_DT_DOUBLE: return st_buf_puts(b, "DOUBLE");
    case ST_DT_DECIMAL: return st_buf_printf(b, "DECIMAL(%d,%d)", t->precision, t->scale);
    case ST_DT_STRING: return st_buf_puts(b, "VARCHAR");
    case ST_DT_BINARY: return st_buf_puts(b, "BLOB");
    case ST_DT_DATE: return st_buf_puts(b, "DATE");
    case ST_DT_TIMESTAMP: return st_buf_puts(b, "TIMESTAMPTZ");
    case ST_DT_TIMESTAMP_NTZ: return st_buf_puts(b, "TIMESTAMP");
    case ST_DT_STRUCT:
        rc = st_buf_puts(b, "STRUCT(");
        for (size_t i = 0; rc == ST_OK && i < t->n_fields; i++) {
            const st_dfield *f = &t->fields[i];
            if (i)
                rc = st_buf_puts(b, ", ");
            rc = rc ? rc : st_buf_sql_ident(b, physical ? st_delta_field_phys(f, "name") : f->name);
            rc = rc ? rc : st_buf_putc(b, ' ');
            rc = rc ? rc : type_sql(&f->type, physical, b);
        }
        return rc ? rc : st_buf_putc(b, ')');
    case ST_DT_ARRAY:
        rc = type_sql(t->elem, physical, b);
        return rc ? rc : st_buf_puts(b, "[]");
    case ST_DT_MAP:
        rc = st_buf_puts(b, "MAP(");
        rc = rc ? rc : type_sql(t->elem, physical, b);
        rc = rc ? rc : st_buf_puts(b, ", ");
        rc = rc ? rc : type_sql(t->value, physical, b);
        return rc ? rc : st_buf_putc(b, ')');
    }
    return ST_ERR_INVALID;
}

char *st_delta_type_sql_ex(const st_dtype *t, bool physical)
{
    st_buf b;
    st_buf_init(&b, 0);
    if (type_sql(t, physical, &b)) {
        st_buf_free(&b);
        return NULL;
    }
    return st_buf_take(&b);
}

char *st_delta_type_sql(const st_dtype *t) { return st_delta_type_sql_ex(t, false); }

static bool plain_ident(const char *s)
{
    if (!*s || isdigit((unsigned char)*s))
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

static st_rc type_ddl(const st_dtype *t, st_buf *b)
{
    st_rc rc;
    switch (t->kind) {
    case ST_DT_DECIMAL: return st_buf_printf(b, "decimal(%d,%d)", t->precision, t->scale);
    case ST_DT_STRUCT:
        rc = st_buf_puts(b, "struct<");
        for (size_t i = 0; rc == ST_OK && i < t->n_fields; i++) {
            const st_dfield *f = &t->fields[i];
            if (i)
                rc = st_buf_putc(b, ',');
            if (plain_ident(f->name)) {
                rc = rc ? rc : st_buf_puts(b, f->name);
            } else {
                rc = rc ? rc : st_buf_putc(b, '`');
                for (const char *p = f->name; rc == ST_OK && *p; p++)
                    rc = *p == '`' ? st_buf_puts(b, "``") : st_buf_putc(b, *p);
                rc = rc ? rc : st_buf_putc(b, '`');
            }
            rc = rc ? rc : st_buf_putc(b, ':');
            rc = rc ? rc : type_ddl(&f->type, b);
            if (rc == ST_OK && !f->nullable)
                rc = st_buf_puts(b, " not null");
        }
        return rc ? rc : st_buf_putc(b, '>');
    case ST_DT_ARRAY:
        rc = st_buf_puts(b, "array<");
        rc = rc ? rc : type_ddl(t->elem, b);
        return rc ? rc : st_buf_putc(b, '>');
    case ST_DT_MAP:
        rc = st_buf_puts(b, "map<");
        rc = rc ? rc : type_ddl(t->elem, b);
        rc = rc ? rc : st_buf_putc(b, ',');
        rc = rc ? rc : type_ddl(t->value, b);
        return rc ? rc : st_buf_putc(b, '>');
    default:
        return st_buf_puts(b, prim_name(t->kind));
    }
}

char *st_delta_type_ddl(const st_dtype *t)
{
    st_buf b;
    st_buf_init(&b, 0);
    if (type_ddl(t, &b)) {
        st_buf_free(&b);
        return NULL;
    }
    return st_buf_take(&b);
}

/* ---------------------------------------------------------------- DDL parser */

typedef struct ddl {
    const char *src;
    const char *p;
    st_err *err;
} ddl;

static void ddl_ws(ddl *d)
{
    while (isspace((unsigned char)*d->p))
        d->p++;
}

static st_rc ddl_fail(ddl *d, const char *what)
{
    return st_fail(d->err, ST_ERR_PARSE, "schema DDL: %s at offset %d in \"%.80s\"", what,
                   (int)(d->p - d->src), d->src);
}

/* An identifier: bare word, `quoted` or "quoted".  OWNED *out. */
static st_rc ddl_ident(ddl *d, char **out)
{
    ddl_ws(d);
    char q = *d->p;
    if (q == '`' || q == '"') {
        st_buf b;
        st_buf_init(&b, 0);
        d->p++;
        for (;;) {
            if (!*d->p) {
                st_buf_free(&b);
                return ddl_fail(d, "unterminated quoted name");
            }
            if (*d->p == q) {
                if (d->p[1] == q) {
                    st_buf_putc(&b, q);
                    d->p += 2;
                    continue;
                }
                d->p++;
                break;
            }
            st_buf_putc(&b, *d->p++);
        }
        if (b.len == 0) {
            st_buf_free(&b);
            return ddl_fail(d, "empty column name");
        }
        *out = st_buf_take(&b);
        return ST_OK;
    }
    const char *s = d->p;
    while (isalnum((unsigned char)*d->p) || *d->p == '_' || (unsigned char)*d->p >= 0x80)
        d->p++;
    if (d->p == s)
        return ddl_fail(d, "expected a name");
    *out = st_strndup(s, (size_t)(d->p - s));
    return *out ? ST_OK : st_fail(d->err, ST_ERR_NOMEM, "out of memory");
}

static bool ddl_word(ddl *d, const char *w)
{
    ddl_ws(d);
    size_t n = strlen(w);
    if (strncasecmp(d->p, w, n) || isalnum((unsigned char)d->p[n]) || d->p[n] == '_')
        return false;
    d->p += n;
    return true;
}

static st_rc ddl_type(ddl *d, st_dtype *t);

static st_rc ddl_struct_fields(ddl *d, st_dtype *t, char close)
{
    size_t cap = 0;
    for (;;) {
        ddl_ws(d);
        if (close && *d->p == close) {
            d->p++;
            return ST_OK;
        }
        if (t->n_fields == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            st_dfield *nf = st_realloc(t->fields, ncap * sizeof *nf);
            if (!nf)
                return st_fail(d->err, ST_ERR_NOMEM, "out of memory");
            memset(nf + cap, 0, (ncap - cap) * sizeof *nf);
            t->fields = nf;
            cap = ncap;
        }
        st_dfield *f = &t->fields[t->n_fields++];
        f->nullable = true;
        f->metadata_json = st_strdup("{}");
        st_rc rc = ddl_ident(d, &f->name);
        if (rc)
            return rc;
        for (size_t i = 0; i + 1 < t->n_fields; i++)
            if (!strcasecmp(t->fields[i].name, f->name))
                return ddl_fail(d, "duplicate column name");
        ddl_ws(d);
        if (close && *d->p == ':')
            d->p++;
        rc = ddl_type(d, &f->type);
        if (rc)
            return rc;
        if (ddl_word(d, "not")) {
            if (!ddl_word(d, "null"))
                return ddl_fail(d, "expected NULL after NOT");
            f->nullable = false;
        } else if (ddl_word(d, "null")) {
            f->nullable = true;
        }
        ddl_ws(d);
        if (*d->p == ',') {
            d->p++;
            continue;
        }
        if (close && *d->p == close) {
            d->p++;
            return ST_OK;
        }
        if (!close && !*d->p)
            return ST_OK;
        return ddl_fail(d, close ? "expected ',' or '>'" : "expected ','");
    }
}

static st_rc ddl_type(ddl *d, st_dtype *t)
{
    static const struct {
        const char *w;
        st_dtype_kind k;
    } words[] = {
        {"boolean", ST_DT_BOOLEAN}, {"bool", ST_DT_BOOLEAN},     {"tinyint", ST_DT_BYTE},
        {"byte", ST_DT_BYTE},       {"smallint", ST_DT_SHORT},   {"short", ST_DT_SHORT},
        {"integer", ST_DT_INTEGER}, {"int", ST_DT_INTEGER},      {"bigint", ST_DT_LONG},
        {"long", ST_DT_LONG},       {"float", ST_DT_FLOAT},      {"real", ST_DT_FLOAT},
        {"double", ST_DT_DOUBLE},   {"string", ST_DT_STRING},    {"varchar", ST_DT_STRING},
        {"text", ST_DT_STRING},     {"binary", ST_DT_BINARY},    {"blob", ST_DT_BINARY},
        {"date", ST_DT_DATE},       {"timestamp_ntz", ST_DT_TIMESTAMP_NTZ},
        {"timestamp", ST_DT_TIMESTAMP},
    };
    memset(t, 0, sizeof *t);
    ddl_ws(d);
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (ddl_word(d, words[i].w)) {
            t->kind = words[i].k;
            return ST_OK;
        }
    }
    if (ddl_word(d, "decimal") || ddl_word(d, "numeric")) {
        t->kind = ST_DT_DECIMAL;
        t->precision = 10;
        t->scale = 0;
        ddl_ws(d);
        if (*d->p == '(') {
            char *end;
            long p = strtol(d->p + 1, &end, 10);
            long s = 0;
            while (isspace((unsigned char)*end))
                end++;
            if (*end == ',') {
                s = strtol(end + 1, &end, 10);
                while (isspace((unsigned char)*end))
                    end++;
            }
            if (*end != ')' || p < 1 || p > 38 || s < 0 || s > p)
                return ddl_fail(d, "bad decimal precision/scale (1 <= p <= 38, 0 <= s <= p)");
            t->precision = (int)p;
            t->scale = (int)s;
            d->p = end + 1;
        }
        return ST_OK;
    }
    if (ddl_word(d, "array")) {
        ddl_ws(d);
        if (*d->p++ != '<')
            return ddl_fail(d, "expected '<' after array");
        t->kind = ST_DT_ARRAY;
        t->contains_null = true;
        t->elem = st_calloc(1, sizeof *t->elem);
        if (!t->elem)
            return st_fail(d->err, ST_ERR_NOMEM, "out of memory");
        st_rc rc = ddl_type(d, t->elem);
        if (rc)
            return rc;
        ddl_ws(d);
        if (*d->p != '>')
            return ddl_fail(d, "expected '>'");
        d->p++;
        return ST_OK;
    }
    if (ddl_word(d, "map")) {
        ddl_ws(d);
        if (*d->p++ != '<')
            return ddl_fail(d, "expected '<' after map");
        t->kind = ST_DT_MAP;
        t->value_contains_null = true;
        t->elem = st_calloc(1, sizeof *t->elem);
        t->value = st_calloc(1, sizeof *t->value);
        if (!t->elem || !t->value)
            return st_fail(d->err, ST_ERR_NOMEM, "out of memory");
        st_rc rc = ddl_type(d, t->elem);
        if (rc)
            return rc;
        ddl_ws(d);
        if (*d->p != ',')
            return ddl_fail(d, "expected ',' in map<k,v>");
        d->p++;
        rc = ddl_type(d, t->value);
        if (rc)
            return rc;
        ddl_ws(d);
        if (*d->p != '>')
            return ddl_fail(d, "expected '>'");
        d->p++;
        return ST_OK;
    }
    if (ddl_word(d, "struct")) {
        ddl_ws(d);
        if (*d->p++ != '<')
            return ddl_fail(d, "expected '<' after struct");
        t->kind = ST_DT_STRUCT;
        return ddl_struct_fields(d, t, '>');
    }
    return ddl_fail(d, "unknown type");
}

st_rc st_delta_schema_from_ddl(const char *text, st_delta_schema **out, st_err *err)
{
    if (!text)
        return st_fail(err, ST_ERR_INVALID, "schema DDL: no text");
    ddl d = {text, text, err};
    st_dtype t;
    memset(&t, 0, sizeof t);
    t.kind = ST_DT_STRUCT;
    ddl_ws(&d);
    st_rc rc = *d.p ? ddl_struct_fields(&d, &t, 0) : ddl_fail(&d, "no columns");
    if (rc) {
        st_delta_dtype_clear(&t);
        return rc;
    }
    st_delta_schema *s = st_calloc(1, sizeof *s);
    if (!s) {
        st_delta_dtype_clear(&t);
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    s->fields = t.fields;
    s->n_fields = t.n_fields;
    *out = s;
    return ST_OK;
}

/* ---------------------------------------------------------------- DuckDB -> Delta */

st_rc st_delta_type_from_duckdb(duckdb_logical_type lt, st_dtype *out, st_err *err)
{
    st_dtype t;
    memset(&t, 0, sizeof t);
    duckdb_type id = duckdb_get_type_id(lt);
    st_rc rc = ST_OK;
    switch (id) {
    case DUCKDB_TYPE_BOOLEAN: t.kind = ST_DT_BOOLEAN; break;
    case DUCKDB_TYPE_TINYINT: t.kind = ST_DT_BYTE; break;
    case DUCKDB_TYPE_SMALLINT: t.kind = ST_DT_SHORT; break;
    case DUCKDB_TYPE_UTINYINT: t.kind = ST_DT_SHORT; break;
    case DUCKDB_TYPE_INTEGER: t.kind = ST_DT_INTEGER; break;
    case DUCKDB_TYPE_USMALLINT: t.kind = ST_DT_INTEGER; break;
    case DUCKDB_TYPE_BIGINT: t.kind = ST_DT_LONG; break;
    case DUCKDB_TYPE_UINTEGER: t.kind = ST_DT_LONG; break;
    case DUCKDB_TYPE_UBIGINT: t.kind = ST_DT_DECIMAL; t.precision = 20; t.scale = 0; break;
    case DUCKDB_TYPE_HUGEINT:
    case DUCKDB_TYPE_UHUGEINT: t.kind = ST_DT_DECIMAL; t.precision = 38; t.scale = 0; break;
    case DUCKDB_TYPE_FLOAT: t.kind = ST_DT_FLOAT; break;
    case DUCKDB_TYPE_DOUBLE: t.kind = ST_DT_DOUBLE; break;
    case DUCKDB_TYPE_DECIMAL:
        t.kind = ST_DT_DECIMAL;
        t.precision = duckdb_decimal_width(lt);
        t.scale = duckdb_decimal_scale(lt);
        break;
    case DUCKDB_TYPE_VARCHAR:
    case DUCKDB_TYPE_ENUM:
    case DUCKDB_TYPE_UUID: t.kind = ST_DT_STRING; break;
    case DUCKDB_TYPE_BLOB: t.kind = ST_DT_BINARY; break;
    case DUCKDB_TYPE_DATE: t.kind = ST_DT_DATE; break;
    case DUCKDB_TYPE_TIMESTAMP_TZ: t.kind = ST_DT_TIMESTAMP; break;
    case DUCKDB_TYPE_TIMESTAMP:
    case DUCKDB_TYPE_TIMESTAMP_S:
    case DUCKDB_TYPE_TIMESTAMP_MS:
    case DUCKDB_TYPE_TIMESTAMP_NS: t.kind = ST_DT_TIMESTAMP_NTZ; break;
    case DUCKDB_TYPE_LIST:
    case DUCKDB_TYPE_ARRAY: {
        duckdb_logical_type ct = id == DUCKDB_TYPE_LIST ? duckdb_list_type_child_type(lt)
                                                        : duckdb_array_type_child_type(lt);
        t.kind = ST_DT_ARRAY;
        t.contains_null = true;
        t.elem = st_calloc(1, sizeof *t.elem);
        rc = t.elem ? st_delta_type_from_duckdb(ct, t.elem, err) : st_fail(err, ST_ERR_NOMEM, "out of memory");
        duckdb_destroy_logical_type(&ct);
        break;
    }
    case DUCKDB_TYPE_MAP: {
        duckdb_logical_type kt = duckdb_map_type_key_type(lt);
        duckdb_logical_type vt = duckdb_map_type_value_type(lt);
        t.kind = ST_DT_MAP;
        t.value_contains_null = true;
        t.elem = st_calloc(1, sizeof *t.elem);
        t.value = st_calloc(1, sizeof *t.value);
        if (!t.elem || !t.value)
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        rc = rc ? rc : st_delta_type_from_duckdb(kt, t.elem, err);
        rc = rc ? rc : st_delta_type_from_duckdb(vt, t.value, err);
        duckdb_destroy_logical_type(&kt);
        duckdb_destroy_logical_type(&vt);
        break;
    }
    case DUCKDB_TYPE_STRUCT: {
        idx_t n = duckdb_struct_type_child_count(lt);
        t.kind = ST_DT_STRUCT;
        t.fields = st_calloc(n ? n : 1, sizeof *t.fields);
        if (!t.fields) {
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
            break;
        }
        for (idx_t i = 0; rc == ST_OK && i < n; i++) {
            st_dfield *f = &t.fields[i];
            t.n_fields++;
            char *name = duckdb_struct_type_child_name(lt, i);
            duckdb_logical_type ct = duckdb_struct_type_child_type(lt, i);
            f->name = st_strdup(name);
            f->metadata_json = st_strdup("{}");
            f->nullable = true;
            duckdb_free(name);
            rc = st_delta_type_from_duckdb(ct, &f->type, err);
            duckdb_destroy_logical_type(&ct);
        }
        break;
    }
    default: {
        char *s = duckdb_logical_type_get_alias(lt);
        rc = st_fail(err, ST_ERR_UNSUPPORTED, "DuckDB type %s (id %d) has no Delta equivalent",
                     s ? s : "?", (int)id);
        if (s)
            duckdb_free(s);
        break;
    }
    }
    if (rc) {
        st_delta_dtype_clear(&t);
        return rc;
    }
    *out = t;
    return ST_OK;
}
