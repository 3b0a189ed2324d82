/*
 * loader.c - the micro-batch loader: raw event log -> <lake>/raw/events,
 * <lake>/bronze/<family> and <lake>/bronze/_quarantine.
 *
 * One step reads up to batch_events records from the checkpointed log
 * position.  Each record is parsed (fastjson.c), matched to its schema in
 * the registry (registry.c), type-checked, run through the PII policy
 * (pii.c, redact.c) and staged into DuckDB data chunks per target
 * (columns.c), by two workers at once (see struct worker).  Duplicates are
 * dropped within the batch (a map of ids, in log order) and against bronze
 * (dedup.c hash runs on disk per family and event date, a hit confirmed by
 * a query on bronze).
 * Each non-empty target is then committed as one Delta transaction carrying
 * txn(appId "loader", version = sequence number after the batch), two
 * tables at a time.  Only then the checkpoint moves in the state database.
 *
 * After a crash between commits, the tables that committed the batch record a
 * txn version beyond the checkpoint; the first batch after a restart is cut
 * at exactly that version, so it holds the same records, and the tables that
 * already have it skip it (st_delta_write compares the txn version).
 */
#include "load_int.h"
#include "kafka_src.h"
#include "columns.h"
#include "fastjson.h"

#include "strata/collect.h"
#include "strata/delta.h"
#include "strata/engine.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define APP_ID "loader"
#define READ_CHUNK 4096        /* records read, then staged, in one round */
#define SPLIT_MIN 256          /* fewer records in a round: one worker stages them */
#define MAX_WORKERS 2
#define STAGE_FN "strata_stage"
enum { STAGE_RAW, STAGE_Q, STAGE_FAM0 };
#define QUARANTINE_SUBJECT "_quarantine"
#define NO_SUBJECT "_nosubject"

/* Envelope columns at the start of every bronze table. */
static const char *const env_cols_ddl =
    "event_id string not null, event_type string, schema_version string, source string, "
    "country string, entity_id string, subject_id string, event_time timestamp, "
    "event_time_corrected timestamp, received_at timestamp, event_date date";
enum { N_ENV_COLS = 11 };

static const char *const raw_ddl =
    "seq long not null, event_id string, family string, event_type string, "
    "schema_version string, source string, subject_id string, country string, "
    "entity_id string, event_time timestamp, event_time_corrected timestamp, "
    "received_at timestamp, received_date date, record_bytes long, _batch_id string, "
    "_loaded_at timestamp";

static const char *const quarantine_ddl =
    "event_id string, family string, event_type string, schema_version string, source string, "
    "subject_id string, received_at timestamp, received_date date, reason string, "
    "schema_ref string, envelope string, record_enc string, _batch_id string, "
    "_loaded_at timestamp";

typedef struct pending_id {
    uint64_t h;
    int32_t day;
} pending_id;

typedef struct fam {
    char *name;
    char *path;
    st_bcol *cols;
    size_t n_cols;
    size_t n_rows;             /* rows of this batch that survived the dedup pass */
    st_map *batch_ids;         /* event_id -> non-NULL, this batch */
    st_dedup *dd;              /* hash runs per event date (dedup.c) */
    st_buf candidates;         /* SQL list of ids that hit a run */
    size_t n_candidates;
    int32_t cand_days[16];     /* dates of the candidates, for partition pruning */
    size_t n_cand_days;        /* > 16: no pruning */
    int32_t last_day;          /* the date whose runs were mapped last (cache) */
    bool last_day_ok;
    pending_id *pend;          /* ids appended this batch */
    size_t n_pend, cap_pend;
    bool exists;
} fam;

/* A worker's share of a family's batch. */
typedef struct wfam {
    st_rows st;                /* its bronze rows (columns.c) */
    const st_schema *plan_s;   /* the schema plan_fld/plan_act were computed for */
    int *plan_fld;             /* per column: index of s's field, -1 for none */
    st_pii_action *plan_act;   /* per column: resolved PII action */
} wfam;

/* A bronze row a worker staged, waiting for the dedup pass. */
typedef struct staged {
    uint64_t h;                /* st_id_hash of the event_id */
    uint32_t row;              /* its number in the worker's rows of the family */
    uint32_t id_off;           /* the event_id in the worker's ids */
    int32_t day;               /* event date */
    uint32_t fam;
    bool late;
} staged;

/*
 * Staging is split between workers (the loader's thread and one helper):
 * each round of records read from the log is cut in two contiguous halves,
 * each staged into the worker's own chunks; parsing, validation, the PII
 * policy and building the rows are independent per record.  Deduplication
 * needs the log order, so it runs after both halves, in order, on the
 * loader's thread (dedup_pass): a duplicate's staged row is then dropped.
 */
typedef struct worker {
    struct st_loader *l;
    st_fj j;                   /* the record being staged (fastjson.c) */
    st_buf a, b, c;            /* scratch */
    uint8_t *mark;             /* per node of j: consumed by a schema path (_extra) */
    size_t n_mark;
    int *fnode;                /* per field of the record's schema: its node in j,
                                  FNODE_TYPE for the event type (validate -> bronze_row) */
    size_t n_fnode;
    st_rows raw_st, q_st;
    size_t raw_rows, q_rows;
    wfam *wf;                  /* per family */
    staged *acc;               /* this round's bronze rows, in log order */
    size_t n_acc, cap_acc;
    st_buf ids;                /* their event_ids, NUL-terminated */
    int64_t quarantined;
    const st_evlog_rec *recs;  /* this round's share */
    size_t n_recs;
    st_rc rc;
    st_err err;
} worker;

struct st_loader {
    const st_loader_cfg *cfg;
    st_state *state;
    st_keystore *ks;
    st_registry *reg;
    st_engine *eng;
    fam *fams;
    size_t n_fams;
    char *raw_path, *q_path;
    char *dedup_root;          /* <state dir>/dedup */
    bool raw_exists, q_exists;
    size_t raw_rows, q_rows;
    _Atomic uint64_t position; /* checkpoint; read by the lag gauge from other threads */
    uint64_t replay_end;       /* > position: cut the next batch here */
    _Atomic uint64_t log_end;
    _Atomic bool has_limit;
    st_evlog_reader *reader;
    st_kafka_src *ksrc;        /* Kafka mode: read from here instead (kafka_src.c) */
    st_evlog_rec *recs;        /* a round's records */
    worker wk[MAX_WORKERS];
    size_t n_wk;
    st_stages stages;          /* raw, quarantine, then the families: scanned by STAGE_FN */
    st_engine *eng2;           /* a second connection: the other commit lane */
    /* the helper thread: runs help_fn(help_arg) for each new go */
    pthread_t helper;
    bool helper_on;
    pthread_mutex_t hmu;
    pthread_cond_t hcv;
    unsigned go, done;
    bool hstop;
    void (*help_fn)(void *);
    void *help_arg;
    int64_t now_us;
    char batch_id[48];
};

/* ---------------------------------------------------------------- helpers */

static int32_t day_of_us(int64_t us)
{
    int64_t d = us / 86400000000LL;
    if (us < 0 && us % 86400000000LL)
        d--;
    return (int32_t)d;
}

static void day_text(int32_t day, char out[16])
{
    int64_t y;
    unsigned m, d;
    st_civil_from_days(day, &y, &m, &d);
    snprintf(out, 16, "%04d-%02u-%02u", (int)(y % 10000), m % 100, d % 100);
}

static st_rc ddl_schema(const char *ddl, st_delta_schema **out, st_err *err)
{
    return st_delta_schema_from_ddl(ddl, out, err);
}

static const char *ftype_ddl(st_ftype t)
{
    switch (t) {
    case ST_FT_LONG: return "long";
    case ST_FT_DOUBLE: return "double";
    case ST_FT_BOOLEAN: return "boolean";
    case ST_FT_TIMESTAMP: return "timestamp";
    default: return "string";
    }
}

static char *family_ddl(const fam *f)
{
    st_buf b;
    st_buf_init(&b, 0);
    st_buf_puts(&b, env_cols_ddl);
    for (size_t i = 0; i < f->n_cols; i++)
        st_buf_printf(&b, ", %s %s", f->cols[i].name, ftype_ddl(f->cols[i].type));
    st_buf_puts(&b, ", _extra string, _late boolean, _batch_id string, _loaded_at timestamp");
    return st_buf_take(&b);
}

/* Creates the table if it is not there yet. */
static st_rc ensure_table(const char *path, const char *ddl, const char *name,
                          const char *part_col, bool *exists, st_err *err)
{
    if (*exists)
        return ST_OK;
    int64_t v = -1;
    st_rc rc = st_delta_latest_version(path, &v, err);
    if (rc)
        return rc;
    if (v < 0) {
        st_delta_schema *s = NULL;
        rc = ddl_schema(ddl, &s, err);
        if (rc)
            return rc;
        st_delta_create_opts o = {.name = name, .partition_by = &part_col, .n_partition_by = 1};
        rc = st_mkdirs(path, err);
        rc = rc ? rc : st_delta_create(path, s, &o, err);
        st_delta_schema_free(s);
        if (rc == ST_ERR_EXISTS) {
            st_err_clear(err);
            rc = ST_OK;
        }
        if (rc)
            return rc;
    }
    *exists = true;
    return ST_OK;
}

/* The app txn version the table recorded for the loader, 0 when none. */
static st_rc table_app_version(st_engine *eng, const char *path, uint64_t *out, st_err *err)
{
    int64_t v = -1;
    *out = 0;
    st_rc rc = st_delta_latest_version(path, &v, err);
    if (rc || v < 0)
        return rc;
    st_delta_snapshot *s = NULL;
    rc = st_delta_snapshot_load(eng, path, -1, &s, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < s->n_txns; i++)
        if (!strcmp(s->txns[i].app_id, APP_ID) && s->txns[i].version > 0)
            *out = (uint64_t)s->txns[i].version;
    st_delta_snapshot_free(s);
    return ST_OK;
}

static st_pii_action resolve_action(const st_loader_cfg *cfg, const char *family,
                                    const st_sfield *f)
{
    size_t fl = strlen(family);
    for (size_t i = 0; i < cfg->n_rules; i++) {
        const char *k = cfg->rule_keys[i];
        if (!strncmp(k, family, fl) && k[fl] == '.' && !strcmp(k + fl + 1, f->column))
            return cfg->rule_actions[i];
    }
    if (f->action != ST_PII_DEFAULT)
        return f->action;
    return cfg->class_action[f->cls];
}

/* ---------------------------------------------------------------- checkpoint */

