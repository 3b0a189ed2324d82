/*
 * evlog.c - the raw event log: framed records in segment files, group
 * commit, roll, zstd seal, torn-tail recovery and retention.  The reader the
 * loader uses is in evlog_read.c; the format is described in
 * src/collect/README.md and docs/ingestion.md.
 *
 * Threads: request threads call st_evlog_append (copy framed bytes into the
 * pending buffer under the mutex), then either register a completion
 * callback (st_evlog_on_durable, what the server does: no thread waits) or
 * sleep on cv_durable (st_evlog_wait, tools and tests).  One committer thread
 * swaps the pending buffer out as soon as it is idle, writes it to the active
 * segment, fdatasyncs once for everything gathered, raises durable_seq and
 * calls the callbacks it covers: whatever arrives during one fsync shares the
 * next one, so batches grow with load and a lone event waits for nothing
 * (commit_delay = 0 in PostgreSQL's terms).  One sealer thread compresses
 * closed segments and applies retention, so neither ever delays a commit.
 * The log is also the "local" st_sink (sink.h) the server writes through.
 */
#include "strata/collect.h"
#include "collect/evlog_int.h"
#include "collect/sink.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zstd.h>

/* Batches between take and fsync end; more than committers can hold. */
#define EVLOG_RING 64
#define EVLOG_MAX_COMMITTERS 16
#define EVLOG_KEEP_BUF (4u << 20)

typedef struct evlog_batch {
    uint64_t end;   /* next_seq after its last record */
    bool done, ok;
} evlog_batch;

/* A registered completion: done(arg, rc) once durable_seq >= ticket. */
typedef struct waiter {
    uint64_t ticket;
    st_sink_done_fn done;
    void *arg;
} waiter;

struct st_evlog {
    st_evlog_opts o;
    char *dir;

    pthread_mutex_t mu;
    pthread_mutex_t wmu;        /* committers: take a batch and write it, in order */
    pthread_cond_t cv_commit;   /* committer: work arrived */
    pthread_cond_t cv_durable;  /* waiters: durable_seq moved or failure */
    pthread_cond_t cv_seal;     /* sealer: work arrived; seal_wait: queue empty */

    /* guarded by mu */
    char *pend;
    size_t pend_len, pend_cap, pend_n;
    uint64_t next_seq;
    uint64_t durable_seq;
    bool stop;
    bool stopped;               /* the committers have exited: nothing more gets durable */
    bool failed;
    bool disk_low;
    bool roll_req;
    uint64_t *seal_q;
    size_t n_seal, cap_seal;
    bool sealing;
    waiter *waiters;
    size_t n_wait, cap_wait;
    evlog_batch ring[EVLOG_RING]; /* batches [ring_head, ring_tail) not retired yet */
    uint64_t ring_head, ring_tail;
    int n_syncing;              /* batches taken whose fsync has not ended */
    st_evlog_stats st;

    /* committers, under wmu (fd is read after it for the fsync) */
    int fd;
    uint64_t seg_id;
    uint64_t seg_size;
    int64_t seg_created_ms;
    int64_t last_disk_check_ns;

    pthread_t committers[EVLOG_MAX_COMMITTERS], sealer;
    int n_committers;
    bool started_sealer;
};

static const int64_t fsync_buckets_us[10] = ST_EVLOG_FSYNC_BUCKETS_US;

void evlog_put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

uint32_t evlog_get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    evlog_put_u32(p, (uint32_t)v);
    evlog_put_u32(p + 4, (uint32_t)(v >> 32));
}

uint64_t evlog_get_u64(const unsigned char *p)
{
    return (uint64_t)evlog_get_u32(p) | (uint64_t)evlog_get_u32(p + 4) << 32;
}

char *evlog_seg_path(const char *dir, uint64_t id, bool sealed)
{
    return st_sprintf("%s/%020llu.seg%s", dir, (unsigned long long)id, sealed ? ".zst" : "");
}

uint32_t evlog_frame_crc(const unsigned char *len4, const void *data, size_t len)
{
    return st_crc32c(st_crc32c(0, len4, 4), data, len);
}

st_rc st_evlog_frame(st_buf *out, const void *data, size_t len)
{
    if (len > EVLOG_MAX_RECORD)
        return ST_ERR_LIMIT;
    unsigned char hdr[8];
    evlog_put_u32(hdr, (uint32_t)len);
    evlog_put_u32(hdr + 4, evlog_frame_crc(hdr, data, len));
    st_rc rc = st_buf_append(out, hdr, 8);
    if (!rc)
        rc = st_buf_append(out, data, len);
    return rc;
}

