/*
 * testutil.c - see testutil.h.
 */
#include "testutil.h"

#include "strata/collect.h"
#include "strata/delta.h"

#include <curl/curl.h>
#include <jansson.h>
#include <dirent.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

st_err tu_err;

char *tu_tempdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char *tmpl = st_sprintf("%s/strata-%s-XXXXXX", base ? base : "/tmp", tag);
    if (!tmpl || !mkdtemp(tmpl))
        fail_msg("mkdtemp failed");
    return tmpl;
}

void tu_rmdir(char *dir)
{
    if (!dir)
        return;
    if (!getenv("STRATA_KEEP_TMP"))
        st_rmtree(dir, NULL);
    st_free(dir);
}

const char *tu_shared_dir(void)
{
    const char *s = getenv("STRATA_SHARED");
    if (!s || !st_is_dir(s))
        return NULL;
    return s;
}

const char *tu_strata_bin(void)
{
    const char *s = getenv("STRATA_BIN");
    return s ? s : "strata";
}

int tu_run(char **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = st_vsprintf(fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    st_free(cmd);
    if (!p)
        return -1;
    st_buf b;
    st_buf_init(&b, 0);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        st_buf_append(&b, chunk, n);
    int status = pclose(p);
    if (out)
        *out = st_buf_take(&b);
    else
        st_buf_free(&b);
    if (status < 0 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

st_engine *tu_engine(void)
{
    st_engine *e = NULL;
    st_engine_opts o = {.threads = 2};
    if (st_engine_open(&o, &e, &tu_err) != ST_OK)
        fail_msg("engine open: %s", tu_err.msg);
    return e;
}

/* The server a test started last and has not stopped: tu_serve_teardown
 * kills it when the test failed half way. */
static int live_serve_pid;

int tu_serve_start(const char *const *args, int timeout_ms, int *out_port)
{
    const char *argv[32] = {"strata", "serve"};
    int k = 2;
    for (int i = 0; args[i] && k < 31; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    int p[2];
    if (pipe(p) != 0)
        fail_msg("pipe failed");
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork failed");
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execv(tu_strata_bin(), (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    char line[256];
    size_t n = 0;
    struct pollfd pf = {p[0], POLLIN, 0};
    int64_t deadline = st_now_ms() + timeout_ms;
    while (n < sizeof line - 1 && st_now_ms() < deadline) {
        if (poll(&pf, 1, 200) <= 0)
            continue;
        ssize_t r = read(p[0], line + n, 1);
        if (r <= 0 || line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    close(p[0]);
    int port = 0;
    if (sscanf(line, "listening on 127.0.0.1:%d", &port) != 1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("strata serve did not start: '%s'", line);
    }
    if (out_port)
        *out_port = port;
    live_serve_pid = pid;
    return pid;
}

int tu_serve_stop(int pid, int sig)
{
    kill(pid, sig);
    int status = 0;
    waitpid(pid, &status, 0);
    if (live_serve_pid == pid)
        live_serve_pid = 0;
    return status;
}

int tu_serve_teardown(void **state)
{
    (void)state;
    if (live_serve_pid > 0) {
        kill(live_serve_pid, SIGKILL);
        waitpid(live_serve_pid, NULL, 0);
        live_serve_pid = 0;
    }
    return 0;
}

size_t tu_curl_sink(char *p, size_t sz, size_t n, void *buf)
{
    st_buf_append(buf, p, sz * n);
    return sz * n;
}

long tu_post_events(int port, const char *key, const char *body, st_buf *out)
{
    CURL *c = curl_easy_init();
    char url[64], hdr[192];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/events", port);
    snprintf(hdr, sizeof hdr, "X-Strata-Key: %s", key);
    struct curl_slist *h = curl_slist_append(NULL, hdr);
    h = curl_slist_append(h, "Expect:");
    st_buf sink;
    st_buf_init(&sink, 0);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tu_curl_sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out ? out : &sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    st_buf_free(&sink);
    return status;
}

st_engine *tu_mount_events(const char *lake)
{
    st_engine *eng = tu_engine();
    const char *layers[] = {"raw", "bronze"};
    for (int k = 0; k < 2; k++) {
        char *ld = st_sprintf("%s/%s", lake, layers[k]);
        DIR *d = opendir(ld);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            if (de->d_name[0] == '.')
                continue;
            char *p = st_path_join(ld, de->d_name);
            st_delta_snapshot *s = NULL;
            st_err e;
            if (st_delta_snapshot_load(eng, p, -1, &s, &e) == ST_OK) {
                char *view = st_sprintf("%s_%s", layers[k],
                                        de->d_name[0] == '_' ? de->d_name + 1 : de->d_name);
                TU_OK(st_delta_register_view(eng, view, s, &tu_err));
                st_free(view);
            }
            st_delta_snapshot_free(s);
            st_free(p);
        }
        if (d)
            closedir(d);
        st_free(ld);
    }
    return eng;
}

int64_t tu_lake_i64(const char *lake, const char *sql)
{
    st_engine *eng = tu_mount_events(lake);
    int64_t v = -1;
    st_err e;
    if (st_engine_query_i64(eng, sql, &v, &e))
        fail_msg("%s: %s", sql, e.msg);
    st_engine_close(eng);
    return v;
}

char *tu_lake_str(const char *lake, const char *sql)
{
    st_engine *eng = tu_mount_events(lake);
    char *v = NULL;
    st_err e;
    if (st_engine_query_str(eng, sql, &v, &e))
        fail_msg("%s: %s", sql, e.msg);
    st_engine_close(eng);
    return v;
}

char *tu_delta_str(const char *path, const char *view, const char *sql)
{
    st_engine *e = tu_engine();
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(e, path, -1, &s, &tu_err));
    TU_OK(st_delta_register_view(e, view, s, &tu_err));
    char *out = NULL;
    TU_OK(st_engine_query_str(e, sql, &out, &tu_err));
    st_delta_snapshot_free(s);
    st_engine_close(e);
    return out;
}

/* ---- a load client for durability tests ---- */

struct tu_client {
    int port;
    char *key;
    _Atomic bool stop;
    int next;
    bool resent;
    char **acked;
    size_t n_acked, cap;
    pthread_t th;
    bool running;
    pthread_mutex_t mu;
};

static void *client_main(void *arg)
{
    tu_client *c = arg;
    char now[32];
    st_buf body;
    st_buf_init(&body, 0);
    while (!c->stop) {
        st_rfc3339_format(st_now_us(), now);
        st_buf_reset(&body);
        st_buf_putc(&body, '[');
        int first = c->next;
        for (int i = 0; i < 20; i++)
            st_buf_printf(&body, "%s{\"event_id\":\"d-%d\",\"event_type\":\"login\",\"schema_version\":1,"
                          "\"event_time\":\"%s\",\"payload\":{\"i\":%d}}", i ? "," : "", first + i, now, i);
        st_buf_putc(&body, ']');
        long st = tu_post_events(c->port, c->key, body.data, NULL);
        if (st == 200) {
            pthread_mutex_lock(&c->mu);
            for (int i = 0; i < 20; i++) {
                if (c->n_acked == c->cap) {
                    c->cap = c->cap ? c->cap * 2 : 1024;
                    c->acked = st_realloc(c->acked, c->cap * sizeof *c->acked);
                }
                c->acked[c->n_acked++] = st_sprintf("d-%d", first + i);
            }
            pthread_mutex_unlock(&c->mu);
        }
        /* retry unacknowledged batches with the same ids (as clients do),
         * and sometimes resend an acknowledged batch (a duplicate) */
        if (st == 200 && ((first / 20) % 7 != 3 || c->resent)) {
            c->next += 20;
            c->resent = false;
        } else if (st == 200) {
            c->resent = true;
        }
        usleep(2000);
    }
    st_buf_free(&body);
    return NULL;
}

tu_client *tu_client_new(const char *key)
{
    tu_client *c = st_calloc(1, sizeof *c);
    if (!c || !(c->key = st_strdup(key)))
        fail_msg("out of memory");
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void tu_client_start(tu_client *c, int port)
{
    c->port = port;
    c->stop = false;
    if (pthread_create(&c->th, NULL, client_main, c))
        fail_msg("cannot start the client thread");
    c->running = true;
}

void tu_client_stop(tu_client *c)
{
    if (!c->running)
        return;
    c->stop = true;
    pthread_join(c->th, NULL);
    c->running = false;
}

size_t tu_client_acked(tu_client *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = c->n_acked;
    pthread_mutex_unlock(&c->mu);
    return n;
}

int64_t tu_client_distinct(tu_client *c)
{
    int64_t distinct = 0;
    for (size_t i = 0; i < c->n_acked; i++) {
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = !strcmp(c->acked[i], c->acked[j]);
        distinct += !dup;
    }
    return distinct;
}

void tu_client_check(tu_client *c, const char *lake, const char *view)
{
    st_engine *eng = tu_mount_events(lake);
    char *sql = st_sprintf("SELECT count(*) - count(DISTINCT event_id) FROM %s", view);
    int64_t twice = -1, missing = -1;
    TU_OK(st_engine_query_i64(eng, sql, &twice, &tu_err));
    st_free(sql);
    assert_int_equal(twice, 0);
    TU_OK(st_engine_exec(eng, "CREATE TABLE acked (id VARCHAR)", &tu_err));
    duckdb_appender app;
    TU_OK(st_engine_appender(eng, "acked", &app, &tu_err));
    for (size_t i = 0; i < c->n_acked; i++) {
        duckdb_append_varchar(app, c->acked[i]);
        duckdb_appender_end_row(app);
    }
    TU_OK(st_engine_appender_close(&app, &tu_err));
    sql = st_sprintf("SELECT count(*) FROM (SELECT DISTINCT id FROM acked) a ANTI JOIN %s b "
                     "ON a.id = b.event_id", view);
    TU_OK(st_engine_query_i64(eng, sql, &missing, &tu_err));
    st_free(sql);
    assert_int_equal(missing, 0);
    st_engine_close(eng);
}

void tu_client_free(tu_client *c)
{
    if (!c)
        return;
    tu_client_stop(c);
    for (size_t i = 0; i < c->n_acked; i++)
        st_free(c->acked[i]);
    st_free(c->acked);
    st_free(c->key);
    pthread_mutex_destroy(&c->mu);
    st_free(c);
}

json_t *tu_read_log(const char *dir, bool dense)
{
    json_t *all = json_object();
    st_evlog_reader *r;
    TU_OK(st_evlog_reader_open(dir, NULL, &r, &tu_err));
    st_evlog_rec recs[64];
    uint64_t next_seq = 0;
    for (;;) {
        size_t n;
        TU_OK(st_evlog_read(r, recs, 64, &n, &tu_err));
        if (!n)
            break;
        for (size_t i = 0; i < n; i++) {
            /* dense sequence numbers: no batch lost or reordered between segments */
            if (dense)
                assert_true(recs[i].seq == next_seq);
            next_seq++;
            json_error_t je;
            json_t *j = json_loadb(recs[i].data, recs[i].len, 0, &je);
            if (!j)
                fail_msg("record %llu is not JSON: %s", (unsigned long long)recs[i].seq, je.text);
            const char *id = json_string_value(json_object_get(j, "event_id"));
            assert_non_null(id);
            json_t *arr = json_object_get(all, id);
            if (!arr) {
                arr = json_array();
                json_object_set_new(all, id, arr);
            }
            json_array_append_new(arr, j);
        }
    }
    st_evlog_reader_close(r);
    return all;
}

char *tu_project_str(const char *proj, const char *layer, const char *target, const char *view,
                     const char *sql)
{
    char *path = st_sprintf("%s/lake/%s/%s", proj, layer, target);
    char *out = tu_delta_str(path, view, sql);
    st_free(path);
    return out ? out : st_strdup("NULL");
}
