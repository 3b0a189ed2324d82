/*
 * orch_int.h - internals of the orchestrator shared by its files:
 *   history.c  state tables (migrations), runs, materialisations, logs, locks
 *   run.c      the parallel executor (workers, timeouts, retries)
 *   asset.c    the body of each asset kind (extract, silver, gold, custom)
 *   render.c   the SQL template ({{ ref() }}, {{ this }}, partitions)
 *   quality.c  data quality checks and the _system.quality_results table
 *   lineage.c  OpenLineage events (file or HTTP)
 *   plan.c     plans; sched.c schedules; backfill.c partitions and backfills
 */
#ifndef ST_ORCH_INT_H
#define ST_ORCH_INT_H

#include "strata/delta.h"
#include "strata/orch.h"

#include <pthread.h>

struct st_orch {
    const st_project *p;   /* BORROWED */
    st_state *state;       /* OWNED */
    st_dag *dag;           /* OWNED */
    pthread_mutex_t mu;    /* serialises quality-result commits and lineage output */
};

/* ---- history.c ---- */
st_rc oh_migrate(st_state *s, st_err *err);
st_rc oh_run_begin(st_orch *o, const char *run_id, const char *trigger, const char *selection,
                   st_err *err);
st_rc oh_run_end(st_orch *o, const st_run_summary *s, st_err *err);
/* Records one materialisation (any status) and the stamps of its inputs;
 * *out_id (may be NULL) receives its row id. */
st_rc oh_mat_insert(st_orch *o, const char *run_id, const st_asset_result *r, int64_t started_ms,
                    int64_t finished_ms, const char *const *inputs, const int64_t *stamps,
                    size_t n_inputs, int64_t *out_id, st_err *err);
void oh_log(st_orch *o, const char *run_id, const char *asset, const char *level,
            const char *msg);
/* Takes the run lock of asset; ST_ERR_CONFLICT naming the holder when a
 * live process holds it (a dead holder's lock is taken over). */
st_rc oh_lock(st_orch *o, const char *asset, const char *run_id, st_err *err);
void oh_unlock(st_orch *o, const char *asset, const char *run_id);
/* The stamp of input as read by the latest successful materialisation of
 * asset; -1 when none. */
int64_t oh_input_stamp(st_orch *o, const char *asset, const char *input);
/* Finish time of the latest successful materialisation, -1 when none. */
int64_t oh_last_ok_ms(st_orch *o, const char *asset);
/* Row id of the latest successful materialisation, -1 when none. */
int64_t oh_last_ok_id(st_orch *o, const char *asset);

/* The current stamp of an asset: its table's latest Delta version, else
 * (tables that do not exist, custom assets) the id of its latest
 * successful materialisation, else -1. */
int64_t orch_stamp(st_orch *o, const st_asset_def *a);

/* ---- asset.c ---- */
/* Runs one attempt of asset a (not SOURCE) in ctx. */
st_rc orch_exec(st_orch *o, st_asset_ctx *ctx, st_err *err);
/* Mounts the table of key as the view "layer"."table" in eng; *out_exists
 * false (and ST_OK) when the table does not exist. */
st_rc orch_mount(st_orch *o, st_engine *eng, const char *key, bool *out_exists, st_err *err);
/* The replace_where predicate of one partition of a, OWNED; start/end
 * (may be NULL) receive the DATE bounds for day/month (OWNED). */
st_rc orch_part_pred(const st_asset_def *a, const char *partition, char **out_pred,
                     char **out_start, char **out_end, st_err *err);

/* ---- quality.c ---- */
/* Appends check results to <lake>/_system/quality_results (created on first use). */
st_rc orch_quality_record(st_orch *o, st_engine *eng, const char *run_id, const st_asset_def *a,
                          const char *partition, const st_check_result *r, size_t n,
                          st_err *err);

/* ---- lineage.c ---- */
/* Emits one OpenLineage RunEvent (START, COMPLETE, FAIL) for asset a when
 * the project configures lineage; failures are logged, never fatal. */
void orch_lineage(st_orch *o, st_engine *eng, const char *event, const char *lineage_run_id,
                  const char *parent_run_id, const st_asset_def *a, const char *error);
/* The event as JSON (for tests and the HTTP transport), OWNED. */
char *orch_lineage_json(st_orch *o, st_engine *eng, const char *event, const char *lineage_run_id,
                        const char *parent_run_id, const st_asset_def *a, const char *error);

/* ---- ctx private part (run.c) ---- */
typedef struct orch_ctx_priv {
    st_orch *o;
    st_buf log;            /* lines logged by the body, flushed to orch_logs */
} orch_ctx_priv;

#endif
