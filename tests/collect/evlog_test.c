/*
 * evlog_test.c - the raw event log: append and read back, roll and seal
 * (.zst read through the reader), positions, torn-tail recovery, retention,
 * queue bound, completion callbacks from parallel committers (the sink the
 * server uses), and fail-stop after a write error.
 */
#include "testutil.h"
#include "strata/collect.h"
#include "collect/sink.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void append_n(st_evlog *l, int from, int n, size_t pad)
{
    st_buf b;
    st_buf_init(&b, 0);
    char rec[4096];
    for (int i = from; i < from + n; i++) {
        int len = snprintf(rec, sizeof rec, "{\"event_id\":\"e%d\",\"pad\":\"%0*d\"}", i, (int)pad, 0);
        assert_int_equal(st_evlog_frame(&b, rec, (size_t)len), ST_OK);
    }
    uint64_t first, ticket;
    TU_OK(st_evlog_append(l, b.data, b.len, (size_t)n, &first, &ticket, &tu_err));
    assert_true(first == (uint64_t)from);
    TU_OK(st_evlog_wait(l, ticket, &tu_err));
    st_buf_free(&b);
}

/* Reads everything from r and checks records are e<from>.. in order. */
static int read_all(st_evlog_reader *r, int from)
{
    int next = from;
    st_evlog_rec recs[7];
    for (;;) {
        size_t n;
        TU_OK(st_evlog_read(r, recs, 7, &n, &tu_err));
        if (!n)
            break;
        for (size_t i = 0; i < n; i++) {
            char want[32];
            snprintf(want, sizeof want, "{\"event_id\":\"e%d\"", next);
            if (strncmp(recs[i].data, want, strlen(want)))
                fail_msg("record %d: %.40s", next, recs[i].data);
            assert_true(recs[i].seq == (uint64_t)next);
            next++;
        }
    }
    return next;
}

static int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name), s = strlen(suffix);
        if (l > s && !strcmp(e->d_name + l - s, suffix))
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

static st_evlog_opts opts_for(const char *dir)
{
    st_evlog_opts o = {.dir = dir, .fsync_ms = 1, .segment_bytes = 4096, .compress = true,
                       .retention_days = 2};
    return o;
}

static void test_append_read_roll_seal(void **state)
{
    (void)state;
    char *tmp = tu_tempdir("evlog");
    char *dir = st_path_join(tmp, "log");
    st_evlog_opts o = opts_for(dir);
    st_evlog *l;
    TU_OK(st_evlog_open(&o, &l, &tu_err));
    for (int i = 0; i < 20; i++)
        append_n(l, i * 10, 10, 40 + (size_t)i * 7);
    st_evlog_stats st;
    st_evlog_stats_get(l, &st);
    assert_true(st.next_seq == 200);
    assert_true(st.durable_seq == 200);
    assert_true(st.n_fsync >= 1);
    TU_OK(st_evlog_roll(l, &tu_err));
    st_evlog_seal_wait(l);
    assert_true(count_files(dir, ".seg.zst") >= 3);   /* rolled at 4 KiB and sealed */
    assert_int_equal(count_files(dir, ".seg"), 0);    /* nothing active after the roll */

    st_evlog_reader *r;
    TU_OK(st_evlog_reader_open(dir, NULL, &r, &tu_err));
    assert_int_equal(read_all(r, 0), 200);
    /* follows the writer: new records appear in a new active segment */
    append_n(l, 200, 5, 10);
    assert_int_equal(read_all(r, 200), 205);
    st_evlog_pos pos;
    st_evlog_reader_pos(r, &pos);
    assert_true(pos.seq == 205);
    assert_true(pos.segment == 200);
    st_evlog_reader_close(r);

    /* open by sequence number, inside a sealed segment */
    TU_OK(st_evlog_reader_open_seq(dir, 57, &r, &tu_err));
    assert_int_equal(read_all(r, 57), 205);
    st_evlog_reader_close(r);

    /* open at a saved position (segment + offset) */
    TU_OK(st_evlog_reader_open_seq(dir, 120, &r, &tu_err));
    st_evlog_rec one[1];
    size_t n;
    TU_OK(st_evlog_read(r, one, 1, &n, &tu_err));
    assert_int_equal(n, 1);
    st_evlog_reader_pos(r, &pos);
    assert_true(pos.seq == 121);
    st_evlog_reader_close(r);
    TU_OK(st_evlog_reader_open(dir, &pos, &r, &tu_err));
    assert_int_equal(read_all(r, 121), 205);
    st_evlog_reader_close(r);

    /* reopen: numbering continues after the last record */
    st_evlog_close(l);
    TU_OK(st_evlog_open(&o, &l, &tu_err));
    append_n(l, 205, 3, 10);
    st_evlog_close(l);
    TU_OK(st_evlog_reader_open(dir, NULL, &r, &tu_err));
    assert_int_equal(read_all(r, 0), 208);
    st_evlog_reader_close(r);
    st_free(dir);
    tu_rmdir(tmp);
}

