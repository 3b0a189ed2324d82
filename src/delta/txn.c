/*
 * txn.c - Delta commits: st_delta_create (version 0), transactions that
 * collect add/remove/cdc/metaData/txn actions, and st_delta_txn_commit,
 * which writes N.json with put-if-absent (link(2)) and, on a lost race,
 * reads the winning commits, classifies conflicts and rebases what is safe.
 * write.c builds the operations on top; checkpoint.c runs after commits
 * that hit the checkpoint interval.
 */
#include "delta/write_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_COMMIT_TRIES 200
#define MAX_COMMIT_BYTES ((size_t)1 << 31)

typedef struct pend {
    char *key;       /* logical file (decoded path + DV id), see file_key() */
    char *line;      /* the serialized action */
    st_kv *part;
    size_t n_part;
} pend;

typedef struct pend_vec {
    pend *v;
    size_t n, cap;
} pend_vec;

struct st_delta_txn {
    st_engine *eng;
    char *table_path;
    st_delta_snapshot *own;
    const st_delta_snapshot *snap;
    char *operation;
    pend_vec adds, removes, cdcs;
    st_map *paths;
    st_map *removed;           /* decoded removed paths */
    st_delta_schema *schema;   /* new schema, or NULL */
    st_kv *config;             /* new configuration (copy), when changed */
    size_t n_config;
    bool config_changed;
    st_kv *apps;               /* app_id -> version text */
    size_t n_apps;
    st_kv *params;
    size_t n_params;
    bool read_declared;
    char *read_pred;
    bool blind_forced_off;
};

/* ---------------------------------------------------------------- helpers */

static void kv_free(st_kv *kv, size_t n)
{
    for (size_t i = 0; kv && i < n; i++) {
        st_free(kv[i].key);
        st_free(kv[i].value);
    }
    st_free(kv);
}

static st_rc kv_copy(const st_kv *src, size_t n, st_kv **out)
{
    *out = NULL;
    if (n == 0)
        return ST_OK;
    st_kv *kv = st_calloc(n, sizeof *kv);
    if (!kv)
        return ST_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        kv[i].key = st_strdup(src[i].key);
        kv[i].value = st_strdup(src[i].value);
        if (!kv[i].key || (src[i].value && !kv[i].value)) {
            kv_free(kv, n);
            return ST_ERR_NOMEM;
        }
    }
    *out = kv;
    return ST_OK;
}

/* Sets key=value in a growable kv array (replacing an existing key). */
static st_rc kv_set(st_kv **kv, size_t *n, const char *key, const char *value)
{
    for (size_t i = 0; i < *n; i++) {
        if (!strcmp((*kv)[i].key, key)) {
            char *v = st_strdup(value);
            if (value && !v)
                return ST_ERR_NOMEM;
            st_free((*kv)[i].value);
            (*kv)[i].value = v;
            return ST_OK;
        }
    }
    st_kv *nk = st_realloc(*kv, (*n + 1) * sizeof *nk);
    if (!nk)
        return ST_ERR_NOMEM;
    *kv = nk;
    nk[*n].key = st_strdup(key);
    nk[*n].value = st_strdup(value);
    (*n)++;
    return nk[*n - 1].key ? ST_OK : ST_ERR_NOMEM;
}

static const char *kv_get(const st_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(kv[i].key, key))
            return kv[i].value;
    return NULL;
}

static void pend_vec_free(pend_vec *pv)
{
    for (size_t i = 0; i < pv->n; i++) {
        st_free(pv->v[i].key);
        st_free(pv->v[i].line);
        kv_free(pv->v[i].part, pv->v[i].n_part);
    }
    st_free(pv->v);
}

static pend *pend_push(pend_vec *pv)
{
    if (pv->n == pv->cap) {
        size_t nc = pv->cap ? pv->cap * 2 : 16;
        pend *nv = st_realloc(pv->v, nc * sizeof *nv);
        if (!nv)
            return NULL;
        pv->v = nv;
        pv->cap = nc;
    }
    pend *p = &pv->v[pv->n++];
    memset(p, 0, sizeof *p);
    return p;
}

static st_rc put_part_values(st_buf *b, const st_kv *part, size_t n)
{
    st_rc rc = st_buf_putc(b, '{');
    for (size_t i = 0; rc == ST_OK && i < n; i++) {
        if (i)
            rc = st_buf_putc(b, ',');
        rc = rc ? rc : st_buf_json_str(b, part[i].key);
        rc = rc ? rc : st_buf_putc(b, ':');
        if (rc == ST_OK)
            rc = part[i].value ? st_buf_json_str(b, part[i].value) : st_buf_puts(b, "null");
    }
    return rc ? rc : st_buf_putc(b, '}');
}

static st_rc put_dv(st_buf *b, const st_delta_dv *dv)
{
    st_rc rc = st_buf_printf(b, ",\"deletionVector\":{\"storageType\":\"%c\",\"pathOrInlineDv\":",
                             dv->storage_type);
    rc = rc ? rc : st_buf_json_str(b, dv->path_or_inline ? dv->path_or_inline : "");
    if (rc == ST_OK && dv->offset >= 0)
        rc = st_buf_printf(b, ",\"offset\":%d", (int)dv->offset);
    rc = rc ? rc
            : st_buf_printf(b, ",\"sizeInBytes\":%d,\"cardinality\":%lld", (int)dv->size_in_bytes,
                            (long long)dv->cardinality);
    if (rc == ST_OK && dv->max_row_index >= 0)
        rc = st_buf_printf(b, ",\"maxRowIndex\":%d", (int)dv->max_row_index);
    return rc ? rc : st_buf_putc(b, '}');
}

const char *st_deltaw_txn_table(const st_delta_txn *t)
{
    return t->table_path;
}

const st_delta_schema *st_deltaw_txn_schema(const st_delta_txn *t)
{
    return t->schema ? t->schema : t->snap->metadata.schema;
}

