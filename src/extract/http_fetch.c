/*
 * http_fetch.c - GET with libcurl for the statistics APIs: connect and total
 * timeouts, an optional bandwidth cap, a bounded body, and retries with
 * exponential backoff on transport errors, 429 and 5xx that honour a
 * Retry-After header (seconds).  Parsing is in http_parse.c.
 */
#include "extract/extract_int.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef struct body {
    st_buf buf;
    long retry_after;
} body;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    body *b = arg;
    return st_buf_append(&b->buf, p, size * n) == ST_OK ? size * n : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    body *b = arg;
    size_t len = size * n;
    if (len > 12 && !strncasecmp(p, "Retry-After:", 12))
        b->retry_after = strtol(p + 12, NULL, 10);
    return len;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

st_rc x_http_get(const char *url, const x_http_opts *o, char **out, size_t *out_len,
                 long *status, st_err *err)
{
    pthread_once(&curl_once, curl_init_once);
    CURL *h = curl_easy_init();
    if (!h)
        return st_fail(err, ST_ERR_NOMEM, "curl_easy_init");
    body b;
    st_rc rc = ST_ERR_REMOTE;
    long code = 0;
    for (int attempt = 0;; attempt++) {
        memset(&b, 0, sizeof b);
        st_buf_init(&b.buf, o->max_bytes ? o->max_bytes : (size_t)256 << 20);
        b.retry_after = -1;
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &b);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, o->timeout_s > 0 ? o->timeout_s : 60L);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
        curl_easy_setopt(h, CURLOPT_USERAGENT, "strata-extract/0.1");
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        if (o->bandwidth > 0)
            curl_easy_setopt(h, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)o->bandwidth);
        CURLcode cc = curl_easy_perform(h);
        code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        bool retry;
        if (cc != CURLE_OK) {
            rc = st_fail(err, ST_ERR_REMOTE, "GET %s: %s", url, curl_easy_strerror(cc));
            retry = cc != CURLE_WRITE_ERROR;
        } else if (code == 429 || code >= 500) {
            rc = st_fail(err, ST_ERR_REMOTE, "GET %s: HTTP %ld", url, code);
            retry = true;
        } else if (code >= 400) {
            rc = st_fail(err, ST_ERR_REMOTE, "GET %s: HTTP %ld: %.200s", url, code,
                         b.buf.data ? b.buf.data : "");
            retry = false;
        } else {
            rc = ST_OK;
            retry = false;
        }
        if (rc == ST_OK || !retry || attempt >= o->retries)
            break;
        long wait_ms = b.retry_after >= 0 ? b.retry_after * 1000 : 250L << (attempt < 6 ? attempt : 6);
        if (wait_ms > 120000)
            wait_ms = 120000;
        st_warn("%s; retrying in %ld ms (%d of %d)", err ? err->msg : "GET failed", wait_ms,
                attempt + 1, o->retries);
        st_buf_free(&b.buf);
        usleep((useconds_t)wait_ms * 1000);
    }
    curl_easy_cleanup(h);
    if (status)
        *status = code;
    if (rc) {
        st_buf_free(&b.buf);
        return rc;
    }
    *out_len = b.buf.len;
    *out = b.buf.data ? st_buf_take(&b.buf) : st_strdup("");
    return ST_OK;
}
