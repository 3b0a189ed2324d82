/*
 * collect_config.c - the `collector:` section of strata.yml: listen address,
 * limits, TLS, event log options and the sources with their keys.
 *
 * Keys are declared in tables (name, default, bounds, where it goes) so
 * parsing, the unknown-key check and docs/ingestion.md stay in step.  API
 * keys are hashed (SHA-256) as soon as they are read; the plain key is never
 * kept.  server.c uses the result.  `event_log: kafka` (or kind: kafka)
 * selects Kafka mode, configured by the `kafka:` section (st_kafka_cfg_load,
 * also used by the loader).
 */
#include "strata/collect.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

enum slot {
    S_THREADS, S_MAX_BODY, S_MAX_EVENTS, S_MAX_EVENT_BYTES, S_MAX_DEPTH, S_MAX_FUTURE,
    S_RETRY_AFTER,
    L_FSYNC_MS, L_FSYNC_BYTES, L_SEGMENT_BYTES, L_SEGMENT_MS, L_RETENTION_DAYS, L_ZSTD_LEVEL,
    L_MAX_PENDING, L_MIN_FREE, L_COMMIT_THREADS,
};

typedef struct int_opt {
    const char *key;
    int64_t def, min, max;
    enum slot slot;
} int_opt;

static const int_opt top_ints[] = {
    {"threads", 0, 0, 256, S_THREADS}, /* 0 = one event loop per core */
    {"max_body_bytes", 4 << 20, 1024, 1 << 30, S_MAX_BODY},
    {"max_events", 1000, 1, 100000, S_MAX_EVENTS},
    {"max_event_bytes", 256 << 10, 64, 16 << 20, S_MAX_EVENT_BYTES},
    {"max_depth", 32, 2, 64, S_MAX_DEPTH},
    {"max_future_s", 86400, 0, 365LL * 86400, S_MAX_FUTURE},
    {"retry_after_s", 1, 1, 3600, S_RETRY_AFTER},
};

static const int_opt log_ints[] = {
    {"fsync_ms", 1, 0, 10000, L_FSYNC_MS},
    {"fsync_bytes", 1 << 20, 4096, 1 << 30, L_FSYNC_BYTES},
    {"segment_bytes", 64 << 20, 4096, 1LL << 40, L_SEGMENT_BYTES},
    {"segment_ms", 3600 * 1000, 0, 365LL * 86400 * 1000, L_SEGMENT_MS},
    {"retention_days", 7, 0, 36500, L_RETENTION_DAYS},
    {"zstd_level", 3, 1, 19, L_ZSTD_LEVEL},
    {"max_pending_bytes", 64 << 20, 1 << 16, 1LL << 34, L_MAX_PENDING},
    {"min_free_bytes", 256 << 20, 0, 1LL << 50, L_MIN_FREE},
    {"commit_threads", 1, 1, 16, L_COMMIT_THREADS}, /* fsyncs in flight at once */
};

static void set_slot(st_collect_cfg *c, enum slot s, int64_t v)
{
    switch (s) {
    case S_THREADS: c->threads = (int)v; break;
    case S_MAX_BODY: c->max_body_bytes = (size_t)v; break;
    case S_MAX_EVENTS: c->max_events = (size_t)v; break;
    case S_MAX_EVENT_BYTES: c->max_event_bytes = (size_t)v; break;
    case S_MAX_DEPTH: c->max_depth = (int)v; break;
    case S_MAX_FUTURE: c->max_future_s = v; break;
    case S_RETRY_AFTER: c->retry_after_s = (int)v; break;
    case L_FSYNC_MS: c->log.fsync_ms = v; break;
    case L_FSYNC_BYTES: c->log.fsync_bytes = (size_t)v; break;
    case L_SEGMENT_BYTES: c->log.segment_bytes = (size_t)v; break;
    case L_SEGMENT_MS: c->log.segment_ms = v; break;
    case L_RETENTION_DAYS: c->log.retention_days = (int)v; break;
    case L_ZSTD_LEVEL: c->log.zstd_level = (int)v; break;
    case L_MAX_PENDING: c->log.max_pending_bytes = (size_t)v; break;
    case L_MIN_FREE: c->log.min_free_bytes = (uint64_t)v; break;
    case L_COMMIT_THREADS: c->log.commit_threads = (int)v; break;
    }
}

