/*
 * worldbank_fuzz.c - fuzzes the World Bank Indicators API v2 JSON page parser.
 */
#include "extract/extract_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    x_table t = {0};
    st_err err;
    x_parse_worldbank((const char *)data, size, &t, &err);
    x_table_free(&t);
    return 0;
}
