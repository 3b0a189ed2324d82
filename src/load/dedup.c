/*
 * dedup.c - on-disk sorted runs of 64-bit event-id hashes, one directory per
 * (family, event date), used by the loader to find duplicates without asking
 * bronze for every id and without holding the window in memory.
 *
 * Layout: <root>/<day number>/run-<seq>.bin, each file a 16-byte header
 * ("STDEDUP1" + count, little endian) and count sorted, distinct hashes.  A
 * committed micro-batch adds one run per date it touched; runs of similar
 * size are merged right away (the newest two while the older one is at most
 * twice the newer), so a date holds O(log n) runs and each hash is rewritten
 * O(log n) times.  Lookups binary-search the memory-mapped runs, so what the
 * process holds is page cache, not heap, whatever the window.  A hit is only
 * a candidate: loader.c confirms it against bronze, so a collision never
 * drops an event.  See docs/decisions/0006-event-dedup.md.
 */
#include "load_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define RUN_MAGIC "STDEDUP1"
#define HDR_LEN 16
#define MAX_RUNS 64

typedef struct run {
    char *path;
    void *map;           /* whole file, NULL when empty */
    size_t map_len;
    const uint64_t *h;   /* sorted */
    size_t n;
} run;

typedef struct day {
    int32_t day;
    run runs[MAX_RUNS];  /* oldest (largest) first */
    size_t n_runs;
} day;

struct st_dedup {
    char *root;
    const day *last;     /* the date looked up last: events of a batch share few dates */
    st_map *days;        /* "day" -> day*, only the dates touched since open */
    uint64_t seq;        /* names new runs */
};

uint64_t st_id_hash(const char *id, size_t len)
{
    return XXH3_64bits(id, len);
}

static void run_unmap(run *r)
{
    if (r->map)
        munmap(r->map, r->map_len);
    st_free(r->path);
    memset(r, 0, sizeof *r);
}

static void day_free(day *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_runs; i++)
        run_unmap(&d->runs[i]);
    st_free(d);
}

static char *day_dir(const st_dedup *dd, int32_t dn)
{
    return st_sprintf("%s/%d", dd->root, (int)dn);
}

/* Maps one run file; ST_ERR_CORRUPT when its size does not match its count
 * (a torn write), so the caller can rebuild the date from bronze. */
static st_rc run_map(const char *path, run *r, st_err *err)
{
    memset(r, 0, sizeof *r);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return st_fail(err, ST_ERR_IO, "dedup: opening %s: %s", path, strerror(errno));
    struct stat sb;
    st_rc rc = ST_OK;
    uint8_t hdr[HDR_LEN];
    if (fstat(fd, &sb) < 0 || sb.st_size < HDR_LEN ||
        pread(fd, hdr, HDR_LEN, 0) != HDR_LEN || memcmp(hdr, RUN_MAGIC, 8)) {
        rc = st_fail(err, ST_ERR_CORRUPT, "dedup: %s: not a run file", path);
        goto out;
    }
    uint64_t n;
    memcpy(&n, hdr + 8, 8);
    if ((uint64_t)sb.st_size != HDR_LEN + n * 8) {
        rc = st_fail(err, ST_ERR_CORRUPT, "dedup: %s: %llu hashes announced, %lld bytes", path,
                     (unsigned long long)n, (long long)sb.st_size);
        goto out;
    }
    r->path = st_strdup(path);
    if (!r->path) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto out;
    }
    r->n = (size_t)n;
    if (n) {
        r->map_len = (size_t)sb.st_size;
        r->map = mmap(NULL, r->map_len, PROT_READ, MAP_SHARED, fd, 0);
        if (r->map == MAP_FAILED) {
            r->map = NULL;
            run_unmap(r);
            rc = st_fail(err, ST_ERR_IO, "dedup: mapping %s: %s", path, strerror(errno));
            goto out;
        }
        r->h = (const uint64_t *)((const char *)r->map + HDR_LEN);
    }
