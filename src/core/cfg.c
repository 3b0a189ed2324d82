/*
 * cfg.c - YAML configuration loaded into a tree that remembers file, line
 * and dotted key path of every node, so each error can say where it is.
 *
 * Built on libyaml's event parser.  Anchors/aliases are refused (a config
 * file has no need for them and they allow exponential expansion).
 */
#include "strata/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 64

struct st_cfg {
    st_cfg_kind kind;
    int line;
    char *path;      /* ARENA */
    char *scalar;    /* ARENA, scalars only */
    char **keys;     /* ARENA, maps only */
    st_cfg **items;  /* ARENA */
    size_t n, cap;
    const char *file;
};

struct st_cfg_doc {
    st_arena *arena;
    st_cfg *root;
    char *file;
};

static st_cfg *node_new(st_cfg_doc *d, st_cfg_kind kind, int line, const char *path)
{
    st_cfg *n = st_arena_alloc(d->arena, sizeof *n);
    if (!n)
        return NULL;
    n->kind = kind;
    n->line = line;
    n->path = st_arena_strdup(d->arena, path);
    n->file = d->file;
    return n;
}

static bool node_push(st_cfg_doc *d, st_cfg *parent, const char *key, st_cfg *child)
{
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        st_cfg **items = st_arena_alloc(d->arena, cap * sizeof *items);
        char **keys = st_arena_alloc(d->arena, cap * sizeof *keys);
        if (!items || !keys)
            return false;
        if (parent->n) {
            memcpy(items, parent->items, parent->n * sizeof *items);
            memcpy(keys, parent->keys, parent->n * sizeof *keys);
        }
        parent->items = items;
        parent->keys = keys;
        parent->cap = cap;
    }
    parent->keys[parent->n] = key ? st_arena_strdup(d->arena, key) : NULL;
    parent->items[parent->n++] = child;
    return true;
}

struct frame {
    st_cfg *node;
    char *pending_key;  /* maps: key read, value not yet */
    int key_line;       /* line of pending_key: where a map/list value "is" */
};

static char *child_path(st_cfg_doc *d, const st_cfg *parent, const char *key, size_t index)
{
    if (!parent)
        return st_arena_strdup(d->arena, "");
    if (parent->kind == ST_CFG_MAP)
        return parent->path[0] ? st_arena_sprintf(d->arena, "%s.%s", parent->path, key)
                               : st_arena_strdup(d->arena, key);
    return st_arena_sprintf(d->arena, "%s[%zu]", parent->path, index);
}