void st_deltaw_txn_set_blind(st_delta_txn *t, bool blind)
{
    t->blind_forced_off = !blind;
}

int64_t st_deltaw_interval_ms(const char *s, int64_t def)
{
    if (!s)
        return def;
    while (isspace((unsigned char)*s))
        s++;
    if (!strncasecmp(s, "interval", 8))
        s += 8;
    char *end;
    double n = strtod(s, &end);
    if (end == s)
        return def;
    while (isspace((unsigned char)*end))
        end++;
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"millisecond", 1}, {"ms", 1},          {"second", 1000},     {"sec", 1000},
                 {"minute", 60000},  {"min", 60000},     {"hour", 3600000.0},  {"day", 86400000.0},
                 {"week", 604800000.0}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strncasecmp(end, units[i].unit, strlen(units[i].unit)))
            return (int64_t)(n * units[i].ms);
    return def;
}

/* ---------------------------------------------------------------- protocol */

typedef struct proto {
    int r, w;
    const char *rf[24];
    size_t n_rf;
    const char *wf[24];
    size_t n_wf;
} proto;

static void feat_add(const char **list, size_t *n, const char *f)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(list[i], f))
            return;
    if (*n < 24)
        list[(*n)++] = f;
}

static bool type_has_ntz(const st_dtype *t)
{
    if (t->kind == ST_DT_TIMESTAMP_NTZ)
        return true;
    for (size_t i = 0; i < t->n_fields; i++)
        if (type_has_ntz(&t->fields[i].type))
            return true;
    return (t->elem && type_has_ntz(t->elem)) || (t->value && type_has_ntz(t->value));
}

static bool schema_has_ntz(const st_delta_schema *s)
{
    for (size_t i = 0; s && i < s->n_fields; i++)
        if (type_has_ntz(&s->fields[i].type))
            return true;
    return false;
}

/* The protocol a table needs given its current protocol (cur may be NULL)
 * and its configuration and schema: raised only as far as features need. */
static void required_protocol(const st_delta_protocol *cur, const st_kv *cfg, size_t n_cfg,
                              const st_delta_schema *schema, proto *p)
{
    memset(p, 0, sizeof *p);
    p->r = cur ? cur->min_reader : 1;
    p->w = cur ? cur->min_writer : 2;
    if (p->w < 2)
        p->w = 2;
    for (size_t i = 0; cur && i < cur->n_reader_features; i++)
        feat_add(p->rf, &p->n_rf, cur->reader_features[i]);
    for (size_t i = 0; cur && i < cur->n_writer_features; i++)
        feat_add(p->wf, &p->n_wf, cur->writer_features[i]);
    const char *cdf_v = kv_get(cfg, n_cfg, "delta.enableChangeDataFeed");
    const char *cm_v = kv_get(cfg, n_cfg, "delta.columnMapping.mode");
    bool cdf = cdf_v && !strcasecmp(cdf_v, "true");
    bool cm = cm_v && (!strcmp(cm_v, "name") || !strcmp(cm_v, "id"));
    const char *dv_v = kv_get(cfg, n_cfg, "delta.enableDeletionVectors");
    bool dv = dv_v && !strcasecmp(dv_v, "true");
    bool ntz = schema_has_ntz(schema);
    if ((ntz || dv) && p->w < 7) {
        /* switch to explicit feature lists, keeping what the legacy
         * versions implied */
        feat_add(p->wf, &p->n_wf, "appendOnly");
        feat_add(p->wf, &p->n_wf, "invariants");
        if (p->w >= 3)
            feat_add(p->wf, &p->n_wf, "checkConstraints");
        if (p->w >= 4) {
            feat_add(p->wf, &p->n_wf, "changeDataFeed");
            feat_add(p->wf, &p->n_wf, "generatedColumns");
        }
        if (p->w >= 5) {
            feat_add(p->wf, &p->n_wf, "columnMapping");
            feat_add(p->rf, &p->n_rf, "columnMapping");
        }
        if (p->w >= 6)
            feat_add(p->wf, &p->n_wf, "identityColumns");
        p->r = 3;
        p->w = 7;
    }
    if (p->w >= 7) {
        if (p->r < 3 && (ntz || cm || dv)) {
            /* reader 2 implied columnMapping; reader 3 lists it */
            if (p->r == 2)
                feat_add(p->rf, &p->n_rf, "columnMapping");
            p->r = 3;
        }
        if (cdf)
            feat_add(p->wf, &p->n_wf, "changeDataFeed");
        if (cm) {
            feat_add(p->wf, &p->n_wf, "columnMapping");
            feat_add(p->rf, &p->n_rf, "columnMapping");
        }
        if (ntz) {
            feat_add(p->wf, &p->n_wf, "timestampNtz");
            feat_add(p->rf, &p->n_rf, "timestampNtz");
        }
        if (dv) {
            feat_add(p->wf, &p->n_wf, "deletionVectors");
            feat_add(p->rf, &p->n_rf, "deletionVectors");
        }
    } else {
        if (cdf && p->w < 4)
            p->w = 4;
        if (cm) {
            if (p->w < 5)
                p->w = 5;
            if (p->r < 2)
                p->r = 2;
        }
    }
}

static bool proto_differs(const proto *p, const st_delta_protocol *cur)
{
    if (!cur)
        return true;
    return p->r != cur->min_reader || p->w != cur->min_writer ||
           p->n_rf != cur->n_reader_features || p->n_wf != cur->n_writer_features;
}

