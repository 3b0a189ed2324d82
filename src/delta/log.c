/*
 * log.c - the Delta transaction log as data: path encoding, parsing of
 * newline-delimited actions (commits, V2 JSON checkpoints and checkpoint
 * rows rendered as JSON), and listing of _delta_log.
 *
 * snapshot.c replays what this file parses; checkpoint_read.c turns Parquet
 * checkpoints into the same action objects.
 */
#include "delta/delta_int.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- paths */

char *st_delta_url_decode_path(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *out = st_malloc(n + 1);
    if (!out)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = st_hex_digit((unsigned char)s[i + 1])) >= 0 &&
            (lo = st_hex_digit((unsigned char)s[i + 2])) >= 0) {
            out[j++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            /* a stray '%' is kept literally: some writers do not escape it */
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

char *st_delta_url_encode_path(const char *s)
{
    if (!s)
        return NULL;
    st_buf b;
    st_buf_init(&b, 0);
    st_rc rc = ST_OK;
    for (const unsigned char *p = (const unsigned char *)s; rc == ST_OK && *p; p++) {
        unsigned char c = *p;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/' || c == '=' ||
            c == ':' || c == '@' || c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' ||
            c == ')' || c == '*' || c == '+' || c == ',' || c == ';')
            rc = st_buf_putc(&b, (char)c);
        else
            rc = st_buf_printf(&b, "%%%02X", c);
    }
    if (rc) {
        st_buf_free(&b);
        return NULL;
    }
    return st_buf_take(&b);
}

char *st_delta_abs_path(const char *table_path, const char *log_path)
{
    char *dec = st_delta_url_decode_path(log_path);
    if (!dec)
        return NULL;
    if (!strncmp(dec, "file:", 5)) {
        const char *p = dec + 5;
        /* file:///x, file:/x and file://localhost/x all name /x */
        if (!strncmp(p, "//", 2)) {
            p += 2;
            const char *slash = strchr(p, '/');
            p = slash ? slash : p + strlen(p);
        }
        char *r = st_strdup(p);
        st_free(dec);
        return r;
    }
    if (dec[0] == '/' || !table_path || strstr(dec, "://")) {
        return dec;
    }
    char *r = st_path_join(table_path, dec);
    st_free(dec);
    return r;
}

char *st_delta_commit_path(const char *table_path, int64_t version)
{
    return st_sprintf("%s/_delta_log/%020lld.json", table_path, (long long)version);
}

/* ---------------------------------------------------------------- arena vectors */

/* Grows an arena-allocated array of elements of size sz: doubling, so the
 * wasted space stays below the final size. */
static void *vec_push(st_arena *a, void **arr, size_t *n, size_t *cap, size_t sz)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        void *na = st_arena_alloc(a, ncap * sz);
        if (!na)
            return NULL;
        if (*n)
            memcpy(na, *arr, *n * sz);
        *arr = na;
        *cap = ncap;
    }
    void *slot = (char *)*arr + (*n)++ * sz;
    memset(slot, 0, sz);
    return slot;
}

/* ---------------------------------------------------------------- JSON helpers */

static int64_t j_int(const json_t *o, const char *key, int64_t def)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_real(v))
        return (int64_t)json_real_value(v);
    if (json_is_string(v)) {
        /* some writers quote numbers (e.g. INSERTION_TIME tags); accept digits */
        char *end;
        long long x = strtoll(json_string_value(v), &end, 10);
        if (*json_string_value(v) && !*end)
            return x;
    }
    return def;
}

static bool j_bool(const json_t *o, const char *key, bool def)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_boolean(v))
        return json_is_true(v);
    return def;
}

static char *j_str(st_arena *a, const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? st_arena_strdup(a, s) : NULL;
}

/* JSON text of any value, in the arena. */
static char *j_dump(st_arena *a, const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (!s)
        return NULL;
    char *r = st_arena_strdup(a, s);
    free(s);
    return r;
}

/* A value rendered as a partition-value string (checkpoints may carry typed
 * partitionValues_parsed). */
static char *j_scalar_text(st_arena *a, const json_t *v)
{
    if (!v || json_is_null(v))
        return NULL;
    if (json_is_string(v))
        return st_arena_strdup(a, json_string_value(v));
    if (json_is_true(v))
        return st_arena_strdup(a, "true");
    if (json_is_false(v))
        return st_arena_strdup(a, "false");
    if (json_is_integer(v))
        return st_arena_sprintf(a, "%lld", (long long)json_integer_value(v));
    if (json_is_real(v))
        return st_arena_sprintf(a, "%.17g", json_real_value(v));
    return j_dump(a, v);
}

