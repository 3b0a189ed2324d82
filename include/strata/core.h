/*
 * core.h - errors, logging, memory, buffers, maps, files and config.
 *
 * Every other module builds on these.  Conventions (see docs/style):
 *   - fallible calls return st_rc and take a trailing `st_err *err` that may
 *     be NULL; on failure err->msg names what failed and where;
 *   - out-params are written only on success;
 *   - destructors accept NULL.
 */
#ifndef STRATA_CORE_H
#define STRATA_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Status codes.  Numbers are fixed forever: they reach exit codes, logs and
 * the run history.  Append only. */
typedef enum st_rc {
    ST_OK = 0,
    ST_ERR_NOMEM = 1,
    ST_ERR_IO = 2,        /* filesystem or OS call failed; sub = errno */
    ST_ERR_PARSE = 3,     /* malformed input (JSON, YAML, log, SQL literal) */
    ST_ERR_INVALID = 4,   /* well-formed but not acceptable (bad argument, schema) */
    ST_ERR_CONFLICT = 5,  /* a concurrent commit won and the change cannot be rebased */
    ST_ERR_EXISTS = 6,    /* put-if-absent found the target present */
    ST_ERR_NOTFOUND = 7,  /* file, table, version or key absent */
    ST_ERR_UNSUPPORTED = 8, /* a feature we do not implement (named in msg) */
    ST_ERR_ENGINE = 9,    /* DuckDB reported an error; msg has its text */
    ST_ERR_REMOTE = 10,   /* a remote peer failed (HTTP, database) */
    ST_ERR_CORRUPT = 11,  /* stored state contradicts itself */
    ST_ERR_LIMIT = 12,    /* a configured bound was exceeded */
} st_rc;

const char *st_rc_name(st_rc rc);

#define ST_ERR_MSG_MAX 2048

/* An error report.  msg is one line; callers prepend context as the error
 * travels up with st_err_ctx(), giving "ctx: ctx: original". */
typedef struct st_err {
    st_rc code;
    int sub;                      /* errno, or 0 */
    char msg[ST_ERR_MSG_MAX];
} st_err;

