/*
 * pii.c - the key store behind the `encrypt` and `hash` PII actions.
 *
 * Each subject (the envelope's subject_id) gets a random 256-bit key, created
 * on first use and stored in the state database (table load_keys) wrapped
 * with the master key: XChaCha20-Poly1305, the subject id as associated data.
 * Field values are encrypted with XChaCha20-Poly1305 under the subject key
 * ("enc:v1:" + base64(nonce || ciphertext)), again bound to the subject id.
 * Destroying the wrapped key (st_keystore_destroy, `strata erase`) makes
 * every value ever encrypted for that subject unreadable, wherever copies of
 * the Parquet files went: crypto-shredding.  Hashing is keyed BLAKE2b with a
 * key derived from the master key (or a configured secret), so hashes are
 * stable across runs and joinable but not reversible by guessing.
 *
 * Unwrapped keys are cached in memory for the loader's lifetime.  With
 * st_keystore_defer the keys a batch creates are stored together by
 * st_keystore_flush, in one transaction, which the loader calls before it
 * commits anything encrypted with them (one INSERT per new subject, each
 * its own transaction behind the key store's lock, serialised the staging
 * threads on a batch with many new subjects).
 * redact.c does the text redaction; loader.c decides which action applies
 * to which field.
 */
#include "load_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_LEN crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define WRAP_LEN (crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + KEY_LEN + \
                  crypto_aead_xchacha20poly1305_ietf_ABYTES)
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define NONCE_POOL 128
#define ENC_PREFIX "enc:v1:"

struct st_keystore {
    /* the loader's staging workers share the key store: the cache, the
     * nonce pool and key creation are under mu; the ciphers run outside */
    pthread_mutex_t mu;
    st_state *state;
    uint8_t master[32];
    uint8_t hash_key[crypto_generichash_KEYBYTES];
    st_map *cache;            /* subject -> uint8_t[KEY_LEN] (st_malloc'd) */
    /* nonces drawn from the system CSPRNG 128 at a time: one getrandom per
     * field was a measurable share of the loader's time */
    uint8_t nonces[NONCE_POOL * NONCE_LEN];
    size_t nonces_left;
    bool defer;               /* new keys wait in pend for st_keystore_flush */
    struct pend_key {
        char *subject;
        uint8_t wrapped[WRAP_LEN];
    } *pend;
    size_t n_pend, cap_pend;
};

static void pend_drop(st_keystore *ks, size_t i)
{
    st_free(ks->pend[i].subject);
    ks->pend[i] = ks->pend[--ks->n_pend];
}

st_rc st_keystore_master_key(const char *env, const char *path, bool create, uint8_t out[32],
                             st_err *err)
{
    if (sodium_init() < 0)
        return st_fail(err, ST_ERR_INVALID, "libsodium failed to initialise");
    const char *hex = env && *env ? getenv(env) : NULL;
    if (hex && *hex) {
        size_t bin_len = 0;
        if (strlen(hex) != 64 ||
            sodium_hex2bin(out, 32, hex, 64, NULL, &bin_len, NULL) != 0 || bin_len != 32)
            return st_fail(err, ST_ERR_INVALID, "$%s: expected 64 hex characters (a 256-bit key)",
                           env);
        return ST_OK;
    }
    if (!path)
        return st_fail(err, ST_ERR_NOTFOUND, "no master key: set $%s or pii.master_key_file",
                       env ? env : "STRATA_MASTER_KEY");
    char *text = NULL;
    size_t len = 0;
    st_rc rc = st_file_read(path, 4096, &text, &len, err);
    if (rc == ST_ERR_NOTFOUND || (rc == ST_ERR_IO && !st_path_exists(path))) {
        if (!create)
            return rc;
        st_err_clear(err);
        uint8_t k[32];
        char kh[65];
        randombytes_buf(k, sizeof k);
        sodium_bin2hex(kh, sizeof kh, k, sizeof k);
        kh[64] = '\n';
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            if (errno == EEXIST)
                return st_keystore_master_key(NULL, path, false, out, err);
            return st_fail_errno(err, ST_ERR_IO, "creating master key %s", path);
        }
        ssize_t w = write(fd, kh, 65);
        int sync = fsync(fd);
        close(fd);
        sodium_memzero(kh, sizeof kh);
        if (w != 65 || sync != 0) {
            sodium_memzero(k, sizeof k);
            unlink(path);
            return st_fail(err, ST_ERR_IO, "writing master key %s", path);
        }
        memcpy(out, k, 32);
        sodium_memzero(k, sizeof k);
        st_warn("pii: created a new master key in %s; back it up (losing it loses every "
                "encrypted value)", path);
        return ST_OK;
    }
    if (rc)
        return rc;
    size_t bin_len = 0;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    if (len == 32) {
        memcpy(out, text, 32);
    } else if (len != 64 || sodium_hex2bin(out, 32, text, 64, NULL, &bin_len, NULL) != 0 ||
               bin_len != 32) {
        rc = st_fail(err, ST_ERR_INVALID, "master key %s: expected 32 bytes or 64 hex characters",
                     path);
    }
    sodium_memzero(text, len);
    st_free(text);
    return rc;
}