static st_rc load_checkpoint(st_loader *l, st_err *err)
{
    st_state_lock(l->state);
    sqlite3 *db = st_state_db(l->state);
    sqlite3_stmt *st = NULL;
    st_rc rc = ST_OK;
    if (sqlite3_prepare_v2(db, "SELECT seq FROM load_checkpoint WHERE name='loader'", -1, &st,
                           NULL))
        rc = st_fail(err, ST_ERR_IO, "state: loader checkpoint: %s", sqlite3_errmsg(db));
    else if (sqlite3_step(st) == SQLITE_ROW)
        l->position = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st_state_unlock(l->state);
    return rc;
}

static st_rc save_checkpoint(st_loader *l, uint64_t seq, st_err *err)
{
    st_state_lock(l->state);
    sqlite3 *db = st_state_db(l->state);
    sqlite3_stmt *st = NULL;
    st_rc rc = ST_OK;
    if (sqlite3_prepare_v2(db, "INSERT INTO load_checkpoint VALUES ('loader', ?1, ?2) "
                               "ON CONFLICT(name) DO UPDATE SET seq=?1, updated_ms=?2",
                           -1, &st, NULL)) {
        rc = st_fail(err, ST_ERR_IO, "state: loader checkpoint: %s", sqlite3_errmsg(db));
    } else {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
        sqlite3_bind_int64(st, 2, st_now_ms());
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = st_fail(err, ST_ERR_IO, "state: saving the loader checkpoint: %s",
                         sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    st_state_unlock(l->state);
    return rc;
}

/* ---------------------------------------------------------------- open / close */

static void fam_clear(fam *f)
{
    st_free(f->name);
    st_free(f->path);
    st_free(f->cols);
    st_map_free(f->batch_ids);
    st_dedup_close(f->dd);
    st_buf_free(&f->candidates);
    st_free(f->pend);
}

static void worker_clear(worker *w, size_t n_fams)
{
    st_fj_free(&w->j);
    st_buf_free(&w->a);
    st_buf_free(&w->b);
    st_buf_free(&w->c);
    st_buf_free(&w->ids);
    st_free(w->mark);
    st_free(w->fnode);
    st_rows_close(&w->raw_st);
    st_rows_close(&w->q_st);
    for (size_t i = 0; w->wf && i < n_fams; i++) {
        st_rows_close(&w->wf[i].st);
        st_free(w->wf[i].plan_fld);
        st_free(w->wf[i].plan_act);
    }
    st_free(w->wf);
    st_free(w->acc);
}

static void *helper_main(void *p)
{
    st_loader *l = p;
    pthread_mutex_lock(&l->hmu);
    for (;;) {
        while (l->go == l->done && !l->hstop)
            pthread_cond_wait(&l->hcv, &l->hmu);
        if (l->hstop)
            break;
        pthread_mutex_unlock(&l->hmu);
        l->help_fn(l->help_arg);
        pthread_mutex_lock(&l->hmu);
        l->done = l->go;
        pthread_cond_broadcast(&l->hcv);
    }
    pthread_mutex_unlock(&l->hmu);
    return NULL;
}

/* Runs fn(a) on the helper thread and fn(b) on this one; returns when both
 * are done.  Without a helper, one after the other. */
static void run_pair(st_loader *l, void (*fn)(void *), void *a, void *b)
{
    if (!l->helper_on) {
        fn(b);
        fn(a);
        return;
    }
    pthread_mutex_lock(&l->hmu);
    l->help_fn = fn;
    l->help_arg = a;
    l->go++;
    pthread_cond_broadcast(&l->hcv);
    pthread_mutex_unlock(&l->hmu);
    fn(b);
    pthread_mutex_lock(&l->hmu);
    while (l->done != l->go)
        pthread_cond_wait(&l->hcv, &l->hmu);
    pthread_mutex_unlock(&l->hmu);
}

void st_loader_close(st_loader *l)
{
    if (!l)
        return;
    if (l->helper_on) {
        pthread_mutex_lock(&l->hmu);
        l->hstop = true;
        pthread_cond_broadcast(&l->hcv);
        pthread_mutex_unlock(&l->hmu);
        pthread_join(l->helper, NULL);
        pthread_mutex_destroy(&l->hmu);
        pthread_cond_destroy(&l->hcv);
    }
    for (size_t w = 0; w < l->n_wk; w++)
        worker_clear(&l->wk[w], l->n_fams);
    for (size_t i = 0; i < l->stages.n; i++)
        st_stage_clear(&l->stages.v[i]);
    st_free(l->stages.v);
    for (size_t i = 0; i < l->n_fams; i++)
        fam_clear(&l->fams[i]);
    st_free(l->fams);
    st_free(l->recs);
    st_evlog_reader_close(l->reader);
    st_kafka_src_close(l->ksrc);
    st_engine_close(l->eng2);
    st_engine_close(l->eng);
    st_keystore_close(l->ks);
    st_registry_free(l->reg);
    st_state_close(l->state);
    st_free(l->raw_path);
    st_free(l->q_path);
    st_free(l->dedup_root);
    st_free(l);
}

/* The staged rows of a stage for worker w. */
static st_rows *rows_of(worker *w, size_t stage)
{
    return stage == STAGE_RAW ? &w->raw_st : stage == STAGE_Q ? &w->q_st
                                                              : &w->wf[stage - STAGE_FAM0].st;
}

/* Names and types of stage idx from the table's DDL (timestamps are staged
 * as plain TIMESTAMP, made TIMESTAMPTZ by select_of), and fresh rows for
 * every worker. */
static st_rc stage_open(st_loader *l, size_t idx, const char *ddl, st_err *err)
{
    st_stage *sg = &l->stages.v[idx];
    st_stage_clear(sg);
    st_delta_schema *s = NULL;
    st_rc rc = ddl ? ddl_schema(ddl, &s, err) : st_fail(err, ST_ERR_NOMEM, "out of memory");
    if (rc)
        return rc;
    sg->names = st_calloc(s->n_fields + 1, sizeof *sg->names);
    sg->types = st_calloc(s->n_fields + 1, sizeof *sg->types);
    if (!sg->names || !sg->types)
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
    for (size_t i = 0; rc == ST_OK && i < s->n_fields; i++) {
        const st_dfield *f = &s->fields[i];
        switch (f->type.kind) {
        case ST_DT_STRING: sg->types[i] = DUCKDB_TYPE_VARCHAR; break;
        case ST_DT_LONG: sg->types[i] = DUCKDB_TYPE_BIGINT; break;
        case ST_DT_DOUBLE: sg->types[i] = DUCKDB_TYPE_DOUBLE; break;
        case ST_DT_BOOLEAN: sg->types[i] = DUCKDB_TYPE_BOOLEAN; break;
        case ST_DT_TIMESTAMP: sg->types[i] = DUCKDB_TYPE_TIMESTAMP; break;
        case ST_DT_DATE: sg->types[i] = DUCKDB_TYPE_DATE; break;
        default:
            rc = st_fail(err, ST_ERR_INVALID, "staging: column %s: type not staged", f->name);
            continue;
        }
        if (!(sg->names[i] = st_strdup(f->name)))
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        sg->n_cols = i + 1;
    }
    st_delta_schema_free(s);
    for (size_t w = 0; rc == ST_OK && w < l->n_wk; w++) {
        st_rows *r = rows_of(&l->wk[w], idx);
        st_rows_close(r);
        rc = st_rows_open(r, sg->types, sg->n_cols, err);
        sg->parts[w] = r;
        sg->n_parts = w + 1;
    }
    return rc;
}

/* SELECT over a stage with timestamps as TIMESTAMPTZ and the batch id (not
 * known while staging) as a constant; without_dups leaves out the ids in
 * the connection's dup_ids (confirm_dups). */
static char *select_of(size_t stage, const char *ddl, const char *batch_id, bool without_dups)
{
    st_delta_schema *s = NULL;
    if (ddl_schema(ddl, &s, NULL))
        return NULL;
    st_buf b;
    st_buf_init(&b, 0);
    st_buf_puts(&b, "SELECT ");
    for (size_t i = 0; i < s->n_fields; i++) {
        const st_dfield *f = &s->fields[i];
        if (!strcmp(f->name, "_batch_id"))
            st_buf_printf(&b, "%s'%s' AS \"_batch_id\"", i ? ", " : "", batch_id);
        else if (f->type.kind == ST_DT_TIMESTAMP)
            /* staged values are UTC microseconds: make_timestamptz takes them
             * as they are, where a cast goes through the ICU calendar (about
             * 250 ns a value, measured) */
            st_buf_printf(&b, "%smake_timestamptz(epoch_us(\"%s\")) AS \"%s\"", i ? ", " : "",
                          f->name, f->name);
        else
            st_buf_printf(&b, "%s\"%s\"", i ? ", " : "", f->name);
    }
    st_buf_printf(&b, " FROM " STAGE_FN "(%zu)", stage);
    if (without_dups)
        st_buf_puts(&b, " WHERE event_id NOT IN (SELECT event_id FROM dup_ids)");
    st_delta_schema_free(s);
    return st_buf_take(&b);
}

/* The dedup runs live beside the state database: <state dir>/dedup. */
static char *dedup_root_of(const char *state_path)
{
    const char *slash = strrchr(state_path, '/');
    if (!slash)
        return st_strdup("dedup");
    return st_sprintf("%.*s/dedup", (int)(slash - state_path), state_path);
}

/* <dedup root>/position says up to which log sequence the runs hold the
 * committed ids.  Runs are written after the bronze commits and before the
 * checkpoint, so after a crash in between (or runs of another loader state)
 * the two differ: then every run is removed and dates reseed from bronze. */
static st_rc dedup_check_position(st_loader *l, st_err *err)
{
    char *p = st_sprintf("%s/position", l->dedup_root);
    if (!p)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    char *text = NULL;
    size_t len = 0;
    st_err e2;
    uint64_t pos = 0;
    if (st_file_read(p, 64, &text, &len, &e2) == ST_OK)
        pos = strtoull(text, NULL, 10);
    st_free(text);
    st_free(p);
    if (pos == l->position)
        return ST_OK;
    st_info("loader: dedup runs hold log position %llu, the checkpoint is %llu: rebuilding "
            "them from bronze", (unsigned long long)pos, (unsigned long long)l->position);
    st_rc rc = st_rmtree(l->dedup_root, err);
    return rc ? rc : st_mkdirs(l->dedup_root, err);
}

static st_rc dedup_save_position(st_loader *l, uint64_t seq, st_err *err)
{
    char *p = st_sprintf("%s/position", l->dedup_root);
    char v[32];
    int n = snprintf(v, sizeof v, "%llu\n", (unsigned long long)seq);
    st_rc rc = p ? st_file_write_atomic(p, v, (size_t)n, err)
                 : st_fail(err, ST_ERR_NOMEM, "out of memory");
    st_free(p);
    return rc;
}

st_rc st_loader_open(const st_loader_cfg *cfg, st_loader **out, st_err *err)
{
    st_loader *l = st_calloc(1, sizeof *l);
    if (!l)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    l->cfg = cfg;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    l->n_wk = cfg->stage_threads > 0 ? (size_t)cfg->stage_threads : ncpu >= 2 ? MAX_WORKERS : 1;
    if (l->n_wk > MAX_WORKERS)
        l->n_wk = MAX_WORKERS;
    for (size_t w = 0; w < l->n_wk; w++) {
        worker *wk = &l->wk[w];
        wk->l = l;
        st_buf_init(&wk->a, 0);
        st_buf_init(&wk->b, 0);
        st_buf_init(&wk->c, 0);
        st_buf_init(&wk->ids, 0);
        st_fj_init(&wk->j);
    }
    uint8_t mk[32];
    st_rc rc = st_state_open(cfg->state_path, &l->state, err);
    rc = rc ? rc : st_load_state_migrate(l->state, err);
    rc = rc ? rc : st_keystore_master_key(cfg->master_key_env, cfg->master_key_file, true, mk, err);
    rc = rc ? rc : st_keystore_open(l->state, mk, &l->ks, err);
    memset(mk, 0, sizeof mk);
    if (rc)
        goto fail;
    if (cfg->hash_secret_env && getenv(cfg->hash_secret_env))
        st_keystore_set_hash_secret(l->ks, getenv(cfg->hash_secret_env));
    st_keystore_defer(l->ks, true);   /* the batch's new keys: one transaction */
    rc = st_registry_new(&l->reg, err);
    rc = rc ? rc : st_registry_load_dir(l->reg, cfg->schemas_dir, err);
    for (size_t i = 0; rc == ST_OK && i < cfg->n_families; i++)
        rc = st_registry_add_family(l->reg, cfg->families[i], err);
    rc = rc ? rc : st_registry_sync_state(l->reg, l->state, err);
    if (rc)
        goto fail;
    /* one DuckDB thread: with two, the Parquet writes of a batch spent
     * ~25% more CPU in task-queue locking and polling for no wall-clock gain
     * on the 2-core host (loader_bench: ~69K -> ~92K events per CPU-second),
     * and in `serve` the other core is the collector's */
    st_engine_opts eo = {.threads = 1};
    rc = st_engine_open(&eo, &l->eng, err);
    /* the second commit lane writes other tables of the batch meanwhile */
    if (rc == ST_OK && l->n_wk > 1)
        rc = st_engine_connect(l->eng, &l->eng2, err);
    if (rc)
        goto fail;
    rc = load_checkpoint(l, err);
    if (rc == ST_OK && cfg->kafka) {
        /* Kafka mode: the position comes from the group's committed offsets */
        rc = st_kafka_src_open(cfg->kafka, cfg->kafka_topics, cfg->n_kafka_topics,
                               cfg->state_path, &l->ksrc, err);
        if (rc == ST_OK)
            l->position = st_kafka_src_position(l->ksrc);
    }
    if (rc)
        goto fail;
    l->raw_path = st_sprintf("%s/raw/events", cfg->lake);
    l->q_path = st_sprintf("%s/bronze/_quarantine", cfg->lake);
    l->dedup_root = dedup_root_of(cfg->state_path);
    if (!l->raw_path || !l->q_path || !l->dedup_root) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto fail;
    }
    rc = dedup_check_position(l, err);
    if (rc)
        goto fail;
    const char *const *names;
    size_t nf = st_registry_families(l->reg, &names);
    l->fams = st_calloc(nf ? nf : 1, sizeof *l->fams);
    l->stages.v = st_calloc(STAGE_FAM0 + nf, sizeof *l->stages.v);
    l->stages.n = l->stages.v ? STAGE_FAM0 + nf : 0;
    l->recs = st_calloc(READ_CHUNK, sizeof *l->recs);
    bool wf_ok = true;
    for (size_t w = 0; w < l->n_wk; w++)
        wf_ok = (l->wk[w].wf = st_calloc(nf ? nf : 1, sizeof *l->wk[w].wf)) && wf_ok;
    if (!l->fams || !l->stages.v || !l->recs || !wf_ok) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto fail;
    }
    uint64_t replay = 0, v = 0;
    for (size_t i = 0; i < nf; i++) {
        fam *f = &l->fams[i];
        l->n_fams++;
        st_buf_init(&f->candidates, 0);
        f->name = st_strdup(names[i]);
        f->path = st_sprintf("%s/bronze/%s", cfg->lake, names[i]);
        char *droot = st_sprintf("%s/%s", l->dedup_root, names[i]);
        if (!f->name || !f->path || !droot) {
            st_free(droot);
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
            goto fail;
        }
        rc = st_dedup_open(droot, &f->dd, err);
        st_free(droot);
        if (rc)
            goto fail;
        rc = st_registry_columns(l->reg, f->name, &f->cols, &f->n_cols, err);
        if (rc)
            goto fail;
        for (size_t w = 0; w < l->n_wk; w++) {
            wfam *wf = &l->wk[w].wf[i];
            wf->plan_fld = st_calloc(f->n_cols + 1, sizeof *wf->plan_fld);
            wf->plan_act = st_calloc(f->n_cols + 1, sizeof *wf->plan_act);
            if (!wf->plan_fld || !wf->plan_act) {
                rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
                goto fail;
            }
        }
        rc = table_app_version(l->eng, f->path, &v, err);
        if (rc)
            goto fail;
        replay = v > replay ? v : replay;
    }
    rc = table_app_version(l->eng, l->q_path, &v, err);
    replay = v > replay ? v : replay;
    rc = rc ? rc : table_app_version(l->eng, l->raw_path, &v, err);
    if (rc)
        goto fail;
    replay = v > replay ? v : replay;
    if (replay > l->position) {
        st_info("loader: replaying log records %llu..%llu (a batch committed to some tables "
                "before a stop)", (unsigned long long)l->position, (unsigned long long)replay);
        l->replay_end = replay;
    }
    /* the function goes to the catalog: both connections see it */
    rc = st_stage_register(st_engine_conn(l->eng), STAGE_FN, &l->stages, err);
    if (rc)
        goto fail;
    if (l->n_wk > 1) {
        pthread_mutex_init(&l->hmu, NULL);
        pthread_cond_init(&l->hcv, NULL);
        if (pthread_create(&l->helper, NULL, helper_main, l)) {
            pthread_mutex_destroy(&l->hmu);
            pthread_cond_destroy(&l->hcv);
            rc = st_fail(err, ST_ERR_IO, "loader: cannot start a staging thread");
            goto fail;
        }
        l->helper_on = true;
    }
    if (l->ksrc) {
        rc = l->replay_end ? st_kafka_src_replay(l->ksrc, l->replay_end, err) : ST_OK;
        if (rc)
            goto fail;
    } else if ((rc = st_evlog_reader_open_seq(cfg->log_dir, l->position, &l->reader, err))) {
        st_err_ctx(err, "event log %s", cfg->log_dir);
        goto fail;
    }
    *out = l;
    return ST_OK;
fail:
    st_loader_close(l);
    return rc;
}

