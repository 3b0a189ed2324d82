/*
 * server.c - the HTTP collector on libmicrohttpd: routing, API-key auth,
 * CORS, per-event validation, durable acknowledgement and metrics.
 *
 * A request's body is gathered into one bounded buffer, split into events
 * (envelope.c), each valid event becomes one framed record in a second
 * buffer, and the whole batch is appended to the sink (sink.h: the file
 * event log of evlog.c, or Kafka) in one call.  No thread waits for the
 * fsync: the handler suspends the connection and registers a callback for
 * its ticket; the sink's committer, after the fsync that covers it, resumes
 * the connection, and libmicrohttpd calls the handler once more, which
 * queues the answer prepared before suspending.  So a small pool of event
 * loop threads (one per core) serves every connection, and all requests
 * that arrive during one fsync share the next one (group commit).  Only
 * after that does the client get its 2xx.
 *
 * Memory: one `req` per connection (libmicrohttpd's socket context) holds
 * the buffers, reused by the connection's keep-alive requests, so a steady
 * stream of small requests allocates nothing but libmicrohttpd's own
 * response objects.  It also remembers the connection's last API key, so a
 * keep-alive client's key is hashed once, not per request.
 */
#include "strata/collect.h"
#include "collect/sink.h"
#include "collect/kafka.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum reason {
    R_UNAUTHORIZED,
    R_FORBIDDEN,
    R_INVALID,
    R_MALFORMED,
    R_TOO_LARGE,
    R_OVERLOADED,
    R_UNAVAILABLE,
    R_NOT_FOUND,
    R_COUNT
};
static const char *const reason_names[R_COUNT] = {
    "unauthorized", "forbidden", "invalid", "malformed", "too_large",
    "overloaded",   "unavailable", "not_found"};

struct st_collector {
    const st_collect_cfg *cfg;
    st_sink sink;                        /* ops NULL until opened */
    struct MHD_Daemon *d;
    struct MHD_Response *resp_one;       /* the 200 of one accepted event, shared */
    int port;
    char *tls_cert;
    char *tls_key;
    _Atomic uint64_t *accepted;          /* per source */
    _Atomic uint64_t req_rejected[R_COUNT];
    _Atomic uint64_t ev_rejected[R_COUNT];
    _Atomic uint64_t requests;
    _Atomic uint64_t bytes_in;
    _Atomic int64_t suspended;           /* requests waiting for durability */
    uint64_t (*lag_fn)(void *);          /* loader lag gauge, set once before serving */
    void *lag_arg;
};

enum route { RT_EVENTS, RT_EVENT };

enum rq_state {
    RQ_IDLE, /* between requests */
    RQ_BODY, /* gathering a POST body */
    RQ_WAIT, /* appended, connection suspended until the sink calls durable_cb */
};

/* Per connection, reused by each of its requests (libmicrohttpd's socket
 * context); freed when the connection closes. */
typedef struct req {
    st_collector *c;
    struct MHD_Connection *conn;
    enum rq_state state;
    enum route route;
    bool too_large;
    const st_collect_source *src; /* the key's source, checked before the body */
    /* the answer prepared before suspending, sent once durable */
    unsigned status;
    const char *origin;       /* BORROWED from the request headers */
    size_t src_index;
    size_t n_ok;
    _Atomic int done_rc;      /* st_rc from the sink callback */
    st_buf body;
    st_buf recs, one, errs, out;
    st_span *spans;
    size_t cap_spans;
    /* the last header key of this connection and its source: keep-alive
     * clients send the same key with every request, so it is hashed once */
    char key[128];
    size_t key_len;           /* 0: nothing cached */
    const st_collect_source *key_src;
} req;

/* Buffers above this are released after their request so that idle
 * keep-alive connections do not hold batch-sized memory. */
#define RQ_KEEP_BYTES (64u << 10)

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *ctype,
                             const char *body, size_t len, const char *origin, int retry_after)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (origin) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header(r, "Vary", "Origin");
    }
    if (retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry_after);
        MHD_add_response_header(r, "Retry-After", ra);
    }
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* A JSON error answer: {"error": msg, "code": code[, "index": i]}. */
static enum MHD_Result reply_err(st_collector *c, struct MHD_Connection *conn, unsigned status,
                                 enum reason why, const char *msg, long index, const char *origin)
{
    atomic_fetch_add(&c->req_rejected[why], 1);
    st_buf b;
    st_buf_init(&b, 0);
    st_buf_puts(&b, "{\"error\":");
    st_buf_json_str(&b, msg);
    st_buf_printf(&b, ",\"code\":\"%s\"", reason_names[why]);
    if (index >= 0)
        st_buf_printf(&b, ",\"index\":%ld", index);
    st_buf_puts(&b, "}\n");
    int ra = (why == R_OVERLOADED || why == R_UNAVAILABLE) ? c->cfg->retry_after_s : 0;
    enum MHD_Result ret =
        reply(conn, status, "application/json", b.data ? b.data : "{}", b.len, origin, ra);
    st_buf_free(&b);
    return ret;
}

