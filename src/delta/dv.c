/*
 * dv.c - deletion vectors: Z85 codec, descriptor -> file resolution
 * (storage types u, i and p), the DV file framing (version byte, big-endian
 * size, CRC-32) and the RoaringTreemap "portable" bitmap decoded with
 * libroaring.  scan.c turns the positions into a row filter.
 */
#include "delta/delta_int.h"

#include <roaring/roaring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char g_z85[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

bool st_delta_z85_decode(const char *in, size_t len, unsigned char *out)
{
    static signed char rev[256];
    static bool init;
    if (!init) {
        memset(rev, -1, sizeof rev);
        for (int i = 0; i < 85; i++)
            rev[(unsigned char)g_z85[i]] = (signed char)i;
        init = true;
    }
    if (len % 5)
        return false;
    for (size_t i = 0, o = 0; i < len; i += 5, o += 4) {
        uint64_t v = 0;
        for (int k = 0; k < 5; k++) {
            int d = rev[(unsigned char)in[i + (size_t)k]];
            if (d < 0)
                return false;
            v = v * 85 + (uint64_t)d;
        }
        if (v > 0xffffffffULL)
            return false;
        out[o] = (unsigned char)(v >> 24);
        out[o + 1] = (unsigned char)(v >> 16);
        out[o + 2] = (unsigned char)(v >> 8);
        out[o + 3] = (unsigned char)v;
    }
    return true;
}

void st_delta_z85_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i + 4 <= n; i += 4) {
        uint32_t v = (uint32_t)in[i] << 24 | (uint32_t)in[i + 1] << 16 | (uint32_t)in[i + 2] << 8 |
                     in[i + 3];
        char buf[5];
        for (int k = 4; k >= 0; k--) {
            buf[k] = g_z85[v % 85];
            v /= 85;
        }
        memcpy(out + o, buf, 5);
        o += 5;
    }
    out[o] = '\0';
}

char *st_delta_dv_unique_id(const st_delta_dv *dv)
{
    if (!dv || !dv->path_or_inline)
        return st_strdup("");
    if (dv->offset >= 0)
        return st_sprintf("%c%s@%d", dv->storage_type, dv->path_or_inline, (int)dv->offset);
    return st_sprintf("%c%s", dv->storage_type, dv->path_or_inline);
}

static uint32_t crc32_ieee(const unsigned char *p, size_t n)
{
    static uint32_t table[256];
    static bool init;
    if (!init) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        init = true;
    }
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++)
        c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static uint32_t rd_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t rd_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

typedef struct pos_acc {
    uint64_t *v;
    size_t n, cap;
    uint64_t high;
    bool oom;
} pos_acc;

static bool acc_add(uint32_t value, void *arg)
{
    pos_acc *a = arg;
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 64;
        uint64_t *nv = st_realloc(a->v, nc * sizeof *nv);
        if (!nv) {
            a->oom = true;
            return false;
        }
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n++] = a->high << 32 | value;
    return true;
}

st_rc st_delta_dv_parse_bitmap(const unsigned char *data, size_t len, uint64_t **out,
                               size_t *n_out, st_err *err)
{
    if (len < 12)
        return st_fail(err, ST_ERR_CORRUPT, "deletion vector: %zu bytes is too short", len);
    uint32_t magic = rd_le32(data);
    if (magic != 1681511377u)
        return st_fail(err, ST_ERR_UNSUPPORTED,
                       "deletion vector: unsupported bitmap format (magic %u, expected 1681511377)",
                       magic);
    uint64_t n_buckets = (uint64_t)rd_le32(data + 4) | (uint64_t)rd_le32(data + 8) << 32;
    size_t pos = 12;
    pos_acc acc = {0};
    int64_t last_key = -1;
    for (uint64_t b = 0; b < n_buckets; b++) {
        if (len - pos < 4) {
            st_free(acc.v);
            return st_fail(err, ST_ERR_CORRUPT, "deletion vector: truncated at bucket %llu",
                           (unsigned long long)b);
        }
        uint32_t key = rd_le32(data + pos);
        pos += 4;
        if ((int64_t)key <= last_key) {
            st_free(acc.v);
            return st_fail(err, ST_ERR_CORRUPT, "deletion vector: bucket keys not ascending");
        }
        last_key = key;
        roaring_bitmap_t *bm =
            roaring_bitmap_portable_deserialize_safe((const char *)data + pos, len - pos);
        if (!bm) {
            st_free(acc.v);
            return st_fail(err, ST_ERR_CORRUPT, "deletion vector: bad roaring bitmap in bucket %llu",
                           (unsigned long long)b);
        }
        size_t used = roaring_bitmap_portable_size_in_bytes(bm);
        acc.high = key;
        roaring_iterate(bm, acc_add, &acc);
        roaring_bitmap_free(bm);
        if (acc.oom) {
            st_free(acc.v);
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        }
        if (used > len - pos) {
            st_free(acc.v);
            return st_fail(err, ST_ERR_CORRUPT, "deletion vector: bitmap overruns the data");
        }
        pos += used;
    }
    *out = acc.v ? acc.v : st_malloc(sizeof(uint64_t));
    *n_out = acc.n;
    return ST_OK;
}

