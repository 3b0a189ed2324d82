/*
 * registry.c - the schema registry: built-in schemas for the LLM (OpenTelemetry
 * GenAI names flattened to columns), web (Segment-like) and backend (generic)
 * families, the project's schemas/NAME.yml files, compatibility checks between
 * versions, lookup for an event, and the per-family bronze column set.
 *
 * The registry is filled once when the loader opens and then only read;
 * loader.c validates events against the schemas found here, pii.c and
 * redact.c apply the field classifications.
 */
#include "load_int.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct st_registry {
    st_schema **schemas;      /* in registration order */
    size_t n, cap;
    char **families;
    size_t n_families;
};

/* ---------------------------------------------------------------- helpers */

const char *st_ftype_sql(st_ftype t)
{
    switch (t) {
    case ST_FT_LONG: return "BIGINT";
    case ST_FT_DOUBLE: return "DOUBLE";
    case ST_FT_BOOLEAN: return "BOOLEAN";
    case ST_FT_TIMESTAMP: return "TIMESTAMPTZ";
    default: return "VARCHAR";
    }
}

const char *st_ftype_name(st_ftype t)
{
    static const char *const names[] = {"string", "long", "double", "boolean", "timestamp", "json"};
    return names[t];
}

static bool ftype_parse(const char *s, st_ftype *out)
{
    static const struct { const char *n; st_ftype t; } m[] = {
        {"string", ST_FT_STRING}, {"long", ST_FT_LONG}, {"int", ST_FT_LONG},
        {"integer", ST_FT_LONG}, {"double", ST_FT_DOUBLE}, {"number", ST_FT_DOUBLE},
        {"boolean", ST_FT_BOOLEAN}, {"bool", ST_FT_BOOLEAN}, {"timestamp", ST_FT_TIMESTAMP},
        {"json", ST_FT_JSON}, {"object", ST_FT_JSON}, {"array", ST_FT_JSON}};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (!strcmp(s, m[i].n)) {
            *out = m[i].t;
            return true;
        }
    return false;
}

bool st_pii_action_parse(const char *s, st_pii_action *out)
{
    static const char *const names[] = {"default", "keep", "encrypt", "hash", "redact", "drop"};
    for (int i = 0; i < 6; i++)
        if (s && !strcmp(s, names[i])) {
            *out = (st_pii_action)i;
            return true;
        }
    return false;
}

static bool fclass_parse(const char *s, st_fclass *out)
{
    static const char *const names[] = {"none", "pii", "secret", "free_text"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) {
            *out = (st_fclass)i;
            return true;
        }
    return false;
}

bool st_schema_version_parse(const char *s, int ver[3])
{
    int v[3] = {0, 0, 0};
    int k = 0;
    const char *p = s;
    if (!s || !*s)
        return false;
    while (k < 3) {
        if (*p < '0' || *p > '9')
            return false;
        long x = 0;
        while (*p >= '0' && *p <= '9') {
            x = x * 10 + (*p - '0');
            if (x > 1000000)
                return false;
            p++;
        }
        v[k++] = (int)x;
        if (!*p)
            break;
        if (*p != '-')
            return false;
        p++;
    }
    if (*p || (k != 1 && k != 3))
        return false;
    memcpy(ver, v, sizeof v);
    return true;
}

static int ver_cmp(const int a[3], const int b[3])
{
    for (int i = 0; i < 3; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return 0;
}

/* Column name for a field: lower case, anything but [a-z0-9_] -> '_'. */
static char *column_of(const char *name)
{
    char *c = st_strdup(name);
    for (char *p = c; p && *p; p++) {
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
        else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            *p = '_';
    }
    return c;
}

void st_schema_free(st_schema *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_fields; i++) {
        st_sfield *f = &s->fields[i];
        st_free(f->name);
        st_free(f->column);
        for (size_t j = 0; j < f->n_paths; j++)
            st_free(f->paths[j]);
        st_free(f->paths);
    }
    st_free(s->fields);
    st_free(s->family);
    st_free(s->event_type);
    st_free(s->version_text);
    st_free(s->compat);
    st_free(s->file);
    st_free(s);
}

