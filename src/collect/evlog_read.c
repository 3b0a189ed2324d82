/*
 * evlog_read.c - the event log reader the loader uses: positions, active
 * (plain) and sealed (.zst) segments, following the writer as it rolls.
 *
 * The writer (evlog.c) only ever appends whole batches and creates the next
 * segment after the previous one is complete and fsync'd.  So at the end of
 * a segment the reader can tell "nothing more yet" (no later segment: stop,
 * the caller polls again) from "segment finished" (a later segment exists:
 * read to its end once more, then move on).  A frame that fails its CRC is
 * only an error in a finished segment; at the tail of the active one it is a
 * write still in progress.
 */
#include "strata/collect.h"
#include "collect/evlog_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

struct st_evlog_reader {
    char *dir;
    bool open;           /* a segment is open */
    bool has_target;     /* skip records below target (open by seq) */
    uint64_t target;
    uint64_t seg_id;
    bool sealed;
    int fd;
    ZSTD_DCtx *zd;
    char *zin;
    size_t zin_cap, zin_len, zin_pos;
    char *buf;           /* decoded segment bytes not consumed yet: [start, end) */
    size_t buf_cap, start, end;
    uint64_t off;        /* segment offset of buf[start] */
    uint64_t seq;        /* sequence number of the next record */
    char *out;           /* data of the records returned by the last read */
    size_t out_cap;
    size_t *offs;
    size_t offs_cap;
};

static void seg_close(st_evlog_reader *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    ZSTD_freeDCtx(r->zd);
    r->zd = NULL;
    r->zin_len = r->zin_pos = 0;
    r->start = r->end = 0;
    r->open = false;
}

/* Makes at least need bytes available at buf[start].  *out_ok false at the
 * current end of the data. */
static st_rc fill(st_evlog_reader *r, size_t need, bool *out_ok, st_err *err)
{
    *out_ok = false;
    if (r->end - r->start >= need) {
        *out_ok = true;
        return ST_OK;
    }
    if (r->start) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (need > r->buf_cap) {
        size_t cap = r->buf_cap ? r->buf_cap : 1 << 18;
        while (cap < need)
            cap *= 2;
        char *b = st_realloc(r->buf, cap);
        if (!b)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        r->buf = b;
        r->buf_cap = cap;
    }
    while (r->end < need) {
        if (!r->sealed) {
            ssize_t n = read(r->fd, r->buf + r->end, r->buf_cap - r->end);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return st_fail_errno(err, ST_ERR_IO, "read segment %020llu in %s",
                                     (unsigned long long)r->seg_id, r->dir);
            if (n == 0)
                return ST_OK;
            r->end += (size_t)n;
            continue;
        }
        if (r->zin_pos == r->zin_len) {
            ssize_t n = read(r->fd, r->zin, r->zin_cap);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return st_fail_errno(err, ST_ERR_IO, "read segment %020llu.seg.zst in %s",
                                     (unsigned long long)r->seg_id, r->dir);
            if (n == 0)
                return ST_OK;
            r->zin_len = (size_t)n;
            r->zin_pos = 0;
        }
        ZSTD_inBuffer in = {r->zin, r->zin_len, r->zin_pos};
        ZSTD_outBuffer o = {r->buf, r->buf_cap, r->end};
        size_t z = ZSTD_decompressStream(r->zd, &o, &in);
        if (ZSTD_isError(z))
            return st_fail(err, ST_ERR_CORRUPT, "segment %020llu.seg.zst in %s: zstd: %s",
                           (unsigned long long)r->seg_id, r->dir, ZSTD_getErrorName(z));
        r->zin_pos = in.pos;
        r->end = o.pos;
    }
    *out_ok = true;
    return ST_OK;
}

static void consume(st_evlog_reader *r, size_t n)
{
    r->start += n;
    r->off += n;
}

