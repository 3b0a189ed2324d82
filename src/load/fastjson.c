/*
 * fastjson.c - the loader's flat JSON reader and compact printer (see
 * fastjson.h for the contract: same acceptance as jansson or stricter, same
 * values, same printed text).
 *
 * The grammar is jansson's: whitespace is space, tab, CR, LF; numbers are
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, an integer when it has
 * neither fraction nor exponent (out of int64 range is an error), else a
 * double (an overflow to infinity is an error, an underflow is not);
 * strings are strict UTF-8 without raw control characters, \u0000 or lone
 * surrogates.
 */
#include "fastjson.h"

#include <errno.h>
#include <xxhash.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void st_fj_init(st_fj *d) { memset(d, 0, sizeof *d); }

void st_fj_free(st_fj *d)
{
    if (!d)
        return;
    st_free(d->n);
    st_free(d->pool);
    st_free(d->hs);
    memset(d, 0, sizeof *d);
}

static bool reserve_pool(st_fj *d, size_t need)
{
    if (d->pool_len + need <= d->pool_cap)
        return true;
    size_t nc = d->pool_cap ? d->pool_cap : 4096;
    while (nc < d->pool_len + need)
        nc *= 2;
    if (nc > UINT32_MAX)
        return false;
    char *np = st_realloc(d->pool, nc);
    if (!np)
        return false;
    d->pool = np;
    d->pool_cap = nc;
    return true;
}

static int new_node(st_fj *d, uint8_t type)
{
    if (d->n_nodes == d->cap_nodes) {
        size_t nc = d->cap_nodes ? d->cap_nodes * 2 : 256;
        if (nc > INT32_MAX)
            return -1;
        st_fj_node *nn = st_realloc(d->n, nc * sizeof *nn);
        if (!nn)
            return -1;
        d->n = nn;
        d->cap_nodes = nc;
    }
    st_fj_node *n = &d->n[d->n_nodes];
    memset(n, 0, sizeof *n);
    n->type = type;
    n->end = (uint32_t)d->n_nodes + 1;
    return (int)d->n_nodes++;
}

/* ---------------------------------------------------------------- parsing */

typedef struct parser {
    const unsigned char *p, *e;
    st_fj *d;
} parser;

