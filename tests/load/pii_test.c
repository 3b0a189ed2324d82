/*
 * pii_test.c - each PII action: redaction with typed placeholders (Luhn and
 * IBAN checks, false positives left alone), keyed hashing, per-subject
 * encryption and crypto-shredding, the master key file.
 */
#include "testutil.h"
#include "strata/load.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *redacted(const char *in)
{
    st_buf b;
    st_buf_init(&b, 0);
    assert_int_equal(st_redact(in, strlen(in), &b), ST_OK);
    return st_buf_take(&b);
}

static void test_luhn_iban(void **state)
{
    (void)state;
    assert_true(st_luhn_ok("4111 1111 1111 1111", 19));
    assert_true(st_luhn_ok("5555-5555-5555-4444", 19));
    assert_false(st_luhn_ok("4111 1111 1111 1112", 19));
    assert_false(st_luhn_ok("1234", 4));
    assert_true(st_iban_ok("DE89 3704 0044 0532 0130 00", 27));
    assert_true(st_iban_ok("GB82WEST12345698765432", 22));
    assert_false(st_iban_ok("DE89 3704 0044 0532 0130 01", 27));
}

static void test_redact(void **state)
{
    (void)state;
    static const struct { const char *in, *out; } cases[] = {
        {"mail bob.smith+x@example.co.uk now", "mail <email> now"},
        {"card 4111 1111 1111 1111.", "card <card>."},
        {"card 4111111111111111", "card <card>"},
        {"not a card 4111 1111 1111 1112", "not a card 4111 1111 1111 1112"},
        {"order 123456789012 shipped", "order 123456789012 shipped"},
        {"iban DE89 3704 0044 0532 0130 00 ok", "iban <iban> ok"},
        {"iban GB82WEST12345698765433 bad", "iban GB82WEST12345698765433 bad"},
        {"key sk-proj-abcdefghijklmnop1234 end", "key <secret> end"},
        {"aws AKIAIOSFODNN7EXAMPLE", "aws <secret>"},
        {"tok ghp_0123456789abcdefghijABCDEFGHIJ0123", "tok <secret>"},
        {"call +49 30 1234 5678 or (555) 123-4567", "call <phone> or <phone>"},
        {"date 2025-06-01T10:00:00Z stays", "date 2025-06-01T10:00:00Z stays"},
        {"uuid 6f1c2e8a-1b2c-4d3e-8f90-0123456789ab", "uuid 6f1c2e8a-1b2c-4d3e-8f90-0123456789ab"},
        {"{\"e\":\"a@b.io\",\"n\":1}", "{\"e\":\"<email>\",\"n\":1}"},
        {"trace 4bf92f3577b34da6a3ce929d0e0e4736 kept", "trace 4bf92f3577b34da6a3ce929d0e0e4736 kept"},
        {"token Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LmNb", "token <secret>"},
        {"4111 1111 1111 1111 2 items", "<card> 2 items"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = redacted(cases[i].in);
        if (strcmp(got, cases[i].out))
            fail_msg("case %zu: '%s' -> '%s', want '%s'", i, cases[i].in, got, cases[i].out);
        st_free(got);
    }
    /* bytes that are not UTF-8 are fine */
    char bin[] = {'a', (char)0xff, (char)0xfe, '@', 'b', '.', 'c', 'o', 0};
    char *got = redacted(bin);
    assert_non_null(got);
    st_free(got);
}

static void test_keystore(void **state)
{
    (void)state;
    char *dir = tu_tempdir("pii");
    char *db = st_path_join(dir, "state.db");
    char *kf = st_path_join(dir, "master.key");
    uint8_t mk[32], mk2[32];
    TU_OK(st_keystore_master_key("TST_NO_SUCH_ENV", kf, true, mk, &tu_err));
    struct stat sb;
    assert_int_equal(stat(kf, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    TU_OK(st_keystore_master_key("TST_NO_SUCH_ENV", kf, false, mk2, &tu_err));
    assert_memory_equal(mk, mk2, 32);
    setenv("TST_MK", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 1);
    TU_OK(st_keystore_master_key("TST_MK", kf, false, mk2, &tu_err));
    assert_int_equal(mk2[1], 0x11);
    setenv("TST_MK", "abc", 1);
    st_err e;
    assert_int_equal(st_keystore_master_key("TST_MK", kf, false, mk2, &e), ST_ERR_INVALID);

    st_state *s = NULL;
    st_keystore *ks = NULL;
    TU_OK(st_state_open(db, &s, &tu_err));
    TU_OK(st_keystore_open(s, mk, &ks, &tu_err));
    st_buf c1, c2, p;
    st_buf_init(&c1, 0);
    st_buf_init(&c2, 0);
    st_buf_init(&p, 0);
    const char *prompt = "my secret prompt";
    TU_OK(st_keystore_encrypt(ks, "alice", prompt, strlen(prompt), &c1, &tu_err));
    TU_OK(st_keystore_encrypt(ks, "alice", prompt, strlen(prompt), &c2, &tu_err));
    assert_true(!strncmp(c1.data, "enc:v1:", 7));
    assert_string_not_equal(c1.data, c2.data);   /* random nonces */
    assert_null(strstr(c1.data, "secret"));
    TU_OK(st_keystore_decrypt(ks, "alice", c1.data, &p, &tu_err));
    assert_string_equal(p.data, prompt);
    /* every length of the base64 tail (padding 0, 1 or 2) round-trips */
    for (size_t n = 0; n < 12; n++) {
        char txt[16];
        memset(txt, 'a' + (int)n, n);
        txt[n] = 0;
        st_buf_reset(&c2);
        st_buf_reset(&p);
        TU_OK(st_keystore_encrypt(ks, "alice", txt, n, &c2, &tu_err));
        assert_int_equal((c2.len - 7) % 4, 0);
        TU_OK(st_keystore_decrypt(ks, "alice", c2.data, &p, &tu_err));
        assert_int_equal(p.len, n);
        assert_memory_equal(p.len ? p.data : "", txt, n);
    }
    st_buf_reset(&c2);
    st_buf_reset(&p);
    /* bound to the subject */
    st_buf_reset(&p);
    TU_OK(st_keystore_encrypt(ks, "bob", "x", 1, &c2, &tu_err));
    assert_int_equal(st_keystore_decrypt(ks, "bob", c1.data, &p, &e), ST_ERR_CORRUPT);
    /* a new handle (cold cache) unwraps the stored key */
    st_keystore_close(ks);
    TU_OK(st_keystore_open(s, mk, &ks, &tu_err));
    st_buf_reset(&p);
    TU_OK(st_keystore_decrypt(ks, "alice", c1.data, &p, &tu_err));
    assert_string_equal(p.data, prompt);
    /* the wrong master key cannot unwrap */
    st_keystore *bad = NULL;
    uint8_t wrong[32] = {1};
    TU_OK(st_keystore_open(s, wrong, &bad, &tu_err));
    assert_int_equal(st_keystore_decrypt(bad, "alice", c1.data, &p, &e), ST_ERR_CORRUPT);
    st_keystore_close(bad);
    /* crypto-shredding */
    bool found = false;
    TU_OK(st_keystore_destroy(ks, "alice", &found, &tu_err));
    assert_true(found);
    assert_int_equal(st_keystore_decrypt(ks, "alice", c1.data, &p, &e), ST_ERR_NOTFOUND);
    /* and no new key is made for an erased subject */
    assert_int_equal(st_keystore_encrypt(ks, "alice", "y", 1, &c2, &e), ST_ERR_NOTFOUND);
    TU_OK(st_keystore_destroy(ks, "carol", &found, &tu_err));
    assert_false(found);

    /* deferred keys: stored only by the flush, all at once */
    st_keystore *dk = NULL, *other = NULL;
    TU_OK(st_keystore_open(s, mk, &dk, &tu_err));
    TU_OK(st_keystore_open(s, mk, &other, &tu_err));
    st_keystore_defer(dk, true);
    st_buf d1, d2;
    st_buf_init(&d1, 0);
    st_buf_init(&d2, 0);
    TU_OK(st_keystore_encrypt(dk, "dave", "pd", 2, &d1, &tu_err));
    TU_OK(st_keystore_encrypt(dk, "erin", "pe", 2, &d2, &tu_err));
    st_buf_reset(&p);
    TU_OK(st_keystore_decrypt(dk, "dave", d1.data, &p, &tu_err));
    assert_string_equal(p.data, "pd");
    assert_int_equal(st_keystore_decrypt(other, "dave", d1.data, &p, &e), ST_ERR_NOTFOUND);
    TU_OK(st_keystore_flush(dk, &tu_err));
    st_buf_reset(&p);
    TU_OK(st_keystore_decrypt(other, "dave", d1.data, &p, &tu_err));
    assert_string_equal(p.data, "pd");
    st_buf_reset(&p);
    TU_OK(st_keystore_decrypt(other, "erin", d2.data, &p, &tu_err));
    assert_string_equal(p.data, "pe");
    /* a subject erased elsewhere before the flush: the flush refuses, the
     * key is forgotten, and the subject stays erased */
    st_buf_reset(&d1);
    TU_OK(st_keystore_encrypt(dk, "frank", "pf", 2, &d1, &tu_err));
    TU_OK(st_keystore_destroy(other, "frank", &found, &tu_err));
    assert_false(found);
    assert_int_equal(st_keystore_flush(dk, &e), ST_ERR_CONFLICT);
    assert_non_null(strstr(e.msg, "frank"));
    assert_int_equal(st_keystore_encrypt(dk, "frank", "pf", 2, &d1, &e), ST_ERR_NOTFOUND);
    /* destroyed before its flush: nothing is stored */
    st_buf_reset(&d1);
    TU_OK(st_keystore_encrypt(dk, "gina", "pg", 2, &d1, &tu_err));
    TU_OK(st_keystore_destroy(dk, "gina", &found, &tu_err));
    TU_OK(st_keystore_flush(dk, &tu_err));
    assert_int_equal(st_keystore_decrypt(other, "gina", d1.data, &p, &e), ST_ERR_NOTFOUND);
    st_buf_free(&d1);
    st_buf_free(&d2);
    st_keystore_close(dk);
    st_keystore_close(other);

    /* keyed hash: stable, 64 hex, depends on the key */
    st_buf h1, h2;
    st_buf_init(&h1, 0);
    st_buf_init(&h2, 0);
    TU_OK(st_keystore_hash(ks, "1.2.3.4", 7, &h1));
    TU_OK(st_keystore_hash(ks, "1.2.3.4", 7, &h2));
    assert_int_equal(h1.len, 64);
    assert_string_equal(h1.data, h2.data);
    st_keystore_set_hash_secret(ks, "another secret");
    st_buf_reset(&h2);
    TU_OK(st_keystore_hash(ks, "1.2.3.4", 7, &h2));
    assert_string_not_equal(h1.data, h2.data);
    st_buf_free(&h1);
    st_buf_free(&h2);
    st_buf_free(&c1);
    st_buf_free(&c2);
    st_buf_free(&p);
    st_keystore_close(ks);
    st_state_close(s);
    st_free(db);
    st_free(kf);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_luhn_iban),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_keystore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