static st_rc parse(st_cfg_doc *d, yaml_parser_t *p, st_err *err)
{
    struct frame stack[MAX_DEPTH];
    int depth = 0;
    st_rc rc = ST_OK;
    bool done = false;
    while (!done && rc == ST_OK) {
        yaml_event_t ev;
        if (!yaml_parser_parse(p, &ev)) {
            return st_fail(err, ST_ERR_PARSE, "%s:%zu: %s%s%s", d->file,
                           p->problem_mark.line + 1, p->problem ? p->problem : "syntax error",
                           p->context ? " " : "", p->context ? p->context : "");
        }
        int line = (int)ev.start_mark.line + 1;
        st_cfg *parent = depth ? stack[depth - 1].node : NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            done = ev.type == YAML_STREAM_END_EVENT || d->root != NULL;
            break;
        case YAML_ALIAS_EVENT:
            rc = st_fail(err, ST_ERR_PARSE, "%s:%d: aliases are not supported", d->file, line);
            break;
        case YAML_SCALAR_EVENT:
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT: {
            const char *val = ev.type == YAML_SCALAR_EVENT ? (const char *)ev.data.scalar.value : NULL;
            if (parent && parent->kind == ST_CFG_MAP && !stack[depth - 1].pending_key) {
                if (ev.type != YAML_SCALAR_EVENT) {
                    rc = st_fail(err, ST_ERR_PARSE, "%s:%d: %s: map keys must be scalars",
                                 d->file, line, parent->path);
                    break;
                }
                for (size_t i = 0; i < parent->n; i++) {
                    if (!strcmp(parent->keys[i], val)) {
                        rc = st_fail(err, ST_ERR_PARSE, "%s:%d: %s%s%s: duplicate key", d->file,
                                     line, parent->path, parent->path[0] ? "." : "", val);
                        break;
                    }
                }
                if (rc)
                    break;
                stack[depth - 1].pending_key = st_arena_strdup(d->arena, val);
                stack[depth - 1].key_line = line;
                break;
            }
            const char *key = parent && parent->kind == ST_CFG_MAP ? stack[depth - 1].pending_key : NULL;
            char *path = child_path(d, parent, key, parent ? parent->n : 0);
            st_cfg_kind kind = ev.type == YAML_SCALAR_EVENT ? ST_CFG_SCALAR
                               : ev.type == YAML_MAPPING_START_EVENT ? ST_CFG_MAP
                                                                     : ST_CFG_SEQ;
            int at = key && kind != ST_CFG_SCALAR ? stack[depth - 1].key_line : line;
            st_cfg *n = path ? node_new(d, kind, at, path) : NULL;
            if (!n) {
                rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
                break;
            }
            if (kind == ST_CFG_SCALAR) {
                n->scalar = st_arena_strndup(d->arena, val, ev.data.scalar.length);
                /* a plain `~`/`null` is an absent value */
                if (ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                    (!strcmp(val, "~") || !strcmp(val, "null") || !strcmp(val, "")))
                    n->scalar = NULL;
            }
            if (parent) {
                if (!node_push(d, parent, key, n)) {
                    rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
                    break;
                }
                stack[depth - 1].pending_key = NULL;
            } else {
                d->root = n;
            }
            if (kind != ST_CFG_SCALAR) {
                if (depth == MAX_DEPTH) {
                    rc = st_fail(err, ST_ERR_LIMIT, "%s:%d: nesting deeper than %d", d->file, line,
                                 MAX_DEPTH);
                    break;
                }
                stack[depth].node = n;
                stack[depth].pending_key = NULL;
                depth++;
            }
            break;
        }
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            if (depth > 0)
                depth--;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    return rc;
}

st_rc st_cfg_load_string(const char *name, const char *text, size_t len, st_cfg_doc **out,
                         st_err *err)
{
    st_cfg_doc *d = st_calloc(1, sizeof *d);
    if (!d)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    d->arena = st_arena_new(16 * 1024);
    d->file = st_strdup(name ? name : "<config>");
    if (!d->arena || !d->file) {
        st_cfg_doc_free(d);
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        st_cfg_doc_free(d);
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    st_rc rc = parse(d, &p, err);
    yaml_parser_delete(&p);
    if (rc == ST_OK && !d->root) {
        /* empty document: an empty map */
        d->root = node_new(d, ST_CFG_MAP, 1, "");
        if (!d->root)
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    if (rc) {
        st_cfg_doc_free(d);
        return rc;
    }
    *out = d;
    return ST_OK;
}

st_rc st_cfg_load_file(const char *path, st_cfg_doc **out, st_err *err)
{
    char *text = NULL;
    size_t len = 0;
    st_rc rc = st_file_read(path, 16 << 20, &text, &len, err);
    if (rc)
        return rc;
    rc = st_cfg_load_string(path, text, len, out, err);
    st_free(text);
    return rc;
}

void st_cfg_doc_free(st_cfg_doc *doc)
{
    if (!doc)
        return;
    st_arena_free(doc->arena);
    st_free(doc->file);
    st_free(doc);
}

const st_cfg *st_cfg_root(const st_cfg_doc *doc) { return doc->root; }
st_cfg_kind st_cfg_kind_of(const st_cfg *n) { return n->kind; }
int st_cfg_line(const st_cfg *n) { return n->line; }
const char *st_cfg_path(const st_cfg *n) { return n->path; }
const char *st_cfg_file(const st_cfg *n) { return n->file; }
size_t st_cfg_len(const st_cfg *n) { return n ? n->n : 0; }
const st_cfg *st_cfg_at(const st_cfg *n, size_t i) { return i < n->n ? n->items[i] : NULL; }
const char *st_cfg_key_at(const st_cfg *n, size_t i)
{
    return n->kind == ST_CFG_MAP && i < n->n ? n->keys[i] : NULL;
}
const char *st_cfg_scalar(const st_cfg *n)
{
    return n && n->kind == ST_CFG_SCALAR ? n->scalar : NULL;
}

const st_cfg *st_cfg_get(const st_cfg *map, const char *key)
{
    if (!map || map->kind != ST_CFG_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i], key))
            return map->items[i];
    return NULL;
}

st_rc st_cfg_fail(const st_cfg *n, st_err *err, st_rc code, const char *fmt, ...)
{
    if (!err)
        return code;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return st_fail(err, code, "%s:%d: %s: %s", n->file, n->line, n->path[0] ? n->path : "(top)",
                   msg);
}

static const char *kind_name(st_cfg_kind k)
{
    return k == ST_CFG_MAP ? "a map" : k == ST_CFG_SEQ ? "a list" : "a scalar";
}

st_rc st_cfg_get_str(const st_cfg *map, const char *key, const char *def, const char **out,
                     st_err *err)
{
    const st_cfg *n = st_cfg_get(map, key);
    if (!n || (n->kind == ST_CFG_SCALAR && !n->scalar)) {
        *out = def;
        return ST_OK;
    }
    if (n->kind != ST_CFG_SCALAR)
        return st_cfg_fail(n, err, ST_ERR_INVALID, "expected a string, found %s",
                           kind_name(n->kind));
    *out = n->scalar;
    return ST_OK;
}

st_rc st_cfg_get_int(const st_cfg *map, const char *key, int64_t def, int64_t *out, st_err *err)
{
    const char *s = NULL;
    st_rc rc = st_cfg_get_str(map, key, NULL, &s, err);
    if (rc)
        return rc;
    if (!s) {
        *out = def;
        return ST_OK;
    }
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end)
        return st_cfg_fail(st_cfg_get(map, key), err, ST_ERR_INVALID,
                           "expected an integer, found '%s'", s);
    *out = v;
    return ST_OK;
}

st_rc st_cfg_get_bool(const st_cfg *map, const char *key, bool def, bool *out, st_err *err)
{
    const char *s = NULL;
    st_rc rc = st_cfg_get_str(map, key, NULL, &s, err);
    if (rc)
        return rc;
    if (!s) {
        *out = def;
        return ST_OK;
    }
    if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on"))
        *out = true;
    else if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off"))
        *out = false;
    else
        return st_cfg_fail(st_cfg_get(map, key), err, ST_ERR_INVALID,
                           "expected true or false, found '%s'", s);
    return ST_OK;
}

st_rc st_cfg_check_keys(const st_cfg *map, const char *const *allowed, st_err *err)
{
    if (!map)
        return ST_OK;
    if (map->kind != ST_CFG_MAP)
        return st_cfg_fail(map, err, ST_ERR_INVALID, "expected a map, found %s",
                           kind_name(map->kind));
    for (size_t i = 0; i < map->n; i++) {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = !strcmp(*a, map->keys[i]);
        if (!ok)
            return st_cfg_fail(map->items[i], err, ST_ERR_INVALID, "unknown key '%s'",
                               map->keys[i]);
    }
    return ST_OK;
}
