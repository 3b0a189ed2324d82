/*
 * orch_bench.c - the orchestration figures:
 *   - overhead per asset run: N empty (no-op) assets run through st_orch_run
 *     with one worker, so the time is the orchestrator's own (selection,
 *     lock rows, history and input records, worker hand-off);
 *   - planning a 1,000-asset DAG: st_dag_build + st_orch_plan (which reads
 *     the run history and each table's Delta version) for 1,000 assets with
 *     1-3 inputs each, after one run so the history is not empty.
 *
 *   orch_bench [DIR] [N_EMPTY] [N_PLAN]
 * prints one line:
 *   orch empty_assets=... overhead_ms_per_asset=... plan_assets=... dag_build_ms=...
 *        plan_ms=... plan_total_ms=...
 */
#include "strata/orch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static st_rc noop(void *arg, st_asset_ctx *ctx, st_err *err)
{
    (void)arg;
    (void)ctx;
    (void)err;
    return ST_OK;
}

static int die(const st_err *err, const char *what)
{
    fprintf(stderr, "orch_bench: %s: %s\n", what, err->msg);
    return 1;
}

int main(int argc, char **argv)
{
    char tmpl[] = "/tmp/strata-orch-bench-XXXXXX";
    const char *dir = argc > 1 ? argv[1] : mkdtemp(tmpl);
    long n_empty = argc > 2 ? atol(argv[2]) : 200;
    long n_plan = argc > 3 ? atol(argv[3]) : 1000;
    st_err err;
    st_log_init();
    if (!dir || n_empty < 1 || n_plan < 1) {
        fprintf(stderr, "usage: orch_bench [DIR] [N_EMPTY] [N_PLAN]\n");
        return 2;
    }
    st_rmtree(dir, &err);
    if (st_mkdirs(dir, &err))
        return die(&err, "dir");
    /* 1: empty assets */
    char *d1 = st_path_join(dir, "empty");
    st_mkdirs(d1, &err);
    st_project *p = NULL;
    if (st_project_new(d1, &p, &err))
        return die(&err, "project");
    for (long i = 0; i < n_empty; i++) {
        char key[64];
        snprintf(key, sizeof key, "gold.empty_%05ld", i);
        if (!st_project_add_custom(p, key, NULL, NULL, noop, NULL, &err))
            return die(&err, "asset");
    }
    st_orch *o = NULL;
    if (st_orch_open(p, &o, &err))
        return die(&err, "open");
    st_run_opts ro = {.workers = 1};
    st_run_summary *s = NULL;
    int64_t t0 = st_mono_ns();
    if (st_orch_run(o, &ro, &s, &err))
        return die(&err, "run");
    double run_ms = (double)(st_mono_ns() - t0) / 1e6;
    st_run_summary_free(s);
    st_orch_close(o);
    st_project_free(p);
    /* 2: planning 1,000 assets */
    char *d2 = st_path_join(dir, "plan");
    st_mkdirs(d2, &err);
    if (st_project_new(d2, &p, &err))
        return die(&err, "project");
    unsigned seed = 42;
    for (long i = 0; i < n_plan; i++) {
        char key[64], in[3][64];
        const char *deps[4] = {NULL, NULL, NULL, NULL};
        const char *layer = i < n_plan / 10 ? "bronze" : i < n_plan / 2 ? "silver" : "gold";
        snprintf(key, sizeof key, "%s.t%05ld", layer, i);
        long n_in = i < n_plan / 10 ? 0 : 1 + rand_r(&seed) % 3;
        for (long k = 0; k < n_in; k++) {
            long j = rand_r(&seed) % (i < n_plan / 2 ? n_plan / 10 : i);
            const char *jl = j < n_plan / 10 ? "bronze" : j < n_plan / 2 ? "silver" : "gold";
            snprintf(in[k], sizeof in[k], "%s.t%05ld", jl, j);
            deps[k] = in[k];
        }
        if (!st_project_add_custom(p, key, deps, i % 7 ? NULL : "finance", noop, NULL, &err))
            return die(&err, "asset");
    }
    if (st_orch_open(p, &o, &err))
        return die(&err, "open");
    ro.workers = 2;
    if (st_orch_run(o, &ro, &s, &err))
        return die(&err, "run");
    st_run_summary_free(s);
    t0 = st_mono_ns();
    st_dag *dag = NULL;
    if (st_dag_build(p, &dag, &err))
        return die(&err, "dag");
    double dag_ms = (double)(st_mono_ns() - t0) / 1e6;
    st_dag_free(dag);
    t0 = st_mono_ns();
    st_plan *plan = NULL;
    if (st_orch_plan(o, "+tag:finance+", NULL, st_now_ms(), &plan, &err))
        return die(&err, "plan");
    double plan_ms = (double)(st_mono_ns() - t0) / 1e6;
    size_t planned = plan->n;
    st_plan_free(plan);
    printf("orch empty_assets=%ld overhead_ms_per_asset=%.2f plan_assets=%ld planned=%zu "
           "dag_build_ms=%.1f plan_ms=%.1f plan_total_ms=%.1f\n",
           n_empty, run_ms / (double)n_empty, n_plan, planned, dag_ms, plan_ms, dag_ms + plan_ms);
    st_orch_close(o);
    st_project_free(p);
    st_free(d1);
    st_free(d2);
    if (argc <= 1)
        st_rmtree(dir, &err);
    return 0;
}
