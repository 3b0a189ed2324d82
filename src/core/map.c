/*
 * map.c - string-keyed open-addressing hash map (xxHash3, linear probing,
 * tombstones).  Used for the live file set of a Delta snapshot, where keys
 * are (path, deletion-vector id) strings and counts reach millions.
 */
#include "strata/core.h"

#include <string.h>
#include <xxhash.h>

struct slot {
    char *key;      /* NULL = empty; TOMB = deleted */
    void *value;
    uint64_t hash;
};

struct st_map {
    struct slot *slots;
    size_t cap;     /* power of two */
    size_t len;
    size_t used;    /* len + tombstones */
};

static char tomb_marker;
#define TOMB (&tomb_marker)

uint64_t st_hash64(const void *data, size_t len) { return XXH3_64bits(data, len); }

st_map *st_map_new(void)
{
    st_map *m = st_calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cap = 16;
    m->slots = st_calloc(m->cap, sizeof *m->slots);
    if (!m->slots) {
        st_free(m);
        return NULL;
    }
    return m;
}

void st_map_free(st_map *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key && m->slots[i].key != TOMB)
            st_free(m->slots[i].key);
    st_free(m->slots);
    st_free(m);
}

static struct slot *find(const st_map *m, const char *key, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct slot *s = &m->slots[i];
        if (!s->key)
            return NULL;
        if (s->key != TOMB && s->hash == h && !strcmp(s->key, key))
            return s;
    }
}

static st_rc grow(st_map *m)
{
    size_t ncap = m->len * 4 > m->cap ? m->cap * 2 : m->cap; /* rehash in place when mostly tombs */
    struct slot *ns = st_calloc(ncap, sizeof *ns);
    if (!ns)
        return ST_ERR_NOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        struct slot *s = &m->slots[i];
        if (!s->key || s->key == TOMB)
            continue;
        size_t j = s->hash & (ncap - 1);
        while (ns[j].key)
            j = (j + 1) & (ncap - 1);
        ns[j] = *s;
    }
    st_free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    m->used = m->len;
    return ST_OK;
}

st_rc st_map_put(st_map *m, const char *key, void *value, void **old)
{
    uint64_t h = st_hash64(key, strlen(key));
    struct slot *s = find(m, key, h);
    if (s) {
        if (old)
            *old = s->value;
        s->value = value;
        return ST_OK;
    }
    if ((m->used + 1) * 4 > m->cap * 3) {
        st_rc rc = grow(m);
        if (rc)
            return rc;
    }
    char *k = st_strdup(key);
    if (!k)
        return ST_ERR_NOMEM;
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    while (m->slots[i].key && m->slots[i].key != TOMB)
        i = (i + 1) & mask;
    if (!m->slots[i].key)
        m->used++;
    m->slots[i].key = k;
    m->slots[i].value = value;
    m->slots[i].hash = h;
    m->len++;
    if (old)
        *old = NULL;
    return ST_OK;
}

void *st_map_get(const st_map *m, const char *key)
{
    struct slot *s = find(m, key, st_hash64(key, strlen(key)));
    return s ? s->value : NULL;
}

void *st_map_del(st_map *m, const char *key)
{
    struct slot *s = find(m, key, st_hash64(key, strlen(key)));
    if (!s)
        return NULL;
    void *v = s->value;
    st_free(s->key);
    s->key = TOMB;
    s->value = NULL;
    m->len--;
    return v;
}

size_t st_map_len(const st_map *m) { return m->len; }

bool st_map_next(const st_map *m, size_t *it, const char **key, void **value)
{
    while (*it < m->cap) {
        struct slot *s = &m->slots[(*it)++];
        if (s->key && s->key != TOMB) {
            if (key)
                *key = s->key;
            if (value)
                *value = s->value;
            return true;
        }
    }
    return false;
}
