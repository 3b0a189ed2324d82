/*
 * cmd_serve.c - `strata serve`: runs the HTTP event collector and the loader
 * thread until SIGINT or SIGTERM.  The collector itself is
 * src/collect/server.c, the loader src/load/; this file reads flags and
 * strata.yml and waits for a signal.  When the project declares schedules
 * (cron or on_upstream), one scheduler thread calls st_sched_tick (src/orch)
 * every minute; it alone uses the orchestrator handle, which is not
 * re-entrant.
 */
#include "cli.h"
#include "strata/collect.h"
#include "strata/load.h"
#include "strata/orch.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The scheduler thread and what it owns (project, orchestrator). */
typedef struct sched_thread {
    st_project *p;
    st_orch *o;
    int64_t tick_ms;           /* 0 = on every minute boundary */
    pthread_t th;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
} sched_thread;

/* Milliseconds until the next tick: the next minute boundary (cron has
 * minute resolution), or tick_ms when set. */
static int64_t next_tick_ms(const sched_thread *s, int64_t now)
{
    if (s->tick_ms > 0)
        return now + s->tick_ms;
    return now - now % 60000 + 60000 + 50;
}

static void *sched_main(void *arg)
{
    sched_thread *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        pthread_mutex_unlock(&s->mu);
        st_err err;
        memset(&err, 0, sizeof err);
        st_run_summary *sum = NULL;
        if (st_sched_tick(s->o, st_now_ms(), &sum, &err) != ST_OK)
            st_warn("scheduler: %s", err.msg);
        if (sum)
            st_info("scheduler: run %s: %zu ok, %zu failed, %zu skipped", sum->run_id, sum->n_ok,
                    sum->n_failed, sum->n_skipped);
        st_run_summary_free(sum);
        int64_t at = next_tick_ms(s, st_now_ms());
        struct timespec ts = {(time_t)(at / 1000), (long)(at % 1000) * 1000000L};
        pthread_mutex_lock(&s->mu);
        while (!s->stop && st_now_ms() < at)
            if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT)
                break;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Starts the scheduler when the project in dir has scheduled assets.  A
 * project that does not load leaves the collector running without it. */
static st_rc sched_start(sched_thread *s, const char *dir, int64_t tick_ms, st_err *err)
{
    memset(s, 0, sizeof *s);
    s->tick_ms = tick_ms;
    st_err perr;
    memset(&perr, 0, sizeof perr);
    if (st_project_load(dir, &s->p, &perr) != ST_OK) {
        st_warn("scheduler off: project %s: %s", dir, perr.msg);
        return ST_OK;
    }
    size_t n = 0;
    for (size_t i = 0; i < s->p->n_assets; i++)
        n += s->p->assets[i]->schedule || s->p->assets[i]->on_upstream;
    if (!n) {
        st_project_free(s->p);
        s->p = NULL;
        return ST_OK;
    }
    st_rc rc = st_orch_open(s->p, &s->o, err);
    if (rc) {
        st_err_ctx(err, "scheduler for project %s", dir);
        return rc;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    int e = pthread_create(&s->th, NULL, sched_main, s);
    if (e != 0) {
        errno = e;
        return st_fail_errno(err, ST_ERR_IO, "scheduler thread");
    }
    s->started = true;
    st_info("scheduler: %zu scheduled asset(s), tick every %s", n,
            tick_ms > 0 ? "--tick-ms" : "minute");
    return ST_OK;
}

/* Stops the thread (a tick in progress finishes first) and frees it all. */
static void sched_stop(sched_thread *s)
{
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->th, NULL);
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        s->started = false;
    }
    st_orch_close(s->o);
    st_project_free(s->p);
    s->o = NULL;
    s->p = NULL;
}

static uint64_t loader_lag(void *t)
{
    return st_loader_thread_lag(t);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: strata serve [--project DIR | --config FILE] [--listen HOST:PORT]\n"
               "                    [--tick-ms N]\n"
               "\n"
               "Runs the event collector: POST /v1/events, POST /v1/event, GET /healthz,\n"
               "/readyz, /metrics and /v1/tracker.js.  Settings come from the collector:\n"
               "section of strata.yml (see docs/ingestion.md).  --listen overrides\n"
               "collector.listen; port 0 picks a free port.  Prints 'listening on HOST:PORT'.\n"
               "The loader runs as a thread (loader: section; loader.enabled: false turns it\n"
               "off) and loads durable events into the raw and bronze tables.\n"
               "When the project has schedules (schedule:, on_upstream), a scheduler thread\n"
               "runs them: one tick at start, then every minute (--tick-ms N: every N ms,\n"
               "for tests).\n");
}

