/*
 * kafka_src.c - the loader's Kafka source: a librdkafka consumer in a
 * consumer group (enable.auto.commit=false) over the topics
 * <topic_prefix><source>, with offsets committed only after the loader's
 * Delta commits.
 *
 * The loader keeps one scalar position and records it as the Delta txn
 * version, so this file maps Kafka's per-partition offsets onto it: the
 * position is the sum of the next offsets of every partition (a partition
 * never committed counts 0).  It only grows, by one per record (more when
 * retention skipped records), and at start it is recomputed from the
 * group's committed offsets.
 *
 * Exactly once into the tables: the batch's per-partition offset ranges go
 * to <state database>.kafka-batch (atomic write) before the first table commit;
 * the tables then commit with txn version = the position after the batch;
 * then the offsets are committed.  After a crash in between, the loader
 * sees a table version beyond the committed position and calls
 * st_kafka_src_replay, which re-reads exactly the ranges in the file (later
 * messages fetched meanwhile are held back), so the tables that already
 * hold the batch skip it as a whole and the others get the same records.
 *
 * One loader per group and lake: a rebalance that moves partitions to
 * another member in the middle of a batch makes the offset commit fail and
 * the batch is retried from the committed offsets.
 */
#include "kafka_src.h"

#include "collect/kafka.h" /* st_kafka_conf_apply */

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define META_TIMEOUT_MS 10000
#define IDLE_MS 3000          /* read returns 0 after this long without any message */
#define JOIN_MS 30000         /* ... or, before the group assigned partitions, this long */
#define BATCH_MAGIC "strata-kafka-batch 1"

typedef struct part {
    char *topic;
    int32_t partition;
    int64_t next;          /* offset of the next record to hand out */
    int64_t committed;     /* committed to the group (start of the current batch) */
    int64_t limit;         /* replay: hand out only offsets below this; -1 = no limit */
    bool assigned;
    bool eof;              /* reached the end of what the broker has */
} part;

struct st_kafka_src {
    const st_kafka_cfg *cfg;
    rd_kafka_t *rk;
    part *parts;
    size_t n_parts, cap_parts;
    uint64_t position;          /* sum of next */
    uint64_t committed_pos;     /* sum of committed */
    bool assigned_once;
    bool replaying;
    char *batch_path;
    rd_kafka_message_t **held;  /* fetched but not handed out (beyond a replay limit) */
    size_t n_held, cap_held;
    rd_kafka_message_t **out;   /* handed out by the last read */
    size_t n_out, cap_out;
    _Atomic uint64_t lag;
};

static part *find_part(st_kafka_src *s, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < s->n_parts; i++)
        if (s->parts[i].partition == partition && !strcmp(s->parts[i].topic, topic))
            return &s->parts[i];
    return NULL;
}

static part *add_part(st_kafka_src *s, const char *topic, int32_t partition)
{
    part *p = find_part(s, topic, partition);
    if (p)
        return p;
    if (s->n_parts == s->cap_parts) {
        size_t cap = s->cap_parts ? 2 * s->cap_parts : 16;
        part *np = st_realloc(s->parts, cap * sizeof *np);
        if (!np)
            return NULL;
        s->parts = np;
        s->cap_parts = cap;
    }
    p = &s->parts[s->n_parts];
    memset(p, 0, sizeof *p);
    p->topic = st_strdup(topic);
    if (!p->topic)
        return NULL;
    p->partition = partition;
    p->limit = -1;
    s->n_parts++;
    return p;
}

static bool push_msg(rd_kafka_message_t ***v, size_t *n, size_t *cap, rd_kafka_message_t *m)
{
    if (*n == *cap) {
        size_t nc = *cap ? 2 * *cap : 256;
        rd_kafka_message_t **nv = st_realloc(*v, nc * sizeof *nv);
        if (!nv)
            return false;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = m;
    return true;
}

static void drop_msgs(rd_kafka_message_t **v, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        rd_kafka_message_destroy(v[i]);
    *n = 0;
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 4)
        st_warn("kafka consumer: %s: %s", fac, buf);
    else
        st_debug("kafka consumer: %s: %s", fac, buf);
}