static st_rc parse_kv(st_arena *a, const json_t *obj, st_kv **out, size_t *n_out, st_err *err)
{
    *out = NULL;
    *n_out = 0;
    if (!obj || json_is_null(obj))
        return ST_OK;
    if (json_is_array(obj)) {
        /* a MAP rendered as [{"key":..,"value":..}] */
        size_t n = json_array_size(obj);
        *out = st_arena_alloc(a, (n ? n : 1) * sizeof **out);
        if (!*out)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            const json_t *e = json_array_get(obj, i);
            const char *k = json_string_value(json_object_get(e, "key"));
            if (!k)
                return st_fail(err, ST_ERR_PARSE, "map entry without a string key");
            (*out)[i].key = st_arena_strdup(a, k);
            (*out)[i].value = j_scalar_text(a, json_object_get(e, "value"));
        }
        *n_out = n;
        return ST_OK;
    }
    if (!json_is_object(obj))
        return st_fail(err, ST_ERR_PARSE, "expected a JSON object of strings");
    size_t n = json_object_size(obj);
    *out = st_arena_alloc(a, (n ? n : 1) * sizeof **out);
    if (!*out)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    const char *k;
    json_t *v;
    size_t i = 0;
    json_object_foreach((json_t *)obj, k, v)
    {
        (*out)[i].key = st_arena_strdup(a, k);
        (*out)[i].value = j_scalar_text(a, v);
        i++;
    }
    *n_out = i;
    return ST_OK;
}

static st_rc parse_strings(st_arena *a, const json_t *arr, char ***out, size_t *n_out, st_err *err)
{
    *out = NULL;
    *n_out = 0;
    if (!arr || json_is_null(arr))
        return ST_OK;
    if (!json_is_array(arr))
        return st_fail(err, ST_ERR_PARSE, "expected an array of strings");
    size_t n = json_array_size(arr);
    *out = st_arena_alloc(a, (n ? n : 1) * sizeof(char *));
    if (!*out)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (!s)
            return st_fail(err, ST_ERR_PARSE, "expected an array of strings");
        (*out)[i] = st_arena_strdup(a, s);
    }
    *n_out = n;
    return ST_OK;
}

static st_rc parse_dv(st_arena *a, const json_t *o, bool *has, st_delta_dv *dv, st_err *err)
{
    *has = false;
    memset(dv, 0, sizeof *dv);
    dv->offset = -1;
    dv->max_row_index = -1;
    if (!o || json_is_null(o))
        return ST_OK;
    const char *st = json_string_value(json_object_get(o, "storageType"));
    const char *p = json_string_value(json_object_get(o, "pathOrInlineDv"));
    if (!json_is_object(o) || !st || !p || strlen(st) != 1 || !strchr("uip", st[0]))
        return st_fail(err, ST_ERR_PARSE, "deletionVector: bad storageType/pathOrInlineDv");
    dv->storage_type = st[0];
    dv->path_or_inline = st_arena_strdup(a, p);
    dv->offset = (int32_t)j_int(o, "offset", -1);
    dv->size_in_bytes = (int32_t)j_int(o, "sizeInBytes", -1);
    dv->cardinality = j_int(o, "cardinality", -1);
    dv->max_row_index = (int32_t)j_int(o, "maxRowIndex", -1);
    if (dv->size_in_bytes < 0 || dv->cardinality < 0)
        return st_fail(err, ST_ERR_PARSE, "deletionVector: missing sizeInBytes/cardinality");
    *has = true;
    return ST_OK;
}

int64_t st_delta_stats_num_records(const char *stats)
{
    if (!stats)
        return -1;
    /* cheap scan instead of a full parse: stats can be large */
    const char *p = strstr(stats, "\"numRecords\"");
    if (!p)
        return -1;
    p += 12;
    while (*p == ' ' || *p == ':')
        p++;
    if (!isdigit((unsigned char)*p))
        return -1;
    return strtoll(p, NULL, 10);
}

/* ---------------------------------------------------------------- actions */

