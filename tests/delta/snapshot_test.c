/*
 * snapshot_test.c - the reading side's protocol rules on hand-built tables:
 * action reconciliation, path decoding, partition values, deletion
 * vectors, checkpoint vs JSON replay, time travel, protocol checks and
 * file pruning.
 */
#include "testutil.h"
#include "canon.h"
#include "delta/delta_int.h"

#include <roaring/roaring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROTO "{\"protocol\":{\"minReaderVersion\":1,\"minWriterVersion\":2}}\n"
#define META(schema, parts, cfg)                                                                   \
    "{\"metaData\":{\"id\":\"t1\",\"format\":{\"provider\":\"parquet\",\"options\":{}},"             \
    "\"schemaString\":\"" schema "\",\"partitionColumns\":" parts ",\"configuration\":" cfg "}}\n"
#define SCHEMA_ID_NAME                                                                             \
    "{\\\"type\\\":\\\"struct\\\",\\\"fields\\\":[{\\\"name\\\":\\\"id\\\",\\\"type\\\":\\\"long\\\"," \
    "\\\"nullable\\\":true,\\\"metadata\\\":{}}]}"

static void put(const char *dir, const char *name, const char *text)
{
    char *p = st_sprintf("%s/%s", dir, name);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    TU_OK(st_mkdirs(p, &tu_err));
    *slash = '/';
    TU_OK(st_file_write_atomic(p, text, strlen(text), &tu_err));
    st_free(p);
}

static void commit(const char *dir, int64_t v, const char *text)
{
    char name[64];
    snprintf(name, sizeof name, "_delta_log/%020lld.json", (long long)v);
    put(dir, name, text);
}

/* Writes a Parquet file of ids [lo, hi) to dir/name. */
static void ids_file(st_engine *e, const char *dir, const char *name, int lo, int hi)
{
    char *p = st_sprintf("%s/%s", dir, name);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    TU_OK(st_mkdirs(p, &tu_err));
    *slash = '/';
    TU_OK(st_engine_execf(e, &tu_err, "COPY (SELECT range AS id FROM range(%d, %d)) TO '%s' (FORMAT parquet)",
                          lo, hi, p));
    st_free(p);
}

static int64_t count_rows(st_engine *e, const st_delta_snapshot *s, const char *pred)
{
    char *sql = NULL;
    TU_OK(st_delta_scan_sql(e, s, pred, &sql, &tu_err));
    char *q = st_sprintf("SELECT count(*) FROM (%s)", sql);
    int64_t n = -1;
    TU_OK(st_engine_query_i64(e, q, &n, &tu_err));
    st_free(q);
    st_free(sql);
    return n;
}

static void test_url_paths(void **state)
{
    (void)state;
    char *d = st_delta_url_decode_path("letter=%252F%252520%2525f/part-0.parquet");
    assert_string_equal(d, "letter=%2F%2520%25f/part-0.parquet");
    st_free(d);
    d = st_delta_url_decode_path("a%20b%3Ac%");
    assert_string_equal(d, "a b:c%");
    char *e = st_delta_url_encode_path("x=a b%/p.parquet");
    assert_string_equal(e, "x=a%20b%25/p.parquet");
    char *back = st_delta_url_decode_path(e);
    assert_string_equal(back, "x=a b%/p.parquet");
    st_free(d);
    st_free(e);
    st_free(back);
    char *abs = st_delta_abs_path("/t", "file:///data/x.parquet");
    assert_string_equal(abs, "/data/x.parquet");
    st_free(abs);
    abs = st_delta_abs_path("/t", "dir%20a/x.parquet");
    assert_string_equal(abs, "/t/dir a/x.parquet");
    st_free(abs);
}