/* Lists segment ids in dir, ascending.  OWNED *out. */
st_rc evlog_list(const char *dir, evlog_seg **out, size_t *out_n, st_err *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return st_fail_errno(err, errno == ENOENT ? ST_ERR_NOTFOUND : ST_ERR_IO,
                             "event log %s", dir);
    evlog_seg *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    st_rc rc = ST_OK;
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        size_t l = strlen(nm);
        bool sealed;
        if (l == 24 && !strcmp(nm + 20, ".seg"))
            sealed = false;
        else if (l == 28 && !strcmp(nm + 20, ".seg.zst"))
            sealed = true;
        else
            continue;
        uint64_t id = 0;
        bool ok = true;
        for (int i = 0; i < 20; i++) {
            if (nm[i] < '0' || nm[i] > '9')
                ok = false;
            else
                id = id * 10 + (uint64_t)(nm[i] - '0');
        }
        if (!ok)
            continue;
        size_t j;
        for (j = 0; j < n && v[j].id != id; j++)
            ;
        if (j == n) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                evlog_seg *nv = st_realloc(v, cap * sizeof *v);
                if (!nv) {
                    rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
                    break;
                }
                v = nv;
            }
            v[n].id = id;
            v[n].has_log = v[n].has_zst = false;
            n++;
        }
        if (sealed)
            v[j].has_zst = true;
        else
            v[j].has_log = true;
    }
    closedir(d);
    if (rc) {
        st_free(v);
        return rc;
    }
    /* insertion sort: a log has few segments */
    for (size_t i = 1; i < n; i++) {
        evlog_seg t = v[i];
        size_t k = i;
        while (k > 0 && v[k - 1].id > t.id) {
            v[k] = v[k - 1];
            k--;
        }
        v[k] = t;
    }
    *out = v;
    *out_n = n;
    return ST_OK;
}

static bool write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        c += w;
        n -= (size_t)w;
    }
    return true;
}

/* Committer: creates segment id with its header, durable before use. */
static st_rc seg_create(st_evlog *l, uint64_t id, st_err *err)
{
    char *path = evlog_seg_path(l->dir, id, false);
    if (!path)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        st_rc rc = st_fail_errno(err, ST_ERR_IO, "create segment %s", path);
        st_free(path);
        return rc;
    }
    unsigned char hdr[EVLOG_HEADER];
    memcpy(hdr, EVLOG_MAGIC, 8);
    put_u64(hdr + 8, id);
    int64_t now = st_now_ms();
    put_u64(hdr + 16, (uint64_t)now);
    if (!write_all(fd, hdr, sizeof hdr) || fdatasync(fd) < 0) {
        st_rc rc = st_fail_errno(err, ST_ERR_IO, "write segment header %s", path);
        close(fd);
        st_free(path);
        return rc;
    }
    st_free(path);
    st_rc rc = st_fsync_dir(l->dir, err);
    if (rc) {
        close(fd);
        return rc;
    }
    l->fd = fd;
    l->seg_id = id;
    l->seg_size = EVLOG_HEADER;
    l->seg_created_ms = now;
    return ST_OK;
}

static void seal_enqueue_locked(st_evlog *l, uint64_t id)
{
    if (l->n_seal == l->cap_seal) {
        size_t cap = l->cap_seal ? l->cap_seal * 2 : 8;
        uint64_t *q = st_realloc(l->seal_q, cap * sizeof *q);
        if (!q)
            return; /* sealed at the next open instead */
        l->seal_q = q;
        l->cap_seal = cap;
    }
    l->seal_q[l->n_seal++] = id;
    pthread_cond_broadcast(&l->cv_seal);
}

/* Committer holding wmu: closes the active segment and queues its seal.  The
 * segment's records must all be fsync'd before the next segment exists, so
 * this waits for the fsyncs other committers still have in flight on it
 * (own: how many of n_syncing are the caller's batch, not yet written). */
static void seg_close_active(st_evlog *l, int own)
{
    if (l->fd < 0)
        return;
    pthread_mutex_lock(&l->mu);
    while (l->n_syncing > own)
        pthread_cond_wait(&l->cv_durable, &l->mu);
    pthread_mutex_unlock(&l->mu);
    close(l->fd);
    l->fd = -1;
    pthread_mutex_lock(&l->mu);
    if (l->o.compress)
        seal_enqueue_locked(l, l->seg_id);
    pthread_mutex_unlock(&l->mu);
}

static bool need_roll(st_evlog *l)
{
    if (l->fd < 0 || l->seg_size <= EVLOG_HEADER)
        return false;
    if (l->seg_size >= l->o.segment_bytes)
        return true;
    return l->o.segment_ms > 0 && st_now_ms() - l->seg_created_ms >= l->o.segment_ms;
}