/* Sets err (if not NULL) and returns code, so `return st_fail(...)` reads well. */
st_rc st_fail(st_err *err, st_rc code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like st_fail with sub = errno and ": strerror" appended. */
st_rc st_fail_errno(st_err *err, st_rc code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepends "context: " to err->msg.  No-op when err is NULL. */
void st_err_ctx(st_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void st_err_clear(st_err *err);

/* ---- logging ---- */
typedef enum st_log_level { ST_LOG_DEBUG, ST_LOG_INFO, ST_LOG_WARN, ST_LOG_ERROR } st_log_level;
/* Process-wide, set once at start-up (st_log_init reads STRATA_LOG). */
void st_log_init(void);
void st_log_set_level(st_log_level level);
st_log_level st_log_get_level(void);
void st_log(st_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define st_debug(...) st_log(ST_LOG_DEBUG, __VA_ARGS__)
#define st_info(...) st_log(ST_LOG_INFO, __VA_ARGS__)
#define st_warn(...) st_log(ST_LOG_WARN, __VA_ARGS__)
#define st_error(...) st_log(ST_LOG_ERROR, __VA_ARGS__)

/* ---- memory ----
 * All allocation goes through these so tests can count and fail them.
 * st_malloc never returns NULL for size 0. */
void *st_malloc(size_t n);
void *st_calloc(size_t count, size_t n);
void *st_realloc(void *p, size_t n);
void st_free(void *p);
char *st_strdup(const char *s);                  /* OWNED; NULL in -> NULL out */
char *st_strndup(const char *s, size_t n);
char *st_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* OWNED */
char *st_vsprintf(const char *fmt, va_list ap);
/* The value of one hex digit (either case), or -1. */
int st_hex_digit(int c);
/* Test hook: fail the Nth allocation from now (0 = never). */
void st_mem_fail_after(long n);

/* ---- arena: per-batch memory freed at once ----
 * Under ASan every allocation is its own malloc so use-after-reset is seen. */
typedef struct st_arena st_arena;
typedef void (*st_cleanup_fn)(void *arg);
st_arena *st_arena_new(size_t block_size);
void st_arena_free(st_arena *a);
void st_arena_reset(st_arena *a);   /* runs cleanups (LIFO), frees all memory */
void *st_arena_alloc(st_arena *a, size_t n);     /* 16-byte aligned, zeroed; NULL on OOM */
char *st_arena_strdup(st_arena *a, const char *s);
char *st_arena_strndup(st_arena *a, const char *s, size_t n);
char *st_arena_sprintf(st_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Registers fn(arg) to run at reset/free; returns false on OOM. */
bool st_arena_cleanup(st_arena *a, st_cleanup_fn fn, void *arg);
size_t st_arena_used(const st_arena *a);

/* ---- growable buffer with a hard bound ---- */
typedef struct st_buf {
    char *data;      /* always NUL-terminated when len > 0 or after any append */
    size_t len;
    size_t cap;
    size_t max;      /* appends beyond this fail with ST_ERR_LIMIT */
} st_buf;
void st_buf_init(st_buf *b, size_t max);
void st_buf_free(st_buf *b);
void st_buf_reset(st_buf *b);
st_rc st_buf_append(st_buf *b, const void *data, size_t len);
st_rc st_buf_puts(st_buf *b, const char *s);
st_rc st_buf_putc(st_buf *b, char c);
st_rc st_buf_printf(st_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a SQL string literal: 'it''s'. */
st_rc st_buf_sql_str(st_buf *b, const char *s);
/* Appends s as a quoted SQL identifier: "a""b". */
st_rc st_buf_sql_ident(st_buf *b, const char *s);
/* Appends s as a JSON string literal with quotes. */
st_rc st_buf_json_str(st_buf *b, const char *s);
/* Gives the data to the caller (OWNED) and resets b. */
char *st_buf_take(st_buf *b);

/* ---- string-keyed hash map (keys copied, values borrowed) ---- */
typedef struct st_map st_map;
st_map *st_map_new(void);
void st_map_free(st_map *m);                       /* does not free values */
/* Inserts or replaces; *old (if not NULL) receives the replaced value or NULL. */
st_rc st_map_put(st_map *m, const char *key, void *value, void **old);
void *st_map_get(const st_map *m, const char *key);
/* Removes key; returns its value or NULL. */
void *st_map_del(st_map *m, const char *key);
size_t st_map_len(const st_map *m);
/* Iteration: start with *it = 0; returns false at the end.  Order is
 * unspecified; the map must not change during iteration. */
bool st_map_next(const st_map *m, size_t *it, const char **key, void **value);
uint64_t st_hash64(const void *data, size_t len);

/* ---- files ---- */
/* Reads a whole file (NUL-terminated).  OWNED *out; fails with LIMIT past max. */
st_rc st_file_read(const char *path, size_t max, char **out, size_t *out_len, st_err *err);
/* Writes path atomically: temp file, fsync, rename, fsync of the directory. */
st_rc st_file_write_atomic(const char *path, const void *data, size_t len, st_err *err);
/* Creates path with the given content only if it does not exist (temp file +
 * link(2), so readers never see a partial file).  ST_ERR_EXISTS if present. */
st_rc st_file_put_if_absent(const char *path, const void *data, size_t len, st_err *err);
st_rc st_fsync_path(const char *path, st_err *err);
st_rc st_fsync_dir(const char *dir, st_err *err);
/* mkdir -p */
st_rc st_mkdirs(const char *path, st_err *err);
/* rm -rf; missing path is fine. */
st_rc st_rmtree(const char *path, st_err *err);
bool st_path_exists(const char *path);
bool st_is_dir(const char *path);
/* Joins with one '/', OWNED. */
char *st_path_join(const char *a, const char *b);
/* Milliseconds / microseconds since the Unix epoch (wall clock). */
int64_t st_now_ms(void);
int64_t st_now_us(void);
/* Monotonic clock in nanoseconds, for durations. */
int64_t st_mono_ns(void);
/* Days since 1970-01-01 of a proleptic Gregorian date, and back. */
int64_t st_days_from_civil(int64_t y, unsigned m, unsigned d);
void st_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);
/* 36-char lowercase random UUID v4 into out[37]. */
void st_uuid4(char out[37]);

/* ---- config (YAML) ----
 * The document is loaded into a tree that remembers where each node came
 * from, so errors can say "strata.yml:12: sources.pg.tables: expected a map". */
typedef enum st_cfg_kind { ST_CFG_SCALAR, ST_CFG_MAP, ST_CFG_SEQ } st_cfg_kind;
typedef struct st_cfg st_cfg;          /* a node */
typedef struct st_cfg_doc st_cfg_doc;  /* owns every node */

st_rc st_cfg_load_file(const char *path, st_cfg_doc **out, st_err *err);
st_rc st_cfg_load_string(const char *name, const char *text, size_t len, st_cfg_doc **out,
                         st_err *err);
void st_cfg_doc_free(st_cfg_doc *doc);
const st_cfg *st_cfg_root(const st_cfg_doc *doc);
st_cfg_kind st_cfg_kind_of(const st_cfg *n);
int st_cfg_line(const st_cfg *n);
const char *st_cfg_path(const st_cfg *n);     /* dotted key path, e.g. "sources.pg.kind" */
const char *st_cfg_file(const st_cfg *n);
/* Map child by key, NULL if absent. */
const st_cfg *st_cfg_get(const st_cfg *map, const char *key);
size_t st_cfg_len(const st_cfg *n);            /* children of a map or seq */
const st_cfg *st_cfg_at(const st_cfg *n, size_t i);   /* i-th child (value for maps) */
const char *st_cfg_key_at(const st_cfg *n, size_t i); /* i-th key of a map */
const char *st_cfg_scalar(const st_cfg *n);    /* NULL unless scalar */
/* Typed getters: absent key -> default; wrong type -> error naming file:line:path. */
st_rc st_cfg_get_str(const st_cfg *map, const char *key, const char *def, const char **out,
                     st_err *err);
st_rc st_cfg_get_int(const st_cfg *map, const char *key, int64_t def, int64_t *out,
                     st_err *err);
st_rc st_cfg_get_bool(const st_cfg *map, const char *key, bool def, bool *out, st_err *err);
/* Fails naming the first key of map not in the NULL-terminated allowed list. */
st_rc st_cfg_check_keys(const st_cfg *map, const char *const *allowed, st_err *err);
/* Error helper: "file:line: path: <message>". */
st_rc st_cfg_fail(const st_cfg *n, st_err *err, st_rc code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
