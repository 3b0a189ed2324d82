/*
 * load_config.c - the `loader:` and `pii:` sections of strata.yml, plus the
 * pieces of `lake`, `state` and `collector:` the loader needs (event log
 * directory, families, and in Kafka mode the kafka: section and the topic
 * of each source).  The collector section is read directly rather than
 * through st_collect_cfg_load so `strata load` works without the sources'
 * API keys in the environment.  Unknown keys are refused.
 */
#include "strata/load.h"

#include "strata/collect.h"

#include <string.h>

typedef struct int_opt {
    const char *key;
    int64_t def, min, max;
    size_t off;
} int_opt;

static const int_opt loader_ints[] = {
    {"batch_events", 50000, 1, 10000000, offsetof(st_loader_cfg, batch_events)},
    {"interval_ms", 2000, 10, 3600000, offsetof(st_loader_cfg, interval_ms)},
    {"dedup_window_days", 7, 0, 3650, offsetof(st_loader_cfg, dedup_window_days)},
    {"late_horizon_s", 172800, 0, 3650LL * 86400, offsetof(st_loader_cfg, late_horizon_s)},
    {"stage_threads", 0, 0, 2, offsetof(st_loader_cfg, stage_threads)},
};

static char *resolve(const char *base, const char *p)
{
    if (!p)
        return NULL;
    if (p[0] == '/' || !base)
        return st_strdup(p);
    if (p[0] == '.' && p[1] == '/')
        p += 2;
    return st_path_join(base, p);
}

void st_loader_cfg_free(st_loader_cfg *c)
{
    if (!c)
        return;
    st_free(c->lake);
    st_free(c->state_path);
    st_free(c->log_dir);
    st_free(c->schemas_dir);
    for (size_t i = 0; i < c->n_families; i++)
        st_free(c->families[i]);
    st_free(c->families);
    st_free(c->master_key_env);
    st_free(c->master_key_file);
    st_free(c->hash_secret_env);
    for (size_t i = 0; i < c->n_rules; i++)
        st_free(c->rule_keys[i]);
    st_free(c->rule_keys);
    st_free(c->rule_actions);
    st_kafka_cfg_free(c->kafka);
    for (size_t i = 0; i < c->n_kafka_topics; i++)
        st_free(c->kafka_topics[i]);
    st_free(c->kafka_topics);
    st_free(c);
}

static st_rc add_family(st_loader_cfg *c, const char *f)
{
    for (size_t i = 0; i < c->n_families; i++)
        if (!strcmp(c->families[i], f))
            return ST_OK;
    char **nf = st_realloc(c->families, (c->n_families + 1) * sizeof *nf);
    if (!nf)
        return ST_ERR_NOMEM;
    c->families = nf;
    nf[c->n_families] = st_strdup(f);
    if (!nf[c->n_families])
        return ST_ERR_NOMEM;
    c->n_families++;
    return ST_OK;
}