/* Columns the loader adds to every bronze table; schema fields may not use them. */
static const char *const reserved_cols[] = {
    "event_id", "event_type", "schema_version", "event_time", "event_time_corrected",
    "received_at", "event_date", "source", "family", "country", "entity_id", "subject_id",
    "_extra", "_late", "_batch_id", "_loaded_at", NULL};

static bool is_reserved(const char *col)
{
    for (size_t i = 0; reserved_cols[i]; i++)
        if (!strcmp(reserved_cols[i], col))
            return true;
    return false;
}

/* ---------------------------------------------------------------- built-ins */

typedef struct bfield {
    const char *name, *column, *paths; /* paths: '|' separated */
    st_ftype type;
    bool required;
    st_fclass cls;
    st_pii_action action;
} bfield;

static const bfield llm_fields[] = {
    {"gen_ai.provider.name", "gen_ai_provider_name", "payload.gen_ai.provider.name", ST_FT_STRING, true, ST_FC_NONE, ST_PII_DEFAULT},
    {"gen_ai.operation.name", "gen_ai_operation_name", "payload.gen_ai.operation.name", ST_FT_STRING, true, ST_FC_NONE, ST_PII_DEFAULT},
    {"gen_ai.request.model", "gen_ai_request_model", "payload.gen_ai.request.model", ST_FT_STRING, false, ST_FC_NONE, ST_PII_DEFAULT},
    {"gen_ai.response.model", "gen_ai_response_model", "payload.gen_ai.response.model", ST_FT_STRING, false, ST_FC_NONE, ST_PII_DEFAULT},
    {"gen_ai.usage.input_tokens", "gen_ai_usage_input_tokens", "payload.gen_ai.usage.input_tokens", ST_FT_LONG, false, ST_FC_NONE, ST_PII_DEFAULT},
    {"gen_ai.usage.output_tokens", "gen_ai_usage_output_tokens", "payload.gen_ai.usage.output_tokens", ST_FT_LONG, false, ST_FC_NONE, ST_PII_DEFAULT},
    {"gen_ai.response.finish_reasons", "gen_ai_response_finish_reasons", "payload.gen_ai.response.finish_reasons", ST_FT_JSON, false, ST_FC_NONE, ST_PII_DEFAULT},
    {"trace_id", "trace_id", "payload.trace_id|context.trace_id", ST_FT_STRING, false, ST_FC_NONE, ST_PII_DEFAULT},
    {"span_id", "span_id", "payload.span_id|context.span_id", ST_FT_STRING, false, ST_FC_NONE, ST_PII_DEFAULT},
    {"gen_ai.conversation.id", "conversation_id", "payload.gen_ai.conversation.id|payload.conversation_id", ST_FT_STRING, false, ST_FC_NONE, ST_PII_DEFAULT},
    {"latency_ms", "latency_ms", "payload.latency_ms", ST_FT_DOUBLE, false, ST_FC_NONE, ST_PII_DEFAULT},
    {"cost", "cost", "payload.cost", ST_FT_DOUBLE, false, ST_FC_NONE, ST_PII_DEFAULT},
    {"prompt", "prompt", "payload.prompt|payload.gen_ai.prompt", ST_FT_STRING, false, ST_FC_FREE_TEXT, ST_PII_ENCRYPT},
    {"response", "response", "payload.response|payload.gen_ai.completion", ST_FT_STRING, false, ST_FC_FREE_TEXT, ST_PII_ENCRYPT},
};

