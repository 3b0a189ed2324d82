/*
 * fastjson.h - private to src/load: a flat, validating JSON reader for log
 * records.  One parse fills a reusable node array (pre-order, children right
 * after their container) and one string pool, so a record costs no
 * allocation once the buffers have grown; jansson builds a tree of
 * separately allocated nodes and hash tables per record instead.
 *
 * It accepts exactly what jansson's json_loadb(flags 0) accepts, or less:
 * whatever it refuses (invalid JSON, but also valid JSON beyond its limits:
 * nesting deeper than ST_FJ_MAX_DEPTH, number literals longer than 63 bytes,
 * an object of more than ST_FJ_SMALL_OBJ members repeating a key, more than
 * 2^31 nodes) the caller parses with jansson and converts with
 * st_fj_from_jansson, which also yields jansson's error text.  Values read
 * the same either way: duplicate keys resolve to the last value (at the
 * first key's position when dumped), as jansson's json_object_set does, and
 * st_fj_dump prints what json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) prints.
 */
#ifndef ST_FASTJSON_H
#define ST_FASTJSON_H

#include "strata/core.h"

#include <jansson.h>

#define ST_FJ_MAX_DEPTH 64
#define ST_FJ_SMALL_OBJ 32

typedef enum st_fj_type {
    ST_FJ_NULL, ST_FJ_FALSE, ST_FJ_TRUE, ST_FJ_INT, ST_FJ_REAL, ST_FJ_STR, ST_FJ_ARR, ST_FJ_OBJ
} st_fj_type;

typedef struct st_fj_node {
    uint32_t key;        /* member of an object: offset of its key in the pool */
    uint32_t key_len;
    uint32_t len;        /* STR: bytes; ARR/OBJ: number of members */
    uint32_t end;        /* index just past this value's subtree */
    uint8_t type;        /* st_fj_type */
    uint8_t dups;        /* OBJ: some key appears more than once */
    union {
        int64_t i;
        double d;
        uint32_t s;      /* STR: offset in the pool (NUL-terminated there) */
    } v;
} st_fj_node;

typedef struct st_fj {
    st_fj_node *n;
    size_t n_nodes, cap_nodes;
    char *pool;          /* decoded strings and keys, each NUL-terminated */
    size_t pool_len, pool_cap;
    uint64_t *hs;        /* scratch: key hashes of a large object */
    size_t hs_cap;
} st_fj;

void st_fj_init(st_fj *d);
void st_fj_free(st_fj *d);
/* Parses one JSON text whose top level is an object or array.  true on
 * success (node 0 is the top level); false when it refuses the text (see
 * above) or runs out of memory. */
bool st_fj_parse(st_fj *d, const char *p, size_t len);
/* Fills d from a jansson value (the fallback path). */
st_rc st_fj_from_jansson(st_fj *d, json_t *v, st_err *err);

/* The value of key in object node obj (the last duplicate), -1 if none or
 * obj is not an object. */
int st_fj_get(const st_fj *d, int obj, const char *key, size_t key_len);
static inline const char *st_fj_str(const st_fj *d, int i) { return d->pool + d->n[i].v.s; }
static inline const char *st_fj_key(const st_fj *d, int i) { return d->pool + d->n[i].key; }
static inline int st_fj_type_of(const st_fj *d, int i) { return !d || i < 0 ? -1 : d->n[i].type; }
/* The first member of a container (== end when empty); the next sibling. */
static inline int st_fj_first(const st_fj *d, int i) { (void)d; return i + 1; }
static inline int st_fj_next(const st_fj *d, int i) { return (int)d->n[i].end; }
/* Iterating the members of object obj as jansson would see them: for
 * member m, -1 when an earlier member has the same key (skip it), else the
 * member holding the value that counts (the last one with m's key). */
int st_fj_member(const st_fj *d, int obj, int m);

/* Appends node i as compact JSON text, as json_dumps(JSON_COMPACT |
 * JSON_ENCODE_ANY) would. */
st_rc st_fj_dump(const st_fj *d, int i, st_buf *out);
/* Appends object obj without the members whose key is in skip. */
st_rc st_fj_dump_except(const st_fj *d, int obj, const char *const *skip, size_t n_skip,
                        st_buf *out);
/* Appends s as a JSON string literal, escaped as jansson escapes it. */
st_rc st_fj_dump_str(st_buf *out, const char *s, size_t len);

#endif