static st_rc read_ints(st_collect_cfg *c, const st_cfg *map, const int_opt *opts, size_t n,
                       st_err *err)
{
    for (size_t i = 0; i < n; i++) {
        int64_t v = opts[i].def;
        if (map) {
            st_rc rc = st_cfg_get_int(map, opts[i].key, opts[i].def, &v, err);
            if (rc)
                return rc;
            if (v < opts[i].min || v > opts[i].max)
                return st_cfg_fail(st_cfg_get(map, opts[i].key), err, ST_ERR_INVALID,
                                   "must be between %lld and %lld", (long long)opts[i].min,
                                   (long long)opts[i].max);
        }
        set_slot(c, opts[i].slot, v);
    }
    return ST_OK;
}

void st_collect_key_hash_hex(const char *key, char out[65])
{
    unsigned char h[32];
    crypto_hash_sha256(h, (const unsigned char *)key, strlen(key));
    sodium_bin2hex(out, 65, h, 32);
}

static char *resolve(const char *base, const char *p)
{
    if (p[0] == '/' || !base || !*base)
        return st_strdup(p);
    if (p[0] == '.' && p[1] == '/')
        p += 2;
    return st_path_join(base, p);
}

/* Reads a list of strings (a YAML sequence or one scalar). */
static st_rc str_list(const st_cfg *map, const char *key, char ***out, size_t *out_n, st_err *err)
{
    const st_cfg *n = st_cfg_get(map, key);
    *out = NULL;
    *out_n = 0;
    if (!n)
        return ST_OK;
    size_t cnt = st_cfg_kind_of(n) == ST_CFG_SEQ ? st_cfg_len(n) : 1;
    char **v = st_calloc(cnt ? cnt : 1, sizeof *v);
    if (!v)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    *out = v;
    for (size_t i = 0; i < cnt; i++) {
        const st_cfg *it = st_cfg_kind_of(n) == ST_CFG_SEQ ? st_cfg_at(n, i) : n;
        const char *s = st_cfg_scalar(it);
        if (st_cfg_kind_of(it) != ST_CFG_SCALAR || !s || !*s)
            return st_cfg_fail(it, err, ST_ERR_INVALID, "expected a non-empty string");
        v[i] = st_strdup(s);
        if (!v[i])
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        *out_n = i + 1;
    }
    return ST_OK;
}

