/*
 * kafka.h - the Kafka event sink of `strata serve` (`event_log: kafka`):
 * an idempotent librdkafka producer (acks=all) that publishes each accepted
 * event to the topic <topic_prefix><source> and tells the caller when every
 * event of a request has its delivery report.
 *
 * It is the second implementation of the collector's sink (sink.h,
 * st_kafka_sink_open): a request's framed records (st_evlog_frame output)
 * go in with one call that returns a ticket; the ticket completes when the
 * brokers acknowledged every record (ST_OK) or at least one failed
 * (ST_ERR_IO / ST_ERR_LIMIT).  A 2xx may be sent only on ST_OK.  The
 * st_kafka_* calls below are the same thing without the sink table.
 *
 * Thread safety: every function may be called from any thread; a ticket is
 * waited on (or handed to a callback) exactly once.
 */
#ifndef STRATA_COLLECT_KAFKA_H
#define STRATA_COLLECT_KAFKA_H

#include "strata/collect.h"
#include "collect/sink.h"

typedef struct st_kafka_producer st_kafka_producer;
typedef struct st_kafka_ticket st_kafka_ticket;

typedef struct st_kafka_stats {
    uint64_t n_records;         /* records handed to librdkafka */
    uint64_t n_bytes;           /* their payload bytes */
    uint64_t n_delivered;       /* acknowledged by the brokers (acks=all) */
    uint64_t n_failed;          /* delivery reports with an error */
    uint64_t in_flight;         /* produced, no delivery report yet */
    bool failed;                /* a fatal producer error: every append is refused */
} st_kafka_stats;

/* Creates the producer (bootstrap.servers = cfg->brokers, acks=all,
 * enable.idempotence=true, then cfg's properties and producer_properties)
 * and its delivery-report thread.  BORROWS cfg.  OWNED *out. */
st_rc st_kafka_producer_open(const st_kafka_cfg *cfg, st_kafka_producer **out, st_err *err);
/* Waits up to timeout_ms for what is in flight, then destroys.  NULL is fine. */
void st_kafka_producer_close(st_kafka_producer *p, int timeout_ms);

/* Produces the n_records framed records in [framed, framed+len) to the
 * source's topic.  *out is the request's ticket (also when some records
 * could not be queued: the ticket then completes with that error).
 * Returns ST_ERR_IO after a fatal producer error (nothing produced, *out
 * NULL) and ST_ERR_PARSE for bad framing. */
st_rc st_kafka_append(st_kafka_producer *p, const char *source, const void *framed, size_t len,
                      size_t n_records, st_kafka_ticket **out, st_err *err);
/* Blocks until every record of t has its delivery report and frees t.
 * ST_OK only when all were acknowledged; else ST_ERR_LIMIT (local queue
 * full) or ST_ERR_IO with the broker error in err. */
st_rc st_kafka_wait(st_kafka_ticket *t, st_err *err);
/* Instead of waiting: fn(arg, rc) is called once, from the delivery-report
 * thread (or at once when already complete), then t is freed.  A failure's
 * message is logged. */
void st_kafka_ticket_notify(st_kafka_ticket *t, st_sink_done_fn fn, void *arg);
/* Refuses further appends, waits up to timeout_ms for what is in flight,
 * then fails what is left, so every ticket has completed on return. */
void st_kafka_producer_stop(st_kafka_producer *p, int timeout_ms);
/* The producer as the collector's sink (tickets are the st_kafka_ticket
 * pointers; stats map onto st_evlog_stats: n_records, n_bytes,
 * pending_records = in flight, fsync_* = time from produce to the last
 * delivery report of a request, failed).  BORROWS cfg. */
st_rc st_kafka_sink_open(const st_kafka_cfg *cfg, st_sink *out, st_err *err);

void st_kafka_stats_get(st_kafka_producer *p, st_kafka_stats *out);

/* Topic of a source: prefix + source into out[cap]; false when too long. */
bool st_kafka_topic_name(const st_kafka_cfg *cfg, const char *source, char *out, size_t cap);

/* Applies "key", "value" pairs to a librdkafka configuration (void * so this
 * header needs no rdkafka.h); err names the failing key. */
st_rc st_kafka_conf_apply(void *rd_conf, char *const *pairs, size_t n_pairs, const char *what,
                          st_err *err);

#endif
