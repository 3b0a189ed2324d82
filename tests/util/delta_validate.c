/*
 * delta_validate.c - an independent check of the Delta protocol invariants
 * of a table (see delta_validate.h).  It replays the JSON log itself with
 * jansson rather than trusting the module under test.
 */
#include "delta_validate.h"

#include <ctype.h>
#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VERSIONS 100000

static char *decode(const char *s)
{
    size_t n = strlen(s);
    char *o = st_malloc(n + 1);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (!isxdigit((unsigned char)s[i + 1]) || !isxdigit((unsigned char)s[i + 2])) {
                st_free(o);
                return NULL;
            }
            char hex[3] = {s[i + 1], s[i + 2], 0};
            o[j++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            o[j++] = s[i];
        }
    }
    o[j] = '\0';
    return o;
}

/* The logical-file key of an add/remove: path plus the deletion vector's
 * unique id (storageType, pathOrInlineDv, offset), as the protocol
 * reconciles actions.  OWNED, NULL without a path. */
static char *action_key(json_t *a)
{
    const char *p = json_string_value(json_object_get(a, "path"));
    if (!p)
        return NULL;
    json_t *dv = json_object_get(a, "deletionVector");
    if (!json_is_object(dv))
        return st_strdup(p);
    json_t *off = json_object_get(dv, "offset");
    const char *st = json_string_value(json_object_get(dv, "storageType"));
    const char *pd = json_string_value(json_object_get(dv, "pathOrInlineDv"));
    return st_sprintf("%s|dv:%s%s@%lld", p, st ? st : "", pd ? pd : "",
                      json_is_integer(off) ? (long long)json_integer_value(off) : -1LL);
}

typedef struct live {
    st_map *files;   /* action_key -> json_t* add (owned reference) */
    json_t *pcols;   /* partitionColumns of the last metaData */
} live;

static void live_del(live *l, const char *path)
{
    json_t *old = st_map_del(l->files, path);
    json_decref(old);
}

/* Checks one add action; a file that no longer exists (removed later and
 * vacuumed) is only an error when must_exist (the file is live). */
static st_rc check_add(const char *table, st_engine *eng, json_t *add, json_t *pcols,
                       const char *what, bool must_exist, st_err *err)
{
    const char *path = json_string_value(json_object_get(add, "path"));
    if (!path || path[0] == '/' || strstr(path, "://"))
        return st_fail(err, ST_ERR_CORRUPT, "%s: add path not relative: %s", what, path ? path : "(none)");
    for (const char *p = path; *p; p++)
        if (*p == ' ' || (unsigned char)*p < 0x20)
            return st_fail(err, ST_ERR_CORRUPT, "%s: unencoded character in path %s", what, path);
    char *dec = decode(path);
    if (!dec)
        return st_fail(err, ST_ERR_CORRUPT, "%s: bad percent-encoding in %s", what, path);
    char *abs = st_path_join(table, dec);
    st_free(dec);
    bool exists = st_path_exists(abs);
    if (!exists && !must_exist) {
        st_free(abs);
        abs = NULL;
    } else if (!exists) {
        st_rc rc = st_fail(err, ST_ERR_CORRUPT, "%s: file of %s does not exist (%s)", what, path, abs);
        st_free(abs);
        return rc;
    }
    json_t *pv = json_object_get(add, "partitionValues");
    if (!json_is_object(pv) || json_object_size(pv) != json_array_size(pcols)) {
        st_free(abs);
        return st_fail(err, ST_ERR_CORRUPT, "%s: partitionValues of %s do not match the partition columns", what, path);
    }
    size_t i;
    json_t *c;
    json_array_foreach(pcols, i, c)
    {
        json_t *v = json_object_get(pv, json_string_value(c));
        if (!v || !(json_is_string(v) || json_is_null(v))) {
            st_free(abs);
            return st_fail(err, ST_ERR_CORRUPT, "%s: partition value %s of %s missing or not a string", what, json_string_value(c), path);
        }
    }
    const char *stats = json_string_value(json_object_get(add, "stats"));
    if (!stats) {
        st_free(abs);
        return st_fail(err, ST_ERR_CORRUPT, "%s: add %s has no stats", what, path);
    }
    json_t *sj = json_loads(stats, 0, NULL);
    json_t *nr = sj ? json_object_get(sj, "numRecords") : NULL;
    if (!json_is_integer(nr)) {
        json_decref(sj);
        st_free(abs);
        return st_fail(err, ST_ERR_CORRUPT, "%s: stats of %s malformed: %s", what, path, stats);
    }
    int64_t want = json_integer_value(nr);
    json_decref(sj);
    if (!abs)
        return ST_OK;
    st_buf q;
    st_buf_init(&q, 0);
    st_buf_puts(&q, "SELECT count(*) FROM read_parquet(");
    st_buf_sql_str(&q, abs);
    st_buf_puts(&q, ")");
    int64_t got = -1;
    st_rc rc = st_engine_query_i64(eng, q.data, &got, err);
    st_buf_free(&q);
    st_free(abs);
    if (rc == ST_OK && got != want)
        rc = st_fail(err, ST_ERR_CORRUPT, "%s: stats numRecords %lld of %s but the file has %lld rows", what, (long long)want, path, (long long)got);
    return rc;
}