out:
    close(fd);
    return rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Streams a sorted run to path: temp file, fsync, rename.  `next` yields
 * the hashes in ascending order (distinct) until it returns false. */
typedef bool (*next_fn)(void *ctx, uint64_t *out);

static st_rc run_write(const char *path, next_fn next, void *ctx, st_err *err)
{
    char *tmp = st_sprintf("%s.tmp", path);
    if (!tmp)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    st_rc rc = ST_OK;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rc = st_fail(err, ST_ERR_IO, "dedup: creating %s: %s", tmp, strerror(errno));
        st_free(tmp);
        return rc;
    }
    uint8_t hdr[HDR_LEN] = RUN_MAGIC;
    uint64_t n = 0, h;
    bool ok = fwrite(hdr, 1, HDR_LEN, f) == HDR_LEN;
    uint64_t buf[1024];
    size_t nb = 0;
    while (ok && next(ctx, &h)) {
        buf[nb++] = h;
        n++;
        if (nb == 1024) {
            ok = fwrite(buf, 8, nb, f) == nb;
            nb = 0;
        }
    }
    if (ok && nb)
        ok = fwrite(buf, 8, nb, f) == nb;
    memcpy(hdr + 8, &n, 8);
    ok = ok && fseek(f, 0, SEEK_SET) == 0 && fwrite(hdr, 1, HDR_LEN, f) == HDR_LEN &&
         fflush(f) == 0 && fdatasync(fileno(f)) == 0;
    if (fclose(f) != 0)
        ok = false;
    if (!ok || rename(tmp, path) < 0) {
        rc = st_fail(err, ST_ERR_IO, "dedup: writing %s: %s", path, strerror(errno));
        unlink(tmp);
    }
    st_free(tmp);
    return rc;
}

typedef struct arr_it {
    const uint64_t *h;
    size_t n, i;
} arr_it;

static bool arr_next(void *ctx, uint64_t *out)
{
    arr_it *a = ctx;
    if (a->i == a->n)
        return false;
    *out = a->h[a->i++];
    return true;
}

typedef struct merge_it {
    arr_it a, b;
} merge_it;

static bool merge_next(void *ctx, uint64_t *out)
{
    merge_it *m = ctx;
    bool ha = m->a.i < m->a.n, hb = m->b.i < m->b.n;
    if (!ha && !hb)
        return false;
    uint64_t x = ha ? m->a.h[m->a.i] : 0, y = hb ? m->b.h[m->b.i] : 0;
    if (ha && (!hb || x <= y)) {
        *out = x;
        m->a.i++;
        if (hb && x == y)
            m->b.i++;
    } else {
        *out = y;
        m->b.i++;
    }
    return true;
}

static char *run_path(st_dedup *dd, int32_t dn)
{
    return st_sprintf("%s/%d/run-%020llu.bin", dd->root, (int)dn,
                      (unsigned long long)++dd->seq);
}

/* Opens a date's directory: its runs, oldest first.  *out NULL when the
 * date was never seeded (no directory, or a damaged run: then removed). */
