/*
 * delta_int.h - internals of the Delta module shared by the reading side
 * (schema.c, log.c, snapshot.c, checkpoint_read.c, dv.c, scan.c, changes.c)
 * and the writing side (txn.c, write.c, ...).
 *
 * Stability: additive changes only; the writing side builds on these.
 */
#ifndef ST_DELTA_INT_H
#define ST_DELTA_INT_H

#include "strata/delta.h"

#include <jansson.h>

/* ---------------------------------------------------------------- paths */

/* Percent-decodes a log path ("a%20b" -> "a b"), OWNED; NULL on a malformed
 * escape or out of memory. */
char *st_delta_url_decode_path(const char *s);
/* Percent-encodes a relative path for the log: everything but unreserved
 * characters and '/' is escaped, OWNED. */
char *st_delta_url_encode_path(const char *s);
/* Filesystem path of a log path relative to table_path (absolute file: URIs
 * and absolute paths are accepted), OWNED. */
char *st_delta_abs_path(const char *table_path, const char *log_path);

/* "<table>/_delta_log/<20-digit version>.json", OWNED. */
char *st_delta_commit_path(const char *table_path, int64_t version);

/* ---------------------------------------------------------------- types */

/* Deep copy / release of a type tree (fields, elem, value). */
st_rc st_delta_dtype_copy(const st_dtype *src, st_dtype *dst);
void st_delta_dtype_clear(st_dtype *t);
/* Type from its Delta JSON form (string or object); ST_ERR_UNSUPPORTED names
 * unknown types. */
st_rc st_delta_dtype_from_json(const json_t *j, st_dtype *out, st_err *err);
/* Spark JSON of a type ("long", {"type":"array",...}); appended to b. */
st_rc st_delta_dtype_to_json(const st_dtype *t, st_buf *b);
/* DuckDB SQL of the type as stored in Parquet with column mapping physical
 * names for nested struct fields (physical=true) or logical names. OWNED. */
char *st_delta_type_sql_ex(const st_dtype *t, bool physical);
/* Physical name of a field under column mapping mode (NULL/"none" = logical). */
const char *st_delta_field_phys(const st_dfield *f, const char *cm_mode);

/* ---------------------------------------------------------------- actions */

typedef struct st_delta_cdc {
    char *path;
    char *abs_path;
    st_kv *part;
    size_t n_part;
    int64_t size;
    bool data_change;
} st_delta_cdc;

typedef struct st_delta_sidecar {
    char *path;            /* relative to _delta_log/_sidecars/ (or absolute) */
    int64_t size;
    int64_t modification_time;
} st_delta_sidecar;

/* One parsed commit file (or the JSON of a checkpoint): every action in the
 * order of the file.  Everything lives in the arena given to the parser. */
typedef struct st_delta_commit {
    st_delta_protocol *protocol;        /* last in the file, NULL if none */
    st_delta_metadata *metadata;        /* last in the file, NULL if none */
    st_delta_file **adds;
    size_t n_adds;
    st_delta_tombstone **removes;
    size_t n_removes;
    st_delta_cdc *cdcs;
    size_t n_cdcs;
    st_delta_apptxn *txns;
    size_t n_txns;
    st_delta_domain *domains;
    size_t n_domains;
    st_delta_sidecar *sidecars;
    size_t n_sidecars;
    bool has_commit_info;
    int64_t commit_timestamp;           /* commitInfo.timestamp, -1 absent */
    int64_t in_commit_timestamp;        /* commitInfo.inCommitTimestamp, -1 absent */
    char *operation;                    /* commitInfo.operation or NULL */
    char *commit_info_json;             /* the whole commitInfo object, or NULL */
    bool has_checkpoint_metadata;
    int64_t checkpoint_metadata_version;
} st_delta_commit;

/* Parses newline-delimited actions (a commit file, a V2 JSON checkpoint or
 * the rows of a Parquet checkpoint rendered as JSON).  table_path (may be
 * NULL) resolves abs_path of files.  Unknown action kinds are ignored, as
 * the protocol asks; malformed JSON or wrongly typed required fields fail
 * with ST_ERR_PARSE naming `what` and the line number. */
st_rc st_delta_log_parse_commit(const char *data, size_t len, const char *what,
                                const char *table_path, st_arena *arena, st_delta_commit *out,
                                st_err *err);

/* Parses one action object (the value of e.g. "add") into the commit. kind
 * is the action key.  Used by the line parser and the checkpoint reader. */
st_rc st_delta_log_parse_action(const char *kind, json_t *val, const char *table_path,
                                st_arena *arena, st_delta_commit *c, st_err *err);

/* Building blocks for readers that decode actions without JSON (checkpoint
 * columns): append an add to c; parse a JSON object of strings / a DV. */
st_rc st_delta_commit_push_add(st_arena *a, st_delta_commit *c, st_delta_file *f, st_err *err);
st_rc st_delta_parse_kv_json(st_arena *a, const char *json, st_kv **out, size_t *n_out, st_err *err);
st_rc st_delta_parse_dv_json(st_arena *a, const char *json, bool *has, st_delta_dv *dv, st_err *err);

/* Stats helpers: numRecords of a stats JSON text, -1 when unknown. */
int64_t st_delta_stats_num_records(const char *stats);