static bool name_ok(const char *s)
{
    if (!*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

static st_rc load_source(st_collect_source *src, const char *name, const st_cfg *n, st_err *err)
{
    static const char *const keys[] = {"key_env", "key_hash", "families", "event_types",
                                       "cors_origins", NULL};
    src->name = st_strdup(name);
    if (!src->name)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    if (st_cfg_kind_of(n) != ST_CFG_MAP)
        return st_cfg_fail(n, err, ST_ERR_INVALID, "expected a map");
    if (!name_ok(name))
        return st_cfg_fail(n, err, ST_ERR_INVALID,
                           "source names use a-z, 0-9 and '_' (at most 64 characters)");
    st_rc rc = st_cfg_check_keys(n, keys, err);
    if (rc)
        return rc;
    const char *key_env, *key_hash;
    if ((rc = st_cfg_get_str(n, "key_env", NULL, &key_env, err)) ||
        (rc = st_cfg_get_str(n, "key_hash", NULL, &key_hash, err)))
        return rc;
    if (key_env && key_hash)
        return st_cfg_fail(n, err, ST_ERR_INVALID, "give key_env or key_hash, not both");
    if (key_env) {
        const char *key = getenv(key_env);
        if (!key || !*key)
            return st_cfg_fail(st_cfg_get(n, "key_env"), err, ST_ERR_INVALID,
                               "environment variable %s is not set", key_env);
        crypto_hash_sha256(src->key_hash, (const unsigned char *)key, strlen(key));
        src->has_key = true;
    } else if (key_hash) {
        const char *hex = key_hash;
        if (!strncmp(hex, "sha256:", 7))
            hex += 7;
        size_t got = 0;
        if (strlen(hex) != 64 ||
            sodium_hex2bin(src->key_hash, 32, hex, 64, NULL, &got, NULL) != 0 || got != 32)
            return st_cfg_fail(st_cfg_get(n, "key_hash"), err, ST_ERR_INVALID,
                               "expected sha256:<64 hex digits> (SHA-256 of the key)");
        src->has_key = true;
    } else {
        return st_cfg_fail(n, err, ST_ERR_INVALID, "key_env or key_hash is required");
    }
    if ((rc = str_list(n, "families", &src->families, &src->n_families, err)) ||
        (rc = str_list(n, "event_types", &src->event_types, &src->n_event_types, err)) ||
        (rc = str_list(n, "cors_origins", &src->cors_origins, &src->n_cors_origins, err)))
        return rc;
    if (!src->n_families) {
        /* the family defaults to "<source>_events" */
        st_free(src->families);
        src->families = st_calloc(1, sizeof *src->families);
        if (!src->families || !(src->families[0] = st_sprintf("%s_events", name)))
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        src->n_families = 1;
    }
    for (size_t i = 0; i < src->n_families; i++)
        if (!name_ok(src->families[i]))
            return st_cfg_fail(st_cfg_get(n, "families"), err, ST_ERR_INVALID,
                               "family '%s': use a-z, 0-9 and '_'", src->families[i]);
    return ST_OK;
}

static st_rc parse_listen(st_collect_cfg *c, const char *s, const st_cfg *where, st_err *err)
{
    const char *colon = strrchr(s, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == s || !end || *end || end == colon + 1 || port < 0 || port > 65535) {
        if (where)
            return st_cfg_fail(where, err, ST_ERR_INVALID, "expected HOST:PORT, found '%s'", s);
        return st_fail(err, ST_ERR_INVALID, "listen: expected HOST:PORT, found '%s'", s);
    }
    st_free(c->listen_host);
    c->listen_host = st_strndup(s, (size_t)(colon - s));
    c->listen_port = (int)port;
    return c->listen_host ? ST_OK : st_fail(err, ST_ERR_NOMEM, "out of memory");
}

st_rc st_collect_cfg_set_listen(st_collect_cfg *c, const char *hostport, st_err *err)
{
    return parse_listen(c, hostport, NULL, err);
}

st_rc st_collect_cfg_load(const st_cfg *root, const char *base_dir, st_collect_cfg **out,
                          st_err *err)
{
    static const char *const top_keys[] = {"listen", "threads", "max_body_bytes", "max_events",
                                           "max_event_bytes", "max_depth", "max_future_s",
                                           "retry_after_s", "tls", "event_log", "kafka", "sources",
                                           NULL};
    static const char *const log_keys[] = {
        "kind", "dir", "durable", "compress", "fsync_ms", "fsync_bytes", "segment_bytes",
        "segment_ms", "retention_days", "zstd_level", "max_pending_bytes", "min_free_bytes",
        "commit_threads", NULL};
    static const char *const tls_keys[] = {"cert", "key", NULL};
    st_collect_cfg *c = st_calloc(1, sizeof *c);
    if (!c)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    st_rc rc = ST_OK;
    const st_cfg *sec = root ? st_cfg_get(root, "collector") : NULL;
    if (sec && st_cfg_kind_of(sec) != ST_CFG_MAP) {
        rc = st_cfg_fail(sec, err, ST_ERR_INVALID, "expected a map");
        goto fail;
    }
    if (sec && (rc = st_cfg_check_keys(sec, top_keys, err)))
        goto fail;
    if ((rc = read_ints(c, sec, top_ints, sizeof top_ints / sizeof *top_ints, err)))
        goto fail;
    const char *listen = "127.0.0.1:8686";
    if (sec && (rc = st_cfg_get_str(sec, "listen", listen, &listen, err)))
        goto fail;
    if ((rc = parse_listen(c, listen, sec ? st_cfg_get(sec, "listen") : NULL, err)))
        goto fail;

    const st_cfg *tls = sec ? st_cfg_get(sec, "tls") : NULL;
    if (tls) {
        const char *cert, *key;
        if (st_cfg_kind_of(tls) != ST_CFG_MAP) {
            rc = st_cfg_fail(tls, err, ST_ERR_INVALID, "expected a map with cert and key");
            goto fail;
        }
        if ((rc = st_cfg_check_keys(tls, tls_keys, err)) ||
            (rc = st_cfg_get_str(tls, "cert", NULL, &cert, err)) ||
            (rc = st_cfg_get_str(tls, "key", NULL, &key, err)))
            goto fail;
        if (!cert || !key) {
            rc = st_cfg_fail(tls, err, ST_ERR_INVALID, "tls needs both cert and key");
            goto fail;
        }
        c->tls_cert = resolve(base_dir, cert);
        c->tls_key = resolve(base_dir, key);
    }

    const st_cfg *lg = sec ? st_cfg_get(sec, "event_log") : NULL;
    const char *kind = "local", *dir = "./eventlog";
    if (lg && st_cfg_kind_of(lg) == ST_CFG_SCALAR && st_cfg_scalar(lg)) {
        /* `event_log: kafka` is short for {kind: kafka} */
        kind = st_cfg_scalar(lg);
        if (strcmp(kind, "kafka") && strcmp(kind, "local")) {
            rc = st_cfg_fail(lg, err, ST_ERR_INVALID,
                             "unknown event log '%s' (expected local or kafka)", kind);
            goto fail;
        }
        lg = NULL;
    } else if (lg && st_cfg_kind_of(lg) != ST_CFG_MAP) {
        rc = st_cfg_fail(lg, err, ST_ERR_INVALID, "expected a map, local or kafka");
        goto fail;
    }
    if (lg && (rc = st_cfg_check_keys(lg, log_keys, err)))
        goto fail;
    if ((rc = read_ints(c, lg, log_ints, sizeof log_ints / sizeof *log_ints, err)))
        goto fail;
    c->durable = true;
    c->log.compress = true;
    if (lg && ((rc = st_cfg_get_str(lg, "kind", kind, &kind, err)) ||
               (rc = st_cfg_get_str(lg, "dir", dir, &dir, err)) ||
               (rc = st_cfg_get_bool(lg, "durable", true, &c->durable, err)) ||
               (rc = st_cfg_get_bool(lg, "compress", true, &c->log.compress, err))))
        goto fail;
    const st_cfg *kf = sec ? st_cfg_get(sec, "kafka") : NULL;
    if (!strcmp(kind, "kafka")) {
        if (!kf) {
            rc = st_cfg_fail(sec, err, ST_ERR_INVALID,
                             "event_log kafka needs a kafka: section with brokers");
            goto fail;
        }
        if ((rc = st_kafka_cfg_load(kf, &c->kafka, err)))
            goto fail;
    } else if (strcmp(kind, "local")) {
        rc = st_cfg_fail(st_cfg_get(lg, "kind"), err, ST_ERR_INVALID,
                         "unknown kind '%s' (expected local or kafka)", kind);
        goto fail;
    } else if (kf) {
        rc = st_cfg_fail(kf, err, ST_ERR_INVALID, "kafka only applies to event_log: kafka");
        goto fail;
    }
    c->log_kind = st_strdup(kind);
    c->log_dir = resolve(base_dir, dir);
    if (!c->log_kind || !c->log_dir) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto fail;
    }
    c->log.dir = c->log_dir;

    const st_cfg *srcs = sec ? st_cfg_get(sec, "sources") : NULL;
    if (srcs) {
        if (st_cfg_kind_of(srcs) != ST_CFG_MAP) {
            rc = st_cfg_fail(srcs, err, ST_ERR_INVALID, "expected a map of sources");
            goto fail;
        }
        size_t n = st_cfg_len(srcs);
        c->sources = st_calloc(n ? n : 1, sizeof *c->sources);
        if (!c->sources) {
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < n; i++) {
            c->n_sources = i + 1;
            rc = load_source(&c->sources[i], st_cfg_key_at(srcs, i), st_cfg_at(srcs, i), err);
            if (rc)
                goto fail;
            for (size_t j = 0; j < i; j++) {
                if (!sodium_memcmp(c->sources[j].key_hash, c->sources[i].key_hash, 32)) {
                    rc = st_cfg_fail(st_cfg_at(srcs, i), err, ST_ERR_INVALID,
                                     "same key as source '%s': each source needs its own key",
                                     c->sources[j].name);
                    goto fail;
                }
            }
        }
    }
    *out = c;
    return ST_OK;
fail:
    st_collect_cfg_free(c);
    return rc;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        st_free(v[i]);
    st_free(v);
}

void st_collect_cfg_free(st_collect_cfg *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_sources; i++) {
        st_collect_source *s = &c->sources[i];
        st_free(s->name);
        free_list(s->families, s->n_families);
        free_list(s->event_types, s->n_event_types);
        free_list(s->cors_origins, s->n_cors_origins);
        sodium_memzero(s->key_hash, sizeof s->key_hash);
    }
    st_free(c->sources);
    st_free(c->listen_host);
    st_free(c->tls_cert);
    st_free(c->tls_key);
    st_free(c->log_kind);
    st_free(c->log_dir);
    st_kafka_cfg_free(c->kafka);
    st_free(c);
}

