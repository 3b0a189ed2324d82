/*
 * load.h - the streaming loader: raw event log -> raw Delta table of
 * envelopes -> bronze Delta tables per event family.
 *
 * Pieces, each usable on its own:
 *   - st_registry: versioned event schemas (built-in LLM/web/backend ones
 *     plus the project's schemas/NAME.yml) with compatibility checks;
 *   - st_redact / st_luhn_ok / st_iban_ok: the text redactor of the PII
 *     policy (typed placeholders such as <email>, <card>);
 *   - st_keystore: per-subject encryption keys wrapped with a master key in
 *     the state database (crypto-shredding), keyed hashing;
 *   - st_loader: reads the log from its checkpoint in micro-batches,
 *     validates, deduplicates, applies the PII policy and commits one Delta
 *     transaction per table with txn appId "loader" and version = the log
 *     sequence number after the batch, so a replay after a crash is a no-op.
 *
 * Lake layout: <lake>/raw/events, <lake>/bronze/<family>,
 * <lake>/bronze/_quarantine.  See docs/ingestion.md and src/load/README.md.
 *
 * Thread safety: an st_loader is driven by one thread at a time;
 * st_loader_lag may be read from any thread.  A registry is read-only after
 * loading and may be shared.
 */
#ifndef STRATA_LOAD_H
#define STRATA_LOAD_H

#include "strata/core.h"
#include "strata/state.h"

/* ---------------------------------------------------------------- schemas */

typedef enum st_ftype {
    ST_FT_STRING,
    ST_FT_LONG,
    ST_FT_DOUBLE,
    ST_FT_BOOLEAN,
    ST_FT_TIMESTAMP,   /* RFC 3339 text in the event, TIMESTAMP in bronze */
    ST_FT_JSON,        /* any JSON value, stored as its JSON text */
} st_ftype;

typedef enum st_fclass { ST_FC_NONE, ST_FC_PII, ST_FC_SECRET, ST_FC_FREE_TEXT } st_fclass;

typedef enum st_pii_action {
    ST_PII_DEFAULT,    /* decided by the classification and the project's pii: section */
    ST_PII_KEEP,
    ST_PII_ENCRYPT,    /* XChaCha20-Poly1305 under the subject's key: "enc:v1:<base64>" */
    ST_PII_HASH,       /* keyed BLAKE2b-256, hex */
    ST_PII_REDACT,     /* st_redact */
    ST_PII_DROP,       /* always NULL */
} st_pii_action;

typedef struct st_sfield {
    char *name;          /* as the event sends it, e.g. "gen_ai.request.model" */
    char *column;        /* bronze column, e.g. "gen_ai_request_model" */
    char **paths;        /* where to look, in order: "payload.x", "context.page.url",
                            "$event_type", "$payload" (the whole payload) */
    size_t n_paths;
    st_ftype type;
    bool required;
    st_fclass cls;
    st_pii_action action;
} st_sfield;

typedef struct st_schema {
    char *family;        /* "llm_calls" */
    char *event_type;    /* "chat", or "*" for every type of the family */
    int ver[3];          /* version 2 -> {2,0,0}; SchemaVer "1-2-0" -> {1,2,0} */
    char *version_text;  /* as written */
    char *compat;        /* "backward" (default) or "none" */
    st_sfield *fields;
    size_t n_fields;
    bool builtin;
    char *file;          /* where it was declared, NULL for built-ins */
} st_schema;

typedef struct st_registry st_registry;

/* A registry holding the built-in schemas (llm_calls, web_events,
 * backend_events).  OWNED, st_registry_free. */
st_rc st_registry_new(st_registry **out, st_err *err);
void st_registry_free(st_registry *r);
/* Parses the schema(s) of one YAML document (a schema map, or a map with a
 * `schemas:` list) and registers them.  `name` is used in messages. */
st_rc st_registry_add_yaml(st_registry *r, const char *name, const char *text, size_t len,
                           st_err *err);
/* Registers every dir/NAME.yml (sorted by name); a missing dir is fine. */
st_rc st_registry_load_dir(st_registry *r, const char *dir, st_err *err);
/* Registers one schema (ownership moves to r on success; on failure the
 * caller still owns it).  Checks compatibility with the previous version of
 * the same family/event_type: backward (the default) refuses a type change
 * or a new required field with ST_ERR_INVALID naming the field. */
