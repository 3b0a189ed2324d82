/*
 * cmd_send.c - `strata send`: posts events (NDJSON from a file or stdin, or
 * --event JSON) to a collector in batches, retrying with backoff and
 * honouring Retry-After.  Exits 0 only when every event was acknowledged.
 */
#include "cli.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct line {
    char *text;     /* OWNED */
    size_t len;
    size_t lineno;  /* 1-based input line, 0 for --event */
} line;

typedef struct sender {
    CURL *curl;
    char *url;
    struct curl_slist *hdrs;
    int retries;
    long timeout_s;
    bool verbose;
    size_t n_ok, n_bad;
} sender;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: strata send --url URL (--key KEY | --key-env VAR) [--file FILE | --event JSON ...]\n"
            "                   [--batch N] [--retries N] [--timeout SECONDS] [--verbose]\n"
            "\n"
            "Sends events to a collector.  Input is NDJSON (one event object per line) from\n"
            "--file or standard input, or one or more --event arguments.  URL is the collector\n"
            "base (http://127.0.0.1:8686) or the full /v1/events URL.  Batches of N events\n"
            "(default 100) are retried on network errors, 429 and 5xx with exponential backoff\n"
            "(Retry-After wins).  Exit code 0 only when every event was acknowledged.\n");
}

static size_t collect_body(char *p, size_t size, size_t n, void *ud)
{
    st_buf *b = ud;
    if (st_buf_append(b, p, size * n))
        return 0;
    return size * n;
}

static size_t collect_header(char *p, size_t size, size_t n, void *ud)
{
    long *retry_after = ud;
    size_t len = size * n;
    if (len > 12 && !strncasecmp(p, "Retry-After:", 12))
        *retry_after = strtol(p + 12, NULL, 10);
    return len;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Reports per-event errors of a 207/4xx answer; returns how many events failed. */
static size_t report_errors(const char *body, const line *batch, size_t n)
{
    json_error_t je;
    json_t *j = json_loads(body, 0, &je);
    size_t bad = 0;
    json_t *errs = j ? json_object_get(j, "errors") : NULL;
    size_t i;
    json_t *e;
    json_array_foreach(errs, i, e) {
        json_int_t idx = json_integer_value(json_object_get(e, "index"));
        const char *msg = json_string_value(json_object_get(e, "error"));
        if (idx >= 0 && (size_t)idx < n && batch[idx].lineno)
            fprintf(stderr, "strata send: line %zu: %s\n", batch[idx].lineno, msg ? msg : "rejected");
        else
            fprintf(stderr, "strata send: event %lld: %s\n", (long long)idx, msg ? msg : "rejected");
        bad++;
    }
    json_decref(j);
    return bad;
}

/* Sends one batch with retries.  Returns false when it could not be delivered. */
static bool send_batch(sender *s, const line *batch, size_t n)
{
    st_buf body;
    st_buf_init(&body, 0);
    for (size_t i = 0; i < n; i++) {
        st_buf_append(&body, batch[i].text, batch[i].len);
        st_buf_putc(&body, '\n');
    }
    bool done = false;
    long backoff_ms = 250;
    for (int attempt = 0; !done; attempt++) {
        st_buf resp;
        st_buf_init(&resp, 1 << 20);
        long retry_after = -1, status = 0;
        curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, body.data);
        curl_easy_setopt(s->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.len);
        curl_easy_setopt(s->curl, CURLOPT_WRITEDATA, &resp);
        curl_easy_setopt(s->curl, CURLOPT_HEADERDATA, &retry_after);
        CURLcode cc = curl_easy_perform(s->curl);
        if (cc == CURLE_OK)
            curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
        const char *text = resp.data ? resp.data : "";
        bool retry = cc != CURLE_OK || status == 429 || status >= 500;
        if (!retry) {
            if (status == 200) {
                s->n_ok += n;
            } else if (status == 207 || status == 400 || status == 403) {
                size_t bad = report_errors(text, batch, n);
                if (!bad) {
                    fprintf(stderr, "strata send: HTTP %ld: %s", status, text);
                    bad = n;
                }
                if (bad > n)
                    bad = n;
                s->n_bad += bad;
                s->n_ok += status == 207 ? n - bad : 0;
            } else {
                fprintf(stderr, "strata send: HTTP %ld: %s", status, text);
                s->n_bad += n;
            }
            if (s->verbose)
                fprintf(stderr, "strata send: %zu events, HTTP %ld\n", n, status);
            done = true;
        } else if (attempt >= s->retries) {
            fprintf(stderr, "strata send: giving up after %d attempts: %s\n", attempt + 1,
                    cc != CURLE_OK ? curl_easy_strerror(cc) : text);
            s->n_bad += n;
            done = true;
        } else {
            long wait = retry_after >= 0 ? retry_after * 1000 : backoff_ms + rand() % (backoff_ms / 2 + 1);
            if (s->verbose)
                fprintf(stderr, "strata send: %s, retrying in %ld ms\n",
                        cc != CURLE_OK ? curl_easy_strerror(cc) : "server busy", wait);
            sleep_ms(wait);
            backoff_ms = backoff_ms * 2 > 30000 ? 30000 : backoff_ms * 2;
        }
        st_buf_free(&resp);
    }
    st_buf_free(&body);
    return true;
}