/* ---------------------------------------------------------------- kafka */

/* Settings Strata owns: the delivery and offset guarantees depend on them. */
static const char *const kafka_reserved[] = {
    "bootstrap.servers", "metadata.broker.list", "group.id", "acks", "request.required.acks",
    "enable.idempotence", "enable.auto.commit", "enable.auto.offset.store",
    "transactional.id", "isolation.level", NULL};

static st_rc kafka_props(const st_cfg *kf, const char *key, char ***out, size_t *out_n,
                         st_err *err)
{
    const st_cfg *m = st_cfg_get(kf, key);
    *out = NULL;
    *out_n = 0;
    if (!m)
        return ST_OK;
    if (st_cfg_kind_of(m) != ST_CFG_MAP)
        return st_cfg_fail(m, err, ST_ERR_INVALID, "expected a map of librdkafka settings");
    size_t n = st_cfg_len(m);
    char **v = st_calloc(2 * n + 1, sizeof *v);
    if (!v)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    *out = v;
    for (size_t i = 0; i < n; i++) {
        const char *k = st_cfg_key_at(m, i);
        const char *val = st_cfg_scalar(st_cfg_at(m, i));
        if (!val)
            return st_cfg_fail(st_cfg_at(m, i), err, ST_ERR_INVALID, "expected a scalar value");
        for (int r = 0; kafka_reserved[r]; r++)
            if (!strcmp(k, kafka_reserved[r]))
                return st_cfg_fail(st_cfg_at(m, i), err, ST_ERR_INVALID,
                                   "%s is set by strata (idempotent producer, acks=all, "
                                   "offsets committed after the bronze commit)", k);
        v[2 * i] = st_strdup(k);
        v[2 * i + 1] = st_strdup(val);
        *out_n = i + 1;
        if (!v[2 * i] || !v[2 * i + 1])
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    return ST_OK;
}

st_rc st_kafka_cfg_load(const st_cfg *kf, st_kafka_cfg **out, st_err *err)
{
    static const char *const keys[] = {"brokers", "topic_prefix", "group_id", "properties",
                                       "producer_properties", "consumer_properties", NULL};
    *out = NULL;
    if (st_cfg_kind_of(kf) != ST_CFG_MAP)
        return st_cfg_fail(kf, err, ST_ERR_INVALID, "expected a map with brokers");
    st_kafka_cfg *c = st_calloc(1, sizeof *c);
    if (!c)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    const char *brokers = NULL, *prefix = "strata.", *group = "strata-loader";
    st_rc rc = st_cfg_check_keys(kf, keys, err);
    rc = rc ? rc : st_cfg_get_str(kf, "brokers", NULL, &brokers, err);
    rc = rc ? rc : st_cfg_get_str(kf, "topic_prefix", prefix, &prefix, err);
    rc = rc ? rc : st_cfg_get_str(kf, "group_id", group, &group, err);
    if (rc)
        goto fail;
    if (!brokers || !*brokers) {
        rc = st_cfg_fail(kf, err, ST_ERR_INVALID, "brokers is required (HOST:PORT[,HOST:PORT])");
        goto fail;
    }
    for (const char *p = prefix; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-') || strlen(prefix) > 180) {
            rc = st_cfg_fail(st_cfg_get(kf, "topic_prefix"), err, ST_ERR_INVALID,
                             "topic names use a-z A-Z 0-9 . _ - (at most 180 characters here)");
            goto fail;
        }
    }
    if (!*group) {
        rc = st_cfg_fail(st_cfg_get(kf, "group_id"), err, ST_ERR_INVALID, "must not be empty");
        goto fail;
    }
    c->brokers = st_strdup(brokers);
    c->topic_prefix = st_strdup(prefix);
    c->group_id = st_strdup(group);
    if (!c->brokers || !c->topic_prefix || !c->group_id) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto fail;
    }
    rc = kafka_props(kf, "properties", &c->props, &c->n_props, err);
    rc = rc ? rc : kafka_props(kf, "producer_properties", &c->producer_props,
                               &c->n_producer_props, err);
    rc = rc ? rc : kafka_props(kf, "consumer_properties", &c->consumer_props,
                               &c->n_consumer_props, err);
    if (rc)
        goto fail;
    *out = c;
    return ST_OK;
fail:
    st_kafka_cfg_free(c);
    return rc;
}

void st_kafka_cfg_free(st_kafka_cfg *c)
{
    if (!c)
        return;
    st_free(c->brokers);
    st_free(c->topic_prefix);
    st_free(c->group_id);
    free_list(c->props, 2 * c->n_props);
    free_list(c->producer_props, 2 * c->n_producer_props);
    free_list(c->consumer_props, 2 * c->n_consumer_props);
    st_free(c);
}
