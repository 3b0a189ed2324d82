/*
 * kafka.c - the Kafka event sink (`event_log: kafka`): an idempotent
 * librdkafka producer with acks=all, one topic per source, and per-request
 * tickets completed by delivery reports.
 *
 * A request's records are produced one message each (the record bytes as
 * the file log would store them, without the frame) with the request's
 * ticket as the message opaque.  A thread serves rd_kafka_poll, which runs
 * the delivery-report callback; the callback counts the ticket down and
 * records the first error.  The HTTP worker waits on the ticket, so a 2xx
 * goes out only after the brokers acknowledged every record (acks=all with
 * enable.idempotence: no duplicates from the producer's own retries, no
 * reordering within a partition).  A record whose delivery fails (message
 * timeout, broker refusal) fails its whole request: 503, the client retries
 * with the same event_ids, and bronze keeps one row per event_id.
 */
#include "kafka.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

struct st_kafka_producer {
    const st_kafka_cfg *cfg;
    rd_kafka_t *rk;
    pthread_t poller;
    bool poller_started;
    _Atomic bool stop;          /* poller thread */
    _Atomic bool stopped;       /* appends refused */
    _Atomic bool failed;
    _Atomic uint64_t n_records, n_bytes, n_delivered, n_failed;
    /* time from produce to a request's last delivery report */
    _Atomic uint64_t n_done, done_ns_total, done_ns_max, done_hist[10];
};

struct st_kafka_ticket {
    st_kafka_producer *p;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t pending;        /* records queued without a delivery report */
    bool open;             /* st_kafka_append is still queuing */
    bool orphan;           /* nobody waits: free when complete */
    bool timed;            /* the latency was counted */
    int64_t t0;
    st_rc rc;
    char msg[512];
    st_sink_done_fn fn;
    void *fn_arg;
};

bool st_kafka_topic_name(const st_kafka_cfg *cfg, const char *source, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s%s", cfg->topic_prefix, source);
    return n > 0 && (size_t)n < cap && n <= 249;   /* Kafka's topic name limit */
}

st_rc st_kafka_conf_apply(void *rd_conf, char *const *pairs, size_t n_pairs, const char *what,
                          st_err *err)
{
    char es[512];
    for (size_t i = 0; i < n_pairs; i++) {
        if (rd_kafka_conf_set(rd_conf, pairs[2 * i], pairs[2 * i + 1], es, sizeof es) !=
            RD_KAFKA_CONF_OK)
            return st_fail(err, ST_ERR_INVALID, "collector.kafka.%s: %s: %s", what, pairs[2 * i],
                           es);
    }
    return ST_OK;
}

static void ticket_free(st_kafka_ticket *t)
{
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    st_free(t);
}

static void ticket_fail_locked(st_kafka_ticket *t, st_rc rc, const char *msg)
{
    if (t->rc == ST_OK) {
        t->rc = rc;
        snprintf(t->msg, sizeof t->msg, "%s", msg);
    }
}

static void count_latency(st_kafka_producer *p, int64_t ns)
{
    static const int64_t bounds[10] = ST_EVLOG_FSYNC_BUCKETS_US;
    int b = 0;
    while (b < 9 && bounds[b] >= 0 && ns > bounds[b] * 1000)
        b++;
    atomic_fetch_add(&p->done_hist[b], 1);
    atomic_fetch_add(&p->n_done, 1);
    atomic_fetch_add(&p->done_ns_total, (uint64_t)ns);
    uint64_t max = atomic_load(&p->done_ns_max);
    while ((uint64_t)ns > max && !atomic_compare_exchange_weak(&p->done_ns_max, &max, (uint64_t)ns))
        ;
}

/* Called with t->mu held once the ticket may have completed; unlocks.  A
 * ticket with a callback (or nobody waiting) is finished here; else the
 * waiter frees it. */
static void ticket_settle(st_kafka_ticket *t)
{
    if (t->open || t->pending) {
        pthread_mutex_unlock(&t->mu);
        return;
    }
    if (!t->timed) {
        t->timed = true;
        if (!t->orphan)
            count_latency(t->p, st_mono_ns() - t->t0);
    }
    if (t->fn || t->orphan) {
        st_sink_done_fn fn = t->fn;
        void *arg = t->fn_arg;
        st_rc rc = t->rc;
        if (rc && fn)
            st_warn("%s", t->msg);
        pthread_mutex_unlock(&t->mu);
        ticket_free(t);
        if (fn)
            fn(arg, rc);
        return;
    }
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    st_kafka_producer *p = opaque;
    st_kafka_ticket *t = m->_private;
    (void)rk;
    if (m->err) {
        atomic_fetch_add(&p->n_failed, 1);
    } else {
        atomic_fetch_add(&p->n_delivered, 1);
    }
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    if (m->err) {
        char msg[256];
        snprintf(msg, sizeof msg, "kafka: delivery to %s failed: %s",
                 m->rkt ? rd_kafka_topic_name(m->rkt) : "?", rd_kafka_err2str(m->err));
        ticket_fail_locked(t, ST_ERR_IO, msg);
    }
    t->pending--;
    ticket_settle(t);
}