static const st_collect_source *auth(st_collector *c, struct MHD_Connection *conn, req *rq)
{
    const char *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    bool from_query = false;
    if (key && !strncasecmp(key, "Bearer ", 7))
        key += 7;
    else
        key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Strata-Key");
    if (!key) {
        key = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "key");
        from_query = true;
    }
    if (!key || !*key)
        return NULL;
    size_t key_len = strlen(key);
    if (!from_query && rq->key_len && key_len == rq->key_len &&
        sodium_memcmp(key, rq->key, key_len) == 0)
        return rq->key_src;
    unsigned char h[32];
    crypto_hash_sha256(h, (const unsigned char *)key, key_len);
    const st_collect_source *found = NULL;
    /* compare against every source so timing does not reveal which matched */
    for (size_t i = 0; i < c->cfg->n_sources; i++) {
        const st_collect_source *s = &c->cfg->sources[i];
        if (s->has_key && sodium_memcmp(h, s->key_hash, 32) == 0)
            found = s;
    }
    /* a key in the URL is only for browsers (sendBeacon cannot set headers) */
    if (found && from_query && !found->n_cors_origins)
        return NULL;
    rq->key_len = 0;
    if (found && !from_query && key_len < sizeof rq->key) {
        memcpy(rq->key, key, key_len);
        rq->key_len = key_len;
        rq->key_src = found;
    }
    return found;
}

static const char *origin_allowed(const st_collect_source *s, const char *origin)
{
    for (size_t i = 0; s && origin && i < s->n_cors_origins; i++)
        if (!strcmp(s->cors_origins[i], origin) || !strcmp(s->cors_origins[i], "*"))
            return origin;
    return NULL;
}

