/*
 * state.h - the platform's state database (SQLite, default ./state.db).
 *
 * One file holds the run history and progress of every module (extraction
 * runs and chunks today; the orchestrator adds its own tables later).  Each
 * module owns a list of schema migrations; st_state_migrate applies the ones
 * not yet recorded in the `st_migrations` table, each in its own
 * transaction, so modules evolve their tables independently.
 *
 * Thread-safety: one st_state may be shared by threads; every call below
 * takes the handle's mutex.  Raw access through st_state_db() must be wrapped
 * in st_state_lock()/st_state_unlock().
 */
#ifndef STRATA_STATE_H
#define STRATA_STATE_H

#include "strata/core.h"

#include <sqlite3.h>

typedef struct st_state st_state;

/* Opens (creating if absent) the state database at path in WAL mode.
 * @param[out] out OWNED, close with st_state_close. */
st_rc st_state_open(const char *path, st_state **out, st_err *err);
void st_state_close(st_state *s);

/* BORROWED handle, valid until st_state_close.  Hold the lock while using it. */
sqlite3 *st_state_db(st_state *s);
void st_state_lock(st_state *s);
void st_state_unlock(st_state *s);

/* Applies migrations[version..n-1] of `module` (version = how many are
 * recorded).  Each entry is one SQL script.  A database that records more
 * migrations than the binary knows fails with ST_ERR_CORRUPT. */
st_rc st_state_migrate(st_state *s, const char *module, const char *const *migrations, size_t n,
                       st_err *err);
/* Schema version of module (0 when never migrated). */
st_rc st_state_version(st_state *s, const char *module, int64_t *out, st_err *err);

/* Runs SQL with no result (several statements allowed). */
st_rc st_state_exec(st_state *s, const char *sql, st_err *err);

#endif