st_rc st_registry_register(st_registry *r, st_schema *s, st_err *err);
/* Records the registered versions in the state database (module "load") and
 * refuses a version whose definition changed since it was first recorded. */
st_rc st_registry_sync_state(st_registry *r, st_state *state, st_err *err);
/* Makes `family` known with the generic schema (name, properties) unless it
 * has schemas already. */
st_rc st_registry_add_family(st_registry *r, const char *family, st_err *err);
/* Finds the schema for an event: exact type and version, else the family's
 * "*" schema.  NULL with *why set ("unknown event type", "unknown schema
 * version", "unknown family") when none applies.  BORROWED. */
const st_schema *st_registry_find(const st_registry *r, const char *family, const char *type,
                                  const int ver[3], const char **why);
/* Families known to the registry, in registration order.  BORROWED. */
size_t st_registry_families(const st_registry *r, const char *const **out);
void st_schema_free(st_schema *s);
/* Parses "2" or "1-0-3" into ver; false when malformed. */
bool st_schema_version_parse(const char *s, int ver[3]);

/* ---------------------------------------------------------------- PII */

/* Replaces e-mail addresses, card numbers (Luhn-checked), IBANs (mod-97
 * checked), API-key-like tokens and phone numbers in text by <email>,
 * <card>, <iban>, <secret>, <phone>.  Appends to out.  Any bytes are safe. */
st_rc st_redact(const char *text, size_t len, st_buf *out);
/* Luhn check over the digits of s (spaces and dashes ignored). */
bool st_luhn_ok(const char *s, size_t len);
/* ISO 13616 mod-97 check (spaces ignored). */
bool st_iban_ok(const char *s, size_t len);

typedef struct st_keystore st_keystore;
/* Opens the key store in state (migrates module "load").  master_key is 32
 * bytes.  @param[out] out OWNED, st_keystore_close.  BORROWS state. */
st_rc st_keystore_open(st_state *state, const uint8_t master_key[32], st_keystore **out,
                       st_err *err);
void st_keystore_close(st_keystore *ks);
/* Reads the master key: hex in env var `env` (if set), else the file `path`
 * (32 raw bytes or 64 hex chars), created with a random key (mode 0600)
 * when absent and create is true. */
st_rc st_keystore_master_key(const char *env, const char *path, bool create, uint8_t out[32],
                             st_err *err);
/* Encrypts plaintext under the subject's key (created on first use); the
 * result "enc:v1:<base64(nonce||ciphertext)>" is appended to out. */
st_rc st_keystore_encrypt(st_keystore *ks, const char *subject, const char *text, size_t len,
                          st_buf *out, st_err *err);
/* Decrypts what st_keystore_encrypt produced.  ST_ERR_NOTFOUND when the
 * subject's key was destroyed; ST_ERR_CORRUPT when the text does not
 * authenticate. */
st_rc st_keystore_decrypt(st_keystore *ks, const char *subject, const char *enc, st_buf *out,
                          st_err *err);
/* Keyed BLAKE2b-256 of text (key derived from the master key, or `secret`
 * given to st_keystore_set_hash_secret), 64 hex chars appended to out. */
st_rc st_keystore_hash(st_keystore *ks, const char *text, size_t len, st_buf *out);
void st_keystore_set_hash_secret(st_keystore *ks, const char *secret);
/* Deferred key creation: new subject keys are kept in memory until
 * st_keystore_flush stores them, all in one transaction.  Flush before
 * committing anything encrypted with them.  A flush that finds a key made
 * or destroyed elsewhere meanwhile fails with ST_ERR_CONFLICT and forgets
 * its keys (encrypt again). */
void st_keystore_defer(st_keystore *ks, bool on);
st_rc st_keystore_flush(st_keystore *ks, st_err *err);
/* Destroys the subject's key (crypto-shredding).  *out_found (may be NULL)
 * tells whether a key existed. */
st_rc st_keystore_destroy(st_keystore *ks, const char *subject, bool *out_found, st_err *err);

/* ---------------------------------------------------------------- loader */