int cmd_serve(int argc, char **argv)
{
    const char *project = NULL, *config = NULL, *listen = NULL;
    int64_t tick_ms = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return ST_EXIT_OK;
        }
        if (i + 1 >= argc || (strcmp(a, "--project") && strcmp(a, "--config") &&
                              strcmp(a, "--listen") && strcmp(a, "--tick-ms"))) {
            fprintf(stderr, "strata serve: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return ST_EXIT_USAGE;
        }
        if (!strcmp(a, "--project")) {
            project = argv[++i];
        } else if (!strcmp(a, "--config")) {
            config = argv[++i];
        } else if (!strcmp(a, "--tick-ms")) {
            char *end = NULL;
            long long v = strtoll(argv[++i], &end, 10);
            if (!end || *end || v < 10 || v > 3600000) {
                fprintf(stderr, "strata serve: --tick-ms expects 10..3600000, got '%s'\n",
                        argv[i]);
                return ST_EXIT_USAGE;
            }
            tick_ms = v;
        } else {
            listen = argv[++i];
        }
    }
    st_err err;
    st_cfg_doc *doc = NULL;
    st_collect_cfg *cfg = NULL;
    st_collector *col = NULL;
    st_loader_cfg *lcfg = NULL;
    st_loader *ldr = NULL;
    st_loader_thread *lth = NULL;
    sched_thread sched;
    memset(&sched, 0, sizeof sched);
    char *path = config ? st_strdup(config) : st_path_join(project ? project : ".", "strata.yml");
    char *base = NULL;
    int code = ST_EXIT_ERROR;
    if (!path) {
        st_fail(&err, ST_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (st_cfg_load_file(path, &doc, &err))
        goto fail;
    {
        const char *slash = strrchr(path, '/');
        base = slash ? st_strndup(path, (size_t)(slash - path)) : st_strdup(".");
        if (slash == path) {
            st_free(base);
            base = st_strdup("/");
        }
    }
    if (st_collect_cfg_load(st_cfg_root(doc), base, &cfg, &err))
        goto fail;
    if (listen && st_collect_cfg_set_listen(cfg, listen, &err))
        goto fail;
    if (st_loader_cfg_load(st_cfg_root(doc), base, &lcfg, &err))
        goto fail;
    /* beside the collector the loader stages on one thread unless told
     * otherwise: two take both cores in bursts and the collector's answers
     * wait (p99 at a steady 5K events/s: 1.5-2.0 ms with one, 2.8-4.4 ms
     * with two, measured side by side) */
    if (lcfg->stage_threads == 0)
        lcfg->stage_threads = 1;
    /* the loader reads the log this collector writes */
    st_free(lcfg->log_dir);
    lcfg->log_dir = st_strdup(cfg->log_dir);
    if (!lcfg->log_dir) {
        st_fail(&err, ST_ERR_NOMEM, "out of memory");
        goto fail;
    }

    /* signals go to this thread only, so the server threads never see them */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (st_collector_start(cfg, &col, &err))
        goto fail;
    if (lcfg->enabled) {
        if (st_loader_open(lcfg, &ldr, &err))
            goto fail;
        /* only fsync'd records are loaded: a torn tail never reaches bronze */
        if (st_loader_thread_start(ldr, st_collector_durable_seq, col, &lth, &err))
            goto fail;
        ldr = NULL;   /* the thread owns it */
        st_collector_set_lag_fn(col, loader_lag, lth);
    }
    /* the scheduler reads the project of this strata.yml (not of a
     * collector-only --config file with another name) */
    {
        const char *slash = strrchr(path, '/');
        bool is_project = !strcmp(slash ? slash + 1 : path, "strata.yml");
        if (is_project && sched_start(&sched, base, tick_ms, &err))
            goto fail;
    }
    const char *h = cfg->listen_host;
    printf("listening on %s:%d\n", h, st_collector_port(col));
    fflush(stdout);
    if (cfg->kafka)
        st_info("collector: events to Kafka %s (topics %s<source>), %zu sources, acks on delivery",
                cfg->kafka->brokers, cfg->kafka->topic_prefix, cfg->n_sources);
    else
        st_info("collector: event log in %s, %zu sources, %s", cfg->log_dir, cfg->n_sources,
                cfg->durable ? "durable acks" : "acks before fsync");
    int sig = 0;
    sigwait(&set, &sig);
    st_info("collector: signal %d, stopping", sig);
    code = ST_EXIT_OK;
    goto out;
fail:
    cli_fail(&err);
out:
    sched_stop(&sched);   /* a tick in progress finishes first */
    if (col)
        st_collector_set_lag_fn(col, NULL, NULL);
    st_loader_thread_stop(lth);   /* a last pass over what is durable */
    st_loader_close(ldr);
    st_collector_stop(col);
    st_loader_cfg_free(lcfg);
    st_collect_cfg_free(cfg);
    st_cfg_doc_free(doc);
    st_free(path);
    st_free(base);
    return code;
}