static st_rc put_protocol(st_buf *b, const proto *p)
{
    st_rc rc = st_buf_printf(b, "{\"protocol\":{\"minReaderVersion\":%d,\"minWriterVersion\":%d",
                             p->r, p->w);
    if (rc == ST_OK && p->r >= 3) {
        rc = st_buf_puts(b, ",\"readerFeatures\":[");
        for (size_t i = 0; rc == ST_OK && i < p->n_rf; i++) {
            rc = i ? st_buf_putc(b, ',') : ST_OK;
            rc = rc ? rc : st_buf_json_str(b, p->rf[i]);
        }
        rc = rc ? rc : st_buf_putc(b, ']');
    }
    if (rc == ST_OK && p->w >= 7) {
        rc = st_buf_puts(b, ",\"writerFeatures\":[");
        for (size_t i = 0; rc == ST_OK && i < p->n_wf; i++) {
            rc = i ? st_buf_putc(b, ',') : ST_OK;
            rc = rc ? rc : st_buf_json_str(b, p->wf[i]);
        }
        rc = rc ? rc : st_buf_putc(b, ']');
    }
    return rc ? rc : st_buf_puts(b, "}}\n");
}

static bool fields_have_meta(const st_dfield *f, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (f[i].metadata_json && strstr(f[i].metadata_json, key))
            return true;
        if (fields_have_meta(f[i].type.fields, f[i].type.n_fields, key))
            return true;
    }
    return false;
}

st_rc st_deltaw_check_write_protocol(const st_delta_protocol *p, const st_delta_metadata *m,
                                     const char *table_path, st_err *err)
{
    static const char *known[] = {"appendOnly",     "invariants",       "checkConstraints",
                                  "changeDataFeed", "generatedColumns", "identityColumns",
                                  "columnMapping",  "timestampNtz",     "domainMetadata",
                                  "vacuumProtocolCheck", "deletionVectors", NULL};
    if (p->min_writer > 7)
        return st_fail(err, ST_ERR_UNSUPPORTED,
                       "table %s: writer version %d is not supported (max 7)", table_path,
                       p->min_writer);
    for (size_t i = 0; p->min_writer == 7 && i < p->n_writer_features; i++) {
        bool ok = false;
        for (size_t k = 0; known[k]; k++)
            ok = ok || !strcmp(known[k], p->writer_features[i]);
        if (!ok)
            return st_fail(err, ST_ERR_UNSUPPORTED,
                           "table %s: writer feature '%s' is not supported", table_path,
                           p->writer_features[i]);
    }
    const st_delta_schema *s = m ? m->schema : NULL;
    if (s && fields_have_meta(s->fields, s->n_fields, "delta.generationExpression"))
        return st_fail(err, ST_ERR_UNSUPPORTED,
                       "table %s: writer feature 'generatedColumns' is in use and not supported",
                       table_path);
    if (s && fields_have_meta(s->fields, s->n_fields, "delta.identity"))
        return st_fail(err, ST_ERR_UNSUPPORTED,
                       "table %s: writer feature 'identityColumns' is in use and not supported",
                       table_path);
    if (s && fields_have_meta(s->fields, s->n_fields, "delta.invariants"))
        return st_fail(err, ST_ERR_UNSUPPORTED,
                       "table %s: writer feature 'invariants' is in use and not supported",
                       table_path);
    for (size_t i = 0; m && i < m->n_configuration; i++)
        if (!strncmp(m->configuration[i].key, "delta.constraints.", 18))
            return st_fail(err, ST_ERR_UNSUPPORTED,
                           "table %s: writer feature 'checkConstraints' is in use and not "
                           "supported (%s)",
                           table_path, m->configuration[i].key);
    return ST_OK;
}

/* ---------------------------------------------------------------- metadata */

static st_rc put_metadata(st_buf *b, const char *id, const char *name, const char *desc,
                          const char *schema_json, const char *const *pcols, size_t n_pcols,
                          const st_kv *cfg, size_t n_cfg, int64_t created)
{
    st_rc rc = st_buf_puts(b, "{\"metaData\":{\"id\":");
    rc = rc ? rc : st_buf_json_str(b, id);
    if (rc == ST_OK && name) {
        rc = st_buf_puts(b, ",\"name\":");
        rc = rc ? rc : st_buf_json_str(b, name);
    }
    if (rc == ST_OK && desc) {
        rc = st_buf_puts(b, ",\"description\":");
        rc = rc ? rc : st_buf_json_str(b, desc);
    }
    rc = rc ? rc : st_buf_puts(b, ",\"format\":{\"provider\":\"parquet\",\"options\":{}},\"schemaString\":");
    rc = rc ? rc : st_buf_json_str(b, schema_json);
    rc = rc ? rc : st_buf_puts(b, ",\"partitionColumns\":[");
    for (size_t i = 0; rc == ST_OK && i < n_pcols; i++) {
        rc = i ? st_buf_putc(b, ',') : ST_OK;
        rc = rc ? rc : st_buf_json_str(b, pcols[i]);
    }
    rc = rc ? rc : st_buf_puts(b, "],\"configuration\":{");
    for (size_t i = 0; rc == ST_OK && i < n_cfg; i++) {
        rc = i ? st_buf_putc(b, ',') : ST_OK;
        rc = rc ? rc : st_buf_json_str(b, cfg[i].key);
        rc = rc ? rc : st_buf_putc(b, ':');
        rc = rc ? rc : st_buf_json_str(b, cfg[i].value ? cfg[i].value : "");
    }
    rc = rc ? rc : st_buf_putc(b, '}');
    if (rc == ST_OK && created >= 0)
        rc = st_buf_printf(b, ",\"createdTime\":%lld", (long long)created);
    return rc ? rc : st_buf_puts(b, "}}\n");
}

/* Gives every field (nested ones too) a column mapping id and physical
 * name, counting up from *max_id. */