/* Committer holding wmu. */
static void check_disk(st_evlog *l)
{
    if (!l->o.min_free_bytes)
        return;
    int64_t now = st_mono_ns();
    if (l->last_disk_check_ns && now - l->last_disk_check_ns < 500000000)
        return;
    l->last_disk_check_ns = now;
    struct statvfs sv;
    if (statvfs(l->dir, &sv) < 0)
        return;
    bool low = (uint64_t)sv.f_bavail * sv.f_frsize < l->o.min_free_bytes;
    pthread_mutex_lock(&l->mu);
    if (low != l->disk_low)
        st_warn("event log %s: disk %s", l->dir, low ? "low, refusing events" : "ok again");
    l->disk_low = low;
    pthread_mutex_unlock(&l->mu);
}

/* Committer holding wmu: writes one gathered batch starting at sequence
 * first into the active segment (rolling first when due). */
static st_rc write_batch(st_evlog *l, const char *data, size_t len, uint64_t first, st_err *err)
{
    if (need_roll(l))
        seg_close_active(l, 1);
    if (l->fd < 0) {
        st_rc rc = seg_create(l, first, err);
        if (rc)
            return rc;
    }
    if (!write_all(l->fd, data, len))
        return st_fail_errno(err, ST_ERR_IO, "write segment %020llu in %s",
                             (unsigned long long)l->seg_id, l->dir);
    l->seg_size += len;
    return ST_OK;
}

/* Committer, mu held: calls (with mu released) every callback whose ticket
 * is durable, or all of them once the log failed.  fire is the calling
 * committer's scratch array. */
static void fire_waiters_locked(st_evlog *l, waiter **fire, size_t *cap_fire)
{
    for (;;) {
        if (!l->n_wait)
            return;
        if (*cap_fire < l->n_wait) {
            waiter *f = st_realloc(*fire, l->n_wait * sizeof *f);
            if (!f)
                return; /* retried after the next commit or idle tick */
            *fire = f;
            *cap_fire = l->n_wait;
        }
        bool all = l->failed || l->stopped;
        size_t n_fire = 0, k = 0;
        for (size_t i = 0; i < l->n_wait; i++) {
            if (all || l->waiters[i].ticket <= l->durable_seq)
                (*fire)[n_fire++] = l->waiters[i];
            else
                l->waiters[k++] = l->waiters[i];
        }
        l->n_wait = k;
        if (!n_fire)
            return;
        uint64_t durable = l->durable_seq;
        pthread_mutex_unlock(&l->mu);
        for (size_t i = 0; i < n_fire; i++)
            (*fire)[i].done((*fire)[i].arg, (*fire)[i].ticket <= durable ? ST_OK : ST_ERR_IO);
        pthread_mutex_lock(&l->mu);
    }
}

/* mu held: one batch's fsync ended.  durable_seq only moves over a prefix
 * of batches that all succeeded: after a failed fsync Linux may report
 * success to a later one for pages that never reached the disk. */
static void batch_done_locked(st_evlog *l, uint64_t id, bool ok, uint64_t dt_ns)
{
    l->ring[id % EVLOG_RING].done = true;
    l->ring[id % EVLOG_RING].ok = ok;
    l->n_syncing--;
    if (ok) {
        l->st.n_fsync++;
        l->st.fsync_ns_total += dt_ns;
        if (dt_ns > l->st.fsync_ns_max)
            l->st.fsync_ns_max = dt_ns;
        int b = 0;
        while (b < 9 && (int64_t)(dt_ns / 1000) > fsync_buckets_us[b])
            b++;
        l->st.fsync_hist[b]++;
    }
    while (l->ring_head < l->ring_tail && l->ring[l->ring_head % EVLOG_RING].done) {
        const evlog_batch *b = &l->ring[l->ring_head % EVLOG_RING];
        if (!b->ok)
            l->failed = true;
        else if (!l->failed)
            l->durable_seq = b->end;
        l->ring_head++;
    }
    pthread_cond_broadcast(&l->cv_durable);
}

/* A committer.  The take-and-write step runs under wmu, one committer at a
 * time, so batches reach the file in sequence order; the fdatasync runs
 * outside any lock, so up to commit_threads fsyncs overlap (the device
 * queues them; each covers everything written before it started). */
