/*
 * canon.h - the canonical row format of the Delta interoperability corpus
 * (../shared/delta-golden/MANIFEST.json "canonical_row_format"): one JSON
 * object per row with sorted keys, fixed number formats, sorted lines and a
 * SHA-256 over them.  Used by the Delta tests to compare query results.
 */
#ifndef ST_CANON_H
#define ST_CANON_H

#include "strata/core.h"
#include "strata/engine.h"

/* Runs sql on eng and renders every row; lines come back sorted by bytes.
 * OWNED *lines, release with canon_free. */
st_rc canon_rows(st_engine *eng, const char *sql, char ***lines, size_t *n_lines, st_err *err);
void canon_free(char **lines, size_t n);
/* Lowercase hex SHA-256 of the lines joined by '\n' (no trailing newline), OWNED. */
char *canon_sha256(char *const *lines, size_t n);

#endif