static void skip_ws(parser *ps)
{
    while (ps->p < ps->e && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
        ps->p++;
}

static bool hex4(parser *ps, unsigned *out)
{
    if (ps->e - ps->p < 4)
        return false;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = st_hex_digit((unsigned char)ps->p[i]);
        if (h < 0)
            return false;
        v = v << 4 | (unsigned)h;
    }
    ps->p += 4;
    *out = v;
    return true;
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), 0 if
 * invalid: overlong forms, surrogates and code points past U+10FFFF are. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *e)
{
    unsigned c = p[0], cp;
    size_t n;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(e - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* Decodes the string at ps->p (just past the opening quote) into the pool;
 * the pool was reserved for the whole text, so it does not move. */
static bool p_string(parser *ps, uint32_t *off, uint32_t *len)
{
    st_fj *d = ps->d;
    char *start = d->pool + d->pool_len, *o = start;
    const unsigned char *p = ps->p, *e = ps->e;
    for (;;) {
        const unsigned char *run = p;
        /* eight plain bytes at a time: none a quote, a backslash, a control
         * character or non-ASCII (each test may flag a plain byte, never
         * miss one; a flagged word goes byte by byte) */
        while (e - p >= 8) {
            uint64_t v, q, b;
            memcpy(&v, p, 8);
            q = v ^ 0x2222222222222222ULL;
            b = v ^ 0x5C5C5C5C5C5C5C5CULL;
            uint64_t m = ((q - 0x0101010101010101ULL) & ~q) | ((b - 0x0101010101010101ULL) & ~b) |
                         ((v - 0x2020202020202020ULL) & ~v) | v;
            if (m & 0x8080808080808080ULL)
                break;
            p += 8;
        }
        while (p < e && *p != '"' && *p != '\\' && *p >= 0x20 && *p < 0x80)
            p++;
        memcpy(o, run, (size_t)(p - run));
        o += p - run;
        if (p >= e)
            return false;
        unsigned c = *p;
        if (c == '"') {
            p++;
            break;
        }
        if (c < 0x20)
            return false;
        if (c >= 0x80) {
            size_t n = utf8_seq(p, e);
            if (!n)
                return false;
            memcpy(o, p, n);
            o += n;
            p += n;
            continue;
        }
        /* backslash */
        if (++p >= e)
            return false;
        c = *p++;
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            ps->p = p;
            if (!hex4(ps, &cp))
                return false;
            p = ps->p;
            if (cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
                return false;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (e - p < 2 || p[0] != '\\' || p[1] != 'u')
                    return false;
                ps->p = p + 2;
                if (!hex4(ps, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return false;
                p = ps->p;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            o = put_utf8(o, cp);
            break;
        }
        default:
            return false;
        }
    }
    ps->p = p;
    *off = (uint32_t)d->pool_len;
    *len = (uint32_t)(o - start);
    *o++ = 0;
    d->pool_len += (size_t)(o - start);
    return true;
}

static bool p_number(parser *ps, int idx)
{
    const unsigned char *s = ps->p, *p = s, *e = ps->e;
    bool neg = false, real = false;
    if (p < e && *p == '-') {
        neg = true;
        p++;
    }
    if (p >= e)
        return false;
    if (*p == '0') {
        p++;
        if (p < e && *p >= '0' && *p <= '9')
            return false;
    } else if (*p >= '1' && *p <= '9') {
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    } else {
        return false;
    }
    if (p < e && *p == '.') {
        real = true;
        p++;
        if (p >= e || *p < '0' || *p > '9')
            return false;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        real = true;
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || *p < '0' || *p > '9')
            return false;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    st_fj_node *n = &ps->d->n[idx];
    if (!real) {
        /* accumulate negatively so INT64_MIN fits */
        int64_t v = 0;
        for (const unsigned char *q = s + neg; q < p; q++) {
            int dg = *q - '0';
            if (v < (INT64_MIN + dg) / 10)
                return false;   /* jansson: "too big integer" */
            v = v * 10 - dg;
        }
        if (!neg) {
            if (v == INT64_MIN)
                return false;
            v = -v;
        }
        n->type = ST_FJ_INT;
        n->v.i = v;
    } else {
        char buf[64];
        size_t l = (size_t)(p - s);
        if (l >= sizeof buf)
            return false;   /* refused, not invalid: jansson decides */
        memcpy(buf, s, l);
        buf[l] = 0;
        errno = 0;
        double v = strtod(buf, NULL);
        if ((v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE)
            return false;   /* jansson: "real number overflow" */
        n->type = ST_FJ_REAL;
        n->v.d = v;
    }
    ps->p = p;
    return true;
}

static bool p_lit(parser *ps, const char *w, size_t n)
{
    if ((size_t)(ps->e - ps->p) < n || memcmp(ps->p, w, n))
        return false;
    ps->p += n;
    return true;
}

static bool p_value(parser *ps, int depth);

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool same_key(const st_fj *d, int a, int b)
{
    return d->n[a].key_len == d->n[b].key_len &&
           !memcmp(d->pool + d->n[a].key, d->pool + d->n[b].key, d->n[a].key_len);
}

/* Marks object idx when a key repeats, so readers take the slow path only
 * there.  A large object with a repeated key (or a hash collision) is
 * refused: jansson resolves it in linear time, the pairwise scan would not. */
static bool check_dups(st_fj *d, int idx)
{
    uint32_t n = d->n[idx].len, end = d->n[idx].end;
    if (n < 2)
        return true;
    if (n <= ST_FJ_SMALL_OBJ) {
        int m[ST_FJ_SMALL_OBJ];
        uint32_t k = 0;
        for (uint32_t x = (uint32_t)idx + 1; x < end; x = d->n[x].end)
            m[k++] = (int)x;
        for (uint32_t a = 0; a < k; a++)
            for (uint32_t b = a + 1; b < k; b++)
                if (same_key(d, m[a], m[b])) {
                    d->n[idx].dups = 1;
                    return true;
                }
        return true;
    }
    if (d->hs_cap < n) {
        uint64_t *nh = st_realloc(d->hs, n * sizeof *nh);
        if (!nh)
            return false;
        d->hs = nh;
        d->hs_cap = n;
    }
    uint32_t k = 0;
    for (uint32_t x = (uint32_t)idx + 1; x < end; x = d->n[x].end)
        d->hs[k++] = XXH3_64bits(d->pool + d->n[x].key, d->n[x].key_len);
    qsort(d->hs, k, sizeof *d->hs, cmp_u64);
    for (uint32_t a = 1; a < k; a++)
        if (d->hs[a] == d->hs[a - 1])
            return false;
    return true;
}

static bool p_container(parser *ps, int idx, bool obj, int depth)
{
    st_fj *d = ps->d;
    uint32_t count = 0;
    char close = obj ? '}' : ']';
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->e && *ps->p == close) {
        ps->p++;
        d->n[idx].end = (uint32_t)d->n_nodes;
        return true;
    }
    for (;;) {
        uint32_t koff = 0, klen = 0;
        if (obj) {
            if (ps->p >= ps->e || *ps->p != '"')
                return false;
            ps->p++;
            if (!p_string(ps, &koff, &klen))
                return false;
            skip_ws(ps);
            if (ps->p >= ps->e || *ps->p != ':')
                return false;
            ps->p++;
            skip_ws(ps);
        }
        size_t child = d->n_nodes;
        if (!p_value(ps, depth + 1))
            return false;
        if (obj) {
            d->n[child].key = koff;
            d->n[child].key_len = klen;
        }
        count++;
        skip_ws(ps);
        if (ps->p >= ps->e)
            return false;
        if (*ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            continue;
        }
        if (*ps->p != close)
            return false;
        ps->p++;
        break;
    }
    d->n[idx].len = count;
    d->n[idx].end = (uint32_t)d->n_nodes;
    return !obj || check_dups(d, idx);
}

static bool p_value(parser *ps, int depth)
{
    if (depth > ST_FJ_MAX_DEPTH || ps->p >= ps->e)
        return false;
    int idx = new_node(ps->d, ST_FJ_NULL);
    if (idx < 0)
        return false;
    switch (*ps->p) {
    case '{':
        ps->d->n[idx].type = ST_FJ_OBJ;
        return p_container(ps, idx, true, depth);
    case '[':
        ps->d->n[idx].type = ST_FJ_ARR;
        return p_container(ps, idx, false, depth);
    case '"': {
        ps->p++;
        uint32_t off, len;
        if (!p_string(ps, &off, &len))
            return false;
        st_fj_node *n = &ps->d->n[idx];
        n->type = ST_FJ_STR;
        n->v.s = off;
        n->len = len;
        return true;
    }
    case 't':
        ps->d->n[idx].type = ST_FJ_TRUE;
        return p_lit(ps, "true", 4);
    case 'f':
        ps->d->n[idx].type = ST_FJ_FALSE;
        return p_lit(ps, "false", 5);
    case 'n':
        return p_lit(ps, "null", 4);
    default:
        return p_number(ps, idx);
    }
}

bool st_fj_parse(st_fj *d, const char *p, size_t len)
{
    d->n_nodes = 0;
    d->pool_len = 0;
    /* every string decodes to at most its quoted length minus one (with its
     * NUL), so the pool never moves during a parse */
    if (len >= UINT32_MAX || !reserve_pool(d, len + 1))
        return false;
    parser ps = {(const unsigned char *)p, (const unsigned char *)p + len, d};
    skip_ws(&ps);
    if (ps.p >= ps.e || (*ps.p != '{' && *ps.p != '['))
        return false;
    if (!p_value(&ps, 1))
        return false;
    skip_ws(&ps);
    return ps.p == ps.e;
}

/* ---------------------------------------------------------------- from jansson */

static st_rc conv(st_fj *d, json_t *v, const char *key, size_t key_len)
{
    int idx = new_node(d, ST_FJ_NULL);
    if (idx < 0)
        return ST_ERR_NOMEM;
    if (key) {
        if (!reserve_pool(d, key_len + 1))
            return ST_ERR_NOMEM;
        memcpy(d->pool + d->pool_len, key, key_len);
        d->pool[d->pool_len + key_len] = 0;
        d->n[idx].key = (uint32_t)d->pool_len;
        d->n[idx].key_len = (uint32_t)key_len;
        d->pool_len += key_len + 1;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        d->n[idx].type = ST_FJ_OBJ;
        const char *k;
        json_t *m;
        uint32_t count = 0;
        json_object_foreach(v, k, m) {
            st_rc rc = conv(d, m, k, strlen(k));
            if (rc)
                return rc;
            count++;
        }
        d->n[idx].len = count;
        break;
    }
    case JSON_ARRAY: {
        d->n[idx].type = ST_FJ_ARR;
        for (size_t i = 0; i < json_array_size(v); i++) {
            st_rc rc = conv(d, json_array_get(v, i), NULL, 0);
            if (rc)
                return rc;
        }
        d->n[idx].len = (uint32_t)json_array_size(v);
        break;
    }
    case JSON_STRING: {
        size_t l = json_string_length(v);
        if (!reserve_pool(d, l + 1))
            return ST_ERR_NOMEM;
        memcpy(d->pool + d->pool_len, json_string_value(v), l);
        d->pool[d->pool_len + l] = 0;
        d->n[idx].type = ST_FJ_STR;
        d->n[idx].v.s = (uint32_t)d->pool_len;
        d->n[idx].len = (uint32_t)l;
        d->pool_len += l + 1;
        break;
    }
    case JSON_INTEGER:
        d->n[idx].type = ST_FJ_INT;
        d->n[idx].v.i = (int64_t)json_integer_value(v);
        break;
    case JSON_REAL:
        d->n[idx].type = ST_FJ_REAL;
        d->n[idx].v.d = json_real_value(v);
        break;
    case JSON_TRUE: d->n[idx].type = ST_FJ_TRUE; break;
    case JSON_FALSE: d->n[idx].type = ST_FJ_FALSE; break;
    default: break;
    }
    d->n[idx].end = (uint32_t)d->n_nodes;
    return ST_OK;
}

st_rc st_fj_from_jansson(st_fj *d, json_t *v, st_err *err)
{
    d->n_nodes = 0;
    d->pool_len = 0;
    st_rc rc = v ? conv(d, v, NULL, 0) : ST_ERR_INVALID;
    if (rc)
        return st_fail(err, rc, "record: converting the JSON value");
    return ST_OK;
}

/* ---------------------------------------------------------------- access */

int st_fj_get(const st_fj *d, int obj, const char *key, size_t key_len)
{
    if (obj < 0 || d->n[obj].type != ST_FJ_OBJ)
        return -1;
    int found = -1;
    for (int m = obj + 1; m < (int)d->n[obj].end; m = (int)d->n[m].end)
        if (d->n[m].key_len == key_len && !memcmp(d->pool + d->n[m].key, key, key_len))
            found = m;
    return found;
}

int st_fj_member(const st_fj *d, int obj, int m)
{
    if (!d->n[obj].dups)
        return m;
    const st_fj_node *nm = &d->n[m];
    const char *k = d->pool + nm->key;
    for (int x = obj + 1; x < m; x = (int)d->n[x].end)
        if (d->n[x].key_len == nm->key_len && !memcmp(d->pool + d->n[x].key, k, nm->key_len))
            return -1;
    int last = m;
    for (int x = (int)nm->end; x < (int)d->n[obj].end; x = (int)d->n[x].end)
        if (d->n[x].key_len == nm->key_len && !memcmp(d->pool + d->n[x].key, k, nm->key_len))
            last = x;
    return last;
}

/* ---------------------------------------------------------------- printing */

st_rc st_fj_dump_str(st_buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    st_rc rc = st_buf_putc(out, '"');
    size_t run = 0;
    for (size_t i = 0; rc == ST_OK && i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rc = st_buf_append(out, s + run, i - run);
        run = i + 1;
        char esc[7] = {'\\', 0};
        size_t n = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
            break;
        }
        rc = rc ? rc : st_buf_append(out, esc, n);
    }
    rc = rc ? rc : st_buf_append(out, s + run, len - run);
    return rc ? rc : st_buf_putc(out, '"');
}

/* jansson's real format: %.17g, then ".0" when it reads as an integer, and
 * the exponent without '+' or leading zeros. */
static st_rc dump_real(st_buf *out, double v)
{
    char b[64];
    int n = snprintf(b, sizeof b - 3, "%.17g", v);
    if (n < 0 || n >= (int)sizeof b - 3)
        return ST_ERR_INVALID;
    if (!strchr(b, '.') && !strchr(b, 'e')) {
        b[n++] = '.';
        b[n++] = '0';
        b[n] = 0;
    }
    char *start = strchr(b, 'e');
    if (start) {
        start++;
        char *end = start + 1;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, (size_t)(b + n - end) + 1);
            n -= (int)(end - start);
        }
    }
    return st_buf_append(out, b, (size_t)n);
}

