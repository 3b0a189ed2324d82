/*
 * kafka_src.h - the loader's Kafka source (`event_log: kafka`): a consumer
 * in the configured group that hands the loader records the way the file
 * log's reader does, and commits offsets only after the bronze commit.
 *
 * Positions: the loader works with one scalar position.  In Kafka mode it
 * is the sum over the topics' partitions of the next offset to load (0 for
 * a partition never committed), so it grows by one per record, and it is
 * what the Delta txn (appId "loader") records as version.  A record's seq
 * is that sum after the record minus one.  The per-partition ranges of the
 * batch being committed are written to <state database>.kafka-batch before the
 * first table commit, so a restart that finds a table ahead of the group's
 * committed offsets re-reads exactly that batch.
 *
 * Used by one thread (the loader's) except st_kafka_src_lag.
 */
#ifndef STRATA_LOAD_KAFKA_SRC_H
#define STRATA_LOAD_KAFKA_SRC_H

#include "strata/collect.h"

typedef struct st_kafka_src st_kafka_src;

/* Creates the consumer (group cfg->group_id, enable.auto.commit=false),
 * reads the topics' partitions and the group's committed offsets, and
 * subscribes.  The batch file is <state_path>.kafka-batch.  BORROWS cfg
 * and topics.  OWNED *out. */
st_rc st_kafka_src_open(const st_kafka_cfg *cfg, char *const *topics, size_t n_topics,
                        const char *state_path, st_kafka_src **out, st_err *err);
void st_kafka_src_close(st_kafka_src *s);
/* The committed position (sum of committed offsets). */
uint64_t st_kafka_src_position(const st_kafka_src *s);
/* Makes the next reads return exactly the batch that ended at `end` (a
 * table already holds it): ST_ERR_CORRUPT when the batch file does not
 * describe that batch from the current position. */
st_rc st_kafka_src_replay(st_kafka_src *s, uint64_t end, st_err *err);
/* Like st_evlog_read: up to max records, *out_n = 0 when every assigned
 * partition is at its end (or nothing arrived for a few seconds).  Records
 * are BORROWED until the next read, rewind or close. */
st_rc st_kafka_src_read(st_kafka_src *s, st_evlog_rec *recs, size_t max, size_t *out_n,
                        st_err *err);
/* Before the first table commit of a batch: writes the batch file. */
st_rc st_kafka_src_prepare(st_kafka_src *s, st_err *err);
/* After every table committed: commits the offsets (synchronously). */
st_rc st_kafka_src_commit(st_kafka_src *s, st_err *err);
/* After a failed batch: back to the committed offsets. */
st_rc st_kafka_src_rewind(st_kafka_src *s, st_err *err);
/* Records in the assigned partitions not yet committed (any thread). */
uint64_t st_kafka_src_lag(const st_kafka_src *s);

#endif