const st_registry *st_loader_registry(const st_loader *l) { return l->reg; }
st_keystore *st_loader_keystore(st_loader *l) { return l->ks; }

void st_loader_set_log_end(st_loader *l, uint64_t next_seq)
{
    if (l->ksrc)
        return;   /* Kafka mode: reads stop at the partitions' ends */
    atomic_store(&l->log_end, next_seq);
    atomic_store(&l->has_limit, true);
}

uint64_t st_loader_lag(const st_loader *l)
{
    if (l->ksrc)
        return st_kafka_src_lag(l->ksrc);
    uint64_t end = atomic_load(&((st_loader *)l)->log_end);
    return end > l->position ? end - l->position : 0;
}

/* ---------------------------------------------------------------- JSON access */

/* Records are read with fastjson.c (a flat node array, no allocation per
 * record); what it refuses goes through jansson and is converted, so both
 * paths see the same values.  Node 0 is the record. */

/* Finds path (dots) in object obj: a key equal to the whole rest first (flat
 * OTel names), else descends at each dot.  -1 when absent. */
static int lookup(const st_fj *j, int obj, const char *path, size_t plen)
{
    if (st_fj_type_of(j, obj) != ST_FJ_OBJ)
        return -1;
    int v = st_fj_get(j, obj, path, plen);
    if (v >= 0)
        return v;
    const char *end = path + plen;
    for (const char *dot = memchr(path, '.', plen); dot;
         dot = memchr(dot + 1, '.', (size_t)(end - dot - 1))) {
        size_t n = (size_t)(dot - path);
        if (n >= 256)
            break;
        int sub = st_fj_get(j, obj, path, n);
        if (st_fj_type_of(j, sub) == ST_FJ_OBJ) {
            v = lookup(j, sub, dot + 1, (size_t)(end - dot - 1));
            if (v >= 0)
                return v;
        }
    }
    return -1;
}

/* The member of obj that path resolves through (for _extra bookkeeping),
 * -1 when none. */
static int top_member(const st_fj *j, int obj, const char *path, size_t plen)
{
    int m = st_fj_get(j, obj, path, plen);
    if (m >= 0)
        return m;
    const char *end = path + plen;
    for (const char *dot = memchr(path, '.', plen); dot;
         dot = memchr(dot + 1, '.', (size_t)(end - dot - 1))) {
        size_t n = (size_t)(dot - path);
        if (n >= 256)
            return -1;
        int sub = st_fj_get(j, obj, path, n);
        if (st_fj_type_of(j, sub) == ST_FJ_OBJ && lookup(j, sub, dot + 1, (size_t)(end - dot - 1)) >= 0)
            return sub;
    }
    return -1;
}

/* The envelope members of a record, found in one pass over its top level
 * (the last duplicate counts, as everywhere). */
enum {
    K_EVENT_ID, K_FAMILY, K_EVENT_TYPE, K_SOURCE, K_SUBJECT_ID, K_COUNTRY, K_ENTITY_ID,
    K_EVENT_TIME, K_EVENT_TIME_CORRECTED, K_RECEIVED_AT, K_SCHEMA_VERSION, K_PAYLOAD, K_CONTEXT,
    N_KEYS
};
static const char *const key_names[N_KEYS] = {
    "event_id", "family", "event_type", "source", "subject_id", "country", "entity_id",
    "event_time", "event_time_corrected", "received_at", "schema_version", "payload", "context",
};