st_rc st_keystore_open(st_state *state, const uint8_t master_key[32], st_keystore **out,
                       st_err *err)
{
    if (sodium_init() < 0)
        return st_fail(err, ST_ERR_INVALID, "libsodium failed to initialise");
    st_rc rc = st_load_state_migrate(state, err);
    if (rc)
        return rc;
    st_keystore *ks = st_calloc(1, sizeof *ks);
    if (!ks || !(ks->cache = st_map_new())) {
        st_free(ks);
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    ks->state = state;
    pthread_mutex_init(&ks->mu, NULL);
    memcpy(ks->master, master_key, 32);
    /* subkey 1 of the master key, context "st_hash_" */
    crypto_kdf_derive_from_key(ks->hash_key, sizeof ks->hash_key, 1, "st_hash_", ks->master);
    *out = ks;
    return ST_OK;
}

void st_keystore_set_hash_secret(st_keystore *ks, const char *secret)
{
    if (secret && *secret)
        crypto_generichash(ks->hash_key, sizeof ks->hash_key, (const unsigned char *)secret,
                           strlen(secret), NULL, 0);
}

static void drop_cache(st_keystore *ks)
{
    size_t it = 0;
    const char *k;
    void *v;
    while (st_map_next(ks->cache, &it, &k, &v)) {
        sodium_memzero(v, KEY_LEN);
        st_free(v);
    }
    st_map_free(ks->cache);
    ks->cache = NULL;
}

void st_keystore_close(st_keystore *ks)
{
    if (!ks)
        return;
    /* keys never flushed encrypted nothing that was committed */
    while (ks->n_pend)
        pend_drop(ks, ks->n_pend - 1);
    st_free(ks->pend);
    drop_cache(ks);
    pthread_mutex_destroy(&ks->mu);
    sodium_memzero(ks, sizeof *ks);
    st_free(ks);
}

/* Finds (or, when create, makes) the subject's key.  ST_ERR_NOTFOUND when it
 * was destroyed or never made.  *out is BORROWED from the cache. */
static st_rc subject_key(st_keystore *ks, const char *subject, bool create, const uint8_t **out,
                         st_err *err)
{
    uint8_t *k = st_map_get(ks->cache, subject);
    if (k) {
        *out = k;
        return ST_OK;
    }
    k = st_malloc(KEY_LEN);
    if (!k)
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    st_rc rc = ST_OK;
    size_t sl = strlen(subject);
    st_state_lock(ks->state);
    sqlite3 *db = st_state_db(ks->state);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT wrapped, destroyed_ms FROM load_keys WHERE subject_id=?",
                           -1, &st, NULL)) {
        rc = st_fail(err, ST_ERR_IO, "key store: %s", sqlite3_errmsg(db));
        goto out;
    }
    sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const uint8_t *w = sqlite3_column_blob(st, 0);
        int wl = sqlite3_column_bytes(st, 0);
        if (!w || sqlite3_column_type(st, 1) != SQLITE_NULL) {
            rc = st_fail(err, ST_ERR_NOTFOUND, "key of subject '%s' was destroyed", subject);
            goto out;
        }
        unsigned long long kl = 0;
        if (wl != NONCE_LEN + KEY_LEN + TAG_LEN ||
            crypto_aead_xchacha20poly1305_ietf_decrypt(k, &kl, NULL, w + NONCE_LEN,
                                                       (unsigned long long)(wl - NONCE_LEN),
                                                       (const uint8_t *)subject, sl, w,
                                                       ks->master) != 0 ||
            kl != KEY_LEN) {
            rc = st_fail(err, ST_ERR_CORRUPT,
                         "key of subject '%s' does not unwrap (wrong master key?)", subject);
            goto out;
        }
    } else if (step == SQLITE_DONE) {
        if (!create) {
            rc = st_fail(err, ST_ERR_NOTFOUND, "no key for subject '%s'", subject);
            goto out;
        }
        uint8_t w[WRAP_LEN];
        crypto_aead_xchacha20poly1305_ietf_keygen(k);
        randombytes_buf(w, NONCE_LEN);
        crypto_aead_xchacha20poly1305_ietf_encrypt(w + NONCE_LEN, NULL, k, KEY_LEN,
                                                   (const uint8_t *)subject, sl, NULL, w,
                                                   ks->master);
        sqlite3_finalize(st);
        st = NULL;
        if (ks->defer) {
            if (ks->n_pend == ks->cap_pend) {
                size_t nc = ks->cap_pend ? ks->cap_pend * 2 : 256;
                struct pend_key *np = st_realloc(ks->pend, nc * sizeof *np);
                if (!np) {
                    rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
                    goto out;
                }
                ks->pend = np;
                ks->cap_pend = nc;
            }
            if (!(ks->pend[ks->n_pend].subject = st_strdup(subject))) {
                rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
                goto out;
            }
            memcpy(ks->pend[ks->n_pend++].wrapped, w, WRAP_LEN);
            goto cache;
        }
        if (sqlite3_prepare_v2(db, "INSERT INTO load_keys (subject_id, wrapped, created_ms) "
                                   "VALUES (?,?,?)", -1, &st, NULL)) {
            rc = st_fail(err, ST_ERR_IO, "key store: %s", sqlite3_errmsg(db));
            goto out;
        }
        sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, w, sizeof w, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, st_now_ms());
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = st_fail(err, ST_ERR_IO, "key store: storing the key of '%s': %s", subject,
                         sqlite3_errmsg(db));
            goto out;
        }
    } else {
        rc = st_fail(err, ST_ERR_IO, "key store: %s", sqlite3_errmsg(db));
        goto out;
    }