/* next power of two >= n (n > 0), the capacity vec_push would have grown to */
static size_t cap_for(size_t n)
{
    if (n == 0)
        return 0;
    size_t c = 8;
    while (c < n)
        c *= 2;
    return c;
}

static void *push_ptr(st_arena *a, void ***arr, size_t *n)
{
    size_t cap = cap_for(*n);
    void **slot = vec_push(a, (void **)arr, n, &cap, sizeof(void *));
    return slot;
}

static void *push_elem(st_arena *a, void **arr, size_t *n, size_t sz)
{
    size_t cap = cap_for(*n);
    return vec_push(a, arr, n, &cap, sz);
}

st_rc st_delta_commit_push_add(st_arena *a, st_delta_commit *c, st_delta_file *f, st_err *err)
{
    st_delta_file **slot = push_ptr(a, (void ***)&c->adds, &c->n_adds);
    if (!slot)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    *slot = f;
    return ST_OK;
}

st_rc st_delta_parse_kv_json(st_arena *a, const char *json, st_kv **out, size_t *n_out, st_err *err)
{
    json_t *j = json_loads(json, 0, NULL);
    if (!j)
        return st_fail(err, ST_ERR_PARSE, "bad JSON object \"%.60s\"", json);
    st_rc rc = parse_kv(a, j, out, n_out, err);
    json_decref(j);
    return rc;
}

st_rc st_delta_parse_dv_json(st_arena *a, const char *json, bool *has, st_delta_dv *dv, st_err *err)
{
    json_t *j = json_loads(json, 0, NULL);
    if (!j)
        return st_fail(err, ST_ERR_PARSE, "bad deletionVector JSON");
    st_rc rc = parse_dv(a, j, has, dv, err);
    json_decref(j);
    return rc;
}

static st_rc parse_add(const json_t *v, const char *table_path, st_arena *a, st_delta_commit *c,
                       st_err *err)
{
    const char *path = json_string_value(json_object_get(v, "path"));
    if (!path)
        return st_fail(err, ST_ERR_PARSE, "add action without a path");
    st_delta_file *f = st_arena_alloc(a, sizeof *f);
    if (!f)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    f->path = st_arena_strdup(a, path);
    char *abs = st_delta_abs_path(table_path, path);
    f->abs_path = abs ? st_arena_strdup(a, abs) : NULL;
    st_free(abs);
    const json_t *pv = json_object_get(v, "partitionValues");
    if (!pv || json_is_null(pv))
        pv = json_object_get(v, "partitionValues_parsed");
    st_rc rc = parse_kv(a, pv, &f->part, &f->n_part, err);
    if (rc)
        return rc;
    f->size = j_int(v, "size", -1);
    f->modification_time = j_int(v, "modificationTime", 0);
    f->data_change = j_bool(v, "dataChange", true);
    const json_t *st = json_object_get(v, "stats");
    if (json_is_string(st)) {
        f->stats = st_arena_strdup(a, json_string_value(st));
    } else {
        const json_t *sp = json_object_get(v, "stats_parsed");
        if (json_is_object(sp))
            f->stats = j_dump(a, sp);
    }
    const json_t *tags = json_object_get(v, "tags");
    if (json_is_object(tags))
        f->tags = j_dump(a, tags);
    else if (json_is_array(tags)) {
        /* MAP as entries: render as an object */
        json_t *o = json_object();
        for (size_t i = 0; o && i < json_array_size(tags); i++) {
            const json_t *e = json_array_get(tags, i);
            const char *k = json_string_value(json_object_get(e, "key"));
            if (k)
                json_object_set(o, k, json_object_get(e, "value"));
        }
        f->tags = o ? j_dump(a, o) : NULL;
        json_decref(o);
    }
    rc = parse_dv(a, json_object_get(v, "deletionVector"), &f->has_dv, &f->dv, err);
    if (rc)
        return rc;
    f->base_row_id = j_int(v, "baseRowId", -1);
    f->default_row_commit_version = j_int(v, "defaultRowCommitVersion", -1);
    f->num_records = st_delta_stats_num_records(f->stats);
    if (!f->path || !f->abs_path)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    st_delta_file **slot = push_ptr(a, (void ***)&c->adds, &c->n_adds);
    if (!slot)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    *slot = f;
    return ST_OK;
}

