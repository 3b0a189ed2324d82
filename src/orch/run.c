/*
 * run.c - the executor: st_orch_open/close and st_orch_run.
 *
 * A run takes the selected assets of the DAG; an asset becomes ready when
 * every selected input has succeeded (inputs outside the selection count as
 * done).  N worker threads, each with its own st_engine, take ready assets
 * from a FIFO.  Per attempt the worker publishes a deadline; the calling
 * thread watches the deadlines and, past one, sets the attempt's cancel
 * flag and calls duckdb_interrupt on that worker's connection (again on
 * every tick until the attempt ends), so a timed-out query stops without
 * leaking the thread.  Failures are retried with exponential backoff and
 * jitter (timeouts are not retried); a failed asset marks everything
 * downstream of it skipped, the rest of the DAG goes on.  Each asset runs
 * under a lock row (history.c) so one asset never runs twice at once.
 */
#include "orch_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *st_asset_status_name(st_asset_status s)
{
    switch (s) {
    case ST_AS_PENDING: return "pending";
    case ST_AS_OK: return "ok";
    case ST_AS_FAILED: return "failed";
    case ST_AS_SKIPPED: return "skipped";
    case ST_AS_OBSERVED: return "observed";
    case ST_AS_NOT_SELECTED: return "not_selected";
    }
    return "?";
}

bool st_asset_cancelled(const st_asset_ctx *ctx)
{
    return ctx && ctx->cancel && __atomic_load_n(ctx->cancel, __ATOMIC_SEQ_CST);
}

void st_asset_log(st_asset_ctx *ctx, const char *fmt, ...)
{
    if (!ctx || !ctx->priv)
        return;
    orch_ctx_priv *pv = ctx->priv;
    va_list ap;
    va_start(ap, fmt);
    char *msg = st_vsprintf(fmt, ap);
    va_end(ap);
    if (!msg)
        return;
    oh_log(pv->o, ctx->run_id, ctx->asset->key, "info", msg);
    st_debug("%s: %s", ctx->asset->key, msg);
    st_free(msg);
}

void st_run_summary_free(st_run_summary *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        st_free(s->assets[i].key);
        st_free(s->assets[i].partition);
        st_free(s->assets[i].error);
        st_free(s->assets[i].blocked_by);
    }
    st_free(s->assets);
    st_free(s);
}

st_rc st_orch_open(const st_project *p, st_orch **out, st_err *err)
{
    st_orch *o = st_calloc(1, sizeof *o);
    if (!o)
        return st_fail(err, ST_ERR_NOMEM, "orchestrator");
    o->p = p;
    pthread_mutex_init(&o->mu, NULL);
    st_rc rc = st_dag_build(p, &o->dag, err);
    rc = rc ? rc : st_state_open(p->state_path, &o->state, err);
    rc = rc ? rc : oh_migrate(o->state, err);
    if (rc) {
        st_orch_close(o);
        return rc;
    }
    *out = o;
    return ST_OK;
}

void st_orch_close(st_orch *o)
{
    if (!o)
        return;
    st_state_close(o->state);
    st_dag_free(o->dag);
    pthread_mutex_destroy(&o->mu);
    st_free(o);
}

st_state *st_orch_state(st_orch *o) { return o->state; }
const st_dag *st_orch_dag(st_orch *o) { return o->dag; }

/* ---------------------------------------------------------------- executor */

typedef struct node {
    bool selected;
    st_asset_status st;
    size_t waiting;          /* selected inputs not finished */
    st_asset_result res;
} node;

typedef struct worker {
    pthread_t th;
    bool started;
    struct runner *r;
    st_engine *eng;
    pthread_mutex_t mu;      /* guards the fields below */
    bool busy;
    int64_t deadline_ns;     /* 0 = none */
    int cancel;              /* read by the body through ctx->cancel */
    bool timed_out;
    unsigned seed;
} worker;