static enum MHD_Result preflight(st_collector *c, struct MHD_Connection *conn)
{
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    const char *ok = NULL;
    for (size_t i = 0; origin && !ok && i < c->cfg->n_sources; i++)
        ok = origin_allowed(&c->cfg->sources[i], origin);
    if (!ok)
        return reply_err(c, conn, MHD_HTTP_FORBIDDEN, R_FORBIDDEN, "origin not allowed", -1, NULL);
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Access-Control-Allow-Origin", ok);
    MHD_add_response_header(r, "Access-Control-Allow-Methods", "POST, OPTIONS");
    MHD_add_response_header(r, "Access-Control-Allow-Headers",
                            "Content-Type, Authorization, X-Strata-Key");
    MHD_add_response_header(r, "Access-Control-Max-Age", "600");
    MHD_add_response_header(r, "Vary", "Origin");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_NO_CONTENT, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result metrics(st_collector *c, struct MHD_Connection *conn)
{
    st_evlog_stats st;
    c->sink.ops->stats(c->sink.self, &st);
    st_buf b;
    st_buf_init(&b, 0);
    st_buf_puts(&b, "# HELP strata_collector_events_accepted_total Events acknowledged after fsync.\n"
                    "# TYPE strata_collector_events_accepted_total counter\n");
    for (size_t i = 0; i < c->cfg->n_sources; i++)
        st_buf_printf(&b, "strata_collector_events_accepted_total{source=\"%s\"} %llu\n",
                      c->cfg->sources[i].name, (unsigned long long)atomic_load(&c->accepted[i]));
    st_buf_puts(&b, "# HELP strata_collector_events_rejected_total Events refused, by reason.\n"
                    "# TYPE strata_collector_events_rejected_total counter\n");
    for (int r = 0; r < R_COUNT; r++)
        st_buf_printf(&b, "strata_collector_events_rejected_total{reason=\"%s\"} %llu\n",
                      reason_names[r], (unsigned long long)atomic_load(&c->ev_rejected[r]));
    st_buf_puts(&b, "# HELP strata_collector_requests_rejected_total Requests answered 4xx/5xx, by reason.\n"
                    "# TYPE strata_collector_requests_rejected_total counter\n");
    for (int r = 0; r < R_COUNT; r++)
        st_buf_printf(&b, "strata_collector_requests_rejected_total{reason=\"%s\"} %llu\n",
                      reason_names[r], (unsigned long long)atomic_load(&c->req_rejected[r]));
    st_buf_printf(&b,
                  "# HELP strata_collector_requests_total Requests received.\n"
                  "# TYPE strata_collector_requests_total counter\n"
                  "strata_collector_requests_total %llu\n"
                  "# HELP strata_collector_received_bytes_total Request body bytes received.\n"
                  "# TYPE strata_collector_received_bytes_total counter\n"
                  "strata_collector_received_bytes_total %llu\n"
                  "# HELP strata_collector_log_bytes_total Framed bytes appended to the event log.\n"
                  "# TYPE strata_collector_log_bytes_total counter\n"
                  "strata_collector_log_bytes_total %llu\n"
                  "# HELP strata_collector_queue_events Events waiting for the next fsync.\n"
                  "# TYPE strata_collector_queue_events gauge\n"
                  "strata_collector_queue_events %zu\n"
                  "# HELP strata_collector_queue_bytes Bytes waiting for the next fsync.\n"
                  "# TYPE strata_collector_queue_bytes gauge\n"
                  "strata_collector_queue_bytes %zu\n"
                  "# HELP strata_collector_log_next_seq Sequence number of the next event in the log.\n"
                  "# TYPE strata_collector_log_next_seq gauge\n"
                  "strata_collector_log_next_seq %llu\n"
                  "# HELP strata_collector_log_segments_sealed_total Segments compressed since start.\n"
                  "# TYPE strata_collector_log_segments_sealed_total counter\n"
                  "strata_collector_log_segments_sealed_total %llu\n"
                  "# HELP strata_collector_waiting_requests Requests appended and waiting for durability (connections suspended).\n"
                  "# TYPE strata_collector_waiting_requests gauge\n"
                  "strata_collector_waiting_requests %lld\n"
                  "# HELP strata_collector_disk_low 1 while events are refused for low disk space.\n"
                  "# TYPE strata_collector_disk_low gauge\n"
                  "strata_collector_disk_low %d\n"
                  "# HELP strata_loader_lag_events Events in the log not yet loaded into bronze.\n"
                  "# TYPE strata_loader_lag_events gauge\n"
                  "strata_loader_lag_events %llu\n"
                  "# HELP strata_collector_fsync_seconds Time of each event log fsync.\n"
                  "# TYPE strata_collector_fsync_seconds histogram\n",
                  (unsigned long long)atomic_load(&c->requests),
                  (unsigned long long)atomic_load(&c->bytes_in), (unsigned long long)st.n_bytes,
                  st.pending_records, st.pending_bytes, (unsigned long long)st.next_seq,
                  (unsigned long long)st.n_segments_sealed,
                  (long long)atomic_load(&c->suspended), st.disk_low ? 1 : 0,
                  (unsigned long long)(c->lag_fn ? c->lag_fn(c->lag_arg) : 0));
    static const int64_t bounds[10] = ST_EVLOG_FSYNC_BUCKETS_US;
    uint64_t cum = 0;
    for (int i = 0; i < 10; i++) {
        cum += st.fsync_hist[i];
        if (bounds[i] < 0)
            st_buf_printf(&b, "strata_collector_fsync_seconds_bucket{le=\"+Inf\"} %llu\n",
                          (unsigned long long)cum);
        else
            st_buf_printf(&b, "strata_collector_fsync_seconds_bucket{le=\"%g\"} %llu\n",
                          (double)bounds[i] / 1e6, (unsigned long long)cum);
    }
    st_buf_printf(&b, "strata_collector_fsync_seconds_sum %.6f\nstrata_collector_fsync_seconds_count %llu\n",
                  (double)st.fsync_ns_total / 1e9, (unsigned long long)st.n_fsync);
    enum MHD_Result ret = reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4",
                                b.data ? b.data : "", b.len, NULL, 0);
    st_buf_free(&b);
    return ret;
}

static bool list_has(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i], s))
            return true;
    return false;
}

/* Sink callback, on the committer thread (or inline): records the outcome
 * and resumes the connection; the handler then sends the answer.  rq stays
 * alive until then because a suspended connection cannot complete. */
