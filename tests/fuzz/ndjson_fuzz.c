/*
 * ndjson_fuzz.c - the request body splitter (JSON array or NDJSON) must
 * handle any bytes; every span it returns must itself be one valid JSON value
 * inside the body.
 */
#include "strata/collect.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    st_span spans[64];
    size_t n = 0, bad;
    st_err err;
    st_split_limits lim = {.max_events = 64, .max_event_bytes = 4096, .max_depth = 16};
    if (st_collect_split(body, size, &lim, spans, 64, &n, &bad, &err) != ST_OK)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (spans[i].p < body || spans[i].p + spans[i].len > body + size)
            abort();
        if (st_json_check(spans[i].p, spans[i].len, 16, &err) != ST_OK)
            abort();
    }
    return 0;
}
