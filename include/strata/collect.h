/*
 * collect.h - the HTTP event collector and the raw event log.
 *
 * Pieces, each usable on its own:
 *   - st_crc32c: CRC-32C (Castagnoli), SSE 4.2 or slicing-by-8 tables;
 *   - st_collect_split: finds the events in a request body (JSON array or
 *     NDJSON) and checks JSON syntax, UTF-8, depth and size bounds;
 *   - st_envelope_parse / st_envelope_record: validates one event envelope and
 *     builds the record stored in the log (the event as sent plus the fields
 *     the server adds);
 *   - st_evlog: the durable raw event log (length+CRC32C framed records in
 *     segment files, group commit, roll, zstd seal, torn-tail recovery,
 *     retention) and its reader for the loader;
 *   - st_collect_cfg: the `collector:` section of strata.yml;
 *   - st_collector: the libmicrohttpd server tying them together.
 *
 * Thread safety: st_evlog_append/wait/stats may be called from any thread;
 * a reader is used by one thread at a time.  Everything else is plain data.
 */
#ifndef STRATA_COLLECT_H
#define STRATA_COLLECT_H

#include "strata/core.h"

/* ---- CRC-32C ---- */
/* Extends crc (0 to start) over data.  Known value: "123456789" -> 0xE3069283. */
uint32_t st_crc32c(uint32_t crc, const void *data, size_t len);
/* The table-driven version, whatever the CPU has (tests compare the two). */
uint32_t st_crc32c_sw(uint32_t crc, const void *data, size_t len);

/* ---- body splitting ---- */
typedef struct st_span {
    const char *p;   /* BORROWED from the body */
    size_t len;
} st_span;

typedef struct st_split_limits {
    size_t max_events;       /* more events than this -> ST_ERR_LIMIT */
    size_t max_event_bytes;  /* one event larger than this -> ST_ERR_LIMIT */
    int max_depth;           /* nesting deeper than this -> ST_ERR_PARSE (<= 64) */
} st_split_limits;

/* Finds the top-level values of body: the elements of a JSON array when the
 * body starts with '[', else whitespace/newline separated values (NDJSON).
 * Every value is checked for JSON syntax and UTF-8.  Spans are written to
 * out[0..cap); *out_n receives the count.  On failure *out_bad_index (if not
 * NULL) names the event index at fault and err->msg says what is wrong
 * ("event 3: invalid UTF-8 in string at byte 120").  Codes: ST_ERR_PARSE
 * (malformed), ST_ERR_LIMIT (too many, too large), ST_ERR_INVALID (empty). */
st_rc st_collect_split(const char *body, size_t len, const st_split_limits *lim, st_span *out,
                       size_t cap, size_t *out_n, size_t *out_bad_index, st_err *err);

/* Checks that [p, p+len) is exactly one JSON value (with surrounding
 * whitespace) no deeper than max_depth. */
st_rc st_json_check(const char *p, size_t len, int max_depth, st_err *err);

/* ---- envelopes ---- */
#define ST_EVENT_ID_MAX 128
#define ST_EVENT_TYPE_MAX 128
#define ST_SUBJECT_ID_MAX 256

typedef struct st_envelope {
    char event_id[ST_EVENT_ID_MAX + 1];
    char event_type[ST_EVENT_TYPE_MAX + 1]; /* as sent, e.g. "page_view" or "web_events.page_view" */
    char family[ST_EVENT_TYPE_MAX + 1];     /* the part before '.', "" when event_type has none */
    char schema_version[32];
    int64_t event_time_us;                  /* µs since the epoch, UTC */
    bool has_sent_at;
    int64_t sent_at_us;
    char country[3];                        /* "" when absent */
    bool has_subject_id;
} st_envelope;

/* Validates one event envelope (a JSON object; any bytes are safe to pass).
 * Rules: keys limited to the envelope fields, no duplicates; event_id,
 * event_type, schema_version and event_time required; see docs/ingestion.md.
 * On failure returns ST_ERR_INVALID (or ST_ERR_PARSE for non-JSON) with
 * err->msg naming the field, e.g. "event_time: not an RFC 3339 timestamp". */
st_rc st_envelope_parse(const char *p, size_t len, st_envelope *out, st_err *err);

/* Appends the stored record to out: the event object as sent with
 * "received_at", "source", "family" and, when sent_at was given,
 * "event_time_corrected" = event_time + (received_at - sent_at) added in front.
 * raw must be the object span that st_envelope_parse accepted. */
st_rc st_envelope_record(st_buf *out, const char *raw, size_t raw_len, const st_envelope *env,
                         const char *source, const char *family, int64_t received_us);

/* RFC 3339 "2025-01-02T03:04:05.678Z" / "+01:00" -> µs since epoch. */
bool st_rfc3339_parse(const char *s, size_t len, int64_t *out_us);
/* µs since epoch -> "YYYY-MM-DDTHH:MM:SS.mmmmmmZ" into out[32]. */
void st_rfc3339_format(int64_t us, char out[32]);

