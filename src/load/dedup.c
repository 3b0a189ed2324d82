/*
 * dedup.c - sets of 64-bit event-id hashes (open addressing, linear probing)
 * used by the loader to find duplicates without asking bronze for every id.
 *
 * loader.c keeps one set per (family, event_date) inside the dedup window,
 * filled lazily from the bronze partition and kept current with each commit;
 * a hash hit is confirmed against bronze before an event is dropped, so a
 * 64-bit collision never loses an event.  See docs/decisions/0006-event-dedup.md.
 */
#include "load_int.h"

#include <xxhash.h>

uint64_t st_id_hash(const char *id, size_t len)
{
    return XXH3_64bits(id, len);
}

void st_idset_init(st_idset *s)
{
    s->slots = NULL;
    s->cap = 0;
    s->n = 0;
    s->has_zero = false;
}

void st_idset_free(st_idset *s)
{
    if (!s)
        return;
    st_free(s->slots);
    st_idset_init(s);
}

bool st_idset_has(const st_idset *s, uint64_t h)
{
    if (h == 0)
        return s->has_zero;
    if (!s->cap)
        return false;
    size_t mask = s->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        if (s->slots[i] == h)
            return true;
        if (s->slots[i] == 0)
            return false;
    }
}

static void put(uint64_t *slots, size_t cap, uint64_t h)
{
    size_t mask = cap - 1;
    size_t i = (size_t)h & mask;
    while (slots[i] && slots[i] != h)
        i = (i + 1) & mask;
    slots[i] = h;
}

st_rc st_idset_add(st_idset *s, uint64_t h)
{
    if (h == 0) {
        s->n += !s->has_zero;
        s->has_zero = true;
        return ST_OK;
    }
    /* keep the load factor under 1/2 so probes stay short */
    if ((s->n + 1) * 2 > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 1024;
        uint64_t *ns = st_calloc(nc, sizeof *ns);
        if (!ns)
            return ST_ERR_NOMEM;
        for (size_t i = 0; i < s->cap; i++)
            if (s->slots[i])
                put(ns, nc, s->slots[i]);
        st_free(s->slots);
        s->slots = ns;
        s->cap = nc;
    }
    if (!st_idset_has(s, h)) {
        put(s->slots, s->cap, h);
        s->n++;
    }
    return ST_OK;
}