static void test_replay_rules(void **state)
{
    (void)state;
    char *dir = tu_tempdir("replay");
    st_engine *e = tu_engine();
    ids_file(e, dir, "b.parquet", 0, 10);
    ids_file(e, dir, "a%b.parquet", 10, 15);
    ids_file(e, dir, "c.parquet", 15, 17);
    commit(dir, 0, PROTO META(SCHEMA_ID_NAME, "[]", "{}")
           "{\"add\":{\"path\":\"b.parquet\",\"partitionValues\":{},\"size\":1,\"modificationTime\":1,\"dataChange\":true}}\n"
           "{\"txn\":{\"appId\":\"app\",\"version\":3}}\n"
           "{\"domainMetadata\":{\"domain\":\"d1\",\"configuration\":\"{}\",\"removed\":false}}\n"
           "{\"commitInfo\":{\"timestamp\":1000,\"operation\":\"WRITE\"}}\n");
    commit(dir, 1, "{\"add\":{\"path\":\"a%25b.parquet\",\"partitionValues\":{},\"size\":1,\"modificationTime\":1,\"dataChange\":true,\"stats\":\"{\\\"numRecords\\\":5}\"}}\n"
                   "{\"add\":{\"path\":\"c.parquet\",\"partitionValues\":{},\"size\":1,\"modificationTime\":1,\"dataChange\":true}}\n"
                   "{\"txn\":{\"appId\":\"app\",\"version\":5}}\n"
                   "{\"unknownAction\":{\"x\":1}}\n");
    commit(dir, 2, "{\"remove\":{\"path\":\"c.parquet\",\"deletionTimestamp\":5,\"dataChange\":true,\"size\":1}}\n"
                   "{\"txn\":{\"appId\":\"app2\",\"version\":1}}\n"
                   "{\"domainMetadata\":{\"domain\":\"d1\",\"configuration\":\"\",\"removed\":true}}\n"
                   META(SCHEMA_ID_NAME, "[]", "{\"k\":\"v2\"}"));
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(e, dir, -1, &s, &tu_err));
    assert_int_equal(s->version, 2);
    assert_int_equal(s->n_files, 2);
    /* sorted by path; the live key is the decoded path */
    assert_string_equal(s->files[0]->path, "a%25b.parquet");
    assert_true(strstr(s->files[0]->abs_path, "/a%b.parquet") != NULL);
    assert_int_equal(s->files[0]->num_records, 5);
    assert_string_equal(s->files[1]->path, "b.parquet");
    assert_int_equal(s->n_tombstones, 1);
    assert_string_equal(s->tombstones[0]->path, "c.parquet");
    assert_int_equal(s->n_txns, 2);
    assert_string_equal(s->txns[0].app_id, "app");
    assert_int_equal(s->txns[0].version, 5);
    assert_int_equal(s->n_domains, 0);
    assert_string_equal(st_delta_config(s, "k", "none"), "v2");
    assert_string_equal(st_delta_config(s, "missing", "def"), "def");
    assert_int_equal(count_rows(e, s, NULL), 15);
    st_delta_snapshot_free(s);
    /* version 1 still has c.parquet and the domain */
    TU_OK(st_delta_snapshot_load(e, dir, 1, &s, &tu_err));
    assert_int_equal(s->n_files, 3);
    assert_int_equal(s->n_domains, 1);
    assert_int_equal(count_rows(e, s, NULL), 17);
    st_delta_snapshot_free(s);
    /* re-adding a removed file makes it live again */
    commit(dir, 3, "{\"add\":{\"path\":\"c.parquet\",\"partitionValues\":{},\"size\":1,\"modificationTime\":2,\"dataChange\":true}}\n");
    TU_OK(st_delta_snapshot_load(e, dir, -1, &s, &tu_err));
    assert_int_equal(s->n_files, 3);
    assert_int_equal(s->n_tombstones, 0);
    st_delta_snapshot_free(s);
    int64_t latest;
    TU_OK(st_delta_latest_version(dir, &latest, &tu_err));
    assert_int_equal(latest, 3);
    TU_OK(st_delta_latest_version("/nonexistent/table", &latest, &tu_err));
    assert_int_equal(latest, -1);
    st_engine_close(e);
    tu_rmdir(dir);
}