typedef struct runner {
    st_orch *o;
    const st_run_opts *opts;
    const st_dag *d;
    node *nodes;
    size_t *queue;           /* FIFO of ready indexes */
    size_t q_head, q_tail;
    size_t remaining;        /* selected assets not finished */
    size_t *order;           /* finish order, for the summary */
    size_t n_order;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    worker *w;
    int n_w;
    int64_t backoff_ms;
    char run_id[37];
} runner;

static int timeout_of(const runner *r, const st_asset_def *a, int64_t *out)
{
    *out = a->timeout_ms > 0 ? a->timeout_ms : r->o->p->timeout_ms;
    return 0;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* Marks every selected, pending descendant of i skipped (caller holds mu). */
static void skip_downstream(runner *r, size_t i, const char *why_key)
{
    const st_dag *d = r->d;
    for (size_t k = 0; k < d->n_kids[i]; k++) {
        size_t c = d->kids[i][k];
        node *n = &r->nodes[c];
        if (!n->selected || n->st != ST_AS_PENDING)
            continue;
        n->st = ST_AS_SKIPPED;
        n->res.status = ST_AS_SKIPPED;
        n->res.blocked_by = st_strdup(why_key);
        n->res.error = st_sprintf("not run: upstream %s failed", why_key);
        r->order[r->n_order++] = c;
        r->remaining--;
        int64_t now = st_now_ms();
        oh_mat_insert(r->o, r->run_id, &n->res, now, now, NULL, NULL, 0, NULL, NULL);
        if (r->opts->progress)
            fprintf(r->opts->progress, "skipped %-40s upstream %s failed\n", d->a[c]->key, why_key);
        skip_downstream(r, c, why_key);
    }
}

/* Runs one asset with retries; fills n->res.  Called without r->mu. */
static void run_asset(runner *r, worker *w, size_t i)
{
    const st_dag *d = r->d;
    const st_asset_def *a = d->a[i];
    node *n = &r->nodes[i];
    st_asset_result *res = &n->res;
    int64_t t0 = st_now_ms();
    int64_t m0 = st_mono_ns();
    st_err err;
    st_err_clear(&err);
    res->version = -1;
    /* inputs as they are now: recorded so the plan can tell newer versions */
    const char **inputs = st_calloc(d->n_deps[i] + 1, sizeof *inputs);
    int64_t *stamps = st_calloc(d->n_deps[i] + 1, sizeof *stamps);
    for (size_t j = 0; inputs && stamps && j < d->n_deps[i]; j++) {
        inputs[j] = d->a[d->deps[i][j]]->key;
        stamps[j] = orch_stamp(r->o, d->a[d->deps[i][j]]);
    }
    if (a->kind == ST_ASSET_SOURCE) {
        res->status = ST_AS_OBSERVED;
        res->attempts = 0;
        char *path = st_project_table_path(r->o->p, a->key);
        if (path)
            st_delta_latest_version(path, &res->version, NULL);
        st_free(path);
        goto record;
    }
    st_rc rc = oh_lock(r->o, a->key, r->run_id, &err);
    if (rc) {
        res->status = ST_AS_FAILED;
        res->error = st_strdup(err.msg);
        goto record;
    }
    char lineage_id[37];
    st_uuid4(lineage_id);
    orch_lineage(r->o, w->eng, "START", lineage_id, r->run_id, a, NULL);
    int retries = a->retries >= 0 ? a->retries : r->o->p->retries;
    int64_t timeout_ms = 0;
    timeout_of(r, a, &timeout_ms);
    for (int attempt = 1;; attempt++) {
        orch_ctx_priv pv = {.o = r->o};
        st_asset_ctx ctx = {.eng = w->eng,
                            .asset = a,
                            .run_id = r->run_id,
                            .partition = r->opts->partition && a->part != ST_PART_NONE
                                             ? r->opts->partition
                                             : NULL,
                            .attempt = attempt,
                            .version = -1,
                            .cancel = &w->cancel,
                            .priv = &pv};
        pthread_mutex_lock(&w->mu);
        w->busy = true;
        w->timed_out = false;
        __atomic_store_n(&w->cancel, 0, __ATOMIC_SEQ_CST);
        w->deadline_ns = st_mono_ns() + timeout_ms * 1000000LL;
        pthread_mutex_unlock(&w->mu);
        st_err_clear(&err);
        rc = orch_exec(r->o, &ctx, &err);
        pthread_mutex_lock(&w->mu);
        w->busy = false;
        w->deadline_ns = 0;
        bool timed_out = w->timed_out;
        pthread_mutex_unlock(&w->mu);
        res->attempts = attempt;
        res->n_checks_failed = ctx.checks_failed;
        if (rc == ST_OK && !timed_out) {
            res->status = ST_AS_OK;
            res->version = ctx.version;
            res->rows = ctx.rows;
            res->bytes = ctx.bytes;
            break;
        }
        if (timed_out) {
            res->timed_out = true;
            res->status = ST_AS_FAILED;
            res->error = st_sprintf("timed out after %lld ms (attempt %d)%s%s",
                                    (long long)timeout_ms, attempt, rc ? ": " : "",
                                    rc ? err.msg : "");
            oh_log(r->o, r->run_id, a->key, "error", res->error);
            break;
        }
        /* quality failures are deterministic: no retry */
        bool retry = attempt <= retries && !ctx.checks_failed;
        char *line = st_sprintf("attempt %d failed: %s%s", attempt, err.msg,
                                retry ? "; retrying" : "");
        if (line)
            oh_log(r->o, r->run_id, a->key, retry ? "warn" : "error", line);
        st_free(line);
        if (!retry) {
            res->status = ST_AS_FAILED;
            res->error = st_strdup(err.msg);
            break;
        }
        int64_t delay = r->backoff_ms;
        for (int k = 1; k < attempt && delay < 300000; k++)
            delay *= 2;
        if (delay > 300000)
            delay = 300000;
        /* jitter in [0.5, 1.5) of the delay spreads retries of many assets */
        delay = delay / 2 + (int64_t)(rand_r(&w->seed) % (unsigned)(delay > 0 ? delay : 1));
        sleep_ms(delay);
    }
    orch_lineage(r->o, w->eng, res->status == ST_AS_OK ? "COMPLETE" : "FAIL", lineage_id,
                 r->run_id, a, res->error);
    oh_unlock(r->o, a->key, r->run_id);
record:
    res->duration_ms = (st_mono_ns() - m0) / 1000000;
    {
        st_err e2;
        if (oh_mat_insert(r->o, r->run_id, res, t0, st_now_ms(), inputs, stamps,
                          inputs && stamps ? d->n_deps[i] : 0, NULL, &e2))
            st_warn("%s: %s", a->key, e2.msg);
    }
    st_free(inputs);
    st_free(stamps);
    if (r->opts->progress) {
        if (res->status == ST_AS_FAILED)
            fprintf(r->opts->progress, "FAILED  %-40s %s\n", a->key, res->error ? res->error : "");
        else if (res->status == ST_AS_OBSERVED)
            fprintf(r->opts->progress, "observed %-39s version %lld\n", a->key,
                    (long long)res->version);
        else
            fprintf(r->opts->progress, "ok      %-40s version %lld, %lld rows, %lld ms%s\n", a->key,
                    (long long)res->version, (long long)res->rows, (long long)res->duration_ms,
                    res->attempts > 1 ? " (retried)" : "");
        fflush(r->opts->progress);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    runner *r = w->r;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (r->q_head == r->q_tail && r->remaining > 0)
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->remaining == 0)
            break;
        size_t i = r->queue[r->q_head++];
        pthread_mutex_unlock(&r->mu);
        run_asset(r, w, i);
        pthread_mutex_lock(&r->mu);
        node *n = &r->nodes[i];
        n->st = n->res.status;
        r->order[r->n_order++] = i;
        r->remaining--;
        if (n->st == ST_AS_FAILED) {
            skip_downstream(r, i, r->d->a[i]->key);
        } else {
            for (size_t k = 0; k < r->d->n_kids[i]; k++) {
                size_t c = r->d->kids[i][k];
                if (r->nodes[c].selected && r->nodes[c].st == ST_AS_PENDING &&
                    --r->nodes[c].waiting == 0)
                    r->queue[r->q_tail++] = c;
            }
        }
        pthread_cond_broadcast(&r->cv);
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Interrupts attempts past their deadline (called with r->mu held). */
static void watch_deadlines(runner *r)
{
    int64_t now = st_mono_ns();
    for (int k = 0; k < r->n_w; k++) {
        worker *w = &r->w[k];
        if (!w->started)
            continue;
        pthread_mutex_lock(&w->mu);
        if (w->busy && w->deadline_ns && now > w->deadline_ns) {
            w->timed_out = true;
            __atomic_store_n(&w->cancel, 1, __ATOMIC_SEQ_CST);
            duckdb_interrupt(st_engine_conn(w->eng));
        }
        pthread_mutex_unlock(&w->mu);
    }
}

st_rc st_orch_run(st_orch *o, const st_run_opts *opts, st_run_summary **out, st_err *err)
{
    st_run_opts def = {0};
    if (!opts)
        opts = &def;
    const st_dag *d = o->dag;
    runner r;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.opts = opts;
    r.d = d;
    r.backoff_ms = opts->retry_backoff_ms > 0 ? opts->retry_backoff_ms : o->p->retry_backoff_ms;
    st_uuid4(r.run_id);
    bool *sel = st_calloc(d->n + 1, sizeof *sel);
    r.nodes = st_calloc(d->n + 1, sizeof *r.nodes);
    r.queue = st_calloc(d->n + 1, sizeof *r.queue);
    r.order = st_calloc(d->n + 1, sizeof *r.order);
    st_run_summary *sum = st_calloc(1, sizeof *sum);
    st_rc rc = sel && r.nodes && r.queue && r.order && sum ? ST_OK
                                                           : st_fail(err, ST_ERR_NOMEM, "run");
    rc = rc ? rc : st_select_resolve(d, opts->select, opts->exclude, sel, NULL, err);
    if (rc)
        goto fail;
    int n_workers = opts->workers > 0 ? opts->workers : o->p->workers;
    if (n_workers < 1)
        n_workers = 1;
    for (size_t i = 0; i < d->n; i++) {
        node *n = &r.nodes[i];
        n->selected = sel[i];
        n->st = sel[i] ? ST_AS_PENDING : ST_AS_NOT_SELECTED;
        n->res.key = st_strdup(d->a[i]->key);
        n->res.status = n->st;
        n->res.version = -1;
        if (opts->partition && d->a[i]->part != ST_PART_NONE)
            n->res.partition = st_strdup(opts->partition);
        if (!sel[i])
            continue;
        r.remaining++;
        for (size_t j = 0; j < d->n_deps[i]; j++)
            if (sel[d->deps[i][j]])
                n->waiting++;
        if (!n->waiting)
            r.queue[r.q_tail++] = i;
    }
    char *selection = st_sprintf("%s%s%s", opts->select ? opts->select : "*",
                                 opts->exclude ? " --exclude " : "",
                                 opts->exclude ? opts->exclude : "");
    rc = oh_run_begin(o, r.run_id, opts->trigger ? opts->trigger : "manual", selection, err);
    st_free(selection);
    if (rc)
        goto fail;
    if ((size_t)n_workers > r.remaining)
        n_workers = r.remaining ? (int)r.remaining : 1;
    r.w = st_calloc((size_t)n_workers, sizeof *r.w);
    if (!r.w) {
        rc = st_fail(err, ST_ERR_NOMEM, "run");
        goto fail;
    }
    r.n_w = n_workers;
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    int64_t m0 = st_mono_ns();
    for (int k = 0; rc == ST_OK && k < n_workers; k++) {
        worker *w = &r.w[k];
        w->r = &r;
        w->seed = (unsigned)(st_now_us() ^ (uint64_t)k * 2654435761u);
        pthread_mutex_init(&w->mu, NULL);
        rc = st_engine_open(NULL, &w->eng, err);
        if (rc == ST_OK && pthread_create(&w->th, NULL, worker_main, w) != 0)
            rc = st_fail(err, ST_ERR_IO, "starting worker %d", k);
        if (rc == ST_OK)
            w->started = true;
    }
    pthread_mutex_lock(&r.mu);
    if (rc) {
        /* no new work: let started workers drain what they hold */
        r.q_head = r.q_tail;
        r.remaining = 0;
        pthread_cond_broadcast(&r.cv);
    }
    while (r.remaining > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&r.cv, &r.mu, &ts);
        watch_deadlines(&r);
    }
    pthread_cond_broadcast(&r.cv);
    pthread_mutex_unlock(&r.mu);
    for (int k = 0; k < n_workers; k++) {
        /* a worker finishing its last asset may still be in the body */
        if (r.w[k].started) {
            for (;;) {
                pthread_mutex_lock(&r.w[k].mu);
                bool busy = r.w[k].busy;
                pthread_mutex_unlock(&r.w[k].mu);
                if (!busy)
                    break;
                pthread_mutex_lock(&r.mu);
                watch_deadlines(&r);
                pthread_mutex_unlock(&r.mu);
                sleep_ms(20);
            }
            pthread_join(r.w[k].th, NULL);
        }
        st_engine_close(r.w[k].eng);
        pthread_mutex_destroy(&r.w[k].mu);
    }
    pthread_mutex_destroy(&r.mu);
    pthread_cond_destroy(&r.cv);
    st_free(r.w);
    r.w = NULL;
    /* summary in finish order */
    memcpy(sum->run_id, r.run_id, sizeof sum->run_id);
    sum->assets = st_calloc(r.n_order + 1, sizeof *sum->assets);
    sum->duration_ms = (st_mono_ns() - m0) / 1000000;
    const char *first_err = NULL;
    for (size_t k = 0; sum->assets && k < r.n_order; k++) {
        node *n = &r.nodes[r.order[k]];
        sum->assets[sum->n++] = n->res;
        memset(&n->res, 0, sizeof n->res);
        st_asset_result *a = &sum->assets[sum->n - 1];
        if (a->status == ST_AS_OK)
            sum->n_ok++;
        else if (a->status == ST_AS_FAILED) {
            sum->n_failed++;
            if (!first_err)
                first_err = a->key;
        } else if (a->status == ST_AS_SKIPPED)
            sum->n_skipped++;
        else if (a->status == ST_AS_OBSERVED)
            sum->n_observed++;
    }
    st_err e2;
    oh_run_end(o, sum, &e2);
    if (rc == ST_OK && sum->n_failed) {
        const st_asset_result *fa = NULL;
        for (size_t k = 0; k < sum->n && !fa; k++)
            if (sum->assets[k].status == ST_AS_FAILED)
                fa = &sum->assets[k];
        rc = st_fail(err, ST_ERR_REMOTE, "run %s: %zu asset(s) failed, %zu skipped; first: %s: %s",
                     sum->run_id, sum->n_failed, sum->n_skipped, fa->key,
                     fa->error ? fa->error : "failed");
    }
    for (size_t i = 0; i < d->n; i++) {
        st_free(r.nodes[i].res.key);
        st_free(r.nodes[i].res.partition);
        st_free(r.nodes[i].res.error);
        st_free(r.nodes[i].res.blocked_by);
    }
    st_free(sel);
    st_free(r.nodes);
    st_free(r.queue);
    st_free(r.order);
    if (out)
        *out = sum;
    else
        st_run_summary_free(sum);
    return rc;
fail:
    for (size_t i = 0; r.nodes && i < d->n; i++) {
        st_free(r.nodes[i].res.key);
        st_free(r.nodes[i].res.partition);
    }
    st_free(sel);
    st_free(r.nodes);
    st_free(r.queue);
    st_free(r.order);
    st_free(r.w);
    st_run_summary_free(sum);
    return rc;
}