static void on_error(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    st_kafka_producer *p = opaque;
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof why);
        atomic_store(&p->failed, true);
        st_error("kafka: fatal producer error %s: %s; refusing events until restart",
                 rd_kafka_err2name(orig), why);
        return;
    }
    st_warn("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)code), reason);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 4)
        st_warn("kafka: %s: %s", fac, buf);
    else
        st_debug("kafka: %s: %s", fac, buf);
}

static void *poller_main(void *arg)
{
    st_kafka_producer *p = arg;
    while (!atomic_load(&p->stop))
        rd_kafka_poll(p->rk, 50);
    return NULL;
}

st_rc st_kafka_producer_open(const st_kafka_cfg *cfg, st_kafka_producer **out, st_err *err)
{
    *out = NULL;
    st_kafka_producer *p = st_calloc(1, sizeof *p);
    if (!p)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    p->cfg = cfg;
    char es[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    st_rc rc = ST_OK;
    if (!conf) {
        rc = st_fail(err, ST_ERR_NOMEM, "kafka: out of memory");
        goto fail;
    }
    rc = st_kafka_conf_apply(conf, cfg->props, cfg->n_props, "properties", err);
    rc = rc ? rc
            : st_kafka_conf_apply(conf, cfg->producer_props, cfg->n_producer_props,
                                  "producer_properties", err);
    if (rc)
        goto fail;
    /* set last: the delivery guarantee rests on these */
    static const char *const fixed[][2] = {{"enable.idempotence", "true"}, {"acks", "all"}};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
        if (rd_kafka_conf_set(conf, fixed[i][0], fixed[i][1], es, sizeof es) != RD_KAFKA_CONF_OK) {
            rc = st_fail(err, ST_ERR_INVALID, "kafka: %s: %s", fixed[i][0], es);
            goto fail;
        }
    }
    if (rd_kafka_conf_set(conf, "bootstrap.servers", cfg->brokers, es, sizeof es) !=
        RD_KAFKA_CONF_OK) {
        rc = st_fail(err, ST_ERR_INVALID, "collector.kafka.brokers: %s", es);
        goto fail;
    }
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, es, sizeof es);
    if (!p->rk) {
        rc = st_fail(err, ST_ERR_INVALID, "kafka: cannot create the producer: %s", es);
        goto fail;   /* conf is still ours */
    }
    conf = NULL;   /* owned by rk now */
    if (pthread_create(&p->poller, NULL, poller_main, p)) {
        rc = st_fail(err, ST_ERR_IO, "kafka: cannot start the delivery-report thread");
        goto fail;
    }
    p->poller_started = true;
    *out = p;
    return ST_OK;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    st_kafka_producer_close(p, 0);
    return rc;
}

void st_kafka_producer_stop(st_kafka_producer *p, int timeout_ms)
{
    if (!p)
        return;
    atomic_store(&p->stopped, true);
    if (p->poller_started) {
        atomic_store(&p->stop, true);
        pthread_join(p->poller, NULL);
        p->poller_started = false;
    }
    if (p->rk) {
        /* flush serves the delivery reports of what is in flight; what is
         * left after the timeout is purged, which completes its tickets with
         * an error */
        if (rd_kafka_flush(p->rk, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            st_warn("kafka: %d messages not delivered at shutdown", rd_kafka_outq_len(p->rk));
            rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_flush(p->rk, 1000);
            rd_kafka_poll(p->rk, 0);
        }
    }
}

void st_kafka_producer_close(st_kafka_producer *p, int timeout_ms)
{
    if (!p)
        return;
    st_kafka_producer_stop(p, timeout_ms);
    if (p->rk)
        rd_kafka_destroy(p->rk);
    st_free(p);
}

static uint32_t le32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

st_rc st_kafka_append(st_kafka_producer *p, const char *source, const void *framed, size_t len,
                      size_t n_records, st_kafka_ticket **out, st_err *err)
{
    *out = NULL;
    if (atomic_load(&p->failed))
        return st_fail(err, ST_ERR_IO, "kafka: the producer failed (see the log); restart needed");
    if (atomic_load(&p->stopped))
        return st_fail(err, ST_ERR_IO, "kafka: the producer is stopping");
    char topic[256];
    if (!st_kafka_topic_name(p->cfg, source, topic, sizeof topic))
        return st_fail(err, ST_ERR_INVALID, "kafka: topic name for source '%s' too long", source);
    st_kafka_ticket *t = st_calloc(1, sizeof *t);
    if (!t)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    t->p = p;
    t->open = true;
    t->t0 = st_mono_ns();
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    const unsigned char *b = framed;
    size_t off = 0, k = 0;
    for (; k < n_records; k++) {
        if (len - off < 8 || le32(b + off) > len - off - 8) {
            pthread_mutex_lock(&t->mu);
            ticket_fail_locked(t, ST_ERR_PARSE, "kafka: bad record framing");
            pthread_mutex_unlock(&t->mu);
            break;
        }
        size_t dlen = le32(b + off);
        const void *data = b + off + 8;
        off += 8 + dlen;
        pthread_mutex_lock(&t->mu);
        t->pending++;
        pthread_mutex_unlock(&t->mu);
        rd_kafka_resp_err_t e =
            rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE((void *)data, dlen),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(t),
                              RD_KAFKA_V_END);
        if (e) {
            char msg[512];
            snprintf(msg, sizeof msg, "kafka: producing to %s: %s", topic, rd_kafka_err2str(e));
            pthread_mutex_lock(&t->mu);
            t->pending--;
            ticket_fail_locked(t, e == RD_KAFKA_RESP_ERR__QUEUE_FULL ? ST_ERR_LIMIT : ST_ERR_IO,
                               msg);
            pthread_mutex_unlock(&t->mu);
            break;
        }
        atomic_fetch_add(&p->n_records, 1);
        atomic_fetch_add(&p->n_bytes, dlen);
    }
    pthread_mutex_lock(&t->mu);
    t->open = false;
    pthread_mutex_unlock(&t->mu);
    *out = t;
    return ST_OK;
}