static st_rc assign_cm(st_dfield *f, size_t n, int64_t *max_id)
{
    for (size_t i = 0; i < n; i++) {
        st_dtype *t = &f[i].type;
        if (f[i].cm_id <= 0) {
            char uuid[37];
            st_uuid4(uuid);
            f[i].cm_id = ++*max_id;
            st_free(f[i].physical_name);
            f[i].physical_name = st_sprintf("col-%s", uuid);
            json_t *meta = json_loads(f[i].metadata_json ? f[i].metadata_json : "{}", 0, NULL);
            if (!meta || !json_is_object(meta)) {
                json_decref(meta);
                meta = json_object();
            }
            json_object_set_new(meta, "delta.columnMapping.id", json_integer(f[i].cm_id));
            json_object_set_new(meta, "delta.columnMapping.physicalName",
                                json_string(f[i].physical_name));
            char *txt = json_dumps(meta, JSON_COMPACT);
            json_decref(meta);
            if (!txt || !f[i].physical_name) {
                free(txt);
                return ST_ERR_NOMEM;
            }
            st_free(f[i].metadata_json);
            f[i].metadata_json = st_strdup(txt);
            free(txt);
        } else if (f[i].cm_id > *max_id) {
            *max_id = f[i].cm_id;
        }
        while (t && (t->kind == ST_DT_ARRAY || t->kind == ST_DT_MAP)) {
            if (t->kind == ST_DT_MAP && t->value && t->value->kind == ST_DT_STRUCT) {
                st_rc rc = assign_cm(t->value->fields, t->value->n_fields, max_id);
                if (rc)
                    return rc;
            }
            t = t->elem;
        }
        if (t && t->kind == ST_DT_STRUCT) {
            st_rc rc = assign_cm(t->fields, t->n_fields, max_id);
            if (rc)
                return rc;
        }
    }
    return ST_OK;
}

static st_rc put_commit_info(st_buf *b, const char *op, const st_kv *params, size_t n_params,
                             int64_t read_version, bool blind)
{
    char id[37];
    st_uuid4(id);
    st_rc rc = st_buf_printf(b, "{\"commitInfo\":{\"timestamp\":%lld,\"operation\":",
                             (long long)st_now_ms());
    rc = rc ? rc : st_buf_json_str(b, op);
    rc = rc ? rc : st_buf_puts(b, ",\"operationParameters\":{");
    for (size_t i = 0; rc == ST_OK && i < n_params; i++) {
        rc = i ? st_buf_putc(b, ',') : ST_OK;
        rc = rc ? rc : st_buf_json_str(b, params[i].key);
        rc = rc ? rc : st_buf_putc(b, ':');
        rc = rc ? rc : st_buf_json_str(b, params[i].value ? params[i].value : "");
    }
    rc = rc ? rc : st_buf_putc(b, '}');
    if (rc == ST_OK && read_version >= 0)
        rc = st_buf_printf(b, ",\"readVersion\":%lld", (long long)read_version);
    rc = rc ? rc
            : st_buf_printf(b,
                            ",\"isolationLevel\":\"Serializable\",\"isBlindAppend\":%s,"
                            "\"engineInfo\":\"" ST_DELTA_ENGINE_INFO "\",\"txnId\":\"%s\"}}\n",
                            blind ? "true" : "false", id);
    return rc;
}

st_rc st_delta_create(const char *table_path, const st_delta_schema *schema,
                      const st_delta_create_opts *opts, st_err *err)
{
    st_delta_create_opts def = {0};
    if (!opts)
        opts = &def;
    if (!schema || schema->n_fields == 0)
        return st_fail(err, ST_ERR_INVALID, "create table %s: empty schema", table_path);
    for (size_t i = 0; i < opts->n_partition_by; i++) {
        const st_dfield *f = st_delta_schema_find(schema, opts->partition_by[i]);
        if (!f)
            return st_fail(err, ST_ERR_INVALID, "create table %s: partition column %s not in schema",
                           table_path, opts->partition_by[i]);
        if (f->type.kind == ST_DT_STRUCT || f->type.kind == ST_DT_ARRAY ||
            f->type.kind == ST_DT_MAP)
            return st_fail(err, ST_ERR_INVALID,
                           "create table %s: partition column %s must have a primitive type",
                           table_path, opts->partition_by[i]);
    }
    int64_t latest = -1;
    if (st_delta_latest_version(table_path, &latest, NULL) == ST_OK && latest >= 0)
        return st_fail(err, ST_ERR_EXISTS, "create table %s: a Delta table already exists",
                       table_path);
    st_rc rc = ST_OK;
    st_delta_schema *s = st_delta_schema_copy(schema);
    st_kv *cfg = NULL;
    size_t n_cfg = 0;
    char *schema_json = NULL, *log_dir = NULL, *commit = NULL;
    st_buf b;
    st_buf_init(&b, 0);
    if (!s) {
        rc = st_fail(err, ST_ERR_NOMEM, "create table %s", table_path);
        goto fail;
    }
    for (size_t i = 0; rc == ST_OK && i < opts->n_properties; i++)
        rc = kv_set(&cfg, &n_cfg, opts->properties[i].key, opts->properties[i].value);
    const char *cm = kv_get(cfg, n_cfg, "delta.columnMapping.mode");
    if (rc == ST_OK && cm && strcmp(cm, "none")) {
        if (strcmp(cm, "name") && strcmp(cm, "id")) {
            rc = st_fail(err, ST_ERR_INVALID, "create table %s: bad delta.columnMapping.mode '%s'",
                         table_path, cm);
            goto fail;
        }
        int64_t max_id = 0;
        rc = assign_cm(s->fields, s->n_fields, &max_id);
        char num[32];
        snprintf(num, sizeof num, "%lld", (long long)max_id);
        rc = rc ? rc : kv_set(&cfg, &n_cfg, "delta.columnMapping.maxColumnId", num);
    }
    if (rc) {
        rc = st_fail(err, rc, "create table %s", table_path);
        goto fail;
    }
    schema_json = st_delta_schema_to_json(s);
    proto p;
    required_protocol(NULL, cfg, n_cfg, s, &p);
    char id[37];
    st_uuid4(id);
    st_kv params[2] = {{"mode", "ErrorIfExists"}, {"partitionBy", NULL}};
    st_buf pb;
    st_buf_init(&pb, 0);
    rc = st_buf_putc(&pb, '[');
    for (size_t i = 0; rc == ST_OK && i < opts->n_partition_by; i++) {
        rc = i ? st_buf_putc(&pb, ',') : ST_OK;
        rc = rc ? rc : st_buf_json_str(&pb, opts->partition_by[i]);
    }
    rc = rc ? rc : st_buf_putc(&pb, ']');
    params[1].value = pb.data;
    rc = rc ? rc : put_commit_info(&b, "CREATE TABLE", params, 2, -1, true);
    st_buf_free(&pb);
    rc = rc ? rc : put_protocol(&b, &p);
    rc = rc ? rc
            : put_metadata(&b, id, opts->name, opts->description, schema_json ? schema_json : "",
                           opts->partition_by, opts->n_partition_by, cfg, n_cfg, st_now_ms());
    if (rc || !schema_json) {
        rc = st_fail(err, rc ? rc : ST_ERR_NOMEM, "create table %s: building commit", table_path);
        goto fail;
    }
    log_dir = st_path_join(table_path, "_delta_log");
    commit = st_delta_commit_path(table_path, 0);
    rc = st_mkdirs(log_dir, err);
    rc = rc ? rc : st_file_put_if_absent(commit, b.data, b.len, err);
    if (rc == ST_ERR_EXISTS)
        rc = st_fail(err, ST_ERR_EXISTS, "create table %s: a Delta table already exists",
                     table_path);
fail:
    st_buf_free(&b);
    st_free(schema_json);
    st_free(log_dir);
    st_free(commit);
    kv_free(cfg, n_cfg);
    st_delta_schema_free(s);
    return rc;
}