static void *committer_main(void *arg)
{
    st_evlog *l = arg;
    char *buf = NULL;          /* this committer's spare pending buffer */
    size_t buf_cap = 0;
    waiter *fire = NULL;
    size_t cap_fire = 0;
    for (;;) {
        pthread_mutex_lock(&l->wmu);
        pthread_mutex_lock(&l->mu);
        while (!l->stop && !l->pend_len && !l->roll_req) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            if (pthread_cond_timedwait(&l->cv_commit, &l->mu, &ts) == ETIMEDOUT)
                break;
        }
        if (l->roll_req || (!l->pend_len && !l->stop)) {
            /* idle tick or explicit roll: time-based roll and disk check */
            bool forced = l->roll_req;
            pthread_mutex_unlock(&l->mu);
            if ((forced && l->fd >= 0 && l->seg_size > EVLOG_HEADER) || need_roll(l))
                seg_close_active(l, 0);
            check_disk(l);
            pthread_mutex_lock(&l->mu);
            if (forced) /* st_evlog_roll waits for this after its records are durable */
                l->roll_req = false;
            pthread_cond_broadcast(&l->cv_durable);
            pthread_mutex_unlock(&l->mu);
            pthread_mutex_unlock(&l->wmu);
            pthread_mutex_lock(&l->mu);
            fire_waiters_locked(l, &fire, &cap_fire);
            pthread_mutex_unlock(&l->mu);
            continue;
        }
        if (!l->pend_len && l->stop) {
            pthread_mutex_unlock(&l->mu);
            pthread_mutex_unlock(&l->wmu);
            break;
        }
        /* No deliberate wait (fsync_ms and fsync_bytes are only upper bounds):
         * an idle committer flushes at once, and under load the batch is what
         * arrived during the fsyncs in flight.  Waiting here would cap a
         * closed-loop client at one request per fsync_ms. */
        /* take the pending buffer; appenders continue into the spare one */
        char *data = l->pend;
        size_t data_cap = l->pend_cap;
        size_t len = l->pend_len;
        size_t n = l->pend_n;
        uint64_t end = l->next_seq;
        uint64_t first = end - n;
        l->pend = buf;
        l->pend_cap = buf_cap;
        l->pend_len = 0;
        l->pend_n = 0;
        bool failed = l->failed;
        uint64_t id = l->ring_tail++;
        l->ring[id % EVLOG_RING] = (evlog_batch){.end = end};
        l->n_syncing++;
        pthread_mutex_unlock(&l->mu);

        st_err e;
        st_rc rc = failed ? ST_ERR_IO : write_batch(l, data, len, first, &e);
        int fd = l->fd;
        check_disk(l);
        pthread_mutex_unlock(&l->wmu);
        int64_t t0 = st_mono_ns();
        if (!rc && fdatasync(fd) < 0)
            rc = st_fail_errno(&e, ST_ERR_IO, "fsync segment in %s", l->dir);
        uint64_t dt = (uint64_t)(st_mono_ns() - t0);
        if (rc && !failed)
            st_error("event log: %s; refusing further events", e.msg);
        /* keep the buffer for the next swap unless a burst made it large:
         * each committer holds one */
        if (data_cap > EVLOG_KEEP_BUF) {
            st_free(data);
            data = NULL;
            data_cap = 0;
        }
        buf = data;
        buf_cap = data_cap;

        pthread_mutex_lock(&l->mu);
        batch_done_locked(l, id, rc == ST_OK, dt);
        fire_waiters_locked(l, &fire, &cap_fire);
        pthread_mutex_unlock(&l->mu);
    }
    st_free(buf);
    st_free(fire);
    return NULL;
}

/* ---- sealing ---- */

static st_rc seal_one(st_evlog *l, uint64_t id, st_err *err)
{
    char *src = evlog_seg_path(l->dir, id, false);
    char *dst = evlog_seg_path(l->dir, id, true);
    char *tmp = st_sprintf("%s/%020llu.seg.zst.tmp", l->dir, (unsigned long long)id);
    int in = -1, out = -1;
    ZSTD_CCtx *cc = NULL;
    char *ibuf = NULL, *obuf = NULL;
    st_rc rc = ST_OK;
    if (!src || !dst || !tmp) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto fail;
    }
    in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        rc = st_fail_errno(err, ST_ERR_IO, "seal: open %s", src);
        goto fail;
    }
    struct stat sst;
    if (fstat(in, &sst) < 0) {
        rc = st_fail_errno(err, ST_ERR_IO, "seal: stat %s", src);
        goto fail;
    }
    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        rc = st_fail_errno(err, ST_ERR_IO, "seal: create %s", tmp);
        goto fail;
    }
    size_t isz = ZSTD_CStreamInSize(), osz = ZSTD_CStreamOutSize();
    ibuf = st_malloc(isz);
    obuf = st_malloc(osz);
    cc = ZSTD_createCCtx();
    if (!ibuf || !obuf || !cc) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto fail;
    }
    ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, l->o.zstd_level);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
    for (;;) {
        ssize_t r = read(in, ibuf, isz);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = st_fail_errno(err, ST_ERR_IO, "seal: read %s", src);
            goto fail;
        }
        ZSTD_EndDirective mode = r == 0 ? ZSTD_e_end : ZSTD_e_continue;
        ZSTD_inBuffer ib = {ibuf, (size_t)r, 0};
        bool done = false;
        while (!done) {
            ZSTD_outBuffer ob = {obuf, osz, 0};
            size_t left = ZSTD_compressStream2(cc, &ob, &ib, mode);
            if (ZSTD_isError(left)) {
                rc = st_fail(err, ST_ERR_IO, "seal %s: zstd: %s", src, ZSTD_getErrorName(left));
                goto fail;
            }
            if (!write_all(out, obuf, ob.pos)) {
                rc = st_fail_errno(err, ST_ERR_IO, "seal: write %s", tmp);
                goto fail;
            }
            done = mode == ZSTD_e_end ? left == 0 : ib.pos == ib.size;
        }
        if (r == 0)
            break;
    }
    /* keep the segment's last-write time: retention reads it */
    struct timespec times[2] = {sst.st_atim, sst.st_mtim};
    futimens(out, times);
    if (fsync(out) < 0) {
        rc = st_fail_errno(err, ST_ERR_IO, "seal: fsync %s", tmp);
        goto fail;
    }
    if (rename(tmp, dst) < 0) {
        rc = st_fail_errno(err, ST_ERR_IO, "seal: rename %s", tmp);
        goto fail;
    }
    rc = st_fsync_dir(l->dir, err);
    if (rc)
        goto fail;
    /* the .zst is durable; a crash before this unlink is cleaned up at open */
    unlink(src);
    rc = st_fsync_dir(l->dir, err);