static void test_partition_values(void **state)
{
    (void)state;
    st_engine *e = tu_engine();
    struct {
        const char *ddl;
        const char *value;
        const char *want;   /* DuckDB text of the literal, NULL = SQL NULL */
    } cases[] = {
        {"x date", "2021-02-03", "2021-02-03"},
        {"x timestamp", "2021-09-08 11:11:11", "2021-09-08 11:11:11+00"},
        {"x timestamp", "2021-09-08T11:11:11.5Z", "2021-09-08 11:11:11.5+00"},
        {"x timestamp_ntz", "2021-11-18 02:30:00.123456", "2021-11-18 02:30:00.123456"},
        {"x decimal(5,2)", "-12.3", "-12.30"},
        {"x boolean", "true", "true"},
        {"x binary", "hi", "hi"},
        {"x long", "", NULL},
        {"x string", NULL, NULL},
        {"x integer", "-7", "-7"},
        {"x double", "1.5", "1.5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        st_delta_schema *sc = NULL;
        TU_OK(st_delta_schema_from_ddl(cases[i].ddl, &sc, &tu_err));
        st_buf b;
        st_buf_init(&b, 0);
        TU_OK(st_delta_part_literal(&sc->fields[0].type, cases[i].value, &b, &tu_err));
        char *q = st_sprintf("SELECT CAST(%s AS VARCHAR)", b.data);
        char *got = NULL;
        TU_OK(st_engine_query_str(e, q, &got, &tu_err));
        if (cases[i].want)
            assert_non_null(got);
        if (cases[i].want)
            assert_string_equal(got, cases[i].want);
        else
            assert_null(got);
        st_free(got);
        st_free(q);
        st_buf_free(&b);
        st_delta_schema_free(sc);
    }
    /* malformed values fail with the value named */
    st_delta_schema *sc = NULL;
    TU_OK(st_delta_schema_from_ddl("x integer", &sc, &tu_err));
    st_buf b;
    st_buf_init(&b, 0);
    st_err err;
    assert_int_equal(st_delta_part_literal(&sc->fields[0].type, "12abc", &b, &err), ST_ERR_PARSE);
    assert_non_null(strstr(err.msg, "12abc"));
    st_buf_free(&b);
    st_delta_schema_free(sc);
    st_engine_close(e);
}

/* Serializes positions as magic + RoaringTreemap (one bucket). */
static size_t dv_blob(const uint32_t *pos, size_t n, unsigned char *out)
{
    roaring_bitmap_t *bm = roaring_bitmap_of_ptr(n, pos);
    uint32_t magic = 1681511377u;
    memcpy(out, &magic, 4);
    uint64_t buckets = 1;
    memcpy(out + 4, &buckets, 8);
    uint32_t key = 0;
    memcpy(out + 12, &key, 4);
    size_t sz = roaring_bitmap_portable_serialize(bm, (char *)out + 16);
    roaring_bitmap_free(bm);
    return 16 + sz;
}

static void be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t crc32_ref(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xffffffffu;
}

static void test_deletion_vectors(void **state)
{
    (void)state;
    /* Z85 round trip with the spec's example bytes */
    unsigned char raw[8] = {0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B};
    char z[11];
    st_delta_z85_encode(raw, 8, z);
    assert_string_equal(z, "HelloWorld");
    unsigned char back[8];
    assert_true(st_delta_z85_decode(z, 10, back));
    assert_memory_equal(raw, back, 8);
    assert_false(st_delta_z85_decode("Hell\"", 5, back));

    char *dir = tu_tempdir("dv");
    st_engine *e = tu_engine();
    ids_file(e, dir, "f1.parquet", 0, 10);
    ids_file(e, dir, "f2.parquet", 100, 110);
    /* on-disk DV for f1 (rows 0 and 9) named by a Z85 UUID with prefix "ab" */
    unsigned char uuid[16];
    for (int i = 0; i < 16; i++)
        uuid[i] = (unsigned char)(i * 17);
    char zu[21];
    st_delta_z85_encode(uuid, 16, zu);
    uint32_t del1[] = {0, 9};
    unsigned char blob[256];
    size_t bl = dv_blob(del1, 2, blob);
    unsigned char file[512];
    file[0] = 1;
    be32(file + 1, (uint32_t)bl);
    memcpy(file + 5, blob, bl);
    be32(file + 5 + bl, crc32_ref(blob, bl));
    char *dvdir = st_sprintf("%s/ab", dir);
    TU_OK(st_mkdirs(dvdir, &tu_err));
    char *dvpath = st_sprintf("%s/deletion_vector_00112233-4455-6677-8899-aabbccddeeff.bin", dvdir);
    TU_OK(st_file_write_atomic(dvpath, file, 9 + bl, &tu_err));
    /* inline DV for f2 (rows 1, 2, 3) */
    uint32_t del2[] = {1, 2, 3};
    size_t il = dv_blob(del2, 3, blob);
    size_t padded = (il + 3) / 4 * 4;
    memset(blob + il, 0, padded - il);
    char zi[400];
    st_delta_z85_encode(blob, padded, zi);
    char *c0 = st_sprintf(
        "{\"protocol\":{\"minReaderVersion\":3,\"minWriterVersion\":7,\"readerFeatures\":[\"deletionVectors\"],\"writerFeatures\":[\"deletionVectors\"]}}\n"
        META(SCHEMA_ID_NAME, "[]", "{}")
        "{\"add\":{\"path\":\"f1.parquet\",\"partitionValues\":{},\"size\":1,\"modificationTime\":1,\"dataChange\":true,"
        "\"deletionVector\":{\"storageType\":\"u\",\"pathOrInlineDv\":\"ab%s\",\"offset\":1,\"sizeInBytes\":%zu,\"cardinality\":2}}}\n"
        "{\"add\":{\"path\":\"f2.parquet\",\"partitionValues\":{},\"size\":1,\"modificationTime\":1,\"dataChange\":true,"
        "\"deletionVector\":{\"storageType\":\"i\",\"pathOrInlineDv\":\"%s\",\"sizeInBytes\":%zu,\"cardinality\":3}}}\n",
        zu, bl, zi, il);
    commit(dir, 0, c0);
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(e, dir, -1, &s, &tu_err));
    assert_int_equal(s->n_files, 2);
    uint64_t *pos = NULL;
    size_t n = 0;
    TU_OK(st_delta_dv_load(dir, &s->files[0]->dv, &pos, &n, &tu_err));
    assert_int_equal(n, 2);
    assert_int_equal(pos[0], 0);
    assert_int_equal(pos[1], 9);
    st_free(pos);
    char *sql = NULL;
    TU_OK(st_delta_scan_sql(e, s, NULL, &sql, &tu_err));
    char *q = st_sprintf("SELECT string_agg(id::VARCHAR, ',' ORDER BY id) FROM (%s)", sql);
    char *ids = NULL;
    TU_OK(st_engine_query_str(e, q, &ids, &tu_err));
    assert_string_equal(ids, "1,2,3,4,5,6,7,8,100,104,105,106,107,108,109");
    st_free(ids);
    st_free(q);
    st_free(sql);
    st_delta_snapshot_free(s);
    /* a corrupted checksum is reported with the DV file named */
    file[5 + bl] ^= 0xff;
    TU_OK(st_file_write_atomic(dvpath, file, 9 + bl, &tu_err));
    TU_OK(st_delta_snapshot_load(e, dir, -1, &s, &tu_err));
    st_err err;
    assert_int_not_equal(st_delta_scan_sql(e, s, NULL, &sql, &err), ST_OK);
    assert_non_null(strstr(err.msg, "deletion_vector_00112233"));
    st_delta_snapshot_free(s);
    st_free(c0);
    st_free(dvpath);
    st_free(dvdir);
    st_engine_close(e);
    tu_rmdir(dir);
}