/* ---------------------------------------------------------------- txn */

st_rc st_delta_txn_begin(st_engine *eng, const char *table_path, const st_delta_snapshot *base,
                         const char *operation, st_delta_txn **out, st_err *err)
{
    st_delta_txn *t = st_calloc(1, sizeof *t);
    if (!t)
        return st_fail(err, ST_ERR_NOMEM, "txn on %s", table_path);
    t->eng = eng;
    t->table_path = st_strdup(table_path);
    t->operation = st_strdup(operation ? operation : "WRITE");
    t->paths = st_map_new();
    t->removed = st_map_new();
    st_rc rc = ST_OK;
    if (!t->table_path || !t->operation || !t->paths || !t->removed) {
        rc = st_fail(err, ST_ERR_NOMEM, "txn on %s", table_path);
        goto fail;
    }
    if (base) {
        t->snap = base;
    } else {
        rc = st_delta_snapshot_load(eng, table_path, -1, &t->own, err);
        if (rc)
            goto fail;
        t->snap = t->own;
    }
    rc = st_deltaw_check_write_protocol(&t->snap->protocol, &t->snap->metadata, table_path, err);
    if (rc)
        goto fail;
    *out = t;
    return ST_OK;
fail:
    st_delta_txn_abort(t);
    return rc;
}

void st_delta_txn_abort(st_delta_txn *t)
{
    if (!t)
        return;
    pend_vec_free(&t->adds);
    pend_vec_free(&t->removes);
    pend_vec_free(&t->cdcs);
    st_map_free(t->paths);
    st_map_free(t->removed);
    st_delta_schema_free(t->schema);
    kv_free(t->config, t->n_config);
    kv_free(t->apps, t->n_apps);
    kv_free(t->params, t->n_params);
    st_free(t->read_pred);
    st_delta_snapshot_free(t->own);
    st_free(t->operation);
    st_free(t->table_path);
    st_free(t);
}

const st_delta_snapshot *st_delta_txn_snapshot(const st_delta_txn *t)
{
    return t->snap;
}

/* The identity of a logical file in the protocol: its decoded path plus,
 * when it has one, the deletion vector's unique id (storage type, path or
 * inline data, offset).  A remove and an add of one path that differ in DV
 * are two logical files, which is how a file gains or changes its DV.
 * OWNED result, NULL on a bad path or no memory. */
static char *file_key(const char *path, bool has_dv, char storage, const char *dv_path,
                      int64_t offset)
{
    char *dec = st_delta_url_decode_path(path);
    if (!dec || !has_dv)
        return dec;
    char *key = offset >= 0 ? st_sprintf("%s\x1f%c%s@%lld", dec, storage, dv_path ? dv_path : "",
                                         (long long)offset)
                            : st_sprintf("%s\x1f%c%s", dec, storage, dv_path ? dv_path : "");
    st_free(dec);
    return key;
}

/* file_key of an add/remove action as JSON (a winning commit). */
static char *json_file_key(json_t *a)
{
    const char *p = json_string_value(json_object_get(a, "path"));
    if (!p)
        return NULL;
    json_t *dv = json_object_get(a, "deletionVector");
    if (!json_is_object(dv))
        return file_key(p, false, 0, NULL, -1);
    const char *st = json_string_value(json_object_get(dv, "storageType"));
    json_t *off = json_object_get(dv, "offset");
    return file_key(p, true, st && *st ? st[0] : '?',
                    json_string_value(json_object_get(dv, "pathOrInlineDv")),
                    json_is_integer(off) ? (int64_t)json_integer_value(off) : -1);
}

/* Registers a logical file once per commit; fails on a duplicate. */
static st_rc claim_path(st_delta_txn *t, const st_delta_file *f, char **out_key, st_err *err)
{
    char *key = file_key(f->path, f->has_dv, f->dv.storage_type, f->dv.path_or_inline,
                         f->dv.offset);
    if (!key)
        return st_fail(err, ST_ERR_INVALID, "table %s: bad path %s", t->table_path, f->path);
    if (st_map_get(t->paths, key)) {
        st_free(key);
        return st_fail(err, ST_ERR_INVALID,
                       "table %s: path %s%s appears twice in one commit", t->table_path, f->path,
                       f->has_dv ? " with the same deletion vector" : "");
    }
    st_rc rc = st_map_put(t->paths, key, (void *)1, NULL);
    if (rc) {
        st_free(key);
        return st_fail(err, rc, "table %s", t->table_path);
    }
    *out_key = key;
    return ST_OK;
}