static const bfield web_fields[] = {
    {"anonymous_id", "anonymous_id", "payload.anonymous_id|payload.anonymousId|context.anonymous_id", ST_FT_STRING, false, ST_FC_NONE, ST_PII_DEFAULT},
    {"user_id", "user_id", "payload.user_id|payload.userId|context.user_id", ST_FT_STRING, false, ST_FC_NONE, ST_PII_DEFAULT},
    {"url", "url", "payload.url|context.page.url", ST_FT_STRING, false, ST_FC_NONE, ST_PII_DEFAULT},
    {"path", "path", "payload.path|context.page.path", ST_FT_STRING, false, ST_FC_NONE, ST_PII_DEFAULT},
    {"referrer", "referrer", "payload.referrer|context.page.referrer", ST_FT_STRING, false, ST_FC_NONE, ST_PII_DEFAULT},
    {"title", "title", "payload.title|context.page.title", ST_FT_STRING, false, ST_FC_NONE, ST_PII_DEFAULT},
    {"event", "event", "payload.event|$event_type", ST_FT_STRING, false, ST_FC_NONE, ST_PII_DEFAULT},
    {"properties", "properties", "payload.properties", ST_FT_JSON, false, ST_FC_PII, ST_PII_REDACT},
    {"traits", "traits", "payload.traits", ST_FT_JSON, false, ST_FC_PII, ST_PII_REDACT},
    {"user_agent", "user_agent", "context.user_agent|context.userAgent", ST_FT_STRING, false, ST_FC_NONE, ST_PII_DEFAULT},
    {"ip", "ip", "context.ip|payload.ip", ST_FT_STRING, false, ST_FC_PII, ST_PII_HASH},
};

static const bfield backend_fields[] = {
    {"name", "name", "$event_type", ST_FT_STRING, false, ST_FC_NONE, ST_PII_DEFAULT},
    {"properties", "properties", "$payload", ST_FT_JSON, false, ST_FC_PII, ST_PII_REDACT},
};

static st_rc add_path(st_sfield *f, const char *p, size_t len)
{
    char **np = st_realloc(f->paths, (f->n_paths + 1) * sizeof *np);
    if (!np)
        return ST_ERR_NOMEM;
    f->paths = np;
    np[f->n_paths] = st_strndup(p, len);
    if (!np[f->n_paths])
        return ST_ERR_NOMEM;
    f->n_paths++;
    return ST_OK;
}

static st_rc builtin(st_registry *r, const char *family, const bfield *bf, size_t n, st_err *err)
{
    st_schema *s = st_calloc(1, sizeof *s);
    if (!s)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    s->family = st_strdup(family);
    s->event_type = st_strdup("*");
    s->ver[0] = 1;
    s->version_text = st_strdup("1");
    s->compat = st_strdup("backward");
    s->builtin = true;
    s->fields = st_calloc(n, sizeof *s->fields);
    st_rc rc = s->family && s->event_type && s->version_text && s->compat && s->fields
                   ? ST_OK
                   : ST_ERR_NOMEM;
    for (size_t i = 0; rc == ST_OK && i < n; i++) {
        st_sfield *f = &s->fields[i];
        s->n_fields++;
        f->name = st_strdup(bf[i].name);
        f->column = st_strdup(bf[i].column);
        f->type = bf[i].type;
        f->required = bf[i].required;
        f->cls = bf[i].cls;
        f->action = bf[i].action;
        if (!f->name || !f->column)
            rc = ST_ERR_NOMEM;
        for (const char *p = bf[i].paths; rc == ST_OK && *p;) {
            const char *bar = strchr(p, '|');
            size_t len = bar ? (size_t)(bar - p) : strlen(p);
            rc = add_path(f, p, len);
            p += len + (bar ? 1 : 0);
        }
    }
    if (rc == ST_OK)
        rc = st_registry_register(r, s, err);
    else
        st_fail(err, rc, "out of memory");
    if (rc)
        st_schema_free(s);
    return rc;
}

st_rc st_registry_new(st_registry **out, st_err *err)
{
    st_registry *r = st_calloc(1, sizeof *r);
    if (!r)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    st_rc rc = builtin(r, "llm_calls", llm_fields, sizeof llm_fields / sizeof llm_fields[0], err);
    rc = rc ? rc : builtin(r, "web_events", web_fields, sizeof web_fields / sizeof web_fields[0], err);
    rc = rc ? rc
            : builtin(r, "backend_events", backend_fields,
                      sizeof backend_fields / sizeof backend_fields[0], err);
    if (rc) {
        st_registry_free(r);
        return rc;
    }
    *out = r;
    return ST_OK;
}

void st_registry_free(st_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        st_schema_free(r->schemas[i]);
    st_free(r->schemas);
    for (size_t i = 0; i < r->n_families; i++)
        st_free(r->families[i]);
    st_free(r->families);
    st_free(r);
}