/* Filesystem path of an on-disk DV (u or p), OWNED. */
char *st_delta_dv_file_path(const char *table_path, const st_delta_dv *dv, st_err *err)
{
    if (dv->storage_type == 'p') {
        char *p = st_delta_abs_path(table_path, dv->path_or_inline);
        if (!p)
            st_fail(err, ST_ERR_NOMEM, "out of memory");
        return p;
    }
    size_t n = strlen(dv->path_or_inline);
    if (n < 20) {
        st_fail(err, ST_ERR_CORRUPT, "deletion vector: bad 'u' path \"%s\"", dv->path_or_inline);
        return NULL;
    }
    unsigned char u[16];
    if (!st_delta_z85_decode(dv->path_or_inline + n - 20, 20, u)) {
        st_fail(err, ST_ERR_CORRUPT, "deletion vector: \"%s\" is not Z85", dv->path_or_inline);
        return NULL;
    }
    char *prefix = st_strndup(dv->path_or_inline, n - 20);
    char *p = st_sprintf("%s/%s%sdeletion_vector_%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                         "%02x%02x%02x%02x%02x%02x.bin",
                         table_path, prefix ? prefix : "", prefix && prefix[0] ? "/" : "", u[0],
                         u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
                         u[13], u[14], u[15]);
    st_free(prefix);
    if (!p)
        st_fail(err, ST_ERR_NOMEM, "out of memory");
    return p;
}

st_rc st_delta_dv_load(const char *table_path, const st_delta_dv *dv, uint64_t **out,
                       size_t *n_out, st_err *err)
{
    st_rc rc;
    if (dv->storage_type == 'i') {
        size_t n = strlen(dv->path_or_inline);
        size_t padded = (n + 4) / 5 * 5;
        char *in = st_malloc(padded + 1);
        unsigned char *bytes = st_malloc(padded / 5 * 4 + 1);
        if (!in || !bytes) {
            st_free(in);
            st_free(bytes);
            return st_fail(err, ST_ERR_NOMEM, "out of memory");
        }
        memcpy(in, dv->path_or_inline, n);
        /* tolerate a tail that is not a multiple of 5 by padding with the zero digit */
        memset(in + n, '0', padded - n);
        if (!st_delta_z85_decode(in, padded, bytes)) {
            rc = st_fail(err, ST_ERR_CORRUPT, "inline deletion vector is not valid Z85");
        } else if (dv->size_in_bytes < 0 || (size_t)dv->size_in_bytes > padded / 5 * 4) {
            rc = st_fail(err, ST_ERR_CORRUPT, "inline deletion vector: sizeInBytes %d exceeds data",
                         (int)dv->size_in_bytes);
        } else {
            rc = st_delta_dv_parse_bitmap(bytes, (size_t)dv->size_in_bytes, out, n_out, err);
        }
        st_free(in);
        st_free(bytes);
        if (rc == ST_OK && dv->cardinality >= 0 && (int64_t)*n_out != dv->cardinality) {
            st_free(*out);
            rc = st_fail(err, ST_ERR_CORRUPT,
                         "inline deletion vector holds %zu rows but cardinality is %lld", *n_out,
                         (long long)dv->cardinality);
        }
        return rc;
    }
    if (dv->storage_type != 'u' && dv->storage_type != 'p')
        return st_fail(err, ST_ERR_UNSUPPORTED, "deletion vector storage type '%c'",
                       dv->storage_type);
    char *path = st_delta_dv_file_path(table_path, dv, err);
    if (!path)
        return err ? err->code : ST_ERR_CORRUPT;
    unsigned char *data = NULL, *buf = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        rc = st_fail_errno(err, ST_ERR_NOTFOUND, "deletion vector file %s", path);
        goto done;
    }
    unsigned char head[4];
    if (fread(head, 1, 1, fp) != 1 || head[0] != 1) {
        rc = st_fail(err, ST_ERR_CORRUPT, "deletion vector file %s: bad format version", path);
        goto done;
    }
    long off = dv->offset >= 0 ? dv->offset : 1;
    if (fseek(fp, off, SEEK_SET) != 0 || fread(head, 1, 4, fp) != 4) {
        rc = st_fail(err, ST_ERR_CORRUPT, "deletion vector file %s: cannot read at offset %ld",
                     path, off);
        goto done;
    }
    uint32_t size = rd_be32(head);
    if (dv->size_in_bytes >= 0 && size != (uint32_t)dv->size_in_bytes) {
        rc = st_fail(err, ST_ERR_CORRUPT,
                     "deletion vector file %s: size %u at offset %ld, the log says %d", path, size,
                     off, (int)dv->size_in_bytes);
        goto done;
    }
    if (size > (1u << 30)) {
        rc = st_fail(err, ST_ERR_LIMIT, "deletion vector file %s: %u bytes is too large", path, size);
        goto done;
    }
    buf = st_malloc((size_t)size + 4);
    if (!buf) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (fread(buf, 1, (size_t)size + 4, fp) != (size_t)size + 4) {
        rc = st_fail(err, ST_ERR_CORRUPT, "deletion vector file %s: truncated", path);
        goto done;
    }
    uint32_t want = rd_be32(buf + size);
    uint32_t got = crc32_ieee(buf, size);
    if (want != got) {
        rc = st_fail(err, ST_ERR_CORRUPT, "deletion vector file %s: checksum mismatch at offset %ld",
                     path, off);
        goto done;
    }
    rc = st_delta_dv_parse_bitmap(buf, size, out, n_out, err);
    if (rc) {
        st_err_ctx(err, "deletion vector file %s", path);
        goto done;
    }
    if (dv->cardinality >= 0 && (int64_t)*n_out != dv->cardinality) {
        st_free(*out);
        rc = st_fail(err, ST_ERR_CORRUPT,
                     "deletion vector file %s holds %zu rows but cardinality is %lld", path,
                     *n_out, (long long)dv->cardinality);
    }
done:
    if (fp)
        fclose(fp);
    st_free(data);
    st_free(buf);
    st_free(path);
    return rc;
}
