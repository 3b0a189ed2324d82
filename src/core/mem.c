/*
 * mem.c - allocation wrappers, arenas and bounded buffers.
 *
 * st_malloc and friends are the only allocator entry points so tests can
 * inject failures (st_mem_fail_after).  Arenas hold per-batch memory and
 * cleanup callbacks for non-memory resources; buffers refuse to grow past
 * their declared maximum so untrusted input cannot exhaust memory.
 */
#include "strata/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long g_fail_after; /* test hook only; 0 = never fail */

void st_mem_fail_after(long n) { g_fail_after = n; }

static bool should_fail(void)
{
    if (g_fail_after <= 0)
        return false;
    if (--g_fail_after == 0)
        return true;
    return false;
}

void *st_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *st_calloc(size_t count, size_t n)
{
    if (should_fail())
        return NULL;
    return calloc(count ? count : 1, n ? n : 1);
}

void *st_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void st_free(void *p) { free(p); }

char *st_strdup(const char *s)
{
    if (!s)
        return NULL;
    return st_strndup(s, strlen(s));
}

char *st_strndup(const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *d = st_malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

int st_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *st_vsprintf(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    char *s = st_malloc((size_t)n + 1);
    if (!s)
        return NULL;
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

char *st_sprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = st_vsprintf(fmt, ap);
    va_end(ap);
    return s;
}

/* ---- arena ---- */

struct block {
    struct block *next;
    size_t size;
    size_t used;
    _Alignas(16) unsigned char data[];
};

struct cleanup {
    struct cleanup *next;
    st_cleanup_fn fn;
    void *arg;
};

struct st_arena {
    struct block *head;
    struct cleanup *cleanups;
    size_t block_size;
    size_t used;
};

st_arena *st_arena_new(size_t block_size)
{
    st_arena *a = st_calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->block_size = block_size ? block_size : 64 * 1024;
    return a;
}

void st_arena_reset(st_arena *a)
{
    if (!a)
        return;
    struct cleanup *c = a->cleanups;
    while (c) {
        struct cleanup *next = c->next;
        c->fn(c->arg);
        st_free(c);
        c = next;
    }
    a->cleanups = NULL;
    struct block *b = a->head;
    while (b) {
        struct block *next = b->next;
        st_free(b);
        b = next;
    }
    a->head = NULL;
    a->used = 0;
}

void st_arena_free(st_arena *a)
{
    if (!a)
        return;
    st_arena_reset(a);
    st_free(a);
}

void *st_arena_alloc(st_arena *a, size_t n)
{
    size_t need = (n + 15) & ~(size_t)15;
    if (need == 0)
        need = 16;
#ifdef ST_ASAN
    /* one malloc per allocation so ASan sees use after reset */
    struct block *b = st_malloc(sizeof *b + need);
    if (!b)
        return NULL;
    b->size = need;
    b->used = need;
    b->next = a->head;
    a->head = b;
    a->used += need;
    memset(b->data, 0, need);
    return b->data;
#else
    struct block *b = a->head;
    if (!b || b->size - b->used < need) {
        size_t size = need > a->block_size ? need : a->block_size;
        b = st_malloc(sizeof *b + size);
        if (!b)
            return NULL;
        b->size = size;
        b->used = 0;
        if (need > a->block_size && a->head) {
            /* big allocation: keep the current head block open for small ones */
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = b->data + b->used;
    b->used += need;
    a->used += need;
    memset(p, 0, need);
    return p;
#endif
}

char *st_arena_strndup(st_arena *a, const char *s, size_t n)
{
    char *d = st_arena_alloc(a, n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *st_arena_strdup(st_arena *a, const char *s)
{
    if (!s)
        return NULL;
    return st_arena_strndup(a, s, strlen(s));
}

char *st_arena_sprintf(st_arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = NULL;
    if (n >= 0) {
        s = st_arena_alloc(a, (size_t)n + 1);
        if (s)
            vsnprintf(s, (size_t)n + 1, fmt, ap2);
    }
    va_end(ap2);
    return s;
}

bool st_arena_cleanup(st_arena *a, st_cleanup_fn fn, void *arg)
{
    struct cleanup *c = st_malloc(sizeof *c);
    if (!c)
        return false;
    c->fn = fn;
    c->arg = arg;
    c->next = a->cleanups;
    a->cleanups = c;
    return true;
}

size_t st_arena_used(const st_arena *a) { return a->used; }

/* ---- buffers ---- */

void st_buf_init(st_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max ? max : SIZE_MAX / 2;
}

void st_buf_free(st_buf *b)
{
    if (!b)
        return;
    st_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void st_buf_reset(st_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static st_rc reserve(st_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return ST_ERR_LIMIT;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return ST_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *d = st_realloc(b->data, cap);
    if (!d)
        return ST_ERR_NOMEM;
    b->data = d;
    b->cap = cap;
    return ST_OK;
}

st_rc st_buf_append(st_buf *b, const void *data, size_t len)
{
    st_rc rc = reserve(b, len);
    if (rc)
        return rc;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return ST_OK;
}

st_rc st_buf_puts(st_buf *b, const char *s) { return st_buf_append(b, s, strlen(s)); }

st_rc st_buf_putc(st_buf *b, char c) { return st_buf_append(b, &c, 1); }

st_rc st_buf_printf(st_buf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    st_rc rc = ST_ERR_INVALID;
    if (n >= 0) {
        rc = reserve(b, (size_t)n);
        if (rc == ST_OK) {
            vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
            b->len += (size_t)n;
        }
    }
    va_end(ap2);
    return rc;
}

static st_rc quoted(st_buf *b, const char *s, char q)
{
    st_rc rc = st_buf_putc(b, q);
    for (const char *p = s; rc == ST_OK && *p; p++) {
        if (*p == q)
            rc = st_buf_putc(b, q);
        if (rc == ST_OK)
            rc = st_buf_putc(b, *p);
    }
    if (rc == ST_OK)
        rc = st_buf_putc(b, q);
    return rc;
}

st_rc st_buf_sql_str(st_buf *b, const char *s) { return quoted(b, s, '\''); }
st_rc st_buf_sql_ident(st_buf *b, const char *s) { return quoted(b, s, '"'); }

st_rc st_buf_json_str(st_buf *b, const char *s)
{
    st_rc rc = st_buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; rc == ST_OK && *p; p++) {
        switch (*p) {
        case '"': rc = st_buf_puts(b, "\\\""); break;
        case '\\': rc = st_buf_puts(b, "\\\\"); break;
        case '\n': rc = st_buf_puts(b, "\\n"); break;
        case '\r': rc = st_buf_puts(b, "\\r"); break;
        case '\t': rc = st_buf_puts(b, "\\t"); break;
        default:
            if (*p < 0x20)
                rc = st_buf_printf(b, "\\u%04x", *p);
            else
                rc = st_buf_putc(b, (char)*p);
        }
    }
    if (rc == ST_OK)
        rc = st_buf_putc(b, '"');
    return rc;
}

char *st_buf_take(st_buf *b)
{
    char *d = b->data;
    if (!d)
        d = st_strdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}
