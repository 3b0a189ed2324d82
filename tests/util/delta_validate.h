/*
 * delta_validate.h - protocol invariant checks for Delta tables written by
 * Strata, used by the delta tests after every write.
 */
#ifndef ST_DELTA_VALIDATE_H
#define ST_DELTA_VALIDATE_H

#include "strata/core.h"
#include "strata/engine.h"

/* Checks: contiguous commits (from 0 or after the oldest checkpoint), one
 * action per line, commitInfo in every commit, protocol+metaData first in
 * version 0, no duplicate path/metaData/protocol/appId in a commit,
 * relative well-encoded paths of existing files, partitionValues keyed by
 * the partition columns with string/null values, stats numRecords equal to
 * the Parquet row count, checkpoint file set equal to the replayed state,
 * and _last_checkpoint consistent.  ST_OK or an error naming the problem. */
st_rc st_test_delta_validate(const char *table_path, st_engine *eng, st_err *err);

#endif
