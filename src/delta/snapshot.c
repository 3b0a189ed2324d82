/*
 * snapshot.c - table state at a version: picks the newest usable checkpoint
 * at or below the version from one listing of _delta_log, replays the JSON
 * commits after it (action reconciliation), checks the reader protocol, and
 * answers version / timestamp questions (time travel).
 *
 * log.c parses actions and lists the log; checkpoint_read.c reads Parquet
 * and V2 checkpoints.
 */
#include "delta/delta_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------- protocol */

/* Reader features this module implements (see README.md). */
static const char *const g_reader_features[] = {
    "columnMapping",   "deletionVectors",      "timestampNtz",  "v2Checkpoint",
    "vacuumProtocolCheck", "typeWidening",     "typeWidening-preview",
    /* writer-only features that some writers also list for readers; they do
     * not change how data is read */
    "domainMetadata",  "inCommitTimestamp",    "rowTracking",   "appendOnly",
    "invariants",      "checkConstraints",     "changeDataFeed", "generatedColumns",
    "identityColumns", "clustering",           "icebergCompatV1", "icebergCompatV2",
    "checkpointProtection", "allowColumnDefaults",
    NULL,
};

bool st_delta_has_feature(const st_delta_protocol *p, const char *feature)
{
    for (size_t i = 0; i < p->n_reader_features; i++)
        if (!strcmp(p->reader_features[i], feature))
            return true;
    for (size_t i = 0; i < p->n_writer_features; i++)
        if (!strcmp(p->writer_features[i], feature))
            return true;
    return false;
}

st_rc st_delta_check_read_protocol(const st_delta_protocol *p, const char *table_path,
                                   st_err *err)
{
    if (p->min_reader > 3)
        return st_fail(err, ST_ERR_UNSUPPORTED,
                       "table %s needs reader version %d; this reader supports up to 3", table_path,
                       p->min_reader);
    if (p->min_reader < 3)
        return ST_OK;
    for (size_t i = 0; i < p->n_reader_features; i++) {
        bool known = false;
        for (size_t k = 0; g_reader_features[k]; k++)
            if (!strcmp(g_reader_features[k], p->reader_features[i]))
                known = true;
        if (!known)
            return st_fail(err, ST_ERR_UNSUPPORTED,
                           "table %s uses reader feature \"%s\", which this reader does not support",
                           table_path, p->reader_features[i]);
    }
    return ST_OK;
}

/* ---------------------------------------------------------------- replay */

typedef struct replay {
    st_arena *a;
    const char *table_path;
    st_map *files;     /* key -> st_delta_file* */
    st_map *tombs;     /* key -> st_delta_tombstone* */
    st_map *txns;      /* appId -> st_delta_apptxn* */
    st_map *domains;   /* domain -> st_delta_domain* */
    st_delta_protocol *protocol;
    st_delta_metadata *metadata;
    st_buf key;
} replay;

static const char *file_key(replay *r, const char *abs, bool has_dv, const st_delta_dv *dv)
{
    st_buf_reset(&r->key);
    st_buf_puts(&r->key, abs ? abs : "");
    if (has_dv) {
        st_buf_putc(&r->key, '\x1f');
        st_buf_putc(&r->key, dv->storage_type);
        st_buf_puts(&r->key, dv->path_or_inline);
        if (dv->offset >= 0)
            st_buf_printf(&r->key, "@%d", (int)dv->offset);
    }
    return r->key.data;
}