st_rc st_kafka_wait(st_kafka_ticket *t, st_err *err)
{
    pthread_mutex_lock(&t->mu);
    while (t->open || t->pending)
        pthread_cond_wait(&t->cv, &t->mu);
    st_rc rc = t->rc;
    if (rc)
        st_fail(err, rc, "%s", t->msg);
    pthread_mutex_unlock(&t->mu);
    ticket_free(t);
    return rc;
}

void st_kafka_ticket_notify(st_kafka_ticket *t, st_sink_done_fn fn, void *arg)
{
    pthread_mutex_lock(&t->mu);
    t->fn = fn;
    t->fn_arg = arg;
    ticket_settle(t);
}

void st_kafka_stats_get(st_kafka_producer *p, st_kafka_stats *out)
{
    memset(out, 0, sizeof *out);
    out->n_records = atomic_load(&p->n_records);
    out->n_bytes = atomic_load(&p->n_bytes);
    out->n_delivered = atomic_load(&p->n_delivered);
    out->n_failed = atomic_load(&p->n_failed);
    out->in_flight = p->rk ? (uint64_t)rd_kafka_outq_len(p->rk) : 0;
    out->failed = atomic_load(&p->failed);
}

/* ---------------------------------------------------------------- sink */

/* All or none (sink.h): when some records of a request could not be queued
 * the request fails at once; the ones already queued are delivered anyway
 * and their ticket frees itself (the client's retry is deduplicated). */
static st_rc sink_append(void *self, const char *source, const void *framed, size_t len,
                         size_t n_records, uint64_t *out_ticket, st_err *err)
{
    st_kafka_ticket *t = NULL;
    st_rc rc = st_kafka_append(self, source, framed, len, n_records, &t, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&t->mu);
    if (t->rc) {
        rc = st_fail(err, t->rc == ST_ERR_LIMIT ? ST_ERR_LIMIT : ST_ERR_IO, "%s", t->msg);
        t->orphan = true;
        ticket_settle(t);
        return rc;
    }
    pthread_mutex_unlock(&t->mu);
    *out_ticket = (uint64_t)(uintptr_t)t;
    return ST_OK;
}

static void sink_on_durable(void *self, uint64_t ticket, st_sink_done_fn done, void *arg)
{
    (void)self;
    st_kafka_ticket_notify((st_kafka_ticket *)(uintptr_t)ticket, done, arg);
}

static void sink_stats(void *self, st_evlog_stats *out)
{
    st_kafka_producer *p = self;
    st_kafka_stats ks;
    st_kafka_stats_get(p, &ks);
    memset(out, 0, sizeof *out);
    out->n_records = ks.n_records;
    out->n_bytes = ks.n_bytes;
    out->pending_records = (size_t)ks.in_flight;
    out->failed = ks.failed;
    out->n_fsync = atomic_load(&p->n_done);
    out->fsync_ns_total = atomic_load(&p->done_ns_total);
    out->fsync_ns_max = atomic_load(&p->done_ns_max);
    for (int i = 0; i < 10; i++)
        out->fsync_hist[i] = atomic_load(&p->done_hist[i]);
}

static void sink_stop(void *self) { st_kafka_producer_stop(self, 10000); }
static void sink_close(void *self) { st_kafka_producer_close(self, 0); }

static const st_sink_ops kafka_sink_ops = {
    .kind = "kafka",
    .append = sink_append,
    .on_durable = sink_on_durable,
    .stats = sink_stats,
    .stop = sink_stop,
    .close = sink_close,
};

st_rc st_kafka_sink_open(const st_kafka_cfg *cfg, st_sink *out, st_err *err)
{
    st_kafka_producer *p = NULL;
    st_rc rc = st_kafka_producer_open(cfg, &p, err);
    if (rc)
        return rc;
    out->ops = &kafka_sink_ops;
    out->self = p;
    return ST_OK;
}