static char *active_path(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char *best = NULL;
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".seg")) {
            char *p = st_path_join(dir, e->d_name);
            if (!best || strcmp(p, best) > 0) {
                st_free(best);
                best = p;
            } else {
                st_free(p);
            }
        }
    }
    if (d)
        closedir(d);
    return best;
}

static void test_torn_tail(void **state)
{
    (void)state;
    char *dir = tu_tempdir("evlog-torn");
    st_evlog_opts o = opts_for(dir);
    o.segment_bytes = 1 << 20;
    st_evlog *l;
    TU_OK(st_evlog_open(&o, &l, &tu_err));
    append_n(l, 0, 10, 20);
    st_evlog_close(l);
    char *seg = active_path(dir);
    assert_non_null(seg);
    struct stat sb;
    assert_int_equal(stat(seg, &sb), 0);
    off_t good = sb.st_size;

    /* 1: garbage after the last frame */
    int fd = open(seg, O_WRONLY | O_APPEND);
    assert_true(write(fd, "\x30\x00\x00\x00garbage!", 12) == 12);
    close(fd);
    TU_OK(st_evlog_open(&o, &l, &tu_err));
    st_evlog_stats st;
    st_evlog_stats_get(l, &st);
    assert_true(st.next_seq == 10);
    append_n(l, 10, 2, 20);
    st_evlog_close(l);
    st_evlog_reader *r;
    TU_OK(st_evlog_reader_open(dir, NULL, &r, &tu_err));
    assert_int_equal(read_all(r, 0), 12);
    st_evlog_reader_close(r);

    /* 2: the last frame cut in half */
    assert_int_equal(stat(seg, &sb), 0);
    assert_true(sb.st_size > good);
    assert_int_equal(truncate(seg, sb.st_size - 5), 0);
    TU_OK(st_evlog_open(&o, &l, &tu_err));
    st_evlog_stats_get(l, &st);
    assert_true(st.next_seq == 11);
    st_evlog_close(l);

    /* 3: a flipped byte in the last record (bad CRC) */
    assert_int_equal(stat(seg, &sb), 0);
    fd = open(seg, O_RDWR);
    char c;
    assert_true(pread(fd, &c, 1, sb.st_size - 3) == 1);
    c ^= 0x40;
    assert_true(pwrite(fd, &c, 1, sb.st_size - 3) == 1);
    close(fd);
    TU_OK(st_evlog_open(&o, &l, &tu_err));
    st_evlog_stats_get(l, &st);
    assert_true(st.next_seq == 10);
    st_evlog_close(l);
    assert_int_equal(stat(seg, &sb), 0);
    assert_true(sb.st_size == good);
    TU_OK(st_evlog_reader_open(dir, NULL, &r, &tu_err));
    assert_int_equal(read_all(r, 0), 10);
    st_evlog_reader_close(r);

    /* 4: a crash right after creating a segment (header only partly there) */
    char *half = st_sprintf("%s/%020llu.seg", dir, 10ULL);
    fd = open(half, O_WRONLY | O_CREAT, 0600);
    assert_true(write(fd, "STEV", 4) == 4);
    close(fd);
    TU_OK(st_evlog_open(&o, &l, &tu_err));
    st_evlog_stats_get(l, &st);
    assert_true(st.next_seq == 10);
    append_n(l, 10, 1, 5);
    st_evlog_close(l);
    TU_OK(st_evlog_reader_open(dir, NULL, &r, &tu_err));
    assert_int_equal(read_all(r, 0), 11);
    st_evlog_reader_close(r);
    st_free(half);
    st_free(seg);
    tu_rmdir(dir);
}

