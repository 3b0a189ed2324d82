/*
 * load_int.h - private to src/load: the in-memory event-id sets used for
 * deduplication (dedup.c) and helpers shared by registry.c and loader.c.
 */
#ifndef ST_LOAD_INT_H
#define ST_LOAD_INT_H

#include "strata/load.h"

/* Open-addressing set of 64-bit hashes (0 is stored out of band). */
typedef struct st_idset {
    uint64_t *slots;
    size_t cap;          /* power of two */
    size_t n;
    bool has_zero;
} st_idset;

void st_idset_init(st_idset *s);
void st_idset_free(st_idset *s);
bool st_idset_has(const st_idset *s, uint64_t h);
st_rc st_idset_add(st_idset *s, uint64_t h);
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