typedef struct rec_t {
    const st_fj *j;      /* NULL when the record is not a JSON object */
    int m[N_KEYS];       /* node of each envelope member, -1 when absent */
    /* the three timestamps, parsed once: each is read by the raw row, the
     * bronze row and the late check */
    bool has_t[3];
    int64_t t[3];
} rec_t;

static bool parse_time(const st_fj *j, int v, int64_t *out)
{
    if (st_fj_type_of(j, v) == ST_FJ_INT) {
        *out = j->n[v].v.i;
        return true;
    }
    return st_fj_type_of(j, v) == ST_FJ_STR && st_rfc3339_parse(st_fj_str(j, v), j->n[v].len, out);
}

static void rec_index(rec_t *r, const st_fj *j)
{
    r->j = j;
    for (int k = 0; k < N_KEYS; k++)
        r->m[k] = -1;
    for (int k = 0; k < 3; k++)
        r->has_t[k] = false;
    if (st_fj_type_of(j, 0) != ST_FJ_OBJ)
        return;
    for (int m = 1; m < (int)j->n[0].end; m = st_fj_next(j, m)) {
        const char *key = st_fj_key(j, m);
        for (int k = 0; k < N_KEYS; k++)
            if (key[0] == key_names[k][0] && !strcmp(key, key_names[k]) &&
                j->n[m].key_len == strlen(key_names[k])) {
                r->m[k] = m;
                break;
            }
    }
    static const int tk[3] = {K_EVENT_TIME, K_EVENT_TIME_CORRECTED, K_RECEIVED_AT};
    for (int t = 0; t < 3; t++)
        r->has_t[t] = parse_time(j, r->m[tk[t]], &r->t[t]);
}

static const char *str_of(const rec_t *r, int k)
{
    int v = r->m[k];
    return st_fj_type_of(r->j, v) == ST_FJ_STR ? st_fj_str(r->j, v) : NULL;
}

static bool time_of(const rec_t *r, int k, int64_t *out)
{
    int t = k == K_EVENT_TIME ? 0 : k == K_EVENT_TIME_CORRECTED ? 1 : k == K_RECEIVED_AT ? 2 : -1;
    if (t < 0)
        return parse_time(r->j, r->m[k], out);
    if (r->has_t[t])
        *out = r->t[t];
    return r->has_t[t];
}

/* schema_version as text ("1", "1-0-0"). */
static void version_text(const rec_t *r, char out[32])
{
    const st_fj *j = r->j;
    int v = r->m[K_SCHEMA_VERSION];
    if (st_fj_type_of(j, v) == ST_FJ_INT) {
        /* by hand: snprintf here was ~2% of the loader */
        char tmp[24];
        int64_t x = j->n[v].v.i;
        uint64_t u = x < 0 ? 0 - (uint64_t)x : (uint64_t)x;
        size_t n = 0;
        do
            tmp[n++] = (char)('0' + u % 10);
        while ((u /= 10));
        size_t k = 0;
        if (x < 0)
            out[k++] = '-';
        while (n)
            out[k++] = tmp[--n];
        out[k] = 0;
    } else if (st_fj_type_of(j, v) == ST_FJ_STR) {
        snprintf(out, 32, "%s", st_fj_str(j, v));
    } else {
        out[0] = 0;
    }
}

static const char *type_word(const st_fj *j, int v)
{
    switch (st_fj_type_of(j, v)) {
    case ST_FJ_STR: return "string";
    case ST_FJ_INT: return "integer";
    case ST_FJ_REAL: return "number";
    case ST_FJ_TRUE:
    case ST_FJ_FALSE: return "boolean";
    case ST_FJ_ARR: return "array";
    default: return "object";
    }
}

/* A double that is an exact int64 (a LONG field may be sent as 3.0). */
static bool real_is_long(double d)
{
    return d >= -9223372036854775808.0 && d < 9223372036854775808.0 && d == (double)(int64_t)d;
}

/* ---------------------------------------------------------------- appending */

static void app_ts(st_rows *a, bool has, int64_t us)
{
    if (has)
        st_rows_ts(a, us);
    else
        st_rows_null(a);
}

/* Envelope JSON without payload and context (no personal free text), into
 * out; false when there is no record object. */
static bool envelope_json(const st_fj *j, st_buf *out)
{
    static const char *const skip[] = {"payload", "context"};
    st_buf_reset(out);
    return st_fj_type_of(j, 0) == ST_FJ_OBJ && st_fj_dump_except(j, 0, skip, 2, out) == ST_OK;
}

/* j is NULL when the record is not a JSON object. */
static st_rc quarantine(worker *w, uint64_t seq, const char *data, size_t len, const rec_t *r,
                        const char *reason, const char *schema_ref, st_err *err)
{
    st_loader *l = w->l;
    const st_fj *j = r->j;
    (void)seq;
    st_rows *a = &w->q_st;
    const char *subject = str_of(r, K_SUBJECT_ID);
    char ver[32] = "";
    int64_t rcv = l->now_us;
    bool has_rcv = j && time_of(r, K_RECEIVED_AT, &rcv);
    if (!has_rcv)
        rcv = l->now_us;
    if (j)
        version_text(r, ver);
    const char *etype = str_of(r, K_EVENT_TYPE);
    const char *family = str_of(r, K_FAMILY);
    if (etype && family && !strncmp(etype, family, strlen(family)) && etype[strlen(family)] == '.')
        etype += strlen(family) + 1;
    bool has_env = envelope_json(j, &w->c);
    st_buf_reset(&w->a);
    st_rc rc = st_keystore_encrypt(l->ks, subject && *subject ? subject : QUARANTINE_SUBJECT,
                                   data, len, &w->a, err);
    if (rc == ST_ERR_NOTFOUND) {
        /* the subject was erased: keep the reason, not the content */
        st_err_clear(err);
        st_buf_reset(&w->a);
        rc = ST_OK;
    } else if (rc) {
        return rc;
    }
    st_rows_cstr(a, str_of(r, K_EVENT_ID));
    st_rows_cstr(a, family);
    st_rows_cstr(a, etype);
    st_rows_cstr(a, ver[0] ? ver : NULL);
    st_rows_cstr(a, str_of(r, K_SOURCE));
    st_rows_cstr(a, subject);
    app_ts(a, true, rcv);
    st_rows_date(a, day_of_us(rcv));
    st_rows_cstr(a, reason);
    st_rows_cstr(a, schema_ref);
    st_rows_cstr(a, has_env ? w->c.data : NULL);
    st_rows_cstr(a, w->a.len ? w->a.data : NULL);
    st_rows_cstr(a, l->batch_id);
    app_ts(a, true, l->now_us);
    rc = st_rows_end(a, "quarantine", err);
    if (rc)
        return rc;
    w->q_rows++;
    w->quarantined++;
    return ST_OK;
}

static st_rc raw_row(worker *w, uint64_t seq, size_t len, const rec_t *r, st_err *err)
{
    st_loader *l = w->l;
    st_rows *a = &w->raw_st;
    char ver[32] = "";
    version_text(r, ver);
    int64_t et = 0, etc = 0, rcv = l->now_us;
    bool has_et = time_of(r, K_EVENT_TIME, &et);
    bool has_etc = time_of(r, K_EVENT_TIME_CORRECTED, &etc);
    if (!time_of(r, K_RECEIVED_AT, &rcv))
        rcv = l->now_us;
    st_rows_i64(a, (int64_t)seq);
    st_rows_cstr(a, str_of(r, K_EVENT_ID));
    st_rows_cstr(a, str_of(r, K_FAMILY));
    st_rows_cstr(a, str_of(r, K_EVENT_TYPE));
    st_rows_cstr(a, ver[0] ? ver : NULL);
    st_rows_cstr(a, str_of(r, K_SOURCE));
    st_rows_cstr(a, str_of(r, K_SUBJECT_ID));
    st_rows_cstr(a, str_of(r, K_COUNTRY));
    st_rows_cstr(a, str_of(r, K_ENTITY_ID));
    app_ts(a, has_et, et);
    app_ts(a, has_etc, etc);
    app_ts(a, true, rcv);
    st_rows_date(a, day_of_us(rcv));
    st_rows_i64(a, (int64_t)len);
    st_rows_cstr(a, l->batch_id);
    app_ts(a, true, l->now_us);
    st_rc rc = st_rows_end(a, "raw", err);
    if (rc)
        return rc;
    w->raw_rows++;
    return ST_OK;
}

static fam *fam_by_name(st_loader *l, const char *name)
{
    for (size_t i = 0; i < l->n_fams; i++)
        if (!strcmp(l->fams[i].name, name))
            return &l->fams[i];
    return NULL;
}

/* Seeds the runs of a date from its bronze partition (one partition-pruned
 * scan of event_id); a date bronze does not hold yet gets an empty run. */
static st_rc seed_day(st_loader *l, fam *f, int32_t day, st_err *err)
{
    st_rc rc = ST_OK;
    st_delta_snapshot *s = NULL;
    char *scan = NULL;
    duckdb_result res;
    bool have_res = false;
    uint64_t *h = NULL;
    size_t n = 0, cap = 0;
    char dt[16];
    day_text(day, dt);
    if (f->exists) {
        char pred[64];
        snprintf(pred, sizeof pred, "event_date = DATE '%s'", dt);
        rc = st_delta_snapshot_load(l->eng, f->path, -1, &s, err);
        rc = rc ? rc : st_delta_scan_sql(l->eng, s, pred, &scan, err);
        char *q = rc ? NULL : st_sprintf("SELECT event_id FROM (%s) WHERE %s", scan, pred);
        if (rc == ST_OK && !q)
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        rc = rc ? rc : st_engine_query(l->eng, q, &res, err);
        st_free(q);
        have_res = rc == ST_OK;
        while (rc == ST_OK) {
            duckdb_data_chunk ch = duckdb_fetch_chunk(res);
            if (!ch)
                break;
            idx_t cn = duckdb_data_chunk_get_size(ch);
            duckdb_vector v = duckdb_data_chunk_get_vector(ch, 0);
            duckdb_string_t *sv = (duckdb_string_t *)duckdb_vector_get_data(v);
            uint64_t *valid = duckdb_vector_get_validity(v);
            if (n + cn > cap) {
                size_t nc = cap ? cap * 2 : 4096;
                while (nc < n + cn)
                    nc *= 2;
                uint64_t *nh = st_realloc(h, nc * sizeof *nh);
                if (!nh)
                    rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
                else {
                    h = nh;
                    cap = nc;
                }
            }
            for (idx_t i = 0; rc == ST_OK && i < cn; i++)
                if (!valid || duckdb_validity_row_is_valid(valid, i))
                    h[n++] = st_id_hash(duckdb_string_t_data(&sv[i]),
                                        duckdb_string_t_length(sv[i]));
            duckdb_destroy_data_chunk(&ch);
        }
    }
    if (have_res)
        duckdb_destroy_result(&res);
    rc = rc ? rc : st_dedup_add(f->dd, day, h, n, err);
    if (rc)
        st_err_ctx(err, "dedup: seeding %s, %s", f->path, dt);
    st_free(h);
    st_free(scan);
    st_delta_snapshot_free(s);
    return rc;
}