/* Copies a golden table, loads it with and without its checkpoints and
 * compares the live files. */
static void test_checkpoint_equals_json(void **state)
{
    (void)state;
    const char *shared = tu_shared_dir();
    char *src = shared ? st_sprintf("%s/delta-golden/tables/golden__basic-with-inserts-deletes-checkpoint", shared) : NULL;
    if (!src || !st_is_dir(src)) {
        printf("SKIP: golden corpus absent, checkpoint vs JSON replay not compared\n");
        st_free(src);
        skip();
    }
    char *dir = tu_tempdir("ckpt");
    assert_int_equal(tu_run(NULL, "cp -r '%s/.' '%s/'", src, dir), 0);
    st_engine *e = tu_engine();
    st_delta_snapshot *a = NULL, *b = NULL;
    TU_OK(st_delta_snapshot_load(e, dir, -1, &a, &tu_err));
    assert_int_equal(a->checkpoint_version, 10);
    assert_int_equal(tu_run(NULL, "rm -f '%s'/_delta_log/*.checkpoint.parquet '%s'/_delta_log/_last_checkpoint", dir, dir), 0);
    TU_OK(st_delta_snapshot_load(e, dir, -1, &b, &tu_err));
    assert_int_equal(b->checkpoint_version, -1);
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->n_files, b->n_files);
    for (size_t i = 0; i < a->n_files; i++) {
        assert_string_equal(a->files[i]->path, b->files[i]->path);
        assert_int_equal(a->files[i]->size, b->files[i]->size);
        assert_int_equal(a->files[i]->num_records, b->files[i]->num_records);
    }
    assert_string_equal(a->metadata.schema_string, b->metadata.schema_string);
    assert_int_equal(a->protocol.min_reader, b->protocol.min_reader);
    st_delta_snapshot_free(a);
    st_delta_snapshot_free(b);
    st_engine_close(e);
    tu_rmdir(dir);
    st_free(src);
}