/* Assigns at our own positions: the group's committed offsets may be behind
 * what this process already handed to the loader. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    st_kafka_src *s = opaque;
    if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++) {
            rd_kafka_topic_partition_t *tp = &parts->elems[i];
            part *p = add_part(s, tp->topic, tp->partition);
            if (!p) {
                st_error("kafka consumer: out of memory at assignment");
                continue;
            }
            p->assigned = true;
            p->eof = false;
            /* never committed: the group's offset (none) and then earliest */
            tp->offset = p->next > 0 ? p->next : RD_KAFKA_OFFSET_INVALID;
        }
        rd_kafka_resp_err_t ae = rd_kafka_assign(rk, parts);
        if (ae)
            st_warn("kafka consumer: assign: %s", rd_kafka_err2str(ae));
        s->assigned_once = true;
        st_debug("kafka consumer: %d partitions assigned", parts->cnt);
    } else {
        for (size_t i = 0; i < s->n_parts; i++)
            s->parts[i].assigned = false;
        rd_kafka_assign(rk, NULL);
        if (e != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
            st_warn("kafka consumer: rebalance: %s", rd_kafka_err2str(e));
    }
}

static bool is_topic(char *const *topics, size_t n, const char *t)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(topics[i], t))
            return true;
    return false;
}

/* Every partition the topics have now, with the group's committed offsets. */
static st_rc load_positions(st_kafka_src *s, char *const *topics, size_t n_topics, st_err *err)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(s->rk, 1, NULL, &md, META_TIMEOUT_MS);
    if (e)
        return st_fail(err, ST_ERR_REMOTE, "kafka: reading metadata from %s: %s",
                       s->cfg->brokers, rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    st_rc rc = ST_OK;
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *t = &md->topics[i];
        if (t->err || !is_topic(topics, n_topics, t->topic))
            continue;
        for (int j = 0; j < t->partition_cnt; j++)
            rd_kafka_topic_partition_list_add(l, t->topic, t->partitions[j].id);
    }
    rd_kafka_metadata_destroy(md);
    if (l->cnt) {
        e = rd_kafka_committed(s->rk, l, META_TIMEOUT_MS);
        if (e) {
            rc = st_fail(err, ST_ERR_REMOTE, "kafka: reading the committed offsets of group %s: %s",
                         s->cfg->group_id, rd_kafka_err2str(e));
            goto out;
        }
    }
    for (int i = 0; i < l->cnt; i++) {
        part *p = add_part(s, l->elems[i].topic, l->elems[i].partition);
        if (!p) {
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
            goto out;
        }
        int64_t off = l->elems[i].err ? -1 : l->elems[i].offset;
        p->next = p->committed = off > 0 ? off : 0;
        s->position += (uint64_t)p->next;
    }
    s->committed_pos = s->position;
out:
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