typedef struct st_loader_cfg {
    char *lake;                /* OWNED */
    char *state_path;          /* OWNED */
    char *log_dir;             /* OWNED: the collector's event log */
    char *schemas_dir;         /* OWNED: <project>/schemas */
    char **families;           /* OWNED: families configured for the collector */
    size_t n_families;
    int64_t batch_events;      /* events per micro-batch (50000) */
    int64_t interval_ms;       /* serve: run a pass at least this often (2000) */
    int64_t dedup_window_days; /* 7 */
    int64_t late_horizon_s;    /* event_time older than received_at minus this -> _late (172800) */
    int64_t stage_threads;     /* threads staging a batch and committing its tables:
                                  1 or 2; 0 = 2 when there are two cores (`strata
                                  serve` makes 0 mean 1: the collector keeps a core) */
    bool write_raw;            /* write <lake>/raw/events (true) */
    bool enabled;              /* serve runs the loader thread (true) */
    char *master_key_env;      /* "STRATA_MASTER_KEY" */
    char *master_key_file;     /* <state dir>/master.key */
    char *hash_secret_env;     /* NULL = derive from the master key */
    /* pii defaults per classification, and overrides "family.column" -> action */
    st_pii_action class_action[4];
    char **rule_keys;
    st_pii_action *rule_actions;
    size_t n_rules;
    /* Kafka mode (collector event_log: kafka): consume these topics instead
     * of reading log_dir.  NULL in file mode. */
    struct st_kafka_cfg *kafka;   /* OWNED (st_kafka_cfg, strata/collect.h) */
    char **kafka_topics;          /* OWNED: topic_prefix + each source */
    size_t n_kafka_topics;
} st_loader_cfg;

/* Reads `loader:` and `pii:` from root (either may be absent) and the
 * collector families; paths relative to base_dir.  OWNED *out. */
st_rc st_loader_cfg_load(const st_cfg *root, const char *base_dir, st_loader_cfg **out,
                         st_err *err);
void st_loader_cfg_free(st_loader_cfg *c);
/* Parses "keep|encrypt|hash|redact|drop". */
bool st_pii_action_parse(const char *s, st_pii_action *out);

typedef struct st_loader st_loader;

typedef struct st_load_stats {
    int64_t batches;
    int64_t read;            /* records read from the log */
    int64_t loaded;          /* bronze rows written */
    int64_t duplicates;      /* dropped as already in bronze or in the batch */
    int64_t quarantined;
    int64_t late;
    int64_t skipped_replay;  /* table commits skipped because already applied */
    uint64_t position;       /* log sequence number after the last committed batch */
} st_load_stats;

/* Opens the loader: state database, key store, registry (built-ins +
 * schemas_dir + families), engine.  BORROWS cfg.  OWNED *out. */
st_rc st_loader_open(const st_loader_cfg *cfg, st_loader **out, st_err *err);
void st_loader_close(st_loader *l);
/* Loads what the log holds now, from the checkpoint to its end, in
 * micro-batches.  Adds to *stats (may be NULL). */
st_rc st_loader_run_once(st_loader *l, st_load_stats *stats, st_err *err);
/* Loads at most one micro-batch; *out_n = records read (0 at the end). */
st_rc st_loader_step(st_loader *l, st_load_stats *stats, size_t *out_n, st_err *err);
/* Tells the loader the log's next sequence number, for the lag gauge. */
void st_loader_set_log_end(st_loader *l, uint64_t next_seq);
/* Events in the log not yet loaded (as of the last st_loader_set_log_end). */
uint64_t st_loader_lag(const st_loader *l);
/* The registry the loader uses (BORROWED). */
const st_registry *st_loader_registry(const st_loader *l);
/* The key store the loader uses (BORROWED). */
st_keystore *st_loader_keystore(st_loader *l);

/* A loader thread that runs a pass every interval_ms (or sooner when
 * st_loader_thread_kick is called).  Errors are logged and retried.  The
 * thread OWNS l and closes it at stop.  next_seq_fn (may be NULL) is asked for
 * the log's next sequence number for the lag gauge. */
typedef struct st_loader_thread st_loader_thread;
st_rc st_loader_thread_start(st_loader *l, uint64_t (*next_seq_fn)(void *), void *arg,
                             st_loader_thread **out, st_err *err);
/* Lag in events (thread-safe). */
uint64_t st_loader_thread_lag(const st_loader_thread *t);
/* Runs a final pass, stops and closes the loader.  NULL is fine. */
void st_loader_thread_stop(st_loader_thread *t);

/* Erasure: destroys the subject's key and deletes the subject's rows from
 * every table under <lake>/bronze and <lake>/raw that has a subject_id
 * column.  *out_rows (may be NULL) receives the number of rows deleted. */
st_rc st_load_erase(const st_loader_cfg *cfg, const char *subject, int64_t *out_rows,
                    st_err *err);

#endif
