/*
 * redact.c - the `redact` PII action: replaces e-mail addresses, API-key-like
 * tokens, IBANs (mod-97 checked), card numbers (Luhn checked) and phone
 * numbers in free text by typed placeholders (<email>, <secret>, <iban>,
 * <card>, <phone>).
 *
 * One PCRE2 pattern with named alternatives is compiled once (JIT when
 * available) and scanned left to right; candidates that fail their checksum
 * are kept as they are.  The pattern runs in byte mode, so invalid UTF-8 is
 * harmless.  pii.c holds the other actions; loader.c decides which applies.
 */
#include "strata/load.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <string.h>

static const char pattern[] =
    "(?<email>[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,})"
    "|(?<secret>(?<![A-Za-z0-9_-])(?:"
    "(?:sk|pk|rk)[-_](?:live_|test_|proj-)?[A-Za-z0-9_-]{16,}"
    "|AKIA[0-9A-Z]{16}"
    "|gh[pousr]_[A-Za-z0-9]{30,}"
    "|xox[abpr]-[A-Za-z0-9-]{10,}"
    "|(?=[A-Za-z0-9_]*[a-z])(?=[A-Za-z0-9_]*[A-Z])(?=[A-Za-z0-9_]*[0-9])[A-Za-z0-9_]{32,}"
    ")(?![A-Za-z0-9_-]))"
    "|(?<iban>(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9]))"
    "|(?<card>(?<![0-9])(?:[0-9][ -]?){12,18}[0-9](?![0-9]))"
    "|(?<phone>(?<![0-9A-Za-z+])(?:\\+[0-9]{1,3}[ .-]?(?:\\([0-9]{1,4}\\)[ .-]?)?[0-9]{1,4}"
    "(?:[ .-]?[0-9]{2,4}){2,4}"
    "|\\([0-9]{3}\\) ?[0-9]{3}[-. ][0-9]{4}"
    "|[0-9]{3}[-.][0-9]{3}[-.][0-9]{4})(?![0-9A-Za-z]))";

static pcre2_code *re;
static uint32_t g_email, g_secret, g_iban, g_card, g_phone;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void compile(void)
{
    int code;
    PCRE2_SIZE off;
    re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
    if (!re)
        return;
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    g_email = (uint32_t)pcre2_substring_number_from_name(re, (PCRE2_SPTR) "email");
    g_secret = (uint32_t)pcre2_substring_number_from_name(re, (PCRE2_SPTR) "secret");
    g_iban = (uint32_t)pcre2_substring_number_from_name(re, (PCRE2_SPTR) "iban");
    g_card = (uint32_t)pcre2_substring_number_from_name(re, (PCRE2_SPTR) "card");
    g_phone = (uint32_t)pcre2_substring_number_from_name(re, (PCRE2_SPTR) "phone");
}

bool st_luhn_ok(const char *s, size_t len)
{
    int sum = 0, n = 0;
    for (size_t i = len; i-- > 0;) {
        char c = s[i];
        if (c == ' ' || c == '-')
            continue;
        if (c < '0' || c > '9')
            return false;
        int d = c - '0';
        if (n % 2 == 1) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
        n++;
    }
    return n >= 12 && n <= 19 && sum % 10 == 0;
}

bool st_iban_ok(const char *s, size_t len)
{
    char v[40];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ')
            continue;
        if (n >= sizeof v)
            return false;
        v[n++] = s[i];
    }
    if (n < 15 || n > 34)
        return false;
    /* move the first four characters to the end, letters -> 10..35, mod 97 */
    unsigned rem = 0;
    for (size_t k = 0; k < n; k++) {
        char c = v[(k + 4) % n];
        if (c >= '0' && c <= '9')
            rem = (rem * 10 + (unsigned)(c - '0')) % 97;
        else if (c >= 'A' && c <= 'Z')
            rem = (rem * 100 + (unsigned)(c - 'A' + 10)) % 97;
        else
            return false;
    }
    return rem == 1;
}

static size_t count_digits(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += s[i] >= '0' && s[i] <= '9';
    return n;
}

/* The longest Luhn-valid run of 13-19 digits inside [s, e) that starts and
 * ends at a digit-group boundary (the greedy match may have swallowed a
 * neighbouring number: "4111 1111 1111 1111 2"). */
static bool card_within(const char *t, size_t s, size_t e, size_t *out_s, size_t *out_e)
{
    size_t best = 0;
    for (size_t a = s; a < e; a++) {
        if (a > s && (t[a - 1] >= '0' && t[a - 1] <= '9'))
            continue;   /* start only at the span start or after a separator */
        if (t[a] < '0' || t[a] > '9')
            continue;
        for (size_t b = e; b > a; b--) {
            if (b < e && t[b] >= '0' && t[b] <= '9')
                continue;   /* end only at the span end or before a separator */
            if (t[b - 1] < '0' || t[b - 1] > '9')
                continue;
            size_t d = count_digits(t + a, b - a);
            if (d >= 13 && d <= 19 && b - a > best && st_luhn_ok(t + a, b - a)) {
                best = b - a;
                *out_s = a;
                *out_e = b;
            }
        }
    }
    return best > 0;
}

st_rc st_redact(const char *text, size_t len, st_buf *out)
{
    pthread_once(&once, compile);
    if (!re)
        return ST_ERR_INVALID;
    if (!text)
        text = "";
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md)
        return ST_ERR_NOMEM;
    st_rc rc = ST_OK;
    size_t pos = 0, copied = 0;
    while (rc == ST_OK && pos <= len) {
        int m = pcre2_match(re, (PCRE2_SPTR)text, len, pos, 0, md, NULL);
        if (m < 0)
            break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t s = ov[0], e = ov[1];
        const char *ph = NULL;
        if (m > (int)g_email && ov[2 * g_email] != PCRE2_UNSET)
            ph = "<email>";
        else if (m > (int)g_secret && ov[2 * g_secret] != PCRE2_UNSET)
            ph = "<secret>";
        else if (m > (int)g_iban && ov[2 * g_iban] != PCRE2_UNSET)
            ph = st_iban_ok(text + s, e - s) ? "<iban>" : NULL;
        else if (m > (int)g_card && ov[2 * g_card] != PCRE2_UNSET) {
            size_t cs, ce;
            if (card_within(text, s, e, &cs, &ce)) {
                s = cs;   /* bytes before the card are copied as they are */
                e = ce;
                ph = "<card>";
            }
        } else if (m > (int)g_phone && ov[2 * g_phone] != PCRE2_UNSET) {
            size_t d = count_digits(text + s, e - s);
            ph = d >= 8 && d <= 15 ? "<phone>" : NULL;
        }
        if (!ph) {
            /* not a match after all: step past its first byte */
            pos = s + 1;
            if (e == s && s >= len)
                break;
            continue;
        }
        rc = st_buf_append(out, text + copied, s - copied);
        rc = rc ? rc : st_buf_puts(out, ph);
        copied = e;
        pos = e > s ? e : s + 1;
    }
    if (rc == ST_OK && copied < len)
        rc = st_buf_append(out, text + copied, len - copied);
    if (rc == ST_OK && out->len == 0)
        rc = st_buf_puts(out, "");
    pcre2_match_data_free(md);
    return rc;
}