st_rc st_kafka_src_open(const st_kafka_cfg *cfg, char *const *topics, size_t n_topics,
                        const char *state_path, st_kafka_src **out, st_err *err)
{
    *out = NULL;
    st_kafka_src *s = st_calloc(1, sizeof *s);
    if (!s)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    s->cfg = cfg;
    rd_kafka_topic_partition_list_t *sub = NULL;
    char es[512];
    st_rc rc = ST_OK;
    s->batch_path = st_sprintf("%s.kafka-batch", state_path);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!s->batch_path || !conf) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto fail;
    }
    /* a restarted loader waits for its previous member to time out when
     * that one could not leave the group: keep the wait short by default */
    static const char *const defaults[][2] = {{"auto.offset.reset", "earliest"},
                                              {"enable.partition.eof", "true"},
                                              {"session.timeout.ms", "10000"},
                                              {"heartbeat.interval.ms", "1000"}};
    for (size_t i = 0; i < sizeof defaults / sizeof *defaults; i++)
        rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], es, sizeof es);
    rc = st_kafka_conf_apply(conf, cfg->props, cfg->n_props, "properties", err);
    rc = rc ? rc
            : st_kafka_conf_apply(conf, cfg->consumer_props, cfg->n_consumer_props,
                                  "consumer_properties", err);
    if (rc)
        goto fail;
    const char *fixed[][2] = {{"bootstrap.servers", cfg->brokers},
                              {"group.id", cfg->group_id},
                              {"enable.auto.commit", "false"},
                              {"enable.auto.offset.store", "false"}};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
        if (rd_kafka_conf_set(conf, fixed[i][0], fixed[i][1], es, sizeof es) != RD_KAFKA_CONF_OK) {
            rc = st_fail(err, ST_ERR_INVALID, "collector.kafka: %s: %s", fixed[i][0], es);
            goto fail;
        }
    }
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_log_cb(conf, on_log);
    s->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, es, sizeof es);
    if (!s->rk) {
        rc = st_fail(err, ST_ERR_INVALID, "kafka: cannot create the consumer: %s", es);
        goto fail;
    }
    conf = NULL;
    rd_kafka_poll_set_consumer(s->rk);
    rc = load_positions(s, topics, n_topics, err);
    if (rc)
        goto fail;
    sub = rd_kafka_topic_partition_list_new((int)n_topics);
    for (size_t i = 0; i < n_topics; i++)
        rd_kafka_topic_partition_list_add(sub, topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(s->rk, sub);
    if (e) {
        rc = st_fail(err, ST_ERR_REMOTE, "kafka: subscribing: %s", rd_kafka_err2str(e));
        goto fail;
    }
    rd_kafka_topic_partition_list_destroy(sub);
    st_info("loader: kafka group %s, %zu topics, %zu partitions, position %llu",
            cfg->group_id, n_topics, s->n_parts, (unsigned long long)s->position);
    *out = s;
    return ST_OK;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (sub)
        rd_kafka_topic_partition_list_destroy(sub);
    st_kafka_src_close(s);
    return rc;
}

void st_kafka_src_close(st_kafka_src *s)
{
    if (!s)
        return;
    drop_msgs(s->out, &s->n_out);
    drop_msgs(s->held, &s->n_held);
    if (s->rk) {
        rd_kafka_consumer_close(s->rk);
        rd_kafka_destroy(s->rk);
    }
    for (size_t i = 0; i < s->n_parts; i++)
        st_free(s->parts[i].topic);
    st_free(s->parts);
    st_free(s->held);
    st_free(s->out);
    st_free(s->batch_path);
    st_free(s);
}

uint64_t st_kafka_src_position(const st_kafka_src *s) { return s->position; }

uint64_t st_kafka_src_lag(const st_kafka_src *s) { return atomic_load(&((st_kafka_src *)s)->lag); }

static bool replay_done(const st_kafka_src *s)
{
    for (size_t i = 0; i < s->n_parts; i++)
        if (s->parts[i].limit >= 0 && s->parts[i].next < s->parts[i].limit)
            return false;
    return true;
}

static bool all_eof(const st_kafka_src *s)
{
    if (!s->assigned_once)
        return false;
    for (size_t i = 0; i < s->n_parts; i++)
        if (s->parts[i].assigned && !s->parts[i].eof)
            return false;
    return true;
}

/* Hands out m (or holds it back, or drops a copy already handed out).
 * Returns true when m went into recs[*n]. */
static bool take(st_kafka_src *s, rd_kafka_message_t *m, st_evlog_rec *recs, size_t *n,
                 st_err *err, st_rc *rc)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    part *p = add_part(s, topic, m->partition);
    if (!p) {
        *rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        rd_kafka_message_destroy(m);
        return false;
    }
    if (m->offset < p->next) {
        rd_kafka_message_destroy(m);   /* already handed out (refetch after a seek) */
        return false;
    }
    if (s->replaying && (p->limit < 0 || m->offset >= p->limit)) {
        if (!push_msg(&s->held, &s->n_held, &s->cap_held, m)) {
            *rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
            rd_kafka_message_destroy(m);
        }
        return false;
    }
    if (!push_msg(&s->out, &s->n_out, &s->cap_out, m)) {
        *rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        rd_kafka_message_destroy(m);
        return false;
    }
    s->position += (uint64_t)(m->offset + 1 - p->next);
    p->next = m->offset + 1;
    p->eof = false;
    recs[*n].seq = s->position - 1;
    recs[*n].data = m->payload ? m->payload : "";
    recs[*n].len = m->len;
    (*n)++;
    return true;
}