static st_rc dump_int(st_buf *out, int64_t v)
{
    char b[24], *p = b + sizeof b;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return st_buf_append(out, p, (size_t)(b + sizeof b - p));
}

static st_rc dump_obj(const st_fj *d, int obj, const char *const *skip, size_t n_skip,
                      st_buf *out);

st_rc st_fj_dump(const st_fj *d, int i, st_buf *out)
{
    const st_fj_node *n = &d->n[i];
    switch (n->type) {
    case ST_FJ_NULL: return st_buf_append(out, "null", 4);
    case ST_FJ_TRUE: return st_buf_append(out, "true", 4);
    case ST_FJ_FALSE: return st_buf_append(out, "false", 5);
    case ST_FJ_INT: return dump_int(out, n->v.i);
    case ST_FJ_REAL: return dump_real(out, n->v.d);
    case ST_FJ_STR: return st_fj_dump_str(out, d->pool + n->v.s, n->len);
    case ST_FJ_ARR: {
        st_rc rc = st_buf_putc(out, '[');
        for (int m = i + 1; rc == ST_OK && m < (int)n->end; m = (int)d->n[m].end) {
            if (m != i + 1)
                rc = st_buf_putc(out, ',');
            rc = rc ? rc : st_fj_dump(d, m, out);
        }
        return rc ? rc : st_buf_putc(out, ']');
    }
    default:
        return dump_obj(d, i, NULL, 0, out);
    }
}