static void durable_cb(void *arg, st_rc rc)
{
    req *rq = arg;
    struct MHD_Connection *conn = rq->conn;
    atomic_store(&rq->done_rc, (int)rc);
    /* rq may be reused or freed once resumed: touch it no more */
    MHD_resume_connection(conn);
}

/* The answer of one accepted event with no CORS headers is one shared
 * response (nothing to format or allocate). */
static bool answer_shared(const st_collector *c, unsigned status, size_t n_ok, const char *origin)
{
    return status == MHD_HTTP_OK && n_ok == 1 && !origin && c->resp_one;
}

/* Called again after durable_cb resumed the connection: the 2xx prepared
 * before suspending, or 503 when the sink could not make it durable. */
static enum MHD_Result answer_durable(st_collector *c, struct MHD_Connection *conn, req *rq)
{
    atomic_fetch_sub(&c->suspended, 1);
    rq->state = RQ_IDLE;
    st_rc rc = (st_rc)atomic_load(&rq->done_rc);
    if (rc) {
        /* nothing of this request was acknowledged: the client retries it all */
        enum reason why = rc == ST_ERR_LIMIT ? R_OVERLOADED : R_UNAVAILABLE;
        atomic_fetch_add(&c->ev_rejected[why], rq->n_ok);
        return reply_err(c, conn, MHD_HTTP_SERVICE_UNAVAILABLE, why,
                         why == R_OVERLOADED
                             ? "event log queue full, events not stored"
                             : "event log: write, fsync or delivery failed, events not stored",
                         -1, rq->origin);
    }
    atomic_fetch_add(&c->accepted[rq->src_index], rq->n_ok);
    if (answer_shared(c, rq->status, rq->n_ok, rq->origin))
        return MHD_queue_response(conn, MHD_HTTP_OK, c->resp_one);
    return reply(conn, rq->status, "application/json", rq->out.data ? rq->out.data : "{}",
                 rq->out.len, rq->origin, 0);
}

/* The body is complete: validate, append, then either answer now (errors,
 * non-durable mode) or suspend until the sink reports durability. */