static void update_lag(st_kafka_src *s)
{
    uint64_t lag = 0;
    for (size_t i = 0; i < s->n_parts; i++) {
        part *p = &s->parts[i];
        int64_t lo = 0, hi = 0;
        if (p->assigned &&
            !rd_kafka_get_watermark_offsets(s->rk, p->topic, p->partition, &lo, &hi) &&
            hi > p->committed)
            lag += (uint64_t)(hi - (p->committed > lo ? p->committed : lo));
    }
    atomic_store(&s->lag, lag);
}

st_rc st_kafka_src_read(st_kafka_src *s, st_evlog_rec *recs, size_t max, size_t *out_n,
                        st_err *err)
{
    *out_n = 0;
    drop_msgs(s->out, &s->n_out);
    size_t n = 0;
    st_rc rc = ST_OK;
    /* messages held back by a replay come first, in fetch order */
    size_t keep = 0;
    for (size_t i = 0; i < s->n_held; i++) {
        rd_kafka_message_t *m = s->held[i];
        part *p = find_part(s, rd_kafka_topic_name(m->rkt), m->partition);
        bool ok = n < max && rc == ST_OK &&
                  (!s->replaying || (p && p->limit >= 0 && m->offset < p->limit));
        if (ok) {
            if (p && m->offset < p->next) {
                rd_kafka_message_destroy(m);
                continue;
            }
            bool was_replaying = s->replaying;
            s->replaying = false;   /* take() must not hold it again */
            take(s, m, recs, &n, err, &rc);
            s->replaying = was_replaying;
        } else {
            s->held[keep++] = m;
        }
    }
    s->n_held = keep;
    int64_t idle_since = st_mono_ns();
    while (rc == ST_OK && n < max) {
        if (s->replaying && replay_done(s))
            break;
        bool was_assigned = s->assigned_once;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(s->rk, 100);
        if (s->assigned_once != was_assigned)
            idle_since = st_mono_ns();   /* the group just joined: wait for fetches */
        if (!m) {
            int64_t idle = s->assigned_once ? IDLE_MS : JOIN_MS;
            if (n > 0 || all_eof(s) || st_mono_ns() - idle_since > idle * 1000000)
                break;
            continue;
        }
        if (m->err) {
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                part *p = m->rkt ? find_part(s, rd_kafka_topic_name(m->rkt), m->partition) : NULL;
                if (p && m->offset <= p->next)
                    p->eof = true;
            } else if (m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                       m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
                st_debug("kafka consumer: %s", rd_kafka_message_errstr(m));
            } else {
                st_warn("kafka consumer: %s", rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        if (take(s, m, recs, &n, err, &rc))
            idle_since = st_mono_ns();
    }
    update_lag(s);
    st_debug("kafka consumer: read %zu records (assigned %d, eof %d, replaying %d, held %zu)", n,
             s->assigned_once, all_eof(s), s->replaying, s->n_held);
    if (rc)
        return rc;
    *out_n = n;
    return ST_OK;
}

st_rc st_kafka_src_prepare(st_kafka_src *s, st_err *err)
{
    st_buf b;
    st_buf_init(&b, 0);
    st_buf_printf(&b, "%s\nv %llu %llu\n", BATCH_MAGIC, (unsigned long long)s->committed_pos,
                  (unsigned long long)s->position);
    for (size_t i = 0; i < s->n_parts; i++) {
        part *p = &s->parts[i];
        if (p->next != p->committed)
            st_buf_printf(&b, "p %lld %lld %d %s\n", (long long)p->committed, (long long)p->next,
                          (int)p->partition, p->topic);
    }
    st_rc rc = b.data ? st_file_write_atomic(s->batch_path, b.data, b.len, err)
                      : st_fail(err, ST_ERR_NOMEM, "out of memory");
    st_buf_free(&b);
    if (rc)
        st_err_ctx(err, "loader: kafka batch file");
    return rc;
}

st_rc st_kafka_src_commit(st_kafka_src *s, st_err *err)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    for (size_t i = 0; i < s->n_parts; i++) {
        part *p = &s->parts[i];
        if (p->next != p->committed)
            rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = p->next;
    }
    st_rc rc = ST_OK;
    if (l->cnt) {
        rd_kafka_resp_err_t e = rd_kafka_commit(s->rk, l, 0);
        for (int i = 0; !e && i < l->cnt; i++)
            e = l->elems[i].err;
        if (e)
            rc = st_fail(err, ST_ERR_REMOTE, "kafka: committing the offsets of group %s: %s",
                         s->cfg->group_id, rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (rc)
        return rc;
    for (size_t i = 0; i < s->n_parts; i++) {
        s->parts[i].committed = s->parts[i].next;
        s->parts[i].limit = -1;
    }
    s->committed_pos = s->position;
    s->replaying = false;
    unlink(s->batch_path);
    update_lag(s);
    return ST_OK;
}

st_rc st_kafka_src_rewind(st_kafka_src *s, st_err *err)
{
    drop_msgs(s->out, &s->n_out);
    drop_msgs(s->held, &s->n_held);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    for (size_t i = 0; i < s->n_parts; i++) {
        part *p = &s->parts[i];
        if (p->assigned && p->next != p->committed)
            rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset =
                p->committed > 0 ? p->committed : RD_KAFKA_OFFSET_BEGINNING;
        p->next = p->committed;
        p->limit = -1;
        p->eof = false;
    }
    s->position = s->committed_pos;
    s->replaying = false;
    st_rc rc = ST_OK;
    if (l->cnt) {
        rd_kafka_error_t *e = rd_kafka_seek_partitions(s->rk, l, META_TIMEOUT_MS);
        if (e) {
            rc = st_fail(err, ST_ERR_REMOTE, "kafka: seeking back to the committed offsets: %s",
                         rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

st_rc st_kafka_src_replay(st_kafka_src *s, uint64_t end, st_err *err)
{
    char *text = NULL;
    size_t len = 0;
    st_rc rc = st_file_read(s->batch_path, 16 << 20, &text, &len, err);
    if (rc) {
        st_err_ctx(err, "loader: the tables hold a batch up to position %llu beyond the kafka "
                        "group's committed position %llu, and its batch file is unreadable",
                   (unsigned long long)end, (unsigned long long)s->committed_pos);
        return ST_ERR_CORRUPT;
    }
    unsigned long long v0 = 0, v1 = 0;
    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    if (!line || strcmp(line, BATCH_MAGIC) || !(line = strtok_r(NULL, "\n", &save)) ||
        sscanf(line, "v %llu %llu", &v0, &v1) != 2 || v0 != s->committed_pos || v1 != end) {
        rc = st_fail(err, ST_ERR_CORRUPT,
                     "loader: the tables hold a batch up to position %llu, the kafka group's "
                     "committed position is %llu, and %s describes %llu..%llu (were the group's "
                     "offsets reset? load into a new lake or restore them)",
                     (unsigned long long)end, (unsigned long long)s->committed_pos,
                     s->batch_path, v0, v1);
        st_free(text);
        return rc;
    }
    for (size_t i = 0; i < s->n_parts; i++)
        s->parts[i].limit = s->parts[i].next;   /* nothing from partitions not in the batch */
    while ((line = strtok_r(NULL, "\n", &save))) {
        long long a, b;
        int pn, used = 0;
        if (sscanf(line, "p %lld %lld %d %n", &a, &b, &pn, &used) != 3 || !used) {
            rc = st_fail(err, ST_ERR_CORRUPT, "%s: bad line '%s'", s->batch_path, line);
            break;
        }
        part *p = add_part(s, line + used, pn);
        if (!p) {
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
            break;
        }
        if (p->next != a) {
            rc = st_fail(err, ST_ERR_CORRUPT,
                         "%s: partition %s/%d starts at %lld but the group committed %lld",
                         s->batch_path, p->topic, pn, a, (long long)p->next);
            break;
        }
        p->limit = b;
    }
    st_free(text);
    if (rc) {
        for (size_t i = 0; i < s->n_parts; i++)
            s->parts[i].limit = -1;
        return rc;
    }
    s->replaying = true;
    st_info("loader: kafka: re-reading the batch %llu..%llu from %s", v0, v1, s->batch_path);
    return ST_OK;
}
