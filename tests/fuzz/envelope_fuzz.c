/*
 * envelope_fuzz.c - the envelope validator and record builder must accept
 * or reject any bytes without crashing, leaking or reading out of bounds, and
 * every record built from an accepted envelope must be valid JSON.
 */
#include "strata/collect.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    st_envelope env;
    st_err err;
    if (st_envelope_parse(p, size, &env, &err) != ST_OK)
        return 0;
    st_buf b;
    st_buf_init(&b, 0);
    if (st_envelope_record(&b, p, size, &env, "web", env.family[0] ? env.family : "web_events",
                           1717236000000000LL) == ST_OK &&
        st_json_check(b.data, b.len, 64, &err) != ST_OK)
        abort(); /* an accepted event must give a valid record */
    st_buf_free(&b);
    return 0;
}