static st_rc read_collector(st_loader_cfg *c, const st_cfg *coll, const char *base, st_err *err)
{
    const char *dir = "./eventlog";
    const st_cfg *lg = coll ? st_cfg_get(coll, "event_log") : NULL;
    st_rc rc = ST_OK;
    if (lg && st_cfg_kind_of(lg) == ST_CFG_MAP)
        rc = st_cfg_get_str(lg, "dir", dir, &dir, err);
    if (rc)
        return rc;
    c->log_dir = resolve(base, dir);
    if (!c->log_dir)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    const st_cfg *srcs = coll ? st_cfg_get(coll, "sources") : NULL;
    /* Kafka mode: one topic per source (collect_config.c checks the rest) */
    const char *kind = NULL;
    if (lg && st_cfg_kind_of(lg) == ST_CFG_SCALAR)
        kind = st_cfg_scalar(lg);
    else if (lg && st_cfg_kind_of(lg) == ST_CFG_MAP &&
             (rc = st_cfg_get_str(lg, "kind", NULL, &kind, err)))
        return rc;
    if (kind && !strcmp(kind, "kafka")) {
        const st_cfg *kf = st_cfg_get(coll, "kafka");
        if (!kf)
            return st_cfg_fail(coll, err, ST_ERR_INVALID,
                               "event_log kafka needs a kafka: section with brokers");
        if ((rc = st_kafka_cfg_load(kf, &c->kafka, err)))
            return rc;
        size_t ns = srcs && st_cfg_kind_of(srcs) == ST_CFG_MAP ? st_cfg_len(srcs) : 0;
        c->kafka_topics = st_calloc(ns + 1, sizeof *c->kafka_topics);
        if (!c->kafka_topics)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < ns; i++) {
            c->kafka_topics[i] = st_sprintf("%s%s", c->kafka->topic_prefix, st_cfg_key_at(srcs, i));
            if (!c->kafka_topics[i])
                return st_fail(err, ST_ERR_NOMEM, "out of memory");
            c->n_kafka_topics = i + 1;
        }
    }
    for (size_t i = 0; srcs && st_cfg_kind_of(srcs) == ST_CFG_MAP && i < st_cfg_len(srcs); i++) {
        const st_cfg *s = st_cfg_at(srcs, i);
        const st_cfg *fams = st_cfg_kind_of(s) == ST_CFG_MAP ? st_cfg_get(s, "families") : NULL;
        if (fams && st_cfg_kind_of(fams) == ST_CFG_SEQ) {
            for (size_t j = 0; j < st_cfg_len(fams); j++) {
                const char *f = st_cfg_scalar(st_cfg_at(fams, j));
                if (f && add_family(c, f))
                    return st_fail(err, ST_ERR_NOMEM, "out of memory");
            }
        } else {
            char *f = st_sprintf("%s_events", st_cfg_key_at(srcs, i));
            rc = f ? add_family(c, f) : ST_ERR_NOMEM;
            st_free(f);
            if (rc)
                return st_fail(err, ST_ERR_NOMEM, "out of memory");
        }
    }
    return ST_OK;
}

static st_rc read_pii(st_loader_cfg *c, const st_cfg *pii, const char *base, st_err *err)
{
    static const char *const keys[] = {"master_key_env", "master_key_file", "hash_secret_env",
                                       "defaults", "fields", NULL};
    static const char *const classes[] = {"pii", "secret", "free_text", NULL};
    const char *env = "STRATA_MASTER_KEY", *file = NULL, *hse = NULL;
    st_rc rc = ST_OK;
    if (pii) {
        if (st_cfg_kind_of(pii) != ST_CFG_MAP)
            return st_cfg_fail(pii, err, ST_ERR_INVALID, "expected a map");
        rc = st_cfg_check_keys(pii, keys, err);
        rc = rc ? rc : st_cfg_get_str(pii, "master_key_env", env, &env, err);
        rc = rc ? rc : st_cfg_get_str(pii, "master_key_file", NULL, &file, err);
        rc = rc ? rc : st_cfg_get_str(pii, "hash_secret_env", NULL, &hse, err);
        if (rc)
            return rc;
    }
    c->master_key_env = st_strdup(env);
    if (file) {
        c->master_key_file = resolve(base, file);
    } else {
        /* beside the state database */
        const char *slash = strrchr(c->state_path, '/');
        char *dir = slash ? st_strndup(c->state_path, (size_t)(slash - c->state_path))
                          : st_strdup(".");
        c->master_key_file = dir ? st_path_join(*dir ? dir : "/", "master.key") : NULL;
        st_free(dir);
    }
    c->hash_secret_env = hse ? st_strdup(hse) : NULL;
    if (!c->master_key_env || !c->master_key_file || (hse && !c->hash_secret_env))
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    c->class_action[ST_FC_NONE] = ST_PII_KEEP;
    c->class_action[ST_FC_PII] = ST_PII_HASH;
    c->class_action[ST_FC_SECRET] = ST_PII_DROP;
    c->class_action[ST_FC_FREE_TEXT] = ST_PII_REDACT;
    const st_cfg *defs = pii ? st_cfg_get(pii, "defaults") : NULL;
    if (defs) {
        if (st_cfg_kind_of(defs) != ST_CFG_MAP)
            return st_cfg_fail(defs, err, ST_ERR_INVALID, "expected a map class: action");
        if ((rc = st_cfg_check_keys(defs, classes, err)))
            return rc;
        for (int k = 0; classes[k]; k++) {
            const char *a = NULL;
            if ((rc = st_cfg_get_str(defs, classes[k], NULL, &a, err)))
                return rc;
            if (a && !st_pii_action_parse(a, &c->class_action[k + 1]))
                return st_cfg_fail(st_cfg_get(defs, classes[k]), err, ST_ERR_INVALID,
                                   "unknown action '%s' (keep, encrypt, hash, redact, drop)", a);
        }
    }
    const st_cfg *fields = pii ? st_cfg_get(pii, "fields") : NULL;
    if (fields) {
        if (st_cfg_kind_of(fields) != ST_CFG_MAP)
            return st_cfg_fail(fields, err, ST_ERR_INVALID,
                               "expected a map family.column: action");
        size_t n = st_cfg_len(fields);
        c->rule_keys = st_calloc(n + 1, sizeof *c->rule_keys);
        c->rule_actions = st_calloc(n + 1, sizeof *c->rule_actions);
        if (!c->rule_keys || !c->rule_actions)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            const char *k = st_cfg_key_at(fields, i);
            const char *a = st_cfg_scalar(st_cfg_at(fields, i));
            if (!strchr(k, '.'))
                return st_cfg_fail(st_cfg_at(fields, i), err, ST_ERR_INVALID,
                                   "'%s': expected family.column", k);
            if (!a || !st_pii_action_parse(a, &c->rule_actions[i]) ||
                c->rule_actions[i] == ST_PII_DEFAULT)
                return st_cfg_fail(st_cfg_at(fields, i), err, ST_ERR_INVALID,
                                   "unknown action (keep, encrypt, hash, redact, drop)");
            c->rule_keys[i] = st_strdup(k);
            if (!c->rule_keys[i])
                return st_fail(err, ST_ERR_NOMEM, "out of memory");
            c->n_rules++;
        }
    }
    return ST_OK;
}