static st_rc apply(replay *r, const st_delta_commit *c, st_err *err)
{
    if (c->protocol)
        r->protocol = c->protocol;
    if (c->metadata)
        r->metadata = c->metadata;
    for (size_t i = 0; i < c->n_removes; i++) {
        st_delta_tombstone *t = c->removes[i];
        const char *k = file_key(r, t->abs_path, t->has_dv, &t->dv);
        if (!k)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        st_map_del(r->files, k);
        if (st_map_put(r->tombs, k, t, NULL))
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < c->n_adds; i++) {
        st_delta_file *f = c->adds[i];
        const char *k = file_key(r, f->abs_path, f->has_dv, &f->dv);
        if (!k)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        st_map_del(r->tombs, k);
        if (st_map_put(r->files, k, f, NULL))
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < c->n_txns; i++) {
        st_delta_apptxn *t = &c->txns[i];
        st_delta_apptxn *old = st_map_get(r->txns, t->app_id);
        if (old && old->version > t->version)
            continue;
        if (st_map_put(r->txns, t->app_id, t, NULL))
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < c->n_domains; i++) {
        st_delta_domain *d = &c->domains[i];
        if (d->removed)
            st_map_del(r->domains, d->domain);
        else if (st_map_put(r->domains, d->domain, d, NULL))
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    return ST_OK;
}

static int cmp_file(const void *a, const void *b)
{
    const st_delta_file *x = *(st_delta_file *const *)a, *y = *(st_delta_file *const *)b;
    int c = strcmp(x->path, y->path);
    if (c)
        return c;
    const char *dx = x->has_dv ? x->dv.path_or_inline : "";
    const char *dy = y->has_dv ? y->dv.path_or_inline : "";
    c = strcmp(dx, dy);
    return c ? c : (x->dv.offset > y->dv.offset) - (x->dv.offset < y->dv.offset);
}

static int cmp_tomb(const void *a, const void *b)
{
    const st_delta_tombstone *x = *(st_delta_tombstone *const *)a;
    const st_delta_tombstone *y = *(st_delta_tombstone *const *)b;
    return strcmp(x->path, y->path);
}

static int cmp_txn(const void *a, const void *b)
{
    return strcmp(((const st_delta_apptxn *)a)->app_id, ((const st_delta_apptxn *)b)->app_id);
}

static int cmp_domain(const void *a, const void *b)
{
    return strcmp(((const st_delta_domain *)a)->domain, ((const st_delta_domain *)b)->domain);
}

/* Moves the replay maps into the snapshot's sorted arrays. */
static st_rc finish(replay *r, st_delta_snapshot *s, st_err *err)
{
    size_t it = 0;
    const char *k;
    void *v;
    s->n_files = st_map_len(r->files);
    s->files = st_arena_alloc(r->a, (s->n_files ? s->n_files : 1) * sizeof *s->files);
    s->n_tombstones = st_map_len(r->tombs);
    s->tombstones = st_arena_alloc(r->a, (s->n_tombstones ? s->n_tombstones : 1) * sizeof *s->tombstones);
    s->n_txns = st_map_len(r->txns);
    s->txns = st_arena_alloc(r->a, (s->n_txns ? s->n_txns : 1) * sizeof *s->txns);
    s->n_domains = st_map_len(r->domains);
    s->domains = st_arena_alloc(r->a, (s->n_domains ? s->n_domains : 1) * sizeof *s->domains);
    if (!s->files || !s->tombstones || !s->txns || !s->domains)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    size_t i = 0;
    while (st_map_next(r->files, &it, &k, &v))
        s->files[i++] = v;
    qsort(s->files, s->n_files, sizeof *s->files, cmp_file);
    it = 0;
    i = 0;
    while (st_map_next(r->tombs, &it, &k, &v))
        s->tombstones[i++] = v;
    qsort(s->tombstones, s->n_tombstones, sizeof *s->tombstones, cmp_tomb);
    it = 0;
    i = 0;
    while (st_map_next(r->txns, &it, &k, &v))
        s->txns[i++] = *(st_delta_apptxn *)v;
    qsort(s->txns, s->n_txns, sizeof *s->txns, cmp_txn);
    it = 0;
    i = 0;
    while (st_map_next(r->domains, &it, &k, &v))
        s->domains[i++] = *(st_delta_domain *)v;
    qsort(s->domains, s->n_domains, sizeof *s->domains, cmp_domain);
    s->protocol = *r->protocol;
    s->metadata = *r->metadata;
    return ST_OK;
}

static void replay_clear(replay *r)
{
    st_map_free(r->files);
    st_map_free(r->tombs);
    st_map_free(r->txns);
    st_map_free(r->domains);
    st_buf_free(&r->key);
    r->files = r->tombs = r->txns = r->domains = NULL;
}

static st_rc replay_init(replay *r, st_arena *a, const char *table_path, st_err *err)
{
    memset(r, 0, sizeof *r);
    r->a = a;
    r->table_path = table_path;
    st_buf_init(&r->key, 0);
    r->files = st_map_new();
    r->tombs = st_map_new();
    r->txns = st_map_new();
    r->domains = st_map_new();
    if (!r->files || !r->tombs || !r->txns || !r->domains) {
        replay_clear(r);
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    return ST_OK;
}

/* Reads and parses commit `v` into the arena. */
static st_rc read_commit(const char *table_path, int64_t v, st_arena *a, st_delta_commit *c,
                         st_err *err)
{
    char *path = st_delta_commit_path(table_path, v);
    if (!path)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    char *data = NULL;
    size_t len = 0;
    st_rc rc = st_file_read(path, (size_t)1 << 31, &data, &len, err);
    if (rc == ST_OK)
        rc = st_delta_log_parse_commit(data, len, path, table_path, a, c, err);
    st_free(data);
    st_free(path);
    return rc;
}

static int64_t file_mtime_ms(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return -1;
    return (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
}

static int64_t commit_ts_of(const st_delta_commit *c, const char *table_path, int64_t v)
{
    if (c->in_commit_timestamp >= 0)
        return c->in_commit_timestamp;
    if (c->commit_timestamp >= 0)
        return c->commit_timestamp;
    char *p = st_delta_commit_path(table_path, v);
    int64_t t = p ? file_mtime_ms(p) : -1;
    st_free(p);
    return t;
}

st_rc st_delta_commit_timestamp(const char *table_path, int64_t version, int64_t *out_ms,
                                st_err *err)
{
    char *path = st_delta_commit_path(table_path, version);
    if (!path)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    char *data = NULL;
    size_t len = 0;
    st_rc rc = st_file_read(path, (size_t)1 << 31, &data, &len, err);
    if (rc) {
        if (!st_path_exists(path))
            rc = st_fail(err, ST_ERR_NOTFOUND, "commit %lld not found: %s", (long long)version, path);
        st_free(path);
        return rc;
    }
    /* only commitInfo lines matter; skip parsing the (possibly many) others */
    int64_t ts = -1, ict = -1;
    for (char *line = data; line && *line;) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!strncmp(p, "{\"commitInfo\"", 13)) {
            json_t *j = json_loadb(line, n, 0, NULL);
            json_t *ci = json_object_get(j, "commitInfo");
            json_t *t = json_object_get(ci, "timestamp");
            json_t *ic = json_object_get(ci, "inCommitTimestamp");
            if (json_is_integer(t))
                ts = json_integer_value(t);
            if (json_is_integer(ic))
                ict = json_integer_value(ic);
            json_decref(j);
            break;
        }
        line = nl ? nl + 1 : NULL;
    }
    st_free(data);
    int64_t r = ict >= 0 ? ict : ts >= 0 ? ts : file_mtime_ms(path);
    st_free(path);
    if (r < 0)
        return st_fail(err, ST_ERR_IO, "cannot determine the timestamp of commit %lld",
                       (long long)version);
    *out_ms = r;
    return ST_OK;
}

static int64_t listing_latest(const st_delta_listing *l)
{
    int64_t v = l->n_commits ? l->commits[l->n_commits - 1] : -1;
    if (l->n_ckpts && l->ckpts[l->n_ckpts - 1].version > v)
        v = l->ckpts[l->n_ckpts - 1].version;
    return v;
}

st_rc st_delta_latest_version(const char *table_path, int64_t *out, st_err *err)
{
    st_delta_listing *l = NULL;
    st_rc rc = st_delta_list_log(table_path, &l, err);
    if (rc == ST_ERR_NOTFOUND) {
        *out = -1;
        return ST_OK;
    }
    if (rc)
        return rc;
    *out = listing_latest(l);
    st_delta_listing_free(l);
    return ST_OK;
}

static const char *ckpt_kind_name(st_delta_ckpt_kind k)
{
    switch (k) {
    case ST_CKPT_CLASSIC: return "classic";
    case ST_CKPT_MULTI: return "multi-part";
    case ST_CKPT_V2_JSON: return "V2 JSON";
    case ST_CKPT_V2_PARQUET: return "V2 Parquet";
    }
    return "?";
}

/* First missing commit in (from, to], or -1 when contiguous. */
static int64_t first_gap(const st_delta_listing *l, int64_t from, int64_t to)
{
    for (int64_t v = from + 1; v <= to; v++)
        if (!st_delta_listing_has_commit(l, v))
            return v;
    return -1;
}

void st_delta_snapshot_free(st_delta_snapshot *s)
{
    if (!s)
        return;
    st_arena *a = s->arena;
    st_arena_free(a);
}

st_rc st_delta_snapshot_load_listed(st_engine *eng, const char *table_path,
                                    const st_delta_listing *l, int64_t version,
                                    st_delta_snapshot **out, st_err *err)
{
    int64_t latest = listing_latest(l);
    if (latest < 0)
        return st_fail(err, ST_ERR_NOTFOUND, "no Delta table at %s: _delta_log has no commits",
                       table_path);
    int64_t target = version < 0 ? latest : version;
    if (target > latest)
        return st_fail(err, ST_ERR_NOTFOUND, "table %s has no version %lld (latest is %lld)",
                       table_path, (long long)target, (long long)latest);
    if (l->last_checkpoint_version >= 0) {
        bool found = false;
        for (size_t i = 0; i < l->n_ckpts; i++)
            if (l->ckpts[i].version == l->last_checkpoint_version)
                found = true;
        if (!found)
            st_warn("delta: %s/_delta_log/_last_checkpoint names version %lld but no complete "
                    "checkpoint of that version exists; using the listing",
                    table_path, (long long)l->last_checkpoint_version);
    }

    st_arena *a = st_arena_new(256 * 1024);
    st_delta_snapshot *s = a ? st_arena_alloc(a, sizeof *s) : NULL;
    if (!s) {
        st_arena_free(a);
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    s->arena = a;
    s->table_path = st_arena_strdup(a, table_path);
    s->version = target;
    s->checkpoint_version = -1;
    replay r;
    st_rc rc = replay_init(&r, a, table_path, err);
    if (rc) {
        st_arena_free(a);
        return rc;
    }
    st_err first_err;
    st_err_clear(&first_err);
    bool have_first_err = false;
    int64_t start = -1; /* replay commits after this version */
    /* newest usable checkpoint at or below target; older ones if it fails */
    for (size_t i = l->n_ckpts; i-- > 0;) {
        const st_delta_ckpt *ck = &l->ckpts[i];
        if (ck->version > target)
            continue;
        int64_t gap = first_gap(l, ck->version, target);
        if (gap >= 0) {
            rc = st_fail(err, ST_ERR_CORRUPT,
                         "table %s: commit %lld is missing (%s/_delta_log/%020lld.json); the log "
                         "is not contiguous after checkpoint %lld",
                         table_path, (long long)gap, table_path, (long long)gap,
                         (long long)ck->version);
            goto fail;
        }
        st_delta_commit c;
        st_err cerr;
        st_rc crc = st_delta_checkpoint_read(eng, table_path, ck, a, &c, &cerr);
        if (crc == ST_OK && (!c.protocol || !c.metadata)) {
            crc = st_fail(&cerr, ST_ERR_CORRUPT, "checkpoint %s has no %s action", ck->files[0],
                          !c.protocol ? "protocol" : "metaData");
        }
        if (crc == ST_OK) {
            rc = apply(&r, &c, err);
            if (rc)
                goto fail;
            start = ck->version;
            s->checkpoint_version = ck->version;
            break;
        }
        st_warn("delta: %s checkpoint at version %lld of %s is unusable, trying older state: %s",
                ckpt_kind_name(ck->kind), (long long)ck->version, table_path, cerr.msg);
        if (!have_first_err) {
            first_err = cerr;
            have_first_err = true;
        }
        /* a partially applied checkpoint is discarded with the maps */
        replay_clear(&r);
        rc = replay_init(&r, a, table_path, err);
        if (rc)
            goto fail;
    }
    if (start < 0) {
        int64_t gap = first_gap(l, -1, target);
        if (gap >= 0) {
            if (have_first_err) {
                if (err)
                    *err = first_err;
                rc = first_err.code;
            } else if (gap == 0 || !st_delta_listing_has_commit(l, 0)) {
                rc = st_fail(err, ST_ERR_NOTFOUND,
                             "table %s: version %lld cannot be reconstructed: commit %lld "
                             "(%s/_delta_log/%020lld.json) is gone and no checkpoint at or below "
                             "version %lld exists",
                             table_path, (long long)target, (long long)gap, table_path,
                             (long long)gap, (long long)target);
            } else {
                rc = st_fail(err, ST_ERR_CORRUPT,
                             "table %s: commit %lld is missing (%s/_delta_log/%020lld.json); log "
                             "versions are not contiguous",
                             table_path, (long long)gap, table_path, (long long)gap);
            }
            goto fail;
        }
    }
    st_delta_commit last;
    memset(&last, 0, sizeof last);
    for (int64_t v = start + 1; v <= target; v++) {
        rc = read_commit(table_path, v, a, &last, err);
        if (rc)
            goto fail;
        rc = apply(&r, &last, err);
        if (rc)
            goto fail;
    }
    if (!r.protocol || !r.metadata) {
        rc = st_fail(err, ST_ERR_CORRUPT, "table %s: no %s action in the log up to version %lld",
                     table_path, !r.protocol ? "protocol" : "metaData", (long long)target);
        goto fail;
    }
    rc = st_delta_check_read_protocol(r.protocol, table_path, err);
    if (rc)
        goto fail;
    rc = finish(&r, s, err);
    if (rc)
        goto fail;
    if (start < target) {
        s->timestamp_ms = commit_ts_of(&last, table_path, target);
    } else if (st_delta_commit_timestamp(table_path, target, &s->timestamp_ms, NULL) != ST_OK) {
        /* the commit JSON of a checkpoint version may be cleaned up */
        s->timestamp_ms = -1;
        for (size_t i = 0; i < l->n_ckpts; i++)
            if (l->ckpts[i].version == target)
                s->timestamp_ms = file_mtime_ms(l->ckpts[i].files[0]);
    }
    replay_clear(&r);
    *out = s;
    return ST_OK;
fail:
    replay_clear(&r);
    st_arena_free(a);
    return rc;
}

st_rc st_delta_snapshot_load(st_engine *eng, const char *table_path, int64_t version,
                             st_delta_snapshot **out, st_err *err)
{
    st_delta_listing *l = NULL;
    st_rc rc = st_delta_list_log(table_path, &l, err);
    if (rc)
        return rc;
    rc = st_delta_snapshot_load_listed(eng, table_path, l, version, out, err);
    st_delta_listing_free(l);
    return rc;
}

st_rc st_delta_snapshot_at_time(st_engine *eng, const char *table_path, int64_t ts_ms,
                                st_delta_snapshot **out, st_err *err)
{
    st_delta_listing *l = NULL;
    st_rc rc = st_delta_list_log(table_path, &l, err);
    if (rc)
        return rc;
    if (l->n_commits == 0) {
        st_delta_listing_free(l);
        return st_fail(err, ST_ERR_NOTFOUND, "table %s has no commits", table_path);
    }
    /* commit timestamps are monotonic (writers and in-commit timestamps
     * ensure it), so binary search over the retained commits */
    size_t lo = 0, hi = l->n_commits; /* find last index with ts <= ts_ms */
    int64_t first_ts = -1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t t;
        rc = st_delta_commit_timestamp(table_path, l->commits[mid], &t, err);
        if (rc) {
            st_delta_listing_free(l);
            return rc;
        }
        if (mid == 0)
            first_ts = t;
        if (t <= ts_ms)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) {
        if (first_ts < 0)
            st_delta_commit_timestamp(table_path, l->commits[0], &first_ts, NULL);
        rc = st_fail(err, ST_ERR_NOTFOUND,
                     "table %s: timestamp %lld ms is before the earliest available commit "
                     "(version %lld at %lld ms)",
                     table_path, (long long)ts_ms, (long long)l->commits[0], (long long)first_ts);
        st_delta_listing_free(l);
        return rc;
    }
    rc = st_delta_snapshot_load_listed(eng, table_path, l, l->commits[lo - 1], out, err);
    st_delta_listing_free(l);
    return rc;
}

const char *st_delta_config(const st_delta_snapshot *s, const char *key, const char *def)
{
    if (!s || !key)
        return def;
    const st_delta_metadata *m = &s->metadata;
    for (size_t i = 0; i < m->n_configuration; i++)
        if (!strcmp(m->configuration[i].key, key))
            return m->configuration[i].value ? m->configuration[i].value : def;
    for (size_t i = 0; i < m->n_configuration; i++)
        if (!strcasecmp(m->configuration[i].key, key))
            return m->configuration[i].value ? m->configuration[i].value : def;
    return def;
}

const char *st_delta_cm_mode(const st_delta_snapshot *s)
{
    const char *m = st_delta_config(s, "delta.columnMapping.mode", "none");
    if (!strcasecmp(m, "name"))
        return "name";
    if (!strcasecmp(m, "id"))
        return "id";
    return "none";
}
