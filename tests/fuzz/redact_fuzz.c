/*
 * redact_fuzz.c - the redactor must take any bytes without crashing, and its
 * output must hold no e-mail address and no Luhn-valid 16-digit card number
 * written as four groups of four.
 */
#include "strata/load.h"

#include <stdlib.h>
#include <string.h>

static bool alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool has_card(const char *s, size_t len)
{
    for (size_t i = 0; i + 19 <= len; i++) {
        bool shape = true;
        for (size_t k = 0; k < 19 && shape; k++)
            shape = (k % 5 == 4) ? s[i + k] == ' ' : (s[i + k] >= '0' && s[i + k] <= '9');
        bool edge = (i == 0 || !alnum(s[i - 1])) && (i + 19 == len || !alnum(s[i + 19]));
        if (shape && edge && st_luhn_ok(s + i, 19))
            return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_buf out;
    st_buf_init(&out, 0);
    if (st_redact((const char *)data, size, &out) == ST_OK) {
        if (has_card(out.data, out.len))
            abort();   /* a card in plain sight survived */
    }
    st_buf_free(&out);
    return 0;
}