size_t st_registry_families(const st_registry *r, const char *const **out)
{
    *out = (const char *const *)r->families;
    return r->n_families;
}

static bool has_family(const st_registry *r, const char *family)
{
    for (size_t i = 0; i < r->n_families; i++)
        if (!strcmp(r->families[i], family))
            return true;
    return false;
}

st_rc st_registry_add_family(st_registry *r, const char *family, st_err *err)
{
    if (has_family(r, family))
        return ST_OK;
    return builtin(r, family, backend_fields, sizeof backend_fields / sizeof backend_fields[0],
                   err);
}

/* ---------------------------------------------------------------- compatibility */

static const st_sfield *field_by_name(const st_schema *s, const char *name)
{
    for (size_t i = 0; i < s->n_fields; i++)
        if (!strcmp(s->fields[i].name, name))
            return &s->fields[i];
    return NULL;
}

/* Backward compatibility: data written under `old` stays readable with `nw`:
 * a field may be removed or an optional one added; a field keeps its type;
 * a field that was absent or optional may not become required. */
static st_rc check_compat(const st_schema *old, const st_schema *nw, st_err *err)
{
    const char *where = nw->file ? nw->file : "built-in";
    for (size_t i = 0; i < nw->n_fields; i++) {
        const st_sfield *f = &nw->fields[i];
        const st_sfield *o = field_by_name(old, f->name);
        if (o && o->type != f->type)
            return st_fail(err, ST_ERR_INVALID,
                           "%s: schema %s.%s version %s: field '%s' changes type from %s to %s "
                           "(incompatible with version %s)",
                           where, nw->family, nw->event_type, nw->version_text, f->name,
                           st_ftype_name(o->type), st_ftype_name(f->type), old->version_text);
        if (f->required && (!o || !o->required))
            return st_fail(err, ST_ERR_INVALID,
                           "%s: schema %s.%s version %s: new required field '%s' "
                           "(incompatible with version %s; add it as optional)",
                           where, nw->family, nw->event_type, nw->version_text, f->name,
                           old->version_text);
    }
    return ST_OK;
}

st_rc st_registry_register(st_registry *r, st_schema *s, st_err *err)
{
    const char *where = s->file ? s->file : "built-in";
    const st_schema *prev = NULL;
    for (size_t i = 0; i < s->n_fields; i++) {
        if (is_reserved(s->fields[i].column))
            return st_fail(err, ST_ERR_INVALID,
                           "%s: schema %s.%s: field '%s' uses the reserved column name '%s'",
                           where, s->family, s->event_type, s->fields[i].name,
                           s->fields[i].column);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(s->fields[i].column, s->fields[j].column))
                return st_fail(err, ST_ERR_INVALID,
                               "%s: schema %s.%s: fields '%s' and '%s' map to one column '%s'",
                               where, s->family, s->event_type, s->fields[j].name,
                               s->fields[i].name, s->fields[i].column);
    }
    for (size_t i = 0; i < r->n; i++) {
        const st_schema *o = r->schemas[i];
        if (strcmp(o->family, s->family) || strcmp(o->event_type, s->event_type))
            continue;
        int c = ver_cmp(o->ver, s->ver);
        if (c == 0)
            return st_fail(err, ST_ERR_EXISTS, "%s: schema %s.%s version %s is already registered%s%s",
                           where, s->family, s->event_type, s->version_text,
                           o->file ? " in " : "", o->file ? o->file : "");
        if (c > 0)
            return st_fail(err, ST_ERR_INVALID,
                           "%s: schema %s.%s version %s is older than the registered version %s "
                           "(register versions in order)",
                           where, s->family, s->event_type, s->version_text, o->version_text);
        prev = o;
    }
    if (prev && strcmp(s->compat, "none")) {
        st_rc rc = check_compat(prev, s, err);
        if (rc)
            return rc;
    }
    /* one type per column across the family, so bronze has one schema */
    for (size_t i = 0; i < r->n; i++) {
        const st_schema *o = r->schemas[i];
        if (strcmp(o->family, s->family))
            continue;
        for (size_t k = 0; k < s->n_fields; k++)
            for (size_t j = 0; j < o->n_fields; j++)
                if (!strcmp(o->fields[j].column, s->fields[k].column) &&
                    o->fields[j].type != s->fields[k].type)
                    return st_fail(err, ST_ERR_INVALID,
                                   "%s: schema %s.%s version %s: field '%s' is %s but column "
                                   "'%s' of bronze.%s is %s (from %s.%s version %s)",
                                   where, s->family, s->event_type, s->version_text,
                                   s->fields[k].name, st_ftype_name(s->fields[k].type),
                                   s->fields[k].column, s->family,
                                   st_ftype_name(o->fields[j].type), o->family, o->event_type,
                                   o->version_text);
    }
    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 16;
        st_schema **ns = st_realloc(r->schemas, nc * sizeof *ns);
        if (!ns)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        r->schemas = ns;
        r->cap = nc;
    }
    if (!has_family(r, s->family)) {
        char **nf = st_realloc(r->families, (r->n_families + 1) * sizeof *nf);
        if (!nf)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        r->families = nf;
        nf[r->n_families] = st_strdup(s->family);
        if (!nf[r->n_families])
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        r->n_families++;
    }
    r->schemas[r->n++] = s;
    return ST_OK;
}