static enum MHD_Result ingest(st_collector *c, struct MHD_Connection *conn, req *rq,
                              const st_collect_source *src, const char *origin)
{
    const st_collect_cfg *cfg = c->cfg;
    rq->state = RQ_IDLE;
    if (rq->too_large) {
        char msg[96];
        snprintf(msg, sizeof msg, "body larger than %zu bytes", cfg->max_body_bytes);
        return reply_err(c, conn, MHD_HTTP_CONTENT_TOO_LARGE, R_TOO_LARGE, msg, -1, origin);
    }
    atomic_fetch_add(&c->bytes_in, rq->body.len);
    const char *body = rq->body.data ? rq->body.data : "";
    size_t cap = rq->route == RT_EVENT ? 1 : cfg->max_events;
    st_buf *recs = &rq->recs, *one = &rq->one, *errs = &rq->errs;
    st_buf_reset(recs);
    st_buf_reset(one);
    st_buf_reset(errs);
    st_buf_reset(&rq->out);
    st_err err;
    size_t n = 0, bad_index = 0;
    if (rq->cap_spans < cap) {
        st_span *sp = st_realloc(rq->spans, cap * sizeof *sp);
        if (!sp)
            return MHD_NO;
        rq->spans = sp;
        rq->cap_spans = cap;
    }
    st_span *spans = rq->spans;
    st_split_limits lim = {.max_events = cap, .max_event_bytes = cfg->max_event_bytes,
                           .max_depth = cfg->max_depth};
    if (rq->route == RT_EVENT) {
        size_t i = 0;
        while (i < rq->body.len && strchr(" \t\r\n", body[i]))
            i++;
        if (i < rq->body.len && body[i] == '[')
            return reply_err(c, conn, MHD_HTTP_BAD_REQUEST, R_MALFORMED,
                             "expected one event object (use /v1/events for batches)", -1, origin);
    }
    st_rc rc = st_collect_split(body, rq->body.len, &lim, spans, cap, &n, &bad_index, &err);
    if (rc) {
        if (rq->route == RT_EVENT && rc == ST_ERR_LIMIT && bad_index >= 1) {
            snprintf(err.msg, sizeof err.msg, "expected one event object (use /v1/events for batches)");
            rc = ST_ERR_PARSE;
        }
        unsigned status = rc == ST_ERR_LIMIT ? MHD_HTTP_CONTENT_TOO_LARGE : MHD_HTTP_BAD_REQUEST;
        enum reason why = rc == ST_ERR_LIMIT ? R_TOO_LARGE : R_MALFORMED;
        return reply_err(c, conn, status, why, err.msg,
                         rq->route == RT_EVENTS ? (long)bad_index : -1, origin);
    }
    int64_t now = st_now_us();
    size_t n_ok = 0, n_forbidden = 0;
    st_buf_puts(errs, "[");
    for (size_t i = 0; i < n; i++) {
        st_envelope env;
        enum reason why = R_INVALID;
        rc = st_envelope_parse(spans[i].p, spans[i].len, &env, &err);
        const char *family = NULL;
        if (!rc) {
            family = env.family[0] ? env.family : src->families[0];
            if (env.family[0] && !list_has(src->families, src->n_families, env.family)) {
                snprintf(err.msg, sizeof err.msg, "event_type: family '%s' not allowed for source '%s'",
                         env.family, src->name);
                rc = ST_ERR_INVALID;
                why = R_FORBIDDEN;
            } else if (src->n_event_types &&
                       !list_has(src->event_types, src->n_event_types, env.event_type) &&
                       !list_has(src->event_types, src->n_event_types,
                                 env.family[0] ? env.event_type + strlen(env.family) + 1
                                               : env.event_type)) {
                snprintf(err.msg, sizeof err.msg, "event_type: '%s' not allowed for source '%s'",
                         env.event_type, src->name);
                rc = ST_ERR_INVALID;
                why = R_FORBIDDEN;
            } else if (cfg->max_future_s > 0) {
                int64_t t = env.event_time_us;
                if (env.has_sent_at)
                    t += now - env.sent_at_us;
                if (t > now + cfg->max_future_s * 1000000) {
                    snprintf(err.msg, sizeof err.msg,
                             "event_time: more than %lld s in the future (after clock-skew correction)",
                             (long long)cfg->max_future_s);
                    rc = ST_ERR_INVALID;
                }
            }
        }
        if (!rc) {
            st_buf_reset(one);
            rc = st_envelope_record(one, spans[i].p, spans[i].len, &env, src->name, family, now);
            if (!rc)
                rc = st_evlog_frame(recs, one->data, one->len);
            if (rc)
                return reply_err(c, conn, MHD_HTTP_SERVICE_UNAVAILABLE, R_UNAVAILABLE,
                                 "out of memory", -1, origin);
            n_ok++;
            continue;
        }
        if (why == R_FORBIDDEN)
            n_forbidden++;
        atomic_fetch_add(&c->ev_rejected[why], 1);
        if (errs->len > 1)
            st_buf_putc(errs, ',');
        st_buf_printf(errs, "{\"index\":%zu,", i);
        if (env.event_id[0]) {
            st_buf_puts(errs, "\"event_id\":");
            st_buf_json_str(errs, env.event_id);
            st_buf_putc(errs, ',');
        }
        st_buf_printf(errs, "\"code\":\"%s\",\"error\":", reason_names[why]);
        st_buf_json_str(errs, err.msg);
        st_buf_putc(errs, '}');
    }
    st_buf_putc(errs, ']');
    size_t n_bad = n - n_ok;
    unsigned status = !n_bad ? MHD_HTTP_OK
                      : n_ok ? MHD_HTTP_MULTI_STATUS
                      : n_forbidden == n_bad ? MHD_HTTP_FORBIDDEN
                                             : MHD_HTTP_BAD_REQUEST;
    st_buf *out = &rq->out;
    bool shared = answer_shared(c, status, n_ok, origin);
    if (!shared) {
        st_buf_printf(out, "{\"accepted\":%zu,\"rejected\":%zu", n_ok, n_bad);
        if (n_bad) {
            st_buf_puts(out, ",\"errors\":");
            st_buf_append(out, errs->data, errs->len);
        }
        st_buf_puts(out, "}\n");
    }
    if (n_bad)
        atomic_fetch_add(&c->req_rejected[n_forbidden == n_bad && !n_ok ? R_FORBIDDEN : R_INVALID],
                         n_ok ? 0 : 1);
    size_t si = (size_t)(src - cfg->sources);
    if (n_ok) {
        uint64_t ticket;
        rc = c->sink.ops->append(c->sink.self, src->name, recs->data, recs->len, n_ok, &ticket,
                                 &err);
        if (rc) {
            /* nothing of this request was acknowledged: the client retries it all */
            atomic_fetch_add(&c->ev_rejected[rc == ST_ERR_LIMIT ? R_OVERLOADED : R_UNAVAILABLE],
                             n_ok);
            return reply_err(c, conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                             rc == ST_ERR_LIMIT ? R_OVERLOADED : R_UNAVAILABLE, err.msg, -1, origin);
        }
        if (cfg->durable) {
            rq->status = status;
            rq->origin = origin;
            rq->src_index = si;
            rq->n_ok = n_ok;
            rq->state = RQ_WAIT;
            atomic_fetch_add(&c->suspended, 1);
            /* suspend first: the callback may resume at once, even before
             * on_durable returns */
            MHD_suspend_connection(conn);
            c->sink.ops->on_durable(c->sink.self, ticket, durable_cb, rq);
            return MHD_YES;
        }
        atomic_fetch_add(&c->accepted[si], n_ok);
    }
    if (shared)
        return MHD_queue_response(conn, MHD_HTTP_OK, c->resp_one);
    return reply(conn, status, "application/json", out->data ? out->data : "{}", out->len, origin,
                 0);
}

