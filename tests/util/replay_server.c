/*
 * replay_server.c - see replay_server.h.  One thread per connection so a
 * delayed answer (the timeout scenario) does not hold up other requests; the
 * rules and the log are guarded by a mutex because those threads share them.
 */
#include "replay_server.h"

#include "testutil.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct rule {
    char *match;
    int status;
    char *body;
    size_t len;
    char *ctype;
    char *hname, *hvalue;
    int delay_ms;
    int times;
    int used;
} rule;

struct tu_replay {
    struct MHD_Daemon *d;
    int port;
    char url[64];
    pthread_mutex_t mu;
    rule *rules;
    size_t n_rules;
    char **log;
    size_t n_log;
};

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    (void)kind;
    st_buf *b = cls;
    st_buf_printf(b, "%s%s=%s", strchr(b->data, '?') ? "&" : "?", key, value ? value : "");
    return MHD_YES;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **con_cls)
{
    (void)method;
    (void)version;
    (void)upload;
    (void)upload_len;
    (void)con_cls;
    tu_replay *s = cls;
    st_buf req;
    st_buf_init(&req, 0);
    st_buf_puts(&req, url);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_arg, &req);
    pthread_mutex_lock(&s->mu);
    char **nl = st_realloc(s->log, (s->n_log + 1) * sizeof *nl);
    s->log = nl;
    s->log[s->n_log++] = st_strdup(req.data);
    rule pick = {0};
    bool found = false;
    for (size_t i = 0; i < s->n_rules && !found; i++) {
        rule *r = &s->rules[i];
        if (r->match && !strstr(req.data, r->match))
            continue;
        if (r->times && r->used >= r->times)
            continue;
        r->used++;
        pick = *r;
        pick.body = st_strndup(r->body, r->len);
        pick.hname = st_strdup(r->hname);
        pick.hvalue = st_strdup(r->hvalue);
        pick.ctype = st_strdup(r->ctype);
        found = true;
    }
    pthread_mutex_unlock(&s->mu);
    st_buf_free(&req);
    if (!found) {
        pick.status = 404;
        pick.body = st_strdup("no recorded response");
        pick.len = strlen(pick.body);
    }
    if (pick.delay_ms)
        usleep((useconds_t)pick.delay_ms * 1000);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(pick.len, pick.body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(resp, "Content-Type",
                            pick.ctype ? pick.ctype : "application/octet-stream");
    if (pick.hname)
        MHD_add_response_header(resp, pick.hname, pick.hvalue);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)pick.status, resp);
    MHD_destroy_response(resp);
    st_free(pick.body);
    st_free(pick.hname);
    st_free(pick.hvalue);
    st_free(pick.ctype);
    return ret;
}

tu_replay *tu_replay_start(void)
{
    tu_replay *s = st_calloc(1, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                MHD_USE_ERROR_LOG,
                            0, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (!s->d)
        fail_msg("replay server: MHD_start_daemon failed");
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    if (!s->port)
        fail_msg("replay server: no bound port");
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
    return s;
}

int tu_replay_port(const tu_replay *s) { return s->port; }
const char *tu_replay_url(const tu_replay *s) { return s->url; }

void tu_replay_add(tu_replay *s, const tu_reply *r)
{
    rule n = {0};
    n.match = st_strdup(r->match);
    n.status = r->status ? r->status : 200;
    if (r->file) {
        st_err e;
        if (st_file_read(r->file, (size_t)64 << 20, &n.body, &n.len, &e) != ST_OK)
            fail_msg("replay server: %s", e.msg);
    } else {
        n.body = st_strdup(r->body ? r->body : "");
        n.len = strlen(n.body);
    }
    n.ctype = st_strdup(r->ctype);
    if (r->header) {
        const char *colon = strchr(r->header, ':');
        if (!colon)
            fail_msg("replay server: header '%s' has no ':'", r->header);
        n.hname = st_strndup(r->header, (size_t)(colon - r->header));
        n.hvalue = st_strdup(colon + 1 + (colon[1] == ' '));
    }
    n.delay_ms = r->delay_ms;
    n.times = r->times;
    pthread_mutex_lock(&s->mu);
    s->rules = st_realloc(s->rules, (s->n_rules + 1) * sizeof *s->rules);
    s->rules[s->n_rules++] = n;
    pthread_mutex_unlock(&s->mu);
}

static void clear(tu_replay *s)
{
    for (size_t i = 0; i < s->n_rules; i++) {
        rule *r = &s->rules[i];
        st_free(r->match);
        st_free(r->body);
        st_free(r->ctype);
        st_free(r->hname);
        st_free(r->hvalue);
    }
    st_free(s->rules);
    s->rules = NULL;
    s->n_rules = 0;
    for (size_t i = 0; i < s->n_log; i++)
        st_free(s->log[i]);
    st_free(s->log);
    s->log = NULL;
    s->n_log = 0;
}

void tu_replay_reset(tu_replay *s)
{
    pthread_mutex_lock(&s->mu);
    clear(s);
    pthread_mutex_unlock(&s->mu);
}

int tu_replay_count(tu_replay *s, const char *needle)
{
    int n = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_log; i++)
        n += !needle || strstr(s->log[i], needle) != NULL;
    pthread_mutex_unlock(&s->mu);
    return n;
}

char *tu_replay_request(tu_replay *s, int n)
{
    pthread_mutex_lock(&s->mu);
    char *out = n >= 0 && (size_t)n < s->n_log ? st_strdup(s->log[n]) : NULL;
    pthread_mutex_unlock(&s->mu);
    return out;
}

void tu_replay_stop(tu_replay *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->d);
    clear(s);
    pthread_mutex_destroy(&s->mu);
    st_free(s);
}