/* ---------------------------------------------------------------- listing */

typedef enum st_delta_ckpt_kind {
    ST_CKPT_CLASSIC,      /* N.checkpoint.parquet */
    ST_CKPT_MULTI,        /* N.checkpoint.P.T.parquet */
    ST_CKPT_V2_JSON,      /* N.checkpoint.<uuid>.json */
    ST_CKPT_V2_PARQUET,   /* N.checkpoint.<uuid>.parquet */
} st_delta_ckpt_kind;

typedef struct st_delta_ckpt {
    int64_t version;
    st_delta_ckpt_kind kind;
    int n_parts;          /* MULTI: total parts; else 1 */
    char **files;         /* absolute paths, n_parts entries (sorted by part) */
} st_delta_ckpt;

/* The _delta_log directory listed once. */
typedef struct st_delta_listing {
    int64_t *commits;     /* sorted versions that have N.json */
    size_t n_commits;
    st_delta_ckpt *ckpts; /* complete checkpoints sorted by version, newest last */
    size_t n_ckpts;
    bool has_last_checkpoint;
    int64_t last_checkpoint_version;   /* -1 if absent or unreadable */
    st_arena *arena;
} st_delta_listing;

/* Lists table_path/_delta_log.  ST_ERR_NOTFOUND when there is no log. */
st_rc st_delta_list_log(const char *table_path, st_delta_listing **out, st_err *err);
void st_delta_listing_free(st_delta_listing *l);
bool st_delta_listing_has_commit(const st_delta_listing *l, int64_t v);

/* Reads a whole checkpoint (all parts / sidecars) into c.  eng reads Parquet. */
st_rc st_delta_checkpoint_read(st_engine *eng, const char *table_path, const st_delta_ckpt *ck,
                               st_arena *arena, st_delta_commit *c, st_err *err);

/* ---------------------------------------------------------------- protocol */

/* Checks that the reader may read a table with this protocol: minReaderVersion
 * <= 3 and every readerFeature supported.  ST_ERR_UNSUPPORTED names the
 * feature and the table. */
st_rc st_delta_check_read_protocol(const st_delta_protocol *p, const char *table_path,
                                   st_err *err);
/* True if the feature is listed in readerFeatures or writerFeatures. */
bool st_delta_has_feature(const st_delta_protocol *p, const char *feature);

/* ---------------------------------------------------------------- deletion vectors */

/* Decodes Z85 (len multiple of 5) into out (len*4/5 bytes).  false when
 * the input is not Z85. */
bool st_delta_z85_decode(const char *in, size_t len, unsigned char *out);
/* Encodes n bytes (multiple of 4) as Z85 into out (n*5/4 chars + NUL). */
void st_delta_z85_encode(const unsigned char *in, size_t n, char *out);

/* Loads the deleted row positions of a DV, sorted ascending.  OWNED *out
 * (st_free).  Errors name the DV file. */
st_rc st_delta_dv_load(const char *table_path, const st_delta_dv *dv, uint64_t **out,
                       size_t *n_out, st_err *err);
/* Parses a serialized DV blob (magic + RoaringTreemap) into positions. */
st_rc st_delta_dv_parse_bitmap(const unsigned char *data, size_t len, uint64_t **out,
                               size_t *n_out, st_err *err);
/* Filesystem path of an on-disk DV (storage 'u' or 'p'), OWNED; NULL with
 * err set when the descriptor is malformed.  Not for inline ('i') DVs. */
char *st_delta_dv_file_path(const char *table_path, const st_delta_dv *dv, st_err *err);
/* Unique id of a DV for the replay key ("" without DV), OWNED. */
char *st_delta_dv_unique_id(const st_delta_dv *dv);

/* ---------------------------------------------------------------- partition values */

/* Renders a partition value string as a DuckDB SQL literal of the Delta type
 * (NULL for null / empty).  ST_ERR_PARSE names the value. */
st_rc st_delta_part_literal(const st_dtype *t, const char *value, st_buf *out, st_err *err);

/* One UNION ALL branch of a scan: files sharing partition values (one file
 * when rows are filtered by position).  Appends "SELECT <logical columns>
 * <extra_select> FROM (...)" to b. */
typedef struct st_delta_branch_opts {
    const char *extra_select;    /* appended after the columns, e.g. ", 'insert' AS x" */
    const char *extra_physical;  /* a file column extra_select reads (e.g. _change_type) */
    bool use_keep;               /* keep only rows at keep_pos (ignores the DV) */
    const uint64_t *keep_pos;
    size_t n_keep;
    bool ignore_dv;              /* read every physical row */
} st_delta_branch_opts;
st_rc st_delta_scan_branch(st_engine *eng, const st_delta_snapshot *s,
                           const st_delta_file *const *files, size_t n,
                           const st_delta_branch_opts *o, st_buf *b, st_err *err);

/* Replays a snapshot from a listing (internal form of st_delta_snapshot_load). */
st_rc st_delta_snapshot_load_listed(st_engine *eng, const char *table_path,
                                    const st_delta_listing *l, int64_t version,
                                    st_delta_snapshot **out, st_err *err);

/* Column mapping mode of a snapshot: "none", "name" or "id". */
const char *st_delta_cm_mode(const st_delta_snapshot *s);

#endif
