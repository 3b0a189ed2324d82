/*
 * replay_server.h - a loopback HTTP server for tests that replays recorded
 * responses (libmicrohttpd).  Each request's "path?query" is matched against
 * the rules in the order they were added; a rule can answer only its first N
 * matches (to script "500 then success" or "429 then success"), delay its
 * answer (timeouts), and carry extra headers (Retry-After).  Every request is
 * logged so tests can assert what the client asked for.
 */
#ifndef ST_REPLAY_SERVER_H
#define ST_REPLAY_SERVER_H

#include <stddef.h>

typedef struct tu_replay tu_replay;

typedef struct tu_reply {
    const char *match;     /* substring of "path?query" (query decoded), NULL = any */
    int status;            /* default 200 */
    const char *body;      /* literal body, or */
    const char *file;      /* a file read when the rule is added */
    const char *ctype;     /* default application/octet-stream */
    const char *header;    /* one extra "Name: value" header, or NULL */
    int delay_ms;          /* wait before answering */
    int times;             /* answer only the first N matches, 0 = always */
} tu_reply;

/* Starts on 127.0.0.1 on a free port; fails the test on error. */
tu_replay *tu_replay_start(void);
int tu_replay_port(const tu_replay *s);
/* "http://127.0.0.1:<port>", OWNED by the server. */
const char *tu_replay_url(const tu_replay *s);
/* Adds a rule (copied; a file that cannot be read fails the test). */
void tu_replay_add(tu_replay *s, const tu_reply *r);
/* Drops every rule and the request log. */
void tu_replay_reset(tu_replay *s);
/* Number of logged requests whose "path?query" contains `needle` (NULL = all). */
int tu_replay_count(tu_replay *s, const char *needle);
/* The n-th logged request (0-based), OWNED copy, NULL past the end. */
char *tu_replay_request(tu_replay *s, int n);
void tu_replay_stop(tu_replay *s);

#endif