/* Opens segment id and positions at offset (>= header). */
static st_rc seg_open(st_evlog_reader *r, uint64_t id, uint64_t offset, uint64_t seq, st_err *err)
{
    seg_close(r);
    char *path = evlog_seg_path(r->dir, id, false);
    if (!path)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    r->sealed = false;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    st_free(path);
    if (r->fd < 0 && errno == ENOENT) {
        /* sealed meanwhile */
        path = evlog_seg_path(r->dir, id, true);
        if (!path)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        r->sealed = true;
        r->fd = open(path, O_RDONLY | O_CLOEXEC);
        st_free(path);
    }
    if (r->fd < 0)
        return st_fail_errno(err, errno == ENOENT ? ST_ERR_NOTFOUND : ST_ERR_IO,
                             "open segment %020llu in %s", (unsigned long long)id, r->dir);
    if (r->sealed) {
        r->zd = ZSTD_createDCtx();
        if (!r->zin) {
            r->zin_cap = ZSTD_DStreamInSize();
            r->zin = st_malloc(r->zin_cap);
        }
        if (!r->zd || !r->zin)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    r->seg_id = id;
    r->off = 0;
    r->open = true;
    bool ok;
    st_rc rc = fill(r, EVLOG_HEADER, &ok, err);
    if (rc)
        return rc;
    if (!ok || memcmp(r->buf + r->start, EVLOG_MAGIC, 8) ||
        evlog_get_u64((const unsigned char *)r->buf + r->start + 8) != id)
        return st_fail(err, ST_ERR_CORRUPT, "segment %020llu in %s: bad header",
                       (unsigned long long)id, r->dir);
    consume(r, EVLOG_HEADER);
    if (offset < EVLOG_HEADER)
        offset = EVLOG_HEADER;
    if (!r->sealed && offset > EVLOG_HEADER) {
        if (lseek(r->fd, (off_t)offset, SEEK_SET) < 0)
            return st_fail_errno(err, ST_ERR_IO, "seek segment %020llu", (unsigned long long)id);
        r->start = r->end = 0;
        r->off = offset;
    }
    while (r->off < offset) {
        size_t chunk = offset - r->off > (1 << 16) ? 1 << 16 : (size_t)(offset - r->off);
        rc = fill(r, chunk, &ok, err);
        if (rc)
            return rc;
        if (!ok)
            return st_fail(err, ST_ERR_INVALID, "offset %llu beyond segment %020llu",
                           (unsigned long long)offset, (unsigned long long)id);
        consume(r, chunk);
    }
    r->seq = seq;
    return ST_OK;
}

static st_rc reader_new(const char *dir, st_evlog_reader **out, st_err *err)
{
    st_evlog_reader *r = st_calloc(1, sizeof *r);
    if (!r)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    r->fd = -1;
    r->dir = st_strdup(dir);
    if (!r->dir) {
        st_free(r);
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    *out = r;
    return ST_OK;
}

st_rc st_evlog_reader_open(const char *dir, const st_evlog_pos *at, st_evlog_reader **out,
                           st_err *err)
{
    st_evlog_reader *r = NULL;
    st_rc rc = reader_new(dir, &r, err);
    if (rc)
        return rc;
    if (at) {
        rc = seg_open(r, at->segment, at->offset, at->seq, err);
        if (rc == ST_ERR_NOTFOUND) {
            /* removed by retention: continue from the oldest that is left */
            seg_close(r);
            r->has_target = true;
            r->target = at->seq;
            rc = ST_OK;
        }
        if (rc) {
            st_evlog_reader_close(r);
            return rc;
        }
    }
    *out = r;
    return ST_OK;
}

st_rc st_evlog_reader_open_seq(const char *dir, uint64_t seq, st_evlog_reader **out, st_err *err)
{
    st_evlog_reader *r = NULL;
    st_rc rc = reader_new(dir, &r, err);
    if (rc)
        return rc;
    r->has_target = true;
    r->target = seq;
    *out = r;
    return ST_OK;
}

/* Not open yet: picks the segment for the target seq (or the oldest). */
static st_rc first_open(st_evlog_reader *r, bool *out_ok, st_err *err)
{
    evlog_seg *segs;
    size_t n;
    *out_ok = false;
    st_rc rc = evlog_list(r->dir, &segs, &n, err);
    if (rc == ST_ERR_NOTFOUND) {
        st_err_clear(err);
        return ST_OK;
    }
    if (rc)
        return rc;
    if (n) {
        size_t pick = 0;
        if (r->has_target)
            for (size_t i = 0; i < n; i++)
                if (segs[i].id <= r->target)
                    pick = i;
        rc = seg_open(r, segs[pick].id, EVLOG_HEADER, segs[pick].id, err);
        *out_ok = rc == ST_OK;
    }
    st_free(segs);
    return rc;
}

/* At the end of the open segment: is there a later one?  *out_next its id. */
static st_rc next_segment(st_evlog_reader *r, bool *out_has, uint64_t *out_next, st_err *err)
{
    evlog_seg *segs;
    size_t n;
    *out_has = false;
    st_rc rc = evlog_list(r->dir, &segs, &n, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (segs[i].id > r->seg_id) {
            *out_has = true;
            *out_next = segs[i].id;
            break;
        }
    }
    st_free(segs);
    return ST_OK;
}

st_rc st_evlog_read(st_evlog_reader *r, st_evlog_rec *recs, size_t max, size_t *out_n,
                    st_err *err)
{
    size_t n = 0, out_len = 0;
    st_rc rc = ST_OK;
    *out_n = 0;
    if (!r->open) {
        bool ok;
        rc = first_open(r, &ok, err);
        if (rc || !ok)
            return rc;
    }
    if (max > r->offs_cap) {
        size_t *o = st_realloc(r->offs, max * sizeof *o);
        if (!o)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        r->offs = o;
        r->offs_cap = max;
    }
    bool finished = false; /* a later segment exists: this one is complete */
    while (n < max) {
        bool ok;
        rc = fill(r, 8, &ok, err);
        size_t len = 0;
        bool good = false;
        if (!rc && ok) {
            const unsigned char *h = (const unsigned char *)r->buf + r->start;
            len = evlog_get_u32(h);
            if (len <= EVLOG_MAX_RECORD) {
                rc = fill(r, 8 + len, &ok, err);
                h = (const unsigned char *)r->buf + r->start;
                good = !rc && ok && evlog_frame_crc(h, h + 8, len) == evlog_get_u32(h + 4);
            }
        }
        if (rc)
            break;
        if (!good) {
            if (!finished) {
                uint64_t next;
                rc = next_segment(r, &finished, &next, err);
                if (rc || !finished)
                    break; /* nothing more yet */
                continue;  /* re-read this segment's end now that it is complete */
            }
            if (r->end > r->start) {
                rc = st_fail(err, ST_ERR_CORRUPT,
                             "segment %020llu in %s: bad frame at offset %llu",
                             (unsigned long long)r->seg_id, r->dir, (unsigned long long)r->off);
                break;
            }
            uint64_t next;
            bool has;
            rc = next_segment(r, &has, &next, err);
            if (rc || !has)
                break;
            rc = seg_open(r, next, EVLOG_HEADER, next, err);
            if (rc)
                break;
            finished = false;
            continue;
        }
        if (r->has_target && r->seq < r->target) {
            consume(r, 8 + len);
            r->seq++;
            continue;
        }
        r->has_target = false;
        if (out_len + len + 1 > r->out_cap) {
            size_t cap = r->out_cap ? r->out_cap : 1 << 16;
            while (cap < out_len + len + 1)
                cap *= 2;
            char *o = st_realloc(r->out, cap);
            if (!o) {
                rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
                break;
            }
            r->out = o;
            r->out_cap = cap;
        }
        memcpy(r->out + out_len, r->buf + r->start + 8, len);
        r->out[out_len + len] = '\0';
        r->offs[n] = out_len;
        recs[n].seq = r->seq;
        recs[n].len = len;
        out_len += len + 1;
        consume(r, 8 + len);
        r->seq++;
        n++;
    }
    for (size_t i = 0; i < n; i++)
        recs[i].data = r->out + r->offs[i];
    *out_n = n;
    /* records read so far are returned; a later error repeats on the next call */
    return n ? ST_OK : rc;
}

void st_evlog_reader_pos(const st_evlog_reader *r, st_evlog_pos *out)
{
    out->segment = r->seg_id;
    out->offset = r->open ? r->off : EVLOG_HEADER;
    out->seq = r->has_target ? r->target : r->seq;
}

void st_evlog_reader_close(st_evlog_reader *r)
{
    if (!r)
        return;
    seg_close(r);
    st_free(r->zin);
    st_free(r->buf);
    st_free(r->out);
    st_free(r->offs);
    st_free(r->dir);
    st_free(r);
}