static st_rc day_open(st_dedup *dd, int32_t dn, day **out, st_err *err)
{
    *out = NULL;
    char *dir = day_dir(dd, dn);
    if (!dir)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    DIR *dh = opendir(dir);
    if (!dh) {
        st_free(dir);
        return ST_OK;
    }
    char *names[MAX_RUNS * 2];
    size_t nn = 0;
    st_rc rc = ST_OK;
    struct dirent *de;
    while ((de = readdir(dh))) {
        size_t len = strlen(de->d_name);
        if (strncmp(de->d_name, "run-", 4) || len < 8 || strcmp(de->d_name + len - 4, ".bin"))
            continue;
        if (nn == MAX_RUNS * 2) {
            rc = ST_ERR_CORRUPT;
            break;
        }
        names[nn] = st_sprintf("%s/%s", dir, de->d_name);
        if (!names[nn]) {
            rc = ST_ERR_NOMEM;
            break;
        }
        nn++;
    }
    closedir(dh);
    if (nn > 1)
        qsort(names, nn, sizeof *names, cmp_name);
    day *d = st_calloc(1, sizeof *d);
    if (!d && !rc)
        rc = ST_ERR_NOMEM;
    if (d)
        d->day = dn;
    for (size_t i = 0; rc == ST_OK && i < nn; i++) {
        /* names are run-<seq>: remember the highest so new runs sort last */
        const char *b = strrchr(names[i], '/') + 5;
        uint64_t s = strtoull(b, NULL, 10);
        if (s > dd->seq)
            dd->seq = s;
        if (d->n_runs == MAX_RUNS) {
            rc = ST_ERR_CORRUPT;
            break;
        }
        st_err e2;
        rc = run_map(names[i], &d->runs[d->n_runs], &e2);
        if (rc == ST_ERR_CORRUPT)
            st_warn("%s; rebuilding the date from bronze", e2.msg);
        else if (rc)
            st_fail(err, rc, "%s", e2.msg);
        else
            d->n_runs++;
    }
    for (size_t i = 0; i < nn; i++)
        st_free(names[i]);
    if (rc == ST_ERR_NOMEM) {
        st_fail(err, rc, "out of memory");
    } else if (rc == ST_ERR_CORRUPT || (rc == ST_OK && d->n_runs == 0)) {
        /* unusable or never finished: forget the date, the caller reseeds it */
        day_free(d);
        d = NULL;
        rc = st_rmtree(dir, err);
    }
    st_free(dir);
    if (rc) {
        day_free(d);
        return rc;
    }
    *out = d;
    return ST_OK;
}

/* Merges the newest runs while the older one is at most twice the newer. */
static st_rc day_compact(st_dedup *dd, day *d, st_err *err)
{
    while (d->n_runs >= 2 &&
           (d->runs[d->n_runs - 2].n <= 2 * d->runs[d->n_runs - 1].n || d->n_runs == MAX_RUNS)) {
        run *a = &d->runs[d->n_runs - 2], *b = &d->runs[d->n_runs - 1];
        merge_it m = {{a->h, a->n, 0}, {b->h, b->n, 0}};
        char *p = run_path(dd, d->day);
        if (!p)
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        run nr;
        st_rc rc = run_write(p, merge_next, &m, err);
        rc = rc ? rc : run_map(p, &nr, err);
        if (rc) {
            unlink(p);
            st_free(p);
            return rc;
        }
        st_free(p);
        /* the merged run is complete before the inputs go: a crash in between
         * leaves duplicates across runs, which lookups tolerate */
        unlink(a->path);
        unlink(b->path);
        run_unmap(a);
        run_unmap(b);
        *a = nr;
        d->n_runs--;
    }
    return ST_OK;
}

