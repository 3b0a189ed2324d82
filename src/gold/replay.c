/*
 * replay.c - a loopback HTTP server that answers every GET with one
 * recorded file.  The demo points its ECB source at it, so the extraction
 * code path (HTTP client, SDMX-CSV parser, incremental merge) is the one
 * used against the real API, without the network.
 */
#include "strata/gold.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <string.h>

struct st_replay_srv {
    struct MHD_Daemon *d;
    char *body;
    size_t len;
    char *content_type;
    int port;
    atomic_long hits;
};

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **con_cls)
{
    (void)url, (void)version, (void)upload, (void)con_cls;
    st_replay_srv *s = cls;
    if (*upload_len)
        return MHD_NO;  /* GET only: nothing is uploaded to a replay */
    bool get = !strcmp(method, "GET");
    struct MHD_Response *resp = get ? MHD_create_response_from_buffer(s->len, s->body,
                                                                      MHD_RESPMEM_PERSISTENT)
                                    : MHD_create_response_from_buffer(0, (void *)"",
                                                                      MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    if (get) {
        MHD_add_response_header(resp, "Content-Type", s->content_type);
        atomic_fetch_add(&s->hits, 1);
    }
    enum MHD_Result r = MHD_queue_response(conn, get ? MHD_HTTP_OK : MHD_HTTP_METHOD_NOT_ALLOWED,
                                           resp);
    MHD_destroy_response(resp);
    return r;
}

st_rc st_replay_srv_start(const char *file, const char *content_type, int port,
                          st_replay_srv **out, st_err *err)
{
    *out = NULL;
    st_replay_srv *s = st_calloc(1, sizeof *s);
    if (!s)
        return st_fail(err, ST_ERR_NOMEM, "replay server");
    st_rc rc = st_file_read(file, 64u << 20, &s->body, &s->len, err);
    if (rc) {
        st_err_ctx(err, "replay server");
        goto fail;
    }
    s->content_type = st_strdup(content_type ? content_type : "text/csv");
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                            handle, s, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)30, MHD_OPTION_END);
    if (!s->d) {
        rc = st_fail(err, ST_ERR_IO, "replay server for %s: cannot listen on 127.0.0.1:%d", file,
                     port);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : port;
    *out = s;
    return ST_OK;
fail:
    st_replay_srv_stop(s);
    return rc;
}

int st_replay_srv_port(const st_replay_srv *s)
{
    return s ? s->port : 0;
}

long st_replay_srv_hits(const st_replay_srv *s)
{
    return s ? atomic_load(&((st_replay_srv *)s)->hits) : 0;
}

void st_replay_srv_stop(st_replay_srv *s)
{
    if (!s)
        return;
    if (s->d)
        MHD_stop_daemon(s->d);
    st_free(s->body);
    st_free(s->content_type);
    st_free(s);
}