static void test_retention(void **state)
{
    (void)state;
    char *dir = tu_tempdir("evlog-ret");
    st_evlog_opts o = opts_for(dir);
    o.segment_bytes = 512;
    st_evlog *l;
    TU_OK(st_evlog_open(&o, &l, &tu_err));
    for (int i = 0; i < 6; i++)
        append_n(l, i * 5, 5, 100);
    st_evlog_seal_wait(l);
    int before = count_files(dir, ".seg.zst") + count_files(dir, ".seg");
    assert_true(before >= 4);
    /* make the oldest two segments 3 days old */
    DIR *d = opendir(dir);
    struct dirent *e;
    char *names[64];
    int n = 0;
    while ((e = readdir(d)) && n < 64)
        if (e->d_name[0] == '0')
            names[n++] = st_strdup(e->d_name);
    closedir(d);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(names[i], names[j]) > 0) {
                char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    struct timespec old[2] = {{time(NULL) - 3 * 86400, 0}, {time(NULL) - 3 * 86400, 0}};
    for (int i = 0; i < 2; i++) {
        char *p = st_path_join(dir, names[i]);
        assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0);
        st_free(p);
    }
    size_t removed;
    TU_OK(st_evlog_retain(l, st_now_ms(), &removed, &tu_err));
    assert_int_equal(removed, 2);
    assert_int_equal(count_files(dir, ".seg.zst") + count_files(dir, ".seg"), before - 2);
    /* nothing else is old enough */
    TU_OK(st_evlog_retain(l, st_now_ms(), &removed, &tu_err));
    assert_int_equal(removed, 0);
    /* a reader asked for a removed position starts at the oldest record left */
    st_evlog_pos gone = {.segment = 0, .offset = 24, .seq = 0};
    st_evlog_reader *r;
    TU_OK(st_evlog_reader_open(dir, &gone, &r, &tu_err));
    st_evlog_rec rec[1];
    size_t got;
    TU_OK(st_evlog_read(r, rec, 1, &got, &tu_err));
    assert_int_equal(got, 1);
    assert_true(rec[0].seq > 0);
    st_evlog_reader_close(r);
    for (int i = 0; i < n; i++)
        st_free(names[i]);
    st_evlog_close(l);
    tu_rmdir(dir);
}