const st_schema *st_registry_find(const st_registry *r, const char *family, const char *type,
                                  const int ver[3], const char **why)
{
    const st_schema *wild = NULL;
    bool type_known = false, family_known = false;
    for (size_t i = 0; i < r->n; i++) {
        const st_schema *s = r->schemas[i];
        if (strcmp(s->family, family))
            continue;
        family_known = true;
        if (!strcmp(s->event_type, "*")) {
            wild = s;   /* the newest wildcard wins */
            continue;
        }
        if (strcmp(s->event_type, type))
            continue;
        type_known = true;
        if (ver_cmp(s->ver, ver) == 0)
            return s;
    }
    if (type_known) {
        *why = "unknown schema version";
        return NULL;
    }
    if (wild)
        return wild;
    *why = family_known ? "unknown event type" : "unknown event family";
    return NULL;
}

st_rc st_registry_columns(const st_registry *r, const char *family, st_bcol **out, size_t *n_out,
                          st_err *err)
{
    st_bcol *cols = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < r->n; i++) {
        const st_schema *s = r->schemas[i];
        if (strcmp(s->family, family))
            continue;
        for (size_t k = 0; k < s->n_fields; k++) {
            size_t j = 0;
            while (j < n && strcmp(cols[j].name, s->fields[k].column))
                j++;
            if (j < n)
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 32;
                st_bcol *nc = st_realloc(cols, cap * sizeof *nc);
                if (!nc) {
                    st_free(cols);
                    return st_fail(err, ST_ERR_NOMEM, "out of memory");
                }
                cols = nc;
            }
            cols[n].name = s->fields[k].column;
            cols[n].type = s->fields[k].type;
            n++;
        }
    }
    *out = cols;
    *n_out = n;
    return ST_OK;
}

/* ---------------------------------------------------------------- YAML */

static bool name_ok(const char *s, bool allow_dot)
{
    if (!s || !*s || strlen(s) > 128)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || (allow_dot && *p == '.')))
            return false;
    return true;
}