st_rc st_delta_txn_add(st_delta_txn *t, const st_delta_file *f, st_err *err)
{
    char *key = NULL;
    st_rc rc = claim_path(t, f, &key, err);
    if (rc)
        return rc;
    pend *p = pend_push(&t->adds);
    if (!p) {
        st_free(key);
        return st_fail(err, ST_ERR_NOMEM, "txn add %s", f->path);
    }
    p->key = key;
    p->n_part = f->n_part;
    rc = kv_copy(f->part, f->n_part, &p->part);
    st_buf b;
    st_buf_init(&b, 0);
    rc = rc ? rc : st_buf_puts(&b, "{\"add\":{\"path\":");
    rc = rc ? rc : st_buf_json_str(&b, f->path);
    rc = rc ? rc : st_buf_puts(&b, ",\"partitionValues\":");
    rc = rc ? rc : put_part_values(&b, f->part, f->n_part);
    rc = rc ? rc
            : st_buf_printf(&b, ",\"size\":%lld,\"modificationTime\":%lld,\"dataChange\":%s",
                            (long long)f->size,
                            (long long)(f->modification_time > 0 ? f->modification_time
                                                                 : st_now_ms()),
                            f->data_change ? "true" : "false");
    if (rc == ST_OK && f->stats) {
        rc = st_buf_puts(&b, ",\"stats\":");
        rc = rc ? rc : st_buf_json_str(&b, f->stats);
    }
    if (rc == ST_OK && f->tags)
        rc = st_buf_printf(&b, ",\"tags\":%s", f->tags);
    if (rc == ST_OK && f->has_dv)
        rc = put_dv(&b, &f->dv);
    if (rc == ST_OK && f->base_row_id >= 0)
        rc = st_buf_printf(&b, ",\"baseRowId\":%lld", (long long)f->base_row_id);
    if (rc == ST_OK && f->default_row_commit_version >= 0)
        rc = st_buf_printf(&b, ",\"defaultRowCommitVersion\":%lld",
                           (long long)f->default_row_commit_version);
    rc = rc ? rc : st_buf_puts(&b, "}}\n");
    p->line = st_buf_take(&b);
    if (rc || !p->line)
        return st_fail(err, rc ? rc : ST_ERR_NOMEM, "txn add %s", f->path);
    return ST_OK;
}

st_rc st_delta_txn_remove(st_delta_txn *t, const st_delta_file *f, bool data_change, st_err *err)
{
    const char *ao = st_delta_config(t->snap, "delta.appendOnly", "false");
    if (data_change && !strcasecmp(ao, "true"))
        return st_fail(err, ST_ERR_INVALID, "table %s is append-only (delta.appendOnly=true)",
                       t->table_path);
    char *key = NULL;
    st_rc rc = claim_path(t, f, &key, err);
    if (rc)
        return rc;
    pend *p = pend_push(&t->removes);
    if (!p) {
        st_free(key);
        return st_fail(err, ST_ERR_NOMEM, "txn remove %s", f->path);
    }
    p->key = key;
    rc = st_map_put(t->removed, key, (void *)1, NULL);
    st_buf b;
    st_buf_init(&b, 0);
    rc = rc ? rc : st_buf_puts(&b, "{\"remove\":{\"path\":");
    rc = rc ? rc : st_buf_json_str(&b, f->path);
    rc = rc ? rc
            : st_buf_printf(&b,
                            ",\"deletionTimestamp\":%lld,\"dataChange\":%s,"
                            "\"extendedFileMetadata\":true,\"partitionValues\":",
                            (long long)st_now_ms(), data_change ? "true" : "false");
    rc = rc ? rc : put_part_values(&b, f->part, f->n_part);
    rc = rc ? rc : st_buf_printf(&b, ",\"size\":%lld", (long long)f->size);
    if (rc == ST_OK && f->tags)
        rc = st_buf_printf(&b, ",\"tags\":%s", f->tags);
    if (rc == ST_OK && f->has_dv)
        rc = put_dv(&b, &f->dv);
    rc = rc ? rc : st_buf_puts(&b, "}}\n");
    p->line = st_buf_take(&b);
    if (rc || !p->line)
        return st_fail(err, rc ? rc : ST_ERR_NOMEM, "txn remove %s", f->path);
    return ST_OK;
}

st_rc st_delta_txn_add_cdc(st_delta_txn *t, const char *path, const st_kv *part, size_t n_part,
                           int64_t size, st_err *err)
{
    pend *p = pend_push(&t->cdcs);
    if (!p)
        return st_fail(err, ST_ERR_NOMEM, "txn cdc %s", path);
    p->key = st_strdup(path);
    st_buf b;
    st_buf_init(&b, 0);
    st_rc rc = st_buf_puts(&b, "{\"cdc\":{\"path\":");
    rc = rc ? rc : st_buf_json_str(&b, path);
    rc = rc ? rc : st_buf_puts(&b, ",\"partitionValues\":");
    rc = rc ? rc : put_part_values(&b, part, n_part);
    rc = rc ? rc : st_buf_printf(&b, ",\"size\":%lld,\"dataChange\":false}}\n", (long long)size);
    p->line = st_buf_take(&b);
    if (rc || !p->line || !p->key)
        return st_fail(err, rc ? rc : ST_ERR_NOMEM, "txn cdc %s", path);
    return ST_OK;
}

static st_rc ensure_config(st_delta_txn *t)
{
    if (t->config_changed)
        return ST_OK;
    t->config_changed = true;
    t->n_config = t->snap->metadata.n_configuration;
    return kv_copy(t->snap->metadata.configuration, t->n_config, &t->config);
}