fail:
    if (rc && tmp)
        unlink(tmp);
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    ZSTD_freeCCtx(cc);
    st_free(ibuf);
    st_free(obuf);
    st_free(src);
    st_free(dst);
    st_free(tmp);
    return rc;
}

static void *sealer_main(void *arg)
{
    st_evlog *l = arg;
    int64_t last_retain = 0;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && !l->n_seal) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 5;
            if (pthread_cond_timedwait(&l->cv_seal, &l->mu, &ts) == ETIMEDOUT)
                break;
        }
        if (l->stop)
            break;
        if (l->n_seal) {
            uint64_t id = l->seal_q[0];
            memmove(l->seal_q, l->seal_q + 1, (l->n_seal - 1) * sizeof *l->seal_q);
            l->n_seal--;
            l->sealing = true;
            pthread_mutex_unlock(&l->mu);
            st_err e;
            st_rc rc = seal_one(l, id, &e);
            if (rc)
                st_warn("event log: %s (segment stays uncompressed)", e.msg);
            pthread_mutex_lock(&l->mu);
            l->sealing = false;
            if (!rc)
                l->st.n_segments_sealed++;
            pthread_cond_broadcast(&l->cv_seal);
            continue;
        }
        if (l->o.retention_days > 0 && st_now_ms() - last_retain > 3600 * 1000) {
            last_retain = st_now_ms();
            pthread_mutex_unlock(&l->mu);
            st_err e;
            if (st_evlog_retain(l, st_now_ms(), NULL, &e))
                st_warn("event log retention: %s", e.msg);
            pthread_mutex_lock(&l->mu);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

void st_evlog_seal_wait(st_evlog *l)
{
    pthread_mutex_lock(&l->mu);
    while ((l->n_seal || l->sealing) && l->started_sealer)
        pthread_cond_wait(&l->cv_seal, &l->mu);
    pthread_mutex_unlock(&l->mu);
}

/* ---- open / recovery ---- */

/* Scans an unsealed segment, truncating a torn tail.  *out_n records. */
static st_rc recover_active(st_evlog *l, uint64_t id, uint64_t *out_n, st_err *err)
{
    char *path = evlog_seg_path(l->dir, id, false);
    if (!path)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    st_rc rc = ST_OK;
    char *buf = NULL;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        rc = st_fail_errno(err, ST_ERR_IO, "open %s", path);
        goto fail;
    }
    struct stat sst;
    if (fstat(fd, &sst) < 0) {
        rc = st_fail_errno(err, ST_ERR_IO, "stat %s", path);
        goto fail;
    }
    uint64_t size = (uint64_t)sst.st_size;
    unsigned char hdr[EVLOG_HEADER];
    if (size < EVLOG_HEADER || pread(fd, hdr, EVLOG_HEADER, 0) != EVLOG_HEADER ||
        memcmp(hdr, EVLOG_MAGIC, 8) || evlog_get_u64(hdr + 8) != id) {
        if (size > EVLOG_HEADER) {
            rc = st_fail(err, ST_ERR_CORRUPT, "%s: bad segment header", path);
            goto fail;
        }
        /* a crash while creating it: it holds no record, start it again */
        close(fd);
        fd = -1;
        unlink(path);
        *out_n = 0;
        l->fd = -1;
        goto fail;
    }
    uint64_t off = EVLOG_HEADER, n = 0;
    size_t cap = 1 << 20;
    buf = st_malloc(cap);
    if (!buf) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (;;) {
        unsigned char fh[8];
        if (off + 8 > size || pread(fd, fh, 8, (off_t)off) != 8)
            break;
        uint32_t len = evlog_get_u32(fh);
        if (len > EVLOG_MAX_RECORD || off + 8 + len > size)
            break;
        if (len > cap) {
            char *nb = st_realloc(buf, len);
            if (!nb) {
                rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
                goto fail;
            }
            buf = nb;
            cap = len;
        }
        if (pread(fd, buf, len, (off_t)(off + 8)) != (ssize_t)len)
            break;
        if (evlog_frame_crc(fh, buf, len) != evlog_get_u32(fh + 4))
            break;
        off += 8 + len;
        n++;
    }
    if (off < size) {
        st_warn("event log: %s: torn tail, truncating %llu bytes at offset %llu", path,
                (unsigned long long)(size - off), (unsigned long long)off);
        if (ftruncate(fd, (off_t)off) < 0 || fsync(fd) < 0) {
            rc = st_fail_errno(err, ST_ERR_IO, "truncate %s", path);
            goto fail;
        }
    }
    close(fd);
    fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) {
        rc = st_fail_errno(err, ST_ERR_IO, "open %s", path);
        goto fail;
    }
    l->fd = fd;
    fd = -1;
    l->seg_id = id;
    l->seg_size = off;
    l->seg_created_ms = (int64_t)evlog_get_u64(hdr + 16);
    *out_n = n;