static st_rc parse_field(const st_cfg *fn, const char *name, st_sfield *f, st_err *err)
{
    static const char *const keys[] = {"type", "required", "classification", "pii", "column",
                                       "from", "description", NULL};
    if (!name_ok(name, true))
        return st_cfg_fail(fn, err, ST_ERR_INVALID, "field name '%s': use letters, digits, _ - .",
                           name);
    f->name = st_strdup(name);
    if (!f->name)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    const char *type = NULL, *cls = "none", *act = "default", *col = NULL;
    st_rc rc;
    if (st_cfg_kind_of(fn) == ST_CFG_SCALAR) {
        type = st_cfg_scalar(fn);
    } else if (st_cfg_kind_of(fn) == ST_CFG_MAP) {
        rc = st_cfg_check_keys(fn, keys, err);
        rc = rc ? rc : st_cfg_get_str(fn, "type", NULL, &type, err);
        rc = rc ? rc : st_cfg_get_bool(fn, "required", false, &f->required, err);
        rc = rc ? rc : st_cfg_get_str(fn, "classification", "none", &cls, err);
        rc = rc ? rc : st_cfg_get_str(fn, "pii", "default", &act, err);
        rc = rc ? rc : st_cfg_get_str(fn, "column", NULL, &col, err);
        if (rc)
            return rc;
        const st_cfg *from = st_cfg_get(fn, "from");
        if (from && st_cfg_kind_of(from) == ST_CFG_SCALAR && st_cfg_scalar(from)) {
            rc = add_path(f, st_cfg_scalar(from), strlen(st_cfg_scalar(from)));
        } else if (from && st_cfg_kind_of(from) == ST_CFG_SEQ) {
            for (size_t i = 0; rc == ST_OK && i < st_cfg_len(from); i++) {
                const char *p = st_cfg_scalar(st_cfg_at(from, i));
                rc = p ? add_path(f, p, strlen(p))
                       : st_cfg_fail(st_cfg_at(from, i), err, ST_ERR_INVALID, "expected a path");
            }
        } else if (from) {
            return st_cfg_fail(from, err, ST_ERR_INVALID, "expected a path or a list of paths");
        }
        if (rc)
            return rc == ST_ERR_NOMEM ? st_fail(err, rc, "out of memory") : rc;
    } else {
        return st_cfg_fail(fn, err, ST_ERR_INVALID, "field '%s': expected a type or a map", name);
    }
    if (!type)
        return st_cfg_fail(fn, err, ST_ERR_INVALID, "field '%s': type is required", name);
    if (!ftype_parse(type, &f->type))
        return st_cfg_fail(fn, err, ST_ERR_INVALID,
                           "field '%s': unknown type '%s' (string, long, double, boolean, "
                           "timestamp, json)", name, type);
    if (!fclass_parse(cls, &f->cls))
        return st_cfg_fail(fn, err, ST_ERR_INVALID,
                           "field '%s': unknown classification '%s' (pii, secret, free_text)",
                           name, cls);
    if (!st_pii_action_parse(act, &f->action))
        return st_cfg_fail(fn, err, ST_ERR_INVALID,
                           "field '%s': unknown pii action '%s' (keep, encrypt, hash, redact, drop)",
                           name, act);
    if (col && !name_ok(col, false))
        return st_cfg_fail(fn, err, ST_ERR_INVALID, "field '%s': bad column name '%s'", name, col);
    f->column = col ? column_of(col) : column_of(name);
    if (!f->column)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < f->n_paths; i++) {
        const char *p = f->paths[i];
        if (strncmp(p, "payload.", 8) && strncmp(p, "context.", 8) && strcmp(p, "$event_type") &&
            strcmp(p, "$payload") && strcmp(p, "$context"))
            return st_cfg_fail(fn, err, ST_ERR_INVALID,
                               "field '%s': path '%s' must start with payload. or context.",
                               name, p);
    }
    if (f->n_paths == 0) {
        char *p = st_sprintf("payload.%s", name);
        rc = p ? add_path(f, p, strlen(p)) : ST_ERR_NOMEM;
        st_free(p);
        if (rc)
            return st_fail(err, rc, "out of memory");
    }
    return ST_OK;
}

