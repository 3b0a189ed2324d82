/*
 * dv_write.c - writing deletion vectors: merges new deleted row positions
 * with a file's existing deletion vector (decoded by dv.c) and writes a
 * `deletion_vector_<uuid>.bin` file in the format of the Delta protocol:
 * version byte 1, then big-endian u32 size, the data (little-endian magic
 * 1681511377 + a RoaringTreemap in portable form: u64 bucket count, then per
 * bucket the u32 high key and a 32-bit roaring bitmap), big-endian CRC-32.
 * The descriptor uses storage type 'u' (Z85 of the UUID), offset 1.
 * Row-level changes (silver's merge, erasure) use it with st_delta_txn.
 */
#include "delta/write_int.h"

#include <roaring/roaring.h>
#include <stdlib.h>
#include <string.h>

#define DV_MAGIC 1681511377u

void st_delta_dv_clear(st_delta_dv *dv)
{
    if (!dv)
        return;
    st_free(dv->path_or_inline);
    memset(dv, 0, sizeof *dv);
    dv->offset = -1;
    dv->max_row_index = -1;
}

static uint32_t crc32_zlib(const unsigned char *p, size_t n)
{
    static uint32_t table[256];
    static bool init;
    if (!init) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        init = true;
    }
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Serializes sorted unique positions as magic + RoaringTreemap.  OWNED *out. */
static st_rc serialize(const uint64_t *pos, size_t n, unsigned char **out, size_t *out_len,
                       st_err *err)
{
    size_t n_buckets = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || (pos[i] >> 32) != (pos[i - 1] >> 32))
            n_buckets++;
    roaring_bitmap_t **bms = st_calloc(n_buckets ? n_buckets : 1, sizeof *bms);
    uint32_t *highs = st_calloc(n_buckets ? n_buckets : 1, sizeof *highs);
    uint32_t *lows = st_calloc(n ? n : 1, sizeof *lows);
    unsigned char *buf = NULL;
    st_rc rc = ST_OK;
    if (!bms || !highs || !lows) {
        rc = st_fail(err, ST_ERR_NOMEM, "deletion vector of %zu rows", n);
        goto done;
    }
    size_t total = 4 + 8;
    for (size_t i = 0, b = 0; i < n; b++) {
        size_t j = i;
        while (j < n && (pos[j] >> 32) == (pos[i] >> 32)) {
            lows[j - i] = (uint32_t)pos[j];
            j++;
        }
        highs[b] = (uint32_t)(pos[i] >> 32);
        bms[b] = roaring_bitmap_create();
        if (!bms[b]) {
            rc = st_fail(err, ST_ERR_NOMEM, "deletion vector of %zu rows", n);
            goto done;
        }
        roaring_bitmap_add_many(bms[b], j - i, lows);
        roaring_bitmap_run_optimize(bms[b]);
        total += 4 + roaring_bitmap_portable_size_in_bytes(bms[b]);
        i = j;
    }
    buf = st_malloc(total);
    if (!buf) {
        rc = st_fail(err, ST_ERR_NOMEM, "deletion vector of %zu rows", n);
        goto done;
    }
    put_le32(buf, DV_MAGIC);
    put_le32(buf + 4, (uint32_t)n_buckets);
    put_le32(buf + 8, (uint32_t)((uint64_t)n_buckets >> 32));
    size_t off = 12;
    for (size_t b = 0; b < n_buckets; b++) {
        put_le32(buf + off, highs[b]);
        off += 4;
        off += roaring_bitmap_portable_serialize(bms[b], (char *)buf + off);
    }
    *out = buf;
    *out_len = off;
    buf = NULL;
done:
    for (size_t b = 0; bms && b < n_buckets; b++)
        if (bms[b])
            roaring_bitmap_free(bms[b]);
    st_free(bms);
    st_free(highs);
    st_free(lows);
    st_free(buf);
    return rc;
}