fail:
    if (fd >= 0)
        close(fd);
    st_free(buf);
    st_free(path);
    return rc;
}

/* Counts the records of a sealed segment through the reader. */
static st_rc count_sealed(const char *dir, uint64_t id, uint64_t *out_n, st_err *err)
{
    st_evlog_reader *r = NULL;
    st_evlog_pos pos = {.segment = id, .offset = EVLOG_HEADER, .seq = id};
    st_rc rc = st_evlog_reader_open(dir, &pos, &r, err);
    if (rc)
        return rc;
    uint64_t n = 0;
    st_evlog_rec recs[64];
    for (;;) {
        size_t got;
        rc = st_evlog_read(r, recs, 64, &got, err);
        if (rc || !got)
            break;
        n += got;
    }
    st_evlog_reader_close(r);
    *out_n = n;
    return rc;
}

st_rc st_evlog_open(const st_evlog_opts *opts, st_evlog **out, st_err *err)
{
    if (!opts || !opts->dir || !*opts->dir)
        return st_fail(err, ST_ERR_INVALID, "event log: no directory");
    st_evlog *l = st_calloc(1, sizeof *l);
    if (!l)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    evlog_seg *segs = NULL;
    size_t n_segs = 0;
    st_rc rc = ST_OK;
    l->o = *opts;
    l->fd = -1;
    l->dir = st_strdup(opts->dir);
    l->o.dir = l->dir;
    if (!l->o.fsync_bytes)
        l->o.fsync_bytes = 1 << 20;
    if (!l->o.segment_bytes)
        l->o.segment_bytes = 64u << 20;
    if (!l->o.zstd_level)
        l->o.zstd_level = 3;
    if (!l->o.max_pending_bytes)
        l->o.max_pending_bytes = 64u << 20;
    if (l->o.commit_threads <= 0)
        l->o.commit_threads = 1;
    if (l->o.commit_threads > EVLOG_MAX_COMMITTERS)
        l->o.commit_threads = EVLOG_MAX_COMMITTERS;
    pthread_mutex_init(&l->mu, NULL);
    pthread_mutex_init(&l->wmu, NULL);
    pthread_cond_init(&l->cv_commit, NULL);
    pthread_cond_init(&l->cv_durable, NULL);
    pthread_cond_init(&l->cv_seal, NULL);
    if (!l->dir) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto fail;
    }
    rc = st_mkdirs(l->dir, err);
    if (rc)
        goto fail;
    chmod(l->dir, 0700); /* raw events may carry personal data */
    {
        /* leftovers of an interrupted seal */
        DIR *d = opendir(l->dir);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            size_t nl = strlen(e->d_name);
            if (nl > 4 && !strcmp(e->d_name + nl - 4, ".tmp")) {
                char *p = st_path_join(l->dir, e->d_name);
                if (p)
                    unlink(p);
                st_free(p);
            }
        }
        if (d)
            closedir(d);
    }
    rc = evlog_list(l->dir, &segs, &n_segs, err);
    if (rc)
        goto fail;
    for (size_t i = 0; i < n_segs; i++) {
        if (segs[i].has_log && segs[i].has_zst) {
            /* the .zst was renamed into place after its fsync: it is complete */
            char *p = evlog_seg_path(l->dir, segs[i].id, false);
            if (p)
                unlink(p);
            st_free(p);
            segs[i].has_log = false;
        }
    }
    l->next_seq = 0;
    if (n_segs) {
        evlog_seg *last = &segs[n_segs - 1];
        uint64_t n = 0;
        if (last->has_log) {
            rc = recover_active(l, last->id, &n, err);
        } else {
            rc = count_sealed(l->dir, last->id, &n, err);
        }
        if (rc)
            goto fail;
        l->next_seq = last->id + n;
        for (size_t i = 0; i + 1 < n_segs; i++)
            if (segs[i].has_log && l->o.compress)
                seal_enqueue_locked(l, segs[i].id);
    }
    l->durable_seq = l->next_seq;
    for (int i = 0; i < l->o.commit_threads; i++) {
        if (pthread_create(&l->committers[i], NULL, committer_main, l)) {
            rc = st_fail(err, ST_ERR_IO, "event log: cannot start a committer thread");
            goto fail;
        }
        l->n_committers++;
    }
    if (pthread_create(&l->sealer, NULL, sealer_main, l)) {
        rc = st_fail(err, ST_ERR_IO, "event log: cannot start the sealer thread");
        goto fail;
    }
    l->started_sealer = true;
    st_free(segs);
    *out = l;
    return ST_OK;