st_rc st_delta_txn_set_schema(st_delta_txn *t, const st_delta_schema *schema, st_err *err)
{
    st_delta_schema *c = st_delta_schema_copy(schema);
    if (!c)
        return st_fail(err, ST_ERR_NOMEM, "txn schema on %s", t->table_path);
    st_rc rc = ensure_config(t);
    const char *cm = t->config ? kv_get(t->config, t->n_config, "delta.columnMapping.mode") : NULL;
    if (rc == ST_OK && cm && strcmp(cm, "none")) {
        const char *mx = kv_get(t->config, t->n_config, "delta.columnMapping.maxColumnId");
        int64_t max_id = mx ? strtoll(mx, NULL, 10) : 0;
        rc = assign_cm(c->fields, c->n_fields, &max_id);
        char num[32];
        snprintf(num, sizeof num, "%lld", (long long)max_id);
        rc = rc ? rc : kv_set(&t->config, &t->n_config, "delta.columnMapping.maxColumnId", num);
    }
    if (rc) {
        st_delta_schema_free(c);
        return st_fail(err, rc, "txn schema on %s", t->table_path);
    }
    st_delta_schema_free(t->schema);
    t->schema = c;
    return ST_OK;
}

st_rc st_delta_txn_set_property(st_delta_txn *t, const char *key, const char *value, st_err *err)
{
    st_rc rc = ensure_config(t);
    rc = rc ? rc : kv_set(&t->config, &t->n_config, key, value);
    return rc ? st_fail(err, rc, "txn property %s on %s", key, t->table_path) : ST_OK;
}

st_rc st_delta_txn_set_app(st_delta_txn *t, const char *app_id, int64_t version, st_err *err)
{
    for (size_t i = 0; i < t->n_apps; i++)
        if (!strcmp(t->apps[i].key, app_id))
            return st_fail(err, ST_ERR_INVALID, "table %s: app %s set twice in one commit",
                           t->table_path, app_id);
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)version);
    st_rc rc = kv_set(&t->apps, &t->n_apps, app_id, num);
    return rc ? st_fail(err, rc, "txn app on %s", t->table_path) : ST_OK;
}

void st_delta_txn_read_predicate(st_delta_txn *t, const char *predicate)
{
    t->read_declared = true;
    st_free(t->read_pred);
    t->read_pred = st_strdup(predicate);
}

st_rc st_delta_txn_param(st_delta_txn *t, const char *key, const char *value, st_err *err)
{
    st_rc rc = kv_set(&t->params, &t->n_params, key, value);
    return rc ? st_fail(err, rc, "txn param on %s", t->table_path) : ST_OK;
}

/* ---------------------------------------------------------------- commit */

static bool is_blind(const st_delta_txn *t)
{
    return t->removes.n == 0 && !t->read_declared && !t->blind_forced_off;
}

static st_rc build_body(st_delta_txn *t, st_buf *b)
{
    const st_delta_snapshot *s = t->snap;
    st_rc rc = put_commit_info(b, t->operation, t->params, t->n_params, s->version, is_blind(t));
    if (rc == ST_OK && (t->schema || t->config_changed)) {
        const st_delta_schema *schema = t->schema ? t->schema : s->metadata.schema;
        const st_kv *cfg = t->config_changed ? t->config : s->metadata.configuration;
        size_t n_cfg = t->config_changed ? t->n_config : s->metadata.n_configuration;
        proto p;
        required_protocol(&s->protocol, cfg, n_cfg, schema, &p);
        if (proto_differs(&p, &s->protocol))
            rc = put_protocol(b, &p);
        char *sj = t->schema ? st_delta_schema_to_json(t->schema) : NULL;
        if (t->schema && !sj)
            rc = ST_ERR_NOMEM;
        rc = rc ? rc
                : put_metadata(b, s->metadata.id, s->metadata.name, s->metadata.description,
                               sj ? sj : s->metadata.schema_string,
                               (const char *const *)s->metadata.partition_columns,
                               s->metadata.n_partition_columns, cfg, n_cfg,
                               s->metadata.created_time);
        st_free(sj);
    }
    for (size_t i = 0; rc == ST_OK && i < t->n_apps; i++) {
        rc = st_buf_puts(b, "{\"txn\":{\"appId\":");
        rc = rc ? rc : st_buf_json_str(b, t->apps[i].key);
        rc = rc ? rc
                : st_buf_printf(b, ",\"version\":%s,\"lastUpdated\":%lld}}\n", t->apps[i].value,
                                (long long)st_now_ms());
    }
    for (size_t i = 0; rc == ST_OK && i < t->removes.n; i++)
        rc = st_buf_puts(b, t->removes.v[i].line);
    for (size_t i = 0; rc == ST_OK && i < t->adds.n; i++)
        rc = st_buf_puts(b, t->adds.v[i].line);
    for (size_t i = 0; rc == ST_OK && i < t->cdcs.n; i++)
        rc = st_buf_puts(b, t->cdcs.v[i].line);
    return rc;
}

/* True when an added file with these partition values may hold rows our
 * read predicate covered.  Undecidable cases count as overlapping. */
static bool add_overlaps(st_delta_txn *t, json_t *pv)
{
    if (!t->read_pred)
        return true;
    const st_delta_metadata *m = &t->snap->metadata;
    st_buf b;
    st_buf_init(&b, 0);
    st_rc rc = st_buf_puts(&b, "SELECT count(*) FROM (SELECT 1 AS __one");
    for (size_t i = 0; rc == ST_OK && i < m->n_partition_columns; i++) {
        const st_dfield *f = st_delta_schema_find(m->schema, m->partition_columns[i]);
        if (!f) {
            rc = ST_ERR_INVALID;
            break;
        }
        json_t *v = json_object_get(pv, m->partition_columns[i]);
        rc = st_buf_puts(&b, ", ");
        rc = rc ? rc
                : st_delta_part_literal(&f->type, json_is_string(v) ? json_string_value(v) : NULL,
                                        &b, NULL);
        rc = rc ? rc : st_buf_puts(&b, " AS ");
        rc = rc ? rc : st_buf_sql_ident(&b, m->partition_columns[i]);
    }
    rc = rc ? rc : st_buf_printf(&b, ") WHERE (%s)", t->read_pred);
    int64_t n = 1;
    if (rc == ST_OK && st_engine_query_i64(t->eng, b.data, &n, NULL) != ST_OK)
        n = 1;
    st_buf_free(&b);
    return rc != ST_OK || n > 0;
}