st_rc st_delta_dv_build(const char *table_path, const uint64_t *positions, size_t n,
                        const st_delta_dv *existing, st_delta_dv *out, int64_t *out_bytes,
                        st_err *err)
{
    uint64_t *old = NULL, *all = NULL;
    size_t n_old = 0;
    unsigned char *data = NULL, *file = NULL;
    size_t data_len = 0;
    char *path = NULL, *z85 = NULL;
    st_rc rc = ST_OK;
    if (existing) {
        rc = st_delta_dv_load(table_path, existing, &old, &n_old, err);
        if (rc)
            goto done;
    }
    all = st_malloc((n + n_old + 1) * sizeof *all);
    if (!all) {
        rc = st_fail(err, ST_ERR_NOMEM, "deletion vector for %s", table_path);
        goto done;
    }
    if (n)
        memcpy(all, positions, n * sizeof *all);
    if (n_old)
        memcpy(all + n, old, n_old * sizeof *all);
    size_t m = n + n_old;
    qsort(all, m, sizeof *all, cmp_u64);
    size_t u = 0;
    for (size_t i = 0; i < m; i++)
        if (u == 0 || all[i] != all[u - 1])
            all[u++] = all[i];
    rc = serialize(all, u, &data, &data_len, err);
    if (rc)
        goto done;
    if (data_len > INT32_MAX) {
        rc = st_fail(err, ST_ERR_LIMIT, "deletion vector for %s: %zu bytes", table_path, data_len);
        goto done;
    }
    size_t file_len = 1 + 4 + data_len + 4;
    file = st_malloc(file_len);
    if (!file) {
        rc = st_fail(err, ST_ERR_NOMEM, "deletion vector for %s", table_path);
        goto done;
    }
    file[0] = 1;
    put_be32(file + 1, (uint32_t)data_len);
    memcpy(file + 5, data, data_len);
    put_be32(file + 5 + data_len, crc32_zlib(data, data_len));
    char uuid[37];
    unsigned char ub[16];
    st_uuid4(uuid);
    for (size_t i = 0, k = 0; uuid[i] && k < 16; i++) {
        if (uuid[i] == '-')
            continue;
        ub[k++] = (unsigned char)(st_hex_digit((unsigned char)uuid[i]) << 4 | st_hex_digit((unsigned char)uuid[i + 1]));
        i++;
    }
    z85 = st_malloc(21);
    path = st_sprintf("%s/deletion_vector_%s.bin", table_path, uuid);
    if (!z85 || !path) {
        rc = st_fail(err, ST_ERR_NOMEM, "deletion vector for %s", table_path);
        goto done;
    }
    st_delta_z85_encode(ub, 16, z85);
    rc = st_file_put_if_absent(path, file, file_len, err);
    if (rc) {
        st_err_ctx(err, "writing deletion vector %s", path);
        goto done;
    }
    memset(out, 0, sizeof *out);
    out->storage_type = 'u';
    out->path_or_inline = z85;
    out->offset = 1;
    out->size_in_bytes = (int32_t)data_len;
    out->cardinality = (int64_t)u;
    out->max_row_index = -1;
    z85 = NULL;
    if (out_bytes)
        *out_bytes = (int64_t)file_len;
done:
    st_free(old);
    st_free(all);
    st_free(data);
    st_free(file);
    st_free(path);
    st_free(z85);
    return rc;
}

st_rc st_delta_dv_enable(st_engine *eng, const char *table_path, st_err *err)
{
    /* the protocol upgrade itself lives in txn.c: setting the property
     * raises the protocol in the same commit as the metaData */
    st_delta_txn *t = NULL;
    st_rc rc = st_delta_txn_begin(eng, table_path, NULL, "SET TBLPROPERTIES", &t, err);
    if (rc)
        return rc;
    const st_delta_snapshot *s = st_delta_txn_snapshot(t);
    const char *cur = st_delta_config(s, "delta.enableDeletionVectors", "false");
    if (s->protocol.min_reader >= 3 && s->protocol.min_writer >= 7 &&
        st_delta_has_feature(&s->protocol, "deletionVectors") && !strcasecmp(cur, "true")) {
        st_delta_txn_abort(t);
        return ST_OK;
    }
    /* not a blind append, but no data read either: concurrent appends
     * rebase, a concurrent metadata change conflicts */
    st_deltaw_txn_set_blind(t, false);
    rc = st_delta_txn_set_property(t, "delta.enableDeletionVectors", "true", err);
    if (rc) {
        st_delta_txn_abort(t);
        return rc;
    }
    return st_delta_txn_commit(t, NULL, err);
}