/* Converts one field value per its type.  Appends the value (or NULL) to
 * the rows a and returns ST_ERR_INVALID with *why filled on a type error.
 * v is a node of j, or -1 with etype set for a field fed by the event type. */
static st_rc field_value(worker *w, const st_sfield *f, st_pii_action act, const st_fj *j,
                         int v, const char *etype, const char *subject, st_rows *a,
                         char *why, size_t why_cap, st_err *err)
{
    int t = etype ? ST_FJ_STR : st_fj_type_of(j, v);
    if (t < 0 || t == ST_FJ_NULL || act == ST_PII_DROP)
        return (st_rows_null(a), ST_OK);
    const char *got = etype ? "string" : type_word(j, v);
    switch (f->type) {
    case ST_FT_LONG:
        if (t == ST_FJ_INT)
            return (st_rows_i64(a, j->n[v].v.i), ST_OK);
        if (t == ST_FJ_REAL && real_is_long(j->n[v].v.d))
            return (st_rows_i64(a, (int64_t)j->n[v].v.d), ST_OK);
        break;
    case ST_FT_DOUBLE:
        if (t == ST_FJ_INT || t == ST_FJ_REAL)
            return (st_rows_f64(a, t == ST_FJ_INT ? (double)j->n[v].v.i : j->n[v].v.d), ST_OK);
        break;
    case ST_FT_BOOLEAN:
        if (t == ST_FJ_TRUE || t == ST_FJ_FALSE)
            return (st_rows_bool(a, t == ST_FJ_TRUE), ST_OK);
        break;
    case ST_FT_TIMESTAMP: {
        int64_t us;
        const char *s = t == ST_FJ_STR ? (etype ? etype : st_fj_str(j, v)) : NULL;
        if (s && st_rfc3339_parse(s, strlen(s), &us))
            return (st_rows_ts(a, us), ST_OK);
        snprintf(why, why_cap, "field '%s': expected an RFC 3339 timestamp, got %s", f->name,
                 s ? "a malformed string" : got);
        return ST_ERR_INVALID;
    }
    case ST_FT_STRING:
    case ST_FT_JSON: {
        const char *text;
        size_t len;
        if (etype && f->type == ST_FT_STRING) {
            text = etype;
            len = strlen(etype);
        } else if (f->type == ST_FT_STRING) {
            if (t != ST_FJ_STR)
                break;
            text = st_fj_str(j, v);
            len = j->n[v].len;
        } else {
            st_buf_reset(&w->c);
            st_rc rc = etype ? st_fj_dump_str(&w->c, etype, strlen(etype)) : st_fj_dump(j, v, &w->c);
            if (rc)
                return st_fail(err, rc, "field '%s': printing the JSON value", f->name);
            text = w->c.data;
            len = w->c.len;
        }
        st_rc rc = ST_OK;
        st_buf_reset(&w->b);
        switch (act) {
        case ST_PII_ENCRYPT:
            rc = st_keystore_encrypt(w->l->ks, subject ? subject : NO_SUBJECT, text, len, &w->b, err);
            if (rc == ST_ERR_NOTFOUND) {
                /* erased subject: store nothing of theirs */
                st_err_clear(err);
                return (st_rows_null(a), ST_OK);
            }
            break;
        case ST_PII_HASH:
            rc = st_keystore_hash(w->l->ks, text, len, &w->b);
            break;
        case ST_PII_REDACT:
            rc = st_redact(text, len, &w->b);
            break;
        default:
            return (st_rows_str(a, text, len), ST_OK);
        }
        if (rc)
            return err && err->code ? rc : st_fail(err, rc, "field '%s': applying the PII policy", f->name);
        return (st_rows_str(a, w->b.data ? w->b.data : "", w->b.len), ST_OK);
    }
    }
    snprintf(why, why_cap, "field '%s': expected %s, got %s", f->name, st_ftype_name(f->type), got);
    return ST_ERR_INVALID;
}

/* The node feeding field f of the event, -1 when none; *from_type set when
 * the field is the event type itself. */
static int field_node(const st_fj *j, int payload, int context, const st_sfield *f,
                      bool *from_type)
{
    *from_type = false;
    for (size_t k = 0; k < f->n_paths; k++) {
        const char *p = f->paths[k];
        int v = -1;
        if (p[0] == '$') {
            if (!strcmp(p, "$payload"))
                v = payload;
            else if (!strcmp(p, "$context"))
                v = context;
            else if (!strcmp(p, "$event_type")) {
                *from_type = true;
                return -1;
            }
        } else if (!strncmp(p, "payload.", 8)) {
            v = lookup(j, payload, p + 8, strlen(p + 8));
        } else if (!strncmp(p, "context.", 8)) {
            v = lookup(j, context, p + 8, strlen(p + 8));
        }
        if (v >= 0)
            return v;
    }
    return -1;
}

#define FNODE_TYPE (-2)

/* Validates the event against its schema without appending anything:
 * required fields and types.  Returns false with why set.  nodes[i]
 * receives the node feeding field i, so bronze_row does not look again. */
static bool validate(const st_schema *s, const rec_t *r, const char *etype, int *nodes,
                     char *why, size_t cap)
{
    const st_fj *j = r->j;
    int payload = r->m[K_PAYLOAD];
    int context = r->m[K_CONTEXT];
    if (payload >= 0 && st_fj_type_of(j, payload) != ST_FJ_OBJ) {
        snprintf(why, cap, "payload: expected an object");
        return false;
    }
    for (size_t i = 0; i < s->n_fields; i++) {
        const st_sfield *f = &s->fields[i];
        bool from_type;
        int v = field_node(j, payload, context, f, &from_type);
        nodes[i] = from_type ? FNODE_TYPE : v;
        if (from_type && etype)
            continue;   /* always a string, nothing to check */
        int t = st_fj_type_of(j, v);
        if (t < 0 || t == ST_FJ_NULL) {
            if (f->required) {
                snprintf(why, cap, "field '%s': required but missing", f->name);
                return false;
            }
            continue;
        }
        bool ok = true;
        switch (f->type) {
        case ST_FT_STRING: ok = t == ST_FJ_STR; break;
        case ST_FT_LONG: ok = t == ST_FJ_INT || (t == ST_FJ_REAL && real_is_long(j->n[v].v.d)); break;
        case ST_FT_DOUBLE: ok = t == ST_FJ_INT || t == ST_FJ_REAL; break;
        case ST_FT_BOOLEAN: ok = t == ST_FJ_TRUE || t == ST_FJ_FALSE; break;
        case ST_FT_TIMESTAMP: {
            int64_t us;
            ok = t == ST_FJ_STR && st_rfc3339_parse(st_fj_str(j, v), j->n[v].len, &us);
            break;
        }
        case ST_FT_JSON: ok = true; break;
        }
        if (!ok) {
            snprintf(why, cap, "field '%s': expected %s, got %s", f->name,
                     st_ftype_name(f->type), type_word(j, v));
            return false;
        }
    }
    return true;
}

/* Builds _extra into l->b: payload and context keys no field of s consumed,
 * redacted. */
static st_rc extra_json(worker *w, const st_schema *s, const rec_t *r, bool *has, st_err *err)
{
    const st_fj *j = r->j;
    *has = false;
    int parts[2] = {r->m[K_PAYLOAD], r->m[K_CONTEXT]};
    static const char *const names[2] = {"payload", "context"};
    st_buf *x = &w->c;
    st_buf_reset(x);
    if (w->n_mark < j->n_nodes) {
        uint8_t *nm = st_realloc(w->mark, j->n_nodes);
        if (!nm)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        w->mark = nm;
        w->n_mark = j->n_nodes;
    }
    st_rc rc = ST_OK;
    for (int p = 0; rc == ST_OK && p < 2; p++) {
        int obj = parts[p];
        if (st_fj_type_of(j, obj) != ST_FJ_OBJ || j->n[obj].len == 0)
            continue;
        bool whole = false;
        for (size_t i = 0; !whole && i < s->n_fields; i++)
            for (size_t k = 0; k < s->fields[i].n_paths; k++)
                if (!strcmp(s->fields[i].paths[k], p ? "$context" : "$payload"))
                    whole = true;
        if (whole)
            continue;
        /* the members the schema's paths resolve through: the value node a
         * key stands for is its last duplicate, as st_fj_get returns it */
        for (int m = obj + 1; m < (int)j->n[obj].end; m = st_fj_next(j, m))
            w->mark[m] = 0;
        size_t nl = strlen(names[p]);
        for (size_t i = 0; i < s->n_fields; i++)
            for (size_t k = 0; k < s->fields[i].n_paths; k++) {
                const char *path = s->fields[i].paths[k];
                if (strncmp(path, names[p], nl) || path[nl] != '.')
                    continue;
                int tm = top_member(j, obj, path + nl + 1, strlen(path + nl + 1));
                /* an empty or 256-byte+ key never counted as consumed */
                if (tm >= 0 && j->n[tm].key_len > 0 && j->n[tm].key_len < 256)
                    w->mark[tm] = 1;
            }
        bool open = false;
        for (int m = obj + 1; rc == ST_OK && m < (int)j->n[obj].end; m = st_fj_next(j, m)) {
            int v = st_fj_member(j, obj, m);
            if (v < 0 || w->mark[v])
                continue;
            if (!open) {
                rc = st_buf_puts(x, x->len ? ",\"" : "{\"");
                rc = rc ? rc : st_buf_puts(x, names[p]);
                rc = rc ? rc : st_buf_puts(x, "\":{");
                open = true;
            } else {
                rc = st_buf_putc(x, ',');
            }
            rc = rc ? rc : st_fj_dump_str(x, st_fj_key(j, m), j->n[m].key_len);
            rc = rc ? rc : st_buf_putc(x, ':');
            rc = rc ? rc : st_fj_dump(j, v, x);
        }
        if (open)
            rc = rc ? rc : st_buf_putc(x, '}');
    }
    if (rc == ST_OK && x->len)
        rc = st_buf_putc(x, '}');
    if (rc)
        return st_fail(err, rc, "_extra: printing");
    if (!x->len)
        return ST_OK;
    st_buf_reset(&w->b);
    rc = st_redact(x->data, x->len, &w->b);
    if (rc)
        return st_fail(err, rc, "_extra: redacting");
    *has = true;
    return ST_OK;
}