/* Reads winning commit v and decides whether our actions still apply. */
static st_rc check_winner(st_delta_txn *t, int64_t v, st_err *err)
{
    char *path = st_delta_commit_path(t->table_path, v);
    char *data = NULL;
    size_t len = 0;
    st_rc rc = path ? st_file_read(path, MAX_COMMIT_BYTES, &data, &len, err) : ST_ERR_NOMEM;
    st_free(path);
    if (rc)
        return st_fail(err, rc, "table %s: reading winning commit %lld", t->table_path,
                       (long long)v);
    char *line = data;
    while (rc == ST_OK && line && *line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        json_t *j = json_loads(line, JSON_DECODE_ANY, NULL);
        line = nl ? nl + 1 : NULL;
        if (!j)
            continue;
        json_t *a;
        if (json_object_get(j, "metaData") || json_object_get(j, "protocol")) {
            rc = st_fail(err, ST_ERR_CONFLICT,
                         "table %s: concurrent commit %lld changed the %s", t->table_path,
                         (long long)v, json_object_get(j, "metaData") ? "metadata" : "protocol");
        } else if ((a = json_object_get(j, "txn")) != NULL) {
            const char *app = json_string_value(json_object_get(a, "appId"));
            if (app && kv_get(t->apps, t->n_apps, app))
                rc = st_fail(err, ST_ERR_CONFLICT,
                             "table %s: concurrent commit %lld wrote app transaction %s",
                             t->table_path, (long long)v, app);
        } else if ((a = json_object_get(j, "remove")) != NULL) {
            const char *p = json_string_value(json_object_get(a, "path"));
            char *key = json_file_key(a);
            if (key && st_map_get(t->removed, key))
                rc = st_fail(err, ST_ERR_CONFLICT,
                             "table %s: concurrent commit %lld removed file %s that this "
                             "transaction also removes",
                             t->table_path, (long long)v, p);
            st_free(key);
        } else if ((a = json_object_get(j, "add")) != NULL) {
            if (t->read_declared && add_overlaps(t, json_object_get(a, "partitionValues")))
                rc = st_fail(err, ST_ERR_CONFLICT,
                             "table %s: concurrent commit %lld added file %s to data this "
                             "transaction read%s%s",
                             t->table_path, (long long)v,
                             json_string_value(json_object_get(a, "path")),
                             t->read_pred ? " with predicate " : "",
                             t->read_pred ? t->read_pred : "");
        }
        json_decref(j);
    }
    st_free(data);
    return rc;
}

static void short_sleep(int attempt)
{
    /* jittered backoff grows with the attempts; capped at ~20 ms */
    long max_us = 100L * (attempt < 200 ? attempt : 200);
    long us = (long)(st_hash64(&attempt, sizeof attempt) ^ (uint64_t)st_mono_ns()) % (max_us + 1);
    if (us < 0)
        us = -us;
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

st_rc st_delta_txn_commit(st_delta_txn *t, int64_t *out_version, st_err *err)
{
    st_buf b;
    st_buf_init(&b, 0);
    st_rc rc = build_body(t, &b);
    if (rc) {
        rc = st_fail(err, rc, "table %s: building commit", t->table_path);
        goto done;
    }
    int64_t v = t->snap->version + 1;
    for (int attempt = 0;; attempt++) {
        if (attempt >= MAX_COMMIT_TRIES) {
            rc = st_fail(err, ST_ERR_CONFLICT, "table %s: gave up after %d commit attempts",
                         t->table_path, attempt);
            goto done;
        }
        char *path = st_delta_commit_path(t->table_path, v);
        if (!path) {
            rc = st_fail(err, ST_ERR_NOMEM, "table %s", t->table_path);
            goto done;
        }
        rc = st_file_put_if_absent(path, b.data, b.len, err);
        st_free(path);
        if (rc == ST_OK)
            break;
        if (rc != ST_ERR_EXISTS) {
            st_err_ctx(err, "table %s: writing commit %lld", t->table_path, (long long)v);
            goto done;
        }
        rc = check_winner(t, v, err);
        v++;
        /* catch up with commits that are already there without counting
         * them as lost races: a stale base may be far behind */
        for (;;) {
            char *next = rc ? NULL : st_delta_commit_path(t->table_path, v);
            bool there = next && st_path_exists(next);
            st_free(next);
            if (!there)
                break;
            rc = check_winner(t, v, err);
            v++;
        }
        if (rc)
            goto done;
        if (attempt >= 2)
            short_sleep(attempt);
    }
    if (out_version)
        *out_version = v;
    /* a checkpoint is an optimisation: failing to write one must not fail
     * the commit that already happened */
    int64_t interval = strtoll(st_delta_config(t->snap, "delta.checkpointInterval", "10"), NULL, 10);
    if (interval <= 0)
        interval = 10;
    if (v > 0 && v % interval == 0) {
        st_err cerr = {0};
        st_delta_snapshot *s = NULL;
        st_rc crc = st_delta_snapshot_load(t->eng, t->table_path, v, &s, &cerr);
        crc = crc ? crc : st_deltaw_checkpoint_snapshot(t->eng, s, &cerr);
        if (crc)
            st_warn("table %s: checkpoint at version %lld failed: %s", t->table_path,
                    (long long)v, cerr.msg);
        st_delta_snapshot_free(s);
    }
done:
    st_buf_free(&b);
    st_delta_txn_abort(t);
    return rc;
}