int cmd_send(int argc, char **argv)
{
    const char *url = NULL, *key = NULL, *key_env = NULL, *file = NULL;
    size_t batch_n = 100;
    sender s = {.retries = 8, .timeout_s = 30};
    line *lines = NULL;
    size_t n_lines = 0, cap = 0;
    int code = ST_EXIT_ERROR;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return ST_EXIT_OK;
        }
        if (!strcmp(a, "--verbose")) {
            s.verbose = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "strata send: option '%s' needs a value\n", a);
            return ST_EXIT_USAGE;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--url")) {
            url = v;
        } else if (!strcmp(a, "--key")) {
            key = v;
        } else if (!strcmp(a, "--key-env")) {
            key_env = v;
        } else if (!strcmp(a, "--file")) {
            file = v;
        } else if (!strcmp(a, "--batch")) {
            batch_n = (size_t)strtoul(v, NULL, 10);
        } else if (!strcmp(a, "--retries")) {
            s.retries = (int)strtol(v, NULL, 10);
        } else if (!strcmp(a, "--timeout")) {
            s.timeout_s = strtol(v, NULL, 10);
        } else if (!strcmp(a, "--event")) {
            if (n_lines == cap) {
                cap = cap ? cap * 2 : 8;
                lines = st_realloc(lines, cap * sizeof *lines);
            }
            lines[n_lines].text = st_strdup(v);
            lines[n_lines].len = strlen(v);
            lines[n_lines].lineno = 0;
            n_lines++;
        } else {
            fprintf(stderr, "strata send: unknown option '%s'\n", a);
            usage(stderr);
            return ST_EXIT_USAGE;
        }
    }
    if (key_env) {
        key = getenv(key_env);
        if (!key || !*key) {
            fprintf(stderr, "strata send: environment variable %s is not set\n", key_env);
            return ST_EXIT_USAGE;
        }
    }
    if (!url || !key || batch_n == 0 || s.retries < 0) {
        usage(stderr);
        return ST_EXIT_USAGE;
    }
    if (!n_lines) {
        FILE *f = file ? fopen(file, "r") : stdin;
        if (!f) {
            fprintf(stderr, "strata send: cannot open %s\n", file);
            return ST_EXIT_ERROR;
        }
        char *buf = NULL;
        size_t bcap = 0, lineno = 0;
        ssize_t got;
        while ((got = getline(&buf, &bcap, f)) >= 0) {
            lineno++;
            size_t len = (size_t)got;
            while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
                len--;
            size_t sp = 0;
            while (sp < len && (buf[sp] == ' ' || buf[sp] == '\t'))
                sp++;
            if (sp == len)
                continue;
            if (n_lines == cap) {
                cap = cap ? cap * 2 : 64;
                lines = st_realloc(lines, cap * sizeof *lines);
            }
            lines[n_lines].text = st_strndup(buf, len);
            lines[n_lines].len = len;
            lines[n_lines].lineno = lineno;
            n_lines++;
        }
        free(buf); /* allocated by getline */
        if (f != stdin)
            fclose(f);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    s.curl = curl_easy_init();
    size_t ul = strlen(url);
    s.url = strstr(url, "/v1/") ? st_strdup(url)
                                : st_sprintf("%.*s/v1/events", (int)(ul && url[ul - 1] == '/' ? ul - 1 : ul), url);
    char *auth = st_sprintf("Authorization: Bearer %s", key);
    s.hdrs = curl_slist_append(NULL, auth);
    s.hdrs = curl_slist_append(s.hdrs, "Content-Type: application/x-ndjson");
    s.hdrs = curl_slist_append(s.hdrs, "Expect:");
    curl_easy_setopt(s.curl, CURLOPT_URL, s.url);
    curl_easy_setopt(s.curl, CURLOPT_HTTPHEADER, s.hdrs);
    curl_easy_setopt(s.curl, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(s.curl, CURLOPT_HEADERFUNCTION, collect_header);
    curl_easy_setopt(s.curl, CURLOPT_TIMEOUT, s.timeout_s);
    curl_easy_setopt(s.curl, CURLOPT_NOSIGNAL, 1L);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    for (size_t i = 0; i < n_lines; i += batch_n)
        send_batch(&s, lines + i, n_lines - i < batch_n ? n_lines - i : batch_n);
    fprintf(stderr, "strata send: %zu acknowledged, %zu failed\n", s.n_ok, s.n_bad);
    code = s.n_bad == 0 && s.n_ok == n_lines ? ST_EXIT_OK : ST_EXIT_ERROR;
    curl_slist_free_all(s.hdrs);
    curl_easy_cleanup(s.curl);
    curl_global_cleanup();
    if (auth)
        memset(auth, 0, strlen(auth));
    st_free(auth);
    st_free(s.url);
    for (size_t i = 0; i < n_lines; i++)
        st_free(lines[i].text);
    st_free(lines);
    return code;
}