static st_rc parse_schema(const st_cfg *n, const char *file, st_schema **out, st_err *err)
{
    static const char *const keys[] = {"family", "event_type", "version", "compatibility",
                                       "fields", "description", NULL};
    if (st_cfg_kind_of(n) != ST_CFG_MAP)
        return st_cfg_fail(n, err, ST_ERR_INVALID, "expected a schema map");
    st_rc rc = st_cfg_check_keys(n, keys, err);
    if (rc)
        return rc;
    const char *family = NULL, *type = NULL, *version = NULL, *compat = "backward";
    rc = st_cfg_get_str(n, "family", NULL, &family, err);
    rc = rc ? rc : st_cfg_get_str(n, "event_type", NULL, &type, err);
    rc = rc ? rc : st_cfg_get_str(n, "version", NULL, &version, err);
    rc = rc ? rc : st_cfg_get_str(n, "compatibility", "backward", &compat, err);
    if (rc)
        return rc;
    if (!family || !name_ok(family, false))
        return st_cfg_fail(n, err, ST_ERR_INVALID, "family: required, letters, digits and _");
    if (!type || (!name_ok(type, true) && strcmp(type, "*")))
        return st_cfg_fail(n, err, ST_ERR_INVALID, "event_type: required (a name or \"*\")");
    int ver[3];
    if (!version || !st_schema_version_parse(version, ver) || ver[0] < 1)
        return st_cfg_fail(n, err, ST_ERR_INVALID,
                           "version: required, a positive integer or MODEL-REVISION-ADDITION");
    if (strcmp(compat, "backward") && strcmp(compat, "none"))
        return st_cfg_fail(n, err, ST_ERR_INVALID, "compatibility: backward or none");
    const st_cfg *fields = st_cfg_get(n, "fields");
    if (fields && st_cfg_kind_of(fields) != ST_CFG_MAP)
        return st_cfg_fail(fields, err, ST_ERR_INVALID, "expected a map of fields");
    st_schema *s = st_calloc(1, sizeof *s);
    if (!s)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    s->family = st_strdup(family);
    s->event_type = st_strdup(type);
    memcpy(s->ver, ver, sizeof ver);
    s->version_text = st_strdup(version);
    s->compat = st_strdup(compat);
    s->file = st_sprintf("%s:%d", file, st_cfg_line(n));
    size_t nf = fields ? st_cfg_len(fields) : 0;
    s->fields = st_calloc(nf ? nf : 1, sizeof *s->fields);
    if (!s->family || !s->event_type || !s->version_text || !s->compat || !s->file || !s->fields) {
        st_schema_free(s);
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < nf; i++) {
        s->n_fields++;
        rc = parse_field(st_cfg_at(fields, i), st_cfg_key_at(fields, i), &s->fields[i], err);
        if (rc) {
            st_schema_free(s);
            return rc;
        }
    }
    *out = s;
    return ST_OK;
}

st_rc st_registry_add_yaml(st_registry *r, const char *name, const char *text, size_t len,
                           st_err *err)
{
    st_cfg_doc *doc = NULL;
    st_rc rc = st_cfg_load_string(name, text, len, &doc, err);
    if (rc)
        return rc;
    const st_cfg *root = st_cfg_root(doc);
    if (!root || st_cfg_kind_of(root) != ST_CFG_MAP) {
        rc = st_fail(err, ST_ERR_INVALID, "%s: expected a schema map or {schemas: [...]}", name);
        goto out;
    }
    const st_cfg *list = st_cfg_get(root, "schemas");
    size_t n = list ? st_cfg_len(list) : 1;
    if (list && st_cfg_kind_of(list) != ST_CFG_SEQ) {
        rc = st_cfg_fail(list, err, ST_ERR_INVALID, "expected a list of schemas");
        goto out;
    }
    if (list && st_cfg_len(root) != 1) {
        rc = st_cfg_fail(root, err, ST_ERR_INVALID, "a file with schemas: holds nothing else");
        goto out;
    }
    for (size_t i = 0; rc == ST_OK && i < n; i++) {
        st_schema *s = NULL;
        rc = parse_schema(list ? st_cfg_at(list, i) : root, name, &s, err);
        if (rc == ST_OK) {
            rc = st_registry_register(r, s, err);
            if (rc)
                st_schema_free(s);
        }
    }
out:
    st_cfg_doc_free(doc);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

st_rc st_registry_load_dir(st_registry *r, const char *dir, st_err *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return ST_OK;
    char **names = NULL;
    size_t n = 0;
    st_rc rc = ST_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 5 ||
            (strcmp(e->d_name + len - 4, ".yml") && (len < 6 || strcmp(e->d_name + len - 5, ".yaml"))))
            continue;
        char **nn = st_realloc(names, (n + 1) * sizeof *nn);
        if (!nn) {
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
            break;
        }
        names = nn;
        names[n] = st_path_join(dir, e->d_name);
        if (!names[n]) {
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; rc == ST_OK && i < n; i++) {
        char *text = NULL;
        size_t len = 0;
        rc = st_file_read(names[i], 1 << 20, &text, &len, err);
        if (rc == ST_OK)
            rc = st_registry_add_yaml(r, names[i], text, len, err);
        st_free(text);
    }
    for (size_t i = 0; i < n; i++)
        st_free(names[i]);
    st_free(names);
    return rc;
}