static st_rc dump_obj(const st_fj *d, int obj, const char *const *skip, size_t n_skip,
                      st_buf *out)
{
    st_rc rc = st_buf_putc(out, '{');
    bool first = true;
    for (int m = obj + 1; rc == ST_OK && m < (int)d->n[obj].end; m = (int)d->n[m].end) {
        int v = st_fj_member(d, obj, m);
        if (v < 0)
            continue;
        bool skipped = false;
        for (size_t k = 0; k < n_skip && !skipped; k++)
            skipped = !strcmp(skip[k], st_fj_key(d, m));
        if (skipped)
            continue;
        if (!first)
            rc = st_buf_putc(out, ',');
        first = false;
        rc = rc ? rc : st_fj_dump_str(out, st_fj_key(d, m), d->n[m].key_len);
        rc = rc ? rc : st_buf_putc(out, ':');
        rc = rc ? rc : st_fj_dump(d, v, out);
    }
    return rc ? rc : st_buf_putc(out, '}');
}

st_rc st_fj_dump_except(const st_fj *d, int obj, const char *const *skip, size_t n_skip,
                        st_buf *out)
{
    if (obj < 0 || d->n[obj].type != ST_FJ_OBJ)
        return ST_ERR_INVALID;
    return dump_obj(d, obj, skip, n_skip, out);
}
