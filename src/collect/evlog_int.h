/*
 * evlog_int.h - private to evlog.c and evlog_read.c: the on-disk format.
 *
 * Segment file "<20-digit id>.seg" (active or closed) or ".seg.zst" (sealed:
 * the same bytes, zstd-compressed).  The id is the sequence number of the
 * segment's first record.  Layout:
 *   header  8 bytes "STEVLOG1", u64 id, u64 created_ms      (little-endian)
 *   frames  u32 len, u32 crc32c(len bytes ++ data), data[len]
 */
#ifndef ST_EVLOG_INT_H
#define ST_EVLOG_INT_H

#include "strata/collect.h"

#define EVLOG_MAGIC "STEVLOG1"
#define EVLOG_HEADER 24
#define EVLOG_MAX_RECORD (16u << 20)

typedef struct evlog_seg {
    uint64_t id;
    bool has_log;
    bool has_zst;
} evlog_seg;

void evlog_put_u32(unsigned char *p, uint32_t v);
uint32_t evlog_get_u32(const unsigned char *p);
uint64_t evlog_get_u64(const unsigned char *p);
uint32_t evlog_frame_crc(const unsigned char *len4, const void *data, size_t len);
char *evlog_seg_path(const char *dir, uint64_t id, bool sealed);   /* OWNED */
st_rc evlog_list(const char *dir, evlog_seg **out, size_t *out_n, st_err *err);

#endif