fail:
    st_err_ctx(err, "event log %s", opts->dir);
    st_free(segs);
    st_evlog_close(l);
    return rc;
}

/* Refuses appends, lets the committers flush what is queued and answer
 * every callback, and joins the threads.  Idempotent. */
static void evlog_stop(st_evlog *l)
{
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_broadcast(&l->cv_commit);
    pthread_cond_broadcast(&l->cv_seal);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->n_committers; i++)
        pthread_join(l->committers[i], NULL);
    if (l->started_sealer)
        pthread_join(l->sealer, NULL);
    l->n_committers = 0;
    l->started_sealer = false;
    pthread_mutex_lock(&l->mu);
    l->stopped = true;
    /* what is still registered can no longer become durable */
    size_t n = l->n_wait;
    l->n_wait = 0;
    uint64_t durable = l->durable_seq;
    waiter *w = l->waiters;
    pthread_mutex_unlock(&l->mu);
    for (size_t i = 0; i < n; i++)
        w[i].done(w[i].arg, w[i].ticket <= durable ? ST_OK : ST_ERR_IO);
}

void st_evlog_close(st_evlog *l)
{
    if (!l)
        return;
    evlog_stop(l);
    if (l->fd >= 0)
        close(l->fd);
    pthread_mutex_destroy(&l->mu);
    pthread_mutex_destroy(&l->wmu);
    pthread_cond_destroy(&l->cv_commit);
    pthread_cond_destroy(&l->cv_durable);
    pthread_cond_destroy(&l->cv_seal);
    st_free(l->pend);
    st_free(l->seal_q);
    st_free(l->waiters);
    st_free(l->dir);
    st_free(l);
}

st_rc st_evlog_append(st_evlog *l, const void *framed, size_t len, size_t n_records,
                      uint64_t *out_first_seq, uint64_t *out_ticket, st_err *err)
{
    pthread_mutex_lock(&l->mu);
    st_rc rc = ST_OK;
    if (l->failed || l->stop) {
        rc = st_fail(err, ST_ERR_IO, "event log %s failed or closed", l->dir);
        goto out;
    }
    if (l->disk_low) {
        rc = st_fail(err, ST_ERR_LIMIT, "event log %s: disk space low", l->dir);
        goto out;
    }
    if (l->pend_len + len > l->o.max_pending_bytes) {
        rc = st_fail(err, ST_ERR_LIMIT, "event log %s: queue full (%zu bytes waiting)", l->dir,
                     l->pend_len);
        goto out;
    }
    if (l->pend_len + len > l->pend_cap) {
        size_t cap = l->pend_cap ? l->pend_cap : 1 << 16;
        while (cap < l->pend_len + len)
            cap *= 2;
        char *p = st_realloc(l->pend, cap);
        if (!p) {
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
            goto out;
        }
        l->pend = p;
        l->pend_cap = cap;
    }
    /* the committer only sleeps with nothing pending */
    if (!l->pend_len)
        pthread_cond_signal(&l->cv_commit);
    memcpy(l->pend + l->pend_len, framed, len);
    l->pend_len += len;
    l->pend_n += n_records;
    if (out_first_seq)
        *out_first_seq = l->next_seq;
    l->next_seq += n_records;
    *out_ticket = l->next_seq;
    l->st.n_records += n_records;
    l->st.n_bytes += len;
    l->st.pending_bytes = l->pend_len;
    l->st.pending_records = l->pend_n;
out:
    pthread_mutex_unlock(&l->mu);
    return rc;
}

st_rc st_evlog_wait(st_evlog *l, uint64_t ticket, st_err *err)
{
    pthread_mutex_lock(&l->mu);
    while (l->durable_seq < ticket && !l->failed && !l->stopped)
        pthread_cond_wait(&l->cv_durable, &l->mu);
    bool ok = l->durable_seq >= ticket;
    pthread_mutex_unlock(&l->mu);
    return ok ? ST_OK : st_fail(err, ST_ERR_IO, "event log %s: write or fsync failed", l->dir);
}

