/*
 * testutil.h - helpers shared by the test executables: scratch directories,
 * running the CLI, and cmocka conveniences.
 */
#ifndef ST_TESTUTIL_H
#define ST_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "strata/core.h"
#include "strata/engine.h"

/* Fresh empty directory under $TMPDIR, OWNED; removed by tu_rmdir. */
char *tu_tempdir(const char *tag);
void tu_rmdir(char *dir);   /* removes and frees */
/* Path of ../shared (STRATA_SHARED), or NULL when absent. */
const char *tu_shared_dir(void);
/* Path of the strata binary (STRATA_BIN). */
const char *tu_strata_bin(void);
/* Runs a shell command, capturing stdout (OWNED *out, may be NULL) and
 * returning the exit status (or -1). */
int tu_run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Starts `strata serve ARGS...` (args: NULL-terminated, after "serve"),
 * waits up to timeout_ms for its "listening on 127.0.0.1:PORT" line and
 * returns the child's pid, storing the port in *out_port (may be NULL).
 * Fails the test when the server does not come up. */
int tu_serve_start(const char *const *args, int timeout_ms, int *out_port);
/* Sends sig to a server from tu_serve_start and reaps it; its wait status. */
int tu_serve_stop(int pid, int sig);
/* A cmocka teardown: SIGKILLs the server a failed test left running. */
int tu_serve_teardown(void **state);
/* A curl write callback appending to the st_buf in its last argument. */
size_t tu_curl_sink(char *p, size_t sz, size_t n, void *buf);
/* POSTs body to http://127.0.0.1:PORT/v1/events with X-Strata-Key: key;
 * the HTTP status (0 when no answer), the answer appended to out (may be
 * NULL). */
long tu_post_events(int port, const char *key, const char *body, st_buf *out);
/* An engine with every Delta table under LAKE/raw and LAKE/bronze as the
 * view raw_<table> / bronze_<table> (a leading '_' dropped). */
st_engine *tu_mount_events(const char *lake);
/* One value of sql over tu_mount_events(lake); fails the test on error.
 * The string is OWNED. */
int64_t tu_lake_i64(const char *lake, const char *sql);
char *tu_lake_str(const char *lake, const char *sql);
/* One value of sql with the Delta table at path registered as view; OWNED,
 * NULL for SQL NULL.  Fails the test on error. */
char *tu_delta_str(const char *path, const char *view, const char *sql);
/* A load client for durability tests: a thread POSTing batches of 20
 * backend "login" events with ids "d-N" to 127.0.0.1:port, retrying a
 * batch that got no 2xx with the same ids and now and then resending an
 * acknowledged one (a duplicate); it records every acknowledged id. */
typedef struct tu_client tu_client;
tu_client *tu_client_new(const char *key);
void tu_client_start(tu_client *c, int port);
void tu_client_stop(tu_client *c);               /* joins the thread */
size_t tu_client_acked(tu_client *c);            /* acknowledged ids, repeats counted */
int64_t tu_client_distinct(tu_client *c);        /* after tu_client_stop */
/* Asserts that the view (of tu_mount_events(lake)) holds every acknowledged
 * id and no event_id twice. */
void tu_client_check(tu_client *c, const char *lake, const char *view);
void tu_client_free(tu_client *c);
/* Every record of the event log in dir, as event_id -> array of the
 * records (JSON objects) in log order; OWNED (json_decref).  dense: also
 * asserts the sequence numbers run 0, 1, 2... with no gap. */
typedef struct json_t json_t;
json_t *tu_read_log(const char *dir, bool dense);
/* One value of sql over the Delta table PROJ/lake/LAYER/TARGET registered
 * as view; "NULL" for SQL NULL.  OWNED. */
char *tu_project_str(const char *proj, const char *layer, const char *target, const char *view,
                     const char *sql);
/* Fails the test unless that value is want. */
#define TU_ASSERT_PROJECT(proj, layer, target, view, sql, want)                               \
    do {                                                                                     \
        char *got_ = tu_project_str(proj, layer, target, view, sql);                         \
        if (strcmp(got_, want))                                                              \
            fail_msg("%s %s: got '%s', want '%s'", layer, sql, got_, want);                  \
        st_free(got_);                                                                       \
    } while (0)
/* Opens an in-memory engine or fails the test. */
st_engine *tu_engine(void);
/* Fails the test with err's message when rc != ST_OK. */
#define TU_OK(expr)                                                                        \
    do {                                                                                   \
        st_rc tu_rc_ = (expr);                                                             \
        if (tu_rc_ != ST_OK)                                                               \
            fail_msg("%s failed: %s (%s)", #expr, tu_err.msg, st_rc_name(tu_rc_));         \
    } while (0)
/* A per-test error object used by TU_OK. */
extern st_err tu_err;

#endif