st_rc st_dedup_open(const char *root, st_dedup **out, st_err *err)
{
    st_dedup *dd = st_calloc(1, sizeof *dd);
    if (!dd)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    dd->root = st_strdup(root);
    dd->days = st_map_new();
    if (!dd->root || !dd->days) {
        st_dedup_close(dd);
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    st_rc rc = st_mkdirs(root, err);
    if (rc) {
        st_dedup_close(dd);
        return rc;
    }
    *out = dd;
    return ST_OK;
}

static void forget_all(st_dedup *dd)
{
    dd->last = NULL;
    size_t it = 0;
    const char *k;
    void *v;
    while (st_map_next(dd->days, &it, &k, &v))
        day_free(v);
    st_map_free(dd->days);
    dd->days = st_map_new();
}

void st_dedup_close(st_dedup *dd)
{
    if (!dd)
        return;
    if (dd->days)
        forget_all(dd);
    st_map_free(dd->days);
    st_free(dd->root);
    st_free(dd);
}

st_rc st_dedup_reset(st_dedup *dd, st_err *err)
{
    forget_all(dd);
    if (!dd->days)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    st_rc rc = st_rmtree(dd->root, err);
    return rc ? rc : st_mkdirs(dd->root, err);
}

st_rc st_dedup_day(st_dedup *dd, int32_t dn, bool *seeded, st_err *err)
{
    char k[16];
    snprintf(k, sizeof k, "%d", (int)dn);
    if (st_map_get(dd->days, k)) {
        *seeded = true;
        return ST_OK;
    }
    day *d = NULL;
    st_rc rc = day_open(dd, dn, &d, err);
    if (rc)
        return rc;
    *seeded = d != NULL;
    if (d && st_map_put(dd->days, k, d, NULL)) {
        day_free(d);
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    return ST_OK;
}

bool st_dedup_has(st_dedup *dd, int32_t dn, uint64_t h)
{
    const day *d = dd->last;
    if (!d || d->day != dn) {
        char k[16];
        snprintf(k, sizeof k, "%d", (int)dn);
        d = dd->last = st_map_get(dd->days, k);
        if (!d)
            return false;
    }
    for (size_t r = 0; r < d->n_runs; r++) {
        const uint64_t *a = d->runs[r].h;
        size_t lo = 0, hi = d->runs[r].n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (a[mid] < h)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < d->runs[r].n && a[lo] == h)
            return true;
    }
    return false;
}

st_rc st_dedup_add(st_dedup *dd, int32_t dn, uint64_t *h, size_t n, st_err *err)
{
    char k[16];
    snprintf(k, sizeof k, "%d", (int)dn);
    day *d = st_map_get(dd->days, k);
    st_rc rc = ST_OK;
    if (!d) {
        /* a new date (seeding it from bronze, or a date first seen now) */
        char *dir = day_dir(dd, dn);
        d = st_calloc(1, sizeof *d);
        rc = dir && d ? st_mkdirs(dir, err) : st_fail(err, ST_ERR_NOMEM, "out of memory");
        st_free(dir);
        if (rc == ST_OK && st_map_put(dd->days, k, d, NULL))
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        if (rc) {
            st_free(d);
            return rc;
        }
        d->day = dn;
    }
    if (n > 1)
        qsort(h, n, sizeof *h, cmp_u64);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (!u || h[u - 1] != h[i])
            h[u++] = h[i];
    if (u == 0 && d->n_runs > 0)
        return ST_OK;
    arr_it a = {h, u, 0};
    char *p = run_path(dd, dn);
    if (!p)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    rc = run_write(p, arr_next, &a, err);
    rc = rc ? rc : run_map(p, &d->runs[d->n_runs], err);
    st_free(p);
    if (rc)
        return rc;
    d->n_runs++;
    return day_compact(dd, d, err);
}

st_rc st_dedup_forget_before(st_dedup *dd, int32_t oldest, st_err *err)
{
    DIR *dh = opendir(dd->root);
    if (!dh)
        return ST_OK;
    st_rc rc = ST_OK;
    struct dirent *de;
    while (rc == ST_OK && (de = readdir(dh))) {
        char *end;
        long v = strtol(de->d_name, &end, 10);
        if (end == de->d_name || *end || v >= oldest)
            continue;
        day *d = st_map_del(dd->days, de->d_name);
        if (d && d == dd->last)
            dd->last = NULL;
        day_free(d);
        char *dir = day_dir(dd, (int32_t)v);
        rc = dir ? st_rmtree(dir, err) : st_fail(err, ST_ERR_NOMEM, "out of memory");
        st_free(dir);
    }
    closedir(dh);
    return rc;
}

size_t st_dedup_runs(const st_dedup *dd, int32_t dn)
{
    char k[16];
    snprintf(k, sizeof k, "%d", (int)dn);
    const day *d = st_map_get(dd->days, k);
    return d ? d->n_runs : 0;
}
