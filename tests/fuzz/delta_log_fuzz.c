/*
 * delta_log_fuzz.c - the Delta action parser (commit files, V2 JSON
 * checkpoints) and the pieces that consume its output (schema parsing,
 * deletion-vector bitmaps, Z85, path decoding, partition literals) must
 * accept or reject any input without crashing, leaking or reading out of
 * bounds.
 */
#include "delta/delta_int.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_arena *a = st_arena_new(0);
    st_delta_commit c;
    st_err err;
    if (st_delta_log_parse_commit((const char *)data, size, "fuzz.json", "/t", a, &c, &err) == ST_OK) {
        for (size_t i = 0; i < c.n_adds; i++) {
            const st_delta_file *f = c.adds[i];
            (void)st_delta_stats_num_records(f->stats);
            char *id = st_delta_dv_unique_id(f->has_dv ? &f->dv : NULL);
            st_free(id);
            if (f->has_dv && f->dv.storage_type == 'i') {
                uint64_t *pos = NULL;
                size_t n = 0;
                if (st_delta_dv_load("/t", &f->dv, &pos, &n, &err) == ST_OK)
                    st_free(pos);
            }
        }
        if (c.metadata && c.metadata->schema) {
            char *j = st_delta_schema_to_json(c.metadata->schema);
            st_delta_schema *back = NULL;
            if (j && st_delta_schema_parse(j, &back, &err) == ST_OK)
                st_delta_schema_free(back);
            st_free(j);
            for (size_t i = 0; i < c.metadata->schema->n_fields; i++) {
                char *sql = st_delta_type_sql(&c.metadata->schema->fields[i].type);
                char *ddl = st_delta_type_ddl(&c.metadata->schema->fields[i].type);
                st_buf b;
                st_buf_init(&b, 1 << 20);
                for (size_t k = 0; c.adds && k < c.n_adds && k < 4; k++)
                    for (size_t p = 0; p < c.adds[k]->n_part; p++)
                        st_delta_part_literal(&c.metadata->schema->fields[i].type,
                                              c.adds[k]->part[p].value, &b, &err);
                st_buf_free(&b);
                st_free(sql);
                st_free(ddl);
            }
        }
    }
    st_arena_free(a);
    /* the raw bytes as a bitmap, a DDL string and a path too */
    uint64_t *pos = NULL;
    size_t n = 0;
    if (st_delta_dv_parse_bitmap(data, size, &pos, &n, &err) == ST_OK)
        st_free(pos);
    char *s = st_strndup((const char *)data, size);
    if (s) {
        st_delta_schema *sc = NULL;
        if (st_delta_schema_from_ddl(s, &sc, &err) == ST_OK)
            st_delta_schema_free(sc);
        char *d = st_delta_url_decode_path(s);
        char *e = st_delta_url_encode_path(s);
        st_free(d);
        st_free(e);
        st_free(s);
    }
    return 0;
}