void st_evlog_on_durable(st_evlog *l, uint64_t ticket, st_sink_done_fn done, void *arg)
{
    pthread_mutex_lock(&l->mu);
    st_rc rc = ST_OK;
    if (l->durable_seq >= ticket) {
        rc = ST_OK;
    } else if (l->failed || l->stopped) {
        rc = ST_ERR_IO;
    } else {
        if (l->n_wait == l->cap_wait) {
            size_t cap = l->cap_wait ? l->cap_wait * 2 : 64;
            waiter *w = st_realloc(l->waiters, cap * sizeof *w);
            if (!w) {
                /* cannot track it: not acknowledged, the client retries and
                 * bronze deduplicates the copy */
                pthread_mutex_unlock(&l->mu);
                done(arg, ST_ERR_IO);
                return;
            }
            l->waiters = w;
            l->cap_wait = cap;
        }
        l->waiters[l->n_wait++] = (waiter){ticket, done, arg};
        pthread_mutex_unlock(&l->mu);
        return;
    }
    pthread_mutex_unlock(&l->mu);
    done(arg, rc);
}

static st_rc sink_append(void *self, const char *source, const void *framed, size_t len,
                         size_t n_records, uint64_t *out_ticket, st_err *err)
{
    (void)source; /* one log for every source: the record carries it */
    return st_evlog_append(self, framed, len, n_records, NULL, out_ticket, err);
}

static void sink_on_durable(void *self, uint64_t ticket, st_sink_done_fn done, void *arg)
{
    st_evlog_on_durable(self, ticket, done, arg);
}

static void sink_stats(void *self, st_evlog_stats *out) { st_evlog_stats_get(self, out); }
static void sink_stop(void *self) { evlog_stop(self); }
static void sink_close(void *self) { st_evlog_close(self); }

static const st_sink_ops evlog_sink_ops = {
    .kind = "local",
    .append = sink_append,
    .on_durable = sink_on_durable,
    .stats = sink_stats,
    .stop = sink_stop,
    .close = sink_close,
};

void st_evlog_sink(st_evlog *log, st_sink *out)
{
    out->ops = &evlog_sink_ops;
    out->self = log;
}

void st_evlog_stats_get(st_evlog *l, st_evlog_stats *out)
{
    pthread_mutex_lock(&l->mu);
    *out = l->st;
    out->next_seq = l->next_seq;
    out->durable_seq = l->durable_seq;
    out->pending_bytes = l->pend_len;
    out->pending_records = l->pend_n;
    out->disk_low = l->disk_low;
    out->failed = l->failed;
    pthread_mutex_unlock(&l->mu);
}

st_rc st_evlog_roll(st_evlog *l, st_err *err)
{
    pthread_mutex_lock(&l->mu);
    uint64_t target = l->next_seq;
    l->roll_req = true;
    pthread_cond_signal(&l->cv_commit);
    /* the committer handles the roll after committing everything queued */
    while (!l->failed && (l->roll_req || l->durable_seq < target))
        pthread_cond_wait(&l->cv_durable, &l->mu);
    bool failed = l->failed;
    pthread_mutex_unlock(&l->mu);
    return failed ? st_fail(err, ST_ERR_IO, "event log %s failed", l->dir) : ST_OK;
}

st_rc st_evlog_retain(st_evlog *l, int64_t now_ms, size_t *out_removed, st_err *err)
{
    size_t removed = 0;
    if (out_removed)
        *out_removed = 0;
    if (l->o.retention_days <= 0)
        return ST_OK;
    evlog_seg *segs = NULL;
    size_t n = 0;
    st_rc rc = evlog_list(l->dir, &segs, &n, err);
    if (rc)
        return rc;
    int64_t cutoff = now_ms - (int64_t)l->o.retention_days * 86400 * 1000;
    /* never the newest segment: it may be the active one */
    for (size_t i = 0; i + 1 < n; i++) {
        for (int z = 0; z < 2; z++) {
            bool sealed = z == 1;
            if (sealed ? !segs[i].has_zst : !segs[i].has_log)
                continue;
            char *p = evlog_seg_path(l->dir, segs[i].id, sealed);
            struct stat sst;
            if (p && stat(p, &sst) == 0 &&
                (int64_t)sst.st_mtim.tv_sec * 1000 + sst.st_mtim.tv_nsec / 1000000 < cutoff &&
                unlink(p) == 0)
                removed++;
            st_free(p);
        }
    }
    st_free(segs);
    if (removed)
        st_fsync_dir(l->dir, NULL);
    if (out_removed)
        *out_removed = removed;
    return ST_OK;
}