/* Compares the checkpoint's add paths with the replayed live set. */
static st_rc check_checkpoint(const char *table, st_engine *eng, int64_t v, live *l, st_err *err)
{
    char *ck = st_sprintf("%s/_delta_log/%020lld.checkpoint.parquet", table, (long long)v);
    st_buf q;
    st_buf_init(&q, 0);
    st_buf_puts(&q, "SELECT add.path FROM read_parquet(");
    st_buf_sql_str(&q, ck);
    st_buf_puts(&q, ") WHERE add IS NOT NULL");
    duckdb_result r;
    st_rc rc = st_engine_query(eng, q.data, &r, err);
    st_buf_free(&q);
    if (rc) {
        st_err_ctx(err, "checkpoint %s", ck);
        st_free(ck);
        return rc;
    }
    /* the checkpoint is compared by path (a path is live at most once) */
    st_map *paths = st_map_new();
    size_t it = 0;
    const char *k;
    void *val;
    while (paths && st_map_next(l->files, &it, &k, &val)) {
        const char *p = json_string_value(json_object_get((json_t *)val, "path"));
        if (p)
            st_map_put(paths, p, (void *)1, NULL);
    }
    idx_t n = duckdb_row_count(&r);
    if (!paths)
        rc = st_fail(err, ST_ERR_NOMEM, "checkpoint %lld", (long long)v);
    else if (st_map_len(paths) != st_map_len(l->files))
        rc = st_fail(err, ST_ERR_CORRUPT, "version %lld: a path is live twice (with different deletion vectors)", (long long)v);
    else if (n != st_map_len(l->files))
        rc = st_fail(err, ST_ERR_CORRUPT, "checkpoint %lld has %llu adds, replay has %zu", (long long)v, (unsigned long long)n, st_map_len(l->files));
    for (idx_t i = 0; rc == ST_OK && i < n; i++) {
        char *p = duckdb_value_varchar(&r, 0, i);
        if (!p || !st_map_get(paths, p))
            rc = st_fail(err, ST_ERR_CORRUPT, "checkpoint %lld has add %s not in the replayed state", (long long)v, p ? p : "(null)");
        duckdb_free(p);
    }
    duckdb_destroy_result(&r);
    st_map_free(paths);
    st_free(ck);
    return rc;
}