static void test_limits(void **state)
{
    (void)state;
    char *dir = tu_tempdir("evlog-lim");
    st_evlog_opts o = opts_for(dir);
    o.max_pending_bytes = 1024;
    o.commit_threads = 1;
    st_evlog *l;
    TU_OK(st_evlog_open(&o, &l, &tu_err));
    st_buf b;
    st_buf_init(&b, 0);
    char rec[700];
    memset(rec, 'x', sizeof rec);
    assert_int_equal(st_evlog_frame(&b, rec, sizeof rec), ST_OK);
    uint64_t t1, t2;
    /* one record alone always fits */
    st_buf big;
    st_buf_init(&big, 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(st_evlog_frame(&big, rec, sizeof rec), ST_OK);
    assert_int_equal(st_evlog_append(l, big.data, big.len, 2, NULL, &t2, &tu_err), ST_ERR_LIMIT);
    assert_non_null(strstr(tu_err.msg, "queue full"));
    st_buf_free(&big);
    /* The committer takes pending data as soon as it is idle, so the queue
     * only fills while it works: two appends back to back overflow it unless
     * the committer took the first one in between.  Try until they do. */
    bool refused = false;
    for (int i = 0; i < 2000 && !refused; i++) {
        TU_OK(st_evlog_append(l, b.data, b.len, 1, NULL, &t1, &tu_err));
        st_rc rc = st_evlog_append(l, b.data, b.len, 1, NULL, &t2, &tu_err);
        if (rc == ST_ERR_LIMIT) {
            refused = true;
            assert_non_null(strstr(tu_err.msg, "queue full"));
        } else {
            TU_OK(rc);
        }
        TU_OK(st_evlog_wait(l, rc ? t1 : t2, &tu_err));
    }
    assert_true(refused);
    TU_OK(st_evlog_append(l, b.data, b.len, 1, NULL, &t2, &tu_err));
    TU_OK(st_evlog_wait(l, t2, &tu_err));
    st_buf_free(&b);
    st_evlog_close(l);
    tu_rmdir(dir);
}

/* ---- completion callbacks (the server's path) ---- */

typedef struct cb_state {
    st_evlog *log;
    _Atomic int n_ok, n_fail;
} cb_state;

typedef struct cb_arg {
    cb_state *st;
    uint64_t ticket;
    _Atomic int *flag; /* set when called (NULL: nobody waits) */
} cb_arg;

static void on_done(void *arg, st_rc rc)
{
    cb_arg *a = arg;
    if (rc == ST_OK)
        atomic_fetch_add(&a->st->n_ok, 1);
    else
        atomic_fetch_add(&a->st->n_fail, 1);
    if (a->flag)
        atomic_store(a->flag, 1);
    st_free(a);
}

typedef struct appender {
    cb_state *st;
    st_sink sink;
    int thread, n;
    bool closed_loop; /* wait for each callback before the next append, like a client */
} appender;

static void *appender_main(void *p)
{
    appender *ap = p;
    st_buf b;
    st_buf_init(&b, 0);
    char rec[256];
    for (int i = 0; i < ap->n; i++) {
        st_buf_reset(&b);
        int len = snprintf(rec, sizeof rec, "{\"event_id\":\"t%d-%d\",\"pad\":\"%0150d\"}",
                           ap->thread, i, 0);
        assert_int_equal(st_evlog_frame(&b, rec, (size_t)len), ST_OK);
        uint64_t ticket;
        st_err err;
        if (ap->sink.ops->append(ap->sink.self, "src", b.data, b.len, 1, &ticket, &err)) {
            atomic_fetch_add(&ap->st->n_fail, 1);
            continue;
        }
        _Atomic int flag = 0;
        cb_arg *a = st_malloc(sizeof *a);
        *a = (cb_arg){ap->st, ticket, ap->closed_loop ? &flag : NULL};
        ap->sink.ops->on_durable(ap->sink.self, ticket, on_done, a);
        while (ap->closed_loop && !atomic_load(&flag))
            usleep(20);
    }
    st_buf_free(&b);
    return NULL;
}

static void test_on_durable(void **state)
{
    (void)state;
    char *dir = tu_tempdir("evlog-cb");
    st_evlog_opts o = opts_for(dir);
    o.commit_threads = 4;
    o.segment_bytes = 16384; /* rolls while other committers' fsyncs are in flight */
    st_evlog *l;
    TU_OK(st_evlog_open(&o, &l, &tu_err));
    st_sink sink;
    st_evlog_sink(l, &sink);
    assert_string_equal(sink.ops->kind, "local");
    cb_state st = {.log = l};
    enum { N = 6, PER = 300 };
    appender ap[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        ap[i] = (appender){.st = &st, .sink = sink, .thread = i, .n = PER, .closed_loop = i > 0};
        pthread_create(&th[i], NULL, appender_main, &ap[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    /* every callback comes without another append to push it */
    for (int i = 0; i < 2000 && atomic_load(&st.n_ok) + atomic_load(&st.n_fail) < N * PER; i++)
        usleep(5000);
    assert_int_equal(atomic_load(&st.n_fail), 0);
    assert_int_equal(atomic_load(&st.n_ok), N * PER);
    st_evlog_stats s;
    sink.ops->stats(sink.self, &s);
    assert_true(s.durable_seq == (uint64_t)(N * PER));
    assert_true(s.n_fsync >= 1);

    /* already durable: answered at once, on this thread */
    cb_arg *a = st_malloc(sizeof *a);
    *a = (cb_arg){&st, 1, NULL};
    sink.ops->on_durable(sink.self, 1, on_done, a);
    assert_int_equal(atomic_load(&st.n_ok), N * PER + 1);
    /* stopped: appends refused, a ticket never written fails at once */
    sink.ops->stop(sink.self);
    st_buf b;
    st_buf_init(&b, 0);
    assert_int_equal(st_evlog_frame(&b, "{}", 2), ST_OK);
    uint64_t t;
    assert_int_equal(sink.ops->append(sink.self, "src", b.data, b.len, 1, &t, &tu_err), ST_ERR_IO);
    st_buf_free(&b);
    a = st_malloc(sizeof *a);
    *a = (cb_arg){&st, (uint64_t)(N * PER + 5), NULL};
    sink.ops->on_durable(sink.self, a->ticket, on_done, a);
    assert_int_equal(atomic_load(&st.n_fail), 1);
    sink.ops->close(sink.self);

    /* every record once, sequence numbers dense across the segments */
    json_t *log = tu_read_log(dir, true);
    int seen[N][PER];
    memset(seen, 0, sizeof seen);
    uint64_t next = 0;
    const char *id;
    json_t *copies;
    json_object_foreach(log, id, copies) {
        int tt, k;
        assert_int_equal(sscanf(id, "t%d-%d", &tt, &k), 2);
        assert_true(tt >= 0 && tt < N && k >= 0 && k < PER);
        seen[tt][k] += (int)json_array_size(copies);
        next += json_array_size(copies);
    }
    json_decref(log);
    assert_true(next == (uint64_t)(N * PER));
    for (int i = 0; i < N; i++)
        for (int k = 0; k < PER; k++)
            assert_int_equal(seen[i][k], 1);
    int n_files = count_files(dir, ".seg") + count_files(dir, ".seg.zst");
    if (n_files <= 2)
        fail_msg("%d segment files: the log did not roll", n_files);
    tu_rmdir(dir);
}

/* A write error (here: the file size limit) makes the log fail-stop: the
 * waiting callback and st_evlog_wait report it, later appends are refused,
 * and what was durable before stays readable after reopening. */
static void test_write_failure(void **state)
{
    (void)state;
    char *dir = tu_tempdir("evlog-fail");
    st_evlog_opts o = opts_for(dir);
    o.segment_bytes = 1 << 20;
    o.compress = false;
    st_evlog *l;
    TU_OK(st_evlog_open(&o, &l, &tu_err));
    append_n(l, 0, 3, 100);

    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 2048; /* the segment holds ~450 bytes: the next 4 KB cannot fit */
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    st_buf b;
    st_buf_init(&b, 0);
    char rec[4096];
    int len = snprintf(rec, sizeof rec, "{\"event_id\":\"e3\",\"pad\":\"%03000d\"}", 0);
    assert_int_equal(st_evlog_frame(&b, rec, (size_t)len), ST_OK);
    uint64_t ticket;
    TU_OK(st_evlog_append(l, b.data, b.len, 1, NULL, &ticket, &tu_err));
    cb_state st = {.log = l};
    cb_arg *a = st_malloc(sizeof *a);
    *a = (cb_arg){&st, ticket, NULL};
    st_evlog_on_durable(l, ticket, on_done, a);
    assert_int_equal(st_evlog_wait(l, ticket, &tu_err), ST_ERR_IO);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    for (int i = 0; i < 400 && !atomic_load(&st.n_fail); i++)
        usleep(5000);
    assert_int_equal(atomic_load(&st.n_fail), 1);
    assert_int_equal(atomic_load(&st.n_ok), 0);
    st_evlog_stats s;
    st_evlog_stats_get(l, &s);
    assert_true(s.failed);
    assert_true(s.durable_seq == 3);
    assert_int_equal(st_evlog_append(l, b.data, b.len, 1, NULL, &ticket, &tu_err), ST_ERR_IO);
    st_buf_free(&b);
    st_evlog_close(l);

    /* reopened: the torn tail is cut, the three durable records remain */
    o.commit_threads = 1;
    TU_OK(st_evlog_open(&o, &l, &tu_err));
    st_evlog_stats_get(l, &s);
    assert_true(s.next_seq == 3);
    st_evlog_close(l);
    st_evlog_reader *r;
    TU_OK(st_evlog_reader_open(dir, NULL, &r, &tu_err));
    assert_int_equal(read_all(r, 0), 3);
    st_evlog_reader_close(r);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_read_roll_seal),
        cmocka_unit_test(test_torn_tail),
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_on_durable),
        cmocka_unit_test(test_write_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