/* ---- raw event log ---- */
typedef struct st_evlog st_evlog;
typedef struct st_evlog_reader st_evlog_reader;

typedef struct st_evlog_opts {
    const char *dir;            /* created (mode 0700) if absent */
    int64_t fsync_ms;           /* upper bound on the wait before an fsync starts; the committers
                                 * never wait on purpose (an idle one flushes at once), so this
                                 * only documents the durability delay (0 = at once) */
    size_t fsync_bytes;         /* ... likewise for bytes waiting (0 = 1 MiB) */
    size_t segment_bytes;       /* roll after this size (0 = 64 MiB) */
    int64_t segment_ms;         /* roll after this age (0 = never by time) */
    int retention_days;         /* delete closed segments older than this (0 = keep) */
    bool compress;              /* zstd-compress closed segments */
    int zstd_level;             /* 0 = 3 */
    size_t max_pending_bytes;   /* appends beyond this wait in memory -> ST_ERR_LIMIT (0 = 64 MiB) */
    uint64_t min_free_bytes;    /* refuse appends when the disk has less free (0 = no check) */
    int commit_threads;         /* fsyncs in flight at once, one per committer thread (0 = 1) */
} st_evlog_opts;

typedef struct st_evlog_stats {
    uint64_t next_seq;          /* sequence number of the next record */
    uint64_t durable_seq;       /* every record below this is fsync'd */
    uint64_t n_records;         /* appended since open */
    uint64_t n_bytes;           /* framed bytes appended since open */
    uint64_t n_fsync;
    uint64_t fsync_ns_total;
    uint64_t fsync_ns_max;
    uint64_t fsync_hist[10];    /* counts per bucket, see ST_EVLOG_FSYNC_BUCKETS_US */
    size_t pending_bytes;       /* queue depth */
    size_t pending_records;
    uint64_t n_segments_sealed;
    bool disk_low;
    bool failed;                /* an fsync/write failed: the log refuses appends */
} st_evlog_stats;
/* Upper bounds (µs) of fsync_hist buckets; the last is +Inf. */
#define ST_EVLOG_FSYNC_BUCKETS_US {250, 500, 1000, 2000, 5000, 10000, 25000, 100000, 1000000, -1}

/* Opens (recovering a torn tail of the active segment) and starts the
 * committer and sealer threads.  OWNED *out, close with st_evlog_close. */
st_rc st_evlog_open(const st_evlog_opts *opts, st_evlog **out, st_err *err);
/* Commits what is pending, stops the threads, closes.  NULL is fine. */
void st_evlog_close(st_evlog *log);

/* Appends one record framing (len, crc) + data to out.  Call outside any lock. */
st_rc st_evlog_frame(st_buf *out, const void *data, size_t len);
/* Queues n_records already framed records (a concatenation of
 * st_evlog_frame output) for the committer.  *out_ticket is the sequence
 * number after the last one; pass it to st_evlog_wait.  ST_ERR_LIMIT when the
 * queue is full or the disk low (answer 503), ST_ERR_IO when the log failed.
 * *out_first_seq (may be NULL) receives the first record's sequence number. */
st_rc st_evlog_append(st_evlog *log, const void *framed, size_t len, size_t n_records,
                      uint64_t *out_first_seq, uint64_t *out_ticket, st_err *err);
/* Blocks until every record below ticket is fsync'd (ST_OK) or the log
 * failed (ST_ERR_IO). */
st_rc st_evlog_wait(st_evlog *log, uint64_t ticket, st_err *err);
void st_evlog_stats_get(st_evlog *log, st_evlog_stats *out);
/* Deletes closed segments last written before now_ms - retention_days. */
st_rc st_evlog_retain(st_evlog *log, int64_t now_ms, size_t *out_removed, st_err *err);
/* Closes the active segment now and seals it (for tests and shutdown tools). */
st_rc st_evlog_roll(st_evlog *log, st_err *err);
/* Waits until the sealer has nothing queued (tests). */
void st_evlog_seal_wait(st_evlog *log);

/* A position in the log: segment id (= sequence number of its first record),
 * byte offset in the uncompressed segment, and the sequence number there. */
typedef struct st_evlog_pos {
    uint64_t segment;
    uint64_t offset;
    uint64_t seq;
} st_evlog_pos;

typedef struct st_evlog_rec {
    uint64_t seq;
    const char *data;   /* BORROWED: valid until the next st_evlog_read or close */
    size_t len;
} st_evlog_rec;

/* Opens a reader on dir (a log another thread or process may be writing).
 * at == NULL starts at the oldest record.  A reader sees records once they
 * are written; they may not be fsync'd yet (see st_evlog_stats.durable_seq). */
st_rc st_evlog_reader_open(const char *dir, const st_evlog_pos *at, st_evlog_reader **out,
                           st_err *err);
/* Opens at the record with sequence number seq (or the first one after it
 * that still exists; or the end). */