cache:
    rc = st_map_put(ks->cache, subject, k, NULL);
    if (rc) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto out;
    }
    *out = k;
    k = NULL;
out:
    sqlite3_finalize(st);
    st_state_unlock(ks->state);
    if (k) {
        sodium_memzero(k, KEY_LEN);
        st_free(k);
    }
    return rc;
}

/* Standard base64 with padding, NUL-terminated (what sodium_bin2base64's
 * ORIGINAL variant writes): a table lookup per sextet, where libsodium's
 * constant-time encoder cost ~40% of an encryption here.  The ciphertext
 * is not secret, so constant time buys nothing. */
static void b64_encode(char *out, const uint8_t *in, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = tab[v >> 18];
        *out++ = tab[(v >> 12) & 63];
        *out++ = tab[(v >> 6) & 63];
        *out++ = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        *out++ = tab[v >> 18];
        *out++ = tab[(v >> 12) & 63];
        *out++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *out++ = '=';
    }
    *out = 0;
}

st_rc st_keystore_encrypt(st_keystore *ks, const char *subject, const char *text, size_t len,
                          st_buf *out, st_err *err)
{
    const uint8_t *kp;
    uint8_t key[KEY_LEN], nonce[NONCE_LEN];
    pthread_mutex_lock(&ks->mu);
    st_rc rc = subject_key(ks, subject, true, &kp, err);
    if (rc == ST_OK) {
        memcpy(key, kp, KEY_LEN);
        if (!ks->nonces_left) {
            randombytes_buf(ks->nonces, sizeof ks->nonces);
            ks->nonces_left = NONCE_POOL;
        }
        /* each nonce is used once: taken from the end, then wiped */
        uint8_t *np = ks->nonces + --ks->nonces_left * NONCE_LEN;
        memcpy(nonce, np, NONCE_LEN);
        sodium_memzero(np, NONCE_LEN);
    }
    pthread_mutex_unlock(&ks->mu);
    if (rc)
        return rc;
    size_t clen = NONCE_LEN + len + TAG_LEN;
    size_t b64len = sodium_base64_ENCODED_LEN(clen, sodium_base64_VARIANT_ORIGINAL);
    /* short values (the common case) need no heap */
    uint8_t cbuf[1024];
    char bbuf[1400];
    uint8_t *c = clen <= sizeof cbuf ? cbuf : st_malloc(clen);
    char *b64 = b64len <= sizeof bbuf ? bbuf : st_malloc(b64len);
    if (!c || !b64) {
        if (c != cbuf)
            st_free(c);
        if (b64 != bbuf)
            st_free(b64);
        sodium_memzero(key, sizeof key);
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    memcpy(c, nonce, NONCE_LEN);
    crypto_aead_xchacha20poly1305_ietf_encrypt(c + NONCE_LEN, NULL, (const uint8_t *)text, len,
                                               (const uint8_t *)subject, strlen(subject), NULL, c,
                                               key);
    sodium_memzero(key, sizeof key);
    b64_encode(b64, c, clen);
    rc = st_buf_puts(out, ENC_PREFIX);
    rc = rc ? rc : st_buf_append(out, b64, b64len - 1);
    if (c != cbuf)
        st_free(c);
    if (b64 != bbuf)
        st_free(b64);
    return rc ? st_fail(err, rc, "encrypting a field: buffer limit") : ST_OK;
}

st_rc st_keystore_decrypt(st_keystore *ks, const char *subject, const char *enc, st_buf *out,
                          st_err *err)
{
    if (!enc || strncmp(enc, ENC_PREFIX, strlen(ENC_PREFIX)))
        return st_fail(err, ST_ERR_PARSE, "not an encrypted value (no %s prefix)", ENC_PREFIX);
    enc += strlen(ENC_PREFIX);
    const uint8_t *kp;
    uint8_t key[KEY_LEN];
    pthread_mutex_lock(&ks->mu);
    st_rc rc = subject_key(ks, subject, false, &kp, err);
    if (rc == ST_OK)
        memcpy(key, kp, KEY_LEN);
    pthread_mutex_unlock(&ks->mu);
    if (rc)
        return rc;
    size_t elen = strlen(enc);
    uint8_t *c = st_malloc(elen + 1);
    if (!c) {
        sodium_memzero(key, sizeof key);
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    size_t clen = 0;
    if (sodium_base642bin(c, elen + 1, enc, elen, NULL, &clen, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        clen < NONCE_LEN + TAG_LEN) {
        st_free(c);
        sodium_memzero(key, sizeof key);
        return st_fail(err, ST_ERR_PARSE, "encrypted value: bad base64");
    }
    uint8_t *p = st_malloc(clen);
    unsigned long long plen = 0;
    if (!p) {
        st_free(c);
        sodium_memzero(key, sizeof key);
        return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(p, &plen, NULL, c + NONCE_LEN,
                                                   clen - NONCE_LEN, (const uint8_t *)subject,
                                                   strlen(subject), c, key) != 0)
        rc = st_fail(err, ST_ERR_CORRUPT, "encrypted value does not authenticate for subject '%s'",
                     subject);
    else
        rc = st_buf_append(out, p, (size_t)plen);
    sodium_memzero(p, clen);
    sodium_memzero(key, sizeof key);
    st_free(p);
    st_free(c);
    return rc;
}

st_rc st_keystore_hash(st_keystore *ks, const char *text, size_t len, st_buf *out)
{
    uint8_t h[32];
    char hex[65];
    crypto_generichash(h, sizeof h, (const uint8_t *)text, len, ks->hash_key,
                       sizeof ks->hash_key);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    return st_buf_puts(out, hex);
}

void st_keystore_defer(st_keystore *ks, bool on) { ks->defer = on; }

st_rc st_keystore_flush(st_keystore *ks, st_err *err)
{
    pthread_mutex_lock(&ks->mu);
    if (!ks->n_pend) {
        pthread_mutex_unlock(&ks->mu);
        return ST_OK;
    }
    st_rc rc = ST_OK;
    st_state_lock(ks->state);
    sqlite3 *db = st_state_db(ks->state);
    sqlite3_stmt *st = NULL;
    bool in_tx = false;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
        !(in_tx = true) ||
        sqlite3_prepare_v2(db, "INSERT INTO load_keys (subject_id, wrapped, created_ms) "
                               "VALUES (?,?,?) ON CONFLICT(subject_id) DO NOTHING", -1, &st,
                           NULL) != SQLITE_OK) {
        rc = st_fail(err, ST_ERR_IO, "key store: %s", sqlite3_errmsg(db));
        goto out;
    }
    int64_t now = st_now_ms();
    const char *lost = NULL;
    for (size_t i = 0; i < ks->n_pend; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, ks->pend[i].subject, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, ks->pend[i].wrapped, WRAP_LEN, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = st_fail(err, ST_ERR_IO, "key store: storing the key of '%s': %s",
                         ks->pend[i].subject, sqlite3_errmsg(db));
            goto out;
        }
        if (sqlite3_changes(db) == 0 && !lost)
            lost = ks->pend[i].subject;   /* made or destroyed elsewhere meanwhile */
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = st_fail(err, ST_ERR_IO, "key store: %s", sqlite3_errmsg(db));
        goto out;
    }
    in_tx = false;
    if (lost) {
        /* values encrypted under the cached key would not decrypt: drop
         * every pending key from the cache, the batch fails and is staged
         * again with the keys the database holds */
        rc = st_fail(err, ST_ERR_CONFLICT, "key store: the key of subject '%s' was created or "
                     "destroyed by another process during the batch", lost);
        for (size_t i = 0; i < ks->n_pend; i++) {
            void *k = st_map_del(ks->cache, ks->pend[i].subject);
            if (k) {
                sodium_memzero(k, KEY_LEN);
                st_free(k);
            }
        }
    }
    while (ks->n_pend)
        pend_drop(ks, ks->n_pend - 1);
out:
    sqlite3_finalize(st);
    if (in_tx)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    st_state_unlock(ks->state);
    pthread_mutex_unlock(&ks->mu);
    return rc;
}

st_rc st_keystore_destroy(st_keystore *ks, const char *subject, bool *out_found, st_err *err)
{
    /* held to the end: no worker may recreate the key in between */
    pthread_mutex_lock(&ks->mu);
    for (size_t i = 0; i < ks->n_pend; i++)
        if (!strcmp(ks->pend[i].subject, subject)) {
            pend_drop(ks, i);
            break;
        }
    void *k = st_map_del(ks->cache, subject);
    if (k) {
        sodium_memzero(k, KEY_LEN);
        st_free(k);
    }
    st_rc rc = ST_OK;
    st_state_lock(ks->state);
    sqlite3 *db = st_state_db(ks->state);
    sqlite3_stmt *st = NULL;
    /* keep a tombstone row so the loader never silently makes a new key
     * for an erased subject from a replayed event */
    if (sqlite3_prepare_v2(db, "INSERT INTO load_keys (subject_id, wrapped, created_ms, "
                               "destroyed_ms) VALUES (?1, NULL, ?2, ?2) ON CONFLICT(subject_id) "
                               "DO UPDATE SET wrapped = NULL, destroyed_ms = ?2",
                           -1, &st, NULL)) {
        rc = st_fail(err, ST_ERR_IO, "key store: %s", sqlite3_errmsg(db));
        goto out;
    }
    sqlite3_stmt *q = NULL;
    bool found = false;
    if (sqlite3_prepare_v2(db, "SELECT wrapped IS NOT NULL FROM load_keys WHERE subject_id=?",
                           -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, subject, -1, SQLITE_STATIC);
        found = sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0);
        sqlite3_finalize(q);
    }
    sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, st_now_ms());
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = st_fail(err, ST_ERR_IO, "key store: destroying the key of '%s': %s", subject,
                     sqlite3_errmsg(db));
        goto out;
    }
    if (out_found)
        *out_found = found;
out:
    sqlite3_finalize(st);
    st_state_unlock(ks->state);
    pthread_mutex_unlock(&ks->mu);
    return rc;
}