static st_rc parse_remove(const json_t *v, const char *table_path, st_arena *a,
                          st_delta_commit *c, st_err *err)
{
    const char *path = json_string_value(json_object_get(v, "path"));
    if (!path)
        return st_fail(err, ST_ERR_PARSE, "remove action without a path");
    st_delta_tombstone *t = st_arena_alloc(a, sizeof *t);
    if (!t)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    t->path = st_arena_strdup(a, path);
    char *abs = st_delta_abs_path(table_path, path);
    t->abs_path = abs ? st_arena_strdup(a, abs) : NULL;
    st_free(abs);
    t->deletion_timestamp = j_int(v, "deletionTimestamp", 0);
    t->data_change = j_bool(v, "dataChange", true);
    t->extended_file_metadata = j_bool(v, "extendedFileMetadata", false);
    st_rc rc = parse_kv(a, json_object_get(v, "partitionValues"), &t->part, &t->n_part, err);
    if (rc)
        return rc;
    t->size = j_int(v, "size", -1);
    rc = parse_dv(a, json_object_get(v, "deletionVector"), &t->has_dv, &t->dv, err);
    if (rc)
        return rc;
    if (!t->path || !t->abs_path)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    st_delta_tombstone **slot = push_ptr(a, (void ***)&c->removes, &c->n_removes);
    if (!slot)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    *slot = t;
    return ST_OK;
}

static void schema_cleanup(void *p) { st_delta_schema_free(p); }