st_rc st_evlog_reader_open_seq(const char *dir, uint64_t seq, st_evlog_reader **out,
                               st_err *err);
/* Reads up to max records into recs; *out_n = 0 at the current end of the
 * log (call again later).  Reads active and sealed (.zst) segments. */
st_rc st_evlog_read(st_evlog_reader *r, st_evlog_rec *recs, size_t max, size_t *out_n,
                    st_err *err);
/* The position of the next record to read. */
void st_evlog_reader_pos(const st_evlog_reader *r, st_evlog_pos *out);
void st_evlog_reader_close(st_evlog_reader *r);

/* ---- Kafka mode (`event_log: kafka`) ---- */
/* The `collector.kafka:` section, shared by the producer in `strata serve`
 * and the loader's consumer.  Topics are topic_prefix + source name. */
typedef struct st_kafka_cfg {
    char *brokers;              /* OWNED: bootstrap.servers */
    char *topic_prefix;         /* OWNED: "strata." */
    char *group_id;             /* OWNED: the loader's consumer group, "strata-loader" */
    char **props;               /* OWNED: key, value, key, value... for both clients */
    size_t n_props;             /* pairs */
    char **producer_props;      /* OWNED: pairs for the producer only */
    size_t n_producer_props;
    char **consumer_props;      /* OWNED: pairs for the consumer only */
    size_t n_consumer_props;
} st_kafka_cfg;

/* Reads a `kafka:` map (brokers, topic_prefix, group_id, properties,
 * producer_properties, consumer_properties).  Properties that Strata sets
 * itself (acks, enable.idempotence, enable.auto.commit, group.id,
 * bootstrap.servers...) are refused.  OWNED *out. */
st_rc st_kafka_cfg_load(const st_cfg *map, st_kafka_cfg **out, st_err *err);
void st_kafka_cfg_free(st_kafka_cfg *c);

/* ---- configuration (the `collector:` section) ---- */
typedef struct st_collect_source {
    char *name;                 /* OWNED */
    uint8_t key_hash[32];       /* SHA-256 of the key */
    bool has_key;
    char **families;            /* OWNED, n_families; first is the default family */
    size_t n_families;
    char **event_types;         /* OWNED; empty = any type */
    size_t n_event_types;
    char **cors_origins;        /* OWNED */
    size_t n_cors_origins;
} st_collect_source;

typedef struct st_collect_cfg {
    char *listen_host;          /* OWNED, "127.0.0.1" */
    int listen_port;            /* 8686; 0 = ephemeral */
    int threads;                /* libmicrohttpd event loop threads (0 = one per core) */
    size_t max_body_bytes;
    size_t max_events;
    size_t max_event_bytes;
    int max_depth;
    int64_t max_future_s;       /* refuse event_time further ahead than this (0 = no check) */
    int retry_after_s;
    char *tls_cert;             /* OWNED, NULL without TLS */
    char *tls_key;
    char *log_kind;             /* "local" or "kafka" */
    st_kafka_cfg *kafka;        /* OWNED when log_kind is "kafka", else NULL */
    char *log_dir;              /* OWNED, absolute or relative to the config file */
    bool durable;               /* answer only after fsync (default) */
    st_evlog_opts log;          /* log.dir points at log_dir */
    st_collect_source *sources; /* OWNED */
    size_t n_sources;
} st_collect_cfg;

/* Fills defaults, then reads `collector:` from root (if present).  Relative
 * paths are resolved against base_dir.  Unknown keys fail with
 * "file:line: collector.x: unknown key".  OWNED *out. */
st_rc st_collect_cfg_load(const st_cfg *root, const char *base_dir, st_collect_cfg **out,
                          st_err *err);
void st_collect_cfg_free(st_collect_cfg *cfg);
/* Overrides listen from a --listen HOST:PORT flag. */
st_rc st_collect_cfg_set_listen(st_collect_cfg *cfg, const char *hostport, st_err *err);
/* SHA-256 of key, hex -> out[65]: the form key_hash takes in strata.yml. */
void st_collect_key_hash_hex(const char *key, char out[65]);

/* ---- the server ---- */
typedef struct st_collector st_collector;
/* Opens the event log and starts listening.  The cfg is BORROWED and must
 * outlive the collector.  OWNED *out. */
st_rc st_collector_start(const st_collect_cfg *cfg, st_collector **out, st_err *err);
int st_collector_port(const st_collector *c);    /* the bound port */
void st_collector_stop(st_collector *c);           /* NULL is fine */
/* Sets the source of the strata_loader_lag_events gauge (fn(arg) is called
 * from /metrics handlers; it must be thread-safe).  Call before traffic. */
void st_collector_set_lag_fn(st_collector *c, uint64_t (*fn)(void *), void *arg);
/* Sequence number below which every log record is fsync'd; c is an
 * st_collector (void * so it fits the loader's callback). */
uint64_t st_collector_durable_seq(void *c);

/* The browser tracker served at /v1/tracker.js (from src/collect/tracker.js). */
extern const char st_tracker_js[];

#endif
