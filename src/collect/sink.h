/*
 * sink.h - private to src/collect: the seam between the HTTP collector
 * (server.c) and the place where events become durable.  The file event log
 * (evlog.c, `event_log.kind: local`) implements it; a Kafka producer
 * (`event_log.kind: kafka`) implements the same five calls with delivery
 * reports standing in for fsync.
 *
 * Contract, for every implementation:
 *   append      takes n_records framed records (a concatenation of
 *               st_evlog_frame output: u32 len, u32 crc32c, data) of one
 *               request, all of them or none.  It copies what it needs
 *               before returning (framed is BORROWED for the call only) and
 *               never blocks on I/O.  *out_ticket names the request's records
 *               for on_durable.  Codes: ST_ERR_LIMIT when the sink cannot
 *               take more now (queue full, disk low: the server answers 503
 *               or 429 with Retry-After), ST_ERR_IO when it failed or is
 *               stopped (503).  source is the configured source name the
 *               records came from (a Kafka sink picks its topic by it).
 *   on_durable  arranges for done(arg, rc) to be called exactly once: rc ==
 *               ST_OK when every record of ticket is durable (fsync'd /
 *               acknowledged by all in-sync replicas), ST_ERR_IO when it
 *               never will be (write or fsync failed, delivery failed, sink
 *               stopped before it got there).  done may run before
 *               on_durable returns (on the caller's thread) or later on a
 *               sink thread; it must be quick, must not block and must not
 *               call back into the sink.  Tickets may complete in any order.
 *   stats       fills the counters behind /metrics and /readyz; fields that
 *               mean nothing for a sink stay 0 (fsync_* then measure the
 *               time to durability of one batch, whatever the mechanism).
 *   stop        refuses further appends, makes what is queued durable if it
 *               can, and has called every registered done before returning;
 *               on_durable after stop calls done at once.  Thread-safe.
 *   close       frees everything (after stop; NULL self is fine).
 *
 * The server holds one st_sink by value; self is OWNED by it and released by
 * ops->close.
 */
#ifndef ST_COLLECT_SINK_H
#define ST_COLLECT_SINK_H

#include "strata/collect.h"

typedef void (*st_sink_done_fn)(void *arg, st_rc rc);

typedef struct st_sink_ops {
    const char *kind; /* "local", "kafka": the event_log.kind it implements */
    st_rc (*append)(void *self, const char *source, const void *framed, size_t len,
                    size_t n_records, uint64_t *out_ticket, st_err *err);
    void (*on_durable)(void *self, uint64_t ticket, st_sink_done_fn done, void *arg);
    void (*stats)(void *self, st_evlog_stats *out);
    void (*stop)(void *self);
    void (*close)(void *self);
} st_sink_ops;

typedef struct st_sink {
    const st_sink_ops *ops;
    void *self;
} st_sink;

/* The file event log as a sink: self = log, tickets are sequence numbers
 * (st_evlog_append), durability is durable_seq.  close calls st_evlog_close.
 * Takes ownership of log. */
void st_evlog_sink(st_evlog *log, st_sink *out);

/* Calls done(arg, rc) once every record below ticket is fsync'd (ST_OK) or
 * the log failed or stopped first (ST_ERR_IO); from the committer thread, or
 * at once when that is already known.  done must not call into the log. */
void st_evlog_on_durable(st_evlog *log, uint64_t ticket, st_sink_done_fn done, void *arg);

#endif