static void req_trim(st_buf *b)
{
    if (b->cap > RQ_KEEP_BYTES) {
        size_t max = b->max;
        st_buf_free(b);
        st_buf_init(b, max);
    } else {
        st_buf_reset(b);
    }
}

static void req_free(req *rq)
{
    if (!rq)
        return;
    sodium_memzero(rq->key, sizeof rq->key);
    st_buf_free(&rq->body);
    st_buf_free(&rq->recs);
    st_buf_free(&rq->one);
    st_buf_free(&rq->errs);
    st_buf_free(&rq->out);
    st_free(rq->spans);
    st_free(rq);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    st_collector *c = cls;
    req *rq = *con_cls;
    if (rq) {
        if (rq->state == RQ_WAIT)
            return answer_durable(c, conn, rq);
        if (*upload_size) {
            if (!rq->too_large && st_buf_append(&rq->body, upload, *upload_size))
                rq->too_large = true;
            *upload_size = 0;
            return MHD_YES;
        }
        const st_collect_source *src = rq->src;
        const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
        rq->state = RQ_IDLE;
        if (!src)
            return reply_err(c, conn, MHD_HTTP_UNAUTHORIZED, R_UNAUTHORIZED,
                             "missing or unknown API key", -1, NULL);
        const char *allow = origin_allowed(src, origin);
        if (origin && !allow)
            return reply_err(c, conn, MHD_HTTP_FORBIDDEN, R_FORBIDDEN,
                             "origin not allowed for this source", -1, NULL);
        return ingest(c, conn, rq, src, allow);
    }
    atomic_fetch_add(&c->requests, 1);
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (!strcmp(method, "OPTIONS"))
        return preflight(c, conn);
    if (get && !strcmp(url, "/healthz"))
        return reply(conn, MHD_HTTP_OK, "application/json", "{\"ok\":true}\n", 12, NULL, 0);
    if (get && !strcmp(url, "/readyz")) {
        st_evlog_stats st;
        c->sink.ops->stats(c->sink.self, &st);
        bool ready = !st.failed && !st.disk_low &&
                     st.pending_bytes < c->cfg->log.max_pending_bytes / 2;
        if (ready)
            return reply(conn, MHD_HTTP_OK, "application/json", "{\"ready\":true}\n", 15, NULL, 0);
        const char *why = st.failed ? "{\"ready\":false,\"reason\":\"event log failed\"}\n"
                          : st.disk_low ? "{\"ready\":false,\"reason\":\"disk space low\"}\n"
                                        : "{\"ready\":false,\"reason\":\"queue full\"}\n";
        return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "application/json", why, strlen(why),
                     NULL, c->cfg->retry_after_s);
    }
    if (get && !strcmp(url, "/metrics"))
        return metrics(c, conn);
    if (get && !strcmp(url, "/v1/tracker.js"))
        return reply(conn, MHD_HTTP_OK, "application/javascript; charset=utf-8", st_tracker_js,
                     strlen(st_tracker_js), "*", 0);
    enum route rt;
    if (!strcmp(url, "/v1/events"))
        rt = RT_EVENTS;
    else if (!strcmp(url, "/v1/event"))
        rt = RT_EVENT;
    else
        return reply_err(c, conn, MHD_HTTP_NOT_FOUND, R_NOT_FOUND, "no such endpoint", -1, NULL);
    if (strcmp(method, "POST"))
        return reply_err(c, conn, MHD_HTTP_METHOD_NOT_ALLOWED, R_NOT_FOUND, "use POST", -1, NULL);
    /* refuse early, before reading a body we would throw away */
    const char *clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (clen && strtoull(clen, NULL, 10) > c->cfg->max_body_bytes) {
        char msg[96];
        snprintf(msg, sizeof msg, "body larger than %zu bytes", c->cfg->max_body_bytes);
        return reply_err(c, conn, MHD_HTTP_CONTENT_TOO_LARGE, R_TOO_LARGE, msg, -1, NULL);
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    rq = ci ? ci->socket_context : NULL;
    if (!rq)
        return MHD_NO;
    const st_collect_source *src = auth(c, conn, rq);
    if (!src)
        return reply_err(c, conn, MHD_HTTP_UNAUTHORIZED, R_UNAUTHORIZED,
                         "missing or unknown API key", -1, NULL);
    rq->conn = conn;
    rq->src = src;
    rq->route = rt;
    rq->too_large = false;
    rq->state = RQ_BODY;
    st_buf_reset(&rq->body);
    *con_cls = rq;
    (void)version;
    return MHD_YES;
}