static st_rc bronze_row(worker *w, size_t fi, const st_schema *s, const rec_t *r,
                        const char *etype, const char *ver, int64_t et, int32_t day,
                        const char *event_id, st_err *err)
{
    st_loader *l = w->l;
    const fam *f = &l->fams[fi];
    wfam *wf = &w->wf[fi];
    const st_fj *j = r->j;
    st_rows *a = &wf->st;
    int64_t etc = 0, rcv = l->now_us;
    bool has_etc = time_of(r, K_EVENT_TIME_CORRECTED, &etc);
    if (!time_of(r, K_RECEIVED_AT, &rcv))
        rcv = l->now_us;
    const char *subject = str_of(r, K_SUBJECT_ID);
    st_rows_cstr(a, event_id);
    st_rows_cstr(a, etype);
    st_rows_cstr(a, ver);
    st_rows_cstr(a, str_of(r, K_SOURCE));
    st_rows_cstr(a, str_of(r, K_COUNTRY));
    st_rows_cstr(a, str_of(r, K_ENTITY_ID));
    st_rows_cstr(a, subject);
    app_ts(a, true, et);
    app_ts(a, has_etc, etc);
    app_ts(a, true, rcv);
    st_rows_date(a, day);
    char why[256];
    if (wf->plan_s != s) {
        /* which field feeds each column, and its action: once per schema,
         * not per event */
        for (size_t c = 0; c < f->n_cols; c++) {
            wf->plan_fld[c] = -1;
            for (size_t i = 0; i < s->n_fields; i++)
                if (!strcmp(s->fields[i].column, f->cols[c].name))
                    wf->plan_fld[c] = (int)i;
            if (wf->plan_fld[c] >= 0)
                wf->plan_act[c] = resolve_action(l->cfg, f->name, &s->fields[wf->plan_fld[c]]);
        }
        wf->plan_s = s;
    }
    for (size_t c = 0; c < f->n_cols; c++) {
        const st_sfield *fld = wf->plan_fld[c] >= 0 ? &s->fields[wf->plan_fld[c]] : NULL;
        if (!fld) {
            st_rows_null(a);
            continue;
        }
        int v = w->fnode[wf->plan_fld[c]];
        bool from_type = v == FNODE_TYPE;
        st_pii_action act = wf->plan_act[c];
        st_rc rc = field_value(w, fld, act, j, v, from_type ? etype : NULL, subject, a, why,
                               sizeof why, err);
        if (rc) {
            st_rows_cancel(a);
            if (rc == ST_ERR_INVALID)
                st_fail(err, rc, "bronze.%s: %s", f->name, why);
            return rc;
        }
    }
    bool has_extra = false;
    st_rc rc = extra_json(w, s, r, &has_extra, err);
    if (rc) {
        st_rows_cancel(a);
        return rc;
    }
    if (has_extra)
        st_rows_str(a, w->b.data, w->b.len);
    else
        st_rows_null(a);
    st_rows_bool(a, rcv - et > l->cfg->late_horizon_s * 1000000);
    st_rows_cstr(a, l->batch_id);
    app_ts(a, true, l->now_us);
    return st_rows_end(a, f->name, err);
}

/* Reads the record into l->j: fastjson first, jansson for what it refuses
 * (which also names the error).  false with why set when the record is not
 * JSON. */
static bool read_record(worker *w, const char *data, size_t len, char *why, size_t cap,
                        st_err *err, st_rc *rc)
{
    *rc = ST_OK;
    if (st_fj_parse(&w->j, data, len))
        return true;
    json_error_t jerr;
    json_t *rec = json_loadb(data, len, 0, &jerr);
    if (!rec) {
        snprintf(why, cap, "record is not a JSON object: %s", jerr.text);
        return false;
    }
    *rc = st_fj_from_jansson(&w->j, rec, err);
    json_decref(rec);
    return *rc == ST_OK;
}

/* Stages one log record: its raw row, then its bronze row or its
 * quarantine row.  A bronze row is listed in w->acc for the dedup pass. */
static st_rc stage_record(worker *w, uint64_t seq, const char *data, size_t len, st_err *err)
{
    st_loader *l = w->l;
    st_rc rc = ST_OK;
    char why[512];
    rec_t rr, *r = &rr;
    rec_index(r, NULL);
    if (!read_record(w, data, len, why, sizeof why, err, &rc))
        return rc ? rc : quarantine(w, seq, data, len, r, why, NULL, err);
    if (st_fj_type_of(&w->j, 0) != ST_FJ_OBJ)
        return quarantine(w, seq, data, len, r, "record is not a JSON object: other value", NULL,
                          err);
    rec_index(r, &w->j);
    if (l->cfg->write_raw && (rc = raw_row(w, seq, len, r, err)))
        return rc;
    const char *event_id = str_of(r, K_EVENT_ID);
    const char *family = str_of(r, K_FAMILY);
    const char *etype = str_of(r, K_EVENT_TYPE);
    char ver[32];
    version_text(r, ver);
    int vv[3];
    int64_t et = 0;
    if (!event_id || !family || !etype || !time_of(r, K_EVENT_TIME, &et))
        return quarantine(w, seq, data, len, r,
                          "envelope: event_id, family, event_type or event_time missing", NULL, err);
    if (!strncmp(etype, family, strlen(family)) && etype[strlen(family)] == '.')
        etype += strlen(family) + 1;
    if (!st_schema_version_parse(ver, vv)) {
        snprintf(why, sizeof why, "schema_version: '%s' is not N or MODEL-REVISION-ADDITION", ver);
        return quarantine(w, seq, data, len, r, why, NULL, err);
    }
    const char *reason = NULL;
    const st_schema *s = st_registry_find(l->reg, family, etype, vv, &reason);
    fam *f = s ? fam_by_name(l, family) : NULL;
    if (!s || !f) {
        snprintf(why, sizeof why, "%s: %s.%s version %s", reason ? reason : "unknown event family",
                 family, etype, ver);
        return quarantine(w, seq, data, len, r, why, NULL, err);
    }
    if (w->n_fnode < s->n_fields) {
        int *nf = st_realloc(w->fnode, s->n_fields * sizeof *nf);
        if (!nf)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        w->fnode = nf;
        w->n_fnode = s->n_fields;
    }
    if (!validate(s, r, etype, w->fnode, why, sizeof why)) {
        char ref[300];
        snprintf(ref, sizeof ref, "%s.%s v%s%s%s", s->family, s->event_type, s->version_text,
                 s->file ? " " : "", s->file ? s->file : " (built-in)");
        return quarantine(w, seq, data, len, r, why, ref, err);
    }
    size_t fi = (size_t)(f - l->fams);
    int32_t day = day_of_us(et);
    uint32_t row = w->wf[fi].st.n_ended;
    rc = bronze_row(w, fi, s, r, etype, ver, et, day, event_id, err);
    if (rc)
        return rc;
    if (w->n_acc == w->cap_acc) {
        size_t nc = w->cap_acc ? w->cap_acc * 2 : 1024;
        staged *na = st_realloc(w->acc, nc * sizeof *na);
        if (!na)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        w->acc = na;
        w->cap_acc = nc;
    }
    int64_t rcv = l->now_us;
    time_of(r, K_RECEIVED_AT, &rcv);
    size_t id_len = strlen(event_id);
    staged *sg = &w->acc[w->n_acc];
    *sg = (staged){.h = st_id_hash(event_id, id_len), .row = row, .id_off = (uint32_t)w->ids.len,
                   .day = day, .fam = (uint32_t)fi,
                   .late = rcv - et > l->cfg->late_horizon_s * 1000000};
    if (st_buf_append(&w->ids, event_id, id_len + 1))
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    w->n_acc++;
    return ST_OK;
}

static void stage_share(void *p)
{
    worker *w = p;
    w->rc = ST_OK;
    for (size_t i = 0; w->rc == ST_OK && i < w->n_recs; i++)
        w->rc = stage_record(w, w->recs[i].seq, w->recs[i].data, w->recs[i].len, &w->err);
}

/* Deduplication of a worker's staged rows, in log order: a second row with
 * an id of this batch is dropped; an id the runs may hold becomes a
 * candidate, confirmed against bronze at commit (confirm_dups). */
static st_rc dedup_pass(st_loader *l, worker *w, st_load_stats *st, st_err *err)
{
    st_rc rc = ST_OK;
    int32_t today = day_of_us(l->now_us);
    st->quarantined += w->quarantined;
    w->quarantined = 0;
    for (size_t i = 0; rc == ST_OK && i < w->n_acc; i++) {
        const staged *sg = &w->acc[i];
        fam *f = &l->fams[sg->fam];
        const char *event_id = w->ids.data + sg->id_off;
        void *seen = NULL;   /* one hash of the id: the put says whether it was there */
        if (st_map_put(f->batch_ids, event_id, (void *)1, &seen))
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        if (seen) {
            st->duplicates++;
            rc = st_rows_drop(&w->wf[sg->fam].st, sg->row, err);
            continue;
        }
        int32_t day = sg->day;
        if (l->cfg->dedup_window_days > 0 && day >= today - l->cfg->dedup_window_days) {
            if (!f->last_day_ok || f->last_day != day) {
                bool seeded = false;
                rc = st_dedup_day(f->dd, day, &seeded, err);
                if (rc == ST_OK && !seeded)
                    rc = seed_day(l, f, day, err);
                if (rc)
                    return rc;
                f->last_day = day;
                f->last_day_ok = true;
            }
            if (st_dedup_has(f->dd, day, sg->h)) {
                if (f->n_candidates)
                    st_buf_putc(&f->candidates, ',');
                st_buf_sql_str(&f->candidates, event_id);
                f->n_candidates++;
                size_t k = 0;
                while (k < f->n_cand_days && k < 16 && f->cand_days[k] != day)
                    k++;
                if (k == f->n_cand_days) {
                    if (k < 16)
                        f->cand_days[k] = day;
                    f->n_cand_days++;
                }
            }
        }
        if (f->n_pend == f->cap_pend) {
            size_t nc = f->cap_pend ? f->cap_pend * 2 : 1024;
            pending_id *np = st_realloc(f->pend, nc * sizeof *np);
            if (!np)
                return st_fail(err, ST_ERR_NOMEM, "out of memory");
            f->pend = np;
            f->cap_pend = nc;
        }
        f->pend[f->n_pend++] = (pending_id){sg->h, day};
        f->n_rows++;
        if (sg->late)
            st->late++;
    }
    w->n_acc = 0;
    st_buf_reset(&w->ids);
    return rc;
}