static void test_time_travel_by_timestamp(void **state)
{
    (void)state;
    char *dir = tu_tempdir("tt");
    st_engine *e = tu_engine();
    ids_file(e, dir, "a.parquet", 0, 1);
    commit(dir, 0, "{\"commitInfo\":{\"timestamp\":1000}}\n" PROTO META(SCHEMA_ID_NAME, "[]", "{}"));
    commit(dir, 1, "{\"commitInfo\":{\"timestamp\":2000}}\n"
                   "{\"add\":{\"path\":\"a.parquet\",\"partitionValues\":{},\"size\":1,\"modificationTime\":1,\"dataChange\":true}}\n");
    /* inCommitTimestamp wins over timestamp */
    commit(dir, 2, "{\"commitInfo\":{\"timestamp\":9999,\"inCommitTimestamp\":3000}}\n");
    int64_t ts;
    TU_OK(st_delta_commit_timestamp(dir, 2, &ts, &tu_err));
    assert_int_equal(ts, 3000);
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_at_time(e, dir, 2500, &s, &tu_err));
    assert_int_equal(s->version, 1);
    assert_int_equal(s->timestamp_ms, 2000);
    st_delta_snapshot_free(s);
    TU_OK(st_delta_snapshot_at_time(e, dir, 3000, &s, &tu_err));
    assert_int_equal(s->version, 2);
    st_delta_snapshot_free(s);
    TU_OK(st_delta_snapshot_at_time(e, dir, 1000, &s, &tu_err));
    assert_int_equal(s->version, 0);
    st_delta_snapshot_free(s);
    st_err err;
    assert_int_equal(st_delta_snapshot_at_time(e, dir, 999, &s, &err), ST_ERR_NOTFOUND);
    assert_int_equal(st_delta_snapshot_load(e, dir, 7, &s, &err), ST_ERR_NOTFOUND);
    st_engine_close(e);
    tu_rmdir(dir);
}

static void test_protocol_checks(void **state)
{
    (void)state;
    char *dir = tu_tempdir("proto");
    st_engine *e = tu_engine();
    commit(dir, 0, "{\"protocol\":{\"minReaderVersion\":3,\"minWriterVersion\":7,\"readerFeatures\":[\"deletionVectors\",\"blahabl\"],\"writerFeatures\":[\"blahabl\"]}}\n"
                   META(SCHEMA_ID_NAME, "[]", "{}"));
    st_delta_snapshot *s = NULL;
    st_err err;
    assert_int_equal(st_delta_snapshot_load(e, dir, -1, &s, &err), ST_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "blahabl"));
    assert_non_null(strstr(err.msg, dir));
    commit(dir, 1, "{\"protocol\":{\"minReaderVersion\":4,\"minWriterVersion\":7}}\n");
    assert_int_equal(st_delta_snapshot_load(e, dir, -1, &s, &err), ST_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "reader version 4"));
    commit(dir, 2, "{\"protocol\":{\"minReaderVersion\":3,\"minWriterVersion\":7,\"readerFeatures\":[\"columnMapping\",\"timestampNtz\",\"v2Checkpoint\",\"deletionVectors\",\"vacuumProtocolCheck\"],\"writerFeatures\":[]}}\n");
    TU_OK(st_delta_snapshot_load(e, dir, -1, &s, &tu_err));
    assert_true(st_delta_has_feature(&s->protocol, "timestampNtz"));
    st_delta_snapshot_free(s);
    st_engine_close(e);
    tu_rmdir(dir);
}