/* The request is over (answered, or the connection dropped): keep the
 * connection's req for its next request, minus large buffers. */
static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    st_collector *c = cls;
    req *rq = *con_cls;
    (void)conn;
    (void)toe;
    if (rq) {
        if (rq->state == RQ_WAIT) /* resumed, then dropped before the answer */
            atomic_fetch_sub(&c->suspended, 1);
        rq->state = RQ_IDLE;
        req_trim(&rq->body);
        req_trim(&rq->recs);
        req_trim(&rq->one);
        req_trim(&rq->errs);
        req_trim(&rq->out);
        if (rq->cap_spans * sizeof *rq->spans > RQ_KEEP_BYTES) {
            st_free(rq->spans);
            rq->spans = NULL;
            rq->cap_spans = 0;
        }
        *con_cls = NULL;
    }
}

static void conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                        enum MHD_ConnectionNotificationCode toe)
{
    st_collector *c = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        req *rq = st_calloc(1, sizeof *rq);
        if (rq) {
            rq->c = c;
            rq->conn = conn;
            st_buf_init(&rq->body, c->cfg->max_body_bytes);
            st_buf_init(&rq->recs, 0);
            st_buf_init(&rq->one, 0);
            st_buf_init(&rq->errs, 0);
            st_buf_init(&rq->out, 0);
        }
        *socket_context = rq; /* NULL: its POSTs are refused (MHD_NO closes it) */
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        req_free(*socket_context);
        *socket_context = NULL;
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    st_debug("http: %s", msg);
}

/* Opens the sink event_log.kind names.  Another kind plugs in here with a
 * constructor filling an st_sink (see sink.h). */
static st_rc open_sink(const st_collect_cfg *cfg, st_sink *out, st_err *err)
{
    if (!cfg->log_kind || !strcmp(cfg->log_kind, "local")) {
        st_evlog *log;
        st_rc rc = st_evlog_open(&cfg->log, &log, err);
        if (rc)
            return rc;
        st_evlog_sink(log, out);
        return ST_OK;
    }
    if (!strcmp(cfg->log_kind, "kafka") && cfg->kafka)
        return st_kafka_sink_open(cfg->kafka, out, err);   /* kafka.c */
    return st_fail(err, ST_ERR_UNSUPPORTED, "collector.event_log.kind: '%s' is not available",
                   cfg->log_kind);
}

