/*
 * cmd_serve.c - `strata serve`: runs the HTTP event collector and the loader
 * thread until SIGINT or SIGTERM.  The collector itself is
 * src/collect/server.c, the loader src/load/; this file reads flags and
 * strata.yml and waits for a signal.
 */
#include "cli.h"
#include "strata/collect.h"
#include "strata/load.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static uint64_t loader_lag(void *t)
{
    return st_loader_thread_lag(t);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: strata serve [--project DIR | --config FILE] [--listen HOST:PORT]\n"
               "\n"
               "Runs the event collector: POST /v1/events, POST /v1/event, GET /healthz,\n"
               "/readyz, /metrics and /v1/tracker.js.  Settings come from the collector:\n"
               "section of strata.yml (see docs/ingestion.md).  --listen overrides\n"
               "collector.listen; port 0 picks a free port.  Prints 'listening on HOST:PORT'.\n"
               "The loader runs as a thread (loader: section; loader.enabled: false turns it\n"
               "off) and loads durable events into the raw and bronze tables.\n");
}

int cmd_serve(int argc, char **argv)
{
    const char *project = NULL, *config = NULL, *listen = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return ST_EXIT_OK;
        }
        if (i + 1 >= argc || (strcmp(a, "--project") && strcmp(a, "--config") && strcmp(a, "--listen"))) {
            fprintf(stderr, "strata serve: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return ST_EXIT_USAGE;
        }
        if (!strcmp(a, "--project"))
            project = argv[++i];
        else if (!strcmp(a, "--config"))
            config = argv[++i];
        else
            listen = argv[++i];
    }
    st_err err;
    st_cfg_doc *doc = NULL;
    st_collect_cfg *cfg = NULL;
    st_collector *col = NULL;
    st_loader_cfg *lcfg = NULL;
    st_loader *ldr = NULL;
    st_loader_thread *lth = NULL;
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
    const char *h = cfg->listen_host;
    printf("listening on %s:%d\n", h, st_collector_port(col));
    fflush(stdout);
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
