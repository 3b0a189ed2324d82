/*
 * load_int.h - private to src/load: the on-disk event-id hash runs used for
 * deduplication (dedup.c) and helpers shared by registry.c and loader.c.
 */
#ifndef ST_LOAD_INT_H
#define ST_LOAD_INT_H

#include "strata/load.h"

/* On-disk sorted runs of event-id hashes per event date (dedup.c), one
 * st_dedup per family rooted at its own directory. */
typedef struct st_dedup st_dedup;

st_rc st_dedup_open(const char *root, st_dedup **out, st_err *err);
void st_dedup_close(st_dedup *dd);
/* Removes every run (after a failed batch or a checkpoint mismatch). */
st_rc st_dedup_reset(st_dedup *dd, st_err *err);
/* Maps the runs of a date; *seeded false when it has none yet (the caller
 * seeds it from bronze with st_dedup_add, possibly with no hashes). */
st_rc st_dedup_day(st_dedup *dd, int32_t day, bool *seeded, st_err *err);
/* True when h is in a run of a date opened with st_dedup_day or added to. */
bool st_dedup_has(st_dedup *dd, int32_t day, uint64_t h);
/* Adds a run (h is sorted in place) and merges runs of similar size. */
st_rc st_dedup_add(st_dedup *dd, int32_t day, uint64_t *h, size_t n, st_err *err);
/* Deletes the runs of dates before oldest. */
st_rc st_dedup_forget_before(st_dedup *dd, int32_t oldest, st_err *err);
/* Runs a date holds now (for tests). */
size_t st_dedup_runs(const st_dedup *dd, int32_t day);
uint64_t st_id_hash(const char *id, size_t len);

/* A bronze column of a family: name, type, and the DuckDB SQL type. */
typedef struct st_bcol {
    const char *name;    /* BORROWED from a schema field or static */
    st_ftype type;
} st_bcol;

/* The union of the fields of every schema of family, in registration order,
 * without the envelope and bookkeeping columns.  OWNED *out (st_free).
 * ST_ERR_INVALID when two schemas give one column different types. */
st_rc st_registry_columns(const st_registry *r, const char *family, st_bcol **out, size_t *n_out,
                          st_err *err);
const char *st_ftype_sql(st_ftype t);
const char *st_ftype_name(st_ftype t);
/* Applies the module's state migrations (checkpoint, schemas, keys). */
st_rc st_load_state_migrate(st_state *state, st_err *err);

#endif