st_rc st_collector_start(const st_collect_cfg *cfg, st_collector **out, st_err *err)
{
    if (!cfg->n_sources)
        return st_fail(err, ST_ERR_INVALID,
                       "collector.sources: no sources configured (each needs key_env or key_hash)");
    st_collector *c = st_calloc(1, sizeof *c);
    if (!c)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    st_rc rc = ST_OK;
    c->cfg = cfg;
    c->accepted = st_calloc(cfg->n_sources, sizeof *c->accepted);
    if (!c->accepted) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (sodium_init() < 0) {
        rc = st_fail(err, ST_ERR_IO, "libsodium failed to initialise");
        goto fail;
    }
    rc = open_sink(cfg, &c->sink, err);
    if (rc)
        goto fail;
    static const char one_body[] = "{\"accepted\":1,\"rejected\":0}\n";
    c->resp_one = MHD_create_response_from_buffer(sizeof one_body - 1, (void *)one_body,
                                                  MHD_RESPMEM_PERSISTENT);
    if (!c->resp_one) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto fail;
    }
    MHD_add_response_header(c->resp_one, "Content-Type", "application/json");
    MHD_add_response_header(c->resp_one, "Cache-Control", "no-store");

    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    struct sockaddr *sa;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    const char *host = cfg->listen_host;
    if (!strcmp(host, "localhost"))
        host = "127.0.0.1";
    char h6[64];
    size_t hl = strlen(host);
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']' && hl - 2 < sizeof h6) {
        memcpy(h6, host + 1, hl - 2);
        h6[hl - 2] = '\0';
        if (inet_pton(AF_INET6, h6, &a6.sin6_addr) != 1) {
            rc = st_fail(err, ST_ERR_INVALID, "collector.listen: bad IPv6 address '%s'", host);
            goto fail;
        }
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)cfg->listen_port);
        sa = (struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        if (inet_pton(AF_INET, host, &a4.sin_addr) != 1) {
            rc = st_fail(err, ST_ERR_INVALID,
                         "collector.listen: '%s' is not an IPv4 address (or [IPv6])", host);
            goto fail;
        }
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)cfg->listen_port);
        sa = (struct sockaddr *)&a4;
    }
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
        flags |= MHD_USE_EPOLL;
    if (cfg->tls_cert) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            rc = st_fail(err, ST_ERR_UNSUPPORTED, "collector.tls: libmicrohttpd was built without TLS");
            goto fail;
        }
        size_t len;
        if ((rc = st_file_read(cfg->tls_cert, 1 << 20, &c->tls_cert, &len, err)) ||
            (rc = st_file_read(cfg->tls_key, 1 << 20, &c->tls_key, &len, err))) {
            st_err_ctx(err, "collector.tls");
            goto fail;
        }
        flags |= MHD_USE_TLS;
    }
    /* event loops, not blocked workers: more threads than cores only adds
     * context switches */
    long threads = cfg->threads > 0 ? cfg->threads : sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1)
        threads = 1;
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_SOCK_ADDR, 0, sa},
        /* one loop is libmicrohttpd's internal thread, not a pool of one
         * (which it warns about); the timeout repeated is a no-op */
        {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_CONNECTION_TIMEOUT,
         threads > 1 ? threads : 30, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, c},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)conn_notify, c},
        {MHD_OPTION_CONNECTION_TIMEOUT, 30, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, 4096, NULL},
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, c},
        {c->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, c->tls_cert},
        {c->tls_key ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, c->tls_key},
        {MHD_OPTION_END, 0, NULL},
    };
    c->d = MHD_start_daemon(flags, 0, NULL, NULL, handler, c, MHD_OPTION_ARRAY, opts,
                            MHD_OPTION_END);
    if (!c->d) {
        rc = st_fail(err, ST_ERR_IO, "cannot listen on %s:%d (address in use, or bad TLS files?)",
                     cfg->listen_host, cfg->listen_port);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(c->d, MHD_DAEMON_INFO_BIND_PORT);
    c->port = info ? info->port : cfg->listen_port;
    *out = c;
    return ST_OK;
fail:
    st_collector_stop(c);
    return rc;
}

int st_collector_port(const st_collector *c) { return c->port; }

void st_collector_set_lag_fn(st_collector *c, uint64_t (*fn)(void *), void *arg)
{
    c->lag_arg = arg;
    c->lag_fn = fn;
}

uint64_t st_collector_durable_seq(void *c)
{
    st_collector *col = c;
    st_evlog_stats st;
    col->sink.ops->stats(col->sink.self, &st);
    return st.durable_seq;
}

void st_collector_stop(st_collector *c)
{
    if (!c)
        return;
    /* every suspended connection must be resumed before MHD_stop_daemon:
     * stopping the sink answers every registered callback, and appends
     * after it are refused */
    if (c->sink.ops)
        c->sink.ops->stop(c->sink.self);
    if (c->d)
        MHD_stop_daemon(c->d);
    if (c->sink.ops)
        c->sink.ops->close(c->sink.self);
    if (c->resp_one)
        MHD_destroy_response(c->resp_one);
    if (c->tls_key)
        sodium_memzero(c->tls_key, strlen(c->tls_key));
    st_free(c->tls_cert);
    st_free(c->tls_key);
    st_free((void *)c->accepted);
    st_free(c);
}