/* ---------------------------------------------------------------- state */

static const char *const load_migrations[] = {
    "CREATE TABLE load_checkpoint (name TEXT PRIMARY KEY, seq INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL);"
    "CREATE TABLE load_schema (family TEXT NOT NULL, event_type TEXT NOT NULL,"
    " version TEXT NOT NULL, definition TEXT NOT NULL, registered_ms INTEGER NOT NULL,"
    " PRIMARY KEY (family, event_type, version));"
    "CREATE TABLE load_keys (subject_id TEXT PRIMARY KEY, wrapped BLOB,"
    " created_ms INTEGER NOT NULL, destroyed_ms INTEGER);",
};


st_rc st_load_state_migrate(st_state *state, st_err *err)
{
    return st_state_migrate(state, "load", load_migrations,
                            sizeof load_migrations / sizeof load_migrations[0], err);
}

/* A canonical text of a schema's definition, to notice edits of a
 * registered version. */
static char *definition_of(const st_schema *s)
{
    st_buf b;
    st_buf_init(&b, 0);
    st_buf_printf(&b, "compat=%s", s->compat);
    for (size_t i = 0; i < s->n_fields; i++) {
        const st_sfield *f = &s->fields[i];
        st_buf_printf(&b, ";%s:%s:%s:%d:%d:%d", f->name, f->column, st_ftype_name(f->type),
                      f->required, (int)f->cls, (int)f->action);
        for (size_t j = 0; j < f->n_paths; j++)
            st_buf_printf(&b, ",%s", f->paths[j]);
    }
    return st_buf_take(&b);
}

st_rc st_registry_sync_state(st_registry *r, st_state *state, st_err *err)
{
    st_rc rc = st_load_state_migrate(state, err);
    if (rc)
        return rc;
    st_state_lock(state);
    sqlite3 *db = st_state_db(state);
    sqlite3_stmt *sel = NULL, *ins = NULL;
    char *def = NULL;
    if (sqlite3_prepare_v2(db, "SELECT definition FROM load_schema WHERE family=? AND "
                               "event_type=? AND version=?", -1, &sel, NULL) ||
        sqlite3_prepare_v2(db, "INSERT INTO load_schema VALUES (?,?,?,?,?)", -1, &ins, NULL)) {
        rc = st_fail(err, ST_ERR_IO, "state: schema registry: %s", sqlite3_errmsg(db));
        goto out;
    }
    for (size_t i = 0; i < r->n; i++) {
        const st_schema *s = r->schemas[i];
        if (s->builtin)
            continue;
        st_free(def);
        def = definition_of(s);
        if (!def) {
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
            goto out;
        }
        sqlite3_reset(sel);
        sqlite3_bind_text(sel, 1, s->family, -1, SQLITE_STATIC);
        sqlite3_bind_text(sel, 2, s->event_type, -1, SQLITE_STATIC);
        sqlite3_bind_text(sel, 3, s->version_text, -1, SQLITE_STATIC);
        int step = sqlite3_step(sel);
        if (step == SQLITE_ROW) {
            const char *old = (const char *)sqlite3_column_text(sel, 0);
            if (old && strcmp(old, def)) {
                rc = st_fail(err, ST_ERR_INVALID,
                             "%s: schema %s.%s version %s changed after it was registered "
                             "(add a new version instead)",
                             s->file ? s->file : "?", s->family, s->event_type, s->version_text);
                goto out;
            }
            continue;
        }
        sqlite3_reset(ins);
        sqlite3_bind_text(ins, 1, s->family, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, s->event_type, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 3, s->version_text, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 4, def, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 5, st_now_ms());
        if (sqlite3_step(ins) != SQLITE_DONE) {
            rc = st_fail(err, ST_ERR_IO, "state: registering %s.%s v%s: %s", s->family,
                         s->event_type, s->version_text, sqlite3_errmsg(db));
            goto out;
        }
    }
out:
    st_free(def);
    sqlite3_finalize(sel);
    sqlite3_finalize(ins);
    st_state_unlock(state);
    return rc;
}
