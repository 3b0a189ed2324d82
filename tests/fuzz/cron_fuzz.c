/*
 * cron_fuzz.c - the cron parser must accept or reject any input without
 * crashing; for accepted expressions the next fire time is strictly later,
 * matches the expression, and is found again from one minute before it.
 */
#include "strata/orch.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *expr = st_strndup((const char *)data, size);
    if (!expr)
        return 0;
    st_cron c;
    st_err err;
    if (st_cron_parse(expr, &c, &err) == ST_OK) {
        int64_t after = 1767225600000LL; /* 2026-01-01 */
        int64_t next = 0;
        if (st_cron_next(&c, after, &next, &err) == ST_OK) {
            if (next <= after || next % 60000 != 0 || !st_cron_matches(&c, next))
                abort();
            int64_t again = 0;
            if (st_cron_next(&c, next - 60000, &again, &err) != ST_OK || again != next)
                abort();
        }
    }
    st_free(expr);
    return 0;
}