/* Stages a round of records: two halves on two workers, then the dedup
 * pass over both in log order. */
static st_rc stage_round(st_loader *l, const st_evlog_rec *recs, size_t n, st_load_stats *st,
                         st_err *err)
{
    size_t split = l->n_wk > 1 && n >= SPLIT_MIN ? n / 2 : n;
    l->wk[0].recs = recs;
    l->wk[0].n_recs = split;
    if (split < n) {
        l->wk[1].recs = recs + split;
        l->wk[1].n_recs = n - split;
        run_pair(l, stage_share, &l->wk[1], &l->wk[0]);
    } else {
        stage_share(&l->wk[0]);
    }
    size_t used = split < n ? 2 : 1;
    for (size_t i = 0; i < used; i++)
        if (l->wk[i].rc) {
            if (err)
                *err = l->wk[i].err;
            return l->wk[i].rc;
        }
    st_rc rc = ST_OK;
    for (size_t i = 0; rc == ST_OK && i < used; i++)
        rc = dedup_pass(l, &l->wk[i], st, err);
    return rc;
}

/* ---------------------------------------------------------------- a batch */

static st_rc begin_batch(st_loader *l, st_err *err)
{
    st_rc rc = ST_OK;
    l->raw_rows = l->q_rows = 0;
    for (size_t w = 0; w < l->n_wk; w++) {
        worker *wk = &l->wk[w];
        wk->raw_rows = wk->q_rows = 0;
        wk->quarantined = 0;
        wk->n_acc = 0;
        st_buf_reset(&wk->ids);
    }
    if (l->cfg->write_raw)
        rc = stage_open(l, STAGE_RAW, raw_ddl, err);
    rc = rc ? rc : stage_open(l, STAGE_Q, quarantine_ddl, err);
    for (size_t i = 0; rc == ST_OK && i < l->n_fams; i++) {
        fam *f = &l->fams[i];
        char *ddl = family_ddl(f);
        rc = stage_open(l, STAGE_FAM0 + i, ddl, err);
        st_free(ddl);
        f->n_rows = 0;
        f->n_pend = 0;
        f->n_candidates = 0;
        f->n_cand_days = 0;
        st_buf_reset(&f->candidates);
        st_map_free(f->batch_ids);
        f->batch_ids = st_map_new();
        if (rc == ST_OK && !f->batch_ids)
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        if (rc == ST_OK && !f->exists) {
            int64_t v = -1;
            rc = st_delta_latest_version(f->path, &v, err);
            f->exists = v >= 0;
        }
    }
    return rc;
}

/* Moves the rows still in partial chunks to the lists. */
static st_rc flush_rows(st_loader *l, st_err *err)
{
    st_rc rc = ST_OK;
    for (size_t w = 0; rc == ST_OK && w < l->n_wk; w++) {
        worker *wk = &l->wk[w];
        rc = l->cfg->write_raw ? st_rows_flush(&wk->raw_st, "raw", err) : ST_OK;
        rc = rc ? rc : st_rows_flush(&wk->q_st, "quarantine", err);
        for (size_t i = 0; rc == ST_OK && i < l->n_fams; i++)
            rc = st_rows_flush(&wk->wf[i].st, l->fams[i].name, err);
        l->raw_rows += wk->raw_rows;
        l->q_rows += wk->q_rows;
    }
    return rc;
}

static void end_batch(st_loader *l)
{
    for (size_t w = 0; w < l->n_wk; w++) {
        worker *wk = &l->wk[w];
        st_rows_close(&wk->raw_st);
        st_rows_close(&wk->q_st);
        for (size_t i = 0; i < l->n_fams; i++)
            st_rows_close(&wk->wf[i].st);
    }
}

/* Counts the candidates that bronze really holds, into temp table dup_ids
 * of eng's connection (select_of leaves them out). */
static st_rc confirm_dups(st_loader *l, st_engine *eng, fam *f, int64_t *n_dups, st_err *err)
{
    *n_dups = 0;
    if (!f->n_candidates || !f->exists)
        return ST_OK;
    st_delta_snapshot *s = NULL;
    char *scan = NULL, *q = NULL;
    /* candidates come from the runs of their own date: scan those partitions */
    st_buf pred;
    st_buf_init(&pred, 0);
    if (f->n_cand_days <= 16) {
        st_buf_puts(&pred, "event_date IN (");
        for (size_t i = 0; i < f->n_cand_days; i++) {
            char dt[16];
            day_text(f->cand_days[i], dt);
            st_buf_printf(&pred, "%sDATE '%s'", i ? ", " : "", dt);
        }
        st_buf_puts(&pred, ")");
    }
    st_rc rc = st_delta_snapshot_load(eng, f->path, -1, &s, err);
    rc = rc ? rc : st_delta_scan_sql(eng, s, pred.len ? pred.data : NULL, &scan, err);
    if (rc == ST_OK) {
        q = st_sprintf("CREATE OR REPLACE TEMP TABLE dup_ids AS SELECT DISTINCT event_id FROM "
                       "(%s) WHERE event_id IN (%s)%s%s", scan, f->candidates.data,
                       pred.len ? " AND " : "", pred.len ? pred.data : "");
        rc = q ? st_engine_exec(eng, q, err) : st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    st_free(q);
    if (rc == ST_OK)
        rc = st_engine_query_i64(eng, "SELECT count(*) FROM dup_ids", n_dups, err);
    st_free(scan);
    st_buf_free(&pred);
    st_delta_snapshot_free(s);
    if (rc)
        st_err_ctx(err, "dedup: bronze.%s", f->name);
    return rc;
}

static int cmp_pending(const void *a, const void *b)
{
    const pending_id *x = a, *y = b;
    return x->day != y->day ? (x->day < y->day ? -1 : 1) : (x->h < y->h ? -1 : x->h > y->h);
}

/* Adds one run per date of the batch's ids (within the window) and forgets
 * the dates that left the window. */
static st_rc remember_ids(st_loader *l, fam *f, st_err *err)
{
    int32_t oldest = day_of_us(l->now_us) - (int32_t)l->cfg->dedup_window_days;
    if (f->n_pend > 1)
        qsort(f->pend, f->n_pend, sizeof *f->pend, cmp_pending);
    uint64_t *h = f->n_pend ? st_malloc(f->n_pend * sizeof *h) : NULL;
    if (f->n_pend && !h)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    st_rc rc = ST_OK;
    for (size_t i = 0; rc == ST_OK && i < f->n_pend;) {
        size_t j = i, n = 0;
        while (j < f->n_pend && f->pend[j].day == f->pend[i].day)
            h[n++] = f->pend[j++].h;
        if (l->cfg->dedup_window_days > 0 && f->pend[i].day >= oldest)
            rc = st_dedup_add(f->dd, f->pend[i].day, h, n, err);
        i = j;
    }
    st_free(h);
    rc = rc ? rc : st_dedup_forget_before(f->dd, oldest, err);
    f->last_day_ok = false;
    if (rc)
        st_err_ctx(err, "dedup: bronze.%s", f->name);
    return rc;
}

static st_rc commit_table(st_loader *l, st_engine *eng, const char *path, size_t stage,
                          const char *ddl, const char *name, const char *part, bool *exists,
                          uint64_t end_seq, bool without_dups, int64_t *rows, bool *skipped,
                          st_err *err)
{
    st_rc rc = ensure_table(path, ddl, name, part, exists, err);
    if (rc)
        return rc;
    char *sel = select_of(stage, ddl, l->batch_id, without_dups);
    if (!sel)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    /* zstd level 1: as small as level 3 on these tables (measured:
     * 15.03 MB against 15.07 MB for loader_bench's lake, the encrypted
     * columns do not compress) for ~7% less loader CPU; optimize rewrites
     * the small files at the default level anyway */
    st_delta_write_opts o = {.mode = ST_DELTA_APPEND, .merge_schema = true, .app_id = APP_ID,
                             .app_version = (int64_t)end_seq, .compression_level = 1};
    st_delta_result res;
    int64_t t0 = st_mono_ns();
    rc = st_delta_write(eng, path, sel, &o, &res, err);
    st_free(sel);
    st_debug("loader: %s: write %.0f ms", name, (double)(st_mono_ns() - t0) / 1e6);
    if (rc) {
        st_err_ctx(err, "loader: committing %s", name);
        return rc;
    }
    *skipped = res.skipped;
    *rows = res.skipped ? 0 : res.rows_written;
    return ST_OK;
}

/* One table's commit of the batch. */
typedef struct job {
    size_t stage;
    double weight;             /* values to write: the longest go first */
    int64_t dups, rows;
    bool skipped;
    st_rc rc;
    st_err err;
} job;

/* A commit lane: takes jobs until none is left or one failed.  The two
 * lanes write different tables on two connections, so the Parquet writes
 * of a batch use both cores. */
typedef struct lane {
    st_loader *l;
    st_engine *eng;
    job *jobs;
    size_t n_jobs;
    _Atomic size_t *next;
    _Atomic bool *failed;
    uint64_t end_seq;
} lane;

static void run_job(st_loader *l, st_engine *eng, job *jb, uint64_t end_seq)
{
    st_err *err = &jb->err;
    if (jb->stage == STAGE_RAW) {
        jb->rc = commit_table(l, eng, l->raw_path, STAGE_RAW, raw_ddl, "raw.events",
                              "received_date", &l->raw_exists, end_seq, false, &jb->rows,
                              &jb->skipped, err);
        return;
    }
    if (jb->stage == STAGE_Q) {
        jb->rc = commit_table(l, eng, l->q_path, STAGE_Q, quarantine_ddl, "bronze._quarantine",
                              "received_date", &l->q_exists, end_seq, false, &jb->rows,
                              &jb->skipped, err);
        return;
    }
    fam *f = &l->fams[jb->stage - STAGE_FAM0];
    jb->rc = confirm_dups(l, eng, f, &jb->dups, err);
    if (jb->rc == ST_OK && (size_t)jb->dups < f->n_rows) {
        char *ddl = family_ddl(f);
        char *name = st_sprintf("bronze.%s", f->name);
        jb->rc = ddl && name ? commit_table(l, eng, f->path, jb->stage, ddl, name, "event_date",
                                            &f->exists, end_seq, jb->dups > 0, &jb->rows,
                                            &jb->skipped, err)
                             : st_fail(err, ST_ERR_NOMEM, "out of memory");
        st_free(ddl);
        st_free(name);
    }
    /* the family's ids go to its runs now: if another table of the batch
     * fails, every run is reset and reseeded from bronze anyway */
    if (jb->rc == ST_OK)
        jb->rc = remember_ids(l, f, err);
}

static void lane_main(void *p)
{
    lane *ln = p;
    while (!atomic_load(ln->failed)) {
        size_t i = atomic_fetch_add(ln->next, 1);
        if (i >= ln->n_jobs)
            break;
        run_job(ln->l, ln->eng, &ln->jobs[i], ln->end_seq);
        if (ln->jobs[i].rc)
            atomic_store(ln->failed, true);
    }
}

static int cmp_job(const void *a, const void *b)
{
    const job *x = a, *y = b;
    return x->weight > y->weight ? -1 : x->weight < y->weight;
}

/* Commits every non-empty table of the batch, each as one Delta
 * transaction with txn version end_seq. */
static st_rc commit_batch(st_loader *l, uint64_t end_seq, st_load_stats *st, st_err *err)
{
    job *jobs = st_calloc(l->n_fams + 2, sizeof *jobs);
    if (!jobs)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < l->n_fams; i++)
        if (l->fams[i].n_rows)
            jobs[n++] = (job){.stage = STAGE_FAM0 + i,
                              .weight = (double)l->fams[i].n_rows * (double)(l->fams[i].n_cols + 15)};
    if (l->q_rows)
        jobs[n++] = (job){.stage = STAGE_Q, .weight = (double)l->q_rows * 14};
    if (l->raw_rows)
        jobs[n++] = (job){.stage = STAGE_RAW, .weight = (double)l->raw_rows * 16};
    qsort(jobs, n, sizeof *jobs, cmp_job);
    _Atomic size_t next = 0;
    _Atomic bool failed = false;
    lane a = {l, l->eng2, jobs, n, &next, &failed, end_seq};
    lane b = {l, l->eng, jobs, n, &next, &failed, end_seq};
    if (l->eng2 && n > 1)
        run_pair(l, lane_main, &a, &b);
    else
        lane_main(&b);
    st_rc rc = ST_OK;
    for (size_t i = 0; i < n; i++) {
        st->duplicates += jobs[i].dups;
        if (jobs[i].stage >= STAGE_FAM0)
            st->loaded += jobs[i].rows;
        st->skipped_replay += jobs[i].skipped;
        if (jobs[i].rc && rc == ST_OK) {
            rc = jobs[i].rc;
            if (err)
                *err = jobs[i].err;
        }
    }
    st_free(jobs);
    return rc;
}