static st_rc parse_metadata(const json_t *v, st_arena *a, st_delta_commit *c, st_err *err)
{
    st_delta_metadata *m = st_arena_alloc(a, sizeof *m);
    if (!m)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    m->id = j_str(a, v, "id");
    m->name = j_str(a, v, "name");
    m->description = j_str(a, v, "description");
    const json_t *fmt = json_object_get(v, "format");
    m->format_provider = j_str(a, fmt, "provider");
    if (!m->format_provider)
        m->format_provider = st_arena_strdup(a, "parquet");
    m->schema_string = j_str(a, v, "schemaString");
    if (!m->id || !m->schema_string)
        return st_fail(err, ST_ERR_PARSE, "metaData action without id or schemaString");
    st_rc rc = parse_strings(a, json_object_get(v, "partitionColumns"), &m->partition_columns,
                             &m->n_partition_columns, err);
    rc = rc ? rc : parse_kv(a, json_object_get(v, "configuration"), &m->configuration,
                            &m->n_configuration, err);
    if (rc)
        return rc;
    m->created_time = j_int(v, "createdTime", -1);
    rc = st_delta_schema_parse(m->schema_string, &m->schema, err);
    if (rc) {
        st_err_ctx(err, "metaData.schemaString");
        return rc;
    }
    if (!st_arena_cleanup(a, schema_cleanup, m->schema)) {
        st_delta_schema_free(m->schema);
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    c->metadata = m;
    return ST_OK;
}

static st_rc parse_protocol(const json_t *v, st_arena *a, st_delta_commit *c, st_err *err)
{
    st_delta_protocol *p = st_arena_alloc(a, sizeof *p);
    if (!p)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    const json_t *r = json_object_get(v, "minReaderVersion");
    const json_t *w = json_object_get(v, "minWriterVersion");
    if (!json_is_integer(r) || !json_is_integer(w))
        return st_fail(err, ST_ERR_PARSE, "protocol action without minReaderVersion/minWriterVersion");
    p->min_reader = (int)json_integer_value(r);
    p->min_writer = (int)json_integer_value(w);
    st_rc rc = parse_strings(a, json_object_get(v, "readerFeatures"), &p->reader_features,
                             &p->n_reader_features, err);
    rc = rc ? rc : parse_strings(a, json_object_get(v, "writerFeatures"), &p->writer_features,
                                 &p->n_writer_features, err);
    if (rc)
        return rc;
    c->protocol = p;
    return ST_OK;
}

st_rc st_delta_log_parse_action(const char *kind, json_t *v, const char *table_path,
                                st_arena *a, st_delta_commit *c, st_err *err)
{
    if (!v || json_is_null(v))
        return ST_OK;
    if (!json_is_object(v))
        return st_fail(err, ST_ERR_PARSE, "action \"%s\" is not a JSON object", kind);
    if (!strcmp(kind, "add"))
        return parse_add(v, table_path, a, c, err);
    if (!strcmp(kind, "remove"))
        return parse_remove(v, table_path, a, c, err);
    if (!strcmp(kind, "metaData"))
        return parse_metadata(v, a, c, err);
    if (!strcmp(kind, "protocol"))
        return parse_protocol(v, a, c, err);
    if (!strcmp(kind, "txn")) {
        const char *app = json_string_value(json_object_get(v, "appId"));
        const json_t *ver = json_object_get(v, "version");
        if (!app || !json_is_integer(ver))
            return st_fail(err, ST_ERR_PARSE, "txn action without appId/version");
        st_delta_apptxn *t = push_elem(a, (void **)&c->txns, &c->n_txns, sizeof *t);
        if (!t)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        t->app_id = st_arena_strdup(a, app);
        t->version = json_integer_value(ver);
        t->last_updated = j_int(v, "lastUpdated", -1);
        return ST_OK;
    }
    if (!strcmp(kind, "commitInfo")) {
        c->has_commit_info = true;
        c->commit_timestamp = j_int(v, "timestamp", -1);
        c->in_commit_timestamp = j_int(v, "inCommitTimestamp", -1);
        c->operation = j_str(a, v, "operation");
        c->commit_info_json = j_dump(a, v);
        return ST_OK;
    }
    if (!strcmp(kind, "cdc")) {
        const char *path = json_string_value(json_object_get(v, "path"));
        if (!path)
            return st_fail(err, ST_ERR_PARSE, "cdc action without a path");
        st_delta_cdc *d = push_elem(a, (void **)&c->cdcs, &c->n_cdcs, sizeof *d);
        if (!d)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        d->path = st_arena_strdup(a, path);
        char *abs = st_delta_abs_path(table_path, path);
        d->abs_path = abs ? st_arena_strdup(a, abs) : NULL;
        st_free(abs);
        d->size = j_int(v, "size", -1);
        d->data_change = j_bool(v, "dataChange", false);
        return parse_kv(a, json_object_get(v, "partitionValues"), &d->part, &d->n_part, err);
    }
    if (!strcmp(kind, "domainMetadata")) {
        const char *dom = json_string_value(json_object_get(v, "domain"));
        if (!dom)
            return st_fail(err, ST_ERR_PARSE, "domainMetadata action without a domain");
        st_delta_domain *d = push_elem(a, (void **)&c->domains, &c->n_domains, sizeof *d);
        if (!d)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        d->domain = st_arena_strdup(a, dom);
        const json_t *cfg = json_object_get(v, "configuration");
        d->configuration = json_is_string(cfg) ? st_arena_strdup(a, json_string_value(cfg))
                                               : (cfg && !json_is_null(cfg) ? j_dump(a, cfg) : NULL);
        d->removed = j_bool(v, "removed", false);
        return ST_OK;
    }
    if (!strcmp(kind, "checkpointMetadata")) {
        c->has_checkpoint_metadata = true;
        c->checkpoint_metadata_version = j_int(v, "version", -1);
        return ST_OK;
    }
    if (!strcmp(kind, "sidecar")) {
        const char *path = json_string_value(json_object_get(v, "path"));
        if (!path)
            return st_fail(err, ST_ERR_PARSE, "sidecar action without a path");
        st_delta_sidecar *s = push_elem(a, (void **)&c->sidecars, &c->n_sidecars, sizeof *s);
        if (!s)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        s->path = st_arena_strdup(a, path);
        s->size = j_int(v, "sizeInBytes", -1);
        s->modification_time = j_int(v, "modificationTime", -1);
        return ST_OK;
    }
    /* unknown actions are ignored, as the protocol requires */
    return ST_OK;
}

st_rc st_delta_log_parse_commit(const char *data, size_t len, const char *what,
                                const char *table_path, st_arena *a, st_delta_commit *out,
                                st_err *err)
{
    st_delta_commit c;
    memset(&c, 0, sizeof c);
    c.commit_timestamp = -1;
    c.in_commit_timestamp = -1;
    c.checkpoint_metadata_version = -1;
    if (!what)
        what = "commit";
    size_t pos = 0;
    int line = 0;
    while (pos < len) {
        size_t end = pos;
        while (end < len && data[end] != '\n')
            end++;
        line++;
        size_t s = pos, e = end;
        pos = end + 1;
        while (s < e && isspace((unsigned char)data[s]))
            s++;
        while (e > s && isspace((unsigned char)data[e - 1]))
            e--;
        if (s == e)
            continue;
        json_error_t je;
        json_t *obj = json_loadb(data + s, e - s, JSON_REJECT_DUPLICATES, &je);
        if (!obj)
            return st_fail(err, ST_ERR_PARSE, "%s: line %d: invalid JSON: %s (column %d)", what,
                           line, je.text, je.column);
        if (!json_is_object(obj)) {
            json_decref(obj);
            return st_fail(err, ST_ERR_PARSE, "%s: line %d: an action must be a JSON object",
                           what, line);
        }
        const char *k;
        json_t *v;
        st_rc rc = ST_OK;
        json_object_foreach(obj, k, v)
        {
            rc = st_delta_log_parse_action(k, v, table_path, a, &c, err);
            if (rc)
                break;
        }
        json_decref(obj);
        if (rc) {
            st_err_ctx(err, "%s: line %d", what, line);
            return rc;
        }
    }
    *out = c;
    return ST_OK;
}

/* ---------------------------------------------------------------- listing */

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

static bool is_uuid(const char *s, size_t n)
{
    if (n != 36)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

typedef struct raw_ckpt {
    int64_t version;
    st_delta_ckpt_kind kind;
    int part, n_parts;
    char *name;
} raw_ckpt;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_raw(const void *a, const void *b)
{
    const raw_ckpt *x = a, *y = b;
    if (x->version != y->version)
        return x->version < y->version ? -1 : 1;
    if (x->kind != y->kind)
        return (int)x->kind - (int)y->kind;
    if (x->n_parts != y->n_parts)
        return x->n_parts - y->n_parts;
    if (x->part != y->part)
        return x->part - y->part;
    return strcmp(x->name, y->name);
}

void st_delta_listing_free(st_delta_listing *l)
{
    if (!l)
        return;
    st_arena_free(l->arena);
    st_free(l);
}

bool st_delta_listing_has_commit(const st_delta_listing *l, int64_t v)
{
    size_t lo = 0, hi = l->n_commits;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (l->commits[mid] == v)
            return true;
        if (l->commits[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static int64_t read_last_checkpoint(const char *logdir)
{
    char *p = st_path_join(logdir, "_last_checkpoint");
    char *data = NULL;
    size_t len = 0;
    int64_t v = -1;
    if (p && st_file_read(p, 1 << 20, &data, &len, NULL) == ST_OK) {
        json_t *j = json_loadb(data, len, 0, NULL);
        const json_t *jv = json_object_get(j, "version");
        if (json_is_integer(jv))
            v = json_integer_value(jv);
        else
            st_debug("delta: %s is unreadable, ignoring it", p);
        json_decref(j);
    }
    st_free(data);
    st_free(p);
    return v;
}

st_rc st_delta_list_log(const char *table_path, st_delta_listing **out, st_err *err)
{
    char *logdir = st_path_join(table_path, "_delta_log");
    if (!logdir)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    DIR *d = opendir(logdir);
    if (!d) {
        st_rc rc = st_fail_errno(err, errno == ENOENT ? ST_ERR_NOTFOUND : ST_ERR_IO,
                                 "no Delta table at %s: cannot open %s", table_path, logdir);
        st_free(logdir);
        return rc;
    }
    st_delta_listing *l = st_calloc(1, sizeof *l);
    st_arena *a = st_arena_new(0);
    int64_t *commits = NULL;
    size_t n_commits = 0, cap_commits = 0;
    raw_ckpt *raws = NULL;
    size_t n_raw = 0, cap_raw = 0;
    st_rc rc = ST_OK;
    if (!l || !a) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto done;
    }
    l->arena = a;
    l->last_checkpoint_version = -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        size_t len = strlen(n);
        if (!strcmp(n, "_last_checkpoint")) {
            l->has_last_checkpoint = true;
            continue;
        }
        if (len < 21 || !all_digits(n, 20) || n[20] != '.')
            continue;
        int64_t v = strtoll(n, NULL, 10);
        const char *rest = n + 21;
        size_t rlen = len - 21;
        if (!strcmp(rest, "json")) {
            if (n_commits == cap_commits) {
                size_t nc = cap_commits ? cap_commits * 2 : 64;
                int64_t *nv = st_realloc(commits, nc * sizeof *nv);
                if (!nv) {
                    rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
                    goto done;
                }
                commits = nv;
                cap_commits = nc;
            }
            commits[n_commits++] = v;
            continue;
        }
        if (strncmp(rest, "checkpoint.", 11))
            continue;
        rest += 11;
        rlen -= 11;
        raw_ckpt r = {.version = v, .part = 1, .n_parts = 1};
        if (!strcmp(rest, "parquet")) {
            r.kind = ST_CKPT_CLASSIC;
        } else if (rlen == 10 + 1 + 10 + 8 && all_digits(rest, 10) && rest[10] == '.' &&
                   all_digits(rest + 11, 10) && !strcmp(rest + 21, ".parquet")) {
            r.kind = ST_CKPT_MULTI;
            r.part = (int)strtol(rest, NULL, 10);
            r.n_parts = (int)strtol(rest + 11, NULL, 10);
            if (r.part < 1 || r.n_parts < 1 || r.part > r.n_parts)
                continue;
        } else if (rlen > 37 && is_uuid(rest, 36) && !strcmp(rest + 36, ".json")) {
            r.kind = ST_CKPT_V2_JSON;
        } else if (rlen > 37 && is_uuid(rest, 36) && !strcmp(rest + 36, ".parquet")) {
            r.kind = ST_CKPT_V2_PARQUET;
        } else {
            continue;
        }
        r.name = st_arena_sprintf(a, "%s/%s", logdir, n);
        if (!r.name) {
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
            goto done;
        }
        if (n_raw == cap_raw) {
            size_t nc = cap_raw ? cap_raw * 2 : 16;
            raw_ckpt *nr = st_realloc(raws, nc * sizeof *nr);
            if (!nr) {
                rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
                goto done;
            }
            raws = nr;
            cap_raw = nc;
        }
        raws[n_raw++] = r;
    }
    if (n_commits)
        qsort(commits, n_commits, sizeof *commits, cmp_i64);
    l->commits = st_arena_alloc(a, (n_commits ? n_commits : 1) * sizeof *commits);
    if (!l->commits) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (n_commits)
        memcpy(l->commits, commits, n_commits * sizeof *commits);
    l->n_commits = n_commits;
    /* group checkpoint files: a multi-part checkpoint counts only when every
     * part of the same (version, total) is present */
    if (n_raw)
        qsort(raws, n_raw, sizeof *raws, cmp_raw);
    l->ckpts = st_arena_alloc(a, (n_raw ? n_raw : 1) * sizeof *l->ckpts);
    if (!l->ckpts) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_raw;) {
        size_t j = i + 1;
        if (raws[i].kind == ST_CKPT_MULTI) {
            while (j < n_raw && raws[j].kind == ST_CKPT_MULTI && raws[j].version == raws[i].version &&
                   raws[j].n_parts == raws[i].n_parts)
                j++;
            /* distinct parts 1..n must all be there */
            int want = 1;
            for (size_t k = i; k < j; k++)
                if (raws[k].part == want)
                    want++;
            if (want - 1 != raws[i].n_parts) {
                st_debug("delta: incomplete multi-part checkpoint at version %lld ignored",
                         (long long)raws[i].version);
                i = j;
                continue;
            }
        }
        st_delta_ckpt *ck = &l->ckpts[l->n_ckpts++];
        ck->version = raws[i].version;
        ck->kind = raws[i].kind;
        ck->n_parts = raws[i].kind == ST_CKPT_MULTI ? raws[i].n_parts : 1;
        ck->files = st_arena_alloc(a, (size_t)ck->n_parts * sizeof(char *));
        if (!ck->files) {
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
            goto done;
        }
        if (ck->kind == ST_CKPT_MULTI) {
            int want = 1;
            for (size_t k = i; k < j; k++)
                if (raws[k].part == want)
                    ck->files[want++ - 1] = raws[k].name;
        } else {
            ck->files[0] = raws[i].name;
        }
        i = j;
    }
    if (l->has_last_checkpoint)
        l->last_checkpoint_version = read_last_checkpoint(logdir);
done:
    closedir(d);
    st_free(commits);
    st_free(raws);
    st_free(logdir);
    if (rc) {
        if (l)
            l->arena = NULL;
        st_arena_free(a);
        st_free(l);
        return rc;
    }
    *out = l;
    return ST_OK;
}