st_rc st_loader_cfg_load(const st_cfg *root, const char *base_dir, st_loader_cfg **out,
                         st_err *err)
{
    static const char *const keys[] = {"batch_events", "interval_ms", "dedup_window_days",
                                       "late_horizon_s", "stage_threads", "write_raw",
                                       "schemas_dir", "enabled", NULL};
    st_loader_cfg *c = st_calloc(1, sizeof *c);
    if (!c)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    st_rc rc = ST_OK;
    const char *lake = "./lake", *state = "./state.db", *schemas = "schemas";
    const st_cfg *ld = root ? st_cfg_get(root, "loader") : NULL;
    if (ld && st_cfg_kind_of(ld) != ST_CFG_MAP) {
        rc = st_cfg_fail(ld, err, ST_ERR_INVALID, "expected a map");
        goto fail;
    }
    if (root) {
        rc = st_cfg_get_str(root, "lake", lake, &lake, err);
        rc = rc ? rc : st_cfg_get_str(root, "state", state, &state, err);
    }
    if (rc == ST_OK && ld) {
        rc = st_cfg_check_keys(ld, keys, err);
        rc = rc ? rc : st_cfg_get_str(ld, "schemas_dir", schemas, &schemas, err);
    }
    for (size_t i = 0; rc == ST_OK && i < sizeof loader_ints / sizeof loader_ints[0]; i++) {
        const int_opt *o = &loader_ints[i];
        int64_t v = o->def;
        if (ld)
            rc = st_cfg_get_int(ld, o->key, o->def, &v, err);
        if (rc == ST_OK && (v < o->min || v > o->max))
            rc = st_cfg_fail(st_cfg_get(ld, o->key), err, ST_ERR_INVALID,
                             "must be between %lld and %lld", (long long)o->min,
                             (long long)o->max);
        if (rc == ST_OK)
            *(int64_t *)((char *)c + o->off) = v;
    }
    c->write_raw = true;
    c->enabled = true;
    if (rc == ST_OK && ld)
        rc = st_cfg_get_bool(ld, "write_raw", true, &c->write_raw, err);
    if (rc == ST_OK && ld)
        rc = st_cfg_get_bool(ld, "enabled", true, &c->enabled, err);
    if (rc)
        goto fail;
    c->lake = resolve(base_dir, lake);
    c->state_path = resolve(base_dir, state);
    c->schemas_dir = resolve(base_dir, schemas);
    if (!c->lake || !c->state_path || !c->schemas_dir) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto fail;
    }
    rc = read_collector(c, root ? st_cfg_get(root, "collector") : NULL, base_dir, err);
    rc = rc ? rc : read_pii(c, root ? st_cfg_get(root, "pii") : NULL, base_dir, err);
    if (rc)
        goto fail;
    *out = c;
    return ST_OK;
fail:
    st_loader_cfg_free(c);
    return rc;
}