#define SCHEMA_PART                                                                                \
    "{\\\"type\\\":\\\"struct\\\",\\\"fields\\\":[{\\\"name\\\":\\\"id\\\",\\\"type\\\":\\\"long\\\"," \
    "\\\"nullable\\\":true,\\\"metadata\\\":{}},{\\\"name\\\":\\\"d\\\",\\\"type\\\":\\\"date\\\","     \
    "\\\"nullable\\\":true,\\\"metadata\\\":{}}]}"

static void test_prune(void **state)
{
    (void)state;
    char *dir = tu_tempdir("prune");
    st_engine *e = tu_engine();
    ids_file(e, dir, "d=2021-01-01/a.parquet", 0, 10);
    ids_file(e, dir, "d=2021-01-02/b.parquet", 10, 20);
    ids_file(e, dir, "d=__HIVE_DEFAULT_PARTITION__/c.parquet", 20, 30);
#define ADD(p, d, lo, hi)                                                                          \
    "{\"add\":{\"path\":\"" p "\",\"partitionValues\":{\"d\":" d "},\"size\":1,\"modificationTime\":1,"  \
    "\"dataChange\":true,\"stats\":\"{\\\"numRecords\\\":10,\\\"minValues\\\":{\\\"id\\\":" lo        \
    "},\\\"maxValues\\\":{\\\"id\\\":" hi "},\\\"nullCount\\\":{\\\"id\\\":0}}\"}}\n"
    commit(dir, 0, PROTO META(SCHEMA_PART, "[\"d\"]", "{}")
           ADD("d=2021-01-01/a.parquet", "\"2021-01-01\"", "0", "9")
           ADD("d=2021-01-02/b.parquet", "\"2021-01-02\"", "10", "19")
           ADD("d=__HIVE_DEFAULT_PARTITION__/c.parquet", "null", "20", "29"));
    st_delta_snapshot *s = NULL;
    TU_OK(st_delta_snapshot_load(e, dir, -1, &s, &tu_err));
    struct {
        const char *pred;
        size_t want;
    } cases[] = {
        {NULL, 3},
        {"d = '2021-01-01'", 1},
        {"d = DATE '2021-01-02' AND id > 12", 1},
        {"d IS NULL", 1},
        {"d IS NOT NULL", 2},
        {"id >= 10 AND id < 20", 1},
        {"id = 5 OR id = 25", 3},          /* OR is not understood: no pruning */
        {"id IN (5, 25)", 2},
        {"id > 29", 0},
        {"29 < id", 0},
        {"id IS NULL", 0},
        {"lower(x) = 'a'", 3},             /* not understood: may match */
        {"(d > '2021-01-01') AND (id <= 19)", 1},
        {"d != '2021-01-01'", 1},
        {"id = 9.5", 0},
        {"id = 9.0", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        st_delta_file **files = NULL;
        size_t n = 0;
        TU_OK(st_delta_prune(s, cases[i].pred, &files, &n, &tu_err));
        if (n != cases[i].want)
            fail_msg("prune(%s): %zu files, expected %zu", cases[i].pred ? cases[i].pred : "NULL", n,
                     cases[i].want);
        st_free(files);
    }
    /* the predicate is also applied to rows */
    assert_int_equal(count_rows(e, s, "d = DATE '2021-01-02' AND id > 12"), 7);
    assert_int_equal(count_rows(e, s, "d IS NULL"), 10);
    assert_int_equal(count_rows(e, s, "id > 100"), 0);
    st_delta_snapshot_free(s);
    st_engine_close(e);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_paths),
        cmocka_unit_test(test_replay_rules),
        cmocka_unit_test(test_partition_values),
        cmocka_unit_test(test_deletion_vectors),
        cmocka_unit_test(test_checkpoint_equals_json),
        cmocka_unit_test(test_time_travel_by_timestamp),
        cmocka_unit_test(test_protocol_checks),
        cmocka_unit_test(test_prune),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