st_rc st_test_delta_validate(const char *table_path, st_engine *eng, st_err *err)
{
    char *log = st_path_join(table_path, "_delta_log");
    DIR *d = opendir(log);
    if (!d) {
        st_rc rc = st_fail(err, ST_ERR_NOTFOUND, "no _delta_log in %s", table_path);
        st_free(log);
        return rc;
    }
    int64_t lo = -1, hi = -1;
    size_t n = 0;
    int64_t oldest_ck = -1;
    bool *ck = st_calloc(MAX_VERSIONS, sizeof *ck);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long long v;
        int len = 0;
        if (sscanf(e->d_name, "%20lld.json%n", &v, &len) == 1 && len && e->d_name[len] == 0 && strlen(e->d_name) == 25) {
            n++;
            lo = lo < 0 || v < lo ? v : lo;
            hi = v > hi ? v : hi;
        } else if (sscanf(e->d_name, "%20lld.checkpoint.parquet%n", &v, &len) == 1 && len && e->d_name[len] == 0 && v < MAX_VERSIONS) {
            ck[v] = true;
            oldest_ck = oldest_ck < 0 || v < oldest_ck ? v : oldest_ck;
        }
    }
    closedir(d);
    st_rc rc = ST_OK;
    live l = {st_map_new(), json_array()};
    if (n == 0 || hi >= MAX_VERSIONS)
        rc = st_fail(err, ST_ERR_CORRUPT, "%s: no commits", table_path);
    else if ((int64_t)n != hi - lo + 1)
        rc = st_fail(err, ST_ERR_CORRUPT, "%s: versions %lld..%lld not contiguous", table_path, (long long)lo, (long long)hi);
    else if (lo > 0 && (oldest_ck < 0 || oldest_ck < lo - 1))
        rc = st_fail(err, ST_ERR_CORRUPT, "%s: commits start at %lld without a checkpoint", table_path, (long long)lo);
    int64_t start = lo;
    if (rc == ST_OK && lo > 0) {
        /* replay from the checkpoint that covers the missing commits */
        start = oldest_ck + 1;
        char *ckp = st_sprintf("%s/%020lld.checkpoint.parquet", log, (long long)oldest_ck);
        st_buf q;
        st_buf_init(&q, 0);
        st_buf_puts(&q, "SELECT to_json(add)::VARCHAR FROM read_parquet(");
        st_buf_sql_str(&q, ckp);
        st_buf_puts(&q, ") WHERE add IS NOT NULL");
        duckdb_result r;
        rc = st_engine_query(eng, q.data, &r, err);
        for (idx_t i = 0; rc == ST_OK && i < duckdb_row_count(&r); i++) {
            char *j = duckdb_value_varchar(&r, 0, i);
            json_t *a = j ? json_loads(j, 0, NULL) : NULL;
            char *p = action_key(a);
            if (p)
                st_map_put(l.files, p, a, NULL);
            else
                json_decref(a);
            st_free(p);
            duckdb_free(j);
        }
        if (rc == ST_OK)
            duckdb_destroy_result(&r);
        st_buf_free(&q);
        char *pq = st_sprintf("SELECT to_json(metaData.partitionColumns)::VARCHAR FROM read_parquet('%s') WHERE metaData IS NOT NULL", ckp);
        char *pcj = NULL;
        if (rc == ST_OK && st_engine_query_str(eng, pq, &pcj, err) == ST_OK && pcj) {
            json_decref(l.pcols);
            l.pcols = json_loads(pcj, 0, NULL);
        }
        st_free(pcj);
        st_free(pq);
        st_free(ckp);
    }
    for (int64_t v = start; rc == ST_OK && v <= hi; v++) {
        char *path = st_sprintf("%s/%020lld.json", log, (long long)v);
        char what[64];
        snprintf(what, sizeof what, "commit %lld", (long long)v);
        char *data = NULL;
        size_t len = 0;
        rc = st_file_read(path, (size_t)1 << 30, &data, &len, err);
        st_free(path);
        if (rc)
            break;
        st_map *seen = st_map_new();
        st_map *apps = st_map_new();
        int n_meta = 0, n_proto = 0, n_ci = 0, lineno = 0;
        bool saw_add = false;
        char *line = data;
        json_t *adds = json_array();
        while (rc == ST_OK && line && *line) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            lineno++;
            json_t *j = json_loads(line, 0, NULL);
            line = nl ? nl + 1 : NULL;
            if (!j || !json_is_object(j) || json_object_size(j) != 1) {
                rc = st_fail(err, ST_ERR_CORRUPT, "%s line %d: not one JSON action", what, lineno);
                json_decref(j);
                break;
            }
            const char *k = json_object_iter_key(json_object_iter(j));
            json_t *a = json_object_iter_value(json_object_iter(j));
            if (!strcmp(k, "commitInfo")) {
                n_ci++;
            } else if (!strcmp(k, "metaData")) {
                n_meta++;
                if (saw_add && v == 0)
                    rc = st_fail(err, ST_ERR_CORRUPT, "%s: metaData after add", what);
                json_decref(l.pcols);
                l.pcols = json_incref(json_object_get(a, "partitionColumns"));
            } else if (!strcmp(k, "protocol")) {
                n_proto++;
                if (saw_add && v == 0)
                    rc = st_fail(err, ST_ERR_CORRUPT, "%s: protocol after add", what);
            } else if (!strcmp(k, "txn")) {
                const char *app = json_string_value(json_object_get(a, "appId"));
                if (!app || st_map_get(apps, app))
                    rc = st_fail(err, ST_ERR_CORRUPT, "%s: duplicate txn appId %s", what, app ? app : "(null)");
                else
                    st_map_put(apps, app, (void *)1, NULL);
            } else if (!strcmp(k, "add") || !strcmp(k, "remove")) {
                /* one logical file (path + DV id) at most once per commit */
                char *p = action_key(a);
                if (!p || st_map_get(seen, p)) {
                    rc = st_fail(err, ST_ERR_CORRUPT, "%s: path %s appears twice", what, p ? p : "(null)");
                } else {
                    st_map_put(seen, p, (void *)1, NULL);
                    if (!strcmp(k, "add")) {
                        saw_add = true;
                        json_array_append(adds, a);
                        live_del(&l, p);
                        st_map_put(l.files, p, json_incref(a), NULL);
                    } else {
                        live_del(&l, p);
                    }
                }
                st_free(p);
            }
            json_decref(j);
        }
        if (rc == ST_OK && n_ci != 1)
            rc = st_fail(err, ST_ERR_CORRUPT, "%s: %d commitInfo actions", what, n_ci);
        if (rc == ST_OK && (n_meta > 1 || n_proto > 1))
            rc = st_fail(err, ST_ERR_CORRUPT, "%s: %d metaData / %d protocol actions", what, n_meta, n_proto);
        if (rc == ST_OK && v == 0 && (n_meta != 1 || n_proto != 1))
            rc = st_fail(err, ST_ERR_CORRUPT, "%s: version 0 needs protocol and metaData", what);
        size_t i;
        json_t *a;
        json_array_foreach(adds, i, a)
        {
            if (rc == ST_OK)
                rc = check_add(table_path, eng, a, l.pcols, what, false, err);
        }
        json_decref(adds);
        st_map_free(seen);
        st_map_free(apps);
        st_free(data);
        if (rc == ST_OK && v < MAX_VERSIONS && ck[v])
            rc = check_checkpoint(table_path, eng, v, &l, err);
    }
    /* every live file must exist */
    size_t lit = 0;
    const char *lkey;
    void *lval;
    while (rc == ST_OK && st_map_next(l.files, &lit, &lkey, &lval)) {
        const char *lpath = json_string_value(json_object_get((json_t *)lval, "path"));
        char *dec = lpath ? decode(lpath) : NULL;
        char *abs = dec ? st_path_join(table_path, dec) : NULL;
        if (!abs || !st_path_exists(abs))
            rc = st_fail(err, ST_ERR_CORRUPT, "live file %s does not exist", lkey);
        st_free(dec);
        st_free(abs);
    }
    char *lc = st_path_join(log, "_last_checkpoint");
    if (rc == ST_OK && st_path_exists(lc)) {
        char *data = NULL;
        size_t len;
        rc = st_file_read(lc, 1 << 20, &data, &len, err);
        json_t *j = rc == ST_OK ? json_loads(data, 0, NULL) : NULL;
        int64_t v = json_integer_value(json_object_get(j, "version"));
        if (rc == ST_OK && (!j || !json_is_integer(json_object_get(j, "size")) || v < 0 || v >= MAX_VERSIONS || !ck[v]))
            rc = st_fail(err, ST_ERR_CORRUPT, "_last_checkpoint malformed or names a missing checkpoint: %s", data);
        json_decref(j);
        st_free(data);
    }
    st_free(lc);
    size_t it = 0;
    const char *key;
    void *val;
    while (st_map_next(l.files, &it, &key, &val))
        json_decref(val);
    st_map_free(l.files);
    json_decref(l.pcols);
    st_free(ck);
    st_free(log);
    return rc;
}