st_rc st_loader_step(st_loader *l, st_load_stats *stats, size_t *out_n, st_err *err)
{
    st_load_stats dummy = {0};
    st_load_stats *st = stats ? stats : &dummy;
    *out_n = 0;
    uint64_t limit = UINT64_MAX;
    if (atomic_load(&l->has_limit))
        limit = atomic_load(&l->log_end);
    if (l->replay_end > l->position)
        limit = limit < l->replay_end ? limit : l->replay_end;
    if (limit <= l->position)
        return ST_OK;
    uint64_t want = (uint64_t)l->cfg->batch_events;
    if (l->replay_end > l->position)
        want = l->replay_end - l->position;   /* exactly the interrupted batch */
    if (limit - l->position < want)
        want = limit - l->position;
    l->now_us = st_now_us();
    snprintf(l->batch_id, sizeof l->batch_id, "%llu", (unsigned long long)l->position);
    int64_t t_begin = st_mono_ns();
    st_rc rc = begin_batch(l, err);
    uint64_t next = l->position;
    size_t n_read = 0;
    while (rc == ST_OK && n_read < want) {
        size_t ask = want - n_read < READ_CHUNK ? (size_t)(want - n_read) : READ_CHUNK;
        size_t n = 0;
        rc = l->ksrc ? st_kafka_src_read(l->ksrc, l->recs, ask, &n, err)
                     : st_evlog_read(l->reader, l->recs, ask, &n, err);
        if (rc || n == 0)
            break;
        rc = stage_round(l, l->recs, n, st, err);
        next = l->recs[n - 1].seq + 1;
        n_read += n;
    }
    if (rc == ST_OK && l->replay_end > l->position && next < l->replay_end && n_read > 0)
        rc = st_fail(err, ST_ERR_CORRUPT,
                     "loader: the log ends at %llu but tables hold a batch up to %llu",
                     (unsigned long long)next, (unsigned long long)l->replay_end);
    rc = rc ? rc : flush_rows(l, err);
    int64_t t_staged = st_mono_ns();
    if (rc || n_read == 0)
        goto out;
    /* the end-of-batch sequence is the txn version of every commit below */
    snprintf(l->batch_id, sizeof l->batch_id, "%llu-%llu", (unsigned long long)l->position,
             (unsigned long long)next);
    /* the keys of the batch's new subjects are stored before anything
     * encrypted with them is committed */
    rc = st_keystore_flush(l->ks, err);
    if (rc == ST_OK && l->ksrc)
        rc = st_kafka_src_prepare(l->ksrc, err);   /* the batch's offset ranges, for a replay */
    rc = rc ? rc : commit_batch(l, next, st, err);
    int64_t t_committed = st_mono_ns();
    /* committed: the families without rows only age their runs (those with
     * rows remembered their ids in their commit job), then the checkpoint */
    for (size_t i = 0; rc == ST_OK && i < l->n_fams; i++)
        if (!l->fams[i].n_rows)
            rc = remember_ids(l, &l->fams[i], err);
    rc = rc ? rc : dedup_save_position(l, next, err);
    /* Kafka offsets move only after every table committed the batch */
    rc = rc || !l->ksrc ? rc : st_kafka_src_commit(l->ksrc, err);
    rc = rc ? rc : save_checkpoint(l, next, err);
    if (rc)
        goto out;
    st_debug("loader: batch %s: %zu records, staged in %.0f ms, committed in %.0f ms, "
             "dedup runs and checkpoint %.0f ms", l->batch_id, n_read, (double)(t_staged - t_begin) / 1e6,
             (double)(t_committed - t_staged) / 1e6, (double)(st_mono_ns() - t_committed) / 1e6);
    l->position = next;
    if (l->replay_end && l->position >= l->replay_end)
        l->replay_end = 0;
    st->batches++;
    st->read += (int64_t)n_read;
    *out_n = n_read;
out:
    end_batch(l);
    st->position = l->position;
    if (rc) {
        /* start the next attempt from the checkpoint again */
        st_evlog_reader_close(l->reader);
        l->reader = NULL;
        st_err e2;
        if (l->ksrc ? st_kafka_src_rewind(l->ksrc, &e2)
                    : st_evlog_reader_open_seq(l->cfg->log_dir, l->position, &l->reader, &e2))
            st_warn("loader: reopening the event log: %s", e2.msg);
        /* a partial commit changed bronze behind the runs: rebuild them */
        for (size_t i = 0; i < l->n_fams; i++) {
            st_err e4;
            l->fams[i].last_day_ok = false;
            if (st_dedup_reset(l->fams[i].dd, &e4))
                st_warn("loader: resetting the dedup runs: %s", e4.msg);
        }
        char *pp = st_sprintf("%s/position", l->dedup_root);
        if (pp)
            unlink(pp);
        st_free(pp);
        uint64_t replay = 0, v = 0;
        st_err e3;
        for (size_t i = 0; i < l->n_fams; i++)
            if (!table_app_version(l->eng, l->fams[i].path, &v, &e3) && v > replay)
                replay = v;
        if (!table_app_version(l->eng, l->q_path, &v, &e3) && v > replay)
            replay = v;
        if (!table_app_version(l->eng, l->raw_path, &v, &e3) && v > replay)
            replay = v;
        l->replay_end = replay > l->position ? replay : 0;
        if (l->ksrc && l->replay_end && st_kafka_src_replay(l->ksrc, l->replay_end, &e2))
            st_warn("loader: %s", e2.msg);
    }
    return rc;
}

st_rc st_loader_run_once(st_loader *l, st_load_stats *stats, st_err *err)
{
    for (;;) {
        size_t n = 0;
        st_rc rc = st_loader_step(l, stats, &n, err);
        if (rc || n == 0)
            return rc;
    }
}

/* ---------------------------------------------------------------- thread */

struct st_loader_thread {
    st_loader *l;
    uint64_t (*next_seq)(void *);
    void *arg;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    _Atomic uint64_t lag;
};

static void *thread_main(void *p)
{
    st_loader_thread *t = p;
    for (;;) {
        pthread_mutex_lock(&t->mu);
        bool stop = t->stop;
        pthread_mutex_unlock(&t->mu);
        if (t->next_seq)
            st_loader_set_log_end(t->l, t->next_seq(t->arg));
        st_err err;
        st_load_stats st = {0};
        st_rc rc = st_loader_run_once(t->l, &st, &err);
        if (rc)
            st_error("loader: %s", err.msg);
        else if (st.read)
            st_debug("loader: %lld events, %lld loaded, %lld duplicates, %lld quarantined",
                     (long long)st.read, (long long)st.loaded, (long long)st.duplicates,
                     (long long)st.quarantined);
        if (t->next_seq)
            st_loader_set_log_end(t->l, t->next_seq(t->arg));
        atomic_store(&t->lag, st_loader_lag(t->l));
        if (stop)
            break;
        pthread_mutex_lock(&t->mu);
        if (!t->stop) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t ns = ts.tv_nsec + (t->l->cfg->interval_ms % 1000) * 1000000;
            ts.tv_sec += t->l->cfg->interval_ms / 1000 + ns / 1000000000;
            ts.tv_nsec = ns % 1000000000;
            pthread_cond_timedwait(&t->cv, &t->mu, &ts);
        }
        pthread_mutex_unlock(&t->mu);
    }
    return NULL;
}

st_rc st_loader_thread_start(st_loader *l, uint64_t (*next_seq_fn)(void *), void *arg,
                             st_loader_thread **out, st_err *err)
{
    st_loader_thread *t = st_calloc(1, sizeof *t);
    if (!t)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    t->l = l;
    t->next_seq = next_seq_fn;
    t->arg = arg;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    if (next_seq_fn)
        st_loader_set_log_end(l, next_seq_fn(arg));
    if (pthread_create(&t->th, NULL, thread_main, t)) {
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
        st_free(t);
        return st_fail(err, ST_ERR_IO, "loader: cannot start a thread");
    }
    *out = t;
    return ST_OK;
}

uint64_t st_loader_thread_lag(const st_loader_thread *t)
{
    if (!t)
        return 0;
    if (!t->next_seq || t->l->ksrc)
        return atomic_load(&((st_loader_thread *)t)->lag);
    uint64_t end = t->next_seq(t->arg);
    uint64_t pos = atomic_load(&t->l->position);
    return end > pos ? end - pos : 0;
}

void st_loader_thread_stop(st_loader_thread *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->th, NULL);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    st_loader_close(t->l);
    st_free(t);
}
